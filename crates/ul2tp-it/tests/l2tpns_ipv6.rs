//! IPv6 for a PPP subscriber with l2tpns as the LNS and our LAC: l2tpns (Debian's, runs
//! without kernel modules, authenticates against a FreeRADIUS started for the test) with
//! `ipv6_prefix` negotiates IPv6CP, Naks our interface identifier to its own choice (the
//! subscriber's IPv4 address followed by four zero bytes), and answers our Router Solicitation
//! with an advertisement of its /64 (the one it sends as IPv6CP opens reaches us before our
//! side is Opened and is dropped, so the address proves the solicitation was answered). The LAC forms its address from that /64 and the
//! negotiated identifier, takes the default route via l2tpns's fe80::1, and `ping -6` crosses
//! the link both ways. With `ppp_ipv6_pd`, the LAC asks for a delegated prefix with DHCPv6
//! and l2tpns hands it the user's RADIUS Framed-IPv6-Route.
//!
//! Needs the `l2tpns` and `freeradius` packages (the test fails if they are missing).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use ul2tp_it::peers::L2tpns;
use ul2tp_it::{wait_until, Daemon};

fn wait_for(secs: u64, cond: impl FnMut() -> bool) -> bool {
    wait_until(Duration::from_secs(secs), cond)
}

#[test]
fn l2tpns_lns_advertises_its_prefix_to_our_lac() {
    let (a, b) = ul2tp_it::linked_hosts("nsa", "nsb");
    b.ip(&["-6", "addr", "add", "2001:db8:ffff::1/128", "dev", "lo"]);
    // One user with a route to delegate.
    let l2tpns = L2tpns::start(
        &b,
        "alice Cleartext-Password := \"wonderland\"\n\tFramed-IPv6-Route = \"2001:db8:300::/56\"\n",
        "set ipv6_prefix 2001:db8:200::\n",
    );
    let dir = std::env::temp_dir().join(ul2tp_it::unique("l2tpns6"));
    std::fs::create_dir_all(&dir).unwrap();

    // Our LAC.
    let lac_conf = dir.join("lac.toml");
    std::fs::write(
        &lac_conf,
        "[control]\nlisten = \"192.0.2.1:1701\"\nppp_ipv6_default_route = true\nppp_ipv6_pd = true\n",
    )
    .unwrap();
    let lac = Daemon::start(&a, &["--config", lac_conf.to_str().unwrap()]);
    let tid = lac.connect_tunnel("192.0.2.2 version 2");
    assert!(
        lac.wait_tunnel(&tid, Duration::from_secs(30)),
        "tunnel to l2tpns did not come up:\n{}",
        l2tpns.log()
    );
    let sid = lac.connect_ppp_session(&tid);
    assert!(
        lac.wait_session(&tid, &sid, Duration::from_secs(10)),
        "session did not come up"
    );
    let o = lac.cli(&[
        "ppp",
        "start",
        "tunnel_id",
        &tid,
        "session_id",
        &sid,
        "user",
        "alice",
        "password",
        "wonderland",
    ]);
    assert!(
        o.status.success(),
        "ppp start: {}\nl2tpns:\n{}\nradius:\n{}",
        String::from_utf8_lossy(&o.stderr),
        l2tpns.log(),
        l2tpns.radius_log()
    );

    // The IPv4 address l2tpns gave us, on our pppN.
    let v4 = a.ip(&["-o", "-4", "addr", "show"]);
    let (dev, ipv4) = v4
        .lines()
        .find_map(|l| {
            let mut w = l.split_whitespace();
            let dev = w.nth(1)?.to_string();
            // "10.10.10.1/32": no peer address (it is the tunnel's remote, see below).
            let addr: Ipv4Addr = w.nth(1)?.split('/').next()?.parse().ok()?;
            dev.starts_with("ppp").then_some((dev, addr))
        })
        .unwrap_or_else(|| panic!("no pppN with an IPv4 address:\n{v4}"));
    // The peer route equal to the tunnel's remote address was skipped, and the tunnel
    // still goes over eth0.
    assert!(
        lac.log().contains(
            "no route to the PPP peer address 192.0.2.2: it is the L2TP tunnel's remote address"
        ),
        "{}",
        lac.log()
    );
    let via = a.ip(&["route", "get", "192.0.2.2"]);
    assert!(via.contains("dev eth0"), "{via}");
    // SLAAC: l2tpns's /64 with the identifier it Nak'd us to (IPv4 address, then zeros).
    let iid = u64::from(u32::from(ipv4)) << 32;
    let want = Ipv6Addr::from((0x2001_0db8_0200_0000u128 << 64) | u128::from(iid));
    let link_local = Ipv6Addr::from((0xfe80u128 << 112) | u128::from(iid));
    assert!(
        wait_for(15, || a
            .ip(&["-6", "addr", "show", "dev", &dev])
            .contains(&format!("{want}/64"))),
        "no {want}/64 on {dev}:\n{}\nLAC log:\n{}\nl2tpns:\n{}",
        a.ip(&["-6", "addr", "show"]),
        lac.log(),
        l2tpns.log()
    );
    assert!(a
        .ip(&["-6", "addr", "show", "dev", &dev])
        .contains(&format!("{link_local}/64")));
    let default = a.ip(&["-6", "route", "show", "default"]);
    assert!(
        default.contains(&format!("via fe80::1 dev {dev}")),
        "default route: {default}"
    );
    assert!(
        a.ping_retry("2001:db8:ffff::1", &["-6"], 5),
        "LAC pings the LNS host over l2tpns"
    );
    assert!(
        b.ping_retry(&want.to_string(), &["-6"], 5),
        "the LNS host pings the LAC's SLAAC address"
    );
    assert!(
        a.ping_retry(&format!("fe80::1%{dev}"), &["-6"], 5),
        "LAC pings l2tpns's link-local router address"
    );
    // DHCPv6 (`ppp_ipv6_pd`): l2tpns delegates the Framed-IPv6-Route RADIUS gave the user,
    // answering our Solicit with a Reply (Rapid Commit).
    assert!(
        wait_for(15, || lac
            .ul2tp("show session")
            .contains("  delegated prefix: 2001:db8:300::/56\n")),
        "{}\nLAC log:\n{}\nl2tpns:\n{}",
        lac.ul2tp("show session"),
        lac.log(),
        l2tpns.log()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
