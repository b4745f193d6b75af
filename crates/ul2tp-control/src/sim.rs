//! Deterministic simulation of control engines over a faulty network under a virtual clock.
//!
//! A [`Sim`] holds any number of [`Endpoint`]s, each bound to one address. Datagrams produced
//! by an endpoint enter a seeded network that may drop, duplicate, delay and reorder them
//! ([`NetConfig`]); the simulation advances the virtual clock straight to the next delivery or
//! timer, so minutes of protocol time take microseconds. Every datagram put on the network can
//! be captured to a pcap file with Ethernet/IP/UDP headers ([`Sim::pcap_bytes`],
//! [`Sim::save_pcap_from_env`] when `UL2TP_SIM_PCAP=DIR` is set).
//!
//! The simulation also audits the reliable-delivery rules on the wire: a Nr must never
//! acknowledge a message that its peer has not sent ([`Sim::violations`]).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ul2tp_wire::control::{ControlHeader, Encap};
use ul2tp_wire::pcap::PcapWriter;

use crate::engine::{Endpoint, Event};
use crate::Timestamp;

/// A fixed 32-octet engine seed derived from a number, for tests and simulations that must be
/// reproducible ([`Endpoint::new`] takes 32 octets so that a daemon can seed it fully from the
/// operating system). The expansion is rand's `seed_from_u64` (PCG32), so `seed(n)` gives the
/// generator stream that `StdRng::seed_from_u64(n)` gives.
pub fn seed(n: u64) -> [u8; 32] {
    struct Expanded([u8; 32]);
    impl SeedableRng for Expanded {
        type Seed = [u8; 32];
        fn from_seed(seed: [u8; 32]) -> Expanded {
            Expanded(seed)
        }
    }
    Expanded::seed_from_u64(n).0
}

/// Fault model of the simulated network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetConfig {
    /// Probability a datagram is lost.
    pub loss: f64,
    /// Probability a datagram is delivered twice.
    pub duplicate: f64,
    /// Probability a datagram gets an extra delay (and so is reordered).
    pub reorder: f64,
    /// Base one-way delay.
    pub delay: Duration,
    /// Maximum extra random delay (jitter) for reordered datagrams.
    pub jitter: Duration,
}

impl NetConfig {
    /// A perfect network with 5 ms delay.
    pub fn perfect() -> NetConfig {
        NetConfig {
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            delay: Duration::from_millis(5),
            jitter: Duration::from_millis(0),
        }
    }

    /// A lossy network: `loss` probability of loss plus 5% duplication and 10% reordering.
    pub fn lossy(loss: f64) -> NetConfig {
        NetConfig {
            loss,
            duplicate: 0.05,
            reorder: 0.1,
            delay: Duration::from_millis(5),
            jitter: Duration::from_millis(30),
        }
    }
}

/// One simulated host.
#[derive(Debug)]
pub struct Node {
    /// Its address.
    pub addr: SocketAddr,
    /// Its engine.
    pub ep: Endpoint,
    /// Every event it produced, with the time.
    pub events: Vec<(Timestamp, Event)>,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    at: Timestamp,
    seq: u64,
    to: usize,
    from: SocketAddr,
    bytes: Vec<u8>,
}

/// Key of one direction of one control connection as seen on the wire: (src, dst, tunnel id in
/// the header of messages going the *other* way is not known, so we key by src/dst only).
type Dir = (SocketAddr, SocketAddr, u32);

/// The simulation.
#[derive(Debug)]
pub struct Sim {
    /// Current virtual time.
    pub now: Timestamp,
    /// Hosts.
    pub nodes: Vec<Node>,
    /// Fault model.
    pub net: NetConfig,
    encap: Encap,
    rng: StdRng,
    queue: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    pcap: PcapWriter,
    /// Datagrams put on the network.
    pub sent: u64,
    /// Datagrams dropped by the network.
    pub lost: u64,
    /// Highest Ns + 1 of non-ack messages per (src, dst, receiver tunnel id) — for the audit.
    max_sent: HashMap<Dir, u16>,
    any_sent: HashMap<Dir, bool>,
    violations: Vec<String>,
}

impl Sim {
    /// A new simulation with the given fault model, framing and seed.
    pub fn new(net: NetConfig, encap: Encap, seed: u64) -> Sim {
        Sim {
            now: Timestamp::ZERO,
            nodes: Vec::new(),
            net,
            encap,
            rng: StdRng::seed_from_u64(seed),
            queue: BinaryHeap::new(),
            seq: 0,
            pcap: PcapWriter::new(),
            sent: 0,
            lost: 0,
            max_sent: HashMap::new(),
            any_sent: HashMap::new(),
            violations: Vec::new(),
        }
    }

    /// Add a host; returns its index.
    pub fn add(&mut self, addr: SocketAddr, ep: Endpoint) -> usize {
        self.nodes.push(Node {
            addr,
            ep,
            events: Vec::new(),
        });
        self.nodes.len() - 1
    }

    /// Borrow a host's engine.
    pub fn ep(&mut self, i: usize) -> &mut Endpoint {
        &mut self.nodes[i].ep
    }

    /// Wire-level audit failures found so far (empty when the rules held).
    pub fn violations(&self) -> &[String] {
        &self.violations
    }

    /// The pcap file of everything put on the network so far.
    pub fn pcap_bytes(&self) -> &[u8] {
        self.pcap.as_bytes()
    }

    /// If `UL2TP_SIM_PCAP=DIR` is set, write the capture to `DIR/<name>.pcap`.
    pub fn save_pcap_from_env(&self, name: &str) -> std::io::Result<Option<std::path::PathBuf>> {
        let Some(dir) = std::env::var_os("UL2TP_SIM_PCAP") else {
            return Ok(None);
        };
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.pcap"));
        std::fs::write(&path, self.pcap_bytes())?;
        Ok(Some(path))
    }

    fn audit(&mut self, from: SocketAddr, to: SocketAddr, bytes: &[u8]) {
        let Ok((hdr, _)) = ControlHeader::parse_any(bytes, self.encap) else {
            self.violations
                .push("engine sent a malformed header".into());
            return;
        };
        let pre = self.encap.prefix_len();
        let body = bytes
            .get(pre + 12..pre + usize::from(hdr.length))
            .unwrap_or(&[]);
        let is_ack =
            body.is_empty() || (body.len() >= 8 && body[4..6] == [0, 0] && body[6..8] == [0, 20]);
        // Messages from `from` to `to` carry Ns; we remember the highest per direction. The
        // tunnel id in the header is the receiver's; we key the reverse direction by the
        // sender's id, which we do not know, so the audit is keyed per address pair and tunnel
        // id of the receiver, and the Nr check uses the pair in reverse with any tunnel id.
        let key = (from, to, hdr.tunnel_id);
        if !is_ack {
            let next = hdr.ns.wrapping_add(1);
            let e = self.max_sent.entry(key).or_insert(next);
            if crate::channel::seq_lt(*e, next) {
                *e = next;
            }
            self.any_sent.insert(key, true);
        }
        // Nr check: some direction to->from must have sent Ns >= Nr-1.
        if hdr.nr != 0 {
            let ok = self
                .max_sent
                .iter()
                .any(|(&(s, d, _), &m)| s == to && d == from && !crate::channel::seq_lt(m, hdr.nr));
            if !ok {
                self.violations.push(format!(
                    "{from} acknowledged Nr {} that {to} never sent",
                    hdr.nr
                ));
            }
        }
    }

    fn pump(&mut self) {
        for i in 0..self.nodes.len() {
            while let Some(ev) = self.nodes[i].ep.poll_event() {
                self.nodes[i].events.push((self.now, ev));
            }
            while let Some(tx) = self.nodes[i].ep.poll_transmit() {
                let from = self.nodes[i].addr;
                self.sent += 1;
                match self.encap {
                    Encap::Udp => self.pcap.udp(self.now.as_micros(), from, tx.dst, &tx.bytes),
                    Encap::Ip => {
                        self.pcap
                            .l2tp_ip(self.now.as_micros(), from.ip(), tx.dst.ip(), &tx.bytes)
                    }
                }
                self.audit(from, tx.dst, &tx.bytes);
                let Some(to) = self.nodes.iter().position(|n| match self.encap {
                    Encap::Udp => n.addr == tx.dst,
                    Encap::Ip => n.addr.ip() == tx.dst.ip(),
                }) else {
                    continue;
                };
                if self.rng.random_bool(self.net.loss.clamp(0.0, 1.0)) {
                    self.lost += 1;
                    continue;
                }
                let copies = if self.rng.random_bool(self.net.duplicate.clamp(0.0, 1.0)) {
                    2
                } else {
                    1
                };
                for _ in 0..copies {
                    let mut at = self.now + self.net.delay;
                    if self.rng.random_bool(self.net.reorder.clamp(0.0, 1.0)) {
                        let j = self.net.jitter.as_micros() as u64;
                        at += Duration::from_micros(self.rng.random_range(0..=j));
                    }
                    self.seq += 1;
                    self.queue.push(Reverse(InFlight {
                        at,
                        seq: self.seq,
                        to,
                        from,
                        bytes: tx.bytes.clone(),
                    }));
                }
            }
        }
    }

    /// Run one step: deliver everything due at the next point in time. Returns false when
    /// nothing is pending at all (no datagram in flight, no timer).
    pub fn step(&mut self) -> bool {
        self.pump();
        let next_pkt = self.queue.peek().map(|Reverse(p)| p.at);
        let next_timer = self.nodes.iter().filter_map(|n| n.ep.poll_timeout()).min();
        let Some(t) = [next_pkt, next_timer].into_iter().flatten().min() else {
            return false;
        };
        self.now = self.now.max(t);
        while let Some(Reverse(p)) = self.queue.peek() {
            if p.at > self.now {
                break;
            }
            let Some(Reverse(p)) = self.queue.pop() else {
                break;
            };
            let now = self.now;
            self.nodes[p.to].ep.handle_datagram(now, p.from, &p.bytes);
            self.pump();
        }
        for i in 0..self.nodes.len() {
            if self.nodes[i]
                .ep
                .poll_timeout()
                .is_some_and(|d| d <= self.now)
            {
                let now = self.now;
                self.nodes[i].ep.handle_timeout(now);
            }
        }
        self.pump();
        true
    }

    /// The earliest pending packet delivery or engine timer.
    fn next_due(&self) -> Option<Timestamp> {
        let next_pkt = self.queue.peek().map(|Reverse(p)| p.at);
        let next_timer = self.nodes.iter().filter_map(|n| n.ep.poll_timeout()).min();
        next_pkt.into_iter().chain(next_timer).min()
    }

    /// Run until `until` (virtual time) or until nothing is pending.
    pub fn run_until(&mut self, until: Timestamp) {
        loop {
            self.pump();
            match self.next_due() {
                Some(t) if t <= until => {
                    self.step();
                }
                _ => break,
            }
        }
        self.now = self.now.max(until);
    }

    /// Run for a span of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    /// Run until `pred` holds (checked after each step) or `limit` of virtual time passes.
    /// Returns whether `pred` held.
    pub fn run_while_not(&mut self, limit: Duration, mut pred: impl FnMut(&Sim) -> bool) -> bool {
        let until = self.now + limit;
        loop {
            self.pump();
            if pred(self) {
                return true;
            }
            match self.next_due() {
                Some(t) if t <= until => {
                    self.step();
                }
                _ => return pred(self),
            }
        }
    }

    /// Count events of a node matching a predicate.
    pub fn count(&self, node: usize, f: impl Fn(&Event) -> bool) -> usize {
        self.nodes[node].events.iter().filter(|(_, e)| f(e)).count()
    }
}

#[cfg(test)]
mod tests {
    use super::seed;
    use rand::rngs::StdRng;
    use rand::{RngCore, SeedableRng};

    #[test]
    fn seed_expands_like_seed_from_u64() {
        for n in [0u64, 1, 7, u64::MAX] {
            let mut a = StdRng::from_seed(seed(n));
            let mut b = StdRng::seed_from_u64(n);
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(seed(1), seed(2));
    }
}
