//! The application end of a daemon descriptor: a `SOCK_SEQPACKET` Unix socket carrying
//! [`SockMsg`]s (see `ul2tp_api::sockproto`).
//!
//! Requests (SETOPT / GETOPT / STATS) are answered by a REPLY on the same socket, in order,
//! interleaved with frames and datagrams the daemon pushes at any time. While waiting for a
//! REPLY, pushed messages are queued and handed out by later receives, so nothing is lost.
//! A REPLY that arrives when no request waits is the daemon's report of a failed DGRAM send
//! and is handed to the receive path like a pending socket error.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::sys::socket::MsgFlags;
use ul2tp_api::sockproto::SockMsg;

/// Largest message accepted from the daemon: an L2TP payload fits in 64 KiB, plus the
/// DGRAM address header.
const MAX_MSG: usize = 65536 + 64;

/// The application end of a seqpacket descriptor.
#[derive(Debug)]
pub(crate) struct Chan {
    fd: OwnedFd,
    /// Pushed messages (FRAME / DGRAM) that arrived while waiting for a REPLY.
    queue: VecDeque<SockMsg>,
    nonblocking: bool,
    buf: Vec<u8>,
}

fn errno_err(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

impl Chan {
    /// Wrap a descriptor received from the daemon (made blocking).
    pub(crate) fn new(fd: OwnedFd) -> io::Result<Chan> {
        let c = Chan {
            fd,
            queue: VecDeque::new(),
            nonblocking: false,
            buf: vec![0; MAX_MSG],
        };
        c.apply_nonblocking(false)?;
        Ok(c)
    }

    fn apply_nonblocking(&self, on: bool) -> io::Result<()> {
        use nix::fcntl::{fcntl, FcntlArg, OFlag};
        let fl = fcntl(&self.fd, FcntlArg::F_GETFL).map_err(errno_err)?;
        let mut fl = OFlag::from_bits_truncate(fl);
        fl.set(OFlag::O_NONBLOCK, on);
        fcntl(&self.fd, FcntlArg::F_SETFL(fl)).map_err(errno_err)?;
        Ok(())
    }

    /// Switch receives and sends between blocking and nonblocking (`WouldBlock`).
    pub(crate) fn set_nonblocking(&mut self, on: bool) -> io::Result<()> {
        self.apply_nonblocking(on)?;
        self.nonblocking = on;
        Ok(())
    }

    /// Send one message.
    pub(crate) fn send(&self, m: &SockMsg) -> io::Result<()> {
        let bytes = m.encode();
        loop {
            match nix::sys::socket::send(self.fd.as_raw_fd(), &bytes, MsgFlags::MSG_NOSIGNAL) {
                Ok(_) => return Ok(()),
                Err(nix::Error::EINTR) => continue,
                // The daemon closed its end: the session (or tunnel) is gone.
                Err(nix::Error::EPIPE) | Err(nix::Error::ECONNRESET) => {
                    return Err(io::Error::from_raw_os_error(nix::libc::EBADF))
                }
                Err(e) => return Err(errno_err(e)),
            }
        }
    }

    /// Receive one message from the socket (not the queue). `Ok(None)` is end of stream;
    /// malformed messages are skipped.
    fn recv_raw(&mut self) -> io::Result<Option<SockMsg>> {
        loop {
            let n = match nix::sys::socket::recv(
                self.fd.as_raw_fd(),
                &mut self.buf,
                MsgFlags::MSG_TRUNC,
            ) {
                Ok(n) => n,
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(errno_err(e)),
            };
            if n == 0 {
                return Ok(None);
            }
            if n > self.buf.len() {
                // Cut by our buffer: not a message we can trust; skip it.
                continue;
            }
            match SockMsg::decode(&self.buf[..n]) {
                Some(m) => return Ok(Some(m)),
                None => continue,
            }
        }
    }

    /// Next message not consumed by [`call`](Self::call), queued ones first; `Ok(None)` at
    /// end of stream. Besides FRAME and DGRAM this returns unsolicited REPLYs: the daemon
    /// reports a failed DGRAM send that way (e.g. `EDESTADDRREQ`).
    pub(crate) fn recv_pushed(&mut self) -> io::Result<Option<SockMsg>> {
        if let Some(m) = self.queue.pop_front() {
            return Ok(Some(m));
        }
        self.recv_raw()
    }

    /// Send a request and wait for its REPLY, queueing messages pushed meanwhile. Returns the
    /// reply data; a non-zero errno becomes that OS error. Blocks even in nonblocking mode.
    pub(crate) fn call(&mut self, req: &SockMsg) -> io::Result<Vec<u8>> {
        let was_nonblocking = self.nonblocking;
        if was_nonblocking {
            self.apply_nonblocking(false)?;
        }
        let r = self.call_blocking(req);
        if was_nonblocking {
            self.apply_nonblocking(true)?;
        }
        r
    }

    fn call_blocking(&mut self, req: &SockMsg) -> io::Result<Vec<u8>> {
        self.send(req)?;
        loop {
            match self.recv_raw()? {
                None => return Err(io::Error::from_raw_os_error(nix::libc::EBADF)),
                Some(SockMsg::Reply { errno: 0, data }) => return Ok(data),
                Some(SockMsg::Reply { errno, .. }) => {
                    return Err(io::Error::from_raw_os_error(errno))
                }
                Some(m) => self.queue.push_back(m),
            }
        }
    }

    /// Messages waiting in the queue (received while waiting for a reply).
    pub(crate) fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Give up the descriptor.
    pub(crate) fn into_fd(self) -> OwnedFd {
        self.fd
    }
}

impl AsFd for Chan {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
