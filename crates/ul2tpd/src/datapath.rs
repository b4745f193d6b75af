//! The data path: tunnel sockets and pseudowire devices joined through `ul2tp-core`.
//!
//! Receive: one task per tunnel socket reads datagrams and hands them to
//! [`Registry::receive`], which classifies them (docs/reference/kernel.md §1.2), finds the session,
//! checks cookie and sequence numbers and calls back with the frames to deliver; the callback
//! writes each frame to the session's pseudowire device. Transmit: one task per pseudowire
//! device (per queue of an Ethernet pseudowire's TAP: one per data-path worker,
//! `workers.rs`) reads frames into a buffer with headroom, lets the session write the L2TP
//! header in front of the frame (no copy) and sends the datagram on the tunnel socket.
//!
//! Lookups never take a global lock: the session table is an arc-swap snapshot inside the
//! registry and the pseudowire table here is one too; counters are atomics.
//!
//! Batching and offloads (docs/PERFORMANCE.md):
//!
//! * Receive: one `recvmmsg` moves up to [`RX_BATCH`] datagrams per system call.
//! * Transmit with offloads (the default; [`DataPathConfig::offload`] off, `--no-offload`,
//!   keeps the simple path of one frame per read and per send): the TAP is switched to
//!   `TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6`, so the kernel hands over TCP super-frames of up
//!   to 64 KB and frames whose checksum is still to be done. [`ul2tp_core::gso`] finishes the
//!   checksum or cuts the super-frame into ordinary MTU-sized Ethernet frames, exactly those
//!   the kernel's own GSO would produce; each segment is encapsulated on its own (its own
//!   L2TP header and Ns, counted as one packet, docs/reference/kernel.md §3.1) into consecutive slots of
//!   one buffer, and the run leaves with one UDP GSO send (`UDP_SEGMENT`) when the socket
//!   computes UDP checksums, otherwise with one `sendmmsg`. On the wire every datagram is
//!   what the simple path would have sent for the same frames.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use tokio::sync::Mutex as AsyncMutex;
use tokio::sync::Notify;
use ul2tp_api::sockproto::SockMsg;
use ul2tp_core::gso::{self, TcpSegmenter, VnetHdr, VNET_HDR_LEN};
use ul2tp_core::sharded::ShardedMap;
use ul2tp_core::txbatch::{self, TxLimits, TxRun};
use ul2tp_core::{Encap, Registry, RxOutcome, Session, SocketId, Timestamp};
use ul2tp_sys::errqueue::SockError;
use ul2tp_sys::ip::IpTunnelSocket;
use ul2tp_sys::mmsg::{RecvMeta, BATCH_MAX};
use ul2tp_sys::seqpacket::SeqPacket;
use ul2tp_sys::tap::{Tap, TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6};
use ul2tp_sys::udp::UdpTunnelSocket;

use crate::clock;
use crate::metrics::{RxDrop, SocketCounters};
use crate::workers::{EthDev, WorkerCounters};

/// Room in front of every transmit buffer for the L2TP header (the largest is
/// 4 flags + 4 session id + 8 cookie + 4 sublayer + 2 PPP address/control + 4 VLAN tag).
pub const HEADROOM: usize = 64;
/// Largest datagram handled.
pub const MAX_DATAGRAM: usize = 65536;
/// Datagrams received per `recvmmsg`.
pub const RX_BATCH: usize = 32;
/// Largest UDP payload of one GSO send (65535 - 8 byte UDP header - 20 byte IPv4 header).
const GSO_MAX_BYTES: usize = 65507;

/// Default receive buffer of the tunnel sockets the daemon creates: room for bursts that
/// arrive while the receive task waits for a CPU (the kernel default, 208 KiB, holds about 280
/// small datagrams, a few milliseconds of a 64-byte flood).
pub const DEFAULT_SOCKET_RCVBUF: usize = 4 << 20;

/// Data-path settings of one daemon (`[datapath]` in the configuration file, `ul2tpd
/// --no-offload`, [`crate::Daemon::set_datapath`]). Each daemon has its own, so two daemons
/// in one process may differ; they apply to tunnel sockets and sessions started afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataPathConfig {
    /// TAP offloads, software segmentation, UDP GSO/GRO and coalescing (module docs); off:
    /// one frame per TAP read and per send.
    pub offload: bool,
    /// `SO_RCVBUF` for tunnel sockets the daemon creates (bytes); 0 keeps the kernel's
    /// default. An application's socket keeps its own.
    pub socket_rcvbuf: usize,
    /// Data-path workers: queues of each Ethernet pseudowire's TAP, each with its own
    /// transmit loop (`workers.rs`); 1 is a single-queue TAP. Default one per CPU.
    pub workers: usize,
}

impl Default for DataPathConfig {
    fn default() -> Self {
        Self {
            offload: true,
            socket_rcvbuf: DEFAULT_SOCKET_RCVBUF,
            workers: crate::workers::default_workers(),
        }
    }
}

/// The socket a tunnel sends and receives on.
#[derive(Debug)]
pub enum TunnelSocket {
    /// UDP (L2TPv2, L2TPv3 over UDP).
    Udp(UdpTunnelSocket),
    /// IP protocol 115 (L2TPv3 over IP).
    Ip(IpTunnelSocket),
}

impl TunnelSocket {
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

    /// Receive up to `bufs.len()` datagrams with one `recvmmsg`; returns how many.
    pub async fn recv_batch(
        &self,
        bufs: &mut [Vec<u8>],
        meta: &mut [RecvMeta],
    ) -> io::Result<usize> {
        match self {
            TunnelSocket::Udp(s) => s.recv_batch(bufs, meta).await,
            TunnelSocket::Ip(s) => s.recv_batch(bufs, meta).await,
        }
    }

    /// [`recv_batch`](Self::recv_batch) without waiting (`WouldBlock` when nothing is
    /// queued; always for IP encapsulation, which has no non-waiting batch receive).
    fn try_recv_batch(&self, bufs: &mut [Vec<u8>], meta: &mut [RecvMeta]) -> io::Result<usize> {
        match self {
            TunnelSocket::Udp(s) => s.try_recv_batch(bufs, meta),
            TunnelSocket::Ip(_) => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    /// Send datagrams with one `sendmmsg`; returns how many left from the front.
    pub async fn send_batch(&self, bufs: &[&[u8]]) -> io::Result<usize> {
        match self {
            TunnelSocket::Udp(s) => s.send_batch(bufs).await,
            TunnelSocket::Ip(s) => s.send_batch(bufs).await,
        }
    }

    /// Whether the kernel can segment UDP sends for us (`UDP_SEGMENT`): UDP with checksums
    /// on (the kernel refuses GSO without them, docs/reference/kernel.md §5.5).
    fn udp_gso_capable(&self) -> bool {
        match self {
            TunnelSocket::Udp(s) => s.checksum_options().is_ok_and(|o| {
                if s.is_ipv6() {
                    !o.zero_csum6_tx
                } else {
                    o.csum_tx_v4
                }
            }),
            TunnelSocket::Ip(_) => false,
        }
    }

    /// The transport, for the classifier.
    pub fn transport(&self) -> Encap {
        match self {
            TunnelSocket::Udp(_) => Encap::Udp,
            TunnelSocket::Ip(_) => Encap::Ip,
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

    /// Queue ICMP errors on the socket's error queue (`IP_RECVERR` / `IPV6_RECVERR`).
    pub fn set_recv_errors(&self) -> io::Result<()> {
        match self {
            TunnelSocket::Udp(s) => s.set_recv_errors(),
            TunnelSocket::Ip(s) => s.set_recv_errors(),
        }
    }

    /// Wait for and read one ICMP error of the socket's error queue.
    pub async fn recv_error(&self) -> io::Result<SockError> {
        match self {
            TunnelSocket::Udp(s) => s.recv_error().await,
            TunnelSocket::Ip(s) => s.recv_error().await,
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
    /// An Ethernet pseudowire's TAP device (l2tpethN), with one queue per data-path worker
    /// (`workers.rs`); for ETH_VLAN sessions frames are tagged / untagged by the session.
    Eth(EthDev),
    /// A PPP session's socket (the PPPoL2TP-socket equivalent): frames go to the application.
    Ppp(Arc<SeqPacket>),
    /// A PPP session terminated by the daemon's own PPP endpoint (`pppd.rs`).
    PppLink(tokio::sync::mpsc::Sender<Vec<u8>>),
}

impl Pseudowire {
    fn deliver(&self, frame: &[u8]) -> bool {
        match self {
            Pseudowire::Eth(tap) => {
                // docs/reference/kernel.md §6.1: frames shorter than an Ethernet header are dropped.
                frame.len() >= 14 && tap.try_send(frame).is_ok()
            }
            Pseudowire::PppLink(tx) => tx.try_send(frame.to_vec()).is_ok(),
            Pseudowire::Ppp(sock) => {
                let mut m = Vec::with_capacity(frame.len() + 1);
                m.push(ul2tp_api::sockproto::FRAME);
                m.extend_from_slice(frame);
                sock.try_send(&m).is_ok()
            }
        }
    }
}

/// Pseudowires by (tunnel_id, session_id), read by the receive tasks. A sharded map (one
/// entry per change, `ul2tp_core::sharded`) rather than a copied snapshot, so attaching a
/// device costs the same with 10 or 100,000 sessions.
#[derive(Debug, Default)]
pub struct Pseudowires {
    map: ShardedMap<(u32, u32), Arc<Pseudowire>>,
}

impl Pseudowires {
    /// Attach a device to a session.
    pub fn insert(&self, key: (u32, u32), pw: Arc<Pseudowire>) {
        self.map.insert(key, pw);
    }

    /// Detach a session's device, returning it.
    pub fn remove(&self, key: (u32, u32)) -> Option<Arc<Pseudowire>> {
        self.map.remove(&key)
    }

    fn get(&self, key: (u32, u32)) -> Option<Arc<Pseudowire>> {
        self.map.get(&key)
    }

    /// Switch the carrier of a session's Ethernet device (Circuit Status from the peer,
    /// RFC 4719 §2.3.1); `None` when the session has no TAP.
    pub fn set_carrier(&self, key: (u32, u32), on: bool) -> Option<io::Result<()>> {
        match self.get(key).as_deref() {
            Some(Pseudowire::Eth(tap)) => Some(tap.set_carrier(on)),
            _ => None,
        }
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
    /// would leave on the tunnel socket (docs/reference/kernel.md §1.2).
    pub upcall: Arc<ArcSwapOption<SeqPacket>>,
    /// The daemon's data-path settings when the socket started.
    pub config: DataPathConfig,
    /// The upcall is the control plane (a dynamic tunnel): only control messages go up, the
    /// rest is dropped and counted here.
    pub control_only: Arc<AtomicBool>,
    /// The socket's drop and ICMP counters.
    pub(crate) counters: Arc<SocketCounters>,
}

/// Deliver a frame the registry accepted for `session`.
pub fn deliver(pws: &Pseudowires, session: &Arc<Session>, frame: &[u8]) {
    if let Some(pw) = pws.get((session.tunnel_id(), session.session_id())) {
        if !pw.deliver(frame) {
            // docs/reference/kernel.md §3.1: a full PPP socket queue counts as rx_errors.
            session.count_rx_error();
        }
    }
}

/// Receive loop of one tunnel socket; runs until the task is aborted or the socket fails.
/// `own_socket`: the daemon created the socket, so it may turn on `UDP_GRO` (an application's
/// socket, which the application may still read, is left as it is).
pub async fn tunnel_rx(
    ctx: RxContext,
    sock: Arc<TunnelSocket>,
    socket_id: SocketId,
    own_socket: bool,
) {
    let offload = ctx.config.offload;
    if own_socket && ctx.config.socket_rcvbuf > 0 {
        let r = match &*sock {
            TunnelSocket::Udp(u) => u.set_recv_buffer(ctx.config.socket_rcvbuf),
            TunnelSocket::Ip(i) => i.set_recv_buffer(ctx.config.socket_rcvbuf),
        };
        if let Err(e) = r {
            tracing::warn!("tunnel socket {socket_id:?}: cannot set the receive buffer: {e}");
        }
    }
    if offload && own_socket {
        if let TunnelSocket::Udp(u) = &*sock {
            // UDP GRO pays off when the peer sends with UDP GSO, which needs checksums: use
            // it on a connected socket that itself sends with checksums (the usual
            // symmetric configuration). Without checksums recvmmsg batching is better.
            if u.peer_addr().is_ok() && sock.udp_gso_capable() && u.set_gro(true).is_ok() {
                return tunnel_rx_gro(ctx, u, socket_id).await;
            }
        }
    }
    let transport = sock.transport();
    let mut bufs: Vec<Vec<u8>> = (0..RX_BATCH).map(|_| vec![0u8; MAX_DATAGRAM]).collect();
    let mut meta = vec![RecvMeta::default(); RX_BATCH];
    let mut gro = RxCoalesce::new(offload, ctx.counters.clone());
    loop {
        let mut n = match sock.recv_batch(&mut bufs, &mut meta).await {
            Ok(n) => n,
            Err(e) => {
                rx_error(socket_id, e).await;
                continue;
            }
        };
        loop {
            let now = clock::now();
            for (buf, m) in bufs.iter().zip(&meta).take(n) {
                if m.truncated {
                    ctx.counters.rx_drop(RxDrop::Truncated);
                    continue;
                }
                let data = &buf[..m.len.min(buf.len())];
                handle_datagram(&ctx, socket_id, transport, data, now, &mut gro, || m.addr);
            }
            // A full batch suggests more is queued: take it before writing out a held run
            // so that runs can span batches, but never wait with a run held.
            if n < RX_BATCH || gro.c.is_empty() {
                break;
            }
            n = match sock.try_recv_batch(&mut bufs, &mut meta) {
                Ok(n) => n,
                Err(_) => break,
            };
        }
        gro.flush();
    }
}

/// Receive loop of a connected UDP tunnel socket with `UDP_GRO` on: one receive returns a
/// run of same-sized datagrams, split with [`GroSegments`](ul2tp_sys::udp::GroSegments).
async fn tunnel_rx_gro(ctx: RxContext, sock: &UdpTunnelSocket, socket_id: SocketId) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut gro = RxCoalesce::new(true, ctx.counters.clone());
    loop {
        let (n, seg) = match sock.recv_gro(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                rx_error(socket_id, e).await;
                continue;
            }
        };
        let now = clock::now();
        for data in ul2tp_sys::udp::GroSegments::new(&buf[..n], seg) {
            handle_datagram(&ctx, socket_id, Encap::Udp, data, now, &mut gro, || {
                sock.peer_addr().ok()
            });
        }
        gro.flush();
    }
}

/// What to do after a failed receive: ICMP errors (port unreachable while the peer is not
/// up yet, host unreachable, ...) surface as the pending error of the socket once per error and
/// are not fatal (the error task reads and counts them, [`tunnel_errors`]); anything else is
/// logged and retried after a pause.
async fn rx_error(socket_id: SocketId, e: io::Error) {
    if e.kind() == io::ErrorKind::Interrupted || ul2tp_sys::errqueue::is_transient(&e) {
        return;
    }
    tracing::warn!("tunnel socket {socket_id:?}: receive failed: {e}");
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
}

/// Classify and deliver one received datagram; `from` gives its source when an
/// application has to see it.
fn handle_datagram(
    ctx: &RxContext,
    socket_id: SocketId,
    transport: Encap,
    data: &[u8],
    now: Timestamp,
    gro: &mut RxCoalesce,
    from: impl FnOnce() -> Option<SocketAddr>,
) {
    let outcome = ctx
        .registry
        .receive(socket_id, transport, data, now, &mut |s, frame| {
            gro.deliver(&ctx.pseudowires, s, frame)
        });
    match outcome {
        RxOutcome::Consumed => {}
        RxOutcome::Dropped(r) => ctx.counters.rx_drop(r.into()),
        RxOutcome::ToSocket => {
            // Unmanaged tunnels have no control plane: the kernel leaves such packets on a
            // socket nobody reads, so they are dropped (and counted here). A managed tunnel's
            // application gets them, addressed with their source; the control plane of a
            // dynamic tunnel only its control messages.
            let unclaimed = unclaimed_reason(transport, data);
            let up = ctx.upcall.load();
            let owner = up.as_ref().filter(|_| {
                unclaimed == RxDrop::ControlUnclaimed || !ctx.control_only.load(Ordering::Relaxed)
            });
            let Some(up) = owner else {
                ctx.counters.rx_drop(unclaimed);
                return;
            };
            let from = from().unwrap_or_else(|| SocketAddr::new(IpAddr::from([0, 0, 0, 0]), 0));
            let conn_id = u32::from(from.port());
            let msg = SockMsg::Dgram {
                addr: from.ip(),
                conn_id,
                payload: data.to_vec(),
            };
            if up.try_send(&msg.encode()).is_err() {
                ctx.counters.rx_drop(RxDrop::OwnerQueueFull);
            }
        }
    }
}

/// Why a datagram the registry leaves to the socket's owner is dropped when there is no
/// owner for it: a control message, one too short for any header, or data for no session.
fn unclaimed_reason(transport: Encap, data: &[u8]) -> RxDrop {
    use ul2tp_wire::data::{classify_ip, classify_udp, IpClass, UdpClass};
    match transport {
        Encap::Udp => match classify_udp(data) {
            UdpClass::Control => RxDrop::ControlUnclaimed,
            UdpClass::Short => RxDrop::Short,
            _ => RxDrop::UnknownSession,
        },
        Encap::Ip => match classify_ip(data) {
            IpClass::Control { .. } => RxDrop::ControlUnclaimed,
            IpClass::Malformed(_) => RxDrop::Malformed,
            IpClass::Data { .. } => RxDrop::UnknownSession,
        },
    }
}

/// The error task of a tunnel socket the daemon owns: turns on its error queue and reads
/// every ICMP error the kernel queues on it (the socket reports `EPOLLERR`), counting it by
/// reason (a "fragmentation needed" also records the path MTU) and logging at most one line
/// per [`IcmpLog::EVERY`].
pub async fn tunnel_errors(sock: Arc<TunnelSocket>, counters: Arc<SocketCounters>) {
    if let Err(e) = sock.set_recv_errors() {
        tracing::debug!("tunnel socket {}: no ICMP error queue: {e}", counters.local);
        return;
    }
    let mut log = IcmpLog::default();
    loop {
        match sock.recv_error().await {
            Ok(e) => {
                let reason = counters.icmp(&e);
                log.note(&counters, reason, &e);
            }
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {}
            Err(e) => {
                tracing::warn!(
                    "tunnel socket {} -> {}: reading ICMP errors failed: {e}",
                    counters.local,
                    counters.peer
                );
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}

/// At most one log line per interval about the ICMP errors of one socket.
#[derive(Debug, Default)]
pub(crate) struct IcmpLog {
    last: Option<std::time::Instant>,
    since: u64,
}

impl IcmpLog {
    /// Shortest time between two log lines of one socket.
    pub(crate) const EVERY: std::time::Duration = std::time::Duration::from_secs(10);

    /// An error was counted: log it unless a line went out less than `EVERY` ago (the next
    /// line then says how many came in between).
    pub(crate) fn note(&mut self, c: &SocketCounters, reason: &str, e: &SockError) {
        self.since += 1;
        if self.last.is_some_and(|l| l.elapsed() < Self::EVERY) {
            return;
        }
        let from = e
            .offender
            .map_or_else(|| "?".to_string(), |a| a.to_string());
        let dest = e.dest.map_or_else(|| c.peer.clone(), |a| a.to_string());
        tracing::warn!(
            "tunnel socket {} -> {dest}: ICMP {reason} from {from} (type {}, code {}, info {}); {} ICMP error(s) since the last report",
            c.local,
            e.icmp_type,
            e.icmp_code,
            e.info,
            self.since
        );
        self.since = 0;
        self.last = Some(std::time::Instant::now());
    }
}

/// Receive-side coalescing of TCP segments bound for one Ethernet pseudowire within a
/// receive batch ([`gso::Coalescer`]): one TAP write per run instead of one per frame.
struct RxCoalesce {
    on: bool,
    /// Where undeliverable frames are counted.
    counters: Arc<SocketCounters>,
    c: gso::Coalescer,
    /// Device and session of the held run.
    held: Option<(Arc<Pseudowire>, Arc<Session>)>,
}

impl RxCoalesce {
    fn new(on: bool, counters: Arc<SocketCounters>) -> Self {
        Self {
            on,
            counters,
            c: gso::Coalescer::new(),
            held: None,
        }
    }

    fn deliver(&mut self, pws: &Pseudowires, session: &Arc<Session>, frame: &[u8]) {
        let Some(pw) = pws.get((session.tunnel_id(), session.session_id())) else {
            self.counters.rx_drop(RxDrop::NoPseudowire);
            return;
        };
        if self.on && matches!(*pw, Pseudowire::Eth(_)) {
            let same = self.held.as_ref().is_some_and(|(p, _)| Arc::ptr_eq(p, &pw));
            if same && self.c.try_append(frame) {
                return;
            }
            self.flush();
            if self.c.start(frame) {
                self.held = Some((pw, session.clone()));
                return;
            }
        } else {
            self.flush();
        }
        if !pw.deliver(frame) {
            // docs/reference/kernel.md §3.1: a full PPP socket queue counts as rx_errors.
            session.count_rx_error();
            self.counters.rx_drop(RxDrop::PseudowireFull);
        }
    }

    /// Write out the held run, if any.
    fn flush(&mut self) {
        let Some((pw, session)) = self.held.take() else {
            return;
        };
        let Some(b) = self.c.take() else {
            return;
        };
        if let Pseudowire::Eth(tap) = &*pw {
            if tap.try_send_vnet(b).is_err() {
                session.count_rx_error();
                self.counters.rx_drop(RxDrop::PseudowireFull);
            }
        }
    }
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

/// What the transmit loop of one queue of an Ethernet pseudowire works with.
#[derive(Debug, Clone)]
pub struct EthTx {
    /// The session.
    pub session: Arc<Session>,
    /// Its device ([`Pseudowire::Eth`]).
    pub pw: Arc<Pseudowire>,
    /// Which queue of the device this loop reads (its worker number).
    pub queue: usize,
    /// The tunnel socket.
    pub sock: Arc<TunnelSocket>,
    /// The daemon's data-path settings when the session started.
    pub config: DataPathConfig,
    /// Shared by the loops of one session with more than one queue: held from the first
    /// read to the send of a batch while the session sends sequence numbers, so that its
    /// datagrams leave in Ns order (`None` for a single queue).
    pub seq_lock: Option<Arc<AsyncMutex<()>>>,
}

/// Transmit loop of one queue of an Ethernet pseudowire: TAP frames to the tunnel socket.
/// Uses the offload path (module docs) unless `config.offload` is off or the TAP refuses
/// offloads.
pub async fn eth_tx(tx: EthTx) {
    let EthTx {
        session,
        pw,
        queue,
        sock,
        config,
        seq_lock,
    } = tx;
    let Pseudowire::Eth(dev) = &*pw else {
        return;
    };
    let Some(tap) = dev.queue(queue) else {
        return;
    };
    let w = Worker {
        counters: dev.counters(),
        index: queue,
        seq_lock: seq_lock.as_deref(),
    };
    // Offloads are set at once (the kernel hands us TCP super-frames from the first frame on,
    // and the device shows its TSO state); the buffers (64 KiB and more) only once the device
    // has a first frame to read: an idle session (its device down, say) then costs no buffer
    // memory.
    // The offloads are the device's (every queue reads with a vnet header): queue 0 logs.
    let offload = config.offload
        && match tap.set_offload(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) {
            Ok(()) => {
                if queue == 0 {
                    tracing::info!("{}: TAP offloads on (csum, tso4, tso6)", tap.name());
                }
                true
            }
            Err(e) => {
                tracing::warn!("{}: no TAP offloads ({e}); simple path", tap.name());
                false
            }
        };
    if let Err(e) = tap.readable().await {
        tracing::warn!("{}: cannot wait for frames: {e}", tap.name());
        return;
    }
    if offload {
        return eth_tx_offload(&session, tap, &sock, &w).await;
    }
    eth_tx_simple(&session, tap, &sock, &w).await;
}

/// The worker a transmit loop is: where it counts, and the session's sequencing lock.
struct Worker<'a> {
    counters: &'a WorkerCounters,
    index: usize,
    seq_lock: Option<&'a AsyncMutex<()>>,
}

impl Worker<'_> {
    /// The session's sequencing lock, when it has several queues and sends Ns now.
    async fn seq_guard(&self, session: &Session) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match self.seq_lock {
            Some(l) if session.send_seq() => Some(l.lock().await),
            _ => None,
        }
    }
}

/// One frame per read, one datagram per send.
async fn eth_tx_simple(session: &Session, tap: &Tap, sock: &TunnelSocket, w: &Worker<'_>) {
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
        let _seq = w.seq_guard(session).await;
        let Some((start, end)) = session.encap(&mut buf, HEADROOM, n) else {
            continue;
        };
        let ok = sock.send(&buf[start..end]).await.is_ok();
        session.tx_done(end - start, ok);
        w.counters.tx(w.index, 1);
    }
}

/// Frames read from the TAP per wake-up at most before the prepared datagrams leave (the
/// TAP is drained up to this many; then the batch is sent and the loop reads on).
pub const TX_DRAIN: usize = 64;

/// Offloads on: frames arrive with a vnet header, possibly as TCP super-frames. Every wake-up
/// drains the TAP (up to [`TX_DRAIN`] frames), encapsulates every frame or segment into one
/// buffer and sends the lot as planned by [`ul2tp_core::txbatch::plan`].
async fn eth_tx_offload(session: &Session, tap: &Tap, sock: &TunnelSocket, w: &Worker<'_>) {
    let mut batch = TxBatch::new(session, sock);
    batch.worker = Some((w.counters, w.index));
    let mut buf = vec![0u8; VNET_HDR_LEN + MAX_DATAGRAM];
    loop {
        let n = match tap.recv_vnet(&mut buf).await {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!("{}: read failed: {e}", tap.name());
                return;
            }
        };
        let _seq = w.seq_guard(session).await;
        batch.push_vnet(tap, &buf[..n]).await;
        let mut reads = 1;
        while reads < TX_DRAIN {
            match tap.try_recv_vnet(&mut buf) {
                Ok(n) => batch.push_vnet(tap, &buf[..n]).await,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // WouldBlock: drained. Anything else: the next waiting read reports it.
                Err(_) => break,
            }
            reads += 1;
        }
        batch.flush().await;
    }
}

/// The datagrams one wake-up of [`eth_tx_offload`] prepares: encapsulated back to back in
/// `out`, `ranges` in send order.
pub(crate) struct TxBatch<'a> {
    session: &'a Session,
    sock: &'a TunnelSocket,
    limits: TxLimits,
    out: Vec<u8>,
    used: usize,
    ranges: Vec<(usize, usize)>,
    runs: Vec<TxRun>,
    /// The worker counters and number of the transmit loop, if it counts per worker.
    worker: Option<(&'a WorkerCounters, usize)>,
}

impl<'a> TxBatch<'a> {
    pub(crate) fn new(session: &'a Session, sock: &'a TunnelSocket) -> Self {
        Self {
            session,
            sock,
            limits: TxLimits {
                gso: sock.udp_gso_capable(),
                max_gso_bytes: GSO_MAX_BYTES,
                max_segments: txbatch::UDP_MAX_SEGMENTS,
                max_batch: BATCH_MAX,
            },
            // Lazily zeroed: untouched pages of an idle session's buffer cost no memory.
            out: vec![0u8; 2 * (HEADROOM + MAX_DATAGRAM)],
            used: 0,
            ranges: Vec::with_capacity(BATCH_MAX),
            runs: Vec::new(),
            worker: None,
        }
    }

    /// Make room for a datagram of up to `len` bytes (sends what is prepared if needed).
    async fn reserve(&mut self, len: usize) {
        if self.out.len() - self.used < len {
            self.flush().await;
        }
    }

    /// Encapsulate the frame now at `out[at..at + len]` (`at - used` bytes of headroom) and
    /// record the datagram.
    fn seal(&mut self, at: usize, len: usize) {
        if let Some(r) = self.session.encap(&mut self.out[..at + len], at, len) {
            self.ranges.push(r);
            self.used = r.1;
        }
    }

    /// One frame (an Ethernet frame, or a PPP frame for a PPP session) to send as it is.
    pub(crate) async fn push_frame(&mut self, frame: &[u8]) {
        self.push_one(frame, None).await;
    }

    /// One frame; with `csum`, its Layer-4 checksum is finished first.
    async fn push_one(&mut self, frame: &[u8], csum: Option<&VnetHdr>) {
        let ovh = self.session.encap_overhead();
        self.reserve(ovh + frame.len()).await;
        let at = self.used + ovh;
        let Some(dst) = self.out.get_mut(at..at + frame.len()) else {
            self.session.tx_done(0, false);
            return;
        };
        dst.copy_from_slice(frame);
        if let Some(hdr) = csum {
            if gso::complete_checksum(dst, hdr).is_err() {
                self.session.tx_done(0, false);
                return;
            }
        }
        self.seal(at, frame.len());
    }

    /// One read from the TAP: vnet header + frame or super-frame.
    async fn push_vnet(&mut self, tap: &Tap, data: &[u8]) {
        let (Some(h), Some(frame)) = (data.get(..VNET_HDR_LEN), data.get(VNET_HDR_LEN..)) else {
            return;
        };
        let Ok(hdr) = VnetHdr::parse(h) else {
            return;
        };
        if !hdr.is_gso() {
            let csum = (hdr.flags & gso::F_NEEDS_CSUM != 0).then_some(&hdr);
            return self.push_one(frame, csum).await;
        }
        let ovh = self.session.encap_overhead();
        let seg = match TcpSegmenter::new(&hdr, frame) {
            Ok(s) => s,
            Err(e) => {
                // Not something the TAP should produce with the offloads we asked for.
                tracing::debug!("{}: cannot segment a GSO frame: {e}", tap.name());
                self.session.tx_done(0, false);
                return;
            }
        };
        let stride = ovh + seg.full_segment_len();
        for i in 0..seg.count() {
            self.reserve(stride).await;
            let at = self.used + ovh;
            let Some(dst) = self.out.get_mut(at..) else {
                self.session.tx_done(0, false);
                continue;
            };
            let Ok(flen) = seg.write_segment(i, dst) else {
                self.session.tx_done(0, false);
                continue;
            };
            self.seal(at, flen);
        }
    }

    /// Send everything prepared, counting each datagram as one packet.
    pub(crate) async fn flush(&mut self) {
        if let Some((c, i)) = self.worker {
            c.tx(i, self.ranges.len());
        }
        txbatch::plan(&self.ranges, &self.limits, &mut self.runs);
        for run in std::mem::take(&mut self.runs).iter() {
            match *run {
                TxRun::Segmented {
                    first,
                    count,
                    segment,
                } => {
                    let r = &self.ranges[first..first + count];
                    self.send_segmented(r, segment).await;
                }
                TxRun::Batch { first, count } => {
                    let r = &self.ranges[first..first + count];
                    send_each(self.session, self.sock, &self.out, r).await;
                }
            }
        }
        self.ranges.clear();
        self.used = 0;
    }

    async fn send_segmented(&self, ranges: &[(usize, usize)], segment: usize) {
        let (Some(first), Some(last)) = (ranges.first(), ranges.last()) else {
            return;
        };
        if let (TunnelSocket::Udp(udp), Ok(seg)) = (self.sock, u16::try_from(segment)) {
            let ok = udp
                .send_segmented(&self.out[first.0..last.1], seg)
                .await
                .is_ok();
            for r in ranges {
                self.session.tx_done(r.1 - r.0, ok);
            }
        } else {
            send_each(self.session, self.sock, &self.out, ranges).await;
        }
    }
}

/// Send the datagrams `out[r.0..r.1]` for `r` in `ranges` with `sendmmsg`, counting each as
/// one packet.
async fn send_each(session: &Session, sock: &TunnelSocket, out: &[u8], ranges: &[(usize, usize)]) {
    if let [r] = ranges {
        let ok = sock.send(&out[r.0..r.1]).await.is_ok();
        session.tx_done(r.1 - r.0, ok);
        return;
    }
    let mut slices: Vec<&[u8]> = ranges.iter().map(|r| &out[r.0..r.1]).collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        let n = match sock.send_batch(rest).await {
            Ok(n) => n.max(1).min(rest.len()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => {
                // The first datagram failed: count it and go on with the others.
                session.tx_done(rest[0].len(), false);
                rest = &mut rest[1..];
                continue;
            }
        };
        for d in &rest[..n] {
            session.tx_done(d.len(), true);
        }
        rest = &mut rest[n..];
    }
}

/// When the reorder timer of `session` must next fire: the deadline of the oldest held packet,
/// or `None` — no timer at all — when the reorder queue is empty (with `reorder_timeout 0`
/// nothing is ever held, so such a session never has a timer).
pub(crate) fn reorder_deadline(session: &Session) -> Option<Timestamp> {
    session.next_timeout()
}

/// Timer of a session: releases or drops held packets whose time is up even when no further
/// packet arrives (unlike the kernel, docs/reference/kernel.md §2.7). While nothing is held
/// the task only waits on `wake`, which the session's receive path notifies
/// ([`Session::set_reorder_waker`]) when a held packet gives the queue a (new, earlier)
/// deadline; an idle session costs no wake-ups.
pub async fn reorder_timer(session: Arc<Session>, pws: Arc<Pseudowires>, wake: Arc<Notify>) {
    loop {
        let Some(deadline) = reorder_deadline(&session) else {
            wake.notified().await;
            continue;
        };
        tokio::select! {
            _ = tokio::time::sleep_until(clock::instant(deadline)) => {}
            // A new, earlier deadline: recompute.
            _ = wake.notified() => continue,
        }
        session.poll_reorder(clock::now(), &mut |s, frame| deliver(&pws, s, frame));
    }
}

/// The session's timer task, with the session's receive path wired to wake it.
pub fn start_reorder_timer(
    session: &Arc<Session>,
    pws: &Arc<Pseudowires>,
) -> tokio::task::JoinHandle<()> {
    let wake = Arc::new(Notify::new());
    let w = wake.clone();
    session.set_reorder_waker(move || w.notify_one());
    tokio::spawn(reorder_timer(session.clone(), pws.clone(), wake))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ul2tp_core::{Encap, SessionParams, TunnelParams, Version};
    use ul2tp_wire::data::{DefaultSublayer, V3SessionHeader};

    fn session(timeout_ms: u64) -> (Registry, Arc<Session>) {
        let r = Registry::new();
        r.tunnel_create(TunnelParams {
            tunnel_id: 1,
            peer_tunnel_id: 2,
            version: Version::V3,
            encap: Encap::Udp,
            socket: SocketId(1),
        })
        .unwrap();
        let mut p = SessionParams::new(10, 20, ul2tp_core::PwType::Ethernet);
        p.reorder_timeout_ms = timeout_ms;
        let s = r.session_create(1, p).unwrap();
        (r, s)
    }

    fn packet(seq: u32) -> Vec<u8> {
        let mut b = vec![0u8; 32];
        let n = V3SessionHeader {
            session_id: 10,
            cookie: &[],
            sublayer: Some(DefaultSublayer { seq: Some(seq) }),
        }
        .emit_udp(&mut b)
        .unwrap();
        b.truncate(n);
        b.extend_from_slice(&[0u8; 20]);
        b
    }

    /// With nothing held the timer logic asks for no wake-up, whatever the reorder timeout
    /// (the old loop slept `reorder_timeout` clamped to 1..1000 ms, i.e. woke every 1 ms
    /// with `reorder_timeout 0`). A held packet asks for one, at its deadline.
    #[test]
    fn no_wake_up_when_nothing_is_queued() {
        for t in [0, 1, 100, 60_000] {
            let (_r, s) = session(t);
            assert_eq!(reorder_deadline(&s), None, "reorder_timeout {t}");
        }
        let (r, s) = session(100);
        let now = Timestamp::from_millis(1);
        let mut got = 0;
        for seq in [0, 1, 3] {
            r.receive(SocketId(1), Encap::Udp, &packet(seq), now, &mut |_, _| {
                got += 1
            });
        }
        assert_eq!(got, 2);
        assert_eq!(
            reorder_deadline(&s),
            Some(now + std::time::Duration::from_millis(100))
        );
        s.poll_reorder(now + std::time::Duration::from_millis(100), &mut |_, _| {});
        assert_eq!(reorder_deadline(&s), None);
    }

    /// The timer task parks without a timer and is woken by a held packet, then releases it
    /// at its deadline.
    #[tokio::test]
    async fn timer_task_wakes_for_a_held_packet() {
        let (r, s) = session(50);
        let pws = Arc::new(Pseudowires::default());
        let task = start_reorder_timer(&s, &pws);
        tokio::task::yield_now().await;
        let now = clock::now();
        for seq in [0, 2] {
            r.receive(SocketId(1), Encap::Udp, &packet(seq), now, &mut |_, _| {});
        }
        assert_eq!(s.reorder_queue_len(), 1);
        // Wait (up to 5 s) for the timer to expire the held packet.
        for _ in 0..500 {
            if s.reorder_queue_len() == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(s.reorder_queue_len(), 0);
        assert_eq!(s.stats().rx_seq_discards, 1);
        task.abort();
    }
}
