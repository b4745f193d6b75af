//! ICMP echo over IPv4 (RFC 792), pure: the requests the load tester sends through each PPP
//! session, reading the replies, and the reply to a request (the LNS mode answers echoes to
//! its own address). The checksums are `ul2tp_wire::checksum`'s.

use std::net::Ipv4Addr;

use ul2tp_wire::checksum::checksum;

const IP_HDR: usize = 20;
const ICMP_HDR: usize = 8;
const ECHO_REPLY: u8 = 0;
const ECHO_REQUEST: u8 = 8;
const PROTO_ICMP: u8 = 1;

/// An ICMP echo request or reply as read from an IPv4 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Echo {
    /// The packet's source.
    pub src: Ipv4Addr,
    /// The packet's destination.
    pub dst: Ipv4Addr,
    /// A request (`true`) or a reply.
    pub request: bool,
    /// Identifier.
    pub id: u16,
    /// Sequence number.
    pub seq: u16,
}

/// An IPv4 packet with an ICMP message of `icmp_type` and `data` after the 8-octet header.
fn packet(src: Ipv4Addr, dst: Ipv4Addr, icmp_type: u8, id: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    let len = IP_HDR + ICMP_HDR + data.len();
    let mut p = vec![0u8; len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
    p[6] = 0x40; // DF
    p[8] = 64; // TTL
    p[9] = PROTO_ICMP;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let c = checksum(&p[..IP_HDR]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    let icmp = &mut p[IP_HDR..];
    icmp[0] = icmp_type;
    icmp[4..6].copy_from_slice(&id.to_be_bytes());
    icmp[6..8].copy_from_slice(&seq.to_be_bytes());
    icmp[ICMP_HDR..].copy_from_slice(data);
    let c = checksum(icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    p
}

/// An echo request from `src` to `dst` with `size` octets of data.
pub fn echo_request(src: Ipv4Addr, dst: Ipv4Addr, id: u16, seq: u16, size: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..size).map(|i| i as u8).collect();
    packet(src, dst, ECHO_REQUEST, id, seq, &data)
}

/// The ICMP header of `p` read as an echo, when `p` is a whole IPv4 packet carrying an
/// unfragmented ICMP echo request or reply with valid checksums; also the echo's data.
fn parse_with_data(p: &[u8]) -> Option<(Echo, &[u8])> {
    let ihl = usize::from(p.first()? & 0x0f) * 4;
    if p[0] >> 4 != 4 || ihl < IP_HDR || p.len() < ihl + ICMP_HDR {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
    let fragmented = u16::from_be_bytes([p[6], p[7]]) & 0x3fff != 0;
    if total < ihl + ICMP_HDR || total > p.len() || fragmented || p[9] != PROTO_ICMP {
        return None;
    }
    if checksum(&p[..ihl]) != 0 {
        return None;
    }
    let icmp = &p[ihl..total];
    let request = match icmp[0] {
        ECHO_REQUEST => true,
        ECHO_REPLY => false,
        _ => return None,
    };
    if icmp[1] != 0 || checksum(icmp) != 0 {
        return None;
    }
    let e = Echo {
        src: Ipv4Addr::new(p[12], p[13], p[14], p[15]),
        dst: Ipv4Addr::new(p[16], p[17], p[18], p[19]),
        request,
        id: u16::from_be_bytes([icmp[4], icmp[5]]),
        seq: u16::from_be_bytes([icmp[6], icmp[7]]),
    };
    Some((e, &icmp[ICMP_HDR..]))
}

/// `p` read as an ICMP echo request or reply (`None` for anything else or a bad checksum).
pub fn parse(p: &[u8]) -> Option<Echo> {
    parse_with_data(p).map(|(e, _)| e)
}

/// The reply to the echo request `p` when it is addressed to `me`.
pub fn reply_to(p: &[u8], me: Ipv4Addr) -> Option<Vec<u8>> {
    let (e, data) = parse_with_data(p)?;
    (e.request && e.dst == me).then(|| packet(me, e.src, ECHO_REPLY, e.id, e.seq, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

    #[test]
    fn request_reads_back_and_is_answered() {
        let r = echo_request(A, B, 7, 9, 56);
        assert_eq!(r.len(), 84);
        let e = parse(&r).unwrap();
        assert_eq!(
            e,
            Echo {
                src: A,
                dst: B,
                request: true,
                id: 7,
                seq: 9
            }
        );
        let reply = reply_to(&r, B).unwrap();
        let e = parse(&reply).unwrap();
        assert_eq!((e.src, e.dst, e.request, e.id, e.seq), (B, A, false, 7, 9));
        assert_eq!(reply[28..], r[28..], "the data comes back");
        // Not ours, or not a request: no reply.
        assert!(reply_to(&r, A).is_none());
        assert!(reply_to(&reply, A).is_none());
    }

    #[test]
    fn damaged_or_other_packets_are_not_echoes() {
        let r = echo_request(A, B, 1, 1, 8);
        for i in 0..r.len() {
            let mut bad = r.clone();
            bad[i] ^= 0x01;
            // A single flipped bit breaks a checksum (or the packet's shape).
            assert!(parse(&bad).is_none(), "byte {i}");
        }
        for n in 0..r.len() {
            let _ = parse(&r[..n]);
        }
        assert!(parse(&r[..27]).is_none());
        assert!(parse(&[]).is_none());
    }
}
