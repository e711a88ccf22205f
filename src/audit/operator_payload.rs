//! Payloads of the operator accounts' audit events (issue 17): who was added or changed, with
//! which roles, by whom. No credential is ever named, not even its hash.

use super::payload::{AuditField, plain, sealed};

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
}

payload! {
    /// `console.login`: an operator logged in to the console (with their credential token).
    pub struct ConsoleLogin {
        /// The operator.
        pub operator: String,
        /// The client's address.
        pub remote: String,
    }
}

payload! {
    /// `console.login_failed`: a console login was refused. The token typed is never recorded.
    pub struct ConsoleLoginFailed {
        /// The client's address.
        pub remote: String,
        /// Why (`unknown_credential`, `malformed`, `disabled`, `rate_limited`).
        pub reason: String,
        /// The account the token belongs to, when it names a (disabled) one.
        pub operator: Option<String>,
    }
}
