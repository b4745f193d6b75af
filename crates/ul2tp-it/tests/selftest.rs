//! The kernel's L2TP selftest (tools/testing/selftests/net/l2tp.sh, docs/reference/kernel.md §10) rebuilt
//! with ul2tpd in each host namespace: three namespaces host-1, router, host-2; L2TPv3
//! Ethernet pseudowires over IP (and, beyond the selftest, over UDP) with IPv4 and IPv6 outer
//! headers; pings across the pseudowires in both directions and routed through them; then
//! deleting the tunnels makes the pings fail and removes the devices.

use std::time::Duration;

use ul2tp_it::{ping_stats, veth, Daemon, Netns};

struct Topology {
    h1: Netns,
    _router: Netns,
    h2: Netns,
}

fn topology() -> Topology {
    let h1 = Netns::new("h1");
    let router = Netns::new("rt");
    let h2 = Netns::new("h2");
    veth(&h1, "eth0", &router, "eth1");
    veth(&h2, "eth0", &router, "eth2");
    for ns in [&h1, &router, &h2] {
        ns.sysctl("net.ipv4.ip_forward=1");
        ns.sysctl("net.ipv6.conf.all.forwarding=1");
        ns.sysctl("net.ipv6.conf.default.accept_dad=0");
        ns.sysctl("net.ipv6.conf.all.accept_dad=0");
    }
    for (ns, dev) in [
        (&h1, "eth0"),
        (&router, "eth1"),
        (&router, "eth2"),
        (&h2, "eth0"),
    ] {
        ns.sysctl(&format!("net.ipv6.conf.{dev}.accept_dad=0"));
    }
    h1.ip(&["addr", "add", "172.16.101.1/32", "dev", "lo"]);
    h1.ip(&["-6", "addr", "add", "fc00:101::1/128", "dev", "lo"]);
    h1.ip(&["addr", "add", "10.1.1.1/24", "dev", "eth0"]);
    h1.ip(&[
        "-6",
        "addr",
        "add",
        "2001:db8:1::1/64",
        "dev",
        "eth0",
        "nodad",
    ]);
    router.ip(&["addr", "add", "10.1.1.2/24", "dev", "eth1"]);
    router.ip(&[
        "-6",
        "addr",
        "add",
        "2001:db8:1::2/64",
        "dev",
        "eth1",
        "nodad",
    ]);
    router.ip(&["addr", "add", "10.1.2.2/24", "dev", "eth2"]);
    router.ip(&[
        "-6",
        "addr",
        "add",
        "2001:db8:2::2/64",
        "dev",
        "eth2",
        "nodad",
    ]);
    h2.ip(&["addr", "add", "10.1.2.1/24", "dev", "eth0"]);
    h2.ip(&[
        "-6",
        "addr",
        "add",
        "2001:db8:2::1/64",
        "dev",
        "eth0",
        "nodad",
    ]);
    h2.ip(&["addr", "add", "172.16.101.2/32", "dev", "lo"]);
    h2.ip(&["-6", "addr", "add", "fc00:101::2/128", "dev", "lo"]);
    h1.ip(&["route", "add", "10.1.2.0/24", "via", "10.1.1.2"]);
    h1.ip(&[
        "-6",
        "route",
        "add",
        "2001:db8:2::/64",
        "via",
        "2001:db8:1::2",
    ]);
    h2.ip(&["route", "add", "10.1.1.0/24", "via", "10.1.2.2"]);
    h2.ip(&[
        "-6",
        "route",
        "add",
        "2001:db8:1::/64",
        "via",
        "2001:db8:2::2",
    ]);
    assert!(
        h1.ping_retry("10.1.2.1", &[], 3),
        "underlay IPv4 does not work"
    );
    assert!(
        h1.ping_retry("2001:db8:2::1", &[], 3),
        "underlay IPv6 does not work"
    );
    Topology {
        h1,
        _router: router,
        h2,
    }
}

/// Create the selftest's tunnels and sessions on both hosts with `ul2tp` (the `ip l2tp`
/// grammar), using `encap` (`ip` or `udp`).
///
/// Unlike the selftest, `l2tp4` carries IPv4 only, with static neighbours (the MACs below),
/// so that the only packets on it are the test's pings and its session counters are exact;
/// `l2tp6` keeps neighbour discovery.
fn setup_l2tp(t: &Topology, d1: &Daemon, d2: &Daemon, encap: &str) {
    let udp = |sport: u32, dport: u32| {
        if encap == "udp" {
            format!("udp_sport {sport} udp_dport {dport}")
        } else {
            String::new()
        }
    };
    for (d, tid, ptid, local, remote) in [
        (d1, 1041, 1042, "10.1.1.1", "10.1.2.1"),
        (d2, 1042, 1041, "10.1.2.1", "10.1.1.1"),
        (d1, 1061, 1062, "2001:db8:1::1", "2001:db8:2::1"),
        (d2, 1062, 1061, "2001:db8:2::1", "2001:db8:1::1"),
    ] {
        let name = if tid < 1060 { "l2tp4" } else { "l2tp6" };
        let ports = udp(tid + 4000, ptid + 4000);
        d.ul2tp(&format!(
            "add tunnel tunnel_id {tid} peer_tunnel_id {ptid} encap {encap} local {local} remote {remote} {ports}"
        ));
        d.ul2tp(&format!(
            "add session name {name} tunnel_id {tid} session_id {tid} peer_session_id {ptid}"
        ));
    }

    for (ns, mac, me, peer, peer_mac, me6, peer6, dst, dst6) in [
        (
            &t.h1,
            H1_MAC,
            "172.16.1.1",
            "172.16.1.2",
            H2_MAC,
            "fc00:1::1",
            "fc00:1::2",
            "172.16.101.2/32",
            "fc00:101::2/128",
        ),
        (
            &t.h2,
            H2_MAC,
            "172.16.1.2",
            "172.16.1.1",
            H1_MAC,
            "fc00:1::2",
            "fc00:1::1",
            "172.16.101.1/32",
            "fc00:101::1/128",
        ),
    ] {
        ns.sysctl("net.ipv6.conf.default.accept_dad=0");
        ns.sysctl("net.ipv6.conf.l2tp4.disable_ipv6=1");
        ns.ip(&["link", "set", "dev", "l2tp4", "address", mac]);
        ns.ip(&["link", "set", "dev", "l2tp4", "up"]);
        ns.ip(&["link", "set", "dev", "l2tp6", "up"]);
        ns.ip(&["addr", "add", me, "peer", peer, "dev", "l2tp4"]);
        ns.static_neighbour("l2tp4", peer, peer_mac);
        ns.ip(&[
            "-6", "addr", "add", me6, "peer", peer6, "dev", "l2tp6", "nodad",
        ]);
        ns.ip(&["route", "add", dst, "via", peer]);
        ns.ip(&["-6", "route", "add", dst6, "via", peer6]);
    }
}

const H1_MAC: &str = "02:00:00:00:01:01";
const H2_MAC: &str = "02:00:00:00:02:01";

fn mtu(ns: &Netns, dev: &str) -> u32 {
    let out = ns.ip(&["-o", "link", "show", "dev", dev]);
    let i = out.find(" mtu ").expect("mtu in ip link output") + 5;
    out[i..].split_whitespace().next().unwrap().parse().unwrap()
}

fn run_selftest(encap: &str, mtu4: u32, mtu6: u32) {
    let t = topology();
    let d1 = Daemon::start(&t.h1, &[]);
    let d2 = Daemon::start(&t.h2, &[]);
    setup_l2tp(&t, &d1, &d2, encap);

    // docs/reference/kernel.md §6.2 / §10.2: l2tp4 1458 and l2tp6 1438 over IP, 1446 and 1426 over UDP.
    assert_eq!(mtu(&t.h1, "l2tp4"), mtu4);
    assert_eq!(mtu(&t.h1, "l2tp6"), mtu6);

    // The selftest's four assertions, from host-1; plus the reverse direction. Over l2tp4
    // (static neighbours) the first ping must be answered: one ping each.
    assert!(t.h1.ping("172.16.1.2", &[]), "IPv4 basic L2TP tunnel");
    assert!(
        t.h1.ping("172.16.101.2", &["-I", "172.16.101.1"]),
        "IPv4 route through L2TP tunnel"
    );
    assert!(
        t.h1.ping_retry("fc00:1::2", &[], 5),
        "IPv6 basic L2TP tunnel"
    );
    assert!(
        t.h1.ping_retry("fc00:101::2", &["-I", "fc00:101::1"], 3),
        "IPv6 route through L2TP tunnel"
    );
    assert!(t.h2.ping("172.16.1.1", &[]), "IPv4 reverse direction");
    assert!(
        t.h2.ping_retry("fc00:1::1", &[], 3),
        "IPv6 reverse direction"
    );

    // l2tp4 on each end carried three requests and three replies (two pings from host-1, one
    // from host-2) and nothing else; L2TPv3 header: session id and default sublayer, plus
    // the flags word over UDP.
    let header = if encap == "udp" { 12 } else { 8 };
    assert_eq!(d1.session_stats(1041, 1041), ping_stats(header, 3, 3));
    assert_eq!(d2.session_stats(1042, 1042), ping_stats(header, 3, 3));

    // Deleting the tunnels deletes the sessions and their devices, and pings fail.
    d1.ul2tp("del tunnel tunnel_id 1041");
    d1.ul2tp("del tunnel tunnel_id 1061");
    assert!(
        t.h1.wait_link("l2tp4", false, Duration::from_secs(5)),
        "l2tp4 still present after tunnel delete"
    );
    assert!(
        t.h1.wait_link("l2tp6", false, Duration::from_secs(5)),
        "l2tp6 still present after tunnel delete"
    );
    assert!(
        !t.h2.ping("172.16.1.1", &[]),
        "ping over a deleted tunnel succeeded"
    );
    assert!(
        !t.h2.ping("fc00:1::1", &[]),
        "ping6 over a deleted tunnel succeeded"
    );
    let shown = d1.ul2tp("show session");
    assert!(
        shown.trim().is_empty(),
        "sessions left after tunnel delete: {shown}"
    );
    // The other side still has its objects until deleted.
    assert!(t.h2.has_link("l2tp4"));
    d2.ul2tp("del session tunnel_id 1042 session_id 1042");
    assert!(
        t.h2.wait_link("l2tp4", false, Duration::from_secs(5)),
        "session delete leaves the device"
    );
}

#[test]
fn selftest_l2tpv3_over_ip() {
    run_selftest("ip", 1458, 1438);
}

#[test]
fn selftest_l2tpv3_over_udp() {
    run_selftest("udp", 1446, 1426);
}
