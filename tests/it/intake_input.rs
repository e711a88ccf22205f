//! Issue 12, items 3 and 7: input refused at intake, through the real binary. Invisible,
//! bidirectional, tag, private-use and symbol characters in names; duplicate JSON keys; seal
//! pictures that provisioning could not use. Each is refused with exit 2, the field and the code
//! point named, and nothing imported; a BOM-prefixed file imports.

use crate::support::{
    Station, error_violations, keystation, order_fixtures, valid_bundle, valid_orders, write_order,
};
use serde_json::{Value, json};
use std::path::Path;

/// The Beijing fixture (main key, both seals), to be broken one field at a time.
fn beijing() -> Value {
    valid_orders().swap_remove(0).1
}

/// The import of `order` (written into a copy of the valid bundle) was refused as bad input,
/// stderr has a `field: ... [code]` line containing every `needles`, nothing was stored, and the
/// `--json` report has exactly the error `(field, code)`. Returns the stderr line.
#[track_caller]
fn refused(station: &Station, order: &Value, field: &str, code: &str, needles: &[&str]) -> String {
    let bundle = valid_bundle();
    let path = write_order(bundle.path(), "order.json", order);
    let run = station.import(&path, &[]);
    run.expect_code(2);
    let line = run
        .stderr
        .lines()
        .find(|l| l.starts_with(&format!("{field}: ")) && l.ends_with(&format!("[{code}]")))
        .unwrap_or_else(|| panic!("no `{field}: ... [{code}]` line in:\n{}", run.stderr))
        .to_string();
    for n in needles {
        assert!(line.contains(n), "{line:?} lacks {n:?}");
    }
    let machine = station.run(&["--json", "order", "import", path.to_str().unwrap()]);
    machine.expect_code(2);
    let report = machine.json();
    let errors = error_violations(&report);
    assert_eq!(errors, [(field.to_string(), code.to_string())], "{report}");
    assert!(station.list().is_empty(), "something was imported");
    line
}

#[test]
fn a_right_to_left_override_in_the_company_name_is_refused_naming_field_and_code_point() {
    let station = Station::sqlite();
    let mut order = beijing();
    // Displays as "北京星河数智科技有限公司" followed by a reversed tail: a forged-looking name.
    order["company"]["name"] = json!("北京星河数智科技\u{202E}司公限有");
    let line = refused(
        &station,
        &order,
        "company.name",
        "invisible_character",
        &["U+202E"],
    );
    // The message itself never carries the raw control: a terminal would obey it.
    assert!(!line.contains('\u{202E}'), "{line:?}");
}

#[test]
fn zero_width_tag_private_use_and_symbol_characters_in_names_are_refused() {
    let station = Station::sqlite();
    for (section, key, value, code, code_point) in [
        // A legal representative's name of zero-width spaces only: looks empty, passes "required".
        (
            "legal_rep",
            "name",
            "\u{200B}\u{200B}\u{200B}",
            "invisible_character",
            "U+200B",
        ),
        (
            "handler",
            "name",
            "李晓梅\u{E0043}\u{E004E}",
            "invisible_character",
            "U+E0043",
        ),
        (
            "company",
            "name",
            "北京星河\u{E000}数智科技有限公司",
            "private_use_character",
            "U+E000",
        ),
        (
            "company",
            "department",
            "信息\u{2067}技术部",
            "invisible_character",
            "U+2067",
        ),
        (
            "invoice",
            "title",
            "北京星河数智科技有限公司😀",
            "name_character",
            "U+1F600",
        ),
        (
            "shipping",
            "city",
            "北京\u{FEFF}市",
            "invisible_character",
            "U+FEFF",
        ),
        ("legal_rep", "name", "·", "name_no_letter", "letter"),
    ] {
        let mut order = beijing();
        order[section][key] = json!(value);
        let field = format!("{section}.{key}");
        let line = refused(&station, &order, &field, code, &[code_point]);
        assert!(
            !line.contains(['\u{200B}', '\u{E0043}', '\u{E000}', '\u{2067}', '\u{FEFF}']),
            "{line:?}"
        );
    }
    assert_eq!(station.audit_verifies(), 0);
}

#[test]
fn duplicate_keys_are_refused_at_any_depth_and_nothing_of_the_file_is_imported() {
    let station = Station::sqlite();
    let bundle = valid_bundle();
    let orders: Vec<Value> = valid_orders().into_iter().map(|(_, v)| v).collect();
    let text = serde_json::to_string_pretty(&Value::Array(orders)).unwrap();
    // The third order's company department twice, then the second order's first seal kind twice.
    let text = text.replacen(
        "\"department\": \"深圳办事处\"",
        "\"department\": \"深圳办事处\", \"department\": \"深圳某某部\"",
        1,
    );
    let text = text.replacen(
        "\"kind\": \"company\",",
        "\"kind\": \"legal_rep\", \"kind\": \"company\",",
        1,
    );
    let path = bundle.path().join("batch.json");
    std::fs::write(&path, &text).unwrap();
    // serde_json alone takes the file (the last key wins): only the strict parse refuses it.
    assert!(serde_json::from_str::<Value>(&text).is_ok());

    let run = station.import(&path, &[]);
    run.expect_code(2);
    for line in [
        "[0].seals[0].kind: \"kind\" is given twice",
        "[2].company.department: \"department\" is given twice",
    ] {
        assert!(
            run.stderr
                .lines()
                .any(|l| l.starts_with(line) && l.ends_with("[duplicate_key]")),
            "no {line:?} in:\n{}",
            run.stderr
        );
    }
    assert!(station.list().is_empty(), "part of the file was imported");
}

#[test]
fn a_file_starting_with_a_utf8_bom_imports() {
    let station = Station::sqlite();
    let bundle = valid_bundle();
    let (_, order) = valid_orders().swap_remove(1);
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(serde_json::to_vec_pretty(&order).unwrap());
    let path = bundle.path().join("bom.json");
    std::fs::write(&path, bytes).unwrap();
    let run = station.import(&path, &[]);
    run.expect_code(0);
    assert_eq!(run.stdout.trim(), "imported KS-DEMO-0002");
    assert_eq!(
        station.show("KS-DEMO-0002")["order"]["company"]["name"],
        "上海浦江云链信息技术有限公司"
    );
}

/// `order import FILE` with the process's data segment limited to `kib` KiB (`ulimit -d`), so
/// decoding a big picture would fail to allocate (an abort, not exit 2).
fn import_with_data_limit(station: &Station, file: &Path, kib: u64) -> std::process::Output {
    let mut c = std::process::Command::new("sh");
    c.arg("-c")
        .arg(format!("ulimit -d {kib} && exec \"$0\" \"$@\""))
        .arg(keystation().get_program())
        .arg("--config")
        .arg(&station.config)
        .args(["order", "import"])
        .arg(file)
        .env_remove("KEYSTATION_CONFIG")
        .env_remove("KEYSTATION_LOG");
    c.output().unwrap()
}

#[test]
fn pictures_provisioning_could_not_use_are_refused_at_import_in_bounded_memory() {
    const LIMIT_KIB: u64 = 64 * 1024;
    let station = Station::sqlite();
    let bundle = valid_bundle();
    let bad = order_fixtures().join("invalid/bad_seals");
    for f in ["huge.png", "blank.png"] {
        std::fs::copy(bad.join(f), bundle.path().join("seals").join(f)).unwrap();
    }
    // A PNG cut in half: right signature and header, no image.
    let png = std::fs::read(bundle.path().join("seals/company.png")).unwrap();
    std::fs::write(bundle.path().join("seals/cut.png"), &png[..png.len() / 2]).unwrap();
    // A complete 20000x20000 picture (1.2 GB decoded), a scan with no seal impression, and the
    // truncated one.
    for (seal, picture, code, says) in [
        (
            0,
            "seals/cut.png",
            "picture_unreadable",
            "does not decode as a picture",
        ),
        (
            0,
            "seals/huge.png",
            "picture_too_large",
            "20000x20000 px, the limit is 8000 px",
        ),
        (
            1,
            "seals/blank.png",
            "picture_empty",
            "no red seal impression",
        ),
    ] {
        let mut order = beijing();
        order["seals"][seal]["picture"] = json!(picture);
        let path = write_order(bundle.path(), "order.json", &order);
        let out = import_with_data_limit(&station, &path, LIMIT_KIB);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{picture}: {}\n{stderr}",
            out.status
        );
        let field = format!("seals[{seal}].picture");
        let expected = format!("{field}: {picture}: {says}");
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(&expected) && l.ends_with(&format!("[{code}]"))),
            "no {expected:?} ... [{code}] in:\n{stderr}"
        );
        // Stated once: one line names the picture.
        assert_eq!(stderr.matches(picture).count(), 1, "{stderr}");
        assert!(station.list().is_empty(), "{picture}: imported");
    }
    // The same limit leaves room for a real import: its two seal pictures are normalised too.
    let (path, _) = valid_orders().swap_remove(0);
    let out = import_with_data_limit(&station, &path, LIMIT_KIB);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn order_list_and_show_escape_control_and_bidi_characters_of_stored_orders() {
    use sqlx::Connection;
    let station = Station::sqlite();
    let (path, _) = valid_orders().swap_remove(0);
    station.import(&path, &[]).expect_code(0);

    // An order stored before today's intake rules (or behind the station's back).
    let forged = "北京星河\u{202E}司公限有\u{1B}[2J";
    let db = station.config.parent().unwrap().join("station.db");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let (json,): (String,) =
        sqlx::query_as("SELECT order_json FROM orders WHERE order_no = 'KS-DEMO-0001'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    let mut order: Value = serde_json::from_str(&json).unwrap();
    order["company"]["name"] = json!(forged);
    order["legal_rep"]["name"] = json!("王\u{200B}建国");
    sqlx::query(
        "UPDATE orders SET company_name = ?, order_json = ? WHERE order_no = 'KS-DEMO-0001'",
    )
    .bind(forged)
    .bind(order.to_string())
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();

    let escaped = "北京星河\\u{202E}司公限有\\u{001B}[2J";
    for args in [["order", "list", ""], ["order", "show", "KS-DEMO-0001"]] {
        let args: Vec<&str> = args.into_iter().filter(|a| !a.is_empty()).collect();
        let run = station.run(&args);
        run.expect_code(0);
        assert!(
            !run.stdout.contains(['\u{202E}', '\u{1B}', '\u{200B}']),
            "{args:?} printed a raw control: {:?}",
            run.stdout
        );
        assert!(run.stdout.contains(escaped), "{args:?}: {}", run.stdout);
    }
    let show = station.run(&["order", "show", "KS-DEMO-0001"]);
    assert!(show.stdout.contains("王\\u{200B}建国"), "{}", show.stdout);
    // Machines get the stored value, JSON-escaped.
    assert_eq!(
        station.show("KS-DEMO-0001")["order"]["company"]["name"],
        forged
    );
}
