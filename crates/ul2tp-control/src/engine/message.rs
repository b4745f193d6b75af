//! Building and reading control messages with `ul2tp-wire`: header, digest slot and Random
//! Vector, which AVPs are hidden (docs/reference/rfc.md §1.8), queueing on the reliable channel,
//! acknowledgements, and the AVP lookups both state machines share.

use ul2tp_wire::avp::{AvpValue, ErrorCode, MessageType, ResultCode};
use ul2tp_wire::control::{self, Encap, Version};
use ul2tp_wire::message::{BuildError, Message, MessageBuilder, MessageError, Reaction};

use super::tunnel::Tunnel;
use super::Ctx;

/// Header, Message Type and (v3 authentication) a zeroed Message Digest for the tunnel's peer.
/// Messages are built UDP-framed; [`emit`](super::emit) adds the L2TPv3/IP prefix.
fn builder(t: &Tunnel, mtype: MessageType, v2_session: u16) -> Result<MessageBuilder, BuildError> {
    let b = MessageBuilder::new(t.version, Encap::Udp, t.peer_id, v2_session, mtype);
    if t.auth {
        b.digest(t.cfg.digest.into())
    } else {
        Ok(b)
    }
}

/// Start a message for the tunnel's peer: header, Message Type, digest slot and, when hiding,
/// the Random Vector that the hidden AVPs after it use.
///
/// SCCRQ and SCCRP are never hidden: the peer may only pick the secret once it has read them
/// (by our Host Name), and xl2tpd, for one, loads its secret only after the message that
/// carries our Challenge. Every later message is hidden.
pub(super) fn new_msg(t: &Tunnel, ctx: &mut Ctx<'_>, mtype: MessageType, v2_session: u16) -> Draft {
    let mut b = builder(t, mtype, v2_session);
    let opening = matches!(mtype, MessageType::Sccrq | MessageType::Sccrp);
    let hide_with = t.secret().filter(|_| t.hiding() && !opening);
    if let Some(secret) = hide_with {
        let rv = AvpValue::RandomVector(ctx.random_bytes(16));
        b = b.and_then(|b| b.secret(secret).avp(rv));
    }
    Draft {
        b,
        hide: hide_with.is_some(),
    }
}

/// A control message under construction: the wire layer's builder and whether AVPs that may
/// be hidden are hidden (docs/reference/rfc.md §1.8). A build error is carried through to [`queue`].
pub(super) struct Draft {
    b: Result<MessageBuilder, BuildError>,
    hide: bool,
}

impl Draft {
    /// Append an AVP with the RFC's default M bit, hidden if hiding is on and allowed.
    pub(super) fn avp(self, value: AvpValue) -> Draft {
        let hide = self.hide && value.attr_type().may_hide();
        let b = self.b.and_then(|b| {
            if hide {
                b.avp_hidden(value, &[])
            } else {
                b.avp(value)
            }
        });
        Draft { b, hide: self.hide }
    }

    /// Append an AVP if there is one.
    pub(super) fn opt(self, value: Option<AvpValue>) -> Draft {
        match value {
            Some(v) => self.avp(v),
            None => self,
        }
    }
}

/// Check the message against the RFC's mandatory-AVP table and hand it to reliable delivery;
/// returns its Ns. Building only fails for values an AVP cannot carry, which `Config::check`
/// refuses up front.
pub(super) fn queue(t: &mut Tunnel, d: Draft) -> Option<u16> {
    let bytes = d.b.and_then(MessageBuilder::finish).ok()?;
    Some(t.chan.send(bytes))
}

/// Pure acknowledgement: ZLB (v2) / ACK message (v3, docs/reference/rfc.md §2.9). Its Ns is
/// that of the next message that will go on the wire, not counting messages still waiting for
/// the window (docs/reference/rfc.md §1.10).
pub(super) fn build_ack(t: &Tunnel) -> Option<Vec<u8>> {
    let (ns, nr) = (t.chan.ack_ns(), t.chan.nr());
    let mut b = match t.version {
        Version::V2 => control::zlb(t.version, Encap::Udp, t.peer_id, 0, ns, nr).ok()?,
        Version::V3 => builder(t, MessageType::Ack, 0).ok()?.finish().ok()?,
    };
    control::set_ns_nr(&mut b, ns, nr).ok()?;
    Some(b)
}

/// Our tunnel id as the AVP that announces it (v2 Assigned Tunnel ID, v3 Assigned CCID).
pub(super) fn own_tunnel_id(t: &Tunnel) -> AvpValue {
    match t.version {
        Version::V2 => AvpValue::AssignedTunnelId(t.local_id as u16),
        Version::V3 => AvpValue::AssignedConnectionId(t.local_id),
    }
}

/// Result Code AVP: result, and optionally an error code with a message (docs/reference/rfc.md §1.6).
pub(super) fn result_avp(result: u16, error: Option<(ErrorCode, &str)>) -> AvpValue {
    AvpValue::ResultCode(ResultCode {
        result,
        error: error.map(|(e, _)| e),
        message: error
            .map(|(_, m)| m.as_bytes().to_vec())
            .filter(|m| !m.is_empty()),
    })
}

/// Parse with the wire layer (RFC checks and hidden AVPs included). A message it rejects with
/// a teardown or ignore reaction still yields the AVPs decoded before the problem, so the
/// engine can address its StopCCN/CDN; framing errors ([`Reaction::Discard`]) give `Err`.
pub(super) fn parse(
    msg: &[u8],
    version: Version,
    secret: Option<&[u8]>,
) -> Result<(Message, Option<MessageError>), MessageError> {
    match Message::parse(msg, version, secret) {
        Ok(m) => Ok((m, None)),
        Err(e) => match (e.reaction, e.header) {
            (Reaction::Discard, _) | (_, None) => Err(e),
            (_, Some(header)) => {
                let partial = Message {
                    header,
                    encap: Encap::Udp,
                    message_type: e.message_type,
                    avps: e.avps.clone(),
                    ignored: Vec::new(),
                };
                Ok((partial, Some(e)))
            }
        },
    }
}

/// The value of the first IETF AVP whose `AttrType` and single-field `AvpValue` variant share
/// the name `$v`.
macro_rules! avp_value {
    ($m:expr, $v:ident) => {
        match $m.find(::ul2tp_wire::avp::AttrType::$v) {
            Some(::ul2tp_wire::avp::AvpValue::$v(x)) => Some(x),
            _ => None,
        }
    };
}
pub(super) use avp_value;

/// The peer's tunnel id from its SCCRQ/SCCRP/StopCCN.
pub(super) fn peer_tunnel_id(version: Version, m: &Message) -> Option<u32> {
    match version {
        Version::V2 => m.assigned_tunnel_id().map(u32::from),
        Version::V3 => m.assigned_connection_id(),
    }
}

/// The sender's session id (v2 Assigned Session ID, v3 Local Session ID).
pub(super) fn sender_session_id(version: Version, m: &Message) -> Option<u32> {
    match version {
        Version::V2 => m.assigned_session_id().map(u32::from),
        Version::V3 => m.local_session_id(),
    }
}
