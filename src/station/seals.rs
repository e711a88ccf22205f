//! An order's GB/T 38540 seals: built from the store's pictures (normalised at intake and kept;
//! an order imported before that is normalised here), signed by the
//! station's seal-maker key (on the CA token, certificate issued by the station's CA); and any
//! seal verified as the station sees it, which includes the revocations it recorded.

use super::Station;
use super::hsm::{Hsm, HsmError, Lease, read_certificate};
use crate::ca::CaError;
use crate::ca::issuance::cert_summary;
use crate::domain::{CertSerial, Order, OrderNo, SealKind};
use crate::seal::{
    NORMALIZATION_VERSION, SealError, SealReport, SealSigner, SealSpec, SealType, build_seal,
    normalize_seal_picture, verify_seal,
};
use crate::store::{StoreError, StoredSealPicture};
use crate::token::{TokenError, TokenSigner};
use const_oid::ObjectIdentifier;

/// Why an order's seals could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SealsError {
    /// The company certificate does not parse.
    #[error(transparent)]
    Ca(#[from] CaError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The seal-maker key on the CA token failed.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// A seal could not be built or signed.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// The order calls for a seal whose picture the store does not have.
    #[error("order {order_no} has no {kind} seal picture")]
    MissingPicture {
        /// The order.
        order_no: OrderNo,
        /// Which seal (`company`, `legal_rep`).
        kind: &'static str,
    },
    /// The seal maker's certificate file cannot be read.
    #[error(transparent)]
    MakerCertificate(#[from] HsmError),
}

/// A seal ready for the token.
#[derive(Debug, Clone)]
pub struct BuiltSeal {
    /// Which seal.
    pub kind: SealKind,
    /// DER `SESeal`.
    pub der: Vec<u8>,
}

impl BuiltSeal {
    /// The token object label (see [`seal_label`]).
    pub fn label(&self) -> String {
        seal_label(self.kind)
    }
}

/// The label of a seal's data object on the token: `seal:company` / `seal:legal_rep`.
pub fn seal_label(kind: SealKind) -> String {
    format!("seal:{}", kind.as_str())
}

/// The seal-maker key in the HSM, with its certificate.
struct HsmSealSigner<'a> {
    signer: Lease<'a, TokenSigner>,
    cert_der: Vec<u8>,
    oid: ObjectIdentifier,
}

impl SealSigner for HsmSealSigner<'_> {
    fn maker_cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    fn algorithm_oid(&self) -> ObjectIdentifier {
        self.oid
    }

    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, SealError> {
        self.signer
            .sign_message(data)
            .map_err(|e| SealError::Signer(e.to_string()))
    }
}

/// Builds every seal the order's key must carry.
pub async fn build_order_seals(
    station: &Station,
    hsm: &Hsm,
    order: &Order,
    company_cert_der: &[u8],
) -> Result<Vec<BuiltSeal>, SealsError> {
    let cfg = &station.config;
    let cert = cert_summary(company_cert_der)?;
    let pictures = stored_seal_pictures(station, order).await?;
    let maker_cert = read_certificate(&cfg.path(&cfg.seal.maker_certificate))?;
    // The seal maker's key is made with the CA's algorithm (init): an SM2 station's seals are
    // signed SM2-with-SM3, as GB/T 38540 verifiers require.
    let (oid, _) = crate::x509::signature_algorithm(cfg.ca.key_algorithm);
    crate::station::hsm::blocking(|| -> Result<Vec<BuiltSeal>, SealsError> {
        let signer = HsmSealSigner {
            signer: hsm.seal_maker_signer()?,
            cert_der: maker_cert,
            oid,
        };
        let mut out = Vec::new();
        for (kind, picture) in pictures {
            let picture_png = seal_picture_png(picture)?;
            let (seal_type, name, (w, h), tag) = match kind {
                SealKind::Company => (
                    SealType::Organisation,
                    order.company.name.clone(),
                    cfg.seal.company_mm,
                    "C",
                ),
                SealKind::LegalRep => (
                    SealType::Personal,
                    order.legal_rep.name.clone(),
                    cfg.seal.legal_rep_mm,
                    "L",
                ),
            };
            let spec = SealSpec {
                seal_type,
                // Unique per seal: vendor, order, kind, and the certificate serial it binds to.
                es_id: format!(
                    "{}-{}-{tag}-{}",
                    cfg.seal.vendor_id, order.order_no, cert.serial_hex
                ),
                vid: cfg.seal.vendor_id.clone(),
                name,
                company_cert_der: company_cert_der.to_vec(),
                create_date: cert.not_before,
                valid_start: cert.not_before,
                valid_end: cert.not_after,
                picture_png,
                width_mm: w,
                height_mm: h,
            };
            out.push(BuiltSeal {
                kind,
                der: build_seal(&spec, &signer)?,
            });
        }
        Ok(out)
    })
}

/// The order's seal pictures as the store has them: the PNGs kept at intake, or (an order
/// imported before they were kept) the pictures as imported.
async fn stored_seal_pictures(
    station: &Station,
    order: &Order,
) -> Result<Vec<(SealKind, StoredSealPicture)>, SealsError> {
    let mut pictures = Vec::new();
    for kind in order.seals_on_key() {
        let picture = station
            .store
            .seal_picture(&order.order_no, kind.as_str(), NORMALIZATION_VERSION)
            .await?
            .ok_or_else(|| SealsError::MissingPicture {
                order_no: order.order_no.clone(),
                kind: kind.as_str(),
            })?;
        pictures.push((*kind, picture));
    }
    Ok(pictures)
}

/// The PNG a seal carries: the kept one as it is, or the picture normalised now (the same
/// function the intake ran, so the same bytes).
fn seal_picture_png(picture: StoredSealPicture) -> Result<Vec<u8>, SealError> {
    match picture {
        StoredSealPicture::Normalized(png) => Ok(png),
        StoredSealPicture::Source(bytes) => Ok(normalize_seal_picture(&bytes)?.png),
    }
}

impl Station {
    /// The PNG each of the order's seals carries (kept at intake, or normalised now for an order
    /// imported before pictures were kept), in the order of [`Order::seals_on_key`]; what
    /// provisioning puts in the order's seals.
    pub async fn seal_picture_pngs(
        &self,
        order: &Order,
    ) -> Result<Vec<(SealKind, Vec<u8>)>, SealsError> {
        let pictures = stored_seal_pictures(self, order).await?;
        crate::station::hsm::blocking(|| {
            pictures
                .into_iter()
                .map(|(kind, p)| Ok((kind, seal_picture_png(p)?)))
                .collect()
        })
    }

    /// Verifies a seal against `ca_der` (and the token's certificate, when given) at the
    /// station's clock, like [`verify_seal`], and adds `company_revocation`: a seal whose
    /// company certificate the station revoked is not valid, and the report says when, by whom
    /// and why it was revoked.
    pub async fn verify_seal(
        &self,
        der: &[u8],
        ca_der: &[u8],
        token_cert_der: Option<&[u8]>,
    ) -> Result<SealReport, StoreError> {
        let mut report = verify_seal(der, ca_der, token_cert_der, self.clock.now());
        let mut revoked = Vec::new();
        for (i, cert) in report.company_certificates().into_iter().enumerate() {
            // A certificate that does not parse already fails `company_certificate`.
            let Ok(summary) = cert_summary(cert) else {
                continue;
            };
            // A serial that is no CertSerial (over 32 bytes) is none the station issued, so
            // none it revoked.
            let Ok(serial) = CertSerial::parse(&summary.serial_hex) else {
                continue;
            };
            if let Some(r) = self.store.revocation(&serial).await? {
                revoked.push(format!(
                    "certList[{i}] (serial {}) was revoked at {} by {}: {}{}",
                    r.serial,
                    r.revoked_at,
                    r.revoked_by,
                    r.reason,
                    r.detail.map(|d| format!(" ({d})")).unwrap_or_default()
                ));
            }
        }
        report.record_revocations(&revoked);
        Ok(report)
    }
}
