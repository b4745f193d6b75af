//! PPPoL2TP session sockets (docs/reference/kernel.md §7): the descriptor ul2tpd returns for
//! `pppol2tp_connect` carries PPP frames of one session, its socket options and its
//! statistics.
//!
//! Kernel call → ul2tp:
//! `socket(AF_PPPOX, SOCK_DGRAM, PX_PROTO_OL2TP)` + `connect(sockaddr_pppol2tp[v3])` →
//! [`SessionSocket::connect`]; `send`/`recv` → [`SessionSocket::send_frame`] /
//! [`SessionSocket::recv_frame`] (protocol field + information, no FF 03, §7.4);
//! `setsockopt/getsockopt(SOL_PPPOL2TP)` → [`SessionSocket::set_option`] /
//! [`SessionSocket::get_option`] (§7.5); `ioctl(PPPIOCGL2TPSTATS)` →
//! [`SessionSocket::stats`], [`SessionSocket::tunnel_stats`], [`SessionSocket::session_stats`]
//! (§3.2, §7.6); `close` → drop.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use ul2tp_api::sockproto::{self, IocStats, SockMsg};
use ul2tp_api::{Attrs, Command};

use crate::chan::Chan;
use crate::{Client, ClientError};

/// The `sockaddr_pppol2tp` / `sockaddr_pppol2tpv3` of `connect()` (docs/reference/kernel.md §7.2).
#[derive(Debug, Clone, Copy)]
pub struct PppoL2tpAddr<'a> {
    /// s_tunnel: our tunnel id (must not be 0).
    pub tunnel_id: u32,
    /// s_session: our session id; 0 (with `peer_session_id` 0) opens the tunnel management
    /// socket (§7.3 step 2).
    pub session_id: u32,
    /// d_tunnel: the peer's tunnel id (set on the tunnel if it has none yet, §7.3 step 4).
    pub peer_tunnel_id: u32,
    /// d_session: the peer's session id.
    pub peer_session_id: u32,
    /// L2TP version, 2 or 3 (the kernel takes it from the address length).
    pub version: u8,
    /// The tunnel's bound and connected UDP socket, used to create a managed tunnel when
    /// the session ids are 0 and the tunnel does not exist yet (the L2TPv2 API of §7.3).
    pub tunnel_fd: Option<BorrowedFd<'a>>,
}

/// A `PPPOL2TP_SO_*` socket option (level SOL_PPPOL2TP = 273, docs/reference/kernel.md §7.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionOption {
    /// PPPOL2TP_SO_DEBUG (1): accepted and ignored, reads 0.
    Debug,
    /// PPPOL2TP_SO_RECVSEQ (2): require sequence numbers on received packets (0/1).
    RecvSeq,
    /// PPPOL2TP_SO_SENDSEQ (3): send sequence numbers (0/1).
    SendSeq,
    /// PPPOL2TP_SO_LNSMODE (4): act as LNS (0/1).
    LnsMode,
    /// PPPOL2TP_SO_REORDERTO (5): reorder timeout in milliseconds.
    ReorderTimeout,
}

impl SessionOption {
    /// The kernel's option id.
    pub fn id(self) -> u32 {
        match self {
            SessionOption::Debug => sockproto::SO_DEBUG,
            SessionOption::RecvSeq => sockproto::SO_RECVSEQ,
            SessionOption::SendSeq => sockproto::SO_SENDSEQ,
            SessionOption::LnsMode => sockproto::SO_LNSMODE,
            SessionOption::ReorderTimeout => sockproto::SO_REORDERTO,
        }
    }

    /// The option with kernel id `id`, if it is one.
    pub fn from_id(id: u32) -> Option<SessionOption> {
        [
            SessionOption::Debug,
            SessionOption::RecvSeq,
            SessionOption::SendSeq,
            SessionOption::LnsMode,
            SessionOption::ReorderTimeout,
        ]
        .into_iter()
        .find(|o| o.id() == id)
    }
}

/// A PPPoL2TP session socket (or, with session ids 0/0, a tunnel management socket).
///
/// Blocking by default. Frames that arrive while an option or statistics request waits for
/// its answer are kept and returned by later [`recv_frame`](Self::recv_frame) calls. Dropping
/// it closes the descriptor: the daemon deletes the session (or, for a management socket
/// whose connect created the tunnel, that tunnel).
#[derive(Debug)]
pub struct SessionSocket {
    chan: Chan,
    addr: (u32, u32, u32, u32, u8),
}

impl SessionSocket {
    /// `connect()` a PPPoL2TP socket: asks the daemon (`pppol2tp_connect`) and wraps the
    /// descriptor it returns. Errors are the daemon's errno (docs/reference/kernel.md §7.3), e.g.
    /// `EINVAL` for tunnel id 0, `ENOENT` for a missing tunnel, `EEXIST` for a session
    /// that already has a socket.
    pub fn connect(client: &mut Client, addr: PppoL2tpAddr<'_>) -> Result<Self, ClientError> {
        let attrs = Attrs {
            conn_id: Some(addr.tunnel_id),
            session_id: Some(addr.session_id),
            peer_conn_id: Some(addr.peer_tunnel_id),
            peer_session_id: Some(addr.peer_session_id),
            proto_version: Some(addr.version),
            fd: addr.tunnel_fd.map(|_| 0),
            ..Attrs::default()
        };
        let pass: Vec<RawFd> = addr.tunnel_fd.iter().map(|f| f.as_raw_fd()).collect();
        let (_, fds) = client.request_with_fds(Command::Pppol2tpConnect, attrs, false, &pass)?;
        let fd = one_fd(fds)?;
        Ok(SessionSocket {
            chan: Chan::new(fd)?,
            addr: (
                addr.tunnel_id,
                addr.session_id,
                addr.peer_tunnel_id,
                addr.peer_session_id,
                addr.version,
            ),
        })
    }

    /// Wrap a session descriptor obtained some other way (for example passed from another
    /// process).
    pub fn from_fd(fd: OwnedFd) -> io::Result<Self> {
        Ok(SessionSocket {
            chan: Chan::new(fd)?,
            addr: (0, 0, 0, 0, 0),
        })
    }

    /// (tunnel_id, session_id, peer_tunnel_id, peer_session_id, version) as connected
    /// (all 0 for [`from_fd`](Self::from_fd)).
    pub fn ids(&self) -> (u32, u32, u32, u32, u8) {
        self.addr
    }

    /// Send one PPP frame: protocol field + information, without FF 03 (docs/reference/kernel.md §7.4).
    /// Returns the frame length. `EBADF` once the session is gone.
    pub fn send_frame(&self, frame: &[u8]) -> io::Result<usize> {
        self.chan.send(&SockMsg::Frame(frame.to_vec()))?;
        Ok(frame.len())
    }

    /// Receive one PPP frame into `buf`; returns its length, cut to `buf.len()` if longer
    /// (like `recv` without MSG_TRUNC). `Ok(0)` means the daemon closed the session.
    pub fn recv_frame(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.chan.recv_pushed()? {
                None => return Ok(0),
                Some(SockMsg::Frame(f)) => {
                    let n = f.len().min(buf.len());
                    buf[..n].copy_from_slice(&f[..n]);
                    return Ok(n);
                }
                Some(_) => continue,
            }
        }
    }

    /// Receive one PPP frame as a vector; `Ok(None)` means the daemon closed the session.
    pub fn recv_frame_vec(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            match self.chan.recv_pushed()? {
                None => return Ok(None),
                Some(SockMsg::Frame(f)) => return Ok(Some(f)),
                Some(_) => continue,
            }
        }
    }

    /// Frames already received and kept while waiting for a reply; when nonblocking, read
    /// these before polling the descriptor.
    pub fn pending(&self) -> usize {
        self.chan.queued()
    }

    /// `setsockopt(SOL_PPPOL2TP, option, value)`; the daemon's errno on failure (`EINVAL`
    /// for a bad value, `ENOPROTOOPT` for a session option on a tunnel socket, §7.5).
    pub fn set_option(&mut self, option: SessionOption, value: i32) -> io::Result<()> {
        self.set_option_raw(option.id(), value)
    }

    /// [`set_option`](Self::set_option) with a raw option id.
    pub fn set_option_raw(&mut self, option: u32, value: i32) -> io::Result<()> {
        self.chan.call(&SockMsg::SetOpt { option, value })?;
        Ok(())
    }

    /// `getsockopt(SOL_PPPOL2TP, option)`.
    pub fn get_option(&mut self, option: SessionOption) -> io::Result<i32> {
        self.get_option_raw(option.id())
    }

    /// [`get_option`](Self::get_option) with a raw option id.
    pub fn get_option_raw(&mut self, option: u32) -> io::Result<i32> {
        let data = self.chan.call(&SockMsg::GetOpt { option })?;
        // getsockopt copies min(len, 4) bytes (§7.5); the daemon sends exactly 4.
        let b: [u8; 4] = data.as_slice().try_into().map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("option reply of {} bytes, expected 4", data.len()),
            )
        })?;
        Ok(i32::from_ne_bytes(b))
    }

    /// `ioctl(PPPIOCGL2TPSTATS)` on a session socket: this session's counters.
    pub fn stats(&mut self) -> io::Result<IocStats> {
        self.stats_for(0)
    }

    /// `ioctl(PPPIOCGL2TPSTATS)` with session_id 0 on a tunnel management socket: the
    /// tunnel's counters.
    pub fn tunnel_stats(&mut self) -> io::Result<IocStats> {
        self.stats_for(0)
    }

    /// `ioctl(PPPIOCGL2TPSTATS)` with `session_id` on a tunnel management socket: that PPP
    /// session's counters (`EBADR` if it does not exist or is not PPP, §7.6).
    pub fn session_stats(&mut self, session_id: u16) -> io::Result<IocStats> {
        self.stats_for(session_id)
    }

    fn stats_for(&mut self, session_id: u16) -> io::Result<IocStats> {
        let data = self.chan.call(&SockMsg::Stats { session_id })?;
        IocStats::from_bytes(&data).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "statistics reply of {} bytes, expected {}",
                    data.len(),
                    IocStats::SIZE
                ),
            )
        })
    }

    /// Make receives nonblocking (`WouldBlock`); option and statistics calls still wait for
    /// their answer.
    pub fn set_nonblocking(&mut self, on: bool) -> io::Result<()> {
        self.chan.set_nonblocking(on)
    }

    /// Give up the descriptor without closing it.
    pub fn into_fd(self) -> OwnedFd {
        self.chan.into_fd()
    }
}

impl AsFd for SessionSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.chan.as_fd()
    }
}

impl AsRawFd for SessionSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.chan.as_fd().as_raw_fd()
    }
}

/// The single descriptor a descriptor-returning reply must carry.
pub(crate) fn one_fd(fds: Vec<OwnedFd>) -> Result<OwnedFd, ClientError> {
    let n = fds.len();
    let mut it = fds.into_iter();
    match (it.next(), n) {
        (Some(fd), 1) => Ok(fd),
        _ => Err(ClientError::Protocol(format!(
            "reply carried {n} descriptors, expected 1"
        ))),
    }
}
