//! Tunnels and sessions: identity, counters, sequence numbers, the reorder queue (docs/reference/kernel.md
//! §2) and transmit encapsulation (docs/reference/kernel.md §1.3–§1.8, §2.8).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use ul2tp_wire::Timestamp;

use ul2tp_api::Stats;
use ul2tp_wire::avp::PwType;
use ul2tp_wire::data::{DefaultSublayer, L2SpecType, V2DataHeader, V3SessionHeader};
use ul2tp_wire::ppp::ADDRESS_CONTROL;

use crate::registry::{DropReason, RxOutcome};
use crate::stats::{add, inc, AtomicStats};
use crate::trace::{TraceEvent, TraceSink};
use crate::{vlan, Cookie, Encap, SessionParams, TunnelParams, Version};

/// Out-of-sequence packets in a row before resynchronising (docs/reference/kernel.md §2.1).
const NR_OOS_COUNT_MAX: u32 = 4;

/// Most packets a session holds for reordering. The kernel has no cap (docs/reference/kernel.md §2.6,
/// §12.2 item 5); here a full queue drops its head as if it had expired, so memory stays
/// bounded and the outcome is the one the timeout would have produced, only earlier.
pub const MAX_REORDER_QUEUE: usize = 1024;

/// Shared by a registry and its objects: the trace sink.
#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) sink: RwLock<Option<TraceSink>>,
    pub(crate) trace_default: AtomicBool,
}

impl Shared {
    fn emit(&self, ev: TraceEvent) {
        let sink = match self.sink.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        if let Some(s) = sink {
            s(&ev);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// An L2TP tunnel.
pub struct Tunnel {
    params: TunnelParams,
    pub(crate) stats: AtomicStats,
    pub(crate) dead: AtomicBool,
    pub(crate) trace: AtomicBool,
    pub(crate) shared: Arc<Shared>,
}

impl core::fmt::Debug for Tunnel {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Tunnel")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl Tunnel {
    pub(crate) fn new(params: TunnelParams, shared: Arc<Shared>) -> Self {
        let trace = AtomicBool::new(shared.trace_default.load(Relaxed));
        Tunnel {
            params,
            stats: AtomicStats::default(),
            dead: AtomicBool::new(false),
            trace,
            shared,
        }
    }

    /// The creation parameters.
    pub fn params(&self) -> &TunnelParams {
        &self.params
    }

    /// Local tunnel id.
    pub fn tunnel_id(&self) -> u32 {
        self.params.tunnel_id
    }

    /// Peer tunnel id.
    pub fn peer_tunnel_id(&self) -> u32 {
        self.params.peer_tunnel_id
    }

    /// L2TP version.
    pub fn version(&self) -> Version {
        self.params.version
    }

    /// Encapsulation.
    pub fn encap(&self) -> Encap {
        self.params.encap
    }

    /// The tunnel's socket.
    pub fn socket(&self) -> crate::SocketId {
        self.params.socket
    }

    /// Counters (docs/reference/kernel.md §3.1).
    pub fn stats(&self) -> Stats {
        self.stats.snapshot()
    }

    /// True once deleted.
    pub fn is_dead(&self) -> bool {
        self.dead.load(Relaxed)
    }

    /// Trace object name: `"tunl <id>"`.
    pub fn name(&self) -> String {
        format!("tunl {}", self.params.tunnel_id)
    }

    /// Whether trace events are emitted for this tunnel.
    pub fn trace_enabled(&self) -> bool {
        self.trace.load(Relaxed)
    }

    pub(crate) fn trace(&self, f: impl FnOnce() -> TraceEvent) {
        if self.trace.load(Relaxed) {
            self.shared.emit(f());
        }
    }
}

/// A packet held in the reorder queue.
#[derive(Debug)]
struct Held {
    ns: u32,
    has_seq: bool,
    /// L2TP packet length for the counters.
    len: usize,
    expires: Timestamp,
    frame: Vec<u8>,
}

/// Receive-side sequence state (docs/reference/kernel.md §2.1).
#[derive(Debug)]
struct RxState {
    nr: u32,
    nr_oos: u32,
    nr_oos_count: u32,
    reorder_skip: bool,
    queue: VecDeque<Held>,
}

/// Frames released by the sequence logic, delivered after the state lock is dropped. The
/// packet being received is kept by reference (no copy, no allocation on the fast path);
/// frames released from the reorder queue are owned.
#[derive(Default)]
struct Released<'a> {
    current: Option<&'a [u8]>,
    held: Vec<Vec<u8>>,
}

/// An L2TP session.
pub struct Session {
    tunnel: Arc<Tunnel>,
    session_id: u32,
    peer_session_id: u32,
    pw_type: PwType,
    cookie: Cookie,
    peer_cookie: Cookie,
    l2spec_type: L2SpecType,
    ifname: Option<String>,
    vlan_id: Option<u16>,
    send_seq: AtomicBool,
    recv_seq: AtomicBool,
    lns_mode: AtomicBool,
    reorder_timeout_ms: AtomicU64,
    /// Next Ns to send.
    ns: AtomicU32,
    rx: Mutex<RxState>,
    pub(crate) stats: AtomicStats,
    pub(crate) dead: AtomicBool,
    pub(crate) trace: AtomicBool,
    /// Called when the reorder queue's head deadline appears or moves earlier
    /// ([`Session::set_reorder_waker`]).
    reorder_waker: Mutex<Option<Box<dyn Fn() + Send + Sync>>>,
}

impl core::fmt::Debug for Session {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Session")
            .field("tunnel_id", &self.tunnel.tunnel_id())
            .field("session_id", &self.session_id)
            .field("peer_session_id", &self.peer_session_id)
            .field("pw_type", &self.pw_type)
            .finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn new(tunnel: Arc<Tunnel>, p: SessionParams) -> Self {
        let trace = AtomicBool::new(tunnel.shared.trace_default.load(Relaxed));
        let v2 = tunnel.version() == Version::V2;
        Session {
            session_id: p.session_id,
            peer_session_id: p.peer_session_id,
            pw_type: p.pw_type,
            // docs/reference/kernel.md §1.6: v2 sessions never use cookies or the sublayer.
            cookie: if v2 { Cookie::default() } else { p.cookie },
            peer_cookie: if v2 { Cookie::default() } else { p.peer_cookie },
            l2spec_type: if v2 { L2SpecType::None } else { p.l2spec_type },
            ifname: p.ifname,
            vlan_id: p.vlan_id,
            send_seq: AtomicBool::new(p.send_seq),
            recv_seq: AtomicBool::new(p.recv_seq),
            lns_mode: AtomicBool::new(p.lns_mode),
            reorder_timeout_ms: AtomicU64::new(p.reorder_timeout_ms),
            ns: AtomicU32::new(0),
            // docs/reference/kernel.md §2.1: reorder_skip starts at 1 so the first packet defines nr.
            rx: Mutex::new(RxState {
                nr: 0,
                nr_oos: 0,
                nr_oos_count: 0,
                reorder_skip: true,
                queue: VecDeque::new(),
            }),
            stats: AtomicStats::default(),
            dead: AtomicBool::new(false),
            trace,
            reorder_waker: Mutex::new(None),
            tunnel,
        }
    }

    /// Install the function the receive path calls (after releasing the session's lock) when
    /// [`Session::next_timeout`] becomes `Some` or moves earlier: the data path arms its
    /// reorder timer from it and needs no timer at all while nothing is held. Replaces the
    /// previous one; returns whether there was one.
    pub fn set_reorder_waker(&self, f: impl Fn() + Send + Sync + 'static) -> bool {
        lock(&self.reorder_waker).replace(Box::new(f)).is_some()
    }

    /// The session's tunnel.
    pub fn tunnel(&self) -> &Arc<Tunnel> {
        &self.tunnel
    }

    /// Local tunnel id.
    pub fn tunnel_id(&self) -> u32 {
        self.tunnel.tunnel_id()
    }

    /// Peer tunnel id.
    pub fn peer_tunnel_id(&self) -> u32 {
        self.tunnel.peer_tunnel_id()
    }

    /// Local session id.
    pub fn session_id(&self) -> u32 {
        self.session_id
    }

    /// Peer session id.
    pub fn peer_session_id(&self) -> u32 {
        self.peer_session_id
    }

    /// Pseudowire type.
    pub fn pw_type(&self) -> PwType {
        self.pw_type
    }

    /// Pseudowire interface name.
    pub fn ifname(&self) -> Option<&str> {
        self.ifname.as_deref()
    }

    /// VLAN id of an ETH_VLAN session.
    pub fn vlan_id(&self) -> Option<u16> {
        self.vlan_id
    }

    /// Cookie we send.
    pub fn cookie(&self) -> Cookie {
        self.cookie
    }

    /// Cookie we expect.
    pub fn peer_cookie(&self) -> Cookie {
        self.peer_cookie
    }

    /// L2-specific sublayer type.
    pub fn l2spec_type(&self) -> L2SpecType {
        self.l2spec_type
    }

    /// Current send_seq (may be switched by the LAC logic, docs/reference/kernel.md §2.3).
    pub fn send_seq(&self) -> bool {
        self.send_seq.load(Relaxed)
    }

    /// recv_seq.
    pub fn recv_seq(&self) -> bool {
        self.recv_seq.load(Relaxed)
    }

    /// lns_mode.
    pub fn lns_mode(&self) -> bool {
        self.lns_mode.load(Relaxed)
    }

    /// Reorder timeout in milliseconds.
    pub fn reorder_timeout_ms(&self) -> u64 {
        self.reorder_timeout_ms.load(Relaxed)
    }

    /// A snapshot of the parameters with the current sequencing options.
    pub fn params(&self) -> SessionParams {
        SessionParams {
            session_id: self.session_id,
            peer_session_id: self.peer_session_id,
            pw_type: self.pw_type,
            cookie: self.cookie,
            peer_cookie: self.peer_cookie,
            l2spec_type: self.l2spec_type,
            send_seq: self.send_seq(),
            recv_seq: self.recv_seq(),
            lns_mode: self.lns_mode(),
            reorder_timeout_ms: self.reorder_timeout_ms(),
            ifname: self.ifname.clone(),
            vlan_id: self.vlan_id,
        }
    }

    /// Counters (docs/reference/kernel.md §3.1).
    pub fn stats(&self) -> Stats {
        self.stats.snapshot()
    }

    /// True once deleted.
    pub fn is_dead(&self) -> bool {
        self.dead.load(Relaxed)
    }

    /// Trace object name: `"sess <tid>/<sid>"`.
    pub fn name(&self) -> String {
        format!("sess {}/{}", self.tunnel_id(), self.session_id)
    }

    /// Whether trace events are emitted for this session.
    pub fn trace_enabled(&self) -> bool {
        self.trace.load(Relaxed)
    }

    /// (nr, ns): next Ns expected and next Ns to send.
    pub fn nr_ns(&self) -> (u32, u32) {
        (lock(&self.rx).nr, self.ns.load(Relaxed))
    }

    /// Number of packets held in the reorder queue.
    pub fn reorder_queue_len(&self) -> usize {
        lock(&self.rx).queue.len()
    }

    fn is_ppp(&self) -> bool {
        self.pw_type == PwType::Ppp
    }

    fn nr_max(&self) -> u32 {
        self.tunnel.version().nr_max()
    }

    fn trace(&self, f: impl FnOnce() -> TraceEvent) {
        if self.trace.load(Relaxed) {
            self.tunnel.shared.emit(f());
        }
    }

    /// Whether transmitted packets carry sequence numbers now: v3 needs the default sublayer
    /// for that (docs/reference/kernel.md §2.8).
    fn tx_seq(&self) -> bool {
        self.send_seq()
            && (self.tunnel.version() == Version::V2 || self.l2spec_type == L2SpecType::Default)
    }

    /// L2TP header length for the current options (docs/reference/kernel.md §1.8), without the PPP
    /// address/control bytes.
    pub fn hdr_len(&self) -> usize {
        match self.tunnel.version() {
            Version::V2 => {
                if self.send_seq() {
                    10
                } else {
                    6
                }
            }
            Version::V3 => {
                let udp = if self.tunnel.encap() == Encap::Udp {
                    4
                } else {
                    0
                };
                udp + 4 + self.cookie.len() + self.l2spec_type.len()
            }
        }
    }

    /// Bytes [`Session::encap`] puts in front of a frame: the L2TP header, FF 03 for PPP and
    /// the VLAN tag for ETH_VLAN.
    pub fn encap_overhead(&self) -> usize {
        self.hdr_len()
            + if self.is_ppp() { 2 } else { 0 }
            + if self.pw_type == PwType::EthernetVlan {
                4
            } else {
                0
            }
    }

    /// MTU of this session's Ethernet device (docs/reference/kernel.md §6.2); an ETH_VLAN session
    /// accounts for its tag as well.
    pub fn eth_mtu(&self, ipv6: bool, path_mtu: Option<u32>) -> u32 {
        let tag = if self.pw_type == PwType::EthernetVlan {
            4
        } else {
            0
        };
        crate::mtu::eth_mtu(self.tunnel.encap(), ipv6, self.hdr_len() + tag, path_mtu)
    }

    /// Change the options that SESSION_MODIFY may change (docs/reference/kernel.md §4.7); `None` leaves
    /// an option as it is.
    pub fn modify(
        &self,
        send_seq: Option<bool>,
        recv_seq: Option<bool>,
        lns_mode: Option<bool>,
        reorder_timeout_ms: Option<u64>,
    ) {
        if let Some(v) = send_seq {
            self.send_seq.store(v, Relaxed);
        }
        if let Some(v) = recv_seq {
            self.recv_seq.store(v, Relaxed);
        }
        if let Some(v) = lns_mode {
            self.lns_mode.store(v, Relaxed);
        }
        if let Some(v) = reorder_timeout_ms {
            self.reorder_timeout_ms.store(v, Relaxed);
        }
    }

    /// Next Ns to send, post-incremented modulo 2^16 / 2^24 (docs/reference/kernel.md §2.8).
    fn next_ns(&self) -> u32 {
        let max = self.nr_max();
        self.ns
            .fetch_update(Relaxed, Relaxed, |n| Some(n.wrapping_add(1) & max))
            .unwrap_or(0)
    }

    /// Write the L2TP header (UDP or IP form per the tunnel, plus FF 03 for PPP) into the end
    /// of `headroom`; returns its length, or `None` (and counts `tx_errors`) if it does not
    /// fit. Consumes an Ns when sequencing.
    pub fn encap_header(&self, headroom: &mut [u8]) -> Option<usize> {
        let hdr_len = self.hdr_len();
        let ac = if self.is_ppp() { 2 } else { 0 };
        let total = hdr_len + ac;
        let Some(start) = headroom.len().checked_sub(total) else {
            self.tx_error();
            return None;
        };
        let out = &mut headroom[start..];
        let written = match self.tunnel.version() {
            Version::V2 => {
                // docs/reference/kernel.md §1.3: ids truncated to 16 bits, Nr always 0, no L/O/P.
                let h = V2DataHeader {
                    tunnel_id: self.peer_tunnel_id() as u16,
                    session_id: self.peer_session_id as u16,
                    ns_nr: (hdr_len == 10).then(|| (self.next_ns() as u16, 0)),
                    ..V2DataHeader::default()
                };
                h.emit(out)
            }
            Version::V3 => {
                let sublayer = match self.l2spec_type {
                    L2SpecType::Default => Some(DefaultSublayer {
                        seq: self.tx_seq().then(|| self.next_ns()),
                    }),
                    _ => None,
                };
                let h = V3SessionHeader {
                    session_id: self.peer_session_id,
                    cookie: self.cookie.as_bytes(),
                    sublayer,
                };
                match self.tunnel.encap() {
                    Encap::Udp => h.emit_udp(out),
                    Encap::Ip => h.emit_ip(out),
                }
            }
        };
        match written {
            Ok(n) if n == hdr_len => {}
            _ => {
                self.tx_error();
                return None;
            }
        }
        if ac == 2 {
            out[hdr_len..].copy_from_slice(&ADDRESS_CONTROL);
        }
        Some(total)
    }

    /// Encapsulate the frame at `buf[headroom..headroom + len]` in place: tag it (ETH_VLAN),
    /// then write FF 03 (PPP) and the L2TP header in front. The frame is a whole Ethernet
    /// frame for ETH / ETH_VLAN, or the PPP protocol field + information for PPP. Returns the datagram's range
    /// `(start, end)` in `buf`, or `None` (counted as `tx_errors`) when it does not fit.
    pub fn encap(&self, buf: &mut [u8], headroom: usize, len: usize) -> Option<(usize, usize)> {
        let Some(end) = headroom.checked_add(len).filter(|e| *e <= buf.len()) else {
            self.tx_error();
            return None;
        };
        let mut start = headroom;
        if self.pw_type == PwType::EthernetVlan {
            let Some(s) = vlan::tag_in_place(buf, start, len, self.vlan_id.unwrap_or(0)) else {
                self.tx_error();
                return None;
            };
            start = s;
        }
        let n = self.encap_header(&mut buf[..start])?;
        Some((start - n, end))
    }

    /// Account a transmission of `l2tp_len` bytes (L2TP header + payload) on the session and
    /// its tunnel (docs/reference/kernel.md §3.1).
    pub fn tx_done(&self, l2tp_len: usize, ok: bool) {
        if ok {
            for s in [&self.stats, &self.tunnel.stats] {
                inc(&s.tx_packets);
                add(&s.tx_bytes, l2tp_len);
            }
        } else {
            self.tx_error();
        }
    }

    fn tx_error(&self) {
        inc(&self.stats.tx_errors);
        inc(&self.tunnel.stats.tx_errors);
    }

    fn seq_discard(&self) {
        inc(&self.stats.rx_seq_discards);
        inc(&self.stats.rx_errors);
    }

    /// Receive processing after the cookie check (docs/reference/kernel.md §2.3–§2.7): `frame` is the
    /// pseudowire payload, `len` the L2TP packet length for the counters.
    pub(crate) fn rx(
        self: &Arc<Self>,
        now: Timestamp,
        seq: Option<u32>,
        len: usize,
        frame: &[u8],
        deliver: &mut dyn FnMut(&Arc<Session>, &[u8]),
    ) -> RxOutcome {
        let mut out = Released::default();
        let (verdict, wake) = {
            let mut st = lock(&self.rx);
            let before = st.queue.front().map(|h| h.expires);
            let verdict = self.rx_locked(&mut st, now, seq, len, frame, &mut out);
            let after = st.queue.front().map(|h| h.expires);
            // The timer needs (re)arming only when a deadline appears or comes earlier.
            let wake = after.is_some_and(|a| before.is_none_or(|b| a < b));
            (verdict, wake)
        };
        if wake {
            if let Some(w) = lock(&self.reorder_waker).as_ref() {
                w();
            }
        }
        // Held frames released by this packet come before it only if it was queued behind
        // them; the fast path (current set) runs only with an empty queue.
        for f in &out.held {
            deliver(self, f);
        }
        if let Some(f) = out.current {
            deliver(self, f);
        }
        verdict
    }

    fn rx_locked<'a>(
        &self,
        st: &mut RxState,
        now: Timestamp,
        seq: Option<u32>,
        len: usize,
        frame: &'a [u8],
        out: &mut Released<'a>,
    ) -> RxOutcome {
        if self.is_dead() {
            return RxOutcome::Dropped(DropReason::SessionDead);
        }
        // docs/reference/kernel.md §2.3 decision table.
        let lns = self.lns_mode();
        match seq {
            Some(_) => {
                if !lns && !self.send_seq() {
                    self.send_seq.store(true, Relaxed);
                    self.trace(|| TraceEvent::SessionSeqnumLnsEnable { name: self.name() });
                }
            }
            None => {
                if self.recv_seq() {
                    self.seq_discard();
                    return RxOutcome::Dropped(DropReason::SeqRequired);
                }
                if !lns && self.send_seq() {
                    self.send_seq.store(false, Relaxed);
                    self.trace(|| TraceEvent::SessionSeqnumLnsDisable { name: self.name() });
                } else if self.send_seq() {
                    self.seq_discard();
                    return RxOutcome::Dropped(DropReason::SeqRequired);
                }
            }
        }
        let timeout = self.reorder_timeout_ms();
        let expires = now + Duration::from_millis(if timeout > 0 { timeout } else { 1000 });
        let held = |ns: u32| Held {
            ns,
            has_seq: seq.is_some(),
            len,
            expires,
            frame: frame.to_vec(),
        };
        if let Some(ns) = seq {
            // docs/reference/kernel.md §2.4: forward-only window.
            let max = self.nr_max();
            let dist = ns.wrapping_sub(st.nr) & max;
            if dist >= max / 2 {
                inc(&self.stats.rx_errors);
                self.trace(|| TraceEvent::SessionPktOutsideRxWindow {
                    name: self.name(),
                    pkt_ns: ns,
                    my_nr: st.nr,
                    reorder_q_len: st.queue.len(),
                });
                return RxOutcome::Dropped(DropReason::OutsideWindow);
            }
            if timeout > 0 {
                // docs/reference/kernel.md §2.6: numeric insertion before the first greater ns.
                if let Some(pos) = st.queue.iter().position(|h| h.ns > ns) {
                    inc(&self.stats.rx_oos_packets);
                    let pos = pos.saturating_sub(self.make_room(st));
                    st.queue.insert(pos, held(ns));
                    self.dequeue(st, now, out);
                    return RxOutcome::Consumed;
                }
            } else if ns != st.nr {
                // docs/reference/kernel.md §2.5: in-order mode, out of sequence.
                if ns == (st.nr_oos.wrapping_add(1) & max) {
                    st.nr_oos_count += 1;
                } else {
                    st.nr_oos_count = 0;
                }
                st.nr_oos = ns;
                if st.nr_oos_count > NR_OOS_COUNT_MAX {
                    st.reorder_skip = true;
                }
                if !st.reorder_skip {
                    self.seq_discard();
                    self.trace(|| TraceEvent::SessionPktOos {
                        name: self.name(),
                        pkt_ns: ns,
                        my_nr: st.nr,
                        reorder_q_len: st.queue.len(),
                    });
                    return RxOutcome::Dropped(DropReason::OutOfSequence);
                }
            }
        }
        // Append at the tail. Fast path: with an empty queue the packet is the head, and the
        // dequeue step (docs/reference/kernel.md §2.7) either delivers it at once (no copy) or holds it.
        if st.queue.is_empty() {
            if let Some(ns) = seq {
                if st.reorder_skip {
                    self.reset_nr(st, ns);
                }
                if ns != st.nr {
                    st.queue.push_back(held(ns));
                    return RxOutcome::Consumed;
                }
            }
            self.count_delivery(st, seq.is_some(), len);
            out.current = Some(frame);
            return RxOutcome::Consumed;
        }
        self.make_room(st);
        st.queue.push_back(held(seq.unwrap_or(0)));
        self.dequeue(st, now, out);
        RxOutcome::Consumed
    }

    /// Drop heads (counted like expiries) until one more packet fits; returns how many.
    fn make_room(&self, st: &mut RxState) -> usize {
        let mut n = 0;
        while st.queue.len() >= MAX_REORDER_QUEUE {
            let Some(h) = st.queue.pop_front() else {
                break;
            };
            self.seq_discard();
            st.reorder_skip = true;
            self.trace(|| TraceEvent::SessionPktExpired {
                name: self.name(),
                pkt_ns: h.ns,
                my_nr: st.nr,
                reorder_q_len: st.queue.len(),
            });
            n += 1;
        }
        n
    }

    fn reset_nr(&self, st: &mut RxState, ns: u32) {
        st.reorder_skip = false;
        st.nr = ns;
        self.trace(|| TraceEvent::SessionSeqnumReset {
            name: self.name(),
            ns: self.ns.load(Relaxed),
            nr: st.nr,
        });
    }

    fn count_delivery(&self, st: &mut RxState, has_seq: bool, len: usize) {
        for s in [&self.stats, &self.tunnel.stats] {
            inc(&s.rx_packets);
            add(&s.rx_bytes, len);
        }
        if has_seq {
            st.nr = st.nr.wrapping_add(1) & self.nr_max();
            self.trace(|| TraceEvent::SessionSeqnumUpdate {
                name: self.name(),
                ns: self.ns.load(Relaxed),
                nr: st.nr,
            });
        }
    }

    /// The dequeue step (docs/reference/kernel.md §2.7): drop expired heads, resync after a skip,
    /// release in-sequence packets.
    fn dequeue(&self, st: &mut RxState, now: Timestamp, out: &mut Released<'_>) {
        while let Some(head) = st.queue.front() {
            if now >= head.expires {
                let ns = head.ns;
                st.queue.pop_front();
                self.seq_discard();
                st.reorder_skip = true;
                self.trace(|| TraceEvent::SessionPktExpired {
                    name: self.name(),
                    pkt_ns: ns,
                    my_nr: st.nr,
                    reorder_q_len: st.queue.len(),
                });
                continue;
            }
            if head.has_seq {
                let ns = head.ns;
                if st.reorder_skip {
                    self.reset_nr(st, ns);
                }
                if ns != st.nr {
                    return;
                }
            }
            let Some(h) = st.queue.pop_front() else {
                return;
            };
            self.count_delivery(st, h.has_seq, h.len);
            out.held.push(h.frame);
        }
    }

    /// Timer-driven dequeue (a difference from the kernel, see the crate docs): drops expired
    /// held packets and releases what follows them in sequence.
    pub fn poll_reorder(
        self: &Arc<Self>,
        now: Timestamp,
        deliver: &mut dyn FnMut(&Arc<Session>, &[u8]),
    ) {
        let mut out = Released::default();
        {
            let mut st = lock(&self.rx);
            if !self.is_dead() {
                self.dequeue(&mut st, now, &mut out);
            }
        }
        for f in &out.held {
            deliver(self, f);
        }
    }

    /// When [`Session::poll_reorder`] next has something to do: the head's expiry time.
    pub fn next_timeout(&self) -> Option<Timestamp> {
        lock(&self.rx).queue.front().map(|h| h.expires)
    }

    /// Drop every held packet, counting each as `rx_errors` (docs/reference/kernel.md §5.4); returns how
    /// many were purged.
    pub(crate) fn purge(&self) -> usize {
        let mut st = lock(&self.rx);
        let n = st.queue.len();
        st.queue.clear();
        add(&self.stats.rx_errors, n);
        n
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        if self.trace.load(Relaxed) {
            self.shared
                .emit(TraceEvent::FreeTunnel { name: self.name() });
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.trace.load(Relaxed) {
            self.tunnel
                .shared
                .emit(TraceEvent::FreeSession { name: self.name() });
        }
    }
}

impl Session {
    /// Count a frame the pseudowire could not take (e.g. a full PPP socket queue) as
    /// `rx_errors` (docs/reference/kernel.md §3.1).
    pub fn count_rx_error(&self) {
        inc(&self.stats.rx_errors);
    }
}
