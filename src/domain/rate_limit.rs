//! A provider's rate limit, pure: a token bucket (in its GCRA form) that says whether a send may
//! start at a given moment, and if not, how long to wait.
//!
//! Invariant: with `per_second = L` and a burst of `B`, the sends granted in any window of one
//! second number at most `L + B - 1`; with the burst of 1 the delivery worker uses, at most `L`.
//! The interval between sends is rounded UP to the nanosecond, so rounding never lets one
//! more through. Time is a parameter (the time elapsed since the bucket was made), so tests
//! drive it with a fake clock and count.

use std::num::NonZeroU32;
use std::time::Duration;

/// The sends a channel may start, as a token bucket: `burst` tokens, one more every
/// `1 s / per_second`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBucket {
    /// Time between two tokens.
    interval: Duration,
    /// How far ahead of the steady pace a send may start: `(burst - 1) * interval`.
    tolerance: Duration,
    /// The theoretical time of the next send at the steady pace (GCRA's "TAT").
    next_at: Duration,
}

impl TokenBucket {
    /// `per_second` sends a second, `burst` of them at once after a quiet moment.
    pub fn new(per_second: NonZeroU32, burst: NonZeroU32) -> Self {
        let interval = Duration::from_nanos(1_000_000_000u64.div_ceil(u64::from(per_second.get())));
        TokenBucket {
            interval,
            tolerance: interval * (burst.get() - 1),
            next_at: Duration::ZERO,
        }
    }

    /// Takes a token at `now` (time since the bucket was made): `None` when the send may start
    /// now (the token is used), or how long to wait before asking again (nothing is used).
    pub fn take(&mut self, now: Duration) -> Option<Duration> {
        let earliest = self.next_at.saturating_sub(self.tolerance);
        if now < earliest {
            return Some(earliest - now);
        }
        self.next_at = self.next_at.max(now) + self.interval;
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn nz(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    /// Sends `n` messages as fast as the bucket allows, the fake clock moved only by the waits
    /// it asks for (and by `jitter`, extra time before each request); returns the grant times.
    fn grants(bucket: &mut TokenBucket, n: usize, jitter: &[u64]) -> Vec<Duration> {
        let mut now = Duration::ZERO;
        let mut out = Vec::new();
        let mut i = 0;
        while out.len() < n {
            now += Duration::from_millis(jitter.get(i % jitter.len().max(1)).copied().unwrap_or(0));
            i += 1;
            while let Some(wait) = bucket.take(now) {
                assert!(wait > Duration::ZERO, "a wait is never zero");
                now += wait;
            }
            out.push(now);
        }
        out
    }

    /// The largest number of grants in any window `[t, t + 1 s)`.
    fn busiest_second(times: &[Duration]) -> usize {
        times
            .iter()
            .map(|&start| {
                times
                    .iter()
                    .filter(|&&t| t >= start && t < start + Duration::from_secs(1))
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn at_most_the_limit_in_any_second() {
        let mut b = TokenBucket::new(nz(10), nz(1));
        let times = grants(&mut b, 100, &[0]);
        assert_eq!(busiest_second(&times), 10);
        // 100 sends at 10/s: the last one starts 9.9 s after the first, not earlier.
        assert!(times[99] - times[0] >= Duration::from_millis(9_900));
    }

    #[test]
    fn a_burst_goes_at_once_then_the_pace_holds() {
        let mut b = TokenBucket::new(nz(5), nz(3));
        assert_eq!(b.take(Duration::ZERO), None);
        assert_eq!(b.take(Duration::ZERO), None);
        assert_eq!(b.take(Duration::ZERO), None);
        assert_eq!(b.take(Duration::ZERO), Some(Duration::from_millis(200)));
        assert_eq!(b.take(Duration::from_millis(200)), None);
        assert_eq!(
            b.take(Duration::from_millis(200)),
            Some(Duration::from_millis(200))
        );
    }

    #[test]
    fn a_quiet_moment_does_not_save_up_more_than_the_burst() {
        let mut b = TokenBucket::new(nz(2), nz(2));
        let later = Duration::from_secs(3600);
        assert_eq!(b.take(later), None);
        assert_eq!(b.take(later), None);
        assert!(b.take(later).is_some());
    }

    #[test]
    fn rounding_never_lets_one_more_through() {
        // 1 s / 3 is not a whole number of nanoseconds.
        let mut b = TokenBucket::new(nz(3), nz(1));
        let times = grants(&mut b, 31, &[0]);
        assert_eq!(busiest_second(&times), 3);
        assert!(times[30] - times[0] >= Duration::from_secs(10));
    }

    proptest! {
        #[test]
        fn never_more_than_rate_plus_burst_in_a_second(
            rate in 1u32..200,
            burst in 1u32..10,
            jitter in proptest::collection::vec(0u64..50, 1..20),
        ) {
            let mut b = TokenBucket::new(nz(rate), nz(burst));
            let times = grants(&mut b, 300, &jitter);
            let most = busiest_second(&times);
            prop_assert!(most <= (rate + burst - 1) as usize, "{most} in one second");
        }
    }
}
