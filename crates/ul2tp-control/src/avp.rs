//! Internal adapter for the control-message body: AVP encoding and decoding, hidden AVPs
//! (RFC 2661 §4.3, rfc-facts §1.8), the v2 Challenge Response (rfc-facts §1.9) and the v3
//! Message Digest (RFC 3931 §4.3, rfc-facts §2.8).
//!
//! The shared AVP layer in `ul2tp_wire::{avp, message, digest}` was still being written when this
//! engine was built, so the engine builds and reads message bodies with this small adapter. The
//! cryptography (hiding, challenge response, keys, HMACs) now delegates to `ul2tp_wire`, and the
//! engine runs `ul2tp_wire::message::Message::parse` on every message for the RFC checks. The
//! adapter only knows the attributes the engine uses; nothing here panics on any input.

/// AVP header flag: mandatory.
pub const AVP_M: u16 = 0x8000;
/// AVP header flag: hidden.
pub const AVP_H: u16 = 0x4000;
const AVP_RESERVED: u16 = 0x3c00;
const AVP_LEN_MASK: u16 = 0x03ff;
/// Size of an AVP header.
pub const AVP_HEADER_LEN: usize = 6;

/// Attribute types (rfc-facts §1.4, §2.6).
pub mod attr {
    /// Message Type.
    pub const MESSAGE_TYPE: u16 = 0;
    /// Result Code.
    pub const RESULT_CODE: u16 = 1;
    /// Protocol Version (v2).
    pub const PROTOCOL_VERSION: u16 = 2;
    /// Framing Capabilities (v2).
    pub const FRAMING_CAPABILITIES: u16 = 3;
    /// Bearer Capabilities (v2).
    pub const BEARER_CAPABILITIES: u16 = 4;
    /// Tie Breaker.
    pub const TIE_BREAKER: u16 = 5;
    /// Firmware Revision.
    pub const FIRMWARE_REVISION: u16 = 6;
    /// Host Name.
    pub const HOST_NAME: u16 = 7;
    /// Vendor Name.
    pub const VENDOR_NAME: u16 = 8;
    /// Assigned Tunnel ID (v2).
    pub const ASSIGNED_TUNNEL_ID: u16 = 9;
    /// Receive Window Size.
    pub const RECEIVE_WINDOW_SIZE: u16 = 10;
    /// Challenge (v2).
    pub const CHALLENGE: u16 = 11;
    /// Q.931 Cause Code (v2).
    pub const Q931_CAUSE: u16 = 12;
    /// Challenge Response (v2).
    pub const CHALLENGE_RESPONSE: u16 = 13;
    /// Assigned Session ID (v2).
    pub const ASSIGNED_SESSION_ID: u16 = 14;
    /// Call Serial Number.
    pub const CALL_SERIAL_NUMBER: u16 = 15;
    /// Minimum BPS (v2).
    pub const MINIMUM_BPS: u16 = 16;
    /// Maximum BPS (v2).
    pub const MAXIMUM_BPS: u16 = 17;
    /// Bearer Type (v2).
    pub const BEARER_TYPE: u16 = 18;
    /// Framing Type (v2).
    pub const FRAMING_TYPE: u16 = 19;
    /// Called Number (v2).
    pub const CALLED_NUMBER: u16 = 21;
    /// Calling Number (v2).
    pub const CALLING_NUMBER: u16 = 22;
    /// Sub-Address (v2).
    pub const SUB_ADDRESS: u16 = 23;
    /// (Tx) Connect Speed (v2).
    pub const TX_CONNECT_SPEED: u16 = 24;
    /// Physical Channel ID.
    pub const PHYSICAL_CHANNEL_ID: u16 = 25;
    /// Call Errors (v2) / Circuit Errors (v3).
    pub const CALL_ERRORS: u16 = 34;
    /// ACCM (v2).
    pub const ACCM: u16 = 35;
    /// Random Vector.
    pub const RANDOM_VECTOR: u16 = 36;
    /// Rx Connect Speed (v2).
    pub const RX_CONNECT_SPEED: u16 = 38;
    /// Sequencing Required (v2).
    pub const SEQUENCING_REQUIRED: u16 = 39;
    /// Message Digest (v3).
    pub const MESSAGE_DIGEST: u16 = 59;
    /// Router ID (v3).
    pub const ROUTER_ID: u16 = 60;
    /// Assigned Control Connection ID (v3).
    pub const ASSIGNED_CCID: u16 = 61;
    /// Pseudowire Capabilities List (v3).
    pub const PW_CAPABILITIES: u16 = 62;
    /// Local Session ID (v3).
    pub const LOCAL_SESSION_ID: u16 = 63;
    /// Remote Session ID (v3).
    pub const REMOTE_SESSION_ID: u16 = 64;
    /// Assigned Cookie (v3).
    pub const ASSIGNED_COOKIE: u16 = 65;
    /// Remote End ID (v3).
    pub const REMOTE_END_ID: u16 = 66;
    /// Pseudowire Type (v3).
    pub const PW_TYPE: u16 = 68;
    /// L2-Specific Sublayer (v3).
    pub const L2_SPECIFIC_SUBLAYER: u16 = 69;
    /// Data Sequencing (v3).
    pub const DATA_SEQUENCING: u16 = 70;
    /// Circuit Status (v3).
    pub const CIRCUIT_STATUS: u16 = 71;
    /// Preferred Language (v3).
    pub const PREFERRED_LANGUAGE: u16 = 72;
    /// Control Message Authentication Nonce (v3).
    pub const NONCE: u16 = 73;
    /// Tx Connect Speed (v3, 64 bit).
    pub const TX_CONNECT_SPEED_V3: u16 = 74;
    /// Rx Connect Speed (v3, 64 bit).
    pub const RX_CONNECT_SPEED_V3: u16 = 75;
}

/// Whether the engine understands an IETF attribute type (anything else with M=1 is fatal).
pub fn is_known(attr_type: u16, v3: bool) -> bool {
    match attr_type {
        0..=19 | 21..=39 => true,
        46 => true,
        58..=66 | 68..=75 => v3 || attr_type != 58,
        _ => false,
    }
}

/// One decoded AVP (hidden values already revealed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Avp {
    /// M bit.
    pub mandatory: bool,
    /// Whether the AVP arrived hidden.
    pub hidden: bool,
    /// Vendor ID (0 = IETF).
    pub vendor: u16,
    /// Attribute type.
    pub attr: u16,
    /// Value (revealed).
    pub value: Vec<u8>,
}

/// Why a message body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AvpError {
    /// An AVP header or value ran past the end of the message.
    Truncated,
    /// AVP Length below 6.
    BadLength,
    /// The first AVP is not an IETF Message Type of length 8.
    NoMessageType,
    /// A hidden AVP without a secret or without a preceding Random Vector, or a bad hidden length.
    BadHidden {
        /// Attribute type of the hidden AVP.
        attr: u16,
        /// Its M bit.
        mandatory: bool,
    },
}

impl core::fmt::Display for AvpError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            AvpError::Truncated => f.write_str("AVP truncated"),
            AvpError::BadLength => f.write_str("AVP length below 6"),
            AvpError::NoMessageType => f.write_str("first AVP is not Message Type"),
            AvpError::BadHidden { attr, .. } => write!(f, "cannot reveal hidden AVP {attr}"),
        }
    }
}

/// Hide `value`: returns the encrypted subformat `orig_len ‖ value ‖ pad` (rfc-facts §1.8).
pub fn hide_value(attr_type: u16, secret: &[u8], rv: &[u8], value: &[u8], pad: &[u8]) -> Vec<u8> {
    ul2tp_wire::avp::hide(attr_type, secret, rv, value, pad)
}

/// Reveal a hidden value; `None` if the embedded original length does not fit.
pub fn reveal_value(attr_type: u16, secret: &[u8], rv: &[u8], hidden: &[u8]) -> Option<Vec<u8>> {
    ul2tp_wire::avp::unhide(attr_type, secret, rv, hidden).ok()
}

/// Parse all AVPs of a body. `hide_secret` is the key used to reveal hidden AVPs (the tunnel
/// secret for v2, the derived hiding key for v3). The first AVP must be Message Type.
pub fn parse_avps(body: &[u8], hide_secret: Option<&[u8]>) -> Result<Vec<Avp>, AvpError> {
    let mut out = Vec::new();
    let mut rest = body;
    let mut rv: Option<Vec<u8>> = None;
    while !rest.is_empty() {
        if rest.len() < AVP_HEADER_LEN {
            return Err(AvpError::Truncated);
        }
        let word = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(word & AVP_LEN_MASK);
        if len < AVP_HEADER_LEN {
            return Err(AvpError::BadLength);
        }
        if len > rest.len() {
            return Err(AvpError::Truncated);
        }
        let vendor = u16::from_be_bytes([rest[2], rest[3]]);
        let attr_type = u16::from_be_bytes([rest[4], rest[5]]);
        let raw = &rest[AVP_HEADER_LEN..len];
        let mandatory = word & AVP_M != 0;
        let hidden = word & AVP_H != 0;
        let value = if hidden {
            let bad = AvpError::BadHidden {
                attr: attr_type,
                mandatory,
            };
            let (Some(secret), Some(rv)) = (hide_secret, rv.as_deref()) else {
                return Err(bad);
            };
            reveal_value(attr_type, secret, rv, raw).ok_or(bad)?
        } else {
            raw.to_vec()
        };
        if vendor == 0 && attr_type == attr::RANDOM_VECTOR {
            rv = Some(value.clone());
        }
        // RFC 2661 §4.1: reserved bits set => treat as unrecognised; we mark it with a vendor
        // id that no attribute table contains so the M-bit rule applies.
        let vendor = if word & AVP_RESERVED != 0 && vendor == 0 {
            u16::MAX
        } else {
            vendor
        };
        out.push(Avp {
            mandatory,
            hidden,
            vendor,
            attr: attr_type,
            value,
        });
        rest = &rest[len..];
    }
    match out.first() {
        Some(a) if a.vendor == 0 && a.attr == attr::MESSAGE_TYPE && a.value.len() == 2 => Ok(out),
        _ => Err(AvpError::NoMessageType),
    }
}

/// CHAP-style tunnel authentication response (rfc-facts §1.9): MD5(id ‖ secret ‖ challenge)
/// where id is the message type of the message that carries the response.
pub fn challenge_response(msg_type: u8, secret: &[u8], challenge: &[u8]) -> [u8; 16] {
    let t = ul2tp_wire::avp::MessageType::from(u16::from(msg_type));
    ul2tp_wire::digest::challenge_response(t, secret, challenge)
}

/// Message digest algorithm (RFC 3931 §5.4.1, Digest Type octet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestAlg {
    /// HMAC-MD5, Digest Type 0 (MUST).
    HmacMd5,
    /// HMAC-SHA-1, Digest Type 1 (SHOULD).
    HmacSha1,
}

impl DigestAlg {
    /// Digest Type octet.
    pub fn type_octet(self) -> u8 {
        match self {
            DigestAlg::HmacMd5 => 0,
            DigestAlg::HmacSha1 => 1,
        }
    }
    /// Digest length in octets.
    pub fn digest_len(self) -> usize {
        match self {
            DigestAlg::HmacMd5 => 16,
            DigestAlg::HmacSha1 => 20,
        }
    }
    /// From a Digest Type octet.
    pub fn from_octet(b: u8) -> Option<DigestAlg> {
        match b {
            0 => Some(DigestAlg::HmacMd5),
            1 => Some(DigestAlg::HmacSha1),
            _ => None,
        }
    }
}

/// v3 digest key: HMAC-MD5(secret, 0x02) (rfc-facts §2.8).
pub fn v3_digest_key(secret: &[u8]) -> Vec<u8> {
    ul2tp_wire::digest::v3_digest_key(secret).to_vec()
}

/// v3 hiding key: HMAC-MD5(secret, 0x01) (rfc-facts §2.8).
pub fn v3_hiding_key(secret: &[u8]) -> Vec<u8> {
    ul2tp_wire::digest::v3_hiding_key(secret).to_vec()
}

/// Compute a message digest over `nonces ‖ msg` where `msg` has its digest bytes zeroed.
pub fn compute_digest(alg: DigestAlg, key: &[u8], nonces: &[&[u8]], msg: &[u8]) -> Vec<u8> {
    let n = match nonces {
        [sender, receiver] => Some(ul2tp_wire::digest::Nonces { sender, receiver }),
        _ => None,
    };
    let t = match alg {
        DigestAlg::HmacMd5 => ul2tp_wire::avp::DigestType::HmacMd5,
        DigestAlg::HmacSha1 => ul2tp_wire::avp::DigestType::HmacSha1,
    };
    ul2tp_wire::digest::compute_digest(t, key, n, msg).unwrap_or_default()
}

/// Offset of the Message Digest value within a control message (header + Message Type AVP +
/// digest AVP header + Digest Type octet): the digest AVP directly follows Message Type.
pub const DIGEST_VALUE_OFFSET: usize = 12 + 8 + AVP_HEADER_LEN + 1;

/// Fill the digest of a message built with a zeroed Message Digest AVP right after Message Type.
pub fn sign(alg: DigestAlg, key: &[u8], nonces: &[&[u8]], msg: &mut [u8]) {
    let end = DIGEST_VALUE_OFFSET + alg.digest_len();
    let Some(slot) = msg.get_mut(DIGEST_VALUE_OFFSET..end) else {
        return;
    };
    slot.fill(0);
    let d = compute_digest(alg, key, nonces, msg);
    if let Some(slot) = msg.get_mut(DIGEST_VALUE_OFFSET..end) {
        slot.copy_from_slice(&d);
    }
}

/// Verify the digest of a received control message (starting at the flags word). Returns false
/// if the second AVP is not a Message Digest or the digest does not match.
pub fn verify(key: &[u8], nonces: &[&[u8]], msg: &[u8]) -> bool {
    let Some(hdr) = msg.get(20..26) else {
        return false;
    };
    let vendor = u16::from_be_bytes([hdr[2], hdr[3]]);
    let attr_type = u16::from_be_bytes([hdr[4], hdr[5]]);
    let len = usize::from(u16::from_be_bytes([hdr[0], hdr[1]]) & AVP_LEN_MASK);
    if vendor != 0 || attr_type != attr::MESSAGE_DIGEST {
        return false;
    }
    let Some(alg) = msg.get(26).copied().and_then(DigestAlg::from_octet) else {
        return false;
    };
    if len != AVP_HEADER_LEN + 1 + alg.digest_len() {
        return false;
    }
    let end = DIGEST_VALUE_OFFSET + alg.digest_len();
    let Some(got) = msg.get(DIGEST_VALUE_OFFSET..end) else {
        return false;
    };
    let got = got.to_vec();
    let mut copy = msg.to_vec();
    copy[DIGEST_VALUE_OFFSET..end].fill(0);
    let want = compute_digest(alg, key, nonces, &copy);
    // Constant-time-ish comparison.
    want.len() == got.len() && want.iter().zip(&got).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0
}

/// Builds the AVP body of a control message. The 12-octet header is written with placeholder
/// Ns/Nr and fixed up by [`MsgBuilder::finish`].
#[derive(Debug)]
pub struct MsgBuilder {
    buf: Vec<u8>,
    hide: Option<(Vec<u8>, Vec<u8>)>,
}

impl MsgBuilder {
    /// Start a message with the given header and Message Type.
    pub fn new(hdr: &ul2tp_wire::control::ControlHeader, msg_type: u16) -> MsgBuilder {
        let mut buf = Vec::with_capacity(128);
        // emit only fails for a v2 tunnel id above 65535, which the engine never allocates.
        if hdr.emit(&mut buf).is_err() {
            buf.clear();
            buf.resize(12, 0);
        }
        let mut b = MsgBuilder { buf, hide: None };
        b.u16(attr::MESSAGE_TYPE, msg_type);
        b
    }

    /// Reserve a zeroed Message Digest AVP (must be called right after `new`).
    pub fn digest_placeholder(&mut self, alg: DigestAlg) {
        let mut v = vec![alg.type_octet()];
        v.resize(1 + alg.digest_len(), 0);
        self.raw(attr::MESSAGE_DIGEST, true, &v);
    }

    /// Enable hiding of subsequent `hidable` AVPs: appends a Random Vector AVP.
    pub fn enable_hiding(&mut self, key: Vec<u8>, rv: Vec<u8>) {
        self.raw(attr::RANDOM_VECTOR, true, &rv);
        self.hide = Some((key, rv));
    }

    /// Append an AVP (IETF vendor) in the clear.
    pub fn raw(&mut self, attr_type: u16, mandatory: bool, value: &[u8]) {
        self.push(attr_type, mandatory, false, value);
    }

    fn push(&mut self, attr_type: u16, mandatory: bool, hidden: bool, value: &[u8]) {
        let len = (AVP_HEADER_LEN + value.len()).min(usize::from(AVP_LEN_MASK));
        let mut word = len as u16;
        if mandatory {
            word |= AVP_M;
        }
        if hidden {
            word |= AVP_H;
        }
        self.buf.extend_from_slice(&word.to_be_bytes());
        self.buf.extend_from_slice(&0u16.to_be_bytes());
        self.buf.extend_from_slice(&attr_type.to_be_bytes());
        self.buf.extend_from_slice(&value[..len - AVP_HEADER_LEN]);
    }

    /// Append an AVP that may be hidden (hidden if hiding is enabled).
    pub fn hidable(&mut self, attr_type: u16, mandatory: bool, value: &[u8]) {
        match &self.hide {
            Some((key, rv)) => {
                let v = hide_value(attr_type, key, rv, value, &[]);
                self.push(attr_type, mandatory, true, &v);
            }
            None => self.raw(attr_type, mandatory, value),
        }
    }

    /// Append a mandatory u16 AVP.
    pub fn u16(&mut self, attr_type: u16, v: u16) {
        self.raw(attr_type, true, &v.to_be_bytes());
    }

    /// Append a mandatory u32 AVP.
    pub fn u32(&mut self, attr_type: u16, v: u32) {
        self.raw(attr_type, true, &v.to_be_bytes());
    }

    /// Set the Length field and return the message bytes (Ns/Nr still zero).
    pub fn finish(mut self) -> Vec<u8> {
        let len = self.buf.len().min(usize::from(u16::MAX)) as u16;
        let _ = ul2tp_wire::control::set_length(&mut self.buf, len);
        self.buf
    }
}

/// Typed read access to a parsed message.
#[derive(Debug, Clone)]
pub struct Msg {
    /// Message type (value of the first AVP).
    pub msg_type: u16,
    /// All AVPs including the Message Type.
    pub avps: Vec<Avp>,
}

impl Msg {
    /// Wrap parsed AVPs.
    pub fn new(avps: Vec<Avp>) -> Msg {
        let msg_type = avps
            .first()
            .and_then(|a| a.value.get(..2))
            .map_or(0, |v| u16::from_be_bytes([v[0], v[1]]));
        Msg { msg_type, avps }
    }
    /// Value of the first IETF AVP of the given type.
    pub fn get(&self, attr_type: u16) -> Option<&[u8]> {
        self.avps
            .iter()
            .find(|a| a.vendor == 0 && a.attr == attr_type)
            .map(|a| a.value.as_slice())
    }
    /// u16 value (exact length).
    pub fn u16(&self, attr_type: u16) -> Option<u16> {
        let v = self.get(attr_type)?;
        (v.len() == 2).then(|| u16::from_be_bytes([v[0], v[1]]))
    }
    /// u32 value (exact length).
    pub fn u32(&self, attr_type: u16) -> Option<u32> {
        let v = self.get(attr_type)?;
        (v.len() == 4).then(|| u32::from_be_bytes([v[0], v[1], v[2], v[3]]))
    }
    /// Result Code AVP: (result, error, message).
    pub fn result_code(&self) -> Option<(u16, Option<u16>, String)> {
        let v = self.get(attr::RESULT_CODE)?;
        let r = u16::from_be_bytes([*v.first()?, *v.get(1)?]);
        let e = match (v.get(2), v.get(3)) {
            (Some(a), Some(b)) => Some(u16::from_be_bytes([*a, *b])),
            _ => None,
        };
        let m = v.get(4..).map(|m| String::from_utf8_lossy(m).into_owned());
        Some((r, e, m.unwrap_or_default()))
    }
    /// First AVP with M=1 that the engine does not know (vendor-specific or unknown type).
    pub fn unknown_mandatory(&self, v3: bool) -> Option<&Avp> {
        self.avps
            .iter()
            .find(|a| a.mandatory && (a.vendor != 0 || !is_known(a.attr, v3)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn challenge_response_vectors() {
        // rfc-facts §1.19
        let chal: Vec<u8> = (0u8..16).collect();
        assert_eq!(
            hex(&challenge_response(2, b"xyzzy", &chal)),
            "84556850d53985c00accdd7e925fdf39"
        );
        assert_eq!(
            hex(&challenge_response(3, b"xyzzy", &chal)),
            "4d7866b7dd1e24422b8bb654d98b43e1"
        );
    }

    #[test]
    fn hidden_avp_vectors() {
        // rfc-facts §1.19: hidden Assigned Tunnel ID 0x1234, no pad.
        let rv: Vec<u8> = (0u8..16).collect();
        let v = hide_value(9, b"xyzzy", &rv, &[0x12, 0x34], &[]);
        assert_eq!(hex(&v), "971671f7");
        let v = hide_value(33, b"xyzzy", &rv, b"password1234567890", &[]);
        assert_eq!(hex(&v), "bb440f8e27cb70fdde3069c5b708e75cac5b9608");
        assert_eq!(
            reveal_value(33, b"xyzzy", &rv, &v).as_deref(),
            Some(&b"password1234567890"[..])
        );
        // padding is stripped on reveal
        let v = hide_value(9, b"s", &rv, &[1, 2], &[9; 30]);
        assert_eq!(reveal_value(9, b"s", &rv, &v), Some(vec![1, 2]));
    }

    #[test]
    fn v3_key_vectors() {
        // rfc-facts §2.8
        assert_eq!(
            hex(&v3_digest_key(b"xyzzy")),
            "273b708131fdd7928be657f813b9de41"
        );
        assert_eq!(
            hex(&v3_hiding_key(b"xyzzy")),
            "7664a0c35af38f1856ba32798c734c27"
        );
        assert_eq!(hex(&v3_digest_key(b"")), "7b6085fbf45933670abcb07a27fcea5e");
    }

    #[test]
    fn build_parse_roundtrip_with_hiding_and_digest() {
        use ul2tp_wire::control::{ControlHeader, Version};
        let hdr = ControlHeader::new(Version::V3, 7, 0);
        for alg in [DigestAlg::HmacMd5, DigestAlg::HmacSha1] {
            let mut b = MsgBuilder::new(&hdr, 10);
            b.digest_placeholder(alg);
            b.enable_hiding(b"k".to_vec(), vec![5; 16]);
            b.hidable(attr::LOCAL_SESSION_ID, true, &77u32.to_be_bytes());
            let mut m = b.finish();
            sign(alg, b"key", &[b"n1", b"n2"], &mut m);
            assert!(verify(b"key", &[b"n1", b"n2"], &m));
            assert!(!verify(b"key", &[b"n2", b"n1"], &m));
            assert!(!verify(b"other", &[b"n1", b"n2"], &m));
            let mut bad = m.clone();
            let last = bad.len() - 1;
            bad[last] ^= 1;
            assert!(!verify(b"key", &[b"n1", b"n2"], &bad));
            let avps = parse_avps(&m[12..], Some(b"k")).unwrap();
            let msg = Msg::new(avps);
            assert_eq!(msg.msg_type, 10);
            assert_eq!(msg.u32(attr::LOCAL_SESSION_ID), Some(77));
            // without the key the hidden AVP cannot be revealed
            assert!(matches!(
                parse_avps(&m[12..], None),
                Err(AvpError::BadHidden { attr: 63, .. })
            ));
        }
    }

    #[test]
    fn parse_rejects_malformed() {
        assert_eq!(
            parse_avps(&[0x80, 0x08, 0, 0, 0], None),
            Err(AvpError::Truncated)
        );
        assert_eq!(
            parse_avps(&[0x80, 0x05, 0, 0, 0, 0], None),
            Err(AvpError::BadLength)
        );
        assert_eq!(
            parse_avps(&[0x80, 0x08, 0, 0, 0, 7, 0, 1], None),
            Err(AvpError::NoMessageType)
        );
        assert!(parse_avps(&[0x80, 0x08, 0, 0, 0, 0, 0, 1], None).is_ok());
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = parse_avps(&body, Some(b"s"));
            let _ = verify(b"k", &[], &body);
        }
    }
}
