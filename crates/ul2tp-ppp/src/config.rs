//! Endpoint configuration: [`Config`], the authentication protocols ([`AuthProtocol`]) and the
//! authenticator's credential lookup ([`Credentials`], [`StaticCredentials`]).

use std::net::Ipv4Addr;

use crate::fsm::FsmConfig;

/// An authentication protocol negotiated with the LCP Authentication-Protocol option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthProtocol {
    /// PAP (0xC023, RFC 1334).
    Pap,
    /// CHAP with MD5 (0xC223 algorithm 5, RFC 1994).
    ChapMd5,
    /// MS-CHAPv2 (0xC223 algorithm 0x81, RFC 2759).
    MsChapV2,
}

impl AuthProtocol {
    /// The option data (protocol + algorithm) as sent in LCP option 3 (docs/reference/rfc.md §4.6).
    pub fn option_data(self) -> &'static [u8] {
        match self {
            AuthProtocol::Pap => &[0xc0, 0x23],
            AuthProtocol::ChapMd5 => &[0xc2, 0x23, 0x05],
            AuthProtocol::MsChapV2 => &[0xc2, 0x23, 0x81],
        }
    }

    /// Decode LCP option 3 data.
    pub fn from_option(data: &[u8]) -> Option<AuthProtocol> {
        match data {
            [0xc0, 0x23] => Some(AuthProtocol::Pap),
            [0xc2, 0x23, 0x05] => Some(AuthProtocol::ChapMd5),
            [0xc2, 0x23, 0x81] => Some(AuthProtocol::MsChapV2),
            _ => None,
        }
    }
}

/// The authenticator's credential lookup: the secret (PAP password / CHAP secret) of a peer.
pub trait Credentials {
    /// The secret for `peer_name`, or `None` for an unknown peer.
    fn secret(&self, peer_name: &[u8]) -> Option<Vec<u8>>;
}

/// A fixed list of (name, secret) pairs.
#[derive(Debug, Clone, Default)]
pub struct StaticCredentials(pub Vec<(Vec<u8>, Vec<u8>)>);

impl Credentials for StaticCredentials {
    fn secret(&self, peer_name: &[u8]) -> Option<Vec<u8>> {
        self.0
            .iter()
            .find(|(n, _)| n.as_slice() == peer_name)
            .map(|(_, s)| s.clone())
    }
}

/// Endpoint configuration. `Config::default()` is a client that authenticates nobody.
#[derive(Debug, Clone)]
pub struct Config {
    /// Restart timer and counters (docs/reference/rfc.md §4.4), shared by LCP, IPCP and IPv6CP.
    pub fsm: FsmConfig,
    /// Our MRU; requested when not 1500.
    pub mru: u16,
    /// ACCM to request (meaningless on sync links but negotiable); `None` = do not request.
    pub accm: Option<u32>,
    /// Negotiate a Magic-Number (loop detection, echo).
    pub magic: bool,
    /// Request and accept Protocol-Field-Compression (otherwise reject it).
    pub pfc: bool,
    /// Request and accept Address-and-Control-Field-Compression (otherwise reject it).
    pub acfc: bool,
    /// Authentication we require from the peer, in order of preference (empty = none).
    pub require_auth: Vec<AuthProtocol>,
    /// Our name in CHAP Challenges.
    pub auth_name: Vec<u8>,
    /// Our own (user name, secret) for authenticating to the peer.
    pub user: Option<(Vec<u8>, Vec<u8>)>,
    /// Protocols we agree to authenticate ourselves with, in order of preference.
    pub allow_auth: Vec<AuthProtocol>,
    /// How long the authenticator waits for the peer to authenticate (µs).
    pub auth_timeout_us: u64,
    /// The owner checks the peer's credentials (e.g. with RADIUS): the endpoint reports each
    /// PAP Request or CHAP Response as [`crate::Event::AuthRequest`] and waits for
    /// [`crate::Endpoint::auth_verdict`] instead of asking its [`Credentials`].
    pub external_auth: bool,
    /// LCP Echo-Request interval (µs); `None` disables keepalives.
    pub echo_interval_us: Option<u64>,
    /// Unanswered Echo-Requests after which the link is declared dead.
    pub echo_failure: u32,
    /// Run IPCP.
    pub ipcp: bool,
    /// Our IPv4 address; `None` requests 0.0.0.0 and accepts the peer's Nak.
    pub local_ip: Option<Ipv4Addr>,
    /// The address we assign to the peer (the server side's pool entry for this session).
    pub peer_ip: Option<Ipv4Addr>,
    /// Server side: the peer must get its address from us. Without `peer_ip` when the link
    /// enters the network phase (after authentication, which may set it) the link is closed
    /// (LCP Terminate-Request, [`crate::DownReason::NoAddress`]) instead of running IPCP with
    /// an address the peer picks.
    pub require_peer_ip: bool,
    /// DNS servers we hand to the peer (RFC 1877 options 129, 131).
    pub dns: [Option<Ipv4Addr>; 2],
    /// NetBIOS name servers we hand to the peer (RFC 1877 options 130, 132).
    pub nbns: [Option<Ipv4Addr>; 2],
    /// Ask the peer for DNS servers (client side).
    pub request_dns: bool,
    /// Run IPv6CP.
    pub ipv6cp: bool,
    /// Our interface identifier; `None` picks a random one.
    pub interface_id: Option<u64>,
    /// The interface identifier the peer must use (server side, e.g. RADIUS
    /// Framed-Interface-Id): any other is Nak'ed with it. `None`: the peer picks.
    pub peer_interface_id: Option<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            fsm: FsmConfig::default(),
            mru: 1500,
            accm: None,
            magic: true,
            pfc: false,
            acfc: false,
            require_auth: Vec::new(),
            auth_name: b"ul2tp".to_vec(),
            user: None,
            allow_auth: vec![
                AuthProtocol::ChapMd5,
                AuthProtocol::MsChapV2,
                AuthProtocol::Pap,
            ],
            auth_timeout_us: 30_000_000,
            external_auth: false,
            echo_interval_us: Some(10_000_000),
            echo_failure: 3,
            ipcp: true,
            local_ip: None,
            peer_ip: None,
            require_peer_ip: false,
            dns: [None, None],
            nbns: [None, None],
            request_dns: false,
            ipv6cp: false,
            interface_id: None,
            peer_interface_id: None,
        }
    }
}
