//! Four-eyes on changes outside the service desk (issue 17, item 1), pure: who may act
//! (operators and their roles, API tokens), the CA's own operations that make a CA-certified
//! key (`ca ocsp-signer`), and starting over a token keystation initialised
//! (`provision ORDER --reinit`, which consumes an approved request).
//!
//! Such a change is a *station request*: it moves through the service desk's machine
//! ([`RequestState::apply`](super::RequestState::apply), with its four-eyes rule — the
//! requester never decides their own request), so there is one table of moves for every
//! request the station knows. What a request asks for is a [`StationChange`]: typed,
//! non-secret data (an operator's name and roles, a token's operator and scopes). No secret is
//! ever part of one: an operator's credential or an API token is drawn and written only when the
//! change is carried out, by the approver.
//!
//! Bootstrap ([`takes_effect_at_once`]): `init` makes one administrator. While the station has
//! exactly one enabled administrator, nobody could approve that administrator's changes of
//! operators and API tokens, so they take effect at once (audited as `bootstrap`); from the
//! moment a second enabled administrator exists, each is a request. A CA operation always needs
//! two operators (security officers or administrators).

use super::api::{Scopes, scopes_text};
use super::identifiers::{OrderNo, TokenSerial};
use super::operator::{Action, Roles, roles_text};
use super::service_request::OperatorId;
use serde::{Deserialize, Serialize};

/// What a station request asks for (stored as JSON; never a secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StationChange {
    /// `operator add NAME --role R`: a new account (its credential written at approval).
    OperatorAdd {
        /// The new operator.
        operator: OperatorId,
        /// Its roles.
        roles: Roles,
    },
    /// `operator disable NAME`.
    OperatorDisable {
        /// The operator.
        operator: OperatorId,
    },
    /// `operator enable NAME`.
    OperatorEnable {
        /// The operator.
        operator: OperatorId,
    },
    /// `operator role NAME --set R`: its roles replaced.
    OperatorRoles {
        /// The operator.
        operator: OperatorId,
        /// Its new roles.
        roles: Roles,
    },
    /// `api-token add --operator NAME --scope S`: a new token (written at approval).
    ApiTokenAdd {
        /// The operator it acts as.
        operator: OperatorId,
        /// Its scopes.
        scopes: Scopes,
    },
    /// `api-token revoke ID`.
    ApiTokenRevoke {
        /// The token's id.
        token_id: i64,
    },
    /// `ca ocsp-signer`: a new delegated OCSP signer, a key the CA certifies.
    OcspSigner,
    /// `reinit request ORDER`: the order's token started over by `provision ORDER --reinit`
    /// (wiped, its certificate revoked), which consumes the approved request.
    #[serde(rename = "provision_reinit")]
    Reinit {
        /// The order.
        order_no: OrderNo,
        /// The token bound to it when asked, if any.
        token_serial: Option<TokenSerial>,
    },
}

/// Which command handles a request (its `approve`, `reject`, `cancel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeFamily {
    /// `keystation operator ...`.
    Operator,
    /// `keystation api-token ...`.
    ApiToken,
    /// `keystation ca ...`.
    Ca,
    /// `keystation reinit ...`.
    Reinit,
}

impl ChangeFamily {
    /// The command that decides its requests.
    pub fn command(self) -> &'static str {
        match self {
            ChangeFamily::Operator => "operator",
            ChangeFamily::ApiToken => "api-token",
            ChangeFamily::Ca => "ca",
            ChangeFamily::Reinit => "reinit",
        }
    }
}

impl StationChange {
    /// Every kind's stable name, as stored.
    pub const KINDS: [&'static str; 8] = [
        "operator_add",
        "operator_disable",
        "operator_enable",
        "operator_roles",
        "api_token_add",
        "api_token_revoke",
        "ocsp_signer",
        "provision_reinit",
    ];

    /// Stable name of its kind, as stored and printed.
    pub fn kind(&self) -> &'static str {
        let i = match self {
            StationChange::OperatorAdd { .. } => 0,
            StationChange::OperatorDisable { .. } => 1,
            StationChange::OperatorEnable { .. } => 2,
            StationChange::OperatorRoles { .. } => 3,
            StationChange::ApiTokenAdd { .. } => 4,
            StationChange::ApiTokenRevoke { .. } => 5,
            StationChange::OcspSigner => 6,
            StationChange::Reinit { .. } => 7,
        };
        Self::KINDS[i]
    }

    /// What it is about (at most one open request per kind and subject): the operator, the
    /// token, the CA.
    pub fn subject(&self) -> String {
        match self {
            StationChange::OperatorAdd { operator, .. }
            | StationChange::OperatorDisable { operator }
            | StationChange::OperatorEnable { operator }
            | StationChange::OperatorRoles { operator, .. } => format!("operator:{operator}"),
            StationChange::ApiTokenAdd { operator, .. } => format!("api_token_of:{operator}"),
            StationChange::ApiTokenRevoke { token_id } => format!("api_token:{token_id}"),
            StationChange::OcspSigner => "ca:ocsp_signer".into(),
            StationChange::Reinit { order_no, .. } => format!("order:{order_no}"),
        }
    }

    /// The command that handles it.
    pub fn family(&self) -> ChangeFamily {
        match self {
            StationChange::OperatorAdd { .. }
            | StationChange::OperatorDisable { .. }
            | StationChange::OperatorEnable { .. }
            | StationChange::OperatorRoles { .. } => ChangeFamily::Operator,
            StationChange::ApiTokenAdd { .. } | StationChange::ApiTokenRevoke { .. } => {
                ChangeFamily::ApiToken
            }
            StationChange::OcspSigner => ChangeFamily::Ca,
            StationChange::Reinit { .. } => ChangeFamily::Reinit,
        }
    }

    /// What the requester must be permitted ([`super::Role::permits`]).
    pub fn action(&self) -> Action {
        match self.family() {
            ChangeFamily::Operator | ChangeFamily::ApiToken => Action::ManageOperators,
            ChangeFamily::Ca => Action::ManageCa,
            ChangeFamily::Reinit => Action::Provision,
        }
    }

    /// What the approver (or rejecter) must be permitted: the same as the requester, but a
    /// reinit, which a security officer decides like a service request.
    pub fn decide_action(&self) -> Action {
        match self.family() {
            ChangeFamily::Reinit => Action::DecideRequest,
            _ => self.action(),
        }
    }

    /// What withdrawing it needs: the requester's permission, or for a reinit any operator
    /// who may withdraw a service request.
    pub fn cancel_action(&self) -> Action {
        match self.family() {
            ChangeFamily::Reinit => Action::CancelRequest,
            _ => self.action(),
        }
    }

    /// Carried out by its approval (everything but a reinit, which `provision --reinit`
    /// carries out where the token is).
    pub fn runs_at_approval(&self) -> bool {
        self.family() != ChangeFamily::Reinit
    }

    /// Whether carrying it out writes a new secret to a file the approver names (a credential,
    /// an API token).
    pub fn writes_secret(&self) -> bool {
        matches!(
            self,
            StationChange::OperatorAdd { .. } | StationChange::ApiTokenAdd { .. }
        )
    }

    /// One line for a listing (English; the console says it in its own words).
    pub fn summary(&self) -> String {
        match self {
            StationChange::OperatorAdd { operator, roles } => {
                format!("add operator {operator} ({})", roles_text(roles))
            }
            StationChange::OperatorDisable { operator } => format!("disable operator {operator}"),
            StationChange::OperatorEnable { operator } => format!("enable operator {operator}"),
            StationChange::OperatorRoles { operator, roles } => {
                format!("set the roles of {operator} to {}", roles_text(roles))
            }
            StationChange::ApiTokenAdd { operator, scopes } => {
                format!("add an API token for {operator} ({})", scopes_text(scopes))
            }
            StationChange::ApiTokenRevoke { token_id } => format!("revoke API token {token_id}"),
            StationChange::OcspSigner => "issue a new OCSP signer".into(),
            StationChange::Reinit {
                order_no,
                token_serial,
            } => match token_serial {
                Some(t) => format!("start over the token {t} of order {order_no} (--reinit)"),
                None => format!("start over the token of order {order_no} (--reinit)"),
            },
        }
    }
}

/// Whether `change`, asked for by an administrator while `enabled_administrators` accounts are
/// enabled administrators, takes effect at once (bootstrap: nobody else could approve it)
/// instead of being recorded as a request. Only changes of operators and API tokens; a CA
/// operation always needs a second operator.
pub fn takes_effect_at_once(change: &StationChange, enabled_administrators: usize) -> bool {
    change.action() == Action::ManageOperators && is_bootstrap(enabled_administrators)
}

/// Whether a station with `enabled_administrators` is in bootstrap: its one administrator's
/// changes of operators and API tokens take effect at once (`check` reports it).
pub fn is_bootstrap(enabled_administrators: usize) -> bool {
    enabled_administrators <= 1
}

#[cfg(test)]
mod tests;
