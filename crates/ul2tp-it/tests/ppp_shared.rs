//! `ppp_device = "shared"`: the LNS (192.0.2.2) terminates PPP calls of a ul2tpd LAC
//! (192.0.2.1) in two tunnels on one TUN (`subs0`) instead of a pppN each. Every subscriber
//! address answers pings from the LNS host (routed by destination through the device's
//! table), the subscribers reach the LNS's `ppp_local` (answered by the kernel through the
//! device), a packet with a source that is not the call's is dropped and counted, and a call
//! that goes away leaves no entry: its address is unrouted afterwards. A bad `ppp_device`
//! names file, line and key.

use std::time::Duration;

use ul2tp_it::metrics::{scrape, value};
use ul2tp_it::{output_text, wait_until, Daemon, LacLns};

const LNS: &str = "[control]\nlisten = \"192.0.2.2:1701\"\n\
[metrics]\nlisten = \"127.0.0.1:9650\"\n\
[[lns]]\nname = \"subs\"\nppp_local = \"10.95.0.1\"\nppp_pool = \"10.95.0.10-10.95.0.29\"\n\
ppp_device = \"shared\"\nppp_device_name = \"subs0\"\n";

fn counter(lns: &ul2tp_it::Netns, name: &str) -> f64 {
    value(&scrape(lns), name).unwrap_or_else(|| panic!("no {name}"))
}

#[test]
fn calls_share_one_device_routed_by_address() {
    let LacLns {
        a,
        b,
        lac,
        lns,
        dir,
        ..
    } = LacLns::start(("sha", "shb"), "pppshared", "", LNS);
    let _cleanup = Cleanup(&dir, &lns, &lac);
    // Two tunnels, two calls each.
    let mut calls = Vec::new();
    for _ in 0..2 {
        let tid = lac.connect_tunnel("192.0.2.2 version 2");
        assert!(lac.wait_tunnel(&tid, Duration::from_secs(10)), "tunnel");
        for _ in 0..2 {
            let sid = lac.connect_ppp_session(&tid);
            assert!(lac.wait_session(&tid, &sid, Duration::from_secs(10)));
            let o = lac.cli(&["ppp", "start", "tunnel_id", &tid, "session_id", &sid]);
            assert!(o.status.success(), "{}", output_text(&o));
            calls.push((tid.clone(), sid));
        }
    }
    // The four addresses, each on its own pppN at the LAC, all on subs0 at the LNS.
    let addrs: Vec<String> = (10..14).map(|i| format!("10.95.0.{i}")).collect();
    // The LAC's namespace plays four subscriber hosts: what leaves with a subscriber's
    // address leaves through that subscriber's pppN (else its replies would reach the LNS
    // on another call and be dropped as spoofed, as they should).
    for (i, addr) in addrs.iter().enumerate() {
        let dev = a
            .device_with(addr)
            .unwrap_or_else(|| panic!("LAC pppN with {addr}"));
        let table = (100 + i).to_string();
        a.ip(&["route", "add", "default", "dev", &dev, "table", &table]);
        a.ip(&["rule", "add", "from", addr, "table", &table]);
    }
    let on = b.ip(&["-o", "-4", "addr", "show", "dev", "subs0"]);
    assert!(on.contains("inet 10.95.0.1/32"), "{on}");
    let links = b.ip(&["-o", "link", "show"]);
    assert!(!links.contains(": ppp"), "no pppN at the LNS: {links}");
    // One route per pool prefix (10.95.0.10-29 is five), none per call.
    let routes = b.ip(&["route", "show", "dev", "subs0"]);
    let pool = [
        "10.95.0.10/31",
        "10.95.0.12/30",
        "10.95.0.16/29",
        "10.95.0.24/30",
        "10.95.0.28/31",
    ];
    for r in pool {
        assert!(routes.contains(&format!("{r} ")), "{routes}");
    }
    assert_eq!(routes.lines().count(), pool.len(), "{routes}");
    // Every subscriber answers the LNS host, and reaches the LNS's own address.
    for addr in &addrs {
        assert!(b.ping_retry(addr, &[], 5), "ping {addr} from the LNS");
    }
    assert!(
        a.ping_retry("10.95.0.1", &[], 3),
        "ping ppp_local from a subscriber"
    );
    let show = lns.ul2tp("show ppp");
    assert_eq!(show.matches("subs0").count(), 4, "{show}");
    assert_eq!(counter(&b, "ul2tp_ppp_shared_spoofed_total"), 0.0);
    assert_eq!(counter(&b, "ul2tp_ppp_shared_calls"), 4.0);

    // A subscriber sending with an address that is not its own: dropped and counted.
    let dev = a.device_with("10.95.0.10").unwrap();
    a.ip(&["addr", "add", "10.99.0.5/32", "dev", &dev]);
    assert!(!a.ping("10.95.0.1", &["-I", "10.99.0.5", "-c", "3", "-i", "0.2"]));
    let spoofed = counter(&b, "ul2tp_ppp_shared_spoofed_total");
    assert!(spoofed >= 3.0, "spoofed {spoofed}");
    // Its own address still works.
    assert!(a.ping_retry("10.95.0.1", &["-I", "10.95.0.10"], 3));

    // Hang up one call: its address has no owner any more (dropped, counted as unrouted),
    // the others still answer.
    let unrouted = counter(&b, "ul2tp_ppp_shared_unrouted_total");
    let (tid, sid) = &calls[0];
    lac.cli_ok(&["del", "session", "tunnel_id", tid, "session_id", sid]);
    assert!(wait_until(Duration::from_secs(10), || {
        !lns.ul2tp("show ppp").contains("10.95.0.10")
    }));
    assert!(!b.ping("10.95.0.10", &["-c", "2", "-i", "0.2", "-W", "1"]));
    assert!(counter(&b, "ul2tp_ppp_shared_unrouted_total") >= unrouted + 2.0);
    assert!(b.ping_retry("10.95.0.11", &[], 3));
    assert_eq!(counter(&b, "ul2tp_ppp_shared_calls"), 3.0);
    assert_eq!(
        b.ip(&["route", "show", "dev", "subs0"]),
        routes,
        "pool routes stay"
    );
}

/// An unknown `ppp_device` value names file, line and key.
#[test]
fn unknown_ppp_device_is_refused_at_its_line() {
    let dir = std::env::temp_dir().join(ul2tp_it::unique("pppshared-conf"));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("lns.toml");
    let text = LNS.replace("\"shared\"", "\"tun\"");
    std::fs::write(&f, &text).unwrap();
    let line = text
        .lines()
        .position(|l| l.starts_with("ppp_device ="))
        .unwrap()
        + 1;
    let o = ul2tp_it::run(std::process::Command::new(ul2tp_it::bin("ul2tpd")).args([
        "--check-config",
        "--config",
        f.to_str().unwrap(),
    ]));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!o.status.success());
    let expect = format!(
        "{}:{line}: [[lns]] ppp_device: profile \"subs\": \"tun\" is not one of per-session, shared",
        f.display()
    );
    assert!(err.contains(&expect), "{err}\nexpected: {expect}");
}

/// Logs on failure, the directory always.
struct Cleanup<'a>(&'a std::path::Path, &'a Daemon, &'a Daemon);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- LNS log ---\n{}", self.1.log());
            eprintln!("--- LAC log ---\n{}", self.2.log());
        }
        let _ = std::fs::remove_dir_all(self.0);
    }
}
