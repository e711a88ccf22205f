//! Orchestration: the jobs an operator or a batch runs, built from the domain, the store, the
//! tokens, the CA, the seals and the delivery channels.
//!
//! [`Station`] is the one door. A front (the command line, the coming console) opens one per
//! command, bound to that command's [`OperationContext`], and calls its query and command
//! methods; the configuration, the database and the clock stay inside. Every audit record the
//! command writes carries the context's operation id, and so does every error the front prints
//! (with the error's stable [`error_code`]), so an operator can find the records of a failed
//! command. Jobs never read the wall clock or the environment themselves.
//!
//! Blocking PKCS#11 work crosses into async inside the station's methods, never in a front.

pub mod anchor;
pub mod api_orders;
pub mod api_tokens;
pub mod api_webhook;
pub mod argument;
pub mod audit_verify;
pub mod batch;
pub mod check;
pub mod console;
pub mod crl;
pub mod delivery;
pub mod demo;
pub mod desk;
mod error_codes;
pub mod fleet;
pub mod four_eyes;
pub mod hsm;
pub mod init;
pub mod input_file;
pub mod intake;
pub mod inventory;
pub mod join;
mod join_error;
pub mod lease;
pub mod login;
pub mod ocsp;
pub mod ocsp_signer;
pub mod operation;
pub mod operators;
pub mod provision;
pub mod queries;
pub mod renewal;
pub mod review;
pub mod revoke;
pub mod seal_inspection;
pub mod seals;
pub mod service_desk;
pub mod setup;
pub mod workstation;

pub use crate::error_code;
/// Sets the process's umask so that every file the station creates is private (fronts call it
/// first thing).
pub use crate::private_files::restrict_umask;
/// Records the fronts show as they are.
pub use crate::store::{
    ApiTokenRecord, AttemptRecord, Binding, CertificateRecord, DeliveryFilter, DeliveryRecord,
    OperatorRecord, OrderRecord, OrderSummary, RequestStepRecord, ServiceRequestFilter,
    ServiceRequestRecord, StationRequestRecord, UnlockRecord,
};
pub use operation::{OperationContext, OperationId};

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::random::{OsRandom, Random};
use crate::store::{Actor, Store};
use delivery::{DeliveryChannels, DeliveryError};
use hsm::{Hsm, HsmError, blocking};
use std::sync::Arc;

/// A running station, acting for one operation: configuration, database, clock, random source.
#[derive(Debug, Clone)]
pub struct Station {
    config: Arc<Config>,
    store: Store,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    operation: OperationContext,
    /// How the station knows who acts (see [`operators`]).
    identity: operators::Identity,
    /// The operator a console batch provisions for (see [`desk`]): its jobs' records name
    /// them; `None`, the station's own work.
    job_operator: Option<crate::domain::OperatorId>,
}

/// Why a station could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The data directory is missing or open to group or others (it holds personal data).
    #[error(transparent)]
    NotPrivate(#[from] crate::private_files::NotPrivate),
    /// The database could not be opened.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl Station {
    /// Opens the station: its data directory must be private (mode 0700, like the station PIN
    /// file's 0600), then the database is opened (applying migrations). It acts for a new
    /// operation; [`Station::for_operation`] binds it to another.
    pub async fn open(config: Config, clock: Arc<dyn Clock>) -> Result<Station, OpenError> {
        crate::private_files::check_dir(&config.data_dir(), "data directory")?;
        let store = Store::connect(&config.database_url()).await?;
        Ok(Station {
            config: Arc::new(config),
            store,
            clock,
            random: Arc::new(OsRandom),
            operation: OperationContext::new(),
            identity: operators::Identity::default(),
            job_operator: None,
        })
    }

    /// The same station drawing its randomness from `random` (tests:
    /// [`crate::random::SeededRandom`]); [`Station::open`] gives it the OS CSPRNG.
    pub fn with_random(self, random: Arc<dyn Random>) -> Station {
        Station { random, ..self }
    }

    /// Opens the station on the system clock for the command `operation` (what a front does).
    pub async fn open_for(
        config: Config,
        operation: &OperationContext,
    ) -> Result<Station, OpenError> {
        let station = Station::open(config, Arc::new(SystemClock)).await?;
        Ok(station.for_operation(operation))
    }

    /// The same station acting for `operation` (a console opens the station once and binds it
    /// to each request).
    pub fn for_operation(&self, operation: &OperationContext) -> Station {
        Station {
            operation: operation.clone(),
            ..self.clone()
        }
    }

    /// The operation this station acts for.
    pub fn operation(&self) -> &OperationContext {
        &self.operation
    }

    /// The station clock's time (what a front passes to the methods that take one).
    pub fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }

    /// Opens a write transaction stamped with the station clock's time.
    pub(crate) async fn begin_write(&self) -> Result<crate::store::Tx, crate::store::StoreError> {
        self.store.begin_write(self.clock.now()).await
    }

    /// The configuration (read-only).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Closes the database connections (at the end of a process that opened many stations).
    pub async fn close(&self) {
        self.store.close().await;
    }

    /// Opens the station's HSM context: CA and vault tokens, the station PIN, the CA
    /// certificate (see [`Hsm::open`]).
    pub async fn open_hsm(&self) -> Result<Hsm, HsmError> {
        let config = self.config.clone();
        blocking(|| Hsm::open(config))
    }

    /// The PIN delivery channels, as the configuration sets them up.
    pub fn delivery_channels(&self) -> Result<DeliveryChannels, DeliveryError> {
        DeliveryChannels::from_config(&self.config, self.clock.clone())
    }

    /// The actor for automated work of this station, in the bound operation.
    pub fn station_actor(&self) -> Actor {
        Actor {
            name: format!("station:{}", self.config.station.id),
            station_id: Some(self.config.station.id.clone()),
            operation_id: self.operation.id().to_string(),
        }
    }
}
