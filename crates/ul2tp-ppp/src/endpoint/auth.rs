//! The authentication phase (docs/reference/rfc.md §4.7–§4.9): PAP, CHAP-MD5 and MS-CHAPv2 as
//! authenticator and as peer, with their retransmission and give-up timers.

use rand::RngCore;
use ul2tp_wire::ppp::proto;

use super::{Endpoint, Phase};
use crate::event::AuthRequest;
use crate::mschapv2;
use crate::packet::{self, Chap, Packet, Pap, PppError};
use crate::{AuthProtocol, DownReason, Event, Timestamp};

/// State of the authentication phase, both directions (reset whenever LCP leaves Opened).
#[derive(Debug, Clone, Default)]
pub(super) struct Auth {
    server: Option<AuthProtocol>,
    server_done: bool,
    client: Option<AuthProtocol>,
    client_done: bool,
    /// Our side authenticating to the peer: retransmit / give-up timer and attempts left.
    pub(super) client_deadline: Option<Timestamp>,
    client_tries: u32,
    /// Our side authenticating the peer: timer and attempts left.
    pub(super) server_deadline: Option<Timestamp>,
    server_tries: u32,
    chal_id: u8,
    challenge: Vec<u8>,
    chal_result: Option<bool>,
    pap_id: u8,
    /// Identifier of the last PAP Request received (the verdict answers it).
    pap_rx_id: u8,
    /// Peer side of MS-CHAPv2: the authenticator response we expect in Success.
    ms_expected: Option<String>,
    /// Peer side: (identifier, challenge, response value) of the last Challenge answered, so a
    /// retransmitted Challenge gets the identical Response.
    last_response: Option<(u8, Vec<u8>, Vec<u8>)>,
    /// Authenticator side with `external_auth`: the request the owner is checking (protocol,
    /// peer name); nothing is answered until its verdict.
    pending: Option<(AuthProtocol, Vec<u8>)>,
    /// The answer to the owner's verdict (code, body), repeated to retransmitted requests.
    last_reply: Option<(u8, Vec<u8>)>,
}

impl Endpoint {
    pub(super) fn start_auth(&mut self, now: Timestamp) {
        self.auth = Auth {
            server: self.lcp_acked.auth,
            client: self.lcp_peer.auth,
            client_tries: self.config.fsm.max_configure,
            server_tries: self.config.fsm.max_configure,
            ..Auth::default()
        };
        if self.auth.server.is_none() && self.auth.client.is_none() {
            self.enter_network(now);
            return;
        }
        self.phase = Phase::Authenticate;
        let wait = Some(now.plus_micros(self.config.auth_timeout_us));
        match self.auth.client {
            Some(AuthProtocol::Pap) => self.send_pap_request(now),
            Some(_) => self.auth.client_deadline = wait,
            None => {}
        }
        match self.auth.server {
            Some(AuthProtocol::Pap) => self.auth.server_deadline = wait,
            Some(_) => self.send_challenge(now),
            None => {}
        }
    }

    fn send_pap_request(&mut self, now: Timestamp) {
        let Some((user, secret)) = self.config.user.clone() else {
            return;
        };
        self.auth.pap_id = self.auth.pap_id.wrapping_add(1);
        let body = Pap::Request {
            peer_id: &user,
            password: &secret,
        }
        .emit_body();
        self.send(proto::PAP, 1, self.auth.pap_id, &body);
        self.auth.client_tries = self.auth.client_tries.saturating_sub(1);
        self.auth.client_deadline = Some(now.plus_micros(self.config.fsm.restart_us));
    }

    fn send_challenge(&mut self, now: Timestamp) {
        if self.auth.challenge.is_empty() || self.auth.chal_result.is_some() {
            let mut c = vec![0u8; 16];
            self.rng.fill_bytes(&mut c);
            self.auth.challenge = c;
            self.auth.chal_id = self.auth.chal_id.wrapping_add(1);
            self.auth.chal_result = None;
        }
        let name = self.config.auth_name.clone();
        let body = Chap::Challenge {
            value: &self.auth.challenge,
            name: &name,
        }
        .emit_body();
        self.send(proto::CHAP, 1, self.auth.chal_id, &body);
        self.auth.server_tries = self.auth.server_tries.saturating_sub(1);
        self.auth.server_deadline = Some(now.plus_micros(self.config.fsm.restart_us));
    }

    /// Our authentication to the peer timed out: retransmit or give up.
    pub(super) fn client_auth_timeout(&mut self, now: Timestamp) {
        if self.phase != Phase::Authenticate || self.auth.client_done {
            return;
        }
        if self.auth.client_tries == 0 {
            self.close_link(now, DownReason::AuthFailed);
            return;
        }
        match (
            self.auth.client,
            self.auth.last_response.clone(),
            self.config.user.clone(),
        ) {
            (Some(AuthProtocol::Pap), _, _) => self.send_pap_request(now),
            (Some(_), Some((id, _, resp)), Some((user, _))) => {
                let body = Chap::Response {
                    value: &resp,
                    name: &user,
                }
                .emit_body();
                self.send(proto::CHAP, 2, id, &body);
                self.auth.client_tries -= 1;
                self.auth.client_deadline = Some(now.plus_micros(self.config.fsm.restart_us));
            }
            // No Challenge ever arrived.
            _ => self.close_link(now, DownReason::AuthFailed),
        }
    }

    /// The peer did not authenticate in time: re-challenge or give up.
    pub(super) fn server_auth_timeout(&mut self, now: Timestamp) {
        if self.phase != Phase::Authenticate || self.auth.server_done {
            return;
        }
        let chap = matches!(
            self.auth.server,
            Some(AuthProtocol::ChapMd5 | AuthProtocol::MsChapV2)
        );
        if chap && self.auth.server_tries > 0 {
            self.send_challenge(now);
        } else {
            self.close_link(now, DownReason::AuthFailed);
        }
    }

    fn check_auth_done(&mut self, now: Timestamp) {
        let s = self.auth.server.is_none() || self.auth.server_done;
        let c = self.auth.client.is_none() || self.auth.client_done;
        if s && c && self.phase == Phase::Authenticate {
            self.enter_network(now);
        }
    }

    fn verify(&self, name: &[u8], check: impl FnOnce(&[u8]) -> bool) -> bool {
        match self.credentials.as_ref().and_then(|c| c.secret(name)) {
            Some(secret) => check(&secret),
            None => false,
        }
    }

    pub(super) fn rx_pap(&mut self, now: Timestamp, p: &Packet<'_>) -> Result<(), PppError> {
        match Pap::parse(p.code, p.data)? {
            Pap::Request { peer_id, password } => {
                if self.auth.server != Some(AuthProtocol::Pap) {
                    return Err(PppError::NotUp);
                }
                if self.config.external_auth {
                    self.auth.pap_rx_id = p.identifier;
                    let request = AuthRequest::Pap {
                        peer_name: peer_id.to_vec(),
                        password: password.to_vec(),
                    };
                    self.defer(proto::PAP, p.identifier, AuthProtocol::Pap, request);
                    return Ok(());
                }
                let ok = self.verify(peer_id, |s| ct_eq(s, password));
                let reply = if ok {
                    Pap::Ack { message: b"" }
                } else {
                    Pap::Nak {
                        message: b"authentication failed",
                    }
                };
                self.send(proto::PAP, reply.code(), p.identifier, &reply.emit_body());
                if ok && !self.auth.server_done {
                    self.auth.server_done = true;
                    self.auth.server_deadline = None;
                    self.events.push_back(Event::AuthSuccess {
                        peer_name: peer_id.to_vec(),
                    });
                    self.check_auth_done(now);
                } else if !ok {
                    self.events.push_back(Event::AuthFailure {
                        peer_name: peer_id.to_vec(),
                    });
                    self.close_link(now, DownReason::AuthFailed);
                }
            }
            Pap::Ack { .. } => {
                if self.auth.client != Some(AuthProtocol::Pap)
                    || self.auth.client_done
                    || p.identifier != self.auth.pap_id
                {
                    return Err(PppError::BadBody);
                }
                self.auth.client_done = true;
                self.auth.client_deadline = None;
                self.events.push_back(Event::Authenticated);
                self.check_auth_done(now);
            }
            Pap::Nak { .. } => {
                if self.auth.client != Some(AuthProtocol::Pap) || p.identifier != self.auth.pap_id {
                    return Err(PppError::BadBody);
                }
                self.events.push_back(Event::AuthRejected);
                self.close_link(now, DownReason::AuthFailed);
            }
        }
        Ok(())
    }

    pub(super) fn rx_chap(&mut self, now: Timestamp, p: &Packet<'_>) -> Result<(), PppError> {
        let is_chap = |a: Option<AuthProtocol>| {
            matches!(a, Some(AuthProtocol::ChapMd5 | AuthProtocol::MsChapV2))
        };
        match Chap::parse(p.code, p.data)? {
            Chap::Challenge { value, .. } => {
                if !is_chap(self.auth.client) {
                    return Err(PppError::NotUp);
                }
                let Some((user, secret)) = self.config.user.clone() else {
                    return Err(PppError::NotUp);
                };
                let cached = match &self.auth.last_response {
                    Some((id, ch, r)) if *id == p.identifier && ch.as_slice() == value => {
                        Some(r.clone())
                    }
                    _ => None,
                };
                let resp: Vec<u8> = if let Some(r) = cached {
                    r
                } else if self.auth.client == Some(AuthProtocol::MsChapV2) {
                    // RFC 2759 §4: PeerChallenge ‖ 8 reserved ‖ NT-Response ‖ Flags.
                    let auth_ch: [u8; 16] = value.try_into().map_err(|_| PppError::BadBody)?;
                    let mut peer_ch = [0u8; 16];
                    self.rng.fill_bytes(&mut peer_ch);
                    let pw = String::from_utf8_lossy(&secret);
                    let nt = mschapv2::nt_response(&auth_ch, &peer_ch, &user, &pw);
                    self.auth.ms_expected = Some(mschapv2::authenticator_response(
                        &pw, &nt, &peer_ch, &auth_ch, &user,
                    ));
                    let mut v = peer_ch.to_vec();
                    v.extend_from_slice(&[0; 8]);
                    v.extend_from_slice(&nt);
                    v.push(0);
                    v
                } else {
                    packet::chap_md5_response(p.identifier, &secret, value).to_vec()
                };
                self.auth.last_response = Some((p.identifier, value.to_vec(), resp.clone()));
                let body = Chap::Response {
                    value: &resp,
                    name: &user,
                }
                .emit_body();
                self.send(proto::CHAP, 2, p.identifier, &body);
                if !self.auth.client_done {
                    // A lost Success/Failure is recovered by repeating the Response: the
                    // authenticator must answer it again with the same code (RFC 1994 §4.2).
                    self.auth.client_deadline = Some(now.plus_micros(self.config.fsm.restart_us));
                }
            }
            Chap::Response { value, name } => {
                if !is_chap(self.auth.server) || p.identifier != self.auth.chal_id {
                    return Err(PppError::BadBody);
                }
                let (id, ch) = (self.auth.chal_id, self.auth.challenge.clone());
                if self.config.external_auth {
                    let (peer_name, challenge, response) = (name.to_vec(), ch, value.to_vec());
                    let (protocol, request) = if self.auth.server == Some(AuthProtocol::MsChapV2) {
                        let r = AuthRequest::MsChapV2 {
                            peer_name,
                            identifier: id,
                            challenge,
                            response,
                        };
                        (AuthProtocol::MsChapV2, r)
                    } else {
                        let r = AuthRequest::Chap {
                            peer_name,
                            identifier: id,
                            challenge,
                            response,
                        };
                        (AuthProtocol::ChapMd5, r)
                    };
                    self.defer(proto::CHAP, id, protocol, request);
                    return Ok(());
                }
                let (verdict, success, failure) =
                    if self.auth.server == Some(AuthProtocol::MsChapV2) {
                        let (ok, msg) = self.verify_mschapv2(name, &ch, value);
                        let hex: String = ch.iter().map(|b| format!("{b:02X}")).collect();
                        // RFC 2759 §6: E=691 authentication failure, no retry.
                        let fail = format!("E=691 R=0 C={hex} V=3 M=Access denied");
                        (ok, msg, fail.into_bytes())
                    } else {
                        let ok = self.verify(name, |s| {
                            ct_eq(&packet::chap_md5_response(id, s, &ch), value)
                        });
                        (ok, b"Access granted".to_vec(), b"Access denied".to_vec())
                    };
                // Repeated Responses to the current Identifier get the same answer (RFC 1994 §4.2).
                let ok = self.auth.chal_result.unwrap_or(verdict);
                let first = self.auth.chal_result.is_none();
                self.auth.chal_result = Some(ok);
                let reply = if ok {
                    Chap::Success { message: &success }
                } else {
                    Chap::Failure { message: &failure }
                };
                self.send(proto::CHAP, reply.code(), p.identifier, &reply.emit_body());
                if first && ok {
                    self.auth.server_done = true;
                    self.auth.server_deadline = None;
                    self.events.push_back(Event::AuthSuccess {
                        peer_name: name.to_vec(),
                    });
                    self.check_auth_done(now);
                } else if first {
                    self.events.push_back(Event::AuthFailure {
                        peer_name: name.to_vec(),
                    });
                    self.close_link(now, DownReason::AuthFailed);
                }
            }
            Chap::Success { message } => {
                if !is_chap(self.auth.client) || self.auth.client_done {
                    return Err(PppError::BadBody);
                }
                if self.auth.client == Some(AuthProtocol::MsChapV2) {
                    // The peer MUST verify the authenticator response (RFC 2759 §5).
                    let good = self
                        .auth
                        .ms_expected
                        .as_ref()
                        .is_some_and(|e| message.starts_with(e.as_bytes()));
                    if !good {
                        self.events.push_back(Event::AuthRejected);
                        self.close_link(now, DownReason::AuthFailed);
                        return Ok(());
                    }
                }
                self.auth.client_done = true;
                self.auth.client_deadline = None;
                self.events.push_back(Event::Authenticated);
                self.check_auth_done(now);
            }
            Chap::Failure { .. } => {
                if !is_chap(self.auth.client) {
                    return Err(PppError::BadBody);
                }
                self.events.push_back(Event::AuthRejected);
                self.close_link(now, DownReason::AuthFailed);
            }
        }
        Ok(())
    }

    /// `external_auth`: hand the request to the owner, once; a retransmitted request gets the
    /// verdict's answer again once there is one, and nothing while the owner is checking.
    fn defer(&mut self, protocol: u16, identifier: u8, auth: AuthProtocol, request: AuthRequest) {
        if let Some((code, body)) = self.auth.last_reply.clone() {
            self.send(protocol, code, identifier, &body);
            return;
        }
        if self.auth.pending.is_some() || self.auth.server_done {
            return;
        }
        // The owner answers within its own time limit: no re-challenge meanwhile.
        self.auth.server_deadline = None;
        self.auth.pending = Some((auth, request.peer_name().to_vec()));
        self.events.push_back(Event::AuthRequest(request));
    }

    /// The owner's verdict on the last [`Event::AuthRequest`] (`external_auth`): answers the
    /// peer (PAP Ack / Nak, CHAP Success / Failure with `message`; an empty `message` gets a
    /// default, for MS-CHAPv2 Failure the RFC 2759 §6 `E=691` one; an MS-CHAPv2 Success
    /// `message` must hold the `S=` authenticator response) and goes on as the endpoint's own
    /// check would: to the network phase, or the link closes. Ignored without a pending
    /// request.
    pub fn auth_verdict(&mut self, now: Timestamp, accept: bool, message: &[u8]) {
        let Some((auth, peer_name)) = self.auth.pending.take() else {
            return;
        };
        if self.phase != Phase::Authenticate {
            return;
        }
        let (protocol, identifier, reply) = match auth {
            AuthProtocol::Pap => {
                let message = if message.is_empty() && !accept {
                    &b"authentication failed"[..]
                } else {
                    message
                };
                let r = if accept {
                    Pap::Ack { message }
                } else {
                    Pap::Nak { message }
                };
                (proto::PAP, self.auth.pap_rx_id, (r.code(), r.emit_body()))
            }
            AuthProtocol::ChapMd5 | AuthProtocol::MsChapV2 => {
                let failure = if !message.is_empty() {
                    message.to_vec()
                } else if auth == AuthProtocol::MsChapV2 {
                    let hex: String = self
                        .auth
                        .challenge
                        .iter()
                        .map(|b| format!("{b:02X}"))
                        .collect();
                    format!("E=691 R=0 C={hex} V=3 M=Access denied").into_bytes()
                } else {
                    b"Access denied".to_vec()
                };
                let success = if message.is_empty() {
                    &b"Access granted"[..]
                } else {
                    message
                };
                let r = if accept {
                    Chap::Success { message: success }
                } else {
                    Chap::Failure { message: &failure }
                };
                self.auth.chal_result = Some(accept);
                (proto::CHAP, self.auth.chal_id, (r.code(), r.emit_body()))
            }
        };
        self.send(protocol, reply.0, identifier, &reply.1);
        self.auth.last_reply = Some(reply);
        if accept {
            self.auth.server_done = true;
            self.events.push_back(Event::AuthSuccess { peer_name });
            self.check_auth_done(now);
        } else {
            self.events.push_back(Event::AuthFailure { peer_name });
            self.close_link(now, DownReason::AuthFailed);
        }
    }

    /// Check an MS-CHAPv2 Response value; on success also the Success message
    /// (`S=<authenticator response> M=...`, RFC 2759 §5).
    fn verify_mschapv2(&self, name: &[u8], challenge: &[u8], value: &[u8]) -> (bool, Vec<u8>) {
        let (Ok(auth_ch), Some(peer_ch), Some(nt)) = (
            <[u8; 16]>::try_from(challenge),
            value.get(..16).and_then(|v| <[u8; 16]>::try_from(v).ok()),
            value.get(24..48).and_then(|v| <[u8; 24]>::try_from(v).ok()),
        ) else {
            return (false, Vec::new());
        };
        if value.len() != 49 {
            return (false, Vec::new());
        }
        let Some(secret) = self.credentials.as_ref().and_then(|c| c.secret(name)) else {
            return (false, Vec::new());
        };
        let pw = String::from_utf8_lossy(&secret);
        let expected = mschapv2::nt_response(&auth_ch, &peer_ch, name, &pw);
        if !ct_eq(&expected, &nt) {
            return (false, Vec::new());
        }
        let s = mschapv2::authenticator_response(&pw, &nt, &peer_ch, &auth_ch, name);
        (true, format!("{s} M=Access granted").into_bytes())
    }
}

/// Length-and-content comparison without early exit on the first differing octet.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
