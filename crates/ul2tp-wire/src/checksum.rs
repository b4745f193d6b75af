//! The Internet checksum (RFC 1071): the ones'-complement sum of 16-bit big-endian words, used
//! by IPv4 headers, UDP and TCP. One implementation for the data path's software segmentation
//! and receive coalescing (ul2tp-core's `gso`) and for the pcap writer.

/// Add `data` to a ones'-complement running sum (not yet folded). Bytes are taken as
/// big-endian 16-bit words; an odd trailing byte is padded with zero (RFC 1071).
pub fn add(mut sum: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let hi = u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
        let lo = u64::from(u32::from_be_bytes([c[4], c[5], c[6], c[7]]));
        sum += hi + lo;
        // Fold regularly so the accumulator cannot overflow on long inputs.
        sum = (sum & 0xffff_ffff) + (sum >> 32);
    }
    let mut words = chunks.remainder().chunks_exact(2);
    for w in &mut words {
        sum += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        sum += u64::from(*last) << 8;
    }
    sum
}

/// Fold a running sum to 16 bits (not complemented).
pub fn fold(mut sum: u64) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Internet checksum of `data` (the complemented fold).
pub fn checksum(data: &[u8]) -> u16 {
    !fold(add(0, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to 0xddf2 (folded).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(add(0, &data)), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero_and_long_inputs_do_not_overflow() {
        assert_eq!(fold(add(0, &[0xab])), 0xab00);
        let long = vec![0xffu8; 1 << 20];
        assert_eq!(fold(add(0, &long)), 0xffff);
        // Splitting at an even offset gives the same sum.
        let data: Vec<u8> = (0..=255u8).cycle().take(1001).collect();
        assert_eq!(
            fold(add(add(0, &data[..500]), &data[500..])),
            fold(add(0, &data))
        );
    }

    #[test]
    fn a_header_with_its_checksum_sums_to_zero() {
        let mut h = [
            0x45, 0, 0, 0x54, 0, 0, 0x40, 0, 0x40, 0x01, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2,
        ];
        let c = checksum(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(checksum(&h), 0);
    }
}
