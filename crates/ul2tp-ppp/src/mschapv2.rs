//! MS-CHAPv2 (RFC 2759, docs/reference/rfc.md §4.9): the response and authenticator-response
//! computations. MD4 and single-block DES come from RustCrypto's `md4` and `des` crates.
//!
//! DES and MD4 are broken primitives; they are used only because MS-CHAPv2 mandates them and
//! are not exported for any other use. Everything is verified against the RFC 2759 §9 vectors.

use des::cipher::{BlockEncrypt, KeyInit};
use des::Des;
use md4::Md4;
use sha1::{Digest, Sha1};

const MAGIC1: &[u8] = b"Magic server to client signing constant";
const MAGIC2: &[u8] = b"Pad to make it do more than one iteration";

/// MD4 of `data` (RFC 1320).
pub(crate) fn md4(data: &[u8]) -> [u8; 16] {
    Md4::digest(data).into()
}

/// DES-encrypt one 8-octet block (FIPS 46-3).
pub(crate) fn des_encrypt(key: [u8; 8], block: [u8; 8]) -> [u8; 8] {
    let mut b = block.into();
    Des::new(&key.into()).encrypt_block(&mut b);
    b.into()
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
