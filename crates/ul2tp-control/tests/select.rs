//! Choosing the configuration of tunnels a peer opens (`Endpoint::set_selector`, the daemon's
//! `[[lns]]` profiles): refusal of a peer no configuration admits, a per-peer secret, the
//! limits on tunnels per peer and sessions per tunnel.

mod common;

use std::time::Duration;

use common::*;
use ul2tp_control::sim::NetConfig;
use ul2tp_control::{
    Config, DownReason, Encap, Event, SessionConfig, StopCcnResult, TunnelRequest, Version,
};
use ul2tp_wire::avp::PwType;

fn ppp() -> SessionConfig {
    SessionConfig {
        pw_type: PwType::Ppp,
        ..SessionConfig::default()
    }
}

/// B admits only the host name "a", with the secret "k" and the profile name "office".
fn office(req: &TunnelRequest<'_>) -> Option<Config> {
    (req.host_name == b"a").then(|| Config {
        secret: Some(b"k".to_vec()),
        profile: "office".into(),
        ..cfg(Version::V2, "b")
    })
}

#[test]
fn a_peer_no_profile_admits_gets_stopccn_2() {
    let mut sim = pair(
        NetConfig::perfect(),
        Encap::Udp,
        1,
        cfg(Version::V2, "x"),
        cfg(Version::V2, "b"),
    );
    sim.ep(B)
        .set_selector(Some(ul2tp_control::Selector(Box::new(office))));
    let now = sim.now;
    sim.ep(A)
        .connect(now, addr(2), cfg(Version::V2, "x"))
        .unwrap();
    sim.run_for(Duration::from_secs(5));
    assert!(tunnel_up(&sim, A).is_empty() && tunnel_up(&sim, B).is_empty());
    let downs = tunnel_downs(&sim, A);
    match &downs[..] {
        [Event::TunnelDown {
            reason:
                DownReason::Peer {
                    result_code,
                    message,
                    ..
                },
            ..
        }] => {
            assert_eq!(*result_code, StopCcnResult::GeneralError.get());
            assert!(message.contains("no profile"), "{message}");
        }
        other => panic!("A saw {other:?}"),
    }
    assert_eq!(sim.ep(B).stats().sccrq_refused, 1);
}

#[test]
fn the_selected_profile_brings_its_secret_and_name() {
    let a = Config {
        secret: Some(b"k".to_vec()),
        ..cfg(Version::V2, "a")
    };
    let mut sim = pair(
        NetConfig::perfect(),
        Encap::Udp,
        2,
        a.clone(),
        cfg(Version::V2, "b"),
    );
    sim.ep(B)
        .set_selector(Some(ul2tp_control::Selector(Box::new(office))));
    let now = sim.now;
    sim.ep(A).connect(now, addr(2), a).unwrap();
    sim.run_for(Duration::from_secs(5));
    let up: Vec<_> = sim.nodes[B]
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::TunnelUp(i) => Some(i.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(up.len(), 1, "B: {:?}", tunnel_downs(&sim, B));
    assert_eq!(up[0].profile, "office");
    assert!(
        up[0].authenticated,
        "B challenged A with the profile's secret"
    );

    // The same host name with a wrong secret fails the challenge.
    let bad = Config {
        secret: Some(b"wrong".to_vec()),
        ..cfg(Version::V2, "a")
    };
    let mut sim = pair(
        NetConfig::perfect(),
        Encap::Udp,
        3,
        bad.clone(),
        cfg(Version::V2, "b"),
    );
    sim.ep(B)
        .set_selector(Some(ul2tp_control::Selector(Box::new(office))));
    let now = sim.now;
    sim.ep(A).connect(now, addr(2), bad).unwrap();
    sim.run_for(Duration::from_secs(5));
    assert!(tunnel_up(&sim, B).is_empty());
}

#[test]
fn tunnels_per_peer_and_sessions_per_tunnel_are_limited() {
    let b = Config {
        max_tunnels_per_peer: 1,
        max_sessions: 1,
        ..cfg(Version::V2, "b")
    };
    let mut sim = pair(
        NetConfig::perfect(),
        Encap::Udp,
        4,
        cfg(Version::V2, "a"),
        b,
    );
    let (tid, _) = establish(
        &mut sim,
        cfg(Version::V2, "a"),
        1,
        &ppp(),
        Duration::from_secs(5),
    );
    // A second call in the same tunnel: CDN 4 (temporary lack of facilities).
    let now = sim.now;
    sim.ep(A).open_session(now, tid, ppp()).unwrap();
    sim.run_for(Duration::from_secs(5));
    let refused = sim.count(A, |e| {
        matches!(
            e,
            Event::SessionDown {
                reason: DownReason::Peer { result_code: 4, .. },
                ..
            }
        )
    });
    assert_eq!(refused, 1, "A: {:?}", sim.nodes[A].events);
    // A second tunnel from the same address: StopCCN 2 with Error Code 4.
    let now = sim.now;
    sim.ep(A)
        .connect(now, addr(2), cfg(Version::V2, "a"))
        .unwrap();
    sim.run_for(Duration::from_secs(5));
    let too_many = sim.count(A, |e| {
        matches!(
            e,
            Event::TunnelDown {
                reason: DownReason::Peer {
                    result_code: 2,
                    error_code: Some(4),
                    ..
                },
                ..
            }
        )
    });
    assert_eq!(too_many, 1, "A: {:?}", tunnel_downs(&sim, A));
    assert_eq!(tunnel_up(&sim, B).len(), 1);
}
