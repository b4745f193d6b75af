//! Data-path settings belong to each daemon (`ul2tpd::DataPathConfig`), not to the process:
//! two daemons embedded in one process, one with offloads and one without, each give their
//! own Ethernet pseudowire devices their own data path. Which path a session took is visible
//! on its TAP: the offload path turns on TCP segmentation offload (`TUNSETOFFLOAD`), the
//! simple path leaves it off.

use std::time::Duration;

use ul2tp_api::{Attrs, Command};
use ul2tp_it::{wait_until, Netns};
use ul2tpd::{DataPathConfig, Embedded};

/// Tunnel `tid` over UDP on loopback (ports `port` -> `port + 1`) with an Ethernet session
/// whose device is `ifname`.
fn pseudowire(e: &Embedded, tid: u32, port: u16, ifname: &str) {
    let mut c = ul2tp::Client::from_stream(e.connect().expect("connect"));
    let t = ul2tp_it::loopback_tunnel(tid, tid + 1, port);
    c.request(Command::TunnelCreate, t, false).expect("tunnel");
    let s = Attrs {
        ifname: Some(ifname.to_string()),
        ..ul2tp_it::eth_session(tid, 1)
    };
    c.request(Command::SessionCreate, s, false)
        .expect("session");
}

#[test]
fn two_embedded_daemons_keep_their_own_offload_setting() {
    let ns = Netns::new("dpcfg");
    let (plain_tso, offload_tso, configs) = ns.run_in(|| {
        let plain = Embedded::start_with(
            1,
            DataPathConfig {
                offload: false,
                ..DataPathConfig::default()
            },
        )
        .expect("embedded daemon without offloads");
        let offload = Embedded::start_with(1, DataPathConfig::default()).expect("embedded");
        // The daemon without offloads gets its session first: had it read a setting shared
        // with the other one, its TAP would have TSO on by the time the second one has.
        pseudowire(&plain, 10, 5100, "pwplain");
        pseudowire(&offload, 20, 5200, "pwoffl");
        let tso = |dev: &str| ul2tp_sys::link::tso_enabled(dev).expect("SIOCETHTOOL");
        let on = wait_until(Duration::from_secs(10), || tso("pwoffl"));
        (tso("pwplain"), on, (plain.datapath(), offload.datapath()))
    });
    assert!(offload_tso, "the offload daemon's TAP has TSO on");
    assert!(!plain_tso, "the other daemon's TAP keeps TSO off");
    assert!(!configs.0.offload && configs.1.offload, "{configs:?}");
}
