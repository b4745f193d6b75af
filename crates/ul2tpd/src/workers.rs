//! Per-worker data path of Ethernet pseudowires: multi-queue TAPs (`IFF_MULTI_QUEUE`) and
//! the per-worker counters operators see in `/metrics`.
//!
//! With `[datapath] workers = N` (default one per CPU) every Ethernet pseudowire's TAP has N
//! queues, and each queue has its own transmit loop (`datapath::eth_tx`), so N flows of one
//! session are read, segmented, encapsulated and sent by N tasks in parallel on the
//! multi-threaded runtime. The kernel picks the queue of each frame by flow; the receive side
//! writes each flow's frames through the queue [`ul2tp_core::workers::queue_for_frame`]
//! gives it, and the tun driver then sends that flow's returning frames out of the same queue
//! (docs/PERFORMANCE.md, "Per-core workers"). With `workers = 1` the TAP is an ordinary
//! single-queue device and the data path is the one of before.
//!
//! Nothing is shared between the queues per packet except the session's atomic counters and
//! Ns: a session with `send_seq` on serialises its transmit loops with a per-session lock
//! (taken only while sequencing is on), so that datagrams leave in Ns order.

use std::io;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ul2tp_core::workers::{queue_for_frame, MAX_QUEUES};
use ul2tp_sys::tap::Tap;

/// The number of data-path workers when nothing is configured: one per CPU.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Queues a pseudowire gets for `workers` workers (1..=[`MAX_QUEUES`]).
pub fn queues(workers: usize) -> usize {
    workers.clamp(1, MAX_QUEUES)
}

/// An Ethernet pseudowire's device: the queues of one TAP (one for a single worker).
/// Dereferences to queue 0 for everything that is per device (name, MTU, carrier, offloads,
/// reading on a single-queue device).
#[derive(Debug)]
pub struct EthDev {
    queues: Vec<Tap>,
    counters: Arc<WorkerCounters>,
}

impl EthDev {
    /// Create a TAP with `queues` queues (multi-queue only for more than one).
    pub fn create(
        name: &str,
        template: &str,
        queues: usize,
        counters: Arc<WorkerCounters>,
    ) -> io::Result<EthDev> {
        let queues = if queues <= 1 {
            vec![Tap::create(Some(name), template)?]
        } else {
            Tap::create_multi_queue(Some(name), template, queues)?
        };
        Ok(EthDev { queues, counters })
    }

    /// How many queues the device has.
    pub fn queue_count(&self) -> usize {
        self.queues.len()
    }

    /// Queue `i` (`None` past the last).
    pub fn queue(&self, i: usize) -> Option<&Tap> {
        self.queues.get(i)
    }

    /// The per-worker counters this device counts into.
    pub fn counters(&self) -> &WorkerCounters {
        &self.counters
    }

    /// The queue a received frame (plain Ethernet) is written through, by its flow.
    fn queue_of(&self, frame: &[u8]) -> (usize, &Tap) {
        let i = queue_for_frame(frame, self.queues.len());
        (i, &self.queues[i.min(self.queues.len() - 1)])
    }

    /// Inject one received frame through its flow's queue; never waits.
    pub fn try_send(&self, frame: &[u8]) -> io::Result<usize> {
        let (i, q) = self.queue_of(frame);
        let r = q.try_send(frame);
        if r.is_ok() {
            self.counters.rx(i);
        }
        r
    }

    /// Inject one frame preceded by its `virtio_net_hdr` through its flow's queue.
    pub fn try_send_vnet(&self, buf: &[u8]) -> io::Result<usize> {
        let frame = buf.get(ul2tp_sys::tap::VNET_HDR_LEN..).unwrap_or(&[]);
        let (i, q) = self.queue_of(frame);
        let r = q.try_send_vnet(buf);
        if r.is_ok() {
            self.counters.rx(i);
        }
        r
    }
}

impl Deref for EthDev {
    type Target = Tap;

    fn deref(&self) -> &Tap {
        // A device always has at least one queue (create).
        &self.queues[0]
    }
}

/// Counters of one worker, on a cache line of its own (the workers update theirs
/// concurrently).
#[derive(Debug, Default)]
#[repr(align(64))]
struct Slot {
    tx: AtomicU64,
    rx: AtomicU64,
}

/// Per-worker totals over all pseudowires: datagrams each transmit loop sent towards the
/// tunnel, and frames (coalesced super-frames count once) written through each queue
/// (`ul2tp_datapath_worker_tx_datagrams_total`, `ul2tp_datapath_worker_rx_writes_total`).
#[derive(Debug)]
pub struct WorkerCounters {
    slots: Vec<Slot>,
}

impl Default for WorkerCounters {
    fn default() -> Self {
        Self {
            slots: (0..MAX_QUEUES).map(|_| Slot::default()).collect(),
        }
    }
}

impl WorkerCounters {
    /// `n` datagrams sent by worker `i`'s transmit loop.
    pub fn tx(&self, i: usize, n: usize) {
        if let Some(s) = self.slots.get(i) {
            s.tx.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// One write through queue `i`.
    pub fn rx(&self, i: usize) {
        if let Some(s) = self.slots.get(i) {
            s.rx.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `(tx datagrams, rx writes)` of each worker up to the last one that counted anything
    /// (at least `min` workers).
    pub fn snapshot(&self, min: usize) -> Vec<(u64, u64)> {
        let all: Vec<(u64, u64)> = self
            .slots
            .iter()
            .map(|s| (s.tx.load(Ordering::Relaxed), s.rx.load(Ordering::Relaxed)))
            .collect();
        let used = all
            .iter()
            .rposition(|&(t, r)| t > 0 || r > 0)
            .map_or(0, |i| i + 1);
        all.into_iter()
            .take(used.max(min.min(MAX_QUEUES)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_are_clamped() {
        assert_eq!(queues(0), 1);
        assert_eq!(queues(1), 1);
        assert_eq!(queues(3), 3);
        assert_eq!(queues(1000), MAX_QUEUES);
    }

    #[test]
    fn snapshot_lists_workers_up_to_the_last_used() {
        let c = WorkerCounters::default();
        assert_eq!(c.snapshot(2), vec![(0, 0), (0, 0)]);
        c.tx(0, 5);
        c.rx(3);
        c.rx(3);
        c.tx(MAX_QUEUES, 1); // out of range: ignored
        assert_eq!(c.snapshot(1), vec![(5, 0), (0, 0), (0, 0), (0, 2)]);
    }
}
