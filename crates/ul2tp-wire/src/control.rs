//! The L2TP control-message header, shared by L2TPv2 (RFC 2661 §3.1) and L2TPv3 (RFC 3931 §3.2.1).
//!
//! Layout (12 octets, docs/reference/rfc.md §1.1 / §2.2):
//!
//! ```text
//! v2: |T|L|x|x|S|x|O|P|x|x|x|x| Ver=2 | Length | Tunnel ID (16) | Session ID (16) | Ns | Nr |
//! v3: |T|L|x|x|S|x|x|x|x|x|x|x| Ver=3 | Length | Control Connection ID (32)      | Ns | Nr |
//! ```
//!
//! Over L2TPv3/IP (protocol 115) four zero octets (session id 0) precede the same header; the
//! Length field does not count them (docs/reference/rfc.md §2.2). [`Encap`] selects the framing.
//!
//! Design: [`ControlHeader`] is a plain value. [`ControlHeader::parse`] checks the T, L and S
//! bits, the version, that Length is at least 12 and does not run past the buffer, and returns
//! the header together with the byte range of the AVP body (relative to the buffer passed in).
//! Octets after Length are ignored (trailing garbage in a datagram is not part of the message).
//! A message whose body range is empty is a ZLB acknowledgement (docs/reference/rfc.md §1.2).
//! [`ControlHeader::emit`] writes the header; [`set_ns_nr`] and [`set_length`] patch a built
//! message in place so that the control engine can fill Ns/Nr at (re)transmit time.

use core::fmt;
use core::ops::Range;

/// T bit: control message (RFC 2661 §3.1).
pub const FLAG_T: u16 = 0x8000;
/// L bit: Length field present.
pub const FLAG_L: u16 = 0x4000;
/// S bit: Ns/Nr present.
pub const FLAG_S: u16 = 0x0800;
/// O bit (v2 only): Offset Size present; MUST be 0 in control messages.
pub const FLAG_O: u16 = 0x0200;
/// P bit (v2 only): priority; MUST be 0 in control messages.
pub const FLAG_P: u16 = 0x0100;
/// Size of the control header proper (without the 4 zero octets of L2TPv3/IP).
pub const HEADER_LEN: usize = 12;
/// Size of the all-zero session id that precedes a control header over L2TPv3/IP.
pub const IP_PREFIX_LEN: usize = 4;

/// L2TP protocol version carried in the low nibble of the flags word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// L2TPv2 (RFC 2661).
    V2,
    /// L2TPv3 (RFC 3931).
    V3,
}

impl Version {
    /// The Ver nibble value (2 or 3).
    pub const fn number(self) -> u16 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }

    /// Version from a Ver nibble value; `None` for anything but 2 and 3.
    pub const fn from_number(n: u16) -> Option<Version> {
        match n {
            2 => Some(Version::V2),
            3 => Some(Version::V3),
            _ => None,
        }
    }

    /// The version as the API's `proto_version` attribute and the data header nibble carry it.
    pub const fn as_u8(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }

    /// [`Version::from_number`] for an 8-bit value.
    pub const fn from_u8(v: u8) -> Option<Version> {
        Version::from_number(v as u16)
    }

    /// Largest data-message sequence number (docs/reference/kernel.md §2.1): Ns/Nr are 16 bits
    /// in L2TPv2 and 24 bits in the L2TPv3 default sublayer.
    pub const fn nr_max(self) -> u32 {
        match self {
            Version::V2 => 0xffff,
            Version::V3 => 0x00ff_ffff,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "L2TPv{}", self.number())
    }
}

/// How L2TP is carried: the encapsulation of a tunnel, and the transport a datagram (data or
/// control) arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encap {
    /// UDP (v2 and v3): the payload starts at the L2TP header (a control message at its
    /// flags word).
    Udp,
    /// L2TPv3 over IP protocol 115: the payload starts at the session id; a control message
    /// has 4 zero octets in front of its flags word.
    Ip,
}

impl Encap {
    /// Octets in front of the flags word (0 for UDP, 4 for IP).
    pub const fn prefix_len(self) -> usize {
        match self {
            Encap::Udp => 0,
            Encap::Ip => IP_PREFIX_LEN,
        }
    }
}

/// Why a control header was rejected. Every one of these means "discard the datagram"
/// (RFC 2661 §7.1: a malformed header is discarded, not answered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlError {
    /// Fewer octets than a control header needs.
    Truncated,
    /// T bit clear: a data message.
    NotControl,
    /// L or S bit clear (both MUST be set in control messages).
    MissingLengthOrSequence,
    /// v2 O bit set in a control message (it would change the layout; it MUST be 0).
    OffsetInControl,
    /// The Ver nibble is not the one expected (or not 2/3).
    BadVersion(u16),
    /// Length is below 12 or exceeds the octets available.
    BadLength {
        /// Value of the Length field.
        length: u16,
        /// Octets available from the flags word on.
        available: usize,
    },
    /// Over L2TPv3/IP the 4 octets in front of the header were not zero (not a control message).
    NonZeroSessionId,
    /// A v2 header cannot carry a tunnel id above 65535 (emit side).
    TunnelIdRange,
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlError::Truncated => f.write_str("control header truncated"),
            ControlError::NotControl => f.write_str("T bit clear: not a control message"),
            ControlError::MissingLengthOrSequence => {
                f.write_str("control message without L or S bit")
            }
            ControlError::OffsetInControl => f.write_str("O bit set in a control message"),
            ControlError::BadVersion(v) => write!(f, "unexpected L2TP version {v}"),
            ControlError::BadLength { length, available } => {
                write!(
                    f,
                    "bad control Length {length} ({available} octets available)"
                )
            }
            ControlError::NonZeroSessionId => {
                f.write_str("L2TPv3/IP packet with non-zero session id is not control")
            }
            ControlError::TunnelIdRange => f.write_str("v2 tunnel id above 65535"),
        }
    }
}

impl std::error::Error for ControlError {}

/// A parsed control header (RFC 2661 §3.1, RFC 3931 §3.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ControlHeader {
    /// Protocol version from the Ver nibble.
    pub version: Version,
    /// The whole flags word as received (reserved bits kept for diagnostics).
    pub flags: u16,
    /// Length field: octets from the flags word to the end of the message.
    pub length: u16,
    /// Receiver's tunnel id (v2, 16 bit) or control connection id (v3, 32 bit).
    pub tunnel_id: u32,
    /// Receiver's session id (v2 only; always 0 for v3).
    pub session_id: u16,
    /// Sequence number of this message.
    pub ns: u16,
    /// Next sequence number expected from the peer.
    pub nr: u16,
}

/// Read the Ver nibble of a UDP-framed L2TP packet without validating anything else
/// (RFC 3931 §4.7: the version must be checked before any other bit is interpreted).
pub fn peek_version(buf: &[u8]) -> Option<u16> {
    buf.get(1).map(|b| u16::from(b & 0x0f))
}

impl ControlHeader {
    /// A header for an outgoing message: flags T|L|S|Ver, length 12 (patched by the builder).
    pub fn new(version: Version, tunnel_id: u32, session_id: u16) -> ControlHeader {
        ControlHeader {
            version,
            flags: FLAG_T | FLAG_L | FLAG_S | version.number(),
            length: HEADER_LEN as u16,
            tunnel_id,
            session_id: match version {
                Version::V2 => session_id,
                Version::V3 => 0,
            },
            ns: 0,
            nr: 0,
        }
    }

    /// Parse a UDP-framed control message of the expected version. Returns the header and the
    /// range of the AVP body within `buf` (empty for a ZLB).
    pub fn parse(
        buf: &[u8],
        version: Version,
    ) -> Result<(ControlHeader, Range<usize>), ControlError> {
        Self::parse_encap(buf, version, Encap::Udp)
    }

    /// Parse a control message with the given framing. For [`Encap::Ip`] `buf` starts at the
    /// 4 zero octets; the returned body range is still relative to `buf`.
    pub fn parse_encap(
        buf: &[u8],
        version: Version,
        encap: Encap,
    ) -> Result<(ControlHeader, Range<usize>), ControlError> {
        let (hdr, body) = Self::parse_any(buf, encap)?;
        if hdr.version != version {
            return Err(ControlError::BadVersion(hdr.version.number()));
        }
        Ok((hdr, body))
    }

    /// Parse a control message accepting either version (for a v3 listener on UDP 1701 that
    /// must also accept a Ver=2 SCCRQ, docs/reference/rfc.md §2.4). Over IP only v3 is accepted.
    pub fn parse_any(
        buf: &[u8],
        encap: Encap,
    ) -> Result<(ControlHeader, Range<usize>), ControlError> {
        let pre = encap.prefix_len();
        if encap == Encap::Ip {
            let zero = buf.get(..IP_PREFIX_LEN).ok_or(ControlError::Truncated)?;
            if zero != [0, 0, 0, 0] {
                return Err(ControlError::NonZeroSessionId);
            }
        }
        let msg = buf.get(pre..).ok_or(ControlError::Truncated)?;
        if msg.len() < 2 {
            return Err(ControlError::Truncated);
        }
        let flags = u16::from_be_bytes([msg[0], msg[1]]);
        // RFC 3931 §4.7: look at Ver before anything else.
        let ver = flags & 0x000f;
        let version = match Version::from_number(ver) {
            Some(Version::V2) if encap == Encap::Ip => return Err(ControlError::BadVersion(ver)),
            Some(v) => v,
            None => return Err(ControlError::BadVersion(ver)),
        };
        if flags & FLAG_T == 0 {
            return Err(ControlError::NotControl);
        }
        if flags & FLAG_L == 0 || flags & FLAG_S == 0 {
            return Err(ControlError::MissingLengthOrSequence);
        }
        // RFC 2661 §3.1: O MUST be 0 in control messages. Honouring it would move the body,
        // so reject. P is reserved-like for control and ignored. In v3 these bits are reserved
        // and ignored on receipt (RFC 3931 §3.2.1).
        if version == Version::V2 && flags & FLAG_O != 0 {
            return Err(ControlError::OffsetInControl);
        }
        if msg.len() < HEADER_LEN {
            return Err(ControlError::Truncated);
        }
        let length = u16::from_be_bytes([msg[2], msg[3]]);
        if usize::from(length) < HEADER_LEN || usize::from(length) > msg.len() {
            return Err(ControlError::BadLength {
                length,
                available: msg.len(),
            });
        }
        let (tunnel_id, session_id) = match version {
            Version::V2 => (
                u32::from(u16::from_be_bytes([msg[4], msg[5]])),
                u16::from_be_bytes([msg[6], msg[7]]),
            ),
            Version::V3 => (u32::from_be_bytes([msg[4], msg[5], msg[6], msg[7]]), 0),
        };
        let hdr = ControlHeader {
            version,
            flags,
            length,
            tunnel_id,
            session_id,
            ns: u16::from_be_bytes([msg[8], msg[9]]),
            nr: u16::from_be_bytes([msg[10], msg[11]]),
        };
        Ok((hdr, pre + HEADER_LEN..pre + usize::from(length)))
    }

    /// True if this header announces a ZLB (no AVPs at all, Length = 12).
    pub fn is_zlb(&self) -> bool {
        usize::from(self.length) == HEADER_LEN
    }

    /// Append the 12-octet header to `out` (without the IP prefix). Reserved flag bits are
    /// written as 0; Length is written as `self.length`.
    pub fn emit(&self, out: &mut Vec<u8>) -> Result<(), ControlError> {
        let flags = FLAG_T | FLAG_L | FLAG_S | self.version.number();
        out.extend_from_slice(&flags.to_be_bytes());
        out.extend_from_slice(&self.length.to_be_bytes());
        match self.version {
            Version::V2 => {
                let tid = u16::try_from(self.tunnel_id).map_err(|_| ControlError::TunnelIdRange)?;
                out.extend_from_slice(&tid.to_be_bytes());
                out.extend_from_slice(&self.session_id.to_be_bytes());
            }
            Version::V3 => out.extend_from_slice(&self.tunnel_id.to_be_bytes()),
        }
        out.extend_from_slice(&self.ns.to_be_bytes());
        out.extend_from_slice(&self.nr.to_be_bytes());
        Ok(())
    }

    /// The header as a 12-octet array (for ZLBs and tests).
    pub fn to_bytes(&self) -> Result<[u8; HEADER_LEN], ControlError> {
        let mut v = Vec::with_capacity(HEADER_LEN);
        self.emit(&mut v)?;
        let mut out = [0u8; HEADER_LEN];
        out.copy_from_slice(&v);
        Ok(out)
    }
}

/// Write Ns and Nr into a built control message in place. `msg` starts at the flags word
/// (for L2TPv3/IP pass the slice after the 4 zero octets). Fails if `msg` is shorter than a
/// header. After this, a v3 Message Digest must be (re)computed (see [`crate::digest`]).
pub fn set_ns_nr(msg: &mut [u8], ns: u16, nr: u16) -> Result<(), ControlError> {
    let f = msg.get_mut(8..HEADER_LEN).ok_or(ControlError::Truncated)?;
    f[..2].copy_from_slice(&ns.to_be_bytes());
    f[2..].copy_from_slice(&nr.to_be_bytes());
    Ok(())
}

/// Read Ns and Nr from a control message starting at the flags word.
pub fn ns_nr(msg: &[u8]) -> Option<(u16, u16)> {
    let f = msg.get(8..HEADER_LEN)?;
    Some((
        u16::from_be_bytes([f[0], f[1]]),
        u16::from_be_bytes([f[2], f[3]]),
    ))
}

/// Write the Length field of a control message starting at the flags word.
pub fn set_length(msg: &mut [u8], length: u16) -> Result<(), ControlError> {
    let f = msg.get_mut(2..4).ok_or(ControlError::Truncated)?;
    f.copy_from_slice(&length.to_be_bytes());
    Ok(())
}

/// Write the tunnel id (v2) / control connection id (v3) of a message starting at the flags
/// word, e.g. when the peer's id becomes known between building and sending.
pub fn set_tunnel_id(msg: &mut [u8], version: Version, tunnel_id: u32) -> Result<(), ControlError> {
    match version {
        Version::V2 => {
            let tid = u16::try_from(tunnel_id).map_err(|_| ControlError::TunnelIdRange)?;
            msg.get_mut(4..6)
                .ok_or(ControlError::Truncated)?
                .copy_from_slice(&tid.to_be_bytes());
        }
        Version::V3 => msg
            .get_mut(4..8)
            .ok_or(ControlError::Truncated)?
            .copy_from_slice(&tunnel_id.to_be_bytes()),
    }
    Ok(())
}

/// Build a ZLB acknowledgement (header only) for the given framing.
pub fn zlb(
    version: Version,
    encap: Encap,
    tunnel_id: u32,
    session_id: u16,
    ns: u16,
    nr: u16,
) -> Result<Vec<u8>, ControlError> {
    let mut h = ControlHeader::new(version, tunnel_id, session_id);
    h.ns = ns;
    h.nr = nr;
    let mut out = Vec::with_capacity(IP_PREFIX_LEN + HEADER_LEN);
    if encap == Encap::Ip {
        out.extend_from_slice(&[0; IP_PREFIX_LEN]);
    }
    h.emit(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_zlb_round_trip() {
        let b = zlb(Version::V2, Encap::Udp, 0x1234, 0x5678, 3, 4).unwrap();
        assert_eq!(b, [0xc8, 0x02, 0, 12, 0x12, 0x34, 0x56, 0x78, 0, 3, 0, 4]);
        let (h, body) = ControlHeader::parse(&b, Version::V2).unwrap();
        assert!(h.is_zlb());
        assert!(body.is_empty());
        assert_eq!(
            (h.tunnel_id, h.session_id, h.ns, h.nr),
            (0x1234, 0x5678, 3, 4)
        );
    }

    #[test]
    fn v3_ip_prefix() {
        let b = zlb(Version::V3, Encap::Ip, 0xdead_beef, 9, 1, 2).unwrap();
        assert_eq!(&b[..6], &[0, 0, 0, 0, 0xc8, 0x03]);
        let (h, body) = ControlHeader::parse_encap(&b, Version::V3, Encap::Ip).unwrap();
        assert_eq!(h.tunnel_id, 0xdead_beef);
        assert_eq!(h.session_id, 0);
        assert_eq!(body, 16..16);
        let mut bad = b.clone();
        bad[3] = 1;
        assert_eq!(
            ControlHeader::parse_encap(&bad, Version::V3, Encap::Ip),
            Err(ControlError::NonZeroSessionId)
        );
    }

    #[test]
    fn rejects_bad_headers() {
        let good = zlb(Version::V2, Encap::Udp, 1, 0, 0, 0).unwrap();
        let mut b = good.clone();
        b[0] &= !0x80;
        assert_eq!(
            ControlHeader::parse(&b, Version::V2),
            Err(ControlError::NotControl)
        );
        let mut b = good.clone();
        b[0] &= !0x40;
        assert_eq!(
            ControlHeader::parse(&b, Version::V2),
            Err(ControlError::MissingLengthOrSequence)
        );
        let mut b = good.clone();
        b[0] &= !0x08;
        assert_eq!(
            ControlHeader::parse(&b, Version::V2),
            Err(ControlError::MissingLengthOrSequence)
        );
        let mut b = good.clone();
        b[0] |= 0x02;
        assert_eq!(
            ControlHeader::parse(&b, Version::V2),
            Err(ControlError::OffsetInControl)
        );
        let mut b = good.clone();
        b[3] = 13;
        assert!(matches!(
            ControlHeader::parse(&b, Version::V2),
            Err(ControlError::BadLength { .. })
        ));
        let mut b = good.clone();
        b[3] = 11;
        assert!(matches!(
            ControlHeader::parse(&b, Version::V2),
            Err(ControlError::BadLength { .. })
        ));
        assert_eq!(
            ControlHeader::parse(&good, Version::V3),
            Err(ControlError::BadVersion(2))
        );
        assert_eq!(
            ControlHeader::parse(&good[..11], Version::V2),
            Err(ControlError::Truncated)
        );
        // Trailing octets beyond Length are not part of the message.
        let mut b = good.clone();
        b.extend_from_slice(&[1, 2, 3]);
        let (h, body) = ControlHeader::parse(&b, Version::V2).unwrap();
        assert!(h.is_zlb());
        assert_eq!(body, 12..12);
    }

    #[test]
    fn patch_ns_nr_and_length() {
        let mut b = zlb(Version::V3, Encap::Udp, 7, 0, 0, 0).unwrap();
        set_ns_nr(&mut b, 0xabcd, 0x0102).unwrap();
        assert_eq!(ns_nr(&b), Some((0xabcd, 0x0102)));
        set_tunnel_id(&mut b, Version::V3, 0x0a0b_0c0d).unwrap();
        let (h, _) = ControlHeader::parse(&b, Version::V3).unwrap();
        assert_eq!((h.ns, h.nr, h.tunnel_id), (0xabcd, 0x0102, 0x0a0b_0c0d));
        assert!(set_ns_nr(&mut b[..11], 0, 0).is_err());
        assert!(set_tunnel_id(&mut b, Version::V2, 0x1_0000).is_err());
    }
}
