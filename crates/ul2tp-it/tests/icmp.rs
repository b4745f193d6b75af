//! ICMP errors on tunnel sockets and the data path's drop counters, seen through the metrics
//! endpoint (docs/operations.md "Metrics").
//!
//! A static UDP tunnel whose peer namespace has nothing bound on the tunnel's port: the
//! frames the l2tpeth device sends (ARP) earn ICMP port unreachables, which the daemon reads
//! from the socket's error queue and counts for the tunnel; it keeps running and serving. An
//! L2TPv3-over-IP tunnel (raw socket) towards an address nobody answers ARP for gets host
//! unreachables. Then the peer sends the tunnel socket datagrams the data path must drop: a
//! data message for an unknown session, one too short for a header, a control message on a
//! socket without a control plane: each is counted by reason, on the socket and in total.

use std::time::Duration;

use ul2tp_it::metrics::{promtool, scrape, value};
use ul2tp_it::{wait_until, Daemon, Netns};

/// Wait until `series` reaches at least `min`; returns the last scrape.
fn wait_at_least(ns: &Netns, series: &str, min: f64, timeout: Duration) -> String {
    let mut last = String::new();
    let ok = wait_until(timeout, || {
        last = scrape(ns);
        value(&last, series).is_some_and(|v| v >= min)
    });
    assert!(ok, "{series} < {min} after {timeout:?} in:\n{last}");
    last
}

#[test]
fn icmp_errors_and_data_path_drops_are_counted() {
    let (a, b) = ul2tp_it::linked_hosts("ia", "ib");
    let dir = std::env::temp_dir().join(ul2tp_it::unique("icmp"));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("ul2tpd.toml");
    std::fs::write(&conf, "[metrics]\nlisten = \"127.0.0.1:9650\"\n").unwrap();
    let mut d = Daemon::start(&a, &["--config", conf.to_str().unwrap()]);

    // UDP, nothing listening on 192.0.2.2:5001.
    d.ul2tp("add tunnel tunnel_id 1 peer_tunnel_id 1 encap udp local 192.0.2.1 remote 192.0.2.2 udp_sport 5000 udp_dport 5001");
    d.ul2tp("add session tunnel_id 1 session_id 11 peer_session_id 11 name icmpu0");
    a.ip(&["addr", "add", "10.91.0.1/24", "dev", "icmpu0"]);
    a.ip(&["link", "set", "icmpu0", "up"]);
    // ARP requests for 10.91.0.2 leave through the tunnel and earn port unreachables.
    assert!(!a.ping("10.91.0.2", &[]), "nobody should answer");
    let body = wait_at_least(
        &a,
        "ul2tp_tunnel_icmp_errors_total{tunnel_id=\"1\",reason=\"port_unreachable\"}",
        1.0,
        Duration::from_secs(10),
    );
    assert!(
        value(
            &body,
            "ul2tp_icmp_errors_total{reason=\"port_unreachable\"}"
        )
        .is_some_and(|v| v >= 1.0),
        "{body}"
    );
    assert!(
        value(
            &body,
            "ul2tp_socket_icmp_errors_total{encap=\"udp\",local=\"192.0.2.1:5000\",peer=\"192.0.2.2:5001\",reason=\"port_unreachable\"}"
        )
        .is_some_and(|v| v >= 1.0),
        "{body}"
    );
    promtool(&body);
    // The daemon is alive and serves requests; the log says what happened (once).
    assert!(d.alive(), "daemon died: {}", d.log());
    assert!(d.ul2tp("show tunnel").contains("Tunnel 1,"));
    let log = d.log();
    assert!(
        log.contains("ICMP port_unreachable from 192.0.2.2"),
        "no ICMP log line in:\n{log}"
    );

    // L2TPv3 over IP towards an address that does not answer ARP: host unreachable on the
    // raw socket (the local stack reports the failed neighbour resolution).
    d.ul2tp("add tunnel tunnel_id 2 peer_tunnel_id 2 encap ip local 192.0.2.1 remote 192.0.2.99");
    d.ul2tp("add session tunnel_id 2 session_id 21 peer_session_id 21 name icmpi0");
    a.ip(&["addr", "add", "10.92.0.1/24", "dev", "icmpi0"]);
    a.ip(&["link", "set", "icmpi0", "up"]);
    let _ = a.ping("10.92.0.2", &[]);
    let body = wait_at_least(
        &a,
        "ul2tp_tunnel_icmp_errors_total{tunnel_id=\"2\",reason=\"host_unreachable\"}",
        1.0,
        Duration::from_secs(20),
    );
    assert_eq!(
        value(
            &body,
            "ul2tp_tunnel_icmp_errors_total{tunnel_id=\"2\",reason=\"port_unreachable\"}"
        ),
        None,
        "{body}"
    );
    assert!(d.alive(), "daemon died: {}", d.log());

    // Datagrams the data path drops, sent by the peer to the UDP tunnel's socket.
    let s = b.udp_socket("192.0.2.2:5001", "192.0.2.1:5000");
    // L2TPv3 data (T=0, ver 3) for session 0x999, which does not exist: twice.
    let unknown = [0u8, 3, 0, 0, 0, 0, 0x09, 0x99, 1, 2, 3, 4, 5, 6, 7, 8];
    s.send(&unknown).unwrap();
    s.send(&unknown).unwrap();
    // One byte: no header at all (anything under the 14 bytes of the longest header is
    // short, docs/reference/kernel.md §1.2).
    s.send(&[0]).unwrap();
    // A control message (T and L set, ver 3) on a static tunnel: no control plane here.
    s.send(&[0xc8, 3, 0, 12, 0, 0, 0, 1, 0, 0, 0, 0]).unwrap();
    let sock = "encap=\"udp\",local=\"192.0.2.1:5000\",peer=\"192.0.2.2:5001\"";
    let body = wait_at_least(
        &a,
        &format!("ul2tp_socket_rx_dropped_total{{{sock},reason=\"unknown_session\"}}"),
        2.0,
        Duration::from_secs(5),
    );
    for (reason, n) in [
        ("unknown_session", 2.0),
        ("short", 1.0),
        ("control_unclaimed", 1.0),
    ] {
        assert_eq!(
            value(
                &body,
                &format!("ul2tp_socket_rx_dropped_total{{{sock},reason=\"{reason}\"}}")
            ),
            Some(n),
            "{reason}: {body}"
        );
        assert_eq!(
            value(
                &body,
                &format!("ul2tp_rx_dropped_total{{reason=\"{reason}\"}}")
            ),
            Some(n),
            "{reason}: {body}"
        );
    }
    assert_eq!(
        value(&body, "ul2tp_rx_dropped_total{reason=\"cookie_mismatch\"}"),
        Some(0.0)
    );
    promtool(&body);
    // Deleting the tunnels removes their sockets' series; the totals stay.
    d.ul2tp("del tunnel tunnel_id 1");
    d.ul2tp("del tunnel tunnel_id 2");
    let mut body = String::new();
    assert!(wait_until(Duration::from_secs(5), || {
        body = scrape(&a);
        !body.contains("ul2tp_socket_rx_dropped_total{")
    }));
    assert_eq!(
        value(&body, "ul2tp_rx_dropped_total{reason=\"unknown_session\"}"),
        Some(2.0),
        "{body}"
    );
    assert!(d.alive());
    let _ = std::fs::remove_dir_all(&dir);
}
