//! The console's provisioning desk (issue 17): what a batch started from the console needs of
//! the station beyond `provision --all-approved`.
//!
//! Attribution: provisioning is an operator's decision, from the console or the CLI. The station
//! checks that the operator (logged in at the console, or proven by the command's credential or
//! mapped OS user) may provision ([`Action::Provision`], the `provisioner` role) and then runs
//! [`Station::provision_batch`] (or one order's job) acting for them: every record its jobs write (claim,
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

    /// The station a provisioning entry ([`Station::provision`], [`Station::provision_next`],
    /// [`Station::provision_batch`]) works as: the operator of a console batch
    /// ([`Station::for_provisioner`]), else the operator the command proves (credential or
    /// mapped OS user) holding [`Action::Provision`]. Provisioning is an operator's act: without
    /// that proof it is refused (`E-OPERATOR-CREDENTIAL`) before anything is claimed.
    pub(super) async fn as_provisioning_operator(&self) -> Result<Station, StoreError> {
        if self.job_operator.is_some() {
            return Ok(self.clone());
        }
        let (account, _) = self.acting_operator(None, Action::Provision).await?;
        Ok(Station {
            job_operator: Some(account.name),
            ..self.clone()
        })
    }

    /// The operator this station provisions for, once a provisioning entry resolved it.
    pub fn job_operator(&self) -> Option<&OperatorId> {
        self.job_operator.as_ref()
    }

    /// The actor of a provisioning job's records: the operator the provisioning entry resolved
    /// ([`Station::as_provisioning_operator`]; the station only if a job ever ran without one).
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
