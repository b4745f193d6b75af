//! Configured calls: a LAC ul2tpd with `[[lac]]` profiles dialing an LNS ul2tpd (namespaces
//! joined by a veth pair). The PPP session comes up from the configuration alone (autodial),
//! with the CHAP password read from a file only its owner may read; `ul2tp hangup` tears the
//! call down and `ul2tp dial` brings it back; an LNS address that does not answer is skipped
//! for the next one; a killed LNS is redialled until it is back; `connect ... wait` reports
//! why a tunnel failed; a password file others may read is refused.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use ul2tp_it::{output_text, unique, wait_until, Daemon, Netns};

/// The LNS's `[control]` section: CHAP from alice, addresses from a pool.
const LNS: &str = "[control]\nlisten = \"192.0.2.2:1701\"\nhost_name = \"lns\"\nppp_local = \"10.96.0.1\"\nppp_pool = \"10.96.0.10-10.96.0.20\"\nppp_auth = \"chap\"\nppp_users = { alice = \"wonderland\" }\n";

/// Namespaces `la` (LAC, 192.0.2.1) and `lb` (LNS, 192.0.2.2), a directory for the
/// configuration files (removed on drop) and the LNS daemon.
struct Setup {
    a: Netns,
    b: Netns,
    dir: PathBuf,
    lns: Option<Daemon>,
    lns_config: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let (a, b) = ul2tp_it::linked_hosts("la", "lb");
        let dir = std::env::temp_dir().join(unique("lac"));
        std::fs::create_dir_all(&dir).unwrap();
        let lns_config = dir.join("lns.toml");
        std::fs::write(&lns_config, LNS).unwrap();
        let lns = Daemon::start(&b, &["--config", lns_config.to_str().unwrap()]);
        Setup {
            a,
            b,
            dir,
            lns: Some(lns),
            lns_config,
        }
    }

    /// A password file with `mode`.
    fn password_file(&self, mode: u32) -> PathBuf {
        let f = self.dir.join(format!("alice-{mode:o}.pw"));
        std::fs::write(&f, "wonderland\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
        f
    }

    /// The LAC's configuration file: `[control]` and one `[[lac]]` profile "isp" whose
    /// keys are `profile` (plus the name, user and password file).
    fn lac_config(&self, control_extra: &str, profile: &str) -> PathBuf {
        let pw = self.password_file(0o600);
        let f = self.dir.join("lac.toml");
        std::fs::write(
            &f,
            format!(
                "[control]\nlisten = \"192.0.2.1:1701\"\nhost_name = \"lac\"\n{control_extra}\n[[lac]]\nname = \"isp\"\nuser = \"alice\"\npassword_file = \"{}\"\n{profile}",
                pw.display()
            ),
        )
        .unwrap();
        f
    }

    fn lac(&self, control_extra: &str, profile: &str) -> Daemon {
        let f = self.lac_config(control_extra, profile);
        Daemon::start(&self.a, &["--config", f.to_str().unwrap()])
    }

    fn lns(&self) -> &Daemon {
        self.lns.as_ref().unwrap()
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Wait for the LAC's PPP device (the first pool address); returns its name.
fn wait_call_up(t: &Setup, lac: &Daemon, secs: u64) -> String {
    let mut dev = None;
    let up = wait_until(Duration::from_secs(secs), || {
        dev = t.a.device_with("10.96.0.10");
        dev.is_some()
    });
    assert!(up, "the call did not come up:\n{}", lac.log());
    dev.unwrap()
}

#[test]
fn autodial_brings_the_call_up_and_hangup_and_dial_control_it() {
    let t = Setup::new();
    let lac = t.lac("", "lns = \"192.0.2.2\"\nautodial = true\n");
    // From the configuration alone: tunnel, PPP session, CHAP with the password from the
    // file, IPCP; the LNS's end of the link is its pool's local address.
    let dev = wait_call_up(&t, &lac, 15);
    assert!(dev.starts_with("ppp"), "{dev}");
    assert!(t.a.ping_retry("10.96.0.1", &[], 5), "ping over the call");
    assert!(
        t.lns().log().contains("authenticated as \"alice\""),
        "{}",
        t.lns().log()
    );
    // The password is in neither daemon's log.
    assert!(!lac.log().contains("wonderland") && !t.lns().log().contains("wonderland"));

    // `show lac`: the call, its LNS and ids (those of `show tunnel` / `show session`).
    let show = lac.ul2tp("show lac");
    let tid = lac.tunnel_dump()[0].conn_id.unwrap();
    let sid = lac.session_dump()[0].session_id.unwrap();
    assert_eq!(
        show,
        format!("Call isp: up\n  LNS 192.0.2.2 port 1701, tunnel {tid}, session {sid}\n")
    );
    let j = lac.cli_ok(&["-j", "show", "lac", "isp"]);
    assert!(
        j.contains("\"state\":\"up\"") && j.contains(&format!("\"tunnel_id\":{tid}")),
        "{j}"
    );

    // Hang up: StopCCN, the sessions and devices go on both sides, and no redial follows.
    let out = lac.cli_ok(&["hangup", "isp"]);
    assert_eq!(out, "Call isp hung up\n");
    assert!(
        wait_until(Duration::from_secs(5), || t
            .a
            .device_with("10.96.0.10")
            .is_none()),
        "LAC device survived the hangup"
    );
    assert!(
        wait_until(Duration::from_secs(5), || !t
            .lns()
            .ul2tp("show tunnel")
            .contains("Tunnel ")),
        "LNS kept the tunnel: {}",
        t.lns().ul2tp("show tunnel")
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !lac.ul2tp("show tunnel").contains("Tunnel "),
        "redialled after a hangup"
    );
    assert_eq!(lac.ul2tp("show lac"), "Call isp: idle\n");

    // Dial again and wait: the command returns once PPP is up, naming the call's ids.
    let o = lac.cli(&["dial", "isp", "wait"]);
    assert!(o.status.success(), "dial: {}", output_text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("Call isp up: session "), "{out}");
    assert!(
        t.a.device_with("10.96.0.10").is_some(),
        "up when dial returned"
    );
    assert!(t.a.ping_retry("10.96.0.1", &[], 5), "ping after redial");

    // An unknown profile is refused with its name.
    let o = lac.cli(&["dial", "nosuch"]);
    assert_eq!(o.status.code(), Some(2), "{}", output_text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no [[lac]] profile named \"nosuch\""),
        "{}",
        output_text(&o)
    );
}

#[test]
fn an_lns_address_that_does_not_answer_fails_over_to_the_next() {
    let t = Setup::new();
    // 192.0.2.9 is on the link but nobody has it: SCCRQs go unanswered.
    let lac = t.lac(
        "",
        "lns = [\"192.0.2.9\", \"192.0.2.2\"]\nmax_retries = 1\n",
    );
    let o = lac.cli(&["dial", "isp", "wait"]);
    assert!(o.status.success(), "dial: {}", output_text(&o));
    assert!(t.a.device_with("10.96.0.10").is_some());
    let log = lac.log();
    assert!(
        log.contains("isp: 192.0.2.9:1701: control connection: no answer from 192.0.2.9:1701"),
        "{log}"
    );
    assert!(log.contains("call up via 192.0.2.2:1701"), "{log}");
    assert!(t.a.ping_retry("10.96.0.1", &[], 5));
}

#[test]
fn a_killed_lns_is_redialled_until_it_is_back() {
    let mut t = Setup::new();
    let lac = t.lac(
        "",
        "lns = \"192.0.2.2\"\nautodial = true\nredial = true\nredial_timeout = 0.5\nmax_retries = 3\nppp_echo_interval = 1\nppp_echo_failure = 2\n",
    );
    wait_call_up(&t, &lac, 15);
    let mut lns = t.lns.take().unwrap();
    lns.signal("KILL");
    assert!(wait_until(Duration::from_secs(5), || !lns.alive()));
    // LCP echoes go unanswered: the link is declared dead and the call cleared.
    assert!(
        wait_until(Duration::from_secs(10), || t
            .a
            .device_with("10.96.0.10")
            .is_none()),
        "the call outlived its LNS:\n{}",
        lac.log()
    );
    // The dead link is closed with LCP Terminate-Requests first (their retransmissions go
    // unanswered too), then the call is cleared and redialled.
    assert!(
        wait_until(Duration::from_secs(20), || lac
            .log()
            .contains("isp: redial 1")),
        "{}",
        lac.log()
    );
    lns.restart(&t.b, &["--config", t.lns_config.to_str().unwrap()]);
    t.lns = Some(lns);
    wait_call_up(&t, &lac, 30);
    assert!(t.a.ping_retry("10.96.0.1", &[], 5), "ping after recovery");
}

#[test]
fn a_password_file_others_can_read_is_refused() {
    let t = Setup::new();
    let f = t.lac_config("", "lns = \"192.0.2.2\"\n");
    let loose = t.password_file(0o644);
    let text = std::fs::read_to_string(&f).unwrap().replace(
        &t.dir.join("alice-600.pw").display().to_string(),
        &loose.display().to_string(),
    );
    std::fs::write(&f, &text).unwrap();
    let (status, err) = Daemon::start_failing(&t.a, &["--config", f.to_str().unwrap()]);
    assert!(!status.success());
    let line = text
        .lines()
        .position(|l| l.starts_with("password_file"))
        .unwrap()
        + 1;
    let expect = format!(
        "{}:{line}: key `password_file`: [[lac]] \"isp\": {} has mode 0644",
        f.display(),
        loose.display()
    );
    assert!(err.contains(&expect), "{err}\nexpected: {expect}");
    assert!(!err.contains("wonderland"), "{err}");
    // --check-config says the same.
    let o = ul2tp_it::run(t.a.cmd(ul2tp_it::bin("ul2tpd")).args([
        "--check-config",
        "--config",
        f.to_str().unwrap(),
    ]));
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains(&expect));
}

#[test]
fn connect_wait_reports_the_outcome() {
    let t = Setup::new();
    let lac = t.lac("max_retries = 1\n", "lns = \"192.0.2.2\"\n");
    // Up: the tunnel exists when the command returns.
    let o = lac.cli(&["connect", "remote", "192.0.2.2", "version", "2", "wait"]);
    assert!(o.status.success(), "{}", output_text(&o));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let tid = out
        .strip_prefix("Tunnel ")
        .and_then(|r| r.strip_suffix(" up\n"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(lac.ul2tp("show tunnel").contains(&format!("Tunnel {tid},")));
    // A session, waited for too.
    let o = lac.cli(&[
        "connect",
        "session",
        "tunnel_id",
        tid,
        "pw_type",
        "ppp",
        "wait",
    ]);
    assert!(o.status.success(), "{}", output_text(&o));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(out.ends_with(&format!(" in tunnel {tid} up\n")), "{out}");
    let sid = out.split_whitespace().nth(1).unwrap();
    assert!(lac
        .ul2tp("show session")
        .contains(&format!("Session {sid} in tunnel {tid}")));
    // Nobody answers: exit status 2 and the cause.
    let o = lac.cli(&["connect", "remote", "192.0.2.9", "version", "2", "wait"]);
    assert_eq!(o.status.code(), Some(2), "{}", output_text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("ul2tp: connect: control connection: no answer from 192.0.2.9:1701"),
        "{err}"
    );
    assert!(err.contains("Connection timed out"), "{err}");
}

/// The peer refuses the tunnel: its StopCCN Result Code is the cause `dial ... wait`
/// prints.
#[test]
fn dial_wait_prints_the_peers_result_code() {
    let t = Setup::new();
    // An LNS with a secret challenges the LAC, which does not challenge back and answers
    // with the wrong secret: the LNS refuses the tunnel with StopCCN result code 4 (not
    // authorized, RFC 2661 §4.4.2), in answer to the LAC's SCCCN: the engine counts the
    // tunnel as established once the SCCCN is sent (RFC 2661 §7.2), so the waits end only
    // when the peer has acknowledged it (here with the StopCCN).
    let lns_config = t.dir.join("lns-secret.toml");
    std::fs::write(
        &lns_config,
        "[control]\nlisten = \"192.0.2.2:1702\"\nsecret = \"s3\"\n",
    )
    .unwrap();
    let _lns2 = Daemon::start(&t.b, &["--config", lns_config.to_str().unwrap()]);
    let lac = t.lac(
        "challenge = false\nsecret = \"wrong\"\n",
        "lns = \"192.0.2.2:1702\"\nsecret = \"wrong\"\n",
    );
    // `connect ... wait` (with [control]'s secret) reports the refusal itself, rather than
    // "Tunnel N up" for a tunnel the LNS is closing.
    let o = lac.cli(&[
        "connect",
        "remote",
        "192.0.2.2",
        "udp_dport",
        "1702",
        "version",
        "2",
        "wait",
    ]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}\n{}",
        output_text(&o),
        lac.log()
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(
            "ul2tp: connect: control connection closed by 192.0.2.2:1702: StopCCN result code 4"
        ),
        "{err}"
    );
    let o = lac.cli(&["dial", "isp", "wait"]);
    assert_eq!(o.status.code(), Some(2), "{}", output_text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(
            "ul2tp: dial: control connection closed by 192.0.2.2:1702: StopCCN result code 4"
        ),
        "{err}\n{}",
        lac.log()
    );
    assert!(err.contains("Connection refused"), "{err}");
    assert!(
        !err.contains("wrong") && !lac.log().contains("wrong"),
        "secret shown"
    );
}

/// xl2tpd (L2TPv2) as the LNS of a profile: the tunnel and the call are established with it
/// (xl2tpd logs both), then xl2tpd's pppd cannot run here (no kernel PPP) and xl2tpd clears
/// the call with a CDN, whose result code `dial ... wait` prints.
#[test]
fn xl2tpd_as_lns() {
    assert!(
        ul2tp_it::have("xl2tpd"),
        "xl2tpd is required (installed by .ci/run)"
    );
    let t = Setup::new();
    // The ul2tpd LNS of Setup listens on 192.0.2.2:1701; xl2tpd takes 192.0.2.3.
    t.b.ip(&["addr", "add", "192.0.2.3/24", "dev", "eth0"]);
    let xdir = t.dir.join("xl2tpd");
    std::fs::create_dir_all(&xdir).unwrap();
    std::fs::write(xdir.join("options"), "").unwrap();
    std::fs::write(xdir.join("l2tp-secrets"), "").unwrap();
    let conf = format!(
        "[global]\nauth file = {}\nlisten-addr = 192.0.2.3\nport = 1701\naccess control = no\n\
[lns default]\nip range = 10.77.0.2-10.77.0.20\nlocal ip = 10.77.0.1\nrequire authentication = no\n\
require chap = no\nrefuse pap = yes\nlength bit = yes\npppoptfile = {}\n",
        xdir.join("l2tp-secrets").display(),
        xdir.join("options").display()
    );
    std::fs::write(xdir.join("xl2tpd.conf"), conf).unwrap();
    let log = std::fs::File::create(xdir.join("log")).unwrap();
    let mut xl =
        t.b.cmd("xl2tpd")
            .arg("-D")
            .arg("-c")
            .arg(xdir.join("xl2tpd.conf"))
            .arg("-p")
            .arg(xdir.join("pid"))
            .arg("-C")
            .arg(xdir.join("control"))
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn xl2tpd");
    let xlog = || std::fs::read_to_string(xdir.join("log")).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(10), || xlog()
            .contains("Listening on IP address 192.0.2.3")),
        "{}",
        xlog()
    );
    let lac = t.lac("", "lns = \"192.0.2.3\"\n");
    let o = lac.cli(&["dial", "isp", "wait"]);
    let established = xlog().contains("Connection established to 192.0.2.1, 1701.")
        && xlog().contains("Call established with 192.0.2.1");
    let _ = std::process::Command::new("kill")
        .arg(xl.id().to_string())
        .status();
    let _ = xl.wait();
    assert!(established, "xl2tpd log:\n{}", xlog());
    assert_eq!(o.status.code(), Some(2), "{}", output_text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("ul2tp: dial: session closed by 192.0.2.3:1701: CDN result code"),
        "{err}\n{}\n{}",
        lac.log(),
        xlog()
    );
}

/// SIGHUP applies `[[lac]]` changes: a new profile with `autodial` is dialled at once, a
/// changed one keeps its established call, a removed one is hung up.
#[test]
fn reload_adds_changes_and_removes_profiles() {
    let t = Setup::new();
    let f = t.lac_config("", "lns = \"192.0.2.2\"\nautodial = true\n");
    let lac = Daemon::start(&t.a, &["--config", f.to_str().unwrap()]);
    wait_call_up(&t, &lac, 15);
    let tunnels = lac.ul2tp("show tunnel");
    let base = std::fs::read_to_string(&f).unwrap();
    let second = format!(
        "\n[[lac]]\nname = \"isp2\"\nlns = \"192.0.2.2\"\nuser = \"alice\"\npassword_file = \"{}\"\nautodial = true\n",
        t.dir.join("alice-600.pw").display()
    );
    std::fs::write(&f, format!("{base}ppp_echo_interval = 5\n{second}")).unwrap();
    lac.signal("HUP");
    // The new call takes the pool's next address; the first call is untouched.
    assert!(
        wait_until(Duration::from_secs(15), || t
            .a
            .device_with("10.96.0.11")
            .is_some()),
        "isp2 not dialled after the reload:\n{}",
        lac.log()
    );
    assert!(lac
        .log()
        .contains("reload: [[lac]] \"isp\" changed; in force from its next attempt"));
    let now = lac.ul2tp("show tunnel");
    let first = tunnels.lines().next().unwrap();
    assert!(now.contains(first), "the established call changed: {now}");
    assert!(t.a.device_with("10.96.0.10").is_some());
    // Removed again: hung up.
    std::fs::write(&f, format!("{base}ppp_echo_interval = 5\n")).unwrap();
    lac.signal("HUP");
    assert!(
        wait_until(Duration::from_secs(10), || t
            .a
            .device_with("10.96.0.11")
            .is_none()),
        "isp2's call survived its removal:\n{}",
        lac.log()
    );
    assert!(lac
        .log()
        .contains("reload: [[lac]] \"isp2\" removed: hanging up its call"));
    assert!(t.a.device_with("10.96.0.10").is_some(), "isp hung up too");
    let o = lac.cli(&["dial", "isp2"]);
    assert_eq!(o.status.code(), Some(2), "{}", output_text(&o));
}

/// A profile placing an L2TPv3 Ethernet pseudowire (`pw_type = "eth"`) instead of a PPP call:
/// `dial ... wait` returns with the devices in place on both sides, and pings cross them.
#[test]
fn a_profile_can_place_an_ethernet_pseudowire() {
    let t = Setup::new();
    let lac = t.lac("", "lns = \"192.0.2.2\"\nversion = 3\npw_type = \"eth\"\n");
    let o = lac.cli(&["dial", "isp", "wait"]);
    assert!(o.status.success(), "dial: {}", output_text(&o));
    let sa = lac.session_dump();
    assert_eq!(sa.len(), 1, "{sa:?}");
    assert_eq!(sa[0].pw_type, Some(ul2tp_api::pw_type::ETH));
    let a_if = sa[0].ifname.clone().expect("device on the LAC");
    assert!(t.a.has_link(&a_if), "{a_if} missing when dial returned");
    assert!(
        wait_until(Duration::from_secs(5), || !t
            .lns()
            .session_dump()
            .is_empty()),
        "no session on the LNS"
    );
    let b_if = t.lns().session_dump()[0]
        .ifname
        .clone()
        .expect("device on the LNS");
    let (mac_a, mac_b) = ("02:00:00:00:0a:01", "02:00:00:00:0b:01");
    t.a.quiet_link(&a_if, mac_a, "198.51.100.1/24", "198.51.100.2", mac_b);
    t.b.quiet_link(&b_if, mac_b, "198.51.100.2/24", "198.51.100.1", mac_a);
    assert_eq!(t.a.ping_count("198.51.100.2", 3, "0.2"), 3);
    lac.cli_ok(&["hangup", "isp"]);
    assert!(t.a.wait_link(&a_if, false, Duration::from_secs(5)));
}

/// `encap = "ip"`: a version 3 profile's Ethernet pseudowire over L2TPv3/IP (protocol 115),
/// to a second LNS ul2tpd with L2TPv3/IP listeners, over IPv4 and over IPv6; pings cross
/// both, and the tunnels are L2TPv3/IP tunnels on both sides.
#[test]
fn a_profile_can_dial_over_l2tpv3_ip_and_ipv6() {
    let t = Setup::new();
    t.a.ip(&["addr", "add", "2001:db8::1/64", "dev", "eth0", "nodad"]);
    t.b.ip(&["addr", "add", "2001:db8::2/64", "dev", "eth0", "nodad"]);
    let lns_config = t.dir.join("lns-ip.toml");
    std::fs::write(
        &lns_config,
        "[control]\nlisten = \"192.0.2.2:1703\"\nlisten_ip = [\"0.0.0.0\", \"::\"]\nhost_name = \"lns-ip\"\n",
    )
    .unwrap();
    let lns = Daemon::start(&t.b, &["--config", lns_config.to_str().unwrap()]);
    let lac = t.lac(
        "listen_ip = [\"0.0.0.0\", \"::\"]\n",
        "lns = \"192.0.2.2\"\nversion = 3\nencap = \"ip\"\npw_type = \"eth\"\n\n[[lac]]\nname = \"isp6\"\nlns = \"2001:db8::2\"\nversion = 3\nencap = \"ip\"\npw_type = \"eth\"\n",
    );
    for (name, subnet) in [("isp", "198.51.100"), ("isp6", "203.0.113")] {
        let o = lac.cli(&["dial", name, "wait"]);
        assert!(
            o.status.success(),
            "dial {name}: {}\n{}",
            output_text(&o),
            lac.log()
        );
        let ta = lac.tunnel_dump();
        assert_eq!(ta.len(), 1, "{ta:?}");
        let show = lac.ul2tp(&format!("show lac {name}"));
        let lns_addr = if name == "isp" {
            "192.0.2.2"
        } else {
            "2001:db8::2"
        };
        assert!(
            show.contains(&format!("  LNS {lns_addr} over IP, tunnel ")),
            "{show}"
        );
        let j = lac.cli_ok(&["-j", "show", "lac", name]);
        assert!(
            j.contains("\"encap\":\"ip\"") && !j.contains("udp_dport"),
            "{j}"
        );
        assert_eq!(ta[0].encap_type, Some(ul2tp_api::encap_type::IP), "{ta:?}");
        let sa = lac.session_dump();
        assert_eq!(sa.len(), 1, "{sa:?}");
        assert_eq!(sa[0].pw_type, Some(ul2tp_api::pw_type::ETH));
        let a_if = sa[0].ifname.clone().expect("device on the LAC");
        assert!(
            wait_until(Duration::from_secs(5), || lns.session_dump().len() == 1),
            "no session on the LNS:\n{}",
            lns.log()
        );
        let tb = lns.tunnel_dump();
        assert_eq!(tb[0].encap_type, Some(ul2tp_api::encap_type::IP), "{tb:?}");
        // The UDP LNS saw nothing.
        assert!(t.lns().tunnel_dump().is_empty());
        let b_if = lns.session_dump()[0]
            .ifname
            .clone()
            .expect("device on the LNS");
        let (mac_a, mac_b) = ("02:00:00:00:0a:01", "02:00:00:00:0b:01");
        let (ip_a, ip_b) = (format!("{subnet}.1"), format!("{subnet}.2"));
        t.a.quiet_link(&a_if, mac_a, &format!("{ip_a}/24"), &ip_b, mac_b);
        t.b.quiet_link(&b_if, mac_b, &format!("{ip_b}/24"), &ip_a, mac_a);
        assert_eq!(t.a.ping_count(&ip_b, 3, "0.2"), 3, "{name}");
        lac.cli_ok(&["hangup", name]);
        assert!(t.a.wait_link(&a_if, false, Duration::from_secs(5)));
        assert!(
            wait_until(Duration::from_secs(5), || lns.tunnel_dump().is_empty()),
            "{name}: the LNS kept the tunnel:\n{}",
            lns.log()
        );
    }
}

/// `encap = "ip"` with `pw_type = "ppp"`: an L2TPv3 PPP pseudowire over L2TPv3/IP from a
/// `[[lac]]` profile to a second LNS ul2tpd with a PPP service, over IPv4 and over IPv6:
/// CHAP and IPCP come up (`dial wait` returns once they have), both daemons have their pppN
/// with the negotiated addresses, and ping crosses the link.
#[test]
fn a_profile_can_place_a_ppp_pseudowire_over_l2tpv3_ip() {
    let t = Setup::new();
    t.a.ip(&["addr", "add", "2001:db8::1/64", "dev", "eth0", "nodad"]);
    t.b.ip(&["addr", "add", "2001:db8::2/64", "dev", "eth0", "nodad"]);
    let lns_config = t.dir.join("lns-ip.toml");
    std::fs::write(
        &lns_config,
        LNS.replace(
            "listen = \"192.0.2.2:1701\"",
            "listen = \"192.0.2.2:1703\"\nlisten_ip = [\"0.0.0.0\", \"::\"]",
        )
        .replace("10.96.0.", "10.97.0."),
    )
    .unwrap();
    let lns = Daemon::start(&t.b, &["--config", lns_config.to_str().unwrap()]);
    let lac = t.lac(
        "listen_ip = [\"0.0.0.0\", \"::\"]\n",
        &format!(
            "lns = \"192.0.2.2\"\nversion = 3\nencap = \"ip\"\npw_type = \"ppp\"\n\n[[lac]]\nname = \"isp6\"\nlns = \"2001:db8::2\"\nversion = 3\nencap = \"ip\"\npw_type = \"ppp\"\nuser = \"alice\"\npassword_file = \"{}\"\n",
            t.password_file(0o600).display()
        ),
    );
    for name in ["isp", "isp6"] {
        let o = lac.cli(&["dial", name, "wait"]);
        assert!(
            o.status.success(),
            "dial {name}: {}\nLAC:\n{}\nLNS:\n{}",
            output_text(&o),
            lac.log(),
            lns.log()
        );
        let ta = lac.tunnel_dump();
        assert_eq!(ta.len(), 1, "{ta:?}");
        assert_eq!(ta[0].encap_type, Some(ul2tp_api::encap_type::IP), "{ta:?}");
        let sa = lac.session_dump();
        assert_eq!(sa[0].pw_type, Some(ul2tp_api::pw_type::PPP), "{sa:?}");
        let tb = lns.tunnel_dump();
        assert_eq!(tb[0].encap_type, Some(ul2tp_api::encap_type::IP), "{tb:?}");
        assert!(t.lns().tunnel_dump().is_empty(), "the UDP LNS saw nothing");
        let dev_a = t.a.device_with("10.97.0.10").expect("pppN on the LAC");
        let dev_b = t.b.device_with("10.97.0.1").expect("pppN on the LNS");
        assert!(dev_a.starts_with("ppp") && dev_b.starts_with("ppp"));
        assert!(
            t.a.ping_retry("10.97.0.1", &[], 5),
            "{name}: LAC pings the LNS"
        );
        assert!(
            t.b.ping_retry("10.97.0.10", &[], 5),
            "{name}: LNS pings the LAC"
        );
        let shown = lac.ul2tp("show ppp");
        assert!(shown.contains("10.97.0.10"), "{shown}");
        lac.cli_ok(&["hangup", name]);
        assert!(
            wait_until(Duration::from_secs(5), || lns.tunnel_dump().is_empty()),
            "{name}: the LNS kept the tunnel:\n{}",
            lns.log()
        );
        assert!(
            wait_until(Duration::from_secs(5), || t
                .b
                .device_with("10.97.0.1")
                .is_none()),
            "{name}: the LNS kept its pppN"
        );
    }
}

/// `max_redials` bounds the redials of a call whose LNS never answers, with the backoff
/// doubling between them; then the call stays down until `dial`.
#[test]
fn redials_stop_after_max_redials() {
    let t = Setup::new();
    let lac = t.lac(
        "",
        "lns = \"192.0.2.9\"\nautodial = true\nredial = true\nredial_timeout = 0.2\nmax_redials = 2\nmax_retries = 0\n",
    );
    assert!(
        wait_until(Duration::from_secs(20), || lac
            .log()
            .contains("lac isp: giving up after 2 redials (max_redials)")),
        "{}",
        lac.log()
    );
    let log = lac.log();
    assert_eq!(
        log.matches("lac isp: dialing 192.0.2.9:1701").count(),
        3,
        "{log}"
    );
    assert!(log.contains("lac isp: redial 1 in 0.2 s"), "{log}");
    assert!(log.contains("lac isp: redial 2 in 0.4 s"), "{log}");
    assert_eq!(
        lac.ul2tp("show lac"),
        "Call isp: idle\n  last failure: control connection: no answer from 192.0.2.9:1701 (retransmissions exhausted)\n"
    );
    // Nothing more is tried.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        lac.log().matches("lac isp: dialing").count(),
        3,
        "{}",
        lac.log()
    );
}

/// A wrong password: `dial ... wait` fails with the PPP cause, without the password.
#[test]
fn dial_wait_reports_a_rejected_password() {
    let t = Setup::new();
    let f = t.lac_config("", "lns = \"192.0.2.2\"\n");
    std::fs::write(t.dir.join("alice-600.pw"), "looking-glass\n").unwrap();
    let lac = Daemon::start(&t.a, &["--config", f.to_str().unwrap()]);
    let o = lac.cli(&["dial", "isp", "wait"]);
    assert_eq!(o.status.code(), Some(2), "{}", output_text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("ul2tp: dial: PPP: PPP authentication rejected by the peer"),
        "{err}\n{}",
        lac.log()
    );
    assert!(err.contains("Permission denied"), "{err}");
    assert!(!err.contains("looking-glass") && !lac.log().contains("looking-glass"));
    // No redial: the call is idle with the cause, and gone on both sides.
    assert!(lac
        .ul2tp("show lac")
        .contains("PPP authentication rejected"));
    assert!(wait_until(Duration::from_secs(5), || t
        .lns()
        .session_dump()
        .is_empty()));
}
