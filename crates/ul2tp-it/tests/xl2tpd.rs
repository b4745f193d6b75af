//! Conformance of the control protocol against software nobody here wrote: xl2tpd (L2TPv2)
//! as LNS for a ul2tpd LAC, and as LAC for a ul2tpd LNS. The tunnel and the PPP call come up
//! on both sides (xl2tpd logs them; ul2tpd reports tunnel and session create events). This
//! machine has no kernel PPP, so xl2tpd's pppd then fails and xl2tpd clears the call with a
//! CDN, which ul2tpd must honour by deleting the session.

use std::process::{Child, Command as Proc, Stdio};
use std::time::{Duration, Instant};

use ul2tp_api::{Attrs, Command};
use ul2tp_it::{have, unique, veth, Daemon, Netns};

struct Xl2tpd {
    child: Child,
    dir: std::path::PathBuf,
}

impl Xl2tpd {
    fn start(ns: &Netns, conf: &str) -> Xl2tpd {
        assert!(have("xl2tpd"), "xl2tpd is required (installed by .ci/run)");
        let dir = std::env::temp_dir().join(unique("xl2tpd"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("options"), "").unwrap();
        let conf = conf.replace("OPTIONS", dir.join("options").to_str().unwrap());
        std::fs::write(dir.join("xl2tpd.conf"), conf).unwrap();
        let log = std::fs::File::create(dir.join("log")).unwrap();
        let child = ns
            .cmd("xl2tpd")
            .arg("-D")
            .arg("-c")
            .arg(dir.join("xl2tpd.conf"))
            .arg("-p")
            .arg(dir.join("pid"))
            .arg("-C")
            .arg(dir.join("control"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn xl2tpd");
        Xl2tpd { child, dir }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    fn wait_log(&self, needle: &str) {
        let end = Instant::now() + Duration::from_secs(10);
        while !self.log().contains(needle) {
            assert!(
                Instant::now() < end,
                "xl2tpd never logged {needle:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Xl2tpd {
    fn drop(&mut self) {
        let _ = Proc::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- xl2tpd log ---\n{}", self.log());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn hosts() -> (Netns, Netns) {
    let a = Netns::new("xa");
    let b = Netns::new("xb");
    veth(&a, "eth0", &b, "eth0");
    a.ip(&["addr", "add", "192.0.2.1/24", "dev", "eth0"]);
    b.ip(&["addr", "add", "192.0.2.2/24", "dev", "eth0"]);
    (a, b)
}

fn control_daemon(ns: &Netns, listen: &str) -> (Daemon, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(unique("xc"));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("ul2tpd.toml");
    std::fs::write(
        &conf,
        format!("[control]\nlisten = \"{listen}\"\nhost_name = \"ul2tp-it\"\n"),
    )
    .unwrap();
    (
        Daemon::start(ns, &["--config", conf.to_str().unwrap()]),
        dir,
    )
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
    let mut m = d.client();
    m.request(Command::Monitor, Attrs::default(), false)
        .unwrap();

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
    let mut m = d.client();
    m.request(Command::Monitor, Attrs::default(), false)
        .unwrap();
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
