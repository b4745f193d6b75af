//! Other implementations as peers, started inside a test's namespace and killed by PID on
//! drop: xl2tpd (L2TPv2 LAC or LNS; its pppd cannot run here, so it clears every call after
//! ICCN with a CDN) and l2tpns (an LNS doing PPP in userspace) with the FreeRADIUS it
//! authenticates against.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{have, must, run, unique, wait_until, Netns};

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// A child process killed (by its PID) when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// xl2tpd in the foreground with its configuration, secrets, control pipe and log in a
/// directory of its own.
pub struct Xl2tpd {
    child: Child,
    dir: PathBuf,
}

impl Xl2tpd {
    /// Start xl2tpd with `conf` (`OPTIONS` in it replaced by an empty pppd options file).
    pub fn start(ns: &Netns, conf: &str) -> Xl2tpd {
        Xl2tpd::start_with_secret(ns, conf, None)
    }

    /// Start xl2tpd with its own secrets file (`auth file`), holding `secret` for every peer,
    /// or nothing.
    pub fn start_with_secret(ns: &Netns, conf: &str, secret: Option<&str>) -> Xl2tpd {
        assert!(have("xl2tpd"), "xl2tpd is required (installed by .ci/run)");
        let dir = std::env::temp_dir().join(unique("xl2tpd"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("options"), "").unwrap();
        let secrets = dir.join("l2tp-secrets");
        let line = secret.map(|s| format!("* * {s}\n")).unwrap_or_default();
        std::fs::write(&secrets, line).unwrap();
        let conf = conf
            .replace("OPTIONS", dir.join("options").to_str().unwrap())
            .replace(
                "[global]\n",
                &format!("[global]\nauth file = {}\n", secrets.display()),
            );
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

    pub fn log(&self) -> String {
        read(&self.dir.join("log"))
    }

    /// Wait (10 s at most) for `needle` in the log; fails the test otherwise.
    pub fn wait_log(&self, needle: &str) {
        assert!(
            wait_until(Duration::from_secs(10), || self.log().contains(needle)),
            "xl2tpd never logged {needle:?}:\n{}",
            self.log()
        );
    }
}

impl Drop for Xl2tpd {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- xl2tpd log ---\n{}", self.log());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// l2tpns listening on 192.0.2.2:1701 in `ns`, authenticating against a FreeRADIUS of its
/// own in the same namespace.
pub struct L2tpns {
    pub dir: PathBuf,
    pub log: PathBuf,
    pub radius_log: PathBuf,
    _l2tpns: Proc,
    _radius: Proc,
}

impl L2tpns {
    /// `users`: lines put in front of FreeRADIUS's `authorize` file; `conf`: extra
    /// startup-config lines (e.g. `set ipv6_prefix ...`). Addresses come from the packaged
    /// /etc/l2tpns/ip_pool (10.10.10.0/24 first); l2tpns's own address towards its
    /// subscribers is 10.10.10.254.
    pub fn start(ns: &Netns, users: &str, conf: &str) -> L2tpns {
        assert!(
            have("l2tpns") && have("freeradius"),
            "this test needs l2tpns and freeradius (apt-get install -y l2tpns freeradius)"
        );
        let dir = std::env::temp_dir().join(unique("l2tpns"));
        std::fs::create_dir_all(&dir).unwrap();
        // FreeRADIUS with the packaged configuration (cp -a keeps the freerad ownership it
        // needs); its default clients.conf admits 127.0.0.1 with secret testing123.
        let raddb = dir.join("raddb");
        must(
            Command::new("cp")
                .args(["-a", "/etc/freeradius/3.0"])
                .arg(&raddb),
        );
        let authorize = raddb.join("mods-config/files/authorize");
        std::fs::write(&authorize, format!("{users}\n{}", read(&authorize))).unwrap();
        let radius_log = dir.join("radius.log");
        let radius = Proc(
            ns.cmd("freeradius")
                .args(["-f", "-l", "stdout", "-d"])
                .arg(&raddb)
                .stdout(std::fs::File::create(&radius_log).unwrap())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn freeradius"),
        );
        assert!(
            wait_until(Duration::from_secs(20), || read(&radius_log)
                .contains("Ready to process requests")),
            "freeradius did not start: {}",
            read(&radius_log)
        );
        // l2tpns serves only once it has made itself cluster master, after a heartbeat
        // timeout without one. `conf` may set its peer_address (the IPCP peer address it gives
        // clients; by default its bind_address, the tunnel endpoint 192.0.2.2).
        let log = dir.join("l2tpns.log");
        let startup = dir.join("startup-config");
        std::fs::write(
            &startup,
            format!(
                "set debug 3\nset log_file \"{}\"\nset pid_file \"{}\"\nset primary_radius 127.0.0.1\nset radius_secret \"testing123\"\nset radius_authtypes \"pap\"\nset bind_address 192.0.2.2\nset cli_bind_address 127.0.0.1\nset cluster_interface eth0\nset cluster_hb_interval 2\nset cluster_hb_timeout 10\n{conf}",
                log.display(),
                dir.join("l2tpns.pid").display()
            ),
        )
        .unwrap();
        let l2tpns = Proc(
            ns.cmd("l2tpns")
                .arg("-c")
                .arg(&startup)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn l2tpns"),
        );
        // Started when its L2TP socket listens (its log file is written in blocks).
        assert!(
            wait_until(Duration::from_secs(10), || String::from_utf8_lossy(
                &run(ns.cmd("ss").args(["-Hnlu", "sport", "= :1701"])).stdout
            )
            .contains("192.0.2.2:1701")),
            "l2tpns did not start: {}",
            read(&log)
        );
        L2tpns {
            dir,
            log,
            radius_log,
            _l2tpns: l2tpns,
            _radius: radius,
        }
    }

    pub fn log(&self) -> String {
        read(&self.log)
    }

    pub fn radius_log(&self) -> String {
        read(&self.radius_log)
    }
}

impl Drop for L2tpns {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
