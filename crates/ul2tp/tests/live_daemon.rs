//! The library against a real ul2tpd. Ignored by default because it needs a running daemon
//! in a private network namespace (it opens UDP port 1701/1702 and IP protocol 115 on
//! loopback). Run as root:
//!
//! ```text
//! ip netns add ul2tplib && ip -n ul2tplib link set lo up
//! ip netns exec ul2tplib target/debug/ul2tpd --socket /tmp/ul2tplib.sock &
//! UL2TP_SOCKET=/tmp/ul2tplib.sock ip netns exec ul2tplib \
//!     cargo test -p ul2tp --test live_daemon -- --ignored --test-threads=1
//! ```

use std::net::UdpSocket;
use std::time::Duration;

use ul2tp::api::{encap_type, pw_type, Attrs, Command, Errno};
use ul2tp::{
    socket_path, Client, ClientError, L2tpAddr, L2tpIpSocket, PppoL2tpAddr, SessionOption,
    SessionSocket, TunnelSocket,
};

fn client() -> Client {
    Client::connect(&socket_path(None)).expect("a running ul2tpd at $UL2TP_SOCKET")
}

fn tunnel_exists(c: &mut Client, tid: u32) -> bool {
    let a = Attrs {
        conn_id: Some(tid),
        ..Attrs::default()
    };
    match c.request(Command::TunnelGet, a, false) {
        Ok(_) => true,
        Err(ClientError::Api(e)) if e.errno == Errno::ENODEV => false,
        Err(e) => panic!("tunnel_get: {e}"),
    }
}

/// Poll `f` until it is true (the daemon tears down asynchronously after a close).
fn eventually(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
#[ignore = "needs a running ul2tpd in a network namespace, see the module doc"]
fn ppp_session_socket_exchanges_frames_with_a_udp_peer() {
    let mut c = client();
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let dport = peer.local_addr().unwrap().port();
    c.request(
        Command::TunnelCreate,
        Attrs {
            conn_id: Some(6001),
            peer_conn_id: Some(6002),
            proto_version: Some(2),
            encap_type: Some(encap_type::UDP),
            ip_saddr: Some("127.0.0.1".parse().unwrap()),
            ip_daddr: Some("127.0.0.1".parse().unwrap()),
            udp_sport: Some(17010),
            udp_dport: Some(dport),
            ..Attrs::default()
        },
        false,
    )
    .unwrap();
    c.request(
        Command::SessionCreate,
        Attrs {
            conn_id: Some(6001),
            session_id: Some(11),
            peer_session_id: Some(22),
            pw_type: Some(pw_type::PPP),
            ..Attrs::default()
        },
        false,
    )
    .unwrap();
    let a = PppoL2tpAddr {
        tunnel_id: 6001,
        session_id: 11,
        peer_tunnel_id: 6002,
        peer_session_id: 22,
        version: 2,
        tunnel_fd: None,
    };
    let mut s = SessionSocket::connect(&mut c, a).unwrap();
    // A second socket on the same session is EEXIST (§7.3 step 5).
    let e = SessionSocket::connect(&mut c, a).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(Errno::EEXIST.number()));

    s.set_option(SessionOption::SendSeq, 1).unwrap();
    assert_eq!(s.get_option(SessionOption::SendSeq).unwrap(), 1);
    let e = s.set_option(SessionOption::LnsMode, 2).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(Errno::EINVAL.number()));

    s.send_frame(&[0xc0, 0x21, 1, 1, 0, 4]).unwrap();
    let mut buf = [0u8; 256];
    let (n, from) = peer.recv_from(&mut buf).unwrap();
    // L2TPv2 data with S set (send_seq), peer ids, Ns 0 Nr 0, then FF 03 and the frame.
    assert_eq!(
        &buf[..n],
        &[0x08, 0x02, 0x17, 0x72, 0, 22, 0, 0, 0, 0, 0xff, 0x03, 0xc0, 0x21, 1, 1, 0, 4]
    );
    // The peer answers on tunnel 6001 session 11 without sequence numbers.
    peer.send_to(
        &[
            0x00, 0x02, 0x17, 0x71, 0, 11, 0xff, 0x03, 0xc0, 0x21, 2, 1, 0, 4,
        ],
        from,
    )
    .unwrap();
    assert_eq!(
        s.recv_frame_vec().unwrap(),
        Some(vec![0xc0, 0x21, 2, 1, 0, 4])
    );
    let st = s.stats().unwrap();
    assert_eq!((st.tunnel_id, st.session_id), (6001, 11));
    assert_eq!((st.stats.tx_packets, st.stats.rx_packets), (1, 1));

    // Closing the session socket deletes the session.
    drop(s);
    let get = Attrs {
        conn_id: Some(6001),
        session_id: Some(11),
        ..Attrs::default()
    };
    assert!(eventually(|| c
        .request(Command::SessionGet, get.clone(), false)
        .is_err()));
    c.request(
        Command::TunnelDelete,
        Attrs {
            conn_id: Some(6001),
            ..Attrs::default()
        },
        false,
    )
    .unwrap();
}

#[test]
#[ignore = "needs a running ul2tpd in a network namespace, see the module doc"]
fn managed_udp_tunnel_lives_as_long_as_its_tunnel_socket() {
    let mut c = client();
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.connect(peer.local_addr().unwrap()).unwrap();
    let local = udp.local_addr().unwrap();
    let attrs = Attrs {
        conn_id: Some(6101),
        peer_conn_id: Some(6102),
        proto_version: Some(3),
        encap_type: Some(encap_type::UDP),
        ..Attrs::default()
    };
    let mut t = TunnelSocket::create(&mut c, attrs, udp).unwrap();
    assert!(tunnel_exists(&mut c, 6101));
    let hello = [
        0xc8, 0x03, 0, 20, 0, 0, 0x17, 0xd6, 0, 0, 0, 0, 0x80, 0x08, 0, 0, 0, 0, 0, 6,
    ];
    t.send(&hello).unwrap();
    let mut buf = [0u8; 256];
    let (n, from) = peer.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&hello[..], local));
    let zlb = [0xc8, 0x03, 0, 12, 0, 0, 0x17, 0xd5, 0, 0, 0, 1];
    peer.send_to(&zlb, local).unwrap();
    let (n, src) = t.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], &zlb);
    assert_eq!(
        (src.ip, src.conn_id),
        (
            peer.local_addr().unwrap().ip(),
            u32::from(peer.local_addr().unwrap().port())
        )
    );
    drop(t);
    assert!(eventually(|| !tunnel_exists(&mut c, 6101)));
}

#[test]
#[ignore = "needs a running ul2tpd in a network namespace, see the module doc"]
fn l2tpip_sockets_talk_to_each_other_over_loopback() {
    let mut c = client();
    let lo = "127.0.0.1".parse().unwrap();
    let mut a = L2tpIpSocket::bind(&mut c, Some(lo), 4201).unwrap();
    // The same connection id again is EADDRINUSE (§8.2).
    match L2tpIpSocket::bind(&mut c, None, 4201) {
        Err(ClientError::Api(e)) => assert_eq!(e.errno, Errno::EADDRINUSE),
        other => panic!("{other:?}"),
    }
    let mut b =
        L2tpIpSocket::bind_connect(&mut c, Some(lo), 4202, L2tpAddr::new(lo, 4201)).unwrap();
    assert_eq!(
        a.send(&[0]).unwrap_err().raw_os_error(),
        Some(Errno::EDESTADDRREQ.number())
    );
    a.connect(&mut c, L2tpAddr::new(lo, 4202)).unwrap();
    // A ZLB for control connection 4202 (b), sent by a to its connected peer.
    let to_b = [0xc8, 0x03, 0, 12, 0, 0, 0x10, 0x6a, 0, 0, 0, 0];
    a.send(&to_b).unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = b.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&to_b[..], L2tpAddr::new(lo, 0)));
    let to_a = [0xc8, 0x03, 0, 12, 0, 0, 0x10, 0x69, 0, 0, 0, 1];
    b.send(&to_a).unwrap();
    let (n, _) = a.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], &to_a);
}

#[test]
#[ignore = "needs a running ul2tpd in a network namespace, see the module doc"]
fn l2tpv2_tunnel_management_socket_creates_and_owns_the_tunnel() {
    use std::os::fd::AsFd;
    let mut c = client();
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.connect(peer.local_addr().unwrap()).unwrap();
    let base = PppoL2tpAddr {
        tunnel_id: 6201,
        session_id: 0,
        peer_tunnel_id: 6202,
        peer_session_id: 0,
        version: 2,
        tunnel_fd: Some(udp.as_fd()),
    };
    // Session 0/0 with the UDP socket: the tunnel is created (§7.3 step 2).
    let mut mgmt = SessionSocket::connect(&mut c, base).unwrap();
    assert!(tunnel_exists(&mut c, 6201));
    // Session options are not for the tunnel socket (§7.5).
    assert_eq!(
        mgmt.set_option(SessionOption::SendSeq, 1)
            .unwrap_err()
            .raw_os_error(),
        Some(Errno::ENOPROTOOPT.number())
    );
    // A session socket for a new session creates the PPP session.
    let mut s = SessionSocket::connect(
        &mut c,
        PppoL2tpAddr {
            session_id: 31,
            peer_session_id: 32,
            tunnel_fd: None,
            ..base
        },
    )
    .unwrap();
    s.send_frame(&[0xc0, 0x21, 9, 9, 0, 4]).unwrap();
    let mut buf = [0u8; 64];
    let n = peer.recv(&mut buf).unwrap();
    assert_eq!(
        &buf[..n],
        &[0x00, 0x02, 0x18, 0x3a, 0, 32, 0xff, 0x03, 0xc0, 0x21, 9, 9, 0, 4]
    );
    let ts = mgmt.tunnel_stats().unwrap();
    assert_eq!(
        (ts.tunnel_id, ts.session_id, ts.stats.tx_packets),
        (6201, 0, 1)
    );
    let ss = mgmt.session_stats(31).unwrap();
    assert_eq!((ss.session_id, ss.stats.tx_packets), (31, 1));
    assert_eq!(
        mgmt.session_stats(99).unwrap_err().raw_os_error(),
        Some(Errno::EBADR.number())
    );
    // Closing the management socket that created the tunnel deletes it, and with it the
    // session: the session socket then reads end of stream.
    drop(mgmt);
    assert!(eventually(|| !tunnel_exists(&mut c, 6201)));
    assert_eq!(s.recv_frame(&mut buf).unwrap(), 0);
}

#[test]
#[ignore = "needs a running ul2tpd in a network namespace, see the module doc"]
fn managed_ip_tunnel_on_an_l2tpip_socket() {
    let mut c = client();
    let lo = "127.0.0.1".parse().unwrap();
    let a = L2tpIpSocket::bind_connect(&mut c, Some(lo), 4301, L2tpAddr::new(lo, 4302)).unwrap();
    let mut b =
        L2tpIpSocket::bind_connect(&mut c, Some(lo), 4302, L2tpAddr::new(lo, 4301)).unwrap();
    let attrs = Attrs {
        conn_id: Some(4301),
        peer_conn_id: Some(4302),
        proto_version: Some(3),
        encap_type: Some(encap_type::IP),
        ..Attrs::default()
    };
    let mut t = TunnelSocket::create(&mut c, attrs, a).unwrap();
    assert!(tunnel_exists(&mut c, 4301));
    let to_b = [0xc8, 0x03, 0, 12, 0, 0, 0x10, 0xce, 0, 0, 0, 0];
    t.send(&to_b).unwrap();
    let mut buf = [0u8; 64];
    let (n, _) = b.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], &to_b);
    let to_t = [0xc8, 0x03, 0, 12, 0, 0, 0x10, 0xcd, 0, 0, 0, 1];
    b.send(&to_t).unwrap();
    let (n, from) = t.recv(&mut buf).unwrap();
    assert_eq!((&buf[..n], from.ip), (&to_t[..], lo));
    drop(t);
    assert!(eventually(|| !tunnel_exists(&mut c, 4301)));
}
