//! Payloads of the operator accounts' audit events (issue 17): who was added or changed, with
//! which roles, by whom. No credential is ever named, not even its hash.

use super::payload::{AuditField, FourEyes, plain, sealed};

payload! {
    /// `operator.added`.
    pub struct OperatorAdded {
        /// The new operator.
        pub operator: String,
        /// Its roles (`reviewer,provisioner`).
        pub roles: String,
        /// Who added it (an administrator, or `station:<id>` for the first one at `init`).
        pub added_by: String,
    }
    four_eyes_or_bootstrap
}

payload! {
    /// `operator.changed`: roles set, or the account disabled or enabled.
    pub struct OperatorChanged {
        /// The operator changed.
        pub operator: String,
        /// Its roles before.
        pub roles_before: String,
        /// Its roles now.
        pub roles: String,
        /// Whether it was enabled before.
        pub enabled_before: bool,
        /// Whether it is enabled now.
        pub enabled: bool,
        /// The administrator who changed it.
        pub changed_by: String,
    }
    four_eyes_or_bootstrap
}

payload! {
    /// `console.login`: an operator logged in to the console (password and TOTP code).
    pub struct ConsoleLogin {
        /// The operator.
        pub operator: String,
        /// The client's address.
        pub remote: String,
    }
}

payload! {
    /// `console.login_failed`: a console login was refused. Neither the password nor the code
    /// typed is ever recorded.
    pub struct ConsoleLoginFailed {
        /// The client's address.
        pub remote: String,
        /// Why (`unknown_operator`, `disabled`, `not_enrolled`, `wrong_password`,
        /// `wrong_code`, `replayed_code`, `rate_limited`).
        pub reason: String,
        /// The operator name typed, when it names a registered account.
        pub operator: Option<String>,
    }
}

payload! {
    /// `api_token.added`: an administrator gave an operator an API token. The token itself
    /// (and its hash) is never recorded.
    pub struct ApiTokenAdded {
        /// The token's id.
        pub token_id: i64,
        /// The operator it acts as.
        pub operator: String,
        /// Its scopes (`orders:submit,orders:read`).
        pub scopes: String,
        /// The administrator who added it.
        pub added_by: String,
    }
    four_eyes_or_bootstrap
}

payload! {
    /// `api_token.revoked`: an administrator revoked an API token.
    pub struct ApiTokenRevoked {
        /// The token's id.
        pub token_id: i64,
        /// The operator it acted as.
        pub operator: String,
        /// The administrator who revoked it.
        pub revoked_by: String,
    }
    four_eyes_or_bootstrap
}

payload! {
    /// `api.order_submitted`: the order beside it (`order.imported`, same transaction) came
    /// through the order API, with this token.
    pub struct ApiOrderSubmitted {
        /// The token's id.
        pub token_id: i64,
        /// SHA-256 (hex) of the request body (canonical JSON), what a repeated submission is
        /// compared with.
        pub request_sha256: String,
    }
}

payload! {
    /// `operator.password_set` / `operator.totp_enrolled`: an operator's console password was set
    /// or their TOTP secret (re-)enrolled — by themselves or by an administrator. The secret
    /// never is part of it.
    pub struct OperatorSecretSet {
        /// The operator whose secret it is.
        pub operator: String,
        /// Who set it (the operator themselves, or an administrator).
        pub set_by: String,
    }
}

payload! {
    /// `station_request.requested`: a change that needs a second operator was asked for
    /// (operators, API tokens, the CA's OCSP signer).
    pub struct StationRequested {
        /// The request.
        pub request_id: String,
        /// Its kind (`operator_add`, ...).
        pub kind: String,
        /// What it asks, in one line (never a secret).
        pub summary: String,
        /// Who asked.
        pub requested_by: String,
    }
}

payload! {
    /// `station_request.approved` / `station_request.rejected`: a second operator's decision.
    pub struct StationRequestDecided {
        /// The request.
        pub request_id: String,
        /// Its kind.
        pub kind: String,
        /// Approved (else rejected); names the action, not in the details.
        #[serde(skip)]
        pub approved: bool,
        /// Who asked.
        pub requested_by: String,
        /// Who decided (never the requester).
        pub decided_by: String,
        /// The decider's note.
        pub note: Option<String>,
    }
}

payload! {
    /// `station_request.cancelled`: withdrawn before it was carried out.
    pub struct StationRequestCancelled {
        /// The request.
        pub request_id: String,
        /// Its kind.
        pub kind: String,
        /// Who asked.
        pub requested_by: String,
        /// Who withdrew it.
        pub cancelled_by: String,
        /// Why.
        pub note: Option<String>,
    }
}
