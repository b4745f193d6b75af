//! Small safe wrappers around the raw libc calls the other modules share: integer socket
//! options, socket address conversion, `ifreq` ioctls on a helper socket.

use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// `SO_NO_CHECK` (asm-generic/socket.h): do not compute the IPv4 UDP checksum on transmit.
pub(crate) const SO_NO_CHECK: libc::c_int = 11;
/// `SO_PROTOCOL` (asm-generic/socket.h).
pub(crate) const SO_PROTOCOL: libc::c_int = 38;
/// `SO_DOMAIN` (asm-generic/socket.h).
pub(crate) const SO_DOMAIN: libc::c_int = 39;
/// `SO_NETNS_COOKIE` (asm-generic/socket.h, Linux 5.14+).
pub(crate) const SO_NETNS_COOKIE: libc::c_int = 71;
/// `UDP_NO_CHECK6_TX` (linux/udp.h).
pub(crate) const UDP_NO_CHECK6_TX: libc::c_int = 101;
/// `UDP_NO_CHECK6_RX` (linux/udp.h).
pub(crate) const UDP_NO_CHECK6_RX: libc::c_int = 102;
/// `SIOCGSKNS` (linux/sockios.h): open the network namespace of a socket.
pub(crate) const SIOCGSKNS: libc::c_ulong = 0x894C;
/// IP protocol number of L2TPv3 over IP (RFC 3931 §4.1.1.1, `IPPROTO_L2TP`).
pub const IPPROTO_L2TP: libc::c_int = 115;

/// The last OS error as an `io::Error`.
pub(crate) fn last_err() -> io::Error {
    io::Error::last_os_error()
}

/// An `io::Error` carrying errno `e`.
pub(crate) fn errno(e: libc::c_int) -> io::Error {
    io::Error::from_raw_os_error(e)
}

/// Map a libc `-1` return to the current errno.
pub(crate) fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(last_err())
    } else {
        Ok(r)
    }
}

/// Map a libc `-1` return (ssize_t) to the current errno.
pub(crate) fn cvt_size(r: libc::ssize_t) -> io::Result<usize> {
    usize::try_from(r).map_err(|_| last_err())
}

/// `setsockopt(fd, level, name, &int)`.
pub(crate) fn set_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    v: libc::c_int,
) -> io::Result<()> {
    // SAFETY: the value pointer and length describe a live c_int; the kernel validates the fd.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&v as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    cvt(r).map(drop)
}

/// Set a socket's receive buffer to `bytes` (capped at `i32::MAX / 2`): `SO_RCVBUFFORCE`,
/// which may exceed `net.core.rmem_max` (needs `CAP_NET_ADMIN`), else `SO_RCVBUF`, which the
/// kernel caps at `rmem_max`. Returns the size the kernel reports afterwards (it doubles the
/// request for its bookkeeping).
pub fn set_recv_buffer(fd: BorrowedFd<'_>, bytes: usize) -> io::Result<usize> {
    let v = libc::c_int::try_from(bytes.min(i32::MAX as usize / 2)).unwrap_or(i32::MAX / 2);
    if set_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, v).is_err() {
        set_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, v)?;
    }
    let got = get_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF)?;
    Ok(usize::try_from(got).unwrap_or(0))
}

/// `getsockopt(fd, level, name)` for an int-valued option; works on any fd number.
pub(crate) fn get_int_raw(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<libc::c_int> {
    let mut v: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: v and len are live locals of the declared sizes; an invalid fd only yields EBADF.
    let r = unsafe {
        libc::getsockopt(
            fd,
            level,
            name,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    cvt(r)?;
    Ok(v)
}

/// `getsockopt(fd, level, name)` for an int-valued option.
pub(crate) fn get_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<libc::c_int> {
    get_int_raw(fd.as_raw_fd(), level, name)
}

/// `getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE)`.
pub(crate) fn netns_cookie_raw(fd: RawFd) -> io::Result<u64> {
    let mut v: u64 = 0;
    let mut len = size_of::<u64>() as libc::socklen_t;
    // SAFETY: v and len are live locals of the declared sizes.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            SO_NETNS_COOKIE,
            (&mut v as *mut u64).cast(),
            &mut len,
        )
    };
    cvt(r)?;
    Ok(v)
}

/// Parse a kernel-filled `sockaddr_storage` of `len` bytes (AF_INET / AF_INET6 only).
pub(crate) fn from_storage(
    ss: &libc::sockaddr_storage,
    len: libc::socklen_t,
) -> Option<SocketAddr> {
    let len = len as usize;
    match libc::c_int::from(ss.ss_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: sockaddr_storage is large enough and suitably aligned for every sockaddr
            // type, and the family says the kernel wrote a sockaddr_in.
            let sin =
                unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 =
                unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Encode `addr` into a `sockaddr_storage`, returning the meaningful length.
pub(crate) fn to_storage(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { mem::zeroed() };
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large enough and aligned for sockaddr_in.
            let sin = unsafe {
                &mut *(&mut ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>()
            };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr.s_addr = u32::from(*a.ip()).to_be();
            (ss, size_of::<libc::sockaddr_in>() as libc::socklen_t)
        }
        SocketAddr::V6(a) => {
            // SAFETY: sockaddr_storage is large enough and aligned for sockaddr_in6.
            let sin6 = unsafe {
                &mut *(&mut ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            sin6.sin6_scope_id = a.scope_id();
            (ss, size_of::<libc::sockaddr_in6>() as libc::socklen_t)
        }
    }
}

/// `getsockname` / `getpeername` on any fd number.
pub(crate) fn sock_name_raw(fd: RawFd, peer: bool) -> io::Result<Option<SocketAddr>> {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut ss: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let p = (&mut ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr>();
    // SAFETY: ss/len describe a live buffer of the declared size; the kernel validates the fd.
    let r = unsafe {
        if peer {
            libc::getpeername(fd, p, &mut len)
        } else {
            libc::getsockname(fd, p, &mut len)
        }
    };
    cvt(r)?;
    Ok(from_storage(&ss, len))
}

/// A fresh `AF_INET` datagram socket for interface ioctls (acts in the caller's netns).
pub(crate) fn ioctl_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with constant arguments.
    let fd = cvt(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: fd was just returned by socket() and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// An `ifreq` with `name` filled in; rejects names that do not fit IFNAMSIZ.
pub(crate) fn ifreq(name: &str) -> io::Result<libc::ifreq> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid interface name {name:?}"),
        ));
    }
    // SAFETY: ifreq is plain old data (a name array and a union of PODs); all-zero is valid.
    let mut req: libc::ifreq = unsafe { mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    Ok(req)
}

/// The NUL-terminated name in an `ifreq`.
pub(crate) fn ifreq_name(req: &libc::ifreq) -> String {
    let bytes: Vec<u8> = req
        .ifr_name
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Run an `ifreq` ioctl on `fd`.
pub(crate) fn ioctl_ifreq(
    fd: BorrowedFd<'_>,
    request: libc::c_ulong,
    req: &mut libc::ifreq,
) -> io::Result<()> {
    // SAFETY: every request passed here takes a `struct ifreq *`, and req is a live, writable ifreq.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, req as *mut libc::ifreq) };
    cvt(r).map(drop)
}

/// Convert an `IpAddr` plus port to a `SocketAddr`.
pub(crate) fn sa(ip: IpAddr, port: u16) -> SocketAddr {
    SocketAddr::new(ip, port)
}

/// Types that own their descriptor for their whole life (so registering them is sound).
pub(crate) trait OwnsFd: AsRawFd {}
impl OwnsFd for OwnedFd {}
impl OwnsFd for socket2::Socket {}

/// Register an owned descriptor with the current tokio reactor (`Err` outside a runtime).
pub(crate) fn async_fd<T: OwnsFd>(inner: T) -> io::Result<tokio::io::unix::AsyncFd<T>> {
    tokio::runtime::Handle::try_current().map_err(|_| {
        io::Error::other("ul2tp-sys sockets and devices must be created inside a tokio runtime")
    })?;
    // SAFETY: T owns its descriptor (OwnsFd is only implemented for owning types), so it
    // stays open and unchanged until the AsyncFd, which now owns T, is dropped.
    let r = unsafe { tokio::io::unix::AsyncFd::register(inner) };
    r.map_err(io::Error::from)
}
