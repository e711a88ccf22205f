//! The closed set of audit events, and their one serialisation into a record's `action` and
//! `details`.
//!
//! Every record the station writes is an [`AuditEvent`]; [`AuditEvent::encode`] is the only
//! place an action string or a details JSON is produced, so the stored format (action names,
//! detail keys and values) is defined here and nowhere else. Payload fields are
//! [`AuditField`]s: no secret type can be one (see the `payload` module).

pub use super::delivery_payload::*;
pub use super::notice_payload::*;
pub use super::operator_payload::*;
pub use super::payload::*;
pub use super::service_payload::*;
pub use super::unlock_payload::*;

/// What one audit record says happened.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AuditEvent {
    /// `order.imported`.
    OrderImported(OrderImported),
    /// `order.approved` / `order.rejected` at review.
    Reviewed(Reviewed),
    /// `order.rejected` with what the rejection undid.
    OrderRejected(OrderRejected),
    /// `order.shipped`.
    OrderShipped(OrderShipped),
    /// `order.revoked`.
    OrderRevoked(OrderRevoked),
    /// `order.provisioned`.
    OrderProvisioned(OrderProvisioned),
    /// `certificate.serial_reserved`.
    SerialReserved,
    /// `certificate.revoked`.
    CertificateRevoked(CertificateRevoked),
    /// `provision.claimed`.
    Claimed(Claimed),
    /// `provision.token_released`.
    TokenReleased(TokenReleased),
    /// `provision.lease_taken_over`.
    LeaseTakenOver(LeaseTakenOver),
    /// `provision.taken_over`.
    OrderTakenOver(OrderTakenOver),
    /// `provision.<step>.started`.
    StepStarted(StepStarted),
    /// `provision.<step>.done`.
    StepDone(StepOutcome),
    /// `provision.failed`.
    ProvisionFailed(ProvisionFailed),
    /// `station.initialized`.
    StationInitialized(StationInitialized),
    /// `station.joined`.
    StationJoined(StationJoined),
    /// `ca.ocsp_signer_issued`.
    OcspSignerIssued(OcspSignerIssued),
    /// `bank.imported`.
    BankImported(BankImported),
    /// `crl.issued`.
    CrlIssued(CrlIssued),
    /// `delivery.queued`.
    DeliveryQueued(DeliveryQueued),
    /// `delivery.requeued`.
    DeliveryRequeued(DeliveryRequeued),
    /// `delivery.sending`.
    DeliverySending(DeliverySending),
    /// `delivery.sender_taken_over`.
    DeliverySenderTakenOver(DeliverySenderTakenOver),
    /// `delivery.sent`.
    DeliverySent(DeliverySent),
    /// `delivery.confirmed`.
    DeliveryConfirmed(DeliveryConfirmed),
    /// `delivery.rejected`.
    DeliveryRejected(DeliveryRejected),
    /// `delivery.retry_scheduled` / `delivery.needs_operator`.
    DeliveryRescheduled(DeliveryRescheduled),
    /// `delivery.needs_operator`.
    DeliveryNeedsOperator(DeliveryHeld),
    /// `delivery.in_doubt`.
    DeliveryInDoubt(DeliveryHeld),
    /// `delivery.failed`.
    DeliveryFailed(DeliveryFailed),
    /// `delivery.cancelled` by the worker.
    DeliveryWithdrawn(DeliveryWithdrawn),
    /// `delivery.cancelled` by an operator.
    DeliveryCancelled(DeliveryCancelled),
    /// `delivery.retried`.
    DeliveryRetried(DeliveryRetried),
    /// `service.requested`.
    ServiceRequested(ServiceRequested),
    /// `service.approved` / `service.rejected`.
    ServiceDecided(ServiceDecided),
    /// `service.cancelled`.
    ServiceCancelled(ServiceCancelled),
    /// `service.started`.
    ServiceStarted(ServiceStarted),
    /// `pin_reset.<step>.done`.
    PinResetStepDone(PinResetStepDone),
    /// `service.done`.
    ServiceCompleted(ServiceCompleted),
    /// `service.failed`.
    ServiceFailed(ServiceFailed),
    /// `order.reported_lost`.
    OrderReportedLost(OrderReportedLost),
    /// `order.renewal_requested`.
    RenewalRequested(RenewalRequested),
    /// `order.reported_broken`.
    OrderReportedBroken(OrderReportedLost),
    /// `retire.<step>.done`.
    RetireStepDone(PinResetStepDone),
    /// `token.retired`: a retire request's `close` (the request done).
    TokenRetired(TokenRetired),
    /// `order.reissue_requested`.
    ReissueRequested(ReissueRequested),
    /// `provision.old_key_removed`.
    OldKeyRemoved(OldKeyRemoved),
    /// `unlock.generation_reserved`.
    UnlockGenerationReserved(UnlockGenerationReserved),
    /// `unlock.code_sending` / `unlock.code_failed` / `unlock.code_in_doubt`.
    UnlockCodeSend(UnlockCodeSend),
    /// `unlock.code_sent`.
    UnlockCodeSent(UnlockCodeSent),
    /// `unlock.confirmed`.
    UnlockConfirmed(UnlockConfirmed),
    /// `notice.queued`.
    NoticeQueued(NoticeQueued),
    /// `notice.sent`.
    NoticeSent(NoticeOutcome),
    /// `notice.retry_scheduled`.
    NoticeRetryScheduled(NoticeOutcome),
    /// `notice.failed`.
    NoticeFailed(NoticeOutcome),
    /// `webhook.sent`.
    WebhookSent(WebhookAttempt),
    /// `webhook.retry_scheduled`.
    WebhookRetryScheduled(WebhookAttempt),
    /// `webhook.failed`.
    WebhookFailed(WebhookAttempt),
    /// `webhook.requeued`.
    WebhookRequeued(WebhookAttempt),
    /// `api.request_refused`.
    ApiRequestRefused(ApiRequestRefused),
    /// `operator.added`.
    OperatorAdded(OperatorAdded),
    /// `operator.changed`.
    OperatorChanged(OperatorChanged),
    /// `console.login`.
    ConsoleLogin(ConsoleLogin),
    /// `console.login_failed`.
    ConsoleLoginFailed(ConsoleLoginFailed),
    /// `station_request.requested`.
    StationRequested(StationRequested),
    /// `station_request.approved` / `station_request.rejected`.
    StationRequestDecided(StationRequestDecided),
    /// `station_request.cancelled`.
    StationRequestCancelled(StationRequestCancelled),
    /// `api_token.added`.
    ApiTokenAdded(ApiTokenAdded),
    /// `api_token.revoked`.
    ApiTokenRevoked(ApiTokenRevoked),
    /// `api.order_submitted`.
    ApiOrderSubmitted(ApiOrderSubmitted),
    /// `operator.password_set`.
    OperatorPasswordSet(OperatorSecretSet),
    /// `operator.totp_enrolled`.
    OperatorTotpEnrolled(OperatorSecretSet),
}

/// What a provisioning step recorded when it was done (`provision.<step>.done`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StepOutcome {
    /// `init_token`.
    InitToken(TokenInitialized),
    /// `init_pin`.
    InitPin(PinInitialized),
    /// `generate_key`.
    GenerateKey(KeyGenerated),
    /// `issue_certificate`.
    IssueCertificate(CertificateIssued),
    /// `dual_certificate`.
    DualCertificate(DualCertificateIssued),
    /// `write_certificate`.
    WriteCertificate(CertificateWritten),
    /// `write_seals`.
    WriteSeals(SealsWritten),
}

impl StepOutcome {
    /// The step's journal name.
    pub fn step_name(&self) -> &'static str {
        match self {
            StepOutcome::InitToken(_) => "init_token",
            StepOutcome::InitPin(_) => "init_pin",
            StepOutcome::GenerateKey(_) => "generate_key",
            StepOutcome::IssueCertificate(_) => "issue_certificate",
            StepOutcome::DualCertificate(_) => "dual_certificate",
            StepOutcome::WriteCertificate(_) => "write_certificate",
            StepOutcome::WriteSeals(_) => "write_seals",
        }
    }

    /// The details, as journaled beside the step and in its audit record.
    pub fn details(&self) -> Result<serde_json::Value, serde_json::Error> {
        match self {
            StepOutcome::InitToken(p) => to_json(p),
            StepOutcome::InitPin(p) => to_json(p),
            StepOutcome::GenerateKey(p) => to_json(p),
            StepOutcome::IssueCertificate(p) => to_json(p),
            StepOutcome::DualCertificate(p) => to_json(p),
            StepOutcome::WriteCertificate(p) => to_json(p),
            StepOutcome::WriteSeals(p) => to_json(p),
        }
    }
}

fn to_json<T: serde::Serialize + AuditField>(
    p: &T,
) -> Result<serde_json::Value, serde_json::Error> {
    // Payloads hold no maps (no `AuditField` is one), so this does not fail in practice; a
    // failure is still an error for the caller's transaction, never a panic.
    serde_json::to_value(p)
}

impl AuditEvent {
    /// The record's action name.
    pub fn action(&self) -> String {
        use AuditEvent as E;
        let fixed = match self {
            E::OrderImported(_) => "order.imported",
            E::Reviewed(r) if r.approved => "order.approved",
            E::Reviewed(_) | E::OrderRejected(_) => "order.rejected",
            E::OrderShipped(_) => "order.shipped",
            E::OrderRevoked(_) => "order.revoked",
            E::OrderProvisioned(_) => "order.provisioned",
            E::SerialReserved => "certificate.serial_reserved",
            E::CertificateRevoked(_) => "certificate.revoked",
            E::Claimed(_) => "provision.claimed",
            E::TokenReleased(_) => "provision.token_released",
            E::LeaseTakenOver(_) => "provision.lease_taken_over",
            E::OrderTakenOver(_) => "provision.taken_over",
            E::StepStarted(s) => return format!("provision.{}.started", s.step),
            E::StepDone(o) => return format!("provision.{}.done", o.step_name()),
            E::ProvisionFailed(_) => "provision.failed",
            E::StationInitialized(_) => "station.initialized",
            E::StationJoined(_) => "station.joined",
            E::OcspSignerIssued(_) => "ca.ocsp_signer_issued",
            E::BankImported(_) => "bank.imported",
            E::CrlIssued(_) => "crl.issued",
            E::DeliveryQueued(_) => "delivery.queued",
            E::DeliveryRequeued(_) => "delivery.requeued",
            E::DeliverySending(_) => "delivery.sending",
            E::DeliverySenderTakenOver(_) => "delivery.sender_taken_over",
            E::DeliverySent(_) => "delivery.sent",
            E::DeliveryConfirmed(_) => "delivery.confirmed",
            E::DeliveryRejected(_) => "delivery.rejected",
            E::DeliveryRescheduled(r) if r.escalated => "delivery.needs_operator",
            E::DeliveryRescheduled(_) => "delivery.retry_scheduled",
            E::DeliveryNeedsOperator(_) => "delivery.needs_operator",
            E::DeliveryInDoubt(_) => "delivery.in_doubt",
            E::DeliveryFailed(_) => "delivery.failed",
            E::DeliveryWithdrawn(_) | E::DeliveryCancelled(_) => "delivery.cancelled",
            E::DeliveryRetried(_) => "delivery.retried",
            E::ServiceRequested(_) => "service.requested",
            E::ServiceDecided(d) if d.approved => "service.approved",
            E::ServiceDecided(_) => "service.rejected",
            E::ServiceCancelled(_) => "service.cancelled",
            E::ServiceStarted(_) => "service.started",
            E::PinResetStepDone(s) => return format!("pin_reset.{}.done", s.step),
            E::ServiceCompleted(_) => "service.done",
            E::ServiceFailed(_) => "service.failed",
            E::OrderReportedLost(_) => "order.reported_lost",
            E::RenewalRequested(_) => "order.renewal_requested",
            E::OrderReportedBroken(_) => "order.reported_broken",
            E::RetireStepDone(s) => return format!("retire.{}.done", s.step),
            E::TokenRetired(_) => "token.retired",
            E::ReissueRequested(_) => "order.reissue_requested",
            E::OldKeyRemoved(_) => "provision.old_key_removed",
            E::UnlockGenerationReserved(_) => "unlock.generation_reserved",
            E::UnlockCodeSend(s) => return format!("unlock.code_{}", s.state),
            E::UnlockCodeSent(_) => "unlock.code_sent",
            E::UnlockConfirmed(_) => "unlock.confirmed",
            E::NoticeQueued(_) => "notice.queued",
            E::NoticeSent(_) => "notice.sent",
            E::NoticeRetryScheduled(_) => "notice.retry_scheduled",
            E::NoticeFailed(_) => "notice.failed",
            E::WebhookSent(_) => "webhook.sent",
            E::WebhookRetryScheduled(_) => "webhook.retry_scheduled",
            E::WebhookFailed(_) => "webhook.failed",
            E::WebhookRequeued(_) => "webhook.requeued",
            E::ApiRequestRefused(_) => "api.request_refused",
            E::OperatorAdded(_) => "operator.added",
            E::OperatorChanged(_) => "operator.changed",
            E::ConsoleLogin(_) => "console.login",
            E::ConsoleLoginFailed(_) => "console.login_failed",
            E::StationRequested(_) => "station_request.requested",
            E::StationRequestDecided(d) if d.approved => "station_request.approved",
            E::StationRequestDecided(_) => "station_request.rejected",
            E::StationRequestCancelled(_) => "station_request.cancelled",
            E::ApiTokenAdded(_) => "api_token.added",
            E::ApiTokenRevoked(_) => "api_token.revoked",
            E::ApiOrderSubmitted(_) => "api.order_submitted",
            E::OperatorPasswordSet(_) => "operator.password_set",
            E::OperatorTotpEnrolled(_) => "operator.totp_enrolled",
        };
        fixed.to_string()
    }

    /// The record's details (a JSON object).
    pub fn details(&self) -> Result<serde_json::Value, serde_json::Error> {
        use AuditEvent as E;
        match self {
            E::OrderImported(p) => to_json(p),
            E::Reviewed(p) => to_json(p),
            E::OrderRejected(p) => to_json(p),
            E::OrderShipped(p) => to_json(p),
            E::OrderRevoked(p) => to_json(p),
            E::OrderProvisioned(p) => to_json(p),
            E::SerialReserved => Ok(serde_json::json!({})),
            E::CertificateRevoked(p) => to_json(p),
            E::Claimed(p) => to_json(p),
            E::TokenReleased(p) => to_json(p),
            E::LeaseTakenOver(p) => to_json(p),
            E::OrderTakenOver(p) => to_json(p),
            E::StepStarted(p) => to_json(p),
            E::StepDone(o) => o.details(),
            E::ProvisionFailed(p) => to_json(p),
            E::StationInitialized(p) => to_json(p),
            E::StationJoined(p) => to_json(p),
            E::OcspSignerIssued(p) => to_json(p),
            E::BankImported(p) => to_json(p),
            E::CrlIssued(p) => to_json(p),
            E::DeliveryQueued(p) => to_json(p),
            E::DeliveryRequeued(p) => to_json(p),
            E::DeliverySending(p) => to_json(p),
            E::DeliverySenderTakenOver(p) => to_json(p),
            E::DeliverySent(p) => to_json(p),
            E::DeliveryConfirmed(p) => to_json(p),
            E::DeliveryRejected(p) => to_json(p),
            E::DeliveryRescheduled(p) => to_json(p),
            E::DeliveryNeedsOperator(p) | E::DeliveryInDoubt(p) => to_json(p),
            E::DeliveryFailed(p) => to_json(p),
            E::DeliveryWithdrawn(p) => to_json(p),
            E::DeliveryCancelled(p) => to_json(p),
            E::DeliveryRetried(p) => to_json(p),
            E::ServiceRequested(p) => to_json(p),
            E::ServiceDecided(p) => to_json(p),
            E::ServiceCancelled(p) => to_json(p),
            E::ServiceStarted(p) => to_json(p),
            E::PinResetStepDone(p) => to_json(p),
            E::ServiceCompleted(p) => to_json(p),
            E::ServiceFailed(p) => to_json(p),
            E::RenewalRequested(p) => to_json(p),
            E::OrderReportedBroken(p) => to_json(p),
            E::RetireStepDone(p) => to_json(p),
            E::TokenRetired(p) => to_json(p),
            E::ReissueRequested(p) => to_json(p),
            E::OldKeyRemoved(p) => to_json(p),
            E::OrderReportedLost(p) => to_json(p),
            E::UnlockGenerationReserved(p) => to_json(p),
            E::UnlockCodeSend(p) => to_json(p),
            E::UnlockCodeSent(p) => to_json(p),
            E::UnlockConfirmed(p) => to_json(p),
            E::NoticeQueued(p) => to_json(p),
            E::NoticeSent(p) | E::NoticeRetryScheduled(p) | E::NoticeFailed(p) => to_json(p),
            E::WebhookSent(p)
            | E::WebhookRetryScheduled(p)
            | E::WebhookFailed(p)
            | E::WebhookRequeued(p) => to_json(p),
            E::ApiRequestRefused(p) => to_json(p),
            E::OperatorAdded(p) => to_json(p),
            E::OperatorChanged(p) => to_json(p),
            E::ConsoleLogin(p) => to_json(p),
            E::ConsoleLoginFailed(p) => to_json(p),
            E::StationRequested(p) => to_json(p),
            E::StationRequestDecided(p) => to_json(p),
            E::StationRequestCancelled(p) => to_json(p),
            E::ApiTokenAdded(p) => to_json(p),
            E::ApiTokenRevoked(p) => to_json(p),
            E::ApiOrderSubmitted(p) => to_json(p),
            E::OperatorPasswordSet(p) | E::OperatorTotpEnrolled(p) => to_json(p),
        }
    }

    /// The stored form: (action, details JSON text). The text is serde_json's compact form of
    /// an object whose keys are sorted, exactly what the records held before events were typed.
    pub fn encode(&self) -> Result<(String, String), serde_json::Error> {
        Ok((self.action(), self.details()?.to_string()))
    }
}

#[cfg(test)]
mod tests;
