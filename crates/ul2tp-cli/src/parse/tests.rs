//! Unit tests of the `ip l2tp` grammar: every command form, defaults and errors.

use super::*;

fn args(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

fn ok(s: &str) -> Invocation {
    let mut w = Vec::new();
    parse(&args(s), &mut w).unwrap_or_else(|e| panic!("{s}: {e:?}"))
}

fn err(s: &str) -> CliError {
    let mut w = Vec::new();
    parse(&args(s), &mut w).expect_err(s)
}

fn add_tunnel(s: &str) -> Attrs {
    match ok(s).action {
        Action::Add {
            tunnel: Some(t),
            session: None,
        } => *t,
        a => panic!("{a:?}"),
    }
}

fn add_session(s: &str) -> Attrs {
    match ok(s).action {
        Action::Add {
            tunnel: None,
            session: Some(t),
        } => *t,
        a => panic!("{a:?}"),
    }
}

const T: &str = "add tunnel tunnel_id 3000 peer_tunnel_id 4000 local 192.0.2.1 remote 192.0.2.2 udp_sport 5000 udp_dport 6000";

#[test]
fn connect_and_disconnect() {
    let inv = ok("connect remote 192.0.2.2 version 3");
    let Action::Control(Command::ControlConnect, a) = inv.action else {
        panic!("not a control action")
    };
    assert_eq!(a.ip_daddr, Some("192.0.2.2".parse().unwrap()));
    assert_eq!((a.proto_version, a.udp_dport), (Some(3), None));
    let inv = ok("connect session tunnel_id 7 name pw1");
    let Action::Control(Command::ControlSession, a) = inv.action else {
        panic!("not a control action")
    };
    assert_eq!((a.conn_id, a.ifname.as_deref()), (Some(7), Some("pw1")));
    let inv = ok("disconnect tunnel_id 7 session_id 9");
    let Action::Control(Command::ControlDisconnect, a) = inv.action else {
        panic!("not a control action")
    };
    assert_eq!((a.conn_id, a.session_id), (Some(7), Some(9)));
    assert!(parse(&args("connect udp_dport 1701"), &mut Vec::new()).is_err());
    assert!(parse(&args("disconnect"), &mut Vec::new()).is_err());
}

#[test]
fn connect_over_ip_and_ipv6_and_vlan_sessions() {
    let inv = ok("connect remote 2001:db8::2 encap ip");
    let Action::Control(Command::ControlConnect, a) = inv.action else {
        panic!("not a control action")
    };
    assert_eq!(a.ip6_daddr, Some("2001:db8::2".parse().unwrap()));
    assert_eq!((a.encap_type, a.udp_dport), (Some(encap_type::IP), None));
    let inv = ok("connect remote 192.0.2.2 encap udp");
    let Action::Control(Command::ControlConnect, a) = inv.action else {
        panic!("not a control action")
    };
    assert_eq!(a.encap_type, None, "UDP is the default, not sent");
    let e = parse(
        &args("connect remote 192.0.2.2 encap ip version 2"),
        &mut Vec::new(),
    )
    .unwrap_err();
    assert!(e.stderr.contains("UDP only"), "{}", e.stderr);
    assert!(parse(
        &args("connect remote 192.0.2.2 encap ip udp_dport 1701"),
        &mut Vec::new()
    )
    .is_err());
    let inv = ok("connect session tunnel_id 7 pw_type eth_vlan vlan_id 100");
    let Action::Control(Command::ControlSession, a) = inv.action else {
        panic!("not a control action")
    };
    assert_eq!((a.pw_type, a.vlan_id), (Some(pw_type::ETH_VLAN), Some(100)));
    assert!(parse(
        &args("connect session tunnel_id 7 pw_type eth_vlan"),
        &mut Vec::new()
    )
    .is_err());
    assert!(parse(
        &args("connect session tunnel_id 7 vlan_id 100"),
        &mut Vec::new()
    )
    .is_err());
}

#[test]
fn wait_dial_and_hangup() {
    let Action::Control(Command::ControlConnect, a) =
        ok("connect remote 192.0.2.2 wait version 2").action
    else {
        panic!("not a control action")
    };
    assert_eq!((a.wait, a.proto_version), (Some(true), Some(2)));
    let Action::Control(Command::ControlConnect, a) = ok("connect remote 192.0.2.2").action else {
        panic!("not a control action")
    };
    assert_eq!(a.wait, None);
    let Action::Control(Command::ControlSession, a) =
        ok("connect session tunnel_id 7 pw_type ppp wait").action
    else {
        panic!("not a control action")
    };
    assert_eq!((a.conn_id, a.wait), (Some(7), Some(true)));
    let Action::Control(Command::Dial, a) = ok("dial isp wait").action else {
        panic!("not a dial")
    };
    assert_eq!((a.profile.as_deref(), a.wait), (Some("isp"), Some(true)));
    let Action::Control(Command::Hangup, a) = ok("hangup isp").action else {
        panic!("not a hangup")
    };
    assert_eq!((a.profile.as_deref(), a.wait), (Some("isp"), None));
    assert_eq!(ok("show lac").action, Action::ShowLac(None));
    assert_eq!(
        ok("show lac isp").action,
        Action::ShowLac(Some("isp".into()))
    );
    for bad in [
        "dial",
        "hangup",
        "hangup isp wait",
        "dial isp now",
        "dial isp wait x",
        "show lac a b",
    ] {
        assert!(parse(&args(bad), &mut Vec::new()).is_err(), "{bad}");
    }
}

#[test]
fn add_tunnel_udp4_defaults() {
    let a = add_tunnel(T);
    assert_eq!(
        a,
        Attrs {
            conn_id: Some(3000),
            peer_conn_id: Some(4000),
            proto_version: Some(3),
            encap_type: Some(0),
            ip_saddr: Some("192.0.2.1".parse().unwrap()),
            ip_daddr: Some("192.0.2.2".parse().unwrap()),
            udp_sport: Some(5000),
            udp_dport: Some(6000),
            ..Attrs::default()
        }
    );
}

#[test]
fn add_tunnel_ip6_and_checksum_flags() {
    let a = add_tunnel(
        "add tunnel tid 1 ptid 2 local 2001:db8::1 remote 2001:db8::2 udp_sport 1 udp_dport 2 udp_csum on udp6_csum_tx off udp6_csum_rx off",
    );
    assert_eq!(a.ip6_saddr, Some("2001:db8::1".parse().unwrap()));
    assert_eq!(a.ip6_daddr, Some("2001:db8::2".parse().unwrap()));
    assert_eq!(a.ip_saddr, None);
    assert_eq!(a.udp_csum, Some(1));
    assert_eq!(a.udp_zero_csum6_tx, Some(true));
    assert_eq!(a.udp_zero_csum6_rx, Some(true));

    let a =
        add_tunnel("add tunnel tid 1 ptid 2 local 10.0.0.1 remote 10.0.0.2 encap ip udp_sport 7");
    assert_eq!(a.encap_type, Some(1));
    assert_eq!(a.udp_sport, None, "ports are only sent for udp");
    assert_eq!(a.udp_csum, None);
}

#[test]
fn add_tunnel_version_extension() {
    let a = add_tunnel(&format!("{T} version 2"));
    assert_eq!(a.proto_version, Some(2));
    let e = err("add tunnel tid 1 ptid 2 local 10.0.0.1 remote 10.0.0.2 encap ip version 2");
    assert_eq!(
        e.stderr,
        "Error: argument \"2\" is wrong: L2TPv2 requires encap udp\n"
    );
    assert_eq!(e.code, 255);
    let e = err(&format!("{T} version 4"));
    assert_eq!(
        e.stderr,
        "Error: argument \"4\" is wrong: version must be 2 or 3\n"
    );
    let e = err("add tunnel tid 70000 ptid 2 local 10.0.0.1 remote 10.0.0.2 udp_sport 1 udp_dport 1 version 2");
    assert!(e.stderr.contains("\"70000\""), "{}", e.stderr);
}

#[test]
fn add_session_defaults_and_options() {
    let a = add_session("add session tunnel_id 3000 session_id 1 peer_session_id 2");
    assert_eq!(
        a,
        Attrs {
            conn_id: Some(3000),
            peer_conn_id: Some(0),
            session_id: Some(1),
            peer_session_id: Some(2),
            pw_type: Some(5),
            l2spec_type: Some(1),
            l2spec_len: Some(4),
            ..Attrs::default()
        }
    );
    let a = add_session(
        "add session name l2tp9 tid 0x10 sid 010 psid 3 ptid 9 cookie 0A0b0C0d peer_cookie 0011223344556677 seq both l2spec_type NONE",
    );
    assert_eq!(a.conn_id, Some(16));
    assert_eq!(a.session_id, Some(8));
    assert_eq!(a.peer_conn_id, Some(9));
    assert_eq!(a.ifname.as_deref(), Some("l2tp9"));
    assert_eq!(a.cookie.as_deref(), Some("0a0b0c0d"));
    assert_eq!(a.peer_cookie.as_deref(), Some("0011223344556677"));
    assert_eq!((a.send_seq, a.recv_seq), (Some(1), Some(1)));
    assert_eq!((a.l2spec_type, a.l2spec_len), (Some(0), Some(0)));
    let a = add_session("add session tid 1 sid 1 psid 1 seq send seq recv");
    assert_eq!((a.send_seq, a.recv_seq), (Some(1), Some(1)));
    let a = add_session("add session tid 1 sid 1 psid 1 seq recv");
    assert_eq!((a.send_seq, a.recv_seq), (None, Some(1)));
    let a = add_session("add session tid 1 sid 1 psid 1 seq both seq none");
    assert_eq!((a.send_seq, a.recv_seq), (None, None));
}

#[test]
fn add_session_extensions() {
    let a =
        add_session("add session tid 1 sid 2 psid 3 pw_type ppp reorder_timeout 100 lns_mode on");
    assert_eq!(a.pw_type, Some(7));
    assert_eq!(a.recv_timeout, Some(100));
    assert_eq!(a.lns_mode, Some(1));
    let a = add_session("add session tid 1 sid 2 psid 3 pw_type eth_vlan vlan_id 100");
    assert_eq!((a.pw_type, a.vlan_id), (Some(4), Some(100)));
    let a = add_session("add session tid 1 sid 2 psid 3 reorder_timeout 0 lns_mode off");
    assert_eq!((a.recv_timeout, a.lns_mode), (None, Some(0)));
    assert_eq!(
        err("add session tid 1 sid 2 psid 3 pw_type eth_vlan").stderr,
        "Error: argument \"vlan_id\" is required\n"
    );
    assert_eq!(
        err("add session tid 1 sid 2 psid 3 vlan_id 5").stderr,
        "Error: argument \"5\" is wrong: vlan_id needs pw_type eth_vlan\n"
    );
    assert_eq!(
        err("add session tid 1 sid 2 psid 3 pw_type eth_vlan vlan_id 4096").stderr,
        "Error: argument \"4096\" is wrong: invalid VLAN id (0..4095)\n"
    );
    assert_eq!(
        err("add session tid 1 sid 2 psid 3 pw_type atm").stderr,
        "Unknown pseudowire type \"atm\"\n"
    );
    assert_eq!(
        err("add session tid 1 sid 2 psid 3 lns_mode maybe").stderr,
        "Error: argument \"maybe\" is wrong: invalid option for lns_mode\n"
    );
}

#[test]
fn add_both() {
    match ok(&format!("{T} session session_id 1 peer_session_id 2")).action {
        Action::Add {
            tunnel: Some(t),
            session: Some(s),
        } => {
            assert_eq!(t.conn_id, Some(3000));
            assert_eq!(s.conn_id, Some(3000));
            assert_eq!(s.peer_conn_id, Some(4000));
        }
        a => panic!("{a:?}"),
    }
}

#[test]
fn missing_arguments_in_iproute2_order() {
    let cases = [
        ("add tunnel_id 1", "tunnel or session"),
        ("add tunnel", "tunnel_id"),
        ("add session tunnel_id 0", "tunnel_id"),
        ("add session tunnel_id 1 session_id 1", "peer_session_id"),
        ("add session tunnel_id 1 peer_session_id 1", "session_id"),
        ("add tunnel tunnel_id 1", "peer_tunnel_id"),
        ("add tunnel tunnel_id 1 peer_tunnel_id 1", "local"),
        ("add tunnel tunnel_id 1 peer_tunnel_id 1 local any", "local"),
        (
            "add tunnel tunnel_id 1 peer_tunnel_id 1 local 1.1.1.1",
            "remote",
        ),
        (
            "add tunnel tunnel_id 1 peer_tunnel_id 1 local 1.1.1.1 remote any",
            "remote",
        ),
        (
            "add tunnel tunnel_id 1 peer_tunnel_id 1 local 1.1.1.1 remote 2.2.2.2",
            "udp_sport",
        ),
        (
            "add tunnel tunnel_id 1 peer_tunnel_id 1 local 1.1.1.1 remote 2.2.2.2 udp_sport 1",
            "udp_dport",
        ),
        ("del tunnel_id 1", "tunnel or session"),
        ("del tunnel", "tunnel_id"),
        ("del session tunnel_id 1", "session_id"),
        ("show tunnel_id 1", "tunnel or session"),
        ("modify tunnel", "tunnel_id"),
        ("modify session tid 1", "session_id"),
        ("trace on", "tunnel_id"),
    ];
    for (line, key) in cases {
        let e = err(line);
        assert_eq!(
            e.stderr,
            format!("Error: argument \"{key}\" is required\n"),
            "{line}"
        );
        assert_eq!(e.code, 255, "{line}");
    }
}

#[test]
fn bad_values() {
    let cases = [
        (
            "add tunnel tunnel_id x",
            "Error: argument \"x\" is wrong: invalid ID\n\n",
        ),
        (
            "add tunnel tid 4294967296",
            "Error: argument \"4294967296\" is wrong: invalid ID\n\n",
        ),
        (
            "add tunnel ptid -1",
            "Error: argument \"-1\" is wrong: invalid ID\n\n",
        ),
        (
            "add session sid 08",
            "Error: argument \"08\" is wrong: invalid ID\n\n",
        ),
        (
            "add session psid 1x",
            "Error: argument \"1x\" is wrong: invalid ID\n\n",
        ),
        (
            "add tunnel udp_sport 65536",
            "Error: argument \"65536\" is wrong: invalid port\n\n",
        ),
        (
            "add tunnel udp_dport p",
            "Error: argument \"p\" is wrong: invalid port\n\n",
        ),
        (
            "add tunnel udp_csum yes",
            "Error: argument \"yes\" is wrong: invalid option for udp_csum\n\n",
        ),
        (
            "add tunnel udp6_csum_tx 1",
            "Error: argument \"1\" is wrong: invalid option for udp6_csum_tx\n\n",
        ),
        (
            "add tunnel udp6_csum_rx 0",
            "Error: argument \"0\" is wrong: invalid option for udp6_csum_rx\n\n",
        ),
        (
            "add session cookie 1234",
            "Error: argument \"1234\" is wrong: cookie must be either 8 or 16 hex digits\n\n",
        ),
        (
            "add session peer_cookie 123456789",
            "Error: argument \"123456789\" is wrong: cookie must be either 8 or 16 hex digits\n\n",
        ),
        (
            "add session cookie 1234567g",
            "Error: argument \"1234567g\" is wrong: cookie must be a hex string\n\n",
        ),
        (
            "add session name a/b",
            "Error: argument \"a/b\" is wrong: \"name\" not a valid ifname\n",
        ),
        (
            "add session name 0123456789abcdef",
            "Error: argument \"0123456789abcdef\" is wrong: \"name\" not a valid ifname\n",
        ),
        (
            "add session name ..",
            "Error: argument \"..\" is wrong: \"name\" not a valid ifname\n",
        ),
        (
            "add tunnel encap gre",
            "Unknown tunnel encapsulation \"gre\"\n",
        ),
        (
            "add session l2spec_type cisco",
            "Unknown layer2specific header type \"cisco\"\n",
        ),
        ("add session seq all", "Unknown seq value \"all\"\n"),
        (
            "add tunnel tunnel_id",
            "Command line is not complete. Try option \"help\"\n",
        ),
        (
            "bogus",
            "Command \"bogus\" is unknown, try \"ul2tp help\".\n",
        ),
        (
            "-z show tunnel",
            "Option \"-z\" is unknown, try \"ul2tp help\".\n",
        ),
        (
            "trace maybe tid 1",
            "Error: argument \"maybe\" is wrong: expected on or off\n",
        ),
    ];
    for (line, text) in cases {
        let e = err(line);
        assert_eq!(e.stderr, text, "{line}");
        assert_eq!(e.code, 255, "{line}");
    }
}

#[test]
fn bad_addresses_exit_1() {
    let e = err("add tunnel local 1.2.3.999");
    assert_eq!(
        e.stderr,
        "Error: any valid address is expected rather than \"1.2.3.999\".\n"
    );
    assert_eq!(e.code, 1);
    let e = err("add tunnel remote fe80::zz");
    assert_eq!(
        e.stderr,
        "Error: any valid address is expected rather than \"fe80::zz\".\n"
    );
    assert_eq!(e.code, 1);
}

#[test]
fn usage_and_unknown_keywords() {
    for line in [
        "",
        "help",
        "h",
        "add",
        "add help",
        "show tunnel he",
        "-help",
    ] {
        let e = err(line);
        assert_eq!(e.stderr, USAGE, "{line:?}");
        assert_eq!(e.code, 255);
    }
    let e = err("add tunnel frobnicate 1");
    assert_eq!(e.stderr, format!("Unknown command: frobnicate\n{USAGE}"));
    assert_eq!(e.code, 255);
    let e = err("debug sessions");
    assert_eq!(e.stderr, format!("Unknown command: sessions\n{USAGE}"));
    let e = err("monitor now");
    assert_eq!(e.stderr, format!("Unknown command: now\n{USAGE}"));
}

#[test]
fn offset_warnings() {
    let mut w = Vec::new();
    let inv = parse(
        &args("add session tid 1 sid 2 psid 3 offset 8 peer_offset 16"),
        &mut w,
    )
    .unwrap();
    assert!(matches!(inv.action, Action::Add { .. }));
    assert_eq!(
        w,
        vec![
            "Ignoring option \"offset\"\n".to_string(),
            "Ignoring option \"peer_offset\"\n".to_string()
        ]
    );
    // The warning comes before the incomplete-command error.
    let mut w = Vec::new();
    let e = parse(&args("add session offset"), &mut w).unwrap_err();
    assert_eq!(w.len(), 1);
    assert!(e.stderr.starts_with("Command line is not complete"));
}

#[test]
fn subcommand_prefixes() {
    for line in ["del tunnel tid 5", "d tunnel tid 5", "delete tunnel tid 5"] {
        assert_eq!(
            ok(line).action,
            Action::Simple(
                Command::TunnelDelete,
                Attrs {
                    conn_id: Some(5),
                    ..Attrs::default()
                }
            ),
            "{line}"
        );
    }
    assert_eq!(
        ok("del session tid 5 sid 6").action,
        Action::Simple(
            Command::SessionDelete,
            Attrs {
                conn_id: Some(5),
                session_id: Some(6),
                ..Attrs::default()
            }
        )
    );
    // A session_id turns a tunnel delete into a session delete, as in iproute2.
    assert!(matches!(
        ok("del tunnel tid 5 sid 6").action,
        Action::Simple(Command::SessionDelete, _)
    ));
    for line in [
        "show tunnel",
        "s tunnel",
        "lst tunnel",
        "list tunnel",
        "l tunnel",
    ] {
        assert!(
            matches!(
                ok(line).action,
                Action::Show {
                    what: ShowWhat::Tunnel,
                    ..
                }
            ),
            "{line}"
        );
    }
    assert!(matches!(
        ok("a tunnel tid 1 ptid 1 local 1.1.1.1 remote 1.1.1.2 encap ip").action,
        Action::Add { .. }
    ));
    assert_eq!(ok("mon").action, Action::Monitor);
    assert_eq!(
        ok("deb tunnels").action,
        Action::Debug(Command::DebugTunnels)
    );
    assert_eq!(
        ok("debug pppol2tp").action,
        Action::Debug(Command::DebugPppol2tp)
    );
}

#[test]
fn show_filters() {
    assert_eq!(
        ok("show session tid 3 sid 4").action,
        Action::Show {
            what: ShowWhat::Session,
            request: Attrs {
                conn_id: Some(3),
                session_id: Some(4),
                ..Attrs::default()
            },
            tunnel_id: 3,
            session_id: 4,
        }
    );
    assert_eq!(
        ok("show session tid 3").action,
        Action::Show {
            what: ShowWhat::Session,
            request: Attrs::default(),
            tunnel_id: 3,
            session_id: 0,
        }
    );
    assert_eq!(
        ok("show tunnel tunnel_id 7").action,
        Action::Show {
            what: ShowWhat::Tunnel,
            request: Attrs {
                conn_id: Some(7),
                ..Attrs::default()
            },
            tunnel_id: 7,
            session_id: 0,
        }
    );
}

#[test]
fn modify_and_trace() {
    assert_eq!(
        ok("modify session tid 1 sid 2 seq send lns_mode on reorder_timeout 0").action,
        Action::Simple(
            Command::SessionModify,
            Attrs {
                conn_id: Some(1),
                session_id: Some(2),
                send_seq: Some(1),
                recv_seq: Some(0),
                lns_mode: Some(1),
                recv_timeout: Some(0),
                ..Attrs::default()
            }
        )
    );
    assert_eq!(
        ok("modify session tid 1 sid 2").action,
        Action::Simple(
            Command::SessionModify,
            Attrs {
                conn_id: Some(1),
                session_id: Some(2),
                ..Attrs::default()
            }
        )
    );
    assert_eq!(
        ok("modify tunnel tid 9").action,
        Action::Simple(
            Command::TunnelModify,
            Attrs {
                conn_id: Some(9),
                ..Attrs::default()
            }
        )
    );
    assert_eq!(
        ok("trace on tunnel_id 3 session_id 4").action,
        Action::Simple(
            Command::TraceSet,
            Attrs {
                conn_id: Some(3),
                session_id: Some(4),
                debug: Some(1),
                ..Attrs::default()
            }
        )
    );
    assert_eq!(
        ok("trace off tid 3").action,
        Action::Simple(
            Command::TraceSet,
            Attrs {
                conn_id: Some(3),
                debug: Some(0),
                ..Attrs::default()
            }
        )
    );
}

#[test]
fn global_options() {
    let inv = ok("-j -p show tunnel");
    assert!(inv.options.json && inv.options.pretty);
    let inv = ok("-json -pretty show tunnel");
    assert!(inv.options.json && inv.options.pretty);
    let inv = ok("--json show tunnel");
    assert!(inv.options.json && !inv.options.pretty);
    let inv = ok("--socket /tmp/x.sock show tunnel");
    assert_eq!(inv.options.socket, Some(PathBuf::from("/tmp/x.sock")));
    let inv = ok("--socket=/tmp/y.sock -j show session");
    assert_eq!(inv.options.socket, Some(PathBuf::from("/tmp/y.sock")));
    assert!(inv.options.json);
    assert_eq!(ok("-V").action, Action::Version);
    assert_eq!(err("--socket").code, 255);
}

#[test]
fn never_panics_on_token_soup() {
    let vocab = [
        "add",
        "del",
        "show",
        "modify",
        "trace",
        "debug",
        "monitor",
        "help",
        "tunnel",
        "session",
        "tunnel_id",
        "tid",
        "sid",
        "psid",
        "ptid",
        "local",
        "remote",
        "encap",
        "udp",
        "ip",
        "cookie",
        "peer_cookie",
        "seq",
        "both",
        "name",
        "on",
        "off",
        "0",
        "1",
        "0x",
        "-1",
        "4294967296",
        "::",
        "1.2.3.4",
        "any",
        "offset",
        "version",
        "2",
        "pw_type",
        "eth_vlan",
        "vlan_id",
        "reorder_timeout",
        "lns_mode",
        "-j",
        "--socket",
        "",
        "\u{e9}",
        "tunnels",
        "l2spec_type",
        "udp_sport",
        "udp_dport",
        "01020304",
    ];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = (x % 9) as usize;
        let mut line = Vec::new();
        let mut y = x;
        for _ in 0..n {
            y = y
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            line.push(vocab[(y >> 33) as usize % vocab.len()].to_string());
        }
        let mut w = Vec::new();
        if let Err(e) = parse(&line, &mut w) {
            assert!(e.code == 255 || e.code == 1, "{line:?} -> {e:?}");
            assert!(e.stderr.ends_with('\n'));
        }
    }
}

#[test]
fn stats_and_netns_options() {
    for line in [
        "-s show tunnel",
        "-stats show tunnel",
        "-statistics show tunnel",
        "--stat show tunnel",
    ] {
        let inv = ok(line);
        assert!(inv.options.stats, "{line}");
        assert_eq!(inv.options.netns, None);
    }
    let inv = ok("-n blue -j show session");
    assert_eq!(inv.options.netns.as_deref(), Some("blue"));
    assert!(inv.options.json && !inv.options.stats);
    let inv = ok("-netns red --socket /tmp/r.sock show tunnel");
    assert_eq!(inv.options.netns.as_deref(), Some("red"));
    assert_eq!(inv.options.socket, Some(PathBuf::from("/tmp/r.sock")));
    // `-s` is not `--socket`, and an unknown option is still refused.
    assert_eq!(ok("-s show tunnel").options.socket, None);
    assert_eq!(err("-statx show tunnel").code, 255);
    assert_eq!(err("-n").code, 255);
    assert_eq!(ok("--version").action, Action::Version);
}

#[test]
fn show_ppp_lists_ppp_sessions() {
    for line in ["show ppp", "list ppp", "show ppp tunnel_id 7 session_id 9"] {
        let Action::Show { what, request, .. } = ok(line).action else {
            panic!("{line}: not a show")
        };
        assert_eq!(what, ShowWhat::Ppp, "{line}");
        assert_eq!(request, Attrs::default(), "{line}: a full dump");
    }
    let Action::Show {
        tunnel_id,
        session_id,
        ..
    } = ok("show ppp tunnel_id 7 session_id 9").action
    else {
        panic!()
    };
    assert_eq!((tunnel_id, session_id), (7, 9));
    // `show session` is unchanged.
    let Action::Show { what, .. } = ok("show session").action else {
        panic!()
    };
    assert_eq!(what, ShowWhat::Session);
    let _ = err("show ppp bogus");
}
