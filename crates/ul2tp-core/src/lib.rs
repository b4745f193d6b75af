//! ul2tp-core: the L2TP subsystem model — tunnels, sessions, their id namespaces and lookup
//! rules, sequence numbers and the reorder queue, statistics, and encapsulation /
//! decapsulation into caller buffers (docs/reference/kernel.md §1–§6, §9).
//!
//! Pure: no sockets, no clock, no threads. The daemon owns I/O: it hands received datagrams to
//! [`Registry::receive`] with the current time and a delivery callback, and asks a
//! [`Session`] to write the L2TP header in front of frames it transmits ([`Session::encap`]).
//!
//! # Design
//! * One [`Registry`] is one "network namespace". The receive path's lookup tables are
//!   sharded hash maps ([`sharded::ShardedMap`], a read lock on one shard of 64); the control side (create, delete, lookups by
//!   id, dumps) serialises on a mutex around an ordered index and changes one entry per
//!   object, so an update costs O(log n) however many sessions exist (nothing is copied).
//!   Several data-path workers may call [`Registry::receive`] concurrently.
//! * Counters are atomics ([`ul2tp_api::Stats`] snapshots). Per-session receive state (Nr, the
//!   out-of-sequence tracking, the reorder queue) sits behind a per-session mutex; transmit
//!   state (Ns, send_seq) is atomic.
//! * [`Tunnel`] and [`Session`] are `Arc`s; a session holds its tunnel, so a tunnel lives as
//!   long as any session or in-flight packet needs it. Deletion is idempotent: an object is
//!   marked dead and unpublished once; a worker still holding the old snapshot sees the dead
//!   flag and drops the packet.
//! * Frames are delivered through the caller's callback after the session's lock is released
//!   (so a callback may use the session again). The in-order fast path delivers a sub-slice
//!   of the received datagram without copying or allocating; packets held for reordering are
//!   copied once. With several workers feeding one session, deliveries of concurrently
//!   received packets may interleave (as in the kernel, which also drops its queue lock).
//! * Transmit: [`Session::encap`] writes the header into headroom in front of the frame and
//!   returns the datagram's range; [`Session::tx_done`] accounts the send result.
//!
//! # Differences from the kernel (deliberate)
//! * Expired packets in the reorder queue are dropped by a timer as well as on the next
//!   packet: the daemon calls [`Session::poll_reorder`] at [`Session::next_timeout`]
//!   (docs/reference/kernel.md §2.7 has no timer, so held packets wait for the next arrival). A packet
//!   counts as expired when `now >= expires` (the kernel: one jiffy later).
//! * The reorder queue is bounded ([`MAX_REORDER_QUEUE`]); a full queue drops its head as if
//!   it had expired (the kernel has no cap, docs/reference/kernel.md §12.2 item 5).
//! * Several tunnels may share one socket ([`SocketId`]): v2 lookups use the header's tunnel
//!   id and v3 collisions are resolved by the receiving socket, as in docs/reference/kernel.md §5.3.
//! * L2TPv2 session ids above 65535 are rejected (EINVAL) instead of being truncated
//!   (docs/reference/kernel.md §12.2 item 3).
//! * ETH_VLAN pseudowires (pw_type 4) are implemented: the session inserts / checks / removes
//!   an 802.1Q tag ([`vlan`]); frames with another tag are dropped and counted `rx_errors`
//!   (checked before the sequence logic; untagging copies the frame).
//! * v3 UDP sessions with the same id in two tunnels on the same socket are refused (EEXIST)
//!   so that the socket always disambiguates a collision.
//! * The register_session trace event prints the real tunnel ids (the kernel prints the
//!   session ids in those slots); debug listings print whole cookies of any length.
#![forbid(unsafe_code)]

use ul2tp_api::Errno;

pub mod debug;
pub mod gso;
pub mod mtu;
mod registry;
mod session;
pub mod sharded;
mod stats;
pub mod subscribers;
pub mod trace;
pub mod txbatch;
pub mod vlan;
pub mod workers;

pub use mtu::eth_mtu;
pub use registry::{DropReason, Limits, Registry, RxOutcome};
pub use session::{Session, Tunnel, MAX_REORDER_QUEUE};
pub use stats::AtomicStats;
pub use trace::{TraceEvent, TraceSink};
pub use ul2tp_api::Stats;
pub use ul2tp_wire::avp::PwType;
pub use ul2tp_wire::data::L2SpecType;
pub use ul2tp_wire::{Encap, Timestamp, Version};

/// Identifies the tunnel socket a packet arrived on (assigned by the daemon).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SocketId(pub u64);

/// An L2TPv3 cookie: 0..=8 bytes (docs/reference/kernel.md §1.6, §4.3).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Cookie {
    len: u8,
    bytes: [u8; 8],
}

impl Cookie {
    /// A cookie from its bytes; more than 8 bytes is `ERANGE` (the netlink policy's answer).
    pub fn new(b: &[u8]) -> Result<Cookie, Errno> {
        if b.len() > 8 {
            return Err(Errno::ERANGE);
        }
        let mut bytes = [0u8; 8];
        bytes[..b.len()].copy_from_slice(b);
        Ok(Cookie {
            len: b.len() as u8,
            bytes,
        })
    }

    /// The cookie bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// True for the empty cookie.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Lower-case hex, as `ip l2tp` prints it.
    pub fn to_hex(&self) -> String {
        self.as_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl core::fmt::Debug for Cookie {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Cookie({})", self.to_hex())
    }
}

/// Parameters of a tunnel (docs/reference/kernel.md §4.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelParams {
    /// Local tunnel id (CONN_ID).
    pub tunnel_id: u32,
    /// Peer tunnel id (PEER_CONN_ID).
    pub peer_tunnel_id: u32,
    /// L2TP version.
    pub version: Version,
    /// UDP or IP.
    pub encap: Encap,
    /// The socket it sends and receives on.
    pub socket: SocketId,
}

/// Parameters of a session (docs/reference/kernel.md §4.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionParams {
    /// Local session id.
    pub session_id: u32,
    /// Peer session id (put in transmitted headers).
    pub peer_session_id: u32,
    /// Pseudowire type.
    pub pw_type: PwType,
    /// Cookie we send.
    pub cookie: Cookie,
    /// Cookie we expect.
    pub peer_cookie: Cookie,
    /// L2-specific sublayer.
    pub l2spec_type: L2SpecType,
    /// Send sequence numbers.
    pub send_seq: bool,
    /// Require sequence numbers on receive.
    pub recv_seq: bool,
    /// LNS mode: never switch send_seq automatically.
    pub lns_mode: bool,
    /// Reorder timeout in milliseconds (0 = in-order only).
    pub reorder_timeout_ms: u64,
    /// Pseudowire interface name.
    pub ifname: Option<String>,
    /// VLAN id of an ETH_VLAN pseudowire.
    pub vlan_id: Option<u16>,
}

impl SessionParams {
    /// Defaults as for netlink: no cookies, default sublayer, no sequencing, LAC, no reorder.
    pub fn new(session_id: u32, peer_session_id: u32, pw_type: PwType) -> Self {
        SessionParams {
            session_id,
            peer_session_id,
            pw_type,
            cookie: Cookie::default(),
            peer_cookie: Cookie::default(),
            l2spec_type: L2SpecType::Default,
            send_seq: false,
            recv_seq: false,
            lns_mode: false,
            reorder_timeout_ms: 0,
            ifname: None,
            vlan_id: None,
        }
    }
}
