//! 802.1Q tagging for ETH_VLAN pseudowires (pw_type 4, RFC 4719 §2; beyond the kernel).
//!
//! The device side carries untagged frames; on the wire the frame carries a tag with the
//! session's VLAN id (TPID 0x8100) right after the two MAC addresses.

/// Tag Protocol Identifier of 802.1Q.
pub const TPID: u16 = 0x8100;
/// Bytes of the two MAC addresses in front of the tag.
const MACS: usize = 12;

/// Insert a tag into the untagged frame at `buf[start..start + len]`, using the 4 bytes in
/// front of it: the MACs move 4 bytes towards the front. Returns the new start (`start − 4`),
/// or `None` if there is no room in front or the frame is shorter than an Ethernet header.
pub fn tag_in_place(buf: &mut [u8], start: usize, len: usize, vlan_id: u16) -> Option<usize> {
    let new_start = start.checked_sub(4)?;
    let end = start.checked_add(len)?;
    if len < MACS + 2 || end > buf.len() {
        return None;
    }
    buf.copy_within(start..start + MACS, new_start);
    let tag = new_start + MACS;
    buf[tag..tag + 2].copy_from_slice(&TPID.to_be_bytes());
    buf[tag + 2..tag + 4].copy_from_slice(&(vlan_id & 0x0fff).to_be_bytes());
    Some(new_start)
}

/// The VLAN id of a tagged frame, or `None` when it is untagged or too short.
pub fn tag_vid(frame: &[u8]) -> Option<u16> {
    let t = frame.get(MACS..MACS + 4)?;
    if frame.len() < MACS + 6 || u16::from_be_bytes([t[0], t[1]]) != TPID {
        return None;
    }
    Some(u16::from_be_bytes([t[2], t[3]]) & 0x0fff)
}

/// Copy `frame` without its tag into `out` if it carries exactly `vlan_id`; `false` otherwise
/// (untagged, another VLAN, too short). `out` is cleared first.
pub fn untag_into(frame: &[u8], vlan_id: u16, out: &mut Vec<u8>) -> bool {
    out.clear();
    if tag_vid(frame) != Some(vlan_id & 0x0fff) {
        return false;
    }
    out.extend_from_slice(&frame[..MACS]);
    out.extend_from_slice(&frame[MACS + 4..]);
    true
}

/// Remove the tag in place: the MACs move 4 bytes towards the end. Returns the untagged frame
/// (a sub-slice of `frame`), or `None` if the frame does not carry `vlan_id`.
pub fn untag_in_place(frame: &mut [u8], vlan_id: u16) -> Option<&mut [u8]> {
    if tag_vid(frame) != Some(vlan_id & 0x0fff) {
        return None;
    }
    frame.copy_within(0..MACS, 4);
    Some(&mut frame[4..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> Vec<u8> {
        let mut f: Vec<u8> = (1..=12).collect();
        f.extend_from_slice(&[0x08, 0x00, 0x45, 0x00]);
        f
    }

    #[test]
    fn tag_untag_roundtrip() {
        let f = frame();
        let mut buf = vec![0u8; 8];
        buf.extend_from_slice(&f);
        let s = tag_in_place(&mut buf, 8, f.len(), 100).unwrap();
        assert_eq!(s, 4);
        let tagged = buf[s..].to_vec();
        assert_eq!(&tagged[12..16], &[0x81, 0x00, 0x00, 100]);
        assert_eq!(&tagged[..12], &f[..12]);
        assert_eq!(&tagged[16..], &f[12..]);
        assert_eq!(tag_vid(&tagged), Some(100));
        let mut out = Vec::new();
        assert!(untag_into(&tagged, 100, &mut out));
        assert_eq!(out, f);
        assert!(!untag_into(&tagged, 101, &mut out));
        assert!(!untag_into(&f, 100, &mut out));
        let mut t2 = tagged.clone();
        assert_eq!(
            untag_in_place(&mut t2, 100).map(|s| s.to_vec()),
            Some(f.clone())
        );
        let mut t3 = tagged.clone();
        assert!(untag_in_place(&mut t3, 7).is_none());
        // No room in front, or too short.
        assert_eq!(tag_in_place(&mut buf, 2, 10, 1), None);
        assert_eq!(tag_in_place(&mut buf, 8, 13, 1), None);
    }
}
