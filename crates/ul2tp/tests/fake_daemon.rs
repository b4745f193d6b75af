//! The library against a fake ul2tpd: a thread serving the API socket that answers JSON
//! lines and hands out one end of a seqpacket pair with SCM_RIGHTS, exactly as the
//! protocol of `ul2tp_api::sockproto` says.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use ul2tp::api::sockproto::{self, IocStats, SockMsg};
use ul2tp::api::{
    decode_line, encode_line, ApiError, Attrs, Command, Errno, Request, ServerMessage, Stats,
};
use ul2tp::{
    Client, ClientError, L2tpAddr, L2tpIpSocket, PppoL2tpAddr, SessionOption, SessionSocket,
    TunnelSocket,
};
use ul2tp_sys::fdpass::{recv_with_fds, send_all_with_fds};

// ---------------------------------------------------------------- fake daemon plumbing

/// The daemon side of one API connection.
struct Conn {
    stream: UnixStream,
    buf: Vec<u8>,
    fds: Vec<OwnedFd>,
}

impl Conn {
    /// Next request line and the descriptors that came with it; `None` at EOF.
    fn request(&mut self) -> Option<(Request, Vec<OwnedFd>)> {
        loop {
            if let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=nl).collect();
                let req: Request = decode_line(&line).expect("request decodes");
                return Some((req, std::mem::take(&mut self.fds)));
            }
            let mut chunk = [0u8; 4096];
            let (n, fds) = recv_with_fds(&self.stream, &mut chunk).expect("recv request");
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
            self.fds.extend(fds);
        }
    }

    /// Send a line with descriptors attached, in one sendmsg.
    fn send(&self, msg: &ServerMessage, fds: &[RawFd]) {
        send_all_with_fds(&self.stream, &encode_line(msg), fds).expect("send reply");
    }

    /// Reply `{"seq":N}` with a fresh seqpacket descriptor; returns the daemon's end.
    fn reply_with_chan(&self, seq: u64) -> End {
        let (mine, theirs) = ul2tp_sys::seqpacket::pair().expect("pair");
        self.send(&ServerMessage::ok(seq), &[theirs.as_raw_fd()]);
        End::new(mine)
    }

    fn reply_err(&self, seq: u64, errno: Errno) {
        self.send(&ServerMessage::err(seq, ApiError::new(errno, "fake")), &[]);
    }
}

/// The daemon's end of an application descriptor.
struct End(UnixDatagram);

impl End {
    fn new(fd: OwnedFd) -> End {
        let d = UnixDatagram::from(fd);
        d.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        End(d)
    }

    /// Next message; `None` when the application closed its end.
    fn recv(&self) -> Option<SockMsg> {
        let mut b = vec![0u8; 70000];
        let n = self.0.recv(&mut b).expect("daemon end recv (timeout?)");
        if n == 0 {
            return None;
        }
        Some(SockMsg::decode(&b[..n]).expect("well-formed message from the library"))
    }

    fn send(&self, m: &SockMsg) {
        self.0.send(&m.encode()).expect("daemon end send");
    }

    fn send_raw(&self, b: &[u8]) {
        self.0.send(b).expect("daemon end send");
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Start a fake daemon that runs `script` on the first connection; returns a connected
/// client and the thread (join it to surface the script's assertion failures).
fn serve(script: impl FnOnce(Conn) + Send + 'static) -> (Client, JoinHandle<()>) {
    let path: PathBuf = std::env::temp_dir().join(format!(
        "ul2tp-lib-test-{}-{}.sock",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).expect("bind fake daemon");
    let h = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        script(Conn {
            stream,
            buf: Vec::new(),
            fds: Vec::new(),
        });
    });
    let client = Client::connect(&path).expect("connect to fake daemon");
    let _ = std::fs::remove_file(&path);
    (client, h)
}

/// A tiny model of the kernel's PPPoL2TP option handling (docs/reference/kernel.md §7.5), so the
/// option tests exercise real request/reply pairs.
fn serve_session_options(end: &End, tunnel_socket: bool) -> Vec<SockMsg> {
    let mut vals = [0i32; 6];
    let mut seen = Vec::new();
    while let Some(m) = end.recv() {
        seen.push(m.clone());
        let reply = match m {
            SockMsg::SetOpt { option, value } => match option {
                sockproto::SO_DEBUG => SockMsg::ok(vec![]),
                2..=4 if tunnel_socket => SockMsg::fail(Errno::ENOPROTOOPT),
                2..=4 if !(0..=1).contains(&value) => SockMsg::fail(Errno::EINVAL),
                2..=5 => {
                    vals[option as usize] = value;
                    SockMsg::ok(vec![])
                }
                _ => SockMsg::fail(Errno::ENOPROTOOPT),
            },
            SockMsg::GetOpt { option } => match option {
                1 => SockMsg::ok(0i32.to_ne_bytes().to_vec()),
                2..=5 if !tunnel_socket => {
                    SockMsg::ok(vals[option as usize].to_ne_bytes().to_vec())
                }
                _ => SockMsg::fail(Errno::ENOPROTOOPT),
            },
            SockMsg::Stats { session_id } => {
                if tunnel_socket && session_id != 0 && session_id != 7 {
                    SockMsg::fail(Errno::EBADR)
                } else {
                    let s = IocStats {
                        tunnel_id: 100,
                        session_id,
                        using_ipsec: false,
                        stats: Stats {
                            tx_packets: 3,
                            tx_bytes: 300 + u64::from(session_id),
                            rx_packets: 2,
                            rx_bytes: 1 << 40,
                            rx_seq_discards: 5,
                            rx_oos_packets: 6,
                            rx_errors: 7,
                            tx_errors: 1,
                            ..Stats::default()
                        },
                    };
                    SockMsg::ok(s.to_bytes().to_vec())
                }
            }
            _ => continue,
        };
        end.send(&reply);
    }
    seen
}

fn addr(session_id: u32) -> PppoL2tpAddr<'static> {
    PppoL2tpAddr {
        tunnel_id: 100,
        session_id,
        peer_tunnel_id: 200,
        peer_session_id: if session_id == 0 {
            0
        } else {
            session_id + 1000
        },
        version: 2,
        tunnel_fd: None,
    }
}

// ---------------------------------------------------------------- session sockets

#[test]
fn pppol2tp_connect_passes_ids_and_carries_frames_both_ways() {
    let (mut client, h) = serve(|mut conn| {
        let (req, fds) = conn.request().unwrap();
        assert_eq!(req.cmd, Command::Pppol2tpConnect);
        assert!(fds.is_empty());
        let a = &req.attrs;
        assert_eq!(
            (a.conn_id, a.session_id, a.peer_conn_id, a.peer_session_id),
            (Some(100), Some(5), Some(200), Some(1005))
        );
        assert_eq!(a.proto_version, Some(2));
        assert_eq!(a.fd, None);
        let end = conn.reply_with_chan(req.seq);
        // LCP Configure-Request from the application (no FF 03).
        assert_eq!(
            end.recv(),
            Some(SockMsg::Frame(vec![0xc0, 0x21, 1, 1, 0, 4]))
        );
        end.send(&SockMsg::Frame(vec![0xc0, 0x21, 2, 1, 0, 4]));
        end.send(&SockMsg::Frame(vec![0x00, 0x21, 0x45, 0, 0, 20]));
        // The application closes the session socket: the daemon sees EOF.
        assert_eq!(end.recv(), None);
    });
    let mut s = SessionSocket::connect(&mut client, addr(5)).unwrap();
    assert_eq!(s.ids(), (100, 5, 200, 1005, 2));
    assert_eq!(s.send_frame(&[0xc0, 0x21, 1, 1, 0, 4]).unwrap(), 6);
    let mut buf = [0u8; 64];
    let n = s.recv_frame(&mut buf).unwrap();
    assert_eq!(&buf[..n], &[0xc0, 0x21, 2, 1, 0, 4]);
    // A short buffer gets the head of the frame.
    let mut small = [0u8; 3];
    assert_eq!(s.recv_frame(&mut small).unwrap(), 3);
    assert_eq!(small, [0x00, 0x21, 0x45]);
    drop(s);
    h.join().unwrap();
}

#[test]
fn tunnel_fd_is_attached_to_pppol2tp_connect() {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let local = udp.local_addr().unwrap();
    let (mut client, h) = serve(move |mut conn| {
        let (req, fds) = conn.request().unwrap();
        assert_eq!(req.attrs.fd, Some(0));
        assert_eq!(fds.len(), 1);
        // The descriptor is the application's UDP socket.
        let got = UdpSocket::from(fds.into_iter().next().unwrap());
        assert_eq!(got.local_addr().unwrap(), local);
        let end = conn.reply_with_chan(req.seq);
        serve_session_options(&end, true);
    });
    let a = PppoL2tpAddr {
        tunnel_fd: Some(std::os::fd::AsFd::as_fd(&udp)),
        ..addr(0)
    };
    let mut t = SessionSocket::connect(&mut client, a).unwrap();
    // A tunnel management socket refuses session options (docs/reference/kernel.md §7.5).
    let e = t.set_option(SessionOption::SendSeq, 1).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(Errno::ENOPROTOOPT.number()));
    t.set_option(SessionOption::Debug, 0xff).unwrap();
    assert_eq!(t.get_option(SessionOption::Debug).unwrap(), 0);
    let ts = t.tunnel_stats().unwrap();
    assert_eq!((ts.tunnel_id, ts.session_id), (100, 0));
    let ss = t.session_stats(7).unwrap();
    assert_eq!((ss.session_id, ss.stats.tx_bytes), (7, 307));
    let e = t.session_stats(8).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(Errno::EBADR.number()));
    drop(t);
    h.join().unwrap();
}

#[test]
fn error_reply_has_no_descriptor_and_the_connection_stays_usable() {
    let (mut client, h) = serve(|mut conn| {
        let (req, _) = conn.request().unwrap();
        assert_eq!(req.attrs.conn_id, Some(0));
        conn.reply_err(req.seq, Errno::EINVAL);
        let (req, _) = conn.request().unwrap();
        conn.reply_err(req.seq, Errno::EEXIST);
        let (req, _) = conn.request().unwrap();
        let end = conn.reply_with_chan(req.seq);
        assert_eq!(end.recv(), None);
    });
    let bad = PppoL2tpAddr {
        tunnel_id: 0,
        ..addr(5)
    };
    match SessionSocket::connect(&mut client, bad) {
        Err(ClientError::Api(e)) => assert_eq!(e.errno, Errno::EINVAL),
        other => panic!("expected EINVAL, got {other:?}"),
    }
    let e = SessionSocket::connect(&mut client, addr(5)).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(Errno::EEXIST.number()));
    let io: std::io::Error = e.into();
    assert_eq!(io.raw_os_error(), Some(Errno::EEXIST.number()));
    let s = SessionSocket::connect(&mut client, addr(5)).unwrap();
    drop(s);
    h.join().unwrap();
}

#[test]
fn success_reply_without_descriptor_is_a_protocol_error() {
    let (mut client, h) = serve(|mut conn| {
        let (req, _) = conn.request().unwrap();
        conn.send(&ServerMessage::ok(req.seq), &[]);
    });
    match SessionSocket::connect(&mut client, addr(5)) {
        Err(ClientError::Protocol(m)) => assert!(m.contains("0 descriptors"), "{m}"),
        other => panic!("expected a protocol error, got {other:?}"),
    }
    h.join().unwrap();
}

#[test]
fn options_roundtrip_and_errors_map_to_errno() {
    let (mut client, h) = serve(|mut conn| {
        let (req, _) = conn.request().unwrap();
        let end = conn.reply_with_chan(req.seq);
        let seen = serve_session_options(&end, false);
        assert!(seen.contains(&SockMsg::SetOpt {
            option: sockproto::SO_REORDERTO,
            value: 250
        }));
    });
    let mut s = SessionSocket::connect(&mut client, addr(5)).unwrap();
    assert_eq!(s.get_option(SessionOption::SendSeq).unwrap(), 0);
    s.set_option(SessionOption::SendSeq, 1).unwrap();
    s.set_option(SessionOption::LnsMode, 1).unwrap();
    s.set_option(SessionOption::ReorderTimeout, 250).unwrap();
    assert_eq!(s.get_option(SessionOption::SendSeq).unwrap(), 1);
    assert_eq!(s.get_option(SessionOption::LnsMode).unwrap(), 1);
    assert_eq!(s.get_option(SessionOption::RecvSeq).unwrap(), 0);
    assert_eq!(s.get_option(SessionOption::ReorderTimeout).unwrap(), 250);
    let e = s.set_option(SessionOption::RecvSeq, 2).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(Errno::EINVAL.number()));
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    let e = s.set_option_raw(99, 1).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(Errno::ENOPROTOOPT.number()));
    let e = s.get_option_raw(6).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(Errno::ENOPROTOOPT.number()));
    // The failed set left the value alone.
    assert_eq!(s.get_option(SessionOption::RecvSeq).unwrap(), 0);
    drop(s);
    h.join().unwrap();
}

#[test]
fn option_ids_are_the_kernels() {
    let ids: Vec<u32> = [
        SessionOption::Debug,
        SessionOption::RecvSeq,
        SessionOption::SendSeq,
        SessionOption::LnsMode,
        SessionOption::ReorderTimeout,
    ]
    .iter()
    .map(|o| o.id())
    .collect();
    assert_eq!(ids, [1, 2, 3, 4, 5]);
    for id in 1..=5 {
        assert_eq!(SessionOption::from_id(id).map(|o| o.id()), Some(id));
    }
    assert_eq!(SessionOption::from_id(0), None);
    assert_eq!(SessionOption::from_id(6), None);
}

#[test]
fn frames_that_arrive_while_waiting_for_a_reply_are_queued_in_order() {
    let (mut client, h) = serve(|mut conn| {
        let (req, _) = conn.request().unwrap();
        let end = conn.reply_with_chan(req.seq);
        assert_eq!(
            end.recv(),
            Some(SockMsg::SetOpt {
                option: 3,
                value: 1
            })
        );
        end.send(&SockMsg::Frame(vec![0xc0, 0x21, 1]));
        end.send_raw(&[0x7f, 1, 2]); // malformed: skipped
        end.send(&SockMsg::Frame(vec![0xc0, 0x21, 2]));
        end.send(&SockMsg::ok(vec![]));
        assert_eq!(end.recv(), Some(SockMsg::Stats { session_id: 0 }));
        end.send(&SockMsg::Frame(vec![0xc0, 0x21, 3]));
        let st = IocStats {
            tunnel_id: 100,
            session_id: 5,
            ..IocStats::default()
        };
        end.send(&SockMsg::ok(st.to_bytes().to_vec()));
        end.send(&SockMsg::Frame(vec![0xc0, 0x21, 4]));
        assert_eq!(end.recv(), None);
    });
    let mut s = SessionSocket::connect(&mut client, addr(5)).unwrap();
    s.set_option(SessionOption::SendSeq, 1).unwrap();
    assert_eq!(s.pending(), 2);
    let st = s.stats().unwrap();
    assert_eq!((st.tunnel_id, st.session_id), (100, 5));
    assert_eq!(s.pending(), 3);
    for i in 1..=4u8 {
        assert_eq!(s.recv_frame_vec().unwrap(), Some(vec![0xc0, 0x21, i]));
    }
    drop(s);
    h.join().unwrap();
}

#[test]
fn stats_are_decoded_from_the_kernel_layout() {
    let (mut client, h) = serve(|mut conn| {
        let (req, _) = conn.request().unwrap();
        let end = conn.reply_with_chan(req.seq);
        serve_session_options(&end, false);
    });
    let mut s = SessionSocket::connect(&mut client, addr(5)).unwrap();
    let st = s.stats().unwrap();
    assert_eq!(st.tunnel_id, 100);
    assert_eq!(st.stats.tx_packets, 3);
    assert_eq!(st.stats.tx_bytes, 300);
    assert_eq!(st.stats.tx_errors, 1);
    assert_eq!(st.stats.rx_packets, 2);
    assert_eq!(st.stats.rx_bytes, 1 << 40);
    assert_eq!(st.stats.rx_seq_discards, 5);
    assert_eq!(st.stats.rx_oos_packets, 6);
    assert_eq!(st.stats.rx_errors, 7);
    drop(s);
    h.join().unwrap();
}

#[test]
fn bad_replies_on_the_socket_are_errors_not_panics() {
    let (mut client, h) = serve(|mut conn| {
        let (req, _) = conn.request().unwrap();
        let end = conn.reply_with_chan(req.seq);
        assert!(matches!(end.recv(), Some(SockMsg::Stats { .. })));
        end.send(&SockMsg::ok(vec![0; 71])); // one byte short
        assert!(matches!(end.recv(), Some(SockMsg::GetOpt { .. })));
        end.send(&SockMsg::ok(vec![1, 2])); // not an int
                                            // The daemon goes away: calls fail with EBADF (session gone).
    });
    let mut s = SessionSocket::connect(&mut client, addr(5)).unwrap();
    let e = s.stats().unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
    let e = s.get_option(SessionOption::SendSeq).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
    h.join().unwrap();
    let e = s.get_option(SessionOption::SendSeq).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(Errno::EBADF.number()));
    assert_eq!(s.recv_frame(&mut [0u8; 8]).unwrap(), 0);
}

#[test]
fn nonblocking_receive_would_block_but_options_still_wait() {
    let (mut client, h) = serve(|mut conn| {
        let (req, _) = conn.request().unwrap();
        let end = conn.reply_with_chan(req.seq);
        // Answer the option only after a pause, so a nonblocking call would fail.
        assert!(matches!(end.recv(), Some(SockMsg::GetOpt { .. })));
        std::thread::sleep(Duration::from_millis(50));
        end.send(&SockMsg::ok(1i32.to_ne_bytes().to_vec()));
        end.send(&SockMsg::Frame(vec![9]));
        assert_eq!(end.recv(), None);
    });
    let mut s = SessionSocket::connect(&mut client, addr(5)).unwrap();
    s.set_nonblocking(true).unwrap();
    let e = s.recv_frame(&mut [0u8; 8]).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
    assert_eq!(s.get_option(SessionOption::SendSeq).unwrap(), 1);
    // Still nonblocking afterwards; the frame arrives shortly.
    let mut got = None;
    for _ in 0..500 {
        match s.recv_frame_vec() {
            Ok(f) => {
                got = f;
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(2))
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(got, Some(vec![9]));
    drop(s);
    h.join().unwrap();
}

// ---------------------------------------------------------------- client fd bookkeeping

#[test]
fn descriptors_stay_with_their_reply_line() {
    let (mut client, h) = serve(|mut conn| {
        let (r1, _) = conn.request().unwrap();
        let (r2, _) = conn.request().unwrap();
        // An event, then both replies, all queued before the client reads: the client may
        // read them in one recvmsg but must hand each descriptor to its own reply.
        conn.send(
            &ServerMessage::event(Command::SessionCreate, Attrs::default()),
            &[],
        );
        let e1 = conn.reply_with_chan(r1.seq);
        let e2 = conn.reply_with_chan(r2.seq);
        e1.send(&SockMsg::Frame(vec![1]));
        e2.send(&SockMsg::Frame(vec![2]));
        assert_eq!(e1.recv(), None);
        assert_eq!(e2.recv(), None);
    });
    let s1 = client
        .send(Command::Pppol2tpConnect, Attrs::default(), false)
        .unwrap();
    let s2 = client
        .send(Command::Pppol2tpConnect, Attrs::default(), false)
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let (_, f1) = client.reply_with_fds(s1).unwrap();
    let (_, f2) = client.reply_with_fds(s2).unwrap();
    assert_eq!((f1.len(), f2.len()), (1, 1));
    let mut a = SessionSocket::from_fd(f1.into_iter().next().unwrap()).unwrap();
    let mut b = SessionSocket::from_fd(f2.into_iter().next().unwrap()).unwrap();
    assert_eq!(a.recv_frame_vec().unwrap(), Some(vec![1]));
    assert_eq!(b.recv_frame_vec().unwrap(), Some(vec![2]));
    drop((a, b));
    h.join().unwrap();
}

#[test]
fn plain_requests_still_work() {
    let (mut client, h) = serve(|mut conn| {
        let (req, _) = conn.request().unwrap();
        assert_eq!(req.cmd, Command::Noop);
        let mut m = ServerMessage::ok(req.seq);
        m.text = Some("hello".into());
        conn.send(&m, &[]);
        let (req, _) = conn.request().unwrap();
        conn.reply_err(req.seq, Errno::ENODEV);
    });
    let m = client
        .request(Command::Noop, Attrs::default(), false)
        .unwrap();
    assert_eq!(m.text.as_deref(), Some("hello"));
    match client.request(Command::TunnelGet, Attrs::default(), false) {
        Err(ClientError::Api(e)) => assert_eq!(e.errno, Errno::ENODEV),
        other => panic!("{other:?}"),
    }
    h.join().unwrap();
    // The daemon closed the connection.
    assert!(matches!(
        client.request(Command::Noop, Attrs::default(), false),
        Err(ClientError::Io(_))
    ));
}

// ---------------------------------------------------------------- managed tunnels

#[test]
fn managed_tunnel_passes_the_udp_socket_and_carries_control_messages() {
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    let peer_addr = peer.local_addr().unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.connect(peer_addr).unwrap();
    let local = udp.local_addr().unwrap();
    let (mut client, h) = serve(move |mut conn| {
        let (req, fds) = conn.request().unwrap();
        assert_eq!(req.cmd, Command::TunnelCreate);
        assert_eq!(req.attrs.fd, Some(0));
        assert_eq!(req.attrs.conn_id, Some(10));
        assert_eq!(req.attrs.proto_version, Some(3));
        assert_eq!(fds.len(), 1);
        let got = UdpSocket::from(fds.into_iter().next().unwrap());
        assert_eq!(got.local_addr().unwrap(), local);
        assert_eq!(got.peer_addr().unwrap(), peer_addr);
        let end = conn.reply_with_chan(req.seq);
        // A control message from the peer, as the kernel would leave it on the socket.
        end.send(&SockMsg::Dgram {
            addr: peer_addr.ip(),
            conn_id: u32::from(peer_addr.port()),
            payload: vec![0xc8, 0x03, 0, 12],
        });
        // The application's HELLO, to the connected peer.
        assert_eq!(
            end.recv(),
            Some(SockMsg::Dgram {
                addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                conn_id: 0,
                payload: vec![0xc8, 0x03, 0, 20],
            })
        );
        // Dropping the TunnelSocket closes the descriptor: the tunnel goes.
        assert_eq!(end.recv(), None);
    });
    let attrs = Attrs {
        conn_id: Some(10),
        peer_conn_id: Some(20),
        proto_version: Some(3),
        encap_type: Some(0),
        ..Attrs::default()
    };
    let mut t = TunnelSocket::create(&mut client, attrs, udp).unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = t.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], &[0xc8, 0x03, 0, 12]);
    assert_eq!(
        SocketAddr::new(from.ip, from.conn_id as u16),
        peer_addr,
        "UDP source carried in conn_id"
    );
    t.send(&[0xc8, 0x03, 0, 20]).unwrap();
    drop(t);
    h.join().unwrap();
}

#[test]
fn managed_tunnel_refused_keeps_no_descriptor() {
    let (mut client, h) = serve(|mut conn| {
        let (req, fds) = conn.request().unwrap();
        assert_eq!(fds.len(), 1);
        conn.reply_err(req.seq, Errno::EEXIST);
    });
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    match TunnelSocket::create(&mut client, Attrs::default(), udp) {
        Err(ClientError::Api(e)) => assert_eq!(e.errno, Errno::EEXIST),
        other => panic!("{other:?}"),
    }
    h.join().unwrap();
}

// ---------------------------------------------------------------- L2TP/IP sockets

#[test]
fn l2tpip_bind_recv_send_and_connect() {
    let peer = L2tpAddr::new("192.0.2.2".parse().unwrap(), 77);
    let (mut client, h) = serve(move |mut conn| {
        let (req, _) = conn.request().unwrap();
        assert_eq!(req.cmd, Command::L2tpipSocket);
        assert_eq!(req.attrs.ip_saddr, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(req.attrs.conn_id, Some(0));
        assert_eq!((req.attrs.ip_daddr, req.attrs.peer_conn_id), (None, None));
        let end = conn.reply_with_chan(req.seq);
        end.send(&SockMsg::Dgram {
            addr: peer.ip,
            conn_id: 0,
            payload: vec![0xc8, 3, 0, 12, 0, 0, 0, 0],
        });
        assert_eq!(
            end.recv(),
            Some(SockMsg::Dgram {
                addr: peer.ip,
                conn_id: 77,
                payload: vec![0xc8, 3],
            })
        );
        // connect(): the old descriptor is closed, a connected one is requested. The
        // first attempt races with our noticing the close.
        let (req, _) = conn.request().unwrap();
        assert_eq!(req.attrs.ip_daddr, Some("192.0.2.2".parse().unwrap()));
        assert_eq!(req.attrs.peer_conn_id, Some(77));
        assert_eq!(req.attrs.conn_id, Some(0));
        conn.reply_err(req.seq, Errno::EADDRINUSE);
        assert_eq!(end.recv(), None);
        let (req, _) = conn.request().unwrap();
        let end = conn.reply_with_chan(req.seq);
        assert_eq!(
            end.recv(),
            Some(SockMsg::Dgram {
                addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                conn_id: 77,
                payload: vec![1, 2, 3],
            })
        );
        assert_eq!(end.recv(), None);
    });
    let mut s = L2tpIpSocket::bind(&mut client, Some("192.0.2.1".parse().unwrap()), 0).unwrap();
    let e = s.send(&[1]).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(Errno::EDESTADDRREQ.number()));
    let mut buf = [0u8; 32];
    let (n, from) = s.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], &[0xc8, 3, 0, 12, 0, 0, 0, 0]);
    assert_eq!(from, L2tpAddr::new(peer.ip, 0));
    s.send_to(&[0xc8, 3], peer).unwrap();
    s.connect(&mut client, peer).unwrap();
    assert_eq!(s.peer(), Some(peer));
    assert_eq!(s.send(&[1, 2, 3]).unwrap(), 3);
    drop(s);
    h.join().unwrap();
}

#[test]
fn l2tpip_v6_bind_connect_in_one_request() {
    let (mut client, h) = serve(|mut conn| {
        let (req, _) = conn.request().unwrap();
        assert_eq!(req.attrs.ip6_saddr, Some("fd00::1".parse().unwrap()));
        assert_eq!(req.attrs.ip6_daddr, Some("fd00::2".parse().unwrap()));
        assert_eq!(
            (req.attrs.conn_id, req.attrs.peer_conn_id),
            (Some(5), Some(6))
        );
        let end = conn.reply_with_chan(req.seq);
        assert_eq!(
            end.recv(),
            Some(SockMsg::Dgram {
                addr: "::".parse().unwrap(),
                conn_id: 6,
                payload: vec![0xc8],
            })
        );
    });
    let mut s = L2tpIpSocket::bind_connect(
        &mut client,
        Some("fd00::1".parse().unwrap()),
        5,
        L2tpAddr::new("fd00::2".parse().unwrap(), 6),
    )
    .unwrap();
    s.send(&[0xc8]).unwrap();
    h.join().unwrap();
    // The daemon's end is gone: receiving reports the socket as dead.
    let e = s.recv_from(&mut [0u8; 8]).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(Errno::EBADF.number()));
    // Mixed families are refused before asking the daemon.
    assert!(L2tpIpSocket::bind_connect(
        &mut client,
        Some("192.0.2.1".parse().unwrap()),
        5,
        L2tpAddr::new("fd00::2".parse().unwrap(), 6),
    )
    .is_err());
}

#[test]
fn failed_send_reported_by_the_daemon_surfaces_on_receive() {
    let (mut client, h) = serve(|mut conn| {
        let (req, _) = conn.request().unwrap();
        let end = conn.reply_with_chan(req.seq);
        assert!(matches!(end.recv(), Some(SockMsg::Dgram { .. })));
        end.send(&SockMsg::fail(Errno::EDESTADDRREQ));
        end.send(&SockMsg::Dgram {
            addr: "192.0.2.9".parse().unwrap(),
            conn_id: 0,
            payload: vec![0xc8, 3],
        });
        assert_eq!(end.recv(), None);
    });
    let mut s = L2tpIpSocket::bind(&mut client, None, 9).unwrap();
    s.send_to(&[0xc8, 3], L2tpAddr::new("0.0.0.0".parse().unwrap(), 0))
        .unwrap();
    let mut buf = [0u8; 8];
    let e = s.recv_from(&mut buf).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(Errno::EDESTADDRREQ.number()));
    // The error is reported once; the next message comes through.
    let (n, from) = s.recv_from(&mut buf).unwrap();
    assert_eq!(
        (&buf[..n], from.ip),
        (&[0xc8, 3][..], "192.0.2.9".parse().unwrap())
    );
    drop(s);
    h.join().unwrap();
}

// ---------------------------------------------------------------- reply line framing

/// A client on one end of a stream pair, the raw daemon side on the other.
fn stream_pair() -> (Client, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    (Client::from_stream(a), b)
}

fn seqpacket_with(tag: u8) -> (OwnedFd, UnixDatagram) {
    let (mine, theirs) = ul2tp_sys::seqpacket::pair().unwrap();
    let d = UnixDatagram::from(mine);
    d.send(&[sockproto::FRAME, tag]).unwrap();
    (theirs, d)
}

fn frame_of(fd: OwnedFd) -> Vec<u8> {
    SessionSocket::from_fd(fd)
        .unwrap()
        .recv_frame_vec()
        .unwrap()
        .unwrap()
}

#[test]
fn descriptor_travelling_with_a_split_line_belongs_to_that_line() {
    let (mut client, d) = stream_pair();
    let (fd1, _k1) = seqpacket_with(1);
    // The line arrives in three writes; the descriptor with the first.
    send_all_with_fds(&d, b"{\"se", &[fd1.as_raw_fd()]).unwrap();
    send_all_with_fds(&d, b"q\":1", &[]).unwrap();
    send_all_with_fds(&d, b"}\n{\"seq\":2}\n", &[]).unwrap();
    let (m, fds) = client.next_message_with_fds().unwrap();
    assert_eq!(m.seq, Some(1));
    assert_eq!(fds.len(), 1);
    assert_eq!(frame_of(fds.into_iter().next().unwrap()), vec![1]);
    let (m, fds) = client.next_message_with_fds().unwrap();
    assert_eq!((m.seq, fds.len()), (Some(2), 0));
}

#[test]
fn descriptor_sent_mid_line_stays_with_the_line_it_continues() {
    // Not what the daemon does, but the client must not hand it to the wrong reply.
    let (mut client, d) = stream_pair();
    let (fd1, _k1) = seqpacket_with(7);
    send_all_with_fds(&d, b"{\"seq\":", &[]).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    // Read the first part now, so the next recvmsg starts mid-line.
    let h = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        send_all_with_fds(&d, b"3}\n", &[fd1.as_raw_fd()]).unwrap();
        send_all_with_fds(&d, b"{\"seq\":4}\n", &[]).unwrap();
        d
    });
    let (m, fds) = client.next_message_with_fds().unwrap();
    assert_eq!((m.seq, fds.len()), (Some(3), 1));
    assert_eq!(frame_of(fds.into_iter().next().unwrap()), vec![7]);
    let (m, fds) = client.next_message_with_fds().unwrap();
    assert_eq!((m.seq, fds.len()), (Some(4), 0));
    drop(h.join().unwrap());
}

#[test]
fn garbage_and_eof_from_the_daemon_are_errors() {
    let (mut client, d) = stream_pair();
    (&d).write_all(b"not json\n").unwrap();
    assert!(matches!(
        client.next_message(),
        Err(ClientError::Protocol(_))
    ));
    (&d).write_all(b"{\"seq\":9}\n").unwrap();
    // A reply for another request.
    assert!(matches!(client.reply(1), Err(ClientError::Protocol(_))));
    drop(d);
    match client.next_message() {
        Err(ClientError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof),
        other => panic!("{other:?}"),
    }
}
