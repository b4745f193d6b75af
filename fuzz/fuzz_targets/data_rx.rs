//! The data path's receive side: classification, session lookup, cookie, sublayer, sequence
//! numbers and the reorder queue, on a registry holding v2, v3/UDP and v3/IP sessions with
//! every option a peer can exercise. Input: a sequence of datagrams with the socket they
//! arrive on and the time since the previous one.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ul2tp_core::{Encap, SocketId};

#[derive(Debug, Arbitrary)]
struct Datagram {
    socket: u8,
    udp: bool,
    after_ms: u8,
    bytes: Vec<u8>,
}

fuzz_target!(|input: Vec<Datagram>| {
    let r = ul2tp_fuzz::busy_registry();
    let mut now = ul2tp_core::Timestamp::from_millis(1);
    let mut received = 0u64;
    for d in input.iter().take(256) {
        now += std::time::Duration::from_millis(u64::from(d.after_ms));
        let t = if d.udp { Encap::Udp } else { Encap::Ip };
        received += 1;
        let _ = r.receive(
            SocketId(u64::from(d.socket % 4)),
            t,
            &d.bytes,
            now,
            &mut |_, f| {
                assert!(f.len() <= d.bytes.len(), "delivered more than arrived");
            },
        );
    }
    for s in r.sessions() {
        s.poll_reorder(now + std::time::Duration::from_secs(5), &mut |_, _| {});
    }
    // A datagram is delivered once or discarded once (docs/reference/kernel.md §3.1), so the
    // sessions can never have seen more than arrived.
    let rx: u64 = r
        .sessions()
        .iter()
        .map(|s| s.stats().rx_packets + s.stats().rx_errors)
        .sum();
    assert!(
        rx <= received,
        "{rx} session receive events for {received} datagrams"
    );
});
