//! Data-path micro-benchmarks: header encapsulation into headroom and the full receive path
//! (classify, lookup, cookie, sequence logic, delivery) for L2TPv3/UDP Ethernet with and
//! without cookie + sublayer, and L2TPv2 PPP.
//!
//! `cargo bench -p ul2tp-core --bench datapath -- --quick`

use std::hint::black_box;
use std::sync::Arc;
use ul2tp_core::Timestamp;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ul2tp_core::PwType;
use ul2tp_core::{
    Cookie, Encap, L2SpecType, Registry, Session, SessionParams, SocketId, TunnelParams, Version,
};

const HEADROOM: usize = 64;
const FRAME_LEN: usize = 1400;

struct Setup {
    name: &'static str,
    registry: Registry,
    session: Arc<Session>,
}

fn setup(name: &'static str, version: Version, p: SessionParams) -> Setup {
    let registry = Registry::new();
    registry
        .tunnel_create(TunnelParams {
            tunnel_id: 1,
            peer_tunnel_id: 1,
            version,
            encap: Encap::Udp,
            socket: SocketId(1),
        })
        .expect("tunnel");
    let session = registry.session_create(1, p).expect("session");
    Setup {
        name,
        registry,
        session,
    }
}

fn setups() -> Vec<Setup> {
    let mut plain = SessionParams::new(7, 7, PwType::Ethernet);
    plain.l2spec_type = L2SpecType::None;
    let mut cookie = SessionParams::new(7, 7, PwType::Ethernet);
    cookie.cookie = Cookie::new(&[1, 2, 3, 4, 5, 6, 7, 8]).expect("cookie");
    cookie.peer_cookie = cookie.cookie;
    cookie.send_seq = true;
    cookie.lns_mode = true;
    let mut ppp = SessionParams::new(7, 7, PwType::Ppp);
    ppp.send_seq = false;
    vec![
        setup("v3_udp_eth", Version::V3, plain),
        setup("v3_udp_eth_cookie8_seq", Version::V3, cookie),
        setup("v2_ppp", Version::V2, ppp),
    ]
}

fn encap(c: &mut Criterion) {
    let mut g = c.benchmark_group("encap");
    for s in setups() {
        let mut buf = vec![0u8; HEADROOM + FRAME_LEN];
        g.throughput(Throughput::Elements(1));
        g.bench_function(s.name, |b| {
            b.iter(|| {
                let r = s.session.encap(black_box(&mut buf), HEADROOM, FRAME_LEN);
                black_box(r)
            })
        });
    }
    g.finish();
}

fn receive(c: &mut Criterion) {
    let mut g = c.benchmark_group("receive");
    for s in setups() {
        // The peer's packets are our own encapsulation (ids are symmetric in the setup).
        let mut buf = vec![0u8; HEADROOM + FRAME_LEN];
        let (a, e) = s
            .session
            .encap(&mut buf, HEADROOM, FRAME_LEN)
            .expect("encap");
        let mut pkt = buf[a..e].to_vec();
        let seq = s.session.send_seq() && s.session.tunnel().version() == Version::V3;
        let now = Timestamp::from_millis(1);
        let first = s
            .registry
            .receive(SocketId(1), Encap::Udp, &pkt, now, &mut |_, _| {});
        assert_eq!(
            first,
            ul2tp_core::RxOutcome::Consumed,
            "{}: the bench packet must be accepted",
            s.name
        );
        let mut ns: u32 = 1;
        g.throughput(Throughput::Bytes(pkt.len() as u64));
        g.bench_function(s.name, |b| {
            b.iter(|| {
                if seq {
                    // Keep the packets in sequence so that each one is delivered.
                    let word = 0x4000_0000 | (ns & 0x00ff_ffff);
                    pkt[16..20].copy_from_slice(&word.to_be_bytes());
                    ns = ns.wrapping_add(1);
                }
                let mut n = 0usize;
                let o = s.registry.receive(
                    SocketId(1),
                    Encap::Udp,
                    black_box(&pkt),
                    now,
                    &mut |_, f| n += f.len(),
                );
                black_box((o, n))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, encap, receive);
criterion_main!(benches);
