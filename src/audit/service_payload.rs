//! Payloads of the service desk's audit events: a request's moves (with both operators of the
//! four-eyes rule), a PIN reset's steps, and a key reported lost. None carries a PIN: the new PIN
//! of a reset is only ever named by its delivery.

use super::payload::{AttachmentHash, AuditField, FourEyes, plain, sealed};

payload! {
    /// `service.requested`.
    pub struct ServiceRequested {
        /// The request.
        pub request_id: String,
        /// Its kind (`pin_reset`).
        pub kind: String,
        /// Who asked.
        pub requested_by: String,
        /// Why.
        pub reason: String,
        /// What the desk checked.
        pub evidence: String,
    }
}

payload! {
    /// `service.approved` / `service.rejected`.
    pub struct ServiceDecided {
        /// The request.
        pub request_id: String,
        /// Its kind.
        pub kind: String,
        /// Approved (else rejected).
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
    /// `service.cancelled`.
    pub struct ServiceCancelled {
        /// The request.
        pub request_id: String,
        /// Its kind.
        pub kind: String,
        /// Who withdrew it.
        pub cancelled_by: String,
        /// Why.
        pub note: Option<String>,
    }
}

payload! {
    /// `service.started`: execution begins, or resumes after a failure.
    pub struct ServiceStarted {
        /// The request.
        pub request_id: String,
        /// Its kind.
        pub kind: String,
        /// The key it acts on (none for a revocation, which acts on certificates).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub token_serial: Option<String>,
        /// Who runs it at the desk.
        pub run_by: String,
        /// The state it started from (`approved` or `failed`).
        pub from: String,
    }
}

payload! {
    /// `pin_reset.<step>.done`.
    pub struct PinResetStepDone {
        /// The request.
        pub request_id: String,
        /// The step (`seal_pin`, `init_pin`).
        pub step: String,
        /// The key.
        pub token_serial: String,
        /// How many times the step was started (more than 1 after a crash).
        pub runs: i64,
    }
}

payload! {
    /// `service.done`: a PIN reset's new PIN is on the key and queued for delivery.
    pub struct ServiceCompleted {
        /// The request.
        pub request_id: String,
        /// Its kind.
        pub kind: String,
        /// The delivery queued for the new PIN (a PIN reset).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub delivery_id: Option<String>,
        /// The order's PIN generation (1 = the first reset; a PIN reset).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub pin_generation: Option<i64>,
    }
}

payload! {
    /// `service.failed`: a run stopped; a later run resumes from the journal.
    pub struct ServiceFailed {
        /// The request.
        pub request_id: String,
        /// Its kind.
        pub kind: String,
        /// The step that failed.
        pub step: String,
        /// Why (never a secret).
        pub error: String,
    }
}

payload! {
    /// `order.reported_lost`: the key is gone; its certificates are revoked (keyCompromise,
    /// recorded by the `order.revoked` record of the same transaction) and its binding closed.
    pub struct OrderReportedLost {
        /// Who took the report.
        pub operator: String,
        /// The customer's account of it.
        pub detail: Option<String>,
        /// The binding closed.
        pub binding_id: Option<String>,
        /// The lost key.
        pub token_serial: Option<String>,
        /// Service requests cancelled with it.
        pub requests_cancelled: Vec<String>,
    }
}

payload! {
    /// `order.renewal_requested`: a renewal order was made from a delivered one.
    pub struct RenewalRequested {
        /// The order renewed.
        pub original: String,
        /// Its live certificate, which the renewal supersedes once provisioned.
        pub certificate: String,
        /// That certificate's notAfter.
        pub not_after: String,
        /// The operator who made the renewal order.
        pub operator: String,
        /// The original's attachments carried over, by hash (not uploaded again).
        pub attachments: Vec<AttachmentHash>,
    }
}

payload! {
    /// `token.retired`: a returned key wiped (`C_InitToken`), its binding closed; the retire
    /// request is done and the key reusable as a blank key.
    pub struct TokenRetired {
        /// The request.
        pub request_id: String,
        /// The key.
        pub token_serial: String,
        /// The binding closed.
        pub binding_id: String,
        /// The label the key has now.
        pub label: String,
    }
}

payload! {
    /// `order.reissue_requested`: a reissue (补办) order was made for an order whose key was
    /// reported lost or broken, or retired.
    pub struct ReissueRequested {
        /// The order whose key is replaced.
        pub original: String,
        /// What became of its key (`lost`, `broken`, `retired`).
        pub disposition: String,
        /// The operator who made the reissue order.
        pub operator: String,
        /// The original's attachments carried over, by hash (not uploaded again).
        pub attachments: Vec<AttachmentHash>,
        /// The four-eyes request it carried out: who asked and who approved.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub four_eyes: Option<FourEyes>,
    }
}

payload! {
    /// `provision.old_key_removed`: a renewal made on the company's existing key removed the old
    /// key pair and certificate once its own certificate was on the key (the old one revoked
    /// superseded in that commit).
    pub struct OldKeyRemoved {
        /// The key.
        pub token_serial: String,
        /// The `CKA_ID` (hex) of the key pair kept: the renewal's.
        pub kept_key_id: String,
        /// How many objects (certificates, private and public keys) were removed.
        pub objects: i64,
    }
}
