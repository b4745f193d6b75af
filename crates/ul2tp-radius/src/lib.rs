//! A pure RADIUS codec: packets, attributes (with vendor-specific ones, RFC 2865 §5.26),
//! the authenticators, and the attribute encryptions. No sockets, no clock, no randomness of
//! its own: Request Authenticators and salts come in as arguments (the daemon draws them from
//! getrandom(2)), so every function is deterministic and fuzzed (`fuzz/fuzz_targets/radius.rs`).
//!
//! Why our own codec and not the `radius` crate from crates.io: that crate ships its codec
//! together with its own tokio client and server and draws authenticators from its own random
//! generator; ul2tp needs a codec without I/O that the daemon drives (fail-over, accounting
//! queue, dynamic authorization on its own socket), takes its randomness from the daemon's one
//! source, and is fuzzed with the other pure crates. What we need of RADIUS is small (a
//! type-length-value format, MD5 and HMAC-MD5 from RustCrypto), so a codec of our own is less
//! code to trust than an adapter around a client we would not use.
//!
//! Files: [`packet`] (header, attributes, encode / decode, authenticators and
//! Message-Authenticator), [`hide`] (User-Password, RFC 2865 §5.2; Tunnel-Password, RFC 2868
//! §3.5), [`dict`] (the codes, attribute types and values we use, from the RFCs).

pub mod dict;
pub mod hide;
pub mod packet;

pub use packet::{Attr, Error, Packet};
