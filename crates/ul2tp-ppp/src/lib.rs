//! A sans-IO PPP endpoint (RFC 1661 LCP, RFC 1334 PAP, RFC 1994 CHAP-MD5, RFC 1332/1877 IPCP,
//! RFC 5072 IPv6CP) for PPP sessions carried over L2TP.
//!
//! Design (same shape as `ul2tp-control`): the [`Endpoint`] never does I/O and never reads a
//! clock. Frames come in through [`Endpoint::handle_frame`] as the session socket carries them
//! (protocol field + information; a leading FF 03 is accepted and stripped), time comes in as a
//! [`Timestamp`] argument, and everything the endpoint wants done comes out of `poll_*`:
//! frames to send ([`Endpoint::poll_transmit`], protocol field + information, no FF 03: the
//! session layer prepends FF 03 as Linux does, docs/reference/rfc.md §4.12), notifications
//! ([`Endpoint::poll_event`]), received IP packets ([`Endpoint::poll_ip`]) and the next
//! deadline ([`Endpoint::poll_timeout`]).
//!
//! Inside: one RFC 1661 automaton ([`fsm`]) per control protocol (LCP, IPCP, IPv6CP), the
//! option logic for each, the authentication phase (PAP / CHAP-MD5, either direction), the
//! LCP echo keepalive, and the phase bookkeeping of docs/reference/rfc.md §4.2. Randomness (magic numbers,
//! CHAP challenges, interface identifiers) comes from a ChaCha `StdRng` seeded by the caller.

#![forbid(unsafe_code)]

pub mod fsm;
pub mod mschapv2;
pub mod packet;

use std::collections::VecDeque;
use std::fmt;
use std::net::Ipv4Addr;

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use ul2tp_wire::ppp::proto;

use fsm::{Action, Event as FsmEvent, Fsm, FsmConfig, State};
pub use packet::PppError;
use packet::{code, emit_packet, frame, parse_options, push_option, Chap, Packet, Pap};

/// A point in time in microseconds on the caller's monotonic scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The origin of the scale.
    pub const ZERO: Timestamp = Timestamp(0);

    /// From microseconds.
    pub const fn from_micros(us: u64) -> Timestamp {
        Timestamp(us)
    }

    /// From milliseconds.
    pub const fn from_millis(ms: u64) -> Timestamp {
        Timestamp(ms.saturating_mul(1000))
    }

    /// Microseconds since the origin.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// This time plus `us` microseconds (saturating).
    pub const fn plus_micros(self, us: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(us))
    }
}

/// An authentication protocol negotiated with the LCP Authentication-Protocol option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthProtocol {
    /// PAP (0xC023, RFC 1334).
    Pap,
    /// CHAP with MD5 (0xC223 algorithm 5, RFC 1994).
    ChapMd5,
    /// MS-CHAPv2 (0xC223 algorithm 0x81, RFC 2759).
    MsChapV2,
}

impl AuthProtocol {
    /// The option data (protocol + algorithm) as sent in LCP option 3 (docs/reference/rfc.md §4.6).
    pub fn option_data(self) -> &'static [u8] {
        match self {
            AuthProtocol::Pap => &[0xc0, 0x23],
            AuthProtocol::ChapMd5 => &[0xc2, 0x23, 0x05],
            AuthProtocol::MsChapV2 => &[0xc2, 0x23, 0x81],
        }
    }

    /// Decode LCP option 3 data.
    pub fn from_option(data: &[u8]) -> Option<AuthProtocol> {
        match data {
            [0xc0, 0x23] => Some(AuthProtocol::Pap),
            [0xc2, 0x23, 0x05] => Some(AuthProtocol::ChapMd5),
            [0xc2, 0x23, 0x81] => Some(AuthProtocol::MsChapV2),
            _ => None,
        }
    }
}

/// The authenticator's credential lookup: the secret (PAP password / CHAP secret) of a peer.
pub trait Credentials {
    /// The secret for `peer_name`, or `None` for an unknown peer.
    fn secret(&self, peer_name: &[u8]) -> Option<Vec<u8>>;
}

/// A fixed list of (name, secret) pairs.
#[derive(Debug, Clone, Default)]
pub struct StaticCredentials(pub Vec<(Vec<u8>, Vec<u8>)>);

impl Credentials for StaticCredentials {
    fn secret(&self, peer_name: &[u8]) -> Option<Vec<u8>> {
        self.0
            .iter()
            .find(|(n, _)| n.as_slice() == peer_name)
            .map(|(_, s)| s.clone())
    }
}

/// Endpoint configuration. `Config::default()` is a client that authenticates nobody.
#[derive(Debug, Clone)]
pub struct Config {
    /// Restart timer and counters (docs/reference/rfc.md §4.4), shared by LCP, IPCP and IPv6CP.
    pub fsm: FsmConfig,
    /// Our MRU; requested when not 1500.
    pub mru: u16,
    /// ACCM to request (meaningless on sync links but negotiable); `None` = do not request.
    pub accm: Option<u32>,
    /// Negotiate a Magic-Number (loop detection, echo).
    pub magic: bool,
    /// Request and accept Protocol-Field-Compression (otherwise reject it).
    pub pfc: bool,
    /// Request and accept Address-and-Control-Field-Compression (otherwise reject it).
    pub acfc: bool,
    /// Authentication we require from the peer, in order of preference (empty = none).
    pub require_auth: Vec<AuthProtocol>,
    /// Our name in CHAP Challenges.
    pub auth_name: Vec<u8>,
    /// Our own (user name, secret) for authenticating to the peer.
    pub user: Option<(Vec<u8>, Vec<u8>)>,
    /// Protocols we agree to authenticate ourselves with, in order of preference.
    pub allow_auth: Vec<AuthProtocol>,
    /// How long the authenticator waits for the peer to authenticate (µs).
    pub auth_timeout_us: u64,
    /// LCP Echo-Request interval (µs); `None` disables keepalives.
    pub echo_interval_us: Option<u64>,
    /// Unanswered Echo-Requests after which the link is declared dead.
    pub echo_failure: u32,
    /// Run IPCP.
    pub ipcp: bool,
    /// Our IPv4 address; `None` requests 0.0.0.0 and accepts the peer's Nak.
    pub local_ip: Option<Ipv4Addr>,
    /// The address we assign to the peer (the server side's pool entry for this session).
    pub peer_ip: Option<Ipv4Addr>,
    /// DNS servers we hand to the peer (RFC 1877 options 129, 131).
    pub dns: [Option<Ipv4Addr>; 2],
    /// Ask the peer for DNS servers (client side).
    pub request_dns: bool,
    /// Run IPv6CP.
    pub ipv6cp: bool,
    /// Our interface identifier; `None` picks a random one.
    pub interface_id: Option<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            fsm: FsmConfig::default(),
            mru: 1500,
            accm: None,
            magic: true,
            pfc: false,
            acfc: false,
            require_auth: Vec::new(),
            auth_name: b"ul2tp".to_vec(),
            user: None,
            allow_auth: vec![
                AuthProtocol::ChapMd5,
                AuthProtocol::MsChapV2,
                AuthProtocol::Pap,
            ],
            auth_timeout_us: 30_000_000,
            echo_interval_us: Some(10_000_000),
            echo_failure: 3,
            ipcp: true,
            local_ip: None,
            peer_ip: None,
            dns: [None, None],
            request_dns: false,
            ipv6cp: false,
            interface_id: None,
        }
    }
}

/// PPP phases (RFC 1661 §3, docs/reference/rfc.md §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No link.
    Dead,
    /// LCP negotiating.
    Establish,
    /// LCP opened, authenticating.
    Authenticate,
    /// NCPs running.
    Network,
    /// LCP terminating.
    Terminate,
}

/// Why the link went down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownReason {
    /// `close()` was called.
    AdminClose,
    /// The peer sent a Terminate-Request.
    PeerTerminated,
    /// Echo-Requests went unanswered.
    EchoTimeout,
    /// Authentication failed (either direction) or the peer refused to authenticate.
    AuthFailed,
    /// LCP negotiation gave up (Max-Configure, Code-Reject).
    NegotiationFailed,
    /// Every network control protocol finished without coming up.
    NoNetworkProtocols,
    /// The lower layer (the L2TP session) went down.
    LowerLayerDown,
}

/// Notifications for the session owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// LCP reached Opened.
    LinkUp,
    /// We authenticated the peer (authenticator side).
    AuthSuccess {
        /// The name the peer authenticated with.
        peer_name: Vec<u8>,
    },
    /// The peer failed to authenticate to us.
    AuthFailure {
        /// The name the peer tried.
        peer_name: Vec<u8>,
    },
    /// The peer accepted our credentials.
    Authenticated,
    /// The peer rejected our credentials.
    AuthRejected,
    /// IPCP reached Opened.
    NetworkUp {
        /// Our address.
        local: Ipv4Addr,
        /// The peer's address.
        peer: Ipv4Addr,
        /// DNS servers the peer gave us.
        dns: Vec<Ipv4Addr>,
    },
    /// IPv6CP reached Opened.
    Ipv6Up {
        /// Our interface identifier.
        local_iid: u64,
        /// The peer's interface identifier.
        peer_iid: u64,
    },
    /// IPCP left Opened.
    NetworkDown,
    /// IPv6CP left Opened.
    Ipv6Down,
    /// LCP finished: the link is dead.
    LinkDown {
        /// Why.
        reason: DownReason,
    },
}

/// An IP packet received over the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpPacket {
    /// IPv4 (protocol 0x0021).
    V4(Vec<u8>),
    /// IPv6 (protocol 0x0057).
    V6(Vec<u8>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cp {
    Lcp,
    Ipcp,
    Ipv6cp,
}

impl Cp {
    fn protocol(self) -> u16 {
        match self {
            Cp::Lcp => proto::LCP,
            Cp::Ipcp => proto::IPCP,
            Cp::Ipv6cp => proto::IPV6CP,
        }
    }
}

/// Per-protocol automaton plus request bookkeeping.
#[derive(Debug, Clone)]
struct CpState {
    fsm: Fsm,
    next_id: u8,
    req_id: u8,
    last_req: Vec<u8>,
}

impl CpState {
    fn new(c: FsmConfig) -> CpState {
        CpState {
            fsm: Fsm::new(c),
            next_id: 1,
            req_id: 0,
            last_req: Vec::new(),
        }
    }
    fn take_id(&mut self) -> u8 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }
}

/// Data an action needs from the received packet.
#[derive(Default)]
struct Ctx {
    reply: Vec<u8>,
    /// The RXR event came from an Echo-Request (only those get ser; RFC 1661 §5.8).
    echo_request: bool,
    id: u8,
    data: Vec<u8>,
}

#[derive(Debug, Clone, Default)]
struct LcpWant {
    mru: Option<u16>,
    accm: Option<u32>,
    auth: Option<AuthProtocol>,
    auth_tried: Vec<AuthProtocol>,
    magic: Option<u32>,
    pfc: bool,
    acfc: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct LcpPeer {
    mru: Option<u16>,
    auth: Option<AuthProtocol>,
    magic: Option<u32>,
}

#[derive(Debug, Clone, Default)]
struct IpcpWant {
    addr: Option<Ipv4Addr>,
    dns: [Option<Ipv4Addr>; 2],
}

#[derive(Debug, Clone, Default)]
struct Auth {
    server: Option<AuthProtocol>,
    server_done: bool,
    client: Option<AuthProtocol>,
    client_done: bool,
    /// Our side authenticating to the peer: retransmit / give-up timer and attempts left.
    client_deadline: Option<Timestamp>,
    client_tries: u32,
    /// Our side authenticating the peer: timer and attempts left.
    server_deadline: Option<Timestamp>,
    server_tries: u32,
    chal_id: u8,
    challenge: Vec<u8>,
    chal_result: Option<bool>,
    pap_id: u8,
    /// Peer side of MS-CHAPv2: the authenticator response we expect in Success.
    ms_expected: Option<String>,
    /// Peer side: (identifier, challenge, response value) of the last Challenge answered, so a
    /// retransmitted Challenge gets the identical Response.
    last_response: Option<(u8, Vec<u8>, Vec<u8>)>,
}

/// The PPP endpoint of one session. See the crate documentation for the calling convention.
pub struct Endpoint {
    config: Config,
    rng: StdRng,
    phase: Phase,
    lcp: CpState,
    ipcp: CpState,
    ipv6cp: CpState,
    lcp_want: LcpWant,
    lcp_peer: LcpPeer,
    lcp_acked: LcpWant,
    ipcp_want: IpcpWant,
    ipcp_acked: IpcpWant,
    ipcp_peer_addr: Option<Ipv4Addr>,
    iid_want: Option<u64>,
    iid_acked: Option<u64>,
    iid_peer: Option<u64>,
    iid_last_nak: Option<u64>,
    auth: Auth,
    credentials: Option<Box<dyn Credentials + Send>>,
    echo_deadline: Option<Timestamp>,
    echo_outstanding: u32,
    echo_id: u8,
    down_reason: Option<DownReason>,
    auth_refused: bool,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,
    ip_rx: VecDeque<IpPacket>,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("phase", &self.phase)
            .field("lcp", &self.lcp.fsm.state)
            .field("ipcp", &self.ipcp.fsm.state)
            .field("ipv6cp", &self.ipv6cp.fsm.state)
            .finish_non_exhaustive()
    }
}

const IID_U_BIT: u64 = 0x0200_0000_0000_0000;

impl Endpoint {
    /// A new endpoint in phase Dead; `seed` (256 bits) feeds the random generator (magic
    /// numbers, CHAP challenges, interface identifiers). In production it must come from the
    /// operating system's CSPRNG (the daemon uses getrandom(2)); tests pass fixed bytes so that
    /// runs are reproducible.
    pub fn new(config: Config, seed: [u8; 32]) -> Endpoint {
        let c = config.fsm;
        Endpoint {
            config,
            rng: StdRng::from_seed(seed),
            phase: Phase::Dead,
            lcp: CpState::new(c),
            ipcp: CpState::new(c),
            ipv6cp: CpState::new(c),
            lcp_want: LcpWant::default(),
            lcp_peer: LcpPeer::default(),
            lcp_acked: LcpWant::default(),
            ipcp_want: IpcpWant::default(),
            ipcp_acked: IpcpWant::default(),
            ipcp_peer_addr: None,
            iid_want: None,
            iid_acked: None,
            iid_peer: None,
            iid_last_nak: None,
            auth: Auth::default(),
            credentials: None,
            echo_deadline: None,
            echo_outstanding: 0,
            echo_id: 0,
            down_reason: None,
            auth_refused: false,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            ip_rx: VecDeque::new(),
        }
    }

    /// Install the authenticator's credential lookup (needed when `require_auth` is set).
    pub fn set_credentials(&mut self, credentials: Box<dyn Credentials + Send>) {
        self.credentials = Some(credentials);
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The LCP automaton state.
    pub fn lcp_state(&self) -> State {
        self.lcp.fsm.state
    }

    /// The IPCP automaton state.
    pub fn ipcp_state(&self) -> State {
        self.ipcp.fsm.state
    }

    /// The IPv6CP automaton state.
    pub fn ipv6cp_state(&self) -> State {
        self.ipv6cp.fsm.state
    }

    /// The MRU the peer asked us to respect (1500 when not negotiated).
    pub fn peer_mru(&self) -> u16 {
        self.lcp_peer.mru.unwrap_or(1500)
    }

    /// Start the link: administrative Open of LCP plus lower layer Up (the L2TP session is
    /// established when the endpoint is created for it).
    pub fn open(&mut self, now: Timestamp) {
        self.down_reason = None;
        self.run(now, Cp::Lcp, FsmEvent::Open, &Ctx::default());
        self.run(now, Cp::Lcp, FsmEvent::Up, &Ctx::default());
    }

    /// Administrative close: terminate LCP (LinkDown{AdminClose} follows).
    pub fn close(&mut self, now: Timestamp) {
        self.close_link(now, DownReason::AdminClose);
    }

    /// The lower layer (L2TP session) went away: every automaton gets Down.
    pub fn lower_down(&mut self, now: Timestamp) {
        let was_up = !matches!(self.lcp.fsm.state, State::Initial | State::Starting);
        self.run(now, Cp::Lcp, FsmEvent::Down, &Ctx::default());
        if was_up {
            self.phase = Phase::Dead;
            self.echo_deadline = None;
            self.auth = Auth::default();
            self.events.push_back(Event::LinkDown {
                reason: DownReason::LowerLayerDown,
            });
        }
    }

    /// The next frame to send (protocol field + information, no FF 03).
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// The next notification.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next received IP packet.
    pub fn poll_ip(&mut self) -> Option<IpPacket> {
        self.ip_rx.pop_front()
    }

    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        [
            self.lcp.fsm.deadline,
            self.ipcp.fsm.deadline,
            self.ipv6cp.fsm.deadline,
            self.auth.client_deadline,
            self.auth.server_deadline,
            self.echo_deadline,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Queue an IP packet (v4 or v6 by its version nibble) for sending; `Err(NotUp)` when the
    /// matching network protocol is not Opened, `Err(BadBody)` for a packet of neither version.
    pub fn send_ip(&mut self, packet: &[u8]) -> Result<(), PppError> {
        let (p, st) = match packet.first().map(|b| b >> 4) {
            Some(4) => (proto::IPV4, self.ipcp.fsm.state),
            Some(6) => (proto::IPV6, self.ipv6cp.fsm.state),
            _ => return Err(PppError::BadBody),
        };
        if st != State::Opened {
            return Err(PppError::NotUp);
        }
        self.transmit.push_back(frame(p, packet));
        Ok(())
    }

    /// Process timers due at `now`.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        for cp in [Cp::Lcp, Cp::Ipcp, Cp::Ipv6cp] {
            if let Some(ev) = self.cp_mut(cp).fsm.timeout_event(now) {
                if cp == Cp::Lcp && ev == FsmEvent::ToMinus && self.down_reason.is_none() {
                    self.down_reason = Some(DownReason::NegotiationFailed);
                }
                self.run(now, cp, ev, &Ctx::default());
            }
        }
        if self.auth.client_deadline.is_some_and(|d| now >= d) {
            self.auth.client_deadline = None;
            self.client_auth_timeout(now);
        }
        if self.auth.server_deadline.is_some_and(|d| now >= d) {
            self.auth.server_deadline = None;
            self.server_auth_timeout(now);
        }
        if self.echo_deadline.is_some_and(|d| now >= d) {
            self.echo_tick(now);
        }
    }

    /// Process one received frame (protocol field + information; FF 03 optional).
    /// Malformed or out-of-phase frames are discarded and reported as `Err`.
    pub fn handle_frame(&mut self, now: Timestamp, frame_bytes: &[u8]) -> Result<(), PppError> {
        let (protocol, info) = packet::split_frame(frame_bytes)?;
        let lcp_open = self.lcp.fsm.state == State::Opened;
        match protocol {
            proto::LCP => self.rx_cp(now, Cp::Lcp, info),
            proto::PAP | proto::CHAP => {
                // docs/reference/rfc.md §4.2: authentication packets only once LCP is Opened.
                if !lcp_open {
                    return Err(PppError::NotUp);
                }
                let p = Packet::parse(info)?;
                if protocol == proto::PAP {
                    self.rx_pap(now, &p)
                } else {
                    self.rx_chap(now, &p)
                }
            }
            proto::IPCP | proto::IPV6CP => {
                let (enabled, cp) = if protocol == proto::IPCP {
                    (self.config.ipcp, Cp::Ipcp)
                } else {
                    (self.config.ipv6cp, Cp::Ipv6cp)
                };
                if !enabled && lcp_open {
                    self.send_protocol_reject(protocol, info);
                    return Ok(());
                }
                // NCP packets before the Network phase are silently discarded (§4.2).
                if self.phase != Phase::Network {
                    return Err(PppError::NotUp);
                }
                self.rx_cp(now, cp, info)
            }
            proto::IPV4 | proto::IPV6 => {
                let (st, pkt) = if protocol == proto::IPV4 {
                    (self.ipcp.fsm.state, IpPacket::V4(info.to_vec()))
                } else {
                    (self.ipv6cp.fsm.state, IpPacket::V6(info.to_vec()))
                };
                if st != State::Opened {
                    return Err(PppError::NotUp);
                }
                self.ip_rx.push_back(pkt);
                Ok(())
            }
            other => {
                // docs/reference/rfc.md §4.1: unknown protocol while LCP is Opened ⇒ Protocol-Reject.
                if lcp_open {
                    self.send_protocol_reject(other, info);
                    Ok(())
                } else {
                    Err(PppError::NotUp)
                }
            }
        }
    }

    fn cp_mut(&mut self, cp: Cp) -> &mut CpState {
        match cp {
            Cp::Lcp => &mut self.lcp,
            Cp::Ipcp => &mut self.ipcp,
            Cp::Ipv6cp => &mut self.ipv6cp,
        }
    }

    fn send(&mut self, protocol: u16, code: u8, id: u8, data: &[u8]) {
        if let Ok(p) = emit_packet(code, id, data) {
            self.transmit.push_back(frame(protocol, &p));
        }
    }

    fn truncate_for_peer<'b>(&self, data: &'b [u8], overhead: usize) -> &'b [u8] {
        let max = usize::from(self.peer_mru()).saturating_sub(overhead);
        &data[..data.len().min(max)]
    }

    fn send_protocol_reject(&mut self, protocol: u16, info: &[u8]) {
        let mut d = protocol.to_be_bytes().to_vec();
        d.extend_from_slice(self.truncate_for_peer(info, 6));
        let id = self.lcp.take_id();
        self.send(proto::LCP, code::PROTO_REJ, id, &d);
    }

    fn close_link(&mut self, now: Timestamp, reason: DownReason) {
        if self.down_reason.is_none() {
            self.down_reason = Some(reason);
        }
        if matches!(self.lcp.fsm.state, State::Initial | State::Starting) {
            self.run(now, Cp::Lcp, FsmEvent::Close, &Ctx::default());
            return;
        }
        self.run(now, Cp::Lcp, FsmEvent::Close, &Ctx::default());
        if self.lcp.fsm.state == State::Closing {
            self.phase = Phase::Terminate;
        }
    }

    /// Feed `event` to one automaton and perform its actions.
    fn run(&mut self, now: Timestamp, cp: Cp, event: FsmEvent, ctx: &Ctx) {
        let actions = self.cp_mut(cp).fsm.step(now, event);
        let protocol = cp.protocol();
        for a in actions {
            match a {
                Action::Irc | Action::Zrc => {}
                Action::Tlu => self.this_layer_up(now, cp),
                Action::Tld => self.this_layer_down(now, cp),
                Action::Tls => self.this_layer_started(cp),
                Action::Tlf => self.this_layer_finished(now, cp),
                Action::Scr => {
                    let opts = self.build_request(cp);
                    let st = self.cp_mut(cp);
                    let id = st.take_id();
                    st.req_id = id;
                    st.last_req = opts.clone();
                    self.send(protocol, code::CONF_REQ, id, &opts);
                }
                Action::Sca | Action::Scn => {
                    if !ctx.reply.is_empty() {
                        self.transmit.push_back(frame(protocol, &ctx.reply));
                    }
                }
                Action::Str => {
                    let id = self.cp_mut(cp).take_id();
                    self.send(protocol, code::TERM_REQ, id, b"");
                }
                Action::Sta => self.send(protocol, code::TERM_ACK, ctx.id, b""),
                Action::Scj => {
                    let id = self.cp_mut(cp).take_id();
                    let d = self.truncate_for_peer(&ctx.data, 4).to_vec();
                    self.send(protocol, code::CODE_REJ, id, &d);
                }
                Action::Ser if ctx.echo_request => {
                    let mut d = self.lcp_acked.magic.unwrap_or(0).to_be_bytes().to_vec();
                    d.extend_from_slice(ctx.data.get(4..).unwrap_or(&[]));
                    self.send(protocol, code::ECHO_REP, ctx.id, &d);
                }
                Action::Ser => {}
            }
        }
    }

    fn this_layer_started(&mut self, cp: Cp) {
        match cp {
            Cp::Lcp => {
                self.phase = Phase::Establish;
                self.reset_lcp_want();
            }
            Cp::Ipcp => self.reset_ipcp_want(),
            Cp::Ipv6cp => {
                self.iid_want = Some(self.config.interface_id.unwrap_or_else(|| {
                    let r = &mut self.rng;
                    random_iid(r)
                }));
                self.iid_last_nak = None;
            }
        }
    }

    fn reset_lcp_want(&mut self) {
        let c = &self.config;
        self.lcp_want = LcpWant {
            mru: (c.mru != 1500).then_some(c.mru),
            accm: c.accm,
            auth: c.require_auth.first().copied(),
            auth_tried: Vec::new(),
            magic: None,
            pfc: c.pfc,
            acfc: c.acfc,
        };
        if self.config.magic {
            self.lcp_want.magic = Some(self.random_magic());
        }
    }

    fn reset_ipcp_want(&mut self) {
        let ask = self.config.request_dns.then_some(Ipv4Addr::UNSPECIFIED);
        self.ipcp_want = IpcpWant {
            addr: Some(self.config.local_ip.unwrap_or(Ipv4Addr::UNSPECIFIED)),
            dns: [ask, ask],
        };
    }

    fn random_magic(&mut self) -> u32 {
        loop {
            let m = self.rng.next_u32();
            if m != 0 {
                return m;
            }
        }
    }

    fn this_layer_up(&mut self, now: Timestamp, cp: Cp) {
        match cp {
            Cp::Lcp => {
                self.events.push_back(Event::LinkUp);
                if let Some(iv) = self.config.echo_interval_us {
                    self.echo_deadline = Some(now.plus_micros(iv));
                    self.echo_outstanding = 0;
                }
                self.start_auth(now);
            }
            Cp::Ipcp => {
                let local = self.ipcp_acked.addr.unwrap_or(Ipv4Addr::UNSPECIFIED);
                let peer = self.ipcp_peer_addr.unwrap_or(Ipv4Addr::UNSPECIFIED);
                let dns = self
                    .ipcp_acked
                    .dns
                    .iter()
                    .flatten()
                    .copied()
                    .filter(|a| !a.is_unspecified())
                    .collect();
                self.events.push_back(Event::NetworkUp { local, peer, dns });
            }
            Cp::Ipv6cp => {
                let local_iid = self.iid_acked.or(self.iid_want).unwrap_or(0);
                let peer_iid = self.iid_peer.unwrap_or(0);
                self.events.push_back(Event::Ipv6Up {
                    local_iid,
                    peer_iid,
                });
            }
        }
    }

    fn this_layer_down(&mut self, now: Timestamp, cp: Cp) {
        match cp {
            Cp::Lcp => {
                self.phase = Phase::Terminate;
                self.echo_deadline = None;
                self.auth = Auth::default();
                for ncp in [Cp::Ipcp, Cp::Ipv6cp] {
                    self.run(now, ncp, FsmEvent::Down, &Ctx::default());
                }
            }
            Cp::Ipcp => self.events.push_back(Event::NetworkDown),
            Cp::Ipv6cp => self.events.push_back(Event::Ipv6Down),
        }
    }

    fn this_layer_finished(&mut self, now: Timestamp, cp: Cp) {
        match cp {
            Cp::Lcp => {
                self.phase = Phase::Dead;
                self.echo_deadline = None;
                self.auth = Auth::default();
                let reason = self
                    .down_reason
                    .take()
                    .unwrap_or(DownReason::NegotiationFailed);
                self.events.push_back(Event::LinkDown { reason });
            }
            Cp::Ipcp | Cp::Ipv6cp => {
                // When no enabled NCP is left running or up, close the link.
                let idle = |s: State| {
                    matches!(
                        s,
                        State::Initial | State::Starting | State::Closed | State::Stopped
                    )
                };
                let all_idle = (!self.config.ipcp || idle(self.ipcp.fsm.state))
                    && (!self.config.ipv6cp || idle(self.ipv6cp.fsm.state));
                if all_idle && self.lcp.fsm.state == State::Opened {
                    self.close_link(now, DownReason::NoNetworkProtocols);
                }
            }
        }
    }

    // ---------------------------------------------------------------- control protocols

    fn rx_cp(&mut self, now: Timestamp, cp: Cp, info: &[u8]) -> Result<(), PppError> {
        let p = Packet::parse(info)?;
        let state = self.cp_mut(cp).fsm.state;
        if matches!(state, State::Initial | State::Starting) {
            // No lower layer for this protocol yet: discard (illegal events).
            return Err(PppError::NotUp);
        }
        let mut ctx = Ctx {
            id: p.identifier,
            ..Ctx::default()
        };
        match p.code {
            code::CONF_REQ => {
                let opts = parse_options(p.data)?;
                let (good, reply_code, reply) = match cp {
                    Cp::Lcp => self.eval_lcp(&opts),
                    Cp::Ipcp => self.eval_ipcp(&opts),
                    Cp::Ipv6cp => self.eval_ipv6cp(&opts),
                };
                ctx.reply = emit_packet(reply_code, p.identifier, &reply)?;
                let st = &mut self.cp_mut(cp).fsm;
                if good {
                    st.nak_count = 0;
                } else if reply_code == code::CONF_NAK {
                    st.nak_count = st.nak_count.saturating_add(1);
                }
                let ev = if good {
                    FsmEvent::RcrPlus
                } else {
                    FsmEvent::RcrMinus
                };
                self.run(now, cp, ev, &ctx);
            }
            code::CONF_ACK => {
                let st = self.cp_mut(cp);
                // Must match the last request exactly (docs/reference/rfc.md §4.5).
                if p.identifier != st.req_id || p.data != st.last_req.as_slice() {
                    return Err(PppError::BadBody);
                }
                match cp {
                    Cp::Lcp => self.lcp_acked = self.lcp_want.clone(),
                    Cp::Ipcp => self.ipcp_acked = self.ipcp_want.clone(),
                    Cp::Ipv6cp => self.iid_acked = self.iid_want,
                }
                self.run(now, cp, FsmEvent::Rca, &ctx);
            }
            code::CONF_NAK | code::CONF_REJ => {
                if p.identifier != self.cp_mut(cp).req_id {
                    return Err(PppError::BadBody);
                }
                let opts = parse_options(p.data)?;
                let reject = p.code == code::CONF_REJ;
                match cp {
                    Cp::Lcp => self.apply_lcp_nak(&opts, reject),
                    Cp::Ipcp => self.apply_ipcp_nak(&opts, reject),
                    Cp::Ipv6cp => self.apply_ipv6cp_nak(&opts, reject),
                }
                self.run(now, cp, FsmEvent::Rcn, &ctx);
                if self.auth_refused {
                    self.auth_refused = false;
                    self.close_link(now, DownReason::AuthFailed);
                }
            }
            code::TERM_REQ => {
                if cp == Cp::Lcp && self.down_reason.is_none() {
                    self.down_reason = Some(DownReason::PeerTerminated);
                }
                self.run(now, cp, FsmEvent::Rtr, &ctx);
            }
            code::TERM_ACK => self.run(now, cp, FsmEvent::Rta, &ctx),
            code::CODE_REJ => {
                // Rejecting one of the codes 1–7 is catastrophic (RFC 1661 §5.6).
                let rejected = p.data.first().copied().unwrap_or(0);
                let ev = if (1..=7).contains(&rejected) {
                    FsmEvent::RxjMinus
                } else {
                    FsmEvent::RxjPlus
                };
                if cp == Cp::Lcp && ev == FsmEvent::RxjMinus && self.down_reason.is_none() {
                    self.down_reason = Some(DownReason::NegotiationFailed);
                }
                self.run(now, cp, ev, &ctx);
            }
            code::PROTO_REJ if cp == Cp::Lcp => {
                let Some(rp) = p.data.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])) else {
                    return Err(PppError::BadBody);
                };
                match rp {
                    proto::IPCP | proto::IPV4 => {
                        self.run(now, Cp::Ipcp, FsmEvent::RxjMinus, &Ctx::default())
                    }
                    proto::IPV6CP | proto::IPV6 => {
                        self.run(now, Cp::Ipv6cp, FsmEvent::RxjMinus, &Ctx::default())
                    }
                    proto::LCP => {
                        if self.down_reason.is_none() {
                            self.down_reason = Some(DownReason::NegotiationFailed);
                        }
                        self.run(now, Cp::Lcp, FsmEvent::RxjMinus, &ctx)
                    }
                    _ => self.run(now, Cp::Lcp, FsmEvent::RxjPlus, &ctx),
                }
            }
            code::ECHO_REQ | code::ECHO_REP | code::DISCARD_REQ if cp == Cp::Lcp => {
                if p.code == code::ECHO_REP {
                    self.echo_outstanding = 0;
                }
                if p.code == code::ECHO_REQ {
                    ctx.data = p.data.to_vec();
                    ctx.echo_request = true;
                }
                self.run(now, cp, FsmEvent::Rxr, &ctx);
            }
            _ => {
                ctx.data = info[..p.len()].to_vec();
                self.run(now, cp, FsmEvent::Ruc, &ctx);
            }
        }
        Ok(())
    }

    fn build_request(&mut self, cp: Cp) -> Vec<u8> {
        let mut v = Vec::new();
        match cp {
            Cp::Lcp => {
                let w = &self.lcp_want;
                if let Some(m) = w.mru {
                    push_option(&mut v, 1, &m.to_be_bytes());
                }
                if let Some(a) = w.accm {
                    push_option(&mut v, 2, &a.to_be_bytes());
                }
                if let Some(a) = w.auth {
                    push_option(&mut v, 3, a.option_data());
                }
                if let Some(m) = w.magic {
                    push_option(&mut v, 5, &m.to_be_bytes());
                }
                if w.pfc {
                    push_option(&mut v, 7, &[]);
                }
                if w.acfc {
                    push_option(&mut v, 8, &[]);
                }
            }
            Cp::Ipcp => {
                let w = &self.ipcp_want;
                if let Some(a) = w.addr {
                    push_option(&mut v, 3, &a.octets());
                }
                if let Some(d) = w.dns[0] {
                    push_option(&mut v, 129, &d.octets());
                }
                if let Some(d) = w.dns[1] {
                    push_option(&mut v, 131, &d.octets());
                }
            }
            Cp::Ipv6cp => {
                if let Some(i) = self.iid_want {
                    push_option(&mut v, 1, &i.to_be_bytes());
                }
            }
        }
        v
    }

    /// Build the reply to a Configure-Request: (acceptable, reply code, reply options).
    /// Rejects win over Naks; after Max-Failure Naks, Naks become Rejects (docs/reference/rfc.md §4.4).
    fn finish_eval(&self, cp: Cp, ack: Vec<u8>, nak: Vec<u8>, rej: Vec<u8>) -> (bool, u8, Vec<u8>) {
        let st = match cp {
            Cp::Lcp => &self.lcp.fsm,
            Cp::Ipcp => &self.ipcp.fsm,
            Cp::Ipv6cp => &self.ipv6cp.fsm,
        };
        if !rej.is_empty() {
            (false, code::CONF_REJ, rej)
        } else if !nak.is_empty() {
            if st.nak_count >= st.config.max_failure {
                (false, code::CONF_REJ, nak)
            } else {
                (false, code::CONF_NAK, nak)
            }
        } else {
            (true, code::CONF_ACK, ack)
        }
    }

    fn eval_lcp(&mut self, opts: &[packet::ConfOption<'_>]) -> (bool, u8, Vec<u8>) {
        let (mut ack, mut nak, mut rej) = (Vec::new(), Vec::new(), Vec::new());
        let mut peer = LcpPeer::default();
        let over_failure = self.lcp.fsm.nak_count >= self.config.fsm.max_failure;
        for o in opts {
            push_option(&mut ack, o.kind, o.data);
            match (o.kind, o.data.len()) {
                (1, 2) => {
                    let mru = o.u16().unwrap_or(0);
                    if mru >= 128 {
                        peer.mru = Some(mru);
                    } else {
                        push_option(&mut nak, 1, &1500u16.to_be_bytes());
                    }
                }
                (2, 4) => {}
                (3, _) => {
                    let allowed = |a: AuthProtocol| {
                        self.config.user.is_some() && self.config.allow_auth.contains(&a)
                    };
                    match AuthProtocol::from_option(o.data) {
                        Some(a) if allowed(a) => peer.auth = Some(a),
                        _ => match self.config.allow_auth.first() {
                            Some(a) if self.config.user.is_some() && !over_failure => {
                                push_option(&mut nak, 3, a.option_data())
                            }
                            _ => push_option(&mut rej, o.kind, o.data),
                        },
                    }
                }
                (5, 4) => {
                    let m = o.u32().unwrap_or(0);
                    // 0 is illegal; our own value means a possible loopback (docs/reference/rfc.md §4.6).
                    if m == 0 || Some(m) == self.lcp_want.magic {
                        let n = self.random_magic();
                        push_option(&mut nak, 5, &n.to_be_bytes());
                    } else {
                        peer.magic = Some(m);
                    }
                }
                // Endpoint-Discriminator: informational, accepted as pppd does (the
                // v2-guest-xl2tpd-lac-vs-l2tpns capture shows pppd acking it).
                (19, 1..) => {}
                (7, 0) if self.config.pfc => {}
                (8, 0) if self.config.acfc => {}
                _ => push_option(&mut rej, o.kind, o.data),
            }
        }
        let r = self.finish_eval(Cp::Lcp, ack, nak, rej);
        if r.0 {
            self.lcp_peer = peer;
        }
        r
    }

    fn apply_lcp_nak(&mut self, opts: &[packet::ConfOption<'_>], reject: bool) {
        for o in opts {
            match o.kind {
                1 => {
                    self.lcp_want.mru = match o.u16() {
                        Some(m) if !reject && m >= 128 => Some(m),
                        _ => None,
                    }
                }
                2 => {
                    self.lcp_want.accm = if reject { None } else { o.u32() };
                }
                3 => {
                    if let Some(cur) = self.lcp_want.auth {
                        self.lcp_want.auth_tried.push(cur);
                    }
                    let suggested = AuthProtocol::from_option(o.data);
                    let next = match suggested {
                        Some(s)
                            if !reject
                                && self.config.require_auth.contains(&s)
                                && !self.lcp_want.auth_tried.contains(&s) =>
                        {
                            Some(s)
                        }
                        _ if reject => None,
                        _ => self
                            .config
                            .require_auth
                            .iter()
                            .copied()
                            .find(|a| !self.lcp_want.auth_tried.contains(a)),
                    };
                    if next.is_none() && !self.config.require_auth.is_empty() {
                        // The peer refuses every protocol we accept.
                        self.auth_refused = true;
                    }
                    self.lcp_want.auth = next;
                }
                5 => {
                    self.lcp_want.magic = if reject {
                        None
                    } else {
                        Some(self.random_magic())
                    };
                }
                7 => self.lcp_want.pfc = false,
                8 => self.lcp_want.acfc = false,
                _ => {}
            }
        }
    }

    fn eval_ipcp(&mut self, opts: &[packet::ConfOption<'_>]) -> (bool, u8, Vec<u8>) {
        let (mut ack, mut nak, mut rej) = (Vec::new(), Vec::new(), Vec::new());
        let mut peer_addr = None;
        let mut saw_addr = false;
        for o in opts {
            push_option(&mut ack, o.kind, o.data);
            let v = o.u32().map(Ipv4Addr::from);
            match (o.kind, v) {
                (3, Some(a)) => {
                    saw_addr = true;
                    match self.config.peer_ip {
                        Some(assign) if a == assign => peer_addr = Some(a),
                        Some(assign) => push_option(&mut nak, 3, &assign.octets()),
                        None if !a.is_unspecified() => peer_addr = Some(a),
                        None => push_option(&mut rej, o.kind, o.data),
                    }
                }
                (129 | 131, Some(a)) => {
                    let i = usize::from(o.kind == 131);
                    match self.config.dns[i] {
                        Some(d) if d == a => {}
                        Some(d) => push_option(&mut nak, o.kind, &d.octets()),
                        None => push_option(&mut rej, o.kind, o.data),
                    }
                }
                _ => push_option(&mut rej, o.kind, o.data),
            }
        }
        // RFC 1332 §3.3 / docs/reference/rfc.md §4.5: a Nak may carry an option the peer did not request.
        if let (false, Some(assign)) = (saw_addr, self.config.peer_ip) {
            if self.ipcp.fsm.nak_count < self.config.fsm.max_failure {
                push_option(&mut nak, 3, &assign.octets());
            }
        }
        let r = self.finish_eval(Cp::Ipcp, ack, nak, rej);
        if r.0 {
            self.ipcp_peer_addr = peer_addr;
        }
        r
    }

    fn apply_ipcp_nak(&mut self, opts: &[packet::ConfOption<'_>], reject: bool) {
        for o in opts {
            let v = o.u32().map(Ipv4Addr::from);
            match o.kind {
                3 if reject => self.ipcp_want.addr = None,
                3 if self.config.local_ip.is_none() => {
                    if let Some(a) = v {
                        self.ipcp_want.addr = Some(a);
                    }
                }
                129 | 131 => {
                    let i = usize::from(o.kind == 131);
                    if reject {
                        self.ipcp_want.dns[i] = None;
                    } else if self.ipcp_want.dns[i].is_some() {
                        if let Some(a) = v {
                            self.ipcp_want.dns[i] = Some(a);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// RFC 5072 §4.1 rules (docs/reference/rfc.md §4.11).
    fn eval_ipv6cp(&mut self, opts: &[packet::ConfOption<'_>]) -> (bool, u8, Vec<u8>) {
        let (mut ack, mut nak, mut rej) = (Vec::new(), Vec::new(), Vec::new());
        let mut peer = None;
        let ours = self.iid_want.unwrap_or(0);
        for o in opts {
            push_option(&mut ack, o.kind, o.data);
            match (o.kind, o.u64()) {
                (1, Some(r)) => {
                    if r == 0 && ours == 0 {
                        push_option(&mut rej, 1, o.data);
                    } else if r == 0 || r == ours {
                        let mut n = random_iid(&mut self.rng);
                        while n == ours {
                            n = random_iid(&mut self.rng);
                        }
                        self.iid_last_nak = Some(n);
                        push_option(&mut nak, 1, &n.to_be_bytes());
                    } else {
                        peer = Some(r);
                    }
                }
                _ => push_option(&mut rej, o.kind, o.data),
            }
        }
        let r = self.finish_eval(Cp::Ipv6cp, ack, nak, rej);
        if r.0 {
            self.iid_peer = peer;
        }
        r
    }

    fn apply_ipv6cp_nak(&mut self, opts: &[packet::ConfOption<'_>], reject: bool) {
        for o in opts {
            if o.kind != 1 {
                continue;
            }
            if reject {
                self.iid_want = None;
                continue;
            }
            self.iid_want = match o.u64() {
                Some(n) if n != 0 && Some(n) != self.iid_last_nak => Some(n),
                _ => Some(random_iid(&mut self.rng)),
            };
        }
    }

    // ---------------------------------------------------------------- authentication

    fn start_auth(&mut self, now: Timestamp) {
        self.auth = Auth {
            server: self.lcp_acked.auth,
            client: self.lcp_peer.auth,
            client_tries: self.config.fsm.max_configure,
            server_tries: self.config.fsm.max_configure,
            ..Auth::default()
        };
        if self.auth.server.is_none() && self.auth.client.is_none() {
            self.enter_network(now);
            return;
        }
        self.phase = Phase::Authenticate;
        let wait = Some(now.plus_micros(self.config.auth_timeout_us));
        match self.auth.client {
            Some(AuthProtocol::Pap) => self.send_pap_request(now),
            Some(_) => self.auth.client_deadline = wait,
            None => {}
        }
        match self.auth.server {
            Some(AuthProtocol::Pap) => self.auth.server_deadline = wait,
            Some(_) => self.send_challenge(now),
            None => {}
        }
    }

    fn send_pap_request(&mut self, now: Timestamp) {
        let Some((user, secret)) = self.config.user.clone() else {
            return;
        };
        self.auth.pap_id = self.auth.pap_id.wrapping_add(1);
        let body = Pap::Request {
            peer_id: &user,
            password: &secret,
        }
        .emit_body();
        self.send(proto::PAP, 1, self.auth.pap_id, &body);
        self.auth.client_tries = self.auth.client_tries.saturating_sub(1);
        self.auth.client_deadline = Some(now.plus_micros(self.config.fsm.restart_us));
    }

    fn send_challenge(&mut self, now: Timestamp) {
        if self.auth.challenge.is_empty() || self.auth.chal_result.is_some() {
            let mut c = vec![0u8; 16];
            self.rng.fill_bytes(&mut c);
            self.auth.challenge = c;
            self.auth.chal_id = self.auth.chal_id.wrapping_add(1);
            self.auth.chal_result = None;
        }
        let name = self.config.auth_name.clone();
        let body = Chap::Challenge {
            value: &self.auth.challenge,
            name: &name,
        }
        .emit_body();
        self.send(proto::CHAP, 1, self.auth.chal_id, &body);
        self.auth.server_tries = self.auth.server_tries.saturating_sub(1);
        self.auth.server_deadline = Some(now.plus_micros(self.config.fsm.restart_us));
    }

    /// Our authentication to the peer timed out: retransmit or give up.
    fn client_auth_timeout(&mut self, now: Timestamp) {
        if self.phase != Phase::Authenticate || self.auth.client_done {
            return;
        }
        if self.auth.client_tries == 0 {
            self.close_link(now, DownReason::AuthFailed);
            return;
        }
        match (
            self.auth.client,
            self.auth.last_response.clone(),
            self.config.user.clone(),
        ) {
            (Some(AuthProtocol::Pap), _, _) => self.send_pap_request(now),
            (Some(_), Some((id, _, resp)), Some((user, _))) => {
                let body = Chap::Response {
                    value: &resp,
                    name: &user,
                }
                .emit_body();
                self.send(proto::CHAP, 2, id, &body);
                self.auth.client_tries -= 1;
                self.auth.client_deadline = Some(now.plus_micros(self.config.fsm.restart_us));
            }
            // No Challenge ever arrived.
            _ => self.close_link(now, DownReason::AuthFailed),
        }
    }

    /// The peer did not authenticate in time: re-challenge or give up.
    fn server_auth_timeout(&mut self, now: Timestamp) {
        if self.phase != Phase::Authenticate || self.auth.server_done {
            return;
        }
        let chap = matches!(
            self.auth.server,
            Some(AuthProtocol::ChapMd5 | AuthProtocol::MsChapV2)
        );
        if chap && self.auth.server_tries > 0 {
            self.send_challenge(now);
        } else {
            self.close_link(now, DownReason::AuthFailed);
        }
    }

    fn check_auth_done(&mut self, now: Timestamp) {
        let s = self.auth.server.is_none() || self.auth.server_done;
        let c = self.auth.client.is_none() || self.auth.client_done;
        if s && c && self.phase == Phase::Authenticate {
            self.enter_network(now);
        }
    }

    fn enter_network(&mut self, now: Timestamp) {
        self.phase = Phase::Network;
        let mut any = false;
        for (on, cp) in [
            (self.config.ipcp, Cp::Ipcp),
            (self.config.ipv6cp, Cp::Ipv6cp),
        ] {
            if on {
                any = true;
                self.run(now, cp, FsmEvent::Open, &Ctx::default());
                self.run(now, cp, FsmEvent::Up, &Ctx::default());
            }
        }
        if !any {
            self.close_link(now, DownReason::NoNetworkProtocols);
        }
    }

    fn verify(&self, name: &[u8], check: impl FnOnce(&[u8]) -> bool) -> bool {
        match self.credentials.as_ref().and_then(|c| c.secret(name)) {
            Some(secret) => check(&secret),
            None => false,
        }
    }

    fn rx_pap(&mut self, now: Timestamp, p: &Packet<'_>) -> Result<(), PppError> {
        match Pap::parse(p.code, p.data)? {
            Pap::Request { peer_id, password } => {
                if self.auth.server != Some(AuthProtocol::Pap) {
                    return Err(PppError::NotUp);
                }
                let ok = self.verify(peer_id, |s| ct_eq(s, password));
                let reply = if ok {
                    Pap::Ack { message: b"" }
                } else {
                    Pap::Nak {
                        message: b"authentication failed",
                    }
                };
                self.send(proto::PAP, reply.code(), p.identifier, &reply.emit_body());
                if ok && !self.auth.server_done {
                    self.auth.server_done = true;
                    self.auth.server_deadline = None;
                    self.events.push_back(Event::AuthSuccess {
                        peer_name: peer_id.to_vec(),
                    });
                    self.check_auth_done(now);
                } else if !ok {
                    self.events.push_back(Event::AuthFailure {
                        peer_name: peer_id.to_vec(),
                    });
                    self.close_link(now, DownReason::AuthFailed);
                }
            }
            Pap::Ack { .. } => {
                if self.auth.client != Some(AuthProtocol::Pap)
                    || self.auth.client_done
                    || p.identifier != self.auth.pap_id
                {
                    return Err(PppError::BadBody);
                }
                self.auth.client_done = true;
                self.auth.client_deadline = None;
                self.events.push_back(Event::Authenticated);
                self.check_auth_done(now);
            }
            Pap::Nak { .. } => {
                if self.auth.client != Some(AuthProtocol::Pap) || p.identifier != self.auth.pap_id {
                    return Err(PppError::BadBody);
                }
                self.events.push_back(Event::AuthRejected);
                self.close_link(now, DownReason::AuthFailed);
            }
        }
        Ok(())
    }

    fn rx_chap(&mut self, now: Timestamp, p: &Packet<'_>) -> Result<(), PppError> {
        let is_chap = |a: Option<AuthProtocol>| {
            matches!(a, Some(AuthProtocol::ChapMd5 | AuthProtocol::MsChapV2))
        };
        match Chap::parse(p.code, p.data)? {
            Chap::Challenge { value, .. } => {
                if !is_chap(self.auth.client) {
                    return Err(PppError::NotUp);
                }
                let Some((user, secret)) = self.config.user.clone() else {
                    return Err(PppError::NotUp);
                };
                let cached = match &self.auth.last_response {
                    Some((id, ch, r)) if *id == p.identifier && ch.as_slice() == value => {
                        Some(r.clone())
                    }
                    _ => None,
                };
                let resp: Vec<u8> = if let Some(r) = cached {
                    r
                } else if self.auth.client == Some(AuthProtocol::MsChapV2) {
                    // RFC 2759 §4: PeerChallenge ‖ 8 reserved ‖ NT-Response ‖ Flags.
                    let auth_ch: [u8; 16] = value.try_into().map_err(|_| PppError::BadBody)?;
                    let mut peer_ch = [0u8; 16];
                    self.rng.fill_bytes(&mut peer_ch);
                    let pw = String::from_utf8_lossy(&secret);
                    let nt = mschapv2::nt_response(&auth_ch, &peer_ch, &user, &pw);
                    self.auth.ms_expected = Some(mschapv2::authenticator_response(
                        &pw, &nt, &peer_ch, &auth_ch, &user,
                    ));
                    let mut v = peer_ch.to_vec();
                    v.extend_from_slice(&[0; 8]);
                    v.extend_from_slice(&nt);
                    v.push(0);
                    v
                } else {
                    packet::chap_md5_response(p.identifier, &secret, value).to_vec()
                };
                self.auth.last_response = Some((p.identifier, value.to_vec(), resp.clone()));
                let body = Chap::Response {
                    value: &resp,
                    name: &user,
                }
                .emit_body();
                self.send(proto::CHAP, 2, p.identifier, &body);
                if !self.auth.client_done {
                    // A lost Success/Failure is recovered by repeating the Response: the
                    // authenticator must answer it again with the same code (RFC 1994 §4.2).
                    self.auth.client_deadline = Some(now.plus_micros(self.config.fsm.restart_us));
                }
            }
            Chap::Response { value, name } => {
                if !is_chap(self.auth.server) || p.identifier != self.auth.chal_id {
                    return Err(PppError::BadBody);
                }
                let (id, ch) = (self.auth.chal_id, self.auth.challenge.clone());
                let (verdict, success, failure) =
                    if self.auth.server == Some(AuthProtocol::MsChapV2) {
                        let (ok, msg) = self.verify_mschapv2(name, &ch, value);
                        let hex: String = ch.iter().map(|b| format!("{b:02X}")).collect();
                        // RFC 2759 §6: E=691 authentication failure, no retry.
                        let fail = format!("E=691 R=0 C={hex} V=3 M=Access denied");
                        (ok, msg, fail.into_bytes())
                    } else {
                        let ok = self.verify(name, |s| {
                            ct_eq(&packet::chap_md5_response(id, s, &ch), value)
                        });
                        (ok, b"Access granted".to_vec(), b"Access denied".to_vec())
                    };
                // Repeated Responses to the current Identifier get the same answer (RFC 1994 §4.2).
                let ok = self.auth.chal_result.unwrap_or(verdict);
                let first = self.auth.chal_result.is_none();
                self.auth.chal_result = Some(ok);
                let reply = if ok {
                    Chap::Success { message: &success }
                } else {
                    Chap::Failure { message: &failure }
                };
                self.send(proto::CHAP, reply.code(), p.identifier, &reply.emit_body());
                if first && ok {
                    self.auth.server_done = true;
                    self.auth.server_deadline = None;
                    self.events.push_back(Event::AuthSuccess {
                        peer_name: name.to_vec(),
                    });
                    self.check_auth_done(now);
                } else if first {
                    self.events.push_back(Event::AuthFailure {
                        peer_name: name.to_vec(),
                    });
                    self.close_link(now, DownReason::AuthFailed);
                }
            }
            Chap::Success { message } => {
                if !is_chap(self.auth.client) || self.auth.client_done {
                    return Err(PppError::BadBody);
                }
                if self.auth.client == Some(AuthProtocol::MsChapV2) {
                    // The peer MUST verify the authenticator response (RFC 2759 §5).
                    let good = self
                        .auth
                        .ms_expected
                        .as_ref()
                        .is_some_and(|e| message.starts_with(e.as_bytes()));
                    if !good {
                        self.events.push_back(Event::AuthRejected);
                        self.close_link(now, DownReason::AuthFailed);
                        return Ok(());
                    }
                }
                self.auth.client_done = true;
                self.auth.client_deadline = None;
                self.events.push_back(Event::Authenticated);
                self.check_auth_done(now);
            }
            Chap::Failure { .. } => {
                if !is_chap(self.auth.client) {
                    return Err(PppError::BadBody);
                }
                self.events.push_back(Event::AuthRejected);
                self.close_link(now, DownReason::AuthFailed);
            }
        }
        Ok(())
    }

    /// Check an MS-CHAPv2 Response value; on success also the Success message
    /// (`S=<authenticator response> M=...`, RFC 2759 §5).
    fn verify_mschapv2(&self, name: &[u8], challenge: &[u8], value: &[u8]) -> (bool, Vec<u8>) {
        let (Ok(auth_ch), Some(peer_ch), Some(nt)) = (
            <[u8; 16]>::try_from(challenge),
            value.get(..16).and_then(|v| <[u8; 16]>::try_from(v).ok()),
            value.get(24..48).and_then(|v| <[u8; 24]>::try_from(v).ok()),
        ) else {
            return (false, Vec::new());
        };
        if value.len() != 49 {
            return (false, Vec::new());
        }
        let Some(secret) = self.credentials.as_ref().and_then(|c| c.secret(name)) else {
            return (false, Vec::new());
        };
        let pw = String::from_utf8_lossy(&secret);
        let expected = mschapv2::nt_response(&auth_ch, &peer_ch, name, &pw);
        if !ct_eq(&expected, &nt) {
            return (false, Vec::new());
        }
        let s = mschapv2::authenticator_response(&pw, &nt, &peer_ch, &auth_ch, name);
        (true, format!("{s} M=Access granted").into_bytes())
    }

    // ---------------------------------------------------------------- keepalive

    fn echo_tick(&mut self, now: Timestamp) {
        let Some(iv) = self.config.echo_interval_us else {
            self.echo_deadline = None;
            return;
        };
        if self.lcp.fsm.state != State::Opened {
            self.echo_deadline = None;
            return;
        }
        if self.echo_outstanding >= self.config.echo_failure {
            self.echo_deadline = None;
            self.close_link(now, DownReason::EchoTimeout);
            return;
        }
        self.echo_outstanding += 1;
        self.echo_id = self.echo_id.wrapping_add(1);
        let magic = self.lcp_acked.magic.unwrap_or(0).to_be_bytes();
        self.send(proto::LCP, code::ECHO_REQ, self.echo_id, &magic);
        self.echo_deadline = Some(now.plus_micros(iv));
    }
}

fn random_iid(rng: &mut StdRng) -> u64 {
    loop {
        // Locally administered: u bit clear (docs/reference/rfc.md §4.11).
        let v: u64 = rng.random::<u64>() & !IID_U_BIT;
        if v != 0 {
            return v;
        }
    }
}

/// Length-and-content comparison without early exit on the first differing octet.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
