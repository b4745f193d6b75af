//! Conformance of the control protocol against software nobody here wrote: xl2tpd (L2TPv2)
//! as LNS for a ul2tpd LAC, and as LAC for a ul2tpd LNS. The tunnel and the PPP call come up
//! on both sides (xl2tpd logs them; ul2tpd reports tunnel and session create events). This
//! machine has no kernel PPP, so xl2tpd's pppd then fails and xl2tpd clears the call with a
//! CDN, which ul2tpd must honour by deleting the session.
//!
//! Tunnel authentication (RFC 2661 challenge) and hidden AVPs are tested against xl2tpd with
//! `challenge = yes` and `hidden bit = yes` in both roles, and a peer with the wrong secret or
//! none is refused. The secrets live in temporary files (xl2tpd's `auth file`, ul2tpd's
//! configuration), never on a command line. `[[lns]]` profiles choose (or refuse) xl2tpd by
//! its address and Host Name.

use std::time::Duration;

use ul2tp_api::{Attrs, Command};
use ul2tp_it::peers::Xl2tpd;
use ul2tp_it::{unique, veth, Capture, Daemon, Netns};

fn hosts() -> (Netns, Netns) {
    let a = Netns::new("xa");
    let b = Netns::new("xb");
    veth(&a, "eth0", &b, "eth0");
    a.ip(&["addr", "add", "192.0.2.1/24", "dev", "eth0"]);
    b.ip(&["addr", "add", "192.0.2.2/24", "dev", "eth0"]);
    (a, b)
}

fn control_daemon(ns: &Netns, listen: &str) -> (Daemon, std::path::PathBuf) {
    control_daemon_with(ns, listen, "")
}

/// A ul2tpd with a `[control]` section plus `extra` lines (secret, hide_avps, ...).
fn control_daemon_with(ns: &Netns, listen: &str, extra: &str) -> (Daemon, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(unique("xc"));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("ul2tpd.toml");
    std::fs::write(
        &conf,
        format!("[control]\nlisten = \"{listen}\"\nhost_name = \"ul2tp-it\"\n{extra}"),
    )
    .unwrap();
    (
        Daemon::start(ns, &["--config", conf.to_str().unwrap()]),
        dir,
    )
}

/// A client subscribed to the daemon's notifications; a wait for an event that never comes
/// fails after 20 s instead of hanging.
fn monitor(d: &Daemon) -> ul2tp::Client {
    let mut m = d.client();
    m.stream()
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    m.request(Command::Monitor, Attrs::default(), false)
        .unwrap();
    m
}

/// Wait for monitor events of the given kinds, in order.
fn expect_events(m: &mut ul2tp::Client, want: &[Command]) -> Vec<Attrs> {
    let mut got = Vec::new();
    let mut seen = Vec::new();
    for w in want {
        loop {
            let e = m.next_message().expect("monitor");
            if let Some(ev) = e.event {
                seen.push(ev);
                if ev == *w {
                    got.push(e.attrs.unwrap_or_default());
                    break;
                }
            }
            assert!(seen.len() < 50, "events {seen:?} never included {want:?}");
        }
    }
    got
}

const LNS_CONF: &str = "[global]\nlisten-addr = 192.0.2.2\nport = 1701\naccess control = no\n\
[lns default]\nip range = 10.77.0.2-10.77.0.20\nlocal ip = 10.77.0.1\nrequire authentication = no\n\
require chap = no\nrefuse pap = yes\nlength bit = yes\npppoptfile = OPTIONS\n";

#[test]
fn ul2tpd_lac_to_xl2tpd_lns() {
    let (a, b) = hosts();
    let xl = Xl2tpd::start(&b, LNS_CONF);
    xl.wait_log("Listening on IP address 192.0.2.2");
    let (d, dir) = control_daemon(&a, "192.0.2.1:1701");
    let mut m = monitor(&d);

    d.ul2tp("connect remote 192.0.2.2 version 2");
    let t = expect_events(&mut m, &[Command::TunnelCreate]).remove(0);
    assert_eq!(
        (t.proto_version, t.udp_sport, t.udp_dport),
        (Some(2), Some(1701), Some(1701))
    );
    let tid = t.conn_id.unwrap();
    xl.wait_log(&format!(
        "Connection established to 192.0.2.1, 1701.  Local: {}, Remote: {tid}",
        t.peer_conn_id.unwrap()
    ));

    d.ul2tp(&format!("connect session tunnel_id {tid} pw_type ppp"));
    let s = expect_events(&mut m, &[Command::SessionCreate]).remove(0);
    assert_eq!(
        (s.conn_id, s.pw_type),
        (Some(tid), Some(ul2tp_api::pw_type::PPP))
    );
    xl.wait_log("Call established with 192.0.2.1, PID: ");
    assert!(
        xl.log()
            .contains(&format!("Remote: {}", s.session_id.unwrap())),
        "{}",
        xl.log()
    );
    // xl2tpd's pppd cannot run here: its CDN must delete our session.
    let gone = expect_events(&mut m, &[Command::SessionDelete]).remove(0);
    assert_eq!(gone.session_id, s.session_id);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn xl2tpd_lac_to_ul2tpd_lns() {
    let (a, b) = hosts();
    let (d, dir) = control_daemon(&b, "192.0.2.2:1701");
    let mut m = monitor(&d);
    let lac = "[global]\nlisten-addr = 192.0.2.1\nport = 1701\naccess control = no\n\
[lac ul2tp]\nlns = 192.0.2.2\nautodial = yes\nredial = no\nrequire authentication = no\n\
require chap = no\nrefuse pap = yes\nlength bit = yes\npppoptfile = OPTIONS\n";
    let xl = Xl2tpd::start(&a, lac);
    let got = expect_events(&mut m, &[Command::TunnelCreate, Command::SessionCreate]);
    assert_eq!(got[0].proto_version, Some(2));
    assert_eq!(got[1].pw_type, Some(ul2tp_api::pw_type::PPP));
    xl.wait_log("Connection established to 192.0.2.2, 1701");
    let gone = expect_events(&mut m, &[Command::SessionDelete]).remove(0);
    assert_eq!(gone.session_id, got[1].session_id);
    let _ = std::fs::remove_dir_all(&dir);
}

/// xl2tpd as LAC for a ul2tpd LNS at 192.0.2.2, with `extra` lines in its `[lac]` section.
fn lac_conf(extra: &str) -> String {
    format!(
        "[global]\nlisten-addr = 192.0.2.1\nport = 1701\naccess control = no\n\
[lac ul2tp]\nlns = 192.0.2.2\nautodial = yes\nredial = no\nrequire authentication = no\n\
require chap = no\nrefuse pap = yes\nlength bit = yes\npppoptfile = OPTIONS\n{extra}"
    )
}

/// What one side put in its control messages: hidden AVPs, Challenge and Challenge Response
/// AVPs.
#[derive(Debug, Default, Clone, Copy)]
struct AuthAvps {
    hidden: usize,
    challenges: usize,
    responses: usize,
}

/// [`AuthAvps`] of the control messages sent from 192.0.2.1 and from 192.0.2.2 (the AVP
/// headers, type and H bit, are in clear even when the value is hidden).
fn auth_avps(pcap: &[u8]) -> (AuthAvps, AuthAvps) {
    use ul2tp_wire::avp::{AttrType, AvpIter, VENDOR_IETF};
    let (mut one, mut two) = (AuthAvps::default(), AuthAvps::default());
    for rec in ul2tp_wire::pcap::records(pcap).expect("a pcap file") {
        let Some(d) = ul2tp_wire::pcap::extract(rec.expect("a record").frame) else {
            continue;
        };
        let l2tp = d.payload;
        if l2tp.first().is_none_or(|b| b & 0x80 == 0) {
            continue; // data
        }
        let side = if d.src.ip().to_string() == "192.0.2.1" {
            &mut one
        } else {
            &mut two
        };
        let body = l2tp.get(ul2tp_wire::control::HEADER_LEN..).unwrap_or(&[]);
        for avp in AvpIter::new(body).flatten() {
            side.hidden += usize::from(avp.hidden);
            if avp.vendor_id == VENDOR_IETF {
                let t = avp.attr_type;
                side.challenges += usize::from(t == AttrType::Challenge.get());
                side.responses += usize::from(t == AttrType::ChallengeResponse.get());
            }
        }
    }
    (one, two)
}

/// We challenged xl2tpd and it answered, we answered any Challenge of its own, and we hid at
/// least `ours_hidden` AVPs (which xl2tpd read: the call came up).
fn assert_authenticated(ours: AuthAvps, theirs: AuthAvps, ours_hidden: usize) {
    assert!(ours.hidden >= ours_hidden, "we hid too little: {ours:?}");
    assert!(ours.challenges >= 1, "we sent no Challenge: {ours:?}");
    assert!(theirs.responses >= 1, "xl2tpd did not answer: {theirs:?}");
    assert!(
        theirs.challenges == 0 || ours.responses >= 1,
        "we did not answer xl2tpd's Challenge: {ours:?} {theirs:?}"
    );
}

/// ul2tpd's log line for a control connection it refused or that was refused.
fn wait_daemon_log(d: &Daemon, needle: &str) {
    assert!(
        d.wait_for(Duration::from_secs(15), || d.log().contains(needle)),
        "ul2tpd never logged {needle:?}:\n{}",
        d.log()
    );
}

const SECRET_TOML: &str = "secret = \"xl2tp-interop\"\nhide_avps = true\n";

#[test]
fn ul2tpd_lac_to_xl2tpd_lns_with_challenge_and_hidden_avps() {
    let (a, b) = hosts();
    let conf = format!("{LNS_CONF}challenge = yes\nhidden bit = yes\n");
    let xl = Xl2tpd::start_with_secret(&b, &conf, Some("xl2tp-interop"));
    xl.wait_log("Listening on IP address 192.0.2.2");
    let cap = Capture::start(&a, "eth0", "udp port 1701");
    let (d, dir) = control_daemon_with(&a, "192.0.2.1:1701", SECRET_TOML);
    let mut m = monitor(&d);
    d.ul2tp("connect remote 192.0.2.2 version 2");
    let t = expect_events(&mut m, &[Command::TunnelCreate]).remove(0);
    let tid = t.conn_id.unwrap();
    xl.wait_log(&format!(
        "Connection established to 192.0.2.1, 1701.  Local: {}, Remote: {tid}",
        t.peer_conn_id.unwrap()
    ));
    // A session: ICRQ/ICCN AVPs are hidden too, and xl2tpd reads them.
    d.ul2tp(&format!("connect session tunnel_id {tid} pw_type ppp"));
    let s = expect_events(&mut m, &[Command::SessionCreate]).remove(0);
    xl.wait_log("Call established with 192.0.2.1, PID: ");
    assert!(
        xl.log()
            .contains(&format!("Remote: {}", s.session_id.unwrap())),
        "xl2tpd did not read our hidden Assigned Session ID:\n{}",
        xl.log()
    );
    let (ours, theirs) = auth_avps(&cap.stop());
    // SCCCN: Challenge Response; ICRQ: Assigned Session ID, Call Serial Number, Bearer
    // Type; ICCN: Tx Connect Speed, Framing Type. xl2tpd challenges us too.
    assert_authenticated(ours, theirs, 6);
    assert!(
        theirs.challenges >= 1 && ours.responses >= 1,
        "{ours:?} {theirs:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn xl2tpd_lac_to_ul2tpd_lns_with_challenge_and_hidden_avps() {
    let (a, b) = hosts();
    let cap = Capture::start(&b, "eth0", "udp port 1701");
    let (d, dir) = control_daemon_with(&b, "192.0.2.2:1701", SECRET_TOML);
    let mut m = monitor(&d);
    let conf = lac_conf("challenge = yes\nhidden bit = yes\n");
    let xl = Xl2tpd::start_with_secret(&a, &conf, Some("xl2tp-interop"));
    let got = expect_events(&mut m, &[Command::TunnelCreate, Command::SessionCreate]);
    assert_eq!(got[0].proto_version, Some(2));
    assert_eq!(got[1].pw_type, Some(ul2tp_api::pw_type::PPP));
    xl.wait_log("Connection established to 192.0.2.2, 1701");
    let (theirs, ours) = auth_avps(&cap.stop());
    // ICRP: Assigned Session ID. xl2tpd as LAC challenges us.
    assert_authenticated(ours, theirs, 1);
    assert!(
        theirs.challenges >= 1 && ours.responses >= 1,
        "{ours:?} {theirs:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn xl2tpd_lac_with_wrong_secret_is_refused() {
    let (a, b) = hosts();
    let (d, dir) = control_daemon_with(&b, "192.0.2.2:1701", "secret = \"right\"\n");
    // xl2tpd does not challenge us, but answers our Challenge with its (wrong) secret.
    let xl = Xl2tpd::start_with_secret(&a, &lac_conf(""), Some("wrong"));
    wait_daemon_log(&d, "not established: AuthFailed");
    // xl2tpd counts itself connected once it sent SCCCN; our StopCCN closes it.
    xl.wait_log("Connection closed to 192.0.2.2");
    assert!(!d.log().contains("dynamic tunnel"), "{}", d.log());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn xl2tpd_lac_without_secret_is_refused() {
    let (a, b) = hosts();
    let (d, dir) = control_daemon_with(&b, "192.0.2.2:1701", "secret = \"right\"\n");
    // No secret at all on the LAC: it cannot answer our Challenge and gives up itself
    // (StopCCN 2/6 "No secret key on our end"); before, we admitted it unauthenticated.
    let xl = Xl2tpd::start_with_secret(&a, &lac_conf(""), None);
    wait_daemon_log(&d, "not established: ");
    assert!(!d.log().contains("dynamic tunnel"), "{}", d.log());
    assert!(!xl.log().contains("Connection established"), "{}", xl.log());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `[[lns]]` profiles against xl2tpd as LAC: a profile for another prefix refuses its SCCRQ
/// (StopCCN result 2, logged); a profile admitting its Host Name (`hostname = xl-lac-7`) takes
/// it, with the profile's own tunnel secret and hidden AVPs, and its call is set up.
#[test]
fn xl2tpd_lac_and_lns_profiles() {
    let (a, b) = hosts();
    let cap = Capture::start(&b, "eth0", "udp port 1701");
    let (d, dir) = control_daemon_with(
        &b,
        "192.0.2.2:1701",
        "[[lns]]\nname = \"elsewhere\"\npeers = [\"198.51.100.0/24\"]\n",
    );
    let xl = Xl2tpd::start(&a, &lac_conf("hostname = xl-lac-7\n"));
    wait_daemon_log(
        &d,
        "(Host Name \"xl-lac-7\") refused: no [[lns]] profile admits it",
    );
    xl.wait_log("Connection closed to 192.0.2.2");
    assert!(!d.log().contains("dynamic tunnel"), "{}", d.log());
    drop(xl);
    drop(d);
    let pcap = cap.stop();
    // The captures are decoded by tshark: without it the test fails (it does not skip them).
    ul2tp_it::require("tshark", "tshark");
    let stop = ul2tp_it::control_messages(&pcap, 4, &["l2tp.result_code"]);
    assert!(
        stop.iter().any(|l| l == "192.0.2.2\t2"),
        "StopCCN result 2 from ul2tpd: {stop:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);

    // Admitted by Host Name, with the profile's secret (the [control] one is wrong), hidden
    // AVPs and receive window.
    let cap = Capture::start(&b, "eth0", "udp port 1701");
    let (d, dir) = control_daemon_with(
        &b,
        "192.0.2.2:1701",
        "secret = \"not-this-one\"\n[[lns]]\nname = \"xl\"\nhost_names = [\"xl-lac-*\"]\n\
secret = \"xl2tp-interop\"\nhide_avps = true\nreceive_window = 7\n",
    );
    let mut m = monitor(&d);
    let conf = lac_conf("hostname = xl-lac-7\nchallenge = yes\n");
    let xl = Xl2tpd::start_with_secret(&a, &conf, Some("xl2tp-interop"));
    let got = expect_events(&mut m, &[Command::TunnelCreate, Command::SessionCreate]);
    assert_eq!(got[1].pw_type, Some(ul2tp_api::pw_type::PPP));
    xl.wait_log("Connection established to 192.0.2.2, 1701");
    wait_daemon_log(&d, "profile xl");
    let pcap = cap.stop();
    let (theirs, ours) = auth_avps(&pcap);
    // ICRP: Assigned Session ID hidden with the profile's secret (which xl2tpd read).
    assert_authenticated(ours, theirs, 1);
    let rws = ul2tp_it::control_messages(&pcap, 2, &["l2tp.avp.receive_window_size"]);
    assert!(
        rws.iter().any(|l| l == "192.0.2.2\t7"),
        "SCCRP with the profile's Receive Window Size: {rws:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
