//! ul2tp-wire: L2TP (RFC 2661, RFC 3931) and PPP framing, bytes <-> typed values.
//!
//! Pure code: no I/O, no clock, no threads. Every parser takes a byte slice and returns a typed
//! value or an error; no input makes it panic.
#![forbid(unsafe_code)]

pub mod avp;
pub mod checksum;
pub mod control;
pub mod data;
pub mod digest;
pub mod message;
pub mod pcap;
pub mod ppp;
pub mod time;

pub use control::{Encap, Version};
pub use time::Timestamp;
