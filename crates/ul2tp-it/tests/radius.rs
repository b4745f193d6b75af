//! RADIUS against a real FreeRADIUS (Debian package `freeradius`): a ul2tpd LAC calls a ul2tpd
//! LNS whose `[radius]` table points at FreeRADIUS running in the LNS's namespace, with a
//! generated configuration (clients, a users file, a detail file for accounting). PAP, CHAP
//! and MS-CHAPv2 logins are accepted and rejected by the server; Framed-IP-Address reaches the
//! client's pppN; accounting Start and Stop land in the detail file with the session's octet
//! counts; Session-Timeout ends a session; a wrong secret fails logins with a clear log line.

use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::Duration;

use ul2tp_it::{wait_until, Daemon, Netns};

const SECRET: &str = "radius-test-secret-1";

/// A FreeRADIUS server in `ns` on 127.0.0.1:1812/1813 (or another loopback address), killed
/// (by PID) on drop.
struct FreeRadius {
    child: Child,
    dir: PathBuf,
}

impl FreeRadius {
    fn start(ns: &Netns, dir: &Path, users: &str) -> FreeRadius {
        FreeRadius::start_at(ns, dir, users, "127.0.0.1", SECRET)
    }

    /// A server listening on `addr` (a loopback address: the LNS's requests come from
    /// 127.0.0.1) whose client 127.0.0.1 has `secret`.
    fn start_at(ns: &Netns, dir: &Path, users: &str, addr: &str, secret: &str) -> FreeRadius {
        assert!(
            ul2tp_it::have("freeradius"),
            "this test needs FreeRADIUS: install the Debian package `freeradius` (and `freeradius-utils`)"
        );
        let d = dir.display();
        std::fs::create_dir_all(dir).unwrap();
        let conf = format!(
            r#"prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = {d}
raddbdir = {d}
radacctdir = {d}
name = freeradius
confdir = {d}
modconfdir = {d}
run_dir = {d}
db_dir = {d}
libdir = /usr/lib/freeradius
pidfile = {d}/radiusd.pid
max_request_time = 30
cleanup_delay = 0
max_requests = 1024
hostname_lookups = no
log {{
  destination = files
  file = {d}/radius.log
  auth = yes
}}
security {{
  allow_core_dumps = no
  max_attributes = 200
  reject_delay = 0
  status_server = no
}}
thread pool {{
  start_servers = 1
  max_servers = 4
  min_spare_servers = 1
  max_spare_servers = 4
  max_requests_per_server = 0
}}
client lns {{
  ipaddr = 127.0.0.1
  secret = {secret}
  require_message_authenticator = yes
}}
modules {{
  pap {{
  }}
  chap {{
  }}
  mschap {{
  }}
  files {{
    filename = {d}/users
  }}
  detail {{
    filename = {d}/detail
    permissions = 0600
    header = "%t"
  }}
}}
server default {{
  listen {{
    type = auth
    ipaddr = {addr}
    port = 1812
  }}
  listen {{
    type = acct
    ipaddr = {addr}
    port = 1813
  }}
  authorize {{
    chap
    mschap
    files
    pap
  }}
  authenticate {{
    Auth-Type PAP {{
      pap
    }}
    Auth-Type CHAP {{
      chap
    }}
    Auth-Type MS-CHAP {{
      mschap
    }}
  }}
  preacct {{
  }}
  accounting {{
    detail
  }}
  post-auth {{
  }}
}}
"#
        );
        std::fs::write(dir.join("radiusd.conf"), conf).unwrap();
        std::fs::write(dir.join("dictionary"), "").unwrap();
        std::fs::write(dir.join("users"), users).unwrap();
        let r = FreeRadius {
            child: Self::spawn(ns, dir),
            dir: dir.to_path_buf(),
        };
        r.wait_ready();
        r
    }

    fn spawn(ns: &Netns, dir: &Path) -> Child {
        let out = std::fs::File::create(dir.join("freeradius.out")).unwrap();
        ns.cmd("freeradius")
            .args(["-X", "-d"])
            .arg(dir)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn freeradius")
    }

    fn wait_ready(&self) {
        assert!(
            wait_until(Duration::from_secs(10), || self
                .output()
                .contains("Ready to process requests")),
            "FreeRADIUS did not start:\n{}",
            self.output()
        );
    }

    /// Kill the server (by PID) and wait for it.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Start it again with the same configuration (and detail file).
    fn restart(&mut self, ns: &Netns) {
        self.kill();
        self.child = Self::spawn(ns, &self.dir);
        self.wait_ready();
    }

    fn output(&self) -> String {
        std::fs::read_to_string(self.dir.join("freeradius.out")).unwrap_or_default()
    }

    /// The detail file's records, each as its attribute lines.
    fn detail(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.dir.join("detail")).unwrap_or_default();
        let mut records = Vec::new();
        for line in text.lines() {
            if !line.starts_with('\t') {
                records.push(String::new());
            } else if let Some(r) = records.last_mut() {
                r.push_str(line.trim());
                r.push('\n');
            }
        }
        records
    }

    /// The value of `attr` in a record.
    fn value(record: &str, attr: &str) -> Option<String> {
        record
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{attr} = ")))
            .map(|v| v.trim_matches('"').to_string())
    }
}

impl Drop for FreeRadius {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A LAC and an LNS daemon in two namespaces, a PPP call from the LAC, FreeRADIUS by the LNS.
struct Setup {
    a: Netns,
    b: Netns,
    lac: Daemon,
    lns: Daemon,
    radius: FreeRadius,
    call: (String, String),
    dir: PathBuf,
}

impl Setup {
    fn new(ppp_auth: &str, users: &str, secret: &str) -> Setup {
        Setup::with(ppp_auth, users, secret, "\"127.0.0.1\"")
    }

    /// `server` is the TOML value of `[radius] server`.
    fn with(ppp_auth: &str, users: &str, secret: &str, server: &str) -> Setup {
        Setup::full(ppp_auth, users, secret, server, "")
    }

    /// `lac_control`: more `[control]` keys for the LAC.
    fn full(ppp_auth: &str, users: &str, secret: &str, server: &str, lac_control: &str) -> Setup {
        Setup::build(ppp_auth, users, secret, server, lac_control, "")
    }

    /// The LNS's configuration file: `[control]`, then `[radius]` with `server` (TOML), the
    /// secret in `radius.secret`, `radius_extra` keys, then `[metrics]`.
    fn lns_config(dir: &Path, ppp_auth: &str, server: &str, radius_extra: &str) -> String {
        format!(
            "[control]\nlisten = \"192.0.2.2:1701\"\nhost_name = \"lns.example.test\"\n\
             ppp_local = \"10.96.0.1\"\nppp_pool = \"10.96.0.10-10.96.0.20\"\nppp_auth = \"{ppp_auth}\"\n\
             [radius]\nserver = {server}\nsecret_file = \"{}\"\ntimeout = 1\nretries = 1\n\
             acct_interim_interval = 1\n{radius_extra}\
             [metrics]\nlisten = \"127.0.0.1:9650\"\n",
            dir.join("radius.secret").display()
        )
    }

    /// `radius_extra`: more `[radius]` keys for the LNS (default `dae_listen`
    /// 127.0.0.1:3799 when empty).
    fn build(
        ppp_auth: &str,
        users: &str,
        secret: &str,
        server: &str,
        lac_control: &str,
        radius_extra: &str,
    ) -> Setup {
        let a = Netns::new("ra");
        let b = Netns::new("rb");
        ul2tp_it::veth(&a, "eth0", &b, "eth0");
        a.ip(&["addr", "add", "192.0.2.1/24", "dev", "eth0"]);
        b.ip(&["addr", "add", "192.0.2.2/24", "dev", "eth0"]);
        let dir = std::env::temp_dir().join(ul2tp_it::unique("radius"));
        let radius = FreeRadius::start(&b, &dir.join("raddb"), users);
        let (ca, cb) = (dir.join("lac.toml"), dir.join("lns.toml"));
        std::fs::write(
            &ca,
            format!("[control]\nlisten = \"192.0.2.1:1701\"\n{lac_control}"),
        )
        .unwrap();
        // The secret lives in a file of its own (secret_file), as in production.
        std::fs::write(dir.join("radius.secret"), format!("{secret}\n")).unwrap();
        let extra = if radius_extra.is_empty() {
            "dae_listen = \"127.0.0.1:3799\"\n"
        } else {
            radius_extra
        };
        std::fs::write(&cb, Setup::lns_config(&dir, ppp_auth, server, extra)).unwrap();
        let lac = Daemon::start(&a, &["--config", ca.to_str().unwrap()]);
        let lns = Daemon::start(&b, &["--config", cb.to_str().unwrap()]);
        let tid = lac
            .ul2tp("connect remote 192.0.2.2 version 2")
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string();
        let tunnel = format!("Tunnel {tid},");
        assert!(wait_until(Duration::from_secs(10), || lac
            .ul2tp("show tunnel")
            .contains(&tunnel)));
        let sid = Setup::connect_session(&lac, &tid);
        Setup {
            a,
            b,
            lac,
            lns,
            radius,
            call: (tid, sid),
            dir,
        }
    }

    /// A new PPP session (no PPP yet) in the LAC's tunnel `tid`: its id.
    fn connect_session(lac: &Daemon, tid: &str) -> String {
        let out = lac.ul2tp(&format!("connect session tunnel_id {tid} pw_type ppp"));
        let sid = out.split_whitespace().nth(1).unwrap().to_string();
        let session = format!("Session {sid} in tunnel {tid}");
        assert!(wait_until(Duration::from_secs(10), || lac
            .ul2tp("show session")
            .contains(&session)));
        sid
    }

    /// Clear the call from the LAC and wait until the LNS has no session left.
    fn hang_up(&self) {
        let (tid, sid) = &self.call;
        self.lac
            .ul2tp(&format!("disconnect tunnel_id {tid} session_id {sid}"));
        assert!(wait_until(Duration::from_secs(10), || Setup::call_gone(
            &self.lns
        )));
    }

    /// Send a Disconnect- or CoA-Request (`kind`: `disconnect` / `coa`) with `attrs` to the
    /// LNS with radclient (the secret read from a file, `-S`); radclient's output.
    fn radclient(&self, kind: &str, attrs: &str, secret: &str) -> String {
        self.radclient_at("127.0.0.1:3799", kind, attrs, secret)
    }

    /// [`Setup::radclient`] to the DAE listener at `to`.
    fn radclient_at(&self, to: &str, kind: &str, attrs: &str, secret: &str) -> String {
        assert!(
            ul2tp_it::have("radclient"),
            "this test needs radclient: install the Debian package `freeradius-utils`"
        );
        let file = self.dir.join(ul2tp_it::unique("dae-secret"));
        std::fs::write(&file, format!("{secret}\n")).unwrap();
        let mut child = self
            .b
            .cmd("radclient")
            .args(["-x", "-t", "2", "-r", "1", "-S"])
            .arg(&file)
            .args([to, kind])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn radclient");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(attrs.as_bytes())
            .unwrap();
        let o = child.wait_with_output().unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    }

    /// The LNS's `ul2tp_radius_*` sample `name` from GET /metrics.
    fn metric(&self, name: &str) -> u64 {
        use std::io::{Read, Write};
        let body = self.b.run_in(|| {
            let mut s = std::net::TcpStream::connect("127.0.0.1:9650").expect("connect to metrics");
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        });
        let series = format!("ul2tp_radius_{name} ");
        body.lines()
            .find_map(|l| l.strip_prefix(&series))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series}in:\n{body}"))
    }

    /// The Acct-Session-Id of the (first) Start record, once there is one.
    fn started_session(&self) -> String {
        assert!(
            wait_until(Duration::from_secs(10), || self
                .radius
                .detail()
                .iter()
                .any(|r| r.contains("Acct-Status-Type = Start"))),
            "no Start in the detail file: {}",
            self.lns.log()
        );
        let start = self
            .radius
            .detail()
            .into_iter()
            .find(|r| r.contains("Acct-Status-Type = Start"))
            .unwrap();
        FreeRadius::value(&start, "Acct-Session-Id").unwrap()
    }

    /// The Stop record, once there is one.
    fn stop_record(&self) -> String {
        self.stop_record_within(Duration::from_secs(10))
    }

    fn stop_record_within(&self, limit: Duration) -> String {
        assert!(
            wait_until(limit, || self
                .radius
                .detail()
                .iter()
                .any(|r| r.contains("Acct-Status-Type = Stop"))),
            "no Stop in the detail file: {}",
            self.lns.log()
        );
        self.radius
            .detail()
            .into_iter()
            .find(|r| r.contains("Acct-Status-Type = Stop"))
            .unwrap()
    }

    fn ppp_start(&self, user: &str, password: &str) -> Output {
        let (tid, sid) = &self.call;
        let line =
            format!("ppp start tunnel_id {tid} session_id {sid} user {user} password {password}");
        self.lac.cli(&line.split_whitespace().collect::<Vec<_>>())
    }

    fn call_gone(d: &Daemon) -> bool {
        !d.ul2tp("show session").contains("Session ")
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.radius.kill();
        // Kept for a look when the test failed (the FreeRADIUS output, the detail file).
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn text(o: &Output) -> String {
    format!(
        "status {}: {}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn has_addr(ns: &Netns, addr: &str) -> bool {
    ns.ip(&["-o", "-4", "addr", "show"])
        .contains(&format!("inet {addr} "))
}

const ALICE: &str = "alice Cleartext-Password := \"wonderland\"\n\
    \tFramed-IP-Address = 10.96.0.77,\n\
    \tMS-Primary-DNS-Server = 10.96.0.53,\n\
    \tClass = \"gold\",\n\
    \tReply-Message = \"welcome alice\"\n\
    bob Cleartext-Password := \"builder\"\n\
    \tSession-Timeout = 3\n\
    carol Cleartext-Password := \"lewis\"\n\
    \tIdle-Timeout = 2\n";

/// PAP through FreeRADIUS: the address FreeRADIUS assigns (not the pool's first) reaches the
/// LAC's pppN; accounting Start and, after the LAC clears the call, Stop with the session's
/// counters and the Class reach the detail file.
#[test]
fn pap_login_address_and_accounting() {
    let t = Setup::new("pap", ALICE, SECRET);
    let o = t.ppp_start("alice", "wonderland");
    assert!(
        o.status.success(),
        "ppp start: {}\n{}",
        text(&o),
        t.lns.log()
    );
    assert!(has_addr(&t.a, "10.96.0.77"), "{}", t.a.ip(&["-o", "addr"]));
    // MS-Primary-DNS-Server reached the LAC in IPCP (RFC 1877).
    let lac_log = t.lac.log();
    assert!(
        lac_log.contains("-> 10.96.0.1, DNS servers from the peer: 10.96.0.53"),
        "{lac_log}"
    );
    assert!(
        t.a.ping_retry("10.96.0.1", &[], 5),
        "LAC pings the LNS over PPP"
    );
    let log = t.lns.log();
    assert!(log.contains("RADIUS accepted \"alice\""), "{log}");
    assert!(log.contains("welcome alice"), "Reply-Message logged: {log}");
    assert!(
        !log.contains("wonderland") && !log.contains(SECRET),
        "secret in log: {log}"
    );
    assert!(
        wait_until(Duration::from_secs(10), || t
            .radius
            .detail()
            .iter()
            .any(|r| r.contains("Acct-Status-Type = Start"))),
        "no Start in the detail file: {:?}\n{}",
        t.radius.detail(),
        t.radius.output()
    );
    let start = t
        .radius
        .detail()
        .into_iter()
        .find(|r| r.contains("Acct-Status-Type = Start"))
        .unwrap();
    assert_eq!(
        FreeRadius::value(&start, "User-Name").as_deref(),
        Some("alice")
    );
    assert_eq!(
        FreeRadius::value(&start, "Framed-IP-Address").as_deref(),
        Some("10.96.0.77")
    );
    assert_eq!(
        FreeRadius::value(&start, "Class").as_deref(),
        Some("0x676f6c64"),
        "{start}"
    );
    assert_eq!(
        FreeRadius::value(&start, "NAS-IP-Address").as_deref(),
        Some("192.0.2.2"),
        "{start}"
    );
    assert_eq!(
        FreeRadius::value(&start, "NAS-Identifier").as_deref(),
        Some("lns.example.test")
    );
    assert_eq!(
        FreeRadius::value(&start, "Tunnel-Client-Endpoint:0").as_deref(),
        Some("192.0.2.1"),
        "{start}"
    );
    let session_id = FreeRadius::value(&start, "Acct-Session-Id").unwrap();
    // `ul2tp show session` on the LNS names the peer, its address and the Acct-Session-Id.
    let show = t.lns.ul2tp("show session");
    assert!(
        show.contains("  ppp: user \"alice\" ") && show.contains(" -> 10.96.0.77"),
        "{show}"
    );
    assert!(
        show.contains(&format!("acct session id {session_id}\n")),
        "{show}"
    );
    let json = t.lns.ul2tp("-j show session");
    assert!(
        json.contains(&format!("\"acct_session_id\":\"{session_id}\"")),
        "{json}"
    );
    // acct_interim_interval = 1: Interim-Updates for the same session, with counters.
    assert!(
        wait_until(Duration::from_secs(5), || t.radius.detail().iter().any(
            |r| r.contains("Acct-Status-Type = Interim-Update")
                && r.contains(&format!("Acct-Session-Id = \"{session_id}\""))
                && r.contains("Acct-Input-Octets = ")
        )),
        "no Interim-Update: {:?}",
        t.radius.detail()
    );

    // The LNS's counters for the call, after the pings, before it goes.
    let lns_sessions = t.lns.session_dump();
    let s = &lns_sessions[0];
    let before = t
        .lns
        .session_stats(s.conn_id.unwrap(), s.session_id.unwrap());
    assert!(before.rx_bytes > 0);
    let (tid, sid) = &t.call;
    t.lac
        .ul2tp(&format!("disconnect tunnel_id {tid} session_id {sid}"));
    assert!(wait_until(Duration::from_secs(10), || Setup::call_gone(
        &t.lns
    )));
    assert!(
        wait_until(Duration::from_secs(10), || t
            .radius
            .detail()
            .iter()
            .any(|r| r.contains("Acct-Status-Type = Stop"))),
        "no Stop in the detail file: {:?}\n{}",
        t.radius.detail(),
        t.lns.log()
    );
    let stop = t
        .radius
        .detail()
        .into_iter()
        .find(|r| r.contains("Acct-Status-Type = Stop"))
        .unwrap();
    assert_eq!(
        FreeRadius::value(&stop, "Acct-Session-Id"),
        Some(session_id)
    );
    let n = |a: &str| -> u64 {
        FreeRadius::value(&stop, a)
            .unwrap_or_default()
            .parse()
            .unwrap_or(0)
    };
    // At least what the LNS had counted before the teardown, and not more than the little
    // the teardown added (LCP Terminate, a last echo).
    assert!(
        n("Acct-Input-Octets") >= before.rx_bytes && n("Acct-Input-Octets") < before.rx_bytes + 500,
        "{stop} vs {before:?}"
    );
    assert!(
        n("Acct-Output-Octets") >= before.tx_bytes
            && n("Acct-Output-Octets") < before.tx_bytes + 500
    );
    assert!(n("Acct-Input-Packets") >= before.rx_packets);
    assert_eq!(n("Acct-Input-Gigawords"), 0);
    assert!(
        FreeRadius::value(&stop, "Acct-Terminate-Cause").is_some(),
        "{stop}"
    );
    assert!(
        FreeRadius::value(&stop, "Acct-Session-Time").is_some(),
        "{stop}"
    );
    assert_eq!(t.metric("access_requests_total"), 1);
    assert_eq!(t.metric("access_accepts_total"), 1);
    assert_eq!(t.metric("access_rejects_total"), 0);
    assert!(
        t.metric("acct_responses_total") >= 3,
        "Start, Interim, Stop"
    );
    assert!(wait_until(Duration::from_secs(5), || t
        .metric("acct_pending")
        == 0));
}

/// CHAP-MD5 and MS-CHAPv2 checked by FreeRADIUS: the right password brings the link up (for
/// MS-CHAPv2 the LAC verifies the authenticator response FreeRADIUS computed), a wrong one
/// makes `ppp start` fail and the LNS log says why.
#[test]
fn chap_and_mschapv2_accept_and_reject() {
    for auth in ["chap", "mschapv2"] {
        let t = Setup::new(auth, ALICE, SECRET);
        let o = t.ppp_start("alice", "wonderland");
        assert!(o.status.success(), "{auth}: {}\n{}", text(&o), t.lns.log());
        assert!(has_addr(&t.a, "10.96.0.77"), "{auth}");

        let t = Setup::new(auth, ALICE, SECRET);
        let o = t.ppp_start("alice", "looking-glass");
        assert_eq!(o.status.code(), Some(2), "{auth}: {}", text(&o));
        assert!(
            wait_until(Duration::from_secs(5), || t
                .lns
                .log()
                .contains("RADIUS login of \"alice\" failed: Access-Reject")),
            "{auth}: {}",
            t.lns.log()
        );
        assert!(wait_until(Duration::from_secs(10), || Setup::call_gone(
            &t.lac
        )));
        assert!(!t.lns.log().contains("looking-glass"));
        assert_eq!(t.metric("access_rejects_total"), 1, "{auth}");
    }
}

/// Session-Timeout from the Access-Accept ends the session: the call is cleared and the Stop
/// says Session-Timeout.
#[test]
fn session_timeout_ends_the_session() {
    let t = Setup::new("pap", ALICE, SECRET);
    let o = t.ppp_start("bob", "builder");
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        wait_until(Duration::from_secs(15), || Setup::call_gone(&t.lac)),
        "Session-Timeout 3 s did not end the call: {}",
        t.lns.log()
    );
    assert!(
        t.lns.log().contains("SessionTimeout reached"),
        "{}",
        t.lns.log()
    );
    assert!(wait_until(Duration::from_secs(10), || t
        .radius
        .detail()
        .iter()
        .any(|r| r.contains("Acct-Terminate-Cause = Session-Timeout"))));
}

/// The LNS has the wrong secret: FreeRADIUS's replies do not verify, the login fails, the log
/// says why, and the daemon keeps running.
#[test]
fn wrong_secret_fails_with_a_clear_log_line() {
    let mut t = Setup::new("pap", ALICE, "not-the-secret");
    let o = t.ppp_start("alice", "wonderland");
    assert!(!o.status.success(), "{}", text(&o));
    let log = t.lns.log();
    assert!(
        log.contains("RADIUS login of \"alice\" failed: no RADIUS server answered"),
        "{log}\n{}",
        t.radius.output()
    );
    assert!(t.lns.alive(), "the LNS died");
    assert!(!log.contains("not-the-secret"));
    // timeout = 1, retries = 1: two transmissions; FreeRADIUS drops both (their
    // Message-Authenticator does not verify with its secret).
    assert_eq!(t.metric("timeouts_total"), 1);
    assert_eq!(t.metric("retransmits_total"), 1);
    assert_eq!(t.metric("access_accepts_total"), 0);
}

/// Disconnect-Request (RFC 5176) with radclient: an unknown session is NAKed with
/// Session-Context-Not-Found, a request without identification with Missing-Attribute, one
/// signed with another secret is not answered; one naming the session by User-Name and
/// Framed-IP-Address is ACKed, clears the call (the LAC sees it go) and the Stop says
/// Admin-Reset.
#[test]
fn disconnect_request_clears_the_session() {
    let t = Setup::new("pap", ALICE, SECRET);
    let o = t.ppp_start("alice", "wonderland");
    assert!(o.status.success(), "{}", text(&o));
    t.started_session();

    let out = t.radclient(
        "disconnect",
        "Acct-Session-Id = \"no-such-session\"\n",
        SECRET,
    );
    assert!(out.contains("Received Disconnect-NAK"), "{out}");
    assert!(
        out.contains("Error-Cause = Session-Context-Not-Found"),
        "{out}"
    );
    let out = t.radclient(
        "disconnect",
        "NAS-Identifier = \"lns.example.test\"\n",
        SECRET,
    );
    assert!(out.contains("Error-Cause = Missing-Attribute"), "{out}");
    let out = t.radclient("disconnect", "User-Name = \"alice\"\n", "not-the-secret");
    assert!(
        !out.contains("Received Disconnect-"),
        "answered with a wrong secret: {out}"
    );
    assert!(
        has_addr(&t.a, "10.96.0.77"),
        "the session went on a bad request"
    );

    let out = t.radclient(
        "disconnect",
        "User-Name = \"alice\"\nFramed-IP-Address = 10.96.0.77\n",
        SECRET,
    );
    assert!(
        out.contains("Received Disconnect-ACK"),
        "{out}\n{}",
        t.lns.log()
    );
    assert!(
        wait_until(Duration::from_secs(10), || Setup::call_gone(&t.lac)),
        "the LAC still has the call: {}",
        t.lns.log()
    );
    let stop = t.stop_record();
    assert_eq!(
        FreeRadius::value(&stop, "Acct-Terminate-Cause").as_deref(),
        Some("Admin-Reset"),
        "{stop}"
    );
    // Verified and answered: the unknown session, the one without identification (NAKs)
    // and the disconnect (ACK); the wrong-secret one was dropped.
    assert_eq!(t.metric("dae_requests_total"), 3);
    assert_eq!(t.metric("dae_acks_total"), 1);
    assert_eq!(t.metric("dae_naks_total"), 2);
    assert!(
        t.metric("dae_dropped_total") >= 1,
        "the wrong-secret request"
    );
}

/// CoA-Request: an attribute the LNS cannot change is NAKed with Unsupported-Attribute; a new
/// Session-Timeout by Acct-Session-Id is ACKed and ends the session that long after.
#[test]
fn coa_changes_the_session_timeout() {
    let t = Setup::new("pap", ALICE, SECRET);
    let o = t.ppp_start("alice", "wonderland");
    assert!(o.status.success(), "{}", text(&o));
    let id = t.started_session();
    let out = t.radclient(
        "coa",
        &format!("Acct-Session-Id = \"{id}\"\nFilter-Id = \"x\"\n"),
        SECRET,
    );
    assert!(out.contains("Received CoA-NAK"), "{out}");
    assert!(out.contains("Error-Cause = Unsupported-Attribute"), "{out}");
    // alice has no Session-Timeout: still up after a while.
    std::thread::sleep(Duration::from_secs(2));
    assert!(has_addr(&t.a, "10.96.0.77"));
    let out = t.radclient(
        "coa",
        &format!("Acct-Session-Id = \"{id}\"\nSession-Timeout = 2\n"),
        SECRET,
    );
    assert!(out.contains("Received CoA-ACK"), "{out}\n{}", t.lns.log());
    assert!(
        wait_until(Duration::from_secs(10), || Setup::call_gone(&t.lac)),
        "the CoA's Session-Timeout did not end the call: {}",
        t.lns.log()
    );
    let stop = t.stop_record();
    assert_eq!(
        FreeRadius::value(&stop, "Acct-Terminate-Cause").as_deref(),
        Some("Session-Timeout"),
        "{stop}"
    );
}

/// The first server does not answer (nothing listens on 127.0.0.2): the login fails over to
/// the second, and so does accounting.
#[test]
fn fail_over_to_the_next_server() {
    let t = Setup::with("pap", ALICE, SECRET, "[\"127.0.0.2\", \"127.0.0.1\"]");
    let o = t.ppp_start("alice", "wonderland");
    assert!(o.status.success(), "{}\n{}", text(&o), t.lns.log());
    assert!(has_addr(&t.a, "10.96.0.77"));
    t.started_session();
    assert!(
        t.lns
            .log()
            .contains("RADIUS server 127.0.0.2:1812 did not answer"),
        "{}",
        t.lns.log()
    );
    assert_eq!(t.metric("access_accepts_total"), 1);
    assert!(t.metric("retransmits_total") >= 1);
}

/// FreeRADIUS goes away mid-session: the session stays up, accounting queues (pending > 0),
/// and once the server is back the Stop is delivered, with its Acct-Delay-Time.
#[test]
fn accounting_survives_a_server_outage() {
    let mut t = Setup::new("pap", ALICE, SECRET);
    let o = t.ppp_start("alice", "wonderland");
    assert!(o.status.success(), "{}", text(&o));
    let id = t.started_session();
    t.radius.kill();
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        t.a.ping_retry("10.96.0.1", &[], 5),
        "the session went with the server"
    );
    let (tid, sid) = &t.call;
    t.lac
        .ul2tp(&format!("disconnect tunnel_id {tid} session_id {sid}"));
    assert!(wait_until(Duration::from_secs(10), || Setup::call_gone(
        &t.lns
    )));
    assert!(wait_until(Duration::from_secs(5), || t
        .metric("acct_pending")
        >= 1));
    assert!(!t
        .radius
        .detail()
        .iter()
        .any(|r| r.contains("Acct-Status-Type = Stop")));
    t.radius.restart(&t.b);
    let stop = t.stop_record_within(Duration::from_secs(40));
    assert_eq!(FreeRadius::value(&stop, "Acct-Session-Id"), Some(id));
    let delay: u64 = FreeRadius::value(&stop, "Acct-Delay-Time")
        .unwrap()
        .parse()
        .unwrap();
    assert!(delay >= 1, "{stop}");
    assert!(wait_until(Duration::from_secs(40), || t
        .metric("acct_pending")
        == 0));
}

/// Idle-Timeout from the Access-Accept: a session without traffic ends, Acct-Terminate-Cause
/// Idle-Timeout (LCP echoes do not count as traffic).
#[test]
fn idle_timeout_ends_an_idle_session() {
    let t = Setup::new("pap", ALICE, SECRET);
    let o = t.ppp_start("carol", "lewis");
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        wait_until(Duration::from_secs(15), || Setup::call_gone(&t.lac)),
        "Idle-Timeout 2 s did not end the call: {}",
        t.lns.log()
    );
    let stop = t.stop_record();
    assert_eq!(
        FreeRadius::value(&stop, "Acct-Terminate-Cause").as_deref(),
        Some("Idle-Timeout"),
        "{stop}"
    );
}

/// SIGTERM to the LNS: before it exits, the Stop of every session (Admin-Reboot) reaches the
/// server.
#[test]
fn shutdown_sends_the_stops() {
    let mut t = Setup::new("pap", ALICE, SECRET);
    let o = t.ppp_start("alice", "wonderland");
    assert!(o.status.success(), "{}", text(&o));
    let id = t.started_session();
    t.lns.signal("TERM");
    assert!(
        wait_until(Duration::from_secs(10), || !t.lns.alive()),
        "the LNS did not stop"
    );
    // Already there when the daemon has exited: it waited for the answer.
    let stop = t
        .radius
        .detail()
        .into_iter()
        .find(|r| r.contains("Acct-Status-Type = Stop"))
        .unwrap_or_else(|| panic!("no Stop: {}", t.lns.log()));
    assert_eq!(FreeRadius::value(&stop, "Acct-Session-Id"), Some(id));
    assert_eq!(
        FreeRadius::value(&stop, "Acct-Terminate-Cause").as_deref(),
        Some("Admin-Reboot"),
        "{stop}"
    );
}

/// Users for [`profiles_pools_routes_and_station_ids`]: dave is accepted only from the line
/// the LAC names (Calling-Station-Id, Called-Station-Id) and gets an address of the profile's
/// pool "gold", an MTU and a route; erin gets a fixed address inside the pool "main"; frank
/// gets 255.255.255.254: an address from the pool.
const POOLS: &str = "dave Cleartext-Password := \"d-pw\", Calling-Station-Id == \"5551234\", Called-Station-Id == \"lns-1\"\n\
    \tFramed-Pool = \"gold\",\n\
    \tFramed-MTU = 1400,\n\
    \tFramed-Route = \"198.51.100.0/24 0.0.0.0 1\"\n\
    erin Cleartext-Password := \"e-pw\"\n\
    \tFramed-IP-Address = 10.96.0.11\n\
    frank Cleartext-Password := \"f-pw\"\n\
    \tFramed-IP-Address = 255.255.255.254\n";

/// `[[lac]]` profiles dial an LNS whose `[[lns]]` profile has two named pools: the ICRQ's
/// Calling / Called Number reach FreeRADIUS as Calling- / Called-Station-Id (its users file
/// accepts dave only with them), Framed-Pool picks the pool, Framed-MTU caps the pppN MTU,
/// Framed-Route routes through the pppN; a Framed-IP-Address inside a pool is leased, so the
/// pool skips it and a second session cannot get it.
#[test]
fn profiles_pools_routes_and_station_ids() {
    let a = Netns::new("rpa");
    let b = Netns::new("rpb");
    ul2tp_it::veth(&a, "eth0", &b, "eth0");
    a.ip(&["addr", "add", "192.0.2.1/24", "dev", "eth0"]);
    b.ip(&["addr", "add", "192.0.2.2/24", "dev", "eth0"]);
    let dir = std::env::temp_dir().join(ul2tp_it::unique("radius-pools"));
    let radius = FreeRadius::start(&b, &dir.join("raddb"), POOLS);
    let (ca, cb) = (dir.join("lac.toml"), dir.join("lns.toml"));
    let mut lac_cfg = String::from("[control]\nlisten = \"192.0.2.1:1701\"\n");
    for (name, user, pw, extra) in [
        (
            "dave",
            "dave",
            "d-pw",
            "calling_number = \"5551234\"\ncalled_number = \"lns-1\"\n",
        ),
        ("erin1", "erin", "e-pw", ""),
        ("frank1", "frank", "f-pw", ""),
        ("frank2", "frank", "f-pw", ""),
        ("erin2", "erin", "e-pw", ""),
    ] {
        lac_cfg.push_str(&format!(
            "[[lac]]\nname = \"{name}\"\nlns = \"192.0.2.2\"\nversion = 2\nuser = \"{user}\"\n\
             password = \"{pw}\"\n{extra}"
        ));
    }
    std::fs::write(&ca, lac_cfg).unwrap();
    std::fs::write(
        &cb,
        format!(
            "[control]\nlisten = \"192.0.2.2:1701\"\nhost_name = \"lns.example.test\"\n\
             [[lns]]\nname = \"isp\"\nppp_local = \"10.96.0.1\"\nppp_auth = \"pap\"\n\
             [[lns.pool]]\nname = \"main\"\nranges = [\"10.96.0.10-10.96.0.20\"]\n\
             [[lns.pool]]\nname = \"gold\"\nranges = [\"10.97.0.10-10.97.0.20\"]\n\
             [radius]\nserver = \"127.0.0.1\"\nsecret = \"{SECRET}\"\ntimeout = 1\nretries = 1\n"
        ),
    )
    .unwrap();
    let lac = Daemon::start(&a, &["--config", ca.to_str().unwrap()]);
    let lns = Daemon::start(&b, &["--config", cb.to_str().unwrap()]);
    let dial = |name: &str| lac.cli(&["dial", name, "wait"]);

    let o = dial("dave");
    assert!(o.status.success(), "dave: {}\n{}", text(&o), lns.log());
    assert!(
        has_addr(&a, "10.97.0.10"),
        "gold: {}",
        a.ip(&["-o", "addr"])
    );
    // The route and the MTU on the LNS's pppN.
    let route = b.ip(&["-o", "-4", "route", "show", "198.51.100.0/24"]);
    let dev = route
        .split_whitespace()
        .skip_while(|w| *w != "dev")
        .nth(1)
        .unwrap_or_else(|| panic!("no Framed-Route: {route:?}\n{}", lns.log()))
        .to_string();
    assert!(dev.starts_with("ppp"), "{route}");
    let link = b.ip(&["-o", "link", "show", "dev", &dev]);
    assert!(link.contains(" mtu 1400 "), "{link}");
    assert!(
        lns.ul2tp("show session").contains("pool gold"),
        "{}",
        lns.ul2tp("show session")
    );
    // The Start record carries the station ids.
    assert!(
        wait_until(Duration::from_secs(10), || radius
            .detail()
            .iter()
            .any(|r| r.contains("Acct-Status-Type = Start"))),
        "no Start: {}",
        lns.log()
    );
    let start = radius
        .detail()
        .into_iter()
        .find(|r| r.contains("Acct-Status-Type = Start"))
        .unwrap();
    assert_eq!(
        FreeRadius::value(&start, "Calling-Station-Id").as_deref(),
        Some("5551234"),
        "{start}"
    );
    assert_eq!(
        FreeRadius::value(&start, "Called-Station-Id").as_deref(),
        Some("lns-1"),
        "{start}"
    );
    assert_eq!(
        FreeRadius::value(&start, "NAS-Port-Type").as_deref(),
        Some("Virtual"),
        "{start}"
    );

    // erin: 10.96.0.11 from RADIUS (her pool lease 10.96.0.10 goes back); frank takes .10,
    // the next frank .12: .11 is leased to erin.
    let o = dial("erin1");
    assert!(o.status.success(), "erin: {}\n{}", text(&o), lns.log());
    assert!(has_addr(&a, "10.96.0.11"), "{}", a.ip(&["-o", "addr"]));
    for (name, addr) in [("frank1", "10.96.0.10"), ("frank2", "10.96.0.12")] {
        let o = dial(name);
        assert!(o.status.success(), "{name}: {}\n{}", text(&o), lns.log());
        assert!(has_addr(&a, addr), "{name}: {}", a.ip(&["-o", "addr"]));
    }
    // A second erin cannot have 10.96.0.11.
    let o = dial("erin2");
    assert!(!o.status.success(), "second erin: {}", text(&o));
    let log = lns.log();
    assert!(
        log.contains("Framed-IP-Address 10.96.0.11 is held by another session"),
        "{log}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Framed-IPv6-Prefix, Delegated-IPv6-Prefix and DNS-Server-IPv6-Address replace the LNS's
/// (absent) IPv6 pools for the session: the LAC forms its address from the /64 of the Router
/// Advertisements with the Framed-Interface-Id IPv6CP gave it, learns the DNS server from
/// them, and gets the prefix by DHCPv6.
#[test]
fn ipv6_prefixes_and_dns_from_radius() {
    let users = "vera Cleartext-Password := \"v-pw\"\n\
        \tFramed-IPv6-Prefix = 2001:db8:77::/64,\n\
        \tDelegated-IPv6-Prefix = 2001:db8:7700::/56,\n\
        \tDNS-Server-IPv6-Address = 2001:db8::53,\n\
        \tFramed-Interface-Id = 0:0:0:4242\n";
    let t = Setup::full(
        "pap",
        users,
        SECRET,
        "\"127.0.0.1\"",
        "ppp_ipv6_pd = true\n",
    );
    let o = t.ppp_start("vera", "v-pw");
    assert!(o.status.success(), "{}\n{}", text(&o), t.lns.log());
    let line = "  delegated prefix: 2001:db8:7700::/56\n";
    assert!(
        wait_until(Duration::from_secs(15), || t
            .lac
            .ul2tp("show session")
            .contains(line)),
        "LAC: {}\n{}\nLNS: {}",
        t.lac.ul2tp("show session"),
        t.lac.log(),
        t.lns.log()
    );
    assert!(t.lns.ul2tp("show session").contains(line));
    assert!(
        t.lns
            .ul2tp("show session")
            .contains("  ipv6 prefix: 2001:db8:77::/64\n"),
        "{}",
        t.lns.ul2tp("show session")
    );
    let v6 = t.a.ip(&["-6", "-o", "addr", "show"]);
    // Framed-Interface-Id: the LAC's identifier, in its link-local and SLAAC addresses.
    assert!(
        v6.contains("inet6 2001:db8:77::4242/64"),
        "LAC addresses: {v6}"
    );
    assert!(v6.contains("inet6 fe80::4242/64"), "LAC addresses: {v6}");
    let log = t.lac.log();
    assert!(
        log.contains("IPv6 DNS servers from ") && log.contains("2001:db8::53"),
        "{log}"
    );
}

/// The LAC asks RADIUS which LNS carries a user's calls (RFC 2868, `[[lac]] radius = true`):
/// FreeRADIUS, in the LAC's namespace, offers two L2TP tunnels; the preferred one does not
/// answer, the next one is dialled with the Tunnel-Password as tunnel secret (the LNS
/// requires it) and the call comes up. A user RADIUS rejects is not dialled at all.
#[test]
fn lac_picks_the_lns_with_radius_tunnel_attributes() {
    let a = Netns::new("rla");
    let b = Netns::new("rlb");
    ul2tp_it::veth(&a, "eth0", &b, "eth0");
    a.ip(&["addr", "add", "192.0.2.1/24", "dev", "eth0"]);
    b.ip(&["addr", "add", "192.0.2.2/24", "dev", "eth0"]);
    let dir = std::env::temp_dir().join(ul2tp_it::unique("radius-lac"));
    let users = "tina Cleartext-Password := \"t-pw\"\n\
        \tTunnel-Type:1 = L2TP,\n\
        \tTunnel-Medium-Type:1 = IPv4,\n\
        \tTunnel-Server-Endpoint:1 = \"192.0.2.9\",\n\
        \tTunnel-Preference:1 = 1,\n\
        \tTunnel-Type:2 = L2TP,\n\
        \tTunnel-Medium-Type:2 = IPv4,\n\
        \tTunnel-Server-Endpoint:2 = \"192.0.2.2\",\n\
        \tTunnel-Password:2 = \"tunnel-secret-7\",\n\
        \tTunnel-Preference:2 = 2\n";
    let _radius = FreeRadius::start(&a, &dir.join("raddb"), users);
    let (ca, cb) = (dir.join("lac.toml"), dir.join("lns.toml"));
    let mut lac_cfg = String::from("[control]\nlisten = \"192.0.2.1:1701\"\n");
    for (name, user) in [("isp", "tina"), ("bad", "tom")] {
        lac_cfg.push_str(&format!(
            "[[lac]]\nname = \"{name}\"\nlns = \"192.0.2.250\"\nradius = true\nuser = \"{user}\"\n\
             password = \"t-pw\"\nmax_retries = 1\n"
        ));
    }
    lac_cfg.push_str(&format!(
        "[radius]\nserver = \"127.0.0.1\"\nsecret = \"{SECRET}\"\ntimeout = 1\nretries = 1\n"
    ));
    std::fs::write(&ca, lac_cfg).unwrap();
    std::fs::write(
        &cb,
        "[control]\nlisten = \"192.0.2.2:1701\"\nsecret = \"tunnel-secret-7\"\n\
         ppp_local = \"10.96.0.1\"\nppp_pool = \"10.96.0.10-10.96.0.20\"\nppp_auth = \"pap\"\n\
         ppp_users = { tina = \"t-pw\" }\n",
    )
    .unwrap();
    let lac = Daemon::start(&a, &["--config", ca.to_str().unwrap()]);
    let lns = Daemon::start(&b, &["--config", cb.to_str().unwrap()]);

    let o = lac.cli(&["dial", "isp", "wait"]);
    assert!(
        o.status.success(),
        "{}\n{}\n{}",
        text(&o),
        lac.log(),
        lns.log()
    );
    assert!(has_addr(&a, "10.96.0.10"), "{}", a.ip(&["-o", "addr"]));
    let log = lac.log();
    let at = |s: &str| {
        log.find(s)
            .unwrap_or_else(|| panic!("no {s:?} in the LAC log:\n{log}"))
    };
    assert!(at("RADIUS tunnel to 192.0.2.9:1701 (preference 1)") < at("dialing 192.0.2.9:1701"));
    assert!(at("dialing 192.0.2.9:1701") < at("dialing 192.0.2.2:1701"));
    assert!(
        !log.contains("192.0.2.250"),
        "the configured lns is not used: {log}"
    );
    assert!(!log.contains("tunnel-secret-7"), "secret in the log: {log}");

    let o = lac.cli(&["dial", "bad", "wait"]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("RADIUS: Access-Reject"), "{}", text(&o));
    assert!(!lac.log().contains("lac bad: dialing"), "{}", lac.log());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Framed-IP-Netmask with Framed-IP-Address (as accel-ppp does): the subscriber's network
/// A/M is routed through the session's pppN on the LNS while the session is up, shown by
/// `show session`, and gone with the session.
#[test]
fn framed_ip_netmask_routes_the_subscribers_network() {
    let users = "gina Cleartext-Password := \"g-pw\"\n\
        \tFramed-IP-Address = 203.0.113.9,\n\
        \tFramed-IP-Netmask = 255.255.255.248\n";
    let t = Setup::new("pap", users, SECRET);
    let o = t.ppp_start("gina", "g-pw");
    assert!(o.status.success(), "{}\n{}", text(&o), t.lns.log());
    assert!(has_addr(&t.a, "203.0.113.9"), "{}", t.a.ip(&["-o", "addr"]));
    let route = t.b.ip(&["-o", "-4", "route", "show", "203.0.113.8/29"]);
    let dev = route
        .split_whitespace()
        .skip_while(|w| *w != "dev")
        .nth(1)
        .unwrap_or_else(|| panic!("no route for the netmask: {route:?}\n{}", t.lns.log()))
        .to_string();
    assert!(dev.starts_with("ppp"), "{route}");
    let shown = t.lns.ul2tp("show session");
    assert!(shown.contains("  ppp routes 203.0.113.8/29\n"), "{shown}");
    let json = t.lns.ul2tp("-j show session");
    assert!(json.contains("\"routes\":[\"203.0.113.8/29\"]"), "{json}");
    let (tid, sid) = &t.call;
    t.lac
        .ul2tp(&format!("disconnect tunnel_id {tid} session_id {sid}"));
    assert!(wait_until(Duration::from_secs(10), || Setup::call_gone(
        &t.lns
    )));
    assert!(
        wait_until(Duration::from_secs(10), || t
            .b
            .ip(&["-o", "-4", "route", "show", "203.0.113.8/29"])
            .trim()
            .is_empty()),
        "the route outlived the session: {}",
        t.b.ip(&["-o", "-4", "route"])
    );
}

/// CoA-Request with Acct-Interim-Interval: the session's interim timer changes live (from
/// `acct_interim_interval = 1` to an hour: the Interim-Updates stop); what a live session
/// cannot change (Framed-IPv6-Prefix, fixed when IPv6CP opened) and Service-Type
/// Authorize-Only are NAKed with Error-Cause Unsupported-Attribute / Unsupported-Service.
#[test]
fn coa_changes_the_interim_interval() {
    let t = Setup::new("pap", ALICE, SECRET);
    let o = t.ppp_start("alice", "wonderland");
    assert!(o.status.success(), "{}", text(&o));
    let id = t.started_session();
    let interims = || {
        t.radius
            .detail()
            .iter()
            .filter(|r| r.contains("Acct-Status-Type = Interim-Update"))
            .count()
    };
    assert!(
        wait_until(Duration::from_secs(10), || interims() >= 2),
        "no Interim-Updates every second: {}",
        t.lns.log()
    );
    let out = t.radclient(
        "coa",
        "Framed-IP-Address = 10.96.0.77\nFramed-IPv6-Prefix = 2001:db8:9::/64\n",
        SECRET,
    );
    assert!(out.contains("Received CoA-NAK"), "{out}");
    assert!(out.contains("Error-Cause = Unsupported-Attribute"), "{out}");
    let out = t.radclient(
        "coa",
        "User-Name = \"alice\"\nService-Type = Authorize-Only\n",
        SECRET,
    );
    assert!(out.contains("Received CoA-NAK"), "{out}");
    assert!(out.contains("Error-Cause = Unsupported-Service"), "{out}");
    // Every attribute of a Disconnect-Request counts too (RFC 5176 §3): one we cannot match
    // on is NAKed and the session stays; Proxy-State comes back as it went.
    let out = t.radclient(
        "disconnect",
        "User-Name = \"alice\"\nCalling-Station-Id = \"5551234\"\nProxy-State = 0x6c6e7331\n",
        SECRET,
    );
    let reply = out
        .split_once("Received Disconnect-NAK")
        .unwrap_or_else(|| panic!("{out}"))
        .1;
    assert!(
        reply.contains("Error-Cause = Unsupported-Attribute"),
        "{out}"
    );
    assert!(reply.contains("Proxy-State = 0x6c6e7331"), "{out}");
    let out = t.radclient(
        "coa",
        &format!("Acct-Session-Id = \"{id}\"\nAcct-Interim-Interval = 3600\n"),
        SECRET,
    );
    assert!(out.contains("Received CoA-ACK"), "{out}\n{}", t.lns.log());
    // One record may have been on its way while the CoA was answered.
    std::thread::sleep(Duration::from_secs(1));
    let after = interims();
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(
        interims(),
        after,
        "Interim-Updates went on after the CoA: {}",
        t.lns.log()
    );
    assert!(has_addr(&t.a, "10.96.0.77"), "the session stays up");
}

/// Records of `status` (Start, Interim-Update, Stop) in a server's detail file.
fn records(r: &FreeRadius, status: &str) -> usize {
    let line = format!("Acct-Status-Type = {status}");
    r.detail().iter().filter(|x| x.contains(&line)).count()
}

/// `server_selection = "round-robin"` with two FreeRADIUS servers: the one-second
/// Interim-Updates go to both in turn (their detail files, and the per-server counters of
/// /metrics). When one stops, requests fail over to the other, and the dead one is skipped
/// for `dead_time` (its request counter stands still) instead of costing every request a
/// timeout.
#[test]
fn round_robin_spreads_requests_and_skips_a_dead_server() {
    let t = Setup::build(
        "pap",
        ALICE,
        SECRET,
        "[\"127.0.0.1\", \"127.0.0.3\"]",
        "",
        "server_selection = \"round-robin\"\ndead_time = 60\n",
    );
    let mut second = FreeRadius::start_at(&t.b, &t.dir.join("raddb2"), ALICE, "127.0.0.3", SECRET);
    let o = t.ppp_start("alice", "wonderland");
    assert!(o.status.success(), "{}\n{}", text(&o), t.lns.log());
    assert!(
        wait_until(Duration::from_secs(15), || records(
            &t.radius,
            "Interim-Update"
        ) >= 2
            && records(&second, "Interim-Update") >= 2),
        "the Interim-Updates did not reach both servers: {} and {}\n{}",
        records(&t.radius, "Interim-Update"),
        records(&second, "Interim-Update"),
        t.lns.log()
    );
    let sent = |a: &str| t.metric(&format!("server_requests_total{{server=\"{a}\"}}"));
    assert!(sent("127.0.0.1") >= 2 && sent("127.0.0.3") >= 2);
    assert_eq!(t.metric("server_timeouts_total{server=\"127.0.0.3\"}"), 0);

    second.kill();
    assert!(
        wait_until(Duration::from_secs(15), || t
            .metric("server_timeouts_total{server=\"127.0.0.3\"}")
            >= 1),
        "{}",
        t.lns.log()
    );
    assert!(t
        .lns
        .log()
        .contains("RADIUS server 127.0.0.3:1813 did not answer: asked last for 60 s"));
    // Held down: every record goes to 127.0.0.1 at once, none to 127.0.0.3.
    let (to_dead, interims) = (sent("127.0.0.3"), records(&t.radius, "Interim-Update"));
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(sent("127.0.0.3"), to_dead, "{}", t.lns.log());
    assert!(
        records(&t.radius, "Interim-Update") >= interims + 3,
        "{} -> {}: {}",
        interims,
        records(&t.radius, "Interim-Update"),
        t.lns.log()
    );
}

/// SIGHUP with a changed `[radius]`: another server, another secret (in the same
/// secret_file), another dae_listen. The Stop queued while the old server was down survives
/// the reload and reaches the new server; the next login goes to the new server with the new
/// secret; the DAE listener moved.
#[test]
fn reload_applies_the_radius_table() {
    const SECRET2: &str = "radius-test-secret-2";
    let mut t = Setup::new("pap", ALICE, SECRET);
    let new = FreeRadius::start_at(&t.b, &t.dir.join("raddb2"), ALICE, "127.0.0.3", SECRET2);
    let o = t.ppp_start("alice", "wonderland");
    assert!(o.status.success(), "{}", text(&o));
    let id = t.started_session();
    t.radius.kill();
    t.hang_up();
    assert!(wait_until(Duration::from_secs(5), || t
        .metric("acct_pending")
        >= 1));

    std::fs::write(t.dir.join("radius.secret"), format!("{SECRET2}\n")).unwrap();
    std::fs::write(
        t.dir.join("lns.toml"),
        Setup::lns_config(
            &t.dir,
            "pap",
            "\"127.0.0.3\"",
            "dae_listen = \"127.0.0.1:3800\"\n[[radius.dae_client]]\naddress = \"127.0.0.1\"\n",
        ),
    )
    .unwrap();
    t.lns.signal("HUP");
    assert!(
        wait_until(Duration::from_secs(10), || t
            .lns
            .log()
            .contains("reload: [radius] applied")),
        "{}",
        t.lns.log()
    );
    // The queued Stop, signed with the new secret, at the new server.
    assert!(
        wait_until(Duration::from_secs(40), || records(&new, "Stop") == 1),
        "{}",
        t.lns.log()
    );
    let stop = new
        .detail()
        .into_iter()
        .find(|r| r.contains("Acct-Status-Type = Stop"))
        .unwrap();
    assert_eq!(FreeRadius::value(&stop, "Acct-Session-Id"), Some(id));

    // The next login: the new server.
    let sid = Setup::connect_session(&t.lac, &t.call.0);
    t.call.1 = sid;
    let o = t.ppp_start("alice", "wonderland");
    assert!(o.status.success(), "{}\n{}", text(&o), t.lns.log());
    assert!(
        wait_until(Duration::from_secs(10), || records(&new, "Start") == 1),
        "{}",
        t.lns.log()
    );
    assert!(new.output().contains("Received Access-Request"));
    // The DAE listener moved to 3800 (its client 127.0.0.1 with the new secret).
    let out = t.radclient("disconnect", "User-Name = \"alice\"\n", SECRET2);
    assert!(!out.contains("Received Disconnect-"), "{out}");
    let out = t.radclient_at(
        "127.0.0.1:3800",
        "disconnect",
        "User-Name = \"alice\"\n",
        SECRET2,
    );
    assert!(
        out.contains("Received Disconnect-ACK"),
        "{out}\n{}",
        t.lns.log()
    );
    assert!(wait_until(Duration::from_secs(10), || Setup::call_gone(
        &t.lac
    )));
}

/// The LAC reuses a tunnel for calls RADIUS places with the same tunnel attributes (RFC 2868
/// §3.7): uma and ulf get the same Tunnel-Server-Endpoint, Tunnel-Assignment-Id and
/// Tunnel-Password, so ulf's call is a second session in uma's tunnel; vic's other
/// Assignment-Id gets a tunnel of its own. Hanging up uma leaves ulf's call and the shared
/// tunnel up; hanging up ulf, the last call of that tunnel, closes it.
#[test]
fn lac_shares_a_tunnel_per_radius_assignment() {
    let a = Netns::new("rsa");
    let b = Netns::new("rsb");
    ul2tp_it::veth(&a, "eth0", &b, "eth0");
    a.ip(&["addr", "add", "192.0.2.1/24", "dev", "eth0"]);
    b.ip(&["addr", "add", "192.0.2.2/24", "dev", "eth0"]);
    let dir = std::env::temp_dir().join(ul2tp_it::unique("radius-share"));
    let mut users = String::new();
    for (user, group) in [("uma", "grp1"), ("ulf", "grp1"), ("vic", "grp2")] {
        users.push_str(&format!(
            "{user} Cleartext-Password := \"pw\"\n\
             \tTunnel-Type:1 = L2TP,\n\
             \tTunnel-Medium-Type:1 = IPv4,\n\
             \tTunnel-Server-Endpoint:1 = \"192.0.2.2\",\n\
             \tTunnel-Password:1 = \"tunnel-secret-7\",\n\
             \tTunnel-Assignment-Id:1 = \"{group}\"\n"
        ));
    }
    let _radius = FreeRadius::start(&a, &dir.join("raddb"), &users);
    let (ca, cb) = (dir.join("lac.toml"), dir.join("lns.toml"));
    let mut lac_cfg = String::from("[control]\nlisten = \"192.0.2.1:1701\"\n");
    for user in ["uma", "ulf", "vic"] {
        lac_cfg.push_str(&format!(
            "[[lac]]\nname = \"{user}\"\nlns = \"192.0.2.250\"\nradius = true\nuser = \"{user}\"\n\
             password = \"pw\"\nmax_retries = 1\n"
        ));
    }
    lac_cfg.push_str(&format!(
        "[radius]\nserver = \"127.0.0.1\"\nsecret = \"{SECRET}\"\ntimeout = 1\nretries = 1\n"
    ));
    std::fs::write(&ca, lac_cfg).unwrap();
    std::fs::write(
        &cb,
        "[control]\nlisten = \"192.0.2.2:1701\"\nsecret = \"tunnel-secret-7\"\n\
         ppp_local = \"10.96.0.1\"\nppp_pool = \"10.96.0.10-10.96.0.20\"\nppp_auth = \"pap\"\n\
         ppp_users = { uma = \"pw\", ulf = \"pw\", vic = \"pw\" }\n",
    )
    .unwrap();
    let lac = Daemon::start(&a, &["--config", ca.to_str().unwrap()]);
    let lns = Daemon::start(&b, &["--config", cb.to_str().unwrap()]);
    let count = |d: &Daemon, what: &str| {
        d.ul2tp(&format!("show {what}"))
            .lines()
            .filter(|l| {
                l.starts_with(if what == "tunnel" {
                    "Tunnel "
                } else {
                    "Session "
                })
            })
            .count()
    };
    for user in ["uma", "ulf", "vic"] {
        let o = lac.cli(&["dial", user, "wait"]);
        assert!(
            o.status.success(),
            "{user}: {}\n{}\n{}",
            text(&o),
            lac.log(),
            lns.log()
        );
    }
    for addr in ["10.96.0.10", "10.96.0.11", "10.96.0.12"] {
        assert!(has_addr(&a, addr), "{addr}: {}", a.ip(&["-o", "addr"]));
    }
    assert_eq!(count(&lac, "tunnel"), 2, "{}", lac.ul2tp("show tunnel"));
    assert_eq!(count(&lns, "tunnel"), 2, "{}", lns.ul2tp("show tunnel"));
    assert_eq!(count(&lns, "session"), 3, "{}", lns.ul2tp("show session"));
    let log = lac.log();
    assert!(log.contains("lac ulf: joining tunnel"), "{log}");
    assert!(!log.contains("lac vic: joining tunnel"), "{log}");

    let o = lac.cli(&["hangup", "uma"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        wait_until(Duration::from_secs(10), || count(&lns, "session") == 2),
        "{}",
        lns.ul2tp("show session")
    );
    assert!(!has_addr(&a, "10.96.0.10"));
    assert!(has_addr(&a, "10.96.0.11"), "ulf's call went with uma's");
    assert_eq!(count(&lac, "tunnel"), 2, "{}", lac.ul2tp("show tunnel"));
    assert!(a.ping_retry("10.96.0.1", &[], 5), "ulf's link");

    let o = lac.cli(&["hangup", "ulf"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        wait_until(Duration::from_secs(10), || count(&lac, "tunnel") == 1
            && count(&lns, "tunnel") == 1),
        "the shared tunnel outlived its last call: {}",
        lac.ul2tp("show tunnel")
    );
    assert!(has_addr(&a, "10.96.0.12"), "vic's call is untouched");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The accounting queue is bounded: with the server down and an Interim-Update every second,
/// `acct_queue = 2` records wait (plus the one being retried), the others are dropped,
/// counted and logged, the session stays up; once the server is back the queue drains.
#[test]
fn accounting_queue_is_bounded_and_drops_are_counted() {
    let mut t = Setup::build(
        "pap",
        ALICE,
        SECRET,
        "\"127.0.0.1\"",
        "",
        "acct_queue = 2\n",
    );
    let o = t.ppp_start("alice", "wonderland");
    assert!(o.status.success(), "{}", text(&o));
    t.started_session();
    t.radius.kill();
    assert!(
        wait_until(Duration::from_secs(20), || t.metric("acct_dropped_total")
            >= 2),
        "{}",
        t.lns.log()
    );
    assert!(
        t.metric("acct_pending") <= 3,
        "{}",
        t.metric("acct_pending")
    );
    assert!(t
        .lns
        .log()
        .contains("RADIUS accounting queue full: record for "));
    assert!(has_addr(&t.a, "10.96.0.77"), "the session stays up");
    let answered = t.metric("acct_responses_total");
    t.radius.restart(&t.b);
    // The queue drains (new Interim-Updates keep coming: pending stays small).
    assert!(
        wait_until(Duration::from_secs(40), || t.metric("acct_responses_total")
            >= answered + 3
            && t.metric("acct_pending") <= 1),
        "{}",
        t.lns.log()
    );
}
