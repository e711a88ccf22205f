//! The secondary key (副锁) rule: a company adds a key for a second employee only while it has a
//! live main key (主锁).
//!
//! A secondary-key order names its company's main-key order (`product.main_order_no`). It is
//! accepted — at approval, and again when provisioning starts, before any token is touched —
//! only if that order exists, is a main key, belongs to the same company (same USCC), and has a
//! live certificate on the token bound to it: written to the token (`on_token`, so neither
//! revoked nor merely reserved or issued) and not expired. The store gathers the facts
//! ([`MainKeyFacts`]); this module decides, so the rule is tested without a database.
//!
//! Only the start of a secondary key's life depends on its main key: revoking or losing the
//! main key later leaves the secondaries already made as they are (each has its own key pair
//! and certificate, and the domain text ties the secondary to the company, not to the main
//! key's certificate). Revoking them too is a separate, explicit operator decision.

use super::order::{KeyRole, Order};
use super::{CertificateStatus, OrderNo};
use time::OffsetDateTime;

/// One certificate of the main-key order, as far as the rule needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MainCertificate {
    /// Serial, hex.
    pub serial: String,
    /// Where it stands.
    pub status: CertificateStatus,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// The token it was issued for.
    pub token_serial: Option<String>,
}

/// What the store knows about the order a secondary key names as its main key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MainKeyFacts {
    /// The main-key order.
    pub order_no: OrderNo,
    /// Its product's key role.
    pub key_role: KeyRole,
    /// Its company's USCC (normalised, as stored).
    pub uscc: String,
    /// The serial of the token bound to it now, if any.
    pub bound_token: Option<String>,
    /// Its certificates.
    pub certificates: Vec<MainCertificate>,
}

/// The live main key a secondary key was accepted against.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LiveMainKey {
    /// The main-key order.
    pub order_no: OrderNo,
    /// Its token.
    pub token_serial: String,
    /// Its live certificate.
    pub certificate_serial: String,
}

/// Why a secondary key is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MainKeyRefusal {
    /// The order names no main-key order (stored before the rule existed).
    #[error("a secondary key names its company's main-key order; this one names none")]
    NotNamed,
    /// No order has the named number.
    #[error("its main-key order {0} does not exist")]
    NotFound(OrderNo),
    /// The named order is itself a secondary key.
    #[error("order {0} is a secondary key, not the company's main key")]
    NotMainKey(OrderNo),
    /// The named order belongs to another company.
    #[error("main-key order {main} belongs to another company (USCC {uscc}, not {expected})")]
    OtherCompany {
        /// The named order.
        main: OrderNo,
        /// Its company's USCC.
        uscc: String,
        /// The secondary key's company's USCC.
        expected: String,
    },
    /// The main key has no live certificate on its bound token.
    #[error(
        "main-key order {0} has no live certificate on a bound token (not provisioned yet, \
         revoked, expired, or its token released)"
    )]
    NotLive(OrderNo),
}

/// Decides whether `order` may get its key now. A main-key order needs nothing (`Ok(None)`);
/// a secondary key needs the live main key described by `main` (the facts of the order it
/// names, `None` when there is no such order) at `now`.
pub fn check_main_key(
    order: &Order,
    main: Option<&MainKeyFacts>,
    now: OffsetDateTime,
) -> Result<Option<LiveMainKey>, MainKeyRefusal> {
    if order.product.key_role == KeyRole::Main {
        return Ok(None);
    }
    let named = order
        .product
        .main_order_no
        .as_ref()
        .ok_or(MainKeyRefusal::NotNamed)?;
    let main = main
        .filter(|m| m.order_no == *named)
        .ok_or_else(|| MainKeyRefusal::NotFound(named.clone()))?;
    if main.key_role != KeyRole::Main {
        return Err(MainKeyRefusal::NotMainKey(named.clone()));
    }
    if main.uscc != order.company.uscc {
        return Err(MainKeyRefusal::OtherCompany {
            main: named.clone(),
            uscc: main.uscc.clone(),
            expected: order.company.uscc.clone(),
        });
    }
    let token = main
        .bound_token
        .as_ref()
        .ok_or_else(|| MainKeyRefusal::NotLive(named.clone()))?;
    main.certificates
        .iter()
        .find(|c| {
            c.status == CertificateStatus::OnToken
                && c.not_after > now
                && c.token_serial.as_ref() == Some(token)
        })
        .map(|c| {
            Some(LiveMainKey {
                order_no: named.clone(),
                token_serial: token.clone(),
                certificate_serial: c.serial.clone(),
            })
        })
        .ok_or_else(|| MainKeyRefusal::NotLive(named.clone()))
}

/// A company's key order, as `order show` groups them.
pub trait CompanyKey {
    /// Its order number.
    fn order_no(&self) -> &str;
    /// Main or secondary.
    fn key_role(&self) -> KeyRole;
    /// The main-key order it names (a secondary key).
    fn main_order_no(&self) -> Option<&str>;
}

/// Arranges a company's key orders (in the order given, e.g. oldest first): each main key
/// followed by the secondaries that name it, then any secondary whose main key is not among
/// them.
pub fn arrange_company_keys<K: CompanyKey>(keys: Vec<K>) -> Vec<K> {
    let (mains, mut secondaries): (Vec<K>, Vec<K>) = keys
        .into_iter()
        .partition(|k| k.key_role() == KeyRole::Main);
    let mut out = Vec::with_capacity(mains.len() + secondaries.len());
    for main in mains {
        let no = main.order_no().to_string();
        out.push(main);
        let (mine, rest): (Vec<K>, Vec<K>) = secondaries
            .into_iter()
            .partition(|s| s.main_order_no() == Some(no.as_str()));
        out.extend(mine);
        secondaries = rest;
    }
    out.extend(secondaries);
    out
}

#[cfg(test)]
mod tests;
