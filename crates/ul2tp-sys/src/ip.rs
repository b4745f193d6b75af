//! L2TPv3 over IP (protocol 115) tunnel sockets (RFC 3931 §4.1.1.1, docs/reference/kernel.md §8).
//!
//! Without the kernel's `l2tp_ip` module there is no `SOCK_DGRAM`/115 socket, so this uses
//! a raw socket (`SOCK_RAW`, protocol 115): the kernel builds the outer IP header on
//! transmit, and on receive delivers every protocol-115 packet whose addresses match the
//! socket's bound local address and connected peer. IPv4 raw sockets deliver the IP header
//! too; it is stripped using IHL (see `mmsg`). IPv6 raw sockets deliver the payload only.
//! What is sent and received is the L2TP payload starting with the 32-bit session id (0 for
//! control messages, RFC 3931 §4.1.1.2) — unlike a kernel L2TP/IP socket, which hides the
//! four zero bytes of control messages (§8.4, §8.5); the caller's classifier sees them.
//!
//! A raw socket sees every protocol-115 packet matching its addresses, so two connected
//! sockets with the same (local, remote) pair both receive each packet. The kernel looks a
//! data packet up once per namespace (docs/reference/kernel.md §5.3); to get the same, open one socket
//! per address pair (shared by its tunnels) or one unconnected socket per local address.
//!
//! Outer header without DF like the kernel (docs/reference/kernel.md §1.8): `IP_PMTUDISC_DONT`,
//! `IPV6_PMTUDISC_DONT`.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::mmsg::{self, RecvMeta};
use crate::os;

/// A nonblocking raw IP-protocol-115 socket registered with the tokio reactor.
#[derive(Debug)]
pub struct IpTunnelSocket {
    fd: AsyncFd<Socket>,
    local: IpAddr,
    remote: Option<IpAddr>,
}

impl IpTunnelSocket {
    fn make(local: IpAddr, remote: Option<IpAddr>) -> io::Result<Self> {
        tokio::runtime::Handle::try_current().map_err(|_| {
            io::Error::other("ul2tp-sys sockets must be created inside a tokio runtime")
        })?;
        if let Some(r) = remote {
            if r.is_ipv6() != local.is_ipv6() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "local and remote address families differ",
                ));
            }
        }
        let domain = if local.is_ipv6() {
            Domain::IPV6
        } else {
            Domain::IPV4
        };
        let s = Socket::new(
            domain,
            Type::RAW.nonblocking().cloexec(),
            Some(Protocol::from(os::IPPROTO_L2TP)),
        )?;
        if local.is_ipv6() {
            os::set_int(
                s.as_fd(),
                libc::IPPROTO_IPV6,
                libc::IPV6_MTU_DISCOVER,
                libc::IPV6_PMTUDISC_DONT,
            )?;
        } else {
            os::set_int(
                s.as_fd(),
                libc::IPPROTO_IP,
                libc::IP_MTU_DISCOVER,
                libc::IP_PMTUDISC_DONT,
            )?;
        }
        s.bind(&os::sa(local, 0).into())?;
        if let Some(r) = remote {
            s.connect(&os::sa(r, 0).into())?;
        }
        Ok(Self {
            fd: os::async_fd(s)?,
            local,
            remote,
        })
    }

    /// Open a tunnel socket bound to `local` and connected to `remote` (only packets from
    /// `remote` to `local` are received). Must be called inside a tokio runtime.
    pub fn open(local: IpAddr, remote: IpAddr) -> io::Result<Self> {
        Self::make(local, Some(remote))
    }

    /// Open an unconnected socket bound to `local` (unspecified ⇒ any) that receives
    /// protocol-115 packets from every source: the emulation of the kernel's conn-id-0
    /// listener (docs/reference/kernel.md §8.4); reply with [`send_to`](Self::send_to).
    pub fn bind(local: IpAddr) -> io::Result<Self> {
        Self::make(local, None)
    }

    /// [`bind`](Self::bind) for control messages only: a socket filter (classic BPF, run by
    /// the kernel) drops every packet whose L2TP payload does not start with session id 0,
    /// so the data packets of the tunnels on that address never reach this socket (they
    /// still reach the tunnels' own sockets). The control listener of dynamic L2TPv3/IP
    /// tunnels.
    pub fn bind_control(local: IpAddr) -> io::Result<Self> {
        let s = Self::make(local, None)?;
        s.fd.get_ref()
            .attach_filter(&control_filter(local.is_ipv6()))?;
        Ok(s)
    }

    /// Receive one packet's L2TP payload into `buf`; returns its length and source address.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, IpAddr)> {
        let v4 = !self.local.is_ipv6();
        let m = self
            .fd
            .async_io(Interest::READABLE, |s| mmsg::recv_one(s.as_fd(), buf, v4))
            .await?;
        Ok((m.len, m.addr.map_or(self.local, |a| a.ip())))
    }

    /// [`recv`](Self::recv) without waiting.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<(usize, IpAddr)> {
        let v4 = !self.local.is_ipv6();
        let m = self
            .fd
            .try_io(Interest::READABLE, |s| mmsg::recv_one(s.as_fd(), buf, v4))?;
        Ok((m.len, m.addr.map_or(self.local, |a| a.ip())))
    }

    /// Receive up to `BATCH_MAX` packets with one `recvmmsg` (see
    /// [`UdpTunnelSocket::recv_batch`](crate::udp::UdpTunnelSocket::recv_batch)); a
    /// malformed IPv4 packet yields `meta[i].len == 0`. Addresses carry port 0.
    pub async fn recv_batch<B: AsMut<[u8]>>(
        &self,
        bufs: &mut [B],
        meta: &mut [RecvMeta],
    ) -> io::Result<usize> {
        let v4 = !self.local.is_ipv6();
        self.fd
            .async_io(Interest::READABLE, |s| {
                mmsg::recv_batch(s.as_fd(), bufs, meta, v4)
            })
            .await
    }

    /// Send one L2TP payload (starting with the session id) to the connected peer.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.fd
            .async_io(Interest::WRITABLE, |s| mmsg::send_one(s.as_fd(), buf, None))
            .await
    }

    /// Send one L2TP payload to `dest`.
    pub async fn send_to(&self, buf: &[u8], dest: IpAddr) -> io::Result<usize> {
        let d = os::sa(dest, 0);
        self.fd
            .async_io(Interest::WRITABLE, |s| {
                mmsg::send_one(s.as_fd(), buf, Some(&d))
            })
            .await
    }

    /// [`send`](Self::send) without waiting.
    pub fn try_send(&self, buf: &[u8]) -> io::Result<usize> {
        self.fd
            .try_io(Interest::WRITABLE, |s| mmsg::send_one(s.as_fd(), buf, None))
    }

    /// Send up to `BATCH_MAX` payloads to the connected peer with one `sendmmsg`; returns how
    /// many were sent from the front (error only if the first failed).
    pub async fn send_batch<B: AsRef<[u8]>>(&self, bufs: &[B]) -> io::Result<usize> {
        self.fd
            .async_io(Interest::WRITABLE, |s| {
                mmsg::send_batch(s.as_fd(), bufs, None)
            })
            .await
    }

    /// Path MTU towards the connected peer (`IP_MTU` / `IPV6_MTU`, docs/reference/kernel.md §6.2).
    pub fn path_mtu(&self) -> io::Result<u32> {
        let fd = self.fd.get_ref().as_fd();
        let v = if self.local.is_ipv6() {
            os::get_int(fd, libc::IPPROTO_IPV6, libc::IPV6_MTU)?
        } else {
            os::get_int(fd, libc::IPPROTO_IP, libc::IP_MTU)?
        };
        u32::try_from(v).map_err(|_| io::Error::other("negative MTU"))
    }

    /// Queue ICMP errors on the socket's error queue (`IP_RECVERR` / `IPV6_RECVERR`,
    /// [`crate::errqueue`]); read them with [`recv_error`](Self::recv_error).
    pub fn set_recv_errors(&self) -> io::Result<()> {
        crate::errqueue::enable(self.fd.get_ref().as_fd(), self.local.is_ipv6())
    }

    /// Wait for the socket to report an error (`EPOLLERR`) and read one entry of its error
    /// queue (`MSG_ERRQUEUE`).
    pub async fn recv_error(&self) -> io::Result<crate::errqueue::SockError> {
        self.fd
            .async_io(Interest::ERROR, |s| crate::errqueue::recv(s.as_fd()))
            .await
    }

    /// The bound local address.
    pub fn local_addr(&self) -> io::Result<IpAddr> {
        Ok(self.local)
    }

    /// The connected peer (`ENOTCONN` for a [`bind`](Self::bind) socket). Raw sockets
    /// have no port, so the kernel's getpeername fails; the address is remembered here.
    pub fn peer_addr(&self) -> io::Result<IpAddr> {
        self.remote.ok_or_else(|| os::errno(libc::ENOTCONN))
    }

    /// Set the receive buffer (`SO_RCVBUFFORCE`, else `SO_RCVBUF`); returns the kernel's
    /// `SO_RCVBUF` afterwards.
    pub fn set_recv_buffer(&self, bytes: usize) -> io::Result<usize> {
        os::set_recv_buffer(self.fd.get_ref().as_fd(), bytes)
    }

    /// Whether the socket is IPv6.
    pub fn is_ipv6(&self) -> bool {
        self.local.is_ipv6()
    }

    /// Whether the outer header is sent without DF.
    pub fn df_disabled(&self) -> io::Result<bool> {
        let fd = self.fd.get_ref().as_fd();
        if self.local.is_ipv6() {
            Ok(
                os::get_int(fd, libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER)?
                    == libc::IPV6_PMTUDISC_DONT,
            )
        } else {
            Ok(os::get_int(fd, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER)? == libc::IP_PMTUDISC_DONT)
        }
    }

    /// Adopt a bound raw protocol-115 socket handed over by an application (managed
    /// tunnel); `remote` is the peer it was connected to (raw sockets cannot report it).
    pub fn from_fd(fd: OwnedFd, remote: Option<IpAddr>) -> io::Result<Self> {
        tokio::runtime::Handle::try_current().map_err(|_| {
            io::Error::other("ul2tp-sys sockets must be created inside a tokio runtime")
        })?;
        let local = os::sock_name_raw(fd.as_raw_fd(), false)?
            .map(|a: SocketAddr| a.ip())
            .ok_or_else(|| os::errno(libc::EPROTONOSUPPORT))?;
        let s = Socket::from(fd);
        s.set_nonblocking(true)?;
        Ok(Self {
            fd: os::async_fd(s)?,
            local,
            remote,
        })
    }
}

/// The classic BPF program of [`IpTunnelSocket::bind_control`]: accept a packet whose first
/// 32-bit word of L2TP payload is 0 (and that is long enough to have one), drop the rest. An
/// IPv4 raw socket's filter sees the IP header first (its length from the IHL field, `ldxb
/// 4*([0]&0xf)`); an IPv6 raw socket's sees the payload alone.
fn control_filter(v6: bool) -> Vec<socket2::SockFilter> {
    use socket2::SockFilter;
    // Opcodes of linux/filter.h.
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const LD_W_IND: u16 = 0x40; // BPF_LD | BPF_W | BPF_IND
    const LDX_B_MSH: u16 = 0xb1; // BPF_LDX | BPF_B | BPF_MSH
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
                             // A load beyond the packet ends the program with 0: short packets are dropped.
    let mut prog = Vec::with_capacity(5);
    if v6 {
        prog.push(SockFilter::new(LD_W_ABS, 0, 0, 0));
    } else {
        prog.push(SockFilter::new(LDX_B_MSH, 0, 0, 0));
        prog.push(SockFilter::new(LD_W_IND, 0, 0, 0));
    }
    prog.push(SockFilter::new(JEQ_K, 0, 1, 0));
    prog.push(SockFilter::new(RET_K, 0, 0, 0x0004_0000)); // whole packet
    prog.push(SockFilter::new(RET_K, 0, 0, 0));
    prog
}

impl AsFd for IpTunnelSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.get_ref().as_fd()
    }
}

impl AsRawFd for IpTunnelSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.get_ref().as_raw_fd()
    }
}
