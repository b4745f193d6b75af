//! RADIUS as a server or a dynamic-authorization client reaches it: packet decoding, every
//! verification (responses, accounting and DAE requests, Access-Requests), attribute
//! look-ups and the decryptions; a packet that decodes re-encodes to one that decodes equal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ul2tp_radius::{dict, hide, packet, Packet};

fuzz_target!(|data: &[u8]| {
    let auth = [0x5a; 16];
    let _ = packet::verify_response(data, b"secret", &auth, true);
    let _ = packet::verify_request(data, b"secret");
    let _ = packet::verify_access_request(data, b"secret");
    let _ = hide::unhide_password(data, b"secret", &auth);
    let _ = hide::decrypt_salted(data, b"secret", &auth);
    if let Ok(p) = Packet::decode(data) {
        let _ = p.get_vendor(dict::vendor::MICROSOFT, dict::ms::CHAP2_SUCCESS);
        let _ = p.get_ipv4(dict::attr::FRAMED_IP_ADDRESS);
        let again = p.encode().expect("a decoded packet encodes");
        assert_eq!(Packet::decode(&again).expect("re-encoded packet decodes"), p);
        let _ = p.encode_response(b"secret", &auth);
        let _ = p.encode_request(b"secret");
    }
});
