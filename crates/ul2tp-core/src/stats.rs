//! Atomic counters of a tunnel or session (docs/reference/kernel.md §3.1).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use ul2tp_api::Stats;

/// The §3.1 counter set as relaxed atomics.
#[derive(Debug, Default)]
pub struct AtomicStats {
    pub(crate) tx_packets: AtomicU64,
    pub(crate) tx_bytes: AtomicU64,
    pub(crate) tx_errors: AtomicU64,
    pub(crate) rx_packets: AtomicU64,
    pub(crate) rx_bytes: AtomicU64,
    pub(crate) rx_seq_discards: AtomicU64,
    pub(crate) rx_cookie_discards: AtomicU64,
    pub(crate) rx_oos_packets: AtomicU64,
    pub(crate) rx_errors: AtomicU64,
    pub(crate) rx_invalid: AtomicU64,
}

pub(crate) fn inc(c: &AtomicU64) {
    c.fetch_add(1, Relaxed);
}

pub(crate) fn add(c: &AtomicU64, n: usize) {
    c.fetch_add(n as u64, Relaxed);
}

impl AtomicStats {
    /// A consistent-enough copy of the counters.
    pub fn snapshot(&self) -> Stats {
        Stats {
            tx_packets: self.tx_packets.load(Relaxed),
            tx_bytes: self.tx_bytes.load(Relaxed),
            tx_errors: self.tx_errors.load(Relaxed),
            rx_packets: self.rx_packets.load(Relaxed),
            rx_bytes: self.rx_bytes.load(Relaxed),
            rx_seq_discards: self.rx_seq_discards.load(Relaxed),
            rx_cookie_discards: self.rx_cookie_discards.load(Relaxed),
            rx_oos_packets: self.rx_oos_packets.load(Relaxed),
            rx_errors: self.rx_errors.load(Relaxed),
            rx_invalid: self.rx_invalid.load(Relaxed),
        }
    }
}
