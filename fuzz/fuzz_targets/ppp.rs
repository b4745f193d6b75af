//! PPP as a peer reaches it: the control packet and option parsers (LCP, IPCP, IPv6CP,
//! PAP, CHAP, MS-CHAPv2), PPP-in-L2TP framing, and the endpoint in every role (client,
//! authenticator with PAP, CHAP-MD5 or MS-CHAPv2, with and without IPv6CP) fed frames
//! and time from the input after it has opened the link.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use ul2tp_fuzz::ppp_role;
use ul2tp_ppp::Timestamp;

#[derive(Debug, Arbitrary)]
struct Input {
    role: u8,
    frames: Vec<(u16, Vec<u8>)>,
}

fuzz_target!(|input: Input| {
    for (_, f) in &input.frames {
        ul2tp_fuzz::ppp_parsers(f);
    }
    let mut ep = ppp_role(input.role);
    let mut now = Timestamp(0);
    ep.open(now);
    for (after_ms, f) in input.frames.iter().take(128) {
        now = Timestamp(now.0 + u64::from(*after_ms) * 1000);
        ep.handle_timeout(now);
        let _ = ep.handle_frame(now, f);
        while ep.poll_transmit().is_some() {}
        while ep.poll_event().is_some() {}
        while ep.poll_ip().is_some() {}
        let _ = ep.send_ip(f);
        if let Some(t) = ep.poll_timeout() {
            assert!(
                t >= now,
                "a timer in the past stays armed after handle_timeout"
            );
        }
    }
});
