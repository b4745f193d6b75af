//! Deleting many network devices at once over one rtnetlink socket.
//!
//! Closing a TAP / TUN descriptor or `RTM_DELLINK` of one device unregisters that device on its
//! own, and every unregistration waits for the kernel's RCU grace periods: about 10–16 ms per
//! device, so 10,000 devices take minutes. `RTM_DELLINK` with `IFLA_GROUP` instead unregisters
//! all devices of a group as one batch (`unregister_netdevice_many`, one wait for them all;
//! what `ip link del group N` does). So the doomed devices are first moved into a group of our
//! own (`RTM_NEWLINK` with `IFLA_GROUP`, cheap, sent many to a datagram on the same socket),
//! then the group is deleted with one request. Descriptors of deleted TAP / TUN devices close
//! at no cost afterwards. Acts in the calling thread's network namespace.

use std::io;

use crate::rtnl::{acks, push_attr, Rtnl, NLM_F_ACK, NLM_F_REQUEST};

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const IFLA_GROUP: u16 = 27;
/// Requests per datagram (their acknowledgements must fit the socket's receive buffer).
const CHUNK: usize = 256;

/// The device group doomed devices are moved into ("ul2t"): nothing else uses it.
pub const REAP_GROUP: u32 = 0x756c_3274;

/// An `RTM_NEWLINK` / `RTM_DELLINK` with an `ifinfomsg` for `ifindex` and `IFLA_GROUP`.
fn link_msg(kind: u16, seq: u32, ifindex: u32, group: u32) -> Vec<u8> {
    let mut m = Vec::with_capacity(40);
    m.extend_from_slice(&0u32.to_ne_bytes()); // length, patched below
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills ours in
                                              // struct ifinfomsg: family, pad, type, index, flags, change.
    m.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
    m.extend_from_slice(&ifindex.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    push_attr(&mut m, IFLA_GROUP, &group.to_ne_bytes());
    let len = m.len() as u32;
    m[0..4].copy_from_slice(&len.to_ne_bytes());
    m
}

/// Send `msgs` (one request each, sequence numbers `seqs`) and wait for every acknowledgement;
/// returns the errno of each (0 = success), in order.
fn exchange(nl: &Rtnl, msgs: &[(u32, Vec<u8>)]) -> io::Result<Vec<i32>> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut result = vec![None; msgs.len()];
    let first = msgs.first().map_or(0, |m| m.0);
    nl.send(
        &msgs
            .iter()
            .flat_map(|(_, m)| m.iter().copied())
            .collect::<Vec<u8>>(),
    )?;
    let mut missing = msgs.len();
    while missing > 0 {
        let n = nl.recv(&mut buf)?;
        for (seq, errno) in acks(&buf[..n]) {
            if let Some(slot) = result.get_mut(seq.wrapping_sub(first) as usize) {
                if slot.is_none() {
                    *slot = Some(errno);
                    missing -= 1;
                }
            }
        }
    }
    Ok(result.into_iter().map(|r| r.unwrap_or(0)).collect())
}

/// Delete the devices with these interface indexes as one batch. Devices that are already
/// gone are skipped. Returns how many were moved into the doomed group (and so deleted).
pub fn delete_links(ifindexes: &[u32]) -> io::Result<usize> {
    if ifindexes.is_empty() {
        return Ok(0);
    }
    let nl = Rtnl::open()?;
    let mut moved = 0;
    for chunk in ifindexes.chunks(CHUNK) {
        let msgs: Vec<(u32, Vec<u8>)> = chunk
            .iter()
            .map(|&i| {
                let seq = Rtnl::seq();
                (seq, link_msg(RTM_NEWLINK, seq, i, REAP_GROUP))
            })
            .collect();
        moved += exchange(&nl, &msgs)?.iter().filter(|&&e| e == 0).count();
    }
    if moved > 0 {
        let seq = Rtnl::seq();
        match exchange(&nl, &[(seq, link_msg(RTM_DELLINK, seq, 0, REAP_GROUP))])?[..] {
            [0] | [libc::ENODEV] => {}
            [e, ..] => return Err(crate::os::errno(e)),
            [] => {}
        }
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_layout() {
        let m = link_msg(RTM_DELLINK, 5, 0, REAP_GROUP);
        assert_eq!(m.len(), 16 + 16 + 8);
        assert_eq!(u32::from_ne_bytes(m[0..4].try_into().unwrap()), 40);
        assert_eq!(u16::from_ne_bytes([m[4], m[5]]), RTM_DELLINK);
        assert_eq!(u32::from_ne_bytes(m[8..12].try_into().unwrap()), 5);
        assert_eq!(
            u32::from_ne_bytes(m[20..24].try_into().unwrap()),
            0,
            "ifindex"
        );
        assert_eq!(u16::from_ne_bytes([m[34], m[35]]), IFLA_GROUP);
        assert_eq!(
            u32::from_ne_bytes(m[36..40].try_into().unwrap()),
            REAP_GROUP
        );
    }
}
