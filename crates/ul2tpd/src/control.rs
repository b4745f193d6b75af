//! Dynamic tunnels: the L2TP control protocol (`ul2tp-control`) driving the data path.
//!
//! The kernel leaves the control protocol to userspace; ul2tpd runs it itself when the
//! configuration has a `[control]` section. One control endpoint serves every transport:
//! UDP listeners (1701 by default; one per address family) and L2TPv3/IP listeners
//! (protocol 115, one per address family: an unconnected raw socket that takes the messages
//! with session id 0, the tunnel-id-0 listener of docs/reference/kernel.md §8.4). It opens
//! tunnels on request (`control_connect`, over UDP or IP, IPv4 or IPv6; L2TPv2 over UDP
//! only). When a UDP control connection comes up, the daemon opens a UDP socket connected
//! to the peer from the same local address (SO_REUSEPORT; the kernel prefers the connected
//! socket for that peer), and registers an ordinary data-path tunnel on it whose control
//! messages are passed back to the endpoint — exactly the split of docs/reference/kernel.md
//! §1.2. Over IP the data-path tunnel gets a raw socket connected to the peer (shared with
//! static tunnels between the same addresses); its control messages reach the endpoint
//! through the IP listener, whose socket filter keeps data packets out. Sessions the
//! endpoint negotiates become data-path sessions with every negotiated parameter (cookies,
//! sublayer, sequencing); Ethernet and Ethernet VLAN pseudowires get their l2tpethN device;
//! when the endpoint reports a tunnel or session down, it is deleted.
//!
//! Circuit Status (RFC 3931 §5.4.5, RFC 4719 §2.3.1): the administrative state of each
//! dynamic Ethernet pseudowire device, and of the pppN of each dynamic L2TPv3 PPP
//! pseudowire while it exists, is watched (rtnetlink link events, `ul2tp_sys::linkmon`, and
//! a periodic check); once it has been up, taking it down or up again sends Set-Link-Info
//! with the Active bit cleared or set. A Set-Link-Info from the peer switches the device's
//! carrier off or on (a PPP session's endpoint keeps it across its pppN units, `pppd.rs`).
//!
//! All endpoint state lives in one task; API requests reach it through a channel.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
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
use ul2tp_sys::ip::IpTunnelSocket;
use ul2tp_sys::seqpacket::SeqPacket;
use ul2tp_sys::udp::{UdpOptions, UdpTunnelSocket};
use ul2tp_wire::avp::CIRCUIT_ACTIVE;

use crate::datapath::{TunnelSocket, MAX_DATAGRAM};
use crate::metrics::ControlSnapshot;
use crate::profile::{Profile, Profiles};
use crate::store::{
    io_err, session_attrs, ApiResult, ControlHandle, Ctl, Store, Task, TunnelInfo as DpTunnelInfo,
};

/// What the `[control]` section configures.
#[derive(Debug, Clone)]
pub struct ControlSettings {
    /// Local address of the control endpoint's first UDP listener.
    pub listen: SocketAddr,
    /// Further UDP listeners (at most one per address family, counting `listen`).
    pub listen_udp: Vec<SocketAddr>,
    /// L2TPv3/IP listeners (protocol 115; at most one per address family).
    pub listen_ip: Vec<IpAddr>,
    /// Endpoint configuration (host name, secret, version for tunnels we open, timers).
    pub config: Config,
    /// LNS: the profiles of tunnels peers open (`profile.rs`); a profile with a PPP service
    /// runs the PPP endpoint as server on every PPP session of its tunnels.
    pub profiles: Profiles,
    /// LAC: IPv6 default route via the LNS once it advertises a prefix
    /// (`ppp_ipv6_default_route`), DHCPv6 prefix delegation (`ppp_ipv6_pd`).
    pub ppp_ipv6_client: crate::ppp_ipv6::ClientV6,
}

/// A request for the endpoint task.
#[derive(Debug)]
enum Cmd {
    Connect {
        peer: SocketAddr,
        version: Version,
        encap: Encap,
        reply: oneshot::Sender<ApiResult<u32>>,
    },
    /// Open a tunnel with the endpoint's configuration as changed by `tune` (a `[[lac]]`
    /// profile's host name, secret, version, timers: `dial.rs`).
    ConnectWith {
        peer: SocketAddr,
        encap: Encap,
        tune: Tune,
        reply: oneshot::Sender<ApiResult<u32>>,
    },
    Session {
        tid: u32,
        cfg: SessionConfig,
        ifname: Option<String>,
        vlan_id: Option<u16>,
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
    /// A PPP session's pppN came or went (Circuit Status).
    PppUnit {
        key: (u32, u32),
        unit: Option<crate::store::PppUnit>,
    },
    /// New profiles (reload): for tunnels opened from now on.
    Profiles(Profiles),
    /// Whether tunnel `tid` is established and the peer acknowledged everything we sent
    /// (our SCCCN): [`Confirmation`].
    Confirmed {
        tid: u32,
        reply: oneshot::Sender<ApiResult<Confirmation>>,
    },
}

/// Where a tunnel we opened stands after its TunnelUp ([`ControlPlane::confirmed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Confirmation {
    /// Established, and the peer acknowledged our SCCCN (and all else we sent).
    Acknowledged,
    /// Established, our SCCCN not acknowledged yet.
    Pending,
    /// Closing or gone: its TunnelDown says why.
    Down,
}

/// Changes to the endpoint's configuration for one tunnel we open.
pub(crate) struct Tune(pub(crate) Box<dyn FnOnce(&mut Config) + Send>);

impl std::fmt::Debug for Tune {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tune(..)")
    }
}

/// Engine events kept for subscribers that fall behind ([`ControlPlane::events`]).
const EVENT_BACKLOG: usize = 1024;

/// The running control plane.
#[derive(Debug)]
pub(crate) struct ControlPlane {
    tx: mpsc::Sender<Cmd>,
    /// Every engine event, sent once the data path has applied it.
    events: tokio::sync::broadcast::Sender<Event>,
    local: SocketAddr,
    host_name: String,
    ipv6_client: crate::ppp_ipv6::ClientV6,
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

/// One listener per (transport, address family).
fn bind_listeners(s: &ControlSettings) -> std::io::Result<Vec<Arc<TunnelSocket>>> {
    let mut out: Vec<Arc<TunnelSocket>> = Vec::new();
    let udp = std::iter::once(s.listen).chain(s.listen_udp.iter().copied());
    let mut socks = Vec::new();
    for a in udp {
        socks.push(TunnelSocket::Udp(UdpTunnelSocket::bind_reuse_port(
            a,
            UdpOptions::default(),
        )?));
    }
    for &a in &s.listen_ip {
        socks.push(TunnelSocket::Ip(IpTunnelSocket::bind_control(a)?));
    }
    for sock in socks {
        let clash = out
            .iter()
            .any(|o| o.transport() == sock.transport() && o.is_ipv6() == sock.is_ipv6());
        if clash {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "two control listeners of the same transport and address family",
            ));
        }
        out.push(Arc::new(sock));
    }
    Ok(out)
}

/// Receive loop of one listener: control messages go to the endpoint task, the rest (data
/// packets to the UDP listener's port, docs/reference/kernel.md §1.2) is dropped and counted
/// (`not_control`). ICMP errors on the listener (SCCRQs and replies to peers that are gone)
/// are counted and logged like those of the data path's sockets.
async fn listen(
    sock: Arc<TunnelSocket>,
    tx: mpsc::Sender<(Encap, SocketAddr, Vec<u8>)>,
    ops: Arc<crate::metrics::Ops>,
    not_control: Arc<std::sync::atomic::AtomicU64>,
) {
    let encap = sock.transport();
    let local = sock.local_addr().ok();
    let label = match encap {
        Encap::Udp => "udp",
        Encap::Ip => "ip",
    };
    let counters = ops.socket_counters(None, label, local, None);
    let mut icmp_on = sock.set_recv_errors().is_ok();
    let mut icmp_log = crate::datapath::IcmpLog::default();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        tokio::select! {
            r = async {
                match &*sock {
                    TunnelSocket::Udp(u) => u.recv_from(&mut buf).await,
                    TunnelSocket::Ip(i) => i
                        .recv(&mut buf)
                        .await
                        .map(|(n, a)| (n, SocketAddr::new(a, 0))),
                }
            } => match r {
                Ok((n, from)) => {
                    let m = &buf[..n.min(buf.len())];
                    if !is_control(encap, m) {
                        not_control.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    } else if tx.send((encap, from, m.to_vec())).await.is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::debug!("control listener: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            r = sock.recv_error(), if icmp_on => match r {
                Ok(e) => {
                    let reason = counters.icmp(&e);
                    icmp_log.note(&counters, reason, &e);
                }
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {}
                Err(e) => {
                    tracing::warn!("control listener {local:?}: reading ICMP errors failed: {e}");
                    icmp_on = false;
                }
            },
        }
    }
}

/// Whether a datagram is a control message (UDP: the T bit; IP: session id 0).
fn is_control(encap: Encap, m: &[u8]) -> bool {
    match encap {
        Encap::Udp => m.len() >= 2 && m[0] & 0x80 != 0,
        Encap::Ip => matches!(
            ul2tp_wire::data::classify_ip(m),
            ul2tp_wire::data::IpClass::Control { .. }
        ),
    }
}

/// The tunnel ids the engine must not allocate: every tunnel in the data path (static
/// tunnels from the configuration or `ul2tp add tunnel`, managed tunnels of applications).
/// Without the check, a negotiated tunnel whose random id clashed with one of them would be
/// refused by the data path when it came up and closed again. The registry is read through
/// its lock-free snapshot; the engine's own tunnels are in it too once up, which changes
/// nothing (the engine skips its own ids anyway).
fn tunnel_id_in_use(registry: &Arc<ul2tp_core::Registry>) -> ul2tp_control::TunnelIdInUse {
    let registry = Arc::downgrade(registry);
    Arc::new(move |id| {
        registry
            .upgrade()
            .is_some_and(|r| r.tunnel_get(id).is_some())
    })
}

impl ControlPlane {
    /// Bind the endpoint's sockets and start its task.
    pub(crate) fn start(d: Weak<Store>, s: ControlSettings) -> std::io::Result<ControlPlane> {
        let listeners = bind_listeners(&s)?;
        let local = listeners[0].local_addr()?;
        let (up_daemon_end, up_ours) = SeqPacket::pair()?;
        let up_ours = SeqPacket::from_fd(up_ours)?;
        let (tx, rx) = mpsc::channel(64);
        let (events, _) = tokio::sync::broadcast::channel(EVENT_BACKLOG);
        let mut ep = new_endpoint(&s.config)?;
        if let Some(store) = d.upgrade() {
            ep.set_tunnel_id_in_use(tunnel_id_in_use(&store.registry));
        }
        ep.set_selector(selector(&s.profiles));
        let ops = d.upgrade().map(|s| s.ops.clone()).unwrap_or_default();
        let st = State {
            ops,
            metrics: ControlSnapshot::default(),
            d,
            listeners,
            upcall: Arc::new(up_daemon_end),
            ifnames: HashMap::new(),
            vlans: HashMap::new(),
            circuits: HashMap::new(),
            config: s.config,
            profiles: s.profiles,
            not_control: Default::default(),
            tunnel_profiles: HashMap::new(),
            leases: Default::default(),
            events: events.clone(),
        };
        let host_name = st.config.host_name.clone();
        let ipv6_client = s.ppp_ipv6_client;
        let task = Task(tokio::spawn(run(st, up_ours, rx, ep)));
        Ok(ControlPlane {
            tx,
            events,
            local,
            host_name,
            ipv6_client,
            _task: task,
        })
    }

    /// The endpoint's first UDP listener's local address.
    pub(crate) fn local(&self) -> SocketAddr {
        self.local
    }

    /// `[control] ppp_ipv6_default_route` and `ppp_ipv6_pd` for PPP client links.
    pub(crate) fn ipv6_client(&self) -> crate::ppp_ipv6::ClientV6 {
        self.ipv6_client
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

    /// The engine's events from now on, each once the data path has applied it (a tunnel
    /// that is up is registered, a session that is up can take a PPP endpoint). Subscribe
    /// before the request whose outcome is awaited.
    pub(crate) fn events(&self) -> tokio::sync::broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Open a control connection to `peer` over `encap` with the endpoint's configuration
    /// changed by `tune` (L2TPv3/IP: `peer`'s port is ignored).
    pub(crate) async fn connect_with(
        &self,
        peer: SocketAddr,
        encap: Encap,
        tune: Tune,
    ) -> ApiResult<u32> {
        self.ask(|reply| Cmd::ConnectWith {
            peer,
            encap,
            tune,
            reply,
        })
        .await
    }

    /// Open a control connection to `peer` over `encap` (L2TPv3/IP: `peer`'s port is
    /// ignored).
    pub(crate) async fn connect(
        &self,
        peer: SocketAddr,
        version: Version,
        encap: Encap,
    ) -> ApiResult<u32> {
        self.ask(|reply| Cmd::Connect {
            peer,
            version,
            encap,
            reply,
        })
        .await
    }

    /// Open a session in tunnel `tid` (`vlan_id`: the local VLAN of an Ethernet VLAN
    /// pseudowire).
    pub(crate) async fn session(
        &self,
        tid: u32,
        cfg: SessionConfig,
        ifname: Option<String>,
        vlan_id: Option<u16>,
    ) -> ApiResult<u32> {
        self.ask(|reply| Cmd::Session {
            tid,
            cfg,
            ifname,
            vlan_id,
            reply,
        })
        .await
    }

    /// Use `profiles` for tunnels opened from now on (reload); established tunnels keep
    /// the profile they came up with.
    pub(crate) fn set_profiles(&self, profiles: Profiles) -> bool {
        self.tx.try_send(Cmd::Profiles(profiles)).is_ok()
    }

    /// Whether tunnel `tid` is established with everything we sent acknowledged.
    pub(crate) async fn confirmed(&self, tid: u32) -> ApiResult<Confirmation> {
        self.ask(|reply| Cmd::Confirmed { tid, reply }).await
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

    fn ppp_unit(&self, tid: u32, sid: u32, unit: Option<crate::store::PppUnit>) {
        let key = (tid, sid);
        if self.tx.try_send(Cmd::PppUnit { key, unit }).is_err() {
            tracing::warn!(
                tunnel_id = tid,
                session_id = sid,
                "control plane busy: circuit of {tid}/{sid} not watched"
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
    /// The listeners, at most one per (transport, address family).
    listeners: Vec<Arc<TunnelSocket>>,
    upcall: Arc<SeqPacket>,
    ifnames: HashMap<(u32, u32), String>,
    /// Local VLAN ids of the Ethernet VLAN sessions we open.
    vlans: HashMap<(u32, u32), u16>,
    /// The pseudowire devices whose state is reported to the peer (dynamic L2TPv3 Ethernet
    /// and PPP pseudowires).
    circuits: HashMap<(u32, u32), Circuit>,
    /// The endpoint's configuration, the base of tunnels we open.
    config: Config,
    /// The profiles of new tunnels.
    profiles: Profiles,
    /// Datagrams the listeners and the upcall dropped before the engine: not control
    /// messages.
    not_control: Arc<std::sync::atomic::AtomicU64>,
    /// The profile of each tunnel a peer opened, from when it came up.
    tunnel_profiles: HashMap<u32, Arc<Profile>>,
    /// Pool addresses in use, by session.
    /// (With the PPP tasks, which apply RADIUS's addresses, `leases.rs`.)
    leases: crate::leases::SharedLeases,
    /// Where applied events go ([`ControlPlane::events`]).
    events: tokio::sync::broadcast::Sender<Event>,
}

/// A dynamic pseudowire's device, watched for Circuit Status.
#[derive(Debug)]
struct Circuit {
    /// Its name and interface index (link events name the index; it survives a rename).
    /// A PPP pseudowire has its pppN only while a network protocol is up.
    device: Option<(String, u32)>,
    /// A pppN's PPP task, told when the device is up again after being down.
    back_up: Option<Arc<tokio::sync::Notify>>,
    /// The device has been administratively up since the session came up: from then on its
    /// state is the circuit's (a new Ethernet device is down until configured, which is not
    /// reported; a pppN is brought up by its endpoint).
    armed: bool,
    /// The Active bit the peer last heard from us (set in ICRQ / ICRP / ICCN).
    reported_up: bool,
}

/// Refusals logged per [`REFUSAL_LOG_WINDOW`]; beyond, they are only counted (the metric
/// counts them all) and summed up in one line when the next window opens.
const REFUSAL_LOG_BURST: u32 = 20;
const REFUSAL_LOG_WINDOW: Duration = Duration::from_secs(60);

/// A log budget: `burst` lines per `window`.
#[derive(Debug)]
struct LogBudget {
    start: std::time::Instant,
    logged: u32,
    quiet: u64,
    burst: u32,
    window: Duration,
}

impl LogBudget {
    fn new(burst: u32, window: Duration, now: std::time::Instant) -> LogBudget {
        LogBudget {
            start: now,
            logged: 0,
            quiet: 0,
            burst,
            window,
        }
    }

    /// Whether a line may be logged at `now`, and how many were kept quiet in the window
    /// that just ended (to report once).
    fn take(&mut self, now: std::time::Instant) -> (bool, u64) {
        let mut ended = 0;
        if now.duration_since(self.start) >= self.window {
            ended = std::mem::take(&mut self.quiet);
            (self.start, self.logged) = (now, 0);
        }
        if self.logged < self.burst {
            self.logged += 1;
            (true, ended)
        } else {
            self.quiet += 1;
            (false, ended)
        }
    }
}

/// The engine's selector for `profiles`: the first profile admitting the peer; a refusal is
/// logged here (the engine answers StopCCN 2 and counts it), at most
/// [`REFUSAL_LOG_BURST`] lines a minute so that a flood of strangers cannot flood the log.
fn selector(profiles: &Profiles) -> Option<ul2tp_control::Selector> {
    let profiles = profiles.clone();
    let mut budget = LogBudget::new(
        REFUSAL_LOG_BURST,
        REFUSAL_LOG_WINDOW,
        std::time::Instant::now(),
    );
    Some(ul2tp_control::Selector(Box::new(move |req| {
        let host = String::from_utf8_lossy(req.host_name);
        match profiles.select(req.peer.ip(), &host) {
            Some(p) => {
                tracing::debug!("SCCRQ from {} ({host:?}): profile {}", req.peer, p.name);
                Some(p.config.clone())
            }
            None => {
                let (log, quiet) = budget.take(std::time::Instant::now());
                if quiet > 0 {
                    tracing::warn!(
                        "{quiet} more SCCRQs refused (no [[lns]] profile admits them) were not logged"
                    );
                }
                if log {
                    tracing::warn!(
                        peer = %req.peer,
                        peer_host_name = ?host,
                        "SCCRQ from {} (Host Name {host:?}) refused: no [[lns]] profile admits it",
                        req.peer
                    );
                }
                None
            }
        }
    })))
}

impl State {
    /// The listener for `encap` in the family of `peer`.
    fn listener(&self, encap: Encap, peer: IpAddr) -> Option<&Arc<TunnelSocket>> {
        self.listeners
            .iter()
            .find(|l| l.transport() == encap && l.is_ipv6() == peer.is_ipv6())
    }

    /// Publish the endpoint's counters for the metrics endpoint (after a batch of events, at
    /// most every `PUBLISH_EVERY`: the scrape reads the snapshot, never the engine).
    fn publish(&self, ep: &Endpoint) {
        let mut snap = ControlSnapshot {
            endpoint: ep.stats(),
            messages: ep.message_stats().clone(),
            tunnels_down: self.metrics.tunnels_down.clone(),
            sessions_down: self.metrics.sessions_down.clone(),
            pool: {
                let size: u64 = self
                    .profiles
                    .all()
                    .filter_map(|p| p.ppp.as_ref())
                    .flat_map(|s| s.pools.iter().map(|p| p.size()))
                    .sum();
                let leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
                (size > 0 || !leases.is_empty()).then_some((size, leases.len() as u64))
            },
            half_open: ep.half_open_count() as u64,
            timeout_work: ep.stats().last_timeout_work,
            not_control: self.not_control.load(std::sync::atomic::Ordering::Relaxed),
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

    /// The profile of tunnel `tid` (the default one for tunnels we opened).
    fn profile_of(&self, tid: u32) -> Arc<Profile> {
        self.tunnel_profiles
            .get(&tid)
            .cloned()
            .unwrap_or_else(|| self.profiles.default.clone())
    }

    /// The lowest free address of the first of `profile`'s pools that has one.
    fn lease(&mut self, key: (u32, u32), profile: &Profile) -> Option<std::net::Ipv4Addr> {
        let ppp = profile.ppp.as_ref()?;
        self.leases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .lease(key, &ppp.pools, ppp.local)
    }

    fn release(&mut self, key: (u32, u32)) {
        self.leases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .release(key);
    }
}

/// Longest delay between a change and the metrics snapshot that shows it.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// How often the devices of dynamic Ethernet pseudowires are checked for Circuit Status
/// when the link monitor cannot be opened.
const CIRCUIT_POLL: Duration = Duration::from_millis(250);
/// How often they are checked besides the link monitor's events.
const CIRCUIT_RESYNC: Duration = Duration::from_secs(5);

async fn run(mut st: State, up_rx: SeqPacket, mut cmds: mpsc::Receiver<Cmd>, mut ep: Endpoint) {
    let now = crate::clock::now;
    let (rx_tx, mut rx) = mpsc::channel(256);
    let _listeners: Vec<Task> = st
        .listeners
        .iter()
        .map(|l| {
            Task(tokio::spawn(listen(
                l.clone(),
                rx_tx.clone(),
                st.ops.clone(),
                st.not_control.clone(),
            )))
        })
        .collect();
    drop(rx_tx);
    // Circuit Status follows the devices' link events (rtnetlink); a periodic check catches
    // what a monitor that fell behind lost.
    let mut monitor = ul2tp_sys::linkmon::LinkMonitor::open()
        .map_err(|e| tracing::warn!("link monitor: {e}: pseudowire devices are polled"))
        .ok();
    let mut lbuf = vec![0u8; 32 * 1024];
    let mut circuit_poll = tokio::time::interval(if monitor.is_some() {
        CIRCUIT_RESYNC
    } else {
        CIRCUIT_POLL
    });
    circuit_poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ubuf = vec![0u8; MAX_DATAGRAM + 64];
    st.publish(&ep);
    // The snapshot is rebuilt at most every PUBLISH_EVERY (it walks every tunnel), and always
    // within PUBLISH_EVERY of a change.
    let mut published = std::time::Instant::now();
    let mut dirty = false;
    let mut drops = DropLog::default();
    loop {
        let mut wait = ep
            .poll_timeout()
            .map_or(Duration::from_secs(3600), |t| t - now().min(t));
        if dirty {
            wait = wait.min(PUBLISH_EVERY.saturating_sub(published.elapsed()));
        }
        tokio::select! {
            // Only control messages belong to the endpoint (docs/reference/kernel.md §1.2).
            Some((encap, from, m)) = rx.recv() => ep.handle_datagram_via(now(), encap, from, &m),
            r = up_rx.recv(&mut ubuf) => {
                // From the connected UDP sockets of established UDP tunnels (over IP, the
                // listener sees every control message).
                if let Ok(n) = r {
                    if let Some(SockMsg::Dgram { addr, conn_id, payload }) = SockMsg::decode(&ubuf[..n]) {
                        if is_control(Encap::Udp, &payload) {
                            ep.handle_datagram_via(now(), Encap::Udp, SocketAddr::new(addr, conn_id as u16), &payload);
                        } else {
                            st.not_control.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                }
            }
            _ = circuit_poll.tick(), if !st.circuits.is_empty() => circuits(&mut ep, &mut st, now()),
            r = async {
                match &monitor {
                    Some(m) => m.recv(&mut lbuf).await,
                    None => std::future::pending().await,
                }
            } => match r {
                Ok(evs) => {
                    for e in evs.iter().filter(|e| !e.deleted) {
                        let t = now();
                        if let Some((&key, c)) = st.circuits.iter_mut().find(|(_, c)| c.device.as_ref().is_some_and(|d| d.1 == e.ifindex)) {
                            // The event says something changed; the state is read now: events
                            // queued before a pppN was announced (created down, then up) are
                            // stale by the time they are read.
                            let name = e.name.as_deref().or(c.device.as_ref().map(|d| d.0.as_str()));
                            let up = name.and_then(|n| ul2tp_sys::link::is_up(n).ok()).unwrap_or(e.up);
                            let again = observe(&mut ep, key, c, up, t);
                            back_up(c, again);
                        }
                    }
                }
                // Events lost: read every device.
                Err(e) if ul2tp_sys::linkmon::is_overrun(&e) => circuits(&mut ep, &mut st, now()),
                Err(e) => {
                    tracing::warn!("link monitor: {e}: pseudowire devices are polled from now on");
                    monitor = None;
                    circuit_poll = tokio::time::interval(CIRCUIT_POLL);
                }
            },
            _ = tokio::time::sleep(wait) => ep.handle_timeout(now()),
            c = cmds.recv() => match c {
                None => break,
                Some(c) => command(&mut ep, &mut st, c, now()),
            },
        }
        while let Some(t) = ep.poll_transmit() {
            let Some(l) = st.listener(t.encap, t.dst.ip()) else {
                // connect refuses transports without a listener; nothing else sends.
                tracing::debug!("control send to {}: no {:?} listener", t.dst, t.encap);
                continue;
            };
            if let Err(e) = l.send_to(&t.bytes, t.dst).await {
                tracing::debug!("control send to {}: {e}", t.dst);
            }
        }
        while let Some(ev) = ep.poll_event() {
            let events = st.events.clone();
            let copy = (events.receiver_count() > 0).then(|| ev.clone());
            let close = apply(&mut st, ev).await;
            if let Some(ev) = copy {
                let _ = events.send(ev);
            }
            if let Some(close) = close {
                let _ = match close {
                    // [limits] max_tunnels reached: StopCCN 2 (general error) with Error
                    // Code 4 (insufficient resources).
                    (tid, None, true) => ep.close_tunnel_with_error(
                        now(),
                        tid,
                        StopCcnResult::GeneralError,
                        ErrorCode::InsufficientResources,
                        "tunnel limit reached",
                    ),
                    (tid, None, false) => {
                        ep.close_tunnel(now(), tid, StopCcnResult::GeneralRequest)
                    }
                    // A session the daemon cannot create (also max_sessions): CDN 4
                    // (temporary lack of facilities).
                    (tid, Some(sid), _) => {
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

/// Read the state of every watched pseudowire device (Circuit Status).
fn circuits(ep: &mut Endpoint, st: &mut State, now: Timestamp) {
    // One RTM_GETLINK dump for all of them (per-device ioctls cost 3 system calls each).
    let links: HashMap<(String, u32), bool> = match ul2tp_sys::linkmon::dump() {
        Ok(l) => l
            .into_iter()
            .filter_map(|e| Some(((e.name?, e.ifindex), e.up)))
            .collect(),
        Err(e) => return tracing::warn!("circuit status: link dump: {e}"),
    };
    for (&key, c) in st.circuits.iter_mut() {
        // A device that is gone is the session's business (it is being deleted).
        let Some((ifname, ifindex)) = &c.device else {
            continue;
        };
        // Its name may since belong to another device (pppN numbers are reused).
        if let Some(&up) = links.get(&(ifname.clone(), *ifindex)) {
            let again = observe(ep, key, c, up, now);
            back_up(c, again);
        }
    }
}

/// A pppN `again` up after being down: its PPP task restores what the kernel dropped.
fn back_up(c: &Circuit, again: bool) {
    if let (true, Some(n)) = (again, &c.back_up) {
        n.notify_one();
    }
}

/// A watched device is (administratively) `up` or not: report a change to the peer
/// (Set-Link-Info with Circuit Status). Returns whether it was reported up again.
fn observe(
    ep: &mut Endpoint,
    (tid, sid): (u32, u32),
    c: &mut Circuit,
    up: bool,
    now: Timestamp,
) -> bool {
    if !c.armed {
        c.armed = up;
        return false;
    }
    if up == c.reported_up {
        return false;
    }
    let status = if up { CIRCUIT_ACTIVE } else { 0 };
    match ep.set_link_info(now, tid, sid, status, (0, 0)) {
        Ok(()) => {
            c.reported_up = up;
            tracing::info!(
                tunnel_id = tid,
                session_id = sid,
                "{} {}: circuit {} reported to the peer",
                c.device.as_ref().map_or("-", |d| d.0.as_str()),
                if up { "up" } else { "down" },
                if up { "active" } else { "inactive" },
            );
            up
        }
        // Not established any more: the session is going away.
        Err(e) => {
            tracing::debug!("circuit status of {tid}/{sid}: {e:?}");
            false
        }
    }
}

/// Open a tunnel to `peer` over `encap` with `cfg`: L2TPv2 only over UDP, and only where a
/// listener of that transport and the peer's family exists (the tunnel's messages leave
/// from it).
fn connect(
    ep: &mut Endpoint,
    st: &State,
    now: Timestamp,
    peer: SocketAddr,
    encap: Encap,
    cfg: Config,
) -> ApiResult<u32> {
    if cfg.version == Version::V2 && encap == Encap::Ip {
        return Err(ApiError::new(
            Errno::EPROTONOSUPPORT,
            "L2TPv2 runs over UDP only (RFC 2661): use version 3 for encap ip",
        ));
    }
    if st.listener(encap, peer.ip()).is_none() {
        let (what, key) = match encap {
            Encap::Udp => ("UDP", "listen / listen_udp"),
            Encap::Ip => ("L2TPv3/IP", "listen_ip"),
        };
        let family = if peer.is_ipv6() { "IPv6" } else { "IPv4" };
        return Err(ApiError::new(
            Errno::EAFNOSUPPORT,
            format!("no {what} control listener for {family}: add one with [control] {key}"),
        ));
    }
    ep.connect_via(now, encap, peer, cfg).map_err(engine_err)
}

fn command(ep: &mut Endpoint, st: &mut State, c: Cmd, now: Timestamp) {
    match c {
        Cmd::Connect {
            peer,
            version,
            encap,
            reply,
        } => {
            let mut cfg = st.config.clone();
            cfg.version = version;
            let _ = reply.send(connect(ep, st, now, peer, encap, cfg));
        }
        Cmd::ConnectWith {
            peer,
            encap,
            tune,
            reply,
        } => {
            let mut cfg = st.config.clone();
            (tune.0)(&mut cfg);
            let _ = reply.send(connect(ep, st, now, peer, encap, cfg));
        }
        Cmd::Session {
            tid,
            cfg,
            ifname,
            vlan_id,
            reply,
        } => {
            let r = ep.open_session(now, tid, cfg).map_err(engine_err);
            if let (Ok(sid), Some(name)) = (&r, ifname) {
                st.ifnames.insert((tid, *sid), name);
            }
            if let (Ok(sid), Some(v)) = (&r, vlan_id) {
                st.vlans.insert((tid, *sid), v);
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
        Cmd::Profiles(mut p) => {
            // The IPv6 pools the running profiles and established tunnels lease from carry
            // over to the new profiles that declare them (unchanged profiles keep their state).
            let old: Vec<Arc<Profile>> = st
                .profiles
                .all()
                .chain(st.tunnel_profiles.values())
                .cloned()
                .collect();
            for w in p.adopt_pools(&old) {
                tracing::warn!("reload: [[lns]] {w}");
            }
            ep.set_selector(selector(&p));
            st.profiles = p;
        }
        Cmd::Confirmed { tid, reply } => {
            let c = match ep.tunnel_stats(tid) {
                Some(s) if s.state == "established" && s.unacked == 0 => Confirmation::Acknowledged,
                Some(s) if s.state == "established" => Confirmation::Pending,
                _ => Confirmation::Down,
            };
            let _ = reply.send(Ok(c));
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
        Cmd::PppUnit { key, unit } => {
            // Only the pseudowires whose circuit is reported (dynamic L2TPv3 sessions).
            let Some(c) = st.circuits.get_mut(&key) else {
                return;
            };
            c.back_up = unit.as_ref().map(|u| u.back_up.clone());
            c.device = unit.map(|u| (u.name, u.ifindex));
            if let Some((ifname, _)) = &c.device {
                // Brought up by the PPP endpoint: from now on its state is the circuit's.
                // A unit that replaces one that was down is reported active again (it is
                // new: nothing to restore).
                c.armed = true;
                if let Ok(up) = ul2tp_sys::link::is_up(ifname) {
                    observe(ep, key, c, up, now);
                }
            }
        }
    }
}

/// Turn an endpoint event into data-path changes. Returns a tunnel or session the endpoint
/// must close because the data path refused it.
/// What to clear with the peer after an event the store could not follow: a tunnel or a
/// session, and whether for lack of room (`ENOSPC`, `[limits]`).
type Close = (u32, Option<u32>, bool);

async fn apply(st: &mut State, ev: Event) -> Option<Close> {
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
            (info.tunnel_id, None, e.errno == Errno::ENOSPC)
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
            st.tunnel_profiles.remove(&tunnel_id);
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
            (
                info.tunnel_id,
                Some(info.session_id),
                e.errno == Errno::ENOSPC,
            )
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
            st.vlans.remove(&(tunnel_id, session_id));
            st.circuits.remove(&(tunnel_id, session_id));
            st.release((tunnel_id, session_id));
            if let Some(s) = d.registry.session_get(tunnel_id, session_id) {
                let _ = d.session_delete_locked(&mut ctl, &s);
            }
            None
        }
        Event::LinkInfo {
            tunnel_id,
            session_id,
            circuit_status: Some(cs),
            ..
        } => {
            // RFC 4719 §2.3.1: the peer's attachment circuit went down or came back: so does
            // our device's carrier.
            let up = cs & CIRCUIT_ACTIVE != 0;
            let key = (tunnel_id, session_id);
            match peer_circuit(&d, &ctl, key, up) {
                Some(Ok(())) => tracing::info!(
                    tunnel_id,
                    session_id,
                    "session {tunnel_id}/{session_id}: peer reports its circuit {}: carrier {}",
                    if up { "active" } else { "inactive" },
                    if up { "on" } else { "off" },
                ),
                Some(Err(e)) => {
                    tracing::warn!(
                        tunnel_id,
                        session_id,
                        "session {tunnel_id}/{session_id}: carrier: {e}"
                    )
                }
                None => {}
            }
            None
        }
        Event::LinkInfo { .. } | Event::WanError { .. } => None,
    }
}

/// The peer reports its circuit active (`up`) or not: an Ethernet pseudowire's device gets
/// or loses its carrier now; a PPP pseudowire's endpoint switches its pppN's (now and for
/// every later unit, `pppd.rs`). `None` for a session with neither.
fn peer_circuit(d: &Store, ctl: &Ctl, key: (u32, u32), up: bool) -> Option<std::io::Result<()>> {
    if let Some(r) = d.pseudowires.set_carrier(key, up) {
        return Some(r);
    }
    let s = d.registry.session_get(key.0, key.1)?;
    if s.pw_type() != PwType::Ppp {
        return None;
    }
    ctl.sessions.get(&key)?.peer_circuit_down.send_replace(!up);
    Some(Ok(()))
}

fn tunnel_up(d: &Store, ctl: &mut Ctl, st: &mut State, info: &TunnelInfo) -> ApiResult<()> {
    let mut lns_profile = None;
    if !info.initiator {
        // The profile the selector chose (by the name it carries; a reload since keeps the
        // tunnel on the default profile only if the name is gone).
        let p = st
            .profiles
            .by_name(&info.profile)
            .unwrap_or_else(|| st.profiles.default.clone());
        lns_profile = Some(p.name.clone());
        st.tunnel_profiles.insert(info.tunnel_id, p);
    }
    let local = st
        .listener(info.encap, info.peer.ip())
        .and_then(|l| l.local_addr().ok())
        .ok_or_else(|| ApiError::new(Errno::EAFNOSUPPORT, "no listener for the tunnel"))?;
    let sock = match info.encap {
        Encap::Udp => {
            // A socket connected to the peer from the endpoint's address: data and control
            // from that peer arrive on it; control goes back to the endpoint through the
            // upcall.
            let sock = UdpTunnelSocket::open_reuse_port(local, info.peer, UdpOptions::default())
                .map_err(|e| io_err("tunnel socket", e))?;
            let sock = d.add_socket(ctl, TunnelSocket::Udp(sock), None);
            sock.upcall.store(Some(st.upcall.clone()));
            // Only control messages go up; the rest is dropped and counted.
            sock.control_only
                .store(true, std::sync::atomic::Ordering::Relaxed);
            sock
        }
        Encap::Ip => {
            // A raw socket connected to the peer carries the data (the listener gets the
            // control messages). From the address the peer is reached from, so that it is
            // the one socket of static tunnels between the same addresses too.
            let local = if local.ip().is_unspecified() {
                source_address(info.peer.ip()).map_err(|e| io_err("route to the peer", e))?
            } else {
                local.ip()
            };
            let (l, r) = (
                SocketAddr::new(local, 0),
                SocketAddr::new(info.peer.ip(), 0),
            );
            d.unmanaged_socket(ctl, Encap::Ip, l, r, &DpTunnelInfo::default())?
        }
    };
    let p = TunnelParams {
        tunnel_id: info.tunnel_id,
        peer_tunnel_id: info.peer_tunnel_id,
        version: info.version,
        encap: info.encap,
        socket: sock.id,
    };
    d.register_tunnel(ctl, p, sock, DpTunnelInfo::default())?;
    if let Some(rt) = ctl.tunnels.get_mut(&info.tunnel_id) {
        rt.facts = Some(crate::store::ControlFacts {
            peer_host_name: info.peer_host_name.clone(),
            lns_profile,
        });
    }
    ctl.dynamic.insert(info.tunnel_id);
    tracing::info!(
        tunnel_id = info.tunnel_id,
        peer_host_name = ?info.peer_host_name,
        profile = %info.profile,
        "dynamic tunnel {} up with {} over {} ({:?}){}",
        info.tunnel_id,
        info.peer,
        match info.encap {
            Encap::Udp => "UDP",
            Encap::Ip => "IP",
        },
        info.peer_host_name,
        if info.profile.is_empty() {
            String::new()
        } else {
            format!(", profile {}", info.profile)
        }
    );
    Ok(())
}

/// The local address the kernel sends from towards `peer` (a route lookup: connecting a UDP
/// socket sends nothing).
fn source_address(peer: IpAddr) -> std::io::Result<IpAddr> {
    let any: IpAddr = if peer.is_ipv6() {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    };
    let s = std::net::UdpSocket::bind((any, 0))?;
    s.connect((peer, 9))?;
    Ok(s.local_addr()?.ip())
}

/// The local VLAN of an Ethernet VLAN session: the one given to `control_session` for a
/// session we open; for one the peer opens, its Remote End ID names our attachment circuit
/// (RFC 4667 §4.3.1), here a VLAN id in decimal.
fn vlan_of(st: &State, info: &SessionInfo) -> ApiResult<u16> {
    if let Some(&v) = st.vlans.get(&(info.tunnel_id, info.session_id)) {
        return Ok(v);
    }
    std::str::from_utf8(&info.remote_end_id)
        .ok()
        .and_then(|s| s.trim().parse::<u16>().ok())
        .filter(|v| (1..=4094).contains(v))
        .ok_or_else(|| {
            ApiError::new(
                Errno::EINVAL,
                format!(
                    "Ethernet VLAN pseudowire: Remote End ID {:?} is not a VLAN id 1-4094",
                    String::from_utf8_lossy(&info.remote_end_id)
                ),
            )
        })
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
    if v3 && info.pw_type == PwType::EthernetVlan {
        params.vlan_id = Some(vlan_of(st, info)?);
    }
    let eth = v3 && (info.pw_type == PwType::Ethernet || info.pw_type == PwType::EthernetVlan);
    let tap = if eth {
        let name = st
            .ifnames
            .get(&(info.tunnel_id, info.session_id))
            .map(String::as_str);
        let tap = d
            .create_tap(name)
            .map_err(|e| io_err("pseudowire device", e))?;
        if let Err(e) = d.apply_stable_mac(tap.name(), info.tunnel_id, info.session_id) {
            d.discard_tap(tap);
            return Err(io_err("pseudowire stable MAC address", e));
        }
        params.ifname = Some(tap.name().to_string());
        Some(tap)
    } else {
        None
    };
    let watched = params.ifname.clone();
    let tap_index = tap.as_ref().map_or(0, |t| t.ifindex());
    let s = match d.registry.session_create(info.tunnel_id, params) {
        Ok(s) => s,
        Err(e) => {
            if let Some(tap) = tap {
                d.discard_tap(tap);
            }
            return Err(ApiError::new(e, format!("session {}", info.session_id)));
        }
    };
    d.start_session(ctl, &s, tap)?;
    if info
        .peer_circuit_status
        .is_some_and(|c| c & CIRCUIT_ACTIVE == 0)
    {
        // The peer's circuit is down from the start: no carrier until it reports it active.
        let key = (info.tunnel_id, info.session_id);
        if let Some(Err(e)) = peer_circuit(d, ctl, key, false) {
            tracing::warn!("session {}/{}: carrier: {e}", key.0, key.1);
        }
    }
    // Ethernet: the device; PPP: its pppN once the endpoint creates one (`Cmd::PppUnit`).
    if watched.is_some() || (v3 && info.pw_type == PwType::Ppp) {
        st.circuits.insert(
            (info.tunnel_id, info.session_id),
            Circuit {
                device: watched.map(|n| (n, tap_index)),
                back_up: None,
                armed: false,
                reported_up: true,
            },
        );
    }
    d.notify(Command::SessionCreate, session_attrs(&s, ctl));
    // LNS: terminate PPP sessions the peer opened with our own PPP endpoint.
    if info.pw_type == PwType::Ppp && !info.initiator {
        let profile = st.profile_of(info.tunnel_id);
        if let Some(ppp) = &profile.ppp {
            let key = (info.tunnel_id, info.session_id);
            let v6_only = ppp.ipv6_only();
            let peer = if v6_only {
                None
            } else {
                st.lease(key, &profile)
            };
            if peer.is_none() && !v6_only {
                // No address free now: PPP runs, and unless RADIUS assigns one (or moves the
                // call to a pool with room) the PPP task ends the call as IPCP would start
                // (LCP Terminate, CDN 2 naming the pools; `pppd.rs`).
                tracing::debug!(
                    tunnel_id = info.tunnel_id,
                    session_id = info.session_id,
                    "session {}/{}: no free address in the pools of profile {}",
                    info.tunnel_id,
                    info.session_id,
                    profile.name
                );
            }
            let setup = crate::pppd::PppSetup {
                local: (!v6_only).then_some(ppp.local),
                peer,
                no_ipv4: v6_only,
                user: None,
                require: ppp.require.clone(),
                users: ppp.users.clone(),
                auth_name: Some(profile.config.host_name.clone()),
                // The LAC side starts PPP once the call is up: wait for its first frame.
                passive: true,
                echo: ppp.echo,
                radius: st.ops.radius.load_full(),
                dns: ppp.dns,
                nbns: ppp.nbns,
                mtu: ppp.mtu,
                mru: ppp.mru,
                idle_timeout: ppp.idle_timeout,
                session_timeout: ppp.session_timeout,
                request_dns: false,
                profile: Some(profile.name.clone()),
                pool: st
                    .leases
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(key)
                    .map(|l| l.pool.clone()),
                lease: (!v6_only).then(|| crate::leases::CallLease {
                    leases: st.leases.clone(),
                    key,
                    pools: ppp.pools.clone(),
                    local: ppp.local,
                    profile: profile.name.clone(),
                }),
                ipv6_pool: ppp.ipv6.pool.as_ref().map(|p| p.shared.clone()),
                ipv6_client: Default::default(),
                ipv6_pd_pool: ppp.ipv6.pd.as_ref().map(|p| p.shared.clone()),
                ipv6_dns: ppp.ipv6.dns.clone(),
                station_ids: (info.calling_number.clone(), info.remote_end_id.clone()),
                shared: ppp
                    .shared_device
                    .clone()
                    .map(|device| crate::ppp_shared::SharedSpec {
                        device,
                        pools: ppp.pools.clone(),
                        mtu: ppp.mtu,
                    }),
            };
            // The outcome is logged by the endpoint; nobody waits for it here.
            if let Err(e) = crate::pppd::start(d, ctl, s.clone(), setup) {
                st.release(key);
                return Err(e);
            }
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

    /// The predicate the engine gets answers from the data path's tables: a tunnel created
    /// outside the engine makes its id unavailable, deleting it frees it.
    #[test]
    fn static_tunnel_ids_are_in_use_for_the_engine() {
        let registry = Arc::new(ul2tp_core::Registry::new());
        let in_use = tunnel_id_in_use(&registry);
        assert!(!in_use(3000));
        let p = TunnelParams {
            tunnel_id: 3000,
            peer_tunnel_id: 4000,
            version: Version::V3,
            encap: Encap::Udp,
            socket: ul2tp_core::SocketId(1),
        };
        registry.tunnel_create(p).unwrap();
        assert!(in_use(3000));
        assert!(!in_use(3001));
        registry.tunnel_delete(3000).unwrap();
        assert!(!in_use(3000));
    }

    #[test]
    fn refusal_logging_has_a_budget() {
        let t0 = std::time::Instant::now();
        let mut b = LogBudget::new(3, Duration::from_secs(60), t0);
        let got: Vec<(bool, u64)> = (0..5).map(|_| b.take(t0)).collect();
        assert_eq!(
            got,
            [(true, 0), (true, 0), (true, 0), (false, 0), (false, 0)]
        );
        // The next window logs again and reports the 2 kept quiet, once.
        let t1 = t0 + Duration::from_secs(61);
        assert_eq!(b.take(t1), (true, 2));
        assert_eq!(b.take(t1), (true, 0));
    }

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
