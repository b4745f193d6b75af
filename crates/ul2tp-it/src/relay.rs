//! A fault-injecting UDP relay for end-to-end tests of sequencing and reordering.
//!
//! # Design
//! The `ul2tp-relay` binary (src/bin/ul2tp-relay.rs) runs in a middle namespace between two
//! daemons. It owns two UDP sockets: datagrams that A's daemon sends to `LISTEN_A` are
//! forwarded from `LISTEN_B` to B's daemon, and the reverse, so each daemon's connected UDP
//! socket sees packets from exactly the address it is connected to. The relay terminates UDP;
//! the middle namespace needs no IP forwarding.
//!
//! The decisions live here, in [`Fault`](crate::relay::Fault), one per direction, without
//! sockets: a datagram goes in with the current time, what must be sent now comes out, and
//! [`Fault::poll`](crate::relay::Fault::poll) releases what a timer frees (delay, held packets
//! that waited too long). Every decision comes from a seeded PRNG
//! ([`SplitMix64`](crate::relay::SplitMix64)) and the index of the data datagram in its
//! direction, never from the clock, so a given seed and traffic give the same faults on every
//! run. Data messages (T bit 0x80 clear in the first byte, docs/reference/kernel.md §1.2) are
//! faulted by the `drop` / `dup` / `reorder` / `delay` settings; control messages by their own
//! `ctl_*` settings (all off by default, so control passes untouched unless asked), with a PRNG
//! stream of their own: turning control faults on does not change the schedule of the data
//! messages, and the `i`-th control message of a direction meets the same fate on every run.
//!
//! Control faults for the `i`-th control message of a direction: drop (probability
//! `ctl_drop`), duplicate (`ctl_dup`: two copies), hold (`ctl_reorder`: released after the
//! next `reorder_gap` forwarded control messages, or after `hold_max`), then the constant
//! `ctl_delay` (FIFO among control messages).
//!
//! Fault order for the `i`-th data datagram of a direction (1-based):
//! 1. drop (`drop_at` contains `i`, or a random draw with probability `drop` once `i >
//!    pass_first`);
//! 2. duplicate (`dup_at` or probability `dup`): two copies are sent back to back;
//! 3. hold (`swap_at`: release after the next 1 forwarded data datagram; probability
//!    `reorder`: after the next `reorder_gap`); a held datagram that finds no followers is
//!    released after `hold_max`;
//! 4. delay: everything forwarded is sent `delay` later (FIFO, so delay alone never reorders).
//!
//! The harness side is [`Relay`](crate::relay::Relay): it spawns the binary in a namespace,
//! waits until it has bound its sockets, reads its statistics file
//! ([`RelayStats`](crate::relay::RelayStats)) and kills it by PID on drop.

use std::collections::{BTreeSet, VecDeque};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::{bin, unique, Netns};

/// A small, seeded PRNG (SplitMix64, Steele/Lea/Flood 2014): deterministic per seed.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True with probability `p` (0.0 ⇒ never, 1.0 ⇒ always); always consumes one draw.
    pub fn chance(&mut self, p: f64) -> bool {
        // 53 random bits as a fraction in [0, 1).
        let x = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        x < p
    }
}

/// The fault schedule of one direction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultConfig {
    /// PRNG seed.
    pub seed: u64,
    /// Probability of dropping a data datagram.
    pub drop: f64,
    /// Probability of duplicating a data datagram.
    pub dup: f64,
    /// Probability of holding a data datagram back (reordering).
    pub reorder: f64,
    /// How many forwarded data datagrams overtake a randomly held one (at least 1).
    pub reorder_gap: u32,
    /// Constant extra delay for every forwarded data datagram.
    pub delay: Duration,
    /// The first N data datagrams are never faulted at random (scripted faults still apply).
    pub pass_first: u64,
    /// Scripted: drop these data datagrams (1-based indices).
    pub drop_at: BTreeSet<u64>,
    /// Scripted: duplicate these.
    pub dup_at: BTreeSet<u64>,
    /// Scripted: swap datagram N with the next forwarded one.
    pub swap_at: BTreeSet<u64>,
    /// A held datagram is released after this long even without followers.
    pub hold_max: Duration,
    /// Probability of dropping a control message.
    pub ctl_drop: f64,
    /// Probability of duplicating a control message.
    pub ctl_dup: f64,
    /// Probability of holding a control message back (reordering among control messages).
    pub ctl_reorder: f64,
    /// Constant extra delay of every forwarded control message.
    pub ctl_delay: Duration,
}

impl FaultConfig {
    /// A configuration without faults (everything forwarded at once).
    pub fn none(seed: u64) -> Self {
        FaultConfig {
            seed,
            reorder_gap: 1,
            hold_max: Duration::from_millis(1000),
            ..Default::default()
        }
    }

    /// Whether any fault can happen at all.
    pub fn is_clean(&self) -> bool {
        self.drop <= 0.0
            && self.dup <= 0.0
            && self.reorder <= 0.0
            && self.delay.is_zero()
            && self.drop_at.is_empty()
            && self.dup_at.is_empty()
            && self.swap_at.is_empty()
            && self.ctl_drop <= 0.0
            && self.ctl_dup <= 0.0
            && self.ctl_reorder <= 0.0
            && self.ctl_delay.is_zero()
    }
}

/// Counters of one direction, as written to the statistics file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirStats {
    /// Datagrams received from the configured peer (data and control).
    pub received: u64,
    /// Of those, control messages (T bit set), forwarded untouched.
    pub control: u64,
    /// Data datagrams received (the index space of the scripted faults).
    pub data: u64,
    /// Data datagrams dropped.
    pub dropped: u64,
    /// Data datagrams duplicated (each adds one extra sent copy).
    pub duplicated: u64,
    /// Data datagrams held back for reordering.
    pub held: u64,
    /// Held datagrams released by `hold_max` instead of by followers.
    pub flushed: u64,
    /// Datagrams sent to the other peer (data copies and control).
    pub sent: u64,
    /// Data datagrams sent (copies included).
    pub data_sent: u64,
    /// Datagrams from an unexpected source address, ignored.
    pub foreign: u64,
    /// Send errors.
    pub send_errors: u64,
    /// Control messages dropped.
    pub ctl_dropped: u64,
    /// Control messages duplicated.
    pub ctl_duplicated: u64,
    /// Control messages held back for reordering.
    pub ctl_held: u64,
}

impl DirStats {
    fn to_json(self) -> serde_json::Value {
        serde_json::json!({
            "received": self.received,
            "control": self.control,
            "data": self.data,
            "dropped": self.dropped,
            "duplicated": self.duplicated,
            "held": self.held,
            "flushed": self.flushed,
            "sent": self.sent,
            "data_sent": self.data_sent,
            "foreign": self.foreign,
            "send_errors": self.send_errors,
            "ctl_dropped": self.ctl_dropped,
            "ctl_duplicated": self.ctl_duplicated,
            "ctl_held": self.ctl_held,
        })
    }

    fn from_json(v: &serde_json::Value) -> Option<Self> {
        let g = |k: &str| v.get(k).and_then(serde_json::Value::as_u64);
        Some(DirStats {
            received: g("received")?,
            control: g("control")?,
            data: g("data")?,
            dropped: g("dropped")?,
            duplicated: g("duplicated")?,
            held: g("held")?,
            flushed: g("flushed")?,
            sent: g("sent")?,
            data_sent: g("data_sent")?,
            foreign: g("foreign")?,
            send_errors: g("send_errors")?,
            ctl_dropped: g("ctl_dropped").unwrap_or(0),
            ctl_duplicated: g("ctl_duplicated").unwrap_or(0),
            ctl_held: g("ctl_held").unwrap_or(0),
        })
    }
}

/// Counters of both directions: `ab` is A's daemon to B's, `ba` the reverse.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// A → B.
    pub ab: DirStats,
    /// B → A.
    pub ba: DirStats,
}

impl RelayStats {
    /// Serialise as the statistics file's JSON text.
    pub fn to_json_string(&self) -> String {
        serde_json::json!({ "ab": self.ab.to_json(), "ba": self.ba.to_json() }).to_string()
    }

    /// Parse the statistics file's JSON text; `None` if malformed.
    pub fn parse(text: &str) -> Option<Self> {
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        Some(RelayStats {
            ab: DirStats::from_json(v.get("ab")?)?,
            ba: DirStats::from_json(v.get("ba")?)?,
        })
    }
}

/// The PRNG seed of one direction (`ab`: A to B) derived from the relay's `--seed`, so the
/// two directions draw independent streams.
pub fn direction_seed(seed: u64, ab: bool) -> u64 {
    if ab {
        seed ^ 0xA5A5_0000_0000_00AB
    } else {
        seed ^ 0x5A5A_0000_0000_00BA
    }
}

/// Whether a UDP payload is an L2TP control message (T bit set, docs/reference/kernel.md §1.2).
pub fn is_control(payload: &[u8]) -> bool {
    payload.first().is_some_and(|b| b & 0x80 != 0)
}

/// Remove the datagrams of `held` whose deadline is past at `now`; returns them in the
/// order they were held.
fn take_expired(held: &mut Vec<Held>, now: Instant) -> Vec<Vec<u8>> {
    let mut expired = Vec::new();
    held.retain_mut(|h| {
        if now >= h.deadline {
            expired.push(std::mem::take(&mut h.bytes));
            false
        } else {
            true
        }
    });
    expired
}

/// One datagram was forwarded past every one in `held`: count that down; remove and return
/// (in the order they were held) those that have now been overtaken enough.
fn take_overtaken(held: &mut Vec<Held>) -> Vec<Vec<u8>> {
    let mut released = Vec::new();
    held.retain_mut(|h| {
        h.remaining = h.remaining.saturating_sub(1);
        if h.remaining == 0 {
            released.push(std::mem::take(&mut h.bytes));
            false
        } else {
            true
        }
    });
    released
}

#[derive(Debug)]
struct Held {
    /// Forwarded data datagrams still to overtake it.
    remaining: u32,
    /// Released at this time at the latest.
    deadline: Instant,
    bytes: Vec<u8>,
}

/// The fault engine of one direction: no sockets, time is a parameter.
#[derive(Debug)]
pub struct Fault {
    cfg: FaultConfig,
    rng: SplitMix64,
    held: Vec<Held>,
    delayed: VecDeque<(Instant, Vec<u8>)>,
    /// The control messages' PRNG, held and delayed messages.
    ctl_rng: SplitMix64,
    ctl_held: Vec<Held>,
    ctl_delayed: VecDeque<(Instant, Vec<u8>)>,
    /// Counters so far.
    pub stats: DirStats,
}

impl Fault {
    /// An engine for `cfg`.
    pub fn new(cfg: FaultConfig) -> Self {
        let rng = SplitMix64::new(cfg.seed);
        let ctl_rng = SplitMix64::new(cfg.seed ^ 0xC0C0_C0C0_C0C0_C0C0);
        Fault {
            cfg,
            rng,
            held: Vec::new(),
            delayed: VecDeque::new(),
            ctl_rng,
            ctl_held: Vec::new(),
            ctl_delayed: VecDeque::new(),
            stats: DirStats::default(),
        }
    }

    /// Take in one datagram received from the peer at `now`; returns the datagrams to send now,
    /// in order.
    pub fn input(&mut self, now: Instant, bytes: &[u8]) -> Vec<Vec<u8>> {
        self.stats.received += 1;
        let mut out = Vec::new();
        if is_control(bytes) {
            self.stats.control += 1;
            self.control_input(now, bytes, &mut out);
            self.poll_into(now, &mut out);
            return out;
        }
        self.stats.data += 1;
        let i = self.stats.data;
        let random = i > self.cfg.pass_first;
        // Draw all three decisions every time so that one fault's outcome does not shift the
        // random stream of the others: the schedule depends on the seed and the index only.
        let r_drop = self.rng.chance(self.cfg.drop);
        let r_dup = self.rng.chance(self.cfg.dup);
        let r_hold = self.rng.chance(self.cfg.reorder);
        if self.cfg.drop_at.contains(&i) || (random && r_drop) {
            self.stats.dropped += 1;
            self.poll_into(now, &mut out);
            return out;
        }
        let copies = if self.cfg.dup_at.contains(&i) || (random && r_dup) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        let hold_gap = if self.cfg.swap_at.contains(&i) {
            Some(1)
        } else if random && r_hold {
            Some(self.cfg.reorder_gap.max(1))
        } else {
            None
        };
        if let Some(gap) = hold_gap {
            self.stats.held += 1;
            for _ in 0..copies {
                self.held.push(Held {
                    remaining: gap,
                    deadline: now + self.cfg.hold_max,
                    bytes: bytes.to_vec(),
                });
            }
        } else {
            for _ in 0..copies {
                self.forward(now, bytes.to_vec(), &mut out);
            }
            // This datagram overtook every held one.
            for b in take_overtaken(&mut self.held) {
                self.forward(now, b, &mut out);
            }
        }
        self.poll_into(now, &mut out);
        out
    }

    /// One control message: its own faults, from its own random stream.
    fn control_input(&mut self, now: Instant, bytes: &[u8], out: &mut Vec<Vec<u8>>) {
        let r_drop = self.ctl_rng.chance(self.cfg.ctl_drop);
        let r_dup = self.ctl_rng.chance(self.cfg.ctl_dup);
        let r_hold = self.ctl_rng.chance(self.cfg.ctl_reorder);
        if r_drop {
            self.stats.ctl_dropped += 1;
            return;
        }
        let copies = if r_dup {
            self.stats.ctl_duplicated += 1;
            2
        } else {
            1
        };
        if r_hold {
            self.stats.ctl_held += 1;
            for _ in 0..copies {
                self.ctl_held.push(Held {
                    remaining: self.cfg.reorder_gap.max(1),
                    deadline: now + self.cfg.hold_max,
                    bytes: bytes.to_vec(),
                });
            }
            return;
        }
        for _ in 0..copies {
            self.forward_ctl(now, bytes.to_vec(), out);
        }
        for b in take_overtaken(&mut self.ctl_held) {
            self.forward_ctl(now, b, out);
        }
    }

    fn forward_ctl(&mut self, now: Instant, bytes: Vec<u8>, out: &mut Vec<Vec<u8>>) {
        if self.cfg.ctl_delay.is_zero() {
            self.stats.sent += 1;
            out.push(bytes);
        } else {
            self.ctl_delayed
                .push_back((now + self.cfg.ctl_delay, bytes));
        }
    }

    fn forward(&mut self, now: Instant, bytes: Vec<u8>, out: &mut Vec<Vec<u8>>) {
        if self.cfg.delay.is_zero() {
            self.stats.sent += 1;
            self.stats.data_sent += 1;
            out.push(bytes);
        } else {
            self.delayed.push_back((now + self.cfg.delay, bytes));
        }
    }

    fn poll_into(&mut self, now: Instant, out: &mut Vec<Vec<u8>>) {
        for b in take_expired(&mut self.held, now) {
            self.stats.flushed += 1;
            self.forward(now, b, out);
        }
        while self.delayed.front().is_some_and(|(t, _)| now >= *t) {
            if let Some((_, b)) = self.delayed.pop_front() {
                self.stats.sent += 1;
                self.stats.data_sent += 1;
                out.push(b);
            }
        }
        for b in take_expired(&mut self.ctl_held, now) {
            self.stats.flushed += 1;
            self.forward_ctl(now, b, out);
        }
        while self.ctl_delayed.front().is_some_and(|(t, _)| now >= *t) {
            if let Some((_, b)) = self.ctl_delayed.pop_front() {
                self.stats.sent += 1;
                out.push(b);
            }
        }
    }

    /// Timer step: release held datagrams past `hold_max` and delayed ones that are due.
    pub fn poll(&mut self, now: Instant) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        self.poll_into(now, &mut out);
        out
    }

    /// When [`Fault::poll`] next has something to do.
    pub fn next_timeout(&self) -> Option<Instant> {
        [
            self.held.iter().map(|h| h.deadline).min(),
            self.delayed.front().map(|(t, _)| *t),
            self.ctl_held.iter().map(|h| h.deadline).min(),
            self.ctl_delayed.front().map(|(t, _)| *t),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

/// Parse a comma-separated list of 1-based indices (`"3,7,10"`).
pub fn parse_indices(s: &str) -> Result<BTreeSet<u64>, String> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            p.trim()
                .parse::<u64>()
                .map_err(|e| format!("bad index {p:?}: {e}"))
                .and_then(|n| {
                    if n == 0 {
                        Err("indices start at 1".to_string())
                    } else {
                        Ok(n)
                    }
                })
        })
        .collect()
}

/// A running `ul2tp-relay` in a namespace, killed by PID on drop.
#[derive(Debug)]
pub struct Relay {
    child: Child,
    /// Its statistics file (JSON, rewritten after every datagram).
    pub stats_file: PathBuf,
    log: PathBuf,
}

impl Relay {
    /// Start `ul2tp-relay` in `ns` with `--a LISTEN_A --a-peer PEER_A --b LISTEN_B --b-peer
    /// PEER_B` and the fault options in `extra`; waits until it has bound its sockets.
    pub fn start(
        ns: &Netns,
        listen_a: &str,
        peer_a: &str,
        listen_b: &str,
        peer_b: &str,
        extra: &[&str],
    ) -> Relay {
        let base = std::env::temp_dir().join(unique("relay-"));
        let stats_file = base.with_extension("json");
        let log = base.with_extension("log");
        let child = ns
            .cmd(bin("ul2tp-relay"))
            .args([
                "--a", listen_a, "--a-peer", peer_a, "--b", listen_b, "--b-peer", peer_b,
            ])
            .args(["--max-seconds", "60", "--stats"])
            .arg(&stats_file)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("relay log"))
            .spawn()
            .expect("spawn ul2tp-relay");
        let mut r = Relay {
            child,
            stats_file,
            log,
        };
        let end = Instant::now() + Duration::from_secs(10);
        while !r.stats_file.exists() {
            if let Ok(Some(st)) = r.child.try_wait() {
                panic!("ul2tp-relay exited early ({st}): {}", r.log());
            }
            assert!(
                Instant::now() < end,
                "ul2tp-relay did not start: {}",
                r.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        r
    }

    /// The relay's stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Current counters (the file is replaced atomically after every datagram).
    pub fn stats(&self) -> RelayStats {
        let text = std::fs::read_to_string(&self.stats_file).unwrap_or_default();
        RelayStats::parse(&text)
            .unwrap_or_else(|| panic!("bad relay stats {text:?}; log: {}", self.log()))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process still runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- ul2tp-relay log ---\n{}", self.log());
        }
        let _ = std::fs::remove_file(&self.stats_file);
        let _ = std::fs::remove_file(&self.log);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: u8) -> Vec<u8> {
        // L2TPv3 over UDP data header (T = 0, version 3) followed by a marker byte.
        vec![0x00, 0x03, 0, 0, 0, 0, 0, 1, n]
    }

    fn run(f: &mut Fault, t: Instant, n: u8) -> Vec<u8> {
        f.input(t, &data(n)).iter().map(|d| d[8]).collect()
    }

    #[test]
    fn clean_forwards_everything_in_order() {
        let mut f = Fault::new(FaultConfig::none(1));
        let t = Instant::now();
        let got: Vec<u8> = (1..=5).flat_map(|n| run(&mut f, t, n)).collect();
        assert_eq!(got, vec![1, 2, 3, 4, 5]);
        assert_eq!(f.stats.data, 5);
        assert_eq!(f.stats.data_sent, 5);
        assert_eq!(f.stats.dropped, 0);
    }

    #[test]
    fn scripted_swap_drop_dup() {
        let mut cfg = FaultConfig::none(1);
        cfg.swap_at = parse_indices("2").unwrap();
        cfg.drop_at = parse_indices("5").unwrap();
        cfg.dup_at = parse_indices("6").unwrap();
        let mut f = Fault::new(cfg);
        let t = Instant::now();
        let got: Vec<u8> = (1..=7).flat_map(|n| run(&mut f, t, n)).collect();
        assert_eq!(got, vec![1, 3, 2, 4, 6, 6, 7]);
        assert_eq!(f.stats.held, 1);
        assert_eq!(f.stats.dropped, 1);
        assert_eq!(f.stats.duplicated, 1);
        assert_eq!(f.stats.data_sent, 7);
    }

    #[test]
    fn control_messages_are_not_faulted_or_counted_as_data() {
        let mut cfg = FaultConfig::none(1);
        cfg.drop_at = parse_indices("1").unwrap();
        let mut f = Fault::new(cfg);
        let t = Instant::now();
        let ctl = vec![0xc8, 0x03, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(f.input(t, &ctl), vec![ctl.clone()]);
        assert_eq!(run(&mut f, t, 9), Vec::<u8>::new());
        assert_eq!(run(&mut f, t, 10), vec![10]);
        assert_eq!(f.stats.control, 1);
        assert_eq!(f.stats.data, 2);
        assert_eq!(f.stats.sent, 2);
    }

    #[test]
    fn held_datagram_is_flushed_after_hold_max() {
        let mut cfg = FaultConfig::none(1);
        cfg.swap_at = parse_indices("1").unwrap();
        cfg.hold_max = Duration::from_millis(100);
        let mut f = Fault::new(cfg);
        let t = Instant::now();
        assert!(run(&mut f, t, 1).is_empty());
        assert_eq!(f.next_timeout(), Some(t + Duration::from_millis(100)));
        assert!(f.poll(t + Duration::from_millis(99)).is_empty());
        assert_eq!(f.poll(t + Duration::from_millis(100)), vec![data(1)]);
        assert_eq!(f.stats.flushed, 1);
        assert_eq!(f.next_timeout(), None);
    }

    #[test]
    fn reorder_gap_lets_k_datagrams_overtake() {
        let mut cfg = FaultConfig::none(7);
        cfg.reorder = 1.0;
        cfg.reorder_gap = 2;
        cfg.pass_first = 1;
        let mut f = Fault::new(cfg);
        let t = Instant::now();
        // 1 passes (pass_first); 2 is held; with reorder = 1.0 every later one is held too, so
        // nothing overtakes and the hold_max flush releases them in arrival order.
        let got: Vec<u8> = (1..=4).flat_map(|n| run(&mut f, t, n)).collect();
        assert_eq!(got, vec![1]);
        let flushed: Vec<u8> = f
            .poll(t + Duration::from_secs(2))
            .iter()
            .map(|d| d[8])
            .collect();
        assert_eq!(flushed, vec![2, 3, 4]);

        let mut cfg = FaultConfig::none(7);
        cfg.swap_at = parse_indices("1").unwrap();
        cfg.reorder_gap = 3;
        let mut f = Fault::new(cfg);
        let got: Vec<u8> = (1..=3).flat_map(|n| run(&mut f, t, n)).collect();
        assert_eq!(got, vec![2, 1, 3], "swap_at always uses a gap of 1");
    }

    #[test]
    fn delay_keeps_order_and_releases_on_time() {
        let mut cfg = FaultConfig::none(1);
        cfg.delay = Duration::from_millis(50);
        let mut f = Fault::new(cfg);
        let t = Instant::now();
        assert!(run(&mut f, t, 1).is_empty());
        assert!(run(&mut f, t + Duration::from_millis(10), 2).is_empty());
        assert_eq!(f.next_timeout(), Some(t + Duration::from_millis(50)));
        assert_eq!(f.poll(t + Duration::from_millis(55)), vec![data(1)]);
        assert_eq!(f.poll(t + Duration::from_millis(60)), vec![data(2)]);
        assert_eq!(f.stats.data_sent, 2);
    }

    #[test]
    fn random_faults_are_reproducible_per_seed_and_near_their_rates() {
        let mk = |seed| {
            let mut cfg = FaultConfig::none(seed);
            cfg.drop = 0.1;
            cfg.dup = 0.05;
            cfg.reorder = 0.1;
            cfg.reorder_gap = 2;
            Fault::new(cfg)
        };
        let t = Instant::now();
        let trace = |f: &mut Fault| -> Vec<Vec<u8>> {
            (0..2000u32)
                .flat_map(|n| f.input(t, &[0, 3, (n >> 8) as u8, n as u8]))
                .collect()
        };
        let (mut f1, mut f2, mut f3) = (mk(42), mk(42), mk(43));
        let (a, b, c) = (trace(&mut f1), trace(&mut f2), trace(&mut f3));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(
            (140..=260).contains(&f1.stats.dropped),
            "drops {}",
            f1.stats.dropped
        );
        assert!((60..=140).contains(&f1.stats.duplicated));
        assert!((120..=240).contains(&f1.stats.held));
        // Every datagram is accounted for once the held ones are flushed.
        let rest = f1.poll(t + Duration::from_secs(5)).len() as u64;
        assert_eq!(
            a.len() as u64 + rest,
            2000 - f1.stats.dropped + f1.stats.duplicated
        );
    }

    fn ctl(n: u16) -> Vec<u8> {
        // An L2TPv3 control header (T, L, S, version 3), Ns = n as a marker.
        let [hi, lo] = n.to_be_bytes();
        vec![0xc8, 0x03, 0, 12, 0, 0, 0, 1, hi, lo, 0, 0]
    }

    fn ctl_marks(out: &[Vec<u8>]) -> Vec<u16> {
        out.iter()
            .map(|d| u16::from_be_bytes([d[8], d[9]]))
            .collect()
    }

    #[test]
    fn control_faults_are_seeded_and_leave_the_data_schedule_alone() {
        let mk = |seed, ctl_faults: bool| {
            let mut cfg = FaultConfig::none(seed);
            cfg.drop = 0.1;
            cfg.reorder_gap = 1;
            if ctl_faults {
                cfg.ctl_drop = 0.3;
                cfg.ctl_dup = 0.1;
                cfg.ctl_reorder = 0.1;
            }
            Fault::new(cfg)
        };
        let t = Instant::now();
        // 1000 control messages interleaved with 1000 data datagrams.
        let trace = |f: &mut Fault| -> (Vec<u16>, Vec<Vec<u8>>) {
            let (mut c, mut d) = (Vec::new(), Vec::new());
            for n in 0..1000u16 {
                c.extend(ctl_marks(&f.input(t, &ctl(n))));
                d.extend(f.input(t, &[0, 3, (n >> 8) as u8, n as u8]));
            }
            c.extend(ctl_marks(&f.poll(t + Duration::from_secs(5))));
            (c, d)
        };
        let (mut f1, mut f2, mut f3, mut f0) =
            (mk(9, true), mk(9, true), mk(10, true), mk(9, false));
        let (c1, d1) = trace(&mut f1);
        let (c2, d2) = trace(&mut f2);
        let (c3, _) = trace(&mut f3);
        let (c0, d0) = trace(&mut f0);
        assert_eq!((&c1, &d1), (&c2, &d2), "same seed, same faults");
        assert_ne!(c1, c3, "another seed, other faults");
        // Data datagrams meet the same fate with or without control faults.
        assert_eq!(
            d1.iter().filter(|d| !is_control(d)).collect::<Vec<_>>(),
            d0.iter().filter(|d| !is_control(d)).collect::<Vec<_>>()
        );
        assert_eq!(
            c0,
            (0..1000).collect::<Vec<u16>>(),
            "no control faults: untouched"
        );
        let s = f1.stats;
        assert!((240..=360).contains(&s.ctl_dropped), "{s:?}");
        // Duplication and holding are counted for messages not dropped (~700 of them).
        assert!((40..=110).contains(&s.ctl_duplicated), "{s:?}");
        assert!((40..=110).contains(&s.ctl_held), "{s:?}");
        assert_eq!(s.control, 1000);
        assert_eq!(s.data, 1000);
        // Every control message not dropped arrives, duplicates twice; some out of order.
        assert_eq!(
            c1.len() as u64,
            1000 - s.ctl_dropped + s.ctl_duplicated,
            "{s:?}"
        );
        assert!(c1.windows(2).any(|w| w[0] > w[1]), "nothing reordered");
    }

    #[test]
    fn control_delay_is_fifo() {
        let mut cfg = FaultConfig::none(1);
        cfg.ctl_delay = Duration::from_millis(30);
        let mut f = Fault::new(cfg);
        let t = Instant::now();
        assert!(f.input(t, &ctl(1)).is_empty());
        assert!(f.input(t + Duration::from_millis(5), &ctl(2)).is_empty());
        // Data is not delayed by the control delay.
        assert_eq!(f.input(t, &data(7)), vec![data(7)]);
        assert_eq!(f.next_timeout(), Some(t + Duration::from_millis(30)));
        assert_eq!(
            ctl_marks(&f.poll(t + Duration::from_millis(40))),
            vec![1, 2]
        );
        assert_eq!(f.stats.sent, 3);
    }

    #[test]
    fn chance_extremes_and_bad_indices() {
        let mut r = SplitMix64::new(0);
        assert!((0..1000).all(|_| !r.chance(0.0)));
        assert!((0..1000).all(|_| r.chance(1.0)));
        assert!(parse_indices("0").is_err());
        assert!(parse_indices("x").is_err());
        assert_eq!(
            parse_indices("3, 1,3")
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            vec![1, 3]
        );
    }

    #[test]
    fn stats_json_round_trip_and_malformed() {
        let mut s = RelayStats::default();
        s.ab.received = 5;
        s.ba.dropped = 2;
        assert_eq!(RelayStats::parse(&s.to_json_string()), Some(s));
        assert_eq!(RelayStats::parse("{}"), None);
        assert_eq!(RelayStats::parse("not json"), None);
    }
}
