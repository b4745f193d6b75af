//! `socketpair(AF_UNIX, SOCK_SEQPACKET)`: the PPPoL2TP-session-socket equivalent. The daemon
//! keeps one end and hands the other to an application; each message is one PPP frame, so
//! frame boundaries survive without any framing of our own (docs/reference/kernel.md §7.4).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::os;

/// Two connected `SOCK_SEQPACKET` Unix sockets (close-on-exec, blocking).
pub fn pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds is a live array of two ints for the kernel to fill.
    os::cvt(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    // SAFETY: on success both descriptors are new and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: F_GETFL / F_SETFL on a descriptor we own.
    unsafe {
        let fl = os::cvt(libc::fcntl(fd.as_raw_fd(), libc::F_GETFL))?;
        os::cvt(libc::fcntl(
            fd.as_raw_fd(),
            libc::F_SETFL,
            fl | libc::O_NONBLOCK,
        ))?;
    }
    Ok(())
}

fn recv_msg(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    // MSG_TRUNC makes the kernel report the real length, so a cut message is detected.
    // SAFETY: buf is a live writable buffer of buf.len() bytes.
    let r = unsafe {
        libc::recv(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_TRUNC,
        )
    };
    let n = os::cvt_size(r)?;
    if n > buf.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{n}-byte message cut to {} bytes", buf.len()),
        ));
    }
    Ok(n)
}

fn send_msg(fd: &OwnedFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: buf is a live readable buffer of buf.len() bytes.
    os::cvt_size(unsafe {
        libc::send(
            fd.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_NOSIGNAL,
        )
    })
}

/// One end of a seqpacket pair, nonblocking and registered with tokio.
#[derive(Debug)]
pub struct SeqPacket {
    fd: AsyncFd<OwnedFd>,
}

impl SeqPacket {
    /// Create a pair: the async end for the daemon and the plain descriptor to hand over.
    pub fn pair() -> io::Result<(SeqPacket, OwnedFd)> {
        let (a, b) = pair()?;
        Ok((SeqPacket::from_fd(a)?, b))
    }

    /// Wrap a seqpacket descriptor (made nonblocking). Must be called inside a tokio runtime.
    pub fn from_fd(fd: OwnedFd) -> io::Result<SeqPacket> {
        tokio::runtime::Handle::try_current().map_err(|_| {
            io::Error::other("ul2tp-sys sockets must be created inside a tokio runtime")
        })?;
        set_nonblocking(&fd)?;
        Ok(SeqPacket {
            fd: os::async_fd(fd)?,
        })
    }

    /// Receive one message (one frame). `Ok(0)` is end of stream when the peer closed (or an
    /// empty message); a message longer than `buf` is dropped with `InvalidData`.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd
            .async_io(Interest::READABLE, |fd| recv_msg(fd, buf))
            .await
    }

    /// [`recv`](Self::recv) without waiting.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd.try_io(Interest::READABLE, |fd| recv_msg(fd, buf))
    }

    /// Send one message (one frame).
    pub async fn send(&self, frame: &[u8]) -> io::Result<usize> {
        self.fd
            .async_io(Interest::WRITABLE, |fd| send_msg(fd, frame))
            .await
    }

    /// [`send`](Self::send) without waiting (`WouldBlock` when the peer's queue is full).
    pub fn try_send(&self, frame: &[u8]) -> io::Result<usize> {
        self.fd.try_io(Interest::WRITABLE, |fd| send_msg(fd, frame))
    }
}

impl AsFd for SeqPacket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.get_ref().as_fd()
    }
}

impl AsRawFd for SeqPacket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.get_ref().as_raw_fd()
    }
}
