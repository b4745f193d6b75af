//! The userspace PPP endpoint of a PPP session (the pppd the kernel leaves to userspace).
//!
//! `ppp_start` attaches a `ul2tp-ppp` endpoint to a PPP session (L2TPv2, or pw_type 7 in
//! L2TPv3): PPP frames received on the session go to the endpoint, its frames go out with
//! FF 03 in front (docs/reference/kernel.md §1.7), and once IPCP or IPv6CP is up a TUN device `pppN`
//! appears (with the negotiated point-to-point IPv4 addresses once IPCP is up, the IPv6 ones
//! from `ppp_ipv6.rs`), carrying IP packets between the host and the session; it goes when
//! the last of them goes down. Deleting the session stops the endpoint.
//!
//! Everything the endpoint queues is sent before the task waits again: right after `open()`
//! (so the first LCP Configure-Request leaves at once, not on the 3 s restart timer) and after
//! every frame, packet and timeout. The endpoint of a call an LNS terminates is passive (like
//! pppd's `passive`): it opens when the peer's first frame arrives, so that its own first
//! Configure-Request is not lost while the LAC side has not started PPP yet.
//!
//! When the link goes down the device goes away and the call is cleared: a negotiated
//! (dynamic) session is closed with a CDN carrying a Result Code and the RFC 3145 PPP
//! Disconnect Cause Code (see [`clear_cause`]), which deletes the data-path session; on a
//! static session the endpoint is detached. The `ppp_start` request is answered when the
//! outcome is known: IPCP up (IPv6CP on an IPv6-only link), or the reason the link failed
//! (authentication rejected, no address left, ...).
//!
//! Circuit Status of an L2TPv3 PPP pseudowire: each pppN that comes or goes is announced to
//! the control plane, which reports its administrative state to the peer; the peer's state
//! reaches the task through the session's `peer_circuit_down` watch and switches the pppN's
//! carrier, also of every later unit.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use ul2tp_api::{ApiError, Errno};
use ul2tp_control::CdnResult;
use ul2tp_core::PwType;
use ul2tp_core::Session;
use ul2tp_ppp::fsm::State;
use ul2tp_ppp::{DownReason, Endpoint, Event, IpPacket};
use ul2tp_sys::rtnl::{add_address, IfAddr};
use ul2tp_sys::tap::Tun;
use ul2tp_wire::avp::PppDisconnectCause as Cause;
use ul2tp_wire::ppp::proto;

use crate::datapath::{self, Pseudowire, TunnelSocket};
use crate::ppp_shared::LinkDev;
use crate::reaper::Reaped;
use crate::store::{ApiResult, Ctl, PppInfo, Store, Task};

/// How an endpoint is set up.
#[derive(Debug, Clone, Default)]
pub(crate) struct PppSetup {
    /// Our address (server side) or `None` to ask the peer.
    pub(crate) local: Option<Ipv4Addr>,
    /// The address we assign to the peer (server side).
    pub(crate) peer: Option<Ipv4Addr>,
    /// Our own credentials (client side).
    pub(crate) user: Option<(String, String)>,
    /// Authentication we require (server side), with the accepted (name, secret) pairs.
    pub(crate) require: Vec<ul2tp_ppp::AuthProtocol>,
    /// Accepted peers.
    pub(crate) users: Vec<(String, String)>,
    /// Our name as authenticator (CHAP / MS-CHAPv2 Challenges): the `[control] host_name`.
    /// `None` keeps the endpoint's default.
    pub(crate) auth_name: Option<String>,
    /// No IPv4 on the link: IPCP is not run (an IPv6-only LNS profile); the pppN comes
    /// with IPv6CP.
    pub(crate) no_ipv4: bool,
    /// Wait for the peer's first frame before opening LCP (LNS side of a call).
    pub(crate) passive: bool,
    /// LCP Echo-Request interval and failures before the link is declared dead; `None` keeps
    /// the endpoint's defaults (10 s, 3).
    pub(crate) echo: Option<(Duration, u32)>,
    /// Authenticate the peer and account for the session with RADIUS (`[radius]`).
    pub(crate) radius: Option<Arc<crate::radius::Radius>>,
    /// DNS servers handed to the peer in IPCP (server side, RFC 1877).
    pub(crate) dns: [Option<Ipv4Addr>; 2],
    /// NBNS servers handed to the peer in IPCP.
    pub(crate) nbns: [Option<Ipv4Addr>; 2],
    /// MTU of the pppN device.
    pub(crate) mtu: Option<u16>,
    /// MRU negotiated in LCP.
    pub(crate) mru: Option<u16>,
    /// Clear the call after this long without IP packets in either direction.
    pub(crate) idle_timeout: Option<Duration>,
    /// Clear the call after this long, busy or not.
    pub(crate) session_timeout: Option<Duration>,
    /// Ask the peer for DNS servers (client side).
    pub(crate) request_dns: bool,
    /// The `[[lns]]` profile and the pool of the call (for `show session`).
    pub(crate) profile: Option<String>,
    /// The pool `peer` was leased from.
    pub(crate) pool: Option<String>,
    /// LNS: the pool the session's IPv6 /64 comes from (`ppp_ipv6_pool`, `ppp_ipv6.rs`).
    pub(crate) ipv6_pool: Option<crate::ppp_ipv6::SharedPool>,
    /// Client: IPv6 default route, prefix delegation (`ppp_ipv6_default_route`, `ppp_ipv6_pd`).
    pub(crate) ipv6_client: crate::ppp_ipv6::ClientV6,
    /// LNS: the pool of delegated prefixes (`ppp_ipv6_pd_pool`, `ppp_dhcp6.rs`).
    pub(crate) ipv6_pd_pool: Option<crate::ppp_ipv6::SharedPool>,
    /// LNS: DNS servers advertised with the prefix (`ppp_ipv6_dns`).
    pub(crate) ipv6_dns: Vec<std::net::Ipv6Addr>,
    /// LNS: the (Calling Number, Called Number) of the call's ICRQ, for RADIUS
    /// (Calling-Station-Id, Called-Station-Id); empty when the LAC sent none.
    pub(crate) station_ids: (Vec<u8>, Vec<u8>),
    /// LNS: the call's address lease, which RADIUS may change (`leases.rs`).
    pub(crate) lease: Option<crate::leases::CallLease>,
    /// LNS: `ppp_device = "shared"`: the call goes onto this shared device, not a pppN.
    pub(crate) shared: Option<crate::ppp_shared::SharedSpec>,
}

impl PppSetup {
    /// Our side of IPv6 on the link: router with a pool, host as a client, link-local only
    /// as a server without a pool.
    fn ipv6_role(&self) -> crate::ppp_ipv6::Role {
        use crate::ppp_ipv6::Role;
        match &self.ipv6_pool {
            Some(p) => Role::Router(p.clone()),
            None if self.peer.is_some() => Role::LinkLocal,
            None => Role::Host {
                default_route: self.ipv6_client.default_route,
            },
        }
    }
}

/// The endpoint configuration a setup describes.
pub(crate) fn ppp_config(setup: &PppSetup) -> ul2tp_ppp::Config {
    let mut cfg = ul2tp_ppp::Config {
        local_ip: setup.local,
        peer_ip: setup.peer,
        user: setup
            .user
            .clone()
            .map(|(u, p)| (u.into_bytes(), p.into_bytes())),
        require_auth: setup.require.clone(),
        external_auth: setup.radius.is_some() && !setup.require.is_empty(),
        dns: setup.dns,
        nbns: setup.nbns,
        // The peer assigns our address: ask it for DNS servers too (RFC 1877).
        request_dns: setup.request_dns || setup.local.is_none(),
        // IPv6CP (RFC 5072) on every link: interface identifiers for the link-local
        // addresses, then Router Advertisements (`ppp_ipv6.rs`).
        // (Not on a shared device, which carries IPv4 only: `ppp_shared.rs`.)
        ipv6cp: setup.shared.is_none(),
        ipcp: !setup.no_ipv4,
        // An LNS call with an IPv4 service: no address (pools exhausted, RADIUS gave none)
        // ends the call rather than letting the peer pick one.
        require_peer_ip: setup.lease.is_some(),
        ..ul2tp_ppp::Config::default()
    };
    if let Some(m) = setup.mru {
        cfg.mru = m;
    }
    if let Some(name) = &setup.auth_name {
        cfg.auth_name = name.clone().into_bytes();
    }
    if let Some((interval, failures)) = setup.echo {
        cfg.echo_interval_us = Some(interval.as_micros().max(1) as u64);
        cfg.echo_failure = failures.max(1);
    }
    cfg
}

/// The outcome of a `ppp_start`: `Ok` once IPCP is up, the reason the link failed otherwise.
pub(crate) type Ready = oneshot::Receiver<ApiResult<()>>;

/// Wait for the outcome of [`start`].
pub(crate) async fn wait_ready(ready: Ready) -> ApiResult<()> {
    ready.await.unwrap_or_else(|_| {
        Err(ApiError::new(
            Errno::EIO,
            "the PPP endpoint stopped before the link came up (the session was deleted)",
        ))
    })
}

/// How long a passive endpoint waits for the peer's first frame before opening LCP itself.
const PASSIVE_WAIT: Duration = Duration::from_secs(30);

/// Attach an endpoint to `session`. The returned receiver reports the outcome.
pub(crate) fn start(
    d: &Store,
    ctl: &mut Ctl,
    session: Arc<Session>,
    setup: PppSetup,
) -> ApiResult<Ready> {
    let key = (session.tunnel_id(), session.session_id());
    if session.pw_type() != PwType::Ppp {
        return Err(ApiError::new(Errno::EPROTOTYPE, "not a PPP session"));
    }
    if ctl.attached.contains(&key) {
        return Err(ApiError::new(
            Errno::EBUSY,
            "the session already has a PPP endpoint or socket",
        ));
    }
    let socket = ctl
        .tunnels
        .get(&key.0)
        .map(|t| t.sock.socket.clone())
        .ok_or_else(|| ApiError::new(Errno::ENODEV, "no tunnel"))?;
    // Magic numbers and CHAP challenges must be unpredictable: 256 bits from getrandom(2).
    // Without them the session gets no PPP endpoint.
    let seed = crate::entropy::os_seed().map_err(|e| {
        tracing::error!(
            "{}: PPP endpoint not started: no random seed: {e}",
            session.name()
        );
        ApiError::new(Errno::EIO, format!("PPP endpoint not started: {e}"))
    })?;
    let cfg = ppp_config(&setup);
    let v6 = crate::ppp_ipv6::Ipv6Link::new(setup.ipv6_role(), d.ops.clone())
        .with_dns(setup.ipv6_dns.clone())
        .with_pd_pool(setup.ipv6_pd_pool.clone())
        .with_pd_client(setup.ipv6_client.prefix_delegation);
    let v6_shown = crate::ppp_ipv6::LinkPrefix::default();
    let users = ul2tp_ppp::StaticCredentials(
        setup
            .users
            .into_iter()
            .map(|(u, p)| (u.into_bytes(), p.into_bytes()))
            .collect(),
    );
    let info = Arc::new(std::sync::Mutex::new(PppInfo {
        user: setup.user.as_ref().map(|(u, _)| u.clone()),
        profile: setup.profile.clone(),
        pool: setup.pool.clone(),
        ..PppInfo::default()
    }));
    let timers = Timers {
        mtu: setup.mtu,
        idle: setup.idle_timeout,
        session: setup.session_timeout,
    };
    let (tx, rx) = mpsc::channel(1024);
    let (ready_tx, ready) = oneshot::channel();
    let offload = d.datapath_config().offload;
    d.pseudowires.insert(key, Arc::new(Pseudowire::PppLink(tx)));
    ctl.attached.insert(key);
    let mut ep = Endpoint::new(cfg, seed);
    ep.set_credentials(Box::new(users));
    let (verdict_tx, verdicts) = mpsc::channel(4);
    let (dae_tx, dae) = mpsc::channel(4);
    let radius = setup.radius.map(|r| {
        let (local, peer) = (socket.local_addr().ok(), socket.peer_addr().ok());
        let ids = setup.station_ids.clone();
        crate::radius::RadiusSession::new(r, session.clone(), (local, peer), ids, dae_tx)
    });
    let peer_circuit_down = ctl
        .sessions
        .entry(key)
        .or_default()
        .peer_circuit_down
        .subscribe();
    let link = Link {
        shared: setup.shared,
        peer_circuit_down,
        back_up: Default::default(),
        lease: setup.lease,
        routes: Vec::new(),
        radius,
        verdict_tx,
        verdicts,
        dae,
        v6,
        v6_shown: v6_shown.clone(),
        d: d.me.clone(),
        session,
        socket,
        rx,
        ready: Some(ready_tx),
        passive: setup.passive,
        info: info.clone(),
        timers,
        offload,
    };
    let task = Task(tokio::spawn(link.run(ep)));
    let rt = ctl.sessions.entry(key).or_default();
    rt.tasks.push(task);
    rt.ppp = Some(info);
    rt.ppp_ipv6 = Some(v6_shown);
    Ok(ready)
}

/// What the task learnt about the link that the endpoint's `LinkDown` reason does not say.
#[derive(Debug, Default)]
struct Seen {
    /// Any frame arrived from the peer.
    frames: bool,
    /// LCP reached Opened.
    link_up: bool,
    /// Protocol of the last PAP or CHAP frame received (0: none).
    last_proto: u16,
    /// Authentication failed: (we rejected the peer, protocol).
    auth: Option<(bool, u16)>,
    /// We closed the link because a timer of the profile ran out.
    expired: Option<Expired>,
    /// IP packets from the peer since the run loop last looked.
    ip_rx: bool,
}

/// The profile timers that clear a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expired {
    /// `ppp_idle_timeout`: no IP packet either way for that long.
    Idle,
    /// `ppp_session_timeout`: the call lasted that long.
    Session,
}

/// The per-profile limits of a link.
#[derive(Debug, Clone, Copy, Default)]
struct Timers {
    /// pppN MTU (at most the peer's MRU).
    mtu: Option<u16>,
    /// Idle timeout.
    idle: Option<Duration>,
    /// Session timeout.
    session: Option<Duration>,
}

/// PPP frames taken from the session's queue per wake-up at most.
const RX_DRAIN: usize = 64;

/// Where `drain` sends: the batch (made on first use) and what it sends through.
type TxOut<'a, 'b> = (
    &'a mut Option<datapath::TxBatch<'b>>,
    &'b Session,
    &'b TunnelSocket,
);

struct Link {
    /// The shared device of the call, if it has no pppN of its own.
    shared: Option<crate::ppp_shared::SharedSpec>,
    /// The peer reports its circuit inactive (Circuit Status): the pppN has no carrier.
    peer_circuit_down: tokio::sync::watch::Receiver<bool>,
    /// The control plane saw the pppN up again after it was taken down (`PppUnit`).
    back_up: Arc<tokio::sync::Notify>,
    /// The call's address lease (LNS).
    lease: Option<crate::leases::CallLease>,
    /// Framed-Route prefixes to route through the pppN.
    routes: Vec<(Ipv4Addr, u8)>,
    /// The session's RADIUS side, with the verdicts of its Access-Requests.
    radius: Option<crate::radius::RadiusSession>,
    verdict_tx: mpsc::Sender<(Vec<u8>, crate::radius::Verdict)>,
    verdicts: mpsc::Receiver<(Vec<u8>, crate::radius::Verdict)>,
    /// Disconnect- / CoA-Requests for the session (RFC 5176).
    dae: mpsc::Receiver<crate::radius::DaeCommand>,
    d: Weak<Store>,
    session: Arc<Session>,
    socket: Arc<TunnelSocket>,
    rx: mpsc::Receiver<Vec<u8>>,
    ready: Option<oneshot::Sender<ApiResult<()>>>,
    passive: bool,
    info: Arc<std::sync::Mutex<PppInfo>>,
    timers: Timers,
    /// IPv6 on the link once IPv6CP is up (`ppp_ipv6.rs`).
    v6: crate::ppp_ipv6::Ipv6Link,
    /// Its /64 for `show session`.
    v6_shown: crate::ppp_ipv6::LinkPrefix,
    /// The pppN takes the offload path (`ppp_io.rs`, `[datapath] offload`).
    offload: bool,
}

impl Link {
    /// Report the outcome of `ppp_start` (the first one counts).
    fn report(&mut self, r: ApiResult<()>) {
        if let Some(tx) = self.ready.take() {
            let _ = tx.send(r);
        }
    }

    async fn run(mut self, mut ep: Endpoint) {
        let now = crate::clock::now;
        let start = now();
        let name = self.session.name();
        let mut opened = !self.passive;
        if opened {
            ep.open(now());
        }
        let mut tun: Option<LinkDev> = None;
        let mut circuit_watched = true;
        let mut seen = Seen::default();
        let mut io = crate::ppp_io::TunIo::new(self.offload);
        // A shared device's packets for the call (sized when the first one is read).
        let mut buf = Vec::new();
        // Idle and session timeouts run from IPCP up (the time online); any IP packet
        // either way restarts the idle one.
        let mut last_ip = std::time::Instant::now();
        let mut up_since: Option<std::time::Instant> = None;
        let (session, socket) = (self.session.clone(), self.socket.clone());
        // Made when first needed (`drain`): its buffer is 128 KiB.
        let mut batch = None;
        loop {
            // Send everything the last input (or open) queued before waiting again.
            if let Some(reason) = self
                .drain(
                    &mut ep,
                    &mut tun,
                    &mut io,
                    &mut seen,
                    &name,
                    (&mut batch, &session, &socket),
                )
                .await
            {
                self.link_down(reason, &seen, &name).await;
                return;
            }
            if std::mem::take(&mut seen.ip_rx) {
                last_ip = std::time::Instant::now();
            }
            if tun.is_some() && up_since.is_none() {
                up_since = Some(std::time::Instant::now());
                last_ip = std::time::Instant::now();
            } else if tun.is_none() {
                up_since = None;
            }
            // The profile's timers, once online.
            let expiry = up_since.and_then(|since| {
                let idle = self.timers.idle.map(|t| (last_ip + t, Expired::Idle));
                let session = self.timers.session.map(|t| (since + t, Expired::Session));
                [idle, session].into_iter().flatten().min_by_key(|x| x.0)
            });
            if let Some((at, what)) = expiry {
                if seen.expired.is_none() && at <= std::time::Instant::now() {
                    let t = match what {
                        Expired::Idle => self.timers.idle,
                        Expired::Session => self.timers.session,
                    }
                    .unwrap_or_default();
                    tracing::info!(
                        tunnel_id = self.session.tunnel_id(),
                        session_id = self.session.session_id(),
                        "{name}: PPP {} ({} s): closing the link",
                        expired_text(what),
                        t.as_secs()
                    );
                    seen.expired = Some(what);
                    ep.close(now());
                    continue;
                }
            }
            let mut wait = match ep.poll_timeout() {
                Some(t) => t - now(),
                None if !opened => PASSIVE_WAIT.saturating_sub(now() - start),
                None => Duration::from_secs(3600),
            };
            let radius_due = self.radius.as_ref().and_then(|r| r.next_due());
            if let Some((at, _)) = expiry.filter(|_| seen.expired.is_none()) {
                wait = wait.min(at.saturating_duration_since(std::time::Instant::now()));
            }
            let wait = match self.v6.deadline() {
                Some(t) => wait.min(t.saturating_duration_since(tokio::time::Instant::now())),
                None => wait,
            };
            tokio::select! {
                Some((user, v)) = self.verdicts.recv() => self.verdict(&mut ep, user, v, &name),
                r = self.peer_circuit_down.changed(), if circuit_watched => match r {
                    Ok(()) => {
                        let down = *self.peer_circuit_down.borrow_and_update();
                        if let Some(t) = tun.as_ref().and_then(LinkDev::own) {
                            peer_circuit(t, down, &name);
                        }
                    }
                    // The session's runtime is gone (it is being deleted).
                    Err(_) => circuit_watched = false,
                },
                _ = self.back_up.notified(), if tun.is_some() => {
                    // Down, the kernel dropped the device's routes and IPv6 addresses (the
                    // IPv4 address and peer route stay): put them back.
                    if let Some(t) = tun.as_ref().and_then(LinkDev::own) {
                        let (tunnel_id, session_id) = (session.tunnel_id(), session.session_id());
                        tracing::info!(tunnel_id, session_id, "{name}: {} up again: restoring its routes and IPv6 addresses", t.name());
                        if self.info.lock().unwrap_or_else(|e| e.into_inner()).addrs.is_some() {
                            self.framed_routes(t, &name);
                        }
                        self.v6.detach();
                        for p in self.v6.attach(t, &name) {
                            let _ = ep.send_ip(&p);
                        }
                    }
                }
                Some(c) = self.dae.recv() => {
                    if let Some(r) = self.radius.as_mut() {
                        tracing::info!("{name}: RADIUS dynamic authorization: {c:?}");
                        if let Some(cause) = r.command(c) {
                            r.cause = Some(cause);
                            ep.close(now());
                        }
                    }
                }
                _ = async {
                    match radius_due {
                        Some((t, _)) => tokio::time::sleep_until(t.into()).await,
                        None => std::future::pending().await,
                    }
                } => {
                    let (r, due) = (self.radius.as_mut(), radius_due.map(|d| d.1));
                    if let (Some(r), Some(due)) = (r, due) {
                        if let Some(cause) = r.fire(due) {
                            tracing::info!("{name}: RADIUS {due:?} reached: ending the session");
                            r.cause = Some(cause);
                            ep.close(now());
                        }
                    }
                }
                f = self.rx.recv() => match f {
                    Some(f) => {
                        if !opened {
                            ep.open(now());
                            opened = true;
                        }
                        // Take what else is queued (up to a bound) before answering, as long
                        // as the frames are IP packets: a control frame is acted on (drain,
                        // events with the protocol it came with) before the next is read.
                        let (mut f, mut taken) = (f, 1);
                        loop {
                            seen.frames = true;
                            let p = ul2tp_ppp::packet::split_frame(&f).map(|(p, _)| p);
                            // The authentication protocol of the last PAP / CHAP frame.
                            if let Ok(p @ (proto::PAP | proto::CHAP)) = p {
                                seen.last_proto = p;
                            }
                            let _ = ep.handle_frame(now(), &f);
                            let ip = matches!(p, Ok(proto::IPV4 | proto::IPV6));
                            if !ip || taken == RX_DRAIN {
                                break;
                            }
                            match self.rx.try_recv() {
                                Ok(g) => f = g,
                                Err(_) => break,
                            }
                            taken += 1;
                        }
                    }
                    None => return,
                },
                r = async {
                    match &mut tun {
                        Some(LinkDev::Own(t)) => io.recv(t).await,
                        Some(LinkDev::Shared(l)) => l.recv(&mut buf).await,
                        None => std::future::pending().await,
                    }
                } => {
                    if let (Ok(n), Some(dev)) = (r, &mut tun) {
                        // This read and what else is queued (up to a bound), super-packets
                        // cut into segments: the frames leave in one batch.
                        let sent = match dev {
                            LinkDev::Own(t) => io.send(n, t, &session, &mut ep),
                            LinkDev::Shared(l) => {
                                let mut sent = usize::from(ep.send_ip(&buf[..n]).is_ok());
                                for _ in 1..datapath::TX_DRAIN {
                                    match l.try_recv(&mut buf) {
                                        Ok(n) => sent += usize::from(ep.send_ip(&buf[..n]).is_ok()),
                                        Err(_) => break,
                                    }
                                }
                                sent
                            }
                        };
                        if sent > 0 {
                            last_ip = std::time::Instant::now();
                        }
                        if let Some(r) = self.radius.as_mut() {
                            r.activity();
                        }
                    }
                }
                _ = tokio::time::sleep(wait) => {
                    if opened {
                        ep.handle_timeout(now());
                        for p in self.v6.on_timer(tokio::time::Instant::now()) {
                            let _ = ep.send_ip(&p);
                        }
                    } else {
                        // The peer stayed silent: try ourselves (and give up on the
                        // endpoint's own Max-Configure budget).
                        ep.open(now());
                        opened = true;
                    }
                }
            }
        }
    }

    /// Send queued frames, deliver IP packets, act on events. Returns the reason once the link
    /// went down.
    async fn drain<'b>(
        &mut self,
        ep: &mut Endpoint,
        tun: &mut Option<LinkDev>,
        io: &mut crate::ppp_io::TunIo,
        seen: &mut Seen,
        name: &str,
        (batch, session, socket): TxOut<'_, 'b>,
    ) -> Option<DownReason> {
        // A lone frame (LCP echo) or the frames before the device is up (negotiation) leave one
        // by one; a session with IP packets to send gets the batch, so that an idle session
        // never touches the batch's buffer.
        if let Some(first) = ep.poll_transmit() {
            let second = ep.poll_transmit();
            let one_by_one = batch.is_none() && (second.is_none() || tun.is_none());
            let frames = std::iter::once(first)
                .chain(second)
                .chain(std::iter::from_fn(|| ep.poll_transmit()));
            if one_by_one {
                for f in frames {
                    datapath::send_frame(session, socket, &f).await;
                }
            } else {
                let b = batch.get_or_insert_with(|| datapath::TxBatch::new(session, socket));
                for f in frames {
                    b.push_frame(&f).await;
                }
                b.flush().await;
            }
        }
        while let Some(p) = ep.poll_ip() {
            if let IpPacket::V6(b) = &p {
                // Router Solicitations and Advertisements are ours (`ppp_ipv6.rs`).
                let own = tun.as_ref().and_then(LinkDev::own);
                let (consumed, replies) = self.v6.on_packet(b, own, name);
                for r in replies {
                    let _ = ep.send_ip(&r);
                }
                if consumed {
                    continue;
                }
            }
            if let Some(r) = self.radius.as_mut() {
                r.activity();
            }
            seen.ip_rx = true;
            let (IpPacket::V4(b) | IpPacket::V6(b)) = p;
            match tun.as_ref() {
                Some(LinkDev::Own(t)) => io.deliver(t, &b),
                Some(LinkDev::Shared(l)) => l.send(&b),
                None => {}
            }
        }
        if let Some(LinkDev::Own(t)) = tun.as_ref() {
            io.flush(t);
        }
        let (tunnel_id, session_id) = (self.session.tunnel_id(), self.session.session_id());
        let auth_proto = match seen.last_proto {
            p @ (proto::PAP | proto::CHAP) => p,
            _ => 0,
        };
        while let Some(ev) = ep.poll_event() {
            match ev {
                Event::NetworkUp {
                    local, peer, dns, ..
                } => {
                    if let (Some(spec), Some(d)) = (&self.shared, &self.d.upgrade()) {
                        let r = crate::ppp_shared::attach(
                            &d.ppp_shared,
                            &d.ops,
                            spec,
                            local,
                            peer,
                            &self.routes,
                        );
                        match r {
                            Ok(l) => {
                                let n = l.name().to_string();
                                tracing::info!(
                                    tunnel_id,
                                    session_id,
                                    "{name}: PPP up on shared {n}: {local} -> {peer}"
                                );
                                {
                                    let mut i = self.info.lock().unwrap_or_else(|e| e.into_inner());
                                    i.ifname = Some(n);
                                    i.addrs = Some((local, peer));
                                    i.up_since = Some(std::time::Instant::now());
                                }
                                *tun = Some(LinkDev::Shared(l));
                                if let Some(r) = self.radius.as_mut() {
                                    r.network_up(peer);
                                }
                                self.report(Ok(()));
                            }
                            Err(e) => {
                                tracing::warn!(tunnel_id, session_id, "{name}: {e}");
                                self.report(Err(crate::store::io_err("PPP unit", e)));
                            }
                        }
                        continue;
                    }
                    if self.open_unit(ep, tun, io, name).is_err() {
                        continue;
                    }
                    let Some(t) = tun.as_ref().and_then(LinkDev::own) else {
                        continue;
                    };
                    // The kernel routes the peer address through the pppN: never the
                    // tunnel's own remote address (that would loop the tunnel into itself).
                    let remote = self.tunnel_remote();
                    let peer_route = if loops_tunnel(IpAddr::V4(peer), 32, remote) {
                        tracing::warn!(
                            tunnel_id,
                            session_id,
                            "{name}: {}: no route to the PPP peer address {peer}: it is the L2TP tunnel's remote address",
                            t.name()
                        );
                        None
                    } else {
                        Some(IpAddr::V4(peer))
                    };
                    let addr = IfAddr {
                        local: IpAddr::V4(local),
                        prefix_len: 32,
                        peer: peer_route,
                    };
                    if let Err(e) = add_address(t.name(), addr) {
                        tracing::warn!(tunnel_id, session_id, "{name}: {}: {e}", t.name());
                    }
                    // RADIUS Framed-Route / Framed-IP-Netmask: through the pppN (gone
                    // with it).
                    let routed = self.framed_routes(t, name);
                    let dns_text = if dns.is_empty() {
                        String::new()
                    } else {
                        let list: Vec<String> = dns.iter().map(|a| a.to_string()).collect();
                        format!(", DNS servers from the peer: {}", list.join(", "))
                    };
                    let mtu = link_mtu(self.timers.mtu, ep.peer_mru());
                    tracing::info!(
                        tunnel_id,
                        session_id,
                        "{name}: PPP up on {} (MTU {mtu}): {local} -> {peer}{dns_text}",
                        t.name()
                    );
                    {
                        let mut i = self.info.lock().unwrap_or_else(|e| e.into_inner());
                        i.addrs = Some((local, peer));
                        i.routes = routed;
                    }
                    if let Some(r) = self.radius.as_mut() {
                        r.network_up(peer);
                    }
                    self.report(Ok(()));
                }
                Event::AuthRequest(req) => match &self.radius {
                    Some(r) => r.authenticate(req, self.verdict_tx.clone()),
                    // Only asked for with RADIUS; refuse rather than hang.
                    None => ep.auth_verdict(crate::clock::now(), false, b""),
                },
                Event::LinkUp => {
                    seen.link_up = true;
                    tracing::debug!("{name}: LCP up");
                }
                Event::AuthSuccess { peer_name } => {
                    let user = user_text(&peer_name);
                    self.info.lock().unwrap_or_else(|e| e.into_inner()).user = Some(user.clone());
                    tracing::info!(
                        tunnel_id,
                        session_id,
                        user = ?user,
                        "{name}: PPP peer authenticated as {user:?}"
                    );
                }
                Event::Authenticated => {
                    tracing::info!(tunnel_id, session_id, "{name}: PPP authentication accepted")
                }
                Event::AuthFailure { peer_name } => {
                    let who = user_text(&peer_name);
                    tracing::warn!(
                        tunnel_id,
                        session_id,
                        user = ?who,
                        "{name}: PPP authentication of {who:?} failed"
                    );
                    seen.auth = Some((true, auth_proto));
                    if let Some(d) = self.d.upgrade() {
                        d.ops.ppp.auth_failure(true, auth_proto);
                    }
                    self.report(Err(ApiError::new(
                        Errno::EACCES,
                        format!("PPP authentication of the peer ({who:?}) failed"),
                    )));
                }
                Event::AuthRejected => {
                    tracing::warn!(
                        tunnel_id,
                        session_id,
                        "{name}: PPP authentication rejected by the peer"
                    );
                    seen.auth = Some((false, auth_proto));
                    if let Some(d) = self.d.upgrade() {
                        d.ops.ppp.auth_failure(false, auth_proto);
                    }
                    self.report(Err(ApiError::new(
                        Errno::EACCES,
                        "PPP authentication rejected by the peer (wrong user name or password?)",
                    )));
                }
                Event::Ipv6Up {
                    local_iid,
                    peer_iid,
                } => {
                    // The pppN comes with the first network protocol up (IPv6-only links
                    // too); `attach` configures it once it exists.
                    let own = tun.as_ref().and_then(LinkDev::own);
                    for p in self.v6.up(local_iid, peer_iid, own, name) {
                        let _ = ep.send_ip(&p);
                    }
                    let _ = self.open_unit(ep, tun, io, name);
                }
                Event::Ipv6Down => {
                    self.v6.down();
                    if ep.ipcp_state() != State::Opened {
                        self.close_unit(tun, name);
                    }
                }
                Event::NetworkDown => {
                    let addrs = self
                        .info
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .addrs
                        .take();
                    if ep.ipv6cp_state() == State::Opened {
                        // IPv6 stays: only the IPv4 address leaves the device.
                        let own = tun.as_ref().and_then(LinkDev::own);
                        if let (Some(t), Some((local, peer))) = (own, addrs) {
                            let a = IfAddr {
                                local: IpAddr::V4(local),
                                prefix_len: 32,
                                peer: Some(IpAddr::V4(peer)),
                            };
                            let _ = ul2tp_sys::rtnl::delete_address(t.name(), a);
                            tracing::info!(tunnel_id, session_id, "{name}: PPP IPv4 down");
                        }
                    } else {
                        self.close_unit(tun, name);
                    }
                }
                Event::LinkDown { reason } => {
                    if tun.take().is_some() {
                        self.unit_changed(None);
                    }
                    let mut i = self.info.lock().unwrap_or_else(|e| e.into_inner());
                    (i.ifname, i.addrs, i.up_since) = (None, None, None);
                    i.routes.clear();
                    return Some(reason);
                }
            }
        }
        // An IPv6-only link is up once IPv6CP is (IPCP not run, or rejected by the peer).
        if self.ready.is_some()
            && tun.is_some()
            && ep.ipv6cp_state() == State::Opened
            && !matches!(
                ep.ipcp_state(),
                State::Opened | State::ReqSent | State::AckRcvd | State::AckSent
            )
        {
            tracing::info!(tunnel_id, session_id, "{name}: PPP up, IPv6 only");
            self.report(Ok(()));
        }
        // What the events queued (Router Advertisements, Solicitations) leaves now.
        while let Some(frame) = ep.poll_transmit() {
            datapath::send_frame(&self.session, &self.socket, &frame).await;
        }
        let shown = match tun {
            Some(_) => crate::ppp_ipv6::Shown {
                prefix: self.v6.prefix(),
                delegated: self.v6.delegated(),
            },
            None => crate::ppp_ipv6::Shown::default(),
        };
        if self.v6_shown.get() != shown {
            self.v6_shown.set(shown);
        }
        None
    }

    /// Create the link's pppN (MTU, up) unless it exists: at the first network protocol up.
    fn open_unit(
        &mut self,
        ep: &mut Endpoint,
        tun: &mut Option<LinkDev>,
        io: &mut crate::ppp_io::TunIo,
        name: &str,
    ) -> Result<(), ()> {
        if tun.is_some() {
            return Ok(());
        }
        let (tunnel_id, session_id) = (self.session.tunnel_id(), self.session.session_id());
        let store = self.d.upgrade();
        let unit = match &store {
            Some(d) => d.ppp_names.create(|n| io.open(Some(n))),
            None => io.open(None),
        };
        let t = match unit {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(
                    tunnel_id,
                    session_id,
                    "{name}: cannot create a PPP unit: {e}"
                );
                self.report(Err(crate::store::io_err("PPP unit", e)));
                return Err(());
            }
        };
        // The device never sends more than the peer's MRU, nor more than the profile's MTU.
        let mtu = link_mtu(self.timers.mtu, ep.peer_mru());
        // The peer's circuit is down (Circuit Status): no carrier from the start.
        if *self.peer_circuit_down.borrow_and_update() {
            peer_circuit(&t, true, name);
        }
        crate::ppp_ipv6::before_up(t.name());
        io.attach(&t, name);
        if let Err(e) = t.set_mtu(u32::from(mtu)).and_then(|_| t.set_up(true)) {
            tracing::warn!(tunnel_id, session_id, "{name}: {}: {e}", t.name());
        }
        for p in self.v6.attach(&t, name) {
            let _ = ep.send_ip(&p);
        }
        {
            let mut i = self.info.lock().unwrap_or_else(|e| e.into_inner());
            i.ifname = Some(t.name().to_string());
            i.up_since = Some(std::time::Instant::now());
        }
        let reaper = store.map(|d| (d.reaper.clone(), d.ppp_names.clone()));
        let (ifindex, unit) = (t.ifindex(), t.name().to_string());
        self.unit_changed(Some((unit.clone(), ifindex)));
        *tun = Some(LinkDev::Own(Reaped::new(t, ifindex, &unit, reaper)));
        Ok(())
    }

    /// Tell the control plane that the pppN came (`Some((name, ifindex))`) or went: its
    /// administrative state is the circuit's (Circuit Status of an L2TPv3 PPP pseudowire).
    fn unit_changed(&self, unit: Option<(String, u32)>) {
        if let Some(d) = self.d.upgrade() {
            if let Some(cp) = d.control() {
                let unit = unit.map(|(name, ifindex)| crate::store::PppUnit {
                    name,
                    ifindex,
                    back_up: self.back_up.clone(),
                });
                cp.ppp_unit(self.session.tunnel_id(), self.session.session_id(), unit);
            }
        }
    }

    /// The last network protocol went down: the pppN goes.
    fn close_unit(&mut self, tun: &mut Option<LinkDev>, name: &str) {
        if tun.take().is_some() {
            self.unit_changed(None);
            self.v6.detach();
            let (tunnel_id, session_id) = (self.session.tunnel_id(), self.session.session_id());
            tracing::info!(tunnel_id, session_id, "{name}: PPP network layer down");
            let mut i = self.info.lock().unwrap_or_else(|e| e.into_inner());
            (i.ifname, i.addrs, i.up_since) = (None, None, None);
            i.routes.clear();
        }
    }

    /// RADIUS Framed-Route prefixes: through the pppN (gone with it), never to the tunnel's
    /// remote address.
    fn framed_routes(&self, t: &Tun, name: &str) -> Vec<(Ipv4Addr, u8)> {
        let (tunnel_id, session_id) = (self.session.tunnel_id(), self.session.session_id());
        let remote = self.tunnel_remote();
        let mut routed = Vec::new();
        for &(dst, prefix_len) in &self.routes {
            if loops_tunnel(IpAddr::V4(dst), prefix_len, remote) {
                tracing::warn!(
                    tunnel_id,
                    session_id,
                    "{name}: Framed-Route {dst}/{prefix_len} skipped: it is the L2TP tunnel's remote address"
                );
                continue;
            }
            let r = ul2tp_sys::rtnl::Route {
                dst: IpAddr::V4(dst),
                prefix_len,
                gateway: None,
            };
            match ul2tp_sys::rtnl::add_route(t.name(), r) {
                Ok(()) => {
                    routed.push((dst, prefix_len));
                    tracing::info!(
                        tunnel_id,
                        session_id,
                        "{name}: route {dst}/{prefix_len} via {} (RADIUS)",
                        t.name()
                    )
                }
                Err(e) => tracing::warn!(
                    tunnel_id,
                    session_id,
                    "{name}: Framed-Route {dst}/{prefix_len}: {e}"
                ),
            }
        }
        routed
    }

    /// The L2TP tunnel's remote address (a PPP peer or route equal to it is not routed
    /// through the pppN).
    fn tunnel_remote(&self) -> Option<IpAddr> {
        self.socket.peer_addr().ok().map(|a| a.ip())
    }

    /// A RADIUS verdict on the peer's credentials.
    fn verdict(&mut self, ep: &mut Endpoint, user: Vec<u8>, v: crate::radius::Verdict, name: &str) {
        let (tunnel_id, session_id) = (self.session.tunnel_id(), self.session.session_id());
        let who = user_text(&user);
        match v {
            crate::radius::Verdict::Accept(grant, message) => {
                // Framed-IP-Address / Framed-Pool: the call's lease moves (so that no other
                // peer gets the address); without a lease the address is taken as it is.
                let lease = match &self.lease {
                    Some(l) => l.apply(grant.framed_ip, grant.framed_pool.as_deref()),
                    None => Ok(grant.framed_ip.map(|addr| crate::leases::Lease {
                        pool: crate::leases::RADIUS_POOL.to_string(),
                        addr,
                    })),
                };
                match lease {
                    Ok(Some(l)) => {
                        ep.set_peer_ip(Some(l.addr));
                        let mut i = self.info.lock().unwrap_or_else(|e| e.into_inner());
                        if self.lease.is_some() {
                            i.pool = Some(l.pool);
                        }
                    }
                    Ok(None) => {}
                    Err(why) => {
                        tracing::warn!(tunnel_id, session_id, user = ?who, "{name}: RADIUS accepted {who:?}, but the login fails: {why}");
                        ep.auth_verdict(crate::clock::now(), false, b"");
                        return;
                    }
                }
                if let Some(m) = grant.framed_mtu {
                    self.timers.mtu = Some(self.timers.mtu.map_or(m, |x| x.min(m)));
                }
                self.routes = grant.framed_routes.clone();
                if grant.framed_interface_id.is_some() {
                    ep.set_peer_interface_id(grant.framed_interface_id);
                }
                self.v6.set_granted(
                    grant.framed_ipv6_prefix,
                    grant.delegated_ipv6_prefix,
                    &grant.dns6,
                );
                if grant.dns.iter().any(Option::is_some) {
                    ep.set_dns(grant.dns);
                }
                tracing::info!(tunnel_id, session_id, user = ?who, "{name}: RADIUS accepted {who:?}");
                if let Some(r) = self.radius.as_mut() {
                    r.accepted(user, grant);
                }
                ep.auth_verdict(crate::clock::now(), true, &message);
            }
            crate::radius::Verdict::Reject(why) => {
                tracing::warn!(tunnel_id, session_id, user = ?who, "{name}: RADIUS login of {who:?} failed: {why}");
                ep.auth_verdict(crate::clock::now(), false, b"");
            }
        }
    }

    /// The link is down: report it and clear the call.
    async fn link_down(&mut self, reason: DownReason, seen: &Seen, name: &str) {
        if let Some(r) = self.radius.as_mut() {
            use ul2tp_radius::dict::terminate as t;
            r.stop(match reason {
                DownReason::PeerTerminated => t::USER_REQUEST,
                DownReason::EchoTimeout | DownReason::LowerLayerDown => t::LOST_CARRIER,
                DownReason::AdminClose => t::ADMIN_RESET,
                _ => t::NAS_ERROR,
            });
        }
        if let Some(d) = self.d.upgrade() {
            d.ops.ppp.link_down(reason);
        }
        let (result_code, text, mut cause) = clear_cause(reason, seen);
        let text = match (&self.lease, reason) {
            (Some(l), DownReason::NoAddress) => {
                let t = l.exhausted_text();
                cause.message = t.clone().into_bytes();
                t
            }
            _ => text.to_string(),
        };
        self.report(Err(ApiError::new(
            if reason == DownReason::AuthFailed {
                Errno::EACCES
            } else {
                Errno::EIO
            },
            format!("PPP link down: {text}"),
        )));
        if reason == DownReason::LowerLayerDown {
            return;
        }
        let Some(d) = self.d.upgrade() else { return };
        let key = (self.session.tunnel_id(), self.session.session_id());
        let mut ctl = d.ctl.lock().await;
        if ctl.dynamic.contains(&key.0) {
            if let Some(cp) = d.control() {
                tracing::warn!(
                    tunnel_id = key.0,
                    session_id = key.1,
                    "{name}: PPP link down ({text}): clearing the call"
                );
                let error = (result_code == CdnResult::GeneralError).then(|| text.clone());
                cp.clear_ppp_call(key.0, key.1, result_code, error, cause);
                // The control plane deletes the session (and this task) once the CDN is queued.
                return;
            }
        }
        // A static session: detach the endpoint so that `ppp start` can run again.
        tracing::warn!(
            tunnel_id = key.0,
            session_id = key.1,
            "{name}: PPP link down ({text}): endpoint detached"
        );
        d.pseudowires.remove(key);
        ctl.attached.remove(&key);
    }
}

/// The peer reports its circuit inactive (`down`) or active again: the pppN's carrier goes
/// off (`NO-CARRIER`: the stack sends nothing through it) or on (RFC 3931 §5.4.5).
fn peer_circuit(t: &Tun, down: bool, name: &str) {
    match t.set_carrier(!down) {
        Ok(()) => tracing::info!(
            "{name}: {}: peer's circuit {}: carrier {}",
            t.name(),
            if down { "inactive" } else { "active" },
            if down { "off" } else { "on" }
        ),
        Err(e) => tracing::warn!("{name}: {}: carrier: {e}", t.name()),
    }
}

/// Whether a route to `dst/prefix_len` through the pppN would carry the L2TP tunnel's own
/// packets: a host route (or peer address) equal to its remote address.
pub(crate) fn loops_tunnel(dst: IpAddr, prefix_len: u8, remote: Option<IpAddr>) -> bool {
    let host = match dst {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    };
    let canon = |a: IpAddr| match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, IpAddr::V4),
        a => a,
    };
    prefix_len == host && remote.is_some_and(|r| canon(r) == canon(dst))
}

/// The pppN MTU: the peer's MRU, lowered to the profile's MTU.
fn link_mtu(configured: Option<u16>, peer_mru: u16) -> u16 {
    configured.map_or(peer_mru, |m| m.min(peer_mru))
}

fn expired_text(e: Expired) -> &'static str {
    match e {
        Expired::Idle => "idle timeout",
        Expired::Session => "session timeout",
    }
}

/// A PPP user name as text for logs and messages: the peer sends bytes, we show them as
/// lossy UTF-8 (a `{:?}` of the result quotes it and escapes control characters, so the name
/// can neither be confused with the text around it nor break the log line).
fn user_text(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

/// How a link-down reason clears the call: CDN Result Code (docs/reference/rfc.md §1.6: 3
/// administrative for a normal PPP termination, 2 "see Error Code" with a generic error and
/// the text otherwise), the text, and the RFC 3145 PPP Disconnect Cause (direction 1 = the
/// cause is at the peer, 2 = at us).
fn clear_cause(reason: DownReason, seen: &Seen) -> (CdnResult, &'static str, Cause) {
    let c = |code, protocol, direction, text: &'static str| Cause {
        code,
        protocol,
        direction,
        message: text.as_bytes().to_vec(),
    };
    let (result_code, text, cause) = match reason {
        DownReason::AdminClose if seen.expired.is_some() => {
            let what = seen.expired.unwrap_or(Expired::Idle);
            let t = expired_text(what);
            (
                CdnResult::Administrative,
                t,
                c(Cause::ADMIN, 0, Cause::AT_LOCAL, t),
            )
        }
        DownReason::AdminClose => {
            let t = "closed by the administrator";
            (
                CdnResult::Administrative,
                t,
                c(Cause::ADMIN, 0, Cause::AT_LOCAL, t),
            )
        }
        DownReason::PeerTerminated => {
            let t = "the peer terminated the link";
            let cause = c(Cause::NORMAL, proto::LCP, Cause::AT_PEER, t);
            (CdnResult::Administrative, t, cause)
        }
        DownReason::EchoTimeout => {
            let t = "LCP echo timeout (the peer stopped answering)";
            let cause = c(Cause::LCP_ECHO_TIMEOUT, proto::LCP, Cause::AT_PEER, t);
            (CdnResult::GeneralError, t, cause)
        }
        DownReason::AuthFailed => match seen.auth {
            Some((true, p)) => {
                let t = "PPP authentication of the peer failed";
                (
                    CdnResult::GeneralError,
                    t,
                    c(Cause::AUTH_FAILED, p, Cause::AT_PEER, t),
                )
            }
            Some((false, p)) => {
                let t = "PPP authentication rejected by the peer";
                (
                    CdnResult::GeneralError,
                    t,
                    c(Cause::AUTH_FAILED, p, Cause::AT_LOCAL, t),
                )
            }
            None if seen.link_up => {
                let t = "PPP authentication timed out";
                (
                    CdnResult::GeneralError,
                    t,
                    c(Cause::AUTH_TIMEOUT, 0, Cause::AT_PEER, t),
                )
            }
            None => {
                let t = "no acceptable PPP authentication protocol";
                let cause = c(Cause::AUTH_PROTOCOL_REFUSED, proto::LCP, Cause::GLOBAL, t);
                (CdnResult::GeneralError, t, cause)
            }
        },
        DownReason::NegotiationFailed if !seen.frames => {
            let t = "no LCP packets from the peer";
            let cause = c(Cause::LCP_SILENT, proto::LCP, Cause::AT_PEER, t);
            (CdnResult::GeneralError, t, cause)
        }
        DownReason::NegotiationFailed => {
            let t = "LCP negotiation failed";
            let cause = c(Cause::LCP_TIMEOUT, proto::LCP, Cause::GLOBAL, t);
            (CdnResult::GeneralError, t, cause)
        }
        DownReason::NoNetworkProtocols => {
            let t = "no network protocol came up";
            (
                CdnResult::GeneralError,
                t,
                c(Cause::NO_NCP, 0, Cause::GLOBAL, t),
            )
        }
        DownReason::NoAddress => {
            // The text names the pools (`CallLease::exhausted_text`) where the call has them.
            let t = "no address left in the address pools";
            let cause = c(Cause::NO_INFO, proto::IPCP, Cause::AT_LOCAL, t);
            (CdnResult::GeneralError, t, cause)
        }
        DownReason::LowerLayerDown => {
            let t = "the L2TP session went down";
            (
                CdnResult::Administrative,
                t,
                c(Cause::NO_INFO, 0, Cause::GLOBAL, t),
            )
        }
    };
    (result_code, text, cause)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The authenticator name comes from the setup (the daemon passes `[control] host_name`),
    /// not the endpoint's built-in default.
    #[test]
    fn authenticator_name_is_the_host_name() {
        let setup = PppSetup {
            auth_name: Some("lns.example.net".into()),
            require: vec![ul2tp_ppp::AuthProtocol::ChapMd5],
            ..PppSetup::default()
        };
        assert_eq!(ppp_config(&setup).auth_name, b"lns.example.net");
        assert_eq!(
            ppp_config(&PppSetup::default()).auth_name,
            ul2tp_ppp::Config::default().auth_name
        );
        let echo = PppSetup {
            echo: Some((Duration::from_millis(500), 2)),
            ..PppSetup::default()
        };
        let cfg = ppp_config(&echo);
        assert_eq!((cfg.echo_interval_us, cfg.echo_failure), (Some(500_000), 2));
    }

    /// A peer address or host route equal to the tunnel's remote address would carry the
    /// tunnel into itself (l2tpns hands out its own address as the IPCP peer by default);
    /// other addresses, wider routes and the other family are routed.
    #[test]
    fn routes_to_the_tunnel_remote_are_refused() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let v4 = Some(ip("192.0.2.2"));
        assert!(loops_tunnel(ip("192.0.2.2"), 32, v4));
        assert!(!loops_tunnel(ip("192.0.2.3"), 32, v4));
        assert!(!loops_tunnel(ip("192.0.2.0"), 24, v4));
        assert!(!loops_tunnel(ip("192.0.2.2"), 32, None));
        // A dual-stack socket reports an IPv4 peer as ::ffff:a.b.c.d.
        assert!(loops_tunnel(
            ip("192.0.2.2"),
            32,
            Some(ip("::ffff:192.0.2.2"))
        ));
        let v6 = Some(ip("2001:db8::2"));
        assert!(loops_tunnel(ip("2001:db8::2"), 128, v6));
        assert!(!loops_tunnel(ip("2001:db8::2"), 64, v6));
        assert!(!loops_tunnel(ip("2001:db8::3"), 128, v6));
        assert!(!loops_tunnel(ip("192.0.2.2"), 32, v6));
    }

    /// Every link-down reason maps to a CDN result and an RFC 3145 cause with the fixed part
    /// intact; failures carry result 2 and their text, normal terminations result 3.
    #[test]
    fn link_down_reasons_map_to_cdn_causes() {
        let seen = Seen::default();
        let (r, _, c) = clear_cause(DownReason::EchoTimeout, &seen);
        assert_eq!(
            (r, c.code, c.protocol),
            (CdnResult::GeneralError, 8, 0xc021)
        );
        let (r, _, c) = clear_cause(DownReason::PeerTerminated, &seen);
        assert_eq!((r, c.code, c.direction), (CdnResult::Administrative, 3, 1));
        let (_, _, c) = clear_cause(DownReason::NegotiationFailed, &seen);
        assert_eq!(c.code, 6, "peer silent");
        let failed = Seen {
            auth: Some((true, 0xc223)),
            link_up: true,
            frames: true,
            ..Seen::default()
        };
        let (r, text, c) = clear_cause(DownReason::AuthFailed, &failed);
        let expect = (CdnResult::GeneralError, 16, 0xc223, 1);
        assert_eq!((r, c.code, c.protocol, c.direction), expect);
        assert_eq!(c.message, text.as_bytes());
        let rejected = Seen {
            auth: Some((false, 0xc223)),
            ..failed
        };
        assert_eq!(
            clear_cause(DownReason::AuthFailed, &rejected).2.direction,
            2
        );
    }
}
