//! The management API against a real daemon: every error path of docs/reference/kernel.md §4.10 that
//! applies to unmanaged tunnels and Ethernet sessions, notifications, dumps, permissions, and
//! the static configuration file.

use std::io::Write;

use ul2tp::ClientError;
use ul2tp_api::{pw_type, Attrs, Command, Errno};
use ul2tp_it::{eth_session, loopback_tunnel, unique, Daemon, Netns};

fn errno(r: Result<ul2tp_api::ServerMessage, ClientError>) -> Errno {
    match r {
        Err(ClientError::Api(e)) => e.errno,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[test]
fn error_paths_of_the_kernel() {
    let ns = Netns::new("api");
    let d = Daemon::start(&ns, &[]);
    let mut c = d.client();
    let ok = |c: &mut ul2tp::Client, cmd, a| c.request(cmd, a, false).expect("request failed");

    // Missing required attributes: EINVAL (§4.5).
    for missing in ["conn_id", "peer_conn_id", "proto_version", "encap_type"] {
        let mut a = loopback_tunnel(10, 20, 7000);
        match missing {
            "conn_id" => a.conn_id = None,
            "peer_conn_id" => a.peer_conn_id = None,
            "proto_version" => a.proto_version = None,
            _ => a.encap_type = None,
        }
        assert_eq!(
            errno(c.request(Command::TunnelCreate, a, false)),
            Errno::EINVAL,
            "{missing}"
        );
    }
    // Bad encap: EINVAL; no address pair: EINVAL.
    let mut a = loopback_tunnel(10, 20, 7000);
    a.encap_type = Some(7);
    assert_eq!(
        errno(c.request(Command::TunnelCreate, a, false)),
        Errno::EINVAL
    );
    let mut a = loopback_tunnel(10, 20, 7000);
    a.ip_daddr = None;
    assert_eq!(
        errno(c.request(Command::TunnelCreate, a, false)),
        Errno::EINVAL
    );

    ok(&mut c, Command::TunnelCreate, loopback_tunnel(10, 20, 7000));
    // Duplicate tunnel id: EEXIST.
    assert_eq!(
        errno(c.request(Command::TunnelCreate, loopback_tunnel(10, 20, 7100), false)),
        Errno::EEXIST
    );
    // Unknown tunnel: ENODEV for get, delete, modify and session create.
    let t99 = Attrs {
        conn_id: Some(99),
        ..Attrs::default()
    };
    for cmd in [
        Command::TunnelGet,
        Command::TunnelDelete,
        Command::TunnelModify,
    ] {
        assert_eq!(
            errno(c.request(cmd, t99.clone(), false)),
            Errno::ENODEV,
            "{cmd:?}"
        );
    }
    assert_eq!(
        errno(c.request(Command::SessionCreate, eth_session(99, 1), false)),
        Errno::ENODEV
    );
    // Session create without conn_id: EINVAL; without session ids or pw_type: EINVAL.
    let mut s = eth_session(10, 1);
    s.conn_id = None;
    assert_eq!(
        errno(c.request(Command::SessionCreate, s, false)),
        Errno::EINVAL
    );
    let mut s = eth_session(10, 1);
    s.pw_type = None;
    assert_eq!(
        errno(c.request(Command::SessionCreate, s, false)),
        Errno::EINVAL
    );
    // pw_type >= 12: EINVAL; not implemented: EPROTONOSUPPORT; bad l2spec: EINVAL.
    let mut s = eth_session(10, 1);
    s.pw_type = Some(12);
    assert_eq!(
        errno(c.request(Command::SessionCreate, s, false)),
        Errno::EINVAL
    );
    let mut s = eth_session(10, 1);
    s.pw_type = Some(pw_type::IP);
    assert_eq!(
        errno(c.request(Command::SessionCreate, s, false)),
        Errno::EPROTONOSUPPORT
    );
    let mut s = eth_session(10, 1);
    s.l2spec_type = Some(5);
    assert_eq!(
        errno(c.request(Command::SessionCreate, s, false)),
        Errno::EINVAL
    );
    // Cookie longer than 8 bytes: rejected (ERANGE).
    let mut s = eth_session(10, 1);
    s.cookie = Some("001122334455667788".into());
    assert_eq!(
        errno(c.request(Command::SessionCreate, s, false)),
        Errno::ERANGE
    );

    // Interface names: 15 bytes at most (ERANGE), no '/' (EINVAL).
    let mut s = eth_session(10, 1);
    s.ifname = Some("0123456789abcdef".into());
    assert_eq!(
        errno(c.request(Command::SessionCreate, s, false)),
        Errno::ERANGE
    );
    let mut s = eth_session(10, 1);
    s.ifname = Some("a/b".into());
    assert_eq!(
        errno(c.request(Command::SessionCreate, s, false)),
        Errno::EINVAL
    );

    let name = unique("e");
    let mut s = eth_session(10, 1);
    s.ifname = Some(name.clone());
    ok(&mut c, Command::SessionCreate, s);
    assert!(ns.has_link(&name));
    // Duplicate session id: EEXIST; interface name taken: EEXIST.
    assert_eq!(
        errno(c.request(Command::SessionCreate, eth_session(10, 1), false)),
        Errno::EEXIST
    );
    let mut s = eth_session(10, 2);
    s.ifname = Some(name.clone());
    assert_eq!(
        errno(c.request(Command::SessionCreate, s, false)),
        Errno::EEXIST
    );
    // L2TPv3 session ids are unique across IP-encap tunnels and any other tunnel (§5.2).
    let mut ipt = loopback_tunnel(11, 21, 0);
    ipt.encap_type = Some(1);
    ipt.udp_sport = None;
    ipt.udp_dport = None;
    ok(&mut c, Command::TunnelCreate, ipt);
    assert_eq!(
        errno(c.request(Command::SessionCreate, eth_session(11, 1), false)),
        Errno::EEXIST
    );
    // ...but two UDP tunnels may both have session 5.
    ok(&mut c, Command::TunnelCreate, loopback_tunnel(12, 22, 7200));
    ok(&mut c, Command::SessionCreate, eth_session(10, 5));
    ok(&mut c, Command::SessionCreate, eth_session(12, 5));

    // Session lookups that miss: ENODEV (not EINVAL), also with missing attributes (§4.7).
    for cmd in [
        Command::SessionGet,
        Command::SessionDelete,
        Command::SessionModify,
    ] {
        assert_eq!(
            errno(c.request(
                cmd,
                Attrs {
                    conn_id: Some(10),
                    session_id: Some(77),
                    ..Attrs::default()
                },
                false
            )),
            Errno::ENODEV
        );
        assert_eq!(
            errno(c.request(
                cmd,
                Attrs {
                    conn_id: Some(10),
                    ..Attrs::default()
                },
                false
            )),
            Errno::ENODEV
        );
    }
    // Lookup by ifname wins over ids.
    let r = ok(
        &mut c,
        Command::SessionGet,
        Attrs {
            ifname: Some(name.clone()),
            conn_id: Some(99),
            ..Attrs::default()
        },
    );
    assert_eq!(r.attrs.unwrap().session_id, Some(1));

    // v2 tunnel: only PPP sessions (EPROTONOSUPPORT for ETH).
    let mut v2 = loopback_tunnel(13, 23, 7300);
    v2.proto_version = Some(2);
    ok(&mut c, Command::TunnelCreate, v2);
    assert_eq!(
        errno(c.request(Command::SessionCreate, eth_session(13, 9), false)),
        Errno::EPROTONOSUPPORT
    );

    // Dumps are ordered by tunnel id, then session id.
    // A get without conn_id is EINVAL (the doit form needs it, §4.7).
    assert_eq!(
        errno(c.request(Command::TunnelGet, Attrs::default(), false)),
        Errno::EINVAL
    );
    let dump = c
        .request(Command::TunnelGet, Attrs::default(), true)
        .unwrap()
        .entries
        .unwrap();
    let ids: Vec<u32> = dump.iter().map(|a| a.conn_id.unwrap()).collect();
    assert_eq!(ids, vec![10, 11, 12, 13]);
    let dump = c
        .request(Command::SessionGet, Attrs::default(), true)
        .unwrap()
        .entries
        .unwrap();
    let ids: Vec<(u32, u32)> = dump
        .iter()
        .map(|a| (a.conn_id.unwrap(), a.session_id.unwrap()))
        .collect();
    assert_eq!(ids, vec![(10, 1), (10, 5), (12, 5)]);

    // Deleting a tunnel removes its sessions and their devices.
    ok(
        &mut c,
        Command::TunnelDelete,
        Attrs {
            conn_id: Some(10),
            ..Attrs::default()
        },
    );
    assert!(ns.wait_link(&name, false, std::time::Duration::from_secs(5)));
    let dump = c
        .request(Command::SessionGet, Attrs::default(), true)
        .unwrap()
        .entries
        .unwrap();
    assert_eq!(dump.len(), 1);

    // Malformed requests get EINVAL and the connection stays usable.
    let mut raw = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
    raw.write_all(b"{not json}\n").unwrap();
    raw.write_all(b"{\"seq\":5,\"cmd\":\"noop\"}\n").unwrap();
    let mut rd = std::io::BufReader::new(raw);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut rd, &mut line).unwrap();
    assert!(line.contains("EINVAL"), "{line}");
    line.clear();
    std::io::BufRead::read_line(&mut rd, &mut line).unwrap();
    assert!(
        line.contains("\"seq\":5") && !line.contains("error"),
        "{line}"
    );
}

#[test]
fn notifications_reach_monitors() {
    let ns = Netns::new("mon");
    let d = Daemon::start(&ns, &[]);
    let mut m = d.client();
    m.request(Command::Monitor, Attrs::default(), false)
        .unwrap();
    d.ul2tp("add tunnel tunnel_id 30 peer_tunnel_id 40 local 127.0.0.1 remote 127.0.0.1 udp_sport 7400 udp_dport 7401");
    d.ul2tp("add session tunnel_id 30 session_id 3 peer_session_id 4");
    d.ul2tp("modify session tunnel_id 30 session_id 3 seq send");
    d.ul2tp("del tunnel tunnel_id 30");
    let mut got = Vec::new();
    for _ in 0..4 {
        let e = m.next_message().unwrap();
        got.push((e.event.unwrap(), e.attrs.unwrap()));
    }
    assert_eq!(
        got.iter().map(|g| g.0).collect::<Vec<_>>(),
        vec![
            Command::TunnelCreate,
            Command::SessionCreate,
            Command::SessionModify,
            Command::TunnelDelete
        ]
    );
    assert_eq!(got[0].1.udp_sport, Some(7400));
    assert_eq!(got[2].1.send_seq, Some(1));
}

/// Without `[api] group`/`read_group` the API socket is root's alone (mode 0600): an
/// unprivileged user cannot even connect (EACCES) and `ul2tp` says why, exit status 1.
#[test]
fn unprivileged_users_cannot_connect_without_a_group() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let ns = Netns::new("perm");
    let d = Daemon::start(&ns, &[]);
    let meta = std::fs::metadata(&d.socket).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.uid(), 0);
    let out = d.ul2tp_as_nobody(
        "add tunnel tunnel_id 1 peer_tunnel_id 2 local 127.0.0.1 remote 127.0.0.1 udp_sport 1 udp_dport 2",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot connect") && err.contains("Permission denied (os error 13)"),
        "{err}"
    );
    assert!(err.contains("[api] group"), "{err}");
    assert!(d.tunnel_dump().is_empty());
}

#[test]
fn static_config_creates_objects_and_errors_name_file_line_key() {
    let ns = Netns::new("cfg");
    let dir = std::env::temp_dir().join(unique("cfg"));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.toml");
    let ifname = unique("c");
    std::fs::write(
        &good,
        format!(
            "[[tunnel]]\ntunnel_id = 3000\npeer_tunnel_id = 4000\nlocal = \"127.0.0.1\"\nremote = \"127.0.0.1\"\nudp_sport = 7500\nudp_dport = 7501\n\n[[tunnel.session]]\nsession_id = 1000\npeer_session_id = 2000\nname = \"{ifname}\"\ncookie = \"00112233\"\n"
        ),
    )
    .unwrap();
    let d = Daemon::start(&ns, &["--config", good.to_str().unwrap()]);
    assert!(ns.has_link(&ifname));
    let out = d.ul2tp("show session");
    assert!(out.contains("Session 1000 in tunnel 3000"), "{out}");
    assert!(out.contains("cookie 00112233"), "{out}");
    drop(d);

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[[tunnel]]\ntunnel_id = 1\npeer_tunnel_id = 2\nlocal = \"127.0.0.1\"\nremote = \"127.0.0.1\"\nudp_sport = 1\nudp_dprot = 2\n").unwrap();
    let (status, err) = Daemon::start_failing(&ns, &["--config", bad.to_str().unwrap()]);
    assert!(!status.success());
    assert!(
        err.contains("bad.toml:7") && err.contains("udp_dprot"),
        "{err}"
    );

    let (status, err) = Daemon::start_failing(
        &ns,
        &["--config", dir.join("missing.toml").to_str().unwrap()],
    );
    assert!(!status.success());
    assert!(
        err.contains("missing.toml") && err.contains("cannot read"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn configured_groups_may_read_or_change_state() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let ns = Netns::new("grp");
    let dir = std::env::temp_dir().join(unique("grp"));
    std::fs::create_dir_all(&dir).unwrap();
    let add = "add tunnel tunnel_id 5 peer_tunnel_id 6 local 127.0.0.1 remote 127.0.0.1 udp_sport 7600 udp_dport 7601";

    // read_group: show works, add is EPERM.
    let cfg = dir.join("read.toml");
    std::fs::write(&cfg, "[api]\nread_group = \"nogroup\"\n").unwrap();
    let d = Daemon::start(&ns, &["--config", cfg.to_str().unwrap()]);
    // The socket is open to the group only: 0660, group nogroup (65534).
    let meta = std::fs::metadata(&d.socket).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!((meta.uid(), meta.gid()), (0, 65534));
    let show = d.ul2tp_as_nobody("show tunnel");
    assert!(
        show.status.success(),
        "{}",
        String::from_utf8_lossy(&show.stderr)
    );
    let out = d.ul2tp_as_nobody(add);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Operation not permitted"));
    drop(d);

    // group: add works too.
    let cfg = dir.join("admin.toml");
    std::fs::write(&cfg, "[api]\ngroup = \"nogroup\"\n").unwrap();
    let d = Daemon::start(&ns, &["--config", cfg.to_str().unwrap()]);
    let out = d.ul2tp_as_nobody(add);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(d.ul2tp("show tunnel").contains("Tunnel 5, encap UDP"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `[metrics]`: GET /metrics returns the counters of every tunnel and session in the
/// Prometheus text format; other paths are 404 (tests/metrics.rs checks the rest).
#[test]
fn prometheus_metrics() {
    let ns = Netns::new("met");
    let dir = std::env::temp_dir().join(unique("met"));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("m.toml");
    std::fs::write(&cfg, "[metrics]\nlisten = \"127.0.0.1:9650\"\n").unwrap();
    let d = Daemon::start(&ns, &["--config", cfg.to_str().unwrap()]);
    d.ul2tp("add tunnel tunnel_id 3000 peer_tunnel_id 4000 local 127.0.0.1 remote 127.0.0.1 udp_sport 7800 udp_dport 7801");
    d.ul2tp("add session tunnel_id 3000 session_id 1000 peer_session_id 2000 name met0");
    let get = |path: &'static str| -> String {
        ns.run_in(move || {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect("127.0.0.1:9650").expect("connect to metrics");
            write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        })
    };
    let body = get("/metrics");
    assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
    for want in [
        "ul2tp_tunnels 1",
        "ul2tp_sessions 1",
        "# TYPE ul2tp_session_rx_cookie_discards_total counter",
        "ul2tp_tunnel_tx_packets_total{tunnel_id=\"3000\"} 0",
        "ul2tp_session_rx_errors_total{tunnel_id=\"3000\",session_id=\"1000\",ifname=\"met0\"} 0",
    ] {
        assert!(body.contains(want), "missing {want:?} in:\n{body}");
    }
    assert!(!body.contains("# EOF"));
    assert!(get("/nothing").starts_with("HTTP/1.1 404"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The extension commands fail like the others for a caller without privilege: EPERM on
/// stderr, nothing on stdout, exit status 2 (a refused request); `show` dumps exit 1.
#[test]
fn unprivileged_debug_monitor_trace_exit_non_zero() {
    let ns = Netns::new("permx");
    let d = Daemon::start(&ns, &[]);
    d.ul2tp("add tunnel tunnel_id 1 peer_tunnel_id 2 local 127.0.0.1 remote 127.0.0.1 udp_sport 7650 udp_dport 7651");
    // An administrator who opens the socket to everyone: the per-request checks still refuse.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&d.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    for args in [
        "debug tunnels",
        "debug pppol2tp",
        "monitor",
        "-j monitor",
        "trace on tunnel_id 1",
        "trace off tunnel_id 1 session_id 2",
        "-j debug tunnels",
    ] {
        let out = d.ul2tp_as_nobody(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "ul2tp {args:?}: {err}");
        assert!(
            err.contains("Operation not permitted"),
            "ul2tp {args:?}: {err}"
        );
        assert!(
            out.stdout.is_empty(),
            "ul2tp {args:?} printed {:?}",
            out.stdout
        );
    }
    for args in ["show tunnel", "show session"] {
        let out = d.ul2tp_as_nobody(args);
        assert_eq!(out.status.code(), Some(1), "ul2tp {args:?}");
    }
}

/// `ul2tp -n NAME` reaches the daemon started with `ip netns exec NAME ul2tpd` and no
/// `--socket`: that daemon serves `/run/ul2tp/netns/NAME.sock` (docs/cli.md "Network
/// namespaces"), and so does a client run under `ip netns exec NAME`.
#[test]
fn netns_option_reaches_the_daemon_of_that_namespace() {
    use std::process::{Command as Proc, Stdio};
    use std::time::{Duration, Instant};

    /// The daemon, killed by PID on drop.
    struct Killed(std::process::Child, std::path::PathBuf);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
            let _ = std::fs::remove_file(&self.1);
        }
    }

    let ns = Netns::new("nsopt");
    let socket = ul2tp_api::netns_socket_path(&ns.name);
    let child = ns
        .cmd(ul2tp_it::bin("ul2tpd"))
        .args(["--log", "warn"])
        .env_remove(ul2tp_api::SOCKET_ENV)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ul2tpd");
    let mut daemon = Killed(child, socket.clone());
    let end = Instant::now() + Duration::from_secs(10);
    while ul2tp::Client::connect(&socket).is_err() {
        assert!(
            matches!(daemon.0.try_wait(), Ok(None)),
            "ul2tpd exited early"
        );
        assert!(
            Instant::now() < end,
            "ul2tpd did not serve {}",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let ul2tp = |line: &str| {
        let o = ul2tp_it::run(
            Proc::new(ul2tp_it::bin("ul2tp"))
                .args(["-n", &ns.name])
                .args(line.split_whitespace())
                .env_remove(ul2tp_api::SOCKET_ENV),
        );
        assert!(
            o.status.success(),
            "ul2tp -n {} {line}: {}",
            ns.name,
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    ul2tp(
        "add tunnel tunnel_id 7001 peer_tunnel_id 7002 local 127.0.0.1 remote 127.0.0.1 \
         udp_sport 17001 udp_dport 17002",
    );
    let shown = ul2tp("show tunnel");
    assert!(
        shown.starts_with("Tunnel 7001, encap UDP\n  From 127.0.0.1 to 127.0.0.1\n"),
        "{shown}"
    );
    // The daemon really runs in that namespace: its tunnel socket is bound there.
    let ss = ns.cmd("ss").args(["-uan"]).output().expect("ss");
    assert!(
        String::from_utf8_lossy(&ss.stdout).contains(":17001"),
        "{}",
        String::from_utf8_lossy(&ss.stdout)
    );
    // A client under `ip netns exec NAME` finds the same daemon without -n or --socket.
    let o = ul2tp_it::run(
        ns.cmd(ul2tp_it::bin("ul2tp"))
            .args(["show", "tunnel"])
            .env_remove(ul2tp_api::SOCKET_ENV),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), shown);
    drop(daemon);
}
