//! The tunnels that calls placed by RADIUS share (RFC 2868 §3.7): a call whose Access-Accept
//! names an LNS (Tunnel-Server-Endpoint), a Tunnel-Assignment-Id and a Tunnel-Password that
//! an established tunnel of the same version and transport already has joins that tunnel
//! with a session of its own instead of opening another; a different Assignment-Id (or
//! password) gets a tunnel of its own. The tunnel is closed when the last of its calls ends.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use ul2tp_control::{Encap, Version};

/// What makes two calls share a tunnel.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct TunnelKey {
    pub(crate) peer: SocketAddr,
    pub(crate) version: Version,
    pub(crate) encap: Encap,
    /// Tunnel-Assignment-Id (absent: all calls without one share).
    pub(crate) assignment_id: Option<String>,
    /// Tunnel-Password: the tunnel secret.
    pub(crate) secret: Option<String>,
}

impl std::fmt::Debug for TunnelKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelKey")
            .field("peer", &self.peer)
            .field("assignment_id", &self.assignment_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Shared {
    tid: u32,
    calls: usize,
}

/// The shared tunnels by key.
#[derive(Debug, Default)]
pub(crate) struct SharedTunnels(Mutex<HashMap<TunnelKey, Shared>>);

/// A call's place in a shared tunnel; dropping it leaves the tunnel.
#[derive(Debug)]
pub(crate) struct Member {
    tunnels: Arc<SharedTunnels>,
    tid: u32,
}

impl SharedTunnels {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<TunnelKey, Shared>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Join the tunnel of `key` when there is one that `alive` says is still up: its id.
    pub(crate) fn join(
        self: &Arc<Self>,
        key: &TunnelKey,
        alive: impl Fn(u32) -> bool,
    ) -> Option<Member> {
        let mut m = self.map();
        let s = m.get_mut(key)?;
        if !alive(s.tid) {
            m.remove(key);
            return None;
        }
        s.calls += 1;
        Some(Member {
            tunnels: self.clone(),
            tid: s.tid,
        })
    }

    /// Offer the new tunnel `tid` for `key` to later calls. `None` when another tunnel of the
    /// same key was registered meanwhile (then this one stays the call's own).
    pub(crate) fn register(self: &Arc<Self>, key: TunnelKey, tid: u32) -> Option<Member> {
        let mut m = self.map();
        if m.contains_key(&key) {
            return None;
        }
        m.insert(key, Shared { tid, calls: 1 });
        Some(Member {
            tunnels: self.clone(),
            tid,
        })
    }

    /// Whether calls other than one of its own use tunnel `tid`.
    pub(crate) fn others(&self, tid: u32) -> bool {
        self.map().values().any(|s| s.tid == tid && s.calls > 1)
    }

    /// How many calls use tunnel `tid` (0: not shared).
    #[cfg(test)]
    fn calls(&self, tid: u32) -> usize {
        self.map()
            .values()
            .find(|s| s.tid == tid)
            .map_or(0, |s| s.calls)
    }
}

impl Member {
    /// The tunnel id.
    pub(crate) fn tid(&self) -> u32 {
        self.tid
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let mut m = self.tunnels.map();
        m.retain(|_, s| {
            if s.tid == self.tid {
                s.calls = s.calls.saturating_sub(1);
            }
            s.calls > 0
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(assignment: &str) -> TunnelKey {
        TunnelKey {
            peer: "192.0.2.2:1701".parse().unwrap(),
            version: Version::V2,
            encap: Encap::Udp,
            assignment_id: Some(assignment.into()),
            secret: Some("s".into()),
        }
    }

    /// Same key: one tunnel, counted per call; another Assignment-Id: none to join; the
    /// entry goes with its last call, or when the tunnel is found gone.
    #[test]
    fn join_register_and_leave() {
        let t = Arc::new(SharedTunnels::default());
        assert!(t.join(&key("a"), |_| true).is_none());
        let first = t.register(key("a"), 7).unwrap();
        assert!(t.register(key("a"), 8).is_none(), "one tunnel per key");
        assert!(!t.others(7));
        let second = t.join(&key("a"), |_| true).unwrap();
        assert_eq!((second.tid(), t.calls(7)), (7, 2));
        assert!(t.others(7));
        assert!(t.join(&key("b"), |_| true).is_none());
        drop(first);
        assert_eq!(t.calls(7), 1);
        assert!(!t.others(7));
        drop(second);
        assert_eq!(t.calls(7), 0);
        assert!(t.join(&key("a"), |_| true).is_none());
        let _m = t.register(key("a"), 9).unwrap();
        assert!(t.join(&key("a"), |_| false).is_none(), "tunnel 9 is gone");
        assert!(t.register(key("a"), 10).is_some());
    }
}
