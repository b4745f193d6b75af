//! ul2tpd as a library: the daemon's store, request handlers, data path and API server.
//!
//! The `ul2tpd` binary is a thin `main` around this. Applications that want the L2TP data
//! path inside their own process (no daemon, no API socket on the file system) use
//! [`Embedded`]: it runs the same handlers on a private runtime and hands out connections
//! over which the `ul2tp` crate's `Client`, `SessionSocket`, `TunnelSocket` and
//! `L2tpIpSocket` work exactly as against a daemon.

#![forbid(unsafe_code)]

pub mod config;
pub mod control;
pub mod dial;
pub mod embedded;
pub mod entropy;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod profile;
pub mod radius;
pub mod reload;
pub mod server;

mod apps;
mod clock;
mod datapath;
mod handlers;
mod l2tpip;
mod leases;
mod names;
mod ppp_dhcp6;
mod ppp_io;
mod ppp_ipv6;
mod ppp_shared;
mod pppd;
mod reaper;
mod store;
mod workers;

pub use datapath::DataPathConfig;
pub use embedded::Embedded;
pub use handlers::{Daemon, Reply};
pub use store::stable_mac;
