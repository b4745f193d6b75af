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
