//! Descriptors for applications: the PPPoL2TP session socket (docs/reference/kernel.md §7) and managed
//! tunnels on the application's own socket (§5.6).
//!
//! Both are `SOCK_SEQPACKET` Unix sockets speaking `ul2tp_api::sockproto`. A task per
//! descriptor serves it: PPP frames written by the application are encapsulated and sent,
//! received frames are written to it by the data path, socket options and the statistics
//! ioctl are answered. When the application closes it (or exits), the session — or, for a
//! tunnel management socket or a managed tunnel's view, the tunnel — is deleted, the way the
//! kernel ties object lifetime to its sockets (§5.4).

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Weak};

use ul2tp_api::sockproto::{self, IocStats, SockMsg};
use ul2tp_api::{ApiError, Attrs, Errno};
use ul2tp_core::PwType;
use ul2tp_core::{Encap, L2SpecType, Session, SessionParams, SocketId, TunnelParams, Version};
use ul2tp_sys::seqpacket::SeqPacket;
use ul2tp_sys::sockinfo::{check_managed, ManagedEncap};
use ul2tp_sys::udp::UdpTunnelSocket;

use crate::datapath::{self, Pseudowire, TunnelSocket, MAX_DATAGRAM};
use crate::store::{einval, io_err, ApiResult, Ctl, Store, Task, TunnelInfo};

fn inode(fd: OwnedFd) -> (OwnedFd, Option<u64>) {
    let f = std::fs::File::from(fd);
    let ino = f.metadata().ok().map(|m| m.ino());
    (OwnedFd::from(f), ino)
}

/// Create a managed tunnel on an application's socket (docs/reference/kernel.md §4.5, §5.6). With `view`,
/// returns the application's tunnel-socket view descriptor, whose close destroys the tunnel.
pub(crate) fn managed_tunnel(
    d: &Store,
    ctl: &mut Ctl,
    mut p: TunnelParams,
    fd: OwnedFd,
    view: bool,
) -> ApiResult<Option<OwnedFd>> {
    let tid = p.tunnel_id;
    let encap = match p.encap {
        Encap::Udp => ManagedEncap::Udp,
        Encap::Ip => ManagedEncap::Ip,
    };
    // The kernel's checks in its order: EBADF, ENOTSOCK, EINVAL (netns), EPROTONOSUPPORT.
    let info = check_managed(fd.as_fd(), encap).map_err(|e| io_err("tunnel socket", e))?;
    if d.registry.tunnel_get(tid).is_some() {
        return Err(ApiError::new(
            Errno::EEXIST,
            format!("tunnel {tid} already exists"),
        ));
    }
    let (fd, ino) = inode(fd);
    if ino.is_some() && ctl.tunnels.values().any(|t| t.sock.inode == ino) {
        return Err(ApiError::new(
            Errno::EBUSY,
            "the socket already carries a tunnel",
        ));
    }
    let socket = match p.encap {
        Encap::Udp => {
            TunnelSocket::Udp(UdpTunnelSocket::from_fd(fd).map_err(|e| io_err("tunnel socket", e))?)
        }
        Encap::Ip => TunnelSocket::Ip(
            ul2tp_sys::ip::IpTunnelSocket::from_fd(fd, info.peer.map(|a| a.ip()))
                .map_err(|e| io_err("tunnel socket", e))?,
        ),
    };
    let sock = d.add_socket(ctl, socket, ino);
    p.socket = sock.id;
    let udp_info = match &*sock.socket {
        TunnelSocket::Udp(u) => u.checksum_options().unwrap_or_default(),
        TunnelSocket::Ip(_) => Default::default(),
    };
    let tinfo = TunnelInfo {
        udp_csum: udp_info.csum_tx_v4,
        zero_csum6_tx: udp_info.zero_csum6_tx,
        zero_csum6_rx: udp_info.zero_csum6_rx,
    };
    let socket = sock.socket.clone();
    let upcall = sock.upcall.clone();
    d.register_tunnel(ctl, p, sock, tinfo)?;
    tracing::info!(
        tunnel_id = tid,
        "managed tunnel {tid} created on an application socket"
    );
    if !view {
        return Ok(None);
    }
    let (ours, theirs) = SeqPacket::pair().map_err(|e| io_err("socketpair", e))?;
    let ours = Arc::new(ours);
    upcall.store(Some(ours.clone()));
    let task = Task(tokio::spawn(tunnel_view(d.me.clone(), ours, socket, tid)));
    if let Some(rt) = ctl.tunnels.get_mut(&tid) {
        rt.tasks.push(task);
    }
    Ok(Some(theirs))
}

/// Serve a managed tunnel's view: control messages from the application go out on the tunnel
/// socket; its close destroys the tunnel (the seed: "An L2TP tunnel and all of its sessions
/// are automatically closed when its tunnel socket is closed").
async fn tunnel_view(d: Weak<Store>, sp: Arc<SeqPacket>, socket: Arc<TunnelSocket>, tid: u32) {
    let mut buf = vec![0u8; MAX_DATAGRAM + 64];
    loop {
        let n = match sp.recv(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        match SockMsg::decode(&buf[..n]) {
            Some(SockMsg::Dgram {
                addr,
                conn_id,
                payload,
            }) => {
                let r = if addr.is_unspecified() {
                    socket.send(&payload).await
                } else {
                    socket
                        .send_to(&payload, std::net::SocketAddr::new(addr, conn_id as u16))
                        .await
                };
                if let Err(e) = r {
                    tracing::debug!("tunnel {tid}: control send failed: {e}");
                }
            }
            Some(SockMsg::Frame(payload)) => {
                let _ = socket.send(&payload).await;
            }
            _ => {
                let _ = sp.try_send(&SockMsg::fail(Errno::EINVAL).encode());
            }
        }
    }
    delete_later(d, tid, None);
}

/// Delete a tunnel (or one session) from a task of its own: the caller may be one of the
/// tasks the delete aborts.
fn delete_later(d: Weak<Store>, tid: u32, sid: Option<u32>) {
    tokio::spawn(async move {
        let Some(d) = d.upgrade() else { return };
        let mut ctl = d.ctl.lock().await;
        match sid {
            None => {
                let _ = d.tunnel_delete_locked(&mut ctl, tid);
            }
            Some(sid) => {
                if let Some(s) = d.registry.session_get(tid, sid) {
                    let _ = d.session_delete_locked(&mut ctl, &s);
                }
            }
        }
    });
}

/// The PPPoL2TP `connect()` (docs/reference/kernel.md §7.3).
pub(crate) async fn pppol2tp_connect(
    d: &Store,
    a: &Attrs,
    fds: Vec<OwnedFd>,
) -> ApiResult<OwnedFd> {
    let version = a.proto_version.and_then(Version::from_u8).ok_or_else(|| {
        einval("pppol2tp_connect needs proto_version 2 or 3 (the address length)")
    })?;
    let tid = a
        .conn_id
        .filter(|t| *t != 0)
        .ok_or_else(|| einval("tunnel id 0 is invalid"))?;
    let sid = a.session_id.unwrap_or(0);
    let psid = a.peer_session_id.unwrap_or(0);
    let ptid = a.peer_conn_id.unwrap_or(0);
    let mut ctl = d.ctl.lock().await;
    let mut created_tunnel = false;
    if d.registry.tunnel_get(tid).is_none() {
        if sid == 0 && psid == 0 {
            // The old L2TPv2 API: the management socket creates a managed UDP tunnel.
            let fd = fds
                .into_iter()
                .next()
                .ok_or_else(|| ApiError::new(Errno::EBADF, "no tunnel socket attached"))?;
            let p = TunnelParams {
                tunnel_id: tid,
                peer_tunnel_id: ptid,
                version,
                encap: Encap::Udp,
                socket: SocketId(0),
            };
            managed_tunnel(d, &mut ctl, p, fd, false)?;
            created_tunnel = true;
        } else {
            return Err(ApiError::new(Errno::ENOENT, format!("no tunnel {tid}")));
        }
    }
    let tunnel = d
        .registry
        .tunnel_get(tid)
        .ok_or_else(|| ApiError::new(Errno::ENOENT, format!("no tunnel {tid}")))?;
    let socket = ctl
        .tunnels
        .get(&tid)
        .map(|rt| rt.sock.socket.clone())
        .ok_or_else(|| ApiError::new(Errno::ENOENT, format!("no tunnel {tid}")))?;
    let (ours, theirs) = SeqPacket::pair().map_err(|e| io_err("socketpair", e))?;
    let ours = Arc::new(ours);
    if sid == 0 {
        // Session 0: the tunnel management socket; no PPP channel (§7.3 step 6).
        let task = Task(tokio::spawn(serve(
            d.me.clone(),
            ours,
            Target::Tunnel {
                tid,
                owns: created_tunnel,
            },
            socket,
        )));
        if let Some(rt) = ctl.tunnels.get_mut(&tid) {
            rt.tasks.push(task);
        }
        return Ok(theirs);
    }
    let session = match d.registry.session_get(tid, sid) {
        Some(s) => {
            if s.pw_type() != PwType::Ppp {
                return Err(ApiError::new(
                    Errno::EPROTOTYPE,
                    format!("session {sid} is not a PPP session"),
                ));
            }
            if ctl.sessions.get(&(tid, sid)).is_some_and(|r| r.had_socket) {
                return Err(ApiError::new(
                    Errno::EEXIST,
                    format!("session {sid} already has a socket"),
                ));
            }
            s
        }
        None => {
            // Defaults of a socket-created session differ from netlink's: no sublayer (§7.3).
            let mut p = SessionParams::new(sid, psid, PwType::Ppp);
            p.l2spec_type = L2SpecType::None;
            let s = d
                .registry
                .session_create(tid, p)
                .map_err(|e| ApiError::new(e, format!("cannot create session {sid}")))?;
            d.start_session(&mut ctl, &s, None)?;
            s
        }
    };
    let _ = tunnel;
    d.pseudowires
        .insert((tid, sid), Arc::new(Pseudowire::Ppp(ours.clone())));
    ctl.attached.insert((tid, sid));
    let task = Task(tokio::spawn(serve(
        d.me.clone(),
        ours,
        Target::Session(session),
        socket,
    )));
    let rt = ctl.sessions.entry((tid, sid)).or_default();
    rt.had_socket = true;
    rt.tasks.push(task);
    Ok(theirs)
}

enum Target {
    Session(Arc<Session>),
    Tunnel { tid: u32, owns: bool },
}

fn setopt(s: &Session, option: u32, value: i32) -> Result<(), Errno> {
    // docs/reference/kernel.md §7.5.
    let bool_value = || match value {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(Errno::EINVAL),
    };
    match option {
        sockproto::SO_DEBUG => Ok(()),
        sockproto::SO_RECVSEQ => {
            s.modify(None, Some(bool_value()?), None, None);
            Ok(())
        }
        sockproto::SO_SENDSEQ => {
            s.modify(Some(bool_value()?), None, None, None);
            Ok(())
        }
        sockproto::SO_LNSMODE => {
            s.modify(None, None, Some(bool_value()?), None);
            Ok(())
        }
        sockproto::SO_REORDERTO => {
            s.modify(None, None, None, Some(u64::from(value.max(0) as u32)));
            Ok(())
        }
        _ => Err(Errno::ENOPROTOOPT),
    }
}

fn getopt(s: &Session, option: u32) -> Result<i32, Errno> {
    Ok(match option {
        sockproto::SO_DEBUG => 0,
        sockproto::SO_RECVSEQ => i32::from(s.recv_seq()),
        sockproto::SO_SENDSEQ => i32::from(s.send_seq()),
        sockproto::SO_LNSMODE => i32::from(s.lns_mode()),
        sockproto::SO_REORDERTO => s.reorder_timeout_ms().min(i32::MAX as u64) as i32,
        _ => return Err(Errno::ENOPROTOOPT),
    })
}

fn ioc_stats(tunnel_id: u32, session_id: u32, stats: ul2tp_api::Stats) -> Vec<u8> {
    IocStats {
        tunnel_id: tunnel_id as u16,
        session_id: session_id as u16,
        using_ipsec: false,
        stats,
    }
    .to_bytes()
    .to_vec()
}

/// Serve a session socket or a tunnel management socket.
async fn serve(d: Weak<Store>, sp: Arc<SeqPacket>, target: Target, socket: Arc<TunnelSocket>) {
    let mut buf = vec![0u8; MAX_DATAGRAM + 64];
    loop {
        let n = match sp.recv(&mut buf).await {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => continue,
            Err(_) => break,
        };
        let reply = match (SockMsg::decode(&buf[..n]), &target) {
            (Some(SockMsg::Frame(frame)), Target::Session(s)) => {
                datapath::send_frame(s, &socket, &frame).await;
                None
            }
            (Some(SockMsg::Frame(_)), Target::Tunnel { .. }) => {
                Some(SockMsg::fail(Errno::ENOTCONN))
            }
            (Some(SockMsg::SetOpt { option, value }), Target::Session(s)) => Some(
                setopt(s, option, value).map_or_else(SockMsg::fail, |_| SockMsg::ok(Vec::new())),
            ),
            (Some(SockMsg::GetOpt { option }), Target::Session(s)) => Some(
                getopt(s, option)
                    .map_or_else(SockMsg::fail, |v| SockMsg::ok(v.to_ne_bytes().to_vec())),
            ),
            // Tunnel sockets take only the debug option (§7.5).
            (Some(SockMsg::SetOpt { option, .. }), Target::Tunnel { .. }) => {
                Some(if option == sockproto::SO_DEBUG {
                    SockMsg::ok(Vec::new())
                } else {
                    SockMsg::fail(Errno::ENOPROTOOPT)
                })
            }
            (Some(SockMsg::GetOpt { option }), Target::Tunnel { .. }) => {
                Some(if option == sockproto::SO_DEBUG {
                    SockMsg::ok(0i32.to_ne_bytes().to_vec())
                } else {
                    SockMsg::fail(Errno::ENOPROTOOPT)
                })
            }
            (Some(SockMsg::Stats { .. }), Target::Session(s)) => Some(SockMsg::ok(ioc_stats(
                s.tunnel_id(),
                s.session_id(),
                s.stats(),
            ))),
            (Some(SockMsg::Stats { session_id }), Target::Tunnel { tid, .. }) => {
                let Some(d) = d.upgrade() else { break };
                Some(if session_id == 0 {
                    match d.registry.tunnel_get(*tid) {
                        Some(t) => SockMsg::ok(ioc_stats(*tid, 0, t.stats())),
                        None => SockMsg::fail(Errno::EBADF),
                    }
                } else {
                    // §7.6: that PPP session in this tunnel, EBADR if missing / not PPP.
                    match d.registry.session_get(*tid, u32::from(session_id)) {
                        Some(s) if s.pw_type() == PwType::Ppp => {
                            SockMsg::ok(ioc_stats(*tid, u32::from(session_id), s.stats()))
                        }
                        _ => SockMsg::fail(Errno::EBADR),
                    }
                })
            }
            _ => Some(SockMsg::fail(Errno::EINVAL)),
        };
        if let Some(r) = reply {
            if sp.send(&r.encode()).await.is_err() {
                break;
            }
        }
    }
    // Closing the socket deletes its session (§5.4); the management socket that created its
    // tunnel deletes the tunnel (the seed's old API).
    match target {
        Target::Session(s) => delete_later(d, s.tunnel_id(), Some(s.session_id())),
        Target::Tunnel { tid, owns: true } => delete_later(d, tid, None),
        Target::Tunnel { owns: false, .. } => {}
    }
}
