//! DHCPv6 prefix delegation on a PPP link (RFC 8415, messages from `ul2tp_ppp::dhcp6`), run
//! by `ppp_ipv6.rs` once IPv6 is up on the link.
//!
//! - LNS ([`PdServer`], `ppp_ipv6_pd_pool`): the delegating router. A Solicit with an IA_PD
//!   gets an Advertise (a Reply with Rapid Commit when the client asked for it) holding one
//!   prefix of the pool's size (`ppp_ipv6_pd_length`, default /56), leased for the session;
//!   Request, Renew and Rebind get a Reply with the same prefix; Release returns it. The
//!   prefix is routed through `pppN` via the client's link-local address. An exhausted pool
//!   answers with Status NoPrefixAvail inside the IA_PD.
//! - LAC ([`PdClient`], `ppp_ipv6_pd`): the requesting router. It solicits with Rapid Commit
//!   (up to [`SOLICITS`] times, 1 s, 2 s, 4 s apart), requests what an Advertise offers, and
//!   logs and keeps the delegated prefix (it assigns it nowhere). It does not renew: the
//!   lifetimes we hand out (7 / 30 days) outlast sessions.
//!
//! DUIDs are DUID-EN (RFC 8415 §11.3) with the example enterprise number 32473 (RFC 5612) and
//! the link's interface identifier: a PPP link has no link-layer address for a DUID-LL.

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use tokio::time::Instant;
use ul2tp_ppp::dhcp6::{self, kind, opt, IaPd, IaPrefix, Message};
use ul2tp_ppp::nd;
use ul2tp_sys::rtnl::{add_route, delete_route, Route};

use crate::ppp_ipv6::{Lease, SharedPool};

/// Solicits the client sends before giving up.
pub(crate) const SOLICITS: u32 = 4;
/// Lifetimes of delegated prefixes (as for the advertised /64s).
const PREFERRED: u32 = 604_800;
const VALID: u32 = 2_592_000;

/// Our DUID: DUID-EN, enterprise 32473, the interface identifier.
fn duid(iid: u64) -> Vec<u8> {
    let mut d = vec![0, 2, 0, 0, 0x7e, 0xd9];
    d.extend_from_slice(&iid.to_be_bytes());
    d
}

/// The delegating router of one link.
#[derive(Debug)]
pub(crate) struct PdServer {
    pool: SharedPool,
    lease: Option<Lease>,
    /// (device, gateway) of the route installed for the lease.
    route: Option<(String, Ipv6Addr)>,
}

impl PdServer {
    pub(crate) fn new(pool: SharedPool) -> PdServer {
        PdServer {
            pool,
            lease: None,
            route: None,
        }
    }

    /// The delegated prefix and its length, if leased.
    pub(crate) fn delegated(&self) -> Option<(Ipv6Addr, u8)> {
        let unit = self.pool.lock().map(|p| p.unit()).unwrap_or(64);
        self.lease.as_ref().map(|l| (l.prefix, unit))
    }

    /// A message from the client at `client`; the delegated prefix is routed via the
    /// peer's link-local address `gateway`. Returns the answer packet.
    pub(crate) fn handle(
        &mut self,
        m: &Message,
        client: Ipv6Addr,
        gateway: Ipv6Addr,
        local_iid: u64,
        dev: Option<&str>,
        name: &str,
    ) -> Option<Vec<u8>> {
        let ours = duid(local_iid);
        let clientid = m.option(opt::CLIENTID)?.to_vec();
        if m.option(opt::SERVERID)
            .is_some_and(|s| s != ours.as_slice())
        {
            return None; // for another server
        }
        let iaid = m
            .option(opt::IA_PD)
            .and_then(IaPd::decode)
            .map(|ia| ia.iaid);
        let answer = match m.kind {
            kind::SOLICIT | kind::REQUEST | kind::RENEW | kind::REBIND => {
                let iaid = iaid?;
                if self.lease.is_none() {
                    self.lease = Lease::take(&self.pool);
                    if self.lease.is_none() {
                        tracing::warn!("{name}: delegated prefix pool exhausted");
                    }
                }
                self.install_route(gateway, dev, name);
                let ia = match self.delegated() {
                    Some((prefix, len)) => IaPd {
                        iaid,
                        t1: PREFERRED / 2,
                        t2: PREFERRED / 5 * 4,
                        prefixes: vec![IaPrefix {
                            preferred: PREFERRED,
                            valid: VALID,
                            len,
                            prefix,
                        }],
                        status: None,
                    },
                    None => IaPd {
                        iaid,
                        status: Some(dhcp6::NO_PREFIX_AVAIL),
                        ..IaPd::default()
                    },
                };
                let rapid = m.kind == kind::SOLICIT && m.option(opt::RAPID_COMMIT).is_some();
                let mut options = vec![(opt::CLIENTID, clientid), (opt::SERVERID, ours)];
                let k = if m.kind != kind::SOLICIT {
                    kind::REPLY
                } else if rapid && ia.status.is_none() {
                    options.push((opt::RAPID_COMMIT, Vec::new()));
                    kind::REPLY
                } else {
                    kind::ADVERTISE
                };
                options.push((opt::IA_PD, ia.encode()));
                Message {
                    kind: k,
                    xid: m.xid,
                    options,
                }
            }
            kind::RELEASE => {
                self.release(name);
                Message {
                    kind: kind::REPLY,
                    xid: m.xid,
                    options: vec![
                        (opt::CLIENTID, clientid),
                        (opt::SERVERID, ours),
                        (opt::STATUS_CODE, vec![0, 0]),
                    ],
                }
            }
            _ => return None,
        };
        Some(dhcp6::udp_packet(
            nd::link_local(local_iid),
            client,
            dhcp6::SERVER_PORT,
            dhcp6::CLIENT_PORT,
            &answer.encode(),
        ))
    }

    fn install_route(&mut self, gw: Ipv6Addr, dev: Option<&str>, name: &str) {
        let (Some((prefix, len)), Some(dev), None) = (self.delegated(), dev, &self.route) else {
            return;
        };
        let r = Route {
            dst: IpAddr::V6(prefix),
            prefix_len: len,
            gateway: Some(IpAddr::V6(gw)),
        };
        match add_route(dev, r) {
            Ok(()) => tracing::info!("{name}: delegated prefix {prefix}/{len} via {gw} dev {dev}"),
            Err(e) => tracing::warn!("{name}: route {prefix}/{len} via {gw} dev {dev}: {e}"),
        }
        self.route = Some((dev.to_string(), gw));
    }

    /// Take the route away and return the prefix (Release, IPv6 down).
    pub(crate) fn release(&mut self, name: &str) {
        if let (Some((prefix, len)), Some((dev, gw))) = (self.delegated(), self.route.take()) {
            let r = Route {
                dst: IpAddr::V6(prefix),
                prefix_len: len,
                gateway: Some(IpAddr::V6(gw)),
            };
            if let Err(e) = delete_route(&dev, r) {
                tracing::debug!("{name}: route {prefix}/{len}: {e}");
            }
        }
        self.lease = None;
    }

    /// The device went away (and its routes with it).
    pub(crate) fn detach(&mut self) {
        self.route = None;
    }
}

/// The requesting router of one link.
#[derive(Debug, Default)]
pub(crate) struct PdClient {
    xid: [u8; 3],
    tries: u32,
    timer: Option<Instant>,
    got: Option<(Ipv6Addr, u8)>,
}

impl PdClient {
    /// Start soliciting now.
    pub(crate) fn start(&mut self, now: Instant) {
        if self.got.is_none() {
            let seed = crate::entropy::os_seed().unwrap_or_default();
            self.xid = [seed[0], seed[1], seed[2]];
            self.tries = 0;
            self.timer = Some(now);
        }
    }

    /// Stop (IPv6 down).
    pub(crate) fn stop(&mut self) {
        self.timer = None;
        self.got = None;
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.timer
    }

    /// The delegated prefix.
    pub(crate) fn delegated(&self) -> Option<(Ipv6Addr, u8)> {
        self.got
    }

    fn packet(&self, local_iid: u64, m: Message) -> Vec<u8> {
        dhcp6::udp_packet(
            nd::link_local(local_iid),
            dhcp6::ALL_SERVERS,
            dhcp6::CLIENT_PORT,
            dhcp6::SERVER_PORT,
            &m.encode(),
        )
    }

    fn ia_request(prefixes: Vec<IaPrefix>) -> Vec<u8> {
        IaPd {
            iaid: 1,
            prefixes,
            ..IaPd::default()
        }
        .encode()
    }

    /// Timers due at `now`: a (re)sent Solicit.
    pub(crate) fn on_timer(&mut self, now: Instant, local_iid: u64) -> Option<Vec<u8>> {
        if self.timer.is_none_or(|t| now < t) {
            return None;
        }
        if self.tries >= SOLICITS {
            self.timer = None;
            return None;
        }
        let elapsed = (self.tries.min(6) * 100).to_be_bytes(); // centiseconds, roughly
        self.tries += 1;
        self.timer = Some(now + Duration::from_secs(1 << (self.tries - 1).min(4)));
        let m = Message {
            kind: kind::SOLICIT,
            xid: self.xid,
            options: vec![
                (opt::CLIENTID, duid(local_iid)),
                (opt::ELAPSED_TIME, elapsed[2..].to_vec()),
                (opt::RAPID_COMMIT, Vec::new()),
                (opt::IA_PD, Self::ia_request(Vec::new())),
            ],
        };
        Some(self.packet(local_iid, m))
    }

    /// A message from a server: the Request to send, if any.
    pub(crate) fn handle(&mut self, m: &Message, local_iid: u64, name: &str) -> Option<Vec<u8>> {
        if m.xid != self.xid || m.option(opt::CLIENTID) != Some(duid(local_iid).as_slice()) {
            return None;
        }
        let server = m.option(opt::SERVERID)?.to_vec();
        let ia = m.option(opt::IA_PD).and_then(IaPd::decode)?;
        let offered: Vec<IaPrefix> = ia
            .prefixes
            .into_iter()
            .filter(|p| p.valid > 0 && p.preferred <= p.valid)
            .collect();
        if ia.status.is_some_and(|s| s != 0) || offered.is_empty() {
            tracing::warn!(
                "{name}: DHCPv6 server offers no prefix (status {:?})",
                ia.status
            );
            return None;
        }
        match m.kind {
            kind::ADVERTISE if self.got.is_none() => {
                let r = Message {
                    kind: kind::REQUEST,
                    xid: self.xid,
                    options: vec![
                        (opt::CLIENTID, duid(local_iid)),
                        (opt::SERVERID, server),
                        (opt::ELAPSED_TIME, vec![0, 0]),
                        (opt::IA_PD, Self::ia_request(offered)),
                    ],
                };
                Some(self.packet(local_iid, r))
            }
            kind::REPLY => {
                let p = offered[0];
                if self.got != Some((p.prefix, p.len)) {
                    tracing::info!("{name}: delegated prefix {}/{}", p.prefix, p.len);
                }
                self.got = Some((p.prefix, p.len));
                self.timer = None;
                None
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ppp_ipv6::PrefixPool;
    use std::sync::{Arc, Mutex};

    fn decode(p: &[u8]) -> Message {
        let (_, _, _, _, payload) = dhcp6::parse_udp(p).expect("valid UDP");
        Message::decode(payload).expect("valid DHCPv6")
    }

    /// Client and server talk to each other (no devices: no routes): Solicit with Rapid
    /// Commit, Reply with a /56 of the pool; without Rapid Commit, Advertise, Request, Reply;
    /// Release frees it.
    #[test]
    fn client_and_server_agree_on_a_prefix() {
        let pool: SharedPool = Arc::new(Mutex::new(
            PrefixPool::parse_delegation("2001:db8:f00::/48", 56).unwrap(),
        ));
        let mut server = PdServer::new(pool.clone());
        let mut client = PdClient::default();
        let now = Instant::now();
        client.start(now);
        let solicit = client.on_timer(now, 2).expect("solicit");
        let s = decode(&solicit);
        assert_eq!(s.kind, kind::SOLICIT);
        let reply = server
            .handle(&s, nd::link_local(2), nd::link_local(2), 1, None, "t")
            .expect("answer");
        let r = decode(&reply);
        assert_eq!(r.kind, kind::REPLY, "rapid commit");
        assert!(client.handle(&r, 2, "t").is_none());
        let want: Ipv6Addr = "2001:db8:f00::".parse().unwrap();
        assert_eq!(client.delegated(), Some((want, 56)));
        assert_eq!(client.deadline(), None);
        assert_eq!(pool.lock().unwrap().in_use(), 1);

        // Without Rapid Commit: Advertise, then the client's Request gets the same prefix.
        let mut s2 = s.clone();
        s2.options.retain(|(c, _)| *c != opt::RAPID_COMMIT);
        let adv = decode(
            &server
                .handle(&s2, nd::link_local(2), nd::link_local(2), 1, None, "t")
                .unwrap(),
        );
        assert_eq!(adv.kind, kind::ADVERTISE);
        let mut fresh = PdClient::default();
        fresh.start(now);
        fresh.xid = s.xid;
        let req = decode(&fresh.handle(&adv, 2, "t").expect("request"));
        assert_eq!(req.kind, kind::REQUEST);
        let r2 = decode(
            &server
                .handle(&req, nd::link_local(2), nd::link_local(2), 1, None, "t")
                .unwrap(),
        );
        assert_eq!(r2.kind, kind::REPLY);
        fresh.handle(&r2, 2, "t");
        assert_eq!(fresh.delegated(), Some((want, 56)));
        assert_eq!(pool.lock().unwrap().in_use(), 1, "one lease per link");

        // A message for another server is ignored; Release frees the prefix.
        let mut other = req.clone();
        other.options.retain(|(c, _)| *c != opt::SERVERID);
        other.options.push((opt::SERVERID, duid(99)));
        assert!(server
            .handle(&other, nd::link_local(2), nd::link_local(2), 1, None, "t")
            .is_none());
        let mut rel = req.clone();
        rel.kind = kind::RELEASE;
        let ack = decode(
            &server
                .handle(&rel, nd::link_local(2), nd::link_local(2), 1, None, "t")
                .unwrap(),
        );
        assert_eq!(ack.option(opt::STATUS_CODE), Some(&[0u8, 0][..]));
        assert_eq!(pool.lock().unwrap().in_use(), 0);
    }

    #[test]
    fn exhausted_pool_says_no_prefix_and_client_retries_then_stops() {
        let pool: SharedPool = Arc::new(Mutex::new(
            PrefixPool::parse_delegation("2001:db8:f00::/55", 56).unwrap(),
        ));
        let _a = Lease::take(&pool);
        let _b = Lease::take(&pool);
        let mut server = PdServer::new(pool);
        let mut client = PdClient::default();
        let mut now = Instant::now();
        client.start(now);
        let s = decode(&client.on_timer(now, 2).unwrap());
        let adv = decode(
            &server
                .handle(&s, nd::link_local(2), nd::link_local(2), 1, None, "t")
                .unwrap(),
        );
        assert_eq!(
            adv.kind,
            kind::ADVERTISE,
            "no Rapid Commit without a prefix"
        );
        let ia = IaPd::decode(adv.option(opt::IA_PD).unwrap()).unwrap();
        assert_eq!(ia.status, Some(dhcp6::NO_PREFIX_AVAIL));
        assert!(client.handle(&adv, 2, "t").is_none());
        let mut sent = 1;
        while let Some(t) = client.deadline() {
            now = t;
            if client.on_timer(now, 2).is_some() {
                sent += 1;
            }
        }
        assert_eq!(sent, SOLICITS);
    }
}
