//! IPv6 for PPP subscribers between two daemons: a LAC and an LNS ul2tpd (namespaces a and b)
//! with `[control]`, an L2TPv2 call placed by the LAC and terminated by the LNS's PPP
//! endpoint. IPv6CP comes up next to IPCP, both pppN get `fe80::<interface identifier>`, the
//! LNS leases a /64 from `ppp_ipv6_pool`, routes it through its pppN and advertises it in
//! Router Advertisements; the LAC forms its address from the /64 and its identifier (SLAAC),
//! adds the default route (`ppp_ipv6_default_route`), and `ping -6` crosses the link both
//! ways. When the call goes, the /64 returns to the pool: the pool here holds a single /64,
//! and the next call gets it again.

use std::net::Ipv6Addr;
use std::time::Duration;

use ul2tp_it::{have, tshark, wait_until, Capture, Daemon, Netns};

fn wait_for(secs: u64, cond: impl FnMut() -> bool) -> bool {
    wait_until(Duration::from_secs(secs), cond)
}

/// (device, address) of the global IPv6 addresses in `ns` inside `prefix/plen`.
fn global_v6(ns: &Netns, prefix: Ipv6Addr, plen: u32) -> Vec<(String, Ipv6Addr)> {
    let mask = u128::MAX << (128 - plen);
    ns.ip(&["-o", "-6", "addr", "show", "scope", "global"])
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let dev = w.nth(1)?.to_string();
            let a: Ipv6Addr = w.nth(1)?.split('/').next()?.parse().ok()?;
            (u128::from(a) & mask == u128::from(prefix)).then_some((dev, a))
        })
        .collect()
}

/// The (device, link-local address) a daemon logged as "IPv6 up on DEV: ADDR".
fn logged_link_local(d: &Daemon) -> Option<(String, Ipv6Addr)> {
    d.log().lines().rev().find_map(|l| {
        let rest = l.split("IPv6 up on ").nth(1)?;
        let (dev, addr) = rest.split_once(": ")?;
        Some((dev.to_string(), addr.trim().parse().ok()?))
    })
}

struct Setup {
    a: Netns,
    b: Netns,
    lac: Daemon,
    lns: Daemon,
    tid: String,
    dir: std::path::PathBuf,
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Setup {
    fn new(lac_extra: &str, lns_extra: &str) -> Setup {
        let ul2tp_it::LacLns {
            a,
            b,
            lac,
            lns,
            dir,
            ..
        } = ul2tp_it::LacLns::start(
            ("6a", "6b"),
            "v6",
            lac_extra,
            &format!("[control]\nlisten = \"192.0.2.2:1701\"\n{lns_extra}"),
        );
        let tid = lac.connect_tunnel("192.0.2.2 version 2");
        assert!(
            lac.wait_tunnel(&tid, Duration::from_secs(10)),
            "tunnel did not come up"
        );
        Setup {
            a,
            b,
            lac,
            lns,
            tid,
            dir,
        }
    }

    /// Place a PPP call and start the LAC's PPP client on it (IPCP up when it returns);
    /// returns the session id.
    fn call(&self) -> String {
        let tid = &self.tid;
        let sid = self.lac.connect_ppp_session(tid);
        assert!(
            self.lac.wait_session(tid, &sid, Duration::from_secs(10)),
            "session did not come up"
        );
        let o = self
            .lac
            .cli(&["ppp", "start", "tunnel_id", tid, "session_id", &sid]);
        assert!(
            o.status.success(),
            "ppp start: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        sid
    }
}

const LNS: &str = "ppp_local = \"10.96.0.1\"\nppp_pool = \"10.96.0.10-10.96.0.20\"\nppp_ipv6_pool = \"2001:db8:100:7::/64\"\n";

#[test]
fn lns_advertises_a_64_and_the_lac_configures_it() {
    let lns = format!("{LNS}ppp_ipv6_dns = [\"2001:db8::53\", \"2001:db8::54\"]\n");
    let t = Setup::new("ppp_ipv6_default_route = true\n", &lns);
    // An address of the LNS's beyond the PPP link, reached with the LAC's default route.
    t.b.ip(&["-6", "addr", "add", "2001:db8:ffff::1/128", "dev", "lo"]);
    let cap = Capture::start(&t.a, "eth0", "udp port 1701");
    t.call();
    let prefix: Ipv6Addr = "2001:db8:100:7::".parse().unwrap();
    let mut got = Vec::new();
    assert!(
        wait_for(15, || {
            got = global_v6(&t.a, prefix, 64);
            !got.is_empty()
        }),
        "no address from the advertised /64 on the LAC:\n{}\nLAC log:\n{}",
        t.a.ip(&["-6", "addr", "show"]),
        t.lac.log()
    );
    let (dev_lac, addr_lac) = got[0].clone();
    assert!(dev_lac.starts_with("ppp"), "{dev_lac}");
    // Link-local addresses from IPv6CP's identifiers on both ends; the global address is the
    // advertised /64 with the LAC's identifier.
    let (ll_dev_lac, ll_lac) = logged_link_local(&t.lac).expect("LAC logs its link-local");
    let (dev_lns, ll_lns) = logged_link_local(&t.lns).expect("LNS logs its link-local");
    assert_eq!(ll_dev_lac, dev_lac);
    assert!(ll_lac.is_unicast_link_local() && ll_lns.is_unicast_link_local());
    assert_ne!(ll_lac, ll_lns);
    assert_eq!(
        u128::from(addr_lac) as u64,
        u128::from(ll_lac) as u64,
        "SLAAC address {addr_lac} uses the interface identifier of {ll_lac}"
    );
    let lns_addrs = t.b.ip(&["-6", "addr", "show", "dev", &dev_lns]);
    assert!(lns_addrs.contains(&format!("{ll_lns}/64")), "{lns_addrs}");
    let lac_addrs = t.a.ip(&["-6", "addr", "show", "dev", &dev_lac]);
    assert!(lac_addrs.contains(&format!("{ll_lac}/64")), "{lac_addrs}");
    // The kernel made no link-local address of its own on either pppN.
    for (ns, dev) in [(&t.a, &dev_lac), (&t.b, &dev_lns)] {
        let ll = ns.ip(&["-o", "-6", "addr", "show", "dev", dev, "scope", "link"]);
        assert_eq!(ll.lines().count(), 1, "{dev}: {ll}");
    }
    // The LNS routes the /64 through the subscriber's pppN; the LAC has its default route.
    let routes = t.b.ip(&["-6", "route", "show", "2001:db8:100:7::/64"]);
    assert!(
        routes.contains(&format!("dev {dev_lns}")),
        "LNS routes: {routes}"
    );
    let default = t.a.ip(&["-6", "route", "show", "default"]);
    assert!(
        default.contains(&format!("via {ll_lns} dev {dev_lac}")),
        "LAC default route: {default}"
    );
    // The advertised DNS servers (RDNSS) reach the LAC, which reports them.
    let dns_line = format!("IPv6 DNS servers from {ll_lns}: 2001:db8::53, 2001:db8::54");
    assert!(t.lac.log().contains(&dns_line), "{}", t.lac.log());
    // `show session` on both daemons shows the link's /64.
    for d in [&t.lns, &t.lac] {
        let shown = d.ul2tp("show session");
        assert!(
            shown.contains("  ipv6 prefix: 2001:db8:100:7::/64\n"),
            "{shown}"
        );
    }
    // ping -6 both ways: link-local, and global through the route and the default route.
    assert!(
        t.a.ping_retry(&format!("{ll_lns}%{dev_lac}"), &["-6"], 5),
        "LAC pings the LNS's link-local"
    );
    assert!(
        t.b.ping_retry(&format!("{ll_lac}%{dev_lns}"), &["-6"], 5),
        "LNS pings the LAC's link-local"
    );
    assert!(
        t.b.ping_retry(&addr_lac.to_string(), &["-6"], 5),
        "LNS pings the LAC's SLAAC address"
    );
    assert!(
        t.a.ping_retry("2001:db8:ffff::1", &["-6"], 5),
        "LAC pings beyond the LNS over its default route"
    );
    // tshark decodes the solicitation and the advertisements inside L2TP/PPP and checks
    // their ICMPv6 checksums independently of ul2tp_ppp::nd (checksum status 1 = good).
    let pcap = cap.stop();
    assert!(have("tshark"), "tshark is needed (apt-get install tshark)");
    let fields = |filter: &str, f: &[&str]| -> Vec<String> {
        let mut args = vec!["-Y", filter, "-T", "fields"];
        for x in f {
            args.extend(["-e", x]);
        }
        tshark(&pcap, &args)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    };
    let rs = fields(
        "icmpv6.type == 133",
        &[
            "ipv6.src",
            "ipv6.dst",
            "ipv6.hlim",
            "icmpv6.checksum.status",
        ],
    );
    assert!(
        rs.iter()
            .any(|l| l == &format!("{ll_lac}\tff02::2\t255\t1")),
        "Router Solicitations: {rs:?}"
    );
    let ra = fields(
        "icmpv6.type == 134",
        &[
            "ipv6.src",
            "ipv6.dst",
            "ipv6.hlim",
            "icmpv6.checksum.status",
            "icmpv6.nd.ra.router_lifetime",
            "icmpv6.opt.prefix",
            "icmpv6.opt.prefix.length",
            "icmpv6.opt.prefix.flag.a",
            "icmpv6.opt.rdnss",
        ],
    );
    let want = format!(
        "{ll_lns}\tff02::1\t255\t1\t1800\t2001:db8:100:7::\t64\t1\t2001:db8::53,2001:db8::54"
    );
    assert!(!ra.is_empty(), "no Router Advertisement captured");
    assert!(
        ra.iter().all(|l| *l == want),
        "Router Advertisements: {ra:?}"
    );
}

/// The pool holds one /64: a second call while the first is up gets link-local addresses
/// only; once the first call is gone the /64 is free and the next call gets it.
#[test]
fn the_64_returns_to_the_pool_with_the_session() {
    let t = Setup::new("", LNS);
    let prefix: Ipv6Addr = "2001:db8:100:7::".parse().unwrap();
    let first = t.call();
    assert!(
        wait_for(15, || global_v6(&t.a, prefix, 64).len() == 1),
        "first call: {}",
        t.a.ip(&["-6", "addr", "show"])
    );
    let default = t.a.ip(&["-6", "route", "show", "default"]);
    assert!(
        !default.contains("ppp"),
        "no default route unless asked: {default}"
    );
    let second = t.call();
    assert!(
        wait_for(10, || t.lns.log().contains("IPv6 prefix pool exhausted")),
        "{}",
        t.lns.log()
    );
    assert_eq!(global_v6(&t.a, prefix, 64).len(), 1, "one /64 only");
    let shown = t.lns.ul2tp("show session");
    assert_eq!(
        shown.matches("ipv6 prefix: 2001:db8:100:7::/64").count(),
        1,
        "only the first call has the /64: {shown}"
    );
    for sid in [&first, &second] {
        t.lac
            .ul2tp(&format!("del session tunnel_id {} session_id {sid}", t.tid));
    }
    assert!(
        wait_for(15, || !t.lns.ul2tp("show session").contains("Session ")),
        "LNS kept the calls: {}",
        t.lns.ul2tp("show session")
    );
    assert!(
        wait_for(5, || global_v6(&t.a, prefix, 64).is_empty()),
        "{}",
        t.a.ip(&["-6", "addr", "show"])
    );
    t.call();
    assert!(
        wait_for(15, || global_v6(&t.a, prefix, 64).len() == 1),
        "the /64 was not released: {}\nLNS log:\n{}",
        t.a.ip(&["-6", "addr", "show"]),
        t.lns.log()
    );
}

/// DHCPv6 prefix delegation: the LNS delegates a /56 of `ppp_ipv6_pd_pool` to the LAC that
/// asks for one (`ppp_ipv6_pd`), routes it via the LAC's link-local address through its
/// pppN, and both daemons show it; tshark decodes the exchange (Solicit with Rapid Commit,
/// Reply with the IA Prefix).
#[test]
fn lns_delegates_a_prefix_with_dhcpv6() {
    let lns = format!("{LNS}ppp_ipv6_pd_pool = \"2001:db8:f00::/48\"\nppp_ipv6_pd_length = 56\n");
    let t = Setup::new("ppp_ipv6_pd = true\n", &lns);
    let cap = Capture::start(&t.a, "eth0", "udp port 1701");
    t.call();
    let line = "  delegated prefix: 2001:db8:f00::/56\n";
    assert!(
        wait_for(15, || t.lac.ul2tp("show session").contains(line)),
        "LAC: {}\n{}",
        t.lac.ul2tp("show session"),
        t.lac.log()
    );
    assert!(t.lns.ul2tp("show session").contains(line));
    let (dev_lns, _) = logged_link_local(&t.lns).expect("LNS link-local");
    let (_, ll_lac) = logged_link_local(&t.lac).expect("LAC link-local");
    let routes = t.b.ip(&["-6", "route", "show", "2001:db8:f00::/56"]);
    assert!(
        routes.contains(&format!("via {ll_lac} dev {dev_lns}")),
        "LNS routes: {routes}"
    );
    assert!(t.lac.log().contains("delegated prefix 2001:db8:f00::/56"));
    let pcap = cap.stop();
    assert!(have("tshark"), "tshark is needed (apt-get install tshark)");
    let msgs = tshark(
        &pcap,
        &[
            "-o",
            "udp.check_checksum:TRUE",
            "-Y",
            "dhcpv6",
            "-T",
            "fields",
            "-e",
            "dhcpv6.msgtype",
            "-e",
            "dhcpv6.iaprefix.pref_addr",
            "-e",
            "dhcpv6.iaprefix.pref_len",
            "-e",
            "udp.checksum.status",
        ],
    );
    let msgs: Vec<&str> = msgs.lines().filter(|l| !l.is_empty()).collect();
    // UDP checksums verified by tshark: the L2TP datagram's is absent (3), the DHCPv6
    // one inside good (1).
    assert!(msgs.iter().all(|l| l.ends_with("\t3,1")), "{msgs:?}");
    assert!(
        msgs.iter().any(|l| l.starts_with("1\t")),
        "Solicit: {msgs:?}"
    );
    assert!(
        msgs.contains(&"7\t2001:db8:f00::\t56\t3,1"),
        "Reply with the prefix: {msgs:?}"
    );
}

/// The (device, IPv4 address) pairs of `ns`'s pppN devices.
fn ppp_v4(ns: &Netns) -> Vec<(String, String)> {
    ns.ip(&["-o", "-4", "addr", "show"])
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let dev = w.nth(1)?.to_string();
            let a = w.nth(1)?.split('/').next()?.to_string();
            dev.starts_with("ppp").then_some((dev, a))
        })
        .collect()
}

/// Two `[[lns]]` profiles with pools of their own: the LAC's two `[[lac]]` profiles (Host
/// Names "lac-red" and "lac-blue", autodial) land in the LNS profiles "red" and "blue", and
/// each call gets its IPv4 address and its /64 from its profile's pools, the DNS servers of
/// its profile, and, on the LAC, the default route of its `[[lac]]` profile
/// (`ppp_ipv6_default_route` in "red" only). After a reload (SIGHUP) of the LNS with "red"
/// unchanged and "blue" changed, a new "red" call gets the next /64: the pool's leases
/// carried over (a fresh pool would hand out the first call's /64 again).
#[test]
fn lns_profiles_hand_out_64s_from_their_own_pools() {
    let (a, b) = ul2tp_it::linked_hosts("6pa", "6pb");
    let dir = std::env::temp_dir().join(ul2tp_it::unique("v6p"));
    std::fs::create_dir_all(&dir).unwrap();
    let profiles = |blue_extra: &str| {
        format!(
            "[control]\nlisten = \"192.0.2.2:1701\"\n\
[[lns]]\nname = \"red\"\nhost_names = [\"lac-red\"]\nppp_local = \"10.97.0.1\"\nppp_pool = \"10.97.0.10-10.97.0.20\"\n\
ppp_ipv6_pool = \"2001:db8:a00::/48\"\nppp_ipv6_dns = [\"2001:db8::a53\"]\n\
[[lns]]\nname = \"blue\"\nhost_names = [\"lac-blue\"]\nppp_local = \"10.98.0.1\"\nppp_pool = \"10.98.0.10-10.98.0.20\"\n\
ppp_ipv6_pool = \"2001:db8:b00::/48\"\n{blue_extra}"
        )
    };
    let (ca, cb) = (dir.join("lac.toml"), dir.join("lns.toml"));
    std::fs::write(&cb, profiles("")).unwrap();
    std::fs::write(
        &ca,
        "[control]\nlisten = \"192.0.2.1:1701\"\nhost_name = \"lac-red\"\n\
[[lac]]\nname = \"red\"\nlns = \"192.0.2.2\"\nhost_name = \"lac-red\"\nautodial = true\nppp_ipv6_default_route = true\n\
[[lac]]\nname = \"blue\"\nlns = \"192.0.2.2\"\nhost_name = \"lac-blue\"\nautodial = true\n",
    )
    .unwrap();
    let lns = Daemon::start(&b, &["--config", cb.to_str().unwrap()]);
    let lac = Daemon::start(&a, &["--config", ca.to_str().unwrap()]);
    let dev_of = |v4: &str| {
        ppp_v4(&a)
            .into_iter()
            .find(|(_, x)| x == v4)
            .map(|(d, _)| d)
    };
    let (red, blue): (Ipv6Addr, Ipv6Addr) = (
        "2001:db8:a00::".parse().unwrap(),
        "2001:db8:b00::".parse().unwrap(),
    );
    assert!(
        wait_for(20, || {
            dev_of("10.97.0.10").is_some()
                && dev_of("10.98.0.10").is_some()
                && !global_v6(&a, red, 64).is_empty()
                && !global_v6(&a, blue, 64).is_empty()
        }),
        "both calls with their /64:\n{}\n{}\nLAC log:\n{}\nLNS log:\n{}",
        a.ip(&["-o", "addr", "show"]),
        lac.ul2tp("show session"),
        lac.log(),
        lns.log()
    );
    let (dev_red, dev_blue) = (dev_of("10.97.0.10").unwrap(), dev_of("10.98.0.10").unwrap());
    assert_ne!(dev_red, dev_blue);
    // Each /64 on the device of its profile's call, nothing from the other pool there.
    assert_eq!(global_v6(&a, red, 48).len(), 1, "{}", a.ip(&["-6", "addr"]));
    assert_eq!(
        global_v6(&a, blue, 48).len(),
        1,
        "{}",
        a.ip(&["-6", "addr"])
    );
    assert_eq!(global_v6(&a, red, 64)[0].0, dev_red);
    assert_eq!(global_v6(&a, blue, 64)[0].0, dev_blue);
    let shown = lns.ul2tp("show session");
    for want in [
        "ipv6 prefix: 2001:db8:a00::/64",
        "ipv6 prefix: 2001:db8:b00::/64",
    ] {
        assert_eq!(shown.matches(want).count(), 1, "{want}: {shown}");
    }
    for (prefix, v4) in [
        ("2001:db8:a00::/64", "10.97.0.10"),
        ("2001:db8:b00::/64", "10.98.0.10"),
    ] {
        let routes = b.ip(&["-6", "route", "show", prefix]);
        let v4_routes = b.ip(&["-4", "route", "show", v4]);
        let dev = v4_routes
            .split_whitespace()
            .skip_while(|w| *w != "dev")
            .nth(1)
            .unwrap_or_else(|| panic!("LNS route to {v4}: {v4_routes:?}"));
        assert!(
            routes.contains(&format!("dev {dev}")),
            "LNS routes {prefix} through the call's pppN {dev}: {routes}"
        );
    }
    // The [[lac]] profiles' IPv6 keys: the default route through "red"'s call only.
    let default = a.ip(&["-6", "route", "show", "default"]);
    assert!(
        default.contains(&format!("dev {dev_red}")) && !default.contains(&dev_blue),
        "LAC default route: {default}"
    );
    // The DNS servers of "red", none from "blue".
    let log = lac.log();
    assert_eq!(
        log.matches("IPv6 DNS servers from ").count(),
        1,
        "RDNSS from red only:\n{log}"
    );
    assert!(log.contains(": 2001:db8::a53"), "{log}");
    // Both subscribers reach the LNS over their own links.
    for (p, dev) in [(red, &dev_red), (blue, &dev_blue)] {
        let (_, addr) = global_v6(&a, p, 64)[0].clone();
        assert!(
            b.ping_retry(&addr.to_string(), &["-6"], 5),
            "LNS pings {addr} on the LAC's {dev}"
        );
    }

    // Reload with "blue" changed (DNS servers) and "red" as it was; a new call of "red"
    // (the LAC's [control] host_name) gets the pool's next /64.
    std::fs::write(&cb, profiles("ppp_dns = [\"192.0.2.53\"]\n")).unwrap();
    lns.signal("HUP");
    assert!(
        wait_for(10, || lns.log().contains("reload: [[lns]] profiles now")),
        "{}",
        lns.log()
    );
    let tid = lac.connect_tunnel("192.0.2.2 version 2");
    assert!(lac.wait_tunnel(&tid, Duration::from_secs(10)));
    let sid = lac.connect_ppp_session(&tid);
    assert!(lac.wait_session(&tid, &sid, Duration::from_secs(10)));
    let o = lac.cli(&["ppp", "start", "tunnel_id", &tid, "session_id", &sid]);
    assert!(
        o.status.success(),
        "ppp start: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let next: Ipv6Addr = "2001:db8:a00:1::".parse().unwrap();
    assert!(
        wait_for(15, || global_v6(&a, next, 64).len() == 1),
        "the new red call has the next /64:\n{}\nLNS log:\n{}",
        a.ip(&["-6", "addr", "show"]),
        lns.log()
    );
    assert_eq!(
        global_v6(&a, red, 64).len(),
        1,
        "the first /64 is not handed out twice: {}",
        a.ip(&["-6", "addr", "show"])
    );
    drop((lac, lns));
    let _ = std::fs::remove_dir_all(&dir);
}

/// An IPv6-only LNS profile (`ppp_ipv6_pool`, no `ppp_local` nor IPv4 pool): the LNS runs no
/// IPCP (the LAC's Configure-Requests get a Protocol-Reject), yet both ends get their pppN
/// with the IPv6CP link-local addresses, the LNS routes the /64 through it, the LAC forms its
/// address by SLAAC, and `ping -6` crosses the link both ways.
#[test]
fn ipv6_only_link_gets_its_ppp_devices() {
    let t = Setup::new("", "ppp_ipv6_pool = \"2001:db8:100:7::/64\"\n");
    t.call();
    let prefix: Ipv6Addr = "2001:db8:100:7::".parse().unwrap();
    let mut got = Vec::new();
    assert!(
        wait_for(15, || {
            got = global_v6(&t.a, prefix, 64);
            !got.is_empty()
        }),
        "no address from the advertised /64 on the LAC:\n{}\nLAC log:\n{}\nLNS log:\n{}",
        t.a.ip(&["-6", "addr", "show"]),
        t.lac.log(),
        t.lns.log()
    );
    let (dev_lac, addr_lac) = got[0].clone();
    assert!(dev_lac.starts_with("ppp"), "{dev_lac}");
    let (_, ll_lac) = logged_link_local(&t.lac).expect("LAC logs its link-local");
    let (dev_lns, ll_lns) = logged_link_local(&t.lns).expect("LNS logs its link-local");
    // Neither pppN has an IPv4 address: IPCP never came up.
    for (ns, dev) in [(&t.a, &dev_lac), (&t.b, &dev_lns)] {
        let v4 = ns.ip(&["-o", "-4", "addr", "show", "dev", dev]);
        assert!(v4.trim().is_empty(), "{dev}: {v4}");
    }
    for d in [&t.lac, &t.lns] {
        assert!(d.log().contains("PPP up, IPv6 only"), "{}", d.log());
    }
    let routes = t.b.ip(&["-6", "route", "show", "2001:db8:100:7::/64"]);
    assert!(routes.contains(&format!("dev {dev_lns}")), "{routes}");
    assert!(
        t.a.ping_retry(&format!("{ll_lns}%{dev_lac}"), &["-6"], 5),
        "LAC pings the LNS's link-local"
    );
    assert!(
        t.b.ping_retry(&format!("{ll_lac}%{dev_lns}"), &["-6"], 5),
        "LNS pings the LAC's link-local"
    );
    assert!(
        t.b.ping_retry(&addr_lac.to_string(), &["-6"], 5),
        "LNS pings the LAC's SLAAC address"
    );
    for (d, dev) in [(&t.lns, &dev_lns), (&t.lac, &dev_lac)] {
        let shown = d.ul2tp("show session");
        assert!(
            shown.contains("  ipv6 prefix: 2001:db8:100:7::/64\n"),
            "{shown}"
        );
        assert!(
            shown.contains(&format!(" IPv6 only on {dev}, online ")),
            "{shown}"
        );
    }
}
