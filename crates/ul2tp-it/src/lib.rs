//! Test harness for end-to-end tests: network namespaces joined by veth pairs, ul2tpd daemons
//! running inside them, the `ul2tp` command, ping, tcpdump and tshark.
//!
//! Every object gets a unique name (process id + counter) so tests run in parallel, and every
//! object is removed on drop, also when a test fails: daemons are killed by PID, namespaces
//! deleted (which deletes the veth, TAP and TUN devices inside them).
//!
//! The binaries `ul2tpd` and `ul2tp` are taken from the cargo target directory the test runs
//! from (`cargo test --workspace` builds them before any test runs).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The fault-injecting relay `ul2tp-relay` (seeded and scripted drop / duplicate / reorder /
/// delay of data packets between two daemons) and its harness [`relay::Relay`]; see
/// docs/testing.md.
pub mod relay;

/// The metrics endpoint: scrape, sample values, `promtool` lint.
pub mod metrics;

/// Other implementations as peers: xl2tpd, l2tpns with FreeRADIUS.
pub mod peers;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A unique short token for names (namespaces, interfaces).
pub fn unique(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{tag}{}x{n}", std::process::id() % 100_000)
}

/// Directory holding the workspace's built binaries.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test-binary>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf();
    dir
}

/// Path of a workspace binary; panics with a hint when it was not built.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} not built: run `cargo build --workspace` (or `cargo test --workspace`)",
        p.display()
    );
    p
}

/// Whether an external program is on PATH.
pub fn have(prog: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {prog}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Fail the test, naming the package to install, unless `prog` is on the PATH: for the
/// system programs a test cannot do without (CI installs them), so that a missing one fails
/// the test instead of skipping its checks.
pub fn require(prog: &str, package: &str) {
    assert!(
        have(prog),
        "{prog} is required for this test and is not installed (apt-get install {package}; .ci/run installs it)"
    );
}

/// Wait until `cond` holds (checked every 20 ms), up to `timeout`; returns whether it did.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Length of the Ethernet frame (no FCS) carrying one default IPv4 ping: Ethernet 14 +
/// IPv4 20 + ICMP 8 + 56 bytes of data. A session counts it plus its L2TP header in
/// `tx_bytes` / `rx_bytes` (docs/reference/kernel.md §3.1).
pub const PING_FRAME: u64 = 14 + 20 + 8 + 56;

/// The counters of a session that sent `tx` and delivered `rx` default IPv4 pings
/// ([`PING_FRAME`]) with an L2TP header of `l2tp_header` bytes each, and counted nothing
/// else. Tests spell the discard counters on top: `Stats { rx_errors: 1, ..ping_stats(12, 6, 6) }`.
pub fn ping_stats(l2tp_header: u64, tx: u64, rx: u64) -> ul2tp_api::Stats {
    ul2tp_api::Stats {
        tx_packets: tx,
        tx_bytes: tx * (PING_FRAME + l2tp_header),
        rx_packets: rx,
        rx_bytes: rx * (PING_FRAME + l2tp_header),
        ..ul2tp_api::Stats::default()
    }
}

/// The packet and byte counters of `s` with every error and discard counter 0: what a session
/// that carried only good traffic counts. For tests whose traffic counts are bounded rather
/// than exact: `assert_eq!(s, traffic_only(&s))` fails on any error or discard.
pub fn traffic_only(s: &ul2tp_api::Stats) -> ul2tp_api::Stats {
    ul2tp_api::Stats {
        tx_packets: s.tx_packets,
        tx_bytes: s.tx_bytes,
        rx_packets: s.rx_packets,
        rx_bytes: s.rx_bytes,
        ..ul2tp_api::Stats::default()
    }
}

/// Run a command, returning its output; panics if it cannot be started.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Run a command that must succeed.
pub fn must(cmd: &mut Command) -> String {
    let o = run(cmd);
    assert!(
        o.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A network namespace that is deleted on drop.
#[derive(Debug)]
pub struct Netns {
    /// Its name (for `ip netns exec`).
    pub name: String,
}

impl Netns {
    /// Create a namespace with `lo` up.
    pub fn new(tag: &str) -> Netns {
        let name = format!("ul2tp-{}", unique(tag));
        must(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// A command to run inside the namespace.
    pub fn cmd(&self, prog: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(prog);
        c
    }

    /// `ip ARGS` inside the namespace; must succeed.
    pub fn ip(&self, args: &[&str]) -> String {
        must(Command::new("ip").args(["-n", &self.name]).args(args))
    }

    /// `ip ARGS` inside the namespace; may fail.
    pub fn try_ip(&self, args: &[&str]) -> Output {
        run(Command::new("ip").args(["-n", &self.name]).args(args))
    }

    /// Bring `dev` up with the address `cidr` (IPv6 addresses without duplicate detection).
    pub fn up_with(&self, dev: &str, cidr: &str) {
        self.ip(&["link", "set", dev, "up"]);
        if cidr.contains(':') {
            self.ip(&["-6", "addr", "add", cidr, "dev", dev, "nodad"]);
        } else {
            self.ip(&["addr", "add", cidr, "dev", dev]);
        }
    }

    /// The name of the device holding the IPv4 address `addr`, if any.
    pub fn device_with(&self, addr: &str) -> Option<String> {
        self.ip(&["-o", "-4", "addr", "show"])
            .lines()
            .find(|l| l.contains(&format!("inet {addr} ")))
            .and_then(|l| l.split_whitespace().nth(1))
            .map(str::to_string)
    }

    /// Set a sysctl inside the namespace.
    pub fn sysctl(&self, kv: &str) {
        must(self.cmd("sysctl").args(["-q", "-w", kv]));
    }

    /// Whether a link exists in the namespace.
    pub fn has_link(&self, name: &str) -> bool {
        self.try_ip(&["link", "show", "dev", name]).status.success()
    }

    /// Wait until a link exists (or not), up to `timeout`.
    pub fn wait_link(&self, name: &str, present: bool, timeout: Duration) -> bool {
        wait_until(timeout, || self.has_link(name) == present)
    }

    /// Bring the pseudowire `dev` up quietly: MAC address `mac`, IPv4 address `cidr`, IPv6
    /// disabled on it and a permanent neighbour entry `peer` → `peer_mac`. No neighbour
    /// discovery, router solicitation or ARP then crosses the pseudowire, so the only
    /// packets on it are the test's own and the session counters are exact.
    pub fn quiet_link(&self, dev: &str, mac: &str, cidr: &str, peer: &str, peer_mac: &str) {
        self.sysctl(&format!("net.ipv6.conf.{dev}.disable_ipv6=1"));
        self.ip(&["link", "set", dev, "address", mac]);
        self.up_with(dev, cidr);
        self.static_neighbour(dev, peer, peer_mac);
    }

    /// A permanent neighbour entry `addr` → `mac` on `dev` (no ARP for it).
    pub fn static_neighbour(&self, dev: &str, addr: &str, mac: &str) {
        self.ip(&[
            "neigh",
            "replace",
            addr,
            "lladdr",
            mac,
            "dev",
            dev,
            "nud",
            "permanent",
        ]);
    }

    /// One ping (`-c1 -w1` like the kernel selftest, but with a configurable deadline);
    /// true when answered. Extra args such as `-I ADDR` may be given.
    pub fn ping(&self, dst: &str, extra: &[&str]) -> bool {
        let mut c = self.cmd("ping");
        c.args(["-c1", "-W2", "-w3", "-q"]).args(extra).arg(dst);
        run(c.stdout(Stdio::null()).stderr(Stdio::null()))
            .status
            .success()
    }

    /// Run `f` on a thread that has entered this namespace (to create sockets inside it: a
    /// socket stays in the namespace it was created in).
    pub fn run_in<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> R {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let ns = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
            nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
        .join()
        .expect("thread in namespace panicked")
    }

    /// A UDP socket bound to `local` and connected to `remote`, inside this namespace.
    pub fn udp_socket(&self, local: &str, remote: &str) -> std::net::UdpSocket {
        let (l, r): (std::net::SocketAddr, std::net::SocketAddr) =
            (local.parse().unwrap(), remote.parse().unwrap());
        self.run_in(move || {
            let s = std::net::UdpSocket::bind(l).expect("bind");
            s.connect(r).expect("connect");
            s
        })
    }

    /// `ping -c COUNT -i INTERVAL -W 2` to `dst`: exactly COUNT echo requests; returns how
    /// many distinct replies came back. Once some replies came, ping waits only two
    /// round-trip times after the last request, so a reply released late (e.g. from a reorder
    /// queue) may not be counted here: tests that need it read the session counters instead.
    pub fn ping_count(&self, dst: &str, count: u32, interval: &str) -> u32 {
        let o = self
            .cmd("ping")
            .args(["-n", "-q", "-W", "2", "-i", interval, "-c"])
            .arg(count.to_string())
            .arg(dst)
            .stderr(Stdio::null())
            .output()
            .expect("run ping");
        parse_ping_received(&String::from_utf8_lossy(&o.stdout))
    }

    /// Ping until one answer arrives or `tries` attempts failed (the first ping across a fresh
    /// pseudowire waits for ARP / neighbour discovery).
    pub fn ping_retry(&self, dst: &str, extra: &[&str], tries: u32) -> bool {
        (0..tries).any(|_| self.ping(dst, extra))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Kill whatever still runs in the namespace (by PID), then delete it.
        if let Ok(o) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                if let Ok(pid) = pid.parse::<i32>() {
                    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                }
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// The M of ping's summary "N packets transmitted, M received".
pub fn parse_ping_received(out: &str) -> u32 {
    out.split(',')
        .find_map(|part| {
            part.trim()
                .strip_suffix(" received")
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or_else(|| panic!("no ping summary in {out:?}"))
}

/// A command's outcome for assertion messages: "status S: STDOUTSTDERR".
pub fn output_text(o: &Output) -> String {
    format!(
        "status {}: {}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The tunnel id in the output of `ul2tp connect remote`, which must be exactly
/// "Tunnel N requested\n"; panics naming the output otherwise.
pub fn requested_tunnel_id(out: &str) -> u32 {
    out.strip_prefix("Tunnel ")
        .and_then(|r| r.strip_suffix(" requested\n"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected output {out:?}"))
}

/// The session id in the output of `ul2tp connect session` ("Session M in tunnel N
/// requested"); panics naming the output when it does not start with "Session M".
pub fn requested_session_id(out: &str) -> u32 {
    out.strip_prefix("Session ")
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected output {out:?}"))
}

/// The attributes of an L2TPv3 UDP tunnel `tid` (peer `peer_tid`) on loopback, from
/// 127.0.0.1:`port` to 127.0.0.1:`port` + 1.
pub fn loopback_tunnel(tid: u32, peer_tid: u32, port: u16) -> ul2tp_api::Attrs {
    ul2tp_api::Attrs {
        conn_id: Some(tid),
        peer_conn_id: Some(peer_tid),
        proto_version: Some(3),
        encap_type: Some(0),
        ip_saddr: Some("127.0.0.1".parse().unwrap()),
        ip_daddr: Some("127.0.0.1".parse().unwrap()),
        udp_sport: Some(port),
        udp_dport: Some(port + 1),
        ..ul2tp_api::Attrs::default()
    }
}

/// The attributes of an Ethernet pseudowire session `sid` (peer `sid` + 1) in tunnel `tid`.
pub fn eth_session(tid: u32, sid: u32) -> ul2tp_api::Attrs {
    ul2tp_api::Attrs {
        conn_id: Some(tid),
        session_id: Some(sid),
        peer_session_id: Some(sid + 1),
        pw_type: Some(ul2tp_api::pw_type::ETH),
        ..ul2tp_api::Attrs::default()
    }
}

/// Tshark field lines of the L2TP control messages of type `msg` (Message Type AVP) in
/// `pcap`: the sender (`ip.src`) first, then `fields`, tab-separated; empty lines left out.
pub fn control_messages(pcap: &[u8], msg: u32, fields: &[&str]) -> Vec<String> {
    let filter = format!("l2tp.avp.message_type == {msg}");
    let mut args = vec!["-Y", &filter, "-T", "fields", "-e", "ip.src"];
    for f in fields {
        args.extend(["-e", f]);
    }
    tshark(pcap, &args)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Word `n` (from 0) of `s`; panics naming `s` when there is none.
fn nth_word(s: &str, n: usize) -> String {
    s.split_whitespace()
        .nth(n)
        .unwrap_or_else(|| panic!("no word {n} in {s:?}"))
        .to_string()
}

/// Join two namespaces with a veth pair named `a_if` (in `a`) and `b_if` (in `b`), both up.
pub fn veth(a: &Netns, a_if: &str, b: &Netns, b_if: &str) {
    let tmp_a = unique("va");
    let tmp_b = unique("vb");
    must(Command::new("ip").args([
        "link", "add", &tmp_a, "netns", &a.name, "type", "veth", "peer", "name", &tmp_b, "netns",
        &b.name,
    ]));
    a.ip(&["link", "set", &tmp_a, "name", a_if]);
    b.ip(&["link", "set", &tmp_b, "name", b_if]);
    a.ip(&["link", "set", a_if, "up"]);
    b.ip(&["link", "set", b_if, "up"]);
}

/// Two new namespaces (tags `tag_a`, `tag_b`) joined by a veth link, `eth0` in each, with
/// 192.0.2.1/24 in the first and 192.0.2.2/24 in the second.
pub fn linked_hosts(tag_a: &str, tag_b: &str) -> (Netns, Netns) {
    let a = Netns::new(tag_a);
    let b = Netns::new(tag_b);
    veth(&a, "eth0", &b, "eth0");
    a.ip(&["addr", "add", "192.0.2.1/24", "dev", "eth0"]);
    b.ip(&["addr", "add", "192.0.2.2/24", "dev", "eth0"]);
    (a, b)
}

/// A LAC and an LNS ul2tpd on [`linked_hosts`], started by [`LacLns::start`]. No `Drop` of
/// its own (the parts drop as usual), so tests may take it apart into their own fixtures.
#[derive(Debug)]
pub struct LacLns {
    /// The LAC's host (192.0.2.1).
    pub a: Netns,
    /// The LNS's host (192.0.2.2).
    pub b: Netns,
    /// The LAC daemon in `a`.
    pub lac: Daemon,
    /// The LNS daemon in `b`.
    pub lns: Daemon,
    /// The directory holding the configuration files (not removed here).
    pub dir: PathBuf,
    /// The LAC's configuration file (`dir/lac.toml`).
    pub lac_conf: PathBuf,
    /// The LNS's configuration file (`dir/lns.toml`).
    pub lns_conf: PathBuf,
}

impl LacLns {
    /// Namespaces tagged `tags`, a new directory tagged `dir_tag`; the LAC's file is
    /// `[control]` with `listen = "192.0.2.1:1701"` then `lac_extra`, the LNS's is `lns_conf`;
    /// the LAC starts first.
    pub fn start(tags: (&str, &str), dir_tag: &str, lac_extra: &str, lns_conf: &str) -> LacLns {
        let (a, b) = linked_hosts(tags.0, tags.1);
        let dir = std::env::temp_dir().join(unique(dir_tag));
        std::fs::create_dir_all(&dir).unwrap();
        let (ca, cb) = (dir.join("lac.toml"), dir.join("lns.toml"));
        std::fs::write(
            &ca,
            format!("[control]\nlisten = \"192.0.2.1:1701\"\n{lac_extra}"),
        )
        .unwrap();
        std::fs::write(&cb, lns_conf).unwrap();
        let lac = Daemon::start(&a, &["--config", ca.to_str().unwrap()]);
        let lns = Daemon::start(&b, &["--config", cb.to_str().unwrap()]);
        LacLns {
            a,
            b,
            lac,
            lns,
            dir,
            lac_conf: ca,
            lns_conf: cb,
        }
    }
}

/// Two hosts on one veth link (`eth0` in each: 192.0.2.1/24 and 192.0.2.2/24, or fd00::1/64
/// and fd00::2/64), each running a ul2tpd.
#[derive(Debug)]
pub struct Pair {
    /// Host a.
    pub a: Netns,
    /// Host b.
    pub b: Netns,
    /// The daemon in a.
    pub da: Daemon,
    /// The daemon in b.
    pub db: Daemon,
}

impl Pair {
    /// Build the two hosts; `v6` selects the IPv6 underlay.
    pub fn new(v6: bool) -> Pair {
        Pair::with_daemon_args(v6, &[])
    }

    /// [`Pair::new`] with extra arguments for both daemons (e.g. `--no-offload`).
    pub fn with_daemon_args(v6: bool, daemon_args: &[&str]) -> Pair {
        let a = Netns::new("pa");
        let b = Netns::new("pb");
        for ns in [&a, &b] {
            ns.sysctl("net.ipv6.conf.default.accept_dad=0");
            ns.sysctl("net.ipv6.conf.all.accept_dad=0");
        }
        veth(&a, "eth0", &b, "eth0");
        if v6 {
            a.ip(&["-6", "addr", "add", "fd00::1/64", "dev", "eth0", "nodad"]);
            b.ip(&["-6", "addr", "add", "fd00::2/64", "dev", "eth0", "nodad"]);
        } else {
            a.ip(&["addr", "add", "192.0.2.1/24", "dev", "eth0"]);
            b.ip(&["addr", "add", "192.0.2.2/24", "dev", "eth0"]);
        }
        let da = Daemon::start(&a, daemon_args);
        let db = Daemon::start(&b, daemon_args);
        Pair { a, b, da, db }
    }

    /// Run the `ul2tp` command line `on_a` against a's daemon and `on_b` against b's (the
    /// two mirrored halves of a tunnel or session).
    pub fn ul2tp(&self, on_a: &str, on_b: &str) {
        self.da.ul2tp(on_a);
        self.db.ul2tp(on_b);
    }
}

/// A ul2tpd process inside a namespace, killed on drop.
#[derive(Debug)]
pub struct Daemon {
    child: Child,
    /// Its API socket.
    pub socket: PathBuf,
    dir: PathBuf,
}

impl Daemon {
    /// Start ul2tpd in `ns` with extra arguments and wait until its API answers.
    pub fn start(ns: &Netns, extra: &[&str]) -> Daemon {
        Self::start_within(ns, extra, Duration::from_secs(10))
    }

    /// [`Daemon::start`] with a longer start-up allowance (e.g. thousands of static
    /// sessions, each with its device, are created before the API socket is served).
    pub fn start_within(ns: &Netns, extra: &[&str], timeout: Duration) -> Daemon {
        Self::start_with_env(ns, extra, &[], timeout)
    }

    /// [`Daemon::start_within`] with extra environment variables (e.g. `NOTIFY_SOCKET`).
    pub fn start_with_env(
        ns: &Netns,
        extra: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
        timeout: Duration,
    ) -> Daemon {
        let dir = std::env::temp_dir().join(unique("ul2tpd-"));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("api.sock");
        let log = std::fs::File::create(dir.join("ul2tpd.log")).unwrap();
        let child = ns
            .cmd(bin("ul2tpd"))
            .arg("--socket")
            .arg(&socket)
            .args(["--log", "info"])
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn ul2tpd");
        let mut d = Daemon { child, socket, dir };
        let end = Instant::now() + timeout;
        while ul2tp::Client::connect(&d.socket).is_err() {
            if let Ok(Some(status)) = d.child.try_wait() {
                panic!("ul2tpd exited early ({status}): {}", d.log());
            }
            assert!(Instant::now() < end, "ul2tpd did not start: {}", d.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        d
    }

    /// Start a new ul2tpd in `ns` in place of this one (which must have exited: see
    /// [`Daemon::alive`]), on the same API socket path and log file, and wait until its API
    /// answers. The log keeps the old process's lines; the new ones follow.
    pub fn restart(&mut self, ns: &Netns, extra: &[&str]) {
        assert!(!self.alive(), "restart: the old ul2tpd still runs");
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.join("ul2tpd.log"))
            .unwrap();
        self.child = ns
            .cmd(bin("ul2tpd"))
            .arg("--socket")
            .arg(&self.socket)
            .args(["--log", "info"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn ul2tpd");
        let end = Instant::now() + Duration::from_secs(10);
        while ul2tp::Client::connect(&self.socket).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("ul2tpd exited early ({status}): {}", self.log());
            }
            assert!(
                Instant::now() < end,
                "ul2tpd did not restart: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Start a second ul2tpd in `ns` on this daemon's API socket, expecting it to fail;
    /// returns its exit status and stderr (killed, and reported as a failure to refuse, if
    /// it is still running after 10 s).
    pub fn start_second(&self, ns: &Netns, extra: &[&str]) -> (std::process::ExitStatus, String) {
        let mut c = ns.cmd(bin("ul2tpd"));
        c.arg("--socket")
            .arg(&self.socket)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn ul2tpd");
        let exited = wait_until(Duration::from_secs(10), || {
            matches!(child.try_wait(), Ok(Some(_)))
        });
        if !exited {
            let _ = child.kill();
        }
        let o = child.wait_with_output().expect("wait for ul2tpd");
        assert!(
            exited,
            "a second ul2tpd on {} kept running",
            self.socket.display()
        );
        (o.status, String::from_utf8_lossy(&o.stderr).into_owned())
    }

    /// Start ul2tpd expecting it to fail; returns its exit status and stderr.
    pub fn start_failing(ns: &Netns, extra: &[&str]) -> (std::process::ExitStatus, String) {
        let dir = std::env::temp_dir().join(unique("ul2tpd-"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut c = ns.cmd(bin("ul2tpd"));
        c.arg("--socket").arg(dir.join("api.sock")).args(extra);
        let o = run(&mut c);
        let _ = std::fs::remove_dir_all(&dir);
        (o.status, String::from_utf8_lossy(&o.stderr).into_owned())
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("ul2tpd.log")).unwrap_or_default()
    }

    /// Run `ul2tp ARGS` against this daemon.
    pub fn cli(&self, args: &[&str]) -> Output {
        run(Command::new(bin("ul2tp"))
            .arg("--socket")
            .arg(&self.socket)
            .args(args))
    }

    /// Run `ul2tp ARGS`, which must succeed; returns stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let o = self.cli(args);
        assert!(
            o.status.success(),
            "ul2tp {args:?} failed ({}): {}{}\ndaemon log:\n{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            self.log()
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// `ul2tp` with a whole command line (split at white space), which must succeed.
    pub fn ul2tp(&self, line: &str) -> String {
        let args: Vec<&str> = line.split_whitespace().collect();
        self.cli_ok(&args)
    }

    /// Run `ul2tp` with a whole command line (split at white space) as user and group 65534
    /// ("nobody" / "nogroup", no supplementary groups); may fail.
    pub fn ul2tp_as_nobody(&self, line: &str) -> Output {
        run(Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(bin("ul2tp"))
            .arg("--socket")
            .arg(&self.socket)
            .args(line.split_whitespace()))
    }

    /// A connected API client.
    pub fn client(&self) -> ul2tp::Client {
        ul2tp::Client::connect(&self.socket).expect("connect to ul2tpd")
    }

    /// A session's attributes (session_get).
    pub fn session(&self, tunnel_id: u32, session_id: u32) -> ul2tp_api::Attrs {
        let a = ul2tp_api::Attrs {
            conn_id: Some(tunnel_id),
            session_id: Some(session_id),
            ..Default::default()
        };
        let r = self
            .client()
            .request(ul2tp_api::Command::SessionGet, a, false)
            .expect("session_get");
        r.attrs.expect("attributes in reply")
    }

    /// Every tunnel's attributes (a tunnel_get dump).
    pub fn tunnel_dump(&self) -> Vec<ul2tp_api::Attrs> {
        self.dump(ul2tp_api::Command::TunnelGet)
    }

    /// Every session's attributes (a session_get dump).
    pub fn session_dump(&self) -> Vec<ul2tp_api::Attrs> {
        self.dump(ul2tp_api::Command::SessionGet)
    }

    fn dump(&self, cmd: ul2tp_api::Command) -> Vec<ul2tp_api::Attrs> {
        self.client()
            .request(cmd, ul2tp_api::Attrs::default(), true)
            .unwrap_or_else(|e| panic!("{cmd:?} dump: {e:?}"))
            .entries
            .unwrap_or_default()
    }

    /// A session's counters.
    pub fn session_stats(&self, tunnel_id: u32, session_id: u32) -> ul2tp_api::Stats {
        self.session(tunnel_id, session_id)
            .stats
            .expect("stats in reply")
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The daemon's process id (`ip netns exec` execs it, so this is ul2tpd itself).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send signal `sig` (e.g. `"HUP"`) to the daemon, by PID.
    pub fn signal(&self, sig: &str) {
        must(
            Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(self.pid().to_string()),
        );
    }

    /// CPU time the daemon has used so far (user + system, from `/proc/PID/stat`).
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))
            .expect("read /proc/PID/stat");
        // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
        let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
        let hz: u64 = must(Command::new("getconf").arg("CLK_TCK"))
            .trim()
            .parse()
            .unwrap_or(100);
        Duration::from_nanos(ticks * 1_000_000_000 / hz)
    }

    /// `ul2tp connect remote ARGS`, whose output must be exactly "Tunnel N requested": N.
    pub fn connect_tunnel_id(&self, args: &str) -> u32 {
        requested_tunnel_id(&self.ul2tp(&format!("connect remote {args}")))
    }

    /// `ul2tp connect session ARGS` (e.g. "tunnel_id 5 name x"): the id of the requested
    /// session, from its output "Session M in tunnel N requested".
    pub fn connect_session_id(&self, args: &str) -> u32 {
        requested_session_id(&self.ul2tp(&format!("connect session {args}")))
    }

    /// `ul2tp connect remote ARGS` (e.g. "192.0.2.2 version 2"): the id of the requested
    /// tunnel (the command prints "Tunnel N requested").
    pub fn connect_tunnel(&self, args: &str) -> String {
        nth_word(&self.ul2tp(&format!("connect remote {args}")), 1)
    }

    /// Wait until `show tunnel` lists tunnel `tid`, up to `timeout`; returns whether it did.
    pub fn wait_tunnel(&self, tid: &str, timeout: Duration) -> bool {
        let want = format!("Tunnel {tid},");
        wait_until(timeout, || self.ul2tp("show tunnel").contains(&want))
    }

    /// `ul2tp connect session tunnel_id TID pw_type ppp`: the id of the requested session
    /// (the command prints "Session M in tunnel N requested").
    pub fn connect_ppp_session(&self, tid: &str) -> String {
        nth_word(
            &self.ul2tp(&format!("connect session tunnel_id {tid} pw_type ppp")),
            1,
        )
    }

    /// Whether `show session` lists session `sid` of tunnel `tid`.
    pub fn has_session(&self, tid: &str, sid: &str) -> bool {
        self.ul2tp("show session")
            .contains(&format!("Session {sid} in tunnel {tid}"))
    }

    /// Wait until [`Daemon::has_session`], up to `timeout`; returns whether it did.
    pub fn wait_session(&self, tid: &str, sid: &str, timeout: Duration) -> bool {
        wait_until(timeout, || self.has_session(tid, sid))
    }

    /// Wait until `cond` holds (checked every 20 ms), up to `timeout`; returns whether it did.
    pub fn wait_for(&self, timeout: Duration, cond: impl FnMut() -> bool) -> bool {
        wait_until(timeout, cond)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- ul2tpd log ({}) ---\n{}",
                self.socket.display(),
                self.log()
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A packet capture running in a namespace (tcpdump writing a pcap file).
#[derive(Debug)]
pub struct Capture {
    child: Child,
    /// The pcap file.
    pub file: PathBuf,
}

impl Capture {
    /// Capture on `iface` in `ns` with a BPF `filter`.
    pub fn start(ns: &Netns, iface: &str, filter: &str) -> Capture {
        require("tcpdump", "tcpdump");
        let file = std::env::temp_dir().join(format!("{}.pcap", unique("cap")));
        let child = ns
            .cmd("tcpdump")
            .args(["-i", iface, "-U", "--immediate-mode", "-n", "-s", "0", "-w"])
            .arg(&file)
            .arg(filter)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(file.with_extension("log")).expect("tcpdump log"))
            .spawn()
            .expect("spawn tcpdump");
        // Wait until tcpdump has written its file header (it is listening by then).
        let end = Instant::now() + Duration::from_secs(5);
        while std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0) < 24 && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(200));
        Capture { child, file }
    }

    /// Packets written to the file so far (tcpdump runs with `-U`: one write per packet).
    pub fn packets(&self) -> usize {
        let bytes = std::fs::read(&self.file).unwrap_or_default();
        ul2tp_wire::pcap::records(&bytes)
            .map(|r| r.take_while(Result::is_ok).count())
            .unwrap_or(0)
    }

    /// Wait until at least `n` packets have been captured, up to `timeout`.
    pub fn wait_packets(&self, n: usize, timeout: Duration) -> bool {
        wait_until(timeout, || self.packets() >= n)
    }

    /// Stop and return the pcap file's bytes.
    pub fn stop(mut self) -> Vec<u8> {
        std::thread::sleep(Duration::from_millis(200));
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let bytes = std::fs::read(&self.file).unwrap_or_default();
        if bytes.len() <= 24 {
            eprintln!(
                "tcpdump: {}",
                std::fs::read_to_string(self.file.with_extension("log")).unwrap_or_default()
            );
        }
        bytes
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.file);
        let _ = std::fs::remove_file(self.file.with_extension("log"));
    }
}

/// Run tshark on a pcap with extra arguments; returns stdout (panics if tshark fails).
pub fn tshark(pcap: &[u8], args: &[&str]) -> String {
    require("tshark", "tshark");
    let file = std::env::temp_dir().join(format!("{}.pcap", unique("ts")));
    std::fs::write(&file, pcap).unwrap();
    let mut c = Command::new("tshark");
    c.arg("-r").arg(&file).args(args);
    let o = run(&mut c);
    let _ = std::fs::remove_file(&file);
    assert!(
        o.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}
