//! Open enums for the numbers carried in control messages (in the style of rustls'
//! `enum_builder!`): every enum has its known values plus `Unknown(n)`, converts losslessly
//! from and to the wire integer, and prints the RFC short name (or the number when unknown).

use core::fmt;

macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        $name:ident : $ty:ty {
            $( $(#[$vmeta:meta])* $var:ident = $val:expr => $text:expr, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $var, )*
            /// A value this implementation does not know; kept as received.
            Unknown($ty),
        }

        impl $name {
            /// Every known value, in numeric order.
            pub const KNOWN: &'static [$name] = &[ $( $name::$var, )* ];

            /// The wire value.
            pub const fn get(self) -> $ty {
                match self {
                    $( $name::$var => $val, )*
                    $name::Unknown(v) => v,
                }
            }

            /// The RFC short name, or `None` for an unknown value.
            pub const fn name(self) -> Option<&'static str> {
                match self {
                    $( $name::$var => Some($text), )*
                    $name::Unknown(_) => None,
                }
            }

            /// True if the value is one of the known ones.
            pub const fn is_known(self) -> bool {
                !matches!(self, $name::Unknown(_))
            }
        }

        impl From<$ty> for $name {
            fn from(v: $ty) -> Self {
                match v {
                    $( x if x == $val => $name::$var, )*
                    x => $name::Unknown(x),
                }
            }
        }

        impl From<$name> for $ty {
            fn from(v: $name) -> $ty {
                v.get()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{}({})", stringify!($name), self.get()),
                }
            }
        }
    };
}

open_enum! {
    /// Control message type, the value of the Message Type AVP (docs/reference/rfc.md §1.2, §2.5).
    MessageType: u16 {
        /// Start-Control-Connection-Request.
        Sccrq = 1 => "SCCRQ",
        /// Start-Control-Connection-Reply.
        Sccrp = 2 => "SCCRP",
        /// Start-Control-Connection-Connected.
        Scccn = 3 => "SCCCN",
        /// Stop-Control-Connection-Notification.
        StopCcn = 4 => "StopCCN",
        /// Hello (keepalive).
        Hello = 6 => "HELLO",
        /// Outgoing-Call-Request.
        Ocrq = 7 => "OCRQ",
        /// Outgoing-Call-Reply.
        Ocrp = 8 => "OCRP",
        /// Outgoing-Call-Connected.
        Occn = 9 => "OCCN",
        /// Incoming-Call-Request.
        Icrq = 10 => "ICRQ",
        /// Incoming-Call-Reply.
        Icrp = 11 => "ICRP",
        /// Incoming-Call-Connected.
        Iccn = 12 => "ICCN",
        /// Call-Disconnect-Notify.
        Cdn = 14 => "CDN",
        /// WAN-Error-Notify.
        Wen = 15 => "WEN",
        /// Set-Link-Info.
        Sli = 16 => "SLI",
        /// Modem-Status (IANA).
        Mdmst = 17 => "MDMST",
        /// Service-Relay-Request (IANA).
        Srrq = 18 => "SRRQ",
        /// Service-Relay-Reply (IANA).
        Srrp = 19 => "SRRP",
        /// Explicit Acknowledgement (RFC 3931).
        Ack = 20 => "ACK",
        /// Failover Session Query (RFC 4951).
        Fsq = 21 => "FSQ",
        /// Failover Session Response (RFC 4951).
        Fsr = 22 => "FSR",
        /// Multicast-Session-Request (RFC 4045).
        Msrq = 23 => "MSRQ",
        /// Multicast-Session-Response (RFC 4045).
        Msrp = 24 => "MSRP",
        /// Multicast-Session-Establishment (RFC 4045).
        Mse = 25 => "MSE",
        /// Multicast-Session-Information (RFC 4045).
        Msi = 26 => "MSI",
        /// Multicast-Session-End-Notify (RFC 4045).
        Msen = 27 => "MSEN",
        /// Connect-Speed-Update-Notification (RFC 5515).
        Csun = 28 => "CSUN",
        /// Connect-Speed-Update-Request (RFC 5515).
        Csurq = 29 => "CSURQ",
    }
}

impl MessageType {
    /// True for messages that concern a session/call rather than the control connection
    /// (docs/reference/rfc.md §1.2 "call" and "PPP session control" classes). Decides between CDN and
    /// StopCCN when a message must be refused.
    pub const fn is_session_message(self) -> bool {
        matches!(
            self,
            MessageType::Ocrq
                | MessageType::Ocrp
                | MessageType::Occn
                | MessageType::Icrq
                | MessageType::Icrp
                | MessageType::Iccn
                | MessageType::Cdn
                | MessageType::Wen
                | MessageType::Sli
                | MessageType::Mdmst
                | MessageType::Csun
        )
    }
}

open_enum! {
    /// AVP attribute type for vendor id 0 (docs/reference/rfc.md §1.4, §2.6; RFC 4719 for Circuit Status).
    AttrType: u16 {
        /// Message Type (0).
        MessageType = 0 => "Message Type",
        /// Result Code (1).
        ResultCode = 1 => "Result Code",
        /// Protocol Version (2, v2 only).
        ProtocolVersion = 2 => "Protocol Version",
        /// Framing Capabilities (3, v2 only).
        FramingCapabilities = 3 => "Framing Capabilities",
        /// Bearer Capabilities (4, v2 only).
        BearerCapabilities = 4 => "Bearer Capabilities",
        /// Tie Breaker (5; control connection or session tie breaker in v3).
        TieBreaker = 5 => "Tie Breaker",
        /// Firmware Revision (6).
        FirmwareRevision = 6 => "Firmware Revision",
        /// Host Name (7).
        HostName = 7 => "Host Name",
        /// Vendor Name (8).
        VendorName = 8 => "Vendor Name",
        /// Assigned Tunnel ID (9, v2).
        AssignedTunnelId = 9 => "Assigned Tunnel ID",
        /// Receive Window Size (10).
        ReceiveWindowSize = 10 => "Receive Window Size",
        /// Challenge (11, v2).
        Challenge = 11 => "Challenge",
        /// Q.931 Cause Code (12).
        Q931CauseCode = 12 => "Q.931 Cause Code",
        /// Challenge Response (13, v2).
        ChallengeResponse = 13 => "Challenge Response",
        /// Assigned Session ID (14, v2).
        AssignedSessionId = 14 => "Assigned Session ID",
        /// Call Serial Number (15; "Serial Number" in v3).
        CallSerialNumber = 15 => "Call Serial Number",
        /// Minimum BPS (16).
        MinimumBps = 16 => "Minimum BPS",
        /// Maximum BPS (17).
        MaximumBps = 17 => "Maximum BPS",
        /// Bearer Type (18).
        BearerType = 18 => "Bearer Type",
        /// Framing Type (19).
        FramingType = 19 => "Framing Type",
        /// Called Number (21).
        CalledNumber = 21 => "Called Number",
        /// Calling Number (22).
        CallingNumber = 22 => "Calling Number",
        /// Sub-Address (23).
        SubAddress = 23 => "Sub-Address",
        /// (Tx) Connect Speed (24, 32 bit).
        TxConnectSpeed = 24 => "Tx Connect Speed",
        /// Physical Channel ID (25).
        PhysicalChannelId = 25 => "Physical Channel ID",
        /// Initial Received LCP CONFREQ (26).
        InitialReceivedLcpConfreq = 26 => "Initial Received LCP CONFREQ",
        /// Last Sent LCP CONFREQ (27).
        LastSentLcpConfreq = 27 => "Last Sent LCP CONFREQ",
        /// Last Received LCP CONFREQ (28).
        LastReceivedLcpConfreq = 28 => "Last Received LCP CONFREQ",
        /// Proxy Authen Type (29).
        ProxyAuthenType = 29 => "Proxy Authen Type",
        /// Proxy Authen Name (30).
        ProxyAuthenName = 30 => "Proxy Authen Name",
        /// Proxy Authen Challenge (31).
        ProxyAuthenChallenge = 31 => "Proxy Authen Challenge",
        /// Proxy Authen ID (32).
        ProxyAuthenId = 32 => "Proxy Authen ID",
        /// Proxy Authen Response (33).
        ProxyAuthenResponse = 33 => "Proxy Authen Response",
        /// Call Errors (34; "Circuit Errors" in v3).
        CallErrors = 34 => "Call Errors",
        /// ACCM (35).
        Accm = 35 => "ACCM",
        /// Random Vector (36).
        RandomVector = 36 => "Random Vector",
        /// Private Group ID (37).
        PrivateGroupId = 37 => "Private Group ID",
        /// Rx Connect Speed (38, 32 bit).
        RxConnectSpeed = 38 => "Rx Connect Speed",
        /// Sequencing Required (39).
        SequencingRequired = 39 => "Sequencing Required",
        /// PPP Disconnect Cause Code (46, RFC 3145).
        PppDisconnectCauseCode = 46 => "PPP Disconnect Cause Code",
        /// Extended Vendor ID (58, v3).
        ExtendedVendorId = 58 => "Extended Vendor ID",
        /// Message Digest (59, v3).
        MessageDigest = 59 => "Message Digest",
        /// Router ID (60, v3).
        RouterId = 60 => "Router ID",
        /// Assigned Control Connection ID (61, v3).
        AssignedConnectionId = 61 => "Assigned Control Connection ID",
        /// Pseudowire Capabilities List (62, v3).
        PseudowireCapabilities = 62 => "Pseudowire Capabilities List",
        /// Local Session ID (63, v3).
        LocalSessionId = 63 => "Local Session ID",
        /// Remote Session ID (64, v3).
        RemoteSessionId = 64 => "Remote Session ID",
        /// Assigned Cookie (65, v3).
        AssignedCookie = 65 => "Assigned Cookie",
        /// Remote End ID (66, v3).
        RemoteEndId = 66 => "Remote End ID",
        /// Pseudowire Type (68, v3).
        PseudowireType = 68 => "Pseudowire Type",
        /// L2-Specific Sublayer (69, v3).
        L2SpecificSublayer = 69 => "L2-Specific Sublayer",
        /// Data Sequencing (70, v3).
        DataSequencing = 70 => "Data Sequencing",
        /// Circuit Status (71, RFC 3931 / RFC 4719).
        CircuitStatus = 71 => "Circuit Status",
        /// Preferred Language (72, v3).
        PreferredLanguage = 72 => "Preferred Language",
        /// Control Message Authentication Nonce (73, v3).
        CtrlMsgAuthNonce = 73 => "Control Message Authentication Nonce",
        /// Tx Connect Speed (74, v3, 64 bit).
        TxConnectSpeedV3 = 74 => "Tx Connect Speed (64 bit)",
        /// Rx Connect Speed (75, v3, 64 bit).
        RxConnectSpeedV3 = 75 => "Rx Connect Speed (64 bit)",
    }
}

impl AttrType {
    /// False for attributes that MUST NOT be hidden (docs/reference/rfc.md §1.8 "H" column, §2.6).
    pub const fn may_hide(self) -> bool {
        !matches!(
            self,
            AttrType::MessageType
                | AttrType::ResultCode
                | AttrType::ProtocolVersion
                | AttrType::TieBreaker
                | AttrType::HostName
                | AttrType::ReceiveWindowSize
                | AttrType::Q931CauseCode
                | AttrType::RandomVector
                | AttrType::SequencingRequired
                | AttrType::MessageDigest
                | AttrType::RouterId
                | AttrType::CtrlMsgAuthNonce
        )
    }

    /// The M bit the RFC prescribes (v2) or recommends (v3) when sending this attribute
    /// (docs/reference/rfc.md §1.4 and §2.6 "M"/"M pref" columns). Unknown attributes: false.
    pub const fn default_mandatory(self, v3: bool) -> bool {
        match self {
            AttrType::TieBreaker => v3,
            AttrType::CallSerialNumber | AttrType::CallErrors => !v3,
            AttrType::PhysicalChannelId
            | AttrType::FirmwareRevision
            | AttrType::VendorName
            | AttrType::InitialReceivedLcpConfreq
            | AttrType::LastSentLcpConfreq
            | AttrType::LastReceivedLcpConfreq
            | AttrType::ProxyAuthenType
            | AttrType::ProxyAuthenName
            | AttrType::ProxyAuthenChallenge
            | AttrType::ProxyAuthenId
            | AttrType::ProxyAuthenResponse
            | AttrType::PrivateGroupId
            | AttrType::RxConnectSpeed
            | AttrType::ExtendedVendorId
            | AttrType::PreferredLanguage
            | AttrType::TxConnectSpeedV3
            | AttrType::RxConnectSpeedV3
            | AttrType::PppDisconnectCauseCode => false,
            AttrType::Unknown(_) => false,
            _ => true,
        }
    }
}

open_enum! {
    /// Result Code values of a StopCCN (docs/reference/rfc.md §1.6).
    StopCcnResult: u16 {
        /// General request to clear the control connection.
        GeneralRequest = 1 => "general request to clear control connection",
        /// General error, see the Error Code.
        GeneralError = 2 => "general error",
        /// Control connection already exists.
        AlreadyExists = 3 => "control connection already exists",
        /// Requester not authorised.
        NotAuthorized = 4 => "requester not authorized",
        /// Protocol version not supported.
        UnsupportedVersion = 5 => "protocol version not supported",
        /// Requester is being shut down.
        ShuttingDown = 6 => "requester is being shut down",
        /// Finite-state-machine error (or timeout in v3).
        FsmError = 7 => "finite state machine error",
        /// Mismatching CCDS value (RFC 3308).
        CcdsMismatch = 8 => "mismatching CCDS value",
    }
}

open_enum! {
    /// Result Code values of a CDN (docs/reference/rfc.md §1.6).
    CdnResult: u16 {
        /// Loss of carrier / circuit disconnect.
        LostCarrier = 1 => "lost carrier",
        /// Reason given in the Error Code.
        GeneralError = 2 => "general error",
        /// Administrative reasons.
        Administrative = 3 => "administrative disconnect",
        /// No appropriate facilities (temporary).
        TemporaryNoFacilities = 4 => "no facilities (temporary)",
        /// No appropriate facilities (permanent).
        PermanentNoFacilities = 5 => "no facilities (permanent)",
        /// Invalid destination.
        InvalidDestination = 6 => "invalid destination",
        /// No carrier detected.
        NoCarrier = 7 => "no carrier",
        /// Busy signal.
        Busy = 8 => "busy",
        /// No dial tone.
        NoDialTone = 9 => "no dial tone",
        /// Not established in time.
        Timeout = 10 => "not established in time",
        /// No appropriate framing.
        NoFraming = 11 => "no framing detected",
        /// Mismatching SDS value (RFC 3308).
        SdsMismatch = 12 => "mismatching SDS value",
        /// Session not established: lost tie breaker (v3).
        LostTieBreaker = 13 => "lost tie breaker",
        /// Unsupported pseudowire type (v3).
        UnsupportedPwType = 14 => "unsupported pseudowire type",
        /// Sequencing required without a valid L2-Specific Sublayer (v3).
        SequencingWithoutSublayer = 15 => "sequencing requires L2-specific sublayer",
        /// Finite-state-machine error or timeout (v3).
        FsmError = 16 => "finite state machine error",
    }
}

open_enum! {
    /// General Error Code values, used with Result Code 2 (docs/reference/rfc.md §1.6).
    ErrorCode: u16 {
        /// No general error.
        NoError = 0 => "no general error",
        /// No control connection exists yet.
        NoControlConnection = 1 => "no control connection exists",
        /// Length is wrong.
        BadLength = 2 => "length is wrong",
        /// Field value out of range or reserved field non-zero.
        BadValue = 3 => "field out of range or reserved field non-zero",
        /// Insufficient resources.
        InsufficientResources = 4 => "insufficient resources",
        /// Invalid session id.
        InvalidSessionId = 5 => "invalid session id",
        /// Generic vendor-specific error.
        VendorSpecific = 6 => "generic vendor-specific error",
        /// Try another.
        TryAnother = 7 => "try another",
        /// Unknown mandatory AVP.
        UnknownMandatoryAvp = 8 => "unknown mandatory AVP",
        /// Try another, directed (v3).
        TryAnotherDirected = 9 => "try another (directed)",
    }
}

open_enum! {
    /// Pseudowire type (AVP 68 and the PW Capabilities List 62; docs/reference/rfc.md §2.14).
    PwType: u16 {
        /// Frame Relay DLCI.
        FrameRelayDlci = 0x0001 => "Frame Relay DLCI",
        /// ATM AAL5 SDU VCC.
        AtmAal5 = 0x0002 => "ATM AAL5 SDU VCC",
        /// ATM cell transparent port mode.
        AtmCellPort = 0x0003 => "ATM Cell Port",
        /// Ethernet VLAN (RFC 4719).
        EthernetVlan = 0x0004 => "Ethernet VLAN",
        /// Ethernet port (RFC 4719).
        Ethernet = 0x0005 => "Ethernet",
        /// HDLC.
        Hdlc = 0x0006 => "HDLC",
        /// PPP (de-facto value, Linux L2TP_PWTYPE_PPP).
        Ppp = 0x0007 => "PPP",
        /// ATM cell transport VCC mode.
        AtmCellVcc = 0x0009 => "ATM Cell VCC",
        /// ATM cell transport VPC mode.
        AtmCellVpc = 0x000a => "ATM Cell VPC",
        /// IP transport (Linux L2TP_PWTYPE_IP).
        Ip = 0x000b => "IP",
        /// MPEG-TS payload.
        MpegTs = 0x000c => "MPEG-TS",
        /// Packet Streaming Protocol.
        Psp = 0x000d => "PSP",
        /// SAToP E1.
        SatopE1 = 0x0011 => "SAToP E1",
        /// SAToP T1.
        SatopT1 = 0x0012 => "SAToP T1",
        /// SAToP E3.
        SatopE3 = 0x0013 => "SAToP E3",
        /// SAToP T3.
        SatopT3 = 0x0014 => "SAToP T3",
        /// CESoPSN basic.
        CesopsnBasic = 0x0015 => "CESoPSN",
        /// CESoPSN with CAS.
        CesopsnCas = 0x0017 => "CESoPSN CAS",
    }
}

open_enum! {
    /// Proxy Authen Type values (AVP 29; docs/reference/rfc.md §1.7).
    ProxyAuthenType: u16 {
        /// Textual username/password exchange.
        Textual = 1 => "textual",
        /// PPP CHAP.
        Chap = 2 => "CHAP",
        /// PPP PAP.
        Pap = 3 => "PAP",
        /// No authentication.
        NoAuth = 4 => "none",
        /// Microsoft CHAP version 1.
        MsChapV1 = 5 => "MS-CHAPv1",
    }
}

open_enum! {
    /// L2-Specific Sublayer type (AVP 69; docs/reference/rfc.md §2.6, `ip l2tp` l2spec_type).
    L2SpecType: u16 {
        /// No sublayer.
        None = 0 => "none",
        /// Default L2-specific sublayer.
        Default = 1 => "default",
        /// ATM-specific sublayer.
        Atm = 2 => "ATM",
        /// MPT sublayer.
        Mpt = 3 => "MPT",
        /// PSP sublayer.
        Psp = 4 => "PSP",
    }
}

impl L2SpecType {
    /// Octets of the sublayer in a data message: 4 for the default sublayer, 0 for none. The
    /// data path carries only these two (as the kernel does); a session with another type is
    /// refused when it is created, so no data message is ever built or parsed with one.
    pub fn len(self) -> usize {
        match self {
            L2SpecType::Default => 4,
            _ => 0,
        }
    }

    /// True when no sublayer is carried.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// Whether the data path can carry this sublayer (none or default).
    pub fn is_supported(self) -> bool {
        matches!(self, L2SpecType::None | L2SpecType::Default)
    }
}

/// The default sublayer, as `ip l2tp` and the kernel default to for L2TPv3 sessions.
impl Default for L2SpecType {
    fn default() -> Self {
        L2SpecType::Default
    }
}

open_enum! {
    /// Data Sequencing AVP values (AVP 70; docs/reference/rfc.md §2.12).
    DataSequencing: u16 {
        /// No sequencing wanted.
        None = 0 => "none",
        /// Only non-IP frames sequenced.
        NonIp = 1 => "non-IP",
        /// All frames sequenced.
        All = 2 => "all",
    }
}

open_enum! {
    /// Digest Type of the Message Digest AVP (docs/reference/rfc.md §2.8).
    DigestType: u8 {
        /// HMAC-MD5 (16-octet digest).
        HmacMd5 = 0 => "HMAC-MD5",
        /// HMAC-SHA-1 (20-octet digest).
        HmacSha1 = 1 => "HMAC-SHA-1",
    }
}

impl DigestType {
    /// Length of the digest octets, `None` for unknown types.
    pub const fn digest_len(self) -> Option<usize> {
        match self {
            DigestType::HmacMd5 => Some(16),
            DigestType::HmacSha1 => Some(20),
            DigestType::Unknown(_) => None,
        }
    }
}

/// Framing Capabilities / Framing Type bit: synchronous framing (docs/reference/rfc.md §1.4).
pub const FRAMING_SYNC: u32 = 0x0000_0001;
/// Framing Capabilities / Framing Type bit: asynchronous framing.
pub const FRAMING_ASYNC: u32 = 0x0000_0002;
/// Bearer Capabilities / Bearer Type bit: digital access.
pub const BEARER_DIGITAL: u32 = 0x0000_0001;
/// Bearer Capabilities / Bearer Type bit: analog access.
pub const BEARER_ANALOG: u32 = 0x0000_0002;
/// Circuit Status bit A: active (docs/reference/rfc.md §2.13).
pub const CIRCUIT_ACTIVE: u16 = 0x0001;
/// Circuit Status bit N: new circuit.
pub const CIRCUIT_NEW: u16 = 0x0002;
/// Circuit Status bit R: local attachment-circuit receive fault (RFC 5641).
pub const CIRCUIT_AC_RX_FAULT: u16 = 0x0004;
/// Circuit Status bit T: local attachment-circuit transmit fault (RFC 5641).
pub const CIRCUIT_AC_TX_FAULT: u16 = 0x0008;
/// Circuit Status bit I: PSN-facing PW receive fault (RFC 5641).
pub const CIRCUIT_PW_RX_FAULT: u16 = 0x0010;
/// Circuit Status bit E: PSN-facing PW transmit fault (RFC 5641).
pub const CIRCUIT_PW_TX_FAULT: u16 = 0x0020;
/// Circuit Status bit S: pseudowire in standby (RFC 5641).
pub const CIRCUIT_STANDBY: u16 = 0x0040;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_enum_round_trip() {
        for m in MessageType::KNOWN {
            assert_eq!(MessageType::from(m.get()), *m);
        }
        assert_eq!(MessageType::from(20), MessageType::Ack);
        assert_eq!(MessageType::from(5), MessageType::Unknown(5));
        assert_eq!(MessageType::Unknown(5).get(), 5);
        assert_eq!(MessageType::Icrq.to_string(), "ICRQ");
        assert_eq!(MessageType::Unknown(99).to_string(), "MessageType(99)");
        assert_eq!(AttrType::from(71), AttrType::CircuitStatus);
        assert_eq!(AttrType::from(67), AttrType::Unknown(67));
        assert!(!AttrType::RandomVector.may_hide());
        assert!(AttrType::AssignedTunnelId.may_hide());
        assert!(MessageType::Cdn.is_session_message());
        assert!(!MessageType::StopCcn.is_session_message());
    }

    #[test]
    fn default_m_bits() {
        assert!(AttrType::MessageType.default_mandatory(false));
        assert!(!AttrType::TieBreaker.default_mandatory(false));
        assert!(AttrType::TieBreaker.default_mandatory(true));
        assert!(AttrType::CallSerialNumber.default_mandatory(false));
        assert!(!AttrType::CallSerialNumber.default_mandatory(true));
        assert!(!AttrType::VendorName.default_mandatory(true));
        assert!(AttrType::LocalSessionId.default_mandatory(true));
    }
}
