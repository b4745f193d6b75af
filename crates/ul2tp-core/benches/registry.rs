//! Control-side cost of the registry: one session create + delete in a registry that already
//! holds N sessions (L2TPv2 PPP, spread over 10 tunnels, and L2TPv3 Ethernet with interface
//! names). The N = 100 case is the reference: the time should not grow with N
//! (docs/PERFORMANCE.md, "Session tables").
//!
//! `cargo bench -p ul2tp-core --bench registry -- --quick`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ul2tp_core::{Encap, PwType, Registry, SessionParams, SocketId, TunnelParams, Version};

const TUNNELS: u32 = 10;

fn filled(version: Version, n: u32) -> Registry {
    let r = Registry::new();
    for t in 1..=TUNNELS {
        r.tunnel_create(TunnelParams {
            tunnel_id: t,
            peer_tunnel_id: t,
            version,
            encap: Encap::Udp,
            // A socket per tunnel: L2TPv3 session ids may then repeat between tunnels.
            socket: SocketId(u64::from(t)),
        })
        .expect("tunnel");
    }
    for i in 0..n {
        r.session_create(1 + i % TUNNELS, params(version, 1 + i / TUNNELS, i))
            .expect("session");
    }
    r
}

/// Session `sid`; an Ethernet one gets the interface name `l2tpeth{unit}`.
fn params(version: Version, sid: u32, unit: u32) -> SessionParams {
    match version {
        Version::V2 => SessionParams::new(sid, sid, PwType::Ppp),
        Version::V3 => {
            let mut p = SessionParams::new(sid, sid, PwType::Ethernet);
            p.ifname = Some(format!("l2tpeth{unit}"));
            p
        }
    }
}

fn create_delete(c: &mut Criterion) {
    let mut g = c.benchmark_group("session_create_delete");
    for (name, version) in [("v2_ppp", Version::V2), ("v3_eth", Version::V3)] {
        for n in [100u32, 10_000, 60_000] {
            let r = filled(version, n);
            // One tunnel past the filled ones' ids keeps v2 ids 16-bit and v3 ids unique.
            let sid = 65_000;
            g.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter(|| {
                    let s = r
                        .session_create(1, params(version, black_box(sid), 1_000_000))
                        .expect("create");
                    r.session_delete(1, s.session_id()).expect("delete");
                })
            });
        }
    }
    g.finish();
}

/// One receive-path lookup (clone of the `Arc` included) in a table of 10,000 sessions: the
/// sharded map the registry uses now against the snapshot (`ArcSwap<HashMap>`, SipHash) it
/// used before, on the same machine and run.
fn lookup(c: &mut Criterion) {
    use std::collections::HashMap;
    use std::sync::Arc;
    use ul2tp_core::sharded::ShardedMap;
    let mut g = c.benchmark_group("lookup_10000");
    let sharded: ShardedMap<u32, Arc<u32>> = ShardedMap::new();
    let mut plain = HashMap::new();
    for k in 0..10_000u32 {
        let key = k.wrapping_mul(2_654_435_761);
        sharded.insert(key, Arc::new(k));
        plain.insert(key, Arc::new(k));
    }
    let snapshot = arc_swap::ArcSwap::from_pointee(plain);
    let key = 1234u32.wrapping_mul(2_654_435_761);
    g.bench_function("sharded", |b| b.iter(|| sharded.get(black_box(&key))));
    g.bench_function("arcswap_snapshot", |b| {
        b.iter(|| snapshot.load().get(black_box(&key)).cloned())
    });
    g.finish();
}

criterion_group!(benches, create_delete, lookup);
criterion_main!(benches);
