//! `keystation unlock ...` options (the handlers are in `unlock.rs`).

use super::opts::{DecideCmd, DeskRequestArgs, RequestListArgs, RunArgs};
use clap::Subcommand;

/// `keystation unlock ...`
#[derive(Debug, Subcommand)]
pub enum UnlockCmd {
    /// Ask for a remote unlock of a delivered key with the request code the customer's
    /// `keystation-unlock request` printed (the key stays with the customer), e.g.
    /// `--reason "PIN locked after wrong tries"`.
    Request {
        /// The order, why, what the desk checked, who asks.
        #[command(flatten)]
        desk: DeskRequestArgs,
        /// The request code, `KSUR1-...`.
        #[arg(long)]
        code: String,
    },
    /// approve, reject, cancel: a second operator's word on the request.
    #[command(flatten)]
    Decide(DecideCmd),
    /// Carry out an approved request: e-mail the unlock authorisation code to the handler,
    /// exactly once (resumes a stopped run).
    Run {
        /// The request and who carries it out.
        #[command(flatten)]
        run: RunArgs,
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
    List(RequestListArgs),
    /// Show one request with its journal and the sending of its code.
    Show {
        /// Request id.
        id: String,
    },
}
