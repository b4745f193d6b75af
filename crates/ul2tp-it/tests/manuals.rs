//! The manuals (man/) and shell completions (completions/) against the binaries: every option
//! of `ul2tpd --help` and every command and keyword of `ul2tp help` is documented in the
//! matching man page and offered by the completions, the pages render without groff warnings,
//! the completion scripts parse, and bash completes the `ip l2tp` grammar.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use ul2tp_it::bin;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// A man page's source as text: `\-` is `-`, font escapes removed.
fn man_text(rel: &str) -> String {
    read(rel)
        .replace("\\-", "-")
        .replace("\\fB", "")
        .replace("\\fI", "")
        .replace("\\fR", "")
        .replace("\\fP", "")
}

fn has_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let ok = |c: Option<char>| {
            c.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        };
        ok(text[..i].chars().next_back()) && ok(text[i + word.len()..].chars().next())
    })
}

/// The long and short options of `ul2tpd --help`.
fn ul2tpd_options() -> BTreeSet<String> {
    let o = Command::new(bin("ul2tpd"))
        .arg("--help")
        .output()
        .expect("ul2tpd --help");
    assert!(o.status.success());
    let help = String::from_utf8_lossy(&o.stdout).into_owned();
    let opts: BTreeSet<String> = help
        .lines()
        .filter(|l| l.trim_start().starts_with('-'))
        .flat_map(|l| {
            l.split([' ', ','])
                .filter(|w| w.starts_with('-') && w.len() > 1)
                .map(|w| w.split('=').next().unwrap_or(w).to_string())
                .take_while(|_| true)
                .collect::<Vec<_>>()
        })
        .filter(|w| {
            w.chars()
                .skip_while(|c| *c == '-')
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        .collect();
    for must in [
        "--socket",
        "--config",
        "--check-config",
        "--help",
        "-V",
        "--version",
    ] {
        assert!(
            opts.contains(must),
            "{must} not found in ul2tpd --help: {help}"
        );
    }
    opts
}

/// `ul2tp help` (printed on stderr, exit 255 as by ip).
fn ul2tp_help() -> String {
    let o = Command::new(bin("ul2tp"))
        .arg("help")
        .output()
        .expect("ul2tp help");
    assert_eq!(o.status.code(), Some(255));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The command words and keywords of the grammar part of `ul2tp help` (before "Options:").
fn ul2tp_keywords(help: &str) -> BTreeSet<String> {
    let grammar = help.split("\nOptions:").next().unwrap_or_default();
    grammar
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.chars().next().is_some_and(|c| c.is_ascii_lowercase()))
        .map(str::to_string)
        .collect()
}

/// The options on the "Options:" line of `ul2tp help`, e.g. `-j[son]` gives `-j` and `-json`.
fn ul2tp_options(help: &str) -> BTreeSet<String> {
    let line = help
        .lines()
        .find(|l| l.starts_with("Options:"))
        .expect("Options: line");
    let mut set = BTreeSet::new();
    for w in line
        .split_whitespace()
        .skip(1)
        .filter(|w| w.starts_with('-'))
    {
        match w.split_once('[') {
            Some((short, rest)) => {
                set.insert(short.to_string());
                set.insert(format!("{short}{}", rest.trim_end_matches(']')));
            }
            None => {
                set.insert(w.to_string());
            }
        }
    }
    set
}

#[test]
fn ul2tpd_help_matches_its_man_page_and_completions() {
    let man = man_text("man/ul2tpd.8");
    let bash = read("completions/ul2tp.bash");
    let zsh = read("completions/_ul2tp");
    for opt in ul2tpd_options() {
        assert!(has_word(&man, &opt), "man/ul2tpd.8 does not document {opt}");
        assert!(
            has_word(&bash, &opt),
            "completions/ul2tp.bash lacks ul2tpd {opt}"
        );
        assert!(zsh.contains(&opt), "completions/_ul2tp lacks ul2tpd {opt}");
    }
}

#[test]
fn ul2tp_help_matches_its_man_page_and_completions() {
    let help = ul2tp_help();
    let man = man_text("man/ul2tp.8");
    let bash = read("completions/ul2tp.bash");
    let zsh = read("completions/_ul2tp");
    let kws = ul2tp_keywords(&help);
    for must in [
        "add",
        "connect",
        "ppp",
        "monitor",
        "tunnel_id",
        "udp6_csum_rx",
        "lns_mode",
    ] {
        assert!(kws.contains(must), "{must} not in ul2tp help");
    }
    for kw in &kws {
        assert!(
            has_word(&man, kw),
            "man/ul2tp.8 does not document `{kw}` of ul2tp help"
        );
        if kw != "ul2tp" {
            assert!(
                has_word(&bash, kw),
                "completions/ul2tp.bash does not offer `{kw}`"
            );
            assert!(
                has_word(&zsh, kw),
                "completions/_ul2tp does not offer `{kw}`"
            );
        }
    }
    let opts = ul2tp_options(&help);
    assert!(opts.contains("-json") && opts.contains("--socket") && opts.contains("-netns"));
    for opt in &opts {
        assert!(has_word(&man, opt), "man/ul2tp.8 does not document {opt}");
        assert!(
            has_word(&bash, opt),
            "completions/ul2tp.bash does not offer {opt}"
        );
        assert!(
            has_word(&zsh, opt),
            "completions/_ul2tp does not offer {opt}"
        );
    }
}

#[test]
fn man_pages_render_without_warnings() {
    for page in ["man/ul2tp.8", "man/ul2tpd.8", "man/ul2tpd.toml.5"] {
        let o = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(repo().join(page))
            .output()
            .expect("groff (package groff-base; .ci/run installs it)");
        assert!(o.status.success(), "{page}: groff failed");
        assert_eq!(
            String::from_utf8_lossy(&o.stderr),
            "",
            "{page}: groff warnings"
        );
        // And it says something: the NAME line of the rendered page.
        let o = Command::new("groff")
            .args(["-man", "-Tutf8", "-P-c"])
            .arg(repo().join(page))
            .output()
            .expect("groff");
        let text = String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let name = Path::new(page)
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            text.contains(&format!("{name} - ")),
            "{page}: no NAME line in\n{text}"
        );
    }
}

#[test]
fn both_programs_print_their_version() {
    let version = env!("CARGO_PKG_VERSION");
    for (prog, opt) in [
        ("ul2tpd", "--version"),
        ("ul2tpd", "-V"),
        ("ul2tp", "-V"),
        ("ul2tp", "-Version"),
        ("ul2tp", "--version"),
    ] {
        let o = Command::new(bin(prog)).arg(opt).output().expect(prog);
        assert!(o.status.success(), "{prog} {opt}");
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            format!("{prog} {version}\n"),
            "{prog} {opt}"
        );
    }
}

#[test]
fn completion_scripts_parse() {
    let o = Command::new("bash")
        .arg("-n")
        .arg(repo().join("completions/ul2tp.bash"))
        .output()
        .expect("bash");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // zsh is a test dependency like tshark (.ci/run installs it): missing it fails the test.
    let o = Command::new("zsh")
        .arg("-n")
        .arg(repo().join("completions/_ul2tp"))
        .output()
        .expect("zsh (apt-get install zsh, or run .ci/run)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Run the bash completion function for a command line whose last word is being completed.
fn bash_complete(line: &[&str]) -> Vec<String> {
    let words: Vec<String> = line.iter().map(|w| format!("'{w}'")).collect();
    let func = if line[0] == "ul2tpd" {
        "_ul2tpd"
    } else {
        "_ul2tp"
    };
    let script = format!(
        "source '{}'\nCOMP_WORDS=({})\nCOMP_CWORD={}\n{func}\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        repo().join("completions/ul2tp.bash").display(),
        words.join(" "),
        line.len() - 1
    );
    let o = Command::new("bash")
        .args(["--norc", "-c", &script])
        .output()
        .expect("bash");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completes_the_ip_l2tp_grammar() {
    let got = bash_complete(&["ul2tp", "add", "tunnel", ""]);
    assert!(got.iter().any(|w| w == "tunnel_id"), "{got:?}");
    assert!(got.iter().any(|w| w == "udp6_csum_rx"), "{got:?}");
    assert!(!got.iter().any(|w| w == "session_id"), "{got:?}");
    // Keywords already given are not offered again; values are.
    let got = bash_complete(&["ul2tp", "add", "tunnel", "tunnel_id", "1", ""]);
    assert!(!got.iter().any(|w| w == "tunnel_id"), "{got:?}");
    assert_eq!(
        bash_complete(&["ul2tp", "add", "tunnel", "encap", ""]),
        ["ip", "udp"]
    );
    assert_eq!(
        bash_complete(&["ul2tp", "add", "session", "seq", ""]),
        ["none", "send", "recv", "both"]
    );
    assert_eq!(
        bash_complete(&["ul2tp", "add", "tunnel", "tunnel_id", ""]),
        Vec::<String>::new()
    );
    assert_eq!(
        bash_complete(&["ul2tp", "-j", "s", ""]),
        ["tunnel", "session", "ppp", "lac"]
    );
    assert_eq!(
        bash_complete(&["ul2tp", "show", "ppp", ""]),
        ["tunnel_id", "session_id"]
    );
    assert_eq!(
        bash_complete(&["ul2tp", "--socket", "/x", "show", "session", "s"]),
        ["session_id"]
    );
    let got = bash_complete(&["ul2tp", ""]);
    for cmd in [
        "add", "del", "show", "modify", "monitor", "connect", "ppp", "help",
    ] {
        assert!(got.iter().any(|w| w == cmd), "{cmd}: {got:?}");
    }
    assert_eq!(bash_complete(&["ul2tpd", "--ch"]), ["--check-config"]);
}
