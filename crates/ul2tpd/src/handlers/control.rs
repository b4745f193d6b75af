//! Control protocol requests: `control_connect`, `control_session`, `control_disconnect`,
//! answered by the control plane (`control.rs`, dynamic tunnels).

use std::net::{IpAddr, SocketAddr};

use ul2tp_api::{l2spec_type, pw_type, Attrs};
use ul2tp_core::{L2SpecType, PwType};

use crate::control::ControlPlane;
use crate::store::{einval, ApiResult};

/// Open a control connection; the reply names its tunnel.
pub(crate) async fn connect(cp: &ControlPlane, a: &Attrs) -> ApiResult<Attrs> {
    let addr = match (a.ip6_daddr, a.ip_daddr) {
        (Some(v6), _) => IpAddr::V6(v6),
        (None, Some(v4)) => IpAddr::V4(v4),
        _ => return Err(einval("control_connect needs ip_daddr or ip6_daddr")),
    };
    let version = match a.proto_version.unwrap_or(3) {
        2 => ul2tp_control::Version::V2,
        3 => ul2tp_control::Version::V3,
        v => return Err(einval(format!("proto_version {v} is not 2 or 3"))),
    };
    let peer = SocketAddr::new(addr, a.udp_dport.unwrap_or(1701));
    // Subscribed before the SCCRQ leaves, so that the outcome cannot be missed.
    let mut events = (a.wait == Some(true)).then(|| cp.events());
    let tid = cp.connect(peer, version).await?;
    if let Some(events) = &mut events {
        crate::dial::wait_tunnel(events, tid, peer).await?;
    }
    Ok(Attrs {
        conn_id: Some(tid),
        ..Attrs::default()
    })
}

/// Open a session in a dynamic tunnel; the reply names it.
pub(crate) async fn session(cp: &ControlPlane, a: &Attrs) -> ApiResult<Attrs> {
    let tid = a
        .conn_id
        .ok_or_else(|| einval("control_session needs conn_id"))?;
    let cfg = ul2tp_control::SessionConfig {
        pw_type: PwType::from(a.pw_type.unwrap_or(pw_type::ETH)),
        l2spec_type: L2SpecType::from(u16::from(a.l2spec_type.unwrap_or(l2spec_type::DEFAULT))),
        recv_seq: a.recv_seq.is_some_and(|v| v & 1 == 1),
        ..ul2tp_control::SessionConfig::default()
    };
    let mut events = (a.wait == Some(true)).then(|| cp.events());
    let sid = cp.session(tid, cfg, a.ifname.clone()).await?;
    if let Some(events) = &mut events {
        crate::dial::wait_session(events, tid, sid, &"the peer").await?;
    }
    Ok(Attrs {
        conn_id: Some(tid),
        session_id: Some(sid),
        ..Attrs::default()
    })
}

/// Close a dynamic tunnel or session with the peer.
pub(crate) async fn disconnect(cp: &ControlPlane, a: &Attrs) -> ApiResult<()> {
    let tid = a
        .conn_id
        .ok_or_else(|| einval("control_disconnect needs conn_id"))?;
    cp.close(tid, a.session_id).await
}
