//! The local API limits (docs/security.md "Local API limits"): connection caps in total and
//! per uid with a reserve for root, the idle timeout of users who may not change state, the
//! counters, and RLIMIT_NOFILE raised to the hard limit.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ul2tp_it::metrics::scrape_at;
use ul2tp_it::{bin, unique, wait_until, Daemon, Netns};

/// Set by the tests for [`hold_connection`]: the API socket to connect to.
const HOLD_ENV: &str = "UL2TP_IT_HOLD";

/// Not a test: the helper the tests run as another user (setpriv). It connects to the socket
/// in `$UL2TP_IT_HOLD`, sends nothing, and prints what the daemon sends until it closes.
#[test]
#[ignore = "helper run as another user by the other tests"]
fn hold_connection() {
    let Some(path) = std::env::var_os(HOLD_ENV) else {
        return;
    };
    let mut s = UnixStream::connect(path).expect("connect");
    let mut got = String::new();
    let _ = s.read_to_string(&mut got);
    println!("daemon sent {got:?} and closed");
}

/// Run [`hold_connection`] as `uid` (group nogroup) against `d`.
fn hold_as(d: &Daemon, uid: u32) -> Child {
    Command::new("setpriv")
        .arg(format!("--reuid={uid}"))
        .args(["--regid=65534", "--clear-groups"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "hold_connection", "--ignored", "--nocapture"])
        .env(HOLD_ENV, &d.socket)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn setpriv")
}

/// `ul2tp ARGS` as `uid` (group nogroup).
fn ul2tp_as(d: &Daemon, uid: u32, args: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .arg(format!("--reuid={uid}"))
        .args(["--regid=65534", "--clear-groups"])
        .arg(bin("ul2tp"))
        .arg("--socket")
        .arg(&d.socket)
        .args(args)
        .output()
        .expect("run setpriv")
}

/// The value of the sample `name` (no labels) in a metrics body.
fn sample(body: &str, name: &str) -> Option<u64> {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

fn config(tag: &str, text: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(unique(tag));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("ul2tpd.toml");
    std::fs::write(&cfg, text).unwrap();
    (dir, cfg)
}

fn stop(children: Vec<Child>) {
    for mut c in children {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Per-uid cap: the 4th connection of a uid gets an EUSERS error line and is closed; total
/// cap: another user gets EMFILE while root still gets through, up to its reserve; the
/// counters show open and refused connections.
#[test]
fn connection_caps_per_uid_and_total_keep_root_in() {
    let ns = Netns::new("alim");
    let (dir, cfg) = config(
        "alim",
        "[api]\nread_group = \"nogroup\"\nmax_connections = 8\nmax_connections_per_uid = 3\nidle_timeout = 600\n\
         [metrics]\nlisten = \"127.0.0.1:9651\"\n",
    );
    let d = Daemon::start(&ns, &["--config", cfg.to_str().unwrap()]);
    let open = |n: u64| {
        d.wait_for(Duration::from_secs(10), || {
            sample(&scrape_at(&ns, 9651), "ul2tp_api_connections") == Some(n)
        })
    };
    let mut held: Vec<Child> = (0..3).map(|_| hold_as(&d, 65534)).collect();
    assert!(open(3), "{}", scrape_at(&ns, 9651));

    // The 4th of uid 65534: refused with a message the command prints.
    let out = ul2tp_as(&d, 65534, &["show", "tunnel"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("too many API connections of uid 65534"),
        "{err}"
    );
    // A raw client sees the error line, then the end of the stream.
    let mut c = hold_as(&d, 65534);
    assert!(
        wait_until(Duration::from_secs(10), || matches!(
            c.try_wait(),
            Ok(Some(_))
        )),
        "the refused connection stays open"
    );
    let mut said = String::new();
    c.stdout.take().unwrap().read_to_string(&mut said).unwrap();
    assert!(said.contains(r#"\"errno\":\"EUSERS\""#), "{said}");
    assert!(open(3));

    // Fill the total (8) with root's connections.
    let root: Vec<UnixStream> = (0..5)
        .map(|_| UnixStream::connect(&d.socket).unwrap())
        .collect();
    assert!(open(8), "{}", scrape_at(&ns, 9651));
    let out = ul2tp_as(&d, 65533, &["show", "tunnel"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("too many API connections (8 open"), "{err}");
    // Root gets through at the total...
    d.ul2tp("show tunnel");
    // ... up to the reserve of 4.
    let extra: Vec<UnixStream> = (0..4)
        .map(|_| UnixStream::connect(&d.socket).unwrap())
        .collect();
    assert!(open(12), "{}", scrape_at(&ns, 9651));
    let out = d.cli(&["show", "tunnel"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("too many API connections (12 open"), "{err}");

    let rejected = |n: u64| {
        d.wait_for(Duration::from_secs(10), || {
            sample(
                &scrape_at(&ns, 9651),
                "ul2tp_api_connections_rejected_total",
            ) == Some(n)
        })
    };
    assert!(rejected(4), "{}", scrape_at(&ns, 9651));
    // A client that writes only after the daemon closed the refused connection still gets
    // the reason.
    let mut late = d.client();
    assert!(rejected(5), "{}", scrape_at(&ns, 9651));
    match late.request(ul2tp_api::Command::Noop, Default::default(), false) {
        Err(ul2tp::ClientError::Io(e)) => assert!(
            e.to_string().contains("too many API connections (12 open"),
            "{e}"
        ),
        other => panic!("expected the refusal, got {other:?}"),
    }
    assert!(d.log().contains("api connection of uid 65534 refused"));
    // Freed slots are reused.
    drop((root, extra));
    stop(std::mem::take(&mut held));
    assert!(open(0), "{}", scrape_at(&ns, 9651));
    assert!(ul2tp_as(&d, 65534, &["show", "tunnel"]).status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A read-only user's connection without requests is closed after `idle_timeout`; its
/// monitor is not, and neither is root's idle connection.
#[test]
fn idle_connections_of_readers_are_closed() {
    let ns = Netns::new("aidl");
    let (dir, cfg) = config(
        "aidl",
        "[api]\nread_group = \"nogroup\"\nidle_timeout = 1\n[metrics]\nlisten = \"127.0.0.1:9652\"\n",
    );
    let d = Daemon::start(&ns, &["--config", cfg.to_str().unwrap()]);
    let mut monitor = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(bin("ul2tp"))
        .arg("--socket")
        .arg(&d.socket)
        .arg("monitor")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut root = UnixStream::connect(&d.socket).unwrap();
    let mut idle = hold_as(&d, 65534);
    assert!(
        d.wait_for(Duration::from_secs(15), || matches!(
            idle.try_wait(),
            Ok(Some(_))
        )),
        "the idle connection is still open"
    );
    let mut said = String::new();
    idle.stdout
        .take()
        .unwrap()
        .read_to_string(&mut said)
        .unwrap();
    assert!(said.contains("daemon sent \"\" and closed"), "{said}");
    // The idle connection is gone; the monitor and root's connection stay (3 -> 2).
    assert!(d.wait_for(Duration::from_secs(10), || {
        sample(&scrape_at(&ns, 9652), "ul2tp_api_connections") == Some(2)
    }));
    assert!(matches!(monitor.try_wait(), Ok(None)), "monitor ended");
    // Root's connection still answers.
    root.write_all(b"{\"seq\":7,\"cmd\":\"noop\"}\n").unwrap();
    let mut buf = [0u8; 64];
    let n = root.read(&mut buf).unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("{\"seq\":7"),
        "{:?}",
        &buf[..n]
    );
    // The monitor still gets events.
    d.ul2tp("add tunnel tunnel_id 5 peer_tunnel_id 6 local 127.0.0.1 remote 127.0.0.1 udp_sport 7610 udp_dport 7611");
    let mut out = monitor.stdout.take().unwrap();
    let mut first = [0u8; 16];
    assert!(out.read(&mut first).unwrap() > 0, "no event on the monitor");
    stop(vec![monitor]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The daemon raises its soft RLIMIT_NOFILE to the hard limit, and as root the hard limit too.
#[test]
fn nofile_soft_limit_is_the_hard_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let ns = Netns::new("anof");
    // Start it with a soft limit below the hard one (restored for this process at once).
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let low = hard.min(1024) / 2;
    setrlimit(Resource::RLIMIT_NOFILE, low, hard).unwrap();
    let d = Daemon::start(&ns, &[]);
    setrlimit(Resource::RLIMIT_NOFILE, soft, hard).unwrap();
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", d.pid())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(3)
        .take(2)
        .map(|v| v.parse().unwrap())
        .collect();
    // Root (these tests run as root) may raise the hard limit too: up to fs.nr_open, at
    // most 2^20.
    let nr_open: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // Without CAP_SYS_RESOURCE (some containers) the hard limit stays.
    let cap_sys_resource = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << 24) != 0);
    let want = if cap_sys_resource {
        nr_open.min(1 << 20).max(hard)
    } else {
        hard
    };
    assert_eq!(f, [want, want], "{line}");
    assert!(d.log().contains("RLIMIT_NOFILE"), "{}", d.log());
}
