//! Bulk TCP through an Ethernet pseudowire on both data paths of ul2tpd: the offload path
//! (TAP TSO/checksum offload, software segmentation, sendmmsg or UDP GSO, UDP GRO and
//! userspace TCP coalescing into the TAP) and the simple path (`ul2tpd --no-offload`). Every
//! byte must arrive intact and every segment must be counted as one L2TP packet
//! (docs/reference/kernel.md §3.1).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use ul2tp_it::{have, tshark, veth, Capture, Daemon, Netns, Pair};

const BYTES: usize = 6 << 20;

fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(2_654_435_761) >> 13) as u8
}

/// Two hosts like [`Pair::new`] (IPv4 underlay) whose daemons run with `--no-offload`.
fn pair_no_offload() -> Pair {
    let a = Netns::new("pa");
    let b = Netns::new("pb");
    veth(&a, "eth0", &b, "eth0");
    a.ip(&["addr", "add", "192.0.2.1/24", "dev", "eth0"]);
    b.ip(&["addr", "add", "192.0.2.2/24", "dev", "eth0"]);
    let da = Daemon::start(&a, &["--no-offload"]);
    let db = Daemon::start(&b, &["--no-offload"]);
    Pair { a, b, da, db }
}

/// [`bulk_n`] with [`BYTES`].
fn bulk(p: Pair, v6: bool, tunnel_extra: &[&str]) -> Pair {
    bulk_n(p, v6, tunnel_extra, BYTES)
}

/// Tunnel + session on both sides, addresses on pw0, and a TCP transfer of `bytes` a → b.
fn bulk_n(p: Pair, v6: bool, tunnel_extra: &[&str], bytes: usize) -> Pair {
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
        ns.up_with("pw0", addr);
    }
    assert!(p.a.ping_retry("198.51.100.2", &[], 5), "ping across pw0");

    let ta0 = p.da.session_stats(1, 10);
    let rb0 = p.db.session_stats(2, 20);
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
    // payload per packet (pseudowire MTU < 1500), so at least bytes / 1500 of them. Compare
    // with the counters from before the transfer (ARP and ping are counted too).
    let ta = p.da.session_stats(1, 10);
    let rb = p.db.session_stats(2, 20);
    let min = (bytes / 1500) as u64;
    let (tx, rx) = (
        ta.tx_packets - ta0.tx_packets,
        rb.rx_packets - rb0.rx_packets,
    );
    assert!(tx >= min, "a tx_packets {tx} < {min}");
    assert!(rx >= min, "b rx_packets {rx} < {min}");
    assert!(ta.tx_bytes - ta0.tx_bytes >= bytes as u64, "a tx_bytes");
    assert_eq!(ta.tx_errors, ta0.tx_errors, "a tx_errors");
    assert_eq!(rb.rx_errors, rb0.rx_errors, "b rx_errors");
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
    let p = bulk(Pair::new(false), false, &[]);
    assert!(offloads_on(&p));
}

#[test]
fn offload_path_ipv4_udp_checksum() {
    // UDP GSO on send, UDP GRO on receive.
    let p = bulk(Pair::new(false), false, &["udp_csum", "on"]);
    assert!(offloads_on(&p));
}

#[test]
fn offload_path_ipv6() {
    // IPv6 underlay (checksums by default).
    let p = bulk(Pair::new(true), true, &[]);
    assert!(offloads_on(&p));
}

#[test]
fn simple_path_with_no_offload() {
    let p = bulk(pair_no_offload(), false, &[]);
    assert!(!offloads_on(&p));
}

#[test]
fn segments_on_the_wire_are_ordinary_checksummed_frames() {
    if !have("tshark") || !have("tcpdump") {
        panic!("tshark and tcpdump are required (installed by .ci/run)");
    }
    let p = Pair::new(false);
    let cap = Capture::start(&p.a, "eth0", "udp port 5000");
    let p = bulk_n(p, false, &[], 1 << 20);
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
