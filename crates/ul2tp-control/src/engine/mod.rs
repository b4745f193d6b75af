//! The [`Endpoint`]: the public `handle_*` / `poll_*` / command API, and the demultiplexing of
//! datagrams to the tunnels of one local address.
//!
//! The parts, one per file:
//! * `config`: [`Config`], [`SessionConfig`], [`CallType`], [`DigestAlg`] and the checks
//!   that every value fits in an AVP.
//! * `event`: what the engine reports ([`Event`], [`DownReason`], [`TunnelInfo`],
//!   [`SessionInfo`]).
//! * `stats`: [`EndpointStats`] and [`TunnelStats`].
//! * `error`: why a command was refused ([`Error`]).
//! * `tunnel`: the control-connection state machine (docs/reference/rfc.md §1.12, §2.10).
//! * `session`: the session state machines (docs/reference/rfc.md §1.13, §2.10).
//! * `message`: building and reading control messages over `ul2tp-wire`, AVP hiding.
//!
//! Every message goes through the tunnel's [`ControlChannel`]; the state machines only ever see
//! messages in sequence order and exactly once.

mod config;
mod error;
mod event;
mod message;
mod session;
mod stats;
mod tunnel;

pub use config::{CallType, Config, DigestAlg, SessionConfig};
pub use error::Error;
pub use event::{DownReason, Event, SessionInfo, TunnelInfo};
pub use stats::{EndpointStats, MessageCounts, MessageStats, TunnelStats};

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use ul2tp_wire::avp::{
    AttrType, AvpIter, AvpValue, CallErrors, CdnResult, ErrorCode, L2SpecType, MessageType,
    PppDisconnectCause, PwType, StopCcnResult, VENDOR_IETF,
};
use ul2tp_wire::control::{ControlHeader, Encap, Version, HEADER_LEN};
use ul2tp_wire::digest::{self, Nonces};

use crate::channel::{ControlChannel, RxVerdict};
use crate::Timestamp;
use message::{build_ack, new_msg, parse, peer_tunnel_id, queue, Draft};
use session::{
    clear_session, connects_acked, send_cdn, send_session_msg, start_session, SState, Session,
};
use tunnel::{
    dispatch, down_all, hello_jitter, info_of, send_sccrx, stop_tunnel, Refusal, TState, Tunnel,
};

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub dst: SocketAddr,
    /// Bytes from the flags word (UDP) or from the 4 zero octets (L2TPv3/IP).
    pub bytes: Vec<u8>,
    /// The transport to send it on (the tunnel's).
    pub encap: Encap,
}

/// Tunnel ids in use outside the engine (static tunnels, application-managed tunnels): the
/// engine never allocates an id for which the predicate is true. The caller answers from its
/// own tables; the engine only asks.
pub type TunnelIdInUse = std::sync::Arc<dyn Fn(u32) -> bool + Send + Sync>;

/// [`TunnelIdInUse`], printable.
#[derive(Clone, Default)]
struct ForeignIds(Option<TunnelIdInUse>);

impl std::fmt::Debug for ForeignIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Some(..)" } else { "None" })
    }
}

/// The control-protocol engine for one local address: owns all tunnels and sessions.
#[derive(Debug)]
pub struct Endpoint {
    cfg: Config,
    /// The transport of [`handle_datagram`](Endpoint::handle_datagram) and
    /// [`connect`](Endpoint::connect); the `_via` variants name another.
    encap: Encap,
    /// Ids taken by tunnels the engine does not own.
    foreign_ids: ForeignIds,
    sh: Shared,
    tunnels: BTreeMap<u32, Tunnel>,
    by_peer: HashMap<(SocketAddr, u32), u32>,
    /// Reverse of `by_peer`: tunnel id -> its key there.
    peer_key: HashMap<u32, (SocketAddr, u32)>,
    /// Tunnels we opened, by peer IP (the tie-break candidates).
    initiated: HashMap<IpAddr, Vec<u32>>,
    /// Half-open tunnels (SCCRQ received, SCCCN not yet) and their source.
    half_open: HashMap<u32, IpAddr>,
    half_open_per_ip: HashMap<IpAddr, usize>,
    /// New-tunnel token buckets per source IP: (tokens in millionths, last refill).
    buckets: HashMap<IpAddr, (u64, Timestamp)>,
    /// No pruning of a full `buckets` table before this time (a prune walks the table).
    bucket_prune_after: Timestamp,
    /// Timer index: every tunnel's next deadline, ordered.
    timers: BTreeSet<(Timestamp, u32)>,
    deadline: HashMap<u32, Timestamp>,
    transmits: VecDeque<Transmit>,
    stats: EndpointStats,
    messages: MessageStats,
    selector: Option<Selector>,
}

/// What an SCCRQ tells about the peer before a tunnel exists: what a [`Selector`] chooses by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelRequest<'a> {
    /// Where the SCCRQ came from.
    pub peer: SocketAddr,
    /// Its protocol version.
    pub version: Version,
    /// Its Host Name AVP.
    pub host_name: &'a [u8],
}

/// Chooses the configuration of a tunnel a peer opens (the daemon's profiles); `None` refuses
/// the peer with StopCCN Result Code 2. Called once per new SCCRQ that passed the flood
/// limits' checks of the message itself.
pub type SelectFn = dyn FnMut(&TunnelRequest<'_>) -> Option<Config> + Send;

/// A boxed [`SelectFn`] (a wrapper only to be `Debug`).
pub struct Selector(pub Box<SelectFn>);

impl std::fmt::Debug for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Selector")
    }
}

/// Endpoint state shared by all tunnels.
#[derive(Debug)]
struct Shared {
    rng: StdRng,
    events: VecDeque<Event>,
    /// Session ids in use, as [`session_key`]s.
    session_ids: HashSet<u64>,
    call_serial: u32,
}

/// The key of a session id in use: L2TPv3 session ids are one namespace for the endpoint
/// (RFC 3931 §4.1, as in the kernel), L2TPv2 ones are per tunnel (RFC 2661 §3.1: 16 bits of
/// local significance to the tunnel), so that an LNS can hold more than 65,535 L2TPv2 calls
/// across its tunnels.
fn session_key(version: Version, tunnel_id: u32, sid: u32) -> u64 {
    match version {
        Version::V2 => 1 << 63 | u64::from(tunnel_id) << 16 | u64::from(sid),
        Version::V3 => u64::from(sid),
    }
}

/// Shared mutable context handed to tunnel code (split borrow of the endpoint).
struct Ctx<'a> {
    now: Timestamp,
    rng: &'a mut StdRng,
    events: &'a mut VecDeque<Event>,
    session_ids: &'a mut HashSet<u64>,
    call_serial: &'a mut u32,
}

impl Shared {
    fn ctx(&mut self, now: Timestamp) -> Ctx<'_> {
        Ctx {
            now,
            rng: &mut self.rng,
            events: &mut self.events,
            session_ids: &mut self.session_ids,
            call_serial: &mut self.call_serial,
        }
    }
}

impl Ctx<'_> {
    fn alloc_session_id(&mut self, version: Version, tunnel_id: u32) -> Option<u32> {
        for _ in 0..1000 {
            let id = match version {
                Version::V2 => u32::from(self.rng.random::<u16>()),
                Version::V3 => self.rng.random::<u32>(),
            };
            if id != 0 && self.session_ids.insert(session_key(version, tunnel_id, id)) {
                return Some(id);
            }
        }
        None
    }

    /// Session id `sid` of a tunnel (`version`, `tunnel_id`) is free again.
    fn release_session_id(&mut self, version: Version, tunnel_id: u32, sid: u32) {
        self.session_ids
            .remove(&session_key(version, tunnel_id, sid));
    }

    fn random_bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.rng.fill_bytes(&mut v);
        v
    }
}

/// Message type of a control message starting at the flags word, read from its first AVP
/// without decoding the rest (`None` for a ZLB or when the first AVP is not an IETF Message
/// Type). Routing needs it before the tunnel, and so the secret, is known.
fn peek_msg_type(msg: &[u8]) -> Option<MessageType> {
    let first = AvpIter::new(msg.get(HEADER_LEN..)?).next()?.ok()?;
    if first.vendor_id != VENDOR_IETF || first.attr_type != AttrType::MessageType.get() {
        return None;
    }
    let v: [u8; 2] = first.value.try_into().ok()?;
    Some(MessageType::from(u16::from_be_bytes(v)))
}

impl Endpoint {
    /// A new endpoint. `cfg` applies to tunnels the peer opens; `encap` selects UDP or
    /// L2TPv3/IP framing by default (one endpoint can serve both transports at once, each
    /// tunnel keeps the one it was opened on: [`handle_datagram_via`](Self::handle_datagram_via),
    /// [`connect_via`](Self::connect_via)); `seed` seeds the random generator that draws every unpredictable
    /// value (tunnel and session ids, challenges, nonces, random vectors, cookies, tie
    /// breakers). A daemon passes 32 bytes from the operating system's random source; tests
    /// pass fixed bytes ([`crate::sim::seed`]) to be reproducible.
    pub fn new(cfg: Config, encap: Encap, seed: [u8; 32]) -> Endpoint {
        Endpoint {
            cfg,
            encap,
            foreign_ids: ForeignIds::default(),
            sh: Shared {
                rng: StdRng::from_seed(seed),
                events: VecDeque::new(),
                session_ids: HashSet::new(),
                call_serial: 0,
            },
            tunnels: BTreeMap::new(),
            by_peer: HashMap::new(),
            peer_key: HashMap::new(),
            initiated: HashMap::new(),
            half_open: HashMap::new(),
            half_open_per_ip: HashMap::new(),
            buckets: HashMap::new(),
            bucket_prune_after: Timestamp(0),
            timers: BTreeSet::new(),
            deadline: HashMap::new(),
            transmits: VecDeque::new(),
            stats: EndpointStats::default(),
            messages: MessageStats::default(),
            selector: None,
        }
    }

    /// Skip the tunnel ids `in_use` reports when allocating ours: a daemon that also holds
    /// tunnels made outside the engine (static `ip l2tp add tunnel` ones) would otherwise have to
    /// refuse a negotiated tunnel whose id clashes with one of them.
    pub fn set_tunnel_id_in_use(&mut self, in_use: TunnelIdInUse) {
        self.foreign_ids = ForeignIds(Some(in_use));
    }

    /// Choose the configuration of each tunnel a peer opens with `selector` instead of using
    /// the endpoint configuration for all (`None`: back to that). Tunnels already held keep
    /// theirs. The endpoint configuration's flood limits apply before the selector is asked.
    pub fn set_selector(&mut self, selector: Option<Selector>) {
        self.selector = selector;
    }

    /// Endpoint counters.
    pub fn stats(&self) -> EndpointStats {
        self.stats
    }

    /// Control messages sent, retransmitted and received, by Message Type.
    pub fn message_stats(&self) -> &MessageStats {
        &self.messages
    }

    /// Ids of all tunnels currently held (including closing / held ones).
    pub fn tunnel_ids(&self) -> Vec<u32> {
        self.tunnels.keys().copied().collect()
    }

    /// State of one tunnel.
    pub fn tunnel_stats(&self, tunnel_id: u32) -> Option<TunnelStats> {
        let t = self.tunnels.get(&tunnel_id)?;
        Some(TunnelStats {
            state: t.state_name(),
            peer_tunnel_id: t.peer_id,
            sessions: t.sessions.len(),
            sessions_established: t
                .sessions
                .values()
                .filter(|s| s.state == SState::Established)
                .count(),
            unacked: t.chan.unacked(),
            next_ns: t.chan.next_ns(),
            nr: t.chan.nr(),
            channel: t.chan.stats,
        })
    }

    /// Parameters of an established tunnel (the same value [`Event::TunnelUp`] carried).
    pub fn tunnel_info(&self, tunnel_id: u32) -> Option<TunnelInfo> {
        let t = self.tunnels.get(&tunnel_id)?;
        (t.state == TState::Established).then(|| info_of(t))
    }

    /// Our ids of the sessions of a tunnel, in any state.
    pub fn session_ids(&self, tunnel_id: u32) -> Vec<u32> {
        self.tunnels
            .get(&tunnel_id)
            .map(|t| t.sessions.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.sh.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.timers.first().map(|&(d, _)| d)
    }

    /// Number of half-open tunnels (SCCRQ received, SCCCN not yet).
    pub fn half_open_count(&self) -> usize {
        self.half_open.len()
    }

    /// Re-index one tunnel's next deadline (after anything that may have changed it).
    fn update_timer(&mut self, tid: u32) {
        if let Some(old) = self.deadline.remove(&tid) {
            self.timers.remove(&(old, tid));
        }
        let Some(t) = self.tunnels.get(&tid) else {
            return;
        };
        let hello = (t.state == TState::Established && t.chan.unacked() == 0)
            .then(|| t.last_rx + t.cfg.hello_interval + t.hello_jitter);
        let hold = match t.state {
            TState::Closing { until } | TState::Held { until } => Some(until),
            _ => None,
        };
        let stall = stalled_since(t).map(|s| s + stall_limit(t));
        if let Some(d) = [t.chan.poll_timeout(), hello, hold, stall]
            .into_iter()
            .flatten()
            .min()
        {
            self.deadline.insert(tid, d);
            self.timers.insert((d, tid));
        }
    }

    /// A tunnel left half-open (SCCCN arrived, or it is closing): normal retry count.
    fn leave_half_open(&mut self, tid: u32) {
        if let Some(ip) = self.half_open.remove(&tid) {
            if let Some(n) = self.half_open_per_ip.get_mut(&ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.half_open_per_ip.remove(&ip);
                }
            }
            if let Some(t) = self.tunnels.get_mut(&tid) {
                let r = t.cfg.max_retries;
                t.chan.set_max_retries(r);
            }
        }
    }

    /// Take a new-tunnel token from `ip`'s bucket (docs/security.md).
    fn take_token(&mut self, now: Timestamp, ip: IpAddr) -> bool {
        let rate = u64::from(self.cfg.new_tunnels_per_second_per_peer);
        if rate == 0 {
            return true;
        }
        let cap = u64::from(self.cfg.new_tunnels_burst_per_peer.max(1)) * 1_000_000;
        // Bound the table: forget the sources whose bucket has refilled.
        let limit = self.cfg.max_half_open.max(1).saturating_mul(4);
        if self.buckets.len() >= limit && !self.buckets.contains_key(&ip) {
            if now < self.bucket_prune_after {
                return false;
            }
            // At most one walk of the table per 100 ms: a flood of new sources while the
            // table is full costs O(1) per SCCRQ between walks.
            self.bucket_prune_after = now + Duration::from_millis(100);
            self.buckets.retain(|_, (tok, last)| {
                let el = u64::try_from((now - *last).as_micros()).unwrap_or(u64::MAX);
                tok.saturating_add(el.saturating_mul(rate)) < cap
            });
            if self.buckets.len() >= limit {
                return false;
            }
        }
        let (tok, last) = self.buckets.entry(ip).or_insert((cap, now));
        let el = u64::try_from((now - *last).as_micros()).unwrap_or(u64::MAX);
        *tok = tok.saturating_add(el.saturating_mul(rate)).min(cap);
        *last = now;
        if *tok >= 1_000_000 {
            *tok -= 1_000_000;
            true
        } else {
            false
        }
    }

    /// Tell the engine that data arrived on a tunnel (postpones the HELLO, docs/reference/rfc.md §1.11).
    pub fn data_activity(&mut self, now: Timestamp, tunnel_id: u32) {
        if let Some(t) = self.tunnels.get_mut(&tunnel_id) {
            t.last_rx = t.last_rx.max(now);
        }
    }

    fn ctx(&mut self, now: Timestamp) -> (Ctx<'_>, &mut BTreeMap<u32, Tunnel>) {
        (self.sh.ctx(now), &mut self.tunnels)
    }

    fn alloc_tunnel_id(&mut self, version: Version) -> Option<u32> {
        for _ in 0..1000 {
            let id = match version {
                Version::V2 => u32::from(self.sh.rng.random::<u16>()),
                Version::V3 => self.sh.rng.random::<u32>(),
            };
            let foreign = self.foreign_ids.0.as_ref().is_some_and(|f| f(id));
            if id != 0 && !self.tunnels.contains_key(&id) && !foreign {
                return Some(id);
            }
        }
        None
    }

    fn new_tunnel(
        &mut self,
        now: Timestamp,
        peer: SocketAddr,
        encap: Encap,
        cfg: Config,
        version: Version,
        initiator: bool,
    ) -> Option<u32> {
        let id = self.alloc_tunnel_id(version)?;
        let auth = version == Version::V3 && cfg.secret.is_some();
        let our_nonce = if auth {
            let mut v = vec![0u8; 16];
            self.sh.rng.fill_bytes(&mut v);
            v
        } else {
            Vec::new()
        };
        let chan = ControlChannel::new(cfg.params());
        self.tunnels.insert(
            id,
            Tunnel {
                local_id: id,
                peer_id: 0,
                peer,
                encap,
                version,
                cfg,
                state: if initiator {
                    TState::WaitCtlReply
                } else {
                    TState::WaitCtlConn
                },
                chan,
                initiator,
                was_up: false,
                our_challenge: None,
                tie_breaker: None,
                auth,
                our_nonce,
                peer_nonce: Vec::new(),
                peer_host_name: String::new(),
                peer_router_id: None,
                peer_pw_types: Vec::new(),
                last_rx: now,
                hello_jitter: Duration::ZERO,
                sessions: BTreeMap::new(),
                connects: VecDeque::new(),
                refusal: None,
            },
        );
        Some(id)
    }

    /// Open a control connection to `peer` (sends SCCRQ). Returns our tunnel id.
    pub fn connect(&mut self, now: Timestamp, peer: SocketAddr, cfg: Config) -> Result<u32, Error> {
        self.connect_via(now, self.encap, peer, cfg)
    }

    /// [`connect`](Self::connect) over the given transport (L2TPv3/IP: `peer`'s port is
    /// ignored; L2TPv2 is refused, RFC 2661 runs over UDP only).
    pub fn connect_via(
        &mut self,
        now: Timestamp,
        encap: Encap,
        peer: SocketAddr,
        cfg: Config,
    ) -> Result<u32, Error> {
        if cfg.version == Version::V2 && encap == Encap::Ip {
            return Err(Error::BadConfig("L2TPv2 cannot run over IP encapsulation"));
        }
        cfg.check()?;
        let version = cfg.version;
        let id = self
            .new_tunnel(now, peer, encap, cfg, version, true)
            .ok_or(Error::NoIds)?;
        self.initiated.entry(peer.ip()).or_default().push(id);
        let (mut ctx, tunnels) = self.ctx(now);
        if let Some(t) = tunnels.get_mut(&id) {
            if t.cfg.tie_breaker {
                let mut tb = [0u8; 8];
                ctx.rng.fill_bytes(&mut tb);
                t.tie_breaker = Some(tb);
            }
            if t.version == Version::V2 && t.cfg.send_challenge && t.cfg.secret.is_some() {
                t.our_challenge = Some(ctx.random_bytes(16));
            }
            send_sccrx(t, &mut ctx, MessageType::Sccrq, None);
        }
        self.service(now, id);
        Ok(id)
    }

    /// Open a session on a tunnel (queued until the tunnel is up). Returns our session id.
    pub fn open_session(
        &mut self,
        now: Timestamp,
        tunnel_id: u32,
        cfg: SessionConfig,
    ) -> Result<u32, Error> {
        cfg.check()?;
        let (mut ctx, tunnels) = self.ctx(now);
        let t = tunnels.get_mut(&tunnel_id).ok_or(Error::NoTunnel)?;
        if t.is_dying() {
            return Err(Error::Closing);
        }
        let sid = ctx
            .alloc_session_id(t.version, t.local_id)
            .ok_or(Error::NoIds)?;
        *ctx.call_serial = ctx.call_serial.wrapping_add(1);
        let mut cfg = cfg;
        let pw_type = if t.version == Version::V2 {
            // v2 sessions are PPP and use neither cookies nor a sublayer (docs/reference/kernel.md §1.6).
            cfg.cookie_len = 0;
            cfg.l2spec_type = L2SpecType::None;
            PwType::Ppp
        } else {
            cfg.pw_type
        };
        let our_cookie = ctx.random_bytes(usize::from(cfg.cookie_len.min(8)));
        t.sessions.insert(
            sid,
            Session {
                initiator: true,
                call_serial: *ctx.call_serial,
                our_cookie,
                pw_type,
                ..Session::new(sid, 0, cfg, SState::WaitTunnel)
            },
        );
        if t.state == TState::Established {
            start_session(t, &mut ctx, sid);
        }
        self.service(now, tunnel_id);
        Ok(sid)
    }

    /// Clear a session (sends CDN with the given result code).
    pub fn close_session(
        &mut self,
        now: Timestamp,
        tunnel_id: u32,
        session_id: u32,
        result: CdnResult,
    ) -> Result<(), Error> {
        self.close_session_ppp(now, tunnel_id, session_id, result, None, None)
    }

    /// Clear a session whose PPP link went down: CDN with `result`, an optional
    /// (error code, message) and the RFC 3145 PPP Disconnect Cause Code AVP when `cause` is
    /// given. [`Endpoint::close_session`] is this without error and cause.
    pub fn close_session_ppp(
        &mut self,
        now: Timestamp,
        tunnel_id: u32,
        session_id: u32,
        result: CdnResult,
        error: Option<(ErrorCode, &str)>,
        cause: Option<&PppDisconnectCause>,
    ) -> Result<(), Error> {
        let (mut ctx, tunnels) = self.ctx(now);
        let t = tunnels.get_mut(&tunnel_id).ok_or(Error::NoTunnel)?;
        let s = t.sessions.get(&session_id).ok_or(Error::NoSession)?.clone();
        if s.state != SState::WaitTunnel {
            send_cdn(t, &mut ctx, &s, result, error, cause);
        }
        clear_session(t, &mut ctx, session_id, None, DownReason::Local);
        self.service(now, tunnel_id);
        Ok(())
    }

    /// Send Set-Link-Info for a session (v3 Circuit Status, v2 ACCM).
    pub fn set_link_info(
        &mut self,
        now: Timestamp,
        tunnel_id: u32,
        session_id: u32,
        circuit_status: u16,
        accm: (u32, u32),
    ) -> Result<(), Error> {
        self.send_on_established(
            now,
            tunnel_id,
            session_id,
            MessageType::Sli,
            |d, v| match v {
                Version::V2 => d.avp(AvpValue::Accm {
                    send_accm: accm.0,
                    receive_accm: accm.1,
                }),
                Version::V3 => d.avp(AvpValue::CircuitStatus(circuit_status)),
            },
        )
    }

    /// Send a session message (`fill` adds its AVPs) on an established session.
    fn send_on_established(
        &mut self,
        now: Timestamp,
        tunnel_id: u32,
        session_id: u32,
        mtype: MessageType,
        fill: impl FnOnce(Draft, Version) -> Draft,
    ) -> Result<(), Error> {
        let (mut ctx, tunnels) = self.ctx(now);
        let t = tunnels.get_mut(&tunnel_id).ok_or(Error::NoTunnel)?;
        let s = t.sessions.get(&session_id).ok_or(Error::NoSession)?.clone();
        if s.state != SState::Established {
            return Err(Error::NoSession);
        }
        send_session_msg(t, &mut ctx, mtype, &s, fill);
        self.service(now, tunnel_id);
        Ok(())
    }

    /// Send WAN-Error-Notify for a session: v2 Call Errors (CRC, framing, hardware overruns,
    /// buffer overruns, time-outs, alignment); v3 Circuit Errors uses the last four counters.
    pub fn wan_error_notify(
        &mut self,
        now: Timestamp,
        tunnel_id: u32,
        session_id: u32,
        counters: [u32; 6],
    ) -> Result<(), Error> {
        self.send_on_established(now, tunnel_id, session_id, MessageType::Wen, |d, v| {
            // v3 Circuit Errors is the compact 4-counter form (docs/reference/rfc.md §6).
            let [crc, framing, hardware, buffer, timeout, alignment] = counters;
            d.avp(AvpValue::CallErrors(CallErrors {
                crc_errors: crc,
                framing_errors: framing,
                hardware_overruns: hardware,
                buffer_overruns: buffer,
                timeout_errors: timeout,
                alignment_errors: alignment,
                compact: v == Version::V3,
            }))
        })
    }

    /// Clear a tunnel and all its sessions (sends StopCCN).
    pub fn close_tunnel(
        &mut self,
        now: Timestamp,
        tunnel_id: u32,
        result: StopCcnResult,
    ) -> Result<(), Error> {
        let (mut ctx, tunnels) = self.ctx(now);
        let t = tunnels.get_mut(&tunnel_id).ok_or(Error::NoTunnel)?;
        if t.is_dying() {
            return Err(Error::Closing);
        }
        stop_tunnel(t, &mut ctx, result, None, DownReason::Local);
        self.service(now, tunnel_id);
        Ok(())
    }

    /// [`Endpoint::close_tunnel`] with an Error Code and Error Message in the Result Code AVP
    /// (RFC 2661 §4.4.2), e.g. `GeneralError` with `InsufficientResources` when the daemon
    /// has no room for another tunnel.
    pub fn close_tunnel_with_error(
        &mut self,
        now: Timestamp,
        tunnel_id: u32,
        result: StopCcnResult,
        error: ErrorCode,
        message: &str,
    ) -> Result<(), Error> {
        let (mut ctx, tunnels) = self.ctx(now);
        let t = tunnels.get_mut(&tunnel_id).ok_or(Error::NoTunnel)?;
        if t.is_dying() {
            return Err(Error::Closing);
        }
        stop_tunnel(
            t,
            &mut ctx,
            result,
            Some((error, message)),
            DownReason::Local,
        );
        self.service(now, tunnel_id);
        Ok(())
    }

    /// Handle a received datagram (`bytes` starts at the flags word for UDP, at the 4 zero
    /// octets for L2TPv3/IP). Malformed input is counted and dropped.
    pub fn handle_datagram(&mut self, now: Timestamp, from: SocketAddr, bytes: &[u8]) {
        self.handle_datagram_via(now, self.encap, from, bytes);
    }

    /// [`handle_datagram`](Self::handle_datagram) for a datagram that arrived over `encap`. A
    /// message for a tunnel of the other transport is counted as for an unknown tunnel.
    pub fn handle_datagram_via(
        &mut self,
        now: Timestamp,
        encap: Encap,
        from: SocketAddr,
        bytes: &[u8],
    ) {
        self.stats.rx_datagrams += 1;
        let Ok((hdr, body)) = ControlHeader::parse_any(bytes, encap) else {
            self.stats.rx_malformed += 1;
            return;
        };
        let pre = encap.prefix_len();
        let Some(msg) = bytes.get(pre..body.end) else {
            self.stats.rx_malformed += 1;
            return;
        };
        let mtype = if hdr.is_zlb() {
            None
        } else {
            peek_msg_type(msg)
        };
        if !hdr.is_zlb() && mtype.is_none() {
            self.stats.rx_malformed += 1;
            return;
        }
        let tid = if hdr.tunnel_id == 0 {
            match mtype {
                Some(MessageType::Sccrq) => match self.admit(now, encap, from, hdr, msg) {
                    Some(t) => t,
                    None => return,
                },
                _ => {
                    self.stats.rx_unknown_tunnel += 1;
                    return;
                }
            }
        } else {
            hdr.tunnel_id
        };
        let Some(t) = self.tunnels.get_mut(&tid).filter(|t| t.encap == encap) else {
            self.stats.rx_unknown_tunnel += 1;
            if mtype == Some(MessageType::StopCcn) {
                self.ack_orphan_stopccn(encap, from, &hdr, msg);
            }
            return;
        };
        if t.version != hdr.version {
            self.stats.rx_malformed += 1;
            return;
        }
        // RFC 3931 §4.3 / docs/reference/rfc.md §2.8: verify the digest before using any content.
        if t.auth {
            let nonce_in_msg;
            let nonces = match mtype {
                Some(MessageType::Sccrq) => None,
                _ => {
                    // The SCCRP that tells us the peer's nonce is itself signed with it.
                    let peer_nonce: &[u8] =
                        if t.peer_nonce.is_empty() && mtype == Some(MessageType::Sccrp) {
                            nonce_in_msg = parse(msg, t.version, t.secret())
                                .ok()
                                .and_then(|(m, _)| m.nonce().map(<[u8]>::to_vec))
                                .unwrap_or_default();
                            &nonce_in_msg
                        } else {
                            &t.peer_nonce
                        };
                    Some(Nonces {
                        sender: peer_nonce,
                        receiver: &t.our_nonce,
                    })
                }
            };
            let ok = !hdr.is_zlb()
                && t.secret()
                    .is_some_and(|s| digest::verify_message(msg, s, nonces).is_ok());
            if !ok {
                self.stats.rx_auth_failures += 1;
                return;
            }
        }
        // The shared wire layer classifies malformed messages (docs/reference/rfc.md §1.18): framing errors
        // are discarded before they touch the sequence state.
        if !hdr.is_zlb() && parse(msg, t.version, t.secret()).is_err() {
            self.stats.rx_malformed += 1;
            return;
        }
        t.last_rx = now;
        let is_ack = hdr.is_zlb() || mtype == Some(MessageType::Ack);
        let verdict = t.chan.on_receive(now, hdr.ns, hdr.nr, is_ack, msg);
        if let RxVerdict::Deliver(msgs) = &verdict {
            for m in msgs {
                if let Some(mt) = peek_msg_type(m) {
                    self.messages.entry(mt).received += 1;
                }
            }
        }
        let (mut ctx, tunnels) = self.ctx(now);
        if let Some(t) = tunnels.get_mut(&tid) {
            if verdict != RxVerdict::InvalidNr {
                // The Nr may acknowledge an ICCN / OCCN of ours: that session is now up.
                connects_acked(t, &mut ctx);
            }
            if let RxVerdict::Deliver(msgs) = verdict {
                for m in msgs {
                    dispatch(t, &mut ctx, &m);
                }
            }
        }
        self.service(now, tid);
    }

    /// A new SCCRQ (tunnel id 0): duplicate detection, tie-breaking, admission.
    fn admit(
        &mut self,
        now: Timestamp,
        encap: Encap,
        from: SocketAddr,
        hdr: ControlHeader,
        msg: &[u8],
    ) -> Option<u32> {
        let mut cfg = self.cfg.clone();
        // Tunnels the peer opens are built from the endpoint configuration, or from the one
        // the selector chooses.
        cfg.check().ok()?;
        let Ok((mut m, _)) = parse(msg, hdr.version, cfg.secret.as_deref()) else {
            self.stats.rx_malformed += 1;
            return None;
        };
        let mut refusal = None;
        // A retransmitted SCCRQ goes to its tunnel below without asking the selector again.
        let known = peer_tunnel_id(hdr.version, &m)
            .and_then(|p| self.by_peer.get(&(from, p)))
            .is_some_and(|t| self.tunnels.contains_key(t));
        if let (Some(sel), false) = (&mut self.selector, known) {
            let req = TunnelRequest {
                peer: from,
                version: hdr.version,
                host_name: m.host_name().unwrap_or_default(),
            };
            match sel.0(&req) {
                Some(c) if c.check().is_ok() => {
                    if c.secret != cfg.secret {
                        let Ok((m2, _)) = parse(msg, hdr.version, c.secret.as_deref()) else {
                            self.stats.rx_malformed += 1;
                            return None;
                        };
                        m = m2;
                    }
                    cfg = c;
                }
                _ => refusal = Some(Refusal::NoProfile),
            }
        }
        if refusal.is_none() && cfg.max_tunnels_per_peer > 0 && !known {
            let held = self
                .tunnels
                .values()
                .filter(|t| !t.initiator && !t.is_dying() && t.peer.ip() == from.ip())
                .count();
            if held >= cfg.max_tunnels_per_peer {
                refusal = Some(Refusal::TooManyTunnels);
            }
        }
        let tid = self.admit_parsed(now, (encap, from), hdr, msg, &m, &cfg)?;
        if let Some(t) = self.tunnels.get_mut(&tid) {
            if refusal.is_some() && t.refusal.is_none() && t.peer_id == 0 {
                self.stats.sccrq_refused += 1;
                t.refusal = refusal;
            }
        }
        Some(tid)
    }

    fn admit_parsed(
        &mut self,
        now: Timestamp,
        (encap, from): (Encap, SocketAddr),
        hdr: ControlHeader,
        msg: &[u8],
        m: &ul2tp_wire::message::Message,
        cfg: &Config,
    ) -> Option<u32> {
        // v3 authentication: an SCCRQ's digest covers the message alone (docs/reference/rfc.md §2.8).
        if hdr.version == Version::V3 {
            if let Some(s) = &cfg.secret {
                if digest::verify_message(msg, s, None).is_err() {
                    self.stats.rx_auth_failures += 1;
                    return None;
                }
            }
        }
        let Some(peer_tid) = peer_tunnel_id(hdr.version, m).filter(|&p| p != 0) else {
            self.stats.rx_malformed += 1;
            return None;
        };
        if hdr.version == Version::V2 && encap == Encap::Ip {
            self.stats.rx_malformed += 1;
            return None;
        }
        // Retransmitted SCCRQ of a tunnel we already admitted.
        if let Some(&tid) = self.by_peer.get(&(from, peer_tid)) {
            if self.tunnels.get(&tid).is_some_and(|t| t.encap == encap) {
                return Some(tid);
            }
        }
        // Tie-break against our own outstanding SCCRQ to the same peer (docs/reference/rfc.md §1.14, §2.11)
        // over the same transport (over UDP and over IP they are two control connections).
        let theirs = m.tie_breaker().copied();
        let contender = self
            .initiated
            .get(&from.ip())
            .into_iter()
            .flatten()
            .filter_map(|id| self.tunnels.get(id))
            .find(|t| {
                t.initiator
                    && t.state == TState::WaitCtlReply
                    && t.peer.ip() == from.ip()
                    && t.version == hdr.version
                    && t.encap == encap
            })
            .map(|t| (t.local_id, t.tie_breaker));
        let mut loser: Option<u32> = None;
        if let Some((ours_id, ours)) = contender {
            let we_win = match (ours, theirs) {
                (Some(a), Some(b)) => a < b,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                // Neither sent one: two separate tunnels (docs/reference/rfc.md §1.14).
                (None, None) => {
                    return self.admit_new(now, (encap, from), hdr, cfg, peer_tid, None)
                }
            };
            if we_win {
                self.stats.tie_breaks_won += 1;
                return None;
            }
            loser = Some(ours_id);
        }
        self.admit_new(now, (encap, from), hdr, cfg, peer_tid, loser)
    }

    /// `(encap, from)`: the transport and the address the SCCRQ came from.
    fn admit_new(
        &mut self,
        now: Timestamp,
        (encap, from): (Encap, SocketAddr),
        hdr: ControlHeader,
        cfg: &Config,
        peer_tid: u32,
        loser: Option<u32>,
    ) -> Option<u32> {
        // Flood limits (docs/security.md): only new half-open tunnels are refused, silently.
        let ip = from.ip();
        if self.half_open.len() >= self.cfg.max_half_open
            || self.half_open_per_ip.get(&ip).copied().unwrap_or(0)
                >= self.cfg.max_half_open_per_peer
        {
            self.stats.sccrq_dropped_half_open += 1;
            return None;
        }
        if !self.take_token(now, ip) {
            self.stats.sccrq_rate_limited += 1;
            return None;
        }
        let tid = self.new_tunnel(now, from, encap, cfg.clone(), hdr.version, false)?;
        self.by_peer.insert((from, peer_tid), tid);
        self.peer_key.insert(tid, (from, peer_tid));
        self.half_open.insert(tid, ip);
        *self.half_open_per_ip.entry(ip).or_insert(0) += 1;
        if let Some(t) = self.tunnels.get_mut(&tid) {
            let r = cfg.max_retries.min(self.cfg.max_retries_half_open);
            t.chan.set_max_retries(r);
        }
        if let Some(lid) = loser {
            self.unindex(lid);
            if let Some(mut lt) = self.tunnels.remove(&lid) {
                self.stats.closed_channels.add(&lt.chan.stats);
                let moved: Vec<Session> = std::mem::take(&mut lt.sessions).into_values().collect();
                self.sh.events.push_back(Event::TunnelDown {
                    tunnel_id: lid,
                    peer_tunnel_id: 0,
                    reason: DownReason::TieBreakLost,
                    was_up: false,
                    replaced_by: Some(tid),
                });
                if let Some(nt) = self.tunnels.get_mut(&tid) {
                    for mut s in moved {
                        s.state = SState::WaitTunnel;
                        nt.sessions.insert(s.local_id, s);
                    }
                }
            }
        }
        Some(tid)
    }

    /// Acknowledge a StopCCN for a tunnel we no longer hold: we acknowledged it when it
    /// arrived and kept the tunnel for `stop_hold`, but every acknowledgement may have been
    /// lost, and the peer would retransmit until its retries ran out. The acknowledgement
    /// (ZLB in v2, ACK in v3) is built from the message alone: to the Assigned Tunnel ID /
    /// Assigned Control Connection ID it carries, Nr = its Ns + 1, Ns 0 (a pure
    /// acknowledgement takes no sequence slot). Never for a message with a Message Digest
    /// or hidden AVPs (we no longer have the nonces or secret to sign or read it), and one
    /// answer per StopCCN received, no larger than it (no amplification).
    fn ack_orphan_stopccn(
        &mut self,
        encap: Encap,
        from: SocketAddr,
        hdr: &ControlHeader,
        msg: &[u8],
    ) {
        let Ok(m) = ul2tp_wire::message::Message::parse(msg, hdr.version, None) else {
            return;
        };
        if m.find(AttrType::MessageDigest).is_some() {
            return;
        }
        let Some(peer_id) = peer_tunnel_id(hdr.version, &m).filter(|&p| p != 0) else {
            return;
        };
        let nr = hdr.ns.wrapping_add(1);
        let ack = match hdr.version {
            Version::V2 => ul2tp_wire::control::zlb(hdr.version, encap, peer_id, 0, 0, nr).ok(),
            Version::V3 => ul2tp_wire::message::MessageBuilder::new(
                hdr.version,
                encap,
                peer_id,
                0,
                MessageType::Ack,
            )
            .finish()
            .ok()
            .and_then(|mut b| {
                let pre = encap.prefix_len();
                ul2tp_wire::control::set_ns_nr(b.get_mut(pre..)?, 0, nr).ok()?;
                Some(b)
            }),
        };
        if let Some(bytes) = ack {
            self.stats.orphan_stopccn_acks += 1;
            self.transmits.push_back(Transmit {
                dst: from,
                bytes,
                encap,
            });
        }
    }

    /// Handle timers: retransmissions, delayed acks, hellos, hold-down expiry.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let mut ids = Vec::new();
        while let Some(&(d, tid)) = self.timers.first() {
            if d > now {
                break;
            }
            self.timers.pop_first();
            self.deadline.remove(&tid);
            ids.push(tid);
        }
        self.stats.last_timeout_work = ids.len() as u64;
        for tid in ids {
            let mut ctx = self.sh.ctx(now);
            let Some(t) = self.tunnels.get_mut(&tid) else {
                continue;
            };
            if let Some(b) = t.chan.on_timeout(now) {
                if let Some(mt) = peek_msg_type(&b) {
                    self.messages.entry(mt).retransmitted += 1;
                }
                emit(t, &mut self.transmits, b);
                // Clearing the tunnel: the StopCCN (last on the wire) goes with the oldest
                // message, so that a peer past its hold-down, which acknowledges only
                // StopCCNs, still ends the exchange.
                if matches!(t.state, TState::Closing { .. }) {
                    if let Some(b) = t.chan.newest_sent_again() {
                        if let Some(mt) = peek_msg_type(&b) {
                            self.messages.entry(mt).retransmitted += 1;
                        }
                        emit(t, &mut self.transmits, b);
                    }
                }
            }
            if stalled_since(t).is_some_and(|s| now >= s + stall_limit(t)) {
                // The peer acknowledged our SCCRQ but no SCCRP came within a HELLO interval
                // and the peer's retransmission cycle (its half-open tunnel timed out):
                // nothing of ours is left to retransmit.
                down_all(t, &mut ctx, DownReason::Timeout);
                self.remove_tunnel(tid);
                continue;
            }
            if t.state == TState::Established
                && t.chan.unacked() == 0
                && now >= t.last_rx + t.cfg.hello_interval + t.hello_jitter
            {
                // docs/reference/rfc.md §1.11: HELLO after an idle interval; it is retransmitted like any
                // control message, so a silent peer eventually tears the tunnel down.
                t.last_rx = now;
                t.hello_jitter = hello_jitter(&mut ctx, t.cfg.hello_interval);
                let d = new_msg(t, &mut ctx, MessageType::Hello, 0);
                queue(t, d);
            }
            self.service(now, tid);
        }
    }

    /// Flush a tunnel's channel to the transmit queue and retire dead tunnels.
    fn service(&mut self, now: Timestamp, tid: u32) {
        self.service_inner(now, tid);
        if self
            .tunnels
            .get(&tid)
            .is_some_and(|t| t.state != TState::WaitCtlConn)
        {
            self.leave_half_open(tid);
        }
        self.update_timer(tid);
    }

    fn service_inner(&mut self, now: Timestamp, tid: u32) {
        let Some(t) = self.tunnels.get_mut(&tid) else {
            return;
        };
        if t.chan.failed() {
            let was_dying = t.is_dying();
            let mut ctx = self.sh.ctx(now);
            if !was_dying {
                down_all(t, &mut ctx, DownReason::Timeout);
            }
            self.remove_tunnel(tid);
            return;
        }
        if let Some(b) = t.chan.poll_fast_retransmit(now) {
            if let Some(mt) = peek_msg_type(&b) {
                self.messages.entry(mt).retransmitted += 1;
            }
            emit(t, &mut self.transmits, b);
        }
        for b in t.chan.poll_send(now) {
            if let Some(mt) = peek_msg_type(&b) {
                self.messages.entry(mt).sent += 1;
            }
            emit(t, &mut self.transmits, b);
        }
        if t.chan.take_ack(now) {
            if let Some(ack) = build_ack(t) {
                emit(t, &mut self.transmits, ack);
            }
        }
        let remove = match t.state {
            TState::Closing { until } => t.chan.unacked() == 0 || now >= until,
            TState::Held { until } => now >= until,
            _ => false,
        };
        if remove {
            self.remove_tunnel(tid);
        }
    }

    fn remove_tunnel(&mut self, tid: u32) {
        self.unindex(tid);
        if let Some(t) = self.tunnels.remove(&tid) {
            self.stats.closed_channels.add(&t.chan.stats);
            for &sid in t.sessions.keys() {
                let key = session_key(t.version, t.local_id, sid);
                self.sh.session_ids.remove(&key);
            }
        }
    }

    /// Drop a tunnel from every index (before it is removed from `tunnels`).
    fn unindex(&mut self, tid: u32) {
        self.leave_half_open(tid);
        if let Some(key) = self.peer_key.remove(&tid) {
            if self.by_peer.get(&key) == Some(&tid) {
                self.by_peer.remove(&key);
            }
        }
        if let Some(t) = self.tunnels.get(&tid) {
            let ip = t.peer.ip();
            if let Some(v) = self.initiated.get_mut(&ip) {
                v.retain(|&x| x != tid);
                if v.is_empty() {
                    self.initiated.remove(&ip);
                }
            }
        }
        if let Some(d) = self.deadline.remove(&tid) {
            self.timers.remove(&(d, tid));
        }
    }
}

/// When an initiator's SCCRQ was acknowledged and it still waits for the SCCRP with nothing
/// in flight: the time of the last message from the peer.
fn stalled_since(t: &Tunnel) -> Option<Timestamp> {
    (t.state == TState::WaitCtlReply && t.chan.unacked() == 0).then_some(t.last_rx)
}

/// How long a stalled initiator ([`stalled_since`]) waits for the SCCRP: a HELLO interval,
/// and at least the time the peer may still be retransmitting its SCCRP if its timers are
/// ours. The peer acknowledges a retransmitted SCCRQ at once (a duplicate) while its SCCRP,
/// lost, waits for its own timer, which may by then have backed off to the cap: giving up
/// after a short HELLO interval lost tunnels whose SCCRP was still coming (at 30 % loss, one
/// tunnel in a hundred with `hello_interval = 5`).
fn stall_limit(t: &Tunnel) -> Duration {
    t.cfg.hello_interval.max(t.cfg.retransmit_cycle())
}

/// Sign (v3 auth), add the IP prefix and queue a datagram.
fn emit(t: &Tunnel, out: &mut VecDeque<Transmit>, mut b: Vec<u8>) {
    if let (true, Some(secret)) = (t.auth, t.secret()) {
        // docs/reference/rfc.md §2.8: an SCCRQ's digest covers the message alone, all others are prefixed
        // with the sender's and the receiver's nonce. Every (re)transmission is signed anew
        // because the channel rewrites Nr. Signing only fails for a message without a digest
        // slot, which the engine never builds with authentication on.
        let nonces = (peek_msg_type(&b) != Some(MessageType::Sccrq)).then_some(Nonces {
            sender: &t.our_nonce,
            receiver: &t.peer_nonce,
        });
        let _ = digest::sign_message(&mut b, secret, nonces);
    }
    let bytes = match t.encap {
        Encap::Udp => b,
        Encap::Ip => {
            let mut v = Vec::with_capacity(4 + b.len());
            v.extend_from_slice(&[0, 0, 0, 0]);
            v.extend_from_slice(&b);
            v
        }
    };
    out.push_back(Transmit {
        dst: t.peer,
        bytes,
        encap: t.encap,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// L2TPv2 session ids are per tunnel, L2TPv3 ones per endpoint: the same v2 id in two
    /// tunnels is two keys (so 16-bit ids do not cap the endpoint at 65,535 calls), the same
    /// v3 id is one.
    #[test]
    fn v2_session_ids_are_per_tunnel() {
        assert_ne!(
            session_key(Version::V2, 1, 7),
            session_key(Version::V2, 2, 7)
        );
        assert_ne!(
            session_key(Version::V2, 1, 7),
            session_key(Version::V2, 1, 8)
        );
        assert_ne!(
            session_key(Version::V2, 0, 7),
            session_key(Version::V3, 0, 7)
        );
        assert_eq!(
            session_key(Version::V3, 1, 7),
            session_key(Version::V3, 2, 7)
        );
        // Tunnel ids use all 32 bits without touching the session id's 16.
        assert_ne!(
            session_key(Version::V2, u32::MAX, 1),
            session_key(Version::V2, u32::MAX >> 1, 1)
        );
    }
}
