//! The provisioning page in real Chromium: a provisioner starts a batch of the approved fixture
//! orders, each job's progress appears on the page as the server-sent events arrive (read from
//! the DOM), and the batch ends with every order Provisioned (checked through the CLI too).

use super::browser::{Chromium, click, page_once, text_of};
use super::provision::{SECOND, STEPS, approved_station_and_provisioner};
use super::{ORDER, publish_shot, state_of, url};
use fantoccini::Locator;
use std::time::{Duration, Instant};

/// What the page shows of the jobs: per order, its state cell and the steps listed as done.
async fn jobs_shown(b: &fantoccini::Client) -> serde_json::Value {
    b.execute(
        "const out = {};
         for (const row of document.querySelectorAll('#jobs tbody tr')) {
           out[row.dataset.order] = {
             state: row.querySelector('td.state').textContent,
             steps: Array.from(row.querySelectorAll('ol.steps li')).map(li => li.dataset.step),
           };
         }
         return out;",
        vec![],
    )
    .await
    .unwrap()
}

#[test]
fn a_provisioner_watches_a_batch_live_in_chromium_until_every_order_is_provisioned() {
    let (st, serve, token) = approved_station_and_provisioner();
    let chromium = Chromium::start(&st);
    let shot = chromium.shots.join("console-provision.png");
    let last = chromium.rt.block_on(async {
        let b = chromium.logged_in(&serve, &token).await;
        b.goto(&url(&serve, "/provision")).await.unwrap();
        let waiting = b.find(Locator::Id("waiting")).await.unwrap();
        let text = waiting.text().await.unwrap();
        assert!(text.contains(ORDER) && text.contains(SECOND), "{text}");
        click(&b, "start-batch", "the batch form's button").await;

        // Back on the page: read the jobs as the events fill them in, until the batch ends.
        // Every distinct picture of the table is kept (for the message if the batch hangs).
        let mut seen: Vec<serde_json::Value> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let jobs = jobs_shown(&b).await;
            if seen.last() != Some(&jobs) {
                seen.push(jobs);
            }
            // Read in one script: the page replaces the status element as events arrive, so a
            // found element can be stale by the time its attribute is asked for.
            let ended = b
                .execute(
                    "const e = document.getElementById('batch-status');
                     return e !== null && e.dataset.state === 'ended';",
                    vec![],
                )
                .await
                .unwrap()
                == serde_json::Value::Bool(true);
            if ended {
                break;
            }
            assert!(Instant::now() < deadline, "the batch never ended: {seen:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let last = jobs_shown(&b).await;
        let status = text_of(&b, "batch-status").await;
        assert!(status.contains("成功 2 个，失败 0 个"), "{status}");
        std::fs::write(&shot, b.screenshot().await.unwrap()).unwrap();

        // A reload replays the finished batch from its first event.
        b.refresh().await.unwrap();
        page_once(&b, "the replayed batch", |h| {
            h.matches("已制作").count() >= 2
        })
        .await;
        b.close().await.unwrap();
        last
    });
    publish_shot(&shot);

    for no in [ORDER, SECOND] {
        let job = &last[no];
        assert_eq!(job["state"], "已制作", "{no}: {last}");
        let steps: Vec<&str> = job["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        for step in STEPS {
            assert!(steps.contains(&step), "{no}: {step} missing from {steps:?}");
        }
        // Listed as each event came: in the job's order of steps.
        let at = |s: &str| steps.iter().position(|x| *x == s).unwrap();
        assert!(at("init_token") < at("generate_key") && at("generate_key") < at("finish"));
        assert_eq!(state_of(&st, no), "Provisioned", "{no}");
    }
    let audit = serde_json::Value::Array(st.audit());
    let finished = crate::support::audit_records(&audit, "order.provisioned");
    assert_eq!(finished.len(), 2, "{audit}");
    for r in finished {
        assert_eq!(r["actor"], "console-paul", "{r}");
    }
}
