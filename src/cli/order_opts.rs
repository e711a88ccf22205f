//! `keystation order ...` options (the handlers are in `orders.rs`).

use super::request_opts::RevocationArgs;
use clap::Subcommand;
use std::path::PathBuf;

/// `keystation order ...`
#[derive(Debug, Subcommand)]
pub enum OrderCmd {
    /// Import an order application (one JSON object or an array); all-or-nothing.
    Import {
        /// The application JSON file; document paths are relative to it.
        file: PathBuf,
        /// Operator performing the import.
        #[arg(long)]
        operator: Option<String>,
        /// Accept a failing USCC checksum (legal early codes), recording this reason.
        #[arg(long, value_name = "REASON", requires = "operator")]
        accept_uscc_checksum: Option<String>,
    },
    /// List orders, oldest first.
    List {
        /// Only orders in this state (Submitted, Approved, ...).
        #[arg(long)]
        state: Option<String>,
    },
    /// Show one order, normalised, with its documents and history.
    Show {
        /// Order number.
        order_no: String,
    },
    /// Approve a submitted order.
    Approve {
        /// Order number.
        order_no: String,
        /// Reviewing operator.
        #[arg(long)]
        operator: String,
        /// Optional note.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Request an order's revocation (four-eyes): nothing is revoked until a second, different
    /// operator approves it (`keystation revoke approve ID`); then its certificates are revoked,
    /// its pending PIN delivery cancelled and its sealed PIN destroyed.
    Revoke {
        /// Order number.
        order_no: String,
        /// Why, and who asks.
        #[command(flatten)]
        revocation: RevocationArgs,
    },
    /// Renew an order's certificate (证书更新): makes a renewal order (ORDER-R1, -R2, ...) for
    /// the same company with the form and documents carried over, Submitted for review like a
    /// new one.
    /// Offered from 30 days before the live certificate expires. Once the renewal is provisioned
    /// onto its new key, the old certificate is revoked (superseded) and a CRL issued.
    Renew {
        /// The order to renew.
        order_no: String,
        /// Operator making the renewal order.
        #[arg(long)]
        operator: String,
    },
    /// Make the replacement order (补办, ORDER-B1, -B2, ...) of an order whose key was reported
    /// lost or broken, or retired: same company, form and documents, Submitted for review, then
    /// provisioned onto a new key.
    Reissue(super::reissue::ReissueArgs),
    /// Report an order's key lost (or --broken): its certificates are revoked (keyCompromise;
    /// cessationOfOperation when broken) at once, a new CRL issued, its token binding closed.
    Lost {
        /// Order number.
        order_no: String,
        /// Operator taking the report.
        #[arg(long)]
        operator: String,
        /// The customer's account of it.
        #[arg(long)]
        detail: Option<String>,
        /// The key is broken, not lost: revoked cessationOfOperation instead of keyCompromise.
        #[arg(long)]
        broken: bool,
    },
    /// Reject a submitted order, or give up a failed one (its certificates are revoked, its token
    /// binding released, its sealed PIN destroyed).
    Reject {
        /// Order number.
        order_no: String,
        /// Reviewing operator.
        #[arg(long)]
        operator: String,
        /// Why (sent to the applicant).
        #[arg(long)]
        reason: String,
    },
}
