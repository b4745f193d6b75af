//! The shared PPP device (`ppp_device = "shared"`): one TUN for all the PPP calls of the
//! profiles that name it, as l2tpns does, instead of a `pppN` per call.
//!
//! A device per call costs a descriptor, a netdevice and an RTNL round trip to create and
//! delete; the descriptor limit alone stops a daemon at ~20,000 calls. With the shared device
//! a call that reaches IPCP up only gets entries in the device's address table
//! (`ul2tp_core::subscribers`): its IPv4 address, and its RADIUS Framed-Routes (each also a
//! kernel route onto the device). The kernel routes the pools onto the device with one route
//! per pool prefix, added when the first call of the pool comes up; the LNS's `ppp_local` is
//! an address of the device, so the kernel answers the subscribers' pings to it.
//!
//! One task reads the device and hands each packet to the call that owns its destination
//! (host entry, else the longest prefix); what no call owns is dropped and counted
//! (`ul2tp_ppp_shared_unrouted_total`). A packet from a call is written to the device only if
//! its source address routes back to that call (anti-spoofing; dropped ones count in
//! `ul2tp_ppp_shared_spoofed_total`). Tearing a call down removes its entries (no device to
//! delete).
//!
//! IPv6 is not carried on the shared device yet (IPv6CP is not offered on its calls, and
//! `ppp_ipv6_pool` is refused with it); the table is ready for /64s and delegated prefixes.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use ul2tp_core::subscribers::{ip_addrs, range_prefixes, SubscriberTable};
use ul2tp_sys::rtnl::{add_address, add_route, delete_route, IfAddr, Route};
use ul2tp_sys::tap::Tun;

use crate::metrics::Ops;
use crate::profile::{KeyError, Pool};
use crate::reaper::Reaped;

/// The shared device's name when `ppp_device_name` is left out.
pub(crate) const DEFAULT_NAME: &str = "ppps0";

/// Packets queued from the device to one call at most (then dropped and counted).
const QUEUE: usize = 256;

/// `ppp_device` and `ppp_device_name`: the shared device's name, `None` for a pppN per call.
pub(crate) fn device_keys(keys: (Option<&str>, Option<&str>)) -> Result<Option<String>, KeyError> {
    match keys {
        (None | Some("per-session"), None) => Ok(None),
        (None | Some("per-session"), Some(_)) => {
            Err(("ppp_device_name", "needs ppp_device = \"shared\"".into()))
        }
        (Some("shared"), name) => {
            let n = name.unwrap_or(DEFAULT_NAME);
            let digits = n
                .strip_prefix("ppp")
                .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()));
            if n.is_empty()
                || n.len() > 15
                || n.contains(['/', '%', ':'])
                || n.chars().any(char::is_whitespace)
                || n == "."
                || n == ".."
            {
                Err((
                    "ppp_device_name",
                    format!("{n:?} is not an interface name (1 to 15 characters, no '/', '%', ':' or space)"),
                ))
            } else if digits {
                Err((
                    "ppp_device_name",
                    format!("{n:?} is a per-session device name (pppN); choose another"),
                ))
            } else {
                Ok(Some(n.to_string()))
            }
        }
        (Some(other), _) => Err((
            "ppp_device",
            format!("{other:?} is not one of per-session, shared"),
        )),
    }
}

/// What a call needs to go onto a shared device.
#[derive(Debug, Clone, Default)]
pub(crate) struct SharedSpec {
    /// The device's name.
    pub(crate) device: String,
    /// The profile's pools (routed onto the device).
    pub(crate) pools: Vec<Pool>,
    /// The device's MTU (`ppp_mtu`), set when it is created.
    pub(crate) mtu: Option<u16>,
}

/// The daemon's shared devices, by name.
#[derive(Debug, Default)]
pub(crate) struct SharedDevices {
    devices: Mutex<HashMap<String, Arc<SharedTun>>>,
}

impl SharedDevices {
    /// The device `spec.device`, created (and its reader started) on first use.
    fn get(&self, spec: &SharedSpec, ops: &Arc<Ops>) -> io::Result<Arc<SharedTun>> {
        let mut m = self.devices.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = m.get(&spec.device) {
            return Ok(d.clone());
        }
        let tun = Tun::create(Some(&spec.device), ul2tp_sys::tap::PPP_TEMPLATE)?;
        tun.set_mtu(u32::from(spec.mtu.unwrap_or(1500)))?;
        tun.set_up(true)?;
        let dev = Arc::new(SharedTun {
            tun,
            table: SubscriberTable::new(),
            configured: Mutex::default(),
            next_id: AtomicU64::new(1),
            ops: ops.clone(),
        });
        tokio::spawn(dev.clone().read());
        tracing::info!("shared PPP device {} up", spec.device);
        m.insert(spec.device.clone(), dev.clone());
        Ok(dev)
    }
}

/// One shared TUN, its table and what was configured on it.
#[derive(Debug)]
struct SharedTun {
    tun: Tun,
    table: SubscriberTable<mpsc::Sender<Vec<u8>>>,
    /// Addresses and pool routes already on the device.
    configured: Mutex<HashSet<(Ipv4Addr, u8, bool)>>,
    next_id: AtomicU64,
    ops: Arc<Ops>,
}

impl SharedTun {
    /// Read the device and hand each packet to the call of its destination.
    async fn read(self: Arc<Self>) {
        let mut buf = vec![0u8; 65536];
        loop {
            let n = match self.tun.recv(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!("shared PPP device {}: {e}", self.tun.name());
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let to = ip_addrs(&buf[..n]).and_then(|(_, dst)| self.table.lookup(dst));
            let sent = to.is_some_and(|(_, tx)| tx.try_send(buf[..n].to_vec()).is_ok());
            if !sent {
                self.ops.ppp.shared_unrouted.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Put `local` on the device and route `pools` onto it, once each.
    fn configure(&self, local: Ipv4Addr, pools: &[Pool]) {
        let mut done = self.configured.lock().unwrap_or_else(|e| e.into_inner());
        let name = self.tun.name();
        if done.insert((local, 32, true)) {
            let a = IfAddr {
                local: IpAddr::V4(local),
                prefix_len: 32,
                peer: None,
            };
            if let Err(e) = add_address(name, a) {
                tracing::warn!("shared PPP device {name}: address {local}: {e}");
            }
        }
        let prefixes = pools
            .iter()
            .flat_map(|p| &p.ranges)
            .flat_map(|&(a, b)| range_prefixes(a, b));
        for (dst, len) in prefixes {
            if done.insert((dst, len, false)) {
                if let Err(e) = add_route(name, route(dst, len)) {
                    tracing::warn!("shared PPP device {name}: route {dst}/{len}: {e}");
                }
            }
        }
    }

    /// Whether a pool route of the device covers `a`.
    fn routed(&self, a: Ipv4Addr) -> bool {
        let done = self.configured.lock().unwrap_or_else(|e| e.into_inner());
        done.iter().any(|&(net, len, addr)| {
            !addr && {
                let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                u32::from(a) & mask == u32::from(net)
            }
        })
    }
}

fn route(dst: Ipv4Addr, prefix_len: u8) -> Route {
    Route {
        dst: IpAddr::V4(dst),
        prefix_len,
        gateway: None,
    }
}

/// A call on a shared device: its entries in the table (removed when it is dropped) and the
/// queue of packets the device's reader hands it.
pub(crate) struct SharedLink {
    dev: Arc<SharedTun>,
    id: u64,
    peer: Ipv4Addr,
    /// Prefixes of the call in the table (Framed-Route).
    prefixes: Vec<(Ipv4Addr, u8)>,
    /// Kernel routes of the call's own (removed when it goes).
    routes: Vec<(Ipv4Addr, u8)>,
    rx: mpsc::Receiver<Vec<u8>>,
}

/// Put a call whose IPCP came up (`local` ours, `peer` its address, `framed` its RADIUS
/// Framed-Routes) onto the shared device of `spec`.
pub(crate) fn attach(
    devices: &SharedDevices,
    ops: &Arc<Ops>,
    spec: &SharedSpec,
    local: Ipv4Addr,
    peer: Ipv4Addr,
    framed: &[(Ipv4Addr, u8)],
) -> io::Result<SharedLink> {
    let dev = devices.get(spec, ops)?;
    dev.configure(local, &spec.pools);
    let id = dev.next_id.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = mpsc::channel(QUEUE);
    if !dev.table.insert_host(peer, id, tx.clone()) {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("{peer} is in use by another call on {}", dev.tun.name()),
        ));
    }
    dev.ops.ppp.shared_calls.fetch_add(1, Ordering::Relaxed);
    let mut link = SharedLink {
        dev: dev.clone(),
        id,
        peer,
        prefixes: Vec::new(),
        routes: Vec::new(),
        rx,
    };
    let name = dev.tun.name();
    // An address from outside the pools (RADIUS Framed-IP-Address) gets a route of its own.
    if !dev.routed(peer) {
        match add_route(name, route(peer, 32)) {
            Ok(()) => link.routes.push((peer, 32)),
            Err(e) => tracing::warn!("shared PPP device {name}: route {peer}/32: {e}"),
        }
    }
    for &(dst, len) in framed {
        if !dev
            .table
            .insert_prefix(IpAddr::V4(dst), len, id, tx.clone())
        {
            tracing::warn!("shared PPP device {name}: Framed-Route {dst}/{len} is another call's");
            continue;
        }
        link.prefixes.push((dst, len));
        match add_route(name, route(dst, len)) {
            Ok(()) => link.routes.push((dst, len)),
            Err(e) => tracing::warn!("shared PPP device {name}: Framed-Route {dst}/{len}: {e}"),
        }
    }
    Ok(link)
}

impl SharedLink {
    /// The device's name.
    pub(crate) fn name(&self) -> &str {
        self.dev.tun.name()
    }

    /// The next packet for the call (waits).
    pub(crate) async fn recv(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        match self.rx.recv().await {
            Some(p) => {
                *buf = p;
                Ok(buf.len())
            }
            // The device's reader holds a sender as long as the entry exists.
            None => std::future::pending().await,
        }
    }

    /// The next packet for the call, if one is queued.
    pub(crate) fn try_recv(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        match self.rx.try_recv() {
            Ok(p) => {
                *buf = p;
                Ok(buf.len())
            }
            Err(_) => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    /// A packet from the call: onto the device if its source is the call's.
    pub(crate) fn send(&self, packet: &[u8]) {
        let ok = ip_addrs(packet).is_some_and(|(src, _)| self.dev.table.source_ok(self.id, src));
        if !ok {
            self.dev
                .ops
                .ppp
                .shared_spoofed
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        let _ = self.dev.tun.try_send(packet);
    }
}

impl Drop for SharedLink {
    fn drop(&mut self) {
        self.dev
            .ops
            .ppp
            .shared_calls
            .fetch_sub(1, Ordering::Relaxed);
        self.dev.table.remove_host(self.peer, self.id);
        for &(dst, len) in &self.prefixes {
            self.dev.table.remove_prefix(IpAddr::V4(dst), len, self.id);
        }
        for &(dst, len) in &self.routes {
            let _ = delete_route(self.dev.tun.name(), route(dst, len));
        }
    }
}

/// The IP device of a PPP call: a pppN of its own or its entries on a shared device.
pub(crate) enum LinkDev {
    /// `pppN`.
    Own(Reaped<Tun>),
    /// `ppp_device = "shared"`.
    Shared(SharedLink),
}

impl LinkDev {
    /// The call's own pppN (for what configures a device per call: IPv6).
    pub(crate) fn own(&self) -> Option<&Tun> {
        match self {
            LinkDev::Own(t) => Some(t),
            LinkDev::Shared(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// In a configuration file: the default profile and an `[[lns]]` profile take the keys;
    /// IPv6 with a shared device, or the keys without a PPP service, name the key and line.
    #[test]
    fn configuration_keys() {
        let check = |t: &str| crate::config::Config::check(std::path::Path::new("t.toml"), t);
        let base = "[control]\nppp_local = \"10.0.0.1\"\nppp_pool = \"10.0.0.2-10.0.0.9\"\n";
        assert!(check(&format!("{base}ppp_device = \"shared\"\n")).is_ok());
        let lns = "[[lns]]\nname = \"a\"\nppp_local = \"10.1.0.1\"\nppp_pool = \"10.1.0.2-10.1.0.9\"\nppp_device = \"shared\"\nppp_device_name = \"subs1\"\n";
        assert!(check(&format!("{base}{lns}")).is_ok());
        let e = check(&format!(
            "{base}ppp_device = \"shared\"\nppp_ipv6_pool = \"2001:db8::/48\"\n"
        ))
        .unwrap_err();
        assert_eq!((e.key.as_deref(), e.line), (Some("ppp_device"), Some(4)));
        let e = check("[control]\nppp_device = \"shared\"\n").unwrap_err();
        assert_eq!((e.key.as_deref(), e.line), (Some("ppp_device"), Some(2)));
    }

    #[test]
    fn device_keys_name_what_is_wrong() {
        assert_eq!(device_keys((None, None)), Ok(None));
        assert_eq!(device_keys((Some("per-session"), None)), Ok(None));
        assert_eq!(
            device_keys((Some("shared"), None)),
            Ok(Some(DEFAULT_NAME.into()))
        );
        assert_eq!(
            device_keys((Some("shared"), Some("subs0"))),
            Ok(Some("subs0".into()))
        );
        assert_eq!(
            device_keys((Some("tun"), None)).unwrap_err().0,
            "ppp_device"
        );
        for bad in ["", "ppp7", "a/b", "sixteen-chars-xx", "a b", "ppp%d"] {
            assert_eq!(
                device_keys((Some("shared"), Some(bad))).unwrap_err().0,
                "ppp_device_name",
                "{bad:?}"
            );
        }
        assert_eq!(
            device_keys((None, Some("subs0"))).unwrap_err().0,
            "ppp_device_name"
        );
    }
}
