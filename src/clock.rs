//! Time as a parameter. Only this file reads the wall clock (clippy `disallowed-methods` enforces
//! it elsewhere), so tests run the whole station at a fixed, advanceable instant.

use std::fmt::Debug;
use std::sync::Mutex;
use time::{Duration, OffsetDateTime, UtcOffset};

/// Beijing time (UTC+8): certificates end at 23:59:59 of this offset, birth dates are judged in it.
pub const BEIJING: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(o) => o,
    Err(_) => UtcOffset::UTC,
};

/// A source of the current instant.
pub trait Clock: Send + Sync + Debug {
    /// Now, in UTC.
    fn now(&self) -> OffsetDateTime;

    /// Today's calendar date in Beijing.
    fn today_beijing(&self) -> time::Date {
        self.now().to_offset(BEIJING).date()
    }
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one sanctioned read of the wall clock
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that stands still until told to move.
#[derive(Debug)]
pub struct FixedClock(Mutex<OffsetDateTime>);

impl FixedClock {
    /// A clock showing `at`.
    pub fn new(at: OffsetDateTime) -> Self {
        FixedClock(Mutex::new(at))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// RFC 3339 in UTC with microseconds and a `Z`, fixed width so text order is time order in the
/// database.
pub fn format_utc(t: OffsetDateTime) -> String {
    const FMT: &[time::format_description::FormatItem<'_>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    t.to_offset(UtcOffset::UTC)
        .format(FMT)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// Parses what [`format_utc`] wrote (any RFC 3339 is accepted).
pub fn parse_utc(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn fixed_clock_advances() {
        let c = FixedClock::new(datetime!(2026-11-24 05:00 UTC));
        c.advance(Duration::hours(20));
        assert_eq!(c.now(), datetime!(2026-11-25 01:00 UTC));
        assert_eq!(c.today_beijing(), time::macros::date!(2026 - 11 - 25));
    }

    #[test]
    fn utc_text_round_trips_and_sorts() {
        let a = datetime!(2026-11-24 05:00:00.5 +08:00);
        let s = format_utc(a);
        assert_eq!(s, "2026-11-23T21:00:00.500000Z");
        assert_eq!(parse_utc(&s), Some(a));
        assert!(
            format_utc(datetime!(2026-01-02 00:00 UTC))
                < format_utc(datetime!(2026-10-01 00:00 UTC))
        );
    }
}
