//! The LAC's configured calls: `[[lac]]` profiles (docs/config.md), `ul2tp dial` /
//! `ul2tp hangup`, redialling and LNS fail-over.
//!
//! A profile names an LNS (one address or several, tried in order), how to reach it (port,
//! version, host name, secret, timers) and the PPP client settings of the calls to place
//! (user, password from the file or from a file only its owner may read). Each profile has one
//! task, the *call*: when dialled (`autodial` at start-up, or `ul2tp dial NAME`) it opens a
//! tunnel to the first address, the next one when that one does not answer or refuses, then
//! places the profile's sessions (PPP calls, ICRQ) and runs the daemon's PPP client on each.
//! Once every PPP link is up the call is *up*. When the tunnel or a session goes down, or
//! every address failed, the call is redialled after `redial_timeout`, doubled on each further
//! failure up to [`MAX_BACKOFF`], at most `max_redials` times in a row (when `redial` is on).
//! `ul2tp hangup NAME` closes the tunnel (StopCCN) and stops redialling.
//!
//! The call learns what happens from the control plane's event stream
//! ([`ControlPlane::events`]) and from the PPP endpoint's outcome (`pppd::wait_ready`); the
//! causes it reports (the peer's StopCCN / CDN Result Code, no answer, PPP failures) are the
//! [`down_error`] texts that `ul2tp connect ... wait` prints too.

mod shared;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::{broadcast, mpsc, oneshot};
use toml::Spanned;
use ul2tp_api::{ApiError, Attrs, Errno};
use ul2tp_control::{DownReason, Encap, Event, Version};
use ul2tp_core::PwType;

use crate::config::ConfigError;
use crate::control::{ControlPlane, Tune};
use crate::store::{ApiResult, Store, Task};

/// Longest wait between two redials (unless `redial_timeout` is longer).
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Default `redial_timeout`, seconds.
pub const DEFAULT_REDIAL_TIMEOUT: f64 = 5.0;
/// How often an established call checks that its tunnel and sessions still exist (it
/// learns of their end from the control plane's events, but a subscriber that falls too far
/// behind misses some).
const CHECK_EVERY: Duration = Duration::from_secs(5);
/// Most sessions one profile places.
pub const MAX_SESSIONS: u32 = 64;

/// The `[control]` listeners, by address family (IPv4, IPv6): a profile's tunnels leave
/// from the listener of their transport and the LNS's family.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Listeners {
    /// UDP (`listen`, `listen_udp`).
    pub udp: [bool; 2],
    /// L2TPv3/IP (`listen_ip`).
    pub ip: [bool; 2],
}

/// One `[[lac]]` table as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LacConfig {
    /// The profile's name (`ul2tp dial NAME`).
    pub name: Spanned<String>,
    /// The LNS: an address or a list of addresses (`ADDR`, `ADDR:PORT`, `[V6]:PORT`), tried
    /// in order.
    pub lns: Spanned<OneOrMany>,
    /// UDP port of the addresses given without one (default 1701).
    pub port: Option<u16>,
    /// L2TP version, 2 or 3 (default 2).
    pub version: Option<Spanned<u8>>,
    /// Encapsulation of the tunnel: "udp" (default) or "ip" (L2TPv3/IP, version 3 only).
    pub encap: Option<Spanned<String>>,
    /// Our Host Name AVP (default `[control] host_name`).
    pub host_name: Option<String>,
    /// Tunnel secret (default `[control] secret`).
    pub secret: Option<String>,
    /// A file holding the tunnel secret (mode 0600 or stricter).
    pub secret_file: Option<Spanned<PathBuf>>,
    /// Hide AVPs (needs a secret; default `[control] hide_avps`).
    pub hide_avps: Option<bool>,
    /// Seconds of silence before a HELLO (default `[control] hello_interval`).
    pub hello_interval: Option<u64>,
    /// Retransmissions before a tunnel (or an address that does not answer) is given up
    /// (default `[control] max_retries`).
    pub max_retries: Option<u32>,
    /// PPP user name (default: the host name, when a password is given).
    pub user: Option<String>,
    /// PPP password / CHAP secret.
    pub password: Option<String>,
    /// A file holding the PPP password (mode 0600 or stricter).
    pub password_file: Option<Spanned<PathBuf>>,
    /// Seconds between LCP Echo-Requests (default 10).
    pub ppp_echo_interval: Option<u64>,
    /// Unanswered Echo-Requests after which the link is down (default 3).
    pub ppp_echo_failure: Option<u32>,
    /// Add an IPv6 default route via the LNS when it advertises a prefix (default
    /// `[control] ppp_ipv6_default_route`).
    pub ppp_ipv6_default_route: Option<Spanned<bool>>,
    /// Ask the LNS for a delegated prefix with DHCPv6 (default `[control] ppp_ipv6_pd`).
    pub ppp_ipv6_pd: Option<Spanned<bool>>,
    /// Dial when the daemon starts.
    #[serde(default)]
    pub autodial: bool,
    /// Redial after a failure or a teardown by the peer.
    #[serde(default)]
    pub redial: bool,
    /// Seconds before the first redial (default 5; doubled on each further failure).
    pub redial_timeout: Option<Spanned<f64>>,
    /// Redials in a row before giving up; 0 = no limit (default 0).
    pub max_redials: Option<u32>,
    /// Sessions (calls) to place in the tunnel (default 1).
    pub sessions: Option<Spanned<u32>>,
    /// What the sessions carry: "ppp" (default; the PPP client runs on each) or "eth"
    /// (L2TPv3 Ethernet pseudowires, an l2tpethN device each).
    pub pw_type: Option<Spanned<String>>,
    /// L2TPv2: the Calling Number AVP of the ICRQs (the subscriber's line; the LNS sends it
    /// to RADIUS as Calling-Station-Id).
    pub calling_number: Option<Spanned<String>>,
    /// L2TPv2: the Called Number AVP of the ICRQs (RADIUS Called-Station-Id).
    pub called_number: Option<Spanned<String>>,
    /// Ask RADIUS (`[radius]`) which LNS to use for `user` before each attempt (RFC 2868);
    /// `lns` is used when the Access-Accept names no L2TP tunnel.
    pub radius: Option<Spanned<bool>>,
}

/// `lns = "ADDR"` or `lns = ["ADDR", ...]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One address.
    One(String),
    /// Several, in order of preference.
    Many(Vec<String>),
}

/// A secret that is never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A checked profile, secrets read from their files.
#[derive(Debug, Clone, PartialEq)]
pub struct LacProfile {
    /// Name.
    pub name: String,
    /// LNS addresses in order.
    pub lns: Vec<SocketAddr>,
    /// Version.
    pub version: Version,
    /// Transport of the tunnels (UDP, or L2TPv3/IP for version 3).
    pub encap: Encap,
    /// Host Name override.
    pub host_name: Option<String>,
    /// Secret override.
    pub secret: Option<Secret>,
    /// hide_avps override.
    pub hide_avps: Option<bool>,
    /// HELLO interval override.
    pub hello_interval: Option<Duration>,
    /// max_retries override.
    pub max_retries: Option<u32>,
    /// PPP user and password.
    pub user: Option<(String, Secret)>,
    /// LCP echo (interval, failures).
    pub echo: Option<(Duration, u32)>,
    /// `ppp_ipv6_default_route` override.
    pub ipv6_default_route: Option<bool>,
    /// `ppp_ipv6_pd` override.
    pub ipv6_pd: Option<bool>,
    /// Dial at start-up.
    pub autodial: bool,
    /// Redial.
    pub redial: bool,
    /// First redial delay.
    pub redial_timeout: Duration,
    /// Redials in a row at most (0: no limit).
    pub max_redials: u32,
    /// Sessions to place.
    pub sessions: u32,
    /// PPP or Ethernet sessions.
    pub pw_type: PwType,
    /// Calling Number and Called Number of the ICRQs (empty: not sent).
    pub calling_number: String,
    /// See `calling_number`.
    pub called_number: String,
    /// Choose the LNS with RADIUS (RFC 2868).
    pub radius: bool,
}

impl LacProfile {
    /// The engine configuration changes of this profile's tunnels; `secret` (a RADIUS
    /// Tunnel-Password) replaces the profile's.
    fn tune(&self, secret: Option<Secret>) -> Tune {
        let mut p = self.clone();
        if secret.is_some() {
            p.secret = secret;
        }
        Tune(Box::new(move |c: &mut ul2tp_control::Config| {
            c.version = p.version;
            if let Some(h) = p.host_name {
                c.host_name = h;
            }
            if let Some(s) = p.secret {
                c.secret = Some(s.0.into_bytes());
            }
            if let Some(h) = p.hide_avps {
                c.hide_avps = h;
            }
            if let Some(h) = p.hello_interval {
                c.hello_interval = h;
            }
            if let Some(r) = p.max_retries {
                c.max_retries = r;
            }
        }))
    }
}

/// A secret given as `KEY` in the file or as `KEY_file` naming a private file (not both);
/// `None` when neither is there. Errors name `KEY_file`.
fn inline_or_file(
    inline: &Option<String>,
    file: &Option<Spanned<PathBuf>>,
    key: &str,
    at: &dyn Fn(Range<usize>, &str, String) -> ConfigError,
) -> Result<Option<Secret>, ConfigError> {
    let file_key = format!("{key}_file");
    match (inline, file) {
        (Some(_), Some(f)) => Err(at(
            f.span(),
            &file_key,
            format!("give {key} or {file_key}, not both"),
        )),
        (Some(s), None) => Ok(Some(Secret(s.clone()))),
        (None, Some(f)) => read_secret_file(f.get_ref())
            .map(|s| Some(Secret(s)))
            .map_err(|m| at(f.span(), &file_key, m)),
        (None, None) => Ok(None),
    }
}

/// Read a secret from `path`, which only its owner may read or write (like a pppd secrets
/// file); the error says what is wrong with it.
pub fn read_secret_file(path: &Path) -> Result<String, String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    if meta.len() > 4096 {
        return Err(format!(
            "{} is {} bytes long: a secret file holds one line",
            path.display(),
            meta.len()
        ));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{} has mode {mode:04o}: a file with a secret must be readable by its owner only (chmod 600 {})",
            path.display(),
            path.display()
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    // One line; the line break an editor adds is not part of the secret.
    let secret = text.strip_suffix('\n').unwrap_or(&text);
    let secret = secret.strip_suffix('\r').unwrap_or(secret);
    if secret.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(secret.to_string())
}

/// An LNS address: `ADDR`, `ADDR:PORT` or `[V6]:PORT`.
fn parse_lns(s: &str, port: u16) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    s.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, port))
        .map_err(|_| format!("{s:?} is not an IP address, ADDR:PORT or [IPV6]:PORT"))
}

impl LacConfig {
    /// Check the table and read its files. `err` builds an error at a span of the file for a
    /// key; `control` is the file's `[control]` listeners (`None`: no `[control]` section).
    pub fn check(
        &self,
        control: Option<Listeners>,
        err: &dyn Fn(Range<usize>, &str, String) -> ConfigError,
    ) -> Result<LacProfile, ConfigError> {
        let name = self.name.get_ref().clone();
        let at = |span: Range<usize>, key: &str, m: String| {
            err(span, key, format!("[[lac]] {name:?}: {m}"))
        };
        let here = self.name.span();
        if name.is_empty() || name.len() > 64 || name.chars().any(|c| c.is_whitespace()) {
            return Err(at(
                here,
                "name",
                "must be 1 to 64 characters without spaces".into(),
            ));
        }
        let Some(listeners) = control else {
            return Err(at(
                here,
                "name",
                "needs a [control] section (the control protocol endpoint the calls use)".into(),
            ));
        };
        let port = self.port.unwrap_or(1701);
        let addrs = match self.lns.get_ref() {
            OneOrMany::One(a) => vec![a.clone()],
            OneOrMany::Many(v) => v.clone(),
        };
        if addrs.is_empty() {
            return Err(at(
                self.lns.span(),
                "lns",
                "needs at least one address".into(),
            ));
        }
        let lns = addrs
            .iter()
            .map(|a| parse_lns(a, port))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|m| at(self.lns.span(), "lns", m))?;
        let version = match self.version.as_ref().map(|v| (*v.get_ref(), v.span())) {
            None | Some((2, _)) => Version::V2,
            Some((3, _)) => Version::V3,
            Some((_, span)) => return Err(at(span, "version", "must be 2 or 3".into())),
        };
        let encap = match self
            .encap
            .as_ref()
            .map(|e| (e.get_ref().as_str(), e.span()))
        {
            None | Some(("udp", _)) => Encap::Udp,
            Some(("ip", span)) if version == Version::V2 => {
                return Err(at(
                    span,
                    "encap",
                    "\"ip\" needs version = 3 (L2TPv2 runs over UDP only, RFC 2661)".into(),
                ))
            }
            Some(("ip", _)) => Encap::Ip,
            Some((other, span)) => {
                return Err(at(span, "encap", format!("{other:?} is not udp or ip")))
            }
        };
        // The tunnels leave from the [control] listener of their transport and family.
        let (have, key, what) = match encap {
            Encap::Udp => (listeners.udp, "listen_udp", "UDP"),
            Encap::Ip => (listeners.ip, "listen_ip", "L2TPv3/IP"),
        };
        if let Some(a) = lns.iter().find(|a| !have[usize::from(a.is_ipv6())]) {
            let family = if a.is_ipv6() { "IPv6" } else { "IPv4" };
            let addr = match encap {
                Encap::Udp => a.to_string(),
                Encap::Ip => a.ip().to_string(),
            };
            let span = self.encap.as_ref().map_or(self.lns.span(), |e| e.span());
            let k = if self.encap.is_some() { "encap" } else { "lns" };
            return Err(at(
                span,
                k,
                format!(
                    "{addr}: no {what} control listener for {family}: add one with [control] {key}"
                ),
            ));
        }
        let secret = inline_or_file(&self.secret, &self.secret_file, "secret", &at)?;
        let password = inline_or_file(&self.password, &self.password_file, "password", &at)?;
        let user = match (&self.user, password) {
            (Some(u), Some(p)) => Some((u.clone(), p)),
            (Some(_), None) => {
                return Err(at(here, "user", "needs password or password_file".into()))
            }
            // Only a password: our host name is the user name (as `ppp start`).
            (None, Some(p)) => Some((self.host_name.clone().unwrap_or_else(|| "ul2tp".into()), p)),
            (None, None) => None,
        };
        let redial_timeout = match &self.redial_timeout {
            None => Duration::from_secs_f64(DEFAULT_REDIAL_TIMEOUT),
            Some(t) if *t.get_ref() > 0.0 && *t.get_ref() <= 86400.0 => {
                Duration::from_secs_f64(*t.get_ref())
            }
            Some(t) => {
                return Err(at(
                    t.span(),
                    "redial_timeout",
                    "must be a number of seconds above 0 and at most 86400".into(),
                ))
            }
        };
        let sessions = match &self.sessions {
            None => 1,
            Some(n) if (1..=MAX_SESSIONS).contains(n.get_ref()) => *n.get_ref(),
            Some(n) => {
                return Err(at(
                    n.span(),
                    "sessions",
                    format!("must be 1 to {MAX_SESSIONS}"),
                ))
            }
        };
        let pw_type = match self
            .pw_type
            .as_ref()
            .map(|p| (p.get_ref().as_str(), p.span()))
        {
            None | Some(("ppp", _)) => PwType::Ppp,
            Some(("eth", span)) if version == Version::V2 => {
                return Err(at(
                    span,
                    "pw_type",
                    "\"eth\" needs version = 3 (L2TPv2 carries PPP only)".into(),
                ))
            }
            Some(("eth", _)) => PwType::Ethernet,
            Some((other, span)) => {
                return Err(at(span, "pw_type", format!("{other:?} is not ppp or eth")))
            }
        };
        for (key, v) in [
            ("ppp_ipv6_default_route", &self.ppp_ipv6_default_route),
            ("ppp_ipv6_pd", &self.ppp_ipv6_pd),
        ] {
            if let Some(v) = v.as_ref().filter(|_| pw_type != PwType::Ppp) {
                return Err(at(
                    v.span(),
                    key,
                    "is for PPP calls (pw_type = \"ppp\")".into(),
                ));
            }
        }
        let echo =
            (self.ppp_echo_interval.is_some() || self.ppp_echo_failure.is_some()).then(|| {
                (
                    Duration::from_secs(self.ppp_echo_interval.unwrap_or(10).max(1)),
                    self.ppp_echo_failure.unwrap_or(3).max(1),
                )
            });
        let number = |key: &'static str, v: &Option<Spanned<String>>| match v {
            Some(n) if version != Version::V2 => Err(at(
                n.span(),
                key,
                "is an L2TPv2 AVP: needs version = 2".into(),
            )),
            Some(n) if n.get_ref().is_empty() || n.get_ref().len() > 253 => {
                Err(at(n.span(), key, "must be 1 to 253 characters".into()))
            }
            Some(n) => Ok(n.get_ref().clone()),
            None => Ok(String::new()),
        };
        let radius = self.radius.as_ref().is_some_and(|r| *r.get_ref());
        if let (Some(r), true, None) = (&self.radius, radius, &user) {
            return Err(at(
                r.span(),
                "radius",
                "needs user and password (the Access-Request is for the user)".into(),
            ));
        }
        let calling_number = number("calling_number", &self.calling_number)?;
        let called_number = number("called_number", &self.called_number)?;
        Ok(LacProfile {
            name,
            lns,
            version,
            encap,
            host_name: self.host_name.clone(),
            secret,
            hide_avps: self.hide_avps,
            hello_interval: self.hello_interval.map(|h| Duration::from_secs(h.max(1))),
            max_retries: self.max_retries,
            user,
            echo,
            ipv6_default_route: self.ppp_ipv6_default_route.as_ref().map(|v| *v.get_ref()),
            ipv6_pd: self.ppp_ipv6_pd.as_ref().map(|v| *v.get_ref()),
            autodial: self.autodial,
            redial: self.redial,
            redial_timeout,
            max_redials: self.max_redials.unwrap_or(0),
            sessions,
            pw_type,
            calling_number,
            called_number,
            radius,
        })
    }
}

/// Check every `[[lac]]` table (names unique).
pub fn check_all(
    tables: &[LacConfig],
    control: Option<Listeners>,
    err: &dyn Fn(Range<usize>, &str, String) -> ConfigError,
) -> Result<Vec<LacProfile>, ConfigError> {
    let mut seen = BTreeMap::new();
    let mut out = Vec::new();
    for t in tables {
        let p = t.check(control, err)?;
        if seen.insert(p.name.clone(), ()).is_some() {
            return Err(err(
                t.name.span(),
                "name",
                format!("[[lac]] {:?} is declared twice", p.name),
            ));
        }
        out.push(p);
    }
    Ok(out)
}

/// The error a tunnel or session that went down reports: errno and cause.
pub(crate) fn down_error(
    what: &str,
    peer: &(dyn std::fmt::Display + Sync),
    reason: &DownReason,
) -> ApiError {
    let code = |rc: u16, ec: Option<u16>, msg: &str| {
        let mut t = format!("result code {rc}");
        if let Some(ec) = ec {
            t.push_str(&format!(", error code {ec}"));
        }
        if !msg.is_empty() {
            t.push_str(&format!(" ({msg:?})"));
        }
        t
    };
    match reason {
        DownReason::Peer {
            result_code,
            error_code,
            message,
        } => {
            let m = if what == "session" { "CDN" } else { "StopCCN" };
            ApiError::new(
                Errno::ECONNREFUSED,
                format!(
                    "{what} closed by {peer}: {m} {}",
                    code(*result_code, *error_code, message)
                ),
            )
        }
        DownReason::Timeout => ApiError::new(
            Errno::ETIMEDOUT,
            format!("{what}: no answer from {peer} (retransmissions exhausted)"),
        ),
        DownReason::AuthFailed => ApiError::new(
            Errno::EACCES,
            format!("{what}: tunnel authentication with {peer} failed (secret?)"),
        ),
        DownReason::Protocol {
            result_code,
            error_code,
            message,
        } => ApiError::new(
            Errno::EIO,
            format!(
                "{what} with {peer} aborted: protocol error, we sent {}",
                code(*result_code, *error_code, message)
            ),
        ),
        DownReason::TieBreakLost => ApiError::new(
            Errno::EALREADY,
            format!("{what}: {peer} won the tunnel tie-break"),
        ),
        DownReason::Local => ApiError::new(Errno::EIO, format!("{what} closed locally")),
        DownReason::TunnelDown => ApiError::new(
            Errno::EIO,
            format!("{what}: the tunnel to {peer} went down"),
        ),
    }
}

/// The next event (skipping over a backlog overflow); `None` when the control plane stopped.
async fn next_event(events: &mut broadcast::Receiver<Event>) -> Option<Event> {
    loop {
        match events.recv().await {
            Ok(e) => return Some(e),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!("lac: {n} control events missed");
            }
            Err(broadcast::error::RecvError::Closed) => return None,
        }
    }
}

fn stopped() -> ApiError {
    ApiError::new(Errno::EIO, "control plane stopped")
}

/// Why tunnel `tid` went down, if the event is already queued.
fn down_already(
    events: &mut broadcast::Receiver<Event>,
    tid: u32,
    peer: &(dyn std::fmt::Display + Sync),
) -> Option<ApiError> {
    loop {
        match events.try_recv() {
            Ok(Event::TunnelDown {
                tunnel_id, reason, ..
            }) if tunnel_id == tid => {
                return Some(down_error("control connection", &peer, &reason))
            }
            Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) => {}
            Err(_) => return None,
        }
    }
}

/// The peer's reason for clearing session `sid` of tunnel `tid` (CDN, StopCCN, no answer),
/// if that event comes within a moment; `None` when the session went for a local reason or
/// nothing comes.
async fn peer_cause_soon(
    events: &mut broadcast::Receiver<Event>,
    tid: u32,
    sid: u32,
    peer: &(dyn std::fmt::Display + Sync),
) -> Option<ApiError> {
    let remote = |r: &DownReason| !matches!(r, DownReason::Local | DownReason::TunnelDown);
    let find = async {
        loop {
            match next_event(events).await? {
                Event::SessionDown {
                    tunnel_id,
                    session_id,
                    reason,
                    ..
                } if tunnel_id == tid && session_id == sid && reason != DownReason::TunnelDown => {
                    return remote(&reason).then(|| down_error("session", &peer, &reason));
                }
                Event::TunnelDown {
                    tunnel_id, reason, ..
                } if tunnel_id == tid => {
                    return remote(&reason)
                        .then(|| down_error("control connection", &peer, &reason));
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_millis(500), find)
        .await
        .ok()
        .flatten()
}

/// Wait until tunnel `tid` is established or gone.
pub(crate) async fn wait_tunnel(
    cp: &ControlPlane,
    events: &mut broadcast::Receiver<Event>,
    tid: u32,
    peer: SocketAddr,
) -> ApiResult<()> {
    let down = |reason: &DownReason| down_error("control connection", &peer, reason);
    loop {
        match next_event(events).await.ok_or_else(stopped)? {
            Event::TunnelUp(i) if i.tunnel_id == tid => break,
            Event::TunnelDown {
                tunnel_id, reason, ..
            } if tunnel_id == tid => return Err(down(&reason)),
            _ => {}
        }
    }
    // Up for the engine once our SCCCN is queued (RFC 2661 §7.2, RFC 3931 §7.2: the
    // initiator is established when it sends the SCCCN). The peer may still refuse it (a
    // wrong answer to its Challenge: StopCCN 4), so the wait ends when the peer has
    // acknowledged it with the tunnel still established; a StopCCN in answer ends it with
    // its cause. Retransmissions that run out close the tunnel (TunnelDown) as well.
    loop {
        match cp.confirmed(tid).await? {
            crate::control::Confirmation::Acknowledged => return Ok(()),
            crate::control::Confirmation::Pending => {}
            crate::control::Confirmation::Down => loop {
                match next_event(events).await.ok_or_else(stopped)? {
                    Event::TunnelDown {
                        tunnel_id, reason, ..
                    } if tunnel_id == tid => return Err(down(&reason)),
                    _ => {}
                }
            },
        }
        tokio::select! {
            e = next_event(events) => match e.ok_or_else(stopped)? {
                Event::TunnelDown {
                    tunnel_id, reason, ..
                } if tunnel_id == tid => return Err(down(&reason)),
                _ => {}
            },
            () = tokio::time::sleep(CONFIRM_POLL) => {}
        }
    }
}

/// How often a wait for a tunnel we opened asks whether the peer acknowledged our SCCCN.
const CONFIRM_POLL: Duration = Duration::from_millis(20);

/// Wait until session `sid` of tunnel `tid` is established or gone.
pub(crate) async fn wait_session(
    events: &mut broadcast::Receiver<Event>,
    tid: u32,
    sid: u32,
    peer: &(dyn std::fmt::Display + Sync),
) -> ApiResult<()> {
    loop {
        match next_event(events).await.ok_or_else(stopped)? {
            Event::SessionUp(i) if i.tunnel_id == tid && i.session_id == sid => return Ok(()),
            // Because the tunnel went down: its TunnelDown (next) says why.
            Event::SessionDown {
                tunnel_id,
                session_id,
                reason,
                ..
            } if tunnel_id == tid && session_id == sid && reason != DownReason::TunnelDown => {
                return Err(down_error("session", &peer, &reason))
            }
            Event::TunnelDown {
                tunnel_id, reason, ..
            } if tunnel_id == tid => return Err(down_error("control connection", &peer, &reason)),
            _ => {}
        }
    }
}

/// A request to a call.
#[derive(Debug)]
enum Req {
    Dial {
        wait: Option<oneshot::Sender<ApiResult<Attrs>>>,
    },
    Hangup {
        reply: oneshot::Sender<ApiResult<()>>,
    },
}

/// A profile's call task and what it reads its settings from.
#[derive(Debug)]
struct Entry {
    tx: mpsc::Sender<Req>,
    /// What the call is doing (`ul2tp show lac`).
    status: Arc<std::sync::Mutex<Status>>,
    /// The profile, replaced by a reload; read at the start of each attempt.
    profile: Arc<std::sync::Mutex<LacProfile>>,
    _task: Task,
}

/// What a call is doing.
#[derive(Debug, Clone, Default)]
struct Status {
    /// `idle`, `dialing`, `up`, `waiting` (to redial).
    state: &'static str,
    /// The LNS being dialled or carrying the call.
    peer: Option<SocketAddr>,
    /// Whether it is reached over L2TPv3/IP (no port).
    ip: bool,
    /// The call's tunnel and first session when up.
    ids: Option<(u32, Option<u32>)>,
    /// Why the last attempt failed or the call went down.
    cause: Option<String>,
}

impl Status {
    fn attrs(&self, name: &str) -> Attrs {
        let mut a = Attrs {
            profile: Some(name.to_string()),
            call_state: Some(
                if self.state.is_empty() {
                    "idle"
                } else {
                    self.state
                }
                .to_string(),
            ),
            call_cause: self.cause.clone(),
            conn_id: self.ids.map(|i| i.0),
            session_id: self.ids.and_then(|i| i.1),
            ..Attrs::default()
        };
        match self.peer {
            Some(SocketAddr::V4(p)) => a.ip_daddr = Some(*p.ip()),
            Some(SocketAddr::V6(p)) => a.ip6_daddr = Some(*p.ip()),
            None => {}
        }
        if let Some(p) = self.peer {
            if self.ip {
                a.encap_type = Some(ul2tp_api::encap_type::IP);
            } else {
                a.udp_dport = Some(p.port());
            }
        }
        a
    }
}

/// What a reload changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReloadSummary {
    /// New profiles (dialled now when `autodial`).
    pub(crate) added: usize,
    /// Profiles gone from the file (their calls hung up).
    pub(crate) removed: usize,
    /// Profiles whose settings changed (in force from the next attempt).
    pub(crate) changed: usize,
}

/// An LNS to dial: its address, the tunnel secret RADIUS gave (Tunnel-Password) and the
/// Tunnel-Assignment-Id.
type Target = (SocketAddr, Option<Secret>, Option<String>);

/// The configured calls.
#[derive(Debug)]
pub(crate) struct Dialer {
    d: Weak<Store>,
    cp: Arc<ControlPlane>,
    calls: std::sync::Mutex<BTreeMap<String, Entry>>,
    /// The tunnels RADIUS-placed calls share (RFC 2868 §3.7).
    tunnels: Arc<shared::SharedTunnels>,
}

impl Dialer {
    /// Start one task per profile (dialling the `autodial` ones).
    pub(crate) fn start(
        d: Weak<Store>,
        cp: Arc<ControlPlane>,
        profiles: Vec<LacProfile>,
    ) -> Dialer {
        let dialer = Dialer {
            d,
            cp,
            calls: std::sync::Mutex::new(BTreeMap::new()),
            tunnels: Arc::default(),
        };
        for p in profiles {
            dialer.add(p);
        }
        dialer
    }

    /// Stop every call task (daemon shutdown): no redial while the tunnels are deleted.
    pub(crate) fn stop(&self) {
        self.calls().clear();
    }

    fn calls(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self, p: LacProfile) {
        let (tx, rx) = mpsc::channel(16);
        let profile = Arc::new(std::sync::Mutex::new(p.clone()));
        let status = Arc::new(std::sync::Mutex::new(Status::default()));
        let call = Call {
            p: p.clone(),
            shared: profile.clone(),
            status: status.clone(),
            d: self.d.clone(),
            cp: self.cp.clone(),
            tunnels: self.tunnels.clone(),
            rx,
            waiters: Vec::new(),
        };
        let entry = Entry {
            tx,
            status,
            profile,
            _task: Task(tokio::spawn(call.run())),
        };
        self.calls().insert(p.name, entry);
    }

    /// Apply the profiles of a re-read file (SIGHUP): new ones start (and dial when
    /// `autodial`), changed ones take their new settings at their next attempt (an
    /// established call is left as it is), removed ones are hung up.
    pub(crate) async fn reload(&self, profiles: Vec<LacProfile>) -> ReloadSummary {
        let mut sum = ReloadSummary::default();
        let wanted: BTreeMap<String, LacProfile> =
            profiles.into_iter().map(|p| (p.name.clone(), p)).collect();
        let gone: Vec<String> = self
            .calls()
            .keys()
            .filter(|n| !wanted.contains_key(*n))
            .cloned()
            .collect();
        for name in gone {
            tracing::info!("reload: [[lac]] {name:?} removed: hanging up its call");
            if tokio::time::timeout(Duration::from_secs(5), self.hangup(&name))
                .await
                .is_err()
            {
                tracing::warn!("reload: [[lac]] {name:?}: hangup did not finish");
            }
            self.calls().remove(&name);
            sum.removed += 1;
        }
        for (name, p) in wanted {
            let calls = self.calls();
            match calls.get(&name) {
                Some(e) => {
                    let mut cur = e.profile.lock().unwrap_or_else(|e| e.into_inner());
                    if *cur != p {
                        tracing::info!(
                            "reload: [[lac]] {name:?} changed; in force from its next attempt"
                        );
                        *cur = p;
                        sum.changed += 1;
                    }
                }
                None => {
                    drop(calls);
                    tracing::info!("reload: [[lac]] {name:?} added");
                    self.add(p);
                    sum.added += 1;
                }
            }
        }
        sum
    }

    /// The state of the call `name`, or of every call.
    pub(crate) fn status(&self, name: Option<&str>) -> ApiResult<Vec<Attrs>> {
        let calls = self.calls();
        let get = |n: &str, e: &Entry| e.status.lock().unwrap_or_else(|e| e.into_inner()).attrs(n);
        match name {
            Some(n) => calls
                .get(n)
                .map(|e| vec![get(n, e)])
                .ok_or_else(|| no_profile(n)),
            None => Ok(calls.iter().map(|(n, e)| get(n, e)).collect()),
        }
    }

    fn call(&self, name: &str) -> ApiResult<mpsc::Sender<Req>> {
        self.calls()
            .get(name)
            .map(|e| e.tx.clone())
            .ok_or_else(|| no_profile(name))
    }

    /// Dial `name`; with `wait`, answered once the call is up or the attempt failed.
    pub(crate) async fn dial(&self, name: &str, wait: bool) -> ApiResult<Attrs> {
        let call = self.call(name)?;
        let (tx, rx) = oneshot::channel();
        let req = Req::Dial {
            wait: wait.then_some(tx),
        };
        call.send(req).await.map_err(|_| stopped())?;
        if !wait {
            return Ok(Attrs::default());
        }
        rx.await.map_err(|_| stopped())?
    }

    /// Hang up `name`.
    pub(crate) async fn hangup(&self, name: &str) -> ApiResult<()> {
        let call = self.call(name)?;
        let (reply, rx) = oneshot::channel();
        call.send(Req::Hangup { reply })
            .await
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

fn no_profile(name: &str) -> ApiError {
    ApiError::new(
        Errno::ENOENT,
        format!("no [[lac]] profile named {name:?} in the configuration"),
    )
}

/// How an attempt ended.
enum Outcome {
    /// `ul2tp hangup`.
    HungUp,
    /// Failed (or went down after being up).
    Failed { err: ApiError, was_up: bool },
    /// The daemon is stopping.
    Stopped,
}

/// What came first while waiting.
enum Step<T> {
    Got(T),
    Hangup(oneshot::Sender<ApiResult<()>>),
    /// A `dial` while waiting to redial: dial now.
    Dial,
    Stopped,
}

struct Call {
    /// The settings of the current attempt.
    p: LacProfile,
    /// The latest settings (a reload replaces them).
    shared: Arc<std::sync::Mutex<LacProfile>>,
    /// What the call is doing, for `ul2tp show lac`.
    status: Arc<std::sync::Mutex<Status>>,
    d: Weak<Store>,
    cp: Arc<ControlPlane>,
    /// The tunnels shared between RADIUS-placed calls.
    tunnels: Arc<shared::SharedTunnels>,
    rx: mpsc::Receiver<Req>,
    /// `dial ... wait` requests to answer when the call is up or the attempt failed.
    waiters: Vec<oneshot::Sender<ApiResult<Attrs>>>,
}

/// Run `fut` while answering requests: a `dial` queues its waiter (answered at once when
/// `up` is given: the call is up); a `hangup` interrupts.
async fn until<T>(
    rx: &mut mpsc::Receiver<Req>,
    waiters: &mut Vec<oneshot::Sender<ApiResult<Attrs>>>,
    up: Option<&Attrs>,
    dial_wakes: bool,
    fut: impl Future<Output = T>,
) -> Step<T> {
    tokio::pin!(fut);
    loop {
        tokio::select! {
            v = &mut fut => return Step::Got(v),
            r = rx.recv() => match r {
                None => return Step::Stopped,
                Some(Req::Hangup { reply }) => return Step::Hangup(reply),
                Some(Req::Dial { wait }) => {
                    match (wait, up) {
                        (Some(w), Some(a)) => { let _ = w.send(Ok(a.clone())); }
                        (Some(w), None) => waiters.push(w),
                        (None, _) => {}
                    }
                    if dial_wakes {
                        return Step::Dial;
                    }
                }
            },
        }
    }
}

impl Call {
    async fn run(mut self) {
        let name = self.p.name.clone();
        let mut want = self.p.autodial;
        loop {
            if !want {
                match self.rx.recv().await {
                    None => return,
                    Some(Req::Dial { wait }) => {
                        want = true;
                        self.waiters.extend(wait);
                    }
                    Some(Req::Hangup { reply }) => {
                        let _ = reply.send(Ok(()));
                    }
                }
                continue;
            }
            self.refresh();
            let mut redials = 0u32;
            let mut backoff = self.p.redial_timeout;
            loop {
                self.refresh();
                match self.attempt().await {
                    Outcome::Stopped => return,
                    Outcome::HungUp => {
                        self.set(|s| *s = Status::default());
                        tracing::info!("lac {name}: hung up");
                        self.answer(Err(ApiError::new(Errno::EIO, "hung up")));
                        want = false;
                        break;
                    }
                    Outcome::Failed { err, was_up } => {
                        tracing::warn!("lac {name}: call down: {}", err.message);
                        let cause = err.message.clone();
                        self.set(|s| {
                            *s = Status {
                                state: "idle",
                                cause: Some(cause),
                                ..Status::default()
                            }
                        });
                        self.answer(Err(err));
                        if was_up {
                            redials = 0;
                            backoff = self.p.redial_timeout;
                        }
                        if !self.p.redial {
                            want = false;
                            break;
                        }
                        if self.p.max_redials > 0 && redials >= self.p.max_redials {
                            tracing::warn!(
                                "lac {name}: giving up after {redials} redials (max_redials)"
                            );
                            want = false;
                            break;
                        }
                        redials += 1;
                        self.set(|s| s.state = "waiting");
                        tracing::info!(
                            "lac {name}: redial {redials} in {:.1} s",
                            backoff.as_secs_f64()
                        );
                        let sleep = tokio::time::sleep(backoff);
                        match until(&mut self.rx, &mut self.waiters, None, true, sleep).await {
                            Step::Got(()) | Step::Dial => {}
                            Step::Hangup(reply) => {
                                let _ = reply.send(Ok(()));
                                self.set(|s| *s = Status::default());
                                tracing::info!("lac {name}: hung up (redial cancelled)");
                                want = false;
                                break;
                            }
                            Step::Stopped => return,
                        }
                        backoff = (backoff * 2).min(MAX_BACKOFF.max(self.p.redial_timeout));
                    }
                }
            }
        }
    }

    /// Change the status.
    fn set(&self, f: impl FnOnce(&mut Status)) {
        f(&mut self.status.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Take the latest settings (before an attempt: an established call keeps its own).
    fn refresh(&mut self) {
        self.p = self
            .shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
    }

    /// Answer the waiting `dial` requests.
    fn answer(&mut self, r: ApiResult<Attrs>) {
        for w in self.waiters.drain(..) {
            let _ = w.send(r.clone());
        }
    }

    /// One attempt: every LNS address in order until one takes the call.
    async fn attempt(&mut self) -> Outcome {
        let name = self.p.name.clone();
        let mut last = ApiError::new(Errno::EINVAL, "no LNS address");
        let mut targets: Vec<Target> = self.p.lns.iter().map(|a| (*a, None, None)).collect();
        if self.p.radius {
            match self.radius_targets().await {
                Ok(Some(t)) => targets = t,
                Ok(None) => tracing::info!(
                    "lac {name}: the RADIUS Access-Accept names no L2TP tunnel: dialing lns"
                ),
                Err(e) => {
                    tracing::warn!("lac {name}: RADIUS: {e}");
                    return Outcome::Failed {
                        err: ApiError::new(Errno::EACCES, format!("RADIUS: {e}")),
                        was_up: false,
                    };
                }
            }
        }
        let ip = self.p.encap == Encap::Ip;
        for (peer, secret, assignment) in targets {
            let mut events = self.cp.events();
            // RADIUS named the tunnel: one of the same LNS, Assignment-Id and password is
            // joined (RFC 2868 §3.7).
            let key = self.p.radius.then(|| shared::TunnelKey {
                peer,
                version: self.p.version,
                encap: self.p.encap,
                assignment_id: assignment,
                secret: secret.as_ref().map(|s| s.0.clone()),
            });
            let alive = |tid| {
                self.d
                    .upgrade()
                    .is_some_and(|d| d.registry.tunnel_get(tid).is_some())
            };
            if let Some(m) = key.as_ref().and_then(|k| self.tunnels.join(k, alive)) {
                let tid = m.tid();
                tracing::info!(
                    "lac {name}: joining tunnel {tid} to {peer} (same RADIUS tunnel attributes)"
                );
                self.set(|s| {
                    s.state = "dialing";
                    s.peer = Some(peer);
                    s.ip = ip;
                    s.ids = None;
                });
                return self.establish(peer, tid, events, Some(m)).await;
            }
            tracing::info!("lac {name}: dialing {peer}");
            self.set(|s| {
                s.state = "dialing";
                s.peer = Some(peer);
                s.ip = ip;
                s.ids = None;
            });
            let tid = match self
                .cp
                .connect_with(peer, self.p.encap, self.p.tune(secret))
                .await
            {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!("lac {name}: {peer}: {}", e.message);
                    last = e;
                    continue;
                }
            };
            let up = wait_tunnel(&self.cp, &mut events, tid, peer);
            match until(&mut self.rx, &mut self.waiters, None, false, up).await {
                Step::Got(Ok(())) => {}
                Step::Got(Err(e)) => {
                    tracing::warn!("lac {name}: {peer}: {}", e.message);
                    last = e;
                    continue;
                }
                Step::Hangup(reply) => {
                    let _ = self.cp.close(tid, None).await;
                    let _ = reply.send(Ok(()));
                    return Outcome::HungUp;
                }
                Step::Dial => {}
                Step::Stopped => return Outcome::Stopped,
            }
            let member = key.and_then(|k| self.tunnels.register(k, tid));
            return self.establish(peer, tid, events, member).await;
        }
        Outcome::Failed {
            err: last,
            was_up: false,
        }
    }

    /// The LNS addresses (and tunnel secrets) RADIUS gives the profile's user, in order of
    /// preference; `None` when the Access-Accept names no usable L2TP tunnel.
    async fn radius_targets(&self) -> Result<Option<Vec<Target>>, String> {
        let name = &self.p.name;
        let radius = self
            .d
            .upgrade()
            .and_then(|d| d.ops.radius.load_full())
            .ok_or("no [radius] client")?;
        let (user, password) = self.p.user.as_ref().ok_or("no user")?;
        let list = radius
            .tunnel_lookup(user.as_bytes(), password.0.as_bytes())
            .await?;
        let mut out = Vec::new();
        for t in list {
            match parse_lns(&t.endpoint, self.p.lns.first().map_or(1701, |a| a.port())) {
                Ok(a) => {
                    tracing::info!(
                        "lac {name}: RADIUS tunnel to {a} (preference {}{})",
                        t.preference,
                        t.assignment_id
                            .as_ref()
                            .map(|i| format!(", assignment {i:?}"))
                            .unwrap_or_default()
                    );
                    let secret = t
                        .password
                        .map(|p| Secret(String::from_utf8_lossy(&p).into_owned()));
                    out.push((a, secret, t.assignment_id));
                }
                Err(e) => tracing::warn!(
                    "lac {name}: RADIUS Tunnel-Server-Endpoint {:?} skipped: {e}",
                    t.endpoint
                ),
            }
        }
        Ok((!out.is_empty()).then_some(out))
    }

    /// End the call's part of tunnel `tid`: its sessions `sids` when other calls share the
    /// tunnel, else the tunnel.
    async fn release(&self, tid: u32, sids: &[u32]) {
        if self.tunnels.others(tid) {
            for &sid in sids {
                let _ = self.cp.close(tid, Some(sid)).await;
            }
        } else {
            let _ = self.cp.close(tid, None).await;
        }
    }

    /// The tunnel `tid` to `peer` is up: place the sessions, bring PPP up on each, and hold
    /// the call until it goes down or is hung up. `_member`: the call's place in a shared
    /// tunnel, left when the call ends.
    async fn establish(
        &mut self,
        peer: SocketAddr,
        tid: u32,
        mut events: broadcast::Receiver<Event>,
        _member: Option<shared::Member>,
    ) -> Outcome {
        let name = self.p.name.clone();
        // The call's sessions, each from when it was placed.
        let mut sids = Vec::new();
        macro_rules! step {
            ($e:expr) => {
                match until(&mut self.rx, &mut self.waiters, None, false, $e).await {
                    Step::Got(Ok(v)) => v,
                    Step::Got(Err(e)) => {
                        self.release(tid, &sids).await;
                        return Outcome::Failed {
                            err: e,
                            was_up: false,
                        };
                    }
                    Step::Hangup(reply) => {
                        self.release(tid, &sids).await;
                        let _ = reply.send(Ok(()));
                        return Outcome::HungUp;
                    }
                    Step::Dial => unreachable!("dial does not interrupt"),
                    Step::Stopped => return Outcome::Stopped,
                }
            };
        }
        for _ in 0..self.p.sessions {
            let cfg = ul2tp_control::SessionConfig {
                pw_type: self.p.pw_type,
                calling_number: self.p.calling_number.clone().into_bytes(),
                remote_end_id: self.p.called_number.clone().into_bytes(),
                ..ul2tp_control::SessionConfig::default()
            };
            let sid = self.cp.session(tid, cfg, None, None).await;
            // Refused because the tunnel is closing: the peer's StopCCN is the cause.
            let sid = sid.map_err(|e| down_already(&mut events, tid, &peer).unwrap_or(e));
            let sid = step!(async { sid });
            sids.push(sid);
            step!(wait_session(&mut events, tid, sid, &peer));
            if self.p.pw_type != PwType::Ppp {
                // A pseudowire: up with its session (the device exists).
                continue;
            }
            let ppp = start_ppp(self.d.clone(), self.ppp_setup(), tid, sid);
            let ready = step!(ppp);
            let ev = &mut events;
            step!(async move {
                match crate::pppd::wait_ready(ready).await {
                    Ok(()) => Ok(()),
                    // Authentication failed: PPP's reason is the cause.
                    Err(e) if e.errno == Errno::EACCES => {
                        Err(ApiError::new(e.errno, format!("PPP: {}", e.message)))
                    }
                    // The peer clearing the call stops PPP too: its CDN / StopCCN says why.
                    Err(e) => Err(peer_cause_soon(ev, tid, sid, &peer)
                        .await
                        .unwrap_or_else(|| ApiError::new(e.errno, format!("PPP: {}", e.message)))),
                }
            });
        }
        let up = Attrs {
            conn_id: Some(tid),
            session_id: sids.first().copied(),
            ..Attrs::default()
        };
        tracing::info!("lac {name}: call up via {peer}: tunnel {tid}, sessions {sids:?}");
        self.answer(Ok(up.clone()));
        self.set(|s| {
            s.state = "up";
            s.ids = Some((tid, sids.first().copied()));
            s.cause = None;
        });
        loop {
            // `None` now and then: a look at the data path, in case events were missed.
            let ev = tokio::time::timeout(CHECK_EVERY, next_event(&mut events));
            let ev = async { ev.await.ok() };
            let ev = match until(&mut self.rx, &mut self.waiters, Some(&up), false, ev).await {
                Step::Got(Some(e)) => Step::Got(e),
                Step::Got(None) => {
                    if self.still_there(tid, &sids) {
                        continue;
                    }
                    self.release(tid, &sids).await;
                    return Outcome::Failed {
                        err: ApiError::new(
                            Errno::EIO,
                            format!("the call's tunnel {tid} or a session of it is gone"),
                        ),
                        was_up: true,
                    };
                }
                Step::Hangup(r) => Step::Hangup(r),
                Step::Dial => Step::Dial,
                Step::Stopped => Step::Stopped,
            };
            match ev {
                Step::Got(None) | Step::Stopped => return Outcome::Stopped,
                Step::Got(Some(Event::TunnelDown {
                    tunnel_id, reason, ..
                })) if tunnel_id == tid => {
                    return Outcome::Failed {
                        err: down_error("control connection", &peer, &reason),
                        was_up: true,
                    }
                }
                Step::Got(Some(Event::SessionDown {
                    tunnel_id,
                    session_id,
                    reason,
                    ..
                })) if tunnel_id == tid && sids.contains(&session_id) => {
                    self.release(tid, &sids).await;
                    return Outcome::Failed {
                        err: down_error("session", &peer, &reason),
                        was_up: true,
                    };
                }
                Step::Got(Some(_)) | Step::Dial => {}
                Step::Hangup(reply) => {
                    self.release(tid, &sids).await;
                    let _ = reply.send(Ok(()));
                    return Outcome::HungUp;
                }
            }
        }
    }

    /// Whether tunnel `tid` and sessions `sids` are still in the data path.
    fn still_there(&self, tid: u32, sids: &[u32]) -> bool {
        self.d.upgrade().is_some_and(|d| {
            d.registry.tunnel_get(tid).is_some()
                && sids
                    .iter()
                    .all(|&sid| d.registry.session_get(tid, sid).is_some())
        })
    }

    /// The PPP client settings of the profile.
    fn ppp_setup(&self) -> crate::pppd::PppSetup {
        // The profile's IPv6 keys, else `[control]`'s.
        let base = self.cp.ipv6_client();
        let ipv6_client = crate::ppp_ipv6::ClientV6 {
            default_route: self.p.ipv6_default_route.unwrap_or(base.default_route),
            prefix_delegation: self.p.ipv6_pd.unwrap_or(base.prefix_delegation),
        };
        crate::pppd::PppSetup {
            user: self.p.user.clone().map(|(u, p)| (u, p.0)),
            auth_name: Some(
                self.p
                    .host_name
                    .clone()
                    .unwrap_or_else(|| self.cp.host_name().to_string()),
            ),
            echo: self.p.echo,
            ipv6_client,
            ..Default::default()
        }
    }
}

/// Start the PPP client on session `sid` of tunnel `tid`.
async fn start_ppp(
    d: Weak<Store>,
    setup: crate::pppd::PppSetup,
    tid: u32,
    sid: u32,
) -> ApiResult<crate::pppd::Ready> {
    let d = d.upgrade().ok_or_else(stopped)?;
    let mut ctl = d.ctl.lock().await;
    let s = d
        .registry
        .session_get(tid, sid)
        .ok_or_else(|| ApiError::new(Errno::ENODEV, format!("session {tid}/{sid} is gone")))?;
    crate::pppd::start(&d, &mut ctl, s, setup)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<Vec<LacProfile>, ConfigError> {
        crate::config::Config::check(Path::new("t.toml"), text).map(|c| c.lac)
    }

    const CONTROL: &str = "[control]\nlisten = \"127.0.0.1:1701\"\n";

    #[test]
    fn encap_ip_needs_version_3_and_a_listener_of_the_family() {
        let lac = "[[lac]]\nname = \"isp\"\nversion = 3\nencap = \"ip\"\n";
        let p = check(&format!(
            "{CONTROL}listen_ip = [\"0.0.0.0\", \"::\"]\n{lac}lns = [\"192.0.2.1\", \"[2001:db8::1]:9\"]\n"
        ))
        .unwrap();
        assert_eq!((p[0].encap, p[0].version), (Encap::Ip, Version::V3));
        // No L2TPv3/IP listener at all, then none for IPv6.
        let e = check(&format!("{CONTROL}{lac}lns = \"192.0.2.1\"\n")).unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(6), Some("encap")));
        assert!(
            e.to_string().contains(
                "192.0.2.1: no L2TPv3/IP control listener for IPv4: add one with [control] listen_ip"
            ),
            "{e}"
        );
        let e = check(&format!(
            "{CONTROL}listen_ip = [\"0.0.0.0\"]\n{lac}lns = [\"192.0.2.1\", \"2001:db8::1\"]\n"
        ))
        .unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(7), Some("encap")));
        assert!(
            e.to_string()
                .contains("2001:db8::1: no L2TPv3/IP control listener for IPv6"),
            "{e}"
        );
        // UDP: an IPv6 LNS needs an IPv6 UDP listener (listen is IPv4 here).
        let e = check(&format!(
            "{CONTROL}[[lac]]\nname = \"isp\"\nlns = \"[2001:db8::1]:1701\"\n"
        ))
        .unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(5), Some("lns")));
        assert!(
            e.to_string().contains("add one with [control] listen_udp"),
            "{e}"
        );
        let p = check(&format!(
            "{CONTROL}listen_udp = [\"[::]:1701\"]\n[[lac]]\nname = \"isp\"\nlns = \"2001:db8::1\"\nencap = \"udp\"\n"
        ))
        .unwrap();
        assert_eq!(p[0].encap, Encap::Udp);
    }

    #[test]
    fn profile_keys_and_defaults() {
        let p = check(&format!(
            "{CONTROL}listen_udp = [\"[::]:1701\"]\n[[lac]]\nname = \"isp\"\nlns = [\"192.0.2.1\", \"192.0.2.2:1702\", \"[2001:db8::1]:9\"]\nport = 1800\nversion = 3\nuser = \"alice\"\npassword = \"pw\"\nautodial = true\nredial = true\nredial_timeout = 0.5\nmax_redials = 4\nsessions = 2\nmax_retries = 2\n"
        ))
        .unwrap();
        let p = &p[0];
        assert_eq!(
            p.lns,
            vec![
                "192.0.2.1:1800".parse().unwrap(),
                "192.0.2.2:1702".parse().unwrap(),
                "[2001:db8::1]:9".parse().unwrap()
            ]
        );
        assert_eq!(p.version, Version::V3);
        assert_eq!(p.user.as_ref().map(|u| u.0.as_str()), Some("alice"));
        assert!(p.autodial && p.redial);
        assert_eq!(p.redial_timeout, Duration::from_millis(500));
        assert_eq!((p.max_redials, p.sessions, p.max_retries), (4, 2, Some(2)));
        // The password never shows in debug output (logs).
        assert!(!format!("{p:?}").contains("pw\""), "{p:?}");
        let d = &check(&format!(
            "{CONTROL}[[lac]]\nname = \"a\"\nlns = \"192.0.2.1\"\n"
        ))
        .unwrap()[0];
        assert_eq!(d.lns, vec!["192.0.2.1:1701".parse().unwrap()]);
        assert_eq!(d.version, Version::V2);
        assert_eq!((d.autodial, d.redial, d.sessions), (false, false, 1));
        assert_eq!(d.redial_timeout, Duration::from_secs(5));
    }

    /// `calling_number` / `called_number` (L2TPv2 only) and `radius` (needs a user and a
    /// `[radius]` table) name their line and key.
    #[test]
    fn numbers_and_radius_keys() {
        let base = format!("{CONTROL}[[lac]]\nname = \"isp\"\nlns = \"192.0.2.1\"\n");
        let p = check(&format!(
            "{base}calling_number = \"5551234\"\ncalled_number = \"100\"\n"
        ))
        .unwrap();
        assert_eq!(
            (p[0].calling_number.as_str(), p[0].called_number.as_str()),
            ("5551234", "100")
        );
        let e = check(&format!("{base}version = 3\ncalling_number = \"1\"\n")).unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(7), Some("calling_number")),
            "{e}"
        );
        let e = check(&format!("{base}called_number = \"\"\n")).unwrap_err();
        assert_eq!(
            (e.line, e.key.as_deref()),
            (Some(6), Some("called_number")),
            "{e}"
        );
        let e = check(&format!("{base}radius = true\n")).unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(6), Some("radius")), "{e}");
        assert!(e.to_string().contains("needs user"), "{e}");
        let e = check(&format!(
            "{base}radius = true\nuser = \"u\"\npassword = \"p\"\n"
        ))
        .unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(6), Some("radius")), "{e}");
        assert!(e.to_string().contains("[radius] table"), "{e}");
        let ok = check(&format!(
            "{base}radius = true\nuser = \"u\"\npassword = \"p\"\n\
             [radius]\nserver = \"127.0.0.1\"\nsecret = \"s\"\n"
        ))
        .unwrap();
        assert!(ok[0].radius);
    }

    #[test]
    fn bad_profiles_name_line_and_key() {
        let e = check(&format!(
            "{CONTROL}[[lac]]\nname = \"isp\"\nlns = \"192.0.2.1\"\npw_type = \"eth\"\n"
        ))
        .unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(6), Some("pw_type")));
        assert!(e.to_string().contains("version = 3"), "{e}");
        let ok = check(&format!(
            "{CONTROL}[[lac]]\nname = \"isp\"\nlns = \"192.0.2.1\"\nversion = 3\npw_type = \"eth\"\n"
        ))
        .unwrap();
        assert_eq!(ok[0].pw_type, PwType::Ethernet);
        let e = check("[[lac]]\nname = \"isp\"\nlns = \"192.0.2.1\"\n").unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(2), Some("name")));
        assert!(e.to_string().contains("[control]"), "{e}");
        let e = check(&format!(
            "{CONTROL}[[lac]]\nname = \"isp\"\nlns = \"lns.example\"\n"
        ))
        .unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(5), Some("lns")));
        let e = check(&format!(
            "{CONTROL}[[lac]]\nname = \"isp\"\nlns = \"192.0.2.1\"\nversion = 4\n"
        ))
        .unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(6), Some("version")));
        let e = check(&format!(
            "{CONTROL}[[lac]]\nname = \"isp\"\nlns = \"192.0.2.1\"\nencap = \"ip\"\n"
        ))
        .unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(6), Some("encap")));
        assert!(e.to_string().contains("needs version = 3"), "{e}");
        let e = check(&format!(
            "{CONTROL}[[lac]]\nname = \"isp\"\nlns = \"192.0.2.1\"\nuser = \"u\"\n"
        ))
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("user"));
        let e = check(&format!(
            "{CONTROL}[[lac]]\nname = \"isp\"\nlns = \"192.0.2.1\"\nsessions = 0\n"
        ))
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("sessions"));
        let e = check(&format!("{CONTROL}[[lac]]\nname = \"isp\"\nlns = \"192.0.2.1\"\n[[lac]]\nname = \"isp\"\nlns = \"192.0.2.1\"\n")).unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(7), Some("name")));
        let e = check(&format!(
            "{CONTROL}[[lac]]\nname = \"isp\"\nlns = \"192.0.2.1\"\nbogus = 1\n"
        ))
        .unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(6), Some("bogus")));
    }

    #[test]
    fn ipv6_keys_of_a_profile() {
        let p = check(&format!(
            "{CONTROL}[[lac]]\nname = \"isp\"\nlns = \"192.0.2.1\"\nppp_ipv6_default_route = true\nppp_ipv6_pd = false\n[[lac]]\nname = \"b\"\nlns = \"192.0.2.1\"\n"
        ))
        .unwrap();
        assert_eq!(
            (p[0].ipv6_default_route, p[0].ipv6_pd),
            (Some(true), Some(false))
        );
        assert_eq!((p[1].ipv6_default_route, p[1].ipv6_pd), (None, None));
        let e = check(&format!(
            "{CONTROL}[[lac]]\nname = \"isp\"\nlns = \"192.0.2.1\"\nversion = 3\npw_type = \"eth\"\nppp_ipv6_pd = true\n"
        ))
        .unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(8), Some("ppp_ipv6_pd")));
    }

    #[test]
    fn password_file_must_be_private() {
        let dir = std::env::temp_dir().join(format!("ul2tp-lac-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("pw");
        std::fs::write(&f, "s3cret\n").unwrap();
        let text = format!(
            "{CONTROL}[[lac]]\nname = \"isp\"\nlns = \"192.0.2.1\"\nuser = \"u\"\npassword_file = \"{}\"\n",
            f.display()
        );
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = check(&text).unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (Some(7), Some("password_file")));
        let dir_text = text.replace(&f.display().to_string(), &dir.display().to_string());
        let not_file = check(&dir_text).unwrap_err();
        assert!(
            not_file.to_string().contains("is not a regular file"),
            "{not_file}"
        );
        let s = e.to_string();
        assert!(
            s.contains("mode 0644") && s.contains(&f.display().to_string()),
            "{s}"
        );
        assert!(!s.contains("s3cret"), "{s}");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let p = check(&text).unwrap();
        assert_eq!(p[0].user, Some(("u".into(), Secret("s3cret".into()))));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn secret_and_password_inline_or_from_a_file_not_both() {
        let dir = std::env::temp_dir().join(format!("ul2tp-lac-both-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("s");
        std::fs::write(&f, "t0ken\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let head = format!("{CONTROL}[[lac]]\nname = \"isp\"\nlns = \"192.0.2.1\"\nuser = \"u\"\n");
        let f = f.display();
        for key in ["secret", "password"] {
            let other = if key == "secret" {
                "password = \"p\"\n"
            } else {
                ""
            };
            let both = format!("{head}{other}{key} = \"x\"\n{key}_file = \"{f}\"\n");
            let e = check(&both).unwrap_err();
            let file_key = format!("{key}_file");
            assert_eq!(
                (e.line, e.key.as_deref()),
                (
                    Some(if other.is_empty() { 8 } else { 9 }),
                    Some(file_key.as_str())
                ),
                "{e}"
            );
            assert!(
                e.to_string()
                    .contains(&format!("give {key} or {key}_file, not both")),
                "{e}"
            );
            let from_file = format!("{head}{other}{key}_file = \"{f}\"\n");
            let p = check(&from_file).unwrap();
            let got = if key == "secret" {
                p[0].secret.clone()
            } else {
                p[0].user.clone().map(|u| u.1)
            };
            assert_eq!(got, Some(Secret("t0ken".into())), "{key}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn causes_name_the_peer_and_its_result_code() {
        let peer: SocketAddr = "192.0.2.2:1701".parse().unwrap();
        let r = DownReason::Peer {
            result_code: 2,
            error_code: Some(6),
            message: "go away".into(),
        };
        let e = down_error("session", &peer, &r);
        assert_eq!(e.errno, Errno::ECONNREFUSED);
        assert_eq!(
            e.message,
            "session closed by 192.0.2.2:1701: CDN result code 2, error code 6 (\"go away\")"
        );
        let e = down_error("control connection", &peer, &DownReason::Timeout);
        assert_eq!(e.errno, Errno::ETIMEDOUT);
        assert!(e.message.contains("no answer from 192.0.2.2:1701"));
    }
}
