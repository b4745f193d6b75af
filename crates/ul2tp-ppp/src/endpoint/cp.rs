//! The driver shared by the three control protocols (LCP, IPCP, IPv6CP): each one's RFC 1661
//! automaton ([`crate::fsm`]) with its request bookkeeping, the automaton's actions
//! (this-layer-up/down/started/finished, sending requests, acks, terminates and rejects), the
//! handling of received control packets, and Configure-Request building and evaluation.

use std::net::Ipv4Addr;

use ul2tp_wire::ppp::proto;

use super::ipv6cp::random_iid;
use super::{Auth, Endpoint, Phase};
use crate::fsm::{Action, Event as FsmEvent, Fsm, FsmConfig, State};
use crate::packet::{code, emit_packet, frame, parse_options, push_option, Packet, PppError};
use crate::{DownReason, Event, Timestamp};

/// One of the control protocols run by an RFC 1661 automaton.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cp {
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
pub(super) struct CpState {
    pub(super) fsm: Fsm,
    next_id: u8,
    req_id: u8,
    last_req: Vec<u8>,
}

impl CpState {
    pub(super) fn new(c: FsmConfig) -> CpState {
        CpState {
            fsm: Fsm::new(c),
            next_id: 1,
            req_id: 0,
            last_req: Vec::new(),
        }
    }
    pub(super) fn take_id(&mut self) -> u8 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }
}

/// Data an action needs from the received packet.
#[derive(Default)]
pub(super) struct Ctx {
    reply: Vec<u8>,
    /// The RXR event came from an Echo-Request (only those get ser; RFC 1661 §5.8).
    echo_request: bool,
    id: u8,
    data: Vec<u8>,
}

impl Endpoint {
    pub(super) fn cp_mut(&mut self, cp: Cp) -> &mut CpState {
        match cp {
            Cp::Lcp => &mut self.lcp,
            Cp::Ipcp => &mut self.ipcp,
            Cp::Ipv6cp => &mut self.ipv6cp,
        }
    }

    /// Feed `event` to one automaton and perform its actions.
    pub(super) fn run(&mut self, now: Timestamp, cp: Cp, event: FsmEvent, ctx: &Ctx) {
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

    pub(super) fn rx_cp(&mut self, now: Timestamp, cp: Cp, info: &[u8]) -> Result<(), PppError> {
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
    pub(super) fn finish_eval(
        &self,
        cp: Cp,
        ack: Vec<u8>,
        nak: Vec<u8>,
        rej: Vec<u8>,
    ) -> (bool, u8, Vec<u8>) {
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
}
