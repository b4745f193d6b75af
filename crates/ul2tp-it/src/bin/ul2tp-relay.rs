//! `ul2tp-relay`: a UDP relay with a seeded fault schedule, run in a namespace between two
//! ul2tpd daemons (see the `relay` module of ul2tp-it for the design and the fault order).
//!
//! ```text
//! ul2tp-relay --a LISTEN_A --a-peer ADDR_A --b LISTEN_B --b-peer ADDR_B --seed N
//!     [--dir ab|ba|both] [--drop P] [--dup P] [--reorder P] [--reorder-gap K]
//!     [--delay-ms D] [--pass-first N] [--hold-max-ms MS]
//!     [--drop-at N,M..] [--dup-at N,..] [--swap-at N,..]
//!     [--ctl-drop P] [--ctl-dup P] [--ctl-reorder P] [--ctl-delay-ms D]
//!     [--stats FILE] [--max-seconds S]
//! ```
//!
//! Datagrams from ADDR_A arriving on LISTEN_A are sent from LISTEN_B to ADDR_B and the reverse.
//! Faults apply to the directions chosen by `--dir` (default both); each direction has its own
//! PRNG stream derived from the seed. The statistics file (JSON, see `RelayStats`) is written
//! when the sockets are bound and replaced atomically after every datagram. The relay exits by
//! itself after `--max-seconds` (default 120); SIGTERM ends it at once (default action), which
//! loses nothing because the statistics file is always current.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ul2tp_it::relay::{direction_seed, parse_indices, Fault, FaultConfig, RelayStats};

struct Args {
    a: SocketAddr,
    a_peer: SocketAddr,
    b: SocketAddr,
    b_peer: SocketAddr,
    faults: FaultConfig,
    ab: bool,
    ba: bool,
    stats: Option<PathBuf>,
    max: Duration,
}

const USAGE: &str = "usage: ul2tp-relay --a LISTEN_A --a-peer ADDR_A --b LISTEN_B --b-peer ADDR_B \
[--seed N] [--dir ab|ba|both] [--drop P] [--dup P] [--reorder P] [--reorder-gap K] [--delay-ms D] \
[--pass-first N] [--hold-max-ms MS] [--drop-at N,..] [--dup-at N,..] [--swap-at N,..] \
[--ctl-drop P] [--ctl-dup P] [--ctl-reorder P] [--ctl-delay-ms D] \
[--stats FILE] [--max-seconds S]";

fn prob(s: &str) -> Result<f64, String> {
    let p: f64 = s
        .parse()
        .map_err(|e| format!("bad probability {s:?}: {e}"))?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("probability {s} not in [0, 1]"))
    }
}

fn num<T: std::str::FromStr>(s: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    s.parse().map_err(|e| format!("bad number {s:?}: {e}"))
}

fn parse_args(argv: &[String]) -> Result<Args, String> {
    let (mut a, mut a_peer, mut b, mut b_peer) = (None, None, None, None);
    let mut faults = FaultConfig::none(0);
    let (mut ab, mut ba) = (true, true);
    let mut stats = None;
    let mut max = Duration::from_secs(120);
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.to_string());
        }
        let v = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let addr = |v: &str| -> Result<SocketAddr, String> {
            v.parse().map_err(|e| format!("bad address {v:?}: {e}"))
        };
        match flag.as_str() {
            "--a" => a = Some(addr(v)?),
            "--a-peer" => a_peer = Some(addr(v)?),
            "--b" => b = Some(addr(v)?),
            "--b-peer" => b_peer = Some(addr(v)?),
            "--seed" => faults.seed = num(v)?,
            "--dir" => {
                (ab, ba) = match v.as_str() {
                    "ab" => (true, false),
                    "ba" => (false, true),
                    "both" => (true, true),
                    _ => return Err(format!("--dir must be ab, ba or both, not {v:?}")),
                }
            }
            "--drop" => faults.drop = prob(v)?,
            "--dup" => faults.dup = prob(v)?,
            "--reorder" => faults.reorder = prob(v)?,
            "--reorder-gap" => faults.reorder_gap = num::<u32>(v)?.max(1),
            "--delay-ms" => faults.delay = Duration::from_millis(num(v)?),
            "--pass-first" => faults.pass_first = num(v)?,
            "--hold-max-ms" => faults.hold_max = Duration::from_millis(num(v)?),
            "--drop-at" => faults.drop_at = parse_indices(v)?,
            "--dup-at" => faults.dup_at = parse_indices(v)?,
            "--swap-at" => faults.swap_at = parse_indices(v)?,
            "--ctl-drop" => faults.ctl_drop = prob(v)?,
            "--ctl-dup" => faults.ctl_dup = prob(v)?,
            "--ctl-reorder" => faults.ctl_reorder = prob(v)?,
            "--ctl-delay-ms" => faults.ctl_delay = Duration::from_millis(num(v)?),
            "--stats" => stats = Some(PathBuf::from(v)),
            "--max-seconds" => max = Duration::from_secs(num(v)?),
            _ => return Err(format!("unknown option {flag:?}\n{USAGE}")),
        }
    }
    let need =
        |x: Option<SocketAddr>, n: &str| x.ok_or_else(|| format!("{n} is required\n{USAGE}"));
    Ok(Args {
        a: need(a, "--a")?,
        a_peer: need(a_peer, "--a-peer")?,
        b: need(b, "--b")?,
        b_peer: need(b_peer, "--b-peer")?,
        faults,
        ab,
        ba,
        stats,
        max,
    })
}

/// Shared counters and the file they are written to.
struct Shared {
    stats: Mutex<RelayStats>,
    file: Option<PathBuf>,
}

impl Shared {
    fn publish(&self, ab: bool, s: ul2tp_it::relay::DirStats) {
        let mut g = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        if ab {
            g.ab = s;
        } else {
            g.ba = s;
        }
        let text = g.to_json_string();
        if let Some(f) = &self.file {
            // Write then rename so a reader never sees a partial file. Under the lock so the
            // two directions do not interleave their writes.
            let tmp = f.with_extension("tmp");
            if std::fs::write(&tmp, text).is_ok() {
                let _ = std::fs::rename(&tmp, f);
            }
        }
    }
}

/// One direction: receive on `rx` from `from`, send on `tx` to `to`.
struct Pump {
    rx: UdpSocket,
    tx: UdpSocket,
    from: SocketAddr,
    to: SocketAddr,
    fault: Fault,
    ab: bool,
    shared: Arc<Shared>,
}

/// Forward one direction until `end`.
fn pump(p: Pump, end: Instant) {
    let Pump {
        rx,
        tx,
        from,
        to,
        mut fault,
        ab,
        shared,
    } = p;
    let mut buf = vec![0u8; 65536];
    loop {
        let now = Instant::now();
        if now >= end {
            return;
        }
        let mut wait = Duration::from_millis(50).min(end - now);
        if let Some(t) = fault.next_timeout() {
            wait = wait.min(t.saturating_duration_since(now));
        }
        // A zero read timeout is an error for set_read_timeout; 1 ms is the floor.
        let _ = rx.set_read_timeout(Some(wait.max(Duration::from_millis(1))));
        let out = match rx.recv_from(&mut buf) {
            Ok((n, src)) => {
                if src != from {
                    fault.stats.foreign += 1;
                    shared.publish(ab, fault.stats);
                    continue;
                }
                fault.input(Instant::now(), &buf[..n])
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                let out = fault.poll(Instant::now());
                if out.is_empty() {
                    continue;
                }
                out
            }
            Err(e) => {
                // ECONNREFUSED and the like from ICMP errors: keep going.
                eprintln!("ul2tp-relay: recv: {e}");
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
        };
        // Publish before sending: once a datagram can have reached the peer, the statistics
        // file already counts it (tests read it right after a ping returns).
        shared.publish(ab, fault.stats);
        let before = fault.stats.send_errors;
        for d in &out {
            if tx.send_to(d, to).is_err() {
                fault.stats.send_errors += 1;
            }
        }
        if fault.stats.send_errors != before {
            shared.publish(ab, fault.stats);
        }
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse_args(&argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ul2tp-relay: {e}");
            std::process::exit(2);
        }
    };
    let bind = |addr: SocketAddr| {
        UdpSocket::bind(addr).unwrap_or_else(|e| {
            eprintln!("ul2tp-relay: bind {addr}: {e}");
            std::process::exit(1);
        })
    };
    let sa = bind(args.a);
    let sb = bind(args.b);
    let clone = |s: &UdpSocket| {
        s.try_clone().unwrap_or_else(|e| {
            eprintln!("ul2tp-relay: dup socket: {e}");
            std::process::exit(1);
        })
    };
    let (sa2, sb2) = (clone(&sa), clone(&sb));
    let shared = Arc::new(Shared {
        stats: Mutex::new(RelayStats::default()),
        file: args.stats.clone(),
    });
    let cfg_for = |ab: bool| {
        let on = if ab { args.ab } else { args.ba };
        let mut c = if on {
            args.faults.clone()
        } else {
            FaultConfig::none(0)
        };
        c.seed = direction_seed(args.faults.seed, ab);
        c
    };
    let fab = Fault::new(cfg_for(true));
    let fba = Fault::new(cfg_for(false));
    // Publish the zero counters: the file's existence tells the harness the sockets are bound.
    shared.publish(true, fab.stats);
    eprintln!(
        "ul2tp-relay: {} <-> {} via {} / {} (faults ab={} ba={})",
        args.a_peer, args.b_peer, args.a, args.b, args.ab, args.ba
    );
    let end = Instant::now() + args.max;
    let (a_peer, b_peer) = (args.a_peer, args.b_peer);
    let p1 = Pump {
        rx: sa,
        tx: sb2,
        from: a_peer,
        to: b_peer,
        fault: fab,
        ab: true,
        shared: Arc::clone(&shared),
    };
    let p2 = Pump {
        rx: sb,
        tx: sa2,
        from: b_peer,
        to: a_peer,
        fault: fba,
        ab: false,
        shared: Arc::clone(&shared),
    };
    let t1 = std::thread::spawn(move || pump(p1, end));
    let t2 = std::thread::spawn(move || pump(p2, end));
    let _ = t1.join();
    let _ = t2.join();
    eprintln!("ul2tp-relay: --max-seconds reached, exiting");
}
