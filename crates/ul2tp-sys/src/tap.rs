//! TAP and TUN devices from `/dev/net/tun` (`TUNSETIFF`): the userspace stand-in for the
//! kernel's l2tpeth netdev (docs/reference/kernel.md §6.1) and, for PPP, the pppN unit.
//!
//! * Name: an explicit name, or a template with one `%d` (`"l2tpeth%d"`, `"ppp%d"`) for
//!   which the tun driver picks the lowest free N, exactly like the kernel's
//!   `dev_alloc_name` for l2tpeth (the driver expands `%d` itself). An explicit name that is
//!   already taken fails with `EEXIST` (io kind `AlreadyExists`), like `register_netdev`.
//! * `IFF_NO_PI`: reads and writes are whole frames with no packet-information prefix.
//! * The device is not made persistent: it disappears when the [`Tap`] / [`Tun`] is dropped
//!   (l2tpeth disappears with its session, §6.3). It is left down, and a TAP gets the tun
//!   driver's random MAC, as l2tpeth does.
//! * Link configuration (MTU, up/down) goes through [`crate::link`] by name.
//! * A TAP is opened with `IFF_VNET_HDR`: every read and write through the tun fd starts with
//!   a [`VNET_HDR_LEN`]-byte `virtio_net_hdr`. The frame API ([`Tap::recv`], [`Tap::send`])
//!   hides it (reads drop it, writes prepend a zeroed one), so it behaves exactly like a plain
//!   TAP as long as no offload is enabled. [`Tap::set_offload`] (`TUNSETOFFLOAD`) lets the
//!   kernel hand over checksum-less and GSO super-frames, which the `*_vnet` calls expose
//!   together with their header. A TUN can be opened the same way ([`Tun::create_vnet`],
//!   the pppN of a PPP session with offloads); its frames are IP packets.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::{link, os};

/// Default name template of Ethernet pseudowire devices (docs/reference/kernel.md §6.1).
pub const L2TPETH_TEMPLATE: &str = "l2tpeth%d";
/// Default name template of PPP units.
pub const PPP_TEMPLATE: &str = "ppp%d";

/// Length of the `virtio_net_hdr` in front of every frame on a TAP fd (the tun default
/// `TUNSETVNETHDRSZ`).
pub const VNET_HDR_LEN: usize = 10;
/// `TUN_F_CSUM`: the reader completes checksums (frames may carry `NEEDS_CSUM`).
pub const TUN_F_CSUM: u32 = 0x01;
/// `TUN_F_TSO4`: the reader segments TCP/IPv4 GSO frames.
pub const TUN_F_TSO4: u32 = 0x02;
/// `TUN_F_TSO6`: the reader segments TCP/IPv6 GSO frames.
pub const TUN_F_TSO6: u32 = 0x04;
/// `TUN_F_TSO_ECN`: TSO frames may have the ECN (CWR) bit set.
pub const TUN_F_TSO_ECN: u32 = 0x08;

/// An open tun-driver queue plus the device's resolved name and index.
#[derive(Debug)]
struct Dev {
    fd: AsyncFd<OwnedFd>,
    name: String,
    ifindex: u32,
    /// Opened with `IFF_VNET_HDR`.
    vnet: bool,
}

/// Read a frame, dropping the vnet header in front when there is one.
fn read_frame(fd: &OwnedFd, vnet: bool, buf: &mut [u8]) -> io::Result<usize> {
    if !vnet {
        return read_fd(fd, buf);
    }
    let mut hdr = [0u8; VNET_HDR_LEN];
    let iov = [
        libc::iovec {
            iov_base: hdr.as_mut_ptr().cast(),
            iov_len: hdr.len(),
        },
        libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        },
    ];
    // SAFETY: both iovecs point at live writable buffers of the given lengths.
    let n = os::cvt_size(unsafe { libc::readv(fd.as_raw_fd(), iov.as_ptr(), 2) })?;
    n.checked_sub(VNET_HDR_LEN)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "short vnet header"))
}

/// Write a frame, prepending a zeroed vnet header (no offload) when the fd expects one.
fn write_frame(fd: &OwnedFd, vnet: bool, frame: &[u8]) -> io::Result<usize> {
    if !vnet {
        return write_fd(fd, frame);
    }
    let hdr = [0u8; VNET_HDR_LEN];
    let iov = [
        libc::iovec {
            iov_base: hdr.as_ptr() as *mut libc::c_void,
            iov_len: hdr.len(),
        },
        libc::iovec {
            iov_base: frame.as_ptr() as *mut libc::c_void,
            iov_len: frame.len(),
        },
    ];
    // SAFETY: both iovecs point at live buffers of the given lengths; writev only reads them.
    let n = os::cvt_size(unsafe { libc::writev(fd.as_raw_fd(), iov.as_ptr(), 2) })?;
    Ok(n.saturating_sub(VNET_HDR_LEN))
}

fn read_fd(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: buf is a live writable buffer of buf.len() bytes.
    os::cvt_size(unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) })
}

fn write_fd(fd: &OwnedFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: buf is a live readable buffer of buf.len() bytes.
    os::cvt_size(unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) })
}

impl Dev {
    fn create(name: Option<&str>, template: &str, flags: libc::c_int) -> io::Result<Self> {
        tokio::runtime::Handle::try_current().map_err(|_| {
            io::Error::other("ul2tp-sys devices must be created inside a tokio runtime")
        })?;
        let wanted = name.unwrap_or(template);
        if wanted.contains('/')
            || wanted.chars().any(char::is_whitespace)
            || wanted == "."
            || wanted == ".."
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid interface name {wanted:?}"),
            ));
        }
        let mut req = os::ifreq(wanted)?;
        // An explicit name must be free: TUNSETIFF would otherwise attach to an existing
        // persistent tun device of that name instead of failing.
        if !wanted.contains('%') && link::exists(wanted) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("interface {wanted} exists"),
            ));
        }
        let fd = Self::attach(&mut req, flags).map_err(|e| {
            // Lost a race with another creator of the same explicit name.
            if e.raw_os_error() == Some(libc::EBUSY) && !wanted.contains('%') {
                io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("interface {wanted} exists"),
                )
            } else {
                e
            }
        })?;
        let name = os::ifreq_name(&req);
        let ifindex = link::ifindex(&name)?;
        Ok(Self {
            fd: os::async_fd(fd)?,
            name,
            ifindex,
            vnet: flags & libc::IFF_VNET_HDR != 0,
        })
    }

    /// Open `/dev/net/tun` and `TUNSETIFF` with `req`'s name; the kernel writes the
    /// resolved name back into `req`.
    fn attach(req: &mut libc::ifreq, flags: libc::c_int) -> io::Result<OwnedFd> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")?;
        let fd = OwnedFd::from(file);
        req.ifr_ifru.ifru_flags = (flags | libc::IFF_NO_PI) as libc::c_short;
        os::ioctl_ifreq(fd.as_fd(), libc::TUNSETIFF as libc::c_ulong, req)?;
        Ok(fd)
    }

    /// Create a multi-queue device and attach `queues` queues to it (all or nothing).
    fn create_multi_queue(
        name: Option<&str>,
        template: &str,
        flags: libc::c_int,
        queues: usize,
    ) -> io::Result<Vec<Self>> {
        if queues == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "at least one queue",
            ));
        }
        let flags = flags | libc::IFF_MULTI_QUEUE;
        let first = Self::create(name, template, flags)?;
        let mut all = Vec::with_capacity(queues);
        for _ in 1..queues {
            let mut req = os::ifreq(&first.name)?;
            let fd = Self::attach(&mut req, flags)?;
            all.push(Self {
                fd: os::async_fd(fd)?,
                name: first.name.clone(),
                ifindex: first.ifindex,
                vnet: first.vnet,
            });
        }
        all.insert(0, first);
        Ok(all)
    }

    async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let vnet = self.vnet;
        self.fd
            .async_io(Interest::READABLE, |fd| read_frame(fd, vnet, buf))
            .await
    }

    fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let vnet = self.vnet;
        self.fd
            .try_io(Interest::READABLE, |fd| read_frame(fd, vnet, buf))
    }

    async fn send(&self, frame: &[u8]) -> io::Result<usize> {
        let vnet = self.vnet;
        self.fd
            .async_io(Interest::WRITABLE, |fd| write_frame(fd, vnet, frame))
            .await
    }

    fn try_send(&self, frame: &[u8]) -> io::Result<usize> {
        // A tun fd is always writable (the driver drops on a full queue), so write directly
        // instead of consulting tokio's readiness, which is only set after a first poll.
        write_frame(self.fd.get_ref(), self.vnet, frame)
    }

    async fn recv_raw(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd
            .async_io(Interest::READABLE, |fd| read_fd(fd, buf))
            .await
    }

    fn try_recv_raw(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd.try_io(Interest::READABLE, |fd| read_fd(fd, buf))
    }

    fn try_send_raw(&self, buf: &[u8]) -> io::Result<usize> {
        write_fd(self.fd.get_ref(), buf)
    }

    fn set_offload(&self, flags: u32) -> io::Result<()> {
        // SAFETY: TUNSETOFFLOAD takes its argument by value (an unsigned int), no pointer.
        os::cvt(unsafe {
            libc::ioctl(
                self.fd.get_ref().as_raw_fd(),
                libc::TUNSETOFFLOAD as _,
                libc::c_ulong::from(flags),
            )
        })?;
        Ok(())
    }

    fn set_carrier(&self, on: bool) -> io::Result<()> {
        let v: libc::c_int = on.into();
        // SAFETY: TUNSETCARRIER reads one int through the pointer, which points at `v`, live
        // for the call.
        os::cvt(unsafe {
            libc::ioctl(
                self.fd.get_ref().as_raw_fd(),
                libc::TUNSETCARRIER as _,
                &v as *const libc::c_int,
            )
        })?;
        Ok(())
    }
}

macro_rules! device_common {
    ($t:ident) => {
        impl $t {
            /// The device's resolved name (e.g. `l2tpeth0`).
            pub fn name(&self) -> &str {
                &self.dev.name
            }

            /// The device's interface index.
            pub fn ifindex(&self) -> u32 {
                self.dev.ifindex
            }

            /// Read one whole frame (waits until one is queued).
            pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
                self.dev.recv(buf).await
            }

            /// Wait until a frame is queued (without reading it), e.g. to allocate the
            /// receive buffer only for a device that has something to read.
            pub async fn readable(&self) -> io::Result<()> {
                self.dev.fd.readable().await.map(|mut g| g.retain_ready())
            }

            /// Read one frame without waiting (`WouldBlock` if none is queued).
            pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
                self.dev.try_recv(buf)
            }

            /// Inject one whole frame as if received on the device.
            pub async fn send(&self, frame: &[u8]) -> io::Result<usize> {
                self.dev.send(frame).await
            }

            /// Inject one frame without waiting; the driver never blocks a writer.
            pub fn try_send(&self, frame: &[u8]) -> io::Result<usize> {
                self.dev.try_send(frame)
            }

            /// Set the device MTU (`SIOCSIFMTU`).
            pub fn set_mtu(&self, mtu: u32) -> io::Result<()> {
                link::set_mtu(&self.dev.name, mtu)
            }

            /// Current device MTU.
            pub fn mtu(&self) -> io::Result<u32> {
                link::mtu(&self.dev.name)
            }

            /// Bring the device up or down.
            pub fn set_up(&self, up: bool) -> io::Result<()> {
                link::set_up(&self.dev.name, up)
            }

            /// Whether the device is up.
            pub fn is_up(&self) -> io::Result<bool> {
                link::is_up(&self.dev.name)
            }

            /// Switch the carrier on or off (`TUNSETCARRIER`, Linux 5.0): off, the device's
            /// operational state is down (`NO-CARRIER`) and the stack sends nothing through
            /// it, whatever its administrative state.
            pub fn set_carrier(&self, on: bool) -> io::Result<()> {
                self.dev.set_carrier(on)
            }
        }

        impl AsFd for $t {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.dev.fd.get_ref().as_fd()
            }
        }

        impl AsRawFd for $t {
            fn as_raw_fd(&self) -> RawFd {
                self.dev.fd.get_ref().as_raw_fd()
            }
        }
    };
}

/// The offload calls of a device opened with `IFF_VNET_HDR` (every TAP; a TUN from
/// [`Tun::create_vnet`]).
macro_rules! vnet_common {
    ($t:ident) => {
        impl $t {
            /// Tell the driver which offloads this reader handles (`TUNSETOFFLOAD` with
            /// `TUN_F_*` bits, 0 for none). With [`TUN_F_CSUM`] frames may arrive with the
            /// checksum left to do, with [`TUN_F_TSO4`] / [`TUN_F_TSO6`] as TCP super-frames
            /// of up to 64 KB; read those with [`recv_vnet`](Self::recv_vnet), which keeps
            /// the header that describes them.
            pub fn set_offload(&self, flags: u32) -> io::Result<()> {
                self.dev.set_offload(flags)
            }

            /// Read one frame with its `virtio_net_hdr`: `buf[..VNET_HDR_LEN]` is the header,
            /// the frame follows; returns the total length.
            pub async fn recv_vnet(&self, buf: &mut [u8]) -> io::Result<usize> {
                self.dev.recv_raw(buf).await
            }

            /// [`recv_vnet`](Self::recv_vnet) without waiting (`WouldBlock` if none is
            /// queued).
            pub fn try_recv_vnet(&self, buf: &mut [u8]) -> io::Result<usize> {
                self.dev.try_recv_raw(buf)
            }

            /// Inject one frame preceded by its own `virtio_net_hdr` (`buf[..VNET_HDR_LEN]`),
            /// e.g. a coalesced TCP super-frame or one marked `DATA_VALID`; never waits.
            pub fn try_send_vnet(&self, buf: &[u8]) -> io::Result<usize> {
                self.dev.try_send_raw(buf)
            }
        }
    };
}

/// A TAP device carrying whole Ethernet frames (an l2tpeth equivalent).
#[derive(Debug)]
pub struct Tap {
    dev: Dev,
}

const TAP_FLAGS: libc::c_int = libc::IFF_TAP | libc::IFF_VNET_HDR;

impl Tap {
    /// Create a TAP device named `name`, or from `template` (one `%d`, e.g.
    /// [`L2TPETH_TEMPLATE`]) when `name` is `None`. Must be called inside a tokio runtime.
    pub fn create(name: Option<&str>, template: &str) -> io::Result<Tap> {
        Ok(Tap {
            dev: Dev::create(name, template, TAP_FLAGS)?,
        })
    }

    /// Create a multi-queue TAP (`IFF_MULTI_QUEUE`) with `queues` queues, one per data-path
    /// worker; the kernel spreads the frames it sends over the queues by flow hash. The
    /// device disappears when the last queue is dropped.
    pub fn create_multi_queue(
        name: Option<&str>,
        template: &str,
        queues: usize,
    ) -> io::Result<Vec<Tap>> {
        let devs = Dev::create_multi_queue(name, template, TAP_FLAGS, queues)?;
        Ok(devs.into_iter().map(|dev| Tap { dev }).collect())
    }

    /// The device's MAC address.
    pub fn mac(&self) -> io::Result<[u8; 6]> {
        link::hwaddr(&self.dev.name)
    }
}

device_common!(Tap);
vnet_common!(Tap);

/// A TUN device carrying IP packets (a pppN unit equivalent; point-to-point, no ARP).
#[derive(Debug)]
pub struct Tun {
    dev: Dev,
}

impl Tun {
    /// Create a TUN device named `name`, or from `template` (e.g. [`PPP_TEMPLATE`]).
    pub fn create(name: Option<&str>, template: &str) -> io::Result<Tun> {
        Ok(Tun {
            dev: Dev::create(name, template, libc::IFF_TUN)?,
        })
    }

    /// Create a TUN device like [`create`](Self::create), opened with `IFF_VNET_HDR` so that
    /// [`set_offload`](Self::set_offload) can let the stack hand over TCP super-packets (the
    /// vnet header's offsets then count from the IP header). The frame calls
    /// ([`recv`](Self::recv), [`try_send`](Self::try_send)) hide the header as on a TAP.
    pub fn create_vnet(name: Option<&str>, template: &str) -> io::Result<Tun> {
        Ok(Tun {
            dev: Dev::create(name, template, libc::IFF_TUN | libc::IFF_VNET_HDR)?,
        })
    }

    /// Create a multi-queue TUN with `queues` queues (see [`Tap::create_multi_queue`]).
    pub fn create_multi_queue(
        name: Option<&str>,
        template: &str,
        queues: usize,
    ) -> io::Result<Vec<Tun>> {
        let devs = Dev::create_multi_queue(name, template, libc::IFF_TUN, queues)?;
        Ok(devs.into_iter().map(|dev| Tun { dev }).collect())
    }
}

device_common!(Tun);
vnet_common!(Tun);
