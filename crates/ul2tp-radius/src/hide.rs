//! Attribute encryptions: User-Password (RFC 2865 §5.2) and the salt scheme of
//! Tunnel-Password (RFC 2868 §3.5), which MS-MPPE keys share (RFC 2548 §2.4.2).

use md5::{Digest, Md5};

/// Longest User-Password (RFC 2865 §5.2).
pub const MAX_PASSWORD: usize = 128;

fn md5_of(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// XOR-chain `plain` (a multiple of 16 octets) with b1 = MD5(secret ‖ first), bi =
/// MD5(secret ‖ c(i-1)).
fn chain_encrypt(plain: &[u8], secret: &[u8], first: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(plain.len());
    let mut b = md5_of(&[secret, first]);
    for block in plain.chunks(16) {
        let c: Vec<u8> = block.iter().zip(b).map(|(p, k)| p ^ k).collect();
        b = md5_of(&[secret, &c]);
        out.extend_from_slice(&c);
    }
    out
}

fn chain_decrypt(cipher: &[u8], secret: &[u8], first: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(cipher.len());
    let mut b = md5_of(&[secret, first]);
    for block in cipher.chunks(16) {
        out.extend(block.iter().zip(b).map(|(c, k)| c ^ k));
        b = md5_of(&[secret, block]);
    }
    out
}

/// Hide a PAP password for User-Password: NUL-padded to a multiple of 16 (at least 16, at
/// most [`MAX_PASSWORD`]; longer passwords are cut there).
pub fn hide_password(password: &[u8], secret: &[u8], authenticator: &[u8; 16]) -> Vec<u8> {
    let password = &password[..password.len().min(MAX_PASSWORD)];
    let padded = password.len().div_ceil(16).max(1) * 16;
    let mut plain = password.to_vec();
    plain.resize(padded, 0);
    chain_encrypt(&plain, secret, authenticator)
}

/// Recover a User-Password (trailing NULs removed); `None` unless 16..=128 octets in
/// multiples of 16.
pub fn unhide_password(hidden: &[u8], secret: &[u8], authenticator: &[u8; 16]) -> Option<Vec<u8>> {
    if hidden.is_empty() || hidden.len() % 16 != 0 || hidden.len() > MAX_PASSWORD {
        return None;
    }
    let mut p = chain_decrypt(hidden, secret, authenticator);
    while p.last() == Some(&0) {
        p.pop();
    }
    Some(p)
}

/// Encrypt a Tunnel-Password value (without the Tag): Salt (2 octets, the caller's random
/// bits with the high bit set) ‖ the encrypted Data-Length ‖ password ‖ padding.
pub fn encrypt_salted(
    password: &[u8],
    secret: &[u8],
    request_authenticator: &[u8; 16],
    salt: [u8; 2],
) -> Vec<u8> {
    let salt = [salt[0] | 0x80, salt[1]];
    let password = &password[..password.len().min(239)];
    let mut plain = vec![password.len() as u8];
    plain.extend_from_slice(password);
    plain.resize(plain.len().div_ceil(16) * 16, 0);
    let mut first = request_authenticator.to_vec();
    first.extend_from_slice(&salt);
    let mut out = salt.to_vec();
    out.extend(chain_encrypt(&plain, secret, &first));
    out
}

/// Decrypt a Tunnel-Password value (without the Tag); `None` when malformed (no salt, salt
/// high bit clear, not a multiple of 16, Data-Length past the data).
pub fn decrypt_salted(
    value: &[u8],
    secret: &[u8],
    request_authenticator: &[u8; 16],
) -> Option<Vec<u8>> {
    let (salt, cipher) = (value.get(..2)?, value.get(2..)?);
    if salt[0] & 0x80 == 0 || cipher.is_empty() || cipher.len() % 16 != 0 {
        return None;
    }
    let mut first = request_authenticator.to_vec();
    first.extend_from_slice(salt);
    let plain = chain_decrypt(cipher, secret, &first);
    let len = *plain.first()? as usize;
    plain.get(1..1 + len).map(<[u8]>::to_vec)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2865 §7.1: "arctangent" hidden with secret "xyzzy5461" and the request's
    /// authenticator.
    #[test]
    fn rfc2865_user_password_vector() {
        let ra = [
            0x0f, 0x40, 0x3f, 0x94, 0x73, 0x97, 0x80, 0x57, 0xbd, 0x83, 0xd5, 0xcb, 0x98, 0xf4,
            0x22, 0x7a,
        ];
        let hidden = hide_password(b"arctangent", b"xyzzy5461", &ra);
        let expect = [
            0x0d, 0xbe, 0x70, 0x8d, 0x93, 0xd4, 0x13, 0xce, 0x31, 0x96, 0xe4, 0x3f, 0x78, 0x2a,
            0x0a, 0xee,
        ];
        assert_eq!(hidden, expect);
        assert_eq!(
            unhide_password(&hidden, b"xyzzy5461", &ra).unwrap(),
            b"arctangent"
        );
        // Several blocks chain through the previous ciphertext.
        let long = b"a password longer than sixteen octets, three blocks";
        let h = hide_password(long, b"k", &ra);
        assert_eq!(h.len(), 64);
        assert_eq!(unhide_password(&h, b"k", &ra).unwrap(), long);
        assert_ne!(unhide_password(&h, b"j", &ra).unwrap(), long);
        assert_eq!(hide_password(b"", b"k", &ra).len(), 16);
        assert_eq!(unhide_password(&h[..15], b"k", &ra), None);
    }

    #[test]
    fn tunnel_password_round_trip() {
        let ra = [7u8; 16];
        let v = encrypt_salted(b"tunnel-secret", b"s", &ra, [0x12, 0x34]);
        assert_eq!(v[0], 0x92, "salt high bit set");
        assert_eq!(v.len(), 2 + 16);
        assert_eq!(decrypt_salted(&v, b"s", &ra).unwrap(), b"tunnel-secret");
        // Another salt, another ciphertext.
        assert_ne!(encrypt_salted(b"tunnel-secret", b"s", &ra, [0x12, 0x35]), v);
        let mut bad = v.clone();
        bad[0] &= 0x7f;
        assert_eq!(decrypt_salted(&bad, b"s", &ra), None);
        assert_eq!(decrypt_salted(&v[..10], b"s", &ra), None);
    }
}
