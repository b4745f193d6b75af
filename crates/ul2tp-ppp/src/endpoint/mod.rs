//! The [`Endpoint`] of one PPP session: its public API (lifecycle, input, `poll_*`,
//! introspection), the phases of docs/reference/rfc.md §4.2, and sending frames.
//!
//! The parts, one per file: `cp`, the driver shared by LCP, IPCP and IPv6CP (the RFC 1661
//! automaton's actions and received packets); `lcp`, `ipcp` and `ipv6cp`, the option logic of
//! each protocol (and the LCP echo keepalive); `auth`, the authentication phase (PAP,
//! CHAP-MD5, MS-CHAPv2, either direction).

mod auth;
mod cp;
mod ipcp;
mod ipv6cp;
mod lcp;

use std::collections::VecDeque;
use std::fmt;
use std::net::Ipv4Addr;

use rand::rngs::StdRng;
use rand::SeedableRng;
use ul2tp_wire::ppp::proto;

use crate::fsm::{Event as FsmEvent, State};
use crate::packet::{self, code, emit_packet, frame, Packet, PppError};
use crate::{Config, Credentials, DownReason, Event, IpPacket, Timestamp};
use auth::Auth;
use cp::{Cp, CpState, Ctx};
use ipcp::IpcpWant;
use lcp::{LcpPeer, LcpWant};

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

    /// The address to assign to the peer from now on (e.g. RADIUS Framed-IP-Address, given
    /// before the verdict that starts IPCP).
    pub fn set_peer_ip(&mut self, ip: Option<Ipv4Addr>) {
        self.config.peer_ip = ip;
    }

    /// The IPv6CP interface identifier the peer must use from now on (e.g. RADIUS
    /// Framed-Interface-Id, given before IPv6CP starts); `None`: the peer picks.
    pub fn set_peer_interface_id(&mut self, iid: Option<u64>) {
        self.config.peer_interface_id = iid;
    }

    /// The DNS servers to hand to the peer from now on (RFC 1877).
    pub fn set_dns(&mut self, dns: [Option<Ipv4Addr>; 2]) {
        self.config.dns = dns;
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

    fn enter_network(&mut self, now: Timestamp) {
        if self.config.ipcp && self.config.require_peer_ip && self.config.peer_ip.is_none() {
            self.close_link(now, DownReason::NoAddress);
            return;
        }
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
}
