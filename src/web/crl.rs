//! The CA's CRL at its distribution point: `GET <path of ca.crl_url>` answers the newest CRL
//! the installation has issued (`application/pkix-crl`, DER) with the caching headers relying
//! parties expect (set by `web::cache`, as for OCSP): `Last-Modified` thisUpdate, `Expires`
//! nextUpdate, `max-age` counting down to it, an `ETag` of CRL number and digest, `304` for a
//! matching `If-None-Match`; `404` before the first CRL.
//!
//! The CRL served lives in a [`CrlSlot`], refreshed by the server's CRL tick ([`tick`]): every
//! [`TICK`] it asks the station for the next CRL when one is due (a revocation not yet listed,
//! here or at another station; a quarter of the validity left) and takes the newest one from
//! the store, so a CRL issued by another station of the installation is served within a tick.

use super::Periodic;
use super::cache::{Cacheable, cached};
use crate::station::Station;
use crate::station::crl::CurrentCrl;
use crate::station::hsm::Hsm;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::Digest;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// How often the CRL tick runs.
pub const TICK: Duration = Duration::from_secs(2);

const PKIX_CRL: &str = "application/pkix-crl";

/// The CRL the server hands out.
#[derive(Debug, Clone, Default)]
pub struct CrlSlot(Arc<RwLock<Option<Arc<Served>>>>);

#[derive(Debug)]
struct Served {
    crl: CurrentCrl,
    etag: String,
}

impl CrlSlot {
    /// Serves `crl` from now on (unless it is the one served already).
    pub fn set(&self, crl: CurrentCrl) {
        if self.number() == Some(crl.number) {
            return;
        }
        let digest = hex::encode(sha2::Sha256::digest(&crl.der));
        let served = Served {
            etag: format!("{}-{}", crl.number, &digest[..16]),
            crl,
        };
        if let Ok(mut slot) = self.0.write() {
            *slot = Some(Arc::new(served));
        }
    }

    /// The number of the CRL served, if any.
    pub fn number(&self) -> Option<i64> {
        self.served().map(|s| s.crl.number)
    }

    fn served(&self) -> Option<Arc<Served>> {
        self.0.read().ok().and_then(|slot| slot.clone())
    }
}

#[derive(Clone)]
struct Crl {
    slot: CrlSlot,
    station: Station,
}

/// The CRL's route at `path` (the path of `ca.crl_url`, e.g. `/unit-ca.crl`).
pub fn routes(slot: CrlSlot, station: Station, path: &str) -> Router {
    Router::new()
        .route(path, get(get_crl))
        .with_state(Crl { slot, station })
}

async fn get_crl(State(crl): State<Crl>, headers: HeaderMap) -> Response {
    let Some(served) = crl.slot.served() else {
        return (StatusCode::NOT_FOUND, "no CRL has been issued yet\n").into_response();
    };
    cached(
        Cacheable {
            der: &served.crl.der,
            content_type: PKIX_CRL,
            this_update: served.crl.this_update,
            next_update: served.crl.next_update,
            etag: &served.etag,
        },
        headers.get(header::IF_NONE_MATCH),
        crl.station.now(),
    )
}

/// The server's CRL tick: the next CRL when one is due (`Station::crl_tick`, signed with `hsm`),
/// then the newest CRL of the store into `slot`. Failures are logged when they start and when
/// they end; the CRL served stays the last one read.
pub fn tick(station: Station, hsm: Arc<Hsm>, slot: CrlSlot) -> Periodic {
    let failing = Arc::new(AtomicBool::new(false));
    Periodic::new("crl", TICK, move || {
        let (station, hsm, slot, failing) =
            (station.clone(), hsm.clone(), slot.clone(), failing.clone());
        async move {
            let done = async {
                let ticked = station.crl_tick(&hsm, station.now()).await?;
                if let Some((due, report)) = &ticked.issued {
                    tracing::info!(number = report.number, due = ?due, "CRL issued");
                }
                if let Some(crl) = station.current_crl().await? {
                    slot.set(crl);
                }
                Ok::<_, crate::station::crl::CrlError>(())
            };
            match done.await {
                Ok(()) if failing.swap(false, Ordering::SeqCst) => {
                    tracing::warn!("CRL: issuing and reading CRLs works again");
                }
                Ok(()) => {}
                Err(e) if !failing.swap(true, Ordering::SeqCst) => {
                    tracing::warn!(error = %e, "CRL: the CRL tick failed; the CRL served stays the last one read");
                }
                Err(_) => {}
            }
        }
    })
}
