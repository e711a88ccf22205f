//! Issue 6: workstation logic with an injected event source — a blank key appearing, a non-blank
//! key appearing, a key pulled out mid-provisioning (clear message, order resumable).

use crate::station::{TestStation, keystation, open_station, order_json};
use crate::support::{items, run_ok};
use keystation::station::workstation::{Desk, DeskEvent, DeskEvents, WatchOptions};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Scripted events: one batch per poll; stops the session when the script is exhausted.
struct Script {
    batches: VecDeque<Vec<DeskEvent>>,
    stop: Arc<AtomicBool>,
}

impl DeskEvents for Script {
    fn poll(&mut self, _: Duration) -> Vec<DeskEvent> {
        match self.batches.pop_front() {
            Some(b) => b,
            None => {
                self.stop.store(true, Ordering::SeqCst);
                vec![]
            }
        }
    }
}

/// A desk that records lines, answers yes, and can pull the key out when a line appears.
struct RecordingDesk {
    lines: Mutex<Vec<String>>,
    pull_key_when: Option<(&'static str, PathBuf)>,
    pulled: Mutex<Option<(PathBuf, PathBuf)>>,
}

impl Desk for RecordingDesk {
    fn say(&self, line: &str) {
        self.lines.lock().unwrap().push(line.to_string());
        if let Some((trigger, token_dir)) = &self.pull_key_when {
            let mut pulled = self.pulled.lock().unwrap();
            if pulled.is_none() && line.contains(trigger) {
                // Pull the key: its SoftHSM directory disappears under the running job.
                let newest = newest_token_dir(token_dir);
                let away = token_dir.parent().unwrap().join("pulled-out");
                std::fs::rename(&newest, &away).unwrap();
                *pulled = Some((away, newest));
            }
        }
    }

    fn confirm(&self, _: &str) -> bool {
        true
    }
}

impl RecordingDesk {
    fn new(pull_key_when: Option<(&'static str, PathBuf)>) -> RecordingDesk {
        RecordingDesk {
            lines: Mutex::new(vec![]),
            pull_key_when,
            pulled: Mutex::new(None),
        }
    }

    /// Everything said so far, one line each.
    fn said(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Asserts that every one of `lines` was said.
    #[track_caller]
    fn assert_said(&self, lines: &[&str]) {
        let said = self.said();
        for line in lines {
            assert!(said.contains(line), "{line:?} not said:\n{said}");
        }
    }
}

fn newest_token_dir(tokens: &Path) -> PathBuf {
    std::fs::read_dir(tokens)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().is_dir())
        .max_by_key(|e| e.metadata().unwrap().created().unwrap())
        .unwrap()
        .path()
}

fn child(dir: &Path) {
    let (rt, station, hsm) = open_station(dir);
    let blank = || hsm.module().first_blank().unwrap().unwrap().info().clone();
    let foreign = hsm
        .module()
        .find(&[keystation::token::TokenSelector::Label("FOREIGN".into())])
        .unwrap()
        .info()
        .clone();
    let stop = Arc::new(AtomicBool::new(false));
    let opts = WatchOptions {
        poll_interval: Duration::from_millis(1),
        ..WatchOptions::default()
    };

    // 1. A blank key appears: the oldest approved order goes onto it; a foreign key is refused.
    let watch = |desk: &RecordingDesk, batches: Vec<Vec<DeskEvent>>| {
        stop.store(false, Ordering::SeqCst);
        let mut script = Script {
            batches: VecDeque::from(batches),
            stop: stop.clone(),
        };
        rt.block_on(station.watch(&hsm, &mut script, desk, &opts, stop.clone()))
            .unwrap()
    };
    let desk = RecordingDesk::new(None);
    let summary = watch(
        &desk,
        vec![
            vec![DeskEvent::TokenInserted(blank())],
            vec![DeskEvent::TokenInserted(foreign.clone())],
        ],
    );
    assert_eq!(summary.provisioned, ["W-1"]);
    // The live step output, the way out, and the foreign key refused.
    desk.assert_said(&[
        "next order W-1",
        "W-1: write_certificate done",
        "You may remove the key now",
        "is not blank and was not made by this station",
    ]);

    // 2. The next key is pulled out while its key pair is being generated.
    let tokens = dir.join("tokens");
    let desk = RecordingDesk::new(Some(("W-2: generate_key ...", tokens.clone())));
    let summary = watch(&desk, vec![vec![DeskEvent::TokenInserted(blank())]]);
    assert_eq!(summary.interrupted, ["W-2"]);
    let lines = desk.said();
    assert!(
        lines.contains("the key was removed during provisioning"),
        "{lines}"
    );
    assert!(lines.contains("Order W-2 is kept and resumable"), "{lines}");
    let rec = rt
        .block_on(station.order(&"W-2".parse().unwrap()))
        .unwrap()
        .unwrap();
    assert_eq!(rec.state, keystation::domain::OrderState::Failed);

    // 3. The key goes back in; a fresh station process (as after re-plugging) resumes the order.
    let (away, back) = desk.pulled.lock().unwrap().take().unwrap();
    std::fs::rename(away, back).unwrap();
    run_ok(
        keystation()
            .arg("--config")
            .arg(dir.join("station.toml"))
            .args(["provision", "W-2", "--json"]),
    );
    let rec = rt
        .block_on(station.order(&"W-2".parse().unwrap()))
        .unwrap()
        .unwrap();
    assert_eq!(rec.state, keystation::domain::OrderState::Provisioned);
}

#[test]
fn workstation_provisions_blank_keys_refuses_foreign_ones_and_survives_a_pulled_key() {
    let Some(st) = TestStation::unless_child(&[], child) else {
        return;
    };
    st.import_approved(&order_json("W-1", "legal_rep_phone", "company", "main"));
    st.import_approved(&order_json("W-2", "legal_rep_phone", "none", "main"));
    st.foreign_token("FOREIGN");
    st.run_child(
        "workstation::workstation_provisions_blank_keys_refuses_foreign_ones_and_survives_a_pulled_key",
        &[],
    );
    // The foreign token was left alone.
    let listing = st.json(&["token", "list"]);
    let foreign = items(&listing["tokens"])
        .iter()
        .find(|t| t["token"]["label"] == "FOREIGN")
        .unwrap();
    assert_eq!(foreign["role"], "unknown (not made by this station)");
}
