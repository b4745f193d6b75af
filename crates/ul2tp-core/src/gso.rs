//! Software segmentation and checksum completion for frames read from a TAP with offloads.
//!
//! A TAP opened with `IFF_VNET_HDR` and `TUNSETOFFLOAD` hands its reader a `virtio_net_hdr`
//! in front of every frame. Two things may then be left to the reader, exactly as they are
//! left to a NIC by the kernel's stack:
//!
//! * `NEEDS_CSUM`: the Layer-4 checksum is not finished. The checksum field at
//!   `csum_start + csum_offset` holds the pseudo-header sum; the reader folds in the bytes
//!   from `csum_start` to the end and stores the complement ([`complete_checksum`]).
//! * GSO (`TCPV4` / `TCPV6`): the frame is a TCP super-frame of up to 64 KB that must leave as
//!   `gso_size`-byte segments. [`TcpSegmenter`] cuts it the way the kernel's `tcp_gso_segment`
//!   / `inet_gso_segment` / `ipv6_gso_segment` do: every segment carries a copy of the
//!   Ethernet, IP and TCP headers; IPv4 total length, a per-segment incremented IP id and the
//!   header checksum, or the IPv6 payload length, are rewritten; the TCP sequence number
//!   advances by the payload sent before; FIN and PSH are kept on the last segment only and
//!   CWR on the first only; each segment gets a complete TCP checksum. The result is a run of
//!   ordinary Ethernet frames, the same frames the kernel would put on a wire.
//!
//! The receive direction does the reverse ([`Coalescer`], a userspace GRO): consecutive
//! in-order TCP segments of one flow that arrive in one receive batch are joined into one
//! super-frame with a `GSO_TCPV4` / `GSO_TCPV6` vnet header, so that one TAP write hands the
//! local stack what a NIC with GRO would. Only segments whose IP and TCP checksums verify are
//! joined, and only under the rules of the kernel's `tcp_gro_receive`: same addresses,
//! ports, ACK number, window and options, contiguous sequence numbers, only ACK/PSH flags,
//! all segments but the last exactly `gso_size` long; a PSH or short segment ends the run.
//!
//! Both directions work on either kind of frame a tun-driver device carries ([`Link`]):
//! Ethernet frames of a TAP (the Ethernet pseudowire) or bare IP packets of a TUN (the pppN
//! of a PPP session, whose vnet header offsets count from the IP header).
//!
//! Everything here is pure: frames come in as slices, segments are written into caller
//! buffers, and any inconsistency between header and frame is an error, never a panic.

use core::fmt;
use ul2tp_wire::checksum;

/// Length of `struct virtio_net_hdr` (the tun default header size).
pub const VNET_HDR_LEN: usize = 10;
/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum at `csum_start + csum_offset` is to be done.
pub const F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_F_DATA_VALID`: the receiver may trust the checksums.
pub const F_DATA_VALID: u8 = 2;
/// `VIRTIO_NET_HDR_GSO_NONE`.
pub const GSO_NONE: u8 = 0;
/// `VIRTIO_NET_HDR_GSO_TCPV4`.
pub const GSO_TCPV4: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_UDP` (UFO; not handled).
pub const GSO_UDP: u8 = 3;
/// `VIRTIO_NET_HDR_GSO_TCPV6`.
pub const GSO_TCPV6: u8 = 4;
/// `VIRTIO_NET_HDR_GSO_ECN` bit: the super-frame has CWR set.
pub const GSO_ECN: u8 = 0x80;

const ETH_HLEN: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const IPPROTO_TCP: u8 = 6;
const TCP_FIN: u8 = 0x01;
const TCP_PSH: u8 = 0x08;
const TCP_CWR: u8 = 0x80;

/// What comes in front of the IP header in the frames handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Link {
    /// Ethernet frames (a TAP), possibly 802.1Q / 802.1ad tagged on transmit.
    #[default]
    Ethernet,
    /// Bare IPv4 / IPv6 packets (a TUN opened with `IFF_NO_PI`); the IP version nibble says
    /// which.
    Ip,
}

impl Link {
    /// Offset of the IP header when untagged.
    fn l3(self) -> usize {
        match self {
            Link::Ethernet => ETH_HLEN,
            Link::Ip => 0,
        }
    }

    /// Offset of the IP header and its ethertype (Ethernet: skipping 802.1Q / 802.1ad tags;
    /// IP: from the version nibble).
    fn l3_offset(self, frame: &[u8]) -> Option<(usize, u16)> {
        match self {
            Link::Ethernet => l3_offset(frame),
            Link::Ip => Some((0, ip_ethertype(frame)?)),
        }
    }

    /// Offset and ethertype of the IP header of an untagged frame (what is coalesced).
    fn untagged_l3(self, frame: &[u8]) -> Option<(usize, u16)> {
        match self {
            Link::Ethernet => Some((ETH_HLEN, be16(frame.get(..ETH_HLEN)?, 12))),
            Link::Ip => Some((0, ip_ethertype(frame)?)),
        }
    }
}

/// The ethertype matching the version of the IP packet `p`.
fn ip_ethertype(p: &[u8]) -> Option<u16> {
    match p.first()? >> 4 {
        4 => Some(ETHERTYPE_IPV4),
        6 => Some(ETHERTYPE_IPV6),
        _ => None,
    }
}

/// Why a frame cannot be processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GsoError {
    /// Shorter than the vnet header.
    ShortHeader,
    /// A GSO type other than TCPv4 / TCPv6.
    UnsupportedGso(u8),
    /// The checksum range lies outside the frame.
    BadChecksumRange,
    /// The headers do not describe a TCP segment of the announced type.
    BadHeaders,
    /// `gso_size` is zero.
    ZeroGsoSize,
    /// The output buffer is too small for the segment.
    BufferTooSmall,
    /// Segment index past the last segment.
    NoSuchSegment,
}

impl fmt::Display for GsoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GsoError::ShortHeader => f.write_str("frame shorter than its vnet header"),
            GsoError::UnsupportedGso(t) => write!(f, "unsupported GSO type {t:#x}"),
            GsoError::BadChecksumRange => f.write_str("checksum offset outside the frame"),
            GsoError::BadHeaders => f.write_str("headers do not match the GSO type"),
            GsoError::ZeroGsoSize => f.write_str("GSO size 0"),
            GsoError::BufferTooSmall => f.write_str("output buffer too small"),
            GsoError::NoSuchSegment => f.write_str("no such segment"),
        }
    }
}

impl std::error::Error for GsoError {}

/// A `virtio_net_hdr` (little-endian fields, as the tun driver uses on little-endian hosts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VnetHdr {
    /// `F_NEEDS_CSUM` / `F_DATA_VALID`.
    pub flags: u8,
    /// `GSO_*`, possibly with [`GSO_ECN`].
    pub gso_type: u8,
    /// Length of the headers (a hint; recomputed from the frame here).
    pub hdr_len: u16,
    /// Payload bytes per segment (the MSS).
    pub gso_size: u16,
    /// Where checksumming starts (the L4 header), from the frame start.
    pub csum_start: u16,
    /// Offset of the checksum field from `csum_start`.
    pub csum_offset: u16,
}

impl VnetHdr {
    /// Parse the first [`VNET_HDR_LEN`] bytes of `b`.
    pub fn parse(b: &[u8]) -> Result<Self, GsoError> {
        let b: &[u8; VNET_HDR_LEN] = b
            .get(..VNET_HDR_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(GsoError::ShortHeader)?;
        let le = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        Ok(Self {
            flags: b[0],
            gso_type: b[1],
            hdr_len: le(2),
            gso_size: le(4),
            csum_start: le(6),
            csum_offset: le(8),
        })
    }

    /// The header's bytes.
    pub fn to_bytes(&self) -> [u8; VNET_HDR_LEN] {
        let mut b = [0u8; VNET_HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_le_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
        b
    }

    /// Whether the frame is a super-frame to be segmented.
    pub fn is_gso(&self) -> bool {
        self.gso_type & !GSO_ECN != GSO_NONE
    }
}

/// Finish a `NEEDS_CSUM` frame in place: sum `frame[csum_start..]` (the checksum field holds
/// the pseudo-header sum) and store the complement at `csum_start + csum_offset`.
pub fn complete_checksum(frame: &mut [u8], hdr: &VnetHdr) -> Result<(), GsoError> {
    let start = usize::from(hdr.csum_start);
    let at = start + usize::from(hdr.csum_offset);
    if at + 2 > frame.len() {
        return Err(GsoError::BadChecksumRange);
    }
    let mut c = !checksum::fold(checksum::add(0, &frame[start..]));
    // Like the kernel's skb_checksum_help (CSUM_MANGLED_0): a result of 0 goes out as its
    // ones'-complement twin 0xffff, which a UDP receiver must not read as "no checksum"
    // (RFC 768).
    if c == 0 {
        c = 0xffff;
    }
    frame[at..at + 2].copy_from_slice(&c.to_be_bytes());
    Ok(())
}

fn be16(b: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([b[i], b[i + 1]])
}

/// Offset of the IP header and its ethertype, skipping 802.1Q / 802.1ad tags.
fn l3_offset(frame: &[u8]) -> Option<(usize, u16)> {
    let mut off = ETH_HLEN - 2;
    loop {
        if off + 2 > frame.len() {
            return None;
        }
        let et = be16(frame, off);
        if et == ETHERTYPE_VLAN || et == ETHERTYPE_QINQ {
            off += 4;
            continue;
        }
        return Some((off + 2, et));
    }
}

/// A TCP super-frame checked and ready to be cut into segments.
#[derive(Debug, Clone)]
pub struct TcpSegmenter<'a> {
    frame: &'a [u8],
    l3: usize,
    l4: usize,
    hdr_len: usize,
    mss: usize,
    v6: bool,
    count: usize,
}

impl<'a> TcpSegmenter<'a> {
    /// Check that the Ethernet `frame` (without the vnet header) is the TCP super-frame `hdr`
    /// announces.
    pub fn new(hdr: &VnetHdr, frame: &'a [u8]) -> Result<Self, GsoError> {
        Self::with_link(Link::Ethernet, hdr, frame)
    }

    /// [`new`](Self::new) for a frame of the given [`Link`]: with [`Link::Ip`] the
    /// super-frame is a bare IP packet and so is every segment.
    pub fn with_link(link: Link, hdr: &VnetHdr, frame: &'a [u8]) -> Result<Self, GsoError> {
        let v6 = match hdr.gso_type & !GSO_ECN {
            GSO_TCPV4 => false,
            GSO_TCPV6 => true,
            t => return Err(GsoError::UnsupportedGso(t)),
        };
        if hdr.gso_size == 0 {
            return Err(GsoError::ZeroGsoSize);
        }
        let (l3, et) = link.l3_offset(frame).ok_or(GsoError::BadHeaders)?;
        let l4 = if v6 {
            if et != ETHERTYPE_IPV6 || frame.len() < l3 + 40 || frame[l3 + 6] != IPPROTO_TCP {
                return Err(GsoError::BadHeaders);
            }
            l3 + 40
        } else {
            if et != ETHERTYPE_IPV4 || frame.len() < l3 + 20 {
                return Err(GsoError::BadHeaders);
            }
            let ihl = usize::from(frame[l3] & 0x0f) * 4;
            if frame[l3] >> 4 != 4 || ihl < 20 || frame[l3 + 9] != IPPROTO_TCP {
                return Err(GsoError::BadHeaders);
            }
            l3 + ihl
        };
        if frame.len() < l4 + 20 {
            return Err(GsoError::BadHeaders);
        }
        let thl = usize::from(frame[l4 + 12] >> 4) * 4;
        let hdr_len = l4 + thl;
        if thl < 20 || frame.len() < hdr_len {
            return Err(GsoError::BadHeaders);
        }
        let mss = usize::from(hdr.gso_size);
        let payload = frame.len() - hdr_len;
        let count = payload.div_ceil(mss).max(1);
        Ok(Self {
            frame,
            l3,
            l4,
            hdr_len,
            mss,
            v6,
            count,
        })
    }

    /// Number of segments.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Length of the headers copied into every segment.
    pub fn header_len(&self) -> usize {
        self.hdr_len
    }

    /// Length of segment `i` (headers + payload), 0 past the end.
    pub fn segment_len(&self, i: usize) -> usize {
        if i >= self.count {
            return 0;
        }
        let payload = self.frame.len() - self.hdr_len;
        let from = i * self.mss;
        self.hdr_len + (payload - from).min(self.mss)
    }

    /// Length of every segment but the last.
    pub fn full_segment_len(&self) -> usize {
        self.segment_len(0)
    }

    /// Write segment `i` as a complete frame (Ethernet frame or IP packet, as the
    /// super-frame) at the start of `out`; returns its length.
    pub fn write_segment(&self, i: usize, out: &mut [u8]) -> Result<usize, GsoError> {
        if i >= self.count {
            return Err(GsoError::NoSuchSegment);
        }
        let len = self.segment_len(i);
        let out = out.get_mut(..len).ok_or(GsoError::BufferTooSmall)?;
        let (h, l3, l4) = (self.hdr_len, self.l3, self.l4);
        let from = h + i * self.mss;
        out[..h].copy_from_slice(&self.frame[..h]);
        out[h..].copy_from_slice(&self.frame[from..from + (len - h)]);
        let last = i + 1 == self.count;
        let l4_len = len - l4;
        // IP header.
        if self.v6 {
            // RFC 8200 §3: payload length excludes the fixed header. No extension headers here.
            let pl = (len - l3 - 40) as u16;
            out[l3 + 4..l3 + 6].copy_from_slice(&pl.to_be_bytes());
        } else {
            let tot = (len - l3) as u16;
            out[l3 + 2..l3 + 4].copy_from_slice(&tot.to_be_bytes());
            // inet_gso_segment: the id increases by one per segment.
            let id = be16(self.frame, l3 + 4).wrapping_add(i as u16);
            out[l3 + 4..l3 + 6].copy_from_slice(&id.to_be_bytes());
            out[l3 + 10..l3 + 12].fill(0);
            let c = checksum::checksum(&out[l3..l4]);
            out[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
        }
        // TCP header: sequence number, flags, checksum (tcp_gso_segment).
        let seq = u32::from_be_bytes([
            self.frame[l4 + 4],
            self.frame[l4 + 5],
            self.frame[l4 + 6],
            self.frame[l4 + 7],
        ])
        .wrapping_add((i * self.mss) as u32);
        out[l4 + 4..l4 + 8].copy_from_slice(&seq.to_be_bytes());
        let mut flags = self.frame[l4 + 13];
        if !last {
            flags &= !(TCP_FIN | TCP_PSH);
        }
        if i > 0 {
            flags &= !TCP_CWR;
        }
        out[l4 + 13] = flags;
        out[l4 + 16..l4 + 18].fill(0);
        let mut sum = if self.v6 {
            let mut s = checksum::add(0, &out[l3 + 8..l3 + 40]);
            s += l4_len as u64;
            s
        } else {
            let mut s = checksum::add(0, &out[l3 + 12..l3 + 20]);
            s += l4_len as u64;
            s
        };
        sum += u64::from(IPPROTO_TCP);
        sum = checksum::add(sum, &out[l4..]);
        let c = !checksum::fold(sum);
        out[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
        Ok(len)
    }
}

/// What to do with a frame read from an offloading TAP (after [`prepare`]).
#[derive(Debug)]
pub enum Prepared<'a> {
    /// An ordinary frame (its checksum, if any was pending, is now complete).
    Single,
    /// A super-frame to be cut.
    Tcp(TcpSegmenter<'a>),
}

/// Prepare `frame` described by `hdr`: complete a pending checksum of a non-GSO frame in
/// place, or check a GSO frame and return its segmenter.
pub fn prepare<'a>(hdr: &VnetHdr, frame: &'a mut [u8]) -> Result<Prepared<'a>, GsoError> {
    if hdr.is_gso() {
        return Ok(Prepared::Tcp(TcpSegmenter::new(hdr, frame)?));
    }
    if hdr.flags & F_NEEDS_CSUM != 0 {
        complete_checksum(frame, hdr)?;
    }
    Ok(Prepared::Single)
}

/// Cut a whole super-frame into owned segments (a convenience for tests and slow paths).
pub fn segment_all(hdr: &VnetHdr, frame: &[u8]) -> Result<Vec<Vec<u8>>, GsoError> {
    let seg = TcpSegmenter::new(hdr, frame)?;
    let mut out = Vec::with_capacity(seg.count());
    for i in 0..seg.count() {
        let mut b = vec![0u8; seg.segment_len(i)];
        seg.write_segment(i, &mut b)?;
        out.push(b);
    }
    Ok(out)
}

const TCP_ACK: u8 = 0x10;
/// Most segments joined into one super-frame.
pub const COALESCE_MAX_SEGS: usize = 64;

/// Where the headers of a coalescable TCP segment are.
#[derive(Debug, Clone, Copy)]
struct TcpInfo {
    l3: usize,
    l4: usize,
    hdr_len: usize,
    v6: bool,
}

/// A frame that may be joined: untagged Ethernet or a bare IP packet, IPv4 without options
/// and fragments or IPv6 without extension headers, TCP with data and only ACK/PSH, correct
/// checksums.
fn coalescable(link: Link, frame: &[u8]) -> Option<TcpInfo> {
    let (l3, et) = link.untagged_l3(frame)?;
    let (l4, v6) = match et {
        ETHERTYPE_IPV4 => {
            let ip = frame.get(l3..l3 + 20)?;
            if ip[0] != 0x45
                || ip[9] != IPPROTO_TCP
                || usize::from(be16(ip, 2)) != frame.len() - l3
                || be16(ip, 6) & 0x3fff != 0
                || checksum::checksum(ip) != 0
            {
                return None;
            }
            (l3 + 20, false)
        }
        ETHERTYPE_IPV6 => {
            let ip = frame.get(l3..l3 + 40)?;
            if ip[0] >> 4 != 6
                || ip[6] != IPPROTO_TCP
                || usize::from(be16(ip, 4)) != frame.len() - l3 - 40
            {
                return None;
            }
            (l3 + 40, true)
        }
        _ => return None,
    };
    let th = frame.get(l4..l4 + 20)?;
    let thl = usize::from(th[12] >> 4) * 4;
    let hdr_len = l4 + thl;
    if thl < 20 || hdr_len >= frame.len() || th[13] & !TCP_PSH != TCP_ACK {
        return None;
    }
    if checksum::fold(tcp_pseudo(frame, l3, v6, frame.len() - l4) + checksum::add(0, &frame[l4..]))
        != 0xffff
    {
        return None;
    }
    Some(TcpInfo {
        l3,
        l4,
        hdr_len,
        v6,
    })
}

/// Unfolded pseudo-header sum for a TCP segment of `l4_len` bytes.
fn tcp_pseudo(frame: &[u8], l3: usize, v6: bool, l4_len: usize) -> u64 {
    let addrs = if v6 {
        &frame[l3 + 8..l3 + 40]
    } else {
        &frame[l3 + 12..l3 + 20]
    };
    checksum::add(0, addrs) + l4_len as u64 + u64::from(IPPROTO_TCP)
}

/// Joins consecutive TCP segments of one flow into one super-frame (see the module docs).
///
/// Use: for every frame, [`try_append`](Self::try_append); if that refuses, write out what
/// [`take`](Self::take) returns (if anything), then [`start`](Self::start) with the frame and
/// write the frame as it is if that refuses too. At the end of a batch, write out
/// [`take`](Self::take). Output is always a vnet header followed by a frame.
#[derive(Debug, Clone)]
pub struct Coalescer {
    link: Link,
    buf: Vec<u8>,
    segs: usize,
    info: Option<TcpInfo>,
    mss: usize,
    next_seq: u32,
    next_id: u16,
    psh: bool,
    closed: bool,
}

impl Default for Coalescer {
    fn default() -> Self {
        Self::new()
    }
}

impl Coalescer {
    /// An empty coalescer of Ethernet frames with room for a 64 KB super-frame.
    pub fn new() -> Self {
        Self::with_link(Link::Ethernet)
    }

    /// An empty coalescer of frames of the given [`Link`] (with [`Link::Ip`], bare IP packets
    /// in and bare IP super-packets out, for a TUN).
    pub fn with_link(link: Link) -> Self {
        Self {
            link,
            buf: Vec::with_capacity(VNET_HDR_LEN + link.l3() + 65536),
            segs: 0,
            info: None,
            mss: 0,
            next_seq: 0,
            next_id: 0,
            psh: false,
            closed: false,
        }
    }

    /// Whether a frame is held.
    pub fn is_empty(&self) -> bool {
        self.info.is_none()
    }

    /// Segments held.
    pub fn segments(&self) -> usize {
        self.segs
    }

    /// Hold `frame` as the start of a run if it is a coalescable TCP segment; refuses (false)
    /// when something is already held.
    pub fn start(&mut self, frame: &[u8]) -> bool {
        if self.info.is_some() {
            return false;
        }
        let Some(info) = coalescable(self.link, frame) else {
            return false;
        };
        let l4 = info.l4;
        let payload = frame.len() - info.hdr_len;
        self.buf.clear();
        self.buf.extend_from_slice(&[0; VNET_HDR_LEN]);
        self.buf.extend_from_slice(frame);
        self.segs = 1;
        self.mss = payload;
        self.next_seq = seq_of(frame, l4).wrapping_add(payload as u32);
        self.next_id = if info.v6 {
            0
        } else {
            be16(frame, info.l3 + 4).wrapping_add(1)
        };
        self.psh = frame[l4 + 13] & TCP_PSH != 0;
        self.closed = self.psh;
        self.info = Some(info);
        true
    }

    /// Append `frame` to the held run if it continues it.
    pub fn try_append(&mut self, frame: &[u8]) -> bool {
        let Some(held) = self.info else {
            return false;
        };
        if self.closed || self.segs >= COALESCE_MAX_SEGS {
            return false;
        }
        let Some(info) = coalescable(self.link, frame) else {
            return false;
        };
        let (l3, l4, h) = (info.l3, info.l4, info.hdr_len);
        let payload = frame.len() - h;
        let cur = &self.buf[VNET_HDR_LEN..];
        if info.v6 != held.v6
            || h != held.hdr_len
            || payload > self.mss
            || cur.len() + payload - l3 > 65535
            || seq_of(frame, l4) != self.next_seq
            || frame[..l3] != cur[..l3]
        {
            return false;
        }
        let same_ip = if info.v6 {
            frame[l3..l3 + 4] == cur[l3..l3 + 4] && frame[l3 + 6..l4] == cur[l3 + 6..l4]
        } else {
            let df = frame[l3 + 6] & 0x40 != 0;
            frame[l3..l3 + 2] == cur[l3..l3 + 2]
                && frame[l3 + 6..l3 + 10] == cur[l3 + 6..l3 + 10]
                && frame[l3 + 12..l4] == cur[l3 + 12..l4]
                && (df || be16(frame, l3 + 4) == self.next_id)
        };
        // Ports, ACK number, data offset, window, urgent pointer and options; flags may
        // differ only in PSH.
        let same_tcp = frame[l4..l4 + 4] == cur[l4..l4 + 4]
            && frame[l4 + 8..l4 + 13] == cur[l4 + 8..l4 + 13]
            && frame[l4 + 14..l4 + 16] == cur[l4 + 14..l4 + 16]
            && frame[l4 + 18..h] == cur[l4 + 18..h];
        if !same_ip || !same_tcp {
            return false;
        }
        self.buf.extend_from_slice(&frame[h..]);
        self.segs += 1;
        self.next_seq = self.next_seq.wrapping_add(payload as u32);
        self.next_id = be16(frame, l3 + 4).wrapping_add(1);
        let psh = frame[l4 + 13] & TCP_PSH != 0;
        self.psh |= psh;
        self.closed = psh || payload < self.mss;
        true
    }

    /// Finish the held run: a single segment comes back unchanged behind a zeroed vnet
    /// header; several come back as one super-frame (lengths and IPv4 header checksum
    /// rewritten, the TCP checksum field holding the pseudo-header sum, vnet header with
    /// `NEEDS_CSUM` and the GSO type and size). `None` if nothing is held.
    pub fn take(&mut self) -> Option<&[u8]> {
        let info = self.info.take()?;
        if self.segs > 1 {
            let (l3, l4) = (info.l3, info.l4);
            let f = &mut self.buf[VNET_HDR_LEN..];
            let len = f.len();
            if info.v6 {
                f[l3 + 4..l3 + 6].copy_from_slice(&((len - l4) as u16).to_be_bytes());
            } else {
                f[l3 + 2..l3 + 4].copy_from_slice(&((len - l3) as u16).to_be_bytes());
                f[l3 + 10..l3 + 12].fill(0);
                let c = checksum::checksum(&f[l3..l4]);
                f[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
            }
            if self.psh {
                f[l4 + 13] |= TCP_PSH;
            }
            let pseudo = checksum::fold(tcp_pseudo(f, l3, info.v6, len - l4));
            f[l4 + 16..l4 + 18].copy_from_slice(&pseudo.to_be_bytes());
            let hdr = VnetHdr {
                flags: F_NEEDS_CSUM,
                gso_type: if info.v6 { GSO_TCPV6 } else { GSO_TCPV4 },
                hdr_len: info.hdr_len as u16,
                gso_size: self.mss as u16,
                csum_start: l4 as u16,
                csum_offset: 16,
            };
            self.buf[..VNET_HDR_LEN].copy_from_slice(&hdr.to_bytes());
        }
        self.segs = 0;
        Some(&self.buf)
    }
}

fn seq_of(frame: &[u8], l4: usize) -> u32 {
    u32::from_be_bytes([frame[l4 + 4], frame[l4 + 5], frame[l4 + 6], frame[l4 + 7]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tcp_frame(v6: bool, payload: &[u8], flags: u8, opts: usize) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        let thl = 20 + opts;
        if v6 {
            f.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
            let mut ip = vec![0u8; 40];
            ip[0] = 0x60;
            ip[4..6].copy_from_slice(&((thl + payload.len()) as u16).to_be_bytes());
            ip[6] = IPPROTO_TCP;
            ip[7] = 64;
            ip[8..24].copy_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
            ip[24..40].copy_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
            f.extend_from_slice(&ip);
        } else {
            f.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
            let mut ip = vec![0u8; 20];
            ip[0] = 0x45;
            let tot = (20 + thl + payload.len()).min(65535) as u16;
            ip[2..4].copy_from_slice(&tot.to_be_bytes());
            ip[4..6].copy_from_slice(&0xfff0u16.to_be_bytes());
            ip[6] = 0x40;
            ip[8] = 64;
            ip[9] = IPPROTO_TCP;
            ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
            ip[16..20].copy_from_slice(&[10, 0, 0, 2]);
            f.extend_from_slice(&ip);
        }
        let mut tcp = vec![0u8; thl];
        tcp[0..2].copy_from_slice(&5201u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&40000u16.to_be_bytes());
        tcp[4..8].copy_from_slice(&0xffff_ff00u32.to_be_bytes());
        tcp[8..12].copy_from_slice(&7u32.to_be_bytes());
        tcp[12] = ((thl / 4) as u8) << 4;
        tcp[13] = flags;
        tcp[14..16].copy_from_slice(&1000u16.to_be_bytes());
        for (k, b) in tcp[20..].iter_mut().enumerate() {
            *b = 1 + k as u8; // NOP-like filler, copied verbatim
        }
        f.extend_from_slice(&tcp);
        f.extend_from_slice(payload);
        f
    }

    /// Verify a segment's IP and TCP checksums independently of the segmenter.
    fn verify(seg: &[u8], v6: bool) {
        verify_at(seg, v6, 14);
    }

    /// [`verify`] for a frame whose IP header is at `l3` (0: a bare IP packet).
    fn verify_at(seg: &[u8], v6: bool, l3: usize) {
        let l4 = if v6 { l3 + 40 } else { l3 + 20 };
        if !v6 {
            assert_eq!(checksum::checksum(&seg[l3..l4]), 0, "IPv4 header checksum");
            assert_eq!(usize::from(be16(seg, l3 + 2)), seg.len() - l3);
        } else {
            assert_eq!(usize::from(be16(seg, l3 + 4)), seg.len() - l3 - 40);
        }
        let mut pseudo = Vec::new();
        if v6 {
            pseudo.extend_from_slice(&seg[l3 + 8..l3 + 40]);
            pseudo.extend_from_slice(&((seg.len() - l4) as u32).to_be_bytes());
            pseudo.extend_from_slice(&[0, 0, 0, IPPROTO_TCP]);
        } else {
            pseudo.extend_from_slice(&seg[l3 + 12..l3 + 20]);
            pseudo.extend_from_slice(&[0, IPPROTO_TCP]);
            pseudo.extend_from_slice(&((seg.len() - l4) as u16).to_be_bytes());
        }
        pseudo.extend_from_slice(&seg[l4..]);
        assert_eq!(checksum::checksum(&pseudo), 0, "TCP checksum");
    }

    fn gso_hdr(v6: bool, mss: u16) -> VnetHdr {
        VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: if v6 { GSO_TCPV6 } else { GSO_TCPV4 },
            hdr_len: 0,
            gso_size: mss,
            csum_start: if v6 { 54 } else { 34 },
            csum_offset: 16,
        }
    }

    #[test]
    fn vnet_header_round_trip() {
        let h = gso_hdr(false, 1448);
        assert_eq!(VnetHdr::parse(&h.to_bytes()).unwrap(), h);
        assert_eq!(VnetHdr::parse(&[0; 9]), Err(GsoError::ShortHeader));
    }

    #[test]
    fn ipv4_segments_like_the_kernel() {
        let payload: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
        let f = tcp_frame(false, &payload, 0x18 | TCP_FIN | TCP_CWR, 12);
        let segs = segment_all(&gso_hdr(false, 1448), &f).unwrap();
        assert_eq!(segs.len(), 4);
        let h = 14 + 20 + 32;
        assert_eq!(segs[0].len(), h + 1448);
        assert_eq!(segs[3].len(), h + 5000 - 3 * 1448);
        for (i, s) in segs.iter().enumerate() {
            verify(s, false);
            assert_eq!(be16(s, 18), 0xfff0u16.wrapping_add(i as u16), "IP id");
            let seq = u32::from_be_bytes([s[38], s[39], s[40], s[41]]);
            assert_eq!(seq, 0xffff_ff00u32.wrapping_add(1448 * i as u32));
            let fl = s[47];
            assert_eq!(fl & TCP_FIN != 0, i == 3);
            assert_eq!(fl & TCP_PSH != 0, i == 3);
            assert_eq!(fl & TCP_CWR != 0, i == 0);
            assert!(fl & 0x10 != 0, "ACK kept");
            assert_eq!(&s[14 + 20 + 20..h], &f[54..h], "options copied");
        }
        let joined: Vec<u8> = segs.iter().flat_map(|s| s[h..].to_vec()).collect();
        assert_eq!(joined, payload);
    }

    #[test]
    fn ipv6_segments_verify() {
        let payload = vec![0xabu8; 3000];
        let f = tcp_frame(true, &payload, 0x10, 0);
        let segs = segment_all(&gso_hdr(true, 1000), &f).unwrap();
        assert_eq!(segs.len(), 3);
        for s in &segs {
            verify(s, true);
        }
    }

    #[test]
    fn zero_checksum_goes_out_as_ffff() {
        // The bytes after the field sum to 0xffff, so the complement is 0.
        let mut f = [0u8, 0, 0xff, 0xff];
        let h = VnetHdr {
            flags: F_NEEDS_CSUM,
            ..VnetHdr::default()
        };
        complete_checksum(&mut f, &h).unwrap();
        assert_eq!(f, [0xff, 0xff, 0xff, 0xff]);
        let mut g = [0u8, 0, 0x12, 0x34];
        complete_checksum(&mut g, &h).unwrap();
        assert_eq!(u16::from_be_bytes([g[0], g[1]]), !0x1234);
    }

    #[test]
    fn needs_csum_is_completed() {
        // A TCP frame whose checksum field holds the pseudo-header sum, as the stack leaves it.
        let mut f = tcp_frame(false, b"hello, world", 0x18, 0);
        let l4_len = f.len() - 34;
        let mut pseudo = checksum::add(0, &f[26..34]) + u64::from(IPPROTO_TCP) + l4_len as u64;
        pseudo = u64::from(checksum::fold(pseudo));
        f[50..52].copy_from_slice(&(pseudo as u16).to_be_bytes());
        let hdr = VnetHdr {
            flags: F_NEEDS_CSUM,
            csum_start: 34,
            csum_offset: 16,
            ..VnetHdr::default()
        };
        assert!(matches!(prepare(&hdr, &mut f), Ok(Prepared::Single)));
        // The IPv4 header checksum of the test frame is not set; fix it to use `verify`.
        let c = checksum::checksum(&f[14..34]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
        verify(&f, false);
        let bad = VnetHdr {
            csum_start: 60,
            ..hdr
        };
        assert_eq!(
            complete_checksum(&mut f, &bad),
            Err(GsoError::BadChecksumRange)
        );
    }

    #[test]
    fn rejects_inconsistent_frames() {
        let f = tcp_frame(false, &[1; 100], 0x10, 0);
        assert_eq!(
            TcpSegmenter::new(&gso_hdr(true, 50), &f).unwrap_err(),
            GsoError::BadHeaders
        );
        assert_eq!(
            TcpSegmenter::new(&gso_hdr(false, 0), &f).unwrap_err(),
            GsoError::ZeroGsoSize
        );
        let udp = VnetHdr {
            gso_type: GSO_UDP,
            ..gso_hdr(false, 100)
        };
        assert_eq!(
            TcpSegmenter::new(&udp, &f).unwrap_err(),
            GsoError::UnsupportedGso(GSO_UDP)
        );
        let s = TcpSegmenter::new(&gso_hdr(false, 40), &f).unwrap();
        assert_eq!(
            s.write_segment(3, &mut [0; 100]),
            Err(GsoError::NoSuchSegment)
        );
        assert_eq!(
            s.write_segment(0, &mut [0; 10]),
            Err(GsoError::BufferTooSmall)
        );
    }

    /// Segments of a super-frame as the segmenter cuts them (correct checksums).
    fn cut(v6: bool, len: usize, mss: u16, flags: u8) -> (Vec<u8>, Vec<Vec<u8>>) {
        let payload: Vec<u8> = (0..len).map(|i| (i * 13 % 251) as u8).collect();
        let mut f = tcp_frame(v6, &payload, flags, 12);
        if !v6 {
            let c = checksum::checksum(&f[14..34]);
            f[24..26].copy_from_slice(&c.to_be_bytes());
        }
        let segs = segment_all(&gso_hdr(v6, mss), &f).unwrap();
        (f, segs)
    }

    fn coalesce_all(segs: &[Vec<u8>]) -> Vec<Vec<u8>> {
        coalesce_all_link(Link::Ethernet, segs)
    }

    fn coalesce_all_link(link: Link, segs: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut c = Coalescer::with_link(link);
        let mut out = Vec::new();
        for s in segs {
            if c.try_append(s) {
                continue;
            }
            if let Some(b) = c.take() {
                out.push(b.to_vec());
            }
            if !c.start(s) {
                let mut plain = vec![0u8; VNET_HDR_LEN];
                plain.extend_from_slice(s);
                out.push(plain);
            }
        }
        if let Some(b) = c.take() {
            out.push(b.to_vec());
        }
        out
    }

    #[test]
    fn coalesced_super_frame_segments_back_to_the_same_frames() {
        for v6 in [false, true] {
            let (_, segs) = cut(v6, 20000, 1400, 0x18);
            let out = coalesce_all(&segs);
            assert_eq!(out.len(), 1, "one super-frame");
            let hdr = VnetHdr::parse(&out[0]).unwrap();
            assert!(hdr.is_gso());
            assert_eq!(hdr.gso_size, 1400);
            assert_eq!(hdr.flags, F_NEEDS_CSUM);
            let again = segment_all(&hdr, &out[0][VNET_HDR_LEN..]).unwrap();
            assert_eq!(again, segs);
        }
    }

    #[test]
    fn runs_stop_at_gaps_bad_checksums_and_other_flows() {
        let (_, segs) = cut(false, 7000, 1000, 0x10);
        // A lost segment: two runs.
        let mut gap = segs.clone();
        gap.remove(3);
        let out = coalesce_all(&gap);
        assert_eq!(out.len(), 2);
        assert_eq!(VnetHdr::parse(&out[0]).unwrap().gso_type, GSO_TCPV4);
        // A corrupted payload byte: that segment goes out alone and unchanged.
        let mut bad = segs.clone();
        bad[2][80] ^= 1;
        let out = coalesce_all(&bad);
        assert_eq!(out.len(), 3);
        assert_eq!(&out[1][VNET_HDR_LEN..], &bad[2][..]);
        assert_eq!(VnetHdr::parse(&out[1]).unwrap(), VnetHdr::default());
        // Another flow in between.
        let (_, other) = cut(true, 3000, 1000, 0x10);
        let mut mixed = segs[..3].to_vec();
        mixed.push(other[0].clone());
        mixed.extend_from_slice(&segs[3..]);
        assert_eq!(coalesce_all(&mixed).len(), 3);
        // A single segment comes back untouched.
        let one = coalesce_all(&segs[..1]);
        assert_eq!(&one[0][VNET_HDR_LEN..], &segs[0][..]);
        assert_eq!(&one[0][..VNET_HDR_LEN], &[0; VNET_HDR_LEN]);
    }

    #[test]
    fn psh_ends_a_run_and_syn_is_never_joined() {
        let (_, segs) = cut(false, 5000, 1000, 0x18);
        // The last segment carries PSH: joining the first 5 and then starting anew after it.
        let mut twice = segs.clone();
        twice.extend(cut(false, 2000, 1000, 0x10).1);
        assert!(coalesce_all(&twice).len() >= 2);
        let (_, syn) = cut(false, 100, 1000, 0x12);
        let mut c = Coalescer::new();
        assert!(!c.start(&syn[0]));
        assert!(c.is_empty());
    }

    /// The Ethernet test frame without its Ethernet header (a packet as a TUN carries it),
    /// with the IPv4 header checksum set.
    fn ip_packet(v6: bool, payload: &[u8], flags: u8, opts: usize) -> Vec<u8> {
        let mut p = tcp_frame(v6, payload, flags, opts)[ETH_HLEN..].to_vec();
        if !v6 {
            let c = checksum::checksum(&p[..20]);
            p[10..12].copy_from_slice(&c.to_be_bytes());
        }
        p
    }

    /// A TUN's GSO header: the offsets count from the IP header.
    fn ip_gso_hdr(v6: bool, mss: u16) -> VnetHdr {
        VnetHdr {
            csum_start: if v6 { 40 } else { 20 },
            ..gso_hdr(v6, mss)
        }
    }

    fn segment_ip(hdr: &VnetHdr, packet: &[u8]) -> Vec<Vec<u8>> {
        let seg = TcpSegmenter::with_link(Link::Ip, hdr, packet).unwrap();
        (0..seg.count())
            .map(|i| {
                let mut b = vec![0u8; seg.segment_len(i)];
                assert_eq!(seg.write_segment(i, &mut b), Ok(b.len()));
                b
            })
            .collect()
    }

    #[test]
    fn ip_packets_segment_like_the_kernel() {
        let payload: Vec<u8> = (0..5000u32).map(|i| (i * 11) as u8).collect();
        for v6 in [false, true] {
            let p = ip_packet(v6, &payload, 0x18 | TCP_FIN | TCP_CWR, 12);
            let segs = segment_ip(&ip_gso_hdr(v6, 1400), &p);
            assert_eq!(segs.len(), 4);
            let l4 = if v6 { 40 } else { 20 };
            let h = l4 + 32;
            assert_eq!(segs[0].len(), h + 1400);
            assert_eq!(segs[3].len(), h + 5000 - 3 * 1400);
            for (i, s) in segs.iter().enumerate() {
                assert_eq!(s[0] >> 4, if v6 { 6 } else { 4 }, "an IP packet");
                verify_at(s, v6, 0);
                if !v6 {
                    assert_eq!(be16(s, 4), 0xfff0u16.wrapping_add(i as u16), "IP id");
                }
                let seq = u32::from_be_bytes([s[l4 + 4], s[l4 + 5], s[l4 + 6], s[l4 + 7]]);
                assert_eq!(seq, 0xffff_ff00u32.wrapping_add(1400 * i as u32));
                let fl = s[l4 + 13];
                assert_eq!(fl & TCP_FIN != 0, i == 3, "FIN on the last only");
                assert_eq!(fl & TCP_PSH != 0, i == 3, "PSH on the last only");
                assert_eq!(fl & TCP_CWR != 0, i == 0, "CWR on the first only");
                assert!(fl & TCP_ACK != 0, "ACK kept");
                assert_eq!(&s[l4 + 20..h], &p[l4 + 20..h], "options copied");
            }
            let joined: Vec<u8> = segs.iter().flat_map(|s| s[h..].to_vec()).collect();
            assert_eq!(joined, payload);
            // The same segments as the Ethernet frame's, without the Ethernet header.
            let eth = segment_all(
                &gso_hdr(v6, 1400),
                &tcp_frame(v6, &payload, 0x19 | 0x80, 12),
            );
            let eth: Vec<Vec<u8>> = eth
                .unwrap()
                .iter()
                .map(|f| f[ETH_HLEN..].to_vec())
                .collect();
            assert_eq!(eth, segs);
        }
    }

    #[test]
    fn ip_packets_need_an_ip_header() {
        let p = ip_packet(false, &[1; 100], 0x10, 0);
        // An IPv4 packet announced as TCPv6, an Ethernet frame on an IP link, a bare packet
        // on an Ethernet link.
        let refused = [
            TcpSegmenter::with_link(Link::Ip, &ip_gso_hdr(true, 50), &p).unwrap_err(),
            TcpSegmenter::with_link(
                Link::Ip,
                &gso_hdr(false, 50),
                &tcp_frame(false, &[1; 100], 0x10, 0),
            )
            .unwrap_err(),
            TcpSegmenter::new(&ip_gso_hdr(false, 50), &p).unwrap_err(),
        ];
        assert_eq!(refused, [GsoError::BadHeaders; 3]);
        // A pending checksum of a bare packet: offsets from the IP header.
        let mut q = ip_packet(false, b"payload", 0x18, 0);
        let pseudo = checksum::fold(tcp_pseudo(&q, 0, false, q.len() - 20));
        q[36..38].copy_from_slice(&pseudo.to_be_bytes());
        complete_checksum(&mut q, &ip_gso_hdr(false, 0)).unwrap();
        verify_at(&q, false, 0);
    }

    #[test]
    fn ip_packets_coalesce_and_segment_back() {
        for v6 in [false, true] {
            let payload: Vec<u8> = (0..20000).map(|i| (i * 13 % 251) as u8).collect();
            let p = ip_packet(v6, &payload, 0x18, 12);
            let segs = segment_ip(&ip_gso_hdr(v6, 1400), &p);
            let out = coalesce_all_link(Link::Ip, &segs);
            assert_eq!(out.len(), 1, "one super-packet");
            let hdr = VnetHdr::parse(&out[0]).unwrap();
            let l4 = if v6 { 40 } else { 20 };
            assert_eq!(hdr.gso_type, if v6 { GSO_TCPV6 } else { GSO_TCPV4 });
            assert_eq!((hdr.gso_size, hdr.flags), (1400, F_NEEDS_CSUM));
            assert_eq!(
                (usize::from(hdr.csum_start), usize::from(hdr.hdr_len)),
                (l4, l4 + 32)
            );
            let mut sup = out[0][VNET_HDR_LEN..].to_vec();
            assert_eq!(segment_ip(&hdr, &sup), segs);
            // Its checksum field holds the pseudo-header sum: completed, it verifies.
            complete_checksum(&mut sup, &hdr).unwrap();
            verify_at(&sup, v6, 0);
            assert_eq!(&sup[l4 + 32..], &payload[..]);
            // The Ethernet coalescer does not take bare packets.
            assert!(!Coalescer::new().start(&segs[0]));
        }
    }

    #[test]
    fn ip_runs_stop_at_psh_gaps_and_other_packets() {
        let p = ip_packet(false, &vec![7u8; 7000], 0x10, 0);
        let segs = segment_ip(&ip_gso_hdr(false, 1000), &p);
        // A UDP packet between segments 2 and 3: two runs around it, the UDP packet alone.
        let mut udp = segs[0].clone();
        udp[9] = 17;
        let mut mixed = segs[..3].to_vec();
        mixed.push(udp.clone());
        mixed.extend_from_slice(&segs[3..]);
        let out = coalesce_all_link(Link::Ip, &mixed);
        assert_eq!(out.len(), 3);
        assert_eq!(&out[1][VNET_HDR_LEN..], &udp[..]);
        assert_eq!(VnetHdr::parse(&out[1]).unwrap(), VnetHdr::default());
        // A gap.
        let mut gap = segs.clone();
        gap.remove(4);
        assert_eq!(coalesce_all_link(Link::Ip, &gap).len(), 2);
        // PSH on segment 2 ends the run there.
        let pushed = ip_packet(false, &vec![7u8; 3000], 0x18, 0);
        let mut psh = segment_ip(&ip_gso_hdr(false, 1000), &pushed);
        let more = ip_packet(false, &vec![7u8; 2000], 0x10, 0);
        let mut next = segment_ip(&ip_gso_hdr(false, 1000), &more);
        // Continue the sequence after the pushed run.
        for (k, s) in next.iter_mut().enumerate() {
            let seq = 0xffff_ff00u32.wrapping_add(3000 + 1000 * k as u32);
            s[24..28].copy_from_slice(&seq.to_be_bytes());
            s[36..38].fill(0);
            let sum = tcp_pseudo(s, 0, false, s.len() - 20) + checksum::add(0, &s[20..]);
            s[36..38].copy_from_slice(&(!checksum::fold(sum)).to_be_bytes());
        }
        psh.extend(next);
        let out = coalesce_all_link(Link::Ip, &psh);
        assert_eq!(out.len(), 2, "PSH closes the first run");
        assert_eq!(VnetHdr::parse(&out[0]).unwrap().gso_size, 1000);
        assert!(out[0][VNET_HDR_LEN + 33] & TCP_PSH != 0);
        // Not an IP packet at all.
        assert!(!Coalescer::with_link(Link::Ip).start(&[0u8; 60]));
    }

    proptest! {
        #[test]
        fn ip_segments_reassemble_and_verify(
            v6 in any::<bool>(),
            len in 0usize..9000,
            mss in 1u16..3000,
            flags in any::<u8>(),
        ) {
            let payload: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(29)).collect();
            let p = ip_packet(v6, &payload, flags, 8);
            let segs = segment_ip(&ip_gso_hdr(v6, mss), &p);
            let h = if v6 { 40 } else { 20 } + 28;
            let mut joined = Vec::new();
            for s in &segs {
                verify_at(s, v6, 0);
                joined.extend_from_slice(&s[h..]);
            }
            prop_assert_eq!(joined, payload);
        }

        #[test]
        fn ip_link_never_panics(
            hdr in proptest::collection::vec(any::<u8>(), 10..12),
            frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..6),
        ) {
            if let Ok(h) = VnetHdr::parse(&hdr) {
                for f in &frames {
                    if let Ok(s) = TcpSegmenter::with_link(Link::Ip, &h, f) {
                        let mut out = vec![0u8; 70000];
                        for i in 0..s.count().min(300) {
                            prop_assert!(s.write_segment(i, &mut out).is_ok());
                        }
                    }
                }
            }
            let _ = coalesce_all_link(Link::Ip, &frames);
        }

        #[test]
        fn segments_reassemble_and_verify(
            v6 in any::<bool>(),
            len in 0usize..9000,
            mss in 1u16..3000,
            opts in 0usize..11,
            flags in any::<u8>(),
            seed in any::<u8>(),
        ) {
            let payload: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect();
            let f = tcp_frame(v6, &payload, flags, opts * 4);
            let segs = segment_all(&gso_hdr(v6, mss), &f).unwrap();
            let h = 14 + if v6 { 40 } else { 20 } + 20 + opts * 4;
            prop_assert_eq!(segs.len(), len.div_ceil(usize::from(mss)).max(1));
            let mut joined = Vec::new();
            for (i, s) in segs.iter().enumerate() {
                verify(s, v6);
                if i + 1 < segs.len() {
                    prop_assert_eq!(s.len(), h + usize::from(mss));
                }
                joined.extend_from_slice(&s[h..]);
            }
            prop_assert_eq!(joined, payload);
        }

        #[test]
        fn never_panics(
            hdr in proptest::collection::vec(any::<u8>(), 0..12),
            mut frame in proptest::collection::vec(any::<u8>(), 0..400),
        ) {
            if let Ok(h) = VnetHdr::parse(&hdr) {
                if let Ok(Prepared::Tcp(s)) = prepare(&h, &mut frame.clone()) {
                    let mut out = vec![0u8; 70000];
                    for i in 0..s.count().min(500) {
                        let n = s.write_segment(i, &mut out).unwrap();
                        prop_assert_eq!(n, s.segment_len(i));
                    }
                }
                let _ = complete_checksum(&mut frame, &h);
            }
        }

        #[test]
        fn coalescing_preserves_every_payload_byte(
            v6 in any::<bool>(),
            len in 1usize..20000,
            mss in 500u16..1500,
            drop in proptest::collection::vec(any::<bool>(), 0..40),
        ) {
            let (_, segs) = cut(v6, len, mss, 0x10);
            let kept: Vec<Vec<u8>> = segs
                .iter()
                .enumerate()
                .filter(|(i, _)| !drop.get(*i).copied().unwrap_or(false))
                .map(|(_, s)| s.clone())
                .collect();
            let mut again = Vec::new();
            for b in coalesce_all(&kept) {
                let h = VnetHdr::parse(&b).unwrap();
                if h.is_gso() {
                    again.extend(segment_all(&h, &b[VNET_HDR_LEN..]).unwrap());
                } else {
                    again.push(b[VNET_HDR_LEN..].to_vec());
                }
            }
            prop_assert_eq!(again, kept);
        }

        #[test]
        fn coalescer_never_panics(
            frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..8),
            seed in any::<(usize, u8)>(),
        ) {
            let (_, segs) = cut(seed.1 & 1 == 0, 3000, 700, 0x10);
            let mut all = segs.clone();
            let at = seed.0 % all.len();
            let b = seed.0 % all[at].len();
            all[at][b] ^= seed.1 | 1;
            all.extend(frames);
            let _ = coalesce_all(&all);
        }

        #[test]
        fn never_panics_on_tcp_like_frames(
            v6 in any::<bool>(),
            mss in 0u16..2000,
            gso_type in any::<u8>(),
            cut in 0usize..200,
            byte in any::<(usize, u8)>(),
        ) {
            let mut f = tcp_frame(v6, &[5; 150], 0x10, 8);
            let at = byte.0 % f.len();
            f[at] = byte.1;
            f.truncate(f.len().saturating_sub(cut));
            let h = VnetHdr { gso_type, ..gso_hdr(v6, mss) };
            if let Ok(Prepared::Tcp(s)) = prepare(&h, &mut f) {
                let mut out = vec![0u8; 4000];
                for i in 0..s.count() {
                    prop_assert!(s.write_segment(i, &mut out).is_ok());
                }
            }
        }
    }
}
