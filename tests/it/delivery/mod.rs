//! PIN delivery end to end: real stations made by `keystation init` (SoftHSM token directory,
//! SQLite), driven through the CLI as subprocesses, with the channels' real counterparts — the
//! spool directory, a loopback fake of Aliyun's SendSms that checks signatures
//! (`crate::sms::fake_sms_gateway`), pain.001 files checked by `xmllint` against the official
//! schema, and pain.002 / camt.054 answers that validate against theirs.
//!
//! Every CLI call runs with `KEYSTATION_LOG=trace`; its stderr is kept so tests can scan the logs
//! for PINs.

mod aliyun;
mod bank;
mod concurrent;
mod faults;
mod full_cycle;
pub(crate) mod store_backends;
mod store_transitions;

use crate::support::{assert_success, items, order_no, run_ok, stdout_json};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::Mutex;

pub const SMS_ORDER: &str = "BJ20261124-0001";
pub const BANK_ORDER: &str = "SH20261124-0002";

/// The fixtures directory of the repository.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// A station in a temp directory, driven through the `keystation` binary.
pub struct TestStation {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    logs: Mutex<String>,
}

impl TestStation {
    /// `keystation init --dir <tmp>/st --generate-pins`.
    pub async fn init() -> TestStation {
        TestStation::init_with(&[]).await
    }

    /// `keystation init --dir <tmp>/st --generate-pins EXTRA...`.
    pub async fn init_with(extra: &[&str]) -> TestStation {
        let dir = tempfile::tempdir().unwrap();
        let st = dir.path().join("st");
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_keystation"))
            .arg("init")
            .arg("--dir")
            .arg(&st)
            .arg("--generate-pins")
            .args(extra)
            .env_remove("KEYSTATION_CONFIG")
            .env_remove("KEYSTATION_FAILPOINTS")
            .output()
            .await
            .unwrap();
        assert_success(&out, "keystation init");
        crate::support::map_os_user_to_desk(&st.join("station.toml"));
        TestStation {
            config: st.join("station.toml"),
            dir,
            logs: Mutex::new(String::new()),
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("st")
    }

    /// Sets `key = value` (value in TOML syntax) on the first line defining `key`.
    pub fn set(&self, key: &str, value: &str) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        let mut done = false;
        let lines: Vec<String> = text
            .lines()
            .map(|l| {
                if !done && l.trim_start().starts_with(&format!("{key} =")) {
                    done = true;
                    format!("{key} = {value}")
                } else {
                    l.to_string()
                }
            })
            .collect();
        assert!(done, "no key {key} in station.toml");
        std::fs::write(&self.config, lines.join("\n") + "\n").unwrap();
    }

    /// Appends TOML text (e.g. a `[delivery.sms.aliyun]` table).
    pub fn append(&self, toml: &str) {
        let mut text = std::fs::read_to_string(&self.config).unwrap();
        text.push('\n');
        text.push_str(toml);
        std::fs::write(&self.config, text).unwrap();
    }

    /// Writes a secret file with mode 0600 under the data dir.
    pub fn secret_file(&self, rel: &str, content: &str) {
        use std::os::unix::fs::PermissionsExt;
        let p = self.data_dir().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, format!("{content}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    /// Runs `keystation --config <station.toml> ARGS` with `KEYSTATION_LOG=trace` and `env`.
    pub async fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_keystation"));
        cmd.arg("--config")
            .arg(&self.config)
            .args(crate::support::with_operator_credential(&self.config, args))
            .env("KEYSTATION_LOG", "trace")
            .env("NO_COLOR", "1")
            .env_remove("KEYSTATION_FAILPOINTS")
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().await.unwrap();
        let mut logs = self.logs.lock().unwrap();
        logs.push_str(&format!("$ keystation {}\n", args.join(" ")));
        logs.push_str(&String::from_utf8_lossy(&out.stderr));
        logs.push_str(&String::from_utf8_lossy(&out.stdout));
        out
    }

    pub async fn run(&self, args: &[&str]) -> Output {
        self.run_env(args, &[]).await
    }

    /// Runs and requires success; returns stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert_success(&out, &format!("keystation {}", args.join(" ")));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs with `--json` and requires success.
    pub async fn json(&self, args: &[&str]) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        serde_json::from_str(&self.ok(&a).await).unwrap()
    }

    /// A revocation as four-eyes makes it: `args` (`order revoke ...`, naming `--operator`)
    /// requests it and [`crate::support::SECOND_OFFICER`] approves it; returns what it revoked.
    pub async fn revoke(&self, args: &[&str]) -> Value {
        let id = crate::support::request_id(&self.json(args).await.to_string());
        let approved = self
            .json(&[
                "revoke",
                "approve",
                &id,
                "--operator",
                crate::support::SECOND_OFFICER,
            ])
            .await;
        crate::support::revocation_report(&approved)
    }

    /// Everything the CLI printed so far (stderr with trace logs, and stdout).
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    /// Imports, approves and provisions one order; returns its number.
    pub async fn provisioned(&self, order: Value) -> String {
        let no = self.approved(order).await;
        self.ok(&["provision", &no]).await;
        no
    }

    /// Imports and approves one order; returns its number.
    pub async fn approved(&self, order: Value) -> String {
        let no = order["order_no"].as_str().unwrap().to_string();
        let dir = self.dir.path().join(format!("order-{no}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(fixtures().join("seals/company.png"), dir.join("c.png")).unwrap();
        std::fs::write(dir.join("order.json"), order.to_string()).unwrap();
        let file = dir.join("order.json");
        self.ok(&["order", "import", file.to_str().unwrap()]).await;
        self.ok(&["order", "approve", &no, "--operator", "reviewer"])
            .await;
        no
    }

    /// [`TestStation::provisioned`], then shipped with `tracking`: its delivery is queued.
    pub async fn shipped(&self, order: Value, tracking: &str) -> String {
        let no = self.provisioned(order).await;
        self.ok(&["ship", &no, "--tracking", tracking]).await;
        no
    }

    /// An SMS order to the usual phone, provisioned and shipped.
    pub async fn shipped_sms(&self, order_no: &str) -> String {
        self.shipped(sms_order(order_no, "13800138000"), "SF1")
            .await
    }

    /// `deliver run --once` killed by an `abort` failpoint at `point`.
    pub async fn deliver_aborted_at(&self, point: &str) {
        let failpoint = format!("{point}=abort");
        let out = self
            .run_env(
                &["deliver", "run", "--once"],
                &[("KEYSTATION_FAILPOINTS", &failpoint)],
            )
            .await;
        assert!(!out.status.success(), "the worker was meant to crash");
    }

    /// `bank import FILE --operator finance`, which must succeed: its JSON report.
    pub async fn bank_import_by_finance(&self, file: &Path) -> Value {
        let file = file.to_str().unwrap();
        self.json(&["bank", "import", file, "--operator", "finance"])
            .await
    }

    /// `bank import FILE` changes nothing and reports a problem whose note says `note`.
    pub async fn bank_import_refused(&self, file: &Path, note: &str) {
        let r = self.json(&["bank", "import", file.to_str().unwrap()]).await;
        assert!(items(&r["changes"]).is_empty(), "{r:#}");
        assert!(
            r["problems"][0]["note"].as_str().unwrap().contains(note),
            "{r:#}"
        );
    }

    /// The deliveries of an order, with their attempt logs.
    pub async fn deliveries(&self, order_no: &str) -> Vec<Value> {
        items(&self.json(&["deliver", "status", "--order", order_no]).await).to_vec()
    }

    /// The one live (not cancelled) delivery of an order.
    pub async fn delivery(&self, order_no: &str) -> Value {
        let live: Vec<Value> = self
            .deliveries(order_no)
            .await
            .into_iter()
            .filter(|d| d["state"] != "cancelled")
            .collect();
        assert_eq!(live.len(), 1, "{live:#?}");
        live.into_iter().next().unwrap()
    }

    /// The only delivery an order ever had, whatever its state.
    pub async fn delivery_any(&self, order_no: &str) -> Value {
        let all = self.deliveries(order_no).await;
        assert_eq!(all.len(), 1, "{all:#?}");
        all.into_iter().next().unwrap()
    }

    pub async fn order_state(&self, order_no: &str) -> String {
        self.json(&["order", "show", order_no]).await["state"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// `deliver run --once --json`. Its exit code must say what the report says: 0 when every
    /// delivery it touched reached its channel, 1 when one is left (`unfinished`).
    pub async fn deliver_once(&self) -> Value {
        let out = self.run(&["--json", "deliver", "run", "--once"]).await;
        let report = stdout_json(&out);
        let left = !items(&report["unfinished"]).is_empty();
        assert_eq!(
            out.status.code(),
            Some(i32::from(left)),
            "exit code of deliver run --once for {report:#}"
        );
        report
    }

    /// The station database through the library (for what no command shows).
    pub async fn store(&self) -> keystation::store::Store {
        let url = format!("sqlite://{}", self.data_dir().join("station.db").display());
        keystation::store::Store::connect(&url).await.unwrap()
    }

    /// What `read` gets from a fresh connection to the station's store, closed afterwards.
    pub async fn read_store<T>(&self, read: impl AsyncFnOnce(&keystation::store::Store) -> T) -> T {
        let store = self.store().await;
        let value = read(&store).await;
        store.close().await;
        value
    }

    pub fn files_in(&self, rel: &str) -> Vec<PathBuf> {
        let dir = self.data_dir().join(rel);
        let mut v: Vec<PathBuf> = match std::fs::read_dir(&dir) {
            Ok(rd) => rd.map(|e| e.unwrap().path()).collect(),
            Err(_) => vec![],
        };
        v.sort();
        v
    }
}

/// An order whose PIN goes by SMS to the legal representative.
pub fn sms_order(order_no: &str, mobile: &str) -> Value {
    serde_json::json!({
      "order_no": order_no,
      "auth_method": "legal_rep_phone",
      "company": { "name": "北京示例科技有限公司", "uscc": "91110000600037341L" },
      "legal_rep": { "name": "张三", "mobile": mobile, "id_type": "resident_id", "id_number": "11010519491231002X" },
      "product": { "key_role": "main", "years": 1, "seal_service": "none" },
      "invoice": { "title": "北京示例科技有限公司", "taxpayer_id": "91110000600037341L" },
      "handler": { "name": "李四", "mobile": "13900139000", "id_type": "resident_id", "id_number": "110108200001011237", "email": "li.si@example.com" },
      "shipping": { "province": "北京市", "city": "北京市", "address": "海淀区某路1号" },
      "documents": [
        { "kind": "business_license", "file": "c.png" },
        { "kind": "handler_id_front", "file": "c.png" },
        { "kind": "handler_id_back", "file": "c.png" },
        { "kind": "power_of_attorney", "file": "c.png" }
      ],
      "seals": []
    })
}

/// An order whose PIN goes in the memo of a 0.01 CNY transfer.
pub fn bank_order(order_no: &str) -> Value {
    serde_json::json!({
      "order_no": order_no,
      "auth_method": "corporate_transfer",
      "company": { "name": "上海示例信息技术有限公司", "uscc": "91310115MA1K3BTP2B" },
      "legal_rep": { "name": "王五", "mobile": "13700137000", "id_type": "resident_id", "id_number": "440305198512310026" },
      "product": { "key_role": "main", "years": 1, "seal_service": "company" },
      "invoice": { "title": "上海示例信息技术有限公司", "taxpayer_id": "91310115MA1K3BTP2B" },
      "handler": { "name": "赵六", "mobile": "13600136000", "id_type": "resident_id", "id_number": "110108200001011237", "email": "zhao@example.com" },
      "shipping": { "province": "上海市", "city": "上海市", "address": "浦东新区某路2号" },
      "corporate_account": { "account_name": "上海示例信息技术有限公司", "account_number": "0200001009012345671", "bank_name": "中国工商银行", "branch": "上海浦东支行" },
      "documents": [
        { "kind": "business_license", "file": "c.png" },
        { "kind": "handler_id_front", "file": "c.png" },
        { "kind": "handler_id_back", "file": "c.png" },
        { "kind": "power_of_attorney", "file": "c.png" },
        { "kind": "seal_collection_form", "file": "c.png" }
      ],
      "seals": [ { "kind": "company", "picture": "c.png" } ]
    })
}

/// Plays the SMS gateway agent of the spool contract: each message in `spool` without a
/// receipt is taken (copied into `agent_dir`, the agent's own copy, outside the station) and
/// acknowledged with its receipt `{id}.sent`. Returns the agent's copies, in name order.
pub fn gateway_agent_takes(spool: &Path, agent_dir: &Path) -> Vec<PathBuf> {
    std::fs::create_dir_all(agent_dir).unwrap();
    let mut taken = Vec::new();
    let mut names: Vec<String> = std::fs::read_dir(spool)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    for name in names {
        let id = name.trim_end_matches(".json");
        let receipt = spool.join(format!("{id}.sent"));
        if receipt.exists() {
            continue;
        }
        let copy = agent_dir.join(&name);
        std::fs::copy(spool.join(&name), &copy).unwrap();
        let temp = spool.join(format!(".{id}.sent.tmp"));
        std::fs::write(&temp, format!("{{\"gateway_id\": \"GW-{id}\"}}")).unwrap();
        std::fs::rename(&temp, &receipt).unwrap();
        taken.push(copy);
    }
    taken
}

/// The PIN in a spool file's text (`...密码:PIN，...`).
pub fn pin_in_spool_file(path: &Path) -> String {
    let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    pin_in_sms_text(v["text"].as_str().unwrap())
}

/// The PIN in an SMS text: what stands between `密码:` and the next `，`.
pub fn pin_in_sms_text(text: &str) -> String {
    let after = text.split("密码:").nth(1).unwrap();
    after.split('，').next().unwrap().to_string()
}

/// The memos (`<Ustrd>PIN xxxx REF ...</Ustrd>`) of a pain.001, in order.
pub fn memos_in_pain001(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    text.split("<Ustrd>")
        .skip(1)
        .map(|s| s.split("</Ustrd>").next().unwrap().to_string())
        .collect()
}

/// The PINs in the memos of a pain.001.
pub fn pins_in_pain001(path: &Path) -> Vec<String> {
    memos_in_pain001(path)
        .iter()
        .map(|memo| memo.split_whitespace().nth(1).unwrap().to_string())
        .collect()
}

/// Validates a document with xmllint against an official schema; fails the test if xmllint is
/// missing.
pub fn xmllint(path: &Path, schema: &str) {
    run_ok(
        std::process::Command::new("xmllint")
            .arg("--noout")
            .arg("--nonet")
            .arg("--schema")
            .arg(fixtures().join("iso20022").join(schema))
            .arg(path),
    );
}

/// Logs in to an order's token with `pin` (pkcs11-tool): the delivered PIN is the token's.
pub fn assert_pin_opens_token(station: &TestStation, order_no: &str, pin: &str) {
    run_ok(&mut pin_login(station, order_no, pin));
}

/// `pkcs11-tool --login` as the user of the order's token with `pin`, passed through the
/// environment, never on a command line.
pub fn pin_login(station: &TestStation, order_no: &str, pin: &str) -> std::process::Command {
    let mut c = crate::support::pkcs11_login(crate::station::softhsm_module(), order_no, pin);
    c.env("SOFTHSM2_CONF", station.data_dir().join("softhsm2.conf"))
        .args(["--list-objects", "--type", "privkey"]);
    c
}

/// Every file under `dir`, recursively.
pub fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                found.push(p);
            }
        }
    }
    found.sort();
    found
}

/// Every file under `dir` (recursively) that contains `needle`, except `allowed`.
pub fn files_containing(dir: &Path, needle: &[u8], allowed: &[PathBuf]) -> Vec<PathBuf> {
    assert!(!needle.is_empty());
    all_files(dir)
        .into_iter()
        .filter(|p| !allowed.contains(p))
        .filter(|p| {
            let bytes = std::fs::read(p).unwrap();
            bytes.windows(needle.len()).any(|w| w == needle)
        })
        .collect()
}

/// Writes a pain.002 for the transfers `(end_to_end_id, code, reason)` of pain.001 `message_id`
/// with `write_pain002` into `dir`, validates it against the schema, and returns its path.
pub fn pain002_file(
    dir: &Path,
    name: &str,
    message_id: &str,
    transfers: &[(&str, &str, Option<&str>)],
) -> PathBuf {
    use keystation::delivery::bank::{
        Pain002Report, PaymentInfoStatus, TxStatus, TxStatusCode, write_pain002,
    };
    let report = Pain002Report {
        message_id: format!("ICBC-STS-{}", &message_id[..12]),
        original_message_id: message_id.to_string(),
        group_status: None,
        group_reason_code: None,
        group_reason_text: None,
        payment_infos: vec![PaymentInfoStatus {
            original_payment_info_id: message_id.to_string(),
            status: None,
            reason_code: None,
            reason_text: None,
        }],
        transactions: transfers
            .iter()
            .map(|(e2e, code, reason)| TxStatus {
                original_payment_info_id: message_id.to_string(),
                original_instruction_id: Some(e2e.to_string()),
                original_end_to_end_id: Some(e2e.to_string()),
                status: TxStatusCode::from_code(code),
                reason_code: reason.map(str::to_string),
                reason_text: reason.map(|_| "closed account".to_string()),
            })
            .collect(),
    };
    let xml = write_pain002(&report, time::macros::datetime!(2026-11-24 15:00 +08:00)).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, xml).unwrap();
    xmllint(&path, "pain.002.001.11.xsd");
    path
}

/// A camt.054 debit notification for `end_to_end_id` of `amount` CNY (the repository's
/// hand-written fixture with our reference), validated against the schema.
pub fn camt054_file(dir: &Path, name: &str, end_to_end_id: &str, amount: &str) -> PathBuf {
    let text = std::fs::read_to_string(fixtures().join("bank/camt054-booked.xml"))
        .unwrap()
        .replace(
            "<EndToEndId>KSD-000001</EndToEndId>",
            &format!("<EndToEndId>{end_to_end_id}</EndToEndId>"),
        )
        .replace(
            "<Amt Ccy=\"CNY\">0.01</Amt>",
            &format!("<Amt Ccy=\"CNY\">{amount}</Amt>"),
        );
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    xmllint(&path, "camt.054.001.08.xsd");
    path
}
