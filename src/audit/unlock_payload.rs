//! Payloads of a remote unlock's audit events (`unlock.*`). None carries an SO PIN or the
//! authorisation code: the code is named by its request, its masked address and its expiry.

use super::payload::{AuditField, plain, sealed};

payload! {
    /// `unlock.generation_reserved`: the key's next SO PIN generation is pending for this
    /// request (carried by its code until `unlock confirm`).
    pub struct UnlockGenerationReserved {
        /// The request.
        pub request_id: String,
        /// The key.
        pub token_serial: String,
        /// The generation the key's SO PIN has now.
        pub current_generation: u32,
        /// The generation the code rotates it to.
        pub next_generation: u32,
    }
}

payload! {
    /// `unlock.code_sending` (claimed before the mail server is contacted),
    /// `unlock.code_failed` (not handed over), `unlock.code_in_doubt` (maybe handed over).
    pub struct UnlockCodeSend {
        /// The request.
        pub request_id: String,
        /// `sending`, `failed` or `in_doubt`.
        pub state: String,
        /// Which contact with the mail server (1 = the first).
        pub send: i64,
        /// Where, masked.
        pub destination_masked: String,
        /// Why it failed or is in doubt.
        pub reason: Option<String>,
    }
}

payload! {
    /// `unlock.code_sent`: the mail server took the code; the request is done.
    pub struct UnlockCodeSent {
        /// The request.
        pub request_id: String,
        /// The key.
        pub token_serial: String,
        /// Where, masked.
        pub destination_masked: String,
        /// When the code expires.
        pub expires_at: String,
        /// Which contact with the mail server (more than 1 after a failure or `--resend`).
        pub send: i64,
        /// The SO PIN generation the code rotates the key to.
        pub next_generation: u32,
    }
}

payload! {
    /// `unlock.confirmed`: the customer's tool rotated the SO PIN; its generation is current.
    pub struct UnlockConfirmed {
        /// The request.
        pub request_id: String,
        /// The key.
        pub token_serial: String,
        /// Who recorded it.
        pub confirmed_by: String,
        /// The generation that became current.
        pub generation: u32,
    }
}
