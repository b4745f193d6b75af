//! Helpers shared by the simulation tests.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

#[allow(unused_imports)]
pub use ul2tp_control::sim::seed;
use ul2tp_control::sim::{self, NetConfig, Sim};
use ul2tp_control::{Config, Encap, Endpoint, Event, SessionConfig, SessionInfo, Version};

pub const A: usize = 0;
pub const B: usize = 1;

pub fn addr(i: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, i], 1701))
}

pub fn cfg(version: Version, name: &str) -> Config {
    Config {
        version,
        host_name: name.to_string(),
        router_id: u32::from(name.as_bytes()[0]),
        ..Config::default()
    }
}

/// Two engines: A (node 0, 10.0.0.1) and B (node 1, 10.0.0.2).
pub fn pair(net: NetConfig, encap: Encap, seed: u64, a: Config, b: Config) -> Sim {
    let mut sim = Sim::new(net, encap, seed);
    sim.add(
        addr(1),
        Endpoint::new(a, encap, sim::seed(seed.wrapping_mul(3) + 1)),
    );
    sim.add(
        addr(2),
        Endpoint::new(b, encap, sim::seed(seed.wrapping_mul(7) + 2)),
    );
    sim
}

pub fn tunnel_up(sim: &Sim, node: usize) -> Vec<u32> {
    sim.nodes[node]
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::TunnelUp(i) => Some(i.tunnel_id),
            _ => None,
        })
        .collect()
}

pub fn tunnel_downs(sim: &Sim, node: usize) -> Vec<Event> {
    sim.nodes[node]
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::TunnelDown { .. }))
        .map(|(_, e)| e.clone())
        .collect()
}

pub fn sessions_up(sim: &Sim, node: usize) -> Vec<SessionInfo> {
    sim.nodes[node]
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::SessionUp(i) => Some(i.clone()),
            _ => None,
        })
        .collect()
}

pub fn session_downs(sim: &Sim, node: usize) -> usize {
    sim.count(node, |e| matches!(e, Event::SessionDown { .. }))
}

/// Check that both sides agree on every session: ids cross-match, cookies, sublayer and
/// sequencing are mirrored, each session came up once. Returns the number of sessions.
pub fn assert_sessions_agree(sim: &Sim) -> usize {
    let a = sessions_up(sim, A);
    let b = sessions_up(sim, B);
    assert_eq!(
        a.len(),
        b.len(),
        "both sides see the same number of sessions"
    );
    let mut seen = std::collections::HashSet::new();
    for s in &a {
        assert!(
            seen.insert(s.session_id),
            "session {} came up twice",
            s.session_id
        );
        let p = b
            .iter()
            .find(|p| p.session_id == s.peer_session_id)
            .unwrap_or_else(|| panic!("B has no session {}", s.peer_session_id));
        assert_eq!(p.peer_session_id, s.session_id);
        assert_eq!(p.tunnel_id, s.peer_tunnel_id);
        assert_eq!(p.peer_tunnel_id, s.tunnel_id);
        assert_eq!(p.cookie, s.peer_cookie, "cookie A expects = cookie B sends");
        assert_eq!(p.peer_cookie, s.cookie);
        assert_eq!(p.l2spec_type, s.peer_l2spec_type);
        assert_eq!(p.peer_l2spec_type, s.l2spec_type);
        assert_eq!(p.send_seq, s.recv_seq);
        assert_eq!(p.recv_seq, s.send_seq);
        assert_eq!(p.pw_type, s.pw_type);
        assert_eq!(p.call_serial, s.call_serial);
        assert_ne!(p.lns_mode, s.lns_mode);
        assert_ne!(p.initiator, s.initiator);
    }
    a.len()
}

/// Bring up one tunnel from A to B and `n` sessions opened by A; returns (tunnel id, session
/// ids). Panics if it does not happen within `limit` of virtual time.
pub fn establish(
    sim: &mut Sim,
    a_cfg: Config,
    n: usize,
    scfg: &SessionConfig,
    limit: Duration,
) -> (u32, Vec<u32>) {
    let now = sim.now;
    let tid = sim.ep(A).connect(now, addr(2), a_cfg).expect("connect");
    let mut sids = Vec::new();
    for _ in 0..n {
        sids.push(
            sim.ep(A)
                .open_session(now, tid, scfg.clone())
                .expect("open"),
        );
    }
    let ok = sim.run_while_not(limit, |s| {
        sessions_up(s, A).len() == n && sessions_up(s, B).len() == n
    });
    assert!(
        ok,
        "not all up: A {} B {} A-downs {:?} B-downs {:?}",
        sessions_up(sim, A).len(),
        sessions_up(sim, B).len(),
        tunnel_downs(sim, A),
        tunnel_downs(sim, B)
    );
    (tid, sids)
}
