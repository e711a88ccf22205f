//! The section validators of an order application: one small function per part of the form
//! (order number, authentication method, company, legal representative, product, invoice,
//! handler, mailing address, bank account) and the checks across parts (USCC, taxpayer id),
//! each returning the part when it is valid and every violation found in it.
//!
//! Each reads the application's top-level object through the `reader`, which locates every
//! violation under the part's name (`company.uscc`, `handler.email`, ...).

use super::reader::{Checked, Norm, Reader, section};
use super::{MAX_DN_NAME, MAX_ORDER_NO_LEN, OFFERED_YEARS, ValidationContext, Violation};
use crate::domain::OrderNo;
use crate::domain::ids::{self, TaxpayerIdError, UsccError};
use crate::domain::order::*;
use serde_json::{Map, Value};

/// X.509 upper bound for ST and L.
const MAX_DN_PLACE: usize = 128;
/// Longest free text (invoice title, address, bank names).
const MAX_TEXT: usize = 256;

/// The top-level keys of an application, in form order; any other key is refused.
pub const SECTIONS: &[&str] = &[
    "order_no",
    "auth_method",
    "company",
    "legal_rep",
    "product",
    "invoice",
    "handler",
    "shipping",
    "corporate_account",
    "documents",
    "seals",
];

type Root = Map<String, Value>;

/// `order_no`: it becomes the USB key's label, hence the length and the character set.
pub(super) fn order_no(root: &Root) -> Checked<Option<OrderNo>> {
    section(root, |r| {
        let order_no = r.string("order_no", Norm::OrderNo)?;
        let parsed = OrderNo::parse(&order_no).ok();
        if parsed.is_none() {
            r.violation(
                "order_no",
                "order_no_invalid",
                format!(
                    "order number must be 1-{MAX_ORDER_NO_LEN} characters of A-Z, 0-9, '-' and '_' \
                     (it becomes the USB key's label)"
                ),
            );
        }
        parsed
    })
}

/// `auth_method`: how the PIN reaches the company.
pub(super) fn auth_method(root: &Root) -> Checked<Option<AuthMethod>> {
    section(root, |r| {
        r.enumeration(
            "auth_method",
            &[
                "legal_rep_phone",
                "legal_rep_bank_card",
                "corporate_transfer",
            ],
        )
    })
}

/// `company`: name, USCC (its form here; its check character in [`uscc`]), department, phone.
pub(super) fn company(root: &Root) -> Checked<Option<Company>> {
    section(root, |r| {
        r.object("company", |c| {
            let name = c.name("name", MAX_DN_NAME);
            let uscc = c.string("uscc", Norm::Code);
            let department = c.opt_name("department", MAX_DN_NAME);
            let phone = c.opt_string("phone", Norm::Phone);
            c.finish(&["name", "uscc", "department", "phone"]);
            Some(Company {
                name: name?,
                uscc: uscc?,
                department,
                phone,
            })
        })
        .flatten()
    })
}

/// `legal_rep`: the legal representative (name, mobile, resident ID).
pub(super) fn legal_rep(root: &Root, ctx: &ValidationContext) -> Checked<Option<LegalRep>> {
    section(root, |r| {
        r.object("legal_rep", |p| {
            let person = person(p, ctx);
            p.finish(&["name", "mobile", "id_type", "id_number"]);
            let (name, mobile, id_type, id_number) = person?;
            Some(LegalRep {
                name,
                mobile,
                id_type,
                id_number,
            })
        })
        .flatten()
    })
}

/// `product`: key role, years on offer, and a seal service a secondary key cannot have.
pub(super) fn product(root: &Root) -> Checked<Option<Product>> {
    section(root, |r| {
        r.object("product", |p| {
            let key_role = p.enumeration::<KeyRole>("key_role", &["main", "secondary"]);
            let years = p.integer("years").and_then(|y| {
                match u8::try_from(y).ok().filter(|y| OFFERED_YEARS.contains(y)) {
                    Some(y) => Some(y),
                    None => {
                        p.violation(
                            "years",
                            "years_unsupported",
                            format!(
                                "the CA issues unit certificates for {} to {} years, not {y}",
                                OFFERED_YEARS.start(),
                                OFFERED_YEARS.end()
                            ),
                        );
                        None
                    }
                }
            });
            let seal_service = p.enumeration::<SealService>(
                "seal_service",
                &["company_and_legal_rep", "company", "none"],
            );
            if key_role == Some(KeyRole::Secondary)
                && seal_service.is_some_and(|s| s != SealService::None)
            {
                p.violation(
                    "seal_service",
                    "seal_service_secondary",
                    "a secondary key carries no seals: seal_service must be \"none\"",
                );
            }
            let main_order_no = main_order_no(p, key_role);
            p.finish(&["key_role", "years", "seal_service", "main_order_no"]);
            Some(Product {
                key_role: key_role?,
                years: years?,
                seal_service: seal_service?,
                main_order_no: main_order_no?,
            })
        })
        .flatten()
    })
}

/// `product.main_order_no`: the company's main-key order a secondary key is added to — required
/// for a secondary key, refused on a main key. `Some(None)` is a valid absence; `None` a
/// violation (or an unknown key role, already reported).
fn main_order_no(p: &mut Reader<'_, '_>, key_role: Option<KeyRole>) -> Option<Option<OrderNo>> {
    let no = p.opt_string("main_order_no", Norm::OrderNo);
    match (key_role?, no) {
        (KeyRole::Main, None) => Some(None),
        (KeyRole::Main, Some(_)) => {
            p.violation(
                "main_order_no",
                "main_order_on_main_key",
                "only a secondary key names a main-key order; a main key has none",
            );
            None
        }
        (KeyRole::Secondary, None) => {
            // `opt_string` already reported a value of the wrong type; a missing one is ours.
            let missing = match p.map.get("main_order_no") {
                None | Some(Value::Null) => true,
                Some(Value::String(s)) => Norm::OrderNo.apply(s).is_empty(),
                Some(_) => false,
            };
            if missing {
                p.violation(
                    "main_order_no",
                    "main_order_required",
                    "a secondary key (副锁) names its company's main-key order (主锁订单号)",
                );
            }
            None
        }
        (KeyRole::Secondary, Some(no)) => match OrderNo::parse(&no) {
            Ok(no) => Some(Some(no)),
            Err(_) => {
                p.violation(
                    "main_order_no",
                    "order_no_invalid",
                    format!(
                        "order number must be 1-{MAX_ORDER_NO_LEN} characters of A-Z, 0-9, '-' and '_'"
                    ),
                );
                None
            }
        },
    }
}

/// A secondary key cannot name itself as its main key.
pub(super) fn main_order_is_another(
    order_no: Option<&OrderNo>,
    product: Option<&Product>,
) -> Option<Violation> {
    let main = product?.main_order_no.as_ref()?;
    (order_no? == main).then(|| {
        Violation::error(
            "product.main_order_no",
            "main_order_self",
            "a secondary key names its company's main-key order, not its own order number",
        )
    })
}

/// `invoice`: title, taxpayer id (15, 18 or 20 characters), address and bank lines.
pub(super) fn invoice(root: &Root) -> Checked<Option<Invoice>> {
    section(root, |r| {
        r.object("invoice", |i| {
            let title = i.name("title", MAX_TEXT);
            let taxpayer_id = i.string("taxpayer_id", Norm::Code).and_then(|t| {
                match ids::check_taxpayer_id(&t) {
                    Ok(()) => Some(t),
                    Err(TaxpayerIdError::Length(n)) => {
                        i.violation(
                            "taxpayer_id",
                            "taxpayer_id_length",
                            format!("a taxpayer id has 15, 18 or 20 characters, not {n}"),
                        );
                        None
                    }
                    Err(TaxpayerIdError::Charset(pos)) => {
                        i.violation(
                            "taxpayer_id",
                            "taxpayer_id_charset",
                            format!("character {pos} is not a digit or upper-case letter"),
                        );
                        None
                    }
                }
            });
            let address_phone = i.opt_text("address_phone", MAX_TEXT);
            let bank_account = i.opt_text("bank_account", MAX_TEXT);
            i.finish(&["title", "taxpayer_id", "address_phone", "bank_account"]);
            Some(Invoice {
                title: title?,
                taxpayer_id: taxpayer_id?,
                address_phone,
                bank_account,
            })
        })
        .flatten()
    })
}

/// `handler`: the person who handles the order (name, mobile, resident ID, e-mail).
pub(super) fn handler(root: &Root, ctx: &ValidationContext) -> Checked<Option<Handler>> {
    section(root, |r| {
        r.object("handler", |h| {
            let person = person(h, ctx);
            let email = h.string("email", Norm::Email).and_then(|e| {
                if ids::is_plausible_email(&e) {
                    Some(e)
                } else {
                    h.violation(
                        "email",
                        "email_invalid",
                        "not a deliverable e-mail address (it receives the e-invoice and unlock codes)",
                    );
                    None
                }
            });
            h.finish(&["name", "mobile", "id_type", "id_number", "email"]);
            let (name, mobile, id_type, id_number) = person?;
            Some(Handler {
                name,
                mobile,
                id_type,
                id_number,
                email: email?,
            })
        })
        .flatten()
    })
}

/// The identity fields a legal representative and a handler share: name, mobile, ID type and
/// resident ID number, each checked (all four, so every violation is reported) in that order.
fn person(
    p: &mut Reader<'_, '_>,
    ctx: &ValidationContext,
) -> Option<(String, String, IdType, String)> {
    let name = p.name("name", MAX_DN_NAME);
    let mobile = p.mobile("mobile");
    let id_type = p.enumeration::<IdType>("id_type", &["resident_id"]);
    let id_number = p.resident_id("id_number", ctx.today);
    Some((name?, mobile?, id_type?, id_number?))
}

/// `shipping`: where the USB key is mailed (province and city also go into the certificate).
pub(super) fn mailing(root: &Root) -> Checked<Option<Shipping>> {
    section(root, |r| {
        r.object("shipping", |s| {
            let province = s.name("province", MAX_DN_PLACE);
            let city = s.name("city", MAX_DN_PLACE);
            let address = s.text("address", MAX_TEXT);
            s.finish(&["province", "city", "address"]);
            Some(Shipping {
                province: province?,
                city: city?,
                address: address?,
            })
        })
        .flatten()
    })
}

/// `corporate_account`: the bank account the PIN transfer goes to, given exactly when the
/// authentication method is the corporate transfer.
pub(super) fn bank_account(
    root: &Root,
    auth_method: Option<AuthMethod>,
) -> Checked<Option<CorporateAccount>> {
    section(root, |r| {
        match (auth_method, r.map.get("corporate_account")) {
            (Some(AuthMethod::CorporateTransfer), None | Some(Value::Null)) => {
                r.violation(
                "corporate_account",
                "required",
                "required when auth_method is corporate_transfer: the PIN travels in the memo of a \
                 transfer to this account",
            );
                None
            }
            (Some(AuthMethod::CorporateTransfer), Some(_)) => r
                .object("corporate_account", |a| {
                    let account_name = a.name("account_name", MAX_TEXT);
                    let account_number = a.string("account_number", Norm::Digits).and_then(|n| {
                        if ids::is_valid_account_number(&n) {
                            Some(n)
                        } else {
                            a.violation(
                                "account_number",
                                "account_number_invalid",
                                "an account number has 8 to 32 digits",
                            );
                            None
                        }
                    });
                    let bank_name = a.name("bank_name", MAX_TEXT);
                    let branch = a.opt_name("branch", MAX_TEXT);
                    a.finish(&["account_name", "account_number", "bank_name", "branch"]);
                    Some(CorporateAccount {
                        account_name: account_name?,
                        account_number: account_number?,
                        bank_name: bank_name?,
                        branch,
                    })
                })
                .flatten(),
            (_, None | Some(Value::Null)) => None,
            (_, Some(_)) => {
                r.violation(
                    "corporate_account",
                    "not_allowed",
                    "only orders with auth_method corporate_transfer give a corporate account",
                );
                None
            }
        }
    })
}

/// Refuses top-level keys that are not [`SECTIONS`]: a typo must not silently drop data.
pub(super) fn known_sections(root: &Root) -> Vec<Violation> {
    section(root, |r| r.finish(SECTIONS)).violations
}

/// The USCC's check character (GB 32100), checked once the company parsed so that an operator
/// override can turn only a checksum failure into a warning. The value is the override's
/// reason when one was used.
pub(super) fn uscc(company: Option<&Company>, ctx: &ValidationContext) -> Checked<Option<String>> {
    let mut violations = Vec::new();
    let mut override_reason = None;
    if let Some(Company { uscc, .. }) = company {
        match ids::check_uscc(uscc) {
            Ok(()) => {}
            Err(UsccError::Checksum { expected }) => match &ctx.uscc_checksum_override {
                Some(reason) if !reason.trim().is_empty() => {
                    violations.push(Violation::warning(
                        "company.uscc",
                        "uscc_checksum_overridden",
                        format!(
                            "check character should be '{expected}'; accepted by operator override: {}",
                            reason.trim()
                        ),
                    ));
                    override_reason = Some(reason.trim().to_string());
                }
                _ => violations.push(Violation::error(
                    "company.uscc",
                    "uscc_checksum",
                    format!(
                        "check character should be '{expected}' (GB 32100); an operator may accept \
                         a legal early code only with a recorded reason"
                    ),
                )),
            },
            Err(UsccError::Length(n)) => violations.push(Violation::error(
                "company.uscc",
                "uscc_length",
                format!("a unified social credit code has 18 characters, not {n}"),
            )),
            Err(UsccError::Charset(pos)) => violations.push(Violation::error(
                "company.uscc",
                "uscc_charset",
                format!("character {pos} is not allowed (0-9 and A-Y without I, O, S, V, Z)"),
            )),
            Err(UsccError::Region(pos)) => violations.push(Violation::error(
                "company.uscc",
                "uscc_region",
                format!("character {pos} must be a digit (positions 3-8 are the region code)"),
            )),
        }
    }
    Checked {
        value: override_reason,
        violations,
    }
}

/// An 18-character taxpayer id normally is the company's USCC: a warning when it is not.
pub(super) fn taxpayer_id_matches_uscc(
    company: Option<&Company>,
    invoice: Option<&Invoice>,
) -> Vec<Violation> {
    match (company, invoice) {
        (Some(company), Some(inv))
            if inv.taxpayer_id.len() == 18 && inv.taxpayer_id != company.uscc =>
        {
            vec![Violation::warning(
                "invoice.taxpayer_id",
                "taxpayer_id_mismatch",
                "an 18-character taxpayer id of a company normally equals its USCC",
            )]
        }
        _ => Vec::new(),
    }
}
