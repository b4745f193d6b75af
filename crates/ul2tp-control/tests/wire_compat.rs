//! Cross-check against the shared wire layer (`ul2tp_wire::message`, `ul2tp_wire::digest`),
//! an independent implementation of the same RFC tables: every message the engine puts on the
//! wire must parse there without any RFC reaction (so it carries every AVP RFC 2661 §6 /
//! RFC 3931 §6 requires), hidden AVPs must reveal with the shared secret, and v3 digests must
//! verify with the nonces taken from the SCCRQ/SCCRP.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use ul2tp_control::sim::NetConfig;
use ul2tp_control::{CallType, CdnResult, Encap, SessionConfig, StopCcnResult, Version};
use ul2tp_wire::avp::MessageType;
use ul2tp_wire::digest::{verify_message, Nonces};
use ul2tp_wire::message::Message;

const SECRET: &[u8] = b"compat";

fn run(version: Version, encap: Encap, call: CallType, seed: u64) {
    let mut a = cfg(version, "a");
    let mut b = cfg(version, "b");
    for c in [&mut a, &mut b] {
        c.secret = Some(SECRET.to_vec());
        c.hide_avps = true;
        c.send_challenge = true;
    }
    let mut sim = pair(NetConfig::lossy(0.1), encap, seed, a.clone(), b);
    let scfg = SessionConfig {
        call,
        recv_seq: true,
        remote_end_id: b"pw-1".to_vec(),
        ..SessionConfig::default()
    };
    let (tid, sids) = establish(&mut sim, a, 10, &scfg, Duration::from_secs(600));
    let now = sim.now;
    sim.ep(A)
        .set_link_info(now, tid, sids[1], 1, (0, 0))
        .unwrap();
    sim.ep(A)
        .wan_error_notify(now, tid, sids[2], [0; 6])
        .unwrap();
    sim.ep(A)
        .close_session(now, tid, sids[0], CdnResult::Administrative)
        .unwrap();
    sim.run_for(Duration::from_secs(70));
    let now = sim.now;
    sim.ep(A)
        .close_tunnel(now, tid, StopCcnResult::GeneralRequest)
        .unwrap();
    sim.run_for(Duration::from_secs(40));

    let frames: Vec<(std::net::IpAddr, Vec<u8>)> = ul2tp_wire::pcap::records(sim.pcap_bytes())
        .unwrap()
        .map(|r| {
            let d = ul2tp_wire::pcap::extract(r.unwrap().frame).unwrap();
            (d.src.ip(), d.payload.to_vec())
        })
        .collect();
    let mut types = HashSet::new();
    let mut nonce_a: Option<Vec<u8>> = None;
    let mut nonce_b: Option<Vec<u8>> = None;
    let mut parsed = Vec::new();
    for (src, bytes) in &frames {
        let m = Message::parse_encap(bytes, version, encap, Some(SECRET))
            .unwrap_or_else(|e| panic!("wire layer rejects our message: {e:?}"));
        if let Some(t) = m.message_type {
            types.insert(t);
            if t == MessageType::Sccrq {
                nonce_a = m.nonce().map(<[u8]>::to_vec);
            }
            if t == MessageType::Sccrp {
                nonce_b = m.nonce().map(<[u8]>::to_vec);
            }
        }
        assert!(m.ignored.is_empty(), "{:?}", m.ignored);
        parsed.push((*src, m));
    }
    if version == Version::V3 {
        let (na, nb) = (nonce_a.unwrap(), nonce_b.unwrap());
        for ((src, bytes), (_, m)) in frames.iter().zip(&parsed) {
            let msg = &bytes[encap.prefix_len()..];
            let nonces = if m.message_type == Some(MessageType::Sccrq) {
                None
            } else if *src == addr(1).ip() {
                Some(Nonces {
                    sender: &na,
                    receiver: &nb,
                })
            } else {
                Some(Nonces {
                    sender: &nb,
                    receiver: &na,
                })
            };
            verify_message(msg, SECRET, nonces).unwrap_or_else(|e| {
                panic!("digest of {:?} does not verify: {e:?}", m.message_type)
            });
        }
    }
    let want: &[MessageType] = match call {
        CallType::Incoming => &[MessageType::Icrq, MessageType::Icrp, MessageType::Iccn],
        CallType::Outgoing => &[MessageType::Ocrq, MessageType::Ocrp, MessageType::Occn],
    };
    for t in want.iter().chain(&[
        MessageType::Sccrq,
        MessageType::Sccrp,
        MessageType::Scccn,
        MessageType::StopCcn,
        MessageType::Hello,
        MessageType::Cdn,
        MessageType::Sli,
        MessageType::Wen,
    ]) {
        assert!(types.contains(t), "{t:?} missing from {types:?}");
    }
}

#[test]
fn v2_messages_parse_in_wire_layer() {
    run(Version::V2, Encap::Udp, CallType::Incoming, 81);
    run(Version::V2, Encap::Udp, CallType::Outgoing, 82);
}

#[test]
fn v3_messages_parse_and_verify_in_wire_layer() {
    run(Version::V3, Encap::Udp, CallType::Incoming, 83);
    run(Version::V3, Encap::Ip, CallType::Outgoing, 84);
}
