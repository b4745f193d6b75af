//! Introspection of a socket an application hands over for a managed tunnel
//! (docs/reference/kernel.md §4.5, §5.6): type, domain, protocol, addresses, network namespace, and the
//! kernel's errno for each reason to refuse it.
//!
//! Calls: `fcntl(F_GETFD)` (EBADF), `getsockopt(SO_TYPE/SO_DOMAIN/SO_PROTOCOL)` (ENOTSOCK
//! for non-sockets), `getsockname/getpeername`, and `getsockopt(SO_NETNS_COOKIE)` compared
//! with the cookie of a socket opened by the calling thread (falling back to
//! `ioctl(SIOCGSKNS)` + `fstat` against `/proc/thread-self/ns/net` on kernels before 5.14).

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;

use crate::os;

/// What a socket descriptor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelSocketInfo {
    /// `SO_DOMAIN` (`libc::AF_INET`, `libc::AF_INET6`, ...).
    pub domain: i32,
    /// `SO_TYPE` (`libc::SOCK_DGRAM`, `libc::SOCK_RAW`, ...).
    pub sock_type: i32,
    /// `SO_PROTOCOL` (`libc::IPPROTO_UDP`, 115, ...).
    pub protocol: i32,
    /// Bound local address, if INET/INET6 (port 115 style values for raw sockets are the kernel's).
    pub local: Option<SocketAddr>,
    /// Connected peer, if any.
    pub peer: Option<SocketAddr>,
    /// Whether the socket lives in the calling thread's network namespace.
    pub same_netns: bool,
}

/// Encapsulation a managed tunnel socket is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManagedEncap {
    /// UDP (`L2TP_ENCAPTYPE_UDP`).
    Udp,
    /// IP protocol 115 (`L2TP_ENCAPTYPE_IP`).
    Ip,
}

fn netns_inode_of_thread() -> io::Result<u64> {
    Ok(std::fs::metadata("/proc/thread-self/ns/net")?.ino())
}

fn same_netns(fd: RawFd) -> io::Result<bool> {
    match os::netns_cookie_raw(fd) {
        Ok(theirs) => {
            let mine = os::ioctl_socket()?;
            Ok(os::netns_cookie_raw(mine.as_raw_fd())? == theirs)
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOPROTOOPT) => {
            // SAFETY: SIOCGSKNS takes no argument and returns a new descriptor or -1.
            let ns = os::cvt(unsafe { libc::ioctl(fd, os::SIOCGSKNS as _) })?;
            // SAFETY: ns was just returned by the kernel and is owned by nobody else.
            let ns = unsafe { OwnedFd::from_raw_fd(ns) };
            let ino = std::fs::File::from(ns).metadata()?.ino();
            Ok(ino == netns_inode_of_thread()?)
        }
        Err(e) => Err(e),
    }
}

/// Describe descriptor number `fd` (`EBADF` if not open, `ENOTSOCK` if not a socket).
pub fn inspect_raw(fd: RawFd) -> io::Result<TunnelSocketInfo> {
    // SAFETY: F_GETFD only reads the descriptor flags of an arbitrary fd number.
    os::cvt(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    let sock_type = os::get_int_raw(fd, libc::SOL_SOCKET, libc::SO_TYPE)?;
    let domain = os::get_int_raw(fd, libc::SOL_SOCKET, os::SO_DOMAIN)?;
    let protocol = os::get_int_raw(fd, libc::SOL_SOCKET, os::SO_PROTOCOL)?;
    let local = os::sock_name_raw(fd, false).ok().flatten();
    let peer = os::sock_name_raw(fd, true).ok().flatten();
    let same_netns = same_netns(fd)?;
    Ok(TunnelSocketInfo {
        domain,
        sock_type,
        protocol,
        local,
        peer,
        same_netns,
    })
}

/// Describe an open descriptor (`ENOTSOCK` if not a socket).
pub fn inspect(fd: BorrowedFd<'_>) -> io::Result<TunnelSocketInfo> {
    inspect_raw(fd.as_raw_fd())
}

/// Apply the kernel's checks for a managed tunnel's socket (docs/reference/kernel.md §4.5), in the
/// kernel's order: other netns ⇒ `EINVAL`; not a datagram socket ⇒ `EPROTONOSUPPORT`;
/// family not INET/INET6 ⇒ `EPROTONOSUPPORT`; protocol not UDP (encap UDP) or not 115
/// (encap IP) ⇒ `EPROTONOSUPPORT`. Errors carry the errno (`raw_os_error`).
///
/// Beyond the kernel: for encap IP a `SOCK_RAW` protocol-115 socket is accepted as well,
/// because that is what userspace can open where the kernel has no `l2tp_ip` module.
/// The "already a tunnel" check (`EBUSY`) is the caller's, which knows its tunnels.
pub fn check_managed(fd: BorrowedFd<'_>, encap: ManagedEncap) -> io::Result<TunnelSocketInfo> {
    check_managed_raw(fd.as_raw_fd(), encap)
}

/// [`check_managed`] on a descriptor number (`EBADF` if not open).
pub fn check_managed_raw(fd: RawFd, encap: ManagedEncap) -> io::Result<TunnelSocketInfo> {
    let info = inspect_raw(fd)?;
    if !info.same_netns {
        return Err(os::errno(libc::EINVAL));
    }
    let type_ok = info.sock_type == libc::SOCK_DGRAM
        || (encap == ManagedEncap::Ip && info.sock_type == libc::SOCK_RAW);
    if !type_ok {
        return Err(os::errno(libc::EPROTONOSUPPORT));
    }
    if info.domain != libc::AF_INET && info.domain != libc::AF_INET6 {
        return Err(os::errno(libc::EPROTONOSUPPORT));
    }
    let proto_ok = match encap {
        ManagedEncap::Udp => info.protocol == libc::IPPROTO_UDP,
        ManagedEncap::Ip => info.protocol == os::IPPROTO_L2TP,
    };
    if !proto_ok {
        return Err(os::errno(libc::EPROTONOSUPPORT));
    }
    Ok(info)
}
