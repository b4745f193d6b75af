//! The registry: one network namespace's tunnels and sessions, the id rules and the receive
//! path (docs/reference/kernel.md §1.2–§1.7, §4.5–§4.7, §5).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard};
use ul2tp_wire::Timestamp;

use crate::sharded::ShardedMap;
use ul2tp_api::{pw_type, Errno};
use ul2tp_wire::avp::PwType;
use ul2tp_wire::data::{
    classify_ip, classify_udp, IpClass, UdpClass, V2DataHeader, V3SessionHeader, WireError,
};
use ul2tp_wire::ppp::strip_address_control;

use crate::session::Shared;
use crate::stats::inc;
use crate::trace::{TraceEvent, TraceSink};
use crate::{vlan, Encap, Session, SessionParams, SocketId, Tunnel, TunnelParams, Version};

/// What happened to a received datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxOutcome {
    /// Taken by a session: delivered to the pseudowire or held for reordering.
    Consumed,
    /// Not for the data path: leave it to the socket's owner (control messages, short
    /// packets, unknown sessions, version mismatches — docs/reference/kernel.md §1.2).
    ToSocket,
    /// Discarded (counted where the kernel counts).
    Dropped(DropReason),
}

/// Why a datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Header fields missing or inconsistent (v2 offset overrun, IP-encap truncation).
    Malformed,
    /// IP encap: no session with that id (silently dropped, docs/reference/kernel.md §1.2).
    UnknownSession,
    /// Cookie mismatch (`rx_cookie_discards`).
    CookieMismatch,
    /// recv_seq set but no sequence number, or an LNS got an unsequenced packet (§2.3).
    SeqRequired,
    /// Sequence number outside the receive window (§2.4).
    OutsideWindow,
    /// Out of sequence in in-order mode (§2.5).
    OutOfSequence,
    /// ETH_VLAN frame without the session's tag.
    VlanMismatch,
    /// The session was being deleted.
    SessionDead,
}

/// The control side's view: every object in dump order and by interface name. Only the
/// control side (create, delete, lookups by id, dumps) reads it, under the registry's mutex;
/// an update changes one entry (O(log n)), nothing is copied.
#[derive(Default)]
struct Index {
    limits: Limits,
    /// Sessions per tunnel (for [`Limits::max_sessions_per_tunnel`]).
    per_tunnel: HashMap<u32, usize>,
    tunnels: BTreeMap<u32, Arc<Tunnel>>,
    /// All sessions in dump order (docs/reference/kernel.md §4.8): ascending tunnel id, then session id.
    sessions: BTreeMap<(u32, u32), Arc<Session>>,
    by_ifname: HashMap<String, Arc<Session>>,
}

/// Caps on the number of objects of a [`Registry`] (beyond the kernel, which has none):
/// creating one more is `ENOSPC`. `None` = no cap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Tunnels in all.
    pub max_tunnels: Option<usize>,
    /// Sessions in all.
    pub max_sessions: Option<usize>,
    /// Sessions in one tunnel.
    pub max_sessions_per_tunnel: Option<usize>,
}

/// Collided L2TPv3 ids are rare and tiny lists: a change replaces the list.
type V3List = Arc<[Arc<Session>]>;

fn v2_key(tunnel_id: u32, session_id: u32) -> u32 {
    ((tunnel_id & 0xffff) << 16) | (session_id & 0xffff)
}

/// One network namespace worth of L2TP state. `Send + Sync`; `receive` may run on several
/// threads at once.
///
/// The receive lookups are sharded hash maps ([`ShardedMap`]: a read lock on one shard of
/// 64, a write touches one entry) rather than a snapshot copied on every change, so that creating or deleting a
/// session costs the same with 10 or 100,000 sessions (docs/PERFORMANCE.md, "Session
/// tables"). Writers serialise on the index mutex, so the maps and the index change together
/// as far as any writer can tell; a reader may see a session in one map a moment before the
/// other, which is harmless (a dead session drops its packets).
pub struct Registry {
    index: Mutex<Index>,
    /// v2 sessions by (tunnel id << 16 | session id), 16-bit halves (§5.2).
    v2: ShardedMap<u32, Arc<Session>>,
    /// v3 sessions by session id; more than one entry only for UDP collisions (§5.2).
    v3: ShardedMap<u32, V3List>,
    shared: Arc<Shared>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for Registry {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut d = f.debug_struct("Registry");
        if let Ok(t) = self.index.try_lock() {
            d.field("tunnels", &t.tunnels.len())
                .field("sessions", &t.sessions.len());
        }
        d.finish_non_exhaustive()
    }
}

impl Registry {
    /// An empty namespace.
    pub fn new() -> Self {
        Registry {
            index: Mutex::new(Index::default()),
            v2: ShardedMap::new(),
            v3: ShardedMap::new(),
            shared: Arc::new(Shared::default()),
        }
    }

    fn write(&self) -> MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Create a tunnel; EEXIST if the id is taken (docs/reference/kernel.md §5.1). Beyond the kernel:
    /// L2TPv2 needs UDP (EPROTONOSUPPORT) and 16-bit ids (EINVAL), §12.2 item 3.
    pub fn tunnel_create(&self, p: TunnelParams) -> Result<Arc<Tunnel>, Errno> {
        if p.version == Version::V2 {
            if p.encap != Encap::Udp {
                return Err(Errno::EPROTONOSUPPORT);
            }
            if p.tunnel_id > 0xffff || p.peer_tunnel_id > 0xffff {
                return Err(Errno::EINVAL);
            }
        }
        let mut ix = self.write();
        if ix.tunnels.contains_key(&p.tunnel_id) {
            return Err(Errno::EEXIST);
        }
        if ix.limits.max_tunnels.is_some_and(|m| ix.tunnels.len() >= m) {
            return Err(Errno::ENOSPC);
        }
        let t = Arc::new(Tunnel::new(p, self.shared.clone()));
        ix.tunnels.insert(t.tunnel_id(), t.clone());
        drop(ix);
        t.trace(|| TraceEvent::RegisterTunnel {
            name: t.name(),
            fd: 0,
            tid: t.tunnel_id(),
            ptid: t.peer_tunnel_id(),
            version: t.version(),
            encap: t.encap(),
        });
        Ok(t)
    }

    /// The tunnel with this id.
    pub fn tunnel_get(&self, tunnel_id: u32) -> Option<Arc<Tunnel>> {
        self.write().tunnels.get(&tunnel_id).cloned()
    }

    /// All tunnels, ascending id (docs/reference/kernel.md §4.8).
    pub fn tunnels(&self) -> Vec<Arc<Tunnel>> {
        self.write().tunnels.values().cloned().collect()
    }

    /// Delete a tunnel and all its sessions (docs/reference/kernel.md §5.4); ENODEV if unknown. Returns
    /// the deleted sessions (ascending id); their held packets were purged and counted.
    pub fn tunnel_delete(&self, tunnel_id: u32) -> Result<Vec<Arc<Session>>, Errno> {
        let mut ix = self.write();
        let Some(t) = ix.tunnels.remove(&tunnel_id) else {
            return Err(Errno::ENODEV);
        };
        t.dead.store(true, Relaxed);
        t.trace(|| TraceEvent::DeleteTunnel { name: t.name() });
        let doomed: Vec<Arc<Session>> = ix
            .sessions
            .range((tunnel_id, 0)..=(tunnel_id, u32::MAX))
            .map(|(_, s)| s.clone())
            .collect();
        for s in &doomed {
            self.unpublish(&mut ix, s);
        }
        drop(ix);
        for s in &doomed {
            finish_delete(s);
        }
        Ok(doomed)
    }

    /// Tunnels registered on a socket, ascending id.
    pub fn tunnels_on_socket(&self, sock: SocketId) -> Vec<Arc<Tunnel>> {
        self.write()
            .tunnels
            .values()
            .filter(|t| t.socket() == sock)
            .cloned()
            .collect()
    }

    /// The socket was closed: delete every tunnel on it with its sessions (docs/reference/kernel.md
    /// §5.4). Returns the deleted tunnels' ids and sessions.
    pub fn socket_closed(&self, sock: SocketId) -> Vec<(u32, Vec<Arc<Session>>)> {
        self.tunnels_on_socket(sock)
            .into_iter()
            .filter_map(|t| {
                let id = t.tunnel_id();
                self.tunnel_delete(id).ok().map(|s| (id, s))
            })
            .collect()
    }

    /// Create a session in a tunnel, with the checks and errnos of docs/reference/kernel.md §4.6 in that
    /// order and the id rules of §5.2.
    pub fn session_create(&self, tunnel_id: u32, p: SessionParams) -> Result<Arc<Session>, Errno> {
        let mut ix = self.write();
        let Some(tunnel) = ix.tunnels.get(&tunnel_id).cloned() else {
            return Err(Errno::ENODEV);
        };
        let v2 = tunnel.version() == Version::V2;
        // 1. pw_type range.
        if u16::from(p.pw_type) >= pw_type::MAX {
            return Err(Errno::EINVAL);
        }
        // 2. v2 carries PPP only.
        if v2 && p.pw_type != PwType::Ppp {
            return Err(Errno::EPROTONOSUPPORT);
        }
        // 3. (cookies are typed; v2 ignores cookie and l2spec.) Beyond the kernel: v2 ids are
        // 16-bit, and a v3 sublayer the data path cannot carry (anything but none and default,
        // which the kernel would silently treat as none) is refused.
        if v2 && (p.session_id > 0xffff || p.peer_session_id > 0xffff) {
            return Err(Errno::EINVAL);
        }
        if !v2 && !p.l2spec_type.is_supported() {
            return Err(Errno::EINVAL);
        }
        // 5. Implemented pseudowires: ETH, PPP and (beyond the kernel) ETH_VLAN.
        match p.pw_type {
            PwType::Ethernet | PwType::Ppp => {}
            PwType::EthernetVlan => {
                if !p.vlan_id.is_some_and(|v| (1..=4094).contains(&v)) {
                    return Err(Errno::EINVAL);
                }
            }
            _ => return Err(Errno::EPROTONOSUPPORT),
        }
        // 6. Registration.
        if tunnel.is_dead() {
            return Err(Errno::ENODEV);
        }
        if v2 {
            if self.v2.contains_key(&v2_key(tunnel_id, p.session_id)) {
                return Err(Errno::EEXIST);
            }
        } else if let Some(list) = self.v3.get(&p.session_id) {
            // §5.2: unique netns-wide when IP encap is involved; UDP tunnels may share an id,
            // but not within one tunnel. Beyond the kernel: nor between tunnels on one socket,
            // so that the receive lookup stays unambiguous.
            let clash = tunnel.encap() == Encap::Ip
                || list.iter().any(|o| {
                    o.tunnel().encap() == Encap::Ip
                        || o.tunnel_id() == tunnel_id
                        || o.tunnel().socket() == tunnel.socket()
                });
            if clash {
                return Err(Errno::EEXIST);
            }
        }
        if let Some(n) = &p.ifname {
            if ix.by_ifname.contains_key(n) {
                return Err(Errno::EEXIST);
            }
        }
        let in_tunnel = ix.per_tunnel.get(&tunnel_id).copied().unwrap_or(0);
        if ix
            .limits
            .max_sessions
            .is_some_and(|m| ix.sessions.len() >= m)
            || ix
                .limits
                .max_sessions_per_tunnel
                .is_some_and(|m| in_tunnel >= m)
        {
            return Err(Errno::ENOSPC);
        }
        let s = Arc::new(Session::new(tunnel.clone(), p));
        ix.sessions.insert((tunnel_id, s.session_id()), s.clone());
        *ix.per_tunnel.entry(tunnel_id).or_default() += 1;
        if let Some(n) = s.ifname() {
            ix.by_ifname.insert(n.to_string(), s.clone());
        }
        if v2 {
            self.v2.insert(v2_key(tunnel_id, s.session_id()), s.clone());
        } else {
            self.v3.update(s.session_id(), |old| {
                Some(match old {
                    Some(old) => old.iter().cloned().chain([s.clone()]).collect(),
                    None => Arc::from([s.clone()]),
                })
            });
        }
        drop(ix);
        s_trace(&s, || TraceEvent::RegisterSession {
            name: s.name(),
            tid: s.tunnel_id(),
            ptid: s.peer_tunnel_id(),
            sid: s.session_id(),
            psid: s.peer_session_id(),
            pwtype: u16::from(s.pw_type()),
        });
        Ok(s)
    }

    /// The session (tunnel id, session id).
    pub fn session_get(&self, tunnel_id: u32, session_id: u32) -> Option<Arc<Session>> {
        self.write().sessions.get(&(tunnel_id, session_id)).cloned()
    }

    /// The session whose pseudowire interface has this name.
    pub fn session_by_ifname(&self, ifname: &str) -> Option<Arc<Session>> {
        self.write().by_ifname.get(ifname).cloned()
    }

    /// Sessions of one tunnel, ascending id.
    pub fn tunnel_sessions(&self, tunnel_id: u32) -> Vec<Arc<Session>> {
        self.write()
            .sessions
            .range((tunnel_id, 0)..=(tunnel_id, u32::MAX))
            .map(|(_, s)| s.clone())
            .collect()
    }

    /// All sessions in dump order (docs/reference/kernel.md §4.8).
    pub fn sessions(&self) -> Vec<Arc<Session>> {
        self.write().sessions.values().cloned().collect()
    }

    /// Delete a session (docs/reference/kernel.md §5.4); ENODEV if unknown. Held packets are purged and
    /// counted as `rx_errors`.
    pub fn session_delete(&self, tunnel_id: u32, session_id: u32) -> Result<Arc<Session>, Errno> {
        let mut ix = self.write();
        let Some(s) = ix.sessions.get(&(tunnel_id, session_id)).cloned() else {
            return Err(Errno::ENODEV);
        };
        self.unpublish(&mut ix, &s);
        drop(ix);
        finish_delete(&s);
        Ok(s)
    }

    /// Take a session out of the index and the receive maps (the caller holds the index).
    fn unpublish(&self, ix: &mut Index, s: &Arc<Session>) {
        if ix
            .sessions
            .remove(&(s.tunnel_id(), s.session_id()))
            .is_some()
        {
            if let Some(n) = ix.per_tunnel.get_mut(&s.tunnel_id()) {
                *n -= 1;
                if *n == 0 {
                    ix.per_tunnel.remove(&s.tunnel_id());
                }
            }
        }
        match s.tunnel().version() {
            Version::V2 => {
                self.v2.remove(&v2_key(s.tunnel_id(), s.session_id()));
            }
            Version::V3 => {
                self.v3.update(s.session_id(), |list| {
                    let rest: V3List = list?
                        .iter()
                        .filter(|o| !Arc::ptr_eq(o, s))
                        .cloned()
                        .collect();
                    (!rest.is_empty()).then_some(rest)
                });
            }
        }
        if let Some(n) = s.ifname() {
            if ix.by_ifname.get(n).is_some_and(|o| Arc::ptr_eq(o, s)) {
                ix.by_ifname.remove(n);
            }
        }
    }

    /// Set the caps on the number of tunnels and sessions. Objects beyond new, lower caps stay;
    /// only creating more is refused.
    pub fn set_limits(&self, limits: Limits) {
        self.write().limits = limits;
    }

    /// The caps in force.
    pub fn limits(&self) -> Limits {
        self.write().limits
    }

    /// How many sessions exist (all tunnels).
    pub fn session_count(&self) -> usize {
        self.write().sessions.len()
    }

    /// Install (or remove) the trace sink.
    pub fn set_trace_sink(&self, sink: Option<TraceSink>) {
        match self.shared.sink.write() {
            Ok(mut g) => *g = sink,
            Err(p) => *p.into_inner() = sink,
        }
    }

    /// Whether objects created from now on trace (off by default).
    pub fn set_trace_default(&self, on: bool) {
        self.shared.trace_default.store(on, Relaxed);
    }

    /// Switch tracing for a tunnel (`session_id` None) or a session; ENODEV if unknown.
    pub fn set_trace(
        &self,
        tunnel_id: u32,
        session_id: Option<u32>,
        on: bool,
    ) -> Result<(), Errno> {
        match session_id {
            None => {
                let t = self.tunnel_get(tunnel_id).ok_or(Errno::ENODEV)?;
                t.trace.store(on, Relaxed);
            }
            Some(sid) => {
                let s = self.session_get(tunnel_id, sid).ok_or(Errno::ENODEV)?;
                s.trace.store(on, Relaxed);
            }
        }
        Ok(())
    }

    /// The receive path: a datagram arrived on socket `sock` (`payload` = UDP payload, or
    /// the IP-protocol-115 payload without the IP header). Frames accepted for a session are
    /// passed to `deliver` (possibly later ones released from the reorder queue too).
    pub fn receive(
        &self,
        sock: SocketId,
        transport: Encap,
        payload: &[u8],
        now: Timestamp,
        deliver: &mut dyn FnMut(&Arc<Session>, &[u8]),
    ) -> RxOutcome {
        match transport {
            Encap::Udp => match classify_udp(payload) {
                UdpClass::Control | UdpClass::Short => RxOutcome::ToSocket,
                UdpClass::DataV2 {
                    tunnel_id,
                    session_id,
                } => {
                    // §5.3: v2 lookup by the header's ids across all v2 tunnels.
                    let key = v2_key(u32::from(tunnel_id), u32::from(session_id));
                    let Some(s) = self.v2.get(&key) else {
                        return RxOutcome::ToSocket;
                    };
                    let s = &s;
                    match V2DataHeader::parse(payload) {
                        Ok((h, off)) => {
                            let seq = h.ns_nr.map(|(ns, _)| u32::from(ns));
                            rx_common(s, now, seq, payload, off, deliver)
                        }
                        Err(_) => {
                            // §1.3: offset overrun is a session discard.
                            inc(&s.stats.rx_errors);
                            RxOutcome::Dropped(DropReason::Malformed)
                        }
                    }
                }
                UdpClass::DataV3 {
                    session_id,
                    version,
                } => {
                    let Some(s) = lookup_v3_udp(&self.v3, session_id, sock) else {
                        return RxOutcome::ToSocket;
                    };
                    let s = &s;
                    // §5.3: version nibble must match the session's tunnel.
                    if version != s.tunnel().version().as_u8() {
                        inc(&s.tunnel().stats.rx_invalid);
                        return RxOutcome::ToSocket;
                    }
                    match V3SessionHeader::parse_udp(
                        payload,
                        s.peer_cookie().len(),
                        s.l2spec_type(),
                    ) {
                        Ok((h, off)) => v3_rx(s, now, &h, payload, off, deliver),
                        Err(WireError::Truncated) => {
                            // §1.2: cookie / sublayer missing ⇒ rx_invalid, to the socket.
                            inc(&s.tunnel().stats.rx_invalid);
                            RxOutcome::ToSocket
                        }
                        Err(_) => RxOutcome::ToSocket,
                    }
                }
            },
            Encap::Ip => match classify_ip(payload) {
                IpClass::Control { .. } => RxOutcome::ToSocket,
                IpClass::Malformed(_) => RxOutcome::Dropped(DropReason::Malformed),
                IpClass::Data { session_id } => {
                    // §5.3: by session id, collided ids never match.
                    let list = self.v3.get(&session_id);
                    let s = match list.as_deref() {
                        Some([s]) => s,
                        _ => return RxOutcome::Dropped(DropReason::UnknownSession),
                    };
                    match V3SessionHeader::parse_ip(payload, s.peer_cookie().len(), s.l2spec_type())
                    {
                        Ok((h, off)) => v3_rx(s, now, &h, payload, off, deliver),
                        Err(_) => RxOutcome::Dropped(DropReason::Malformed),
                    }
                }
            },
        }
    }
}

fn s_trace(s: &Session, f: impl FnOnce() -> TraceEvent) {
    if s.trace_enabled() {
        if let Ok(g) = s.tunnel().shared.sink.read() {
            if let Some(sink) = g.as_ref() {
                sink(&f());
            }
        }
    }
}

fn finish_delete(s: &Arc<Session>) {
    s.dead.store(true, Relaxed);
    s_trace(s, || TraceEvent::DeleteSession { name: s.name() });
    s.purge();
}

fn lookup_v3_udp(
    v3: &ShardedMap<u32, V3List>,
    session_id: u32,
    sock: SocketId,
) -> Option<Arc<Session>> {
    match &v3.get(&session_id)?[..] {
        [] => None,
        [one] => Some(one.clone()),
        many => many.iter().find(|s| s.tunnel().socket() == sock).cloned(),
    }
}

fn v3_rx(
    s: &Arc<Session>,
    now: Timestamp,
    h: &V3SessionHeader<'_>,
    payload: &[u8],
    off: usize,
    deliver: &mut dyn FnMut(&Arc<Session>, &[u8]),
) -> RxOutcome {
    // §1.6: the cookie must equal peer_cookie.
    if h.cookie != s.peer_cookie().as_bytes() {
        inc(&s.stats.rx_cookie_discards);
        inc(&s.stats.rx_errors);
        return RxOutcome::Dropped(DropReason::CookieMismatch);
    }
    let seq = h.sublayer.and_then(|l| l.seq);
    rx_common(s, now, seq, payload, off, deliver)
}

fn rx_common(
    s: &Arc<Session>,
    now: Timestamp,
    seq: Option<u32>,
    payload: &[u8],
    off: usize,
    deliver: &mut dyn FnMut(&Arc<Session>, &[u8]),
) -> RxOutcome {
    let frame = payload.get(off..).unwrap_or(&[]);
    match s.pw_type() {
        // §1.7: FF 03 stripped if present.
        PwType::Ppp => s.rx(
            now,
            seq,
            payload.len(),
            strip_address_control(frame),
            deliver,
        ),
        PwType::EthernetVlan => {
            let mut untagged = Vec::new();
            if !vlan::untag_into(frame, s.vlan_id().unwrap_or(0), &mut untagged) {
                inc(&s.stats.rx_errors);
                return RxOutcome::Dropped(DropReason::VlanMismatch);
            }
            s.rx(now, seq, payload.len(), &untagged, deliver)
        }
        _ => s.rx(now, seq, payload.len(), frame, deliver),
    }
}
