//! Typed AVP values (docs/reference/rfc.md §1.4 for L2TPv2, §2.6 for L2TPv3, §2.13 for Circuit Status).

use super::types::*;
use super::{AvpError, VENDOR_IETF};

/// Result Code AVP (1): result, optional error code, optional error message (docs/reference/rfc.md §1.6).
/// `result` is a number because its meaning depends on the message ([`StopCcnResult`] in
/// StopCCN, [`CdnResult`] in CDN).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResultCode {
    /// Result Code value.
    pub result: u16,
    /// Error Code (present if the AVP is at least 10 octets).
    pub error: Option<ErrorCode>,
    /// Error Message octets (UTF-8 by the RFC, kept as received).
    pub message: Option<Vec<u8>>,
}

impl ResultCode {
    /// The error message as text (invalid UTF-8 replaced).
    pub fn message_str(&self) -> Option<String> {
        self.message
            .as_ref()
            .map(|m| String::from_utf8_lossy(m).into_owned())
    }
}

/// Q.931 Cause Code AVP (12).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Q931Cause {
    /// Q.931 cause code.
    pub cause_code: u16,
    /// Q.931 message code.
    pub cause_msg: u8,
    /// Optional ASCII advisory text.
    pub advisory: Vec<u8>,
}

/// Call Errors (v2) / Circuit Errors (v3) AVP (34). The v2 layout has six counters
/// (Length 32); RFC 3931's figure has only the last four (Length 24) — both are accepted
/// (docs/reference/rfc.md §6); `compact` records which one was received / is to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallErrors {
    /// CRC errors (absent in the compact form, then 0).
    pub crc_errors: u32,
    /// Framing errors (absent in the compact form, then 0).
    pub framing_errors: u32,
    /// Hardware overruns.
    pub hardware_overruns: u32,
    /// Buffer overruns.
    pub buffer_overruns: u32,
    /// Time-out errors.
    pub timeout_errors: u32,
    /// Alignment errors.
    pub alignment_errors: u32,
    /// True for the 4-counter (value 18 octets) form.
    pub compact: bool,
}

/// The typed value of an AVP. One variant per attribute; unknown IETF attributes and every
/// vendor attribute are [`AvpValue::Raw`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AvpValue {
    /// 0: Message Type.
    MessageType(MessageType),
    /// 1: Result Code.
    ResultCode(ResultCode),
    /// 2: Protocol Version (version 1, revision 0 for RFC 2661).
    ProtocolVersion {
        /// Version (1).
        version: u8,
        /// Revision (0).
        revision: u8,
    },
    /// 3: Framing Capabilities bitmask ([`FRAMING_SYNC`], [`FRAMING_ASYNC`]).
    FramingCapabilities(u32),
    /// 4: Bearer Capabilities bitmask ([`BEARER_DIGITAL`], [`BEARER_ANALOG`]).
    BearerCapabilities(u32),
    /// 5: Tie Breaker (8 octets; control connection or session tie breaker).
    TieBreaker([u8; 8]),
    /// 6: Firmware Revision.
    FirmwareRevision(u16),
    /// 7: Host Name (at least one octet).
    HostName(Vec<u8>),
    /// 8: Vendor Name.
    VendorName(Vec<u8>),
    /// 9: Assigned Tunnel ID (non-zero).
    AssignedTunnelId(u16),
    /// 10: Receive Window Size (non-zero).
    ReceiveWindowSize(u16),
    /// 11: Challenge (at least one octet).
    Challenge(Vec<u8>),
    /// 12: Q.931 Cause Code.
    Q931CauseCode(Q931Cause),
    /// 13: Challenge Response (16 octets).
    ChallengeResponse([u8; 16]),
    /// 14: Assigned Session ID (non-zero).
    AssignedSessionId(u16),
    /// 15: Call Serial Number (v3: Serial Number).
    CallSerialNumber(u32),
    /// 16: Minimum BPS.
    MinimumBps(u32),
    /// 17: Maximum BPS.
    MaximumBps(u32),
    /// 18: Bearer Type bitmask.
    BearerType(u32),
    /// 19: Framing Type bitmask.
    FramingType(u32),
    /// 21: Called Number.
    CalledNumber(Vec<u8>),
    /// 22: Calling Number.
    CallingNumber(Vec<u8>),
    /// 23: Sub-Address.
    SubAddress(Vec<u8>),
    /// 24: (Tx) Connect Speed, 32 bit.
    TxConnectSpeed(u32),
    /// 25: Physical Channel ID.
    PhysicalChannelId(u32),
    /// 26: Initial Received LCP CONFREQ (LCP options).
    InitialReceivedLcpConfreq(Vec<u8>),
    /// 27: Last Sent LCP CONFREQ.
    LastSentLcpConfreq(Vec<u8>),
    /// 28: Last Received LCP CONFREQ.
    LastReceivedLcpConfreq(Vec<u8>),
    /// 29: Proxy Authen Type.
    ProxyAuthenType(ProxyAuthenType),
    /// 30: Proxy Authen Name.
    ProxyAuthenName(Vec<u8>),
    /// 31: Proxy Authen Challenge.
    ProxyAuthenChallenge(Vec<u8>),
    /// 32: Proxy Authen ID (the reserved octet is sent as 0 and ignored on receipt).
    ProxyAuthenId(u8),
    /// 33: Proxy Authen Response.
    ProxyAuthenResponse(Vec<u8>),
    /// 34: Call Errors / Circuit Errors.
    CallErrors(CallErrors),
    /// 35: ACCM.
    Accm {
        /// Send ACCM.
        send_accm: u32,
        /// Receive ACCM.
        receive_accm: u32,
    },
    /// 36: Random Vector.
    RandomVector(Vec<u8>),
    /// 37: Private Group ID.
    PrivateGroupId(Vec<u8>),
    /// 38: Rx Connect Speed, 32 bit.
    RxConnectSpeed(u32),
    /// 39: Sequencing Required (no value).
    SequencingRequired,
    /// 59: Message Digest (digest type and 16/20 digest octets).
    MessageDigest {
        /// HMAC-MD5 or HMAC-SHA-1.
        digest_type: DigestType,
        /// The digest octets.
        digest: Vec<u8>,
    },
    /// 60: Router ID.
    RouterId(u32),
    /// 61: Assigned Control Connection ID (non-zero).
    AssignedConnectionId(u32),
    /// 62: Pseudowire Capabilities List.
    PseudowireCapabilities(Vec<PwType>),
    /// 63: Local Session ID (non-zero).
    LocalSessionId(u32),
    /// 64: Remote Session ID (0 until known).
    RemoteSessionId(u32),
    /// 65: Assigned Cookie (0, 4 or 8 octets).
    AssignedCookie(Vec<u8>),
    /// 66: Remote End ID.
    RemoteEndId(Vec<u8>),
    /// 68: Pseudowire Type.
    PseudowireType(PwType),
    /// 69: L2-Specific Sublayer.
    L2SpecificSublayer(L2SpecType),
    /// 70: Data Sequencing.
    DataSequencing(DataSequencing),
    /// 71: Circuit Status bitmask ([`CIRCUIT_ACTIVE`], [`CIRCUIT_NEW`], ...).
    CircuitStatus(u16),
    /// 72: Preferred Language.
    PreferredLanguage(Vec<u8>),
    /// 73: Control Message Authentication Nonce.
    CtrlMsgAuthNonce(Vec<u8>),
    /// 74: Tx Connect Speed, 64 bit.
    TxConnectSpeedV3(u64),
    /// 75: Rx Connect Speed, 64 bit.
    RxConnectSpeedV3(u64),
    /// Any other attribute (unknown IETF or vendor-specific), value kept as received.
    Raw {
        /// Vendor ID.
        vendor_id: u16,
        /// Attribute Type.
        attr_type: u16,
        /// Value octets.
        value: Vec<u8>,
    },
}

fn fixed<const N: usize>(attr: AttrType, v: &[u8]) -> Result<[u8; N], AvpError> {
    <[u8; N]>::try_from(v).map_err(|_| AvpError::BadValueLength { attr, len: v.len() })
}

fn u16v(attr: AttrType, v: &[u8]) -> Result<u16, AvpError> {
    fixed::<2>(attr, v).map(u16::from_be_bytes)
}

fn u32v(attr: AttrType, v: &[u8]) -> Result<u32, AvpError> {
    fixed::<4>(attr, v).map(u32::from_be_bytes)
}

fn u64v(attr: AttrType, v: &[u8]) -> Result<u64, AvpError> {
    fixed::<8>(attr, v).map(u64::from_be_bytes)
}

fn nonzero<T: Default + PartialEq>(attr: AttrType, x: T) -> Result<T, AvpError> {
    if x == T::default() {
        Err(AvpError::BadValue {
            attr,
            reason: "value must not be zero",
        })
    } else {
        Ok(x)
    }
}

fn non_empty(attr: AttrType, v: &[u8]) -> Result<Vec<u8>, AvpError> {
    if v.is_empty() {
        Err(AvpError::BadValueLength { attr, len: 0 })
    } else {
        Ok(v.to_vec())
    }
}

fn be32(v: &[u8], i: usize) -> u32 {
    // Callers check the length first.
    u32::from_be_bytes([v[i], v[i + 1], v[i + 2], v[i + 3]])
}

impl AvpValue {
    /// Decode the (revealed) value of an AVP. Vendor AVPs and unknown attributes become
    /// [`AvpValue::Raw`]; for known attributes the value length (and, where the RFC says so,
    /// the value: non-zero ids and window) is checked.
    pub fn decode(vendor_id: u16, attr_type: u16, v: &[u8]) -> Result<AvpValue, AvpError> {
        if vendor_id != VENDOR_IETF {
            return Ok(AvpValue::Raw {
                vendor_id,
                attr_type,
                value: v.to_vec(),
            });
        }
        let a = AttrType::from(attr_type);
        let bad_len = || AvpError::BadValueLength {
            attr: a,
            len: v.len(),
        };
        Ok(match a {
            AttrType::MessageType => AvpValue::MessageType(MessageType::from(u16v(a, v)?)),
            AttrType::ResultCode => {
                // RFC 2661 §4.4.2: 8, 10 or 10+n octets in total.
                let result = match v {
                    [r0, r1, ..] => u16::from_be_bytes([*r0, *r1]),
                    _ => return Err(bad_len()),
                };
                let (error, message) = match v.len() {
                    2 => (None, None),
                    3 => return Err(bad_len()),
                    4 => (
                        Some(ErrorCode::from(u16::from_be_bytes([v[2], v[3]]))),
                        None,
                    ),
                    _ => (
                        Some(ErrorCode::from(u16::from_be_bytes([v[2], v[3]]))),
                        Some(v[4..].to_vec()),
                    ),
                };
                AvpValue::ResultCode(ResultCode {
                    result,
                    error,
                    message,
                })
            }
            AttrType::ProtocolVersion => {
                let [version, revision] = fixed::<2>(a, v)?;
                AvpValue::ProtocolVersion { version, revision }
            }
            AttrType::FramingCapabilities => AvpValue::FramingCapabilities(u32v(a, v)?),
            AttrType::BearerCapabilities => AvpValue::BearerCapabilities(u32v(a, v)?),
            AttrType::TieBreaker => AvpValue::TieBreaker(fixed::<8>(a, v)?),
            AttrType::FirmwareRevision => AvpValue::FirmwareRevision(u16v(a, v)?),
            AttrType::HostName => AvpValue::HostName(non_empty(a, v)?),
            AttrType::VendorName => AvpValue::VendorName(v.to_vec()),
            AttrType::AssignedTunnelId => AvpValue::AssignedTunnelId(nonzero(a, u16v(a, v)?)?),
            AttrType::ReceiveWindowSize => AvpValue::ReceiveWindowSize(nonzero(a, u16v(a, v)?)?),
            AttrType::Challenge => AvpValue::Challenge(non_empty(a, v)?),
            AttrType::Q931CauseCode => {
                if v.len() < 3 {
                    return Err(bad_len());
                }
                AvpValue::Q931CauseCode(Q931Cause {
                    cause_code: u16::from_be_bytes([v[0], v[1]]),
                    cause_msg: v[2],
                    advisory: v[3..].to_vec(),
                })
            }
            AttrType::ChallengeResponse => AvpValue::ChallengeResponse(fixed::<16>(a, v)?),
            AttrType::AssignedSessionId => AvpValue::AssignedSessionId(nonzero(a, u16v(a, v)?)?),
            AttrType::CallSerialNumber => AvpValue::CallSerialNumber(u32v(a, v)?),
            AttrType::MinimumBps => AvpValue::MinimumBps(u32v(a, v)?),
            AttrType::MaximumBps => AvpValue::MaximumBps(u32v(a, v)?),
            AttrType::BearerType => AvpValue::BearerType(u32v(a, v)?),
            AttrType::FramingType => AvpValue::FramingType(u32v(a, v)?),
            AttrType::CalledNumber => AvpValue::CalledNumber(v.to_vec()),
            AttrType::CallingNumber => AvpValue::CallingNumber(v.to_vec()),
            AttrType::SubAddress => AvpValue::SubAddress(v.to_vec()),
            AttrType::TxConnectSpeed => AvpValue::TxConnectSpeed(u32v(a, v)?),
            AttrType::PhysicalChannelId => AvpValue::PhysicalChannelId(u32v(a, v)?),
            AttrType::InitialReceivedLcpConfreq => AvpValue::InitialReceivedLcpConfreq(v.to_vec()),
            AttrType::LastSentLcpConfreq => AvpValue::LastSentLcpConfreq(v.to_vec()),
            AttrType::LastReceivedLcpConfreq => AvpValue::LastReceivedLcpConfreq(v.to_vec()),
            AttrType::ProxyAuthenType => {
                AvpValue::ProxyAuthenType(ProxyAuthenType::from(u16v(a, v)?))
            }
            AttrType::ProxyAuthenName => AvpValue::ProxyAuthenName(v.to_vec()),
            AttrType::ProxyAuthenChallenge => AvpValue::ProxyAuthenChallenge(non_empty(a, v)?),
            AttrType::ProxyAuthenId => AvpValue::ProxyAuthenId(fixed::<2>(a, v)?[1]),
            AttrType::ProxyAuthenResponse => AvpValue::ProxyAuthenResponse(v.to_vec()),
            AttrType::CallErrors => {
                // u16 reserved + 6 counters (26 octets) or + 4 counters (18 octets).
                let e = match v.len() {
                    26 => CallErrors {
                        crc_errors: be32(v, 2),
                        framing_errors: be32(v, 6),
                        hardware_overruns: be32(v, 10),
                        buffer_overruns: be32(v, 14),
                        timeout_errors: be32(v, 18),
                        alignment_errors: be32(v, 22),
                        compact: false,
                    },
                    18 => CallErrors {
                        crc_errors: 0,
                        framing_errors: 0,
                        hardware_overruns: be32(v, 2),
                        buffer_overruns: be32(v, 6),
                        timeout_errors: be32(v, 10),
                        alignment_errors: be32(v, 14),
                        compact: true,
                    },
                    _ => return Err(bad_len()),
                };
                AvpValue::CallErrors(e)
            }
            AttrType::Accm => {
                if v.len() != 10 {
                    return Err(bad_len());
                }
                AvpValue::Accm {
                    send_accm: be32(v, 2),
                    receive_accm: be32(v, 6),
                }
            }
            AttrType::RandomVector => AvpValue::RandomVector(non_empty(a, v)?),
            AttrType::PrivateGroupId => AvpValue::PrivateGroupId(v.to_vec()),
            AttrType::RxConnectSpeed => AvpValue::RxConnectSpeed(u32v(a, v)?),
            AttrType::SequencingRequired => {
                if !v.is_empty() {
                    return Err(bad_len());
                }
                AvpValue::SequencingRequired
            }
            AttrType::MessageDigest => {
                let (&t, digest) = v.split_first().ok_or_else(bad_len)?;
                let digest_type = DigestType::from(t);
                match digest_type.digest_len() {
                    Some(n) if n == digest.len() => {}
                    Some(_) => return Err(bad_len()),
                    None => {
                        return Err(AvpError::BadValue {
                            attr: a,
                            reason: "unknown digest type",
                        })
                    }
                }
                AvpValue::MessageDigest {
                    digest_type,
                    digest: digest.to_vec(),
                }
            }
            AttrType::RouterId => AvpValue::RouterId(u32v(a, v)?),
            AttrType::AssignedConnectionId => {
                AvpValue::AssignedConnectionId(nonzero(a, u32v(a, v)?)?)
            }
            AttrType::PseudowireCapabilities => {
                if v.is_empty() || v.len() % 2 != 0 {
                    return Err(bad_len());
                }
                AvpValue::PseudowireCapabilities(
                    v.chunks_exact(2)
                        .map(|c| PwType::from(u16::from_be_bytes([c[0], c[1]])))
                        .collect(),
                )
            }
            AttrType::LocalSessionId => AvpValue::LocalSessionId(nonzero(a, u32v(a, v)?)?),
            AttrType::RemoteSessionId => AvpValue::RemoteSessionId(u32v(a, v)?),
            AttrType::AssignedCookie => {
                if !matches!(v.len(), 0 | 4 | 8) {
                    return Err(bad_len());
                }
                AvpValue::AssignedCookie(v.to_vec())
            }
            AttrType::RemoteEndId => AvpValue::RemoteEndId(v.to_vec()),
            AttrType::PseudowireType => AvpValue::PseudowireType(PwType::from(u16v(a, v)?)),
            AttrType::L2SpecificSublayer => {
                AvpValue::L2SpecificSublayer(L2SpecType::from(u16v(a, v)?))
            }
            AttrType::DataSequencing => AvpValue::DataSequencing(DataSequencing::from(u16v(a, v)?)),
            AttrType::CircuitStatus => AvpValue::CircuitStatus(u16v(a, v)?),
            AttrType::PreferredLanguage => AvpValue::PreferredLanguage(v.to_vec()),
            AttrType::CtrlMsgAuthNonce => AvpValue::CtrlMsgAuthNonce(non_empty(a, v)?),
            AttrType::TxConnectSpeedV3 => AvpValue::TxConnectSpeedV3(u64v(a, v)?),
            AttrType::RxConnectSpeedV3 => AvpValue::RxConnectSpeedV3(u64v(a, v)?),
            AttrType::PppDisconnectCauseCode
            | AttrType::ExtendedVendorId
            | AttrType::Unknown(_) => AvpValue::Raw {
                vendor_id,
                attr_type,
                value: v.to_vec(),
            },
        })
    }

    /// The attribute type of this value (for `Raw`, its number as an [`AttrType`]).
    pub fn attr_type(&self) -> AttrType {
        use AttrType as A;
        match self {
            AvpValue::MessageType(_) => A::MessageType,
            AvpValue::ResultCode(_) => A::ResultCode,
            AvpValue::ProtocolVersion { .. } => A::ProtocolVersion,
            AvpValue::FramingCapabilities(_) => A::FramingCapabilities,
            AvpValue::BearerCapabilities(_) => A::BearerCapabilities,
            AvpValue::TieBreaker(_) => A::TieBreaker,
            AvpValue::FirmwareRevision(_) => A::FirmwareRevision,
            AvpValue::HostName(_) => A::HostName,
            AvpValue::VendorName(_) => A::VendorName,
            AvpValue::AssignedTunnelId(_) => A::AssignedTunnelId,
            AvpValue::ReceiveWindowSize(_) => A::ReceiveWindowSize,
            AvpValue::Challenge(_) => A::Challenge,
            AvpValue::Q931CauseCode(_) => A::Q931CauseCode,
            AvpValue::ChallengeResponse(_) => A::ChallengeResponse,
            AvpValue::AssignedSessionId(_) => A::AssignedSessionId,
            AvpValue::CallSerialNumber(_) => A::CallSerialNumber,
            AvpValue::MinimumBps(_) => A::MinimumBps,
            AvpValue::MaximumBps(_) => A::MaximumBps,
            AvpValue::BearerType(_) => A::BearerType,
            AvpValue::FramingType(_) => A::FramingType,
            AvpValue::CalledNumber(_) => A::CalledNumber,
            AvpValue::CallingNumber(_) => A::CallingNumber,
            AvpValue::SubAddress(_) => A::SubAddress,
            AvpValue::TxConnectSpeed(_) => A::TxConnectSpeed,
            AvpValue::PhysicalChannelId(_) => A::PhysicalChannelId,
            AvpValue::InitialReceivedLcpConfreq(_) => A::InitialReceivedLcpConfreq,
            AvpValue::LastSentLcpConfreq(_) => A::LastSentLcpConfreq,
            AvpValue::LastReceivedLcpConfreq(_) => A::LastReceivedLcpConfreq,
            AvpValue::ProxyAuthenType(_) => A::ProxyAuthenType,
            AvpValue::ProxyAuthenName(_) => A::ProxyAuthenName,
            AvpValue::ProxyAuthenChallenge(_) => A::ProxyAuthenChallenge,
            AvpValue::ProxyAuthenId(_) => A::ProxyAuthenId,
            AvpValue::ProxyAuthenResponse(_) => A::ProxyAuthenResponse,
            AvpValue::CallErrors(_) => A::CallErrors,
            AvpValue::Accm { .. } => A::Accm,
            AvpValue::RandomVector(_) => A::RandomVector,
            AvpValue::PrivateGroupId(_) => A::PrivateGroupId,
            AvpValue::RxConnectSpeed(_) => A::RxConnectSpeed,
            AvpValue::SequencingRequired => A::SequencingRequired,
            AvpValue::MessageDigest { .. } => A::MessageDigest,
            AvpValue::RouterId(_) => A::RouterId,
            AvpValue::AssignedConnectionId(_) => A::AssignedConnectionId,
            AvpValue::PseudowireCapabilities(_) => A::PseudowireCapabilities,
            AvpValue::LocalSessionId(_) => A::LocalSessionId,
            AvpValue::RemoteSessionId(_) => A::RemoteSessionId,
            AvpValue::AssignedCookie(_) => A::AssignedCookie,
            AvpValue::RemoteEndId(_) => A::RemoteEndId,
            AvpValue::PseudowireType(_) => A::PseudowireType,
            AvpValue::L2SpecificSublayer(_) => A::L2SpecificSublayer,
            AvpValue::DataSequencing(_) => A::DataSequencing,
            AvpValue::CircuitStatus(_) => A::CircuitStatus,
            AvpValue::PreferredLanguage(_) => A::PreferredLanguage,
            AvpValue::CtrlMsgAuthNonce(_) => A::CtrlMsgAuthNonce,
            AvpValue::TxConnectSpeedV3(_) => A::TxConnectSpeedV3,
            AvpValue::RxConnectSpeedV3(_) => A::RxConnectSpeedV3,
            AvpValue::Raw { attr_type, .. } => A::from(*attr_type),
        }
    }

    /// Vendor ID (0 except for vendor `Raw` values).
    pub fn vendor_id(&self) -> u16 {
        match self {
            AvpValue::Raw { vendor_id, .. } => *vendor_id,
            _ => VENDOR_IETF,
        }
    }

    /// Append the Attribute Value octets (in clear) to `out`.
    pub fn encode_value(&self, out: &mut Vec<u8>) {
        match self {
            AvpValue::MessageType(t) => out.extend_from_slice(&t.get().to_be_bytes()),
            AvpValue::ResultCode(r) => {
                out.extend_from_slice(&r.result.to_be_bytes());
                // An error message needs an error code in front of it.
                if r.error.is_some() || r.message.is_some() {
                    let e = r.error.map_or(0, ErrorCode::get);
                    out.extend_from_slice(&e.to_be_bytes());
                }
                if let Some(m) = &r.message {
                    out.extend_from_slice(m);
                }
            }
            AvpValue::ProtocolVersion { version, revision } => {
                out.extend_from_slice(&[*version, *revision])
            }
            AvpValue::FramingCapabilities(x)
            | AvpValue::BearerCapabilities(x)
            | AvpValue::CallSerialNumber(x)
            | AvpValue::MinimumBps(x)
            | AvpValue::MaximumBps(x)
            | AvpValue::BearerType(x)
            | AvpValue::FramingType(x)
            | AvpValue::TxConnectSpeed(x)
            | AvpValue::PhysicalChannelId(x)
            | AvpValue::RxConnectSpeed(x)
            | AvpValue::RouterId(x)
            | AvpValue::AssignedConnectionId(x)
            | AvpValue::LocalSessionId(x)
            | AvpValue::RemoteSessionId(x) => out.extend_from_slice(&x.to_be_bytes()),
            AvpValue::FirmwareRevision(x)
            | AvpValue::AssignedTunnelId(x)
            | AvpValue::ReceiveWindowSize(x)
            | AvpValue::AssignedSessionId(x)
            | AvpValue::CircuitStatus(x) => out.extend_from_slice(&x.to_be_bytes()),
            AvpValue::TieBreaker(b) => out.extend_from_slice(b),
            AvpValue::ChallengeResponse(b) => out.extend_from_slice(b),
            AvpValue::HostName(b)
            | AvpValue::VendorName(b)
            | AvpValue::Challenge(b)
            | AvpValue::CalledNumber(b)
            | AvpValue::CallingNumber(b)
            | AvpValue::SubAddress(b)
            | AvpValue::InitialReceivedLcpConfreq(b)
            | AvpValue::LastSentLcpConfreq(b)
            | AvpValue::LastReceivedLcpConfreq(b)
            | AvpValue::ProxyAuthenName(b)
            | AvpValue::ProxyAuthenChallenge(b)
            | AvpValue::ProxyAuthenResponse(b)
            | AvpValue::RandomVector(b)
            | AvpValue::PrivateGroupId(b)
            | AvpValue::AssignedCookie(b)
            | AvpValue::RemoteEndId(b)
            | AvpValue::PreferredLanguage(b)
            | AvpValue::CtrlMsgAuthNonce(b) => out.extend_from_slice(b),
            AvpValue::Q931CauseCode(q) => {
                out.extend_from_slice(&q.cause_code.to_be_bytes());
                out.push(q.cause_msg);
                out.extend_from_slice(&q.advisory);
            }
            AvpValue::ProxyAuthenType(t) => out.extend_from_slice(&t.get().to_be_bytes()),
            AvpValue::ProxyAuthenId(id) => out.extend_from_slice(&[0, *id]),
            AvpValue::CallErrors(e) => {
                out.extend_from_slice(&[0, 0]);
                if !e.compact {
                    out.extend_from_slice(&e.crc_errors.to_be_bytes());
                    out.extend_from_slice(&e.framing_errors.to_be_bytes());
                }
                for x in [
                    e.hardware_overruns,
                    e.buffer_overruns,
                    e.timeout_errors,
                    e.alignment_errors,
                ] {
                    out.extend_from_slice(&x.to_be_bytes());
                }
            }
            AvpValue::Accm {
                send_accm,
                receive_accm,
            } => {
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&send_accm.to_be_bytes());
                out.extend_from_slice(&receive_accm.to_be_bytes());
            }
            AvpValue::SequencingRequired => {}
            AvpValue::MessageDigest {
                digest_type,
                digest,
            } => {
                out.push(digest_type.get());
                out.extend_from_slice(digest);
            }
            AvpValue::PseudowireCapabilities(list) => {
                for t in list {
                    out.extend_from_slice(&t.get().to_be_bytes());
                }
            }
            AvpValue::PseudowireType(t) => out.extend_from_slice(&t.get().to_be_bytes()),
            AvpValue::L2SpecificSublayer(t) => out.extend_from_slice(&t.get().to_be_bytes()),
            AvpValue::DataSequencing(t) => out.extend_from_slice(&t.get().to_be_bytes()),
            AvpValue::TxConnectSpeedV3(x) | AvpValue::RxConnectSpeedV3(x) => {
                out.extend_from_slice(&x.to_be_bytes())
            }
            AvpValue::Raw { value, .. } => out.extend_from_slice(value),
        }
    }

    /// The value octets as a new vector.
    pub fn to_value_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode_value(&mut v);
        v
    }
}

/// The value of the PPP Disconnect Cause Code AVP (46, RFC 3145 §2): why the PPP session of a
/// call ended, sent in a CDN next to the Result Code. Informational only: the AVP MUST NOT be
/// marked mandatory and must not change how the call is handled. It travels as
/// [`AvpValue::Raw`] (the message layer does not interpret it); [`PppDisconnectCause::to_avp`]
/// and [`PppDisconnectCause::parse`] convert.
///
/// ```text
/// | Disconnect Code (2) | Control Protocol Number (2) | Direction (1) | Message (UTF-8) ...
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PppDisconnectCause {
    /// Disconnect Code (RFC 3145; constants in [`PppDisconnectCause`]).
    pub code: u16,
    /// The PPP protocol number of the control protocol concerned (e.g. 0xc021 LCP), 0 if none.
    pub protocol: u16,
    /// Where the disconnect originated: 0 global, 1 at peer, 2 at local.
    pub direction: u8,
    /// Optional human-readable text.
    pub message: Vec<u8>,
}

impl PppDisconnectCause {
    /// Octets of the fixed part of the value.
    pub const FIXED_LEN: usize = 5;
    /// Direction: a global error.
    pub const GLOBAL: u8 = 0;
    /// Direction: at the peer.
    pub const AT_PEER: u8 = 1;
    /// Direction: at the sender of the AVP.
    pub const AT_LOCAL: u8 = 2;
    /// No information available.
    pub const NO_INFO: u16 = 0;
    /// Administrative disconnect.
    pub const ADMIN: u16 = 1;
    /// Normal disconnection, LCP Terminate-Request sent.
    pub const NORMAL: u16 = 3;
    /// LCP: FSM timeout (TO-), negotiation did not converge.
    pub const LCP_TIMEOUT: u16 = 5;
    /// LCP: no recognisable LCP packets were received.
    pub const LCP_SILENT: u16 = 6;
    /// LCP: Echo-Request timeout (keepalive failure).
    pub const LCP_ECHO_TIMEOUT: u16 = 8;
    /// Authentication: the authentication protocol timed out.
    pub const AUTH_TIMEOUT: u16 = 13;
    /// Authentication: no acceptable authentication protocol.
    pub const AUTH_PROTOCOL_REFUSED: u16 = 15;
    /// Authentication failed (PAP Authenticate-Nak, CHAP Failure).
    pub const AUTH_FAILED: u16 = 16;
    /// NCP: no NCPs available.
    pub const NO_NCP: u16 = 18;

    /// Parse an AVP value; `None` if shorter than the fixed part.
    pub fn parse(v: &[u8]) -> Option<PppDisconnectCause> {
        let fixed = v.get(..Self::FIXED_LEN)?;
        Some(PppDisconnectCause {
            code: u16::from_be_bytes([fixed[0], fixed[1]]),
            protocol: u16::from_be_bytes([fixed[2], fixed[3]]),
            direction: fixed[4],
            message: v[Self::FIXED_LEN..].to_vec(),
        })
    }

    /// The cause of a PPP Disconnect Cause Code AVP (IETF vendor id, attribute 46).
    pub fn from_avp(a: &AvpValue) -> Option<PppDisconnectCause> {
        match a {
            AvpValue::Raw {
                vendor_id: 0,
                attr_type: 46,
                value,
            } => Self::parse(value),
            _ => None,
        }
    }

    /// The AVP value, as sent. The message is cut to what fits in one AVP.
    pub fn to_avp(&self) -> AvpValue {
        let mut value = Vec::with_capacity(Self::FIXED_LEN + self.message.len());
        value.extend_from_slice(&self.code.to_be_bytes());
        value.extend_from_slice(&self.protocol.to_be_bytes());
        value.push(self.direction);
        let room = super::AVP_MAX_VALUE_LEN - Self::FIXED_LEN;
        value.extend_from_slice(&self.message[..self.message.len().min(room)]);
        AvpValue::Raw {
            vendor_id: 0,
            attr_type: 46,
            value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_code_forms() {
        let a = AttrType::ResultCode.get();
        let r = AvpValue::decode(0, a, &[0, 2]).unwrap();
        assert_eq!(
            r,
            AvpValue::ResultCode(ResultCode {
                result: 2,
                error: None,
                message: None
            })
        );
        assert!(AvpValue::decode(0, a, &[0, 2, 0]).is_err());
        assert!(AvpValue::decode(0, a, &[0]).is_err());
        let r = AvpValue::decode(0, a, b"\x00\x02\x00\x08bad avp").unwrap();
        let AvpValue::ResultCode(rc) = &r else {
            panic!("not a result code")
        };
        assert_eq!(rc.error, Some(ErrorCode::UnknownMandatoryAvp));
        assert_eq!(rc.message_str().as_deref(), Some("bad avp"));
        assert_eq!(r.to_value_bytes(), b"\x00\x02\x00\x08bad avp");
    }

    #[test]
    fn length_and_value_checks_name_the_attribute() {
        let e = AvpValue::decode(0, 9, &[0, 0]).unwrap_err();
        assert_eq!(e.attr(), Some(AttrType::AssignedTunnelId));
        let e = AvpValue::decode(0, 9, &[0, 1, 2]).unwrap_err();
        assert_eq!(
            e,
            AvpError::BadValueLength {
                attr: AttrType::AssignedTunnelId,
                len: 3
            }
        );
        assert!(e.to_string().contains("Assigned Tunnel ID"));
        assert!(AvpValue::decode(0, 10, &[0, 0]).is_err());
        assert!(AvpValue::decode(0, 39, &[0]).is_err());
        assert!(AvpValue::decode(0, 65, &[1, 2, 3]).is_err());
        assert!(AvpValue::decode(0, 62, &[0, 5, 0]).is_err());
        assert!(AvpValue::decode(0, 59, &[0; 17]).is_ok());
        assert!(AvpValue::decode(0, 59, &[1; 17]).is_err());
        assert!(AvpValue::decode(0, 59, &[2; 21]).is_err());
        assert!(AvpValue::decode(0, 13, &[0; 15]).is_err());
        assert!(AvpValue::decode(0, 7, &[]).is_err());
    }

    #[test]
    fn call_errors_both_layouts() {
        let mut long = vec![0, 0];
        for i in 1u32..=6 {
            long.extend_from_slice(&i.to_be_bytes());
        }
        let v = AvpValue::decode(0, 34, &long).unwrap();
        let AvpValue::CallErrors(e) = &v else {
            panic!("wrong variant")
        };
        assert_eq!((e.crc_errors, e.alignment_errors, e.compact), (1, 6, false));
        assert_eq!(v.to_value_bytes(), long);
        let short = [&[0u8, 0][..], &long[10..]].concat();
        let v = AvpValue::decode(0, 34, &short).unwrap();
        let AvpValue::CallErrors(e) = &v else {
            panic!("wrong variant")
        };
        assert_eq!(
            (e.hardware_overruns, e.alignment_errors, e.compact),
            (3, 6, true)
        );
        assert_eq!(v.to_value_bytes(), short);
        assert!(AvpValue::decode(0, 34, &long[..20]).is_err());
    }

    #[test]
    fn vendor_and_unknown_are_raw() {
        let v = AvpValue::decode(311, 9, &[0, 0]).unwrap();
        assert_eq!(v.vendor_id(), 311);
        assert_eq!(
            v,
            AvpValue::Raw {
                vendor_id: 311,
                attr_type: 9,
                value: vec![0, 0]
            }
        );
        let v = AvpValue::decode(0, 200, &[9]).unwrap();
        assert_eq!(v.attr_type(), AttrType::Unknown(200));
        assert_eq!(v.to_value_bytes(), [9]);
    }

    #[test]
    fn ppp_disconnect_cause_round_trip() {
        use super::PppDisconnectCause as C;
        let c = C {
            code: C::AUTH_FAILED,
            protocol: 0xc223,
            direction: C::AT_LOCAL,
            message: b"CHAP failure".to_vec(),
        };
        let avp = c.to_avp();
        assert_eq!(avp.attr_type(), AttrType::PppDisconnectCauseCode);
        assert!(!AttrType::PppDisconnectCauseCode.default_mandatory(false));
        assert!(!AttrType::PppDisconnectCauseCode.default_mandatory(true));
        let AvpValue::Raw { value, .. } = &avp else {
            panic!("{avp:?}")
        };
        assert_eq!(&value[..5], &[0, 16, 0xc2, 0x23, 2]);
        assert_eq!(&value[5..], b"CHAP failure");
        assert_eq!(C::from_avp(&avp), Some(c));
        assert_eq!(C::parse(&[0, 8, 0xc0, 0x21]), None);
        // An over-long message is cut to fit one AVP.
        let long = C {
            message: vec![b'x'; 2000],
            ..C::parse(&[0, 1, 0, 0, 0]).unwrap()
        };
        let AvpValue::Raw { value, .. } = long.to_avp() else {
            panic!()
        };
        assert_eq!(value.len(), super::super::AVP_MAX_VALUE_LEN);
    }
}
