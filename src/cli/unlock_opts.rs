//! `keystation unlock ...` options (the handlers are in `unlock.rs`).

use super::opts::DecideCmd;
use clap::Subcommand;

/// `keystation unlock ...`
#[derive(Debug, Subcommand)]
pub enum UnlockCmd {
    /// Ask for a remote unlock of a delivered key with the request code the customer's
    /// `keystation-unlock request` printed (the key stays with the customer).
    Request {
        /// Order number.
        order_no: String,
        /// The request code, `KSUR1-...`.
        #[arg(long)]
        code: String,
        /// Why (the customer's account, e.g. "PIN locked after wrong tries").
        #[arg(long)]
        reason: String,
        /// What the desk checked (identity of the caller, documents seen).
        #[arg(long)]
        evidence: String,
        /// Operator making the request.
        #[arg(long, value_name = "NAME")]
        operator: String,
    },
    /// approve, reject, cancel: a second operator's word on the request.
    /// approve, reject, cancel: a second operator's word on the request.
    #[command(flatten)]
    Decide(DecideCmd),
    /// Carry out an approved request: e-mail the unlock authorisation code to the handler,
    /// exactly once (resumes a stopped run).
    Run {
        /// Request id.
        id: String,
        /// Operator running it.
        #[arg(long, value_name = "NAME")]
        operator: String,
        /// Send a fresh code although an earlier send may have reached the mail server (ask
        /// the handler first).
        #[arg(long)]
        resend: bool,
        /// How many hours the code stays valid (1-168).
        #[arg(long, default_value_t = 48)]
        valid_hours: u32,
    },
    /// Record that the customer's tool reported success: the key's rotated SO PIN becomes
    /// the one the station derives.
    Confirm {
        /// Request id.
        id: String,
        /// Operator recording it.
        #[arg(long, value_name = "NAME")]
        operator: String,
        /// A note.
        #[arg(long)]
        note: Option<String>,
    },
    /// List unlock requests.
    List {
        /// Only this order's.
        #[arg(long, value_name = "ORDER_NO")]
        order: Option<String>,
        /// Only in this state.
        #[arg(long)]
        state: Option<String>,
    },
    /// Show one request with its journal and the sending of its code.
    Show {
        /// Request id.
        id: String,
    },
}
