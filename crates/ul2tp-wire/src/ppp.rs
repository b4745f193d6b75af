//! PPP framing inside L2TP (docs/reference/kernel.md §1.7, docs/reference/rfc.md §4.1 and §4.12).
//!
//! Inside an L2TP data message a PPP frame has no HDLC flags, FCS or byte stuffing. The
//! address/control octets FF 03 are always sent (as Linux does) and accepted with or without
//! them on receive. The protocol field is 1 or 2 octets (ISO 3309 extension: the last octet
//! has its low bit set). Pure functions over slices, no allocation, never panic.

/// All-Stations address and Unnumbered Information control (RFC 1662 §3.1).
pub const ADDRESS_CONTROL: [u8; 2] = [0xff, 0x03];

/// PPP protocol numbers used by the data path (docs/reference/rfc.md §4.1).
pub mod proto {
    /// IPv4.
    pub const IPV4: u16 = 0x0021;
    /// IPv6.
    pub const IPV6: u16 = 0x0057;
    /// IPCP.
    pub const IPCP: u16 = 0x8021;
    /// IPv6CP.
    pub const IPV6CP: u16 = 0x8057;
    /// LCP.
    pub const LCP: u16 = 0xc021;
    /// PAP.
    pub const PAP: u16 = 0xc023;
    /// CHAP.
    pub const CHAP: u16 = 0xc223;
}

/// The frame without a leading FF 03, if present (docs/reference/kernel.md §1.7 receive rule).
pub fn strip_address_control(frame: &[u8]) -> &[u8] {
    match frame {
        [0xff, 0x03, rest @ ..] => rest,
        _ => frame,
    }
}

/// Parse the protocol field at the start of `frame` (address/control already stripped).
///
/// Returns the protocol number and the length of the field (1 or 2). A first octet with its
/// low bit set is a compressed 1-octet field; otherwise two octets are read and the second
/// must have its low bit set. `None` when the field is truncated or not a valid encoding.
pub fn ppp_protocol(frame: &[u8]) -> Option<(u16, usize)> {
    let first = *frame.first()?;
    if first & 1 == 1 {
        return Some((u16::from(first), 1));
    }
    let second = *frame.get(1)?;
    if second & 1 == 0 {
        return None;
    }
    Some((u16::from_be_bytes([first, second]), 2))
}

/// Write the uncompressed protocol field (2 octets) into `out`; returns 2, or `None` when
/// `out` is too short.
pub fn emit_protocol(protocol: u16, out: &mut [u8]) -> Option<usize> {
    out.get_mut(..2)?.copy_from_slice(&protocol.to_be_bytes());
    Some(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip() {
        assert_eq!(
            strip_address_control(&[0xff, 0x03, 0xc0, 0x21]),
            &[0xc0, 0x21]
        );
        assert_eq!(strip_address_control(&[0xc0, 0x21]), &[0xc0, 0x21]);
        assert_eq!(strip_address_control(&[0xff]), &[0xff]);
        assert_eq!(strip_address_control(&[0xff, 0x03]), &[] as &[u8]);
        assert_eq!(strip_address_control(&[]), &[] as &[u8]);
    }

    #[test]
    fn protocol_field() {
        assert_eq!(ppp_protocol(&[0xc0, 0x21, 1]), Some((proto::LCP, 2)));
        assert_eq!(ppp_protocol(&[0x21, 0x45]), Some((proto::IPV4, 1)));
        assert_eq!(ppp_protocol(&[0x00, 0x57]), Some((proto::IPV6, 2)));
        assert_eq!(ppp_protocol(&[0x00]), None);
        assert_eq!(ppp_protocol(&[0x00, 0x02]), None);
        assert_eq!(ppp_protocol(&[]), None);
        let mut b = [0u8; 2];
        assert_eq!(emit_protocol(proto::IPCP, &mut b), Some(2));
        assert_eq!(b, [0x80, 0x21]);
        assert_eq!(emit_protocol(1, &mut b[..1]), None);
    }
}
