//! Debug listings and trace switches: `debug_tunnels`, `debug_pppol2tp` (the kernel's
//! debugfs and /proc listings) and `trace_set` (docs/reference/kernel.md §9).

use std::net::SocketAddr;

use ul2tp_api::{ApiError, Attrs};

use crate::store::{einval, ApiResult, Store};

/// The debugfs tunnel listing.
pub(crate) async fn tunnels(d: &Store) -> String {
    let ctl = d.ctl.lock().await;
    ul2tp_core::debug::debug_tunnels(&d.registry, &|t| {
        let rt = ctl.tunnels.get(&t.tunnel_id())?;
        Some(ul2tp_core::debug::TunnelAddrs {
            local: rt.sock.socket.local_addr().ok()?,
            peer: rt.sock.socket.peer_addr().ok()?,
        })
    })
}

/// The /proc/net/pppol2tp listing.
pub(crate) async fn pppol2tp(d: &Store) -> String {
    let ctl = d.ctl.lock().await;
    ul2tp_core::debug::proc_pppol2tp(&d.registry, &|s| {
        let attached = ctl.attached.contains(&(s.tunnel_id(), s.session_id()));
        let local =
            ctl.tunnels
                .get(&s.tunnel_id())
                .and_then(|rt| match rt.sock.socket.local_addr() {
                    Ok(SocketAddr::V4(a)) => Some(a),
                    _ => None,
                });
        ul2tp_core::debug::PppSessionInfo {
            local,
            state: u32::from(attached),
            attached,
            interface: None,
        }
    })
}

/// Switch trace events on or off for a tunnel or session.
pub(crate) fn trace_set(d: &Store, a: &Attrs) -> ApiResult<()> {
    let tid = a.conn_id.ok_or_else(|| einval("trace_set needs conn_id"))?;
    let on = a.debug.unwrap_or(1) != 0;
    d.registry
        .set_trace(tid, a.session_id, on)
        .map_err(|e| ApiError::new(e, "no such tunnel or session"))
}
