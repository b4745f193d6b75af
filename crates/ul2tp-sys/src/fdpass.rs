//! File descriptor passing over Unix stream sockets (`SCM_RIGHTS`) for the management API:
//! an application hands a tunnel socket to the daemon (managed tunnels, docs/reference/kernel.md §4.5),
//! and the daemon hands session channels back. Descriptors travel with the first byte of
//! the message line they accompany.
//!
//! The plain functions do one `sendmsg` / `recvmsg` and work on blocking and nonblocking
//! sockets alike (on a nonblocking one they return `WouldBlock`, so they fit inside
//! `tokio::net::UnixStream::try_io`); the `_async` forms wait on a tokio `UnixStream`, and
//! [`send_all_with_fds`] loops on a blocking socket until every byte is written.
//! Received descriptors are close-on-exec (`MSG_CMSG_CLOEXEC`).

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use tokio::io::Interest;

use crate::{cmsg, os};

/// Most descriptors accepted in one message; more are closed and reported as an error.
pub const MAX_FDS: usize = 16;

/// Send `bytes` with `fds` attached in one `sendmsg`; returns the number of bytes written
/// (a stream socket may take fewer than `bytes.len()`; the descriptors go with the first).
pub fn send_with_fds<S: AsFd>(stream: &S, bytes: &[u8], fds: &[RawFd]) -> io::Result<usize> {
    if fds.len() > MAX_FDS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "too many descriptors in one message",
        ));
    }
    if bytes.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "descriptors need at least one data byte",
        ));
    }
    let mut cbuf = cmsg::Buf::new();
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    let mut msg = cmsg::msghdr(&mut iov);
    if !fds.is_empty() {
        let data: Vec<u8> = fds.iter().flat_map(|fd| fd.to_ne_bytes()).collect();
        cbuf.put_one(&mut msg, libc::SOL_SOCKET, libc::SCM_RIGHTS, &data)?;
    }
    // SAFETY: msg describes live buffers (bytes, cbuf) for the duration of the call; the
    // kernel only reads them.
    let r = unsafe { libc::sendmsg(stream.as_fd().as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
    os::cvt_size(r)
}

/// Receive into `buf` with one `recvmsg`, collecting any passed descriptors. `Ok((0, _))`
/// means end of stream. If the sender passed more than [`MAX_FDS`] the received ones are
/// closed and an error is returned.
pub fn recv_with_fds<S: AsFd>(stream: &S, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
    let mut cbuf = cmsg::Buf::new();
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut msg = cmsg::msghdr(&mut iov);
    cbuf.attach_for_recv(&mut msg);
    // SAFETY: msg describes live writable buffers of the declared lengths.
    let r = unsafe { libc::recvmsg(stream.as_fd().as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    let n = os::cvt_size(r)?;
    let mut fds = Vec::new();
    cmsg::for_each(&msg, |level, ty, data| {
        if level != libc::SOL_SOCKET || ty != libc::SCM_RIGHTS {
            return;
        }
        for raw in data.chunks_exact(size_of::<RawFd>()) {
            let fd = RawFd::from_ne_bytes(raw.try_into().unwrap_or([0xff; size_of::<RawFd>()]));
            if fd >= 0 {
                // SAFETY: SCM_RIGHTS data is an array of descriptors the kernel just
                // installed in this process; each is owned by nobody else.
                fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    });
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        drop(fds);
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "too many descriptors passed; closed them",
        ));
    }
    Ok((n, fds))
}

/// Blocking: write all of `bytes` (descriptors with the first chunk), retrying on `EINTR`.
pub fn send_all_with_fds<S: AsFd>(stream: &S, bytes: &[u8], fds: &[RawFd]) -> io::Result<()> {
    let mut off = 0;
    let mut first = true;
    while off < bytes.len() {
        let r = if first {
            send_with_fds(stream, &bytes[off..], fds)
        } else {
            send_with_fds(stream, &bytes[off..], &[])
        };
        match r {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                off += n;
                first = false;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Async: write all of `bytes` with `fds` attached on a tokio `UnixStream`.
pub async fn send_with_fds_async(
    stream: &tokio::net::UnixStream,
    bytes: &[u8],
    fds: &[RawFd],
) -> io::Result<()> {
    let mut off = 0;
    let mut first = true;
    while off < bytes.len() {
        let pass: &[RawFd] = if first { fds } else { &[] };
        let n = stream
            .async_io(Interest::WRITABLE, || {
                send_with_fds(stream, &bytes[off..], pass)
            })
            .await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        off += n;
        first = false;
    }
    Ok(())
}

/// Async: one receive with descriptors on a tokio `UnixStream` (waits for data).
pub async fn recv_with_fds_async(
    stream: &tokio::net::UnixStream,
    buf: &mut [u8],
) -> io::Result<(usize, Vec<OwnedFd>)> {
    stream
        .async_io(Interest::READABLE, || recv_with_fds(stream, buf))
        .await
}

/// Credentials of the process at the other end of a Unix socket (`SO_PEERCRED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCred {
    /// Process id.
    pub pid: i32,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
}

/// `SO_PEERCRED` of a connected Unix socket (`EINVAL` for other sockets, which have no
/// peer credentials even though the kernel answers the option for them).
pub fn peer_cred<S: AsFd>(stream: &S) -> io::Result<PeerCred> {
    if os::get_int(stream.as_fd(), libc::SOL_SOCKET, os::SO_DOMAIN)? != libc::AF_UNIX {
        return Err(os::errno(libc::EINVAL));
    }
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: cred and len are live locals of the declared size.
    let r = unsafe {
        libc::getsockopt(
            stream.as_fd().as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    os::cvt(r)?;
    if cred.pid == 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotConnected,
            "no peer credentials",
        ));
    }
    Ok(PeerCred {
        pid: cred.pid,
        uid: cred.uid,
        gid: cred.gid,
    })
}

/// Whether user `uid` belongs to group `group_name`, as primary group or listed member
/// (system user and group databases). An unknown group or user yields `Ok(false)`.
pub fn user_in_group(uid: u32, group_name: &str) -> io::Result<bool> {
    use nix::unistd::{Group, Uid, User};
    let Some(group) = Group::from_name(group_name).map_err(io::Error::from)? else {
        return Ok(false);
    };
    let Some(user) = User::from_uid(Uid::from_raw(uid)).map_err(io::Error::from)? else {
        return Ok(false);
    };
    Ok(user.gid == group.gid || group.mem.contains(&user.name))
}
