//! MS-CHAPv2 (RFC 2759, docs/reference/rfc.md §4.9): the response and authenticator-response
//! computations, with the MD4 (RFC 1320) and single-block DES (FIPS 46-3) primitives they need.
//!
//! DES and MD4 are broken primitives; they are here only because MS-CHAPv2 mandates them and
//! are not exported for any other use. Everything is verified against the RFC 2759 §9 vectors.

use sha1::{Digest, Sha1};

const MAGIC1: &[u8] = b"Magic server to client signing constant";
const MAGIC2: &[u8] = b"Pad to make it do more than one iteration";

/// MD4 of `data` (RFC 1320).
pub(crate) fn md4(data: &[u8]) -> [u8; 16] {
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_le_bytes());
    let mut s: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];
    for block in msg.chunks_exact(64) {
        let mut x = [0u32; 16];
        for (i, w) in block.chunks_exact(4).enumerate() {
            x[i] = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        }
        let [mut a, mut b, mut c, mut d] = s;
        let f = |x: u32, y: u32, z: u32| (x & y) | (!x & z);
        let g = |x: u32, y: u32, z: u32| (x & y) | (x & z) | (y & z);
        let h = |x: u32, y: u32, z: u32| x ^ y ^ z;
        const R2: [usize; 16] = [0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15];
        const R3: [usize; 16] = [0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15];
        for i in 0..16 {
            let sh = [3, 7, 11, 19][i % 4];
            let t = a
                .wrapping_add(f(b, c, d))
                .wrapping_add(x[i])
                .rotate_left(sh);
            (a, b, c, d) = (d, t, b, c);
        }
        for (i, &k) in R2.iter().enumerate() {
            let sh = [3, 5, 9, 13][i % 4];
            let t = a
                .wrapping_add(g(b, c, d))
                .wrapping_add(x[k])
                .wrapping_add(0x5a82_7999)
                .rotate_left(sh);
            (a, b, c, d) = (d, t, b, c);
        }
        for (i, &k) in R3.iter().enumerate() {
            let sh = [3, 9, 11, 15][i % 4];
            let t = a
                .wrapping_add(h(b, c, d))
                .wrapping_add(x[k])
                .wrapping_add(0x6ed9_eba1)
                .rotate_left(sh);
            (a, b, c, d) = (d, t, b, c);
        }
        s[0] = s[0].wrapping_add(a);
        s[1] = s[1].wrapping_add(b);
        s[2] = s[2].wrapping_add(c);
        s[3] = s[3].wrapping_add(d);
    }
    let mut out = [0u8; 16];
    for (i, w) in s.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
    }
    out
}

const IP: [u8; 64] = [
    58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4, 62, 54, 46, 38, 30, 22, 14, 6,
    64, 56, 48, 40, 32, 24, 16, 8, 57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3, 61,
    53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7,
];
const FP: [u8; 64] = [
    40, 8, 48, 16, 56, 24, 64, 32, 39, 7, 47, 15, 55, 23, 63, 31, 38, 6, 46, 14, 54, 22, 62, 30,
    37, 5, 45, 13, 53, 21, 61, 29, 36, 4, 44, 12, 52, 20, 60, 28, 35, 3, 43, 11, 51, 19, 59, 27,
    34, 2, 42, 10, 50, 18, 58, 26, 33, 1, 41, 9, 49, 17, 57, 25,
];
const E: [u8; 48] = [
    32, 1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9, 8, 9, 10, 11, 12, 13, 12, 13, 14, 15, 16, 17, 16, 17, 18,
    19, 20, 21, 20, 21, 22, 23, 24, 25, 24, 25, 26, 27, 28, 29, 28, 29, 30, 31, 32, 1,
];
const P: [u8; 32] = [
    16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10, 2, 8, 24, 14, 32, 27, 3, 9, 19,
    13, 30, 6, 22, 11, 4, 25,
];
const PC1: [u8; 56] = [
    57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18, 10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60,
    52, 44, 36, 63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22, 14, 6, 61, 53, 45, 37, 29,
    21, 13, 5, 28, 20, 12, 4,
];
const PC2: [u8; 48] = [
    14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10, 23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2, 41, 52,
    31, 37, 47, 55, 30, 40, 51, 45, 33, 48, 44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
];
const SHIFTS: [u32; 16] = [1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1];
const SBOX: [[u8; 64]; 8] = [
    [
        14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7, 0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12,
        11, 9, 5, 3, 8, 4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0, 15, 12, 8, 2, 4, 9,
        1, 7, 5, 11, 3, 14, 10, 0, 6, 13,
    ],
    [
        15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10, 3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1,
        10, 6, 9, 11, 5, 0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15, 13, 8, 10, 1, 3, 15,
        4, 2, 11, 6, 7, 12, 0, 5, 14, 9,
    ],
    [
        10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8, 13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5,
        14, 12, 11, 15, 1, 13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7, 1, 10, 13, 0, 6,
        9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12,
    ],
    [
        7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15, 13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2,
        12, 1, 10, 14, 9, 10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4, 3, 15, 0, 6, 10, 1,
        13, 8, 9, 4, 5, 11, 12, 7, 2, 14,
    ],
    [
        2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9, 14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15,
        10, 3, 9, 8, 6, 4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14, 11, 8, 12, 7, 1, 14,
        2, 13, 6, 15, 0, 9, 10, 4, 5, 3,
    ],
    [
        12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11, 10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13,
        14, 0, 11, 3, 8, 9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6, 4, 3, 2, 12, 9, 5,
        15, 10, 11, 14, 1, 7, 6, 0, 8, 13,
    ],
    [
        4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1, 13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5,
        12, 2, 15, 8, 6, 1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2, 6, 11, 13, 8, 1, 4,
        10, 7, 9, 5, 0, 15, 14, 2, 3, 12,
    ],
    [
        13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7, 1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6,
        11, 0, 14, 9, 2, 7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8, 2, 1, 14, 7, 4, 10,
        8, 13, 15, 12, 9, 0, 3, 5, 6, 11,
    ],
];

/// Bit permutation: output bit j (from the MSB) = input bit `table[j]` (1-based from the MSB).
fn permute(input: u64, in_bits: u32, table: &[u8]) -> u64 {
    table.iter().fold(0u64, |out, &t| {
        (out << 1) | ((input >> (in_bits - u32::from(t))) & 1)
    })
}

fn des_f(r: u64, k: u64) -> u64 {
    let e = permute(r, 32, &E) ^ k;
    let mut out = 0u64;
    for (j, sbox) in SBOX.iter().enumerate() {
        let six = (e >> (42 - 6 * j)) & 0x3f;
        let row = ((six & 0x20) >> 4) | (six & 1);
        let col = (six >> 1) & 0xf;
        out = (out << 4) | u64::from(sbox[(row * 16 + col) as usize]);
    }
    permute(out, 32, &P)
}

/// DES-encrypt one 8-octet block (FIPS 46-3).
pub(crate) fn des_encrypt(key: [u8; 8], block: [u8; 8]) -> [u8; 8] {
    let cd = permute(u64::from_be_bytes(key), 64, &PC1);
    let (mut c, mut d) = (cd >> 28, cd & 0x0fff_ffff);
    let rot = |v: u64, n: u32| ((v << n) | (v >> (28 - n))) & 0x0fff_ffff;
    let m = permute(u64::from_be_bytes(block), 64, &IP);
    let (mut l, mut r) = (m >> 32, m & 0xffff_ffff);
    for &s in &SHIFTS {
        c = rot(c, s);
        d = rot(d, s);
        let k = permute((c << 28) | d, 56, &PC2);
        (l, r) = (r, l ^ des_f(r, k));
    }
    permute((r << 32) | l, 64, &FP).to_be_bytes()
}

/// Expand a 7-octet key to 8 octets with odd parity bits (RFC 2759 §8.6).
pub(crate) fn expand_key(k7: &[u8; 7]) -> [u8; 8] {
    let mut v = 0u64;
    for b in k7 {
        v = (v << 8) | u64::from(*b);
    }
    let mut out = [0u8; 8];
    for (i, o) in out.iter_mut().enumerate() {
        // The 7-bit group, shifted left; the low bit makes the octet's parity odd.
        let b = (((v >> (49 - 7 * i)) & 0x7f) as u8) << 1;
        *o = if b.count_ones() % 2 == 0 { b | 1 } else { b };
    }
    out
}

/// The user name without a `DOMAIN\` prefix (RFC 2759 §8.2).
fn strip_domain(user: &[u8]) -> &[u8] {
    match user.iter().rposition(|&b| b == b'\\') {
        Some(i) => &user[i + 1..],
        None => user,
    }
}

/// ChallengeHash (RFC 2759 §8.2).
pub fn challenge_hash(
    peer_challenge: &[u8; 16],
    auth_challenge: &[u8; 16],
    user: &[u8],
) -> [u8; 8] {
    let mut h = Sha1::new();
    h.update(peer_challenge);
    h.update(auth_challenge);
    h.update(strip_domain(user));
    let d = h.finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&d[..8]);
    out
}

/// NtPasswordHash: MD4 of the password as UTF-16LE (RFC 2759 §8.3).
pub fn nt_password_hash(password: &str) -> [u8; 16] {
    let utf16: Vec<u8> = password.encode_utf16().flat_map(u16::to_le_bytes).collect();
    md4(&utf16)
}

/// ChallengeResponse: three DES encryptions keyed by the zero-padded hash (RFC 2759 §8.5).
pub fn challenge_response(challenge: &[u8; 8], password_hash: &[u8; 16]) -> [u8; 24] {
    let mut z = [0u8; 21];
    z[..16].copy_from_slice(password_hash);
    let mut out = [0u8; 24];
    for i in 0..3 {
        let mut k7 = [0u8; 7];
        k7.copy_from_slice(&z[i * 7..i * 7 + 7]);
        out[i * 8..i * 8 + 8].copy_from_slice(&des_encrypt(expand_key(&k7), *challenge));
    }
    out
}

/// GenerateNTResponse (RFC 2759 §8.1).
pub fn nt_response(
    auth_challenge: &[u8; 16],
    peer_challenge: &[u8; 16],
    user: &[u8],
    password: &str,
) -> [u8; 24] {
    let ch = challenge_hash(peer_challenge, auth_challenge, user);
    challenge_response(&ch, &nt_password_hash(password))
}

/// GenerateAuthenticatorResponse: `S=` + 40 upper-case hex digits (RFC 2759 §8.7).
pub fn authenticator_response(
    password: &str,
    nt_response: &[u8; 24],
    peer_challenge: &[u8; 16],
    auth_challenge: &[u8; 16],
    user: &[u8],
) -> String {
    let hash_hash = md4(&nt_password_hash(password));
    let mut h = Sha1::new();
    h.update(hash_hash);
    h.update(nt_response);
    h.update(MAGIC1);
    let d1 = h.finalize();
    let mut h = Sha1::new();
    h.update(d1);
    h.update(challenge_hash(peer_challenge, auth_challenge, user));
    h.update(MAGIC2);
    let d2 = h.finalize();
    let mut s = String::from("S=");
    for b in d2 {
        s.push_str(&format!("{b:02X}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02X}")).collect()
    }

    #[test]
    fn md4_rfc1320_vectors() {
        assert_eq!(hex(&md4(b"")), "31D6CFE0D16AE931B73C59D7E0C089C0");
        assert_eq!(hex(&md4(b"abc")), "A448017AAF21D8525FC10AE87AA6729D");
        assert_eq!(
            hex(&md4(
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890"
            )),
            "E33B4DDC9C38F2199C3E7B164FCC0536"
        );
    }

    #[test]
    fn des_classic_vector() {
        let k: [u8; 8] = unhex("133457799BBCDFF1").try_into().unwrap();
        let p: [u8; 8] = unhex("0123456789ABCDEF").try_into().unwrap();
        assert_eq!(hex(&des_encrypt(k, p)), "85E813540F0AB405");
    }

    #[test]
    fn rfc2759_section_9_vectors() {
        let k1: [u8; 7] = unhex("FC156AF7EDCD6C").try_into().unwrap();
        assert_eq!(hex(&expand_key(&k1)), "FD0B5B5E7F6E34D9");
        let k2: [u8; 7] = unhex("0EDDE3337D427F").try_into().unwrap();
        assert_eq!(hex(&expand_key(&k2)), "0E6E796737EA08FE");
        let auth: [u8; 16] = unhex("5B5D7C7D7B3F2F3E3C2C602132262628")
            .try_into()
            .unwrap();
        let peer: [u8; 16] = unhex("21402324255E262A28295F2B3A337C7E")
            .try_into()
            .unwrap();
        assert_eq!(
            hex(&challenge_hash(&peer, &auth, b"User")),
            "D02E4386BCE91226"
        );
        assert_eq!(
            hex(&nt_password_hash("clientPass")),
            "44EBBA8D5312B8D611474411F56989AE"
        );
        assert_eq!(
            hex(&md4(&nt_password_hash("clientPass"))),
            "41C00C584BD2D91C4017A2A12FA59F3F"
        );
        let nt = nt_response(&auth, &peer, b"User", "clientPass");
        assert_eq!(hex(&nt), "82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF");
        assert_eq!(
            authenticator_response("clientPass", &nt, &peer, &auth, b"User"),
            "S=407A5589115FD0D6209F510FE9C04566932CDA56"
        );
        // A domain prefix does not change the challenge hash.
        assert_eq!(
            challenge_hash(&peer, &auth, b"DOM\\User"),
            challenge_hash(&peer, &auth, b"User")
        );
    }
}
