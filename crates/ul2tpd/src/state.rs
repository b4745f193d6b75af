//! The daemon's state and the management API's request handlers.
//!
//! `Daemon::handle` is the equivalent of the kernel's generic netlink doit/dumpit handlers
//! (docs/reference/kernel.md §4): it validates attributes in the kernel's order, returns the kernel's errno
//! for each failure, creates sockets and devices, registers objects in the `ul2tp-core`
//! registry and multicasts notifications to monitors (docs/reference/kernel.md §4.9).
//!
//! Sockets: an unmanaged tunnel gets a socket the daemon opens (docs/reference/kernel.md §5.5); tunnels
//! with the same encapsulation, local and remote address (and ports) share one socket, which
//! the kernel cannot do (seed limitation 1). A managed tunnel uses the application's socket,
//! handed over with the request (§5.6). Applications get descriptors back for session sockets
//! (the PPPoL2TP equivalent, §7) and for managed tunnels (see `apps.rs`).
//!
//! Control-side changes are serialised by one async mutex; the data path never takes it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::sync::{Arc, Weak};

use arc_swap::ArcSwapOption;
use tokio::sync::{broadcast, Mutex};
use tokio::task::JoinHandle;
use ul2tp_api::{
    cookie_hex, encap_type, l2spec_type, parse_cookie_hex, pw_type, ApiError, Attrs, Command,
    Errno, Request, ServerMessage,
};
use ul2tp_core::{
    Cookie, Encap, L2SpecType, ProtoVersion, Registry, Session, SessionParams, SocketId,
    TunnelParams,
};
use ul2tp_sys::ip::IpTunnelSocket;
use ul2tp_sys::seqpacket::SeqPacket;
use ul2tp_sys::tap::Tap;
use ul2tp_sys::udp::{UdpOptions, UdpTunnelSocket};

use crate::apps;
use crate::datapath::{self, Pseudowire, Pseudowires, RxContext, TunnelSocket};

pub(crate) type ApiResult<T> = Result<T, ApiError>;

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

pub(crate) fn einval(msg: impl Into<String>) -> ApiError {
    ApiError::new(Errno::EINVAL, msg)
}

pub(crate) fn io_err(what: &str, e: std::io::Error) -> ApiError {
    let errno = e
        .raw_os_error()
        .and_then(Errno::from_number)
        .unwrap_or(Errno::EIO);
    ApiError::new(errno, format!("{what}: {e}"))
}

/// A task aborted when dropped.
#[derive(Debug)]
pub(crate) struct Task(pub(crate) JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What makes two unmanaged tunnels' sockets the same socket.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SocketKey {
    encap: Encap,
    local: SocketAddr,
    remote: SocketAddr,
    opts: (bool, bool, bool),
}

/// A tunnel socket and its receive task.
#[derive(Debug)]
pub(crate) struct SocketRt {
    pub(crate) socket: Arc<TunnelSocket>,
    pub(crate) id: SocketId,
    /// The managed tunnel's application view, if any.
    pub(crate) upcall: Arc<ArcSwapOption<SeqPacket>>,
    /// Inode of an adopted application socket (to refuse reusing it: EBUSY).
    pub(crate) inode: Option<u64>,
    _rx: Task,
}

/// Socket-level facts of a tunnel, reported in replies (docs/reference/kernel.md §4.8).
#[derive(Debug, Clone, Default)]
pub(crate) struct TunnelInfo {
    pub(crate) udp_csum: bool,
    pub(crate) zero_csum6_tx: bool,
    pub(crate) zero_csum6_rx: bool,
}

#[derive(Debug)]
pub(crate) struct TunnelRt {
    pub(crate) sock: Arc<SocketRt>,
    pub(crate) info: TunnelInfo,
    pub(crate) tasks: Vec<Task>,
    /// The emulated L2TP/IP socket a managed IP tunnel was created on.
    pub(crate) l2tpip: Option<u64>,
}

#[derive(Debug, Default)]
pub(crate) struct SessionRt {
    pub(crate) tasks: Vec<Task>,
    /// A session socket is (or was) attached: a second connect is EEXIST (§7.3).
    pub(crate) had_socket: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Ctl {
    pub(crate) tunnels: BTreeMap<u32, TunnelRt>,
    pub(crate) sessions: HashMap<(u32, u32), SessionRt>,
    sockets: HashMap<SocketKey, Weak<SocketRt>>,
    next_socket: u64,
    /// Sessions with an attached session socket.
    pub(crate) attached: HashSet<(u32, u32)>,
    /// Tunnels the control plane negotiated: deleting them (or their sessions) through the
    /// API also tells the peer (StopCCN / CDN).
    pub(crate) dynamic: HashSet<u32>,
}

/// The daemon.
#[derive(Debug)]
pub struct Daemon {
    pub(crate) registry: Arc<Registry>,
    pub(crate) pseudowires: Arc<Pseudowires>,
    pub(crate) ctl: Mutex<Ctl>,
    events: broadcast::Sender<ServerMessage>,
    pub(crate) me: Weak<Daemon>,
    pub(crate) l2tpip: Arc<crate::l2tpip::L2tpIp>,
    control: std::sync::OnceLock<crate::control::ControlPlane>,
}

impl Daemon {
    /// A daemon with no tunnels.
    pub fn new() -> Arc<Daemon> {
        let (events, _) = broadcast::channel(4096);
        let d = Arc::new_cyclic(|me| Daemon {
            registry: Arc::new(Registry::new()),
            pseudowires: Arc::new(Pseudowires::default()),
            ctl: Mutex::new(Ctl::default()),
            events,
            me: me.clone(),
            l2tpip: crate::l2tpip::L2tpIp::new(),
            control: std::sync::OnceLock::new(),
        });
        // Trace events (docs/reference/kernel.md §9.2) go to the log and to monitors, for the objects they
        // are switched on for.
        let ev = d.events.clone();
        d.registry
            .set_trace_sink(Some(Arc::new(move |e: &ul2tp_core::TraceEvent| {
                tracing::info!(target: "l2tp", "{}: {}", e.name(), e);
                let _ = ev.send(ServerMessage {
                    event: Some(Command::TraceSet),
                    text: Some(format!("{}: {}", e.name(), e)),
                    ..ServerMessage::default()
                });
            })));
        d
    }

    /// Start the L2TP control protocol endpoint (the `[control]` section).
    pub fn start_control(&self, s: crate::control::ControlSettings) -> std::io::Result<SocketAddr> {
        let cp = crate::control::ControlPlane::start(self.me.clone(), s)?;
        let local = cp.local();
        self.control
            .set(cp)
            .map_err(|_| std::io::Error::other("control plane already running"))?;
        Ok(local)
    }

    pub(crate) fn control(&self) -> ApiResult<&crate::control::ControlPlane> {
        self.control.get().ok_or_else(|| {
            ApiError::new(
                Errno::EOPNOTSUPP,
                "the control protocol is off (no [control] section in the configuration)",
            )
        })
    }

    /// The subsystem (for read-only views such as metrics).
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Subscribe to notifications.
    pub fn subscribe(&self) -> broadcast::Receiver<ServerMessage> {
        self.events.subscribe()
    }

    pub(crate) fn notify(&self, cmd: Command, attrs: Attrs) {
        // "No listeners" is not an error (docs/reference/kernel.md §4.9).
        let _ = self.events.send(ServerMessage::event(cmd, attrs));
    }

    /// Delete everything (on shutdown).
    pub async fn shutdown(&self) {
        let ids: Vec<u32> = self.ctl.lock().await.tunnels.keys().copied().collect();
        for tid in ids {
            let _ = self
                .tunnel_delete(&Attrs {
                    conn_id: Some(tid),
                    ..Attrs::default()
                })
                .await;
        }
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
        let done = |_| Body::Done;
        match req.cmd {
            Command::Noop | Command::Monitor => Ok(Body::Done),
            Command::TunnelCreate => Ok(self
                .tunnel_create(a, fds)
                .await?
                .map_or(Body::Done, Body::Fd)),
            Command::TunnelDelete => self.tunnel_delete(a).await.map(done),
            Command::TunnelModify => self.tunnel_modify(a).await.map(done),
            Command::TunnelGet if req.dump => {
                let ctl = self.ctl.lock().await;
                let tunnels = self.registry.tunnels();
                Ok(Body::Entries(
                    tunnels
                        .iter()
                        .filter_map(|t| self.tunnel_attrs(&ctl, t.tunnel_id()))
                        .collect(),
                ))
            }
            Command::TunnelGet => {
                let ctl = self.ctl.lock().await;
                let tid = a
                    .conn_id
                    .ok_or_else(|| einval("tunnel_get needs conn_id"))?;
                let attrs = self.tunnel_attrs(&ctl, tid);
                attrs
                    .map(|a| Body::Attrs(Box::new(a)))
                    .ok_or_else(|| ApiError::new(Errno::ENODEV, format!("no tunnel {tid}")))
            }
            Command::SessionCreate => self.session_create(a).await.map(done),
            Command::SessionDelete => self.session_delete(a).await.map(done),
            Command::SessionModify => self.session_modify(a).await.map(done),
            Command::SessionGet if req.dump => {
                let ctl = self.ctl.lock().await;
                Ok(Body::Entries(
                    self.registry
                        .sessions()
                        .iter()
                        .map(|s| session_attrs(s, &ctl))
                        .collect(),
                ))
            }
            Command::SessionGet => {
                let ctl = self.ctl.lock().await;
                self.find_session(a)
                    .map(|s| Body::Attrs(Box::new(session_attrs(&s, &ctl))))
            }
            Command::DebugTunnels => {
                let ctl = self.ctl.lock().await;
                Ok(Body::Text(ul2tp_core::debug::debug_tunnels(
                    &self.registry,
                    &|t| {
                        let rt = ctl.tunnels.get(&t.tunnel_id())?;
                        Some(ul2tp_core::debug::TunnelAddrs {
                            local: rt.sock.socket.local_addr().ok()?,
                            peer: rt.sock.socket.peer_addr().ok()?,
                        })
                    },
                )))
            }
            Command::DebugPppol2tp => {
                let ctl = self.ctl.lock().await;
                Ok(Body::Text(ul2tp_core::debug::proc_pppol2tp(
                    &self.registry,
                    &|s| {
                        let attached = ctl.attached.contains(&(s.tunnel_id(), s.session_id()));
                        let local = ctl.tunnels.get(&s.tunnel_id()).and_then(|rt| {
                            match rt.sock.socket.local_addr() {
                                Ok(SocketAddr::V4(a)) => Some(a),
                                _ => None,
                            }
                        });
                        ul2tp_core::debug::PppSessionInfo {
                            local,
                            state: u32::from(attached),
                            attached,
                            interface: None,
                        }
                    },
                )))
            }
            Command::TraceSet => {
                let tid = a.conn_id.ok_or_else(|| einval("trace_set needs conn_id"))?;
                let on = a.debug.unwrap_or(1) != 0;
                self.registry
                    .set_trace(tid, a.session_id, on)
                    .map(done)
                    .map_err(|e| ApiError::new(e, "no such tunnel or session"))
            }
            Command::Pppol2tpConnect => apps::pppol2tp_connect(self, a, fds).await.map(Body::Fd),
            Command::L2tpipSocket => crate::l2tpip::open(self, a).map(Body::Fd),
            Command::ControlConnect => {
                let cp = self.control()?;
                let addr = match (a.ip6_daddr, a.ip_daddr) {
                    (Some(v6), _) => IpAddr::V6(v6),
                    (None, Some(v4)) => IpAddr::V4(v4),
                    _ => return Err(einval("control_connect needs ip_daddr or ip6_daddr")),
                };
                let version = match a.proto_version.unwrap_or(3) {
                    2 => ul2tp_control::Version::V2,
                    3 => ul2tp_control::Version::V3,
                    v => return Err(einval(format!("proto_version {v} is not 2 or 3"))),
                };
                let peer = SocketAddr::new(addr, a.udp_dport.unwrap_or(1701));
                let tid = cp.connect(peer, version).await?;
                Ok(Body::Attrs(Box::new(Attrs {
                    conn_id: Some(tid),
                    ..Attrs::default()
                })))
            }
            Command::ControlSession => {
                let cp = self.control()?;
                let tid = a
                    .conn_id
                    .ok_or_else(|| einval("control_session needs conn_id"))?;
                let cfg = ul2tp_control::SessionConfig {
                    pw_type: a.pw_type.unwrap_or(pw_type::ETH),
                    l2spec_type: u16::from(a.l2spec_type.unwrap_or(l2spec_type::DEFAULT)),
                    recv_seq: a.recv_seq.is_some_and(|v| v & 1 == 1),
                    ..ul2tp_control::SessionConfig::default()
                };
                let sid = cp.session(tid, cfg, a.ifname.clone()).await?;
                Ok(Body::Attrs(Box::new(Attrs {
                    conn_id: Some(tid),
                    session_id: Some(sid),
                    ..Attrs::default()
                })))
            }
            Command::PppStart => {
                // Our name: `[control] host_name` when the control plane runs. It names us
                // in CHAP Challenges, and is the user name when only a password is given.
                let host_name = self.control.get().map(|c| c.host_name().to_string());
                let user = match (&a.ppp_user, &a.ppp_password) {
                    (Some(u), p) => Some((u.clone(), p.clone().unwrap_or_default())),
                    (None, Some(p)) => Some((
                        host_name.clone().unwrap_or_else(|| "ul2tp".into()),
                        p.clone(),
                    )),
                    (None, None) => None,
                };
                let setup = crate::pppd::PppSetup {
                    local: a.ip_saddr,
                    peer: a.ip_daddr,
                    user,
                    auth_name: host_name,
                    ..Default::default()
                };
                let ready = {
                    let mut ctl = self.ctl.lock().await;
                    let s = self.find_session(a)?;
                    crate::pppd::start(self, &mut ctl, s, setup)?
                };
                // Answered once IPCP is up or the link failed (authentication rejected, ...).
                crate::pppd::wait_ready(ready).await.map(done)
            }
            Command::ControlDisconnect => {
                let cp = self.control()?;
                let tid = a
                    .conn_id
                    .ok_or_else(|| einval("control_disconnect needs conn_id"))?;
                cp.close(tid, a.session_id).await.map(done)
            }
        }
    }

    pub(crate) fn tunnel_attrs(&self, ctl: &Ctl, tid: u32) -> Option<Attrs> {
        let t = self.registry.tunnel_get(tid)?;
        let rt = ctl.tunnels.get(&tid)?;
        let p = t.params();
        let mut a = Attrs {
            proto_version: Some(p.version.as_u8()),
            conn_id: Some(p.tunnel_id),
            peer_conn_id: Some(p.peer_tunnel_id),
            debug: Some(0),
            encap_type: Some(match p.encap {
                Encap::Udp => encap_type::UDP,
                Encap::Ip => encap_type::IP,
            }),
            stats: Some(t.stats()),
            ..Attrs::default()
        };
        // Addresses and ports are read from the live socket (docs/reference/kernel.md §4.8).
        let local = rt.sock.socket.local_addr().ok();
        let peer = rt.sock.socket.peer_addr().ok();
        let udp = p.encap == Encap::Udp;
        match (local, peer) {
            (Some(SocketAddr::V4(l)), Some(SocketAddr::V4(r))) => {
                if udp {
                    a.udp_csum = Some(u8::from(rt.info.udp_csum));
                    a.udp_sport = Some(l.port());
                    a.udp_dport = Some(r.port());
                }
                a.ip_saddr = Some(*l.ip());
                a.ip_daddr = Some(*r.ip());
            }
            (Some(SocketAddr::V6(l)), Some(SocketAddr::V6(r))) => {
                if udp {
                    if rt.info.zero_csum6_tx {
                        a.udp_zero_csum6_tx = Some(true);
                    }
                    if rt.info.zero_csum6_rx {
                        a.udp_zero_csum6_rx = Some(true);
                    }
                    a.udp_sport = Some(l.port());
                    a.udp_dport = Some(r.port());
                }
                a.ip6_saddr = Some(*l.ip());
                a.ip6_daddr = Some(*r.ip());
            }
            _ => {}
        }
        Some(a)
    }

    /// Register a socket and start its receive task.
    pub(crate) fn add_socket(
        &self,
        ctl: &mut Ctl,
        socket: TunnelSocket,
        inode: Option<u64>,
    ) -> Arc<SocketRt> {
        ctl.next_socket += 1;
        let id = SocketId(ctl.next_socket);
        let socket = Arc::new(socket);
        let upcall = Arc::new(ArcSwapOption::empty());
        let ctx = RxContext {
            registry: self.registry.clone(),
            pseudowires: self.pseudowires.clone(),
            upcall: upcall.clone(),
        };
        // An application's socket (it has an inode here and the application a copy) keeps
        // its socket options: no UDP_GRO.
        let rx = Task(tokio::spawn(datapath::tunnel_rx(
            ctx,
            socket.clone(),
            id,
            inode.is_none(),
        )));
        Arc::new(SocketRt {
            socket,
            id,
            upcall,
            inode,
            _rx: rx,
        })
    }

    /// Validated common tunnel attributes: (tunnel_id, peer_tunnel_id, version, encap).
    fn tunnel_ids(a: &Attrs) -> ApiResult<(u32, u32, ProtoVersion, Encap)> {
        // docs/reference/kernel.md §4.5: required attributes.
        let (Some(tid), Some(ptid), Some(version), Some(encap)) =
            (a.conn_id, a.peer_conn_id, a.proto_version, a.encap_type)
        else {
            return Err(einval(
                "tunnel_create needs conn_id, peer_conn_id, proto_version and encap_type",
            ));
        };
        let encap = match encap {
            encap_type::UDP => Encap::Udp,
            encap_type::IP => Encap::Ip,
            other => {
                return Err(einval(format!(
                    "encap_type {other} is neither 0 (udp) nor 1 (ip)"
                )))
            }
        };
        // Beyond the kernel (docs/reference/kernel.md §12.2 item 3): validate the version and id ranges.
        let version = ProtoVersion::from_u8(version)
            .ok_or_else(|| einval(format!("proto_version {version} is not 2 or 3")))?;
        if version == ProtoVersion::V2 {
            if encap != Encap::Udp {
                return Err(ApiError::new(
                    Errno::EPROTONOSUPPORT,
                    "L2TPv2 is carried over UDP only",
                ));
            }
            if tid > 0xffff || ptid > 0xffff {
                return Err(einval("L2TPv2 tunnel ids are 16-bit"));
            }
        }
        Ok((tid, ptid, version, encap))
    }

    /// Register a tunnel on a socket (the common tail of every create path).
    pub(crate) fn register_tunnel(
        &self,
        ctl: &mut Ctl,
        p: TunnelParams,
        sock: Arc<SocketRt>,
        info: TunnelInfo,
    ) -> ApiResult<()> {
        let tid = p.tunnel_id;
        self.registry
            .tunnel_create(p)
            .map_err(|e| ApiError::new(e, format!("cannot create tunnel {tid}")))?;
        ctl.tunnels.insert(
            tid,
            TunnelRt {
                sock,
                info,
                tasks: Vec::new(),
                l2tpip: None,
            },
        );
        if let Some(attrs) = self.tunnel_attrs(ctl, tid) {
            self.notify(Command::TunnelCreate, attrs);
        }
        Ok(())
    }

    async fn tunnel_create(&self, a: &Attrs, fds: Vec<OwnedFd>) -> ApiResult<Option<OwnedFd>> {
        let (tid, ptid, version, encap) = Self::tunnel_ids(a)?;
        if a.fd.is_some() || !fds.is_empty() {
            let fd = fds.into_iter().next().ok_or_else(|| {
                ApiError::new(Errno::EBADF, "fd given but no descriptor attached")
            })?;
            let mut ctl = self.ctl.lock().await;
            let p = TunnelParams {
                tunnel_id: tid,
                peer_tunnel_id: ptid,
                version,
                encap,
                socket: SocketId(0),
            };
            if let Some(r) = crate::l2tpip::managed_tunnel(self, &mut ctl, p, &fd) {
                return r.map(Some);
            }
            let view = apps::managed_tunnel(
                self,
                &mut ctl,
                TunnelParams {
                    tunnel_id: tid,
                    peer_tunnel_id: ptid,
                    version,
                    encap,
                    socket: SocketId(0),
                },
                fd,
                true,
            )?;
            return Ok(view);
        }
        let (local, remote) =
            match (a.ip6_saddr, a.ip6_daddr, a.ip_saddr, a.ip_daddr) {
                (Some(l), Some(r), _, _) => (IpAddr::V6(l), IpAddr::V6(r)),
                (_, _, Some(l), Some(r)) => (IpAddr::V4(l), IpAddr::V4(r)),
                _ => return Err(einval(
                    "an unmanaged tunnel needs ip_saddr and ip_daddr (or ip6_saddr and ip6_daddr)",
                )),
            };
        let mut ctl = self.ctl.lock().await;
        if self.registry.tunnel_get(tid).is_some() {
            return Err(ApiError::new(
                Errno::EEXIST,
                format!("tunnel {tid} already exists"),
            ));
        }
        let info = TunnelInfo {
            udp_csum: a.udp_csum.is_some(),
            zero_csum6_tx: a.udp_zero_csum6_tx.unwrap_or(false),
            zero_csum6_rx: a.udp_zero_csum6_rx.unwrap_or(false),
        };
        let (l, r) = match encap {
            Encap::Udp => (
                SocketAddr::new(local, a.udp_sport.unwrap_or(0)),
                SocketAddr::new(remote, a.udp_dport.unwrap_or(0)),
            ),
            Encap::Ip => (SocketAddr::new(local, 0), SocketAddr::new(remote, 0)),
        };
        let key = SocketKey {
            encap,
            local: l,
            remote: r,
            opts: (info.udp_csum, info.zero_csum6_tx, info.zero_csum6_rx),
        };
        // Share the socket of a tunnel with the same addresses (beyond the kernel); a port 0
        // (ephemeral) socket is never shared.
        let shared = (l.port() != 0 || encap == Encap::Ip)
            .then(|| ctl.sockets.get(&key).and_then(Weak::upgrade))
            .flatten();
        let sock = match shared {
            Some(s) => s,
            None => {
                // docs/reference/kernel.md §5.5: the daemon creates the tunnel socket itself.
                let socket = match encap {
                    Encap::Udp => {
                        let opts = UdpOptions {
                            csum_tx_v4: info.udp_csum,
                            zero_csum6_tx: info.zero_csum6_tx,
                            zero_csum6_rx: info.zero_csum6_rx,
                        };
                        TunnelSocket::Udp(
                            UdpTunnelSocket::open(l, r, opts)
                                .map_err(|e| io_err("tunnel socket", e))?,
                        )
                    }
                    Encap::Ip => TunnelSocket::Ip(
                        IpTunnelSocket::open(local, remote)
                            .map_err(|e| io_err("tunnel socket", e))?,
                    ),
                };
                let s = self.add_socket(&mut ctl, socket, None);
                ctl.sockets.retain(|_, w| w.strong_count() > 0);
                ctl.sockets.insert(key, Arc::downgrade(&s));
                s
            }
        };
        let p = TunnelParams {
            tunnel_id: tid,
            peer_tunnel_id: ptid,
            version,
            encap,
            socket: sock.id,
        };
        self.register_tunnel(&mut ctl, p, sock, info)?;
        tracing::info!("tunnel {tid} created (peer {ptid}, {encap:?}, {l} -> {r})");
        Ok(None)
    }

    /// Delete a tunnel and its sessions (API, socket close, shutdown).
    pub(crate) async fn tunnel_delete(&self, a: &Attrs) -> ApiResult<()> {
        let tid = a
            .conn_id
            .ok_or_else(|| einval("tunnel_delete needs conn_id"))?;
        let mut ctl = self.ctl.lock().await;
        self.tunnel_delete_locked(&mut ctl, tid)
    }

    pub(crate) fn tunnel_delete_locked(&self, ctl: &mut Ctl, tid: u32) -> ApiResult<()> {
        if ctl.dynamic.remove(&tid) {
            if let Some(cp) = self.control.get() {
                cp.close_later(tid, None);
            }
        }
        let attrs = self
            .tunnel_attrs(ctl, tid)
            .ok_or_else(|| ApiError::new(Errno::ENODEV, format!("no tunnel {tid}")))?;
        // The notification goes out before the delete (docs/reference/kernel.md §4.2).
        self.notify(Command::TunnelDelete, attrs);
        let sessions = self
            .registry
            .tunnel_delete(tid)
            .map_err(|e| ApiError::new(e, format!("no tunnel {tid}")))?;
        for s in sessions {
            let key = (tid, s.session_id());
            self.pseudowires.remove(key);
            ctl.sessions.remove(&key);
            ctl.attached.remove(&key);
        }
        ctl.tunnels.remove(&tid);
        tracing::info!("tunnel {tid} deleted");
        Ok(())
    }

    async fn tunnel_modify(&self, a: &Attrs) -> ApiResult<()> {
        let tid = a
            .conn_id
            .ok_or_else(|| einval("tunnel_modify needs conn_id"))?;
        let ctl = self.ctl.lock().await;
        // docs/reference/kernel.md §4.2: changes nothing, only notifies.
        let attrs = self
            .tunnel_attrs(&ctl, tid)
            .ok_or_else(|| ApiError::new(Errno::ENODEV, format!("no tunnel {tid}")))?;
        self.notify(Command::TunnelModify, attrs);
        Ok(())
    }

    fn find_session(&self, a: &Attrs) -> ApiResult<Arc<Session>> {
        // docs/reference/kernel.md §4.7: IFNAME wins; missing attributes or no match are ENODEV.
        let s = if let Some(name) = &a.ifname {
            self.registry.session_by_ifname(name)
        } else {
            match (a.conn_id, a.session_id) {
                (Some(t), Some(s)) => self.registry.session_get(t, s),
                _ => None,
            }
        };
        s.ok_or_else(|| ApiError::new(Errno::ENODEV, "no such session"))
    }

    async fn session_create(&self, a: &Attrs) -> ApiResult<()> {
        let tid = a
            .conn_id
            .ok_or_else(|| einval("session_create needs conn_id"))?;
        let mut ctl = self.ctl.lock().await;
        let Some(tunnel) = self.registry.tunnel_get(tid) else {
            return Err(ApiError::new(Errno::ENODEV, format!("no tunnel {tid}")));
        };
        let (Some(sid), Some(psid), Some(pw)) = (a.session_id, a.peer_session_id, a.pw_type) else {
            return Err(einval(
                "session_create needs session_id, peer_session_id and pw_type",
            ));
        };
        let v3 = tunnel.version() == ProtoVersion::V3;
        let cookie = |s: &Option<String>| -> ApiResult<Cookie> {
            match s {
                Some(h) if v3 => {
                    Cookie::new(&parse_cookie_hex(h)?).map_err(|e| ApiError::new(e, "bad cookie"))
                }
                _ => Ok(Cookie::default()),
            }
        };
        let l2spec = match (v3, a.l2spec_type) {
            (false, _) => L2SpecType::None,
            (true, None | Some(l2spec_type::DEFAULT)) => L2SpecType::Default,
            (true, Some(l2spec_type::NONE)) => L2SpecType::None,
            (true, Some(other)) => {
                if pw < pw_type::MAX {
                    return Err(einval(format!(
                        "l2spec_type {other} is neither 0 (none) nor 1 (default)"
                    )));
                }
                L2SpecType::Default
            }
        };
        if pw == pw_type::ETH_VLAN && !a.vlan_id.is_some_and(|v| (1..=4094).contains(&v)) {
            return Err(einval(
                "an eth_vlan session needs vlan_id between 1 and 4094",
            ));
        }
        let mut params = SessionParams {
            session_id: sid,
            peer_session_id: psid,
            pw_type: pw,
            cookie: cookie(&a.cookie)?,
            peer_cookie: cookie(&a.peer_cookie)?,
            l2spec_type: l2spec,
            send_seq: a.send_seq.is_some_and(|v| v & 1 == 1),
            recv_seq: a.recv_seq.is_some_and(|v| v & 1 == 1),
            lns_mode: a.lns_mode.is_some_and(|v| v & 1 == 1),
            reorder_timeout_ms: a.recv_timeout.unwrap_or(0),
            ifname: None,
            vlan_id: a.vlan_id,
        };
        let is_eth = v3 && (pw == pw_type::ETH || pw == pw_type::ETH_VLAN);
        if let (true, Some(name)) = (is_eth, &a.ifname) {
            // docs/reference/kernel.md §4.3 / §4.10: the policy allows 15 characters (ERANGE beyond);
            // the netdev core refuses empty names and names with '/' or white space.
            if name.len() > 15 {
                return Err(ApiError::new(
                    Errno::ERANGE,
                    format!("interface name {name:?} is longer than 15 bytes"),
                ));
            }
            if name.is_empty()
                || name == "."
                || name == ".."
                || name.contains(['/', ':'])
                || name.contains(char::is_whitespace)
            {
                return Err(einval(format!("{name:?} is not a valid interface name")));
            }
        }
        // Validate ids before creating the device (no device churn on EEXIST).
        if pw < pw_type::MAX && self.registry.session_get(tid, sid).is_some() {
            return Err(ApiError::new(
                Errno::EEXIST,
                format!("session {sid} exists in tunnel {tid}"),
            ));
        }
        // The device first, so that the session is registered under its resolved name.
        let tap = if is_eth {
            let tap = Tap::create(a.ifname.as_deref(), "l2tpeth%d").map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    ApiError::new(
                        Errno::EEXIST,
                        format!("interface {} exists", a.ifname.as_deref().unwrap_or("?")),
                    )
                } else {
                    io_err("cannot create the pseudowire device", e)
                }
            })?;
            params.ifname = Some(tap.name().to_string());
            Some(tap)
        } else {
            None
        };
        let session = self
            .registry
            .session_create(tid, params)
            .map_err(|e| ApiError::new(e, format!("cannot create session {sid}")))?;
        self.start_session(&mut ctl, &session, tap)?;
        self.notify(Command::SessionCreate, session_attrs(&session, &ctl));
        tracing::info!("session {sid} in tunnel {tid} created");
        Ok(())
    }

    /// Attach the data path of a newly registered session: its device and timers.
    pub(crate) fn start_session(
        &self,
        ctl: &mut Ctl,
        session: &Arc<Session>,
        tap: Option<Tap>,
    ) -> ApiResult<()> {
        let (tid, sid) = (session.tunnel_id(), session.session_id());
        let rt = ctl
            .tunnels
            .get(&tid)
            .ok_or_else(|| ApiError::new(Errno::ENODEV, format!("no tunnel {tid}")))?;
        let mut tasks = Vec::new();
        if let Some(tap) = tap {
            // docs/reference/kernel.md §6.2: MTU from the tunnel socket's path MTU and the header length.
            let mtu = session.eth_mtu(rt.sock.socket.is_ipv6(), rt.sock.socket.path_mtu());
            if let Err(e) = tap.set_mtu(mtu) {
                tracing::warn!("{}: cannot set MTU {mtu}: {e}", tap.name());
            }
            let pw = Arc::new(Pseudowire::Eth(tap));
            self.pseudowires.insert((tid, sid), pw.clone());
            tasks.push(Task(tokio::spawn(datapath::eth_tx(
                session.clone(),
                pw,
                rt.sock.socket.clone(),
            ))));
        }
        tasks.push(Task(datapath::start_reorder_timer(
            session,
            &self.pseudowires,
        )));
        ctl.sessions.insert(
            (tid, sid),
            SessionRt {
                tasks,
                had_socket: false,
            },
        );
        Ok(())
    }

    async fn session_delete(&self, a: &Attrs) -> ApiResult<()> {
        let mut ctl = self.ctl.lock().await;
        let s = self.find_session(a)?;
        self.session_delete_locked(&mut ctl, &s)
    }

    pub(crate) fn session_delete_locked(&self, ctl: &mut Ctl, s: &Arc<Session>) -> ApiResult<()> {
        let key = (s.tunnel_id(), s.session_id());
        if ctl.dynamic.contains(&key.0) {
            if let Some(cp) = self.control.get() {
                cp.close_later(key.0, Some(key.1));
            }
        }
        self.notify(Command::SessionDelete, session_attrs(s, ctl));
        self.registry
            .session_delete(key.0, key.1)
            .map_err(|e| ApiError::new(e, "no such session"))?;
        self.pseudowires.remove(key);
        ctl.sessions.remove(&key);
        ctl.attached.remove(&key);
        tracing::info!("session {} in tunnel {} deleted", key.1, key.0);
        Ok(())
    }

    async fn session_modify(&self, a: &Attrs) -> ApiResult<()> {
        let ctl = self.ctl.lock().await;
        let s = self.find_session(a)?;
        // docs/reference/kernel.md §4.7: RECV_SEQ, SEND_SEQ, LNS_MODE, RECV_TIMEOUT only; bit 0 counts.
        s.modify(
            a.send_seq.map(|v| v & 1 == 1),
            a.recv_seq.map(|v| v & 1 == 1),
            a.lns_mode.map(|v| v & 1 == 1),
            a.recv_timeout,
        );
        self.notify(Command::SessionModify, session_attrs(&s, &ctl));
        Ok(())
    }
}

/// Session reply attributes (docs/reference/kernel.md §4.8).
pub(crate) fn session_attrs(s: &Session, _ctl: &Ctl) -> Attrs {
    let p = s.params();
    // PPP sessions never report IFNAME (docs/reference/kernel.md §4.3).
    let ifname = if p.pw_type == pw_type::PPP {
        None
    } else {
        p.ifname.clone()
    };
    Attrs {
        conn_id: Some(s.tunnel_id()),
        session_id: Some(p.session_id),
        peer_conn_id: Some(s.peer_tunnel_id()),
        peer_session_id: Some(p.peer_session_id),
        debug: Some(0),
        pw_type: Some(p.pw_type),
        ifname,
        cookie: (!p.cookie.is_empty()).then(|| cookie_hex(p.cookie.as_bytes())),
        peer_cookie: (!p.peer_cookie.is_empty()).then(|| cookie_hex(p.peer_cookie.as_bytes())),
        recv_seq: Some(u8::from(p.recv_seq)),
        send_seq: Some(u8::from(p.send_seq)),
        lns_mode: Some(u8::from(p.lns_mode)),
        recv_timeout: (p.reorder_timeout_ms != 0).then_some(p.reorder_timeout_ms),
        vlan_id: p.vlan_id,
        stats: Some(s.stats()),
        ..Attrs::default()
    }
}
