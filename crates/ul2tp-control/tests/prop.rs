//! Property tests over random fault schedules (issue item 8): nothing is delivered twice to the
//! session layer, nothing is acknowledged that was not sent, and every sent message is
//! eventually acknowledged or the tunnel is declared down. Plus: no input makes the engine panic.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use proptest::prelude::*;
use ul2tp_control::sim::NetConfig;
use ul2tp_control::{
    Config, Encap, Endpoint, Event, SessionConfig, StopCcnResult, Timestamp, Version,
};

fn run_schedule(
    version: Version,
    seed: u64,
    loss: f64,
    dup: f64,
    reorder: f64,
    sessions: usize,
    close: bool,
) {
    let net = NetConfig {
        loss,
        duplicate: dup,
        reorder,
        delay: Duration::from_millis(3),
        jitter: Duration::from_millis(50),
    };
    let mut a = cfg(version, "a");
    a.max_retries = 6;
    let mut b = cfg(version, "b");
    b.max_retries = 6;
    let mut sim = pair(net, Encap::Udp, seed, a.clone(), b);
    let now = sim.now;
    let tid = sim.ep(A).connect(now, addr(2), a).unwrap();
    for _ in 0..sessions {
        sim.ep(A)
            .open_session(now, tid, SessionConfig::default())
            .unwrap();
    }
    sim.run_for(Duration::from_secs(200));
    if close {
        let now = sim.now;
        let _ = sim
            .ep(A)
            .close_tunnel(now, tid, StopCcnResult::GeneralRequest);
    }
    sim.run_for(Duration::from_secs(600));
    // "Eventually": from here, within one full retransmission cycle, every tunnel must have
    // nothing unacknowledged or be down (a HELLO may be in flight at any given instant).
    let settled = |sim: &ul2tp_control::sim::Sim| {
        [A, B].iter().all(|&n| {
            let downs = tunnel_downs(sim, n);
            sim.nodes[n].ep.tunnel_ids().iter().all(|&t| {
                sim.nodes[n]
                    .ep
                    .tunnel_stats(t)
                    .is_some_and(|st| st.unacked == 0)
                    || downs.iter().any(
                        |d| matches!(d, Event::TunnelDown { tunnel_id, .. } if *tunnel_id == t),
                    )
            })
        })
    };
    assert!(
        sim.run_while_not(Duration::from_secs(300), settled),
        "messages left unacknowledged"
    );

    // Nothing acknowledged that was not sent (audited on the wire).
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());

    for node in [A, B] {
        // Nothing delivered twice: each session comes up at most once, each tunnel at most once.
        let mut ups = HashSet::new();
        for s in sessions_up(&sim, node) {
            assert!(
                ups.insert(s.session_id),
                "session {} up twice",
                s.session_id
            );
        }
        let tunnels = tunnel_up(&sim, node);
        assert!(tunnels.len() <= 1);
        let downs = tunnel_downs(&sim, node);
        // Each tunnel goes down at most once. A retransmitted SCCRQ may open a second tunnel
        // once the first, half-open one gave up (all its SCCRPs lost): only one of them can
        // have come up.
        let mut down_ids = HashSet::new();
        for d in &downs {
            if let Event::TunnelDown { tunnel_id, .. } = d {
                assert!(down_ids.insert(*tunnel_id), "{downs:?}");
            }
        }
        let up_downs = downs
            .iter()
            .filter(|d| matches!(d, Event::TunnelDown { was_up: true, .. }))
            .count();
        assert!(up_downs <= 1, "{downs:?}");
        // Every sent message acknowledged, or the tunnel declared down.
        for t in sim.ep(node).tunnel_ids() {
            let st = sim.ep(node).tunnel_stats(t).unwrap();
            let down = downs
                .iter()
                .any(|d| matches!(d, Event::TunnelDown { tunnel_id, .. } if *tunnel_id == t));
            assert!(
                st.unacked == 0 || down,
                "tunnel {t} has {} unacked and is not down",
                st.unacked
            );
        }
    }
    // Both alive: each side delivered exactly what the other generated (no loss, no
    // duplicates at the channel level).
    let live_a: Vec<u32> = sim.ep(A).tunnel_ids();
    let live_b: Vec<u32> = sim.ep(B).tunnel_ids();
    if let ([ta], [tb]) = (&live_a[..], &live_b[..]) {
        let sa = sim.ep(A).tunnel_stats(*ta).unwrap();
        let sb = sim.ep(B).tunnel_stats(*tb).unwrap();
        if sa.state == "established" && sb.state == "established" {
            assert_eq!(sa.channel.delivered, u64::from(sb.next_ns));
            assert_eq!(sb.channel.delivered, u64::from(sa.next_ns));
            assert_eq!(sessions_up(&sim, A).len(), sessions);
            assert_eq!(assert_sessions_agree(&sim), sessions);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn random_fault_schedules(
        v3 in any::<bool>(),
        seed in any::<u64>(),
        loss in 0.0f64..0.5,
        dup in 0.0f64..0.3,
        reorder in 0.0f64..0.5,
        sessions in 0usize..20,
        close in any::<bool>(),
    ) {
        let version = if v3 { Version::V3 } else { Version::V2 };
        run_schedule(version, seed, loss, dup, reorder, sessions, close);
    }

    #[test]
    fn engine_never_panics_on_garbage(
        v3 in any::<bool>(),
        ip in any::<bool>(),
        packets in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..120), 1..20),
    ) {
        let encap = if ip && v3 { Encap::Ip } else { Encap::Udp };
        let mut c = Config { version: if v3 { Version::V3 } else { Version::V2 }, ..Config::default() };
        c.secret = Some(b"x".to_vec());
        let mut ep = Endpoint::new(c, encap, seed(1));
        let from = addr(9);
        let mut now = Timestamp::ZERO;
        for p in &packets {
            ep.handle_datagram(now, from, p);
            now += Duration::from_millis(100);
            ep.handle_timeout(now);
            while ep.poll_transmit().is_some() {}
            while ep.poll_event().is_some() {}
        }
    }

    #[test]
    fn engine_never_panics_on_mutated_messages(
        seed in any::<u64>(),
        v3 in any::<bool>(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
    ) {
        // Take real messages from a simulated exchange, corrupt them, and feed them back.
        let version = if v3 { Version::V3 } else { Version::V2 };
        let a = cfg(version, "a");
        let mut sim = pair(NetConfig::perfect(), Encap::Udp, seed, a.clone(), cfg(version, "b"));
        establish(&mut sim, a, 2, &SessionConfig::default(), Duration::from_secs(30));
        let frames: Vec<Vec<u8>> = ul2tp_wire::pcap::records(sim.pcap_bytes())
            .unwrap()
            .filter_map(|r| Some(ul2tp_wire::pcap::extract(r.ok()?.frame)?.payload.to_vec()))
            .collect();
        let now = sim.now;
        for mut f in frames {
            for (i, b) in &flips {
                if !f.is_empty() {
                    let n = f.len();
                    f[i % n] ^= b;
                }
            }
            sim.ep(B).handle_datagram(now, addr(1), &f);
            sim.ep(A).handle_datagram(now, addr(2), &f);
        }
        sim.run_for(Duration::from_secs(300));
    }
}
