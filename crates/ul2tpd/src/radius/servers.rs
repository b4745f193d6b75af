//! Which RADIUS server a request goes to: `server_selection` "failover" (the list in order)
//! or "round-robin" (each request starts at the next server of the list), a server that did
//! not answer skipped for `dead_time` (tried last meanwhile, so a request still goes out when
//! every server is held down), and each server's counters for /metrics.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// `[radius] server_selection`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Selection {
    /// The servers in the order of `server`: the first that answers.
    #[default]
    Failover,
    /// Request n starts at server n mod len, then the next ones.
    RoundRobin,
}

/// One server's counters (its requests, whatever the port).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Requests sent to it (first transmissions to this server).
    pub requests: u64,
    /// Requests it did not answer (after every retry).
    pub timeouts: u64,
}

#[derive(Debug, Default)]
struct State {
    /// Held down until then: asked only after the servers that are not.
    dead_until: Option<Instant>,
    stats: ServerStats,
}

/// The servers' state, kept across reloads (by address).
#[derive(Debug, Default)]
pub struct Servers {
    next: AtomicUsize,
    state: Mutex<BTreeMap<IpAddr, State>>,
}

impl Servers {
    /// The order to ask `list` in for one request, at `now`.
    pub fn order(&self, list: &[IpAddr], selection: Selection, now: Instant) -> Vec<IpAddr> {
        let mut order = list.to_vec();
        if selection == Selection::RoundRobin && !order.is_empty() {
            let n = self.next.fetch_add(1, Relaxed) % order.len();
            order.rotate_left(n);
        }
        let Ok(state) = self.state.lock() else {
            return order;
        };
        let held = |a: &IpAddr| state.get(a).and_then(|s| s.dead_until).filter(|t| *t > now);
        // Stable: the servers up keep their order, then the held ones, soonest back first.
        order.sort_by_key(|a| held(a).map_or((0, None), |t| (1, Some(t))));
        order
    }

    /// A request goes to `server` (its first transmission there).
    pub fn sent(&self, server: IpAddr) {
        if let Ok(mut m) = self.state.lock() {
            m.entry(server).or_default().stats.requests += 1;
        }
    }

    /// `server` answered: it is up again.
    pub fn answered(&self, server: IpAddr) {
        if let Ok(mut m) = self.state.lock() {
            m.entry(server).or_default().dead_until = None;
        }
    }

    /// `server` did not answer: held down for `dead_time` from `now` (0: never held).
    /// Returns whether it was up before (for the log).
    pub fn failed(&self, server: IpAddr, dead_time: Duration, now: Instant) -> bool {
        let Ok(mut m) = self.state.lock() else {
            return false;
        };
        let s = m.entry(server).or_default();
        s.stats.timeouts += 1;
        let was_up = s.dead_until.is_none_or(|t| t <= now);
        s.dead_until = (!dead_time.is_zero()).then(|| now + dead_time);
        was_up
    }

    /// Every server asked so far, with its counters.
    pub fn stats(&self) -> Vec<(IpAddr, ServerStats)> {
        self.state
            .lock()
            .map(|m| m.iter().map(|(a, s)| (*a, s.stats)).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(v: &[&str]) -> Vec<IpAddr> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    /// Fail-over keeps the order; round robin rotates it per request; a server that did not
    /// answer goes last until its dead time is over or it answers.
    #[test]
    fn order_rotation_and_hold_down() {
        let list = ips(&["192.0.2.1", "192.0.2.2", "192.0.2.3"]);
        let s = Servers::default();
        let t0 = Instant::now();
        assert_eq!(s.order(&list, Selection::Failover, t0), list);
        let firsts: Vec<IpAddr> = (0..4)
            .map(|_| s.order(&list, Selection::RoundRobin, t0)[0])
            .collect();
        assert_eq!(
            firsts,
            ips(&["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.1"])
        );
        let dead = Duration::from_secs(30);
        assert!(s.failed(list[0], dead, t0));
        assert!(!s.failed(list[0], dead, t0), "already held down");
        assert_eq!(
            s.order(&list, Selection::Failover, t0),
            ips(&["192.0.2.2", "192.0.2.3", "192.0.2.1"])
        );
        // Back after the dead time, or as soon as it answers.
        assert_eq!(s.order(&list, Selection::Failover, t0 + dead), list);
        s.failed(list[1], dead, t0);
        s.answered(list[1]);
        assert_eq!(
            s.order(&list, Selection::Failover, t0),
            ips(&["192.0.2.2", "192.0.2.3", "192.0.2.1"])
        );
        // dead_time 0: never held down.
        s.failed(list[2], Duration::ZERO, t0);
        assert_eq!(s.order(&list, Selection::Failover, t0)[1], list[2]);
        s.sent(list[0]);
        let st: BTreeMap<IpAddr, ServerStats> = s.stats().into_iter().collect();
        assert_eq!(
            st[&list[0]],
            ServerStats {
                requests: 1,
                timeouts: 2
            }
        );
    }
}
