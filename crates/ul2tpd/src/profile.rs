//! LNS profiles: the `[[lns]]` tables of the configuration and the choice of one for each
//! tunnel a LAC opens.
//!
//! A profile names the peers it admits (addresses or prefixes, and/or Host Names), the
//! control-connection settings of their tunnels (secret, hidden AVPs, hello interval,
//! retries, receive window), limits (tunnels per peer address, sessions per tunnel) and the
//! PPP service of their calls (authentication, users, addresses and pools, DNS and NBNS
//! servers, MTU/MRU, LCP echo, idle and session timeouts). The first profile that matches an
//! SCCRQ wins; with any `[[lns]]` declared, a LAC that matches none is refused (StopCCN 2).
//! Without `[[lns]]`, the flat `[control]` keys are the one default profile that admits
//! everyone, as before profiles existed.
//!
//! ```toml
//! [[lns]]
//! name = "branch-offices"
//! peers = ["198.51.100.0/24", "203.0.113.7"]
//! host_names = ["lac-*.example.net"]
//! secret = "tunnel secret"
//! ppp_local = "10.64.0.1"
//! ppp_auth = "chap"
//! ppp_users = { alice = "wonderland" }
//! ppp_dns = ["192.0.2.53", "192.0.2.54"]
//! [[lns.pool]]
//! name = "main"
//! ranges = ["10.64.0.10-10.64.0.200", "10.65.0.0/24"]
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

/// One `[[lns]]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LnsProfile {
    /// The profile's name (logs, `show tunnel`).
    pub name: String,
    /// Peer addresses, prefixes or ranges ("192.0.2.7", "198.51.100.0/24", "2001:db8::/32",
    /// "192.0.2.10-192.0.2.20"); empty: any address.
    #[serde(default)]
    pub peers: Vec<String>,
    /// Host Names (a trailing or leading `*` matches any rest); empty: any Host Name.
    #[serde(default)]
    pub host_names: Vec<String>,
    /// Our Host Name towards these LACs and our name in CHAP Challenges (overrides
    /// `[control] host_name`).
    pub host_name: Option<String>,
    /// Tunnel secret (overrides `[control] secret`).
    pub secret: Option<String>,
    /// Hide the AVPs that may be hidden.
    pub hide_avps: Option<bool>,
    /// L2TPv2 with a secret: challenge the LAC.
    pub challenge: Option<bool>,
    /// Seconds of silence before a HELLO.
    pub hello_interval: Option<u64>,
    /// Retransmissions before a tunnel is declared down.
    pub max_retries: Option<u32>,
    /// Our Receive Window Size.
    pub receive_window: Option<u16>,
    /// Tunnels one peer address may hold at once.
    pub max_tunnels: Option<usize>,
    /// Sessions (calls) per tunnel; more are refused with CDN 4.
    pub max_sessions: Option<usize>,
    /// Our address on the pppN of the calls (with a pool).
    pub ppp_local: Option<Ipv4Addr>,
    /// A pool "FIRST-LAST" (the `[control] ppp_pool` form; `[[lns.pool]]` for more).
    pub ppp_pool: Option<String>,
    /// Authentication required: "pap", "chap" or "mschapv2".
    pub ppp_auth: Option<String>,
    /// Accepted users and their passwords.
    #[serde(default)]
    pub ppp_users: BTreeMap<String, String>,
    /// DNS servers handed out in IPCP (at most 2).
    #[serde(default)]
    pub ppp_dns: Vec<Ipv4Addr>,
    /// NBNS servers handed out in IPCP (at most 2).
    #[serde(default)]
    pub ppp_nbns: Vec<Ipv4Addr>,
    /// MTU of the pppN devices.
    pub ppp_mtu: Option<u16>,
    /// MRU we negotiate in LCP.
    pub ppp_mru: Option<u16>,
    /// Seconds between LCP Echo-Requests.
    pub ppp_echo_interval: Option<u64>,
    /// Unanswered Echo-Requests before the link is dead.
    pub ppp_echo_failure: Option<u32>,
    /// Seconds without IP traffic after which the call is cleared.
    pub ppp_idle_timeout: Option<u64>,
    /// Seconds after which the call is cleared however busy.
    pub ppp_session_timeout: Option<u64>,
    /// "per-session" (a pppN per call) or "shared" (one TUN for the calls).
    pub ppp_device: Option<String>,
    /// The shared TUN's name.
    pub ppp_device_name: Option<String>,
    /// IPv6 prefix ("PREFIX/LEN", /32 to /64) from which each call gets a /64, advertised
    /// in Router Advertisements (the profile's own pool; `[control] ppp_ipv6_pool` is the
    /// default profile's).
    pub ppp_ipv6_pool: Option<String>,
    /// IPv6 DNS servers advertised with the /64 (RDNSS, RFC 8106).
    #[serde(default)]
    pub ppp_ipv6_dns: Vec<Ipv6Addr>,
    /// Prefixes delegated to the calls with DHCPv6 ("PREFIX/LEN").
    pub ppp_ipv6_pd_pool: Option<String>,
    /// Length of each delegated prefix (default 56).
    pub ppp_ipv6_pd_length: Option<u8>,
    /// Named address pools, used in order.
    #[serde(default)]
    pub pool: Vec<PoolConfig>,
}

/// One `[[lns.pool]]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// The pool's name.
    pub name: String,
    /// "FIRST-LAST" ranges and "ADDRESS/LEN" prefixes (without network and broadcast
    /// addresses below /31).
    pub ranges: Vec<String>,
}

/// A named IPv4 address pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    /// Its name.
    pub name: String,
    /// Inclusive ranges.
    pub ranges: Vec<(Ipv4Addr, Ipv4Addr)>,
}

impl Pool {
    /// Addresses in the pool.
    pub fn size(&self) -> u64 {
        self.ranges
            .iter()
            .map(|(a, b)| u64::from(u32::from(*b) - u32::from(*a)) + 1)
            .sum()
    }

    /// Whether `a` is in one of its ranges.
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        self.ranges.iter().any(|(x, y)| (*x..=*y).contains(&a))
    }

    /// The lowest address neither in `used` nor `local` (our own address, which a pool
    /// may include). `low` remembers, per range and `local`, an address below which every
    /// address of the range is taken, so that a lease does not walk past every address
    /// leased before it; whoever removes an address from `used` lowers it again
    /// ([`lower_free_hints`]).
    pub fn free(
        &self,
        used: &HashSet<Ipv4Addr>,
        local: Ipv4Addr,
        low: &mut FreeHints,
    ) -> Option<Ipv4Addr> {
        for &(a, b) in &self.ranges {
            let (a, b) = (u32::from(a), u32::from(b));
            let key = (a, b, u32::from(local));
            let start = low.get(&key).copied().unwrap_or(a).max(a);
            let found = (start..=b)
                .map(Ipv4Addr::from)
                .find(|x| *x != local && !used.contains(x));
            match found {
                Some(x) => {
                    low.insert(key, u32::from(x));
                    return Some(x);
                }
                None => {
                    low.insert(key, b);
                }
            }
        }
        None
    }
}

/// Per (range start, range end, our address): everything of the range below it is taken
/// ([`Pool::free`]).
pub type FreeHints = HashMap<(u32, u32, u32), u32>;

/// `addr` is free again: no range that holds it may start its search above it.
pub fn lower_free_hints(low: &mut FreeHints, addr: Ipv4Addr) {
    let x = u32::from(addr);
    for ((a, b, _), h) in low.iter_mut() {
        if (*a..=*b).contains(&x) && x < *h {
            *h = x;
        }
    }
}

/// The PPP service of a profile's calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PppService {
    /// Our address on every pppN; 0.0.0.0 for an IPv6-only service ([`PppService::ipv6_only`]).
    pub local: Ipv4Addr,
    /// Pools, tried in order.
    pub pools: Vec<Pool>,
    /// Authentication required (empty: none).
    pub require: Vec<ul2tp_ppp::AuthProtocol>,
    /// Accepted (name, secret) pairs.
    pub users: Vec<(String, String)>,
    /// DNS servers for IPCP.
    pub dns: [Option<Ipv4Addr>; 2],
    /// NBNS servers for IPCP.
    pub nbns: [Option<Ipv4Addr>; 2],
    /// pppN MTU.
    pub mtu: Option<u16>,
    /// LCP MRU.
    pub mru: Option<u16>,
    /// LCP echo interval and failures.
    pub echo: Option<(Duration, u32)>,
    /// Idle timeout.
    pub idle_timeout: Option<Duration>,
    /// Session timeout.
    pub session_timeout: Option<Duration>,
    /// IPv6 for the calls (`ppp_ipv6_*`).
    pub ipv6: Ipv6Service,
    /// `ppp_device = "shared"`: the name of the one TUN of the calls; `None`: a pppN each.
    pub shared_device: Option<String>,
}

impl PppService {
    /// No IPv4 (only `ppp_ipv6_pool`): no IPCP, no address lease.
    pub fn ipv6_only(&self) -> bool {
        self.local.is_unspecified() && self.pools.is_empty()
    }
}

/// IPv6 for the PPP calls of a profile: its /64 pool, DNS servers, delegated prefixes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ipv6Service {
    /// The /64s of the calls (`ppp_ipv6_pool`); `None`: link-local addresses only.
    pub pool: Option<Ipv6Pool>,
    /// DNS servers advertised with the /64 (`ppp_ipv6_dns`).
    pub dns: Vec<Ipv6Addr>,
    /// Prefixes delegated with DHCPv6 (`ppp_ipv6_pd_pool`); `None`: no DHCPv6 server.
    pub pd: Option<Ipv6Pool>,
}

/// An IPv6 prefix pool of a profile: what it is (compared by reloads) and its leases (a
/// run-time object, shared by every profile and reload that declares the same pool, so that
/// a /64 in use is never handed out twice).
#[derive(Debug, Clone)]
pub struct Ipv6Pool {
    /// (prefix, length, length of each lease).
    pub spec: (u128, u8, u8),
    /// The leases.
    pub shared: crate::ppp_ipv6::SharedPool,
}

impl PartialEq for Ipv6Pool {
    /// Pools are equal when they declare the same prefixes, whatever is leased.
    fn eq(&self, other: &Self) -> bool {
        self.spec == other.spec
    }
}

impl Eq for Ipv6Pool {}

impl Ipv6Pool {
    fn new(p: crate::ppp_ipv6::PrefixPool) -> Ipv6Pool {
        Ipv6Pool {
            spec: p.spec(),
            shared: Arc::new(std::sync::Mutex::new(p)),
        }
    }

    /// The addresses of the pool as an inclusive range.
    fn range(&self) -> (u128, u128) {
        let (base, len, _) = self.spec;
        (base, base | (u128::MAX >> len))
    }

    /// Whether two pools share addresses.
    fn overlaps(&self, other: &Ipv6Pool) -> bool {
        let ((a0, a1), (b0, b1)) = (self.range(), other.range());
        a0 <= b1 && b0 <= a1
    }

    /// `"PREFIX/LEN"` as written back (logs, errors).
    fn text(&self) -> String {
        format!("{}/{}", Ipv6Addr::from(self.spec.0), self.spec.1)
    }
}

/// A profile ready for use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Its name ("default" for the flat `[control]` keys).
    pub name: String,
    /// Admitted addresses as inclusive ranges of one family (empty: any).
    pub peers: Vec<(IpAddr, IpAddr)>,
    /// Admitted Host Names (empty: any).
    pub host_names: Vec<String>,
    /// The engine configuration of its tunnels.
    pub config: ul2tp_control::Config,
    /// Its PPP service (`None`: calls get no PPP endpoint).
    pub ppp: Option<PppService>,
}

/// The profiles in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profiles {
    /// `[[lns]]` in file order; empty: everyone gets `default`.
    pub list: Vec<Arc<Profile>>,
    /// The flat `[control]` keys.
    pub default: Arc<Profile>,
}

impl Profiles {
    /// The profile of a tunnel from `peer` with Host Name `host`; `None`: refused.
    pub fn select(&self, peer: IpAddr, host: &str) -> Option<Arc<Profile>> {
        if self.list.is_empty() {
            return Some(self.default.clone());
        }
        self.list.iter().find(|p| p.admits(peer, host)).cloned()
    }

    /// A profile by name (the name the engine hands back in `TunnelInfo`).
    pub fn by_name(&self, name: &str) -> Option<Arc<Profile>> {
        if name.is_empty() || name == self.default.name {
            return Some(self.default.clone());
        }
        self.list.iter().find(|p| p.name == name).cloned()
    }

    /// Every profile (the default one first).
    pub fn all(&self) -> impl Iterator<Item = &Arc<Profile>> {
        std::iter::once(&self.default).chain(self.list.iter())
    }
}

impl Profile {
    /// Whether the profile admits `peer` with Host Name `host`.
    pub fn admits(&self, peer: IpAddr, host: &str) -> bool {
        let addr_ok =
            self.peers.is_empty() || self.peers.iter().any(|&(a, b)| in_range(peer, a, b));
        let host_ok =
            self.host_names.is_empty() || self.host_names.iter().any(|h| host_matches(h, host));
        addr_ok && host_ok
    }
}

/// Whether `a` is in the inclusive range `first..=last` (IPv4-mapped IPv6 peers match IPv4
/// ranges).
fn in_range(a: IpAddr, first: IpAddr, last: IpAddr) -> bool {
    let a = match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, IpAddr::V4),
        v4 => v4,
    };
    match (a, first, last) {
        (IpAddr::V4(a), IpAddr::V4(f), IpAddr::V4(l)) => (f..=l).contains(&a),
        (IpAddr::V6(a), IpAddr::V6(f), IpAddr::V6(l)) => (f..=l).contains(&a),
        _ => false,
    }
}

/// A `peers` entry, "ADDRESS", "ADDRESS/LEN" or "FIRST-LAST" (like xl2tpd's `lac =`), as
/// an inclusive range.
fn parse_peers(s: &str) -> Result<(IpAddr, IpAddr), String> {
    if let Some((a, b)) = s.split_once('-') {
        let bad = || format!("{s:?} is not FIRST-LAST (two addresses of one family)");
        let first: IpAddr = a.trim().parse().map_err(|_| bad())?;
        let last: IpAddr = b.trim().parse().map_err(|_| bad())?;
        if first.is_ipv4() != last.is_ipv4() {
            return Err(bad());
        }
        if first > last {
            return Err(format!("first address {first} is after last {last}"));
        }
        return Ok((first, last));
    }
    let (a, len) = parse_prefix(s)?;
    Ok(match a {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            let net = u32::from(v4) & mask;
            (
                IpAddr::V4(Ipv4Addr::from(net)),
                IpAddr::V4(Ipv4Addr::from(net | !mask)),
            )
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            let net = u128::from(v6) & mask;
            (
                IpAddr::V6(Ipv6Addr::from(net)),
                IpAddr::V6(Ipv6Addr::from(net | !mask)),
            )
        }
    })
}

/// `pattern` is a Host Name, `prefix*` or `*suffix` (case-insensitive, as DNS names are).
fn host_matches(pattern: &str, host: &str) -> bool {
    let (p, h) = (pattern.to_ascii_lowercase(), host.to_ascii_lowercase());
    if let Some(pre) = p.strip_suffix('*') {
        h.starts_with(pre)
    } else if let Some(suf) = p.strip_prefix('*') {
        h.ends_with(suf)
    } else {
        p == h
    }
}

/// "ADDRESS" or "ADDRESS/LEN".
fn parse_prefix(s: &str) -> Result<(IpAddr, u8), String> {
    let bad = || format!("{s:?} is not an address or ADDRESS/LEN prefix");
    let (a, l) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let a: IpAddr = a.trim().parse().map_err(|_| bad())?;
    let max = if a.is_ipv4() { 32 } else { 128 };
    let l = match l {
        Some(l) => l.trim().parse::<u8>().map_err(|_| bad())?,
        None => max,
    };
    if l > max {
        return Err(format!("{s:?}: prefix length above {max}"));
    }
    Ok((a, l))
}

/// A pool range: "FIRST-LAST", "ADDRESS/LEN" or one address.
pub fn parse_range(s: &str) -> Result<(Ipv4Addr, Ipv4Addr), String> {
    if let Some((a, b)) = s.split_once('-') {
        let bad = || format!("{s:?} is not FIRST-LAST (two IPv4 addresses)");
        let first: Ipv4Addr = a.trim().parse().map_err(|_| bad())?;
        let last: Ipv4Addr = b.trim().parse().map_err(|_| bad())?;
        if first > last {
            return Err(format!("first address {first} is after last {last}"));
        }
        return Ok((first, last));
    }
    let (IpAddr::V4(a), len) = parse_prefix(s)? else {
        return Err(format!("{s:?}: pools hold IPv4 addresses"));
    };
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    let (net, bcast) = (u32::from(a) & mask, u32::from(a) | !mask);
    // Below /31 the network and broadcast addresses are not handed out.
    Ok(if len < 31 {
        (Ipv4Addr::from(net + 1), Ipv4Addr::from(bcast - 1))
    } else {
        (Ipv4Addr::from(net), Ipv4Addr::from(bcast))
    })
}

/// `"pap"`, `"chap"`, `"mschapv2"`.
pub fn auth_protocol(name: &str) -> Option<ul2tp_ppp::AuthProtocol> {
    match name {
        "pap" => Some(ul2tp_ppp::AuthProtocol::Pap),
        "chap" => Some(ul2tp_ppp::AuthProtocol::ChapMd5),
        "mschapv2" => Some(ul2tp_ppp::AuthProtocol::MsChapV2),
        _ => None,
    }
}

/// A problem with one key of a profile: the key and what is wrong.
pub type KeyError = (&'static str, String);

pub(crate) fn two(key: &'static str, v: &[Ipv4Addr]) -> Result<[Option<Ipv4Addr>; 2], KeyError> {
    if v.len() > 2 {
        return Err((key, "at most 2 servers (primary, secondary)".into()));
    }
    Ok([v.first().copied(), v.get(1).copied()])
}

impl LnsProfile {
    /// Check the table and build its profile on top of the `[control]` settings `base`.
    pub fn build(&self, base: &ul2tp_control::Config) -> Result<Profile, KeyError> {
        if self.name.is_empty() || self.name == "default" {
            return Err((
                "name",
                "must be a non-empty name other than \"default\"".into(),
            ));
        }
        let peers = self
            .peers
            .iter()
            .map(|p| parse_peers(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|m| ("peers", m))?;
        let mut c = base.clone();
        c.profile = self.name.clone();
        if let Some(h) = &self.host_name {
            if h.is_empty() {
                return Err(("host_name", "must not be empty".into()));
            }
            c.host_name = h.clone();
        }
        if let Some(s) = &self.secret {
            c.secret = Some(s.as_bytes().to_vec());
        }
        if let Some(h) = self.hide_avps {
            c.hide_avps = h;
        }
        if let Some(ch) = self.challenge {
            c.send_challenge = ch;
        }
        if let Some(h) = self.hello_interval {
            c.hello_interval = Duration::from_secs(h.max(1));
        }
        if let Some(r) = self.max_retries {
            c.max_retries = r;
        }
        if let Some(w) = self.receive_window {
            if w == 0 {
                return Err(("receive_window", "must be at least 1".into()));
            }
            c.rx_window = w;
        }
        limits(self.max_tunnels, self.max_sessions)?;
        if let Some(v) = self.max_tunnels {
            c.max_tunnels_per_peer = v;
        }
        if let Some(v) = self.max_sessions {
            c.max_sessions = v;
        }
        if c.hide_avps && c.secret.is_none() {
            return Err(("hide_avps", "needs a secret".into()));
        }
        let mut pools = Vec::new();
        if let Some(p) = &self.ppp_pool {
            pools.push(Pool {
                name: "ppp_pool".into(),
                ranges: vec![parse_range(p).map_err(|m| ("ppp_pool", m))?],
            });
        }
        for p in &self.pool {
            if p.name.is_empty() || pools.iter().any(|q: &Pool| q.name == p.name) {
                return Err((
                    "pool",
                    format!("pool name {:?} is empty or used twice", p.name),
                ));
            }
            if p.ranges.is_empty() {
                return Err(("ranges", format!("pool {:?} has no ranges", p.name)));
            }
            let ranges = p
                .ranges
                .iter()
                .map(|r| parse_range(r))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|m| ("ranges", m))?;
            pools.push(Pool {
                name: p.name.clone(),
                ranges,
            });
        }
        let ppp = ppp_service(PppKeys {
            local: self.ppp_local,
            pools,
            auth: self.ppp_auth.as_deref(),
            users: &self.ppp_users,
            dns: two("ppp_dns", &self.ppp_dns)?,
            nbns: two("ppp_nbns", &self.ppp_nbns)?,
            mtu: self.ppp_mtu,
            mru: self.ppp_mru,
            echo: (self.ppp_echo_interval, self.ppp_echo_failure),
            idle: self.ppp_idle_timeout,
            session: self.ppp_session_timeout,
            device: (self.ppp_device.as_deref(), self.ppp_device_name.as_deref()),
            ipv6: Ipv6Keys {
                pool: self.ppp_ipv6_pool.as_deref(),
                dns: &self.ppp_ipv6_dns,
                pd_pool: self.ppp_ipv6_pd_pool.as_deref(),
                pd_length: self.ppp_ipv6_pd_length,
            },
        })?;
        Ok(Profile {
            name: self.name.clone(),
            peers,
            host_names: self.host_names.clone(),
            config: c,
            ppp,
        })
    }
}

/// The IPv6 pools of a profile's PPP service with their keys.
fn ipv6_pools(p: &Profile) -> impl Iterator<Item = (&'static str, &Ipv6Pool)> {
    let v6 = p.ppp.as_ref().map(|s| &s.ipv6);
    let link = v6
        .and_then(|v| v.pool.as_ref())
        .map(|x| ("ppp_ipv6_pool", x));
    let pd = v6
        .and_then(|v| v.pd.as_ref())
        .map(|x| ("ppp_ipv6_pd_pool", x));
    link.into_iter().chain(pd)
}

/// Make the IPv6 pools of `p` the very objects of the equal pools of `others` (profiles of
/// one file, or those running before a reload), so that their leases are shared: a /64 in use
/// is never leased twice. A pool that overlaps one of `others` without being equal to it is
/// an error (the key and what is wrong, the first such); the other pools are shared anyway.
pub(crate) fn share_pools<'a>(
    p: &mut Profile,
    others: impl Iterator<Item = &'a Profile> + Clone,
) -> Result<(), KeyError> {
    let Some(v6) = p.ppp.as_mut().map(|s| &mut s.ipv6) else {
        return Ok(());
    };
    let mut err = None;
    for (key, mine) in [
        ("ppp_ipv6_pool", v6.pool.as_mut()),
        ("ppp_ipv6_pd_pool", v6.pd.as_mut()),
    ] {
        let Some(mine) = mine else { continue };
        for other in others.clone() {
            for (_, theirs) in ipv6_pools(other) {
                if theirs == mine {
                    mine.shared = theirs.shared.clone();
                } else if theirs.overlaps(mine) && err.is_none() {
                    err = Some((
                        key,
                        format!(
                            "{} overlaps {} of profile {:?} (one prefix could be leased twice; declare the same pool to share it)",
                            mine.text(),
                            theirs.text(),
                            other.name
                        ),
                    ));
                }
            }
        }
    }
    err.map_or(Ok(()), Err)
}

impl Profiles {
    /// After a reload: the IPv6 pools of these profiles that `old` (the profiles in force and
    /// those of established tunnels) declared too become `old`'s, leases included; the pools
    /// of unchanged profiles keep their state. Returns what cannot be shared (a pool
    /// overlapping an old one of another spec, whose leases may clash until the old tunnels
    /// are gone), for the log.
    pub fn adopt_pools(&mut self, old: &[Arc<Profile>]) -> Vec<String> {
        let mut warnings = Vec::new();
        let mut adopt = |p: &mut Arc<Profile>| {
            if ipv6_pools(p).next().is_none() {
                return;
            }
            let name = p.name.clone();
            if let Err((key, m)) = share_pools(Arc::make_mut(p), old.iter().map(|o| &**o)) {
                warnings.push(format!("profile {name:?} {key}: {m}"));
            }
        };
        adopt(&mut self.default);
        self.list.iter_mut().for_each(adopt);
        warnings
    }
}

/// `max_tunnels` / `max_sessions`: absent (no limit) or at least 1.
pub(crate) fn limits(tunnels: Option<usize>, sessions: Option<usize>) -> Result<(), KeyError> {
    for (key, v) in [("max_tunnels", tunnels), ("max_sessions", sessions)] {
        if v == Some(0) {
            return Err((key, "must be at least 1 (leave it out for no limit)".into()));
        }
    }
    Ok(())
}

/// The PPP keys shared by `[control]` and `[[lns]]`.
pub(crate) struct PppKeys<'a> {
    pub(crate) local: Option<Ipv4Addr>,
    pub(crate) pools: Vec<Pool>,
    pub(crate) auth: Option<&'a str>,
    pub(crate) users: &'a BTreeMap<String, String>,
    pub(crate) dns: [Option<Ipv4Addr>; 2],
    pub(crate) nbns: [Option<Ipv4Addr>; 2],
    pub(crate) mtu: Option<u16>,
    pub(crate) mru: Option<u16>,
    pub(crate) echo: (Option<u64>, Option<u32>),
    pub(crate) idle: Option<u64>,
    pub(crate) session: Option<u64>,
    /// `ppp_device`, `ppp_device_name`.
    pub(crate) device: (Option<&'a str>, Option<&'a str>),
    pub(crate) ipv6: Ipv6Keys<'a>,
}

/// The `ppp_ipv6_*` keys of the LNS, shared by `[control]` and `[[lns]]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ipv6Keys<'a> {
    pub(crate) pool: Option<&'a str>,
    pub(crate) dns: &'a [Ipv6Addr],
    pub(crate) pd_pool: Option<&'a str>,
    pub(crate) pd_length: Option<u8>,
}

/// Check the `ppp_ipv6_*` keys of a table with a PPP service and build its pools.
fn ipv6_service(k: Ipv6Keys<'_>) -> Result<Ipv6Service, KeyError> {
    use crate::ppp_ipv6::PrefixPool;
    let pool = match k.pool {
        Some(p) => Some(Ipv6Pool::new(
            PrefixPool::parse(p).map_err(|m| ("ppp_ipv6_pool", m))?,
        )),
        None => None,
    };
    if let Some(a) = k
        .dns
        .iter()
        .find(|a| a.is_unspecified() || a.is_multicast() || a.is_loopback())
    {
        return Err(("ppp_ipv6_dns", format!("{a} is not a unicast address")));
    }
    if !k.dns.is_empty() && pool.is_none() {
        return Err((
            "ppp_ipv6_dns",
            "needs ppp_ipv6_pool (the servers go out with its Router Advertisements)".into(),
        ));
    }
    let pd = match k.pd_pool {
        Some(p) => {
            let unit = k.pd_length.unwrap_or(56);
            let pd = Ipv6Pool::new(
                PrefixPool::parse_delegation(p, unit).map_err(|m| ("ppp_ipv6_pd_pool", m))?,
            );
            let Some(link) = &pool else {
                return Err((
                    "ppp_ipv6_pd_pool",
                    "needs ppp_ipv6_pool (delegation runs on links with IPv6)".into(),
                ));
            };
            if pd.overlaps(link) {
                return Err((
                    "ppp_ipv6_pd_pool",
                    format!(
                        "{} overlaps ppp_ipv6_pool {} (a /64 could be on a link and delegated)",
                        pd.text(),
                        link.text()
                    ),
                ));
            }
            Some(pd)
        }
        None if k.pd_length.is_some() => {
            return Err(("ppp_ipv6_pd_length", "needs ppp_ipv6_pd_pool".into()))
        }
        None => None,
    };
    Ok(Ipv6Service {
        pool,
        dns: k.dns.to_vec(),
        pd,
    })
}

pub(crate) fn ppp_service(k: PppKeys<'_>) -> Result<Option<PppService>, KeyError> {
    let require = match k.auth {
        None => Vec::new(),
        Some(a) => vec![auth_protocol(a).ok_or_else(|| {
            (
                "ppp_auth",
                format!("{a:?} is not one of pap, chap, mschapv2"),
            )
        })?],
    };
    for (key, v) in [("ppp_mtu", k.mtu), ("ppp_mru", k.mru)] {
        if v.is_some_and(|v| !(576..=65535).contains(&v)) {
            return Err((key, "must be between 576 and 65535".into()));
        }
    }
    let shared_device = crate::ppp_shared::device_keys(k.device)?;
    // IPv6 only: a /64 pool without ppp_local nor IPv4 pools. IPCP is not run (the
    // peer's Configure-Requests get a Protocol-Reject), the pppN has IPv6 addresses only.
    let v6_only = k.local.is_none() && k.pools.is_empty() && k.ipv6.pool.is_some();
    let Some(local) = k.local.or(v6_only.then_some(Ipv4Addr::UNSPECIFIED)) else {
        if let Some(key) = [
            (k.ipv6.pool.is_some(), "ppp_ipv6_pool"),
            (!k.ipv6.dns.is_empty(), "ppp_ipv6_dns"),
            (k.ipv6.pd_pool.is_some(), "ppp_ipv6_pd_pool"),
            (k.ipv6.pd_length.is_some(), "ppp_ipv6_pd_length"),
            (k.device.0.is_some(), "ppp_device"),
            (k.device.1.is_some(), "ppp_device_name"),
        ]
        .iter()
        .find_map(|(set, key)| set.then_some(*key))
        {
            return Err((
                key,
                "needs ppp_local and a pool (the PPP service of the calls it is for)".into(),
            ));
        }
        if !k.pools.is_empty() {
            return Err(("ppp_pool", "needs ppp_local (our address)".into()));
        }
        if k.auth.is_some() {
            return Err((
                "ppp_auth",
                "needs ppp_local and a pool (peers authenticate to the LNS PPP endpoint they configure)".into(),
            ));
        }
        return Ok(None);
    };
    if k.pools.is_empty() && !v6_only {
        return Err((
            "ppp_local",
            "needs ppp_pool or a [[lns.pool]] (the peers' addresses, \"FIRST-LAST\")".into(),
        ));
    }
    // `ppp_auth` without `ppp_users` is refused by `Config::check` unless `[radius]` checks
    // the logins.
    let ipv6 = ipv6_service(k.ipv6)?;
    if shared_device.is_some() && ipv6.pool.is_some() {
        return Err((
            "ppp_device",
            "\"shared\" carries IPv4 only: leave out ppp_ipv6_pool or use \"per-session\"".into(),
        ));
    }
    let secs = |s: u64| Duration::from_secs(s.max(1));
    Ok(Some(PppService {
        local,
        pools: k.pools,
        require,
        users: k
            .users
            .iter()
            .map(|(u, p)| (u.clone(), p.clone()))
            .collect(),
        dns: k.dns,
        nbns: k.nbns,
        mtu: k.mtu,
        mru: k.mru,
        echo: (k.echo.0.is_some() || k.echo.1.is_some())
            .then(|| (secs(k.echo.0.unwrap_or(10)), k.echo.1.unwrap_or(3).max(1))),
        idle_timeout: k.idle.map(secs),
        session_timeout: k.session.map(secs),
        ipv6,
        shared_device,
    }))
}

/// The line of `key` in the `[[lns]]` table that starts at `span` of `text` (its own lines
/// and those of its `[[lns.pool]]` sub-tables, up to the next other table); else the
/// table's first line.
pub fn key_line_in(text: &str, span: Range<usize>, key: &str) -> usize {
    let start = span.start.min(text.len());
    let start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let first = text[..start].matches('\n').count() + 1;
    let mut lines = text[start..].lines().enumerate();
    // The table's header (or its first key, if the span starts there).
    let header = lines
        .next()
        .filter(|(_, l)| l.trim_start().starts_with('['))
        .is_some();
    let is_key = |l: &str| {
        l.trim_start()
            .strip_prefix(key)
            .is_some_and(|r| r.trim_start().starts_with('='))
    };
    if !header && text[start..].lines().next().is_some_and(is_key) {
        return first;
    }
    for (i, l) in lines {
        let t = l.trim_start();
        if t.starts_with('[') && !t.starts_with("[[lns.") && !t.starts_with("[lns.") {
            break;
        }
        if is_key(l) {
            return first + i;
        }
    }
    first
}

/// A problem with one `[[lns]]` table: its span, the key and what is wrong.
pub type TableError = (Range<usize>, &'static str, String);

/// The `[[lns]]` tables checked and built on `base`; errors carry the table's span.
pub fn build_all(
    lns: &[Spanned<LnsProfile>],
    base: &ul2tp_control::Config,
) -> Result<Vec<Arc<Profile>>, TableError> {
    let mut out: Vec<Arc<Profile>> = Vec::new();
    for p in lns {
        let name = &p.get_ref().name;
        let mut built = p
            .get_ref()
            .build(base)
            .map_err(|(k, m)| (p.span(), k, format!("profile {name:?}: {m}")))?;
        share_pools(&mut built, out.iter().map(|p| &**p))
            .map_err(|(k, m)| (p.span(), k, format!("profile {name:?}: {m}")))?;
        if out.iter().any(|q| q.name == built.name) {
            return Err((
                p.span(),
                "name",
                format!("profile {:?} is declared twice", built.name),
            ));
        }
        out.push(Arc::new(built));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(peers: &[&str], hosts: &[&str]) -> Profile {
        Profile {
            name: "p".into(),
            peers: peers.iter().map(|p| parse_peers(p).unwrap()).collect(),
            host_names: hosts.iter().map(|h| h.to_string()).collect(),
            config: ul2tp_control::Config::default(),
            ppp: None,
        }
    }

    #[test]
    fn profiles_match_by_prefix_and_host_name() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let p = profile(&["198.51.100.0/24", "2001:db8::/32"], &[]);
        assert!(p.admits(ip("198.51.100.200"), "x"));
        assert!(p.admits(ip("::ffff:198.51.100.1"), "x"));
        assert!(!p.admits(ip("198.51.101.1"), "x"));
        assert!(p.admits(ip("2001:db8::1"), "x"));
        assert!(!p.admits(ip("2001:db9::1"), "x"));
        let h = profile(&["192.0.2.7"], &["lac-*", "*.example.net"]);
        assert!(h.admits(ip("192.0.2.7"), "LAC-3"));
        assert!(h.admits(ip("192.0.2.7"), "a.example.net"));
        assert!(!h.admits(ip("192.0.2.7"), "other"));
        assert!(!h.admits(ip("192.0.2.8"), "lac-3"));
        assert!(profile(&["0.0.0.0/0"], &[]).admits(ip("203.0.113.1"), ""));
        // xl2tpd's `lac = FIRST-LAST` form, IPv4 and IPv6.
        let r = profile(&["192.0.2.10-192.0.2.20", "2001:db8::5 - 2001:db8::9"], &[]);
        assert!(r.admits(ip("192.0.2.10"), "") && r.admits(ip("192.0.2.20"), ""));
        assert!(!r.admits(ip("192.0.2.9"), "") && !r.admits(ip("192.0.2.21"), ""));
        assert!(r.admits(ip("::ffff:192.0.2.15"), ""));
        assert!(r.admits(ip("2001:db8::7"), "") && !r.admits(ip("2001:db8::a"), ""));
        assert!(parse_peers("192.0.2.9-192.0.2.1").is_err());
        assert!(parse_peers("192.0.2.1-2001:db8::1").is_err());
        assert!(parse_peers("192.0.2.1/33").is_err());
    }

    #[test]
    fn pool_ranges_and_prefixes() {
        let a = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(
            parse_range("10.0.0.10-10.0.0.200").unwrap(),
            (a("10.0.0.10"), a("10.0.0.200"))
        );
        assert_eq!(
            parse_range("10.1.0.0/24").unwrap(),
            (a("10.1.0.1"), a("10.1.0.254"))
        );
        assert_eq!(
            parse_range("10.1.0.4/31").unwrap(),
            (a("10.1.0.4"), a("10.1.0.5"))
        );
        assert_eq!(
            parse_range("10.1.0.9").unwrap(),
            (a("10.1.0.9"), a("10.1.0.9"))
        );
        assert!(parse_range("10.0.0.9-10.0.0.1").is_err());
        assert!(parse_range("2001:db8::/64").is_err());
        assert!(parse_range("10.0.0.0/33").is_err());
        let pool = Pool {
            name: "p".into(),
            ranges: vec![
                parse_range("10.0.0.1-10.0.0.2").unwrap(),
                parse_range("10.9.0.0/30").unwrap(),
            ],
        };
        assert_eq!(pool.size(), 4);
        let mut used = HashSet::new();
        let mut low = FreeHints::new();
        let local = a("10.0.0.2");
        for want in ["10.0.0.1", "10.9.0.1", "10.9.0.2"] {
            let got = pool.free(&used, local, &mut low).unwrap();
            assert_eq!(got, a(want));
            used.insert(got);
        }
        assert_eq!(
            pool.free(&used, local, &mut low),
            None,
            "our own address is never leased"
        );
    }

    #[test]
    fn odd_values_are_errors_not_panics() {
        for s in [
            "",
            "/",
            "-",
            "a-b",
            "1.2.3.4/",
            "1.2.3.4-",
            "-1.2.3.4",
            "::/0",
            "::/129",
            "0.0.0.0/0",
            "255.255.255.255/32",
            "1.2.3.4/-1",
            "999.1.1.1",
            "1.2.3.4/31",
            "1.2.3.4 / 24",
            "10.0.0.1-10.0.0.1",
            "10.0.0.0/8-10.0.0.1",
        ] {
            let _ = parse_range(s);
            let _ = parse_prefix(s);
            let _ = parse_peers(s);
        }
        let all = parse_range("0.0.0.0/0").unwrap();
        assert_eq!(
            all,
            (
                "0.0.0.1".parse().unwrap(),
                "255.255.255.254".parse().unwrap()
            )
        );
        let p = Pool {
            name: "all".into(),
            ranges: vec![all],
        };
        assert_eq!(p.size(), (1u64 << 32) - 2);
        assert!(host_matches("*", "anything") && host_matches("*", ""));
    }

    /// Every line of a profile file deleted in turn: the check never panics and any error
    /// names a line of the file.
    #[test]
    fn damaged_profile_files_report_lines_inside_the_file() {
        let text = "[control]\nsecret = \"s\"\n[[lns]]\nname = \"a\"\npeers = [\"10.0.0.0/8\"]\n\
host_names = [\"x*\"]\nhide_avps = true\nmax_sessions = 3\nppp_local = \"10.1.0.1\"\n\
ppp_auth = \"chap\"\nppp_users = { u = \"p\" }\nppp_dns = [\"10.1.0.53\"]\n[[lns.pool]]\n\
name = \"p\"\nranges = [\"10.1.0.0/24\"]\n[[lns]]\nname = \"b\"\n";
        assert!(crate::config::Config::check(std::path::Path::new("t"), text).is_ok());
        let lines: Vec<&str> = text.lines().collect();
        for skip in 0..lines.len() {
            let damaged: String = lines
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, l)| format!("{l}\n"))
                .collect();
            if let Err(e) = crate::config::Config::check(std::path::Path::new("t"), &damaged) {
                let l = e.line.unwrap_or(0);
                assert!(l >= 1 && l <= lines.len(), "without line {}: {e}", skip + 1);
            }
        }
    }

    #[test]
    fn key_lines_inside_a_table() {
        let text = "[[lns]]\nname = \"a\"\n\n[[lns]]\nname = \"b\"\nsecret = \"s\"\n[[lns.pool]]\nranges = []\n[api]\npeers = 1\n";
        let start = text.rfind("[[lns]]").unwrap();
        assert_eq!(key_line_in(text, start..start + 7, "secret"), 6);
        assert_eq!(key_line_in(text, start..start + 7, "ranges"), 8);
        assert_eq!(
            key_line_in(text, start..start + 7, "peers"),
            4,
            "not past the table"
        );
        assert_eq!(
            key_line_in(text, 0..7, "secret"),
            1,
            "not in the next [[lns]]"
        );
    }
}
