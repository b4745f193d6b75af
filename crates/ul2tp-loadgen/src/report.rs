//! What a run found, and its printed form: tunnels and sessions up, setup rate and latency
//! percentiles, ping figures, failures by cause.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct Report {
    pub tunnels_up: u32,
    pub tunnel_failures: BTreeMap<String, u32>,
    pub sessions_up: u32,
    pub session_failures: BTreeMap<String, u32>,
    pub latencies: Vec<Duration>,
    pub first_open: Option<Instant>,
    pub last_up: Option<Instant>,
    /// `--ping`: requests sent, replies received, their round-trip times (µs), sessions with
    /// replies missing.
    pub pings_sent: u64,
    pub pings_received: u64,
    pub rtts: Vec<u32>,
    pub ping_sessions: u32,
    /// L2TP data messages not for any PPP link we run (unknown session, or dropped by the data
    /// path's checks).
    pub data_dropped: u64,
}

fn percentile<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn percentiles(sorted: &[Duration]) -> String {
    format!(
        "p50 {} p90 {} p99 {} max {}",
        ms(percentile(sorted, 0.5)),
        ms(percentile(sorted, 0.9)),
        ms(percentile(sorted, 0.99)),
        ms(sorted.last().copied().unwrap_or_default())
    )
}

impl Report {
    /// A session's pings are over: add them up; one with replies missing is a failure.
    pub fn ping_done(&mut self, sent: u32, received: u32) {
        self.ping_sessions += 1;
        self.pings_sent += u64::from(sent);
        self.pings_received += u64::from(received);
        if received < sent {
            *self
                .session_failures
                .entry("ping replies missing".into())
                .or_default() += 1;
        }
    }

    pub fn failed(&self) -> bool {
        !self.tunnel_failures.is_empty() || !self.session_failures.is_empty()
    }

    /// `wanted`: tunnels and sessions asked for (LAC mode), `None` when we serve (LNS mode).
    pub fn print(&mut self, wanted: Option<(u32, u64)>) {
        self.latencies.sort();
        let of = |n: Option<String>| n.map(|n| format!(" of {n}")).unwrap_or_default();
        println!(
            "tunnels: {}{} up, {} failed",
            self.tunnels_up,
            of(wanted.map(|w| w.0.to_string())),
            self.tunnel_failures.values().sum::<u32>()
        );
        println!(
            "sessions: {}{} up, {} failed",
            self.sessions_up,
            of(wanted.map(|w| w.1.to_string())),
            self.session_failures.values().sum::<u32>()
        );
        if let (Some(a), Some(b)) = (self.first_open, self.last_up) {
            let secs = (b - a).as_secs_f64().max(1e-6);
            println!(
                "setup rate: {:.0} sessions/s ({} in {secs:.3} s)",
                f64::from(self.sessions_up) / secs,
                self.sessions_up
            );
        }
        if self.latencies.is_empty() {
            println!("setup latency: none measured");
        } else {
            println!("setup latency: {}", percentiles(&self.latencies));
        }
        if self.ping_sessions > 0 {
            self.rtts.sort_unstable();
            let lost = self.pings_sent - self.pings_received;
            println!(
                "ping: {} sent, {} received, {lost} lost ({:.1} %) in {} sessions",
                self.pings_sent,
                self.pings_received,
                lost as f64 * 100.0 / (self.pings_sent.max(1) as f64),
                self.ping_sessions
            );
            let rtts: Vec<Duration> = self
                .rtts
                .iter()
                .map(|us| Duration::from_micros(u64::from(*us)))
                .collect();
            if rtts.is_empty() {
                println!("ping rtt: no replies");
            } else {
                println!("ping rtt: {}", percentiles(&rtts));
            }
        }
        if self.data_dropped > 0 {
            println!("data messages dropped: {}", self.data_dropped);
        }
        for (cause, n) in &self.tunnel_failures {
            println!("tunnel failure: {n} x {cause}");
        }
        for (cause, n) in &self.session_failures {
            println!("session failure: {n} x {cause}");
        }
    }
}
