//! `scripts/demo.sh`, the README's first command, run against the debug binaries these tests were
//! built with (`UL2TP_DEMO_PROFILE=debug`, `UL2TP_DEMO_BUILD=0`) from a target directory that is
//! not `./target` (`CARGO_TARGET_DIR`): the demo must find its binaries there, report a daemon
//! that fails to start with the daemon's own error and a non-zero status, and remove its
//! namespaces on every exit path.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use ul2tp_it::{bin, bin_dir, run, unique};

/// A scratch directory under the system temporary directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let p = std::env::temp_dir().join(format!("ul2tp-{}", unique(tag)));
        std::fs::create_dir_all(&p).expect("scratch dir");
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A target directory other than `./target` whose `debug` profile directory is the one these
/// tests run from.
fn other_target_dir() -> Scratch {
    bin("ul2tpd");
    bin("ul2tp");
    let t = Scratch::new("demo-target");
    std::os::unix::fs::symlink(bin_dir(), t.0.join("debug")).expect("symlink debug");
    t
}

/// Run the demo; returns its output and process id (the script's `$$`, which names its
/// namespaces).
fn demo(target: &Path, daemon_args: &str) -> (Output, u32) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/demo.sh");
    let child = Command::new(script)
        .env("CARGO_TARGET_DIR", target)
        .env("UL2TP_DEMO_PROFILE", "debug")
        .env("UL2TP_DEMO_BUILD", "0")
        .env("UL2TP_DEMO_DAEMON_ARGS", daemon_args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run scripts/demo.sh");
    let pid = child.id();
    (child.wait_with_output().expect("demo output"), pid)
}

/// The demo's namespaces are gone.
fn assert_cleaned_up(pid: u32) {
    let list = String::from_utf8_lossy(&run(Command::new("ip").args(["netns", "list"])).stdout)
        .into_owned();
    let tag = format!("ul2tp-demo{pid}-");
    assert!(
        !list.lines().any(|l| l.starts_with(&tag)),
        "demo namespaces left behind:\n{list}"
    );
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn demo_runs_from_another_target_dir() {
    let target = other_target_dir();
    let (o, pid) = demo(&target.0, "");
    let (out, err) = text(&o);
    assert!(
        o.status.success(),
        "demo failed ({}):\nstdout:\n{out}\nstderr:\n{err}",
        o.status
    );
    // The binaries came from CARGO_TARGET_DIR, not ./target.
    let from = format!(
        "demo: using the debug binaries in {}/debug",
        target.0.display()
    );
    assert!(out.contains(&from), "expected {from:?}:\n{out}");
    assert!(out.contains(" 0% packet loss"), "no clean ping:\n{out}");
    assert!(out.contains("demo: pseudowire up and pinging"), "{out}");
    assert_cleaned_up(pid);
}

#[test]
fn demo_reports_a_daemon_that_fails_to_start() {
    let target = other_target_dir();
    let missing = target.0.join("missing.toml");
    let (o, pid) = demo(&target.0, &format!("--config {}", missing.display()));
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        err.contains("exited during start-up"),
        "no start-up failure reported:\n{err}"
    );
    // The daemon's own error, from its log.
    assert!(
        err.contains("missing.toml") && err.contains("cannot read"),
        "daemon log not shown:\n{err}"
    );
    assert!(!out.contains("pinging"), "{out}");
    assert_cleaned_up(pid);
}
