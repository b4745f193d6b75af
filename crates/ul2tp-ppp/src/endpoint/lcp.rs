//! LCP options (docs/reference/rfc.md §4.6): what we request (MRU, ACCM, authentication,
//! magic number, PFC, ACFC), how we answer the peer's request and its Naks and Rejects, and the
//! LCP echo keepalive.

use rand::RngCore;
use ul2tp_wire::ppp::proto;

use super::cp::Cp;
use super::Endpoint;
use crate::fsm::State;
use crate::packet::{self, code, push_option};
use crate::{AuthProtocol, DownReason, Timestamp};

/// The LCP options we request (and, once acked, hold).
#[derive(Debug, Clone, Default)]
pub(super) struct LcpWant {
    pub(super) mru: Option<u16>,
    pub(super) accm: Option<u32>,
    pub(super) auth: Option<AuthProtocol>,
    auth_tried: Vec<AuthProtocol>,
    pub(super) magic: Option<u32>,
    pub(super) pfc: bool,
    pub(super) acfc: bool,
}

/// The LCP options of the peer's request we acknowledged.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct LcpPeer {
    pub(super) mru: Option<u16>,
    pub(super) auth: Option<AuthProtocol>,
    pub(super) magic: Option<u32>,
}

impl Endpoint {
    pub(super) fn reset_lcp_want(&mut self) {
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

    fn random_magic(&mut self) -> u32 {
        loop {
            let m = self.rng.next_u32();
            if m != 0 {
                return m;
            }
        }
    }

    pub(super) fn eval_lcp(&mut self, opts: &[packet::ConfOption<'_>]) -> (bool, u8, Vec<u8>) {
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

    pub(super) fn apply_lcp_nak(&mut self, opts: &[packet::ConfOption<'_>], reject: bool) {
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

    pub(super) fn echo_tick(&mut self, now: Timestamp) {
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
