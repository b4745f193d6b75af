//! The receive path's classification and lookup rules (docs/reference/kernel.md §1.2–§1.7, §5.3), shared
//! sockets, ETH_VLAN and the MTU helper.

use std::sync::Arc;
use ul2tp_core::Timestamp;

use ul2tp_core::PwType;
use ul2tp_core::{
    vlan, Cookie, DropReason, Encap, Registry, RxOutcome, Session, SessionParams, SocketId,
    TunnelParams, Version,
};
use ul2tp_wire::data::{V2DataHeader, V3SessionHeader};

fn tunnel(r: &Registry, tid: u32, version: Version, encap: Encap, sock: u64) {
    r.tunnel_create(TunnelParams {
        tunnel_id: tid,
        peer_tunnel_id: tid + 1,
        version,
        encap,
        socket: SocketId(sock),
    })
    .unwrap();
}

fn eth_none(sid: u32) -> SessionParams {
    let mut p = SessionParams::new(sid, sid + 1, PwType::Ethernet);
    p.l2spec_type = ul2tp_core::L2SpecType::None;
    p
}

fn v3_udp(sid: u32, cookie: &[u8], body: &[u8]) -> Vec<u8> {
    let h = V3SessionHeader {
        session_id: sid,
        cookie,
        sublayer: None,
    };
    let mut b = vec![0u8; h.header_len_udp()];
    h.emit_udp(&mut b).unwrap();
    b.extend_from_slice(body);
    b
}

fn v3_ip(sid: u32, cookie: &[u8], body: &[u8]) -> Vec<u8> {
    let h = V3SessionHeader {
        session_id: sid,
        cookie,
        sublayer: None,
    };
    let mut b = vec![0u8; h.header_len_ip()];
    h.emit_ip(&mut b).unwrap();
    b.extend_from_slice(body);
    b
}

const FRAME: [u8; 20] = [7u8; 20];

fn rx(r: &Registry, sock: u64, t: Encap, p: &[u8]) -> (RxOutcome, Vec<(u32, Vec<u8>)>) {
    let mut got = Vec::new();
    let o = r.receive(
        SocketId(sock),
        t,
        p,
        Timestamp::from_millis(1),
        &mut |s: &Arc<Session>, f| got.push((s.session_id(), f.to_vec())),
    );
    (o, got)
}

#[test]
fn udp_classification_to_socket() {
    let r = Registry::new();
    tunnel(&r, 1, Version::V3, Encap::Udp, 1);
    let s = r.session_create(1, eth_none(5)).unwrap();
    // Control (T bit).
    let mut ctl = vec![0xc8, 0x03, 0, 12];
    ctl.extend_from_slice(&[0; 8]);
    assert_eq!(rx(&r, 1, Encap::Udp, &ctl).0, RxOutcome::ToSocket);
    // Short: a valid 13-byte data packet stays on the socket.
    let short = v3_udp(5, &[], &[1; 5]);
    assert_eq!(short.len(), 13);
    assert_eq!(rx(&r, 1, Encap::Udp, &short).0, RxOutcome::ToSocket);
    // Unknown session.
    assert_eq!(
        rx(&r, 1, Encap::Udp, &v3_udp(6, &[], &FRAME)).0,
        RxOutcome::ToSocket
    );
    // Known session: consumed.
    let (o, got) = rx(&r, 1, Encap::Udp, &v3_udp(5, &[], &FRAME));
    assert_eq!(o, RxOutcome::Consumed);
    assert_eq!(got, [(5, FRAME.to_vec())]);
    // Version nibble 4 goes the v3 way, mismatches the tunnel: rx_invalid on the tunnel.
    let mut bad = v3_udp(5, &[], &FRAME);
    bad[1] = 0x04;
    assert_eq!(rx(&r, 1, Encap::Udp, &bad).0, RxOutcome::ToSocket);
    assert_eq!(s.tunnel().stats().rx_invalid, 1);
    assert_eq!(s.stats().rx_invalid, 0, "rx_invalid is a tunnel counter");
}

#[test]
fn missing_cookie_bytes_are_invalid() {
    let r = Registry::new();
    tunnel(&r, 1, Version::V3, Encap::Udp, 1);
    let mut p = SessionParams::new(5, 6, PwType::Ethernet);
    p.peer_cookie = Cookie::new(&[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
    let s = r.session_create(1, p).unwrap();
    // 14 bytes: flags, reserved, session id, 6 of 8 cookie bytes (no sublayer either).
    let pk = v3_udp(5, &[1, 2, 3, 4, 5, 6], &[]);
    assert_eq!(pk.len(), 14);
    assert_eq!(rx(&r, 1, Encap::Udp, &pk).0, RxOutcome::ToSocket);
    assert_eq!(s.tunnel().stats().rx_invalid, 1);
    // Full cookie but wrong: a cookie discard.
    let (o, _) = rx(
        &r,
        1,
        Encap::Udp,
        &v3_udp(5, &[1, 2, 3, 4, 5, 6, 7, 9], &[0, 0, 0, 0, 9, 9]),
    );
    assert_eq!(o, RxOutcome::Dropped(DropReason::CookieMismatch));
    assert_eq!((s.stats().rx_cookie_discards, s.stats().rx_errors), (1, 1));
}

#[test]
fn ip_encap_rules() {
    let r = Registry::new();
    tunnel(&r, 1, Version::V3, Encap::Ip, 1);
    let mut p = eth_none(5);
    p.peer_cookie = Cookie::new(&[9, 9, 9, 9]).unwrap();
    let s = r.session_create(1, p).unwrap();
    // Control: session id 0, then T|L header.
    let mut ctl = vec![0, 0, 0, 0, 0xc8, 0x03, 0, 12];
    ctl.extend_from_slice(&[0; 8]);
    assert_eq!(rx(&r, 1, Encap::Ip, &ctl).0, RxOutcome::ToSocket);
    // Malformed control and unknown sessions are dropped silently.
    assert_eq!(
        rx(&r, 1, Encap::Ip, &ctl[..10]).0,
        RxOutcome::Dropped(DropReason::Malformed)
    );
    assert_eq!(
        rx(&r, 1, Encap::Ip, &v3_ip(6, &[9, 9, 9, 9], &FRAME)).0,
        RxOutcome::Dropped(DropReason::UnknownSession)
    );
    // Truncated cookie: dropped, nothing counted.
    assert_eq!(
        rx(&r, 1, Encap::Ip, &[0, 0, 0, 5, 9, 9]).0,
        RxOutcome::Dropped(DropReason::Malformed)
    );
    assert_eq!(s.stats(), ul2tp_core::Stats::default());
    // Any socket: IP lookups ignore where the packet came from (§5.3).
    let pk = v3_ip(5, &[9, 9, 9, 9], &FRAME);
    let (o, got) = rx(&r, 42, Encap::Ip, &pk);
    assert_eq!(o, RxOutcome::Consumed);
    assert_eq!(got, [(5, FRAME.to_vec())]);
    assert_eq!(s.stats().rx_bytes, pk.len() as u64);
    // The same data over UDP with the right version also finds the session (netns-wide).
    let (o, _) = rx(&r, 1, Encap::Udp, &v3_udp(5, &[9, 9, 9, 9], &FRAME));
    assert_eq!(o, RxOutcome::Consumed);
}

#[test]
fn v3_udp_collisions_resolved_by_socket() {
    let r = Registry::new();
    tunnel(&r, 1, Version::V3, Encap::Udp, 1);
    tunnel(&r, 2, Version::V3, Encap::Udp, 2);
    let a = r.session_create(1, eth_none(5)).unwrap();
    let b = r.session_create(2, eth_none(5)).unwrap();
    let pk = v3_udp(5, &[], &FRAME);
    rx(&r, 1, Encap::Udp, &pk);
    rx(&r, 2, Encap::Udp, &pk);
    rx(&r, 2, Encap::Udp, &pk);
    assert_eq!((a.stats().rx_packets, b.stats().rx_packets), (1, 2));
    // A third socket cannot choose: left to the socket.
    assert_eq!(rx(&r, 3, Encap::Udp, &pk).0, RxOutcome::ToSocket);
    // A collided id never matches over IP.
    assert_eq!(
        rx(&r, 1, Encap::Ip, &v3_ip(5, &[], &FRAME)).0,
        RxOutcome::Dropped(DropReason::UnknownSession)
    );
    // After deleting one, the single remaining session takes the id from any socket.
    r.session_delete(1, 5).unwrap();
    assert_eq!(rx(&r, 3, Encap::Udp, &pk).0, RxOutcome::Consumed);
    assert_eq!(b.stats().rx_packets, 3);
}

#[test]
fn v2_tunnels_sharing_a_socket() {
    let r = Registry::new();
    tunnel(&r, 100, Version::V2, Encap::Udp, 1);
    tunnel(&r, 200, Version::V2, Encap::Udp, 1);
    let a = r
        .session_create(100, SessionParams::new(7, 8, PwType::Ppp))
        .unwrap();
    let b = r
        .session_create(200, SessionParams::new(7, 8, PwType::Ppp))
        .unwrap();
    let pk = |tid: u16, extra: Option<u16>| {
        let h = V2DataHeader {
            length: Some(0),
            tunnel_id: tid,
            session_id: 7,
            offset_size: extra,
            ..Default::default()
        };
        let mut v = vec![0u8; h.header_len()];
        h.emit(&mut v).unwrap();
        // No FF 03 here: accepted as is (§1.7).
        v.extend_from_slice(&[0xc0, 0x21, 1, 1, 0, 4, 0, 0]);
        v
    };
    let (o, got) = rx(&r, 1, Encap::Udp, &pk(200, None));
    assert_eq!(o, RxOutcome::Consumed);
    assert_eq!(got, [(7, vec![0xc0, 0x21, 1, 1, 0, 4, 0, 0])]);
    let (_, got) = rx(&r, 9, Encap::Udp, &pk(100, Some(2)));
    assert_eq!(
        got,
        [(7, vec![0xc0, 0x21, 1, 1, 0, 4, 0, 0])],
        "offset pad skipped"
    );
    assert_eq!((a.stats().rx_packets, b.stats().rx_packets), (1, 1));
    // Offset running past the end: a session discard.
    let mut over = pk(100, Some(0));
    over.truncate(10);
    over[9] = 40;
    let (o, _) = rx(&r, 1, Encap::Udp, &[&over[..], &[0; 4]].concat());
    assert_eq!(o, RxOutcome::Dropped(DropReason::Malformed));
    assert_eq!(a.stats().rx_errors, 1);
    // Unknown v2 tunnel id: to the socket.
    assert_eq!(rx(&r, 1, Encap::Udp, &pk(300, None)).0, RxOutcome::ToSocket);
}

#[test]
fn eth_vlan_pseudowire() {
    let r = Registry::new();
    tunnel(&r, 1, Version::V3, Encap::Udp, 1);
    let mut p = eth_none(5);
    p.pw_type = PwType::EthernetVlan;
    p.vlan_id = Some(100);
    let s = r.session_create(1, p).unwrap();
    let mut untagged: Vec<u8> = (0..12).collect();
    untagged.extend_from_slice(&[0x08, 0x00, 0x45, 0, 0, 20]);
    // Transmit: tag inserted after the MACs, header in front.
    let mut buf = vec![0u8; 64 + untagged.len()];
    buf[64..].copy_from_slice(&untagged);
    let (a, b) = s.encap(&mut buf, 64, untagged.len()).unwrap();
    assert_eq!(b - a, 8 + 4 + untagged.len());
    assert_eq!(s.encap_overhead(), 12);
    let wire = buf[a..b].to_vec();
    assert_eq!(&wire[8 + 12..8 + 16], &[0x81, 0x00, 0x00, 100]);
    assert_eq!(vlan::tag_vid(&wire[8..]), Some(100));
    // Receive: the peer sends the same shape to our id; tag checked and removed.
    let mut back = wire.clone();
    back[4..8].copy_from_slice(&5u32.to_be_bytes());
    let (o, got) = rx(&r, 1, Encap::Udp, &back);
    assert_eq!(o, RxOutcome::Consumed);
    assert_eq!(got, [(5, untagged.clone())]);
    // Another VLAN or no tag: dropped, rx_errors.
    back[8 + 15] = 101;
    assert_eq!(
        rx(&r, 1, Encap::Udp, &back).0,
        RxOutcome::Dropped(DropReason::VlanMismatch)
    );
    assert_eq!(
        rx(&r, 1, Encap::Udp, &v3_udp(5, &[], &untagged)).0,
        RxOutcome::Dropped(DropReason::VlanMismatch)
    );
    assert_eq!((s.stats().rx_errors, s.stats().rx_packets), (2, 1));
    // MTU accounts for the tag: 1500 - (8 + 8 + 14 + 20 + 4).
    assert_eq!(s.eth_mtu(false, Some(1500)), 1446);
}

#[test]
fn session_mtu_follows_kernel_table() {
    let r = Registry::new();
    tunnel(&r, 1, Version::V3, Encap::Udp, 1);
    tunnel(&r, 2, Version::V3, Encap::Ip, 2);
    let udp = r
        .session_create(1, SessionParams::new(5, 5, PwType::Ethernet))
        .unwrap();
    let ip = r
        .session_create(2, SessionParams::new(6, 6, PwType::Ethernet))
        .unwrap();
    assert_eq!(udp.eth_mtu(false, Some(1500)), 1446);
    assert_eq!(udp.eth_mtu(true, Some(1500)), 1426);
    assert_eq!(ip.eth_mtu(false, None), 1458);
    assert_eq!(ip.eth_mtu(true, Some(1500)), 1438);
}

#[test]
fn ppp_over_v3() {
    let r = Registry::new();
    tunnel(&r, 1, Version::V3, Encap::Ip, 1);
    let s = r
        .session_create(1, SessionParams::new(5, 9, PwType::Ppp))
        .unwrap();
    let mut buf = [0u8; 64];
    buf[32..36].copy_from_slice(&[0x00, 0x21, 0x45, 0x00]);
    let (a, b) = s.encap(&mut buf, 32, 4).unwrap();
    // Session id, all-zero default sublayer, FF 03, payload.
    assert_eq!(
        &buf[a..b],
        &[0, 0, 0, 9, 0, 0, 0, 0, 0xff, 0x03, 0x00, 0x21, 0x45, 0x00]
    );
    let mut back = buf[a..b].to_vec();
    back[3] = 5;
    let (_, got) = rx(&r, 1, Encap::Ip, &back);
    assert_eq!(got, [(5, vec![0x00, 0x21, 0x45, 0x00])]);
}
