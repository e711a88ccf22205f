//! Who a command's operator is, before the account is read: what the front proved, against the
//! name the command gave (`--operator`). Pure; the station reads the credential file and the OS
//! user, then the account this names ([`claimed_operator`]).
//!
//! A name alone proves nothing. The station knows its operator from:
//! - a **credential file** (`--credential FILE`, `[operator] credential_file`): its operator;
//! - the **OS user** running the command, mapped in `[operator.os_users]` (the installation's
//!   administrator decides which login is which operator, as sudoers does): that operator;
//! - a **front** that authenticated the operator itself (the console's login): the name it
//!   passes.
//!
//! Without one of these a command is refused, whatever `--operator` says.

use super::OperatorRefused;
use crate::domain::OperatorId;

/// What the station holds as proof of who acts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// A credential file, resolved to the account `0` (by the SHA-256 of its token).
    Credential(OperatorId),
    /// The OS user running the command, and the operator `[operator.os_users]` maps it to
    /// (`None`: not mapped).
    OsUser {
        /// The login name (from the effective uid, never from the environment).
        user: String,
        /// Its operator.
        operator: Option<OperatorId>,
    },
    /// A front that authenticated its operator (the console after login): the name passed.
    Front,
}

/// The operator a command acts as: the proof's, which `claimed` (when given) must name; for a
/// front, `claimed` itself.
pub fn claimed_operator(
    proof: &Proof,
    claimed: Option<&OperatorId>,
) -> Result<OperatorId, OperatorRefused> {
    let proven = match proof {
        Proof::Credential(op) => op,
        Proof::OsUser {
            operator: Some(op), ..
        } => op,
        Proof::OsUser {
            user,
            operator: None,
        } => {
            return Err(OperatorRefused::NoProof {
                os_user: user.clone(),
            });
        }
        Proof::Front => {
            return claimed.cloned().ok_or(OperatorRefused::NoProof {
                os_user: String::new(),
            });
        }
    };
    match claimed {
        Some(c) if c != proven => Err(OperatorRefused::Mismatch {
            claimed: c.clone(),
            credential: proven.clone(),
        }),
        _ => Ok(proven.clone()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn op(s: &str) -> OperatorId {
        OperatorId::parse(s).unwrap()
    }

    #[test]
    fn a_credential_names_its_operator_and_a_different_name_is_refused() {
        let p = Proof::Credential(op("alice"));
        assert_eq!(claimed_operator(&p, None).unwrap(), op("alice"));
        assert_eq!(
            claimed_operator(&p, Some(&op("alice"))).unwrap(),
            op("alice")
        );
        assert_eq!(
            claimed_operator(&p, Some(&op("bob"))),
            Err(OperatorRefused::Mismatch {
                claimed: op("bob"),
                credential: op("alice")
            })
        );
    }

    #[test]
    fn a_mapped_os_user_is_its_operator_an_unmapped_one_proves_nothing() {
        let mapped = Proof::OsUser {
            user: "desk1".into(),
            operator: Some(op("carol")),
        };
        assert_eq!(claimed_operator(&mapped, None).unwrap(), op("carol"));
        assert!(matches!(
            claimed_operator(&mapped, Some(&op("dave"))),
            Err(OperatorRefused::Mismatch { .. })
        ));
        let unmapped = Proof::OsUser {
            user: "desk2".into(),
            operator: None,
        };
        for claimed in [None, Some(op("carol"))] {
            assert_eq!(
                claimed_operator(&unmapped, claimed.as_ref()),
                Err(OperatorRefused::NoProof {
                    os_user: "desk2".into()
                }),
                "a name alone proves nothing"
            );
        }
    }

    #[test]
    fn a_front_acts_by_the_name_it_authenticated() {
        assert_eq!(
            claimed_operator(&Proof::Front, Some(&op("erin"))).unwrap(),
            op("erin")
        );
        assert!(matches!(
            claimed_operator(&Proof::Front, None),
            Err(OperatorRefused::NoProof { .. })
        ));
    }
}
