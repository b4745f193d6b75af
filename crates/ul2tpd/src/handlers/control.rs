//! Control protocol requests: `control_connect`, `control_session`, `control_disconnect`,
//! answered by the control plane (`control.rs`, dynamic tunnels).

use std::net::{IpAddr, SocketAddr};

use ul2tp_api::{encap_type, l2spec_type, pw_type, Attrs};
use ul2tp_core::{Encap, L2SpecType, PwType};

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
    let encap = match a.encap_type.unwrap_or(encap_type::UDP) {
        encap_type::UDP => Encap::Udp,
        encap_type::IP => Encap::Ip,
        e => return Err(einval(format!("encap_type {e} is not UDP (0) or IP (1)"))),
    };
    if encap == Encap::Ip && a.udp_dport.is_some() {
        return Err(einval("udp_dport is for encap udp"));
    }
    let port = match encap {
        Encap::Udp => a.udp_dport.unwrap_or(1701),
        Encap::Ip => 0,
    };
    let peer = SocketAddr::new(addr, port);
    // Subscribed before the SCCRQ leaves, so that the outcome cannot be missed.
    let mut events = (a.wait == Some(true)).then(|| cp.events());
    let tid = cp.connect(peer, version, encap).await?;
    if let Some(events) = &mut events {
        crate::dial::wait_tunnel(cp, events, tid, peer).await?;
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
    let pw = a.pw_type.unwrap_or(pw_type::ETH);
    let vlan_id = match (pw, a.vlan_id) {
        (pw_type::ETH_VLAN, Some(v)) if (1..=4094).contains(&v) => Some(v),
        (pw_type::ETH_VLAN, _) => {
            return Err(einval(
                "an eth_vlan session needs vlan_id between 1 and 4094",
            ))
        }
        (_, Some(_)) => return Err(einval("vlan_id needs pw_type eth_vlan")),
        (_, None) => None,
    };
    let cfg = ul2tp_control::SessionConfig {
        pw_type: PwType::from(pw),
        l2spec_type: L2SpecType::from(u16::from(a.l2spec_type.unwrap_or(l2spec_type::DEFAULT))),
        recv_seq: a.recv_seq.is_some_and(|v| v & 1 == 1),
        // The peer's attachment circuit: the same VLAN there (RFC 4667 Remote End ID).
        remote_end_id: vlan_id
            .map(|v| v.to_string().into_bytes())
            .unwrap_or_default(),
        ..ul2tp_control::SessionConfig::default()
    };
    let mut events = (a.wait == Some(true)).then(|| cp.events());
    let sid = cp.session(tid, cfg, a.ifname.clone(), vlan_id).await?;
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
