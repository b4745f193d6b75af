//! Tunnel and session state machines and the [`Endpoint`] that demultiplexes datagrams to them.
//!
//! Tunnel states (docs/reference/rfc.md §1.12, §2.10): `WaitCtlReply` (we sent SCCRQ), `WaitCtlConn` (we
//! answered an SCCRQ with SCCRP), `Established`, `Closing` (we sent StopCCN and keep reliable
//! delivery running until it is acknowledged, retries run out or the hold-down expires) and
//! `Held` (the peer sent StopCCN; state is kept for the hold-down only to re-acknowledge
//! retransmitted StopCCNs, docs/reference/rfc.md §1.11).
//!
//! Session states (docs/reference/rfc.md §1.13, §2.10): `WaitTunnel` (opened before the tunnel was up),
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
use ul2tp_wire::avp::{
    AttrType, AvpIter, AvpValue, CallErrors, DataSequencing, DigestType, ErrorCode, L2SpecType,
    MessageType, PwType, ResultCode, AVP_MAX_VALUE_LEN, CIRCUIT_ACTIVE, CIRCUIT_NEW, VENDOR_IETF,
};
use ul2tp_wire::control::{self, ControlHeader, Encap, Version, HEADER_LEN};
use ul2tp_wire::digest::{self, Nonces};
use ul2tp_wire::message::{BuildError, Message, MessageBuilder, MessageError, Reaction};

use crate::channel::{ChannelParams, ChannelStats, ControlChannel, RxVerdict};
use crate::Timestamp;

/// Result and error codes the engine sends, as numbers for the public API (`close_tunnel`,
/// `close_session`, [`DownReason`]). The values come from the wire layer's code tables
/// (docs/reference/rfc.md §1.6).
pub mod result {
    use ul2tp_wire::avp::{CdnResult, ErrorCode, StopCcnResult};

    /// StopCCN: general request to clear the control connection.
    pub const STOP_GENERAL: u16 = StopCcnResult::GeneralRequest.get();
    /// StopCCN: general error, see Error Code.
    pub const STOP_ERROR: u16 = StopCcnResult::GeneralError.get();
    /// StopCCN: requester not authorised.
    pub const STOP_NOT_AUTHORISED: u16 = StopCcnResult::NotAuthorized.get();
    /// StopCCN: finite-state-machine error (or timeout).
    pub const STOP_FSM: u16 = StopCcnResult::FsmError.get();
    /// CDN: disconnected for the reason in Error Code.
    pub const CDN_ERROR: u16 = CdnResult::GeneralError.get();
    /// CDN: administrative reasons.
    pub const CDN_ADMIN: u16 = CdnResult::Administrative.get();
    /// CDN: no appropriate facilities available (temporary), e.g. no free session id.
    pub const CDN_NO_FACILITIES: u16 = CdnResult::TemporaryNoFacilities.get();
    /// CDN: session not established, lost tie breaker (v3).
    pub const CDN_TIE_BREAK: u16 = CdnResult::LostTieBreaker.get();
    /// CDN: unsupported PW type (v3).
    pub const CDN_PW_TYPE: u16 = CdnResult::UnsupportedPwType.get();
    /// CDN: sequencing required without an L2-Specific Sublayer (v3).
    pub const CDN_SEQ_NO_L2SS: u16 = CdnResult::SequencingWithoutSublayer.get();
    /// CDN: finite-state-machine error (v3).
    pub const CDN_FSM: u16 = CdnResult::FsmError.get();
    /// Error code: unknown mandatory AVP.
    pub const ERR_UNKNOWN_AVP: u16 = ErrorCode::UnknownMandatoryAvp.get();
    /// Error code: a field out of range / missing.
    pub const ERR_BAD_VALUE: u16 = ErrorCode::BadValue.get();
}

/// Which call model a session uses (docs/reference/rfc.md §1.13).
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
/// with [`Endpoint::connect`]. Defaults follow docs/reference/rfc.md §1.10.
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
    /// v2, with a `secret`: send a Challenge (in SCCRQ as initiator, SCCRP as responder) and
    /// refuse the tunnel with StopCCN 4 unless the peer's next message carries the right
    /// Challenge Response (docs/reference/rfc.md §1.9). On by default, so that a secret
    /// authenticates the peer; turn it off only for peers that cannot answer.
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
    /// How long state is kept after a StopCCN to re-acknowledge it (docs/reference/rfc.md §1.11: 31 s).
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
            send_challenge: true,
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

    /// Refuse values an AVP cannot carry, so that every message the engine builds from this
    /// configuration fits the 10-bit AVP Length (RFC 2661 §4.1).
    fn check(&self) -> Result<(), Error> {
        if !fits_avp(self.host_name.len()) {
            return Err(Error::BadConfig("host_name does not fit in an AVP"));
        }
        if !fits_avp(self.pw_types.len() * 2) {
            return Err(Error::BadConfig("too many pw_types for an AVP"));
        }
        self.session_defaults.check()
    }
}

impl SessionConfig {
    /// See [`Config::check`].
    fn check(&self) -> Result<(), Error> {
        if !fits_avp(self.remote_end_id.len()) {
            return Err(Error::BadConfig("remote_end_id does not fit in an AVP"));
        }
        Ok(())
    }
}

/// Whether a value of `len` octets fits in an AVP, hidden or not (a hidden value carries a
/// 2-octet original-length field in front, docs/reference/rfc.md §1.8).
fn fits_avp(len: usize) -> bool {
    len + 2 <= AVP_MAX_VALUE_LEN
}

/// Message digest algorithm of L2TPv3 control message authentication (RFC 3931 §5.4.1): the
/// configuration-side name of the wire layer's [`DigestType`] without its unknown values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestAlg {
    /// HMAC-MD5, Digest Type 0 (MUST).
    HmacMd5,
    /// HMAC-SHA-1, Digest Type 1 (SHOULD).
    HmacSha1,
}

impl DigestAlg {
    /// The wire layer's Digest Type.
    pub const fn digest_type(self) -> DigestType {
        match self {
            DigestAlg::HmacMd5 => DigestType::HmacMd5,
            DigestAlg::HmacSha1 => DigestType::HmacSha1,
        }
    }

    /// Digest Type octet.
    pub const fn type_octet(self) -> u8 {
        self.digest_type().get()
    }

    /// Digest length in octets.
    pub fn digest_len(self) -> usize {
        self.digest_type().digest_len().unwrap_or(0)
    }

    /// From a Digest Type octet (`None` for types the engine does not implement).
    pub fn from_octet(b: u8) -> Option<DigestAlg> {
        match DigestType::from(b) {
            DigestType::HmacMd5 => Some(DigestAlg::HmacMd5),
            DigestType::HmacSha1 => Some(DigestAlg::HmacSha1),
            _ => None,
        }
    }
}

impl From<DigestAlg> for DigestType {
    fn from(a: DigestAlg) -> DigestType {
        a.digest_type()
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
    /// We lost the tunnel tie-break (docs/reference/rfc.md §1.14).
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
    /// Whether the peer proved it knows the secret: v3 message authentication is on, or (v2)
    /// it answered our Challenge.
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
    /// Cookie we send (the peer's Assigned Cookie; docs/reference/kernel.md §1.6 `cookie`).
    pub cookie: Vec<u8>,
    /// Cookie we expect (our Assigned Cookie; docs/reference/kernel.md §1.6 `peer_cookie`).
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
    /// Ns the next message queued will get (queued messages not yet sent count; when the
    /// tunnel is cleared, the ones never sent are given back).
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
    /// We sent ICCN / OCCN with this Ns; the session is up once the peer acknowledges it.
    WaitConnectAck(u16),
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
    /// (Ns, session id) of the ICCN / OCCN messages waiting for their acknowledgement, in Ns
    /// order (the peer acknowledges in that order too).
    connects: VecDeque<(u16, u32)>,
}

impl Tunnel {
    fn secret(&self) -> Option<&[u8]> {
        self.cfg.secret.as_deref()
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
    /// L2TPv3/IP framing; `seed` seeds the random generator that draws every unpredictable
    /// value (tunnel and session ids, challenges, nonces, random vectors, cookies, tie
    /// breakers). A daemon passes 32 bytes from the operating system's random source; tests
    /// pass fixed bytes ([`crate::sim::seed`]) to be reproducible.
    pub fn new(cfg: Config, encap: Encap, seed: [u8; 32]) -> Endpoint {
        Endpoint {
            cfg,
            encap,
            sh: Shared {
                rng: StdRng::from_seed(seed),
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
                our_nonce,
                peer_nonce: Vec::new(),
                peer_host_name: String::new(),
                peer_router_id: None,
                peer_pw_types: Vec::new(),
                last_rx: now,
                hello_jitter: Duration::ZERO,
                sessions: BTreeMap::new(),
                connects: VecDeque::new(),
            },
        );
        Some(id)
    }

    /// Open a control connection to `peer` (sends SCCRQ). Returns our tunnel id.
    pub fn connect(&mut self, now: Timestamp, peer: SocketAddr, cfg: Config) -> Result<u32, Error> {
        if cfg.version == Version::V2 && self.encap == Encap::Ip {
            return Err(Error::BadConfig("L2TPv2 cannot run over IP encapsulation"));
        }
        cfg.check()?;
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
        let sid = ctx.alloc_session_id(t.version).ok_or(Error::NoIds)?;
        *ctx.call_serial = ctx.call_serial.wrapping_add(1);
        let mut cfg = cfg;
        let pw_type = if t.version == Version::V2 {
            // v2 sessions are PPP and use neither cookies nor a sublayer (docs/reference/kernel.md §1.6).
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
        let cdn = Some((result_code, None));
        clear_session(t, &mut ctx, session_id, cdn, DownReason::Local);
        self.service(now, tunnel_id);
        Ok(())
    }

    /// Clear a session whose PPP link went down: CDN with `result_code`, an optional
    /// (error code, message) and the RFC 3145 PPP Disconnect Cause Code AVP when `cause` is
    /// given. Otherwise like [`Endpoint::close_session`].
    pub fn close_session_ppp(
        &mut self,
        now: Timestamp,
        tunnel_id: u32,
        session_id: u32,
        result_code: u16,
        error: Option<(u16, &str)>,
        cause: Option<&ul2tp_wire::avp::PppDisconnectCause>,
    ) -> Result<(), Error> {
        let (mut ctx, tunnels) = self.ctx(now);
        let t = tunnels.get_mut(&tunnel_id).ok_or(Error::NoTunnel)?;
        let s = t.sessions.get(&session_id).ok_or(Error::NoSession)?.clone();
        if s.state != SState::WaitTunnel {
            send_session_msg(t, &mut ctx, MessageType::Cdn, &s, |d, v| {
                let d = d
                    .avp(result_avp(result_code, error))
                    .opt(cause.map(|c| c.to_avp()));
                match v {
                    Version::V2 => d.avp(own_session_id(&s)),
                    Version::V3 => d,
                }
            });
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
        let (mut ctx, tunnels) = self.ctx(now);
        let t = tunnels.get_mut(&tunnel_id).ok_or(Error::NoTunnel)?;
        let s = t.sessions.get(&session_id).ok_or(Error::NoSession)?.clone();
        if s.state != SState::Established {
            return Err(Error::NoSession);
        }
        send_session_msg(t, &mut ctx, MessageType::Sli, &s, |d, v| match v {
            Version::V2 => d.avp(AvpValue::Accm {
                send_accm: accm.0,
                receive_accm: accm.1,
            }),
            Version::V3 => d.avp(AvpValue::CircuitStatus(circuit_status)),
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
        send_session_msg(t, &mut ctx, MessageType::Wen, &s, |d, v| {
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
                Some(MessageType::Sccrq) => match self.admit(now, from, hdr, msg) {
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
        from: SocketAddr,
        hdr: ControlHeader,
        msg: &[u8],
    ) -> Option<u32> {
        let cfg = self.cfg.clone();
        // Tunnels the peer opens are built from the endpoint configuration.
        cfg.check().ok()?;
        let Ok((m, _)) = parse(msg, hdr.version, cfg.secret.as_deref()) else {
            self.stats.rx_malformed += 1;
            return None;
        };
        // v3 authentication: an SCCRQ's digest covers the message alone (docs/reference/rfc.md §2.8).
        if hdr.version == Version::V3 {
            if let Some(s) = &cfg.secret {
                if digest::verify_message(msg, s, None).is_err() {
                    self.stats.rx_auth_failures += 1;
                    return None;
                }
            }
        }
        let Some(peer_tid) = peer_tunnel_id(hdr.version, &m).filter(|&p| p != 0) else {
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
        // Tie-break against our own outstanding SCCRQ to the same peer (docs/reference/rfc.md §1.14, §2.11).
        let theirs = m.tie_breaker().copied();
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
                // Neither sent one: two separate tunnels (docs/reference/rfc.md §1.14).
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
            if let Some(ack) = build_ack(t) {
                emit(t, self.encap, &mut self.transmits, ack);
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

/// Header, Message Type and (v3 authentication) a zeroed Message Digest for the tunnel's peer.
/// Messages are built UDP-framed; [`emit`] adds the L2TPv3/IP prefix.
fn builder(t: &Tunnel, mtype: MessageType, v2_session: u16) -> Result<MessageBuilder, BuildError> {
    let b = MessageBuilder::new(t.version, Encap::Udp, t.peer_id, v2_session, mtype);
    if t.auth {
        b.digest(t.cfg.digest.into())
    } else {
        Ok(b)
    }
}

/// Pure acknowledgement: ZLB (v2) / ACK message (v3, docs/reference/rfc.md §2.9). Its Ns is
/// that of the next message that will go on the wire, not counting messages still waiting for
/// the window (docs/reference/rfc.md §1.10).
fn build_ack(t: &Tunnel) -> Option<Vec<u8>> {
    let (ns, nr) = (t.chan.ack_ns(), t.chan.nr());
    let mut b = match t.version {
        Version::V2 => control::zlb(t.version, Encap::Udp, t.peer_id, 0, ns, nr).ok()?,
        Version::V3 => builder(t, MessageType::Ack, 0).ok()?.finish().ok()?,
    };
    control::set_ns_nr(&mut b, ns, nr).ok()?;
    Some(b)
}

/// A control message under construction: the wire layer's builder and whether AVPs that may
/// be hidden are hidden (docs/reference/rfc.md §1.8). A build error is carried through to [`queue`].
struct Draft {
    b: Result<MessageBuilder, BuildError>,
    hide: bool,
}

impl Draft {
    /// Append an AVP with the RFC's default M bit, hidden if hiding is on and allowed.
    fn avp(self, value: AvpValue) -> Draft {
        let hide = self.hide && value.attr_type().may_hide();
        let b = self.b.and_then(|b| {
            if hide {
                b.avp_hidden(value, &[])
            } else {
                b.avp(value)
            }
        });
        Draft { b, hide: self.hide }
    }

    /// Append an AVP if there is one.
    fn opt(self, value: Option<AvpValue>) -> Draft {
        match value {
            Some(v) => self.avp(v),
            None => self,
        }
    }
}

/// Start a message for the tunnel's peer: header, Message Type, digest slot and, when hiding,
/// the Random Vector that the hidden AVPs after it use.
///
/// SCCRQ and SCCRP are never hidden: the peer may only pick the secret once it has read them
/// (by our Host Name), and xl2tpd, for one, loads its secret only after the message that
/// carries our Challenge. Every later message is hidden.
fn new_msg(t: &Tunnel, ctx: &mut Ctx<'_>, mtype: MessageType, v2_session: u16) -> Draft {
    let mut b = builder(t, mtype, v2_session);
    let opening = matches!(mtype, MessageType::Sccrq | MessageType::Sccrp);
    let hide_with = t.secret().filter(|_| t.hiding() && !opening);
    if let Some(secret) = hide_with {
        let rv = AvpValue::RandomVector(ctx.random_bytes(16));
        b = b.and_then(|b| b.secret(secret).avp(rv));
    }
    Draft {
        b,
        hide: hide_with.is_some(),
    }
}

/// Check the message against the RFC's mandatory-AVP table and hand it to reliable delivery;
/// returns its Ns. Building only fails for values an AVP cannot carry, which `Config::check`
/// refuses up front.
fn queue(t: &mut Tunnel, d: Draft) -> Option<u16> {
    let bytes = d.b.and_then(MessageBuilder::finish).ok()?;
    Some(t.chan.send(bytes))
}

/// Our tunnel id as the AVP that announces it (v2 Assigned Tunnel ID, v3 Assigned CCID).
fn own_tunnel_id(t: &Tunnel) -> AvpValue {
    match t.version {
        Version::V2 => AvpValue::AssignedTunnelId(t.local_id as u16),
        Version::V3 => AvpValue::AssignedConnectionId(t.local_id),
    }
}

/// The peer's tunnel id from its SCCRQ/SCCRP/StopCCN.
fn peer_tunnel_id(version: Version, m: &Message) -> Option<u32> {
    match version {
        Version::V2 => m.assigned_tunnel_id().map(u32::from),
        Version::V3 => m.assigned_connection_id(),
    }
}

/// The sender's session id (v2 Assigned Session ID, v3 Local Session ID).
fn sender_session_id(version: Version, m: &Message) -> Option<u32> {
    match version {
        Version::V2 => m.assigned_session_id().map(u32::from),
        Version::V3 => m.local_session_id(),
    }
}

/// The value of the first IETF AVP whose `AttrType` and single-field `AvpValue` variant share
/// the name `$v`.
macro_rules! avp_value {
    ($m:expr, $v:ident) => {
        match $m.find(AttrType::$v) {
            Some(AvpValue::$v(x)) => Some(x),
            _ => None,
        }
    };
}

/// Parse with the wire layer (RFC checks and hidden AVPs included). A message it rejects with
/// a teardown or ignore reaction still yields the AVPs decoded before the problem, so the
/// engine can address its StopCCN/CDN; framing errors ([`Reaction::Discard`]) give `Err`.
fn parse(
    msg: &[u8],
    version: Version,
    secret: Option<&[u8]>,
) -> Result<(Message, Option<MessageError>), MessageError> {
    match Message::parse(msg, version, secret) {
        Ok(m) => Ok((m, None)),
        Err(e) => match (e.reaction, e.header) {
            (Reaction::Discard, _) | (_, None) => Err(e),
            (_, Some(header)) => {
                let partial = Message {
                    header,
                    encap: Encap::Udp,
                    message_type: e.message_type,
                    avps: e.avps.clone(),
                    ignored: Vec::new(),
                };
                Ok((partial, Some(e)))
            }
        },
    }
}

fn send_sccrx(t: &mut Tunnel, ctx: &mut Ctx<'_>, mtype: MessageType, answer: Option<AvpValue>) {
    let cfg = &t.cfg;
    let host = AvpValue::HostName(cfg.host_name.as_bytes().to_vec());
    let d = new_msg(t, ctx, mtype, 0);
    let d = match t.version {
        Version::V2 => d
            .avp(AvpValue::ProtocolVersion {
                version: 1,
                revision: 0,
            })
            .avp(host)
            .avp(AvpValue::FramingCapabilities(cfg.framing_caps))
            .avp(AvpValue::BearerCapabilities(cfg.bearer_caps))
            .avp(own_tunnel_id(t)),
        Version::V3 => d
            .avp(host)
            .avp(AvpValue::RouterId(cfg.router_id))
            .avp(own_tunnel_id(t))
            .avp(AvpValue::PseudowireCapabilities(
                cfg.pw_types.iter().map(|&p| PwType::from(p)).collect(),
            ))
            .opt(
                t.auth
                    .then(|| AvpValue::CtrlMsgAuthNonce(t.our_nonce.clone())),
            ),
    };
    // Tie Breaker: v2 M=0, v3 M=1, the builder's defaults (docs/reference/rfc.md §1.4, §2.6).
    let d = d
        .avp(AvpValue::ReceiveWindowSize(cfg.rx_window.max(1)))
        .opt(
            t.tie_breaker
                .filter(|_| mtype == MessageType::Sccrq)
                .map(AvpValue::TieBreaker),
        )
        .opt(t.our_challenge.clone().map(AvpValue::Challenge))
        .opt(answer);
    let _ = queue(t, d);
}

/// Tear the tunnel down from our side: StopCCN, session/tunnel down events, hold-down.
fn stop_tunnel(
    t: &mut Tunnel,
    ctx: &mut Ctx<'_>,
    result_code: u16,
    error: Option<(u16, &str)>,
    reason: DownReason,
) {
    let d = new_msg(t, ctx, MessageType::StopCcn, 0)
        .avp(own_tunnel_id(t))
        .avp(result_avp(result_code, error));
    // Messages that never went out are dropped and their Ns given back, so the StopCCN carries
    // the Ns the peer expects next. Messages already sent are still retransmitted: the peer
    // may hold them, and it delivers the StopCCN only after them (docs/reference/rfc.md §1.10).
    t.chan.drop_unsent();
    let _ = queue(t, d);
    down_all(t, ctx, reason);
    // docs/reference/rfc.md §1.11 / §2.9: keep delivering the StopCCN for a full retransmission cycle.
    t.state = TState::Closing {
        until: ctx.now + t.cfg.stop_hold,
    };
}

/// Result Code AVP: result, and optionally an error code with a message (docs/reference/rfc.md §1.6).
fn result_avp(result: u16, error: Option<(u16, &str)>) -> AvpValue {
    AvpValue::ResultCode(ResultCode {
        result,
        error: error.map(|(e, _)| ErrorCode::from(e)),
        message: error
            .map(|(_, m)| m.as_bytes().to_vec())
            .filter(|m| !m.is_empty()),
    })
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
    let reason = protocol_reason(result_code, error_code, message);
    stop_tunnel(
        t,
        ctx,
        result_code,
        error_code.map(|e| (e, message)),
        reason,
    );
}

/// Why we cleared a tunnel or session because of a protocol error: what we sent the peer.
fn protocol_reason(result_code: u16, error_code: Option<u16>, message: &str) -> DownReason {
    DownReason::Protocol {
        result_code,
        error_code,
        message: message.to_string(),
    }
}

/// Deliver one in-order message to the tunnel state machine.
fn dispatch(t: &mut Tunnel, ctx: &mut Ctx<'_>, msg: &[u8]) {
    if t.is_dying() {
        // Only acknowledgements matter now (done by the channel).
        return;
    }
    // Framing errors were discarded on receipt, before sequencing.
    let Ok((m, rejected)) = parse(msg, t.version, t.secret()) else {
        return;
    };
    if let Some(e) = rejected {
        return on_rejected(t, ctx, &m, &e);
    }
    let Some(mtype) = m.message_type else {
        return;
    };
    match mtype {
        MessageType::Sccrq if t.state == TState::WaitCtlConn && !t.was_up && t.peer_id == 0 => {
            on_sccrq(t, ctx, &m)
        }
        MessageType::Sccrp if t.state == TState::WaitCtlReply => on_sccrp(t, ctx, &m),
        MessageType::Scccn if t.state == TState::WaitCtlConn && t.peer_id != 0 => {
            on_scccn(t, ctx, &m)
        }
        MessageType::Sccrq | MessageType::Sccrp | MessageType::Scccn => protocol_error(
            t,
            ctx,
            result::STOP_FSM,
            None,
            "control message in wrong state",
        ),
        MessageType::StopCcn => {
            down_all(t, ctx, peer_reason(&m));
            t.chan.abandon();
            // docs/reference/rfc.md §1.11: keep state to re-acknowledge retransmitted StopCCNs.
            t.state = TState::Held {
                until: ctx.now + t.cfg.stop_hold,
            };
        }
        MessageType::Hello => {}
        _ if mtype.is_session_message() => {
            if t.state == TState::Established {
                on_session_msg(t, ctx, mtype, &m);
            }
        }
        _ => {
            // A message type the wire layer knows but the engine does not implement:
            // M=1 ⇒ clear the tunnel, M=0 ⇒ ignore (docs/reference/rfc.md §1.3).
            if m.avps.first().is_some_and(|a| a.mandatory) {
                protocol_error(
                    t,
                    ctx,
                    result::STOP_ERROR,
                    Some(result::ERR_BAD_VALUE),
                    "unsupported message type",
                );
            }
        }
    }
}

/// Apply the reaction the wire layer prescribes for a message that fails its RFC checks
/// (missing mandatory AVPs, unknown or malformed M=1 AVPs; docs/reference/rfc.md §1.3, §1.18, §2.6).
fn on_rejected(t: &mut Tunnel, ctx: &mut Ctx<'_>, m: &Message, e: &MessageError) {
    match e.reaction {
        Reaction::Discard | Reaction::Ignore => {}
        Reaction::StopCcn { result, error } => {
            if t.peer_id == 0 {
                // Answer to the id the peer assigned, if it told us.
                t.peer_id = peer_tunnel_id(t.version, m).unwrap_or(0);
            }
            protocol_error(t, ctx, result.get(), Some(error.get()), &e.error_message());
        }
        Reaction::Cdn { result, error } => {
            let (result, error) = (result.get(), Some(error.get()));
            if matches!(m.message_type, Some(MessageType::Icrq | MessageType::Ocrq)) {
                if let Some(p) = sender_session_id(t.version, m).filter(|&p| p != 0) {
                    refuse_call(t, ctx, p, result, error);
                }
            } else if let Some(sid) = find_session(t, m) {
                abort_session(t, ctx, sid, result, error, &e.error_message());
            }
        }
    }
}

/// The reason a peer's StopCCN or CDN gives.
fn peer_reason(m: &Message) -> DownReason {
    match m.result_code() {
        Some(rc) => DownReason::Peer {
            result_code: rc.result,
            error_code: rc.error.map(ErrorCode::get),
            message: rc.message_str().unwrap_or_default(),
        },
        None => DownReason::Peer {
            result_code: 0,
            error_code: None,
            message: String::new(),
        },
    }
}

/// SCCRQ and SCCRP: read the peer's parameters and (v3) its nonce; a peer that authenticates
/// must be matched by us and vice versa (docs/reference/rfc.md §2.8). False if the tunnel was torn down.
fn accept_peer_start(t: &mut Tunnel, ctx: &mut Ctx<'_>, m: &Message) -> bool {
    if !read_peer_params(t, m) {
        protocol_error(
            t,
            ctx,
            result::STOP_ERROR,
            Some(result::ERR_BAD_VALUE),
            "lacks a mandatory AVP or has an id of 0",
        );
        return false;
    }
    if t.version == Version::V3 {
        match (t.auth, m.nonce()) {
            (true, Some(n)) => t.peer_nonce = n.to_vec(),
            (false, None) => {}
            _ => {
                // The two sides disagree on authentication: the StopCCN goes unsigned.
                t.auth = false;
                stop_auth(t, ctx);
                return false;
            }
        }
    }
    true
}

/// Our Challenge Response to the peer's Challenge, if it sent one (docs/reference/rfc.md §1.9); `Err` if
/// we cannot or will not answer it.
fn answer_challenge(
    t: &Tunnel,
    m: &Message,
    carried_in: MessageType,
) -> Result<Option<AvpValue>, ()> {
    let Some(ch) = m.challenge() else {
        return Ok(None);
    };
    match (t.secret(), t.cfg.answer_challenge) {
        (Some(s), true) => Ok(Some(AvpValue::ChallengeResponse(
            digest::challenge_response(carried_in, s, ch),
        ))),
        _ => Err(()),
    }
}

/// Whether the peer answered our Challenge, if we sent one (docs/reference/rfc.md §1.9).
fn challenge_answered(t: &Tunnel, m: &Message, carried_in: MessageType) -> bool {
    match (&t.our_challenge, t.secret()) {
        (Some(ch), Some(s)) => m
            .challenge_response()
            .is_some_and(|r| digest::verify_challenge_response(carried_in, s, ch, r)),
        _ => true,
    }
}

fn on_sccrq(t: &mut Tunnel, ctx: &mut Ctx<'_>, m: &Message) {
    if !accept_peer_start(t, ctx, m) {
        return;
    }
    let Ok(answer) = answer_challenge(t, m, MessageType::Sccrp) else {
        return stop_auth(t, ctx);
    };
    if t.version == Version::V2 && t.cfg.send_challenge && t.cfg.secret.is_some() {
        t.our_challenge = Some(ctx.random_bytes(16));
    }
    send_sccrx(t, ctx, MessageType::Sccrp, answer);
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

/// Read the peer's SCCRQ/SCCRP parameters; false if a mandatory one is missing. (The wire
/// layer already insisted on the AVPs RFC 2661 §6 / RFC 3931 §6 require.)
fn read_peer_params(t: &mut Tunnel, m: &Message) -> bool {
    let Some(peer_id) = peer_tunnel_id(t.version, m).filter(|&p| p != 0) else {
        return false;
    };
    let Some(host) = m.host_name().filter(|h| !h.is_empty()) else {
        return false;
    };
    if t.version == Version::V3 {
        let (Some(&rid), Some(caps)) = (
            avp_value!(m, RouterId),
            avp_value!(m, PseudowireCapabilities),
        ) else {
            return false;
        };
        t.peer_router_id = Some(rid);
        t.peer_pw_types = caps.iter().map(|p| p.get()).collect();
    }
    t.peer_id = peer_id;
    t.peer_host_name = String::from_utf8_lossy(host).into_owned();
    // docs/reference/rfc.md §1.10: absent ⇒ 4.
    t.chan.set_peer_window(m.receive_window_size().unwrap_or(4));
    true
}

fn on_sccrp(t: &mut Tunnel, ctx: &mut Ctx<'_>, m: &Message) {
    if !accept_peer_start(t, ctx, m) {
        return;
    }
    if !challenge_answered(t, m, MessageType::Sccrp) {
        return stop_auth(t, ctx);
    }
    let Ok(answer) = answer_challenge(t, m, MessageType::Scccn) else {
        return stop_auth(t, ctx);
    };
    let d = new_msg(t, ctx, MessageType::Scccn, 0).opt(answer);
    queue(t, d);
    tunnel_up(t, ctx);
}

fn on_scccn(t: &mut Tunnel, ctx: &mut Ctx<'_>, m: &Message) {
    if !challenge_answered(t, m, MessageType::Scccn) {
        return stop_auth(t, ctx);
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
        // v2: a tunnel that came up with our Challenge outstanding had it answered.
        authenticated: t.auth || (t.version == Version::V2 && t.our_challenge.is_some()),
    }
}

/// Up to an eighth of the hello interval (docs/reference/rfc.md §2.9: jitter HELLOs).
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
    mtype: MessageType,
    s: &Session,
    fill: impl FnOnce(Draft, Version) -> Draft,
) -> Option<u16> {
    let d = match t.version {
        Version::V2 => new_msg(t, ctx, mtype, s.peer_id as u16),
        Version::V3 => new_msg(t, ctx, mtype, 0)
            .avp(AvpValue::LocalSessionId(s.local_id))
            .avp(AvpValue::RemoteSessionId(s.peer_id)),
    };
    let d = fill(d, t.version);
    queue(t, d)
}

/// Our session id as the v2 Assigned Session ID AVP.
fn own_session_id(s: &Session) -> AvpValue {
    AvpValue::AssignedSessionId(s.local_id as u16)
}

/// Circuit Status of a new, active pseudowire: A and N bits (docs/reference/rfc.md §2.13, RFC 4719).
const CIRCUIT_UP_NEW: u16 = CIRCUIT_ACTIVE | CIRCUIT_NEW;

/// v3 pseudowire parameters: our cookie, the sublayer and sequencing we want to receive.
fn v3_pw_avps(d: Draft, s: &Session, with_cookie: bool) -> Draft {
    let cookie = (with_cookie && !s.our_cookie.is_empty())
        .then(|| AvpValue::AssignedCookie(s.our_cookie.clone()));
    let seq = if s.cfg.recv_seq {
        DataSequencing::All
    } else {
        DataSequencing::None
    };
    d.opt(cookie)
        .avp(AvpValue::L2SpecificSublayer(L2SpecType::from(
            s.cfg.l2spec_type,
        )))
        .avp(AvpValue::DataSequencing(seq))
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
        CallType::Incoming => MessageType::Icrq,
        CallType::Outgoing => MessageType::Ocrq,
    };
    send_session_msg(t, ctx, mtype, &s, |d, v| match v {
        Version::V2 => {
            let d = d
                .avp(own_session_id(&s))
                .avp(AvpValue::CallSerialNumber(s.call_serial))
                .avp(AvpValue::BearerType(0));
            if mtype == MessageType::Ocrq {
                d.avp(AvpValue::MinimumBps(0))
                    .avp(AvpValue::MaximumBps(u32::MAX))
                    .avp(AvpValue::FramingType(1))
                    .avp(AvpValue::CalledNumber(s.cfg.remote_end_id.clone()))
            } else {
                d
            }
        }
        Version::V3 => {
            let d = d
                .avp(AvpValue::CallSerialNumber(s.call_serial))
                .avp(AvpValue::PseudowireType(PwType::from(s.pw_type)))
                .avp(AvpValue::RemoteEndId(s.cfg.remote_end_id.clone()))
                .avp(AvpValue::CircuitStatus(CIRCUIT_UP_NEW))
                .opt(s.tie_breaker.map(AvpValue::TieBreaker));
            v3_pw_avps(d, &s, true)
        }
    });
}

/// Find the local session a session message refers to.
fn find_session(t: &Tunnel, m: &Message) -> Option<u32> {
    let ours = match t.version {
        Version::V2 => u32::from(m.header.session_id),
        Version::V3 => m.remote_session_id()?,
    };
    if ours != 0 {
        return t.sessions.contains_key(&ours).then_some(ours);
    }
    // A CDN before the peer learned our id: reverse lookup by the peer's own id.
    let peer = sender_session_id(t.version, m).filter(|&p| p != 0)?;
    t.sessions
        .values()
        .find(|s| s.peer_id == peer)
        .map(|s| s.local_id)
}

/// Send a CDN for a session (v2: with our Assigned Session ID, docs/reference/rfc.md §1.5).
fn send_cdn(
    t: &mut Tunnel,
    ctx: &mut Ctx<'_>,
    s: &Session,
    result: u16,
    error: Option<(u16, &str)>,
) {
    send_session_msg(t, ctx, MessageType::Cdn, s, |d, v| {
        let d = d.avp(result_avp(result, error));
        match v {
            Version::V2 => d.avp(own_session_id(s)),
            Version::V3 => d,
        }
    });
}

/// Remove a session; `cdn` = Some((result, Some((error, message)))) sends a CDN first.
fn clear_session(
    t: &mut Tunnel,
    ctx: &mut Ctx<'_>,
    sid: u32,
    cdn: Option<(u16, Option<(u16, &str)>)>,
    reason: DownReason,
) {
    let Some(s) = t.sessions.remove(&sid) else {
        return;
    };
    ctx.session_ids.remove(&sid);
    if let Some((result, error)) = cdn {
        if s.state != SState::WaitTunnel {
            send_cdn(t, ctx, &s, result, error);
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

/// Clear a session because of a protocol error of ours to report: CDN and SessionDown carry
/// the same result, error and message.
fn abort_session(
    t: &mut Tunnel,
    ctx: &mut Ctx<'_>,
    sid: u32,
    result_code: u16,
    error_code: Option<u16>,
    message: &str,
) {
    let reason = protocol_reason(result_code, error_code, message);
    let cdn = (result_code, error_code.map(|e| (e, message)));
    clear_session(t, ctx, sid, Some(cdn), reason);
}

/// A session message that does not fit the session's state: CDN with the FSM result
/// (v2 has no dedicated code and uses "disconnected for the reason in Error Code").
fn session_fsm_error(
    t: &mut Tunnel,
    ctx: &mut Ctx<'_>,
    sid: u32,
    error: Option<u16>,
    message: &str,
) {
    let r = match t.version {
        Version::V2 => result::CDN_ERROR,
        Version::V3 => result::CDN_FSM,
    };
    abort_session(t, ctx, sid, r, error, message);
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
    send_cdn(t, ctx, &s, result_code, error.map(|e| (e, "")));
}

fn on_session_msg(t: &mut Tunnel, ctx: &mut Ctx<'_>, mtype: MessageType, m: &Message) {
    if matches!(mtype, MessageType::Icrq | MessageType::Ocrq) {
        return on_call_request(t, ctx, mtype, m);
    }
    // Messages for sessions we already cleared (their CDN is on its way) are ignored.
    let Some(sid) = find_session(t, m) else {
        return;
    };
    match mtype {
        MessageType::Cdn => clear_session(t, ctx, sid, None, peer_reason(m)),
        MessageType::Icrp | MessageType::Ocrp => on_call_reply(t, ctx, mtype, m, sid),
        MessageType::Iccn | MessageType::Occn => on_call_connected(t, ctx, mtype, m, sid),
        MessageType::Sli => {
            let accm = match m.find(AttrType::Accm) {
                Some(&AvpValue::Accm {
                    send_accm,
                    receive_accm,
                }) => Some((send_accm, receive_accm)),
                _ => None,
            };
            ctx.events.push_back(Event::LinkInfo {
                tunnel_id: t.local_id,
                session_id: sid,
                circuit_status: avp_value!(m, CircuitStatus).copied(),
                accm,
            });
        }
        MessageType::Wen => ctx.events.push_back(Event::WanError {
            tunnel_id: t.local_id,
            session_id: sid,
            errors: m
                .find(AttrType::CallErrors)
                .map(AvpValue::to_value_bytes)
                .unwrap_or_default(),
        }),
        _ => {}
    }
}

fn read_peer_session_params(t: &Tunnel, s: &mut Session, m: &Message) {
    if t.version == Version::V3 {
        if let Some(c) = avp_value!(m, AssignedCookie) {
            s.peer_cookie = c.clone();
        }
        if let Some(l) = avp_value!(m, L2SpecificSublayer) {
            s.peer_l2spec = l.get();
        }
        if let Some(d) = avp_value!(m, DataSequencing) {
            s.peer_seq = *d != DataSequencing::None;
        }
    } else if m.find(AttrType::SequencingRequired).is_some() {
        // docs/reference/rfc.md §1.16: Sequencing Required ⇒ sequence numbers in both directions.
        s.peer_seq = true;
        s.cfg.recv_seq = true;
    }
}

/// v3 session tie-break (docs/reference/rfc.md §2.10, §2.11): an ICRQ/OCRQ whose Remote End ID equals the
/// one of our own outstanding request of the same kind. Lower Tie Breaker wins; the winner
/// refuses the loser's request with CDN 13; the loser accepts the winner's request and learns
/// of its own defeat from the CDN. If neither side sent a value, or the values are equal, both
/// requests are torn down. Returns true if the peer's request was consumed here.
fn session_tie_break(
    t: &mut Tunnel,
    ctx: &mut Ctx<'_>,
    call: CallType,
    m: &Message,
    peer_sid: u32,
) -> bool {
    let Some(rei) = avp_value!(m, RemoteEndId).filter(|r| !r.is_empty()) else {
        return false;
    };
    let Some(ours) = t
        .sessions
        .values()
        .find(|s| {
            s.initiator
                && s.state == SState::WaitReply
                && s.cfg.call == call
                && &s.cfg.remote_end_id == rei
        })
        .map(|s| (s.local_id, s.tie_breaker))
    else {
        return false;
    };
    let theirs = m.tie_breaker().copied();
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
            let r = result::CDN_TIE_BREAK;
            abort_session(
                t,
                ctx,
                ours.0,
                r,
                None,
                "session tie-break without a winner",
            );
            refuse_call(t, ctx, peer_sid, result::CDN_TIE_BREAK, None);
            true
        }
    }
}

fn on_call_request(t: &mut Tunnel, ctx: &mut Ctx<'_>, mtype: MessageType, m: &Message) {
    let call = if mtype == MessageType::Ocrq {
        CallType::Outgoing
    } else {
        CallType::Incoming
    };
    let Some(peer_sid) = sender_session_id(t.version, m).filter(|&p| p != 0) else {
        return; // malformed: nobody to answer
    };
    if t.sessions
        .values()
        .any(|s| s.peer_id == peer_sid && !s.initiator)
    {
        return; // already have it
    }
    if t.version == Version::V3 && session_tie_break(t, ctx, call, m, peer_sid) {
        return;
    }
    let pw_type = match t.version {
        Version::V2 => 7,
        Version::V3 => match avp_value!(m, PseudowireType) {
            Some(p) => p.get(),
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
        // docs/reference/rfc.md §2.12: sequencing requested without an L2-Specific Sublayer ⇒ CDN 15.
        let seq = avp_value!(m, DataSequencing).is_some_and(|d| *d != DataSequencing::None);
        let l2ss = avp_value!(m, L2SpecificSublayer).is_some_and(|l| *l != L2SpecType::None);
        if seq && !l2ss {
            return refuse_call(t, ctx, peer_sid, result::CDN_SEQ_NO_L2SS, None);
        }
    }
    let Some(sid) = ctx.alloc_session_id(t.version) else {
        return refuse_call(t, ctx, peer_sid, result::CDN_NO_FACILITIES, None);
    };
    let mut cfg = t.cfg.session_defaults.clone();
    cfg.call = call;
    let remote_end_id = match t.version {
        Version::V2 => avp_value!(m, CalledNumber),
        Version::V3 => avp_value!(m, RemoteEndId),
    };
    if let Some(r) = remote_end_id {
        cfg.remote_end_id = r.clone();
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
        call_serial: avp_value!(m, CallSerialNumber).copied().unwrap_or(0),
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
    let reply = match call {
        CallType::Outgoing => MessageType::Ocrp,
        CallType::Incoming => MessageType::Icrp,
    };
    send_session_msg(t, ctx, reply, &s, |d, v| match v {
        Version::V2 => d.avp(own_session_id(&s)),
        Version::V3 => v3_pw_avps(d.avp(AvpValue::CircuitStatus(CIRCUIT_UP_NEW)), &s, true),
    });
    t.sessions.insert(sid, s.clone());
    if call == CallType::Outgoing {
        // We are the LAC of an outgoing call; the "bearer" answers at once: send OCCN.
        send_connected(t, ctx, MessageType::Occn, sid);
    }
}

/// Send ICCN / OCCN for a session. It comes up when the peer acknowledges the message: until
/// then the message may still wait for the window, or be lost, and the peer has no session.
fn send_connected(t: &mut Tunnel, ctx: &mut Ctx<'_>, mtype: MessageType, sid: u32) {
    let Some(s) = t.sessions.get(&sid).cloned() else {
        return;
    };
    let ns = send_session_msg(t, ctx, mtype, &s, |d, v| match v {
        Version::V2 => d
            .avp(AvpValue::TxConnectSpeed(100_000_000))
            .avp(AvpValue::FramingType(1))
            .opt(s.cfg.recv_seq.then_some(AvpValue::SequencingRequired)),
        Version::V3 => v3_pw_avps(d, &s, false),
    });
    match (ns, t.sessions.get_mut(&sid)) {
        (Some(ns), Some(s)) => {
            s.state = SState::WaitConnectAck(ns);
            t.connects.push_back((ns, sid));
        }
        // Not queued (cannot happen with a checked configuration): nothing to wait for.
        _ => session_up(t, ctx, sid),
    }
}

/// Sessions whose ICCN / OCCN the peer has acknowledged come up (sessions cleared meanwhile
/// are skipped).
fn connects_acked(t: &mut Tunnel, ctx: &mut Ctx<'_>) {
    while let Some(&(ns, sid)) = t.connects.front() {
        if !t.chan.is_acked(ns) {
            break;
        }
        t.connects.pop_front();
        let waiting = t
            .sessions
            .get(&sid)
            .is_some_and(|s| s.state == SState::WaitConnectAck(ns));
        if waiting {
            session_up(t, ctx, sid);
        }
    }
}

fn on_call_reply(t: &mut Tunnel, ctx: &mut Ctx<'_>, mtype: MessageType, m: &Message, sid: u32) {
    let expect = match mtype {
        MessageType::Icrp => CallType::Incoming,
        _ => CallType::Outgoing,
    };
    let Some(s) = t.sessions.get(&sid) else {
        return;
    };
    if s.state != SState::WaitReply || !s.initiator || s.cfg.call != expect {
        return session_fsm_error(t, ctx, sid, None, "call reply in wrong state");
    }
    let Some(peer_sid) = sender_session_id(t.version, m).filter(|&p| p != 0) else {
        let e = Some(result::ERR_BAD_VALUE);
        return session_fsm_error(t, ctx, sid, e, "reply without a session id");
    };
    let mut s = s.clone();
    s.peer_id = peer_sid;
    read_peer_session_params(t, &mut s, m);
    if expect == CallType::Incoming {
        t.sessions.insert(sid, s);
        send_connected(t, ctx, MessageType::Iccn, sid);
    } else {
        s.state = SState::WaitConnect;
        t.sessions.insert(sid, s);
    }
}

fn on_call_connected(t: &mut Tunnel, ctx: &mut Ctx<'_>, mtype: MessageType, m: &Message, sid: u32) {
    let Some(s) = t.sessions.get(&sid) else {
        return;
    };
    let ok = match mtype {
        MessageType::Iccn => !s.initiator && s.cfg.call == CallType::Incoming,
        _ => s.initiator && s.cfg.call == CallType::Outgoing,
    };
    if s.state != SState::WaitConnect || !ok {
        return session_fsm_error(t, ctx, sid, None, "connected message in wrong state");
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
    // v2: the LNS is the ICRQ recipient or the OCRQ sender (docs/reference/rfc.md §1.13).
    let lns_mode = match s.cfg.call {
        CallType::Incoming => !s.initiator,
        CallType::Outgoing => s.initiator,
    };
    let v2 = t.version == Version::V2;
    // v2: Sequencing Required from the LAC means sequencing in both directions (docs/reference/rfc.md
    // §1.16); v3: each side states what it wants to receive (docs/reference/rfc.md §2.12).
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
