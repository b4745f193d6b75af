//! What the endpoint reports: [`Event`], why the link went down ([`DownReason`]) and received
//! IP packets ([`IpPacket`]).

use std::net::Ipv4Addr;

/// Why the link went down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownReason {
    /// `close()` was called.
    AdminClose,
    /// The peer sent a Terminate-Request.
    PeerTerminated,
    /// Echo-Requests went unanswered.
    EchoTimeout,
    /// Authentication failed (either direction) or the peer refused to authenticate.
    AuthFailed,
    /// LCP negotiation gave up (Max-Configure, Code-Reject).
    NegotiationFailed,
    /// Every network control protocol finished without coming up.
    NoNetworkProtocols,
    /// The lower layer (the L2TP session) went down.
    LowerLayerDown,
    /// IPCP needs an address for the peer ([`crate::Config::require_peer_ip`]) and there is
    /// none (the address pools are exhausted): the link is closed as it enters the network
    /// phase.
    NoAddress,
}

/// Notifications for the session owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// LCP reached Opened.
    LinkUp,
    /// With `external_auth`: the peer's credentials, for the owner to check and answer with
    /// [`crate::Endpoint::auth_verdict`].
    AuthRequest(AuthRequest),
    /// We authenticated the peer (authenticator side).
    AuthSuccess {
        /// The name the peer authenticated with.
        peer_name: Vec<u8>,
    },
    /// The peer failed to authenticate to us.
    AuthFailure {
        /// The name the peer tried.
        peer_name: Vec<u8>,
    },
    /// The peer accepted our credentials.
    Authenticated,
    /// The peer rejected our credentials.
    AuthRejected,
    /// IPCP reached Opened.
    NetworkUp {
        /// Our address.
        local: Ipv4Addr,
        /// The peer's address.
        peer: Ipv4Addr,
        /// DNS servers the peer gave us.
        dns: Vec<Ipv4Addr>,
    },
    /// IPv6CP reached Opened.
    Ipv6Up {
        /// Our interface identifier.
        local_iid: u64,
        /// The peer's interface identifier.
        peer_iid: u64,
    },
    /// IPCP left Opened.
    NetworkDown,
    /// IPv6CP left Opened.
    Ipv6Down,
    /// LCP finished: the link is dead.
    LinkDown {
        /// Why.
        reason: DownReason,
    },
}

/// An IP packet received over the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpPacket {
    /// IPv4 (protocol 0x0021).
    V4(Vec<u8>),
    /// IPv6 (protocol 0x0057).
    V6(Vec<u8>),
}

/// What a peer presented to authenticate (authenticator side, `external_auth`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthRequest {
    /// A PAP Authenticate-Request.
    Pap {
        /// Peer-ID.
        peer_name: Vec<u8>,
        /// Password.
        password: Vec<u8>,
    },
    /// A CHAP-MD5 Response to our Challenge.
    Chap {
        /// Name.
        peer_name: Vec<u8>,
        /// Identifier of the Challenge and Response.
        identifier: u8,
        /// Our Challenge value.
        challenge: Vec<u8>,
        /// The peer's Response value (16 octets).
        response: Vec<u8>,
    },
    /// An MS-CHAPv2 Response to our Challenge (RFC 2759 §4).
    MsChapV2 {
        /// Name.
        peer_name: Vec<u8>,
        /// Identifier of the Challenge and Response.
        identifier: u8,
        /// Our 16-octet authenticator challenge.
        challenge: Vec<u8>,
        /// The Response value: Peer-Challenge (16) ‖ reserved (8) ‖ NT-Response (24) ‖ Flags.
        response: Vec<u8>,
    },
}

impl AuthRequest {
    /// The name the peer authenticates with.
    pub fn peer_name(&self) -> &[u8] {
        match self {
            AuthRequest::Pap { peer_name, .. }
            | AuthRequest::Chap { peer_name, .. }
            | AuthRequest::MsChapV2 { peer_name, .. } => peer_name,
        }
    }
}
