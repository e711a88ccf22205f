//! Orchestration: the jobs an operator or a batch runs, built from the domain, the store and
//! (later) the token, CA, seal and delivery modules.
//!
//! A [`Station`] bundles what every job needs: configuration, store, clock and the identity under
//! which it acts. Jobs never read the wall clock or the environment themselves.

pub mod anchor;
pub mod audit_verify;
pub mod batch;
pub mod check;
pub mod delivery;
pub mod demo;
pub mod hsm;
pub mod init;
pub mod input_file;
pub mod intake;
pub mod lease;
pub mod provision;
pub mod review;
pub mod revoke;
pub mod seals;
pub mod workstation;

use crate::clock::Clock;
use crate::config::Config;
use crate::store::{Actor, Store};
use std::sync::Arc;

/// A running station: configuration, database, clock.
#[derive(Debug, Clone)]
pub struct Station {
    /// Configuration.
    pub config: Arc<Config>,
    /// Database.
    pub store: Store,
    /// Time source.
    pub clock: Arc<dyn Clock>,
}

/// Why a station could not be opened.
#[derive(Debug, thiserror::Error)]
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
    /// file's 0600), then the database is opened (applying migrations).
    pub async fn open(config: Config, clock: Arc<dyn Clock>) -> Result<Station, OpenError> {
        crate::private_files::check_dir(&config.data_dir(), "data directory")?;
        let store = Store::connect(&config.database_url()).await?;
        Ok(Station {
            config: Arc::new(config),
            store,
            clock,
        })
    }

    /// The actor for automated work of this station, with a fresh operation id.
    pub fn station_actor(&self) -> Actor {
        Actor {
            name: format!("station:{}", self.config.station.id),
            operation_id: new_operation_id(),
        }
    }

    /// The actor for an operator's command, with a fresh operation id.
    pub fn operator_actor(&self, operator: &str) -> Actor {
        Actor {
            name: operator.to_string(),
            operation_id: new_operation_id(),
        }
    }
}

/// A fresh operation id (UUID v4 from the OS CSPRNG).
pub fn new_operation_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
