//! IPCP options (RFC 1332, RFC 1877 DNS and NBNS; docs/reference/rfc.md §4.10): the address and DNS servers we request, the address
//! we assign the peer, and how Naks and Rejects change our request.

use std::net::Ipv4Addr;

use super::cp::Cp;
use super::Endpoint;
use crate::packet::{self, push_option};

/// The IPCP options we request (and, once acked, hold).
#[derive(Debug, Clone, Default)]
pub(super) struct IpcpWant {
    pub(super) addr: Option<Ipv4Addr>,
    pub(super) dns: [Option<Ipv4Addr>; 2],
}

impl Endpoint {
    pub(super) fn reset_ipcp_want(&mut self) {
        let ask = self.config.request_dns.then_some(Ipv4Addr::UNSPECIFIED);
        self.ipcp_want = IpcpWant {
            addr: Some(self.config.local_ip.unwrap_or(Ipv4Addr::UNSPECIFIED)),
            dns: [ask, ask],
        };
    }

    pub(super) fn eval_ipcp(&mut self, opts: &[packet::ConfOption<'_>]) -> (bool, u8, Vec<u8>) {
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
                (129..=132, Some(a)) => {
                    // 129 / 131: primary / secondary DNS, 130 / 132: NBNS (RFC 1877).
                    let i = usize::from(o.kind >= 131);
                    let served = if o.kind % 2 == 1 {
                        self.config.dns[i]
                    } else {
                        self.config.nbns[i]
                    };
                    match served {
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

    pub(super) fn apply_ipcp_nak(&mut self, opts: &[packet::ConfOption<'_>], reject: bool) {
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
}
