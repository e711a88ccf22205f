//! The console in a real browser: Debian's Chromium, headless, driven by ChromeDriver over
//! WebDriver (fantoccini on plain HTTP to the driver on loopback: no TLS stack involved). A
//! reviewer approves an order seeing its documents rendered; a revoke requested by one security
//! officer stays pending, its requester cannot approve it, and a second officer's approval
//! revokes the order.

use super::{
    Login, ORDER, provisioned_with_two_officers, publish_shot, register, state_of,
    station_with_console, url,
};
use crate::support::Station;
use fantoccini::{Client, ClientBuilder, Locator};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A ChromeDriver on a free loopback port; killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Driver {
        for tool in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(tool).exists(),
                "{tool} is missing: scripts/setup.sh installs chromium and chromium-driver"
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        // Ready when it takes connections.
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Driver { child, url }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a browser test runs in: a ChromeDriver, the station's screenshot directory (made) and
/// the runtime the WebDriver sessions run on.
pub(super) struct Chromium {
    driver: Driver,
    pub(super) shots: PathBuf,
    pub(super) rt: tokio::runtime::Runtime,
}

impl Chromium {
    pub(super) fn start(st: &Station) -> Chromium {
        let shots = st.tmp().join("screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        Chromium {
            driver: Driver::start(),
            shots,
            rt: crate::support::runtime(),
        }
    }

    /// A new browser session, logged in as `who` with name, password and the authenticator's
    /// code.
    pub(super) async fn logged_in(&self, serve: &crate::ocsp::Serve, who: &Login) -> Client {
        let b = connect(&self.driver).await;
        log_in(&b, serve, who).await;
        b
    }
}

/// The text of the element with id `id` on the current page.
pub(super) async fn text_of(b: &Client, id: &str) -> String {
    let element = b.find(Locator::Id(id)).await.unwrap();
    element.text().await.unwrap()
}

async fn connect(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            // Root in a container: no sandbox; no GPU; a window large enough for the review page.
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1400,1200", "--lang=zh-CN"],
            // A Chinese operator's browser: headless Chromium ignores --lang for the
            // Accept-Language it sends (en-US), which the console takes as its default.
            "prefs": {"intl.accept_languages": "zh-CN,zh"},
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a WebDriver session in Chromium")
}

#[test]
fn a_reviewer_sees_the_documents_rendered_and_approves_in_chromium() {
    let (st, serve) = station_with_console();
    let rita = register(&st, "console-rita", "reviewer");
    let chromium = Chromium::start(&st);
    chromium.rt.block_on(async {
        // Log in with name, password and the authenticator's code.
        let b = chromium.logged_in(&serve, &rita).await;

        // The queue, with the fixture order.
        let link = b
            .find(Locator::LinkText(ORDER))
            .await
            .expect("the order in the queue");
        let queue_png = b.screenshot().await.unwrap();
        let queue_file = chromium.shots.join("console-queue.png");
        std::fs::write(&queue_file, &queue_png).unwrap();
        link.click().await.unwrap();

        // The review page: every document image actually rendered.
        b.wait().for_element(Locator::Id("fields")).await.unwrap();
        let images = b.find_all(Locator::Css("img.document")).await.unwrap();
        assert_eq!(images.len(), 7, "five documents and two seal pictures");
        for img in &images {
            let src = img.attr("src").await.unwrap().unwrap_or_default();
            // Read in the page (the script runs through WebDriver, not the page: CSP allows it).
            let arg = vec![serde_json::to_value(img).unwrap()];
            let deadline = Instant::now() + Duration::from_secs(20);
            while b
                .execute("return arguments[0].complete;", arg.clone())
                .await
                .unwrap()
                != serde_json::Value::Bool(true)
            {
                assert!(Instant::now() < deadline, "{src} never loaded");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let width = b
                .execute("return arguments[0].naturalWidth;", arg)
                .await
                .unwrap()
                .as_u64()
                .unwrap();
            assert!(width > 0, "{src} is not rendered (naturalWidth 0)");
        }
        let review_png = b.screenshot().await.unwrap();
        let review_file = chromium.shots.join("console-review.png");
        std::fs::write(&review_file, &review_png).unwrap();

        // Approve it.
        b.find(Locator::Id("approve"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        // The page reloads after the post: read the state until the new page shows it.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let shown = match b.find(Locator::Id("order-state")).await {
                Ok(e) => e.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if shown == "已批准" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the page never showed 已批准: {shown:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        b.close().await.unwrap();

        for (file, png) in [(&queue_file, &queue_png), (&review_file, &review_png)] {
            assert!(
                png.starts_with(b"\x89PNG\r\n\x1a\n"),
                "{} is a PNG",
                file.display()
            );
            publish_shot(file);
        }
    });
    assert_eq!(state_of(&st, ORDER), "Approved");
    let audit = serde_json::Value::Array(st.audit());
    let approved = crate::support::audit_record(&audit, "order.approved");
    assert_eq!(approved["actor"], "console-rita");
}

/// Logs `b` in as `who` (name, password, the current TOTP code typed into the form) and waits
/// for the page to name them.
async fn log_in(b: &Client, serve: &crate::ocsp::Serve, who: &Login) {
    b.goto(&url(serve, "/login")).await.unwrap();
    for (field, value) in [
        ("operator", who.name.clone()),
        ("password", who.password.clone()),
        ("code", who.code()),
    ] {
        b.find(Locator::Id(field))
            .await
            .unwrap_or_else(|e| panic!("the login form's {field} field: {e}"))
            .send_keys(&value)
            .await
            .unwrap();
    }
    click(b, "login", "the login button").await;
    let shown = b.wait().for_element(Locator::Id("whoami")).await.unwrap();
    assert_eq!(shown.text().await.unwrap(), who.name);
}

/// Clicks the element with id `id` (`what` names it when it is missing).
pub(super) async fn click(b: &Client, id: &str, what: &str) {
    b.find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"))
        .click()
        .await
        .unwrap();
}

/// The page's source once `check` holds for it, within 20 s.
pub(super) async fn page_once(b: &Client, what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let html = b.source().await.unwrap_or_default();
        if check(&html) {
            return html;
        }
        assert!(Instant::now() < deadline, "never {what}: {html}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn a_revoke_requested_by_one_officer_waits_for_a_second_in_chromium() {
    let (st, serve) = station_with_console();
    let (first, second) = provisioned_with_two_officers(&st);
    let chromium = Chromium::start(&st);
    let pending_file = chromium.shots.join("console-revoke-pending.png");
    chromium.rt.block_on(async {
        let a = chromium.logged_in(&serve, &first).await;
        a.goto(&url(&serve, &format!("/orders/{ORDER}")))
            .await
            .unwrap();
        click(&a, "revoke", "the revoke form of a provisioned order").await;
        // Back on the order's page: the request waits, the order is as it was.
        let page = page_once(&a, "a pending request", |h| {
            h.contains("id=\"approve-revoke\"")
        })
        .await;
        assert!(page.contains("待第二位安全员批准的吊销申请"), "{page}");
        assert!(page.contains("已制作"), "{page}");
        a.execute(
            "document.querySelector('div.pending').scrollIntoView(); window.scrollBy(0, -80);",
            vec![],
        )
        .await
        .unwrap();
        std::fs::write(&pending_file, a.screenshot().await.unwrap()).unwrap();

        // Its requester cannot approve it.
        click(&a, "approve-revoke", "the pending request").await;
        page_once(&a, "the requester refused", |h| {
            h.contains("E-REQUEST-SAME-OPERATOR")
        })
        .await;
        a.close().await.unwrap();
        assert_eq!(
            state_of(&st, ORDER),
            "Provisioned",
            "one officer revoked it"
        );

        // A second security officer, in another browser session, approves it.
        let b = chromium.logged_in(&serve, &second).await;
        b.goto(&url(&serve, &format!("/orders/{ORDER}")))
            .await
            .unwrap();
        click(
            &b,
            "approve-revoke",
            "the pending request on the second officer's page",
        )
        .await;
        page_once(&b, "revoked", |h| h.contains("已吊销")).await;
        b.close().await.unwrap();
    });
    publish_shot(&pending_file);
    assert_eq!(state_of(&st, ORDER), "Revoked");
    let audit = serde_json::Value::Array(st.audit());
    let revoked = crate::support::audit_record(&audit, "order.revoked");
    assert_eq!(revoked["actor"], "console-simon", "{revoked}");
}
