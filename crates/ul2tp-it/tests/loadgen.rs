//! `ul2tp-loadgen` against a ul2tpd LNS in a namespace: N tunnels × M sessions set up, held
//! and cleared from one process without devices; the report counts what came up, and
//! sessions the LNS refuses (`[limits] max_sessions`) are failures with their cause; with
//! `--ppp` every session runs LCP, PAP and IPCP against the LNS's PPP endpoint.

use std::process::Command;

use ul2tp_it::peers::{L2tpns, Xl2tpd};
use ul2tp_it::{bin, run, unique, veth, Daemon, Netns};

struct Lns {
    _a: Netns,
    b: Netns,
    lac: String,
    d: Daemon,
}

fn lns(limits: &str) -> Lns {
    let a = Netns::new("lga");
    let b = Netns::new("lgb");
    veth(&a, "eth0", &b, "eth0");
    a.ip(&["addr", "add", "192.0.2.1/24", "dev", "eth0"]);
    b.ip(&["addr", "add", "192.0.2.2/24", "dev", "eth0"]);
    let dir = std::env::temp_dir().join(unique("loadgen"));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("lns.toml");
    std::fs::write(
        &cfg,
        format!("[control]\nlisten = \"192.0.2.2:1701\"\nhost_name = \"lns\"\n{limits}"),
    )
    .unwrap();
    let d = Daemon::start(&b, &["--config", cfg.to_str().unwrap()]);
    let lac = a.name.clone();
    Lns { _a: a, b, lac, d }
}

fn loadgen(l: &Lns, args: &[&str]) -> (Option<i32>, String) {
    loadgen_at(&l.lac, "192.0.2.2:1701", args)
}

/// `ul2tp-loadgen --peer PEER` with `args` in the namespace `ns`: exit status, output.
fn loadgen_at(ns: &str, peer: &str, args: &[&str]) -> (Option<i32>, String) {
    let o = run(Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(bin("ul2tp-loadgen"))
        .args(["--peer", peer, "--timeout", "30"])
        .args(args));
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    (o.status.code(), out)
}

#[test]
fn tunnels_times_sessions_up_held_and_cleared() {
    let l = lns("");
    let (code, out) = loadgen(
        &l,
        &[
            "--tunnels",
            "4",
            "--sessions",
            "5",
            "--rate",
            "200",
            "--hold",
            "0.3",
        ],
    );
    assert_eq!(code, Some(0), "{out}\n{}", l.d.log());
    assert!(out.contains("tunnels: 4 of 4 up, 0 failed"), "{out}");
    assert!(out.contains("sessions: 20 of 20 up, 0 failed"), "{out}");
    assert!(
        out.contains("setup rate: ") && out.contains("setup latency: p50 "),
        "{out}"
    );
    // Everything was cleared: no tunnel or session is left on the LNS.
    assert!(
        l.d.wait_for(std::time::Duration::from_secs(10), || l
            .d
            .tunnel_dump()
            .is_empty()),
        "{}",
        l.d.log()
    );
    assert!(l.d.session_dump().is_empty());
    // Their devices follow (the reaper deletes them in batches).
    let gone = || {
        l.b.ip(&["-o", "link", "show"])
            .lines()
            .all(|x| !x.contains("l2tpeth"))
    };
    assert!(l.d.wait_for(std::time::Duration::from_secs(10), gone));
}

#[test]
fn refused_sessions_are_failures_by_cause() {
    let l = lns("\n[limits]\nmax_sessions = 6\n");
    let (code, out) = loadgen(
        &l,
        &[
            "--tunnels",
            "2",
            "--sessions",
            "5",
            "--rate",
            "500",
            "--hold",
            "1",
        ],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("sessions: 10 of 10 up, 4 failed"), "{out}");
    assert!(
        out.contains("session failure: 4 x cleared by the peer while held: Peer { result_code: 4"),
        "{out}"
    );
}

/// A PAP LNS for `user0`..`user5`, all with the password "secret".
const PPP_LNS: &str = "ppp_local = \"10.97.0.1\"\nppp_pool = \"10.97.0.10-10.97.0.60\"\n\
ppp_auth = \"pap\"\nppp_users = { user0 = \"secret\", user1 = \"secret\", user2 = \"secret\", \
user3 = \"secret\", user4 = \"secret\", user5 = \"secret\" }\n";

fn password_file(pw: &str) -> std::path::PathBuf {
    let f = std::env::temp_dir().join(unique("loadgen-pw"));
    std::fs::write(&f, format!("{pw}\n")).unwrap();
    f
}

#[test]
fn ppp_sessions_reach_ipcp_up_and_wrong_passwords_fail_auth() {
    let l = lns(PPP_LNS);
    let good = password_file("secret");
    let ppp = |pw: &std::path::Path| {
        loadgen(
            &l,
            &[
                "--ppp",
                "--auth",
                "pap",
                "--user",
                "user%d",
                "--password-file",
                pw.to_str().unwrap(),
                "--tunnels",
                "2",
                "--sessions",
                "3",
                "--rate",
                "100",
                "--hold",
                "0.5",
            ],
        )
    };
    let (code, out) = ppp(&good);
    eprintln!("{out}");
    assert_eq!(code, Some(0), "{out}\n{}", l.d.log());
    assert!(out.contains("tunnels: 2 of 2 up, 0 failed"), "{out}");
    assert!(out.contains("sessions: 6 of 6 up, 0 failed"), "{out}");
    assert!(out.contains("setup latency: p50 "), "{out}");
    let bad = password_file("not-the-secret");
    let (code, out) = ppp(&bad);
    eprintln!("{out}");
    assert_eq!(code, Some(1), "{out}\n{}", l.d.log());
    assert!(out.contains("sessions: 0 of 6 up, 6 failed"), "{out}");
    assert!(
        out.contains("session failure: 6 x PPP authentication rejected"),
        "{out}"
    );
    let _ = std::fs::remove_file(good);
    let _ = std::fs::remove_file(bad);
}

#[test]
fn ppp_sessions_authenticate_with_chap() {
    let l = lns(&PPP_LNS.replace("\"pap\"", "\"chap\""));
    let pw = password_file("secret");
    let (code, out) = loadgen(
        &l,
        &[
            "--ppp",
            "--auth",
            "chap",
            "--user",
            "user%d",
            "--password-file",
            pw.to_str().unwrap(),
            "--tunnels",
            "1",
            "--sessions",
            "6",
        ],
    );
    assert_eq!(code, Some(0), "{out}\n{}", l.d.log());
    assert!(out.contains("sessions: 6 of 6 up, 0 failed"), "{out}");
    // A user the LNS does not know is refused by CHAP too.
    let (code, out) = loadgen(
        &l,
        &[
            "--ppp",
            "--auth",
            "chap",
            "--user",
            "nobody%d",
            "--password-file",
            pw.to_str().unwrap(),
            "--sessions",
            "2",
        ],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("session failure: 2 x PPP authentication rejected"),
        "{out}"
    );
    let _ = std::fs::remove_file(pw);
}

#[test]
fn bad_arguments_are_refused() {
    for args in [
        &["--tunnels", "1"][..],
        &["--peer", "nowhere"],
        &["--peer", "192.0.2.2:1701", "--rate", "0"],
        &["--peer", "192.0.2.2:1701", "--ppp", "--user", "u"],
        &[
            "--peer",
            "192.0.2.2:1701",
            "--ppp",
            "--user",
            "u",
            "--password",
            "x",
        ],
        &["--peer", "192.0.2.2:1701", "--ppp", "--auth", "eap"],
        &["--peer", "192.0.2.2:1701", "--ping", "3"],
        &["--peer", "192.0.2.2:1701", "--listen", "0.0.0.0:1701"],
        &["--mode", "lns", "--peer", "192.0.2.2:1701"],
        &["--mode", "lns", "--ppp-pool", "10.0.0.9-10.0.0.1"],
        &["--mode", "server"],
    ] {
        let o = run(Command::new(bin("ul2tp-loadgen")).args(args));
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("usage:"),
            "{args:?}"
        );
    }
}

#[test]
fn mschapv2_sessions_are_pinged_through() {
    let l = lns(&PPP_LNS.replace("\"pap\"", "\"mschapv2\""));
    let pw = password_file("secret");
    let ppp = |extra: &[&str]| {
        let mut args = vec![
            "--ppp",
            "--auth",
            "mschapv2",
            "--user",
            "user%d",
            "--password-file",
            pw.to_str().unwrap(),
            "--tunnels",
            "2",
            "--sessions",
            "3",
            "--ping",
            "3",
            "--ping-interval",
            "0.1",
        ];
        args.extend_from_slice(extra);
        loadgen(&l, &args)
    };
    // Every session pings the LNS's address (its pppN's, answered by the LNS's kernel).
    let (code, out) = ppp(&[]);
    eprintln!("{out}");
    assert_eq!(code, Some(0), "{out}\n{}", l.d.log());
    assert!(out.contains("sessions: 6 of 6 up, 0 failed"), "{out}");
    assert!(
        out.contains("ping: 18 sent, 18 received, 0 lost (0.0 %) in 6 sessions"),
        "{out}"
    );
    assert!(out.contains("ping rtt: p50 "), "{out}");
    // An address nobody answers for: every request lost, each session a failure.
    let (code, out) = ppp(&["--ping-target", "198.51.100.9", "--ping-interval", "0.05"]);
    eprintln!("{out}");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("sessions: 6 of 6 up, 6 failed"), "{out}");
    assert!(out.contains("ping: 18 sent, 0 received, 18 lost"), "{out}");
    assert!(
        out.contains("session failure: 6 x ping replies missing"),
        "{out}"
    );
    let _ = std::fs::remove_file(pw);
}

/// xl2tpd as the LNS: tunnels and calls come up at the L2TP level; its pppd cannot run here
/// (no kernel PPP), so it clears every call after the ICCN with a CDN, which the report
/// counts by its result code (1, lost carrier).
#[test]
fn xl2tpd_lns_tunnels_up_and_its_cdns_counted_by_result_code() {
    let l = lns("");
    l.b.ip(&["addr", "add", "192.0.2.3/24", "dev", "eth0"]);
    let xl = Xl2tpd::start(
        &l.b,
        "[global]\nlisten-addr = 192.0.2.3\nport = 1701\naccess control = no\n\
[lns default]\nip range = 10.77.0.2-10.77.0.20\nlocal ip = 10.77.0.1\nrequire authentication = no\n\
length bit = yes\npppoptfile = OPTIONS\n",
    );
    xl.wait_log("Listening on IP address 192.0.2.3");
    let (code, out) = loadgen_at(
        &l.lac,
        "192.0.2.3:1701",
        &[
            "--version",
            "2",
            "--tunnels",
            "2",
            "--sessions",
            "3",
            "--rate",
            "50",
            "--hold",
            "3",
        ],
    );
    eprintln!("{out}");
    assert_eq!(code, Some(1), "{out}\n{}", xl.log());
    assert!(out.contains("tunnels: 2 of 2 up, 0 failed"), "{out}");
    assert!(out.contains("sessions: 6 of 6 up, 6 failed"), "{out}");
    assert!(
        out.contains(
            "session failure: 6 x cleared by the peer while held: Peer { result_code: 1, "
        ),
        "{out}"
    );
    let log = xl.log();
    assert!(
        log.contains("Connection established to 192.0.2.1, "),
        "{log}"
    );
    assert_eq!(
        log.matches("Call established with 192.0.2.1").count(),
        6,
        "{log}"
    );
}

/// l2tpns as the LNS (PPP in userspace, PAP checked by FreeRADIUS): every session reaches
/// IPCP up with an address from l2tpns's pool. l2tpns does not answer echo requests to its
/// own address (10.10.10.254): the pings go through it to an address of its host, whose
/// kernel answers them back through l2tpns; and to its own address, unanswered.
#[test]
fn l2tpns_lns_ppp_sessions_up_and_pinged() {
    let (a, b) = ul2tp_it::linked_hosts("lgna", "lgnb");
    let users: String = (0..4)
        .map(|i| format!("user{i} Cleartext-Password := \"secret\"\n"))
        .collect();
    let l2tpns = L2tpns::start(&b, &users, "set peer_address 10.10.10.254\n");
    b.ip(&["addr", "add", "198.51.100.1/32", "dev", "lo"]);
    let pw = password_file("secret");
    let ping = |target: &str| {
        loadgen_at(
            &a.name,
            "192.0.2.2:1701",
            &[
                "--ppp",
                "--user",
                "user%d",
                "--password-file",
                pw.to_str().unwrap(),
                "--tunnels",
                "2",
                "--sessions",
                "2",
                "--rate",
                "20",
                "--ping",
                "3",
                "--ping-interval",
                "0.2",
                "--ping-target",
                target,
            ],
        )
    };
    let (code, out) = ping("198.51.100.1");
    eprintln!("{out}");
    assert_eq!(code, Some(0), "{out}\n{}", l2tpns.log());
    assert!(out.contains("tunnels: 2 of 2 up, 0 failed"), "{out}");
    assert!(out.contains("sessions: 4 of 4 up, 0 failed"), "{out}");
    assert!(
        out.contains("ping: 12 sent, 12 received, 0 lost (0.0 %) in 4 sessions"),
        "{out}"
    );
    let (code, out) = ping("10.10.10.254");
    eprintln!("{out}");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("sessions: 4 of 4 up, 4 failed"), "{out}");
    assert!(out.contains("ping: 12 sent, 0 received, 12 lost"), "{out}");
    let _ = std::fs::remove_file(pw);
}

/// `--mode lns`: a ul2tpd LAC's `[[lac]]` profile dials into the load generator, which
/// authenticates it (CHAP, a user pattern), gives it an address from its pool over IPCP,
/// answers pings to its own address and pings the LAC's; the LAC hanging up ends the run.
#[test]
fn lns_mode_serves_a_ul2tpd_lac() {
    let (a, b) = ul2tp_it::linked_hosts("lgla", "lglb");
    let dir = std::env::temp_dir().join(unique("loadgen-lns"));
    std::fs::create_dir_all(&dir).unwrap();
    let pw = password_file("secret");
    let out_file = dir.join("out");
    let mut lg = ul2tp_it::peers::Proc(
        b.cmd(bin("ul2tp-loadgen"))
            .args([
                "--mode",
                "lns",
                "--listen",
                "192.0.2.2:1701",
                "--tunnels",
                "1",
            ])
            .args([
                "--timeout",
                "40",
                "--ppp",
                "--auth",
                "chap",
                "--user",
                "user%d",
            ])
            .arg("--password-file")
            .arg(&pw)
            .args([
                "--ppp-local",
                "10.98.0.1",
                "--ppp-pool",
                "10.98.0.10-10.98.0.12",
            ])
            .args(["--ping", "3", "--ping-interval", "0.1"])
            .stdout(std::fs::File::create(&out_file).unwrap())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn ul2tp-loadgen"),
    );
    let out = || std::fs::read_to_string(&out_file).unwrap_or_default();
    std::fs::set_permissions(&pw, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let conf = dir.join("lac.toml");
    std::fs::write(
        &conf,
        format!(
            "[control]\nlisten = \"192.0.2.1:1701\"\nhost_name = \"lac\"\n[[lac]]\nname = \"isp\"\n\
user = \"user42\"\npassword_file = \"{}\"\nlns = \"192.0.2.2\"\nautodial = true\n",
            pw.display()
        ),
    )
    .unwrap();
    let lac = Daemon::start(&a, &["--config", conf.to_str().unwrap()]);
    let mut dev = None;
    assert!(
        ul2tp_it::wait_until(std::time::Duration::from_secs(20), || {
            dev = a.device_with("10.98.0.10");
            dev.is_some()
        }),
        "the LAC got no address:\n{}\n{}",
        lac.log(),
        out()
    );
    assert!(dev.unwrap().starts_with("ppp"));
    assert!(
        a.ping_retry("10.98.0.1", &[], 5),
        "ping to the load generator"
    );
    // Its own pings to the LAC (0.1 s apart) are over by then.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    lac.cli_ok(&["hangup", "isp"]);
    let done = ul2tp_it::wait_until(std::time::Duration::from_secs(15), || {
        lg.0.try_wait().ok().flatten().is_some()
    });
    assert!(done, "the load generator did not end:\n{}", out());
    let code = lg.0.wait().unwrap().code();
    let out = out();
    eprintln!("{out}");
    assert_eq!(code, Some(0), "{out}\n{}", lac.log());
    assert!(out.contains("tunnels: 1 up, 0 failed"), "{out}");
    assert!(out.contains("sessions: 1 up, 0 failed"), "{out}");
    assert!(out.contains("setup latency: p50 "), "{out}");
    assert!(
        out.contains("ping: 3 sent, 3 received, 0 lost (0.0 %) in 1 sessions"),
        "{out}"
    );
    let _ = std::fs::remove_file(pw);
    let _ = std::fs::remove_dir_all(dir);
}
