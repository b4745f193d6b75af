//! Randomness for the daemon. Everything unpredictable the protocols need (tunnel and session
//! ids, tunnel challenges, hidden-AVP random vectors, cookies, CHAP challenges, PPP magic
//! numbers) comes from the pure engines' generators, and each engine is seeded here with 32
//! bytes from the operating system's CSPRNG (getrandom(2)). Tests seed the engines with fixed
//! bytes instead, so simulations stay reproducible.

/// 32 bytes from the operating system's random source, to seed one engine.
///
/// getrandom(2) blocks only until the kernel's pool is initialised at boot; after that it fails
/// only on a broken system, and then the caller refuses the operation rather than run with
/// guessable values.
pub fn os_seed() -> std::io::Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| {
        std::io::Error::other(format!("the operating system's random source failed: {e}"))
    })?;
    Ok(seed)
}

#[cfg(test)]
mod tests {
    use super::os_seed;

    #[test]
    fn seeds_differ() {
        // Two draws of 256 bits are equal with probability 2^-256: a fixed or time-derived
        // seed would make them collide (or differ by a few low bits).
        let (a, b) = (os_seed().unwrap(), os_seed().unwrap());
        assert_ne!(a, b);
        let differing_bits: u32 = a.iter().zip(&b).map(|(x, y)| (x ^ y).count_ones()).sum();
        assert!(
            differing_bits > 64,
            "only {differing_bits} of 256 bits differ"
        );
    }
}
