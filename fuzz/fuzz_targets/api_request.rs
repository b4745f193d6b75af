//! The management API as a local user reaches it: request lines (JSON), the messages on
//! session and L2TP/IP descriptors, and the statistics blob of PPPIOCGL2TPSTATS. A request
//! that decodes must encode and decode to the same request. (The request handlers
//! themselves are fuzzed against a live embedded daemon by crates/ul2tp-it/tests/api_fuzz.rs,
//! which needs network namespaces.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use ul2tp_api::sockproto::{IocStats, SockMsg};
use ul2tp_api::{decode_line, encode_line, parse_cookie_hex, Request};

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = decode_line::<Request>(data) {
        let line = encode_line(&req);
        let again: Request = decode_line(&line).expect("an encoded request decodes");
        assert_eq!(again, req);
    }
    if let Some(m) = SockMsg::decode(data) {
        assert_eq!(SockMsg::decode(&m.encode()), Some(m));
    }
    let _ = IocStats::from_bytes(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = parse_cookie_hex(s);
    }
});
