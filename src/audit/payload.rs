//! The payloads of audit events, and the rule that keeps secrets out of them by construction.
//!
//! Every payload is declared through [`payload!`], which derives `Serialize` and checks, at
//! compile time, that each field's type is an [`AuditField`]. `AuditField` is sealed and
//! implemented here only for plain data: strings, numbers, booleans, the domain's state enums,
//! lists and options of those, and the payloads themselves. A `Pin`, `SoPin`, `SealedPin` or any
//! other secret type is not one, so a payload that names one does not compile; making one an
//! `AuditField` would mean editing this file (the compile-time check in the tests fails then).
//!
//! The one exception is [`serde_json::Value`], for channel evidence that arrives as JSON already
//! (an SMS gateway's or a bank's receipt): it carries what the provider said, never a PIN, and
//! no secret type can become a `Value` because none is `Serialize`.

use crate::domain::delivery::DeliveryState;
use crate::domain::lease::{LeaseHolder, TakeoverReason};
use crate::domain::order::OrderState;
use crate::domain::pin::PinAlphabet;
use crate::domain::status::CertificateStatus;
use crate::domain::takeover::{JournalPoint, Takeover};

pub(super) mod sealed {
    /// Only this module's list of plain types implements it.
    pub trait Sealed {}
}

/// A type that may be a field of an audit payload: plain, non-secret data (see the module docs).
pub trait AuditField: sealed::Sealed {}

macro_rules! plain_data {
    ($($t:ty),* $(,)?) => {
        $(impl sealed::Sealed for $t {} impl AuditField for $t {})*
    };
}

plain_data!(
    String,
    bool,
    i64,
    u32,
    usize,
    serde_json::Value,
    OrderState,
    DeliveryState,
    PinAlphabet,
    CertificateStatus,
    LeaseHolder,
    TakeoverReason,
    JournalPoint,
    Takeover,
);
impl<T: AuditField> sealed::Sealed for Option<T> {}
impl<T: AuditField> AuditField for Option<T> {}
impl<T: AuditField> sealed::Sealed for Vec<T> {}
impl<T: AuditField> AuditField for Vec<T> {}

/// Compile-time check used by [`payload!`].
pub(crate) const fn plain<T: AuditField + ?Sized>() {}

/// Declares a payload struct: `Serialize`, and every field an [`AuditField`]. Followed by
/// `four_eyes_or_bootstrap`, the struct ends with the two fields of an administrator's change
/// to the station's accounts (`four_eyes`, `bootstrap`), the same in every such event.
macro_rules! payload {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident : $t:ty),* $(,)? }
     four_eyes_or_bootstrap) => {
        payload! {
            $(#[$m])*
            pub struct $name {
                $($(#[$fm])* pub $f: $t,)*
                /// The station request it carried out, naming who asked and who approved;
                /// none when it took effect at once.
                #[serde(skip_serializing_if = "Option::is_none")]
                pub four_eyes: Option<FourEyes>,
                /// True when it took effect at once because the station had a single enabled
                /// administrator (nobody else could approve it: bootstrap).
                #[serde(skip_serializing_if = "std::ops::Not::not")]
                pub bootstrap: bool,
            }
        }
    };
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident : $t:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize)]
        pub struct $name {
            $($(#[$fm])* pub $f: $t,)*
        }
        impl sealed::Sealed for $name {}
        impl AuditField for $name {}
        const _: () = { $(plain::<$t>();)* };
    };
}

payload! {
    /// `order.imported`.
    pub struct OrderImported {
        /// The company's USCC.
        pub uscc: String,
        /// How the applicant authenticated (snake_case name).
        pub auth_method: String,
        /// Why a failing USCC was accepted, if it was.
        pub uscc_override_reason: Option<String>,
        /// Codes of the validation warnings accepted.
        pub warnings: Vec<String>,
        /// The attached documents by hash.
        pub attachments: Vec<AttachmentHash>,
    }
}

payload! {
    /// One attachment of an imported order.
    pub struct AttachmentHash {
        /// `document` or `seal`.
        pub role: String,
        /// Document or seal kind.
        pub kind: String,
        /// SHA-256 of the content, hex.
        pub sha256: String,
    }
}

payload! {
    /// `order.approved` / `order.rejected` at review.
    pub struct Reviewed {
        /// Approved (else rejected); names the action, not in the details.
        #[serde(skip)]
        pub approved: bool,
        /// The reviewer.
        pub operator: String,
        /// The reviewer's note.
        pub reason: Option<String>,
    }
}

payload! {
    /// `order.rejected` of a Submitted or Failed order, with what the rejection undid.
    pub struct OrderRejected {
        /// The operator.
        pub operator: String,
        /// Why.
        pub reason: String,
        /// The state before.
        pub from: OrderState,
        /// Certificates revoked.
        pub certificates_revoked: Vec<String>,
        /// The binding released.
        pub binding_released: Option<String>,
        /// Whether a sealed PIN was destroyed.
        pub sealed_pin_destroyed: bool,
    }
}

payload! {
    /// Both operators of a four-eyes action: who asked and who approved.
    pub struct FourEyes {
        /// The service (or station) request.
        pub request_id: String,
        /// Who asked.
        pub requested_by: String,
        /// Who approved (never the requester).
        pub approved_by: String,
    }
}

payload! {
    /// `order.shipped`.
    pub struct OrderShipped {
        /// Carrier's tracking number.
        pub tracking_no: String,
        /// The carrier.
        pub carrier: Option<String>,
        /// The state before.
        pub from: OrderState,
        /// The delivery queued with the shipment, if one was.
        pub delivery_id: Option<String>,
    }
}

payload! {
    /// `order.revoked`.
    pub struct OrderRevoked {
        /// RFC 5280 reason name.
        pub reason: String,
        /// The operator's free text.
        pub detail: Option<String>,
        /// The state before.
        pub from: OrderState,
        /// Certificates revoked.
        pub certificates: Vec<String>,
        /// Deliveries cancelled.
        pub deliveries_cancelled: Vec<String>,
        /// Deliveries that were sending or sent.
        pub deliveries_in_flight: Vec<String>,
        /// Whether a sealed PIN was destroyed.
        pub sealed_pin_destroyed: bool,
        /// The four-eyes request it carried out (`order revoke`); none for a revocation that
        /// needs no second operator (a key reported lost, a retired key's).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub four_eyes: Option<FourEyes>,
    }
}

payload! {
    /// `order.provisioned`.
    pub struct OrderProvisioned {
        /// The key pair's CKA_ID, hex.
        pub key_id: Option<String>,
        /// The seal labels on the token.
        pub seals: Vec<String>,
        /// The attempt.
        pub attempt: i64,
    }
}

payload! {
    /// `certificate.revoked`.
    pub struct CertificateRevoked {
        /// RFC 5280 reason name.
        pub reason: String,
        /// Free text.
        pub detail: String,
        /// The certificate's status before.
        pub previous_status: CertificateStatus,
        /// The order's state, when an operator revoked it.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub order_state: Option<OrderState>,
        /// The four-eyes request it carried out (`cert revoke`).
        #[serde(skip_serializing_if = "Option::is_none")]
        pub four_eyes: Option<FourEyes>,
    }
}

payload! {
    /// `provision.claimed`.
    pub struct Claimed {
        /// The attempt.
        pub attempt: i64,
        /// The binding.
        pub binding_id: String,
        /// The SO PIN's derivation identity (not the SO PIN).
        pub so_identity: String,
        /// Whether the latest attempt is continued.
        pub resume: bool,
        /// Whether a re-initialisation was asked for.
        pub reinit: bool,
        /// The lease taken.
        pub lease: LeaseTaken,
        /// The approved reinit request this claim consumed (`--reinit`): who asked, who
        /// approved.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub four_eyes: Option<FourEyes>,
    }
}

payload! {
    /// The lease of a claim.
    pub struct LeaseTaken {
        /// Its id.
        pub lease_id: String,
        /// Its holder.
        pub holder: LeaseHolder,
    }
}

payload! {
    /// `provision.token_released`.
    pub struct TokenReleased {
        /// The binding released.
        pub binding_id: String,
        /// Why.
        pub reason: String,
    }
}

payload! {
    /// `provision.lease_taken_over`.
    pub struct LeaseTakenOver {
        /// Why the previous holder's lease could be taken.
        pub reason: TakeoverReason,
        /// The previous holder.
        pub previous: LeaseHolder,
        /// When its lease would have expired.
        pub previous_expires_at: String,
    }
}

payload! {
    /// `provision.taken_over`: another station's abandoned order taken over (see
    /// [`crate::domain::takeover`]).
    pub struct OrderTakenOver {
        /// The station the order was bound to.
        pub from_station: String,
        /// What this station does with it.
        pub decision: Takeover,
        /// Where the abandoned job's journal stopped.
        pub journal_point: JournalPoint,
        /// Whether the bound key is present at this station.
        pub key_in_reach: bool,
        /// The binding taken over.
        pub binding_id: String,
        /// The order's state when it was taken over.
        pub order_state: OrderState,
    }
}

payload! {
    /// `provision.<step>.started`.
    pub struct StepStarted {
        /// The step's name; names the action, not in the details.
        #[serde(skip)]
        pub step: String,
        /// The attempt.
        pub attempt: i64,
    }
}

payload! {
    /// `provision.failed`.
    pub struct ProvisionFailed {
        /// The step that failed.
        pub step: String,
        /// The error's message.
        pub error: String,
        /// The attempt.
        pub attempt: i64,
        /// Whether the token was pulled out.
        pub token_removed: bool,
    }
}

payload! {
    /// `station.initialized`.
    pub struct StationInitialized {
        /// CA token serial.
        pub ca_token_serial: String,
        /// Vault token serial.
        pub vault_token_serial: String,
        /// CA certificate SHA-256 fingerprint.
        pub ca_fingerprint: String,
        /// CA certificate subject.
        pub ca_subject: String,
        /// Seal-maker certificate fingerprint.
        pub seal_maker_fingerprint: String,
        /// The audit anchor key's SPKI, hex.
        pub audit_anchor_spki: String,
    }
}

payload! {
    /// `ca.ocsp_signer_issued`: the CA certified a new delegated OCSP signer (at `init`, or by
    /// `ca ocsp-signer` for an installation without one or to renew it).
    pub struct OcspSignerIssued {
        /// The signer certificate's serial (hex).
        pub serial: String,
        /// Its SHA-256 fingerprint.
        pub fingerprint: String,
        /// Start of validity (RFC 3339 UTC).
        pub not_before: String,
        /// End of validity (RFC 3339 UTC).
        pub not_after: String,
        /// CKA_ID of its key pair on the CA token (hex).
        pub key_id: String,
        /// The signer it replaces (its certificate's serial), if any.
        pub replaces: Option<String>,
        /// The station request it carried out (`ca ocsp-signer`: who asked, who approved);
        /// none at `init`.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub four_eyes: Option<FourEyes>,
    }
}

payload! {
    /// The installation's material, as its database records it.
    pub struct InstallationMaterial {
        /// CA certificate SHA-256 fingerprint.
        pub ca_fingerprint: String,
        /// CA token serial.
        pub ca_token_serial: String,
        /// Vault token serial.
        pub vault_token_serial: String,
        /// Seal-maker certificate fingerprint.
        pub seal_maker_fingerprint: String,
        /// The audit anchor key's SPKI, hex.
        pub audit_anchor_spki: String,
    }
}

payload! {
    /// `station.joined`: a station registered in an installation that existed already.
    pub struct StationJoined {
        /// The station that joined.
        pub station_id: String,
        /// The installation's material its HSM was verified against.
        pub installation: InstallationMaterial,
        /// The PKCS#11 module through which it reaches the installation's HSM.
        pub pkcs11_module: String,
    }
}

payload! {
    /// `crl.issued`: a CRL signed by the CA, recorded with its number.
    pub struct CrlIssued {
        /// CRL number.
        pub number: i64,
        /// thisUpdate (RFC 3339 UTC).
        pub this_update: String,
        /// nextUpdate (RFC 3339 UTC).
        pub next_update: String,
        /// How many revoked certificates it lists.
        pub entries: i64,
        /// SHA-256 of its DER, hex.
        pub sha256: String,
        /// Why it was issued: `init`, `command`, `revocation`, `first`, `renewal`,
        /// `new_revocation`.
        pub trigger: String,
    }
}

payload! {
    /// `bank.imported`.
    pub struct BankImported {
        /// The file's name.
        pub file: String,
        /// Its SHA-256.
        pub sha256: String,
        /// `pain.002` or `camt.054`.
        pub kind: String,
        /// The message id.
        pub message_id: String,
        /// The deliveries it moved.
        pub changes: Vec<BankChange>,
        /// Transactions still pending.
        pub pending: usize,
        /// Problems reported.
        pub problems: usize,
    }
}

payload! {
    /// A delivery moved by a bank file.
    pub struct BankChange {
        /// The delivery.
        pub delivery_id: String,
        /// Its state after.
        pub to: DeliveryState,
        /// The bank's status code.
        pub code: String,
    }
}
