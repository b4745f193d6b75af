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
       ul2tp connect remote ADDR [ encap { udp | ip } ] [ udp_dport PORT ] [ version { 2 | 3 } ]
          [ wait ]
       ul2tp connect session tunnel_id ID [ pw_type { eth | eth_vlan | ppp } ] [ vlan_id VLANID ]
          [ name NAME ] [ seq recv ] [ wait ]
       ul2tp dial PROFILE [ wait ]
       ul2tp hangup PROFILE
       ul2tp show lac [ PROFILE ]
       ul2tp disconnect tunnel_id ID [ session_id ID ]
       ul2tp show ppp [ tunnel_id ID ] [ session_id ID ]
       ul2tp ppp start tunnel_id ID session_id ID
          [ local ADDR remote ADDR ] [ user NAME password SECRET ]
       ul2tp help

Options: -j[son]  -p[retty]  -s[tatistics]  -n[etns] NETNS  --socket PATH  -V[ersion]
         -b[atch] { FILE | - } [ -force ]

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
    /// `-s` / `-stats` / `-statistics`: `show` prints the counters (`ip l2tp` prints none).
    pub stats: bool,
    /// `-n NETNS` / `-netns NETNS`: the named network namespace to enter before connecting.
    pub netns: Option<String>,
    /// `-b FILE` / `-batch FILE` (`-` for stdin): read commands from a file, one a line,
    /// over one API connection (`ip -batch`).
    pub batch: Option<String>,
    /// `-force`: in batch mode, go on after a failed command (`ip -force`).
    pub force: bool,
}

/// Which listing `show` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShowWhat {
    /// `show tunnel`.
    Tunnel,
    /// `show session`.
    Session,
    /// `show ppp` (extension): the PPP sessions, one line each.
    Ppp,
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
    /// `show lac [PROFILE]`: the configured calls (all, or one).
    ShowLac(Option<String>),
    /// `debug tunnels|pppol2tp`: print the reply's text.
    Debug(Command),
    /// `connect`, `disconnect`: a control-protocol request whose reply names the new ids.
    Control(Command, Attrs),
    /// `monitor`: subscribe and print events until the daemon goes away.
    Monitor,
    /// `-V`: print the version.
    Version,
    /// `-batch FILE`: run the commands of [`Options::batch`].
    Batch,
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
    // lib/utils.c get_addr(): exits 1, not 255. ipl2tp.c asks for AF_UNSPEC, whose verbose
    // family name in iproute2 6.1 is "any valid", whatever the argument looks like.
    num::get_addr(v).map_err(|_| {
        CliError::new(
            format!("Error: any valid address is expected rather than \"{v}\".\n"),
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

/// Extension (dynamic tunnels): `connect remote ADDR [encap {udp|ip}] [udp_dport PORT]
/// [version {2|3}]`, or `connect session tunnel_id ID [pw_type {eth|eth_vlan|ppp}]
/// [vlan_id VLANID] [name NAME] [seq recv]`.
fn do_connect(p: &Params) -> Result<Action, CliError> {
    if p.session {
        if p.tunnel_id == 0 {
            return Err(missarg("tunnel_id"));
        }
        match (p.pw_type, &p.vlan_id) {
            (Some(pw_type::ETH_VLAN), None) => return Err(missarg("vlan_id")),
            (Some(pw_type::ETH_VLAN), Some(_)) => {}
            (_, Some((_, text))) => return Err(invarg("vlan_id needs pw_type eth_vlan", text)),
            (_, None) => {}
        }
        return Ok(Action::Control(
            Command::ControlSession,
            Attrs {
                conn_id: Some(p.tunnel_id),
                pw_type: p.pw_type,
                vlan_id: p.vlan_id.as_ref().map(|v| v.0),
                ifname: p.ifname.clone(),
                recv_seq: (p.seq_given && p.recv_seq).then_some(1),
                ..Attrs::default()
            },
        ));
    }
    if p.encap == encap_type::IP {
        if p.version.as_ref().is_some_and(|v| v.0 == 2) {
            return Err(CliError::new(
                "L2TPv2 runs over UDP only: \"encap ip\" needs version 3\n".to_string(),
                EXIT_USAGE,
            ));
        }
        if p.udp_dport != 0 {
            return Err(invarg(
                "udp_dport is for encap udp",
                &p.udp_dport.to_string(),
            ));
        }
    }
    let mut a = Attrs {
        proto_version: p.version.as_ref().map(|v| v.0),
        encap_type: (p.encap == encap_type::IP).then_some(encap_type::IP),
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

/// Extension (configured calls, `[[lac]]`): `dial PROFILE [wait]`, `hangup PROFILE`.
fn do_dial(sub: &str, args: &[String]) -> Result<Action, CliError> {
    let Some(name) = args.first() else {
        return Err(missarg("PROFILE"));
    };
    if num::matches(name, "help") {
        return Err(usage());
    }
    let wait = match (sub, args.get(1).map(String::as_str)) {
        (_, None) => false,
        ("dial", Some("wait")) => true,
        (_, Some(other)) => return Err(unknown_keyword(other)),
    };
    if let Some(extra) = args.get(2) {
        return Err(unknown_keyword(extra));
    }
    let cmd = if sub == "dial" {
        Command::Dial
    } else {
        Command::Hangup
    };
    Ok(Action::Control(
        cmd,
        Attrs {
            profile: Some(name.clone()),
            wait: wait.then_some(true),
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
        } else if opt.len() >= 2 && num::matches(opt, "-netns") {
            // ip.c: `-n NETNS` (any prefix of `-netns`) switches namespace before the command.
            let Some(name) = args.get(i + 1) else {
                return Err(CliError::new(
                    "Command line is not complete. Try option \"help\"\n".to_string(),
                    EXIT_USAGE,
                ));
            };
            o.netns = Some(name.clone());
            i += 1;
        } else if opt.len() >= 2
            && (num::matches(opt, "-stats") || num::matches(opt, "-statistics"))
        {
            o.stats = true;
        } else if opt.len() >= 2 && num::matches(opt, "-batch") {
            let Some(file) = args.get(i + 1) else {
                return Err(CliError::new(
                    "Option \"-batch\" requires a file name (or - for stdin)\n".to_string(),
                    EXIT_USAGE,
                ));
            };
            o.batch = Some(file.clone());
            i += 1;
        } else if opt.len() >= 3 && num::matches(opt, "-force") {
            o.force = true;
        } else if opt.len() >= 2 && num::matches(opt, "-json") {
            o.json = true;
        } else if opt.len() >= 2 && num::matches(opt, "-pretty") {
            o.pretty = true;
        } else if (opt.len() >= 2 && num::matches(opt, "-Version")) || opt == "-version" {
            // `-version` / `--version` too (ip knows only `-V[ersion]`), as ul2tpd has it.
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
    if options.batch.is_some() {
        if let Some(extra) = args.first() {
            return Err(CliError::new(
                format!(
                    "Option \"-batch\" takes no command (got \"{extra}\"), try \"ul2tp help\".\n"
                ),
                EXIT_USAGE,
            ));
        }
        return Ok(Invocation {
            options,
            action: Action::Batch,
        });
    }
    let action = parse_command(args, warnings)?;
    Ok(Invocation { options, action })
}

/// Parse one command (the words after the global options): a command line's, or one line
/// of a `-batch` file.
pub fn parse_command(args: &[String], warnings: &mut Vec<String>) -> Result<Action, CliError> {
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
    } else if (num::matches(sub, "show") || num::matches(sub, "lst") || num::matches(sub, "list"))
        && rest.first().is_some_and(|w| w == "ppp")
    {
        // Extension: `show ppp [tunnel_id ID] [session_id ID]`.
        let (tunnel_id, session_id) = if rest.len() > 1 {
            let p = parse_params(&rest[1..], warnings)?;
            (p.tunnel_id, p.session_id)
        } else {
            (0, 0)
        };
        Action::Show {
            what: ShowWhat::Ppp,
            request: Attrs::default(),
            tunnel_id,
            session_id,
        }
    } else if (num::matches(sub, "show") || num::matches(sub, "lst") || num::matches(sub, "list"))
        && rest.first().is_some_and(|w| w == "lac")
    {
        // Extension: the configured calls.
        match rest.get(1..).unwrap_or_default() {
            [] => Action::ShowLac(None),
            [name] => Action::ShowLac(Some(name.clone())),
            [_, extra, ..] => return Err(unknown_keyword(extra)),
        }
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
        // `wait` is ours alone; the rest is the common grammar.
        let wait = rest.iter().any(|a| a == "wait");
        let rest: Vec<String> = rest.iter().filter(|a| *a != "wait").cloned().collect();
        let mut action = do_connect(&parse_params(&rest, warnings)?)?;
        if let Action::Control(_, a) = &mut action {
            a.wait = wait.then_some(true);
        }
        action
    } else if sub == "dial" || sub == "hangup" {
        do_dial(sub, rest)?
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
    Ok(action)
}

#[cfg(test)]
mod tests;
