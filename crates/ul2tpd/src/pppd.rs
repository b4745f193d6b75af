//! The userspace PPP endpoint of a PPP session (the pppd the kernel leaves to userspace).
//!
//! `ppp_start` attaches a `ul2tp-ppp` endpoint to a PPP session (L2TPv2, or pw_type 7 in
//! L2TPv3): PPP frames received on the session go to the endpoint, its frames go out with
//! FF 03 in front (docs/reference/kernel.md §1.7), and once IPCP is up a TUN device `pppN` appears with
//! the negotiated point-to-point addresses, carrying IP packets between the host and the
//! session. When the link goes down the device goes away; deleting the session stops the
//! endpoint.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use ul2tp_api::{pw_type, ApiError, Errno};
use ul2tp_core::Session;
use ul2tp_ppp::{Endpoint, Event, IpPacket, Timestamp};
use ul2tp_sys::rtnl::{add_address, IfAddr};
use ul2tp_sys::tap::Tun;

use crate::datapath::{self, Pseudowire, TunnelSocket};
use crate::state::{ApiResult, Ctl, Daemon, Task};

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
}

/// Attach an endpoint to `session`.
pub(crate) fn start(
    d: &Daemon,
    ctl: &mut Ctl,
    session: Arc<Session>,
    setup: PppSetup,
) -> ApiResult<()> {
    let key = (session.tunnel_id(), session.session_id());
    if session.pw_type() != pw_type::PPP {
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
    let cfg = ul2tp_ppp::Config {
        local_ip: setup.local,
        peer_ip: setup.peer,
        user: setup.user.map(|(u, p)| (u.into_bytes(), p.into_bytes())),
        require_auth: setup.require,
        ..ul2tp_ppp::Config::default()
    };
    let users = ul2tp_ppp::StaticCredentials(
        setup
            .users
            .into_iter()
            .map(|(u, p)| (u.into_bytes(), p.into_bytes()))
            .collect(),
    );
    let (tx, rx) = mpsc::channel(1024);
    d.pseudowires.insert(key, Arc::new(Pseudowire::PppLink(tx)));
    ctl.attached.insert(key);
    let seed = u64::from(key.0) << 32
        ^ u64::from(key.1)
        ^ Instant::now().elapsed().as_nanos() as u64
        ^ std::process::id() as u64;
    let task = Task(tokio::spawn(run(session, socket, rx, cfg, users, seed)));
    ctl.sessions.entry(key).or_default().tasks.push(task);
    Ok(())
}

async fn run(
    session: Arc<Session>,
    socket: Arc<TunnelSocket>,
    mut rx: mpsc::Receiver<Vec<u8>>,
    cfg: ul2tp_ppp::Config,
    users: ul2tp_ppp::StaticCredentials,
    seed: u64,
) {
    let start = Instant::now();
    let now = move || Timestamp(start.elapsed().as_micros() as u64);
    let mut ep = Endpoint::new(cfg, seed);
    ep.set_credentials(Box::new(users));
    ep.open(now());
    let mut tun: Option<Tun> = None;
    let mut buf = vec![0u8; 65536];
    let name = session.name();
    loop {
        let wait = ep.poll_timeout().map_or(Duration::from_secs(3600), |t| {
            Duration::from_micros(t.as_micros().saturating_sub(now().as_micros()))
        });
        tokio::select! {
            f = rx.recv() => match f {
                Some(f) => { let _ = ep.handle_frame(now(), &f); }
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
                }
            }
            _ = tokio::time::sleep(wait) => ep.handle_timeout(now()),
        }
        while let Some(frame) = ep.poll_transmit() {
            datapath::send_frame(&session, &socket, &frame).await;
        }
        while let Some(p) = ep.poll_ip() {
            if let Some(t) = &tun {
                let (IpPacket::V4(b) | IpPacket::V6(b)) = p;
                let _ = t.try_send(&b);
            }
        }
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
                                tracing::warn!("{name}: {}: {e}", t.name());
                            }
                            tracing::info!("{name}: PPP up on {}: {local} -> {peer}", t.name());
                            tun = Some(t);
                        }
                        Err(e) => tracing::warn!("{name}: cannot create a PPP unit: {e}"),
                    }
                }
                Event::AuthFailure { peer_name } => {
                    tracing::warn!(
                        "{name}: PPP authentication of {:?} failed",
                        String::from_utf8_lossy(&peer_name)
                    );
                }
                Event::NetworkDown | Event::LinkDown { .. } => {
                    if tun.take().is_some() {
                        tracing::info!("{name}: PPP down ({ev:?})");
                    }
                }
                other => tracing::debug!("{name}: PPP {other:?}"),
            }
        }
    }
}
