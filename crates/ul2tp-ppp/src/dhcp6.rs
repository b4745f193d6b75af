//! DHCPv6 prefix delegation on a PPP link (RFC 8415): the messages a delegating router (the
//! LNS) and a requesting router (the LAC) exchange for one IA_PD, as whole IPv6/UDP packets
//! (ports 546/547, checksum over the IPv6 pseudo-header).
//!
//! Only what prefix delegation needs: Solicit (with Rapid Commit), Advertise, Request, Renew,
//! Rebind, Reply and Release; the Client Identifier, Server Identifier, Elapsed Time, Status
//! Code, Rapid Commit, IA_PD and IA Prefix options. Other options are carried through
//! [`Message::options`] and ignored. Pure: no I/O; [`parse_udp`] and [`Message::decode`] never
//! panic and answer `None` for anything malformed.

use std::net::Ipv6Addr;

use crate::nd::{ipv6_header, upper_sum};

/// UDP port of DHCPv6 clients.
pub const CLIENT_PORT: u16 = 546;
/// UDP port of DHCPv6 servers.
pub const SERVER_PORT: u16 = 547;
/// All_DHCP_Relay_Agents_and_Servers (ff02::1:2).
pub const ALL_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);
const UDP: u8 = 17;

/// Message types (RFC 8415 §7.3).
pub mod kind {
    /// Solicit.
    pub const SOLICIT: u8 = 1;
    /// Advertise.
    pub const ADVERTISE: u8 = 2;
    /// Request.
    pub const REQUEST: u8 = 3;
    /// Renew.
    pub const RENEW: u8 = 5;
    /// Rebind.
    pub const REBIND: u8 = 6;
    /// Reply.
    pub const REPLY: u8 = 7;
    /// Release.
    pub const RELEASE: u8 = 8;
}

/// Option codes (RFC 8415 §21).
pub mod opt {
    /// Client Identifier (a DUID).
    pub const CLIENTID: u16 = 1;
    /// Server Identifier (a DUID).
    pub const SERVERID: u16 = 2;
    /// Elapsed Time.
    pub const ELAPSED_TIME: u16 = 8;
    /// Status Code.
    pub const STATUS_CODE: u16 = 13;
    /// Rapid Commit.
    pub const RAPID_COMMIT: u16 = 14;
    /// Identity Association for Prefix Delegation.
    pub const IA_PD: u16 = 25;
    /// IA Prefix (inside IA_PD).
    pub const IAPREFIX: u16 = 26;
}

/// Status Code NoPrefixAvail (RFC 8415 §21.13).
pub const NO_PREFIX_AVAIL: u16 = 6;

/// A DHCPv6 client/server message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Message type ([`kind`]).
    pub kind: u8,
    /// Transaction id.
    pub xid: [u8; 3],
    /// Options in order: (code, data).
    pub options: Vec<(u16, Vec<u8>)>,
}

impl Message {
    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        let mut m = vec![self.kind, self.xid[0], self.xid[1], self.xid[2]];
        for (code, data) in &self.options {
            push_option(&mut m, *code, data);
        }
        m
    }

    /// Parse a message; `None` when truncated or an option runs past the end.
    pub fn decode(b: &[u8]) -> Option<Message> {
        let (&k, rest) = b.split_first()?;
        let xid = [*rest.first()?, *rest.get(1)?, *rest.get(2)?];
        Some(Message {
            kind: k,
            xid,
            options: options(&rest[3..])?,
        })
    }

    /// The data of the first option `code`.
    pub fn option(&self, code: u16) -> Option<&[u8]> {
        self.options
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, d)| d.as_slice())
    }
}

fn push_option(m: &mut Vec<u8>, code: u16, data: &[u8]) {
    m.extend_from_slice(&code.to_be_bytes());
    m.extend_from_slice(&(data.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
    m.extend_from_slice(&data[..data.len().min(usize::from(u16::MAX))]);
}

fn options(mut b: &[u8]) -> Option<Vec<(u16, Vec<u8>)>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        if b.len() < 4 {
            return None;
        }
        let code = u16::from_be_bytes([b[0], b[1]]);
        let len = usize::from(u16::from_be_bytes([b[2], b[3]]));
        let data = b.get(4..4 + len)?;
        out.push((code, data.to_vec()));
        b = &b[4 + len..];
    }
    Some(out)
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// One delegated prefix (IA Prefix option, RFC 8415 §21.22).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IaPrefix {
    /// Preferred lifetime (s).
    pub preferred: u32,
    /// Valid lifetime (s).
    pub valid: u32,
    /// Prefix length.
    pub len: u8,
    /// The prefix.
    pub prefix: Ipv6Addr,
}

/// An IA_PD option (RFC 8415 §21.21).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IaPd {
    /// Identity association id, chosen by the client.
    pub iaid: u32,
    /// Renew time T1 (s).
    pub t1: u32,
    /// Rebind time T2 (s).
    pub t2: u32,
    /// Delegated prefixes.
    pub prefixes: Vec<IaPrefix>,
    /// A Status Code inside the IA_PD, if any.
    pub status: Option<u16>,
}

impl IaPd {
    /// The option data.
    pub fn encode(&self) -> Vec<u8> {
        let mut d = Vec::new();
        d.extend_from_slice(&self.iaid.to_be_bytes());
        d.extend_from_slice(&self.t1.to_be_bytes());
        d.extend_from_slice(&self.t2.to_be_bytes());
        for p in &self.prefixes {
            let mut o = Vec::with_capacity(25);
            o.extend_from_slice(&p.preferred.to_be_bytes());
            o.extend_from_slice(&p.valid.to_be_bytes());
            o.push(p.len);
            o.extend_from_slice(&p.prefix.octets());
            push_option(&mut d, opt::IAPREFIX, &o);
        }
        if let Some(s) = self.status {
            push_option(&mut d, opt::STATUS_CODE, &s.to_be_bytes());
        }
        d
    }

    /// Parse IA_PD option data; `None` when malformed.
    pub fn decode(d: &[u8]) -> Option<IaPd> {
        if d.len() < 12 {
            return None;
        }
        let mut ia = IaPd {
            iaid: be32(&d[0..4]),
            t1: be32(&d[4..8]),
            t2: be32(&d[8..12]),
            ..IaPd::default()
        };
        for (code, o) in options(&d[12..])? {
            match code {
                opt::IAPREFIX if o.len() >= 25 && o[8] <= 128 => {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(&o[9..25]);
                    ia.prefixes.push(IaPrefix {
                        preferred: be32(&o[0..4]),
                        valid: be32(&o[4..8]),
                        len: o[8],
                        prefix: Ipv6Addr::from(a),
                    });
                }
                opt::STATUS_CODE if o.len() >= 2 => {
                    ia.status = Some(u16::from_be_bytes([o[0], o[1]]));
                }
                _ => {}
            }
        }
        Some(ia)
    }
}

/// An IPv6/UDP packet from `src`:`sport` to `dst`:`dport` carrying `payload` (hop limit 1:
/// DHCPv6 stays on the link).
pub fn udp_packet(src: Ipv6Addr, dst: Ipv6Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = 8 + payload.len();
    let mut u = Vec::with_capacity(len);
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&(len as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    let mut sum = upper_sum(src, dst, UDP, &u);
    if sum == 0 {
        sum = 0xffff; // RFC 8200 §8.1: a zero checksum is sent as all ones
    }
    u[6..8].copy_from_slice(&sum.to_be_bytes());
    let mut p = ipv6_header(src, dst, UDP, 1, u.len());
    p.extend_from_slice(&u);
    p
}

/// A UDP datagram in an IPv6 packet (UDP right after the fixed header) with a valid
/// checksum: (source, destination, source port, destination port, payload).
pub fn parse_udp(p: &[u8]) -> Option<(Ipv6Addr, Ipv6Addr, u16, u16, &[u8])> {
    if p.len() < 48 || p[0] >> 4 != 6 || p[6] != UDP {
        return None;
    }
    let plen = usize::from(u16::from_be_bytes([p[4], p[5]]));
    let u = p.get(40..40 + plen)?;
    let ulen = usize::from(u16::from_be_bytes([*u.get(4)?, *u.get(5)?]));
    if ulen < 8 || ulen > u.len() {
        return None;
    }
    let u = &u[..ulen];
    let mut a = [0u8; 16];
    a.copy_from_slice(&p[8..24]);
    let src = Ipv6Addr::from(a);
    a.copy_from_slice(&p[24..40]);
    let dst = Ipv6Addr::from(a);
    // A zero checksum is invalid over IPv6; a valid one sums to zero with the pseudo-header.
    if u[6..8] == [0, 0] || upper_sum(src, dst, UDP, u) != 0 {
        return None;
    }
    let sport = u16::from_be_bytes([u[0], u[1]]);
    let dport = u16::from_be_bytes([u[2], u[3]]);
    Some((src, dst, sport, dport, &u[8..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nd::link_local;

    fn reply() -> Message {
        let ia = IaPd {
            iaid: 1,
            t1: 1800,
            t2: 2880,
            prefixes: vec![IaPrefix {
                preferred: 3600,
                valid: 7200,
                len: 56,
                prefix: "2001:db8:f00:100::".parse().unwrap(),
            }],
            status: None,
        };
        Message {
            kind: kind::REPLY,
            xid: [1, 2, 3],
            options: vec![
                (opt::CLIENTID, vec![0, 2, 0, 0, 0x7e, 0xd9, 1]),
                (opt::SERVERID, vec![0, 2, 0, 0, 0x7e, 0xd9, 2]),
                (opt::RAPID_COMMIT, vec![]),
                (opt::IA_PD, ia.encode()),
            ],
        }
    }

    #[test]
    fn messages_round_trip_in_udp() {
        let m = reply();
        let (src, dst) = (link_local(1), link_local(2));
        let p = udp_packet(src, dst, SERVER_PORT, CLIENT_PORT, &m.encode());
        let (s, d, sp, dp, payload) = parse_udp(&p).expect("valid");
        assert_eq!((s, d, sp, dp), (src, dst, 547, 546));
        let back = Message::decode(payload).unwrap();
        assert_eq!(back, m);
        let ia = IaPd::decode(back.option(opt::IA_PD).unwrap()).unwrap();
        assert_eq!(ia.prefixes[0].len, 56);
        assert_eq!(ia.t1, 1800);
        // Any bit flipped in the datagram breaks the checksum.
        let mut bad = p.clone();
        bad[60] ^= 0x10;
        assert!(parse_udp(&bad).is_none());
    }

    #[test]
    fn status_codes_and_malformed_input() {
        let ia = IaPd {
            iaid: 9,
            status: Some(NO_PREFIX_AVAIL),
            ..IaPd::default()
        };
        assert_eq!(IaPd::decode(&ia.encode()), Some(ia));
        assert_eq!(Message::decode(&[1, 2]), None);
        assert_eq!(
            Message::decode(&[1, 2, 3, 4, 0, 1, 0, 9, 0]),
            None,
            "option too long"
        );
        let p = udp_packet(link_local(1), ALL_SERVERS, 546, 547, &reply().encode());
        for n in 0..p.len() {
            let _ = parse_udp(&p[..n]);
        }
        for i in 0..p.len() {
            let mut q = p.clone();
            q[i] ^= 0xff;
            if let Some((_, _, _, _, pl)) = parse_udp(&q) {
                if let Some(m) = Message::decode(pl) {
                    let _ = m.option(opt::IA_PD).map(IaPd::decode);
                }
            }
        }
        let payload = reply().encode();
        for n in 0..payload.len() {
            if let Some(m) = Message::decode(&payload[..n]) {
                let _ = m.option(opt::IA_PD).map(IaPd::decode);
            }
        }
    }
}
