//! Tunnel and session state machines and the [`Endpoint`] that demultiplexes datagrams to them.
//!
//! Tunnel states (rfc-facts §1.12, §2.10): `WaitCtlReply` (we sent SCCRQ), `WaitCtlConn` (we
//! answered an SCCRQ with SCCRP), `Established`, `Closing` (we sent StopCCN and keep reliable
//! delivery running until it is acknowledged, retries run out or the hold-down expires) and
//! `Held` (the peer sent StopCCN; state is kept for the hold-down only to re-acknowledge
//! retransmitted StopCCNs, rfc-facts §1.11).
//!
//! Session states (rfc-facts §1.13, §2.10): `WaitTunnel` (opened before the tunnel was up),
//! `WaitReply` (ICRQ/OCRQ sent), `WaitConnect` (ICRP sent, or OCRP received), `Established`.
//! A session is removed as soon as it is cleared; the tunnel's reliable channel still delivers
//! the CDN.
//!
//! Every message goes through the tunnel's [`ControlChannel`]; the state machines only ever see
//! messages in sequence order and exactly once.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use ul2tp_wire::control::{ControlHeader, Encap, Version, HEADER_LEN};

use ul2tp_wire::message::{Message as WireMessage, Reaction};

use crate::avp::{self, attr, DigestAlg, Msg, MsgBuilder};
use crate::channel::{ChannelParams, ChannelStats, ControlChannel, RxVerdict};
use crate::Timestamp;

/// Message types (rfc-facts §1.2).
pub mod msg_type {
    /// Start-Control-Connection-Request.
    pub const SCCRQ: u16 = 1;
    /// Start-Control-Connection-Reply.
    pub const SCCRP: u16 = 2;
    /// Start-Control-Connection-Connected.
    pub const SCCCN: u16 = 3;
    /// Stop-Control-Connection-Notification.
    pub const STOPCCN: u16 = 4;
    /// Hello.
    pub const HELLO: u16 = 6;
    /// Outgoing-Call-Request.
    pub const OCRQ: u16 = 7;
    /// Outgoing-Call-Reply.
    pub const OCRP: u16 = 8;
    /// Outgoing-Call-Connected.
    pub const OCCN: u16 = 9;
    /// Incoming-Call-Request.
    pub const ICRQ: u16 = 10;
    /// Incoming-Call-Reply.
    pub const ICRP: u16 = 11;
    /// Incoming-Call-Connected.
    pub const ICCN: u16 = 12;
    /// Call-Disconnect-Notify.
    pub const CDN: u16 = 14;
    /// WAN-Error-Notify.
    pub const WEN: u16 = 15;
    /// Set-Link-Info.
    pub const SLI: u16 = 16;
    /// Explicit Acknowledgement (RFC 3931).
    pub const ACK: u16 = 20;
}
use msg_type::*;

/// StopCCN result codes used by the engine (rfc-facts §1.6).
pub mod result {
    /// General request to clear the control connection.
    pub const STOP_GENERAL: u16 = 1;
    /// General error, see Error Code.
    pub const STOP_ERROR: u16 = 2;
    /// Requester not authorised.
    pub const STOP_NOT_AUTHORISED: u16 = 4;
    /// Finite-state-machine error (or timeout).
    pub const STOP_FSM: u16 = 7;
    /// CDN: disconnected for the reason in Error Code.
    pub const CDN_ERROR: u16 = 2;
    /// CDN: administrative reasons.
    pub const CDN_ADMIN: u16 = 3;
    /// CDN: session not established, lost tie breaker (v3).
    pub const CDN_TIE_BREAK: u16 = 13;
    /// CDN: unsupported PW type (v3).
    pub const CDN_PW_TYPE: u16 = 14;
    /// CDN: sequencing required without an L2-Specific Sublayer (v3).
    pub const CDN_SEQ_NO_L2SS: u16 = 15;
    /// CDN: finite-state-machine error (v3).
    pub const CDN_FSM: u16 = 16;
    /// Error code: unknown mandatory AVP.
    pub const ERR_UNKNOWN_AVP: u16 = 8;
    /// Error code: a field out of range / missing.
    pub const ERR_BAD_VALUE: u16 = 3;
}

/// Which call model a session uses (rfc-facts §1.13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallType {
    /// Incoming call: ICRQ / ICRP / ICCN (the usual LAC→LNS and L2TPv3 pseudowire case).
    Incoming,
    /// Outgoing call: OCRQ / OCRP / OCCN.
    Outgoing,
}

/// Parameters a local side proposes for a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Call model (ignored for sessions the peer opens).
    pub call: CallType,
    /// Pseudowire type (v3 PW Type AVP; v2 sessions are always PPP, 7).
    pub pw_type: u16,
    /// Length of the cookie we assign (0, 4 or 8 octets; v3 only).
    pub cookie_len: u8,
    /// L2-Specific Sublayer we want on packets we receive (0 none, 1 default; v3 only).
    pub l2spec_type: u16,
    /// Whether we want sequence numbers on packets we receive (v3 Data Sequencing 2, v2
    /// Sequencing Required).
    pub recv_seq: bool,
    /// Remote End ID (v3) / Called Number (v2 OCRQ).
    pub remote_end_id: Vec<u8>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            call: CallType::Incoming,
            pw_type: 5,
            cookie_len: 8,
            l2spec_type: 1,
            recv_seq: false,
            remote_end_id: Vec::new(),
        }
    }
}

/// Configuration of an endpoint (defaults for tunnels the peer opens) or of one tunnel opened
/// with [`Endpoint::connect`]. Defaults follow peers.md / rfc-facts §1.10.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Protocol version for tunnels we open (incoming SCCRQs use their own version).
    pub version: Version,
    /// Host Name AVP.
    pub host_name: String,
    /// Router ID AVP (v3).
    pub router_id: u32,
    /// Shared secret: v2 challenge/hiding, v3 message authentication/hiding.
    pub secret: Option<Vec<u8>>,
    /// Hide the AVPs that may be hidden (needs a secret; v3 also needs authentication).
    pub hide_avps: bool,
    /// v2: send a Challenge and require a correct Challenge Response.
    pub send_challenge: bool,
    /// v2: answer a peer's Challenge (if false, a tunnel whose peer challenges us is refused).
    pub answer_challenge: bool,
    /// v3: digest algorithm when a secret is configured.
    pub digest: DigestAlg,
    /// Our Receive Window Size.
    pub rx_window: u16,
    /// Idle time before we send a HELLO (plus a random jitter of up to an eighth of it).
    pub hello_interval: Duration,
    /// Initial retransmission timeout.
    pub retransmit_initial: Duration,
    /// Cap of the exponential backoff (RFC: not below 8 s).
    pub retransmit_cap: Duration,
    /// Retransmissions before the tunnel is declared dead.
    pub max_retries: u32,
    /// Delay of a pure acknowledgement waiting for a message to piggyback on.
    pub ack_delay: Duration,
    /// How long state is kept after a StopCCN to re-acknowledge it (rfc-facts §1.11: 31 s).
    pub stop_hold: Duration,
    /// Pseudowire types we accept and advertise (v3 PW Capabilities List).
    pub pw_types: Vec<u16>,
    /// Send a Tie Breaker AVP in SCCRQ.
    pub tie_breaker: bool,
    /// Framing Capabilities (v2).
    pub framing_caps: u32,
    /// Bearer Capabilities (v2).
    pub bearer_caps: u32,
    /// What we propose for sessions the peer opens.
    pub session_defaults: SessionConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            version: Version::V2,
            host_name: "ul2tp".to_string(),
            router_id: 1,
            secret: None,
            hide_avps: false,
            send_challenge: false,
            answer_challenge: true,
            digest: DigestAlg::HmacMd5,
            rx_window: 16,
            hello_interval: Duration::from_secs(60),
            retransmit_initial: Duration::from_secs(1),
            retransmit_cap: Duration::from_secs(16),
            max_retries: 5,
            ack_delay: Duration::from_millis(100),
            stop_hold: Duration::from_secs(31),
            pw_types: vec![5, 4, 7],
            tie_breaker: true,
            framing_caps: 3,
            bearer_caps: 0,
            session_defaults: SessionConfig::default(),
        }
    }
}

impl Config {
    fn params(&self) -> ChannelParams {
        ChannelParams {
            rx_window: self.rx_window.max(1),
            rto_initial: self.retransmit_initial,
            rto_cap: self.retransmit_cap.max(self.retransmit_initial),
            max_retries: self.max_retries,
            ack_delay: self.ack_delay,
        }
    }
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub dst: SocketAddr,
    /// Bytes from the flags word (UDP) or from the 4 zero octets (L2TPv3/IP).
    pub bytes: Vec<u8>,
}

/// What the engine tells its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A control connection is established.
    TunnelUp(TunnelInfo),
    /// A control connection is gone (emitted once per tunnel the engine created).
    TunnelDown {
        /// Our tunnel id.
        tunnel_id: u32,
        /// Peer's tunnel id (0 if never learned).
        peer_tunnel_id: u32,
        /// Why.
        reason: DownReason,
        /// Whether [`Event::TunnelUp`] had been emitted.
        was_up: bool,
        /// After a lost tie-break: the tunnel that replaces this one.
        replaced_by: Option<u32>,
    },
    /// A session is established with every negotiated parameter.
    SessionUp(SessionInfo),
    /// A session is gone.
    SessionDown {
        /// Our tunnel id.
        tunnel_id: u32,
        /// Our session id.
        session_id: u32,
        /// Peer's session id (0 if never learned).
        peer_session_id: u32,
        /// Why.
        reason: DownReason,
        /// Whether [`Event::SessionUp`] had been emitted.
        was_up: bool,
    },
    /// The peer sent Set-Link-Info.
    LinkInfo {
        /// Our tunnel id.
        tunnel_id: u32,
        /// Our session id.
        session_id: u32,
        /// v3 Circuit Status bits.
        circuit_status: Option<u16>,
        /// v2 ACCM (send, receive).
        accm: Option<(u32, u32)>,
    },
    /// The peer sent WAN-Error-Notify (raw Call/Circuit Errors value).
    WanError {
        /// Our tunnel id.
        tunnel_id: u32,
        /// Our session id.
        session_id: u32,
        /// Raw Call Errors / Circuit Errors AVP value.
        errors: Vec<u8>,
    },
}

/// Why a tunnel or session went down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownReason {
    /// Closed locally by a command.
    Local,
    /// The peer sent StopCCN / CDN.
    Peer {
        /// Result Code.
        result_code: u16,
        /// Error Code, if present.
        error_code: Option<u16>,
        /// Error Message.
        message: String,
    },
    /// Retransmissions exhausted (peer silent).
    Timeout,
    /// Tunnel authentication failed (challenge response or digest setup).
    AuthFailed,
    /// We lost the tunnel tie-break (rfc-facts §1.14).
    TieBreakLost,
    /// We refused or aborted because of a protocol error.
    Protocol {
        /// Result Code we sent.
        result_code: u16,
        /// Error Code we sent.
        error_code: Option<u16>,
        /// Explanation.
        message: String,
    },
    /// The session's tunnel went down.
    TunnelDown,
}

/// Parameters of an established tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelInfo {
    /// Version.
    pub version: Version,
    /// Our tunnel id / control connection id.
    pub tunnel_id: u32,
    /// Peer's tunnel id / control connection id.
    pub peer_tunnel_id: u32,
    /// Peer address.
    pub peer: SocketAddr,
    /// Whether we sent the SCCRQ.
    pub initiator: bool,
    /// Peer's Host Name.
    pub peer_host_name: String,
    /// Peer's Router ID (v3).
    pub peer_router_id: Option<u32>,
    /// Peer's receive window.
    pub peer_rx_window: u16,
    /// Peer's PW Capabilities List (v3).
    pub peer_pw_types: Vec<u16>,
    /// Whether v3 message authentication is on.
    pub authenticated: bool,
}

/// Every negotiated parameter of a session, in `ip l2tp` terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Version.
    pub version: Version,
    /// Our tunnel id.
    pub tunnel_id: u32,
    /// Peer's tunnel id.
    pub peer_tunnel_id: u32,
    /// Our session id.
    pub session_id: u32,
    /// Peer's session id.
    pub peer_session_id: u32,
    /// Peer address.
    pub peer: SocketAddr,
    /// Pseudowire type (7 = PPP for v2).
    pub pw_type: u16,
    /// Cookie we send (the peer's Assigned Cookie; kernel-facts §1.6 `cookie`).
    pub cookie: Vec<u8>,
    /// Cookie we expect (our Assigned Cookie; kernel-facts §1.6 `peer_cookie`).
    pub peer_cookie: Vec<u8>,
    /// L2-Specific Sublayer we must put on packets we send (the peer asked for it).
    pub l2spec_type: u16,
    /// L2-Specific Sublayer we asked for on packets we receive.
    pub peer_l2spec_type: u16,
    /// Send sequence numbers on data.
    pub send_seq: bool,
    /// Require sequence numbers on received data.
    pub recv_seq: bool,
    /// We are the LNS of this call (v2: ICRQ recipient or OCRQ sender).
    pub lns_mode: bool,
    /// Call model.
    pub call: CallType,
    /// Whether we opened the session.
    pub initiator: bool,
    /// Call Serial Number.
    pub call_serial: u32,
    /// Remote End ID (v3) / Called Number (v2).
    pub remote_end_id: Vec<u8>,
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// No such tunnel.
    NoTunnel,
    /// No such session.
    NoSession,
    /// The tunnel is closing.
    Closing,
    /// Configuration not usable (e.g. v2 over IP encapsulation).
    BadConfig(&'static str),
    /// No free identifiers.
    NoIds,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::NoTunnel => f.write_str("no such tunnel"),
            Error::NoSession => f.write_str("no such session"),
            Error::Closing => f.write_str("tunnel is closing"),
            Error::BadConfig(s) => write!(f, "bad configuration: {s}"),
            Error::NoIds => f.write_str("no free identifiers"),
        }
    }
}

impl std::error::Error for Error {}

/// Endpoint-wide counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Datagrams handed to the endpoint.
    pub rx_datagrams: u64,
    /// Datagrams with a malformed header or body.
    pub rx_malformed: u64,
    /// Datagrams for no known tunnel.
    pub rx_unknown_tunnel: u64,
    /// Datagrams failing v3 message authentication.
    pub rx_auth_failures: u64,
    /// SCCRQs ignored because we won the tie-break.
    pub tie_breaks_won: u64,
}

/// Per-tunnel view for tests and `show` commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelStats {
    /// State name.
    pub state: &'static str,
    /// Peer tunnel id.
    pub peer_tunnel_id: u32,
    /// Number of sessions.
    pub sessions: usize,
    /// Messages queued or in flight.
    pub unacked: usize,
    /// Ns of the next new message (= messages generated so far, modulo 2^16).
    pub next_ns: u16,
    /// Our Nr.
    pub nr: u16,
    /// Channel counters.
    pub channel: ChannelStats,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TState {
    WaitCtlReply,
    WaitCtlConn,
    Established,
    Closing { until: Timestamp },
    Held { until: Timestamp },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SState {
    WaitTunnel,
    WaitReply,
    WaitConnect,
    Established,
}

#[derive(Debug, Clone)]
struct Session {
    local_id: u32,
    peer_id: u32,
    cfg: SessionConfig,
    state: SState,
    initiator: bool,
    call_serial: u32,
    our_cookie: Vec<u8>,
    peer_cookie: Vec<u8>,
    peer_l2spec: u16,
    peer_seq: bool,
    pw_type: u16,
    /// v3 Session Tie Breaker we sent in ICRQ/OCRQ.
    tie_breaker: Option<[u8; 8]>,
}

#[derive(Debug)]
struct Tunnel {
    local_id: u32,
    peer_id: u32,
    peer: SocketAddr,
    version: Version,
    cfg: Config,
    state: TState,
    chan: ControlChannel,
    initiator: bool,
    was_up: bool,
    our_challenge: Option<Vec<u8>>,
    tie_breaker: Option<[u8; 8]>,
    auth: bool,
    digest_key: Vec<u8>,
    our_nonce: Vec<u8>,
    peer_nonce: Vec<u8>,
    peer_host_name: String,
    peer_router_id: Option<u32>,
    peer_pw_types: Vec<u16>,
    last_rx: Timestamp,
    /// Random extra idle time before a HELLO, redrawn after each one (RFC 3931 §4.4: HELLOs
    /// to the same peer MUST be jittered).
    hello_jitter: Duration,
    sessions: BTreeMap<u32, Session>,
}

impl Tunnel {
    fn hide_key(&self) -> Option<Vec<u8>> {
        let s = self.cfg.secret.as_ref()?;
        Some(match self.version {
            Version::V2 => s.clone(),
            Version::V3 => avp::v3_hiding_key(s),
        })
    }

    fn hiding(&self) -> bool {
        self.cfg.hide_avps
            && self.cfg.secret.is_some()
            && (self.version == Version::V2 || self.auth)
    }

    fn state_name(&self) -> &'static str {
        match self.state {
            TState::WaitCtlReply => "wait-ctl-reply",
            TState::WaitCtlConn => "wait-ctl-conn",
            TState::Established => "established",
            TState::Closing { .. } => "closing",
            TState::Held { .. } => "held",
        }
    }

    fn is_dying(&self) -> bool {
        matches!(self.state, TState::Closing { .. } | TState::Held { .. })
    }
}

/// Endpoint state shared by all tunnels.
#[derive(Debug)]
struct Shared {
    rng: StdRng,
    events: VecDeque<Event>,
    session_ids: HashSet<u32>,
    call_serial: u32,
}

/// Shared mutable context handed to tunnel code (split borrow of the endpoint).
struct Ctx<'a> {
    now: Timestamp,
    rng: &'a mut StdRng,
    events: &'a mut VecDeque<Event>,
    session_ids: &'a mut HashSet<u32>,
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
    fn alloc_session_id(&mut self, version: Version) -> Option<u32> {
        for _ in 0..1000 {
            let id = match version {
                Version::V2 => u32::from(self.rng.random::<u16>()),
                Version::V3 => self.rng.random::<u32>(),
            };
            if id != 0 && self.session_ids.insert(id) {
                return Some(id);
            }
        }
        None
    }

    fn random_bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.rng.fill_bytes(&mut v);
        v
    }
}

/// The control-protocol engine for one local address: owns all tunnels and sessions.
#[derive(Debug)]
pub struct Endpoint {
    cfg: Config,
    encap: Encap,
    sh: Shared,
    tunnels: BTreeMap<u32, Tunnel>,
    by_peer: HashMap<(SocketAddr, u32), u32>,
    transmits: VecDeque<Transmit>,
    stats: EndpointStats,
}

fn be_u16(v: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*v.get(at)?, *v.get(at + 1)?]))
}

/// Message type of a control message starting at the flags word, if it has a body.
fn peek_msg_type(msg: &[u8]) -> Option<u16> {
    let body = msg.get(HEADER_LEN..)?;
    if be_u16(body, 4)? != attr::MESSAGE_TYPE || be_u16(body, 2)? != 0 {
        return None;
    }
    be_u16(body, 6)
}

impl Endpoint {
    /// A new endpoint. `cfg` applies to tunnels the peer opens; `encap` selects UDP or
    /// L2TPv3/IP framing; `seed` seeds the random generator (ids, challenges, nonces, cookies).
    pub fn new(cfg: Config, encap: Encap, seed: u64) -> Endpoint {
        Endpoint {
            cfg,
            encap,
            sh: Shared {
                rng: StdRng::seed_from_u64(seed),
                events: VecDeque::new(),
                session_ids: HashSet::new(),
                call_serial: 0,
            },
            tunnels: BTreeMap::new(),
            by_peer: HashMap::new(),
            transmits: VecDeque::new(),
            stats: EndpointStats::default(),
        }
    }

    /// Endpoint counters.
    pub fn stats(&self) -> EndpointStats {
        self.stats
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
        self.tunnels
            .values()
            .filter_map(|t| {
                let hello = (t.state == TState::Established && t.chan.unacked() == 0)
                    .then(|| t.last_rx + t.cfg.hello_interval + t.hello_jitter);
                let hold = match t.state {
                    TState::Closing { until } | TState::Held { until } => Some(until),
                    _ => None,
                };
                [t.chan.poll_timeout(), hello, hold]
                    .into_iter()
                    .flatten()
                    .min()
            })
            .min()
    }

    /// Tell the engine that data arrived on a tunnel (postpones the HELLO, rfc-facts §1.11).
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
            if id != 0 && !self.tunnels.contains_key(&id) {
                return Some(id);
            }
        }
        None
    }

    fn new_tunnel(
        &mut self,
        now: Timestamp,
        peer: SocketAddr,
        cfg: Config,
        version: Version,
        initiator: bool,
    ) -> Option<u32> {
        let id = self.alloc_tunnel_id(version)?;
        let auth = version == Version::V3 && cfg.secret.is_some();
        let digest_key = cfg
            .secret
            .as_deref()
            .map(avp::v3_digest_key)
            .unwrap_or_default();
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
                digest_key,
                our_nonce,
                peer_nonce: Vec::new(),
                peer_host_name: String::new(),
                peer_router_id: None,
                peer_pw_types: Vec::new(),
                last_rx: now,
                hello_jitter: Duration::ZERO,
                sessions: BTreeMap::new(),
            },
        );
        Some(id)
    }

    /// Open a control connection to `peer` (sends SCCRQ). Returns our tunnel id.
    pub fn connect(&mut self, now: Timestamp, peer: SocketAddr, cfg: Config) -> Result<u32, Error> {
        if cfg.version == Version::V2 && self.encap == Encap::Ip {
            return Err(Error::BadConfig("L2TPv2 cannot run over IP encapsulation"));
        }
        let version = cfg.version;
        let id = self
            .new_tunnel(now, peer, cfg, version, true)
            .ok_or(Error::NoIds)?;
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
            send_sccrq_or_sccrp(t, &mut ctx, SCCRQ, None);
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
        let (mut ctx, tunnels) = self.ctx(now);
        let t = tunnels.get_mut(&tunnel_id).ok_or(Error::NoTunnel)?;
        if t.is_dying() {
            return Err(Error::Closing);
        }
        let sid = ctx.alloc_session_id(t.version).ok_or(Error::NoIds)?;
        *ctx.call_serial = ctx.call_serial.wrapping_add(1);
        let mut cfg = cfg;
        let pw_type = if t.version == Version::V2 {
            // v2 sessions are PPP and use neither cookies nor a sublayer (kernel-facts §1.6).
            cfg.cookie_len = 0;
            cfg.l2spec_type = 0;
            7
        } else {
            cfg.pw_type
        };
        let our_cookie = ctx.random_bytes(usize::from(cfg.cookie_len.min(8)));
        t.sessions.insert(
            sid,
            Session {
                local_id: sid,
                peer_id: 0,
                cfg,
                state: SState::WaitTunnel,
                initiator: true,
                call_serial: *ctx.call_serial,
                our_cookie,
                peer_cookie: Vec::new(),
                peer_l2spec: 0,
                peer_seq: false,
                pw_type,
                tie_breaker: None,
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
        result_code: u16,
    ) -> Result<(), Error> {
        let (mut ctx, tunnels) = self.ctx(now);
        let t = tunnels.get_mut(&tunnel_id).ok_or(Error::NoTunnel)?;
        if !t.sessions.contains_key(&session_id) {
            return Err(Error::NoSession);
        }
        clear_session(
            t,
            &mut ctx,
            session_id,
            Some((result_code, None, String::new())),
            DownReason::Local,
        );
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
        let (mut ctx, tunnels) = self.ctx(now);
        let t = tunnels.get_mut(&tunnel_id).ok_or(Error::NoTunnel)?;
        let s = t.sessions.get(&session_id).ok_or(Error::NoSession)?.clone();
        if s.state != SState::Established {
            return Err(Error::NoSession);
        }
        send_session_msg(t, &mut ctx, SLI, &s, |b, v| match v {
            Version::V2 => {
                let mut a = vec![0, 0];
                a.extend_from_slice(&accm.0.to_be_bytes());
                a.extend_from_slice(&accm.1.to_be_bytes());
                b.hidable(attr::ACCM, true, &a);
            }
            Version::V3 => b.u16(attr::CIRCUIT_STATUS, circuit_status),
        });
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
        let (mut ctx, tunnels) = self.ctx(now);
        let t = tunnels.get_mut(&tunnel_id).ok_or(Error::NoTunnel)?;
        let s = t.sessions.get(&session_id).ok_or(Error::NoSession)?.clone();
        if s.state != SState::Established {
            return Err(Error::NoSession);
        }
        send_session_msg(t, &mut ctx, WEN, &s, |b, v| {
            let mut val = vec![0u8, 0];
            let used: &[u32] = match v {
                Version::V2 => &counters,
                Version::V3 => &counters[2..],
            };
            for c in used {
                val.extend_from_slice(&c.to_be_bytes());
            }
            b.hidable(attr::CALL_ERRORS, true, &val);
        });
        self.service(now, tunnel_id);
        Ok(())
    }

    /// Clear a tunnel and all its sessions (sends StopCCN).
    pub fn close_tunnel(
        &mut self,
        now: Timestamp,
        tunnel_id: u32,
        result_code: u16,
    ) -> Result<(), Error> {
        let (mut ctx, tunnels) = self.ctx(now);
        let t = tunnels.get_mut(&tunnel_id).ok_or(Error::NoTunnel)?;
        if t.is_dying() {
            return Err(Error::Closing);
        }
        stop_tunnel(t, &mut ctx, result_code, None, DownReason::Local);
        self.service(now, tunnel_id);
        Ok(())
    }

    /// Handle a received datagram (`bytes` starts at the flags word for UDP, at the 4 zero
    /// octets for L2TPv3/IP). Malformed input is counted and dropped.
    pub fn handle_datagram(&mut self, now: Timestamp, from: SocketAddr, bytes: &[u8]) {
        self.stats.rx_datagrams += 1;
        let Ok((hdr, body)) = ControlHeader::parse_any(bytes, self.encap) else {
            self.stats.rx_malformed += 1;
            return;
        };
        let pre = self.encap.prefix_len();
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
                Some(SCCRQ) => match self.admit(now, from, hdr, msg) {
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
        let Some(t) = self.tunnels.get_mut(&tid) else {
            self.stats.rx_unknown_tunnel += 1;
            return;
        };
        if t.version != hdr.version {
            self.stats.rx_malformed += 1;
            return;
        }
        // RFC 3931 §4.3 / rfc-facts §2.8: verify the digest before using any content.
        if t.auth {
            let nonce_in_msg;
            let nonces: Vec<&[u8]> = match mtype {
                Some(SCCRQ) => Vec::new(),
                _ => {
                    let peer_nonce: &[u8] = if t.peer_nonce.is_empty() && mtype == Some(SCCRP) {
                        let key = t.hide_key();
                        nonce_in_msg = avp::parse_avps(&msg[HEADER_LEN..], key.as_deref())
                            .ok()
                            .and_then(|a| Msg::new(a).get(attr::NONCE).map(<[u8]>::to_vec))
                            .unwrap_or_default();
                        &nonce_in_msg
                    } else {
                        &t.peer_nonce
                    };
                    vec![peer_nonce, &t.our_nonce]
                }
            };
            if hdr.is_zlb() || !avp::verify(&t.digest_key, &nonces, msg) {
                self.stats.rx_auth_failures += 1;
                return;
            }
        }
        // The shared wire layer classifies malformed messages (rfc-facts §1.18): framing errors
        // are discarded before they touch the sequence state.
        if !hdr.is_zlb() {
            if let Err(e) = WireMessage::parse(msg, t.version, t.cfg.secret.as_deref()) {
                if e.reaction == Reaction::Discard {
                    self.stats.rx_malformed += 1;
                    return;
                }
            }
        }
        t.last_rx = now;
        let is_ack = hdr.is_zlb() || mtype == Some(ACK);
        let verdict = t.chan.on_receive(now, hdr.ns, hdr.nr, is_ack, msg);
        if let RxVerdict::Deliver(msgs) = verdict {
            let (mut ctx, tunnels) = self.ctx(now);
            if let Some(t) = tunnels.get_mut(&tid) {
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
        from: SocketAddr,
        hdr: ControlHeader,
        msg: &[u8],
    ) -> Option<u32> {
        let cfg = self.cfg.clone();
        let hide_key = cfg.secret.as_ref().map(|s| match hdr.version {
            Version::V2 => s.clone(),
            Version::V3 => avp::v3_hiding_key(s),
        });
        let Ok(avps) = avp::parse_avps(&msg[HEADER_LEN..], hide_key.as_deref()) else {
            self.stats.rx_malformed += 1;
            return None;
        };
        let m = Msg::new(avps);
        // v3 authentication: an SCCRQ's digest covers the message alone (rfc-facts §2.8).
        if hdr.version == Version::V3 {
            if let Some(s) = &cfg.secret {
                if !avp::verify(&avp::v3_digest_key(s), &[], msg) {
                    self.stats.rx_auth_failures += 1;
                    return None;
                }
            }
        }
        let peer_tid = match hdr.version {
            Version::V2 => m.u16(attr::ASSIGNED_TUNNEL_ID).map(u32::from),
            Version::V3 => m.u32(attr::ASSIGNED_CCID),
        };
        let Some(peer_tid) = peer_tid.filter(|&p| p != 0) else {
            self.stats.rx_malformed += 1;
            return None;
        };
        if hdr.version == Version::V2 && self.encap == Encap::Ip {
            self.stats.rx_malformed += 1;
            return None;
        }
        // Retransmitted SCCRQ of a tunnel we already admitted.
        if let Some(&tid) = self.by_peer.get(&(from, peer_tid)) {
            if self.tunnels.contains_key(&tid) {
                return Some(tid);
            }
        }
        // Tie-break against our own outstanding SCCRQ to the same peer (rfc-facts §1.14, §2.11).
        let theirs: Option<[u8; 8]> = m.get(attr::TIE_BREAKER).and_then(|v| v.try_into().ok());
        let contender = self
            .tunnels
            .values()
            .find(|t| {
                t.initiator
                    && t.state == TState::WaitCtlReply
                    && t.peer.ip() == from.ip()
                    && t.version == hdr.version
            })
            .map(|t| (t.local_id, t.tie_breaker));
        let mut loser: Option<u32> = None;
        if let Some((ours_id, ours)) = contender {
            let we_win = match (ours, theirs) {
                (Some(a), Some(b)) => a < b,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                // Neither sent one: two separate tunnels (rfc-facts §1.14).
                (None, None) => return self.admit_new(now, from, hdr, &cfg, peer_tid, None),
            };
            if we_win {
                self.stats.tie_breaks_won += 1;
                return None;
            }
            loser = Some(ours_id);
        }
        self.admit_new(now, from, hdr, &cfg, peer_tid, loser)
    }

    fn admit_new(
        &mut self,
        now: Timestamp,
        from: SocketAddr,
        hdr: ControlHeader,
        cfg: &Config,
        peer_tid: u32,
        loser: Option<u32>,
    ) -> Option<u32> {
        let tid = self.new_tunnel(now, from, cfg.clone(), hdr.version, false)?;
        self.by_peer.insert((from, peer_tid), tid);
        if let Some(lid) = loser {
            if let Some(mut lt) = self.tunnels.remove(&lid) {
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

    /// Handle timers: retransmissions, delayed acks, hellos, hold-down expiry.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let ids: Vec<u32> = self.tunnels.keys().copied().collect();
        for tid in ids {
            let mut ctx = self.sh.ctx(now);
            let Some(t) = self.tunnels.get_mut(&tid) else {
                continue;
            };
            if let Some(b) = t.chan.on_timeout(now) {
                emit(t, self.encap, &mut self.transmits, b);
            }
            if t.state == TState::Established
                && t.chan.unacked() == 0
                && now >= t.last_rx + t.cfg.hello_interval + t.hello_jitter
            {
                // rfc-facts §1.11: HELLO after an idle interval; it is retransmitted like any
                // control message, so a silent peer eventually tears the tunnel down.
                t.last_rx = now;
                t.hello_jitter = hello_jitter(&mut ctx, t.cfg.hello_interval);
                let b = new_msg(t, &mut ctx, HELLO, 0);
                t.chan.send(b.finish());
            }
            self.service(now, tid);
        }
    }

    /// Flush a tunnel's channel to the transmit queue and retire dead tunnels.
    fn service(&mut self, now: Timestamp, tid: u32) {
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
        for b in t.chan.poll_send(now) {
            emit(t, self.encap, &mut self.transmits, b);
        }
        if t.chan.take_ack(now) {
            let ack = build_ack(t);
            emit(t, self.encap, &mut self.transmits, ack);
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
        if let Some(t) = self.tunnels.remove(&tid) {
            for sid in t.sessions.keys() {
                self.sh.session_ids.remove(sid);
            }
            self.by_peer.retain(|_, v| *v != tid);
        }
    }
}

/// Sign (v3 auth), add the IP prefix and queue a datagram.
fn emit(t: &Tunnel, encap: Encap, out: &mut VecDeque<Transmit>, mut b: Vec<u8>) {
    if t.auth {
        let nonces: Vec<&[u8]> = match peek_msg_type(&b) {
            Some(SCCRQ) => Vec::new(),
            _ => vec![&t.our_nonce, &t.peer_nonce],
        };
        avp::sign(t.cfg.digest, &t.digest_key, &nonces, &mut b);
    }
    let bytes = match encap {
        Encap::Udp => b,
        Encap::Ip => {
            let mut v = Vec::with_capacity(4 + b.len());
            v.extend_from_slice(&[0, 0, 0, 0]);
            v.extend_from_slice(&b);
            v
        }
    };
    out.push_back(Transmit { dst: t.peer, bytes });
}

/// Pure acknowledgement: ZLB (v2, or v3 without authentication) / ACK message (v3).
fn build_ack(t: &Tunnel) -> Vec<u8> {
    let mut hdr = ControlHeader::new(t.version, t.peer_id, 0);
    hdr.ns = t.chan.next_ns();
    hdr.nr = t.chan.nr();
    let mut b = match t.version {
        Version::V2 => {
            let mut v = Vec::with_capacity(HEADER_LEN);
            let _ = hdr.emit(&mut v);
            v
        }
        Version::V3 => {
            let mut mb = MsgBuilder::new(&hdr, ACK);
            if t.auth {
                mb.digest_placeholder(t.cfg.digest);
            }
            mb.finish()
        }
    };
    let _ = ul2tp_wire::control::set_ns_nr(&mut b, hdr.ns, hdr.nr);
    b
}

/// Start a message for the tunnel's peer (header, Message Type, digest slot, Random Vector).
fn new_msg(t: &Tunnel, ctx: &mut Ctx<'_>, mtype: u16, v2_session: u16) -> MsgBuilder {
    let hdr = ControlHeader::new(t.version, t.peer_id, v2_session);
    let mut b = MsgBuilder::new(&hdr, mtype);
    if t.auth {
        b.digest_placeholder(t.cfg.digest);
    }
    if t.hiding() {
        if let Some(key) = t.hide_key() {
            let rv = ctx.random_bytes(16);
            b.enable_hiding(key, rv);
        }
    }
    b
}

fn send_sccrq_or_sccrp(t: &mut Tunnel, ctx: &mut Ctx<'_>, mtype: u16, answer: Option<[u8; 16]>) {
    let mut b = new_msg(t, ctx, mtype, 0);
    let cfg = t.cfg.clone();
    match t.version {
        Version::V2 => {
            b.u16(attr::PROTOCOL_VERSION, 0x0100);
            b.raw(attr::HOST_NAME, true, cfg.host_name.as_bytes());
            b.hidable(
                attr::FRAMING_CAPABILITIES,
                true,
                &cfg.framing_caps.to_be_bytes(),
            );
            b.hidable(
                attr::BEARER_CAPABILITIES,
                true,
                &cfg.bearer_caps.to_be_bytes(),
            );
            b.hidable(
                attr::ASSIGNED_TUNNEL_ID,
                true,
                &(t.local_id as u16).to_be_bytes(),
            );
        }
        Version::V3 => {
            b.raw(attr::HOST_NAME, true, cfg.host_name.as_bytes());
            b.u32(attr::ROUTER_ID, cfg.router_id);
            b.hidable(attr::ASSIGNED_CCID, true, &t.local_id.to_be_bytes());
            let caps: Vec<u8> = cfg.pw_types.iter().flat_map(|p| p.to_be_bytes()).collect();
            b.hidable(attr::PW_CAPABILITIES, true, &caps);
            if t.auth {
                b.raw(attr::NONCE, true, &t.our_nonce);
            }
        }
    }
    b.u16(attr::RECEIVE_WINDOW_SIZE, cfg.rx_window.max(1));
    if mtype == SCCRQ {
        if let Some(tb) = t.tie_breaker {
            // v2: M=0; v3: M=1 (rfc-facts §1.4, §2.6).
            b.raw(attr::TIE_BREAKER, t.version == Version::V3, &tb);
        }
    }
    if let Some(ch) = &t.our_challenge {
        b.hidable(attr::CHALLENGE, true, ch);
    }
    if let Some(r) = answer {
        b.hidable(attr::CHALLENGE_RESPONSE, true, &r);
    }
    t.chan.send(b.finish());
}

/// Tear the tunnel down from our side: StopCCN, session/tunnel down events, hold-down.
fn stop_tunnel(
    t: &mut Tunnel,
    ctx: &mut Ctx<'_>,
    result_code: u16,
    error: Option<(u16, String)>,
    reason: DownReason,
) {
    let mut b = new_msg(t, ctx, STOPCCN, 0);
    match t.version {
        Version::V2 => b.hidable(
            attr::ASSIGNED_TUNNEL_ID,
            true,
            &(t.local_id as u16).to_be_bytes(),
        ),
        Version::V3 => b.hidable(attr::ASSIGNED_CCID, true, &t.local_id.to_be_bytes()),
    }
    b.raw(
        attr::RESULT_CODE,
        true,
        &result_value(result_code, error.as_ref().map(|e| (e.0, e.1.as_str()))),
    );
    // Nothing queued before the StopCCN matters any more; only the StopCCN is delivered.
    t.chan.abandon();
    t.chan.send(b.finish());
    down_all(t, ctx, reason);
    // rfc-facts §1.11 / §2.9: keep delivering the StopCCN for a full retransmission cycle.
    t.state = TState::Closing {
        until: ctx.now + t.cfg.stop_hold,
    };
}

fn result_value(result: u16, error: Option<(u16, &str)>) -> Vec<u8> {
    let mut v = result.to_be_bytes().to_vec();
    if let Some((e, m)) = error {
        v.extend_from_slice(&e.to_be_bytes());
        v.extend_from_slice(m.as_bytes());
    }
    v
}

/// Emit SessionDown for every session and TunnelDown for the tunnel.
fn down_all(t: &mut Tunnel, ctx: &mut Ctx<'_>, reason: DownReason) {
    for (sid, s) in std::mem::take(&mut t.sessions) {
        ctx.session_ids.remove(&sid);
        ctx.events.push_back(Event::SessionDown {
            tunnel_id: t.local_id,
            session_id: sid,
            peer_session_id: s.peer_id,
            reason: DownReason::TunnelDown,
            was_up: s.state == SState::Established,
        });
    }
    ctx.events.push_back(Event::TunnelDown {
        tunnel_id: t.local_id,
        peer_tunnel_id: t.peer_id,
        reason,
        was_up: t.was_up,
        replaced_by: None,
    });
}

fn protocol_error(
    t: &mut Tunnel,
    ctx: &mut Ctx<'_>,
    result_code: u16,
    error_code: Option<u16>,
    message: &str,
) {
    let reason = DownReason::Protocol {
        result_code,
        error_code,
        message: message.to_string(),
    };
    stop_tunnel(
        t,
        ctx,
        result_code,
        error_code.map(|e| (e, message.to_string())),
        reason,
    );
}

/// Deliver one in-order message to the tunnel state machine.
fn dispatch(t: &mut Tunnel, ctx: &mut Ctx<'_>, msg: &[u8]) {
    let hide_key = t.hide_key();
    let m = match avp::parse_avps(&msg[HEADER_LEN.min(msg.len())..], hide_key.as_deref()) {
        Ok(a) => Msg::new(a),
        Err(avp::AvpError::BadHidden {
            mandatory: false, ..
        }) => return,
        Err(e) => {
            if !t.is_dying() {
                protocol_error(
                    t,
                    ctx,
                    result::STOP_ERROR,
                    Some(result::ERR_BAD_VALUE),
                    &e.to_string(),
                );
            }
            return;
        }
    };
    if let TState::Held { .. } | TState::Closing { .. } = t.state {
        // Only acknowledgements matter now (done by the channel).
        return;
    }
    // RFC checks of the shared wire layer (missing mandatory AVPs, unknown M=1 AVPs, bad
    // values): apply the reaction it prescribes (rfc-facts §1.3, §1.18, §2.6).
    if let Err(e) = WireMessage::parse(msg, t.version, t.cfg.secret.as_deref()) {
        match e.reaction {
            Reaction::Discard | Reaction::Ignore => {}
            Reaction::StopCcn { result, error } => {
                if t.peer_id == 0 {
                    // Answer to the id the peer assigned, if it told us.
                    let pid = match t.version {
                        Version::V2 => m.u16(attr::ASSIGNED_TUNNEL_ID).map(u32::from),
                        Version::V3 => m.u32(attr::ASSIGNED_CCID),
                    };
                    t.peer_id = pid.unwrap_or(0);
                }
                protocol_error(t, ctx, result.get(), Some(error.get()), &e.error_message());
            }
            Reaction::Cdn { result, error } => {
                let reason = DownReason::Protocol {
                    result_code: result.get(),
                    error_code: Some(error.get()),
                    message: e.error_message(),
                };
                let found = if matches!(m.msg_type, ICRQ | OCRQ) {
                    None
                } else {
                    find_session(t, &m, msg)
                };
                if let Some(sid) = found {
                    let cdn = (result.get(), Some(error.get()), e.error_message());
                    clear_session(t, ctx, sid, Some(cdn), reason);
                } else if matches!(m.msg_type, ICRQ | OCRQ) {
                    let peer_sid = match t.version {
                        Version::V2 => m.u16(attr::ASSIGNED_SESSION_ID).map(u32::from),
                        Version::V3 => m.u32(attr::LOCAL_SESSION_ID),
                    };
                    if let Some(p) = peer_sid.filter(|&p| p != 0) {
                        refuse_call(t, ctx, p, result.get(), Some(error.get()));
                    }
                }
            }
        }
        return;
    }
    let v3 = t.version == Version::V3;
    let is_session_msg = matches!(
        m.msg_type,
        OCRQ | OCRP | OCCN | ICRQ | ICRP | ICCN | CDN | WEN | SLI
    );
    if let Some(a) = m.unknown_mandatory(v3) {
        // rfc-facts §1.3 / §2.6: unknown M=1 AVP ⇒ StopCCN or CDN with Result 2 / Error 8.
        let text = format!("unknown mandatory AVP vendor {} type {}", a.vendor, a.attr);
        if is_session_msg {
            if let Some(sid) = find_session(t, &m, msg) {
                clear_session(
                    t,
                    ctx,
                    sid,
                    Some((
                        result::CDN_ERROR,
                        Some(result::ERR_UNKNOWN_AVP),
                        text.clone(),
                    )),
                    DownReason::Protocol {
                        result_code: result::CDN_ERROR,
                        error_code: Some(result::ERR_UNKNOWN_AVP),
                        message: text,
                    },
                );
            }
        } else {
            protocol_error(
                t,
                ctx,
                result::STOP_ERROR,
                Some(result::ERR_UNKNOWN_AVP),
                &text,
            );
        }
        return;
    }
    match m.msg_type {
        SCCRQ if t.state == TState::WaitCtlConn && !t.was_up && t.peer_id == 0 => {
            on_sccrq(t, ctx, &m)
        }
        SCCRP if t.state == TState::WaitCtlReply => on_sccrp(t, ctx, &m),
        SCCCN if t.state == TState::WaitCtlConn && t.peer_id != 0 => on_scccn(t, ctx, &m),
        SCCRQ | SCCRP | SCCCN => protocol_error(
            t,
            ctx,
            result::STOP_FSM,
            None,
            "control message in wrong state",
        ),
        STOPCCN => {
            let (r, e, text) = m.result_code().unwrap_or((0, None, String::new()));
            down_all(
                t,
                ctx,
                DownReason::Peer {
                    result_code: r,
                    error_code: e,
                    message: text,
                },
            );
            t.chan.abandon();
            // rfc-facts §1.11: keep state to re-acknowledge retransmitted StopCCNs.
            t.state = TState::Held {
                until: ctx.now + t.cfg.stop_hold,
            };
        }
        HELLO => {}
        _ if is_session_msg => {
            if t.state == TState::Established {
                on_session_msg(t, ctx, &m, msg);
            }
        }
        _ => {
            // Unknown message type: M=1 ⇒ clear the tunnel, M=0 ⇒ ignore (rfc-facts §1.3).
            let mandatory = m.avps.first().is_some_and(|a| a.mandatory);
            if mandatory {
                protocol_error(
                    t,
                    ctx,
                    result::STOP_ERROR,
                    Some(result::ERR_BAD_VALUE),
                    "unknown message type",
                );
            }
        }
    }
}

fn on_sccrq(t: &mut Tunnel, ctx: &mut Ctx<'_>, m: &Msg) {
    if !read_peer_params(t, m) {
        return protocol_error(
            t,
            ctx,
            result::STOP_ERROR,
            Some(result::ERR_BAD_VALUE),
            "SCCRQ lacks a mandatory AVP",
        );
    }
    // v3: a peer that authenticates must be matched by us and vice versa (rfc-facts §2.8).
    if t.version == Version::V3 {
        match (t.auth, m.get(attr::NONCE)) {
            (true, Some(n)) => t.peer_nonce = n.to_vec(),
            (false, None) => {}
            _ => {
                t.auth = false;
                return stop_auth(t, ctx);
            }
        }
    }
    let mut answer = None;
    if let Some(ch) = m.get(attr::CHALLENGE) {
        match (&t.cfg.secret, t.cfg.answer_challenge) {
            (Some(s), true) => answer = Some(avp::challenge_response(SCCRP as u8, s, ch)),
            _ => return stop_auth(t, ctx),
        }
    }
    if t.version == Version::V2 && t.cfg.send_challenge && t.cfg.secret.is_some() {
        t.our_challenge = Some(ctx.random_bytes(16));
    }
    send_sccrq_or_sccrp(t, ctx, SCCRP, answer);
}

fn stop_auth(t: &mut Tunnel, ctx: &mut Ctx<'_>) {
    stop_tunnel(
        t,
        ctx,
        result::STOP_NOT_AUTHORISED,
        None,
        DownReason::AuthFailed,
    );
}

/// Read the peer's SCCRQ/SCCRP parameters; false if a mandatory one is missing.
fn read_peer_params(t: &mut Tunnel, m: &Msg) -> bool {
    let peer_id = match t.version {
        Version::V2 => m.u16(attr::ASSIGNED_TUNNEL_ID).map(u32::from),
        Version::V3 => m.u32(attr::ASSIGNED_CCID),
    };
    let Some(peer_id) = peer_id.filter(|&p| p != 0) else {
        return false;
    };
    let Some(host) = m.get(attr::HOST_NAME).filter(|h| !h.is_empty()) else {
        return false;
    };
    match t.version {
        Version::V2 => {
            if m.get(attr::PROTOCOL_VERSION).is_none()
                || m.get(attr::FRAMING_CAPABILITIES).is_none()
            {
                return false;
            }
        }
        Version::V3 => {
            let Some(rid) = m.u32(attr::ROUTER_ID) else {
                return false;
            };
            let Some(caps) = m.get(attr::PW_CAPABILITIES) else {
                return false;
            };
            t.peer_router_id = Some(rid);
            t.peer_pw_types = caps
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
        }
    }
    t.peer_id = peer_id;
    t.peer_host_name = String::from_utf8_lossy(host).into_owned();
    // rfc-facts §1.10: absent ⇒ 4; 0 is invalid (ignored).
    t.chan
        .set_peer_window(m.u16(attr::RECEIVE_WINDOW_SIZE).unwrap_or(4));
    true
}

fn on_sccrp(t: &mut Tunnel, ctx: &mut Ctx<'_>, m: &Msg) {
    if !read_peer_params(t, m) {
        return protocol_error(
            t,
            ctx,
            result::STOP_ERROR,
            Some(result::ERR_BAD_VALUE),
            "SCCRP lacks a mandatory AVP",
        );
    }
    if t.version == Version::V3 {
        match (t.auth, m.get(attr::NONCE)) {
            (true, Some(n)) => t.peer_nonce = n.to_vec(),
            (false, None) => {}
            _ => return stop_auth(t, ctx),
        }
    }
    // rfc-facts §1.9: our challenge must be answered with MD5(2 ‖ secret ‖ challenge).
    if let (Some(ch), Some(s)) = (&t.our_challenge, &t.cfg.secret) {
        let want = avp::challenge_response(SCCRP as u8, s, ch);
        if m.get(attr::CHALLENGE_RESPONSE) != Some(&want[..]) {
            return stop_auth(t, ctx);
        }
    }
    let mut b = new_msg(t, ctx, SCCCN, 0);
    if let Some(ch) = m.get(attr::CHALLENGE) {
        match (&t.cfg.secret, t.cfg.answer_challenge) {
            (Some(s), true) => {
                let r = avp::challenge_response(SCCCN as u8, s, ch);
                b.hidable(attr::CHALLENGE_RESPONSE, true, &r);
            }
            _ => return stop_auth(t, ctx),
        }
    }
    t.chan.send(b.finish());
    tunnel_up(t, ctx);
}

fn on_scccn(t: &mut Tunnel, ctx: &mut Ctx<'_>, m: &Msg) {
    if let (Some(ch), Some(s)) = (&t.our_challenge, &t.cfg.secret) {
        let want = avp::challenge_response(SCCCN as u8, s, ch);
        if m.get(attr::CHALLENGE_RESPONSE) != Some(&want[..]) {
            return stop_auth(t, ctx);
        }
    }
    tunnel_up(t, ctx);
}

fn info_of(t: &Tunnel) -> TunnelInfo {
    TunnelInfo {
        version: t.version,
        tunnel_id: t.local_id,
        peer_tunnel_id: t.peer_id,
        peer: t.peer,
        initiator: t.initiator,
        peer_host_name: t.peer_host_name.clone(),
        peer_router_id: t.peer_router_id,
        peer_rx_window: t.chan.peer_window(),
        peer_pw_types: t.peer_pw_types.clone(),
        authenticated: t.auth,
    }
}

/// Up to an eighth of the hello interval (rfc-facts §2.9: jitter HELLOs).
fn hello_jitter(ctx: &mut Ctx<'_>, interval: Duration) -> Duration {
    let max = u64::try_from(interval.as_micros() / 8).unwrap_or(u64::MAX);
    Duration::from_micros(ctx.rng.random_range(0..=max))
}

fn tunnel_up(t: &mut Tunnel, ctx: &mut Ctx<'_>) {
    t.state = TState::Established;
    t.hello_jitter = hello_jitter(ctx, t.cfg.hello_interval);
    t.was_up = true;
    t.last_rx = ctx.now;
    ctx.events.push_back(Event::TunnelUp(info_of(t)));
    let waiting: Vec<u32> = t
        .sessions
        .values()
        .filter(|s| s.state == SState::WaitTunnel)
        .map(|s| s.local_id)
        .collect();
    for sid in waiting {
        start_session(t, ctx, sid);
    }
}

/// Build and queue a session message; `fill` adds the type-specific AVPs.
fn send_session_msg(
    t: &mut Tunnel,
    ctx: &mut Ctx<'_>,
    mtype: u16,
    s: &Session,
    fill: impl FnOnce(&mut MsgBuilder, Version),
) {
    let v2_sid = if t.version == Version::V2 {
        s.peer_id as u16
    } else {
        0
    };
    let mut b = new_msg(t, ctx, mtype, v2_sid);
    if t.version == Version::V3 {
        b.hidable(attr::LOCAL_SESSION_ID, true, &s.local_id.to_be_bytes());
        b.hidable(attr::REMOTE_SESSION_ID, true, &s.peer_id.to_be_bytes());
    }
    fill(&mut b, t.version);
    t.chan.send(b.finish());
}

fn v3_pw_avps(b: &mut MsgBuilder, s: &Session, with_cookie: bool) {
    if with_cookie && !s.our_cookie.is_empty() {
        b.hidable(attr::ASSIGNED_COOKIE, true, &s.our_cookie);
    }
    b.u16(attr::L2_SPECIFIC_SUBLAYER, s.cfg.l2spec_type);
    b.u16(attr::DATA_SEQUENCING, if s.cfg.recv_seq { 2 } else { 0 });
}

/// Send ICRQ / OCRQ for a session that was waiting for the tunnel.
fn start_session(t: &mut Tunnel, ctx: &mut Ctx<'_>, sid: u32) {
    let Some(s) = t.sessions.get_mut(&sid) else {
        return;
    };
    s.state = SState::WaitReply;
    if t.version == Version::V3 && t.cfg.tie_breaker && !s.cfg.remote_end_id.is_empty() {
        let mut tb = [0u8; 8];
        ctx.rng.fill_bytes(&mut tb);
        s.tie_breaker = Some(tb);
    }
    let s = s.clone();
    let mtype = match s.cfg.call {
        CallType::Incoming => ICRQ,
        CallType::Outgoing => OCRQ,
    };
    send_session_msg(t, ctx, mtype, &s, |b, v| match v {
        Version::V2 => {
            b.hidable(
                attr::ASSIGNED_SESSION_ID,
                true,
                &(s.local_id as u16).to_be_bytes(),
            );
            b.hidable(attr::CALL_SERIAL_NUMBER, true, &s.call_serial.to_be_bytes());
            b.hidable(attr::BEARER_TYPE, true, &0u32.to_be_bytes());
            if mtype == OCRQ {
                b.hidable(attr::MINIMUM_BPS, true, &0u32.to_be_bytes());
                b.hidable(attr::MAXIMUM_BPS, true, &u32::MAX.to_be_bytes());
                b.hidable(attr::FRAMING_TYPE, true, &1u32.to_be_bytes());
                b.hidable(attr::CALLED_NUMBER, true, &s.cfg.remote_end_id);
            }
        }
        Version::V3 => {
            b.hidable(
                attr::CALL_SERIAL_NUMBER,
                false,
                &s.call_serial.to_be_bytes(),
            );
            b.hidable(attr::PW_TYPE, true, &s.pw_type.to_be_bytes());
            b.hidable(attr::REMOTE_END_ID, true, &s.cfg.remote_end_id);
            // Circuit Status: A (active) and N (new) (rfc-facts §2.13, RFC 4719).
            b.hidable(attr::CIRCUIT_STATUS, true, &3u16.to_be_bytes());
            if let Some(tb) = s.tie_breaker {
                b.raw(attr::TIE_BREAKER, true, &tb);
            }
            v3_pw_avps(b, &s, true);
        }
    });
}

/// Find the local session a session message refers to.
fn find_session(t: &Tunnel, m: &Msg, raw: &[u8]) -> Option<u32> {
    match t.version {
        Version::V2 => {
            let sid = u32::from(be_u16(raw, 6)?);
            if sid != 0 {
                return t.sessions.contains_key(&sid).then_some(sid);
            }
            // CDN before the peer learned our id: reverse lookup by its Assigned Session ID.
            let peer = u32::from(m.u16(attr::ASSIGNED_SESSION_ID)?);
            t.sessions
                .values()
                .find(|s| s.peer_id == peer && peer != 0)
                .map(|s| s.local_id)
        }
        Version::V3 => {
            let sid = m.u32(attr::REMOTE_SESSION_ID)?;
            if sid != 0 {
                return t.sessions.contains_key(&sid).then_some(sid);
            }
            let peer = m.u32(attr::LOCAL_SESSION_ID)?;
            t.sessions
                .values()
                .find(|s| s.peer_id == peer && peer != 0)
                .map(|s| s.local_id)
        }
    }
}

/// Remove a session; `cdn` = Some(result, error, message) sends a CDN first.
fn clear_session(
    t: &mut Tunnel,
    ctx: &mut Ctx<'_>,
    sid: u32,
    cdn: Option<(u16, Option<u16>, String)>,
    reason: DownReason,
) {
    let Some(s) = t.sessions.remove(&sid) else {
        return;
    };
    ctx.session_ids.remove(&sid);
    if let Some((r, e, text)) = cdn {
        if s.state != SState::WaitTunnel {
            send_session_msg(t, ctx, CDN, &s, |b, v| {
                b.raw(
                    attr::RESULT_CODE,
                    true,
                    &result_value(r, e.map(|e| (e, text.as_str()))),
                );
                if v == Version::V2 {
                    b.hidable(
                        attr::ASSIGNED_SESSION_ID,
                        true,
                        &(s.local_id as u16).to_be_bytes(),
                    );
                }
            });
        }
    }
    ctx.events.push_back(Event::SessionDown {
        tunnel_id: t.local_id,
        session_id: sid,
        peer_session_id: s.peer_id,
        reason,
        was_up: s.state == SState::Established,
    });
}

/// Refuse a call we have no session for: CDN carrying the peer's id.
fn refuse_call(
    t: &mut Tunnel,
    ctx: &mut Ctx<'_>,
    peer_sid: u32,
    result_code: u16,
    error: Option<u16>,
) {
    // CDN must carry a non-zero id of ours (Assigned Session ID / Local Session ID): use a
    // fresh one that is released at once.
    let local_id = ctx.alloc_session_id(t.version).unwrap_or(1);
    ctx.session_ids.remove(&local_id);
    let s = Session {
        local_id,
        peer_id: peer_sid,
        cfg: SessionConfig::default(),
        state: SState::WaitReply,
        initiator: false,
        call_serial: 0,
        our_cookie: Vec::new(),
        peer_cookie: Vec::new(),
        peer_l2spec: 0,
        peer_seq: false,
        pw_type: 0,
        tie_breaker: None,
    };
    send_session_msg(t, ctx, CDN, &s, |b, v| {
        b.raw(
            attr::RESULT_CODE,
            true,
            &result_value(result_code, error.map(|e| (e, ""))),
        );
        if v == Version::V2 {
            b.hidable(
                attr::ASSIGNED_SESSION_ID,
                true,
                &(local_id as u16).to_be_bytes(),
            );
        }
    });
}

fn fsm_cdn(t: &Tunnel) -> u16 {
    match t.version {
        Version::V2 => result::CDN_ERROR,
        Version::V3 => result::CDN_FSM,
    }
}

fn on_session_msg(t: &mut Tunnel, ctx: &mut Ctx<'_>, m: &Msg, raw: &[u8]) {
    let found = if matches!(m.msg_type, ICRQ | OCRQ) {
        None
    } else {
        find_session(t, m, raw)
    };
    match (m.msg_type, found) {
        (ICRQ | OCRQ, _) => on_call_request(t, ctx, m),
        (CDN, Some(sid)) => {
            let (r, e, text) = m.result_code().unwrap_or((0, None, String::new()));
            clear_session(
                t,
                ctx,
                sid,
                None,
                DownReason::Peer {
                    result_code: r,
                    error_code: e,
                    message: text,
                },
            );
        }
        (ICRP | OCRP, Some(sid)) => on_call_reply(t, ctx, m, sid),
        (ICCN | OCCN, Some(sid)) => on_call_connected(t, ctx, m, sid),
        (SLI, Some(sid)) => {
            let accm = m.get(attr::ACCM).and_then(|v| {
                let a = v.get(2..6)?;
                let b = v.get(6..10)?;
                Some((
                    u32::from_be_bytes([a[0], a[1], a[2], a[3]]),
                    u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
                ))
            });
            ctx.events.push_back(Event::LinkInfo {
                tunnel_id: t.local_id,
                session_id: sid,
                circuit_status: m.u16(attr::CIRCUIT_STATUS),
                accm,
            });
        }
        (WEN, Some(sid)) => ctx.events.push_back(Event::WanError {
            tunnel_id: t.local_id,
            session_id: sid,
            errors: m
                .get(attr::CALL_ERRORS)
                .map(<[u8]>::to_vec)
                .unwrap_or_default(),
        }),
        // Messages for sessions we already cleared (their CDN is on its way): ignore.
        _ => {}
    }
}

fn read_peer_session_params(t: &Tunnel, s: &mut Session, m: &Msg) {
    if t.version == Version::V3 {
        if let Some(c) = m.get(attr::ASSIGNED_COOKIE) {
            s.peer_cookie = c.to_vec();
        }
        if let Some(l) = m.u16(attr::L2_SPECIFIC_SUBLAYER) {
            s.peer_l2spec = l;
        }
        if let Some(d) = m.u16(attr::DATA_SEQUENCING) {
            s.peer_seq = d != 0;
        }
    } else if m.get(attr::SEQUENCING_REQUIRED).is_some() {
        // rfc-facts §1.16: Sequencing Required ⇒ sequence numbers in both directions.
        s.peer_seq = true;
        s.cfg.recv_seq = true;
    }
}

/// v3 session tie-break (rfc-facts §2.10, §2.11): an ICRQ/OCRQ whose Remote End ID equals the
/// one of our own outstanding request of the same kind. Lower Tie Breaker wins; the winner
/// refuses the loser's request with CDN 13; the loser accepts the winner's request and learns
/// of its own defeat from the CDN. If neither side sent a value, or the values are equal, both
/// requests are torn down. Returns true if the peer's request was consumed here.
fn session_tie_break(t: &mut Tunnel, ctx: &mut Ctx<'_>, m: &Msg, peer_sid: u32) -> bool {
    let call = if m.msg_type == OCRQ {
        CallType::Outgoing
    } else {
        CallType::Incoming
    };
    let Some(rei) = m.get(attr::REMOTE_END_ID).filter(|r| !r.is_empty()) else {
        return false;
    };
    let Some(ours) = t
        .sessions
        .values()
        .find(|s| {
            s.initiator
                && s.state == SState::WaitReply
                && s.cfg.call == call
                && s.cfg.remote_end_id == rei
        })
        .map(|s| (s.local_id, s.tie_breaker))
    else {
        return false;
    };
    let theirs: Option<[u8; 8]> = m.get(attr::TIE_BREAKER).and_then(|v| v.try_into().ok());
    let outcome = match (ours.1, theirs) {
        (Some(a), Some(b)) if a != b => Some(a < b),
        (Some(_), None) => Some(true),
        (None, Some(_)) => Some(false),
        _ => None,
    };
    match outcome {
        Some(true) => {
            refuse_call(t, ctx, peer_sid, result::CDN_TIE_BREAK, None);
            true
        }
        Some(false) => false,
        None => {
            let reason = DownReason::Protocol {
                result_code: result::CDN_TIE_BREAK,
                error_code: None,
                message: "session tie-break without a winner".into(),
            };
            clear_session(
                t,
                ctx,
                ours.0,
                Some((result::CDN_TIE_BREAK, None, String::new())),
                reason,
            );
            refuse_call(t, ctx, peer_sid, result::CDN_TIE_BREAK, None);
            true
        }
    }
}

fn on_call_request(t: &mut Tunnel, ctx: &mut Ctx<'_>, m: &Msg) {
    let outgoing = m.msg_type == OCRQ;
    let peer_sid = match t.version {
        Version::V2 => m.u16(attr::ASSIGNED_SESSION_ID).map(u32::from),
        Version::V3 => m.u32(attr::LOCAL_SESSION_ID),
    };
    let Some(peer_sid) = peer_sid.filter(|&p| p != 0) else {
        return; // malformed: nobody to answer
    };
    if t.sessions
        .values()
        .any(|s| s.peer_id == peer_sid && !s.initiator)
    {
        return; // already have it
    }
    if t.version == Version::V3 && session_tie_break(t, ctx, m, peer_sid) {
        return;
    }
    let pw_type = match t.version {
        Version::V2 => 7,
        Version::V3 => match m.u16(attr::PW_TYPE) {
            Some(p) => p,
            None => {
                return refuse_call(
                    t,
                    ctx,
                    peer_sid,
                    result::CDN_ERROR,
                    Some(result::ERR_BAD_VALUE),
                )
            }
        },
    };
    if t.version == Version::V3 {
        if !t.cfg.pw_types.contains(&pw_type) {
            return refuse_call(t, ctx, peer_sid, result::CDN_PW_TYPE, None);
        }
        // rfc-facts §2.12: sequencing requested without an L2-Specific Sublayer ⇒ CDN 15.
        let seq = m.u16(attr::DATA_SEQUENCING).unwrap_or(0);
        let l2ss = m.u16(attr::L2_SPECIFIC_SUBLAYER).unwrap_or(0);
        if seq != 0 && l2ss == 0 {
            return refuse_call(t, ctx, peer_sid, result::CDN_SEQ_NO_L2SS, None);
        }
    }
    let Some(sid) = ctx.alloc_session_id(t.version) else {
        return refuse_call(t, ctx, peer_sid, 4, None);
    };
    let mut cfg = t.cfg.session_defaults.clone();
    cfg.call = if outgoing {
        CallType::Outgoing
    } else {
        CallType::Incoming
    };
    if let Some(r) = m.get(match t.version {
        Version::V2 => attr::CALLED_NUMBER,
        Version::V3 => attr::REMOTE_END_ID,
    }) {
        cfg.remote_end_id = r.to_vec();
    }
    let our_cookie = if t.version == Version::V3 {
        ctx.random_bytes(usize::from(cfg.cookie_len.min(8)))
    } else {
        Vec::new()
    };
    let mut s = Session {
        local_id: sid,
        peer_id: peer_sid,
        cfg,
        state: SState::WaitConnect,
        initiator: false,
        call_serial: m.u32(attr::CALL_SERIAL_NUMBER).unwrap_or(0),
        our_cookie,
        peer_cookie: Vec::new(),
        peer_l2spec: 0,
        peer_seq: false,
        pw_type,
        tie_breaker: None,
    };
    if t.version == Version::V2 {
        s.cfg.l2spec_type = 0;
        s.cfg.cookie_len = 0;
    }
    read_peer_session_params(t, &mut s, m);
    let reply = if outgoing { OCRP } else { ICRP };
    send_session_msg(t, ctx, reply, &s, |b, v| match v {
        Version::V2 => b.hidable(
            attr::ASSIGNED_SESSION_ID,
            true,
            &(s.local_id as u16).to_be_bytes(),
        ),
        Version::V3 => {
            b.hidable(attr::CIRCUIT_STATUS, true, &3u16.to_be_bytes());
            v3_pw_avps(b, &s, true);
        }
    });
    t.sessions.insert(sid, s.clone());
    if outgoing {
        // We are the LAC of an outgoing call; the "bearer" answers at once: send OCCN.
        send_connected(t, ctx, OCCN, &s);
        session_up(t, ctx, sid);
    }
}

fn send_connected(t: &mut Tunnel, ctx: &mut Ctx<'_>, mtype: u16, s: &Session) {
    send_session_msg(t, ctx, mtype, s, |b, v| match v {
        Version::V2 => {
            b.hidable(attr::TX_CONNECT_SPEED, true, &100_000_000u32.to_be_bytes());
            b.hidable(attr::FRAMING_TYPE, true, &1u32.to_be_bytes());
            if s.cfg.recv_seq {
                b.raw(attr::SEQUENCING_REQUIRED, true, &[]);
            }
        }
        Version::V3 => v3_pw_avps(b, s, false),
    });
}

fn on_call_reply(t: &mut Tunnel, ctx: &mut Ctx<'_>, m: &Msg, sid: u32) {
    let expect = match m.msg_type {
        ICRP => CallType::Incoming,
        _ => CallType::Outgoing,
    };
    let Some(s) = t.sessions.get(&sid) else {
        return;
    };
    if s.state != SState::WaitReply || !s.initiator || s.cfg.call != expect {
        let r = fsm_cdn(t);
        return clear_session(
            t,
            ctx,
            sid,
            Some((r, None, String::new())),
            DownReason::Protocol {
                result_code: r,
                error_code: None,
                message: "call reply in wrong state".into(),
            },
        );
    }
    let peer_sid = match t.version {
        Version::V2 => m.u16(attr::ASSIGNED_SESSION_ID).map(u32::from),
        Version::V3 => m.u32(attr::LOCAL_SESSION_ID),
    };
    let Some(peer_sid) = peer_sid.filter(|&p| p != 0) else {
        let r = fsm_cdn(t);
        return clear_session(
            t,
            ctx,
            sid,
            Some((r, Some(result::ERR_BAD_VALUE), String::new())),
            DownReason::Protocol {
                result_code: r,
                error_code: Some(result::ERR_BAD_VALUE),
                message: "reply without a session id".into(),
            },
        );
    };
    let mut s = s.clone();
    s.peer_id = peer_sid;
    read_peer_session_params(t, &mut s, m);
    if expect == CallType::Incoming {
        s.state = SState::Established;
        t.sessions.insert(sid, s.clone());
        send_connected(t, ctx, ICCN, &s);
        session_up(t, ctx, sid);
    } else {
        s.state = SState::WaitConnect;
        t.sessions.insert(sid, s);
    }
}

fn on_call_connected(t: &mut Tunnel, ctx: &mut Ctx<'_>, m: &Msg, sid: u32) {
    let Some(s) = t.sessions.get(&sid) else {
        return;
    };
    let ok = match m.msg_type {
        ICCN => !s.initiator && s.cfg.call == CallType::Incoming,
        _ => s.initiator && s.cfg.call == CallType::Outgoing,
    };
    if s.state != SState::WaitConnect || !ok {
        let r = fsm_cdn(t);
        return clear_session(
            t,
            ctx,
            sid,
            Some((r, None, String::new())),
            DownReason::Protocol {
                result_code: r,
                error_code: None,
                message: "connected message in wrong state".into(),
            },
        );
    }
    let mut s = s.clone();
    read_peer_session_params(t, &mut s, m);
    t.sessions.insert(sid, s);
    session_up(t, ctx, sid);
}

fn session_up(t: &mut Tunnel, ctx: &mut Ctx<'_>, sid: u32) {
    let Some(s) = t.sessions.get_mut(&sid) else {
        return;
    };
    s.state = SState::Established;
    // v2: the LNS is the ICRQ recipient or the OCRQ sender (rfc-facts §1.13).
    let lns_mode = match s.cfg.call {
        CallType::Incoming => !s.initiator,
        CallType::Outgoing => s.initiator,
    };
    let v2 = t.version == Version::V2;
    // v2: Sequencing Required from the LAC means sequencing in both directions (rfc-facts
    // §1.16); v3: each side states what it wants to receive (rfc-facts §2.12).
    let (send_seq, recv_seq) = if v2 {
        let both = s.peer_seq || s.cfg.recv_seq;
        (both, both)
    } else {
        (s.peer_seq, s.cfg.recv_seq)
    };
    ctx.events.push_back(Event::SessionUp(SessionInfo {
        version: t.version,
        tunnel_id: t.local_id,
        peer_tunnel_id: t.peer_id,
        session_id: s.local_id,
        peer_session_id: s.peer_id,
        peer: t.peer,
        pw_type: s.pw_type,
        cookie: s.peer_cookie.clone(),
        peer_cookie: s.our_cookie.clone(),
        l2spec_type: if v2 { 0 } else { s.peer_l2spec },
        peer_l2spec_type: if v2 { 0 } else { s.cfg.l2spec_type },
        send_seq,
        recv_seq,
        lns_mode,
        call: s.cfg.call,
        initiator: s.initiator,
        call_serial: s.call_serial,
        remote_end_id: s.cfg.remote_end_id.clone(),
    }));
}
