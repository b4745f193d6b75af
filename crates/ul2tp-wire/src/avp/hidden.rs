//! Hidden AVPs (RFC 2661 §4.3, docs/reference/rfc.md §1.8).
//!
//! The hidden value is `orig_len (u16) ‖ original value ‖ padding`, XORed with an MD5
//! keystream in 16-octet blocks: `b1 = MD5(attr_type (2 octets, big-endian) ‖ secret ‖ RV)`,
//! `bi = MD5(secret ‖ c(i-1))` where `c(i-1)` is the previous ciphertext block. A short last
//! block is XORed only as far as it goes. Decoding checks that `orig_len` fits in what was
//! decrypted (CVE-2022-0982 was the lack of this check). The attribute type is hashed in
//! network order (docs/reference/rfc.md §6: xl2tpd's decrypt path gets this wrong on little-endian hosts).
//! For L2TPv3 the `secret` is the derived key HMAC-MD5(secret, 0x01) (docs/reference/rfc.md §2.8).

use md5::{Digest, Md5};

use super::{AttrType, AvpError};

fn keystream_xor(attr_type: u16, secret: &[u8], rv: &[u8], data: &mut [u8], encrypt: bool) {
    let mut prev = [0u8; 16];
    for (i, block) in data.chunks_mut(16).enumerate() {
        let mut h = Md5::new();
        if i == 0 {
            h.update(attr_type.to_be_bytes());
            h.update(secret);
            h.update(rv);
        } else {
            h.update(secret);
            h.update(prev);
        }
        let key = h.finalize();
        // For every full block the next key hashes this block's ciphertext. Only the last
        // block can be short, so `prev` need not be valid after it.
        if !encrypt && block.len() == 16 {
            prev.copy_from_slice(block);
        }
        for (b, k) in block.iter_mut().zip(key.iter()) {
            *b ^= k;
        }
        if encrypt && block.len() == 16 {
            prev.copy_from_slice(block);
        }
    }
}

/// Hide `value` (with `pad` octets of padding) for attribute `attr_type`; returns the
/// Attribute Value to put on the wire with H = 1. `value.len()` must fit in 16 bits (callers
/// limit AVPs to 1023 octets anyway; longer values are truncated in the length subfield).
pub fn hide(attr_type: u16, secret: &[u8], rv: &[u8], value: &[u8], pad: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + value.len() + pad.len());
    let orig_len = u16::try_from(value.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&orig_len.to_be_bytes());
    out.extend_from_slice(value);
    out.extend_from_slice(pad);
    keystream_xor(attr_type, secret, rv, &mut out, true);
    out
}

/// Reveal a hidden Attribute Value: decrypt, check the original-length subfield against the
/// decrypted buffer, and return the original value (padding removed).
pub fn unhide(
    attr_type: u16,
    secret: &[u8],
    rv: &[u8],
    hidden: &[u8],
) -> Result<Vec<u8>, AvpError> {
    let attr = AttrType::from(attr_type);
    if hidden.len() < 2 {
        return Err(AvpError::HiddenBadLength {
            attr,
            orig_len: 0,
            available: 0,
        });
    }
    let mut buf = hidden.to_vec();
    keystream_xor(attr_type, secret, rv, &mut buf, false);
    let orig_len = usize::from(u16::from_be_bytes([buf[0], buf[1]]));
    let available = buf.len() - 2;
    if orig_len > available {
        return Err(AvpError::HiddenBadLength {
            attr,
            orig_len,
            available,
        });
    }
    buf.truncate(2 + orig_len);
    buf.drain(..2);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rv() -> Vec<u8> {
        (0u8..16).collect()
    }

    #[test]
    fn rfc_facts_vector_assigned_tunnel_id() {
        // docs/reference/rfc.md §1.19: type 9, value 0x1234, secret "xyzzy", RV 00..0f, no padding.
        let h = hide(9, b"xyzzy", &rv(), &[0x12, 0x34], &[]);
        assert_eq!(h, [0x97, 0x16, 0x71, 0xf7]);
        assert_eq!(unhide(9, b"xyzzy", &rv(), &h).unwrap(), [0x12, 0x34]);
    }

    #[test]
    fn rfc_facts_vector_two_blocks() {
        // docs/reference/rfc.md §1.19: Proxy Authen Response (33), "password1234567890", 2 blocks.
        let h = hide(33, b"xyzzy", &rv(), b"password1234567890", &[]);
        let want = [
            0xbb, 0x44, 0x0f, 0x8e, 0x27, 0xcb, 0x70, 0xfd, 0xde, 0x30, 0x69, 0xc5, 0xb7, 0x08,
            0xe7, 0x5c, 0xac, 0x5b, 0x96, 0x08,
        ];
        assert_eq!(h, want);
        assert_eq!(
            unhide(33, b"xyzzy", &rv(), &h).unwrap(),
            b"password1234567890"
        );
    }

    #[test]
    fn padding_is_removed_and_length_checked() {
        let pad = [0xaa; 29];
        let h = hide(30, b"secret", b"rv", b"bob", &pad);
        assert_eq!(h.len(), 2 + 3 + 29);
        assert_eq!(unhide(30, b"secret", b"rv", &h).unwrap(), b"bob");
        // Wrong secret: orig_len decrypts to garbage; must not panic, normally an error.
        let r = unhide(30, b"other", b"rv", &h);
        if let Ok(v) = r {
            assert!(v.len() <= h.len() - 2);
        }
        // Flip the length subfield so it claims more than is there (CVE-2022-0982 shape).
        let mut bad = hide(30, b"secret", b"rv", b"bob", &[]);
        bad[0] ^= 0x01; // orig_len 3 -> 259
        assert_eq!(
            unhide(30, b"secret", b"rv", &bad),
            Err(AvpError::HiddenBadLength {
                attr: AttrType::ProxyAuthenName,
                orig_len: 259,
                available: 3
            })
        );
        assert!(unhide(30, b"secret", b"rv", &[1]).is_err());
    }
}
