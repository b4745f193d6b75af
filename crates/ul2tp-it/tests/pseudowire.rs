//! Ethernet pseudowires between two daemons on one veth link: cookies, cookie mismatch,
//! L2-specific sublayer, and what the packets look like to tshark.

use std::time::Duration;

use ul2tp_api::Stats;
use ul2tp_it::{have, ping_stats, tshark, Capture, Pair};

fn pair(v6: bool) -> Pair {
    Pair::new(v6)
}

const A_PW: &str = "198.51.100.1";
const B_PW: &str = "198.51.100.2";
const A_MAC: &str = "02:00:00:00:0a:01";
const B_MAC: &str = "02:00:00:00:0b:01";

/// Tunnel 1000/2000 and session 0x1001/0x2001 like the capture README, with extra session
/// arguments (`ul2tp` command-line words) for each side. The devices `pw0` are left down.
fn pw(p: &Pair, encap: &str, v6: bool, a_extra: &str, b_extra: &str) {
    let (la, lb) = if v6 {
        ("fd00::1", "fd00::2")
    } else {
        ("192.0.2.1", "192.0.2.2")
    };
    let ports = if encap == "udp" {
        "udp_sport 5000 udp_dport 5000"
    } else {
        ""
    };
    p.ul2tp(
        &format!("add tunnel tunnel_id 2000 peer_tunnel_id 1000 encap {encap} local {la} remote {lb} {ports}"),
        &format!("add tunnel tunnel_id 1000 peer_tunnel_id 2000 encap {encap} local {lb} remote {la} {ports}"),
    );
    p.ul2tp(
        &format!("add session name pw0 tunnel_id 2000 session_id 0x2001 peer_session_id 0x1001 {a_extra}"),
        &format!("add session name pw0 tunnel_id 1000 session_id 0x1001 peer_session_id 0x2001 {b_extra}"),
    );
}

/// Bring both `pw0` up with their addresses (IPv6, neighbour discovery and ARP included).
fn up(p: &Pair) {
    p.a.up_with("pw0", &format!("{A_PW}/24"));
    p.b.up_with("pw0", &format!("{B_PW}/24"));
}

/// Bring both `pw0` up quietly (IPv4 only, static neighbours): the only packets on the
/// pseudowire are the test's pings, so the session counters are exact.
fn up_quiet(p: &Pair) {
    p.a.quiet_link("pw0", A_MAC, &format!("{A_PW}/24"), B_PW, B_MAC);
    p.b.quiet_link("pw0", B_MAC, &format!("{B_PW}/24"), A_PW, A_MAC);
}

/// The L2TPv3 header of a session with the default sublayer and a `cookie_len`-byte cookie:
/// over UDP a flags word, the session id, the cookie, the sublayer; over IP the same without
/// the flags word.
fn v3_header(encap: &str, cookie_len: u64) -> u64 {
    let flags = if encap == "udp" { 4 } else { 0 };
    flags + 4 + cookie_len + 4
}

#[test]
fn cookies_4_and_8_bytes_work() {
    for (encap, ca, cb) in [
        ("udp", "0011223344556677", "8899aabbccddeeff"),
        ("ip", "00112233", "44556677"),
    ] {
        let p = pair(false);
        pw(
            &p,
            encap,
            false,
            &format!("cookie {ca} peer_cookie {cb}"),
            &format!("cookie {cb} peer_cookie {ca}"),
        );
        up_quiet(&p);
        assert_eq!(
            p.a.ping_count(B_PW, 3, "0.2"),
            3,
            "ping with {} cookies over {encap}",
            ca.len() / 2
        );
        // Three requests one way, three replies the other, nothing discarded.
        let want = ping_stats(v3_header(encap, ca.len() as u64 / 2), 3, 3);
        assert_eq!(p.da.session_stats(2000, 0x2001), want, "a over {encap}");
        assert_eq!(p.db.session_stats(1000, 0x1001), want, "b over {encap}");
        let shown = p.da.ul2tp("show session tunnel_id 2000");
        assert!(
            shown.contains(&format!("  cookie {ca}  peer cookie {cb}")),
            "{shown}"
        );
    }
}

#[test]
fn cookie_mismatch_is_dropped_and_counted() {
    let p = pair(false);
    // b sends 8899aabbccddeeff but a expects 0102030405060708.
    pw(
        &p,
        "udp",
        false,
        "cookie 0011223344556677 peer_cookie 0102030405060708",
        "cookie 8899aabbccddeeff peer_cookie 0011223344556677",
    );
    up_quiet(&p);
    assert_eq!(
        p.b.ping_count(A_PW, 3, "0.2"),
        0,
        "ping succeeded despite a cookie mismatch"
    );
    // a discards all three requests (a cookie discard is also an rx_error) and never answers.
    let want_a = Stats {
        rx_cookie_discards: 3,
        rx_errors: 3,
        ..Stats::default()
    };
    assert_eq!(p.da.session_stats(2000, 0x2001), want_a);
    assert_eq!(
        p.db.session_stats(1000, 0x1001),
        ping_stats(v3_header("udp", 8), 3, 0)
    );
}

/// Capture the pseudowire's traffic on the veth and let tshark decode it with the same
/// options the capture README gives for the kernel's packets.
fn capture_and_check(encap: &str, v6: bool, cookie: Option<(&str, &str)>, l2spec: &str) {
    if !have("tshark") || !have("tcpdump") {
        panic!("tshark and tcpdump are required (installed by .ci/run)");
    }
    let p = pair(v6);
    let filter = if encap == "udp" {
        "udp port 5000"
    } else {
        "ip proto 115 or ip6 proto 115"
    };
    let cap = Capture::start(&p.a, "eth0", filter);
    let (ea, eb) = match cookie {
        Some((ca, cb)) => (
            format!("l2spec_type {l2spec} cookie {ca} peer_cookie {cb}"),
            format!("l2spec_type {l2spec} cookie {cb} peer_cookie {ca}"),
        ),
        None => (
            format!("l2spec_type {l2spec}"),
            format!("l2spec_type {l2spec}"),
        ),
    };
    pw(&p, encap, v6, &ea, &eb);
    up(&p);
    assert!(p.a.ping_retry(B_PW, &[], 5));
    // At least the echo request and its reply.
    assert!(
        cap.wait_packets(2, Duration::from_secs(5)),
        "{} packets captured",
        cap.packets()
    );
    let pcap = cap.stop();
    let size = match cookie {
        None => "cookie0",
        Some((c, _)) if c.len() == 8 => "cookie4",
        Some(_) => "cookie8",
    };
    let mut args = vec![
        "-o".to_string(),
        format!("l2tp.cookie_size:{size}"),
        "-o".into(),
        format!("l2tp.l2_specific:{l2spec}"),
    ];
    if encap == "udp" {
        args.extend(["-d".into(), "udp.port==5000,l2tp".into()]);
    }
    args.extend(["-d".into(), "l2tp.pw_type==0,eth".into()]);
    args.extend([
        "-T".into(),
        "fields".into(),
        "-e".into(),
        "l2tp.sid".into(),
        "-e".into(),
        "l2tp.cookie".into(),
        "-e".into(),
        "_ws.col.Protocol".into(),
        "-e".into(),
        "_ws.expert.message".into(),
    ]);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = tshark(&pcap, &a);
    let lines: Vec<&str> = out.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        lines.len() >= 2,
        "too few packets captured ({} pcap bytes): {out}",
        pcap.len()
    );
    for l in &lines {
        let f: Vec<&str> = l.split('\t').collect();
        let sid = f[0];
        assert!(
            sid == "0x00001001" || sid == "0x00002001" || sid == "4097" || sid == "8193",
            "bad session id in {l:?}"
        );
        if let Some((ca, cb)) = cookie {
            let c = f.get(1).copied().unwrap_or("").replace(':', "");
            assert!(c == ca || c == cb, "bad cookie in {l:?}");
        }
        let proto = f.get(2).copied().unwrap_or("");
        assert!(
            proto != "L2TP" || l.contains("ARP"),
            "payload not decoded as Ethernet: {l:?}"
        );
        assert!(
            !l.to_lowercase().contains("malformed"),
            "malformed packet: {l:?}"
        );
    }
    // Full verbose decode must not mention malformed packets either.
    let verbose = tshark(&pcap, &a[..a.len() - 10]);
    assert!(!verbose.to_lowercase().contains("malformed"), "{verbose}");
    assert!(
        verbose.contains("ICMP") || verbose.contains("ICMPv6"),
        "no ICMP inside the pseudowire: {verbose}"
    );
}

#[test]
fn tshark_decodes_udp4_no_cookie() {
    capture_and_check("udp", false, None, "default");
}

#[test]
fn tshark_decodes_udp4_cookie8_l2spec_none() {
    capture_and_check(
        "udp",
        false,
        Some(("0011223344556677", "8899aabbccddeeff")),
        "none",
    );
}

#[test]
fn tshark_decodes_ip4_cookie4() {
    capture_and_check("ip", false, Some(("00112233", "44556677")), "default");
}

#[test]
fn tshark_decodes_ip6_cookie8_and_udp6() {
    capture_and_check(
        "ip",
        true,
        Some(("0011223344556677", "8899aabbccddeeff")),
        "default",
    );
    capture_and_check("udp", true, None, "none");
}

/// The example of the README and of the issue, typed exactly as written at one end and
/// mirrored at the other: default interface name l2tpeth0, default l2spec, no cookie.
#[test]
fn readme_example_works_as_written() {
    let p = pair(false);
    p.da.ul2tp("add tunnel tunnel_id 3000 peer_tunnel_id 4000 encap udp local 192.0.2.1 remote 192.0.2.2 udp_sport 5000 udp_dport 6000");
    p.da.ul2tp("add session tunnel_id 3000 session_id 1000 peer_session_id 2000");
    p.db.ul2tp("add tunnel tunnel_id 4000 peer_tunnel_id 3000 encap udp local 192.0.2.2 remote 192.0.2.1 udp_sport 6000 udp_dport 5000");
    p.db.ul2tp("add session tunnel_id 4000 session_id 2000 peer_session_id 1000");
    for (ns, addr) in [(&p.a, "10.42.0.1/24"), (&p.b, "10.42.0.2/24")] {
        ns.up_with("l2tpeth0", addr);
    }
    assert!(p.a.ping_retry("10.42.0.2", &[], 5));
    assert!(p.b.ping_retry("10.42.0.1", &[], 3));
    let t = p.da.ul2tp("show tunnel");
    assert_eq!(
        t,
        "Tunnel 3000, encap UDP\n  From 192.0.2.1 to 192.0.2.2\n  Peer tunnel 4000\n  UDP source / dest ports: 5000/6000\n  UDP checksum: disabled\n"
    );
    let s = p.da.ul2tp("show session");
    assert_eq!(
        s,
        "Session 1000 in tunnel 3000\n  Peer session 2000, tunnel 4000\n  interface name: l2tpeth0\n  offset 0, peer offset 0\n\n"
    );
}

/// The checksum options of docs/reference/kernel.md §1.8 / §5.5 as seen on the wire: IPv4 UDP checksums
/// only with `udp_csum on`; IPv6 always, unless `udp6_csum_tx off`.
#[test]
fn udp_checksum_options_on_the_wire() {
    for (v6, opt, zero) in [
        (false, None, true),
        (false, Some(("udp_csum", "on")), false),
        (true, None, false),
        (true, Some(("udp6_csum_tx", "off")), true),
    ] {
        let p = pair(v6);
        let (la, lb) = if v6 {
            ("fd00::1", "fd00::2")
        } else {
            ("192.0.2.1", "192.0.2.2")
        };
        let cap = Capture::start(&p.a, "eth0", "udp port 5400");
        let mut opts = opt.map(|(k, v)| format!("{k} {v}")).unwrap_or_default();
        if v6 && opt.is_some() {
            // Receivers must accept zero checksums for IPv6 (udp6_csum_rx off).
            opts.push_str(" udp6_csum_rx off");
        }
        p.ul2tp(
            &format!("add tunnel tunnel_id 1 peer_tunnel_id 2 local {la} remote {lb} udp_sport 5400 udp_dport 5400 {opts}"),
            &format!("add tunnel tunnel_id 2 peer_tunnel_id 1 local {lb} remote {la} udp_sport 5400 udp_dport 5400 {opts}"),
        );
        p.ul2tp(
            "add session name pw0 tunnel_id 1 session_id 7 peer_session_id 8",
            "add session name pw0 tunnel_id 2 session_id 8 peer_session_id 7",
        );
        for (ns, a) in [(&p.a, "198.51.100.1/24"), (&p.b, "198.51.100.2/24")] {
            ns.up_with("pw0", a);
        }
        assert!(
            p.a.ping_retry("198.51.100.2", &[], 5),
            "ping with {opt:?} (v6 {v6})"
        );
        let pcap = cap.stop();
        let out = tshark(
            &pcap,
            &[
                "-T",
                "fields",
                "-e",
                "ip.src",
                "-e",
                "ipv6.src",
                "-e",
                "udp.checksum",
            ],
        );
        let sent: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with(la) || l.contains(&format!("\t{la}\t")))
            .collect();
        assert!(!sent.is_empty(), "{out}");
        for l in sent {
            let c = l.rsplit('\t').next().unwrap();
            assert_eq!(
                c == "0x0000",
                zero,
                "checksum {c} with {opt:?} (v6 {v6}): {l}"
            );
        }
    }
}
