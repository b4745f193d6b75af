//! The captures of simulated exchanges decode in tshark as L2TP with the expected message types
//! and no malformed packets. Needs `tshark` on PATH (.ci/run installs it).

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use common::*;
use ul2tp_control::sim::{NetConfig, Sim};
use ul2tp_control::{CdnResult, Encap, SessionConfig, StopCcnResult, Version};

fn tshark(args: &[&str]) -> String {
    let out = Command::new("tshark")
        .args(args)
        .output()
        .expect("tshark runs");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn scenario(version: Version, encap: Encap, seed: u64) -> Sim {
    let mut a = cfg(version, "lac");
    let mut b = cfg(version, "lns");
    for c in [&mut a, &mut b] {
        c.secret = Some(b"pcap-secret".to_vec());
        c.hide_avps = true;
        c.send_challenge = true;
    }
    let mut sim = pair(NetConfig::lossy(0.1), encap, seed, a.clone(), b);
    let (tid, sids) = establish(
        &mut sim,
        a,
        50,
        &SessionConfig::default(),
        Duration::from_secs(3600),
    );
    let now = sim.now;
    sim.ep(A)
        .close_session(now, tid, sids[0], CdnResult::Administrative)
        .unwrap();
    sim.run_for(Duration::from_secs(70)); // includes a HELLO
    let now = sim.now;
    sim.ep(A)
        .close_tunnel(now, tid, StopCcnResult::GeneralRequest)
        .unwrap();
    sim.run_for(Duration::from_secs(60));
    assert!(sim.violations().is_empty());
    sim
}

fn check(version: Version, encap: Encap, seed: u64, expected: &[u16]) {
    let sim = scenario(version, encap, seed);
    let path = std::env::temp_dir().join(format!(
        "ul2tp-control-{}-{version:?}-{encap:?}.pcap",
        std::process::id()
    ));
    std::fs::write(&path, sim.pcap_bytes()).unwrap();
    let p = path.to_str().unwrap();
    let total = tshark(&["-r", p, "-T", "fields", "-e", "frame.number"])
        .lines()
        .count();
    assert_eq!(total as u64, sim.sent, "every datagram is in the capture");
    let l2tp = tshark(&["-r", p, "-Y", "l2tp", "-T", "fields", "-e", "frame.number"])
        .lines()
        .count();
    assert_eq!(l2tp, total, "every frame decodes as L2TP");
    let bad = tshark(&[
        "-r",
        p,
        "-Y",
        "_ws.malformed || _ws.expert.severity >= error",
        "-T",
        "fields",
        "-e",
        "frame.number",
    ]);
    assert!(bad.trim().is_empty(), "malformed frames: {bad}");
    let types: BTreeSet<u16> = tshark(&["-r", p, "-T", "fields", "-e", "l2tp.avp.message_type"])
        .lines()
        .filter_map(|l| l.split(',').next()?.trim().parse().ok())
        .collect();
    for t in expected {
        assert!(types.contains(t), "message type {t} missing from {types:?}");
    }
    let versions: BTreeSet<String> = tshark(&["-r", p, "-T", "fields", "-e", "l2tp.version"])
        .lines()
        .map(str::to_string)
        .collect();
    let want = match version {
        Version::V2 => "2",
        Version::V3 => "3",
    };
    assert_eq!(
        versions.into_iter().collect::<Vec<_>>(),
        vec![want.to_string()]
    );
    let _ = std::fs::remove_file(&path);
}

#[test]
fn v2_capture_decodes_in_tshark() {
    // SCCRQ SCCRP SCCCN StopCCN HELLO ICRQ ICRP ICCN CDN
    check(
        Version::V2,
        Encap::Udp,
        71,
        &[1, 2, 3, 4, 6, 10, 11, 12, 14],
    );
}

#[test]
fn v3_udp_capture_decodes_in_tshark() {
    check(
        Version::V3,
        Encap::Udp,
        72,
        &[1, 2, 3, 4, 6, 10, 11, 12, 14, 20],
    );
}

#[test]
fn v3_ip_capture_decodes_in_tshark() {
    check(
        Version::V3,
        Encap::Ip,
        73,
        &[1, 2, 3, 4, 6, 10, 11, 12, 14, 20],
    );
}
