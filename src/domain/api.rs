//! The order API's pure rules (issue 17, item 3): what an API token may be used for (its
//! [`Scope`]s), which audit actions are the steps of an order's progress the portal shows
//! ([`progress_state`]), the bounds of a listing ([`list_limit`]), and the shape of a
//! submission: `{"order": <the order form>, "files": {"<name>": "<base64>"}}`
//! ([`submission_parts`]), the form exactly as `order import` reads it, each document and seal
//! picture it names sent under that name.
//!
//! Who may *change* something is still [`super::operator`]'s table: a token acts as its
//! registered operator, so a submission needs both the token's `orders:submit` scope and the
//! operator's role for `import_order`.

use super::order::OrderState;
use super::text::escape_for_display;
use super::validate::Violation;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// What an API token may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Scope {
    /// `POST /api/v1/orders`.
    #[serde(rename = "orders:submit")]
    OrdersSubmit,
    /// `GET /api/v1/orders`, `GET /api/v1/orders/{order_no}`.
    #[serde(rename = "orders:read")]
    OrdersRead,
}

/// A token's scopes.
pub type Scopes = BTreeSet<Scope>;

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 2] = [Scope::OrdersSubmit, Scope::OrdersRead];

    /// Stable name, as stored, typed and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::OrdersSubmit => "orders:submit",
            Scope::OrdersRead => "orders:read",
        }
    }

    /// Parses a scope name (exactly as [`Scope::as_str`] gives it, surrounding blanks aside).
    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|x| x.as_str() == s.trim())
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses comma-separated scopes (`orders:submit,orders:read`): at least one, each known.
pub fn parse_scopes(text: &str) -> Result<Scopes, String> {
    let mut scopes = Scopes::new();
    for part in text.split(',').filter(|p| !p.trim().is_empty()) {
        let scope = Scope::parse(part).ok_or_else(|| {
            format!(
                "unknown scope {:?}: one of {}",
                escape_for_display(part.trim()),
                scopes_text(&Scope::ALL.into_iter().collect())
            )
        })?;
        scopes.insert(scope);
    }
    if scopes.is_empty() {
        return Err(format!(
            "no scope given: one or more of {}",
            scopes_text(&Scope::ALL.into_iter().collect())
        ));
    }
    Ok(scopes)
}

/// Scopes as stored and printed: comma-separated, in a fixed order.
pub fn scopes_text(scopes: &Scopes) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// The state an order reached by the audit action `action`, when the action is a step of its
/// progress (what the portal's progress page lists); `None` for everything else (provisioning
/// steps, deliveries' attempts, notices: internal, and not the applicant's business).
pub fn progress_state(action: &str) -> Option<OrderState> {
    Some(match action {
        "order.imported" => OrderState::Submitted,
        "order.approved" | "provision.token_released" => OrderState::Approved,
        "order.rejected" => OrderState::Rejected,
        "provision.claimed" => OrderState::Provisioning,
        "order.provisioned" => OrderState::Provisioned,
        "provision.failed" => OrderState::Failed,
        "order.shipped" => OrderState::Shipped,
        "delivery.confirmed" => OrderState::PinDelivered,
        "order.revoked" => OrderState::Revoked,
        _ => return None,
    })
}

/// Orders in one page of a listing when the client does not say.
pub const DEFAULT_LIST_LIMIT: u32 = 50;
/// The most orders in one page of a listing.
pub const MAX_LIST_LIMIT: u32 = 500;

/// The `limit` of a listing: [`DEFAULT_LIST_LIMIT`] when absent, else 1 to [`MAX_LIST_LIMIT`].
pub fn list_limit(given: Option<&str>) -> Result<u32, String> {
    let Some(text) = given else {
        return Ok(DEFAULT_LIST_LIMIT);
    };
    match text.trim().parse::<u32>() {
        Ok(n) if (1..=MAX_LIST_LIMIT).contains(&n) => Ok(n),
        _ => Err(format!("a whole number from 1 to {MAX_LIST_LIMIT}")),
    }
}

/// An order API submission taken apart: the order form and its files, decoded.
#[derive(Debug)]
pub struct Submission<'a> {
    /// The order form, as `order import` takes it.
    pub order: &'a Value,
    /// The files the form names, by name.
    pub files: BTreeMap<String, Vec<u8>>,
}

/// The field of the file `name` in a submission (`files["docs/licence.png"]`).
fn file_field(name: &str) -> String {
    format!("files[\"{}\"]", escape_for_display(name))
}

/// Takes a submission apart, with every problem of its shape: unknown keys, `files` not an
/// object of base64 strings, a file the form does not name (the parts it could take are still
/// given, so the form is validated too and every violation reported at once). Without an
/// `order` object there is nothing to validate: `Err` with every problem. The form itself is
/// the validator's (its violations are then located under `order`).
pub fn submission_parts(body: &Value) -> Result<(Submission<'_>, Vec<Violation>), Vec<Violation>> {
    let Value::Object(map) = body else {
        return Err(vec![Violation::error(
            "",
            "wrong_type",
            "must be an object: {\"order\": {...}, \"files\": {...}}",
        )]);
    };
    let mut out = Vec::new();
    for key in map
        .keys()
        .filter(|k| !["order", "files"].contains(&k.as_str()))
    {
        out.push(Violation::error(
            escape_for_display(key),
            "unknown_field",
            "not a field of a submission (order, files)",
        ));
    }
    let order = match map.get("order") {
        Some(o @ Value::Object(_)) => Some(o),
        None | Some(Value::Null) => {
            out.push(Violation::error("order", "required", "required"));
            None
        }
        Some(_) => {
            out.push(Violation::error("order", "wrong_type", "must be an object"));
            None
        }
    };
    let mut files = BTreeMap::new();
    match map.get("files") {
        None | Some(Value::Null) => {}
        Some(Value::Object(given)) => {
            let named = order.map(referenced_files).unwrap_or_default();
            for (name, content) in given {
                let Value::String(text) = content else {
                    out.push(Violation::error(
                        file_field(name),
                        "wrong_type",
                        "must be a string (the file's bytes in base64)",
                    ));
                    continue;
                };
                match base64::engine::general_purpose::STANDARD.decode(text.trim()) {
                    Ok(bytes) => {
                        if order.is_some() && !named.contains(name.as_str()) {
                            out.push(Violation::error(
                                file_field(name),
                                "file_unreferenced",
                                "the order names no document or seal picture by this name",
                            ));
                        }
                        files.insert(name.clone(), bytes);
                    }
                    Err(e) => out.push(Violation::error(
                        file_field(name),
                        "base64_invalid",
                        format!("not base64 (RFC 4648, with padding): {e}"),
                    )),
                }
            }
        }
        Some(_) => out.push(Violation::error("files", "wrong_type", "must be an object")),
    }
    match order {
        Some(order) => Ok((Submission { order, files }, out)),
        None => Err(out),
    }
}

/// The file names an order form gives (`documents[].file`, `seals[].picture`), as written.
fn referenced_files(order: &Value) -> BTreeSet<&str> {
    let names = |list: &str, key: &str| -> Vec<&str> {
        order[list]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x[key].as_str()).collect())
            .unwrap_or_default()
    };
    let mut all: BTreeSet<&str> = names("documents", "file").into_iter().collect();
    all.extend(names("seals", "picture"));
    all
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn scopes_parse_known_names_only_and_print_in_one_order() {
        let s = parse_scopes(" orders:read , orders:submit,orders:read").unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(scopes_text(&s), "orders:submit,orders:read");
        assert_eq!(parse_scopes(&scopes_text(&s)).unwrap(), s);
        let e = parse_scopes("orders:read,orders:delete").unwrap_err();
        assert!(
            e.contains("orders:delete") && e.contains("orders:submit"),
            "{e}"
        );
        assert!(parse_scopes(" , ").unwrap_err().contains("no scope"));
        assert!(parse_scopes("ORDERS:READ").is_err());
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.as_str()), Some(scope));
            let json = serde_json::to_value(scope).unwrap();
            assert_eq!(json, scope.as_str());
        }
    }

    #[test]
    fn every_state_is_reached_by_some_progress_action_and_internal_steps_are_not_listed() {
        let reached: BTreeSet<&str> = [
            "order.imported",
            "order.approved",
            "order.rejected",
            "provision.claimed",
            "order.provisioned",
            "provision.failed",
            "order.shipped",
            "delivery.confirmed",
            "order.revoked",
        ]
        .into_iter()
        .map(|a| progress_state(a).unwrap().as_str())
        .collect();
        assert_eq!(reached.len(), OrderState::ALL.len());
        for internal in [
            "provision.init_token.done",
            "delivery.sent",
            "notice.queued",
            "api.order_submitted",
            "certificate.serial_reserved",
        ] {
            assert_eq!(progress_state(internal), None, "{internal}");
        }
    }

    #[test]
    fn a_listing_limit_is_bounded() {
        assert_eq!(list_limit(None).unwrap(), DEFAULT_LIST_LIMIT);
        assert_eq!(list_limit(Some("7")).unwrap(), 7);
        assert_eq!(list_limit(Some("500")).unwrap(), MAX_LIST_LIMIT);
        for bad in ["0", "501", "-1", "ten", ""] {
            assert!(list_limit(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_submission_is_its_order_and_the_files_it_names_every_problem_at_once() {
        let body = serde_json::json!({
            "order": {
                "documents": [{"kind": "business_license", "file": "docs/a.png"}],
                "seals": [{"kind": "company", "picture": "seals/b.png"}]
            },
            "files": {"docs/a.png": "aGVsbG8=", "seals/b.png": ""}
        });
        let (parts, problems) = submission_parts(&body).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(parts.files["docs/a.png"], b"hello");
        assert!(parts.files["seals/b.png"].is_empty());
        assert!(parts.order["documents"].is_array());
        // A form without files is the validator's problem (its documents are missing).
        assert!(submission_parts(&serde_json::json!({"order": {}})).is_ok());

        let bad = serde_json::json!({
            "order": {"documents": [{"kind": "business_license", "file": "docs/a.png"}]},
            "files": {"docs/a.png": "not base64!", "other.png": "aGk=", "n": 3},
            "extra": 1
        });
        let (parts, problems) = submission_parts(&bad).unwrap();
        // What could be taken is given: the form, and the files that decode.
        assert_eq!(parts.files.keys().collect::<Vec<_>>(), ["other.png"]);
        let fields: Vec<(String, &str)> = problems.into_iter().map(|v| (v.field, v.code)).collect();
        assert_eq!(
            fields,
            [
                ("extra".to_string(), "unknown_field"),
                ("files[\"docs/a.png\"]".to_string(), "base64_invalid"),
                ("files[\"n\"]".to_string(), "wrong_type"),
                ("files[\"other.png\"]".to_string(), "file_unreferenced"),
            ]
        );
        let codes = |v: Value| -> Vec<(String, &'static str)> {
            submission_parts(&v)
                .unwrap_err()
                .into_iter()
                .map(|v| (v.field, v.code))
                .collect()
        };
        assert_eq!(
            codes(serde_json::json!([1])),
            [(String::new(), "wrong_type")]
        );
        assert_eq!(
            codes(serde_json::json!({"files": []})),
            [
                ("order".to_string(), "required"),
                ("files".to_string(), "wrong_type")
            ]
        );
        assert_eq!(
            codes(serde_json::json!({"order": "x"})),
            [("order".to_string(), "wrong_type")]
        );
        assert_eq!(
            codes(serde_json::json!({"order": null, "files": {"a": "!"}})),
            [
                ("order".to_string(), "required"),
                ("files[\"a\"]".to_string(), "base64_invalid")
            ]
        );
    }

    #[test]
    fn every_state_has_a_chinese_label() {
        let labels: BTreeSet<&str> = OrderState::ALL.iter().map(|s| s.label_zh()).collect();
        assert_eq!(labels.len(), OrderState::ALL.len());
        assert_eq!(OrderState::Submitted.label_zh(), "待审核");
    }
}
