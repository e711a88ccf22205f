//! The console's other pages over HTTP: requests waiting for a second approval (decided there,
//! four-eyes kept by the station), certificates and the CRL, the audit trail with its verdict,
//! deliveries, `check`'s results — each with real data, each refused to an anonymous client and
//! to a role that has no business there.

use super::http::{
    Client, own_approval_is_refused, revoke_asked_by_one_officer, revoke_names_both_officers,
};
use super::{ORDER, csrf_of, first_request_id, register, state_of, station_with_console};
use serde_json::Value;

const PAGES: [&str; 5] = [
    "/requests",
    "/certificates",
    "/audit",
    "/deliveries",
    "/check",
];

#[test]
fn the_read_pages_show_real_data_to_their_roles_and_refuse_the_others() {
    let (st, serve) = station_with_console();
    st.run(&["order", "approve", ORDER, "--operator", "console-reviewer"])
        .expect_code(0);
    let provisioned = st
        .run(&["--json", "provision", ORDER])
        .expect_code(0)
        .json();
    let serial = provisioned["certificate_serial"]
        .as_str()
        .unwrap()
        .to_string();
    st.run(&["ca", "crl"]).expect_code(0);
    // Shipping queues the PIN's delivery.
    st.run(&["ship", ORDER, "--tracking", "SF0001"])
        .expect_code(0);

    // Anonymous: every page leads to the login page, nothing rendered.
    let mut anonymous = Client::new();
    for page in PAGES {
        let a = anonymous.get(&serve, page);
        assert_eq!(a.status, 303, "{page}");
        assert_eq!(a.header("location"), "/login", "{page}");
    }

    let auditor = register(&st, "console-audra", "auditor");
    let mut a = Client::new();
    assert_eq!(a.login(&serve, &auditor).status, 303);

    let certs = a.get(&serve, "/certificates");
    assert_eq!(certs.status, 200, "{}", certs.text());
    let html = certs.text();
    assert!(html.contains(&serial) && html.contains(ORDER), "{html}");
    assert!(html.contains("有效（已写入令牌）"), "{html}");
    assert!(html.contains("id=\"crl-number\">"), "{html}");
    assert!(html.contains("下次更新"), "{html}");

    let audit = a.get(&serve, "/audit");
    assert_eq!(audit.status, 200, "{}", audit.text());
    let html = audit.text();
    assert!(
        html.contains("id=\"audit-verdict\" data-ok=\"true\""),
        "{html}"
    );
    assert!(html.contains("审计链校验通过"), "{html}");
    assert!(html.contains("order.provisioned") && html.contains("console-audra"));
    // Newest first: the auditor's own login is above the provisioning.
    assert!(html.find("console.login").unwrap() < html.find("order.provisioned").unwrap());
    // A page number past the end is the last page.
    assert_eq!(a.get(&serve, "/audit?page=999").status, 200);

    let deliveries = a.get(&serve, "/deliveries");
    assert_eq!(deliveries.status, 200, "{}", deliveries.text());
    let html = deliveries.text();
    let shown: Value = st
        .run(&["--json", "deliver", "status"])
        .expect_code(0)
        .json();
    for d in shown.as_array().unwrap() {
        let id = d["id"].as_str().or(d["delivery"]["id"].as_str()).unwrap();
        assert!(html.contains(id), "delivery {id} not on the page: {html}");
    }
    assert!(
        !shown.as_array().unwrap().is_empty(),
        "shipping queued the PIN's delivery"
    );
    assert!(html.contains(ORDER) && html.contains("排队中"), "{html}");

    let check = a.get(&serve, "/check");
    assert_eq!(check.status, 200, "{}", check.text());
    assert!(
        check
            .text()
            .contains("id=\"check-verdict\" data-ok=\"true\""),
        "{}",
        check.text()
    );
    assert!(a.get(&serve, "/requests").status == 200);

    // A reviewer: the requests, not the trail, the check, the certificates or the deliveries.
    let reviewer = register(&st, "console-rita", "reviewer");
    let mut r = Client::new();
    assert_eq!(r.login(&serve, &reviewer).status, 303);
    assert_eq!(r.get(&serve, "/requests").status, 200);
    for page in ["/audit", "/check", "/certificates", "/deliveries"] {
        let refused = r.get(&serve, page);
        assert_eq!(refused.status, 403, "{page}: {}", refused.text());
        assert!(refused.text().contains("E-OPERATOR-ROLE"), "{page}");
    }
    // No secret on any page: neither the operators' passwords and TOTP secrets nor their
    // credential tokens show.
    let tokens: Vec<String> = ["console-audra", "console-rita"]
        .iter()
        .map(|n| std::fs::read_to_string(st.tmp().join(format!("{n}.credential"))).unwrap())
        .collect();
    for page in PAGES {
        let html = a.get(&serve, page).text();
        for who in [&auditor, &reviewer] {
            assert!(
                !html.contains(&who.password) && !html.contains(&who.secret),
                "{page}"
            );
        }
        for t in &tokens {
            assert!(!html.contains(t.trim()), "{page}");
        }
    }
}

#[test]
fn a_request_waiting_on_the_requests_page_is_decided_there_by_a_second_officer_only() {
    let (st, serve) = station_with_console();
    let (mut a, second) = revoke_asked_by_one_officer(&st, &serve);
    let reviewer = register(&st, "console-rita", "reviewer");

    // Listed with its kind, order, requester and words.
    let page = a.get(&serve, "/requests");
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text();
    assert!(html.contains("吊销订单（revoke）"), "{html}");
    assert!(html.contains("console-sophia") && html.contains("客户报告私钥可能泄露"));
    let id = first_request_id(&html);

    // The requester's own approval: refused by the station.
    own_approval_is_refused(&mut a, &serve, &id, &html);
    // A reviewer sees the list but may not decide.
    let mut r = Client::new();
    assert_eq!(r.login(&serve, &reviewer).status, 303);
    let html = r.get(&serve, "/requests").text();
    assert!(html.contains(&id));
    let refused = r.post(
        &serve,
        &format!("/requests/{id}/approve"),
        &[("csrf", &csrf_of(&html))],
    );
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert!(refused.text().contains("E-OPERATOR-ROLE"));
    // Without the CSRF token: refused before anything.
    let mut b = Client::new();
    assert_eq!(b.login(&serve, &second).status, 303);
    assert_eq!(
        b.post(&serve, &format!("/requests/{id}/approve"), &[])
            .status,
        403
    );
    assert_eq!(state_of(&st, ORDER), "Provisioned");

    // The second officer approves from the list: carried out at once.
    let html = b.get(&serve, "/requests").text();
    let approved = b.post(
        &serve,
        &format!("/requests/{id}/approve"),
        &[("csrf", &csrf_of(&html))],
    );
    assert_eq!(approved.status, 303, "{}", approved.text());
    assert_eq!(state_of(&st, ORDER), "Revoked");
    assert!(!b.get(&serve, "/requests").text().contains(&id));
    revoke_names_both_officers(&st);
}
