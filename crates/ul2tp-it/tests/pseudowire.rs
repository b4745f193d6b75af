//! Ethernet pseudowires between two daemons on one veth link: cookies, cookie mismatch,
//! L2-specific sublayer, and what the packets look like to tshark.

use std::time::Duration;

use ul2tp_it::{have, tshark, Capture, Pair};

fn pair(v6: bool) -> Pair {
    Pair::new(v6)
}

/// Tunnel 1000/2000 and session 0x1001/0x2001 like the capture README, with extra session args
/// for each side.
fn pw(p: &Pair, encap: &str, v6: bool, a_extra: &[&str], b_extra: &[&str]) {
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
    for (d, tid, ptid, l, r, sid, psid, extra) in [
        (&p.da, 2000, 1000, la, lb, "0x2001", "0x1001", a_extra),
        (&p.db, 1000, 2000, lb, la, "0x1001", "0x2001", b_extra),
    ] {
        d.ul2tp(&format!("add tunnel tunnel_id {tid} peer_tunnel_id {ptid} encap {encap} local {l} remote {r} {ports}"));
        let extra = extra.join(" ");
        d.ul2tp(&format!(
            "add session name pw0 tunnel_id {tid} session_id {sid} peer_session_id {psid} {extra}"
        ));
    }
    p.a.up_with("pw0", "198.51.100.1/24");
    p.b.up_with("pw0", "198.51.100.2/24");
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
            &["cookie", ca, "peer_cookie", cb],
            &["cookie", cb, "peer_cookie", ca],
        );
        assert!(
            p.a.ping_retry("198.51.100.2", &[], 5),
            "ping with {} cookies over {encap}",
            ca.len() / 2
        );
        let s = p.da.session_stats(2000, 0x2001);
        assert_eq!(s.rx_cookie_discards, 0);
        assert!(s.rx_packets > 0);
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
        &[
            "cookie",
            "0011223344556677",
            "peer_cookie",
            "0102030405060708",
        ],
        &[
            "cookie",
            "8899aabbccddeeff",
            "peer_cookie",
            "0011223344556677",
        ],
    );
    assert!(
        !p.b.ping_retry("198.51.100.1", &[], 2),
        "ping succeeded despite a cookie mismatch"
    );
    let s = p.da.session_stats(2000, 0x2001);
    assert!(s.rx_cookie_discards > 0, "{s:?}");
    assert_eq!(s.rx_errors, s.rx_cookie_discards, "{s:?}");
    assert_eq!(s.rx_packets, 0, "{s:?}");
    // The other direction passed its cookie check (b received ARP requests from a? no: a never
    // gets b's replies); b counts no cookie discards.
    assert_eq!(p.db.session_stats(1000, 0x1001).rx_cookie_discards, 0);
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
    let (mut ea, mut eb) = (vec!["l2spec_type", l2spec], vec!["l2spec_type", l2spec]);
    if let Some((ca, cb)) = cookie {
        ea.extend_from_slice(&["cookie", ca, "peer_cookie", cb]);
        eb.extend_from_slice(&["cookie", cb, "peer_cookie", ca]);
    }
    pw(&p, encap, v6, &ea, &eb);
    assert!(p.a.ping_retry("198.51.100.2", &[], 5));
    std::thread::sleep(Duration::from_millis(100));
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
        let mut ta = vec![
            "add",
            "tunnel",
            "tunnel_id",
            "1",
            "peer_tunnel_id",
            "2",
            "local",
            la,
            "remote",
            lb,
            "udp_sport",
            "5400",
            "udp_dport",
            "5400",
        ];
        let mut tb = vec![
            "add",
            "tunnel",
            "tunnel_id",
            "2",
            "peer_tunnel_id",
            "1",
            "local",
            lb,
            "remote",
            la,
            "udp_sport",
            "5400",
            "udp_dport",
            "5400",
        ];
        if let Some((k, v)) = opt {
            ta.extend_from_slice(&[k, v]);
            tb.extend_from_slice(&[k, v]);
        }
        if v6 && opt.is_some() {
            // Receivers must accept zero checksums for IPv6 (udp6_csum_rx off).
            ta.extend_from_slice(&["udp6_csum_rx", "off"]);
            tb.extend_from_slice(&["udp6_csum_rx", "off"]);
        }
        p.da.cli_ok(&ta);
        p.db.cli_ok(&tb);
        p.da.ul2tp("add session name pw0 tunnel_id 1 session_id 7 peer_session_id 8");
        p.db.ul2tp("add session name pw0 tunnel_id 2 session_id 8 peer_session_id 7");
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
