//! What the engine reports: [`Event`], [`DownReason`], and the parameters of an established
//! tunnel ([`TunnelInfo`]) or session ([`SessionInfo`]).

use std::net::SocketAddr;

use ul2tp_wire::avp::{L2SpecType, PwType};
use ul2tp_wire::control::{Encap, Version};

use super::CallType;

/// What the engine tells its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A control connection is established.
    TunnelUp(TunnelInfo),
    /// A control connection is gone (emitted once per tunnel the engine created).
    TunnelDown {
        /// Our tunnel id.
        tunnel_id: u32,
        /// Peer's tunnel id (0 if never learned).
        peer_tunnel_id: u32,
        /// Why.
        reason: DownReason,
        /// Whether [`Event::TunnelUp`] had been emitted.
        was_up: bool,
        /// After a lost tie-break: the tunnel that replaces this one.
        replaced_by: Option<u32>,
    },
    /// A session is established with every negotiated parameter.
    SessionUp(SessionInfo),
    /// A session is gone.
    SessionDown {
        /// Our tunnel id.
        tunnel_id: u32,
        /// Our session id.
        session_id: u32,
        /// Peer's session id (0 if never learned).
        peer_session_id: u32,
        /// Why.
        reason: DownReason,
        /// Whether [`Event::SessionUp`] had been emitted.
        was_up: bool,
    },
    /// The peer sent Set-Link-Info.
    LinkInfo {
        /// Our tunnel id.
        tunnel_id: u32,
        /// Our session id.
        session_id: u32,
        /// v3 Circuit Status bits.
        circuit_status: Option<u16>,
        /// v2 ACCM (send, receive).
        accm: Option<(u32, u32)>,
    },
    /// The peer sent WAN-Error-Notify (raw Call/Circuit Errors value).
    WanError {
        /// Our tunnel id.
        tunnel_id: u32,
        /// Our session id.
        session_id: u32,
        /// Raw Call Errors / Circuit Errors AVP value.
        errors: Vec<u8>,
    },
}

/// Why a tunnel or session went down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownReason {
    /// Closed locally by a command.
    Local,
    /// The peer sent StopCCN / CDN.
    Peer {
        /// Result Code.
        result_code: u16,
        /// Error Code, if present.
        error_code: Option<u16>,
        /// Error Message.
        message: String,
    },
    /// Retransmissions exhausted (peer silent).
    Timeout,
    /// Tunnel authentication failed (challenge response or digest setup).
    AuthFailed,
    /// We lost the tunnel tie-break (docs/reference/rfc.md §1.14).
    TieBreakLost,
    /// We refused or aborted because of a protocol error.
    Protocol {
        /// Result Code we sent.
        result_code: u16,
        /// Error Code we sent.
        error_code: Option<u16>,
        /// Explanation.
        message: String,
    },
    /// The session's tunnel went down.
    TunnelDown,
}

/// Parameters of an established tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelInfo {
    /// Version.
    pub version: Version,
    /// Our tunnel id / control connection id.
    pub tunnel_id: u32,
    /// Peer's tunnel id / control connection id.
    pub peer_tunnel_id: u32,
    /// Peer address (port 0 over IP).
    pub peer: SocketAddr,
    /// The transport of the control connection (and of its data): UDP or L2TPv3/IP.
    pub encap: Encap,
    /// Whether we sent the SCCRQ.
    pub initiator: bool,
    /// Peer's Host Name.
    pub peer_host_name: String,
    /// Peer's Router ID (v3).
    pub peer_router_id: Option<u32>,
    /// Peer's receive window.
    pub peer_rx_window: u16,
    /// Peer's PW Capabilities List (v3).
    pub peer_pw_types: Vec<PwType>,
    /// The `profile` of the configuration the tunnel runs with (empty: none named).
    pub profile: String,
    /// Whether the peer proved it knows the secret: v3 message authentication is on, or (v2)
    /// it answered our Challenge.
    pub authenticated: bool,
}

/// Every negotiated parameter of a session, in `ip l2tp` terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Version.
    pub version: Version,
    /// Our tunnel id.
    pub tunnel_id: u32,
    /// Peer's tunnel id.
    pub peer_tunnel_id: u32,
    /// Our session id.
    pub session_id: u32,
    /// Peer's session id.
    pub peer_session_id: u32,
    /// Peer address.
    pub peer: SocketAddr,
    /// Pseudowire type (7 = PPP for v2).
    pub pw_type: PwType,
    /// Cookie we send (the peer's Assigned Cookie; docs/reference/kernel.md §1.6 `cookie`).
    pub cookie: Vec<u8>,
    /// Cookie we expect (our Assigned Cookie; docs/reference/kernel.md §1.6 `peer_cookie`).
    pub peer_cookie: Vec<u8>,
    /// L2-Specific Sublayer we must put on packets we send (the peer asked for it).
    pub l2spec_type: L2SpecType,
    /// L2-Specific Sublayer we asked for on packets we receive.
    pub peer_l2spec_type: L2SpecType,
    /// Send sequence numbers on data.
    pub send_seq: bool,
    /// Require sequence numbers on received data.
    pub recv_seq: bool,
    /// We are the LNS of this call (v2: ICRQ recipient or OCRQ sender).
    pub lns_mode: bool,
    /// Call model.
    pub call: CallType,
    /// Whether we opened the session.
    pub initiator: bool,
    /// Call Serial Number.
    pub call_serial: u32,
    /// Remote End ID (v3) / Called Number (v2).
    pub remote_end_id: Vec<u8>,
    /// v2: the Calling Number of the ICRQ (empty when absent; RFC 2661 §4.4.5).
    pub calling_number: Vec<u8>,
    /// v3 Circuit Status the peer sent while the session was set up (ICRQ / ICRP / OCRQ /
    /// OCRP, RFC 4719 §2.3.1): the Active bit clear means its circuit is down. Later changes
    /// come as [`Event::LinkInfo`].
    pub peer_circuit_status: Option<u16>,
}
