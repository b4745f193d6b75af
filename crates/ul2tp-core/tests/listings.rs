//! The debugfs `l2tp/tunnels` listing (docs/reference/kernel.md §9.1) and `/proc/net/pppol2tp` (§7.8).

use std::net::{SocketAddr, SocketAddrV4};

use ul2tp_core::debug::{debug_tunnels, proc_pppol2tp, PppSessionInfo, TunnelAddrs};
use ul2tp_core::PwType;
use ul2tp_core::{Cookie, Encap, Registry, SessionParams, SocketId, TunnelParams, Version};

fn registry() -> Registry {
    let r = Registry::new();
    r.tunnel_create(TunnelParams {
        tunnel_id: 1000,
        peer_tunnel_id: 2000,
        version: Version::V3,
        encap: Encap::Udp,
        socket: SocketId(1),
    })
    .unwrap();
    r.tunnel_create(TunnelParams {
        tunnel_id: 7,
        peer_tunnel_id: 9,
        version: Version::V2,
        encap: Encap::Udp,
        socket: SocketId(2),
    })
    .unwrap();
    let mut p = SessionParams::new(0x1001, 0x2001, PwType::Ethernet);
    p.cookie = Cookie::new(&[0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77]).unwrap();
    p.peer_cookie = Cookie::new(&[0xab, 0xcd]).unwrap();
    p.ifname = Some("l2tpeth0".into());
    p.reorder_timeout_ms = 50;
    r.session_create(1000, p).unwrap();
    let mut p = SessionParams::new(0x1a, 0x2b, PwType::Ppp);
    p.send_seq = true;
    p.lns_mode = true;
    r.session_create(7, p).unwrap();
    let s = r.session_get(7, 0x1a).unwrap();
    let mut buf = [0u8; 64];
    let (a, b) = s.encap(&mut buf, 32, 4).unwrap();
    s.tx_done(b - a, true);
    r
}

#[test]
fn debugfs_tunnels() {
    let r = registry();
    let text = debug_tunnels(&r, &|t| {
        (t.tunnel_id() == 1000).then(|| TunnelAddrs {
            local: "192.0.2.2:5000".parse::<SocketAddr>().unwrap(),
            peer: "192.0.2.1:5001".parse::<SocketAddr>().unwrap(),
        })
    });
    let want = "\
TUNNEL ID, peer ID from IP to IP
 L2TPv2/L2TPv3, UDP/IP
 sessions session-count, refcnt refcnt/sk->refcnt
 debug tx-pkts/bytes/errs rx-pkts/bytes/errs
  SESSION ID, peer ID, PWTYPE
   refcnt cnt
   offset OFFSET l2specific TYPE/LEN
   [ cookie ]
   [ peer cookie ]
   config mtu/mru/rcvseq/sendseq/dataseq/lns debug reorderto
   nr/ns tx-pkts/bytes/errs rx-pkts/bytes/errs

TUNNEL 7 peer 9
 L2TPv2, UDP
 1 sessions, refcnt 1/2
 00000000 rx 1/16/0 rx 0/0/0
  SESSION 26, peer 43, PPP
   nr 0, ns 1
   refcnt 1
   config 0/0/-/S/-/LNS 00000000 0
   offset 0 l2specific 0/0
   0/1 tx 1/16/0 rx 0/0/0

TUNNEL 1000 peer 2000 from 192.0.2.2 to 192.0.2.1
 source port 5000, dest port 5001
 L2TPv3, UDP
 1 sessions, refcnt 1/2
 00000000 rx 0/0/0 rx 0/0/0
  SESSION 4097, peer 8193, ETH
   refcnt 1
   config 0/0/-/-/-/LAC 00000000 50
   offset 0 l2specific 1/4
   cookie 0011223344556677
   peer cookie abcd
   0/0 tx 0/0/0 rx 0/0/0
   interface l2tpeth0
";
    assert_eq!(text, want);
}

#[test]
fn proc_net_pppol2tp() {
    let r = registry();
    let text = proc_pppol2tp(&r, &|_| PppSessionInfo {
        local: Some("192.0.2.2:1701".parse::<SocketAddrV4>().unwrap()),
        state: 1,
        attached: true,
        interface: Some("ppp0".into()),
    });
    let want = "\
PPPoL2TP driver info, V2.0
TUNNEL name, user-data-ok session-count
 debug tx-pkts/bytes/errs rx-pkts/bytes/errs
  SESSION name, addr/port src-tid/sid dest-tid/sid state user-data-ok
   mtu/mru/rcvseq/sendseq/lns debug reorderto
   nr/ns tx-pkts/bytes/errs rx-pkts/bytes/errs

TUNNEL 'tunl 7', Y 1
 00000000 1/16/0 0/0/0
  SESSION 'sess 7/26' C0000202/1701 0007/001A -> 0009/002B 1 Y
   0/0/-/S/LNS 00000000 0
   0/1 1/16/0 0/0/0
   interface ppp0
";
    assert_eq!(text, want);
}
