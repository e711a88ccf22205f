//! Verification of a DER `SESeal` against the CA certificate, as a list of named checks.
//!
//! The result is a [`SealReport`], never an error and never a panic: seals come from tokens and
//! files the station does not control, and an operator needs to see *which* rule failed.
//! Checks, in order (each appears at most once, by name):
//! - `structure`: strict DER parse, header `"ES"` version 4, `certList` type 1 with at least one
//!   certificate, or type 2. If parsing fails this is the only check;
//! - `maker_signature`: `signedValue` verifies over [`SesSeal::signed_data_der`] with the public
//!   key of `cert`, using `signAlgID` (ecdsa-with-SHA256 on P-256/P-384, sha256WithRSAEncryption,
//!   SM2-with-SM3 with the default distinguishing ID);
//! - `maker_certificate`: `cert` parses, the CA certificate is a CA (basicConstraints cA, and
//!   keyCertSign when keyUsage is present), `cert`'s issuer is the CA's subject and its signature
//!   verifies with the CA key;
//! - `maker_validity`: `cert` was valid at `createDate`;
//! - `seal_validity`: `validStart <= validEnd` and `validStart <= now <= validEnd`;
//! - `company_certificate`: every certificate in `certList` parses, is issued by the CA and is
//!   valid over the whole `validStart..validEnd`. A digest list (type 2) cannot be checked against
//!   the CA without the certificate itself, so it fails this check (the station only makes type 1);
//! - `token_certificate` (only when a token certificate is given): `certList` contains a
//!   byte-identical copy of the token's certificate, i.e. the seal is bound to that token's key.
//! - `company_revocation` (only when the caller knows revocations, i.e. the station, through
//!   [`SealReport::record_revocations`]): no certificate in `certList` is revoked.
//!
//! [`SealReport::is_valid`] is true only when every check passed and `structure` ran.

use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;

use super::sesseal::{SesCertList, SesSeal, parse_seal};
use crate::x509::{parse_certificate, verify_with_key};

/// One named verification step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealCheck {
    /// Stable check name (see the module docs).
    pub name: &'static str,
    /// Whether the check passed.
    pub ok: bool,
    /// What was checked, or why it failed, for the operator.
    pub detail: String,
}

/// The outcome of [`verify_seal`].
#[derive(Clone, Debug, PartialEq)]
pub struct SealReport {
    /// The parsed seal, when it parsed.
    pub seal: Option<SesSeal>,
    /// The checks that ran, in order.
    pub checks: Vec<SealCheck>,
}

impl SealReport {
    /// True when the `structure` check ran and every check passed.
    pub fn is_valid(&self) -> bool {
        self.checks.iter().any(|c| c.name == "structure") && self.checks.iter().all(|c| c.ok)
    }

    /// The check with this name, if it ran.
    pub fn check(&self, name: &str) -> Option<&SealCheck> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// Names of the checks that failed.
    pub fn failed(&self) -> Vec<&'static str> {
        self.checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.name)
            .collect()
    }

    /// The certificates of `certList` (DER, in order), when the seal parsed and lists
    /// certificates rather than digests.
    pub fn company_certificates(&self) -> Vec<&[u8]> {
        match self
            .seal
            .as_ref()
            .map(|s| &s.e_seal_info.property.cert_list)
        {
            Some(SesCertList::Certs(certs)) => certs.iter().map(|c| c.as_bytes()).collect(),
            _ => Vec::new(),
        }
    }

    /// Records the `company_revocation` check from what the caller knows: `revoked` describes
    /// each certificate of `certList` that is revoked (empty: none is). Only for a seal that
    /// parsed; a revocation makes the seal not valid whatever else holds.
    pub fn record_revocations(&mut self, revoked: &[String]) {
        if self.seal.is_none() {
            return;
        }
        self.checks.retain(|c| c.name != "company_revocation");
        let result = if revoked.is_empty() {
            Ok("no certificate in certList is revoked".to_owned())
        } else {
            Err(revoked.join("; "))
        };
        self.record("company_revocation", result);
    }

    fn record(&mut self, name: &'static str, result: Result<String, String>) {
        let (ok, detail) = match result {
            Ok(detail) => (true, detail),
            Err(detail) => (false, detail),
        };
        self.checks.push(SealCheck { name, ok, detail });
    }
}

/// Verifies a DER seal against the CA certificate at time `now`; see the module docs.
pub fn verify_seal(
    der: &[u8],
    ca_cert_der: &[u8],
    token_cert_der: Option<&[u8]>,
    now: OffsetDateTime,
) -> SealReport {
    let mut report = SealReport {
        seal: None,
        checks: Vec::new(),
    };
    let seal = match parse_seal(der) {
        Ok(seal) => seal,
        Err(e) => {
            report.record("structure", Err(e.to_string()));
            return report;
        }
    };
    report.record(
        "structure",
        seal.check_profile()
            .map(|()| {
                format!(
                    "SESeal v4, esID {:?}, certListType {}",
                    seal.e_seal_info.es_id.as_str(),
                    seal.e_seal_info.property.cert_list.cert_list_type()
                )
            })
            .map_err(|e| e.to_string()),
    );

    let maker = parse_certificate(seal.cert.as_bytes()).map_err(|e| format!("maker cert: {e}"));
    let ca = parse_certificate(ca_cert_der).map_err(|e| format!("CA cert: {e}"));

    report.record("maker_signature", check_maker_signature(&seal, &maker));
    report.record(
        "maker_certificate",
        both(&maker, &ca).and_then(|(m, c)| issued_by_ca(m, c)),
    );
    report.record("maker_validity", check_maker_validity(&seal, &maker));
    report.record("seal_validity", check_seal_validity(&seal, now));
    report.record("company_certificate", check_company_certificate(&seal, &ca));
    if let Some(token_cert) = token_cert_der {
        report.record(
            "token_certificate",
            check_token_certificate(&seal, token_cert),
        );
    }
    report.seal = Some(seal);
    report
}

fn both<'r, 'c>(
    a: &'r Result<X509Certificate<'c>, String>,
    b: &'r Result<X509Certificate<'c>, String>,
) -> Result<(&'r X509Certificate<'c>, &'r X509Certificate<'c>), String> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (Err(e), _) | (_, Err(e)) => Err(e.clone()),
    }
}

fn check_maker_signature(
    seal: &SesSeal,
    maker: &Result<X509Certificate<'_>, String>,
) -> Result<String, String> {
    let maker = maker.as_ref().map_err(Clone::clone)?;
    let signature = seal
        .signed_value
        .as_bytes()
        .ok_or_else(|| "signedValue has unused bits".to_owned())?;
    let data = seal.signed_data_der().map_err(|e| e.to_string())?;
    verify_with_key(maker.public_key(), &seal.sign_alg_id, &data, signature)?;
    Ok(format!(
        "verified with {} ({})",
        maker.subject(),
        seal.sign_alg_id
    ))
}

/// `cert` is signed by `ca`, whose certificate is a CA certificate.
fn issued_by_ca(cert: &X509Certificate<'_>, ca: &X509Certificate<'_>) -> Result<String, String> {
    if !ca.is_ca() {
        return Err(format!(
            "{} is not a CA (basicConstraints cA)",
            ca.subject()
        ));
    }
    if let Ok(Some(ku)) = ca.key_usage()
        && !ku.value.key_cert_sign()
    {
        return Err(format!("{} lacks keyUsage keyCertSign", ca.subject()));
    }
    if cert.issuer().as_raw() != ca.subject().as_raw() {
        return Err(format!(
            "issuer {} is not the CA {}",
            cert.issuer(),
            ca.subject()
        ));
    }
    crate::x509::verify_signed_by(cert, ca.public_key())
        .map_err(|e| format!("signature of {} by the CA: {e}", cert.subject()))?;
    Ok(format!("{} issued by {}", cert.subject(), ca.subject()))
}

fn unix(t: &der::asn1::GeneralizedTime) -> i64 {
    // GeneralizedTime ends in year 9999, far inside i64 seconds.
    i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}

fn check_maker_validity(
    seal: &SesSeal,
    maker: &Result<X509Certificate<'_>, String>,
) -> Result<String, String> {
    let maker = maker.as_ref().map_err(Clone::clone)?;
    let created = unix(&seal.e_seal_info.property.create_date);
    let validity = maker.validity();
    if validity.not_before.timestamp() <= created && created <= validity.not_after.timestamp() {
        Ok(format!(
            "createDate {} within {}..{}",
            seal.e_seal_info.property.create_date.to_date_time(),
            validity.not_before,
            validity.not_after
        ))
    } else {
        Err(format!(
            "createDate {} outside the maker certificate's {}..{}",
            seal.e_seal_info.property.create_date.to_date_time(),
            validity.not_before,
            validity.not_after
        ))
    }
}

fn check_seal_validity(seal: &SesSeal, now: OffsetDateTime) -> Result<String, String> {
    let property = &seal.e_seal_info.property;
    let (start, end) = (unix(&property.valid_start), unix(&property.valid_end));
    let now_secs = now.unix_timestamp();
    if start > end {
        Err(format!(
            "validStart {} is after validEnd {}",
            property.valid_start.to_date_time(),
            property.valid_end.to_date_time()
        ))
    } else if now_secs < start {
        Err(format!(
            "not yet valid: validStart {}",
            property.valid_start.to_date_time()
        ))
    } else if now_secs > end {
        Err(format!(
            "expired: validEnd {}",
            property.valid_end.to_date_time()
        ))
    } else {
        Ok(format!(
            "valid {}..{}",
            property.valid_start.to_date_time(),
            property.valid_end.to_date_time()
        ))
    }
}

fn check_company_certificate(
    seal: &SesSeal,
    ca: &Result<X509Certificate<'_>, String>,
) -> Result<String, String> {
    let ca = ca.as_ref().map_err(Clone::clone)?;
    let property = &seal.e_seal_info.property;
    let certs = match &property.cert_list {
        SesCertList::Certs(certs) if !certs.is_empty() => certs,
        SesCertList::Certs(_) => return Err("certList holds no certificate".to_owned()),
        SesCertList::CertDigestList(_) => {
            return Err(
                "certList holds digests only; the company certificate cannot be checked".to_owned(),
            );
        }
    };
    let (start, end) = (unix(&property.valid_start), unix(&property.valid_end));
    let mut details = Vec::with_capacity(certs.len());
    for (i, octets) in certs.iter().enumerate() {
        let cert =
            parse_certificate(octets.as_bytes()).map_err(|e| format!("certList[{i}]: {e}"))?;
        let issued = issued_by_ca(&cert, ca).map_err(|e| format!("certList[{i}]: {e}"))?;
        let validity = cert.validity();
        if validity.not_before.timestamp() > start || validity.not_after.timestamp() < end {
            return Err(format!(
                "certList[{i}] validity {}..{} does not cover the seal's {}..{}",
                validity.not_before,
                validity.not_after,
                property.valid_start.to_date_time(),
                property.valid_end.to_date_time()
            ));
        }
        details.push(issued);
    }
    Ok(details.join("; "))
}

fn check_token_certificate(seal: &SesSeal, token_cert: &[u8]) -> Result<String, String> {
    match &seal.e_seal_info.property.cert_list {
        SesCertList::Certs(certs) => certs
            .iter()
            .position(|c| c.as_bytes() == token_cert)
            .map(|i| format!("token certificate is certList[{i}]"))
            .ok_or_else(|| "the token's certificate is not in certList".to_owned()),
        SesCertList::CertDigestList(_) => {
            Err("certList holds digests only; cannot match the token certificate".to_owned())
        }
    }
}

#[cfg(test)]
mod tests;
