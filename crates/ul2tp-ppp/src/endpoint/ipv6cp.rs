//! IPv6CP options (RFC 5072, docs/reference/rfc.md §4.11): interface identifiers.

use rand::rngs::StdRng;
use rand::Rng;

use super::cp::Cp;
use super::Endpoint;
use crate::packet::{self, push_option};

const IID_U_BIT: u64 = 0x0200_0000_0000_0000;

pub(super) fn random_iid(rng: &mut StdRng) -> u64 {
    loop {
        // Locally administered: u bit clear (docs/reference/rfc.md §4.11).
        let v: u64 = rng.random::<u64>() & !IID_U_BIT;
        if v != 0 {
            return v;
        }
    }
}

impl Endpoint {
    /// RFC 5072 §4.1 rules (docs/reference/rfc.md §4.11).
    pub(super) fn eval_ipv6cp(&mut self, opts: &[packet::ConfOption<'_>]) -> (bool, u8, Vec<u8>) {
        let (mut ack, mut nak, mut rej) = (Vec::new(), Vec::new(), Vec::new());
        let mut peer = None;
        let ours = self.iid_want.unwrap_or(0);
        for o in opts {
            push_option(&mut ack, o.kind, o.data);
            match (o.kind, o.u64()) {
                (1, Some(r)) => {
                    let assigned = self
                        .config
                        .peer_interface_id
                        .filter(|&a| a != 0 && a != ours);
                    if let Some(a) = assigned.filter(|&a| a != r) {
                        // The identifier we assign (RFC 5072 §4.1: Nak with the value to use).
                        push_option(&mut nak, 1, &a.to_be_bytes());
                    } else if assigned.is_some() {
                        peer = Some(r);
                    } else if r == 0 && ours == 0 {
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

    pub(super) fn apply_ipv6cp_nak(&mut self, opts: &[packet::ConfOption<'_>], reject: bool) {
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
}
