//! PPP sessions terminated by the daemons' own PPP endpoints: an L2TPv2 tunnel with a PPP
//! session between two daemons, `ul2tp ppp start` as server on one side and as client on the
//! other; LCP and IPCP come up over L2TP, a `pppN` device with the negotiated addresses appears
//! on both sides and pings cross it; deleting the session removes the devices.

use std::time::{Duration, Instant};

use ul2tp_it::Pair;

fn ppp_device(ns: &ul2tp_it::Netns, addr: &str) -> Option<String> {
    let out = ns.ip(&["-o", "-4", "addr", "show"]);
    out.lines()
        .find(|l| l.contains(&format!("inet {addr} ")))
        .and_then(|l| l.split_whitespace().nth(1))
        .map(str::to_string)
}

fn wait_device(ns: &ul2tp_it::Netns, addr: &str) -> String {
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(d) = ppp_device(ns, addr) {
            return d;
        }
        assert!(
            Instant::now() < end,
            "no device with {addr}:\n{}",
            ns.ip(&["-o", "addr", "show"])
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn ppp_endpoints_over_l2tpv2_bring_up_ppp_devices() {
    let p = Pair::new(false);
    p.da.ul2tp("add tunnel version 2 tunnel_id 10 peer_tunnel_id 20 local 192.0.2.1 remote 192.0.2.2 udp_sport 1701 udp_dport 1701");
    p.db.ul2tp("add tunnel version 2 tunnel_id 20 peer_tunnel_id 10 local 192.0.2.2 remote 192.0.2.1 udp_sport 1701 udp_dport 1701");
    p.da.ul2tp("add session pw_type ppp tunnel_id 10 session_id 1 peer_session_id 2");
    p.db.ul2tp("add session pw_type ppp tunnel_id 20 session_id 2 peer_session_id 1");
    p.da.ul2tp("ppp start tunnel_id 10 session_id 1 local 10.99.0.1 remote 10.99.0.2");
    p.db.ul2tp("ppp start tunnel_id 20 session_id 2");
    let dev_a = wait_device(&p.a, "10.99.0.1");
    let dev_b = wait_device(&p.b, "10.99.0.2");
    assert!(
        dev_a.starts_with("ppp") && dev_b.starts_with("ppp"),
        "{dev_a} {dev_b}"
    );
    assert!(
        p.a.ping_retry("10.99.0.2", &[], 5),
        "ping over PPP over L2TPv2"
    );
    assert!(p.b.ping_retry("10.99.0.1", &[], 3));
    let s = p.da.session_stats(10, 1);
    assert!(
        s.tx_packets > 0 && s.rx_packets > 0 && s.rx_errors == 0,
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
/// are up, with the call's (tunnel id, session id) on the LAC.
struct LacLns {
    a: ul2tp_it::Netns,
    b: ul2tp_it::Netns,
    lac: ul2tp_it::Daemon,
    lns: ul2tp_it::Daemon,
    call: (String, String),
    dir: std::path::PathBuf,
}

impl LacLns {
    fn new(lns_extra: &str) -> LacLns {
        let a = ul2tp_it::Netns::new("la");
        let b = ul2tp_it::Netns::new("lb");
        ul2tp_it::veth(&a, "eth0", &b, "eth0");
        a.ip(&["addr", "add", "192.0.2.1/24", "dev", "eth0"]);
        b.ip(&["addr", "add", "192.0.2.2/24", "dev", "eth0"]);
        let dir = std::env::temp_dir().join(ul2tp_it::unique("lns"));
        std::fs::create_dir_all(&dir).unwrap();
        let (ca, cb) = (dir.join("lac.toml"), dir.join("lns.toml"));
        std::fs::write(&ca, "[control]\nlisten = \"192.0.2.1:1701\"\n").unwrap();
        std::fs::write(
            &cb,
            format!("[control]\nlisten = \"192.0.2.2:1701\"\n{lns_extra}"),
        )
        .unwrap();
        let lac = ul2tp_it::Daemon::start(&a, &["--config", ca.to_str().unwrap()]);
        let lns = ul2tp_it::Daemon::start(&b, &["--config", cb.to_str().unwrap()]);
        // `ul2tp connect` prints "Tunnel N requested" / "Session M in tunnel N requested".
        let tid = lac
            .ul2tp("connect remote 192.0.2.2 version 2")
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string();
        let end = Instant::now() + Duration::from_secs(10);
        while !lac.ul2tp("show tunnel").contains(&format!("Tunnel {tid},")) {
            assert!(Instant::now() < end, "tunnel did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = lac.ul2tp(&format!("connect session tunnel_id {tid} pw_type ppp"));
        let sid = out.split_whitespace().nth(1).unwrap().to_string();
        while !lac
            .ul2tp("show session")
            .contains(&format!("Session {sid} in tunnel {tid}"))
        {
            assert!(Instant::now() < end, "session did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        LacLns {
            a,
            b,
            lac,
            lns,
            call: (tid, sid),
            dir,
        }
    }

    /// Start the LAC's PPP client endpoint on the call, with extra `ppp start` words.
    fn ppp_start(&self, extra: &str) {
        let (tid, sid) = &self.call;
        self.lac.ul2tp(&format!(
            "ppp start tunnel_id {tid} session_id {sid} {extra}"
        ));
    }
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
    let t = LacLns::new("ppp_local = \"10.98.0.1\"\nppp_pool = \"10.98.0.10-10.98.0.20\"\n");
    t.ppp_start("");
    let dev_lns = wait_device(&t.b, "10.98.0.1");
    let dev_lac = wait_device(&t.a, "10.98.0.10");
    assert!(dev_lns.starts_with("ppp") && dev_lac.starts_with("ppp"));
    assert!(
        t.a.ping_retry("10.98.0.1", &[], 5),
        "LAC pings the LNS over PPP"
    );
}

/// The LNS requires CHAP-MD5 from its PPP peers: the right secret brings the link up, a wrong
/// one does not.
#[test]
fn lns_requires_chap() {
    let conf = "ppp_local = \"10.97.0.1\"\nppp_pool = \"10.97.0.10-10.97.0.20\"\nppp_auth = \"chap\"\nppp_users = { alice = \"wonderland\" }\n";
    let t = LacLns::new(conf);
    t.ppp_start("user alice password wonderland");
    wait_device(&t.a, "10.97.0.10");
    assert!(t.a.ping_retry("10.97.0.1", &[], 5));

    let t = LacLns::new(conf);
    t.ppp_start("user alice password looking-glass");
    let failed = "authentication of \"alice\" failed";
    let end = Instant::now() + Duration::from_secs(6);
    while Instant::now() < end && !t.lns.log().contains(failed) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(t.lns.log().contains(failed), "{}", t.lns.log());
    assert!(
        ppp_device(&t.a, "10.97.0.10").is_none(),
        "link came up with a wrong secret"
    );
}
