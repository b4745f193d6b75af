//! Number, address and name parsing with the exact acceptance rules iproute2 uses
//! (docs/reference/kernel.md §11.1: ID decimal/hex/octal, PORT u16, HEXSTR 8 or 16 digits, NAME rules).
//!
//! iproute2 builds these on glibc `strtoul(s, &end, 0)`, so leading white space, a sign and
//! the `0x` / `0` prefixes are accepted, trailing garbage is not, and a negative number wraps
//! modulo 2^64 (which then fails the range check). [`strtoul`] reproduces that arithmetic.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// C `isspace` in the C locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Result of [`strtoul`]: the value, how many bytes were consumed (0 = no digits, as when
/// glibc sets `*end = s`), and whether the value overflowed (`ERANGE`, value saturated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Strtoul {
    /// The converted value (wrapped for a leading '-', `u64::MAX` on overflow).
    pub value: u64,
    /// Bytes consumed; 0 when no digits were found.
    pub consumed: usize,
    /// The magnitude did not fit in 64 bits.
    pub overflow: bool,
}

/// glibc `strtoul` with base 0 on a 64-bit target.
pub fn strtoul(s: &[u8]) -> Strtoul {
    let none = Strtoul {
        value: 0,
        consumed: 0,
        overflow: false,
    };
    let mut i = 0;
    while i < s.len() && is_c_space(s[i]) {
        i += 1;
    }
    let mut negative = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        negative = s[i] == b'-';
        i += 1;
    }
    let base: u32;
    if i + 1 < s.len()
        && s[i] == b'0'
        && (s[i + 1] == b'x' || s[i + 1] == b'X')
        && s.get(i + 2).is_some_and(|b| b.is_ascii_hexdigit())
    {
        base = 16;
        i += 2;
    } else if i < s.len() && s[i] == b'0' {
        base = 8;
    } else {
        base = 10;
    }
    let start = i;
    let mut value: u64 = 0;
    let mut overflow = false;
    while i < s.len() {
        let Some(d) = (s[i] as char).to_digit(base) else {
            break;
        };
        match value
            .checked_mul(u64::from(base))
            .and_then(|v| v.checked_add(u64::from(d)))
        {
            Some(v) => value = v,
            None => overflow = true,
        }
        i += 1;
    }
    if i == start {
        return none;
    }
    if overflow {
        value = u64::MAX;
    } else if negative {
        value = value.wrapping_neg();
    }
    Strtoul {
        value,
        consumed: i,
        overflow,
    }
}

/// iproute2 `get_u32(&v, s, 0)` / `get_u16` / ...: the whole string must be one number
/// no larger than `max`.
pub fn get_unsigned(s: &str, max: u64) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let r = strtoul(s.as_bytes());
    if r.consumed == 0 || r.consumed != s.len() || r.overflow || r.value > max {
        return None;
    }
    Some(r.value)
}

/// An ID (`ID := { 1..4294967295 }`; 0 parses and is later reported as missing).
pub fn get_u32(s: &str) -> Option<u32> {
    get_unsigned(s, u64::from(u32::MAX)).and_then(|v| u32::try_from(v).ok())
}

/// A PORT (`PORT := { 0..65535 }`).
pub fn get_u16(s: &str) -> Option<u16> {
    get_unsigned(s, u64::from(u16::MAX)).and_then(|v| u16::try_from(v).ok())
}

/// iproute2 `get_addr_ipv4`: one to four dot-separated `strtoul` numbers, each 0..=255;
/// missing trailing parts are zero (`10.1` is 10.1.0.0).
pub fn parse_ipv4_loose(s: &str) -> Option<Ipv4Addr> {
    let mut out = [0u8; 4];
    let mut rest = s.as_bytes();
    for (i, slot) in out.iter_mut().enumerate() {
        let r = strtoul(rest);
        if r.consumed == 0 || r.overflow || r.value > 255 {
            return None;
        }
        *slot = u8::try_from(r.value).ok()?;
        let tail = &rest[r.consumed..];
        if tail.is_empty() {
            return Some(Ipv4Addr::from(out));
        }
        if i == 3 || tail[0] != b'.' {
            return None;
        }
        rest = &tail[1..];
    }
    None
}

/// What `get_addr(…, AF_UNSPEC)` makes of an address argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addr {
    /// `any`, `all` or `default`: family AF_UNSPEC, later reported as a missing argument.
    Unspec,
    /// A concrete address.
    Ip(IpAddr),
}

/// Parse an ADDR; on failure returns the family name iproute2 puts in its message
/// (`inet6` when the text contains ':', else `inet`).
pub fn get_addr(s: &str) -> Result<Addr, &'static str> {
    if s == "default" || s == "any" || s == "all" {
        return Ok(Addr::Unspec);
    }
    if s.contains(':') {
        return s
            .parse::<Ipv6Addr>()
            .map(|a| Addr::Ip(IpAddr::V6(a)))
            .map_err(|_| "inet6");
    }
    parse_ipv4_loose(s)
        .map(|a| Addr::Ip(IpAddr::V4(a)))
        .ok_or("inet")
}

/// Why a HEXSTR was refused (the two iproute2 messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieError {
    /// Not 8 or 16 characters.
    Length,
    /// A non-hex character.
    NotHex,
}

/// A cookie: exactly 8 or 16 hex digits (4 or 8 bytes).
pub fn parse_cookie(s: &str) -> Result<Vec<u8>, CookieError> {
    if s.len() != 8 && s.len() != 16 {
        return Err(CookieError::Length);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len() / 2);
    for pair in b.chunks(2) {
        let hi = (pair[0] as char).to_digit(16).ok_or(CookieError::NotHex)?;
        let lo = (pair[1] as char).to_digit(16).ok_or(CookieError::NotHex)?;
        out.push(u8::try_from(hi * 16 + lo).map_err(|_| CookieError::NotHex)?);
    }
    Ok(out)
}

/// NAME: non-empty, shorter than IFNAMSIZ (16), no '/' or white space, not "." or "..".
pub fn valid_ifname(s: &str) -> bool {
    !s.is_empty()
        && s.len() < 16
        && s != "."
        && s != ".."
        && !s.bytes().any(|b| b == b'/' || is_c_space(b))
}

/// iproute2 `matches(prefix, word)`: true when `prefix` is a non-empty prefix of `word`.
pub fn matches(prefix: &str, word: &str) -> bool {
    !prefix.is_empty() && word.starts_with(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_in_all_bases() {
        assert_eq!(get_u32("3000"), Some(3000));
        assert_eq!(get_u32("0x10"), Some(16));
        assert_eq!(get_u32("0X1f"), Some(31));
        assert_eq!(get_u32("010"), Some(8));
        assert_eq!(get_u32("0"), Some(0));
        assert_eq!(get_u32("4294967295"), Some(u32::MAX));
        assert_eq!(get_u32("0xffffffff"), Some(u32::MAX));
        assert_eq!(get_u32(" 7"), Some(7));
        assert_eq!(get_u32("+7"), Some(7));
        assert_eq!(get_u32("-0"), Some(0));
    }

    #[test]
    fn ids_rejected() {
        for bad in [
            "",
            "4294967296",
            "-1",
            "08",
            "0x",
            "12a",
            "a",
            " ",
            "7 ",
            "99999999999999999999999",
        ] {
            assert_eq!(get_u32(bad), None, "{bad:?}");
        }
        assert_eq!(get_u16("65535"), Some(65535));
        assert_eq!(get_u16("65536"), None);
        assert_eq!(get_u16("0x6a5"), Some(1701));
    }

    #[test]
    fn strtoul_details() {
        let r = strtoul(b"0x");
        assert_eq!((r.value, r.consumed), (0, 1));
        let r = strtoul(b"-1");
        assert_eq!(r.value, u64::MAX);
        assert!(!r.overflow);
        let r = strtoul(b"18446744073709551616");
        assert!(r.overflow);
        assert_eq!(strtoul(b"xyz").consumed, 0);
        assert_eq!(strtoul(b"-").consumed, 0);
    }

    #[test]
    fn addresses() {
        assert_eq!(
            get_addr("192.0.2.1"),
            Ok(Addr::Ip("192.0.2.1".parse().unwrap()))
        );
        assert_eq!(get_addr("10.1"), Ok(Addr::Ip("10.1.0.0".parse().unwrap())));
        assert_eq!(
            get_addr("0x0a.010.0.1"),
            Ok(Addr::Ip("10.8.0.1".parse().unwrap()))
        );
        assert_eq!(
            get_addr("2001:db8::1"),
            Ok(Addr::Ip("2001:db8::1".parse().unwrap()))
        );
        assert_eq!(get_addr("any"), Ok(Addr::Unspec));
        assert_eq!(get_addr("default"), Ok(Addr::Unspec));
        assert_eq!(get_addr("1.2.3.256"), Err("inet"));
        assert_eq!(get_addr("1.2.3.4.5"), Err("inet"));
        assert_eq!(get_addr("1.2.3."), Err("inet"));
        assert_eq!(get_addr("host"), Err("inet"));
        assert_eq!(get_addr("2001:db8::g"), Err("inet6"));
    }

    #[test]
    fn cookies_and_names() {
        assert_eq!(parse_cookie("0a0B0c0D"), Ok(vec![0x0a, 0x0b, 0x0c, 0x0d]));
        assert_eq!(parse_cookie("0011223344556677").map(|v| v.len()), Ok(8));
        assert_eq!(parse_cookie("001122"), Err(CookieError::Length));
        assert_eq!(parse_cookie("0011223g"), Err(CookieError::NotHex));
        assert_eq!(parse_cookie("+1223344"), Err(CookieError::NotHex));
        assert!(valid_ifname("l2tpeth0"));
        assert!(valid_ifname("abcdefghijklmno"));
        assert!(!valid_ifname("abcdefghijklmnop"));
        assert!(!valid_ifname(""));
        assert!(!valid_ifname("a/b"));
        assert!(!valid_ifname("a b"));
        assert!(!valid_ifname("."));
        assert!(!valid_ifname(".."));
        assert!(matches("d", "delete"));
        assert!(matches("delete", "delete"));
        assert!(!matches("deletex", "delete"));
        assert!(!matches("", "delete"));
    }
}
