//! The userspace PPP endpoint of a PPP session (the pppd the kernel leaves to userspace).
//!
//! `ppp_start` attaches a `ul2tp-ppp` endpoint to a PPP session (L2TPv2, or pw_type 7 in
//! L2TPv3): PPP frames received on the session go to the endpoint, its frames go out with
//! FF 03 in front (docs/reference/kernel.md §1.7), and once IPCP is up a TUN device `pppN` appears with
//! the negotiated point-to-point addresses, carrying IP packets between the host and the
//! session. Deleting the session stops the endpoint.
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
//! outcome is known: IPCP up, or the reason the link failed (authentication rejected, ...).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use ul2tp_api::{ApiError, Errno};
use ul2tp_control::CdnResult;
use ul2tp_core::PwType;
use ul2tp_core::Session;
use ul2tp_ppp::{DownReason, Endpoint, Event, IpPacket};
use ul2tp_sys::rtnl::{add_address, IfAddr};
use ul2tp_sys::tap::Tun;
use ul2tp_wire::avp::PppDisconnectCause as Cause;
use ul2tp_wire::ppp::proto;

use crate::datapath::{self, Pseudowire, TunnelSocket};
use crate::store::{ApiResult, Ctl, Store, Task};

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
    /// Wait for the peer's first frame before opening LCP (LNS side of a call).
    pub(crate) passive: bool,
    /// LCP Echo-Request interval and failures before the link is declared dead; `None` keeps
    /// the endpoint's defaults (10 s, 3).
    pub(crate) echo: Option<(Duration, u32)>,
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
        ..ul2tp_ppp::Config::default()
    };
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
    let users = ul2tp_ppp::StaticCredentials(
        setup
            .users
            .into_iter()
            .map(|(u, p)| (u.into_bytes(), p.into_bytes()))
            .collect(),
    );
    let (tx, rx) = mpsc::channel(1024);
    let (ready_tx, ready) = oneshot::channel();
    d.pseudowires.insert(key, Arc::new(Pseudowire::PppLink(tx)));
    ctl.attached.insert(key);
    let mut ep = Endpoint::new(cfg, seed);
    ep.set_credentials(Box::new(users));
    let link = Link {
        d: d.me.clone(),
        session,
        socket,
        rx,
        ready: Some(ready_tx),
        passive: setup.passive,
    };
    let task = Task(tokio::spawn(link.run(ep)));
    ctl.sessions.entry(key).or_default().tasks.push(task);
    Ok(ready)
}

/// What the task learnt about the link that the endpoint's `LinkDown` reason does not say.
#[derive(Debug, Default)]
struct Seen {
    /// Any frame arrived from the peer.
    frames: bool,
    /// LCP reached Opened.
    link_up: bool,
    /// Protocol of the last frame received.
    last_proto: u16,
    /// Authentication failed: (we rejected the peer, protocol).
    auth: Option<(bool, u16)>,
}

/// PPP frames taken from the session's queue per wake-up at most.
const RX_DRAIN: usize = 64;

struct Link {
    d: Weak<Store>,
    session: Arc<Session>,
    socket: Arc<TunnelSocket>,
    rx: mpsc::Receiver<Vec<u8>>,
    ready: Option<oneshot::Sender<ApiResult<()>>>,
    passive: bool,
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
        let mut tun: Option<Tun> = None;
        let mut seen = Seen::default();
        let mut buf = vec![0u8; 65536];
        let (session, socket) = (self.session.clone(), self.socket.clone());
        let mut batch = datapath::TxBatch::new(&session, &socket);
        loop {
            // Send everything the last input (or open) queued before waiting again.
            if let Some(reason) = self
                .drain(&mut ep, &mut tun, &mut seen, &name, &mut batch)
                .await
            {
                self.link_down(reason, &seen, &name).await;
                return;
            }
            let wait = match ep.poll_timeout() {
                Some(t) => t - now(),
                None if !opened => PASSIVE_WAIT.saturating_sub(now() - start),
                None => Duration::from_secs(3600),
            };
            tokio::select! {
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
                            if let Ok(p) = p {
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
                    match &tun {
                        Some(t) => t.recv(&mut buf).await,
                        None => std::future::pending().await,
                    }
                } => {
                    if let Ok(n) = r {
                        let _ = ep.send_ip(&buf[..n]);
                        // Drain the TUN (up to a bound): the frames leave in one batch.
                        if let Some(t) = &tun {
                            for _ in 1..datapath::TX_DRAIN {
                                match t.try_recv(&mut buf) {
                                    Ok(n) => {
                                        let _ = ep.send_ip(&buf[..n]);
                                    }
                                    Err(_) => break,
                                }
                            }
                        }
                    }
                }
                _ = tokio::time::sleep(wait) => {
                    if opened {
                        ep.handle_timeout(now());
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
    async fn drain(
        &mut self,
        ep: &mut Endpoint,
        tun: &mut Option<Tun>,
        seen: &mut Seen,
        name: &str,
        batch: &mut datapath::TxBatch<'_>,
    ) -> Option<DownReason> {
        while let Some(frame) = ep.poll_transmit() {
            batch.push_frame(&frame).await;
        }
        batch.flush().await;
        while let Some(p) = ep.poll_ip() {
            if let Some(t) = tun.as_ref() {
                let (IpPacket::V4(b) | IpPacket::V6(b)) = p;
                let _ = t.try_send(&b);
            }
        }
        let (tunnel_id, session_id) = (self.session.tunnel_id(), self.session.session_id());
        let auth_proto = match seen.last_proto {
            p @ (proto::PAP | proto::CHAP) => p,
            _ => 0,
        };
        while let Some(ev) = ep.poll_event() {
            match ev {
                Event::NetworkUp { local, peer, .. } => {
                    match Tun::create(None, ul2tp_sys::tap::PPP_TEMPLATE) {
                        Ok(t) => {
                            let addr = IfAddr {
                                local: IpAddr::V4(local),
                                prefix_len: 32,
                                peer: Some(IpAddr::V4(peer)),
                            };
                            if let Err(e) = add_address(t.name(), addr).and_then(|_| t.set_up(true))
                            {
                                tracing::warn!(tunnel_id, session_id, "{name}: {}: {e}", t.name());
                            }
                            tracing::info!(
                                tunnel_id,
                                session_id,
                                "{name}: PPP up on {}: {local} -> {peer}",
                                t.name()
                            );
                            *tun = Some(t);
                            self.report(Ok(()));
                        }
                        Err(e) => {
                            tracing::warn!(
                                tunnel_id,
                                session_id,
                                "{name}: cannot create a PPP unit: {e}"
                            );
                            self.report(Err(crate::store::io_err("PPP unit", e)));
                        }
                    }
                }
                Event::LinkUp => {
                    seen.link_up = true;
                    tracing::debug!("{name}: LCP up");
                }
                Event::AuthSuccess { peer_name } => {
                    let user = user_text(&peer_name);
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
                Event::NetworkDown | Event::Ipv6Down => {
                    if ev == Event::NetworkDown && tun.take().is_some() {
                        tracing::info!(tunnel_id, session_id, "{name}: PPP network layer down");
                    }
                }
                Event::LinkDown { reason } => {
                    tun.take();
                    return Some(reason);
                }
                other => tracing::debug!("{name}: PPP {other:?}"),
            }
        }
        None
    }

    /// The link is down: report it and clear the call.
    async fn link_down(&mut self, reason: DownReason, seen: &Seen, name: &str) {
        if let Some(d) = self.d.upgrade() {
            d.ops.ppp.link_down(reason);
        }
        let (result_code, text, cause) = clear_cause(reason, seen);
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
                let error = (result_code == CdnResult::GeneralError).then(|| text.to_string());
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
