//! The data path: tunnel sockets and pseudowire devices joined through `ul2tp-core`.
//!
//! Receive: one task per tunnel socket reads datagrams and hands them to
//! [`Registry::receive`], which classifies them (kernel-facts §1.2), finds the session,
//! checks cookie and sequence numbers and calls back with the frames to deliver; the callback
//! writes each frame to the session's pseudowire device. Transmit: one task per pseudowire
//! device reads frames into a buffer with headroom, lets the session write the L2TP header in
//! front of the frame (no copy) and sends the datagram on the tunnel socket.
//!
//! Lookups never take a global lock: the session table is an arc-swap snapshot inside the
//! registry and the pseudowire table here is one too; counters are atomics.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use arc_swap::{ArcSwap, ArcSwapOption};
use ul2tp_api::sockproto::SockMsg;
use ul2tp_core::{Registry, RxOutcome, Session, SocketId, Transport};
use ul2tp_sys::ip::IpTunnelSocket;
use ul2tp_sys::seqpacket::SeqPacket;
use ul2tp_sys::tap::Tap;
use ul2tp_sys::udp::UdpTunnelSocket;

/// Room in front of every transmit buffer for the L2TP header (the largest is
/// 4 flags + 4 session id + 8 cookie + 4 sublayer + 2 PPP address/control + 4 VLAN tag).
pub const HEADROOM: usize = 64;
/// Largest datagram handled.
pub const MAX_DATAGRAM: usize = 65536;

/// The socket a tunnel sends and receives on.
#[derive(Debug)]
pub enum TunnelSocket {
    /// UDP (L2TPv2, L2TPv3 over UDP).
    Udp(UdpTunnelSocket),
    /// IP protocol 115 (L2TPv3 over IP).
    Ip(IpTunnelSocket),
}

impl TunnelSocket {
    /// Receive one datagram's L2TP payload into `buf`; returns its length and source.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        match self {
            TunnelSocket::Udp(s) => s.recv_from(buf).await,
            TunnelSocket::Ip(s) => s.recv(buf).await.map(|(n, a)| (n, SocketAddr::new(a, 0))),
        }
    }

    /// Send one datagram to `dst` (UDP: address and port; IP: address).
    pub async fn send_to(&self, buf: &[u8], dst: SocketAddr) -> io::Result<usize> {
        match self {
            TunnelSocket::Udp(s) => s.send_to(buf, dst).await,
            TunnelSocket::Ip(s) => s.send_to(buf, dst.ip()).await,
        }
    }

    /// Send one datagram.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            TunnelSocket::Udp(s) => s.send(buf).await,
            TunnelSocket::Ip(s) => s.send(buf).await,
        }
    }

    /// The transport, for the classifier.
    pub fn transport(&self) -> Transport {
        match self {
            TunnelSocket::Udp(_) => Transport::Udp,
            TunnelSocket::Ip(_) => Transport::Ip,
        }
    }

    /// Local address (port 0 for IP encap).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            TunnelSocket::Udp(s) => s.local_addr(),
            TunnelSocket::Ip(s) => s.local_addr().map(|a| SocketAddr::new(a, 0)),
        }
    }

    /// Peer address (port 0 for IP encap).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        match self {
            TunnelSocket::Udp(s) => s.peer_addr(),
            TunnelSocket::Ip(s) => s.peer_addr().map(|a| SocketAddr::new(a, 0)),
        }
    }

    /// Path MTU towards the peer, if the kernel knows a route.
    pub fn path_mtu(&self) -> Option<u32> {
        match self {
            TunnelSocket::Udp(s) => s.path_mtu().ok(),
            TunnelSocket::Ip(s) => s.path_mtu().ok(),
        }
    }

    /// Whether the outer header is IPv6.
    pub fn is_ipv6(&self) -> bool {
        self.local_addr()
            .map(|a| matches!(a.ip(), IpAddr::V6(_)))
            .unwrap_or(false)
    }
}

/// A session's pseudowire device.
#[derive(Debug)]
pub enum Pseudowire {
    /// An Ethernet pseudowire's TAP device (l2tpethN); for ETH_VLAN sessions frames are
    /// tagged / untagged by the session.
    Eth(Tap),
    /// A PPP session's socket (the PPPoL2TP-socket equivalent): frames go to the application.
    Ppp(Arc<SeqPacket>),
}

impl Pseudowire {
    fn deliver(&self, frame: &[u8]) -> bool {
        match self {
            Pseudowire::Eth(tap) => {
                // kernel-facts §6.1: frames shorter than an Ethernet header are dropped.
                frame.len() >= 14 && tap.try_send(frame).is_ok()
            }
            Pseudowire::Ppp(sock) => {
                let mut m = Vec::with_capacity(frame.len() + 1);
                m.push(ul2tp_api::sockproto::FRAME);
                m.extend_from_slice(frame);
                sock.try_send(&m).is_ok()
            }
        }
    }
}

/// Pseudowires by (tunnel_id, session_id), read by the receive tasks without locking.
#[derive(Debug, Default)]
pub struct Pseudowires {
    map: ArcSwap<HashMap<(u32, u32), Arc<Pseudowire>>>,
}

impl Pseudowires {
    /// Attach a device to a session.
    pub fn insert(&self, key: (u32, u32), pw: Arc<Pseudowire>) {
        self.map.rcu(|m| {
            let mut m = HashMap::clone(m);
            m.insert(key, pw.clone());
            m
        });
    }

    /// Detach a session's device.
    pub fn remove(&self, key: (u32, u32)) {
        self.map.rcu(|m| {
            let mut m = HashMap::clone(m);
            m.remove(&key);
            m
        });
    }

    fn get(&self, key: (u32, u32)) -> Option<Arc<Pseudowire>> {
        self.map.load().get(&key).cloned()
    }
}

/// What a receive task needs.
#[derive(Debug, Clone)]
pub struct RxContext {
    /// The subsystem.
    pub registry: Arc<Registry>,
    /// Devices to deliver to.
    pub pseudowires: Arc<Pseudowires>,
    /// For a managed tunnel: the application's tunnel-socket view, which gets what the kernel
    /// would leave on the tunnel socket (kernel-facts §1.2).
    pub upcall: Arc<ArcSwapOption<SeqPacket>>,
}

/// Deliver a frame the registry accepted for `session`.
pub fn deliver(pws: &Pseudowires, session: &Arc<Session>, frame: &[u8]) {
    if let Some(pw) = pws.get((session.tunnel_id(), session.session_id())) {
        if !pw.deliver(frame) {
            // kernel-facts §3.1: a full PPP socket queue counts as rx_errors.
            session.count_rx_error();
        }
    }
}

/// Receive loop of one tunnel socket; runs until the task is aborted or the socket fails.
pub async fn tunnel_rx(ctx: RxContext, sock: Arc<TunnelSocket>, socket_id: SocketId) {
    let transport = sock.transport();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, from) = match sock.recv(&mut buf).await {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // ICMP errors (port unreachable while the peer is not up yet) surface as
                // ECONNREFUSED on a connected UDP socket: not fatal.
                if e.raw_os_error() == Some(libc_econnrefused()) {
                    continue;
                }
                tracing::warn!("tunnel socket {socket_id:?}: receive failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let outcome = ctx.registry.receive(
            socket_id,
            transport,
            &buf[..n],
            Instant::now(),
            &mut |s, frame| deliver(&ctx.pseudowires, s, frame),
        );
        if let RxOutcome::ToSocket = outcome {
            // Unmanaged tunnels have no control plane: the kernel leaves such packets on a
            // socket nobody reads, so they are dropped. A managed tunnel's application gets
            // them, addressed with their source.
            if let Some(up) = ctx.upcall.load().as_ref() {
                let conn_id = u32::from(from.port());
                let msg = SockMsg::Dgram {
                    addr: from.ip(),
                    conn_id,
                    payload: buf[..n].to_vec(),
                };
                let _ = up.try_send(&msg.encode());
            }
        }
    }
}

fn libc_econnrefused() -> i32 {
    111
}

/// Encapsulate `frame` for `session` and send it; counts the result.
pub async fn send_frame(session: &Session, sock: &TunnelSocket, frame: &[u8]) -> bool {
    let mut buf = vec![0u8; HEADROOM + frame.len()];
    buf[HEADROOM..].copy_from_slice(frame);
    let Some((start, end)) = session.encap(&mut buf, HEADROOM, frame.len()) else {
        return false;
    };
    let ok = sock.send(&buf[start..end]).await.is_ok();
    session.tx_done(end - start, ok);
    ok
}

/// Transmit loop of one Ethernet pseudowire: TAP frames to the tunnel socket.
pub async fn eth_tx(session: Arc<Session>, pw: Arc<Pseudowire>, sock: Arc<TunnelSocket>) {
    let Pseudowire::Eth(tap) = &*pw else {
        return;
    };
    let mut buf = vec![0u8; HEADROOM + MAX_DATAGRAM];
    loop {
        let n = match tap.recv(&mut buf[HEADROOM..]).await {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!("{}: read failed: {e}", tap.name());
                return;
            }
        };
        let Some((start, end)) = session.encap(&mut buf, HEADROOM, n) else {
            continue;
        };
        let ok = sock.send(&buf[start..end]).await.is_ok();
        session.tx_done(end - start, ok);
    }
}

/// Timer of a session with a reorder timeout: releases or drops held packets whose time is up
/// even when no further packet arrives (unlike the kernel, kernel-facts §2.7).
pub async fn reorder_timer(session: Arc<Session>, pws: Arc<Pseudowires>) {
    loop {
        let wait = match session.next_timeout() {
            Some(t) => t.saturating_duration_since(Instant::now()),
            None => std::time::Duration::from_millis(session.reorder_timeout_ms().clamp(1, 1000)),
        };
        tokio::time::sleep(wait).await;
        session.poll_reorder(Instant::now(), &mut |s, frame| deliver(&pws, s, frame));
    }
}
