//! The IPv4 addresses of the LNS's PPP calls: which call holds which address, shared by the
//! control plane (it leases a pool address when a call comes up and releases it when the
//! call goes) and the calls' PPP tasks (RADIUS may move a call to another address: a
//! Framed-IP-Address, or a Framed-Pool naming another pool of the call's profile).
//!
//! Every address a call holds is in the set, the ones RADIUS assigned too, so a pool never
//! hands out an address RADIUS gave to another peer, and RADIUS cannot give one peer the
//! address another peer holds.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use crate::profile::{lower_free_hints, FreeHints, Pool};

/// Pool name shown for an address RADIUS assigned outside every pool of the profile.
pub const RADIUS_POOL: &str = "radius";

/// An address leased to a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lease {
    /// The pool (or [`RADIUS_POOL`]).
    pub(crate) pool: String,
    /// The address.
    pub(crate) addr: Ipv4Addr,
}

/// The leases of every call.
#[derive(Debug, Default)]
pub(crate) struct Leases {
    by_call: HashMap<(u32, u32), Lease>,
    /// Every leased address (pools of several profiles may overlap).
    used: HashSet<Ipv4Addr>,
    /// Where each pool range's search for a free address starts (`Pool::free`).
    low: FreeHints,
}

/// The table, shared by the control plane and the PPP tasks.
pub(crate) type SharedLeases = Arc<Mutex<Leases>>;

impl Leases {
    /// Calls holding an address.
    pub(crate) fn len(&self) -> usize {
        self.by_call.len()
    }

    /// Whether no call holds one.
    pub(crate) fn is_empty(&self) -> bool {
        self.by_call.is_empty()
    }

    /// The lease of `key`.
    pub(crate) fn get(&self, key: (u32, u32)) -> Option<&Lease> {
        self.by_call.get(&key)
    }

    /// The lowest free address of the first of `pools` that has one, leased to `key` (which
    /// gives up its previous address).
    pub(crate) fn lease(
        &mut self,
        key: (u32, u32),
        pools: &[Pool],
        local: Ipv4Addr,
    ) -> Option<Ipv4Addr> {
        let (pool, addr) = pools
            .iter()
            .find_map(|p| p.free(&self.used, local, &mut self.low).map(|a| (p, a)))?;
        self.set(key, pool.name.clone(), addr);
        Some(addr)
    }

    fn set(&mut self, key: (u32, u32), pool: String, addr: Ipv4Addr) {
        self.release(key);
        self.used.insert(addr);
        self.by_call.insert(key, Lease { pool, addr });
    }

    /// `key` holds no address any more.
    pub(crate) fn release(&mut self, key: (u32, u32)) {
        if let Some(l) = self.by_call.remove(&key) {
            self.used.remove(&l.addr);
            lower_free_hints(&mut self.low, l.addr);
        }
    }
}

impl CallLease {
    /// Why the call has no address, for the log and the CDN: the profile and, per pool,
    /// how many of its addresses are leased.
    pub(crate) fn exhausted_text(&self) -> String {
        let l = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        let pools: Vec<String> = self
            .pools
            .iter()
            .map(|p| {
                let leased = l.by_call.values().filter(|x| x.pool == p.name).count();
                format!("{} {leased} of {} leased", p.name, p.size())
            })
            .collect();
        format!(
            "no address left in the pools of profile {} ({})",
            self.profile,
            pools.join(", ")
        )
    }
}

/// What a call's PPP task needs to change its lease.
#[derive(Debug, Clone)]
pub(crate) struct CallLease {
    /// The table.
    pub(crate) leases: SharedLeases,
    /// The call.
    pub(crate) key: (u32, u32),
    /// The pools of its profile.
    pub(crate) pools: Vec<Pool>,
    /// Our address on its pppN.
    pub(crate) local: Ipv4Addr,
    /// Its profile's name (messages).
    pub(crate) profile: String,
}

impl CallLease {
    /// Apply what RADIUS said: a Framed-IP-Address (`addr`) is leased to the call unless
    /// another call holds it; otherwise a Framed-Pool (`pool`) names the profile's pool to
    /// take the address from (the call keeps its address when it is from that pool
    /// already). The call's (address, pool) afterwards, or why the login must fail.
    pub(crate) fn apply(
        &self,
        addr: Option<Ipv4Addr>,
        pool: Option<&str>,
    ) -> Result<Option<Lease>, String> {
        let mut l = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = addr {
            if a == self.local {
                return Err(format!(
                    "Framed-IP-Address {a} is our own address on the link"
                ));
            }
            if l.used.contains(&a) && l.get(self.key).map(|x| x.addr) != Some(a) {
                return Err(format!("Framed-IP-Address {a} is held by another session"));
            }
            let name = self
                .pools
                .iter()
                .find(|p| p.contains(a))
                .map_or(RADIUS_POOL, |p| p.name.as_str())
                .to_string();
            l.set(self.key, name, a);
            return Ok(l.get(self.key).cloned());
        }
        let Some(name) = pool else {
            return Ok(None);
        };
        let Some(p) = self.pools.iter().find(|p| p.name == name) else {
            return Err(format!(
                "Framed-Pool {name:?} is not a pool of profile {}",
                self.profile
            ));
        };
        if l.get(self.key).is_some_and(|x| x.pool == name) {
            return Ok(l.get(self.key).cloned());
        }
        let Leases { used, low, .. } = &mut *l;
        let Some(a) = p.free(used, self.local, low) else {
            return Err(format!("Framed-Pool {name:?} is exhausted"));
        };
        l.set(self.key, name.to_string(), a);
        Ok(l.get(self.key).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(name: &str, a: [u8; 4], b: [u8; 4]) -> Pool {
        Pool {
            name: name.into(),
            ranges: vec![(Ipv4Addr::from(a), Ipv4Addr::from(b))],
        }
    }

    fn call(leases: &SharedLeases, key: (u32, u32)) -> CallLease {
        CallLease {
            leases: leases.clone(),
            key,
            pools: vec![
                pool("main", [10, 0, 0, 1], [10, 0, 0, 3]),
                pool("gold", [10, 1, 0, 1], [10, 1, 0, 2]),
            ],
            local: Ipv4Addr::new(10, 0, 0, 1),
            profile: "p".into(),
        }
    }

    /// Leases stay lowest-free while the search starts where the last one ended: a released
    /// address is the next one given, in any order of release; a pool shared by two
    /// profiles with different own addresses gives each the addresses it may have.
    #[test]
    fn lowest_free_address_after_releases() {
        let mut t = Leases::default();
        let pools = [pool("big", [10, 2, 0, 1], [10, 2, 3, 254])];
        let local = Ipv4Addr::new(10, 2, 0, 1);
        for k in 0..1000u32 {
            let got = t.lease((1, k), &pools, local).unwrap();
            assert_eq!(u32::from(got), u32::from(Ipv4Addr::new(10, 2, 0, 2)) + k);
        }
        for k in [700u32, 5, 300] {
            t.release((1, k));
        }
        for k in [5u32, 300, 700, 1000] {
            let got = t.lease((2, k), &pools, local).unwrap();
            assert_eq!(u32::from(got), u32::from(Ipv4Addr::new(10, 2, 0, 2)) + k);
        }
        // Another profile's own address is 10.2.0.2: it gets 10.2.0.1, which ours skips.
        t.release((1, 0));
        let other = Ipv4Addr::new(10, 2, 0, 2);
        assert_eq!(
            t.lease((3, 0), &pools, other),
            Some(Ipv4Addr::new(10, 2, 0, 1))
        );
        assert_eq!(
            t.lease((3, 1), &pools, local),
            Some(Ipv4Addr::new(10, 2, 0, 2))
        );
    }

    /// The refusal text names the profile and how full each pool is.
    #[test]
    fn exhausted_text_names_the_pools() {
        let t = SharedLeases::default();
        let a = call(&t, (1, 1));
        for k in 1..=3 {
            t.lock().unwrap().lease((1, k), &a.pools, a.local);
        }
        assert_eq!(
            a.exhausted_text(),
            "no address left in the pools of profile p (main 2 of 3 leased, gold 1 of 2 leased)"
        );
    }

    /// RADIUS addresses are leased: the pool skips them, a second peer cannot get one, the
    /// call's pool address is given back; Framed-Pool moves the call to the named pool.
    #[test]
    fn radius_addresses_are_leased() {
        let t = SharedLeases::default();
        let (a, b) = (call(&t, (1, 1)), call(&t, (1, 2)));
        let first = t.lock().unwrap().lease(a.key, &a.pools, a.local);
        assert_eq!(first, Some(Ipv4Addr::new(10, 0, 0, 2)));
        // RADIUS gives call a 10.0.0.3 (in the pool): 10.0.0.2 is free again.
        let l = a
            .apply(Some(Ipv4Addr::new(10, 0, 0, 3)), None)
            .unwrap()
            .unwrap();
        assert_eq!(
            (l.addr, l.pool.as_str()),
            (Ipv4Addr::new(10, 0, 0, 3), "main")
        );
        let second = t.lock().unwrap().lease(b.key, &b.pools, b.local);
        assert_eq!(second, Some(Ipv4Addr::new(10, 0, 0, 2)));
        // Nor can RADIUS give 10.0.0.3 to b, nor our own address.
        assert!(b.apply(Some(Ipv4Addr::new(10, 0, 0, 3)), None).is_err());
        assert!(b.apply(Some(Ipv4Addr::new(10, 0, 0, 1)), None).is_err());
        // The same address again for a: fine.
        assert!(a.apply(Some(Ipv4Addr::new(10, 0, 0, 3)), None).is_ok());
        // Outside the pools.
        let l = b
            .apply(Some(Ipv4Addr::new(192, 0, 2, 9)), None)
            .unwrap()
            .unwrap();
        assert_eq!(l.pool, RADIUS_POOL);
        // Framed-Pool "gold": the first of it; unknown and exhausted pools fail.
        let l = b.apply(None, Some("gold")).unwrap().unwrap();
        assert_eq!(
            (l.addr, l.pool.as_str()),
            (Ipv4Addr::new(10, 1, 0, 1), "gold")
        );
        assert_eq!(b.apply(None, Some("gold")).unwrap().unwrap().addr, l.addr);
        assert!(a
            .apply(None, Some("nope"))
            .unwrap_err()
            .contains("not a pool"));
        a.apply(None, Some("gold")).unwrap();
        let c = call(&t, (1, 3));
        assert!(c
            .apply(None, Some("gold"))
            .unwrap_err()
            .contains("exhausted"));
        // Released: its address is free again.
        t.lock().unwrap().release(b.key);
        assert_eq!(c.apply(None, Some("gold")).unwrap().unwrap().addr, l.addr);
        assert_eq!(t.lock().unwrap().len(), 2);
        assert_eq!(a.apply(None, None), Ok(None));
    }
}
