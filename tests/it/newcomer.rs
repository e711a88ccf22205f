//! Issue 12, item 9: the rough edges a newcomer hits first — output into a closed pipe, doubled
//! error texts, colours in a log file, a PIN prompt without a terminal, the name of a PIN file,
//! demonstration values in a production station.toml, `./station.toml`, an order's deliveries
//! in `order show`, and a memo reference that mixes the letter O with zeros.

use crate::delivery::{TestStation as DeliveryStation, bank_order, memos_in_pain001};
use crate::support::{Station, items, keystation, run_ok, stdout_json};
use std::io::{BufRead, BufReader};
use std::process::Stdio;

#[test]
fn order_list_into_a_closed_pipe_ends_quietly() {
    let st = Station::sqlite();
    // Enough orders for more output than a pipe buffers (64 KiB), so writes fail after the
    // reader is gone, as with `keystation order list | head -1`.
    let apps = st.tmp().join("apps");
    keystation::station::demo::write_fixture_pictures(&apps).unwrap();
    let file = keystation::station::demo::generated_orders(&apps, 1200).unwrap();
    st.import(&file, &[]).expect_code(0);

    for args in [&["order", "list"][..], &["--json", "order", "list"][..]] {
        let mut child = st
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        // `head -1` exits here: the read end of the pipe is closed (dropped above).
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!first.is_empty());
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe") && stderr.is_empty(),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn an_error_and_its_cause_are_printed_once() {
    let st = Station::sqlite();
    // An IO error inside a message that already names it: "reading F: No such file or
    // directory (os error 2): No such file or directory (os error 2)" before.
    let missing = st.tmp().join("no-such-status.xml");
    let out = st.run(&["bank", "import", missing.to_str().unwrap()]);
    out.expect_code(1);
    let cause = "No such file or directory";
    assert_eq!(out.stderr.matches(cause).count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("no-such-status.xml"), "{}", out.stderr);

    // A spool directory that cannot be created (under a regular file): the same pattern in
    // another error type, and in the JSON message.
    let cfg = std::fs::read_to_string(&st.config).unwrap().replace(
        "spool_dir = \"spool/sms\"",
        "spool_dir = \"station.toml/sms\"",
    );
    std::fs::write(&st.config, cfg).unwrap();
    let out = st.run(&["--json", "deliver", "run", "--once"]);
    out.expect_code(1);
    let cause = "Not a directory";
    assert_eq!(out.stderr.matches(cause).count(), 1, "{}", out.stderr);
    let msg = out.json()["message"].as_str().unwrap().to_string();
    assert_eq!(msg.matches(cause).count(), 1, "{msg}");
}

#[test]
fn a_log_written_to_a_file_has_no_colour_codes() {
    let st = Station::sqlite();
    let log = st.tmp().join("keystation.log");
    let out = st
        .command(&["order", "list"])
        .env("KEYSTATION_LOG", "debug")
        .env_remove("NO_COLOR")
        .stderr(std::fs::File::create(&log).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("DEBUG"), "debug logging was on: {text}");
    assert!(!text.contains('\u{1b}'), "ANSI escapes in the log file");
}

#[test]
fn commands_find_station_toml_in_the_current_directory() {
    let st = Station::sqlite();
    let here = run_ok(
        keystation()
            .args(["--json", "order", "list"])
            .current_dir(st.dir()),
    );
    assert_eq!(String::from_utf8_lossy(&here.stdout).trim(), "[]");
    // Elsewhere, without --config: exit 2, and the message says where it looked.
    let elsewhere = keystation()
        .args(["order", "list"])
        .current_dir(st.tmp())
        .output()
        .unwrap();
    assert_eq!(elsewhere.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&elsewhere.stderr).contains("./station.toml"));
}

#[test]
fn seal_show_without_a_terminal_says_to_use_a_pin_file_and_names_the_tokens_pin() {
    let st = Station::sqlite();
    let out = st
        .command(&["seal", "show", "--token", "KS-DEMO-0001"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no terminal") && stderr.contains("--pin-file"),
        "{stderr}"
    );
    assert!(!stderr.contains("os error 6"), "{stderr}");

    // A customer's token PIN file is not the station PIN file.
    let missing = st.tmp().join("customer.pin");
    let out = st.run(&[
        "seal",
        "show",
        "--token",
        "KS-DEMO-0001",
        "--pin-file",
        missing.to_str().unwrap(),
    ]);
    out.expect_code(2);
    assert!(!out.stderr.contains("station PIN"), "{}", out.stderr);
    assert!(
        out.stderr.contains("user PIN of token KS-DEMO-0001"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_plain_init_says_which_values_are_demonstration_values() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = keystation()
        .args(["init", "--generate-pins", "--dir"])
        .arg(tmp.path().join("plain"))
        .output()
        .unwrap();
    assert!(plain.status.success());
    let warning = String::from_utf8_lossy(&plain.stderr);
    for key in [
        "ca.organization",
        "ca.common_name",
        "delivery.bank.debtor_account",
    ] {
        assert!(warning.contains(key), "{key} not flagged: {warning}");
    }
    assert!(warning.contains("--ca-organization"), "{warning}");
    let toml = std::fs::read_to_string(tmp.path().join("plain/station.toml")).unwrap();
    let line = toml
        .lines()
        .find(|l| l.starts_with("debtor_account ="))
        .unwrap();
    assert!(line.contains("# DEMO"), "{line}");

    // Named at init: the CA certificate carries the names, and init no longer flags them.
    let named = run_ok(
        keystation()
            .args(["--json", "init", "--generate-pins", "--dir"])
            .arg(tmp.path().join("named"))
            .args([
                "--ca-organization",
                "北京某某数字认证有限公司",
                "--ca-common-name",
                "北京某某单位证书CA",
            ]),
    );
    let v = stdout_json(&named);
    let flagged: Vec<&str> = items(&v["demo_values"])
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert!(!flagged.contains(&"ca.organization"), "{flagged:?}");
    assert!(
        flagged.contains(&"delivery.bank.debtor_account"),
        "{flagged:?}"
    );
    let subject = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-nameopt", "utf8", "-in"])
        .arg(tmp.path().join("named/ca/ca.pem"))
        .output()
        .unwrap();
    let subject = String::from_utf8_lossy(&subject.stdout);
    assert!(
        subject.contains("北京某某数字认证有限公司") && subject.contains("北京某某单位证书CA"),
        "{subject}"
    );
    assert!(!subject.contains("Demo"), "{subject}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_show_lists_the_orders_deliveries() {
    let st = DeliveryStation::init().await;
    let no = st.shipped_sms("NC20261124-0001").await;
    let id = st.delivery(&no).await["id"].as_str().unwrap().to_string();

    let shown = st.json(&["order", "show", &no]).await;
    let deliveries = shown["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1, "{shown:#}");
    assert_eq!(deliveries[0]["id"], id.as_str());
    assert_eq!(deliveries[0]["state"], "queued");

    let text = st.ok(&["order", "show", &no]).await;
    let line = text
        .lines()
        .find(|l| l.starts_with("delivery "))
        .unwrap_or_else(|| panic!("no delivery line:\n{text}"));
    assert!(
        line.contains(&id)
            && line.contains("sms")
            && line.contains("queued")
            && line.contains("138****8000"),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memo_reference_is_digits_only() {
    let st = DeliveryStation::init().await;
    // The demo's numbering: the last five letters and digits were "O0002".
    st.shipped(bank_order("KS-DEMO-0002"), "SF1").await;
    st.deliver_once().await;
    let files = st.files_in("bank/outbound");
    let memo = memos_in_pain001(&files[0]).remove(0);
    let reference = memo
        .split(" REF ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    assert_eq!(reference, "0002", "memo reference");
}
