//! The stable code of each of the station's errors (see [`crate::error_code`]): one exhaustive
//! match per error type, so a new variant does not compile without its code. A variant that only
//! passes on an error of another module gives that error's code.

use super::OpenError;
use super::anchor::AnchorError;
use super::audit_verify::AuditVerifyError;
use super::batch::BatchError;
use super::crl::CrlError;
use super::delivery::DeliveryError;
use super::demo::DemoError;
use super::hsm::HsmError;
use super::init::InitError;
use super::input_file::InputFileError;
use super::intake::IntakeError;
use super::inventory::InventoryError;
use super::join::JoinError;
use super::ocsp::OcspStartError;
use super::ocsp_signer::OcspSignerError;
use super::provision::{ProvisionError, StepError};
use super::renewal::RenewalError;
use super::seal_inspection::SealInspectionError;
use super::service_desk::ServiceDeskError;
use super::setup::SetupError;
use crate::error_code::{self as ec, Coded, ErrorCode};

impl Coded for OpenError {
    fn code(&self) -> ErrorCode {
        match self {
            OpenError::NotPrivate(e) => e.code(),
            OpenError::Store(e) => e.code(),
        }
    }
}

impl Coded for CrlError {
    fn code(&self) -> ErrorCode {
        match self {
            CrlError::Url(_) => ec::CONFIG_INVALID,
            CrlError::Revocation { .. } => ec::STORE_CORRUPT,
            CrlError::Hsm(e) => e.code(),
            CrlError::Token(e) => e.code(),
            CrlError::Ca(e) => e.code(),
            CrlError::Store(e) => e.code(),
            CrlError::Publish { .. } => ec::CRL_PUBLISH,
        }
    }
}

impl Coded for IntakeError {
    fn code(&self) -> ErrorCode {
        match self {
            IntakeError::Invalid(_) => ec::INPUT_INVALID,
            IntakeError::File { .. } => ec::INPUT_FILE,
            IntakeError::Store(e) => e.code(),
        }
    }
}

impl Coded for InputFileError {
    fn code(&self) -> ErrorCode {
        match self {
            InputFileError::TooLarge { .. }
            | InputFileError::NotRegularFile
            | InputFileError::Io(_) => ec::INPUT_FILE,
        }
    }
}

impl Coded for ProvisionError {
    fn code(&self) -> ErrorCode {
        match self {
            ProvisionError::NotFound(_) => ec::ORDER_NOT_FOUND,
            ProvisionError::State { .. } => ec::ORDER_STATE,
            ProvisionError::ClaimedElsewhere { .. } => ec::ORDER_CLAIMED,
            ProvisionError::Held { .. } => ec::LEASE_HELD,
            ProvisionError::TokenRefused { .. } => ec::TOKEN_REFUSED,
            ProvisionError::NoBlankToken(_) => ec::NO_BLANK_TOKEN,
            ProvisionError::ReinitNotApproved { .. } => ec::REINIT_NOT_APPROVED,
            // An unconfirmed unlock code must be confirmed before the re-run: its own code.
            ProvisionError::Step {
                source: StepError::UnlockUnconfirmed { .. },
                ..
            } => ec::UNLOCK_UNCONFIRMED,
            // The step's own cause is printed after the message; what the operator does next
            // (resume the order) is the same whatever it was.
            ProvisionError::Step { .. } => ec::PROVISION_STEP,
            ProvisionError::Store(e) => e.code(),
        }
    }
}

impl Coded for StepError {
    fn code(&self) -> ErrorCode {
        match self {
            StepError::Token(e) => e.code(),
            StepError::Ca(e) => e.code(),
            StepError::Store(e) => e.code(),
            StepError::Seal(e) => e.code(),
            StepError::Injected(e) => e.code(),
            StepError::Random(_) => ec::RANDOM,
            StepError::Envelope(e) => e.code(),
            StepError::UnlockUnconfirmed { .. } => ec::UNLOCK_UNCONFIRMED,
            StepError::Inconsistent(_) => ec::INCONSISTENT_RECORDS,
        }
    }
}

impl Coded for DeliveryError {
    fn code(&self) -> ErrorCode {
        match self {
            DeliveryError::Store(e) => e.code(),
            DeliveryError::Token(e) => e.code(),
            DeliveryError::Hsm(e) => e.code(),
            DeliveryError::Sms(e) => e.code(),
            DeliveryError::Email(e) => e.code(),
            DeliveryError::BankFile { .. } => ec::BANK_FILE,
            DeliveryError::Io { .. } => ec::IO,
            DeliveryError::SecretFile { .. } => ec::SECRET_FILE,
            DeliveryError::NotPrivate(e) => e.code(),
            DeliveryError::Locked(_) => ec::DELIVERY_LOCKED,
            DeliveryError::Invalid(_) => ec::USAGE,
            DeliveryError::Refused(_) => ec::OPERATION_REFUSED,
        }
    }
}

impl Coded for ServiceDeskError {
    fn code(&self) -> ErrorCode {
        match self {
            ServiceDeskError::Store(e) => e.code(),
            ServiceDeskError::Token(e) => e.code(),
            ServiceDeskError::Hsm(e) => e.code(),
            ServiceDeskError::Delivery(e) => e.code(),
            ServiceDeskError::Injected(e) => e.code(),
            ServiceDeskError::Invalid(_) => ec::USAGE,
            ServiceDeskError::NotRunnable { .. } => ec::REQUEST_TRANSITION,
            ServiceDeskError::Refused { .. } => ec::OPERATION_REFUSED,
            ServiceDeskError::RetireRefused { .. } => ec::RETIRE_REFUSED,
            ServiceDeskError::ReissueRefused { .. } => ec::REISSUE_REFUSED,
            ServiceDeskError::Inconsistent(_) => ec::INCONSISTENT_RECORDS,
            ServiceDeskError::UnlockCode(_) => ec::UNLOCK_CODE,
            ServiceDeskError::UnlockSerial { .. } => ec::UNLOCK_SERIAL,
            ServiceDeskError::UnlockNoEmail { .. } => ec::UNLOCK_NO_EMAIL,
            ServiceDeskError::UnlockInDoubt { .. } => ec::UNLOCK_IN_DOUBT,
            ServiceDeskError::UnlockSend { .. } => ec::UNLOCK_SEND,
            ServiceDeskError::UnlockUnconfirmed { .. } => ec::UNLOCK_UNCONFIRMED,
            ServiceDeskError::ApprovedNotDone { cause, .. } => cause.code(),
        }
    }
}

impl Coded for HsmError {
    fn code(&self) -> ErrorCode {
        match self {
            HsmError::PinFile { .. } => ec::PIN_FILE,
            HsmError::CaCertificate { .. } => ec::CA_CERTIFICATE,
            HsmError::NotPrivate(e) => e.code(),
            HsmError::Token(e) => e.code(),
        }
    }
}

impl Coded for AnchorError {
    fn code(&self) -> ErrorCode {
        match self {
            AnchorError::Hsm(e) => e.code(),
            AnchorError::Store(e) => e.code(),
            AnchorError::Token(e) => e.code(),
            AnchorError::Refused(_) => ec::AUDIT_ANCHOR_REFUSED,
        }
    }
}

impl Coded for AuditVerifyError {
    fn code(&self) -> ErrorCode {
        match self {
            AuditVerifyError::Store(e) => e.code(),
            AuditVerifyError::Vault(_) => ec::AUDIT_VAULT_UNREADABLE,
        }
    }
}

impl Coded for InitError {
    fn code(&self) -> ErrorCode {
        match self {
            InitError::Exists(_) => ec::STATION_TOKEN_EXISTS,
            InitError::NoBlank(_) => ec::STATION_NO_BLANK_TOKEN,
            InitError::ExistingCa(_) => ec::EXISTING_CA,
            InitError::Token(e) => e.code(),
            InitError::Ca(e) => e.code(),
            InitError::Io { .. } => ec::IO,
            InitError::Random(_) => ec::RANDOM,
        }
    }
}

impl Coded for SetupError {
    fn code(&self) -> ErrorCode {
        match self {
            SetupError::DirectoryTaken(_) => ec::DIRECTORY_TAKEN,
            SetupError::Invalid(_) => ec::INPUT_INVALID,
            SetupError::Config(e) => e.code(),
            // Named by the operator (`--existing-ca-cert`): bad input, not a failure.
            SetupError::ExistingCaFile(_) => ec::INPUT_FILE,
            SetupError::Hsm(e) => e.code(),
            SetupError::Io { .. } => ec::IO,
            SetupError::Database(e) => e.code(),
            SetupError::Store(e) => e.code(),
            SetupError::Operator(e) => e.code(),
            SetupError::Material(e) => e.code(),
            SetupError::Join(e) => e.code(),
            SetupError::JoinUsage(_) => ec::USAGE,
            SetupError::Token(e) => e.code(),
            SetupError::Details(_) => ec::OUTPUT,
            SetupError::Anchor(e) => e.code(),
        }
    }
}

impl Coded for DemoError {
    fn code(&self) -> ErrorCode {
        match self {
            DemoError::Io(_) => ec::IO,
            DemoError::Step { .. } => ec::DEMO_STEP,
        }
    }
}

impl Coded for InventoryError {
    fn code(&self) -> ErrorCode {
        match self {
            InventoryError::Token(e) => e.code(),
            InventoryError::Store(e) => e.code(),
        }
    }
}

impl Coded for SealInspectionError {
    fn code(&self) -> ErrorCode {
        match self {
            SealInspectionError::SealFile { .. } => ec::INPUT_FILE,
            SealInspectionError::NoCa => ec::USAGE,
            // A CA certificate named by the operator, or the station's, read for this
            // inspection only: refused as input, as the seal file is.
            SealInspectionError::CaFile(_) => ec::INPUT_FILE,
            SealInspectionError::Token(e) => e.code(),
            SealInspectionError::Store(e) => e.code(),
        }
    }
}

impl Coded for JoinError {
    fn code(&self) -> ErrorCode {
        match self {
            JoinError::NotReachable { .. } => ec::INSTALLATION_UNREACHABLE,
            JoinError::Mismatch { .. } => ec::INSTALLATION_MISMATCH,
            JoinError::Token(e) => e.code(),
        }
    }
}

impl Coded for BatchError {
    fn code(&self) -> ErrorCode {
        match self {
            BatchError::Store(e) => e.code(),
            BatchError::Hsm(e) => e.code(),
        }
    }
}

impl Coded for OcspSignerError {
    fn code(&self) -> ErrorCode {
        match self {
            OcspSignerError::Hsm(e) => e.code(),
            OcspSignerError::Token(e) => e.code(),
            OcspSignerError::Make(e) => e.code(),
            OcspSignerError::Store(e) => e.code(),
        }
    }
}

impl Coded for OcspStartError {
    fn code(&self) -> ErrorCode {
        match self {
            OcspStartError::NoSigner => ec::OCSP_NO_SIGNER,
            OcspStartError::Ocsp(_) => ec::OCSP_RESPONDER,
            OcspStartError::Hsm(e) => e.code(),
            OcspStartError::Token(e) => e.code(),
            OcspStartError::Store(e) => e.code(),
        }
    }
}

impl Coded for RenewalError {
    fn code(&self) -> ErrorCode {
        match self {
            RenewalError::Store(e) => e.code(),
            RenewalError::Invalid(_) => ec::USAGE,
            RenewalError::NoLiveCertificate { .. } => ec::RENEWAL_NO_CERTIFICATE,
            RenewalError::NotYetOpen { .. } => ec::RENEWAL_NOT_OPEN,
            RenewalError::Pending { .. } => ec::RENEWAL_PENDING,
            RenewalError::Numbering { .. } => ec::RENEWAL_NUMBER,
        }
    }
}

impl Coded for crate::domain::OperatorRefused {
    fn code(&self) -> ErrorCode {
        use crate::domain::OperatorRefused as R;
        match self {
            R::NotRegistered(_) => ec::OPERATOR_UNKNOWN,
            R::Disabled(_) => ec::OPERATOR_DISABLED,
            R::MissingRole { .. } | R::MayNotSee { .. } => ec::OPERATOR_ROLE,
            R::BadCredential { .. }
            | R::UnknownCredential(_)
            | R::Mismatch { .. }
            | R::NoProof { .. } => ec::OPERATOR_CREDENTIAL,
            R::Exists(_) => ec::OPERATOR_EXISTS,
            R::LastAdministrator(_) => ec::OPERATOR_LAST_ADMIN,
        }
    }
}

impl Coded for super::operators::OperatorError {
    fn code(&self) -> ErrorCode {
        use super::operators::OperatorError as E;
        match self {
            E::Store(e) => e.code(),
            E::Invalid(_) => ec::USAGE,
            E::Random(_) => ec::RANDOM,
            E::CredentialFile { .. } => ec::OPERATOR_CREDENTIAL,
            E::Password(_) => ec::OPERATOR_PASSWORD,
            E::Hsm(e) => e.code(),
        }
    }
}
