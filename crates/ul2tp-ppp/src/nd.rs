//! IPv6 Neighbor Discovery for PPP links (RFC 4861 §4.1, §4.2, §4.6.2, §6.1): building and
//! parsing Router Solicitations (ICMPv6 type 133) and Router Advertisements (type 134) with
//! Prefix Information and MTU options, as whole IPv6 packets (RFC 8200 header, ICMPv6 with
//! the checksum over the pseudo-header of RFC 8200 §8.1).
//!
//! A PPP link has no link-layer addresses, so no Source Link-Layer Address option is sent and
//! one received is ignored. Addresses on the link are the link-local `fe80::<interface
//! identifier>` that IPv6CP negotiated (RFC 5072 §5); a host forms its global address from an
//! advertised /64 with the autonomous flag and the same identifier (RFC 4862 §5.5.3).
//!
//! The Recursive DNS Server option (RFC 8106 §5.1) carries DNS servers to hosts.
//!
//! Pure: no I/O. [`parse`] never panics; it answers `Ok(None)` for an IPv6 packet that is not
//! a Router Solicitation or Advertisement (the caller passes it on) and `Err` for one that
//! fails the validity checks of RFC 4861 §6.1 (the caller drops and counts it).

use std::fmt;
use std::net::Ipv6Addr;

use ul2tp_wire::checksum;

/// ICMPv6 next-header value.
pub const ICMPV6: u8 = 58;
/// ICMPv6 type of a Router Solicitation.
pub const ROUTER_SOLICITATION: u8 = 133;
/// ICMPv6 type of a Router Advertisement.
pub const ROUTER_ADVERTISEMENT: u8 = 134;
/// All-nodes multicast address (the destination of unsolicited advertisements).
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// All-routers multicast address (the destination of solicitations).
pub const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

const OPT_SOURCE_LLADDR: u8 = 1;
const OPT_PREFIX_INFO: u8 = 3;
const OPT_MTU: u8 = 5;
const OPT_RDNSS: u8 = 25;
/// Prefix Information flags: on-link (L) and autonomous address-configuration (A).
const FLAG_ON_LINK: u8 = 0x80;
const FLAG_AUTONOMOUS: u8 = 0x40;
/// Router Advertisement flags: managed (M) and other configuration (O).
const FLAG_MANAGED: u8 = 0x80;
const FLAG_OTHER: u8 = 0x40;
const IPV6_HEADER: usize = 40;

/// The link-local address `fe80::<iid>` of an interface identifier.
pub fn link_local(iid: u64) -> Ipv6Addr {
    with_iid(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), iid)
}

/// The address made of the first 64 bits of `prefix` and the interface identifier `iid`.
pub fn with_iid(prefix: Ipv6Addr, iid: u64) -> Ipv6Addr {
    let hi = u128::from(prefix) & !u128::from(u64::MAX);
    Ipv6Addr::from(hi | u128::from(iid))
}

/// The interface identifier (low 64 bits) of an address.
pub fn iid_of(addr: Ipv6Addr) -> u64 {
    u128::from(addr) as u64
}

/// A Prefix Information option (RFC 4861 §4.6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixInfo {
    /// The prefix (bits after `prefix_len` are zero when built; ignored when parsed).
    pub prefix: Ipv6Addr,
    /// Its length in bits (0..=128).
    pub prefix_len: u8,
    /// L: the prefix is on-link.
    pub on_link: bool,
    /// A: hosts may form addresses from it (SLAAC, RFC 4862).
    pub autonomous: bool,
    /// Valid lifetime in seconds (0xffffffff = infinity).
    pub valid_lifetime: u32,
    /// Preferred lifetime in seconds.
    pub preferred_lifetime: u32,
}

/// The contents of a Router Advertisement.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouterAdvert {
    /// Cur Hop Limit for hosts (0 = unspecified).
    pub cur_hop_limit: u8,
    /// M: addresses are available via DHCPv6.
    pub managed: bool,
    /// O: other configuration is available via DHCPv6.
    pub other: bool,
    /// Router Lifetime in seconds; 0 = not a default router.
    pub router_lifetime: u16,
    /// Reachable Time in ms (0 = unspecified).
    pub reachable_time: u32,
    /// Retrans Timer in ms (0 = unspecified).
    pub retrans_timer: u32,
    /// The MTU option, if any.
    pub mtu: Option<u32>,
    /// Prefix Information options.
    pub prefixes: Vec<PrefixInfo>,
    /// Recursive DNS servers (one RDNSS option) and their lifetime in seconds; empty: none.
    pub dns: Vec<Ipv6Addr>,
    /// Lifetime of `dns` (0 = stop using them).
    pub dns_lifetime: u32,
}

/// A received Router Solicitation or Advertisement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NdMessage {
    /// A Router Solicitation from `src` (may be `::`).
    RouterSolicit {
        /// The IPv6 source.
        src: Ipv6Addr,
    },
    /// A Router Advertisement from the (link-local) router `src`.
    RouterAdvert {
        /// The IPv6 source (the router's link-local address).
        src: Ipv6Addr,
        /// What it announces.
        ra: RouterAdvert,
    },
}

/// Why a Router Solicitation or Advertisement was invalid (RFC 4861 §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdError {
    /// Shorter than its headers, or the IPv6 payload length exceeds the packet.
    Truncated,
    /// IPv6 Hop Limit other than 255 (the packet may come from off-link).
    HopLimit,
    /// ICMPv6 checksum mismatch.
    Checksum,
    /// ICMP code other than 0.
    Code,
    /// An option with length 0 or running past the end.
    BadOption,
    /// A Router Advertisement whose source is not link-local.
    NotLinkLocal,
}

impl fmt::Display for NdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NdError::Truncated => "truncated",
            NdError::HopLimit => "hop limit is not 255",
            NdError::Checksum => "bad ICMPv6 checksum",
            NdError::Code => "ICMP code is not 0",
            NdError::BadOption => "malformed option",
            NdError::NotLinkLocal => "router address is not link-local",
        })
    }
}

impl std::error::Error for NdError {}

/// The ICMPv6 checksum of `msg` (checksum field included as it is) between `src` and `dst`.
fn icmpv6_sum(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) -> u16 {
    upper_sum(src, dst, ICMPV6, msg)
}

/// The checksum of an upper-layer message `msg` (ICMPv6, UDP) with next header `next` over
/// the IPv6 pseudo-header (RFC 8200 §8.1).
pub(crate) fn upper_sum(src: Ipv6Addr, dst: Ipv6Addr, next: u8, msg: &[u8]) -> u16 {
    let mut s = checksum::add(0, &src.octets());
    s = checksum::add(s, &dst.octets());
    s = checksum::add(s, &(msg.len() as u32).to_be_bytes());
    s = checksum::add(s, &[0, 0, 0, next]);
    s = checksum::add(s, msg);
    !checksum::fold(s)
}

/// An IPv6 header for `payload_len` bytes of `next` from `src` to `dst`.
pub(crate) fn ipv6_header(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next: u8,
    hop_limit: u8,
    payload_len: usize,
) -> Vec<u8> {
    let mut p = Vec::with_capacity(IPV6_HEADER + payload_len);
    p.extend_from_slice(&[0x60, 0, 0, 0]);
    p.extend_from_slice(&(payload_len as u16).to_be_bytes());
    p.push(next);
    p.push(hop_limit);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p
}

/// An IPv6 packet from `src` to `dst` with hop limit 255 carrying the ICMPv6 message `msg`
/// (checksum field at bytes 2..4 zero; filled in here).
fn ipv6_icmp(src: Ipv6Addr, dst: Ipv6Addr, mut msg: Vec<u8>) -> Vec<u8> {
    let sum = icmpv6_sum(src, dst, &msg);
    msg[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut p = ipv6_header(src, dst, ICMPV6, 255, msg.len());
    p.extend_from_slice(&msg);
    p
}

/// A Router Solicitation from `src` to all routers (no options: a PPP link has no link-layer
/// address).
pub fn build_rs(src: Ipv6Addr) -> Vec<u8> {
    ipv6_icmp(
        src,
        ALL_ROUTERS,
        vec![ROUTER_SOLICITATION, 0, 0, 0, 0, 0, 0, 0],
    )
}

/// A Router Advertisement from the router's link-local `src` to `dst` (normally
/// [`ALL_NODES`]).
pub fn build_ra(src: Ipv6Addr, dst: Ipv6Addr, ra: &RouterAdvert) -> Vec<u8> {
    let mut m = vec![ROUTER_ADVERTISEMENT, 0, 0, 0, ra.cur_hop_limit];
    let mut flags = 0;
    if ra.managed {
        flags |= FLAG_MANAGED;
    }
    if ra.other {
        flags |= FLAG_OTHER;
    }
    m.push(flags);
    m.extend_from_slice(&ra.router_lifetime.to_be_bytes());
    m.extend_from_slice(&ra.reachable_time.to_be_bytes());
    m.extend_from_slice(&ra.retrans_timer.to_be_bytes());
    if let Some(mtu) = ra.mtu {
        m.extend_from_slice(&[OPT_MTU, 1, 0, 0]);
        m.extend_from_slice(&mtu.to_be_bytes());
    }
    for p in &ra.prefixes {
        let len = p.prefix_len.min(128);
        let mask = if len == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(len))
        };
        let mut flags = 0;
        if p.on_link {
            flags |= FLAG_ON_LINK;
        }
        if p.autonomous {
            flags |= FLAG_AUTONOMOUS;
        }
        m.extend_from_slice(&[OPT_PREFIX_INFO, 4, len, flags]);
        m.extend_from_slice(&p.valid_lifetime.to_be_bytes());
        m.extend_from_slice(&p.preferred_lifetime.to_be_bytes());
        m.extend_from_slice(&[0; 4]);
        m.extend_from_slice(&Ipv6Addr::from(u128::from(p.prefix) & mask).octets());
    }
    if !ra.dns.is_empty() {
        // Length in units of 8 octets: 8 bytes of header, 16 per address (RFC 8106 §5.1).
        let n = ra.dns.len().min(127);
        m.extend_from_slice(&[OPT_RDNSS, (1 + 2 * n) as u8, 0, 0]);
        m.extend_from_slice(&ra.dns_lifetime.to_be_bytes());
        for a in &ra.dns[..n] {
            m.extend_from_slice(&a.octets());
        }
    }
    ipv6_icmp(src, dst, m)
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn addr(b: &[u8]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    Ipv6Addr::from(a)
}

/// The options after the fixed part of an ND message, as (type, whole option bytes).
fn options(mut b: &[u8]) -> Result<Vec<(u8, &[u8])>, NdError> {
    let mut out = Vec::new();
    while !b.is_empty() {
        if b.len() < 2 || b[1] == 0 {
            return Err(NdError::BadOption);
        }
        let len = usize::from(b[1]) * 8;
        if len > b.len() {
            return Err(NdError::BadOption);
        }
        out.push((b[0], &b[..len]));
        b = &b[len..];
    }
    Ok(out)
}

/// Recognise and validate a Router Solicitation or Advertisement in the IPv6 packet
/// `packet` (as carried in a PPP frame of protocol 0x0057). `Ok(None)`: some other packet
/// (not IPv6, not ICMPv6 right after the fixed header, or another ICMPv6 type).
pub fn parse(packet: &[u8]) -> Result<Option<NdMessage>, NdError> {
    if packet.len() < IPV6_HEADER || packet[0] >> 4 != 6 {
        return Ok(None);
    }
    if packet[6] != ICMPV6 {
        return Ok(None);
    }
    let payload_len = usize::from(u16::from_be_bytes([packet[4], packet[5]]));
    let msg = packet
        .get(IPV6_HEADER..IPV6_HEADER + payload_len)
        .ok_or(NdError::Truncated)?;
    let kind = match msg.first() {
        Some(&k @ (ROUTER_SOLICITATION | ROUTER_ADVERTISEMENT)) => k,
        _ => return Ok(None),
    };
    let (src, dst) = (addr(&packet[8..24]), addr(&packet[24..40]));
    let fixed = if kind == ROUTER_SOLICITATION { 8 } else { 16 };
    if msg.len() < fixed {
        return Err(NdError::Truncated);
    }
    if packet[7] != 255 {
        return Err(NdError::HopLimit);
    }
    if icmpv6_sum(src, dst, msg) != 0 {
        return Err(NdError::Checksum);
    }
    if msg[1] != 0 {
        return Err(NdError::Code);
    }
    let opts = options(&msg[fixed..])?;
    if kind == ROUTER_SOLICITATION {
        // §6.1.1: from the unspecified address, no Source Link-Layer Address option.
        if src.is_unspecified() && opts.iter().any(|(t, _)| *t == OPT_SOURCE_LLADDR) {
            return Err(NdError::BadOption);
        }
        return Ok(Some(NdMessage::RouterSolicit { src }));
    }
    if !src.is_unicast_link_local() {
        return Err(NdError::NotLinkLocal);
    }
    let mut ra = RouterAdvert {
        cur_hop_limit: msg[4],
        managed: msg[5] & FLAG_MANAGED != 0,
        other: msg[5] & FLAG_OTHER != 0,
        router_lifetime: u16::from_be_bytes([msg[6], msg[7]]),
        reachable_time: be32(&msg[8..12]),
        retrans_timer: be32(&msg[12..16]),
        ..RouterAdvert::default()
    };
    for (t, o) in opts {
        match t {
            // Malformed known options are ignored, not fatal (RFC 4861 §4.6).
            OPT_MTU if o.len() == 8 => ra.mtu = Some(be32(&o[4..8])),
            OPT_PREFIX_INFO if o.len() == 32 && o[2] <= 128 => ra.prefixes.push(PrefixInfo {
                prefix_len: o[2],
                on_link: o[3] & FLAG_ON_LINK != 0,
                autonomous: o[3] & FLAG_AUTONOMOUS != 0,
                valid_lifetime: be32(&o[4..8]),
                preferred_lifetime: be32(&o[8..12]),
                prefix: addr(&o[16..32]),
            }),
            // RFC 8106 §5.1: length at least 3 and odd; an invalid one is ignored.
            OPT_RDNSS if o.len() >= 24 && (o.len() - 8) % 16 == 0 && ra.dns.is_empty() => {
                ra.dns_lifetime = be32(&o[4..8]);
                ra.dns = o[8..].chunks_exact(16).map(addr).collect();
            }
            _ => {}
        }
    }
    Ok(Some(NdMessage::RouterAdvert { src, ra }))
}

impl PrefixInfo {
    /// Whether a host may form an address from this prefix with a 64-bit interface
    /// identifier (RFC 4862 §5.5.3: A flag set, not link-local, preferred ≤ valid, and a /64
    /// so that prefix and identifier make 128 bits).
    pub fn usable_for_slaac(&self) -> bool {
        self.autonomous
            && self.prefix_len == 64
            && !self.prefix.is_unicast_link_local()
            && self.valid_lifetime > 0
            && self.preferred_lifetime <= self.valid_lifetime
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> RouterAdvert {
        RouterAdvert {
            cur_hop_limit: 64,
            router_lifetime: 1800,
            mtu: Some(1460),
            prefixes: vec![PrefixInfo {
                prefix: "2001:db8:100:7::".parse().unwrap(),
                prefix_len: 64,
                on_link: true,
                autonomous: true,
                valid_lifetime: 2_592_000,
                preferred_lifetime: 604_800,
            }],
            ..RouterAdvert::default()
        }
    }

    #[test]
    fn rdnss_round_trips() {
        let ra = RouterAdvert {
            dns: vec![
                "2001:db8::53".parse().unwrap(),
                "2001:db8::54".parse().unwrap(),
            ],
            dns_lifetime: 1800,
            ..sample()
        };
        let p = build_ra(link_local(3), ALL_NODES, &ra);
        // 96 as in the sample plus the RDNSS option: 8 + 2 × 16.
        assert_eq!(p.len(), 96 + 40);
        assert_eq!(&p[96..100], &[25, 5, 0, 0]);
        match parse(&p) {
            Ok(Some(NdMessage::RouterAdvert { ra: got, .. })) => assert_eq!(got, ra),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn router_advert_round_trips_with_a_valid_checksum() {
        let src = link_local(0x0211_22ff_fe33_4455);
        let p = build_ra(src, ALL_NODES, &sample());
        // 40 IPv6 + 16 RA + 8 MTU + 32 prefix.
        assert_eq!(p.len(), 96);
        assert_eq!(&p[..8], &[0x60, 0, 0, 0, 0, 56, 58, 255]);
        assert_eq!(&p[24..40], &ALL_NODES.octets());
        assert_eq!(p[40], 134);
        // Bytes of the prefix option: type 3, length 4, /64, L and A.
        assert_eq!(&p[64..68], &[3, 4, 64, 0xc0]);
        let sum = icmpv6_sum(src, ALL_NODES, &p[40..]);
        assert_eq!(sum, 0, "checksum verifies");
        match parse(&p) {
            Ok(Some(NdMessage::RouterAdvert { src: s, ra })) => {
                assert_eq!(s, src);
                assert_eq!(ra, sample());
                assert!(ra.prefixes[0].usable_for_slaac());
            }
            other => panic!("{other:?}"),
        }
    }

    /// A checksum computed independently of `icmpv6_sum` (RFC 1071 by hand, 16-bit words).
    #[test]
    fn checksum_matches_a_reference_computation() {
        let src = link_local(1);
        let p = build_rs(src);
        let mut words: Vec<u32> = Vec::new();
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&src.octets());
        pseudo.extend_from_slice(&ALL_ROUTERS.octets());
        pseudo.extend_from_slice(&8u32.to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, 58]);
        let mut msg = p[40..].to_vec();
        msg[2] = 0;
        msg[3] = 0;
        pseudo.extend_from_slice(&msg);
        for w in pseudo.chunks(2) {
            words.push(u32::from(u16::from_be_bytes([w[0], w[1]])));
        }
        let mut s: u32 = words.iter().sum();
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        assert_eq!(u16::from_be_bytes([p[42], p[43]]), !(s as u16));
    }

    #[test]
    fn router_solicitation_round_trips() {
        let src = link_local(0x1234);
        let p = build_rs(src);
        assert_eq!(p.len(), 48);
        assert_eq!(&p[24..40], &ALL_ROUTERS.octets());
        assert_eq!(parse(&p), Ok(Some(NdMessage::RouterSolicit { src })));
    }

    #[test]
    fn invalid_messages_are_refused() {
        let src = link_local(9);
        let good = build_ra(src, ALL_NODES, &sample());
        let mut hop = good.clone();
        hop[7] = 64;
        assert_eq!(parse(&hop), Err(NdError::HopLimit));
        let mut sum = good.clone();
        sum[90] ^= 1;
        assert_eq!(parse(&sum), Err(NdError::Checksum));
        let global: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let off_link = build_ra(global, ALL_NODES, &sample());
        assert_eq!(parse(&off_link), Err(NdError::NotLinkLocal));
        // Payload length beyond the packet.
        assert_eq!(parse(&good[..good.len() - 1]), Err(NdError::Truncated));
        // A zero-length option (checksum fixed so that only the option is wrong).
        let mut zero = good.clone();
        zero[57] = 0;
        let mut msg = zero[40..].to_vec();
        msg[2..4].copy_from_slice(&[0, 0]);
        let s = icmpv6_sum(src, ALL_NODES, &msg);
        zero[42..44].copy_from_slice(&s.to_be_bytes());
        assert_eq!(parse(&zero), Err(NdError::BadOption));
    }

    #[test]
    fn other_packets_are_not_nd() {
        assert_eq!(parse(&[]), Ok(None));
        assert_eq!(parse(&[0x45; 60]), Ok(None), "IPv4");
        let mut echo = build_rs(link_local(1));
        echo[40] = 128;
        assert_eq!(parse(&echo), Ok(None), "echo request");
        let mut udp = build_rs(link_local(1));
        udp[6] = 17;
        assert_eq!(parse(&udp), Ok(None));
    }

    #[test]
    fn slaac_rules() {
        let p = sample().prefixes[0];
        assert!(!PrefixInfo {
            autonomous: false,
            ..p
        }
        .usable_for_slaac());
        assert!(!PrefixInfo {
            prefix_len: 56,
            ..p
        }
        .usable_for_slaac());
        assert!(!PrefixInfo {
            preferred_lifetime: p.valid_lifetime + 1,
            ..p
        }
        .usable_for_slaac());
        let a = with_iid(p.prefix, 0xaabb_ccdd_eeff_0011);
        assert_eq!(
            a,
            "2001:db8:100:7:aabb:ccdd:eeff:11"
                .parse::<Ipv6Addr>()
                .unwrap()
        );
        assert_eq!(iid_of(a), 0xaabb_ccdd_eeff_0011);
        assert_eq!(link_local(2), "fe80::2".parse::<Ipv6Addr>().unwrap());
    }

    use proptest::prelude::*;

    fn prefix_info() -> impl Strategy<Value = PrefixInfo> {
        (
            any::<u64>(),
            any::<bool>(),
            any::<bool>(),
            any::<u32>(),
            any::<u32>(),
        )
            .prop_map(|(hi, l, a, v, p)| PrefixInfo {
                prefix: Ipv6Addr::from(u128::from(hi) << 64),
                prefix_len: 64,
                on_link: l,
                autonomous: a,
                valid_lifetime: v,
                preferred_lifetime: p,
            })
    }

    proptest! {
        /// Whatever bytes follow a well-formed IPv6 header (and any bytes at all): no panic.
        #[test]
        fn parse_never_panics(body in proptest::collection::vec(any::<u8>(), 0..200), hop in any::<u8>()) {
            let _ = parse(&body);
            let mut p = build_rs(link_local(1));
            p.truncate(40);
            p[4..6].copy_from_slice(&(body.len() as u16).to_be_bytes());
            p[7] = hop;
            p.extend_from_slice(&body);
            let _ = parse(&p);
        }

        /// Any advertisement we build parses back to itself.
        #[test]
        fn adverts_round_trip(
            hop in any::<u8>(), m in any::<bool>(), o in any::<bool>(), life in any::<u16>(),
            reach in any::<u32>(), retrans in any::<u32>(), mtu in proptest::option::of(any::<u32>()),
            prefixes in proptest::collection::vec(prefix_info(), 0..4), iid in any::<u64>(),
            dns in proptest::collection::vec(any::<u128>().prop_map(Ipv6Addr::from), 0..3),
            dns_lifetime in any::<u32>(),
        ) {
            let dns_lifetime = if dns.is_empty() { 0 } else { dns_lifetime };
            let ra = RouterAdvert {
                cur_hop_limit: hop, managed: m, other: o, router_lifetime: life,
                reachable_time: reach, retrans_timer: retrans, mtu, prefixes, dns, dns_lifetime,
            };
            let src = link_local(iid);
            let got = parse(&build_ra(src, ALL_NODES, &ra));
            prop_assert_eq!(got, Ok(Some(NdMessage::RouterAdvert { src, ra })));
        }
    }

    /// Every truncation and every single-byte corruption of valid messages: no panic.
    #[test]
    fn malformed_input_never_panics() {
        let ra = build_ra(link_local(7), ALL_NODES, &sample());
        let rs = build_rs(link_local(7));
        for p in [&ra, &rs] {
            for n in 0..=p.len() {
                let _ = parse(&p[..n]);
            }
            for i in 0..p.len() {
                for v in [0u8, 1, 0x7f, 0xff] {
                    let mut q = p.clone();
                    q[i] = v;
                    let _ = parse(&q);
                }
            }
        }
        // Random bytes with an IPv6/ICMPv6 header in front.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            let mut q = ra.clone();
            for b in q.iter_mut().skip(40) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            q[40] = if x & 1 == 0 { 133 } else { 134 };
            let _ = parse(&q);
        }
    }
}
