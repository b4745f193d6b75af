//! Property tests: arbitrary datagrams never panic the receive path, and random packet
//! sequences never deliver a sequenced packet twice and account for every packet
//! (delivered + discarded + held = received).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ul2tp_core::Timestamp;

use proptest::prelude::*;
use ul2tp_core::PwType;
use ul2tp_core::{
    Cookie, Encap, L2SpecType, Registry, SessionParams, SocketId, TunnelParams, Version,
};
use ul2tp_wire::data::{DefaultSublayer, V2DataHeader, V3SessionHeader};

fn busy_registry() -> Registry {
    let r = Registry::new();
    let t = |tid, version, encap, sock| TunnelParams {
        tunnel_id: tid,
        peer_tunnel_id: tid,
        version,
        encap,
        socket: SocketId(sock),
    };
    r.tunnel_create(t(1, Version::V2, Encap::Udp, 1)).unwrap();
    r.tunnel_create(t(2, Version::V3, Encap::Udp, 1)).unwrap();
    r.tunnel_create(t(3, Version::V3, Encap::Ip, 2)).unwrap();
    r.tunnel_create(t(4, Version::V3, Encap::Udp, 3)).unwrap();
    let mut p = SessionParams::new(1, 1, PwType::Ppp);
    p.reorder_timeout_ms = 10;
    r.session_create(1, p).unwrap();
    let mut p = SessionParams::new(1, 1, PwType::Ethernet);
    p.peer_cookie = Cookie::new(&[1, 2, 3, 4]).unwrap();
    r.session_create(2, p.clone()).unwrap();
    p.pw_type = PwType::EthernetVlan;
    p.vlan_id = Some(5);
    p.session_id = 2;
    r.session_create(3, p).unwrap();
    let mut p = SessionParams::new(1, 1, PwType::Ppp);
    p.l2spec_type = L2SpecType::None;
    r.session_create(4, p).unwrap();
    r
}

/// Bytes that often look like real headers: a real prefix followed by noise.
fn datagram() -> impl Strategy<Value = Vec<u8>> {
    let prefixes = prop_oneof![
        Just(vec![]),
        Just(vec![0x00, 0x02, 0x00, 0x01, 0x00, 0x01]),
        Just(vec![0x4a, 0x02, 0x00, 0x10, 0x00, 0x01, 0x00, 0x01]),
        Just(vec![
            0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 1, 2, 3, 4
        ]),
        Just(vec![0x00, 0x00, 0x00, 0x01, 1, 2, 3, 4]),
        Just(vec![0x00, 0x00, 0x00, 0x02]),
        Just(vec![0, 0, 0, 0, 0xc8, 0x03]),
    ];
    (prefixes, proptest::collection::vec(any::<u8>(), 0..48)).prop_map(|(mut p, n)| {
        p.extend(n);
        p
    })
}

#[derive(Debug, Clone)]
enum Op {
    Packet { seq: Option<u16>, dt_ms: u64 },
    Poll { dt_ms: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (proptest::option::weighted(0.9, 0u16..400), 0u64..30)
            .prop_map(|(seq, dt_ms)| Op::Packet { seq, dt_ms }),
        1 => (0u64..200).prop_map(|dt_ms| Op::Poll { dt_ms }),
    ]
}

proptest! {
    #[test]
    fn receive_never_panics(
        dgrams in proptest::collection::vec((datagram(), any::<bool>(), 0u64..4), 1..40)
    ) {
        let r = busy_registry();
        let now = Timestamp::from_millis(1);
        for (d, udp, sock) in dgrams {
            let t = if udp { Encap::Udp } else { Encap::Ip };
            let _ = r.receive(SocketId(sock), t, &d, now, &mut |_, f| assert!(f.len() <= d.len()));
        }
        for s in r.sessions() {
            s.poll_reorder(now + Duration::from_secs(5), &mut |_, _| {});
        }
    }

    #[test]
    fn sequences_deliver_each_packet_at_most_once(
        v2 in any::<bool>(),
        reorder in prop_oneof![Just(0u64), 1u64..100],
        lns in any::<bool>(),
        recv_seq in any::<bool>(),
        send_seq in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        let r = Registry::new();
        r.tunnel_create(TunnelParams {
            tunnel_id: 1,
            peer_tunnel_id: 1,
            version: if v2 { Version::V2 } else { Version::V3 },
            encap: Encap::Udp,
            socket: SocketId(1),
        }).unwrap();
        let mut p = SessionParams::new(9, 9, if v2 { PwType::Ppp } else { PwType::Ethernet });
        p.reorder_timeout_ms = reorder;
        p.lns_mode = lns;
        p.recv_seq = recv_seq;
        p.send_seq = send_seq;
        let s = r.session_create(1, p).unwrap();
        let mut now = Timestamp::from_millis(1);
        let mut delivered_ids = HashSet::new();
        let mut delivered_ns: Vec<u32> = Vec::new();
        let mut sent = 0u64;
        let mut check = |f: &[u8]| {
            // Payload: 4-byte packet id, then 4-byte ns (0xffffffff = none).
            let id = u32::from_be_bytes([f[0], f[1], f[2], f[3]]);
            let ns = u32::from_be_bytes([f[4], f[5], f[6], f[7]]);
            assert!(delivered_ids.insert(id), "packet {id} delivered twice");
            if ns != u32::MAX {
                delivered_ns.push(ns);
            }
        };
        for (id, op) in ops.into_iter().enumerate() {
            match op {
                Op::Packet { seq, dt_ms } => {
                    now += Duration::from_millis(dt_ms);
                    let mut b = vec![0u8; 16];
                    let n = if v2 {
                        V2DataHeader { tunnel_id: 1, session_id: 9, ns_nr: seq.map(|s| (s, 0)), ..Default::default() }.emit(&mut b).unwrap()
                    } else {
                        V3SessionHeader { session_id: 9, cookie: &[], sublayer: Some(DefaultSublayer { seq: seq.map(u32::from) }) }.emit_udp(&mut b).unwrap()
                    };
                    b.truncate(n);
                    b.extend_from_slice(&(id as u32).to_be_bytes());
                    b.extend_from_slice(&seq.map_or(u32::MAX, u32::from).to_be_bytes());
                    b.extend_from_slice(&[0u8; 8]);
                    sent += 1;
                    r.receive(SocketId(1), Encap::Udp, &b, now, &mut |_, f| check(f));
                }
                Op::Poll { dt_ms } => {
                    now += Duration::from_millis(dt_ms);
                    s.poll_reorder(now, &mut |_, f| check(f));
                }
            }
            let st = s.stats();
            prop_assert_eq!(st.rx_packets + st.rx_errors + s.reorder_queue_len() as u64, sent);
            prop_assert!(st.rx_seq_discards <= st.rx_errors);
        }
        // Sequenced packets come out in increasing order (no wrap within 400), never twice.
        for w in delivered_ns.windows(2) {
            prop_assert!(w[0] < w[1], "ns {} then {}", w[0], w[1]);
        }
        // Deleting purges what is left, counted as rx_errors.
        r.session_delete(1, 9).unwrap();
        let st = s.stats();
        prop_assert_eq!(st.rx_packets + st.rx_errors, sent);
        prop_assert_eq!(s.next_timeout(), None);
    }
}

#[test]
fn concurrent_receive_and_control() {
    let r = Arc::new(Registry::new());
    r.tunnel_create(TunnelParams {
        tunnel_id: 1,
        peer_tunnel_id: 1,
        version: Version::V3,
        encap: Encap::Ip,
        socket: SocketId(1),
    })
    .unwrap();
    let mut p = SessionParams::new(1, 1, PwType::Ethernet);
    p.l2spec_type = L2SpecType::None;
    let s1 = r.session_create(1, p.clone()).unwrap();
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let r = r.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                for i in 0..20_000u32 {
                    let sid = 1 + (i % 4);
                    let mut pk = sid.to_be_bytes().to_vec();
                    pk.extend_from_slice(&[0u8; 20]);
                    r.receive(
                        SocketId(1),
                        Encap::Ip,
                        &pk,
                        Timestamp::from_millis(1),
                        &mut |s, _| {
                            assert_eq!(s.session_id(), sid);
                            if sid == 1 {
                                n += 1;
                            }
                        },
                    );
                }
                n
            })
        })
        .collect();
    for round in 0..200u32 {
        let sid = 2 + (round % 3);
        let mut q = p.clone();
        q.session_id = sid;
        let _ = r.session_create(1, q);
        let _ = r.session_delete(1, 2 + ((round + 1) % 3));
    }
    let total: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert_eq!(total, 3 * 20_000 / 4);
    assert_eq!(s1.stats().rx_packets, total);
}
