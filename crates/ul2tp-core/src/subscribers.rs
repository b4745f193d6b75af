//! The address table of a shared PPP device (`ppp_device = "shared"`): which session an IP
//! packet read from the one TUN of many PPP sessions goes to, and whether a packet a session
//! sends may leave with its source address (anti-spoofing).
//!
//! Subscriber addresses (IPv4 /32) are one sharded hash map (`ShardedMap`: O(1), a read lock
//! on one shard per lookup). Prefixes (RADIUS Framed-Route, IPv6 /64s and delegated prefixes)
//! are one hash map per prefix length, probed from the longest length present: a lookup costs
//! one probe per distinct length in use (a handful), whatever the number of sessions.
//!
//! An entry carries the owner's `id` so that a session that goes away removes its own entries
//! only, never those of a newer session that got the same address in the meantime.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::RwLock;

use crate::sharded::{FxBuildHasher, ShardedMap};

/// One entry: the owner's unique id and what the caller keeps for it (a sender, ...).
#[derive(Debug, Clone)]
struct Entry<V> {
    id: u64,
    value: V,
}

/// Prefixes of one family, by length: (length, network as u128) -> entry.
type PrefixMaps<V> = BTreeMap<u8, HashMap<u128, Entry<V>, FxBuildHasher>>;

/// The table of a shared device.
pub struct SubscriberTable<V> {
    hosts: ShardedMap<Ipv4Addr, Entry<V>>,
    prefixes: RwLock<PrefixMaps<V>>,
}

impl<V: Clone> Default for SubscriberTable<V> {
    fn default() -> Self {
        SubscriberTable {
            hosts: ShardedMap::new(),
            prefixes: RwLock::default(),
        }
    }
}

impl<V> std::fmt::Debug for SubscriberTable<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriberTable").finish_non_exhaustive()
    }
}

/// Prefix-map key of an address: v4 in the low 32 bits with lengths 0..=32 stored as
/// 200 + len, so that the two families never share a length slot.
fn key(addr: IpAddr, len: u8) -> Option<(u8, u128)> {
    match addr {
        IpAddr::V4(a) if len <= 32 => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            Some((200 + len, u128::from(u32::from(a) & mask)))
        }
        IpAddr::V6(a) if len <= 128 => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            Some((len, u128::from(a) & mask))
        }
        _ => None,
    }
}

impl<V: Clone> SubscriberTable<V> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// `addr` (IPv4) belongs to `id`. Returns false (and changes nothing) when another owner
    /// holds it.
    pub fn insert_host(&self, addr: Ipv4Addr, id: u64, value: V) -> bool {
        let mut ok = true;
        self.hosts.update(addr, |old| match old {
            Some(e) if e.id != id => {
                ok = false;
                Some(e.clone())
            }
            _ => Some(Entry { id, value }),
        });
        ok
    }

    /// `addr/len` belongs to `id` (`len` 0..=32 for IPv4, 0..=128 for IPv6). Returns false
    /// (and changes nothing) for a bad length or a prefix another owner holds.
    pub fn insert_prefix(&self, addr: IpAddr, len: u8, id: u64, value: V) -> bool {
        let Some((slot, net)) = key(addr, len) else {
            return false;
        };
        let mut p = self.prefixes.write().unwrap_or_else(|e| e.into_inner());
        let m = p.entry(slot).or_default();
        match m.get(&net) {
            Some(e) if e.id != id => false,
            _ => {
                m.insert(net, Entry { id, value });
                true
            }
        }
    }

    /// Remove `addr` if `id` holds it.
    pub fn remove_host(&self, addr: Ipv4Addr, id: u64) {
        self.hosts
            .update(addr, |old| old.filter(|e| e.id != id).cloned());
    }

    /// Remove `addr/len` if `id` holds it.
    pub fn remove_prefix(&self, addr: IpAddr, len: u8, id: u64) {
        let Some((slot, net)) = key(addr, len) else {
            return;
        };
        let mut p = self.prefixes.write().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = p.get_mut(&slot) {
            if m.get(&net).is_some_and(|e| e.id == id) {
                m.remove(&net);
            }
            if m.is_empty() {
                p.remove(&slot);
            }
        }
    }

    /// The owner of `addr` (the host entry, else the longest prefix): (id, value).
    pub fn lookup(&self, addr: IpAddr) -> Option<(u64, V)> {
        if let IpAddr::V4(a) = addr {
            if let Some(e) = self.hosts.get(&a) {
                return Some((e.id, e.value));
            }
        }
        let (lo, hi) = match addr {
            IpAddr::V4(_) => (200, 232),
            IpAddr::V6(_) => (0, 128),
        };
        let p = self.prefixes.read().unwrap_or_else(|e| e.into_inner());
        for (&slot, m) in p.range(lo..=hi).rev() {
            let len = if lo == 200 { slot - 200 } else { slot };
            let (_, net) = key(addr, len)?;
            if let Some(e) = m.get(&net) {
                return Some((e.id, e.value.clone()));
            }
        }
        None
    }

    /// Whether a packet from session `id` may carry the source `src`: the address or prefix
    /// that routes to the session must be the session's own (anti-spoofing, as the reverse
    /// path check of a router).
    pub fn source_ok(&self, id: u64, src: IpAddr) -> bool {
        self.lookup(src).is_some_and(|(owner, _)| owner == id)
    }

    /// Host entries (locks each shard in turn).
    pub fn hosts(&self) -> usize {
        self.hosts.len()
    }

    /// Prefix entries.
    pub fn prefixes(&self) -> usize {
        let p = self.prefixes.read().unwrap_or_else(|e| e.into_inner());
        p.values().map(HashMap::len).sum()
    }
}

/// Source and destination of an IP packet (v4 or v6 by its version nibble); `None` for
/// anything too short or of another version.
pub fn ip_addrs(packet: &[u8]) -> Option<(IpAddr, IpAddr)> {
    match packet.first()? >> 4 {
        4 if packet.len() >= 20 => {
            let a =
                |o: usize| Ipv4Addr::new(packet[o], packet[o + 1], packet[o + 2], packet[o + 3]);
            Some((IpAddr::V4(a(12)), IpAddr::V4(a(16))))
        }
        6 if packet.len() >= 40 => {
            let a = |o: usize| {
                let mut b = [0u8; 16];
                b.copy_from_slice(&packet[o..o + 16]);
                IpAddr::from(b)
            };
            Some((a(8), a(24)))
        }
        _ => None,
    }
}

/// The fewest prefixes that cover the inclusive range `first..=last` exactly (an address
/// pool "FIRST-LAST" as routes); empty when `first > last`.
pub fn range_prefixes(first: Ipv4Addr, last: Ipv4Addr) -> Vec<(Ipv4Addr, u8)> {
    let (mut a, b) = (u64::from(u32::from(first)), u64::from(u32::from(last)));
    let mut out = Vec::new();
    while a <= b {
        // The largest aligned block that starts at `a` and ends by `b`.
        let mut size = if a == 0 {
            1u64 << 32
        } else {
            a & a.wrapping_neg()
        };
        while a + size - 1 > b {
            size >>= 1;
        }
        out.push((Ipv4Addr::from(a as u32), 32 - size.trailing_zeros() as u8));
        a += size;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn hosts_route_to_their_owner_and_only_the_owner_removes_them() {
        let t = SubscriberTable::<&str>::new();
        let a: Ipv4Addr = "10.0.0.2".parse().unwrap();
        assert!(t.insert_host(a, 1, "one"));
        assert!(!t.insert_host(a, 2, "two"), "held by 1");
        assert_eq!(t.lookup(IpAddr::V4(a)), Some((1, "one")));
        assert_eq!(t.lookup(v4("10.0.0.3")), None);
        t.remove_host(a, 2);
        assert_eq!(t.lookup(IpAddr::V4(a)).map(|x| x.0), Some(1), "not 2's");
        t.remove_host(a, 1);
        assert_eq!(t.lookup(IpAddr::V4(a)), None);
        assert!(t.insert_host(a, 2, "two"), "free again");
        assert_eq!(t.hosts(), 1);
    }

    #[test]
    fn longest_prefix_wins_and_families_stay_apart() {
        let t = SubscriberTable::<u8>::new();
        assert!(t.insert_prefix(v4("192.0.2.0"), 24, 1, 1));
        assert!(t.insert_prefix(v4("192.0.2.128"), 25, 2, 2));
        assert!(t.insert_host("192.0.2.200".parse().unwrap(), 3, 3));
        assert!(t.insert_prefix(v4("2001:db8:1::"), 48, 4, 4));
        assert!(t.insert_prefix(v4("2001:db8:1:2::"), 64, 5, 5));
        assert!(!t.insert_prefix(v4("10.0.0.0"), 33, 6, 6), "bad length");
        assert_eq!(t.lookup(v4("192.0.2.7")).map(|x| x.0), Some(1));
        assert_eq!(t.lookup(v4("192.0.2.130")).map(|x| x.0), Some(2));
        assert_eq!(t.lookup(v4("192.0.2.200")).map(|x| x.0), Some(3));
        assert_eq!(t.lookup(v4("192.0.3.1")), None);
        assert_eq!(t.lookup(v4("2001:db8:1:2::9")).map(|x| x.0), Some(5));
        assert_eq!(t.lookup(v4("2001:db8:1:3::9")).map(|x| x.0), Some(4));
        // An IPv4 address whose bits match an IPv6 prefix slot is not found there.
        assert_eq!(t.lookup(v4("::c000:207")), None);
        t.remove_prefix(v4("192.0.2.128"), 25, 2);
        assert_eq!(t.lookup(v4("192.0.2.130")).map(|x| x.0), Some(1));
        assert_eq!(t.prefixes(), 3);
    }

    #[test]
    fn a_source_must_belong_to_the_sender() {
        let t = SubscriberTable::<()>::new();
        t.insert_host("10.0.0.2".parse().unwrap(), 1, ());
        t.insert_host("10.0.0.3".parse().unwrap(), 2, ());
        t.insert_prefix(v4("198.51.100.0"), 24, 1, ());
        assert!(t.source_ok(1, v4("10.0.0.2")));
        assert!(t.source_ok(1, v4("198.51.100.9")), "its Framed-Route");
        assert!(!t.source_ok(1, v4("10.0.0.3")), "another subscriber's");
        assert!(!t.source_ok(1, v4("10.0.0.4")), "nobody's");
        assert!(!t.source_ok(2, v4("198.51.100.9")));
    }

    #[test]
    fn packet_addresses() {
        let mut p = vec![0u8; 20];
        p[0] = 0x45;
        p[12..16].copy_from_slice(&[10, 0, 0, 2]);
        p[16..20].copy_from_slice(&[10, 0, 0, 1]);
        assert_eq!(ip_addrs(&p), Some((v4("10.0.0.2"), v4("10.0.0.1"))));
        assert_eq!(ip_addrs(&p[..19]), None);
        let mut q = vec![0u8; 40];
        q[0] = 0x60;
        q[8..24].copy_from_slice(
            &"2001:db8::1"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
        );
        q[24..40].copy_from_slice(
            &"2001:db8::2"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
        );
        assert_eq!(ip_addrs(&q), Some((v4("2001:db8::1"), v4("2001:db8::2"))));
        assert_eq!(ip_addrs(&[0x50; 40]), None);
        assert_eq!(ip_addrs(&[]), None);
    }

    #[test]
    fn ranges_become_the_fewest_prefixes() {
        let r = |a: &str, b: &str| range_prefixes(a.parse().unwrap(), b.parse().unwrap());
        let s = |v: Vec<(Ipv4Addr, u8)>| {
            v.iter()
                .map(|(a, l)| format!("{a}/{l}"))
                .collect::<Vec<_>>()
        };
        assert_eq!(s(r("10.0.0.0", "10.0.255.255")), ["10.0.0.0/16"]);
        assert_eq!(
            s(r("10.0.0.2", "10.0.0.9")),
            ["10.0.0.2/31", "10.0.0.4/30", "10.0.0.8/31"]
        );
        assert_eq!(s(r("10.0.0.5", "10.0.0.5")), ["10.0.0.5/32"]);
        assert_eq!(s(r("0.0.0.0", "255.255.255.255")), ["0.0.0.0/0"]);
        assert!(r("10.0.0.9", "10.0.0.2").is_empty());
        // Every address of a range is covered once, nothing outside.
        let v = r("10.1.2.3", "10.1.9.200");
        let total: u64 = v.iter().map(|(_, l)| 1u64 << (32 - l)).sum();
        assert_eq!(
            total,
            u64::from(
                u32::from(Ipv4Addr::new(10, 1, 9, 200)) - u32::from(Ipv4Addr::new(10, 1, 2, 3))
            ) + 1
        );
    }
}
