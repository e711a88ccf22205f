//! Registered operators (issue 17), pure: their roles, which role may do which action (one
//! table, [`Role::permits`]), and why the station refuses an operator ([`OperatorRefused`]).
//!
//! An operator is an account in the database, named by an [`OperatorId`]; a command that
//! changes state acts as one, identified by a credential the station resolves (see the
//! `station::operators` module). This module decides nothing about identity: it says what a
//! resolved account may do.

use super::service_request::OperatorId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// What an operator is trusted with. An account holds one or more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Takes orders in and reviews them (approve, reject), makes renewal orders.
    Reviewer,
    /// Runs the desk: ships keys, handles PIN deliveries and bank files, asks for and runs
    /// service requests, takes reports of lost keys.
    Provisioner,
    /// Revokes certificates and decides (approves, rejects) service requests.
    SecurityOfficer,
    /// Reads the trail; changes nothing.
    Auditor,
    /// Manages operator accounts and their roles.
    Administrator,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 5] = [
        Role::Reviewer,
        Role::Provisioner,
        Role::SecurityOfficer,
        Role::Auditor,
        Role::Administrator,
    ];

    /// Stable name, as stored, typed and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reviewer => "reviewer",
            Role::Provisioner => "provisioner",
            Role::SecurityOfficer => "security_officer",
            Role::Auditor => "auditor",
            Role::Administrator => "administrator",
        }
    }

    /// Parses a role name (case-insensitive, `-` taken as `_`).
    pub fn parse(s: &str) -> Option<Role> {
        let s = s.trim().to_ascii_lowercase().replace('-', "_");
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The one table of who may do what.
    pub fn permits(self, action: Action) -> bool {
        use Action as A;
        match self {
            Role::Reviewer => matches!(
                action,
                A::ImportOrder | A::ReviewOrder | A::RenewOrder | A::CancelRequest
            ),
            Role::Provisioner => matches!(
                action,
                A::ImportOrder
                    | A::Provision
                    | A::RenewOrder
                    | A::ShipOrder
                    | A::ManageDelivery
                    | A::RequestService
                    | A::RunRequest
                    | A::CancelRequest
                    | A::ReportLost
            ),
            Role::SecurityOfficer => matches!(
                action,
                A::Revoke | A::DecideRequest | A::CancelRequest | A::ReportLost | A::ManageCa
            ),
            Role::Auditor => false,
            Role::Administrator => matches!(action, A::ManageOperators | A::ManageCa),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state change an operator asks the station for, as the role table names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// `order import`.
    ImportOrder,
    /// `order approve`, `order reject`.
    ReviewOrder,
    /// `order renew`, `order reissue` (a linked order, reviewed anew).
    RenewOrder,
    /// `provision`: a batch started from the console (its records name the operator).
    Provision,
    /// `ship`.
    ShipOrder,
    /// `deliver retry|requeue|cancel`, `bank import`.
    ManageDelivery,
    /// `order revoke`, `cert revoke`.
    Revoke,
    /// `order lost` (the key's certificates are revoked at once).
    ReportLost,
    /// Asking for a service request (`pin-reset request`).
    RequestService,
    /// Approving or rejecting someone else's service request.
    DecideRequest,
    /// Carrying out an approved service request at the desk.
    RunRequest,
    /// Withdrawing a service request.
    CancelRequest,
    /// `operator add|disable|role`, `api-token add|revoke` (and deciding others' requests
    /// of these).
    ManageOperators,
    /// The CA's own operations that make a CA-certified key (`ca ocsp-signer`), asked for and
    /// approved by two different operators.
    ManageCa,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 14] = [
        Action::ImportOrder,
        Action::ReviewOrder,
        Action::RenewOrder,
        Action::Provision,
        Action::ShipOrder,
        Action::ManageDelivery,
        Action::Revoke,
        Action::ReportLost,
        Action::RequestService,
        Action::DecideRequest,
        Action::RunRequest,
        Action::CancelRequest,
        Action::ManageOperators,
        Action::ManageCa,
    ];

    /// Stable name, for messages and audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::ImportOrder => "import_order",
            Action::ReviewOrder => "review_order",
            Action::RenewOrder => "renew_order",
            Action::Provision => "provision",
            Action::ShipOrder => "ship_order",
            Action::ManageDelivery => "manage_delivery",
            Action::Revoke => "revoke",
            Action::ReportLost => "report_lost",
            Action::RequestService => "request_service",
            Action::DecideRequest => "decide_request",
            Action::RunRequest => "run_request",
            Action::CancelRequest => "cancel_request",
            Action::ManageOperators => "manage_operators",
            Action::ManageCa => "manage_ca",
        }
    }

    /// The roles that permit it (from [`Role::permits`]).
    pub fn roles(self) -> Vec<Role> {
        Role::ALL.into_iter().filter(|r| r.permits(self)).collect()
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A console page that shows more than the queue: reading changes nothing, but each shows
/// only to the roles whose work it is (an auditor reads them all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum View {
    /// The desk's keys and the approved orders waiting (`/provision`).
    Desk,
    /// Requests waiting for a second approval (`/requests`).
    Requests,
    /// Certificates and the CRL (`/certificates`).
    Certificates,
    /// PIN deliveries (`/deliveries`).
    Deliveries,
    /// The audit trail and its verification (`/audit`).
    Audit,
    /// `keystation check`'s results (`/check`).
    Check,
}

impl View {
    /// Every view.
    pub const ALL: [View; 6] = [
        View::Desk,
        View::Requests,
        View::Certificates,
        View::Deliveries,
        View::Audit,
        View::Check,
    ];

    /// Stable name, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            View::Desk => "view_desk",
            View::Requests => "view_requests",
            View::Certificates => "view_certificates",
            View::Deliveries => "view_deliveries",
            View::Audit => "view_audit",
            View::Check => "view_check",
        }
    }

    /// The roles that may look (the one table of reads).
    pub fn roles(self) -> Vec<Role> {
        use Role as R;
        let mut roles = match self {
            View::Desk | View::Deliveries => vec![R::Provisioner],
            // Administrators decide the operator and API token changes listed there.
            View::Requests => vec![
                R::Reviewer,
                R::Provisioner,
                R::SecurityOfficer,
                R::Administrator,
            ],
            View::Certificates => vec![R::Provisioner, R::SecurityOfficer],
            View::Audit | View::Check => vec![],
        };
        roles.push(R::Auditor);
        roles
    }
}

impl fmt::Display for View {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether an account holding `roles`, `enabled` or not, may look at `view`; why not otherwise.
pub fn authorize_view(
    operator: &OperatorId,
    roles: &Roles,
    enabled: bool,
    view: View,
) -> Result<(), OperatorRefused> {
    if !enabled {
        return Err(OperatorRefused::Disabled(operator.clone()));
    }
    let needs = view.roles();
    if roles.iter().any(|r| needs.contains(r)) {
        Ok(())
    } else {
        Err(OperatorRefused::MayNotSee {
            operator: operator.clone(),
            view,
            needs,
        })
    }
}

/// A set of roles, as an account holds them (ordered, no repeats).
pub type Roles = BTreeSet<Role>;

/// Parses a comma-separated role list (`reviewer,provisioner`): at least one, each known.
pub fn parse_roles(s: &str) -> Result<Roles, String> {
    let mut roles = Roles::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let role = Role::parse(part).ok_or_else(|| {
            format!(
                "unknown role {part:?}: one of {}",
                Role::ALL.map(Role::as_str).join(", ")
            )
        })?;
        roles.insert(role);
    }
    if roles.is_empty() {
        return Err("at least one role is needed".into());
    }
    Ok(roles)
}

/// The roles as stored and printed: `reviewer,provisioner`.
pub fn roles_text(roles: &Roles) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether an account holding `roles`, `enabled` or not, may do `action`; why not otherwise.
pub fn authorize(
    operator: &OperatorId,
    roles: &Roles,
    enabled: bool,
    action: Action,
) -> Result<(), OperatorRefused> {
    if !enabled {
        return Err(OperatorRefused::Disabled(operator.clone()));
    }
    if roles.iter().any(|r| r.permits(action)) {
        Ok(())
    } else {
        Err(OperatorRefused::MissingRole {
            operator: operator.clone(),
            action,
            needs: action.roles(),
        })
    }
}

/// Why the station does not let an operator act.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperatorRefused {
    /// No account has this name.
    #[error(
        "operator {0} is not registered: an administrator adds it with `keystation operator add`"
    )]
    NotRegistered(OperatorId),
    /// The account is disabled.
    #[error("operator {0} is disabled")]
    Disabled(OperatorId),
    /// The account lacks a role the action needs.
    #[error(
        "operator {operator} may not {action}: it needs the role {}",
        roles_list(needs)
    )]
    MissingRole {
        /// The operator.
        operator: OperatorId,
        /// What it tried.
        action: Action,
        /// The roles that would permit it.
        needs: Vec<Role>,
    },
    /// The account lacks a role that may look at a console page.
    #[error(
        "operator {operator} may not {view}: it needs the role {}",
        roles_list(needs)
    )]
    MayNotSee {
        /// The operator.
        operator: OperatorId,
        /// What it tried to see.
        view: View,
        /// The roles that would let it.
        needs: Vec<Role>,
    },
    /// The credential file is missing, unreadable, open to others or not a credential.
    #[error("operator credential {file}: {problem}")]
    BadCredential {
        /// The file.
        file: String,
        /// What is wrong with it (never its content).
        problem: String,
    },
    /// The credential names no account (or a removed one).
    #[error("operator credential {0}: no registered operator has this credential")]
    UnknownCredential(String),
    /// The credential is another operator's than the one named on the command line.
    #[error(
        "--operator {claimed} does not match the operator the credential or the OS user proves \
         ({credential}): act as that operator"
    )]
    Mismatch {
        /// The name given.
        claimed: OperatorId,
        /// The operator proven (by the credential, or the OS user's mapping).
        credential: OperatorId,
    },
    /// Nothing proves who acts: no credential, and the OS user (`os_user`, empty for a front)
    /// is not mapped to an operator.
    #[error(
        "no operator credential: give --credential FILE, set [operator] credential_file, or map \
         the OS user{} to an operator in [operator.os_users] (a name alone proves nothing)",
        if os_user.is_empty() { String::new() } else { format!(" {os_user}") }
    )]
    NoProof {
        /// The login name running the command.
        os_user: String,
    },
    /// An account with this name exists already.
    #[error("operator {0} exists already")]
    Exists(OperatorId),
    /// The change would leave no enabled administrator.
    #[error("operator {0} is the last enabled administrator: add another one first")]
    LastAdministrator(OperatorId),
}

fn roles_list(roles: &[Role]) -> String {
    if roles.is_empty() {
        return "(none permits it)".into();
    }
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(" or ")
}

pub mod proof;

#[cfg(test)]
mod tests;
