//! A sans-IO PPP endpoint (RFC 1661 LCP, RFC 1334 PAP, RFC 1994 CHAP-MD5, RFC 1332/1877 IPCP,
//! RFC 5072 IPv6CP) for PPP sessions carried over L2TP.
//!
//! Design (same shape as `ul2tp-control`): the [`Endpoint`] never does I/O and never reads a
//! clock. Frames come in through [`Endpoint::handle_frame`] as the session socket carries them
//! (protocol field + information; a leading FF 03 is accepted and stripped), time comes in as a
//! [`Timestamp`] argument, and everything the endpoint wants done comes out of `poll_*`:
//! frames to send ([`Endpoint::poll_transmit`], protocol field + information, no FF 03: the
//! session layer prepends FF 03 as Linux does, docs/reference/rfc.md §4.12), notifications
//! ([`Endpoint::poll_event`]), received IP packets ([`Endpoint::poll_ip`]) and the next
//! deadline ([`Endpoint::poll_timeout`]).
//!
//! Inside: one RFC 1661 automaton ([`fsm`]) per control protocol (LCP, IPCP, IPv6CP), the
//! option logic for each, the authentication phase (PAP / CHAP-MD5, either direction), the
//! LCP echo keepalive, and the phase bookkeeping of docs/reference/rfc.md §4.2. Randomness (magic numbers,
//! CHAP challenges, interface identifiers) comes from a ChaCha `StdRng` seeded by the caller.
//!
//! Files: `config.rs` ([`Config`], [`AuthProtocol`], [`Credentials`]), `event.rs` ([`Event`],
//! [`DownReason`], [`IpPacket`]), `endpoint/` (the [`Endpoint`] and its API in `mod.rs`; the
//! driver shared by the three control protocols in `cp.rs`; the option logic of each in
//! `lcp.rs`, `ipcp.rs` and `ipv6cp.rs`; PAP, CHAP-MD5 and MS-CHAPv2 in `auth.rs`), and the
//! public building blocks [`fsm`], [`packet`] and [`mschapv2`], and [`nd`] (IPv6 Router
//! Solicitations and Advertisements for the link IPv6CP brought up) and [`dhcp6`] (DHCPv6
//! prefix delegation messages).

#![forbid(unsafe_code)]

mod config;
pub mod dhcp6;
mod endpoint;
mod event;
pub mod fsm;
pub mod mschapv2;
pub mod nd;
pub mod packet;

pub use config::{AuthProtocol, Config, Credentials, StaticCredentials};
pub use endpoint::{Endpoint, Phase};
pub use event::{AuthRequest, DownReason, Event, IpPacket};
pub use packet::PppError;

pub use ul2tp_wire::Timestamp;
