//! Wire format of PPP control packets (docs/reference/rfc.md §4.5–§4.11).
//!
//! Every control protocol (LCP, PAP, CHAP, IPCP, IPv6CP) shares the header
//! `Code (1) | Identifier (1) | Length (2) | Data`. Octets beyond Length are padding and are
//! ignored. Configuration options are `Type (1) | Length (1) | Data` TLVs. Parsing borrows
//! from the input and never panics; emitting allocates a `Vec`.

use std::fmt;

/// Errors from parsing PPP control packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PppError {
    /// Fewer octets than the header or the Length field says.
    Truncated,
    /// Length field smaller than the 4-octet header.
    BadLength,
    /// A configuration option with a length below 2 or past the end of the data.
    BadOption,
    /// A PAP / CHAP body that does not match its code's layout.
    BadBody,
    /// The frame's protocol field is missing or not a valid encoding.
    BadProtocol,
    /// The packet is too large to encode a 16-bit Length.
    TooLong,
    /// The network layer is not up for this packet.
    NotUp,
}

impl fmt::Display for PppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            PppError::Truncated => "truncated packet",
            PppError::BadLength => "bad length field",
            PppError::BadOption => "malformed configuration option",
            PppError::BadBody => "malformed packet body",
            PppError::BadProtocol => "bad protocol field",
            PppError::TooLong => "packet too long",
            PppError::NotUp => "network layer not up",
        };
        f.write_str(s)
    }
}

impl std::error::Error for PppError {}

/// LCP / NCP packet codes (docs/reference/rfc.md §4.5).
pub mod code {
    /// Configure-Request.
    pub const CONF_REQ: u8 = 1;
    /// Configure-Ack.
    pub const CONF_ACK: u8 = 2;
    /// Configure-Nak.
    pub const CONF_NAK: u8 = 3;
    /// Configure-Reject.
    pub const CONF_REJ: u8 = 4;
    /// Terminate-Request.
    pub const TERM_REQ: u8 = 5;
    /// Terminate-Ack.
    pub const TERM_ACK: u8 = 6;
    /// Code-Reject.
    pub const CODE_REJ: u8 = 7;
    /// Protocol-Reject (LCP only).
    pub const PROTO_REJ: u8 = 8;
    /// Echo-Request (LCP only).
    pub const ECHO_REQ: u8 = 9;
    /// Echo-Reply (LCP only).
    pub const ECHO_REP: u8 = 10;
    /// Discard-Request (LCP only).
    pub const DISCARD_REQ: u8 = 11;
}

/// A control packet: code, identifier and the data covered by Length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// Code.
    pub code: u8,
    /// Identifier.
    pub identifier: u8,
    /// Data (Length - 4 octets; padding excluded).
    pub data: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Parse a packet; octets past Length are padding and ignored (docs/reference/rfc.md §4.5).
    pub fn parse(buf: &'a [u8]) -> Result<Packet<'a>, PppError> {
        if buf.len() < 4 {
            return Err(PppError::Truncated);
        }
        let length = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
        if length < 4 {
            return Err(PppError::BadLength);
        }
        let data = buf.get(4..length).ok_or(PppError::Truncated)?;
        Ok(Packet {
            code: buf[0],
            identifier: buf[1],
            data,
        })
    }

    /// Total encoded length (header + data).
    pub fn len(&self) -> usize {
        4 + self.data.len()
    }

    /// Always false: a packet has at least its header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Encode the packet.
    pub fn emit(&self) -> Result<Vec<u8>, PppError> {
        emit_packet(self.code, self.identifier, self.data)
    }
}

/// Encode `code | identifier | length | data`.
pub fn emit_packet(code: u8, identifier: u8, data: &[u8]) -> Result<Vec<u8>, PppError> {
    let len = u16::try_from(4 + data.len()).map_err(|_| PppError::TooLong)?;
    let mut v = Vec::with_capacity(4 + data.len());
    v.push(code);
    v.push(identifier);
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(data);
    Ok(v)
}

/// Prefix an information field with the uncompressed 2-octet protocol (no FF 03).
pub fn frame(protocol: u16, info: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(2 + info.len());
    v.extend_from_slice(&protocol.to_be_bytes());
    v.extend_from_slice(info);
    v
}

/// Split a frame (FF 03 optional) into protocol and information field.
pub fn split_frame(frame: &[u8]) -> Result<(u16, &[u8]), PppError> {
    let f = ul2tp_wire::ppp::strip_address_control(frame);
    let (proto, n) = ul2tp_wire::ppp::ppp_protocol(f).ok_or(PppError::BadProtocol)?;
    Ok((proto, f.get(n..).unwrap_or(&[])))
}

/// One configuration option TLV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfOption<'a> {
    /// Type.
    pub kind: u8,
    /// Data (Length - 2 octets).
    pub data: &'a [u8],
}

impl ConfOption<'_> {
    /// The data as a big-endian u16 when it is exactly 2 octets.
    pub fn u16(&self) -> Option<u16> {
        <[u8; 2]>::try_from(self.data).ok().map(u16::from_be_bytes)
    }

    /// The data as a big-endian u32 when it is exactly 4 octets.
    pub fn u32(&self) -> Option<u32> {
        <[u8; 4]>::try_from(self.data).ok().map(u32::from_be_bytes)
    }

    /// The data as a big-endian u64 when it is exactly 8 octets.
    pub fn u64(&self) -> Option<u64> {
        <[u8; 8]>::try_from(self.data).ok().map(u64::from_be_bytes)
    }
}

/// Parse a whole option list; any malformed TLV fails the list (RCR− / discard).
pub fn parse_options(mut data: &[u8]) -> Result<Vec<ConfOption<'_>>, PppError> {
    let mut out = Vec::new();
    while !data.is_empty() {
        if data.len() < 2 {
            return Err(PppError::BadOption);
        }
        let len = usize::from(data[1]);
        if len < 2 || len > data.len() {
            return Err(PppError::BadOption);
        }
        out.push(ConfOption {
            kind: data[0],
            data: &data[2..len],
        });
        data = &data[len..];
    }
    Ok(out)
}

/// Append one option TLV to `out`; data longer than 253 octets is truncated.
pub fn push_option(out: &mut Vec<u8>, kind: u8, data: &[u8]) {
    let data = &data[..data.len().min(253)];
    out.push(kind);
    // At most 255 after the truncation above.
    out.push(u8::try_from(data.len() + 2).unwrap_or(u8::MAX));
    out.extend_from_slice(data);
}

/// Encode a list of options.
pub fn emit_options(opts: &[ConfOption<'_>]) -> Vec<u8> {
    let mut v = Vec::new();
    for o in opts {
        push_option(&mut v, o.kind, o.data);
    }
    v
}

/// A PAP packet body (RFC 1334 §2, docs/reference/rfc.md §4.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pap<'a> {
    /// Authenticate-Request (code 1).
    Request {
        /// Peer-ID.
        peer_id: &'a [u8],
        /// Password.
        password: &'a [u8],
    },
    /// Authenticate-Ack (code 2).
    Ack {
        /// Message.
        message: &'a [u8],
    },
    /// Authenticate-Nak (code 3).
    Nak {
        /// Message.
        message: &'a [u8],
    },
}

fn take_counted(data: &[u8]) -> Result<(&[u8], &[u8]), PppError> {
    let (&n, rest) = data.split_first().ok_or(PppError::BadBody)?;
    let n = usize::from(n);
    if rest.len() < n {
        return Err(PppError::BadBody);
    }
    Ok(rest.split_at(n))
}

fn push_counted(out: &mut Vec<u8>, v: &[u8]) {
    let v = &v[..v.len().min(255)];
    out.push(u8::try_from(v.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(v);
}

impl<'a> Pap<'a> {
    /// Parse a PAP body for `code`.
    pub fn parse(code: u8, data: &'a [u8]) -> Result<Pap<'a>, PppError> {
        match code {
            1 => {
                let (peer_id, rest) = take_counted(data)?;
                let (password, _) = take_counted(rest)?;
                Ok(Pap::Request { peer_id, password })
            }
            2 | 3 => {
                // Some implementations send an empty body instead of a zero Msg-Length.
                let message = if data.is_empty() {
                    data
                } else {
                    take_counted(data)?.0
                };
                Ok(if code == 2 {
                    Pap::Ack { message }
                } else {
                    Pap::Nak { message }
                })
            }
            _ => Err(PppError::BadBody),
        }
    }

    /// The code of this packet.
    pub fn code(&self) -> u8 {
        match self {
            Pap::Request { .. } => 1,
            Pap::Ack { .. } => 2,
            Pap::Nak { .. } => 3,
        }
    }

    /// Encode the body (without the 4-octet header).
    pub fn emit_body(&self) -> Vec<u8> {
        let mut v = Vec::new();
        match self {
            Pap::Request { peer_id, password } => {
                push_counted(&mut v, peer_id);
                push_counted(&mut v, password);
            }
            Pap::Ack { message } | Pap::Nak { message } => push_counted(&mut v, message),
        }
        v
    }
}

/// A CHAP packet body (RFC 1994, docs/reference/rfc.md §4.8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chap<'a> {
    /// Challenge (code 1).
    Challenge {
        /// Challenge value.
        value: &'a [u8],
        /// Authenticator name.
        name: &'a [u8],
    },
    /// Response (code 2).
    Response {
        /// Response value (16 octets for MD5).
        value: &'a [u8],
        /// Peer name.
        name: &'a [u8],
    },
    /// Success (code 3).
    Success {
        /// Message.
        message: &'a [u8],
    },
    /// Failure (code 4).
    Failure {
        /// Message.
        message: &'a [u8],
    },
}

impl<'a> Chap<'a> {
    /// Parse a CHAP body for `code`.
    pub fn parse(code: u8, data: &'a [u8]) -> Result<Chap<'a>, PppError> {
        match code {
            1 | 2 => {
                let (value, name) = take_counted(data)?;
                Ok(if code == 1 {
                    Chap::Challenge { value, name }
                } else {
                    Chap::Response { value, name }
                })
            }
            3 => Ok(Chap::Success { message: data }),
            4 => Ok(Chap::Failure { message: data }),
            _ => Err(PppError::BadBody),
        }
    }

    /// The code of this packet.
    pub fn code(&self) -> u8 {
        match self {
            Chap::Challenge { .. } => 1,
            Chap::Response { .. } => 2,
            Chap::Success { .. } => 3,
            Chap::Failure { .. } => 4,
        }
    }

    /// Encode the body (without the 4-octet header).
    pub fn emit_body(&self) -> Vec<u8> {
        let mut v = Vec::new();
        match self {
            Chap::Challenge { value, name } | Chap::Response { value, name } => {
                push_counted(&mut v, value);
                v.extend_from_slice(name);
            }
            Chap::Success { message } | Chap::Failure { message } => v.extend_from_slice(message),
        }
        v
    }
}

/// CHAP-MD5 response value: MD5(identifier ‖ secret ‖ challenge) (RFC 1994 §4.1, docs/reference/rfc.md §4.8).
pub fn chap_md5_response(identifier: u8, secret: &[u8], challenge: &[u8]) -> [u8; 16] {
    use md5::{Digest, Md5};
    let mut h = Md5::new();
    h.update([identifier]);
    h.update(secret);
    h.update(challenge);
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn chap_md5_vector() {
        // MD5(0x01 || "secret" || 00 01 .. 0f), computed independently with
        // `printf '\x01secret' ; printf '\x00\x01...\x0f'` | md5sum.
        let challenge: Vec<u8> = (0u8..16).collect();
        let r = chap_md5_response(1, b"secret", &challenge);
        assert_eq!(hex(&r), CHAP_VECTOR);
    }

    const CHAP_VECTOR: &str = "740e86463bda3a4d7017d6e0fba0699d";

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn header_and_padding() {
        let buf = [1u8, 7, 0, 8, 1, 4, 5, 0xdc, 0xaa, 0xbb];
        let p = Packet::parse(&buf).unwrap();
        assert_eq!((p.code, p.identifier, p.data), (1, 7, &buf[4..8]));
        assert_eq!(p.emit().unwrap(), buf[..8].to_vec());
        assert_eq!(Packet::parse(&[1, 1, 0, 3]), Err(PppError::BadLength));
        assert_eq!(Packet::parse(&[1, 1, 0, 9, 0]), Err(PppError::Truncated));
        let o = parse_options(p.data).unwrap();
        assert_eq!(o[0].u16(), Some(1500));
        assert_eq!(parse_options(&[1, 1]), Err(PppError::BadOption));
        assert_eq!(parse_options(&[1, 5, 0]), Err(PppError::BadOption));
    }

    #[test]
    fn pap_and_chap_bodies_roundtrip() {
        let req = Pap::Request {
            peer_id: b"lab",
            password: b"pw",
        };
        let b = req.emit_body();
        assert_eq!(b, b"\x03lab\x02pw");
        assert_eq!(Pap::parse(1, &b).unwrap(), req);
        assert_eq!(Pap::parse(1, b"\x05lab"), Err(PppError::BadBody));
        let ch = Chap::Challenge {
            value: &[9; 16],
            name: b"lns",
        };
        let b = ch.emit_body();
        assert_eq!(b.len(), 1 + 16 + 3);
        assert_eq!(Chap::parse(1, &b).unwrap(), ch);
    }

    proptest! {
        #[test]
        fn parsers_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(p) = Packet::parse(&buf) {
                let _ = parse_options(p.data);
                for c in 0..6 {
                    let _ = Pap::parse(c, p.data);
                    let _ = Chap::parse(c, p.data);
                }
                prop_assert_eq!(p.emit().unwrap(), buf[..p.len()].to_vec());
            }
            let _ = split_frame(&buf);
        }

        #[test]
        fn options_roundtrip(opts in proptest::collection::vec((any::<u8>(), proptest::collection::vec(any::<u8>(), 0..20)), 0..8)) {
            let mut enc = Vec::new();
            for (k, d) in &opts {
                push_option(&mut enc, *k, d);
            }
            let parsed = parse_options(&enc).unwrap();
            prop_assert_eq!(parsed.len(), opts.len());
            prop_assert_eq!(emit_options(&parsed), enc);
        }
    }
}
