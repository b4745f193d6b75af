//! UDP tunnel sockets over loopback inside a private network namespace.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use ul2tp_sys::mmsg::{RecvMeta, BATCH_MAX};
use ul2tp_sys::netns::block_on_in_new_netns;
use ul2tp_sys::udp::{UdpOptions, UdpTunnelSocket};

const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

/// A connected pair: a ↔ b.
async fn pair(ip: IpAddr, opts: UdpOptions) -> (UdpTunnelSocket, UdpTunnelSocket) {
    let b = UdpTunnelSocket::bind(SocketAddr::new(ip, 0), opts).unwrap();
    let a = UdpTunnelSocket::open(SocketAddr::new(ip, 0), b.local_addr().unwrap(), opts).unwrap();
    b.connect(a.local_addr().unwrap()).await.unwrap();
    (a, b)
}

async fn timeout<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(5), f)
        .await
        .expect("timed out")
}

/// A packet socket on `lo` that sees every frame (both directions).
fn sniffer() -> Socket {
    let s = Socket::new(
        Domain::PACKET,
        Type::RAW,
        Some(Protocol::from(i32::from((libc::ETH_P_ALL as u16).to_be()))),
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// The UDP checksum field of the first captured UDP datagram to `dport`.
fn captured_udp_csum(s: &Socket, dport: u16) -> u16 {
    captured_udp(s, dport).0
}

/// (UDP checksum field, IPv4 DF bit) of the first captured UDP datagram to `dport`.
fn captured_udp(s: &Socket, dport: u16) -> (u16, bool) {
    use std::io::Read;
    let mut s = s;
    let mut buf = [0u8; 2048];
    loop {
        let n = s.read(&mut buf).expect("capture");
        let f = &buf[..n];
        // Loopback frames carry a 14-byte Ethernet header with zero addresses.
        if n < 14 {
            continue;
        }
        let ethertype = u16::from_be_bytes([f[12], f[13]]);
        let (proto, l4) = match ethertype {
            0x0800 => (f[14 + 9], 14 + usize::from(f[14] & 0x0f) * 4),
            0x86dd => (f[14 + 6], 14 + 40),
            _ => continue,
        };
        if proto != 17 || n < l4 + 8 {
            continue;
        }
        if u16::from_be_bytes([f[l4 + 2], f[l4 + 3]]) == dport {
            let df = ethertype == 0x0800 && f[14 + 6] & 0x40 != 0;
            return (u16::from_be_bytes([f[l4 + 6], f[l4 + 7]]), df);
        }
    }
}

#[test]
fn ipv4_checksum_off_by_default_and_on_when_asked() {
    block_on_in_new_netns(|| async {
        // Default (no UDP_CSUM attribute): SO_NO_CHECK set, zero checksum on the wire.
        let (a, b) = pair(V4, UdpOptions::default()).await;
        assert!(!a.checksum_options().unwrap().csum_tx_v4);
        assert!(a.df_disabled().unwrap());
        let cap = sniffer();
        a.send(b"no checksum").await.unwrap();
        let mut buf = [0u8; 64];
        let n = timeout(b.recv(&mut buf)).await.unwrap();
        assert_eq!(&buf[..n], b"no checksum");
        assert_eq!(
            captured_udp(&cap, b.local_addr().unwrap().port()),
            (0, false),
            "no checksum, no DF"
        );

        // UDP_CSUM given: SO_NO_CHECK clear, a checksum is sent.
        let opts = UdpOptions {
            csum_tx_v4: true,
            ..UdpOptions::default()
        };
        let (c, d) = pair(V4, opts).await;
        assert!(c.checksum_options().unwrap().csum_tx_v4);
        let cap = sniffer();
        c.send(b"with checksum").await.unwrap();
        let n = timeout(d.recv(&mut buf)).await.unwrap();
        assert_eq!(&buf[..n], b"with checksum");
        let (csum, df) = captured_udp(&cap, d.local_addr().unwrap().port());
        assert_ne!(csum, 0);
        assert!(!df, "outer IPv4 header without DF");

        // A plain socket (IP_PMTUDISC_WANT by default) does set DF: the check above is real.
        let plain = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let cap = sniffer();
        plain.send_to(b"plain", d.local_addr().unwrap()).unwrap();
        assert!(captured_udp(&cap, d.local_addr().unwrap().port()).1);

        // Both directions work and addresses are as opened.
        d.send(b"back").await.unwrap();
        let n = timeout(c.recv(&mut buf)).await.unwrap();
        assert_eq!(&buf[..n], b"back");
        assert_eq!(c.peer_addr().unwrap(), d.local_addr().unwrap());
        assert!(!c.is_ipv6());
        assert_eq!(
            c.path_mtu().unwrap(),
            65535,
            "loopback MTU, capped at IP_MAX_MTU for IPv4"
        );
    })
    .unwrap();
}

#[test]
fn ipv6_zero_checksum_options() {
    block_on_in_new_netns(|| async {
        let (a, b) = pair(V6, UdpOptions::default()).await;
        let o = a.checksum_options().unwrap();
        assert!(!o.zero_csum6_tx && !o.zero_csum6_rx);
        assert!(a.is_ipv6());
        assert!(a.df_disabled().unwrap());
        assert_eq!(a.path_mtu().unwrap(), 65536);
        let cap = sniffer();
        a.send(b"v6 checksummed").await.unwrap();
        let mut buf = [0u8; 64];
        let n = timeout(b.recv(&mut buf)).await.unwrap();
        assert_eq!(&buf[..n], b"v6 checksummed");
        assert_ne!(captured_udp_csum(&cap, b.local_addr().unwrap().port()), 0);

        let opts = UdpOptions {
            zero_csum6_tx: true,
            zero_csum6_rx: true,
            ..UdpOptions::default()
        };
        let (c, d) = pair(V6, opts).await;
        assert_eq!(c.checksum_options().unwrap(), opts);
        let cap = sniffer();
        c.send(b"v6 zero checksum").await.unwrap();
        let n = timeout(d.recv(&mut buf)).await.unwrap();
        assert_eq!(
            &buf[..n],
            b"v6 zero checksum",
            "accepted because zero_csum6_rx is set"
        );
        assert_eq!(captured_udp_csum(&cap, d.local_addr().unwrap().port()), 0);

        // Only tx set: the receiver without zero_csum6_rx drops the datagram.
        let only_tx = UdpOptions {
            zero_csum6_tx: true,
            ..UdpOptions::default()
        };
        let strict = UdpTunnelSocket::bind(SocketAddr::new(V6, 0), UdpOptions::default()).unwrap();
        let tx = UdpTunnelSocket::open(
            SocketAddr::new(V6, 0),
            strict.local_addr().unwrap(),
            only_tx,
        )
        .unwrap();
        tx.send(b"dropped").await.unwrap();
        let r = tokio::time::timeout(Duration::from_millis(300), strict.recv(&mut buf)).await;
        assert!(
            r.is_err(),
            "zero-checksum IPv6 datagram must be dropped without zero_csum6_rx"
        );
    })
    .unwrap();
}

#[test]
fn batch_of_64_both_directions() {
    block_on_in_new_netns(|| async {
        for ip in [V4, V6] {
            let (a, b) = pair(ip, UdpOptions::default()).await;
            let msgs: Vec<Vec<u8>> = (0..BATCH_MAX as u32)
                .map(|i| format!("datagram {i:03}").into_bytes())
                .collect();
            let mut rest: &[Vec<u8>] = &msgs;
            while !rest.is_empty() {
                let n = timeout(a.send_batch(rest)).await.unwrap();
                assert!(n >= 1);
                rest = &rest[n..];
            }
            let mut bufs = vec![vec![0u8; 256]; BATCH_MAX];
            let mut meta = vec![RecvMeta::default(); BATCH_MAX];
            let mut got = Vec::new();
            while got.len() < BATCH_MAX {
                let n = timeout(b.recv_batch(&mut bufs, &mut meta)).await.unwrap();
                assert!(n >= 1);
                for i in 0..n {
                    assert_eq!(meta[i].addr, Some(a.local_addr().unwrap()));
                    assert!(!meta[i].truncated);
                    got.push(bufs[i][..meta[i].len].to_vec());
                }
            }
            assert_eq!(got, msgs);
            // Nothing extra queued.
            assert_eq!(
                b.try_recv_batch(&mut bufs, &mut meta).unwrap_err().kind(),
                std::io::ErrorKind::WouldBlock
            );
        }
    })
    .unwrap();
}

#[test]
fn batch_reports_truncation_and_sub_slices_work() {
    block_on_in_new_netns(|| async {
        let (a, b) = pair(V4, UdpOptions::default()).await;
        a.send(&[7u8; 100]).await.unwrap();
        a.send(&[8u8; 5]).await.unwrap();
        // Receive into sub-slices behind a headroom, as the data path does.
        let mut store = [[0u8; 32]; 2];
        let mut views: Vec<&mut [u8]> = store.iter_mut().map(|s| &mut s[16..]).collect();
        let mut meta = [RecvMeta::default(); 2];
        let mut n = 0;
        while n < 2 {
            n += timeout(b.recv_batch(&mut views[n..], &mut meta[n..]))
                .await
                .unwrap();
        }
        assert_eq!(meta[0].len, 16);
        assert!(meta[0].truncated);
        assert_eq!(meta[1].len, 5);
        assert!(!meta[1].truncated);
        assert_eq!(&store[1][16..21], &[8u8; 5]);
        assert_eq!(&store[0][..16], &[0u8; 16], "headroom untouched");
    })
    .unwrap();
}

#[test]
fn unconnected_listener_sees_every_source_and_replies() {
    block_on_in_new_netns(|| async {
        let l = UdpTunnelSocket::bind(SocketAddr::new(V4, 0), UdpOptions::default()).unwrap();
        assert!(l.peer_addr().is_err());
        assert!(l.path_mtu().is_err(), "no path MTU without a peer");
        let p1 = UdpTunnelSocket::open(
            SocketAddr::new(V4, 0),
            l.local_addr().unwrap(),
            UdpOptions::default(),
        )
        .unwrap();
        let p2 = UdpTunnelSocket::open(
            SocketAddr::new(V4, 0),
            l.local_addr().unwrap(),
            UdpOptions::default(),
        )
        .unwrap();
        p1.send(b"one").await.unwrap();
        p2.send(b"two").await.unwrap();
        let mut buf = [0u8; 16];
        let (n, from1) = timeout(l.recv_from(&mut buf)).await.unwrap();
        assert_eq!((&buf[..n], from1), (&b"one"[..], p1.local_addr().unwrap()));
        let (n, from2) = timeout(l.recv_from(&mut buf)).await.unwrap();
        assert_eq!((&buf[..n], from2), (&b"two"[..], p2.local_addr().unwrap()));
        l.send_to(b"hi 2", from2).await.unwrap();
        let n = timeout(p2.recv(&mut buf)).await.unwrap();
        assert_eq!(&buf[..n], b"hi 2");
        // Batch send with a destination per datagram.
        let n = l
            .send_batch_to(&[b"a".as_slice(), b"b".as_slice()], &[from1, from2])
            .await
            .unwrap();
        assert_eq!(n, 2);
        let n = timeout(p1.recv(&mut buf)).await.unwrap();
        assert_eq!(&buf[..n], b"a");
        let n = timeout(p2.recv(&mut buf)).await.unwrap();
        assert_eq!(&buf[..n], b"b");
    })
    .unwrap();
}

#[test]
fn connected_socket_ignores_other_sources_and_reuse_port() {
    block_on_in_new_netns(|| async {
        let (a, b) = pair(V4, UdpOptions::default()).await;
        let stranger = UdpTunnelSocket::open(
            SocketAddr::new(V4, 0),
            b.local_addr().unwrap(),
            UdpOptions::default(),
        )
        .unwrap();
        stranger.send(b"stranger").await.unwrap();
        a.send(b"peer").await.unwrap();
        let mut buf = [0u8; 16];
        let n = timeout(b.recv(&mut buf)).await.unwrap();
        assert_eq!(&buf[..n], b"peer", "connected socket filters by source");

        // Two SO_REUSEPORT sockets can share one local port.
        let w1 = UdpTunnelSocket::bind_reuse_port(SocketAddr::new(V4, 0), UdpOptions::default())
            .unwrap();
        let port = w1.local_addr().unwrap();
        let w2 = UdpTunnelSocket::bind_reuse_port(port, UdpOptions::default()).unwrap();
        assert_eq!(w2.local_addr().unwrap(), port);
        assert_eq!(
            std::net::UdpSocket::bind(port).unwrap_err().kind(),
            std::io::ErrorKind::AddrInUse,
            "a socket without the reuse options cannot join"
        );
    })
    .unwrap();
}

#[test]
fn adopting_a_descriptor_and_errors_without_runtime() {
    // Outside a runtime: an error, not a panic.
    let e = UdpTunnelSocket::open(
        SocketAddr::new(V4, 0),
        SocketAddr::new(V4, 9),
        UdpOptions::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("tokio runtime"));
    block_on_in_new_netns(|| async {
        let std_sock = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let peer = UdpTunnelSocket::bind(SocketAddr::new(V4, 0), UdpOptions::default()).unwrap();
        std_sock.connect(peer.local_addr().unwrap()).unwrap();
        let adopted = UdpTunnelSocket::from_fd(std_sock.into()).unwrap();
        adopted.send(b"adopted").await.unwrap();
        let mut buf = [0u8; 16];
        let (n, from) = timeout(peer.recv_from(&mut buf)).await.unwrap();
        assert_eq!(&buf[..n], b"adopted");
        assert_eq!(from, adopted.local_addr().unwrap());
        // Mismatched families are refused by the kernel, not by a panic.
        assert!(UdpTunnelSocket::open(
            SocketAddr::new(V4, 0),
            SocketAddr::new(V6, 1701),
            UdpOptions::default()
        )
        .is_err());
    })
    .unwrap();
}

#[test]
fn ipv6_socket_to_v4_mapped_peer() {
    block_on_in_new_netns(|| async {
        // An IPv6 tunnel socket whose peer is v4-mapped talks IPv4 on the wire.
        let v4_peer = UdpTunnelSocket::bind(SocketAddr::new(V4, 0), UdpOptions::default()).unwrap();
        let mapped = SocketAddr::new(
            IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped()),
            v4_peer.local_addr().unwrap().port(),
        );
        let s = UdpTunnelSocket::open(
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
            mapped,
            UdpOptions::default(),
        )
        .unwrap();
        assert!(s.is_ipv6());
        s.send(b"mapped").await.unwrap();
        let mut buf = [0u8; 16];
        let (n, from) = timeout(v4_peer.recv_from(&mut buf)).await.unwrap();
        assert_eq!(&buf[..n], b"mapped");
        assert_eq!(from.port(), s.local_addr().unwrap().port());
        assert!(from.is_ipv4());
    })
    .unwrap();
}

#[test]
fn gso_send_and_gro_receive() {
    use ul2tp_sys::udp::GroSegments;
    block_on_in_new_netns(|| async {
        for ip in [V4, V6] {
            // Ten 100-byte datagrams and a 40-byte tail in one send.
            let mut big = Vec::new();
            for i in 0..10u8 {
                big.extend_from_slice(&[i; 100]);
            }
            big.extend_from_slice(&[0xee; 40]);
            // Checksums on (GSO proper) and off (the sendmmsg fallback).
            let with_csum = UdpOptions {
                csum_tx_v4: true,
                ..UdpOptions::default()
            };
            let (a, b) = pair(ip, with_csum).await;
            let (c, d) = pair(
                ip,
                UdpOptions {
                    zero_csum6_tx: true,
                    zero_csum6_rx: true,
                    csum_tx_v4: false,
                },
            )
            .await;
            for (tx, rx) in [(&a, &b), (&c, &d)] {
                assert_eq!(tx.send_segmented(&big, 100).await.unwrap(), big.len());
                let mut buf = [0u8; 2048];
                for i in 0..10u8 {
                    let n = timeout(rx.recv(&mut buf)).await.unwrap();
                    assert_eq!(&buf[..n], &[i; 100][..]);
                }
                let n = timeout(rx.recv(&mut buf)).await.unwrap();
                assert_eq!(&buf[..n], &[0xee; 40][..]);
            }

            // With GRO on, coalesced or not, splitting gives the same datagrams back.
            b.set_gro(true).unwrap();
            a.send_segmented(&big, 100).await.unwrap();
            let mut got: Vec<Vec<u8>> = Vec::new();
            let mut gbuf = vec![0u8; 65535];
            while got.len() < 11 {
                let (n, seg) = timeout(b.recv_gro(&mut gbuf)).await.unwrap();
                got.extend(GroSegments::new(&gbuf[..n], seg).map(<[u8]>::to_vec));
            }
            let want: Vec<Vec<u8>> = big.chunks(100).map(<[u8]>::to_vec).collect();
            assert_eq!(got, want);
            assert!(a.send_segmented(&big, 0).await.is_err());
        }
    })
    .unwrap();
}
