//! The command line of `ul2tp-loadgen`: usage, and bad arguments refused with status 2 before
//! anything is sent. (Also what makes `cargo test --workspace` build the binary that
//! crates/ul2tp-it/tests/loadgen.rs runs against a daemon.)

use std::process::Command;

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_ul2tp-loadgen"))
        .args(args)
        .output()
        .expect("run ul2tp-loadgen");
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn help_prints_the_usage() {
    let (code, out, _) = run(&["--help"]);
    assert_eq!(code, Some(0));
    assert!(out.starts_with("usage: ul2tp-loadgen --peer"), "{out}");
}

#[test]
fn bad_arguments_are_refused_with_the_usage() {
    for args in [
        &[][..],
        &["--peer", "not-an-address"][..],
        &["--peer", "192.0.2.1:1701", "--version", "4"][..],
        &["--peer", "192.0.2.1:1701", "--tunnels", "x"][..],
    ] {
        let (code, _, err) = run(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.starts_with("ul2tp-loadgen: "), "{args:?}: {err}");
        assert!(err.contains("usage: ul2tp-loadgen"), "{args:?}: {err}");
    }
}
