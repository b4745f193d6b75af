//! MTU of an Ethernet pseudowire device (docs/reference/kernel.md §6.2, `l2tp_eth_adjust_mtu`).

use crate::Encap;

/// The l2tpeth MTU for a tunnel with `encap` over IPv4 or IPv6, a session header of `hdr_len`
/// bytes and the tunnel socket's cached path MTU (`None` = no route cached).
///
/// overhead = 8 (UDP) + hdr_len + 14 (Ethernet) + 20/40 (IP); MTU = path MTU − overhead,
/// or 1500 − overhead when that is negative, absent or above 65535.
pub fn eth_mtu(encap: Encap, ipv6: bool, hdr_len: usize, path_mtu: Option<u32>) -> u32 {
    let udp = if encap == Encap::Udp { 8 } else { 0 };
    let l3 = if ipv6 { 40 } else { 20 };
    let overhead = (udp + hdr_len + 14 + l3).min(u32::MAX as usize) as u32;
    let candidate = path_mtu.unwrap_or(0).wrapping_sub(overhead);
    if candidate > 65535 {
        1500u32.saturating_sub(overhead)
    } else {
        candidate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table of docs/reference/kernel.md §6.2 (path MTU 1500, no cookie).
    #[test]
    fn kernel_table() {
        assert_eq!(eth_mtu(Encap::Udp, false, 12, Some(1500)), 1446);
        assert_eq!(eth_mtu(Encap::Udp, false, 8, Some(1500)), 1450);
        assert_eq!(eth_mtu(Encap::Ip, false, 8, Some(1500)), 1458);
        assert_eq!(eth_mtu(Encap::Udp, true, 12, Some(1500)), 1426);
        assert_eq!(eth_mtu(Encap::Ip, true, 8, Some(1500)), 1438);
        // + 8-byte cookie.
        assert_eq!(eth_mtu(Encap::Udp, false, 20, Some(1500)), 1438);
        // No route: 1500 − overhead; path MTU smaller than the overhead: same.
        assert_eq!(eth_mtu(Encap::Ip, false, 8, None), 1458);
        assert_eq!(eth_mtu(Encap::Ip, false, 8, Some(30)), 1458);
        // Jumbo path.
        assert_eq!(eth_mtu(Encap::Ip, false, 8, Some(9000)), 8958);
        assert_eq!(eth_mtu(Encap::Ip, false, 8, Some(70000)), 1458);
    }
}
