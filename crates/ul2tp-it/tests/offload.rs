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

/// Packets a device counted in `dir` ("rx" / "tx"): a TUN counts one per read or write, so a
/// super-packet is one.
fn device_packets(ns: &ul2tp_it::Netns, dev: &str, dir: &str) -> u64 {
    let path = format!("/sys/class/net/{dev}/statistics/{dir}_packets");
    ul2tp_it::must(ns.cmd("cat").arg(path))
        .trim()
        .parse()
        .expect("a packet count")
}

/// Move `bytes` of TCP from `from` to `to_addr`:7600 in `to`, checking every byte.
fn tcp_transfer(from: &ul2tp_it::Netns, to: &ul2tp_it::Netns, to_addr: &str, bytes: usize) {
    let addr = format!("{to_addr}:7600");
    let listener = {
        let addr = addr.clone();
        to.run_in(move || TcpListener::bind(addr).expect("listen"))
    };
    let rx = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut got = Vec::with_capacity(bytes);
        s.read_to_end(&mut got).expect("read");
        got
    });
    from.run_in(move || {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
        let data: Vec<u8> = (0..bytes).map(pattern).collect();
        s.write_all(&data).expect("write");
    });
    let got = rx.join().unwrap();
    assert_eq!(got.len(), bytes, "all bytes arrived");
    let bad = got.iter().enumerate().position(|(i, b)| *b != pattern(i));
    assert_eq!(bad, None, "first corrupted byte");
}

/// A PPP call (L2TPv2) from a LAC ul2tpd to an LNS ul2tpd, both terminating PPP on a pppN, with
/// `datapath` as both daemons' `[datapath]` section; [`BYTES`] of TCP LAC -> LNS, then LNS ->
/// LAC, every byte checked, every segment one L2TP packet and, as tshark decodes the LAC's
/// link during the first transfer, an ordinary PPP frame carrying a TCP segment of at most the
/// pppN's MTU with correct IP and TCP checksums. Returns whether the daemons logged TUN
/// offloads, and (device packets, session packets) of the LNS's receiving side and the LAC's
/// sending side for the first transfer.
fn ppp_bulk(datapath: &str) -> (bool, [(u64, u64); 2]) {
    let lns_conf = format!(
        "[control]\nlisten = \"192.0.2.2:1701\"\nppp_local = \"10.96.0.1\"\nppp_pool = \"10.96.0.10-10.96.0.20\"\n{datapath}"
    );
    let ul2tp_it::LacLns { a, b, lac, lns, .. } =
        ul2tp_it::LacLns::start(("poa", "pob"), "ppp-offload", datapath, &lns_conf);
    let tid = lac.connect_tunnel("192.0.2.2 version 2");
    assert!(lac.wait_tunnel(&tid, Duration::from_secs(10)), "tunnel");
    let sid = lac.connect_ppp_session(&tid);
    assert!(
        lac.wait_session(&tid, &sid, Duration::from_secs(10)),
        "session"
    );
    lac.cli_ok(&["ppp", "start", "tunnel_id", &tid, "session_id", &sid]);
    let dev_lac = a.device_with("10.96.0.10").expect("LAC pppN");
    let mut dev_lns = None;
    assert!(ul2tp_it::wait_until(Duration::from_secs(10), || {
        dev_lns = b.device_with("10.96.0.1");
        dev_lns.is_some()
    }));
    let dev_lns = dev_lns.unwrap();
    assert!(a.ping_retry("10.96.0.1", &[], 5), "ping over PPP");
    let (t, s): (u32, u32) = (tid.parse().unwrap(), sid.parse().unwrap());
    let lns_key = {
        let d = lns.session_dump();
        let one = d.first().expect("the LNS's session");
        (one.conn_id.unwrap(), one.session_id.unwrap())
    };
    let (lac0, lns0) = (
        lac.session_stats(t, s),
        lns.session_stats(lns_key.0, lns_key.1),
    );
    let (tun_tx0, tun_rx0) = (
        device_packets(&a, &dev_lac, "tx"),
        device_packets(&b, &dev_lns, "rx"),
    );
    let mtu: usize = ul2tp_it::must(a.cmd("cat").arg(format!("/sys/class/net/{dev_lac}/mtu")))
        .trim()
        .parse()
        .unwrap();
    // All of it: a full-sized PPP frame makes an IP-fragmented datagram on this link.
    let cap = Capture::start(&a, "eth0", "host 192.0.2.2");
    tcp_transfer(&a, &b, "10.96.0.1", BYTES);
    ppp_segments_are_ordinary(&cap.stop(), mtu);
    let (lac1, lns1) = (
        lac.session_stats(t, s),
        lns.session_stats(lns_key.0, lns_key.1),
    );
    let counts = [
        (
            device_packets(&b, &dev_lns, "rx") - tun_rx0,
            lns1.rx_packets - lns0.rx_packets,
        ),
        (
            device_packets(&a, &dev_lac, "tx") - tun_tx0,
            lac1.tx_packets - lac0.tx_packets,
        ),
    ];
    tcp_transfer(&b, &a, "10.96.0.10", BYTES);
    let (lac2, lns2) = (
        lac.session_stats(t, s),
        lns.session_stats(lns_key.0, lns_key.1),
    );
    for s in [&lac2, &lns2] {
        assert_eq!(*s, traffic_only(s), "no errors or discards");
    }
    // Each way, every TCP segment was its own PPP frame and L2TP packet (pppN MTU <= 1500).
    let min = (BYTES / 1500) as u64;
    for (what, n) in [
        ("LAC tx", lac1.tx_packets - lac0.tx_packets),
        ("LNS rx", lns1.rx_packets - lns0.rx_packets),
        ("LNS tx", lns2.tx_packets - lns1.tx_packets),
        ("LAC rx", lac2.rx_packets - lac1.rx_packets),
    ] {
        assert!(n >= min, "{what}: {n} packets < {min}");
    }
    let on = |l: String| l.contains("TUN offloads on (csum, tso4, tso6)");
    let (on_a, on_b) = (on(lac.log()), on(lns.log()));
    assert_eq!(on_a, on_b, "both daemons take the same path");
    eprintln!("(device, L2TP) packets: LNS rx, LAC tx: {counts:?}");
    (on_a, counts)
}

/// Every TCP data segment in the PPP frames of `pcap` is checksummed and fits the pppN MTU.
fn ppp_segments_are_ordinary(pcap: &[u8], mtu: usize) {
    ul2tp_it::require("tshark", "tshark");
    let out = tshark(
        pcap,
        &[
            "-o",
            "ip.check_checksum:TRUE",
            "-o",
            "tcp.check_checksum:TRUE",
            "-o",
            "tcp.desegment_tcp_streams:FALSE",
            "-Y",
            "ppp && tcp.len > 0",
            "-T",
            "fields",
            "-e",
            "ppp.protocol",
            "-e",
            "ip.checksum.status",
            "-e",
            "tcp.checksum.status",
            "-e",
            "tcp.len",
        ],
    );
    let lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
    // 6 MB in at most MTU-sized segments; tcpdump may miss some under load.
    assert!(
        lines.len() >= 1000,
        "{} data segments captured",
        lines.len()
    );
    for l in &lines {
        let f: Vec<&str> = l.split('\t').collect();
        assert_eq!(f.len(), 4, "{l:?}");
        assert_eq!(f[0], "0x0021", "PPP protocol IPv4: {l:?}");
        // Outer and inner IPv4 header checksums, inner TCP checksum: 1 = good.
        assert!(f[1].split(',').all(|c| c == "1"), "IP checksum: {l:?}");
        assert_eq!(f[2], "1", "TCP checksum: {l:?}");
        let tcp_len: usize = f[3].parse().unwrap();
        assert!(
            tcp_len <= mtu - 40,
            "segment payload {tcp_len} > MTU {mtu} - 40: {l:?}"
        );
    }
}

#[test]
fn ppp_offload_path() {
    let (on, [(lns_dev_rx, lns_rx), (lac_dev_tx, lac_tx)]) = ppp_bulk("");
    assert!(on, "offloads logged");
    // The LAC's stack handed its pppN TCP super-packets (one device packet for many
    // segments) and the LNS wrote coalesced runs to its pppN.
    assert!(
        lac_dev_tx * 2 < lac_tx,
        "LAC pppN tx {lac_dev_tx} for {lac_tx} L2TP packets"
    );
    assert!(
        lns_dev_rx * 2 < lns_rx,
        "LNS pppN rx {lns_dev_rx} for {lns_rx} L2TP packets"
    );
}

#[test]
fn ppp_simple_path_with_offload_off() {
    let (on, [(lns_dev_rx, lns_rx), (lac_dev_tx, lac_tx)]) =
        ppp_bulk("\n[datapath]\noffload = false\n");
    assert!(!on, "no offloads logged");
    // One device packet per L2TP packet, give or take the few frames that do not cross the
    // pppN (LCP Echoes, the daemons' IPv6 Router Solicitations and Advertisements).
    assert!(
        lac_dev_tx * 100 >= lac_tx * 99,
        "LAC pppN tx {lac_dev_tx}, {lac_tx} L2TP packets"
    );
    assert!(
        lns_dev_rx * 100 >= lns_rx * 99,
        "LNS pppN rx {lns_dev_rx}, {lns_rx} L2TP packets"
    );
}
