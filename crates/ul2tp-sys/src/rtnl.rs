//! Interface addresses and routes over rtnetlink (`NETLINK_ROUTE`, `RTM_NEWADDR` /
//! `RTM_DELADDR`, `RTM_NEWROUTE` / `RTM_DELROUTE`), for what the `SIOC*` ioctls cannot do:
//! IPv6 addresses, point-to-point peers for pppN units (IPCP / IPv6CP results), and the
//! routes of subscribers' IPv6 prefixes through their pppN. Messages are built and parsed here byte by byte; only the
//! socket system calls are `unsafe`. Acts in the calling thread's network namespace.

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::{link, os};

const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_STATIC: u8 = 4;
const RTN_UNICAST: u8 = 1;
const RT_SCOPE_LINK: u8 = 253;
const NLMSG_ERROR: u16 = 2;
pub(crate) const NLM_F_REQUEST: u16 = 0x1;
pub(crate) const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
/// `IFA_F_NODAD`: an IPv6 address usable at once, without duplicate address detection.
const IFA_F_NODAD: u8 = 0x02;
const RT_SCOPE_UNIVERSE: u8 = 0;

static SEQ: AtomicU32 = AtomicU32::new(1);

/// An address to add to or remove from an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfAddr {
    /// The local address.
    pub local: IpAddr,
    /// Prefix length (≤ 32 for IPv4, ≤ 128 for IPv6).
    pub prefix_len: u8,
    /// The peer of a point-to-point link, if any (same family as `local`).
    pub peer: Option<IpAddr>,
}

fn ip_bytes(a: &IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

pub(crate) fn push_attr(msg: &mut Vec<u8>, ty: u16, data: &[u8]) {
    let len = 4 + data.len();
    msg.extend_from_slice(&(len as u16).to_ne_bytes());
    msg.extend_from_slice(&ty.to_ne_bytes());
    msg.extend_from_slice(data);
    while msg.len() % 4 != 0 {
        msg.push(0);
    }
}

/// Build an `RTM_NEWADDR` / `RTM_DELADDR` request.
fn build(kind: u16, flags: u16, seq: u32, ifindex: u32, a: &IfAddr) -> io::Result<Vec<u8>> {
    let (family, max) = match a.local {
        IpAddr::V4(_) => (libc::AF_INET as u8, 32),
        IpAddr::V6(_) => (libc::AF_INET6 as u8, 128),
    };
    if a.prefix_len > max || a.peer.is_some_and(|p| p.is_ipv6() != a.local.is_ipv6()) {
        return Err(os::errno(libc::EINVAL));
    }
    let mut m = Vec::with_capacity(64);
    m.extend_from_slice(&0u32.to_ne_bytes()); // length, patched below
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills ours in
                                              // struct ifaddrmsg
    let ifa_flags = if a.local.is_ipv6() { IFA_F_NODAD } else { 0 };
    m.extend_from_slice(&[family, a.prefix_len, ifa_flags, RT_SCOPE_UNIVERSE]);
    m.extend_from_slice(&ifindex.to_ne_bytes());
    push_attr(&mut m, IFA_LOCAL, &ip_bytes(&a.local));
    push_attr(&mut m, IFA_ADDRESS, &ip_bytes(&a.peer.unwrap_or(a.local)));
    let len = m.len() as u32;
    m[0..4].copy_from_slice(&len.to_ne_bytes());
    Ok(m)
}

/// A route through an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Destination prefix (the address; bits past `prefix_len` should be zero).
    pub dst: IpAddr,
    /// Its length (0 = default route).
    pub prefix_len: u8,
    /// Next hop, if any (same family as `dst`); without one the destination is on the link.
    pub gateway: Option<IpAddr>,
}

/// Build an `RTM_NEWROUTE` / `RTM_DELROUTE` request for `r` through interface `ifindex`
/// (main table, protocol static).
fn build_route(kind: u16, flags: u16, seq: u32, ifindex: u32, r: &Route) -> io::Result<Vec<u8>> {
    let (family, max) = match r.dst {
        IpAddr::V4(_) => (libc::AF_INET as u8, 32),
        IpAddr::V6(_) => (libc::AF_INET6 as u8, 128),
    };
    if r.prefix_len > max || r.gateway.is_some_and(|g| g.is_ipv6() != r.dst.is_ipv6()) {
        return Err(os::errno(libc::EINVAL));
    }
    let scope = if r.gateway.is_some() {
        RT_SCOPE_UNIVERSE
    } else {
        RT_SCOPE_LINK
    };
    let mut m = Vec::with_capacity(80);
    m.extend_from_slice(&0u32.to_ne_bytes()); // length, patched below
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
    m.extend_from_slice(&[
        family,
        r.prefix_len,
        0,
        0,
        RT_TABLE_MAIN,
        RTPROT_STATIC,
        scope,
        RTN_UNICAST,
    ]);
    m.extend_from_slice(&0u32.to_ne_bytes());
    if r.prefix_len > 0 {
        push_attr(&mut m, RTA_DST, &ip_bytes(&r.dst));
    }
    if let Some(g) = &r.gateway {
        push_attr(&mut m, RTA_GATEWAY, &ip_bytes(g));
    }
    push_attr(&mut m, RTA_OIF, &ifindex.to_ne_bytes());
    let len = m.len() as u32;
    m[0..4].copy_from_slice(&len.to_ne_bytes());
    Ok(m)
}

/// Find the acknowledgement for `seq` in a netlink reply: `Some(errno)` (0 = success).
fn parse_ack(buf: &[u8], seq: u32) -> Option<i32> {
    acks(buf)
        .into_iter()
        .find(|(s, _)| *s == seq)
        .map(|(_, e)| e)
}

/// Every acknowledgement in a netlink reply: (sequence number, errno), 0 = success.
pub(crate) fn acks(buf: &[u8]) -> Vec<(u32, i32)> {
    let mut out = Vec::new();
    let mut off = 0;
    while off + 16 <= buf.len() {
        let h = &buf[off..];
        let len = u32::from_ne_bytes([h[0], h[1], h[2], h[3]]) as usize;
        if len < 16 || off + len > buf.len() {
            break;
        }
        let ty = u16::from_ne_bytes([h[4], h[5]]);
        if ty == NLMSG_ERROR && len >= 20 {
            let s = u32::from_ne_bytes([h[8], h[9], h[10], h[11]]);
            let e = i32::from_ne_bytes([h[16], h[17], h[18], h[19]]);
            out.push((s, -e));
        }
        off += (len + 3) & !3;
    }
    out
}

/// A `NETLINK_ROUTE` socket in the calling thread's network namespace.
pub(crate) struct Rtnl(OwnedFd);

impl Rtnl {
    pub(crate) fn open() -> io::Result<Rtnl> {
        // SAFETY: plain syscall with constant arguments.
        let fd = os::cvt(unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        })?;
        // SAFETY: fd was just returned by socket() and is owned by nobody else.
        Ok(Rtnl(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// A fresh sequence number.
    pub(crate) fn seq() -> u32 {
        SEQ.fetch_add(1, Ordering::Relaxed)
    }

    /// Send one or more concatenated requests to the kernel.
    pub(crate) fn send(&self, msg: &[u8]) -> io::Result<()> {
        // SAFETY: all-zero is a valid sockaddr_nl (pid 0 = the kernel).
        let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: msg and kernel are live for the call, with their lengths passed.
        let r = unsafe {
            libc::sendto(
                self.0.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&kernel as *const libc::sockaddr_nl).cast(),
                size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        os::cvt_size(r).map(drop)
    }

    /// Receive one datagram of replies into `buf`.
    pub(crate) fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // SAFETY: buf is a live writable buffer of buf.len() bytes.
            let r =
                unsafe { libc::recv(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            match os::cvt_size(r) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "netlink closed",
                    ))
                }
                r => return r,
            }
        }
    }
}

fn request(kind: u16, flags: u16, name: &str, a: &IfAddr) -> io::Result<()> {
    let ifindex = link::ifindex(name)?;
    let seq = Rtnl::seq();
    let msg = build(kind, flags | NLM_F_REQUEST | NLM_F_ACK, seq, ifindex, a)?;
    transact(&msg, seq)
}

/// Send one request and wait for its acknowledgement.
fn transact(msg: &[u8], seq: u32) -> io::Result<()> {
    let nl = Rtnl::open()?;
    nl.send(msg)?;
    let mut buf = vec![0u8; 8192];
    loop {
        let n = nl.recv(&mut buf)?;
        match parse_ack(&buf[..n], seq) {
            Some(0) => return Ok(()),
            Some(e) => return Err(os::errno(e)),
            None => continue,
        }
    }
}

/// Add an address to interface `name` (`EEXIST` if present). IPv6 addresses are added
/// without duplicate address detection, so they are usable at once.
pub fn add_address(name: &str, addr: IfAddr) -> io::Result<()> {
    request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, name, &addr)
}

/// Remove an address from interface `name` (`EADDRNOTAVAIL` if absent).
pub fn delete_address(name: &str, addr: IfAddr) -> io::Result<()> {
    request(RTM_DELADDR, 0, name, &addr)
}

fn route_request(kind: u16, flags: u16, name: &str, r: &Route) -> io::Result<()> {
    let ifindex = link::ifindex(name)?;
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let msg = build_route(kind, flags | NLM_F_REQUEST | NLM_F_ACK, seq, ifindex, r)?;
    transact(&msg, seq)
}

/// Add a route through interface `name` to the main table (`EEXIST` if present). The kernel
/// removes it when the interface goes away.
pub fn add_route(name: &str, r: Route) -> io::Result<()> {
    route_request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, name, &r)
}

/// Remove a route through interface `name` (`ESRCH` if absent).
pub fn delete_route(name: &str, r: Route) -> io::Result<()> {
    route_request(RTM_DELROUTE, 0, name, &r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn request_layout() {
        let a = IfAddr {
            local: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            prefix_len: 32,
            peer: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))),
        };
        let m = build(RTM_NEWADDR, NLM_F_REQUEST, 7, 3, &a).unwrap();
        assert_eq!(m.len(), 16 + 8 + 8 + 8);
        assert_eq!(
            u32::from_ne_bytes(m[0..4].try_into().unwrap()) as usize,
            m.len()
        );
        assert_eq!(&m[16..20], &[libc::AF_INET as u8, 32, 0, 0]);
        assert_eq!(u32::from_ne_bytes(m[20..24].try_into().unwrap()), 3);
        assert_eq!(&m[28..32], &[10, 0, 0, 1], "IFA_LOCAL");
        assert_eq!(&m[36..40], &[10, 0, 0, 2], "IFA_ADDRESS is the peer");
        let v6 = IfAddr {
            local: IpAddr::V6(Ipv6Addr::LOCALHOST),
            prefix_len: 64,
            peer: None,
        };
        let m = build(RTM_NEWADDR, 0, 1, 1, &v6).unwrap();
        assert_eq!(m[18], IFA_F_NODAD);
        assert_eq!(m.len(), 16 + 8 + 20 + 20);
        let bad = IfAddr {
            prefix_len: 33,
            ..a
        };
        assert!(build(RTM_NEWADDR, 0, 1, 1, &bad).is_err());
        let mixed = IfAddr {
            peer: Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            ..a
        };
        assert!(build(RTM_NEWADDR, 0, 1, 1, &mixed).is_err());
    }

    #[test]
    fn route_request_layout() {
        let r = Route {
            dst: "2001:db8:1:2::".parse().unwrap(),
            prefix_len: 64,
            gateway: None,
        };
        let m = build_route(RTM_NEWROUTE, NLM_F_REQUEST, 5, 7, &r).unwrap();
        assert_eq!(m.len(), 16 + 12 + 20 + 8);
        assert_eq!(u16::from_ne_bytes([m[4], m[5]]), RTM_NEWROUTE);
        let fam = libc::AF_INET6 as u8;
        assert_eq!(&m[16..24], &[fam, 64, 0, 0, 254, 4, RT_SCOPE_LINK, 1]);
        assert_eq!(u16::from_ne_bytes([m[30], m[31]]), RTA_DST);
        assert_eq!(&m[32..40], &[0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2]);
        assert_eq!(u16::from_ne_bytes([m[50], m[51]]), RTA_OIF);
        assert_eq!(u32::from_ne_bytes(m[52..56].try_into().unwrap()), 7);
        let default = Route {
            dst: "::".parse().unwrap(),
            prefix_len: 0,
            gateway: Some("fe80::1".parse().unwrap()),
        };
        let m = build_route(RTM_NEWROUTE, 0, 1, 7, &default).unwrap();
        assert_eq!(m.len(), 16 + 12 + 20 + 8, "no RTA_DST, a gateway");
        assert_eq!(m[22], RT_SCOPE_UNIVERSE);
        assert_eq!(u16::from_ne_bytes([m[30], m[31]]), RTA_GATEWAY);
        let bad = Route {
            gateway: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            ..default
        };
        assert!(build_route(RTM_NEWROUTE, 0, 1, 7, &bad).is_err());
    }

    #[test]
    fn ack_parsing() {
        let mut ack = vec![0u8; 36];
        ack[0..4].copy_from_slice(&36u32.to_ne_bytes());
        ack[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        ack[8..12].copy_from_slice(&9u32.to_ne_bytes());
        ack[16..20].copy_from_slice(&(-17i32).to_ne_bytes());
        assert_eq!(parse_ack(&ack, 9), Some(17));
        assert_eq!(parse_ack(&ack, 8), None);
        // Truncated or garbage input never panics.
        for n in 0..ack.len() {
            let _ = parse_ack(&ack[..n], 9);
        }
        let mut bad = ack.clone();
        bad[0..4].copy_from_slice(&3u32.to_ne_bytes());
        assert_eq!(parse_ack(&bad, 9), None);
    }
}
