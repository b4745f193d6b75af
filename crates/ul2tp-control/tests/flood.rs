//! SCCRQ floods (docs/security.md, "Control connection floods"): half-open caps, the per-source
//! rate limit, the shorter SCCRP retransmission budget, indexed timers, and an established
//! tunnel that keeps working while spoofed SCCRQs arrive. Datagrams are injected directly; the
//! clock is virtual.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use ul2tp_control::{
    Config, DownReason, Encap, Endpoint, Event, SessionConfig, StopCcnResult, Timestamp, Transmit,
    Version,
};
use ul2tp_wire::avp::MessageType;

const SEC: u64 = 1_000_000;

fn src(i: u32) -> SocketAddr {
    let [_, b, c, d] = i.to_be_bytes();
    SocketAddr::from(([10, 100 + b, c, d], 1701))
}

/// `n` different SCCRQs (each with its own Assigned Tunnel ID), built by an attacker engine.
fn sccrqs(n: usize) -> Vec<Vec<u8>> {
    let mut att = Endpoint::new(
        Config {
            tie_breaker: false,
            ..cfg(Version::V2, "x")
        },
        Encap::Udp,
        seed(99),
    );
    (0..n)
        .map(|_| {
            att.connect(Timestamp(0), addr(2), cfg(Version::V2, "x"))
                .unwrap();
            att.poll_transmit().unwrap().bytes
        })
        .collect()
}

fn drain(ep: &mut Endpoint) -> Vec<Transmit> {
    std::iter::from_fn(|| ep.poll_transmit()).collect()
}

fn is_sccrp(t: &Transmit) -> bool {
    t.bytes.len() > 12 && {
        // Message Type is the first AVP's 2-octet value, after the 12-octet v2 header
        // (with length, Ns and Nr) and the 6-octet AVP header.
        t.bytes.get(18..20) == Some(&MessageType::Sccrp.get().to_be_bytes()[..])
    }
}

fn target(f: impl FnOnce(&mut Config)) -> Endpoint {
    let mut c = cfg(Version::V2, "b");
    f(&mut c);
    Endpoint::new(c, Encap::Udp, seed(7))
}

#[test]
fn per_peer_half_open_cap_drops_silently() {
    let mut b = target(|c| c.new_tunnels_per_second_per_peer = 0);
    let now = Timestamp(0);
    for m in sccrqs(20) {
        b.handle_datagram(now, src(1), &m);
    }
    let out = drain(&mut b);
    assert_eq!(out.iter().filter(|t| is_sccrp(t)).count(), 8);
    assert_eq!(out.len(), 8);
    assert_eq!(b.half_open_count(), 8);
    assert_eq!(b.stats().sccrq_dropped_half_open, 12);
    // A retransmitted SCCRQ of an admitted tunnel is still answered (not a new tunnel).
    let first = sccrqs(1).remove(0);
    b.handle_datagram(now, src(1), &first);
    assert_eq!(b.half_open_count(), 8);
    assert_eq!(b.stats().sccrq_dropped_half_open, 12);
    // Another source is not affected.
    b.handle_datagram(now, src(2), &first);
    assert_eq!(drain(&mut b).iter().filter(|t| is_sccrp(t)).count(), 1);
}

#[test]
fn global_half_open_cap_bounds_tunnels() {
    let mut b = target(|c| c.max_half_open = 100);
    let m = sccrqs(1).remove(0);
    for i in 0..300 {
        b.handle_datagram(Timestamp(0), src(i), &m);
    }
    let out = drain(&mut b);
    assert_eq!(out.iter().filter(|t| is_sccrp(t)).count(), 100);
    assert_eq!(b.tunnel_ids().len(), 100);
    assert_eq!(b.stats().sccrq_dropped_half_open, 200);
    // Once they time out, new ones are admitted again.
    let mut now = Timestamp(0);
    while let Some(t) = b.poll_timeout() {
        now = t;
        b.handle_timeout(t);
    }
    drain(&mut b);
    assert_eq!(b.tunnel_ids().len(), 0);
    b.handle_datagram(now, src(1000), &m);
    assert_eq!(b.half_open_count(), 1);
}

#[test]
fn rate_limit_per_source() {
    let mut b = target(|c| {
        c.max_half_open_per_peer = 1000;
        c.new_tunnels_per_second_per_peer = 2;
        c.new_tunnels_burst_per_peer = 4;
    });
    let ms = sccrqs(12);
    for m in &ms[..10] {
        b.handle_datagram(Timestamp(0), src(1), m);
    }
    assert_eq!(b.half_open_count(), 4);
    assert_eq!(b.stats().sccrq_rate_limited, 6);
    assert_eq!(drain(&mut b).len(), 4);
    // One second later two more tokens.
    for m in &ms[..] {
        b.handle_datagram(Timestamp(SEC), src(1), m);
    }
    assert_eq!(b.half_open_count(), 6);
    // Another source has its own bucket.
    b.handle_datagram(Timestamp(SEC), src(2), &ms[0]);
    assert_eq!(b.half_open_count(), 7);
}

#[test]
fn half_open_sccrp_retransmitted_max_retries_half_open_times() {
    let mut b = target(|_| {});
    assert_eq!(Config::default().max_retries_half_open, 3);
    let m = sccrqs(1).remove(0);
    b.handle_datagram(Timestamp(0), src(1), &m);
    let mut sccrps = drain(&mut b).iter().filter(|t| is_sccrp(t)).count();
    let mut down = None;
    while let Some(t) = b.poll_timeout() {
        b.handle_timeout(t);
        sccrps += drain(&mut b).iter().filter(|t| is_sccrp(t)).count();
        while let Some(e) = b.poll_event() {
            if let Event::TunnelDown { reason, .. } = e {
                down = Some(reason);
            }
        }
    }
    assert_eq!(sccrps, 1 + 3);
    assert_eq!(down, Some(DownReason::Timeout));
    assert_eq!(b.half_open_count(), 0);
}

/// Admit `n` half-open tunnels at time 0 (their first SCCRP retransmission is due at 1 s).
fn flooded(n: u32) -> Endpoint {
    let mut b = target(|c| {
        c.max_half_open = 100_000;
        c.new_tunnels_per_second_per_peer = 0;
    });
    let m = sccrqs(1).remove(0);
    for i in 0..n {
        b.handle_datagram(Timestamp(0), src(i), &m);
    }
    drain(&mut b);
    assert_eq!(b.half_open_count(), n as usize);
    b
}

#[test]
fn timer_work_does_not_grow_with_half_open_tunnels() {
    for n in [1_000, 40_000] {
        let mut b = flooded(n);
        assert_eq!(b.poll_timeout(), Some(Timestamp(SEC)));
        // One more tunnel at 0.5 s: its timer is due at 1.5 s.
        let m = sccrqs(1).remove(0);
        b.handle_datagram(Timestamp(SEC / 2), src(n + 1), &m);
        drain(&mut b);
        // A pass where nothing is due looks at no tunnel, whatever n is.
        b.handle_timeout(Timestamp(SEC / 2));
        assert_eq!(b.stats().last_timeout_work, 0, "n = {n}");
        assert!(drain(&mut b).is_empty());
        // The pass at 1 s looks at exactly the n due tunnels, not the later one.
        b.handle_timeout(Timestamp(SEC));
        assert_eq!(b.stats().last_timeout_work, u64::from(n));
        assert_eq!(drain(&mut b).len(), n as usize);
        assert_eq!(b.poll_timeout(), Some(Timestamp(SEC + SEC / 2)));
        b.handle_timeout(Timestamp(SEC + SEC / 2));
        assert_eq!(b.stats().last_timeout_work, 1);
    }
}

/// Deliver everything between A (addr 1) and B (addr 2) until quiet; drop B's datagrams to
/// anyone else (the spoofed sources), returning how many there were.
fn pump(a: &mut Endpoint, b: &mut Endpoint, now: Timestamp) -> usize {
    let mut reflected = 0;
    loop {
        let ta = drain(a);
        let tb = drain(b);
        if ta.is_empty() && tb.is_empty() {
            return reflected;
        }
        for t in ta {
            b.handle_datagram(now, addr(1), &t.bytes);
        }
        for t in tb {
            if t.dst == addr(1) {
                a.handle_datagram(now, addr(2), &t.bytes);
            } else {
                reflected += 1;
            }
        }
    }
}

fn events(ep: &mut Endpoint) -> Vec<Event> {
    std::iter::from_fn(|| ep.poll_event()).collect()
}

#[test]
fn established_tunnel_survives_50k_spoofed_sccrqs() {
    let mut a = Endpoint::new(cfg(Version::V2, "a"), Encap::Udp, seed(1));
    let mut b = target(|_| {});
    let mut now = Timestamp(0);
    let tid = a.connect(now, addr(2), cfg(Version::V2, "a")).unwrap();
    pump(&mut a, &mut b, now);
    now = Timestamp(SEC / 10);
    a.handle_timeout(now);
    b.handle_timeout(now);
    pump(&mut a, &mut b, now);
    assert!(events(&mut a)
        .iter()
        .any(|e| matches!(e, Event::TunnelUp(_))));
    events(&mut b);
    assert_eq!(b.half_open_count(), 0);

    // 50,000 spoofed SCCRQs from 50,000 sources over 10 s, interleaved with timers.
    let m = sccrqs(1).remove(0);
    let mut reflected = 0;
    for i in 0..50_000u32 {
        now = Timestamp(SEC / 10 + u64::from(i) * 200);
        b.handle_datagram(now, src(i), &m);
        if i % 1000 == 0 {
            a.handle_timeout(now);
            b.handle_timeout(now);
            reflected += pump(&mut a, &mut b, now);
        }
        assert!(b.tunnel_ids().len() <= 1_001);
    }
    reflected += pump(&mut a, &mut b, now);
    let st = b.stats();
    assert!(b.half_open_count() <= 1_000);
    assert_eq!(st.sccrq_dropped_half_open, 49_000);
    assert!(reflected <= 4 * 1_000, "reflected {reflected}");

    // The real tunnel: a HELLO after the idle interval is acknowledged, and a session opens.
    let sid = a.open_session(now, tid, SessionConfig::default()).unwrap();
    for _ in 0..5 {
        now += Duration::from_millis(200);
        a.handle_timeout(now);
        b.handle_timeout(now);
        pump(&mut a, &mut b, now);
    }
    let ea = events(&mut a);
    assert!(
        ea.iter()
            .any(|e| matches!(e, Event::SessionUp(s) if s.session_id == sid)),
        "{ea:?}"
    );
    assert!(events(&mut b)
        .iter()
        .any(|e| matches!(e, Event::SessionUp(_))));
    let hellos = b.message_stats().get(MessageType::Hello).received;
    now += Duration::from_secs(80);
    a.handle_timeout(now);
    b.handle_timeout(now);
    pump(&mut a, &mut b, now);
    assert!(b.message_stats().get(MessageType::Hello).received > hellos);
    now += Duration::from_secs(1);
    a.handle_timeout(now);
    pump(&mut a, &mut b, now);
    assert_eq!(a.tunnel_stats(tid).unwrap().unacked, 0);
    assert_eq!(a.tunnel_stats(tid).unwrap().state, "established");
}

#[test]
fn initiator_whose_sccrq_was_acked_but_sccrps_lost_times_out() {
    // B acknowledges A's retransmitted SCCRQ with a ZLB, but every SCCRP is lost: A has
    // nothing left to retransmit and gives up after a HELLO interval instead of waiting forever.
    let mut a = Endpoint::new(cfg(Version::V2, "a"), Encap::Udp, seed(1));
    let mut b = target(|_| {});
    let tid = a
        .connect(Timestamp(0), addr(2), cfg(Version::V2, "a"))
        .unwrap();
    let mut now = Timestamp(0);
    let mut down = None;
    for _ in 0..200 {
        for t in drain(&mut a) {
            b.handle_datagram(now, addr(1), &t.bytes);
        }
        for t in drain(&mut b) {
            if t.bytes.len() == 12 {
                a.handle_datagram(now, addr(2), &t.bytes);
            }
        }
        if let Some(e) = events(&mut a)
            .into_iter()
            .find(|e| matches!(e, Event::TunnelDown { .. }))
        {
            down = Some((now, e));
            break;
        }
        now += Duration::from_secs(1);
        a.handle_timeout(now);
        b.handle_timeout(now);
    }
    let (at, e) = down.expect("A never gave up");
    assert!(matches!(
        e,
        Event::TunnelDown { tunnel_id, reason: DownReason::Timeout, .. } if tunnel_id == tid
    ));
    assert!(
        at >= Timestamp(60 * SEC) && at <= Timestamp(70 * SEC),
        "{at:?}"
    );
    assert!(a.tunnel_ids().is_empty());
}

#[test]
fn bucket_table_prunes_refilled_sources() {
    // max_half_open 2 bounds the bucket table at 8 sources; 40 sources, one after the other,
    // each admitted once its predecessors' tunnels timed out: the table fills and the
    // refilled buckets are forgotten, so no new source is refused.
    let mut b = target(|c| {
        c.max_half_open = 2;
        c.max_half_open_per_peer = 2;
    });
    let m = sccrqs(1).remove(0);
    let mut now = Timestamp(0);
    let mut admitted = 0;
    for i in 0..40u32 {
        // Let every half-open tunnel die before the next source.
        now += Duration::from_millis(50);
        while let Some(t) = b.poll_timeout().filter(|&t| t <= now) {
            b.handle_timeout(t);
        }
        while b.half_open_count() > 0 {
            let t = b.poll_timeout().unwrap();
            b.handle_timeout(t);
            now = now.max(t);
        }
        drain(&mut b);
        let before = b.half_open_count();
        b.handle_datagram(now, src(i), &m);
        admitted += b.half_open_count() - before;
    }
    // Each source's bucket refills in 2 s and the tunnels live about 15 s, so old buckets are
    // forgotten and new sources keep being admitted.
    assert_eq!(admitted, 40);
    assert_eq!(b.stats().sccrq_rate_limited, 0);
}

#[test]
fn stalled_initiator_waits_for_the_peers_sccrp_retransmission_cycle() {
    // A short HELLO interval (5 s) and a long retransmission budget on both sides: B
    // acknowledges A's retransmitted SCCRQ with a ZLB, then its SCCRPs are lost for 20 s
    // while its timer backs off. A must still be there when one arrives (it gave up 5 s
    // after the ZLB before: at 30 % loss one tunnel in a hundred was lost that way).
    let conf = |name: &str| Config {
        hello_interval: Duration::from_secs(5),
        max_retries: 10,
        max_retries_half_open: 10,
        ..cfg(Version::V2, name)
    };
    let mut a = Endpoint::new(conf("a"), Encap::Udp, seed(1));
    let mut b = Endpoint::new(conf("b"), Encap::Udp, seed(7));
    let tid = a.connect(Timestamp(0), addr(2), conf("a")).unwrap();
    let mut now = Timestamp(0);
    let (mut zlbs, mut dropped) = (0, 0);
    let mut up = false;
    for _ in 0..600 {
        for t in drain(&mut a) {
            b.handle_datagram(now, addr(1), &t.bytes);
        }
        for t in drain(&mut b) {
            if t.bytes.len() == 12 {
                zlbs += 1;
            } else if now < Timestamp(20 * SEC) {
                dropped += 1;
                continue;
            }
            a.handle_datagram(now, addr(2), &t.bytes);
        }
        let evs = events(&mut a);
        assert!(
            !evs.iter().any(|e| matches!(e, Event::TunnelDown { .. })),
            "A gave up at {now:?}: {evs:?}"
        );
        if evs
            .iter()
            .any(|e| matches!(e, Event::TunnelUp(i) if i.tunnel_id == tid))
        {
            up = true;
            break;
        }
        now += Duration::from_millis(100);
        a.handle_timeout(now);
        b.handle_timeout(now);
    }
    assert!(zlbs > 0 && dropped >= 3, "zlbs {zlbs} dropped {dropped}");
    assert!(up, "A's tunnel never came up; at {now:?}");
    assert!(now >= Timestamp(20 * SEC));
}

#[test]
fn stopccn_retransmitted_after_the_peers_hold_down_is_still_acknowledged() {
    // A closes the tunnel; B receives the StopCCN and holds the tunnel for 2 s, but every
    // acknowledgement it sends is lost in that time. A's next retransmission reaches a B
    // that forgot the tunnel: B acknowledges it from the message alone, so A forgets its
    // tunnel at once instead of retransmitting until its 120 s hold-down ends.
    // With an incoming-call request still unacknowledged when A closes, A's timer resends
    // that request, which B no longer answers, and the StopCCN after it.
    for (version, call) in [
        (Version::V2, false),
        (Version::V3, false),
        (Version::V2, true),
        (Version::V3, true),
    ] {
        let conf = |name: &str, hold: u64| Config {
            stop_hold: Duration::from_secs(hold),
            max_retries: 10,
            ..cfg(version, name)
        };
        let mut a = Endpoint::new(conf("a", 120), Encap::Udp, seed(1));
        let mut b = Endpoint::new(conf("b", 2), Encap::Udp, seed(7));
        let mut now = Timestamp(0);
        let tid = a.connect(now, addr(2), conf("a", 120)).unwrap();
        for _ in 0..20 {
            pump(&mut a, &mut b, now);
            now += Duration::from_millis(100);
            a.handle_timeout(now);
            b.handle_timeout(now);
        }
        pump(&mut a, &mut b, now);
        assert_eq!(a.tunnel_stats(tid).unwrap().state, "established");
        assert_eq!(b.tunnel_ids().len(), 1);
        if call {
            a.open_session(now, tid, SessionConfig::default()).unwrap();
        }
        a.close_tunnel(now, tid, StopCcnResult::GeneralRequest)
            .unwrap();
        if call {
            assert_eq!(a.tunnel_stats(tid).unwrap().unacked, 2, "ICRQ and StopCCN");
        }
        let closed = now;
        let mut lost = 0;
        while !a.tunnel_ids().is_empty() && now < closed + Duration::from_secs(100) {
            for t in drain(&mut a) {
                b.handle_datagram(now, addr(1), &t.bytes);
            }
            for t in drain(&mut b) {
                if now < closed + Duration::from_secs(5) {
                    lost += 1;
                } else {
                    a.handle_datagram(now, addr(2), &t.bytes);
                }
            }
            now += Duration::from_millis(100);
            a.handle_timeout(now);
            b.handle_timeout(now);
        }
        assert!(
            lost > 0,
            "{version:?}: B acknowledged the StopCCN while it held the tunnel"
        );
        assert!(
            a.tunnel_ids().is_empty(),
            "{version:?}: A still closing at {now:?}: {:?}",
            a.tunnel_stats(tid)
        );
        assert!(b.tunnel_ids().is_empty());
        assert!(b.stats().orphan_stopccn_acks > 0, "{:?}", b.stats());
        let down = events(&mut a)
            .into_iter()
            .filter(|e| {
                matches!(
                    e,
                    Event::TunnelDown {
                        reason: DownReason::Local,
                        ..
                    }
                )
            })
            .count();
        assert_eq!(down, 1, "{version:?}");
    }
}
