//! Engine-level rules driven by hand (no simulated network): StopCCN hold-down,
//! re-acknowledgement of duplicates, unknown mandatory AVPs, malformed input.

mod common;

use std::time::Duration;

use common::*;
use ul2tp_control::{
    CdnResult, Config, DigestAlg, DownReason, Encap, Endpoint, Event, MessageCounts, StopCcnResult,
    Timestamp, Transmit, Version,
};
use ul2tp_wire::avp::PwType;
use ul2tp_wire::avp::{AttrType, AvpValue, MessageType};
use ul2tp_wire::control::{ns_nr, ControlHeader};
use ul2tp_wire::digest;
use ul2tp_wire::message::{Message, MessageBuilder};

struct Pair {
    a: Endpoint,
    b: Endpoint,
    now: Timestamp,
}

impl Pair {
    fn new(version: Version) -> Pair {
        Pair {
            a: Endpoint::new(cfg(version, "a"), Encap::Udp, seed(1)),
            b: Endpoint::new(cfg(version, "b"), Encap::Udp, seed(2)),
            now: Timestamp::ZERO,
        }
    }

    /// A pair whose B runs with `b` (A's configuration comes with `connect`).
    fn up_with(version: Version, b: Config) -> (Pair, u32, u32) {
        let mut p = Pair {
            a: Endpoint::new(cfg(version, "a"), Encap::Udp, seed(1)),
            b: Endpoint::new(b, Encap::Udp, seed(2)),
            now: Timestamp::ZERO,
        };
        let ta = p.a.connect(p.now, addr(2), cfg(version, "a")).unwrap();
        p.settle(Duration::from_secs(1));
        let tb = p.b.tunnel_ids()[0];
        assert_eq!(p.b.tunnel_stats(tb).unwrap().state, "established");
        (p, ta, tb)
    }

    fn drain(ep: &mut Endpoint) -> Vec<Transmit> {
        std::iter::from_fn(|| ep.poll_transmit()).collect()
    }

    /// Exchange until quiet, advancing time to each timer (at most `limit`).
    fn settle(&mut self, limit: Duration) {
        let end = self.now + limit;
        loop {
            let mut moved = false;
            for t in Self::drain(&mut self.a) {
                self.b.handle_datagram(self.now, addr(1), &t.bytes);
                moved = true;
            }
            for t in Self::drain(&mut self.b) {
                self.a.handle_datagram(self.now, addr(2), &t.bytes);
                moved = true;
            }
            if moved {
                continue;
            }
            let next = [self.a.poll_timeout(), self.b.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.a.handle_timeout(self.now);
                    self.b.handle_timeout(self.now);
                }
                _ => break,
            }
        }
    }

    fn up(version: Version) -> (Pair, u32, u32) {
        let mut p = Pair::new(version);
        let ta = p.a.connect(p.now, addr(2), cfg(version, "a")).unwrap();
        p.settle(Duration::from_secs(1));
        let tb = p.b.tunnel_ids()[0];
        assert_eq!(p.b.tunnel_stats(tb).unwrap().state, "established");
        (p, ta, tb)
    }
}

fn events(ep: &mut Endpoint) -> Vec<Event> {
    std::iter::from_fn(|| ep.poll_event()).collect()
}

#[test]
fn stopccn_receiver_holds_state_and_reacks_duplicates() {
    for version in [Version::V2, Version::V3] {
        let (mut p, ta, tb) = Pair::up(version);
        events(&mut p.b);
        p.a.close_tunnel(p.now, ta, StopCcnResult::GeneralRequest)
            .unwrap();
        let stop = Pair::drain(&mut p.a);
        assert_eq!(stop.len(), 1);
        p.b.handle_datagram(p.now, addr(1), &stop[0].bytes);
        let ev = events(&mut p.b);
        assert!(
            matches!(
                &ev[..],
                [Event::TunnelDown {
                    reason: DownReason::Peer { result_code: 1, .. },
                    ..
                }]
            ),
            "{ev:?}"
        );
        // The ack is delayed; then B stays in "held".
        p.now += Duration::from_secs(1);
        p.b.handle_timeout(p.now);
        assert_eq!(Pair::drain(&mut p.b).len(), 1, "StopCCN acknowledged");
        assert_eq!(p.b.tunnel_stats(tb).unwrap().state, "held");
        // The ack was lost: A's retransmitted StopCCN, 10 s later, is acknowledged again at once.
        p.now += Duration::from_secs(10);
        p.b.handle_datagram(p.now, addr(1), &stop[0].bytes);
        let again = Pair::drain(&mut p.b);
        assert_eq!(again.len(), 1, "duplicate StopCCN re-acknowledged");
        let (ns, nr) = ns_nr(&again[0].bytes).unwrap();
        let (stop_ns, _) = ns_nr(&stop[0].bytes).unwrap();
        assert_eq!(nr, stop_ns.wrapping_add(1));
        let _ = ns;
        assert!(events(&mut p.b).is_empty(), "no second TunnelDown");
        // After the 31 s hold-down the state is gone. A StopCCN still retransmitted (every
        // acknowledgement lost) is acknowledged from the message alone, to A's tunnel id,
        // without bringing anything back.
        p.now += Duration::from_secs(31);
        p.b.handle_timeout(p.now);
        assert!(p.b.tunnel_ids().is_empty());
        p.b.handle_datagram(p.now, addr(1), &stop[0].bytes);
        let orphan = Pair::drain(&mut p.b);
        assert_eq!(orphan.len(), 1, "{version:?}");
        assert_eq!(ns_nr(&orphan[0].bytes).unwrap().1, stop_ns.wrapping_add(1));
        p.a.handle_datagram(p.now, addr(2), &orphan[0].bytes);
        assert!(
            p.a.tunnel_ids().is_empty(),
            "{version:?}: A forgot its tunnel"
        );
        assert!(p.b.tunnel_ids().is_empty() && events(&mut p.b).is_empty());
        assert_eq!(p.b.stats().orphan_stopccn_acks, 1);
    }
}

#[test]
fn control_messages_are_counted_by_type() {
    for version in [Version::V2, Version::V3] {
        let (mut p, ta, _) = Pair::up(version);
        let (a, b) = (p.a.message_stats().clone(), p.b.message_stats().clone());
        let c = |sent, retransmitted, received| MessageCounts {
            sent,
            retransmitted,
            received,
        };
        assert_eq!(a.get(MessageType::Sccrq), c(1, 0, 0), "{version:?}");
        assert_eq!(a.get(MessageType::Sccrp), c(0, 0, 1));
        assert_eq!(a.get(MessageType::Scccn), c(1, 0, 0));
        assert_eq!(b.get(MessageType::Sccrq), c(0, 0, 1));
        assert_eq!(b.get(MessageType::Sccrp), c(1, 0, 0));
        assert_eq!(b.get(MessageType::Scccn), c(0, 0, 1));
        // A StopCCN lost once: sent, retransmitted, received once (the duplicate is not).
        p.a.close_tunnel(p.now, ta, StopCcnResult::GeneralRequest)
            .unwrap();
        let first = Pair::drain(&mut p.a);
        p.now += Duration::from_secs(1);
        p.a.handle_timeout(p.now);
        let again = Pair::drain(&mut p.a);
        for t in first.iter().chain(&again) {
            p.b.handle_datagram(p.now, addr(1), &t.bytes);
        }
        p.settle(Duration::from_secs(5));
        let stop = |ep: &Endpoint| ep.message_stats().get(MessageType::StopCcn);
        assert_eq!(stop(&p.a), c(1, 1, 0));
        assert_eq!(stop(&p.b), c(0, 0, 1));
        // The counts outlive the tunnel.
        assert!(p.a.tunnel_ids().is_empty());
        let closed = p.a.stats().closed_channels;
        assert_eq!((closed.tx_msgs, closed.retransmits), (3, 1), "{closed:?}");
        assert_eq!(
            p.a.message_stats()
                .iter()
                .map(|(t, _)| t)
                .collect::<Vec<_>>(),
            [
                MessageType::Sccrq,
                MessageType::Sccrp,
                MessageType::Scccn,
                MessageType::StopCcn
            ]
        );
    }
}

#[test]
fn tunnel_stats_count_sessions_being_set_up_and_established() {
    let (mut p, ta, tb) = Pair::up(Version::V3);
    p.a.open_session(p.now, ta, Default::default()).unwrap();
    let counts = |ep: &Endpoint, t| {
        let s = ep.tunnel_stats(t).unwrap();
        (s.sessions, s.sessions_established)
    };
    assert_eq!(counts(&p.a, ta), (1, 0), "ICRQ queued");
    p.settle(Duration::from_secs(2));
    assert_eq!(counts(&p.a, ta), (1, 1));
    assert_eq!(counts(&p.b, tb), (1, 1));
}

#[test]
fn stopccn_sender_retransmits_until_acked_then_forgets() {
    let (mut p, ta, _) = Pair::up(Version::V2);
    p.a.close_tunnel(p.now, ta, StopCcnResult::GeneralRequest)
        .unwrap();
    let first = Pair::drain(&mut p.a);
    // lose it; A retransmits after 1 s
    p.now += Duration::from_secs(1);
    p.a.handle_timeout(p.now);
    let second = Pair::drain(&mut p.a);
    assert_eq!(second.len(), 1);
    assert_eq!(
        ns_nr(&first[0].bytes).map(|x| x.0),
        ns_nr(&second[0].bytes).map(|x| x.0),
        "same Ns"
    );
    assert_eq!(p.a.tunnel_stats(ta).unwrap().state, "closing");
    p.settle(Duration::from_secs(5));
    assert!(
        p.now < Timestamp::from_micros(10_000_000),
        "well before the hold-down ends"
    );
    assert!(
        p.a.tunnel_ids().is_empty(),
        "forgotten once the StopCCN is acknowledged"
    );
}

#[test]
fn duplicate_message_is_reacknowledged_not_redelivered() {
    let (mut p, ta, _) = Pair::up(Version::V2);
    events(&mut p.a);
    events(&mut p.b);
    p.a.open_session(p.now, ta, Default::default()).unwrap();
    let icrq = Pair::drain(&mut p.a);
    assert_eq!(icrq.len(), 1);
    p.b.handle_datagram(p.now, addr(1), &icrq[0].bytes);
    let icrp = Pair::drain(&mut p.b);
    assert_eq!(icrp.len(), 1, "ICRP piggybacks the ack");
    // The same ICRQ again (a retransmission): B acks immediately with a ZLB and opens nothing.
    p.b.handle_datagram(p.now, addr(1), &icrq[0].bytes);
    let ack = Pair::drain(&mut p.b);
    assert_eq!(ack.len(), 1);
    let (h, _) = ControlHeader::parse(&ack[0].bytes, Version::V2).unwrap();
    assert!(h.is_zlb());
    assert_eq!(
        p.b.tunnel_stats(p.b.tunnel_ids()[0])
            .unwrap()
            .channel
            .duplicates,
        1
    );
    p.a.handle_datagram(p.now, addr(2), &icrp[0].bytes);
    p.settle(Duration::from_secs(1));
    let ups = events(&mut p.b)
        .into_iter()
        .filter(|e| matches!(e, Event::SessionUp(_)))
        .count();
    assert_eq!(ups, 1);
}

#[test]
fn unknown_mandatory_avp_tears_down_tunnel_and_optional_one_is_ignored() {
    for (mandatory, expect_down) in [(false, false), (true, true)] {
        let (mut p, _, tb) = Pair::up(Version::V2);
        events(&mut p.b);
        let st = p.b.tunnel_stats(tb).unwrap();
        // A HELLO from A carrying an unknown vendor AVP.
        let ta = p.a.tunnel_ids()[0];
        let sa = p.a.tunnel_stats(ta).unwrap();
        let mut bytes = MessageBuilder::new(Version::V2, Encap::Udp, tb, 0, MessageType::Hello)
            .raw(mandatory, false, 0, 999, &[1, 2, 3])
            .unwrap()
            .finish()
            .unwrap();
        ul2tp_wire::control::set_ns_nr(&mut bytes, sa.next_ns, st.next_ns).unwrap();
        p.b.handle_datagram(p.now, addr(1), &bytes);
        let ev = events(&mut p.b);
        if expect_down {
            assert!(
                matches!(
                    &ev[..],
                    [Event::TunnelDown {
                        reason: DownReason::Protocol {
                            result_code: 2,
                            error_code: Some(8),
                            ..
                        },
                        ..
                    }]
                ),
                "{ev:?}"
            );
        } else {
            assert!(ev.is_empty(), "{ev:?}");
            assert_eq!(p.b.tunnel_stats(tb).unwrap().state, "established");
        }
    }
}

#[test]
fn malformed_datagrams_are_counted_and_dropped() {
    let (mut p, _, tb) = Pair::up(Version::V3);
    let before = p.b.stats();
    p.b.handle_datagram(p.now, addr(1), &[]);
    p.b.handle_datagram(p.now, addr(1), &[0xc8, 0x03, 0, 40, 0, 0, 0, 1]);
    // valid header, body whose first AVP is not Message Type
    let mut m = ControlHeader::new(Version::V3, tb, 0)
        .to_bytes()
        .unwrap()
        .to_vec();
    m.extend_from_slice(&[0x80, 8, 0, 0, 0, AttrType::HostName.get() as u8, b'x', b'y']);
    let len = m.len() as u16;
    ul2tp_wire::control::set_length(&mut m, len).unwrap();
    p.b.handle_datagram(p.now, addr(1), &m);
    // unknown tunnel
    let m2 = ul2tp_wire::control::zlb(Version::V3, Encap::Udp, 12345, 0, 0, 0).unwrap();
    p.b.handle_datagram(p.now, addr(1), &m2);
    let after = p.b.stats();
    assert_eq!(after.rx_malformed - before.rx_malformed, 3);
    assert_eq!(after.rx_unknown_tunnel - before.rx_unknown_tunnel, 1);
    assert!(Pair::drain(&mut p.b).is_empty());
    assert_eq!(p.b.tunnel_stats(tb).unwrap().state, "established");
}

#[test]
fn v2_over_ip_is_refused() {
    let mut ep = Endpoint::new(Config::default(), Encap::Ip, seed(1));
    assert!(ep
        .connect(Timestamp::ZERO, addr(2), cfg(Version::V2, "a"))
        .is_err());
}

#[test]
fn hidden_avps_are_on_the_wire_when_configured() {
    let hiding = |name| Config {
        secret: Some(b"k".to_vec()),
        hide_avps: true,
        ..cfg(Version::V2, name)
    };
    let mut p = Pair {
        a: Endpoint::new(hiding("a"), Encap::Udp, seed(1)),
        b: Endpoint::new(hiding("b"), Encap::Udp, seed(2)),
        now: Timestamp::ZERO,
    };
    let ta = p.a.connect(p.now, addr(2), hiding("a")).unwrap();
    let sccrq = Pair::drain(&mut p.a).remove(0);
    // SCCRQ (and SCCRP) stay in clear, Challenge included: the peer may need them to find
    // the secret (xl2tpd loads it only once it has read our Challenge).
    let m = Message::parse(&sccrq.bytes, Version::V2, None).unwrap();
    assert!(m.avps.iter().all(|a| !a.hidden), "{:?}", m.avps);
    assert!(m.challenge().is_some());
    p.b.handle_datagram(p.now, addr(1), &sccrq.bytes);
    p.settle(Duration::from_secs(1));
    assert!(p.a.tunnel_info(ta).is_some());
    p.a.open_session(p.now, ta, Default::default()).unwrap();
    let t = Pair::drain(&mut p.a).remove(0);
    let m = Message::parse(&t.bytes, Version::V2, Some(b"k")).unwrap();
    assert_eq!(m.message_type, Some(MessageType::Icrq));
    let avps = &m.avps;
    let attr = |a: &ul2tp_wire::avp::Avp| a.value.attr_type();
    let sid = avps
        .iter()
        .find(|x| attr(x) == AttrType::AssignedSessionId)
        .unwrap();
    assert!(sid.hidden);
    assert_eq!(
        m.assigned_session_id().map(u32::from),
        p.a.session_ids(ta).first().copied()
    );
    // Random Vector precedes the first hidden AVP (docs/reference/rfc.md §1.8).
    let rv = avps
        .iter()
        .position(|x| attr(x) == AttrType::RandomVector)
        .unwrap();
    let first_hidden = avps.iter().position(|x| x.hidden).unwrap();
    assert!(rv < first_hidden);
    // Only AVPs that may be hidden are, and all of those are.
    for a in avps.iter().skip(1) {
        assert_eq!(a.hidden, attr(a).may_hide(), "{a:?}");
    }
    // Without the secret the hidden AVPs cannot be revealed.
    assert!(Message::parse(&t.bytes, Version::V2, None).is_err());
}

/// Build an in-sequence message from A to B on an established pair (without the RFC's
/// mandatory-AVP check, so that tests can leave AVPs out).
fn forge(p: &mut Pair, version: Version, mtype: MessageType, avps: Vec<AvpValue>) -> Vec<u8> {
    let ta = p.a.tunnel_ids()[0];
    let tb = p.b.tunnel_ids()[0];
    let sa = p.a.tunnel_stats(ta).unwrap();
    let sb = p.b.tunnel_stats(tb).unwrap();
    let mut b = MessageBuilder::new(version, Encap::Udp, tb, 0, mtype);
    for v in avps {
        b = b.avp(v).unwrap();
    }
    let mut bytes = b.finish_unchecked().unwrap();
    ul2tp_wire::control::set_ns_nr(&mut bytes, sa.next_ns, sb.next_ns).unwrap();
    bytes
}

#[test]
fn call_request_missing_mandatory_avp_is_refused_with_cdn() {
    let (mut p, _, tb) = Pair::up(Version::V3);
    events(&mut p.b);
    // ICRQ without PW Type / Remote End ID / Circuit Status (RFC 3931 §6 requires them).
    let icrq = forge(
        &mut p,
        Version::V3,
        MessageType::Icrq,
        vec![
            AvpValue::LocalSessionId(77),
            AvpValue::RemoteSessionId(0),
            AvpValue::CallSerialNumber(1),
        ],
    );
    p.b.handle_datagram(p.now, addr(1), &icrq);
    let out = Pair::drain(&mut p.b);
    assert_eq!(out.len(), 1);
    let m = Message::parse(&out[0].bytes, Version::V3, None).unwrap();
    assert_eq!(m.message_type, Some(MessageType::Cdn));
    assert_eq!(m.remote_session_id(), Some(77));
    let rc = m.result_code().unwrap();
    assert_eq!(rc.result, 2);
    assert!(events(&mut p.b).is_empty());
    assert_eq!(p.b.tunnel_stats(tb).unwrap().sessions, 0);
    assert_eq!(p.b.tunnel_stats(tb).unwrap().state, "established");
}

#[test]
fn broken_avp_framing_is_discarded_without_touching_sequence_state() {
    let (mut p, _, tb) = Pair::up(Version::V2);
    let before = p.b.tunnel_stats(tb).unwrap().nr;
    let mut hello = forge(
        &mut p,
        Version::V2,
        MessageType::Hello,
        vec![AvpValue::HostName(b"x".to_vec())],
    );
    // AVP length 0x3ff points past the end of the message.
    let n = hello.len();
    hello[n - 7] = 0x03;
    hello[n - 6] = 0xff;
    p.b.handle_datagram(p.now, addr(1), &hello);
    assert_eq!(p.b.tunnel_stats(tb).unwrap().nr, before, "Nr not advanced");
    assert!(Pair::drain(&mut p.b).is_empty());
    assert_eq!(p.b.stats().rx_malformed, 1);
}

#[test]
fn extreme_configuration_values_do_not_panic() {
    let mut c = cfg(Version::V3, "a");
    c.retransmit_initial = Duration::MAX;
    c.retransmit_cap = Duration::MAX;
    c.hello_interval = Duration::MAX;
    c.stop_hold = Duration::MAX;
    c.ack_delay = Duration::MAX;
    c.max_retries = u32::MAX;
    c.rx_window = 0;
    c.pw_types.clear();
    let mut a = Endpoint::new(c.clone(), Encap::Udp, seed(1));
    let mut b = Endpoint::new(c.clone(), Encap::Udp, seed(2));
    let t = a.connect(Timestamp::ZERO, addr(2), c).unwrap();
    a.open_session(Timestamp::ZERO, t, Default::default())
        .unwrap();
    let mut now = Timestamp::ZERO;
    for _ in 0..50 {
        while let Some(x) = a.poll_transmit() {
            b.handle_datagram(now, addr(1), &x.bytes);
        }
        while let Some(x) = b.poll_transmit() {
            a.handle_datagram(now, addr(2), &x.bytes);
        }
        now = Timestamp::from_micros(u64::MAX);
        a.handle_timeout(now);
        b.handle_timeout(now);
    }
    // Whatever state the tunnel reached, commands answer with a value, never a panic.
    let _ = a.close_tunnel(now, t, StopCcnResult::GeneralRequest);
    assert!(a
        .close_tunnel(now, t, StopCcnResult::GeneralRequest)
        .is_err());
    assert_eq!(
        a.close_session(now, 12345, 1, CdnResult::Administrative),
        Err(ul2tp_control::Error::NoTunnel)
    );
}

#[test]
fn values_an_avp_cannot_carry_are_refused_as_bad_config() {
    let mut c = cfg(Version::V3, "a");
    c.host_name = "h".repeat(2000);
    let mut ep = Endpoint::new(cfg(Version::V3, "a"), Encap::Udp, seed(1));
    assert!(matches!(
        ep.connect(Timestamp::ZERO, addr(2), c),
        Err(ul2tp_control::Error::BadConfig(_))
    ));
    let mut c = cfg(Version::V3, "a");
    c.pw_types = vec![PwType::Ethernet; 600];
    assert!(matches!(
        ep.connect(Timestamp::ZERO, addr(2), c),
        Err(ul2tp_control::Error::BadConfig(_))
    ));
    assert!(ep.tunnel_ids().is_empty());
    // A session whose Remote End ID does not fit is refused; the largest that fits (with the
    // hidden-length field) reaches the peer.
    let (mut p, ta, _) = Pair::up(Version::V3);
    events(&mut p.b);
    let long = ul2tp_control::SessionConfig {
        remote_end_id: vec![b'x'; 1016],
        ..Default::default()
    };
    assert!(matches!(
        p.a.open_session(p.now, ta, long),
        Err(ul2tp_control::Error::BadConfig(_))
    ));
    assert!(p.a.session_ids(ta).is_empty());
    let max = ul2tp_control::SessionConfig {
        remote_end_id: vec![b'x'; 1015],
        ..Default::default()
    };
    p.a.open_session(p.now, ta, max).unwrap();
    p.settle(Duration::from_secs(1));
    let ev = events(&mut p.b);
    assert!(
        matches!(&ev[..], [Event::SessionUp(i)] if i.remote_end_id.len() == 1015),
        "{ev:?}"
    );
}

#[test]
fn endpoint_with_unusable_defaults_does_not_admit_tunnels() {
    let mut bad = cfg(Version::V2, "b");
    bad.host_name = "h".repeat(2000);
    let mut b = Endpoint::new(bad, Encap::Udp, seed(2));
    let mut a = Endpoint::new(cfg(Version::V2, "a"), Encap::Udp, seed(1));
    a.connect(Timestamp::ZERO, addr(2), cfg(Version::V2, "a"))
        .unwrap();
    let sccrq = a.poll_transmit().unwrap();
    b.handle_datagram(Timestamp::ZERO, addr(1), &sccrq.bytes);
    assert!(b.tunnel_ids().is_empty());
    assert!(b.poll_transmit().is_none());
}

#[test]
fn sccrq_missing_a_mandatory_avp_gets_stopccn_to_the_assigned_id() {
    // docs/reference/rfc.md §1.5: SCCRQ needs Framing Capabilities. The wire layer rejects the message;
    // the engine still answers the Assigned Tunnel ID decoded before the problem.
    let mut b = Endpoint::new(cfg(Version::V2, "b"), Encap::Udp, seed(2));
    let sccrq = MessageBuilder::new(Version::V2, Encap::Udp, 0, 0, MessageType::Sccrq)
        .avp(AvpValue::ProtocolVersion {
            version: 1,
            revision: 0,
        })
        .unwrap()
        .avp(AvpValue::HostName(b"a".to_vec()))
        .unwrap()
        .avp(AvpValue::AssignedTunnelId(4242))
        .unwrap()
        .finish_unchecked()
        .unwrap();
    b.handle_datagram(Timestamp::ZERO, addr(1), &sccrq);
    let out = Pair::drain(&mut b);
    let stop = out
        .iter()
        .map(|t| Message::parse(&t.bytes, Version::V2, None).unwrap())
        .find(|m| m.message_type == Some(MessageType::StopCcn))
        .expect("a StopCCN");
    assert_eq!(stop.header.tunnel_id, 4242);
    let rc = stop.result_code().unwrap();
    assert_eq!(rc.result, StopCcnResult::GeneralError.get());
    assert_eq!(rc.error.map(|e| e.get()), Some(6));
    let text = rc.message_str().unwrap();
    assert!(text.contains("Framing Capabilities"), "{text}");
    let ev = events(&mut b);
    assert!(
        matches!(
            &ev[..],
            [Event::TunnelDown {
                reason: DownReason::Protocol {
                    result_code: 2,
                    error_code: Some(6),
                    ..
                },
                was_up: false,
                ..
            }]
        ),
        "{ev:?}"
    );
}

/// The SCCRQ an endpoint seeded with `s` sends first: its tunnel id and Challenge come from
/// the generator.
fn first_sccrq(s: [u8; 32]) -> (u16, Vec<u8>, Vec<u8>) {
    let mut c = cfg(Version::V2, "a");
    c.secret = Some(b"k".to_vec());
    c.send_challenge = true;
    let mut ep = Endpoint::new(c.clone(), Encap::Udp, s);
    ep.connect(Timestamp::ZERO, addr(2), c).unwrap();
    let bytes = ep.poll_transmit().unwrap().bytes;
    let m = Message::parse(&bytes, Version::V2, Some(b"k")).unwrap();
    let tid = m.assigned_tunnel_id().unwrap();
    assert_eq!(u32::from(tid), ep.tunnel_ids()[0]);
    let challenge = m.challenge().expect("a Challenge AVP").to_vec();
    (tid, challenge, bytes)
}

#[test]
fn seed_is_32_octets_and_determines_ids_and_challenges() {
    // The same seed reproduces the same tunnel id, Challenge and bytes (tests rely on it).
    assert_eq!(first_sccrq([7; 32]), first_sccrq([7; 32]));
    assert_eq!(first_sccrq(seed(5)), first_sccrq(seed(5)));
    // Seeds differing in any octet, including the last ones a u64 seed could not reach, give
    // different values.
    let base = first_sccrq([0; 32]);
    for i in [0usize, 8, 31] {
        let mut s = [0u8; 32];
        s[i] = 1;
        let other = first_sccrq(s);
        assert_ne!(other.1, base.1, "challenge with octet {i} changed");
        assert_ne!(other.2, base.2);
    }
    let ids: std::collections::HashSet<u16> = (0..32u8).map(|i| first_sccrq([i; 32]).0).collect();
    assert!(ids.len() > 28, "tunnel ids barely vary: {ids:?}");
}

fn msg_type(bytes: &[u8], version: Version) -> Option<MessageType> {
    Message::parse(bytes, version, None).ok()?.message_type
}

fn ns_of(t: &Transmit) -> u16 {
    ns_nr(&t.bytes).unwrap().0
}

fn sessions_up_in(ev: &[Event]) -> Vec<u32> {
    ev.iter()
        .filter_map(|e| match e {
            Event::SessionUp(i) => Some(i.session_id),
            _ => None,
        })
        .collect()
}

#[test]
fn stopccn_after_queued_messages_carries_the_ns_the_peer_expects() {
    for version in [Version::V2, Version::V3] {
        let (mut p, ta, tb) = Pair::up(version);
        events(&mut p.b);
        let expected = p.b.tunnel_stats(tb).unwrap().nr;
        assert_eq!(p.a.tunnel_stats(ta).unwrap().next_ns, expected);
        // 40 ICRQs: the window lets only a few out, the rest wait.
        for _ in 0..40 {
            p.a.open_session(p.now, ta, Default::default()).unwrap();
        }
        let sent = Pair::drain(&mut p.a);
        assert!(!sent.is_empty() && sent.len() < 40, "{} sent", sent.len());
        p.a.close_tunnel(p.now, ta, StopCcnResult::GeneralRequest)
            .unwrap();
        // The StopCCN waits behind the ICRQs in flight; they are retransmitted first.
        assert!(Pair::drain(&mut p.a).is_empty(), "window still full");
        p.now += Duration::from_secs(1);
        p.a.handle_timeout(p.now);
        let rtx = Pair::drain(&mut p.a);
        assert_eq!(rtx.len(), 1);
        assert_eq!(ns_of(&rtx[0]), ns_of(&sent[0]), "the oldest ICRQ again");
        assert_eq!(msg_type(&rtx[0].bytes, version), Some(MessageType::Icrq));
        // The peer gets what was sent, acknowledges it, and then the StopCCN with the next Ns.
        for t in &sent {
            p.b.handle_datagram(p.now, addr(1), &t.bytes);
        }
        let mut stop = None;
        for _ in 0..20 {
            for t in Pair::drain(&mut p.b) {
                p.a.handle_datagram(p.now, addr(2), &t.bytes);
            }
            for t in Pair::drain(&mut p.a) {
                if msg_type(&t.bytes, version) == Some(MessageType::StopCcn) {
                    stop = Some(ns_of(&t));
                }
                p.b.handle_datagram(p.now, addr(1), &t.bytes);
            }
            p.now += Duration::from_millis(200);
            p.a.handle_timeout(p.now);
            p.b.handle_timeout(p.now);
        }
        let want = expected.wrapping_add(sent.len() as u16);
        assert_eq!(stop, Some(want), "StopCCN Ns");
        let ev = events(&mut p.b);
        let up = sessions_up_in(&ev).len();
        let down = ev
            .iter()
            .filter(|e| matches!(e, Event::SessionDown { .. }))
            .count();
        assert!(
            ev.iter().any(|e| matches!(
                e,
                Event::TunnelDown {
                    reason: DownReason::Peer { result_code: 1, .. },
                    ..
                }
            )),
            "{ev:?}"
        );
        assert_eq!(down, sent.len(), "every session the peer opened is down");
        assert!(up <= down);
        assert_eq!(p.b.tunnel_stats(tb).unwrap().state, "held");
        assert!(p.a.tunnel_ids().is_empty(), "A forgets once acknowledged");
    }
}

#[test]
fn lac_reports_session_up_when_its_iccn_is_acknowledged() {
    for version in [Version::V2, Version::V3] {
        let (mut p, ta, _) = Pair::up(version);
        events(&mut p.a);
        events(&mut p.b);
        let sid = p.a.open_session(p.now, ta, Default::default()).unwrap();
        let icrq = Pair::drain(&mut p.a);
        p.b.handle_datagram(p.now, addr(1), &icrq[0].bytes);
        let icrp = Pair::drain(&mut p.b);
        p.a.handle_datagram(p.now, addr(2), &icrp[0].bytes);
        let iccn = Pair::drain(&mut p.a);
        assert_eq!(msg_type(&iccn[0].bytes, version), Some(MessageType::Iccn));
        assert!(
            sessions_up_in(&events(&mut p.a)).is_empty(),
            "ICCN not yet acknowledged"
        );
        // The ICCN is lost: A retransmits it and still does not report the session.
        p.now += Duration::from_secs(1);
        p.a.handle_timeout(p.now);
        let again = Pair::drain(&mut p.a);
        assert_eq!(again.len(), 1);
        assert!(sessions_up_in(&events(&mut p.a)).is_empty());
        // The LNS reports its session when the ICCN arrives.
        p.b.handle_datagram(p.now, addr(1), &again[0].bytes);
        assert_eq!(sessions_up_in(&events(&mut p.b)).len(), 1);
        // Its acknowledgement (delayed ZLB / ACK) brings A's session up.
        p.now += Duration::from_secs(1);
        p.b.handle_timeout(p.now);
        let ack = Pair::drain(&mut p.b);
        assert_eq!(ack.len(), 1);
        p.a.handle_datagram(p.now, addr(2), &ack[0].bytes);
        assert_eq!(sessions_up_in(&events(&mut p.a)), vec![sid]);
    }
}

#[test]
fn session_waiting_behind_a_full_window_is_not_up() {
    for version in [Version::V2, Version::V3] {
        // B's receive window of 1 allows A one message in flight.
        let mut b = cfg(version, "b");
        b.rx_window = 1;
        let (mut p, ta, _) = Pair::up_with(version, b);
        events(&mut p.a);
        events(&mut p.b);
        let s1 = p.a.open_session(p.now, ta, Default::default()).unwrap();
        let s2 = p.a.open_session(p.now, ta, Default::default()).unwrap();
        let icrq1 = Pair::drain(&mut p.a);
        assert_eq!(icrq1.len(), 1);
        p.b.handle_datagram(p.now, addr(1), &icrq1[0].bytes);
        let icrp1 = Pair::drain(&mut p.b);
        p.a.handle_datagram(p.now, addr(2), &icrp1[0].bytes);
        // ICRQ 2 takes the window; ICCN 1 waits behind it.
        let out = Pair::drain(&mut p.a);
        assert_eq!(out.len(), 1);
        assert_eq!(msg_type(&out[0].bytes, version), Some(MessageType::Icrq));
        assert!(
            sessions_up_in(&events(&mut p.a)).is_empty(),
            "session {s1} reported up while its ICCN was never sent"
        );
        p.b.handle_datagram(p.now, addr(1), &out[0].bytes);
        p.settle(Duration::from_secs(5));
        let mut up = sessions_up_in(&events(&mut p.a));
        up.sort_unstable();
        let mut want = vec![s1, s2];
        want.sort_unstable();
        assert_eq!(up, want);
        assert_eq!(sessions_up_in(&events(&mut p.b)).len(), 2);
    }
}

#[test]
fn zlb_carries_the_ns_of_the_next_message_on_the_wire() {
    for version in [Version::V2, Version::V3] {
        let mut b = cfg(version, "b");
        b.rx_window = 1;
        let (mut p, ta, tb) = Pair::up_with(version, b);
        // A: one ICRQ in flight (not delivered yet), two waiting for the window.
        for _ in 0..3 {
            p.a.open_session(p.now, ta, Default::default()).unwrap();
        }
        let icrq1 = Pair::drain(&mut p.a);
        assert_eq!(icrq1.len(), 1);
        let first = ns_of(&icrq1[0]);
        // B opens a call; A cannot answer it yet (window full), so it acknowledges it alone.
        p.b.open_session(p.now, tb, Default::default()).unwrap();
        for t in Pair::drain(&mut p.b) {
            p.a.handle_datagram(p.now, addr(2), &t.bytes);
        }
        // Past the acknowledgement delay (100 ms), before the retransmission timeout (at
        // least ack_delay + channel::RTO_MIN once the round trip is measured).
        p.now += Duration::from_millis(150);
        p.a.handle_timeout(p.now);
        let ack = Pair::drain(&mut p.a);
        assert_eq!(ack.len(), 1);
        let (h, _) = ControlHeader::parse(&ack[0].bytes, version).unwrap();
        match version {
            Version::V2 => assert!(h.is_zlb()),
            Version::V3 => assert_eq!(msg_type(&ack[0].bytes, version), Some(MessageType::Ack)),
        }
        assert_eq!(
            h.ns,
            first.wrapping_add(1),
            "not counting the 3 messages queued"
        );
        // The next message B sees from A carries that Ns.
        p.b.handle_datagram(p.now, addr(1), &icrq1[0].bytes);
        for t in Pair::drain(&mut p.b) {
            p.a.handle_datagram(p.now, addr(2), &t.bytes);
        }
        let next = Pair::drain(&mut p.a);
        assert_eq!(ns_of(&next[0]), h.ns);
    }
}

/// An LNS with a secret (and default settings) answers an SCCRQ from a LAC without one; the
/// LAC's SCCCN then carries `response`. Returns what the LNS sent and its events.
fn lns_gets_scccn(response: Option<Vec<u8>>) -> (Vec<Message>, Vec<Event>, Vec<u8>) {
    let mut b = Endpoint::new(
        Config {
            secret: Some(b"right".to_vec()),
            ..cfg(Version::V2, "b")
        },
        Encap::Udp,
        seed(2),
    );
    let mut a = Endpoint::new(cfg(Version::V2, "a"), Encap::Udp, seed(1));
    a.connect(Timestamp::ZERO, addr(2), cfg(Version::V2, "a"))
        .unwrap();
    let sccrq = a.poll_transmit().unwrap();
    b.handle_datagram(Timestamp::ZERO, addr(1), &sccrq.bytes);
    let sccrp = b.poll_transmit().unwrap();
    let m = Message::parse(&sccrp.bytes, Version::V2, None).unwrap();
    assert_eq!(m.message_type, Some(MessageType::Sccrp));
    let challenge = m
        .challenge()
        .expect("a secret makes the LNS challenge")
        .to_vec();
    let tid_b = m.assigned_tunnel_id().unwrap();
    let mut scccn =
        MessageBuilder::new(Version::V2, Encap::Udp, tid_b.into(), 0, MessageType::Scccn);
    if let Some(r) = response {
        scccn = scccn
            .avp(AvpValue::ChallengeResponse(r.try_into().unwrap()))
            .unwrap();
    }
    let mut scccn = scccn.finish_unchecked().unwrap();
    ul2tp_wire::control::set_ns_nr(&mut scccn, 1, 1).unwrap();
    b.handle_datagram(Timestamp::ZERO, addr(1), &scccn);
    let out = Pair::drain(&mut b)
        .iter()
        .map(|t| Message::parse(&t.bytes, Version::V2, None).unwrap())
        .collect();
    (out, events(&mut b), challenge)
}

fn assert_stopccn_4(out: &[Message], ev: &[Event]) {
    let stop = out
        .iter()
        .find(|m| m.message_type == Some(MessageType::StopCcn))
        .expect("a StopCCN");
    assert_eq!(
        stop.result_code().unwrap().result,
        StopCcnResult::NotAuthorized.get()
    );
    assert!(
        matches!(
            ev,
            [Event::TunnelDown {
                reason: DownReason::AuthFailed,
                was_up: false,
                ..
            }]
        ),
        "{ev:?}"
    );
}

#[test]
fn v2_lns_with_secret_refuses_scccn_without_or_with_wrong_challenge_response() {
    // No Challenge Response at all (a LAC that ignores the Challenge).
    let (out, ev, _) = lns_gets_scccn(None);
    assert_stopccn_4(&out, &ev);
    // A response computed with another secret.
    let (_, _, ch) = lns_gets_scccn(None);
    let wrong = digest::challenge_response(MessageType::Scccn, b"wrong", &ch).to_vec();
    let (out, ev, ch2) = lns_gets_scccn(Some(wrong));
    assert_eq!(ch, ch2, "same seed, same challenge");
    assert_stopccn_4(&out, &ev);
    // The right one: up, and reported as authenticated.
    let right = digest::challenge_response(MessageType::Scccn, b"right", &ch).to_vec();
    let (out, ev, _) = lns_gets_scccn(Some(right));
    assert!(out
        .iter()
        .all(|m| m.message_type != Some(MessageType::StopCcn)));
    assert!(
        matches!(&ev[..], [Event::TunnelUp(i)] if i.authenticated),
        "{ev:?}"
    );
}

#[test]
fn v3_authenticated_tunnel_drops_messages_without_or_with_a_wrong_digest() {
    let secret = b"k".to_vec();
    let c = |n| Config {
        secret: Some(secret.clone()),
        ..cfg(Version::V3, n)
    };
    let mut p = Pair {
        a: Endpoint::new(c("a"), Encap::Udp, seed(1)),
        b: Endpoint::new(c("b"), Encap::Udp, seed(2)),
        now: Timestamp::ZERO,
    };
    let ta = p.a.connect(p.now, addr(2), c("a")).unwrap();
    p.settle(Duration::from_secs(1));
    let tb = p.b.tunnel_ids()[0];
    assert!(p.a.tunnel_info(ta).unwrap().authenticated);
    let before = p.b.tunnel_stats(tb).unwrap();
    // An in-sequence HELLO without a Message Digest.
    let plain = forge(&mut p, Version::V3, MessageType::Hello, vec![]);
    p.b.handle_datagram(p.now, addr(1), &plain);
    // The same HELLO with a digest slot signed with another secret.
    let sa = p.a.tunnel_stats(ta).unwrap();
    let mut signed = MessageBuilder::new(Version::V3, Encap::Udp, tb, 0, MessageType::Hello)
        .digest(DigestAlg::HmacMd5.into())
        .unwrap()
        .finish()
        .unwrap();
    ul2tp_wire::control::set_ns_nr(&mut signed, sa.next_ns, before.next_ns).unwrap();
    digest::sign_message(&mut signed, b"wrong", None).unwrap();
    p.b.handle_datagram(p.now, addr(1), &signed);
    let after = p.b.tunnel_stats(tb).unwrap();
    assert_eq!(p.b.stats().rx_auth_failures, 2);
    assert_eq!(after.nr, before.nr, "neither was sequenced");
    assert_eq!(after.channel.delivered, before.channel.delivered);
    assert!(Pair::drain(&mut p.b).is_empty());
}

/// One endpoint serves UDP and L2TPv3/IP at once: a tunnel opened over each comes up, every
/// message of a tunnel leaves over its own transport, and a message for a tunnel that arrives
/// over the other transport is counted as one for an unknown tunnel.
#[test]
fn one_endpoint_serves_udp_and_ip() {
    let now = Timestamp::ZERO;
    let v3 = Version::V3;
    let mut b = Endpoint::new(cfg(v3, "b"), Encap::Udp, seed(2));
    let mut u = Endpoint::new(cfg(v3, "u"), Encap::Udp, seed(3));
    let mut i = Endpoint::new(cfg(v3, "i"), Encap::Ip, seed(4));
    let ip_addr = |n| std::net::SocketAddr::new(addr(n).ip(), 0);
    let tu = u.connect(now, addr(2), cfg(v3, "u")).unwrap();
    let ti = i.connect(now, ip_addr(2), cfg(v3, "i")).unwrap();
    for _ in 0..10 {
        for t in Pair::drain(&mut u) {
            assert_eq!(t.encap, Encap::Udp);
            b.handle_datagram_via(now, Encap::Udp, addr(1), &t.bytes);
        }
        for t in Pair::drain(&mut i) {
            assert_eq!(t.encap, Encap::Ip);
            assert_eq!(&t.bytes[..4], &[0; 4], "L2TPv3/IP control prefix");
            b.handle_datagram_via(now, Encap::Ip, ip_addr(3), &t.bytes);
        }
        for t in Pair::drain(&mut b) {
            if t.dst == addr(1) {
                assert_eq!(t.encap, Encap::Udp, "to the UDP peer");
                u.handle_datagram(now, addr(2), &t.bytes);
            } else {
                assert_eq!((t.dst, t.encap), (ip_addr(3), Encap::Ip), "to the IP peer");
                i.handle_datagram(now, ip_addr(2), &t.bytes);
            }
        }
    }
    let iu = u.tunnel_info(tu).unwrap();
    assert!(i.tunnel_info(ti).is_some(), "the IP tunnel is up");
    let mut on_b: Vec<(Encap, u32)> = b
        .tunnel_ids()
        .into_iter()
        .filter_map(|t| b.tunnel_info(t))
        .map(|t| (t.encap, t.peer_tunnel_id))
        .collect();
    on_b.sort_by_key(|&(e, _)| e == Encap::Ip);
    assert_eq!(on_b, vec![(Encap::Udp, tu), (Encap::Ip, ti)]);
    // The UDP tunnel's id, over IP: not that tunnel's.
    let before = b.stats().rx_unknown_tunnel;
    let m = ul2tp_wire::control::zlb(v3, Encap::Ip, iu.peer_tunnel_id, 0, 0, 0).unwrap();
    b.handle_datagram_via(now, Encap::Ip, ip_addr(1), &m);
    assert_eq!(b.stats().rx_unknown_tunnel, before + 1);
}

/// Circuit Status (RFC 4719 §2.3.1): each side learns the peer's from the ICRQ / ICRP (active
/// and new), and a Set-Link-Info reports later changes.
#[test]
fn circuit_status_at_setup_and_in_set_link_info() {
    use ul2tp_wire::avp::{CIRCUIT_ACTIVE, CIRCUIT_NEW};
    let (mut p, ta, tb) = Pair::up(Version::V3);
    events(&mut p.a);
    events(&mut p.b);
    let sa = p.a.open_session(p.now, ta, Default::default()).unwrap();
    p.settle(Duration::from_secs(1));
    let up = |ev: Vec<Event>| {
        ev.into_iter().find_map(|e| match e {
            Event::SessionUp(i) => Some(i),
            _ => None,
        })
    };
    let (ia, ib) = (up(events(&mut p.a)).unwrap(), up(events(&mut p.b)).unwrap());
    let active_new = Some(CIRCUIT_ACTIVE | CIRCUIT_NEW);
    assert_eq!(ia.peer_circuit_status, active_new, "from the ICRP");
    assert_eq!(ib.peer_circuit_status, active_new, "from the ICRQ");
    p.a.set_link_info(p.now, ta, sa, 0, (0, 0)).unwrap();
    p.settle(Duration::from_secs(1));
    assert_eq!(
        events(&mut p.b),
        vec![Event::LinkInfo {
            tunnel_id: tb,
            session_id: ib.session_id,
            circuit_status: Some(0),
            accm: None,
        }]
    );
}

/// Tunnel ids the caller reports in use (its static tunnels) are never allocated: with every
/// odd id taken, a hundred tunnels opened and a hundred accepted all get even ids (without the
/// check, the chance of that is 2^-200).
#[test]
fn foreign_tunnel_ids_are_skipped() {
    for version in [Version::V2, Version::V3] {
        let mut a = Endpoint::new(cfg(version, "a"), Encap::Udp, seed(7));
        // A hundred SCCRQs from one peer at once: the flood limits are not under test here.
        let b_cfg = Config {
            max_half_open_per_peer: 1000,
            new_tunnels_per_second_per_peer: 0,
            ..cfg(version, "b")
        };
        let mut b = Endpoint::new(b_cfg, Encap::Udp, seed(8));
        let odd: ul2tp_control::TunnelIdInUse = std::sync::Arc::new(|id| id % 2 == 1);
        a.set_tunnel_id_in_use(odd.clone());
        b.set_tunnel_id_in_use(odd);
        for _ in 0..100 {
            let tid = a
                .connect(Timestamp::ZERO, addr(2), cfg(version, "a"))
                .unwrap();
            assert_eq!(tid % 2, 0, "{version:?}: allocated {tid}, which is in use");
            // The SCCRQ makes B allocate one of its own.
            let sccrq = a.poll_transmit().unwrap();
            b.handle_datagram(Timestamp::ZERO, addr(1), &sccrq.bytes);
        }
        let ids = b.tunnel_ids();
        assert_eq!(ids.len(), 100, "{version:?}");
        assert!(ids.iter().all(|id| id % 2 == 0), "{version:?}: {ids:?}");
    }
}

/// SCCRQs that cross over different transports (A over IP, B over UDP) are two control
/// connections, not a collision: no tie-break, both tunnels come up on both sides.
#[test]
fn no_tie_break_across_transports() {
    let now = Timestamp::ZERO;
    let v3 = Version::V3;
    let mut a = Endpoint::new(cfg(v3, "a"), Encap::Udp, seed(1));
    let mut b = Endpoint::new(cfg(v3, "b"), Encap::Udp, seed(2));
    let from = |n, e| match e {
        Encap::Udp => addr(n),
        Encap::Ip => std::net::SocketAddr::new(addr(n).ip(), 0),
    };
    a.connect_via(now, Encap::Ip, from(2, Encap::Ip), cfg(v3, "a"))
        .unwrap();
    b.connect_via(now, Encap::Udp, addr(1), cfg(v3, "b"))
        .unwrap();
    // Both SCCRQs are on their way before either side reads one.
    let (mut to_b, mut to_a) = (Pair::drain(&mut a), Pair::drain(&mut b));
    for _ in 0..10 {
        for t in to_b.drain(..) {
            b.handle_datagram_via(now, t.encap, from(1, t.encap), &t.bytes);
        }
        for t in to_a.drain(..) {
            a.handle_datagram_via(now, t.encap, from(2, t.encap), &t.bytes);
        }
        to_b = Pair::drain(&mut a);
        to_a = Pair::drain(&mut b);
    }
    for (name, ep) in [("a", &mut a), ("b", &mut b)] {
        let ev = events(ep);
        let mut ups: Vec<Encap> = ev
            .iter()
            .filter_map(|e| match e {
                Event::TunnelUp(i) => Some(i.encap),
                _ => None,
            })
            .collect();
        ups.sort_by_key(|&e| e == Encap::Ip);
        assert_eq!(ups, vec![Encap::Udp, Encap::Ip], "{name}: {ev:?}");
        assert_eq!(ep.stats().tie_breaks_won, 0, "{name}");
    }
}
