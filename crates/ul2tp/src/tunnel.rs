//! Managed tunnel sockets (docs/reference/kernel.md §4.5, §5.6): the application runs the control
//! protocol on its own bound and connected UDP socket (or an L2TP/IP socket) and registers
//! it with `tunnel_create` plus the descriptor, as it would pass `L2TP_ATTR_FD` to the
//! kernel.
//!
//! Once registered, ul2tpd reads the socket: data for known sessions goes to the sessions,
//! and everything the kernel would leave on the tunnel socket (control messages,
//! unknown-session data, short packets) comes to the application through the "tunnel
//! socket" descriptor the reply carries. The application must therefore not read its own
//! socket any more (the daemon shares its open file description); it may still send on
//! it, or send through [`TunnelSocket::send`]. Dropping the [`TunnelSocket`] closes the
//! descriptor and the daemon destroys the tunnel and all its sessions, like closing a
//! kernel tunnel socket.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::sys::socket::{getsockname, AddressFamily, SockaddrLike, SockaddrStorage};
use ul2tp_api::sockproto::SockMsg;
use ul2tp_api::{Attrs, Command, ServerMessage};

use crate::chan::Chan;
use crate::l2tpip::{recv_dgram, L2tpAddr};
use crate::session::one_fd;
use crate::{Client, ClientError};

/// A managed tunnel: the descriptor the daemon returned plus the application's own socket.
#[derive(Debug)]
pub struct TunnelSocket {
    chan: Chan,
    /// The application's socket, kept open for sending; declared after `chan` so the
    /// tunnel descriptor closes first.
    socket: OwnedFd,
    reply: ServerMessage,
}

impl TunnelSocket {
    /// `tunnel_create` with `socket` attached (the `fd` attribute is set here; `attrs`
    /// carries conn_id, peer_conn_id, proto_version, encap_type, ... as for the kernel).
    /// `socket` is a bound and connected UDP socket (`UdpSocket` converts into `OwnedFd`)
    /// or an [`L2tpIpSocket`](crate::L2tpIpSocket) for IP encapsulation; it is kept open and
    /// closed with the tunnel.
    pub fn create(
        client: &mut Client,
        mut attrs: Attrs,
        socket: impl Into<OwnedFd>,
    ) -> Result<Self, ClientError> {
        let socket: OwnedFd = socket.into();
        attrs.fd = Some(0);
        let (reply, fds) =
            client.request_with_fds(Command::TunnelCreate, attrs, false, &[socket.as_raw_fd()])?;
        Ok(TunnelSocket {
            chan: Chan::new(one_fd(fds)?)?,
            socket,
            reply,
        })
    }

    /// The daemon's reply to `tunnel_create` (its attributes, if it sent any).
    pub fn reply(&self) -> &ServerMessage {
        &self.reply
    }

    /// The application's own socket (send only; the daemon reads it).
    pub fn socket(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }

    /// Receive one message the kernel would have left on the tunnel socket, with its
    /// source (for UDP, `conn_id` is the source port). Cut to `buf.len()` if longer.
    /// `EBADF` once the daemon destroyed the tunnel; an earlier send the daemon could not
    /// carry out is reported here as its errno.
    pub fn recv(&mut self, buf: &mut [u8]) -> io::Result<(usize, L2tpAddr)> {
        recv_dgram(&mut self.chan, buf)
    }

    /// Send one control message to the tunnel's connected peer (for L2TP/IP, without the
    /// 4 zero bytes).
    pub fn send(&self, msg: &[u8]) -> io::Result<usize> {
        // The family of the unspecified address does not matter to the daemon; use the
        // socket's family when we can tell it.
        let unspecified = match getsockname::<SockaddrStorage>(self.socket.as_raw_fd())
            .ok()
            .and_then(|a| a.family())
        {
            Some(AddressFamily::Inet6) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        };
        self.chan.send(&SockMsg::Dgram {
            addr: unspecified,
            conn_id: 0,
            payload: msg.to_vec(),
        })?;
        Ok(msg.len())
    }

    /// Make receives nonblocking (`WouldBlock`).
    pub fn set_nonblocking(&mut self, on: bool) -> io::Result<()> {
        self.chan.set_nonblocking(on)
    }
}

impl AsFd for TunnelSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.chan.as_fd()
    }
}

impl AsRawFd for TunnelSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.chan.as_fd().as_raw_fd()
    }
}
