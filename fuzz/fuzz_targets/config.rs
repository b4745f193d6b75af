//! The configuration file: TOML parsing, the static tunnels and sessions with the `ip l2tp`
//! value checks, and the [control] section's validation. Every error must name a line
//! inside the file.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use ul2tpd::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz.toml");
    let lines = text.lines().count().max(1);
    match Config::parse(path, text) {
        Ok(cfg) => {
            if let Err(e) = cfg.static_objects(path, text) {
                if let Some(l) = e.line {
                    assert!(l >= 1 && l <= lines, "error line {l} of {lines}");
                }
            }
            if let Some(c) = &cfg.control {
                let _ = c.validate();
            }
        }
        Err(e) => {
            if let Some(l) = e.line {
                assert!(l >= 1 && l <= lines + 1, "error line {l} of {lines}");
            }
        }
    }
});
