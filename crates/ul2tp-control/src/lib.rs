//! ul2tp-control: the L2TP control protocol (RFC 2661 L2TPv2 and RFC 3931 L2TPv3) as a pure,
//! sans-IO state machine.
//!
//! Design (quinn-proto style): an [`Endpoint`] owns every control connection ("tunnel") of one
//! local address. The caller feeds it datagrams with [`Endpoint::handle_datagram`] and timer
//! expiries with [`Endpoint::handle_timeout`], and drains what it produced with
//! [`Endpoint::poll_transmit`], [`Endpoint::poll_event`] and [`Endpoint::poll_timeout`]. Nothing
//! in this crate opens a socket, reads a clock or spawns a thread: time is a [`Timestamp`]
//! argument (microseconds on any monotonic scale the caller likes), so the [`sim`] module can
//! run two engines over a lossy network under a virtual clock.
//!
//! The crate has no AVP code of its own: message bodies are read with
//! `ul2tp_wire::message::Message`, built with `ul2tp_wire::message::MessageBuilder`, and signed
//! and verified with `ul2tp_wire::digest`. Result and error codes are the wire layer's typed
//! [`StopCcnResult`], [`CdnResult`] and [`ErrorCode`], re-exported here.
//!
//! Layers inside the crate:
//! * [`channel`]: reliable delivery (Ns/Nr, windows, acks, retransmission, slow start).
//! * [`engine`]: the [`Endpoint`] and its API (`engine/mod.rs`), with one file per part:
//!   configuration (`config.rs`), events (`event.rs`), counters (`stats.rs`), command errors
//!   (`error.rs`), the tunnel and session state machines (`tunnel.rs`, `session.rs`) and
//!   message building and reading (`message.rs`).
//! * [`sim`]: deterministic network simulation with pcap capture, used by the tests.
//!
//! See `docs/control-engine.md` for the API and state machines.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod channel;
pub mod engine;
pub mod sim;

pub use engine::{
    CallType, Config, DigestAlg, DownReason, Endpoint, EndpointStats, Error, Event, MessageCounts,
    MessageStats, SelectFn, Selector, SessionConfig, SessionInfo, Transmit, TunnelIdInUse,
    TunnelInfo, TunnelRequest, TunnelStats,
};
pub use ul2tp_wire::avp::{CdnResult, ErrorCode, StopCcnResult};
pub use ul2tp_wire::{Encap, Timestamp, Version};
