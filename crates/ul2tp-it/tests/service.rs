//! Running ul2tpd as a systemd service: the unit in contrib/systemd passes
//! `systemd-analyze verify`, and the daemon speaks the readiness protocol (sd_notify) to
//! whoever plays the service manager's `NOTIFY_SOCKET`.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ul2tp_it::{bin, have, unique, Daemon, Netns};

fn unit_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib/systemd/ul2tpd.service")
}

/// `systemd-analyze`, from the Debian `systemd` package when it is missing.
fn ensure_systemd_analyze() {
    if have("systemd-analyze") {
        return;
    }
    let ok = Command::new("sh")
        .args([
            "-c",
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd",
        ])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok && have("systemd-analyze"),
        "cannot install systemd-analyze"
    );
}

/// `systemd-analyze verify` on a copy of the unit whose binaries are `exec` (verify checks
/// that they exist); returns success and stderr.
fn verify(dir: &Path, exec: &Path) -> (bool, String) {
    let text = std::fs::read_to_string(unit_path()).unwrap();
    let copy = dir.join("ul2tpd.service");
    std::fs::write(
        &copy,
        text.replace("/usr/sbin/ul2tpd", exec.to_str().unwrap()),
    )
    .unwrap();
    let o = Command::new("systemd-analyze")
        .args(["verify", "--man=no", "--generators=no"])
        .arg(&copy)
        .env("SYSTEMD_LOG_LEVEL", "notice")
        .output()
        .expect("run systemd-analyze");
    // verify also loads the units ours refers to (network.target, ...) and
    // reports warnings about other packages' units installed on the machine
    // (e.g. freeradius.service's MemoryLimit=); those are not ours to fix.
    let ours = copy.to_str().unwrap();
    let err: String = String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter(|l| !l.starts_with('/') || l.starts_with(ours))
        .map(|l| format!("{l}\n"))
        .collect();
    (o.status.success(), err)
}

#[test]
fn the_unit_passes_systemd_analyze_verify() {
    let text = std::fs::read_to_string(unit_path()).unwrap();
    for want in [
        "Type=notify\n",
        "ExecStart=/usr/sbin/ul2tpd --config /etc/ul2tp/ul2tpd.toml\n",
        "ExecReload=/bin/kill -HUP $MAINPID\n",
        "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE\n",
        "ProtectSystem=strict\n",
        "ProtectHome=yes\n",
        "PrivateTmp=yes\n",
        "NoNewPrivileges=yes\n",
        "DeviceAllow=/dev/net/tun rw\n",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK\n",
        "RuntimeDirectory=ul2tp\n",
        "RuntimeDirectoryMode=0750\n",
    ] {
        assert!(text.contains(want), "the unit lacks {want:?}");
    }
    ensure_systemd_analyze();
    let dir = std::env::temp_dir().join(unique("unit"));
    std::fs::create_dir_all(&dir).unwrap();
    let (ok, err) = verify(&dir, &bin("ul2tpd"));
    assert!(ok, "systemd-analyze verify failed:\n{err}");
    assert!(
        err.trim().is_empty(),
        "systemd-analyze verify warns:\n{err}"
    );
    // verify does check: a unit whose ExecStart does not exist fails.
    let (ok, err) = verify(&dir, &dir.join("no-such-ul2tpd"));
    assert!(!ok && err.contains("no-such-ul2tpd"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Receive one notification (a datagram of newline-separated assignments).
fn recv(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).expect("a notification within 10 s");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn readiness_reload_and_stop_are_notified() {
    let ns = Netns::new("notify");
    let dir = std::env::temp_dir().join(unique("notify"));
    std::fs::create_dir_all(&dir).unwrap();
    let notify = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&notify).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let cfg = dir.join("n.toml");
    std::fs::write(
        &cfg,
        "[[tunnel]]\ntunnel_id = 3000\npeer_tunnel_id = 4000\nlocal = \"127.0.0.1\"\nremote = \"127.0.0.1\"\nudp_sport = 7900\nudp_dport = 7901\n\n[[tunnel.session]]\nsession_id = 1000\npeer_session_id = 2000\nname = \"ntf0\"\n",
    )
    .unwrap();
    let mut d = Daemon::start_with_env(
        &ns,
        &["--config", cfg.to_str().unwrap()],
        &[("NOTIFY_SOCKET", notify.as_os_str())],
        Duration::from_secs(10),
    );
    let ready = recv(&sock);
    // At READY=1 the API answers and the static tunnel and session are up.
    assert!(d.socket.exists());
    assert!(
        d.ul2tp("show tunnel").contains("Tunnel 3000"),
        "{}",
        d.log()
    );
    assert!(ns.has_link("ntf0"));
    assert_eq!(
        ready,
        format!(
            "READY=1\nSTATUS=serving: 1 tunnel, 1 session\nMAINPID={}\n",
            d.pid()
        )
    );
    // And the daemon's own order: objects, then the API socket, then the notification.
    let log = d.log();
    let at = |what: &str| {
        log.find(what)
            .unwrap_or_else(|| panic!("no {what:?} in the log:\n{log}"))
    };
    let ready_at = at("ready: serving: 1 tunnel, 1 session");
    for before in [
        "tunnel 3000 created",
        "session 1000 in tunnel 3000 created",
        "ul2tpd serving",
    ] {
        assert!(at(before) < ready_at, "{before:?} after READY:\n{log}");
    }

    // SIGHUP: RELOADING=1 (with the monotonic time), then READY=1 with the new counts.
    std::fs::write(
        &cfg,
        "[[tunnel]]\ntunnel_id = 3000\npeer_tunnel_id = 4000\nlocal = \"127.0.0.1\"\nremote = \"127.0.0.1\"\nudp_sport = 7900\nudp_dport = 7901\n",
    )
    .unwrap();
    d.signal("HUP");
    let reloading = recv(&sock);
    assert!(reloading.starts_with("RELOADING=1\n"), "{reloading}");
    let usec = reloading
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .and_then(|v| v.parse::<u64>().ok());
    assert!(usec.is_some_and(|u| u > 0), "{reloading}");
    let ready = recv(&sock);
    assert!(
        ready.starts_with("READY=1\nSTATUS=serving: 1 tunnel, 0 sessions\n"),
        "{ready}"
    );
    assert!(d.log().contains("reloaded "), "{}", d.log());

    // SIGTERM: STOPPING=1, then the daemon exits.
    d.signal("TERM");
    let stopping = recv(&sock);
    assert!(stopping.starts_with("STOPPING=1\n"), "{stopping}");
    assert!(
        ul2tp_it::wait_until(Duration::from_secs(10), || !d.alive()),
        "ul2tpd did not stop"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// systemd's own `NOTIFY_SOCKET` is an abstract address (`@/org/freedesktop/...`); abstract
/// addresses belong to a network namespace, so the test binds it in the daemon's.
#[test]
fn readiness_on_an_abstract_socket() {
    use std::os::linux::net::SocketAddrExt;
    let ns = Netns::new("notifya");
    let name = unique("/ul2tp/notify/");
    let bound = name.clone();
    let sock = ns.run_in(move || {
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(bound.as_bytes()).unwrap();
        UnixDatagram::bind_addr(&addr).unwrap()
    });
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let value = format!("@{name}");
    let d = Daemon::start_with_env(
        &ns,
        &[],
        &[("NOTIFY_SOCKET", std::ffi::OsStr::new(&value))],
        Duration::from_secs(10),
    );
    assert_eq!(
        recv(&sock),
        format!(
            "READY=1\nSTATUS=serving: 0 tunnels, 0 sessions\nMAINPID={}\n",
            d.pid()
        )
    );
}
