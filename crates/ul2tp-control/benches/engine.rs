//! Benchmarks: control messages handled per second by one engine, and sessions established per
//! second in simulation.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ul2tp_control::sim::{self, NetConfig, Sim};
use ul2tp_control::{Config, Encap, Endpoint, Event, SessionConfig, Timestamp, Version};
use ul2tp_wire::avp::MessageType;
use ul2tp_wire::message::MessageBuilder;

const MSGS: usize = 1000;

fn addr(i: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, i], 1701))
}

fn cfg(version: Version, secret: bool) -> Config {
    Config {
        version,
        secret: secret.then(|| b"bench".to_vec()),
        ..Config::default()
    }
}

/// Two engines on a perfect network, node 0 connecting to node 1; returns the tunnel id at 0.
fn connecting_pair(version: Version, secret: bool, seed: u64) -> (Sim, u32) {
    let mut sim = Sim::new(NetConfig::perfect(), Encap::Udp, seed);
    sim.add(
        addr(1),
        Endpoint::new(cfg(version, secret), Encap::Udp, sim::seed(1)),
    );
    sim.add(
        addr(2),
        Endpoint::new(cfg(version, secret), Encap::Udp, sim::seed(2)),
    );
    let now = sim.now;
    let t = sim
        .ep(0)
        .connect(now, addr(2), cfg(version, secret))
        .unwrap();
    (sim, t)
}

/// An established pair; returns B's endpoint, B's tunnel id and the state needed to forge
/// in-sequence HELLOs from A (only unauthenticated tunnels: a forged message has no digest).
fn established(version: Version) -> (Endpoint, u32, u16, u16) {
    let (mut sim, ta) = connecting_pair(version, false, 1);
    sim.run_for(Duration::from_secs(2));
    let sa = sim.ep(0).tunnel_stats(ta).unwrap();
    let nodes = std::mem::take(&mut sim.nodes);
    let mut it = nodes.into_iter();
    let _a = it.next().unwrap();
    let b = it.next().unwrap().ep;
    let tb = b.tunnel_ids()[0];
    let sb = b.tunnel_stats(tb).unwrap();
    (b, tb, sa.next_ns, sb.next_ns)
}

fn hellos(version: Version, tb: u32, first_ns: u16, nr: u16) -> Vec<Vec<u8>> {
    (0..MSGS)
        .map(|i| {
            let mut m = MessageBuilder::new(version, Encap::Udp, tb, 0, MessageType::Hello)
                .finish()
                .unwrap();
            ul2tp_wire::control::set_ns_nr(&mut m, first_ns.wrapping_add(i as u16), nr).unwrap();
            m
        })
        .collect()
}

fn bench_messages(c: &mut Criterion) {
    let mut g = c.benchmark_group("control_messages");
    g.throughput(Throughput::Elements(MSGS as u64));
    for version in [Version::V2, Version::V3] {
        g.bench_function(format!("{version:?}_hello_in_order"), |bch| {
            bch.iter_batched(
                || {
                    let (b, tb, ns, nr) = established(version);
                    let msgs = hellos(version, tb, ns, nr);
                    let before = b.tunnel_stats(tb).unwrap().channel.delivered;
                    (b, msgs, tb, before)
                },
                |(mut b, msgs, tb, before)| {
                    let mut now = Timestamp::from_micros(10_000_000);
                    for m in &msgs {
                        b.handle_datagram(now, addr(1), m);
                        now += Duration::from_micros(10);
                        b.handle_timeout(now);
                        while let Some(t) = b.poll_transmit() {
                            black_box(t);
                        }
                    }
                    // Every HELLO was delivered in order (the benchmark measures real work).
                    let after = b.tunnel_stats(tb).unwrap().channel.delivered;
                    assert_eq!(after - before, MSGS as u64);
                    b
                },
                BatchSize::LargeInput,
            );
        });
    }
    g.finish();
}

fn bench_sessions(c: &mut Criterion) {
    let mut g = c.benchmark_group("sessions_established");
    g.sample_size(10);
    const N: usize = 1000;
    g.throughput(Throughput::Elements(N as u64));
    for (version, secret) in [
        (Version::V2, false),
        (Version::V3, false),
        (Version::V3, true),
    ] {
        let name = format!(
            "{version:?}{}_{N}_sessions_sim",
            if secret { "_auth" } else { "" }
        );
        g.bench_function(name, |bch| {
            bch.iter(|| {
                let (mut sim, t) = connecting_pair(version, secret, 7);
                let now = sim.now;
                for _ in 0..N {
                    sim.ep(0)
                        .open_session(now, t, SessionConfig::default())
                        .unwrap();
                }
                let ok = sim.run_while_not(Duration::from_secs(3600), |s| {
                    s.count(1, |e| matches!(e, Event::SessionUp(_))) == N
                });
                assert!(ok);
                sim
            });
        });
    }
    g.finish();
}

criterion_group!(benches, bench_messages, bench_sessions);
criterion_main!(benches);
