//! `GET /certificates`: every certificate the CA issued, with its state, and the revocation
//! list as published (its number, this and next update). Read-only; for the roles of
//! [`View::Certificates`]. Revocation itself is requested on an order's page (two operators).

use super::texts::Texts;
use super::{Console, render, station_error};
use crate::domain::View;
use askama::Template;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

struct CertRow {
    serial: String,
    order_no: String,
    purpose: &'static str,
    status: &'static str,
    status_code: &'static str,
    token_serial: String,
    not_before: String,
    not_after: String,
    fingerprint: String,
}

struct CrlView {
    number: i64,
    this_update: String,
    next_update: String,
}

#[derive(Template)]
#[template(path = "certificates.html")]
struct CertificatesPage {
    operator: Option<String>,
    csrf: String,
    t: &'static Texts,
    crl: Option<CrlView>,
    crl_path: String,
    certificates: Vec<CertRow>,
}

/// `GET /certificates`.
pub async fn page(State(console): State<Console>, headers: HeaderMap) -> Response {
    let (frame, station) = match console.viewing(&headers, View::Certificates).await {
        Ok(v) => v,
        Err(refused) => return refused,
    };
    let crl = match station.current_crl().await {
        Ok(c) => c,
        Err(e) => return station_error(&e, &frame),
    };
    let certificates = match station.certificates().await {
        Ok(c) => c,
        Err(e) => return station_error(&e, &frame),
    };
    render(&CertificatesPage {
        operator: frame.operator,
        csrf: frame.csrf,
        t: frame.t,
        crl: crl.map(|c| CrlView {
            number: c.number,
            this_update: crate::clock::format_utc(c.this_update),
            next_update: crate::clock::format_utc(c.next_update),
        }),
        crl_path: station.crl_url_path().unwrap_or_default(),
        certificates: certificates
            .into_iter()
            .map(|c| CertRow {
                serial: c.serial.to_string(),
                order_no: c.order_no.to_string(),
                purpose: frame.t.purpose(c.purpose),
                status: frame.t.certificate_status(c.status),
                status_code: c.status.as_str(),
                token_serial: c.token_serial.map(|t| t.to_string()).unwrap_or_default(),
                not_before: c.not_before,
                not_after: c.not_after,
                fingerprint: c.fingerprint_sha256,
            })
            .collect(),
    })
}
