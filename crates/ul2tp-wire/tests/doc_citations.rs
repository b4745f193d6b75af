//! Every `docs/reference/kernel.md §N` / `docs/reference/rfc.md §N` citation in the repository
//! points at a section that exists (docs/reference/README.md). The walk covers `crates/`, `docs/`,
//! `scripts/` and the top-level Markdown files; a section exists when the file has a heading
//! `## N.` (top level) or `### N ` (subsection).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

const FILES: [&str; 2] = ["docs/reference/kernel.md", "docs/reference/rfc.md"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One citation: the cited file, the section number, and where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Citation {
    file: &'static str,
    section: String,
    line: usize,
}

/// Skip the comment prefix of a continuation line (`//!`, `///`, `//`, `#`, `*`, `--`) and blanks.
fn skip_line_prefix(s: &str) -> &str {
    let s = s.trim_start_matches([' ', '\t']);
    let s = ["//!", "///", "//", "#", "*", "--"]
        .iter()
        .find_map(|p| s.strip_prefix(p))
        .unwrap_or(s);
    s.trim_start_matches([' ', '\t'])
}

/// A section number at the start of `s` (digits and dots, without a trailing sentence dot) and the
/// rest of the text.
fn section_number(s: &str) -> Option<(String, &str)> {
    let end = s
        .char_indices()
        .find(|&(_, c)| !(c.is_ascii_digit() || c == '.'))
        .map_or(s.len(), |(i, _)| i);
    let num = s[..end].trim_end_matches('.');
    if num.is_empty() || !num.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    Some((num.to_string(), &s[end..]))
}

/// After one section number: a separator (`, `, ` / `, `–`, ` and `, ...) followed by another `§`?
fn next_in_chain(s: &str) -> Option<&str> {
    for sep in [", ", " / ", "/", "–", "-", " – ", " and ", " or ", ", and "] {
        if let Some(rest) = s.strip_prefix(sep) {
            if let Some(rest) = rest.strip_prefix('§') {
                return Some(rest);
            }
        }
    }
    None
}

/// All citations in `text`, including chains (`§1.4 and §2.6`, `§4.5–§4.7`) and the form where
/// the file name ends a comment line and `§N` starts the next one.
fn citations(text: &str) -> Vec<Citation> {
    let mut out = Vec::new();
    for file in FILES {
        let mut from = 0;
        while let Some(pos) = text[from..].find(file) {
            let at = from + pos;
            from = at + file.len();
            let line = text[..at].matches('\n').count() + 1;
            let mut rest = text[from..].trim_start_matches([' ', '\t']);
            if let Some(next) = rest.strip_prefix('\n') {
                rest = skip_line_prefix(next);
            }
            let Some(mut rest) = rest.strip_prefix('§') else {
                continue;
            };
            while let Some((section, after)) = section_number(rest) {
                out.push(Citation {
                    file,
                    section,
                    line,
                });
                match next_in_chain(after) {
                    Some(more) => rest = more,
                    None => break,
                }
            }
        }
    }
    out
}

/// Section numbers that have a heading in a reference file.
fn headings(text: &str) -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    for l in text.lines() {
        if let Some(h) = l.strip_prefix("### ") {
            if let Some((num, _)) = h.split_once(' ') {
                set.insert(num.to_string());
            }
        } else if let Some(h) = l.strip_prefix("## ") {
            if let Some((num, _)) = h.split_once(". ") {
                if num.chars().all(|c| c.is_ascii_digit()) {
                    set.insert(num.to_string());
                }
            }
        }
    }
    set
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        if p.is_dir() {
            walk(&p, out);
        } else if ["rs", "md", "sh", "toml"]
            .iter()
            .any(|ext| p.extension().is_some_and(|x| x == *ext))
        {
            out.push(p);
        }
    }
}

/// Citations whose section has no heading, as `path:line: file §N`.
fn missing(sources: &[(String, String)], refs: &[(&str, BTreeSet<String>)]) -> Vec<String> {
    let mut bad = Vec::new();
    for (path, text) in sources {
        for c in citations(text) {
            let known = &refs.iter().find(|(f, _)| *f == c.file).expect("file").1;
            if !known.contains(&c.section) {
                bad.push(format!("{path}:{}: {} §{}", c.line, c.file, c.section));
            }
        }
    }
    bad
}

#[test]
fn every_cited_section_exists() {
    let root = repo_root();
    let refs: Vec<(&str, BTreeSet<String>)> = FILES
        .iter()
        .map(|f| {
            let text = fs::read_to_string(root.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
            (*f, headings(&text))
        })
        .collect();

    let mut files = Vec::new();
    for d in ["crates", "docs", "scripts"] {
        walk(&root.join(d), &mut files);
    }
    for f in ["README.md", "ARCHITECTURE.md"] {
        files.push(root.join(f));
    }
    let sources: Vec<(String, String)> = files
        .iter()
        .filter_map(|p| {
            let text = fs::read_to_string(p).ok()?;
            let rel = p.strip_prefix(&root).unwrap_or(p).display().to_string();
            Some((rel, text))
        })
        .collect();

    let total: usize = sources.iter().map(|(_, t)| citations(t).len()).sum();
    assert!(
        total > 100,
        "only {total} citations found: is the walk broken?"
    );

    let bad = missing(&sources, &refs);
    assert!(
        bad.is_empty(),
        "cited sections missing from docs/reference/:\n{}",
        bad.join("\n")
    );
}

#[test]
fn parser_forms() {
    let text = "\
// see docs/reference/kernel.md §1.2.
//! (docs/reference/kernel.md §4.5–§4.7, §5) and docs/reference/rfc.md §1.4 and §2.6 \"M\"
/// across lines: docs/reference/kernel.md
/// §2) and docs/reference/kernel.md §2.3 rows 1 and 4, RFC 2661 §3.1
no section: docs/reference/rfc.md, where §9 is something else
";
    let got: Vec<(&str, String, usize)> = citations(text)
        .into_iter()
        .map(|c| (c.file, c.section, c.line))
        .collect();
    let k = FILES[0];
    let r = FILES[1];
    let want = vec![
        (k, "1.2".to_string(), 1),
        (k, "4.5".to_string(), 2),
        (k, "4.7".to_string(), 2),
        (k, "5".to_string(), 2),
        (k, "2".to_string(), 3),
        (k, "2.3".to_string(), 4),
        (r, "1.4".to_string(), 2),
        (r, "2.6".to_string(), 2),
    ];
    assert_eq!(got, want);
}

#[test]
fn a_missing_section_is_reported() {
    let refs = vec![
        (FILES[0], headings("## 1. Data\n\n### 1.2 Classification\n")),
        (FILES[1], headings("## 4. PPP\n### 4.1 Frames\n")),
    ];
    let sources = vec![(
        "x.rs".to_string(),
        "// docs/reference/kernel.md §1.2, §1.3\n// docs/reference/rfc.md §4 and §4.10\n"
            .to_string(),
    )];
    assert_eq!(
        missing(&sources, &refs),
        vec![
            "x.rs:1: docs/reference/kernel.md §1.3".to_string(),
            "x.rs:2: docs/reference/rfc.md §4.10".to_string(),
        ]
    );
}
