//! The console in a real browser: Debian's Chromium, headless, driven by ChromeDriver over
//! WebDriver (fantoccini on plain HTTP to the driver on loopback: no TLS stack involved).

use super::{ORDER, publish_shot, register, state_of, station_with_console, url};
use fantoccini::{Client, ClientBuilder, Locator};
use std::net::TcpListener;
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

async fn connect(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            // Root in a container: no sandbox; no GPU; a window large enough for the review page.
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1400,1200", "--lang=zh-CN"],
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
    let token = register(&st, "console-rita", "reviewer");
    let driver = Driver::start();
    let shots = st.tmp().join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let rt = crate::support::runtime();
    rt.block_on(async {
        let b = connect(&driver).await;
        // Log in with the credential token.
        b.goto(&url(&serve, "/login")).await.unwrap();
        b.find(Locator::Id("token"))
            .await
            .unwrap()
            .send_keys(&token)
            .await
            .unwrap();
        b.find(Locator::Id("login"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let who = b.wait().for_element(Locator::Id("whoami")).await.unwrap();
        assert_eq!(who.text().await.unwrap(), "console-rita");

        // The queue, with the fixture order.
        let link = b
            .find(Locator::LinkText(ORDER))
            .await
            .expect("the order in the queue");
        let queue_png = b.screenshot().await.unwrap();
        let queue_file = shots.join("console-queue.png");
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
        let review_file = shots.join("console-review.png");
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
