//! The statuses the station journals as text: a provisioning step's and a certificate's (and a
//! certificate's purpose).
//!
//! The store keeps them as their snake_case names (the columns `provision_steps.status` and
//! `certificates.status`) and parses them when it reads a row, so the rest of the station never
//! compares strings; `--json` output shows the same names.

use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// A stored status name that is not one of the type's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}")]
pub struct UnknownStatus {
    /// Which status (`step status`, `certificate status`).
    pub kind: &'static str,
    /// The value found.
    pub value: String,
}

macro_rules! status_enum {
    ($(#[$m:meta])* $name:ident, $kind:literal { $($(#[$vm:meta])* $v:ident => $s:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vm])* $v,)*
        }

        impl $name {
            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$v => $s,)*
                }
            }
        }

        impl FromStr for $name {
            type Err = UnknownStatus;
            fn from_str(s: &str) -> Result<Self, UnknownStatus> {
                match s {
                    $($s => Ok($name::$v),)*
                    other => Err(UnknownStatus { kind: $kind, value: other.to_string() }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

status_enum! {
    /// Where a provisioning step stands in the journal.
    StepStatus, "step status" {
        /// Journaled as begun; a crash leaves it so, and a re-run resumes it.
        Started => "started",
        /// Finished.
        Done => "done",
        /// Failed (the order is Failed).
        Failed => "failed",
    }
}

status_enum! {
    /// Where a certificate the CA issued stands.
    CertificateStatus, "certificate status" {
        /// Its serial is reserved; the CA may or may not have signed it.
        Reserved => "reserved",
        /// Signed, not yet on the token.
        Issued => "issued",
        /// Written to the token.
        OnToken => "on_token",
        /// Revoked.
        Revoked => "revoked",
    }
}

status_enum! {
    /// What a certificate's key is for: one signing certificate per order, and with an SM2 dual
    /// certificate (双证书) an encryption certificate beside it.
    CertificatePurpose, "certificate purpose" {
        /// The key made on the token: signatures (the unit certificate).
        Signing => "signing",
        /// The encryption key pair made by the station's key management and escrowed.
        Encryption => "encryption",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for s in [StepStatus::Started, StepStatus::Done, StepStatus::Failed] {
            assert_eq!(s.as_str().parse::<StepStatus>(), Ok(s));
        }
        for c in [
            CertificateStatus::Reserved,
            CertificateStatus::Issued,
            CertificateStatus::OnToken,
            CertificateStatus::Revoked,
        ] {
            assert_eq!(c.as_str().parse::<CertificateStatus>(), Ok(c));
            assert_eq!(
                serde_json::to_value(c).ok(),
                Some(serde_json::Value::String(c.as_str().into()))
            );
        }
        let err = "Done".parse::<StepStatus>().err();
        assert_eq!(
            err.map(|e| e.to_string()),
            Some("unknown step status \"Done\"".to_string())
        );
        assert!("onToken".parse::<CertificateStatus>().is_err());
        for p in [CertificatePurpose::Signing, CertificatePurpose::Encryption] {
            assert_eq!(p.as_str().parse::<CertificatePurpose>(), Ok(p));
        }
    }
}
