//! A control engine under test (the LNS) and the peer the fuzz input plays (the LAC).
//!
//! A real LAC engine brings the tunnel and its sessions up, so that the fuzz input starts
//! from an established control connection; the driver watches that exchange to learn the
//! ids, the next Ns in each direction and the v3 nonces, then silences the LAC and builds
//! the rest of the LAC's messages from the input.

use std::net::SocketAddr;
use std::time::Duration;

use arbitrary::Arbitrary;
use ul2tp_control::{
    CdnResult, Config, Encap, Endpoint, Event, SessionConfig, StopCcnResult, Timestamp, Version,
};
use ul2tp_wire::avp::{AvpValue, DigestType, MessageType};
use ul2tp_wire::control::{self as header, ControlHeader};
use ul2tp_wire::digest::{self, Nonces};
use ul2tp_wire::message::{Message, MessageBuilder};

use crate::addr;

const SECRET: &[u8] = b"fuzz shared secret";

/// An AVP as the input describes it (any type, flags and value; lengths are kept valid).
#[derive(Debug, Arbitrary)]
pub struct RawAvp {
    mandatory: bool,
    hidden: bool,
    vendor: bool,
    attr_type: u16,
    value: Vec<u8>,
}

/// What the peer, the clock or the local user does next.
#[derive(Debug, Arbitrary)]
pub enum Step {
    /// A control message from the LAC, with the tunnel id, Ns/Nr and digest the LNS expects;
    /// `session` picks one of the established sessions for the header (v2) or the session
    /// id AVPs (v3); `ns_skew` sends it with a wrong Ns instead.
    Message {
        message_type: u16,
        session: Option<u8>,
        avps: Vec<RawAvp>,
        ns_skew: i8,
    },
    /// A ZLB acknowledgement with the current Ns/Nr.
    Zlb,
    /// Arbitrary bytes from the LAC's address.
    Raw(Vec<u8>),
    /// Arbitrary bytes from some other address.
    Stranger(u8, Vec<u8>),
    /// Time passes (milliseconds).
    Wait(u16),
    /// The LNS's own user opens a session.
    OpenSession,
    /// The LNS's own user clears a session.
    CloseSession(u8),
    /// The LNS's own user clears the tunnel.
    CloseTunnel,
}

/// The engine under test and what the driver knows about the connection.
pub struct Duo {
    lns: Endpoint,
    now: Timestamp,
    version: Version,
    authenticated: bool,
    lns_tunnel_id: u32,
    /// (LAC session id, LNS session id) of every session up.
    sessions: Vec<(u32, u32)>,
    next_ns: u16,
    next_nr: u16,
    lac_nonce: Vec<u8>,
    lns_nonce: Vec<u8>,
}

fn endpoint(cfg: Config, n: u8) -> Endpoint {
    Endpoint::new(cfg, Encap::Udp, [n; 32])
}

fn lac_addr() -> SocketAddr {
    addr(1)
}

fn lns_addr() -> SocketAddr {
    addr(2)
}

/// What the driver learns from watching one side's datagrams.
#[derive(Default)]
struct Seen {
    last_ns: Option<u16>,
    nonce: Option<Vec<u8>>,
}

impl Seen {
    fn watch(&mut self, version: Version, bytes: &[u8]) {
        let Ok((h, _)) = ControlHeader::parse_any(bytes, Encap::Udp) else {
            return;
        };
        if !h.is_zlb() {
            self.last_ns = Some(h.ns);
        }
        if let Ok(m) = Message::parse(bytes, version, Some(SECRET)) {
            if let Some(n) = m.nonce() {
                self.nonce = Some(n.to_vec());
            }
        }
    }
}

impl Duo {
    /// Bring up a tunnel and `sessions` sessions between a LAC engine and the LNS engine;
    /// `None` if the configuration cannot come up (the input then tests nothing).
    pub fn establish(v3: bool, secret: bool, hide_avps: bool, sessions: usize) -> Option<Duo> {
        let version = if v3 { Version::V3 } else { Version::V2 };
        let cfg = |name: &str| Config {
            version,
            host_name: name.into(),
            secret: secret.then(|| SECRET.to_vec()),
            hide_avps: hide_avps && secret,
            send_challenge: secret,
            ..Config::default()
        };
        let mut lac = endpoint(cfg("lac"), 1);
        let mut lns = endpoint(cfg("lns"), 2);
        let mut now = Timestamp::ZERO;
        let lac_tid = lac.connect(now, lns_addr(), cfg("lac")).ok()?;
        let (mut seen_lac, mut seen_lns) = (Seen::default(), Seen::default());
        let mut lac_events = Vec::new();
        let mut opened = false;
        for _ in 0..10_000 {
            let mut moved = false;
            while let Some(t) = lac.poll_transmit() {
                seen_lac.watch(version, &t.bytes);
                lns.handle_datagram(now, lac_addr(), &t.bytes);
                moved = true;
            }
            while let Some(t) = lns.poll_transmit() {
                seen_lns.watch(version, &t.bytes);
                lac.handle_datagram(now, lns_addr(), &t.bytes);
                moved = true;
            }
            while let Some(e) = lac.poll_event() {
                if matches!(e, Event::TunnelUp(_)) && !opened {
                    opened = true;
                    for _ in 0..sessions {
                        lac.open_session(now, lac_tid, SessionConfig::default())
                            .ok()?;
                    }
                }
                lac_events.push(e);
            }
            while lns.poll_event().is_some() {}
            let up: Vec<(u32, u32)> = lac_events
                .iter()
                .filter_map(|e| match e {
                    Event::SessionUp(s) => Some((s.session_id, s.peer_session_id)),
                    _ => None,
                })
                .collect();
            if moved {
                continue;
            }
            if opened && up.len() == sessions {
                let info = lac.tunnel_info(lac_tid)?;
                return Some(Duo {
                    lns,
                    now,
                    version,
                    authenticated: info.authenticated,
                    lns_tunnel_id: info.peer_tunnel_id,
                    sessions: up,
                    next_ns: seen_lac.last_ns.map_or(0, |n| n.wrapping_add(1)),
                    next_nr: seen_lns.last_ns.map_or(0, |n| n.wrapping_add(1)),
                    lac_nonce: seen_lac.nonce.unwrap_or_default(),
                    lns_nonce: seen_lns.nonce.unwrap_or_default(),
                });
            }
            // Nothing in flight: move the clock to the next timer of either side.
            let next = [lac.poll_timeout(), lns.poll_timeout()]
                .into_iter()
                .flatten()
                .min()?;
            if next > Timestamp::ZERO + Duration::from_secs(600) {
                return None;
            }
            now = now.max(next);
            lac.handle_timeout(now);
            lns.handle_timeout(now);
        }
        None
    }

    /// Deliver what the LNS sends to the (silent) LAC: only its Ns matters to the driver.
    fn drain(&mut self) {
        while let Some(t) = self.lns.poll_transmit() {
            if t.dst != lac_addr() {
                continue;
            }
            if let Ok((h, _)) = ControlHeader::parse_any(&t.bytes, Encap::Udp) {
                if !h.is_zlb() && h.ns == self.next_nr {
                    self.next_nr = self.next_nr.wrapping_add(1);
                }
            }
        }
        while let Some(e) = self.lns.poll_event() {
            if let Event::SessionUp(s) = e {
                self.sessions.push((s.peer_session_id, s.session_id));
            }
        }
    }

    fn message(&mut self, message_type: u16, session: Option<u8>, avps: &[RawAvp], ns_skew: i8) {
        let session = session.and_then(|i| {
            let n = self.sessions.len();
            (n > 0).then(|| self.sessions[usize::from(i) % n])
        });
        let v2_sid = match (self.version, session) {
            (Version::V2, Some((_, lns_sid))) => u16::try_from(lns_sid).unwrap_or(0),
            _ => 0,
        };
        let mut b = MessageBuilder::new(
            self.version,
            Encap::Udp,
            self.lns_tunnel_id,
            v2_sid,
            MessageType::from(message_type),
        );
        if self.authenticated {
            let Ok(with_digest) = b.digest(DigestType::HmacMd5) else {
                return;
            };
            b = with_digest;
        }
        if let (Version::V3, Some((lac_sid, lns_sid))) = (self.version, session) {
            let Ok(with_ids) = b
                .avp(AvpValue::LocalSessionId(lac_sid))
                .and_then(|b| b.avp(AvpValue::RemoteSessionId(lns_sid)))
            else {
                return;
            };
            b = with_ids;
        }
        for a in avps.iter().take(16) {
            let vendor = if a.vendor { 9 } else { 0 };
            let value = &a.value[..a.value.len().min(256)];
            if let Ok(next) = b
                .clone()
                .raw(a.mandatory, a.hidden, vendor, a.attr_type, value)
            {
                b = next;
            }
        }
        let Ok(mut bytes) = b.finish_unchecked() else {
            return;
        };
        let ns = self.next_ns.wrapping_add_signed(i16::from(ns_skew));
        if header::set_ns_nr(&mut bytes, ns, self.next_nr).is_err() {
            return;
        }
        if self.authenticated {
            let nonces = Nonces {
                sender: &self.lac_nonce,
                receiver: &self.lns_nonce,
            };
            let _ = digest::sign_message(&mut bytes, SECRET, Some(nonces));
        }
        self.lns.handle_datagram(self.now, lac_addr(), &bytes);
        if ns_skew == 0 {
            self.next_ns = self.next_ns.wrapping_add(1);
        }
    }

    /// Carry out one step of the input.
    pub fn step(&mut self, step: &Step) {
        match step {
            Step::Message {
                message_type,
                session,
                avps,
                ns_skew,
            } => self.message(*message_type, *session, avps, *ns_skew),
            Step::Zlb => {
                // Header only, even when v3 messages are authenticated.
                if let Ok(z) = header::zlb(
                    self.version,
                    Encap::Udp,
                    self.lns_tunnel_id,
                    0,
                    self.next_ns,
                    self.next_nr,
                ) {
                    self.lns.handle_datagram(self.now, lac_addr(), &z);
                }
            }
            Step::Raw(bytes) => self.lns.handle_datagram(self.now, lac_addr(), bytes),
            Step::Stranger(host, bytes) => {
                let from = SocketAddr::from(([198, 51, 100, *host], 1701));
                self.lns.handle_datagram(self.now, from, bytes);
            }
            Step::Wait(ms) => {
                self.now += Duration::from_millis(u64::from(*ms));
                self.lns.handle_timeout(self.now);
            }
            Step::OpenSession => {
                let _ =
                    self.lns
                        .open_session(self.now, self.lns_tunnel_id, SessionConfig::default());
            }
            Step::CloseSession(i) => {
                if !self.sessions.is_empty() {
                    let (_, lns_sid) = self.sessions[usize::from(*i) % self.sessions.len()];
                    let _ = self.lns.close_session(
                        self.now,
                        self.lns_tunnel_id,
                        lns_sid,
                        CdnResult::Administrative,
                    );
                }
            }
            Step::CloseTunnel => {
                let _ = self.lns.close_tunnel(
                    self.now,
                    self.lns_tunnel_id,
                    StopCcnResult::GeneralRequest,
                );
            }
        }
        self.drain();
    }

    /// The LAC is gone for good: within a few virtual hours the LNS must have torn every
    /// tunnel down, and no timer may stay due without being served.
    pub fn finish(mut self) {
        let deadline = self.now + Duration::from_secs(3 * 3600);
        let mut served = 0u32;
        while let Some(t) = self.lns.poll_timeout() {
            if t > deadline {
                break;
            }
            served += 1;
            assert!(served < 100_000, "timers never settle (next at {t:?})");
            self.now = self.now.max(t);
            self.lns.handle_timeout(self.now);
            while self.lns.poll_transmit().is_some() {}
            while self.lns.poll_event().is_some() {}
        }
        assert!(
            self.lns.tunnel_ids().is_empty(),
            "tunnels {:?} outlived a silent peer by hours",
            self.lns.tunnel_ids()
        );
    }
}
