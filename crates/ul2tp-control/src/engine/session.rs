//! The session state machines (docs/reference/rfc.md §1.13, §2.10): incoming and outgoing
//! calls as initiator and recipient, v3 pseudowire negotiation and session tie-break, CDN.
//!
//! States: `WaitTunnel` (opened before the tunnel was up), `WaitReply` (ICRQ/OCRQ sent),
//! `WaitConnect` (ICRP sent, or OCRP received), `WaitConnectAck` (ICCN/OCCN sent, not yet
//! acknowledged), `Established`. A session is removed as soon as it is cleared; the tunnel's
//! reliable channel still delivers the CDN.

use rand::RngCore;
use ul2tp_wire::avp::{
    AttrType, AvpValue, CdnResult, DataSequencing, ErrorCode, L2SpecType, MessageType,
    PppDisconnectCause, PwType, CIRCUIT_ACTIVE, CIRCUIT_NEW,
};
use ul2tp_wire::control::Version;
use ul2tp_wire::message::Message;

use super::message::{avp_value, new_msg, queue, result_avp, sender_session_id, Draft};
use super::tunnel::{peer_reason, protocol_reason, Tunnel};
use super::{CallType, Ctx, DownReason, Event, SessionConfig, SessionInfo};

/// Where a session is in its call (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SState {
    WaitTunnel,
    WaitReply,
    WaitConnect,
    /// We sent ICCN / OCCN with this Ns; the session is up once the peer acknowledges it.
    WaitConnectAck(u16),
    Established,
}

/// One session of a tunnel: our proposal, what the peer answered, and the call state.
#[derive(Debug, Clone)]
pub(super) struct Session {
    pub(super) local_id: u32,
    pub(super) peer_id: u32,
    pub(super) cfg: SessionConfig,
    pub(super) state: SState,
    pub(super) initiator: bool,
    pub(super) call_serial: u32,
    pub(super) our_cookie: Vec<u8>,
    pub(super) peer_cookie: Vec<u8>,
    pub(super) peer_l2spec: L2SpecType,
    pub(super) peer_seq: bool,
    pub(super) pw_type: PwType,
    /// v3 Session Tie Breaker we sent in ICRQ/OCRQ.
    pub(super) tie_breaker: Option<[u8; 8]>,
    /// v3 Circuit Status the peer sent in its ICRQ / ICRP / OCRQ / OCRP.
    pub(super) peer_circuit_status: Option<u16>,
}

impl Session {
    /// A session in `state` with ids and configuration; nothing learnt from the peer yet.
    pub(super) fn new(local_id: u32, peer_id: u32, cfg: SessionConfig, state: SState) -> Session {
        Session {
            local_id,
            peer_id,
            cfg,
            state,
            initiator: false,
            call_serial: 0,
            our_cookie: Vec::new(),
            peer_cookie: Vec::new(),
            peer_l2spec: L2SpecType::None,
            peer_seq: false,
            pw_type: PwType::from(0),
            tie_breaker: None,
            peer_circuit_status: None,
        }
    }
}

/// Send ICRQ / OCRQ for a session that was waiting for the tunnel.
pub(super) fn start_session(t: &mut Tunnel, ctx: &mut Ctx<'_>, sid: u32) {
    let Some(s) = t.sessions.get_mut(&sid) else {
        return;
    };
    s.state = SState::WaitReply;
    if t.version == Version::V3 && t.cfg.tie_breaker && !s.cfg.remote_end_id.is_empty() {
        let mut tb = [0u8; 8];
        ctx.rng.fill_bytes(&mut tb);
        s.tie_breaker = Some(tb);
    }
    let s = s.clone();
    let mtype = match s.cfg.call {
        CallType::Incoming => MessageType::Icrq,
        CallType::Outgoing => MessageType::Ocrq,
    };
    send_session_msg(t, ctx, mtype, &s, |d, v| match v {
        Version::V2 => {
            let d = d
                .avp(own_session_id(&s))
                .avp(AvpValue::CallSerialNumber(s.call_serial))
                .avp(AvpValue::BearerType(0));
            if mtype == MessageType::Ocrq {
                d.avp(AvpValue::MinimumBps(0))
                    .avp(AvpValue::MaximumBps(u32::MAX))
                    .avp(AvpValue::FramingType(1))
                    .avp(AvpValue::CalledNumber(s.cfg.remote_end_id.clone()))
            } else {
                // ICRQ: Calling and Called Number are optional (RFC 2661 §6.10).
                d.opt(
                    (!s.cfg.calling_number.is_empty())
                        .then(|| AvpValue::CallingNumber(s.cfg.calling_number.clone())),
                )
                .opt(
                    (!s.cfg.remote_end_id.is_empty())
                        .then(|| AvpValue::CalledNumber(s.cfg.remote_end_id.clone())),
                )
            }
        }
        Version::V3 => {
            let d = d
                .avp(AvpValue::CallSerialNumber(s.call_serial))
                .avp(AvpValue::PseudowireType(s.pw_type))
                .avp(AvpValue::RemoteEndId(s.cfg.remote_end_id.clone()))
                .avp(AvpValue::CircuitStatus(CIRCUIT_UP_NEW))
                .opt(s.tie_breaker.map(AvpValue::TieBreaker));
            v3_pw_avps(d, &s, true)
        }
    });
}

/// Build and queue a session message; `fill` adds the type-specific AVPs.
pub(super) fn send_session_msg(
    t: &mut Tunnel,
    ctx: &mut Ctx<'_>,
    mtype: MessageType,
    s: &Session,
    fill: impl FnOnce(Draft, Version) -> Draft,
) -> Option<u16> {
    let d = match t.version {
        Version::V2 => new_msg(t, ctx, mtype, s.peer_id as u16),
        Version::V3 => new_msg(t, ctx, mtype, 0)
            .avp(AvpValue::LocalSessionId(s.local_id))
            .avp(AvpValue::RemoteSessionId(s.peer_id)),
    };
    let d = fill(d, t.version);
    queue(t, d)
}

/// Our session id as the v2 Assigned Session ID AVP.
fn own_session_id(s: &Session) -> AvpValue {
    AvpValue::AssignedSessionId(s.local_id as u16)
}

/// Circuit Status of a new, active pseudowire: A and N bits (docs/reference/rfc.md §2.13, RFC 4719).
const CIRCUIT_UP_NEW: u16 = CIRCUIT_ACTIVE | CIRCUIT_NEW;

/// v3 pseudowire parameters: our cookie, the sublayer and sequencing we want to receive.
fn v3_pw_avps(d: Draft, s: &Session, with_cookie: bool) -> Draft {
    let cookie = (with_cookie && !s.our_cookie.is_empty())
        .then(|| AvpValue::AssignedCookie(s.our_cookie.clone()));
    let seq = if s.cfg.recv_seq {
        DataSequencing::All
    } else {
        DataSequencing::None
    };
    d.opt(cookie)
        .avp(AvpValue::L2SpecificSublayer(s.cfg.l2spec_type))
        .avp(AvpValue::DataSequencing(seq))
}

/// Find the local session a session message refers to.
pub(super) fn find_session(t: &Tunnel, m: &Message) -> Option<u32> {
    let ours = match t.version {
        Version::V2 => u32::from(m.header.session_id),
        Version::V3 => m.remote_session_id()?,
    };
    if ours != 0 {
        return t.sessions.contains_key(&ours).then_some(ours);
    }
    // A CDN before the peer learned our id: reverse lookup by the peer's own id.
    let peer = sender_session_id(t.version, m).filter(|&p| p != 0)?;
    t.sessions
        .values()
        .find(|s| s.peer_id == peer)
        .map(|s| s.local_id)
}

/// Send a CDN for a session (v2: with our Assigned Session ID, docs/reference/rfc.md §1.5),
/// with the RFC 3145 PPP Disconnect Cause Code when `cause` is given.
pub(super) fn send_cdn(
    t: &mut Tunnel,
    ctx: &mut Ctx<'_>,
    s: &Session,
    result: CdnResult,
    error: Option<(ErrorCode, &str)>,
    cause: Option<&PppDisconnectCause>,
) {
    send_session_msg(t, ctx, MessageType::Cdn, s, |d, v| {
        let d = d
            .avp(result_avp(result.get(), error))
            .opt(cause.map(|c| c.to_avp()));
        match v {
            Version::V2 => d.avp(own_session_id(s)),
            Version::V3 => d,
        }
    });
}

/// Remove a session; `cdn` = Some((result, Some((error, message)))) sends a CDN first.
pub(super) fn clear_session(
    t: &mut Tunnel,
    ctx: &mut Ctx<'_>,
    sid: u32,
    cdn: Option<(CdnResult, Option<(ErrorCode, &str)>)>,
    reason: DownReason,
) {
    let Some(s) = t.sessions.remove(&sid) else {
        return;
    };
    ctx.release_session_id(t.version, t.local_id, sid);
    if let Some((result, error)) = cdn {
        if s.state != SState::WaitTunnel {
            send_cdn(t, ctx, &s, result, error, None);
        }
    }
    ctx.events.push_back(Event::SessionDown {
        tunnel_id: t.local_id,
        session_id: sid,
        peer_session_id: s.peer_id,
        reason,
        was_up: s.state == SState::Established,
    });
}

/// Clear a session because of a protocol error of ours to report: CDN and SessionDown carry
/// the same result, error and message.
pub(super) fn abort_session(
    t: &mut Tunnel,
    ctx: &mut Ctx<'_>,
    sid: u32,
    result: CdnResult,
    error_code: Option<ErrorCode>,
    message: &str,
) {
    let reason = protocol_reason(result.get(), error_code, message);
    let cdn = (result, error_code.map(|e| (e, message)));
    clear_session(t, ctx, sid, Some(cdn), reason);
}

/// A session message that does not fit the session's state: CDN with the FSM result
/// (v2 has no dedicated code and uses "disconnected for the reason in Error Code").
fn session_fsm_error(
    t: &mut Tunnel,
    ctx: &mut Ctx<'_>,
    sid: u32,
    error: Option<ErrorCode>,
    message: &str,
) {
    let r = match t.version {
        Version::V2 => CdnResult::GeneralError,
        Version::V3 => CdnResult::FsmError,
    };
    abort_session(t, ctx, sid, r, error, message);
}

/// Refuse a call we have no session for: CDN carrying the peer's id.
pub(super) fn refuse_call(
    t: &mut Tunnel,
    ctx: &mut Ctx<'_>,
    peer_sid: u32,
    result: CdnResult,
    error: Option<ErrorCode>,
) {
    // CDN must carry a non-zero id of ours (Assigned Session ID / Local Session ID): use a
    // fresh one that is released at once.
    let local_id = ctx.alloc_session_id(t.version, t.local_id).unwrap_or(1);
    ctx.release_session_id(t.version, t.local_id, local_id);
    let s = Session::new(
        local_id,
        peer_sid,
        SessionConfig::default(),
        SState::WaitReply,
    );
    send_cdn(t, ctx, &s, result, error.map(|e| (e, "")), None);
}

pub(super) fn on_session_msg(t: &mut Tunnel, ctx: &mut Ctx<'_>, mtype: MessageType, m: &Message) {
    if matches!(mtype, MessageType::Icrq | MessageType::Ocrq) {
        return on_call_request(t, ctx, mtype, m);
    }
    // Messages for sessions we already cleared (their CDN is on its way) are ignored.
    let Some(sid) = find_session(t, m) else {
        return;
    };
    match mtype {
        MessageType::Cdn => clear_session(t, ctx, sid, None, peer_reason(m)),
        MessageType::Icrp | MessageType::Ocrp => on_call_reply(t, ctx, mtype, m, sid),
        MessageType::Iccn | MessageType::Occn => on_call_connected(t, ctx, mtype, m, sid),
        MessageType::Sli => {
            let accm = match m.find(AttrType::Accm) {
                Some(&AvpValue::Accm {
                    send_accm,
                    receive_accm,
                }) => Some((send_accm, receive_accm)),
                _ => None,
            };
            ctx.events.push_back(Event::LinkInfo {
                tunnel_id: t.local_id,
                session_id: sid,
                circuit_status: avp_value!(m, CircuitStatus).copied(),
                accm,
            });
        }
        MessageType::Wen => ctx.events.push_back(Event::WanError {
            tunnel_id: t.local_id,
            session_id: sid,
            errors: m
                .find(AttrType::CallErrors)
                .map(AvpValue::to_value_bytes)
                .unwrap_or_default(),
        }),
        _ => {}
    }
}

fn read_peer_session_params(t: &Tunnel, s: &mut Session, m: &Message) {
    if t.version == Version::V3 {
        if let Some(c) = avp_value!(m, AssignedCookie) {
            s.peer_cookie = c.clone();
        }
        if let Some(l) = avp_value!(m, L2SpecificSublayer) {
            s.peer_l2spec = *l;
        }
        if let Some(d) = avp_value!(m, DataSequencing) {
            s.peer_seq = *d != DataSequencing::None;
        }
        if let Some(c) = avp_value!(m, CircuitStatus) {
            s.peer_circuit_status = Some(*c);
        }
    } else if m.find(AttrType::SequencingRequired).is_some() {
        // docs/reference/rfc.md §1.16: Sequencing Required ⇒ sequence numbers in both directions.
        s.peer_seq = true;
        s.cfg.recv_seq = true;
    }
}

/// v3 session tie-break (docs/reference/rfc.md §2.10, §2.11): an ICRQ/OCRQ whose Remote End ID equals the
/// one of our own outstanding request of the same kind. Lower Tie Breaker wins; the winner
/// refuses the loser's request with CDN 13; the loser accepts the winner's request and learns
/// of its own defeat from the CDN. If neither side sent a value, or the values are equal, both
/// requests are torn down. Returns true if the peer's request was consumed here.
fn session_tie_break(
    t: &mut Tunnel,
    ctx: &mut Ctx<'_>,
    call: CallType,
    m: &Message,
    peer_sid: u32,
) -> bool {
    let Some(rei) = avp_value!(m, RemoteEndId).filter(|r| !r.is_empty()) else {
        return false;
    };
    let Some(ours) = t
        .sessions
        .values()
        .find(|s| {
            s.initiator
                && s.state == SState::WaitReply
                && s.cfg.call == call
                && &s.cfg.remote_end_id == rei
        })
        .map(|s| (s.local_id, s.tie_breaker))
    else {
        return false;
    };
    let theirs = m.tie_breaker().copied();
    let outcome = match (ours.1, theirs) {
        (Some(a), Some(b)) if a != b => Some(a < b),
        (Some(_), None) => Some(true),
        (None, Some(_)) => Some(false),
        _ => None,
    };
    match outcome {
        Some(true) => {
            refuse_call(t, ctx, peer_sid, CdnResult::LostTieBreaker, None);
            true
        }
        Some(false) => false,
        None => {
            let r = CdnResult::LostTieBreaker;
            abort_session(
                t,
                ctx,
                ours.0,
                r,
                None,
                "session tie-break without a winner",
            );
            refuse_call(t, ctx, peer_sid, CdnResult::LostTieBreaker, None);
            true
        }
    }
}

fn on_call_request(t: &mut Tunnel, ctx: &mut Ctx<'_>, mtype: MessageType, m: &Message) {
    let call = if mtype == MessageType::Ocrq {
        CallType::Outgoing
    } else {
        CallType::Incoming
    };
    let Some(peer_sid) = sender_session_id(t.version, m).filter(|&p| p != 0) else {
        return; // malformed: nobody to answer
    };
    if t.sessions
        .values()
        .any(|s| s.peer_id == peer_sid && !s.initiator)
    {
        return; // already have it
    }
    if t.version == Version::V3 && session_tie_break(t, ctx, call, m, peer_sid) {
        return;
    }
    let pw_type = match t.version {
        Version::V2 => PwType::Ppp,
        Version::V3 => match avp_value!(m, PseudowireType) {
            Some(p) => *p,
            None => {
                return refuse_call(
                    t,
                    ctx,
                    peer_sid,
                    CdnResult::GeneralError,
                    Some(ErrorCode::BadValue),
                )
            }
        },
    };
    if t.version == Version::V3 {
        if !t.cfg.pw_types.contains(&pw_type) {
            return refuse_call(t, ctx, peer_sid, CdnResult::UnsupportedPwType, None);
        }
        // docs/reference/rfc.md §2.12: sequencing requested without an L2-Specific Sublayer ⇒ CDN 15.
        let seq = avp_value!(m, DataSequencing).is_some_and(|d| *d != DataSequencing::None);
        let l2ss = avp_value!(m, L2SpecificSublayer).is_some_and(|l| *l != L2SpecType::None);
        if seq && !l2ss {
            return refuse_call(t, ctx, peer_sid, CdnResult::SequencingWithoutSublayer, None);
        }
    }
    if t.cfg.max_sessions > 0 && t.sessions.len() >= t.cfg.max_sessions {
        return refuse_call(t, ctx, peer_sid, CdnResult::TemporaryNoFacilities, None);
    }
    let Some(sid) = ctx.alloc_session_id(t.version, t.local_id) else {
        return refuse_call(t, ctx, peer_sid, CdnResult::TemporaryNoFacilities, None);
    };
    let mut cfg = t.cfg.session_defaults.clone();
    cfg.call = call;
    let remote_end_id = match t.version {
        Version::V2 => avp_value!(m, CalledNumber),
        Version::V3 => avp_value!(m, RemoteEndId),
    };
    if let Some(r) = remote_end_id {
        cfg.remote_end_id = r.clone();
    }
    if t.version == Version::V2 {
        if let Some(c) = avp_value!(m, CallingNumber) {
            cfg.calling_number = c.clone();
        }
    }
    let our_cookie = if t.version == Version::V3 {
        ctx.random_bytes(usize::from(cfg.cookie_len.min(8)))
    } else {
        Vec::new()
    };
    let mut s = Session {
        call_serial: avp_value!(m, CallSerialNumber).copied().unwrap_or(0),
        our_cookie,
        pw_type,
        ..Session::new(sid, peer_sid, cfg, SState::WaitConnect)
    };
    if t.version == Version::V2 {
        s.cfg.l2spec_type = L2SpecType::None;
        s.cfg.cookie_len = 0;
    }
    read_peer_session_params(t, &mut s, m);
    let reply = match call {
        CallType::Outgoing => MessageType::Ocrp,
        CallType::Incoming => MessageType::Icrp,
    };
    send_session_msg(t, ctx, reply, &s, |d, v| match v {
        Version::V2 => d.avp(own_session_id(&s)),
        Version::V3 => v3_pw_avps(d.avp(AvpValue::CircuitStatus(CIRCUIT_UP_NEW)), &s, true),
    });
    t.sessions.insert(sid, s.clone());
    if call == CallType::Outgoing {
        // We are the LAC of an outgoing call; the "bearer" answers at once: send OCCN.
        send_connected(t, ctx, MessageType::Occn, sid);
    }
}

/// Send ICCN / OCCN for a session. It comes up when the peer acknowledges the message: until
/// then the message may still wait for the window, or be lost, and the peer has no session.
fn send_connected(t: &mut Tunnel, ctx: &mut Ctx<'_>, mtype: MessageType, sid: u32) {
    let Some(s) = t.sessions.get(&sid).cloned() else {
        return;
    };
    let ns = send_session_msg(t, ctx, mtype, &s, |d, v| match v {
        Version::V2 => d
            .avp(AvpValue::TxConnectSpeed(100_000_000))
            .avp(AvpValue::FramingType(1))
            .opt(s.cfg.recv_seq.then_some(AvpValue::SequencingRequired)),
        Version::V3 => v3_pw_avps(d, &s, false),
    });
    match (ns, t.sessions.get_mut(&sid)) {
        (Some(ns), Some(s)) => {
            s.state = SState::WaitConnectAck(ns);
            t.connects.push_back((ns, sid));
        }
        // Not queued (cannot happen with a checked configuration): nothing to wait for.
        _ => session_up(t, ctx, sid),
    }
}

/// Sessions whose ICCN / OCCN the peer has acknowledged come up (sessions cleared meanwhile
/// are skipped).
pub(super) fn connects_acked(t: &mut Tunnel, ctx: &mut Ctx<'_>) {
    while let Some(&(ns, sid)) = t.connects.front() {
        if !t.chan.is_acked(ns) {
            break;
        }
        t.connects.pop_front();
        let waiting = t
            .sessions
            .get(&sid)
            .is_some_and(|s| s.state == SState::WaitConnectAck(ns));
        if waiting {
            session_up(t, ctx, sid);
        }
    }
}

fn on_call_reply(t: &mut Tunnel, ctx: &mut Ctx<'_>, mtype: MessageType, m: &Message, sid: u32) {
    let expect = match mtype {
        MessageType::Icrp => CallType::Incoming,
        _ => CallType::Outgoing,
    };
    let Some(s) = t.sessions.get(&sid) else {
        return;
    };
    if s.state != SState::WaitReply || !s.initiator || s.cfg.call != expect {
        return session_fsm_error(t, ctx, sid, None, "call reply in wrong state");
    }
    let Some(peer_sid) = sender_session_id(t.version, m).filter(|&p| p != 0) else {
        let e = Some(ErrorCode::BadValue);
        return session_fsm_error(t, ctx, sid, e, "reply without a session id");
    };
    let mut s = s.clone();
    s.peer_id = peer_sid;
    read_peer_session_params(t, &mut s, m);
    if expect == CallType::Incoming {
        t.sessions.insert(sid, s);
        send_connected(t, ctx, MessageType::Iccn, sid);
    } else {
        s.state = SState::WaitConnect;
        t.sessions.insert(sid, s);
    }
}

fn on_call_connected(t: &mut Tunnel, ctx: &mut Ctx<'_>, mtype: MessageType, m: &Message, sid: u32) {
    let Some(s) = t.sessions.get(&sid) else {
        return;
    };
    let ok = match mtype {
        MessageType::Iccn => !s.initiator && s.cfg.call == CallType::Incoming,
        _ => s.initiator && s.cfg.call == CallType::Outgoing,
    };
    if s.state != SState::WaitConnect || !ok {
        return session_fsm_error(t, ctx, sid, None, "connected message in wrong state");
    }
    let mut s = s.clone();
    read_peer_session_params(t, &mut s, m);
    t.sessions.insert(sid, s);
    session_up(t, ctx, sid);
}

fn session_up(t: &mut Tunnel, ctx: &mut Ctx<'_>, sid: u32) {
    let Some(s) = t.sessions.get_mut(&sid) else {
        return;
    };
    s.state = SState::Established;
    // v2: the LNS is the ICRQ recipient or the OCRQ sender (docs/reference/rfc.md §1.13).
    let lns_mode = match s.cfg.call {
        CallType::Incoming => !s.initiator,
        CallType::Outgoing => s.initiator,
    };
    let v2 = t.version == Version::V2;
    // v2: Sequencing Required from the LAC means sequencing in both directions (docs/reference/rfc.md
    // §1.16); v3: each side states what it wants to receive (docs/reference/rfc.md §2.12).
    let (send_seq, recv_seq) = if v2 {
        let both = s.peer_seq || s.cfg.recv_seq;
        (both, both)
    } else {
        (s.peer_seq, s.cfg.recv_seq)
    };
    ctx.events.push_back(Event::SessionUp(SessionInfo {
        version: t.version,
        tunnel_id: t.local_id,
        peer_tunnel_id: t.peer_id,
        session_id: s.local_id,
        peer_session_id: s.peer_id,
        peer: t.peer,
        pw_type: s.pw_type,
        cookie: s.peer_cookie.clone(),
        peer_cookie: s.our_cookie.clone(),
        l2spec_type: if v2 { L2SpecType::None } else { s.peer_l2spec },
        peer_l2spec_type: if v2 {
            L2SpecType::None
        } else {
            s.cfg.l2spec_type
        },
        send_seq,
        recv_seq,
        lns_mode,
        call: s.cfg.call,
        initiator: s.initiator,
        call_serial: s.call_serial,
        remote_end_id: s.cfg.remote_end_id.clone(),
        calling_number: s.cfg.calling_number.clone(),
        peer_circuit_status: s.peer_circuit_status,
    }));
}
