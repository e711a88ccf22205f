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
