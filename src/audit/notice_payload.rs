//! Payloads of the notices' audit events (`notice.*`). A notice carries no secret; its
//! destination is recorded masked.

use super::payload::{AuditField, plain, sealed};

payload! {
    /// `notice.queued`: a notice to the applicant, queued with the state change that causes it.
    pub struct NoticeQueued {
        /// The notice.
        pub notification_id: String,
        /// `approved`, `rejected`, `shipped`, `pin_sent`, `expiring`, `revoked`.
        pub kind: String,
        /// Which event of that kind.
        pub event_ref: String,
        /// `sms` or `email`.
        pub medium: String,
        /// The destination, masked.
        pub destination: String,
    }
}

payload! {
    /// `notice.sent` / `notice.failed` / `notice.retry_scheduled`: the outcome of a send.
    pub struct NoticeOutcome {
        /// The notice.
        pub notification_id: String,
        /// `sms` or `email`.
        pub medium: String,
        /// The attempt.
        pub attempt: i64,
        /// The server's reference.
        pub provider_id: Option<String>,
        /// Why it failed (codes and kinds, never the text).
        pub error: Option<String>,
    }
}

payload! {
    /// `webhook.sent` / `webhook.retry_scheduled` / `webhook.failed` / `webhook.requeued`: an
    /// attempt to push an order's state change to the API's webhook, or an operator's requeue.
    pub struct WebhookAttempt {
        /// The event (`X-Keystation-Event`).
        pub event_id: String,
        /// The order's version after the change.
        pub sequence: i64,
        /// The attempt (0 for a requeue).
        pub attempt: i64,
        /// `delivered`, `retryable`, `refused`, `unknown`, `interrupted`, `requeued`.
        pub outcome: String,
        /// Why it was not delivered (a status or a transport error, never a body).
        pub error: Option<String>,
    }
}

payload! {
    /// `api.request_refused`: the order API refused a request's credentials (401) or scope
    /// (403). The token's text is never recorded; its id only when it is a live token.
    pub struct ApiRequestRefused {
        /// The client's address.
        pub remote: String,
        /// `missing`, `unknown`, `revoked`, `operator_disabled`, `scope_missing`.
        pub reason: String,
        /// The route's scope, for `scope_missing`.
        pub scope: Option<String>,
        /// The token's id, for `scope_missing` (a live token).
        pub token_id: Option<i64>,
        /// The 401 / 403 answered.
        pub status: i64,
        /// Refusals of this client not recorded since its previous record (the rate limit).
        pub suppressed: i64,
    }
}
