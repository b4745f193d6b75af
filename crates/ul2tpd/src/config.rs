//! The static configuration file (TOML).
//!
//! ul2tpd runs without any configuration; `--config FILE` may declare the API socket's
//! permissions and static (unmanaged) tunnels and sessions, which are created at start-up
//! exactly as if the equivalent `ul2tp add tunnel` / `ul2tp add session` requests had been
//! made. Unknown keys are rejected; every error names the file, the line and the key.
//! [`Config::check`] is the one validation path of `--check-config`, start-up and reload
//! (SIGHUP, `reload.rs`): whatever start-up would refuse from the file alone is refused there.
//!
//! ```toml
//! [api]
//! socket = "/run/ul2tp/ul2tpd.sock"   # default; --socket and $UL2TP_SOCKET override it
//! group = "netadmin"                   # members may change state (root always may)
//! read_group = "netops"                # members may read (show, monitor, debug)
//!
//! [[tunnel]]
//! tunnel_id = 3000
//! peer_tunnel_id = 4000
//! encap = "udp"                        # udp | ip
//! local = "192.0.2.1"
//! remote = "192.0.2.2"
//! udp_sport = 5000
//! udp_dport = 6000
//!
//! [[tunnel.session]]
//! session_id = 1000
//! peer_session_id = 2000
//! name = "l2tpeth0"
//! ```

use std::net::IpAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;
use ul2tp_api::{encap_type, l2spec_type, pw_type, Attrs};

/// A configuration error with its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The key at fault, when known.
    pub key: Option<String>,
    /// The table of `key` when it is one of the single tables (`api`, `control`, `metrics`).
    pub table: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        match (&self.table, &self.key) {
            (Some(t), Some(k)) => write!(f, ": [{t}] {k}")?,
            (None, Some(k)) => write!(f, ": key `{k}`")?,
            _ => {}
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// The `[api]` table.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Socket path.
    pub socket: Option<PathBuf>,
    /// Group whose members may change state.
    pub group: Option<String>,
    /// Group whose members may read state.
    pub read_group: Option<String>,
    /// Open API connections at most (default [`DEFAULT_MAX_CONNECTIONS`]); root may open
    /// [`crate::server::ROOT_RESERVE`] more.
    pub max_connections: Option<usize>,
    /// Open API connections per non-root uid at most (default
    /// [`DEFAULT_MAX_CONNECTIONS_PER_UID`]).
    pub max_connections_per_uid: Option<usize>,
    /// Seconds after which a connection of a user who may not change state (read-only or
    /// unknown) that has sent no request is closed; monitors of readers are not idle
    /// (default [`DEFAULT_IDLE_TIMEOUT`]).
    pub idle_timeout: Option<f64>,
}

/// Default `[api] max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// Default `[api] max_connections_per_uid`.
pub const DEFAULT_MAX_CONNECTIONS_PER_UID: usize = 16;
/// Default `[api] idle_timeout`, seconds.
pub const DEFAULT_IDLE_TIMEOUT: f64 = 60.0;

impl ApiConfig {
    /// The connection limits in force.
    pub fn limits(&self) -> crate::server::Limits {
        crate::server::Limits {
            max_connections: self.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS),
            max_per_uid: self
                .max_connections_per_uid
                .unwrap_or(DEFAULT_MAX_CONNECTIONS_PER_UID),
            idle_timeout: std::time::Duration::from_secs_f64(
                self.idle_timeout.unwrap_or(DEFAULT_IDLE_TIMEOUT),
            ),
        }
    }
}

/// The `[control]` table: run the L2TP control protocol (dynamic tunnels).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    /// Local address and port of the control endpoint (default 0.0.0.0:1701).
    #[serde(default = "default_listen")]
    pub listen: std::net::SocketAddr,
    /// Further UDP addresses of the control endpoint, e.g. "[::]:1701" next to an IPv4
    /// `listen` (at most one per address family, counting `listen`).
    #[serde(default)]
    pub listen_udp: Vec<std::net::SocketAddr>,
    /// Addresses of L2TPv3/IP (protocol 115) control listeners, e.g. "0.0.0.0" or "::" (at
    /// most one per address family; none by default).
    #[serde(default)]
    pub listen_ip: Vec<IpAddr>,
    /// Host Name AVP (default "ul2tp").
    pub host_name: Option<String>,
    /// Shared secret: L2TPv2 tunnel authentication and hidden AVPs, L2TPv3 message digests.
    pub secret: Option<String>,
    /// Hide the AVPs that may be hidden (needs a secret).
    #[serde(default)]
    pub hide_avps: bool,
    /// L2TPv2 with a secret: challenge the peer and refuse it unless it answers (default
    /// true; false only for peers that cannot answer a Challenge).
    #[serde(default = "default_challenge")]
    pub challenge: bool,
    /// Seconds of silence before a HELLO (default 60).
    pub hello_interval: Option<u64>,
    /// Retransmissions before a tunnel is declared down (default 5).
    pub max_retries: Option<u32>,
    /// Most half-open tunnels (SCCRQ received, SCCCN not yet) at once (default 1000).
    pub max_half_open: Option<usize>,
    /// Most half-open tunnels from one source address (default 8).
    pub max_half_open_per_peer: Option<usize>,
    /// New tunnels per second one source address may open; 0 = unlimited (default 4).
    pub new_tunnels_per_second_per_peer: Option<u32>,
    /// Burst of that rate limit (default 8).
    pub new_tunnels_burst_per_peer: Option<u32>,
    /// Retransmissions of an SCCRP the peer has not answered (default 3, at most max_retries).
    pub max_retries_half_open: Option<u32>,
    /// Our Receive Window Size: control messages the peer may have in flight (default 16).
    pub receive_window: Option<u16>,
    /// Seconds a closed tunnel's state is kept to deliver or re-acknowledge its StopCCN
    /// (default 31, RFC 2661 §5.7 / RFC 3931 §4.2: one full retransmission cycle).
    pub stop_hold: Option<u64>,
    /// Cap, in seconds, of the doubling retransmission timeout (default 16; at least 8,
    /// RFC 2661 §5.8).
    pub retransmit_cap: Option<u64>,
    /// LNS: our address on the pppN of PPP sessions peers open (with `ppp_pool`).
    pub ppp_local: Option<std::net::Ipv4Addr>,
    /// LNS: addresses handed to peers, "FIRST-LAST".
    pub ppp_pool: Option<String>,
    /// LNS: authentication required from PPP peers: "pap", "chap" (CHAP-MD5) or "mschapv2".
    pub ppp_auth: Option<String>,
    /// LNS: accepted PPP users and their passwords / secrets.
    #[serde(default)]
    pub ppp_users: std::collections::BTreeMap<String, String>,
    /// LNS: seconds between LCP Echo-Requests on PPP sessions (default 10).
    pub ppp_echo_interval: Option<u64>,
    /// LNS: unanswered Echo-Requests after which the link is down and the call cleared
    /// (default 3).
    pub ppp_echo_failure: Option<u32>,
    /// LNS: tunnels one peer address may hold at once (default: no limit).
    pub max_tunnels: Option<usize>,
    /// LNS: calls per tunnel; more are refused with CDN 4 (default: no limit).
    pub max_sessions: Option<usize>,
    /// LNS: DNS servers handed to PPP peers in IPCP (RFC 1877, at most 2).
    #[serde(default)]
    pub ppp_dns: Vec<std::net::Ipv4Addr>,
    /// LNS: NBNS servers handed to PPP peers in IPCP (at most 2).
    #[serde(default)]
    pub ppp_nbns: Vec<std::net::Ipv4Addr>,
    /// LNS: MTU of the pppN devices (at most the peer's MRU).
    pub ppp_mtu: Option<u16>,
    /// LNS: the MRU we ask for in LCP.
    pub ppp_mru: Option<u16>,
    /// LNS: seconds without IP traffic after which a call is cleared.
    pub ppp_idle_timeout: Option<u64>,
    /// LNS: seconds online after which a call is cleared.
    pub ppp_session_timeout: Option<u64>,
    /// LNS: "per-session" (a pppN per call, the default) or "shared" (one TUN for all the
    /// calls, `ppp_shared.rs`).
    pub ppp_device: Option<String>,
    /// LNS: the name of the shared TUN (default "ppps0").
    pub ppp_device_name: Option<String>,
    /// LNS: IPv6 prefix ("PREFIX/LEN", /32 to /64) from which each PPP session gets a /64,
    /// advertised on its link with Router Advertisements (SLAAC).
    pub ppp_ipv6_pool: Option<String>,
    /// LNS: IPv6 DNS servers advertised with the prefix (RDNSS option, RFC 8106).
    #[serde(default)]
    pub ppp_ipv6_dns: Vec<std::net::Ipv6Addr>,
    /// LAC: add an IPv6 default route via the LNS when it advertises a prefix (default false).
    #[serde(default)]
    pub ppp_ipv6_default_route: bool,
    /// LNS: prefixes delegated to PPP subscribers with DHCPv6 ("PREFIX/LEN").
    pub ppp_ipv6_pd_pool: Option<String>,
    /// LNS: length of each delegated prefix (default 56).
    pub ppp_ipv6_pd_length: Option<u8>,
    /// LAC: ask the LNS for a delegated prefix with DHCPv6 (default false).
    #[serde(default)]
    pub ppp_ipv6_pd: bool,
}

fn default_challenge() -> bool {
    true
}

fn default_listen() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([0, 0, 0, 0], 1701))
}

impl ControlConfig {
    /// The engine settings this table describes.
    pub fn settings(&self) -> crate::control::ControlSettings {
        let mut c = ul2tp_control::Config {
            version: ul2tp_control::Version::V3,
            ..Default::default()
        };
        if let Some(h) = &self.host_name {
            c.host_name = h.clone();
        }
        c.secret = self.secret.as_ref().map(|s| s.as_bytes().to_vec());
        c.hide_avps = self.hide_avps;
        c.send_challenge = self.challenge;
        if let Some(h) = self.hello_interval {
            c.hello_interval = std::time::Duration::from_secs(h.max(1));
        }
        if let Some(r) = self.max_retries {
            c.max_retries = r;
        }
        if let Some(v) = self.max_half_open {
            c.max_half_open = v;
        }
        if let Some(v) = self.max_half_open_per_peer {
            c.max_half_open_per_peer = v;
        }
        if let Some(v) = self.new_tunnels_per_second_per_peer {
            c.new_tunnels_per_second_per_peer = v;
        }
        if let Some(v) = self.new_tunnels_burst_per_peer {
            c.new_tunnels_burst_per_peer = v;
        }
        if let Some(v) = self.max_retries_half_open {
            c.max_retries_half_open = v;
        }
        if let Some(w) = self.receive_window {
            c.rx_window = w.max(1);
        }
        if let Some(v) = self.stop_hold {
            c.stop_hold = std::time::Duration::from_secs(v);
        }
        if let Some(v) = self.retransmit_cap {
            c.retransmit_cap = std::time::Duration::from_secs(v);
        }
        c.max_tunnels_per_peer = self.max_tunnels.unwrap_or(0);
        c.max_sessions = self.max_sessions.unwrap_or(0);
        let default =
            default_profile(self, c.clone()).unwrap_or_else(|_| crate::profile::Profile {
                name: "default".into(),
                peers: Vec::new(),
                host_names: Vec::new(),
                config: c.clone(),
                ppp: None,
            });
        crate::control::ControlSettings {
            listen: self.listen,
            listen_udp: self.listen_udp.clone(),
            listen_ip: self.listen_ip.clone(),
            config: c,
            profiles: crate::profile::Profiles {
                list: Vec::new(),
                default: std::sync::Arc::new(default),
            },
            ppp_ipv6_client: crate::ppp_ipv6::ClientV6 {
                default_route: self.ppp_ipv6_default_route,
                prefix_delegation: self.ppp_ipv6_pd,
            },
        }
    }

    /// Check what serde cannot: the values' forms and the keys that need each other. On
    /// failure: the key at fault and what is wrong ([`Config::check`] adds file and line).
    /// A new key with a rule of its own adds one `if` here.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let family = |v6: bool| if v6 { "IPv6" } else { "IPv4" };
        if let Some(a) = self.listen_udp.iter().enumerate().find_map(|(i, a)| {
            let earlier = std::iter::once(&self.listen).chain(&self.listen_udp[..i]);
            earlier
                .clone()
                .any(|e| e.is_ipv6() == a.is_ipv6())
                .then_some(a)
        }) {
            return Err((
                "listen_udp",
                format!(
                    "{a}: a second UDP listener for {} (one per address family, counting listen)",
                    family(a.is_ipv6())
                ),
            ));
        }
        if let Some(a) = self.listen_ip.iter().enumerate().find_map(|(i, a)| {
            self.listen_ip[..i]
                .iter()
                .any(|e| e.is_ipv6() == a.is_ipv6())
                .then_some(a)
        }) {
            return Err((
                "listen_ip",
                format!(
                    "{a}: a second L2TPv3/IP listener for {} (one per address family)",
                    family(a.is_ipv6())
                ),
            ));
        }
        if self.max_half_open == Some(0) {
            return Err((
                "max_half_open",
                "must be at least 1 (0 admits no tunnel)".into(),
            ));
        }
        if self.max_half_open_per_peer == Some(0) {
            return Err((
                "max_half_open_per_peer",
                "must be at least 1 (0 admits no tunnel)".into(),
            ));
        }
        if self.new_tunnels_burst_per_peer == Some(0) {
            return Err(("new_tunnels_burst_per_peer", "must be at least 1".into()));
        }
        if let Some(w) = self.receive_window {
            if !(1..=1024).contains(&w) {
                return Err(("receive_window", format!("{w} is not in 1..=1024")));
            }
        }
        if self.stop_hold == Some(0) {
            return Err((
                "stop_hold",
                "must be at least 1 (the StopCCN must be delivered)".into(),
            ));
        }
        if let Some(v) = self.retransmit_cap {
            if !(8..=3600).contains(&v) {
                return Err((
                    "retransmit_cap",
                    format!("{v} is not in 8..=3600 (RFC 2661 5.8: a cap of at least 8 seconds)"),
                ));
            }
        }
        if let (Some(h), Some(m)) = (self.max_half_open_per_peer, self.max_half_open) {
            if h > m {
                return Err((
                    "max_half_open_per_peer",
                    format!("{h} is more than max_half_open ({m})"),
                ));
            }
        }
        default_profile(self, ul2tp_control::Config::default())?;
        Ok(())
    }
}

/// The default profile: the flat `[control]` keys.
pub(crate) fn default_profile(
    c: &ControlConfig,
    config: ul2tp_control::Config,
) -> Result<crate::profile::Profile, crate::profile::KeyError> {
    let pools = match &c.ppp_pool {
        Some(p) => vec![crate::profile::Pool {
            name: "ppp_pool".into(),
            ranges: vec![crate::profile::parse_range(p).map_err(|m| ("ppp_pool", m))?],
        }],
        None => Vec::new(),
    };
    let ppp = crate::profile::ppp_service(crate::profile::PppKeys {
        local: c.ppp_local,
        pools,
        auth: c.ppp_auth.as_deref(),
        users: &c.ppp_users,
        dns: crate::profile::two("ppp_dns", &c.ppp_dns)?,
        nbns: crate::profile::two("ppp_nbns", &c.ppp_nbns)?,
        mtu: c.ppp_mtu,
        mru: c.ppp_mru,
        echo: (c.ppp_echo_interval, c.ppp_echo_failure),
        idle: c.ppp_idle_timeout,
        session: c.ppp_session_timeout,
        device: (c.ppp_device.as_deref(), c.ppp_device_name.as_deref()),
        ipv6: crate::profile::Ipv6Keys {
            pool: c.ppp_ipv6_pool.as_deref(),
            dns: &c.ppp_ipv6_dns,
            pd_pool: c.ppp_ipv6_pd_pool.as_deref(),
            pd_length: c.ppp_ipv6_pd_length,
        },
    })?;
    crate::profile::limits(c.max_tunnels, c.max_sessions)?;
    if c.receive_window == Some(0) {
        return Err(("receive_window", "must be at least 1".into()));
    }
    Ok(crate::profile::Profile {
        name: "default".into(),
        peers: Vec::new(),
        host_names: Vec::new(),
        config,
        ppp,
    })
}

/// Encapsulation keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EncapKw {
    /// UDP (the default, as in `ip l2tp`).
    #[default]
    Udp,
    /// IP protocol 115.
    Ip,
}

/// `[[tunnel]]` entry: the keywords of `ip l2tp add tunnel`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TunnelConfig {
    /// Local tunnel id.
    pub tunnel_id: Spanned<u32>,
    /// Peer tunnel id.
    pub peer_tunnel_id: Spanned<u32>,
    /// L2TP version (2 or 3, default 3).
    pub version: Option<Spanned<u8>>,
    /// udp or ip.
    #[serde(default)]
    pub encap: EncapKw,
    /// Local address.
    pub local: Spanned<IpAddr>,
    /// Remote address.
    pub remote: Spanned<IpAddr>,
    /// UDP source port.
    pub udp_sport: Option<Spanned<u16>>,
    /// UDP destination port.
    pub udp_dport: Option<Spanned<u16>>,
    /// IPv4 UDP checksums (default off).
    #[serde(default)]
    pub udp_csum: bool,
    /// IPv6 UDP transmit checksums (default on).
    pub udp6_csum_tx: Option<bool>,
    /// IPv6 UDP receive checksum check (default on).
    pub udp6_csum_rx: Option<bool>,
    /// Sessions of this tunnel.
    #[serde(default)]
    pub session: Vec<Spanned<SessionConfig>>,
}

/// `[[tunnel.session]]` entry: the keywords of `ip l2tp add session`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionConfig {
    /// Local session id.
    pub session_id: Spanned<u32>,
    /// Peer session id.
    pub peer_session_id: Spanned<u32>,
    /// Interface name (default l2tpethN).
    pub name: Option<Spanned<String>>,
    /// Cookie we send (8 or 16 hex digits).
    pub cookie: Option<Spanned<String>>,
    /// Cookie we expect.
    pub peer_cookie: Option<Spanned<String>>,
    /// none | send | recv | both.
    pub seq: Option<Spanned<String>>,
    /// none | default.
    pub l2spec_type: Option<Spanned<String>>,
    /// eth | eth_vlan | ppp.
    pub pw_type: Option<Spanned<String>>,
    /// VLAN id for eth_vlan.
    pub vlan_id: Option<Spanned<u16>>,
    /// LNS mode.
    #[serde(default)]
    pub lns_mode: bool,
    /// Reorder timeout in milliseconds.
    #[serde(default)]
    pub reorder_timeout: u64,
}

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// API socket settings.
    #[serde(default)]
    pub api: ApiConfig,
    /// Static tunnels.
    #[serde(default)]
    pub tunnel: Vec<TunnelConfig>,
    /// The L2TP control protocol (dynamic tunnels); off when absent.
    pub control: Option<ControlConfig>,
    /// The Prometheus endpoint; off when absent.
    pub metrics: Option<MetricsConfig>,
    /// Data-path settings.
    #[serde(default)]
    pub datapath: DatapathConfig,
    /// RADIUS for the LNS's PPP sessions (docs/radius.md); off when absent.
    pub radius: Option<crate::radius::RadiusConfig>,
    /// Calls the LAC places (`dial.rs`).
    #[serde(default)]
    pub lac: Vec<crate::dial::LacConfig>,
    /// LNS profiles (`profile.rs`); with none, `[control]` serves every LAC.
    #[serde(default)]
    pub lns: Vec<Spanned<crate::profile::LnsProfile>>,
    /// Caps on the number of tunnels and sessions.
    #[serde(default)]
    pub limits: LimitsConfig,
}

impl Config {
    /// The control plane's settings: `[control]` with the `[[lns]]` profiles (`None` without
    /// `[control]`). For a configuration that passed [`Config::check`].
    pub fn control_settings(&self) -> Option<crate::control::ControlSettings> {
        let mut s = self.control.as_ref()?.settings();
        s.profiles.list = crate::profile::build_all(&self.lns, &s.config).ok()?;
        Some(s)
    }

    /// Whether the `[[lns]]` tables differ (what a reload hands the control plane).
    pub fn lns_changed(&self, other: &Config) -> bool {
        self.lns.len() != other.lns.len()
            || self
                .lns
                .iter()
                .zip(&other.lns)
                .any(|(a, b)| a.get_ref() != b.get_ref())
    }
}

/// The `[limits]` table: caps on the number of tunnels and sessions, static, API-created and
/// negotiated alike (docs/config.md). Absent keys: no cap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Tunnels in all.
    pub max_tunnels: Option<usize>,
    /// Sessions in all.
    pub max_sessions: Option<usize>,
    /// Sessions in one tunnel.
    pub max_sessions_per_tunnel: Option<usize>,
}

impl From<LimitsConfig> for ul2tp_core::Limits {
    fn from(l: LimitsConfig) -> Self {
        ul2tp_core::Limits {
            max_tunnels: l.max_tunnels,
            max_sessions: l.max_sessions,
            max_sessions_per_tunnel: l.max_sessions_per_tunnel,
        }
    }
}

/// The `[datapath]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatapathConfig {
    /// Give every Ethernet pseudowire device a MAC address derived from its tunnel and
    /// session ids (`store::stable_mac`) instead of a random one.
    #[serde(default)]
    pub stable_mac: bool,
    /// TAP offloads, segmentation and batching (docs/PERFORMANCE.md); `false` is the simple
    /// path (as `ul2tpd --no-offload`).
    #[serde(default = "yes")]
    pub offload: bool,
    /// `SO_RCVBUF` of the tunnel sockets the daemon creates, in bytes; 0 keeps the kernel's
    /// default.
    #[serde(default = "default_socket_receive_buffer")]
    pub socket_receive_buffer: usize,
    /// Data-path worker threads (`ul2tpd --workers` overrides); default one per CPU.
    #[serde(default)]
    pub workers: Option<usize>,
}

fn yes() -> bool {
    true
}

fn default_socket_receive_buffer() -> usize {
    crate::DataPathConfig::default().socket_rcvbuf
}

impl Default for DatapathConfig {
    fn default() -> Self {
        Self {
            stable_mac: false,
            offload: true,
            socket_receive_buffer: default_socket_receive_buffer(),
            workers: None,
        }
    }
}

impl DatapathConfig {
    /// The daemon's data-path settings from this table; `no_offload` is `ul2tpd --no-offload`.
    pub fn runtime(&self, no_offload: bool) -> crate::DataPathConfig {
        crate::DataPathConfig {
            offload: self.offload && !no_offload,
            socket_rcvbuf: self.socket_receive_buffer,
            workers: self.workers.unwrap_or_else(crate::workers::default_workers),
        }
    }
}

/// The `[metrics]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address and port of the HTTP endpoint serving `GET /metrics`.
    pub listen: std::net::SocketAddr,
}

/// A tunnel or session create request derived from the file, with its location for errors.
#[derive(Debug, Clone)]
pub struct StaticObject {
    /// The API attributes (as `ul2tp add ...` would send them).
    pub attrs: Attrs,
    /// Whether this is a session (else a tunnel).
    pub is_session: bool,
    /// Line of the table in the file.
    pub line: usize,
}

/// A configuration that passed every check: what `--check-config` reports on, start-up
/// creates and a reload (SIGHUP) applies. [`Config::check`] is the one validation path.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The parsed file.
    pub config: Config,
    /// Its tunnels and sessions as create requests, tunnels before their sessions.
    pub statics: Vec<StaticObject>,
    /// The file and its text, to name the line of a key in run-time errors.
    pub source: Source,
    /// The `[[lac]]` profiles, their secret files read.
    pub lac: Vec<crate::dial::LacProfile>,
}

/// A configuration file's name and text.
#[derive(Debug, Clone)]
pub struct Source {
    file: PathBuf,
    text: String,
}

impl Source {
    /// `FILE:LINE: [table] key` (or `FILE: [table] key` when the key is not in the file), to
    /// prefix a run-time error about a key of a single table, e.g. a `listen` address that
    /// cannot be bound.
    pub fn locate(&self, table: &str, key: &str) -> String {
        match key_line(&self.text, table, key) {
            Some(l) => format!("{}:{l}: [{table}] {key}", self.file.display()),
            None => format!("{}: [{table}] {key}", self.file.display()),
        }
    }
}

/// The line of `key` in the single table `[table]`, else of the table's header.
fn key_line(text: &str, table: &str, key: &str) -> Option<usize> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let (tk, tv) = doc
        .get_ref()
        .iter()
        .find(|(k, _)| &**k.get_ref() == table)?;
    let header = line_of(text, tk.span().start);
    match tv.get_ref() {
        toml::de::DeValue::Table(t) => Some(
            t.iter()
                .find(|(k, _)| &**k.get_ref() == key)
                .map_or(header, |(k, _)| line_of(text, k.span().start)),
        ),
        _ => Some(header),
    }
}

/// Whether a group exists (the `[api]` group keys).
fn check_group(name: &str) -> Result<(), String> {
    match nix::unistd::Group::from_name(name) {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(format!("group {name:?} does not exist")),
        Err(e) => Err(format!("cannot look up group {name:?}: {e}")),
    }
}

/// Line numbers of byte offsets in one text, by binary search in its newline offsets:
/// [`line_of`] scans the text up to the offset, which for a file of tens of thousands of
/// sessions (one lookup each) was quadratic: most of the start-up time.
struct LineIndex(Vec<usize>);

impl LineIndex {
    fn new(text: &str) -> Self {
        LineIndex(
            text.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i)
                .collect(),
        )
    }

    /// The same as `line_of(text, offset)`.
    fn line(&self, offset: usize) -> usize {
        self.0.partition_point(|&nl| nl < offset) + 1
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The key named in a toml error message, if any (e.g. "unknown field `foo`").
fn key_in_message(msg: &str) -> Option<String> {
    let start = msg.find('`')? + 1;
    let end = start + msg[start..].find('`')?;
    Some(msg[start..end].to_string())
}

impl Config {
    /// Read and parse a file.
    pub fn load(path: &Path) -> Result<(Config, String), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            line: None,
            key: None,
            table: None,
            message: format!("cannot read configuration file: {e}"),
        })?;
        let cfg = Self::parse(path, &text)?;
        Ok((cfg, text))
    }

    /// Parse TOML text.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        toml::from_str::<Config>(text).map_err(|e| {
            let msg = e.message().to_string();
            ConfigError {
                file: path.to_path_buf(),
                line: e.span().map(|s| line_of(text, s.start)),
                key: key_in_message(&msg),
                table: None,
                message: msg,
            }
        })
    }

    /// Read and check a file ([`Config::check`]).
    pub fn check_file(path: &Path) -> Result<Checked, ConfigError> {
        let (_, text) = Self::load(path)?;
        Self::check(path, &text)
    }

    /// Parse and check TOML text: everything start-up would refuse is refused here, with the
    /// file, line and key. `--check-config`, start-up and reload all go through this.
    pub fn check(path: &Path, text: &str) -> Result<Checked, ConfigError> {
        let config = Self::parse(path, text)?;
        let statics = config.static_objects(path, text)?;
        let at = |table: &str, key: &str, message: String| ConfigError {
            file: path.to_path_buf(),
            line: key_line(text, table, key),
            key: Some(key.to_string()),
            table: Some(table.to_string()),
            message,
        };
        for (key, group) in [
            ("group", &config.api.group),
            ("read_group", &config.api.read_group),
        ] {
            if let Some(g) = group {
                check_group(g).map_err(|m| at("api", key, m))?;
            }
        }
        for (key, n) in [
            ("max_connections", config.api.max_connections),
            (
                "max_connections_per_uid",
                config.api.max_connections_per_uid,
            ),
        ] {
            if n == Some(0) {
                return Err(at("api", key, "must be at least 1".into()));
            }
        }
        for (key, n) in [
            ("max_tunnels", config.limits.max_tunnels),
            ("max_sessions", config.limits.max_sessions),
            (
                "max_sessions_per_tunnel",
                config.limits.max_sessions_per_tunnel,
            ),
        ] {
            if n == Some(0) {
                return Err(at("limits", key, "must be at least 1".into()));
            }
        }
        if let Some(t) = config.api.idle_timeout {
            if !(t > 0.0 && t <= 1e9) {
                return Err(at(
                    "api",
                    "idle_timeout",
                    "must be a number of seconds above 0".into(),
                ));
            }
        }
        if let Some(c) = &config.control {
            c.check().map_err(|(key, m)| at("control", key, m))?;
            if c.ppp_auth.is_some() && c.ppp_users.is_empty() && config.radius.is_none() {
                return Err(at(
                    "control",
                    "ppp_auth",
                    "needs ppp_users or a [radius] table (with neither, no peer could authenticate)".into(),
                ));
            }
        }
        if let Some(r) = &config.radius {
            r.check().map_err(|(key, m)| at("radius", key, m))?;
            let control_auth = config
                .control
                .as_ref()
                .is_some_and(|c| c.ppp_local.is_some() && c.ppp_auth.is_some());
            let profile_auth = config.control.is_some()
                && config
                    .lns
                    .iter()
                    .any(|p| p.get_ref().ppp_local.is_some() && p.get_ref().ppp_auth.is_some());
            let lac_radius = config
                .lac
                .iter()
                .any(|l| l.radius.as_ref().is_some_and(|r| *r.get_ref()));
            if !control_auth && !profile_auth && !lac_radius {
                return Err(at(
                    "radius",
                    "server",
                    "RADIUS checks the LNS's PPP logins: needs [control] (or an [[lns]] profile) with ppp_local, a pool and ppp_auth, or a [[lac]] profile with radius = true".into(),
                ));
            }
        }
        let listeners = config.control.as_ref().map(|c| {
            let mut l = crate::dial::Listeners::default();
            for a in std::iter::once(&c.listen).chain(&c.listen_udp) {
                l.udp[usize::from(a.is_ipv6())] = true;
            }
            for a in &c.listen_ip {
                l.ip[usize::from(a.is_ipv6())] = true;
            }
            l
        });
        let lac = crate::dial::check_all(
            &config.lac,
            listeners,
            &|span: Range<usize>, key: &str, message: String| ConfigError {
                file: path.to_path_buf(),
                line: Some(line_of(text, span.start)),
                key: Some(key.to_string()),
                table: None,
                message,
            },
        )?;
        if config.radius.is_none() {
            if let Some(r) = config
                .lac
                .iter()
                .filter_map(|l| l.radius.as_ref())
                .find(|r| *r.get_ref())
            {
                return Err(ConfigError {
                    file: path.to_path_buf(),
                    line: Some(line_of(text, r.span().start)),
                    key: Some("radius".into()),
                    table: None,
                    message: "[[lac]] radius = true needs a [radius] table (the servers asked)"
                        .into(),
                });
            }
        }
        if let Some(p) = config.lns.first() {
            let Some(c) = &config.control else {
                return Err(ConfigError {
                    file: path.to_path_buf(),
                    line: Some(line_of(text, p.span().start)),
                    key: Some("lns".into()),
                    table: None,
                    message: "[[lns]] profiles need a [control] section (the control endpoint)"
                        .into(),
                });
            };
            crate::profile::build_all(&config.lns, &c.settings().config).map_err(
                |(span, key, message)| ConfigError {
                    file: path.to_path_buf(),
                    line: Some(crate::profile::key_line_in(text, span, key)),
                    key: Some(key.to_string()),
                    // Shown as `[[lns]] key`.
                    table: Some("[lns]".into()),
                    message,
                },
            )?;
            if config.radius.is_none() {
                if let Some(p) = config
                    .lns
                    .iter()
                    .find(|p| p.get_ref().ppp_auth.is_some() && p.get_ref().ppp_users.is_empty())
                {
                    return Err(ConfigError {
                        file: path.to_path_buf(),
                        line: Some(crate::profile::key_line_in(text, p.span(), "ppp_auth")),
                        key: Some("ppp_auth".into()),
                        table: Some("[lns]".into()),
                        message: format!(
                            "profile {:?}: needs ppp_users or a [radius] table (with neither, no peer could authenticate)",
                            p.get_ref().name
                        ),
                    });
                }
            }
        }
        if config.datapath.workers == Some(0) {
            return Err(at("datapath", "workers", "must be at least 1".into()));
        }
        Ok(Checked {
            config,
            statics,
            lac,
            source: Source {
                file: path.to_path_buf(),
                text: text.to_string(),
            },
        })
    }

    /// Turn the declared tunnels and sessions into create requests, validating every value
    /// the way `ip l2tp` does on its command line (docs/reference/kernel.md §11.2).
    pub fn static_objects(
        &self,
        path: &Path,
        text: &str,
    ) -> Result<Vec<StaticObject>, ConfigError> {
        let lines = LineIndex::new(text);
        let line_of = |_: &str, offset: usize| lines.line(offset);
        let err = |span: Range<usize>, key: &str, message: String| ConfigError {
            file: path.to_path_buf(),
            line: Some(line_of(text, span.start)),
            key: Some(key.to_string()),
            table: None,
            message,
        };
        let mut out = Vec::new();
        // Lines of what is declared, to refuse what the daemon would refuse as EEXIST.
        let mut tunnel_lines = std::collections::BTreeMap::new();
        let mut session_lines = std::collections::BTreeMap::new();
        let mut names = std::collections::BTreeMap::new();
        // L2TPv3 session ids and whether their tunnel is IP-encapsulated (§5.2: those must be
        // unique across all tunnels).
        let mut v3_sessions = std::collections::BTreeMap::new();
        for t in &self.tunnel {
            let tid = *t.tunnel_id.get_ref();
            if let Some(first) = tunnel_lines.insert(tid, line_of(text, t.tunnel_id.span().start)) {
                return Err(err(
                    t.tunnel_id.span(),
                    "tunnel_id",
                    format!("tunnel {tid} is declared twice (first at line {first})"),
                ));
            }
            if tid == 0 {
                return Err(err(
                    t.tunnel_id.span(),
                    "tunnel_id",
                    "must be between 1 and 4294967295".into(),
                ));
            }
            if *t.peer_tunnel_id.get_ref() == 0 {
                return Err(err(
                    t.peer_tunnel_id.span(),
                    "peer_tunnel_id",
                    "must be between 1 and 4294967295".into(),
                ));
            }
            let version = t.version.as_ref().map(|v| *v.get_ref()).unwrap_or(3);
            if let Some(v) = &t.version {
                if !matches!(version, 2 | 3) {
                    return Err(err(v.span(), "version", "must be 2 or 3".into()));
                }
                if version == 2 && t.encap == EncapKw::Ip {
                    return Err(err(
                        v.span(),
                        "version",
                        "L2TPv2 is carried over UDP only".into(),
                    ));
                }
            }
            if version == 2 {
                for (key, v) in [
                    ("tunnel_id", &t.tunnel_id),
                    ("peer_tunnel_id", &t.peer_tunnel_id),
                ] {
                    if *v.get_ref() > 0xffff {
                        return Err(err(
                            v.span(),
                            key,
                            "L2TPv2 tunnel ids are 1 to 65535".into(),
                        ));
                    }
                }
            }
            let (local, remote) = (*t.local.get_ref(), *t.remote.get_ref());
            if local.is_ipv4() != remote.is_ipv4() {
                return Err(err(
                    t.remote.span(),
                    "remote",
                    "local and remote must be of the same address family".into(),
                ));
            }
            let mut a = Attrs {
                conn_id: Some(tid),
                peer_conn_id: Some(*t.peer_tunnel_id.get_ref()),
                proto_version: Some(version),
                encap_type: Some(match t.encap {
                    EncapKw::Udp => encap_type::UDP,
                    EncapKw::Ip => encap_type::IP,
                }),
                ..Attrs::default()
            };
            match (local, remote) {
                (IpAddr::V4(l), IpAddr::V4(r)) => {
                    a.ip_saddr = Some(l);
                    a.ip_daddr = Some(r);
                }
                (IpAddr::V6(l), IpAddr::V6(r)) => {
                    a.ip6_saddr = Some(l);
                    a.ip6_daddr = Some(r);
                }
                _ => unreachable!("families checked above"),
            }
            if t.encap == EncapKw::Udp {
                let line_of_table = t.tunnel_id.span();
                let sport = t.udp_sport.as_ref().ok_or_else(|| {
                    err(
                        line_of_table.clone(),
                        "udp_sport",
                        "required for encap udp".into(),
                    )
                })?;
                let dport = t.udp_dport.as_ref().ok_or_else(|| {
                    err(
                        line_of_table.clone(),
                        "udp_dport",
                        "required for encap udp".into(),
                    )
                })?;
                if *sport.get_ref() == 0 {
                    return Err(err(sport.span(), "udp_sport", "must not be 0".into()));
                }
                if *dport.get_ref() == 0 {
                    return Err(err(dport.span(), "udp_dport", "must not be 0".into()));
                }
                a.udp_sport = Some(*sport.get_ref());
                a.udp_dport = Some(*dport.get_ref());
                if t.udp_csum {
                    a.udp_csum = Some(1);
                }
                if t.udp6_csum_tx == Some(false) {
                    a.udp_zero_csum6_tx = Some(true);
                }
                if t.udp6_csum_rx == Some(false) {
                    a.udp_zero_csum6_rx = Some(true);
                }
            }
            out.push(StaticObject {
                attrs: a,
                is_session: false,
                line: line_of(text, t.tunnel_id.span().start),
            });
            for s in &t.session {
                let line = line_of(text, s.span().start);
                let s = s.get_ref();
                let attrs = session_attrs(tid, s, &err)?;
                let sid = *s.session_id.get_ref();
                if let Some(first) = session_lines.insert((tid, sid), line) {
                    return Err(err(
                        s.session_id.span(),
                        "session_id",
                        format!(
                            "session {sid} is declared twice in tunnel {tid} (first at line {first})"
                        ),
                    ));
                }
                if version == 2 {
                    if attrs.pw_type != Some(pw_type::PPP) {
                        let span = s.pw_type.as_ref().map_or(s.session_id.span(), |p| p.span());
                        return Err(err(
                            span,
                            "pw_type",
                            "an L2TPv2 tunnel carries PPP sessions only (pw_type = \"ppp\")".into(),
                        ));
                    }
                    for (key, v) in [
                        ("session_id", &s.session_id),
                        ("peer_session_id", &s.peer_session_id),
                    ] {
                        if *v.get_ref() > 0xffff {
                            return Err(err(
                                v.span(),
                                key,
                                "L2TPv2 session ids are 1 to 65535".into(),
                            ));
                        }
                    }
                } else {
                    let ip = t.encap == EncapKw::Ip;
                    if let Some((other_ip, first)) = v3_sessions.get(&sid) {
                        if ip || *other_ip {
                            return Err(err(
                                s.session_id.span(),
                                "session_id",
                                format!("session {sid} is also declared at line {first}; with encap ip, L2TPv3 session ids are unique across tunnels"),
                            ));
                        }
                    }
                    v3_sessions.insert(sid, (ip, line));
                }
                if let Some(n) = &s.name {
                    if let Some(first) = names.insert(n.get_ref().clone(), line) {
                        return Err(err(
                            n.span(),
                            "name",
                            format!(
                                "interface {:?} is also declared at line {first}",
                                n.get_ref()
                            ),
                        ));
                    }
                }
                out.push(StaticObject {
                    attrs,
                    is_session: true,
                    line,
                });
            }
        }
        Ok(out)
    }
}

fn session_attrs(
    tid: u32,
    s: &SessionConfig,
    err: &dyn Fn(Range<usize>, &str, String) -> ConfigError,
) -> Result<Attrs, ConfigError> {
    if *s.session_id.get_ref() == 0 {
        return Err(err(
            s.session_id.span(),
            "session_id",
            "must be between 1 and 4294967295".into(),
        ));
    }
    if *s.peer_session_id.get_ref() == 0 {
        return Err(err(
            s.peer_session_id.span(),
            "peer_session_id",
            "must be between 1 and 4294967295".into(),
        ));
    }
    let mut a = Attrs {
        conn_id: Some(tid),
        session_id: Some(*s.session_id.get_ref()),
        peer_session_id: Some(*s.peer_session_id.get_ref()),
        pw_type: Some(pw_type::ETH),
        l2spec_type: Some(l2spec_type::DEFAULT),
        ..Attrs::default()
    };
    if let Some(n) = &s.name {
        let name = n.get_ref();
        if name.is_empty()
            || name.len() >= 16
            || name.contains(['/', ' ', '\t', '\n'])
            || name == "."
            || name == ".."
        {
            return Err(err(
                n.span(),
                "name",
                format!("{name:?} is not a valid interface name"),
            ));
        }
        a.ifname = Some(name.clone());
    }
    for (key, v, slot) in [
        ("cookie", &s.cookie, &mut a.cookie),
        ("peer_cookie", &s.peer_cookie, &mut a.peer_cookie),
    ] {
        if let Some(c) = v {
            let hex = c.get_ref();
            if !(hex.len() == 8 || hex.len() == 16) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(err(c.span(), key, "must be 8 or 16 hex digits".into()));
            }
            *slot = Some(hex.to_ascii_lowercase());
        }
    }
    if let Some(seq) = &s.seq {
        let (send, recv) = match seq.get_ref().as_str() {
            "none" => (false, false),
            "send" => (true, false),
            "recv" => (false, true),
            "both" => (true, true),
            other => {
                return Err(err(
                    seq.span(),
                    "seq",
                    format!("{other:?} is not one of none, send, recv, both"),
                ))
            }
        };
        if send {
            a.send_seq = Some(1);
        }
        if recv {
            a.recv_seq = Some(1);
        }
    }
    if let Some(l) = &s.l2spec_type {
        a.l2spec_type = Some(match l.get_ref().as_str() {
            "none" => l2spec_type::NONE,
            "default" => l2spec_type::DEFAULT,
            other => {
                return Err(err(
                    l.span(),
                    "l2spec_type",
                    format!("{other:?} is not one of none, default"),
                ))
            }
        });
    }
    if let Some(p) = &s.pw_type {
        a.pw_type = Some(match p.get_ref().as_str() {
            "eth" => pw_type::ETH,
            "eth_vlan" => pw_type::ETH_VLAN,
            "ppp" => pw_type::PPP,
            other => {
                return Err(err(
                    p.span(),
                    "pw_type",
                    format!("{other:?} is not one of eth, eth_vlan, ppp"),
                ))
            }
        });
    }
    if let Some(v) = &s.vlan_id {
        if *v.get_ref() == 0 || *v.get_ref() > 4094 {
            return Err(err(
                v.span(),
                "vlan_id",
                "must be between 1 and 4094".into(),
            ));
        }
        a.vlan_id = Some(*v.get_ref());
    }
    if a.pw_type == Some(pw_type::ETH_VLAN) && a.vlan_id.is_none() {
        return Err(err(
            s.session_id.span(),
            "vlan_id",
            "required for pw_type eth_vlan".into(),
        ));
    }
    if s.lns_mode {
        a.lns_mode = Some(1);
    }
    if s.reorder_timeout > 0 {
        a.recv_timeout = Some(s.reorder_timeout);
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(text: &str) -> Result<Vec<StaticObject>, ConfigError> {
        let p = Path::new("test.toml");
        Config::parse(p, text)?.static_objects(p, text)
    }

    #[test]
    fn empty_file_is_valid() {
        assert!(objects("").unwrap().is_empty());
    }

    #[test]
    fn tunnel_and_session() {
        let text = r#"
[[tunnel]]
tunnel_id = 3000
peer_tunnel_id = 4000
local = "192.0.2.1"
remote = "192.0.2.2"
udp_sport = 5000
udp_dport = 6000

[[tunnel.session]]
session_id = 1000
peer_session_id = 2000
cookie = "0011223344556677"
seq = "both"
"#;
        let o = objects(text).unwrap();
        assert_eq!(o.len(), 2);
        assert_eq!(o[0].line, 3);
        assert_eq!(o[0].attrs.udp_dport, Some(6000));
        assert_eq!(o[0].attrs.encap_type, Some(encap_type::UDP));
        assert!(o[1].is_session);
        assert_eq!(o[1].attrs.cookie.as_deref(), Some("0011223344556677"));
        assert_eq!(
            (o[1].attrs.send_seq, o[1].attrs.recv_seq),
            (Some(1), Some(1))
        );
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let text = "[[tunnel]]\ntunnel_id = 1\npeer_tunnel_id = 2\nbogus = 3\n";
        let e = objects(text).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("bogus"));
        assert_eq!(e.line, Some(4));
        let s = e.to_string();
        assert!(s.starts_with("test.toml:4: key `bogus`"), "{s}");
    }

    #[test]
    fn bad_value_names_line_and_key() {
        let text = "[[tunnel]]\ntunnel_id = 1\npeer_tunnel_id = 2\nencap = \"ip\"\nlocal = \"10.0.0.1\"\nremote = \"10.0.0.2\"\n[[tunnel.session]]\nsession_id = 5\npeer_session_id = 6\ncookie = \"xyz\"\n";
        let e = objects(text).unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(10), Some("cookie")));
    }

    #[test]
    fn missing_port_for_udp() {
        let text = "[[tunnel]]\ntunnel_id = 1\npeer_tunnel_id = 2\nlocal = \"10.0.0.1\"\nremote = \"10.0.0.2\"\n";
        let e = objects(text).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("udp_sport"));
    }

    #[test]
    fn wrong_type_and_bad_address() {
        let e = objects("[[tunnel]]\ntunnel_id = \"x\"\n").unwrap_err();
        assert_eq!(e.line, Some(2));
        let e = objects("[[tunnel]]\ntunnel_id = 1\npeer_tunnel_id = 2\nlocal = \"not-an-ip\"\n")
            .unwrap_err();
        assert_eq!(e.line, Some(4));
    }

    #[test]
    fn control_section() {
        let p = Path::new("c.toml");
        let c = Config::parse(
            p,
            "[control]\nlisten = \"127.0.0.1:1702\"\nsecret = \"s\"\n",
        )
        .unwrap();
        let s = c.control.unwrap().settings();
        assert_eq!(s.listen, "127.0.0.1:1702".parse().unwrap());
        assert_eq!(s.config.secret.as_deref(), Some(&b"s"[..]));
        assert!(
            s.config.send_challenge,
            "a secret authenticates the peer by default"
        );
        let c = Config::parse(p, "[control]\nsecret = \"s\"\nchallenge = false\n").unwrap();
        assert!(!c.control.unwrap().settings().config.send_challenge);
        let e = Config::parse(p, "[control]\nlisten = \"nowhere\"\n").unwrap_err();
        assert_eq!(e.line, Some(2));
    }

    /// Every TOML example of docs/config.md and docs/ppp.md (the remote-access LNS, the ISP
    /// LNS behind LACs, the LAC dialing an LNS, the site-to-site pseudowire, ...) passes the
    /// configuration check, so the manual never shows a file the daemon refuses.
    #[test]
    fn documented_examples_pass_the_check() {
        let docs = [
            ("docs/config.md", include_str!("../../../docs/config.md")),
            ("docs/ppp.md", include_str!("../../../docs/ppp.md")),
        ];
        // The files the examples name (/etc/ul2tp/...) are a private stand-in here,
        let file = std::env::temp_dir().join(format!("ul2tpd-doc-{}.secret", std::process::id()));
        std::fs::write(&file, "a secret\n").unwrap();
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let mut n = 0;
        for (doc, text) in docs {
            let mut lines = text.lines().enumerate();
            while let Some((i, l)) = lines.next() {
                if l.trim() != "```toml" {
                    continue;
                }
                let block: Vec<String> = lines
                    .by_ref()
                    .map(|(_, l)| l)
                    .take_while(|l| l.trim() != "```")
                    .map(|l| match l.split_once('=') {
                        Some((k, _)) if k.trim().ends_with("_file") => {
                            format!("{k}= {:?}", file.display().to_string())
                        }
                        // and the groups they name are one that exists.
                        Some((k, _)) if k.trim().ends_with("group") => format!("{k}= \"root\""),
                        _ => l.to_string(),
                    })
                    .collect();
                // One block may show two daemons' files, each with its [control].
                let mut files = vec![String::new()];
                for l in block {
                    let last = files.last_mut().expect("one");
                    if l.trim() == "[control]" && last.contains("[control]") {
                        files.push(String::new());
                    }
                    let last = files.last_mut().expect("one");
                    last.push_str(&l);
                    last.push('\n');
                }
                for mut file in files {
                    // A profile shown alone belongs under a [control] section.
                    if !file.contains("[control]") && file.contains("[[l") {
                        file.insert_str(0, "[control]\n");
                    }
                    if let Err(e) = Config::check(Path::new(doc), &file) {
                        panic!("{doc}:{}: the example is refused: {e}\n{file}", i + 1);
                    }
                    n += 1;
                }
            }
        }
        let _ = std::fs::remove_file(&file);
        assert!(n >= 10, "only {n} examples found");
    }

    fn check_err(text: &str) -> ConfigError {
        Config::check(Path::new("t.toml"), text).unwrap_err()
    }

    #[test]
    fn control_listeners_one_per_transport_and_family() {
        let ok = Config::check(
            Path::new("t.toml"),
            "[control]\nlisten = \"192.0.2.1:1701\"\nlisten_udp = [\"[2001:db8::1]:1701\"]\nlisten_ip = [\"192.0.2.1\", \"::\"]\n",
        )
        .unwrap();
        let s = ok.config.control.unwrap().settings();
        assert_eq!(s.listen_udp, vec!["[2001:db8::1]:1701".parse().unwrap()]);
        assert_eq!(
            s.listen_ip,
            vec![
                "192.0.2.1".parse::<IpAddr>().unwrap(),
                "::".parse::<IpAddr>().unwrap()
            ]
        );
        let e = check_err("[control]\nlisten_udp = [\"127.0.0.1:1702\"]\n");
        assert_eq!(
            e.to_string(),
            "t.toml:2: [control] listen_udp: 127.0.0.1:1702: a second UDP listener for IPv4 (one per address family, counting listen)"
        );
        let e = check_err("[control]\n\nlisten_ip = [\"::1\", \"::\"]\n");
        assert_eq!(
            e.to_string(),
            "t.toml:3: [control] listen_ip: ::: a second L2TPv3/IP listener for IPv6 (one per address family)"
        );
    }

    #[test]
    fn api_limits_have_defaults_and_are_checked() {
        let l = ApiConfig::default().limits();
        assert_eq!(
            (l.max_connections, l.max_per_uid, l.idle_timeout),
            (256, 16, std::time::Duration::from_secs(60))
        );
        let c = Config::check(
            Path::new("t.toml"),
            "[api]\nmax_connections = 8\nmax_connections_per_uid = 3\nidle_timeout = 0.5\n",
        )
        .unwrap();
        let l = c.config.api.limits();
        assert_eq!(
            (l.max_connections, l.max_per_uid, l.idle_timeout),
            (8, 3, std::time::Duration::from_millis(500))
        );
        let e = check_err("[api]\nmax_connections_per_uid = 0\n");
        assert_eq!(
            e.to_string(),
            "t.toml:2: [api] max_connections_per_uid: must be at least 1"
        );
        let e = check_err("[api]\n\nidle_timeout = -1\n");
        assert_eq!(e.line, Some(3));
    }

    #[test]
    fn lns_profiles_name_file_line_and_key() {
        let base = "[control]\nsecret = \"s\"\n";
        let e = check_err(&format!(
            "{base}[[lns]]\nname = \"a\"\npeers = [\"10.0.0.0/8\"]\n\n[[lns]]\nname = \"b\"\npeers = [\"10.0.0.0/40\"]\n"
        ));
        assert_eq!((e.line, e.key.as_deref()), (Some(9), Some("peers")), "{e}");
        assert!(
            e.to_string()
                .starts_with("t.toml:9: [[lns]] peers: profile \"b\": "),
            "{e}"
        );
        assert!(e.to_string().contains("prefix length above 32"), "{e}");
        let e = check_err(&format!(
            "{base}[[lns]]\nname = \"a\"\nppp_local = \"10.0.0.1\"\n"
        ));
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(5), Some("ppp_local")),
            "{e}"
        );
        let e = check_err(&format!(
            "{base}[[lns]]\nname = \"a\"\nppp_local = \"10.0.0.1\"\n[[lns.pool]]\nname = \"p\"\nranges = [\"10.0.0.9-10.0.0.2\"]\n"
        ));
        assert_eq!((e.line, e.key.as_deref()), (Some(8), Some("ranges")), "{e}");
        let e = check_err(&format!(
            "{base}[[lns]]\nname = \"a\"\n[[lns]]\nname = \"a\"\n"
        ));
        assert_eq!((e.line, e.key.as_deref()), (Some(6), Some("name")), "{e}");
        let e = check_err(&format!("{base}[[lns]]\nname = \"a\"\nmax_sessions = 0\n"));
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(5), Some("max_sessions")),
            "{e}"
        );
        let e = check_err(&format!(
            "{base}[[lns]]\nname = \"a\"\nppp_dns = [\"1.1.1.1\", \"1.0.0.1\", \"8.8.8.8\"]\n"
        ));
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(5), Some("ppp_dns")),
            "{e}"
        );
        let e = check_err(&format!("{base}[[lns]]\nname = \"a\"\nsecrett = \"x\"\n"));
        assert_eq!(e.line, Some(5), "{e}");
        assert!(e.to_string().contains("secrett"), "{e}");
        let e = check_err("[[lns]]\nname = \"a\"\n");
        assert_eq!((e.line, e.key.as_deref()), (Some(1), Some("lns")), "{e}");
        let e = check_err("[control]\n[[lns]]\nname = \"a\"\nhide_avps = true\n");
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(4), Some("hide_avps")),
            "{e}"
        );
        // The flat [control] keys are the default profile, checked the same way.
        let e = check_err("[control]\n\nmax_sessions = 0\n");
        assert_eq!(
            e.to_string(),
            "t.toml:3: [control] max_sessions: must be at least 1 (leave it out for no limit)"
        );
        let e = check_err("[control]\nppp_nbns = [\"1.1.1.1\", \"1.0.0.1\", \"8.8.8.8\"]\n");
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(2), Some("ppp_nbns")),
            "{e}"
        );
        let flat = Config::check(
            Path::new("t.toml"),
            "[control]\nmax_tunnels = 3\nmax_sessions = 9\nreceive_window = 16\nppp_local = \"10.0.0.1\"\nppp_pool = \"10.0.0.2-10.0.0.3\"\nppp_dns = [\"192.0.2.53\"]\nppp_mtu = 1400\nppp_idle_timeout = 600\n",
        )
        .unwrap();
        let d = flat.config.control_settings().unwrap().profiles.default;
        assert_eq!(
            (
                d.config.max_tunnels_per_peer,
                d.config.max_sessions,
                d.config.rx_window
            ),
            (3, 9, 16)
        );
        let ppp = d.ppp.as_ref().unwrap();
        assert_eq!(
            (ppp.dns[0], ppp.mtu),
            (Some("192.0.2.53".parse().unwrap()), Some(1400))
        );
        assert_eq!(ppp.idle_timeout, Some(std::time::Duration::from_secs(600)));
        // A good file: profiles in file order on the [control] base, with their pools.
        let ok = Config::check(
            Path::new("t.toml"),
            &format!("{base}host_name = \"lns\"\n[[lns]]\nname = \"a\"\npeers = [\"192.0.2.0/24\"]\nsecret = \"t\"\nmax_tunnels = 2\nppp_local = \"10.0.0.1\"\nppp_dns = [\"192.0.2.53\"]\n[[lns.pool]]\nname = \"one\"\nranges = [\"10.0.1.0/30\", \"10.0.2.5-10.0.2.6\"]\n[[lns]]\nname = \"b\"\nhost_name = \"lns-b\"\n"),
        )
        .unwrap();
        let s = ok.config.control_settings().unwrap();
        let names: Vec<&str> = s.profiles.list.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        let a = &s.profiles.list[0];
        assert_eq!(a.config.secret.as_deref(), Some(&b"t"[..]));
        assert_eq!(a.config.host_name, "lns");
        assert_eq!(a.config.max_tunnels_per_peer, 2);
        let ppp = a.ppp.as_ref().unwrap();
        assert_eq!(ppp.pools[0].size(), 4);
        assert_eq!(ppp.dns[0], Some("192.0.2.53".parse().unwrap()));
        assert_eq!(s.profiles.list[1].config.secret.as_deref(), Some(&b"s"[..]));
        assert_eq!(
            s.profiles.list[1].config.host_name, "lns-b",
            "its own host_name"
        );
        let ip = |x: &str| x.parse().unwrap();
        assert_eq!(s.profiles.select(ip("192.0.2.9"), "x").unwrap().name, "a");
        assert_eq!(
            s.profiles.select(ip("198.51.100.1"), "x").unwrap().name,
            "b"
        );
    }

    #[test]
    fn datapath_keys() {
        let c = Config::check(Path::new("t.toml"), "").unwrap();
        assert_eq!(
            c.config.datapath.runtime(false),
            crate::DataPathConfig::default()
        );
        assert!(
            !c.config.datapath.runtime(true).offload,
            "--no-offload wins"
        );
        let c = Config::check(
            Path::new("t.toml"),
            "[datapath]\noffload = false\nsocket_receive_buffer = 0\nworkers = 3\n",
        )
        .unwrap();
        let d = &c.config.datapath;
        assert_eq!(
            (
                d.runtime(false).offload,
                d.runtime(false).socket_rcvbuf,
                d.workers,
                d.runtime(false).workers
            ),
            (false, 0, Some(3), 3)
        );
        let e = check_err("[datapath]\n\nworkers = 0\n");
        assert_eq!(
            e.to_string(),
            "t.toml:3: [datapath] workers: must be at least 1"
        );
    }

    #[test]
    fn ppp_ipv6_pool_is_checked() {
        let base = "[control]\nppp_local = \"10.0.0.1\"\nppp_pool = \"10.0.0.2-10.0.0.9\"\n";
        let e = check_err(&format!("{base}ppp_ipv6_pool = \"2001:db8::1/48\"\n"));
        assert_eq!((e.line, e.key.as_deref()), (Some(4), Some("ppp_ipv6_pool")));
        assert!(e.to_string().contains("bits set past /48"), "{e}");
        // Alone: an IPv6-only PPP service; with an IPv4 pool but no ppp_local, refused.
        assert!(Config::check(
            Path::new("t.toml"),
            "[control]\nppp_ipv6_pool = \"2001:db8::/48\"\n"
        )
        .is_ok());
        let e = check_err(
            "[control]\nppp_pool = \"10.0.0.2-10.0.0.9\"\nppp_ipv6_pool = \"2001:db8::/48\"\n",
        );
        assert_eq!((e.line, e.key.as_deref()), (Some(3), Some("ppp_ipv6_pool")));
        let ok = Config::check(
            Path::new("t.toml"),
            &format!(
                "{base}ppp_ipv6_pool = \"2001:db8:100::/48\"\nppp_ipv6_default_route = true\n"
            ),
        )
        .unwrap();
        let s = ok.config.control.unwrap().settings();
        assert!(s.ppp_ipv6_client.default_route);
        let e = check_err(&format!(
            "{base}ppp_ipv6_pool = \"2001:db8:100::/48\"\nppp_ipv6_pd_pool = \"2001:db8:f00::/56\"\n"
        ));
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(5), Some("ppp_ipv6_pd_pool"))
        );
        let e = check_err(&format!("{base}ppp_ipv6_pd_length = 60\n"));
        assert_eq!(e.key.as_deref(), Some("ppp_ipv6_pd_length"));
        let ok = Config::check(
            Path::new("t.toml"),
            &format!("{base}ppp_ipv6_pool = \"2001:db8:100::/48\"\nppp_ipv6_pd_pool = \"2001:db8:f00::/40\"\nppp_ipv6_pd_length = 60\n"),
        )
        .unwrap();
        let pd = ok
            .config
            .control
            .unwrap()
            .settings()
            .profiles
            .default
            .ppp
            .clone();
        let pd = pd.unwrap().ipv6.pd.unwrap();
        assert_eq!(pd.shared.lock().unwrap().unit(), 60);
        let e = check_err(&format!("{base}ppp_ipv6_dns = [\"2001:db8::53\"]\n"));
        assert_eq!((e.line, e.key.as_deref()), (Some(4), Some("ppp_ipv6_dns")));
        let e = check_err(&format!(
            "{base}ppp_ipv6_pool = \"2001:db8:100::/48\"\nppp_ipv6_dns = [\"ff02::1\"]\n"
        ));
        assert_eq!(e.key.as_deref(), Some("ppp_ipv6_dns"));
        let pool = s.profiles.default.ppp.clone().unwrap().ipv6.pool.unwrap();
        assert_eq!(pool.shared.lock().unwrap().size(), 65536);
    }

    /// `[[lns]]` profiles with their own IPv6 pools: checked with file, line and key; the
    /// same pool in two profiles is one object (its leases shared), overlapping ones are
    /// refused; a reload's profiles take over the leases of the running ones.
    #[test]
    fn per_profile_ipv6_pools() {
        let head = "[control]\n";
        let ppp = "ppp_local = \"10.0.0.1\"\nppp_pool = \"10.0.0.2-10.0.0.9\"\n";
        // A profile's pool needs the profile's PPP service only ([control] has none).
        let text = format!(
            "{head}[[lns]]\nname = \"a\"\npeers = [\"192.0.2.0/24\"]\n{ppp}ppp_ipv6_pool = \"2001:db8:a::/48\"\nppp_ipv6_dns = [\"2001:db8::53\"]\nppp_ipv6_pd_pool = \"2001:db8:a0::/44\"\nppp_ipv6_pd_length = 60\n[[lns]]\nname = \"b\"\n{ppp}ppp_ipv6_pool = \"2001:db8:b::/48\"\n[[lns]]\nname = \"c\"\n{ppp}ppp_ipv6_pool = \"2001:db8:b::/48\"\n[[lns]]\nname = \"d\"\n{ppp}"
        );
        let ok = Config::check(Path::new("t.toml"), &text).unwrap();
        let s = ok.config.control_settings().unwrap();
        let v6 = |i: usize| s.profiles.list[i].ppp.clone().unwrap().ipv6;
        let (a, b, c, d) = (v6(0), v6(1), v6(2), v6(3));
        let pool = |v: &crate::profile::Ipv6Service| v.pool.clone().unwrap();
        assert_eq!(pool(&a).shared.lock().unwrap().size(), 65536);
        assert_eq!(
            a.dns,
            ["2001:db8::53".parse::<std::net::Ipv6Addr>().unwrap()]
        );
        assert_eq!(a.pd.clone().unwrap().shared.lock().unwrap().unit(), 60);
        assert!(!std::sync::Arc::ptr_eq(&pool(&a).shared, &pool(&b).shared));
        assert!(
            std::sync::Arc::ptr_eq(&pool(&b).shared, &pool(&c).shared),
            "one pool declared twice is one set of leases"
        );
        assert!(
            d.pool.is_none() && d.pd.is_none(),
            "no IPv6 pool: link-local only"
        );
        assert!(s.profiles.default.ppp.is_none());
        // Leases carry over to the profiles of a reload that declare the same pools.
        let leased = pool(&b).shared.lock().unwrap().allocate().unwrap();
        let mut again = ok.config.control_settings().unwrap().profiles;
        let fresh = again.list[1].ppp.clone().unwrap().ipv6.pool.unwrap();
        assert!(!std::sync::Arc::ptr_eq(&fresh.shared, &pool(&b).shared));
        assert!(again.adopt_pools(&s.profiles.list).is_empty());
        let adopted = again.list[1].ppp.clone().unwrap().ipv6.pool.unwrap();
        assert!(std::sync::Arc::ptr_eq(&adopted.shared, &pool(&b).shared));
        assert_eq!(adopted.shared.lock().unwrap().in_use(), 1);
        assert_ne!(adopted.shared.lock().unwrap().allocate(), Some(leased));
        // A /64 pool without ppp_local nor IPv4 pools: an IPv6-only service (with
        // authentication); with an IPv4 pool but no ppp_local, refused at the line and key.
        let text = format!(
            "{head}[[lns]]\nname = \"a\"\nppp_ipv6_pool = \"2001:db8:a::/48\"\nppp_auth = \"pap\"\nppp_users = {{ u = \"p\" }}\n"
        );
        let ok = Config::check(Path::new("t.toml"), &text).unwrap();
        let v6_only = ok.config.control_settings().unwrap().profiles.list[0]
            .ppp
            .clone()
            .unwrap();
        assert!(v6_only.ipv6_only() && v6_only.ipv6.pool.is_some());
        assert!(!s.profiles.list[0].ppp.clone().unwrap().ipv6_only());
        let e = check_err(&format!(
            "{head}[[lns]]\nname = \"a\"\nppp_pool = \"10.0.0.2-10.0.0.9\"\nppp_ipv6_pool = \"2001:db8:a::/48\"\n"
        ));
        assert_eq!((e.line, e.key.as_deref()), (Some(5), Some("ppp_ipv6_pool")));
        assert!(e.to_string().contains("needs ppp_local"), "{e}");
        let e = check_err(&format!(
            "{head}[[lns]]\nname = \"a\"\n{ppp}ppp_ipv6_pool = \"2001:db8:a::1/48\"\n"
        ));
        assert_eq!((e.line, e.key.as_deref()), (Some(6), Some("ppp_ipv6_pool")));
        let e = check_err(&format!(
            "{head}[[lns]]\nname = \"a\"\n{ppp}ppp_ipv6_dns = [\"2001:db8::53\"]\n"
        ));
        assert_eq!((e.line, e.key.as_deref()), (Some(6), Some("ppp_ipv6_dns")));
        let e = check_err(&format!(
            "{head}[[lns]]\nname = \"a\"\n{ppp}ppp_ipv6_pool = \"2001:db8:a::/48\"\nppp_ipv6_pd_pool = \"2001:db8::/40\"\n"
        ));
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(7), Some("ppp_ipv6_pd_pool"))
        );
        assert!(e.to_string().contains("overlaps"), "{e}");
        let e = check_err(&format!(
            "{head}[[lns]]\nname = \"a\"\n{ppp}ppp_ipv6_pd_length = 60\n"
        ));
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(6), Some("ppp_ipv6_pd_length"))
        );
        let e = check_err(&format!(
            "{head}[[lns]]\nname = \"a\"\n{ppp}ppp_ipv6_pool = \"2001:db8:a::/48\"\n[[lns]]\nname = \"b\"\n{ppp}ppp_ipv6_pool = \"2001:db8:a:100::/56\"\n"
        ));
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(11), Some("ppp_ipv6_pool"))
        );
        assert!(
            e.to_string()
                .contains("overlaps 2001:db8:a::/48 of profile \"a\""),
            "{e}"
        );
        // [control]'s keys stay the default profile's.
        let e = check_err("[control]\nppp_ipv6_dns = [\"2001:db8::53\"]\n");
        assert_eq!((e.line, e.key.as_deref()), (Some(2), Some("ppp_ipv6_dns")));
    }

    /// `ppp_auth` without `ppp_users` needs `[radius]`, in `[control]` and in `[[lns]]`; with
    /// it the PPP service is there (the default profile's too).
    #[test]
    fn ppp_auth_without_users_needs_radius() {
        let ppp =
            "ppp_local = \"10.0.0.1\"\nppp_pool = \"10.0.0.2-10.0.0.9\"\nppp_auth = \"pap\"\n";
        let radius = "[radius]\nserver = \"192.0.2.1\"\nsecret = \"s\"\n";
        let e = check_err(&format!("[control]\n[[lns]]\nname = \"a\"\n{ppp}"));
        assert_eq!((e.line, e.key.as_deref()), (Some(6), Some("ppp_auth")));
        assert!(e.to_string().contains("profile \"a\""), "{e}");
        let e = check_err(&format!("[control]\n{ppp}"));
        assert_eq!((e.line, e.key.as_deref()), (Some(4), Some("ppp_auth")));
        let ok = Config::check(Path::new("t.toml"), &format!("[control]\n{ppp}{radius}")).unwrap();
        let s = ok.config.control_settings().unwrap();
        assert!(s.profiles.default.ppp.is_some(), "RADIUS checks the logins");
    }

    #[test]
    fn control_checks_name_line_and_key() {
        let e =
            check_err("[control]\nppp_local = \"10.0.0.1\"\nppp_pool = \"10.0.0.9-10.0.0.1\"\n");
        assert_eq!(
            e.to_string(),
            "t.toml:3: [control] ppp_pool: first address 10.0.0.9 is after last 10.0.0.1"
        );
        let e = check_err("[control]\nppp_pool = \"10.0.0.1-10.0.0.9\"\n");
        assert_eq!((e.line, e.key.as_deref()), (Some(2), Some("ppp_pool")));
        let e = check_err(
            "[control]\n\nppp_local = \"10.0.0.1\"\nppp_pool = \"10.0.0.2 to 10.0.0.9\"\n",
        );
        assert_eq!((e.line, e.key.as_deref()), (Some(4), Some("ppp_pool")));
        let e = check_err("[control]\nppp_auth = \"chap\"\n");
        assert_eq!((e.line, e.key.as_deref()), (Some(2), Some("ppp_auth")));
        let e = check_err("[control]\nppp_local = \"10.0.0.1\"\nppp_pool = \"10.0.0.2-10.0.0.9\"\nppp_auth = \"md5\"\nppp_users = { a = \"b\" }\n");
        assert!(
            e.to_string()
                .starts_with("t.toml:4: [control] ppp_auth: \"md5\""),
            "{e}"
        );
        let ok = Config::check(
            Path::new("t.toml"),
            "[control]\nppp_local = \"10.0.0.1\"\nppp_pool = \"10.0.0.2-10.0.0.9\"\nppp_auth = \"chap\"\nppp_users = { a = \"b\" }\n",
        )
        .unwrap();
        assert!(ok
            .config
            .control
            .unwrap()
            .settings()
            .profiles
            .default
            .ppp
            .is_some());
    }

    #[test]
    fn radius_checks_name_line_and_key() {
        let lns = "[control]\nppp_local = \"10.0.0.1\"\nppp_pool = \"10.0.0.2-10.0.0.9\"\nppp_auth = \"pap\"\n";
        let ok = Config::check(
            Path::new("t.toml"),
            &format!("{lns}[radius]\nserver = \"192.0.2.1\"\nsecret = \"s\"\n"),
        );
        assert!(
            ok.is_ok(),
            "ppp_auth without ppp_users is fine with [radius]: {ok:?}"
        );
        // The same for an [[lns]] profile; without [radius] it names the profile's key.
        let prof = "[control]\n[[lns]]\nname = \"p\"\nppp_local = \"10.0.0.1\"\n\
                    ppp_pool = \"10.0.0.2-10.0.0.9\"\nppp_auth = \"pap\"\n";
        let ok = Config::check(
            Path::new("t.toml"),
            &format!("{prof}[radius]\nserver = \"192.0.2.1\"\nsecret = \"s\"\n"),
        );
        assert!(ok.is_ok(), "{ok:?}");
        let e = check_err(prof);
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(6), Some("ppp_auth")),
            "{e}"
        );
        assert!(
            e.message.contains("needs ppp_users or a [radius] table"),
            "{e}"
        );
        let e = check_err(&format!(
            "{lns}[radius]\nserver = \"192.0.2.1\"\n\ntimeout = 99\nsecret = \"s\"\n"
        ));
        assert_eq!(
            e.to_string(),
            "t.toml:8: [radius] timeout: must be a number of seconds in (0, 60]"
        );
        let e = check_err("[radius]\nserver = \"192.0.2.1\"\nsecret = \"s\"\n");
        assert_eq!((e.line, e.key.as_deref()), (Some(2), Some("server")));
        // An LNS that does not authenticate has nothing for RADIUS to check.
        let no_auth = lns.replace("ppp_auth = \"pap\"\n", "");
        let e = check_err(&format!(
            "{no_auth}[radius]\nserver = \"192.0.2.1\"\nsecret = \"s\"\n"
        ));
        assert_eq!(e.key.as_deref(), Some("server"), "{e}");
        let e = check_err(&format!(
            "{lns}[radius]\nserver = \"192.0.2.1\"\nsecret = \"s\"\nfoo = 1\n"
        ));
        assert_eq!(e.line, Some(8), "{e}");
    }

    #[test]
    fn control_flood_limits() {
        let e = check_err("[control]\nmax_half_open = 0\n");
        assert_eq!((e.line, e.key.as_deref()), (Some(2), Some("max_half_open")));
        let e = check_err("[control]\nmax_half_open = 4\nmax_half_open_per_peer = 5\n");
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(3), Some("max_half_open_per_peer"))
        );
        let e = check_err("[control]\nnew_tunnels_burst_per_peer = 0\n");
        assert_eq!(e.key.as_deref(), Some("new_tunnels_burst_per_peer"));
        let e = check_err("[control]\n\nreceive_window = 0\n");
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(3), Some("receive_window"))
        );
        let e = check_err("[control]\nreceive_window = 5000\n");
        assert_eq!(e.key.as_deref(), Some("receive_window"));
        let e = check_err("[control]\nstop_hold = 0\n");
        assert_eq!(e.key.as_deref(), Some("stop_hold"));
        let e = check_err("[control]\nretransmit_cap = 7\n");
        assert_eq!(e.key.as_deref(), Some("retransmit_cap"));
        let c = Config::check(
            Path::new("t.toml"),
            "[control]\nreceive_window = 64\nstop_hold = 3\nretransmit_cap = 8\n",
        )
        .unwrap()
        .config
        .control
        .unwrap()
        .settings()
        .config;
        assert_eq!(
            (c.rx_window, c.stop_hold, c.retransmit_cap),
            (
                64,
                std::time::Duration::from_secs(3),
                std::time::Duration::from_secs(8)
            )
        );
        let ok = Config::check(
            Path::new("t.toml"),
            "[control]\nmax_half_open = 50\nmax_half_open_per_peer = 2\nnew_tunnels_per_second_per_peer = 0\nnew_tunnels_burst_per_peer = 3\nmax_retries_half_open = 1\n",
        )
        .unwrap();
        let c = ok.config.control.unwrap().settings().config;
        assert_eq!(
            (
                c.max_half_open,
                c.max_half_open_per_peer,
                c.new_tunnels_per_second_per_peer,
                c.new_tunnels_burst_per_peer,
                c.max_retries_half_open
            ),
            (50, 2, 0, 3, 1)
        );
        let d = Config::check(Path::new("t.toml"), "[control]\n")
            .unwrap()
            .config
            .control
            .unwrap()
            .settings()
            .config;
        assert_eq!((d.max_half_open, d.max_half_open_per_peer), (1000, 8));
    }

    #[test]
    fn duplicates_and_version_2_rules() {
        let t = |tid: u32, v: u8| {
            format!("[[tunnel]]\ntunnel_id = {tid}\npeer_tunnel_id = 2\nversion = {v}\nlocal = \"10.0.0.1\"\nremote = \"10.0.0.2\"\nudp_sport = 1\nudp_dport = 2\n")
        };
        let sess = |sid: u32, extra: &str| {
            format!("[[tunnel.session]]\nsession_id = {sid}\npeer_session_id = 5\n{extra}")
        };
        let e = check_err(&(t(1, 3) + &sess(5, "") + &sess(5, "")));
        assert_eq!((e.line, e.key.as_deref()), (Some(13), Some("session_id")));
        let e = check_err(&(t(1, 3) + &sess(5, "name = \"x\"\n") + &sess(6, "name = \"x\"\n")));
        assert_eq!((e.line, e.key.as_deref()), (Some(16), Some("name")));
        let e = check_err(&(t(70000, 2)));
        assert_eq!((e.line, e.key.as_deref()), (Some(2), Some("tunnel_id")));
        let e = check_err(&(t(1, 2) + &sess(5, "")));
        assert_eq!((e.line, e.key.as_deref()), (Some(10), Some("pw_type")));
        let ok = Config::check(
            Path::new("t.toml"),
            &(t(1, 2) + &sess(5, "pw_type = \"ppp\"\n")),
        );
        assert!(ok.is_ok(), "{ok:?}");
        // The same session id in two UDP tunnels is fine; with IP encapsulation it is not.
        let ip = "[[tunnel]]\ntunnel_id = 9\npeer_tunnel_id = 2\nencap = \"ip\"\nlocal = \"10.0.0.1\"\nremote = \"10.0.0.3\"\n";
        assert!(Config::check(
            Path::new("t.toml"),
            &(t(1, 3) + &sess(5, "") + &t(2, 3) + &sess(5, ""))
        )
        .is_ok());
        let e = check_err(&(t(1, 3) + &sess(5, "") + ip + &sess(5, "")));
        assert_eq!(e.key.as_deref(), Some("session_id"));
    }

    #[test]
    fn line_index_agrees_with_line_of() {
        let text = "a\n\nbc\nd";
        let ix = LineIndex::new(text);
        for off in 0..=text.len() + 2 {
            assert_eq!(ix.line(off), line_of(text, off), "offset {off}");
        }
    }

    #[test]
    fn missing_file_is_clear_error() {
        let e = Config::load(Path::new("/nonexistent/ul2tpd.toml")).unwrap_err();
        assert!(
            e.to_string().contains("cannot read configuration file"),
            "{e}"
        );
    }
}
