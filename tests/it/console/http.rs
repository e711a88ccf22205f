//! The console over HTTP (reqwest, no redirects followed, the session cookie kept by hand).

use super::{
    Login, ORDER, console_of, csrf_of, first_request_id, fixture_document,
    provisioned_with_two_officers, register, serve_refused, state_of, station_with_console, url,
    urlencode,
};
use crate::ocsp::Serve;
use crate::support::{Station, audit_records};
use serde_json::Value;

/// One browser-like client: its own session cookie, and any other cookie the console sets (the
/// language's).
pub(super) struct Client {
    pub(super) http: reqwest::Client,
    rt: tokio::runtime::Runtime,
    pub(super) cookie: Option<String>,
    pub(super) other_cookies: std::collections::BTreeMap<String, String>,
}

/// An answer: status, headers, body.
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) headers: reqwest::header::HeaderMap,
    pub(super) body: Vec<u8>,
}

impl Answer {
    pub(super) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub(super) fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }
}

impl Client {
    pub(super) fn new() -> Client {
        Client::with(reqwest::Client::builder())
    }

    /// A client built from `builder` (e.g. trusting a test CA), following no redirects.
    pub(super) fn with(builder: reqwest::ClientBuilder) -> Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Client {
            http: builder
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            rt: crate::support::runtime(),
            cookie: None,
            other_cookies: Default::default(),
        }
    }

    pub(super) fn send(&mut self, req: reqwest::RequestBuilder) -> Answer {
        let cookies: Vec<String> = self
            .cookie
            .iter()
            .cloned()
            .chain(self.other_cookies.iter().map(|(k, v)| format!("{k}={v}")))
            .collect();
        let req = if cookies.is_empty() {
            req
        } else {
            req.header("cookie", cookies.join("; "))
        };
        let answer = self.rt.block_on(async {
            let r = req.send().await.expect("request");
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            Answer {
                status,
                headers,
                body: r.bytes().await.expect("body").to_vec(),
            }
        });
        for set in answer.headers.get_all("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap().to_string();
            match pair.split_once('=') {
                Some((name, value)) if name != "ks_console" => {
                    self.other_cookies
                        .insert(name.to_string(), value.to_string());
                }
                _ => self.cookie = Some(pair),
            }
        }
        answer
    }

    pub(super) fn get(&mut self, serve: &Serve, path: &str) -> Answer {
        let req = self.http.get(url(serve, path));
        self.send(req)
    }

    pub(super) fn post(&mut self, serve: &Serve, path: &str, form: &[(&str, &str)]) -> Answer {
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let req = self
            .http
            .post(url(serve, path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(req)
    }

    /// Opens the login page and logs in as `who` with the current code; the answer.
    pub(super) fn login(&mut self, serve: &Serve, who: &Login) -> Answer {
        self.login_with(serve, &who.name, &who.password, &who.code())
    }

    /// Opens the login page and posts these name, password and code; the answer.
    pub(super) fn login_with(
        &mut self,
        serve: &Serve,
        name: &str,
        password: &str,
        code: &str,
    ) -> Answer {
        let page = self.get(serve, "/login");
        assert_eq!(page.status, 200, "{}", page.text());
        let csrf = csrf_of(&page.text());
        self.post(
            serve,
            "/login",
            &[
                ("csrf", &csrf),
                ("operator", name),
                ("password", password),
                ("code", code),
            ],
        )
    }

    /// The CSRF token of the order's review page.
    pub(super) fn review_csrf(&mut self, serve: &Serve) -> String {
        let page = self.get(serve, &format!("/orders/{ORDER}"));
        assert_eq!(page.status, 200, "{}", page.text());
        csrf_of(&page.text())
    }
}

/// ORDER approved and provisioned; security officer console-sophia (registered with a second
/// one, console-simon) logs in and asks to revoke it (keyCompromise, 客户报告私钥可能泄露),
/// which the console accepts. Her logged-in client, and console-simon's login.
pub(super) fn revoke_asked_by_one_officer(st: &Station, serve: &Serve) -> (Client, Login) {
    let (first, second) = provisioned_with_two_officers(st);
    let mut a = Client::new();
    assert_eq!(a.login(serve, &first).status, 303);
    let csrf = a.review_csrf(serve);
    let asked = a.post(
        serve,
        &format!("/orders/{ORDER}/revoke"),
        &[
            ("csrf", &csrf),
            ("reason", "keyCompromise"),
            ("detail", "客户报告私钥可能泄露"),
        ],
    );
    assert_eq!(asked.status, 303, "{}", asked.text());
    (a, second)
}

/// The requester approving request `id` (from the form on `page`) is refused 403 by the
/// station, naming `E-REQUEST-SAME-OPERATOR`.
#[track_caller]
pub(super) fn own_approval_is_refused(a: &mut Client, serve: &Serve, id: &str, page: &str) {
    let own = a.post(
        serve,
        &format!("/requests/{id}/approve"),
        &[("csrf", &csrf_of(page))],
    );
    assert_eq!(own.status, 403, "{}", own.text());
    assert!(
        own.text().contains("E-REQUEST-SAME-OPERATOR"),
        "{}",
        own.text()
    );
}

/// The `order.revoked` record names console-simon as its actor and, as four-eyes, console-sophia
/// as the requester and console-simon as the approver.
#[track_caller]
pub(super) fn revoke_names_both_officers(st: &Station) {
    let revoked = crate::support::audit_record(&Value::Array(st.audit()), "order.revoked").clone();
    assert_eq!(revoked["actor"], "console-simon", "{revoked}");
    let four_eyes = detail(&revoked, "four_eyes");
    assert_eq!(four_eyes["requested_by"], "console-sophia", "{revoked}");
    assert_eq!(four_eyes["approved_by"], "console-simon", "{revoked}");
}

pub(super) fn detail(record: &Value, key: &str) -> Value {
    let d: Value = serde_json::from_str(record["details"].as_str().unwrap()).unwrap();
    d[key].clone()
}

#[test]
fn a_reviewer_logs_in_finds_the_order_sees_its_documents_and_approves_it_by_name() {
    let (st, serve) = station_with_console();
    let rita = register(&st, "console-rita", "reviewer");
    let mut c = Client::new();

    // Not logged in: pages lead to the login page.
    let queue = c.get(&serve, "/");
    assert_eq!(queue.status, 303);
    assert_eq!(queue.header("location"), "/login");

    // The login page: a session cookie before login, the security headers, no script at all.
    let page = c.get(&serve, "/login");
    assert_eq!(page.status, 200);
    let cookie = page.header("set-cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let csp = page.header("content-security-policy");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(!page.text().contains("<script"), "{}", page.text());
    assert!(page.text().contains("操作员登录"));
    let before_login = c.cookie.clone();

    // A wrong password: refused, audited, never echoed.
    let wrong = "not rita's password at all";
    let refused = c.post(
        &serve,
        "/login",
        &[
            ("csrf", &csrf_of(&page.text())),
            ("operator", "console-rita"),
            ("password", wrong),
            ("code", &rita.code()),
        ],
    );
    assert_eq!(refused.status, 401, "{}", refused.text());
    assert!(refused.text().contains("E-CONSOLE-LOGIN"));
    assert!(!refused.text().contains(wrong));

    // The right ones: a new session (the id known before login is worth nothing after).
    let ok = c.login(&serve, &rita);
    assert_eq!(ok.status, 303, "{}", ok.text());
    assert_eq!(ok.header("location"), "/");
    assert_ne!(c.cookie, before_login);

    // The queue: filter by state, search by number, company or USCC.
    let queue = c.get(&serve, "/").text();
    assert!(queue.contains(ORDER), "{queue}");
    assert!(queue.contains("console-rita"));
    assert!(
        queue.contains("<td>法定代表人手机（legal_rep_phone）</td>"),
        "the PIN's channel named: {queue}"
    );
    for q in ["ks-demo-0001", "星河数智", "9111 0000 6000 3734 1l"] {
        let path = format!("/?state=submitted&q={}", urlencode(q));
        assert!(c.get(&serve, &path).text().contains(ORDER), "search {q}");
    }
    assert!(!c.get(&serve, "/?state=approved").text().contains(ORDER));
    assert!(!c.get(&serve, "/?q=nothing-like-it").text().contains(ORDER));

    // The review page: fields beside the documents; the documents as stored, with their type.
    let review = c.get(&serve, &format!("/orders/{ORDER}")).text();
    assert!(review.contains("北京星河数智科技有限公司") && review.contains("统一社会信用代码"));
    // Coded values in Chinese, with the code the portal sent beside them.
    assert!(
        review.contains("法定代表人手机（legal_rep_phone）")
            && review.contains("居民身份证（resident_id）")
            && review.contains("单位印章和法定代表人印章（company_and_legal_rep）"),
        "{review}"
    );
    assert!(review.contains("待审核"));
    let src = format!("/orders/{ORDER}/documents/document/business_license");
    assert!(review.contains(&format!("src=\"{src}\"")), "{review}");
    assert!(!review.contains(&rita.password) && !review.contains(&rita.secret));
    let doc = c.get(&serve, &src);
    assert_eq!(doc.status, 200);
    assert_eq!(doc.header("content-type"), "image/png");
    assert_eq!(doc.body, fixture_document("business_license.png"));
    let jpeg = c.get(
        &serve,
        &format!("/orders/{ORDER}/documents/document/handler_id_front"),
    );
    assert_eq!(jpeg.header("content-type"), "image/jpeg");
    assert_eq!(jpeg.body, fixture_document("handler_id_front.jpg"));
    assert_eq!(
        c.get(&serve, &format!("/orders/{ORDER}/documents/document/nope"))
            .status,
        404
    );

    // Approve: the CLI's station method; the order moves and the trail names the operator.
    let csrf = c.review_csrf(&serve);
    let approved = c.post(
        &serve,
        &format!("/orders/{ORDER}/approve"),
        &[("csrf", &csrf), ("note", "证照齐全")],
    );
    assert_eq!(approved.status, 303, "{}", approved.text());
    assert_eq!(state_of(&st, ORDER), "Approved");
    let audit = Value::Array(st.audit());
    let record = audit_records(&audit, "order.approved");
    assert_eq!(record.len(), 1, "{audit}");
    assert_eq!(record[0]["actor"], "console-rita", "{}", record[0]);
    let logins = audit_records(&audit, "console.login");
    assert_eq!(logins.len(), 1);
    assert_eq!(logins[0]["actor"], "console-rita");
    let failed = audit_records(&audit, "console.login_failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(detail(failed[0], "reason"), "wrong_password");
    assert_eq!(detail(failed[0], "operator"), "console-rita");
    let trail = audit.to_string();
    assert!(
        !trail.contains(&rita.password) && !trail.contains(wrong) && !trail.contains(&rita.secret),
        "no secret in the trail"
    );
    st.audit_verifies();

    // Logout ends the session.
    let csrf = c.review_csrf(&serve);
    assert_eq!(c.post(&serve, "/logout", &[("csrf", &csrf)]).status, 303);
    assert_eq!(c.get(&serve, "/").status, 303);
}

#[test]
fn a_form_without_its_sessions_csrf_token_is_refused() {
    let (st, serve) = station_with_console();
    let rita = register(&st, "console-rita", "reviewer");
    let mut c = Client::new();
    assert_eq!(c.login(&serve, &rita).status, 303);
    let approve = format!("/orders/{ORDER}/approve");

    let none = c.post(&serve, &approve, &[("note", "x")]);
    assert_eq!(none.status, 403, "{}", none.text());
    assert!(none.text().contains("E-CONSOLE-CSRF"));
    // Another session's token is not this one's.
    let mut other = Client::new();
    let their_csrf = csrf_of(&other.get(&serve, "/login").text());
    let foreign = c.post(&serve, &approve, &[("csrf", &their_csrf)]);
    assert_eq!(foreign.status, 403);
    // The login form too.
    let no_csrf = [
        ("operator", "console-rita"),
        ("password", rita.password.as_str()),
        ("code", &rita.code_at_offset(1)),
    ];
    assert_eq!(other.post(&serve, "/login", &no_csrf).status, 403);
    assert_eq!(state_of(&st, ORDER), "Submitted");
    assert!(
        Value::Array(st.audit())
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["action"] != "order.approved")
    );
}

#[test]
fn the_station_refuses_a_role_the_operator_lacks_403() {
    let (st, serve) = station_with_console();
    // An auditor may look, not review.
    let auditor = register(&st, "console-audra", "auditor");
    let mut c = Client::new();
    assert_eq!(c.login(&serve, &auditor).status, 303);
    let csrf = c.review_csrf(&serve);
    let refused = c.post(
        &serve,
        &format!("/orders/{ORDER}/approve"),
        &[("csrf", &csrf)],
    );
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert!(
        refused.text().contains("E-OPERATOR-ROLE"),
        "{}",
        refused.text()
    );
    assert_eq!(state_of(&st, ORDER), "Submitted");

    // A reviewer cannot reach a security officer's action (revoke).
    let reviewer = register(&st, "console-rita", "reviewer");
    let mut r = Client::new();
    assert_eq!(r.login(&serve, &reviewer).status, 303);
    let csrf = r.review_csrf(&serve);
    let revoke = r.post(
        &serve,
        &format!("/orders/{ORDER}/revoke"),
        &[("csrf", &csrf), ("reason", "keyCompromise")],
    );
    assert_eq!(revoke.status, 403, "{}", revoke.text());
    assert!(revoke.text().contains("E-OPERATOR-ROLE"));
    assert!(revoke.text().contains("security_officer"));
    assert_eq!(state_of(&st, ORDER), "Submitted");
}

#[test]
fn on_postgresql_a_rejection_needs_its_reason_and_a_disabled_operator_is_refused_at_once() {
    let db = crate::pg::PgDatabase::create_blocking();
    let (st, serve) = console_of(Station::with_database(&db.url));
    let rita = register(&st, "console-rita", "reviewer");
    let mut c = Client::new();
    assert_eq!(c.login(&serve, &rita).status, 303);
    let reject = format!("/orders/{ORDER}/reject");

    let csrf = c.review_csrf(&serve);
    let no_reason = c.post(&serve, &reject, &[("csrf", &csrf), ("reason", "  ")]);
    assert_eq!(no_reason.status, 422, "{}", no_reason.text());
    assert!(no_reason.text().contains("reason"));

    // Disabled while logged in: the station refuses the next action.
    let admin = |args: &[&str]| crate::support::run_ok(st.admin_command().args(args));
    admin(&["operator", "disable", "console-rita"]);
    let refused = c.post(
        &serve,
        &reject,
        &[("csrf", &csrf), ("reason", "营业执照模糊")],
    );
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert!(refused.text().contains("E-OPERATOR-DISABLED"));
    assert_eq!(state_of(&st, ORDER), "Submitted");
    // And a disabled account cannot log in with the right password and an unused code
    // (audited with its name).
    let mut other = Client::new();
    let next = rita.code_at_offset(1);
    assert_eq!(
        other
            .login_with(&serve, &rita.name, &rita.password, &next)
            .status,
        401
    );

    admin(&["operator", "enable", "console-rita"]);
    let rejected = c.post(
        &serve,
        &reject,
        &[("csrf", &csrf), ("reason", "营业执照模糊")],
    );
    assert_eq!(rejected.status, 303, "{}", rejected.text());
    assert_eq!(state_of(&st, ORDER), "Rejected");
    let page = c.get(&serve, &format!("/orders/{ORDER}")).text();
    assert!(
        page.contains("已驳回") && page.contains("营业执照模糊"),
        "{page}"
    );

    let audit = Value::Array(st.audit());
    let rejection = audit_records(&audit, "order.rejected");
    assert_eq!(rejection.len(), 1, "{audit}");
    assert_eq!(rejection[0]["actor"], "console-rita");
    assert_eq!(detail(rejection[0], "reason"), "营业执照模糊");
    let failed = audit_records(&audit, "console.login_failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(detail(failed[0], "reason"), "disabled");
    assert_eq!(detail(failed[0], "operator"), "console-rita");
    st.audit_verifies();
    drop(serve);
}

#[test]
fn failed_logins_are_limited_per_client_and_audited() {
    let (st, serve) = station_with_console();
    let rita = register(&st, "console-rita", "reviewer");
    let mut c = Client::new();
    for _ in 0..5 {
        let wrong = c.login_with(&serve, &rita.name, "a guessed password", &rita.code());
        assert_eq!(wrong.status, 401);
    }
    // The sixth attempt is refused without looking at the password, even the right one.
    let limited = c.login(&serve, &rita);
    assert_eq!(limited.status, 429, "{}", limited.text());
    assert!(limited.text().contains("E-CONSOLE-LOGIN"));
    let audit = Value::Array(st.audit());
    let failed = audit_records(&audit, "console.login_failed");
    let reasons: Vec<_> = failed.iter().map(|r| detail(r, "reason")).collect();
    assert_eq!(reasons.len(), 6, "{reasons:?}");
    assert!(
        reasons[..5].iter().all(|r| r == "wrong_password"),
        "{reasons:?}"
    );
    assert_eq!(reasons[5], "rate_limited");
    assert!(audit_records(&audit, "console.login").is_empty());
}

#[test]
fn a_console_on_a_non_loopback_address_is_refused_without_tls() {
    let st = Station::sqlite();
    let stderr = serve_refused(&st, "0.0.0.0:0");
    assert!(
        stderr.contains("E-CONSOLE-INSECURE") && stderr.contains("loopback"),
        "{stderr}"
    );
}

/// Issue 17's four-eyes through the console: a security officer's revoke is only a request (the
/// order keeps its state, its page shows the request and no second revoke form); the
/// requester's own approval is refused 403 naming `E-REQUEST-SAME-OPERATOR`; a second security
/// officer's approval revokes the order, and its audit record names both.
#[test]
fn a_revoke_requested_in_the_console_waits_for_a_second_security_officer() {
    let (st, serve) = station_with_console();
    let (mut a, second) = revoke_asked_by_one_officer(&st, &serve);
    assert_eq!(
        state_of(&st, ORDER),
        "Provisioned",
        "revoked by one operator"
    );
    let page = a.get(&serve, &format!("/orders/{ORDER}")).text();
    assert!(page.contains("待第二位安全员批准的吊销申请"), "{page}");
    assert!(page.contains("console-sophia"), "{page}");
    assert!(
        !page.contains("id=\"revoke\""),
        "a second request offered: {page}"
    );
    let id = first_request_id(&page);
    own_approval_is_refused(&mut a, &serve, &id, &page);
    assert_eq!(state_of(&st, ORDER), "Provisioned");

    let mut b = Client::new();
    assert_eq!(b.login(&serve, &second).status, 303);
    let csrf = b.review_csrf(&serve);
    let approved = b.post(
        &serve,
        &format!("/requests/{id}/approve"),
        &[("csrf", &csrf)],
    );
    assert_eq!(approved.status, 303, "{}", approved.text());
    assert_eq!(state_of(&st, ORDER), "Revoked");
    revoke_names_both_officers(&st);
}

/// The station's own four-eyes requests (here an operator to add, asked for while two
/// administrators exist) are listed on `/requests`, with the command that decides them; the
/// page offers no form for them.
#[test]
fn an_operator_change_waiting_for_a_second_administrator_is_listed_on_the_requests_page() {
    let (st, serve) = station_with_console();
    // Registered while the admin is the only administrator (bootstrap), the second one last.
    let officer = register(&st, "console-sophia", "security_officer");
    register(&st, "console-bea", "administrator");
    let out = st
        .admin_command()
        .args(["--json", "operator", "add", "olga", "--role", "reviewer"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let asked: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = asked["id"].as_str().unwrap();

    let mut c = Client::new();
    assert_eq!(c.login(&serve, &officer).status, 303);
    let page = c.get(&serve, "/requests");
    assert_eq!(page.status, 200);
    let html = page.text();
    let row = &html[html
        .find(&format!("id=\"station-request-{id}\""))
        .unwrap_or_else(|| panic!("request {id} not listed: {html}"))..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains("新增操作员"), "{row}");
    assert!(row.contains("add operator olga (reviewer)"), "{row}");
    assert!(row.contains("admin"), "{row}");
    assert!(
        row.contains(&format!("keystation operator approve {id}")),
        "{row}"
    );
    assert!(
        !html.contains(&format!("/requests/{id}/approve")),
        "no form for it"
    );
}
