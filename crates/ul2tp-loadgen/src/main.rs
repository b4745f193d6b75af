//! `ul2tp-loadgen`: many LAC tunnels and sessions from one process, without any device.
//!
//! One UDP socket and one `ul2tp_control::Endpoint` (the pure control engine ul2tpd uses)
//! play N tunnels × M sessions against an LNS: the tunnels are opened at once, the sessions at
//! `--rate` per second (ICRQ), each held for `--hold` seconds once up and then cleared (CDN),
//! and at the end the tunnels are closed (StopCCN). It reports the setup rate, the setup
//! latency percentiles (from the session's ICRQ being queued to its ICCN being acknowledged
//! as the engine reports it up) and the failures by cause (docs/PERFORMANCE.md, docs/testing.md).
//!
//! Without `--ppp` this is the control plane only. With `--ppp` (L2TPv2) every session also
//! runs PPP with the pure PPP engine (`ul2tp_ppp::Endpoint`, as ul2tpd's client side drives
//! it): LCP, PAP or CHAP-MD5 and IPCP, the frames carried as L2TPv2 data messages on the same
//! socket; a session counts as up when IPCP is up, and its latency runs to that moment.
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use ul2tp_control::{Config, Encap, Endpoint, Event, SessionConfig, Timestamp, Version};

const USAGE: &str =
    "usage: ul2tp-loadgen --peer ADDR:PORT [--local ADDR:PORT] [--tunnels N] [--sessions M]
                     [--version 2|3] [--rate SESSIONS_PER_S] [--hold SECONDS] [--timeout SECONDS]
  --peer      the LNS (e.g. 192.0.2.2:1701)
  --local     local address and port (default 0.0.0.0:0)
  --tunnels   tunnels to open (default 1)
  --sessions  sessions per tunnel (default 1)
  --version   L2TP version: 2 (PPP sessions) or 3 (Ethernet pseudowires; default)
  --rate      sessions opened per second, all tunnels together (default 1000)
  --hold      seconds a session stays up before it is cleared (default 0)
  --timeout   give up on what is not done after this many seconds (default 60)
  --ppp       run PPP in every session (implies --version 2): LCP, authentication, IPCP
  --auth      pap or chap (CHAP-MD5): how we authenticate (default pap)
  --user      user name; %d is replaced by the session's index (0, 1, ...)
  --password-file  file holding the password (first line)
";

struct Args {
    peer: SocketAddr,
    local: SocketAddr,
    tunnels: u32,
    sessions: u32,
    version: Version,
    rate: f64,
    hold: Duration,
    timeout: Duration,
    /// `--ppp`: how we authenticate, the user pattern and the password.
    ppp: Option<PppArgs>,
}

struct PppArgs {
    auth: ul2tp_ppp::AuthProtocol,
    user: String,
    password: Vec<u8>,
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut a = Args {
        peer: SocketAddr::from(([0, 0, 0, 0], 0)),
        local: SocketAddr::from(([0, 0, 0, 0], 0)),
        tunnels: 1,
        sessions: 1,
        version: Version::V3,
        rate: 1000.0,
        hold: Duration::ZERO,
        timeout: Duration::from_secs(60),
        ppp: None,
    };
    let mut peer = false;
    let (mut ppp, mut auth, mut user, mut pwfile) =
        (false, ul2tp_ppp::AuthProtocol::Pap, None, None);
    let mut it = args.iter();
    while let Some(k) = it.next() {
        if k == "--ppp" {
            ppp = true;
            continue;
        }
        let v = it.next().ok_or_else(|| format!("{k} needs a value"))?;
        let bad = |what: &str| format!("{k} {v}: not {what}");
        match k.as_str() {
            "--peer" => {
                a.peer = v.parse().map_err(|_| bad("ADDR:PORT"))?;
                peer = true;
            }
            "--local" => a.local = v.parse().map_err(|_| bad("ADDR:PORT"))?,
            "--tunnels" => a.tunnels = v.parse().map_err(|_| bad("a number"))?,
            "--sessions" => a.sessions = v.parse().map_err(|_| bad("a number"))?,
            "--version" => {
                a.version = match v.as_str() {
                    "2" => Version::V2,
                    "3" => Version::V3,
                    _ => return Err(bad("2 or 3")),
                }
            }
            "--rate" => {
                a.rate = v
                    .parse::<f64>()
                    .ok()
                    .filter(|r| *r > 0.0 && r.is_finite())
                    .ok_or_else(|| bad("a rate above 0"))?
            }
            "--hold" | "--timeout" => {
                let s = v
                    .parse::<f64>()
                    .ok()
                    .filter(|s| *s >= 0.0 && *s < 1e9)
                    .ok_or_else(|| bad("seconds"))?;
                let d = Duration::from_secs_f64(s);
                if k == "--hold" {
                    a.hold = d;
                } else {
                    a.timeout = d;
                }
            }
            "--auth" => {
                auth = match v.as_str() {
                    "pap" => ul2tp_ppp::AuthProtocol::Pap,
                    "chap" => ul2tp_ppp::AuthProtocol::ChapMd5,
                    _ => return Err(bad("pap or chap")),
                }
            }
            "--user" => user = Some(v.clone()),
            "--password-file" => pwfile = Some(v.clone()),
            "--password" => {
                return Err(
                    "--password: secrets are not taken on the command line; use --password-file"
                        .into(),
                )
            }
            _ => return Err(format!("unknown option {k}")),
        }
    }
    if !peer {
        return Err("--peer is required".into());
    }
    if ppp {
        let user = user.ok_or("--ppp needs --user")?;
        let file = pwfile.ok_or("--ppp needs --password-file")?;
        let text = std::fs::read(&file).map_err(|e| format!("--password-file {file}: {e}"))?;
        let line = text.split(|b| *b == b'\n').next().unwrap_or_default();
        let password = line.strip_suffix(b"\r").unwrap_or(line).to_vec();
        a.version = Version::V2;
        a.ppp = Some(PppArgs {
            auth,
            user,
            password,
        });
    } else if user.is_some() || pwfile.is_some() {
        return Err("--user and --password-file need --ppp".into());
    }
    if a.tunnels == 0 {
        return Err("--tunnels must be at least 1".into());
    }
    Ok(a)
}

/// What happened, for the report.
#[derive(Default)]
struct Report {
    tunnels_up: u32,
    tunnel_failures: BTreeMap<String, u32>,
    sessions_up: u32,
    session_failures: BTreeMap<String, u32>,
    latencies: Vec<Duration>,
    first_open: Option<Instant>,
    last_up: Option<Instant>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

impl Report {
    fn print(&mut self, wanted_tunnels: u32, wanted_sessions: u64) {
        self.latencies.sort();
        println!(
            "tunnels: {} of {wanted_tunnels} up, {} failed",
            self.tunnels_up,
            self.tunnel_failures.values().sum::<u32>()
        );
        println!(
            "sessions: {} of {wanted_sessions} up, {} failed",
            self.sessions_up,
            self.session_failures.values().sum::<u32>()
        );
        if let (Some(a), Some(b)) = (self.first_open, self.last_up) {
            let secs = (b - a).as_secs_f64().max(1e-6);
            println!(
                "setup rate: {:.0} sessions/s ({} in {secs:.3} s)",
                f64::from(self.sessions_up) / secs,
                self.sessions_up
            );
        }
        let l = &self.latencies;
        println!(
            "setup latency: p50 {} p90 {} p99 {} max {}",
            ms(percentile(l, 0.5)),
            ms(percentile(l, 0.9)),
            ms(percentile(l, 0.99)),
            ms(l.last().copied().unwrap_or_default())
        );
        for (cause, n) in &self.tunnel_failures {
            println!("tunnel failure: {n} x {cause}");
        }
        for (cause, n) in &self.session_failures {
            println!("session failure: {n} x {cause}");
        }
    }
}

/// The PPP link of one session (`--ppp`), from the L2TP session's up to IPCP up.
struct PppLink {
    ep: ul2tp_ppp::Endpoint,
    peer: SocketAddr,
    hdr: ul2tp_wire::data::V2DataHeader,
    ns: u16,
    /// The peer refused our credentials (the cause when the call then goes).
    auth_rejected: bool,
}

impl PppLink {
    /// Send what the endpoint queued as L2TPv2 data messages (FF 03 + protocol + information).
    fn flush(&mut self, sock: &UdpSocket) {
        while let Some(f) = self.ep.poll_transmit() {
            if let Some((_, nr)) = self.hdr.ns_nr {
                self.hdr.ns_nr = Some((self.ns, nr));
                self.ns = self.ns.wrapping_add(1);
            }
            let mut out = vec![0u8; self.hdr.header_len() + 2 + f.len()];
            let Ok(n) = self.hdr.emit(&mut out) else {
                continue;
            };
            out[n] = 0xff;
            out[n + 1] = 0x03;
            out[n + 2..].copy_from_slice(&f);
            let _ = sock.send_to(&out, self.peer);
        }
    }
}

/// Why a PPP link that never reached IPCP up failed.
fn ppp_cause(reason: ul2tp_ppp::DownReason, auth_rejected: bool) -> String {
    use ul2tp_ppp::DownReason as R;
    match reason {
        _ if auth_rejected => "PPP authentication rejected".into(),
        R::AuthFailed => "PPP authentication failed".into(),
        R::NegotiationFailed => "PPP LCP timeout (negotiation failed)".into(),
        other => format!("PPP down before IPCP up: {other:?}"),
    }
}

fn run(a: &Args) -> Result<Report, String> {
    let sock = UdpSocket::bind(a.local).map_err(|e| format!("bind {}: {e}", a.local))?;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("no randomness from the OS: {e}"))?;
    let cfg = Config {
        version: a.version,
        host_name: "ul2tp-loadgen".into(),
        ..Config::default()
    };
    let mut ep = Endpoint::new(cfg.clone(), Encap::Udp, seed);
    let start = Instant::now();
    let now =
        || Timestamp::from_micros(u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX));
    let mut rep = Report::default();
    let mut tunnels = Vec::new();
    for _ in 0..a.tunnels {
        let tid = ep
            .connect(now(), a.peer, cfg.clone())
            .map_err(|e| format!("connect: {e}"))?;
        tunnels.push(tid);
    }
    let total = u64::from(a.tunnels) * u64::from(a.sessions);
    let mut opened: u64 = 0;
    // (tunnel, session) -> when it was opened / when to clear it.
    let mut pending: HashMap<(u32, u32), Instant> = HashMap::new();
    let mut clear_at: BTreeMap<Instant, Vec<(u32, u32)>> = BTreeMap::new();
    // Up and not cleared by us yet: a CDN for one of these is a failure (the LNS dropped it).
    let mut held: HashSet<(u32, u32)> = HashSet::new();
    let mut resolved: u64 = 0;
    let mut live_tunnels = a.tunnels;
    let mut closing = false;
    let deadline = start + a.timeout;
    let mut buf = vec![0u8; 65536];
    // (tunnel, session) -> its PPP link, until IPCP is up or it fails (`--ppp`).
    let mut links: HashMap<(u32, u32), PppLink> = HashMap::new();
    let mut session_index: HashMap<(u32, u32), u64> = HashMap::new();
    loop {
        let t = Instant::now();
        // Sessions due by the rate, round-robin over the tunnels.
        while opened < total && start + Duration::from_secs_f64(opened as f64 / a.rate) <= t {
            let tid = tunnels[(opened % u64::from(a.tunnels)) as usize];
            // Ethernet pseudowires in v3; the engine makes v2 sessions PPP.
            match ep.open_session(now(), tid, SessionConfig::default()) {
                Ok(sid) => {
                    pending.insert((tid, sid), Instant::now());
                    if a.ppp.is_some() {
                        session_index.insert((tid, sid), opened);
                    }
                    rep.first_open.get_or_insert_with(Instant::now);
                }
                Err(e) => {
                    *rep.session_failures
                        .entry(format!("open: {e}"))
                        .or_default() += 1;
                    resolved += 1;
                }
            }
            opened += 1;
        }
        // Calls held long enough.
        let due: Vec<Instant> = clear_at.range(..=t).map(|(k, _)| *k).collect();
        for k in due {
            for (tid, sid) in clear_at.remove(&k).unwrap_or_default() {
                if !held.remove(&(tid, sid)) {
                    continue;
                }
                let _ = ep.close_session(now(), tid, sid, ul2tp_control::CdnResult::Administrative);
            }
        }
        if resolved >= total && clear_at.is_empty() && !closing {
            closing = true;
            for &tid in &tunnels {
                let _ = ep.close_tunnel(now(), tid, ul2tp_control::StopCcnResult::GeneralRequest);
            }
        }
        while let Some(tx) = ep.poll_transmit() {
            let _ = sock.send_to(&tx.bytes, tx.dst);
        }
        // PPP links: what they send, and IPCP up or their failure.
        let mut done: Vec<((u32, u32), Option<String>)> = Vec::new();
        for (key, l) in links.iter_mut() {
            l.ep.handle_timeout(now());
            l.flush(&sock);
            while let Some(ev) = l.ep.poll_event() {
                match ev {
                    ul2tp_ppp::Event::AuthRejected => l.auth_rejected = true,
                    ul2tp_ppp::Event::NetworkUp { .. } => done.push((*key, None)),
                    ul2tp_ppp::Event::LinkDown { reason } => {
                        done.push((*key, Some(ppp_cause(reason, l.auth_rejected))))
                    }
                    _ => {}
                }
            }
        }
        for (key, failed) in done {
            if links.remove(&key).is_none() {
                continue;
            }
            let Some(t0) = pending.remove(&key) else {
                continue;
            };
            resolved += 1;
            match failed {
                None => {
                    let up = Instant::now();
                    rep.latencies.push(up - t0);
                    rep.sessions_up += 1;
                    rep.last_up = Some(up);
                    clear_at.entry(up + a.hold).or_default().push(key);
                    held.insert(key);
                }
                Some(cause) => {
                    *rep.session_failures.entry(cause).or_default() += 1;
                    let _ = ep.close_session(
                        now(),
                        key.0,
                        key.1,
                        ul2tp_control::CdnResult::Administrative,
                    );
                }
            }
        }
        while let Some(ev) = ep.poll_event() {
            if std::env::var_os("LOADGEN_DEBUG").is_some() {
                eprintln!("{ev:?}");
            }
            match ev {
                Event::TunnelUp(_) => rep.tunnels_up += 1,
                Event::TunnelDown { reason, was_up, .. } => {
                    live_tunnels = live_tunnels.saturating_sub(1);
                    if !was_up {
                        *rep.tunnel_failures
                            .entry(format!("{reason:?}"))
                            .or_default() += 1;
                    }
                }
                Event::SessionUp(info) if a.ppp.is_some() => {
                    let key = (info.tunnel_id, info.session_id);
                    let (Some(p), true) = (&a.ppp, pending.contains_key(&key)) else {
                        continue;
                    };
                    let index = session_index.remove(&key).unwrap_or_default();
                    let cfg = ul2tp_ppp::Config {
                        user: Some((
                            p.user.replace("%d", &index.to_string()).into_bytes(),
                            p.password.clone(),
                        )),
                        allow_auth: vec![p.auth],
                        echo_interval_us: None,
                        ..ul2tp_ppp::Config::default()
                    };
                    let mut seed = [0u8; 32];
                    getrandom::fill(&mut seed)
                        .map_err(|e| format!("no randomness from the OS: {e}"))?;
                    let hdr = ul2tp_wire::data::V2DataHeader {
                        tunnel_id: u16::try_from(info.peer_tunnel_id).unwrap_or_default(),
                        session_id: u16::try_from(info.peer_session_id).unwrap_or_default(),
                        ns_nr: info.send_seq.then_some((0, 0)),
                        ..Default::default()
                    };
                    let mut l = PppLink {
                        ep: ul2tp_ppp::Endpoint::new(cfg, seed),
                        peer: info.peer,
                        hdr,
                        ns: 0,
                        auth_rejected: false,
                    };
                    l.ep.open(now());
                    l.flush(&sock);
                    links.insert(key, l);
                }
                Event::SessionUp(info) => {
                    let key = (info.tunnel_id, info.session_id);
                    if let Some(t0) = pending.remove(&key) {
                        let up = Instant::now();
                        rep.latencies.push(up - t0);
                        rep.sessions_up += 1;
                        rep.last_up = Some(up);
                        resolved += 1;
                        clear_at.entry(up + a.hold).or_default().push(key);
                        held.insert(key);
                    }
                }
                Event::SessionDown {
                    tunnel_id,
                    session_id,
                    reason,
                    was_up,
                    ..
                } => {
                    let key = (tunnel_id, session_id);
                    session_index.remove(&key);
                    let link = links.remove(&key);
                    if pending.remove(&key).is_some() || !was_up {
                        let cause = match link {
                            Some(l) if l.auth_rejected => "PPP authentication rejected".into(),
                            Some(l) => format!("{reason:?} in PPP phase {:?}", l.ep.phase()),
                            None => format!("{reason:?}"),
                        };
                        *rep.session_failures.entry(cause).or_default() += 1;
                        resolved += 1;
                    } else if held.remove(&key) {
                        *rep.session_failures
                            .entry(format!("cleared by the peer while held: {reason:?}"))
                            .or_default() += 1;
                    }
                }
                _ => {}
            }
        }
        if closing && live_tunnels == 0 {
            return Ok(rep);
        }
        if Instant::now() > deadline {
            for key in pending.keys() {
                let cause = match links.get(key) {
                    Some(l) if l.ep.phase() == ul2tp_ppp::Phase::Establish => {
                        "PPP LCP timeout (not up in time)".to_string()
                    }
                    Some(l) => format!("timeout in PPP phase {:?}", l.ep.phase()),
                    None => "timeout (not up in time)".into(),
                };
                *rep.session_failures.entry(cause).or_default() += 1;
            }
            return Ok(rep);
        }
        // Wait for a datagram, the engine's next timer or the next session to open.
        let mut wait = Duration::from_millis(50);
        for d in ep
            .poll_timeout()
            .into_iter()
            .chain(links.values().filter_map(|l| l.ep.poll_timeout()))
        {
            wait = wait.min(Duration::from_micros(d.0.saturating_sub(now().0)));
        }
        if opened < total {
            let next = start + Duration::from_secs_f64(opened as f64 / a.rate);
            wait = wait.min(next.saturating_duration_since(Instant::now()));
        }
        if let Some((k, _)) = clear_at.first_key_value() {
            wait = wait.min(k.saturating_duration_since(Instant::now()));
        }
        sock.set_read_timeout(Some(wait.max(Duration::from_micros(100))))
            .map_err(|e| format!("socket: {e}"))?;
        let mut got = sock.recv_from(&mut buf);
        while let Ok((n, from)) = got {
            if n >= 2 && buf[0] & 0x80 != 0 {
                ep.handle_datagram(now(), from, &buf[..n]);
            } else if let Ok((h, at)) = ul2tp_wire::data::V2DataHeader::parse(&buf[..n]) {
                let key = (u32::from(h.tunnel_id), u32::from(h.session_id));
                if let Some(l) = links.get_mut(&key) {
                    let _ = l.ep.handle_frame(now(), &buf[at..n]);
                    l.flush(&sock);
                }
            }
            // Drain what else is queued without waiting.
            sock.set_nonblocking(true)
                .map_err(|e| format!("socket: {e}"))?;
            got = sock.recv_from(&mut buf);
            if got.is_err() {
                sock.set_nonblocking(false)
                    .map_err(|e| format!("socket: {e}"))?;
            }
        }
        ep.handle_timeout(now());
    }
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        print!("{USAGE}");
        return std::process::ExitCode::SUCCESS;
    }
    let a = match parse_args(&args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ul2tp-loadgen: {e}\n{USAGE}");
            return std::process::ExitCode::from(2);
        }
    };
    match run(&a) {
        Ok(mut rep) => {
            rep.print(a.tunnels, u64::from(a.tunnels) * u64::from(a.sessions));
            let ok = rep.tunnel_failures.is_empty() && rep.session_failures.is_empty();
            if ok {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("ul2tp-loadgen: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
