//! The daemon's one clock for the pure crates: [`now`] is the [`Timestamp`] (microseconds since
//! the daemon first asked for the time) that the data-path model, the control engine and the
//! PPP endpoints are driven with, and [`instant`] maps a timestamp they return (a deadline)
//! back onto tokio's clock to sleep until it.

use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;
use ul2tp_wire::Timestamp;

fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// The current time on the daemon's scale.
pub(crate) fn now() -> Timestamp {
    let us = origin().elapsed().as_micros();
    Timestamp::from_micros(u64::try_from(us).unwrap_or(u64::MAX))
}

/// The tokio instant of a timestamp on the daemon's scale.
pub(crate) fn instant(t: Timestamp) -> Instant {
    origin() + Duration::from_micros(t.as_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_map_back_onto_instants() {
        let t = now();
        let i = instant(t);
        assert!(i <= Instant::now());
        assert!(now() >= t);
        assert_eq!(
            instant(t + Duration::from_millis(5)) - i,
            Duration::from_millis(5)
        );
    }
}
