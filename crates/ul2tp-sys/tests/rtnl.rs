//! Interface addresses over rtnetlink inside private network namespaces.

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, UdpSocket};
use std::time::Duration;

use ul2tp_sys::netns::block_on_in_new_netns;
use ul2tp_sys::rtnl::{add_address, delete_address, IfAddr};
use ul2tp_sys::tap::{Tap, Tun, L2TPETH_TEMPLATE, PPP_TEMPLATE};

#[test]
fn ipv6_address_usable_at_once_and_removable() {
    block_on_in_new_netns(|| async {
        let t = Tap::create(None, L2TPETH_TEMPLATE).unwrap();
        t.set_up(true).unwrap();
        let a6: Ipv6Addr = "2001:db8:5::1".parse().unwrap();
        let addr = IfAddr {
            local: IpAddr::V6(a6),
            prefix_len: 64,
            peer: None,
        };
        add_address(t.name(), addr).unwrap();
        assert_eq!(
            add_address(t.name(), addr).unwrap_err().raw_os_error(),
            Some(libc::EEXIST)
        );
        // Bindable immediately (no DAD tentative state).
        drop(UdpSocket::bind((a6, 0)).unwrap());
        delete_address(t.name(), addr).unwrap();
        assert_eq!(
            UdpSocket::bind((a6, 0)).unwrap_err().kind(),
            ErrorKind::AddrNotAvailable
        );
        assert!(delete_address(t.name(), addr).is_err());
        assert!(add_address("no-such-dev0", addr).is_err());
    })
    .unwrap();
}

#[test]
fn point_to_point_peer_on_a_ppp_unit() {
    block_on_in_new_netns(|| async {
        let u = Tun::create(None, PPP_TEMPLATE).unwrap();
        let local = Ipv4Addr::new(10, 64, 0, 1);
        let peer = Ipv4Addr::new(10, 64, 9, 9);
        add_address(
            u.name(),
            IfAddr {
                local: local.into(),
                prefix_len: 32,
                peer: Some(peer.into()),
            },
        )
        .unwrap();
        u.set_up(true).unwrap();
        // The peer is reachable through the unit: a datagram to it comes out of the TUN.
        let s = UdpSocket::bind((local, 0)).unwrap();
        s.send_to(b"to the ppp peer", (peer, 7)).unwrap();
        let mut p = [0u8; 2048];
        loop {
            let n = tokio::time::timeout(Duration::from_secs(5), u.recv(&mut p))
                .await
                .unwrap()
                .unwrap();
            if n >= 20 && p[0] >> 4 == 4 && p[9] == 17 {
                assert_eq!(&p[12..16], &local.octets());
                assert_eq!(&p[16..20], &peer.octets());
                break;
            }
        }
    })
    .unwrap();
}
