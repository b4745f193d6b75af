//! Many sessions at once (docs/PERFORMANCE.md "Session scale"): `ul2tp -batch` over one API
//! connection, and the batched deletion of their devices (the reaper: one rtnetlink batch
//! for many devices), which must delete exactly the deleted sessions' devices, also when the
//! administrator renamed one, and never a device of someone else.

use std::time::Duration;

use ul2tp_it::{unique, wait_until, Daemon, Netns};

/// How many `l2tpeth*` devices (or other names starting with `prefix`) `ns` has.
fn devices(ns: &Netns, prefix: &str) -> usize {
    ns.ip(&["-o", "link", "show"])
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .filter(|name| name.starts_with(prefix))
        .count()
}

/// The reaper's reports in a daemon log ("reaped B devices in one batch, C one at a time"),
/// summed: (B, C).
fn reaped(log: &str) -> (usize, usize) {
    log.lines()
        .filter_map(|l| l.split("reaped ").nth(1))
        .filter_map(|r| {
            let w: Vec<&str> = r.split_whitespace().collect();
            Some((
                w.first()?.parse::<usize>().ok()?,
                w.get(5)?.parse::<usize>().ok()?,
            ))
        })
        .fold((0, 0), |(a, b), (x, y)| (a + x, b + y))
}

/// A batch file: a tunnel, then `n` Ethernet sessions (ids 1..=n), with a duplicate of
/// session 7 after session 10 (so on line 1 + 10 + 1 = 12).
fn batch_text(n: u32) -> String {
    let mut t = String::from(
        "add tunnel tunnel_id 1 peer_tunnel_id 1 encap udp local 127.0.0.1 remote 127.0.0.1 udp_sport 7801 udp_dport 7802\n",
    );
    for i in 1..=n {
        t += &format!("add session tunnel_id 1 session_id {i} peer_session_id {i}\n");
        if i == 10 {
            t += "add session tunnel_id 1 session_id 7 peer_session_id 7\n";
        }
    }
    t
}

#[test]
fn batch_creates_many_sessions_over_one_connection() {
    const N: u32 = 600;
    let ns = Netns::new("batch");
    let d = Daemon::start(&ns, &[]);
    let file = std::env::temp_dir().join(unique("batch-").to_string() + ".txt");
    std::fs::write(&file, batch_text(N)).unwrap();
    let path = file.to_str().unwrap();

    // Without -force the batch stops at the duplicate on line 12.
    let o = d.cli(&["-batch", path]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        err,
        format!("RTNETLINK answers: File exists\nCommand failed {path}:12\n")
    );
    assert_eq!(d.session_dump().len(), 10);

    // With -force it goes on: the tunnel and sessions 1..10 exist (reported, one line each),
    // the rest is created.
    let o = d.cli(&["-force", "-batch", path]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.matches("Command failed").count(), 12, "{err}");
    assert!(err.contains(&format!("Command failed {path}:1\n")), "{err}");
    assert!(
        err.contains(&format!("Command failed {path}:12\n")),
        "{err}"
    );
    let sessions = d.session_dump();
    assert_eq!(sessions.len(), N as usize);
    assert_eq!(
        devices(&ns, "l2tpeth"),
        N as usize,
        "one device per session"
    );
    std::fs::remove_file(&file).unwrap();
}

#[test]
fn deleting_many_sessions_deletes_exactly_their_devices() {
    const N: u32 = 400;
    let ns = Netns::new("reap");
    let d = Daemon::start(&ns, &[]);
    // A device of someone else, and one the daemon did not create for these sessions.
    ns.ip(&[
        "link",
        "add",
        "bystander0",
        "type",
        "veth",
        "peer",
        "name",
        "bystander1",
    ]);
    let mut text = String::from(
        "add tunnel tunnel_id 1 peer_tunnel_id 1 encap udp local 127.0.0.1 remote 127.0.0.1 udp_sport 7811 udp_dport 7812\n\
         add tunnel tunnel_id 2 peer_tunnel_id 2 encap udp local 127.0.0.1 remote 127.0.0.1 udp_sport 7813 udp_dport 7814\n",
    );
    for i in 1..=N {
        text += &format!(
            "add session tunnel_id {} session_id {i} peer_session_id {i}\n",
            1 + i % 2
        );
    }
    let file = std::env::temp_dir().join(unique("reap-").to_string() + ".txt");
    std::fs::write(&file, text).unwrap();
    d.cli_ok(&["-batch", file.to_str().unwrap()]);
    std::fs::remove_file(&file).unwrap();
    assert_eq!(devices(&ns, "l2tpeth"), N as usize);

    // The administrator renamed one device of tunnel 1: it goes too (its descriptor is
    // closed rather than deleted by index).
    let one = d
        .session(1, 2)
        .ifname
        .expect("an Ethernet session names its device");
    ns.ip(&["link", "set", &one, "name", "renamed0"]);

    // Half the sessions one by one over one connection, the other half with their tunnel.
    let mut text = String::new();
    for i in (2..=N).step_by(2) {
        text += &format!("del session tunnel_id 1 session_id {i}\n");
    }
    let file = std::env::temp_dir().join(unique("reap-del-").to_string() + ".txt");
    std::fs::write(&file, text).unwrap();
    d.cli_ok(&["-batch", file.to_str().unwrap()]);
    std::fs::remove_file(&file).unwrap();
    d.ul2tp("del tunnel tunnel_id 2");
    assert!(d.session_dump().is_empty());
    assert!(
        d.wait_for(Duration::from_secs(60), || devices(&ns, "l2tpeth") == 0
            && !ns.has_link("renamed0")),
        "{} devices left: {}",
        devices(&ns, "l2tpeth"),
        ns.ip(&["-o", "link", "show"])
    );
    assert!(
        ns.has_link("bystander0"),
        "a device of someone else was deleted"
    );
    // The reaper's report (after it released the names): all but the renamed device went
    // by index in batches.
    assert!(
        d.wait_for(Duration::from_secs(30), || {
            let (b, c) = reaped(&d.log());
            b + c == N as usize
        }),
        "{:?}\n{}",
        reaped(&d.log()),
        d.log()
    );
    assert_eq!(reaped(&d.log()), (N as usize - 1, 1));

    // The names are free again: new sessions get the lowest numbers.
    d.ul2tp("add tunnel tunnel_id 3 peer_tunnel_id 3 encap udp local 127.0.0.1 remote 127.0.0.1 udp_sport 7815 udp_dport 7816");
    d.ul2tp("add session tunnel_id 3 session_id 1 peer_session_id 1");
    assert_eq!(d.session(3, 1).ifname.as_deref(), Some("l2tpeth0"));
    assert!(
        !d.log().contains("cannot delete"),
        "the batch failed: {}",
        d.log()
    );
}

/// `[limits]`: the caps hold for API-created objects with ENOSPC ("No space left on
/// device"), count static ones, change on SIGHUP, and a cap of 0 is refused naming the key.
#[test]
fn limits_refuse_more_tunnels_and_sessions() {
    let ns = Netns::new("limits");
    let dir = std::env::temp_dir().join(unique("limits"));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("limits.toml");
    let config = |limits: &str| {
        format!(
            "[limits]\n{limits}\n\n[[tunnel]]\ntunnel_id = 1\npeer_tunnel_id = 1\nlocal = \"127.0.0.1\"\nremote = \"127.0.0.1\"\nudp_sport = 7821\nudp_dport = 7822\n\n[[tunnel.session]]\nsession_id = 1\npeer_session_id = 1\n"
        )
    };
    std::fs::write(
        &cfg,
        config("max_tunnels = 1\nmax_sessions = 3\nmax_sessions_per_tunnel = 2"),
    )
    .unwrap();
    let mut d = Daemon::start(&ns, &["--config", cfg.to_str().unwrap()]);
    d.ul2tp("add session tunnel_id 1 session_id 2 peer_session_id 2");
    let refused = |d: &Daemon, line: &str| {
        let o = d.cli(&line.split_whitespace().collect::<Vec<_>>());
        assert_eq!(o.status.code(), Some(2), "{line}: {o:?}");
        assert_eq!(
            String::from_utf8_lossy(&o.stderr),
            "RTNETLINK answers: No space left on device\n",
            "{line}"
        );
    };
    refused(&d, "add session tunnel_id 1 session_id 3 peer_session_id 3");
    refused(
        &d,
        "add tunnel tunnel_id 2 peer_tunnel_id 2 encap udp local 127.0.0.1 remote 127.0.0.1 udp_sport 7823 udp_dport 7824",
    );
    assert_eq!(d.session_dump().len(), 2);
    assert_eq!(d.tunnel_dump().len(), 1);

    // Raised on SIGHUP: the next tunnel and sessions fit, up to max_sessions.
    std::fs::write(&cfg, config("max_tunnels = 2\nmax_sessions = 4")).unwrap();
    d.signal("HUP");
    assert!(
        d.wait_for(Duration::from_secs(10), || d.log().contains("reloaded ")),
        "{}",
        d.log()
    );
    d.ul2tp("add session tunnel_id 1 session_id 3 peer_session_id 3");
    d.ul2tp("add tunnel tunnel_id 2 peer_tunnel_id 2 encap udp local 127.0.0.1 remote 127.0.0.1 udp_sport 7823 udp_dport 7824");
    d.ul2tp("add session tunnel_id 2 session_id 4 peer_session_id 4");
    refused(&d, "add session tunnel_id 2 session_id 5 peer_session_id 5");
    // Deleting makes room.
    d.ul2tp("del session tunnel_id 1 session_id 3");
    d.ul2tp("add session tunnel_id 2 session_id 5 peer_session_id 5");
    assert!(d.alive());

    // A cap of 0 is a configuration error naming the file, line and key.
    std::fs::write(&cfg, config("max_sessions = 0")).unwrap();
    let (status, log) = Daemon::start_failing(&ns, &["--config", cfg.to_str().unwrap()]);
    assert!(!status.success());
    assert!(
        log.contains("limits.toml:2") && log.contains("max_sessions") && log.contains("at least 1"),
        "{log}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A daemon stopped with SIGTERM deletes its sessions' devices in batches before it exits
/// (rather than leaving them to be deleted one at a time, 10 ms each, as its descriptors
/// close at exit).
#[test]
fn sigterm_deletes_devices_in_batches() {
    const N: u32 = 300;
    let ns = Netns::new("term");
    let mut d = Daemon::start(&ns, &[]);
    let mut text = String::from(
        "add tunnel tunnel_id 1 peer_tunnel_id 1 encap udp local 127.0.0.1 remote 127.0.0.1 udp_sport 7831 udp_dport 7832\n",
    );
    for i in 1..=N {
        text += &format!("add session tunnel_id 1 session_id {i} peer_session_id {i}\n");
    }
    let file = std::env::temp_dir().join(unique("term-").to_string() + ".txt");
    std::fs::write(&file, text).unwrap();
    d.cli_ok(&["-batch", file.to_str().unwrap()]);
    std::fs::remove_file(&file).unwrap();
    assert_eq!(devices(&ns, "l2tpeth"), N as usize);
    d.signal("TERM");
    assert!(
        wait_until(Duration::from_secs(60), || !d.alive()),
        "{}",
        d.log()
    );
    let log = d.log();
    let stopped = log.find("ul2tpd stopped").expect("a clean stop");
    assert_eq!(reaped(&log[..stopped]), (N as usize, 0), "{log}");
    assert_eq!(devices(&ns, "l2tpeth"), 0);
}

/// `[limits]` towards peers: an LNS at `max_sessions` clears one more negotiated session with
/// CDN Result Code 4, and one at `max_tunnels` one more tunnel with StopCCN Result Code 2 and
/// Error Code 4; the LAC sees both as the peer's doing.
#[test]
fn limits_refuse_negotiated_sessions_and_tunnels() {
    let a = Netns::new("lla");
    let b = Netns::new("llb");
    ul2tp_it::veth(&a, "eth0", &b, "eth0");
    a.ip(&["addr", "add", "192.0.2.1/24", "dev", "eth0"]);
    b.ip(&["addr", "add", "192.0.2.2/24", "dev", "eth0"]);
    let dir = std::env::temp_dir().join(unique("dynlim"));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("a.toml");
    let cb = dir.join("b.toml");
    std::fs::write(
        &ca,
        "[control]\nlisten = \"192.0.2.1:1701\"\nhost_name = \"lac\"\n",
    )
    .unwrap();
    std::fs::write(
        &cb,
        "[control]\nlisten = \"192.0.2.2:1701\"\nhost_name = \"lns\"\n\n[limits]\nmax_tunnels = 1\nmax_sessions = 1\n",
    )
    .unwrap();
    let da = Daemon::start(&a, &["--config", ca.to_str().unwrap()]);
    let db = Daemon::start(&b, &["--config", cb.to_str().unwrap()]);
    let t1 = da.connect_tunnel_id("192.0.2.2");
    assert!(
        wait_until(Duration::from_secs(10), || db.tunnel_dump().len() == 1
            && da.tunnel_dump().iter().any(|t| t.conn_id == Some(t1))),
        "first tunnel: {}",
        db.log()
    );
    da.ul2tp(&format!("connect session tunnel_id {t1}"));
    assert!(
        wait_until(Duration::from_secs(10), || db.session_dump().len() == 1),
        "first session: {}",
        db.log()
    );
    da.ul2tp(&format!("connect session tunnel_id {t1}"));
    assert!(
        wait_until(Duration::from_secs(10), || da
            .log()
            .contains("down: Peer { result_code: 4")),
        "CDN 4 for the second session:\nLAC:\n{}\nLNS:\n{}",
        da.log(),
        db.log()
    );
    assert!(db.log().contains("No space left on device"), "{}", db.log());
    assert_eq!(db.session_dump().len(), 1);
    assert!(wait_until(Duration::from_secs(10), || da
        .session_dump()
        .len()
        == 1));

    // A second tunnel: StopCCN 2 with Error Code 4.
    let t2 = da.connect_tunnel_id("192.0.2.2");
    assert!(
        wait_until(Duration::from_secs(10), || da
            .log()
            .contains("down: Peer { result_code: 2, error_code: Some(4)")),
        "StopCCN 2/4 for tunnel {t2}:\nLAC:\n{}\nLNS:\n{}",
        da.log(),
        db.log()
    );
    assert_eq!(db.tunnel_dump().len(), 1);
    assert!(wait_until(Duration::from_secs(10), || !da
        .tunnel_dump()
        .iter()
        .any(|t| t.conn_id == Some(t2))));
    let _ = std::fs::remove_dir_all(&dir);
}
