//! Session requests: `session_create`, `session_delete`, `session_modify`, `session_get`
//! (docs/reference/kernel.md §4.3, §4.7).

use ul2tp_api::{l2spec_type, parse_cookie_hex, pw_type, ApiError, Attrs, Command, Errno};
use ul2tp_core::PwType;
use ul2tp_core::{Cookie, L2SpecType, SessionParams, Version};

use crate::store::{einval, io_err, session_attrs, ApiResult, Store};

pub(crate) async fn create(d: &Store, a: &Attrs) -> ApiResult<()> {
    let tid = a
        .conn_id
        .ok_or_else(|| einval("session_create needs conn_id"))?;
    let mut ctl = d.ctl.lock().await;
    let Some(tunnel) = d.registry.tunnel_get(tid) else {
        return Err(ApiError::new(Errno::ENODEV, format!("no tunnel {tid}")));
    };
    let (Some(sid), Some(psid), Some(pw)) = (a.session_id, a.peer_session_id, a.pw_type) else {
        return Err(einval(
            "session_create needs session_id, peer_session_id and pw_type",
        ));
    };
    let v3 = tunnel.version() == Version::V3;
    let cookie = |s: &Option<String>| -> ApiResult<Cookie> {
        match s {
            Some(h) if v3 => {
                Cookie::new(&parse_cookie_hex(h)?).map_err(|e| ApiError::new(e, "bad cookie"))
            }
            _ => Ok(Cookie::default()),
        }
    };
    let l2spec = match (v3, a.l2spec_type) {
        (false, _) => L2SpecType::None,
        (true, None | Some(l2spec_type::DEFAULT)) => L2SpecType::Default,
        (true, Some(l2spec_type::NONE)) => L2SpecType::None,
        (true, Some(other)) => {
            if pw < pw_type::MAX {
                return Err(einval(format!(
                    "l2spec_type {other} is neither 0 (none) nor 1 (default)"
                )));
            }
            L2SpecType::Default
        }
    };
    if pw == pw_type::ETH_VLAN && !a.vlan_id.is_some_and(|v| (1..=4094).contains(&v)) {
        return Err(einval(
            "an eth_vlan session needs vlan_id between 1 and 4094",
        ));
    }
    let mut params = SessionParams {
        session_id: sid,
        peer_session_id: psid,
        pw_type: PwType::from(pw),
        cookie: cookie(&a.cookie)?,
        peer_cookie: cookie(&a.peer_cookie)?,
        l2spec_type: l2spec,
        send_seq: a.send_seq.is_some_and(|v| v & 1 == 1),
        recv_seq: a.recv_seq.is_some_and(|v| v & 1 == 1),
        lns_mode: a.lns_mode.is_some_and(|v| v & 1 == 1),
        reorder_timeout_ms: a.recv_timeout.unwrap_or(0),
        ifname: None,
        vlan_id: a.vlan_id,
    };
    let is_eth = v3 && (pw == pw_type::ETH || pw == pw_type::ETH_VLAN);
    if let (true, Some(name)) = (is_eth, &a.ifname) {
        // docs/reference/kernel.md §4.3 / §4.10: the policy allows 15 characters (ERANGE beyond);
        // the netdev core refuses empty names and names with '/' or white space.
        if name.len() > 15 {
            return Err(ApiError::new(
                Errno::ERANGE,
                format!("interface name {name:?} is longer than 15 bytes"),
            ));
        }
        if name.is_empty()
            || name == "."
            || name == ".."
            || name.contains(['/', ':'])
            || name.contains(char::is_whitespace)
        {
            return Err(einval(format!("{name:?} is not a valid interface name")));
        }
    }
    // Validate ids before creating the device (no device churn on EEXIST).
    if pw < pw_type::MAX && d.registry.session_get(tid, sid).is_some() {
        return Err(ApiError::new(
            Errno::EEXIST,
            format!("session {sid} exists in tunnel {tid}"),
        ));
    }
    // The device first, so that the session is registered under its resolved name.
    let tap = if is_eth {
        let tap = d.create_tap(a.ifname.as_deref()).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                ApiError::new(
                    Errno::EEXIST,
                    format!("interface {} exists", a.ifname.as_deref().unwrap_or("?")),
                )
            } else {
                io_err("cannot create the pseudowire device", e)
            }
        })?;
        if let Err(e) = d.apply_stable_mac(tap.name(), tid, sid) {
            d.discard_tap(tap);
            return Err(io_err("cannot set the pseudowire's stable MAC address", e));
        }
        params.ifname = Some(tap.name().to_string());
        Some(tap)
    } else {
        None
    };
    let session = match d.registry.session_create(tid, params) {
        Ok(s) => s,
        Err(e) => {
            if let Some(tap) = tap {
                d.discard_tap(tap);
            }
            return Err(ApiError::new(e, format!("cannot create session {sid}")));
        }
    };
    d.start_session(&mut ctl, &session, tap)?;
    d.notify(Command::SessionCreate, session_attrs(&session, &ctl));
    tracing::info!(
        tunnel_id = tid,
        session_id = sid,
        "session {sid} in tunnel {tid} created"
    );
    Ok(())
}

pub(crate) async fn delete(d: &Store, a: &Attrs) -> ApiResult<()> {
    let mut ctl = d.ctl.lock().await;
    let s = d.find_session(a)?;
    d.session_delete_locked(&mut ctl, &s)
}

pub(crate) async fn modify(d: &Store, a: &Attrs) -> ApiResult<()> {
    let ctl = d.ctl.lock().await;
    let s = d.find_session(a)?;
    // docs/reference/kernel.md §4.7: RECV_SEQ, SEND_SEQ, LNS_MODE, RECV_TIMEOUT only; bit 0 counts.
    s.modify(
        a.send_seq.map(|v| v & 1 == 1),
        a.recv_seq.map(|v| v & 1 == 1),
        a.lns_mode.map(|v| v & 1 == 1),
        a.recv_timeout,
    );
    d.notify(Command::SessionModify, session_attrs(&s, &ctl));
    Ok(())
}

/// `session_get` with the dump flag: every session.
pub(crate) async fn dump(d: &Store) -> Vec<Attrs> {
    let ctl = d.ctl.lock().await;
    d.registry
        .sessions()
        .iter()
        .map(|s| with_peer(d, session_attrs(s, &ctl)))
        .collect()
}

/// Add what RADIUS knows about the session's PPP peer (docs/radius.md).
fn with_peer(d: &Store, mut a: Attrs) -> Attrs {
    if let (Some(r), Some(t), Some(s)) = (d.ops.radius.load_full(), a.conn_id, a.session_id) {
        r.annotate((t, s), &mut a);
    }
    a
}

/// `session_get` of one session.
pub(crate) async fn get(d: &Store, a: &Attrs) -> ApiResult<Attrs> {
    let ctl = d.ctl.lock().await;
    d.find_session(a)
        .map(|s| with_peer(d, session_attrs(&s, &ctl)))
}
