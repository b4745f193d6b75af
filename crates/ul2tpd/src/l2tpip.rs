//! L2TP/IP sockets (docs/reference/kernel.md §8) emulated for applications.
//!
//! Without the kernel's `l2tp_ip` module an application cannot open
//! `socket(AF_INET, SOCK_DGRAM, IPPROTO_L2TP)`, so ul2tpd offers the same behaviour through a
//! descriptor (`l2tpip_socket`): it is bound to a connection id (0 = the listener that receives
//! new SCCRQs) and optionally to a local address, optionally connected to a peer address and
//! peer connection id. Received control messages (session id 0) are delivered, without the 4
//! zero bytes, to the first socket whose connection id equals the message's Control
//! Connection ID and whose connected peer, if any, is the source (§8.4). Messages the
//! application writes get the 4 zero bytes in front and go to the given address or the
//! connected peer (§8.5). Data packets never reach these sockets (§8.7).
//!
//! One unconnected raw socket per address family, opened when the first L2TP/IP socket of
//! that family appears, receives the control messages. A managed IP tunnel may be created on
//! such a descriptor (`tunnel_create` with it attached); closing the descriptor then destroys
//! the tunnel (§8.7).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Weak};

use arc_swap::ArcSwap;
use ul2tp_api::sockproto::SockMsg;
use ul2tp_api::{ApiError, Attrs, Errno};
use ul2tp_core::{Encap, TunnelParams};
use ul2tp_sys::ip::IpTunnelSocket;
use ul2tp_sys::seqpacket::SeqPacket;
use ul2tp_wire::data::{classify_ip, IpClass};

use crate::datapath::{TunnelSocket, MAX_DATAGRAM};
use crate::store::{einval, io_err, ApiResult, Ctl, Store, Task, TunnelInfo};

/// One emulated L2TP/IP socket.
#[derive(Debug)]
pub(crate) struct Entry {
    v6: bool,
    local: Option<IpAddr>,
    conn_id: u32,
    peer: Option<(IpAddr, u32)>,
    sp: Arc<SeqPacket>,
    /// Inode of the application's end, to recognise it when handed back in tunnel_create.
    app_inode: Option<u64>,
    id: u64,
}

/// A family's listener socket and its receive task.
type Listener = Option<(Arc<IpTunnelSocket>, Task)>;

/// The emulated sockets and the per-family listeners.
#[derive(Debug, Default)]
pub(crate) struct L2tpIp {
    entries: ArcSwap<Vec<Arc<Entry>>>,
    listeners: std::sync::Mutex<[Listener; 2]>,
    next: std::sync::atomic::AtomicU64,
    me: Weak<L2tpIp>,
}

impl L2tpIp {
    fn listener(&self, v6: bool) -> ApiResult<Arc<IpTunnelSocket>> {
        let mut l = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
        let slot = &mut l[usize::from(v6)];
        if let Some((s, _)) = slot {
            return Ok(s.clone());
        }
        let any = if v6 {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        let sock = Arc::new(IpTunnelSocket::bind(any).map_err(|e| io_err("L2TP/IP listener", e))?);
        let task = Task(tokio::spawn(listen(sock.clone(), self.me.clone(), v6)));
        *slot = Some((sock.clone(), task));
        Ok(sock)
    }

    /// A new, empty table.
    pub(crate) fn new() -> Arc<L2tpIp> {
        Arc::new_cyclic(|me| L2tpIp {
            me: me.clone(),
            ..L2tpIp::default()
        })
    }
}

/// Receive control messages of one family and dispatch them (docs/reference/kernel.md §8.4).
async fn listen(sock: Arc<IpTunnelSocket>, table: Weak<L2tpIp>, v6: bool) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, src) = match sock.recv(&mut buf).await {
            Ok(r) => r,
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let IpClass::Control { ccid } = classify_ip(&buf[..n]) else {
            continue;
        };
        let Some(table) = table.upgrade() else { return };
        let entries = table.entries.load();
        let target = entries.iter().find(|e| {
            e.v6 == v6 && e.conn_id == ccid && e.peer.is_none_or(|(addr, _)| addr == src)
        });
        if let Some(e) = target {
            let msg = SockMsg::Dgram {
                addr: src,
                conn_id: 0,
                payload: buf[4..n].to_vec(),
            };
            let _ = e.sp.try_send(&msg.encode());
        }
    }
}

/// `l2tpip_socket`: bind (and optionally connect) an emulated L2TP/IP socket.
pub(crate) fn open(d: &Store, l2tpip: &Arc<L2tpIp>, a: &Attrs) -> ApiResult<OwnedFd> {
    let conn_id = a
        .conn_id
        .ok_or_else(|| einval("l2tpip_socket needs conn_id (0 for the listener)"))?;
    let v6 = a.ip6_saddr.is_some() || a.ip6_daddr.is_some();
    let local: Option<IpAddr> = if v6 {
        a.ip6_saddr.map(IpAddr::V6)
    } else {
        a.ip_saddr.map(IpAddr::V4)
    };
    let peer_addr: Option<IpAddr> = if v6 {
        a.ip6_daddr.map(IpAddr::V6)
    } else {
        a.ip_daddr.map(IpAddr::V4)
    };
    if let Some(IpAddr::V6(l)) = local {
        if l.to_ipv4_mapped().is_some() || l.is_multicast() {
            return Err(ApiError::new(
                Errno::EADDRNOTAVAIL,
                "v4-mapped or multicast address",
            ));
        }
    }
    if peer_addr.is_some_and(|p| p.is_multicast()) {
        return Err(einval("cannot connect to a multicast address"));
    }
    let t = l2tpip.clone();
    // §8.2: another socket with the same connection id and a compatible local address.
    let clash = t.entries.load().iter().any(|e| {
        e.v6 == v6
            && e.conn_id == conn_id
            && (e.local.is_none() || local.is_none() || e.local == local)
    });
    if clash {
        return Err(ApiError::new(
            Errno::EADDRINUSE,
            format!("connection id {conn_id} is bound already"),
        ));
    }
    let listener = t.listener(v6)?;
    let (ours, theirs) = SeqPacket::pair().map_err(|e| io_err("socketpair", e))?;
    let f = std::fs::File::from(theirs);
    let app_inode = f.metadata().ok().map(|m| m.ino());
    let theirs = OwnedFd::from(f);
    let id = t.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let entry = Arc::new(Entry {
        v6,
        local,
        conn_id,
        peer: peer_addr.map(|p| (p, a.peer_conn_id.unwrap_or(0))),
        sp: Arc::new(ours),
        app_inode,
        id,
    });
    t.entries.rcu(|v| {
        let mut v = Vec::clone(v);
        v.push(entry.clone());
        v
    });
    tokio::spawn(serve(d.me.clone(), t.clone(), entry, listener));
    Ok(theirs)
}

/// Application → network, and clean-up on close.
async fn serve(d: Weak<Store>, t: Arc<L2tpIp>, e: Arc<Entry>, sock: Arc<IpTunnelSocket>) {
    let mut buf = vec![0u8; MAX_DATAGRAM + 32];
    loop {
        let n = match e.sp.recv(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let Some(SockMsg::Dgram { addr, payload, .. }) = SockMsg::decode(&buf[..n]) else {
            let _ = e.sp.try_send(&SockMsg::fail(Errno::EINVAL).encode());
            continue;
        };
        // §8.5: the message goes to the given address, else the connected peer.
        let dst = if addr.is_unspecified() {
            e.peer.map(|(p, _)| p)
        } else {
            Some(addr)
        };
        let Some(dst) = dst else {
            let _ = e.sp.try_send(&SockMsg::fail(Errno::EDESTADDRREQ).encode());
            continue;
        };
        let mut pkt = Vec::with_capacity(payload.len() + 4);
        pkt.extend_from_slice(&[0, 0, 0, 0]);
        pkt.extend_from_slice(&payload);
        let _ = sock.send_to(&pkt, dst).await;
    }
    t.entries.rcu(|v| {
        v.iter()
            .filter(|x| x.id != e.id)
            .cloned()
            .collect::<Vec<_>>()
    });
    // Closing the socket deletes the tunnel registered on it (§8.7).
    if let Some(d) = d.upgrade() {
        let mut ctl = d.ctl.lock().await;
        let tids: Vec<u32> = ctl
            .tunnels
            .iter()
            .filter(|(_, rt)| rt.l2tpip == Some(e.id))
            .map(|(t, _)| *t)
            .collect();
        for tid in tids {
            let _ = d.tunnel_delete_locked(&mut ctl, tid);
        }
    }
}

/// A managed IP tunnel on an emulated L2TP/IP socket the application handed back: `Some`
/// if `fd` is one of ours. The reply carries the application's own descriptor back: it is the
/// tunnel socket.
pub(crate) fn managed_tunnel(
    d: &Store,
    l2tpip: &L2tpIp,
    ctl: &mut Ctl,
    mut p: TunnelParams,
    fd: &OwnedFd,
) -> Option<ApiResult<OwnedFd>> {
    let ino = fd
        .try_clone()
        .ok()
        .and_then(|f| std::fs::File::from(f).metadata().ok())
        .map(|m| m.ino())?;
    let entries = l2tpip.entries.load();
    let e = entries.iter().find(|e| e.app_inode == Some(ino))?;
    Some((|| {
        if p.encap != Encap::Ip {
            return Err(ApiError::new(
                Errno::EPROTONOSUPPORT,
                "an L2TP/IP socket carries IP encapsulation only",
            ));
        }
        if d.registry.tunnel_get(p.tunnel_id).is_some() {
            return Err(ApiError::new(
                Errno::EEXIST,
                format!("tunnel {} already exists", p.tunnel_id),
            ));
        }
        if ctl.tunnels.values().any(|rt| rt.l2tpip == Some(e.id)) {
            return Err(ApiError::new(
                Errno::EBUSY,
                "the socket already carries a tunnel",
            ));
        }
        let (Some(local), Some((remote, _))) = (e.local, e.peer) else {
            return Err(einval(
                "the L2TP/IP socket must be bound to an address and connected",
            ));
        };
        let socket = TunnelSocket::Ip(
            IpTunnelSocket::open(local, remote).map_err(|e| io_err("tunnel socket", e))?,
        );
        let sock = d.add_socket(ctl, socket, None);
        p.socket = sock.id;
        let tid = p.tunnel_id;
        d.register_tunnel(ctl, p, sock, TunnelInfo::default())?;
        if let Some(rt) = ctl.tunnels.get_mut(&tid) {
            rt.l2tpip = Some(e.id);
        }
        fd.try_clone().map_err(|e| io_err("dup", e))
    })())
}
