//! Renewal (证书更新): when a company's certificate may be renewed, and the number its renewal
//! order gets.
//!
//! A renewal is a new order linked to the original (`renewal_of`), with the original's company,
//! form and documents, reviewed like any order. It is offered from [`RENEWAL_WINDOW_DAYS`] days
//! before the live certificate's notAfter until notAfter; an expired or revoked certificate is
//! not renewed (a new order is). The renewal order's number is the original's root with
//! `-R<n>`: `ORD-1` → `ORD-1-R1`, and a renewal of `ORD-1-R1` → `ORD-1-R2`, so a chain of
//! renewals reads as one.

use super::identifiers::{InvalidIdentifier, OrderNo};

/// Days before notAfter from which a certificate may be renewed.
pub const RENEWAL_WINDOW_DAYS: i64 = 30;

/// Most renewals one order chain can number (`-R1` .. `-R99`).
pub const MAX_RENEWALS: u32 = 99;

/// Why a certificate may not be renewed now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenewalRefusal {
    /// The window has not opened yet.
    #[error("renewal opens on {opens_at} ({days} days before the certificate expires on {not_after})", days = RENEWAL_WINDOW_DAYS)]
    NotYetOpen {
        /// When it opens.
        opens_at: time::OffsetDateTime,
        /// The certificate's notAfter.
        not_after: time::OffsetDateTime,
    },
    /// The certificate has expired: it is no longer live.
    #[error("the certificate expired on {not_after}: order a new key instead")]
    Expired {
        /// The certificate's notAfter.
        not_after: time::OffsetDateTime,
    },
}

/// When a certificate valid until `not_after` may be renewed.
pub fn renewal_opens_at(not_after: time::OffsetDateTime) -> time::OffsetDateTime {
    not_after - time::Duration::days(RENEWAL_WINDOW_DAYS)
}

/// Whether a certificate valid until `not_after` may be renewed at `now`: from
/// [`renewal_opens_at`] (inclusive) until `not_after` (exclusive).
pub fn renewal_window(
    not_after: time::OffsetDateTime,
    now: time::OffsetDateTime,
) -> Result<(), RenewalRefusal> {
    let opens_at = renewal_opens_at(not_after);
    if now < opens_at {
        Err(RenewalRefusal::NotYetOpen {
            opens_at,
            not_after,
        })
    } else if now >= not_after {
        Err(RenewalRefusal::Expired { not_after })
    } else {
        Ok(())
    }
}

/// The order number a chain of renewals is numbered from: `original` itself, or, when
/// `original` is a renewal (`original_is_renewal`) numbered `ROOT-R<n>`, that `ROOT`.
pub fn renewal_root(original: &OrderNo, original_is_renewal: bool) -> &str {
    let s = original.as_str();
    if !original_is_renewal {
        return s;
    }
    match s.rsplit_once("-R") {
        Some((root, n))
            if !root.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) =>
        {
            root
        }
        _ => s,
    }
}

/// The `n`-th renewal number of `root`: `ROOT-R<n>`. Refused when it would not be an order
/// number (too long for a token label).
pub fn renewal_order_no(root: &str, n: u32) -> Result<OrderNo, InvalidIdentifier> {
    OrderNo::parse(&format!("{root}-R{n}"))
}

#[cfg(test)]
mod tests;
