//! Sequence numbers, LNS/LAC switching, the receive window, in-order resync and the reorder
//! queue (docs/reference/kernel.md §2.1–§2.8), with the counters of §3.1 and the trace events of §9.2.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ul2tp_core::Timestamp;

use ul2tp_core::PwType;
use ul2tp_core::{
    DropReason, Encap, L2SpecType, Registry, RxOutcome, Session, SessionParams, SocketId,
    TraceEvent, TunnelParams, Version,
};
use ul2tp_wire::data::{DefaultSublayer, V2DataHeader, V3SessionHeader};

struct Rig {
    r: Registry,
    s: Arc<Session>,
    v2: bool,
    now: Timestamp,
    got: Vec<Vec<u8>>,
}

impl Rig {
    fn v3(f: impl FnOnce(&mut SessionParams)) -> Rig {
        let r = Registry::new();
        r.tunnel_create(TunnelParams {
            tunnel_id: 1,
            peer_tunnel_id: 2,
            version: Version::V3,
            encap: Encap::Udp,
            socket: SocketId(1),
        })
        .unwrap();
        let mut p = SessionParams::new(10, 20, PwType::Ethernet);
        f(&mut p);
        let s = r.session_create(1, p).unwrap();
        Rig {
            r,
            s,
            v2: false,
            now: Timestamp::from_millis(1),
            got: Vec::new(),
        }
    }

    fn v2(f: impl FnOnce(&mut SessionParams)) -> Rig {
        let r = Registry::new();
        r.tunnel_create(TunnelParams {
            tunnel_id: 1,
            peer_tunnel_id: 2,
            version: Version::V2,
            encap: Encap::Udp,
            socket: SocketId(1),
        })
        .unwrap();
        let mut p = SessionParams::new(10, 20, PwType::Ppp);
        f(&mut p);
        let s = r.session_create(1, p).unwrap();
        Rig {
            r,
            s,
            v2: true,
            now: Timestamp::from_millis(1),
            got: Vec::new(),
        }
    }

    /// A packet with an optional sequence number and a 16-byte payload whose first byte tags it.
    fn packet(&self, seq: Option<u32>, tag: u8) -> Vec<u8> {
        let mut payload = vec![tag; 16];
        let mut b = vec![0u8; 32];
        let n = if self.v2 {
            payload.splice(0..0, [0xff, 0x03]);
            V2DataHeader {
                tunnel_id: 1,
                session_id: 10,
                ns_nr: seq.map(|s| (s as u16, 0)),
                ..Default::default()
            }
            .emit(&mut b)
            .unwrap()
        } else {
            V3SessionHeader {
                session_id: 10,
                cookie: &[],
                sublayer: Some(DefaultSublayer { seq }),
            }
            .emit_udp(&mut b)
            .unwrap()
        };
        b.truncate(n);
        b.extend_from_slice(&payload);
        b
    }

    fn rx(&mut self, seq: Option<u32>, tag: u8) -> RxOutcome {
        let p = self.packet(seq, tag);
        let got = &mut self.got;
        self.r
            .receive(SocketId(1), Encap::Udp, &p, self.now, &mut |_, f| {
                got.push(f.to_vec())
            })
    }

    fn tags(&mut self) -> Vec<u8> {
        self.got.drain(..).map(|f| f[0]).collect()
    }
}

// ---- §2.3 decision table ----

#[test]
fn seq_packet_turns_lac_send_seq_on() {
    let mut g = Rig::v3(|_| {});
    assert!(!g.s.send_seq());
    assert_eq!(g.rx(Some(0), 1), RxOutcome::Consumed);
    assert!(g.s.send_seq(), "LAC starts sequencing because the LNS does");
    assert_eq!(g.tags(), [1]);
}

#[test]
fn seq_packet_leaves_lns_send_seq_off() {
    let mut g = Rig::v3(|p| p.lns_mode = true);
    assert_eq!(g.rx(Some(0), 1), RxOutcome::Consumed);
    assert!(!g.s.send_seq());
    assert_eq!(g.tags(), [1]);
}

#[test]
fn unsequenced_with_recv_seq_is_discarded() {
    let mut g = Rig::v3(|p| p.recv_seq = true);
    assert_eq!(g.rx(None, 1), RxOutcome::Dropped(DropReason::SeqRequired));
    let st = g.s.stats();
    assert_eq!((st.rx_seq_discards, st.rx_errors, st.rx_packets), (1, 1, 0));
    assert!(g.tags().is_empty());
}

#[test]
fn unsequenced_turns_lac_send_seq_off() {
    let mut g = Rig::v2(|p| p.send_seq = true);
    assert_eq!(g.s.hdr_len(), 10);
    assert_eq!(g.rx(None, 1), RxOutcome::Consumed);
    assert!(!g.s.send_seq());
    assert_eq!(g.s.hdr_len(), 6, "hdr_len recomputed");
    assert_eq!(g.tags(), [1]);
}

#[test]
fn unsequenced_to_lns_with_send_seq_is_discarded() {
    let mut g = Rig::v3(|p| {
        p.lns_mode = true;
        p.send_seq = true;
    });
    assert_eq!(g.rx(None, 1), RxOutcome::Dropped(DropReason::SeqRequired));
    assert!(g.s.send_seq());
    let st = g.s.stats();
    assert_eq!((st.rx_seq_discards, st.rx_errors), (1, 1));
}

#[test]
fn unsequenced_otherwise_accepted_after_held_packets() {
    let mut g = Rig::v3(|p| p.reorder_timeout_ms = 100);
    g.rx(Some(0), 1);
    g.rx(Some(2), 3); // held, waiting for 1
    assert_eq!(g.rx(None, 9), RxOutcome::Consumed); // queued behind 2
    assert_eq!(g.tags(), [1]);
    g.rx(Some(1), 2);
    assert_eq!(g.tags(), [2, 3, 9]);
    assert!(
        g.s.send_seq(),
        "LAC: last sequenced packet switched it on; the unsequenced one off"
    );
}

// ---- §2.4 window ----

#[test]
fn window_is_forward_only() {
    let mut g = Rig::v2(|_| {});
    // nr starts at 0: an Ns at or beyond the window (0x7FFF) is dropped even as first packet.
    assert_eq!(
        g.rx(Some(0x7fff), 1),
        RxOutcome::Dropped(DropReason::OutsideWindow)
    );
    let st = g.s.stats();
    assert_eq!(
        (st.rx_errors, st.rx_seq_discards),
        (1, 0),
        "window drops count rx_errors only"
    );
    assert_eq!(g.rx(Some(0x7ffe), 2), RxOutcome::Consumed);
    assert_eq!(g.tags(), [2]);
    // Duplicate / late packets are behind nr.
    assert_eq!(
        g.rx(Some(0x7ffe), 3),
        RxOutcome::Dropped(DropReason::OutsideWindow)
    );
    assert_eq!(
        g.rx(Some(0x7ffd), 3),
        RxOutcome::Dropped(DropReason::OutsideWindow)
    );
    // Wraparound: nr = 0x7fff; ns 0 is 0x8001 ahead (outside), 0xfffd is 0x7ffe ahead (inside).
    assert_eq!(
        g.rx(Some(0), 4),
        RxOutcome::Dropped(DropReason::OutsideWindow)
    );
    assert_eq!(g.s.stats().rx_errors, 4);
}

#[test]
fn v3_window_is_24_bit() {
    let mut g = Rig::v3(|_| {});
    assert_eq!(
        g.rx(Some(0x7f_ffff), 1),
        RxOutcome::Dropped(DropReason::OutsideWindow)
    );
    assert_eq!(g.rx(Some(0x7f_fffe), 1), RxOutcome::Consumed);
    // nr wraps at 2^24: jump twice (5 dropped, the 6th resyncs) to reach the top, then 0.
    for ns in 0xbf_fffa..0xbf_ffff {
        assert_eq!(
            g.rx(Some(ns), 9),
            RxOutcome::Dropped(DropReason::OutOfSequence)
        );
    }
    assert_eq!(g.rx(Some(0xbf_ffff), 1), RxOutcome::Consumed);
    for ns in 0xff_fffa..0xff_ffff {
        assert_eq!(
            g.rx(Some(ns), 9),
            RxOutcome::Dropped(DropReason::OutOfSequence)
        );
    }
    assert_eq!(g.rx(Some(0xff_ffff), 2), RxOutcome::Consumed);
    assert_eq!(g.s.nr_ns().0, 0);
    assert_eq!(g.rx(Some(0), 3), RxOutcome::Consumed);
    assert_eq!(g.tags(), [1, 1, 2, 3]);
}

// ---- §2.5 in-order mode ----

#[test]
fn in_order_resync_after_five() {
    let mut g = Rig::v2(|_| {});
    for ns in 0..3 {
        assert_eq!(g.rx(Some(ns), ns as u8), RxOutcome::Consumed);
    }
    assert_eq!(g.s.nr_ns().0, 3);
    // The peer jumps to 100: the first five of the new run are discarded ...
    for ns in 100..105 {
        assert_eq!(
            g.rx(Some(ns), ns as u8),
            RxOutcome::Dropped(DropReason::OutOfSequence),
            "ns {ns}"
        );
    }
    let st = g.s.stats();
    assert_eq!((st.rx_seq_discards, st.rx_errors), (5, 5));
    // ... the sixth resynchronises.
    assert_eq!(g.rx(Some(105), 105), RxOutcome::Consumed);
    assert_eq!(g.rx(Some(106), 106), RxOutcome::Consumed);
    assert_eq!(g.tags(), [0, 1, 2, 105, 106]);
    assert_eq!(g.s.nr_ns().0, 107);
    assert_eq!(g.s.stats().rx_packets, 5);
}

#[test]
fn in_order_non_consecutive_oos_resets_count() {
    let mut g = Rig::v3(|_| {});
    g.rx(Some(0), 0);
    // Scattered out-of-sequence packets never reach the threshold.
    for ns in [10, 20, 30, 40, 50, 60, 70] {
        assert_eq!(
            g.rx(Some(ns), 1),
            RxOutcome::Dropped(DropReason::OutOfSequence)
        );
    }
    // The expected one still goes through.
    assert_eq!(g.rx(Some(1), 2), RxOutcome::Consumed);
    assert_eq!(g.tags(), [0, 2]);
}

// ---- §2.6 reorder insertion ----

#[test]
fn reorder_insertion_and_oos_counter() {
    let mut g = Rig::v3(|p| p.reorder_timeout_ms = 100);
    g.rx(Some(0), 0);
    g.rx(Some(3), 3); // appended
    g.rx(Some(2), 2); // inserted before 3
    g.rx(Some(5), 5); // appended
    g.rx(Some(4), 4); // inserted before 5
    assert_eq!(g.s.stats().rx_oos_packets, 2);
    assert_eq!(g.s.reorder_queue_len(), 4);
    assert_eq!(g.tags(), [0]);
    g.rx(Some(1), 1); // inserted before 2, releases everything
    assert_eq!(g.tags(), [1, 2, 3, 4, 5]);
    let st = g.s.stats();
    assert_eq!((st.rx_oos_packets, st.rx_packets, st.rx_errors), (3, 6, 0));
    assert_eq!(g.s.nr_ns().0, 6);
}

// ---- §2.7 dequeue and expiry ----

#[test]
fn expiry_on_next_packet() {
    let mut g = Rig::v3(|p| p.reorder_timeout_ms = 100);
    g.rx(Some(0), 0);
    g.rx(Some(2), 2); // held, 1 lost
    g.now += Duration::from_millis(150);
    g.rx(Some(3), 3); // 2 has expired: dropped; skip ⇒ nr resyncs to 3
    assert_eq!(g.tags(), [0, 3]);
    let st = g.s.stats();
    assert_eq!(
        (st.rx_seq_discards, st.rx_errors),
        (1, 1),
        "expired packets are dropped, not delivered"
    );
}

#[test]
fn expiry_by_timer() {
    let mut g = Rig::v3(|p| p.reorder_timeout_ms = 100);
    let t0 = g.now;
    g.rx(Some(0), 0);
    g.rx(Some(2), 2);
    g.now = t0 + Duration::from_millis(50);
    g.rx(Some(3), 3);
    assert_eq!(g.tags(), [0]);
    assert_eq!(g.s.next_timeout(), Some(t0 + Duration::from_millis(100)));
    let mut got = Vec::new();
    // Nothing yet before the head's deadline.
    g.s.poll_reorder(t0 + Duration::from_millis(99), &mut |_, f| got.push(f[0]));
    assert!(got.is_empty());
    // The timer drops the expired head; 3 (not expired) resyncs and is delivered.
    g.s.poll_reorder(t0 + Duration::from_millis(100), &mut |_, f| got.push(f[0]));
    assert_eq!(got, [3]);
    assert_eq!(g.s.next_timeout(), None);
    let st = g.s.stats();
    assert_eq!((st.rx_seq_discards, st.rx_packets), (1, 2));
}

#[test]
fn timer_drops_everything_expired() {
    let mut g = Rig::v3(|p| p.reorder_timeout_ms = 10);
    g.rx(Some(0), 0);
    g.rx(Some(5), 5);
    g.rx(Some(7), 7);
    let mut got = Vec::new();
    let t = g.now + Duration::from_secs(1);
    g.s.poll_reorder(t, &mut |_, f| got.push(f[0]));
    assert!(got.is_empty());
    assert_eq!(g.s.reorder_queue_len(), 0);
    assert_eq!(g.s.stats().rx_seq_discards, 2);
    // After the skip, the next packet defines nr.
    g.now = t;
    assert_eq!(g.rx(Some(50), 50), RxOutcome::Consumed);
    assert_eq!(g.tags(), [0, 50]);
}

// ---- §2.8 transmit and §3.1 counters ----

#[test]
fn transmit_sequence_numbers() {
    let g = Rig::v2(|p| p.send_seq = true);
    let mut buf = [0u8; 64];
    for want in 0..3u16 {
        let (s, e) = g.s.encap(&mut buf, 32, 4).unwrap();
        assert_eq!(e - s, 10 + 2 + 4);
        assert_eq!(
            &buf[s..s + 12],
            &[0x08, 0x02, 0, 2, 0, 20, 0, want as u8, 0, 0, 0xff, 0x03]
        );
    }
    let g = Rig::v3(|p| p.send_seq = true);
    let (s, _) = g.s.encap(&mut buf, 32, 14).unwrap();
    assert_eq!(&buf[s..s + 12], &[0, 3, 0, 0, 0, 0, 0, 20, 0x40, 0, 0, 0]);
    let (s, _) = g.s.encap(&mut buf, 32, 14).unwrap();
    assert_eq!(&buf[s + 8..s + 12], &[0x40, 0, 0, 1]);
    // l2spec none: never any sequence number.
    let g = Rig::v3(|p| {
        p.send_seq = true;
        p.l2spec_type = L2SpecType::None;
    });
    let (s, e) = g.s.encap(&mut buf, 32, 14).unwrap();
    assert_eq!(e - s, 8 + 14);
    // Not enough headroom: tx_errors on session and tunnel.
    assert!(g.s.encap(&mut buf, 4, 14).is_none());
    assert_eq!(g.s.stats().tx_errors, 1);
    assert_eq!(g.s.tunnel().stats().tx_errors, 1);
}

#[test]
fn counters() {
    let mut g = Rig::v3(|_| {});
    let p = g.packet(Some(0), 1);
    g.rx(Some(0), 1);
    g.rx(Some(1), 1);
    let st = g.s.stats();
    assert_eq!(
        (st.rx_packets, st.rx_bytes),
        (2, 2 * p.len() as u64),
        "rx_bytes include the L2TP header"
    );
    let ts = g.s.tunnel().stats();
    assert_eq!((ts.rx_packets, ts.rx_bytes), (2, 2 * p.len() as u64));
    g.s.tx_done(100, true);
    g.s.tx_done(50, true);
    g.s.tx_done(10, false);
    for st in [g.s.stats(), g.s.tunnel().stats()] {
        assert_eq!((st.tx_packets, st.tx_bytes, st.tx_errors), (2, 150, 1));
    }
    // Session-only counters never move on the tunnel.
    g.rx(Some(40), 1);
    let ts = g.s.tunnel().stats();
    assert_eq!((ts.rx_errors, ts.rx_seq_discards), (0, 0));
    assert_eq!(g.s.stats().rx_seq_discards, 1);
    // A frame the pseudowire could not take.
    g.s.count_rx_error();
    assert_eq!(g.s.stats().rx_errors, 2);
}

#[test]
fn modify_changes_options() {
    let mut g = Rig::v3(|_| {});
    g.s.modify(Some(true), Some(true), Some(true), Some(250));
    let p = g.s.params();
    assert!(p.send_seq && p.recv_seq && p.lns_mode);
    assert_eq!(p.reorder_timeout_ms, 250);
    assert_eq!(g.rx(None, 1), RxOutcome::Dropped(DropReason::SeqRequired));
    g.s.modify(None, Some(false), None, None);
    assert!(g.s.send_seq() && !g.s.recv_seq());
}

// ---- §9.2 trace events ----

#[test]
fn trace_events_follow_the_sequence_logic() {
    let events: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut g = Rig::v3(|_| {});
    let e = events.clone();
    g.r.set_trace_sink(Some(Arc::new(move |ev: &TraceEvent| {
        e.lock().unwrap().push(format!("{}: {ev}", ev.name()));
    })));
    g.rx(Some(0), 0);
    assert!(events.lock().unwrap().is_empty(), "off by default");
    g.r.set_trace(1, Some(10), true).unwrap();
    g.rx(Some(1), 1);
    g.rx(Some(9), 9);
    g.rx(None, 2);
    g.rx(Some(0xff_fff0), 3);
    let ev = events.lock().unwrap().clone();
    assert_eq!(
        ev,
        [
            "session_seqnum_update: sess 1/10: ns=0 nr=2",
            "session_pkt_oos: sess 1/10: pkt_ns=9 my_nr=2 reorder_q_len=0",
            "session_seqnum_lns_disable: sess 1/10",
            "session_seqnum_lns_enable: sess 1/10",
            "session_pkt_outside_rx_window: sess 1/10: pkt_ns=16777200 my_nr=2 reorder_q_len=0",
        ]
    );
    drop(ev);
    events.lock().unwrap().clear();
    g.r.session_delete(1, 10).unwrap();
    let Rig { r, s, got, .. } = g;
    drop((s, got));
    let ev = events.lock().unwrap().clone();
    assert_eq!(ev, ["delete_session: sess 1/10", "free_session: sess 1/10"]);
    drop(r);
}

#[test]
fn reorder_queue_is_bounded() {
    let mut g = Rig::v3(|p| p.reorder_timeout_ms = 60_000);
    g.rx(Some(0), 0);
    // 1 is lost; 2..=1025 fill the queue.
    for ns in 2..2 + ul2tp_core::MAX_REORDER_QUEUE as u32 {
        assert_eq!(g.rx(Some(ns), 1), RxOutcome::Consumed);
    }
    assert_eq!(g.s.reorder_queue_len(), ul2tp_core::MAX_REORDER_QUEUE);
    assert_eq!(g.tags(), [0]);
    // One more: the head (2) is dropped as if expired, and the rest resyncs and flows.
    g.rx(Some(1026), 2);
    assert_eq!(g.s.reorder_queue_len(), 0);
    let st = g.s.stats();
    assert_eq!((st.rx_seq_discards, st.rx_packets), (1, 1 + 1024));
    assert_eq!(g.tags().len(), 1024);
    assert_eq!(g.s.nr_ns().0, 1027);
}

/// The reorder waker (the data path's timer) is called only when a held packet gives the
/// queue a deadline or an earlier one: never for in-order traffic, never with nothing held.
#[test]
fn reorder_waker_only_when_something_is_held() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    for timeout in [0, 100] {
        let mut g = Rig::v3(|p| p.reorder_timeout_ms = timeout);
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        assert!(!g.s.set_reorder_waker(move || {
            c.fetch_add(1, Ordering::Relaxed);
        }));
        for ns in 0..50 {
            g.rx(Some(ns), ns as u8);
        }
        for _ in 0..10 {
            g.rx(None, 0xee);
        }
        assert_eq!(g.s.next_timeout(), None, "timeout {timeout}");
        assert_eq!(calls.load(Ordering::Relaxed), 0, "timeout {timeout}");
    }
    let mut g = Rig::v3(|p| p.reorder_timeout_ms = 100);
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    g.s.set_reorder_waker(move || {
        c.fetch_add(1, Ordering::Relaxed);
    });
    g.rx(Some(0), 0);
    g.rx(Some(2), 2); // held: the queue gets a deadline
    assert_eq!(calls.load(Ordering::Relaxed), 1);
    g.rx(Some(3), 3); // held behind it: same head, no new wake-up
    assert_eq!(calls.load(Ordering::Relaxed), 1);
    g.rx(Some(1), 1); // fills the gap: all delivered, nothing held
    assert_eq!(g.tags(), [0, 1, 2, 3]);
    assert_eq!(g.s.next_timeout(), None);
    assert_eq!(calls.load(Ordering::Relaxed), 1);
}
