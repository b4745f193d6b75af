//! Link state changes over rtnetlink: a `NETLINK_ROUTE` socket subscribed to `RTMGRP_LINK`
//! receives an `RTM_NEWLINK` for every change of an interface's flags (administrative state,
//! carrier) and an `RTM_DELLINK` when one goes away, in the calling thread's network
//! namespace. Messages are parsed here byte by byte ([`parse`], pure); only the socket system
//! calls are `unsafe`.
//!
//! A monitor that falls behind loses messages: the receive then fails with `ENOBUFS`, and the
//! caller has to read the state it cares about afresh: [`dump`] lists every interface's state
//! with one `RTM_GETLINK` dump (one `recv` per reply datagram of up to 32 KB, a few dozen
//! interfaces each, where [`crate::link::is_up`] costs three system calls per interface).

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::os;
use crate::rtnl::{acks, push_attr, Rtnl, NLM_F_REQUEST};

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const NLMSG_DONE: u16 = 3;
const NLM_F_DUMP: u16 = 0x300;
const IFLA_EXT_MASK: u16 = 29;
/// `RTEXT_FILTER_SKIP_STATS`: leave the counters out of a dump (most of its bytes).
const RTEXT_FILTER_SKIP_STATS: u32 = 1 << 3;
/// Receive buffer of the monitor: a burst of link changes (thousands of pseudowire devices
/// created at once, several messages each) fits instead of overrunning the default ~200 KB.
const MONITOR_RCVBUF: usize = 8 << 20;
const RTMGRP_LINK: u32 = 1;
const IFLA_IFNAME: u16 = 3;
/// `struct nlmsghdr`.
const NLMSG_HDR: usize = 16;
/// `struct ifinfomsg`.
const IFINFO: usize = 16;

/// One interface's state as a link message reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkEvent {
    /// Interface index.
    pub ifindex: u32,
    /// Name (`IFLA_IFNAME`), when the message carries one.
    pub name: Option<String>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Carrier and operationally up (`IFF_LOWER_UP`).
    pub lower_up: bool,
    /// The interface is gone (`RTM_DELLINK`).
    pub deleted: bool,
}

/// The link events in one netlink datagram; anything else in it (other message types,
/// truncated or malformed messages) is skipped.
pub fn parse(buf: &[u8]) -> Vec<LinkEvent> {
    let mut out = Vec::new();
    let mut off = 0;
    while let Some(h) = buf.get(off..off + NLMSG_HDR) {
        let len = u32::from_ne_bytes([h[0], h[1], h[2], h[3]]) as usize;
        if len < NLMSG_HDR || off + len > buf.len() {
            break;
        }
        let ty = u16::from_ne_bytes([h[4], h[5]]);
        let msg = &buf[off + NLMSG_HDR..off + len];
        if ty == RTM_NEWLINK || ty == RTM_DELLINK {
            if let Some(ev) = link_event(msg, ty == RTM_DELLINK) {
                out.push(ev);
            }
        }
        off += (len + 3) & !3;
    }
    out
}

fn link_event(msg: &[u8], deleted: bool) -> Option<LinkEvent> {
    let i = msg.get(..IFINFO)?;
    let ifindex = u32::try_from(i32::from_ne_bytes([i[4], i[5], i[6], i[7]])).ok()?;
    let flags = u32::from_ne_bytes([i[8], i[9], i[10], i[11]]);
    let mut name = None;
    let mut off = IFINFO;
    while let Some(a) = msg.get(off..off + 4) {
        let alen = usize::from(u16::from_ne_bytes([a[0], a[1]]));
        let aty = u16::from_ne_bytes([a[2], a[3]]);
        if alen < 4 || off + alen > msg.len() {
            break;
        }
        if aty == IFLA_IFNAME {
            let v = &msg[off + 4..off + alen];
            let v = v.split(|&b| b == 0).next().unwrap_or(v);
            name = Some(String::from_utf8_lossy(v).into_owned());
        }
        off += (alen + 3) & !3;
    }
    Some(LinkEvent {
        ifindex,
        name,
        up: flags & libc::IFF_UP as u32 != 0,
        lower_up: flags & libc::IFF_LOWER_UP as u32 != 0,
        deleted,
    })
}

/// Whether a [`LinkMonitor::recv`] error means events were lost (`ENOBUFS`) rather than a
/// broken monitor.
pub fn is_overrun(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOBUFS)
}

/// A nonblocking rtnetlink socket subscribed to link changes, registered with tokio.
#[derive(Debug)]
pub struct LinkMonitor {
    fd: AsyncFd<OwnedFd>,
}

impl LinkMonitor {
    /// Subscribe to the link changes of the calling thread's network namespace. Must be
    /// called inside a tokio runtime.
    pub fn open() -> io::Result<LinkMonitor> {
        // SAFETY: plain syscall with constant arguments.
        let fd = os::cvt(unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                libc::NETLINK_ROUTE,
            )
        })?;
        // SAFETY: fd was just returned by socket() and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        os::set_recv_buffer(fd.as_fd(), MONITOR_RCVBUF)?;
        // SAFETY: all-zero is a valid sockaddr_nl (pid 0: the kernel assigns one).
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        sa.nl_groups = RTMGRP_LINK;
        // SAFETY: sa is live for the call, with its length passed.
        os::cvt(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_nl).cast(),
                size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        })?;
        Ok(LinkMonitor {
            fd: os::async_fd(fd)?,
        })
    }

    /// Wait for the next datagram, read into `buf` (32 KB hold any the kernel sends), and
    /// return its link events (possibly none). `ENOBUFS`: the monitor fell behind and
    /// messages were lost. Cancel-safe.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<Vec<LinkEvent>> {
        let n = self
            .fd
            .async_io(Interest::READABLE, |fd| {
                // SAFETY: buf is a live writable buffer of buf.len() bytes.
                let r =
                    unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
                os::cvt_size(r)
            })
            .await?;
        Ok(parse(&buf[..n]))
    }
}

/// An `RTM_GETLINK` dump request for every interface, without counters.
fn dump_request(seq: u32) -> Vec<u8> {
    let mut m = Vec::with_capacity(40);
    m.extend_from_slice(&0u32.to_ne_bytes()); // length, patched below
    m.extend_from_slice(&RTM_GETLINK.to_ne_bytes());
    m.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    // struct ifinfomsg: family, pad, type, index, flags, change (all zero: every link).
    m.extend_from_slice(&[0u8; IFINFO]);
    push_attr(
        &mut m,
        IFLA_EXT_MASK,
        &RTEXT_FILTER_SKIP_STATS.to_ne_bytes(),
    );
    let len = m.len() as u32;
    m[0..4].copy_from_slice(&len.to_ne_bytes());
    m
}

/// Whether a dump reply datagram ends the dump of `seq` (`NLMSG_DONE`), or fails it
/// (`NLMSG_ERROR`: `Err(errno)`).
fn dump_end(buf: &[u8], seq: u32) -> Result<bool, i32> {
    if let Some(&(_, e)) = acks(buf).iter().find(|(s, e)| *s == seq && *e != 0) {
        return Err(e);
    }
    let mut off = 0;
    while let Some(h) = buf.get(off..off + NLMSG_HDR) {
        let len = u32::from_ne_bytes([h[0], h[1], h[2], h[3]]) as usize;
        if len < NLMSG_HDR || off + len > buf.len() {
            break;
        }
        let s = u32::from_ne_bytes([h[8], h[9], h[10], h[11]]);
        if u16::from_ne_bytes([h[4], h[5]]) == NLMSG_DONE && s == seq {
            return Ok(true);
        }
        off += (len + 3) & !3;
    }
    Ok(false)
}

/// The state of every interface of the calling thread's network namespace, from one
/// `RTM_GETLINK` dump (blocking; one `recv` per reply datagram). Interfaces created or deleted
/// while the dump runs may be missing from it or listed although gone.
pub fn dump() -> io::Result<Vec<LinkEvent>> {
    let nl = Rtnl::open()?;
    let seq = Rtnl::seq();
    nl.send(&dump_request(seq))?;
    // The kernel fills each reply datagram up to the reader's buffer size (at most 32 KB).
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::new();
    loop {
        let n = nl.recv(&mut buf)?;
        out.extend(parse(&buf[..n]));
        if dump_end(&buf[..n], seq).map_err(os::errno)? {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(ty: u16, ifindex: i32, flags: u32, name: Option<&str>) -> Vec<u8> {
        let mut m = vec![0u8; NLMSG_HDR];
        m[4..6].copy_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(&[0, 0, 1, 0]); // family, pad, type (ARPHRD_ETHER)
        m.extend_from_slice(&ifindex.to_ne_bytes());
        m.extend_from_slice(&flags.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        if let Some(n) = name {
            let mut v = n.as_bytes().to_vec();
            v.push(0);
            m.extend_from_slice(&((4 + v.len()) as u16).to_ne_bytes());
            m.extend_from_slice(&IFLA_IFNAME.to_ne_bytes());
            m.extend_from_slice(&v);
            while m.len() % 4 != 0 {
                m.push(0);
            }
        }
        let len = m.len() as u32;
        m[0..4].copy_from_slice(&len.to_ne_bytes());
        m
    }

    #[test]
    fn parses_new_and_deleted_links_and_skips_the_rest() {
        let up = (libc::IFF_UP | libc::IFF_LOWER_UP) as u32;
        let mut buf = msg(RTM_NEWLINK, 7, up, Some("l2tpeth0"));
        buf.extend(msg(20, 7, 0, None)); // RTM_NEWADDR: not ours
        buf.extend(msg(RTM_DELLINK, 8, 0, Some("pw1")));
        assert_eq!(
            parse(&buf),
            vec![
                LinkEvent {
                    ifindex: 7,
                    name: Some("l2tpeth0".into()),
                    up: true,
                    lower_up: true,
                    deleted: false
                },
                LinkEvent {
                    ifindex: 8,
                    name: Some("pw1".into()),
                    up: false,
                    lower_up: false,
                    deleted: true
                },
            ]
        );
    }

    #[test]
    fn dump_request_and_end() {
        let m = dump_request(9);
        assert_eq!(m.len(), NLMSG_HDR + IFINFO + 8);
        assert_eq!(u32::from_ne_bytes(m[0..4].try_into().unwrap()), 40);
        assert_eq!(u16::from_ne_bytes([m[4], m[5]]), RTM_GETLINK);
        assert_eq!(u16::from_ne_bytes([m[6], m[7]]), NLM_F_REQUEST | NLM_F_DUMP);
        assert_eq!(u16::from_ne_bytes([m[34], m[35]]), IFLA_EXT_MASK);
        let links = msg(RTM_NEWLINK, 7, 1, Some("l2tpeth0"));
        assert_eq!(dump_end(&links, 9), Ok(false));
        let mut done = links.clone();
        let mut d = vec![0u8; 20];
        d[0..4].copy_from_slice(&20u32.to_ne_bytes());
        d[4..6].copy_from_slice(&NLMSG_DONE.to_ne_bytes());
        d[8..12].copy_from_slice(&9u32.to_ne_bytes());
        done.extend(&d);
        assert_eq!(dump_end(&done, 9), Ok(true));
        assert_eq!(dump_end(&done, 8), Ok(false), "another request's end");
        let mut err = vec![0u8; 36];
        err[0..4].copy_from_slice(&36u32.to_ne_bytes());
        err[4..6].copy_from_slice(&2u16.to_ne_bytes());
        err[8..12].copy_from_slice(&9u32.to_ne_bytes());
        err[16..20].copy_from_slice(&(-libc::EPERM).to_ne_bytes());
        assert_eq!(dump_end(&err, 9), Err(libc::EPERM));
        for cut in 0..done.len() {
            let _ = dump_end(&done[..cut], 9);
        }
    }

    #[test]
    fn never_panics_on_truncated_or_bogus_input() {
        let good = msg(RTM_NEWLINK, 3, 1, Some("x"));
        for cut in 0..good.len() {
            assert!(parse(&good[..cut]).is_empty(), "cut at {cut}");
        }
        let mut bogus = good.clone();
        bogus[NLMSG_HDR + IFINFO..NLMSG_HDR + IFINFO + 2].copy_from_slice(&0xffffu16.to_ne_bytes());
        assert_eq!(parse(&bogus)[0].name, None, "oversized attribute skipped");
        let mut neg = msg(RTM_NEWLINK, -1, 1, None);
        assert!(parse(&neg).is_empty(), "negative ifindex");
        neg[0..4].copy_from_slice(&2u32.to_ne_bytes());
        assert!(parse(&neg).is_empty(), "length below a header");
    }
}
