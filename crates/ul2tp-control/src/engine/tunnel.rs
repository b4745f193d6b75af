//! The control-connection state machine (docs/reference/rfc.md §1.12, §2.10): SCCRQ / SCCRP /
//! SCCCN, v2 challenges and v3 nonces, StopCCN, and the hold-down.
//!
//! States: `WaitCtlReply` (we sent SCCRQ), `WaitCtlConn` (we answered an SCCRQ with SCCRP),
//! `Established`, `Closing` (we sent StopCCN and keep reliable delivery running until it is
//! acknowledged, retries run out or the hold-down expires) and `Held` (the peer sent StopCCN;
//! state is kept for the hold-down only to re-acknowledge retransmitted StopCCNs,
//! docs/reference/rfc.md §1.11).

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use rand::Rng;
use ul2tp_wire::avp::{AvpValue, ErrorCode, MessageType, PwType, StopCcnResult};
use ul2tp_wire::control::{Encap, Version};
use ul2tp_wire::digest;
use ul2tp_wire::message::{Message, MessageError, Reaction};

use super::message::{
    avp_value, new_msg, own_tunnel_id, parse, peer_tunnel_id, queue, result_avp, sender_session_id,
};
use super::session::{
    abort_session, find_session, on_session_msg, refuse_call, start_session, SState, Session,
};
use super::{Config, Ctx, DownReason, Event, TunnelInfo};
use crate::channel::ControlChannel;
use crate::Timestamp;

/// Where a control connection is (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TState {
    WaitCtlReply,
    WaitCtlConn,
    Established,
    Closing { until: Timestamp },
    Held { until: Timestamp },
}

/// One control connection: its reliable channel, what the peer told us, and its sessions.
#[derive(Debug)]
pub(super) struct Tunnel {
    pub(super) local_id: u32,
    pub(super) peer_id: u32,
    pub(super) peer: SocketAddr,
    /// UDP or L2TPv3/IP: how the peer is reached (one endpoint serves both transports).
    pub(super) encap: Encap,
    pub(super) version: Version,
    pub(super) cfg: Config,
    pub(super) state: TState,
    pub(super) chan: ControlChannel,
    pub(super) initiator: bool,
    pub(super) was_up: bool,
    pub(super) our_challenge: Option<Vec<u8>>,
    pub(super) tie_breaker: Option<[u8; 8]>,
    pub(super) auth: bool,
    pub(super) our_nonce: Vec<u8>,
    pub(super) peer_nonce: Vec<u8>,
    pub(super) peer_host_name: String,
    pub(super) peer_router_id: Option<u32>,
    pub(super) peer_pw_types: Vec<PwType>,
    pub(super) last_rx: Timestamp,
    /// Random extra idle time before a HELLO, redrawn after each one (RFC 3931 §4.4: HELLOs
    /// to the same peer MUST be jittered).
    pub(super) hello_jitter: Duration,
    pub(super) sessions: BTreeMap<u32, Session>,
    /// (Ns, session id) of the ICCN / OCCN messages waiting for their acknowledgement, in Ns
    /// order (the peer acknowledges in that order too).
    pub(super) connects: VecDeque<(u16, u32)>,
    /// A tunnel the peer opens that we refuse: the StopCCN answering its SCCRQ.
    pub(super) refusal: Option<Refusal>,
}

/// Why an SCCRQ is answered with StopCCN rather than SCCRP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// The selector matched no configuration.
    NoProfile,
    /// The peer holds `max_tunnels_per_peer` tunnels already.
    TooManyTunnels,
}

impl Tunnel {
    pub(super) fn secret(&self) -> Option<&[u8]> {
        self.cfg.secret.as_deref()
    }

    pub(super) fn hiding(&self) -> bool {
        self.cfg.hide_avps
            && self.cfg.secret.is_some()
            && (self.version == Version::V2 || self.auth)
    }

    pub(super) fn state_name(&self) -> &'static str {
        match self.state {
            TState::WaitCtlReply => "wait-ctl-reply",
            TState::WaitCtlConn => "wait-ctl-conn",
            TState::Established => "established",
            TState::Closing { .. } => "closing",
            TState::Held { .. } => "held",
        }
    }

    pub(super) fn is_dying(&self) -> bool {
        matches!(self.state, TState::Closing { .. } | TState::Held { .. })
    }
}

pub(super) fn send_sccrx(
    t: &mut Tunnel,
    ctx: &mut Ctx<'_>,
    mtype: MessageType,
    answer: Option<AvpValue>,
) {
    let cfg = &t.cfg;
    let host = AvpValue::HostName(cfg.host_name.as_bytes().to_vec());
    let d = new_msg(t, ctx, mtype, 0);
    let d = match t.version {
        Version::V2 => d
            .avp(AvpValue::ProtocolVersion {
                version: 1,
                revision: 0,
            })
            .avp(host)
            .avp(AvpValue::FramingCapabilities(cfg.framing_caps))
            .avp(AvpValue::BearerCapabilities(cfg.bearer_caps))
            .avp(own_tunnel_id(t)),
        Version::V3 => d
            .avp(host)
            .avp(AvpValue::RouterId(cfg.router_id))
            .avp(own_tunnel_id(t))
            .avp(AvpValue::PseudowireCapabilities(cfg.pw_types.clone()))
            .opt(
                t.auth
                    .then(|| AvpValue::CtrlMsgAuthNonce(t.our_nonce.clone())),
            ),
    };
    // Tie Breaker: v2 M=0, v3 M=1, the builder's defaults (docs/reference/rfc.md §1.4, §2.6).
    let d = d
        .avp(AvpValue::ReceiveWindowSize(cfg.rx_window.max(1)))
        .opt(
            t.tie_breaker
                .filter(|_| mtype == MessageType::Sccrq)
                .map(AvpValue::TieBreaker),
        )
        .opt(t.our_challenge.clone().map(AvpValue::Challenge))
        .opt(answer);
    let _ = queue(t, d);
}

/// Tear the tunnel down from our side: StopCCN, session/tunnel down events, hold-down.
pub(super) fn stop_tunnel(
    t: &mut Tunnel,
    ctx: &mut Ctx<'_>,
    result: StopCcnResult,
    error: Option<(ErrorCode, &str)>,
    reason: DownReason,
) {
    let d = new_msg(t, ctx, MessageType::StopCcn, 0)
        .avp(own_tunnel_id(t))
        .avp(result_avp(result.get(), error));
    // Messages that never went out are dropped and their Ns given back, so the StopCCN carries
    // the Ns the peer expects next. Messages already sent are still retransmitted: the peer
    // may hold them, and it delivers the StopCCN only after them (docs/reference/rfc.md §1.10).
    t.chan.drop_unsent();
    let _ = queue(t, d);
    down_all(t, ctx, reason);
    // docs/reference/rfc.md §1.11 / §2.9: keep delivering the StopCCN for a full retransmission cycle.
    t.state = TState::Closing {
        until: ctx.now + t.cfg.stop_hold,
    };
}

/// Emit SessionDown for every session and TunnelDown for the tunnel.
pub(super) fn down_all(t: &mut Tunnel, ctx: &mut Ctx<'_>, reason: DownReason) {
    for (sid, s) in std::mem::take(&mut t.sessions) {
        ctx.release_session_id(t.version, t.local_id, sid);
        ctx.events.push_back(Event::SessionDown {
            tunnel_id: t.local_id,
            session_id: sid,
            peer_session_id: s.peer_id,
            reason: DownReason::TunnelDown,
            was_up: s.state == SState::Established,
        });
    }
    ctx.events.push_back(Event::TunnelDown {
        tunnel_id: t.local_id,
        peer_tunnel_id: t.peer_id,
        reason,
        was_up: t.was_up,
        replaced_by: None,
    });
}

fn protocol_error(
    t: &mut Tunnel,
    ctx: &mut Ctx<'_>,
    result: StopCcnResult,
    error_code: Option<ErrorCode>,
    message: &str,
) {
    let reason = protocol_reason(result.get(), error_code, message);
    stop_tunnel(t, ctx, result, error_code.map(|e| (e, message)), reason);
}

/// Why we cleared a tunnel or session because of a protocol error: what we sent the peer.
pub(super) fn protocol_reason(
    result_code: u16,
    error_code: Option<ErrorCode>,
    message: &str,
) -> DownReason {
    DownReason::Protocol {
        result_code,
        error_code: error_code.map(ErrorCode::get),
        message: message.to_string(),
    }
}

/// Deliver one in-order message to the tunnel state machine.
pub(super) fn dispatch(t: &mut Tunnel, ctx: &mut Ctx<'_>, msg: &[u8]) {
    if t.is_dying() {
        // Only acknowledgements matter now (done by the channel).
        return;
    }
    // Framing errors were discarded on receipt, before sequencing.
    let Ok((m, rejected)) = parse(msg, t.version, t.secret()) else {
        return;
    };
    if let Some(e) = rejected {
        return on_rejected(t, ctx, &m, &e);
    }
    let Some(mtype) = m.message_type else {
        return;
    };
    match mtype {
        MessageType::Sccrq if t.state == TState::WaitCtlConn && !t.was_up && t.peer_id == 0 => {
            on_sccrq(t, ctx, &m)
        }
        MessageType::Sccrp if t.state == TState::WaitCtlReply => on_sccrp(t, ctx, &m),
        MessageType::Scccn if t.state == TState::WaitCtlConn && t.peer_id != 0 => {
            on_scccn(t, ctx, &m)
        }
        MessageType::Sccrq | MessageType::Sccrp | MessageType::Scccn => protocol_error(
            t,
            ctx,
            StopCcnResult::FsmError,
            None,
            "control message in wrong state",
        ),
        MessageType::StopCcn => {
            down_all(t, ctx, peer_reason(&m));
            t.chan.abandon();
            // docs/reference/rfc.md §1.11: keep state to re-acknowledge retransmitted StopCCNs.
            t.state = TState::Held {
                until: ctx.now + t.cfg.stop_hold,
            };
        }
        MessageType::Hello => {}
        _ if mtype.is_session_message() => {
            if t.state == TState::Established {
                on_session_msg(t, ctx, mtype, &m);
            }
        }
        _ => {
            // A message type the wire layer knows but the engine does not implement:
            // M=1 ⇒ clear the tunnel, M=0 ⇒ ignore (docs/reference/rfc.md §1.3).
            if m.avps.first().is_some_and(|a| a.mandatory) {
                protocol_error(
                    t,
                    ctx,
                    StopCcnResult::GeneralError,
                    Some(ErrorCode::BadValue),
                    "unsupported message type",
                );
            }
        }
    }
}

/// Apply the reaction the wire layer prescribes for a message that fails its RFC checks
/// (missing mandatory AVPs, unknown or malformed M=1 AVPs; docs/reference/rfc.md §1.3, §1.18, §2.6).
fn on_rejected(t: &mut Tunnel, ctx: &mut Ctx<'_>, m: &Message, e: &MessageError) {
    match e.reaction {
        Reaction::Discard | Reaction::Ignore => {}
        Reaction::StopCcn { result, error } => {
            if t.peer_id == 0 {
                // Answer to the id the peer assigned, if it told us.
                t.peer_id = peer_tunnel_id(t.version, m).unwrap_or(0);
            }
            protocol_error(t, ctx, result, Some(error), &e.error_message());
        }
        Reaction::Cdn { result, error } => {
            let error = Some(error);
            if matches!(m.message_type, Some(MessageType::Icrq | MessageType::Ocrq)) {
                if let Some(p) = sender_session_id(t.version, m).filter(|&p| p != 0) {
                    refuse_call(t, ctx, p, result, error);
                }
            } else if let Some(sid) = find_session(t, m) {
                abort_session(t, ctx, sid, result, error, &e.error_message());
            }
        }
    }
}

/// The reason a peer's StopCCN or CDN gives.
pub(super) fn peer_reason(m: &Message) -> DownReason {
    match m.result_code() {
        Some(rc) => DownReason::Peer {
            result_code: rc.result,
            error_code: rc.error.map(ErrorCode::get),
            message: rc.message_str().unwrap_or_default(),
        },
        None => DownReason::Peer {
            result_code: 0,
            error_code: None,
            message: String::new(),
        },
    }
}

/// SCCRQ and SCCRP: read the peer's parameters and (v3) its nonce; a peer that authenticates
/// must be matched by us and vice versa (docs/reference/rfc.md §2.8). False if the tunnel was torn down.
fn accept_peer_start(t: &mut Tunnel, ctx: &mut Ctx<'_>, m: &Message) -> bool {
    if !read_peer_params(t, m) {
        protocol_error(
            t,
            ctx,
            StopCcnResult::GeneralError,
            Some(ErrorCode::BadValue),
            "lacks a mandatory AVP or has an id of 0",
        );
        return false;
    }
    if t.version == Version::V3 {
        match (t.auth, m.nonce()) {
            (true, Some(n)) => t.peer_nonce = n.to_vec(),
            (false, None) => {}
            _ => {
                // The two sides disagree on authentication: the StopCCN goes unsigned.
                t.auth = false;
                stop_auth(t, ctx);
                return false;
            }
        }
    }
    true
}

/// Our Challenge Response to the peer's Challenge, if it sent one (docs/reference/rfc.md §1.9); `Err` if
/// we cannot or will not answer it.
fn answer_challenge(
    t: &Tunnel,
    m: &Message,
    carried_in: MessageType,
) -> Result<Option<AvpValue>, ()> {
    let Some(ch) = m.challenge() else {
        return Ok(None);
    };
    match (t.secret(), t.cfg.answer_challenge) {
        (Some(s), true) => Ok(Some(AvpValue::ChallengeResponse(
            digest::challenge_response(carried_in, s, ch),
        ))),
        _ => Err(()),
    }
}

/// Whether the peer answered our Challenge, if we sent one (docs/reference/rfc.md §1.9).
fn challenge_answered(t: &Tunnel, m: &Message, carried_in: MessageType) -> bool {
    match (&t.our_challenge, t.secret()) {
        (Some(ch), Some(s)) => m
            .challenge_response()
            .is_some_and(|r| digest::verify_challenge_response(carried_in, s, ch, r)),
        _ => true,
    }
}

fn on_sccrq(t: &mut Tunnel, ctx: &mut Ctx<'_>, m: &Message) {
    if !accept_peer_start(t, ctx, m) {
        return;
    }
    match t.refusal {
        Some(Refusal::NoProfile) => {
            return protocol_error(
                t,
                ctx,
                StopCcnResult::GeneralError,
                Some(ErrorCode::NoError),
                "no profile admits this peer",
            )
        }
        Some(Refusal::TooManyTunnels) => {
            return protocol_error(
                t,
                ctx,
                StopCcnResult::GeneralError,
                Some(ErrorCode::InsufficientResources),
                "too many tunnels from this peer",
            )
        }
        None => {}
    }
    let Ok(answer) = answer_challenge(t, m, MessageType::Sccrp) else {
        return stop_auth(t, ctx);
    };
    if t.version == Version::V2 && t.cfg.send_challenge && t.cfg.secret.is_some() {
        t.our_challenge = Some(ctx.random_bytes(16));
    }
    send_sccrx(t, ctx, MessageType::Sccrp, answer);
}

fn stop_auth(t: &mut Tunnel, ctx: &mut Ctx<'_>) {
    stop_tunnel(
        t,
        ctx,
        StopCcnResult::NotAuthorized,
        None,
        DownReason::AuthFailed,
    );
}

/// Read the peer's SCCRQ/SCCRP parameters; false if a mandatory one is missing. (The wire
/// layer already insisted on the AVPs RFC 2661 §6 / RFC 3931 §6 require.)
fn read_peer_params(t: &mut Tunnel, m: &Message) -> bool {
    let Some(peer_id) = peer_tunnel_id(t.version, m).filter(|&p| p != 0) else {
        return false;
    };
    let Some(host) = m.host_name().filter(|h| !h.is_empty()) else {
        return false;
    };
    if t.version == Version::V3 {
        let (Some(&rid), Some(caps)) = (
            avp_value!(m, RouterId),
            avp_value!(m, PseudowireCapabilities),
        ) else {
            return false;
        };
        t.peer_router_id = Some(rid);
        t.peer_pw_types = caps.clone();
    }
    t.peer_id = peer_id;
    t.peer_host_name = String::from_utf8_lossy(host).into_owned();
    // docs/reference/rfc.md §1.10: absent ⇒ 4.
    t.chan.set_peer_window(m.receive_window_size().unwrap_or(4));
    true
}

fn on_sccrp(t: &mut Tunnel, ctx: &mut Ctx<'_>, m: &Message) {
    if !accept_peer_start(t, ctx, m) {
        return;
    }
    if !challenge_answered(t, m, MessageType::Sccrp) {
        return stop_auth(t, ctx);
    }
    let Ok(answer) = answer_challenge(t, m, MessageType::Scccn) else {
        return stop_auth(t, ctx);
    };
    let d = new_msg(t, ctx, MessageType::Scccn, 0).opt(answer);
    queue(t, d);
    tunnel_up(t, ctx);
}

fn on_scccn(t: &mut Tunnel, ctx: &mut Ctx<'_>, m: &Message) {
    if !challenge_answered(t, m, MessageType::Scccn) {
        return stop_auth(t, ctx);
    }
    tunnel_up(t, ctx);
}

pub(super) fn info_of(t: &Tunnel) -> TunnelInfo {
    TunnelInfo {
        version: t.version,
        tunnel_id: t.local_id,
        peer_tunnel_id: t.peer_id,
        peer: t.peer,
        encap: t.encap,
        initiator: t.initiator,
        peer_host_name: t.peer_host_name.clone(),
        peer_router_id: t.peer_router_id,
        peer_rx_window: t.chan.peer_window(),
        peer_pw_types: t.peer_pw_types.clone(),
        profile: t.cfg.profile.clone(),
        // v2: a tunnel that came up with our Challenge outstanding had it answered.
        authenticated: t.auth || (t.version == Version::V2 && t.our_challenge.is_some()),
    }
}

/// Up to an eighth of the hello interval (docs/reference/rfc.md §2.9: jitter HELLOs).
pub(super) fn hello_jitter(ctx: &mut Ctx<'_>, interval: Duration) -> Duration {
    let max = u64::try_from(interval.as_micros() / 8).unwrap_or(u64::MAX);
    Duration::from_micros(ctx.rng.random_range(0..=max))
}

fn tunnel_up(t: &mut Tunnel, ctx: &mut Ctx<'_>) {
    t.state = TState::Established;
    t.hello_jitter = hello_jitter(ctx, t.cfg.hello_interval);
    t.was_up = true;
    t.last_rx = ctx.now;
    ctx.events.push_back(Event::TunnelUp(info_of(t)));
    let waiting: Vec<u32> = t
        .sessions
        .values()
        .filter(|s| s.state == SState::WaitTunnel)
        .map(|s| s.local_id)
        .collect();
    for sid in waiting {
        start_session(t, ctx, sid);
    }
}
