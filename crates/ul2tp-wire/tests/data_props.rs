//! Property tests of the data-path codecs: emit-then-parse is the identity for every header
//! type, and no parser panics on arbitrary bytes.

use proptest::prelude::*;
use ul2tp_wire::data::{
    classify_ip, classify_udp, DefaultSublayer, L2SpecType, V2DataHeader, V3SessionHeader,
};
use ul2tp_wire::ppp;

fn v2_header() -> impl Strategy<Value = V2DataHeader> {
    (
        proptest::option::of(any::<u16>()),
        any::<u16>(),
        any::<u16>(),
        proptest::option::of((any::<u16>(), any::<u16>())),
        proptest::option::of(0u16..64),
        any::<bool>(),
    )
        .prop_map(
            |(length, tunnel_id, session_id, ns_nr, offset_size, priority)| V2DataHeader {
                length,
                tunnel_id,
                session_id,
                ns_nr,
                offset_size,
                priority,
            },
        )
}

fn l2spec() -> impl Strategy<Value = L2SpecType> {
    prop_oneof![Just(L2SpecType::None), Just(L2SpecType::Default)]
}

proptest! {
    #[test]
    fn v2_roundtrip(h in v2_header(), payload in proptest::collection::vec(any::<u8>(), 0..32)) {
        let mut buf = vec![0u8; h.header_len() + payload.len()];
        let n = h.emit(&mut buf).unwrap();
        prop_assert_eq!(n, h.header_len());
        buf[n..].copy_from_slice(&payload);
        let (p, off) = V2DataHeader::parse(&buf).unwrap();
        prop_assert_eq!(p, h);
        prop_assert_eq!(off, n);
        prop_assert_eq!(&buf[off..], &payload[..]);
        prop_assert_eq!(h.emit(&mut buf[..n - 1]), Err(ul2tp_wire::data::WireError::BufferTooSmall));
    }

    #[test]
    fn v3_roundtrip(
        session_id in 1u32..,
        cookie in proptest::collection::vec(any::<u8>(), 0..=8),
        spec in l2spec(),
        seq in proptest::option::of(0u32..=0xff_ffff),
        udp in any::<bool>(),
    ) {
        let h = V3SessionHeader {
            session_id,
            cookie: &cookie,
            sublayer: (spec == L2SpecType::Default).then_some(DefaultSublayer { seq }),
        };
        let mut buf = [0u8; 32];
        let n = if udp { h.emit_udp(&mut buf) } else { h.emit_ip(&mut buf) }.unwrap();
        let (p, off) = if udp {
            V3SessionHeader::parse_udp(&buf[..n], cookie.len(), spec)
        } else {
            V3SessionHeader::parse_ip(&buf[..n], cookie.len(), spec)
        }
        .unwrap();
        prop_assert_eq!(p, h);
        prop_assert_eq!(off, n);
        if udp {
            prop_assert_eq!(classify_udp(&buf[..n.max(14)]), ul2tp_wire::data::UdpClass::DataV3 { session_id, version: 3 });
        } else {
            prop_assert_eq!(classify_ip(&buf[..n]), ul2tp_wire::data::IpClass::Data { session_id });
        }
    }

    #[test]
    fn parsers_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..64),
        cookie_len in 0usize..12,
        spec in l2spec(),
    ) {
        let _ = classify_udp(&bytes);
        let _ = classify_ip(&bytes);
        if let Ok((_, off)) = V2DataHeader::parse(&bytes) {
            prop_assert!(off <= bytes.len());
        }
        if let Ok((h, off)) = V3SessionHeader::parse_udp(&bytes, cookie_len, spec) {
            prop_assert!(off <= bytes.len());
            prop_assert_eq!(h.cookie.len(), cookie_len);
        }
        if let Ok((_, off)) = V3SessionHeader::parse_ip(&bytes, cookie_len, spec) {
            prop_assert!(off <= bytes.len());
        }
        let s = ppp::strip_address_control(&bytes);
        if let Some((_, n)) = ppp::ppp_protocol(s) {
            prop_assert!(n <= s.len());
        }
    }
}
