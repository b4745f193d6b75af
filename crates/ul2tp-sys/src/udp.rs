//! UDP tunnel sockets (L2TPv2, L2TPv3 over UDP), the userspace twin of the socket the kernel
//! creates for an unmanaged tunnel (docs/reference/kernel.md §5.5) and of the socket a managed tunnel's
//! control plane owns (§5.6).
//!
//! Set-up mirrors the kernel: bound to the local address (port 0 ⇒ ephemeral), connected
//! to the peer so only its datagrams arrive, IPv4 checksum off unless asked for
//! (`SO_NO_CHECK`), IPv6 zero-checksum options (`UDP_NO_CHECK6_TX/RX`), and the outer
//! header sent without DF / fragmented by the sender (`IP_PMTUDISC_DONT`,
//! `IPV6_PMTUDISC_DONT`) like the kernel's "ignore DF" (docs/reference/kernel.md §1.8).

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;

use crate::mmsg::{self, RecvMeta};
use crate::os;

/// Checksum options of a UDP tunnel socket (docs/reference/kernel.md §1.8, §5.5); `Default` is the
/// kernel's default for a tunnel created without any checksum attribute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpOptions {
    /// IPv4: compute the UDP checksum on transmit (`L2TP_ATTR_UDP_CSUM`); off ⇒ `SO_NO_CHECK`.
    pub csum_tx_v4: bool,
    /// IPv6: send a zero UDP checksum (`L2TP_ATTR_UDP_ZERO_CSUM6_TX` ⇒ `UDP_NO_CHECK6_TX`).
    pub zero_csum6_tx: bool,
    /// IPv6: accept a zero UDP checksum (`L2TP_ATTR_UDP_ZERO_CSUM6_RX` ⇒ `UDP_NO_CHECK6_RX`).
    pub zero_csum6_rx: bool,
}

/// A nonblocking UDP socket registered with the tokio reactor, connected (tunnel) or not
/// (listening control socket).
#[derive(Debug)]
pub struct UdpTunnelSocket {
    sock: tokio::net::UdpSocket,
}

fn need_runtime() -> io::Result<()> {
    tokio::runtime::Handle::try_current()
        .map(drop)
        .map_err(|_| io::Error::other("ul2tp-sys sockets must be created inside a tokio runtime"))
}

fn configure(s: &Socket, is_v6: bool, opts: &UdpOptions, reuse_port: bool) -> io::Result<()> {
    let fd = s.as_fd();
    s.set_reuse_address(true)?;
    if reuse_port {
        s.set_reuse_port(true)?;
    }
    if is_v6 {
        // docs/reference/kernel.md §1.8: IPv6 oversize packets are fragmented by the sender.
        os::set_int(
            fd,
            libc::IPPROTO_IPV6,
            libc::IPV6_MTU_DISCOVER,
            libc::IPV6_PMTUDISC_DONT,
        )?;
        // A v4-mapped peer is reached over the IPv4 path, which has its own DF setting
        // (docs/reference/kernel.md §1.8); a v6-only socket may refuse the option, which is harmless.
        let _ = os::set_int(
            fd,
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            libc::IP_PMTUDISC_DONT,
        );
        os::set_int(
            fd,
            libc::IPPROTO_UDP,
            os::UDP_NO_CHECK6_TX,
            i32::from(opts.zero_csum6_tx),
        )?;
        os::set_int(
            fd,
            libc::IPPROTO_UDP,
            os::UDP_NO_CHECK6_RX,
            i32::from(opts.zero_csum6_rx),
        )?;
    } else {
        // docs/reference/kernel.md §1.8: outer IPv4 header without DF.
        os::set_int(
            fd,
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            libc::IP_PMTUDISC_DONT,
        )?;
        // docs/reference/kernel.md §5.5: tx checksum iff UDP_CSUM was present.
        os::set_int(
            fd,
            libc::SOL_SOCKET,
            os::SO_NO_CHECK,
            i32::from(!opts.csum_tx_v4),
        )?;
    }
    Ok(())
}

fn make(
    local: SocketAddr,
    remote: Option<SocketAddr>,
    opts: UdpOptions,
    reuse_port: bool,
) -> io::Result<UdpTunnelSocket> {
    need_runtime()?;
    let domain = Domain::for_address(local);
    let s = Socket::new(
        domain,
        Type::DGRAM.nonblocking().cloexec(),
        Some(Protocol::UDP),
    )?;
    configure(&s, local.is_ipv6(), &opts, reuse_port)?;
    s.bind(&local.into())?;
    if let Some(r) = remote {
        s.connect(&r.into())?;
    }
    let std_sock: std::net::UdpSocket = s.into();
    Ok(UdpTunnelSocket {
        sock: tokio::net::UdpSocket::from_std(std_sock)?,
    })
}

impl UdpTunnelSocket {
    /// Open a tunnel socket bound to `local` (port 0 ⇒ ephemeral) and connected to `remote`.
    /// Must be called inside a tokio runtime.
    pub fn open(local: SocketAddr, remote: SocketAddr, opts: UdpOptions) -> io::Result<Self> {
        make(local, Some(remote), opts, false)
    }

    /// Like [`open`](Self::open) but with `SO_REUSEPORT`, for one socket per data-path worker.
    pub fn open_reuse_port(
        local: SocketAddr,
        remote: SocketAddr,
        opts: UdpOptions,
    ) -> io::Result<Self> {
        make(local, Some(remote), opts, true)
    }

    /// Open an unconnected socket bound to `local` (e.g. the control listener on UDP 1701);
    /// use [`recv_from`](Self::recv_from) / [`send_to`](Self::send_to).
    pub fn bind(local: SocketAddr, opts: UdpOptions) -> io::Result<Self> {
        make(local, None, opts, false)
    }

    /// Like [`bind`](Self::bind) but with `SO_REUSEPORT`.
    pub fn bind_reuse_port(local: SocketAddr, opts: UdpOptions) -> io::Result<Self> {
        make(local, None, opts, true)
    }

    /// Adopt an existing UDP socket (for example one handed over by an application for a
    /// managed tunnel, docs/reference/kernel.md §5.6); it is made nonblocking and registered with tokio.
    pub fn from_fd(fd: OwnedFd) -> io::Result<Self> {
        need_runtime()?;
        let s = Socket::from(fd);
        s.set_nonblocking(true)?;
        let std_sock: std::net::UdpSocket = s.into();
        Ok(Self {
            sock: tokio::net::UdpSocket::from_std(std_sock)?,
        })
    }

    /// Connect (or re-connect) to `remote`, e.g. once the peer's port is known.
    pub async fn connect(&self, remote: SocketAddr) -> io::Result<()> {
        self.sock.connect(remote).await
    }

    /// Receive one datagram into `buf`; returns its length (cut to `buf.len()`).
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.recv(buf).await
    }

    /// Receive one datagram and its source address.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.sock.recv_from(buf).await
    }

    /// Send one datagram to the connected peer.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.sock.send(buf).await
    }

    /// Send one datagram to `dest`.
    pub async fn send_to(&self, buf: &[u8], dest: SocketAddr) -> io::Result<usize> {
        self.sock.send_to(buf, dest).await
    }

    /// Receive without waiting (`WouldBlock` if nothing is queued).
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.try_recv(buf)
    }

    /// Send without waiting (`WouldBlock` if the send buffer is full).
    pub fn try_send(&self, buf: &[u8]) -> io::Result<usize> {
        self.sock.try_send(buf)
    }

    /// Wait until at least one datagram is available, then receive up to
    /// `min(bufs.len(), meta.len(), BATCH_MAX)` of them with one `recvmmsg`; returns how many.
    /// `meta[i]` tells the length, source and truncation of `bufs[i]`.
    pub async fn recv_batch<B: AsMut<[u8]>>(
        &self,
        bufs: &mut [B],
        meta: &mut [RecvMeta],
    ) -> io::Result<usize> {
        let fd = self.sock.as_fd();
        self.sock
            .async_io(Interest::READABLE, || {
                mmsg::recv_batch(fd, bufs, meta, false)
            })
            .await
    }

    /// [`recv_batch`](Self::recv_batch) without waiting (`WouldBlock` if nothing is queued).
    pub fn try_recv_batch<B: AsMut<[u8]>>(
        &self,
        bufs: &mut [B],
        meta: &mut [RecvMeta],
    ) -> io::Result<usize> {
        let fd = self.sock.as_fd();
        self.sock.try_io(Interest::READABLE, || {
            mmsg::recv_batch(fd, bufs, meta, false)
        })
    }

    /// Send up to `BATCH_MAX` datagrams to the connected peer with one `sendmmsg`, waiting
    /// for buffer space first; returns how many were sent from the front (≥ 1 unless
    /// `bufs` is empty). An error means the first datagram failed: skip it and retry the rest.
    pub async fn send_batch<B: AsRef<[u8]>>(&self, bufs: &[B]) -> io::Result<usize> {
        let fd = self.sock.as_fd();
        self.sock
            .async_io(Interest::WRITABLE, || mmsg::send_batch(fd, bufs, None))
            .await
    }

    /// Like [`send_batch`](Self::send_batch) with a destination per datagram (`dests[i]`).
    pub async fn send_batch_to<B: AsRef<[u8]>>(
        &self,
        bufs: &[B],
        dests: &[SocketAddr],
    ) -> io::Result<usize> {
        let fd = self.sock.as_fd();
        self.sock
            .async_io(Interest::WRITABLE, || {
                mmsg::send_batch(fd, bufs, Some(dests))
            })
            .await
    }

    /// [`send_batch`](Self::send_batch) without waiting.
    pub fn try_send_batch<B: AsRef<[u8]>>(&self, bufs: &[B]) -> io::Result<usize> {
        let fd = self.sock.as_fd();
        self.sock
            .try_io(Interest::WRITABLE, || mmsg::send_batch(fd, bufs, None))
    }

    /// Send `buf` to the connected peer as consecutive datagrams of `segment_size` bytes
    /// (the last may be shorter) with one system call, segmented by the kernel (UDP GSO).
    /// At most 64 segments and 65507 bytes in total; returns the bytes accepted.
    ///
    /// The kernel refuses GSO on a socket that sends without checksums (`EINVAL`; the
    /// IPv4 default, docs/reference/kernel.md §5.5, and `zero_csum6_tx`); then the segments go out with
    /// one `sendmmsg` instead, so the call works either way.
    pub async fn send_segmented(&self, buf: &[u8], segment_size: u16) -> io::Result<usize> {
        if segment_size == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "segment size 0",
            ));
        }
        let fd = self.sock.as_fd();
        match self
            .sock
            .async_io(Interest::WRITABLE, || {
                mmsg::send_segmented(fd, buf, segment_size)
            })
            .await
        {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                let segs: Vec<&[u8]> = buf.chunks(usize::from(segment_size)).collect();
                if segs.len() > mmsg::BATCH_MAX {
                    return Err(e);
                }
                let mut rest = &segs[..];
                let mut bytes = 0;
                while !rest.is_empty() {
                    let n = self.send_batch(rest).await?;
                    bytes += rest[..n].iter().map(|s| s.len()).sum::<usize>();
                    rest = &rest[n..];
                }
                Ok(bytes)
            }
            r => r,
        }
    }

    /// Set the receive buffer (`SO_RCVBUFFORCE`, else `SO_RCVBUF`); returns the kernel's
    /// `SO_RCVBUF` afterwards.
    pub fn set_recv_buffer(&self, bytes: usize) -> io::Result<usize> {
        os::set_recv_buffer(self.sock.as_fd(), bytes)
    }

    /// Turn UDP GRO delivery on or off (`UDP_GRO`). While on, one receive may return
    /// several same-sized datagrams back to back: use [`recv_gro`](Self::recv_gro).
    pub fn set_gro(&self, on: bool) -> io::Result<()> {
        os::set_int(
            self.sock.as_fd(),
            libc::IPPROTO_UDP,
            mmsg::UDP_GRO,
            i32::from(on),
        )
    }

    /// Receive one (possibly coalesced) buffer; returns its length and, when several
    /// datagrams were coalesced, their size (split with [`GroSegments`]). Size `buf` for
    /// 65535 bytes when GRO is on.
    pub async fn recv_gro(&self, buf: &mut [u8]) -> io::Result<(usize, Option<u16>)> {
        let fd = self.sock.as_fd();
        let (n, seg, truncated) = self
            .sock
            .async_io(Interest::READABLE, || mmsg::recv_gro(fd, buf))
            .await?;
        if truncated {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "coalesced datagrams cut by a short buffer",
            ));
        }
        Ok((n, seg))
    }

    /// Path MTU towards the connected peer (`IP_MTU` / `IPV6_MTU`), for the l2tpeth MTU
    /// (docs/reference/kernel.md §6.2). Fails with `ENOTCONN` on an unconnected socket.
    pub fn path_mtu(&self) -> io::Result<u32> {
        let fd = self.sock.as_fd();
        let v = if self.is_ipv6() {
            os::get_int(fd, libc::IPPROTO_IPV6, libc::IPV6_MTU)?
        } else {
            os::get_int(fd, libc::IPPROTO_IP, libc::IP_MTU)?
        };
        u32::try_from(v).map_err(|_| io::Error::other("negative MTU"))
    }

    /// Queue ICMP errors on the socket's error queue (`IP_RECVERR` / `IPV6_RECVERR`,
    /// [`crate::errqueue`]); read them with [`recv_error`](Self::recv_error).
    pub fn set_recv_errors(&self) -> io::Result<()> {
        crate::errqueue::enable(self.sock.as_fd(), self.is_ipv6())
    }

    /// Wait for the socket to report an error (`EPOLLERR`) and read one entry of its error
    /// queue (`MSG_ERRQUEUE`).
    pub async fn recv_error(&self) -> io::Result<crate::errqueue::SockError> {
        let fd = self.sock.as_fd();
        self.sock
            .async_io(Interest::ERROR, || crate::errqueue::recv(fd))
            .await
    }

    /// Local address (with the ephemeral port resolved).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    /// Connected peer address (`ENOTCONN` if unconnected).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock.peer_addr()
    }

    /// Whether the socket is IPv6.
    pub fn is_ipv6(&self) -> bool {
        os::get_int(self.sock.as_fd(), libc::SOL_SOCKET, os::SO_DOMAIN)
            .is_ok_and(|d| d == libc::AF_INET6)
    }

    /// The checksum options as the kernel reports them back (`getsockopt`), for checks and
    /// diagnostics; options of the other address family read as `false`.
    pub fn checksum_options(&self) -> io::Result<UdpOptions> {
        let fd = self.sock.as_fd();
        if self.is_ipv6() {
            Ok(UdpOptions {
                csum_tx_v4: false,
                zero_csum6_tx: os::get_int(fd, libc::IPPROTO_UDP, os::UDP_NO_CHECK6_TX)? != 0,
                zero_csum6_rx: os::get_int(fd, libc::IPPROTO_UDP, os::UDP_NO_CHECK6_RX)? != 0,
            })
        } else {
            Ok(UdpOptions {
                csum_tx_v4: os::get_int(fd, libc::SOL_SOCKET, os::SO_NO_CHECK)? == 0,
                zero_csum6_tx: false,
                zero_csum6_rx: false,
            })
        }
    }

    /// Whether the outer header is sent without DF (`IP(V6)_MTU_DISCOVER` is `PMTUDISC_DONT`).
    pub fn df_disabled(&self) -> io::Result<bool> {
        let fd = self.sock.as_fd();
        if self.is_ipv6() {
            Ok(
                os::get_int(fd, libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER)?
                    == libc::IPV6_PMTUDISC_DONT,
            )
        } else {
            Ok(os::get_int(fd, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER)? == libc::IP_PMTUDISC_DONT)
        }
    }

    /// The tokio socket, for anything not wrapped here.
    pub fn as_tokio(&self) -> &tokio::net::UdpSocket {
        &self.sock
    }
}

impl AsFd for UdpTunnelSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl AsRawFd for UdpTunnelSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

/// The datagrams in a buffer returned by [`UdpTunnelSocket::recv_gro`].
#[derive(Debug, Clone)]
pub struct GroSegments<'a> {
    rest: &'a [u8],
    size: usize,
}

impl<'a> GroSegments<'a> {
    /// Split `buf` into datagrams of `segment` bytes (the last may be shorter); `None`
    /// means `buf` is one datagram.
    pub fn new(buf: &'a [u8], segment: Option<u16>) -> Self {
        let size = segment.map_or(buf.len(), usize::from).max(1);
        Self { rest: buf, size }
    }
}

impl<'a> Iterator for GroSegments<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        let (head, tail) = self.rest.split_at(self.size.min(self.rest.len()));
        self.rest = tail;
        Some(head)
    }
}
