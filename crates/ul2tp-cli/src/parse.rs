//! The `ip l2tp` command-line grammar (docs/reference/kernel.md §11.1, §11.2) plus the ul2tp extensions,
//! turned into API requests the way iproute2 turns it into netlink messages (§11.3).
//!
//! Like iproute2, one keyword loop accepts every keyword in any order for every subcommand
//! (`tunnel` and `session` are flags); each subcommand then checks what it needs, in
//! iproute2's order, so the first missing argument reported is the one iproute2 reports.
//! Errors carry iproute2's exact text and exit status (§11.6): 255 for usage, missing and
//! bad arguments, 1 for a bad address.

use std::path::PathBuf;

use ul2tp_api::{cookie_hex, encap_type, l2spec_type, pw_type, Attrs, Command};

use crate::num::{self, Addr, CookieError};

/// iproute2's `exit(-1)` as seen by the shell.
pub const EXIT_USAGE: i32 = 255;

/// The usage text, printed to stderr by `help` and after an unknown keyword.
pub const USAGE: &str = "\
Usage: ul2tp add tunnel
          remote ADDR local ADDR
          tunnel_id ID peer_tunnel_id ID
          [ encap { ip | udp } ]
          [ udp_sport PORT ] [ udp_dport PORT ]
          [ udp_csum { on | off } ]
          [ udp6_csum_tx { on | off } ]
          [ udp6_csum_rx { on | off } ]
          [ version { 2 | 3 } ]
Usage: ul2tp add session [ name NAME ]
          tunnel_id ID
          session_id ID peer_session_id ID
          [ cookie HEXSTR ] [ peer_cookie HEXSTR ]
          [ seq { none | send | recv | both } ]
          [ l2spec_type L2SPEC ]
          [ pw_type PWTYPE ] [ vlan_id VLANID ]
          [ reorder_timeout MS ] [ lns_mode { on | off } ]
       ul2tp del tunnel tunnel_id ID
       ul2tp del session tunnel_id ID session_id ID
       ul2tp show tunnel [ tunnel_id ID ]
       ul2tp show session [ tunnel_id ID ] [ session_id ID ]
       ul2tp modify tunnel tunnel_id ID
       ul2tp modify session tunnel_id ID session_id ID
          [ seq { none | send | recv | both } ]
          [ lns_mode { on | off } ] [ reorder_timeout MS ]
       ul2tp debug { tunnels | pppol2tp }
       ul2tp monitor
       ul2tp trace { on | off } tunnel_id ID [ session_id ID ]
       ul2tp help

Options: -j[son]  -p[retty]  --socket PATH  -V[ersion]

Where: NAME   := STRING
       ADDR   := { IP_ADDRESS | any }
       PORT   := { 0..65535 }
       ID     := { 1..4294967295 }
       HEXSTR := { 8 or 16 hex digits (4 / 8 bytes) }
       L2SPEC := { none | default }
       PWTYPE := { eth | eth_vlan | ppp }
       VLANID := { 0..4095 }
       MS     := { 0..18446744073709551615 } (milliseconds)
";

/// A refusal to run: text for stderr (newline-terminated) and the exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// What to print on stderr.
    pub stderr: String,
    /// The process exit status.
    pub code: i32,
}

impl CliError {
    fn new(stderr: String, code: i32) -> Self {
        Self { stderr, code }
    }
}

/// `usage()`: the usage text, exit 255.
pub fn usage() -> CliError {
    CliError::new(USAGE.to_string(), EXIT_USAGE)
}

/// `Unknown command: <kw>` followed by the usage text, exit 255.
fn unknown_keyword(kw: &str) -> CliError {
    CliError::new(format!("Unknown command: {kw}\n{USAGE}"), EXIT_USAGE)
}

/// iproute2 `missarg()`.
fn missarg(key: &str) -> CliError {
    CliError::new(
        format!("Error: argument \"{key}\" is required\n"),
        EXIT_USAGE,
    )
}

/// iproute2 `invarg(msg, arg)`; several iproute2 messages end in "\n", which makes the
/// real tool print an empty line after them, and so do we.
fn invarg(msg: &str, arg: &str) -> CliError {
    CliError::new(
        format!("Error: argument \"{arg}\" is wrong: {msg}\n"),
        EXIT_USAGE,
    )
}

/// iproute2 `incomplete_command()` (a keyword without its value).
fn incomplete() -> CliError {
    CliError::new(
        "Command line is not complete. Try option \"help\"\n".to_string(),
        EXIT_USAGE,
    )
}

/// Global options given before the subcommand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// `-j` / `-json`: JSON output.
    pub json: bool,
    /// `-p` / `-pretty`: indented JSON.
    pub pretty: bool,
    /// `--socket PATH`: the daemon's API socket.
    pub socket: Option<PathBuf>,
}

/// Which listing `show` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShowWhat {
    /// `show tunnel`.
    Tunnel,
    /// `show session`.
    Session,
}

/// What a command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `add`: a tunnel create and/or a session create, in that order (both may be given).
    Add {
        /// TUNNEL_CREATE attributes.
        tunnel: Option<Box<Attrs>>,
        /// SESSION_CREATE attributes.
        session: Option<Box<Attrs>>,
    },
    /// `del`, `modify`, `trace`: one request whose reply carries nothing to print.
    Simple(Command, Attrs),
    /// `show`: a dump request, then client-side filtering by the ids given (0 = any).
    Show {
        /// Tunnels or sessions.
        what: ShowWhat,
        /// The dump request's attributes (the filters iproute2 adds, §11.3).
        request: Attrs,
        /// `tunnel_id` filter, 0 for none.
        tunnel_id: u32,
        /// `session_id` filter, 0 for none.
        session_id: u32,
    },
    /// `debug tunnels|pppol2tp`: print the reply's text.
    Debug(Command),
    /// `connect`, `disconnect`: a control-protocol request whose reply names the new ids.
    Control(Command, Attrs),
    /// `monitor`: subscribe and print events until the daemon goes away.
    Monitor,
    /// `-V`: print the version.
    Version,
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// Global options.
    pub options: Options,
    /// What to do.
    pub action: Action,
}

/// Values collected by the keyword loop (iproute2's `struct l2tp_parm`).
#[derive(Debug, Clone)]
struct Params {
    tunnel: bool,
    session: bool,
    tunnel_id: u32,
    peer_tunnel_id: u32,
    session_id: u32,
    peer_session_id: u32,
    encap: u16,
    local: Addr,
    remote: Addr,
    udp_sport: u16,
    udp_dport: u16,
    udp_csum: bool,
    udp6_csum_tx: bool,
    udp6_csum_rx: bool,
    cookie: Option<Vec<u8>>,
    peer_cookie: Option<Vec<u8>>,
    seq_given: bool,
    send_seq: bool,
    recv_seq: bool,
    l2spec_type: u8,
    l2spec_len: u8,
    ifname: Option<String>,
    // ul2tp extensions
    version: Option<(u8, String)>,
    pw_type: Option<u16>,
    vlan_id: Option<(u16, String)>,
    reorder_timeout: Option<u64>,
    lns_mode: Option<bool>,
}

impl Default for Params {
    fn default() -> Self {
        // Defaults of docs/reference/kernel.md §11.2.
        Params {
            tunnel: false,
            session: false,
            tunnel_id: 0,
            peer_tunnel_id: 0,
            session_id: 0,
            peer_session_id: 0,
            encap: encap_type::UDP,
            local: Addr::Unspec,
            remote: Addr::Unspec,
            udp_sport: 0,
            udp_dport: 0,
            udp_csum: false,
            udp6_csum_tx: true,
            udp6_csum_rx: true,
            cookie: None,
            peer_cookie: None,
            seq_given: false,
            send_seq: false,
            recv_seq: false,
            l2spec_type: l2spec_type::DEFAULT,
            l2spec_len: 4,
            ifname: None,
            version: None,
            pw_type: None,
            vlan_id: None,
            reorder_timeout: None,
            lns_mode: None,
        }
    }
}

/// Take the value following a keyword (iproute2 `NEXT_ARG`).
fn next<'a>(it: &mut std::slice::Iter<'a, String>) -> Result<&'a str, CliError> {
    it.next().map(String::as_str).ok_or_else(incomplete)
}

fn id(v: &str) -> Result<u32, CliError> {
    num::get_u32(v).ok_or_else(|| invarg("invalid ID\n", v))
}

fn port(v: &str) -> Result<u16, CliError> {
    num::get_u16(v).ok_or_else(|| invarg("invalid port\n", v))
}

fn on_off(v: &str, key: &str) -> Result<bool, CliError> {
    match v {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(invarg(&format!("invalid option for {key}\n"), v)),
    }
}

fn addr(v: &str) -> Result<Addr, CliError> {
    // lib/utils.c get_addr(): exits 1, not 255.
    num::get_addr(v).map_err(|family| {
        CliError::new(
            format!("Error: {family} address is expected rather than \"{v}\".\n"),
            1,
        )
    })
}

fn cookie(v: &str) -> Result<Vec<u8>, CliError> {
    num::parse_cookie(v).map_err(|e| match e {
        CookieError::Length => invarg("cookie must be either 8 or 16 hex digits\n", v),
        CookieError::NotHex => invarg("cookie must be a hex string\n", v),
    })
}

/// iproute2 `parse_args()`: the keyword loop. Warnings (obsolete options) are appended to
/// `warnings` as they are met, before any later error.
fn parse_params(args: &[String], warnings: &mut Vec<String>) -> Result<Params, CliError> {
    let mut p = Params::default();
    if args.is_empty() {
        return Err(usage());
    }
    let mut it = args.iter();
    while let Some(kw) = it.next() {
        match kw.as_str() {
            "encap" => {
                let v = next(&mut it)?;
                p.encap = match v {
                    "ip" => encap_type::IP,
                    "udp" => encap_type::UDP,
                    _ => {
                        return Err(CliError::new(
                            format!("Unknown tunnel encapsulation \"{v}\"\n"),
                            EXIT_USAGE,
                        ))
                    }
                };
            }
            "name" => {
                let v = next(&mut it)?;
                if !num::valid_ifname(v) {
                    return Err(invarg("\"name\" not a valid ifname", v));
                }
                p.ifname = Some(v.to_string());
            }
            "remote" => p.remote = addr(next(&mut it)?)?,
            "local" => p.local = addr(next(&mut it)?)?,
            "tunnel_id" | "tid" => p.tunnel_id = id(next(&mut it)?)?,
            "peer_tunnel_id" | "ptid" => p.peer_tunnel_id = id(next(&mut it)?)?,
            "session_id" | "sid" => p.session_id = id(next(&mut it)?)?,
            "peer_session_id" | "psid" => p.peer_session_id = id(next(&mut it)?)?,
            "udp_sport" => p.udp_sport = port(next(&mut it)?)?,
            "udp_dport" => p.udp_dport = port(next(&mut it)?)?,
            "udp_csum" => p.udp_csum = on_off(next(&mut it)?, "udp_csum")?,
            "udp6_csum_rx" => p.udp6_csum_rx = on_off(next(&mut it)?, "udp6_csum_rx")?,
            "udp6_csum_tx" => p.udp6_csum_tx = on_off(next(&mut it)?, "udp6_csum_tx")?,
            "offset" | "peer_offset" => {
                // docs/reference/kernel.md §6.4: obsolete, consumed with a warning.
                warnings.push(format!("Ignoring option \"{kw}\"\n"));
                next(&mut it)?;
            }
            "cookie" => p.cookie = Some(cookie(next(&mut it)?)?),
            "peer_cookie" => p.peer_cookie = Some(cookie(next(&mut it)?)?),
            "l2spec_type" => {
                let v = next(&mut it)?;
                if v.eq_ignore_ascii_case("default") {
                    p.l2spec_type = l2spec_type::DEFAULT;
                    p.l2spec_len = 4;
                } else if v.eq_ignore_ascii_case("none") {
                    p.l2spec_type = l2spec_type::NONE;
                    p.l2spec_len = 0;
                } else {
                    return Err(CliError::new(
                        format!("Unknown layer2specific header type \"{v}\"\n"),
                        EXIT_USAGE,
                    ));
                }
            }
            "seq" => {
                let v = next(&mut it)?;
                // iproute2 only ever sets bits here, except for "none".
                if v.eq_ignore_ascii_case("both") {
                    p.recv_seq = true;
                    p.send_seq = true;
                } else if v.eq_ignore_ascii_case("recv") {
                    p.recv_seq = true;
                } else if v.eq_ignore_ascii_case("send") {
                    p.send_seq = true;
                } else if v.eq_ignore_ascii_case("none") {
                    p.recv_seq = false;
                    p.send_seq = false;
                } else {
                    return Err(CliError::new(
                        format!("Unknown seq value \"{v}\"\n"),
                        EXIT_USAGE,
                    ));
                }
                p.seq_given = true;
            }
            "tunnel" => p.tunnel = true,
            "session" => p.session = true,
            // ul2tp extensions.
            "version" => {
                let v = next(&mut it)?;
                let n = match num::get_u32(v) {
                    Some(2) => 2,
                    Some(3) => 3,
                    _ => return Err(invarg("version must be 2 or 3", v)),
                };
                p.version = Some((n, v.to_string()));
            }
            "pw_type" => {
                let v = next(&mut it)?;
                p.pw_type = Some(match v {
                    "eth" => pw_type::ETH,
                    "eth_vlan" => pw_type::ETH_VLAN,
                    "ppp" => pw_type::PPP,
                    _ => {
                        return Err(CliError::new(
                            format!("Unknown pseudowire type \"{v}\"\n"),
                            EXIT_USAGE,
                        ))
                    }
                });
            }
            "vlan_id" => {
                let v = next(&mut it)?;
                let n = num::get_unsigned(v, 4095)
                    .and_then(|n| u16::try_from(n).ok())
                    .ok_or_else(|| invarg("invalid VLAN id (0..4095)", v))?;
                p.vlan_id = Some((n, v.to_string()));
            }
            "reorder_timeout" => {
                let v = next(&mut it)?;
                p.reorder_timeout = Some(
                    num::get_unsigned(v, u64::MAX)
                        .ok_or_else(|| invarg("invalid reorder timeout", v))?,
                );
            }
            "lns_mode" => {
                let v = next(&mut it)?;
                p.lns_mode = Some(match v {
                    "on" => true,
                    "off" => false,
                    _ => return Err(invarg("invalid option for lns_mode", v)),
                });
            }
            other if num::matches(other, "help") => return Err(usage()),
            other => return Err(unknown_keyword(other)),
        }
    }
    Ok(p)
}

/// The TUNNEL_CREATE attributes of docs/reference/kernel.md §11.3.
fn tunnel_create_attrs(p: &Params) -> Attrs {
    let mut a = Attrs {
        conn_id: Some(p.tunnel_id),
        peer_conn_id: Some(p.peer_tunnel_id),
        proto_version: Some(p.version.as_ref().map_or(3, |v| v.0)),
        encap_type: Some(p.encap),
        ..Attrs::default()
    };
    match p.local {
        Addr::Ip(core::net::IpAddr::V4(v4)) => a.ip_saddr = Some(v4),
        Addr::Ip(core::net::IpAddr::V6(v6)) => a.ip6_saddr = Some(v6),
        Addr::Unspec => {}
    }
    match p.remote {
        Addr::Ip(core::net::IpAddr::V4(v4)) => a.ip_daddr = Some(v4),
        Addr::Ip(core::net::IpAddr::V6(v6)) => a.ip6_daddr = Some(v6),
        Addr::Unspec => {}
    }
    if p.encap == encap_type::UDP {
        a.udp_sport = Some(p.udp_sport);
        a.udp_dport = Some(p.udp_dport);
        if p.udp_csum {
            a.udp_csum = Some(1);
        }
        // Sent even for IPv4 tunnels, as iproute2 does.
        if !p.udp6_csum_tx {
            a.udp_zero_csum6_tx = Some(true);
        }
        if !p.udp6_csum_rx {
            a.udp_zero_csum6_rx = Some(true);
        }
    }
    a
}

/// The SESSION_CREATE attributes of docs/reference/kernel.md §11.3 plus the extension attributes.
fn session_create_attrs(p: &Params) -> Attrs {
    Attrs {
        conn_id: Some(p.tunnel_id),
        peer_conn_id: Some(p.peer_tunnel_id),
        session_id: Some(p.session_id),
        peer_session_id: Some(p.peer_session_id),
        pw_type: Some(p.pw_type.unwrap_or(pw_type::ETH)),
        l2spec_type: Some(p.l2spec_type),
        l2spec_len: Some(p.l2spec_len),
        recv_seq: p.recv_seq.then_some(1),
        send_seq: p.send_seq.then_some(1),
        recv_timeout: p.reorder_timeout.filter(|&t| t != 0),
        cookie: p.cookie.as_deref().map(cookie_hex),
        peer_cookie: p.peer_cookie.as_deref().map(cookie_hex),
        ifname: p.ifname.clone(),
        vlan_id: p.vlan_id.as_ref().map(|v| v.0),
        lns_mode: p.lns_mode.map(u8::from),
        ..Attrs::default()
    }
}

/// iproute2 `do_add()`.
fn do_add(p: &Params) -> Result<Action, CliError> {
    if !p.tunnel && !p.session {
        return Err(missarg("tunnel or session"));
    }
    if p.tunnel_id == 0 {
        return Err(missarg("tunnel_id"));
    }
    if p.session && p.peer_session_id == 0 {
        return Err(missarg("peer_session_id"));
    }
    if p.session && p.session_id == 0 {
        return Err(missarg("session_id"));
    }
    if p.tunnel && p.peer_tunnel_id == 0 {
        return Err(missarg("peer_tunnel_id"));
    }
    let mut tunnel = None;
    if p.tunnel {
        if p.local == Addr::Unspec {
            return Err(missarg("local"));
        }
        if p.remote == Addr::Unspec {
            return Err(missarg("remote"));
        }
        if p.encap == encap_type::UDP {
            if p.udp_sport == 0 {
                return Err(missarg("udp_sport"));
            }
            if p.udp_dport == 0 {
                return Err(missarg("udp_dport"));
            }
        }
        // Extension checks: L2TPv2 exists only over UDP and has 16-bit tunnel ids
        // (RFC 2661 §3.1; docs/reference/kernel.md §12.2 item 3).
        if let Some((2, text)) = &p.version {
            if p.encap != encap_type::UDP {
                return Err(invarg("L2TPv2 requires encap udp", text));
            }
            for v in [p.tunnel_id, p.peer_tunnel_id] {
                if v > 0xffff {
                    return Err(invarg("L2TPv2 tunnel ids are 1..65535", &v.to_string()));
                }
            }
        }
        tunnel = Some(Box::new(tunnel_create_attrs(p)));
    }
    let mut session = None;
    if p.session {
        match (p.pw_type, &p.vlan_id) {
            (Some(pw_type::ETH_VLAN), None) => return Err(missarg("vlan_id")),
            (pt, Some((_, text))) if pt != Some(pw_type::ETH_VLAN) => {
                return Err(invarg("vlan_id needs pw_type eth_vlan", text))
            }
            _ => {}
        }
        session = Some(Box::new(session_create_attrs(p)));
    }
    Ok(Action::Add { tunnel, session })
}

/// iproute2 `do_del()`.
fn do_del(p: &Params) -> Result<Action, CliError> {
    if !p.tunnel && !p.session {
        return Err(missarg("tunnel or session"));
    }
    if p.tunnel && p.tunnel_id == 0 {
        return Err(missarg("tunnel_id"));
    }
    if p.session && p.session_id == 0 {
        return Err(missarg("session_id"));
    }
    let conn_id = Some(p.tunnel_id);
    Ok(if p.session_id != 0 {
        Action::Simple(
            Command::SessionDelete,
            Attrs {
                conn_id,
                session_id: Some(p.session_id),
                ..Attrs::default()
            },
        )
    } else {
        Action::Simple(
            Command::TunnelDelete,
            Attrs {
                conn_id,
                ..Attrs::default()
            },
        )
    })
}

/// iproute2 `do_show()`; the filters are also applied client-side (unlike iproute2).
fn do_show(p: &Params) -> Result<Action, CliError> {
    if !p.tunnel && !p.session {
        return Err(missarg("tunnel or session"));
    }
    if p.session {
        let mut request = Attrs::default();
        if p.tunnel_id != 0 && p.session_id != 0 {
            request.conn_id = Some(p.tunnel_id);
            request.session_id = Some(p.session_id);
        }
        Ok(Action::Show {
            what: ShowWhat::Session,
            request,
            tunnel_id: p.tunnel_id,
            session_id: p.session_id,
        })
    } else {
        let request = Attrs {
            conn_id: (p.tunnel_id != 0).then_some(p.tunnel_id),
            ..Attrs::default()
        };
        Ok(Action::Show {
            what: ShowWhat::Tunnel,
            request,
            tunnel_id: p.tunnel_id,
            session_id: 0,
        })
    }
}

/// Extension: `modify tunnel|session`.
fn do_modify(p: &Params) -> Result<Action, CliError> {
    if !p.tunnel && !p.session {
        return Err(missarg("tunnel or session"));
    }
    if p.tunnel_id == 0 {
        return Err(missarg("tunnel_id"));
    }
    if !p.session {
        return Ok(Action::Simple(
            Command::TunnelModify,
            Attrs {
                conn_id: Some(p.tunnel_id),
                ..Attrs::default()
            },
        ));
    }
    if p.session_id == 0 {
        return Err(missarg("session_id"));
    }
    // docs/reference/kernel.md §4.2: SESSION_MODIFY takes RECV_SEQ, SEND_SEQ, LNS_MODE, RECV_TIMEOUT.
    Ok(Action::Simple(
        Command::SessionModify,
        Attrs {
            conn_id: Some(p.tunnel_id),
            session_id: Some(p.session_id),
            send_seq: p.seq_given.then_some(u8::from(p.send_seq)),
            recv_seq: p.seq_given.then_some(u8::from(p.recv_seq)),
            lns_mode: p.lns_mode.map(u8::from),
            recv_timeout: p.reorder_timeout,
            ..Attrs::default()
        },
    ))
}

/// Extension: `trace {on|off} tunnel_id X [session_id Y]`.
fn do_trace(args: &[String], warnings: &mut Vec<String>) -> Result<Action, CliError> {
    let Some(first) = args.first() else {
        return Err(incomplete());
    };
    let debug = match first.as_str() {
        "on" => 1,
        "off" => 0,
        other if num::matches(other, "help") => return Err(usage()),
        other => return Err(invarg("expected on or off", other)),
    };
    let rest = &args[1..];
    let p = if rest.is_empty() {
        Params::default()
    } else {
        parse_params(rest, warnings)?
    };
    if p.tunnel_id == 0 {
        return Err(missarg("tunnel_id"));
    }
    Ok(Action::Simple(
        Command::TraceSet,
        Attrs {
            conn_id: Some(p.tunnel_id),
            session_id: (p.session_id != 0).then_some(p.session_id),
            debug: Some(debug),
            ..Attrs::default()
        },
    ))
}

/// Extension (dynamic tunnels): `connect remote ADDR [udp_dport PORT] [version {2|3}]`, or
/// `connect session tunnel_id ID [pw_type {eth|ppp}] [name NAME] [seq recv]`.
fn do_connect(p: &Params) -> Result<Action, CliError> {
    if p.session {
        if p.tunnel_id == 0 {
            return Err(missarg("tunnel_id"));
        }
        return Ok(Action::Control(
            Command::ControlSession,
            Attrs {
                conn_id: Some(p.tunnel_id),
                pw_type: p.pw_type,
                ifname: p.ifname.clone(),
                recv_seq: (p.seq_given && p.recv_seq).then_some(1),
                ..Attrs::default()
            },
        ));
    }
    let mut a = Attrs {
        proto_version: p.version.as_ref().map(|v| v.0),
        udp_dport: (p.udp_dport != 0).then_some(p.udp_dport),
        ..Attrs::default()
    };
    match p.remote {
        Addr::Ip(core::net::IpAddr::V4(v4)) => a.ip_daddr = Some(v4),
        Addr::Ip(core::net::IpAddr::V6(v6)) => a.ip6_daddr = Some(v6),
        Addr::Unspec => return Err(missarg("remote")),
    }
    Ok(Action::Control(Command::ControlConnect, a))
}

/// Extension: `ppp start tunnel_id ID session_id ID [local ADDR remote ADDR]`: the daemon's
/// PPP endpoint on a PPP session (server with both addresses, client without).
fn do_ppp(args: &[String], warnings: &mut Vec<String>) -> Result<Action, CliError> {
    match args.first().map(String::as_str) {
        Some("start") => {}
        Some(other) if num::matches(other, "help") => return Err(usage()),
        Some(other) => return Err(unknown_keyword(other)),
        None => return Err(incomplete()),
    }
    // `user NAME` and `password SECRET` are ours alone; the rest is the common grammar.
    let (mut user, mut password, mut rest) = (None, None, Vec::new());
    let mut it = args[1..].iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "user" => user = Some(it.next().ok_or_else(incomplete)?.clone()),
            "password" => password = Some(it.next().ok_or_else(incomplete)?.clone()),
            _ => rest.push(a.clone()),
        }
    }
    let p = parse_params(&rest, warnings)?;
    if p.tunnel_id == 0 {
        return Err(missarg("tunnel_id"));
    }
    if p.session_id == 0 {
        return Err(missarg("session_id"));
    }
    let v4 = |a: &Addr| match a {
        Addr::Ip(core::net::IpAddr::V4(v4)) => Some(*v4),
        _ => None,
    };
    Ok(Action::Simple(
        Command::PppStart,
        Attrs {
            conn_id: Some(p.tunnel_id),
            session_id: Some(p.session_id),
            ip_saddr: v4(&p.local),
            ip_daddr: v4(&p.remote),
            ppp_user: user,
            ppp_password: password,
            ..Attrs::default()
        },
    ))
}

/// Extension (dynamic tunnels): `disconnect tunnel_id ID [session_id ID]`.
fn do_disconnect(p: &Params) -> Result<Action, CliError> {
    if p.tunnel_id == 0 {
        return Err(missarg("tunnel_id"));
    }
    Ok(Action::Control(
        Command::ControlDisconnect,
        Attrs {
            conn_id: Some(p.tunnel_id),
            session_id: (p.session_id != 0).then_some(p.session_id),
            ..Attrs::default()
        },
    ))
}

/// Extension: `debug tunnels|pppol2tp`.
fn do_debug(args: &[String]) -> Result<Action, CliError> {
    let Some(first) = args.first() else {
        return Err(incomplete());
    };
    let cmd = match first.as_str() {
        "tunnels" => Command::DebugTunnels,
        "pppol2tp" => Command::DebugPppol2tp,
        other if num::matches(other, "help") => return Err(usage()),
        other => return Err(unknown_keyword(other)),
    };
    if let Some(extra) = args.get(1) {
        return Err(unknown_keyword(extra));
    }
    Ok(Action::Debug(cmd))
}

/// Extension: `monitor`.
fn do_monitor(args: &[String]) -> Result<Action, CliError> {
    match args.first() {
        None => Ok(Action::Monitor),
        Some(a) if num::matches(a, "help") => Err(usage()),
        Some(a) => Err(unknown_keyword(a)),
    }
}

/// Parse the global options (ip.c style: `--x` is `-x`, prefixes of `-json`/`-pretty`).
fn parse_options(args: &[String]) -> Result<(Options, usize), CliError> {
    let mut o = Options::default();
    let mut i = 0;
    while i < args.len() {
        let raw = args[i].as_str();
        if raw == "--" {
            i += 1;
            break;
        }
        if !raw.starts_with('-') {
            break;
        }
        let opt = if raw.starts_with("--") {
            &raw[1..]
        } else {
            raw
        };
        if let Some(path) = opt.strip_prefix("-socket=") {
            o.socket = Some(PathBuf::from(path));
        } else if opt == "-socket" {
            let Some(path) = args.get(i + 1) else {
                return Err(CliError::new(
                    "Option \"--socket\" requires a path\n".to_string(),
                    EXIT_USAGE,
                ));
            };
            o.socket = Some(PathBuf::from(path));
            i += 1;
        } else if opt.len() >= 2 && num::matches(opt, "-json") {
            o.json = true;
        } else if opt.len() >= 2 && num::matches(opt, "-pretty") {
            o.pretty = true;
        } else if opt.len() >= 2 && num::matches(opt, "-Version") {
            return Ok((o, usize::MAX));
        } else if opt.len() >= 2 && num::matches(opt, "-help") {
            return Err(usage());
        } else {
            return Err(CliError::new(
                format!("Option \"{raw}\" is unknown, try \"ul2tp help\".\n"),
                EXIT_USAGE,
            ));
        }
        i += 1;
    }
    Ok((o, i))
}

/// Parse a whole command line (without the program name). Warnings for obsolete options
/// are pushed to `warnings` in the order iproute2 prints them.
pub fn parse(args: &[String], warnings: &mut Vec<String>) -> Result<Invocation, CliError> {
    let (options, start) = parse_options(args)?;
    if start == usize::MAX {
        return Ok(Invocation {
            options,
            action: Action::Version,
        });
    }
    let args = &args[start..];
    let Some(sub) = args.first() else {
        return Err(usage());
    };
    let rest = &args[1..];
    let sub = sub.as_str();
    let action = if num::matches(sub, "help") {
        return Err(usage());
    } else if num::matches(sub, "add") {
        do_add(&parse_params(rest, warnings)?)?
    } else if num::matches(sub, "delete") {
        do_del(&parse_params(rest, warnings)?)?
    } else if num::matches(sub, "show") || num::matches(sub, "lst") || num::matches(sub, "list") {
        do_show(&parse_params(rest, warnings)?)?
    } else if num::matches(sub, "modify") {
        do_modify(&parse_params(rest, warnings)?)?
    } else if num::matches(sub, "monitor") {
        do_monitor(rest)?
    } else if num::matches(sub, "debug") {
        do_debug(rest)?
    } else if num::matches(sub, "trace") {
        do_trace(rest, warnings)?
    } else if sub == "connect" {
        do_connect(&parse_params(rest, warnings)?)?
    } else if sub == "ppp" {
        do_ppp(rest, warnings)?
    } else if sub == "disconnect" {
        do_disconnect(&parse_params(rest, warnings)?)?
    } else {
        return Err(CliError::new(
            format!("Command \"{sub}\" is unknown, try \"ul2tp help\".\n"),
            EXIT_USAGE,
        ));
    };
    Ok(Invocation { options, action })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    fn ok(s: &str) -> Invocation {
        let mut w = Vec::new();
        parse(&args(s), &mut w).unwrap_or_else(|e| panic!("{s}: {e:?}"))
    }

    fn err(s: &str) -> CliError {
        let mut w = Vec::new();
        parse(&args(s), &mut w).expect_err(s)
    }

    fn add_tunnel(s: &str) -> Attrs {
        match ok(s).action {
            Action::Add {
                tunnel: Some(t),
                session: None,
            } => *t,
            a => panic!("{a:?}"),
        }
    }

    fn add_session(s: &str) -> Attrs {
        match ok(s).action {
            Action::Add {
                tunnel: None,
                session: Some(t),
            } => *t,
            a => panic!("{a:?}"),
        }
    }

    const T: &str = "add tunnel tunnel_id 3000 peer_tunnel_id 4000 local 192.0.2.1 remote 192.0.2.2 udp_sport 5000 udp_dport 6000";

    #[test]
    fn connect_and_disconnect() {
        let inv = ok("connect remote 192.0.2.2 version 3");
        let Action::Control(Command::ControlConnect, a) = inv.action else {
            panic!("not a control action")
        };
        assert_eq!(a.ip_daddr, Some("192.0.2.2".parse().unwrap()));
        assert_eq!((a.proto_version, a.udp_dport), (Some(3), None));
        let inv = ok("connect session tunnel_id 7 name pw1");
        let Action::Control(Command::ControlSession, a) = inv.action else {
            panic!("not a control action")
        };
        assert_eq!((a.conn_id, a.ifname.as_deref()), (Some(7), Some("pw1")));
        let inv = ok("disconnect tunnel_id 7 session_id 9");
        let Action::Control(Command::ControlDisconnect, a) = inv.action else {
            panic!("not a control action")
        };
        assert_eq!((a.conn_id, a.session_id), (Some(7), Some(9)));
        assert!(parse(&args("connect udp_dport 1701"), &mut Vec::new()).is_err());
        assert!(parse(&args("disconnect"), &mut Vec::new()).is_err());
    }

    #[test]
    fn add_tunnel_udp4_defaults() {
        let a = add_tunnel(T);
        assert_eq!(
            a,
            Attrs {
                conn_id: Some(3000),
                peer_conn_id: Some(4000),
                proto_version: Some(3),
                encap_type: Some(0),
                ip_saddr: Some("192.0.2.1".parse().unwrap()),
                ip_daddr: Some("192.0.2.2".parse().unwrap()),
                udp_sport: Some(5000),
                udp_dport: Some(6000),
                ..Attrs::default()
            }
        );
    }

    #[test]
    fn add_tunnel_ip6_and_checksum_flags() {
        let a = add_tunnel(
            "add tunnel tid 1 ptid 2 local 2001:db8::1 remote 2001:db8::2 udp_sport 1 udp_dport 2 udp_csum on udp6_csum_tx off udp6_csum_rx off",
        );
        assert_eq!(a.ip6_saddr, Some("2001:db8::1".parse().unwrap()));
        assert_eq!(a.ip6_daddr, Some("2001:db8::2".parse().unwrap()));
        assert_eq!(a.ip_saddr, None);
        assert_eq!(a.udp_csum, Some(1));
        assert_eq!(a.udp_zero_csum6_tx, Some(true));
        assert_eq!(a.udp_zero_csum6_rx, Some(true));

        let a = add_tunnel(
            "add tunnel tid 1 ptid 2 local 10.0.0.1 remote 10.0.0.2 encap ip udp_sport 7",
        );
        assert_eq!(a.encap_type, Some(1));
        assert_eq!(a.udp_sport, None, "ports are only sent for udp");
        assert_eq!(a.udp_csum, None);
    }

    #[test]
    fn add_tunnel_version_extension() {
        let a = add_tunnel(&format!("{T} version 2"));
        assert_eq!(a.proto_version, Some(2));
        let e = err("add tunnel tid 1 ptid 2 local 10.0.0.1 remote 10.0.0.2 encap ip version 2");
        assert_eq!(
            e.stderr,
            "Error: argument \"2\" is wrong: L2TPv2 requires encap udp\n"
        );
        assert_eq!(e.code, 255);
        let e = err(&format!("{T} version 4"));
        assert_eq!(
            e.stderr,
            "Error: argument \"4\" is wrong: version must be 2 or 3\n"
        );
        let e = err("add tunnel tid 70000 ptid 2 local 10.0.0.1 remote 10.0.0.2 udp_sport 1 udp_dport 1 version 2");
        assert!(e.stderr.contains("\"70000\""), "{}", e.stderr);
    }

    #[test]
    fn add_session_defaults_and_options() {
        let a = add_session("add session tunnel_id 3000 session_id 1 peer_session_id 2");
        assert_eq!(
            a,
            Attrs {
                conn_id: Some(3000),
                peer_conn_id: Some(0),
                session_id: Some(1),
                peer_session_id: Some(2),
                pw_type: Some(5),
                l2spec_type: Some(1),
                l2spec_len: Some(4),
                ..Attrs::default()
            }
        );
        let a = add_session(
            "add session name l2tp9 tid 0x10 sid 010 psid 3 ptid 9 cookie 0A0b0C0d peer_cookie 0011223344556677 seq both l2spec_type NONE",
        );
        assert_eq!(a.conn_id, Some(16));
        assert_eq!(a.session_id, Some(8));
        assert_eq!(a.peer_conn_id, Some(9));
        assert_eq!(a.ifname.as_deref(), Some("l2tp9"));
        assert_eq!(a.cookie.as_deref(), Some("0a0b0c0d"));
        assert_eq!(a.peer_cookie.as_deref(), Some("0011223344556677"));
        assert_eq!((a.send_seq, a.recv_seq), (Some(1), Some(1)));
        assert_eq!((a.l2spec_type, a.l2spec_len), (Some(0), Some(0)));
        let a = add_session("add session tid 1 sid 1 psid 1 seq send seq recv");
        assert_eq!((a.send_seq, a.recv_seq), (Some(1), Some(1)));
        let a = add_session("add session tid 1 sid 1 psid 1 seq recv");
        assert_eq!((a.send_seq, a.recv_seq), (None, Some(1)));
        let a = add_session("add session tid 1 sid 1 psid 1 seq both seq none");
        assert_eq!((a.send_seq, a.recv_seq), (None, None));
    }

    #[test]
    fn add_session_extensions() {
        let a = add_session(
            "add session tid 1 sid 2 psid 3 pw_type ppp reorder_timeout 100 lns_mode on",
        );
        assert_eq!(a.pw_type, Some(7));
        assert_eq!(a.recv_timeout, Some(100));
        assert_eq!(a.lns_mode, Some(1));
        let a = add_session("add session tid 1 sid 2 psid 3 pw_type eth_vlan vlan_id 100");
        assert_eq!((a.pw_type, a.vlan_id), (Some(4), Some(100)));
        let a = add_session("add session tid 1 sid 2 psid 3 reorder_timeout 0 lns_mode off");
        assert_eq!((a.recv_timeout, a.lns_mode), (None, Some(0)));
        assert_eq!(
            err("add session tid 1 sid 2 psid 3 pw_type eth_vlan").stderr,
            "Error: argument \"vlan_id\" is required\n"
        );
        assert_eq!(
            err("add session tid 1 sid 2 psid 3 vlan_id 5").stderr,
            "Error: argument \"5\" is wrong: vlan_id needs pw_type eth_vlan\n"
        );
        assert_eq!(
            err("add session tid 1 sid 2 psid 3 pw_type eth_vlan vlan_id 4096").stderr,
            "Error: argument \"4096\" is wrong: invalid VLAN id (0..4095)\n"
        );
        assert_eq!(
            err("add session tid 1 sid 2 psid 3 pw_type atm").stderr,
            "Unknown pseudowire type \"atm\"\n"
        );
        assert_eq!(
            err("add session tid 1 sid 2 psid 3 lns_mode maybe").stderr,
            "Error: argument \"maybe\" is wrong: invalid option for lns_mode\n"
        );
    }

    #[test]
    fn add_both() {
        match ok(&format!("{T} session session_id 1 peer_session_id 2")).action {
            Action::Add {
                tunnel: Some(t),
                session: Some(s),
            } => {
                assert_eq!(t.conn_id, Some(3000));
                assert_eq!(s.conn_id, Some(3000));
                assert_eq!(s.peer_conn_id, Some(4000));
            }
            a => panic!("{a:?}"),
        }
    }

    #[test]
    fn missing_arguments_in_iproute2_order() {
        let cases = [
            ("add tunnel_id 1", "tunnel or session"),
            ("add tunnel", "tunnel_id"),
            ("add session tunnel_id 0", "tunnel_id"),
            ("add session tunnel_id 1 session_id 1", "peer_session_id"),
            ("add session tunnel_id 1 peer_session_id 1", "session_id"),
            ("add tunnel tunnel_id 1", "peer_tunnel_id"),
            ("add tunnel tunnel_id 1 peer_tunnel_id 1", "local"),
            ("add tunnel tunnel_id 1 peer_tunnel_id 1 local any", "local"),
            (
                "add tunnel tunnel_id 1 peer_tunnel_id 1 local 1.1.1.1",
                "remote",
            ),
            (
                "add tunnel tunnel_id 1 peer_tunnel_id 1 local 1.1.1.1 remote any",
                "remote",
            ),
            (
                "add tunnel tunnel_id 1 peer_tunnel_id 1 local 1.1.1.1 remote 2.2.2.2",
                "udp_sport",
            ),
            (
                "add tunnel tunnel_id 1 peer_tunnel_id 1 local 1.1.1.1 remote 2.2.2.2 udp_sport 1",
                "udp_dport",
            ),
            ("del tunnel_id 1", "tunnel or session"),
            ("del tunnel", "tunnel_id"),
            ("del session tunnel_id 1", "session_id"),
            ("show tunnel_id 1", "tunnel or session"),
            ("modify tunnel", "tunnel_id"),
            ("modify session tid 1", "session_id"),
            ("trace on", "tunnel_id"),
        ];
        for (line, key) in cases {
            let e = err(line);
            assert_eq!(
                e.stderr,
                format!("Error: argument \"{key}\" is required\n"),
                "{line}"
            );
            assert_eq!(e.code, 255, "{line}");
        }
    }

    #[test]
    fn bad_values() {
        let cases = [
            ("add tunnel tunnel_id x", "Error: argument \"x\" is wrong: invalid ID\n\n"),
            ("add tunnel tid 4294967296", "Error: argument \"4294967296\" is wrong: invalid ID\n\n"),
            ("add tunnel ptid -1", "Error: argument \"-1\" is wrong: invalid ID\n\n"),
            ("add session sid 08", "Error: argument \"08\" is wrong: invalid ID\n\n"),
            ("add session psid 1x", "Error: argument \"1x\" is wrong: invalid ID\n\n"),
            ("add tunnel udp_sport 65536", "Error: argument \"65536\" is wrong: invalid port\n\n"),
            ("add tunnel udp_dport p", "Error: argument \"p\" is wrong: invalid port\n\n"),
            ("add tunnel udp_csum yes", "Error: argument \"yes\" is wrong: invalid option for udp_csum\n\n"),
            ("add tunnel udp6_csum_tx 1", "Error: argument \"1\" is wrong: invalid option for udp6_csum_tx\n\n"),
            ("add tunnel udp6_csum_rx 0", "Error: argument \"0\" is wrong: invalid option for udp6_csum_rx\n\n"),
            ("add session cookie 1234", "Error: argument \"1234\" is wrong: cookie must be either 8 or 16 hex digits\n\n"),
            ("add session peer_cookie 123456789", "Error: argument \"123456789\" is wrong: cookie must be either 8 or 16 hex digits\n\n"),
            ("add session cookie 1234567g", "Error: argument \"1234567g\" is wrong: cookie must be a hex string\n\n"),
            ("add session name a/b", "Error: argument \"a/b\" is wrong: \"name\" not a valid ifname\n"),
            ("add session name 0123456789abcdef", "Error: argument \"0123456789abcdef\" is wrong: \"name\" not a valid ifname\n"),
            ("add session name ..", "Error: argument \"..\" is wrong: \"name\" not a valid ifname\n"),
            ("add tunnel encap gre", "Unknown tunnel encapsulation \"gre\"\n"),
            ("add session l2spec_type cisco", "Unknown layer2specific header type \"cisco\"\n"),
            ("add session seq all", "Unknown seq value \"all\"\n"),
            ("add tunnel tunnel_id", "Command line is not complete. Try option \"help\"\n"),
            ("bogus", "Command \"bogus\" is unknown, try \"ul2tp help\".\n"),
            ("-z show tunnel", "Option \"-z\" is unknown, try \"ul2tp help\".\n"),
            ("trace maybe tid 1", "Error: argument \"maybe\" is wrong: expected on or off\n"),
        ];
        for (line, text) in cases {
            let e = err(line);
            assert_eq!(e.stderr, text, "{line}");
            assert_eq!(e.code, 255, "{line}");
        }
    }

    #[test]
    fn bad_addresses_exit_1() {
        let e = err("add tunnel local 1.2.3.999");
        assert_eq!(
            e.stderr,
            "Error: inet address is expected rather than \"1.2.3.999\".\n"
        );
        assert_eq!(e.code, 1);
        let e = err("add tunnel remote fe80::zz");
        assert_eq!(
            e.stderr,
            "Error: inet6 address is expected rather than \"fe80::zz\".\n"
        );
        assert_eq!(e.code, 1);
    }

    #[test]
    fn usage_and_unknown_keywords() {
        for line in [
            "",
            "help",
            "h",
            "add",
            "add help",
            "show tunnel he",
            "-help",
        ] {
            let e = err(line);
            assert_eq!(e.stderr, USAGE, "{line:?}");
            assert_eq!(e.code, 255);
        }
        let e = err("add tunnel frobnicate 1");
        assert_eq!(e.stderr, format!("Unknown command: frobnicate\n{USAGE}"));
        assert_eq!(e.code, 255);
        let e = err("debug sessions");
        assert_eq!(e.stderr, format!("Unknown command: sessions\n{USAGE}"));
        let e = err("monitor now");
        assert_eq!(e.stderr, format!("Unknown command: now\n{USAGE}"));
    }

    #[test]
    fn offset_warnings() {
        let mut w = Vec::new();
        let inv = parse(
            &args("add session tid 1 sid 2 psid 3 offset 8 peer_offset 16"),
            &mut w,
        )
        .unwrap();
        assert!(matches!(inv.action, Action::Add { .. }));
        assert_eq!(
            w,
            vec![
                "Ignoring option \"offset\"\n".to_string(),
                "Ignoring option \"peer_offset\"\n".to_string()
            ]
        );
        // The warning comes before the incomplete-command error.
        let mut w = Vec::new();
        let e = parse(&args("add session offset"), &mut w).unwrap_err();
        assert_eq!(w.len(), 1);
        assert!(e.stderr.starts_with("Command line is not complete"));
    }

    #[test]
    fn subcommand_prefixes() {
        for line in ["del tunnel tid 5", "d tunnel tid 5", "delete tunnel tid 5"] {
            assert_eq!(
                ok(line).action,
                Action::Simple(
                    Command::TunnelDelete,
                    Attrs {
                        conn_id: Some(5),
                        ..Attrs::default()
                    }
                ),
                "{line}"
            );
        }
        assert_eq!(
            ok("del session tid 5 sid 6").action,
            Action::Simple(
                Command::SessionDelete,
                Attrs {
                    conn_id: Some(5),
                    session_id: Some(6),
                    ..Attrs::default()
                }
            )
        );
        // A session_id turns a tunnel delete into a session delete, as in iproute2.
        assert!(matches!(
            ok("del tunnel tid 5 sid 6").action,
            Action::Simple(Command::SessionDelete, _)
        ));
        for line in [
            "show tunnel",
            "s tunnel",
            "lst tunnel",
            "list tunnel",
            "l tunnel",
        ] {
            assert!(
                matches!(
                    ok(line).action,
                    Action::Show {
                        what: ShowWhat::Tunnel,
                        ..
                    }
                ),
                "{line}"
            );
        }
        assert!(matches!(
            ok("a tunnel tid 1 ptid 1 local 1.1.1.1 remote 1.1.1.2 encap ip").action,
            Action::Add { .. }
        ));
        assert_eq!(ok("mon").action, Action::Monitor);
        assert_eq!(
            ok("deb tunnels").action,
            Action::Debug(Command::DebugTunnels)
        );
        assert_eq!(
            ok("debug pppol2tp").action,
            Action::Debug(Command::DebugPppol2tp)
        );
    }

    #[test]
    fn show_filters() {
        assert_eq!(
            ok("show session tid 3 sid 4").action,
            Action::Show {
                what: ShowWhat::Session,
                request: Attrs {
                    conn_id: Some(3),
                    session_id: Some(4),
                    ..Attrs::default()
                },
                tunnel_id: 3,
                session_id: 4,
            }
        );
        assert_eq!(
            ok("show session tid 3").action,
            Action::Show {
                what: ShowWhat::Session,
                request: Attrs::default(),
                tunnel_id: 3,
                session_id: 0,
            }
        );
        assert_eq!(
            ok("show tunnel tunnel_id 7").action,
            Action::Show {
                what: ShowWhat::Tunnel,
                request: Attrs {
                    conn_id: Some(7),
                    ..Attrs::default()
                },
                tunnel_id: 7,
                session_id: 0,
            }
        );
    }

    #[test]
    fn modify_and_trace() {
        assert_eq!(
            ok("modify session tid 1 sid 2 seq send lns_mode on reorder_timeout 0").action,
            Action::Simple(
                Command::SessionModify,
                Attrs {
                    conn_id: Some(1),
                    session_id: Some(2),
                    send_seq: Some(1),
                    recv_seq: Some(0),
                    lns_mode: Some(1),
                    recv_timeout: Some(0),
                    ..Attrs::default()
                }
            )
        );
        assert_eq!(
            ok("modify session tid 1 sid 2").action,
            Action::Simple(
                Command::SessionModify,
                Attrs {
                    conn_id: Some(1),
                    session_id: Some(2),
                    ..Attrs::default()
                }
            )
        );
        assert_eq!(
            ok("modify tunnel tid 9").action,
            Action::Simple(
                Command::TunnelModify,
                Attrs {
                    conn_id: Some(9),
                    ..Attrs::default()
                }
            )
        );
        assert_eq!(
            ok("trace on tunnel_id 3 session_id 4").action,
            Action::Simple(
                Command::TraceSet,
                Attrs {
                    conn_id: Some(3),
                    session_id: Some(4),
                    debug: Some(1),
                    ..Attrs::default()
                }
            )
        );
        assert_eq!(
            ok("trace off tid 3").action,
            Action::Simple(
                Command::TraceSet,
                Attrs {
                    conn_id: Some(3),
                    debug: Some(0),
                    ..Attrs::default()
                }
            )
        );
    }

    #[test]
    fn global_options() {
        let inv = ok("-j -p show tunnel");
        assert!(inv.options.json && inv.options.pretty);
        let inv = ok("-json -pretty show tunnel");
        assert!(inv.options.json && inv.options.pretty);
        let inv = ok("--json show tunnel");
        assert!(inv.options.json && !inv.options.pretty);
        let inv = ok("--socket /tmp/x.sock show tunnel");
        assert_eq!(inv.options.socket, Some(PathBuf::from("/tmp/x.sock")));
        let inv = ok("--socket=/tmp/y.sock -j show session");
        assert_eq!(inv.options.socket, Some(PathBuf::from("/tmp/y.sock")));
        assert!(inv.options.json);
        assert_eq!(ok("-V").action, Action::Version);
        assert_eq!(err("--socket").code, 255);
    }

    #[test]
    fn never_panics_on_token_soup() {
        let vocab = [
            "add",
            "del",
            "show",
            "modify",
            "trace",
            "debug",
            "monitor",
            "help",
            "tunnel",
            "session",
            "tunnel_id",
            "tid",
            "sid",
            "psid",
            "ptid",
            "local",
            "remote",
            "encap",
            "udp",
            "ip",
            "cookie",
            "peer_cookie",
            "seq",
            "both",
            "name",
            "on",
            "off",
            "0",
            "1",
            "0x",
            "-1",
            "4294967296",
            "::",
            "1.2.3.4",
            "any",
            "offset",
            "version",
            "2",
            "pw_type",
            "eth_vlan",
            "vlan_id",
            "reorder_timeout",
            "lns_mode",
            "-j",
            "--socket",
            "",
            "\u{e9}",
            "tunnels",
            "l2spec_type",
            "udp_sport",
            "udp_dport",
            "01020304",
        ];
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = (x % 9) as usize;
            let mut line = Vec::new();
            let mut y = x;
            for _ in 0..n {
                y = y
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                line.push(vocab[(y >> 33) as usize % vocab.len()].to_string());
            }
            let mut w = Vec::new();
            if let Err(e) = parse(&line, &mut w) {
                assert!(e.code == 255 || e.code == 1, "{line:?} -> {e:?}");
                assert!(e.stderr.ends_with('\n'));
            }
        }
    }
}
