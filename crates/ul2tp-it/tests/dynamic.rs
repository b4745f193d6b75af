//! Dynamic L2TPv3 tunnels: two daemons with a `[control]` section negotiate a control
//! connection and an Ethernet pseudowire session with the L2TP control protocol
//! (ul2tp-control), the data path comes up with the negotiated ids and cookies, pings cross
//! it, and closing the tunnel with StopCCN removes it on both sides.

use std::time::Duration;

use ul2tp_api::{Attrs, Command};
use ul2tp_it::{ping_stats, unique, veth, wait_until, Daemon, Netns};

fn wait_for(what: &str, f: impl FnMut() -> bool) {
    assert!(
        wait_until(Duration::from_secs(10), f),
        "timed out waiting for {what}"
    );
}

fn run(secret: Option<&str>) {
    let a = Netns::new("da");
    let b = Netns::new("db");
    veth(&a, "eth0", &b, "eth0");
    a.ip(&["addr", "add", "192.0.2.1/24", "dev", "eth0"]);
    b.ip(&["addr", "add", "192.0.2.2/24", "dev", "eth0"]);
    let dir = std::env::temp_dir().join(unique("dyn"));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = |host: &str, listen: &str| {
        let p = dir.join(format!("{host}.toml"));
        let secret = secret
            .map(|s| format!("secret = \"{s}\"\n"))
            .unwrap_or_default();
        std::fs::write(
            &p,
            format!("[control]\nlisten = \"{listen}\"\nhost_name = \"{host}\"\n{secret}"),
        )
        .unwrap();
        p
    };
    let (ca, cb) = (
        conf("site-a", "192.0.2.1:1701"),
        conf("site-b", "192.0.2.2:1701"),
    );
    let da = Daemon::start(&a, &["--config", ca.to_str().unwrap()]);
    let db = Daemon::start(&b, &["--config", cb.to_str().unwrap()]);

    // Through the CLI: `ul2tp connect remote ADDR` prints the id of the tunnel it requested.
    let tid = da.connect_tunnel_id("192.0.2.2");
    wait_for("tunnel on both sides", || {
        da.tunnel_dump().iter().any(|t| t.conn_id == Some(tid)) && !db.tunnel_dump().is_empty()
    });
    let tb = db.tunnel_dump()[0].clone();
    assert_eq!(tb.peer_conn_id, Some(tid));
    assert_eq!(
        (tb.proto_version, tb.udp_sport, tb.udp_dport),
        (Some(3), Some(1701), Some(1701))
    );

    let ifname = unique("dy");
    let sid = da.connect_session_id(&format!("tunnel_id {tid} name {ifname}"));
    wait_for("session on both sides", || {
        !da.session_dump().is_empty() && !db.session_dump().is_empty()
    });
    let sa = da.session_dump()[0].clone();
    let sb = db.session_dump()[0].clone();
    assert_eq!(sa.session_id, Some(sid));
    assert_eq!(
        (sa.peer_session_id, sb.peer_session_id),
        (sb.session_id, sa.session_id)
    );
    // Cookies were negotiated (8 bytes each way) and mirror each other.
    assert_eq!(sa.cookie.as_ref().map(String::len), Some(16));
    assert_eq!(
        (sa.cookie.clone(), sa.peer_cookie.clone()),
        (sb.peer_cookie.clone(), sb.cookie.clone())
    );
    let b_if = sb.ifname.clone().expect("device on b");

    // Quiet pseudowire ends (IPv4 only, static neighbours): the pings are all it carries.
    let (mac_a, mac_b) = ("02:00:00:00:0a:01", "02:00:00:00:0b:01");
    a.quiet_link(&ifname, mac_a, "198.51.100.1/24", "198.51.100.2", mac_b);
    b.quiet_link(&b_if, mac_b, "198.51.100.2/24", "198.51.100.1", mac_a);
    assert_eq!(
        a.ping_count("198.51.100.2", 3, "0.2"),
        3,
        "ping over the negotiated pseudowire"
    );
    assert_eq!(b.ping_count("198.51.100.1", 3, "0.2"), 3);
    // Three requests and three replies each way, each with the L2TPv3 header over UDP: flags
    // word, session id, the negotiated 8-byte cookie and the default sublayer.
    let want = ping_stats(4 + 4 + 8 + 4, 6, 6);
    assert_eq!(da.session_stats(tid, sid), want, "a");
    assert_eq!(
        db.session_stats(tb.conn_id.unwrap(), sb.session_id.unwrap()),
        want,
        "b"
    );

    // Deleting the session through the API on a also clears it with the peer (CDN).
    da.ul2tp(&format!("del session tunnel_id {tid} session_id {sid}"));
    wait_for("session gone on b", || db.session_dump().is_empty());
    assert!(b.wait_link(&b_if, false, Duration::from_secs(5)));
    assert!(a.wait_link(&ifname, false, Duration::from_secs(5)));
    assert_eq!(db.tunnel_dump().len(), 1, "the tunnel stays");

    // StopCCN from a: both sides delete the tunnel and everything in it.
    da.ul2tp(&format!("disconnect tunnel_id {tid}"));
    wait_for("tunnels gone", || {
        da.tunnel_dump().is_empty() && db.tunnel_dump().is_empty()
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dynamic_l2tpv3_pseudowire() {
    run(None);
}

#[test]
fn dynamic_l2tpv3_pseudowire_with_message_digests() {
    run(Some("xyzzy"));
}

#[test]
fn control_commands_need_the_control_section() {
    let ns = Netns::new("nc");
    let d = Daemon::start(&ns, &[]);
    let r = d.client().request(
        Command::ControlConnect,
        Attrs {
            ip_daddr: Some("192.0.2.9".parse().unwrap()),
            ..Attrs::default()
        },
        false,
    );
    match r {
        Err(ul2tp::ClientError::Api(e)) => assert_eq!(e.errno, ul2tp_api::Errno::EOPNOTSUPP),
        other => panic!("{other:?}"),
    }
}
