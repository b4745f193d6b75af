//! The RADIUS client of the LNS (docs/radius.md): the `[radius]` table, PPP authentication
//! by Access-Request (RFC 2865, RFC 2548 for MS-CHAPv2) with fail-over between servers, and
//! accounting (RFC 2866, RFC 2869) through one bounded queue that retransmits until a server
//! answers. Packets are built and checked by the pure `ul2tp-radius` codec; this module does
//! the sockets, the timers and the randomness (Request Authenticators from getrandom(2)).
//!
//! Each request goes out on a socket of its own (an ephemeral port, connected to the server),
//! so identifiers never collide and a reply can only come from the server asked.

mod dae;
mod lac;
mod servers;

pub use dae::Command as DaeCommand;
pub use lac::TunnelChoice;
pub use servers::{Selection, ServerStats};

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use ul2tp_ppp::AuthRequest;
use ul2tp_radius::dict::{self, attr, code, ms, vendor};
use ul2tp_radius::{hide, packet, Packet};

/// The `[radius]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RadiusConfig {
    /// Server addresses; a string or a list.
    pub server: ServerList,
    /// How a request picks its server: "failover" (in order, the default) or "round-robin".
    pub server_selection: Option<Selection>,
    /// Seconds a server that did not answer is skipped (asked after the others); 0 = never
    /// (default 30).
    pub dead_time: Option<u32>,
    /// Authentication port (default 1812).
    pub auth_port: Option<u16>,
    /// Accounting port (default 1813).
    pub acct_port: Option<u16>,
    /// Shared secret (or `secret_file`).
    pub secret: Option<String>,
    /// File whose first line is the shared secret (keeps it out of the main file).
    pub secret_file: Option<PathBuf>,
    /// NAS-Identifier (default: `[control] host_name`).
    pub nas_identifier: Option<String>,
    /// NAS-IP-Address (or NAS-IPv6-Address) sent (default: the tunnel's local address).
    pub nas_ip_address: Option<IpAddr>,
    /// Seconds to wait for each reply (default 3).
    pub timeout: Option<f64>,
    /// Retransmissions to one server before the next is tried (default 2).
    pub retries: Option<u32>,
    /// Acct-Interim-Interval when the Access-Accept has none, seconds; 0 = none (default 0).
    pub acct_interim_interval: Option<u32>,
    /// Most accounting requests queued while no server answers (default 4096).
    pub acct_queue: Option<usize>,
    /// Drop Access-Accept / -Reject replies without a Message-Authenticator (RFC 3579; the
    /// BlastRADIUS defence). Default false: FreeRADIUS before 3.2.5 does not sign its replies.
    /// A Message-Authenticator that is present is always checked.
    pub require_message_authenticator: Option<bool>,
    /// Address and port where Disconnect- / CoA-Requests are accepted (RFC 5176); off when
    /// absent.
    pub dae_listen: Option<SocketAddr>,
    /// Secret of the DAE clients that do not give their own (default: `secret`).
    pub dae_secret: Option<String>,
    /// The DAE clients (default: the servers, with `dae_secret`).
    pub dae_client: Option<Vec<DaeClient>>,
}

/// One `[[radius.dae_client]]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaeClient {
    /// Source address of its requests.
    pub address: IpAddr,
    /// Its secret (default: `dae_secret`, then `secret`).
    pub secret: Option<String>,
    /// File whose first line is its secret.
    pub secret_file: Option<PathBuf>,
}

/// One server or several.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ServerList {
    /// `server = "192.0.2.10"`.
    One(IpAddr),
    /// `server = ["192.0.2.10", "192.0.2.11"]`.
    Many(Vec<IpAddr>),
}

impl ServerList {
    /// The addresses, in order.
    pub fn list(&self) -> Vec<IpAddr> {
        match self {
            ServerList::One(a) => vec![*a],
            ServerList::Many(v) => v.clone(),
        }
    }
}

impl RadiusConfig {
    /// Check what serde cannot; on failure the key at fault and what is wrong.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.server.list().is_empty() {
            return Err(("server", "needs at least one address".into()));
        }
        match (&self.secret, &self.secret_file) {
            (None, None) => return Err(("secret", "needs secret or secret_file".into())),
            (Some(_), Some(_)) => {
                return Err(("secret_file", "give secret or secret_file, not both".into()))
            }
            (Some(s), None) if s.is_empty() => return Err(("secret", "must not be empty".into())),
            _ => {}
        }
        if let Some(t) = self.timeout {
            if !(t > 0.0 && t <= 60.0) {
                return Err(("timeout", "must be a number of seconds in (0, 60]".into()));
            }
        }
        if self.dae_secret.as_deref() == Some("") {
            return Err(("dae_secret", "must not be empty".into()));
        }
        for c in self.dae_client.iter().flatten() {
            if c.secret.is_some() && c.secret_file.is_some() {
                return Err((
                    "dae_client",
                    format!("{}: give secret or secret_file, not both", c.address),
                ));
            }
            if c.secret.as_deref() == Some("") {
                return Err((
                    "dae_client",
                    format!("{}: secret must not be empty", c.address),
                ));
            }
        }
        if self.dae_client.is_some() && self.dae_listen.is_none() {
            return Err(("dae_client", "needs dae_listen".into()));
        }
        if self.acct_queue == Some(0) {
            return Err(("acct_queue", "must be at least 1".into()));
        }
        Ok(())
    }

    /// The shared secret, reading `secret_file` when given.
    fn load_secret(&self) -> Result<Vec<u8>, String> {
        if let Some(s) = &self.secret {
            return Ok(s.as_bytes().to_vec());
        }
        let Some(path) = &self.secret_file else {
            return Err("no secret".into());
        };
        read_secret(path)
    }

    /// The DAE clients and their secrets.
    fn dae_clients(&self, secret: &[u8]) -> Result<HashMap<IpAddr, Vec<u8>>, String> {
        let default = match &self.dae_secret {
            Some(s) => s.as_bytes().to_vec(),
            None => secret.to_vec(),
        };
        let Some(list) = &self.dae_client else {
            return Ok(self
                .server
                .list()
                .into_iter()
                .map(|a| (a, default.clone()))
                .collect());
        };
        let mut m = HashMap::new();
        for c in list {
            let s = match (&c.secret, &c.secret_file) {
                (Some(s), _) => s.as_bytes().to_vec(),
                (None, Some(path)) => read_secret(path)?,
                (None, None) => default.clone(),
            };
            m.insert(c.address, s);
        }
        Ok(m)
    }
}

/// The first line of a secret file.
fn read_secret(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read secret_file {}: {e}", path.display()))?;
    let line = text.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        return Err(format!("secret_file {} is empty", path.display()));
    }
    Ok(line.as_bytes().to_vec())
}

/// Counters for /metrics and logs.
#[derive(Debug, Default)]
pub struct Counters {
    /// Access-Requests sent (first transmissions).
    pub requests: AtomicU64,
    /// Access-Accepts.
    pub accepts: AtomicU64,
    /// Access-Rejects.
    pub rejects: AtomicU64,
    /// Requests no server answered.
    pub timeouts: AtomicU64,
    /// Retransmissions (access and accounting).
    pub retransmits: AtomicU64,
    /// Replies dropped: bad authenticator, Message-Authenticator or format.
    pub bad_replies: AtomicU64,
    /// Accounting requests waiting for an answer.
    pub acct_pending: AtomicU64,
    /// Accounting requests answered.
    pub acct_responses: AtomicU64,
    /// Accounting requests dropped because the queue was full.
    pub acct_dropped: AtomicU64,
    /// Disconnect- / CoA-Requests verified and handled.
    pub dae_requests: AtomicU64,
    /// Of those, answered ACK.
    pub dae_acks: AtomicU64,
    /// Of those, answered NAK.
    pub dae_naks: AtomicU64,
    /// DAE requests dropped: unknown client, bad authenticator, wrong code, malformed.
    pub dae_dropped: AtomicU64,
}

/// What the `[radius]` table sets for requests; replaced whole by a reload, so each request
/// uses one consistent set (the secret it was signed with is the one its reply is checked
/// with).
#[derive(Clone, PartialEq)]
struct Settings {
    servers: Vec<IpAddr>,
    selection: Selection,
    dead_time: Duration,
    auth_port: u16,
    acct_port: u16,
    secret: Vec<u8>,
    nas_identifier: String,
    nas_ip_address: Option<IpAddr>,
    timeout: Duration,
    retries: u32,
    default_interim: u32,
    require_ma: bool,
}

impl Settings {
    fn new(cfg: &RadiusConfig, host_name: &str) -> Result<Settings, (&'static str, String)> {
        Ok(Settings {
            servers: cfg.server.list(),
            selection: cfg.server_selection.unwrap_or_default(),
            dead_time: Duration::from_secs(cfg.dead_time.unwrap_or(30).into()),
            auth_port: cfg.auth_port.unwrap_or(1812),
            acct_port: cfg.acct_port.unwrap_or(1813),
            secret: cfg.load_secret().map_err(|e| ("secret_file", e))?,
            nas_identifier: cfg
                .nas_identifier
                .clone()
                .unwrap_or_else(|| host_name.to_string()),
            nas_ip_address: cfg.nas_ip_address,
            timeout: Duration::from_secs_f64(cfg.timeout.unwrap_or(3.0)),
            retries: cfg.retries.unwrap_or(2),
            default_interim: cfg.acct_interim_interval.unwrap_or(0),
            require_ma: cfg.require_message_authenticator.unwrap_or(false),
        })
    }
}

/// The DAE listener that runs: its address and task.
type DaeTask = (SocketAddr, tokio::task::JoinHandle<()>);

/// The running client. Its `Debug` leaves the secret out.
pub struct Radius {
    settings: arc_swap::ArcSwap<Settings>,
    /// Each server's hold-down and counters.
    servers: servers::Servers,
    /// The DAE clients and their secrets.
    dae_clients: arc_swap::ArcSwap<HashMap<IpAddr, Vec<u8>>>,
    dae_task: std::sync::Mutex<Option<DaeTask>>,
    /// `acct_queue` as started (the queue is not resized by a reload).
    acct_queue: usize,
    acct: mpsc::Sender<Accounting>,
    /// The sessions with accounting started, for DAE requests.
    sessions: dae::Sessions,
    /// The daemon is stopping: sessions end with Admin-Reboot.
    shutting_down: std::sync::atomic::AtomicBool,
    /// Counters.
    pub counters: Arc<Counters>,
}

impl std::fmt::Debug for Radius {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.settings.load();
        f.debug_struct("Radius")
            .field("servers", &s.servers)
            .field("auth_port", &s.auth_port)
            .field("acct_port", &s.acct_port)
            .field("nas_identifier", &s.nas_identifier)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

/// What the PPP side knows about the session a request is for.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// Acct-Session-Id.
    pub acct_session_id: String,
    /// NAS-Port: the local session id.
    pub nas_port: u32,
    /// Our tunnel address (NAS-IP-Address / NAS-IPv6-Address).
    pub nas_address: Option<IpAddr>,
    /// Tunnel-Client-Endpoint (the LAC) and Tunnel-Server-Endpoint (us), RFC 2868.
    pub endpoints: Option<(IpAddr, IpAddr)>,
    /// Calling-Station-Id: the L2TP Calling Number of the ICRQ (empty: not sent).
    pub calling_station_id: Vec<u8>,
    /// Called-Station-Id: the L2TP Called Number of the ICRQ (empty: not sent).
    pub called_station_id: Vec<u8>,
}

/// What an Access-Accept granted (the attributes the LNS honours).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    /// Framed-IP-Address, unless 255.255.255.254 (from the pool) or absent.
    pub framed_ip: Option<Ipv4Addr>,
    /// MS-Primary / Secondary-DNS-Server.
    pub dns: [Option<Ipv4Addr>; 2],
    /// Session-Timeout, seconds.
    pub session_timeout: Option<u32>,
    /// Idle-Timeout, seconds.
    pub idle_timeout: Option<u32>,
    /// Acct-Interim-Interval, seconds (or the configured default).
    pub interim: Option<u32>,
    /// Class attributes, echoed in accounting.
    pub class: Vec<Vec<u8>>,
    /// Framed-Pool: the pool of the call's profile to take the address from.
    pub framed_pool: Option<String>,
    /// Framed-MTU: the most the pppN carries.
    pub framed_mtu: Option<u16>,
    /// Framed-Route: IPv4 prefixes routed through the pppN (the gateway and metrics of the
    /// attribute are not used: the link is point-to-point).
    pub framed_routes: Vec<(Ipv4Addr, u8)>,
    /// Framed-IPv6-Prefix (a /64; RFC 3162): the session's link prefix.
    pub framed_ipv6_prefix: Option<std::net::Ipv6Addr>,
    /// Delegated-IPv6-Prefix (RFC 4818): delegated with DHCPv6, /16 to /64.
    pub delegated_ipv6_prefix: Option<(std::net::Ipv6Addr, u8)>,
    /// DNS-Server-IPv6-Address (RFC 6911): advertised in the Router Advertisements.
    pub dns6: Vec<std::net::Ipv6Addr>,
    /// Framed-Interface-Id (RFC 3162 §2.2): the peer's IPv6CP interface identifier.
    pub framed_interface_id: Option<u64>,
}

/// An IPv6 prefix attribute (RFC 3162 §2.3: Reserved, Prefix-Length, Prefix, the prefix
/// octets possibly cut after the length): (prefix with the bits past the length cleared,
/// length), `None` when malformed.
pub fn parse_ipv6_prefix(v: &[u8]) -> Option<(std::net::Ipv6Addr, u8)> {
    let (&len, prefix) = v.get(1..)?.split_first()?;
    if len > 128 || prefix.len() > 16 || prefix.len() * 8 < usize::from(len) {
        return None;
    }
    let mut octets = [0u8; 16];
    octets[..prefix.len()].copy_from_slice(prefix);
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    Some((
        std::net::Ipv6Addr::from(u128::from_be_bytes(octets) & mask),
        len,
    ))
}

/// The prefix of a Framed-Route value (RFC 2865 §5.22: "PREFIX[/LEN] GATEWAY METRICS...");
/// the host bits are cleared. `None` when it does not parse.
pub fn parse_framed_route(text: &str) -> Option<(Ipv4Addr, u8)> {
    let dst = text.split_whitespace().next()?;
    let (addr, len) = match dst.split_once('/') {
        Some((a, l)) => (a, l.parse::<u8>().ok().filter(|l| *l <= 32)?),
        None => (dst, 32),
    };
    let a: Ipv4Addr = addr.parse().ok()?;
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    Some((Ipv4Addr::from(u32::from(a) & mask), len))
}

/// The prefix length of a contiguous netmask (255.255.255.0 → 24); `None` otherwise.
pub fn netmask_len(mask: Ipv4Addr) -> Option<u8> {
    let m = u32::from(mask);
    let len = m.leading_ones();
    (m.checked_shl(len).unwrap_or(0) == 0).then_some(len as u8)
}

/// The answer to an authentication.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Access-Accept: what it grants and the message for the peer (MS-CHAPv2: `S=...`).
    Accept(Grant, Vec<u8>),
    /// Access-Reject, or no usable answer: why, for the log.
    Reject(String),
}

/// An accounting record to deliver.
#[derive(Debug, Clone)]
struct Accounting {
    packet: Packet,
    queued: Instant,
}

impl Radius {
    /// Start the client from its table; `host_name` is the default NAS-Identifier. Needs a
    /// tokio runtime (the accounting task, the DAE listener). On failure the key at fault and
    /// what went wrong.
    pub fn start(
        cfg: &RadiusConfig,
        host_name: &str,
    ) -> Result<Arc<Radius>, (&'static str, String)> {
        let settings = Settings::new(cfg, host_name)?;
        let acct_queue = cfg.acct_queue.unwrap_or(4096);
        let (tx, rx) = mpsc::channel(acct_queue);
        let r = Arc::new(Radius {
            settings: arc_swap::ArcSwap::from_pointee(settings),
            servers: servers::Servers::default(),
            dae_clients: Default::default(),
            dae_task: Default::default(),
            acct_queue,
            acct: tx,
            sessions: dae::Sessions::default(),
            shutting_down: Default::default(),
            counters: Arc::default(),
        });
        r.set_dae(cfg)?;
        tokio::spawn(accounting_task(Arc::downgrade(&r), rx));
        Ok(r)
    }

    /// Apply a re-read `[radius]` table (SIGHUP): requests from now on use its servers,
    /// secret, timeouts and identity (queued accounting records included: each attempt is
    /// signed afresh); the DAE listener moves when `dae_listen` changed. On failure nothing
    /// changed. Returns whether anything did.
    pub fn reconfigure(
        self: &Arc<Self>,
        cfg: &RadiusConfig,
        host_name: &str,
    ) -> Result<bool, (&'static str, String)> {
        let settings = Settings::new(cfg, host_name)?;
        let clients_before = self.dae_clients.load_full();
        let listen_before = self.dae_listen();
        self.set_dae(cfg)?;
        let changed = **self.settings.load() != settings
            || *clients_before != **self.dae_clients.load()
            || listen_before != self.dae_listen();
        self.settings.store(Arc::new(settings));
        if cfg.acct_queue.unwrap_or(4096) != self.acct_queue {
            tracing::warn!(
                "reload: [radius] acct_queue takes effect when ul2tpd restarts ({} until then)",
                self.acct_queue
            );
        }
        Ok(changed)
    }

    /// Where the DAE listener runs, if it does.
    fn dae_listen(&self) -> Option<SocketAddr> {
        self.dae_task
            .lock()
            .ok()
            .and_then(|t| t.as_ref().map(|(a, _)| *a))
    }

    /// Start, move or stop the DAE listener for `cfg` and take its clients; an address that
    /// cannot be bound changes nothing.
    fn set_dae(self: &Arc<Self>, cfg: &RadiusConfig) -> Result<(), (&'static str, String)> {
        let clients = match cfg.dae_listen {
            Some(_) => {
                let secret = cfg.load_secret().map_err(|e| ("secret_file", e))?;
                cfg.dae_clients(&secret).map_err(|e| ("dae_client", e))?
            }
            None => HashMap::new(),
        };
        let mut task = self.dae_task.lock().unwrap_or_else(|e| e.into_inner());
        let running = task.as_ref().map(|(a, _)| *a);
        if running != cfg.dae_listen {
            let sock = match cfg.dae_listen {
                Some(at) => Some(
                    std::net::UdpSocket::bind(at)
                        .and_then(|s| {
                            s.set_nonblocking(true)?;
                            UdpSocket::from_std(s)
                        })
                        .map_err(|e| ("dae_listen", format!("cannot listen on {at}: {e}")))?,
                ),
                None => None,
            };
            if let Some((at, old)) = task.take() {
                old.abort();
                tracing::info!("RADIUS dynamic authorization no longer on {at}");
            }
            if let (Some(sock), Some(at)) = (sock, cfg.dae_listen) {
                if let Ok(a) = sock.local_addr() {
                    tracing::info!("RADIUS dynamic authorization (RFC 5176) on {a}");
                }
                *task = Some((at, tokio::spawn(dae::serve(Arc::downgrade(self), sock))));
            }
        }
        self.dae_clients.store(Arc::new(clients));
        Ok(())
    }

    /// Each server's counters (the servers asked so far), for /metrics.
    pub fn server_stats(&self) -> Vec<(IpAddr, ServerStats)> {
        self.servers.stats()
    }

    /// The attributes every request about a session carries.
    fn session_attrs(&self, p: &mut Packet, user: &[u8], s: &SessionInfo) {
        let cfg = self.settings.load();
        p.add(attr::USER_NAME, user);
        p.add(attr::NAS_IDENTIFIER, cfg.nas_identifier.as_bytes());
        match cfg.nas_ip_address.or(s.nas_address) {
            Some(IpAddr::V4(a)) => {
                p.add_ipv4(attr::NAS_IP_ADDRESS, a);
            }
            Some(IpAddr::V6(a)) => {
                p.add(attr::NAS_IPV6_ADDRESS, a.octets());
            }
            None => {}
        }
        p.add_u32(attr::NAS_PORT, s.nas_port)
            .add_u32(attr::NAS_PORT_TYPE, dict::NAS_PORT_TYPE_VIRTUAL)
            .add_u32(attr::SERVICE_TYPE, dict::SERVICE_TYPE_FRAMED)
            .add_u32(attr::FRAMED_PROTOCOL, dict::FRAMED_PROTOCOL_PPP)
            .add(attr::ACCT_SESSION_ID, s.acct_session_id.as_bytes());
        // RFC 2865 §5.30 / §5.31; an AVP longer than an attribute can hold is cut at 253.
        for (a, v) in [
            (attr::CALLING_STATION_ID, &s.calling_station_id),
            (attr::CALLED_STATION_ID, &s.called_station_id),
        ] {
            if !v.is_empty() {
                p.add(a, &v[..v.len().min(253)]);
            }
        }
        if let Some((client, server)) = s.endpoints {
            // Untagged: an address's first octet is never a tag value (0x01-0x1F).
            p.add_u32(attr::TUNNEL_TYPE, dict::TUNNEL_TYPE_L2TP);
            // Tunnel-Medium-Type: IPv4 (1) or IPv6 (2), RFC 2868 / address family numbers.
            let medium = if server.is_ipv4() {
                dict::TUNNEL_MEDIUM_IPV4
            } else {
                2
            };
            p.add_u32(attr::TUNNEL_MEDIUM_TYPE, medium);
            p.add(
                attr::TUNNEL_CLIENT_ENDPOINT,
                client.to_string().into_bytes(),
            );
            p.add(
                attr::TUNNEL_SERVER_ENDPOINT,
                server.to_string().into_bytes(),
            );
        }
    }

    /// Check a peer's credentials with an Access-Request.
    pub async fn authenticate(&self, req: &AuthRequest, s: &SessionInfo) -> Verdict {
        let cfg = self.settings.load_full();
        let mut authenticator = [0u8; 16];
        if let Err(e) = getrandom::fill(&mut authenticator) {
            return Verdict::Reject(format!("no random Request Authenticator: {e}"));
        }
        let mut p = Packet::new(code::ACCESS_REQUEST, authenticator[0]);
        p.authenticator = authenticator;
        self.session_attrs(&mut p, req.peer_name(), s);
        match req {
            AuthRequest::Pap { password, .. } => {
                let hidden = hide::hide_password(password, &cfg.secret, &authenticator);
                p.add(attr::USER_PASSWORD, hidden);
            }
            AuthRequest::Chap {
                identifier,
                challenge,
                response,
                ..
            } => {
                let mut v = vec![*identifier];
                v.extend_from_slice(response);
                p.add(attr::CHAP_PASSWORD, v);
                p.add(attr::CHAP_CHALLENGE, challenge.clone());
            }
            AuthRequest::MsChapV2 {
                identifier,
                challenge,
                response,
                ..
            } => {
                // RFC 2548 §2.3.2: Ident, Flags, Peer-Challenge, Reserved, Response.
                let (Some(peer_ch), Some(nt)) = (response.get(..16), response.get(24..48)) else {
                    return Verdict::Reject("malformed MS-CHAPv2 Response".into());
                };
                let mut v = vec![*identifier, 0];
                v.extend_from_slice(peer_ch);
                v.extend_from_slice(&[0; 8]);
                v.extend_from_slice(nt);
                p.add_vendor(vendor::MICROSOFT, ms::CHAP_CHALLENGE, challenge);
                p.add_vendor(vendor::MICROSOFT, ms::CHAP2_RESPONSE, &v);
            }
        }
        let bytes = match p.encode_access_request(&cfg.secret) {
            Ok(b) => b,
            Err(e) => return Verdict::Reject(format!("cannot build the Access-Request: {e}")),
        };
        self.counters.requests.fetch_add(1, Relaxed);
        let bad_before = self.counters.bad_replies.load(Relaxed);
        let Some(reply) = self
            .exchange(&cfg, cfg.auth_port, &bytes, &authenticator, true)
            .await
        else {
            self.counters.timeouts.fetch_add(1, Relaxed);
            return Verdict::Reject(format!(
                "no RADIUS server answered ({} tried{}; with a wrong secret servers drop our requests or we their replies)",
                cfg.servers.len(),
                if self.counters.bad_replies.load(Relaxed) > bad_before {
                    ", replies with a bad authenticator were dropped"
                } else {
                    ""
                }
            ));
        };
        let message = reply.get_text(attr::REPLY_MESSAGE);
        match reply.code {
            code::ACCESS_ACCEPT => {
                self.counters.accepts.fetch_add(1, Relaxed);
                let mut success = Vec::new();
                if matches!(req, AuthRequest::MsChapV2 { .. }) {
                    // MS-CHAP2-Success: Ident ‖ "S=<40 hex digits>".
                    match reply.get_vendor(vendor::MICROSOFT, ms::CHAP2_SUCCESS) {
                        Some(v) if v.len() > 1 => {
                            success = v[1..].to_vec();
                            success.extend_from_slice(b" M=Access granted");
                        }
                        _ => {
                            return Verdict::Reject("Access-Accept without MS-CHAP2-Success".into())
                        }
                    }
                }
                if let Some(m) = message {
                    tracing::info!("RADIUS Reply-Message: {m:?}");
                }
                Verdict::Accept(grant(&cfg, &reply), success)
            }
            code::ACCESS_REJECT => {
                self.counters.rejects.fetch_add(1, Relaxed);
                Verdict::Reject(match message {
                    Some(m) => format!("Access-Reject: {m:?}"),
                    None => "Access-Reject".into(),
                })
            }
            c => Verdict::Reject(format!("unsupported RADIUS reply code {c}")),
        }
    }
}

/// What an Access-Accept grants, under `cfg`.
fn grant(cfg: &Settings, reply: &Packet) -> Grant {
    let ip4 = |v: Option<&[u8]>| {
        v.and_then(|v| <[u8; 4]>::try_from(v).ok())
            .map(Ipv4Addr::from)
    };
    let framed_ip = reply
        .get_ipv4(attr::FRAMED_IP_ADDRESS)
        .filter(|a| a.octets() != dict::FRAMED_IP_NAS_ASSIGNS && !a.is_broadcast());
    let mut framed_routes: Vec<(Ipv4Addr, u8)> = reply
        .get_all(attr::FRAMED_ROUTE)
        .filter_map(|v| {
            let t = String::from_utf8_lossy(v);
            let r = parse_framed_route(&t);
            if r.is_none() {
                tracing::warn!("RADIUS Framed-Route {t:?} ignored: not PREFIX[/LEN] ...");
            }
            r
        })
        .collect();
    // Framed-IP-Netmask (RFC 2865 §5.9), as accel-ppp does: the subscriber's network
    // A/M is routed through the pppN like a Framed-Route.
    if let Some(mask) = reply.get_ipv4(attr::FRAMED_IP_NETMASK) {
        match (framed_ip, netmask_len(mask)) {
            (_, Some(32)) => {}
            (Some(a), Some(len)) => {
                let net = parse_framed_route(&format!("{a}/{len}"));
                framed_routes.extend(net.filter(|r| !framed_routes.contains(r)));
            }
            (None, Some(_)) => tracing::warn!(
                "RADIUS Framed-IP-Netmask {mask} ignored: no Framed-IP-Address to apply it to"
            ),
            (_, None) => {
                tracing::warn!("RADIUS Framed-IP-Netmask {mask} ignored: not a netmask")
            }
        }
    }
    Grant {
        framed_ip,
        dns: [
            ip4(reply.get_vendor(vendor::MICROSOFT, ms::PRIMARY_DNS_SERVER)),
            ip4(reply.get_vendor(vendor::MICROSOFT, ms::SECONDARY_DNS_SERVER)),
        ],
        session_timeout: reply.get_u32(attr::SESSION_TIMEOUT).filter(|&t| t > 0),
        idle_timeout: reply.get_u32(attr::IDLE_TIMEOUT).filter(|&t| t > 0),
        // A server's Acct-Interim-Interval is held to at least 60 s (RFC 2869 §5.16
        // advises against less); the configured default is the operator's choice.
        interim: match reply.get_u32(attr::ACCT_INTERIM_INTERVAL) {
            Some(t) if t > 0 => Some(t.max(60)),
            _ => (cfg.default_interim > 0).then_some(cfg.default_interim),
        },
        class: reply.get_all(attr::CLASS).map(<[u8]>::to_vec).collect(),
        framed_pool: reply.get_text(attr::FRAMED_POOL).filter(|s| !s.is_empty()),
        // Held to 576..65535, the range of `ppp_mtu` (RFC 2865 §5.12 allows from 64).
        framed_mtu: reply
            .get_u32(attr::FRAMED_MTU)
            .map(|m| m.clamp(576, 65535) as u16),
        framed_routes,
        framed_ipv6_prefix: reply
            .get(attr::FRAMED_IPV6_PREFIX)
            .and_then(|v| {
                let p = parse_ipv6_prefix(v).filter(|(_, len)| *len == 64);
                if p.is_none() {
                    tracing::warn!("RADIUS Framed-IPv6-Prefix ignored: not a /64");
                }
                p
            })
            .map(|(p, _)| p),
        delegated_ipv6_prefix: reply.get(attr::DELEGATED_IPV6_PREFIX).and_then(|v| {
            let p = parse_ipv6_prefix(v).filter(|(_, len)| (16..=64).contains(len));
            if p.is_none() {
                tracing::warn!("RADIUS Delegated-IPv6-Prefix ignored: not a /16 to /64");
            }
            p
        }),
        dns6: reply
            .get_all(attr::DNS_SERVER_IPV6_ADDRESS)
            .filter_map(|v| <[u8; 16]>::try_from(v).ok())
            .map(std::net::Ipv6Addr::from)
            .collect(),
        framed_interface_id: reply
            .get(attr::FRAMED_INTERFACE_ID)
            .and_then(|v| <[u8; 8]>::try_from(v).ok())
            .map(u64::from_be_bytes)
            .filter(|&i| i != 0),
    }
}

impl Radius {
    /// Send `bytes` (signed under `cfg`) to the servers in the order `server_selection`
    /// gives, each `retries + 1` times; the first reply that verifies wins. A server that
    /// does not answer is held down for `dead_time`. `None` when no server answered.
    async fn exchange(
        &self,
        cfg: &Settings,
        port: u16,
        bytes: &[u8],
        authenticator: &[u8; 16],
        access: bool,
    ) -> Option<Packet> {
        for server in self
            .servers
            .order(&cfg.servers, cfg.selection, Instant::now())
        {
            let to = SocketAddr::new(server, port);
            let bind: SocketAddr = if to.is_ipv4() {
                (Ipv4Addr::UNSPECIFIED, 0).into()
            } else {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            };
            let Ok(sock) = UdpSocket::bind(bind).await else {
                continue;
            };
            if sock.connect(to).await.is_err() {
                continue;
            }
            self.servers.sent(server);
            let mut buf = vec![0u8; packet::MAX_LEN];
            for attempt in 0..=cfg.retries {
                if attempt > 0 {
                    self.counters.retransmits.fetch_add(1, Relaxed);
                }
                if sock.send(bytes).await.is_err() {
                    break;
                }
                let deadline = tokio::time::Instant::now() + cfg.timeout;
                while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
                    let reply = &buf[..n];
                    let same_id = reply.get(1) == bytes.get(1);
                    // A Message-Authenticator is checked when present, and required of access
                    // replies with `require_message_authenticator` (RFC 3579 §3.2).
                    if same_id
                        && packet::verify_response(
                            reply,
                            &cfg.secret,
                            authenticator,
                            access && cfg.require_ma,
                        )
                    {
                        if let Ok(p) = Packet::decode(reply) {
                            self.servers.answered(server);
                            return Some(p);
                        }
                    }
                    self.counters.bad_replies.fetch_add(1, Relaxed);
                    tracing::warn!(
                        "RADIUS reply from {to} dropped: it does not verify with our secret (wrong secret?)"
                    );
                }
            }
            if self.servers.failed(server, cfg.dead_time, Instant::now())
                && !cfg.dead_time.is_zero()
            {
                tracing::warn!(
                    "RADIUS server {to} did not answer: asked last for {} s (dead_time)",
                    cfg.dead_time.as_secs()
                );
            } else {
                tracing::warn!("RADIUS server {to} did not answer");
            }
        }
        None
    }

    /// The daemon is stopping: the sessions that end from now on end with Admin-Reboot.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Relaxed);
    }

    /// Wait (at most `limit`) until every session has queued its Stop and every queued
    /// record was answered; logs what is left undelivered.
    pub async fn finish(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while !(self.sessions.is_empty() && self.counters.acct_pending.load(Relaxed) == 0) {
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(
                    "RADIUS: stopping with {} accounting records undelivered",
                    self.counters.acct_pending.load(Relaxed)
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Add what RADIUS knows about the PPP peer of (`tunnel_id`, `session_id`) to its
    /// `ul2tp show session` attributes, once its accounting has started.
    pub fn annotate(&self, key: (u32, u32), a: &mut ul2tp_api::Attrs) {
        let Some(e) = self.sessions.get(key) else {
            return;
        };
        a.ppp_user = Some(String::from_utf8_lossy(&e.user).into_owned());
        a.ppp_peer = Some(e.framed_ip);
        a.ppp_online.get_or_insert(e.started.elapsed().as_secs());
        a.acct_session_id = Some(e.acct_session_id);
    }

    /// Queue an accounting record (never waits: a full queue drops it and counts the drop).
    fn account(&self, packet: Packet, acct_session_id: &str) {
        let a = Accounting {
            packet,
            queued: Instant::now(),
        };
        match self.acct.try_send(a) {
            Ok(()) => {
                self.counters.acct_pending.fetch_add(1, Relaxed);
            }
            Err(_) => {
                self.counters.acct_dropped.fetch_add(1, Relaxed);
                tracing::warn!(
                    "RADIUS accounting queue full: record for {acct_session_id} dropped"
                );
            }
        }
    }
}

/// Deliver accounting records in order; a record is retried (with a growing Acct-Delay-Time
/// and a fresh identifier) until a server answers, so records queue up across an outage.
async fn accounting_task(r: std::sync::Weak<Radius>, mut rx: mpsc::Receiver<Accounting>) {
    let mut next_id: u8 = 0;
    while let Some(a) = rx.recv().await {
        let mut pause = Duration::from_secs(1);
        loop {
            let Some(radius) = r.upgrade() else { return };
            let cfg = radius.settings.load_full();
            next_id = next_id.wrapping_add(1);
            let mut p = a.packet.clone();
            p.identifier = next_id;
            p.add_u32(attr::ACCT_DELAY_TIME, a.queued.elapsed().as_secs() as u32);
            let Ok(bytes) = p.encode_request(&cfg.secret) else {
                // Too long to send (an attribute over 253 octets, the packet over 4096).
                radius.counters.acct_pending.fetch_sub(1, Relaxed);
                radius.counters.acct_dropped.fetch_add(1, Relaxed);
                tracing::warn!("RADIUS accounting record dropped: it does not fit in a packet");
                break;
            };
            let mut auth = [0u8; 16];
            auth.copy_from_slice(&bytes[4..20]);
            let reply = radius
                .exchange(&cfg, cfg.acct_port, &bytes, &auth, false)
                .await;
            if reply.is_some_and(|p| p.code == code::ACCOUNTING_RESPONSE) {
                radius.counters.acct_pending.fetch_sub(1, Relaxed);
                radius.counters.acct_responses.fetch_add(1, Relaxed);
                break;
            }
            drop(radius);
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(30));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> RadiusConfig {
        toml::from_str(text).unwrap()
    }

    fn info() -> SessionInfo {
        SessionInfo {
            acct_session_id: "test-1".into(),
            nas_port: 1,
            nas_address: Some(Ipv4Addr::LOCALHOST.into()),
            endpoints: None,
            calling_station_id: b"5551234".to_vec(),
            called_station_id: Vec::new(),
        }
    }

    /// Framed-Route text and the RFC 3162 prefix layout; malformed values are refused.
    #[test]
    fn route_and_prefix_values() {
        assert_eq!(
            parse_framed_route("198.51.100.7/24 0.0.0.0 1"),
            Some((Ipv4Addr::new(198, 51, 100, 0), 24))
        );
        assert_eq!(
            parse_framed_route("192.0.2.9"),
            Some((Ipv4Addr::new(192, 0, 2, 9), 32))
        );
        assert_eq!(
            parse_framed_route("0.0.0.0/0 10.0.0.1 1").map(|r| r.1),
            Some(0)
        );
        let m = |s: &str| netmask_len(s.parse().unwrap());
        assert_eq!(m("255.255.255.0"), Some(24));
        assert_eq!(m("255.255.255.255"), Some(32));
        assert_eq!(m("0.0.0.0"), Some(0));
        assert_eq!(m("255.0.255.0"), None);
        for bad in ["", "x/24", "192.0.2.0/33", "2001:db8::/64"] {
            assert_eq!(parse_framed_route(bad), None, "{bad:?}");
        }
        let p = |s: &str| s.parse::<std::net::Ipv6Addr>().unwrap();
        // Cut after the length (RFC 3162 allows it), bits past the length cleared.
        assert_eq!(
            parse_ipv6_prefix(&[0, 56, 0x20, 0x01, 0x0d, 0xb8, 0, 0x77, 0xff]),
            Some((p("2001:db8:77:ff00::"), 56))
        );
        let mut full = vec![0, 64];
        full.extend_from_slice(&p("2001:db8:1:2:3::").octets());
        assert_eq!(parse_ipv6_prefix(&full), Some((p("2001:db8:1:2::"), 64)));
        for bad in [&[][..], &[0], &[0, 129], &[0, 64, 0x20, 0x01]] {
            assert_eq!(parse_ipv6_prefix(bad), None, "{bad:?}");
        }
    }

    /// A responder on loopback that answers the first Access-Request with `replies(request)`.
    fn responder(
        replies: impl FnOnce(&Packet) -> Vec<Vec<u8>> + Send + 'static,
    ) -> (u16, std::thread::JoinHandle<Packet>) {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = sock.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            let mut buf = [0u8; packet::MAX_LEN];
            let (n, from) = sock.recv_from(&mut buf).unwrap();
            assert!(packet::verify_access_request(&buf[..n], b"right"));
            let req = Packet::decode(&buf[..n]).unwrap();
            for r in replies(&req) {
                sock.send_to(&r, from).unwrap();
            }
            req
        });
        (port, h)
    }

    fn accept(req: &Packet, secret: &[u8], id: u8) -> Vec<u8> {
        let mut p = Packet::new(code::ACCESS_ACCEPT, id);
        p.add_ipv4(attr::FRAMED_IP_ADDRESS, Ipv4Addr::new(10, 1, 2, 3))
            .add(attr::CLASS, b"c1".to_vec())
            .add_u32(attr::SESSION_TIMEOUT, 60)
            .add(attr::MESSAGE_AUTHENTICATOR, [0u8; 16]);
        p.encode_response(secret, &req.authenticator).unwrap()
    }

    fn pap() -> AuthRequest {
        AuthRequest::Pap {
            peer_name: b"alice".to_vec(),
            password: b"pw".to_vec(),
        }
    }

    /// A reply signed with another secret and one with another identifier are dropped and
    /// counted; the good one after them is taken, with its attributes.
    #[tokio::test]
    async fn bad_replies_are_dropped_and_counted() {
        let (port, h) = responder(|req| {
            vec![
                accept(req, b"wrong", req.identifier),
                accept(req, b"right", req.identifier.wrapping_add(1)),
                accept(req, b"right", req.identifier),
            ]
        });
        let c = cfg(&format!(
            "server = \"127.0.0.1\"\nauth_port = {port}\nsecret = \"right\"\ntimeout = 5\nretries = 0\n"
        ));
        let r = Radius::start(&c, "nas-1").unwrap();
        let v = r.authenticate(&pap(), &info()).await;
        let Verdict::Accept(g, _) = v else {
            panic!("{v:?}")
        };
        assert_eq!(g.framed_ip, Some(Ipv4Addr::new(10, 1, 2, 3)));
        assert_eq!(g.class, vec![b"c1".to_vec()]);
        assert_eq!(g.session_timeout, Some(60));
        assert_eq!(r.counters.bad_replies.load(Relaxed), 2);
        assert_eq!(r.counters.accepts.load(Relaxed), 1);
        let req = h.join().unwrap();
        // The password went hidden with the secret; the NAS attributes are there.
        let hidden = req.get(attr::USER_PASSWORD).unwrap();
        assert_ne!(hidden, b"pw");
        assert_eq!(
            hide::unhide_password(hidden, b"right", &req.authenticator).as_deref(),
            Some(&b"pw"[..])
        );
        assert_eq!(req.get_text(attr::NAS_IDENTIFIER).as_deref(), Some("nas-1"));
        assert_eq!(
            req.get_ipv4(attr::NAS_IP_ADDRESS),
            Some(Ipv4Addr::LOCALHOST)
        );
        assert_eq!(
            req.get_text(attr::ACCT_SESSION_ID).as_deref(),
            Some("test-1")
        );
    }

    /// `require_message_authenticator`: an Access-Accept without one is dropped, so the
    /// login fails; without the option it is taken.
    #[tokio::test]
    async fn message_authenticator_can_be_required() {
        let unsigned = |req: &Packet| {
            let p = Packet::new(code::ACCESS_ACCEPT, req.identifier);
            vec![p.encode_response(b"right", &req.authenticator).unwrap()]
        };
        for (require, accepted) in [(true, false), (false, true)] {
            let (port, h) = responder(unsigned);
            let c = cfg(&format!(
                "server = \"127.0.0.1\"\nauth_port = {port}\nsecret = \"right\"\ntimeout = 0.5\n\
                 retries = 0\nrequire_message_authenticator = {require}\n"
            ));
            let r = Radius::start(&c, "nas").unwrap();
            let v = r.authenticate(&pap(), &info()).await;
            assert_eq!(
                matches!(v, Verdict::Accept(..)),
                accepted,
                "{require}: {v:?}"
            );
            assert_eq!(r.counters.bad_replies.load(Relaxed), u64::from(!accepted));
            h.join().unwrap();
        }
    }

    #[tokio::test]
    async fn debug_leaves_the_secret_out() {
        let c = cfg("server = \"127.0.0.1\"\nsecret = \"hush-hush\"\n");
        let r = Radius::start(&c, "nas").unwrap();
        let text = format!("{r:?}");
        assert!(
            text.contains("127.0.0.1") && !text.contains("hush"),
            "{text}"
        );
    }

    /// An Access-Reject's Reply-Message is the reason given.
    #[tokio::test]
    async fn reject_carries_the_reply_message() {
        let (port, h) = responder(|req| {
            let mut p = Packet::new(code::ACCESS_REJECT, req.identifier);
            p.add(attr::REPLY_MESSAGE, b"expired".to_vec());
            vec![p.encode_response(b"right", &req.authenticator).unwrap()]
        });
        let c = cfg(&format!(
            "server = \"127.0.0.1\"\nauth_port = {port}\nsecret = \"right\"\n"
        ));
        let r = Radius::start(&c, "nas").unwrap();
        match r.authenticate(&pap(), &info()).await {
            Verdict::Reject(why) => assert_eq!(why, "Access-Reject: \"expired\""),
            v => panic!("{v:?}"),
        }
        assert_eq!(r.counters.rejects.load(Relaxed), 1);
        h.join().unwrap();
    }

    #[test]
    fn table_checks() {
        let c = cfg("server = \"192.0.2.1\"\nsecret = \"s\"\n");
        assert_eq!(c.check(), Ok(()));
        let c = cfg("server = [\"192.0.2.1\", \"192.0.2.2\"]\nsecret = \"s\"\n");
        assert_eq!(c.server.list().len(), 2);
        let c = cfg("server = \"192.0.2.1\"\nsecret = \"s\"\nserver_selection = \"round-robin\"\n");
        assert_eq!(c.server_selection, Some(Selection::RoundRobin));
        assert!(toml::from_str::<RadiusConfig>(
            "server = \"192.0.2.1\"\nsecret = \"s\"\nserver_selection = \"random\"\n"
        )
        .is_err());
        let c = cfg("server = \"192.0.2.1\"\n");
        assert_eq!(c.check().unwrap_err().0, "secret");
        let c = cfg("server = []\nsecret = \"s\"\n");
        assert_eq!(c.check().unwrap_err().0, "server");
        let c = cfg("server = \"192.0.2.1\"\nsecret = \"s\"\ntimeout = 0\n");
        assert_eq!(c.check().unwrap_err().0, "timeout");
        assert!(toml::from_str::<RadiusConfig>("server = \"x\"\nsecret = \"s\"\n").is_err());
        let c = cfg(
            "server = \"192.0.2.1\"\nsecret = \"s\"\n[[dae_client]]\naddress = \"192.0.2.9\"\n",
        );
        assert_eq!(c.check().unwrap_err().0, "dae_client");
        let c = cfg(
            "server = \"192.0.2.1\"\nsecret = \"s\"\ndae_listen = \"127.0.0.1:3799\"\n\
                     dae_secret = \"d\"\n[[dae_client]]\naddress = \"192.0.2.9\"\n\
                     [[dae_client]]\naddress = \"192.0.2.10\"\nsecret = \"own\"\n",
        );
        assert_eq!(c.check(), Ok(()));
        let clients = c.dae_clients(b"s").unwrap();
        assert_eq!(clients[&"192.0.2.9".parse::<IpAddr>().unwrap()], b"d");
        assert_eq!(clients[&"192.0.2.10".parse::<IpAddr>().unwrap()], b"own");
        assert_eq!(clients.len(), 2);
        // Without dae_client the servers are the clients, with the main secret.
        let c = cfg("server = [\"192.0.2.1\", \"192.0.2.2\"]\nsecret = \"s\"\ndae_listen = \"127.0.0.1:3799\"\n");
        let clients = c.dae_clients(b"s").unwrap();
        assert_eq!(clients.len(), 2);
        assert!(clients.values().all(|v| v == b"s"));
    }
}

/// The RADIUS side of one PPP session the LNS terminates: its Access-Request, what the
/// Access-Accept granted, the accounting records and the Session- / Idle-Timeout and interim
/// timers. Dropping it (the session went away) sends the Stop if none was sent.
#[derive(Debug)]
pub struct RadiusSession {
    radius: Arc<Radius>,
    session: Arc<ul2tp_core::Session>,
    info: SessionInfo,
    user: Vec<u8>,
    grant: Grant,
    /// Accounting Start sent: when, with the peer's address.
    started: Option<(Instant, Ipv4Addr)>,
    stopped: bool,
    last_active: Instant,
    next_interim: Option<Instant>,
    /// When Session-Timeout ends the session (set at Start, changed by a CoA).
    session_deadline: Option<Instant>,
    /// Where DAE requests for this session go (the session task's channel).
    dae: mpsc::Sender<DaeCommand>,
    /// The Acct-Terminate-Cause when we end the session ourselves.
    pub cause: Option<u32>,
}

/// Which RADIUS timer fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Session-Timeout: end the session.
    SessionTimeout,
    /// Idle-Timeout: end the session.
    IdleTimeout,
    /// Send an Interim-Update.
    Interim,
}

impl RadiusSession {
    /// The RADIUS side of `session`, whose tunnel runs between `local` (us) and `peer`, with
    /// the (Calling, Called) Numbers of its ICRQ; DAE requests for it are sent to `dae`.
    pub fn new(
        radius: Arc<Radius>,
        session: Arc<ul2tp_core::Session>,
        (local, peer): (Option<SocketAddr>, Option<SocketAddr>),
        (calling, called): (Vec<u8>, Vec<u8>),
        dae: mpsc::Sender<DaeCommand>,
    ) -> RadiusSession {
        let unix = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let info = SessionInfo {
            acct_session_id: format!(
                "{unix:08X}-{:08X}-{:08X}",
                session.tunnel_id(),
                session.session_id()
            ),
            nas_port: session.session_id(),
            nas_address: local.map(|a| a.ip()),
            endpoints: local.zip(peer).map(|(l, p)| (p.ip(), l.ip())),
            calling_station_id: calling,
            called_station_id: called,
        };
        RadiusSession {
            radius,
            session,
            info,
            user: Vec::new(),
            grant: Grant::default(),
            started: None,
            stopped: false,
            last_active: Instant::now(),
            next_interim: None,
            session_deadline: None,
            dae,
            cause: None,
        }
    }

    /// The Acct-Session-Id.
    pub fn acct_session_id(&self) -> &str {
        &self.info.acct_session_id
    }

    fn key(&self) -> (u32, u32) {
        (self.session.tunnel_id(), self.session.session_id())
    }

    /// Check `req` with the servers; the verdict arrives on `tx` (with the request's user).
    pub fn authenticate(&self, req: AuthRequest, tx: mpsc::Sender<(Vec<u8>, Verdict)>) {
        let (radius, info) = (self.radius.clone(), self.info.clone());
        tokio::spawn(async move {
            let v = radius.authenticate(&req, &info).await;
            let _ = tx.send((req.peer_name().to_vec(), v)).await;
        });
    }

    /// The user was accepted with `grant`.
    pub fn accepted(&mut self, user: Vec<u8>, grant: Grant) {
        self.user = user;
        self.grant = grant;
    }

    /// IPCP is up with the peer at `peer`: accounting Start.
    pub fn network_up(&mut self, peer: Ipv4Addr) {
        if self.started.is_some() || self.user.is_empty() {
            return;
        }
        let now = Instant::now();
        self.started = Some((now, peer));
        self.last_active = now;
        self.next_interim = self
            .grant
            .interim
            .map(|s| now + Duration::from_secs(s.into()));
        self.session_deadline = self
            .grant
            .session_timeout
            .map(|t| now + Duration::from_secs(t.into()));
        self.record(dict::status::START, None);
        self.radius.sessions.insert(
            self.key(),
            dae::Entry {
                acct_session_id: self.info.acct_session_id.clone(),
                started: now,
                user: self.user.clone(),
                framed_ip: peer,
                tx: self.dae.clone(),
            },
        );
    }

    /// A DAE request for this session; returns the terminate cause when it must end.
    pub fn command(&mut self, c: DaeCommand) -> Option<u32> {
        match c {
            DaeCommand::Disconnect => Some(dict::terminate::ADMIN_RESET),
            DaeCommand::Change {
                session_timeout,
                idle_timeout,
                interim,
            } => {
                let now = Instant::now();
                let secs = |s: u32| Duration::from_secs(s.into());
                if let Some(t) = session_timeout {
                    self.session_deadline = (t > 0).then(|| now + secs(t));
                }
                if let Some(t) = idle_timeout {
                    self.grant.idle_timeout = (t > 0).then_some(t);
                }
                if let Some(t) = interim {
                    // The next Interim-Update is one new interval from now.
                    self.grant.interim = (t > 0).then_some(t.max(60));
                    self.next_interim = self.grant.interim.map(|s| now + secs(s));
                }
                None
            }
        }
    }

    /// Traffic passed (for Idle-Timeout).
    pub fn activity(&mut self) {
        self.last_active = Instant::now();
    }

    /// When the next timer is due.
    pub fn next_due(&self) -> Option<(Instant, Due)> {
        self.started?;
        let secs = |s: u32| Duration::from_secs(s.into());
        [
            self.session_deadline.map(|t| (t, Due::SessionTimeout)),
            self.grant
                .idle_timeout
                .map(|t| (self.last_active + secs(t), Due::IdleTimeout)),
            self.next_interim.map(|t| (t, Due::Interim)),
        ]
        .into_iter()
        .flatten()
        .min_by_key(|(t, _)| *t)
    }

    /// Act on a due timer; returns the terminate cause when the session must end.
    pub fn fire(&mut self, due: Due) -> Option<u32> {
        match due {
            Due::SessionTimeout => Some(dict::terminate::SESSION_TIMEOUT),
            Due::IdleTimeout => Some(dict::terminate::IDLE_TIMEOUT),
            Due::Interim => {
                self.record(dict::status::INTERIM_UPDATE, None);
                self.next_interim = self
                    .grant
                    .interim
                    .map(|s| Instant::now() + Duration::from_secs(s.into()));
                None
            }
        }
    }

    /// The session ended: accounting Stop with `cause` (or the one set before).
    pub fn stop(&mut self, cause: u32) {
        if self.started.is_none() || self.stopped {
            return;
        }
        self.stopped = true;
        self.radius.sessions.remove(self.key());
        let cause = self.cause.unwrap_or(cause);
        self.record(dict::status::STOP, Some(cause));
    }

    fn record(&self, status: u32, cause: Option<u32>) {
        let Some((start, peer)) = self.started else {
            return;
        };
        let mut p = Packet::new(code::ACCOUNTING_REQUEST, 0);
        p.add_u32(attr::ACCT_STATUS_TYPE, status);
        self.radius.session_attrs(&mut p, &self.user, &self.info);
        p.add_ipv4(attr::FRAMED_IP_ADDRESS, peer);
        for c in &self.grant.class {
            p.add(attr::CLASS, c.clone());
        }
        if let Ok(t) = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
            p.add_u32(attr::EVENT_TIMESTAMP, t.as_secs() as u32);
        }
        if status != dict::status::START {
            // Acct-Input is what the user sent us: the session's receive counters.
            let st = self.session.stats();
            p.add_u32(attr::ACCT_SESSION_TIME, start.elapsed().as_secs() as u32)
                .add_u32(attr::ACCT_INPUT_OCTETS, st.rx_bytes as u32)
                .add_u32(attr::ACCT_INPUT_GIGAWORDS, (st.rx_bytes >> 32) as u32)
                .add_u32(attr::ACCT_OUTPUT_OCTETS, st.tx_bytes as u32)
                .add_u32(attr::ACCT_OUTPUT_GIGAWORDS, (st.tx_bytes >> 32) as u32)
                .add_u32(attr::ACCT_INPUT_PACKETS, st.rx_packets as u32)
                .add_u32(attr::ACCT_OUTPUT_PACKETS, st.tx_packets as u32);
        }
        if let Some(c) = cause {
            p.add_u32(attr::ACCT_TERMINATE_CAUSE, c);
        }
        self.radius.account(p, &self.info.acct_session_id);
    }
}

impl Drop for Radius {
    fn drop(&mut self) {
        if let Some((_, t)) = self.dae_task.get_mut().ok().and_then(Option::take) {
            t.abort();
        }
    }
}

impl Drop for RadiusSession {
    fn drop(&mut self) {
        // The call was cleared under us (the peer's CDN, `ul2tp delete session`), or the
        // daemon is stopping.
        self.stop(if self.radius.shutting_down.load(Relaxed) {
            dict::terminate::ADMIN_REBOOT
        } else {
            dict::terminate::USER_REQUEST
        });
    }
}
