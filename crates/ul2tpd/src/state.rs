//! The daemon's state and the management API's request handlers.
//!
//! `Daemon::handle` is the equivalent of the kernel's generic netlink doit/dumpit handlers
//! (kernel-facts §4): it validates attributes in the kernel's order, returns the kernel's errno
//! for each failure, creates sockets and devices, registers objects in the `ul2tp-core`
//! registry and multicasts notifications to monitors (kernel-facts §4.9).
//!
//! Control-side changes are serialised by one async mutex; the data path never takes it.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::sync::Arc;

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
use ul2tp_sys::tap::Tap;
use ul2tp_sys::udp::{UdpOptions, UdpTunnelSocket};

use crate::datapath::{self, Pseudowire, Pseudowires, RxContext, TunnelSocket};

type ApiResult<T> = Result<T, ApiError>;

fn einval(msg: impl Into<String>) -> ApiError {
    ApiError::new(Errno::EINVAL, msg)
}

fn io_err(what: &str, e: std::io::Error) -> ApiError {
    let errno = e
        .raw_os_error()
        .and_then(Errno::from_number)
        .unwrap_or(Errno::EIO);
    ApiError::new(errno, format!("{what}: {e}"))
}

/// A task aborted when dropped.
#[derive(Debug)]
struct Task(JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Socket-level facts of a tunnel, reported in replies (kernel-facts §4.8).
#[derive(Debug, Clone)]
struct TunnelInfo {
    udp_csum: bool,
    zero_csum6_tx: bool,
    zero_csum6_rx: bool,
}

#[derive(Debug)]
struct TunnelRt {
    socket: Arc<TunnelSocket>,
    info: TunnelInfo,
    _rx: Task,
}

#[derive(Debug)]
struct SessionRt {
    _tasks: Vec<Task>,
}

#[derive(Debug, Default)]
struct Ctl {
    tunnels: BTreeMap<u32, TunnelRt>,
    sessions: HashMap<(u32, u32), SessionRt>,
    next_socket: u64,
}

/// The daemon.
#[derive(Debug)]
pub struct Daemon {
    registry: Arc<Registry>,
    pseudowires: Arc<Pseudowires>,
    ctl: Mutex<Ctl>,
    events: broadcast::Sender<ServerMessage>,
}

impl Daemon {
    /// A daemon with no tunnels.
    pub fn new() -> Arc<Daemon> {
        let (events, _) = broadcast::channel(1024);
        Arc::new(Daemon {
            registry: Arc::new(Registry::new()),
            pseudowires: Arc::new(Pseudowires::default()),
            ctl: Mutex::new(Ctl::default()),
            events,
        })
    }

    /// Subscribe to notifications.
    pub fn subscribe(&self) -> broadcast::Receiver<ServerMessage> {
        self.events.subscribe()
    }

    fn notify(&self, cmd: Command, attrs: Attrs) {
        // "No listeners" is not an error (kernel-facts §4.9).
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

    /// Handle one request.
    pub async fn handle(&self, req: Request, fds: Vec<OwnedFd>) -> ServerMessage {
        let seq = req.seq;
        let a = &req.attrs;
        let r: ApiResult<ServerMessage> = match req.cmd {
            Command::Noop => Ok(ServerMessage::ok(seq)),
            Command::TunnelCreate => self
                .tunnel_create(a, fds)
                .await
                .map(|_| ServerMessage::ok(seq)),
            Command::TunnelDelete => self.tunnel_delete(a).await.map(|_| ServerMessage::ok(seq)),
            Command::TunnelModify => self.tunnel_modify(a).await.map(|_| ServerMessage::ok(seq)),
            Command::TunnelGet if req.dump => {
                let ctl = self.ctl.lock().await;
                let entries = self
                    .registry
                    .tunnels()
                    .iter()
                    .filter_map(|t| self.tunnel_attrs(&ctl, t.tunnel_id()))
                    .collect();
                Ok(ServerMessage {
                    seq: Some(seq),
                    entries: Some(entries),
                    ..ServerMessage::default()
                })
            }
            Command::TunnelGet => {
                let ctl = self.ctl.lock().await;
                match a.conn_id {
                    None => Err(einval("tunnel_get needs conn_id")),
                    Some(tid) => self
                        .tunnel_attrs(&ctl, tid)
                        .map(|attrs| ServerMessage {
                            seq: Some(seq),
                            attrs: Some(attrs),
                            ..ServerMessage::default()
                        })
                        .ok_or_else(|| ApiError::new(Errno::ENODEV, format!("no tunnel {tid}"))),
                }
            }
            Command::SessionCreate => self.session_create(a).await.map(|_| ServerMessage::ok(seq)),
            Command::SessionDelete => self.session_delete(a).await.map(|_| ServerMessage::ok(seq)),
            Command::SessionModify => self.session_modify(a).await.map(|_| ServerMessage::ok(seq)),
            Command::SessionGet if req.dump => {
                let entries = self
                    .registry
                    .sessions()
                    .iter()
                    .map(|s| session_attrs(s))
                    .collect();
                Ok(ServerMessage {
                    seq: Some(seq),
                    entries: Some(entries),
                    ..ServerMessage::default()
                })
            }
            Command::SessionGet => self.find_session(a).map(|s| ServerMessage {
                seq: Some(seq),
                attrs: Some(session_attrs(&s)),
                ..ServerMessage::default()
            }),
            Command::Monitor => Ok(ServerMessage::ok(seq)),
            Command::DebugTunnels
            | Command::DebugPppol2tp
            | Command::TraceSet
            | Command::Pppol2tpConnect
            | Command::L2tpipSocket => Err(ApiError::new(Errno::EOPNOTSUPP, "not implemented yet")),
        };
        r.unwrap_or_else(|e| ServerMessage::err(seq, e))
    }

    fn tunnel_attrs(&self, ctl: &Ctl, tid: u32) -> Option<Attrs> {
        let t = self.registry.tunnel_get(tid)?;
        let rt = ctl.tunnels.get(&tid)?;
        let p = t.params();
        let mut a = Attrs {
            proto_version: Some(match p.version {
                ProtoVersion::V2 => 2,
                ProtoVersion::V3 => 3,
            }),
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
        // Addresses and ports are read from the live socket (kernel-facts §4.8).
        let local = rt.socket.local_addr().ok();
        let peer = rt.socket.peer_addr().ok();
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

    async fn tunnel_create(&self, a: &Attrs, fds: Vec<OwnedFd>) -> ApiResult<()> {
        // kernel-facts §4.5: required attributes.
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
        // Beyond the kernel (kernel-facts §12.2 item 3): validate the version and id ranges.
        let version = match version {
            2 => ProtoVersion::V2,
            3 => ProtoVersion::V3,
            v => return Err(einval(format!("proto_version {v} is not 2 or 3"))),
        };
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
        if a.fd.is_some() || !fds.is_empty() {
            return Err(ApiError::new(
                Errno::EOPNOTSUPP,
                "managed tunnels (fd) are not supported yet",
            ));
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
        // kernel-facts §5.5: the daemon creates the tunnel socket itself.
        let socket = match encap {
            Encap::Udp => {
                let l = SocketAddr::new(local, a.udp_sport.unwrap_or(0));
                let r = SocketAddr::new(remote, a.udp_dport.unwrap_or(0));
                let opts = UdpOptions {
                    csum_tx_v4: info.udp_csum,
                    zero_csum6_tx: info.zero_csum6_tx,
                    zero_csum6_rx: info.zero_csum6_rx,
                };
                TunnelSocket::Udp(
                    UdpTunnelSocket::open(l, r, opts).map_err(|e| io_err("tunnel socket", e))?,
                )
            }
            Encap::Ip => TunnelSocket::Ip(
                IpTunnelSocket::open(local, remote).map_err(|e| io_err("tunnel socket", e))?,
            ),
        };
        let socket = Arc::new(socket);
        ctl.next_socket += 1;
        let socket_id = SocketId(ctl.next_socket);
        let tunnel = self
            .registry
            .tunnel_create(TunnelParams {
                tunnel_id: tid,
                peer_tunnel_id: ptid,
                version,
                encap,
                socket: socket_id,
            })
            .map_err(|e| ApiError::new(e, format!("cannot create tunnel {tid}")))?;
        let ctx = RxContext {
            registry: self.registry.clone(),
            pseudowires: self.pseudowires.clone(),
        };
        let rx = Task(tokio::spawn(datapath::tunnel_rx(
            ctx,
            socket.clone(),
            socket_id,
        )));
        ctl.tunnels.insert(
            tid,
            TunnelRt {
                socket,
                info,
                _rx: rx,
            },
        );
        let _ = tunnel;
        if let Some(attrs) = self.tunnel_attrs(&ctl, tid) {
            self.notify(Command::TunnelCreate, attrs);
        }
        tracing::info!("tunnel {tid} created (peer {ptid}, {encap:?}, {local} -> {remote})");
        Ok(())
    }

    async fn tunnel_delete(&self, a: &Attrs) -> ApiResult<()> {
        let tid = a
            .conn_id
            .ok_or_else(|| einval("tunnel_delete needs conn_id"))?;
        let mut ctl = self.ctl.lock().await;
        let attrs = self
            .tunnel_attrs(&ctl, tid)
            .ok_or_else(|| ApiError::new(Errno::ENODEV, format!("no tunnel {tid}")))?;
        // The notification goes out before the delete (kernel-facts §4.2).
        self.notify(Command::TunnelDelete, attrs);
        let sessions = self
            .registry
            .tunnel_delete(tid)
            .map_err(|e| ApiError::new(e, format!("no tunnel {tid}")))?;
        for s in sessions {
            let key = (tid, s.session_id());
            self.pseudowires.remove(key);
            ctl.sessions.remove(&key);
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
        // kernel-facts §4.2: changes nothing, only notifies.
        let attrs = self
            .tunnel_attrs(&ctl, tid)
            .ok_or_else(|| ApiError::new(Errno::ENODEV, format!("no tunnel {tid}")))?;
        self.notify(Command::TunnelModify, attrs);
        Ok(())
    }

    fn find_session(&self, a: &Attrs) -> ApiResult<Arc<Session>> {
        // kernel-facts §4.7: IFNAME wins; missing attributes or no match are ENODEV.
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
        let v3 = tunnel.params().version == ProtoVersion::V3;
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
        let params = SessionParams {
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
        // The device first, so that the session is registered under its resolved name.
        let mut params = params;
        let tap = if is_eth {
            let tap = Tap::create(if v3 { a.ifname.as_deref() } else { None }, "l2tpeth%d")
                .map_err(|e| {
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
        let rt = ctl
            .tunnels
            .get(&tid)
            .ok_or_else(|| ApiError::new(Errno::ENODEV, format!("no tunnel {tid}")))?;
        let mut tasks = Vec::new();
        if let Some(tap) = tap {
            // kernel-facts §6.2: MTU from the tunnel socket's path MTU and the header length.
            let mtu = session.eth_mtu(rt.socket.is_ipv6(), rt.socket.path_mtu());
            if let Err(e) = tap.set_mtu(mtu) {
                tracing::warn!("{}: cannot set MTU {mtu}: {e}", tap.name());
            }
            let pw = Arc::new(Pseudowire::Eth(tap));
            self.pseudowires.insert((tid, sid), pw.clone());
            tasks.push(Task(tokio::spawn(datapath::eth_tx(
                session.clone(),
                pw,
                rt.socket.clone(),
            ))));
        }
        if session.reorder_timeout_ms() > 0 {
            tasks.push(Task(tokio::spawn(datapath::reorder_timer(
                session.clone(),
                self.pseudowires.clone(),
            ))));
        }
        ctl.sessions.insert((tid, sid), SessionRt { _tasks: tasks });
        self.notify(Command::SessionCreate, session_attrs(&session));
        tracing::info!("session {sid} in tunnel {tid} created");
        Ok(())
    }

    async fn session_delete(&self, a: &Attrs) -> ApiResult<()> {
        let mut ctl = self.ctl.lock().await;
        let s = self.find_session(a)?;
        let key = (s.tunnel_id(), s.session_id());
        self.notify(Command::SessionDelete, session_attrs(&s));
        self.registry
            .session_delete(key.0, key.1)
            .map_err(|e| ApiError::new(e, "no such session"))?;
        self.pseudowires.remove(key);
        ctl.sessions.remove(&key);
        tracing::info!("session {} in tunnel {} deleted", key.1, key.0);
        Ok(())
    }

    async fn session_modify(&self, a: &Attrs) -> ApiResult<()> {
        let mut ctl = self.ctl.lock().await;
        let s = self.find_session(a)?;
        // kernel-facts §4.7: RECV_SEQ, SEND_SEQ, LNS_MODE, RECV_TIMEOUT only; bit 0 counts.
        s.modify(
            a.send_seq.map(|v| v & 1 == 1),
            a.recv_seq.map(|v| v & 1 == 1),
            a.lns_mode.map(|v| v & 1 == 1),
            a.recv_timeout,
        );
        let key = (s.tunnel_id(), s.session_id());
        if a.recv_timeout.is_some_and(|t| t > 0) {
            if let Some(rt) = ctl.sessions.get_mut(&key) {
                rt._tasks.push(Task(tokio::spawn(datapath::reorder_timer(
                    s.clone(),
                    self.pseudowires.clone(),
                ))));
            }
        }
        self.notify(Command::SessionModify, session_attrs(&s));
        Ok(())
    }
}

/// Session reply attributes (kernel-facts §4.8).
fn session_attrs(s: &Session) -> Attrs {
    let p = s.params();
    Attrs {
        conn_id: Some(s.tunnel_id()),
        session_id: Some(p.session_id),
        peer_conn_id: Some(s.peer_tunnel_id()),
        peer_session_id: Some(p.peer_session_id),
        debug: Some(0),
        pw_type: Some(p.pw_type),
        ifname: p.ifname.clone(),
        cookie: (!p.cookie.as_bytes().is_empty()).then(|| cookie_hex(p.cookie.as_bytes())),
        peer_cookie: (!p.peer_cookie.as_bytes().is_empty())
            .then(|| cookie_hex(p.peer_cookie.as_bytes())),
        recv_seq: Some(u8::from(p.recv_seq)),
        send_seq: Some(u8::from(p.send_seq)),
        lns_mode: Some(u8::from(p.lns_mode)),
        recv_timeout: (p.reorder_timeout_ms != 0).then_some(p.reorder_timeout_ms),
        vlan_id: p.vlan_id,
        stats: Some(s.stats()),
        ..Attrs::default()
    }
}
