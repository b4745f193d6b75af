//! Codec micro-benchmarks for the data path: classification and header parse / emit.
//!
//! `cargo bench -p ul2tp-wire --bench data -- --quick`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use ul2tp_wire::data::{
    classify_ip, classify_udp, DefaultSublayer, L2SpecType, V2DataHeader, V3SessionHeader,
};

fn v3_packet(cookie: &[u8], sublayer: bool) -> Vec<u8> {
    let h = V3SessionHeader {
        session_id: 0x2001,
        cookie,
        sublayer: sublayer.then_some(DefaultSublayer { seq: Some(7) }),
    };
    let mut b = vec![0u8; h.header_len_udp() + 64];
    h.emit_udp(&mut b).expect("emit");
    b
}

fn codecs(c: &mut Criterion) {
    let plain = v3_packet(&[], false);
    let cookie = v3_packet(&[1, 2, 3, 4, 5, 6, 7, 8], true);
    let v2 = {
        let h = V2DataHeader {
            length: Some(80),
            tunnel_id: 1,
            session_id: 2,
            ns_nr: Some((3, 0)),
            offset_size: Some(0),
            priority: false,
        };
        let mut b = vec![0u8; 80];
        h.emit(&mut b).expect("emit");
        b
    };
    let ip = plain[4..].to_vec();
    c.bench_function("classify_udp/v3", |b| {
        b.iter(|| classify_udp(black_box(&plain)))
    });
    c.bench_function("classify_udp/v2", |b| {
        b.iter(|| classify_udp(black_box(&v2)))
    });
    c.bench_function("classify_ip/data", |b| {
        b.iter(|| classify_ip(black_box(&ip)))
    });
    c.bench_function("v3_parse_udp/plain", |b| {
        b.iter(|| V3SessionHeader::parse_udp(black_box(&plain), 0, L2SpecType::None))
    });
    c.bench_function("v3_parse_udp/cookie8_sublayer", |b| {
        b.iter(|| V3SessionHeader::parse_udp(black_box(&cookie), 8, L2SpecType::Default))
    });
    c.bench_function("v2_parse/all_fields", |b| {
        b.iter(|| V2DataHeader::parse(black_box(&v2)))
    });
    let h = V3SessionHeader {
        session_id: 0x2001,
        cookie: &[1, 2, 3, 4, 5, 6, 7, 8],
        sublayer: Some(DefaultSublayer { seq: Some(9) }),
    };
    let mut out = [0u8; 32];
    c.bench_function("v3_emit_udp/cookie8_sublayer", |b| {
        b.iter(|| black_box(&h).emit_udp(black_box(&mut out)))
    });
}

criterion_group!(benches, codecs);
criterion_main!(benches);
