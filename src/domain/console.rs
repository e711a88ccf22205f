//! The operators' console and the order API, pure: which orders a queue search finds
//! ([`QueueSearch`]), when failed logins stop being accepted ([`LoginThrottle`]), and which
//! refused API requests are audited one by one ([`RefusalAudit`]). The web layer holds the
//! state; the rules are here, with time a parameter.

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

/// Refused API requests, audited without letting a client flood the trail: per client, the
/// first [`RefusalAudit::MAX_PER_CLIENT`] refusals within [`RefusalAudit::WINDOW`] are
/// recorded one by one, and at most [`RefusalAudit::MAX_TOTAL`] of all clients together;
/// the others are only counted, and the count rides on the client's next recorded refusal
/// (`suppressed`), so none goes unaccounted once the client comes back after the window.
#[derive(Debug, Clone, Default)]
pub struct RefusalAudit {
    clients: BTreeMap<String, ClientRefusals>,
    recorded: VecDeque<OffsetDateTime>,
}

#[derive(Debug, Clone, Default)]
struct ClientRefusals {
    recorded: VecDeque<OffsetDateTime>,
    suppressed: u64,
}

impl RefusalAudit {
    /// Records per client within [`RefusalAudit::WINDOW`].
    pub const MAX_PER_CLIENT: usize = 5;
    /// Records of all clients within [`RefusalAudit::WINDOW`].
    pub const MAX_TOTAL: usize = 60;
    /// How long a record counts.
    pub const WINDOW: Duration = Duration::minutes(1);

    /// A refusal of `client` at `now`: `Some(n)` when it is to be recorded, `n` being the
    /// refusals of this client left unrecorded since its last record; `None` when it is only
    /// counted.
    pub fn refused(&mut self, client: &str, now: OffsetDateTime) -> Option<u64> {
        while self
            .recorded
            .front()
            .is_some_and(|t| now - *t >= Self::WINDOW)
        {
            self.recorded.pop_front();
        }
        self.clients.retain(|_, c| {
            while c.recorded.front().is_some_and(|t| now - *t >= Self::WINDOW) {
                c.recorded.pop_front();
            }
            !c.recorded.is_empty() || c.suppressed > 0
        });
        let c = self.clients.entry(client.to_string()).or_default();
        if c.recorded.len() >= Self::MAX_PER_CLIENT || self.recorded.len() >= Self::MAX_TOTAL {
            c.suppressed += 1;
            return None;
        }
        c.recorded.push_back(now);
        self.recorded.push_back(now);
        Some(std::mem::take(&mut c.suppressed))
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
    #[test]
    fn refusals_are_recorded_up_to_the_limits_and_the_rest_counted_into_the_next_record() {
        let t0 = datetime!(2026-12-07 03:00 UTC);
        let mut audit = RefusalAudit::default();
        for i in 0..RefusalAudit::MAX_PER_CLIENT {
            assert_eq!(
                audit.refused("10.0.0.1", t0 + Duration::seconds(i as i64)),
                Some(0)
            );
        }
        for _ in 0..7 {
            assert_eq!(audit.refused("10.0.0.1", t0 + Duration::seconds(10)), None);
        }
        // Another client is recorded meanwhile.
        assert_eq!(
            audit.refused("10.0.0.2", t0 + Duration::seconds(10)),
            Some(0)
        );
        // After the window: recorded again, with the 7 counted ones.
        let later = t0 + RefusalAudit::WINDOW + Duration::seconds(5);
        assert_eq!(audit.refused("10.0.0.1", later), Some(7));
        assert_eq!(audit.refused("10.0.0.1", later), Some(0));
        // Many clients together: at most MAX_TOTAL records per window.
        let t1 = later + RefusalAudit::WINDOW * 2;
        let recorded = (0..RefusalAudit::MAX_TOTAL + 40)
            .filter(|i| audit.refused(&format!("client-{i}"), t1).is_some())
            .count();
        assert_eq!(recorded, RefusalAudit::MAX_TOTAL);
    }
}
