//! `keystation operator ...` and `keystation api-token ...` options (the handlers are in
//! `operators.rs` and `api_tokens.rs`).

use clap::Subcommand;
use std::path::PathBuf;

/// `keystation api-token ...`
#[derive(Debug, Subcommand)]
pub enum ApiTokenCmd {
    /// Give a registered operator an API token with scopes, written (once, mode 0600) to FILE;
    /// requests made with it are audited as that operator.
    Add {
        /// The registered operator the token acts as.
        #[arg(long, value_name = "NAME")]
        operator: String,
        /// Comma-separated scopes: orders:submit, orders:read.
        #[arg(long, value_name = "SCOPES")]
        scope: String,
        /// Where to write the new token (must not exist).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// List API tokens (never the tokens themselves).
    List,
    /// Revoke an API token: it authenticates nobody from now on.
    Revoke {
        /// The token's id (`api-token list`).
        id: i64,
    },
    /// Write a new HMAC key for `[api.webhook] secret_file` to FILE (mode 0600, never
    /// overwritten); give the portal a copy to check the signatures.
    WebhookSecret {
        /// Where to write the key (must not exist).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Push the due webhook events once (what `serve` does every five seconds).
    WebhookSend,
    /// List the webhook events (one per order state change) and where each is.
    WebhookEvents {
        /// Only this order's.
        #[arg(long, value_name = "ORDER_NO")]
        order: Option<String>,
    },
    /// Queue a failed webhook event again (the receiver de-duplicates on its id).
    WebhookRequeue {
        /// The event's id (`api-token webhook-events`).
        id: String,
    },
}

/// `keystation operator ...`
#[derive(Debug, Subcommand)]
pub enum OperatorCmd {
    /// Add an operator and write its credential (once, mode 0600) to FILE; give FILE to them.
    Add {
        /// The operator's name (as audit records will give it).
        name: String,
        /// Comma-separated roles: reviewer, provisioner, security_officer, auditor,
        /// administrator.
        #[arg(long, value_name = "ROLES")]
        role: String,
        /// Where to write the new credential (must not exist).
        #[arg(long, value_name = "FILE")]
        credential_out: PathBuf,
    },
    /// List operators with their roles.
    List,
    /// Disable an operator: it can no longer act.
    Disable {
        /// The operator.
        name: String,
    },
    /// Enable a disabled operator again.
    Enable {
        /// The operator.
        name: String,
    },
    /// Set an operator's roles (replacing the ones it had).
    Role {
        /// The operator.
        name: String,
        /// Comma-separated roles.
        #[arg(long, value_name = "ROLES")]
        set: String,
    },
    /// Set an operator's console password (your own, or anyone's as an administrator): asked
    /// twice without echo, or the first line of standard input when it is not a terminal.
    Password {
        /// The operator.
        name: String,
    },
    /// Enrol an operator's TOTP for console logins (your own, or anyone's as an
    /// administrator): prints the secret and its otpauth:// URI once, for an authenticator
    /// app; replaces any earlier secret.
    Totp {
        /// The operator.
        name: String,
    },
}
