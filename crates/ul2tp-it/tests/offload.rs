//! Bulk TCP through an Ethernet pseudowire on both data paths of ul2tpd: the offload path
//! (TAP TSO/checksum offload, software segmentation, sendmmsg or UDP GSO, UDP GRO and
//! userspace TCP coalescing into the TAP) and the simple path (`ul2tpd --no-offload`). Every
//! byte must arrive intact and every segment must be counted as one L2TP packet
//! (docs/reference/kernel.md §3.1).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use ul2tp_it::{have, ping_stats, traffic_only, tshark, Capture, Pair};

const BYTES: usize = 6 << 20;

fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(2_654_435_761) >> 13) as u8
}

/// [`bulk_n`] with [`BYTES`].
fn bulk(p: Pair, v6: bool, tunnel_extra: &str) -> Pair {
    bulk_n(p, v6, tunnel_extra, BYTES)
}

/// Tunnel (with the extra `ul2tp` words `tunnel_extra`) + session on both sides, addresses on
/// pw0, and a TCP transfer of `bytes` a → b.
fn bulk_n(p: Pair, v6: bool, tunnel_extra: &str, bytes: usize) -> Pair {
    let (la, lb) = if v6 {
        ("fd00::1", "fd00::2")
    } else {
        ("192.0.2.1", "192.0.2.2")
    };
    p.ul2tp(
        &format!("add tunnel tunnel_id 1 peer_tunnel_id 2 encap udp local {la} remote {lb} udp_sport 5000 udp_dport 5000 {tunnel_extra}"),
        &format!("add tunnel tunnel_id 2 peer_tunnel_id 1 encap udp local {lb} remote {la} udp_sport 5000 udp_dport 5000 {tunnel_extra}"),
    );
    p.ul2tp(
        "add session name pw0 tunnel_id 1 session_id 10 peer_session_id 20",
        "add session name pw0 tunnel_id 2 session_id 20 peer_session_id 10",
    );
    // pw0 quietly: no IPv6 (its neighbour and router solicitations would reach the other
    // side before that side's pw0 is up and be counted as rx_errors there) and static
    // neighbours, so that before the transfer each side has counted exactly one ping.
    let (mac_a, mac_b) = ("02:00:00:00:0a:01", "02:00:00:00:0b:01");
    p.a.quiet_link("pw0", mac_a, "198.51.100.1/24", "198.51.100.2", mac_b);
    p.b.quiet_link("pw0", mac_b, "198.51.100.2/24", "198.51.100.1", mac_a);
    assert!(p.a.ping("198.51.100.2", &[]), "ping across pw0");
    // L2TPv3 over UDP: flags word, session id, default sublayer.
    let one_ping = ping_stats(12, 1, 1);
    assert_eq!(p.da.session_stats(1, 10), one_ping);
    assert_eq!(p.db.session_stats(2, 20), one_ping);

    let listener =
        p.b.run_in(|| TcpListener::bind("198.51.100.2:7500").expect("listen"));
    let rx = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut got = Vec::with_capacity(bytes);
        s.read_to_end(&mut got).expect("read");
        got
    });
    p.a.run_in(move || {
        let mut s = TcpStream::connect("198.51.100.2:7500").expect("connect");
        s.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
        let data: Vec<u8> = (0..bytes).map(pattern).collect();
        s.write_all(&data).expect("write");
    });
    let got = rx.join().unwrap();
    assert_eq!(got.len(), bytes, "all bytes arrived");
    let bad = got.iter().enumerate().position(|(i, b)| *b != pattern(i));
    assert_eq!(bad, None, "first corrupted byte");

    // Every segment on the wire is one L2TP packet on both sides: at most one MSS of TCP
    // payload per packet (pseudowire MTU < 1500), so at least bytes / 1500 of them, carrying
    // at least the payload. How many packets there are beyond that (segment sizes, ACKs, a
    // datagram lost in a socket buffer under load and retransmitted by TCP) is up to TCP, so
    // the packet and byte counters are compared with these bounds (on top of the ping from
    // before the transfer); every error and discard counter must still be 0.
    let ta = p.da.session_stats(1, 10);
    let rb = p.db.session_stats(2, 20);
    for s in [&ta, &rb] {
        assert_eq!(*s, traffic_only(s), "no errors or discards");
    }
    let min = (bytes / 1500) as u64;
    let (tx, rx) = (
        ta.tx_packets - one_ping.tx_packets,
        rb.rx_packets - one_ping.rx_packets,
    );
    assert!(tx >= min, "a tx_packets {tx} < {min}");
    assert!(rx >= min, "b rx_packets {rx} < {min}");
    assert!(
        ta.tx_bytes - one_ping.tx_bytes >= bytes as u64,
        "a tx_bytes {ta:?}"
    );
    assert!(
        rb.rx_bytes - one_ping.rx_bytes >= bytes as u64,
        "b rx_bytes {rb:?}"
    );
    // b acknowledged the stream and a received the acknowledgements.
    assert!(rb.tx_packets > one_ping.tx_packets, "{rb:?}");
    assert!(ta.rx_packets > one_ping.rx_packets, "{ta:?}");
    p
}

/// Whether the daemons put pw0's TAP into offload mode (they log it once per session).
fn offloads_on(p: &Pair) -> bool {
    let on = |l: String| l.contains("pw0: TAP offloads on");
    let (a, b) = (on(p.da.log()), on(p.db.log()));
    assert_eq!(a, b, "both daemons take the same path");
    a
}

#[test]
fn offload_path_ipv4_no_udp_checksum() {
    // sendmmsg + recvmmsg + coalescing.
    let p = bulk(Pair::new(false), false, "");
    assert!(offloads_on(&p));
}

#[test]
fn offload_path_ipv4_udp_checksum() {
    // UDP GSO on send, UDP GRO on receive.
    let p = bulk(Pair::new(false), false, "udp_csum on");
    assert!(offloads_on(&p));
}

#[test]
fn offload_path_ipv6() {
    // IPv6 underlay (checksums by default).
    let p = bulk(Pair::new(true), true, "");
    assert!(offloads_on(&p));
}

#[test]
fn simple_path_with_no_offload() {
    let p = bulk(Pair::with_daemon_args(false, &["--no-offload"]), false, "");
    assert!(!offloads_on(&p));
}

#[test]
fn segments_on_the_wire_are_ordinary_checksummed_frames() {
    if !have("tshark") || !have("tcpdump") {
        panic!("tshark and tcpdump are required (installed by .ci/run)");
    }
    let p = Pair::new(false);
    let cap = Capture::start(&p.a, "eth0", "udp port 5000");
    let p = bulk_n(p, false, "", 1 << 20);
    let pcap = cap.stop();
    assert!(offloads_on(&p));
    let out = tshark(
        &pcap,
        &[
            "-o",
            "l2tp.cookie_size:cookie0",
            "-o",
            "l2tp.l2_specific:default",
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "tcp.check_checksum:TRUE",
            "-o",
            "tcp.desegment_tcp_streams:FALSE",
            "-d",
            "udp.port==5000,l2tp",
            "-d",
            "l2tp.pw_type==0,eth",
            "-Y",
            "tcp.len > 0",
            "-T",
            "fields",
            "-e",
            "frame.len",
            "-e",
            "ip.checksum.status",
            "-e",
            "tcp.checksum.status",
            "-e",
            "tcp.len",
        ],
    );
    let lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
    // 1 MB in at most ~1400-byte segments; tcpdump may miss some under load.
    assert!(lines.len() >= 300, "{} data segments captured", lines.len());
    for l in &lines {
        let f: Vec<&str> = l.split('\t').collect();
        assert_eq!(f.len(), 4, "{l:?}");
        let frame_len: usize = f[0].parse().unwrap();
        // Outer Ethernet + IPv4 + UDP + L2TP header + one inner frame within the veth MTU.
        assert!(frame_len <= 1514, "datagram larger than the link: {l:?}");
        // Outer and inner IPv4 header checksums, inner TCP checksum: 1 = good.
        assert!(f[1].split(',').all(|c| c == "1"), "IP checksum: {l:?}");
        assert_eq!(f[2], "1", "TCP checksum: {l:?}");
        let tcp_len: usize = f[3].parse().unwrap();
        assert!(tcp_len <= 1446 - 40, "segment payload {tcp_len}: {l:?}");
    }
}
