//! The control engine as a peer reaches it, structure-aware: a real LAC engine first brings
//! up a tunnel (with or without a shared secret, v2 challenge or v3 message digests) and
//! some sessions with the LNS engine under test; then the fuzz input takes over the LAC's
//! side and sends messages built from the input with the right tunnel and session ids, the
//! Ns/Nr the LNS expects and valid digests, so mutations reach established tunnels and
//! sessions rather than stopping at the SCCRQ. Raw datagrams, time passing and local
//! requests (open/close sessions, close the tunnel) are mixed in.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ul2tp_fuzz::Duo;

#[derive(Debug, Arbitrary)]
struct Input {
    v3: bool,
    secret: bool,
    hide_avps: bool,
    sessions: u8,
    steps: Vec<ul2tp_fuzz::Step>,
}

fuzz_target!(|input: Input| {
    let Some(mut duo) = Duo::establish(
        input.v3,
        input.secret,
        input.hide_avps,
        usize::from(input.sessions % 4),
    ) else {
        return;
    };
    for step in input.steps.iter().take(64) {
        duo.step(step);
    }
    duo.finish();
});
