//! The control protocol under loss, duplication and reordering, live: two ul2tpd daemons
//! with an `ul2tp-relay` between them that drops 30 %, duplicates 10 % and reorders 10 % of
//! the control and data messages in both directions (seeded, so every run meets the same
//! faults for the same traffic).
//!
//! ```text
//!  ns A (LAC): eth0 192.0.2.1:1701 ── ns R: 192.0.2.2:1701 [ul2tp-relay] 198.18.0.2:1701
//!                                                 ── ns B (LNS): eth0 198.18.0.1:1701
//! ```
//!
//! A opens [`TUNNELS`] L2TPv3 tunnels to the relay's address at once and [`PER_TUNNEL`]
//! sessions in each, 1,000 in all (PPP pseudowires with 8-byte cookies: no devices, so the
//! count is limited by the control channels alone). Every session must come up on both sides
//! with the same pairs of ids and cookies (what A sends is what B expects and the reverse);
//! the tunnels' ids must match. One Ethernet pseudowire then carries pings through the same
//! faults (about half answered). Then A disconnects every tunnel: the StopCCNs reach B
//! (tunnels down by the peer), B's acknowledgements reach A (A forgets the tunnels before its
//! hold-down of 600 s could), and neither side keeps a tunnel or session, in the data path or
//! in the control engine, nor a device.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use ul2tp_api::{Attrs, Command};
use ul2tp_it::relay::Relay;
use ul2tp_it::{veth, wait_until, Daemon, Netns};

/// Tunnels opened at once through the faulty relay, and sessions in each. At 30 % loss in
/// each direction the congestion window of RFC 2661 Appendix A stays at 1-3 messages and
/// every loss of the last message in flight waits for a retransmission timeout (doubling), so
/// one control channel moves a few messages a second: 1,000 sessions in one tunnel take
/// ~1,100 s of protocol time in the engine simulation (ul2tp-control tests/sim.rs), 40 took
/// ~68 s live. Each tunnel has its own window and timers, so 100 tunnels of 10 set up 1,000
/// sessions in the time the slowest tunnel takes. Both daemons cap the retransmission
/// timeout at RFC 2661's minimum of 8 s (`retransmit_cap`, default 16 s): the slowest tunnel
/// is the one whose messages met the longest runs of losses (docs/testing.md has the figures).
const TUNNELS: usize = 100;
const PER_TUNNEL: usize = 10;
const SESSIONS: usize = TUNNELS * PER_TUNNEL;
/// Upper bound for the set-up (a failure bound, not a measurement).
const SETUP_LIMIT_S: u64 = 600;
/// Upper bound for the disconnect, below A's hold-down of 600 s (a failure bound: a StopCCN
/// exchange fails half the time at this loss, and its timer backs off to the cap, so the
/// slowest of 100 tunnels may need a minute or two).
const DISCONNECT_LIMIT_S: u64 = 300;

fn scrape(ns: &Netns) -> String {
    ns.run_in(|| {
        let mut s = std::net::TcpStream::connect("127.0.0.1:9650").expect("connect to metrics");
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default()
    })
}

fn value(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// The control channels' counters (sums over tunnels) of a metrics page, for the log.
fn control_channel(body: &str) -> String {
    body.lines()
        .filter(|l| l.starts_with("ul2tp_control_retransmits"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Network devices in a namespace (`ip -o link`).
fn links(ns: &Netns) -> Vec<String> {
    ns.ip(&["-o", "link", "show"])
        .lines()
        .filter_map(|l| l.split(": ").nth(1).map(str::to_string))
        .collect()
}

/// Tunnels the control engine holds, in any state.
fn engine_tunnels(body: &str) -> f64 {
    [
        "wait-ctl-reply",
        "wait-ctl-conn",
        "established",
        "closing",
        "held",
    ]
    .iter()
    .filter_map(|s| value(body, &format!("ul2tp_control_tunnels{{state=\"{s}\"}}")))
    .sum()
}

fn config(dir: &std::path::Path, name: &str, listen: &str, stop_hold: u32) -> String {
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(
        &p,
        format!(
            "[metrics]\nlisten = \"127.0.0.1:9650\"\n\
             [control]\nlisten = \"{listen}\"\nhost_name = \"{name}\"\n\
             max_retries = 40\nmax_retries_half_open = 40\nreceive_window = 64\n\
             hello_interval = 5\nstop_hold = {stop_hold}\n\
             max_half_open_per_peer = 1000\nnew_tunnels_per_second_per_peer = 0\n\
             retransmit_cap = 8\n"
        ),
    )
    .unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn sessions_survive_loss_duplication_and_reordering_of_control_messages() {
    let a = Netns::new("cfa");
    let r = Netns::new("cfr");
    let b = Netns::new("cfb");
    veth(&a, "eth0", &r, "eth0");
    veth(&r, "eth1", &b, "eth0");
    a.up_with("eth0", "192.0.2.1/24");
    r.up_with("eth0", "192.0.2.2/24");
    r.up_with("eth1", "198.18.0.2/24");
    b.up_with("eth0", "198.18.0.1/24");
    let faults = [
        "--seed",
        "1313",
        "--drop",
        "0.3",
        "--dup",
        "0.1",
        "--reorder",
        "0.1",
        "--ctl-drop",
        "0.3",
        "--ctl-dup",
        "0.1",
        "--ctl-reorder",
        "0.1",
        "--reorder-gap",
        "2",
        "--hold-max-ms",
        "300",
        "--max-seconds",
        "1200",
    ];
    let mut relay = Relay::start(
        &r,
        "192.0.2.2:1701",
        "192.0.2.1:1701",
        "198.18.0.2:1701",
        "198.18.0.1:1701",
        &faults,
    );
    let dir = std::env::temp_dir().join(ul2tp_it::unique("ctlfault"));
    std::fs::create_dir_all(&dir).unwrap();
    // A holds its closed tunnels long (only an acknowledged StopCCN ends one early), B
    // briefly: a StopCCN A retransmits after that (every acknowledgement lost) is still
    // acknowledged, from the message alone.
    let ca = config(&dir, "lac", "192.0.2.1:1701", 600);
    let cb = config(&dir, "lns", "198.18.0.1:1701", 5);
    let da = Daemon::start(&a, &["--config", &ca]);
    let db = Daemon::start(&b, &["--config", &cb]);
    let devices = (links(&a), links(&b));

    // Every tunnel and session at once: the requests return when the SCCRQ / ICRQ is
    // queued; sessions wait in the engine for their tunnel.
    let started = Instant::now();
    let mut c = da.client();
    let mut tids = Vec::new();
    for _ in 0..TUNNELS {
        let tid: u32 = da
            .ul2tp("connect remote 192.0.2.2 version 3")
            .split_whitespace()
            .nth(1)
            .and_then(|t| t.parse().ok())
            .expect("a tunnel id");
        for _ in 0..PER_TUNNEL {
            let attrs = Attrs {
                conn_id: Some(tid),
                pw_type: Some(ul2tp_api::pw_type::PPP),
                ..Attrs::default()
            };
            c.request(Command::ControlSession, attrs, false)
                .expect("control_session");
        }
        tids.push(tid);
    }
    let series = "ul2tp_control_sessions{state=\"established\"}";
    let want = SESSIONS as f64;
    let mut last = (String::new(), String::new());
    let up = wait_until(Duration::from_secs(SETUP_LIMIT_S), || {
        last = (scrape(&a), scrape(&b));
        value(&last.0, series) == Some(want) && value(&last.1, series) == Some(want)
    });
    let setup = started.elapsed();
    assert!(
        up,
        "sessions established: A {:?}, B {:?} of {SESSIONS}; relay {:?}",
        value(&last.0, series),
        value(&last.1, series),
        relay.stats()
    );
    let stats = relay.stats();
    eprintln!(
        "{SESSIONS} sessions in {TUNNELS} tunnels up in {setup:?}; relay {stats:?}; \
         A {}",
        control_channel(&last.0)
    );
    // The faults happened, on control messages in both directions.
    for d in [stats.ab, stats.ba] {
        assert!(
            d.ctl_dropped > 0 && d.ctl_duplicated > 0 && d.ctl_held > 0,
            "{stats:?}"
        );
    }

    // The PPP pseudowires have no devices (no PPP runs on them), on either side.
    assert_eq!(
        (links(&a), links(&b)),
        devices,
        "devices with 1,000 sessions up"
    );

    // Both sides agree on every id and cookie.
    let (sa, sb) = (da.session_dump(), db.session_dump());
    assert_eq!((sa.len(), sb.len()), (SESSIONS, SESSIONS));
    let (ta, tb) = (da.tunnel_dump(), db.tunnel_dump());
    assert_eq!((ta.len(), tb.len()), (TUNNELS, TUNNELS));
    // Tunnel ids cross-match: A's tunnel t has B's tunnel peer(t) and the reverse.
    let b_tunnels: HashMap<u32, &Attrs> = tb.iter().map(|t| (t.conn_id.unwrap(), t)).collect();
    for t in &ta {
        assert!(tids.contains(&t.conn_id.unwrap()), "{t:?}");
        let p = b_tunnels
            .get(&t.peer_conn_id.unwrap())
            .unwrap_or_else(|| panic!("A's tunnel {t:?} has no peer on B"));
        assert_eq!(p.peer_conn_id, t.conn_id);
    }
    let by_id: HashMap<u32, &Attrs> = sb.iter().map(|s| (s.session_id.unwrap(), s)).collect();
    let mut per_tunnel: HashMap<u32, usize> = HashMap::new();
    for s in &sa {
        let tid = s.conn_id.unwrap();
        *per_tunnel.entry(tid).or_default() += 1;
        let peer = by_id
            .get(&s.peer_session_id.unwrap())
            .unwrap_or_else(|| panic!("A's session {s:?} has no peer on B"));
        let a_tunnel = ta.iter().find(|t| t.conn_id == Some(tid)).unwrap();
        assert_eq!(peer.conn_id, a_tunnel.peer_conn_id, "{s:?} / {peer:?}");
        assert_eq!(peer.peer_session_id, s.session_id, "{s:?} / {peer:?}");
        let cookie = s.cookie.as_deref().unwrap_or("");
        assert_eq!(cookie.len(), 16, "8-byte cookies: {s:?}");
        assert_eq!(peer.peer_cookie, s.cookie, "{s:?} / {peer:?}");
        assert_eq!(peer.cookie, s.peer_cookie, "{s:?} / {peer:?}");
    }
    assert_eq!(per_tunnel.len(), TUNNELS);
    assert!(
        per_tunnel.values().all(|&n| n == PER_TUNNEL),
        "{per_tunnel:?}"
    );
    let tid = tids[0];

    // Data through the same faults: one Ethernet pseudowire in the tunnel, pings over it.
    let ifname = ul2tp_it::unique("cf");
    let out = da.ul2tp(&format!("connect session tunnel_id {tid} name {ifname}"));
    let sid: u32 = out
        .strip_prefix("Session ")
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected output {out:?}"));
    let mut eth = None;
    assert!(
        wait_until(Duration::from_secs(60), || {
            eth = db
                .session_dump()
                .into_iter()
                .find(|s| s.peer_session_id == Some(sid) && s.ifname.is_some());
            eth.is_some() && a.has_link(&ifname)
        }),
        "Ethernet session {sid} not up on both sides"
    );
    let b_if = eth.and_then(|s| s.ifname).unwrap();
    let (mac_a, mac_b) = ("02:00:00:00:0a:01", "02:00:00:00:0b:01");
    a.quiet_link(&ifname, mac_a, "198.51.100.1/24", "198.51.100.2", mac_b);
    b.quiet_link(&b_if, mac_b, "198.51.100.2/24", "198.51.100.1", mac_a);
    let got = a.ping_count("198.51.100.2", 40, "0.05");
    let stats = relay.stats();
    // Each round trip crosses the relay twice at 30 % loss: about half come back, and the
    // chance that none or all 40 do is negligible.
    assert!(got > 0 && got < 40, "{got} of 40 pings answered; {stats:?}");
    assert!(stats.ab.dropped > 0 && stats.ba.data > 0, "{stats:?}");

    // A clean disconnect of every tunnel.
    let closing = Instant::now();
    for t in &tids {
        da.ul2tp(&format!("disconnect tunnel_id {t}"));
    }
    let mut last = (String::new(), String::new());
    let gone = wait_until(Duration::from_secs(DISCONNECT_LIMIT_S), || {
        last = (scrape(&a), scrape(&b));
        engine_tunnels(&last.0) == 0.0
            && engine_tunnels(&last.1) == 0.0
            && da.tunnel_dump().is_empty()
            && db.tunnel_dump().is_empty()
            && da.session_dump().is_empty()
            && db.session_dump().is_empty()
    });
    eprintln!(
        "{TUNNELS} tunnels closed on both sides in {:?}",
        closing.elapsed()
    );
    assert!(
        gone,
        "leftovers after the disconnect:\nA tunnels {:?} sessions {}\nB tunnels {:?} sessions {}\n{}\n{}",
        da.tunnel_dump(),
        da.session_dump().len(),
        db.tunnel_dump(),
        db.session_dump().len(),
        last.0,
        last.1
    );
    // A closed them, B heard the StopCCNs. A forgot the tunnels within the time waited
    // above, before its 600 s hold-down: only B's acknowledgements of the StopCCNs allow that.
    assert_eq!(
        value(
            &last.0,
            "ul2tp_control_tunnels_down_total{reason=\"local\"}"
        ),
        Some(TUNNELS as f64),
        "{}",
        last.0
    );
    assert_eq!(
        value(&last.1, "ul2tp_control_tunnels_down_total{reason=\"peer\"}"),
        Some(TUNNELS as f64),
        "{}",
        last.1
    );
    for body in [&last.0, &last.1] {
        assert_eq!(
            value(body, "ul2tp_control_sessions{state=\"established\"}"),
            Some(0.0)
        );
        assert_eq!(
            value(body, "ul2tp_control_sessions{state=\"connecting\"}"),
            Some(0.0)
        );
        assert_eq!(value(body, "ul2tp_tunnels_up{kind=\"dynamic\"}"), Some(0.0));
        assert_eq!(
            value(body, "ul2tp_sessions_up{kind=\"dynamic\"}"),
            Some(0.0)
        );
        let timeouts = value(body, "ul2tp_control_tunnels_down_total{reason=\"timeout\"}");
        assert_eq!(timeouts, Some(0.0), "{body}");
    }
    assert!(!a.has_link(&ifname), "the pseudowire device is left on A");
    assert!(!b.has_link(&b_if), "the pseudowire device is left on B");
    assert!(
        wait_until(Duration::from_secs(10), || (links(&a), links(&b))
            == devices),
        "devices left: {:?} / {:?}, at the start {devices:?}",
        links(&a),
        links(&b)
    );
    assert!(relay.alive());
    let _ = std::fs::remove_dir_all(&dir);
}
