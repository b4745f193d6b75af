//! Attribute-Value Pairs of L2TP control messages (RFC 2661 §4.1, RFC 3931 §5.1).
//!
//! ```text
//!  0                   1                   2                   3
//! |M|H| rsvd  |      Length       |           Vendor ID           |
//! |        Attribute Type         |  Attribute Value ...          |
//! ```
//!
//! Layers, from raw to typed:
//! * [`AvpIter`] walks the AVP body of a message and yields [`RawAvp`] (flags, vendor id,
//!   attribute type, value slice). It never panics and never reads past the buffer: a bad
//!   Length yields one `Err` and ends the iteration.
//! * [`AvpValue`] is the typed value of every attribute of RFC 2661, RFC 3931 and RFC 4719
//!   (`AvpValue::decode` / `AvpValue::encode_value`); unknown and vendor attributes stay raw
//!   bytes in [`AvpValue::Raw`]. Decoding checks each value's length and names the attribute
//!   in the error.
//! * [`Avp`] = M bit + H bit + value: what a parsed [`crate::message::Message`] holds.
//! * [`push_raw`] / [`push_value`] / [`push_hidden`] append AVPs to a `Vec<u8>`.
//! * [`hidden`] implements the hidden-AVP keystream (RFC 2661 §4.3, docs/reference/rfc.md §1.8).
//! * [`types`] holds the open enums ([`MessageType`], [`AttrType`], result/error codes, ...).

use core::fmt;

pub mod hidden;
pub mod types;
mod value;

pub use hidden::{hide, unhide};
pub use types::*;
pub use value::{AvpValue, CallErrors, PppDisconnectCause, Q931Cause, ResultCode};

/// M bit of the AVP flags word.
pub const AVP_FLAG_M: u16 = 0x8000;
/// H bit of the AVP flags word.
pub const AVP_FLAG_H: u16 = 0x4000;
/// Reserved bits of the AVP flags word.
pub const AVP_RESERVED_MASK: u16 = 0x3c00;
/// Length mask of the AVP flags word (10 bits).
pub const AVP_LENGTH_MASK: u16 = 0x03ff;
/// Size of the AVP header.
pub const AVP_HEADER_LEN: usize = 6;
/// Largest AVP (header included) the 10-bit Length can express.
pub const AVP_MAX_LEN: usize = 1023;
/// Largest AVP value.
pub const AVP_MAX_VALUE_LEN: usize = AVP_MAX_LEN - AVP_HEADER_LEN;
/// Vendor id of IETF attributes.
pub const VENDOR_IETF: u16 = 0;

/// Why an AVP could not be read, decoded or written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AvpError {
    /// Fewer than 6 octets remain for an AVP header at `offset` (within the AVP body).
    TruncatedHeader {
        /// Offset of the AVP within the body.
        offset: usize,
    },
    /// The Length field is below 6 or runs past the end of the message.
    BadLength {
        /// Offset of the AVP within the body.
        offset: usize,
        /// The Length field.
        length: u16,
    },
    /// The value of a known attribute has a length the RFC does not allow.
    BadValueLength {
        /// The attribute.
        attr: AttrType,
        /// Length of the value received.
        len: usize,
    },
    /// The value of a known attribute is out of range (e.g. an id of 0).
    BadValue {
        /// The attribute.
        attr: AttrType,
        /// What is wrong.
        reason: &'static str,
    },
    /// A value too long for the 10-bit Length field (emit side).
    TooLong {
        /// The attribute.
        attr: AttrType,
        /// Resulting AVP length.
        len: usize,
    },
    /// A hidden AVP arrived but no shared secret is configured.
    HiddenWithoutSecret {
        /// The attribute.
        attr: AttrType,
    },
    /// A hidden AVP arrived without a preceding Random Vector AVP.
    HiddenWithoutRandomVector {
        /// The attribute.
        attr: AttrType,
    },
    /// A hidden AVP whose decrypted original-length subfield does not fit the value
    /// (the check whose absence was CVE-2022-0982), or a hidden value shorter than 2 octets.
    HiddenBadLength {
        /// The attribute.
        attr: AttrType,
        /// Decrypted original length (0 if the value was too short to carry one).
        orig_len: usize,
        /// Octets available after the length subfield.
        available: usize,
    },
    /// An attribute that MUST NOT be hidden was asked to be hidden (emit side).
    MustNotHide {
        /// The attribute.
        attr: AttrType,
    },
}

impl AvpError {
    /// The attribute concerned, when known.
    pub fn attr(&self) -> Option<AttrType> {
        match self {
            AvpError::TruncatedHeader { .. } | AvpError::BadLength { .. } => None,
            AvpError::BadValueLength { attr, .. }
            | AvpError::BadValue { attr, .. }
            | AvpError::TooLong { attr, .. }
            | AvpError::HiddenWithoutSecret { attr }
            | AvpError::HiddenWithoutRandomVector { attr }
            | AvpError::HiddenBadLength { attr, .. }
            | AvpError::MustNotHide { attr } => Some(*attr),
        }
    }
}

impl fmt::Display for AvpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AvpError::TruncatedHeader { offset } => {
                write!(f, "AVP header truncated at body offset {offset}")
            }
            AvpError::BadLength { offset, length } => {
                write!(f, "AVP at body offset {offset} has bad Length {length}")
            }
            AvpError::BadValueLength { attr, len } => {
                write!(f, "{attr} AVP: value length {len} is invalid")
            }
            AvpError::BadValue { attr, reason } => write!(f, "{attr} AVP: {reason}"),
            AvpError::TooLong { attr, len } => {
                write!(f, "{attr} AVP: length {len} exceeds {AVP_MAX_LEN}")
            }
            AvpError::HiddenWithoutSecret { attr } => {
                write!(f, "{attr} AVP is hidden but no shared secret is configured")
            }
            AvpError::HiddenWithoutRandomVector { attr } => {
                write!(f, "{attr} AVP is hidden but no Random Vector precedes it")
            }
            AvpError::HiddenBadLength {
                attr,
                orig_len,
                available,
            } => write!(
                f,
                "{attr} AVP: hidden original length {orig_len} exceeds {available} decrypted octets"
            ),
            AvpError::MustNotHide { attr } => write!(f, "{attr} AVP must not be hidden"),
        }
    }
}

impl std::error::Error for AvpError {}

/// One AVP as it appears on the wire, borrowing its value from the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawAvp<'a> {
    /// M bit.
    pub mandatory: bool,
    /// H bit.
    pub hidden: bool,
    /// The four reserved flag bits (bits 2–5), right-aligned.
    pub reserved: u8,
    /// Vendor ID (0 = IETF).
    pub vendor_id: u16,
    /// Attribute Type as a number (meaningful as [`AttrType`] only for vendor 0).
    pub attr_type: u16,
    /// Offset of the AVP header within the AVP body.
    pub offset: usize,
    /// The Attribute Value octets (still encrypted if `hidden`).
    pub value: &'a [u8],
}

impl RawAvp<'_> {
    /// The IETF attribute type, or `None` for a vendor AVP.
    pub fn attr(&self) -> Option<AttrType> {
        (self.vendor_id == VENDOR_IETF).then(|| AttrType::from(self.attr_type))
    }

    /// Total AVP length on the wire.
    pub fn len(&self) -> usize {
        AVP_HEADER_LEN + self.value.len()
    }

    /// True if the AVP has no value octets.
    pub fn is_empty(&self) -> bool {
        self.value.is_empty()
    }
}

/// Iterator over the AVPs of a control-message body. Yields `Err` once for a malformed AVP
/// header (and then ends); never panics.
#[derive(Debug, Clone)]
pub struct AvpIter<'a> {
    body: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> AvpIter<'a> {
    /// Iterate over `body` (the octets after the control header, up to Length).
    pub fn new(body: &'a [u8]) -> AvpIter<'a> {
        AvpIter {
            body,
            pos: 0,
            done: false,
        }
    }

    /// Offset of the next AVP within the body.
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for AvpIter<'a> {
    type Item = Result<RawAvp<'a>, AvpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.body.len() {
            return None;
        }
        let offset = self.pos;
        let Some(h) = self.body.get(offset..offset + AVP_HEADER_LEN) else {
            self.done = true;
            return Some(Err(AvpError::TruncatedHeader { offset }));
        };
        let flags = u16::from_be_bytes([h[0], h[1]]);
        let length = flags & AVP_LENGTH_MASK;
        let len = usize::from(length);
        let value = if len < AVP_HEADER_LEN {
            None
        } else {
            self.body.get(offset + AVP_HEADER_LEN..offset + len)
        };
        let Some(value) = value else {
            self.done = true;
            return Some(Err(AvpError::BadLength { offset, length }));
        };
        self.pos = offset + len;
        Some(Ok(RawAvp {
            mandatory: flags & AVP_FLAG_M != 0,
            hidden: flags & AVP_FLAG_H != 0,
            reserved: ((flags & AVP_RESERVED_MASK) >> 10) as u8,
            vendor_id: u16::from_be_bytes([h[2], h[3]]),
            attr_type: u16::from_be_bytes([h[4], h[5]]),
            offset,
            value,
        }))
    }
}

/// A decoded AVP: flags plus typed value (hidden AVPs already revealed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Avp {
    /// M bit as received / to send.
    pub mandatory: bool,
    /// H bit as received / whether to hide on send.
    pub hidden: bool,
    /// The value.
    pub value: AvpValue,
}

impl Avp {
    /// An AVP with the RFC's default M bit for `version` and not hidden.
    pub fn new(value: AvpValue, v3: bool) -> Avp {
        let mandatory = value.vendor_id() == VENDOR_IETF && value.attr_type().default_mandatory(v3);
        Avp {
            mandatory,
            hidden: false,
            value,
        }
    }
}

/// Append one AVP with the given header fields and value octets.
pub fn push_raw(
    out: &mut Vec<u8>,
    mandatory: bool,
    hidden: bool,
    vendor_id: u16,
    attr_type: u16,
    value: &[u8],
) -> Result<(), AvpError> {
    let len = AVP_HEADER_LEN + value.len();
    if len > AVP_MAX_LEN {
        return Err(AvpError::TooLong {
            attr: AttrType::from(attr_type),
            len,
        });
    }
    let mut flags = len as u16;
    if mandatory {
        flags |= AVP_FLAG_M;
    }
    if hidden {
        flags |= AVP_FLAG_H;
    }
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&vendor_id.to_be_bytes());
    out.extend_from_slice(&attr_type.to_be_bytes());
    out.extend_from_slice(value);
    Ok(())
}

/// Append a typed AVP in clear (H = 0).
pub fn push_value(out: &mut Vec<u8>, mandatory: bool, value: &AvpValue) -> Result<(), AvpError> {
    let mut v = Vec::new();
    value.encode_value(&mut v);
    push_raw(
        out,
        mandatory,
        false,
        value.vendor_id(),
        value.attr_type().get(),
        &v,
    )
}

/// Append a typed AVP hidden with `secret` and the Random Vector `rv` that precedes it in the
/// message (RFC 2661 §4.3). `pad` octets (caller-chosen random bytes, may be empty) are
/// appended after the original value to hide its length. For L2TPv3 pass the derived hiding
/// key ([`crate::digest::v3_hiding_key`]) as `secret`.
pub fn push_hidden(
    out: &mut Vec<u8>,
    mandatory: bool,
    value: &AvpValue,
    secret: &[u8],
    rv: &[u8],
    pad: &[u8],
) -> Result<(), AvpError> {
    let attr = value.attr_type();
    if value.vendor_id() == VENDOR_IETF && !attr.may_hide() {
        return Err(AvpError::MustNotHide { attr });
    }
    let mut v = Vec::new();
    value.encode_value(&mut v);
    let len = AVP_HEADER_LEN + 2 + v.len() + pad.len();
    if len > AVP_MAX_LEN {
        return Err(AvpError::TooLong { attr, len });
    }
    let hidden = hide(attr.get(), secret, rv, &v, pad);
    push_raw(out, mandatory, true, value.vendor_id(), attr.get(), &hidden)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iter_reads_avps_and_stops_on_bad_length() {
        let mut b = Vec::new();
        push_raw(&mut b, true, false, 0, 0, &[0, 1]).unwrap();
        push_raw(&mut b, false, true, 9, 0x1234, &[]).unwrap();
        let v: Vec<_> = AvpIter::new(&b).collect();
        assert_eq!(v.len(), 2);
        let a = v[0].as_ref().unwrap();
        assert!(a.mandatory && !a.hidden);
        assert_eq!(a.attr(), Some(AttrType::MessageType));
        assert_eq!(a.value, &[0, 1]);
        let c = v[1].as_ref().unwrap();
        assert!(!c.mandatory && c.hidden);
        assert_eq!((c.vendor_id, c.attr_type, c.offset), (9, 0x1234, 8));
        assert_eq!(c.attr(), None);

        // Length 5 (< header) and a length past the end.
        let mut bad = b.clone();
        bad[9] = 5;
        let v: Vec<_> = AvpIter::new(&bad).collect();
        assert_eq!(v.len(), 2);
        assert_eq!(
            v[1],
            Err(AvpError::BadLength {
                offset: 8,
                length: 5
            })
        );
        let mut bad = b.clone();
        bad[9] = 7;
        let v: Vec<_> = AvpIter::new(&bad).collect();
        assert_eq!(
            v[1],
            Err(AvpError::BadLength {
                offset: 8,
                length: 7
            })
        );
        let v: Vec<_> = AvpIter::new(&b[..11]).collect();
        assert_eq!(v[1], Err(AvpError::TruncatedHeader { offset: 8 }));
    }

    #[test]
    fn reserved_bits_are_reported() {
        let b = [0x84u8, 0x06, 0, 0, 0, 39];
        let a = AvpIter::new(&b).next().unwrap().unwrap();
        assert_eq!(a.reserved, 1);
        assert!(a.mandatory);
    }

    #[test]
    fn push_rejects_too_long() {
        let mut out = Vec::new();
        assert!(push_raw(&mut out, false, false, 0, 7, &[0; AVP_MAX_VALUE_LEN]).is_ok());
        assert!(matches!(
            push_raw(&mut out, false, false, 0, 7, &[0; AVP_MAX_VALUE_LEN + 1]),
            Err(AvpError::TooLong { .. })
        ));
        assert!(matches!(
            push_hidden(
                &mut out,
                true,
                &AvpValue::RandomVector(vec![1]),
                b"s",
                b"r",
                &[]
            ),
            Err(AvpError::MustNotHide { .. })
        ));
    }
}
