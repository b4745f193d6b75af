//! RADIUS packets (RFC 2865 §3): Code, Identifier, Length, Authenticator and attributes;
//! decoding of arbitrary bytes, encoding with the authenticator each packet kind needs
//! (Request Authenticator of Access-Requests from the caller, the MD5 ones of RFC 2866 §3,
//! RFC 5176 §3.5 and responses, RFC 2865 §3) and the Message-Authenticator (HMAC-MD5, RFC 3579
//! §3.2) on both sides.

use std::net::Ipv4Addr;

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};

use crate::dict::{attr, code};

/// Why bytes are not a RADIUS packet, or a packet cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Fewer than 20 octets, or fewer than the Length field says.
    Truncated,
    /// Length field below 20 or above 4096.
    BadLength,
    /// An attribute's length is below 2 or runs past the packet.
    BadAttribute,
    /// An attribute value above 253 octets, or a packet above 4096 octets, to encode.
    TooLong,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Error::Truncated => "truncated RADIUS packet",
            Error::BadLength => "RADIUS Length field out of range",
            Error::BadAttribute => "malformed RADIUS attribute",
            Error::TooLong => "RADIUS attribute or packet too long",
        })
    }
}

impl std::error::Error for Error {}

/// Header octets: Code, Identifier, Length (2), Authenticator (16).
pub const HEADER_LEN: usize = 20;
/// Largest packet (RFC 2865 §3).
pub const MAX_LEN: usize = 4096;
/// Largest attribute value.
pub const MAX_VALUE: usize = 253;

/// One attribute (type, value); vendor-specific ones keep their Vendor-Id in the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    /// Attribute type.
    pub typ: u8,
    /// Value octets.
    pub value: Vec<u8>,
}

/// A RADIUS packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Code (see [`crate::dict::code`]).
    pub code: u8,
    /// Identifier: matches replies to requests.
    pub identifier: u8,
    /// Authenticator as received, or (Access-Request) the random Request Authenticator to send.
    pub authenticator: [u8; 16],
    /// Attributes in order.
    pub attrs: Vec<Attr>,
}

type HmacMd5 = Hmac<Md5>;

impl Packet {
    /// An empty packet.
    pub fn new(code: u8, identifier: u8) -> Packet {
        Packet {
            code,
            identifier,
            authenticator: [0; 16],
            attrs: Vec::new(),
        }
    }

    /// Append an attribute.
    pub fn add(&mut self, typ: u8, value: impl Into<Vec<u8>>) -> &mut Packet {
        self.attrs.push(Attr {
            typ,
            value: value.into(),
        });
        self
    }

    /// Append a 32-bit integer attribute.
    pub fn add_u32(&mut self, typ: u8, v: u32) -> &mut Packet {
        self.add(typ, v.to_be_bytes())
    }

    /// Append an IPv4 address attribute.
    pub fn add_ipv4(&mut self, typ: u8, a: Ipv4Addr) -> &mut Packet {
        self.add(typ, a.octets())
    }

    /// Append a Vendor-Specific attribute with one sub-attribute (RFC 2865 §5.26).
    pub fn add_vendor(&mut self, vendor_id: u32, vtype: u8, value: &[u8]) -> &mut Packet {
        let mut v = vendor_id.to_be_bytes().to_vec();
        v.push(vtype);
        v.push(value.len().saturating_add(2).min(255) as u8);
        v.extend_from_slice(value);
        self.add(attr::VENDOR_SPECIFIC, v)
    }

    /// The first attribute of type `typ`.
    pub fn get(&self, typ: u8) -> Option<&[u8]> {
        self.attrs
            .iter()
            .find(|a| a.typ == typ)
            .map(|a| a.value.as_slice())
    }

    /// Every attribute of type `typ`, in order.
    pub fn get_all(&self, typ: u8) -> impl Iterator<Item = &[u8]> {
        self.attrs
            .iter()
            .filter(move |a| a.typ == typ)
            .map(|a| a.value.as_slice())
    }

    /// The first attribute of type `typ` as a 32-bit integer (exactly 4 octets).
    pub fn get_u32(&self, typ: u8) -> Option<u32> {
        self.get(typ)
            .and_then(|v| <[u8; 4]>::try_from(v).ok())
            .map(u32::from_be_bytes)
    }

    /// The first attribute of type `typ` as an IPv4 address (exactly 4 octets).
    pub fn get_ipv4(&self, typ: u8) -> Option<Ipv4Addr> {
        self.get(typ)
            .and_then(|v| <[u8; 4]>::try_from(v).ok())
            .map(Ipv4Addr::from)
    }

    /// The first attribute of type `typ` as text (lossy UTF-8).
    pub fn get_text(&self, typ: u8) -> Option<String> {
        self.get(typ)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// The first vendor sub-attribute `vtype` of `vendor_id`, in any Vendor-Specific
    /// attribute (which may hold several sub-attributes).
    pub fn get_vendor(&self, vendor_id: u32, vtype: u8) -> Option<&[u8]> {
        self.get_all(attr::VENDOR_SPECIFIC).find_map(|v| {
            let (id, mut rest) = (v.get(..4)?, v.get(4..)?);
            if u32::from_be_bytes(id.try_into().ok()?) != vendor_id {
                return None;
            }
            while rest.len() >= 2 {
                let (t, l) = (rest[0], rest[1] as usize);
                if l < 2 || l > rest.len() {
                    return None;
                }
                if t == vtype {
                    return Some(&rest[2..l]);
                }
                rest = &rest[l..];
            }
            None
        })
    }

    /// Parse a packet. Octets past the Length field are padding and ignored (RFC 2865 §3).
    pub fn decode(bytes: &[u8]) -> Result<Packet, Error> {
        if bytes.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let len = u16::from_be_bytes([bytes[2], bytes[3]]) as usize;
        if !(HEADER_LEN..=MAX_LEN).contains(&len) {
            return Err(Error::BadLength);
        }
        let body = bytes.get(HEADER_LEN..len).ok_or(Error::Truncated)?;
        let mut attrs = Vec::new();
        let mut rest = body;
        while !rest.is_empty() {
            let l = *rest.get(1).ok_or(Error::BadAttribute)? as usize;
            if l < 2 || l > rest.len() {
                return Err(Error::BadAttribute);
            }
            attrs.push(Attr {
                typ: rest[0],
                value: rest[2..l].to_vec(),
            });
            rest = &rest[l..];
        }
        let mut authenticator = [0; 16];
        authenticator.copy_from_slice(&bytes[4..HEADER_LEN]);
        Ok(Packet {
            code: bytes[0],
            identifier: bytes[1],
            authenticator,
            attrs,
        })
    }

    /// The packet's octets with `self.authenticator` as it is, no signing.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(HEADER_LEN + 64);
        out.extend_from_slice(&[self.code, self.identifier, 0, 0]);
        out.extend_from_slice(&self.authenticator);
        for a in &self.attrs {
            if a.value.len() > MAX_VALUE {
                return Err(Error::TooLong);
            }
            out.push(a.typ);
            out.push(a.value.len() as u8 + 2);
            out.extend_from_slice(&a.value);
        }
        if out.len() > MAX_LEN {
            return Err(Error::TooLong);
        }
        let len = (out.len() as u16).to_be_bytes();
        out[2..4].copy_from_slice(&len);
        Ok(out)
    }

    /// An Access-Request: `self.authenticator` is the caller's random Request Authenticator;
    /// a Message-Authenticator is added (RFC 3579 §3.2; servers hardened against forged
    /// replies require it) unless the packet has one.
    pub fn encode_access_request(&self, secret: &[u8]) -> Result<Vec<u8>, Error> {
        let mut p = self.clone();
        p.ensure_message_authenticator();
        let mut out = p.encode()?;
        fill_message_authenticator(&mut out, secret);
        Ok(out)
    }

    /// An Accounting-Request, CoA-Request or Disconnect-Request: the Request Authenticator is
    /// MD5(packet with a zero authenticator ‖ secret) (RFC 2866 §3, RFC 5176 §3.5); a
    /// Message-Authenticator in the packet is computed over the zero authenticator.
    pub fn encode_request(&self, secret: &[u8]) -> Result<Vec<u8>, Error> {
        let mut p = self.clone();
        p.authenticator = [0; 16];
        let mut out = p.encode()?;
        fill_message_authenticator(&mut out, secret);
        let digest = md5_with_secret(&out, secret);
        out[4..HEADER_LEN].copy_from_slice(&digest);
        Ok(out)
    }

    /// A response to the request whose authenticator was `request_authenticator`: the
    /// Response Authenticator MD5(Code ‖ Identifier ‖ Length ‖ Request Authenticator ‖
    /// attributes ‖ secret) (RFC 2865 §3); a Message-Authenticator in the packet is computed
    /// first, over the Request Authenticator (RFC 3579 §3.2).
    pub fn encode_response(
        &self,
        secret: &[u8],
        request_authenticator: &[u8; 16],
    ) -> Result<Vec<u8>, Error> {
        let mut p = self.clone();
        p.authenticator = *request_authenticator;
        let mut out = p.encode()?;
        fill_message_authenticator(&mut out, secret);
        let digest = md5_with_secret(&out, secret);
        out[4..HEADER_LEN].copy_from_slice(&digest);
        Ok(out)
    }

    fn ensure_message_authenticator(&mut self) {
        if self.get(attr::MESSAGE_AUTHENTICATOR).is_none() {
            self.add(attr::MESSAGE_AUTHENTICATOR, [0u8; 16]);
        }
    }
}

fn md5_with_secret(bytes: &[u8], secret: &[u8]) -> [u8; 16] {
    let mut h = Md5::new();
    h.update(bytes);
    h.update(secret);
    h.finalize().into()
}

/// Offsets of the value of every Message-Authenticator attribute in a well-formed packet.
fn message_authenticator_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut found = Vec::new();
    let mut i = HEADER_LEN;
    while i + 2 <= bytes.len() {
        let l = bytes[i + 1] as usize;
        if l < 2 || i + l > bytes.len() {
            break;
        }
        if bytes[i] == attr::MESSAGE_AUTHENTICATOR && l == 18 {
            found.push(i + 2);
        }
        i += l;
    }
    found
}

/// HMAC-MD5 of `bytes` (with the Message-Authenticator at `at` zeroed) keyed by `secret`.
fn hmac_md5(bytes: &[u8], at: usize, secret: &[u8]) -> [u8; 16] {
    let mut copy = bytes.to_vec();
    copy[at..at + 16].fill(0);
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match HmacMd5::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return [0; 16],
    };
    mac.update(&copy);
    mac.finalize().into_bytes().into()
}

/// Compute the Message-Authenticator over the packet as it is (its authenticator field holds
/// what RFC 3579 §3.2 says for this kind of packet) and write it in.
fn fill_message_authenticator(bytes: &mut [u8], secret: &[u8]) {
    if let Some(&at) = message_authenticator_offsets(bytes).first() {
        let mac = hmac_md5(bytes, at, secret);
        bytes[at..at + 16].copy_from_slice(&mac);
    }
}

/// Check a Message-Authenticator when the packet has one: `auth_field` is what the
/// authenticator field held when it was computed. More than one is invalid (RFC 3579 §3.2).
fn message_authenticator_ok(bytes: &[u8], secret: &[u8], auth_field: &[u8; 16]) -> bool {
    let offsets = message_authenticator_offsets(bytes);
    match offsets.as_slice() {
        [] => true,
        [at] => {
            let mut copy = bytes.to_vec();
            copy[4..HEADER_LEN].copy_from_slice(auth_field);
            ct_eq(&hmac_md5(&copy, *at, secret), &bytes[*at..*at + 16])
        }
        _ => false,
    }
}

/// The packet's own octets (up to Length), when it parses.
fn own_bytes(bytes: &[u8]) -> Option<&[u8]> {
    let len = u16::from_be_bytes([*bytes.get(2)?, *bytes.get(3)?]) as usize;
    if !(HEADER_LEN..=MAX_LEN).contains(&len) {
        return None;
    }
    bytes.get(..len)
}

/// Whether `bytes` is a response to the request with `request_authenticator`, signed with
/// `secret`: its Response Authenticator, and its Message-Authenticator when present (required
/// when `require_message_authenticator`).
pub fn verify_response(
    bytes: &[u8],
    secret: &[u8],
    request_authenticator: &[u8; 16],
    require_message_authenticator: bool,
) -> bool {
    let Some(bytes) = own_bytes(bytes) else {
        return false;
    };
    if Packet::decode(bytes).is_err() {
        return false;
    }
    let mut copy = bytes.to_vec();
    copy[4..HEADER_LEN].copy_from_slice(request_authenticator);
    if !ct_eq(&md5_with_secret(&copy, secret), &bytes[4..HEADER_LEN]) {
        return false;
    }
    if require_message_authenticator && message_authenticator_offsets(bytes).is_empty() {
        return false;
    }
    message_authenticator_ok(bytes, secret, request_authenticator)
}

/// Whether an Accounting-Request, CoA-Request or Disconnect-Request is signed with `secret`
/// (RFC 2866 §3, RFC 5176 §3.5), including its Message-Authenticator when present.
pub fn verify_request(bytes: &[u8], secret: &[u8]) -> bool {
    let Some(bytes) = own_bytes(bytes) else {
        return false;
    };
    if Packet::decode(bytes).is_err() || bytes[0] == code::ACCESS_REQUEST {
        return false;
    }
    let mut copy = bytes.to_vec();
    copy[4..HEADER_LEN].fill(0);
    if !ct_eq(&md5_with_secret(&copy, secret), &bytes[4..HEADER_LEN]) {
        return false;
    }
    message_authenticator_ok(bytes, secret, &[0; 16])
}

/// Whether an Access-Request's Message-Authenticator (when present) is right.
pub fn verify_access_request(bytes: &[u8], secret: &[u8]) -> bool {
    let Some(bytes) = own_bytes(bytes) else {
        return false;
    };
    let mut auth = [0; 16];
    auth.copy_from_slice(&bytes[4..HEADER_LEN]);
    Packet::decode(bytes).is_ok() && message_authenticator_ok(bytes, secret, &auth)
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dict::{ms, vendor};

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 2865 §7.1: the Access-Accept answering nemo's PAP request, with its Response
    /// Authenticator computed from the request's authenticator and the secret "xyzzy5461".
    #[test]
    fn rfc2865_access_accept_vector() {
        let request_auth: [u8; 16] = hex("0f403f9473978057bd83d5cb98f4227a").try_into().unwrap();
        let accept = hex("02 00 00 26 86 fe 22 0e 76 24 ba 2a 10 05 f6 bf 9b 55 e0 b2
             06 06 00 00 00 01 0f 06 00 00 00 00 0e 06 c0 a8 01 03");
        assert!(verify_response(&accept, b"xyzzy5461", &request_auth, false));
        assert!(!verify_response(
            &accept,
            b"xyzzy5462",
            &request_auth,
            false
        ));
        assert!(!verify_response(&accept, b"xyzzy5461", &request_auth, true));
        let p = Packet::decode(&accept).unwrap();
        assert_eq!(p.code, code::ACCESS_ACCEPT);
        assert_eq!(p.get_u32(attr::SERVICE_TYPE), Some(1));
        assert_eq!(p.get_ipv4(14), Some(Ipv4Addr::new(192, 168, 1, 3)));
        // Re-encoding the decoded reply as a response gives the same octets.
        assert_eq!(
            p.encode_response(b"xyzzy5461", &request_auth).unwrap(),
            accept
        );
        // The request itself parses, with the hidden password where the RFC shows it.
        let request = hex("01 00 00 38 0f 40 3f 94 73 97 80 57 bd 83 d5 cb 98 f4 22 7a
             01 06 6e 65 6d 6f 02 12 0d be 70 8d 93 d4 13 ce 31 96 e4 3f
             78 2a 0a ee 04 06 c0 a8 01 10 05 06 00 00 00 03");
        let r = Packet::decode(&request).unwrap();
        assert_eq!(r.authenticator, request_auth);
        assert_eq!(r.get_text(attr::USER_NAME).as_deref(), Some("nemo"));
        assert_eq!(
            r.get(attr::USER_PASSWORD),
            Some(&hex("0dbe708d93d413ce3196e43f782a0aee")[..])
        );
        assert_eq!(r.encode().unwrap(), request);
    }

    /// RFC 2866 §3 / RFC 5176 §3.5 request authenticators, and Message-Authenticators on
    /// every kind of packet verify with the right secret only, and break on any flipped bit.
    #[test]
    fn signed_packets_verify_and_tamper_fails() {
        let mut acct = Packet::new(code::ACCOUNTING_REQUEST, 7);
        acct.add(attr::USER_NAME, "alice")
            .add_u32(attr::ACCT_STATUS_TYPE, 1);
        let bytes = acct.encode_request(b"s3cret").unwrap();
        assert!(verify_request(&bytes, b"s3cret"));
        assert!(!verify_request(&bytes, b"s3creT"));
        for i in 0..bytes.len() {
            let mut t = bytes.clone();
            t[i] ^= 0x10;
            assert!(!verify_request(&t, b"s3cret"), "flip at {i}");
        }

        let mut req = Packet::new(code::ACCESS_REQUEST, 9);
        req.authenticator = [0x42; 16];
        req.add(attr::USER_NAME, "bob");
        let bytes = req.encode_access_request(b"k").unwrap();
        assert!(verify_access_request(&bytes, b"k"));
        assert!(!verify_access_request(&bytes, b"j"));
        let decoded = Packet::decode(&bytes).unwrap();
        assert_eq!(decoded.get(attr::MESSAGE_AUTHENTICATOR).unwrap().len(), 16);

        let mut accept = Packet::new(code::ACCESS_ACCEPT, 9);
        accept.add(attr::MESSAGE_AUTHENTICATOR, [0u8; 16]);
        accept.add(attr::REPLY_MESSAGE, "hi");
        let reply = accept.encode_response(b"k", &[0x42; 16]).unwrap();
        assert!(verify_response(&reply, b"k", &[0x42; 16], true));
        assert!(!verify_response(&reply, b"k", &[0x43; 16], false));
        // Response Authenticator recomputed over a forged Message-Authenticator: still fails.
        let mut forged = reply.clone();
        let at = message_authenticator_offsets(&forged)[0];
        forged[at] ^= 1;
        forged[4..20].copy_from_slice(&[0x42; 16]);
        let d = md5_with_secret(&forged, b"k");
        forged[4..20].copy_from_slice(&d);
        assert!(!verify_response(&forged, b"k", &[0x42; 16], false));

        let mut dm = Packet::new(code::DISCONNECT_REQUEST, 1);
        dm.add(attr::USER_NAME, "alice");
        dm.add(attr::MESSAGE_AUTHENTICATOR, [0u8; 16]);
        let bytes = dm.encode_request(b"dae").unwrap();
        assert!(verify_request(&bytes, b"dae"));
        assert!(!verify_request(&bytes, b"dAe"));
    }

    #[test]
    fn vendor_attributes() {
        let mut p = Packet::new(code::ACCESS_ACCEPT, 1);
        p.add_vendor(vendor::MICROSOFT, ms::PRIMARY_DNS_SERVER, &[10, 0, 0, 53]);
        // Two sub-attributes in one Vendor-Specific attribute.
        let mut v = 311u32.to_be_bytes().to_vec();
        v.extend_from_slice(&[
            ms::CHAP_ERROR,
            3,
            b'x',
            ms::SECONDARY_DNS_SERVER,
            6,
            10,
            0,
            0,
            54,
        ]);
        p.add(attr::VENDOR_SPECIFIC, v);
        let p = Packet::decode(&p.encode().unwrap()).unwrap();
        assert_eq!(
            p.get_vendor(vendor::MICROSOFT, ms::PRIMARY_DNS_SERVER),
            Some(&[10, 0, 0, 53][..])
        );
        assert_eq!(
            p.get_vendor(vendor::MICROSOFT, ms::SECONDARY_DNS_SERVER),
            Some(&[10, 0, 0, 54][..])
        );
        assert_eq!(p.get_vendor(9, ms::PRIMARY_DNS_SERVER), None);
    }

    #[test]
    fn malformed_input_is_an_error() {
        assert_eq!(Packet::decode(&[1; 19]), Err(Error::Truncated));
        let mut b = vec![1, 0, 0, 19];
        b.extend_from_slice(&[0; 16]);
        assert_eq!(Packet::decode(&b), Err(Error::BadLength));
        let mut b = vec![1, 0, 0, 22];
        b.extend_from_slice(&[0; 16]);
        b.extend_from_slice(&[1, 1]);
        assert_eq!(Packet::decode(&b), Err(Error::BadAttribute));
        let mut b = vec![1, 0, 0, 24];
        b.extend_from_slice(&[0; 16]);
        assert_eq!(Packet::decode(&b), Err(Error::Truncated));
        let mut p = Packet::new(1, 0);
        p.add(attr::CLASS, vec![0; 254]);
        assert_eq!(p.encode(), Err(Error::TooLong));
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics_and_round_trips(bytes in proptest::collection::vec(0u8..=255, 0..300)) {
            if let Ok(p) = Packet::decode(&bytes) {
                let again = p.encode().unwrap();
                proptest::prop_assert_eq!(Packet::decode(&again).unwrap(), p);
            }
            let _ = verify_request(&bytes, b"x");
            let _ = verify_response(&bytes, b"x", &[0; 16], true);
        }
    }
}
