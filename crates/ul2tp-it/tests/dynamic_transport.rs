//! Dynamic L2TPv3 tunnels over every transport: two daemons with a `[control]` section
//! negotiate a control connection over L2TPv3/IP or UDP, on IPv4 or IPv6, and an Ethernet
//! (or Ethernet VLAN) pseudowire in it; pings cross the pseudowire, and tshark's decode of a
//! capture on the link shows the control messages (SCCRQ .. ICCN) on the expected transport
//! and none on the other. Circuit Status: taking one side's pseudowire device down switches
//! the other side's carrier off (Set-Link-Info), bringing it up switches it on again; the
//! same with the pppN of an L2TPv3 PPP pseudowire. Also:
//! an L2TPv2 PPP call over UDP/IPv6 (L2TPv2 is refused over IP), and a dynamic L2TPv3 PPP
//! pseudowire over IP, both terminated by the daemon's PPP endpoint.

use std::time::Duration;

use ul2tp_api::{encap_type, pw_type};
use ul2tp_it::{ping_stats, tshark, unique, veth, wait_until, Capture, Daemon, Netns};

fn wait_for(what: &str, f: impl FnMut() -> bool) {
    assert!(
        wait_until(Duration::from_secs(10), f),
        "timed out waiting for {what}"
    );
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Transport {
    Udp,
    Ip,
}

/// Message types of the AVP tables (RFC 3931 §3.1).
const SCCRQ: &str = "1";
const SCCRP: &str = "2";
const SCCCN: &str = "3";
const ICRQ: &str = "10";
const ICRP: &str = "11";
const ICCN: &str = "12";
const SLI: &str = "16";

/// Two namespaces on one veth link with ul2tpd running in each, and the dynamic tunnel a
/// opened to b.
struct Sites {
    a: Netns,
    b: Netns,
    da: Daemon,
    db: Daemon,
    /// Addresses of a and b on the link.
    addr: (&'static str, &'static str),
    tid: u32,
    dir: std::path::PathBuf,
}

impl Drop for Sites {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn sites(v6: bool, transport: Transport, cap: &mut Option<Capture>) -> Sites {
    sites_with(v6, transport, "3", "", cap)
}

/// [`sites`] with the protocol version of the tunnel and more `[control]` keys for b.
fn sites_with(
    v6: bool,
    transport: Transport,
    version: &str,
    b_extra: &str,
    cap: &mut Option<Capture>,
) -> Sites {
    let a = Netns::new("ta");
    let b = Netns::new("tb");
    veth(&a, "eth0", &b, "eth0");
    let addr = if v6 {
        ("fd00::1", "fd00::2")
    } else {
        ("192.0.2.1", "192.0.2.2")
    };
    a.up_with("eth0", &format!("{}/{}", addr.0, if v6 { 64 } else { 24 }));
    b.up_with("eth0", &format!("{}/{}", addr.1, if v6 { 64 } else { 24 }));
    let dir = std::env::temp_dir().join(unique("dyt"));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = |host: &str, ip: &str, extra: &str| {
        let p = dir.join(format!("{host}.toml"));
        let udp = if v6 {
            format!("[{ip}]:1701")
        } else {
            format!("{ip}:1701")
        };
        // Both transports listen: the test shows the chosen one is used.
        std::fs::write(
            &p,
            format!(
                "[control]\nlisten = \"{udp}\"\nlisten_ip = [\"{ip}\"]\nhost_name = \"{host}\"\nsecret = \"s3cret\"\n{extra}"
            ),
        )
        .unwrap();
        p
    };
    let (ca, cb) = (conf("site-a", addr.0, ""), conf("site-b", addr.1, b_extra));
    *cap = Some(Capture::start(
        &a,
        "eth0",
        "udp port 1701 or ip proto 115 or ip6 proto 115",
    ));
    let da = Daemon::start(&a, &["--config", ca.to_str().unwrap()]);
    let db = Daemon::start(&b, &["--config", cb.to_str().unwrap()]);
    let encap = match transport {
        Transport::Udp => "udp",
        Transport::Ip => "ip",
    };
    let tid = da.connect_tunnel_id(&format!("{} encap {encap} version {version}", addr.1));
    wait_for("tunnel on both sides", || {
        da.tunnel_dump().iter().any(|t| t.conn_id == Some(tid)) && !db.tunnel_dump().is_empty()
    });
    let tb = db.tunnel_dump()[0].clone();
    assert_eq!(tb.peer_conn_id, Some(tid));
    let want_encap = match transport {
        Transport::Udp => encap_type::UDP,
        Transport::Ip => encap_type::IP,
    };
    assert_eq!(tb.encap_type, Some(want_encap), "{tb:?}");
    assert_eq!(tb.proto_version, version.parse().ok(), "{tb:?}");
    if v6 {
        assert_eq!(tb.ip6_daddr, Some(addr.0.parse().unwrap()), "{tb:?}");
    } else {
        assert_eq!(tb.ip_daddr, Some(addr.0.parse().unwrap()), "{tb:?}");
    }
    Sites {
        a,
        b,
        da,
        db,
        addr,
        tid,
        dir,
    }
}

/// Open a session from a (`extra`: more `connect session` arguments); returns the device
/// names on a and b.
fn session(s: &Sites, extra: &str) -> (String, String) {
    let ifname = unique("dy");
    let out = s.da.ul2tp(&format!(
        "connect session tunnel_id {} name {ifname} {extra}",
        s.tid
    ));
    assert!(out.starts_with("Session "), "{out:?}");
    wait_for("session on both sides", || {
        !s.da.session_dump().is_empty() && !s.db.session_dump().is_empty()
    });
    let sb = s.db.session_dump()[0].clone();
    (ifname, sb.ifname.clone().expect("device on b"))
}

/// Quiet pseudowire ends and three pings each way.
fn ping_across(s: &Sites, a_if: &str, b_if: &str) {
    let (mac_a, mac_b) = ("02:00:00:00:0a:01", "02:00:00:00:0b:01");
    s.a.quiet_link(a_if, mac_a, "198.51.100.1/24", "198.51.100.2", mac_b);
    s.b.quiet_link(b_if, mac_b, "198.51.100.2/24", "198.51.100.1", mac_a);
    assert_eq!(
        s.a.ping_count("198.51.100.2", 3, "0.2"),
        3,
        "ping over the pseudowire"
    );
    assert_eq!(s.b.ping_count("198.51.100.1", 3, "0.2"), 3);
}

/// tshark's view of the control messages: (transport, message type) per message.
fn control_messages(pcap: &[u8]) -> Vec<(Transport, String)> {
    let out = tshark(
        pcap,
        &[
            "-Y",
            "l2tp.avp.message_type",
            "-T",
            "fields",
            "-e",
            "udp.dstport",
            "-e",
            "l2tp.avp.message_type",
        ],
    );
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let t = if f[0].is_empty() {
                Transport::Ip
            } else {
                Transport::Udp
            };
            (t, f.get(1).copied().unwrap_or("").to_string())
        })
        .collect()
}

fn run(v6: bool, transport: Transport) {
    let mut cap = None;
    let s = sites(v6, transport, &mut cap);
    let (a_if, b_if) = session(&s, "");
    ping_across(&s, &a_if, &b_if);
    let sa = s.da.session_dump()[0].clone();
    // Three requests and three replies each way, with the L2TPv3 header of the transport:
    // (UDP: the flags word,) session id, the negotiated 8-byte cookie, the default sublayer.
    let hdr = match transport {
        Transport::Udp => 4 + 4 + 8 + 4,
        Transport::Ip => 4 + 8 + 4,
    };
    assert_eq!(
        s.da.session_stats(s.tid, sa.session_id.unwrap()),
        ping_stats(hdr, 6, 6)
    );

    let pcap = cap.take().unwrap().stop();
    let msgs = control_messages(&pcap);
    for want in [SCCRQ, SCCRP, SCCCN, ICRQ, ICRP, ICCN] {
        assert!(
            msgs.iter().any(|(t, m)| *t == transport && m == want),
            "message type {want} not seen over {transport:?}: {msgs:?}"
        );
    }
    assert!(
        msgs.iter().all(|(t, _)| *t == transport),
        "control messages on the other transport: {msgs:?}"
    );
    // The pings crossed the pseudowire on the same transport: 12 ICMP messages (3 requests
    // and 3 replies each way) inside L2TPv3 with an 8-byte cookie and the default sublayer.
    let icmp = |filter: &str| {
        tshark(
            &pcap,
            &[
                "-o",
                "l2tp.cookie_size:cookie8",
                "-o",
                "l2tp.l2_specific:default",
                "-d",
                "l2tp.pw_type==5,eth",
                "-Y",
                filter,
                "-T",
                "fields",
                "-e",
                "frame.number",
            ],
        )
        .lines()
        .filter(|l| !l.is_empty())
        .count()
    };
    let (ours, other) = match transport {
        Transport::Udp => ("icmp && udp.port == 1701", "icmp && !udp"),
        Transport::Ip => ("icmp && !udp", "icmp && udp"),
    };
    assert_eq!(
        (icmp(ours), icmp(other)),
        (12, 0),
        "ICMP over {transport:?}"
    );

    s.da.ul2tp(&format!("disconnect tunnel_id {}", s.tid));
    wait_for("tunnels gone", || {
        s.da.tunnel_dump().is_empty() && s.db.tunnel_dump().is_empty()
    });
}

#[test]
fn dynamic_pseudowire_over_ip_ipv4() {
    run(false, Transport::Ip);
}

#[test]
fn dynamic_pseudowire_over_udp_ipv6() {
    run(true, Transport::Udp);
}

#[test]
fn dynamic_pseudowire_over_ip_ipv6() {
    run(true, Transport::Ip);
}

/// L2TPv2 runs over UDP only: asking for it over IP is refused with a clear message, and no
/// tunnel is created; so is a tunnel to an address family without a listener.
#[test]
fn l2tpv2_over_ip_and_missing_listeners_are_refused() {
    let mut cap = None;
    let s = sites(false, Transport::Ip, &mut cap);
    drop(cap);
    let o =
        s.da.cli(&["connect", "remote", s.addr.1, "encap", "ip", "version", "2"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("UDP only"), "{err}");
    // Through the API as well (the CLI refuses before asking).
    let r = s.da.client().request(
        ul2tp_api::Command::ControlConnect,
        ul2tp_api::Attrs {
            ip_daddr: Some(s.addr.1.parse().unwrap()),
            encap_type: Some(encap_type::IP),
            proto_version: Some(2),
            ..ul2tp_api::Attrs::default()
        },
        false,
    );
    match r {
        Err(ul2tp::ClientError::Api(e)) => {
            assert_eq!(e.errno, ul2tp_api::Errno::EPROTONOSUPPORT);
            assert!(e.message.contains("UDP only"), "{}", e.message);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.da.tunnel_dump().len(), 1, "only the test's v3 tunnel");
    // A family without a listener of that transport: refused, naming the key to add (the CLI
    // prints the daemon's message and the errno text).
    let o = s.da.cli(&["connect", "remote", "2001:db8::9"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        err,
        "ul2tp: connect: no UDP control listener for IPv6: add one with [control] listen / listen_udp (Address family not supported by protocol)\n"
    );
    let r = s.da.client().request(
        ul2tp_api::Command::ControlConnect,
        ul2tp_api::Attrs {
            ip6_daddr: Some("2001:db8::9".parse().unwrap()),
            ..ul2tp_api::Attrs::default()
        },
        false,
    );
    match r {
        Err(ul2tp::ClientError::Api(e)) => {
            assert_eq!(e.errno, ul2tp_api::Errno::EAFNOSUPPORT);
            assert_eq!(
                e.message,
                "no UDP control listener for IPv6: add one with [control] listen / listen_udp"
            );
        }
        other => panic!("{other:?}"),
    }
}

/// Wait up to 2 s: a device change is reported when it happens (link events), not by the
/// daemon's 5 s re-check.
fn wait_soon(what: &str, f: impl FnMut() -> bool) {
    assert!(
        wait_until(Duration::from_secs(2), f),
        "timed out waiting for {what}"
    );
}

/// Whether `dev` in `ns` has its carrier (no `NO-CARRIER` flag).
fn carrier(ns: &Netns, dev: &str) -> bool {
    !ns.ip(&["link", "show", "dev", dev]).contains("NO-CARRIER")
}

/// Circuit Status over L2TPv3/IP: a's device down ⇒ Set-Link-Info ⇒ b's carrier off (and
/// its pings fail); a's device up ⇒ b's carrier on and pings cross again. And the other way.
#[test]
fn circuit_status_follows_the_peer_device() {
    let mut cap = None;
    let s = sites(false, Transport::Ip, &mut cap);
    let (a_if, b_if) = session(&s, "");
    ping_across(&s, &a_if, &b_if);
    assert!(carrier(&s.b, &b_if) && carrier(&s.a, &a_if));

    s.a.ip(&["link", "set", &a_if, "down"]);
    wait_soon("carrier off on b", || !carrier(&s.b, &b_if));
    assert!(
        !s.b.ping("198.51.100.1", &[]),
        "ping through a circuit that is down"
    );
    assert!(s.db.log().contains("circuit inactive"), "{}", s.db.log());
    s.a.ip(&["link", "set", &a_if, "up"]);
    wait_soon("carrier on on b", || carrier(&s.b, &b_if));
    assert_eq!(s.b.ping_count("198.51.100.1", 3, "0.2"), 3);

    s.b.ip(&["link", "set", &b_if, "down"]);
    wait_soon("carrier off on a", || !carrier(&s.a, &a_if));
    s.b.ip(&["link", "set", &b_if, "up"]);
    wait_soon("carrier on on a", || carrier(&s.a, &a_if));
    assert_eq!(s.a.ping_count("198.51.100.2", 3, "0.2"), 3);

    // Four Set-Link-Info messages on the wire (a down, a up, b down, b up).
    let pcap = cap.take().unwrap().stop();
    let sli = control_messages(&pcap)
        .into_iter()
        .filter(|(t, m)| *t == Transport::Ip && m == SLI)
        .count();
    assert_eq!(sli, 4, "Set-Link-Info messages");
    let out = tshark(
        &pcap,
        &[
            "-Y",
            "l2tp.avp.message_type == 16",
            "-T",
            "fields",
            "-e",
            "l2tp.avp.type",
        ],
    );
    for l in out.lines().filter(|l| !l.is_empty()) {
        assert!(
            l.split(',').any(|t| t == "71"),
            "SLI without Circuit Status: {l:?}"
        );
    }
}

/// An Ethernet VLAN pseudowire: both ends tag with VLAN 100 (a's vlan_id, b's from the Remote
/// End ID), the device carries untagged frames.
#[test]
fn dynamic_ethernet_vlan_pseudowire() {
    let mut cap = None;
    let s = sites(false, Transport::Udp, &mut cap);
    let (a_if, b_if) = session(&s, "pw_type eth_vlan vlan_id 100");
    let sb = s.db.session_dump()[0].clone();
    assert_eq!(
        (sb.pw_type, sb.vlan_id),
        (Some(pw_type::ETH_VLAN), Some(100))
    );
    ping_across(&s, &a_if, &b_if);
    let pcap = cap.take().unwrap().stop();
    let out = tshark(
        &pcap,
        &[
            "-o",
            "l2tp.cookie_size:cookie8",
            "-o",
            "l2tp.l2_specific:default",
            "-d",
            "l2tp.pw_type==4,eth",
            "-Y",
            "icmp",
            "-T",
            "fields",
            "-e",
            "vlan.id",
        ],
    );
    let vids: Vec<&str> = out.lines().filter(|l| !l.is_empty()).collect();
    assert!(vids.len() >= 12, "{out}");
    assert!(vids.iter().all(|v| *v == "100"), "{out}");
}

/// The device holding `addr` in `ns` (IPv4), if any.
fn device_with(ns: &Netns, addr: &str) -> Option<String> {
    ns.ip(&["-o", "-4", "addr", "show"])
        .lines()
        .find(|l| l.contains(&format!(" {addr}")))
        .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
}

/// A dynamic PPP call: b terminates it with its PPP endpoint (pppN, an address from its
/// pool), a runs the client on the session it opened; a ping crosses it. Returns the capture.
fn ppp_call(v6: bool, transport: Transport, version: &str) -> Vec<u8> {
    let mut cap = None;
    let _call = ppp_sites(v6, transport, version, &mut cap);
    cap.take().unwrap().stop()
}

/// The sites of [`ppp_call`] with the call up: the sites and the pppN of a and of b.
fn ppp_sites(
    v6: bool,
    transport: Transport,
    version: &str,
    cap: &mut Option<Capture>,
) -> (Sites, String, String) {
    let s = sites_with(
        v6,
        transport,
        version,
        "ppp_local = \"10.95.0.1\"\nppp_pool = \"10.95.0.10-10.95.0.20\"\n",
        cap,
    );
    let sid =
        s.da.connect_session_id(&format!("tunnel_id {} pw_type ppp", s.tid));
    wait_for("session on both sides", || {
        !s.da.session_dump().is_empty() && !s.db.session_dump().is_empty()
    });
    let sb = s.db.session_dump()[0].clone();
    assert_eq!(sb.pw_type, Some(pw_type::PPP));
    let o = s.da.cli(&[
        "ppp",
        "start",
        "tunnel_id",
        &s.tid.to_string(),
        "session_id",
        &sid.to_string(),
    ]);
    assert!(o.status.success(), "ppp start: {o:?}");
    let dev_a = device_with(&s.a, "10.95.0.10").expect("pppN on a");
    wait_for("pppN on b", || device_with(&s.b, "10.95.0.1").is_some());
    let dev_b = device_with(&s.b, "10.95.0.1").unwrap();
    assert!(
        dev_a.starts_with("ppp") && dev_b.starts_with("ppp"),
        "{dev_a} {dev_b}"
    );
    assert!(s.a.ping_retry("10.95.0.1", &[], 5), "ping over PPP");
    (s, dev_a, dev_b)
}

/// `dev`'s operational state and whether it has its carrier (`LOWER_UP`), from
/// `ip -j link show`.
fn link_state(ns: &Netns, dev: &str) -> (String, bool) {
    let j: serde_json::Value =
        serde_json::from_str(&ns.ip(&["-j", "link", "show", "dev", dev])).unwrap();
    let l = &j[0];
    let flags = l["flags"].as_array().cloned().unwrap_or_default();
    (
        l["operstate"].as_str().unwrap_or("").to_string(),
        flags.iter().any(|f| f == "LOWER_UP"),
    )
}

/// The IPv6 link-local address on `dev` in `ns`, if any.
fn link_local(ns: &Netns, dev: &str) -> Option<String> {
    ns.ip(&["-o", "-6", "addr", "show", "dev", dev, "scope", "link"])
        .split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .and_then(|a| a.split('/').next().map(str::to_string))
}

/// Circuit Status on an L2TPv3 PPP pseudowire (over IP): a's pppN taken administratively
/// down ⇒ Set-Link-Info with the circuit inactive ⇒ b's pppN loses its carrier (operational
/// state down) and pings stop; a's pppN up ⇒ carrier back and pings cross. And from b.
/// The IPv6 link-local address the kernel removes with the device down is back once it is
/// up. tshark sees four SLIs, each with a Circuit Status AVP whose Active bit follows.
#[test]
fn circuit_status_on_a_ppp_pseudowire() {
    let mut cap = None;
    let (s, dev_a, dev_b) = ppp_sites(false, Transport::Ip, "3", &mut cap);
    assert_eq!(link_state(&s.b, &dev_b), ("UNKNOWN".to_string(), true));

    let ll_b = link_local(&s.b, &dev_b).expect("IPv6CP link-local on b");
    s.a.ip(&["link", "set", &dev_a, "down"]);
    wait_soon("no carrier on b's pppN", || !link_state(&s.b, &dev_b).1);
    assert_eq!(link_state(&s.b, &dev_b).0, "DOWN");
    assert!(
        !s.b.ping("10.95.0.10", &[]),
        "ping through a circuit that is down"
    );
    assert!(s.db.log().contains("circuit inactive"), "{}", s.db.log());
    s.a.ip(&["link", "set", &dev_a, "up"]);
    wait_soon("carrier on b's pppN", || link_state(&s.b, &dev_b).1);
    assert!(
        s.b.ping_retry("10.95.0.10", &[], 5),
        "ping after the circuit came back"
    );
    // Down, the kernel took a's IPv6 addresses off its pppN; the daemon put them back.
    wait_soon("a's link-local again", || {
        link_local(&s.a, &dev_a).is_some()
    });
    assert!(
        s.a.ping_retry(&format!("{ll_b}%{dev_a}"), &["-6"], 5),
        "IPv6 after the circuit came back"
    );

    s.b.ip(&["link", "set", &dev_b, "down"]);
    wait_soon("no carrier on a's pppN", || !link_state(&s.a, &dev_a).1);
    assert!(
        !s.a.ping("10.95.0.1", &[]),
        "ping through a circuit that is down"
    );
    s.b.ip(&["link", "set", &dev_b, "up"]);
    wait_soon("carrier on a's pppN", || link_state(&s.a, &dev_a).1);
    assert!(
        s.a.ping_retry("10.95.0.1", &[], 5),
        "ping after the circuit came back"
    );

    let pcap = cap.take().unwrap().stop();
    let out = tshark(
        &pcap,
        &[
            "-Y",
            "l2tp.avp.message_type == 16",
            "-T",
            "fields",
            "-e",
            "l2tp.avp.type",
            "-e",
            "l2tp.avp.circuit_status",
        ],
    );
    let slis: Vec<(String, String)> = out
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (types, active) = l.split_once('\t').unwrap_or((l, ""));
            (types.to_string(), active.to_string())
        })
        .collect();
    assert_eq!(slis.len(), 4, "Set-Link-Info messages: {out}");
    let active: Vec<bool> = slis
        .iter()
        .map(|(types, a)| {
            assert!(
                types.split(',').any(|t| t == "71"),
                "SLI without Circuit Status: {types:?}"
            );
            matches!(a.as_str(), "1" | "True")
        })
        .collect();
    assert_eq!(active, [false, true, false, true], "{out}");
}

/// A dynamic L2TPv3 PPP pseudowire over L2TPv3/IP.
#[test]
fn dynamic_ppp_pseudowire_over_ip() {
    ppp_call(false, Transport::Ip, "3");
}

/// L2TPv2 over UDP/IPv6 (RFC 2661 runs over UDP, of either family): tunnel and PPP call come
/// up, and tshark sees the L2TPv2 control messages on UDP port 1701 over IPv6.
#[test]
fn l2tpv2_call_over_udp_ipv6() {
    let pcap = ppp_call(true, Transport::Udp, "2");
    let msgs = control_messages(&pcap);
    for want in [SCCRQ, SCCRP, SCCCN, ICRQ, ICRP, ICCN] {
        assert!(
            msgs.iter().any(|(t, m)| *t == Transport::Udp && m == want),
            "message type {want}: {msgs:?}"
        );
    }
    let v = tshark(
        &pcap,
        &[
            "-Y",
            "l2tp.avp.message_type == 1",
            "-T",
            "fields",
            "-e",
            "ipv6.src",
            "-e",
            "l2tp.version",
        ],
    );
    assert_eq!(v.trim(), "fd00::1\t2", "{v}");
}

/// L2TPv3 over UDP/IPv4 with the same checks as the other transports.
#[test]
fn dynamic_pseudowire_over_udp_ipv4() {
    run(false, Transport::Udp);
}
