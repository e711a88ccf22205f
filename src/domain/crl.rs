//! When a CRL is issued, and where it is published: pure rules, no IO.
//!
//! - The published file sits at the URL path of the CRL distribution point (`[ca] crl_url`)
//!   under the publication directory: `http://crl.example/unit-ca.crl` -> `unit-ca.crl`. A URL
//!   whose path could leave that directory (`..`), or names no file, is refused.
//! - A CRL is valid for its validity (`[crl] validity_hours`); a new one is issued when there is
//!   none, when a quarter (or less) of the newest one's validity is left, or when a revocation
//!   was recorded that the newest one does not list.

use std::path::PathBuf;
use time::{Duration, OffsetDateTime};

/// A CRL distribution point URL the station cannot publish at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CRL URL {url:?}: {reason}")]
pub struct CrlUrlError {
    /// The URL.
    pub url: String,
    /// Why.
    pub reason: &'static str,
}

/// The path of `crl_url` (`/unit-ca.crl`), checked: an `http` or `https` URL whose path names a
/// file through plain segments (letters, digits, `-`, `_`, `.`, `~`; never `.` or `..`).
pub fn crl_url_path(crl_url: &str) -> Result<&str, CrlUrlError> {
    let refuse = |reason| CrlUrlError {
        url: crl_url.to_string(),
        reason,
    };
    let rest = crl_url
        .strip_prefix("http://")
        .or_else(|| crl_url.strip_prefix("https://"))
        .ok_or_else(|| refuse("must be an http:// or https:// URL"))?;
    let path = rest
        .find('/')
        .map(|i| &rest[i..])
        .ok_or_else(|| refuse("names no file (no path after the host)"))?;
    if path.contains(['?', '#']) {
        return Err(refuse("must not have a query or a fragment"));
    }
    let segments: Vec<&str> = path[1..].split('/').collect();
    for s in &segments {
        if *s == ".." || *s == "." {
            return Err(refuse("its path must not hold `.` or `..` segments"));
        }
        if s.is_empty() {
            return Err(refuse(
                "its path must name a file, without empty segments (`//`, a trailing `/`)",
            ));
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'))
        {
            return Err(refuse(
                "its path may only hold letters, digits, `-`, `_`, `.`, `~` and `/`",
            ));
        }
    }
    Ok(path)
}

/// Where the CRL of `crl_url` is published, relative to the publication directory.
pub fn publication_path(crl_url: &str) -> Result<PathBuf, CrlUrlError> {
    Ok(crl_url_path(crl_url)?[1..].split('/').collect())
}

/// The validity and re-issue rule of the installation's CRLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrlSchedule {
    /// From thisUpdate to nextUpdate.
    pub validity: Duration,
}

/// What the newest recorded CRL says about itself, for [`CrlSchedule::due`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewestCrl {
    /// thisUpdate.
    pub this_update: OffsetDateTime,
    /// nextUpdate.
    pub next_update: OffsetDateTime,
    /// How many revocations it lists.
    pub entries: i64,
}

/// Why a new CRL is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CrlDue {
    /// No CRL was issued yet.
    First,
    /// A quarter or less of the newest one's validity is left (or it has expired).
    Renewal,
    /// A revocation was recorded that the newest one does not list.
    NewRevocation,
}

impl CrlSchedule {
    /// The schedule of `validity_hours`.
    pub fn hours(validity_hours: u32) -> CrlSchedule {
        CrlSchedule {
            validity: Duration::hours(i64::from(validity_hours)),
        }
    }

    /// nextUpdate of a CRL issued at `this_update`.
    pub fn next_update(&self, this_update: OffsetDateTime) -> OffsetDateTime {
        this_update + self.validity
    }

    /// Whether a new CRL is due at `now`, given the newest one and how many revocations are
    /// recorded. The quarter is of the newest CRL's own validity (the setting may have changed
    /// since it was issued).
    pub fn due(
        &self,
        newest: Option<&NewestCrl>,
        revocations: i64,
        now: OffsetDateTime,
    ) -> Option<CrlDue> {
        let Some(n) = newest else {
            return Some(CrlDue::First);
        };
        if revocations > n.entries {
            return Some(CrlDue::NewRevocation);
        }
        let validity = n.next_update - n.this_update;
        let left = n.next_update - now;
        (left * 4 <= validity).then_some(CrlDue::Renewal)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::path::Path;
    use time::macros::datetime;

    #[test]
    fn the_crl_is_published_at_the_url_path_under_the_directory() {
        for (url, path) in [
            ("http://crl.keystation.invalid/unit-ca.crl", "unit-ca.crl"),
            (
                "https://pki.example.cn:8443/crl/2026/unit.crl",
                "crl/2026/unit.crl",
            ),
            ("http://x/a~b_c-d.crl", "a~b_c-d.crl"),
        ] {
            assert_eq!(
                publication_path(url).as_deref(),
                Ok(Path::new(path)),
                "{url}"
            );
        }
        assert_eq!(
            crl_url_path("http://crl.keystation.invalid/unit-ca.crl"),
            Ok("/unit-ca.crl")
        );
        for (url, says) in [
            ("http://x/../etc/passwd", ".."),
            ("http://x/crl/../../x.crl", ".."),
            ("http://x/./x.crl", ".."),
            ("http://x/crl/", "empty segments"),
            ("http://x//x.crl", "empty segments"),
            ("http://x", "no path"),
            ("http://x/", "empty segments"),
            ("ftp://x/a.crl", "http"),
            ("/a.crl", "http"),
            ("http://x/a.crl?v=1", "query"),
            ("http://x/%2e%2e/a.crl", "may only hold"),
            ("http://x/a b.crl", "may only hold"),
            ("http://x/a\\..\\b.crl", "may only hold"),
        ] {
            let err = publication_path(url).unwrap_err();
            assert!(err.to_string().contains(says), "{url}: {err}");
        }
    }

    fn newest(entries: i64) -> NewestCrl {
        NewestCrl {
            this_update: datetime!(2026-12-01 00:00 UTC),
            next_update: datetime!(2026-12-02 00:00 UTC),
            entries,
        }
    }

    #[test]
    fn a_crl_is_due_first_at_the_last_quarter_and_after_a_revocation() {
        let s = CrlSchedule::hours(24);
        assert_eq!(
            s.next_update(datetime!(2026-12-01 00:00 UTC)),
            datetime!(2026-12-02 00:00 UTC)
        );
        let n = newest(2);
        assert_eq!(
            s.due(None, 0, datetime!(2026-12-01 00:00 UTC)),
            Some(CrlDue::First)
        );
        // Three quarters in: 6 h left of 24 is a quarter: due; a second earlier it is not.
        assert_eq!(s.due(Some(&n), 2, datetime!(2026-12-01 17:59:59 UTC)), None);
        assert_eq!(
            s.due(Some(&n), 2, datetime!(2026-12-01 18:00 UTC)),
            Some(CrlDue::Renewal)
        );
        assert_eq!(
            s.due(Some(&n), 2, datetime!(2026-12-03 00:00 UTC)),
            Some(CrlDue::Renewal)
        );
        assert_eq!(s.due(Some(&n), 2, datetime!(2026-12-01 00:00 UTC)), None);
        // A revocation the newest one does not list (made by another station, or whose CRL
        // failed): due at once.
        assert_eq!(
            s.due(Some(&n), 3, datetime!(2026-12-01 00:00:01 UTC)),
            Some(CrlDue::NewRevocation)
        );
        // The quarter is of the newest CRL's own validity, not of today's setting.
        let short = CrlSchedule::hours(1);
        assert_eq!(
            short.due(Some(&n), 2, datetime!(2026-12-01 12:00 UTC)),
            None
        );
    }
}
