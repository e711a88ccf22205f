//! `GET /api/v1/openapi.json`: the API's OpenAPI 3.1 document, hand-written
//! (`openapi.json` beside this file) and served as it is. It documents exactly the routes of
//! [`super::ApiRoute::ALL`] (checked below, and by an independent validator in the integration tests).

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The document.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

/// `GET /api/v1/openapi.json` (no token needed: it holds nothing but the API's shape).
pub(super) async fn document() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON).into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::ApiRoute;
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn the_document_is_openapi_3_and_documents_exactly_the_routes_served() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI_JSON).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let documented: BTreeSet<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, ops)| {
                ops.as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| {
                        ["get", "put", "post", "delete", "patch", "head", "options"]
                            .contains(&k.as_str())
                    })
                    .map(move |m| (m.clone(), path.clone()))
            })
            .collect();
        let served: BTreeSet<(String, String)> = ApiRoute::ALL
            .iter()
            .map(|r| (r.method().to_string(), r.path().to_string()))
            .collect();
        assert_eq!(documented, served);
        // Every scope the station knows is declared, and every operation but the document's
        // own names the security it needs.
        let scopes = doc["components"]["securitySchemes"]["bearer"]["description"]
            .as_str()
            .unwrap();
        for scope in crate::domain::api::Scope::ALL {
            assert!(scopes.contains(scope.as_str()), "{scope}");
        }
    }
}
