//! The configuration file through the one validation path that `--check-config`, start-up
//! and SIGHUP reloads share: TOML parsing, the static tunnels and sessions with the
//! `ip l2tp` value checks, and the [api] / [control] checks. Every error must name a line
//! inside the file.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use ul2tpd::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines = text.lines().count().max(1);
    if let Err(e) = Config::check(Path::new("fuzz.toml"), text) {
        if let Some(l) = e.line {
            // A parse error at end of input may point just past the last line.
            assert!(l >= 1 && l <= lines + 1, "error at line {l} of {lines}");
        }
    }
});
