//! A session cleared because its PPP link went down: the CDN carries the Result Code with an
//! Error Code and message, and the RFC 3145 PPP Disconnect Cause Code AVP (attribute 46, M=0);
//! tshark decodes it, and the peer clears the session with the sender's result.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use ul2tp_control::sim::NetConfig;
use ul2tp_control::{CdnResult, DownReason, Encap, ErrorCode, Event, SessionConfig, Version};
use ul2tp_wire::avp::PppDisconnectCause;

#[test]
fn cdn_carries_ppp_disconnect_cause() {
    for version in [Version::V2, Version::V3] {
        let a = cfg(version, "lac");
        let mut sim = pair(
            NetConfig::perfect(),
            Encap::Udp,
            7,
            a.clone(),
            cfg(version, "lns"),
        );
        let (tid, sids) = establish(
            &mut sim,
            a,
            1,
            &SessionConfig::default(),
            Duration::from_secs(60),
        );
        let cause = PppDisconnectCause {
            code: PppDisconnectCause::AUTH_FAILED,
            protocol: 0xc223,
            direction: PppDisconnectCause::AT_LOCAL,
            message: b"CHAP authentication failed".to_vec(),
        };
        let now = sim.now;
        sim.ep(A)
            .close_session_ppp(
                now,
                tid,
                sids[0],
                CdnResult::GeneralError,
                Some((ErrorCode::VendorSpecific, "PPP authentication failed")),
                Some(&cause),
            )
            .unwrap();
        sim.run_for(Duration::from_secs(5));
        // Both sides cleared the session; the peer with our result.
        assert_eq!(session_downs(&sim, A), 1);
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
        let peer_down: Vec<_> = sim.nodes[B]
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::SessionDown { reason, .. } => Some(reason.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(
            peer_down,
            vec![DownReason::Peer {
                result_code: CdnResult::GeneralError.get(),
                error_code: Some(6),
                message: "PPP authentication failed".into(),
            }],
            "{version:?}"
        );
        // Closing again: the session is gone.
        let now = sim.now;
        assert!(sim
            .ep(A)
            .close_session_ppp(now, tid, sids[0], CdnResult::GeneralError, None, None)
            .is_err());

        let path = std::env::temp_dir().join(format!(
            "ul2tp-ppp-cause-{}-{version:?}.pcap",
            std::process::id()
        ));
        std::fs::write(&path, sim.pcap_bytes()).unwrap();
        let out = Command::new("tshark")
            .arg("-r")
            .arg(&path)
            .args([
                "-Y",
                "l2tp.avp.message_type == 14",
                "-T",
                "fields",
                "-e",
                "l2tp.result_code",
                "-e",
                "l2tp.avp.disconnect_code",
                "-e",
                "l2tp.avp.control_protocol_number",
                "-e",
                "l2tp.avp.cause_code_direction",
                "-e",
                "l2tp.avp.cause_code_message",
            ])
            .output()
            .expect("tshark runs");
        let _ = std::fs::remove_file(&path);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            text.trim(),
            "2\t16\t49699\t2\tCHAP authentication failed",
            "{version:?}: CDN as tshark decodes it"
        );
    }
}
