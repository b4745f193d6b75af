//! L2TP data-message headers: classification of received datagrams and the L2TPv2 / L2TPv3
//! data headers (docs/reference/kernel.md §1.2–§1.8, RFC 2661 §3.1, RFC 3931 §4.1).
//!
//! Design (in the manner of smoltcp): every parser checks lengths before it reads, returns a
//! typed value (a "repr") plus the offset at which the payload starts, and never allocates or
//! panics; every emitter writes into a caller buffer and reports how many bytes it used, or
//! [`WireError::BufferTooSmall`]. The parsers are deliberately as liberal as the kernel where
//! the kernel is liberal (the v2 Length field is not validated, reserved bits and the P bit
//! are ignored) and strict where reading would run past the end of the packet.
//!
//! Entry points:
//! * [`classify_udp`] / [`classify_ip`]: the first look at a datagram that decides between
//!   control, data (with the lookup keys) and "leave it on the socket".
//! * [`V2DataHeader`]: the L2TPv2 data header with all optional fields.
//! * [`V3SessionHeader`]: the L2TPv3 session header (UDP and IP forms), with cookie and the
//!   default L2-specific sublayer.

use core::fmt;

/// Largest L2TP data header the kernel looks at before deciding; UDP payloads shorter than
/// this are left on the socket even if they are valid data (docs/reference/kernel.md §1.2,
/// `L2TP_HDR_SIZE_MAX`).
pub const L2TP_HDR_SIZE_MAX: usize = 14;

/// T bit of the flags word: control message (RFC 2661 §3.1).
pub const FLAG_T: u16 = 0x8000;
/// L bit: Length field present (L2TPv2).
pub const FLAG_L: u16 = 0x4000;
/// S bit: Ns and Nr present (L2TPv2).
pub const FLAG_S: u16 = 0x0800;
/// O bit: Offset Size present (L2TPv2).
pub const FLAG_O: u16 = 0x0200;
/// P bit: priority (L2TPv2).
pub const FLAG_P: u16 = 0x0100;
/// Mask of the version nibble.
pub const VERSION_MASK: u16 = 0x000f;

/// S bit of the default L2-specific sublayer (docs/reference/kernel.md §1.6, RFC 4719 §3).
pub const SUBLAYER_S: u32 = 0x4000_0000;
/// Sequence-number mask of the default L2-specific sublayer (24 bits).
pub const SUBLAYER_SEQ_MASK: u32 = 0x00ff_ffff;
/// Largest cookie length (RFC 3931 §4.1: 0, 4 or 8 octets; the kernel accepts 0..=8).
pub const MAX_COOKIE_LEN: usize = 8;

/// Why a data header could not be parsed or emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireError {
    /// The packet ends before a field that its flags announce.
    Truncated,
    /// The version nibble is not the one this parser handles.
    BadVersion,
    /// The T bit is set: this is a control message, not data.
    NotData,
    /// L2TPv2 Offset Size points past the end of the packet (docs/reference/kernel.md §1.3).
    OffsetOverrun,
    /// An L2TP/IP control packet without a valid control header (docs/reference/kernel.md §1.2).
    BadControlHeader,
    /// Session id 0 where a data session id is required.
    ZeroSessionId,
    /// A cookie longer than 8 bytes.
    CookieTooLong,
    /// The output buffer is too small for the header.
    BufferTooSmall,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WireError::Truncated => "packet shorter than its header",
            WireError::BadVersion => "unexpected L2TP version",
            WireError::NotData => "control message where a data message was expected",
            WireError::OffsetOverrun => "offset size runs past the end of the packet",
            WireError::BadControlHeader => "malformed L2TP/IP control header",
            WireError::ZeroSessionId => "session id 0 in a data header",
            WireError::CookieTooLong => "cookie longer than 8 bytes",
            WireError::BufferTooSmall => "output buffer too small for the header",
        })
    }
}

impl std::error::Error for WireError {}

/// The L2-specific sublayer type: one definition, the open enum of the L2-Specific Sublayer
/// AVP (only `None` and `Default` reach the data path).
pub use crate::avp::L2SpecType;

/// What a UDP payload on an L2TP socket is (docs/reference/kernel.md §1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UdpClass {
    /// T bit set: a control message, left on the socket.
    Control,
    /// Fewer than [`L2TP_HDR_SIZE_MAX`] bytes (or too short for a flags word): left on the
    /// socket even if it is a valid data message.
    Short,
    /// An L2TPv2 data message with the lookup keys from its header.
    DataV2 {
        /// Tunnel ID from the header.
        tunnel_id: u16,
        /// Session ID from the header.
        session_id: u16,
    },
    /// Any other version nibble: the L2TPv3 lookup path; `version` is kept for the check
    /// against the matched session's tunnel (docs/reference/kernel.md §5.3).
    DataV3 {
        /// Session ID from the header.
        session_id: u32,
        /// The version nibble as received.
        version: u8,
    },
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Classify a UDP payload received on an L2TP socket (docs/reference/kernel.md §1.2).
///
/// The T bit is tested before the length so that short control messages (an L2TPv2 ZLB is 12
/// bytes) are reported as [`UdpClass::Control`]; either way they stay on the socket. For
/// version 2 the keys are read past the optional Length field; the remaining optional fields
/// are checked by [`V2DataHeader::parse`] once the session is known, because an offset overrun
/// is counted on that session (docs/reference/kernel.md §1.3).
pub fn classify_udp(payload: &[u8]) -> UdpClass {
    let Some(flags) = be16(payload, 0) else {
        return UdpClass::Short;
    };
    if flags & FLAG_T != 0 {
        return UdpClass::Control;
    }
    if payload.len() < L2TP_HDR_SIZE_MAX {
        return UdpClass::Short;
    }
    let version = (flags & VERSION_MASK) as u8;
    if version == 2 {
        let at = if flags & FLAG_L != 0 { 4 } else { 2 };
        // At least 14 bytes are present, so both ids are (at most 2 + 2 + 4 bytes).
        match (be16(payload, at), be16(payload, at + 2)) {
            (Some(tunnel_id), Some(session_id)) => UdpClass::DataV2 {
                tunnel_id,
                session_id,
            },
            _ => UdpClass::Short,
        }
    } else {
        match be32(payload, 4) {
            Some(session_id) => UdpClass::DataV3 {
                session_id,
                version,
            },
            None => UdpClass::Short,
        }
    }
}

/// What an IP-protocol-115 payload is (docs/reference/kernel.md §1.2, §1.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpClass {
    /// Session id 0 followed by a plausible control header; `ccid` is the Control Connection
    /// ID that selects the receiving socket (docs/reference/kernel.md §8.4).
    Control {
        /// Control Connection ID of the control header.
        ccid: u32,
    },
    /// A data packet for a session.
    Data {
        /// Session ID (non-zero).
        session_id: u32,
    },
    /// Too short, or a control packet without a valid header: silently dropped.
    Malformed(WireError),
}

/// Classify an IP-protocol-115 payload (the bytes after the IP header).
pub fn classify_ip(payload: &[u8]) -> IpClass {
    let Some(session_id) = be32(payload, 0) else {
        return IpClass::Malformed(WireError::Truncated);
    };
    if session_id != 0 {
        return IpClass::Data { session_id };
    }
    // docs/reference/kernel.md §1.2: after the 4 zero bytes, >= 12 bytes with T and L set.
    let ctl = &payload[4..];
    if ctl.len() < 12 {
        return IpClass::Malformed(WireError::Truncated);
    }
    if ctl[0] & 0xc0 != 0xc0 {
        return IpClass::Malformed(WireError::BadControlHeader);
    }
    match be32(ctl, 4) {
        Some(ccid) => IpClass::Control { ccid },
        None => IpClass::Malformed(WireError::Truncated),
    }
}

/// The L2TPv2 data message header (RFC 2661 §3.1, docs/reference/kernel.md §1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct V2DataHeader {
    /// Length field (L bit); never validated on receive.
    pub length: Option<u16>,
    /// Tunnel ID.
    pub tunnel_id: u16,
    /// Session ID.
    pub session_id: u16,
    /// Ns and Nr (S bit).
    pub ns_nr: Option<(u16, u16)>,
    /// Offset Size (O bit); that many pad bytes follow it.
    pub offset_size: Option<u16>,
    /// P bit.
    pub priority: bool,
}

impl V2DataHeader {
    /// Parse a v2 data header; returns it and the offset of the payload.
    pub fn parse(buf: &[u8]) -> Result<(V2DataHeader, usize), WireError> {
        let flags = be16(buf, 0).ok_or(WireError::Truncated)?;
        if flags & FLAG_T != 0 {
            return Err(WireError::NotData);
        }
        if flags & VERSION_MASK != 2 {
            return Err(WireError::BadVersion);
        }
        let mut at = 2usize;
        let length = if flags & FLAG_L != 0 {
            let l = be16(buf, at).ok_or(WireError::Truncated)?;
            at += 2;
            Some(l)
        } else {
            None
        };
        let tunnel_id = be16(buf, at).ok_or(WireError::Truncated)?;
        let session_id = be16(buf, at + 2).ok_or(WireError::Truncated)?;
        at += 4;
        let ns_nr = if flags & FLAG_S != 0 {
            let ns = be16(buf, at).ok_or(WireError::Truncated)?;
            let nr = be16(buf, at + 2).ok_or(WireError::Truncated)?;
            at += 4;
            Some((ns, nr))
        } else {
            None
        };
        let offset_size = if flags & FLAG_O != 0 {
            let o = be16(buf, at).ok_or(WireError::Truncated)?;
            at += 2 + usize::from(o);
            if at > buf.len() {
                return Err(WireError::OffsetOverrun);
            }
            Some(o)
        } else {
            None
        };
        let hdr = V2DataHeader {
            length,
            tunnel_id,
            session_id,
            ns_nr,
            offset_size,
            priority: flags & FLAG_P != 0,
        };
        Ok((hdr, at))
    }

    /// The flags word this header is emitted with.
    pub fn flags(&self) -> u16 {
        let mut f = 2u16;
        if self.length.is_some() {
            f |= FLAG_L;
        }
        if self.ns_nr.is_some() {
            f |= FLAG_S;
        }
        if self.offset_size.is_some() {
            f |= FLAG_O;
        }
        if self.priority {
            f |= FLAG_P;
        }
        f
    }

    /// Length of the emitted header, offset pad included.
    pub fn header_len(&self) -> usize {
        6 + if self.length.is_some() { 2 } else { 0 }
            + if self.ns_nr.is_some() { 4 } else { 0 }
            + self.offset_size.map_or(0, |o| 2 + usize::from(o))
    }

    /// Write the header (offset pad zero-filled) at the start of `out`; returns its length.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, WireError> {
        let len = self.header_len();
        let out = out.get_mut(..len).ok_or(WireError::BufferTooSmall)?;
        let mut at = 0usize;
        let mut put = |v: u16| {
            out[at..at + 2].copy_from_slice(&v.to_be_bytes());
            at += 2;
        };
        put(self.flags());
        if let Some(l) = self.length {
            put(l);
        }
        put(self.tunnel_id);
        put(self.session_id);
        if let Some((ns, nr)) = self.ns_nr {
            put(ns);
            put(nr);
        }
        if let Some(o) = self.offset_size {
            put(o);
            out[at..].fill(0);
        }
        Ok(len)
    }
}

/// The default L2-specific sublayer (docs/reference/kernel.md §1.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DefaultSublayer {
    /// The 24-bit sequence number when the S bit is set.
    pub seq: Option<u32>,
}

impl DefaultSublayer {
    /// Decode the 32-bit word (reserved bits ignored).
    pub fn from_word(w: u32) -> Self {
        DefaultSublayer {
            seq: (w & SUBLAYER_S != 0).then_some(w & SUBLAYER_SEQ_MASK),
        }
    }

    /// Encode: S bit + 24-bit sequence, or all zero.
    pub fn to_word(self) -> u32 {
        match self.seq {
            Some(s) => SUBLAYER_S | (s & SUBLAYER_SEQ_MASK),
            None => 0,
        }
    }
}

/// The L2TPv3 session header (RFC 3931 §4.1.1.2 over UDP, §4.1.1.1 over IP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct V3SessionHeader<'a> {
    /// Session ID (the receiver's id).
    pub session_id: u32,
    /// Cookie bytes (0..=8).
    pub cookie: &'a [u8],
    /// The default L2-specific sublayer, when the session uses it.
    pub sublayer: Option<DefaultSublayer>,
}

impl<'a> V3SessionHeader<'a> {
    fn parse_after_id(
        buf: &'a [u8],
        at: usize,
        session_id: u32,
        cookie_len: usize,
        l2spec: L2SpecType,
    ) -> Result<(Self, usize), WireError> {
        if cookie_len > MAX_COOKIE_LEN {
            return Err(WireError::CookieTooLong);
        }
        let cookie = buf.get(at..at + cookie_len).ok_or(WireError::Truncated)?;
        let mut at = at + cookie_len;
        let sublayer = match l2spec {
            L2SpecType::Default => {
                let w = be32(buf, at).ok_or(WireError::Truncated)?;
                at += 4;
                Some(DefaultSublayer::from_word(w))
            }
            _ => None,
        };
        Ok((
            V3SessionHeader {
                session_id,
                cookie,
                sublayer,
            },
            at,
        ))
    }

    /// Parse the UDP form: flags word (T = 0, version 3), reserved, session id, cookie,
    /// sublayer. `cookie_len` and `l2spec` are the receiving session's expectations.
    pub fn parse_udp(
        buf: &'a [u8],
        cookie_len: usize,
        l2spec: L2SpecType,
    ) -> Result<(Self, usize), WireError> {
        let flags = be16(buf, 0).ok_or(WireError::Truncated)?;
        if flags & FLAG_T != 0 {
            return Err(WireError::NotData);
        }
        if flags & VERSION_MASK != 3 {
            return Err(WireError::BadVersion);
        }
        let session_id = be32(buf, 4).ok_or(WireError::Truncated)?;
        Self::parse_after_id(buf, 8, session_id, cookie_len, l2spec)
    }

    /// Parse the IP form: session id (non-zero), cookie, sublayer.
    pub fn parse_ip(
        buf: &'a [u8],
        cookie_len: usize,
        l2spec: L2SpecType,
    ) -> Result<(Self, usize), WireError> {
        let session_id = be32(buf, 0).ok_or(WireError::Truncated)?;
        if session_id == 0 {
            return Err(WireError::ZeroSessionId);
        }
        Self::parse_after_id(buf, 4, session_id, cookie_len, l2spec)
    }

    fn tail_len(&self) -> usize {
        4 + self.cookie.len() + if self.sublayer.is_some() { 4 } else { 0 }
    }

    /// Header length of the UDP form.
    pub fn header_len_udp(&self) -> usize {
        4 + self.tail_len()
    }

    /// Header length of the IP form.
    pub fn header_len_ip(&self) -> usize {
        self.tail_len()
    }

    fn emit_tail(&self, out: &mut [u8]) -> Result<(), WireError> {
        if self.cookie.len() > MAX_COOKIE_LEN {
            return Err(WireError::CookieTooLong);
        }
        let (id, rest) = out.split_at_mut(4);
        id.copy_from_slice(&self.session_id.to_be_bytes());
        let (c, rest) = rest.split_at_mut(self.cookie.len());
        c.copy_from_slice(self.cookie);
        if let Some(s) = self.sublayer {
            rest[..4].copy_from_slice(&s.to_word().to_be_bytes());
        }
        Ok(())
    }

    /// Write the UDP form (flags 0x0003, reserved 0) at the start of `out`; returns its length.
    pub fn emit_udp(&self, out: &mut [u8]) -> Result<usize, WireError> {
        let len = self.header_len_udp();
        let out = out.get_mut(..len).ok_or(WireError::BufferTooSmall)?;
        out[..4].copy_from_slice(&[0x00, 0x03, 0x00, 0x00]);
        self.emit_tail(&mut out[4..])?;
        Ok(len)
    }

    /// Write the IP form at the start of `out`; returns its length.
    pub fn emit_ip(&self, out: &mut [u8]) -> Result<usize, WireError> {
        let len = self.header_len_ip();
        let out = out.get_mut(..len).ok_or(WireError::BufferTooSmall)?;
        self.emit_tail(out)?;
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_udp_cases() {
        assert_eq!(classify_udp(&[]), UdpClass::Short);
        assert_eq!(classify_udp(&[0xc8, 0x02]), UdpClass::Control);
        // A 12-byte v2 ZLB is control even though it is short.
        assert_eq!(
            classify_udp(&[0xc8, 2, 0, 12, 0, 1, 0, 0, 0, 1, 0, 1]),
            UdpClass::Control
        );
        // Valid 13-byte v2 data: short.
        assert_eq!(
            classify_udp(&[0, 2, 0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0]),
            UdpClass::Short
        );
        let mut p = [0u8; 14];
        p[1] = 2;
        p[2..6].copy_from_slice(&[0x12, 0x34, 0x56, 0x78]);
        assert_eq!(
            classify_udp(&p),
            UdpClass::DataV2 {
                tunnel_id: 0x1234,
                session_id: 0x5678
            }
        );
        p[0] = 0x40; // L bit: ids move by 2
        assert_eq!(
            classify_udp(&p),
            UdpClass::DataV2 {
                tunnel_id: 0x5678,
                session_id: 0
            }
        );
        let mut q = [0u8; 14];
        q[1] = 3;
        q[4..8].copy_from_slice(&0x2001u32.to_be_bytes());
        assert_eq!(
            classify_udp(&q),
            UdpClass::DataV3 {
                session_id: 0x2001,
                version: 3
            }
        );
        q[1] = 5;
        assert_eq!(
            classify_udp(&q),
            UdpClass::DataV3 {
                session_id: 0x2001,
                version: 5
            }
        );
    }

    #[test]
    fn classify_ip_cases() {
        assert_eq!(
            classify_ip(&[0, 0, 1]),
            IpClass::Malformed(WireError::Truncated)
        );
        assert_eq!(
            classify_ip(&[0, 0, 0x10, 0x01, 9]),
            IpClass::Data { session_id: 0x1001 }
        );
        let mut c = [0u8; 16];
        c[4] = 0xc8;
        c[5] = 0x03;
        c[8..12].copy_from_slice(&100u32.to_be_bytes());
        assert_eq!(classify_ip(&c), IpClass::Control { ccid: 100 });
        assert_eq!(
            classify_ip(&c[..15]),
            IpClass::Malformed(WireError::Truncated)
        );
        c[4] = 0x80; // T without L
        assert_eq!(
            classify_ip(&c),
            IpClass::Malformed(WireError::BadControlHeader)
        );
    }

    #[test]
    fn v2_all_flags() {
        let h = V2DataHeader {
            length: Some(40),
            tunnel_id: 7,
            session_id: 9,
            ns_nr: Some((3, 4)),
            offset_size: Some(3),
            priority: true,
        };
        let mut b = [0xaau8; 32];
        let n = h.emit(&mut b).unwrap();
        assert_eq!(n, 17);
        assert_eq!(
            &b[..n],
            &[0x4b, 0x02, 0, 40, 0, 7, 0, 9, 0, 3, 0, 4, 0, 3, 0, 0, 0]
        );
        assert_eq!(V2DataHeader::parse(&b[..n]).unwrap(), (h, 17));
        // Offset pad past the end.
        assert_eq!(V2DataHeader::parse(&b[..16]), Err(WireError::OffsetOverrun));
        assert_eq!(h.emit(&mut b[..16]), Err(WireError::BufferTooSmall));
        // Truncated before the ids.
        assert_eq!(
            V2DataHeader::parse(&[0x40, 2, 0, 1, 0]),
            Err(WireError::Truncated)
        );
        assert_eq!(
            V2DataHeader::parse(&[0x00, 3, 0, 1, 0, 1]),
            Err(WireError::BadVersion)
        );
        assert_eq!(
            V2DataHeader::parse(&[0xc8, 2, 0, 1, 0, 1]),
            Err(WireError::NotData)
        );
    }

    #[test]
    fn v2_kernel_forms() {
        let plain = V2DataHeader {
            tunnel_id: 1,
            session_id: 2,
            ..Default::default()
        };
        let mut b = [0u8; 10];
        assert_eq!(plain.emit(&mut b), Ok(6));
        assert_eq!(&b[..6], &[0, 2, 0, 1, 0, 2]);
        let seq = V2DataHeader {
            ns_nr: Some((0x1234, 0)),
            ..plain
        };
        assert_eq!(seq.emit(&mut b), Ok(10));
        assert_eq!(&b, &[0x08, 2, 0, 1, 0, 2, 0x12, 0x34, 0, 0]);
    }

    #[test]
    fn v3_forms() {
        let cookie = [1, 2, 3, 4];
        let h = V3SessionHeader {
            session_id: 0x2001,
            cookie: &cookie,
            sublayer: Some(DefaultSublayer {
                seq: Some(0x123456),
            }),
        };
        let mut b = [0u8; 32];
        let n = h.emit_udp(&mut b).unwrap();
        assert_eq!(
            &b[..n],
            &[0, 3, 0, 0, 0, 0, 0x20, 0x01, 1, 2, 3, 4, 0x40, 0x12, 0x34, 0x56]
        );
        assert_eq!(
            V3SessionHeader::parse_udp(&b[..n], 4, L2SpecType::Default),
            Ok((h, 16))
        );
        assert_eq!(
            V3SessionHeader::parse_udp(&b[..n - 1], 4, L2SpecType::Default),
            Err(WireError::Truncated)
        );
        let n = h.emit_ip(&mut b).unwrap();
        assert_eq!(n, 12);
        assert_eq!(
            V3SessionHeader::parse_ip(&b[..n], 4, L2SpecType::Default),
            Ok((h, 12))
        );
        assert_eq!(
            V3SessionHeader::parse_ip(&[0, 0, 0, 0, 1], 0, L2SpecType::None),
            Err(WireError::ZeroSessionId)
        );
        // Reserved sublayer bits are ignored; no S bit means no sequence number.
        assert_eq!(
            DefaultSublayer::from_word(0xbf00_0001),
            DefaultSublayer { seq: None }
        );
        assert_eq!(
            DefaultSublayer::from_word(0xff00_0001),
            DefaultSublayer { seq: Some(1) }
        );
        assert_eq!(
            V3SessionHeader::parse_ip(&b, 9, L2SpecType::None),
            Err(WireError::CookieTooLong)
        );
    }
}
