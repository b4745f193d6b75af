//! Dynamic tunnels: the L2TP control protocol (`ul2tp-control`) driving the data path.
//!
//! The kernel leaves the control protocol to userspace; ul2tpd runs it itself when the
//! configuration has a `[control]` section. One control endpoint listens on a UDP address
//! (1701 by default) and opens tunnels on request (`control_connect`). When a control
//! connection comes up, the daemon opens a UDP socket connected to the peer from the same
//! local address (SO_REUSEPORT; the kernel prefers the connected socket for that peer), and
//! registers an ordinary data-path tunnel on it whose control messages are passed back to
//! the endpoint — exactly the split of docs/reference/kernel.md §1.2. Sessions the endpoint negotiates
//! become data-path sessions with every negotiated parameter (cookies, sublayer, sequencing),
//! Ethernet pseudowires get their l2tpethN device; when the endpoint reports a tunnel or
//! session down, it is deleted.
//!
//! All endpoint state lives in one task; API requests reach it through a channel.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use ul2tp_api::sockproto::SockMsg;
use ul2tp_api::{ApiError, Command, Errno};
use ul2tp_control::{
    CdnResult, Config, Encap, Endpoint, ErrorCode, Event, SessionConfig, SessionInfo,
    StopCcnResult, Timestamp, TunnelInfo, Version,
};
use ul2tp_core::PwType;
use ul2tp_core::{Cookie, L2SpecType, SessionParams, TunnelParams};
use ul2tp_sys::seqpacket::SeqPacket;
use ul2tp_sys::tap::Tap;
use ul2tp_sys::udp::{UdpOptions, UdpTunnelSocket};

use crate::datapath::{TunnelSocket, MAX_DATAGRAM};
use crate::metrics::ControlSnapshot;
use crate::store::{
    io_err, session_attrs, ApiResult, ControlHandle, Ctl, Store, Task, TunnelInfo as DpTunnelInfo,
};

/// What the `[control]` section configures.
#[derive(Debug, Clone)]
pub struct ControlSettings {
    /// Local address of the control endpoint.
    pub listen: SocketAddr,
    /// Endpoint configuration (host name, secret, version for tunnels we open, timers).
    pub config: Config,
    /// LNS: run the PPP endpoint as server on every PPP session a peer opens, with this
    /// local address and peers' addresses from the pool.
    pub ppp_server: Option<PppPool>,
}

/// Addresses for the PPP sessions an LNS terminates.
#[derive(Debug, Clone)]
pub struct PppPool {
    /// Our address on every pppN.
    pub local: std::net::Ipv4Addr,
    /// First and last address handed to peers.
    pub first: std::net::Ipv4Addr,
    /// Last address handed to peers.
    pub last: std::net::Ipv4Addr,
    /// Authentication required from peers (empty: none).
    pub require: Vec<ul2tp_ppp::AuthProtocol>,
    /// Accepted (name, secret) pairs.
    pub users: Vec<(String, String)>,
    /// LCP Echo-Request interval and failures before the link is dead (default 10 s, 3).
    pub echo: Option<(Duration, u32)>,
}

/// A request for the endpoint task.
#[derive(Debug)]
enum Cmd {
    Connect {
        peer: SocketAddr,
        version: Version,
        reply: oneshot::Sender<ApiResult<u32>>,
    },
    Session {
        tid: u32,
        cfg: SessionConfig,
        ifname: Option<String>,
        reply: oneshot::Sender<ApiResult<u32>>,
    },
    Close {
        tid: u32,
        sid: Option<u32>,
        reply: oneshot::Sender<ApiResult<()>>,
    },
    /// The PPP link of a call went down (`pppd.rs`): CDN with the cause.
    ClearPpp {
        tid: u32,
        sid: u32,
        result: CdnResult,
        error: Option<String>,
        cause: ul2tp_wire::avp::PppDisconnectCause,
    },
}

/// The running control plane.
#[derive(Debug)]
pub(crate) struct ControlPlane {
    tx: mpsc::Sender<Cmd>,
    local: SocketAddr,
    host_name: String,
    _task: Task,
}

fn engine_err(e: ul2tp_control::Error) -> ApiError {
    ApiError::new(Errno::EINVAL, format!("control protocol: {e:?}"))
}

/// The control endpoint, its generator seeded with 32 bytes from the operating system
/// (tunnel and session ids, challenges, nonces and random vectors must not be guessable). A
/// failing random source refuses the start rather than run with predictable values.
fn new_endpoint(cfg: &Config) -> std::io::Result<Endpoint> {
    Ok(Endpoint::new(
        cfg.clone(),
        Encap::Udp,
        crate::entropy::os_seed()?,
    ))
}

impl ControlPlane {
    /// Bind the endpoint's socket and start its task.
    pub(crate) fn start(d: Weak<Store>, s: ControlSettings) -> std::io::Result<ControlPlane> {
        let listener = UdpTunnelSocket::bind_reuse_port(s.listen, UdpOptions::default())?;
        let local = listener.local_addr()?;
        let (up_daemon_end, up_ours) = SeqPacket::pair()?;
        let up_ours = SeqPacket::from_fd(up_ours)?;
        let (tx, rx) = mpsc::channel(64);
        let ep = new_endpoint(&s.config)?;
        let ops = d.upgrade().map(|s| s.ops.clone()).unwrap_or_default();
        let st = State {
            ops,
            metrics: ControlSnapshot::default(),
            d,
            local,
            upcall: Arc::new(up_daemon_end),
            ifnames: HashMap::new(),
            config: s.config,
            pool: s.ppp_server,
            leases: HashMap::new(),
        };
        let host_name = st.config.host_name.clone();
        let task = Task(tokio::spawn(run(st, listener, up_ours, rx, ep)));
        Ok(ControlPlane {
            tx,
            local,
            host_name,
            _task: task,
        })
    }

    /// The endpoint's local address.
    pub(crate) fn local(&self) -> SocketAddr {
        self.local
    }

    /// Our Host Name (`[control] host_name`), also our PPP authenticator name.
    pub(crate) fn host_name(&self) -> &str {
        &self.host_name
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<ApiResult<T>>) -> Cmd,
    ) -> ApiResult<T> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| ApiError::new(Errno::EIO, "control plane stopped"))?;
        rx.await
            .map_err(|_| ApiError::new(Errno::EIO, "control plane stopped"))?
    }

    /// Open a control connection to `peer`.
    pub(crate) async fn connect(&self, peer: SocketAddr, version: Version) -> ApiResult<u32> {
        self.ask(|reply| Cmd::Connect {
            peer,
            version,
            reply,
        })
        .await
    }

    /// Open a session in tunnel `tid`.
    pub(crate) async fn session(
        &self,
        tid: u32,
        cfg: SessionConfig,
        ifname: Option<String>,
    ) -> ApiResult<u32> {
        self.ask(|reply| Cmd::Session {
            tid,
            cfg,
            ifname,
            reply,
        })
        .await
    }

    /// Close a tunnel or a session.
    pub(crate) async fn close(&self, tid: u32, sid: Option<u32>) -> ApiResult<()> {
        self.ask(|reply| Cmd::Close { tid, sid, reply }).await
    }
}

/// The store's view of the control plane: deletes of dynamic objects and PPP links that went
/// down reach the endpoint through it.
impl ControlHandle for ControlPlane {
    fn close_later(&self, tid: u32, sid: Option<u32>) {
        let (reply, _) = oneshot::channel();
        let _ = self.tx.try_send(Cmd::Close { tid, sid, reply });
    }

    fn clear_ppp_call(
        &self,
        tid: u32,
        sid: u32,
        result: CdnResult,
        error: Option<String>,
        cause: ul2tp_wire::avp::PppDisconnectCause,
    ) {
        let cmd = Cmd::ClearPpp {
            tid,
            sid,
            result,
            error,
            cause,
        };
        if self.tx.try_send(cmd).is_err() {
            tracing::warn!(
                tunnel_id = tid,
                session_id = sid,
                "control plane busy: call {tid}/{sid} not cleared"
            );
        }
    }
}

struct State {
    d: Weak<Store>,
    /// Where the metrics snapshot is published.
    ops: Arc<crate::metrics::Ops>,
    /// The down counters of the snapshot.
    metrics: ControlSnapshot,
    local: SocketAddr,
    upcall: Arc<SeqPacket>,
    ifnames: HashMap<(u32, u32), String>,
    /// The endpoint's configuration, the base of tunnels we open.
    config: Config,
    /// LNS PPP address pool.
    pool: Option<PppPool>,
    /// Pool addresses in use, by session.
    leases: HashMap<(u32, u32), std::net::Ipv4Addr>,
}

impl State {
    /// Publish the endpoint's counters for the metrics endpoint (after a batch of events, at
    /// most every `PUBLISH_EVERY`: the scrape reads the snapshot, never the engine).
    fn publish(&self, ep: &Endpoint) {
        let mut snap = ControlSnapshot {
            endpoint: ep.stats(),
            messages: ep.message_stats().clone(),
            tunnels_down: self.metrics.tunnels_down.clone(),
            sessions_down: self.metrics.sessions_down.clone(),
            pool: self.pool.as_ref().map(|p| {
                let size = u64::from(u32::from(p.last).saturating_sub(u32::from(p.first))) + 1;
                (size, self.leases.len() as u64)
            }),
            half_open: ep.half_open_count() as u64,
            timeout_work: ep.stats().last_timeout_work,
            not_control: self.metrics.not_control,
            ..ControlSnapshot::default()
        };
        // The tunnels gone and the ones held.
        let mut channel = snap.endpoint.closed_channels;
        for tid in ep.tunnel_ids() {
            let Some(t) = ep.tunnel_stats(tid) else {
                continue;
            };
            *snap.tunnel_states.entry(t.state).or_default() += 1;
            snap.sessions[0] += t.sessions_established as u64;
            snap.sessions[1] += (t.sessions - t.sessions_established) as u64;
            snap.tunnel_ids.insert(tid);
            channel.add(&t.channel);
        }
        snap.channel = channel;
        self.ops.control.store(Some(Arc::new(snap)));
    }

    /// The lowest free pool address.
    fn lease(&mut self, key: (u32, u32)) -> Option<(std::net::Ipv4Addr, std::net::Ipv4Addr)> {
        let pool = self.pool.as_ref()?;
        let (first, last) = (u32::from(pool.first), u32::from(pool.last));
        let free = (first..=last)
            .map(std::net::Ipv4Addr::from)
            .find(|a| !self.leases.values().any(|l| l == a))?;
        self.leases.insert(key, free);
        Some((pool.local, free))
    }
}

/// Longest delay between a change and the metrics snapshot that shows it.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);

async fn run(
    mut st: State,
    listener: UdpTunnelSocket,
    up_rx: SeqPacket,
    mut cmds: mpsc::Receiver<Cmd>,
    mut ep: Endpoint,
) {
    let now = crate::clock::now;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut ubuf = vec![0u8; MAX_DATAGRAM + 64];
    st.publish(&ep);
    // The snapshot is rebuilt at most every PUBLISH_EVERY (it walks every tunnel), and always
    // within PUBLISH_EVERY of a change.
    let mut published = std::time::Instant::now();
    let mut dirty = false;
    let mut drops = DropLog::default();
    // ICMP errors on the listening socket (SCCRQs and replies to peers that are gone):
    // counted and logged like those of the data path's sockets.
    let local = st.local;
    let counters = st.ops.socket_counters(None, "udp", Some(local), None);
    let mut icmp_on = listener.set_recv_errors().is_ok();
    let mut icmp_log = crate::datapath::IcmpLog::default();
    loop {
        let mut wait = ep
            .poll_timeout()
            .map_or(Duration::from_secs(3600), |t| t - now().min(t));
        if dirty {
            wait = wait.min(PUBLISH_EVERY.saturating_sub(published.elapsed()));
        }
        tokio::select! {
            r = listener.recv_from(&mut buf) => {
                // Only control messages belong to the endpoint (docs/reference/kernel.md §1.2).
                if let Ok((n, from)) = r {
                    if n >= 2 && buf[0] & 0x80 != 0 {
                        ep.handle_datagram(now(), from, &buf[..n]);
                    } else {
                        st.metrics.not_control += 1;
                    }
                }
            }
            r = listener.recv_error(), if icmp_on => match r {
                Ok(e) => {
                    let reason = counters.icmp(&e);
                    icmp_log.note(&counters, reason, &e);
                }
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {}
                Err(e) => {
                    tracing::warn!("control socket {local}: reading ICMP errors failed: {e}");
                    icmp_on = false;
                }
            },
            r = up_rx.recv(&mut ubuf) => {
                if let Ok(n) = r {
                    if let Some(SockMsg::Dgram { addr, conn_id, payload }) = SockMsg::decode(&ubuf[..n]) {
                        if payload.first().is_some_and(|b| b & 0x80 != 0) {
                            ep.handle_datagram(now(), SocketAddr::new(addr, conn_id as u16), &payload);
                        } else {
                            st.metrics.not_control += 1;
                        }
                    }
                }
            }
            _ = tokio::time::sleep(wait) => ep.handle_timeout(now()),
            c = cmds.recv() => match c {
                None => break,
                Some(c) => command(&mut ep, &mut st, c, now()),
            },
        }
        while let Some(t) = ep.poll_transmit() {
            if let Err(e) = listener.send_to(&t.bytes, t.dst).await {
                tracing::debug!("control send to {}: {e}", t.dst);
            }
        }
        while let Some(ev) = ep.poll_event() {
            if let Some(close) = apply(&mut st, ev).await {
                let _ = match close {
                    (tid, None) => ep.close_tunnel(now(), tid, StopCcnResult::GeneralRequest),
                    (tid, Some(sid)) => {
                        ep.close_session(now(), tid, sid, CdnResult::TemporaryNoFacilities)
                    }
                };
            }
        }
        dirty = true;
        drops.check(&ep);
        if published.elapsed() >= PUBLISH_EVERY {
            st.publish(&ep);
            published = std::time::Instant::now();
            dirty = false;
        }
    }
}

/// At most one log line per interval about SCCRQs the engine dropped (flood limits,
/// docs/security.md): the engine only counts, this reads its counters.
#[derive(Default)]
struct DropLog {
    last: Option<std::time::Instant>,
    logged: (u64, u64),
}

impl DropLog {
    const EVERY: Duration = Duration::from_secs(10);

    fn check(&mut self, ep: &Endpoint) {
        if self.last.is_some_and(|l| l.elapsed() < Self::EVERY) {
            return;
        }
        let s = ep.stats();
        let now = (s.sccrq_dropped_half_open, s.sccrq_rate_limited);
        if now != self.logged {
            tracing::warn!(
                "control: dropped {} SCCRQs at the half-open limit and {} over the per-source rate (since the last report; {} half-open tunnels)",
                now.0 - self.logged.0,
                now.1 - self.logged.1,
                ep.half_open_count()
            );
            self.logged = now;
            self.last = Some(std::time::Instant::now());
        }
    }
}

fn command(ep: &mut Endpoint, st: &mut State, c: Cmd, now: Timestamp) {
    match c {
        Cmd::Connect {
            peer,
            version,
            reply,
        } => {
            let mut cfg = st.config.clone();
            cfg.version = version;
            let _ = reply.send(ep.connect(now, peer, cfg).map_err(engine_err));
        }
        Cmd::Session {
            tid,
            cfg,
            ifname,
            reply,
        } => {
            let r = ep.open_session(now, tid, cfg).map_err(engine_err);
            if let (Ok(sid), Some(name)) = (&r, ifname) {
                st.ifnames.insert((tid, *sid), name);
            }
            let _ = reply.send(r);
        }
        Cmd::Close { tid, sid, reply } => {
            let r = match sid {
                None => ep.close_tunnel(now, tid, StopCcnResult::GeneralRequest),
                Some(sid) => ep.close_session(now, tid, sid, CdnResult::Administrative),
            };
            let _ = reply.send(
                r.map_err(|e| ApiError::new(Errno::ENODEV, format!("control protocol: {e:?}"))),
            );
        }
        Cmd::ClearPpp {
            tid,
            sid,
            result,
            error,
            cause,
        } => {
            let error = error.as_deref().map(|m| (ErrorCode::VendorSpecific, m));
            // Already gone (the peer's CDN came first): nothing to do.
            let _ = ep.close_session_ppp(now, tid, sid, result, error, Some(&cause));
        }
    }
}

/// Turn an endpoint event into data-path changes. Returns a tunnel or session the endpoint
/// must close because the data path refused it.
async fn apply(st: &mut State, ev: Event) -> Option<(u32, Option<u32>)> {
    match &ev {
        Event::TunnelDown { reason, .. } => {
            let r = crate::metrics::down_reason(reason);
            *st.metrics.tunnels_down.entry(r).or_default() += 1;
        }
        Event::SessionDown { reason, .. } => {
            let r = crate::metrics::down_reason(reason);
            *st.metrics.sessions_down.entry(r).or_default() += 1;
        }
        _ => {}
    }
    let d = st.d.upgrade()?;
    let mut ctl = d.ctl.lock().await;
    match ev {
        Event::TunnelUp(info) => tunnel_up(&d, &mut ctl, st, &info).err().map(|e| {
            tracing::warn!(
                tunnel_id = info.tunnel_id,
                "dynamic tunnel {}: {e}",
                info.tunnel_id
            );
            (info.tunnel_id, None)
        }),
        Event::TunnelDown {
            tunnel_id,
            reason,
            was_up,
            ..
        } => {
            if !was_up {
                // Refused or failed before it was established (authentication, timeout, ...).
                tracing::info!(
                    tunnel_id,
                    "control connection {tunnel_id} not established: {reason:?}"
                );
            }
            // Gone at the control level: no StopCCN from the delete below.
            ctl.dynamic.remove(&tunnel_id);
            if ctl.tunnels.contains_key(&tunnel_id) {
                tracing::info!(tunnel_id, "dynamic tunnel {tunnel_id} down: {reason:?}");
                let _ = d.tunnel_delete_locked(&mut ctl, tunnel_id);
            }
            None
        }
        Event::SessionUp(info) => session_up(&d, &mut ctl, st, &info).err().map(|e| {
            tracing::warn!(
                tunnel_id = info.tunnel_id,
                session_id = info.session_id,
                "dynamic session {}/{}: {e}",
                info.tunnel_id,
                info.session_id
            );
            (info.tunnel_id, Some(info.session_id))
        }),
        Event::SessionDown {
            tunnel_id,
            session_id,
            reason,
            ..
        } => {
            tracing::info!(
                tunnel_id,
                session_id,
                "dynamic session {tunnel_id}/{session_id} down: {reason:?}"
            );
            st.ifnames.remove(&(tunnel_id, session_id));
            st.leases.remove(&(tunnel_id, session_id));
            if let Some(s) = d.registry.session_get(tunnel_id, session_id) {
                let _ = d.session_delete_locked(&mut ctl, &s);
            }
            None
        }
        Event::LinkInfo { .. } | Event::WanError { .. } => None,
    }
}

fn tunnel_up(d: &Store, ctl: &mut Ctl, st: &State, info: &TunnelInfo) -> ApiResult<()> {
    // A socket connected to the peer from the endpoint's address: data and control from that
    // peer arrive on it; control goes back to the endpoint through the upcall.
    let sock = UdpTunnelSocket::open_reuse_port(st.local, info.peer, UdpOptions::default())
        .map_err(|e| io_err("tunnel socket", e))?;
    let sock = d.add_socket(ctl, TunnelSocket::Udp(sock), None);
    sock.upcall.store(Some(st.upcall.clone()));
    sock.control_only
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let p = TunnelParams {
        tunnel_id: info.tunnel_id,
        peer_tunnel_id: info.peer_tunnel_id,
        version: info.version,
        encap: Encap::Udp,
        socket: sock.id,
    };
    d.register_tunnel(ctl, p, sock, DpTunnelInfo::default())?;
    ctl.dynamic.insert(info.tunnel_id);
    tracing::info!(
        tunnel_id = info.tunnel_id,
        peer_host_name = ?info.peer_host_name,
        "dynamic tunnel {} up with {} ({:?})",
        info.tunnel_id,
        info.peer,
        info.peer_host_name
    );
    Ok(())
}

fn session_up(d: &Store, ctl: &mut Ctl, st: &mut State, info: &SessionInfo) -> ApiResult<()> {
    let cookie = |b: &[u8]| Cookie::new(b).map_err(|e| ApiError::new(e, "cookie"));
    let v3 = info.version == Version::V3;
    let params = SessionParams {
        session_id: info.session_id,
        peer_session_id: info.peer_session_id,
        pw_type: info.pw_type,
        cookie: cookie(&info.cookie)?,
        peer_cookie: cookie(&info.peer_cookie)?,
        // The kernel has one sublayer per session; both sides normally ask for the same. A
        // sublayer the data path cannot carry makes the session create fail (EINVAL).
        l2spec_type: if v3 {
            info.l2spec_type
        } else {
            L2SpecType::None
        },
        send_seq: info.send_seq,
        recv_seq: info.recv_seq,
        lns_mode: info.lns_mode,
        reorder_timeout_ms: 0,
        ifname: None,
        vlan_id: None,
    };
    let mut params = params;
    let tap = if v3 && (info.pw_type == PwType::Ethernet || info.pw_type == PwType::EthernetVlan) {
        let name = st
            .ifnames
            .get(&(info.tunnel_id, info.session_id))
            .map(String::as_str);
        let tap = Tap::create(name, ul2tp_sys::tap::L2TPETH_TEMPLATE)
            .map_err(|e| io_err("pseudowire device", e))?;
        d.apply_stable_mac(tap.name(), info.tunnel_id, info.session_id)
            .map_err(|e| io_err("pseudowire stable MAC address", e))?;
        params.ifname = Some(tap.name().to_string());
        Some(tap)
    } else {
        None
    };
    let s = d
        .registry
        .session_create(info.tunnel_id, params)
        .map_err(|e| ApiError::new(e, format!("session {}", info.session_id)))?;
    d.start_session(ctl, &s, tap)?;
    d.notify(Command::SessionCreate, session_attrs(&s, ctl));
    // LNS: terminate PPP sessions the peer opened with our own PPP endpoint.
    if info.pw_type == PwType::Ppp && !info.initiator {
        if let Some((local, peer)) = st.lease((info.tunnel_id, info.session_id)) {
            let pool = st.pool.as_ref();
            let setup = crate::pppd::PppSetup {
                local: Some(local),
                peer: Some(peer),
                user: None,
                require: pool.map(|p| p.require.clone()).unwrap_or_default(),
                users: pool.map(|p| p.users.clone()).unwrap_or_default(),
                auth_name: Some(st.config.host_name.clone()),
                // The LAC side starts PPP once the call is up: wait for its first frame.
                passive: true,
                echo: pool.and_then(|p| p.echo),
            };
            // The outcome is logged by the endpoint; nobody waits for it here.
            drop(crate::pppd::start(d, ctl, s.clone(), setup)?);
        } else if st.pool.is_some() {
            tracing::warn!(
                tunnel_id = info.tunnel_id,
                session_id = info.session_id,
                "PPP address pool exhausted: session {}/{} has no PPP endpoint",
                info.tunnel_id,
                info.session_id
            );
        }
    }
    tracing::info!(
        tunnel_id = info.tunnel_id,
        session_id = info.session_id,
        "dynamic session {}/{} up",
        info.tunnel_id,
        info.session_id
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_seeded_from_the_operating_system() {
        // Every endpoint the daemon builds draws its own ids and challenges. A seed made of the
        // process id and a clock reading takes only a handful of values within one process, so
        // 64 endpoints would repeat SCCRQs; 256 random bits never do.
        let cfg = Config {
            version: Version::V2,
            secret: Some(b"k".to_vec()),
            send_challenge: true,
            ..Config::default()
        };
        let peer: SocketAddr = "192.0.2.2:1701".parse().unwrap();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..64 {
            let mut ep = new_endpoint(&cfg).unwrap();
            ep.connect(Timestamp::ZERO, peer, cfg.clone()).unwrap();
            let sccrq = ep.poll_transmit().unwrap().bytes;
            assert!(seen.insert(sccrq), "two endpoints sent the same SCCRQ");
        }
    }
}
