//! ul2tp-api: the management protocol of ul2tpd, our equivalent of the kernel's generic
//! netlink family `l2tp` (docs/reference/kernel.md §4).
//!
//! Transport: a Unix stream socket carrying one JSON object per line. A client sends
//! [`Request`]s; the daemon answers each with one [`ServerMessage`] carrying the same `seq`,
//! and, on a connection that sent [`Command::Monitor`], pushes events (the equivalent of the
//! `l2tp` multicast group, docs/reference/kernel.md §4.9) as [`ServerMessage`]s with `event` set.
//!
//! Attribute names are the kernel's `L2TP_ATTR_*` names in lower case; errors carry the errno
//! name the kernel returns in the same situation plus a sentence for humans.
//!
//! Pure: types and framing only. The client lives in the `ul2tp` crate.
#![forbid(unsafe_code)]

use core::net::{Ipv4Addr, Ipv6Addr};
use serde::{Deserialize, Serialize};

mod errno;
pub mod sockproto;
pub use errno::Errno;

/// Default path of the daemon's API socket.
pub const DEFAULT_SOCKET: &str = "/run/ul2tp/ul2tpd.sock";
/// Environment variable that overrides [`DEFAULT_SOCKET`] for clients and the daemon.
pub const SOCKET_ENV: &str = "UL2TP_SOCKET";
/// Directory of the API sockets of daemons in named network namespaces
/// ([`netns_socket_path`]).
pub const NETNS_SOCKET_DIR: &str = "/run/ul2tp/netns";

/// The API socket of the daemon serving the named network namespace `name` (as created by
/// `ip netns add NAME`): `/run/ul2tp/netns/NAME.sock`.
///
/// `ip netns exec` gives a process its own mount namespace but shares `/run`, so one path
/// for every namespace would make the daemons collide; the name keeps them apart.
pub fn netns_socket_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(NETNS_SOCKET_DIR).join(format!("{name}.sock"))
}

/// The API socket used when neither a path nor [`SOCKET_ENV`] is given, for a process in the
/// network namespace named `netns` (`ul2tp_sys::netns::current_name()`, `None` outside a
/// named one): [`netns_socket_path`] or [`DEFAULT_SOCKET`]. The daemon and the clients
/// resolve it the same way.
pub fn default_socket_path(netns: Option<&str>) -> std::path::PathBuf {
    netns
        .map(netns_socket_path)
        .unwrap_or_else(|| std::path::PathBuf::from(DEFAULT_SOCKET))
}

/// Version of this protocol, reported by [`Command::Noop`].
pub const API_VERSION: u32 = 1;

/// Pseudowire types (enum l2tp_pwtype, docs/reference/kernel.md §4.4).
pub mod pw_type {
    /// No pseudowire.
    pub const NONE: u16 = 0x0000;
    /// Ethernet VLAN (RFC 4719); implemented by ul2tp (the kernel never did).
    pub const ETH_VLAN: u16 = 0x0004;
    /// Ethernet.
    pub const ETH: u16 = 0x0005;
    /// PPP.
    pub const PPP: u16 = 0x0007;
    /// PPP with HDLC address/control (not implemented).
    pub const PPP_AC: u16 = 0x0008;
    /// IP (not implemented).
    pub const IP: u16 = 0x000b;
    /// First invalid value: `pw_type >= MAX` is EINVAL (docs/reference/kernel.md §4.6).
    pub const MAX: u16 = 12;
}

/// Encapsulation types (enum l2tp_encap_type).
pub mod encap_type {
    /// L2TP over UDP.
    pub const UDP: u16 = 0;
    /// L2TPv3 over IP protocol 115.
    pub const IP: u16 = 1;
}

/// L2-specific sublayer types (enum l2tp_l2spec_type).
pub mod l2spec_type {
    /// No sublayer.
    pub const NONE: u8 = 0;
    /// The default L2-specific sublayer of RFC 3931 §4.6 (S bit + 24-bit sequence).
    pub const DEFAULT: u8 = 1;
}

/// Commands (L2TP_CMD_* plus ul2tp extensions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// L2TP_CMD_NOOP: replies with the API version; needs no privilege.
    Noop,
    /// L2TP_CMD_TUNNEL_CREATE.
    TunnelCreate,
    /// L2TP_CMD_TUNNEL_DELETE.
    TunnelDelete,
    /// L2TP_CMD_TUNNEL_MODIFY.
    TunnelModify,
    /// L2TP_CMD_TUNNEL_GET (with `dump` for all tunnels).
    TunnelGet,
    /// L2TP_CMD_SESSION_CREATE.
    SessionCreate,
    /// L2TP_CMD_SESSION_DELETE.
    SessionDelete,
    /// L2TP_CMD_SESSION_MODIFY.
    SessionModify,
    /// L2TP_CMD_SESSION_GET (with `dump` for all sessions).
    SessionGet,
    /// Subscribe this connection to the event stream (the `l2tp` multicast group).
    Monitor,
    /// The kernel's debugfs `l2tp/tunnels` listing (docs/reference/kernel.md §9.1), as `text`.
    DebugTunnels,
    /// The `/proc/net/pppol2tp` listing (docs/reference/kernel.md §7.8), as `text`.
    DebugPppol2tp,
    /// Switch trace events on or off for a tunnel (`conn_id`) or session (`conn_id` +
    /// `session_id`), with `debug` as the on/off value (docs/reference/kernel.md §9.2).
    TraceSet,
    /// The PPPoL2TP `connect()` of docs/reference/kernel.md §7.3: `conn_id`, `session_id`, `peer_conn_id`,
    /// `peer_session_id`, `proto_version` and, to create the tunnel, an attached UDP socket
    /// (`fd`). The reply carries a session socket descriptor (see [`sockproto`]).
    Pppol2tpConnect,
    /// Open an L2TP/IP socket (docs/reference/kernel.md §8): bound to `ip_saddr`/`ip6_saddr` (optional)
    /// and `conn_id`, optionally connected to `ip_daddr`/`ip6_daddr` and `peer_conn_id`.
    /// The reply carries the descriptor (see [`sockproto`]).
    L2tpipSocket,
    /// Open a dynamic tunnel with the L2TP control protocol (beyond the kernel): to
    /// `ip_daddr`/`ip6_daddr` over `encap_type` (default UDP; IP: L2TPv3 only, else
    /// EPROTONOSUPPORT) and `udp_dport` (UDP only, default 1701) with `proto_version`
    /// (default 3). The reply's `conn_id` is the new tunnel's id; it appears (tunnel_create
    /// event) when the control connection is established. Needs the `[control]` section of
    /// the configuration, with a listener of that transport and address family
    /// (EAFNOSUPPORT otherwise). With `wait`, answered once the control connection is
    /// established, or with the reason it failed (the peer's StopCCN Result Code, no answer,
    /// authentication).
    ControlConnect,
    /// Open a session in a dynamic tunnel (`conn_id`, optional `pw_type` (default eth),
    /// `vlan_id` (eth_vlan, needed there), `ifname`, `recv_seq`, `l2spec_type`, `cookie`
    /// length given as a hex string's length). The reply's `session_id` is the new session's
    /// id. With `wait`, answered once the session is established, or with the reason it
    /// failed (the peer's CDN Result Code).
    ControlSession,
    /// Close a dynamic tunnel (`conn_id`) or one of its sessions (`conn_id` + `session_id`)
    /// with StopCCN / CDN.
    ControlDisconnect,
    /// Run the daemon's PPP endpoint on a PPP session (`conn_id` + `session_id`): with
    /// `ip_saddr` (ours) and `ip_daddr` (assigned to the peer) as server, without as client.
    /// A `pppN` device appears when IPCP is up.
    PppStart,
    /// Place the call of the configured `[[lac]]` profile named `profile`: a tunnel to its
    /// LNS (the next address when one does not answer), its sessions and their PPP links,
    /// redialled as the profile says. With `wait`, answered once every session's PPP link is
    /// up (`conn_id`, `session_id` of the first), or with the reason the attempt failed on
    /// every address; without, at once.
    Dial,
    /// Hang up the call of the `[[lac]]` profile `profile` (StopCCN) and stop redialling it.
    Hangup,
    /// The `[[lac]]` calls (with `dump`: all; else the one named `profile`): `profile`,
    /// `call_state`, the LNS (`ip_daddr`/`ip6_daddr`, `udp_dport`), `conn_id` and `session_id`
    /// when up, `call_cause` after a failure.
    LacGet,
}

/// Counters of a tunnel or session (L2TP_ATTR_STATS, docs/reference/kernel.md §3.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Packets transmitted.
    pub tx_packets: u64,
    /// Bytes transmitted, L2TP header included.
    pub tx_bytes: u64,
    /// Transmit failures.
    pub tx_errors: u64,
    /// Packets delivered to the pseudowire.
    pub rx_packets: u64,
    /// Bytes received, L2TP header included.
    pub rx_bytes: u64,
    /// Sequence discards.
    pub rx_seq_discards: u64,
    /// Cookie mismatches.
    pub rx_cookie_discards: u64,
    /// Out-of-sequence packets queued for reordering.
    pub rx_oos_packets: u64,
    /// Every receive discard in the session path.
    pub rx_errors: u64,
    /// Invalid packets (version mismatch, missing optional fields).
    pub rx_invalid: u64,
}

/// Attributes: the kernel's `L2TP_ATTR_*` in lower case. Absent = not sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attrs {
    /// L2TP_ATTR_PW_TYPE, see [`pw_type`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pw_type: Option<u16>,
    /// L2TP_ATTR_ENCAP_TYPE, see [`encap_type`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encap_type: Option<u16>,
    /// L2TP_ATTR_L2SPEC_TYPE, see [`l2spec_type`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l2spec_type: Option<u8>,
    /// L2TP_ATTR_L2SPEC_LEN (accepted and ignored, as by the kernel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l2spec_len: Option<u8>,
    /// L2TP_ATTR_PROTO_VERSION: 2 or 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto_version: Option<u8>,
    /// L2TP_ATTR_IFNAME.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ifname: Option<String>,
    /// L2TP_ATTR_CONN_ID: the local tunnel id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conn_id: Option<u32>,
    /// L2TP_ATTR_PEER_CONN_ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_conn_id: Option<u32>,
    /// L2TP_ATTR_SESSION_ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<u32>,
    /// L2TP_ATTR_PEER_SESSION_ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_session_id: Option<u32>,
    /// L2TP_ATTR_UDP_CSUM: on create, presence enables IPv4 UDP checksums; in replies 1/0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp_csum: Option<u8>,
    /// L2TP_ATTR_VLAN_ID (for pw_type ETH_VLAN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan_id: Option<u16>,
    /// L2TP_ATTR_COOKIE: the cookie we send, as hex (0 to 8 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<String>,
    /// L2TP_ATTR_PEER_COOKIE: the cookie we expect, as hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_cookie: Option<String>,
    /// L2TP_ATTR_DEBUG (accepted; replies carry 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debug: Option<u32>,
    /// L2TP_ATTR_RECV_SEQ (only bit 0 counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recv_seq: Option<u8>,
    /// L2TP_ATTR_SEND_SEQ (only bit 0 counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_seq: Option<u8>,
    /// L2TP_ATTR_LNS_MODE (only bit 0 counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lns_mode: Option<u8>,
    /// L2TP_ATTR_USING_IPSEC (replies only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub using_ipsec: Option<u8>,
    /// L2TP_ATTR_RECV_TIMEOUT: reorder timeout in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recv_timeout: Option<u64>,
    /// L2TP_ATTR_FD: a managed tunnel's socket. The descriptor itself travels with the
    /// request as SCM_RIGHTS ancillary data; this attribute says one is attached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fd: Option<i32>,
    /// L2TP_ATTR_IP_SADDR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_saddr: Option<Ipv4Addr>,
    /// L2TP_ATTR_IP_DADDR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_daddr: Option<Ipv4Addr>,
    /// L2TP_ATTR_UDP_SPORT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp_sport: Option<u16>,
    /// L2TP_ATTR_UDP_DPORT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp_dport: Option<u16>,
    /// L2TP_ATTR_MTU (accepted and ignored, as by the kernel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u16>,
    /// L2TP_ATTR_MRU (accepted and ignored, as by the kernel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mru: Option<u16>,
    /// L2TP_ATTR_STATS (replies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<Stats>,
    /// L2TP_ATTR_IP6_SADDR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip6_saddr: Option<Ipv6Addr>,
    /// L2TP_ATTR_IP6_DADDR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip6_daddr: Option<Ipv6Addr>,
    /// L2TP_ATTR_UDP_ZERO_CSUM6_TX (flag: send zero UDP checksums over IPv6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp_zero_csum6_tx: Option<bool>,
    /// L2TP_ATTR_UDP_ZERO_CSUM6_RX (flag: accept zero UDP checksums over IPv6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp_zero_csum6_rx: Option<bool>,
    /// ul2tp: the user name the PPP endpoint authenticates with (`ppp_start`, client side).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ppp_user: Option<String>,
    /// ul2tp: the password / CHAP secret that goes with `ppp_user`. Never in replies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ppp_password: Option<String>,
    /// ul2tp (replies): the pppN device of a PPP session whose IPCP is up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ppp_ifname: Option<String>,
    /// ul2tp (replies): our IPv4 address on the PPP link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ppp_local: Option<Ipv4Addr>,
    /// ul2tp (replies): the peer's IPv4 address on the PPP link (the leased pool address on
    /// an LNS, or the Framed-IP-Address RADIUS gave).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ppp_peer: Option<Ipv4Addr>,
    /// ul2tp (replies): seconds since the PPP network layer came up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ppp_online: Option<u64>,
    /// ul2tp (replies): the `[[lns]]` profile of the call (`default` for `[control]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ppp_profile: Option<String>,
    /// ul2tp (replies): the address pool `ppp_peer` was leased from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ppp_pool: Option<String>,
    /// ul2tp (replies): the prefixes routed through the session's pppN (RADIUS Framed-Route
    /// and Framed-IP-Netmask, docs/radius.md), `ADDR/LEN` each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ppp_routes: Option<Vec<String>>,
    /// ul2tp (replies): the Acct-Session-Id of an LNS session accounted by RADIUS
    /// (docs/radius.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acct_session_id: Option<String>,
    /// ul2tp (tunnel replies): the Host Name the peer of a dynamic tunnel sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_host_name: Option<String>,
    /// ul2tp (tunnel replies): the `[[lns]]` profile a dynamic tunnel a LAC opened came up
    /// with (`default` for `[control]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lns_profile: Option<String>,
    /// ul2tp: the `[[lac]]` profile of `dial` / `hangup`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// ul2tp: `control_connect`, `control_session`, `dial`: answer once the object is up or
    /// failed, with the cause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<bool>,
    /// ul2tp (`lac_get` replies): `idle`, `dialing`, `up` or `waiting` (to redial).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_state: Option<String>,
    /// ul2tp (`lac_get` replies): why the last attempt failed or the call went down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_cause: Option<String>,
    /// ul2tp (replies): the IPv6 /64 on a PPP session's link, `PREFIX/64`: leased and
    /// advertised by an LNS, or the one a LAC formed its address from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ppp_ipv6_prefix: Option<String>,
    /// ul2tp (replies): the prefix delegated with DHCPv6 on a PPP session's link,
    /// `PREFIX/LEN` (by an LNS, or to a LAC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ppp_ipv6_delegated: Option<String>,
}

/// A request from a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// Chosen by the client; echoed in the reply.
    pub seq: u64,
    /// What to do.
    pub cmd: Command,
    /// For `*_get`: list every object (the netlink dump form).
    #[serde(default, skip_serializing_if = "core::ops::Not::not")]
    pub dump: bool,
    /// The request's attributes.
    #[serde(default)]
    pub attrs: Attrs,
}

/// A failure: the errno the kernel returns in the same situation and a sentence for humans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// Errno name, e.g. `EEXIST`.
    pub errno: Errno,
    /// Explanation for humans.
    pub message: String,
}

impl ApiError {
    /// Build an error.
    pub fn new(errno: Errno, message: impl Into<String>) -> Self {
        Self {
            errno,
            message: message.into(),
        }
    }
}

impl core::fmt::Display for ApiError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{} ({:?}): {}",
            self.errno.strerror(),
            self.errno,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

/// One line from the daemon: a reply (`seq` set) or an event (`event` set).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerMessage {
    /// The request this answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// For events: which command caused it (tunnel_create, session_delete, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Command>,
    /// Set when the request failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
    /// The object of a get reply or an event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attrs: Option<Attrs>,
    /// The objects of a dump, in the kernel's order (docs/reference/kernel.md §4.8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries: Option<Vec<Attrs>>,
    /// Text of the debug listings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl ServerMessage {
    /// A successful reply.
    pub fn ok(seq: u64) -> Self {
        Self {
            seq: Some(seq),
            ..Self::default()
        }
    }

    /// A failed reply.
    pub fn err(seq: u64, error: ApiError) -> Self {
        Self {
            seq: Some(seq),
            error: Some(error),
            ..Self::default()
        }
    }

    /// An event.
    pub fn event(cmd: Command, attrs: Attrs) -> Self {
        Self {
            event: Some(cmd),
            attrs: Some(attrs),
            ..Self::default()
        }
    }
}

/// Encode a message as one line (JSON + `\n`).
pub fn encode_line<T: Serialize>(msg: &T) -> Vec<u8> {
    // Serialising these plain structs cannot fail (no maps with non-string keys).
    let mut v = serde_json::to_vec(msg).unwrap_or_default();
    v.push(b'\n');
    v
}

/// Decode one line (with or without the trailing newline).
pub fn decode_line<'a, T: Deserialize<'a>>(line: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(line.trim_ascii_end())
        .map_err(|e| ApiError::new(Errno::EINVAL, format!("malformed request: {e}")))
}

/// Parse a cookie given as hex (even number of digits, at most 16) into bytes.
pub fn parse_cookie_hex(s: &str) -> Result<Vec<u8>, ApiError> {
    let s = s.trim();
    if s.len() % 2 != 0 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::new(
            Errno::EINVAL,
            format!("cookie {s:?} is not a hex string"),
        ));
    }
    if s.len() > 16 {
        return Err(ApiError::new(Errno::ERANGE, "cookie longer than 8 bytes"));
    }
    Ok((0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0))
        .collect())
}

/// Format cookie bytes as lowercase hex.
pub fn cookie_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_roundtrip_and_names() {
        let r = Request {
            seq: 7,
            cmd: Command::TunnelCreate,
            dump: false,
            attrs: Attrs {
                conn_id: Some(3000),
                ip_saddr: Some("192.0.2.1".parse().unwrap()),
                ..Attrs::default()
            },
        };
        let line = encode_line(&r);
        let s = std::str::from_utf8(&line).unwrap();
        assert_eq!(
            s,
            "{\"seq\":7,\"cmd\":\"tunnel_create\",\"attrs\":{\"conn_id\":3000,\"ip_saddr\":\"192.0.2.1\"}}\n"
        );
        assert_eq!(decode_line::<Request>(&line).unwrap(), r);
    }

    #[test]
    fn unknown_attribute_is_einval() {
        let e =
            decode_line::<Request>(br#"{"seq":1,"cmd":"noop","attrs":{"bogus":1}}"#).unwrap_err();
        assert_eq!(e.errno, Errno::EINVAL);
        assert!(e.message.contains("bogus"));
    }

    #[test]
    fn cookies() {
        assert_eq!(
            parse_cookie_hex("0011223344556677").unwrap(),
            vec![0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77]
        );
        assert_eq!(parse_cookie_hex("").unwrap(), Vec::<u8>::new());
        assert_eq!(parse_cookie_hex("abc").unwrap_err().errno, Errno::EINVAL);
        assert_eq!(
            parse_cookie_hex("001122334455667788").unwrap_err().errno,
            Errno::ERANGE
        );
        assert_eq!(cookie_hex(&[0xde, 0xad]), "dead");
    }

    #[test]
    fn error_reply_roundtrip() {
        let m = ServerMessage::err(3, ApiError::new(Errno::EEXIST, "tunnel 5 exists"));
        let line = encode_line(&m);
        assert!(std::str::from_utf8(&line)
            .unwrap()
            .contains("\"errno\":\"EEXIST\""));
        assert_eq!(decode_line::<ServerMessage>(&line).unwrap(), m);
    }
}
