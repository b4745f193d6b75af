//! Checking handed-over tunnel sockets against the kernel's rules (docs/reference/kernel.md §4.5).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram;

use socket2::{Domain, Protocol, Socket, Type};
use ul2tp_sys::netns::run_in_new_netns;
use ul2tp_sys::sockinfo::{check_managed, check_managed_raw, inspect, inspect_raw, ManagedEncap};
use ul2tp_sys::IPPROTO_L2TP;

fn errno_of(r: std::io::Result<ul2tp_sys::sockinfo::TunnelSocketInfo>) -> i32 {
    r.unwrap_err().raw_os_error().expect("an errno")
}

#[test]
fn udp_socket_is_described_and_accepted_for_udp() {
    let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let peer = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    s.connect(peer.local_addr().unwrap()).unwrap();
    let info = check_managed(s.as_fd(), ManagedEncap::Udp).unwrap();
    assert_eq!(info.domain, libc::AF_INET);
    assert_eq!(info.sock_type, libc::SOCK_DGRAM);
    assert_eq!(info.protocol, libc::IPPROTO_UDP);
    assert_eq!(info.local, Some(s.local_addr().unwrap()));
    assert_eq!(info.peer, Some(peer.local_addr().unwrap()));
    assert!(info.same_netns);
    // Wrong protocol for encap IP.
    assert_eq!(
        errno_of(check_managed(s.as_fd(), ManagedEncap::Ip)),
        libc::EPROTONOSUPPORT
    );

    let s6 = UdpSocket::bind((Ipv6Addr::LOCALHOST, 0)).unwrap();
    let info = inspect(s6.as_fd()).unwrap();
    assert_eq!(info.domain, libc::AF_INET6);
    assert_eq!(info.peer, None);
}

#[test]
fn raw_115_socket_accepted_for_ip_encap() {
    let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(IPPROTO_L2TP))).unwrap();
    s.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
        .unwrap();
    let info = check_managed(s.as_fd(), ManagedEncap::Ip).unwrap();
    assert_eq!((info.sock_type, info.protocol), (libc::SOCK_RAW, 115));
    assert_eq!(
        errno_of(check_managed(s.as_fd(), ManagedEncap::Udp)),
        libc::EPROTONOSUPPORT
    );
}

#[test]
fn kernel_errnos() {
    // TCP: not a datagram socket.
    let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    assert_eq!(
        errno_of(check_managed(tcp.as_fd(), ManagedEncap::Udp)),
        libc::EPROTONOSUPPORT
    );
    // Unix datagram: wrong family.
    let (u, _u2) = UnixDatagram::pair().unwrap();
    assert_eq!(
        errno_of(check_managed(u.as_fd(), ManagedEncap::Udp)),
        libc::EPROTONOSUPPORT
    );
    // A regular file: not a socket.
    let f = std::fs::File::open("/proc/self/status").unwrap();
    assert_eq!(
        errno_of(check_managed(f.as_fd(), ManagedEncap::Udp)),
        libc::ENOTSOCK
    );
    assert_eq!(errno_of(inspect(f.as_fd())), libc::ENOTSOCK);
    // Not an open descriptor.
    assert_eq!(
        errno_of(check_managed_raw(-1, ManagedEncap::Udp)),
        libc::EBADF
    );
    assert_eq!(errno_of(inspect_raw(1_000_000)), libc::EBADF);
}

#[test]
fn socket_from_another_netns_is_einval() {
    let foreign: OwnedFd = run_in_new_netns(|| {
        let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        // Inside its own namespace the socket is "same netns".
        assert!(inspect(s.as_fd()).unwrap().same_netns);
        OwnedFd::from(s)
    })
    .unwrap();
    let info = inspect(foreign.as_fd()).unwrap();
    assert!(!info.same_netns);
    assert_eq!(
        errno_of(check_managed(foreign.as_fd(), ManagedEncap::Udp)),
        libc::EINVAL
    );
    assert!(foreign.as_raw_fd() >= 0);
}
