//! The operators' console, pure: which orders a queue search finds ([`QueueSearch`]), and when
//! failed logins stop being accepted ([`LoginThrottle`]). The web layer holds the state; the rules
//! are here, with time a parameter.

use std::collections::{BTreeMap, VecDeque};
use time::{Duration, OffsetDateTime};

/// A search of the queue: one text matched against the order number, the company's name and
/// its USCC. Case and spaces do not count (a USCC is often typed in groups, or in lower case).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueueSearch {
    needle: String,
}

/// Lower case, without white space (full-width spaces included).
fn folded(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

impl QueueSearch {
    /// The search for `text` (empty: everything matches).
    pub fn new(text: &str) -> QueueSearch {
        QueueSearch {
            needle: folded(text),
        }
    }

    /// Whether nothing is searched for.
    pub fn is_empty(&self) -> bool {
        self.needle.is_empty()
    }

    /// Whether an order with this number, company name and USCC is found.
    pub fn matches(&self, order_no: &str, company: &str, uscc: &str) -> bool {
        self.is_empty()
            || [order_no, company, uscc]
                .iter()
                .any(|field| folded(field).contains(&self.needle))
    }
}

/// Failed console logins per client: after [`LoginThrottle::MAX_FAILURES`] failures within
/// [`LoginThrottle::WINDOW`], further attempts from that client are refused (without looking at
/// the token) until the oldest failure leaves the window. A success does not clear the record:
/// guessing stays bounded whatever else the client does.
#[derive(Debug, Clone, Default)]
pub struct LoginThrottle {
    failures: BTreeMap<String, VecDeque<OffsetDateTime>>,
}

impl LoginThrottle {
    /// Failures tolerated within [`LoginThrottle::WINDOW`].
    pub const MAX_FAILURES: usize = 5;
    /// How long a failure counts.
    pub const WINDOW: Duration = Duration::minutes(5);

    /// Whether `client` may try to log in at `now`.
    pub fn allows(&mut self, client: &str, now: OffsetDateTime) -> bool {
        self.forget_old(client, now);
        self.failures
            .get(client)
            .is_none_or(|f| f.len() < Self::MAX_FAILURES)
    }

    /// Records a failed attempt of `client` at `now`.
    pub fn failed(&mut self, client: &str, now: OffsetDateTime) {
        self.forget_old(client, now);
        self.failures
            .entry(client.to_string())
            .or_default()
            .push_back(now);
    }

    fn forget_old(&mut self, client: &str, now: OffsetDateTime) {
        if let Some(f) = self.failures.get_mut(client) {
            while f.front().is_some_and(|t| now - *t >= Self::WINDOW) {
                f.pop_front();
            }
            if f.is_empty() {
                self.failures.remove(client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_search_matches_number_company_or_uscc_ignoring_case_and_spaces() {
        // Spaces are dropped, not taken for a dash.
        assert!(!QueueSearch::new(" ks-DEMO 0001 ").matches("KS-DEMO-0001", "x", "y"));
        let s = QueueSearch::new("demo-0001");
        assert!(s.matches("KS-DEMO-0001", "北京星河", "91110000600037341L"));
        assert!(QueueSearch::new("星河").matches("A", "北京星河数智科技有限公司", "U"));
        assert!(QueueSearch::new("9111 0000 6000 3734 1l").matches("A", "B", "91110000600037341L"));
        assert!(!QueueSearch::new("9112").matches("A", "B", "91110000600037341L"));
        assert!(QueueSearch::new("  ").matches("A", "B", "C"));
        assert!(QueueSearch::new("").is_empty());
    }

    #[test]
    fn the_sixth_failure_in_five_minutes_is_refused_until_the_first_ages_out() {
        let t0 = datetime!(2026-01-01 0:00 UTC);
        let mut th = LoginThrottle::default();
        for i in 0..LoginThrottle::MAX_FAILURES {
            assert!(th.allows("127.0.0.1", t0 + Duration::seconds(i as i64)));
            th.failed("127.0.0.1", t0 + Duration::seconds(i as i64));
        }
        assert!(!th.allows("127.0.0.1", t0 + Duration::seconds(10)));
        // Another client is not affected.
        assert!(th.allows("10.0.0.2", t0 + Duration::seconds(10)));
        // The first failure leaves the window: one more attempt.
        let later = t0 + LoginThrottle::WINDOW;
        assert!(th.allows("127.0.0.1", later));
        th.failed("127.0.0.1", later);
        assert!(!th.allows("127.0.0.1", later));
        assert!(th.allows("127.0.0.1", later + LoginThrottle::WINDOW));
    }
}
