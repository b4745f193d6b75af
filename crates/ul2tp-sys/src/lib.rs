//! ul2tp-sys: the Linux I/O of ul2tp, and the only crate allowed `unsafe`.
//!
//! Everything here is a thin, typed layer over system calls; protocol logic lives in the
//! pure crates. All sockets and devices are nonblocking and registered with the tokio
//! reactor of the runtime they are created in (creating one outside a runtime is an error,
//! not a panic), and every method takes `&self`, so one object can be shared (`Arc`) by a
//! receive task and a transmit task.
//!
//! | module | what | system calls and why |
//! |---|---|---|
//! | [`udp`] | UDP tunnel socket, connected or listening | `socket`, `bind`, `connect`; `SO_REUSEADDR`/`SO_REUSEPORT`; `SO_NO_CHECK` (IPv4 checksum off, docs/reference/kernel.md §5.5), `UDP_NO_CHECK6_TX/RX` (§1.8); `IP_MTU_DISCOVER=IP_PMTUDISC_DONT` / `IPV6_MTU_DISCOVER=IPV6_PMTUDISC_DONT` (no DF, §1.8); `recvmmsg`/`sendmmsg` for batches; `UDP_SEGMENT` cmsg (GSO) and `UDP_GRO`; `IP_MTU`/`IPV6_MTU` for the path MTU (§6.2) |
//! | [`ip`] | L2TPv3-over-IP socket (protocol 115) | raw socket (`SOCK_RAW`, 115) because the kernel's L2TP/IP socket needs the absent `l2tp_ip` module (§8); IPv4 header stripped by IHL, using a 2-iovec `recvmsg`/`recvmmsg` so the payload lands at offset 0 |
//! | [`errqueue`] | ICMP errors on tunnel sockets | `IP_RECVERR` / `IPV6_RECVERR`, `recvmsg(MSG_ERRQUEUE)` when the socket reports `EPOLLERR`; `sock_extended_err` parsed by bounds-checked byte reads |
//! | [`tap`] | TAP (l2tpethN) and TUN (pppN) devices | `open("/dev/net/tun")`, `ioctl(TUNSETIFF)` with `IFF_NO_PI`; the driver expands `%d` like the kernel's `dev_alloc_name` (§6.1); not persistent, so dropping removes the device (§6.3); `IFF_MULTI_QUEUE` for one queue per worker |
//! | [`link`] | interface helpers | `ioctl` `SIOCGIFINDEX`, `SIOCGIFMTU`/`SIOCSIFMTU`, `SIOCGIFFLAGS`/`SIOCSIFFLAGS`, `SIOCGIFHWADDR`, `SIOCSIFADDR`/`SIOCSIFNETMASK` on an `AF_INET` socket (no `ip` command) |
//! | [`fdpass`] | descriptors over the API socket | `sendmsg`/`recvmsg` with `SCM_RIGHTS` (`MSG_CMSG_CLOEXEC`), `SO_PEERCRED`; group membership from the user/group databases |
//! | [`sockinfo`] | checking a handed-over tunnel socket (§4.5) | `fcntl(F_GETFD)` (EBADF), `SO_TYPE`/`SO_DOMAIN`/`SO_PROTOCOL` (ENOTSOCK, EPROTONOSUPPORT), `getsockname`/`getpeername`, `SO_NETNS_COOKIE` or `SIOCGSKNS` (EINVAL for another netns) |
//! | [`seqpacket`] | PPPoL2TP-session-socket equivalent | `socketpair(AF_UNIX, SOCK_SEQPACKET)`: one PPP frame per message (§7) |
//! | [`rtnl`] | IPv4/IPv6 addresses with optional point-to-point peer; routes through an interface | `NETLINK_ROUTE` `RTM_NEWADDR`/`RTM_DELADDR`/`RTM_NEWROUTE`/`RTM_DELROUTE`, built and parsed by hand |
//! | [`linkmon`] | link state: changes, and all links at once | `NETLINK_ROUTE` bound to `RTMGRP_LINK` (8 MB `SO_RCVBUF`) for `RTM_NEWLINK`/`RTM_DELLINK` events; one `RTM_GETLINK` dump for every interface's flags |
//! | [`netns`] | test helper | `unshare(CLONE_NEWNET)` on a dedicated thread |
//!
//! Batching: [`udp::UdpTunnelSocket::recv_batch`] / `send_batch` (and the same on
//! [`ip::IpTunnelSocket`]) move up to [`mmsg::BATCH_MAX`] datagrams per system call into
//! caller-owned buffers (any `AsMut<[u8]>`, so sub-slices after a headroom work), reporting
//! per-datagram length, source and truncation in [`mmsg::RecvMeta`].
//!
//! [`udp::UdpTunnelSocket::send_segmented`] sends many equal-sized datagrams in one call
//! (UDP GSO; falls back to `sendmmsg` where the kernel refuses GSO because checksums are
//! off), and [`udp::UdpTunnelSocket::recv_gro`] with [`udp::GroSegments`] receives
//! kernel-coalesced datagrams after [`udp::UdpTunnelSocket::set_gro`].
//!
//! Every `unsafe` block carries a `// SAFETY:` comment (enforced by
//! `clippy::undocumented_unsafe_blocks`). Inputs from the kernel (addresses, IPv4 headers,
//! control messages) are parsed with bounds checks; malformed ones become errors.
//!
//! Not done yet: routes and links (veth) over rtnetlink (tests use the `ip` command for
//! those).
#![allow(unsafe_code)]
#![warn(missing_docs)]

mod cmsg;
pub mod errqueue;
pub mod fdpass;
pub mod ip;
pub mod link;
pub mod linkdel;
pub mod linkmon;
pub mod mmsg;
pub mod netns;
mod os;
pub mod rtnl;
pub mod seqpacket;
pub mod sockinfo;
pub mod tap;
pub mod udp;

pub use os::set_recv_buffer;
pub use os::IPPROTO_L2TP;
