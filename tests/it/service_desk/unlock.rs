//! Issue 16 item 4: remote unlock with an unlock authorisation code, end to end on SoftHSM.
//!
//! The customer's `keystation-unlock` (the real binary) prints its request code; the desk
//! records it, a second operator approves, `unlock run` e-mails the code to the loopback SMTP
//! receiver; the test pastes the code from the mailbox into the waiting tool with a PIN of its
//! choosing, which then opens the key with `pkcs11-tool`. The rotated SO PIN is checked in a
//! child process bound to the station's SoftHSM, derived by the station's own library function
//! and handed to `pkcs11-tool` through the environment, never printed. A replayed and an
//! expired code are refused before the key is touched. `unlock run` killed at every step:
//! nothing is e-mailed twice and the run resumes (in doubt only with `--resend`).

use super::*;
use crate::notify::smtp_server::{Security, SmtpServer};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

const HANDLER_EMAIL: &str = "li.si@example.com";
const CHOSEN_PIN: &str = "Unlock-2468";

/// `[delivery.email]` to the loopback receiver (plain SMTP on loopback, no AUTH).
fn with_email(st: &TestStation, smtp: &SmtpServer) {
    st.append(&format!(
        "[delivery.email]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\n\
         from = \"北京CA <ca@example.com>\"\ntimeout_secs = 5\n",
        smtp.addr.port()
    ));
}

/// The waiting customer's tool.
struct Tool {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    request_code: String,
}

impl Tool {
    /// Starts `keystation-unlock request` on the order's key (the station's SoftHSM also holds
    /// its vault and CA tokens) and reads its request code.
    async fn start(st: &TestStation, no: &str, env: &[(&str, &str)]) -> Tool {
        let serial = key_serial(st, no).await;
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_keystation-unlock"));
        cmd.args(["request", "--module", crate::station::softhsm_module()])
            .args(["--serial", &serial])
            .env("SOFTHSM2_CONF", st.data_dir().join("softhsm2.conf"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let request_code = loop {
            let Some(line) = lines.next_line().await.unwrap() else {
                let out = child.wait_with_output().await.unwrap();
                panic!(
                    "the tool ended before printing its request code: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            };
            if line.starts_with("KSUR1-") {
                break line;
            }
        };
        Tool {
            child,
            lines,
            request_code,
        }
    }

    /// Pastes `code`, types `pin` twice; returns (exit code, stdout rest, stderr).
    async fn finish(mut self, code: &str, pin: &str) -> (Option<i32>, String, String) {
        let mut stdin = self.child.stdin.take().unwrap();
        // The tool may stop before it reads the PIN (a refused code): ignore a closed pipe.
        let _ = stdin
            .write_all(format!("{code}\n{pin}\n{pin}\n").as_bytes())
            .await;
        drop(stdin);
        let mut rest = String::new();
        while let Some(l) = self.lines.next_line().await.unwrap() {
            rest.push_str(&l);
            rest.push('\n');
        }
        let out = self.child.wait_with_output().await.unwrap();
        (
            out.status.code(),
            rest,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// The serial of the key bound to order `no`.
async fn key_serial(st: &TestStation, no: &str) -> String {
    st.store()
        .await
        .active_binding(&crate::support::order_no(no))
        .await
        .unwrap()
        .unwrap()
        .token_serial
        .unwrap()
        .to_string()
}

/// `unlock request NO --code CODE` with its reason and evidence, by [`ALICE`].
fn unlock_request<'a>(no: &'a str, code: &'a str) -> [&'a str; 11] {
    [
        "unlock",
        "request",
        no,
        "--code",
        code,
        "--reason",
        "PIN 多次输错已锁定",
        "--evidence",
        "经办人来电，核对身份证号后四位与预留手机",
        "--operator",
        ALICE,
    ]
}

/// `unlock request` by [`ALICE`] with the tool's code; returns the request id.
async fn request_unlock(st: &TestStation, no: &str, code: &str) -> String {
    let r = st.json(&unlock_request(no, code)).await;
    assert_eq!(r["state"], "requested", "{r:#}");
    assert_eq!(r["kind"], "unlock", "{r:#}");
    r["id"].as_str().unwrap().to_string()
}

/// The authorisation code in the `n`-th message of the mailbox (one line `KSUA1-...`).
fn code_in_mail(smtp: &SmtpServer, n: usize) -> String {
    let mail = &smtp.received()[n];
    assert_eq!(mail.rcpt_to, vec![HANDLER_EMAIL.to_string()]);
    let body = mail.body();
    let codes: Vec<&str> = body
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("KSUA1-"))
        .collect();
    assert_eq!(codes.len(), 1, "one code per message: {body}");
    codes[0].to_string()
}

/// Whether `so_pin_env` (an environment variable's name, holding the SO PIN) opens the order's
/// key as SO (`pkcs11-tool --login --login-type so`).
fn so_pin_opens_token(softhsm_conf: &str, order_no: &str, so_pin: &str) -> bool {
    let out = std::process::Command::new("pkcs11-tool")
        .env("SOFTHSM2_CONF", softhsm_conf)
        .env("KS_TEST_SO_PIN", so_pin)
        .args([
            "--module",
            crate::station::softhsm_module(),
            "--token-label",
            order_no,
            "--login",
            "--login-type",
            "so",
            "--so-pin",
            "env:KS_TEST_SO_PIN",
            "--session-rw",
            "--list-objects",
        ])
        .output()
        .unwrap();
    if !out.status.success() {
        eprintln!("pkcs11-tool: {}", String::from_utf8_lossy(&out.stderr));
    }
    out.status.success()
}

/// Runs [`so_pin_generation_child`] in a child bound to the station's SoftHSM: the SO PIN of
/// generation `generation` opens the key as SO and that of `generation - 1` does not.
fn assert_so_pin_generation(st: &TestStation, no: &str, generation: u32) {
    assert_so_pin_generation_bound(st, no, no, generation);
}

/// [`assert_so_pin_generation`] for the key labelled `no` whose binding order `bound` now holds
/// (a renewal onto the same key).
fn assert_so_pin_generation_bound(st: &TestStation, no: &str, bound: &str, generation: u32) {
    let conf = st.data_dir().join("softhsm2.conf");
    crate::support::run_child_test(
        "service_desk::unlock::so_pin_generation_child",
        [
            ("SOFTHSM2_CONF", conf.into_os_string()),
            ("KS_STATION_DIR", st.data_dir().into_os_string()),
            ("KS_UNLOCK_ORDER", no.into()),
            ("KS_UNLOCK_BOUND_ORDER", bound.into()),
            ("KS_UNLOCK_GENERATION", generation.to_string().into()),
        ],
    );
}

/// The child half of [`assert_so_pin_generation`] (does nothing when run on its own).
#[test]
fn so_pin_generation_child() {
    let Some(dir) = crate::station::child_station() else {
        return;
    };
    use keystation::station::service_desk::so_pin::so_pin_at;
    let no = std::env::var("KS_UNLOCK_ORDER").unwrap();
    let generation: u32 = std::env::var("KS_UNLOCK_GENERATION")
        .unwrap()
        .parse()
        .unwrap();
    let conf = std::env::var("SOFTHSM2_CONF").unwrap();
    let bound = std::env::var("KS_UNLOCK_BOUND_ORDER").unwrap();
    let (rt, station, hsm) = crate::station::open_station(&dir);
    let store = rt
        .block_on(keystation::store::Store::connect(
            &station.config().database_url(),
        ))
        .unwrap();
    let binding = rt
        .block_on(store.active_binding(&crate::support::order_no(&bound)))
        .unwrap()
        .unwrap();
    let (now, before) = rt.block_on(async {
        tokio::task::block_in_place(|| {
            let vault = hsm.vault().unwrap();
            let now = so_pin_at(&vault, &binding.so_identity, generation).unwrap();
            let before = so_pin_at(&vault, &binding.so_identity, generation - 1).unwrap();
            (
                now.expose_secret().to_string(),
                before.expose_secret().to_string(),
            )
        })
    });
    assert_ne!(now, before);
    assert!(
        so_pin_opens_token(&conf, &no, &now),
        "the SO PIN of generation {generation} does not open the key"
    );
    assert!(
        !so_pin_opens_token(&conf, &no, &before),
        "the SO PIN of generation {} still opens the key",
        generation - 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_unlock_sets_the_customers_pin_and_rotates_the_so_pin_once() {
    let smtp = SmtpServer::start(Security::None, None).await;
    let st = TestStation::init().await;
    with_email(&st, &smtp);
    let (no, old_pin) = delivered_sms_order(&st, "UNLK-0001").await;

    let tool = Tool::start(&st, &no, &[]).await;
    // A mistyped request code is refused, named.
    let mut typo = tool.request_code.clone();
    typo.pop();
    typo.push(if tool.request_code.ends_with('A') {
        'B'
    } else {
        'A'
    });
    let out = st.run(&unlock_request(&no, &typo)).await;
    assert!(assert_refused(&out, "E-UNLOCK-CODE").contains("--code"));

    let id = request_unlock(&st, &no, &tool.request_code).await;
    // Four-eyes: the requester cannot approve; unapproved, nothing is sent.
    let out = st
        .run(&["unlock", "approve", &id, "--operator", ALICE])
        .await;
    assert_refused(&out, "E-REQUEST-SAME-OPERATOR");
    let out = st.run(&["unlock", "run", &id, "--operator", ALICE]).await;
    assert_refused(&out, "E-REQUEST-TRANSITION");
    assert!(smtp.received().is_empty());
    st.ok(&["unlock", "approve", &id, "--operator", BOB]).await;

    let run = st
        .json(&["unlock", "run", &id, "--operator", "carol"])
        .await;
    assert_eq!(
        run["steps_run"],
        serde_json::json!(["reserve_generation", "send_code"]),
        "{run:#}"
    );
    assert_eq!(run["next_generation"], 1);
    assert_eq!(run["sends"], 1);
    assert_eq!(run["destination_masked"], "l***@example.com", "{run:#}");
    // Sent exactly once; a second run is refused and sends nothing.
    assert_eq!(smtp.received().len(), 1);
    let out = st.run(&["unlock", "run", &id, "--operator", "carol"]).await;
    assert_refused(&out, "E-REQUEST-TRANSITION");
    assert_eq!(smtp.received().len(), 1);
    let code = code_in_mail(&smtp, 0);
    // The code is in the e-mail only: not in the database, the logs or any file of the station.
    assert!(
        crate::delivery::files_containing(&st.data_dir(), code.as_bytes(), &[]).is_empty(),
        "the code is stored"
    );
    assert!(!st.logs().contains(&code));
    // The request code is used once.
    let out = st.run(&unlock_request(&no, &tool.request_code)).await;
    assert_refused(&out, "E-UNLOCK-CODE-USED");

    // The customer pastes it; the chosen PIN opens the key, the old one does not.
    let (status, stdout, stderr) = tool.finish(&code, CHOSEN_PIN).await;
    assert_eq!(status, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("unlocked"), "{stdout}");
    assert!(!stdout.contains(CHOSEN_PIN) && !stderr.contains(CHOSEN_PIN));
    assert!(pin_opens_token(&st, &no, CHOSEN_PIN));
    assert!(!pin_opens_token(&st, &no, &old_pin));

    // Replayed into another run of the tool: refused before the key is touched.
    let replay = Tool::start(&st, &no, &[]).await;
    let (status, _, stderr) = replay.finish(&code, "Other-PIN-1357").await;
    assert_eq!(status, Some(2), "{stderr}");
    assert!(
        stderr.contains("does not belong to this request"),
        "{stderr}"
    );
    assert!(stderr.contains("not touched"), "{stderr}");
    assert!(pin_opens_token(&st, &no, CHOSEN_PIN));
    assert!(!pin_opens_token(&st, &no, "Other-PIN-1357"));

    // Until the desk confirms, nothing logs in as SO with a guessed generation (a PIN reset
    // is refused, named); confirmed, the next generation is the key's SO PIN, the old not.
    let reset = request_reset(&st, &no).await;
    st.ok(&["pin-reset", "approve", &reset, "--operator", BOB])
        .await;
    let out = st
        .run(&["pin-reset", "run", &reset, "--operator", "carol"])
        .await;
    assert_refused(&out, "E-UNLOCK-UNCONFIRMED");
    let confirmed = st
        .json(&["unlock", "confirm", &id, "--operator", "carol"])
        .await;
    assert_eq!(confirmed["generation"], 1, "{confirmed:#}");
    let out = st
        .run(&["unlock", "confirm", &id, "--operator", "carol"])
        .await;
    assert_refused(&out, "E-OPERATION-REFUSED");
    assert_so_pin_generation(&st, &no, 1);
    st.ok(&["pin-reset", "cancel", &reset, "--operator", ALICE])
        .await;

    // An expired code: refused by the tool before the key is touched.
    let tool = Tool::start(&st, &no, &[("KEYSTATION_TEST_NOW", "4102444800")]).await;
    let id2 = request_unlock(&st, &no, &tool.request_code).await;
    st.ok(&["unlock", "approve", &id2, "--operator", BOB]).await;
    let run = st
        .json(&[
            "unlock",
            "run",
            &id2,
            "--operator",
            "carol",
            "--valid-hours",
            "1",
        ])
        .await;
    assert_eq!(run["next_generation"], 2);
    assert_eq!(smtp.received().len(), 2);
    let code2 = code_in_mail(&smtp, 1);
    let (status, _, stderr) = tool.finish(&code2, "Late-PIN-9999").await;
    assert_eq!(status, Some(2), "{stderr}");
    assert!(stderr.contains("expired"), "{stderr}");
    assert!(pin_opens_token(&st, &no, CHOSEN_PIN));
    assert_so_pin_generation(&st, &no, 1);

    let shown = st.json(&["unlock", "show", &id]).await;
    assert_eq!(shown["state"], "done", "{shown:#}");
    assert_eq!(shown["unlock"]["send_state"], "sent", "{shown:#}");
    let audit = st.json(&["audit", "show", "--order", &no]).await;
    for action in [
        "service.requested",
        "service.approved",
        "unlock.generation_reserved",
        "unlock.code_sending",
        "unlock.code_sent",
        "unlock.confirmed",
    ] {
        assert!(
            !crate::support::audit_records(&audit, action).is_empty(),
            "no {action} record: {audit:#}"
        );
    }
    st.ok(&["audit", "verify"]).await;
}

/// Every failpoint of an unlock run, in the order a run passes them, and whether a kill there
/// leaves the send in doubt (the server may have the message).
const UNLOCK_POINTS: &[(&str, bool)] = &[
    ("unlock.reserve_generation.started", false),
    ("unlock.send_code.before_send", true),
    ("unlock.send_code.after_send", true),
    ("unlock.send_code.before_commit", true),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unlock_run_killed_at_every_step_never_sends_twice_and_resumes() {
    use keystation::unlock::code::{AuthorisationCode, new_request};
    let smtp = SmtpServer::start(Security::None, None).await;
    let st = TestStation::init().await;
    with_email(&st, &smtp);
    let (no, _) = delivered_sms_order(&st, "UNLK-CRASH").await;
    let serial = key_serial(&st, &no).await;
    let mut sent = 0;
    for (point, in_doubt) in UNLOCK_POINTS {
        // The tool's side played by the library: its key stays in this process.
        let (key, req) = new_request(&serial).unwrap();
        let id = request_unlock(&st, &no, &req.encode()).await;
        let out = approved_and_run_with(&st, "unlock", &id, &format!("{point}=abort")).await;
        crashed_at(&out, point);
        let shown = st.json(&["unlock", "show", &id]).await;
        assert_eq!(shown["state"], "executing", "{point}: {shown:#}");
        let reached_server =
            *point == "unlock.send_code.after_send" || *point == "unlock.send_code.before_commit";
        if reached_server {
            sent += 1;
        }
        assert_eq!(smtp.received().len(), sent, "{point}");

        let run = st.run(&["unlock", "run", &id, "--operator", ALICE]).await;
        if *in_doubt {
            // Never sent again on its own, whatever the server has.
            assert_refused(&run, "E-UNLOCK-IN-DOUBT");
            assert_eq!(smtp.received().len(), sent, "{point}: sent again");
            let shown = st.json(&["unlock", "show", &id]).await;
            assert_eq!(shown["unlock"]["send_state"], "in_doubt", "{point}");
            assert_eq!(shown["state"], "failed", "{point}");
            let again = st.run(&["unlock", "run", &id, "--operator", ALICE]).await;
            assert_refused(&again, "E-UNLOCK-IN-DOUBT");
            let resent = st
                .json(&["unlock", "run", &id, "--operator", ALICE, "--resend"])
                .await;
            assert_eq!(resent["resumed"], true, "{point}");
        } else {
            assert!(
                run.status.success(),
                "{}",
                String::from_utf8_lossy(&run.stderr)
            );
        }
        sent += 1;
        assert_eq!(
            smtp.received().len(),
            sent,
            "{point}: exactly one more message"
        );
        let shown = st.json(&["unlock", "show", &id]).await;
        assert_eq!(shown["state"], "done", "{point}: {shown:#}");
        // The last code opens with this request's key (and carries the pending generation).
        let code = AuthorisationCode::decode(&code_in_mail(&smtp, sent - 1)).unwrap();
        use keystation::clock::Clock;
        let now = u64::try_from(keystation::clock::SystemClock.now().unix_timestamp()).unwrap();
        let secrets = code.open(key, &req, now).unwrap();
        assert_ne!(
            secrets.current_so_pin.expose_secret(),
            secrets.next_so_pin.expose_secret()
        );
    }
    st.ok(&["audit", "verify"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unlock_code_that_did_not_reach_the_server_is_sent_by_the_next_run() {
    use keystation::unlock::code::new_request;
    let smtp = SmtpServer::start(Security::None, None).await;
    let st = TestStation::init().await;
    let (no, _) = delivered_sms_order(&st, "UNLK-SMTP").await;
    let (_key, req) = new_request(&key_serial(&st, &no).await).unwrap();
    let id = request_unlock(&st, &no, &req.encode()).await;
    st.ok(&["unlock", "approve", &id, "--operator", BOB]).await;

    // No [delivery.email]: refused, named; the request waits (failed) and nothing is sent.
    let out = st.run(&["unlock", "run", &id, "--operator", ALICE]).await;
    assert!(assert_refused(&out, "E-UNLOCK-NO-EMAIL").contains("[delivery.email]"));
    // The server refuses connections: nothing was handed over, so the next run sends.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    st.append(&format!(
        "[delivery.email]\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"\n\
         from = \"北京CA <ca@example.com>\"\ntimeout_secs = 5\n"
    ));
    let out = st.run(&["unlock", "run", &id, "--operator", ALICE]).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("error[E-UNLOCK-SEND]"));
    let shown = st.json(&["unlock", "show", &id]).await;
    assert_eq!(shown["state"], "failed", "{shown:#}");
    assert_eq!(shown["unlock"]["send_state"], "failed", "{shown:#}");

    let text = std::fs::read_to_string(st.data_dir().join("station.toml")).unwrap();
    std::fs::write(
        st.data_dir().join("station.toml"),
        text.replace(
            &format!("port = {port}"),
            &format!("port = {}", smtp.addr.port()),
        ),
    )
    .unwrap();
    let run = st.json(&["unlock", "run", &id, "--operator", ALICE]).await;
    assert_eq!(run["resumed"], true, "{run:#}");
    assert_eq!(run["steps_run"], serde_json::json!(["send_code"]));
    assert_eq!(run["sends"], 2, "{run:#}");
    assert_eq!(smtp.received().len(), 1);
    code_in_mail(&smtp, 0);
}

/// `order renew NO` by a station opened in this process, its clock 20 days before the order's
/// certificate's notAfter (inside the renewal window); approved by [`BOB`]. Returns the
/// renewal order's number.
async fn renewal_approved(st: &TestStation, no: &str) -> String {
    use keystation::clock::{FixedClock, parse_utc};
    let credential = crate::support::operator_credential(&st.config, ALICE).unwrap();
    let cert = st
        .store()
        .await
        .all_certificates()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.order_no.as_str() == no)
        .unwrap();
    let at = parse_utc(&cert.not_after).unwrap() - time::Duration::days(20);
    let cfg = keystation::config::Config::load(&st.config).unwrap();
    let station = keystation::station::Station::open(cfg, std::sync::Arc::new(FixedClock::new(at)))
        .await
        .unwrap()
        .with_credential(Some(credential));
    let report = station
        .renew_order(&crate::support::order_no(no), ALICE)
        .await
        .unwrap();
    station.close().await;
    st.ok(&["order", "approve", &report.order_no, "--operator", BOB])
        .await;
    report.order_no
}

/// The `unlock_unconfirmed` notes of `check` (a note: the check itself passes).
async fn unconfirmed_notes(st: &TestStation) -> Vec<Value> {
    let report = st.json(&["check"]).await;
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "unlock_unconfirmed")
        .cloned()
        .collect()
}

/// While a used unlock code's SO PIN rotation is unconfirmed, renewal onto the key at the desk
/// (which logs in as SO) is refused `E-UNLOCK-UNCONFIRMED` naming `keystation unlock confirm
/// ID`, not as a generic step failure, without touching the key; `check` notes the key with
/// the way out. Confirmed (the request's order released the key to its renewal meanwhile),
/// the renewal resumes onto the key under the rotated SO PIN and the note is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unconfirmed_unlock_stops_renewal_at_the_desk_by_name_and_check_notes_it() {
    let smtp = SmtpServer::start(Security::None, None).await;
    let st = TestStation::init().await;
    with_email(&st, &smtp);
    // The e-mail's text from station.toml: the station's own words around the code.
    st.append(
        "[delivery.email.templates]\n\
         unlock_body = \"订单{order_no}，Key {serial}，有效期至{expires_at}：\\n{code}\\n\"\n",
    );
    let (no, _) = delivered_sms_order(&st, "UNLK-RENEW").await;
    let serial = key_serial(&st, &no).await;
    assert!(unconfirmed_notes(&st).await.is_empty());

    let tool = Tool::start(&st, &no, &[]).await;
    let id = request_unlock(&st, &no, &tool.request_code).await;
    st.ok(&["unlock", "approve", &id, "--operator", BOB]).await;
    st.ok(&["unlock", "run", &id, "--operator", "carol"]).await;
    let body = smtp.received()[0].body();
    let masked = format!(
        "{}{}",
        "*".repeat(serial.len() - 4),
        &serial[serial.len() - 4..]
    );
    assert!(
        body.contains(&format!("订单{no}，Key {masked}，有效期至")),
        "{body}"
    );
    assert!(!body.contains(&serial), "{body}");
    let (status, stdout, stderr) = tool.finish(&code_in_mail(&smtp, 0), CHOSEN_PIN).await;
    assert_eq!(status, Some(0), "{stdout}\n{stderr}");

    let notes = unconfirmed_notes(&st).await;
    assert_eq!(notes.len(), 1, "{notes:#?}");
    assert_eq!(notes[0]["level"], "note");
    assert_eq!(notes[0]["order_no"], no.as_str());
    let message = notes[0]["message"].as_str().unwrap();
    assert!(message.contains(&serial), "{message}");
    assert!(
        message.contains(&format!("keystation unlock confirm {id}")),
        "{message}"
    );

    let renewal = renewal_approved(&st, &no).await;
    let out = st
        .run(&["provision", &renewal, "--token", &serial, "--json"])
        .await;
    let stderr = assert_refused(&out, "E-UNLOCK-UNCONFIRMED");
    assert!(
        stderr.contains(&format!("keystation unlock confirm {id}")),
        "{stderr}"
    );
    assert!(!stderr.contains("E-PROVISION-STEP"), "{stderr}");
    // Nothing logged in as SO: the customer's PIN still opens the key.
    assert!(pin_opens_token(&st, &no, CHOSEN_PIN));

    let confirmed = st
        .json(&["unlock", "confirm", &id, "--operator", "carol"])
        .await;
    assert_eq!(confirmed["generation"], 1, "{confirmed:#}");
    let new = st.json(&["provision", &renewal, "--token", &serial]).await;
    assert_eq!(new["token_serial"], serial.as_str(), "{new:#}");
    assert!(unconfirmed_notes(&st).await.is_empty());
    assert_so_pin_generation_bound(&st, &no, &renewal, 1);
}
