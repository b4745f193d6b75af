//! Which data-path worker (queue of a multi-queue TAP) carries a frame.
//!
//! With `[datapath] workers = N` an Ethernet pseudowire's TAP has N queues, each read by its
//! own transmit loop. The kernel's tun driver picks the queue of a frame it hands to us by
//! flow (`tun_automq_select_queue`: the queue a frame of the same flow was last *written*
//! through, else a hash), so the receive side decides where the flow's returning frames
//! go by choosing the queue it writes a frame through. [`queue_for_frame`] makes that choice
//! per flow and symmetrically (both directions of a TCP connection hash alike): frames of one
//! flow always go through one queue (no reordering inside a flow), and different flows are
//! spread over the queues, so the transmit loops share the work of many flows.

/// Most queues (data-path workers) per pseudowire; `[datapath] workers` above this uses this
/// many queues (the tun driver allows 256; each queue is one descriptor per session).
pub const MAX_QUEUES: usize = 64;

const ETH_P_IPV4: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;

/// The queue (0..`queues`) for an Ethernet frame: a symmetric hash of its IP addresses and,
/// for TCP / UDP / SCTP / DCCP without fragmentation, ports. Frames that are not IP (ARP, ...)
/// or too short to read go to queue 0. `queues` 0 or 1 always gives 0.
pub fn queue_for_frame(frame: &[u8], queues: usize) -> usize {
    if queues <= 1 {
        return 0;
    }
    let Some(h) = flow_hash(frame) else {
        return 0;
    };
    // Multiply-shift onto 0..queues (as the kernel's reciprocal_scale).
    ((u64::from(h) * queues as u64) >> 32) as usize
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Symmetric flow hash of an Ethernet frame (one 802.1Q tag is skipped), or `None` if it is
/// not IPv4 / IPv6.
fn flow_hash(frame: &[u8]) -> Option<u32> {
    let mut off = 12;
    let mut ethertype = be16(frame, off)?;
    if ethertype == ETH_P_8021Q {
        off += 4;
        ethertype = be16(frame, off)?;
    }
    let ip = frame.get(off + 2..)?;
    let (a, b, proto, l4): (&[u8], &[u8], u8, Option<&[u8]>) = match ethertype {
        ETH_P_IPV4 => {
            let ihl = usize::from(ip.first()? & 0x0f) * 4;
            let frag = be16(ip, 6)? & 0x3fff != 0;
            (
                ip.get(12..16)?,
                ip.get(16..20)?,
                *ip.get(9)?,
                (!frag).then(|| ip.get(ihl..)).flatten(),
            )
        }
        ETH_P_IPV6 => (ip.get(8..24)?, ip.get(24..40)?, *ip.get(6)?, ip.get(40..)),
        _ => return None,
    };
    let (pa, pb) = match (proto, l4) {
        // TCP, UDP, DCCP, SCTP: ports first in the header.
        (6 | 17 | 33 | 132, Some(l4)) => (be16(l4, 0).unwrap_or(0), be16(l4, 2).unwrap_or(0)),
        _ => (0, 0),
    };
    // Order the two endpoints so that both directions of a flow hash alike.
    let (lo, hi) = if (a, pa) <= (b, pb) {
        ((a, pa), (b, pb))
    } else {
        ((b, pb), (a, pa))
    };
    let mut h = Fnv::default();
    h.write(lo.0);
    h.write(&lo.1.to_be_bytes());
    h.write(hi.0);
    h.write(&hi.1.to_be_bytes());
    h.write(&[proto]);
    Some(h.finish())
}

/// 32-bit FNV-1a with a final avalanche: a handful of bytes per frame, no state, no keys
/// (the choice only balances load; an attacker who aims all flows at one queue gains nothing
/// over sending them in one flow).
struct Fnv(u32);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0x811c_9dc5)
    }
}

impl Fnv {
    fn write(&mut self, b: &[u8]) {
        for &x in b {
            self.0 = (self.0 ^ u32::from(x)).wrapping_mul(0x0100_0193);
        }
    }

    fn finish(&self) -> u32 {
        // murmur3 fmix32: the top bits (used by the multiply-shift) depend on every input bit.
        let mut h = self.0;
        h ^= h >> 16;
        h = h.wrapping_mul(0x85eb_ca6b);
        h ^= h >> 13;
        h = h.wrapping_mul(0xc2b2_ae35);
        h ^ (h >> 16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet + IPv4 + TCP/UDP frame from `src:sport` to `dst:dport`.
    fn v4(src: [u8; 4], dst: [u8; 4], proto: u8, sport: u16, dport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 20];
        f[12..14].copy_from_slice(&ETH_P_IPV4.to_be_bytes());
        f[14] = 0x45;
        f[14 + 9] = proto;
        f[14 + 12..14 + 16].copy_from_slice(&src);
        f[14 + 16..14 + 20].copy_from_slice(&dst);
        f[34..36].copy_from_slice(&sport.to_be_bytes());
        f[36..38].copy_from_slice(&dport.to_be_bytes());
        f
    }

    fn v6(src: u8, dst: u8, sport: u16, dport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 40 + 20];
        f[12..14].copy_from_slice(&ETH_P_IPV6.to_be_bytes());
        f[14] = 0x60;
        f[14 + 6] = 6;
        f[14 + 8 + 15] = src;
        f[14 + 24 + 15] = dst;
        f[54..56].copy_from_slice(&sport.to_be_bytes());
        f[56..58].copy_from_slice(&dport.to_be_bytes());
        f
    }

    #[test]
    fn both_directions_of_a_flow_use_one_queue() {
        for q in [2, 3, 4, 8, 64] {
            for port in 40000..40100 {
                let a = v4([10, 0, 0, 1], [10, 0, 0, 2], 6, port, 5201);
                let b = v4([10, 0, 0, 2], [10, 0, 0, 1], 6, 5201, port);
                assert_eq!(queue_for_frame(&a, q), queue_for_frame(&b, q), "{q} {port}");
                let a = v6(1, 2, port, 443);
                let b = v6(2, 1, 443, port);
                assert_eq!(queue_for_frame(&a, q), queue_for_frame(&b, q), "{q} {port}");
            }
        }
    }

    /// 1,000 flows between the same two hosts fill every queue, none with more than twice its
    /// share.
    #[test]
    fn flows_spread_over_all_queues() {
        for q in [2, 4, 7] {
            let mut n = vec![0usize; q];
            for port in 0..1000u16 {
                let f = v4([192, 0, 2, 1], [192, 0, 2, 2], 17, 30000 + port, 9);
                let i = queue_for_frame(&f, q);
                assert!(i < q);
                n[i] += 1;
            }
            let share = 1000 / q;
            assert!(
                n.iter().all(|&c| c > share / 2 && c < share * 2),
                "{q}: {n:?}"
            );
        }
    }

    #[test]
    fn one_queue_non_ip_and_short_frames_go_to_queue_zero() {
        let tcp = v4([10, 0, 0, 1], [10, 0, 0, 2], 6, 1234, 80);
        assert_eq!(queue_for_frame(&tcp, 1), 0);
        assert_eq!(queue_for_frame(&tcp, 0), 0);
        let mut arp = tcp.clone();
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert_eq!(queue_for_frame(&arp, 8), 0);
        for len in 0..tcp.len() {
            assert!(queue_for_frame(&tcp[..len], 8) < 8);
        }
        assert_eq!(queue_for_frame(&[], 8), 0);
    }

    #[test]
    fn a_vlan_tag_is_skipped() {
        let plain = v4([10, 0, 0, 1], [10, 0, 0, 2], 6, 1234, 80);
        let mut tagged = plain[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
        tagged.extend_from_slice(&plain[12..]);
        for q in [2, 5, 16] {
            assert_eq!(queue_for_frame(&plain, q), queue_for_frame(&tagged, q));
        }
    }

    /// Fragments carry no ports after the first: every fragment of a datagram hashes on the
    /// addresses alone, so all of them take one queue.
    #[test]
    fn fragments_hash_on_addresses_only() {
        let mut first = v4([10, 0, 0, 1], [10, 0, 0, 2], 17, 1111, 2222);
        first[14 + 6] = 0x20; // MF
        let mut other = v4([10, 0, 0, 1], [10, 0, 0, 2], 17, 7, 9);
        other[14 + 7] = 0xb9; // offset
        for q in [2, 3, 8] {
            assert_eq!(queue_for_frame(&first, q), queue_for_frame(&other, q));
        }
    }
}
