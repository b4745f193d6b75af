//! Descriptor passing, peer credentials and group membership.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use ul2tp_sys::fdpass::{self, MAX_FDS};
use ul2tp_sys::sockinfo;

fn is_cloexec(fd: &OwnedFd) -> bool {
    let flags = fcntl(fd, FcntlArg::F_GETFD).unwrap();
    FdFlag::from_bits_truncate(flags).contains(FdFlag::FD_CLOEXEC)
}

#[test]
fn blocking_round_trip_with_two_descriptors() {
    let (a, b) = UnixStream::pair().unwrap();
    let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let (mut pr, pw) = std::io::pipe().unwrap();
    let line = b"{\"cmd\":\"tunnel_create\",\"fd\":0}\n";
    fdpass::send_all_with_fds(&a, line, &[udp.as_raw_fd(), pw.as_raw_fd()]).unwrap();
    drop(pw);

    let mut buf = [0u8; 128];
    let (n, fds) = fdpass::recv_with_fds(&b, &mut buf).unwrap();
    assert_eq!(&buf[..n], line);
    assert_eq!(fds.len(), 2);
    assert!(fds.iter().all(is_cloexec));
    // The first is the same UDP socket: same local address.
    let info = sockinfo::inspect(fds[0].as_fd()).unwrap();
    assert_eq!(info.local, Some(udp.local_addr().unwrap()));
    // The second is the write end of the pipe.
    let mut w = std::fs::File::from(fds.into_iter().nth(1).unwrap());
    w.write_all(b"through the passed pipe").unwrap();
    drop(w);
    let mut s = String::new();
    pr.read_to_string(&mut s).unwrap();
    assert_eq!(s, "through the passed pipe");
}

#[test]
fn plain_bytes_and_end_of_stream() {
    let (a, b) = UnixStream::pair().unwrap();
    assert_eq!(fdpass::send_with_fds(&a, b"no fds", &[]).unwrap(), 6);
    let mut buf = [0u8; 16];
    let (n, fds) = fdpass::recv_with_fds(&b, &mut buf).unwrap();
    assert_eq!((&buf[..n], fds.len()), (&b"no fds"[..], 0));
    drop(a);
    let (n, fds) = fdpass::recv_with_fds(&b, &mut buf).unwrap();
    assert_eq!((n, fds.len()), (0, 0));
    // Argument checks.
    let (c, _d) = UnixStream::pair().unwrap();
    assert_eq!(
        fdpass::send_with_fds(&c, b"", &[0]).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    let many = vec![0; MAX_FDS + 1];
    assert_eq!(
        fdpass::send_with_fds(&c, b"x", &many).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

#[test]
fn too_many_descriptors_are_refused_not_leaked() {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};
    let (a, b) = UnixStream::pair().unwrap();
    let (_r, w) = std::io::pipe().unwrap();
    let fds = vec![w.as_raw_fd(); 40];
    let iov = [std::io::IoSlice::new(b"x")];
    sendmsg::<UnixAddr>(
        a.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .unwrap();
    let mut buf = [0u8; 4];
    let e = fdpass::recv_with_fds(&b, &mut buf).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidData);
}

#[test]
fn async_round_trip_on_tokio_streams() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (a, b) = tokio::net::UnixStream::pair().unwrap();
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let big = vec![b'x'; 300_000];
        let writer = async {
            fdpass::send_with_fds_async(&a, &big, &[udp.as_raw_fd()])
                .await
                .unwrap();
        };
        let reader = async {
            let mut got = 0;
            let mut all_fds = Vec::new();
            let mut buf = vec![0u8; 65536];
            while got < big.len() {
                // The daemon's pattern: readiness, then try_io.
                b.readable().await.unwrap();
                match b.try_io(tokio::io::Interest::READABLE, || {
                    fdpass::recv_with_fds(&b, &mut buf)
                }) {
                    Ok((n, fds)) => {
                        assert!(n > 0);
                        got += n;
                        all_fds.extend(fds);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => panic!("{e}"),
                }
            }
            assert_eq!(got, big.len());
            assert_eq!(all_fds.len(), 1, "descriptor arrives exactly once");
            let info = sockinfo::inspect(all_fds[0].as_fd()).unwrap();
            assert_eq!(info.local, Some(udp.local_addr().unwrap()));
        };
        tokio::join!(writer, reader);

        fdpass::send_with_fds_async(&b, b"reply\n", &[])
            .await
            .unwrap();
        let mut buf = [0u8; 16];
        let (n, fds) = fdpass::recv_with_fds_async(&a, &mut buf).await.unwrap();
        assert_eq!((&buf[..n], fds.len()), (&b"reply\n"[..], 0));
    });
}

#[test]
fn peer_credentials_and_groups() {
    let (a, _b) = UnixStream::pair().unwrap();
    let c = fdpass::peer_cred(&a).unwrap();
    assert_eq!(c.pid, std::process::id() as i32);
    assert_eq!(c.uid, nix::unistd::getuid().as_raw());
    assert_eq!(c.gid, nix::unistd::getgid().as_raw());
    // root's primary group is root; root is not in nogroup; unknown names are false.
    assert!(fdpass::user_in_group(0, "root").unwrap());
    assert!(!fdpass::user_in_group(0, "nogroup").unwrap());
    assert!(!fdpass::user_in_group(0, "no-such-group-ul2tp").unwrap());
    assert!(!fdpass::user_in_group(4_000_000_000, "root").unwrap());
    // Not a Unix socket: an error, not a panic.
    let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    assert!(fdpass::peer_cred(&udp).is_err());
}
