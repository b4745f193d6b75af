//! The management API's request handlers: the daemon's public face.
//!
//! `Daemon::handle` is the equivalent of the kernel's generic netlink doit/dumpit handlers
//! (docs/reference/kernel.md §4): it validates attributes in the kernel's order, returns the kernel's errno
//! for each failure, creates sockets and devices, and registers and deletes objects in the
//! store (`store.rs`), which multicasts notifications to monitors (docs/reference/kernel.md §4.9).
//! One module per request family: `tunnel`, `session`, `ppp` (`ppp_start`), `control` (the
//! control protocol requests) and `debug` (listings and trace switches); the application
//! descriptors (session sockets, managed tunnels, L2TP/IP sockets) are `apps.rs` and
//! `l2tpip.rs`.

mod control;
mod debug;
mod ppp;
mod session;
mod tunnel;

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::{Arc, OnceLock};

use tokio::sync::broadcast;
use ul2tp_api::{ApiError, Attrs, Command, Errno, Request, ServerMessage};
use ul2tp_core::Registry;

use crate::apps;
use crate::control::{ControlPlane, ControlSettings};
use crate::l2tpip::L2tpIp;
use crate::store::{ApiResult, Store};

/// A reply and the descriptors that travel with it.
pub type Reply = (ServerMessage, Vec<OwnedFd>);

/// What a successful request returns.
enum Body {
    Done,
    Attrs(Box<Attrs>),
    Entries(Vec<Attrs>),
    Text(String),
    Fd(OwnedFd),
}

/// The daemon.
#[derive(Debug)]
pub struct Daemon {
    store: Arc<Store>,
    l2tpip: Arc<L2tpIp>,
    control: OnceLock<Arc<ControlPlane>>,
    /// The `[[lac]]` calls (`dial.rs`).
    dialer: OnceLock<crate::dial::Dialer>,
}

impl Daemon {
    /// A daemon with no tunnels.
    pub fn new() -> Arc<Daemon> {
        Arc::new(Daemon {
            store: Store::new(),
            l2tpip: L2tpIp::new(),
            control: OnceLock::new(),
            dialer: OnceLock::new(),
        })
    }

    /// `[datapath] stable_mac`: Ethernet pseudowire devices created from now on get the
    /// address derived from their ids (`store::stable_mac`, docs/config.md).
    pub fn set_stable_mac(&self, on: bool) {
        self.store
            .stable_mac
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// This daemon's data-path settings (`[datapath]`, `--no-offload`); they apply to tunnel
    /// sockets and sessions started afterwards. Each daemon has its own, so an application
    /// may embed two that differ.
    pub fn set_datapath(&self, config: crate::datapath::DataPathConfig) {
        *self
            .store
            .datapath
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = config;
    }

    /// The data-path settings new sockets and sessions get.
    pub fn datapath(&self) -> crate::datapath::DataPathConfig {
        self.store.datapath_config()
    }

    /// Start the L2TP control protocol endpoint (the `[control]` section).
    pub fn start_control(&self, s: ControlSettings) -> std::io::Result<SocketAddr> {
        let cp = Arc::new(ControlPlane::start(Arc::downgrade(&self.store), s)?);
        let local = cp.local();
        self.control
            .set(cp.clone())
            .map_err(|_| std::io::Error::other("control plane already running"))?;
        self.store.set_control(cp);
        Ok(local)
    }

    /// Start the `[[lac]]` calls (after [`Daemon::start_control`]); `autodial` ones dial now.
    pub fn start_dialer(&self, profiles: Vec<crate::dial::LacProfile>) -> std::io::Result<()> {
        let cp = self
            .control
            .get()
            .ok_or_else(|| std::io::Error::other("[[lac]] needs the control plane"))?;
        let dialer = crate::dial::Dialer::start(Arc::downgrade(&self.store), cp.clone(), profiles);
        self.dialer
            .set(dialer)
            .map_err(|_| std::io::Error::other("dialer already running"))
    }

    /// A reload's `[[lac]]` profiles (`reload.rs`); `None` when the control plane does not
    /// run (the profiles then take effect at the next start).
    pub(crate) async fn reload_lac(
        &self,
        profiles: Vec<crate::dial::LacProfile>,
    ) -> Option<crate::dial::ReloadSummary> {
        Some(self.dialer.get()?.reload(profiles).await)
    }

    fn dialer(&self) -> ApiResult<&crate::dial::Dialer> {
        self.dialer
            .get()
            .ok_or_else(|| ApiError::new(Errno::ENOENT, "no [[lac]] profiles in the configuration"))
    }

    /// Hand the control plane new `[[lns]]` profiles (reload): tunnels opened from now on
    /// use them, established ones keep theirs. False without a control plane.
    pub fn set_lns_profiles(&self, profiles: crate::profile::Profiles) -> bool {
        self.control
            .get()
            .is_some_and(|cp| cp.set_profiles(profiles))
    }

    fn control(&self) -> ApiResult<&ControlPlane> {
        self.control.get().map(|cp| &**cp).ok_or_else(|| {
            ApiError::new(
                Errno::EOPNOTSUPP,
                "the control protocol is off (no [control] section in the configuration)",
            )
        })
    }

    /// The subsystem (for read-only views such as metrics).
    pub fn registry(&self) -> &Arc<Registry> {
        &self.store.registry
    }

    /// The control-plane and PPP counters the metrics endpoint exports.
    pub fn ops(&self) -> &Arc<crate::metrics::Ops> {
        &self.store.ops
    }

    /// Subscribe to notifications.
    pub fn subscribe(&self) -> broadcast::Receiver<ServerMessage> {
        self.store.subscribe()
    }

    /// Delete everything (on shutdown).
    pub async fn shutdown(&self) {
        if let Some(dialer) = self.dialer.get() {
            dialer.stop();
        }
        let ids: Vec<u32> = self
            .store
            .ctl
            .lock()
            .await
            .tunnels
            .keys()
            .copied()
            .collect();
        for tid in ids {
            let _ = tunnel::delete(
                &self.store,
                &Attrs {
                    conn_id: Some(tid),
                    ..Attrs::default()
                },
            )
            .await;
        }
        // Wait for the devices to go in batches: exiting with them open would delete them
        // one at a time (10 ms each) after the process is gone.
        let reaper = self.store.reaper.clone();
        let _ = tokio::task::spawn_blocking(move || reaper.flush()).await;
    }

    /// Handle one request; descriptors attached to it are in `fds`.
    pub async fn handle(&self, req: Request, fds: Vec<OwnedFd>) -> Reply {
        let seq = req.seq;
        let reply = |body: Body| {
            let mut m = ServerMessage::ok(seq);
            let mut fds = Vec::new();
            match body {
                Body::Done => {}
                Body::Attrs(a) => m.attrs = Some(*a),
                Body::Entries(e) => m.entries = Some(e),
                Body::Text(t) => m.text = Some(t),
                Body::Fd(fd) => fds.push(fd),
            }
            (m, fds)
        };
        match self.dispatch(req, fds).await {
            Ok(body) => reply(body),
            Err(e) => (ServerMessage::err(seq, e), Vec::new()),
        }
    }

    async fn dispatch(&self, req: Request, fds: Vec<OwnedFd>) -> ApiResult<Body> {
        let a = &req.attrs;
        let d = &*self.store;
        let done = |_| Body::Done;
        let attrs = |a| Body::Attrs(Box::new(a));
        match req.cmd {
            Command::Noop | Command::Monitor => Ok(Body::Done),
            Command::TunnelCreate => Ok(tunnel::create(d, &self.l2tpip, a, fds)
                .await?
                .map_or(Body::Done, Body::Fd)),
            Command::TunnelDelete => tunnel::delete(d, a).await.map(done),
            Command::TunnelModify => tunnel::modify(d, a).await.map(done),
            Command::TunnelGet if req.dump => Ok(Body::Entries(tunnel::dump(d).await)),
            Command::TunnelGet => tunnel::get(d, a).await.map(attrs),
            Command::SessionCreate => session::create(d, a).await.map(done),
            Command::SessionDelete => session::delete(d, a).await.map(done),
            Command::SessionModify => session::modify(d, a).await.map(done),
            Command::SessionGet if req.dump => Ok(Body::Entries(session::dump(d).await)),
            Command::SessionGet => session::get(d, a).await.map(attrs),
            Command::DebugTunnels => Ok(Body::Text(debug::tunnels(d).await)),
            Command::DebugPppol2tp => Ok(Body::Text(debug::pppol2tp(d).await)),
            Command::TraceSet => debug::trace_set(d, a).map(done),
            Command::Pppol2tpConnect => apps::pppol2tp_connect(d, a, fds).await.map(Body::Fd),
            Command::L2tpipSocket => crate::l2tpip::open(d, &self.l2tpip, a).map(Body::Fd),
            Command::ControlConnect => control::connect(self.control()?, a).await.map(attrs),
            Command::ControlSession => control::session(self.control()?, a).await.map(attrs),
            Command::PppStart => {
                // Our name: `[control] host_name` when the control plane runs.
                let host_name = self.control.get().map(|c| c.host_name().to_string());
                let v6 = self
                    .control
                    .get()
                    .map(|c| c.ipv6_client())
                    .unwrap_or_default();
                ppp::start(d, host_name, v6, a).await.map(done)
            }
            Command::ControlDisconnect => control::disconnect(self.control()?, a).await.map(done),
            Command::Dial => {
                let name = a
                    .profile
                    .as_deref()
                    .ok_or_else(|| ApiError::new(Errno::EINVAL, "dial needs profile"))?;
                let up = self.dialer()?.dial(name, a.wait == Some(true)).await?;
                Ok(attrs(up))
            }
            Command::LacGet => {
                let name = if req.dump { None } else { a.profile.as_deref() };
                if !req.dump && name.is_none() {
                    return Err(ApiError::new(
                        Errno::EINVAL,
                        "lac_get needs profile or dump",
                    ));
                }
                let entries = match self.dialer.get() {
                    Some(d) => d.status(name)?,
                    None if req.dump => Vec::new(),
                    None => {
                        return Err(ApiError::new(
                            Errno::ENOENT,
                            "no [[lac]] profiles in the configuration",
                        ))
                    }
                };
                Ok(if req.dump {
                    Body::Entries(entries)
                } else {
                    Body::Attrs(Box::new(entries.into_iter().next().unwrap_or_default()))
                })
            }
            Command::Hangup => {
                let name = a
                    .profile
                    .as_deref()
                    .ok_or_else(|| ApiError::new(Errno::EINVAL, "hangup needs profile"))?;
                self.dialer()?.hangup(name).await.map(done)
            }
        }
    }
}
