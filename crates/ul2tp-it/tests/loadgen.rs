//! `ul2tp-loadgen` against a ul2tpd LNS in a namespace: N tunnels × M sessions set up, held
//! and cleared from one process without devices; the report counts what came up, and
//! sessions the LNS refuses (`[limits] max_sessions`) are failures with their cause; with
//! `--ppp` every session runs LCP, PAP and IPCP against the LNS's PPP endpoint.

use std::process::Command;

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
    let o = run(Command::new("ip")
        .args(["netns", "exec", &l.lac])
        .arg(bin("ul2tp-loadgen"))
        .args(["--peer", "192.0.2.2:1701", "--timeout", "30"])
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
    ] {
        let o = run(Command::new(bin("ul2tp-loadgen")).args(args));
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("usage:"),
            "{args:?}"
        );
    }
}
