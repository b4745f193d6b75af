//! Open vSwitch ports mapped to L2TPv3 sessions (docs/operations.md, "Open vSwitch").
//!
//! Each test runs its own ovsdb-server and ovs-vswitchd (userspace datapath,
//! `datapath_type=netdev`: no openvswitch kernel module) with database, sockets, pid and log
//! files in a temporary directory, never the system's `/var/run/openvswitch`. The daemons are
//! children of the test, killed by PID on drop (also when the test panics).
//!
//! * `ovs_vlan_access_ports_map_to_eth_vlan_sessions`: two OVS access ports (tag 10, tag 20)
//!   facing two customers, and the two `eth_vlan` session devices of one tunnel as access
//!   ports with the same tags. A session device carries untagged frames locally and the
//!   session adds / checks its 802.1Q tag on the wire, so VLAN 10 of the bridge is VLAN 10 of
//!   the pseudowire. Pings reach only the far side's site of the same VLAN; the counters move
//!   only on that VLAN's session.
//! * `ovs_port_on_an_ethernet_pseudowire`: a plain `eth` session device and a customer port
//!   on one bridge.
//!
//! Both also move bulk TCP both ways, which needs `other_config:userspace-tso-enable=true`
//! (ul2tpd's TAP offloads, veth checksum offload) and end hosts at the pseudowire's MTU.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ul2tp_api::Stats;
use ul2tp_it::{have, must, ping_stats, run, traffic_only, unique, veth, wait_until, Netns, Pair};

/// The L2TPv3 header over UDP: flags word, session id, default sublayer (no cookie).
const V3_UDP_HEADER: u64 = 12;
/// The 802.1Q tag an `eth_vlan` session adds on the wire (counted in its bytes).
const VLAN_TAG: u64 = 4;
const SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";

/// A private Open vSwitch: ovsdb-server and ovs-vswitchd (running in `ns`) with everything in
/// a temporary directory.
struct Ovs {
    dir: PathBuf,
    /// ovsdb-server, then ovs-vswitchd (`ip netns exec` execs them: these are their PIDs).
    children: Vec<Child>,
}

impl Ovs {
    /// Whether Open vSwitch is installed (`.ci/run` installs openvswitch-switch).
    fn available() -> bool {
        ["ovsdb-server", "ovs-vswitchd", "ovsdb-tool", "ovs-vsctl"]
            .iter()
            .all(|p| have(p))
            && Path::new(SCHEMA).exists()
    }

    fn start(ns: &Netns) -> Ovs {
        let dir = std::env::temp_dir().join(unique("ovs-"));
        std::fs::create_dir_all(&dir).unwrap();
        let db_file = dir.join("conf.db");
        must(
            Command::new("ovsdb-tool")
                .arg("create")
                .arg(&db_file)
                .arg(SCHEMA),
        );
        let mut ovs = Ovs {
            dir,
            children: Vec::new(),
        };
        let mut c = ns.cmd("ovsdb-server");
        Self::env(&mut c, &ovs.dir);
        ovs.children.push(
            c.arg(&db_file)
                .arg(format!("--remote=punix:{}", ovs.sock().display()))
                .arg(ovs.file_arg("pidfile", "ovsdb-server.pid"))
                .arg(ovs.file_arg("unixctl", "ovsdb-server.ctl"))
                .stdout(Stdio::null())
                .stderr(ovs.log_file("ovsdb-server.log"))
                .spawn()
                .expect("spawn ovsdb-server"),
        );
        assert!(
            wait_until(Duration::from_secs(10), || ovs.sock().exists()),
            "ovsdb-server did not start:\n{}",
            ovs.logs()
        );
        must(&mut ovs.vsctl_cmd(&["--no-wait", "init"]));
        // Read only at start-up: ovs-vswitchd then reads and writes its AF_PACKET ports with
        // virtio-net headers, so it keeps the partial checksums of a veth's TCP segments and
        // the coalesced TCP frames ul2tpd writes into its TAP devices (docs/operations.md).
        must(&mut ovs.vsctl_cmd(&[
            "--no-wait",
            "set",
            "Open_vSwitch",
            ".",
            "other_config:userspace-tso-enable=true",
        ]));
        let mut c = ns.cmd("ovs-vswitchd");
        Self::env(&mut c, &ovs.dir);
        ovs.children.push(
            c.arg(format!("unix:{}", ovs.sock().display()))
                .arg(ovs.file_arg("pidfile", "ovs-vswitchd.pid"))
                .arg(ovs.file_arg("unixctl", "ovs-vswitchd.ctl"))
                .stdout(Stdio::null())
                .stderr(ovs.log_file("ovs-vswitchd.log"))
                .spawn()
                .expect("spawn ovs-vswitchd"),
        );
        ovs
    }

    /// `--OPTION=DIR/NAME`.
    fn file_arg(&self, option: &str, name: &str) -> String {
        format!("--{option}={}", self.dir.join(name).display())
    }

    fn log_file(&self, name: &str) -> std::fs::File {
        std::fs::File::create(self.dir.join(name)).unwrap()
    }

    /// Every OVS program of this instance looks in the temporary directory only.
    fn env(c: &mut Command, dir: &Path) {
        for var in ["OVS_RUNDIR", "OVS_DBDIR", "OVS_LOGDIR", "OVS_SYSCONFDIR"] {
            c.env(var, dir);
        }
    }

    fn sock(&self) -> PathBuf {
        self.dir.join("db.sock")
    }

    fn vsctl_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ovs-vsctl");
        Self::env(&mut c, &self.dir);
        c.arg(format!("--db=unix:{}", self.sock().display()))
            .arg("--timeout=20")
            .args(args);
        c
    }

    /// `ovs-vsctl ARGS` (a whole command line split at white space); waits until
    /// ovs-vswitchd has applied the change, and must succeed.
    fn vsctl(&self, line: &str) -> String {
        let args: Vec<&str> = line.split_whitespace().collect();
        let o = run(&mut self.vsctl_cmd(&args));
        assert!(
            o.status.success(),
            "ovs-vsctl {line} failed: {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            self.logs()
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn logs(&self) -> String {
        let mut s = String::new();
        for f in ["ovsdb-server.log", "ovs-vswitchd.log"] {
            let text = std::fs::read_to_string(self.dir.join(f)).unwrap_or_default();
            s += &format!("--- {f} ---\n{text}");
        }
        s
    }
}

impl Drop for Ovs {
    fn drop(&mut self) {
        for c in self.children.iter_mut().rev() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A namespace with IPv6 off for every device created in it from now on, so the only frames
/// on its links are the test's (pings, with static neighbour entries: no ARP either).
fn quiet_ns(tag: &str) -> Netns {
    let ns = Netns::new(tag);
    quiet(&ns);
    ns
}

fn quiet(ns: &Netns) {
    ns.sysctl("net.ipv6.conf.default.disable_ipv6=1");
    ns.sysctl("net.ipv6.conf.all.disable_ipv6=1");
}

/// The MTU of `dev` in `ns`.
fn mtu(ns: &Netns, dev: &str) -> String {
    let out = ns.ip(&["-o", "link", "show", "dev", dev]);
    let mut words = out.split_whitespace();
    words.find(|w| *w == "mtu");
    words.next().expect("mtu in ip link show").to_string()
}

/// An end host: `eth0` in `ns`, joined by a veth pair to `port` in `host`, with `mac` and
/// `cidr` on it, and both ends at the MTU of the pseudowire `pw` (a switch drops a frame too
/// big for the port it leaves by, as between any two links of different MTUs).
fn end_host(ns: &Netns, host: &Netns, port: &str, mac: &str, cidr: &str, pw: &str) {
    veth(ns, "eth0", host, port);
    let mtu = mtu(host, pw);
    ns.ip(&["link", "set", "eth0", "mtu", &mtu]);
    host.ip(&["link", "set", port, "mtu", &mtu]);
    ns.ip(&["link", "set", "eth0", "address", mac]);
    ns.ip(&["addr", "add", cidr, "dev", "eth0"]);
}

/// Open vSwitch is one of the suite's real components (.ci/run installs it): its absence is a
/// failure, not a skip.
fn require_ovs() {
    assert!(
        Ovs::available(),
        "Open vSwitch is not installed: apt-get install openvswitch-switch (or run .ci/run)"
    );
}

#[test]
fn ovs_vlan_access_ports_map_to_eth_vlan_sessions() {
    require_ovs();
    let p = Pair::new(false);
    quiet(&p.a);
    quiet(&p.b);
    p.ul2tp(
        "add tunnel tunnel_id 1 peer_tunnel_id 2 local 192.0.2.1 remote 192.0.2.2 udp_sport 5200 udp_dport 5200",
        "add tunnel tunnel_id 2 peer_tunnel_id 1 local 192.0.2.2 remote 192.0.2.1 udp_sport 5200 udp_dport 5200",
    );
    // VLAN 10: sessions 110 (a) / 210 (b); VLAN 20: 120 / 220.
    let vlans = [10u32, 20];
    let pw: Vec<String> = vlans.iter().map(|_| unique("pw")).collect();
    for (vid, name) in vlans.iter().zip(&pw) {
        p.ul2tp(
            &format!("add session name {name} pw_type eth_vlan vlan_id {vid} tunnel_id 1 session_id {} peer_session_id {}", 100 + vid, 200 + vid),
            &format!("add session name {name} pw_type eth_vlan vlan_id {vid} tunnel_id 2 session_id {} peer_session_id {}", 200 + vid, 100 + vid),
        );
    }

    // Host a: one OVS bridge; customer ports and session devices as access ports.
    let ovs = Ovs::start(&p.a);
    let br = unique("br");
    ovs.vsctl(&format!(
        "add-br {br} -- set bridge {br} datapath_type=netdev"
    ));
    // Customers and far-side sites all on one subnet, so only the VLANs keep them apart.
    let cust: Vec<Netns> = vlans.iter().map(|_| quiet_ns("cu")).collect();
    let site: Vec<Netns> = vlans.iter().map(|_| quiet_ns("si")).collect();
    let cust_mac = ["02:00:00:00:c0:10", "02:00:00:00:c0:20"];
    let site_mac = ["02:00:00:00:50:10", "02:00:00:00:50:20"];
    let cust_ip = ["10.60.0.10", "10.60.0.20"];
    let site_ip = ["10.60.0.110", "10.60.0.120"];
    for i in 0..2 {
        let (vid, port) = (vlans[i], unique("cp"));
        end_host(
            &cust[i],
            &p.a,
            &port,
            cust_mac[i],
            &format!("{}/24", cust_ip[i]),
            &pw[i],
        );
        ovs.vsctl(&format!("add-port {br} {port} tag={vid}"));
        p.a.ip(&["link", "set", &pw[i], "up"]);
        ovs.vsctl(&format!("add-port {br} {} tag={vid}", pw[i]));
    }
    // Host b: each session device bridged (Linux bridge) with its VLAN's site. Without
    // multicast snooping the bridge joins no group (snooping sends IGMP reports for
    // 224.0.0.106 into the pseudowire).
    for i in 0..2 {
        let (lbr, port) = (unique("lb"), unique("sp"));
        p.b.ip(&["link", "add", &lbr, "type", "bridge", "mcast_snooping", "0"]);
        end_host(
            &site[i],
            &p.b,
            &port,
            site_mac[i],
            &format!("{}/24", site_ip[i]),
            &pw[i],
        );
        for dev in [&port, &pw[i]] {
            p.b.ip(&["link", "set", dev, "master", &lbr]);
            p.b.ip(&["link", "set", dev, "up"]);
        }
        p.b.ip(&["link", "set", &lbr, "up"]);
    }
    // Everybody knows everybody's MAC address: no ARP crosses the pseudowires.
    for i in 0..2 {
        for j in 0..2 {
            cust[i].static_neighbour("eth0", site_ip[j], site_mac[j]);
            cust[i].static_neighbour("eth0", cust_ip[j], cust_mac[j]);
            site[i].static_neighbour("eth0", cust_ip[j], cust_mac[j]);
        }
    }
    let show = ovs.vsctl("show");
    for name in &pw {
        assert!(show.contains(&format!("Port {name}")), "{show}");
    }

    // Each customer reaches its own VLAN's site: 3 pings through its session.
    for i in 0..2 {
        assert_eq!(
            cust[i].ping_count(site_ip[i], 3, "0.2"),
            3,
            "customer of VLAN {} -> site of VLAN {}\n{show}",
            vlans[i],
            vlans[i]
        );
    }
    let per_vlan = ping_stats(VLAN_TAG + V3_UDP_HEADER, 3, 3);
    for vid in vlans {
        assert_eq!(p.da.session_stats(1, 100 + vid), per_vlan, "a, VLAN {vid}");
        assert_eq!(p.db.session_stats(2, 200 + vid), per_vlan, "b, VLAN {vid}");
    }

    // Isolation: nothing crosses from one VLAN to the other, neither to the other VLAN's site
    // nor to the other customer on the same bridge.
    for i in 0..2 {
        let other = 1 - i;
        assert_eq!(
            cust[i].ping_count(site_ip[other], 3, "0.2"),
            0,
            "VLAN {} reached the far site of VLAN {}",
            vlans[i],
            vlans[other]
        );
        assert_eq!(
            cust[i].ping_count(cust_ip[other], 3, "0.2"),
            0,
            "VLAN {} reached the customer of VLAN {}",
            vlans[i],
            vlans[other]
        );
    }
    // The requests of each VLAN (to an address OVS has not learned in that VLAN) were flooded
    // only into that VLAN's session: 6 more transmitted on a, and b's bridge delivered them to
    // its site of the same VLAN, which dropped them (not its MAC address) without replying.
    let after = Stats {
        tx_packets: 3 + 6,
        tx_bytes: 9 * (ul2tp_it::PING_FRAME + VLAN_TAG + V3_UDP_HEADER),
        ..per_vlan
    };
    let received = Stats {
        rx_packets: 3 + 6,
        rx_bytes: 9 * (ul2tp_it::PING_FRAME + VLAN_TAG + V3_UDP_HEADER),
        ..per_vlan
    };
    for vid in vlans {
        assert_eq!(p.da.session_stats(1, 100 + vid), after, "a, VLAN {vid}");
        assert_eq!(p.db.session_stats(2, 200 + vid), received, "b, VLAN {vid}");
    }
    // `ul2tp -j show session` names the device that is each VLAN's OVS port.
    for (vid, name) in vlans.iter().zip(&pw) {
        let out = p.da.ul2tp(&format!(
            "-j show session tunnel_id 1 session_id {}",
            100 + vid
        ));
        let json: serde_json::Value = serde_json::from_str(&out).expect("ul2tp -j show session");
        let s = &json[0];
        assert_eq!(s["interface"], name.as_str(), "{out}");
        assert_eq!(s["pw_type"], "eth_vlan", "{out}");
        assert_eq!(s["vlan_id"], *vid, "{out}");
    }

    // Bulk TCP both ways on VLAN 10 (see the Ethernet test below).
    let bytes = 1 << 20;
    let to_site = tcp_transfer(&cust[0], &site[0], "10.60.0.110:7610", bytes);
    assert_eq!(to_site, bytes, "TCP customer -> site, VLAN 10");
    let to_cust = tcp_transfer(&site[0], &cust[0], "10.60.0.10:7611", bytes);
    assert_eq!(to_cust, bytes, "TCP site -> customer, VLAN 10");
    assert_eq!(
        p.da.session_stats(1, 120),
        after,
        "TCP of VLAN 10 in VLAN 20"
    );
    let s = p.da.session_stats(1, 110);
    assert_eq!(s, traffic_only(&s));
}

#[test]
fn ovs_port_on_an_ethernet_pseudowire() {
    require_ovs();
    let p = Pair::new(false);
    quiet(&p.a);
    quiet(&p.b);
    let pw = unique("pw");
    p.ul2tp(
        "add tunnel tunnel_id 3 peer_tunnel_id 4 local 192.0.2.1 remote 192.0.2.2 udp_sport 5201 udp_dport 5201",
        "add tunnel tunnel_id 4 peer_tunnel_id 3 local 192.0.2.2 remote 192.0.2.1 udp_sport 5201 udp_dport 5201",
    );
    p.ul2tp(
        &format!("add session name {pw} tunnel_id 3 session_id 30 peer_session_id 40"),
        &format!("add session name {pw} tunnel_id 4 session_id 40 peer_session_id 30"),
    );
    let ovs = Ovs::start(&p.a);
    let br = unique("br");
    ovs.vsctl(&format!(
        "add-br {br} -- set bridge {br} datapath_type=netdev"
    ));
    let cust = quiet_ns("cu");
    let port = unique("cp");
    let (cust_mac, far_mac) = ("02:00:00:00:c0:01", "02:00:00:00:0b:01");
    end_host(&cust, &p.a, &port, cust_mac, "10.61.0.1/24", &pw);
    ovs.vsctl(&format!("add-port {br} {port}"));
    p.a.ip(&["link", "set", &pw, "up"]);
    ovs.vsctl(&format!("add-port {br} {pw}"));
    // b: the session device addressed directly.
    p.b.quiet_link(&pw, far_mac, "10.61.0.2/24", "10.61.0.1", cust_mac);
    cust.static_neighbour("eth0", "10.61.0.2", far_mac);

    assert_eq!(cust.ping_count("10.61.0.2", 3, "0.2"), 3, "customer -> b");
    let want = ping_stats(V3_UDP_HEADER, 3, 3);
    assert_eq!(p.da.session_stats(3, 30), want);
    assert_eq!(p.db.session_stats(4, 40), want);

    // Bulk TCP both ways: the customer's veth leaves checksums to the receiver and ul2tpd
    // coalesces TCP segments into frames above the MTU on the TAP; OVS passes both on.
    let bytes = 2 << 20;
    assert_eq!(
        tcp_transfer(&cust, &p.b, "10.61.0.2:7600", bytes),
        bytes,
        "TCP customer -> b"
    );
    assert_eq!(
        tcp_transfer(&p.b, &cust, "10.61.0.1:7601", bytes),
        bytes,
        "TCP b -> customer"
    );
    // How many segments TCP sends is up to TCP; each side carried at least the payload and
    // counted no error or discard.
    for s in [p.da.session_stats(3, 30), p.db.session_stats(4, 40)] {
        assert_eq!(s, traffic_only(&s));
        assert!(
            s.tx_bytes > bytes as u64 && s.rx_bytes > bytes as u64,
            "{s:?}"
        );
    }
    let drops: Vec<String> = ovs
        .logs()
        .lines()
        .filter(|l| l.contains("Dropped packet"))
        .map(String::from)
        .collect();
    assert!(drops.is_empty(), "OVS dropped frames: {drops:?}");
}

/// Send `bytes` over TCP from `from` to `to_addr` (a listener in `to`); returns how many
/// leading bytes arrived intact (within 20-second socket timeouts).
fn tcp_transfer(from: &Netns, to: &Netns, to_addr: &'static str, bytes: usize) -> usize {
    use std::io::{Read, Write};
    let listener = to.run_in(move || std::net::TcpListener::bind(to_addr).expect("listen"));
    let rx = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        got
    });
    from.run_in(move || {
        let mut s = std::net::TcpStream::connect_timeout(
            &to_addr.parse().unwrap(),
            Duration::from_secs(10),
        )
        .expect("TCP connect through OVS and the pseudowire");
        s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
        let data: Vec<u8> = (0..bytes).map(|i| (i % 251) as u8).collect();
        let _ = s.write_all(&data);
    });
    let got = rx.join().unwrap();
    got.iter()
        .enumerate()
        .position(|(i, b)| *b != (i % 251) as u8)
        .unwrap_or(got.len())
}
