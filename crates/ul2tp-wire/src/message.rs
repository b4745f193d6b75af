//! Whole control messages: parse (header + decoded AVPs + RFC checks) and build.
//!
//! # Parsing
//! [`Message::parse`] (UDP) / [`Message::parse_encap`] (UDP or L2TPv3/IP):
//! 1. parses the [`ControlHeader`]; a body without AVPs is a ZLB (`message_type == None`);
//! 2. walks the AVPs, revealing hidden ones with the shared secret (v3: the derived key
//!    [`crate::digest::v3_hiding_key`]) and the closest preceding Random Vector;
//! 3. checks that the first AVP is Message Type, decodes every known AVP, keeps unknown
//!    M=0 AVPs as [`AvpValue::Raw`], and skips malformed M=0 AVPs (listed in
//!    [`Message::ignored`]);
//! 4. checks that the AVPs the RFC requires for the message type are present
//!    (RFC 2661 §6 for v2, RFC 3931 §6 for v3; docs/reference/rfc.md §1.5, §2.7).
//!
//! Failures come back as a [`MessageError`] whose [`Reaction`] tells the engine what the RFC
//! prescribes (docs/reference/rfc.md §1.3, §1.18, §2.6):
//! * [`Reaction::Discard`]: malformed header or AVP framing, or no Message Type AVP — drop the
//!   datagram without touching sequence state;
//! * [`Reaction::Ignore`]: unknown message type with M=0 — the message is sequenced (ack it)
//!   but otherwise ignored;
//! * [`Reaction::StopCcn`] / [`Reaction::Cdn`]: unknown AVP with M=1 (Result 2 / Error 8),
//!   malformed AVP with M=1 (Result 2 / Error 2 for a bad length, 3 for a bad value), a
//!   missing mandatory AVP (Result 2 / Error 6 with the attribute named), or an unknown
//!   message type with M=1 (StopCCN Result 2 / Error 3). StopCCN for control-connection
//!   messages, CDN for session messages ([`MessageType::is_session_message`]).
//!   [`MessageError::error_message`] gives a text for the Result Code's Error Message.
//!
//! The Message Digest (v3) is *not* verified here because it needs the nonces; call
//! [`crate::digest::verify_message`] on the same bytes first.
//!
//! # Building
//! [`MessageBuilder::new`] writes the header and the Message Type AVP; `avp*` methods append
//! AVPs (a Random Vector AVP becomes the vector for later hidden AVPs); [`MessageBuilder::finish`]
//! patches Length and checks the mandatory AVPs (so a message missing one the RFC requires is
//! never sent). Ns/Nr are written later by the engine with
//! [`crate::control::set_ns_nr`] (on the slice after the 4-octet prefix for L2TPv3/IP).

use core::fmt;

use crate::avp::{
    push_hidden, push_raw, push_value, unhide, AttrType, Avp, AvpError, AvpIter, AvpValue,
    CdnResult, DigestType, ErrorCode, MessageType, ResultCode, StopCcnResult, VENDOR_IETF,
};
use crate::control::{
    self, ControlError, ControlHeader, Encap, Version, HEADER_LEN, IP_PREFIX_LEN,
};
use crate::digest::v3_hiding_key;

/// What the control engine should do with a message that failed to parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reaction {
    /// Drop silently; do not update Nr or acknowledge.
    Discard,
    /// Acknowledge (it is sequenced) but otherwise ignore the message.
    Ignore,
    /// Tear down the control connection with a StopCCN carrying this result/error.
    StopCcn {
        /// Result Code.
        result: StopCcnResult,
        /// Error Code.
        error: ErrorCode,
    },
    /// Tear down the session with a CDN carrying this result/error.
    Cdn {
        /// Result Code.
        result: CdnResult,
        /// Error Code.
        error: ErrorCode,
    },
}

/// The specific problem found in a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageErrorKind {
    /// The control header is malformed.
    Header(ControlError),
    /// An AVP's Length does not fit the message; nothing after it can be trusted.
    AvpFraming(AvpError),
    /// The first AVP is not a (valid, unhidden) Message Type AVP.
    NoMessageType,
    /// The message type is unknown (or vendor-specific, with this vendor id).
    UnknownMessageType {
        /// Vendor ID of the Message Type AVP.
        vendor_id: u16,
        /// The message type.
        message_type: MessageType,
        /// M bit of the Message Type AVP.
        mandatory: bool,
    },
    /// An unrecognised AVP with the M bit set (unknown attribute, vendor AVP, or a v2 AVP with
    /// reserved flag bits set).
    UnknownMandatoryAvp {
        /// Vendor ID.
        vendor_id: u16,
        /// Attribute Type.
        attr_type: AttrType,
    },
    /// A known AVP with the M bit set whose value is malformed (or cannot be revealed).
    MalformedAvp(AvpError),
    /// An AVP the RFC requires in this message type is absent.
    MissingAvp(AttrType),
}

/// A message that could not be accepted, with the RFC-prescribed reaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageError {
    /// What is wrong.
    pub kind: MessageErrorKind,
    /// What to do about it.
    pub reaction: Reaction,
    /// The header, if it parsed.
    pub header: Option<ControlHeader>,
    /// The message type, if known.
    pub message_type: Option<MessageType>,
    /// AVPs decoded before the problem (all of them for [`MessageErrorKind::MissingAvp`]); lets
    /// the engine find e.g. the Assigned Session ID it must answer a CDN to.
    pub avps: Vec<Avp>,
}

impl MessageError {
    /// A short text suitable for the Error Message of the Result Code AVP.
    pub fn error_message(&self) -> String {
        self.kind.to_string()
    }

    /// The [`ResultCode`] value to send with the StopCCN/CDN, if the reaction is a teardown.
    pub fn result_code(&self) -> Option<ResultCode> {
        let (result, error) = match self.reaction {
            Reaction::StopCcn { result, error } => (result.get(), error),
            Reaction::Cdn { result, error } => (result.get(), error),
            Reaction::Discard | Reaction::Ignore => return None,
        };
        Some(ResultCode {
            result,
            error: Some(error),
            message: Some(self.error_message().into_bytes()),
        })
    }
}

impl fmt::Display for MessageErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageErrorKind::Header(e) => write!(f, "{e}"),
            MessageErrorKind::AvpFraming(e) => write!(f, "{e}"),
            MessageErrorKind::NoMessageType => f.write_str("first AVP is not Message Type"),
            MessageErrorKind::UnknownMessageType {
                vendor_id,
                message_type,
                ..
            } => write!(
                f,
                "unknown message type {} (vendor {vendor_id})",
                message_type.get()
            ),
            MessageErrorKind::UnknownMandatoryAvp {
                vendor_id,
                attr_type,
            } => write!(
                f,
                "unknown mandatory AVP: vendor {vendor_id} attribute {}",
                attr_type.get()
            ),
            MessageErrorKind::MalformedAvp(e) => write!(f, "{e}"),
            MessageErrorKind::MissingAvp(a) => write!(f, "missing mandatory {a} AVP"),
        }
    }
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.message_type {
            Some(t) => write!(f, "{t}: {}", self.kind),
            None => write!(f, "{}", self.kind),
        }
    }
}

impl std::error::Error for MessageError {}

/// A malformed or unrecognised M=0 AVP that was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredAvp {
    /// Vendor ID.
    pub vendor_id: u16,
    /// Attribute Type.
    pub attr_type: AttrType,
    /// Why it was skipped.
    pub error: AvpError,
}

/// A parsed control message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The control header.
    pub header: ControlHeader,
    /// Framing the message arrived with.
    pub encap: Encap,
    /// Message type; `None` for a ZLB.
    pub message_type: Option<MessageType>,
    /// Every accepted AVP in wire order, the Message Type AVP first.
    pub avps: Vec<Avp>,
    /// M=0 AVPs that were malformed and skipped.
    pub ignored: Vec<IgnoredAvp>,
}

/// AVPs the RFC requires besides Message Type (docs/reference/rfc.md §1.5 for v2, §2.7 for v3).
/// Unknown types and messages without requirements give an empty list.
pub fn required_avps(version: Version, message_type: MessageType) -> &'static [AttrType] {
    use AttrType as A;
    use MessageType as M;
    match version {
        Version::V2 => match message_type {
            M::Sccrq | M::Sccrp => &[
                A::ProtocolVersion,
                A::HostName,
                A::FramingCapabilities,
                A::AssignedTunnelId,
            ],
            M::StopCcn => &[A::AssignedTunnelId, A::ResultCode],
            M::Ocrq => &[
                A::AssignedSessionId,
                A::CallSerialNumber,
                A::MinimumBps,
                A::MaximumBps,
                A::BearerType,
                A::FramingType,
                A::CalledNumber,
            ],
            M::Ocrp | M::Icrp => &[A::AssignedSessionId],
            M::Occn | M::Iccn => &[A::TxConnectSpeed, A::FramingType],
            M::Icrq => &[A::AssignedSessionId, A::CallSerialNumber],
            M::Cdn => &[A::ResultCode, A::AssignedSessionId],
            M::Wen => &[A::CallErrors],
            M::Sli => &[A::Accm],
            _ => &[],
        },
        Version::V3 => match message_type {
            M::Sccrq | M::Sccrp => &[
                A::HostName,
                A::RouterId,
                A::AssignedConnectionId,
                A::PseudowireCapabilities,
            ],
            M::StopCcn => &[A::ResultCode],
            M::Icrq | M::Ocrq => &[
                A::LocalSessionId,
                A::RemoteSessionId,
                A::CallSerialNumber,
                A::PseudowireType,
                A::RemoteEndId,
                A::CircuitStatus,
            ],
            M::Icrp | M::Ocrp => &[A::LocalSessionId, A::RemoteSessionId, A::CircuitStatus],
            M::Iccn | M::Occn | M::Sli => &[A::LocalSessionId, A::RemoteSessionId],
            M::Cdn => &[A::ResultCode, A::LocalSessionId, A::RemoteSessionId],
            M::Wen => &[A::LocalSessionId, A::RemoteSessionId, A::CallErrors],
            _ => &[],
        },
    }
}

fn teardown(message_type: MessageType, error: ErrorCode) -> Reaction {
    if message_type.is_session_message() {
        Reaction::Cdn {
            result: CdnResult::GeneralError,
            error,
        }
    } else {
        Reaction::StopCcn {
            result: StopCcnResult::GeneralError,
            error,
        }
    }
}

/// Accessors for the first IETF AVP of one type: `name: Variant -> Type, |x| value;`.
macro_rules! avp_accessors {
    ($($(#[$doc:meta])* $name:ident: $variant:ident -> $ty:ty, |$x:ident| $conv:expr;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(&self) -> Option<$ty> {
                match self.find(AttrType::$variant)? {
                    AvpValue::$variant($x) => Some($conv),
                    _ => None,
                }
            }
        )*
    };
}

impl Message {
    /// Parse a UDP-framed control message (see the module docs). `secret` is the tunnel's
    /// shared secret, used to reveal hidden AVPs.
    pub fn parse(
        bytes: &[u8],
        version: Version,
        secret: Option<&[u8]>,
    ) -> Result<Message, MessageError> {
        Self::parse_encap(bytes, version, Encap::Udp, secret)
    }

    /// Parse a control message with the given framing (for [`Encap::Ip`] `bytes` starts at the
    /// 4 zero octets).
    pub fn parse_encap(
        bytes: &[u8],
        version: Version,
        encap: Encap,
        secret: Option<&[u8]>,
    ) -> Result<Message, MessageError> {
        let (header, body) =
            ControlHeader::parse_encap(bytes, version, encap).map_err(|e| MessageError {
                kind: MessageErrorKind::Header(e),
                reaction: Reaction::Discard,
                header: None,
                message_type: None,
                avps: Vec::new(),
            })?;
        let mut msg = Message {
            header,
            encap,
            message_type: None,
            avps: Vec::new(),
            ignored: Vec::new(),
        };
        let body = &bytes[body];
        if body.is_empty() {
            return Ok(msg);
        }
        let hide_key: Option<Vec<u8>> = secret.map(|s| match version {
            Version::V2 => s.to_vec(),
            Version::V3 => v3_hiding_key(s).to_vec(),
        });
        let fail = |msg: &Message, kind: MessageErrorKind, reaction: Reaction| MessageError {
            kind,
            reaction,
            header: Some(msg.header),
            message_type: msg.message_type,
            avps: msg.avps.clone(),
        };

        let mut iter = AvpIter::new(body);
        // The first AVP must be Message Type (RFC 2661 §4.4.1), in clear.
        let first = match iter.next() {
            Some(Ok(a)) => a,
            Some(Err(e)) => {
                return Err(fail(
                    &msg,
                    MessageErrorKind::AvpFraming(e),
                    Reaction::Discard,
                ));
            }
            None => return Ok(msg),
        };
        if first.attr_type != AttrType::MessageType.get() || first.hidden || first.value.len() != 2
        {
            return Err(fail(
                &msg,
                MessageErrorKind::NoMessageType,
                Reaction::Discard,
            ));
        }
        let message_type = MessageType::from(u16::from_be_bytes([first.value[0], first.value[1]]));
        if first.vendor_id != VENDOR_IETF || !message_type.is_known() {
            // M=1 + unknown type ⇒ clear the tunnel; M=0 ⇒ ignore the message (RFC 2661 §4.4.1).
            let reaction = if first.mandatory {
                Reaction::StopCcn {
                    result: StopCcnResult::GeneralError,
                    error: ErrorCode::BadValue,
                }
            } else {
                Reaction::Ignore
            };
            let kind = MessageErrorKind::UnknownMessageType {
                vendor_id: first.vendor_id,
                message_type,
                mandatory: first.mandatory,
            };
            return Err(fail(&msg, kind, reaction));
        }
        msg.message_type = Some(message_type);
        msg.avps.push(Avp {
            mandatory: first.mandatory,
            hidden: false,
            value: AvpValue::MessageType(message_type),
        });

        let mut rv: Option<&[u8]> = None;
        for raw in iter {
            let raw = match raw {
                Ok(r) => r,
                Err(e) => {
                    return Err(fail(
                        &msg,
                        MessageErrorKind::AvpFraming(e),
                        Reaction::Discard,
                    ));
                }
            };
            let attr = AttrType::from(raw.attr_type);
            // v2: reserved flag bits set ⇒ treat as unrecognised (RFC 2661 §4.1);
            // v3: ignore them (RFC 3931 §5.1).
            let unrecognised = raw.vendor_id != VENDOR_IETF
                || !attr.is_known()
                || matches!(
                    attr,
                    AttrType::PppDisconnectCauseCode | AttrType::ExtendedVendorId
                )
                || (version == Version::V2 && raw.reserved != 0);
            if unrecognised {
                if raw.mandatory {
                    let kind = MessageErrorKind::UnknownMandatoryAvp {
                        vendor_id: raw.vendor_id,
                        attr_type: attr,
                    };
                    return Err(fail(
                        &msg,
                        kind,
                        teardown(message_type, ErrorCode::UnknownMandatoryAvp),
                    ));
                }
                if raw.reserved != 0
                    && version == Version::V2
                    && raw.vendor_id == VENDOR_IETF
                    && attr.is_known()
                {
                    msg.ignored.push(IgnoredAvp {
                        vendor_id: raw.vendor_id,
                        attr_type: attr,
                        error: AvpError::BadValue {
                            attr,
                            reason: "reserved flag bits set",
                        },
                    });
                    continue;
                }
            }
            let revealed;
            let value: Result<&[u8], AvpError> = if raw.hidden {
                match (&hide_key, rv) {
                    (None, _) => Err(AvpError::HiddenWithoutSecret { attr }),
                    (Some(_), None) => Err(AvpError::HiddenWithoutRandomVector { attr }),
                    (Some(k), Some(rv)) => match unhide(raw.attr_type, k, rv, raw.value) {
                        Ok(v) => {
                            revealed = v;
                            Ok(&revealed)
                        }
                        Err(e) => Err(e),
                    },
                }
            } else {
                Ok(raw.value)
            };
            let decoded = value.and_then(|v| AvpValue::decode(raw.vendor_id, raw.attr_type, v));
            match decoded {
                Ok(v) => {
                    if let (AvpValue::RandomVector(_), false) = (&v, raw.hidden) {
                        rv = Some(raw.value);
                    }
                    msg.avps.push(Avp {
                        mandatory: raw.mandatory,
                        hidden: raw.hidden,
                        value: v,
                    });
                }
                Err(e) if raw.mandatory => {
                    let error = match e {
                        AvpError::BadValueLength { .. } | AvpError::HiddenBadLength { .. } => {
                            ErrorCode::BadLength
                        }
                        _ => ErrorCode::BadValue,
                    };
                    return Err(fail(
                        &msg,
                        MessageErrorKind::MalformedAvp(e),
                        teardown(message_type, error),
                    ));
                }
                Err(e) => msg.ignored.push(IgnoredAvp {
                    vendor_id: raw.vendor_id,
                    attr_type: attr,
                    error: e,
                }),
            }
        }

        for &need in required_avps(version, message_type) {
            if msg.find(need).is_none() {
                return Err(fail(
                    &msg,
                    MessageErrorKind::MissingAvp(need),
                    teardown(message_type, ErrorCode::VendorSpecific),
                ));
            }
        }
        Ok(msg)
    }

    /// True for a ZLB (header only).
    pub fn is_zlb(&self) -> bool {
        self.message_type.is_none()
    }

    /// The first IETF AVP value of the given type.
    pub fn find(&self, attr: AttrType) -> Option<&AvpValue> {
        self.avps
            .iter()
            .map(|a| &a.value)
            .find(|v| v.vendor_id() == VENDOR_IETF && v.attr_type() == attr)
    }

    /// Every IETF AVP value of the given type.
    pub fn find_all(&self, attr: AttrType) -> impl Iterator<Item = &AvpValue> {
        self.avps
            .iter()
            .map(|a| &a.value)
            .filter(move |v| v.vendor_id() == VENDOR_IETF && v.attr_type() == attr)
    }

    avp_accessors! {
        /// Assigned Tunnel ID (v2).
        assigned_tunnel_id: AssignedTunnelId -> u16, |x| *x;
        /// Assigned Session ID (v2).
        assigned_session_id: AssignedSessionId -> u16, |x| *x;
        /// Assigned Control Connection ID (v3).
        assigned_connection_id: AssignedConnectionId -> u32, |x| *x;
        /// Local Session ID (v3, the sender's id).
        local_session_id: LocalSessionId -> u32, |x| *x;
        /// Remote Session ID (v3, the receiver's id or 0).
        remote_session_id: RemoteSessionId -> u32, |x| *x;
        /// Result Code.
        result_code: ResultCode -> &ResultCode, |r| r;
        /// Receive Window Size.
        receive_window_size: ReceiveWindowSize -> u16, |x| *x;
        /// Host Name.
        host_name: HostName -> &[u8], |x| x;
        /// Challenge (v2 tunnel authentication).
        challenge: Challenge -> &[u8], |x| x;
        /// Challenge Response (v2 tunnel authentication).
        challenge_response: ChallengeResponse -> &[u8; 16], |x| x;
        /// Tie Breaker.
        tie_breaker: TieBreaker -> &[u8; 8], |x| x;
        /// Control Message Authentication Nonce (v3).
        nonce: CtrlMsgAuthNonce -> &[u8], |x| x;
    }

    /// Re-encode the message (header as parsed, Length recomputed). Hidden AVPs are hidden
    /// again with `secret` (v3: the derived key is used) and the preceding Random Vector,
    /// without padding; without a secret they are sent in clear.
    pub fn emit(&self, secret: Option<&[u8]>) -> Result<Vec<u8>, BuildError> {
        let v3 = self.header.version == Version::V3;
        let mut out = Vec::new();
        if self.encap == Encap::Ip {
            out.extend_from_slice(&[0; IP_PREFIX_LEN]);
        }
        let mut h = self.header;
        h.length = HEADER_LEN as u16;
        h.emit(&mut out).map_err(BuildError::Header)?;
        let key: Option<Vec<u8>> = secret.map(|s| {
            if v3 {
                v3_hiding_key(s).to_vec()
            } else {
                s.to_vec()
            }
        });
        let mut rv: Option<Vec<u8>> = None;
        for a in &self.avps {
            if let AvpValue::RandomVector(r) = &a.value {
                rv = Some(r.clone());
            }
            match (a.hidden, &key, &rv) {
                (true, Some(k), Some(r)) => {
                    push_hidden(&mut out, a.mandatory, &a.value, k, r, &[])?
                }
                _ => push_value(&mut out, a.mandatory, &a.value)?,
            }
        }
        finish_length(&mut out, self.encap)?;
        Ok(out)
    }
}

fn finish_length(out: &mut [u8], encap: Encap) -> Result<(), BuildError> {
    let msg = &mut out[encap.prefix_len()..];
    let len = u16::try_from(msg.len()).map_err(|_| BuildError::TooLong(msg.len()))?;
    control::set_length(msg, len).map_err(BuildError::Header)
}

/// Why a message could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildError {
    /// An AVP could not be encoded.
    Avp(AvpError),
    /// The header could not be encoded (v2 tunnel id above 65535).
    Header(ControlError),
    /// The message would exceed 65535 octets.
    TooLong(usize),
    /// A mandatory AVP of this message type was not added.
    MissingAvp(AttrType),
    /// A hidden AVP was requested without a shared secret.
    NoSecret,
    /// A hidden AVP was requested before any Random Vector AVP.
    NoRandomVector,
    /// The Message Digest AVP must directly follow Message Type (or the first digest).
    DigestPosition,
}

impl From<AvpError> for BuildError {
    fn from(e: AvpError) -> Self {
        BuildError::Avp(e)
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Avp(e) => write!(f, "{e}"),
            BuildError::Header(e) => write!(f, "{e}"),
            BuildError::TooLong(n) => write!(f, "control message of {n} octets is too long"),
            BuildError::MissingAvp(a) => write!(f, "missing mandatory {a} AVP"),
            BuildError::NoSecret => f.write_str("hidden AVP requested without a shared secret"),
            BuildError::NoRandomVector => {
                f.write_str("hidden AVP requested before a Random Vector")
            }
            BuildError::DigestPosition => {
                f.write_str("Message Digest must directly follow Message Type")
            }
        }
    }
}

impl std::error::Error for BuildError {}

/// Builder for one control message (see the module docs).
///
/// ```
/// use ul2tp_wire::avp::{AvpValue, MessageType, FRAMING_SYNC};
/// use ul2tp_wire::control::{Encap, Version};
/// use ul2tp_wire::message::MessageBuilder;
/// let bytes = MessageBuilder::new(Version::V2, Encap::Udp, 0, 0, MessageType::Sccrq)
///     .avp(AvpValue::ProtocolVersion { version: 1, revision: 0 })?
///     .avp(AvpValue::HostName(b"lac".to_vec()))?
///     .avp(AvpValue::FramingCapabilities(FRAMING_SYNC))?
///     .avp(AvpValue::AssignedTunnelId(7))?
///     .finish()?;
/// assert_eq!(&bytes[..2], &[0xc8, 0x02]);
/// # Ok::<(), ul2tp_wire::message::BuildError>(())
/// ```
#[derive(Debug, Clone)]
pub struct MessageBuilder {
    version: Version,
    encap: Encap,
    message_type: MessageType,
    buf: Vec<u8>,
    header_error: Option<ControlError>,
    attrs: Vec<AttrType>,
    hide_key: Option<Vec<u8>>,
    rv: Option<Vec<u8>>,
}

impl MessageBuilder {
    /// Start a message: header (Ns = Nr = 0) and the Message Type AVP (M = 1).
    /// `tunnel_id` is the peer's tunnel id (v2) or control connection id (v3); `session_id`
    /// is the peer's session id (v2; ignored for v3).
    pub fn new(
        version: Version,
        encap: Encap,
        tunnel_id: u32,
        session_id: u16,
        message_type: MessageType,
    ) -> MessageBuilder {
        let mut buf = Vec::with_capacity(128);
        if encap == Encap::Ip {
            buf.extend_from_slice(&[0; IP_PREFIX_LEN]);
        }
        let header_error = ControlHeader::new(version, tunnel_id, session_id)
            .emit(&mut buf)
            .err();
        if header_error.is_some() {
            buf.resize(encap.prefix_len() + HEADER_LEN, 0);
        }
        let mut b = MessageBuilder {
            version,
            encap,
            message_type,
            buf,
            header_error,
            attrs: Vec::new(),
            hide_key: None,
            rv: None,
        };
        // Cannot fail: 8 octets.
        let _ = push_value(&mut b.buf, true, &AvpValue::MessageType(message_type));
        b.attrs.push(AttrType::MessageType);
        b
    }

    /// Set the shared secret used for hidden AVPs (v3: the derived hiding key is used).
    pub fn secret(mut self, secret: &[u8]) -> MessageBuilder {
        self.hide_key = Some(match self.version {
            Version::V2 => secret.to_vec(),
            Version::V3 => v3_hiding_key(secret).to_vec(),
        });
        self
    }

    /// Append an AVP with the RFC's default M bit, in clear.
    pub fn avp(self, value: AvpValue) -> Result<MessageBuilder, BuildError> {
        let v3 = self.version == Version::V3;
        let mandatory = value.vendor_id() == VENDOR_IETF && value.attr_type().default_mandatory(v3);
        self.avp_flags(mandatory, false, value)
    }

    /// Append an AVP with explicit M and H bits. Hidden AVPs need [`MessageBuilder::secret`]
    /// and a Random Vector AVP earlier in the message; no padding is added.
    pub fn avp_flags(
        self,
        mandatory: bool,
        hidden: bool,
        value: AvpValue,
    ) -> Result<MessageBuilder, BuildError> {
        self.push(mandatory, hidden, value, &[])
    }

    /// Append a hidden AVP with the default M bit and the given padding octets (the caller
    /// supplies random padding to hide the value length, RFC 2661 §4.3).
    pub fn avp_hidden(self, value: AvpValue, pad: &[u8]) -> Result<MessageBuilder, BuildError> {
        let v3 = self.version == Version::V3;
        let mandatory = value.vendor_id() == VENDOR_IETF && value.attr_type().default_mandatory(v3);
        self.push(mandatory, true, value, pad)
    }

    /// Append a Message Digest AVP of the given type with zeroed digest (v3). It must come
    /// directly after Message Type (or after a first digest); fill it with
    /// [`crate::digest::sign_message`] once Ns/Nr are set.
    pub fn digest(mut self, digest_type: DigestType) -> Result<MessageBuilder, BuildError> {
        let n = digest_type
            .digest_len()
            .ok_or(BuildError::Avp(AvpError::BadValue {
                attr: AttrType::MessageDigest,
                reason: "unknown digest type",
            }))?;
        if !self
            .attrs
            .iter()
            .skip(1)
            .all(|a| *a == AttrType::MessageDigest)
            || self.attrs.len() > 2
        {
            return Err(BuildError::DigestPosition);
        }
        let v = AvpValue::MessageDigest {
            digest_type,
            digest: vec![0; n],
        };
        push_value(&mut self.buf, true, &v)?;
        self.attrs.push(AttrType::MessageDigest);
        Ok(self)
    }

    fn push(
        mut self,
        mandatory: bool,
        hidden: bool,
        value: AvpValue,
        pad: &[u8],
    ) -> Result<MessageBuilder, BuildError> {
        if hidden {
            let key = self.hide_key.as_ref().ok_or(BuildError::NoSecret)?;
            let rv = self.rv.as_ref().ok_or(BuildError::NoRandomVector)?;
            push_hidden(&mut self.buf, mandatory, &value, key, rv, pad)?;
        } else {
            push_value(&mut self.buf, mandatory, &value)?;
        }
        if let AvpValue::RandomVector(r) = &value {
            self.rv = Some(r.clone());
        }
        if value.vendor_id() == VENDOR_IETF {
            self.attrs.push(value.attr_type());
        }
        Ok(self)
    }

    /// Append an already-encoded AVP (vendor AVPs, tests of peers' behaviour).
    pub fn raw(
        mut self,
        mandatory: bool,
        hidden: bool,
        vendor_id: u16,
        attr_type: u16,
        value: &[u8],
    ) -> Result<MessageBuilder, BuildError> {
        push_raw(
            &mut self.buf,
            mandatory,
            hidden,
            vendor_id,
            attr_type,
            value,
        )?;
        Ok(self)
    }

    /// Patch Length, check that every AVP the RFC requires is present, return the bytes.
    pub fn finish(self) -> Result<Vec<u8>, BuildError> {
        for need in required_avps(self.version, self.message_type) {
            if !self.attrs.contains(need) {
                return Err(BuildError::MissingAvp(*need));
            }
        }
        self.finish_unchecked()
    }

    /// Patch Length and return the bytes without the mandatory-AVP check.
    pub fn finish_unchecked(mut self) -> Result<Vec<u8>, BuildError> {
        if let Some(e) = self.header_error {
            return Err(BuildError::Header(e));
        }
        finish_length(&mut self.buf, self.encap)?;
        Ok(self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avp::FRAMING_SYNC;

    fn sccrq_v2() -> MessageBuilder {
        MessageBuilder::new(Version::V2, Encap::Udp, 0, 0, MessageType::Sccrq)
            .avp(AvpValue::ProtocolVersion {
                version: 1,
                revision: 0,
            })
            .unwrap()
            .avp(AvpValue::HostName(b"lac".to_vec()))
            .unwrap()
            .avp(AvpValue::FramingCapabilities(FRAMING_SYNC))
            .unwrap()
    }

    #[test]
    fn build_and_parse_sccrq() {
        let b = sccrq_v2()
            .avp(AvpValue::AssignedTunnelId(7))
            .unwrap()
            .finish()
            .unwrap();
        let m = Message::parse(&b, Version::V2, None).unwrap();
        assert_eq!(m.message_type, Some(MessageType::Sccrq));
        assert_eq!(m.assigned_tunnel_id(), Some(7));
        assert_eq!(m.host_name(), Some(&b"lac"[..]));
        assert_eq!(m.emit(None).unwrap(), b);
    }

    #[test]
    fn builder_checks_mandatory() {
        assert_eq!(
            sccrq_v2().finish(),
            Err(BuildError::MissingAvp(AttrType::AssignedTunnelId))
        );
        let b = sccrq_v2().finish_unchecked().unwrap();
        let e = Message::parse(&b, Version::V2, None).unwrap_err();
        assert_eq!(
            e.kind,
            MessageErrorKind::MissingAvp(AttrType::AssignedTunnelId)
        );
        assert!(matches!(e.reaction, Reaction::StopCcn { .. }));
        assert!(e.error_message().contains("Assigned Tunnel ID"));
    }

    #[test]
    fn unknown_avps() {
        let base = || {
            MessageBuilder::new(Version::V2, Encap::Udp, 1, 2, MessageType::Icrp)
                .avp(AvpValue::AssignedSessionId(5))
                .unwrap()
        };
        let b = base()
            .raw(false, false, 0, 200, &[1, 2])
            .unwrap()
            .finish()
            .unwrap();
        let m = Message::parse(&b, Version::V2, None).unwrap();
        assert_eq!(m.avps.len(), 3);
        assert_eq!(m.emit(None).unwrap(), b);
        let b = base()
            .raw(true, false, 9, 1, &[1, 2])
            .unwrap()
            .finish()
            .unwrap();
        let e = Message::parse(&b, Version::V2, None).unwrap_err();
        assert_eq!(
            e.reaction,
            Reaction::Cdn {
                result: CdnResult::GeneralError,
                error: ErrorCode::UnknownMandatoryAvp
            }
        );
        assert_eq!(e.avps.len(), 2);
        let rc = e.result_code().unwrap();
        assert_eq!(
            (rc.result, rc.error),
            (2, Some(ErrorCode::UnknownMandatoryAvp))
        );
        // Malformed known AVP: M=0 ignored, M=1 teardown with Error 2.
        let b = base()
            .raw(false, false, 0, 25, &[1, 2])
            .unwrap()
            .finish()
            .unwrap();
        let m = Message::parse(&b, Version::V2, None).unwrap();
        assert_eq!(m.ignored.len(), 1);
        let b = base()
            .raw(true, false, 0, 25, &[1, 2])
            .unwrap()
            .finish()
            .unwrap();
        let e = Message::parse(&b, Version::V2, None).unwrap_err();
        assert_eq!(
            e.reaction,
            Reaction::Cdn {
                result: CdnResult::GeneralError,
                error: ErrorCode::BadLength
            }
        );
    }

    #[test]
    fn unknown_message_type() {
        let b = MessageBuilder::new(Version::V2, Encap::Udp, 1, 0, MessageType::Unknown(99))
            .finish()
            .unwrap();
        let e = Message::parse(&b, Version::V2, None).unwrap_err();
        assert!(matches!(e.reaction, Reaction::StopCcn { .. }));
        let mut b2 = b.clone();
        b2[12] &= 0x7f; // clear M on the Message Type AVP
        let e = Message::parse(&b2, Version::V2, None).unwrap_err();
        assert_eq!(e.reaction, Reaction::Ignore);
        assert!(e.header.is_some());
    }

    #[test]
    fn hidden_round_trip_and_errors() {
        let rv: Vec<u8> = (0u8..16).collect();
        let b = sccrq_v2()
            .secret(b"xyzzy")
            .avp(AvpValue::RandomVector(rv.clone()))
            .unwrap()
            .avp_hidden(AvpValue::AssignedTunnelId(0x1234), &[])
            .unwrap()
            .finish()
            .unwrap();
        // docs/reference/rfc.md §1.19 vector appears verbatim at the end.
        assert_eq!(
            &b[b.len() - 10..],
            &[0xc0, 0x0a, 0, 0, 0, 9, 0x97, 0x16, 0x71, 0xf7]
        );
        let m = Message::parse(&b, Version::V2, Some(b"xyzzy")).unwrap();
        assert_eq!(m.assigned_tunnel_id(), Some(0x1234));
        assert_eq!(m.emit(Some(b"xyzzy")).unwrap(), b);
        let e = Message::parse(&b, Version::V2, None).unwrap_err();
        assert_eq!(
            e.kind,
            MessageErrorKind::MalformedAvp(AvpError::HiddenWithoutSecret {
                attr: AttrType::AssignedTunnelId
            })
        );
        // Hidden without Random Vector.
        let no_rv = sccrq_v2()
            .raw(true, true, 0, 9, &[0x97, 0x16, 0x71, 0xf7])
            .unwrap()
            .finish_unchecked()
            .unwrap();
        let e = Message::parse(&no_rv, Version::V2, Some(b"xyzzy")).unwrap_err();
        assert!(matches!(
            e.kind,
            MessageErrorKind::MalformedAvp(AvpError::HiddenWithoutRandomVector { .. })
        ));
        assert!(matches!(
            MessageBuilder::new(Version::V2, Encap::Udp, 0, 0, MessageType::Hello)
                .secret(b"s")
                .avp_hidden(AvpValue::AssignedTunnelId(1), &[]),
            Err(BuildError::NoRandomVector)
        ));
    }

    #[test]
    fn v3_over_ip_and_digest_position() {
        let b = MessageBuilder::new(Version::V3, Encap::Ip, 0xabcdef, 0, MessageType::Hello)
            .digest(DigestType::HmacMd5)
            .unwrap()
            .finish()
            .unwrap();
        assert_eq!(&b[..4], &[0, 0, 0, 0]);
        let m = Message::parse_encap(&b, Version::V3, Encap::Ip, None).unwrap();
        assert_eq!(m.header.tunnel_id, 0xabcdef);
        assert_eq!(m.emit(None).unwrap(), b);
        let late = MessageBuilder::new(Version::V3, Encap::Udp, 1, 0, MessageType::Hello)
            .avp(AvpValue::RandomVector(vec![1]))
            .unwrap()
            .digest(DigestType::HmacSha1);
        assert!(matches!(late, Err(BuildError::DigestPosition)));
    }

    #[test]
    fn first_avp_must_be_message_type() {
        let mut b = Vec::new();
        ControlHeader::new(Version::V2, 1, 0).emit(&mut b).unwrap();
        push_value(&mut b, true, &AvpValue::AssignedTunnelId(3)).unwrap();
        let n = b.len() as u16;
        control::set_length(&mut b, n).unwrap();
        let e = Message::parse(&b, Version::V2, None).unwrap_err();
        assert_eq!(e.kind, MessageErrorKind::NoMessageType);
        assert_eq!(e.reaction, Reaction::Discard);
    }
}
