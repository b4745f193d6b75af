//! L2TP/IP sockets (docs/reference/kernel.md §8): control messages of L2TPv3 over IP protocol 115,
//! addressed by IP address and connection id.
//!
//! Kernel call → ul2tp: `socket(AF_INET[6], SOCK_DGRAM, IPPROTO_L2TP)` + `bind(sockaddr_l2tpip)`
//! → [`L2tpIpSocket::bind`]; `connect(sockaddr_l2tpip)` → [`L2tpIpSocket::connect`] (or
//! [`L2tpIpSocket::bind_connect`] in one step); `recvfrom` → [`L2tpIpSocket::recv_from`]
//! (the message without the 4 zero bytes, §8.4); `sendto`/`send` → [`L2tpIpSocket::send_to`] /
//! [`L2tpIpSocket::send`] (the daemon prepends the 4 zero bytes, §8.5).
//!
//! The daemon owns the real protocol-115 socket; bind and connect are attributes of the
//! `l2tpip_socket` request, so `connect` after `bind` asks for a new, connected descriptor
//! and closes the old one (messages still queued on the old one are lost).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use ul2tp_api::sockproto::SockMsg;
use ul2tp_api::{Attrs, Command, Errno};

use crate::chan::Chan;
use crate::session::one_fd;
use crate::{Client, ClientError};

/// An L2TP address: IP address plus connection id (L2TP/IP) or UDP port (managed UDP
/// tunnels' tunnel sockets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct L2tpAddr {
    /// IP address.
    pub ip: IpAddr,
    /// Control connection id (L2TP/IP) or UDP port.
    pub conn_id: u32,
}

impl L2tpAddr {
    /// Build an address.
    pub fn new(ip: IpAddr, conn_id: u32) -> Self {
        L2tpAddr { ip, conn_id }
    }
}

/// Receive the next DGRAM of a channel into `buf`.
pub(crate) fn recv_dgram(chan: &mut Chan, buf: &mut [u8]) -> io::Result<(usize, L2tpAddr)> {
    loop {
        match chan.recv_pushed()? {
            None => return Err(io::Error::from_raw_os_error(nix::libc::EBADF)),
            Some(SockMsg::Dgram {
                addr,
                conn_id,
                payload,
            }) => {
                let n = payload.len().min(buf.len());
                buf[..n].copy_from_slice(&payload[..n]);
                return Ok((n, L2tpAddr { ip: addr, conn_id }));
            }
            // A send the daemon could not carry out, reported like a pending socket error.
            Some(SockMsg::Reply { errno, .. }) if errno != 0 => {
                return Err(io::Error::from_raw_os_error(errno))
            }
            Some(_) => continue,
        }
    }
}

/// An L2TP/IP socket served by ul2tpd.
#[derive(Debug)]
pub struct L2tpIpSocket {
    chan: Chan,
    local: Option<IpAddr>,
    conn_id: u32,
    peer: Option<L2tpAddr>,
}

impl L2tpIpSocket {
    /// `bind()`: receive control messages for `conn_id` (0 = the listener for SCCRQs,
    /// §8.4) sent to `local` (any local address if `None`; `None` is IPv4, pass
    /// `Some(Ipv6Addr::UNSPECIFIED.into())` for an IPv6 socket on any address).
    pub fn bind(
        client: &mut Client,
        local: Option<IpAddr>,
        conn_id: u32,
    ) -> Result<Self, ClientError> {
        Self::open(client, local, conn_id, None)
    }

    /// `bind()` then `connect()` in one request.
    pub fn bind_connect(
        client: &mut Client,
        local: Option<IpAddr>,
        conn_id: u32,
        peer: L2tpAddr,
    ) -> Result<Self, ClientError> {
        Self::open(client, local, conn_id, Some(peer))
    }

    fn open(
        client: &mut Client,
        local: Option<IpAddr>,
        conn_id: u32,
        peer: Option<L2tpAddr>,
    ) -> Result<Self, ClientError> {
        let mut attrs = Attrs {
            conn_id: Some(conn_id),
            ..Attrs::default()
        };
        match local {
            Some(IpAddr::V4(a)) => attrs.ip_saddr = Some(a),
            Some(IpAddr::V6(a)) => attrs.ip6_saddr = Some(a),
            None => {}
        }
        if let Some(p) = peer {
            if let Some(l) = local {
                if l.is_ipv4() != p.ip.is_ipv4() {
                    return Err(ClientError::Io(io::Error::from_raw_os_error(
                        Errno::EAFNOSUPPORT.number(),
                    )));
                }
            }
            match p.ip {
                IpAddr::V4(a) => attrs.ip_daddr = Some(a),
                IpAddr::V6(a) => attrs.ip6_daddr = Some(a),
            }
            attrs.peer_conn_id = Some(p.conn_id);
        }
        let (_, fds) = client.request_with_fds(Command::L2tpipSocket, attrs, false, &[])?;
        Ok(L2tpIpSocket {
            chan: Chan::new(one_fd(fds)?)?,
            local,
            conn_id,
            peer,
        })
    }

    /// `connect()`: messages from then on come only from `peer`, and [`send`](Self::send)
    /// goes to it. The daemon hands out a new connected descriptor for the same binding;
    /// the old one is closed first (it would conflict with the new binding, §8.2), so
    /// messages not yet received are lost, and if the daemon refuses the new descriptor
    /// this socket is left closed. Connect before registering a tunnel on the
    /// socket: closing the old descriptor deletes a tunnel registered on it (§8.7).
    pub fn connect(&mut self, client: &mut Client, peer: L2tpAddr) -> Result<(), ClientError> {
        let (local, conn_id) = (self.local, self.conn_id);
        // Replace our descriptor by a closed placeholder so the daemon sees EOF.
        let (placeholder, _other) = ul2tp_sys::seqpacket::pair()?;
        let old = std::mem::replace(&mut self.chan, Chan::new(placeholder)?);
        drop(old);
        // The daemon notices the close asynchronously; until then the binding is taken.
        let mut delay = Duration::from_millis(2);
        let mut tries = 0;
        loop {
            match Self::open(client, local, conn_id, Some(peer)) {
                Ok(s) => {
                    *self = s;
                    return Ok(());
                }
                Err(ClientError::Api(e)) if e.errno == Errno::EADDRINUSE && tries < 12 => {
                    tries += 1;
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_millis(200));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The bound local address (`None` = any) and connection id.
    pub fn local(&self) -> (Option<IpAddr>, u32) {
        (self.local, self.conn_id)
    }

    /// The connected peer, if any.
    pub fn peer(&self) -> Option<L2tpAddr> {
        self.peer
    }

    /// Receive one control message (without the 4 zero bytes, §8.4) and its source; the
    /// source's conn_id is 0 as the kernel reports it. Cut to `buf.len()` if longer. An
    /// earlier send the daemon could not carry out is reported here as its errno.
    pub fn recv_from(&mut self, buf: &mut [u8]) -> io::Result<(usize, L2tpAddr)> {
        recv_dgram(&mut self.chan, buf)
    }

    /// Send one control message (starting with the T/L/Ver word) to `dest`.
    pub fn send_to(&self, msg: &[u8], dest: L2tpAddr) -> io::Result<usize> {
        self.chan.send(&SockMsg::Dgram {
            addr: dest.ip,
            conn_id: dest.conn_id,
            payload: msg.to_vec(),
        })?;
        Ok(msg.len())
    }

    /// Send one control message to the connected peer (`EDESTADDRREQ` if not connected,
    /// §8.5).
    pub fn send(&self, msg: &[u8]) -> io::Result<usize> {
        let Some(peer) = self.peer else {
            return Err(io::Error::from_raw_os_error(Errno::EDESTADDRREQ.number()));
        };
        let unspecified = match peer.ip {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        self.send_to(msg, L2tpAddr::new(unspecified, peer.conn_id))
    }

    /// Make receives nonblocking (`WouldBlock`).
    pub fn set_nonblocking(&mut self, on: bool) -> io::Result<()> {
        self.chan.set_nonblocking(on)
    }
}

impl AsFd for L2tpIpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.chan.as_fd()
    }
}

impl AsRawFd for L2tpIpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.chan.as_fd().as_raw_fd()
    }
}

impl From<L2tpIpSocket> for OwnedFd {
    fn from(s: L2tpIpSocket) -> OwnedFd {
        s.chan.into_fd()
    }
}
