//! The LAC side of RADIUS (RFC 2868 compulsory tunnelling): before a `[[lac]]` profile with
//! `radius = true` dials, an Access-Request for its user asks which LNS to use. The
//! Access-Accept's tunnel attributes, grouped by Tag, give the candidates: Tunnel-Type L2TP
//! (3) with a Tunnel-Server-Endpoint, optionally Tunnel-Password (the tunnel secret, RFC 2868
//! §3.5 salt encryption), Tunnel-Preference (lower first) and Tunnel-Assignment-Id.

use std::sync::atomic::Ordering::Relaxed;

use ul2tp_radius::dict::{self, attr, code};
use ul2tp_radius::{hide, Packet};

use super::Radius;

/// One tunnel an Access-Accept offers.
#[derive(Clone, PartialEq, Eq)]
pub struct TunnelChoice {
    /// Tunnel-Server-Endpoint as sent ("192.0.2.2", "[2001:db8::1]:1701", a name).
    pub endpoint: String,
    /// Tunnel-Password: the tunnel secret.
    pub password: Option<Vec<u8>>,
    /// Tunnel-Preference (absent: after every preference given).
    pub preference: u32,
    /// Tunnel-Assignment-Id.
    pub assignment_id: Option<String>,
}

impl std::fmt::Debug for TunnelChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelChoice")
            .field("endpoint", &self.endpoint)
            .field("password", &self.password.as_ref().map(|_| ".."))
            .field("preference", &self.preference)
            .field("assignment_id", &self.assignment_id)
            .finish()
    }
}

/// A tagged attribute's (tag, value): the first octet is a tag when it is 0x01-0x1F (RFC 2868
/// §3); for the integer attributes it always is one (0 = untagged).
fn tagged(v: &[u8], integer: bool) -> (u8, &[u8]) {
    match v.split_first() {
        Some((&t, rest)) if integer || (1..=0x1f).contains(&t) => (t, rest),
        _ => (0, v),
    }
}

/// A tagged integer: Tag, then a 3-octet value.
fn tagged_u32(v: &[u8]) -> Option<(u8, u32)> {
    let (t, rest) = tagged(v, true);
    let b: [u8; 3] = rest.try_into().ok()?;
    Some((t, u32::from_be_bytes([0, b[0], b[1], b[2]])))
}

/// The L2TP tunnels of an Access-Accept (`request_authenticator` decrypts the passwords),
/// most preferred first; among equal preferences, in tag order.
pub fn tunnels(
    reply: &Packet,
    secret: &[u8],
    request_authenticator: &[u8; 16],
) -> Vec<TunnelChoice> {
    let mut by_tag: std::collections::BTreeMap<u8, (Option<u32>, TunnelChoice)> =
        Default::default();
    let entry = |m: &mut std::collections::BTreeMap<u8, (Option<u32>, TunnelChoice)>, t: u8| {
        m.entry(t)
            .or_insert_with(|| {
                (
                    None,
                    TunnelChoice {
                        endpoint: String::new(),
                        password: None,
                        preference: u32::MAX,
                        assignment_id: None,
                    },
                )
            })
            .clone()
    };
    for v in reply.get_all(attr::TUNNEL_TYPE) {
        if let Some((t, ty)) = tagged_u32(v) {
            let mut e = entry(&mut by_tag, t);
            e.0 = Some(ty);
            by_tag.insert(t, e);
        }
    }
    for v in reply.get_all(attr::TUNNEL_SERVER_ENDPOINT) {
        let (t, text) = tagged(v, false);
        let mut e = entry(&mut by_tag, t);
        e.1.endpoint = String::from_utf8_lossy(text).trim().to_string();
        by_tag.insert(t, e);
    }
    for v in reply.get_all(attr::TUNNEL_PREFERENCE) {
        if let Some((t, p)) = tagged_u32(v) {
            let mut e = entry(&mut by_tag, t);
            e.1.preference = p;
            by_tag.insert(t, e);
        }
    }
    for v in reply.get_all(attr::TUNNEL_ASSIGNMENT_ID) {
        let (t, text) = tagged(v, false);
        let mut e = entry(&mut by_tag, t);
        e.1.assignment_id = Some(String::from_utf8_lossy(text).into_owned());
        by_tag.insert(t, e);
    }
    for v in reply.get_all(attr::TUNNEL_PASSWORD) {
        // Always a Tag octet, then Salt ‖ encrypted string.
        let Some((&t, rest)) = v.split_first() else {
            continue;
        };
        match hide::decrypt_salted(rest, secret, request_authenticator) {
            Some(p) => {
                let mut e = entry(&mut by_tag, t);
                e.1.password = Some(p);
                by_tag.insert(t, e);
            }
            None => tracing::warn!("RADIUS Tunnel-Password (tag {t}) does not decrypt: ignored"),
        }
    }
    let mut out: Vec<TunnelChoice> = by_tag
        .into_values()
        .filter(|(ty, c)| *ty == Some(dict::TUNNEL_TYPE_L2TP) && !c.endpoint.is_empty())
        .map(|(_, c)| c)
        .collect();
    out.sort_by_key(|c| c.preference);
    out
}

impl Radius {
    /// Ask which LNS carries `user`'s calls: an Access-Request (PAP with `password`); the
    /// tunnels of the Access-Accept, most preferred first (empty: it named none). An
    /// Access-Reject, or no answer, is the error.
    pub async fn tunnel_lookup(
        &self,
        user: &[u8],
        password: &[u8],
    ) -> Result<Vec<TunnelChoice>, String> {
        let cfg = self.settings.load_full();
        let mut authenticator = [0u8; 16];
        getrandom::fill(&mut authenticator)
            .map_err(|e| format!("no random Request Authenticator: {e}"))?;
        let mut p = Packet::new(code::ACCESS_REQUEST, authenticator[0]);
        p.authenticator = authenticator;
        p.add(attr::USER_NAME, user);
        p.add(
            attr::USER_PASSWORD,
            hide::hide_password(password, &cfg.secret, &authenticator),
        );
        p.add(attr::NAS_IDENTIFIER, cfg.nas_identifier.as_bytes());
        match cfg.nas_ip_address {
            Some(std::net::IpAddr::V4(a)) => {
                p.add_ipv4(attr::NAS_IP_ADDRESS, a);
            }
            Some(std::net::IpAddr::V6(a)) => {
                p.add(attr::NAS_IPV6_ADDRESS, a.octets());
            }
            None => {}
        }
        p.add_u32(attr::NAS_PORT_TYPE, dict::NAS_PORT_TYPE_VIRTUAL)
            .add_u32(attr::SERVICE_TYPE, dict::SERVICE_TYPE_FRAMED)
            .add_u32(attr::FRAMED_PROTOCOL, dict::FRAMED_PROTOCOL_PPP);
        let bytes = p
            .encode_access_request(&cfg.secret)
            .map_err(|e| format!("cannot build the Access-Request: {e}"))?;
        self.counters.requests.fetch_add(1, Relaxed);
        let Some(reply) = self
            .exchange(&cfg, cfg.auth_port, &bytes, &authenticator, true)
            .await
        else {
            self.counters.timeouts.fetch_add(1, Relaxed);
            return Err(format!(
                "no RADIUS server answered ({} tried)",
                cfg.servers.len()
            ));
        };
        match reply.code {
            code::ACCESS_ACCEPT => {
                self.counters.accepts.fetch_add(1, Relaxed);
                Ok(tunnels(&reply, &cfg.secret, &authenticator))
            }
            code::ACCESS_REJECT => {
                self.counters.rejects.fetch_add(1, Relaxed);
                Err(match reply.get_text(attr::REPLY_MESSAGE) {
                    Some(m) => format!("Access-Reject: {m:?}"),
                    None => "Access-Reject".into(),
                })
            }
            c => Err(format!("unsupported RADIUS reply code {c}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tags group the attributes; non-L2TP tunnels and ones without an endpoint are left out;
    /// preference orders them; the password decrypts.
    #[test]
    fn tunnels_by_tag_and_preference() {
        let (secret, ra) = (b"s3cret".as_slice(), [7u8; 16]);
        let mut p = Packet::new(code::ACCESS_ACCEPT, 1);
        let int = |t: u8, v: u32| {
            let b = v.to_be_bytes();
            vec![t, b[1], b[2], b[3]]
        };
        p.add(attr::TUNNEL_TYPE, int(1, 3))
            .add(attr::TUNNEL_SERVER_ENDPOINT, b"\x01192.0.2.9".to_vec())
            .add(attr::TUNNEL_PREFERENCE, int(1, 20))
            .add(attr::TUNNEL_TYPE, int(2, 3))
            .add(attr::TUNNEL_SERVER_ENDPOINT, b"\x02192.0.2.2".to_vec())
            .add(attr::TUNNEL_PREFERENCE, int(2, 10))
            .add(attr::TUNNEL_ASSIGNMENT_ID, b"\x02grp".to_vec())
            // PPTP (1): not ours.
            .add(attr::TUNNEL_TYPE, int(3, 1))
            .add(attr::TUNNEL_SERVER_ENDPOINT, b"\x03192.0.2.3".to_vec())
            // L2TP without an endpoint.
            .add(attr::TUNNEL_TYPE, int(4, 3));
        let mut pw = vec![2u8];
        pw.extend(hide::encrypt_salted(
            b"tunnel-pw",
            secret,
            &ra,
            [0x12, 0x34],
        ));
        p.add(attr::TUNNEL_PASSWORD, pw);
        let t = tunnels(&p, secret, &ra);
        assert_eq!(t.len(), 2, "{t:?}");
        assert_eq!(t[0].endpoint, "192.0.2.2");
        assert_eq!(t[0].password.as_deref(), Some(&b"tunnel-pw"[..]));
        assert_eq!(t[0].assignment_id.as_deref(), Some("grp"));
        assert_eq!(
            (t[1].endpoint.as_str(), t[1].password.as_ref()),
            ("192.0.2.9", None)
        );
        assert!(!format!("{t:?}").contains("tunnel-pw"));
    }
}
