//! Payloads of the PIN delivery's audit events and of the provisioning steps' `done` records.

use super::payload::{AuditField, plain, sealed};
use crate::domain::delivery::DeliveryState;
use crate::domain::lease::{LeaseHolder, TakeoverReason};
use crate::domain::order::OrderState;
use crate::domain::pin::PinAlphabet;

payload! {
    /// `delivery.queued`.
    pub struct DeliveryQueued {
        /// The delivery.
        pub delivery_id: String,
        /// `sms` or `bank`.
        pub channel: String,
        /// The destination, masked.
        pub destination: String,
        /// The bank transfer's end-to-end id.
        pub end_to_end_id: Option<String>,
    }
}

payload! {
    /// `delivery.requeued`.
    pub struct DeliveryRequeued {
        /// The new delivery.
        pub delivery_id: String,
        /// The deliveries it replaces.
        pub replaces: Vec<String>,
        /// Those the operator declared not delivered.
        pub declared_not_delivered: Vec<String>,
    }
}

payload! {
    /// `delivery.sending`.
    pub struct DeliverySending {
        /// The delivery.
        pub delivery_id: String,
        /// `sms` or `bank`.
        pub channel: String,
        /// The destination, masked.
        pub destination: String,
        /// The attempt.
        pub attempt: i64,
        /// The pain.001 file, for a bank transfer.
        pub bank_file: Option<String>,
    }
}

payload! {
    /// `delivery.sender_taken_over`: the sender lease of a delivery taken from a sender that is
    /// gone or let it expire.
    pub struct DeliverySenderTakenOver {
        /// The delivery.
        pub delivery_id: String,
        /// Why the previous sender's lease could be taken.
        pub reason: TakeoverReason,
        /// The previous sender.
        pub previous: LeaseHolder,
        /// When its lease would have expired.
        pub previous_expires_at: String,
    }
}

payload! {
    /// `delivery.sent`.
    pub struct DeliverySent {
        /// The delivery.
        pub delivery_id: String,
        /// The provider's id of the message.
        pub provider_id: String,
        /// HMAC of the message sent.
        pub message_hmac: Option<String>,
        /// What the channel answered.
        pub evidence: serde_json::Value,
    }
}

payload! {
    /// `delivery.confirmed`.
    pub struct DeliveryConfirmed {
        /// The delivery.
        pub delivery_id: String,
        /// The receipt.
        pub receipt: Receipt,
        /// What the channel answered.
        pub evidence: serde_json::Value,
        /// Whether the sealed PIN was destroyed.
        pub sealed_pin_destroyed: bool,
        /// Why the order's state was left unchanged, if it was.
        pub order_note: Option<String>,
    }
}

payload! {
    /// The receipt of a confirmed delivery.
    pub struct Receipt {
        /// `sms` or `bank`.
        pub channel: String,
        /// The destination, masked.
        pub destination: String,
        /// The provider's id.
        pub provider_id: Option<String>,
        /// The end-to-end id.
        pub end_to_end_id: Option<String>,
        /// When sent.
        pub sent_at: Option<String>,
        /// When confirmed.
        pub confirmed_at: String,
        /// HMAC of the message sent.
        pub message_hmac: Option<String>,
    }
}

payload! {
    /// `delivery.rejected` (by the bank).
    pub struct DeliveryRejected {
        /// The delivery.
        pub delivery_id: String,
        /// The end-to-end id.
        pub end_to_end_id: Option<String>,
        /// The bank's reason.
        pub reason: String,
        /// The bank's evidence.
        pub evidence: serde_json::Value,
    }
}

payload! {
    /// `delivery.retry_scheduled` / `delivery.needs_operator` after a failed attempt.
    pub struct DeliveryRescheduled {
        /// Given up (`needs_operator`), else retried later; names the action.
        #[serde(skip)]
        pub escalated: bool,
        /// The delivery.
        pub delivery_id: String,
        /// The attempt.
        pub attempt: i64,
        /// The last error.
        pub reason: Option<String>,
        /// When it is due again.
        pub next_attempt_at: String,
    }
}

payload! {
    /// `delivery.needs_operator` / `delivery.in_doubt`: handed to the operator.
    pub struct DeliveryHeld {
        /// The delivery.
        pub delivery_id: String,
        /// Why.
        pub reason: Option<String>,
    }
}

payload! {
    /// `delivery.failed` before any channel was contacted.
    pub struct DeliveryFailed {
        /// The delivery.
        pub delivery_id: String,
        /// Why.
        pub reason: String,
        /// Always false: nothing was sent.
        pub channel_contacted: bool,
    }
}

payload! {
    /// `delivery.cancelled` by the worker (the order receives no PIN).
    pub struct DeliveryWithdrawn {
        /// The delivery.
        pub delivery_id: String,
        /// Why.
        pub reason: Option<String>,
        /// The order's state.
        pub order_state: OrderState,
    }
}

payload! {
    /// `delivery.cancelled` by an operator.
    pub struct DeliveryCancelled {
        /// The delivery.
        pub delivery_id: String,
        /// The state before.
        pub from: DeliveryState,
        /// The operator's reason.
        pub reason: Option<String>,
    }
}

payload! {
    /// `delivery.retried` by an operator.
    pub struct DeliveryRetried {
        /// The delivery.
        pub delivery_id: String,
        /// The state before.
        pub from: DeliveryState,
        /// Whether a new transfer was forced.
        pub force_new_transfer: bool,
        /// The delivery queued.
        pub queued: String,
        /// The delivery it superseded.
        pub superseded: Option<String>,
    }
}

payload! {
    /// `provision.init_token.done`.
    pub struct TokenInitialized {
        /// The token's serial.
        pub token_serial: String,
        /// Its label.
        pub label: String,
        /// The SO PIN's derivation identity (not the SO PIN).
        pub so_identity: String,
    }
}

payload! {
    /// `provision.init_pin.done`: the PIN's shape, never the PIN.
    pub struct PinInitialized {
        /// Its length.
        pub pin_length: usize,
        /// Its alphabet.
        pub alphabet: PinAlphabet,
        /// Size of the sealed blob.
        pub sealed_bytes: usize,
    }
}

payload! {
    /// `provision.generate_key.done`.
    pub struct KeyGenerated {
        /// The algorithm.
        pub algorithm: String,
        /// CKA_ID, hex.
        pub key_id: String,
        /// CKA_EXTRACTABLE.
        pub extractable: bool,
        /// CKA_SENSITIVE.
        pub sensitive: bool,
    }
}

payload! {
    /// `provision.issue_certificate.done`.
    pub struct CertificateIssued {
        /// Serial, hex.
        pub serial: String,
        /// SHA-256 fingerprint.
        pub fingerprint_sha256: String,
        /// Validity start.
        pub not_before: String,
        /// Validity end.
        pub not_after: String,
        /// Subject.
        pub subject: String,
    }
}

payload! {
    /// `provision.write_certificate.done`.
    pub struct CertificateWritten {
        /// Serial, hex.
        pub serial: String,
        /// CKA_ID, hex.
        pub key_id: String,
    }
}

payload! {
    /// `provision.dual_certificate.done`: the encryption certificate of an SM2 dual certificate,
    /// its key pair made by the station, escrowed sealed, imported onto the token. No key
    /// material: the public key's fingerprint only.
    pub struct DualCertificateIssued {
        /// The encryption certificate's serial, hex.
        pub serial: String,
        /// Its SHA-256 fingerprint, hex.
        pub fingerprint_sha256: String,
        /// The encryption key pair's CKA_ID on the token, hex.
        pub key_id: String,
        /// SHA-256 of the encryption public key (`04 ‖ x ‖ y`), hex.
        pub public_key_sha256: String,
        /// The signing key (CKA_ID, hex) the envelope was opened with.
        pub enveloped_to: String,
    }
}

payload! {
    /// `provision.write_seals.done`.
    pub struct SealsWritten {
        /// The seal labels written.
        pub seals: Vec<String>,
        /// Data objects of an earlier attempt replaced.
        pub replaced_data_objects: usize,
    }
}
