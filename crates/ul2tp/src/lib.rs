//! ul2tp: the library applications use to talk to ul2tpd.
//!
//! * [`Client`] speaks the management API (see `ul2tp-api`) over the daemon's Unix socket,
//!   including requests that pass descriptors in either direction (SCM_RIGHTS).
//! * [`SessionSocket`] is the PPPoL2TP session socket (docs/reference/kernel.md §7): PPP frames, the
//!   `PPPOL2TP_SO_*` options and the statistics ioctl.
//! * [`TunnelSocket`] is a managed tunnel registered on the application's own socket: it
//!   yields what the kernel would leave on the tunnel socket (§5.6).
//! * [`L2tpIpSocket`] is the L2TP/IP control socket (§8).
//!
//! Each socket is a `SOCK_SEQPACKET` descriptor from the daemon speaking the message format
//! of `ul2tp_api::sockproto`; this crate turns it into blocking calls shaped like the kernel
//! ones (errors are `io::Error`s carrying the kernel's errno). Requests made on a socket
//! (options, statistics) wait for their reply and keep frames that arrive meanwhile.
//! See `docs/app-sockets.md` for the mapping from the kernel API.
#![forbid(unsafe_code)]

pub use ul2tp_api as api;
pub use ul2tp_api::sockproto::IocStats;

mod chan;
mod client;
mod l2tpip;
mod session;
mod tunnel;

pub use client::{socket_path, Client, ClientError};
pub use l2tpip::{L2tpAddr, L2tpIpSocket};
pub use session::{PppoL2tpAddr, SessionOption, SessionSocket};
pub use tunnel::TunnelSocket;
