//! The ul2tpd command line without network access: `--check-config` on good and bad files,
//! a missing file, and `--help`. (Having an integration test here also makes
//! `cargo test --workspace` build the `ul2tpd` binary the namespace tests of ul2tp-it run.)

use std::process::Command;

fn ul2tpd(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ul2tpd"))
        .args(args)
        .output()
        .expect("run ul2tpd")
}

fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ul2tpd-cl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn check_config_accepts_a_good_file() {
    let p = temp_file(
        "good.toml",
        "[[tunnel]]\ntunnel_id = 1\npeer_tunnel_id = 2\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.2\"\nudp_sport = 1\nudp_dport = 2\n[[tunnel.session]]\nsession_id = 3\npeer_session_id = 4\n",
    );
    let o = ul2tpd(&["--config", p.to_str().unwrap(), "--check-config"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "configuration OK: 2 static objects\n"
    );
}

#[test]
fn check_config_names_file_line_and_key() {
    let p = temp_file("bad.toml", "[api]\nsocket = \"/tmp/x\"\n\n[[tunnel]]\ntunnel_id = 0\npeer_tunnel_id = 2\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.2\"\nudp_sport = 1\nudp_dport = 2\n");
    let o = ul2tpd(&["--config", p.to_str().unwrap(), "--check-config"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.toml:5: key `tunnel_id`"), "{err}");
}

#[test]
fn missing_config_is_an_error_not_a_panic() {
    let o = ul2tpd(&["--config", "/nonexistent/ul2tpd.toml", "--check-config"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("/nonexistent/ul2tpd.toml") && err.contains("cannot read configuration file"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn help_lists_the_options() {
    let o = ul2tpd(&["--help"]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    for opt in [
        "--socket",
        "--config",
        "--check-config",
        "--log",
        "--workers",
    ] {
        assert!(out.contains(opt), "{opt} missing from --help:\n{out}");
    }
}

/// The API socket path comes from `--socket`, else `$UL2TP_SOCKET`, else the default; the
/// daemon answers NOOP there. (No network objects are created: runs anywhere.)
#[test]
fn socket_path_from_the_environment() {
    use std::io::{BufRead, BufReader, Write};
    let dir = std::env::temp_dir().join(format!("ul2tpd-env-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("env.sock");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ul2tpd"))
        .env("UL2TP_SOCKET", &sock)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn ul2tpd");
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let stream = loop {
        if let Ok(s) = std::os::unix::net::UnixStream::connect(&sock) {
            break s;
        }
        assert!(
            std::time::Instant::now() < end,
            "no API socket at {}",
            sock.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    (&stream)
        .write_all(b"{\"seq\":9,\"cmd\":\"noop\"}\n")
        .unwrap();
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(line, "{\"seq\":9}\n");
}

/// Start ul2tpd (no network objects) with its API socket in a fresh directory and stderr to a
/// pipe; returns the child and the socket path once the API answers.
fn spawn_daemon(
    tag: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> (std::process::Child, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("ul2tpd-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("api.sock");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ul2tpd"))
        .arg("--socket")
        .arg(&sock)
        .args(args)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn ul2tpd");
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(&sock).is_err() {
        if let Ok(Some(st)) = child.try_wait() {
            panic!("ul2tpd exited early: {st}");
        }
        assert!(
            std::time::Instant::now() < end,
            "no API socket at {}",
            sock.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    (child, sock)
}

fn kill(child: &std::process::Child, sig: &str) {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(st.success());
}

/// Stop the daemon with SIGTERM and return its whole log.
fn stop(child: std::process::Child) -> Vec<u8> {
    kill(&child, "TERM");
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o.stderr
}

/// Log lines written to a pipe (or a file) carry no ANSI escape sequences; neither do they with
/// NO_COLOR set. (On a terminal they are coloured unless NO_COLOR is set: unit test in main.rs.)
#[test]
fn log_to_a_pipe_has_no_colour_codes() {
    for (tag, env) in [("pipe", vec![]), ("nocolor", vec![("NO_COLOR", "1")])] {
        let (child, _) = spawn_daemon(tag, &["--log", "debug"], &env);
        let log = stop(child);
        let text = String::from_utf8_lossy(&log);
        assert!(text.contains("ul2tpd serving"), "{text}");
        assert!(!log.contains(&0x1b), "ESC in the log ({tag}): {text:?}");
    }
}

/// SIGHUP without a configuration file is logged and otherwise ignored: the daemon lives on
/// and still answers (before the fix the default action of SIGHUP killed it).
#[test]
fn sighup_without_a_config_file_does_not_kill() {
    use std::io::{BufRead, BufReader, Write};
    let (mut child, sock) = spawn_daemon("hup", &[], &[]);
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    kill(&child, "HUP");
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let left = end.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l.contains("SIGHUP: no configuration file") => break,
            Ok(_) => {}
            Err(e) => panic!("no SIGHUP log line: {e} (exited: {:?})", child.try_wait()),
        }
    }
    assert!(
        matches!(child.try_wait(), Ok(None)),
        "ul2tpd died of SIGHUP"
    );
    let stream = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    (&stream)
        .write_all(b"{\"seq\":1,\"cmd\":\"noop\"}\n")
        .unwrap();
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line).unwrap();
    assert_eq!(line, "{\"seq\":1}\n");
    kill(&child, "TERM");
    assert!(child.wait().unwrap().success());
    reader.join().unwrap();
}

/// `--check-config` and start-up share one validation: what start-up refuses,
/// `--check-config` refuses with the same message, naming file, line, table and key.
#[test]
fn check_config_refuses_what_start_up_refuses() {
    let cases = [
        (
            "ctl-local.toml",
            "[control]\nlisten = \"127.0.0.1:0\"\nppp_local = \"10.0.0.1\"\n",
            "ctl-local.toml:3: [control] ppp_local: needs ppp_pool",
        ),
        (
            "ctl-pool.toml",
            "[control]\nlisten = \"127.0.0.1:0\"\nppp_local = \"10.0.0.1\"\nppp_pool = \"10.0.0.9-10.0.0.1\"\n",
            "ctl-pool.toml:4: [control] ppp_pool: first address 10.0.0.9 is after last 10.0.0.1",
        ),
        (
            "ctl-auth.toml",
            "[control]\nlisten = \"127.0.0.1:0\"\nppp_local = \"10.0.0.1\"\nppp_pool = \"10.0.0.2-10.0.0.9\"\n\nppp_auth = \"chap\"\n",
            "ctl-auth.toml:6: [control] ppp_auth: needs ppp_users",
        ),
        (
            "v2-eth.toml",
            "[[tunnel]]\ntunnel_id = 1\npeer_tunnel_id = 2\nversion = 2\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.2\"\nudp_sport = 1\nudp_dport = 2\n[[tunnel.session]]\nsession_id = 3\npeer_session_id = 4\n",
            "v2-eth.toml:10: key `pw_type`: an L2TPv2 tunnel carries PPP sessions only",
        ),
        (
            "dup.toml",
            "[[tunnel]]\ntunnel_id = 1\npeer_tunnel_id = 2\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.2\"\nudp_sport = 1\nudp_dport = 2\n[[tunnel]]\ntunnel_id = 1\npeer_tunnel_id = 3\nlocal = \"192.0.2.1\"\nremote = \"192.0.2.3\"\nudp_sport = 1\nudp_dport = 2\n",
            "dup.toml:9: key `tunnel_id`: tunnel 1 is declared twice (first at line 2)",
        ),
        (
            "group.toml",
            "[api]\n\nread_group = \"no-such-group-ul2tp\"\n",
            "group.toml:3: [api] read_group: group \"no-such-group-ul2tp\" does not exist",
        ),
    ];
    for (name, text, want) in cases {
        let p = temp_file(name, text);
        let o = ul2tpd(&["--config", p.to_str().unwrap(), "--check-config"]);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(
            o.status.code(),
            Some(1),
            "--check-config accepted {name}: {err}"
        );
        assert!(err.contains(want), "{name}: want {want:?} in {err:?}");
        // The daemon refuses the same file with the same message (before creating anything).
        let dir = std::env::temp_dir().join(format!("ul2tpd-cc-{}", std::process::id()));
        let sock = dir.join(format!("{name}.sock"));
        let o = ul2tpd(&[
            "--config",
            p.to_str().unwrap(),
            "--socket",
            sock.to_str().unwrap(),
        ]);
        let start_err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(1), "{name}: {start_err}");
        assert_eq!(start_err, err, "{name}: start-up and --check-config differ");
        assert!(!sock.exists());
    }
}

/// Start-up errors about a key at run time (an address that cannot be bound) name the file,
/// line and key too. (192.0.2.77 is a documentation address no host has: nothing is bound.)
#[test]
fn bind_errors_name_file_line_and_key() {
    for (name, text, want) in [
        (
            "bind-metrics.toml",
            "[metrics]\n\nlisten = \"192.0.2.77:9650\"\n",
            "bind-metrics.toml:3: [metrics] listen: cannot serve metrics on 192.0.2.77:9650",
        ),
        (
            "bind-control.toml",
            "[control]\nhost_name = \"x\"\nlisten = \"192.0.2.77:1701\"\n",
            "bind-control.toml:3: [control] listen: cannot start the control endpoint on 192.0.2.77:1701",
        ),
    ] {
        let p = temp_file(name, text);
        let o = ul2tpd(&["--config", p.to_str().unwrap(), "--check-config"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let dir = std::env::temp_dir().join(format!("ul2tpd-cl-{}", std::process::id()));
        let sock = dir.join(format!("{name}.sock"));
        let o = ul2tpd(&["--config", p.to_str().unwrap(), "--socket", sock.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains(want), "want {want:?} in {err:?}");
    }
}
