//! Network interface helpers over `ioctl(2)` on an `AF_INET` datagram socket (the calling
//! thread's network namespace): ifindex, existence, MTU, up/down, MAC, IPv4 address.
//! These are the operations the kernel's l2tp_eth needs around its netdev (docs/reference/kernel.md §6).

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;

use crate::os;

/// Interface index of `name` (`ENODEV` if there is no such interface).
pub fn ifindex(name: &str) -> io::Result<u32> {
    let fd = os::ioctl_socket()?;
    let mut req = os::ifreq(name)?;
    os::ioctl_ifreq(fd.as_fd(), libc::SIOCGIFINDEX, &mut req)?;
    // SAFETY: SIOCGIFINDEX filled the ifindex member of the union.
    let idx = unsafe { req.ifr_ifru.ifru_ifindex };
    u32::try_from(idx).map_err(|_| os::errno(libc::ENODEV))
}

/// Whether an interface called `name` exists in the caller's network namespace.
pub fn exists(name: &str) -> bool {
    ifindex(name).is_ok()
}

/// Current MTU of `name`.
pub fn mtu(name: &str) -> io::Result<u32> {
    let fd = os::ioctl_socket()?;
    let mut req = os::ifreq(name)?;
    os::ioctl_ifreq(fd.as_fd(), libc::SIOCGIFMTU, &mut req)?;
    // SAFETY: SIOCGIFMTU filled the mtu member of the union.
    let v = unsafe { req.ifr_ifru.ifru_mtu };
    u32::try_from(v).map_err(|_| io::Error::other("negative MTU"))
}

/// Set the MTU of `name` (`EINVAL` outside the device's min/max).
pub fn set_mtu(name: &str, mtu: u32) -> io::Result<()> {
    let v = libc::c_int::try_from(mtu).map_err(|_| os::errno(libc::EINVAL))?;
    let fd = os::ioctl_socket()?;
    let mut req = os::ifreq(name)?;
    req.ifr_ifru.ifru_mtu = v;
    os::ioctl_ifreq(fd.as_fd(), libc::SIOCSIFMTU, &mut req)
}

fn flags(name: &str) -> io::Result<libc::c_short> {
    let fd = os::ioctl_socket()?;
    let mut req = os::ifreq(name)?;
    os::ioctl_ifreq(fd.as_fd(), libc::SIOCGIFFLAGS, &mut req)?;
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    Ok(unsafe { req.ifr_ifru.ifru_flags })
}

/// Whether `name` is administratively up (`IFF_UP`).
pub fn is_up(name: &str) -> io::Result<bool> {
    Ok(flags(name)? & libc::IFF_UP as libc::c_short != 0)
}

/// Whether `name` is point-to-point (`IFF_POINTOPOINT`).
pub fn is_pointopoint(name: &str) -> io::Result<bool> {
    Ok(flags(name)? & libc::IFF_POINTOPOINT as libc::c_short != 0)
}

/// Bring `name` up or down (`IFF_UP`).
pub fn set_up(name: &str, up: bool) -> io::Result<()> {
    let fd = os::ioctl_socket()?;
    let mut req = os::ifreq(name)?;
    os::ioctl_ifreq(fd.as_fd(), libc::SIOCGIFFLAGS, &mut req)?;
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    let mut f = unsafe { req.ifr_ifru.ifru_flags };
    if up {
        f |= libc::IFF_UP as libc::c_short;
    } else {
        f &= !(libc::IFF_UP as libc::c_short);
    }
    req.ifr_ifru.ifru_flags = f;
    os::ioctl_ifreq(fd.as_fd(), libc::SIOCSIFFLAGS, &mut req)
}

/// Hardware (MAC) address of an Ethernet-like interface.
pub fn hwaddr(name: &str) -> io::Result<[u8; 6]> {
    let fd = os::ioctl_socket()?;
    let mut req = os::ifreq(name)?;
    os::ioctl_ifreq(fd.as_fd(), libc::SIOCGIFHWADDR, &mut req)?;
    // SAFETY: SIOCGIFHWADDR filled the hwaddr member of the union.
    let sa = unsafe { req.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (m, b) in mac.iter_mut().zip(sa.sa_data.iter()) {
        *m = *b as u8;
    }
    Ok(mac)
}

/// Set the hardware (MAC) address of an Ethernet-like interface (`SIOCSIFHWADDR`); a TAP
/// accepts it while down or up, callers set it before bringing the device up.
pub fn set_hwaddr(name: &str, mac: [u8; 6]) -> io::Result<()> {
    let fd = os::ioctl_socket()?;
    let mut req = os::ifreq(name)?;
    let mut data = [0 as libc::c_char; 14];
    for (d, m) in data.iter_mut().zip(mac) {
        *d = m as libc::c_char;
    }
    req.ifr_ifru.ifru_hwaddr = libc::sockaddr {
        sa_family: libc::ARPHRD_ETHER,
        sa_data: data,
    };
    os::ioctl_ifreq(fd.as_fd(), libc::SIOCSIFHWADDR, &mut req)
}

fn sockaddr_v4(a: Ipv4Addr) -> libc::sockaddr {
    // struct sockaddr_in laid over struct sockaddr: family, port (0), then the address.
    let mut data = [0 as libc::c_char; 14];
    for (d, o) in data[2..6].iter_mut().zip(a.octets()) {
        *d = o as libc::c_char;
    }
    libc::sockaddr {
        sa_family: libc::AF_INET as libc::sa_family_t,
        sa_data: data,
    }
}

/// Assign an IPv4 address and prefix length to `name` (`SIOCSIFADDR` + `SIOCSIFNETMASK`),
/// replacing its primary IPv4 address. For test and demo namespaces.
pub fn set_ipv4_addr(name: &str, addr: Ipv4Addr, prefix_len: u8) -> io::Result<()> {
    if prefix_len > 32 {
        return Err(os::errno(libc::EINVAL));
    }
    let mask = if prefix_len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix_len))
    };
    let fd = os::ioctl_socket()?;
    let mut req = os::ifreq(name)?;
    req.ifr_ifru.ifru_addr = sockaddr_v4(addr);
    os::ioctl_ifreq(fd.as_fd(), libc::SIOCSIFADDR, &mut req)?;
    let mut req = os::ifreq(name)?;
    req.ifr_ifru.ifru_netmask = sockaddr_v4(Ipv4Addr::from(mask));
    os::ioctl_ifreq(fd.as_fd(), libc::SIOCSIFNETMASK, &mut req)
}

/// `struct ethtool_value` (linux/ethtool.h).
#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

/// `ETHTOOL_GTSO`: get TCP segmentation offload.
const ETHTOOL_GTSO: u32 = 0x1e;

/// Whether TCP segmentation offload is on for `name` (what `ethtool -k DEV` shows as
/// `tcp-segmentation-offload`): for a TAP, whether its reader accepted TSO (`TUNSETOFFLOAD`).
pub fn tso_enabled(name: &str) -> io::Result<bool> {
    let fd = os::ioctl_socket()?;
    let mut req = os::ifreq(name)?;
    let mut v = EthtoolValue {
        cmd: ETHTOOL_GTSO,
        data: 0,
    };
    req.ifr_ifru.ifru_data = (&mut v as *mut EthtoolValue).cast();
    // `v` outlives the call; SIOCETHTOOL reads the command from it and writes the value back.
    os::ioctl_ifreq(fd.as_fd(), libc::SIOCETHTOOL, &mut req)?;
    Ok(v.data != 0)
}
