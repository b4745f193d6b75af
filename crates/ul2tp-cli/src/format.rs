//! `show` output: iproute2's text layout (docs/reference/kernel.md §11.4) and JSON keys (§11.5).
//!
//! Each entry is decoded afresh from its attributes, so nothing leaks from one entry into
//! the next (iproute2 reuses one parse buffer across a dump; that display bug, §11.4, is
//! deliberately not reproduced). Decoding follows iproute2's `get_response()`: an absent
//! encap means UDP, the address family is IPv4 when `ip_saddr` is present and IPv6
//! otherwise, IPv6 UDP checksums are on unless the zero-checksum flags are present.
//!
//! Extensions, printed only where iproute2 would print nothing so ETH sessions and L2TPv3
//! tunnels stay identical: `  pseudowire type: <name>` and `  vlan id: <n>` for non-ETH
//! sessions (JSON keys `pw_type`, `vlan_id`), `  L2TP version: <v>` for tunnels whose
//! version is not 3 (JSON key `version`).

use core::net::{IpAddr, Ipv6Addr};

use ul2tp_api::{encap_type, parse_cookie_hex, pw_type, Attrs, Command, Stats};

use crate::json::JsonWriter;

/// The name of a pseudowire type as the CLI spells it.
pub fn pw_type_name(t: u16) -> String {
    match t {
        pw_type::NONE => "none".into(),
        pw_type::ETH_VLAN => "eth_vlan".into(),
        pw_type::ETH => "eth".into(),
        pw_type::PPP => "ppp".into(),
        pw_type::PPP_AC => "ppp_ac".into(),
        pw_type::IP => "ip".into(),
        other => other.to_string(),
    }
}

/// An address as glibc `inet_ntop` writes it. For IPv6 this differs from Rust's `Display`
/// in one case: IPv4-compatible addresses (`::a.b.c.d`, first 96 bits zero) keep the
/// dotted tail, as glibc does.
pub fn ntop(addr: IpAddr) -> String {
    let v6 = match addr {
        IpAddr::V4(v4) => return v4.to_string(),
        IpAddr::V6(v6) => v6,
    };
    let w = v6.segments();
    // The longest run of two or more zero words (the first on a tie) becomes "::".
    let (mut best_base, mut best_len) = (None, 0usize);
    let mut i = 0;
    while i < 8 {
        if w[i] == 0 {
            let start = i;
            while i < 8 && w[i] == 0 {
                i += 1;
            }
            if i - start > best_len && i - start >= 2 {
                best_base = Some(start);
                best_len = i - start;
            }
        } else {
            i += 1;
        }
    }
    let mut out = String::new();
    let mut i = 0;
    while i < 8 {
        if best_base == Some(i) {
            if i == 0 {
                out.push(':');
            }
            out.push(':');
            i += best_len;
            continue;
        }
        // glibc: an embedded IPv4 tail after ::/96 or ::ffff:0:0/96.
        if i == 6 && best_base == Some(0) && (best_len == 6 || (best_len == 5 && w[5] == 0xffff)) {
            let [.., a, b, c, d] = v6.octets();
            out.push_str(&format!("{a}.{b}.{c}.{d}"));
            return out;
        }
        out.push_str(&format!("{:x}", w[i]));
        if i < 7 {
            out.push(':');
        }
        i += 1;
    }
    out
}

/// A tunnel as iproute2 sees it after parsing one dump entry.
struct TunnelView {
    /// Set only when the version is not 3 (extension).
    version: Option<u8>,
    tunnel_id: u32,
    peer_tunnel_id: u32,
    encap: &'static str,
    udp: bool,
    local: IpAddr,
    peer: IpAddr,
    local_port: u16,
    peer_port: u16,
    udp_csum: bool,
    csum6_tx: bool,
    csum6_rx: bool,
}

impl TunnelView {
    fn new(a: &Attrs) -> Self {
        let encap = a.encap_type.unwrap_or(encap_type::UDP);
        let local = match (a.ip_saddr, a.ip6_saddr) {
            (Some(v4), _) => IpAddr::V4(v4),
            (None, v6) => IpAddr::V6(v6.unwrap_or(Ipv6Addr::UNSPECIFIED)),
        };
        let peer = match (a.ip_daddr, a.ip6_daddr) {
            (Some(v4), _) => IpAddr::V4(v4),
            (None, v6) => IpAddr::V6(v6.unwrap_or(Ipv6Addr::UNSPECIFIED)),
        };
        TunnelView {
            version: a.proto_version.filter(|&v| v != 3),
            tunnel_id: a.conn_id.unwrap_or(0),
            peer_tunnel_id: a.peer_conn_id.unwrap_or(0),
            encap: match encap {
                encap_type::UDP => "UDP",
                encap_type::IP => "IP",
                _ => "??",
            },
            udp: encap == encap_type::UDP,
            local,
            peer,
            local_port: a.udp_sport.unwrap_or(0),
            peer_port: a.udp_dport.unwrap_or(0),
            udp_csum: a.udp_csum.is_some_and(|v| v != 0),
            csum6_tx: a.udp_zero_csum6_tx != Some(true),
            csum6_rx: a.udp_zero_csum6_rx != Some(true),
        }
    }
}

/// One tunnel in iproute2's text layout (docs/reference/kernel.md §11.4).
pub fn tunnel_text(a: &Attrs) -> String {
    let t = TunnelView::new(a);
    let mut s = format!(
        "Tunnel {}, encap {}\n  From {} to {}\n  Peer tunnel {}\n",
        t.tunnel_id,
        t.encap,
        ntop(t.local),
        ntop(t.peer),
        t.peer_tunnel_id
    );
    if let Some(v) = t.version {
        s.push_str(&format!("  L2TP version: {v}\n"));
    }
    if t.udp {
        s.push_str(&format!(
            "  UDP source / dest ports: {}/{}\n",
            t.local_port, t.peer_port
        ));
        let csum = if t.local.is_ipv4() {
            if t.udp_csum {
                "enabled"
            } else {
                "disabled"
            }
        } else {
            match (t.csum6_tx, t.csum6_rx) {
                (true, true) => "enabled",
                (true, false) => "tx",
                (false, true) => "rx",
                (false, false) => "disabled",
            }
        };
        s.push_str(&format!("  UDP checksum: {csum}\n"));
    }
    // Extension: what the control protocol learnt of a dynamic tunnel.
    match (&a.peer_host_name, &a.lns_profile) {
        (Some(h), Some(p)) => s.push_str(&format!("  Peer host name: {h:?}, profile: {p}\n")),
        (Some(h), None) => s.push_str(&format!("  Peer host name: {h:?}\n")),
        (None, Some(p)) => s.push_str(&format!("  Profile: {p}\n")),
        (None, None) => {}
    }
    s
}

/// One tunnel as a JSON object (docs/reference/kernel.md §11.5).
pub fn tunnel_json(w: &mut JsonWriter, a: &Attrs, event: Option<&str>, stats: Option<&Stats>) {
    let t = TunnelView::new(a);
    w.start_object();
    if let Some(e) = event {
        w.string("event", e);
    }
    w.uint("tunnel_id", t.tunnel_id.into());
    w.string("encap", t.encap);
    w.string("local", &ntop(t.local));
    w.string("peer", &ntop(t.peer));
    w.uint("peer_tunnel", t.peer_tunnel_id.into());
    if let Some(v) = t.version {
        w.uint("version", v.into());
    }
    if t.udp {
        w.uint("local_port", t.local_port.into());
        w.uint("peer_port", t.peer_port.into());
        if t.local.is_ipv4() {
            w.boolean("checksum", t.udp_csum);
        } else {
            // iproute2 prints the tx flag under both keys; we print each flag's own value.
            w.boolean("checksum_tx", t.csum6_tx);
            w.boolean("checksum_rx", t.csum6_rx);
        }
    }
    if let Some(h) = &a.peer_host_name {
        w.string("peer_host_name", h);
    }
    if let Some(p) = &a.lns_profile {
        w.string("profile", p);
    }
    stats_json(w, stats);
    w.end_object();
}

/// iproute2 `print_cookie`: the first four bytes, and the next four when there are eight.
fn cookie_display(hex: &str) -> Option<String> {
    let bytes = match parse_cookie_hex(hex) {
        Ok(b) => b,
        // Not valid hex: show what the daemon sent rather than nothing.
        Err(_) => return (!hex.is_empty()).then(|| hex.to_string()),
    };
    if bytes.is_empty() {
        return None;
    }
    let shown = if bytes.len() == 8 {
        &bytes[..]
    } else {
        &bytes[..bytes.len().min(4)]
    };
    Some(ul2tp_api::cookie_hex(shown))
}

/// A session as iproute2 sees it after parsing one dump entry.
struct SessionView<'a> {
    session_id: u32,
    tunnel_id: u32,
    peer_session_id: u32,
    peer_tunnel_id: u32,
    ifname: Option<&'a str>,
    cookie: Option<String>,
    peer_cookie: Option<String>,
    reorder_timeout: u64,
    send_seq: bool,
    recv_seq: bool,
    /// Set only for non-ETH sessions (extension).
    pw_type: Option<String>,
    vlan_id: Option<u16>,
    /// The IPv6 /64 of a PPP session's link and the prefix delegated on it (extension).
    ipv6_prefix: Option<&'a str>,
    ipv6_delegated: Option<&'a str>,
}

impl<'a> SessionView<'a> {
    fn new(a: &'a Attrs) -> Self {
        let pt = a.pw_type.unwrap_or(pw_type::ETH);
        let non_eth = pt != pw_type::ETH;
        SessionView {
            session_id: a.session_id.unwrap_or(0),
            tunnel_id: a.conn_id.unwrap_or(0),
            peer_session_id: a.peer_session_id.unwrap_or(0),
            peer_tunnel_id: a.peer_conn_id.unwrap_or(0),
            ifname: a.ifname.as_deref(),
            cookie: a.cookie.as_deref().and_then(cookie_display),
            peer_cookie: a.peer_cookie.as_deref().and_then(cookie_display),
            reorder_timeout: a.recv_timeout.unwrap_or(0),
            send_seq: a.send_seq.is_some_and(|v| v != 0),
            recv_seq: a.recv_seq.is_some_and(|v| v != 0),
            pw_type: non_eth.then(|| pw_type_name(pt)),
            vlan_id: if non_eth { a.vlan_id } else { None },
            ipv6_prefix: a.ppp_ipv6_prefix.as_deref(),
            ipv6_delegated: a.ppp_ipv6_delegated.as_deref(),
        }
    }
}

/// One session in iproute2's text layout (docs/reference/kernel.md §11.4), with the non-ETH extension
/// lines.
pub fn session_text(a: &Attrs) -> String {
    let v = SessionView::new(a);
    let mut s = format!(
        "Session {} in tunnel {}\n  Peer session {}, tunnel {}\n",
        v.session_id, v.tunnel_id, v.peer_session_id, v.peer_tunnel_id
    );
    if let Some(name) = v.ifname {
        s.push_str(&format!("  interface name: {name}\n"));
    }
    if let Some(pt) = &v.pw_type {
        s.push_str(&format!("  pseudowire type: {pt}\n"));
        if let Some(vid) = v.vlan_id {
            s.push_str(&format!("  vlan id: {vid}\n"));
        }
    }
    s.push_str(&ppp_text(a));
    if let Some(p) = v.ipv6_prefix {
        s.push_str(&format!("  ipv6 prefix: {p}\n"));
    }
    if let Some(p) = v.ipv6_delegated {
        s.push_str(&format!("  delegated prefix: {p}\n"));
    }
    // Offsets are gone from the kernel (docs/reference/kernel.md §6.4); iproute2 still prints zeros.
    s.push_str("  offset 0, peer offset 0\n");
    if let Some(c) = &v.cookie {
        s.push_str(&format!("  cookie {c}"));
    }
    if let Some(c) = &v.peer_cookie {
        s.push_str(&format!("  peer cookie {c}"));
    }
    if v.reorder_timeout != 0 {
        s.push_str(&format!("  reorder timeout: {}", v.reorder_timeout));
    }
    if v.send_seq || v.recv_seq {
        s.push_str("\n  sequence numbering:");
        if v.send_seq {
            s.push_str(" send");
        }
        if v.recv_seq {
            s.push_str(" recv");
        }
    }
    s.push('\n');
    s
}

/// One session as a JSON object (docs/reference/kernel.md §11.5), with the non-ETH extension keys.
pub fn session_json(w: &mut JsonWriter, a: &Attrs, event: Option<&str>, stats: Option<&Stats>) {
    let v = SessionView::new(a);
    w.start_object();
    if let Some(e) = event {
        w.string("event", e);
    }
    w.uint("session_id", v.session_id.into());
    w.uint("tunnel_id", v.tunnel_id.into());
    w.uint("peer_session_id", v.peer_session_id.into());
    w.uint("peer_tunnel_id", v.peer_tunnel_id.into());
    if let Some(name) = v.ifname {
        w.string("interface", name);
    }
    if let Some(pt) = &v.pw_type {
        w.string("pw_type", pt);
        if let Some(vid) = v.vlan_id {
            w.uint("vlan_id", vid.into());
        }
    }
    if let Some(p) = v.ipv6_prefix {
        w.string("ipv6_prefix", p);
    }
    if let Some(p) = v.ipv6_delegated {
        w.string("ipv6_delegated", p);
    }
    if let Some(c) = &v.cookie {
        w.string("cookie", c);
    }
    if let Some(c) = &v.peer_cookie {
        w.string("peer_cookie", c);
    }
    if v.reorder_timeout != 0 {
        w.uint("reorder_timeout", v.reorder_timeout);
    }
    if v.send_seq {
        w.null("send_seq");
    }
    if v.recv_seq {
        w.null("recv_seq");
    }
    ppp_json(w, a);
    stats_json(w, stats);
    w.end_object();
}

/// Whether the daemon reported anything about a PPP endpoint on the session.
fn has_ppp(a: &Attrs) -> bool {
    a.ppp_user.is_some()
        || a.ppp_ifname.is_some()
        || a.ppp_peer.is_some()
        || a.ppp_profile.is_some()
}

/// `1d 02:03:04`, `02:03:04`.
pub fn duration_text(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d {h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

/// The PPP lines of `show session` (extension): user, addresses, device, time online, bytes,
/// profile and pool.
fn ppp_text(a: &Attrs) -> String {
    if !has_ppp(a) {
        return String::new();
    }
    let mut s = String::from("  ppp:");
    if let Some(u) = &a.ppp_user {
        s.push_str(&format!(" user {u:?}"));
    }
    match (a.ppp_local, a.ppp_peer) {
        (Some(l), Some(p)) => s.push_str(&format!(" {l} -> {p}")),
        // The device is up for IPv6 alone (an IPv6-only link, or IPCP down).
        _ if a.ppp_ifname.is_some() => s.push_str(" IPv6 only"),
        _ => s.push_str(" (network layer down)"),
    }
    if let Some(d) = &a.ppp_ifname {
        s.push_str(&format!(" on {d}"));
    }
    if let Some(t) = a.ppp_online {
        s.push_str(&format!(", online {}", duration_text(t)));
    }
    if let Some(st) = &a.stats {
        s.push_str(&format!(", rx {} tx {} bytes", st.rx_bytes, st.tx_bytes));
    }
    s.push('\n');
    if a.ppp_profile.is_some() || a.ppp_pool.is_some() {
        s.push_str("  ppp");
        if let Some(p) = &a.ppp_profile {
            s.push_str(&format!(" profile {p}"));
        }
        if let Some(p) = &a.ppp_pool {
            s.push_str(&format!(" pool {p}"));
        }
        s.push('\n');
    }
    // ul2tp: RADIUS Framed-Route / Framed-IP-Netmask (docs/radius.md).
    if let Some(r) = a.ppp_routes.as_ref().filter(|r| !r.is_empty()) {
        s.push_str(&format!("  ppp routes {}\n", r.join(" ")));
    }
    // ul2tp: an LNS session accounted by RADIUS (docs/radius.md).
    if let Some(id) = &a.acct_session_id {
        s.push_str(&format!("  acct session id {id}\n"));
    }
    s
}

/// The `"ppp"` object of a session in JSON (extension).
fn ppp_json(w: &mut JsonWriter, a: &Attrs) {
    if !has_ppp(a) {
        return;
    }
    w.start_object_named("ppp");
    ppp_fields(w, a);
    w.end_object();
}

fn ppp_fields(w: &mut JsonWriter, a: &Attrs) {
    if let Some(u) = &a.ppp_user {
        w.string("user", u);
    }
    if let Some(d) = &a.ppp_ifname {
        w.string("interface", d);
    }
    if let Some(l) = a.ppp_local {
        w.string("local", &l.to_string());
    }
    if let Some(p) = a.ppp_peer {
        w.string("peer", &p.to_string());
    }
    if let Some(t) = a.ppp_online {
        w.uint("online", t);
    }
    if let Some(st) = &a.stats {
        w.uint("rx_bytes", st.rx_bytes);
        w.uint("tx_bytes", st.tx_bytes);
    }
    if let Some(p) = &a.ppp_profile {
        w.string("profile", p);
    }
    if let Some(p) = &a.ppp_pool {
        w.string("pool", p);
    }
    if let Some(r) = a.ppp_routes.as_ref().filter(|r| !r.is_empty()) {
        w.string_array("routes", r.iter().map(String::as_str));
    }
    if let Some(id) = &a.acct_session_id {
        w.string("acct_session_id", id);
    }
}

/// `show ppp` (extension): the sessions with a PPP endpoint, one line each under a header
/// (text), or an array of objects (JSON).
pub fn show_ppp(entries: &[Attrs], json: bool, pretty: bool) -> String {
    let ppp: Vec<&Attrs> = entries.iter().filter(|a| has_ppp(a)).collect();
    if json {
        let mut w = JsonWriter::new(pretty);
        w.start_array();
        for a in ppp {
            w.start_object();
            w.uint("tunnel_id", a.conn_id.unwrap_or(0).into());
            w.uint("session_id", a.session_id.unwrap_or(0).into());
            ppp_fields(&mut w, a);
            w.end_object();
        }
        w.end_array();
        return w.finish();
    }
    let dash = |o: Option<String>| o.unwrap_or_else(|| "-".into());
    let rows: Vec<[String; 10]> = ppp
        .iter()
        .map(|a| {
            [
                format!("{}/{}", a.conn_id.unwrap_or(0), a.session_id.unwrap_or(0)),
                dash(a.ppp_user.clone()),
                dash(a.ppp_ifname.clone()),
                dash(a.ppp_local.map(|x| x.to_string())),
                dash(a.ppp_peer.map(|x| x.to_string())),
                dash(a.ppp_online.map(duration_text)),
                dash(a.stats.map(|s| s.rx_bytes.to_string())),
                dash(a.stats.map(|s| s.tx_bytes.to_string())),
                dash(a.ppp_profile.clone()),
                dash(a.ppp_pool.clone()),
            ]
        })
        .collect();
    let head = [
        "CALL", "USER", "DEVICE", "LOCAL", "PEER", "ONLINE", "RX_BYTES", "TX_BYTES", "PROFILE",
        "POOL",
    ];
    let mut width: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(&width).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                l.push_str(&format!("{c:<w$}  "));
            }
        }
        l.push('\n');
        l
    };
    let mut out = line(head.to_vec());
    for r in &rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// Is this event about a tunnel (else a session)? Tunnel and session commands say so by
/// name; any other event is a session event when it names a session.
fn is_tunnel_event(cmd: Command, a: &Attrs) -> bool {
    match cmd {
        Command::TunnelCreate
        | Command::TunnelDelete
        | Command::TunnelModify
        | Command::TunnelGet => true,
        Command::SessionCreate
        | Command::SessionDelete
        | Command::SessionModify
        | Command::SessionGet => false,
        _ => a.session_id.is_none(),
    }
}

/// The netlink-style name of an event: `TUNNEL_CREATE`, `SESSION_DELETE`, ...; trace
/// events (sent with `trace_set`) are called `TRACE`.
pub fn event_name(cmd: Command) -> String {
    if cmd == Command::TraceSet {
        return "TRACE".to_string();
    }
    // Command serialises as snake_case; upper-case it.
    serde_json::to_value(cmd)
        .ok()
        .and_then(|v| v.as_str().map(str::to_ascii_uppercase))
        .unwrap_or_else(|| format!("{cmd:?}").to_ascii_uppercase())
}

/// One `monitor` event. A notification (attributes) prints as
/// `[TUNNEL_CREATE] Tunnel 3000, encap UDP ...` (the `show` layout) or, with JSON, as one
/// object with an `event` key in front of the `show` keys. A text-only event (a trace
/// event, docs/reference/kernel.md §9.2) prints as `[TRACE] <text>` or `{"event":"TRACE","text":...}`.
pub fn event(
    cmd: Command,
    attrs: Option<&Attrs>,
    text: Option<&str>,
    json: bool,
    pretty: bool,
) -> String {
    let name = event_name(cmd);
    if let (None, Some(t)) = (attrs, text) {
        let t = t.trim_end_matches('\n');
        return if json {
            let mut w = JsonWriter::new(pretty);
            w.start_object();
            w.string("event", &name);
            w.string("text", t);
            w.end_object();
            w.finish()
        } else {
            format!("[{name}] {t}\n")
        };
    }
    let default = Attrs::default();
    let a = attrs.unwrap_or(&default);
    let tunnel = is_tunnel_event(cmd, a);
    if json {
        let mut w = JsonWriter::new(pretty);
        if tunnel {
            tunnel_json(&mut w, a, Some(&name), None);
        } else {
            session_json(&mut w, a, Some(&name), None);
        }
        w.finish()
    } else if tunnel {
        format!("[{name}] {}", tunnel_text(a))
    } else {
        format!("[{name}] {}", session_text(a))
    }
}

/// The complete `show tunnel` output for these entries; with `stats` (`-s`) each object gets
/// its counters ([`stats_text`], or a `stats` object in JSON).
pub fn show_tunnels(entries: &[Attrs], json: bool, pretty: bool, stats: bool) -> String {
    show(entries, json, pretty, stats, tunnel_text, tunnel_json)
}

/// The complete `show session` output for these entries (see [`show_tunnels`]).
pub fn show_sessions(entries: &[Attrs], json: bool, pretty: bool, stats: bool) -> String {
    show(entries, json, pretty, stats, session_text, session_json)
}

fn show(
    entries: &[Attrs],
    json: bool,
    pretty: bool,
    stats: bool,
    text: fn(&Attrs) -> String,
    object: fn(&mut JsonWriter, &Attrs, Option<&str>, Option<&Stats>),
) -> String {
    let counters = |a: &Attrs| a.stats.filter(|_| stats);
    if json {
        let mut w = JsonWriter::new(pretty);
        w.start_array();
        for a in entries {
            object(&mut w, a, None, counters(a).as_ref());
        }
        w.end_array();
        w.finish()
    } else {
        entries
            .iter()
            .map(|a| match counters(a) {
                Some(st) => text(a) + &stats_text(&st),
                None => text(a),
            })
            .collect()
    }
}

/// `"stats": {...}` with the ten counters, for `-j -s`.
fn stats_json(w: &mut JsonWriter, st: Option<&Stats>) {
    let Some(st) = st else { return };
    w.start_object_named("stats");
    for (name, v) in stats_fields(st) {
        w.uint(name, v);
    }
    w.end_object();
}

/// The ten counters (docs/reference/kernel.md §3.1) under their API names.
fn stats_fields(st: &Stats) -> [(&'static str, u64); 10] {
    [
        ("tx_packets", st.tx_packets),
        ("tx_bytes", st.tx_bytes),
        ("tx_errors", st.tx_errors),
        ("rx_packets", st.rx_packets),
        ("rx_bytes", st.rx_bytes),
        ("rx_seq_discards", st.rx_seq_discards),
        ("rx_cookie_discards", st.rx_cookie_discards),
        ("rx_oos_packets", st.rx_oos_packets),
        ("rx_errors", st.rx_errors),
        ("rx_invalid", st.rx_invalid),
    ]
}

/// `-s` counters under an object, laid out like `ip -s link`: a header line and a value line for
/// each direction. (`ip -s l2tp` itself prints none; ul2tp prints them, as `-s` promises.)
pub fn stats_text(st: &Stats) -> String {
    let rx = [
        st.rx_packets,
        st.rx_bytes,
        st.rx_errors,
        st.rx_seq_discards,
        st.rx_cookie_discards,
        st.rx_oos_packets,
        st.rx_invalid,
    ];
    let tx = [st.tx_packets, st.tx_bytes, st.tx_errors];
    let rx_names = [
        "packets",
        "bytes",
        "errors",
        "seq_discards",
        "cookie_discards",
        "oos_packets",
        "invalid",
    ];
    let tx_names = ["packets", "bytes", "errors"];
    let mut s = String::new();
    for (dir, names, vals) in [
        ("RX", &rx_names[..], &rx[..]),
        ("TX", &tx_names[..], &tx[..]),
    ] {
        let widths: Vec<usize> = names
            .iter()
            .zip(vals)
            .map(|(n, v)| n.len().max(v.to_string().len()))
            .collect();
        s.push_str(&format!("  {dir}: "));
        let head: Vec<String> = names
            .iter()
            .zip(&widths)
            .map(|(n, w)| format!("{n:<w$}"))
            .collect();
        s.push_str(head.join(" ").trim_end());
        s.push_str("\n      ");
        let row: Vec<String> = vals
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect();
        s.push_str(row.join(" ").trim_end());
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp4() -> Attrs {
        Attrs {
            proto_version: Some(3),
            conn_id: Some(3000),
            peer_conn_id: Some(4000),
            debug: Some(0),
            encap_type: Some(0),
            udp_csum: Some(0),
            udp_sport: Some(5000),
            udp_dport: Some(6000),
            ip_saddr: Some("192.0.2.1".parse().unwrap()),
            ip_daddr: Some("192.0.2.2".parse().unwrap()),
            stats: Some(Default::default()),
            ..Attrs::default()
        }
    }

    #[test]
    fn tunnel_udp4_text_and_json() {
        assert_eq!(
            tunnel_text(&udp4()),
            "Tunnel 3000, encap UDP\n  From 192.0.2.1 to 192.0.2.2\n  Peer tunnel 4000\n  UDP source / dest ports: 5000/6000\n  UDP checksum: disabled\n"
        );
        let mut a = udp4();
        a.udp_csum = Some(1);
        assert!(tunnel_text(&a).ends_with("  UDP checksum: enabled\n"));
        assert_eq!(
            show_tunnels(&[udp4()], true, false, false),
            "[{\"tunnel_id\":3000,\"encap\":\"UDP\",\"local\":\"192.0.2.1\",\"peer\":\"192.0.2.2\",\"peer_tunnel\":4000,\"local_port\":5000,\"peer_port\":6000,\"checksum\":false}]\n"
        );
    }

    #[test]
    fn tunnel_udp6_checksum_variants() {
        let mut a = Attrs {
            conn_id: Some(1),
            peer_conn_id: Some(2),
            encap_type: Some(0),
            udp_sport: Some(1701),
            udp_dport: Some(1701),
            ip6_saddr: Some("2001:db8::1".parse().unwrap()),
            ip6_daddr: Some("2001:db8::2".parse().unwrap()),
            ..Attrs::default()
        };
        let head = "Tunnel 1, encap UDP\n  From 2001:db8::1 to 2001:db8::2\n  Peer tunnel 2\n  UDP source / dest ports: 1701/1701\n";
        assert_eq!(tunnel_text(&a), format!("{head}  UDP checksum: enabled\n"));
        a.udp_zero_csum6_rx = Some(true);
        assert_eq!(tunnel_text(&a), format!("{head}  UDP checksum: tx\n"));
        assert!(show_tunnels(&[a.clone()], true, false, false)
            .contains("\"checksum_tx\":true,\"checksum_rx\":false}"));
        a.udp_zero_csum6_tx = Some(true);
        assert_eq!(tunnel_text(&a), format!("{head}  UDP checksum: disabled\n"));
        a.udp_zero_csum6_rx = Some(false);
        assert_eq!(tunnel_text(&a), format!("{head}  UDP checksum: rx\n"));
    }

    #[test]
    fn tunnel_v2_extension_line() {
        let mut a = udp4();
        a.proto_version = Some(2);
        assert_eq!(
            tunnel_text(&a),
            "Tunnel 3000, encap UDP\n  From 192.0.2.1 to 192.0.2.2\n  Peer tunnel 4000\n  L2TP version: 2\n  UDP source / dest ports: 5000/6000\n  UDP checksum: disabled\n"
        );
        assert!(
            show_tunnels(&[a], true, false, false).contains("\"peer_tunnel\":4000,\"version\":2,")
        );
    }

    #[test]
    fn tunnel_ip_encap_has_no_udp_lines() {
        let a = Attrs {
            conn_id: Some(7),
            peer_conn_id: Some(8),
            encap_type: Some(1),
            ip_saddr: Some("10.0.0.1".parse().unwrap()),
            ip_daddr: Some("10.0.0.2".parse().unwrap()),
            ..Attrs::default()
        };
        assert_eq!(
            tunnel_text(&a),
            "Tunnel 7, encap IP\n  From 10.0.0.1 to 10.0.0.2\n  Peer tunnel 8\n"
        );
        assert_eq!(
            show_tunnels(&[a], true, false, false),
            "[{\"tunnel_id\":7,\"encap\":\"IP\",\"local\":\"10.0.0.1\",\"peer\":\"10.0.0.2\",\"peer_tunnel\":8}]\n"
        );
        let odd = Attrs {
            encap_type: Some(9),
            ..Attrs::default()
        };
        assert_eq!(
            tunnel_text(&odd),
            "Tunnel 0, encap ??\n  From :: to ::\n  Peer tunnel 0\n"
        );
    }

    fn sess() -> Attrs {
        Attrs {
            conn_id: Some(3000),
            session_id: Some(1),
            peer_conn_id: Some(4000),
            peer_session_id: Some(2),
            debug: Some(0),
            pw_type: Some(5),
            recv_seq: Some(0),
            send_seq: Some(0),
            lns_mode: Some(0),
            ..Attrs::default()
        }
    }

    #[test]
    fn session_plain() {
        assert_eq!(
            session_text(&sess()),
            "Session 1 in tunnel 3000\n  Peer session 2, tunnel 4000\n  offset 0, peer offset 0\n\n"
        );
        assert_eq!(
            show_sessions(&[sess()], true, false, false),
            "[{\"session_id\":1,\"tunnel_id\":3000,\"peer_session_id\":2,\"peer_tunnel_id\":4000}]\n"
        );
    }

    #[test]
    fn session_everything() {
        let mut a = sess();
        a.ifname = Some("l2tpeth0".into());
        a.cookie = Some("0102030405060708".into());
        a.peer_cookie = Some("0a0b0c0d".into());
        a.recv_timeout = Some(100);
        a.send_seq = Some(1);
        a.recv_seq = Some(1);
        assert_eq!(
            session_text(&a),
            "Session 1 in tunnel 3000\n  Peer session 2, tunnel 4000\n  interface name: l2tpeth0\n  offset 0, peer offset 0\n  cookie 0102030405060708  peer cookie 0a0b0c0d  reorder timeout: 100\n  sequence numbering: send recv\n"
        );
        assert_eq!(
            show_sessions(&[a], true, false, false),
            "[{\"session_id\":1,\"tunnel_id\":3000,\"peer_session_id\":2,\"peer_tunnel_id\":4000,\"interface\":\"l2tpeth0\",\"cookie\":\"0102030405060708\",\"peer_cookie\":\"0a0b0c0d\",\"reorder_timeout\":100,\"send_seq\":null,\"recv_seq\":null}]\n"
        );
    }

    #[test]
    fn session_ppp_peer() {
        let mut a = sess();
        a.pw_type = Some(7);
        a.ppp_user = Some("alice".into());
        a.ppp_local = Some("10.96.0.1".parse().unwrap());
        a.ppp_peer = Some("10.96.0.77".parse().unwrap());
        a.ppp_online = Some(42);
        a.acct_session_id = Some("6B131CD9-0000765A-00008B72".into());
        a.ppp_routes = Some(vec!["198.51.100.0/24".into(), "203.0.113.0/28".into()]);
        let text = session_text(&a);
        assert!(
            text.contains("  ppp routes 198.51.100.0/24 203.0.113.0/28\n"),
            "{text}"
        );
        assert!(
            text.contains("  ppp: user \"alice\" 10.96.0.1 -> 10.96.0.77, online 00:00:42\n"),
            "{text}"
        );
        assert!(
            text.contains("  acct session id 6B131CD9-0000765A-00008B72\n"),
            "{text}"
        );
        let json = show_sessions(&[a], true, false, false);
        assert!(json.contains("\"user\":\"alice\""), "{json}");
        assert!(
            json.contains("\"peer\":\"10.96.0.77\",\"online\":42,\"routes\":[\"198.51.100.0/24\",\"203.0.113.0/28\"],\"acct_session_id\":\"6B131CD9-0000765A-00008B72\""),
            "{json}"
        );
    }

    /// A pppN without IPv4 addresses is an IPv6-only link; without a device the network
    /// layer is down.
    #[test]
    fn session_ppp_ipv6_only() {
        let mut a = sess();
        a.pw_type = Some(7);
        a.ppp_user = Some("alice".into());
        assert!(session_text(&a).contains("  ppp: user \"alice\" (network layer down)\n"));
        a.ppp_ifname = Some("ppp3".into());
        let text = session_text(&a);
        assert!(
            text.contains("  ppp: user \"alice\" IPv6 only on ppp3\n"),
            "{text}"
        );
    }

    #[test]
    fn session_seq_only_and_no_stale_fields() {
        let mut a = sess();
        a.recv_seq = Some(1);
        a.cookie = Some("deadbeef".into());
        let b = sess();
        // The second session must not inherit the first one's cookie (iproute2 bug).
        assert_eq!(
            show_sessions(&[a, b], false, false, false),
            "Session 1 in tunnel 3000\n  Peer session 2, tunnel 4000\n  offset 0, peer offset 0\n  cookie deadbeef\n  sequence numbering: recv\nSession 1 in tunnel 3000\n  Peer session 2, tunnel 4000\n  offset 0, peer offset 0\n\n"
        );
        let mut c = sess();
        c.send_seq = Some(1);
        assert_eq!(
            session_text(&c),
            "Session 1 in tunnel 3000\n  Peer session 2, tunnel 4000\n  offset 0, peer offset 0\n\n  sequence numbering: send\n"
        );
    }

    #[test]
    fn session_ipv6_prefix_line() {
        let mut a = sess();
        a.pw_type = Some(7);
        a.ppp_ipv6_prefix = Some("2001:db8:100:7::/64".into());
        assert_eq!(
            session_text(&a),
            "Session 1 in tunnel 3000\n  Peer session 2, tunnel 4000\n  pseudowire type: ppp\n  ipv6 prefix: 2001:db8:100:7::/64\n  offset 0, peer offset 0\n\n"
        );
        assert!(show_sessions(&[a.clone()], true, false, false)
            .contains("\"pw_type\":\"ppp\",\"ipv6_prefix\":\"2001:db8:100:7::/64\""));
        a.ppp_ipv6_delegated = Some("2001:db8:f00::/56".into());
        assert!(session_text(&a).contains(
            "  ipv6 prefix: 2001:db8:100:7::/64\n  delegated prefix: 2001:db8:f00::/56\n"
        ));
        assert!(show_sessions(&[a], true, false, false)
            .contains("\"ipv6_delegated\":\"2001:db8:f00::/56\""));
    }

    #[test]
    fn session_non_eth_extension_lines() {
        let mut a = sess();
        a.pw_type = Some(7);
        assert_eq!(
            session_text(&a),
            "Session 1 in tunnel 3000\n  Peer session 2, tunnel 4000\n  pseudowire type: ppp\n  offset 0, peer offset 0\n\n"
        );
        a.pw_type = Some(4);
        a.vlan_id = Some(100);
        assert!(session_text(&a).contains("  pseudowire type: eth_vlan\n  vlan id: 100\n"));
        assert!(show_sessions(&[a], true, false, false)
            .contains("\"pw_type\":\"eth_vlan\",\"vlan_id\":100"));
        // ETH sessions never show the extension, even with a vlan id.
        let mut e = sess();
        e.vlan_id = Some(5);
        assert!(!session_text(&e).contains("pseudowire"));
        assert!(!session_text(&e).contains("vlan"));
    }

    #[test]
    fn dynamic_tunnels_show_peer_host_name_and_profile() {
        let mut a = udp4();
        assert!(!tunnel_text(&a).contains("host name"));
        a.peer_host_name = Some("lac-1".into());
        a.lns_profile = Some("branch".into());
        assert!(
            tunnel_text(&a).ends_with("  Peer host name: \"lac-1\", profile: branch\n"),
            "{}",
            tunnel_text(&a)
        );
        let j = show_tunnels(std::slice::from_ref(&a), true, false, false);
        assert!(
            j.contains("\"peer_host_name\":\"lac-1\",\"profile\":\"branch\""),
            "{j}"
        );
        a.lns_profile = None;
        assert!(tunnel_text(&a).ends_with("  Peer host name: \"lac-1\"\n"));
    }

    #[test]
    fn ppp_sessions_show_user_addresses_device_time_and_bytes() {
        let mut a = sess();
        a.pw_type = Some(7);
        a.ppp_user = Some("alice".into());
        a.ppp_ifname = Some("ppp3".into());
        a.ppp_local = Some("10.64.0.1".parse().unwrap());
        a.ppp_peer = Some("10.64.0.10".parse().unwrap());
        a.ppp_online = Some(3723);
        a.ppp_profile = Some("branch".into());
        a.ppp_pool = Some("main".into());
        a.stats = Some(Stats {
            rx_bytes: 1000,
            tx_bytes: 2000,
            ..Stats::default()
        });
        let t = session_text(&a);
        assert!(
            t.contains("  ppp: user \"alice\" 10.64.0.1 -> 10.64.0.10 on ppp3, online 01:02:03, rx 1000 tx 2000 bytes\n  ppp profile branch pool main\n"),
            "{t}"
        );
        let j = show_sessions(std::slice::from_ref(&a), true, false, false);
        assert!(
            j.contains("\"ppp\":{\"user\":\"alice\",\"interface\":\"ppp3\",\"local\":\"10.64.0.1\",\"peer\":\"10.64.0.10\",\"online\":3723,\"rx_bytes\":1000,\"tx_bytes\":2000,\"profile\":\"branch\",\"pool\":\"main\"}"),
            "{j}"
        );
        // `show ppp`: a header and one line per PPP session; others are left out.
        let list = show_ppp(&[a.clone(), sess()], false, false);
        let lines: Vec<&str> = list.lines().collect();
        assert_eq!(lines.len(), 2, "{list}");
        assert!(lines[0].starts_with("CALL"), "{list}");
        let cols: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            cols,
            [
                "3000/1",
                "alice",
                "ppp3",
                "10.64.0.1",
                "10.64.0.10",
                "01:02:03",
                "1000",
                "2000",
                "branch",
                "main"
            ]
        );
        let j = show_ppp(&[a], true, false);
        assert!(
            j.starts_with("[{\"tunnel_id\":3000,\"session_id\":1,\"user\":\"alice\""),
            "{j}"
        );
        assert_eq!(duration_text(90061), "1d 01:01:01");
        // A PPP session without our endpoint shows no ppp line.
        let mut plain = sess();
        plain.pw_type = Some(7);
        assert!(!session_text(&plain).contains("ppp:"));
    }

    #[test]
    fn ipv6_text_like_glibc() {
        let f = |s: &str| ntop(s.parse().unwrap());
        assert_eq!(f("::"), "::");
        assert_eq!(f("::1"), "::1");
        assert_eq!(f("2001:db8::1"), "2001:db8::1");
        assert_eq!(f("2001:db8:0:0:1:0:0:1"), "2001:db8::1:0:0:1");
        assert_eq!(f("2001:0:0:1:0:0:0:1"), "2001:0:0:1::1");
        assert_eq!(f("1:0:2:0:3:0:4:0"), "1:0:2:0:3:0:4:0");
        assert_eq!(f("fe80::"), "fe80::");
        assert_eq!(f("1:2:3:4:5:6:7:8"), "1:2:3:4:5:6:7:8");
        assert_eq!(f("::ffff:192.0.2.1"), "::ffff:192.0.2.1");
        assert_eq!(f("::192.0.2.1"), "::192.0.2.1");
        assert_eq!(f("0:0:0:1:0:0:0:1"), "::1:0:0:0:1");
        assert_eq!(f("192.0.2.7"), "192.0.2.7");
    }

    #[test]
    fn cookie_lengths() {
        assert_eq!(cookie_display("").as_deref(), None);
        assert_eq!(cookie_display("0102030405").as_deref(), Some("01020304"));
        assert_eq!(cookie_display("0102").as_deref(), Some("0102"));
        assert_eq!(cookie_display("zz").as_deref(), Some("zz"));
    }

    #[test]
    fn events() {
        assert_eq!(
            event(Command::TunnelCreate, Some(&udp4()), None, false, false),
            format!("[TUNNEL_CREATE] {}", tunnel_text(&udp4()))
        );
        assert_eq!(
            event(Command::SessionDelete, Some(&sess()), None, false, false),
            format!("[SESSION_DELETE] {}", session_text(&sess()))
        );
        assert_eq!(
            event(
                Command::TraceSet,
                None,
                Some("delete_tunnel: tunl 3000"),
                false,
                false
            ),
            "[TRACE] delete_tunnel: tunl 3000\n"
        );
        assert_eq!(
            event(
                Command::TraceSet,
                None,
                Some("free_tunnel: tunl 3\n"),
                true,
                false
            ),
            "{\"event\":\"TRACE\",\"text\":\"free_tunnel: tunl 3\"}\n"
        );
        // An unknown event with a session id is shown as a session.
        assert!(event(Command::Noop, Some(&sess()), None, false, false)
            .starts_with("[NOOP] Session 1 in tunnel 3000\n"));
        assert_eq!(
            event(Command::SessionModify, Some(&sess()), None, true, false),
            "{\"event\":\"SESSION_MODIFY\",\"session_id\":1,\"tunnel_id\":3000,\"peer_session_id\":2,\"peer_tunnel_id\":4000}\n"
        );
    }
}
