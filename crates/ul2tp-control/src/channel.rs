//! Reliable delivery of control messages for one control connection (docs/reference/rfc.md §1.10, §1.15,
//! §2.9).
//!
//! Design: the channel owns the Ns/Nr state. Messages are queued with [`ControlChannel::send`]
//! and receive their Ns immediately (so the order is fixed), but only go on the wire while the
//! number in flight is below `min(cwnd, peer window)`. One retransmission timer covers the oldest
//! unacknowledged message; when it fires that message is re-sent with the same Ns and the current
//! Nr, the timeout doubles up to the cap, and Appendix A halves SSTHRESH and drops CWND to 1.
//! Received messages are delivered strictly in order: ahead-of-sequence messages within our
//! receive window are held, duplicates are re-acknowledged at once, and a delayed ACK (ZLB in v2,
//! explicit ACK message in v3, built by the caller) is requested when nothing piggybacks Nr.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use crate::Timestamp;

/// `a < b` in modulo-2^16 sequence space (docs/reference/rfc.md §1.10).
pub fn seq_lt(a: u16, b: u16) -> bool {
    a != b && b.wrapping_sub(a) < 0x8000
}

/// Timing and window parameters of a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelParams {
    /// Our receive window (how many out-of-order messages we hold).
    pub rx_window: u16,
    /// Initial retransmission timeout.
    pub rto_initial: Duration,
    /// Cap of the exponential backoff.
    pub rto_cap: Duration,
    /// Retransmissions of one message before the connection is declared dead.
    pub max_retries: u32,
    /// How long an ACK may wait for a message to piggyback on.
    pub ack_delay: Duration,
}

#[derive(Debug, Clone)]
struct Outgoing {
    ns: u16,
    bytes: Vec<u8>,
    /// When it first went on the wire (for round-trip samples).
    sent_at: Option<Timestamp>,
    /// Sent more than once: its acknowledgement gives no round-trip sample (Karn).
    retransmitted: bool,
}

/// Margin of the lowest retransmission timeout the round-trip estimate may set above the
/// acknowledgement delay: the timeout never goes below `ack_delay + RTO_MIN` however fast the
/// peer answers (a peer acknowledges a message that nothing piggybacks on after its own
/// acknowledgement delay, normally the same as ours; scheduling hiccups of a loaded host get
/// the margin: 200 ms gave spurious retransmissions on lossless links of a busy machine).
pub const RTO_MIN: Duration = Duration::from_millis(400);

/// What the receive side decided about an incoming message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RxVerdict {
    /// In-order message(s) ready for the state machine, oldest first (the message just received
    /// and any held ones it unblocked).
    Deliver(Vec<Vec<u8>>),
    /// Held for later in-order delivery.
    Queued,
    /// Duplicate (already delivered); re-acknowledged.
    Duplicate,
    /// Ahead of our window: dropped (the peer will retransmit).
    Dropped,
    /// A pure acknowledgement (ZLB / ACK): nothing to deliver.
    AckOnly,
    /// The Nr acknowledges something never sent (RFC 3931 §4.2 rule): message ignored.
    InvalidNr,
}

/// Counters kept by a channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelStats {
    /// Messages sent for the first time.
    pub tx_msgs: u64,
    /// Retransmissions (by the timer and fast ones).
    pub retransmits: u64,
    /// Of those, fast retransmissions: sent when acknowledgements showed a loss, before the
    /// retransmission timer.
    pub fast_retransmits: u64,
    /// Pure acknowledgements sent.
    pub tx_acks: u64,
    /// Messages delivered in order to the state machine.
    pub delivered: u64,
    /// Duplicates received.
    pub duplicates: u64,
    /// Messages held out of order.
    pub out_of_order: u64,
    /// Messages dropped beyond the window or with an invalid Nr.
    pub dropped: u64,
}

impl ChannelStats {
    /// Add `other`'s counters to these (sums over tunnels).
    pub fn add(&mut self, other: &ChannelStats) {
        self.tx_msgs += other.tx_msgs;
        self.retransmits += other.retransmits;
        self.fast_retransmits += other.fast_retransmits;
        self.tx_acks += other.tx_acks;
        self.delivered += other.delivered;
        self.duplicates += other.duplicates;
        self.out_of_order += other.out_of_order;
        self.dropped += other.dropped;
    }
}

/// The reliable-delivery state of one control connection.
#[derive(Debug, Clone)]
pub struct ControlChannel {
    params: ChannelParams,
    /// Ns of the next new message.
    next_ns: u16,
    /// Oldest unacknowledged Ns.
    una: u16,
    /// Next Ns expected from the peer (our Nr).
    next_nr: u16,
    queue: VecDeque<Outgoing>,
    /// The first `n_sent` entries of `queue` are on the wire (messages go out in Ns order).
    n_sent: usize,
    held: BTreeMap<u16, Vec<u8>>,
    peer_window: u16,
    cwnd: u32,
    cwnd_frac: u32,
    ssthresh: u32,
    rto: Duration,
    retries: u32,
    rtx_deadline: Option<Timestamp>,
    ack_deadline: Option<Timestamp>,
    failed: bool,
    /// Pure acknowledgements in a row that acknowledged nothing new while messages were in
    /// flight (the peer acknowledges every message it holds out of order at once).
    dup_acks: u32,
    /// Loss recovery: the end of the sent range when a loss was detected; acknowledgements
    /// below it are partial (the next hole is retransmitted at once).
    recover: Option<u16>,
    /// Retransmit the oldest unacknowledged message at the next [`poll_fast_retransmit`].
    ///
    /// [`poll_fast_retransmit`]: Self::poll_fast_retransmit
    fast_rtx: bool,
    /// Smoothed round-trip time and its variation (RFC 6298 §2), once measured.
    srtt: Option<Duration>,
    rttvar: Duration,
    /// Counters.
    pub stats: ChannelStats,
}

/// Duplicate acknowledgements that signal a lost message (RFC 5681 §3.2).
const DUP_ACK_THRESHOLD: u32 = 3;

impl ControlChannel {
    /// Change the number of retransmissions allowed before the channel fails.
    pub fn set_max_retries(&mut self, n: u32) {
        self.params.max_retries = n;
    }

    /// A fresh channel: Ns = Nr = 0, peer window assumed 4 until told (docs/reference/rfc.md §1.10).
    pub fn new(params: ChannelParams) -> ControlChannel {
        ControlChannel {
            params,
            next_ns: 0,
            una: 0,
            next_nr: 0,
            queue: VecDeque::new(),
            n_sent: 0,
            held: BTreeMap::new(),
            peer_window: 4,
            cwnd: 1,
            cwnd_frac: 0,
            ssthresh: 4,
            rto: params.rto_initial,
            retries: 0,
            rtx_deadline: None,
            ack_deadline: None,
            failed: false,
            dup_acks: 0,
            recover: None,
            fast_rtx: false,
            srtt: None,
            rttvar: Duration::ZERO,
            stats: ChannelStats::default(),
        }
    }

    /// Set the peer's Receive Window Size (absent ⇒ 4, 0 is invalid and ignored).
    pub fn set_peer_window(&mut self, w: u16) {
        if w != 0 {
            self.peer_window = w;
            // Appendix A: SSTHRESH starts at the peer's advertised window.
            self.ssthresh = u32::from(w);
        }
    }

    /// Peer's receive window.
    pub fn peer_window(&self) -> u16 {
        self.peer_window
    }

    /// Current congestion window.
    pub fn cwnd(&self) -> u32 {
        self.cwnd
    }

    /// Our Nr (next Ns expected from the peer).
    pub fn nr(&self) -> u16 {
        self.next_nr
    }

    /// Ns the next message queued will carry (counts messages still waiting for the window).
    pub fn next_ns(&self) -> u16 {
        self.next_ns
    }

    /// Ns of the next message that will go on the wire for the first time: the oldest one
    /// still waiting for the window, or the next one queued. This is the Ns of a ZLB / ACK
    /// (docs/reference/rfc.md §1.10: a pure acknowledgement carries the Ns of the next message
    /// to be sent and takes no sequence slot), so the peer sees the same number again on the
    /// next message it receives from us.
    pub fn ack_ns(&self) -> u16 {
        self.queue.get(self.n_sent).map_or(self.next_ns, |o| o.ns)
    }

    /// Whether the message that got `ns` from [`send`](Self::send) has been acknowledged.
    pub fn is_acked(&self, ns: u16) -> bool {
        seq_lt(ns, self.una)
    }

    /// Messages queued or in flight and not yet acknowledged.
    pub fn unacked(&self) -> usize {
        self.queue.len()
    }

    /// Whether the retransmission budget was exhausted.
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// Queue a message (bytes include the header; Ns/Nr are filled at transmit). Returns its Ns.
    pub fn send(&mut self, bytes: Vec<u8>) -> u16 {
        let ns = self.next_ns;
        self.next_ns = self.next_ns.wrapping_add(1);
        self.queue.push_back(Outgoing {
            ns,
            bytes,
            sent_at: None,
            retransmitted: false,
        });
        ns
    }

    fn in_flight(&self) -> usize {
        self.n_sent
    }

    /// Forget the messages that never went on the wire and give their sequence numbers back:
    /// the next message queued gets the Ns the peer expects after everything already sent.
    /// Messages already sent stay queued and are retransmitted until acknowledged, because the
    /// peer may hold them, and a later message can only be delivered after them. Used when
    /// the connection is being cleared: the StopCCN follows what was sent, not what was only
    /// queued.
    pub fn drop_unsent(&mut self) {
        self.next_ns = self.ack_ns();
        self.queue.truncate(self.n_sent);
    }

    /// Drop everything queued, sent or not, and stop retransmitting (used once the connection
    /// is gone but its state is kept only to re-acknowledge the peer's StopCCN).
    pub fn abandon(&mut self) {
        self.drop_unsent();
        self.queue.clear();
        self.n_sent = 0;
        self.rtx_deadline = None;
    }

    fn window(&self) -> usize {
        (self.cwnd.min(u32::from(self.peer_window)).max(1)) as usize
    }

    /// Messages to put on the wire now (new ones allowed by the window), with Ns/Nr filled in.
    pub fn poll_send(&mut self, now: Timestamp) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        if self.failed {
            return out;
        }
        let win = self.window();
        let nr = self.next_nr;
        while self.n_sent < win {
            let Some(o) = self.queue.get_mut(self.n_sent) else {
                break;
            };
            o.sent_at = Some(now);
            self.n_sent += 1;
            let mut b = o.bytes.clone();
            let _ = ul2tp_wire::control::set_ns_nr(&mut b, o.ns, nr);
            out.push(b);
            self.stats.tx_msgs += 1;
        }
        if !out.is_empty() {
            // Piggybacked Nr acknowledges everything received so far.
            self.ack_deadline = None;
            if self.rtx_deadline.is_none() {
                self.rtx_deadline = Some(now + self.rto);
            }
        }
        out
    }

    /// Process the Nr of any received message (ZLB included). Returns false if the Nr is
    /// beyond what we have sent (invalid).
    fn on_nr(&mut self, now: Timestamp, nr: u16, is_ack: bool) -> bool {
        // Valid Nr: una <= nr <= next_ns (modulo 2^16). Only sent messages can be acked.
        let sent_end = self.queue.get(self.n_sent).map_or(self.next_ns, |o| o.ns);
        if seq_lt(sent_end, nr) {
            return false;
        }
        if !seq_lt(self.una, nr) {
            // Old or no news. A pure acknowledgement of nothing new while messages are in
            // flight means the peer holds later ones out of order: after three, the oldest is
            // lost; retransmit it now instead of waiting for the timer (fast retransmit, RFC
            // 5681 §3.2), and halve the window instead of closing it.
            if is_ack && nr == self.una && self.in_flight() > 0 {
                self.dup_acks += 1;
                if self.dup_acks == DUP_ACK_THRESHOLD && self.recover.is_none() {
                    self.ssthresh = (self.cwnd / 2).max(1);
                    self.cwnd = self.ssthresh;
                    self.cwnd_frac = 0;
                    self.recover = Some(sent_end);
                    self.fast_rtx = true;
                }
            }
            return true;
        }
        self.dup_acks = 0;
        let mut acked = 0u32;
        let mut sample = None;
        let mut any_retransmitted = false;
        while let Some(front) = self.queue.front() {
            if seq_lt(front.ns, nr) {
                // Karn: an acknowledgement covering a retransmitted message gives no
                // round-trip sample (which copy does it answer?).
                any_retransmitted |= front.retransmitted;
                sample = front.sent_at.map(|t| now.saturating_since(t));
                self.queue.pop_front();
                self.n_sent = self.n_sent.saturating_sub(1);
                acked += 1;
            } else {
                break;
            }
        }
        if let Some(r) = sample.filter(|_| !any_retransmitted) {
            self.rtt_sample(r);
        }
        self.una = nr;
        // Appendix A: slow start below SSTHRESH, +1/CWND above it.
        for _ in 0..acked {
            if self.cwnd < self.ssthresh {
                self.cwnd += 1;
            } else {
                self.cwnd_frac += 1;
                if self.cwnd_frac >= self.cwnd {
                    self.cwnd_frac = 0;
                    self.cwnd += 1;
                }
            }
        }
        self.cwnd = self.cwnd.min(u32::from(self.peer_window));
        // In loss recovery, an acknowledgement that stops short of what was sent when the loss
        // was found points at the next lost message: retransmit it at once (RFC 6582 §3.2,
        // partial acknowledgements), so that several losses in one window cost one round
        // trip each rather than one retransmission timeout each.
        if let Some(r) = self.recover {
            if seq_lt(nr, r) && self.in_flight() > 0 {
                self.fast_rtx = true;
            } else {
                self.recover = None;
            }
        }
        self.retries = 0;
        self.rto = self.base_rto();
        self.rtx_deadline = if self.in_flight() > 0 {
            Some(now + self.rto)
        } else {
            None
        };
        true
    }

    /// Process a received message. `is_ack` marks a ZLB or explicit ACK (no sequence slot).
    pub fn on_receive(
        &mut self,
        now: Timestamp,
        ns: u16,
        nr: u16,
        is_ack: bool,
        bytes: &[u8],
    ) -> RxVerdict {
        if !self.on_nr(now, nr, is_ack) {
            self.stats.dropped += 1;
            return RxVerdict::InvalidNr;
        }
        if is_ack {
            return RxVerdict::AckOnly;
        }
        let d = ns.wrapping_sub(self.next_nr);
        if d == 0 {
            let mut out = vec![bytes.to_vec()];
            self.next_nr = self.next_nr.wrapping_add(1);
            while let Some(m) = self.held.remove(&self.next_nr) {
                out.push(m);
                self.next_nr = self.next_nr.wrapping_add(1);
            }
            self.stats.delivered += out.len() as u64;
            self.schedule_ack(now + self.params.ack_delay);
            RxVerdict::Deliver(out)
        } else if d >= 0x8000 {
            // Duplicate: MUST be acknowledged again (docs/reference/rfc.md §1.10).
            self.stats.duplicates += 1;
            self.schedule_ack(now);
            RxVerdict::Duplicate
        } else if d < self.params.rx_window.max(1) {
            self.stats.out_of_order += 1;
            self.held.entry(ns).or_insert_with(|| bytes.to_vec());
            self.schedule_ack(now);
            RxVerdict::Queued
        } else {
            self.stats.dropped += 1;
            RxVerdict::Dropped
        }
    }

    /// Fold in a round-trip sample (RFC 6298 §2.2, §2.3).
    fn rtt_sample(&mut self, r: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2;
            }
            Some(s) => {
                let diff = s.abs_diff(r);
                // Saturating: no sample or configuration may overflow (panic).
                self.rttvar = self.rttvar.saturating_mul(3).saturating_add(diff) / 4;
                self.srtt = Some(s.saturating_mul(7).saturating_add(r) / 8);
            }
        }
    }

    /// The retransmission timeout after progress: the initial one until the round trip is
    /// measured, then SRTT + 4 RTTVAR (RFC 6298 §2.3; adaptive, as RFC 2661 §5.8 allows),
    /// at least `ack_delay` + [`RTO_MIN`] (not above the initial timeout) and at most the cap.
    fn base_rto(&self) -> Duration {
        match self.srtt {
            None => self.params.rto_initial,
            Some(s) => s
                .saturating_add(self.rttvar.saturating_mul(4))
                .max(
                    self.params
                        .ack_delay
                        .saturating_add(RTO_MIN)
                        .min(self.params.rto_initial),
                )
                .min(self.params.rto_cap),
        }
    }

    /// The current retransmission timeout.
    pub fn rto(&self) -> Duration {
        self.rto
    }

    fn schedule_ack(&mut self, at: Timestamp) {
        self.ack_deadline = Some(match self.ack_deadline {
            Some(d) if d < at => d,
            _ => at,
        });
    }

    /// Whether a pure acknowledgement must be sent now (clears the request). The caller builds
    /// the ZLB / ACK with Ns = [`ack_ns`](Self::ack_ns) and Nr = [`nr`](Self::nr).
    pub fn take_ack(&mut self, now: Timestamp) -> bool {
        match self.ack_deadline {
            Some(d) if d <= now => {
                self.ack_deadline = None;
                self.stats.tx_acks += 1;
                true
            }
            _ => false,
        }
    }

    /// Handle the retransmission timer: returns the message to re-send, if any. After
    /// `max_retries` retransmissions of one message the channel is marked failed.
    pub fn on_timeout(&mut self, now: Timestamp) -> Option<Vec<u8>> {
        let d = self.rtx_deadline?;
        if d > now || self.failed {
            return None;
        }
        if self.retries >= self.params.max_retries {
            self.failed = true;
            self.rtx_deadline = None;
            return None;
        }
        self.retries += 1;
        self.stats.retransmits += 1;
        // Appendix A: on retransmission SSTHRESH = CWND/2, CWND = 1.
        self.ssthresh = (self.cwnd / 2).max(1);
        self.cwnd = 1;
        self.cwnd_frac = 0;
        self.rto = self.rto.saturating_mul(2).min(self.params.rto_cap);
        self.rtx_deadline = Some(now + self.rto);
        // What was sent before the timeout may have holes beyond this one: recover them on
        // partial acknowledgements.
        self.recover = Some(self.queue.get(self.n_sent).map_or(self.next_ns, |o| o.ns));
        self.fast_rtx = false;
        self.dup_acks = 0;
        let nr = self.next_nr;
        let n_sent = self.n_sent;
        let front = self.queue.front_mut().filter(|_| n_sent > 0)?;
        front.retransmitted = true;
        let mut b = front.bytes.clone();
        let _ = ul2tp_wire::control::set_ns_nr(&mut b, front.ns, nr);
        self.ack_deadline = None;
        Some(b)
    }

    /// The newest message queued, with the current Nr, when it is on the wire and more than
    /// one is unacknowledged (nothing otherwise): sent again with the oldest when the timer of a
    /// tunnel being cleared fires, so that its StopCCN, which follows everything already
    /// sent, reaches a peer that has forgotten the tunnel and acknowledges only StopCCNs
    /// ([`Endpoint`](crate::Endpoint)); its acknowledgement covers every message before it.
    pub fn newest_sent_again(&mut self) -> Option<Vec<u8>> {
        if self.n_sent < 2 || self.n_sent != self.queue.len() || self.failed {
            return None;
        }
        let nr = self.next_nr;
        let o = self.queue.get_mut(self.n_sent - 1)?;
        o.retransmitted = true;
        let mut b = o.bytes.clone();
        let _ = ul2tp_wire::control::set_ns_nr(&mut b, o.ns, nr);
        self.stats.retransmits += 1;
        Some(b)
    }

    /// The oldest unacknowledged message, when acknowledgements showed it lost (three
    /// duplicate acknowledgements, or a partial acknowledgement during loss recovery): sent
    /// again now, with the retransmission timer restarted. Not counted against
    /// `max_retries`, which only the timer spends.
    pub fn poll_fast_retransmit(&mut self, now: Timestamp) -> Option<Vec<u8>> {
        if !std::mem::take(&mut self.fast_rtx) || self.failed {
            return None;
        }
        let nr = self.next_nr;
        let n_sent = self.n_sent;
        let front = self.queue.front_mut().filter(|_| n_sent > 0)?;
        front.retransmitted = true;
        let mut b = front.bytes.clone();
        let _ = ul2tp_wire::control::set_ns_nr(&mut b, front.ns, nr);
        self.stats.retransmits += 1;
        self.stats.fast_retransmits += 1;
        self.ack_deadline = None;
        self.rtx_deadline = Some(now + self.rto);
        Some(b)
    }

    /// Earliest time the channel needs attention.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        match (self.rtx_deadline, self.ack_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> ChannelParams {
        ChannelParams {
            rx_window: 4,
            rto_initial: Duration::from_secs(1),
            rto_cap: Duration::from_secs(8),
            max_retries: 3,
            ack_delay: Duration::from_millis(100),
        }
    }

    fn msg(tag: u8) -> Vec<u8> {
        let mut v = vec![0xc8, 0x02, 0, 13, 0, 1, 0, 0, 0, 0, 0, 0];
        v.push(tag);
        v
    }

    const T0: Timestamp = Timestamp::ZERO;

    #[test]
    fn seq_compare_wraps() {
        assert!(seq_lt(0, 1));
        assert!(seq_lt(65535, 0));
        assert!(!seq_lt(1, 0));
        assert!(!seq_lt(5, 5));
        assert!(seq_lt(15, 32782));
        assert!(!seq_lt(15, 32784)); // docs/reference/rfc.md §1.10 example: 32784 counts as older than 15
    }

    #[test]
    fn window_limits_in_flight_and_slow_start_grows() {
        let mut c = ControlChannel::new(params());
        c.set_peer_window(4);
        for i in 0..6 {
            c.send(msg(i));
        }
        // cwnd starts at 1
        assert_eq!(c.poll_send(T0).len(), 1);
        assert_eq!(c.poll_send(T0).len(), 0);
        assert_eq!(c.on_receive(T0, 0, 1, true, &[]), RxVerdict::AckOnly);
        assert_eq!(c.cwnd(), 2);
        assert_eq!(c.poll_send(T0).len(), 2);
        assert_eq!(c.on_receive(T0, 0, 3, true, &[]), RxVerdict::AckOnly);
        assert_eq!(c.cwnd(), 4);
        // capped by peer window 4; 3 left to send
        assert_eq!(c.poll_send(T0).len(), 3);
    }

    #[test]
    fn retransmit_backoff_and_failure() {
        let mut c = ControlChannel::new(params());
        c.send(msg(1));
        let first = c.poll_send(T0);
        assert_eq!(first.len(), 1);
        let t1 = T0 + Duration::from_secs(1);
        assert_eq!(c.poll_timeout(), Some(t1));
        let r = c.on_timeout(t1).expect("retransmit");
        assert_eq!(r, first[0]);
        // backoff doubles: 2 s
        assert_eq!(c.poll_timeout(), Some(t1 + Duration::from_secs(2)));
        let t2 = t1 + Duration::from_secs(2);
        assert!(c.on_timeout(t2).is_some());
        let t3 = t2 + Duration::from_secs(4);
        assert!(c.on_timeout(t3).is_some());
        assert!(!c.failed());
        assert_eq!(c.on_timeout(t3 + Duration::from_secs(8)), None);
        assert!(c.failed());
    }

    #[test]
    fn three_duplicate_acks_retransmit_the_lost_message_before_the_timer() {
        let mut c = ControlChannel::new(params());
        c.set_peer_window(8);
        for i in 0..8 {
            c.send(msg(i));
        }
        // Grow the window to 4 and send Ns 1..=4 (Ns 0 acknowledged).
        c.poll_send(T0);
        c.on_receive(T0, 0, 1, true, &[]);
        let sent = c.poll_send(T0);
        assert_eq!(sent.len(), 2);
        // Ns 1 is lost; the peer acknowledges Nr = 1 for each later message it holds.
        assert_eq!(c.poll_fast_retransmit(T0), None);
        c.on_receive(T0, 0, 1, true, &[]);
        c.on_receive(T0, 0, 1, true, &[]);
        assert_eq!(c.poll_fast_retransmit(T0), None, "two are not enough");
        c.on_receive(T0, 0, 1, true, &[]);
        let t = T0 + Duration::from_millis(10);
        let r = c.poll_fast_retransmit(t).expect("fast retransmit");
        assert_eq!(r, sent[0], "the oldest unacknowledged message, Ns 1");
        assert_eq!(c.stats.retransmits, 1);
        assert_eq!(c.poll_fast_retransmit(t), None, "once");
        // The timer restarted from the retransmission; no retry was spent.
        assert_eq!(c.poll_timeout(), Some(t + c.rto()));
        assert_eq!(c.cwnd(), 1, "window halved (from 2), not closed");
        // A message from the peer (not a pure ack) with the same Nr is no signal.
        let mut d = ControlChannel::new(params());
        d.send(msg(1));
        d.send(msg(2));
        d.set_peer_window(4);
        d.poll_send(T0);
        for ns in 0..5 {
            d.on_receive(T0, ns, 0, false, &msg(9));
        }
        assert_eq!(d.poll_fast_retransmit(T0), None);
    }

    #[test]
    fn partial_acks_after_a_timeout_retransmit_each_hole_at_once() {
        let mut p = params();
        p.max_retries = 10;
        let mut c = ControlChannel::new(p);
        c.set_peer_window(8);
        for i in 0..4 {
            c.send(msg(i));
        }
        c.poll_send(T0);
        c.on_receive(T0, 0, 1, true, &[]);
        c.poll_send(T0);
        c.on_receive(T0, 0, 3, true, &[]);
        // Ns 3..=6 would be next; here the window sends Ns 3 only (one left of 4 queued).
        let mut all = c.poll_send(T0);
        assert_eq!(all.len(), 1);
        for i in 4..8 {
            c.send(msg(i));
        }
        all.extend(c.poll_send(T0));
        assert_eq!(all.len(), 4, "Ns 3, 4, 5, 6 in flight");
        // Ns 3 and 5 are lost: the timer resends Ns 3.
        let t = c.poll_timeout().unwrap();
        assert_eq!(c.on_timeout(t).as_ref(), Some(&all[0]));
        // The peer now has 3 and 4: it acknowledges up to 5, short of the 7 sent: partial, so
        // Ns 5 goes again at once, without another timeout.
        c.on_receive(t, 0, 5, true, &[]);
        assert_eq!(c.poll_fast_retransmit(t).as_ref(), Some(&all[2]));
        // Everything acknowledged: recovery ends, nothing more to resend.
        c.on_receive(t, 0, 7, true, &[]);
        assert_eq!(c.poll_fast_retransmit(t), None);
        assert_eq!(c.stats.retransmits, 2);
    }

    #[test]
    fn retransmission_timeout_follows_the_measured_round_trip() {
        let mut p = params();
        p.max_retries = 10;
        let mut c = ControlChannel::new(p);
        // A window of 2, so that every round trip acknowledges new messages.
        c.set_peer_window(2);
        for i in 0..100 {
            c.send(msg(i));
        }
        assert_eq!(c.rto(), Duration::from_secs(1), "initial until measured");
        // A peer answering in 30 ms: the timeout comes down to the floor.
        let mut t = T0;
        let mut nr = 0u16;
        for _ in 0..8 {
            nr += c.poll_send(t).len() as u16;
            t += Duration::from_millis(30);
            c.on_receive(t, 0, nr, true, &[]);
        }
        assert_eq!(c.rto(), Duration::from_millis(100) + RTO_MIN);
        // A slow peer (600 ms): the timeout grows above the initial second.
        for _ in 0..6 {
            nr += c.poll_send(t).len() as u16;
            t += Duration::from_millis(600);
            c.on_receive(t, 0, nr, true, &[]);
        }
        assert!(c.rto() > Duration::from_millis(600), "{:?}", c.rto());
        // Backoff still doubles from there on a timeout, and a retransmitted message's
        // acknowledgement is no sample (Karn): the estimate stays.
        nr += c.poll_send(t).len() as u16;
        let before = c.rto();
        let d = c.poll_timeout().unwrap();
        c.on_timeout(d).unwrap();
        assert_eq!(c.rto(), (before * 2).min(Duration::from_secs(8)));
        c.on_receive(d + Duration::from_secs(5), 0, nr, true, &[]);
        assert_eq!(c.rto(), before, "no sample from a retransmitted message");
    }

    #[test]
    fn backoff_is_capped() {
        let mut p = params();
        p.max_retries = 10;
        p.rto_cap = Duration::from_secs(2);
        let mut c = ControlChannel::new(p);
        c.send(msg(1));
        c.poll_send(T0);
        let mut t = T0;
        for _ in 0..5 {
            t = c.poll_timeout().unwrap();
            c.on_timeout(t);
        }
        assert_eq!(c.poll_timeout(), Some(t + Duration::from_secs(2)));
    }

    #[test]
    fn retransmission_resets_cwnd() {
        let mut p = params();
        p.max_retries = 10;
        let mut c = ControlChannel::new(p);
        c.set_peer_window(8);
        for i in 0..10 {
            c.send(msg(i));
        }
        c.poll_send(T0);
        c.on_receive(T0, 0, 1, true, &[]);
        c.poll_send(T0);
        c.on_receive(T0, 0, 3, true, &[]);
        assert_eq!(c.cwnd(), 4);
        assert_eq!(c.poll_send(T0).len(), 4);
        let t = c.poll_timeout().unwrap();
        c.on_timeout(t).unwrap();
        assert_eq!(c.cwnd(), 1);
        // ssthresh = 2 now: slow start to 2, then congestion avoidance (+1 per cwnd acks)
        c.on_receive(t, 0, 4, true, &[]);
        assert_eq!(c.cwnd(), 2);
        c.on_receive(t, 0, 5, true, &[]);
        assert_eq!(c.cwnd(), 2);
        c.on_receive(t, 0, 6, true, &[]);
        assert_eq!(c.cwnd(), 3);
    }

    #[test]
    fn receive_in_order_out_of_order_and_duplicates() {
        let mut c = ControlChannel::new(params());
        assert_eq!(c.on_receive(T0, 1, 0, false, b"b"), RxVerdict::Queued);
        assert_eq!(c.on_receive(T0, 1, 0, false, b"b"), RxVerdict::Queued);
        assert_eq!(
            c.on_receive(T0, 0, 0, false, b"a"),
            RxVerdict::Deliver(vec![b"a".to_vec(), b"b".to_vec()])
        );
        assert_eq!(c.nr(), 2);
        assert_eq!(c.on_receive(T0, 0, 0, false, b"a"), RxVerdict::Duplicate);
        // duplicate requests an immediate ack
        assert!(c.take_ack(T0));
        assert!(!c.take_ack(T0));
        // beyond window 4
        assert_eq!(c.on_receive(T0, 6, 0, false, b"x"), RxVerdict::Dropped);
    }

    #[test]
    fn delayed_ack_and_piggyback() {
        let mut c = ControlChannel::new(params());
        c.on_receive(T0, 0, 0, false, b"a");
        assert!(!c.take_ack(T0));
        assert_eq!(c.poll_timeout(), Some(T0 + Duration::from_millis(100)));
        // a message going out piggybacks the ack
        c.send(msg(1));
        let out = c.poll_send(T0);
        assert_eq!(ul2tp_wire::control::ns_nr(&out[0]), Some((0, 1)));
        assert!(!c.take_ack(T0 + Duration::from_secs(1)));
    }

    #[test]
    fn sequence_numbers_wrap_past_65535() {
        // Two channels exchange 70,000 messages one way (acks the other way): every message is
        // delivered once, in order, across the modulo-2^16 wrap.
        let mut p = params();
        p.rx_window = 8;
        let mut a = ControlChannel::new(p);
        let mut b = ControlChannel::new(p);
        a.set_peer_window(8);
        let mut t = T0;
        let total = 70_000u32;
        let mut queued = 0u32;
        let mut delivered = 0u32;
        while delivered < total {
            while queued < total && a.unacked() < 32 {
                let mut m = msg(0);
                m.extend_from_slice(&queued.to_be_bytes());
                a.send(m);
                queued += 1;
            }
            for m in a.poll_send(t) {
                let (ns, nr) = ul2tp_wire::control::ns_nr(&m).unwrap();
                if let RxVerdict::Deliver(ms) = b.on_receive(t, ns, nr, false, &m) {
                    for d in ms {
                        let n = u32::from_be_bytes(d[13..17].try_into().unwrap());
                        assert_eq!(n, delivered);
                        delivered += 1;
                    }
                }
            }
            t += Duration::from_millis(200);
            if b.take_ack(t) {
                assert_eq!(
                    a.on_receive(t, b.next_ns(), b.nr(), true, &[]),
                    RxVerdict::AckOnly
                );
            }
        }
        assert_eq!(b.stats.delivered, u64::from(total));
        assert_eq!(b.nr(), (total % 65536) as u16);
        assert_eq!(a.unacked(), 0);
        assert_eq!(a.stats.retransmits, 0);
    }

    #[test]
    fn drop_unsent_rewinds_ns_and_keeps_what_was_sent() {
        let mut c = ControlChannel::new(params());
        for i in 0..3 {
            c.send(msg(i));
        }
        c.poll_send(T0);
        assert_eq!(c.on_receive(T0, 0, 1, true, &[]), RxVerdict::AckOnly);
        // cwnd 2: Ns 1 and 2 in flight; 40 more wait for the window.
        assert_eq!(c.poll_send(T0).len(), 2);
        for i in 0..40 {
            c.send(msg(i));
        }
        assert_eq!((c.next_ns(), c.ack_ns(), c.unacked()), (43, 3, 42));
        c.drop_unsent();
        assert_eq!((c.next_ns(), c.ack_ns(), c.unacked()), (3, 3, 2));
        // The next message (a StopCCN) gets Ns 3 and follows the two in flight.
        assert_eq!(c.send(msg(99)), 3);
        let t = c.poll_timeout().unwrap();
        let r = c
            .on_timeout(t)
            .expect("the oldest sent message is retransmitted");
        assert_eq!(ul2tp_wire::control::ns_nr(&r).map(|x| x.0), Some(1));
        assert_eq!(c.on_receive(t, 0, 3, true, &[]), RxVerdict::AckOnly);
        let out = c.poll_send(t);
        assert_eq!(out.len(), 1);
        assert_eq!(ul2tp_wire::control::ns_nr(&out[0]).map(|x| x.0), Some(3));
        assert_eq!(out[0].last(), Some(&99));
        assert!(c.is_acked(2) && !c.is_acked(3));
    }

    #[test]
    fn ack_ns_is_the_next_ns_on_the_wire() {
        let mut c = ControlChannel::new(params());
        assert_eq!(c.ack_ns(), 0);
        c.send(msg(0));
        c.send(msg(1));
        assert_eq!(c.ack_ns(), 0, "nothing sent yet");
        c.poll_send(T0);
        assert_eq!(
            (c.ack_ns(), c.next_ns()),
            (1, 2),
            "Ns 1 waits for the window"
        );
        c.on_receive(T0, 0, 1, true, &[]);
        c.poll_send(T0);
        assert_eq!(c.ack_ns(), 2);
    }

    #[test]
    fn nr_beyond_sent_is_invalid() {
        let mut c = ControlChannel::new(params());
        c.send(msg(1));
        c.send(msg(2));
        c.poll_send(T0); // only ns 0 sent (cwnd 1)
        assert_eq!(c.on_receive(T0, 0, 2, true, &[]), RxVerdict::InvalidNr);
        assert_eq!(c.unacked(), 2);
        assert_eq!(c.on_receive(T0, 0, 1, true, &[]), RxVerdict::AckOnly);
        assert_eq!(c.unacked(), 1);
    }
}
