//! Control-connection authentication.
//!
//! * L2TPv2 tunnel authentication (RFC 2661 §4.4.3/§5.1.1, docs/reference/rfc.md §1.9): the Challenge
//!   Response is `MD5(id ‖ secret ‖ challenge)` where `id` is the one-octet Message Type of the
//!   message that carries the response (2 in SCCRP, 3 in SCCCN).
//! * L2TPv3 Control Message Authentication (RFC 3931 §4.3, §5.4.1, docs/reference/rfc.md §2.8): every
//!   message carries a Message Digest AVP (59) with an HMAC over
//!   `[sender_nonce ‖ receiver_nonce ‖] message` (no nonces for SCCRQ), computed with the digest
//!   octets zeroed, keyed with `HMAC-MD5(secret, 0x02)`. AVP hiding in v3 uses the key
//!   `HMAC-MD5(secret, 0x01)` ([`v3_hiding_key`]).
//!
//! The engine builds a message with a zeroed digest (see
//! [`crate::message::MessageBuilder::digest`]), fills Ns/Nr with
//! [`crate::control::set_ns_nr`], then calls [`sign_message`]; a retransmission with a new Nr
//! must be signed again. On receipt, [`verify_message`] runs before any AVP is acted upon.

use core::fmt;

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha1::Sha1;

use crate::avp::{AttrType, AvpIter, DigestType, MessageType, VENDOR_IETF};
use crate::control::HEADER_LEN;

type HmacMd5 = Hmac<Md5>;
type HmacSha1 = Hmac<Sha1>;

/// Compute the L2TPv2 Challenge Response carried in a message of type `carried_in`
/// (SCCRP answers an SCCRQ challenge, SCCCN answers an SCCRP challenge).
pub fn challenge_response(carried_in: MessageType, secret: &[u8], challenge: &[u8]) -> [u8; 16] {
    let mut h = Md5::new();
    // RFC 1994 style: the CHAP identifier is the one-octet message type.
    h.update([carried_in.get() as u8]);
    h.update(secret);
    h.update(challenge);
    h.finalize().into()
}

/// Check a received Challenge Response in constant time.
pub fn verify_challenge_response(
    carried_in: MessageType,
    secret: &[u8],
    challenge: &[u8],
    response: &[u8],
) -> bool {
    let want = challenge_response(carried_in, secret, challenge);
    if response.len() != want.len() {
        return false;
    }
    want.iter()
        .zip(response)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

fn hmac_md5_1(key: &[u8], octet: u8) -> [u8; 16] {
    // HMAC accepts keys of any length; new_from_slice cannot fail for HMAC.
    let mut m = match HmacMd5::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return [0; 16],
    };
    m.update(&[octet]);
    m.finalize().into_bytes().into()
}

/// The L2TPv3 Message Digest key: HMAC-MD5(secret, 0x02) (docs/reference/rfc.md §2.8). With
/// authentication disabled, an integrity-only digest uses the empty secret.
pub fn v3_digest_key(secret: &[u8]) -> [u8; 16] {
    hmac_md5_1(secret, 0x02)
}

/// The L2TPv3 AVP-hiding key: HMAC-MD5(secret, 0x01) (docs/reference/rfc.md §2.8).
pub fn v3_hiding_key(secret: &[u8]) -> [u8; 16] {
    hmac_md5_1(secret, 0x01)
}

/// The two nonces that prefix the digested data for every message except SCCRQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nonces<'a> {
    /// Nonce of the LCCE that sends the message.
    pub sender: &'a [u8],
    /// Nonce of the LCCE that receives it.
    pub receiver: &'a [u8],
}

/// Why a message could not be signed or verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DigestError {
    /// The message is not a well-formed control message (header or AVP framing).
    Malformed,
    /// No Message Digest AVP in the message.
    Missing,
    /// A Message Digest AVP with an unknown digest type or wrong length.
    BadDigestAvp,
    /// No digest in the message matches.
    Mismatch,
}

impl fmt::Display for DigestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DigestError::Malformed => "malformed control message",
            DigestError::Missing => "no Message Digest AVP",
            DigestError::BadDigestAvp => "malformed Message Digest AVP",
            DigestError::Mismatch => "Message Digest does not verify",
        })
    }
}

impl std::error::Error for DigestError {}

/// Compute a digest of the given type over `[nonces ‖] msg` with the derived key `key`
/// (from [`v3_digest_key`]). `msg` must already have its digest octets zeroed.
pub fn compute_digest(
    digest_type: DigestType,
    key: &[u8],
    nonces: Option<Nonces<'_>>,
    msg: &[u8],
) -> Option<Vec<u8>> {
    fn run<M: Mac + hmac::digest::KeyInit>(
        key: &[u8],
        nonces: Option<Nonces<'_>>,
        msg: &[u8],
    ) -> Option<Vec<u8>> {
        let mut m = <M as Mac>::new_from_slice(key).ok()?;
        if let Some(n) = nonces {
            m.update(n.sender);
            m.update(n.receiver);
        }
        m.update(msg);
        Some(m.finalize().into_bytes().to_vec())
    }
    match digest_type {
        DigestType::HmacMd5 => run::<HmacMd5>(key, nonces, msg),
        DigestType::HmacSha1 => run::<HmacSha1>(key, nonces, msg),
        DigestType::Unknown(_) => None,
    }
}

/// Locate the Message Digest AVPs of a message that starts at the flags word: returns
/// (digest type, range of the digest octets within `msg`) for each, in order.
fn digest_fields(msg: &[u8]) -> Result<Vec<(DigestType, core::ops::Range<usize>)>, DigestError> {
    let len = msg
        .get(2..4)
        .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        .ok_or(DigestError::Malformed)?;
    if len < HEADER_LEN || len > msg.len() {
        return Err(DigestError::Malformed);
    }
    let body = &msg[HEADER_LEN..len];
    let mut out = Vec::new();
    for avp in AvpIter::new(body) {
        let avp = avp.map_err(|_| DigestError::Malformed)?;
        if avp.vendor_id != VENDOR_IETF || avp.attr_type != AttrType::MessageDigest.get() {
            continue;
        }
        let (&t, d) = avp.value.split_first().ok_or(DigestError::BadDigestAvp)?;
        let dt = DigestType::from(t);
        if dt.digest_len() != Some(d.len()) {
            return Err(DigestError::BadDigestAvp);
        }
        let start = HEADER_LEN + avp.offset + 6 + 1;
        out.push((dt, start..start + d.len()));
    }
    Ok(out)
}

/// Fill every Message Digest AVP of `msg` (from the flags word, Ns/Nr already set) using
/// `secret` (the configured shared secret; empty for integrity-only). `nonces` is `None` for
/// SCCRQ. Returns the number of digests written.
pub fn sign_message(
    msg: &mut [u8],
    secret: &[u8],
    nonces: Option<Nonces<'_>>,
) -> Result<usize, DigestError> {
    let fields = digest_fields(msg)?;
    if fields.is_empty() {
        return Err(DigestError::Missing);
    }
    let key = v3_digest_key(secret);
    for (_, r) in &fields {
        msg[r.clone()].fill(0);
    }
    let len = usize::from(u16::from_be_bytes([msg[2], msg[3]]));
    let digests: Vec<Vec<u8>> = fields
        .iter()
        .map(|(t, _)| {
            compute_digest(*t, &key, nonces, &msg[..len]).ok_or(DigestError::BadDigestAvp)
        })
        .collect::<Result<_, _>>()?;
    for ((_, r), d) in fields.iter().zip(digests) {
        msg[r.clone()].copy_from_slice(&d);
    }
    Ok(fields.len())
}

/// Verify a received message (from the flags word): succeeds if any of its Message Digest
/// AVPs matches the HMAC computed with `secret` (RFC 3931 allows two digests during secret
/// rollover; call again with the second secret if configured). `nonces.sender` is the
/// peer's nonce, `nonces.receiver` ours; `None` for SCCRQ.
pub fn verify_message(
    msg: &[u8],
    secret: &[u8],
    nonces: Option<Nonces<'_>>,
) -> Result<(), DigestError> {
    let fields = digest_fields(msg)?;
    if fields.is_empty() {
        return Err(DigestError::Missing);
    }
    let len = usize::from(u16::from_be_bytes([msg[2], msg[3]]));
    let mut zeroed = msg[..len].to_vec();
    for (_, r) in &fields {
        zeroed[r.clone()].fill(0);
    }
    let key = v3_digest_key(secret);
    for (t, r) in &fields {
        let ok = match t {
            DigestType::HmacMd5 => mac_verify::<HmacMd5>(&key, nonces, &zeroed, &msg[r.clone()]),
            DigestType::HmacSha1 => mac_verify::<HmacSha1>(&key, nonces, &zeroed, &msg[r.clone()]),
            DigestType::Unknown(_) => false,
        };
        if ok {
            return Ok(());
        }
    }
    Err(DigestError::Mismatch)
}

fn mac_verify<M: Mac + hmac::digest::KeyInit>(
    key: &[u8],
    nonces: Option<Nonces<'_>>,
    data: &[u8],
    tag: &[u8],
) -> bool {
    let Ok(mut m) = <M as Mac>::new_from_slice(key) else {
        return false;
    };
    if let Some(n) = nonces {
        m.update(n.sender);
        m.update(n.receiver);
    }
    m.update(data);
    // Constant-time comparison.
    m.verify_slice(tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn challenge_response_vectors() {
        // docs/reference/rfc.md §1.19.
        let ch: Vec<u8> = (0u8..16).collect();
        let r = challenge_response(MessageType::Sccrp, b"xyzzy", &ch);
        assert_eq!(r.to_vec(), hex("84556850d53985c00accdd7e925fdf39"));
        let r3 = challenge_response(MessageType::Scccn, b"xyzzy", &ch);
        assert_eq!(r3.to_vec(), hex("4d7866b7dd1e24422b8bb654d98b43e1"));
        assert!(verify_challenge_response(
            MessageType::Sccrp,
            b"xyzzy",
            &ch,
            &r
        ));
        assert!(!verify_challenge_response(
            MessageType::Scccn,
            b"xyzzy",
            &ch,
            &r
        ));
        assert!(!verify_challenge_response(
            MessageType::Sccrp,
            b"xyzzz",
            &ch,
            &r
        ));
        assert!(!verify_challenge_response(
            MessageType::Sccrp,
            b"xyzzy",
            &ch,
            &r[..15]
        ));
    }

    #[test]
    fn derived_keys() {
        // docs/reference/rfc.md §2.8.
        assert_eq!(
            v3_digest_key(b"xyzzy").to_vec(),
            hex("273b708131fdd7928be657f813b9de41")
        );
        assert_eq!(
            v3_hiding_key(b"xyzzy").to_vec(),
            hex("7664a0c35af38f1856ba32798c734c27")
        );
        assert_eq!(
            v3_digest_key(b"").to_vec(),
            hex("7b6085fbf45933670abcb07a27fcea5e")
        );
    }
}
