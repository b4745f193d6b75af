//! Time for the pure crates: a [`Timestamp`] is a point on the caller's monotonic clock in
//! microseconds. The control engine, the PPP endpoint and the data-path model all take it as
//! an argument and never read a clock themselves; the daemon maps its clock onto it, tests and
//! simulations run a virtual one.

use core::ops::{Add, AddAssign, Sub};
use core::time::Duration;

/// A point in time, in microseconds on the caller's monotonic scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The origin of the scale.
    pub const ZERO: Timestamp = Timestamp(0);

    /// From microseconds.
    pub const fn from_micros(us: u64) -> Timestamp {
        Timestamp(us)
    }

    /// From milliseconds (saturating).
    pub const fn from_millis(ms: u64) -> Timestamp {
        Timestamp(ms.saturating_mul(1000))
    }

    /// Microseconds since the origin.
    pub const fn as_micros(self) -> u64 {
        self.0
    }

    /// This time plus `us` microseconds (saturating).
    pub const fn plus_micros(self, us: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(us))
    }

    /// Time elapsed since `earlier` (zero if `earlier` is later).
    pub fn saturating_since(self, earlier: Timestamp) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    /// Saturating: a duration too long for the scale gives the end of the scale.
    fn add(self, d: Duration) -> Timestamp {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        Timestamp(self.0.saturating_add(us))
    }
}

impl AddAssign<Duration> for Timestamp {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl Sub<Timestamp> for Timestamp {
    type Output = Duration;
    /// Saturating: an earlier minus a later time is zero.
    fn sub(self, rhs: Timestamp) -> Duration {
        self.saturating_since(rhs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Timestamp::from_millis(5);
        assert_eq!(t.as_micros(), 5_000);
        assert_eq!((t + Duration::from_micros(7)).as_micros(), 5_007);
        assert_eq!(t + Duration::MAX, Timestamp(u64::MAX));
        assert_eq!(Timestamp::ZERO - t, Duration::ZERO);
        assert_eq!(t - Timestamp::ZERO, Duration::from_millis(5));
        assert_eq!(Timestamp(u64::MAX).plus_micros(1), Timestamp(u64::MAX));
        let mut u = t;
        u += Duration::from_millis(1);
        assert_eq!(u, Timestamp::from_millis(6));
    }
}
