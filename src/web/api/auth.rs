//! Who calls the API: the bearer token of a request, resolved by the station
//! ([`Station::api_caller`]), and the scope the route needs.
//!
//! Security notes: the token is read from the `Authorization` header only (never a query
//! string, which proxies log), handed to the station, and never logged or echoed; a refusal says
//! why in general terms (unknown, revoked) and is logged with the client's address, and audited
//! (`api.request_refused`, without the token) within the per-client limits of
//! [`crate::domain::console::RefusalAudit`].

use super::{Api, Problem, station_error};
use crate::domain::api::Scope;
use crate::error_code as ec;
use crate::station::Station;
use crate::station::api_tokens::{ApiAuthError, ApiCaller, ApiRefusal};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use zeroize::Zeroizing;

/// The challenge of a 401 (RFC 6750).
const CHALLENGE: &str = "Bearer realm=\"keystation\"";

/// The bearer token of `headers`, if it has one (scheme case-insensitive).
fn bearer(headers: &HeaderMap) -> Option<Zeroizing<String>> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| Zeroizing::new(token.trim().to_string()))
}

impl Api {
    /// The caller of a request to a route that needs `scope`, and the station acting for it;
    /// otherwise the answer: 401 (with the challenge) or 403.
    pub(super) async fn caller(
        &self,
        headers: &HeaderMap,
        remote: SocketAddr,
        scope: Scope,
    ) -> Result<(ApiCaller, Station), Response> {
        let station = self.station();
        let token = bearer(headers).unwrap_or_default();
        let caller = match station.api_caller(&token).await {
            Ok(caller) => caller,
            Err(ApiAuthError::Refused(why)) => {
                tracing::warn!(%remote, reason = %why, "api: request refused");
                self.audit_refusal(&station, remote, why.as_str(), None, None, 401)
                    .await;
                let challenge = if token.is_empty() {
                    CHALLENGE.to_string()
                } else {
                    format!("{CHALLENGE}, error=\"invalid_token\"")
                };
                let mut response = Problem::new(
                    StatusCode::UNAUTHORIZED,
                    ec::API_UNAUTHENTICATED,
                    why.to_string(),
                )
                .into_response();
                if let Ok(v) = HeaderValue::from_str(&challenge) {
                    response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
                return Err(response);
            }
            Err(e) => return Err(station_error(&e)),
        };
        if !caller.may(scope) {
            tracing::warn!(%remote, token = caller.token_id, %scope, "api: scope missing");
            self.audit_refusal(
                &station,
                remote,
                "scope_missing",
                Some(scope),
                Some(caller.token_id),
                403,
            )
            .await;
            let mut response = Problem::new(
                StatusCode::FORBIDDEN,
                ec::API_SCOPE,
                format!("the API token lacks the scope {scope}"),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&format!(
                "{CHALLENGE}, error=\"insufficient_scope\", scope=\"{scope}\""
            )) {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
            return Err(response);
        }
        Ok((caller, station))
    }

    /// Audits a refusal unless the client's refusals are over the limit (then it is counted,
    /// and the count rides on its next record). A failure to record is logged: the answer is a
    /// refusal either way.
    async fn audit_refusal(
        &self,
        station: &Station,
        remote: SocketAddr,
        reason: &'static str,
        scope: Option<Scope>,
        token_id: Option<i64>,
        status: u16,
    ) {
        let client = remote.ip().to_string();
        let suppressed = self
            .refusals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .refused(&client, station.now());
        let Some(suppressed) = suppressed else {
            return;
        };
        let refusal = ApiRefusal {
            remote: client,
            reason,
            scope,
            token_id,
            status,
            suppressed,
        };
        if let Err(e) = station.api_request_refused(&refusal).await {
            tracing::error!(error = %e, "api: the refusal could not be audited");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_bearer_token_is_the_authorization_headers_second_word() {
        let mut h = HeaderMap::new();
        assert!(bearer(&h).is_none());
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  ksapi1_x "),
        );
        assert_eq!(bearer(&h).unwrap().as_str(), "ksapi1_x");
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic a2V5"),
        );
        assert!(bearer(&h).is_none());
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer"));
        assert!(bearer(&h).is_none());
    }
}
