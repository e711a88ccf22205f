//! Console login by password and TOTP (issue 17): codes refused when wrong or used twice, an
//! account without a password or TOTP refused, the CLI that sets them (the policy, who may set
//! whose), and the secrets nowhere in clear — not in the trail, not in the database.

use super::http::{Client, detail};
use super::{register, set_password, station_with_console};
use crate::support::{audit_records, keystation, run_ok};
use serde_json::Value;

/// The message of every refused login, whatever failed.
const REFUSED: &str = "登录失败：操作员、密码或动态验证码不正确，或账户已停用。";

#[test]
fn a_code_is_refused_when_wrong_or_used_twice_and_every_refusal_reads_the_same() {
    let (st, serve) = station_with_console();
    let rita = register(&st, "console-rita", "reviewer");
    // A code of no step near now.
    let near: Vec<String> = (-3..=3).map(|o| rita.code_at_offset(o)).collect();
    let wrong = (1..)
        .map(|n: u32| format!("{:06}", n.wrapping_mul(7919) % 1_000_000))
        .find(|c| !near.contains(c))
        .unwrap();
    let mut c = Client::new();
    let refused = c.login_with(&serve, &rita.name, &rita.password, &wrong);
    assert_eq!(refused.status, 401, "{}", refused.text());
    assert!(refused.text().contains(REFUSED), "{}", refused.text());

    let code = rita.code();
    assert_eq!(
        c.login_with(&serve, &rita.name, &rita.password, &code)
            .status,
        303
    );
    // The same code again, from another browser: seen once, never accepted again.
    let mut d = Client::new();
    let replayed = d.login_with(&serve, &rita.name, &rita.password, &code);
    assert_eq!(replayed.status, 401, "{}", replayed.text());
    assert!(replayed.text().contains(REFUSED));
    // An unknown operator reads the same.
    let unknown = d.login_with(&serve, "console-nobody", &rita.password, &rita.code());
    assert_eq!(unknown.status, 401);
    assert!(unknown.text().contains(REFUSED));
    // Still logged in where the code was first used.
    assert_eq!(c.get(&serve, "/").status, 200);

    let audit = Value::Array(st.audit());
    let failed = audit_records(&audit, "console.login_failed");
    let reasons: Vec<_> = failed.iter().map(|r| detail(r, "reason")).collect();
    assert_eq!(
        reasons,
        ["wrong_code", "replayed_code", "unknown_operator"],
        "{audit}"
    );
    assert_eq!(detail(failed[1], "operator"), "console-rita");
    assert_eq!(detail(failed[2], "operator"), Value::Null);
    assert_eq!(audit_records(&audit, "console.login").len(), 1);
    st.audit_verifies();
}

#[test]
fn an_operator_without_a_password_or_totp_cannot_log_in() {
    let (st, serve) = station_with_console();
    run_ok(
        st.admin_command()
            .args(["operator", "add", "console-nora", "--role", "reviewer"])
            .arg("--credential-out")
            .arg(st.tmp().join("nora.credential")),
    );
    let mut c = Client::new();
    let refused = c.login_with(&serve, "console-nora", "", "123456");
    assert_eq!(refused.status, 401, "{}", refused.text());
    let audit = Value::Array(st.audit());
    let failed = audit_records(&audit, "console.login_failed");
    assert_eq!(detail(failed[0], "reason"), "not_enrolled");
}

#[test]
fn passwords_meet_the_policy_and_only_their_owner_or_an_administrator_sets_them() {
    let (st, _serve) = station_with_console();
    let rita = register(&st, "console-rita", "reviewer");
    let oscar = register(&st, "console-oscar", "reviewer");
    let as_cred = |cred: &std::path::Path| {
        let mut cmd = keystation();
        cmd.arg("--config")
            .arg(&st.config)
            .arg("--credential")
            .arg(cred);
        cmd
    };
    let rita_cred = st.tmp().join("console-rita.credential");

    // Too short: named, exit 2, nothing changed.
    let short = set_password(
        as_cred(&rita_cred).args(["operator", "password", "console-rita"]),
        "short",
    );
    assert_eq!(short.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&short.stderr);
    assert!(
        stderr.contains("E-OPERATOR-PASSWORD") && stderr.contains("12"),
        "{stderr}"
    );
    // Her own: fine. Oscar's: an administrator's business.
    let own = set_password(
        as_cred(&rita_cred).args(["operator", "password", "console-rita"]),
        "rita's new console password",
    );
    assert!(own.status.success(), "{own:?}");
    let others = set_password(
        as_cred(&rita_cred).args(["operator", "password", "console-oscar"]),
        "oscar's password chosen by rita",
    );
    assert_eq!(others.status.code(), Some(2), "{others:?}");
    assert!(String::from_utf8_lossy(&others.stderr).contains("E-OPERATOR-ROLE"));
    let totp = as_cred(&rita_cred)
        .args(["operator", "totp", "console-oscar"])
        .output()
        .unwrap();
    assert_eq!(totp.status.code(), Some(2));
    assert!(totp.stdout.is_empty(), "no secret printed when refused");

    // Audited: whose secret, set by whom; the secrets themselves nowhere.
    let audit = Value::Array(st.audit());
    let set = audit_records(&audit, "operator.password_set");
    let last = set.last().unwrap();
    assert_eq!(detail(last, "operator"), "console-rita");
    assert_eq!(detail(last, "set_by"), "console-rita");
    assert_eq!(last["actor"], "console-rita");
    let enrolled = audit_records(&audit, "operator.totp_enrolled");
    assert_eq!(enrolled.len(), 2, "{audit}");
    assert_eq!(detail(enrolled[0], "set_by"), "admin");
    let trail = audit.to_string();
    for secret in [&rita.password, &rita.secret, &oscar.secret] {
        assert!(!trail.contains(secret.as_str()));
    }

    // The database holds an argon2id hash and a sealed secret, neither in clear.
    let db = st.dir().join("station.db");
    let row = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg(
            "SELECT password_hash, hex(totp_sealed), totp_last_step FROM operators \
             WHERE name = 'console-oscar'",
        )
        .output()
        .unwrap();
    let row = String::from_utf8(row.stdout).unwrap();
    assert!(row.starts_with("$argon2id$v=19$"), "{row}");
    let raw = data_encoding::BASE32_NOPAD
        .decode(oscar.secret.as_bytes())
        .unwrap();
    let sealed = row.split('|').nth(1).unwrap();
    assert!(sealed.len() > 2 * raw.len(), "{row}");
    assert!(!sealed.contains(&hex::encode_upper(&raw)), "{row}");
    assert!(!row.contains(&oscar.password) && !row.contains(&oscar.secret));
}
