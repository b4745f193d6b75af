//! Cost of admitting one SCCRQ with 0 / 10,000 / 40,000 half-open tunnels already held
//! (docs/PERFORMANCE.md, docs/security.md). `cargo bench -p ul2tp-control --bench admission`.

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{criterion_group, criterion_main, Criterion};
use ul2tp_control::sim;
use ul2tp_control::{Config, Encap, Endpoint, Timestamp, Version};

fn src(i: u32) -> SocketAddr {
    let [a, b, c, d] = i.to_be_bytes();
    SocketAddr::from(([10 + a, b, c, d], 1701))
}

fn sccrq() -> Vec<u8> {
    // L2TPv3: 32-bit tunnel ids, so the iterations never exhaust the id space (an L2TPv2
    // endpoint holds at most 65,535 tunnels).
    let v3 = Config {
        version: Version::V3,
        ..Config::default()
    };
    let mut att = Endpoint::new(v3.clone(), Encap::Udp, sim::seed(99));
    let to = SocketAddr::from(([192, 0, 2, 1], 1701));
    att.connect(Timestamp(0), to, v3).unwrap();
    att.poll_transmit().unwrap().bytes
}

fn bench_admission(c: &mut Criterion) {
    let m = sccrq();
    let mut g = c.benchmark_group("sccrq_admission");
    for n in [0u32, 10_000, 40_000] {
        let cfg = Config {
            max_half_open: usize::MAX,
            new_tunnels_per_second_per_peer: 0,
            ..Config::default()
        };
        let mut ep = Endpoint::new(cfg, Encap::Udp, sim::seed(1));
        for i in 0..n {
            ep.handle_datagram(Timestamp(0), src(i), &m);
        }
        while ep.poll_transmit().is_some() {}
        // Every iteration admits a new tunnel from a new source (so the count grows by the
        // iterations, small next to 10k / 40k) and drains the SCCRP.
        let mut i = n;
        g.bench_function(format!("{n}_half_open"), |b| {
            b.iter(|| {
                i += 1;
                ep.handle_datagram(Timestamp(0), src(i), black_box(&m));
                black_box(ep.poll_transmit());
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_admission);
criterion_main!(benches);
