//! TAP / TUN devices inside private network namespaces.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use ul2tp_sys::link;
use ul2tp_sys::netns::block_on_in_new_netns;
use ul2tp_sys::tap::{Tap, Tun, L2TPETH_TEMPLATE, PPP_TEMPLATE};

async fn timeout<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(5), f)
        .await
        .expect("timed out")
}

/// IPv4 + UDP (checksum 0) packet.
fn ipv4_udp(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let total = 20 + 8 + payload.len();
    let mut p = vec![
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        1,
        0,
        0,
        64,
        17,
        0,
        0,
    ];
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let c = ul2tp_wire::checksum::checksum(&p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    let ulen = (8 + payload.len()) as u16;
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&ulen.to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}

#[test]
fn template_picks_lowest_free_number() {
    block_on_in_new_netns(|| async {
        let t0 = Tap::create(None, L2TPETH_TEMPLATE).unwrap();
        let t1 = Tap::create(None, L2TPETH_TEMPLATE).unwrap();
        assert_eq!(t0.name(), "l2tpeth0");
        assert_eq!(t1.name(), "l2tpeth1");
        assert_ne!(t0.ifindex(), t1.ifindex());
        assert_eq!(link::ifindex("l2tpeth1").unwrap(), t1.ifindex());
        drop(t0);
        assert!(
            !link::exists("l2tpeth0"),
            "dropping the Tap removes the device"
        );
        let again = Tap::create(None, L2TPETH_TEMPLATE).unwrap();
        assert_eq!(again.name(), "l2tpeth0", "lowest free N is reused");
        let t2 = Tap::create(None, L2TPETH_TEMPLATE).unwrap();
        assert_eq!(t2.name(), "l2tpeth2");
    })
    .unwrap();
}

#[test]
fn explicit_names_and_errors() {
    block_on_in_new_netns(|| async {
        let t = Tap::create(Some("pw-site-a"), L2TPETH_TEMPLATE).unwrap();
        assert_eq!(t.name(), "pw-site-a");
        assert_eq!(
            Tap::create(Some("pw-site-a"), L2TPETH_TEMPLATE)
                .unwrap_err()
                .kind(),
            ErrorKind::AlreadyExists
        );
        assert_eq!(
            Tap::create(Some("lo"), L2TPETH_TEMPLATE)
                .unwrap_err()
                .kind(),
            ErrorKind::AlreadyExists
        );
        for bad in ["", "a/b", "has space", "sixteen-chars-xx", ".."] {
            assert_eq!(
                Tap::create(Some(bad), L2TPETH_TEMPLATE).unwrap_err().kind(),
                ErrorKind::InvalidInput,
                "{bad:?}"
            );
        }
        // Like the kernel, a name with %d given explicitly is a template too.
        let u = Tap::create(Some("site%d"), L2TPETH_TEMPLATE).unwrap();
        assert_eq!(u.name(), "site0");
    })
    .unwrap();
}

#[test]
fn tap_defaults_mtu_and_mac() {
    block_on_in_new_netns(|| async {
        let t = Tap::create(None, L2TPETH_TEMPLATE).unwrap();
        assert!(!t.is_up().unwrap(), "left down like l2tpeth");
        assert_eq!(t.mtu().unwrap(), 1500);
        t.set_mtu(1446).unwrap();
        assert_eq!(t.mtu().unwrap(), 1446);
        assert_eq!(link::mtu(t.name()).unwrap(), 1446);
        let mac = t.mac().unwrap();
        assert_eq!(mac[0] & 0x01, 0, "unicast");
        assert_eq!(mac[0] & 0x02, 0x02, "locally administered (random)");
        let other = Tap::create(None, L2TPETH_TEMPLATE).unwrap();
        assert_ne!(other.mac().unwrap(), mac);
        t.set_up(true).unwrap();
        assert!(t.is_up().unwrap());
        t.set_up(false).unwrap();
        assert!(!t.is_up().unwrap());
        assert!(link::set_mtu("no-such-dev", 1400).is_err());
    })
    .unwrap();
}

#[test]
fn tap_frames_in_and_out() {
    block_on_in_new_netns(|| async {
        let t = Tap::create(None, L2TPETH_TEMPLATE).unwrap();
        let me = Ipv4Addr::new(10, 9, 0, 1);
        let peer = Ipv4Addr::new(10, 9, 0, 2);
        link::set_ipv4_addr(t.name(), me, 24).unwrap();
        t.set_up(true).unwrap();
        let sock = UdpSocket::bind((me, 0)).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let port = sock.local_addr().unwrap().port();

        // Frame written to the TAP ⇒ received by the stack.
        let peer_mac = [0x02, 0, 0, 0, 0, 2];
        let mut frame = t.mac().unwrap().to_vec();
        frame.extend_from_slice(&peer_mac);
        frame.extend_from_slice(&[0x08, 0x00]);
        frame.extend_from_slice(&ipv4_udp(peer, me, 4000, port, b"into the tap"));
        assert_eq!(t.try_send(&frame).unwrap(), frame.len());
        let mut buf = [0u8; 64];
        let (n, from) = sock.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"into the tap");
        assert_eq!(from, SocketAddr::from((peer, 4000)));

        // The stack sending towards the peer ⇒ an ARP request read from the TAP.
        sock.send_to(b"out", (Ipv4Addr::new(10, 9, 0, 3), 9))
            .unwrap();
        let mut f = [0u8; 2048];
        loop {
            let n = timeout(t.recv(&mut f)).await.unwrap();
            if n >= 42 && f[12..14] == [0x08, 0x06] {
                assert_eq!(&f[0..6], &[0xff; 6], "broadcast");
                assert_eq!(&f[6..12], &t.mac().unwrap());
                assert_eq!(&f[20..22], &[0, 1], "ARP request");
                assert_eq!(&f[38..42], &[10, 9, 0, 3], "target protocol address");
                break;
            }
        }
    })
    .unwrap();
}

#[test]
fn tun_for_ppp_units() {
    block_on_in_new_netns(|| async {
        let u = Tun::create(None, PPP_TEMPLATE).unwrap();
        assert_eq!(u.name(), "ppp0");
        assert!(link::is_pointopoint(u.name()).unwrap());
        let me = Ipv4Addr::new(10, 10, 0, 1);
        link::set_ipv4_addr(u.name(), me, 24).unwrap();
        u.set_up(true).unwrap();
        let sock = UdpSocket::bind((me, 0)).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let port = sock.local_addr().unwrap().port();
        let pkt = ipv4_udp(Ipv4Addr::new(10, 10, 0, 2), me, 5000, port, b"ppp in");
        u.send(&pkt).await.unwrap();
        let mut buf = [0u8; 64];
        let (n, _) = sock.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"ppp in");

        sock.send_to(b"ppp out", (Ipv4Addr::new(10, 10, 0, 2), 5000))
            .unwrap();
        let mut p = [0u8; 2048];
        loop {
            let n = timeout(u.recv(&mut p)).await.unwrap();
            // Raw IP, no packet-information prefix (IFF_NO_PI).
            if n >= 28 && p[0] == 0x45 && p[9] == 17 {
                assert_eq!(&p[16..20], &[10, 10, 0, 2]);
                assert_eq!(&p[n - 7..n], b"ppp out");
                break;
            }
        }
        let second = Tun::create(None, PPP_TEMPLATE).unwrap();
        assert_eq!(second.name(), "ppp1");
        drop(u);
        assert!(!link::exists("ppp0"));
    })
    .unwrap();
}

/// A TUN with a vnet header and checksum offload: the frame calls hide the header, the
/// `*_vnet` calls show it, and its offsets count from the IP header (no Ethernet header).
#[test]
fn tun_with_vnet_header() {
    block_on_in_new_netns(|| async {
        use ul2tp_sys::tap::{TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, VNET_HDR_LEN};
        let u = Tun::create_vnet(None, PPP_TEMPLATE).unwrap();
        u.set_offload(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6).unwrap();
        let me = Ipv4Addr::new(10, 11, 0, 1);
        link::set_ipv4_addr(u.name(), me, 24).unwrap();
        u.set_up(true).unwrap();
        let sock = UdpSocket::bind((me, 0)).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let port = sock.local_addr().unwrap().port();
        let pkt = ipv4_udp(Ipv4Addr::new(10, 11, 0, 2), me, 5000, port, b"in");
        u.send(&pkt).await.unwrap();
        let mut buf = [0u8; 64];
        let (n, _) = sock.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"in");

        sock.send_to(b"out", (Ipv4Addr::new(10, 11, 0, 2), 5000))
            .unwrap();
        let mut p = [0u8; 2048];
        loop {
            let n = timeout(u.recv_vnet(&mut p)).await.unwrap();
            let ip = &p[VNET_HDR_LEN..n];
            if ip.len() >= 28 && ip[0] == 0x45 && ip[9] == 17 {
                assert_eq!(&ip[ip.len() - 3..], b"out");
                // The UDP checksum is left to the reader: NEEDS_CSUM, from the UDP header
                // (20 bytes into the IP packet), field at offset 6.
                let le = |i: usize| u16::from_le_bytes([p[i], p[i + 1]]);
                assert_eq!(p[0] & 1, 1, "NEEDS_CSUM");
                assert_eq!((le(6), le(8)), (20, 6), "csum_start, csum_offset");
                break;
            }
        }
    })
    .unwrap();
}

#[test]
fn multi_queue_tap() {
    block_on_in_new_netns(|| async {
        let mut qs = Tap::create_multi_queue(None, L2TPETH_TEMPLATE, 3).unwrap();
        assert_eq!(qs.len(), 3);
        assert!(qs
            .iter()
            .all(|q| q.name() == "l2tpeth0" && q.ifindex() == qs[0].ifindex()));
        assert!(Tap::create_multi_queue(None, L2TPETH_TEMPLATE, 0).is_err());
        let me = Ipv4Addr::new(10, 11, 0, 1);
        link::set_ipv4_addr(qs[0].name(), me, 24).unwrap();
        qs[0].set_up(true).unwrap();
        let sock = UdpSocket::bind((me, 0)).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let port = sock.local_addr().unwrap().port();
        // Any queue can inject.
        for (i, q) in qs.iter().enumerate() {
            let mut frame = q.mac().unwrap().to_vec();
            frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 9, 0x08, 0x00]);
            let payload = format!("via queue {i}");
            frame.extend_from_slice(&ipv4_udp(
                Ipv4Addr::new(10, 11, 0, 9),
                me,
                4000,
                port,
                payload.as_bytes(),
            ));
            q.try_send(&frame).unwrap();
            let mut buf = [0u8; 64];
            let (n, _) = sock.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], payload.as_bytes());
        }
        // The device lives while any queue is open.
        let last = qs.pop().unwrap();
        drop(qs);
        assert!(link::exists("l2tpeth0"));
        drop(last);
        assert!(!link::exists("l2tpeth0"));
    })
    .unwrap();
}
