//! ul2tp: the library applications use to talk to ul2tpd.
//!
//! [`Client`] speaks the management API (see `ul2tp-api`) over the daemon's Unix socket.
#![forbid(unsafe_code)]

pub use ul2tp_api as api;

mod client;
pub use client::{socket_path, Client, ClientError};
