//! Every text the console renders, in one catalogue per language: [`ZH`] (zh-CN, the default)
//! and [`EN`] (issue 17, item 2: "zh-CN by default with an English switch"). Pure: no I/O, no
//! state; the web layer picks the [`Lang`] of a request ([`Lang::of_request`]) and hands its
//! [`Texts`] to the templates, which print `t.<key>` and never test the language themselves.
//!
//! A catalogue is a [`Texts`] value: a struct literal, so the compiler refuses one that lacks a
//! key; the unit tests check that no text is empty, that the English one is English, and that
//! the tables keyed by field path or document kind have the same keys in both languages. Texts
//! with a value in them carry `{}` placeholders, filled in order by [`Texts::f1`] and its
//! siblings (an English sentence is not a Chinese one with its words replaced).
//!
//! Customer data (company names, addresses, the order's fields) is never translated: it is
//! shown as the portal sent it, in both languages.

mod en;
mod zh;

#[cfg(test)]
mod tests;

use crate::domain::station_request::StationChange;
use crate::domain::{
    CertificatePurpose, CertificateStatus, DeliveryChannel, DeliveryState, OrderState, RequestKind,
};
use std::fmt::Display;

pub use en::EN;
pub use zh::ZH;

/// A language of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// Simplified Chinese (zh-CN): the default.
    #[default]
    ZhCn,
    /// English.
    En,
}

/// The cookie that keeps a browser's choice of language.
pub const COOKIE: &str = "ks_lang";

impl Lang {
    /// Both languages.
    pub const ALL: [Lang; 2] = [Lang::ZhCn, Lang::En];

    /// Its BCP 47 tag (the `<html lang>` attribute, the cookie's and the switch's value).
    pub fn tag(self) -> &'static str {
        self.texts().html_lang
    }

    /// The language of a tag: `zh-CN` (also `zh`, `zh-Hans`...) or `en` (also `en-GB`...), any
    /// case; `None` for any other.
    pub fn parse(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next().unwrap_or_default();
        if primary.eq_ignore_ascii_case("zh") {
            Some(Lang::ZhCn)
        } else if primary.eq_ignore_ascii_case("en") {
            Some(Lang::En)
        } else {
            None
        }
    }

    /// Its catalogue.
    pub fn texts(self) -> &'static Texts {
        match self {
            Lang::ZhCn => &ZH,
            Lang::En => &EN,
        }
    }

    /// The language an `Accept-Language` header prefers among the console's: the highest
    /// quality, the first listed on a tie; zh-CN when it names neither.
    pub fn from_accept_language(header: &str) -> Lang {
        let mut best: Option<(Lang, f32)> = None;
        for item in header.split(',') {
            let mut parts = item.split(';');
            let Some(lang) = parts.next().and_then(Lang::parse) else {
                continue;
            };
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if q > 0.0 && best.is_none_or(|(_, b)| q > b) {
                best = Some((lang, q));
            }
        }
        best.map_or(Lang::ZhCn, |(lang, _)| lang)
    }

    /// The language of a request: its `lang` cookie's (the switch's choice), else its
    /// `Accept-Language`'s, else zh-CN.
    pub fn of_request(cookies: Option<&str>, accept_language: Option<&str>) -> Lang {
        cookies
            .and_then(|c| cookie_value(c, COOKIE))
            .and_then(Lang::parse)
            .or_else(|| accept_language.map(Lang::from_accept_language))
            .unwrap_or_default()
    }
}

/// The value of cookie `name` in a `Cookie` header's value.
fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// The `Set-Cookie` value that keeps `lang` for a year: like the session's, `HttpOnly`,
/// `SameSite=Strict`, and `Secure` when the console is served over TLS.
pub fn set_cookie(lang: Lang, secure: bool) -> String {
    format!(
        "{COOKIE}={}; Path=/; Max-Age=31536000; HttpOnly; SameSite=Strict{}",
        lang.tag(),
        if secure { "; Secure" } else { "" }
    )
}

/// `pattern` with its `{}` placeholders replaced by `args`, in order.
fn fill(pattern: &str, args: &[&dyn Display]) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut rest = pattern;
    let mut args = args.iter();
    while let Some(at) = rest.find("{}") {
        out.push_str(&rest[..at]);
        if let Some(a) = args.next() {
            out.push_str(&a.to_string());
        }
        rest = &rest[at + 2..];
    }
    out.push_str(rest);
    out
}

macro_rules! texts {
    ($($(#[$doc:meta])* $key:ident),* $(,)?) => {
        /// The console's texts in one language: [`ZH`] or [`EN`]. Besides the keys below, the
        /// labels of the application's fields, coded values and documents, by path or kind.
        #[derive(Debug)]
        pub struct Texts {
            $(
                $(#[$doc])*
                #[doc = concat!("Text `", stringify!($key), "`.")]
                pub $key: &'static str,
            )*
            /// The application's fields, by their path in the order.
            pub field_labels: &'static [(&'static str, &'static str)],
            /// The form's coded values, by field path and value.
            pub value_labels: &'static [(&'static str, &'static str, &'static str)],
            /// The documents and seal pictures, by kind.
            pub document_labels: &'static [(&'static str, &'static str)],
        }

        impl Texts {
            /// Every text key with its text (the tables aside).
            pub fn entries(&self) -> Vec<(&'static str, &'static str)> {
                vec![$((stringify!($key), self.$key)),*]
            }
        }
    };
}

texts! {
    // The frame of every page.
    html_lang, switch_to, switch_label, title_suffix, brand, nav_queue, nav_provision,
    nav_requests, nav_certificates, nav_deliveries, nav_audit, nav_check, logout,
    // Patterns shared by several pages.
    with_code, in_parens,
    // Login.
    login_title, login_heading, login_operator, login_password, login_code, login_submit,
    login_hint_set_by, login_hint_enrolled_by, login_hint_kept, login_throttled, login_refused,
    // Error pages.
    err_forbidden, err_not_found, err_too_many, err_internal, err_refused, err_csrf, err_failure,
    err_back, lang_unknown,
    // The queue.
    filter_state, filter_all, filter_search, filter_placeholder, filter_submit, count_orders,
    col_order_no, col_state, col_company, col_uscc, col_auth_method, col_submitted,
    state_submitted, state_approved, state_rejected, state_provisioning, state_provisioned,
    state_shipped, state_pin_delivered, state_failed, state_revoked,
    // The review page.
    review_title, review_heading, review_form, review_checks, review_no_warnings,
    review_other_keys, review_decide, review_note, approve, reject_reason, reject,
    review_pending_revokes, review_pending_line, approve_revoke, reject_revoke_note,
    reject_request, revoke_heading, revoke_reason, revoke_key_compromise,
    revoke_affiliation_changed, revoke_cessation, revoke_detail, revoke_submit, history,
    documents, document_caption, warning_line, uscc_override, other_key_line, key_main,
    key_secondary, reviewed_by, reason_suffix, no_document, reject_needs_reason,
    // Requests.
    requests_heading, requests_hint, count_requests, col_request_id, col_kind,
    col_requested_by, col_requested_at, col_reason, col_detail, col_decision,
    reject_note_placeholder, no_requests, kind_pin_reset, kind_retire, kind_unlock, kind_revoke,
    kind_revoke_certificate, kind_reissue, station_requests_heading, station_requests_hint,
    col_summary, col_command, no_station_requests, change_operator_add, change_operator_disable,
    change_operator_enable, change_operator_roles, change_api_token_add, change_api_token_revoke,
    change_ocsp_signer, change_reinit,
    // Deliveries.
    count_deliveries, col_delivery_id, col_channel, col_destination, col_attempts,
    col_last_error, col_actions, retry, cancel, cancel_placeholder, cancel_needs_reason,
    delivery_queued, delivery_sending, delivery_sent, delivery_confirmed, delivery_failed,
    delivery_needs_operator, delivery_cancelled, channel_sms, channel_bank_transfer,
    // Certificates.
    crl_heading, crl_number, crl_this_update, crl_next_update, crl_path, crl_none,
    certs_heading, count_certificates, col_serial, col_purpose, col_token_serial,
    col_not_before, col_not_after, col_fingerprint, cert_reserved, cert_issued, cert_on_token,
    cert_revoked, purpose_signing, purpose_encryption,
    // Audit.
    audit_ok, audit_bad, audit_newer, audit_older, audit_page_of, col_seq, col_time, col_actor,
    col_action, col_details,
    // Check.
    check_heading, check_ok, check_bad, col_level, col_rule, col_message, check_violation,
    check_note, check_no_findings,
    // Provisioning.
    desk_tokens, count_tokens, col_label, col_model, col_role, usb_heading,
    usb_none, usb_unavailable, unavailable, waiting_heading, no_waiting, batch_heading,
    batch_running, workers, start_batch, batch_hint, batch_none, col_step, col_steps_done,
    col_result, role_ca, role_vault, role_blank, role_order, role_foreign, workers_invalid,
    batch_conflict, stop_batch, stop_hint,
    // Provisioning, the live progress (read by provision.js from the page).
    step_claim, step_init_token, step_init_pin, step_generate_key, step_issue_certificate,
    step_dual_certificate, step_write_certificate, step_write_seals, step_finish, phase_started,
    phase_done, phase_skipped, phase_failed, job_running, job_done, job_failed, job_skipped,
    job_detail, batch_begun, batch_not_run, batch_ended, batch_stopping, batch_stopped,
}

impl Texts {
    /// `pattern` with its one `{}` filled.
    pub fn f1(&self, pattern: &str, a: impl Display) -> String {
        fill(pattern, &[&a])
    }

    /// `pattern` with its two `{}` filled, in order.
    pub fn f2(&self, pattern: &str, a: impl Display, b: impl Display) -> String {
        fill(pattern, &[&a, &b])
    }

    /// `pattern` with its three `{}` filled, in order.
    pub fn f3(&self, pattern: &str, a: impl Display, b: impl Display, c: impl Display) -> String {
        fill(pattern, &[&a, &b, &c])
    }

    /// `pattern` with its four `{}` filled, in order.
    pub fn f4(
        &self,
        pattern: &str,
        a: impl Display,
        b: impl Display,
        c: impl Display,
        d: impl Display,
    ) -> String {
        fill(pattern, &[&a, &b, &c, &d])
    }

    /// A name with its code beside it (`已批准（approved）`, `approved (approved)`).
    pub fn with_code(&self, name: &str, code: &str) -> String {
        self.f2(self.with_code, name, code)
    }

    /// An order state's name.
    pub fn order_state(&self, s: OrderState) -> &'static str {
        match s {
            OrderState::Submitted => self.state_submitted,
            OrderState::Approved => self.state_approved,
            OrderState::Rejected => self.state_rejected,
            OrderState::Provisioning => self.state_provisioning,
            OrderState::Provisioned => self.state_provisioned,
            OrderState::Shipped => self.state_shipped,
            OrderState::PinDelivered => self.state_pin_delivered,
            OrderState::Failed => self.state_failed,
            OrderState::Revoked => self.state_revoked,
        }
    }

    /// A delivery state's name.
    pub fn delivery_state(&self, s: DeliveryState) -> &'static str {
        match s {
            DeliveryState::Queued => self.delivery_queued,
            DeliveryState::Sending => self.delivery_sending,
            DeliveryState::Sent => self.delivery_sent,
            DeliveryState::Confirmed => self.delivery_confirmed,
            DeliveryState::Failed => self.delivery_failed,
            DeliveryState::NeedsOperator => self.delivery_needs_operator,
            DeliveryState::Cancelled => self.delivery_cancelled,
        }
    }

    /// A delivery channel's name.
    pub fn channel(&self, c: DeliveryChannel) -> &'static str {
        match c {
            DeliveryChannel::Sms => self.channel_sms,
            DeliveryChannel::BankTransfer => self.channel_bank_transfer,
        }
    }

    /// A certificate state's name.
    pub fn certificate_status(&self, s: CertificateStatus) -> &'static str {
        match s {
            CertificateStatus::Reserved => self.cert_reserved,
            CertificateStatus::Issued => self.cert_issued,
            CertificateStatus::OnToken => self.cert_on_token,
            CertificateStatus::Revoked => self.cert_revoked,
        }
    }

    /// A certificate purpose's name.
    pub fn purpose(&self, p: CertificatePurpose) -> &'static str {
        match p {
            CertificatePurpose::Signing => self.purpose_signing,
            CertificatePurpose::Encryption => self.purpose_encryption,
        }
    }

    /// A service-desk request kind's name.
    pub fn request_kind(&self, k: RequestKind) -> &'static str {
        match k {
            RequestKind::PinReset => self.kind_pin_reset,
            RequestKind::Retire => self.kind_retire,
            RequestKind::Unlock => self.kind_unlock,
            RequestKind::Revoke => self.kind_revoke,
            RequestKind::RevokeCertificate => self.kind_revoke_certificate,
            RequestKind::Reissue => self.kind_reissue,
        }
    }

    /// A station request's kind (operators, API tokens, the CA, a reinit).
    pub fn station_change(&self, change: &StationChange) -> &'static str {
        match change {
            StationChange::OperatorAdd { .. } => self.change_operator_add,
            StationChange::OperatorDisable { .. } => self.change_operator_disable,
            StationChange::OperatorEnable { .. } => self.change_operator_enable,
            StationChange::OperatorRoles { .. } => self.change_operator_roles,
            StationChange::ApiTokenAdd { .. } => self.change_api_token_add,
            StationChange::ApiTokenRevoke { .. } => self.change_api_token_revoke,
            StationChange::OcspSigner => self.change_ocsp_signer,
            StationChange::Reinit { .. } => self.change_reinit,
        }
    }

    /// A token's role for this station (`inventory` names them in English: `station CA`,
    /// `station vault`, `blank`, `order NO`, anything else is another station's).
    pub fn token_role(&self, role: &str) -> String {
        match role {
            "station CA" => self.role_ca.to_string(),
            "station vault" => self.role_vault.to_string(),
            "blank" => self.role_blank.to_string(),
            r => match r.strip_prefix("order ") {
                Some(no) => self.f1(self.role_order, no),
                None => self.role_foreign.to_string(),
            },
        }
    }

    /// The label of the application's field at `path`; the path itself when it has none.
    pub fn field_label<'a>(&self, path: &'a str) -> &'a str {
        self.field_labels
            .iter()
            .find(|(p, _)| *p == path)
            .map_or(path, |(_, l)| *l)
    }

    /// Where the field at `path` comes on the application form (unknown ones last).
    pub fn field_rank(&self, path: &str) -> usize {
        self.field_labels
            .iter()
            .position(|(p, _)| *p == path)
            .unwrap_or(usize::MAX)
    }

    /// A coded value as the reviewer reads it: its name and the code, or the value as it is
    /// (the reviewer sees what the portal sent).
    pub fn value_label(&self, path: &str, value: &str) -> String {
        self.value_labels
            .iter()
            .find(|(p, v, _)| *p == path && *v == value)
            .map_or_else(|| value.to_string(), |(_, v, l)| self.with_code(l, v))
    }

    /// The name of a document or seal picture of kind `kind`; the kind itself when unknown.
    pub fn document_label<'a>(&self, kind: &'a str) -> &'a str {
        self.document_labels
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(kind, |(_, l)| *l)
    }
}
