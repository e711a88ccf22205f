//! The console's English switch (issue 17, item 2: "zh-CN by default with an English switch"):
//! over HTTP, the `?lang=` link sets a cookie and the pages (queue, review, login, an error
//! page) come in English with `<html lang="en">` until switched back; `Accept-Language` only
//! sets the default. In Chromium, the switch in the header is clicked and the English queue is
//! saved as a screenshot beside the Chinese one; a batch's live progress (the page's script)
//! speaks English too.

use super::browser::{Chromium, click, page_once, text_of};
use super::http::{Answer, Client};
use super::{ORDER, csrf_of, publish_shot, register, station_with_console, url};
use fantoccini::Locator;

const COMPANY: &str = "北京星河数智科技有限公司";

fn han(s: &str) -> Vec<char> {
    s.chars()
        .filter(|c| ('\u{4e00}'..='\u{9fff}').contains(c))
        .collect()
}

/// The switch link's target on a page.
fn switch_href(html: &str) -> String {
    let at = html
        .find("id=\"lang-switch\"")
        .unwrap_or_else(|| panic!("no language switch on {html}"));
    let rest = &html[at..];
    let href = &rest[rest.find("href=\"").unwrap() + 6..];
    href[..href.find('"').unwrap()].to_string()
}

/// Follows the switch of `page` (a GET of its link, relative to `path`) and checks the answer:
/// back to `path`, the cookie as the session's.
fn switch(c: &mut Client, serve: &crate::ocsp::Serve, page: &Answer, path: &str, to: &str) {
    let href = switch_href(&page.text());
    assert_eq!(href, format!("?lang={to}"), "the switch of {path}");
    let answer = c.get(serve, &format!("{path}{href}"));
    assert_eq!(answer.status, 303, "{}", answer.text());
    assert_eq!(answer.header("location"), path);
    let cookie = answer.header("set-cookie");
    assert!(cookie.starts_with(&format!("ks_lang={to};")), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    // The way back carries the console's headers too.
    assert_eq!(answer.header("x-frame-options"), "DENY");
}

#[test]
fn the_switch_turns_the_console_english_and_back_and_the_choice_persists() {
    let (st, serve) = station_with_console();
    let rita = register(&st, "console-rita", "reviewer");
    let mut c = Client::new();

    // By default: Chinese, with the switch to English on the login page.
    let login = c.get(&serve, "/login");
    let html = login.text();
    assert!(html.contains("<html lang=\"zh-CN\">") && html.contains("操作员登录"));
    assert!(html.contains(">English</a>"), "{html}");
    switch(&mut c, &serve, &login, "/login", "en");

    // The login page in English; the choice survives the login (a new session).
    let login = c.get(&serve, "/login");
    let html = login.text();
    assert!(html.contains("<html lang=\"en\">"), "{html}");
    assert!(html.contains("Operator login") && !html.contains("操作员登录"));
    assert!(html.contains(">中文</a>"));
    let csp = login.header("content-security-policy");
    assert!(!csp.contains("unsafe-inline") && !html.contains("<script"));
    let refused = c.post(
        &serve,
        "/login",
        &[
            ("csrf", &csrf_of(&html)),
            ("operator", "console-rita"),
            ("password", "not the password"),
            ("code", &rita.code()),
        ],
    );
    assert_eq!(refused.status, 401);
    assert!(
        refused.text().contains("Login failed") && refused.text().contains("E-CONSOLE-LOGIN"),
        "{}",
        refused.text()
    );
    assert_eq!(c.login(&serve, &rita).status, 303);

    // The queue: English title, navigation, headers, state names; the company as it is.
    let queue = c.get(&serve, "/");
    assert_eq!(queue.status, 200);
    let html = queue.text();
    assert!(html.contains("<html lang=\"en\">"), "{html}");
    for text in [
        "<title>Order queue · keystation console</title>",
        "<h1>Order queue</h1>",
        ">Pending requests</a>",
        ">Audit log</a>",
        ">Log out</button>",
        "<th>Company name</th>",
        ">Awaiting review</td>",
        "Orders: 1",
        // The PIN's channel named, its code beside it.
        "s phone (legal_rep_phone)</td>",
        COMPANY,
    ] {
        assert!(html.contains(text), "no {text:?} in {html}");
    }
    // Nothing else in Chinese but the customer's data and the switch's own name.
    let rest = html.replace(COMPANY, "").replace(">中文</a>", "");
    assert!(han(&rest).is_empty(), "Chinese left: {:?}", han(&rest));

    // The review page, on another request: still English.
    let review = c.get(&serve, &format!("/orders/{ORDER}"));
    let html = review.text();
    assert!(html.contains("<html lang=\"en\">"), "{html}");
    for text in [
        &format!("<title>Review {ORDER} · keystation console</title>"),
        "<h2>Application form</h2>",
        "<th>Company name</th>",
        "Main key (main)",
        "Business licence",
        ">Approve</button>",
        ">Order queue</a>",
        COMPANY,
    ] {
        assert!(html.contains(text), "no {text:?} in {html}");
    }
    assert!(!html.contains("申请表") && !html.contains("营业执照"));

    // An error page (a form without its CSRF token) in English; its switch leads to the queue.
    let refused = c.post(&serve, &format!("/orders/{ORDER}/approve"), &[]);
    assert_eq!(refused.status, 403);
    let html = refused.text();
    assert!(
        html.contains("<h1>Not allowed</h1>") && html.contains("CSRF"),
        "{html}"
    );
    assert_eq!(switch_href(&html), "/?lang=zh-CN");

    // An unknown language: refused, naming the field.
    let unknown = c.get(&serve, "/?lang=fr");
    assert_eq!(unknown.status, 400);
    assert!(unknown.text().contains("lang:"), "{}", unknown.text());

    // Back to Chinese from the review page; other parameters stay.
    let review = c.get(&serve, &format!("/orders/{ORDER}"));
    switch(
        &mut c,
        &serve,
        &review,
        &format!("/orders/{ORDER}"),
        "zh-CN",
    );
    let back = c.get(&serve, "/?state=submitted&lang=zh-CN");
    assert_eq!(back.header("location"), "/?state=submitted");
    for path in ["/", &format!("/orders/{ORDER}")] {
        let html = c.get(&serve, path).text();
        assert!(html.contains("<html lang=\"zh-CN\">"), "{path}: {html}");
        assert!(!html.contains("Order queue"), "{path}");
    }
    let queue = c.get(&serve, "/").text();
    assert!(queue.contains("<h1>订单队列</h1>") && queue.contains(">待审核</td>"));
    let review = c.get(&serve, &format!("/orders/{ORDER}")).text();
    assert!(review.contains("<h2>申请表</h2>") && review.contains("主密钥（main）"));
}

#[test]
fn the_browser_s_language_is_only_the_default() {
    let (_st, serve) = station_with_console();
    let page_in = |accept: Option<&str>| {
        let mut c = Client::new();
        let mut req = c.http.get(url(&serve, "/login"));
        if let Some(a) = accept {
            req = req.header("accept-language", a);
        }
        c.send(req).text()
    };
    assert!(page_in(None).contains("<html lang=\"zh-CN\">"));
    assert!(page_in(Some("zh-CN,zh;q=0.9,en;q=0.8")).contains("<html lang=\"zh-CN\">"));
    assert!(page_in(Some("fr-FR")).contains("<html lang=\"zh-CN\">"));
    assert!(page_in(Some("en-US,en;q=0.9")).contains("<html lang=\"en\">"));

    // The switch wins over the browser.
    let mut c = Client::new();
    let switched = c.get(&serve, "/login?lang=zh-CN");
    assert_eq!(switched.status, 303);
    let req = c
        .http
        .get(url(&serve, "/login"))
        .header("accept-language", "en-US");
    assert!(c.send(req).text().contains("<html lang=\"zh-CN\">"));
}

#[test]
fn the_switch_clicked_in_chromium_gives_the_english_queue() {
    let (st, serve) = station_with_console();
    let rita = register(&st, "console-rita", "reviewer");
    let chromium = Chromium::start(&st);
    let (zh_file, en_file) = (
        chromium.shots.join("console-queue-zh.png"),
        chromium.shots.join("console-queue-en.png"),
    );
    chromium.rt.block_on(async {
        let b = chromium.logged_in(&serve, &rita).await;
        b.find(Locator::LinkText(ORDER)).await.unwrap();
        let lang = b.find(Locator::Css("html")).await.unwrap();
        assert_eq!(lang.attr("lang").await.unwrap().as_deref(), Some("zh-CN"));
        std::fs::write(&zh_file, b.screenshot().await.unwrap()).unwrap();

        click(&b, "lang-switch", "the language switch").await;
        let html = page_once(&b, "the English queue", |h| {
            h.contains("<h1>Order queue</h1>")
        })
        .await;
        assert!(html.contains("Awaiting review") && html.contains(COMPANY));
        let lang = b.find(Locator::Css("html")).await.unwrap();
        assert_eq!(lang.attr("lang").await.unwrap().as_deref(), Some("en"));
        assert_eq!(b.current_url().await.unwrap().path(), "/");
        std::fs::write(&en_file, b.screenshot().await.unwrap()).unwrap();

        // The choice holds on the next page, and the switch turns it back.
        b.find(Locator::LinkText(ORDER))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        page_once(&b, "the English review page", |h| {
            h.contains("Application form")
        })
        .await;
        click(&b, "lang-switch", "the language switch").await;
        page_once(&b, "the Chinese review page", |h| h.contains("申请表")).await;
        b.close().await.unwrap();
    });
    for file in [&zh_file, &en_file] {
        let png = std::fs::read(file).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{}", file.display());
        publish_shot(file);
    }
}

#[test]
fn every_other_page_comes_in_english_after_the_switch() {
    let (st, serve) = station_with_console();
    let audra = register(&st, "console-audra", "auditor");
    let mut c = Client::new();
    assert_eq!(c.login(&serve, &audra).status, 303);
    assert_eq!(c.get(&serve, "/?lang=en").status, 303);
    for (path, title, text) in [
        (
            "/provision",
            "Provisioning",
            "data-job-done=\"Provisioned\"",
        ),
        (
            "/requests",
            "Pending requests",
            "No request is waiting for approval.",
        ),
        (
            "/certificates",
            "Certificates &#38; revocation",
            "Certificate revocation list (CRL)",
        ),
        ("/deliveries", "PIN deliveries", "Deliveries: 0"),
        ("/audit", "Audit log", "Audit chain verified"),
        ("/check", "Check", "<h1>Consistency check</h1>"),
    ] {
        let page = c.get(&serve, path);
        assert_eq!(page.status, 200, "{path}: {}", page.text());
        let html = page.text();
        assert!(html.contains("<html lang=\"en\">"), "{path}: {html}");
        assert!(
            html.contains(&format!("<title>{title} · keystation console</title>")),
            "{path}: {html}"
        );
        assert!(html.contains(text), "{path}: no {text:?} in {html}");
    }
}

#[test]
fn a_batch_s_live_progress_speaks_english_after_the_switch_in_chromium() {
    use super::provision::{SECOND, approved_station_and_provisioner};
    let (st, serve, paul) = approved_station_and_provisioner();
    let chromium = Chromium::start(&st);
    let shot = chromium.shots.join("console-provision-en.png");
    chromium.rt.block_on(async {
        let b = chromium.logged_in(&serve, &paul).await;
        b.goto(&url(&serve, "/provision?lang=en")).await.unwrap();
        click(&b, "start-batch", "the batch form's button").await;
        let html = page_once(&b, "the batch's end", |h| {
            h.contains("data-state=\"ended\"")
        })
        .await;
        let status = text_of(&b, "batch-status").await;
        assert!(
            status.starts_with("Batch ended: 2 succeeded, 0 failed"),
            "{status}"
        );
        for no in [ORDER, SECOND] {
            let row = b.find(Locator::Id(&format!("job-{no}"))).await.unwrap();
            let text = row.text().await.unwrap();
            assert!(
                text.contains("Provisioned")
                    && text.contains("Finish: done")
                    && text.contains("token ")
                    && text.contains("certificate serial"),
                "{no}: {text}"
            );
            assert!(han(&text).is_empty(), "{no}: {text}");
        }
        assert!(html.contains("<html lang=\"en\">"));
        std::fs::write(&shot, b.screenshot().await.unwrap()).unwrap();
        b.close().await.unwrap();
    });
    publish_shot(&shot);
    assert_eq!(super::state_of(&st, SECOND), "Provisioned");
}
