//! The application APIs against real daemons: PPP session sockets over L2TPv2 and L2TPv3,
//! the old L2TPv2-only socket API, managed tunnels on an application's socket with its own
//! control messages, emulated L2TP/IP sockets, Ethernet-VLAN pseudowires, tunnels sharing an
//! address/port pair, the debug listings and trace switches, and the error paths of
//! docs/reference/kernel.md §4.10 / §7.3 that apply to these features.

use std::os::fd::AsFd;
use std::time::Duration;

use ul2tp::{
    ClientError, L2tpAddr, L2tpIpSocket, PppoL2tpAddr, SessionOption, SessionSocket, TunnelSocket,
};
use ul2tp_api::sockproto::IocStats;
use ul2tp_api::{pw_type, Attrs, Command, Errno, Stats};
use ul2tp_it::{ping_stats, tshark, unique, wait_until, Capture, Daemon, Pair};

fn pair() -> Pair {
    Pair::new(false)
}

fn api_errno<T: std::fmt::Debug>(r: Result<T, ClientError>) -> Errno {
    match r {
        Err(ClientError::Api(e)) => e.errno,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// An LCP Configure-Request (protocol c021, code 1, id, length 8, magic-number option).
fn lcp(id: u8) -> Vec<u8> {
    vec![
        0xc0, 0x21, 0x01, id, 0x00, 0x0a, 0x05, 0x06, 0x12, 0x34, 0x56, id,
    ]
}

/// Poll a non-blocking `recv` (given a buffer) until it returns something, up to `timeout`.
fn recv_within<T>(
    timeout: Duration,
    mut recv: impl FnMut(&mut [u8]) -> std::io::Result<T>,
) -> Option<T> {
    let mut buf = [0u8; 2048];
    let mut got = None;
    wait_until(timeout, || match recv(&mut buf) {
        Ok(r) => {
            got = Some(r);
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
        Err(e) => panic!("recv: {e}"),
    });
    got
}

fn recv_frame_within(s: &mut SessionSocket, timeout: Duration) -> Option<Vec<u8>> {
    s.set_nonblocking(true).unwrap();
    recv_within(timeout, |b| s.recv_frame(b).map(|n| b[..n].to_vec()))
}

/// On `d` (host b): a static L2TPv2 tunnel 20 -> 10 with PPP session 2 -> 1 and its socket.
fn v2_ppp_peer(d: &Daemon) -> SessionSocket {
    d.ul2tp("add tunnel version 2 tunnel_id 20 peer_tunnel_id 10 local 192.0.2.2 remote 192.0.2.1 udp_sport 1701 udp_dport 1701");
    d.ul2tp("add session pw_type ppp tunnel_id 20 session_id 2 peer_session_id 1");
    let addr = PppoL2tpAddr {
        tunnel_id: 20,
        session_id: 2,
        peer_tunnel_id: 10,
        peer_session_id: 1,
        version: 2,
        tunnel_fd: None,
    };
    SessionSocket::connect(&mut d.client(), addr).expect("session socket on the peer")
}

/// Wait until `show session` no longer lists session `sid` of tunnel `tid`.
fn session_gone(d: &Daemon, tid: u32, sid: u32) -> bool {
    let name = format!("Session {sid} in tunnel {tid}\n");
    d.wait_for(Duration::from_secs(5), || {
        !d.ul2tp("show session").contains(&name)
    })
}

/// The PPPIOCGL2TPSTATS counters of a PPP session (or, `session_id` 0, its tunnel) that sent
/// `tx` and received `rx` frames of `frame` bytes each (L2TP header included) and counted
/// nothing else.
fn ppp_stats(tunnel_id: u16, session_id: u16, frame: u64, tx: u64, rx: u64) -> IocStats {
    IocStats {
        tunnel_id,
        session_id,
        using_ipsec: false,
        stats: Stats {
            tx_packets: tx,
            tx_bytes: tx * frame,
            rx_packets: rx,
            rx_bytes: rx * frame,
            ..Stats::default()
        },
    }
}

/// An [`lcp`] frame as the session carries it: FF 03 in front.
const LCP_FRAME: u64 = 2 + 12;
/// The L2TPv2 data header without sequence numbers: flags and version, tunnel id, session id.
const V2_HEADER: u64 = 6;
/// ... and with Ns and Nr.
const V2_SEQ_HEADER: u64 = V2_HEADER + 4;
/// The L2TPv3 header over UDP: flags word, session id, default sublayer (no cookie).
const V3_UDP_HEADER: u64 = 12;

fn ppp_over(version: &str) {
    let p = pair();
    p.ul2tp(
        &format!("add tunnel version {version} tunnel_id 10 peer_tunnel_id 20 local 192.0.2.1 remote 192.0.2.2 udp_sport 1701 udp_dport 1701"),
        &format!("add tunnel version {version} tunnel_id 20 peer_tunnel_id 10 local 192.0.2.2 remote 192.0.2.1 udp_sport 1701 udp_dport 1701"),
    );
    p.ul2tp(
        "add session pw_type ppp tunnel_id 10 session_id 1 peer_session_id 2",
        "add session pw_type ppp tunnel_id 20 session_id 2 peer_session_id 1",
    );
    let v: u8 = version.parse().unwrap();
    let addr = |tid, sid, ptid, psid| PppoL2tpAddr {
        tunnel_id: tid,
        session_id: sid,
        peer_tunnel_id: ptid,
        peer_session_id: psid,
        version: v,
        tunnel_fd: None,
    };
    let cap = Capture::start(&p.a, "eth0", "udp port 1701");
    let mut sa = SessionSocket::connect(&mut p.da.client(), addr(10, 1, 20, 2)).expect("connect a");
    let mut sb = SessionSocket::connect(&mut p.db.client(), addr(20, 2, 10, 1)).expect("connect b");
    // A second socket on the same session: EEXIST (§7.3 step 5).
    assert_eq!(
        api_errno(SessionSocket::connect(
            &mut p.da.client(),
            addr(10, 1, 20, 2)
        )),
        Errno::EEXIST
    );

    sa.send_frame(&lcp(1)).unwrap();
    assert_eq!(
        recv_frame_within(&mut sb, Duration::from_secs(3)).as_deref(),
        Some(&lcp(1)[..]),
        "a -> b"
    );
    sb.send_frame(&lcp(2)).unwrap();
    assert_eq!(
        recv_frame_within(&mut sa, Duration::from_secs(3)).as_deref(),
        Some(&lcp(2)[..]),
        "b -> a"
    );

    // Options as setsockopt(SOL_PPPOL2TP): sequencing on, read back; bad values EINVAL.
    sa.set_nonblocking(false).unwrap();
    sa.set_option(SessionOption::SendSeq, 1).unwrap();
    assert_eq!(sa.get_option(SessionOption::SendSeq).unwrap(), 1);
    sa.set_option(SessionOption::ReorderTimeout, 250).unwrap();
    assert_eq!(sa.get_option(SessionOption::ReorderTimeout).unwrap(), 250);
    assert_eq!(
        sa.set_option(SessionOption::RecvSeq, 2)
            .unwrap_err()
            .raw_os_error(),
        Some(22)
    );
    assert_eq!(sa.get_option(SessionOption::Debug).unwrap(), 0);
    sa.send_frame(&lcp(3)).unwrap();
    assert_eq!(
        recv_frame_within(&mut sb, Duration::from_secs(3)).as_deref(),
        Some(&lcp(3)[..])
    );

    // PPPIOCGL2TPSTATS: two frames sent by a (the second with sequence numbers), one
    // received; the other way round for b.
    let (a_stats, b_stats) = if version == "2" {
        let (plain, seq) = (V2_HEADER + LCP_FRAME, V2_SEQ_HEADER + LCP_FRAME);
        let mut a = ppp_stats(10, 1, plain, 2, 1);
        a.stats.tx_bytes = plain + seq;
        let mut b = ppp_stats(20, 2, plain, 1, 2);
        b.stats.rx_bytes = plain + seq;
        (a, b)
    } else {
        // The default sublayer is there with or without a sequence number.
        let frame = V3_UDP_HEADER + LCP_FRAME;
        (ppp_stats(10, 1, frame, 2, 1), ppp_stats(20, 2, frame, 1, 2))
    };
    assert_eq!(sa.stats().unwrap(), a_stats);
    sb.set_nonblocking(false).unwrap();
    assert_eq!(sb.stats().unwrap(), b_stats);
    let pcap = cap.stop();

    // On the wire: FF 03 in front of every PPP frame, the S bit once SENDSEQ is on.
    ul2tp_it::require("tshark", "tshark");
    {
        let mut args = vec!["-d", "udp.port==1701,l2tp"];
        if version == "3" {
            args.extend_from_slice(&[
                "-d",
                "l2tp.pw_type==0,ppp",
                "-o",
                "l2tp.cookie_size:cookie0",
                "-o",
                "l2tp.l2_specific:default",
            ]);
        }
        args.extend_from_slice(&[
            "-Y",
            "ppp",
            "-T",
            "fields",
            "-e",
            "l2tp.sid",
            "-e",
            "ppp.address",
            "-e",
            "l2tp.Ns",
            "-e",
            "ppp.identifier",
        ]);
        let out = tshark(&pcap, &args);
        let lines: Vec<&str> = out.lines().filter(|l| !l.is_empty()).collect();
        assert!(lines.len() >= 3, "{out}");
        for l in &lines {
            assert!(l.contains("0xff"), "no FF 03 address/control field: {l:?}");
        }
        if version == "2" {
            let seq_line = lines.iter().find(|l| l.ends_with("\t3")).expect("frame 3");
            let f: Vec<&str> = seq_line.split('\t').collect();
            assert_eq!(f[2], "0", "first sequenced frame has Ns 0: {seq_line:?}");
        }
        assert!(!out.to_lowercase().contains("malformed"), "{out}");
    }

    // /proc/net/pppol2tp lists L2TPv2 sessions only.
    let listing = p.da.ul2tp("debug pppol2tp");
    if version == "2" {
        assert!(listing.contains("SESSION 'sess 10/1'"), "{listing}");
    } else {
        assert!(!listing.contains("sess 10/1"), "{listing}");
    }

    // Closing the session socket deletes the session (§5.4).
    drop(sa);
    assert!(
        session_gone(&p.da, 10, 1),
        "session still present after its socket closed"
    );
    drop(sb);
    assert!(session_gone(&p.db, 20, 2));
}

#[test]
fn ppp_frames_through_session_sockets_l2tpv2() {
    ppp_over("2");
}

#[test]
fn ppp_frames_through_session_sockets_l2tpv3() {
    ppp_over("3");
}

#[test]
fn old_l2tpv2_api_creates_tunnel_and_session_on_connect() {
    let p = pair();
    // The peer: a static L2TPv2 tunnel with a PPP session and a session socket.
    let mut sb = v2_ppp_peer(&p.db);

    // This side: the application's UDP socket, then a management socket on session 0 that
    // creates tunnel 10 from it, then a session socket that creates session 1.
    let udp = p.a.udp_socket("192.0.2.1:1701", "192.0.2.2:1701");
    let mut client = p.da.client();
    let no_fd = PppoL2tpAddr {
        tunnel_id: 10,
        session_id: 0,
        peer_tunnel_id: 20,
        peer_session_id: 0,
        version: 2,
        tunnel_fd: None,
    };
    assert_eq!(
        api_errno(SessionSocket::connect(&mut client, no_fd)),
        Errno::EBADF,
        "no tunnel socket given"
    );
    let tunnel_id_zero = PppoL2tpAddr {
        tunnel_id: 0,
        ..no_fd
    };
    assert_eq!(
        api_errno(SessionSocket::connect(&mut client, tunnel_id_zero)),
        Errno::EINVAL
    );
    let no_tunnel = PppoL2tpAddr {
        tunnel_id: 99,
        session_id: 5,
        peer_session_id: 6,
        ..no_fd
    };
    assert_eq!(
        api_errno(SessionSocket::connect(&mut client, no_tunnel)),
        Errno::ENOENT
    );

    let mut mgmt = SessionSocket::connect(
        &mut client,
        PppoL2tpAddr {
            tunnel_fd: Some(udp.as_fd()),
            ..no_fd
        },
    )
    .expect("management socket");
    let mut sa = SessionSocket::connect(
        &mut client,
        PppoL2tpAddr {
            tunnel_id: 10,
            session_id: 1,
            peer_tunnel_id: 20,
            peer_session_id: 2,
            version: 2,
            tunnel_fd: None,
        },
    )
    .expect("session socket");
    sa.send_frame(&lcp(7)).unwrap();
    assert_eq!(
        recv_frame_within(&mut sb, Duration::from_secs(3)).as_deref(),
        Some(&lcp(7)[..])
    );
    sb.send_frame(&lcp(8)).unwrap();
    assert_eq!(
        recv_frame_within(&mut sa, Duration::from_secs(3)).as_deref(),
        Some(&lcp(8)[..])
    );

    // The management socket: tunnel statistics with session 0, a session's with its id,
    // EBADR for a missing session; sequencing options are not tunnel options.
    mgmt.set_nonblocking(false).unwrap();
    // One frame each way, all of it in session 1 (L2TPv2 without sequence numbers).
    let frame = V2_HEADER + LCP_FRAME;
    assert_eq!(mgmt.tunnel_stats().unwrap(), ppp_stats(10, 0, frame, 1, 1));
    assert_eq!(
        mgmt.session_stats(1).unwrap(),
        ppp_stats(10, 1, frame, 1, 1)
    );
    assert_eq!(
        mgmt.session_stats(77).unwrap_err().raw_os_error(),
        Some(Errno::EBADR.number())
    );
    assert_eq!(
        mgmt.set_option(SessionOption::SendSeq, 1)
            .unwrap_err()
            .raw_os_error(),
        Some(Errno::ENOPROTOOPT.number())
    );

    // The tunnel the management socket created shows up like any other, and goes with it.
    let shown = p.da.ul2tp("show tunnel");
    assert!(shown.contains("Tunnel 10, encap UDP"), "{shown}");
    drop(sa);
    drop(mgmt);
    assert!(
        p.da.wait_for(Duration::from_secs(5), || p
            .da
            .ul2tp("show tunnel")
            .trim()
            .is_empty()),
        "tunnel survived its management socket"
    );
}

/// A v3 HELLO control message for control connection `ccid`.
fn hello(ccid: u32) -> Vec<u8> {
    let mut m = vec![0xc8, 0x03, 0x00, 0x14];
    m.extend_from_slice(&ccid.to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 0, 0x80, 0x08, 0, 0, 0, 0, 0, 6]);
    m
}

fn recv_ctrl(t: &mut TunnelSocket, timeout: Duration) -> Option<(Vec<u8>, L2tpAddr)> {
    t.set_nonblocking(true).unwrap();
    recv_within(timeout, |b| {
        t.recv(b).map(|(n, from)| (b[..n].to_vec(), from))
    })
}

#[test]
fn managed_tunnels_carry_our_control_messages_and_die_with_their_socket() {
    let p = pair();
    let attrs = |tid, ptid| Attrs {
        conn_id: Some(tid),
        peer_conn_id: Some(ptid),
        proto_version: Some(3),
        encap_type: Some(0),
        ..Attrs::default()
    };
    let mut ta = TunnelSocket::create(
        &mut p.da.client(),
        attrs(100, 200),
        p.a.udp_socket("192.0.2.1:7000", "192.0.2.2:7000"),
    )
    .expect("managed a");
    let mut tb = TunnelSocket::create(
        &mut p.db.client(),
        attrs(200, 100),
        p.b.udp_socket("192.0.2.2:7000", "192.0.2.1:7000"),
    )
    .expect("managed b");
    // Sessions created through the API on the managed tunnels; data flows in ul2tp.
    let ifname = unique("m");
    p.ul2tp(
        &format!("add session name {ifname} tunnel_id 100 session_id 1 peer_session_id 2"),
        &format!("add session name {ifname} tunnel_id 200 session_id 2 peer_session_id 1"),
    );
    p.a.up_with(&ifname, "198.51.100.1/24");
    p.b.up_with(&ifname, "198.51.100.2/24");
    assert!(
        p.a.ping_retry("198.51.100.2", &[], 5),
        "data over managed tunnels"
    );

    // The control plane exchanges its own messages while data flows: they reach the peer
    // application, never the pseudowire.
    ta.send(&hello(200)).unwrap();
    let (m, from) = recv_ctrl(&mut tb, Duration::from_secs(3)).expect("HELLO at b");
    assert_eq!(m, hello(200));
    assert_eq!(
        (from.ip.to_string(), from.conn_id),
        ("192.0.2.1".to_string(), 7000)
    );
    tb.send(&hello(100)).unwrap();
    assert_eq!(
        recv_ctrl(&mut ta, Duration::from_secs(3))
            .expect("HELLO at a")
            .0,
        hello(100)
    );
    // Unknown-session data also reaches the application (docs/reference/kernel.md §1.2).
    let stray = [
        0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x77, 0x77, 1, 2, 3, 4, 5, 6, 7, 8,
    ];
    tb.send(&stray).unwrap();
    let (m, from) = recv_ctrl(&mut ta, Duration::from_secs(3)).expect("unknown-session data at a");
    assert_eq!((m.as_slice(), from.conn_id), (&stray[..], 7000));
    assert!(p.a.ping("198.51.100.2", &[]));

    // The same socket cannot carry a second tunnel (EBUSY).
    let dup = p.a.udp_socket("192.0.2.1:7002", "192.0.2.2:7002");
    let dup2 = dup.try_clone().unwrap();
    let _t3 = TunnelSocket::create(&mut p.da.client(), attrs(300, 400), dup).expect("third tunnel");
    assert_eq!(
        api_errno(TunnelSocket::create(
            &mut p.da.client(),
            attrs(301, 401),
            dup2
        )),
        Errno::EBUSY
    );
    // A TCP socket or a Unix socket is not a tunnel socket (EPROTONOSUPPORT).
    // (Created inside the daemon's namespace: a socket from another one is EINVAL first.)
    let tcp =
        p.a.run_in(|| std::net::TcpListener::bind("127.0.0.1:0").unwrap());
    assert_eq!(
        api_errno(TunnelSocket::create(
            &mut p.da.client(),
            attrs(302, 402),
            tcp
        )),
        Errno::EPROTONOSUPPORT
    );
    let (u1, _u2) =
        p.a.run_in(|| std::os::unix::net::UnixDatagram::pair().unwrap());
    assert_eq!(
        api_errno(TunnelSocket::create(
            &mut p.da.client(),
            attrs(303, 403),
            u1
        )),
        Errno::EPROTONOSUPPORT
    );
    // `fd` announced but nothing attached: EBADF.
    let mut a = attrs(304, 404);
    a.fd = Some(0);
    assert_eq!(
        api_errno(p.da.client().request(Command::TunnelCreate, a, false)),
        Errno::EBADF
    );

    // Closing the tunnel socket destroys the tunnel, its sessions and their devices.
    drop(ta);
    assert!(
        p.a.wait_link(&ifname, false, Duration::from_secs(5)),
        "device survived the tunnel socket"
    );
    assert!(!p.a.ping("198.51.100.2", &[]));
    let shown = p.da.ul2tp("show tunnel tunnel_id 100");
    assert!(shown.trim().is_empty(), "{shown}");
}

#[test]
fn l2tpip_sockets_listener_and_managed_ip_tunnels() {
    let p = pair();
    let a_ip: std::net::IpAddr = "192.0.2.1".parse().unwrap();
    let b_ip: std::net::IpAddr = "192.0.2.2".parse().unwrap();
    // b listens for new control connections on connection id 0 (docs/reference/kernel.md §8.4).
    let mut listener = L2tpIpSocket::bind(&mut p.db.client(), None, 0).expect("listener");
    assert_eq!(
        api_errno(L2tpIpSocket::bind(&mut p.db.client(), None, 0)),
        Errno::EADDRINUSE
    );
    // a opens its control connection socket (conn id 100) and sends an "SCCRQ" to id 0.
    let mut sa = L2tpIpSocket::bind(&mut p.da.client(), Some(a_ip), 100).expect("bind a");
    let sccrq = hello(0);
    sa.send_to(&sccrq, L2tpAddr::new(b_ip, 0)).unwrap();
    listener.set_nonblocking(false).unwrap();
    let mut buf = [0u8; 512];
    let (n, from) = listener.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], &sccrq[..]);
    assert_eq!(from.ip, a_ip);
    // b answers from its own connection socket (id 200) connected to a's id 100.
    let sb = L2tpIpSocket::bind_connect(
        &mut p.db.client(),
        Some(b_ip),
        200,
        L2tpAddr::new(a_ip, 100),
    )
    .expect("bind b");
    sb.send(&hello(100)).unwrap();
    sa.set_nonblocking(false).unwrap();
    let (n, from) = sa.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], &hello(100)[..]);
    assert_eq!(from.ip, b_ip);
    sa.connect(&mut p.da.client(), L2tpAddr::new(b_ip, 200))
        .expect("connect a");

    // Managed IP tunnels on the two sockets, an Ethernet session each, ping.
    let attrs = |tid, ptid| Attrs {
        conn_id: Some(tid),
        peer_conn_id: Some(ptid),
        proto_version: Some(3),
        encap_type: Some(1),
        ..Attrs::default()
    };
    let ta =
        TunnelSocket::create(&mut p.da.client(), attrs(100, 200), sa).expect("managed IP tunnel a");
    let tb =
        TunnelSocket::create(&mut p.db.client(), attrs(200, 100), sb).expect("managed IP tunnel b");
    let ifname = unique("i");
    p.ul2tp(
        &format!("add session name {ifname} tunnel_id 100 session_id 11 peer_session_id 22"),
        &format!("add session name {ifname} tunnel_id 200 session_id 22 peer_session_id 11"),
    );
    for (ns, a) in [(&p.a, "198.51.100.1/24"), (&p.b, "198.51.100.2/24")] {
        ns.up_with(&ifname, a);
    }
    assert!(
        p.a.ping_retry("198.51.100.2", &[], 5),
        "data over managed IP tunnels"
    );
    drop(ta);
    assert!(
        p.a.wait_link(&ifname, false, Duration::from_secs(5)),
        "closing the L2TP/IP socket keeps the tunnel"
    );
    drop(tb);
}

#[test]
fn vlan_pseudowires_two_vlans_over_one_tunnel() {
    let p = pair();
    p.ul2tp(
        "add tunnel tunnel_id 1 peer_tunnel_id 2 local 192.0.2.1 remote 192.0.2.2 udp_sport 5100 udp_dport 5100",
        "add tunnel tunnel_id 2 peer_tunnel_id 1 local 192.0.2.2 remote 192.0.2.1 udp_sport 5100 udp_dport 5100",
    );
    // VLAN 10 and 20 on both ends; a third session whose VLAN ids do not match (30 on a, 31
    // on b).
    let names: Vec<String> = (0..3).map(|_| unique("v")).collect();
    for (i, (vlan_a, vlan_b)) in [(10, 10), (20, 20), (30, 31)].into_iter().enumerate() {
        let (sa, sb) = (100 + i, 200 + i);
        let name = &names[i];
        p.ul2tp(
            &format!("add session name {name} pw_type eth_vlan vlan_id {vlan_a} tunnel_id 1 session_id {sa} peer_session_id {sb}"),
            &format!("add session name {name} pw_type eth_vlan vlan_id {vlan_b} tunnel_id 2 session_id {sb} peer_session_id {sa}"),
        );
    }
    for (ns, host) in [(&p.a, 1), (&p.b, 2)] {
        for (i, name) in names.iter().enumerate().take(2) {
            ns.up_with(name, &format!("10.{}.0.{host}/24", 50 + i));
        }
    }
    // The mismatched pair quietly (IPv4 only, static neighbours), so its counters are exact.
    let (mac_a, mac_b) = ("02:00:00:00:0a:52", "02:00:00:00:0b:52");
    p.a.quiet_link(&names[2], mac_a, "10.52.0.1/24", "10.52.0.2", mac_b);
    p.b.quiet_link(&names[2], mac_b, "10.52.0.2/24", "10.52.0.1", mac_a);
    let cap = Capture::start(&p.a, "eth0", "udp port 5100");
    assert!(p.a.ping_retry("10.50.0.2", &[], 5), "VLAN 10");
    assert!(p.a.ping_retry("10.51.0.2", &[], 5), "VLAN 20");
    assert_eq!(
        p.a.ping_count("10.52.0.2", 3, "0.2"),
        0,
        "mismatched VLANs passed a -> b"
    );
    assert_eq!(
        p.b.ping_count("10.52.0.1", 3, "0.2"),
        0,
        "mismatched VLANs passed b -> a"
    );
    // Each end sent three tagged requests (frame + 802.1Q tag + L2TPv3 header over UDP) and
    // discarded the three of the other VLAN.
    let want = Stats {
        rx_errors: 3,
        ..ping_stats(4 + V3_UDP_HEADER, 3, 0)
    };
    assert_eq!(
        p.da.session_stats(1, 102),
        want,
        "frames of another VLAN accepted"
    );
    assert_eq!(p.db.session_stats(2, 202), want);
    let pcap = cap.stop();
    ul2tp_it::require("tshark", "tshark");
    {
        let out = tshark(
            &pcap,
            &[
                "-d",
                "udp.port==5100,l2tp",
                "-d",
                "l2tp.pw_type==0,eth",
                "-o",
                "l2tp.cookie_size:cookie0",
                "-o",
                "l2tp.l2_specific:default",
                "-T",
                "fields",
                "-e",
                "l2tp.sid",
                "-e",
                "vlan.id",
            ],
        );
        let mut seen = std::collections::BTreeSet::new();
        for l in out.lines().filter(|l| !l.is_empty()) {
            let f: Vec<&str> = l.split('\t').collect();
            assert!(
                f.len() >= 2 && !f[1].is_empty(),
                "untagged frame in a VLAN pseudowire: {l:?}"
            );
            seen.insert((f[0].to_string(), f[1].to_string()));
        }
        for vid in ["10", "20"] {
            assert!(
                seen.iter().any(|(_, v)| v == vid),
                "no VLAN {vid} on the wire: {seen:?}"
            );
        }
    }
}

#[test]
fn two_tunnels_share_one_address_and_port_pair() {
    let p = pair();
    let names = [unique("s"), unique("s")];
    for (i, (ta, tb)) in [(1, 2), (3, 4)].into_iter().enumerate() {
        let (name, sid) = (&names[i], 10 + i);
        p.ul2tp(
            &format!("add tunnel tunnel_id {ta} peer_tunnel_id {tb} local 192.0.2.1 remote 192.0.2.2 udp_sport 5200 udp_dport 5200"),
            &format!("add tunnel tunnel_id {tb} peer_tunnel_id {ta} local 192.0.2.2 remote 192.0.2.1 udp_sport 5200 udp_dport 5200"),
        );
        p.ul2tp(
            &format!(
                "add session name {name} tunnel_id {ta} session_id {sid} peer_session_id {sid}"
            ),
            &format!(
                "add session name {name} tunnel_id {tb} session_id {sid} peer_session_id {sid}"
            ),
        );
    }
    for (ns, host) in [(&p.a, 1), (&p.b, 2)] {
        for (i, name) in names.iter().enumerate() {
            ns.up_with(name, &format!("10.{}.0.{host}/24", 60 + i));
        }
    }
    assert!(p.a.ping_retry("10.60.0.2", &[], 5), "first tunnel");
    assert!(
        p.a.ping_retry("10.61.0.2", &[], 5),
        "second tunnel on the same 5-tuple"
    );
    // Deleting one leaves the other (and the shared socket) working.
    p.da.ul2tp("del tunnel tunnel_id 1");
    assert!(
        p.a.ping_retry("10.61.0.2", &[], 3),
        "second tunnel after deleting the first"
    );
}

#[test]
fn debug_listing_traces_and_pppol2tp_errors() {
    let p = pair();
    p.da.ul2tp("add tunnel tunnel_id 3000 peer_tunnel_id 4000 local 192.0.2.1 remote 192.0.2.2 udp_sport 5300 udp_dport 5300");
    p.da.ul2tp("add session tunnel_id 3000 session_id 1000 peer_session_id 2000 cookie 01020304");
    let listing = p.da.ul2tp("debug tunnels");
    for want in [
        "TUNNEL 3000 peer 4000 from 192.0.2.1 to 192.0.2.2",
        " source port 5300, dest port 5300",
        " L2TPv3, UDP",
        "  SESSION 1000, peer 2000, ETH",
        "   cookie 01020304",
        "   interface l2tpeth0",
    ] {
        assert!(listing.contains(want), "missing {want:?} in:\n{listing}");
    }
    // An Ethernet session is not a PPP session (EPROTOTYPE).
    let r = SessionSocket::connect(
        &mut p.da.client(),
        PppoL2tpAddr {
            tunnel_id: 3000,
            session_id: 1000,
            peer_tunnel_id: 4000,
            peer_session_id: 2000,
            version: 3,
            tunnel_fd: None,
        },
    );
    assert_eq!(api_errno(r), Errno::EPROTOTYPE);

    // Traces are off until switched on; then the session's events reach monitors.
    let mut m = p.da.client();
    m.request(Command::Monitor, Attrs::default(), false)
        .unwrap();
    p.da.ul2tp("trace on tunnel_id 3000 session_id 1000");
    p.da.ul2tp("del session tunnel_id 3000 session_id 1000");
    let mut texts = Vec::new();
    for _ in 0..6 {
        let e = m.next_message().unwrap();
        if let Some(t) = e.text {
            texts.push(t);
        }
        if texts.iter().any(|t| t.starts_with("delete_session")) {
            break;
        }
    }
    assert!(
        texts.iter().any(|t| t == "delete_session: sess 3000/1000"),
        "{texts:?}"
    );
    assert_eq!(
        api_errno(p.da.client().request(
            Command::TraceSet,
            Attrs {
                conn_id: Some(9),
                debug: Some(1),
                ..Attrs::default()
            },
            false
        )),
        Errno::ENODEV
    );
    let _ = pw_type::PPP;
}

/// In process: the daemon embedded in the application (`ul2tpd::Embedded`), the same
/// session socket API over a private connection, talking to an ordinary daemon.
#[test]
fn in_process_session_socket_with_embedded_daemon() {
    let p = pair();
    let mut sb = v2_ppp_peer(&p.db);
    // Everything of the application side runs on a thread inside namespace a, where the
    // embedded daemon then opens its sockets.
    let (at_b, at_a, stats) = p.a.run_in(move || {
        let embedded = ul2tpd::Embedded::start(1).expect("embedded daemon");
        let mut client = ul2tp::Client::from_stream(embedded.connect().unwrap());
        let t = Attrs {
            conn_id: Some(10),
            peer_conn_id: Some(20),
            proto_version: Some(2),
            encap_type: Some(0),
            ip_saddr: Some("192.0.2.1".parse().unwrap()),
            ip_daddr: Some("192.0.2.2".parse().unwrap()),
            udp_sport: Some(1701),
            udp_dport: Some(1701),
            ..Attrs::default()
        };
        client
            .request(Command::TunnelCreate, t, false)
            .expect("tunnel");
        let s = Attrs {
            conn_id: Some(10),
            session_id: Some(1),
            peer_session_id: Some(2),
            pw_type: Some(pw_type::PPP),
            ..Attrs::default()
        };
        client
            .request(Command::SessionCreate, s, false)
            .expect("session");
        let mut sa = SessionSocket::connect(
            &mut client,
            PppoL2tpAddr {
                tunnel_id: 10,
                session_id: 1,
                peer_tunnel_id: 20,
                peer_session_id: 2,
                version: 2,
                tunnel_fd: None,
            },
        )
        .expect("in-process session socket");
        sa.send_frame(&lcp(42)).unwrap();
        let at_b = recv_frame_within(&mut sb, Duration::from_secs(3));
        sb.send_frame(&lcp(43)).unwrap();
        let at_a = recv_frame_within(&mut sa, Duration::from_secs(3));
        sa.set_nonblocking(false).unwrap();
        let stats = sa.stats().expect("PPPIOCGL2TPSTATS");
        (at_b, at_a, stats)
    });
    assert_eq!(at_b.as_deref(), Some(&lcp(42)[..]), "embedded -> daemon");
    assert_eq!(at_a.as_deref(), Some(&lcp(43)[..]), "daemon -> embedded");
    assert_eq!(stats, ppp_stats(10, 1, V2_HEADER + LCP_FRAME, 1, 1));
}
