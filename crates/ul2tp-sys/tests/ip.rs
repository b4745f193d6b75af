//! L2TPv3-over-IP raw sockets over loopback inside a private network namespace.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::time::Duration;

use ul2tp_sys::ip::IpTunnelSocket;
use ul2tp_sys::mmsg::RecvMeta;
use ul2tp_sys::netns::block_on_in_new_netns;

fn v4(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

async fn timeout<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(5), f)
        .await
        .expect("timed out")
}

/// An L2TPv3 data packet: session id, then payload.
fn packet(session_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = session_id.to_be_bytes().to_vec();
    p.extend_from_slice(payload);
    p
}

#[test]
fn ipv4_payload_without_header_and_source_filter() {
    block_on_in_new_netns(|| async {
        let a = IpTunnelSocket::open(v4(1), v4(2)).unwrap();
        let b = IpTunnelSocket::open(v4(2), v4(1)).unwrap();
        assert!(a.df_disabled().unwrap());
        assert_eq!(
            a.path_mtu().unwrap(),
            65535,
            "IPv4 path MTU is capped at IP_MAX_MTU"
        );
        assert_eq!(
            (a.local_addr().unwrap(), a.peer_addr().unwrap()),
            (v4(1), v4(2))
        );

        let p = packet(0x1234_5678, b"ethernet frame bytes");
        assert_eq!(a.send(&p).await.unwrap(), p.len());
        let mut buf = [0u8; 256];
        let (n, from) = timeout(b.recv(&mut buf)).await.unwrap();
        assert_eq!(
            &buf[..n],
            &p[..],
            "IPv4 header stripped, payload starts with the session id"
        );
        assert_eq!(from, v4(1));

        // A packet from another source does not reach the connected socket, but reaches an
        // unconnected listener.
        let listener = IpTunnelSocket::bind(IpAddr::V4(Ipv4Addr::UNSPECIFIED)).unwrap();
        assert!(listener.peer_addr().is_err());
        let stranger = IpTunnelSocket::bind(v4(3)).unwrap();
        stranger
            .send_to(&packet(0, b"control from stranger"), v4(2))
            .await
            .unwrap();
        a.send(&packet(7, b"from peer")).await.unwrap();
        let (n, _) = timeout(b.recv(&mut buf)).await.unwrap();
        assert_eq!(&buf[..n], &packet(7, b"from peer")[..]);
        let (n, from) = timeout(listener.recv(&mut buf)).await.unwrap();
        assert_eq!(
            (&buf[..n], from),
            (&packet(0, b"control from stranger")[..], v4(3))
        );
        let (n, from) = timeout(listener.recv(&mut buf)).await.unwrap();
        assert_eq!((&buf[..n], from), (&packet(7, b"from peer")[..], v4(1)));
    })
    .unwrap();
}

#[test]
fn ipv4_outer_header_has_no_df() {
    use socket2::{Domain, Protocol, Socket, Type};
    use std::io::Read;
    block_on_in_new_netns(|| async {
        let a = IpTunnelSocket::open(v4(1), v4(2)).unwrap();
        let _b = IpTunnelSocket::open(v4(2), v4(1)).unwrap();
        let eth_p_all = i32::from((libc::ETH_P_ALL as u16).to_be());
        let mut cap =
            Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(eth_p_all))).unwrap();
        cap.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        a.send(&packet(99, b"df check")).await.unwrap();
        let mut f = [0u8; 2048];
        loop {
            let n = cap.read(&mut f).unwrap();
            // Ethernet (14) + IPv4 with protocol 115.
            if n >= 34 && f[12..14] == [0x08, 0x00] && f[14 + 9] == 115 {
                assert_eq!(f[14 + 6] & 0x40, 0, "DF clear");
                assert_eq!(&f[14 + 12..14 + 20], &[127, 0, 0, 1, 127, 0, 0, 2]);
                break;
            }
        }
    })
    .unwrap();
}

#[test]
fn ipv4_header_with_options_is_stripped() {
    block_on_in_new_netns(|| async {
        let a = IpTunnelSocket::open(v4(1), v4(2)).unwrap();
        let b = IpTunnelSocket::open(v4(2), v4(1)).unwrap();
        // Four bytes of IP options (NOP NOP NOP EOL): IHL becomes 6.
        let opts = [1u8, 1, 1, 0];
        // SAFETY: opts is a live 4-byte buffer for the duration of the call.
        let r = unsafe {
            libc::setsockopt(
                a.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_OPTIONS,
                opts.as_ptr().cast(),
                4,
            )
        };
        assert_eq!(r, 0);
        let p = packet(42, b"after options");
        a.send(&p).await.unwrap();
        let mut buf = [0u8; 256];
        let (n, _) = timeout(b.recv(&mut buf)).await.unwrap();
        assert_eq!(&buf[..n], &p[..]);
        // Batch path too.
        a.send(&p).await.unwrap();
        let mut bufs = vec![vec![0u8; 64]; 4];
        let mut meta = [RecvMeta::default(); 4];
        let got = timeout(b.recv_batch(&mut bufs, &mut meta)).await.unwrap();
        assert_eq!(got, 1);
        assert_eq!(&bufs[0][..meta[0].len], &p[..]);
        assert_eq!(meta[0].addr.map(|a| a.ip()), Some(v4(1)));
    })
    .unwrap();
}

#[test]
fn ipv4_batch_of_64() {
    block_on_in_new_netns(|| async {
        let a = IpTunnelSocket::open(v4(1), v4(2)).unwrap();
        let b = IpTunnelSocket::open(v4(2), v4(1)).unwrap();
        let msgs: Vec<Vec<u8>> = (0..64u32)
            .map(|i| packet(i + 1, format!("payload {i}").as_bytes()))
            .collect();
        let mut rest: &[Vec<u8>] = &msgs;
        while !rest.is_empty() {
            let n = timeout(a.send_batch(rest)).await.unwrap();
            rest = &rest[n..];
        }
        let mut bufs = vec![vec![0u8; 128]; 64];
        let mut meta = vec![RecvMeta::default(); 64];
        let mut got = Vec::new();
        while got.len() < 64 {
            let n = timeout(b.recv_batch(&mut bufs, &mut meta)).await.unwrap();
            for i in 0..n {
                got.push(bufs[i][..meta[i].len].to_vec());
            }
        }
        assert_eq!(got, msgs);
    })
    .unwrap();
}

#[test]
fn ipv6_payload_only() {
    block_on_in_new_netns(|| async {
        let lo6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        let s = IpTunnelSocket::open(lo6, lo6).unwrap();
        assert!(s.is_ipv6());
        assert!(s.df_disabled().unwrap());
        assert_eq!(s.path_mtu().unwrap(), 65536);
        let p = packet(0xdead_beef, b"v6 payload");
        s.send(&p).await.unwrap();
        let mut buf = [0u8; 256];
        let (n, from) = timeout(s.recv(&mut buf)).await.unwrap();
        assert_eq!(&buf[..n], &p[..]);
        assert_eq!(from, lo6);
        // Family mismatch is an error.
        assert!(IpTunnelSocket::open(lo6, v4(1)).is_err());
    })
    .unwrap();
}

/// The control listener's socket filter: of a data packet, a short packet and a control
/// message (session id 0), only the control message arrives, IPv4 and IPv6 alike; a plain
/// listener gets all three.
#[test]
fn control_listener_gets_control_messages_only() {
    block_on_in_new_netns(|| async {
        for (any, lo) in [
            (IpAddr::V4(Ipv4Addr::UNSPECIFIED), v4(1)),
            (
                IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ),
        ] {
            let control = IpTunnelSocket::bind_control(any).unwrap();
            let plain = IpTunnelSocket::bind(any).unwrap();
            let tx = IpTunnelSocket::bind(lo).unwrap();
            let data = packet(0x0102_0304, b"data");
            let short = vec![0u8, 0];
            let ctl = packet(0, b"\xc8\x03 control header");
            for p in [&data, &short, &ctl] {
                tx.send_to(p, lo).await.unwrap();
            }
            let mut buf = [0u8; 256];
            for want in [&data, &short, &ctl] {
                let (n, _) = timeout(plain.recv(&mut buf)).await.unwrap();
                assert_eq!(&buf[..n], &want[..], "{lo}: plain listener");
            }
            let (n, from) = timeout(control.recv(&mut buf)).await.unwrap();
            assert_eq!((&buf[..n], from), (&ctl[..], lo), "{lo}: control only");
            assert!(
                control.try_recv(&mut buf).is_err(),
                "{lo}: nothing else queued on the control listener"
            );
        }
    })
    .unwrap();
}
