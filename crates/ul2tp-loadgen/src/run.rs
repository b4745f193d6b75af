//! The run loop of both modes: one UDP socket, the control engine, the data path of
//! `ul2tp_core` (a `Registry` holding the tunnels and the PPP sessions, for their headers,
//! sequence numbers and receive checks) and one PPP link per PPP session, woken from a timer
//! heap only when due. LAC mode opens the tunnels and sessions at the rate asked for, holds
//! and clears them; LNS mode accepts what LACs open and runs the PPP server side with an
//! address pool. Both end with every tunnel closed (StopCCN).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::net::{Ipv4Addr, UdpSocket};
use std::time::{Duration, Instant};

use ul2tp_control::{
    CdnResult, Config, DownReason, Encap, Endpoint, Event, SessionConfig, SessionInfo,
    StopCcnResult, Timestamp,
};
use ul2tp_core::{Registry, RxOutcome, SessionParams, SocketId, TunnelParams};

use crate::link::{Link, Ping};
use crate::report::Report;
use crate::{Args, Mode};

/// (our tunnel id, our session id).
type Key = (u32, u32);

/// The one socket's id in the data-path registry.
const SOCKET: SocketId = SocketId(1);
/// After the StopCCNs at the end, how long to wait for the tunnels to go.
const CLOSE_GRACE: Duration = Duration::from_secs(3);

/// LNS mode's credentials: every name the `--user` pattern matches has the one password.
struct Pattern {
    user: String,
    password: Vec<u8>,
}

impl ul2tp_ppp::Credentials for Pattern {
    fn secret(&self, peer_name: &[u8]) -> Option<Vec<u8>> {
        let name = std::str::from_utf8(peer_name).ok()?;
        let ok = match self.user.split_once("%d") {
            None => name == self.user,
            Some((pre, post)) => name
                .strip_prefix(pre)
                .and_then(|n| n.strip_suffix(post))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
        };
        ok.then(|| self.password.clone())
    }
}

struct Run<'a> {
    a: &'a Args,
    sock: UdpSocket,
    ep: Endpoint,
    cfg: Config,
    registry: Registry,
    start: Instant,
    rep: Report,
    opened: u64,
    total: u64,
    /// Sessions not up yet: LAC mode from their ICRQ, LNS mode from the L2TP session's up.
    pending: HashMap<Key, Instant>,
    /// When to clear a held session (µs).
    clear_at: BTreeMap<u64, Vec<Key>>,
    /// Up and not cleared by us yet: a CDN for one of these is a failure (LAC mode).
    held: HashSet<Key>,
    resolved: u64,
    /// Tunnels not down yet (LAC mode: of those we opened; LNS mode: of those up).
    live: u32,
    /// LNS mode: tunnels that came up and went.
    gone: u32,
    closing: Option<Instant>,
    links: HashMap<Key, Link>,
    timers: BinaryHeap<Reverse<(u64, Key)>>,
    session_index: HashMap<Key, u64>,
    /// LNS mode: the free addresses of the pool (handed out from the end).
    pool: Vec<Ipv4Addr>,
}

/// The receive buffer asked for the load generator's socket (the kernel reports twice this).
const SOCKET_RECEIVE_BUFFER: usize = 16 << 20;

pub fn run(a: &Args) -> Result<Report, String> {
    let sock = UdpSocket::bind(a.local).map_err(|e| format!("bind {}: {e}", a.local))?;
    // One socket carries every tunnel: at tens of thousands of calls the bursts of control
    // messages and PPP frames overflow the default 208 KiB receive buffer, and each lost
    // message then waits for a retransmission timeout. As root (SO_RCVBUFFORCE) the buffer
    // may exceed net.core.rmem_max.
    {
        use std::os::fd::AsFd;
        let _ = ul2tp_sys::set_recv_buffer(sock.as_fd(), SOCKET_RECEIVE_BUFFER);
    }
    let cfg = Config {
        version: a.version,
        host_name: "ul2tp-loadgen".into(),
        ..Config::default()
    };
    let mut pool = a.ppp.as_ref().map(|p| p.pool.clone()).unwrap_or_default();
    pool.reverse();
    let mut r = Run {
        a,
        sock,
        ep: Endpoint::new(cfg.clone(), Encap::Udp, seed()?),
        cfg,
        registry: Registry::new(),
        start: Instant::now(),
        rep: Report::default(),
        opened: 0,
        total: u64::from(a.tunnels) * u64::from(a.sessions),
        pending: HashMap::new(),
        clear_at: BTreeMap::new(),
        held: HashSet::new(),
        resolved: 0,
        live: 0,
        gone: 0,
        closing: None,
        links: HashMap::new(),
        timers: BinaryHeap::new(),
        session_index: HashMap::new(),
        pool,
    };
    r.main_loop()?;
    for (_, l) in std::mem::take(&mut r.links) {
        if let Some(p) = &l.ping {
            r.rep.ping_done(p.sent, p.received);
        }
    }
    Ok(r.rep)
}

fn seed() -> Result<[u8; 32], String> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("no randomness from the OS: {e}"))?;
    Ok(seed)
}

/// Why a PPP link that never reached IPCP up failed.
fn ppp_cause(l: &Link, reason: ul2tp_ppp::DownReason) -> String {
    use ul2tp_ppp::DownReason as R;
    match reason {
        _ if l.auth_rejected => "PPP authentication rejected".into(),
        _ if l.auth_failed => "PPP authentication of the peer failed".into(),
        R::AuthFailed => "PPP authentication failed".into(),
        R::NegotiationFailed => "PPP LCP timeout (negotiation failed)".into(),
        other => format!("PPP down before IPCP up: {other:?}"),
    }
}

impl Run<'_> {
    fn now(&self) -> Timestamp {
        Timestamp::from_micros(u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX))
    }

    fn fail(&mut self, cause: String) {
        *self.rep.session_failures.entry(cause).or_default() += 1;
    }

    fn main_loop(&mut self) -> Result<(), String> {
        let a = self.a;
        if a.mode == Mode::Lac {
            for _ in 0..a.tunnels {
                let now = self.now();
                self.ep
                    .connect(now, a.peer, self.cfg.clone())
                    .map_err(|e| format!("connect: {e}"))?;
            }
            self.live = a.tunnels;
        }
        let deadline = self.start + a.timeout;
        let mut buf = vec![0u8; 65536];
        loop {
            if a.mode == Mode::Lac {
                self.open_due();
            }
            self.clear_due();
            let lac_done = a.mode == Mode::Lac && self.resolved >= self.total;
            if self.closing.is_none() && lac_done && self.clear_at.is_empty() {
                self.close_all();
            }
            let lns_done = a.mode == Mode::Lns && a.tunnels_given && self.gone >= a.tunnels;
            if lns_done && self.live == 0 {
                return Ok(());
            }
            if self.closing.is_none() && Instant::now() > deadline {
                let keys: Vec<Key> = self.pending.keys().copied().collect();
                for key in keys {
                    let cause = match self.links.get(&key) {
                        Some(l) if l.ep.phase() == ul2tp_ppp::Phase::Establish => {
                            "PPP LCP timeout (not up in time)".to_string()
                        }
                        Some(l) => format!("timeout in PPP phase {:?}", l.ep.phase()),
                        None => "timeout (not up in time)".into(),
                    };
                    self.fail(cause);
                }
                self.pending.clear();
                self.close_all();
            }
            self.send_control();
            self.events()?;
            if let Some(t) = self.closing {
                if self.live == 0 || t.elapsed() > CLOSE_GRACE {
                    self.send_control();
                    return Ok(());
                }
            }
            self.wake_links();
            self.receive(&mut buf)?;
            let now = self.now();
            self.ep.handle_timeout(now);
        }
    }

    /// LAC mode: the sessions due by the rate, round-robin over the tunnels that are up.
    fn open_due(&mut self) {
        let a = self.a;
        let tunnels = self.ep.tunnel_ids();
        while self.opened < self.total
            && self.start + Duration::from_secs_f64(self.opened as f64 / a.rate) <= Instant::now()
        {
            if tunnels.is_empty() {
                self.fail("open: no tunnel left".into());
                self.resolved += 1;
                self.opened += 1;
                continue;
            }
            let tid = tunnels[(self.opened % tunnels.len() as u64) as usize];
            // Ethernet pseudowires in v3; the engine makes v2 sessions PPP.
            let now = self.now();
            match self.ep.open_session(now, tid, SessionConfig::default()) {
                Ok(sid) => {
                    self.pending.insert((tid, sid), Instant::now());
                    self.session_index.insert((tid, sid), self.opened);
                    self.rep.first_open.get_or_insert_with(Instant::now);
                }
                Err(e) => {
                    self.fail(format!("open: {e}"));
                    self.resolved += 1;
                }
            }
            self.opened += 1;
        }
    }

    /// Calls held long enough (and done pinging) are cleared with a CDN.
    fn clear_due(&mut self) {
        let now = self.now();
        let due: Vec<u64> = self.clear_at.range(..=now.0).map(|(k, _)| *k).collect();
        for k in due {
            for key in self.clear_at.remove(&k).unwrap_or_default() {
                if !self.held.contains(&key) {
                    continue;
                }
                let ping = self.links.get(&key).and_then(|l| l.ping.as_ref());
                if let Some(p) = ping.filter(|p| !p.finished(now)) {
                    let at = p.done_by(now).max(now.0 + 1);
                    self.clear_at.entry(at).or_default().push(key);
                    continue;
                }
                self.held.remove(&key);
                let _ = self
                    .ep
                    .close_session(now, key.0, key.1, CdnResult::Administrative);
            }
        }
    }

    fn close_all(&mut self) {
        self.closing = Some(Instant::now());
        let now = self.now();
        for tid in self.ep.tunnel_ids() {
            let _ = self
                .ep
                .close_tunnel(now, tid, StopCcnResult::GeneralRequest);
        }
    }

    fn send_control(&mut self) {
        while let Some(tx) = self.ep.poll_transmit() {
            let _ = self.sock.send_to(&tx.bytes, tx.dst);
        }
    }

    fn up(&mut self, key: Key) {
        let Some(t0) = self.pending.remove(&key) else {
            return;
        };
        let up = Instant::now();
        self.rep.latencies.push(up - t0);
        self.rep.sessions_up += 1;
        self.rep.last_up = Some(up);
        self.resolved += 1;
        if self.a.mode == Mode::Lac {
            let at = self.now().0 + u64::try_from(self.a.hold.as_micros()).unwrap_or(u64::MAX);
            self.clear_at.entry(at).or_default().push(key);
            self.held.insert(key);
        }
    }

    fn events(&mut self) -> Result<(), String> {
        while let Some(ev) = self.ep.poll_event() {
            if crate::debug() {
                eprintln!("{ev:?}");
            }
            match ev {
                Event::TunnelUp(info) => {
                    self.rep.tunnels_up += 1;
                    if self.a.mode == Mode::Lns {
                        self.live += 1;
                    }
                    let _ = self.registry.tunnel_create(TunnelParams {
                        tunnel_id: info.tunnel_id,
                        peer_tunnel_id: info.peer_tunnel_id,
                        version: info.version,
                        encap: Encap::Udp,
                        socket: SOCKET,
                    });
                }
                Event::TunnelDown {
                    tunnel_id,
                    reason,
                    was_up,
                    ..
                } => {
                    if self.a.mode == Mode::Lac || was_up {
                        self.live = self.live.saturating_sub(1);
                    }
                    if was_up {
                        self.gone += 1;
                    } else {
                        *self
                            .rep
                            .tunnel_failures
                            .entry(format!("{reason:?}"))
                            .or_default() += 1;
                    }
                    let _ = self.registry.tunnel_delete(tunnel_id);
                }
                Event::SessionUp(info) => self.session_up(&info)?,
                Event::SessionDown {
                    tunnel_id,
                    session_id,
                    reason,
                    was_up,
                    ..
                } => self.session_down((tunnel_id, session_id), reason, was_up),
                _ => {}
            }
        }
        Ok(())
    }

    fn session_up(&mut self, info: &SessionInfo) -> Result<(), String> {
        let key = (info.tunnel_id, info.session_id);
        if self.a.mode == Mode::Lns {
            self.pending.insert(key, Instant::now());
            self.rep.first_open.get_or_insert_with(Instant::now);
        }
        let Some(p) = &self.a.ppp else {
            if self.a.mode == Mode::Lns {
                // No PPP: up at the L2TP level, nothing to measure.
                self.pending.remove(&key);
                self.rep.sessions_up += 1;
                self.rep.last_up = Some(Instant::now());
            } else {
                self.up(key);
            }
            return Ok(());
        };
        if !self.pending.contains_key(&key) {
            return Ok(());
        }
        let now = self.now();
        let mut cfg = ul2tp_ppp::Config {
            echo_interval_us: None,
            ..ul2tp_ppp::Config::default()
        };
        let mut pool_addr = None;
        match self.a.mode {
            Mode::Lac => {
                let index = self.session_index.remove(&key).unwrap_or_default();
                cfg.user = Some((
                    p.user.replace("%d", &index.to_string()).into_bytes(),
                    p.password.clone(),
                ));
                cfg.allow_auth = vec![p.auth];
            }
            Mode::Lns => {
                let Some(addr) = self.pool.pop() else {
                    self.pending.remove(&key);
                    self.fail("address pool exhausted".into());
                    let _ =
                        self.ep
                            .close_session(now, key.0, key.1, CdnResult::TemporaryNoFacilities);
                    return Ok(());
                };
                pool_addr = Some(addr);
                cfg.require_auth = vec![p.auth];
                cfg.auth_name = b"ul2tp-loadgen".to_vec();
                cfg.local_ip = Some(p.local);
                cfg.peer_ip = Some(addr);
            }
        }
        let mut params = SessionParams::new(info.session_id, info.peer_session_id, info.pw_type);
        params.send_seq = info.send_seq;
        params.recv_seq = info.recv_seq;
        params.lns_mode = info.lns_mode;
        let session = match self.registry.session_create(info.tunnel_id, params) {
            Ok(s) => s,
            Err(e) => {
                self.pending.remove(&key);
                self.resolved += 1;
                self.pool.extend(pool_addr);
                self.fail(format!("data path session: {e:?}"));
                let _ = self
                    .ep
                    .close_session(now, key.0, key.1, CdnResult::TemporaryNoFacilities);
                return Ok(());
            }
        };
        let mut ep = ul2tp_ppp::Endpoint::new(cfg, seed()?);
        if self.a.mode == Mode::Lns {
            ep.set_credentials(Box::new(Pattern {
                user: p.user.clone(),
                password: p.password.clone(),
            }));
        }
        let mut l = Link::new(ep, session, info.peer);
        l.pool_addr = pool_addr;
        l.ping = self.a.ping.map(|(count, interval, target)| {
            Ping::new(
                target,
                count,
                u64::try_from(interval.as_micros()).unwrap_or(u64::MAX),
            )
        });
        if self.a.mode == Mode::Lac {
            l.ep.open(now);
            l.opened = true;
        }
        self.links.insert(key, l);
        self.after(key);
        Ok(())
    }

    fn session_down(&mut self, key: Key, reason: DownReason, was_up: bool) {
        self.session_index.remove(&key);
        let link = self.links.remove(&key);
        if let Some(l) = &link {
            self.pool.extend(l.pool_addr);
            if let Some(p) = &l.ping {
                if l.addrs.is_some() {
                    self.rep.ping_done(p.sent, p.received);
                }
            }
            let _ = self.registry.session_delete(key.0, key.1);
        }
        if self.pending.remove(&key).is_some() || !was_up {
            let cause = match link {
                Some(l) if l.auth_rejected => "PPP authentication rejected".into(),
                Some(l) if l.auth_failed => "PPP authentication of the peer failed".into(),
                Some(l) => format!("{reason:?} in PPP phase {:?}", l.ep.phase()),
                None => format!("{reason:?}"),
            };
            self.fail(cause);
            self.resolved += 1;
        } else if self.held.remove(&key) {
            self.fail(format!("cleared by the peer while held: {reason:?}"));
        }
    }

    /// After a link was touched: send what it queued, act on its events, queue its next wake.
    fn after(&mut self, key: Key) {
        let now = self.now();
        let Some(l) = self.links.get_mut(&key) else {
            return;
        };
        l.flush(&self.sock, now, &mut self.rep.rtts);
        let mut down = None;
        let mut up = false;
        while let Some(ev) = l.ep.poll_event() {
            match ev {
                ul2tp_ppp::Event::AuthRejected => l.auth_rejected = true,
                ul2tp_ppp::Event::AuthFailure { .. } => l.auth_failed = true,
                ul2tp_ppp::Event::NetworkUp { local, peer, .. } => {
                    l.network_up(now, local, peer);
                    up = true;
                }
                ul2tp_ppp::Event::LinkDown { reason } => down = Some(ppp_cause(l, reason)),
                _ => {}
            }
        }
        l.flush(&self.sock, now, &mut self.rep.rtts);
        // Never at or before now: the loop in `wake_links` must end.
        if let Some(w) = l.next_wake(now).map(|w| w.max(now.0 + 1)) {
            if l.scheduled.is_none_or(|s| w < s) {
                l.scheduled = Some(w);
                self.timers.push(Reverse((w, key)));
            }
        }
        if up {
            self.up(key);
        }
        if let Some(cause) = down {
            // A link that goes down ends its call. Before IPCP up that is the session's
            // failure; while held (LAC mode) too; in LNS mode the LAC hanging up is normal.
            if self.pending.remove(&key).is_some() {
                self.fail(cause);
                self.resolved += 1;
            } else if self.held.remove(&key) {
                self.fail(format!("PPP down while held: {cause}"));
            }
            let _ = self
                .ep
                .close_session(now, key.0, key.1, CdnResult::Administrative);
        }
    }

    /// The links whose PPP timer or next ping is due.
    fn wake_links(&mut self) {
        let now = self.now();
        while let Some(&Reverse((w, key))) = self.timers.peek() {
            if w > now.0 {
                break;
            }
            self.timers.pop();
            let Some(l) = self.links.get_mut(&key) else {
                continue;
            };
            if l.scheduled != Some(w) {
                continue;
            }
            l.scheduled = None;
            l.wake(now);
            self.after(key);
        }
    }

    /// Wait for a datagram (or the next thing due) and take what is queued.
    fn receive(&mut self, buf: &mut [u8]) -> Result<(), String> {
        let now = self.now();
        let mut wait = Duration::from_millis(50);
        let next = [
            self.ep.poll_timeout().map(|t| t.0),
            self.timers.peek().map(|Reverse((w, _))| *w),
            self.clear_at.first_key_value().map(|(k, _)| *k),
        ];
        for t in next.into_iter().flatten() {
            wait = wait.min(Duration::from_micros(t.saturating_sub(now.0)));
        }
        if self.a.mode == Mode::Lac && self.opened < self.total {
            let next = self.start + Duration::from_secs_f64(self.opened as f64 / self.a.rate);
            wait = wait.min(next.saturating_duration_since(Instant::now()));
        }
        self.sock
            .set_read_timeout(Some(wait.max(Duration::from_micros(100))))
            .map_err(|e| format!("socket: {e}"))?;
        let mut got = self.sock.recv_from(buf);
        let mut frames: Vec<(Key, Vec<u8>)> = Vec::new();
        while let Ok((n, from)) = got {
            let now = self.now();
            let d = &buf[..n];
            let out = self
                .registry
                .receive(SOCKET, Encap::Udp, d, now, &mut |s, f| {
                    frames.push(((s.tunnel_id(), s.session_id()), f.to_vec()))
                });
            match out {
                RxOutcome::ToSocket if n >= 2 && d[0] & 0x80 != 0 => {
                    // Act on it at once: a session it brings up must be in the data path
                    // before the peer's first PPP frames, queued right behind it.
                    self.ep.handle_datagram(now, from, d);
                    self.events()?;
                }
                RxOutcome::ToSocket | RxOutcome::Dropped(_) => self.rep.data_dropped += 1,
                RxOutcome::Consumed => {}
            }
            for (key, f) in frames.drain(..) {
                if let Some(l) = self.links.get_mut(&key) {
                    if crate::debug() {
                        eprintln!("{} rx {:02x?}", now.0, &f[..f.len().min(6)]);
                    }
                    if !l.opened {
                        l.ep.open(now);
                        l.opened = true;
                    }
                    let _ = l.ep.handle_frame(now, &f);
                    self.after(key);
                }
            }
            // Drain what else is queued without waiting.
            self.sock
                .set_nonblocking(true)
                .map_err(|e| format!("socket: {e}"))?;
            got = self.sock.recv_from(buf);
            if got.is_err() {
                self.sock
                    .set_nonblocking(false)
                    .map_err(|e| format!("socket: {e}"))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use ul2tp_ppp::Credentials;

    use super::Pattern;

    #[test]
    fn the_user_pattern_matches_decimal_numbers_only() {
        let p = Pattern {
            user: "user%d@isp".into(),
            password: b"pw".to_vec(),
        };
        for ok in ["user0@isp", "user42@isp", "user0007@isp"] {
            assert_eq!(p.secret(ok.as_bytes()), Some(b"pw".to_vec()), "{ok}");
        }
        for bad in [
            "user@isp",
            "userx@isp",
            "user4@isp2",
            "xuser4@isp",
            "user-1@isp",
            "",
        ] {
            assert_eq!(p.secret(bad.as_bytes()), None, "{bad}");
        }
        let fixed = Pattern {
            user: "alice".into(),
            password: b"pw".to_vec(),
        };
        assert!(fixed.secret(b"alice").is_some());
        assert!(fixed.secret(b"alice1").is_none());
        assert!(fixed.secret(&[0xff, 0xfe]).is_none());
    }
}
