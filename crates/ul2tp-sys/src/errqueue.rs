//! ICMP errors on tunnel sockets: `IP_RECVERR` / `IPV6_RECVERR` and the socket error queue
//! (`recvmsg(MSG_ERRQUEUE)`, ip(7) and ipv6(7) "IP_RECVERR").
//!
//! With the option on, the kernel queues every ICMP error a datagram of the socket provoked
//! (port, host or network unreachable, fragmentation needed / packet too big, time exceeded)
//! on the socket's error queue, with the ICMP type and code, the MTU for "fragmentation needed"
//! and the address of the node that sent it, and reports the socket with `EPOLLERR` until the
//! queue is read. Without it, a UDP socket only sees a bare errno on its next receive (connected
//! sockets) and a raw socket nothing. Queued errors never block ordinary receives: the queue
//! is bounded by the socket's receive buffer, and an error read here also clears the pending
//! errno.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::{cmsg, os};

/// Where a queued error came from (`ee_origin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The local stack (`SO_EE_ORIGIN_LOCAL`).
    Local,
    /// An ICMP message (`SO_EE_ORIGIN_ICMP`).
    Icmp,
    /// An ICMPv6 message (`SO_EE_ORIGIN_ICMP6`).
    Icmp6,
    /// Anything else (time stamps, zero-copy notifications: not asked for here).
    Other(u8),
}

/// What an error means for a tunnel, independent of the IP version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Nothing listens on the peer's port (ICMP 3/3, ICMPv6 1/4).
    PortUnreachable,
    /// The peer's host is unreachable (ICMP 3/1, 3/7, other unreachable codes; ICMPv6 1/3).
    HostUnreachable,
    /// No route to the peer's network (ICMP 3/0, 3/6; ICMPv6 1/0).
    NetUnreachable,
    /// The peer does not speak the protocol (ICMP 3/2, ICMPv6 4/1): L2TP/IP without a
    /// listener.
    ProtocolUnreachable,
    /// Fragmentation needed (ICMP 3/4) or packet too big (ICMPv6 2), with the next-hop MTU.
    FragNeeded {
        /// The path MTU the router reported (0 if it did not say).
        mtu: u32,
    },
    /// Communication administratively prohibited (ICMP 3/9, 3/10, 3/13; ICMPv6 1/1, 1/5, 1/6).
    AdminProhibited,
    /// Time to live exceeded in transit (ICMP 11, ICMPv6 3).
    TimeExceeded,
    /// An error of the local stack.
    Local,
    /// Any other ICMP message (parameter problem, ...).
    Other,
}

/// One entry of the error queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockError {
    /// The errno the error maps to (`ee_errno`).
    pub errno: i32,
    /// Its origin.
    pub origin: Origin,
    /// ICMP type (origin `Icmp` / `Icmp6`).
    pub icmp_type: u8,
    /// ICMP code.
    pub icmp_code: u8,
    /// Extra information (`ee_info`): the MTU for fragmentation needed / packet too big.
    pub info: u32,
    /// The node that sent the ICMP message (`SO_EE_OFFENDER`), if known.
    pub offender: Option<IpAddr>,
    /// Destination of the datagram that provoked it (the peer; port 0 for raw sockets).
    pub dest: Option<SocketAddr>,
}

impl SockError {
    /// The error's meaning.
    pub fn kind(&self) -> ErrorKind {
        let (t, c) = (self.icmp_type, self.icmp_code);
        match self.origin {
            Origin::Icmp => match (t, c) {
                (3, 0 | 6) => ErrorKind::NetUnreachable,
                (3, 2) => ErrorKind::ProtocolUnreachable,
                (3, 3) => ErrorKind::PortUnreachable,
                (3, 4) => ErrorKind::FragNeeded { mtu: self.info },
                (3, 9 | 10 | 13) => ErrorKind::AdminProhibited,
                (3, _) => ErrorKind::HostUnreachable,
                (11, _) => ErrorKind::TimeExceeded,
                _ => ErrorKind::Other,
            },
            Origin::Icmp6 => match (t, c) {
                (1, 0) => ErrorKind::NetUnreachable,
                (1, 1 | 5 | 6) => ErrorKind::AdminProhibited,
                (1, 4) => ErrorKind::PortUnreachable,
                (1, _) => ErrorKind::HostUnreachable,
                (2, _) => ErrorKind::FragNeeded { mtu: self.info },
                (3, _) => ErrorKind::TimeExceeded,
                (4, 1) => ErrorKind::ProtocolUnreachable,
                _ => ErrorKind::Other,
            },
            Origin::Local => ErrorKind::Local,
            Origin::Other(_) => ErrorKind::Other,
        }
    }
}

/// Whether `e`, returned by an ordinary receive, is the pending error of an ICMP message
/// (or of the local stack) rather than a failure of the socket: such errors are reported once
/// per datagram that provoked them and the socket keeps working.
pub fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::ECONNREFUSED
                | libc::EHOSTUNREACH
                | libc::ENETUNREACH
                | libc::EHOSTDOWN
                | libc::ENONET
                | libc::ENOPROTOOPT
                | libc::EMSGSIZE
                | libc::EPROTO
                | libc::EOPNOTSUPP
                | libc::EACCES
                | libc::EPERM
        )
    )
}

/// Turn on the error queue of an IPv4 or IPv6 datagram socket (`IP_RECVERR`; an IPv6 socket
/// gets `IPV6_RECVERR` and, for IPv4-mapped peers, `IP_RECVERR` when the kernel accepts it).
pub fn enable(fd: BorrowedFd<'_>, v6: bool) -> io::Result<()> {
    if v6 {
        os::set_int(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVERR, 1)?;
        // A v6-only socket may refuse it; v4-mapped errors then never come.
        let _ = os::set_int(fd, libc::IPPROTO_IP, libc::IP_RECVERR, 1);
        Ok(())
    } else {
        os::set_int(fd, libc::IPPROTO_IP, libc::IP_RECVERR, 1)
    }
}

/// Parse the `sock_extended_err` (and the offender address after it) of an
/// `IP_RECVERR` / `IPV6_RECVERR` control message. `None` if too short.
pub fn parse_extended_err(data: &[u8]) -> Option<SockError> {
    let u32_at = |i: usize| -> Option<u32> {
        Some(u32::from_ne_bytes(data.get(i..i + 4)?.try_into().ok()?))
    };
    let errno = u32_at(0)? as i32;
    let origin = match *data.get(4)? {
        1 => Origin::Local,
        2 => Origin::Icmp,
        3 => Origin::Icmp6,
        o => Origin::Other(o),
    };
    let (icmp_type, icmp_code) = (*data.get(5)?, *data.get(6)?);
    let info = u32_at(8)?;
    Some(SockError {
        errno,
        origin,
        icmp_type,
        icmp_code,
        info,
        offender: data.get(16..).and_then(parse_sockaddr).map(|a| a.ip()),
        dest: None,
    })
}

/// A `sockaddr_in` / `sockaddr_in6` in its byte form (the offender after the extended error).
fn parse_sockaddr(b: &[u8]) -> Option<SocketAddr> {
    let family = u16::from_ne_bytes(b.get(0..2)?.try_into().ok()?);
    let port = u16::from_be_bytes(b.get(2..4)?.try_into().ok()?);
    match i32::from(family) {
        libc::AF_INET => {
            let a: [u8; 4] = b.get(4..8)?.try_into().ok()?;
            Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(a)), port))
        }
        libc::AF_INET6 => {
            let a: [u8; 16] = b.get(8..24)?.try_into().ok()?;
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(a)), port))
        }
        _ => None,
    }
}

/// Read one entry of the error queue without waiting (`WouldBlock` when it is empty). The
/// datagram's payload copy the kernel attaches is discarded.
pub fn recv(fd: BorrowedFd<'_>) -> io::Result<SockError> {
    let mut payload = [0u8; 64];
    let mut iov = libc::iovec {
        iov_base: payload.as_mut_ptr().cast(),
        iov_len: payload.len(),
    };
    let mut msg = cmsg::msghdr(&mut iov);
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut name: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut name as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let mut control = cmsg::Buf::new();
    control.attach_for_recv(&mut msg);
    // SAFETY: msg points at the live iovec (over `payload`), name and control buffers above,
    // with their true lengths; MSG_DONTWAIT makes the call return at once.
    let r = unsafe {
        libc::recvmsg(
            fd.as_raw_fd(),
            &mut msg,
            libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT,
        )
    };
    os::cvt_size(r)?;
    let mut found = None;
    cmsg::for_each(&msg, |level, ty, data| {
        let ours = (level == libc::IPPROTO_IP && ty == libc::IP_RECVERR)
            || (level == libc::IPPROTO_IPV6 && ty == libc::IPV6_RECVERR);
        if ours && found.is_none() {
            found = parse_extended_err(data);
        }
    });
    let mut e = found.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "error queue entry without an extended error",
        )
    })?;
    e.dest = os::from_storage(&name, msg.msg_namelen);
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ee(origin: u8, t: u8, c: u8, info: u32) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&(libc::ECONNREFUSED as u32).to_ne_bytes());
        b.extend_from_slice(&[origin, t, c, 0]);
        b.extend_from_slice(&info.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes());
        b.extend_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        b.extend_from_slice(&0u16.to_be_bytes());
        b.extend_from_slice(&[192, 0, 2, 9]);
        b.extend_from_slice(&[0; 8]);
        b
    }

    #[test]
    fn extended_errors_are_classified() {
        let e = parse_extended_err(&ee(2, 3, 3, 0)).unwrap();
        assert_eq!(e.kind(), ErrorKind::PortUnreachable);
        assert_eq!(e.offender, Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9))));
        assert_eq!(e.errno, libc::ECONNREFUSED);
        let e = parse_extended_err(&ee(2, 3, 4, 1400)).unwrap();
        assert_eq!(e.kind(), ErrorKind::FragNeeded { mtu: 1400 });
        assert_eq!(
            parse_extended_err(&ee(3, 2, 0, 1280)).unwrap().kind(),
            ErrorKind::FragNeeded { mtu: 1280 }
        );
        assert_eq!(
            parse_extended_err(&ee(3, 1, 4, 0)).unwrap().kind(),
            ErrorKind::PortUnreachable
        );
        assert_eq!(
            parse_extended_err(&ee(2, 3, 2, 0)).unwrap().kind(),
            ErrorKind::ProtocolUnreachable
        );
        assert_eq!(
            parse_extended_err(&ee(2, 11, 0, 0)).unwrap().kind(),
            ErrorKind::TimeExceeded
        );
        assert_eq!(
            parse_extended_err(&ee(1, 0, 0, 0)).unwrap().kind(),
            ErrorKind::Local
        );
        // Short or odd input: no panic, None or no offender.
        for n in 0..12 {
            assert!(parse_extended_err(&ee(2, 3, 3, 0)[..n]).is_none());
        }
        assert_eq!(
            parse_extended_err(&ee(2, 3, 1, 0)[..16]).unwrap().offender,
            None
        );
    }

    #[test]
    fn port_unreachable_is_queued_and_read() {
        // A connected UDP socket on loopback towards a port nothing listens on.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let gone = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let dst = gone.local_addr().unwrap();
            drop(gone);
            let s = crate::udp::UdpTunnelSocket::open(
                "127.0.0.1:0".parse().unwrap(),
                dst,
                Default::default(),
            )
            .unwrap();
            s.set_recv_errors().unwrap();
            s.send(b"\xc8\x02hello").await.unwrap();
            let e = tokio::time::timeout(std::time::Duration::from_secs(5), s.recv_error())
                .await
                .expect("an error queued within 5 s")
                .unwrap();
            assert_eq!(e.kind(), ErrorKind::PortUnreachable, "{e:?}");
            assert_eq!(e.dest, Some(dst));
            // Drained: nothing more without another datagram.
            let again = recv(std::os::fd::AsFd::as_fd(&s)).unwrap_err();
            assert_eq!(again.kind(), io::ErrorKind::WouldBlock);
        });
    }
}
