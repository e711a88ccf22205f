//! The options every four-eyes request family shares (`pin-reset`, `retire`, `unlock`,
//! `revoke`, `reissue`, the revocations and the station's change requests): one definition
//! each, flattened into the families' commands, so a flag means the same everywhere.

use crate::station::service_desk::DeskRequest;
use clap::{Args, Subcommand};

/// A second operator's word on a service-desk request, the same for every kind (`pin-reset`,
/// `retire`, `unlock`, `revoke`, `reissue`): the station enforces who may give it.
#[derive(Debug, Subcommand)]
pub enum DecideCmd {
    /// Approve a request: a second operator, never the one who made it. A PIN reset, retire or
    /// unlock is then carried out by `run`; a revocation or a reissue at once.
    Approve {
        /// Request id (as the request command printed it).
        id: String,
        /// Approving operator.
        #[arg(long, value_name = "NAME")]
        operator: String,
        /// A note recorded with the approval.
        #[arg(long)]
        note: Option<String>,
    },
    /// Reject a request: a second operator, with the reason. Nothing is done.
    Reject {
        /// Request id.
        id: String,
        /// Rejecting operator.
        #[arg(long, value_name = "NAME")]
        operator: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Withdraw a request that has not been carried out (or give up a failed one).
    Cancel {
        /// Request id.
        id: String,
        /// Operator withdrawing it.
        #[arg(long, value_name = "NAME")]
        operator: String,
        /// Why.
        #[arg(long)]
        note: Option<String>,
    },
}

/// A service-desk request on a delivered key: which order, why, what the desk checked, who asks.
#[derive(Debug, Args)]
pub struct DeskRequestArgs {
    /// Order number.
    pub order_no: String,
    /// Why (the customer's account).
    #[arg(long)]
    pub reason: String,
    /// What the desk checked (identity of the caller, documents seen).
    #[arg(long)]
    pub evidence: String,
    /// Operator making the request.
    #[arg(long, value_name = "NAME")]
    pub operator: String,
}

impl DeskRequestArgs {
    /// Who asks, why and on what evidence, as the station takes it.
    pub fn asked(&self) -> DeskRequest<'_> {
        DeskRequest {
            requested_by: &self.operator,
            reason: &self.reason,
            evidence: &self.evidence,
        }
    }
}

/// `run ID --operator NAME`: carry out an approved request (resumes a stopped run).
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Request id.
    pub id: String,
    /// Operator carrying it out.
    #[arg(long, value_name = "NAME")]
    pub operator: String,
}

/// `list [--order ORDER_NO] [--state STATE]`: a family's requests.
#[derive(Debug, Args)]
pub struct RequestListArgs {
    /// Only this order's.
    #[arg(long, value_name = "ORDER_NO")]
    pub order: Option<String>,
    /// Only requests in this state (requested, approved, rejected, cancelled, executing, done,
    /// failed).
    #[arg(long)]
    pub state: Option<String>,
}

/// `approve ID [--note NOTE]`: approve someone else's station change request.
#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// Request id.
    pub id: String,
    /// A note recorded with the approval.
    #[arg(long)]
    pub note: Option<String>,
}

/// What a revocation request says besides what it revokes: the reason, a detail, who asks.
#[derive(Debug, Args)]
pub struct RevocationArgs {
    /// RFC 5280 reason: unspecified, keyCompromise, affiliationChanged, superseded,
    /// cessationOfOperation, privilegeWithdrawn. A new CRL listing it is issued once approved.
    #[arg(long)]
    pub reason: String,
    /// Free-text detail recorded with the revocation.
    #[arg(long)]
    pub detail: Option<String>,
    /// Operator requesting it.
    #[arg(long)]
    pub operator: String,
}
