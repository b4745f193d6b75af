//! The PPP link of one L2TPv2 session: the pure PPP engine (`ul2tp_ppp::Endpoint`) over the
//! session's data channel, whose L2TP header is written and read by `ul2tp_core` (the data
//! path ul2tpd runs), plus the session's pings (`--ping`). No task or buffer per session
//! beyond this struct: the run loop wakes a link only when its PPP timer or its next ping is
//! due (`next_wake`) or a frame arrives for it.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;

use ul2tp_ppp::{Endpoint, IpPacket};
use ul2tp_wire::Timestamp;

use crate::icmp;

/// Room in front of a frame for the L2TP header and FF 03 (`Session::encap`).
const HEADROOM: usize = 16;
/// ICMP data octets of each echo request (as ping's default).
const PING_SIZE: usize = 56;

/// The pings of one session.
pub struct Ping {
    /// Where to (`None`: the peer's IPCP address, known once IPCP is up).
    pub target: Option<Ipv4Addr>,
    /// How many to send, and the interval between them (µs).
    pub count: u32,
    pub interval_us: u64,
    /// How long to wait for the last reply (µs).
    pub wait_us: u64,
    next_at: Option<Timestamp>,
    pub sent: u32,
    pub received: u32,
    /// Sequence number and send time of the requests not answered yet.
    outstanding: Vec<(u16, Timestamp)>,
    last_sent: Timestamp,
}

impl Ping {
    pub fn new(target: Option<Ipv4Addr>, count: u32, interval_us: u64) -> Ping {
        Ping {
            target,
            count,
            interval_us,
            wait_us: interval_us.max(1_000_000),
            next_at: None,
            sent: 0,
            received: 0,
            outstanding: Vec::new(),
            last_sent: Timestamp::from_micros(0),
        }
    }

    /// Every request sent and answered, or the wait for the last reply is over.
    pub fn finished(&self, now: Timestamp) -> bool {
        self.sent == self.count
            && (self.outstanding.is_empty() || now.0 >= self.last_sent.0 + self.wait_us)
    }

    /// When pinging will be over at the latest (µs).
    pub fn done_by(&self, now: Timestamp) -> u64 {
        let left = u64::from(self.count - self.sent);
        match self.next_at {
            Some(n) if left > 0 => n.0.max(now.0) + (left - 1) * self.interval_us + self.wait_us,
            _ if self.finished(now) => now.0,
            _ => self.last_sent.0 + self.wait_us,
        }
    }
}

pub struct Link {
    pub ep: Endpoint,
    pub session: Arc<ul2tp_core::Session>,
    pub peer: SocketAddr,
    /// The peer refused our credentials (the cause when the call then goes).
    pub auth_rejected: bool,
    /// The peer failed to authenticate to us (LNS mode).
    pub auth_failed: bool,
    /// Our and the peer's IPCP addresses once IPCP is up.
    pub addrs: Option<(Ipv4Addr, Ipv4Addr)>,
    /// The address handed to the peer from the pool (LNS mode), to give back.
    pub pool_addr: Option<Ipv4Addr>,
    pub ping: Option<Ping>,
    /// The wake-up time queued for this link in the run loop's timer heap.
    pub scheduled: Option<u64>,
    /// LCP opened (LNS mode: on the peer's first frame, as ul2tpd's LNS does, since a
    /// LAC's PPP may not listen yet when its session comes up).
    pub opened: bool,
}

impl Link {
    pub fn new(ep: Endpoint, session: Arc<ul2tp_core::Session>, peer: SocketAddr) -> Link {
        Link {
            ep,
            session,
            peer,
            auth_rejected: false,
            auth_failed: false,
            addrs: None,
            pool_addr: None,
            ping: None,
            scheduled: None,
            opened: false,
        }
    }

    /// When the link next needs a `wake` (PPP timer or ping), µs.
    pub fn next_wake(&self, now: Timestamp) -> Option<u64> {
        let ppp = self.ep.poll_timeout().map(|t| t.0);
        let ping = self.ping.as_ref().and_then(|p| {
            if self.addrs.is_none() || p.finished(now) {
                None
            } else if p.sent < p.count {
                p.next_at.map(|t| t.0)
            } else {
                Some(p.last_sent.0 + p.wait_us)
            }
        });
        ppp.into_iter().chain(ping).min()
    }

    /// PPP timers, then the pings that are due.
    pub fn wake(&mut self, now: Timestamp) {
        self.ep.handle_timeout(now);
        let (Some((local, peer)), Some(p)) = (self.addrs, self.ping.as_mut()) else {
            return;
        };
        let dst = p.target.unwrap_or(peer);
        let id = self.session.session_id() as u16;
        while p.sent < p.count && p.next_at.is_some_and(|t| t.0 <= now.0) {
            let seq = p.sent as u16;
            if self
                .ep
                .send_ip(&icmp::echo_request(local, dst, id, seq, PING_SIZE))
                .is_err()
            {
                break;
            }
            p.sent += 1;
            p.outstanding.push((seq, now));
            p.last_sent = now;
            p.next_at = p
                .next_at
                .map(|t| Timestamp::from_micros(t.0 + p.interval_us));
        }
    }

    /// IPCP is up with these addresses: the pings start.
    pub fn network_up(&mut self, now: Timestamp, local: Ipv4Addr, peer: Ipv4Addr) {
        self.addrs = Some((local, peer));
        if let Some(p) = self.ping.as_mut() {
            p.next_at = Some(now);
        }
    }

    /// Send what the engine queued (as L2TP data messages, header by `ul2tp_core`), answer
    /// echo requests to our address and match echo replies; the replies' round-trip times go
    /// to `rtts` (µs).
    pub fn flush(&mut self, sock: &UdpSocket, now: Timestamp, rtts: &mut Vec<u32>) {
        loop {
            while let Some(f) = self.ep.poll_transmit() {
                if crate::debug() {
                    eprintln!("{} tx {:02x?}", now.0, &f[..f.len().min(6)]);
                }
                let mut buf = vec![0u8; HEADROOM + f.len()];
                buf[HEADROOM..].copy_from_slice(&f);
                if let Some((start, end)) = self.session.encap(&mut buf, HEADROOM, f.len()) {
                    let ok = sock.send_to(&buf[start..end], self.peer).is_ok();
                    self.session.tx_done(end - start, ok);
                }
            }
            let mut replied = false;
            while let Some(p) = self.ep.poll_ip() {
                let IpPacket::V4(p) = p else { continue };
                let Some((local, _)) = self.addrs else {
                    continue;
                };
                if let Some(r) = icmp::reply_to(&p, local) {
                    replied |= self.ep.send_ip(&r).is_ok();
                    continue;
                }
                let (Some(e), Some(ping)) = (icmp::parse(&p), self.ping.as_mut()) else {
                    continue;
                };
                let ours = !e.request && e.dst == local && e.id == self.session.session_id() as u16;
                if let Some(i) = ping
                    .outstanding
                    .iter()
                    .position(|(s, _)| ours && *s == e.seq)
                {
                    let (_, at) = ping.outstanding.swap_remove(i);
                    ping.received += 1;
                    rtts.push(u32::try_from(now.0.saturating_sub(at.0)).unwrap_or(u32::MAX));
                }
            }
            if !replied {
                return;
            }
        }
    }
}
