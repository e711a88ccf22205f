//! What a provisioning run is asked to do, and what it did.

use crate::domain::{CertSerial, OrderNo};

/// What to provision.
#[derive(Debug, Clone)]
pub struct ProvisionRequest {
    /// The order.
    pub order_no: OrderNo,
    /// The token (serial or label); default: the bound one, else the first blank token.
    pub token: Option<String>,
    /// Start the token over even where the journal would continue.
    pub reinit: bool,
}

/// The result of a provisioning run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProvisionReport {
    /// The order.
    pub order_no: OrderNo,
    /// Token serial.
    pub token_serial: String,
    /// Token label.
    pub token_label: String,
    /// Key algorithm.
    pub key_algorithm: String,
    /// CKA_ID, hex.
    pub key_id: String,
    /// Certificate serial, hex.
    pub certificate_serial: String,
    /// Certificate SHA-256 fingerprint.
    pub certificate_fingerprint: String,
    /// Certificate validity end.
    pub not_after: String,
    /// Seal labels written.
    pub seals: Vec<String>,
    /// Steps run in this invocation.
    pub steps_run: Vec<String>,
    /// Attempt number.
    pub attempt: i64,
    /// Certificates revoked by this run as superseded: never on a token, or (a renewal order)
    /// the renewed order's.
    pub revoked: Vec<CertSerial>,
}
