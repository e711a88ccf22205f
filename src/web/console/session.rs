//! Console sessions, held by the server (the browser holds only a random id in a cookie).
//!
//! A session is made on the first visit to the login page, before anyone logs in, so that the
//! login form too carries a CSRF token; a successful login replaces it by a new session (new id,
//! new CSRF token) so that an id known before login is worth nothing after. A session ends after
//! `idle` without a request, or at logout. Ids and CSRF tokens are 32 random bytes from the
//! station's source; a CSRF token is compared in constant time.
//!
//! Anyone can open the login page, and each visit without a cookie makes a session: at most
//! [`MAX_ANONYMOUS`] such sessions are kept, the least recently used dropped for a new one, so a
//! client fetching the login page in a loop cannot grow the map without bound. Logged-in
//! sessions are not counted: they cost a password and a TOTP code each.

use crate::domain::{OperatorId, Roles};
use std::collections::HashMap;
use std::sync::Mutex;
use time::{Duration, OffsetDateTime};

/// The cookie that carries the session id.
pub const COOKIE: &str = "ks_console";

/// The most sessions kept that nobody has logged in to yet.
pub const MAX_ANONYMOUS: usize = 1024;

/// Who a session is, and its CSRF token.
#[derive(Clone)]
pub struct Session {
    /// The session's id (the cookie's value).
    pub id: String,
    /// The logged-in operator; `None` before login.
    pub operator: Option<(OperatorId, Roles)>,
    /// The token every form of this session carries.
    pub csrf: String,
    last_seen: OffsetDateTime,
}

impl std::fmt::Debug for Session {
    /// The id and the CSRF token are bearer secrets: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("operator", &self.operator)
            .field("last_seen", &self.last_seen)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Whether `sent` (a form's `csrf` field) is this session's token.
    pub fn csrf_matches(&self, sent: &str) -> bool {
        let (a, b) = (self.csrf.as_bytes(), sent.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// Every live session of the console.
pub struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
    idle: Duration,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("live", &self.map().len())
            .field("idle", &self.idle)
            .finish()
    }
}

impl Sessions {
    /// No sessions yet; each ends after `idle` without a request.
    pub fn new(idle: Duration) -> Sessions {
        Sessions {
            by_id: Mutex::new(HashMap::new()),
            idle,
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A panic while holding the lock leaves the map as it was: keep serving.
        self.by_id.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The live session `id`, touched at `now`; an idle one is ended and not returned.
    pub fn get(&self, id: &str, now: OffsetDateTime) -> Option<Session> {
        let mut map = self.map();
        map.retain(|_, s| now - s.last_seen < self.idle);
        let session = map.get_mut(id)?;
        session.last_seen = now;
        Some(session.clone())
    }

    /// A new session (id and CSRF token given), for `operator` or nobody yet.
    pub fn start(
        &self,
        id: String,
        csrf: String,
        operator: Option<(OperatorId, Roles)>,
        now: OffsetDateTime,
    ) -> Session {
        let mut map = self.map();
        if operator.is_none() {
            map.retain(|_, s| now - s.last_seen < self.idle);
            while let Some(oldest) = least_recent_anonymous_over_cap(&map) {
                map.remove(&oldest);
            }
        }
        let session = Session {
            id: id.clone(),
            operator,
            csrf,
            last_seen: now,
        };
        map.insert(id, session.clone());
        session
    }

    /// Ends the session `id`.
    pub fn end(&self, id: &str) {
        self.map().remove(id);
    }
}

/// The least recently used anonymous session while there are [`MAX_ANONYMOUS`] or more.
fn least_recent_anonymous_over_cap(map: &HashMap<String, Session>) -> Option<String> {
    let anonymous = map.values().filter(|s| s.operator.is_none());
    if anonymous.clone().count() < MAX_ANONYMOUS {
        return None;
    }
    anonymous.min_by_key(|s| s.last_seen).map(|s| s.id.clone())
}

/// The session id in a `Cookie` header's value.
pub fn id_from_cookies(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, v)| v)
}

/// The `Set-Cookie` value for session `id`: HttpOnly, SameSite=Strict, and Secure when the
/// console is served over TLS.
pub fn set_cookie(id: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_session_ends_after_its_idle_time_and_is_kept_alive_by_use() {
        let t0 = datetime!(2026-01-01 0:00 UTC);
        let sessions = Sessions::new(Duration::minutes(15));
        sessions.start("a".into(), "c".into(), None, t0);
        assert!(sessions.get("a", t0 + Duration::minutes(14)).is_some());
        assert!(sessions.get("a", t0 + Duration::minutes(28)).is_some());
        assert!(sessions.get("a", t0 + Duration::minutes(43)).is_none());
        assert!(
            sessions.get("a", t0).is_none(),
            "an ended session stays ended"
        );
    }

    #[test]
    fn anonymous_sessions_are_capped_dropping_the_least_recently_used() {
        let t0 = datetime!(2026-01-01 0:00 UTC);
        let sessions = Sessions::new(Duration::minutes(15));
        let operator = Some((OperatorId::parse("rita").unwrap(), Roles::new()));
        sessions.start("rita".into(), "c".into(), operator, t0);
        for i in 0..MAX_ANONYMOUS {
            let at = t0 + Duration::milliseconds(i as i64);
            sessions.start(format!("a{i}"), "c".into(), None, at);
        }
        // a0 is used again: a1 is now the least recently used.
        let later = t0 + Duration::seconds(10);
        assert!(sessions.get("a0", later).is_some());
        sessions.start("new".into(), "c".into(), None, later);
        assert!(
            sessions.get("a1", later).is_none(),
            "the oldest was dropped"
        );
        assert!(sessions.get("a0", later).is_some());
        assert!(sessions.get("new", later).is_some());
        assert!(
            sessions.get("rita", later).is_some(),
            "a logged-in one stays"
        );
        assert_eq!(sessions.map().len(), MAX_ANONYMOUS + 1);
    }

    #[test]
    fn csrf_and_cookies() {
        let t0 = datetime!(2026-01-01 0:00 UTC);
        let s = Sessions::new(Duration::minutes(1)).start("id".into(), "abc".into(), None, t0);
        assert!(s.csrf_matches("abc"));
        assert!(!s.csrf_matches("abd") && !s.csrf_matches("") && !s.csrf_matches("abcd"));
        assert_eq!(id_from_cookies("x=1; ks_console=zz; y=2"), Some("zz"));
        assert_eq!(id_from_cookies("x=1"), None);
        let c = set_cookie("zz", false);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && !c.contains("Secure"));
        assert!(set_cookie("zz", true).ends_with("; Secure"));
    }
}
