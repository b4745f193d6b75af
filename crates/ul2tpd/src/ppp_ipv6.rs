//! IPv6 for PPP subscribers: what the PPP endpoint task (`pppd.rs`) does once IPv6CP is up.
//!
//! Both sides give their pppN the link-local address `fe80::<interface identifier>/64` that
//! IPv6CP negotiated (RFC 5072 §5). Then, on the link, the Neighbor Discovery of RFC 4861 with
//! the messages of `ul2tp_ppp::nd`:
//! - LNS ([`Role::Router`]): the session leases a /64 from `ppp_ipv6_pool` ([`PrefixPool`]),
//!   installs a route for it through pppN and advertises it in Router Advertisements with the
//!   on-link and autonomous flags (SLAAC, as accel-ppp's `ipv6_nd` module): one as soon as the
//!   link is up, [`INITIAL_ADVERTS`] at [`INITIAL_INTERVAL`], then every [`ADVERT_INTERVAL`],
//!   and one in answer to every Router Solicitation. The /64 returns to the pool when the
//!   session (the task) goes.
//! - LAC ([`Role::Host`]): sends Router Solicitations (up to [`SOLICITATIONS`], every
//!   [`SOLICIT_INTERVAL`]) until an advertisement arrives, forms `prefix::<our identifier>/64`
//!   from each /64 advertised with the autonomous flag (RFC 4862 §5.5.3) and adds it to pppN,
//!   and, with `ppp_ipv6_default_route`, a default route via the router's link-local address.
//!
//! Solicitations and advertisements are consumed here (not passed to pppN), other IPv6 packets
//! go through. Invalid ones are dropped and logged at debug. Prefix lifetimes are not aged:
//! the address and the route live as long as the link.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use ul2tp_ppp::nd::{self, NdMessage, PrefixInfo, RouterAdvert};
use ul2tp_sys::rtnl::{add_address, add_route, delete_address, delete_route, IfAddr, Route};
use ul2tp_sys::tap::Tun;

/// Unsolicited advertisements sent at [`INITIAL_INTERVAL`] after the first (RFC 4861 §6.2.4:
/// MAX_INITIAL_RTR_ADVERTISEMENTS).
pub(crate) const INITIAL_ADVERTS: u32 = 3;
/// Interval of the initial advertisements (MAX_INITIAL_RTR_ADVERT_INTERVAL).
pub(crate) const INITIAL_INTERVAL: Duration = Duration::from_secs(16);
/// Interval of later unsolicited advertisements (MaxRtrAdvInterval's default, RFC 4861 §6.2.1).
pub(crate) const ADVERT_INTERVAL: Duration = Duration::from_secs(600);
/// Router Solicitations sent before giving up (MAX_RTR_SOLICITATIONS).
pub(crate) const SOLICITATIONS: u32 = 3;
/// Interval between solicitations (RTR_SOLICITATION_INTERVAL).
pub(crate) const SOLICIT_INTERVAL: Duration = Duration::from_secs(4);
/// Router Lifetime we advertise (3 × MaxRtrAdvInterval).
const ROUTER_LIFETIME: u16 = 1800;
/// Least time between two advertisements (RFC 4861 §6.2.6 MIN_DELAY_BETWEEN_RAS): a
/// solicitation sooner after the last one is answered when it has passed.
pub(crate) const MIN_DELAY_BETWEEN_RAS: Duration = Duration::from_secs(3);
/// Lifetime of the DNS servers we advertise (RFC 8106 §5.1: at least MaxRtrAdvInterval;
/// 3 × MaxRtrAdvInterval, as the router lifetime).
const DNS_LIFETIME: u32 = 1800;
/// Prefix lifetimes we advertise (accel-ppp's and radvd's defaults: 30 days, 7 days).
const VALID_LIFETIME: u32 = 2_592_000;
const PREFERRED_LIFETIME: u32 = 604_800;

/// Before a new pppN goes up: no link-local address of the kernel's own making
/// (`addr_gen_mode` 1, "none"; for a TUN device it would make a random or stable-privacy
/// one), so that the link-local address is the one from IPv6CP only, as on pppd's ppp units.
/// Without IPv6 in the kernel there is nothing to do.
pub(crate) fn before_up(dev: &str) {
    let path = format!("/proc/sys/net/ipv6/conf/{dev}/addr_gen_mode");
    if let Err(e) = std::fs::write(&path, "1") {
        tracing::debug!("{dev}: {path}: {e}");
    }
}

/// The /64s of an IPv6 prefix (`ppp_ipv6_pool`, e.g. `2001:db8:100::/48`), one per session.
#[derive(Debug)]
pub struct PrefixPool {
    base: u128,
    len: u8,
    /// Length of each lease: 64 for link prefixes, e.g. 56 for delegated ones.
    unit: u8,
    used: BTreeSet<u64>,
    next: u64,
}

/// A pool shared by the sessions of a daemon.
pub type SharedPool = Arc<Mutex<PrefixPool>>;

impl PrefixPool {
    /// Parse `"PREFIX/LEN"` with LEN from 32 to 64 and no bits set past LEN.
    pub fn parse(text: &str) -> Result<PrefixPool, String> {
        Self::parse_units(text, 64)
    }

    /// Parse a pool of /`unit` prefixes (delegated prefixes, `ppp_ipv6_pd_pool`): LEN from
    /// `unit` − 32 up to `unit` − 1 (at least /16).
    pub fn parse_delegation(text: &str, unit: u8) -> Result<PrefixPool, String> {
        if !(16..=64).contains(&unit) {
            return Err(format!("delegated prefixes of /{unit}: must be /16 to /64"));
        }
        Self::parse_units(text, unit)
    }

    fn parse_units(text: &str, unit: u8) -> Result<PrefixPool, String> {
        let bad = || format!("{text:?} is not an IPv6 prefix PREFIX/LEN (e.g. 2001:db8:100::/48)");
        let (a, l) = text.split_once('/').ok_or_else(bad)?;
        let addr: Ipv6Addr = a.trim().parse().map_err(|_| bad())?;
        let len: u8 = l.trim().parse().map_err(|_| bad())?;
        let min = unit.saturating_sub(32).max(1);
        if unit == 64 && !(32..=64).contains(&len) {
            return Err(format!(
                "{text:?}: the length must be from /32 to /64 (each session gets a /64)"
            ));
        }
        if unit < 64 && !(min..unit).contains(&len) {
            return Err(format!(
                "{text:?}: the length must be from /{min} to /{} (each session gets a /{unit})",
                unit - 1
            ));
        }
        let base = u128::from(addr);
        if base & (u128::MAX >> len) != 0 {
            return Err(format!("{text:?} has bits set past /{len}"));
        }
        if addr.is_unicast_link_local() || addr.is_multicast() || addr.is_loopback() {
            return Err(format!("{text:?} is not a global or unique local prefix"));
        }
        Ok(PrefixPool {
            base,
            len,
            unit,
            used: BTreeSet::new(),
            next: 0,
        })
    }

    /// A pool of exactly one prefix, `prefix/len` (the bits past `len` cleared): a RADIUS
    /// Framed-IPv6-Prefix (`len` 64) or Delegated-IPv6-Prefix of one session.
    pub fn single(prefix: Ipv6Addr, len: u8) -> PrefixPool {
        let len = len.min(64);
        let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
        PrefixPool {
            base: u128::from(prefix) & mask,
            len,
            unit: len,
            used: BTreeSet::new(),
            next: 0,
        }
    }

    /// How many /64s the pool holds.
    pub fn size(&self) -> u64 {
        // unit − len ≤ 32: at most 2^32 entries.
        1u64 << (u32::from(self.unit) - u32::from(self.len))
    }

    /// Lease a free /64 (the prefix address), or `None` when all are in use.
    pub fn allocate(&mut self) -> Option<Ipv6Addr> {
        let size = self.size();
        if self.used.len() as u64 >= size {
            return None;
        }
        // Round robin from the last lease, so that a released /64 is not handed out again at
        // once (a late packet for the previous subscriber would reach the next one).
        let mut i = self.next % size;
        while self.used.contains(&i) {
            i = (i + 1) % size;
        }
        self.used.insert(i);
        self.next = (i + 1) % size;
        Some(self.prefix(i))
    }

    /// Return a leased /64.
    pub fn release(&mut self, prefix: Ipv6Addr) {
        let v = u128::from(prefix);
        if v & !(u128::MAX >> self.len) == self.base {
            let shift = 128 - u32::from(self.unit);
            self.used
                .remove(&(((v >> shift) as u64) & (self.size() - 1)));
        }
    }

    /// How many /64s are leased.
    pub fn in_use(&self) -> usize {
        self.used.len()
    }

    fn prefix(&self, i: u64) -> Ipv6Addr {
        Ipv6Addr::from(self.base | (u128::from(i) << (128 - u32::from(self.unit))))
    }

    /// The length of each lease.
    pub fn unit(&self) -> u8 {
        self.unit
    }

    /// What the pool is, whatever is leased: (prefix, length, length of each lease). Two
    /// pools of one spec are the same pool (`profile.rs` shares them).
    pub fn spec(&self) -> (u128, u8, u8) {
        (self.base, self.len, self.unit)
    }
}

/// The /64 of a link as the session's API replies show it (`ppp_ipv6_prefix`): written by
/// the endpoint task, read under the store's lock.
#[derive(Debug, Clone, Default)]
pub(crate) struct LinkPrefix(Arc<Mutex<Shown>>);

/// What `show session` shows of a link's IPv6: its /64 and the delegated prefix.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Shown {
    pub(crate) prefix: Option<Ipv6Addr>,
    pub(crate) delegated: Option<(Ipv6Addr, u8)>,
}

impl LinkPrefix {
    pub(crate) fn get(&self) -> Shown {
        self.0.lock().map(|g| *g).unwrap_or_default()
    }

    pub(crate) fn set(&self, p: Shown) {
        if let Ok(mut g) = self.0.lock() {
            *g = p;
        }
    }
}

/// A leased prefix, returned to its pool when dropped.
#[derive(Debug)]
pub(crate) struct Lease {
    pool: SharedPool,
    pub(crate) prefix: Ipv6Addr,
}

impl Lease {
    /// Lease the next free prefix of `pool`.
    pub(crate) fn take(pool: &SharedPool) -> Option<Lease> {
        let prefix = pool.lock().ok()?.allocate()?;
        Some(Lease {
            pool: pool.clone(),
            prefix,
        })
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Ok(mut p) = self.pool.lock() {
            p.release(self.prefix);
        }
    }
}

/// What a PPP client link (`ppp start` without addresses) does with IPv6 beyond SLAAC:
/// `[control] ppp_ipv6_default_route` and `ppp_ipv6_pd`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientV6 {
    /// Add a default route via the advertising router.
    pub default_route: bool,
    /// Ask for a delegated prefix with DHCPv6.
    pub prefix_delegation: bool,
}

/// Which side of the link we are.
#[derive(Debug, Clone)]
pub(crate) enum Role {
    /// LNS: advertise a /64 from the pool.
    Router(SharedPool),
    /// LAC: accept advertisements; add a default route when `default_route`.
    Host { default_route: bool },
    /// Link-local addresses only (a `ppp start` server without a pool).
    LinkLocal,
}

/// The IPv6 state of one PPP link.
#[derive(Debug)]
pub(crate) struct Ipv6Link {
    role: Role,
    /// (our, the peer's) interface identifiers once IPv6CP is up.
    iids: Option<(u64, u64)>,
    /// The device has its addresses (and the router its route).
    configured: bool,
    /// Its name, while configured.
    dev: Option<String>,
    lease: Option<Lease>,
    /// When to send the next advertisement / solicitation, and how many were sent.
    timer: Option<Instant>,
    sent: u32,
    /// Addresses formed from advertised prefixes (host).
    slaac: Vec<Ipv6Addr>,
    default_route: Option<Ipv6Addr>,
    /// When the last advertisement left (router).
    last_advert: Option<Instant>,
    /// DNS servers we advertise (router, RDNSS) or were told of (host).
    dns: Vec<Ipv6Addr>,
    /// DHCPv6 prefix delegation: as delegating router (LNS) or requesting router (LAC).
    pd_server: Option<crate::ppp_dhcp6::PdServer>,
    pd_client: Option<crate::ppp_dhcp6::PdClient>,
    ops: Arc<crate::metrics::Ops>,
}

impl Ipv6Link {
    pub(crate) fn new(role: Role, ops: Arc<crate::metrics::Ops>) -> Ipv6Link {
        Ipv6Link {
            role,
            iids: None,
            configured: false,
            dev: None,
            lease: None,
            timer: None,
            sent: 0,
            slaac: Vec::new(),
            default_route: None,
            last_advert: None,
            dns: Vec::new(),
            pd_server: None,
            pd_client: None,
            ops,
        }
    }

    /// Delegate prefixes from `pool` with DHCPv6 (router).
    pub(crate) fn with_pd_pool(mut self, pool: Option<SharedPool>) -> Ipv6Link {
        if matches!(self.role, Role::Router(_)) {
            self.pd_server = pool.map(crate::ppp_dhcp6::PdServer::new);
        }
        self
    }

    /// Ask for a delegated prefix with DHCPv6 (host).
    pub(crate) fn with_pd_client(mut self, on: bool) -> Ipv6Link {
        if on && matches!(self.role, Role::Host { .. }) {
            self.pd_client = Some(crate::ppp_dhcp6::PdClient::default());
        }
        self
    }

    /// The delegated prefix of the link, either side.
    pub(crate) fn delegated(&self) -> Option<(Ipv6Addr, u8)> {
        match (&self.pd_server, &self.pd_client) {
            (Some(s), _) => s.delegated(),
            (_, Some(c)) => c.delegated(),
            _ => None,
        }
    }

    /// Advertise these DNS servers (router; RFC 8106 RDNSS option).
    pub(crate) fn with_dns(mut self, dns: Vec<Ipv6Addr>) -> Ipv6Link {
        if matches!(self.role, Role::Router(_)) {
            self.dns = dns;
        }
        self
    }

    /// What RADIUS granted the session (Framed-IPv6-Prefix, Delegated-IPv6-Prefix,
    /// DNS-Server-IPv6-Address): used instead of `ppp_ipv6_pool`, `ppp_ipv6_pd_pool` and
    /// `ppp_ipv6_dns`. Only on the LNS side and before IPv6CP is up (the peer authenticates
    /// before any NCP starts); a delegated prefix needs a /64 on the link (ours or RADIUS's).
    pub(crate) fn set_granted(
        &mut self,
        prefix: Option<Ipv6Addr>,
        delegated: Option<(Ipv6Addr, u8)>,
        dns: &[Ipv6Addr],
    ) {
        if matches!(self.role, Role::Host { .. }) || self.lease.is_some() {
            return;
        }
        if let Some(p) = prefix {
            self.role = Role::Router(Arc::new(Mutex::new(PrefixPool::single(p, 64))));
        }
        if !matches!(self.role, Role::Router(_)) {
            return;
        }
        if let Some((p, len)) = delegated {
            let pool = Arc::new(Mutex::new(PrefixPool::single(p, len)));
            self.pd_server = Some(crate::ppp_dhcp6::PdServer::new(pool));
        }
        if !dns.is_empty() {
            self.dns = dns.to_vec();
        }
    }

    /// The /64 on the link: advertised (router, once the device has it) or the one our
    /// first address was formed from (host).
    pub(crate) fn prefix(&self) -> Option<Ipv6Addr> {
        match &self.lease {
            Some(l) => Some(l.prefix),
            None => self.slaac.first().map(|a| nd::with_iid(*a, 0)),
        }
    }

    /// IPv6CP is up with these interface identifiers. Leases the router's /64; with `tun`,
    /// configures it at once and returns the packets to send.
    pub(crate) fn up(
        &mut self,
        local_iid: u64,
        peer_iid: u64,
        tun: Option<&Tun>,
        name: &str,
    ) -> Vec<Vec<u8>> {
        self.iids = Some((local_iid, peer_iid));
        if let Role::Router(pool) = &self.role {
            if self.lease.is_none() {
                match Lease::take(pool) {
                    Some(l) => self.lease = Some(l),
                    None => {
                        self.ops
                            .ppp
                            .ipv6_pool_exhausted
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tracing::warn!(
                            "{name}: IPv6 prefix pool exhausted: the link has link-local addresses only"
                        )
                    }
                }
            }
        }
        match tun {
            Some(t) => self.attach(t, name),
            None => Vec::new(),
        }
    }

    /// The pppN device exists: give it its addresses (once IPv6CP is up) and start the
    /// advertisements or solicitations. Returns the packets to send now.
    pub(crate) fn attach(&mut self, tun: &Tun, name: &str) -> Vec<Vec<u8>> {
        let Some((local, _)) = self.iids else {
            return Vec::new();
        };
        if self.configured {
            return Vec::new();
        }
        self.configured = true;
        self.dev = Some(tun.name().to_string());
        let ll = IfAddr {
            local: IpAddr::V6(nd::link_local(local)),
            prefix_len: 64,
            peer: None,
        };
        if let Err(e) = add_address(tun.name(), ll) {
            tracing::warn!(
                "{name}: {}: link-local address {}: {e}",
                tun.name(),
                ll.local
            );
        }
        if let Some(l) = &self.lease {
            let r = Route {
                dst: IpAddr::V6(l.prefix),
                prefix_len: 64,
                gateway: None,
            };
            if let Err(e) = add_route(tun.name(), r) {
                tracing::warn!("{name}: route {}/64 via {}: {e}", l.prefix, tun.name());
            }
            tracing::info!("{name}: IPv6 prefix {}/64 on {}", l.prefix, tun.name());
        }
        tracing::info!("{name}: IPv6 up on {}: {}", tun.name(), ll.local);
        self.sent = 0;
        match self.role {
            Role::Router(_) if self.lease.is_some() => self.timer = Some(Instant::now()),
            Role::Host { .. } => self.timer = Some(Instant::now()),
            _ => {}
        }
        if let Some(c) = &mut self.pd_client {
            c.start(Instant::now());
        }
        self.on_timer(Instant::now())
    }

    /// The device went away (IPCP down): its addresses and routes with it. The lease stays
    /// for when it comes back.
    pub(crate) fn detach(&mut self) {
        if let Some(s) = &mut self.pd_server {
            s.detach();
        }
        if let Some(c) = &mut self.pd_client {
            c.stop();
        }
        self.configured = false;
        self.dev = None;
        self.timer = None;
        self.slaac.clear();
        self.default_route = None;
    }

    /// IPv6CP went down: stop advertising, take the addresses and routes off the device
    /// (it stays for IPv4), return the /64.
    pub(crate) fn down(&mut self) {
        if let (Some(dev), Some((local, _))) = (self.dev.take(), self.iids) {
            let v6 = |a: Ipv6Addr| IfAddr {
                local: IpAddr::V6(a),
                prefix_len: 64,
                peer: None,
            };
            let mut gone = vec![delete_address(&dev, v6(nd::link_local(local)))];
            for a in &self.slaac {
                gone.push(delete_address(&dev, v6(*a)));
            }
            if let Some(l) = &self.lease {
                let r = Route {
                    dst: IpAddr::V6(l.prefix),
                    prefix_len: 64,
                    gateway: None,
                };
                gone.push(delete_route(&dev, r));
            }
            if let Some(router) = self.default_route {
                let r = Route {
                    dst: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                    prefix_len: 0,
                    gateway: Some(IpAddr::V6(router)),
                };
                gone.push(delete_route(&dev, r));
            }
            for e in gone.into_iter().filter_map(Result::err) {
                tracing::debug!("{dev}: IPv6 down: {e}");
            }
            tracing::info!("{dev}: IPv6 down");
        }
        if let Some(s) = &mut self.pd_server {
            s.release("IPv6 down");
        }
        if let Some(c) = &mut self.pd_client {
            c.stop();
        }
        self.iids = None;
        self.configured = false;
        self.lease = None;
        self.timer = None;
        self.slaac.clear();
        self.default_route = None;
    }

    /// When [`Ipv6Link::on_timer`] must next run.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let pd = self.pd_client.as_ref().and_then(|c| c.deadline());
        match (self.timer, pd) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Timers due at `now`: the packets to send.
    pub(crate) fn on_timer(&mut self, now: Instant) -> Vec<Vec<u8>> {
        let mut out = self.nd_timer(now);
        if let (Some(c), Some((local, _))) = (&mut self.pd_client, self.iids) {
            out.extend(c.on_timer(now, local));
        }
        out
    }

    fn nd_timer(&mut self, now: Instant) -> Vec<Vec<u8>> {
        let Some(t) = self.timer else {
            return Vec::new();
        };
        if now < t {
            return Vec::new();
        }
        let Some(p) = self.unsolicited() else {
            self.timer = None;
            return Vec::new();
        };
        self.sent += 1;
        self.timer = match self.role {
            Role::Router(_) if self.sent <= INITIAL_ADVERTS => Some(now + INITIAL_INTERVAL),
            Role::Router(_) => Some(now + ADVERT_INTERVAL),
            Role::Host { .. } if self.sent < SOLICITATIONS => Some(now + SOLICIT_INTERVAL),
            _ => None,
        };
        if matches!(self.role, Role::Router(_)) {
            self.last_advert = Some(now);
        }
        vec![p]
    }

    /// The advertisement (router) or solicitation (host) to send unprompted.
    fn unsolicited(&self) -> Option<Vec<u8>> {
        let (local, _) = self.iids?;
        match self.role {
            Role::Router(_) => self.advert(),
            Role::Host { .. } => Some(nd::build_rs(nd::link_local(local))),
            Role::LinkLocal => None,
        }
    }

    /// An advertisement in answer to a solicitation: now, or once [`MIN_DELAY_BETWEEN_RAS`]
    /// has passed since the last one (the timer is brought forward to then).
    fn answer_solicitation(&mut self, now: Instant) -> Vec<Vec<u8>> {
        if self.lease.is_none() {
            return Vec::new();
        }
        match self.last_advert {
            Some(last) if now < last + MIN_DELAY_BETWEEN_RAS => {
                let due = last + MIN_DELAY_BETWEEN_RAS;
                self.timer = Some(self.timer.map_or(due, |t| t.min(due)));
                Vec::new()
            }
            _ => {
                self.last_advert = Some(now);
                self.advert().into_iter().collect()
            }
        }
    }

    fn advert(&self) -> Option<Vec<u8>> {
        let (local, _) = self.iids?;
        let prefix = self.lease.as_ref()?.prefix;
        let ra = RouterAdvert {
            cur_hop_limit: 64,
            router_lifetime: ROUTER_LIFETIME,
            prefixes: vec![PrefixInfo {
                prefix,
                prefix_len: 64,
                on_link: true,
                autonomous: true,
                valid_lifetime: VALID_LIFETIME,
                preferred_lifetime: PREFERRED_LIFETIME,
            }],
            dns: self.dns.clone(),
            dns_lifetime: if self.dns.is_empty() { 0 } else { DNS_LIFETIME },
            ..RouterAdvert::default()
        };
        Some(nd::build_ra(nd::link_local(local), nd::ALL_NODES, &ra))
    }

    /// An IPv6 packet from the peer. Returns whether it was consumed (a Router Solicitation
    /// or Advertisement, valid or not) and the packets to send in answer.
    pub(crate) fn on_packet(
        &mut self,
        packet: &[u8],
        tun: Option<&Tun>,
        name: &str,
    ) -> (bool, Vec<Vec<u8>>) {
        if let Some(r) = self.on_dhcp6(packet, name) {
            return r;
        }
        let msg = match nd::parse(packet) {
            Ok(Some(m)) => m,
            Ok(None) => return (false, Vec::new()),
            Err(e) => {
                self.ops
                    .ppp
                    .nd_invalid
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::debug!("{name}: invalid Router Solicitation/Advertisement dropped: {e}");
                return (true, Vec::new());
            }
        };
        match (msg, &self.role) {
            (NdMessage::RouterSolicit { .. }, Role::Router(_)) if self.configured => {
                (true, self.answer_solicitation(Instant::now()))
            }
            (NdMessage::RouterAdvert { src, ra }, Role::Host { default_route }) => {
                let default_route = *default_route;
                if let (Some(t), true) = (tun, self.configured) {
                    self.timer = None;
                    self.accept_advert(t, src, &ra, default_route, name);
                }
                (true, Vec::new())
            }
            _ => (true, Vec::new()),
        }
    }

    /// DHCPv6 to the side of it we run (`ppp_dhcp6.rs`): `None` when not ours to consume.
    fn on_dhcp6(&mut self, packet: &[u8], name: &str) -> Option<(bool, Vec<Vec<u8>>)> {
        let (src, _, _, dport, payload) = ul2tp_ppp::dhcp6::parse_udp(packet)?;
        let (local, peer) = self.iids?;
        let m = ul2tp_ppp::dhcp6::Message::decode(payload);
        let gateway = nd::link_local(peer);
        let out = match (dport, &mut self.pd_server, &mut self.pd_client) {
            (ul2tp_ppp::dhcp6::SERVER_PORT, Some(s), _) if self.configured => m
                .and_then(|m| s.handle(&m, src, gateway, local, self.dev.as_deref(), name))
                .into_iter()
                .collect(),
            (ul2tp_ppp::dhcp6::CLIENT_PORT, _, Some(c)) if self.configured => m
                .and_then(|m| c.handle(&m, local, name))
                .into_iter()
                .collect(),
            _ => return None,
        };
        Some((true, out))
    }

    /// SLAAC (RFC 4862 §5.5.3) from an advertisement, with our interface identifier.
    fn accept_advert(
        &mut self,
        tun: &Tun,
        router: Ipv6Addr,
        ra: &RouterAdvert,
        default_route: bool,
        name: &str,
    ) {
        let Some((local, _)) = self.iids else { return };
        if ra.dns_lifetime > 0 && !ra.dns.is_empty() && ra.dns != self.dns {
            self.dns = ra.dns.clone();
            let list: Vec<String> = self.dns.iter().map(|a| a.to_string()).collect();
            tracing::info!(
                "{name}: IPv6 DNS servers from {router}: {}",
                list.join(", ")
            );
        }
        for p in ra.prefixes.iter().filter(|p| p.usable_for_slaac()) {
            let a = nd::with_iid(p.prefix, local);
            if self.slaac.contains(&a) {
                continue;
            }
            let addr = IfAddr {
                local: IpAddr::V6(a),
                prefix_len: 64,
                peer: None,
            };
            match add_address(tun.name(), addr) {
                Ok(()) => {
                    tracing::info!("{name}: IPv6 address {a}/64 on {} (SLAAC)", tun.name())
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    tracing::warn!("{name}: {}: address {a}/64: {e}", tun.name());
                    continue;
                }
            }
            self.slaac.push(a);
        }
        if default_route && ra.router_lifetime > 0 && self.default_route.is_none() {
            let r = Route {
                dst: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                prefix_len: 0,
                gateway: Some(IpAddr::V6(router)),
            };
            match add_route(tun.name(), r) {
                Ok(()) => {
                    self.default_route = Some(router);
                    tracing::info!("{name}: IPv6 default route via {router} dev {}", tun.name());
                }
                Err(e) => tracing::warn!("{name}: IPv6 default route via {router}: {e}"),
            }
        }
        // Router Lifetime 0: the router is no default router any more (RFC 4861 §6.3.4).
        if ra.router_lifetime == 0 && self.default_route == Some(router) {
            let r = Route {
                dst: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                prefix_len: 0,
                gateway: Some(IpAddr::V6(router)),
            };
            match delete_route(tun.name(), r) {
                Ok(()) => tracing::info!("{name}: IPv6 default route via {router} removed"),
                Err(e) => tracing::debug!("{name}: IPv6 default route via {router}: {e}"),
            }
            self.default_route = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_hands_out_each_64_once() {
        let mut p = PrefixPool::parse("2001:db8:100::/62").unwrap();
        assert_eq!(p.size(), 4);
        let got: Vec<Ipv6Addr> = (0..4).map(|_| p.allocate().unwrap()).collect();
        let want: Vec<Ipv6Addr> = [
            "2001:db8:100::",
            "2001:db8:100:1::",
            "2001:db8:100:2::",
            "2001:db8:100:3::",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        assert_eq!(got, want);
        assert_eq!(p.allocate(), None, "exhausted");
        p.release(want[1]);
        assert_eq!(p.in_use(), 3);
        assert_eq!(p.allocate(), Some(want[1]));
        // Releasing something outside the pool changes nothing.
        p.release("2001:db8:200::".parse().unwrap());
        assert_eq!(p.in_use(), 4);
    }

    #[test]
    fn delegation_pool_hands_out_56s() {
        let mut p = PrefixPool::parse_delegation("2001:db8:f00::/48", 56).unwrap();
        assert_eq!((p.size(), p.unit()), (256, 56));
        let a = p.allocate().unwrap();
        let b = p.allocate().unwrap();
        assert_eq!(a, "2001:db8:f00::".parse::<Ipv6Addr>().unwrap());
        assert_eq!(b, "2001:db8:f00:100::".parse::<Ipv6Addr>().unwrap());
        p.release(a);
        assert_eq!(p.in_use(), 1);
        assert!(PrefixPool::parse_delegation("2001:db8::/56", 56).is_err());
        assert!(
            PrefixPool::parse_delegation("2001:db8::/20", 56).is_err(),
            "2^36 leases"
        );
        assert!(PrefixPool::parse_delegation("2001:db8::/32", 8).is_err());
    }

    #[test]
    fn pool_is_round_robin() {
        let mut p = PrefixPool::parse("2001:db8:100::/48").unwrap();
        let a = p.allocate().unwrap();
        p.release(a);
        let b = p.allocate().unwrap();
        assert_ne!(a, b, "a released /64 is not reused at once");
        assert_eq!(p.size(), 65536);
    }

    #[test]
    fn pool_syntax() {
        for bad in [
            "2001:db8::",
            "2001:db8::/65",
            "2001:db8::/31",
            "2001:db8::1/48",
            "fe80::/64",
            "10.0.0.0/8",
            "2001:db8::/x",
        ] {
            assert!(PrefixPool::parse(bad).is_err(), "{bad}");
        }
        assert!(PrefixPool::parse("2001:db8:100:5::/64").is_ok());
    }

    /// The router answers a solicitation with an advertisement of its /64 from its
    /// link-local address, at most one per MIN_DELAY_BETWEEN_RAS (a later one is scheduled);
    /// invalid ones are consumed and counted, other packets pass.
    #[test]
    fn router_answers_solicitations_rate_limited() {
        let pool: SharedPool = Arc::new(Mutex::new(PrefixPool::parse("2001:db8:5::/64").unwrap()));
        let ops = Arc::new(crate::metrics::Ops::default());
        let dns: Ipv6Addr = "2001:db8::53".parse().unwrap();
        let mut link = Ipv6Link::new(Role::Router(pool), ops.clone()).with_dns(vec![dns]);
        link.up(7, 9, None, "t");
        // As `attach` leaves it (without a device to configure).
        link.configured = true;
        let rs = nd::build_rs(nd::link_local(9));
        let (consumed, out) = link.on_packet(&rs, None, "t");
        assert!(consumed);
        assert_eq!(out.len(), 1);
        match nd::parse(&out[0]) {
            Ok(Some(NdMessage::RouterAdvert { src, ra })) => {
                assert_eq!(src, nd::link_local(7));
                assert_eq!(ra.prefixes.len(), 1);
                let p = ra.prefixes[0];
                assert_eq!(p.prefix, "2001:db8:5::".parse::<Ipv6Addr>().unwrap());
                assert!(p.usable_for_slaac() && p.on_link);
                assert_eq!(ra.router_lifetime, ROUTER_LIFETIME);
                assert_eq!((ra.dns, ra.dns_lifetime), (vec![dns], DNS_LIFETIME));
            }
            other => panic!("{other:?}"),
        }
        let (consumed, out) = link.on_packet(&rs, None, "t");
        assert!(consumed && out.is_empty(), "second one within 3 s waits");
        let due = link.deadline().expect("scheduled");
        assert!(due <= Instant::now() + MIN_DELAY_BETWEEN_RAS);
        assert!(link.on_timer(due).len() == 1, "sent when due");
        let mut bad = rs.clone();
        bad[7] = 1;
        assert_eq!(link.on_packet(&bad, None, "t"), (true, Vec::new()));
        let invalid = ops
            .ppp
            .nd_invalid
            .load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(invalid, 1);
        let mut echo = rs.clone();
        echo[40] = 128;
        assert_eq!(link.on_packet(&echo, None, "t"), (false, Vec::new()));
    }

    #[test]
    fn leases_return_to_the_pool_when_dropped() {
        let pool: SharedPool = Arc::new(Mutex::new(PrefixPool::parse("2001:db8::/64").unwrap()));
        let ops = Arc::new(crate::metrics::Ops::default());
        let mut link = Ipv6Link::new(Role::Router(pool.clone()), ops.clone());
        assert!(link.up(1, 2, None, "t").is_empty(), "no device yet");
        assert_eq!(link.prefix(), "2001:db8::".parse().ok());
        let mut other = Ipv6Link::new(Role::Router(pool.clone()), ops.clone());
        other.up(3, 4, None, "t");
        assert_eq!(other.prefix(), None, "exhausted");
        let exhausted = &ops.ppp.ipv6_pool_exhausted;
        assert_eq!(exhausted.load(std::sync::atomic::Ordering::Relaxed), 1);
        drop(link);
        assert_eq!(pool.lock().unwrap().in_use(), 0);
    }
}
