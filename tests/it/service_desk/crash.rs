//! A PIN reset killed at every step of its run, then run again: it finishes, the new PIN is
//! queued exactly once and sent exactly once, and opens the token; the PIN before it does not.
//! One order goes through one reset per kill point, each reset's PIN replacing the last.

use super::*;

/// Every failpoint of a PIN reset's run, in the order a run passes them.
const PIN_RESET_POINTS: &[&str] = &[
    "pin_reset.seal_pin.started",
    "pin_reset.seal_pin.before_done",
    "pin_reset.init_pin.started",
    "pin_reset.init_pin.before_done",
    "pin_reset.queue_delivery.started",
    "pin_reset.queue_delivery.before_commit",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pin_reset_killed_at_every_step_resumes_and_sends_its_pin_once() {
    let st = TestStation::init().await;
    let (no, mut current) = delivered_sms_order(&st, "DESK-CRASH").await;
    for (i, point) in PIN_RESET_POINTS.iter().enumerate() {
        let generation = i as i64 + 1;
        let id = request_reset(&st, &no).await;
        let out = approved_and_run_with(&st, "pin-reset", &id, &format!("{point}=abort")).await;
        crashed_at(&out, point);
        // Killed: still executing, nothing queued yet.
        let shown = st.json(&["pin-reset", "show", &id]).await;
        assert_eq!(shown["state"], "executing", "{point}: {shown:#}");
        assert!(
            deliveries_of_generation(&st, &no, generation)
                .await
                .is_empty(),
            "{point}"
        );
        // `check` holds, and points at the unfinished request.
        let check = st.json(&["check"]).await;
        assert!(
            check["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["rule"] == "request_unfinished"
                    && f["message"].as_str().unwrap().contains(&id)),
            "{point}: {check:#}"
        );
        // The worker finds nothing to send meanwhile.
        let idle = st.deliver_once().await;
        assert!(
            idle["events"].as_array().unwrap().is_empty(),
            "{point}: {idle:#}"
        );

        // Run again: it resumes and finishes.
        let run = st
            .json(&["pin-reset", "run", &id, "--operator", ALICE])
            .await;
        assert_eq!(run["resumed"], true, "{point}");
        assert_eq!(run["pin_generation"], generation, "{point}");
        let queued = deliveries_of_generation(&st, &no, generation).await;
        assert_eq!(queued.len(), 1, "{point}: queued exactly once");
        let steps = st.json(&["pin-reset", "show", &id]).await["steps"].clone();
        assert!(
            steps
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["status"] == "done"),
            "{point}: {steps:#}"
        );

        // Sent once; the new PIN opens the token, the one before it does not.
        let new_pin = deliver_pin(&st, &no).await;
        assert!(
            pin_opens_token(&st, &no, &new_pin),
            "{point}: the new PIN does not open"
        );
        assert!(
            !pin_opens_token(&st, &no, &current),
            "{point}: the previous PIN still opens"
        );
        current = new_pin;
        assert_eq!(
            st.deliveries(&no).await.len(),
            generation as usize + 1,
            "{point}: one delivery per PIN"
        );
        let spool: Vec<_> = st
            .files_in("spool/sms")
            .into_iter()
            .filter(|p| p.to_string_lossy().ends_with(".json"))
            .collect();
        assert!(spool.is_empty(), "{point}: station copies left: {spool:?}");
    }
    st.ok(&["audit", "verify"]).await;
    st.ok(&["check"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_fails_is_recorded_failed_and_resumes() {
    let st = TestStation::init().await;
    let (no, old_pin) = delivered_sms_order(&st, "DESK-FAIL").await;
    let id = request_reset(&st, &no).await;
    let out = approved_and_run_with(
        &st,
        "pin-reset",
        &id,
        "pin_reset.init_pin.before_done=error",
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = st.json(&["pin-reset", "show", &id]).await;
    assert_eq!(shown["state"], "failed", "{shown:#}");
    assert!(
        shown["last_error"]
            .as_str()
            .unwrap()
            .contains("injected failure")
    );
    // The token already has the new PIN; the run goes on from the journal.
    assert!(!pin_opens_token(&st, &no, &old_pin));
    let run = st
        .json(&["pin-reset", "run", &id, "--operator", ALICE])
        .await;
    assert_eq!(run["resumed"], true);
    assert_eq!(
        run["steps_run"],
        serde_json::json!(["init_pin", "queue_delivery"])
    );
    let new_pin = deliver_pin(&st, &no).await;
    assert!(pin_opens_token(&st, &no, &new_pin));
}
