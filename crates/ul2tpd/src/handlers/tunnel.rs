//! Tunnel requests: `tunnel_create`, `tunnel_delete`, `tunnel_modify`, `tunnel_get`
//! (docs/reference/kernel.md §4.2, §4.5).

use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;

use ul2tp_api::{encap_type, ApiError, Attrs, Command, Errno};
use ul2tp_core::{Encap, SocketId, TunnelParams, Version};

use crate::apps;
use crate::l2tpip::L2tpIp;
use crate::store::{einval, ApiResult, Store, TunnelInfo};

/// Validated common tunnel attributes: (tunnel_id, peer_tunnel_id, version, encap).
fn ids(a: &Attrs) -> ApiResult<(u32, u32, Version, Encap)> {
    // docs/reference/kernel.md §4.5: required attributes.
    let (Some(tid), Some(ptid), Some(version), Some(encap)) =
        (a.conn_id, a.peer_conn_id, a.proto_version, a.encap_type)
    else {
        return Err(einval(
            "tunnel_create needs conn_id, peer_conn_id, proto_version and encap_type",
        ));
    };
    let encap = match encap {
        encap_type::UDP => Encap::Udp,
        encap_type::IP => Encap::Ip,
        other => {
            return Err(einval(format!(
                "encap_type {other} is neither 0 (udp) nor 1 (ip)"
            )))
        }
    };
    // Beyond the kernel (docs/reference/kernel.md §12.2 item 3): validate the version and id ranges.
    let version = Version::from_u8(version)
        .ok_or_else(|| einval(format!("proto_version {version} is not 2 or 3")))?;
    if version == Version::V2 {
        if encap != Encap::Udp {
            return Err(ApiError::new(
                Errno::EPROTONOSUPPORT,
                "L2TPv2 is carried over UDP only",
            ));
        }
        if tid > 0xffff || ptid > 0xffff {
            return Err(einval("L2TPv2 tunnel ids are 16-bit"));
        }
    }
    Ok((tid, ptid, version, encap))
}

pub(crate) async fn create(
    d: &Store,
    l2tpip: &L2tpIp,
    a: &Attrs,
    fds: Vec<OwnedFd>,
) -> ApiResult<Option<OwnedFd>> {
    let (tid, ptid, version, encap) = ids(a)?;
    if a.fd.is_some() || !fds.is_empty() {
        let fd = fds
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::new(Errno::EBADF, "fd given but no descriptor attached"))?;
        let mut ctl = d.ctl.lock().await;
        let p = TunnelParams {
            tunnel_id: tid,
            peer_tunnel_id: ptid,
            version,
            encap,
            socket: SocketId(0),
        };
        if let Some(r) = crate::l2tpip::managed_tunnel(d, l2tpip, &mut ctl, p, &fd) {
            return r.map(Some);
        }
        let view = apps::managed_tunnel(
            d,
            &mut ctl,
            TunnelParams {
                tunnel_id: tid,
                peer_tunnel_id: ptid,
                version,
                encap,
                socket: SocketId(0),
            },
            fd,
            true,
        )?;
        return Ok(view);
    }
    let (local, remote) = match (a.ip6_saddr, a.ip6_daddr, a.ip_saddr, a.ip_daddr) {
        (Some(l), Some(r), _, _) => (IpAddr::V6(l), IpAddr::V6(r)),
        (_, _, Some(l), Some(r)) => (IpAddr::V4(l), IpAddr::V4(r)),
        _ => {
            return Err(einval(
                "an unmanaged tunnel needs ip_saddr and ip_daddr (or ip6_saddr and ip6_daddr)",
            ))
        }
    };
    let mut ctl = d.ctl.lock().await;
    if d.registry.tunnel_get(tid).is_some() {
        return Err(ApiError::new(
            Errno::EEXIST,
            format!("tunnel {tid} already exists"),
        ));
    }
    let info = TunnelInfo {
        udp_csum: a.udp_csum.is_some(),
        zero_csum6_tx: a.udp_zero_csum6_tx.unwrap_or(false),
        zero_csum6_rx: a.udp_zero_csum6_rx.unwrap_or(false),
    };
    let (l, r) = match encap {
        Encap::Udp => (
            SocketAddr::new(local, a.udp_sport.unwrap_or(0)),
            SocketAddr::new(remote, a.udp_dport.unwrap_or(0)),
        ),
        Encap::Ip => (SocketAddr::new(local, 0), SocketAddr::new(remote, 0)),
    };
    let sock = d.unmanaged_socket(&mut ctl, encap, l, r, &info)?;
    let p = TunnelParams {
        tunnel_id: tid,
        peer_tunnel_id: ptid,
        version,
        encap,
        socket: sock.id,
    };
    d.register_tunnel(&mut ctl, p, sock, info)?;
    tracing::info!(
        tunnel_id = tid,
        "tunnel {tid} created (peer {ptid}, {encap:?}, {l} -> {r})"
    );
    Ok(None)
}

/// Delete a tunnel and its sessions (API, socket close, shutdown).
pub(crate) async fn delete(d: &Store, a: &Attrs) -> ApiResult<()> {
    let tid = a
        .conn_id
        .ok_or_else(|| einval("tunnel_delete needs conn_id"))?;
    let mut ctl = d.ctl.lock().await;
    d.tunnel_delete_locked(&mut ctl, tid)
}

pub(crate) async fn modify(d: &Store, a: &Attrs) -> ApiResult<()> {
    let tid = a
        .conn_id
        .ok_or_else(|| einval("tunnel_modify needs conn_id"))?;
    let ctl = d.ctl.lock().await;
    // docs/reference/kernel.md §4.2: changes nothing, only notifies.
    let attrs = d
        .tunnel_attrs(&ctl, tid)
        .ok_or_else(|| ApiError::new(Errno::ENODEV, format!("no tunnel {tid}")))?;
    d.notify(Command::TunnelModify, attrs);
    Ok(())
}

/// `tunnel_get` with the dump flag: every tunnel.
pub(crate) async fn dump(d: &Store) -> Vec<Attrs> {
    let ctl = d.ctl.lock().await;
    let tunnels = d.registry.tunnels();
    tunnels
        .iter()
        .filter_map(|t| d.tunnel_attrs(&ctl, t.tunnel_id()))
        .collect()
}

/// `tunnel_get` of one tunnel.
pub(crate) async fn get(d: &Store, a: &Attrs) -> ApiResult<Attrs> {
    let ctl = d.ctl.lock().await;
    let tid = a
        .conn_id
        .ok_or_else(|| einval("tunnel_get needs conn_id"))?;
    let attrs = d.tunnel_attrs(&ctl, tid);
    attrs.ok_or_else(|| ApiError::new(Errno::ENODEV, format!("no tunnel {tid}")))
}
