//! The console's provisioning desk (issue 17): what a batch started from the console needs of
//! the station beyond `provision --all-approved`.
//!
//! Attribution: the CLI's batch is the station's own work (its records name `station:<id>`).
//! A batch started from the console is an operator's decision, so the station checks that the
//! logged-in operator may provision ([`Action::Provision`], the `provisioner` role) and then runs
//! the same [`Station::provision_batch`] acting for them: every record its jobs write (claim,
//! each step, the certificate, the delivery queued at the end) names the operator as actor, with
//! the station id beside it. Leases, token bindings and the takeover rules stay the station's
//! (they are about which process holds an order, not who asked).

use super::Station;
use crate::domain::{Action, OperatorId, OrderState, View};
use crate::store::{Actor, OperatorRecord, OrderSummary, StoreError};

impl Station {
    /// The same station provisioning for `operator`, once the station has checked they are a
    /// registered, enabled operator holding a role that permits [`Action::Provision`].
    pub async fn for_provisioner(&self, operator: &str) -> Result<Station, StoreError> {
        let (account, _) = self
            .acting_operator(Some(operator), Action::Provision)
            .await?;
        Ok(Station {
            job_operator: Some(account.name),
            ..self.clone()
        })
    }

    /// The operator this station provisions for, if a console batch made it.
    pub fn job_operator(&self) -> Option<&OperatorId> {
        self.job_operator.as_ref()
    }

    /// The actor of a provisioning job's records: the operator of a console batch, else the
    /// station.
    pub(super) fn job_actor(&self) -> Actor {
        match &self.job_operator {
            Some(op) => self.operator_actor_unchecked(op.as_str()),
            None => self.station_actor(),
        }
    }

    /// The account of `operator` when it may look at the console page `view` (registered,
    /// enabled, one of the view's roles); refused otherwise (`E-OPERATOR-ROLE`, ...).
    pub async fn viewer(&self, operator: &str, view: View) -> Result<OperatorRecord, StoreError> {
        let name = OperatorId::parse(operator).map_err(|e| {
            crate::domain::OperatorRefused::BadCredential {
                file: "(console session)".into(),
                problem: e.to_string(),
            }
        })?;
        let account = self
            .store
            .operator(&name)
            .await?
            .ok_or(crate::domain::OperatorRefused::NotRegistered(name))?;
        crate::domain::operator::authorize_view(
            &account.name,
            &account.roles,
            account.enabled,
            view,
        )?;
        Ok(account)
    }

    /// The approved orders waiting for a key, oldest first (what a batch takes).
    pub async fn waiting_for_keys(&self) -> Result<Vec<OrderSummary>, StoreError> {
        self.store.list_orders(Some(OrderState::Approved)).await
    }
}
