//! `keystation operator ...` and `keystation api-token ...` options (the handlers are in
//! `operators.rs` and `api_tokens.rs`), and the decisions on their four-eyes requests (shared
//! with `keystation ca ...`; handled in `station_requests.rs`).

use super::request_opts::ApproveArgs;
use clap::Subcommand;
use std::path::PathBuf;

/// Deciding a four-eyes request of operators, API tokens or the CA, and listing them
/// (flattened into `operator`, `api-token` and `ca`, beside each one's `approve`).
#[derive(Debug, Subcommand)]
pub enum ChangeRequestCmd {
    /// Reject a request: a second operator, never the one who made it, with the reason.
    /// Nothing is changed.
    Reject {
        /// Request id (as the asking command printed it).
        id: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Withdraw a request that has not been carried out.
    Cancel {
        /// Request id.
        id: String,
        /// Why.
        #[arg(long)]
        note: Option<String>,
    },
    /// List the requests of this command (every state, oldest first).
    Requests {
        /// Only in this state (requested, approved, rejected, cancelled, done).
        #[arg(long)]
        state: Option<String>,
    },
}

/// `keystation api-token ...`
#[derive(Debug, Subcommand)]
pub enum ApiTokenCmd {
    /// Give a registered operator an API token with scopes; requests made with it are audited
    /// as that operator. With two or more enabled administrators this records a request that a
    /// second administrator approves (`api-token approve ID --out FILE`); the station's only
    /// administrator's takes effect at once (bootstrap), written (once, mode 0600) to FILE.
    Add {
        /// The registered operator the token acts as.
        #[arg(long, value_name = "NAME")]
        operator: String,
        /// Comma-separated scopes: orders:submit, orders:read.
        #[arg(long, value_name = "SCOPES")]
        scope: String,
        /// Where to write the new token (must not exist): only when it takes effect at once
        /// (bootstrap); otherwise the approver names the file.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Approve someone else's request (as a second administrator) and carry it out now: a new
    /// token is written (once, mode 0600) to FILE, to hand to the client.
    Approve {
        /// Request id.
        id: String,
        /// Where to write the new token of an `add` request (must not exist).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// A note recorded with the approval.
        #[arg(long)]
        note: Option<String>,
    },
    /// reject, cancel, requests: the other words on its requests.
    #[command(flatten)]
    Decide(ChangeRequestCmd),
    /// List API tokens (never the tokens themselves).
    List,
    /// Revoke an API token: it authenticates nobody from now on (four-eyes like `add`).
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
    /// Add an operator. With two or more enabled administrators this records a request that a
    /// second administrator approves (`operator approve ID --credential-out FILE`, who hands
    /// FILE over); the station's only administrator's takes effect at once (bootstrap), the
    /// credential written (once, mode 0600) to FILE. Disable, enable and role likewise.
    Add {
        /// The operator's name (as audit records will give it).
        name: String,
        /// Comma-separated roles: reviewer, provisioner, security_officer, auditor,
        /// administrator.
        #[arg(long, value_name = "ROLES")]
        role: String,
        /// Where to write the new credential (must not exist): only when it takes effect at
        /// once (bootstrap); otherwise the approver names the file.
        #[arg(long, value_name = "FILE")]
        credential_out: Option<PathBuf>,
    },
    /// Approve someone else's request (as a second administrator) and carry it out now; an
    /// `add` writes the new credential (once, mode 0600) to FILE, to hand to the operator.
    Approve {
        /// Request id.
        id: String,
        /// Where to write the new credential of an `add` request (must not exist).
        #[arg(long, value_name = "FILE")]
        credential_out: Option<PathBuf>,
        /// A note recorded with the approval.
        #[arg(long)]
        note: Option<String>,
    },
    /// reject, cancel, requests: the other words on its requests.
    #[command(flatten)]
    Decide(ChangeRequestCmd),
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

/// `keystation reinit ...`
#[derive(Debug, Subcommand)]
pub enum ReinitCmd {
    /// Ask for the order's token to be started over (`provision ORDER --reinit`): prints the
    /// request's id for a second operator to approve.
    Request {
        /// The order.
        order_no: String,
    },
    /// Approve someone else's reinit request; `provision ORDER --reinit` then carries it out
    /// (once).
    Approve(ApproveArgs),
    /// reject, cancel, requests: the other words on its requests.
    #[command(flatten)]
    Decide(ChangeRequestCmd),
}
