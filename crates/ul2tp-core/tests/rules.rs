//! Id rules, errnos, lifecycle and dump order (docs/reference/kernel.md §4.5–§4.8, §5).

use ul2tp_api::{pw_type, Errno};
use ul2tp_core::PwType;
use ul2tp_core::{
    Cookie, Encap, L2SpecType, Registry, RxOutcome, SessionParams, SocketId, TunnelParams, Version,
};
use ul2tp_wire::data::{DefaultSublayer, V3SessionHeader};

fn tp(tid: u32, version: Version, encap: Encap, sock: u64) -> TunnelParams {
    TunnelParams {
        tunnel_id: tid,
        peer_tunnel_id: tid + 1000,
        version,
        encap,
        socket: SocketId(sock),
    }
}

fn eth(sid: u32) -> SessionParams {
    SessionParams::new(sid, sid + 100, PwType::Ethernet)
}

fn ppp(sid: u32) -> SessionParams {
    SessionParams::new(sid, sid + 100, PwType::Ppp)
}

#[test]
fn tunnel_ids() {
    let r = Registry::new();
    r.tunnel_create(tp(1, Version::V3, Encap::Udp, 1)).unwrap();
    // §5.1: one namespace for both versions and encaps.
    assert_eq!(
        r.tunnel_create(tp(1, Version::V2, Encap::Udp, 2))
            .unwrap_err(),
        Errno::EEXIST
    );
    assert_eq!(
        r.tunnel_create(tp(1, Version::V3, Encap::Ip, 3))
            .unwrap_err(),
        Errno::EEXIST
    );
    // Beyond the kernel: v2 is UDP only with 16-bit ids.
    assert_eq!(
        r.tunnel_create(tp(2, Version::V2, Encap::Ip, 3))
            .unwrap_err(),
        Errno::EPROTONOSUPPORT
    );
    assert_eq!(
        r.tunnel_create(tp(0x10000, Version::V2, Encap::Udp, 3))
            .unwrap_err(),
        Errno::EINVAL
    );
    assert_eq!(r.tunnel_delete(7).unwrap_err(), Errno::ENODEV);
    assert!(r.tunnel_delete(1).unwrap().is_empty());
    assert_eq!(r.tunnel_delete(1).unwrap_err(), Errno::ENODEV);
    assert!(r.tunnel_get(1).is_none());
}

#[test]
fn session_create_validation_order() {
    let r = Registry::new();
    r.tunnel_create(tp(2, Version::V2, Encap::Udp, 1)).unwrap();
    r.tunnel_create(tp(3, Version::V3, Encap::Udp, 2)).unwrap();
    // No tunnel.
    assert_eq!(r.session_create(9, ppp(1)).unwrap_err(), Errno::ENODEV);
    // 1. pw_type >= 12 is EINVAL, before the v2 check.
    assert_eq!(
        r.session_create(2, SessionParams::new(1, 1, PwType::from(12)))
            .unwrap_err(),
        Errno::EINVAL
    );
    // 2. v2 + non-PPP.
    assert_eq!(
        r.session_create(2, eth(1)).unwrap_err(),
        Errno::EPROTONOSUPPORT
    );
    // 5. no implementation.
    for pw in [pw_type::NONE, pw_type::PPP_AC, pw_type::IP, 1, 11] {
        assert_eq!(
            r.session_create(3, SessionParams::new(1, 1, PwType::from(pw)))
                .unwrap_err(),
            Errno::EPROTONOSUPPORT,
            "pw {pw}"
        );
    }
    // Beyond the kernel: a v3 sublayer the data path cannot carry is refused rather than
    // treated as none.
    for l2spec in [L2SpecType::Atm, L2SpecType::Mpt, L2SpecType::from(9)] {
        let mut p = SessionParams::new(1, 1, PwType::Ethernet);
        p.l2spec_type = l2spec;
        assert_eq!(
            r.session_create(3, p).unwrap_err(),
            Errno::EINVAL,
            "{l2spec:?}"
        );
    }
    // ETH_VLAN needs a VLAN id 1..=4094.
    let mut v = SessionParams::new(1, 1, PwType::EthernetVlan);
    assert_eq!(r.session_create(3, v.clone()).unwrap_err(), Errno::EINVAL);
    v.vlan_id = Some(4095);
    assert_eq!(r.session_create(3, v.clone()).unwrap_err(), Errno::EINVAL);
    v.vlan_id = Some(10);
    r.session_create(3, v).unwrap();
    // v2 16-bit session ids (beyond the kernel).
    assert_eq!(
        r.session_create(2, ppp(0x10000)).unwrap_err(),
        Errno::EINVAL
    );
    // Cookies longer than 8 bytes cannot be built.
    assert_eq!(Cookie::new(&[0; 9]).unwrap_err(), Errno::ERANGE);
    assert_eq!(Cookie::new(&[1, 2, 3]).unwrap().as_bytes(), &[1, 2, 3]);
}

#[test]
fn v2_session_ids_per_tunnel() {
    let r = Registry::new();
    r.tunnel_create(tp(2, Version::V2, Encap::Udp, 1)).unwrap();
    r.tunnel_create(tp(4, Version::V2, Encap::Udp, 1)).unwrap();
    let s = r.session_create(2, ppp(5)).unwrap();
    // v2 sessions never use cookies or a sublayer.
    assert_eq!(s.l2spec_type(), L2SpecType::None);
    assert_eq!(r.session_create(2, ppp(5)).unwrap_err(), Errno::EEXIST);
    r.session_create(4, ppp(5)).unwrap();
    assert_eq!(r.sessions().len(), 2);
}

#[test]
fn v3_session_ids() {
    let r = Registry::new();
    r.tunnel_create(tp(10, Version::V3, Encap::Udp, 1)).unwrap();
    r.tunnel_create(tp(11, Version::V3, Encap::Udp, 2)).unwrap();
    r.tunnel_create(tp(12, Version::V3, Encap::Udp, 2)).unwrap();
    r.tunnel_create(tp(20, Version::V3, Encap::Ip, 3)).unwrap();
    r.session_create(10, eth(7)).unwrap();
    // UDP tunnels may share an id (collision list) ...
    r.session_create(11, eth(7)).unwrap();
    // ... but not within one tunnel, nor (beyond the kernel) on the same socket.
    assert_eq!(r.session_create(11, eth(7)).unwrap_err(), Errno::EEXIST);
    assert_eq!(r.session_create(12, eth(7)).unwrap_err(), Errno::EEXIST);
    // An IP-encap tunnel may not reuse an id held anywhere ...
    assert_eq!(r.session_create(20, eth(7)).unwrap_err(), Errno::EEXIST);
    // ... and a UDP tunnel may not reuse an id held by an IP-encap session.
    r.session_create(20, eth(8)).unwrap();
    assert_eq!(r.session_create(10, eth(8)).unwrap_err(), Errno::EEXIST);
    // Interface names are unique.
    let mut a = eth(30);
    a.ifname = Some("l2tpeth0".into());
    r.session_create(10, a.clone()).unwrap();
    a.session_id = 31;
    assert_eq!(r.session_create(10, a).unwrap_err(), Errno::EEXIST);
    assert_eq!(r.session_by_ifname("l2tpeth0").unwrap().session_id(), 30);
    // Delete / get: ENODEV when absent, and idempotent.
    assert_eq!(r.session_delete(10, 99).unwrap_err(), Errno::ENODEV);
    r.session_delete(10, 30).unwrap();
    assert_eq!(r.session_delete(10, 30).unwrap_err(), Errno::ENODEV);
    assert!(r.session_by_ifname("l2tpeth0").is_none());
    // The id is free again after the delete.
    r.session_create(12, eth(30)).unwrap();
}

#[test]
fn dump_order() {
    let r = Registry::new();
    for t in [5, 1, 3] {
        r.tunnel_create(tp(t, Version::V3, Encap::Udp, u64::from(t)))
            .unwrap();
    }
    for (t, s) in [(3, 9), (1, 4), (3, 2), (5, 1), (1, 3)] {
        r.session_create(t, eth(s + t * 100)).unwrap();
    }
    let tids: Vec<u32> = r.tunnels().iter().map(|t| t.tunnel_id()).collect();
    assert_eq!(tids, [1, 3, 5]);
    let sids: Vec<(u32, u32)> = r
        .sessions()
        .iter()
        .map(|s| (s.tunnel_id(), s.session_id()))
        .collect();
    assert_eq!(sids, [(1, 103), (1, 104), (3, 302), (3, 309), (5, 501)]);
}

fn v3_udp(sid: u32, seq: Option<u32>, payload: &[u8]) -> Vec<u8> {
    let h = V3SessionHeader {
        session_id: sid,
        cookie: &[],
        sublayer: Some(DefaultSublayer { seq }),
    };
    let mut b = vec![0u8; h.header_len_udp()];
    h.emit_udp(&mut b).unwrap();
    b.extend_from_slice(payload);
    b
}

#[test]
fn tunnel_delete_purges_sessions_and_counts() {
    let r = Registry::new();
    let t = r.tunnel_create(tp(1, Version::V3, Encap::Udp, 1)).unwrap();
    let mut p = eth(5);
    p.reorder_timeout_ms = 100;
    let s = r.session_create(1, p).unwrap();
    r.session_create(1, eth(6)).unwrap();
    let now = ul2tp_core::Timestamp::from_millis(1);
    let frame = [0u8; 20];
    let mut n = 0;
    // ns 0 delivered; 2 and 3 held (waiting for 1).
    for ns in [0, 2, 3] {
        let o = r.receive(
            SocketId(1),
            Encap::Udp,
            &v3_udp(5, Some(ns), &frame),
            now,
            &mut |_, _| n += 1,
        );
        assert_eq!(o, RxOutcome::Consumed);
    }
    assert_eq!(n, 1);
    assert_eq!(s.reorder_queue_len(), 2);
    let gone = r.tunnel_delete(1).unwrap();
    assert_eq!(
        gone.iter().map(|s| s.session_id()).collect::<Vec<_>>(),
        [5, 6]
    );
    assert!(gone.iter().all(|s| s.is_dead()));
    assert!(t.is_dead());
    assert_eq!(s.stats().rx_errors, 2, "purged packets count as rx_errors");
    assert_eq!(s.reorder_queue_len(), 0);
    assert!(r.sessions().is_empty());
    assert!(r.session_get(1, 5).is_none());
    // Data for the deleted session goes to the socket like any unknown session.
    let o = r.receive(
        SocketId(1),
        Encap::Udp,
        &v3_udp(5, Some(1), &frame),
        now,
        &mut |_, _| n += 1,
    );
    assert_eq!(o, RxOutcome::ToSocket);
    // A worker still holding the session cannot deliver through it.
    assert_eq!(r.session_create(1, eth(7)).unwrap_err(), Errno::ENODEV);
}

#[test]
fn trace_control() {
    let r = Registry::new();
    r.tunnel_create(tp(1, Version::V3, Encap::Udp, 1)).unwrap();
    r.session_create(1, eth(5)).unwrap();
    assert_eq!(r.set_trace(2, None, true).unwrap_err(), Errno::ENODEV);
    assert_eq!(r.set_trace(1, Some(6), true).unwrap_err(), Errno::ENODEV);
    r.set_trace(1, Some(5), true).unwrap();
    assert!(r.session_get(1, 5).unwrap().trace_enabled());
    assert!(!r.tunnel_get(1).unwrap().trace_enabled());
}

#[test]
fn socket_close_deletes_its_tunnels() {
    let r = Registry::new();
    r.tunnel_create(tp(1, Version::V3, Encap::Udp, 1)).unwrap();
    r.tunnel_create(tp(2, Version::V2, Encap::Udp, 1)).unwrap();
    r.tunnel_create(tp(3, Version::V3, Encap::Udp, 2)).unwrap();
    r.session_create(1, eth(5)).unwrap();
    r.session_create(2, ppp(6)).unwrap();
    r.session_create(3, eth(7)).unwrap();
    let ids: Vec<u32> = r
        .tunnels_on_socket(SocketId(1))
        .iter()
        .map(|t| t.tunnel_id())
        .collect();
    assert_eq!(ids, [1, 2]);
    let gone = r.socket_closed(SocketId(1));
    assert_eq!(
        gone.iter().map(|(t, s)| (*t, s.len())).collect::<Vec<_>>(),
        [(1, 1), (2, 1)]
    );
    assert_eq!(r.tunnels().len(), 1);
    assert_eq!(r.sessions().len(), 1);
    assert!(r.socket_closed(SocketId(1)).is_empty(), "idempotent");
}

#[test]
fn lifecycle_trace_events() {
    use std::sync::{Arc, Mutex};
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let r = Registry::new();
    let l = log.clone();
    r.set_trace_sink(Some(Arc::new(move |e: &ul2tp_core::TraceEvent| {
        l.lock().unwrap().push(format!("{}: {e}", e.name()))
    })));
    r.tunnel_create(tp(1, Version::V3, Encap::Ip, 1)).unwrap();
    r.set_trace_default(true);
    r.tunnel_create(tp(2, Version::V3, Encap::Udp, 1)).unwrap();
    r.session_create(2, eth(5)).unwrap();
    r.tunnel_delete(2).unwrap();
    r.tunnel_delete(1).unwrap();
    assert_eq!(
        log.lock().unwrap().clone(),
        [
            "register_tunnel: tunl 2: type=unmanaged encap=UDP version=L2TPv3 tid=2 ptid=1002 fd=0",
            "register_session: sess 2/5: pseudowire=ETH sid=5 psid=105 tid=2 ptid=1002",
            "delete_tunnel: tunl 2",
            "delete_session: sess 2/5",
            "free_session: sess 2/5",
            "free_tunnel: tunl 2",
        ]
    );
}

/// Beyond the kernel: caps on tunnels and sessions, ENOSPC when reached, checked after the
/// id checks (EEXIST first); deleting makes room again, per tunnel and in all.
#[test]
fn limits_refuse_with_enospc() {
    let r = Registry::new();
    r.set_limits(ul2tp_core::Limits {
        max_tunnels: Some(2),
        max_sessions: Some(3),
        max_sessions_per_tunnel: Some(2),
    });
    r.tunnel_create(tp(1, Version::V3, Encap::Udp, 1)).unwrap();
    r.tunnel_create(tp(2, Version::V3, Encap::Udp, 2)).unwrap();
    assert_eq!(
        r.tunnel_create(tp(1, Version::V3, Encap::Udp, 3))
            .unwrap_err(),
        Errno::EEXIST
    );
    assert_eq!(
        r.tunnel_create(tp(3, Version::V3, Encap::Udp, 3))
            .unwrap_err(),
        Errno::ENOSPC
    );
    r.session_create(1, eth(1)).unwrap();
    r.session_create(1, eth(2)).unwrap();
    assert_eq!(r.session_create(1, eth(1)).unwrap_err(), Errno::EEXIST);
    assert_eq!(
        r.session_create(1, eth(3)).unwrap_err(),
        Errno::ENOSPC,
        "per tunnel"
    );
    r.session_create(2, eth(3)).unwrap();
    assert_eq!(
        r.session_create(2, eth(4)).unwrap_err(),
        Errno::ENOSPC,
        "in all"
    );
    r.session_delete(1, 1).unwrap();
    r.session_create(2, eth(4)).unwrap();
    assert_eq!(r.session_count(), 3);
    // A deleted tunnel gives back its sessions and its own place.
    r.tunnel_delete(2).unwrap();
    assert_eq!(r.session_count(), 1);
    r.tunnel_create(tp(3, Version::V3, Encap::Udp, 3)).unwrap();
    r.session_create(3, eth(5)).unwrap();
    r.session_create(3, eth(6)).unwrap();
    assert_eq!(r.session_create(1, eth(7)).unwrap_err(), Errno::ENOSPC);
    // No caps.
    r.set_limits(ul2tp_core::Limits::default());
    r.session_create(1, eth(7)).unwrap();
    r.session_create(1, eth(8)).unwrap();
}
