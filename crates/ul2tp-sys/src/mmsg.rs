//! Batched datagram I/O with `recvmmsg(2)` / `sendmmsg(2)`, shared by the UDP and IP
//! tunnel sockets. One syscall moves up to [`BATCH_MAX`] datagrams; the per-message headers
//! live on the stack, so a batch costs no allocation.
//!
//! For IPv4 raw sockets the kernel delivers the IP header in front of the payload. Each
//! message then gets two iovecs: a 20-byte scratch area for the fixed IPv4 header and the
//! caller's buffer, so the L2TP payload lands at offset 0 without a copy in the usual case
//! (no IP options). With options the option bytes are moved out with one `copy_within`.

use std::io;
use std::mem;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::{cmsg, os};

/// Most datagrams moved by one `recvmmsg` / `sendmmsg` call.
pub const BATCH_MAX: usize = 64;

/// Length of the fixed IPv4 header.
const IPV4_HDR: usize = 20;

/// What was received into one buffer of a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecvMeta {
    /// Bytes of payload at the start of the buffer (0 for a malformed IPv4 raw datagram).
    pub len: usize,
    /// Source address (port 0 for IP encapsulation).
    pub addr: Option<SocketAddr>,
    /// The datagram did not fit the buffer and was cut (`MSG_TRUNC`).
    pub truncated: bool,
}

/// Strip an IPv4 header whose first `IPV4_HDR` bytes are in `hdr` and whose remainder
/// (options, then payload) is at the start of `buf` with `copied` total bytes received.
/// Returns the payload length now at the start of `buf`, or `None` if malformed.
pub(crate) fn strip_ipv4(hdr: &[u8; IPV4_HDR], buf: &mut [u8], copied: usize) -> Option<usize> {
    if copied < IPV4_HDR || hdr[0] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(hdr[0] & 0x0f) * 4;
    if ihl < IPV4_HDR {
        return None;
    }
    let in_buf = (copied - IPV4_HDR).min(buf.len());
    let skip = ihl - IPV4_HDR;
    if skip > in_buf {
        return None;
    }
    if skip > 0 {
        buf.copy_within(skip..in_buf, 0);
    }
    Some(in_buf - skip)
}

/// One `recvmmsg` call into `bufs` (at most `BATCH_MAX`, at most `meta.len()`), filling
/// `meta`; `strip_v4` strips IPv4 headers (raw IPv4 sockets). Returns the number received.
pub(crate) fn recv_batch<B: AsMut<[u8]>>(
    fd: BorrowedFd<'_>,
    bufs: &mut [B],
    meta: &mut [RecvMeta],
    strip_v4: bool,
) -> io::Result<usize> {
    let n = bufs.len().min(meta.len()).min(BATCH_MAX);
    if n == 0 {
        return Ok(0);
    }
    // SAFETY: (this and the next two zeroed arrays) mmsghdr, iovec and sockaddr_storage are plain C
    // structs for which all-zero bytes (null pointers, zero lengths) are valid values.
    let mut names: [libc::sockaddr_storage; BATCH_MAX] = unsafe { mem::zeroed() };
    // SAFETY: see above.
    let mut iovs: [[libc::iovec; 2]; BATCH_MAX] = unsafe { mem::zeroed() };
    // SAFETY: see above.
    let mut msgs: [libc::mmsghdr; BATCH_MAX] = unsafe { mem::zeroed() };
    let mut hdrs = [[0u8; IPV4_HDR]; BATCH_MAX];
    for i in 0..n {
        let buf = bufs[i].as_mut();
        let iov = &mut iovs[i];
        let mut k = 0;
        if strip_v4 {
            iov[0] = libc::iovec {
                iov_base: hdrs[i].as_mut_ptr().cast(),
                iov_len: IPV4_HDR,
            };
            k = 1;
        }
        iov[k] = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let h = &mut msgs[i].msg_hdr;
        h.msg_name = (&mut names[i] as *mut libc::sockaddr_storage).cast();
        h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        h.msg_iov = iov.as_mut_ptr();
        h.msg_iovlen = k + 1;
    }
    // SAFETY: msgs[..n] point at live iovecs / name buffers whose lengths are the lengths of
    // the buffers they describe (the caller's buffers are mutably borrowed for this call).
    let r = unsafe {
        libc::recvmmsg(
            fd.as_raw_fd(),
            msgs.as_mut_ptr(),
            n as libc::c_uint,
            0,
            std::ptr::null_mut(),
        )
    };
    let got = usize::try_from(r).map_err(|_| os::last_err())?;
    for i in 0..got.min(n) {
        let h = &msgs[i].msg_hdr;
        let copied = msgs[i].msg_len as usize;
        let truncated = h.msg_flags & libc::MSG_TRUNC != 0;
        let addr = os::from_storage(&names[i], h.msg_namelen);
        let len = if strip_v4 {
            strip_ipv4(&hdrs[i], bufs[i].as_mut(), copied).unwrap_or(0)
        } else {
            copied
        };
        meta[i] = RecvMeta {
            len,
            addr: addr.map(|a| {
                if strip_v4 {
                    SocketAddr::new(a.ip(), 0)
                } else {
                    a
                }
            }),
            truncated,
        };
    }
    Ok(got)
}

/// One `recvmsg` call into `buf` (the single-datagram form of [`recv_batch`]).
pub(crate) fn recv_one(fd: BorrowedFd<'_>, buf: &mut [u8], strip_v4: bool) -> io::Result<RecvMeta> {
    // SAFETY: all-zero is a valid sockaddr_storage / msghdr.
    let mut name: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let mut hdr = [0u8; IPV4_HDR];
    let mut iov = [
        libc::iovec {
            iov_base: hdr.as_mut_ptr().cast(),
            iov_len: IPV4_HDR,
        },
        libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        },
    ];
    // SAFETY: see above.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_name = (&mut name as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    if strip_v4 {
        msg.msg_iov = iov.as_mut_ptr();
        msg.msg_iovlen = 2;
    } else {
        msg.msg_iov = iov[1..].as_mut_ptr();
        msg.msg_iovlen = 1;
    }
    // SAFETY: msg points at live buffers of the lengths it declares.
    let r = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, 0) };
    let copied = os::cvt_size(r)?;
    let truncated = msg.msg_flags & libc::MSG_TRUNC != 0;
    let addr = os::from_storage(&name, msg.msg_namelen);
    if strip_v4 {
        let len = strip_ipv4(&hdr, buf, copied).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "malformed IPv4 header on raw socket",
            )
        })?;
        Ok(RecvMeta {
            len,
            addr: addr.map(|a| SocketAddr::new(a.ip(), 0)),
            truncated,
        })
    } else {
        Ok(RecvMeta {
            len: copied,
            addr,
            truncated,
        })
    }
}

/// One `sendmmsg` call for up to `BATCH_MAX` datagrams of `bufs`, to the connected peer or,
/// when `dests` is given, to `dests[i]` (matched by index). Returns how many were sent
/// from the front; an error is returned only when not even the first could be sent.
pub(crate) fn send_batch<B: AsRef<[u8]>>(
    fd: BorrowedFd<'_>,
    bufs: &[B],
    dests: Option<&[SocketAddr]>,
) -> io::Result<usize> {
    let mut n = bufs.len().min(BATCH_MAX);
    if let Some(d) = dests {
        n = n.min(d.len());
    }
    if n == 0 {
        return Ok(0);
    }
    // SAFETY: all-zero is valid for these plain C structs (see recv_batch).
    let mut names: [libc::sockaddr_storage; BATCH_MAX] = unsafe { mem::zeroed() };
    // SAFETY: see above.
    let mut iovs: [libc::iovec; BATCH_MAX] = unsafe { mem::zeroed() };
    // SAFETY: see above.
    let mut msgs: [libc::mmsghdr; BATCH_MAX] = unsafe { mem::zeroed() };
    for i in 0..n {
        let b = bufs[i].as_ref();
        // The kernel only reads through iov_base for sendmmsg.
        iovs[i] = libc::iovec {
            iov_base: b.as_ptr() as *mut libc::c_void,
            iov_len: b.len(),
        };
        let h = &mut msgs[i].msg_hdr;
        h.msg_iov = &mut iovs[i];
        h.msg_iovlen = 1;
        if let Some(d) = dests {
            let (ss, len) = os::to_storage(&d[i]);
            names[i] = ss;
            h.msg_name = (&mut names[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = len;
        }
    }
    // SAFETY: msgs[..n] point at live iovecs / names describing the caller's buffers, which
    // are borrowed for the duration of the call and only read by the kernel.
    let r = unsafe {
        libc::sendmmsg(
            fd.as_raw_fd(),
            msgs.as_mut_ptr(),
            n as libc::c_uint,
            libc::MSG_NOSIGNAL,
        )
    };
    let sent = usize::try_from(r).map_err(|_| os::last_err())?;
    Ok(sent)
}

/// One `sendto` (or `send` when `dest` is `None`).
pub(crate) fn send_one(
    fd: BorrowedFd<'_>,
    buf: &[u8],
    dest: Option<&SocketAddr>,
) -> io::Result<usize> {
    let r = match dest {
        Some(d) => {
            let (ss, len) = os::to_storage(d);
            // SAFETY: buf and ss are live for the call; lengths match the buffers.
            unsafe {
                libc::sendto(
                    fd.as_raw_fd(),
                    buf.as_ptr().cast(),
                    buf.len(),
                    libc::MSG_NOSIGNAL,
                    (&ss as *const libc::sockaddr_storage).cast(),
                    len,
                )
            }
        }
        // SAFETY: buf is live for the call and its length is passed.
        None => unsafe {
            libc::send(
                fd.as_raw_fd(),
                buf.as_ptr().cast(),
                buf.len(),
                libc::MSG_NOSIGNAL,
            )
        },
    };
    os::cvt_size(r)
}

/// `UDP_SEGMENT` (linux/udp.h): cmsg / sockopt carrying the GSO segment size.
pub(crate) const UDP_SEGMENT: libc::c_int = 103;
/// `UDP_GRO` (linux/udp.h): sockopt enabling GRO delivery and the cmsg reporting its size.
pub(crate) const UDP_GRO: libc::c_int = 104;

/// One `sendmsg` of `buf` as consecutive UDP datagrams of `segment_size` bytes (the last
/// may be shorter), segmented by the kernel (UDP GSO, `UDP_SEGMENT` cmsg).
pub(crate) fn send_segmented(
    fd: BorrowedFd<'_>,
    buf: &[u8],
    segment_size: u16,
) -> io::Result<usize> {
    if segment_size == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "segment size 0",
        ));
    }
    let mut cbuf = cmsg::Buf::new();
    let mut iov = libc::iovec {
        iov_base: buf.as_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    let mut msg = cmsg::msghdr(&mut iov);
    cbuf.put_one(
        &mut msg,
        libc::SOL_UDP,
        UDP_SEGMENT,
        &segment_size.to_ne_bytes(),
    )?;
    // SAFETY: msg describes live buffers for the duration of the call; the kernel reads them.
    let r = unsafe { libc::sendmsg(fd.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
    os::cvt_size(r)
}

/// One `recvmsg` that also reports the `UDP_GRO` segment size when the kernel coalesced
/// several datagrams into `buf`. Returns (bytes, segment size if coalesced, truncated).
pub(crate) fn recv_gro(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
) -> io::Result<(usize, Option<u16>, bool)> {
    let mut cbuf = cmsg::Buf::new();
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut msg = cmsg::msghdr(&mut iov);
    cbuf.attach_for_recv(&mut msg);
    // SAFETY: msg describes live writable buffers of the declared lengths.
    let r = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, 0) };
    let n = os::cvt_size(r)?;
    let mut seg = None;
    cmsg::for_each(&msg, |level, ty, data| {
        if level == libc::SOL_UDP && ty == UDP_GRO {
            // The kernel reports the segment size as an int.
            if let Some(v) = data.get(..4).and_then(|b| b.try_into().ok()) {
                seg = u16::try_from(libc::c_int::from_ne_bytes(v))
                    .ok()
                    .filter(|&s| s > 0);
            }
        }
    });
    Ok((n, seg, msg.msg_flags & libc::MSG_TRUNC != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(ihl_words: u8) -> [u8; IPV4_HDR] {
        let mut h = [0u8; IPV4_HDR];
        h[0] = 0x40 | ihl_words;
        h
    }

    #[test]
    fn strip_plain_header() {
        let mut buf = [1, 2, 3, 4, 0, 0];
        assert_eq!(strip_ipv4(&hdr(5), &mut buf, 24), Some(4));
        assert_eq!(&buf[..4], &[1, 2, 3, 4]);
    }

    #[test]
    fn strip_header_with_options() {
        // 8 bytes of options, then 3 payload bytes.
        let mut buf = [9, 9, 9, 9, 9, 9, 9, 9, 7, 8, 6];
        assert_eq!(strip_ipv4(&hdr(7), &mut buf, 31), Some(3));
        assert_eq!(&buf[..3], &[7, 8, 6]);
    }

    #[test]
    fn strip_rejects_malformed() {
        let mut buf = [0u8; 8];
        assert_eq!(strip_ipv4(&hdr(5), &mut buf, 10), None, "short");
        assert_eq!(strip_ipv4(&hdr(4), &mut buf, 28), None, "ihl < 5");
        let mut v6 = hdr(5);
        v6[0] = 0x65;
        assert_eq!(strip_ipv4(&v6, &mut buf, 28), None, "version 6");
        assert_eq!(
            strip_ipv4(&hdr(15), &mut buf, 28),
            None,
            "options longer than data"
        );
        // Never panics for any first byte and any length.
        for b0 in 0..=255u8 {
            let mut h = [0u8; IPV4_HDR];
            h[0] = b0;
            for copied in 0..40 {
                let _ = strip_ipv4(&h, &mut buf, copied);
            }
        }
    }
}
