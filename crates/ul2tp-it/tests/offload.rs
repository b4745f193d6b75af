//! Bulk TCP through an Ethernet pseudowire on both data paths of ul2tpd: the offload path
//! (TAP TSO/checksum offload, software segmentation, sendmmsg or UDP GSO, UDP GRO and
//! userspace TCP coalescing into the TAP) and the simple path (`UL2TPD_NO_OFFLOAD=1`, the
//! environment form of `ul2tpd --no-offload`). Every byte must arrive intact and every
//! segment must be counted as one L2TP packet (kernel-facts §3.1).
//!
//! One test function on purpose: the no-offload run sets an environment variable that the
//! daemons it starts inherit, so nothing else may run in this test binary at that time.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use ul2tp_it::Pair;

const BYTES: usize = 6 << 20;

fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(2_654_435_761) >> 13) as u8
}

/// Tunnel + session on both sides, addresses on pw0, and a TCP transfer a → b.
fn bulk(v6: bool, tunnel_extra: &[&str]) {
    let p = Pair::new(v6);
    let (la, lb) = if v6 {
        ("fd00::1", "fd00::2")
    } else {
        ("192.0.2.1", "192.0.2.2")
    };
    // No IPv6 on pw0: its neighbour and router solicitations would reach the other side
    // before that side's pw0 is up and be counted as rx_errors there.
    for ns in [&p.a, &p.b] {
        ns.sysctl("net.ipv6.conf.default.disable_ipv6=1");
    }
    for (d, tid, ptid, l, r) in [(&p.da, "1", "2", la, lb), (&p.db, "2", "1", lb, la)] {
        let mut t = vec![
            "add",
            "tunnel",
            "tunnel_id",
            tid,
            "peer_tunnel_id",
            ptid,
            "encap",
            "udp",
            "local",
            l,
            "remote",
            r,
            "udp_sport",
            "5000",
            "udp_dport",
            "5000",
        ];
        t.extend_from_slice(tunnel_extra);
        d.cli_ok(&t);
    }
    p.da.ul2tp("add session name pw0 tunnel_id 1 session_id 10 peer_session_id 20");
    p.db.ul2tp("add session name pw0 tunnel_id 2 session_id 20 peer_session_id 10");
    for (ns, addr) in [(&p.a, "198.51.100.1/24"), (&p.b, "198.51.100.2/24")] {
        ns.ip(&["link", "set", "pw0", "up"]);
        ns.ip(&["addr", "add", addr, "dev", "pw0"]);
    }
    assert!(p.a.ping_retry("198.51.100.2", &[], 5), "ping across pw0");

    let listener =
        p.b.run_in(|| TcpListener::bind("198.51.100.2:7500").expect("listen"));
    let rx = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut got = Vec::with_capacity(BYTES);
        s.read_to_end(&mut got).expect("read");
        got
    });
    p.a.run_in(|| {
        let mut s = TcpStream::connect("198.51.100.2:7500").expect("connect");
        s.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
        let data: Vec<u8> = (0..BYTES).map(pattern).collect();
        s.write_all(&data).expect("write");
    });
    let got = rx.join().unwrap();
    assert_eq!(got.len(), BYTES, "all bytes arrived");
    let bad = got.iter().enumerate().position(|(i, b)| *b != pattern(i));
    assert_eq!(bad, None, "first corrupted byte");

    // Every segment on the wire is one L2TP packet on both sides: at most one MSS of TCP
    // payload per packet (pseudowire MTU < 1500), so at least BYTES / 1500 of them.
    let ta = p.da.session_stats(1, 10);
    let rb = p.db.session_stats(2, 20);
    let min = (BYTES / 1500) as u64;
    assert!(
        ta.tx_packets >= min,
        "a tx_packets {} < {min}",
        ta.tx_packets
    );
    assert!(
        rb.rx_packets >= min,
        "b rx_packets {} < {min}",
        rb.rx_packets
    );
    assert!(ta.tx_bytes >= BYTES as u64, "a tx_bytes {}", ta.tx_bytes);
    eprintln!("STATS v6={v6} {tunnel_extra:?} a={ta:?} b={rb:?}");
    assert_eq!(rb.rx_errors, 0);
}

#[test]
fn bulk_tcp_on_both_data_paths() {
    assert!(std::env::var_os("UL2TPD_NO_OFFLOAD").is_none());
    // Offload path, IPv4 default (no UDP checksums): sendmmsg + recvmmsg.
    bulk(false, &[]);
    // IPv4 with UDP checksums: UDP GSO on send, UDP GRO on receive.
    bulk(false, &["udp_csum", "on"]);
    // IPv6 underlay (checksums by default).
    bulk(true, &[]);
    // The simple path.
    std::env::set_var("UL2TPD_NO_OFFLOAD", "1");
    bulk(false, &[]);
    std::env::remove_var("UL2TPD_NO_OFFLOAD");
}
