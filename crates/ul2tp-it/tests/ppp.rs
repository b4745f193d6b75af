//! PPP sessions terminated by the daemons' own PPP endpoints: an L2TPv2 tunnel with a PPP
//! session between two daemons, `ul2tp ppp start` as server on one side and as client on the
//! other; LCP and IPCP come up over L2TP, a `pppN` device with the negotiated addresses appears
//! on both sides and pings cross it; deleting the session removes the devices. With the
//! control protocol (a LAC and an LNS daemon): setup without restart-timer delays, the LNS
//! host name in CHAP Challenges, and every PPP link failure (authentication, echo) clearing
//! the call with a CDN that carries the RFC 3145 PPP Disconnect Cause Code.

use std::process::Output;
use std::time::Duration;

use ul2tp_it::{output_text, traffic_only, tshark, wait_until, Capture, Pair};

/// Wait until `cond` holds (or `secs` pass); returns whether it held.
fn wait_for(secs: u64, cond: impl FnMut() -> bool) -> bool {
    wait_until(Duration::from_secs(secs), cond)
}

fn wait_device(ns: &ul2tp_it::Netns, addr: &str) -> String {
    let mut dev = None;
    wait_for(15, || {
        dev = ns.device_with(addr);
        dev.is_some()
    });
    dev.unwrap_or_else(|| panic!("no device with {addr}:\n{}", ns.ip(&["-o", "addr", "show"])))
}

#[test]
fn ppp_endpoints_over_l2tpv2_bring_up_ppp_devices() {
    let p = Pair::new(false);
    p.da.ul2tp("add tunnel version 2 tunnel_id 10 peer_tunnel_id 20 local 192.0.2.1 remote 192.0.2.2 udp_sport 1701 udp_dport 1701");
    p.db.ul2tp("add tunnel version 2 tunnel_id 20 peer_tunnel_id 10 local 192.0.2.2 remote 192.0.2.1 udp_sport 1701 udp_dport 1701");
    p.da.ul2tp("add session pw_type ppp tunnel_id 10 session_id 1 peer_session_id 2");
    p.db.ul2tp("add session pw_type ppp tunnel_id 20 session_id 2 peer_session_id 1");
    // `ppp start` answers once IPCP is up, so the two sides start at the same time.
    let socket_a = p.da.socket.clone();
    let server = std::thread::spawn(move || {
        ul2tp_it::run(
            std::process::Command::new(ul2tp_it::bin("ul2tp"))
                .arg("--socket")
                .arg(socket_a)
                .args(
                    "ppp start tunnel_id 10 session_id 1 local 10.99.0.1 remote 10.99.0.2"
                        .split(' '),
                ),
        )
    });
    p.db.ul2tp("ppp start tunnel_id 20 session_id 2");
    let o = server.join().unwrap();
    assert!(o.status.success(), "server side: {}", output_text(&o));
    // Up when the command returns: the devices are there.
    let dev_a = p.a.device_with("10.99.0.1").expect("server pppN");
    let dev_b = p.b.device_with("10.99.0.2").expect("client pppN");
    assert!(
        dev_a.starts_with("ppp") && dev_b.starts_with("ppp"),
        "{dev_a} {dev_b}"
    );
    assert!(
        p.a.ping_retry("10.99.0.2", &[], 5),
        "ping over PPP over L2TPv2"
    );
    assert!(p.b.ping_retry("10.99.0.1", &[], 3));
    // The session carries LCP and IPCP as well as the pings, and how many negotiation frames
    // cross depends on timing (a Configure-Request sent before the peer's endpoint was
    // attached is retransmitted; IPv6 packets from the pppN devices may or may not be
    // carried), so the packet and byte counters are bounded below: at least a
    // Configure-Request and a Configure-Ack for each of LCP and IPCP and, from the two pings,
    // a request and a reply each way; each packet with at least the 6-byte L2TPv2 header and
    // FF 03. Every error and discard counter must be 0.
    let s = p.da.session_stats(10, 1);
    assert_eq!(s, traffic_only(&s), "no errors or discards");
    assert!(s.tx_packets >= 6 && s.rx_packets >= 6, "{s:?}");
    assert!(
        s.tx_bytes >= 8 * s.tx_packets && s.rx_bytes >= 8 * s.rx_packets,
        "{s:?}"
    );
    // A second endpoint on the same session is refused.
    let o =
        p.da.cli(&["ppp", "start", "tunnel_id", "10", "session_id", "1"]);
    assert_eq!(o.status.code(), Some(2));
    // Deleting the session stops the endpoint and removes the device.
    p.da.ul2tp("del session tunnel_id 10 session_id 1");
    assert!(
        p.a.wait_link(&dev_a, false, Duration::from_secs(5)),
        "{dev_a} survived its session"
    );
}

/// A LAC and an LNS ul2tpd (namespaces a and b) with `[control]`; `lns_extra` is added to the
/// LNS's `[control]` section. Returns them after a v2 tunnel and a PPP call placed by the LAC
/// are up, with the call's (tunnel id, session id) on the LAC. Everything on the LAC's link
/// from before the tunnel is opened is captured (`stop_capture`).
struct LacLns {
    // First: stops before the namespaces go.
    cap: Option<Capture>,
    a: ul2tp_it::Netns,
    b: ul2tp_it::Netns,
    lac: ul2tp_it::Daemon,
    lns: ul2tp_it::Daemon,
    call: (String, String),
    dir: std::path::PathBuf,
}

impl LacLns {
    fn new(lns_extra: &str) -> LacLns {
        LacLns::with("", lns_extra)
    }

    /// Like `new`, with `lac_extra` added to the LAC's `[control]` section.
    fn with(lac_extra: &str, lns_extra: &str) -> LacLns {
        let ul2tp_it::LacLns {
            a,
            b,
            lac,
            lns,
            dir,
            ..
        } = ul2tp_it::LacLns::start(
            ("la", "lb"),
            "lns",
            lac_extra,
            &format!("[control]\nlisten = \"192.0.2.2:1701\"\n{lns_extra}"),
        );
        let cap = Some(Capture::start(&a, "eth0", "udp port 1701"));
        // `ul2tp connect` prints "Tunnel N requested" / "Session M in tunnel N requested".
        let tid = lac.connect_tunnel("192.0.2.2 version 2");
        assert!(
            lac.wait_tunnel(&tid, Duration::from_secs(10)),
            "tunnel did not come up"
        );
        let sid = lac.connect_ppp_session(&tid);
        assert!(
            lac.wait_session(&tid, &sid, Duration::from_secs(10)),
            "session did not come up"
        );
        LacLns {
            cap,
            a,
            b,
            lac,
            lns,
            call: (tid, sid),
            dir,
        }
    }

    /// Start the LAC's PPP client endpoint on the call, with extra `ppp start` words; it must
    /// succeed (IPCP up when it returns).
    fn ppp_start(&self, extra: &str) {
        let o = self.try_ppp_start(extra);
        assert!(o.status.success(), "ppp start: {}", output_text(&o));
    }

    /// `ul2tp ppp start` on the LAC's call, whatever its outcome.
    fn try_ppp_start(&self, extra: &str) -> Output {
        let (tid, sid) = &self.call;
        let line = format!("ppp start tunnel_id {tid} session_id {sid} {extra}");
        self.lac.cli(&line.split_whitespace().collect::<Vec<_>>())
    }

    /// Stop the capture of the LAC's link; returns the pcap.
    fn stop_capture(&mut self) -> Vec<u8> {
        self.cap.take().map(Capture::stop).unwrap_or_default()
    }

    /// Whether the call is gone from `d`'s sessions.
    fn call_gone(d: &ul2tp_it::Daemon) -> bool {
        !d.ul2tp("show session").contains("Session ")
    }
}

/// (result code, disconnect code, protocol, direction, message) of every CDN carrying a PPP
/// Disconnect Cause Code in `pcap`, as tshark decodes it.
fn cdn_causes(pcap: &[u8]) -> Vec<String> {
    tshark(
        pcap,
        &[
            "-Y",
            "l2tp.avp.message_type == 14 && l2tp.avp.disconnect_code",
            "-T",
            "fields",
            "-e",
            "ip.src",
            "-e",
            "l2tp.result_code",
            "-e",
            "l2tp.avp.disconnect_code",
            "-e",
            "l2tp.avp.control_protocol_number",
            "-e",
            "l2tp.avp.cause_code_direction",
            "-e",
            "l2tp.avp.cause_code_message",
        ],
    )
    .lines()
    .filter(|l| !l.is_empty())
    .map(str::to_string)
    .collect()
}

/// Senders of LCP Configure-Requests in `pcap`, one line each.
fn lcp_configure_requests(pcap: &[u8]) -> Vec<String> {
    tshark(
        pcap,
        &["-Y", "lcp && ppp.code == 1", "-T", "fields", "-e", "ip.src"],
    )
    .lines()
    .filter(|l| !l.is_empty())
    .map(str::to_string)
    .collect()
}

impl Drop for LacLns {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A ul2tpd LNS: L2TPv2 tunnels and PPP calls negotiated with the control protocol, each
/// call terminated by the LNS's PPP endpoint with an address from its pool; the LAC side runs
/// a PPP client endpoint on the call it placed.
#[test]
fn lns_with_address_pool() {
    let mut t = LacLns::new("ppp_local = \"10.98.0.1\"\nppp_pool = \"10.98.0.10-10.98.0.20\"\n");
    t.ppp_start("");
    // `ppp start` returned: IPCP is up and the LAC's device exists.
    let dev_lac =
        t.a.device_with("10.98.0.10")
            .expect("LAC pppN when ppp start returns");
    let dev_lns = wait_device(&t.b, "10.98.0.1");
    assert!(dev_lns.starts_with("ppp") && dev_lac.starts_with("ppp"));
    let pcap = t.stop_capture();
    // No side waited for its restart timer: on this lossless link, captured since before the
    // call existed, each sent exactly one LCP Configure-Request. (Without a send right after
    // open the LAC's request left only on the 3 s timer, with its retransmission; an LNS that
    // opened before the LAC had started PPP lost its first one and retransmitted it 3 s later.)
    ul2tp_it::require("tshark", "tshark");
    {
        let mut reqs = lcp_configure_requests(&pcap);
        reqs.sort();
        assert_eq!(
            reqs,
            ["192.0.2.1", "192.0.2.2"],
            "LCP Configure-Requests by sender"
        );
    }
    assert!(
        t.a.ping_retry("10.98.0.1", &[], 5),
        "LAC pings the LNS over PPP"
    );
}

/// The LNS requires CHAP-MD5 from its PPP peers and names itself with its `[control]
/// host_name`: the right secret brings the link up; a wrong one makes `ppp start` fail with
/// the reason, and the call is cleared on both sides with a CDN carrying cause 16.
#[test]
fn lns_requires_chap() {
    let conf = "host_name = \"lns.example.test\"\nppp_local = \"10.97.0.1\"\nppp_pool = \"10.97.0.10-10.97.0.20\"\nppp_auth = \"chap\"\nppp_users = { alice = \"wonderland\" }\n";
    let mut t = LacLns::new(conf);
    t.ppp_start("user alice password wonderland");
    assert!(t.a.device_with("10.97.0.10").is_some());
    assert!(t.a.ping_retry("10.97.0.1", &[], 5));
    let pcap = t.stop_capture();
    ul2tp_it::require("tshark", "tshark");
    {
        let names = tshark(
            &pcap,
            &["-Y", "chap.code == 1", "-T", "fields", "-e", "chap.name"],
        );
        let names: Vec<&str> = names.lines().filter(|l| !l.is_empty()).collect();
        assert!(!names.is_empty(), "no CHAP Challenge captured");
        assert!(
            names.iter().all(|n| *n == "lns.example.test"),
            "CHAP Challenge names: {names:?}"
        );
    }

    let mut t = LacLns::new(conf);
    let o = t.try_ppp_start("user alice password looking-glass");
    assert_eq!(o.status.code(), Some(2), "{}", output_text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("authentication rejected by the peer"),
        "ppp start says why: {err}"
    );
    assert!(
        !err.contains("looking-glass"),
        "secret in the message: {err}"
    );
    // Logged above debug on both sides (the daemons log at info). The LNS logs after it has
    // sent its CHAP Failure, so possibly after `ppp start` returned.
    assert!(
        wait_for(5, || t
            .lns
            .log()
            .contains("authentication of \"alice\" failed")),
        "{}",
        t.lns.log()
    );
    assert!(
        wait_for(5, || t
            .lac
            .log()
            .contains("authentication rejected by the peer")),
        "{}",
        t.lac.log()
    );
    // For the journal: the failure is one line with the user name as text (not a byte array)
    // and the ids as key=value fields; never the secret.
    let lns_log = t.lns.log();
    let line = lns_log
        .lines()
        .find(|l| l.contains("authentication of \"alice\" failed"))
        .unwrap();
    for want in ["user=\"alice\"", "tunnel_id=", "session_id="] {
        assert!(line.contains(want), "missing {want:?} in {line:?}");
    }
    assert!(!line.contains("[97, 108"), "user name as bytes: {line:?}");
    let lac_log = t.lac.log();
    let line = lac_log
        .lines()
        .find(|l| l.contains("authentication rejected by the peer"))
        .unwrap();
    assert!(
        line.contains("tunnel_id=") && line.contains("session_id="),
        "{line:?}"
    );
    for log in [&lns_log, &lac_log] {
        assert!(!log.contains("looking-glass"), "secret in the log:\n{log}");
        assert!(!log.contains("wonderland"), "secret in the log:\n{log}");
    }
    // The call is cleared on both daemons; no pppN anywhere.
    assert!(
        wait_for(15, || LacLns::call_gone(&t.lns)
            && LacLns::call_gone(&t.lac)),
        "call not cleared: LNS {} LAC {}",
        t.lns.ul2tp("show session"),
        t.lac.ul2tp("show session")
    );
    assert!(t.a.device_with("10.97.0.10").is_none());
    assert!(t.b.device_with("10.97.0.1").is_none());
    // The tunnel stays up for further calls.
    assert!(t.lac.ul2tp("show tunnel").contains("Tunnel "));
    let pcap = t.stop_capture();
    ul2tp_it::require("tshark", "tshark");
    {
        // Disconnect code 16 (authentication failed) for CHAP (0xc223 = 49699); the LNS failed
        // the peer (direction 1, at peer), the LAC was refused (2, at local). Whichever CDN
        // arrived first cleared the call; the LNS's is always sent.
        let causes = cdn_causes(&pcap);
        let lns = causes
            .iter()
            .find(|l| l.starts_with("192.0.2.2\t"))
            .unwrap_or_else(|| panic!("no CDN with a cause from the LNS: {causes:?}"));
        assert_eq!(
            lns, "192.0.2.2\t2\t16\t49699\t1\tPPP authentication of the peer failed",
            "{causes:?}"
        );
        for c in &causes {
            assert!(c.contains("\t16\t49699\t"), "{causes:?}");
        }
    }
}

/// `ppp start ... password SECRET` without `user` authenticates with the daemon's
/// `[control] host_name`.
#[test]
fn password_alone_authenticates_as_the_host_name() {
    let t = LacLns::with(
        "host_name = \"lac.example.test\"\n",
        "ppp_local = \"10.95.0.1\"\nppp_pool = \"10.95.0.10-10.95.0.20\"\nppp_auth = \"pap\"\nppp_users = { \"lac.example.test\" = \"pw-of-lac\" }\n",
    );
    t.ppp_start("password pw-of-lac");
    assert!(t.a.device_with("10.95.0.10").is_some());
    assert!(
        t.lns
            .log()
            .contains("authenticated as \"lac.example.test\""),
        "{}",
        t.lns.log()
    );
}

/// The LAC's daemon stops answering (SIGSTOP): the LNS's LCP echo fails, it clears the call
/// with cause 8 (Echo-Request timeout) and removes its pppN; once the LAC runs again the CDN
/// reaches it and its side of the call and its pppN go too.
#[test]
fn lcp_echo_failure_clears_the_call() {
    let conf = "ppp_local = \"10.96.0.1\"\nppp_pool = \"10.96.0.10-10.96.0.20\"\nppp_echo_interval = 1\nppp_echo_failure = 2\n";
    let mut t = LacLns::new(conf);
    t.ppp_start("");
    let dev_lns = wait_device(&t.b, "10.96.0.1");
    let dev_lac = t.a.device_with("10.96.0.10").expect("LAC pppN");
    let signal = |sig: &str| {
        let st = std::process::Command::new("kill")
            .args([sig, &t.lac.pid().to_string()])
            .status()
            .unwrap();
        assert!(st.success(), "kill {sig}");
    };
    signal("-STOP");
    let cleared = wait_for(20, || LacLns::call_gone(&t.lns));
    signal("-CONT");
    assert!(cleared, "LNS kept the call: {}", t.lns.log());
    assert!(
        t.b.wait_link(&dev_lns, false, Duration::from_secs(5)),
        "{dev_lns} survived"
    );
    assert!(t.lns.log().contains("echo timeout"), "{}", t.lns.log());
    assert!(
        wait_for(20, || LacLns::call_gone(&t.lac)),
        "LAC kept the call: {}",
        t.lac.log()
    );
    assert!(
        t.a.wait_link(&dev_lac, false, Duration::from_secs(5)),
        "{dev_lac} survived"
    );
    let pcap = t.stop_capture();
    ul2tp_it::require("tshark", "tshark");
    {
        let causes = cdn_causes(&pcap);
        assert!(
            causes
                .iter()
                .any(|c| c.starts_with("192.0.2.2\t2\t8\t49185\t1\t")),
            "CDN with cause 8 (LCP 0xc021 = 49185) from the LNS: {causes:?}"
        );
    }
}
