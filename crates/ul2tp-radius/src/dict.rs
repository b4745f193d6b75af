//! The dictionary: packet codes, attribute types and the enumerated values ul2tp sends or
//! reads, with the RFC each comes from. Unknown codes and attributes are carried as numbers.

/// Packet codes (RFC 2865 §3, RFC 2866 §3, RFC 5176 §3).
pub mod code {
    /// Access-Request.
    pub const ACCESS_REQUEST: u8 = 1;
    /// Access-Accept.
    pub const ACCESS_ACCEPT: u8 = 2;
    /// Access-Reject.
    pub const ACCESS_REJECT: u8 = 3;
    /// Accounting-Request.
    pub const ACCOUNTING_REQUEST: u8 = 4;
    /// Accounting-Response.
    pub const ACCOUNTING_RESPONSE: u8 = 5;
    /// Access-Challenge.
    pub const ACCESS_CHALLENGE: u8 = 11;
    /// Disconnect-Request (RFC 5176).
    pub const DISCONNECT_REQUEST: u8 = 40;
    /// Disconnect-ACK.
    pub const DISCONNECT_ACK: u8 = 41;
    /// Disconnect-NAK.
    pub const DISCONNECT_NAK: u8 = 42;
    /// CoA-Request.
    pub const COA_REQUEST: u8 = 43;
    /// CoA-ACK.
    pub const COA_ACK: u8 = 44;
    /// CoA-NAK.
    pub const COA_NAK: u8 = 45;
}

/// Attribute types (RFC 2865 §5, RFC 2866 §5, RFC 2868 §3, RFC 2869 §5, RFC 3162, RFC 3579,
/// RFC 4818, RFC 5176, RFC 6911).
pub mod attr {
    /// User-Name.
    pub const USER_NAME: u8 = 1;
    /// User-Password (hidden, RFC 2865 §5.2).
    pub const USER_PASSWORD: u8 = 2;
    /// CHAP-Password: CHAP Identifier ‖ Response.
    pub const CHAP_PASSWORD: u8 = 3;
    /// NAS-IP-Address.
    pub const NAS_IP_ADDRESS: u8 = 4;
    /// NAS-Port.
    pub const NAS_PORT: u8 = 5;
    /// Service-Type.
    pub const SERVICE_TYPE: u8 = 6;
    /// Framed-Protocol.
    pub const FRAMED_PROTOCOL: u8 = 7;
    /// Framed-IP-Address.
    pub const FRAMED_IP_ADDRESS: u8 = 8;
    /// Framed-IP-Netmask.
    pub const FRAMED_IP_NETMASK: u8 = 9;
    /// Framed-MTU.
    pub const FRAMED_MTU: u8 = 12;
    /// Reply-Message.
    pub const REPLY_MESSAGE: u8 = 18;
    /// Framed-Route.
    pub const FRAMED_ROUTE: u8 = 22;
    /// State.
    pub const STATE: u8 = 24;
    /// Proxy-State: echoed unchanged in the reply (RFC 2865 §5.33).
    pub const PROXY_STATE: u8 = 33;
    /// Class.
    pub const CLASS: u8 = 25;
    /// Vendor-Specific.
    pub const VENDOR_SPECIFIC: u8 = 26;
    /// Session-Timeout.
    pub const SESSION_TIMEOUT: u8 = 27;
    /// Idle-Timeout.
    pub const IDLE_TIMEOUT: u8 = 28;
    /// Called-Station-Id.
    pub const CALLED_STATION_ID: u8 = 30;
    /// Calling-Station-Id.
    pub const CALLING_STATION_ID: u8 = 31;
    /// NAS-Identifier.
    pub const NAS_IDENTIFIER: u8 = 32;
    /// Acct-Status-Type.
    pub const ACCT_STATUS_TYPE: u8 = 40;
    /// Acct-Delay-Time.
    pub const ACCT_DELAY_TIME: u8 = 41;
    /// Acct-Input-Octets.
    pub const ACCT_INPUT_OCTETS: u8 = 42;
    /// Acct-Output-Octets.
    pub const ACCT_OUTPUT_OCTETS: u8 = 43;
    /// Acct-Session-Id.
    pub const ACCT_SESSION_ID: u8 = 44;
    /// Acct-Session-Time.
    pub const ACCT_SESSION_TIME: u8 = 46;
    /// Acct-Input-Packets.
    pub const ACCT_INPUT_PACKETS: u8 = 47;
    /// Acct-Output-Packets.
    pub const ACCT_OUTPUT_PACKETS: u8 = 48;
    /// Acct-Terminate-Cause.
    pub const ACCT_TERMINATE_CAUSE: u8 = 49;
    /// Acct-Input-Gigawords (RFC 2869).
    pub const ACCT_INPUT_GIGAWORDS: u8 = 52;
    /// Acct-Output-Gigawords (RFC 2869).
    pub const ACCT_OUTPUT_GIGAWORDS: u8 = 53;
    /// Event-Timestamp (RFC 2869).
    pub const EVENT_TIMESTAMP: u8 = 55;
    /// CHAP-Challenge.
    pub const CHAP_CHALLENGE: u8 = 60;
    /// NAS-Port-Type.
    pub const NAS_PORT_TYPE: u8 = 61;
    /// Tunnel-Type (RFC 2868).
    pub const TUNNEL_TYPE: u8 = 64;
    /// Tunnel-Medium-Type (RFC 2868).
    pub const TUNNEL_MEDIUM_TYPE: u8 = 65;
    /// Tunnel-Client-Endpoint (RFC 2868).
    pub const TUNNEL_CLIENT_ENDPOINT: u8 = 66;
    /// Tunnel-Server-Endpoint (RFC 2868).
    pub const TUNNEL_SERVER_ENDPOINT: u8 = 67;
    /// Tunnel-Password (RFC 2868, salt-encrypted).
    pub const TUNNEL_PASSWORD: u8 = 69;
    /// Tunnel-Preference (RFC 2868).
    pub const TUNNEL_PREFERENCE: u8 = 83;
    /// Tunnel-Assignment-Id (RFC 2868).
    pub const TUNNEL_ASSIGNMENT_ID: u8 = 82;
    /// Message-Authenticator (RFC 3579 §3.2).
    pub const MESSAGE_AUTHENTICATOR: u8 = 80;
    /// Acct-Interim-Interval (RFC 2869).
    pub const ACCT_INTERIM_INTERVAL: u8 = 85;
    /// NAS-Port-Id (RFC 2869).
    pub const NAS_PORT_ID: u8 = 87;
    /// Framed-Pool (RFC 2869).
    pub const FRAMED_POOL: u8 = 88;
    /// Error-Cause (RFC 5176 §3.6).
    pub const ERROR_CAUSE: u8 = 101;
    /// NAS-IPv6-Address (RFC 3162).
    pub const NAS_IPV6_ADDRESS: u8 = 95;
    /// Framed-Interface-Id (RFC 3162).
    pub const FRAMED_INTERFACE_ID: u8 = 96;
    /// Framed-IPv6-Prefix (RFC 3162).
    pub const FRAMED_IPV6_PREFIX: u8 = 97;
    /// Delegated-IPv6-Prefix (RFC 4818).
    pub const DELEGATED_IPV6_PREFIX: u8 = 123;
    /// DNS-Server-IPv6-Address (RFC 6911).
    pub const DNS_SERVER_IPV6_ADDRESS: u8 = 169;
}

/// Vendor ids (SMI network management private enterprise codes).
pub mod vendor {
    /// Microsoft (RFC 2548).
    pub const MICROSOFT: u32 = 311;
}

/// Microsoft vendor attribute types (RFC 2548 §2).
pub mod ms {
    /// MS-CHAP-Error.
    pub const CHAP_ERROR: u8 = 2;
    /// MS-CHAP-Challenge.
    pub const CHAP_CHALLENGE: u8 = 11;
    /// MS-CHAP2-Response: Ident ‖ Flags ‖ Peer-Challenge(16) ‖ Reserved(8) ‖ Response(24).
    pub const CHAP2_RESPONSE: u8 = 25;
    /// MS-CHAP2-Success: Ident ‖ "S=<40 hex digits>".
    pub const CHAP2_SUCCESS: u8 = 26;
    /// MS-Primary-DNS-Server.
    pub const PRIMARY_DNS_SERVER: u8 = 28;
    /// MS-Secondary-DNS-Server.
    pub const SECONDARY_DNS_SERVER: u8 = 29;
}

/// Service-Type Framed (RFC 2865 §5.6).
pub const SERVICE_TYPE_FRAMED: u32 = 2;
/// Framed-Protocol PPP (RFC 2865 §5.7).
pub const FRAMED_PROTOCOL_PPP: u32 = 1;
/// NAS-Port-Type Virtual (RFC 2865 §5.41).
pub const NAS_PORT_TYPE_VIRTUAL: u32 = 5;
/// Framed-IP-Address 255.255.255.254: the NAS picks the address (RFC 2865 §5.8).
pub const FRAMED_IP_NAS_ASSIGNS: [u8; 4] = [255, 255, 255, 254];
/// Tunnel-Type L2TP (RFC 2868 §3.1).
pub const TUNNEL_TYPE_L2TP: u32 = 3;
/// Tunnel-Medium-Type IPv4 (RFC 2868 §3.2).
pub const TUNNEL_MEDIUM_IPV4: u32 = 1;

/// Acct-Status-Type values (RFC 2866 §5.1).
pub mod status {
    /// Start.
    pub const START: u32 = 1;
    /// Stop.
    pub const STOP: u32 = 2;
    /// Interim-Update.
    pub const INTERIM_UPDATE: u32 = 3;
}

/// Acct-Terminate-Cause values (RFC 2866 §5.10).
pub mod terminate {
    /// User Request.
    pub const USER_REQUEST: u32 = 1;
    /// Lost Carrier.
    pub const LOST_CARRIER: u32 = 2;
    /// Idle Timeout.
    pub const IDLE_TIMEOUT: u32 = 4;
    /// Admin Reboot: the NAS is being shut down by its administrator.
    pub const ADMIN_REBOOT: u32 = 7;
    /// Session Timeout.
    pub const SESSION_TIMEOUT: u32 = 5;
    /// Admin Reset.
    pub const ADMIN_RESET: u32 = 6;
    /// NAS Error.
    pub const NAS_ERROR: u32 = 9;
    /// NAS Request.
    pub const NAS_REQUEST: u32 = 10;
}

/// Error-Cause values (RFC 5176 §3.6).
pub mod error_cause {
    /// Unsupported Attribute.
    pub const UNSUPPORTED_ATTRIBUTE: u32 = 401;
    /// Missing Attribute.
    pub const MISSING_ATTRIBUTE: u32 = 402;
    /// Invalid Request.
    pub const INVALID_REQUEST: u32 = 404;
    /// Unsupported-Service: a Service-Type the NAS does not do (Authorize-Only).
    pub const UNSUPPORTED_SERVICE: u32 = 405;
    /// Session Context Not Found.
    pub const SESSION_CONTEXT_NOT_FOUND: u32 = 503;
}
