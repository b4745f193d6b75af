//! The control message layer as a peer reaches it: header (v2 and v3, UDP and IP framing),
//! the AVP iterator and every AVP value decoder, hidden AVPs, message validation (mandatory
//! AVPs, reactions), the v3 message digest and the v2 challenge response. A message that
//! parses must re-encode, and the re-encoding must parse to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ul2tp_wire::avp::{AvpIter, MessageType};
use ul2tp_wire::control::{ControlHeader, Encap, Version};
use ul2tp_wire::digest::{self, Nonces};
use ul2tp_wire::message::Message;

const SECRET: &[u8] = b"fuzz-secret";

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let version = if selector & 1 == 0 {
        Version::V2
    } else {
        Version::V3
    };
    let encap = if selector & 2 == 0 {
        Encap::Udp
    } else {
        Encap::Ip
    };
    let secret = (selector & 4 != 0).then_some(SECRET);

    let _ = ControlHeader::parse_any(bytes, encap);
    for avp in AvpIter::new(bytes.get(12..).unwrap_or_default()) {
        let _ = avp;
    }
    if let Ok(m) = Message::parse_encap(bytes, version, encap, secret) {
        let _ = m.result_code();
        if let Ok(again) = m.emit(secret) {
            let m2 = Message::parse_encap(&again, version, encap, secret)
                .expect("a re-encoded message parses");
            assert_eq!(m2.avps.len(), m.avps.len(), "re-encoding changed the AVPs");
            assert_eq!(m2.message_type, m.message_type);
        }
    }
    // Digest and challenge computations take any bytes (from the flags word).
    let body = match encap {
        Encap::Udp => bytes,
        Encap::Ip => bytes.get(4..).unwrap_or_default(),
    };
    let nonces = Nonces {
        sender: bytes.get(..8).unwrap_or_default(),
        receiver: bytes.get(8..16).unwrap_or_default(),
    };
    let _ = digest::verify_message(body, SECRET, Some(nonces));
    let _ = digest::verify_message(body, b"", None);
    let mut copy = body.to_vec();
    let _ = digest::sign_message(&mut copy, SECRET, Some(nonces));
    let _ = digest::verify_challenge_response(MessageType::Sccrp, SECRET, body, body);
});
