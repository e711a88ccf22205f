//! Provisioning one approved order onto one token.
//!
//! Steps, each journaled in the database before (`started`) and after (`done`/`failed`) it runs,
//! with an audit record each time (grouped into five transactions per order, committed where a
//! crash must not lose what came before: see `journal::durable_before`):
//!
//! 1. `claim` — the order's lease is taken (one live process per order, see [`super::lease`]),
//!    Approved/Failed → Provisioning; the order gets a token binding;
//! 2. `init_token` — `C_InitToken(label = order number, SO PIN)`; the SO PIN is derived in the
//!    vault as HMAC(vault key, token identity) and never stored. The identity is recorded BEFORE
//!    the token is touched: `serial:<serial>` for a blank token that already has a factory serial
//!    (real USB keys), `blank:<binding id>` for a blank slot without one (SoftHSM's uninitialised
//!    slot gets its serial only at `C_InitToken`); the binding later also records that serial,
//!    so the SO PIN of any token the station made can be re-derived from the database;
//! 3. `init_pin` — a user PIN from the OS CSPRNG (policy from config), set with `C_InitPIN`,
//!    sealed in the vault (AES-GCM, AAD = order + token) and stored only sealed;
//! 4. `generate_key` — the key pair, generated ON the token, private key non-extractable;
//! 5. `issue_certificate` — a CSR signed on the token, verified (proof of possession), the unit
//!    certificate issued by the CA key (in its own token). The serial is RESERVED in the database
//!    before the CA signs, so no signed certificate can ever be unknown to the station;
//! 6. `write_certificate` — the certificate written to the token under the key's `CKA_ID`;
//! 7. `write_seals` — GB/T 38540 seals as data objects (for orders with a seal service);
//! 8. `finish` — Provisioning → Provisioned.
//!
//! Recovery: if a run stops before `write_certificate` is done (crash, pulled token, error), the
//! next run starts a new attempt from `init_token`: the token is re-initialised (wiping the half
//! made key) and every certificate reserved or issued for the order but not on a token is revoked
//! (recorded in `revocations`), never left valid. After `write_certificate`, a re-run continues
//! with the remaining steps; `--reinit` forces the full restart (and revokes the certificate that
//! was on the token).
//!
//! Rooms, in the order of the pipeline:
//! - `claim`: what is checked before the order is touched, the token chosen, and the claim
//!   transaction (lease, order state, binding, journal); `next`: the claim of the next approved
//!   order, picked inside that transaction (several stations, one queue); `takeover`: another
//!   station's abandoned order, taken over according to its journal and where its key is;
//! - `job`: one run's state, and the journal bookkeeping around every step;
//! - `steps`: what a new or continued attempt does first, then the seven steps after the claim;
//! - `journal`: the job's database writes, their group commit under the order's lease, and
//!   the pure decisions on what a new run continues, redoes or revokes;
//! - [`Step`] and [`Progress`] (`step`): the steps and how their progress is reported;
//!   `token_access`: blocking token calls and the blank-token lock;
//! - [`ProvisionError`] and [`ProvisionReport`] (`error`, `report`): why a run stopped, and what
//!   was asked and done.

mod claim;
mod error;
mod job;
mod journal;
mod next;
mod report;
mod step;
mod steps;
mod takeover;
mod token_access;

pub use error::{ProvisionError, StepError};
pub use report::{ProvisionReport, ProvisionRequest};
pub use step::{Phase, Progress, Silent, Step};
pub(crate) use steps::encryption_key_id;
