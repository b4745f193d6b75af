//! `[[lns]]` profiles between two daemons in namespaces (a ul2tpd LAC at 192.0.2.1, a ul2tpd
//! LNS at 192.0.2.2): a LAC no profile admits is refused with StopCCN result 2 (logged and
//! counted), a reload (SIGHUP) admits it for new tunnels, and its PPP call gets the profile's
//! service: authentication, an address from a named pool (a CIDR), `show session` / `show
//! ppp` with user, addresses, device, time online and bytes; limits (max_sessions, max_tunnels)
//! and an exhausted pool refuse with CDN / StopCCN and are counted; MTU/MRU apply to LCP and
//! both pppN, the echo interval to LCP; session and idle timeouts clear the call with a PPP
//! Disconnect Cause. A second reload leaves established tunnels on their profile.

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use ul2tp_it::metrics::{scrape, value};
use ul2tp_it::{control_messages, output_text, tshark, wait_until, Capture, Daemon, Netns};

fn wait_for(secs: u64, cond: impl FnMut() -> bool) -> bool {
    wait_until(Duration::from_secs(secs), cond)
}

fn mtu(ns: &Netns, dev: &str) -> u32 {
    let out = ns.ip(&["-o", "link", "show", "dev", dev]);
    let mut words = out.split_whitespace();
    words
        .find(|w| *w == "mtu")
        .and_then(|_| words.next())
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("no mtu in {out:?}"))
}

/// A ul2tpd LAC and a ul2tpd LNS whose configuration the test writes (and rewrites).
struct Setup {
    a: Netns,
    b: Netns,
    lac: Daemon,
    lns: Daemon,
    lns_conf: PathBuf,
    dir: PathBuf,
    cap: Option<Capture>,
}

const LNS_HEAD: &str = "[control]\nlisten = \"192.0.2.2:1701\"\nhost_name = \"lns.example.test\"\n";

impl Setup {
    /// `lac_extra` goes into the LAC's `[control]`; `lns` is the LNS file after its
    /// `[control]` head (more `[control]` keys, then `[[lns]]` tables).
    fn new(lac_extra: &str, lns: &str) -> Setup {
        let ul2tp_it::LacLns {
            a,
            b,
            lac,
            lns,
            dir,
            lns_conf: cb,
            ..
        } = ul2tp_it::LacLns::start(("pa", "pb"), "lnsp", lac_extra, &format!("{LNS_HEAD}{lns}"));
        let cap = Some(Capture::start(&a, "eth0", "udp port 1701"));
        Setup {
            a,
            b,
            lac,
            lns,
            lns_conf: cb,
            dir,
            cap,
        }
    }

    /// `connect remote` from the LAC; the tunnel id when it comes up within `secs`.
    fn tunnel(&self, secs: u64) -> Option<String> {
        let tid = self.lac.connect_tunnel("192.0.2.2 version 2");
        self.lac
            .wait_tunnel(&tid, Duration::from_secs(secs))
            .then_some(tid)
    }

    /// A PPP call in tunnel `tid`; its session id when it is up on the LAC within 10 s.
    fn call(&self, tid: &str) -> Option<String> {
        let sid = self.lac.connect_ppp_session(tid);
        self.lac
            .wait_session(tid, &sid, Duration::from_secs(10))
            .then_some(sid)
    }

    /// A PPP call in tunnel `tid` that the LNS refuses: true when, 2 s after the request,
    /// the LAC does not hold it (it may have been up for a moment before the CDN came).
    fn refused_call(&self, tid: &str) -> bool {
        let sid = self.lac.connect_ppp_session(tid);
        std::thread::sleep(Duration::from_secs(2));
        wait_for(10, || !self.lac.has_session(tid, &sid))
    }

    /// `ppp start` on the LAC's call, whatever its outcome.
    fn ppp_start(&self, tid: &str, sid: &str, extra: &str) -> Output {
        let line = format!("ppp start tunnel_id {tid} session_id {sid} {extra}");
        self.lac.cli(&line.split_whitespace().collect::<Vec<_>>())
    }

    fn stop_capture(&mut self) -> Vec<u8> {
        self.cap.take().map(Capture::stop).unwrap_or_default()
    }

    fn lns_log_has(&self, needle: &str) -> bool {
        wait_for(10, || self.lns.log().contains(needle))
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- LNS log ---\n{}", self.lns.log());
            eprintln!("--- LAC log ---\n{}", self.lac.log());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const BRANCH: &str = "[metrics]\nlisten = \"127.0.0.1:9650\"\n\
[[lns]]\nname = \"branch\"\npeers = [\"192.0.2.0/24\"]\nhost_names = [\"lac-good*\"]\n\
max_sessions = 1\nppp_local = \"10.91.0.1\"\nppp_dns = [\"192.0.2.53\", \"192.0.2.54\"]\nppp_auth = \"pap\"\nppp_users = { alice = \"wonderland\" }\n\
[[lns.pool]]\nname = \"small\"\nranges = [\"10.91.0.8/30\"]\n";

/// A LAC no profile admits is refused with StopCCN 2, logged and counted; after the profile
/// is changed and the LNS reloaded, a new tunnel of the same LAC comes up, and its PPP call
/// authenticates against the profile's users, gets the first address of the profile's pool
/// and shows up in `show session` and `show ppp`; a second call is refused (max_sessions).
#[test]
fn profiles_refuse_admit_after_reload_and_serve_ppp() {
    let mut t = Setup::new("host_name = \"lac-bad-1\"\n", BRANCH);
    assert_eq!(t.tunnel(4), None, "a LAC no profile admits got a tunnel");
    assert!(
        t.lns_log_has("(Host Name \"lac-bad-1\") refused: no [[lns]] profile admits it"),
        "{}",
        t.lns.log()
    );
    assert_eq!(
        value(&scrape(&t.b), "ul2tp_control_sccrq_refused_total"),
        Some(1.0)
    );

    // Admit any `lac-*` and reload: established tunnels (none) stay, new ones use it.
    std::fs::write(
        &t.lns_conf,
        format!("{LNS_HEAD}{}", BRANCH.replace("lac-good*", "lac-*")),
    )
    .unwrap();
    t.lns.signal("HUP");
    assert!(
        t.lns_log_has("reload: [[lns]] profiles now [\"branch\"]"),
        "{}",
        t.lns.log()
    );
    let tid = t.tunnel(10).expect("tunnel after the reload");
    let tunnels = t.lns.ul2tp("show tunnel");
    assert!(
        tunnels.contains("  Peer host name: \"lac-bad-1\", profile: branch\n"),
        "{tunnels}"
    );
    let sid = t.call(&tid).expect("call");
    let o = t.ppp_start(&tid, &sid, "user alice password wonderland");
    assert!(o.status.success(), "{}", output_text(&o));
    // The first address of 10.91.0.8/30 (without network and broadcast addresses).
    let lac_dev =
        t.a.device_with("10.91.0.9")
            .expect("LAC pppN with 10.91.0.9");
    assert!(t.a.ping_retry("10.91.0.1", &[], 5), "ping over PPP");
    let lns_dev = t.b.device_with("10.91.0.1").expect("LNS pppN");
    assert!(lac_dev.starts_with("ppp") && lns_dev.starts_with("ppp"));

    let show = t.lns.ul2tp("show session");
    let want = format!("  ppp: user \"alice\" 10.91.0.1 -> 10.91.0.9 on {lns_dev}, online 00:00:");
    assert!(show.contains(&want), "{show}");
    assert!(show.contains("  ppp profile branch pool small\n"), "{show}");
    let list = t.lns.ul2tp("show ppp");
    let row: Vec<&str> = list
        .lines()
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(row.len(), 10, "{list}");
    assert_eq!(
        (row[1], row[2], row[3], row[4], row[8], row[9]),
        (
            "alice",
            lns_dev.as_str(),
            "10.91.0.1",
            "10.91.0.9",
            "branch",
            "small"
        ),
        "{list}"
    );
    let rx: u64 = row[6].parse().unwrap();
    assert!(rx > 0, "no bytes received on the call: {list}");
    let j = t.lns.ul2tp("-j show ppp");
    assert!(j.contains("\"user\":\"alice\""), "{j}");
    assert!(j.contains("\"peer\":\"10.91.0.9\""), "{j}");
    // The LAC side reports its own endpoint (our user name, its addresses, no profile).
    let lac_show = t.lac.ul2tp("show session");
    assert!(
        lac_show.contains(&format!(
            "  ppp: user \"alice\" 10.91.0.9 -> 10.91.0.1 on {lac_dev}"
        )),
        "{lac_show}"
    );
    assert!(!lac_show.contains("wonderland"), "{lac_show}");
    // The LAC asked for DNS servers and got the profile's (RFC 1877).
    assert!(
        t.lac
            .log()
            .contains("DNS servers from the peer: 192.0.2.53, 192.0.2.54"),
        "{}",
        t.lac.log()
    );

    // max_sessions = 1: a second call in the tunnel is refused with CDN 4.
    assert!(t.refused_call(&tid), "second call admitted");

    // Another reload, with another pool and no session limit: the established tunnel keeps
    // its profile (its next call gets the old pool again, and the old limit), a new tunnel
    // gets the new one.
    let changed = BRANCH
        .replace("lac-good*", "lac-*")
        .replace("max_sessions = 1\n", "")
        .replace(
            "name = \"small\"\nranges = [\"10.91.0.8/30\"]",
            "name = \"big\"\nranges = [\"10.91.1.0/24\"]",
        );
    std::fs::write(&t.lns_conf, format!("{LNS_HEAD}{changed}")).unwrap();
    t.lns.signal("HUP");
    assert!(
        wait_for(10, || t
            .lns
            .log()
            .matches("reload: [[lns]] profiles now")
            .count()
            == 2),
        "{}",
        t.lns.log()
    );
    t.lac
        .ul2tp(&format!("disconnect tunnel_id {tid} session_id {sid}"));
    assert!(wait_for(10, || t.b.device_with("10.91.0.1").is_none()));
    let sid = t.call(&tid).expect("call in the old tunnel");
    let o = t.ppp_start(&tid, &sid, "user alice password wonderland");
    assert!(o.status.success(), "{}", output_text(&o));
    assert!(
        t.a.device_with("10.91.0.9").is_some(),
        "old tunnel, old pool"
    );
    assert!(t.refused_call(&tid), "old tunnel, old max_sessions");
    let tid2 = t.tunnel(10).expect("a new tunnel");
    let sid2 = t.call(&tid2).expect("call in the new tunnel");
    let o = t.ppp_start(&tid2, &sid2, "user alice password wonderland");
    assert!(o.status.success(), "{}", output_text(&o));
    assert!(
        t.a.device_with("10.91.1.1").is_some(),
        "new tunnel, new pool"
    );
    assert!(
        t.lns.ul2tp("show ppp").contains(" big\n"),
        "{}",
        t.lns.ul2tp("show ppp")
    );
    let pcap = t.stop_capture();
    ul2tp_it::require("tshark", "tshark");
    let stop = control_messages(&pcap, 4, &["l2tp.result_code"]);
    assert!(
        stop.iter().any(|l| l == "192.0.2.2\t2"),
        "StopCCN result 2 from the LNS: {stop:?}"
    );
    let cdn = control_messages(&pcap, 14, &["l2tp.result_code"]);
    assert!(
        cdn.iter().any(|l| l == "192.0.2.2\t4"),
        "CDN result 4 from the LNS: {cdn:?}"
    );
    // The LNS's IPCP Configure-Nak carries the DNS servers.
    let nak = tshark(
        &pcap,
        &[
            "-Y",
            "ipcp && ppp.code == 3 && ip.src == 192.0.2.2",
            "-T",
            "fields",
            "-e",
            "ipcp.opt.pri_dns_address",
            "-e",
            "ipcp.opt.sec_dns_address",
        ],
    );
    assert!(
        nak.lines().any(|l| l == "192.0.2.53\t192.0.2.54"),
        "IPCP Configure-Nak with the DNS servers: {nak:?}"
    );
}

/// The pool of the profile holds one address: the first call gets it, the second is
/// refused with CDN 4, logged and counted; a second tunnel from the same address is refused
/// (max_tunnels = 1) with StopCCN 2 and counted.
#[test]
fn exhausted_pool_and_tunnel_limit_refuse_clearly() {
    let lns = "[metrics]\nlisten = \"127.0.0.1:9650\"\n\
[[lns]]\nname = \"tight\"\nhost_name = \"lns-tight\"\nmax_tunnels = 1\nppp_local = \"10.92.0.1\"\n\
[[lns.pool]]\nname = \"one\"\nranges = [\"10.92.0.5\"]\n";
    let mut t = Setup::new("", lns);
    let tid = t.tunnel(10).expect("tunnel");
    let sid = t.call(&tid).expect("first call");
    let o = t.ppp_start(&tid, &sid, "");
    assert!(o.status.success(), "{}", output_text(&o));
    assert!(t.a.device_with("10.92.0.5").is_some());
    // The second call: no address left. PPP runs (LCP, authentication) and the LNS ends
    // it as IPCP would start: LCP Terminate-Request, then the CDN; `ppp start` fails.
    let second = t.call(&tid).expect("second call");
    let o = t.ppp_start(&tid, &second, "");
    assert!(
        !o.status.success(),
        "ppp start without an address succeeded"
    );
    // The LAC's endpoint hears the Terminate-Request, or the CDN deletes its session first.
    let said = output_text(&o);
    assert!(
        said.contains("the peer terminated the link") || said.contains("the session was deleted"),
        "{said}"
    );
    assert!(
        wait_for(10, || !t.lac.has_session(&tid, &second)),
        "the call beyond the pool stayed up"
    );
    let why = "no address left in the pools of profile tight (one 1 of 1 leased)";
    assert!(
        t.lns_log_has(&format!("PPP link down ({why}): clearing the call")),
        "{}",
        t.lns.log()
    );
    let m = scrape(&t.b);
    assert_eq!(
        value(&m, "ul2tp_ppp_pool_exhausted_total"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(value(&m, "ul2tp_ppp_pool_addresses"), Some(1.0), "{m}");
    assert_eq!(value(&m, "ul2tp_ppp_pool_leased"), Some(1.0), "{m}");
    // The first call is untouched.
    assert!(t.a.ping_retry("10.92.0.1", &[], 5));
    // A second tunnel from 192.0.2.1.
    assert_eq!(t.tunnel(4), None, "second tunnel admitted");
    assert!(
        wait_for(5, || value(
            &scrape(&t.b),
            "ul2tp_control_sccrq_refused_total"
        ) == Some(1.0)),
        "{}",
        scrape(&t.b)
    );
    let pcap = t.stop_capture();
    ul2tp_it::require("tshark", "tshark");
    // The LNS's LCP Terminate-Request (PPP inside L2TP over UDP port 1701).
    let terms = tshark(
        &pcap,
        &[
            "-Y",
            "lcp && ppp.code == 5 && ip.src == 192.0.2.2",
            "-T",
            "fields",
            "-e",
            "ip.src",
        ],
    );
    assert!(
        !terms.trim().is_empty(),
        "no LCP Terminate-Request from the LNS"
    );
    // CDN 2 with the reason naming the pool as Error Message and a PPP Disconnect Cause for
    // IPCP (0x8021 = 32801), direction 2 (at the LNS).
    let cdn = control_messages(
        &pcap,
        14,
        &[
            "l2tp.result_code",
            "l2tp.avp.error_code",
            "l2tp.avp.error_message",
            "l2tp.avp.disconnect_code",
            "l2tp.avp.control_protocol_number",
            "l2tp.avp.cause_code_direction",
            "l2tp.avp.cause_code_message",
        ],
    );
    assert!(
        cdn.iter()
            .any(|l| *l == format!("192.0.2.2\t2\t6\t{why}\t0\t32801\t2\t{why}")),
        "{cdn:?}"
    );
    let stop = control_messages(&pcap, 4, &["l2tp.result_code"]);
    assert!(stop.iter().any(|l| l == "192.0.2.2\t2"), "{stop:?}");
    // The profile's host_name in the SCCRP (not the [control] one).
    let sccrp = control_messages(&pcap, 2, &["l2tp.avp.host_name"]);
    assert!(
        sccrp.iter().any(|l| l == "192.0.2.2\tlns-tight"),
        "{sccrp:?}"
    );
}

/// MTU and MRU of the profile: the LNS asks for MRU 1300 in LCP (the LAC's pppN gets MTU
/// 1300), its own pppN gets the profile's MTU 1400; its LCP echo and HELLO intervals. The session timeout clears the call
/// after 3 s online with a CDN carrying cause 1 (administrative) "session timeout".
#[test]
fn mtu_mru_and_session_timeout() {
    let lns = "[[lns]]\nname = \"short\"\nppp_local = \"10.93.0.1\"\nppp_pool = \"10.93.0.10-10.93.0.20\"\n\
hello_interval = 1\nppp_mtu = 1400\nppp_mru = 1300\nppp_session_timeout = 3\nppp_echo_interval = 1\n";
    let mut t = Setup::new("", lns);
    let tid = t.tunnel(10).expect("tunnel");
    let sid = t.call(&tid).expect("call");
    let o = t.ppp_start(&tid, &sid, "");
    assert!(o.status.success(), "{}", output_text(&o));
    let up = std::time::Instant::now();
    let lac_dev = t.a.device_with("10.93.0.10").expect("LAC pppN");
    let mut lns_dev = None;
    assert!(wait_for(5, || {
        lns_dev = t.b.device_with("10.93.0.1");
        lns_dev.is_some()
    }));
    let lns_dev = lns_dev.unwrap();
    assert_eq!(mtu(&t.a, &lac_dev), 1300, "LAC pppN: the LNS's MRU");
    assert_eq!(mtu(&t.b, &lns_dev), 1400, "LNS pppN: the profile's MTU");
    // Cleared on both sides after the session timeout.
    assert!(
        wait_for(15, || !t.lac.ul2tp("show session").contains("Session ")),
        "call not cleared: {}",
        t.lac.ul2tp("show session")
    );
    assert!(
        up.elapsed() >= Duration::from_millis(2500),
        "cleared after {:?}",
        up.elapsed()
    );
    assert!(t.lns_log_has("PPP session timeout (3 s): closing the link"));
    assert!(t.a.wait_link(&lac_dev, false, Duration::from_secs(5)));
    let pcap = t.stop_capture();
    ul2tp_it::require("tshark", "tshark");
    let cdn = control_messages(
        &pcap,
        14,
        &[
            "l2tp.result_code",
            "l2tp.avp.disconnect_code",
            "l2tp.avp.cause_code_direction",
            "l2tp.avp.cause_code_message",
        ],
    );
    assert!(
        cdn.iter()
            .any(|l| l == "192.0.2.2\t3\t1\t2\tsession timeout"),
        "{cdn:?}"
    );
    // The profile's echo interval (1 s; the default is 10 s): Echo-Requests from the LNS
    // during the 3 s online.
    let echoes = tshark(
        &pcap,
        &["-Y", "lcp && ppp.code == 9", "-T", "fields", "-e", "ip.src"],
    );
    let from_lns = echoes.lines().filter(|l| *l == "192.0.2.2").count();
    assert!(from_lns >= 2, "LCP Echo-Requests from the LNS: {echoes:?}");
    // The profile's hello_interval (1 s; the default is 60 s): HELLOs from the LNS.
    let hellos = control_messages(&pcap, 6, &[]);
    assert!(
        hellos.iter().any(|l| l == "192.0.2.2"),
        "no HELLO from the LNS: {hellos:?}"
    );
}

/// The idle timeout runs from the last IP packet: pings every 0.5 s keep the call beyond the
/// 2 s timeout, then without traffic it is cleared with "idle timeout".
#[test]
fn idle_timeout_follows_traffic() {
    let lns = "[[lns]]\nname = \"idle\"\nppp_local = \"10.94.0.1\"\nppp_pool = \"10.94.0.10-10.94.0.20\"\n\
ppp_idle_timeout = 2\n";
    let mut t = Setup::new("", lns);
    let tid = t.tunnel(10).expect("tunnel");
    let sid = t.call(&tid).expect("call");
    let o = t.ppp_start(&tid, &sid, "");
    assert!(o.status.success(), "{}", output_text(&o));
    // 10 pings over 4.5 s, all answered: the call outlives its idle timeout while busy.
    assert_eq!(t.a.ping_count("10.94.0.1", 10, "0.5"), 10, "pings lost");
    assert!(
        t.lac.ul2tp("show session").contains("Session "),
        "cleared while busy"
    );
    assert!(!t.lns.log().contains("idle timeout"), "{}", t.lns.log());
    let idle = std::time::Instant::now();
    assert!(
        wait_for(15, || !t.lac.ul2tp("show session").contains("Session ")),
        "idle call not cleared"
    );
    assert!(
        idle.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        idle.elapsed()
    );
    assert!(t.lns_log_has("PPP idle timeout (2 s): closing the link"));
    let pcap = t.stop_capture();
    ul2tp_it::require("tshark", "tshark");
    let cdn = control_messages(
        &pcap,
        14,
        &["l2tp.result_code", "l2tp.avp.cause_code_message"],
    );
    assert!(
        cdn.iter().any(|l| l == "192.0.2.2\t3\tidle timeout"),
        "{cdn:?}"
    );
}
