//! Minimal pcap (libpcap classic format, microsecond, little-endian) reader and writer.
//!
//! Pure: bytes in, bytes out. The writer wraps L2TP datagrams in Ethernet + IPv4/IPv6 + UDP
//! (or IP protocol 115) headers so that tshark decodes simulated exchanges; the reader walks the
//! captures under `tests/data/captures` and extracts the transport payloads for use as test vectors.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::checksum;
use crate::Encap;

/// Link type Ethernet (DLT_EN10MB).
pub const LINKTYPE_ETHERNET: u32 = 1;
/// IP protocol number of L2TPv3 over IP (RFC 3931 §4.1.1.1).
pub const IPPROTO_L2TP: u8 = 115;
const IPPROTO_UDP: u8 = 17;

/// Error reading a pcap file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PcapError {
    /// Not a little-endian microsecond pcap with Ethernet link type.
    BadHeader,
    /// A record header or body runs past the end of the file.
    Truncated,
}

impl core::fmt::Display for PcapError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PcapError::BadHeader => f.write_str("not a little-endian Ethernet pcap file"),
            PcapError::Truncated => f.write_str("pcap record truncated"),
        }
    }
}

impl std::error::Error for PcapError {}

/// One captured frame.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Timestamp in microseconds.
    pub ts_us: u64,
    /// The Ethernet frame as captured.
    pub frame: &'a [u8],
}

/// An IP datagram extracted from an Ethernet frame: addresses and the L2TP-bearing payload.
#[derive(Debug, Clone, Copy)]
pub struct Datagram<'a> {
    /// Source address (port 0 for IP encap).
    pub src: SocketAddr,
    /// Destination address (port 0 for IP encap).
    pub dst: SocketAddr,
    /// UDP or IP protocol 115.
    pub transport: Encap,
    /// UDP payload or IP payload.
    pub payload: &'a [u8],
}

/// Iterate the records of a pcap file.
pub fn records(
    file: &[u8],
) -> Result<impl Iterator<Item = Result<Record<'_>, PcapError>>, PcapError> {
    if file.len() < 24 || file[0..4] != [0xd4, 0xc3, 0xb2, 0xa1] {
        return Err(PcapError::BadHeader);
    }
    if u32::from_le_bytes([file[20], file[21], file[22], file[23]]) != LINKTYPE_ETHERNET {
        return Err(PcapError::BadHeader);
    }
    let mut pos = 24usize;
    Ok(core::iter::from_fn(move || {
        if pos >= file.len() {
            return None;
        }
        let Some(h) = file.get(pos..pos + 16) else {
            pos = file.len();
            return Some(Err(PcapError::Truncated));
        };
        let le = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let ts_us = u64::from(le(0)) * 1_000_000 + u64::from(le(4));
        let incl = le(8) as usize;
        let start = pos + 16;
        let Some(frame) = file.get(start..start.saturating_add(incl)) else {
            pos = file.len();
            return Some(Err(PcapError::Truncated));
        };
        pos = start + incl;
        Some(Ok(Record { ts_us, frame }))
    }))
}

/// Extract a UDP or IP-protocol-115 datagram from an Ethernet frame (optionally one 802.1Q tag).
/// Returns `None` for anything else (ARP, other protocols, fragments, truncated headers).
pub fn extract(frame: &[u8]) -> Option<Datagram<'_>> {
    let mut off = 12;
    let mut ethertype = u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]);
    off += 2;
    if ethertype == 0x8100 {
        ethertype = u16::from_be_bytes([*frame.get(off + 2)?, *frame.get(off + 3)?]);
        off += 4;
    }
    let ip = frame.get(off..)?;
    let (src, dst, proto, l4) = match ethertype {
        0x0800 => {
            let ihl = usize::from(ip.first()? & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
            let frag = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]);
            if frag & 0x3fff != 0 || ihl < 20 || total < ihl {
                return None;
            }
            let s = Ipv4Addr::new(*ip.get(12)?, ip[13], ip[14], ip[15]);
            let d = Ipv4Addr::new(*ip.get(16)?, ip[17], ip[18], ip[19]);
            (
                IpAddr::V4(s),
                IpAddr::V4(d),
                ip[9],
                ip.get(ihl..total.min(ip.len()))?,
            )
        }
        0x86dd => {
            let plen = usize::from(u16::from_be_bytes([*ip.get(4)?, *ip.get(5)?]));
            let s: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
            let d: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
            let end = (40 + plen).min(ip.len());
            (
                IpAddr::V6(Ipv6Addr::from(s)),
                IpAddr::V6(Ipv6Addr::from(d)),
                ip[6],
                ip.get(40..end)?,
            )
        }
        _ => return None,
    };
    match proto {
        IPPROTO_UDP => {
            let sp = u16::from_be_bytes([*l4.first()?, *l4.get(1)?]);
            let dp = u16::from_be_bytes([*l4.get(2)?, *l4.get(3)?]);
            let ulen = usize::from(u16::from_be_bytes([*l4.get(4)?, *l4.get(5)?]));
            let payload = l4.get(8..ulen.clamp(8, l4.len()))?;
            Some(Datagram {
                src: SocketAddr::new(src, sp),
                dst: SocketAddr::new(dst, dp),
                transport: Encap::Udp,
                payload,
            })
        }
        IPPROTO_L2TP => Some(Datagram {
            src: SocketAddr::new(src, 0),
            dst: SocketAddr::new(dst, 0),
            transport: Encap::Ip,
            payload: l4,
        }),
        _ => None,
    }
}

/// Builds a pcap file in memory from datagrams, adding Ethernet, IP and UDP headers.
#[derive(Debug, Clone)]
pub struct PcapWriter {
    buf: Vec<u8>,
}

impl Default for PcapWriter {
    fn default() -> Self {
        Self::new()
    }
}

/// Fill in the UDP checksum of `l4` (pseudo-header of RFC 768 / RFC 8200 §8.1).
fn udp_checksum(l4: &mut [u8], proto: u8, src: &[u8], dst: &[u8]) {
    if proto != IPPROTO_UDP || l4.len() < 8 {
        return;
    }
    let mut sum = checksum::add(checksum::add(0, src), dst);
    sum += u64::from(proto) + l4.len() as u64;
    let c = !checksum::fold(checksum::add(sum, l4));
    l4[6..8].copy_from_slice(&(if c == 0 { 0xffff } else { c }).to_be_bytes());
}

impl PcapWriter {
    /// Start a file (global header, Ethernet link type, snaplen 262144).
    pub fn new() -> Self {
        let mut buf = Vec::with_capacity(4096);
        buf.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        buf.extend_from_slice(&2u16.to_le_bytes());
        buf.extend_from_slice(&4u16.to_le_bytes());
        buf.extend_from_slice(&0i32.to_le_bytes());
        buf.extend_from_slice(&0u32.to_le_bytes());
        buf.extend_from_slice(&262_144u32.to_le_bytes());
        buf.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        Self { buf }
    }

    /// Append a raw Ethernet frame.
    pub fn frame(&mut self, ts_us: u64, frame: &[u8]) {
        let len = frame.len() as u32;
        self.buf
            .extend_from_slice(&((ts_us / 1_000_000) as u32).to_le_bytes());
        self.buf
            .extend_from_slice(&((ts_us % 1_000_000) as u32).to_le_bytes());
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf.extend_from_slice(frame);
    }

    /// Append a UDP datagram between two socket addresses of the same family.
    /// Mixed families are written as IPv6 with v4-mapped addresses.
    pub fn udp(&mut self, ts_us: u64, src: SocketAddr, dst: SocketAddr, payload: &[u8]) {
        let mut l4 = Vec::with_capacity(8 + payload.len());
        l4.extend_from_slice(&src.port().to_be_bytes());
        l4.extend_from_slice(&dst.port().to_be_bytes());
        l4.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        l4.extend_from_slice(&[0, 0]);
        l4.extend_from_slice(payload);
        self.ip(ts_us, src.ip(), dst.ip(), IPPROTO_UDP, l4);
    }

    /// Append an IP protocol 115 datagram (`payload` starts at the session id).
    pub fn l2tp_ip(&mut self, ts_us: u64, src: IpAddr, dst: IpAddr, payload: &[u8]) {
        self.ip(ts_us, src, dst, IPPROTO_L2TP, payload.to_vec());
    }

    fn ip(&mut self, ts_us: u64, src: IpAddr, dst: IpAddr, proto: u8, mut l4: Vec<u8>) {
        let mut frame = Vec::with_capacity(14 + 40 + l4.len());
        frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1]);
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                udp_checksum(&mut l4, proto, &s.octets(), &d.octets());
                frame.extend_from_slice(&0x0800u16.to_be_bytes());
                let mut h = [0u8; 20];
                h[0] = 0x45;
                h[2..4].copy_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
                h[8] = 64;
                h[9] = proto;
                h[12..16].copy_from_slice(&s.octets());
                h[16..20].copy_from_slice(&d.octets());
                let c = checksum::checksum(&h);
                h[10..12].copy_from_slice(&c.to_be_bytes());
                frame.extend_from_slice(&h);
            }
            _ => {
                let v6 = |a: IpAddr| match a {
                    IpAddr::V4(a) => a.to_ipv6_mapped(),
                    IpAddr::V6(a) => a,
                };
                let (s, d) = (v6(src), v6(dst));
                udp_checksum(&mut l4, proto, &s.octets(), &d.octets());
                frame.extend_from_slice(&0x86ddu16.to_be_bytes());
                let mut h = [0u8; 40];
                h[0] = 0x60;
                h[4..6].copy_from_slice(&(l4.len() as u16).to_be_bytes());
                h[6] = proto;
                h[7] = 64;
                h[8..24].copy_from_slice(&s.octets());
                h[24..40].copy_from_slice(&d.octets());
                frame.extend_from_slice(&h);
            }
        }
        frame.extend_from_slice(&l4);
        self.frame(ts_us, &frame);
    }

    /// The file so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Finish and return the file.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_udp4_and_ip6() {
        let mut w = PcapWriter::new();
        let a: SocketAddr = "192.0.2.1:1701".parse().unwrap();
        let b: SocketAddr = "192.0.2.2:1701".parse().unwrap();
        w.udp(1_500_000, a, b, &[0xc8, 0x02, 0, 12]);
        w.l2tp_ip(
            2_000_000,
            "fd00::1".parse().unwrap(),
            "fd00::2".parse().unwrap(),
            &[0, 0, 0x10, 1],
        );
        let bytes = w.into_bytes();
        let recs: Vec<_> = records(&bytes).unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].ts_us, 1_500_000);
        let d = extract(recs[0].frame).unwrap();
        assert_eq!((d.src, d.dst, d.transport), (a, b, Encap::Udp));
        assert_eq!(d.payload, &[0xc8, 0x02, 0, 12]);
        let d = extract(recs[1].frame).unwrap();
        assert_eq!(d.transport, Encap::Ip);
        assert_eq!(d.payload, &[0, 0, 0x10, 1]);
    }

    #[test]
    fn every_capture_parses() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/captures");
        let Ok(entries) = std::fs::read_dir(dir) else {
            panic!("captures not found at {dir}");
        };
        let mut files = 0;
        for e in entries {
            let p = e.unwrap().path();
            if p.extension().and_then(|x| x.to_str()) != Some("pcap") {
                continue;
            }
            files += 1;
            let bytes = std::fs::read(&p).unwrap();
            let n = records(&bytes)
                .unwrap()
                .filter_map(|r| r.ok())
                .filter_map(|r| extract(r.frame))
                .count();
            assert!(n > 0, "{} has no L2TP datagrams", p.display());
        }
        assert!(files >= 12);
    }

    #[test]
    fn garbage_never_panics() {
        for len in 0..200 {
            let v: Vec<u8> = (0..len).map(|i| (i * 37 + len) as u8).collect();
            let _ = extract(&v);
            if let Ok(it) = records(&v) {
                it.for_each(drop);
            };
        }
    }
}
