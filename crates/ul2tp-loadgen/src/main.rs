//! `ul2tp-loadgen`: many LAC tunnels and sessions from one process, without any device — or
//! the LNS they dial into.
//!
//! One UDP socket and one `ul2tp_control::Endpoint` (the pure control engine ul2tpd uses)
//! play N tunnels × M sessions against an LNS: the tunnels are opened at once, the sessions at
//! `--rate` per second (ICRQ), each held for `--hold` seconds once up and then cleared (CDN),
//! and at the end the tunnels are closed (StopCCN). It reports the setup rate, the setup
//! latency percentiles and the failures by cause (docs/PERFORMANCE.md, docs/testing.md).
//!
//! With `--ppp` (L2TPv2) every session also runs PPP with the pure PPP engine
//! (`ul2tp_ppp::Endpoint`, as ul2tpd drives it): LCP, PAP, CHAP-MD5 or MS-CHAPv2 and IPCP, the
//! frames carried as L2TPv2 data messages by `ul2tp_core`'s data path on the same socket; a
//! session counts as up when IPCP is up; `--ping` then sends ICMP echoes through it.
//! `--mode lns` turns it around: it accepts the tunnels and sessions of LACs and runs the
//! PPP server side (`run.rs`).
#![forbid(unsafe_code)]

mod icmp;
mod link;
mod report;
mod run;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use ul2tp_control::Version;

const USAGE: &str =
    "usage: ul2tp-loadgen --peer ADDR:PORT [--local ADDR:PORT] [--tunnels N] [--sessions M]
                     [--version 2|3] [--rate SESSIONS_PER_S] [--hold SECONDS] [--timeout SECONDS]
                     [--ppp --auth pap|chap|mschapv2 --user PATTERN --password-file FILE
                      [--ping COUNT [--ping-interval SECONDS] [--ping-target ADDR]]]
       ul2tp-loadgen --mode lns [--listen ADDR:PORT] [--tunnels N] [--timeout SECONDS]
                     [--ppp --auth pap|chap|mschapv2 --user PATTERN --password-file FILE
                      --ppp-local ADDR --ppp-pool FIRST-LAST [--ping COUNT ...]]
  --mode      lac (default: we dial --peer) or lns (we accept calls on --listen)
  --peer      the LNS (e.g. 192.0.2.2:1701)
  --local     local address and port (default 0.0.0.0:0)
  --listen    LNS mode: address and port to accept tunnels on (default 0.0.0.0:1701)
  --tunnels   tunnels to open (default 1); LNS mode: stop once N tunnels came and went
  --sessions  sessions per tunnel (default 1)
  --version   L2TP version: 2 (PPP sessions) or 3 (Ethernet pseudowires; default)
  --rate      sessions opened per second, all tunnels together (default 1000)
  --hold      seconds a session stays up before it is cleared (default 0)
  --timeout   give up on what is not done after this many seconds (default 60); LNS mode:
              serve this long at most
  --ppp       run PPP in every session (implies --version 2): LCP, authentication, IPCP
  --auth      pap, chap (CHAP-MD5) or mschapv2: how we authenticate (LNS mode: what we
              require; default pap)
  --user      user name; %d is replaced by the session's index (0, 1, ...); LNS mode: the
              names accepted (%d matching any decimal number)
  --password-file  file holding the password (first line)
  --ppp-local LNS mode: our IPCP address
  --ppp-pool  LNS mode: the addresses handed to the LACs, FIRST-LAST
  --ping      ICMP echo requests to send through every PPP session once IPCP is up
  --ping-interval  seconds between them (default 1)
  --ping-target    where to (default: the peer's IPCP address of each session)
Exit status: 0 when everything came up (and every ping was answered), 1 when something
failed, 2 for bad arguments or when the run could not start.
";

/// `LOADGEN_DEBUG` set: control events and PPP frames (time in µs, first octets) on stderr.
pub fn debug() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("LOADGEN_DEBUG").is_some())
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Lac,
    Lns,
}

pub struct Args {
    pub mode: Mode,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub tunnels: u32,
    /// `--tunnels` was given (LNS mode: the run ends when that many came and went).
    pub tunnels_given: bool,
    pub sessions: u32,
    pub version: Version,
    pub rate: f64,
    pub hold: Duration,
    pub timeout: Duration,
    /// `--ppp`: how we authenticate, the user pattern and the password.
    pub ppp: Option<PppArgs>,
    /// `--ping COUNT`, the interval, the target.
    pub ping: Option<(u32, Duration, Option<Ipv4Addr>)>,
}

pub struct PppArgs {
    pub auth: ul2tp_ppp::AuthProtocol,
    pub user: String,
    pub password: Vec<u8>,
    /// LNS mode: our address and the pool.
    pub local: Ipv4Addr,
    pub pool: Vec<Ipv4Addr>,
}

/// The addresses FIRST..=LAST of `FIRST-LAST` (at most 2^20).
fn pool(v: &str) -> Option<Vec<Ipv4Addr>> {
    let (a, b) = v.split_once('-')?;
    let (a, b) = (
        u32::from(a.trim().parse::<Ipv4Addr>().ok()?),
        u32::from(b.trim().parse::<Ipv4Addr>().ok()?),
    );
    (a <= b && b - a < 1 << 20).then(|| (a..=b).map(Ipv4Addr::from).collect())
}

fn seconds(v: &str) -> Option<Duration> {
    let s = v.parse::<f64>().ok().filter(|s| *s >= 0.0 && *s < 1e9)?;
    Some(Duration::from_secs_f64(s))
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut a = Args {
        mode: Mode::Lac,
        peer: SocketAddr::from(([0, 0, 0, 0], 0)),
        local: SocketAddr::from(([0, 0, 0, 0], 0)),
        tunnels: 1,
        tunnels_given: false,
        sessions: 1,
        version: Version::V3,
        rate: 1000.0,
        hold: Duration::ZERO,
        timeout: Duration::from_secs(60),
        ppp: None,
        ping: None,
    };
    let (mut peer, mut listen) = (false, None);
    let (mut ppp, mut auth, mut user, mut pwfile) =
        (false, ul2tp_ppp::AuthProtocol::Pap, None, None);
    let (mut ppp_local, mut ppp_pool) = (None, None);
    let (mut ping, mut ping_interval, mut ping_target) = (None, Duration::from_secs(1), None);
    let mut it = args.iter();
    while let Some(k) = it.next() {
        if k == "--ppp" {
            ppp = true;
            continue;
        }
        let v = it.next().ok_or_else(|| format!("{k} needs a value"))?;
        let bad = |what: &str| format!("{k} {v}: not {what}");
        match k.as_str() {
            "--mode" => {
                a.mode = match v.as_str() {
                    "lac" => Mode::Lac,
                    "lns" => Mode::Lns,
                    _ => return Err(bad("lac or lns")),
                }
            }
            "--peer" => {
                a.peer = v.parse().map_err(|_| bad("ADDR:PORT"))?;
                peer = true;
            }
            "--local" => a.local = v.parse().map_err(|_| bad("ADDR:PORT"))?,
            "--listen" => listen = Some(v.parse().map_err(|_| bad("ADDR:PORT"))?),
            "--tunnels" => {
                a.tunnels = v.parse().map_err(|_| bad("a number"))?;
                a.tunnels_given = true;
            }
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
            "--hold" => a.hold = seconds(v).ok_or_else(|| bad("seconds"))?,
            "--timeout" => a.timeout = seconds(v).ok_or_else(|| bad("seconds"))?,
            "--auth" => {
                auth = match v.as_str() {
                    "pap" => ul2tp_ppp::AuthProtocol::Pap,
                    "chap" => ul2tp_ppp::AuthProtocol::ChapMd5,
                    "mschapv2" => ul2tp_ppp::AuthProtocol::MsChapV2,
                    _ => return Err(bad("pap, chap or mschapv2")),
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
            "--ppp-local" => ppp_local = Some(v.parse().map_err(|_| bad("an IPv4 address"))?),
            "--ppp-pool" => ppp_pool = Some(pool(v).ok_or_else(|| bad("FIRST-LAST"))?),
            "--ping" => ping = Some(v.parse::<u32>().map_err(|_| bad("a number"))?),
            "--ping-interval" => {
                ping_interval = seconds(v)
                    .filter(|d| *d >= Duration::from_millis(1))
                    .ok_or_else(|| bad("seconds (at least 0.001)"))?
            }
            "--ping-target" => ping_target = Some(v.parse().map_err(|_| bad("an IPv4 address"))?),
            _ => return Err(format!("unknown option {k}")),
        }
    }
    match a.mode {
        Mode::Lac if !peer => return Err("--peer is required".into()),
        Mode::Lac if listen.is_some() => return Err("--listen needs --mode lns".into()),
        Mode::Lns if peer => return Err("--peer: LNS mode takes no peer (--listen)".into()),
        Mode::Lns => a.local = listen.unwrap_or(SocketAddr::from(([0, 0, 0, 0], 1701))),
        Mode::Lac => {}
    }
    if ppp {
        let user = user.ok_or("--ppp needs --user")?;
        let file = pwfile.ok_or("--ppp needs --password-file")?;
        let text = std::fs::read(&file).map_err(|e| format!("--password-file {file}: {e}"))?;
        let line = text.split(|b| *b == b'\n').next().unwrap_or_default();
        let password = line.strip_suffix(b"\r").unwrap_or(line).to_vec();
        let (local, pool) = match (a.mode, ppp_local, ppp_pool) {
            (Mode::Lns, Some(l), Some(p)) => (l, p),
            (Mode::Lns, _, _) => {
                return Err("--mode lns --ppp needs --ppp-local and --ppp-pool".into())
            }
            (Mode::Lac, None, None) => (Ipv4Addr::UNSPECIFIED, Vec::new()),
            (Mode::Lac, _, _) => return Err("--ppp-local and --ppp-pool need --mode lns".into()),
        };
        a.version = Version::V2;
        a.ppp = Some(PppArgs {
            auth,
            user,
            password,
            local,
            pool,
        });
    } else if user.is_some() || pwfile.is_some() || ppp_local.is_some() || ppp_pool.is_some() {
        return Err("--user, --password-file, --ppp-local and --ppp-pool need --ppp".into());
    }
    match ping {
        Some(_) if a.ppp.is_none() => return Err("--ping needs --ppp".into()),
        Some(n) => a.ping = Some((n, ping_interval, ping_target)),
        None if ping_target.is_some() => return Err("--ping-target needs --ping".into()),
        None => {}
    }
    if a.tunnels == 0 {
        return Err("--tunnels must be at least 1".into());
    }
    Ok(a)
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
    match run::run(&a) {
        Ok(mut rep) => {
            let wanted = (a.mode == Mode::Lac)
                .then(|| (a.tunnels, u64::from(a.tunnels) * u64::from(a.sessions)));
            rep.print(wanted);
            if rep.failed() {
                std::process::ExitCode::FAILURE
            } else {
                std::process::ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("ul2tp-loadgen: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_are_ranges() {
        let p = pool("10.0.0.254-10.0.1.1").unwrap();
        assert_eq!(p.len(), 4);
        assert_eq!(p[0], Ipv4Addr::new(10, 0, 0, 254));
        assert_eq!(p[3], Ipv4Addr::new(10, 0, 1, 1));
        assert_eq!(pool("10.0.0.1-10.0.0.1").unwrap().len(), 1);
        for bad in [
            "10.0.0.2-10.0.0.1",
            "10.0.0.1",
            "x-10.0.0.1",
            "0.0.0.0-255.255.255.255",
        ] {
            assert!(pool(bad).is_none(), "{bad}");
        }
    }
}
