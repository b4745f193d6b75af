//! Dynamic authorization (RFC 5176): the Disconnect-Request / CoA-Request listener of
//! `[radius] dae_listen`. Requests from addresses that are not clients, with another code or
//! with a bad authenticator are dropped and counted; the others are answered ACK or NAK (with
//! an Error-Cause), and a retransmitted request gets the answer sent before.
//!
//! The request names its sessions by User-Name, Acct-Session-Id and/or Framed-IP-Address (all
//! given must match); a Disconnect ends them (Acct-Terminate-Cause Admin-Reset), a CoA changes
//! Session-Timeout / Idle-Timeout / Acct-Interim-Interval. The session tasks receive [`Command`]s on their channel.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Mutex, Weak};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use ul2tp_radius::dict::{attr, code, error_cause};
use ul2tp_radius::{packet, Packet};

use super::Radius;

/// Error-Cause NAS-Identification-Mismatch (RFC 5176 §3.6).
const NAS_IDENTIFICATION_MISMATCH: u32 = 403;

/// Answers remembered for retransmitted requests.
const REPLAY_CACHE: usize = 256;

/// What makes a request a retransmission of another: source, Identifier, Request
/// Authenticator.
type RequestKey = (SocketAddr, u8, [u8; 16]);

/// What a DAE request asks of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Disconnect-Request: end the session (Admin-Reset).
    Disconnect,
    /// CoA-Request: new Session-Timeout / Idle-Timeout / Acct-Interim-Interval, seconds from
    /// now (`Some(0)`: none).
    Change {
        /// Session-Timeout.
        session_timeout: Option<u32>,
        /// Idle-Timeout.
        idle_timeout: Option<u32>,
        /// Acct-Interim-Interval (held to at least 60 s, as from an Access-Accept).
        interim: Option<u32>,
    },
}

/// A live session, as the listener finds it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Acct-Session-Id.
    pub acct_session_id: String,
    /// When accounting started.
    pub started: std::time::Instant,
    /// User-Name.
    pub user: Vec<u8>,
    /// The peer's address (Framed-IP-Address).
    pub framed_ip: Ipv4Addr,
    /// The session task's channel.
    pub tx: mpsc::Sender<Command>,
}

/// The live sessions by (tunnel id, session id).
#[derive(Debug, Default)]
pub struct Sessions(Mutex<HashMap<(u32, u32), Entry>>);

impl Sessions {
    /// Register a session once its accounting has started.
    pub fn insert(&self, key: (u32, u32), e: Entry) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(key, e);
        }
    }

    /// The session (`tunnel_id`, `session_id`), if it is registered.
    pub fn get(&self, key: (u32, u32)) -> Option<Entry> {
        self.0.lock().ok()?.get(&key).cloned()
    }

    /// Whether no session is registered.
    pub fn is_empty(&self) -> bool {
        self.0.lock().map_or(true, |m| m.is_empty())
    }

    /// Forget a session.
    pub fn remove(&self, key: (u32, u32)) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(&key);
        }
    }

    /// The channels of the sessions that match every identifier given.
    fn find(
        &self,
        user: Option<&[u8]>,
        id: Option<&[u8]>,
        ip: Option<Ipv4Addr>,
    ) -> Vec<mpsc::Sender<Command>> {
        let Ok(m) = self.0.lock() else {
            return Vec::new();
        };
        m.values()
            .filter(|e| {
                id.is_none_or(|id| e.acct_session_id.as_bytes() == id)
                    && user.is_none_or(|u| e.user == u)
                    && ip.is_none_or(|ip| e.framed_ip == ip)
            })
            .map(|e| e.tx.clone())
            .collect()
    }
}

/// Attributes a Disconnect-Request may carry (RFC 5176 §3: every attribute is mandatory, an
/// unsupported one is NAKed): session and NAS identification and the ones that change
/// nothing.
const DISCONNECT_ATTRS: [u8; 9] = [
    attr::USER_NAME,
    attr::ACCT_SESSION_ID,
    attr::FRAMED_IP_ADDRESS,
    attr::NAS_IDENTIFIER,
    attr::NAS_IP_ADDRESS,
    attr::NAS_IPV6_ADDRESS,
    attr::MESSAGE_AUTHENTICATOR,
    attr::EVENT_TIMESTAMP,
    attr::PROXY_STATE,
];

/// Attributes a CoA-Request may carry: session identification, NAS identification, what we
/// can change live and the ones that change nothing.
const COA_ATTRS: [u8; 13] = [
    attr::USER_NAME,
    attr::ACCT_SESSION_ID,
    attr::FRAMED_IP_ADDRESS,
    attr::NAS_IDENTIFIER,
    attr::NAS_IP_ADDRESS,
    attr::NAS_IPV6_ADDRESS,
    attr::SESSION_TIMEOUT,
    attr::IDLE_TIMEOUT,
    attr::ACCT_INTERIM_INTERVAL,
    attr::MESSAGE_AUTHENTICATOR,
    attr::EVENT_TIMESTAMP,
    attr::STATE,
    attr::PROXY_STATE,
];

/// Serve DAE requests on `sock` until the client is gone. `clients` maps source addresses to
/// their secrets.
pub(super) async fn serve(r: Weak<Radius>, sock: UdpSocket) {
    let mut buf = vec![0u8; packet::MAX_LEN];
    let mut replies: VecDeque<(RequestKey, Vec<u8>)> = VecDeque::new();
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        let Some(radius) = r.upgrade() else { return };
        let c = &radius.counters;
        let req = &buf[..n];
        let clients = radius.dae_clients.load();
        let Some(secret) = clients.get(&from.ip()) else {
            c.dae_dropped.fetch_add(1, Relaxed);
            tracing::debug!("RADIUS DAE request from {from} dropped: not a client");
            continue;
        };
        if !matches!(
            req.first(),
            Some(&code::DISCONNECT_REQUEST | &code::COA_REQUEST)
        ) || !packet::verify_request(req, secret)
        {
            c.dae_dropped.fetch_add(1, Relaxed);
            tracing::warn!(
                "RADIUS DAE request from {from} dropped: not a Disconnect-/CoA-Request signed with its secret"
            );
            continue;
        }
        let Ok(p) = Packet::decode(req) else {
            c.dae_dropped.fetch_add(1, Relaxed);
            continue;
        };
        let key = (from, p.identifier, p.authenticator);
        if let Some((_, answer)) = replies.iter().find(|(k, _)| *k == key) {
            // A retransmission: the same answer again, nothing done twice.
            let _ = sock.send_to(answer, from).await;
            continue;
        }
        c.dae_requests.fetch_add(1, Relaxed);
        let outcome = handle(&radius, &p);
        let disconnect = p.code == code::DISCONNECT_REQUEST;
        let mut reply = match (&outcome, disconnect) {
            (Ok(()), true) => Packet::new(code::DISCONNECT_ACK, p.identifier),
            (Ok(()), false) => Packet::new(code::COA_ACK, p.identifier),
            (Err(_), true) => Packet::new(code::DISCONNECT_NAK, p.identifier),
            (Err(_), false) => Packet::new(code::COA_NAK, p.identifier),
        };
        match outcome {
            Ok(()) => {
                c.dae_acks.fetch_add(1, Relaxed);
            }
            Err(cause) => {
                c.dae_naks.fetch_add(1, Relaxed);
                reply.add_u32(attr::ERROR_CAUSE, cause);
            }
        }
        // Proxy-State back as it came, in order (RFC 2865 §5.33).
        for v in p.get_all(attr::PROXY_STATE) {
            reply.add(attr::PROXY_STATE, v.to_vec());
        }
        if p.get(attr::MESSAGE_AUTHENTICATOR).is_some() {
            reply.add(attr::MESSAGE_AUTHENTICATOR, [0u8; 16]);
        }
        let Ok(answer) = reply.encode_response(secret, &p.authenticator) else {
            continue;
        };
        tracing::info!(
            "RADIUS {} from {from}: {}",
            if disconnect {
                "Disconnect-Request"
            } else {
                "CoA-Request"
            },
            match outcome {
                Ok(()) => "ACK".to_string(),
                Err(c) => format!("NAK (Error-Cause {c})"),
            }
        );
        let _ = sock.send_to(&answer, from).await;
        if replies.len() == REPLAY_CACHE {
            replies.pop_front();
        }
        replies.push_back((key, answer));
    }
}

/// Carry out one verified request; `Err` is the Error-Cause of the NAK.
fn handle(radius: &Radius, p: &Packet) -> Result<(), u32> {
    let cfg = radius.settings.load();
    if let Some(id) = p.get(attr::NAS_IDENTIFIER) {
        if id != cfg.nas_identifier.as_bytes() {
            return Err(NAS_IDENTIFICATION_MISMATCH);
        }
    }
    if let (Some(ours), Some(asked)) = (cfg.nas_ip_address, p.get_ipv4(attr::NAS_IP_ADDRESS)) {
        if ours != IpAddr::V4(asked) {
            return Err(NAS_IDENTIFICATION_MISMATCH);
        }
    }
    let user = p.get(attr::USER_NAME);
    let id = p.get(attr::ACCT_SESSION_ID);
    let ip = p.get_ipv4(attr::FRAMED_IP_ADDRESS);
    if p.get(attr::FRAMED_IP_ADDRESS).is_some() && ip.is_none() {
        return Err(error_cause::INVALID_REQUEST);
    }
    if user.is_none() && id.is_none() && ip.is_none() {
        return Err(error_cause::MISSING_ATTRIBUTE);
    }
    // Service-Type (Authorize-Only, RFC 5176 §3.2): a service we do not offer.
    if p.get(attr::SERVICE_TYPE).is_some() {
        return Err(error_cause::UNSUPPORTED_SERVICE);
    }
    let command = if p.code == code::DISCONNECT_REQUEST {
        if p.attrs.iter().any(|a| !DISCONNECT_ATTRS.contains(&a.typ)) {
            return Err(error_cause::UNSUPPORTED_ATTRIBUTE);
        }
        Command::Disconnect
    } else {
        if p.attrs.iter().any(|a| !COA_ATTRS.contains(&a.typ)) {
            return Err(error_cause::UNSUPPORTED_ATTRIBUTE);
        }
        let bad = |t: u8| p.get(t).is_some() && p.get_u32(t).is_none();
        if [
            attr::SESSION_TIMEOUT,
            attr::IDLE_TIMEOUT,
            attr::ACCT_INTERIM_INTERVAL,
        ]
        .into_iter()
        .any(bad)
        {
            return Err(error_cause::INVALID_REQUEST);
        }
        Command::Change {
            session_timeout: p.get_u32(attr::SESSION_TIMEOUT),
            idle_timeout: p.get_u32(attr::IDLE_TIMEOUT),
            interim: p.get_u32(attr::ACCT_INTERIM_INTERVAL),
        }
    };
    let found = radius.sessions.find(user, id, ip);
    let delivered = found
        .iter()
        .filter(|tx| tx.try_send(command).is_ok())
        .count();
    if delivered == 0 {
        return Err(error_cause::SESSION_CONTEXT_NOT_FOUND);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(code: u8, attrs: &[(u8, &[u8])]) -> Packet {
        let mut p = Packet::new(code, 1);
        for (t, v) in attrs {
            p.add(*t, v.to_vec());
        }
        p
    }

    /// The NAK causes, and a request that matches reaches the session's channel.
    #[tokio::test]
    async fn requests_are_matched_or_naked_with_a_cause() {
        let cfg: super::super::RadiusConfig = toml::from_str(
            "server = \"127.0.0.1\"\nsecret = \"s\"\nnas_ip_address = \"192.0.2.2\"\n",
        )
        .unwrap();
        let r = Radius::start(&cfg, "nas-1").unwrap();
        let (tx, mut rx) = mpsc::channel(4);
        r.sessions.insert(
            (1, 2),
            Entry {
                acct_session_id: "A-1".into(),
                started: std::time::Instant::now(),
                user: b"alice".to_vec(),
                framed_ip: Ipv4Addr::new(10, 0, 0, 7),
                tx,
            },
        );
        let d = code::DISCONNECT_REQUEST;
        let c = code::COA_REQUEST;
        let cases: [(Packet, Result<(), u32>); 11] = [
            (
                // 31: Calling-Station-Id, an identification we do not match on.
                request(d, &[(attr::USER_NAME, b"alice"), (31, b"5551234")]),
                Err(error_cause::UNSUPPORTED_ATTRIBUTE),
            ),
            (
                // Service-Type Authorize-Only (17): not offered.
                request(
                    c,
                    &[
                        (attr::USER_NAME, b"alice"),
                        (attr::SERVICE_TYPE, &[0, 0, 0, 17]),
                    ],
                ),
                Err(error_cause::UNSUPPORTED_SERVICE),
            ),
            (
                // 97: Framed-IPv6-Prefix, fixed for the session's life.
                request(
                    c,
                    &[
                        (attr::USER_NAME, b"alice"),
                        (97, &[0, 64, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 0]),
                    ],
                ),
                Err(error_cause::UNSUPPORTED_ATTRIBUTE),
            ),
            (
                request(d, &[(attr::NAS_IDENTIFIER, b"other")]),
                Err(NAS_IDENTIFICATION_MISMATCH),
            ),
            (
                request(d, &[(attr::NAS_IP_ADDRESS, &[192, 0, 2, 9])]),
                Err(NAS_IDENTIFICATION_MISMATCH),
            ),
            (
                request(d, &[(attr::NAS_IDENTIFIER, b"nas-1")]),
                Err(error_cause::MISSING_ATTRIBUTE),
            ),
            (
                request(d, &[(attr::FRAMED_IP_ADDRESS, &[10, 0])]),
                Err(error_cause::INVALID_REQUEST),
            ),
            (
                // Both given: both must match.
                request(
                    d,
                    &[(attr::USER_NAME, b"alice"), (attr::ACCT_SESSION_ID, b"A-2")],
                ),
                Err(error_cause::SESSION_CONTEXT_NOT_FOUND),
            ),
            (
                // 11: Filter-Id, which the LNS cannot change live.
                request(c, &[(attr::USER_NAME, b"alice"), (11, b"x")]),
                Err(error_cause::UNSUPPORTED_ATTRIBUTE),
            ),
            (
                request(
                    c,
                    &[
                        (attr::FRAMED_IP_ADDRESS, &[10, 0, 0, 7]),
                        (attr::IDLE_TIMEOUT, &[0, 0, 1, 44]),
                    ],
                ),
                Ok(()),
            ),
            (
                request(
                    d,
                    &[
                        (attr::USER_NAME, b"alice"),
                        (attr::NAS_IP_ADDRESS, &[192, 0, 2, 2]),
                    ],
                ),
                Ok(()),
            ),
        ];
        for (p, want) in cases {
            assert_eq!(handle(&r, &p), want, "{p:?}");
        }
        assert_eq!(
            rx.try_recv().unwrap(),
            Command::Change {
                session_timeout: None,
                idle_timeout: Some(300),
                interim: None,
            }
        );
        assert_eq!(rx.try_recv().unwrap(), Command::Disconnect);
        assert!(rx.try_recv().is_err());
    }
}
