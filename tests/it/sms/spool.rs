//! Spool channel on a real directory.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use keystation::delivery::sms::{QueryOutcome, SendOutcome, SmsChannel, SpoolChannel};

use crate::sms::{
    FixedStamps, PHONE, assert_no_secret, assert_outcome, fixed_now, reason, sms, sms_with_pin,
};

fn channel(dir: &Path) -> SmsChannel {
    SmsChannel::Spool(SpoolChannel::new(
        dir,
        Arc::new(FixedStamps::at(fixed_now())),
    ))
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn writes_one_private_json_file_per_message() {
    let dir = tempfile::tempdir().unwrap();
    let msg = sms("dlv-s001");
    let outcome = channel(dir.path()).send(&msg).await;
    assert_eq!(
        outcome,
        SendOutcome::Accepted {
            provider_id: "dlv-s001.json".to_owned()
        }
    );
    assert_eq!(
        entries(dir.path()),
        vec!["dlv-s001.json"],
        "no temp file left"
    );
    let path = dir.path().join("dlv-s001.json");
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let record: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(record["delivery_id"], "dlv-s001");
    assert_eq!(record["to"], PHONE);
    assert_eq!(record["order_no"], "20201126135521");
    assert_eq!(record["text"], msg.text().expose_secret());
    assert_eq!(record["created_at"], "2024-05-20T02:30:00Z");
    assert_eq!(record.as_object().unwrap().len(), 5);
}

#[tokio::test]
async fn second_send_of_a_delivery_does_not_rewrite_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let ch = channel(dir.path());
    assert!(matches!(
        ch.send(&sms("dlv-s002")).await,
        SendOutcome::Accepted { .. }
    ));
    let path = dir.path().join("dlv-s002.json");
    let before = fs::metadata(&path).unwrap();
    let content = fs::read(&path).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    // Same delivery id, different PIN: it must not replace what the agent may already be sending.
    let outcome = ch.send(&sms_with_pin("dlv-s002", "Other9PIN")).await;
    assert_outcome(&outcome, "accepted", "");
    let after = fs::metadata(&path).unwrap();
    assert_eq!(fs::read(&path).unwrap(), content);
    assert_eq!(before.ino(), after.ino());
    assert_eq!(before.modified().unwrap(), after.modified().unwrap());
    assert_eq!(before.ctime_nsec(), after.ctime_nsec());
    assert_eq!(entries(dir.path()), vec!["dlv-s002.json"]);
}

#[tokio::test]
async fn concurrent_sends_of_one_delivery_publish_exactly_one_complete_file() {
    let dir = tempfile::tempdir().unwrap();
    let ch = Arc::new(channel(dir.path()));
    let mut tasks = Vec::new();
    for i in 0..8 {
        let ch = ch.clone();
        tasks.push(tokio::spawn(async move {
            ch.send(&sms_with_pin("dlv-s003", &format!("Pin{i}abcd")))
                .await
        }));
    }
    for t in tasks {
        let outcome = t.await.unwrap();
        assert_outcome(&outcome, "accepted", "");
    }
    assert_eq!(entries(dir.path()), vec!["dlv-s003.json"]);
    let record: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.path().join("dlv-s003.json")).unwrap()).unwrap();
    assert!(record["text"].as_str().unwrap().contains("Pin"));
}

#[tokio::test]
async fn query_looks_for_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let ch = channel(dir.path());
    let msg = sms("dlv-s004");
    assert_eq!(ch.query(&msg, fixed_now()).await, QueryOutcome::NotFound);
    assert!(matches!(ch.send(&msg).await, SendOutcome::Accepted { .. }));
    assert_eq!(
        ch.query(&msg, fixed_now()).await,
        QueryOutcome::Accepted {
            provider_id: "dlv-s004.json".to_owned()
        }
    );
}

/// Whether this process can create files in a directory despite mode 0500 (root can).
fn permissions_are_enforced(dir: &Path) -> bool {
    let probe = dir.join("probe");
    let enforced = fs::File::create(&probe).is_err();
    let _ = fs::remove_file(&probe);
    enforced
}

#[tokio::test]
async fn unwritable_spool_dir_is_retryable() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("spool");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o500)).unwrap();
    // Root ignores mode bits; sysfs refuses new files even to root.
    let unwritable = if permissions_are_enforced(&dir) {
        dir.clone()
    } else {
        Path::new("/sys/kernel").to_path_buf()
    };
    let msg = sms("dlv-s005");
    let outcome = channel(&unwritable).send(&msg).await;
    assert_outcome(&outcome, "retryable", "");
    let why = reason(&outcome);
    assert!(why.contains(&unwritable.display().to_string()), "{why}");
    assert!(why.contains("not writable"), "{why}");
    assert_no_secret(&outcome, &msg);
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    assert!(entries(&dir).is_empty());
}

#[tokio::test]
async fn missing_spool_dir_is_retryable_and_named() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("not-created");
    let outcome = channel(&dir).send(&sms("dlv-s006")).await;
    assert_outcome(&outcome, "retryable", "not-created");
    assert!(entries(parent.path()).is_empty());
}
