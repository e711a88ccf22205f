//! The order API (issue 17, item 3) of `keystation serve --console-listen`, over reqwest on
//! loopback: tokens (401 without, 403 without the scope, revoked), a submission stored once and
//! audited under the token's operator, every violation of a bad one (422), the body's checks
//! (400, 413, 415), an order's progress and the listing, and the OpenAPI document checked by an
//! independent validator.

use super::{ORDER, register, url, urlencode};
use crate::ocsp::Serve;
use crate::support::{
    Station, admin_credential, audit_records, keystation, order_fixtures, run_ok,
};
use base64::Engine as _;
use serde_json::{Value, json};

/// The independent validator `scripts/setup.sh` installs.
const VALIDATOR: &str = "/opt/keystation/openapi-spec-validator/bin/openapi-spec-validator";

/// An answer: status, headers, body.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }
    /// The fields of the problem's violations.
    fn fields(&self) -> Vec<String> {
        self.json()["violations"]
            .as_array()
            .unwrap_or_else(|| panic!("no violations in {}", self.json()))
            .iter()
            .map(|v| v["field"].as_str().unwrap().to_string())
            .collect()
    }
}

/// Sends `method path` with `token` (if any), `content_type` and `body`.
fn send(
    serve: &Serve,
    method: &str,
    path: &str,
    token: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
) -> Answer {
    let _ = rustls::crypto::ring::default_provider().install_default();
    crate::support::runtime().block_on(async {
        let client = reqwest::Client::new();
        let mut req = match method {
            "POST" => client
                .post(url(serve, path))
                .header("content-type", content_type)
                .body(body),
            _ => client.get(url(serve, path)),
        };
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.expect("request");
        Answer {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            body: r.bytes().await.expect("body").to_vec(),
        }
    })
}

fn get(serve: &Serve, path: &str, token: Option<&str>) -> Answer {
    send(serve, "GET", path, token, "", Vec::new())
}

fn submit(serve: &Serve, token: &str, body: &Value) -> Answer {
    send(
        serve,
        "POST",
        "/api/v1/orders",
        Some(token),
        "application/json",
        serde_json::to_vec(body).unwrap(),
    )
}

/// `api-token add` for `operator` with `scopes`, by the admin credential; (id, token).
fn api_token(st: &Station, operator: &str, scopes: &str) -> (i64, String) {
    let file = st
        .tmp()
        .join(format!("{operator}-{}.token", scopes.replace(':', "_")));
    let out = run_ok(
        st.admin_command()
            .args(["--json", "api-token", "add", "--operator", operator])
            .args(["--scope", scopes, "--out"])
            .arg(&file),
    );
    let added: Value = serde_json::from_slice(&out.stdout).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the token file is private");
    let token = std::fs::read_to_string(&file).unwrap().trim().to_string();
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&token));
    (added["id"].as_i64().unwrap(), token)
}

/// The valid fixture order (`ORDER`) as a submission: its form and every file it names.
fn fixture_submission() -> Value {
    let dir = order_fixtures().join("valid");
    let form: Value = serde_json::from_slice(
        &std::fs::read(dir.join("0001_main-key_two-seals_legal-rep-phone.json")).unwrap(),
    )
    .unwrap();
    let mut files = serde_json::Map::new();
    let names = form["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["file"])
        .chain(
            form["seals"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| &s["picture"]),
        );
    for name in names {
        let name = name.as_str().unwrap();
        let bytes = std::fs::read(dir.join(name)).unwrap();
        files.insert(
            name.to_string(),
            json!(base64::engine::general_purpose::STANDARD.encode(bytes)),
        );
    }
    json!({"order": form, "files": files})
}

/// A station with its console and API running, and `portal-bot` (a reviewer) registered.
fn station_with_api() -> (Station, Serve) {
    let st = Station::sqlite();
    register(&st, "portal-bot", "reviewer");
    let serve = Serve::start_with_console(&st.config);
    (st, serve)
}

#[test]
fn the_api_refuses_a_client_without_a_token_a_revoked_one_and_one_without_the_scope() {
    let (st, serve) = station_with_api();
    let (read_id, reader) = api_token(&st, "portal-bot", "orders:read");

    // No token: 401, with the bearer challenge.
    let none = get(&serve, "/api/v1/orders", None);
    assert_eq!(none.status, 401);
    assert!(none.header("www-authenticate").starts_with("Bearer realm="));
    assert_eq!(none.header("content-type"), "application/problem+json");
    assert_eq!(none.json()["code"], "E-API-UNAUTHENTICATED");
    // An unknown one, or not a token at all: 401, invalid_token, never echoed.
    let unknown = format!("ksapi1_{}", "0".repeat(64));
    for bad in [unknown.as_str(), "hunter2"] {
        let a = get(&serve, "/api/v1/orders", Some(bad));
        assert_eq!(a.status, 401);
        assert!(a.header("www-authenticate").contains("invalid_token"));
        assert!(!String::from_utf8_lossy(&a.body).contains(bad));
    }
    // An operator's credential token, or console password, is not an API token.
    let console_login = register(&st, "someone", "reviewer");
    let credential = std::fs::read_to_string(st.tmp().join("someone.credential")).unwrap();
    for not_api in [credential.trim(), console_login.password.as_str()] {
        assert_eq!(get(&serve, "/api/v1/orders", Some(not_api)).status, 401);
    }

    // A read-only token reads, but may not submit: 403 naming the scope.
    assert_eq!(get(&serve, "/api/v1/orders", Some(&reader)).status, 200);
    let refused = submit(&serve, &reader, &fixture_submission());
    assert_eq!(refused.status, 403);
    assert_eq!(refused.json()["code"], "E-API-SCOPE");
    assert!(
        refused.json()["detail"]
            .as_str()
            .unwrap()
            .contains("orders:submit")
    );
    assert!(
        refused
            .header("www-authenticate")
            .contains("insufficient_scope")
    );
    assert!(st.list().is_empty(), "nothing was stored");

    // `api-token list` shows the token, never its text; revoked, it authenticates nobody.
    let list = st.run(&["--json", "api-token", "list"]);
    let list = list.expect_code(0);
    assert!(!list.stdout.contains(&reader));
    assert_eq!(list.json()[0]["scopes"], json!(["orders:read"]));
    let id = read_id.to_string();
    run_ok(st.admin_command().args(["api-token", "revoke", &id]));
    assert_eq!(get(&serve, "/api/v1/orders", Some(&reader)).status, 401);
    // Revoking needs an administrator.
    let by_nobody = st.run(&["api-token", "revoke", &id]);
    assert_ne!(by_nobody.code, Some(0));

    // Both changes audited, by the administrator, without the token.
    let audit = st.run(&["--json", "audit", "show"]).expect_code(0).json();
    let added = audit_records(&audit, "api_token.added");
    assert_eq!(added.len(), 1);
    assert_eq!(added[0]["actor"], "admin");
    assert_eq!(
        audit_records(&audit, "api_token.revoked")[0]["actor"],
        "admin"
    );
    assert!(!audit.to_string().contains(&reader[7..]));

    // A disabled operator's tokens authenticate nobody either.
    let (_, submitter) = api_token(&st, "portal-bot", "orders:submit,orders:read");
    assert_eq!(get(&serve, "/api/v1/orders", Some(&submitter)).status, 200);
    run_ok(
        st.admin_command()
            .args(["operator", "disable", "portal-bot"]),
    );
    assert_eq!(get(&serve, "/api/v1/orders", Some(&submitter)).status, 401);
}

#[test]
fn refused_requests_are_audited_without_the_token_and_a_flood_is_capped() {
    let (st, serve) = station_with_api();
    let (_, reader) = api_token(&st, "portal-bot", "orders:read");
    let (revoked_id, revoked) = api_token(&st, "portal-bot", "orders:submit");
    run_ok(
        st.admin_command()
            .args(["api-token", "revoke", &revoked_id.to_string()]),
    );
    let unknown = format!("ksapi1_{}", "7".repeat(64));
    assert_eq!(get(&serve, "/api/v1/orders", None).status, 401);
    assert_eq!(get(&serve, "/api/v1/orders", Some(&unknown)).status, 401);
    assert_eq!(get(&serve, "/api/v1/orders", Some(&revoked)).status, 401);
    assert_eq!(submit(&serve, &reader, &fixture_submission()).status, 403);

    let audit = st.run(&["--json", "audit", "show"]).expect_code(0).json();
    let refused: Vec<Value> = audit_records(&audit, "api.request_refused")
        .iter()
        .map(|r| serde_json::from_str(r["details"].as_str().unwrap()).unwrap())
        .collect();
    let reasons: Vec<&str> = refused
        .iter()
        .map(|d| d["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["missing", "unknown", "revoked", "scope_missing"]);
    let scope = &refused[3];
    assert_eq!(scope["status"], 403);
    assert_eq!(scope["scope"], "orders:submit");
    assert!(scope["token_id"].is_i64());
    assert_eq!(refused[0]["status"], 401);
    assert_eq!(refused[0]["remote"], "127.0.0.1");
    assert_eq!(refused[0]["suppressed"], 0);
    let text = audit.to_string();
    for token in [&reader, &revoked, &unknown] {
        assert!(!text.contains(&token[7..]), "a token in the trail");
    }

    // A flood from one client: a few records, the rest only counted.
    for _ in 0..30 {
        assert_eq!(get(&serve, "/api/v1/orders", Some(&unknown)).status, 401);
    }
    let audit = st.run(&["--json", "audit", "show"]).expect_code(0).json();
    let refused = audit_records(&audit, "api.request_refused");
    assert_eq!(
        refused.len(),
        keystation::domain::console::RefusalAudit::MAX_PER_CLIENT
    );
    st.run(&["audit", "verify"]).expect_code(0);
}

#[test]
fn an_order_submitted_twice_is_stored_once_audited_under_the_tokens_operator_and_followed() {
    let (st, serve) = station_with_api();
    let (token_id, token) = api_token(&st, "portal-bot", "orders:submit,orders:read");
    let body = fixture_submission();

    let first = submit(&serve, &token, &body);
    assert_eq!(first.status, 201, "{}", first.json());
    assert_eq!(first.header("location"), format!("/api/v1/orders/{ORDER}"));
    let answer = first.json();
    assert_eq!(answer["created"], true);
    assert_eq!(answer["order_no"], ORDER);
    assert_eq!(answer["state"], "Submitted");
    assert_eq!(answer["state_label"], "待审核");

    // The same body again (re-serialised, keys in another order is the same JSON): 200, the
    // same answer, nothing stored.
    let again = submit(&serve, &token, &body);
    assert_eq!(again.status, 200, "{}", again.json());
    let mut same = again.json();
    assert_eq!(same["created"], false);
    same["created"] = json!(true);
    assert_eq!(same, answer);
    assert_eq!(st.order_numbers(), [ORDER]);

    // Another body under the same number: 409, nothing changed.
    let mut other = body.clone();
    other["order"]["company"]["department"] = json!("财务部");
    let conflict = submit(&serve, &token, &other);
    assert_eq!(conflict.status, 409);
    assert_eq!(conflict.json()["code"], "E-API-CONFLICT");

    // The trail names the token's registered operator for the import, and the token.
    let audit = st.run(&["--json", "audit", "show"]).expect_code(0).json();
    let imported = audit_records(&audit, "order.imported");
    assert_eq!(imported.len(), 1);
    assert_eq!(imported[0]["actor"], "portal-bot");
    let submitted = audit_records(&audit, "api.order_submitted");
    assert_eq!(submitted.len(), 1);
    assert_eq!(submitted[0]["actor"], "portal-bot");
    let details: Value = serde_json::from_str(submitted[0]["details"].as_str().unwrap()).unwrap();
    assert_eq!(details["token_id"], token_id);
    st.audit_verifies();

    // The documents arrived as sent.
    let shown = st.show(ORDER);
    assert_eq!(shown["attachments"].as_array().unwrap().len(), 7);

    // Progress: the state and its history, no operator's name.
    let path = format!("/api/v1/orders/{ORDER}");
    let progress = get(&serve, &path, Some(&token)).json();
    assert_eq!(progress["history"].as_array().unwrap().len(), 1);
    assert_eq!(progress["history"][0]["state"], "Submitted");
    st.run(&["order", "approve", ORDER, "--operator", "reviewer-rita"])
        .expect_code(0);
    let progress = get(&serve, &path, Some(&token)).json();
    assert_eq!(progress["state"], "Approved");
    assert_eq!(progress["state_label"], "已批准");
    let steps: Vec<&str> = progress["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state_label"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["待审核", "已批准"]);
    let text = progress.to_string();
    assert!(
        !text.contains("reviewer-rita") && !text.contains("portal-bot"),
        "{text}"
    );
    let unknown = get(&serve, "/api/v1/orders/KS-NO-SUCH", Some(&token));
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["code"], "E-ORDER-NOT-FOUND");

    // The listing: by state, by time, a page at a time.
    let numbers = |a: Answer| -> Vec<String> {
        a.json()["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["order_no"].as_str().unwrap().to_string())
            .collect()
    };
    let mut second = fixture_submission();
    second["order"]["order_no"] = json!("KS-API-0002");
    assert_eq!(submit(&serve, &token, &second).status, 201);
    let all = get(&serve, "/api/v1/orders", Some(&token));
    assert_eq!(numbers(all), [ORDER, "KS-API-0002"]);
    let approved = get(&serve, "/api/v1/orders?state=approved", Some(&token));
    assert_eq!(numbers(approved), [ORDER]);
    let page = get(&serve, "/api/v1/orders?limit=1", Some(&token)).json();
    assert_eq!(page["orders"][0]["order_no"], ORDER);
    let cursor = page["next_cursor"].as_str().unwrap();
    let next = get(
        &serve,
        &format!("/api/v1/orders?limit=1&cursor={}", urlencode(cursor)),
        Some(&token),
    )
    .json();
    assert_eq!(next["orders"][0]["order_no"], "KS-API-0002");
    let future = get(
        &serve,
        "/api/v1/orders?since=2999-01-01T00:00:00Z",
        Some(&token),
    );
    assert!(numbers(future).is_empty());
    let bad = get(
        &serve,
        "/api/v1/orders?state=done&limit=0&since=soon&page=2",
        Some(&token),
    );
    assert_eq!(bad.status, 400);
    assert_eq!(bad.fields(), ["page", "state", "since", "limit"]);
    let bad_cursor = get(&serve, "/api/v1/orders?cursor=nope", Some(&token));
    assert_eq!(bad_cursor.fields(), ["cursor"]);
}

#[test]
fn a_bad_order_gets_422_naming_every_field_and_a_bad_body_its_status() {
    let (st, serve) = station_with_api();
    let (_, token) = api_token(&st, "portal-bot", "orders:submit");

    let mut bad = fixture_submission();
    bad["order"]["company"]["uscc"] = json!("91110000600037341X");
    bad["order"]["legal_rep"]["mobile"] = json!("12345");
    bad["order"]["documents"][0]["file"] = json!("docs/missing.png");
    bad["files"]["stray.png"] = json!("aGk=");
    bad["files"]["seals/company.png"] = json!("not base64 at all!");
    let refused = submit(&serve, &token, &bad);
    assert_eq!(refused.status, 422, "{}", refused.json());
    assert_eq!(refused.json()["code"], "E-INPUT-INVALID");
    // Every violation at once: the submission's shape, and the form's (under `order`).
    let fields = refused.fields();
    for want in [
        "files[\"docs/business_license.png\"]",
        "files[\"seals/company.png\"]",
        "files[\"stray.png\"]",
        "order.company.uscc",
        "order.legal_rep.mobile",
        "order.documents[0].file",
    ] {
        assert!(fields.iter().any(|f| f == want), "{want} in {fields:?}");
    }
    assert!(st.list().is_empty(), "nothing was stored");

    // The body's own checks.
    let post = |content_type: &str, body: Vec<u8>| {
        send(
            &serve,
            "POST",
            "/api/v1/orders",
            Some(&token),
            content_type,
            body,
        )
    };
    let wrong_type = post("text/plain", b"{}".to_vec());
    assert_eq!(wrong_type.status, 415);
    assert_eq!(wrong_type.json()["code"], "E-API-MEDIA-TYPE");
    let not_json = post("application/json", b"{\"order\": ".to_vec());
    assert_eq!(not_json.status, 400);
    assert_eq!(not_json.json()["code"], "E-API-JSON");
    let twice = post(
        "application/json",
        br#"{"order": {}, "order": {}}"#.to_vec(),
    );
    assert_eq!(twice.status, 422);
    assert_eq!(twice.json()["violations"][0]["code"], "duplicate_key");
    // Too large: refused on its declared length, before a byte of the body is read (sent here
    // by hand, headers only, so that the refusal cannot race the client's writing).
    let huge = too_large_request(&serve, &token);
    assert!(huge.starts_with("HTTP/1.1 413"), "{huge}");
    assert!(huge.contains("E-API-TOO-LARGE"), "{huge}");

    // A token whose operator may not import orders (an auditor): 403 by the station's roles.
    register(&st, "auditor-bot", "auditor");
    let (_, auditor) = api_token(&st, "auditor-bot", "orders:submit");
    let refused = submit(&serve, &auditor, &fixture_submission());
    assert_eq!(refused.status, 403);
    assert_eq!(refused.json()["code"], "E-OPERATOR-ROLE");
    assert!(st.list().is_empty(), "nothing was stored");
}

#[test]
fn the_openapi_document_is_served_valid_and_documents_every_route_the_router_serves() {
    let (st, serve) = station_with_api();
    let doc = get(&serve, "/api/v1/openapi.json", None);
    assert_eq!(doc.status, 200);
    assert_eq!(doc.header("content-type"), "application/json");
    let spec = doc.json();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));

    // Every documented operation is served: without a token, 401 (not 404 or 405).
    let mut operations = 0;
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            operations += 1;
            let concrete = path.replace("{order_no}", ORDER);
            let a = send(
                &serve,
                &method.to_uppercase(),
                &concrete,
                None,
                "application/json",
                b"{}".to_vec(),
            );
            let want = if path.ends_with("openapi.json") {
                200
            } else {
                401
            };
            assert_eq!(a.status, want, "{method} {path}");
        }
    }
    assert_eq!(operations, 4);
    // A route the document does not have is not served.
    let (_, token) = api_token(&st, "portal-bot", "orders:submit,orders:read");
    let missing = send(
        &serve,
        "POST",
        &format!("/api/v1/orders/{ORDER}"),
        Some(&token),
        "application/json",
        b"{}".to_vec(),
    );
    assert_eq!(missing.status, 405);

    // The independent validator accepts it, and is not a rubber stamp.
    let file = st.tmp().join("openapi.json");
    std::fs::write(&file, &doc.body).unwrap();
    let out = std::process::Command::new(VALIDATOR)
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("{VALIDATOR} (scripts/setup.sh installs it): {e}"));
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut broken = spec.clone();
    broken["paths"]["/api/v1/orders"]["get"]["responses"]["200"]
        .as_object_mut()
        .unwrap()
        .remove("description");
    let file = st.tmp().join("broken.json");
    std::fs::write(&file, serde_json::to_vec(&broken).unwrap()).unwrap();
    let out = std::process::Command::new(VALIDATOR)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "the validator took a broken document"
    );
}

/// A submission declaring a 17 MiB body, its headers only; the server's whole answer.
fn too_large_request(serve: &Serve, token: &str) -> String {
    use std::io::{Read, Write};
    let base = url(serve, "/");
    let host = base
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut tcp = std::net::TcpStream::connect(&host).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    write!(
        tcp,
        "POST /api/v1/orders HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        17 * 1024 * 1024
    )
    .unwrap();
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// `keystation --config <st> --credential FILE --json ARGS`, which must succeed: its JSON.
fn as_json(st: &Station, credential: &std::path::Path, args: &[&str]) -> Value {
    let out = run_ok(
        keystation()
            .arg("--config")
            .arg(&st.config)
            .arg("--credential")
            .arg(credential)
            .arg("--json")
            .args(args),
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn with_two_administrators_a_token_is_made_and_revoked_by_a_second_ones_approval() {
    let (st, serve) = station_with_api();
    let admin = admin_credential(&st.config);
    // The second administrator, added at once by the only one (bootstrap).
    register(&st, "bea", "administrator");
    let bea = st.tmp().join("bea.credential");

    // Adding a token now only records a request; no token file from the asker.
    let asked = as_json(
        &st,
        &admin,
        &[
            "api-token",
            "add",
            "--operator",
            "portal-bot",
            "--scope",
            "orders:read",
        ],
    );
    assert_eq!(asked["state"], "requested", "{asked}");
    let id = asked["id"].as_str().unwrap().to_string();
    let file = st.tmp().join("approved.token");
    // The asker's own approval is refused, nothing written.
    let own = keystation()
        .arg("--config")
        .arg(&st.config)
        .arg("--credential")
        .arg(&admin)
        .args(["api-token", "approve", &id, "--out", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(own.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&own.stderr);
    assert!(stderr.contains("E-REQUEST-SAME-OPERATOR"), "{stderr}");
    assert!(!file.exists());
    // The second administrator's approval writes a token the API accepts.
    let approved = as_json(
        &st,
        &bea,
        &["api-token", "approve", &id, "--out", file.to_str().unwrap()],
    );
    assert_eq!(approved["request"]["state"], "done", "{approved}");
    let token_id = approved["carried"]["id"].as_i64().unwrap();
    let token = std::fs::read_to_string(&file).unwrap().trim().to_string();
    assert!(!approved.to_string().contains(&token));
    assert_eq!(get(&serve, "/api/v1/orders", Some(&token)).status, 200);

    // Revoking is four-eyes too: asked by bea, the token works until the admin approves.
    let asked = as_json(&st, &bea, &["api-token", "revoke", &token_id.to_string()]);
    let id2 = asked["id"].as_str().unwrap().to_string();
    assert_eq!(get(&serve, "/api/v1/orders", Some(&token)).status, 200);
    as_json(&st, &admin, &["api-token", "approve", &id2]);
    assert_eq!(get(&serve, "/api/v1/orders", Some(&token)).status, 401);

    // Both audited with both identities, never the token.
    let audit = st.run(&["--json", "audit", "show"]).expect_code(0).json();
    let added = audit_records(&audit, "api_token.added");
    let d: Value = serde_json::from_str(added[0]["details"].as_str().unwrap()).unwrap();
    assert_eq!(added[0]["actor"], "bea");
    assert_eq!(d["four_eyes"]["requested_by"], "admin", "{d}");
    assert_eq!(d["four_eyes"]["approved_by"], "bea", "{d}");
    let revoked = audit_records(&audit, "api_token.revoked");
    let d: Value = serde_json::from_str(revoked[0]["details"].as_str().unwrap()).unwrap();
    assert_eq!(d["four_eyes"]["requested_by"], "bea", "{d}");
    assert_eq!(d["four_eyes"]["approved_by"], "admin", "{d}");
    assert!(!audit.to_string().contains(&token[7..]));
    assert!(serve.stop().success());
}
