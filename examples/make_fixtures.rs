//! Writes the order fixtures: `cargo run --example make_fixtures [DIR]` (default `fixtures/orders`).
//!
//! Everything under `fixtures/orders/` comes from this one program, deterministically (no clock,
//! no OS randomness, no fonts): the same `image` version writes the same bytes, and the test
//! `fixtures::committed_order_fixtures_match_the_generator` checks the committed tree against a
//! fresh run. To regenerate after changing this file:
//!
//! ```text
//! rm -rf fixtures/orders && cargo run --example make_fixtures
//! ```
//!
//! Layout. The intake only reads documents inside the order file's directory (no `..`), so each
//! of `valid/` and `invalid/` is a self-contained application bundle: order JSON files plus the
//! `docs/` and `seals/` they reference (identical pictures in both):
//! - `docs/`: five synthetic document scans drawn with pixel loops (business licence,
//!   handler ID front and back, power of attorney, seal collection form), PNG and JPEG;
//! - `seals/`: copies of `fixtures/seals/company.png` and `legal_rep.jpg`;
//! - `valid/*.json`: three orders (main key with both seals; main key, company seal, corporate
//!   transfer; secondary key, no seals), with real check-digit-valid USCCs and resident IDs from
//!   the domain doc's vectors; the first is spelled un-normalised on purpose;
//! - `invalid/*.json`: one file per validation rule, each a valid order with exactly one thing
//!   broken, and `invalid/expected.json`: file -> the error violations (field, code) it must
//!   produce. `invalid/docs/power_of_attorney.pdf` and `invalid/seals/company.gif` are real
//!   files of the wrong type. `file_too_large.json` names `docs/too_large.png`, which is NOT
//!   committed (1.5 MiB of nothing): the test writes it into its temporary copy.
//! - `invalid/bad_seals/`: seal pictures of an accepted type that cannot become a seal:
//!   `huge.png`, a complete 20000x20000 PNG (1-bit palette, a red square on white, about 60 KB:
//!   decoded it would take 1.2 GB) and `blank.png`, a scan with black print and no red ink.
//!   `duplicate_key.json` is written as text, since a JSON value cannot hold a key twice.

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder, Rgb, RgbImage};
use keystation::domain::validate::SECTIONS;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::error::Error;
use std::io::Write as _;
use std::path::{Path, PathBuf};

type Res<T> = Result<T, Box<dyn Error>>;

fn main() -> Res<()> {
    let root = match std::env::args_os().nth(1) {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/orders"),
    };
    let written = write_fixtures(&root)?;
    println!("wrote {} files under {}", written.len(), root.display());
    Ok(())
}

/// Writes every order fixture under `root`; returns the written paths relative to `root`.
pub fn write_fixtures(root: &Path) -> Res<Vec<PathBuf>> {
    let mut w = Writer {
        root: root.to_path_buf(),
        written: Vec::new(),
    };
    let seals_src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/seals");
    let company_seal = std::fs::read(seals_src.join("company.png"))?;
    let legal_rep_seal = std::fs::read(seals_src.join("legal_rep.jpg"))?;
    let docs: [(&str, Vec<u8>); 5] = [
        ("business_license.png", png(&business_license())?),
        ("handler_id_front.jpg", jpeg(&id_front())?),
        ("handler_id_back.jpg", jpeg(&id_back())?),
        ("power_of_attorney.png", png(&power_of_attorney())?),
        ("seal_collection_form.png", png(&seal_collection_form())?),
    ];
    for bundle in ["valid", "invalid"] {
        for (name, bytes) in &docs {
            w.bytes(&format!("{bundle}/docs/{name}"), bytes)?;
        }
        w.bytes(&format!("{bundle}/seals/company.png"), &company_seal)?;
        w.bytes(&format!("{bundle}/seals/legal_rep.jpg"), &legal_rep_seal)?;
    }
    // Wrong-type files for `file_type.json` / `seal_file_type.json`: real PDF and GIF bytes.
    w.bytes("invalid/docs/power_of_attorney.pdf", MINIMAL_PDF.as_bytes())?;
    w.bytes("invalid/seals/company.gif", &ONE_PIXEL_GIF)?;
    w.bytes("invalid/bad_seals/huge.png", &huge_png(HUGE_SIDE)?)?;
    w.bytes("invalid/bad_seals/blank.png", &png(&blank_scan())?)?;

    w.json(
        "valid/0001_main-key_two-seals_legal-rep-phone.json",
        &order_beijing_unnormalised(),
    )?;
    w.json(
        "valid/0002_main-key_company-seal_corporate-transfer.json",
        &order_shanghai("KS-DEMO-0002"),
    )?;
    w.json(
        "valid/0003_secondary-key_no-seals_legal-rep-bank-card.json",
        &order_shenzhen("KS-DEMO-0003"),
    )?;

    let mut expected = BTreeMap::new();
    for (i, case) in invalid_cases().into_iter().enumerate() {
        let no = format!("KS-INV-{:03}", i + 1);
        let file = format!("{}.json", case.name);
        match case.body {
            Body::Order(make) => w.json(&format!("invalid/{file}"), &make(&no))?,
            Body::Raw(text) => w.bytes(&format!("invalid/{file}"), text.as_bytes())?,
            Body::Text(make) => w.bytes(&format!("invalid/{file}"), make(&no).as_bytes())?,
        }
        let list: Vec<Value> = case
            .expected
            .iter()
            .map(|(field, code)| json!({ "field": field, "code": code }))
            .collect();
        expected.insert(file, Value::Array(list));
    }
    let expected: serde_json::Map<String, Value> = expected.into_iter().collect();
    w.json("invalid/expected.json", &Value::Object(expected))?;
    Ok(w.written)
}

struct Writer {
    root: PathBuf,
    written: Vec<PathBuf>,
}

impl Writer {
    fn bytes(&mut self, rel: &str, bytes: &[u8]) -> Res<()> {
        let path = self.root.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, bytes)?;
        self.written.push(PathBuf::from(rel));
        Ok(())
    }

    fn json(&mut self, rel: &str, value: &Value) -> Res<()> {
        let mut text = String::new();
        pretty(&mut text, value, 0);
        text.push('\n');
        self.bytes(rel, text.as_bytes())
    }
}

// ---------------------------------------------------------------------------------------------
// Orders

const DOCS: [(&str, &str); 5] = [
    ("business_license", "docs/business_license.png"),
    ("handler_id_front", "docs/handler_id_front.jpg"),
    ("handler_id_back", "docs/handler_id_back.jpg"),
    ("power_of_attorney", "docs/power_of_attorney.png"),
    ("seal_collection_form", "docs/seal_collection_form.png"),
];

fn documents(with_seal_form: bool) -> Value {
    DOCS.iter()
        .filter(|(kind, _)| with_seal_form || *kind != "seal_collection_form")
        .map(|(kind, file)| json!({ "kind": kind, "file": file }))
        .collect()
}

fn seal(kind: &str) -> Value {
    let picture = match kind {
        "company" => "seals/company.png",
        _ => "seals/legal_rep.jpg",
    };
    json!({ "kind": kind, "picture": picture })
}

/// Main key, company + legal-rep seals, PIN by SMS to the legal rep's real-name phone. Typed the
/// way people type: padded, lower-case, full-width digits, `+86` and hyphens, mixed-case domain.
/// `order show` must return it normalised.
fn order_beijing_unnormalised() -> Value {
    let mut v = order_beijing(" ks-demo-0001 ");
    for (field, typed) in [
        ("company.name", "  北京星河数智科技有限公司 "),
        ("company.uscc", "9111 0000 6000 3734 1l"),
        ("company.phone", "０１０-８２５６ ８８８８"),
        ("legal_rep.mobile", "+86 138-0013-8000"),
        ("legal_rep.id_number", "11010519491231002x"),
        (
            "invoice.address_phone",
            "北京市海淀区中关村大街27号 010-82568888",
        ),
        (
            "invoice.bank_account",
            "中国工商银行北京中关村支行 0200004509200123456",
        ),
        ("handler.mobile", "139 1088 6621"),
        ("handler.email", "li.xiaomei@XingHe-Tech.COM.CN"),
    ] {
        *at(&mut v, field) = json!(typed);
    }
    v
}

/// The Beijing order, clean: the base every single-rule invalid fixture breaks one thing of.
fn order_beijing(order_no: &str) -> Value {
    json!({
        "order_no": order_no,
        "auth_method": "legal_rep_phone",
        "company": {
            "name": "北京星河数智科技有限公司",
            "uscc": "91110000600037341L",
            "department": "信息技术部",
            "phone": "010-8256 8888"
        },
        "legal_rep": {
            "name": "王建国",
            "mobile": "13800138000",
            "id_type": "resident_id",
            "id_number": "11010519491231002X"
        },
        "product": { "key_role": "main", "years": 1, "seal_service": "company_and_legal_rep" },
        "invoice": { "title": "北京星河数智科技有限公司", "taxpayer_id": "91110000600037341L" },
        "handler": {
            "name": "李晓梅",
            "mobile": "13910886621",
            "id_type": "resident_id",
            "id_number": "110108200001011237",
            "email": "li.xiaomei@xinghe-tech.com.cn"
        },
        "shipping": {
            "province": "北京市",
            "city": "北京市",
            "address": "海淀区中关村大街27号 中关村大厦15层"
        },
        "documents": documents(true),
        "seals": [seal("company"), seal("legal_rep")]
    })
}

/// Main key, company seal only, PIN in the memo of a 0.01 CNY transfer to the corporate account.
fn order_shanghai(order_no: &str) -> Value {
    json!({
        "order_no": order_no,
        "auth_method": "corporate_transfer",
        "company": {
            "name": "上海浦江云链信息技术有限公司",
            "uscc": "91310115MA1K3BTP2B",
            "phone": "021-5888 1234"
        },
        "legal_rep": {
            "name": "陈志远",
            "mobile": "13661735208",
            "id_type": "resident_id",
            "id_number": "31011520000229003X"
        },
        "product": { "key_role": "main", "years": 1, "seal_service": "company" },
        "invoice": {
            "title": "上海浦江云链信息技术有限公司",
            "taxpayer_id": "91310115MA1K3BTP2B",
            "address_phone": "上海市浦东新区张江路88号 021-58881234",
            "bank_account": "招商银行上海张江支行 310045678901234567"
        },
        "handler": {
            "name": "周婷",
            "mobile": "18621559087",
            "id_type": "resident_id",
            "id_number": "440305198512310026",
            "email": "zhouting@pjyl.cn"
        },
        "shipping": {
            "province": "上海市",
            "city": "上海市",
            "address": "浦东新区张江路88号3号楼502室"
        },
        "corporate_account": {
            "account_name": "上海浦江云链信息技术有限公司",
            "account_number": "3100 4567 8901 2345 67",
            "bank_name": "招商银行",
            "branch": "上海张江支行"
        },
        "documents": documents(true),
        "seals": [seal("company")]
    })
}

/// Secondary key (no seals, no seal collection form) of the Beijing company, for a second
/// employee at its Shenzhen office; it names the company's main-key order KS-DEMO-0001. PIN by
/// SMS (legal rep's bank card method).
fn order_shenzhen(order_no: &str) -> Value {
    json!({
        "order_no": order_no,
        "auth_method": "legal_rep_bank_card",
        "company": {
            "name": "北京星河数智科技有限公司",
            "uscc": "91110000600037341L",
            "department": "深圳办事处"
        },
        "legal_rep": {
            "name": "王建国",
            "mobile": "13800138000",
            "id_type": "resident_id",
            "id_number": "11010519491231002X"
        },
        "product": {
            "key_role": "secondary",
            "years": 1,
            "seal_service": "none",
            "main_order_no": "KS-DEMO-0001"
        },
        "invoice": { "title": "北京星河数智科技有限公司", "taxpayer_id": "91110000600037341L" },
        "handler": {
            "name": "黄敏",
            "mobile": "13560781234",
            "id_type": "resident_id",
            "id_number": "110108200001011237",
            "email": "huangmin@qiming-elec.com"
        },
        "shipping": {
            "province": "广东省",
            "city": "深圳市",
            "address": "南山区高新南七道9号"
        },
        "documents": documents(false),
        "seals": []
    })
}

enum Body {
    /// Built from the order number.
    Order(Box<dyn Fn(&str) -> Value>),
    /// Written as is (not an order object at all).
    Raw(&'static str),
    /// Text built from the order number (JSON that no `Value` can hold).
    Text(Box<dyn Fn(&str) -> String>),
}

struct Case {
    name: &'static str,
    body: Body,
    expected: Vec<(&'static str, &'static str)>,
}

/// One broken thing on top of a valid order.
fn edit(base: fn(&str) -> Value, f: impl Fn(&mut Value) + 'static) -> Body {
    Body::Order(Box::new(move |no| {
        let mut v = base(no);
        f(&mut v);
        v
    }))
}

fn case(name: &'static str, body: Body, expected: &[(&'static str, &'static str)]) -> Case {
    Case {
        name,
        body,
        expected: expected.to_vec(),
    }
}

/// One field (`field`, the path the intake reports: `a.b`, `a[0].b`) of a valid order set to
/// `value`, refused with `code` at that field.
fn set(
    name: &'static str,
    base: fn(&str) -> Value,
    field: &'static str,
    value: impl Into<Value>,
    code: &'static str,
) -> Case {
    let value = value.into();
    let body = edit(base, move |v| *at(v, field) = value.clone());
    case(name, body, &[(field, code)])
}

/// The value at `path` (`a.b`, `a[0].b`), created as null where an object lacks the key.
fn at<'v>(v: &'v mut Value, path: &str) -> &'v mut Value {
    path.split('.').fold(v, |v, step| {
        let (key, index) = match step.split_once('[') {
            Some((key, rest)) => (key, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (step, None),
        };
        let v = &mut v[key];
        match index {
            Some(i) => &mut v[i],
            None => v,
        }
    })
}

/// A USCC broken in one way, written as the invoice's taxpayer id too: an 18-character
/// taxpayer id that differs from the USCC would add a mismatch warning to the file.
fn uscc_everywhere(uscc: &'static str) -> Body {
    edit(order_beijing, move |v| {
        v["company"]["uscc"] = json!(uscc);
        v["invoice"]["taxpayer_id"] = json!(uscc);
    })
}

fn remove(v: &mut Value, key: &str) {
    if let Some(m) = v.as_object_mut() {
        m.remove(key);
    }
}

fn push(v: &mut Value, item: Value) {
    if let Some(a) = v.as_array_mut() {
        a.push(item);
    }
}

/// Every rule of the intake, one file each (sorted by name in the directory).
fn invalid_cases() -> Vec<Case> {
    let bj = order_beijing;
    let sh = order_shanghai;
    let sz = order_shenzhen;
    vec![
        set(
            "account_number_invalid",
            sh,
            "corporate_account.account_number",
            "1234567",
            "account_number_invalid",
        ),
        case(
            "array_one_invalid",
            Body::Order(Box::new(|no| {
                let mut bad = order_beijing(&format!("{no}-B"));
                bad["legal_rep"]["mobile"] = json!("12345678901");
                json!([order_beijing(&format!("{no}-A")), bad])
            })),
            &[("[1].legal_rep.mobile", "mobile_invalid")],
        ),
        case(
            "corporate_account_not_allowed",
            edit(bj, |v| {
                v["corporate_account"] = order_shanghai("x")["corporate_account"].clone();
            }),
            &[("corporate_account", "not_allowed")],
        ),
        case(
            "corporate_account_required",
            edit(sh, |v| remove(v, "corporate_account")),
            &[("corporate_account", "required")],
        ),
        case(
            "document_duplicate",
            edit(bj, |v| {
                push(
                    &mut v["documents"],
                    json!({ "kind": "business_license", "file": "docs/business_license.png" }),
                );
            }),
            &[("documents[5].kind", "document_duplicate")],
        ),
        case(
            "document_missing",
            edit(bj, |v| {
                if let Some(a) = v["documents"].as_array_mut() {
                    a.retain(|d| d["kind"] != "power_of_attorney");
                }
            }),
            &[("documents", "document_missing")],
        ),
        set(
            "email_invalid",
            bj,
            "handler.email",
            "li.xiaomei#xinghe-tech.com.cn",
            "email_invalid",
        ),
        case("empty_array", Body::Raw("[]\n"), &[("", "empty")]),
        set(
            "enum_invalid",
            bj,
            "auth_method",
            "wechat_pay",
            "enum_invalid",
        ),
        set(
            "file_missing",
            bj,
            "documents[0].file",
            "docs/business_license_scan.png",
            "file_missing",
        ),
        set(
            "file_path_absolute",
            bj,
            "documents[0].file",
            "/etc/passwd",
            "file_path",
        ),
        set(
            "file_path_traversal",
            bj,
            "documents[0].file",
            "../valid/docs/business_license.png",
            "file_path",
        ),
        set(
            "file_too_large",
            bj,
            "documents[0].file",
            "docs/too_large.png",
            "file_too_large",
        ),
        set(
            "file_type",
            bj,
            "documents[3].file",
            "docs/power_of_attorney.pdf",
            "file_type",
        ),
        set(
            "id_checksum",
            bj,
            "legal_rep.id_number",
            "110105194912310021",
            "id_checksum",
        ),
        set(
            "id_date_before_1900",
            bj,
            "legal_rep.id_number",
            "110105189912310023",
            "id_date_before_1900",
        ),
        set(
            "id_date_future",
            bj,
            "handler.id_number",
            "110105209901010020",
            "id_date_future",
        ),
        set(
            "id_date_invalid",
            bj,
            "handler.id_number",
            "310115197002290035",
            "id_date_invalid",
        ),
        set(
            "id_legacy_15",
            bj,
            "legal_rep.id_number",
            "110105491231002",
            "id_legacy_15",
        ),
        set(
            "id_length",
            bj,
            "legal_rep.id_number",
            "11010519491231002",
            "id_length",
        ),
        set(
            "invalid_characters",
            bj,
            "company.name",
            "北京星河数智科技\u{7}有限公司",
            "invalid_characters",
        ),
        case(
            "json_invalid",
            Body::Raw(
                "{\n  \"order_no\": \"KS-INV-022\",\n  \"auth_method\": \"legal_rep_phone\",\n  \"company\": { \"name\": \"北京星河数智科技有限公司\"\n",
            ),
            &[("", "json_invalid")],
        ),
        set(
            "mobile_invalid",
            bj,
            "legal_rep.mobile",
            "12345678901",
            "mobile_invalid",
        ),
        case(
            "not_an_object",
            Body::Raw("\"KS-INV-024\"\n"),
            &[("", "wrong_type")],
        ),
        case(
            "order_no_duplicate",
            Body::Order(Box::new(|no| {
                json!([order_beijing(no), order_shenzhen(no)])
            })),
            &[("[1].order_no", "order_no_duplicate")],
        ),
        set(
            "order_no_invalid",
            bj,
            "order_no",
            "KS/INV/026",
            "order_no_invalid",
        ),
        case(
            "required_field",
            edit(bj, |v| remove(&mut v["company"], "name")),
            &[("company.name", "required")],
        ),
        case(
            "seal_duplicate",
            edit(sh, |v| push(&mut v["seals"], seal("company"))),
            &[("seals[1].kind", "seal_duplicate")],
        ),
        set(
            "seal_file_type",
            bj,
            "seals[0].picture",
            "seals/company.gif",
            "file_type",
        ),
        set(
            "seal_missing",
            bj,
            "seals",
            [seal("company")],
            "seal_missing",
        ),
        set(
            "seal_service_secondary",
            sz,
            "product.seal_service",
            "company",
            "seal_service_secondary",
        ),
        case(
            "seal_unexpected",
            edit(sh, |v| push(&mut v["seals"], seal("legal_rep"))),
            &[("seals[1].kind", "seal_unexpected")],
        ),
        set(
            "taxpayer_id_charset",
            bj,
            "invoice.taxpayer_id",
            "91110000600037341*",
            "taxpayer_id_charset",
        ),
        set(
            "taxpayer_id_length",
            bj,
            "invoice.taxpayer_id",
            "9111000060003734",
            "taxpayer_id_length",
        ),
        set(
            "too_long",
            bj,
            "company.department",
            "信息技术部".repeat(13),
            "too_long",
        ),
        set(
            "unknown_field",
            bj,
            "company.fax",
            "010-8256 8889",
            "unknown_field",
        ),
        case(
            "uscc_charset",
            uscc_everywhere("9111000060003734IL"),
            &[("company.uscc", "uscc_charset")],
        ),
        case(
            "uscc_checksum",
            uscc_everywhere("91110000600037341M"),
            &[("company.uscc", "uscc_checksum")],
        ),
        set(
            "uscc_length",
            bj,
            "company.uscc",
            "91110000600037341",
            "uscc_length",
        ),
        case(
            "uscc_region",
            uscc_everywhere("91A10000600037341L"),
            &[("company.uscc", "uscc_region")],
        ),
        set("wrong_type", bj, "product.years", "1", "wrong_type"),
        set(
            "years_unsupported",
            bj,
            "product.years",
            5,
            "years_unsupported",
        ),
        // Issue 12: text and pictures that must be refused at intake. Appended, not sorted in,
        // so the order numbers of the cases above stay what they were.
        // Shows as "北京星河数智科技有限公司" in a terminal that obeys U+202E.
        set(
            "bidi_override",
            bj,
            "company.name",
            "北京星河数智科技\u{202E}司公限有",
            "invisible_character",
        ),
        set(
            "zero_width_name",
            bj,
            "legal_rep.name",
            "\u{200B}\u{200B}\u{200B}",
            "invisible_character",
        ),
        // "CN" in tag characters: invisible, yet carried into every copy of the name.
        set(
            "tag_character",
            bj,
            "handler.name",
            "李晓梅\u{E0043}\u{E004E}",
            "invisible_character",
        ),
        set(
            "private_use_character",
            bj,
            "invoice.title",
            "北京星河数智科技\u{E000}有限公司",
            "private_use_character",
        ),
        set(
            "unassigned_character",
            bj,
            "company.department",
            "信息技术部\u{0378}",
            "unassigned_character",
        ),
        set(
            "name_character",
            bj,
            "company.name",
            "北京星河数智科技有限公司😀",
            "name_character",
        ),
        set(
            "name_no_letter",
            bj,
            "legal_rep.name",
            "·",
            "name_no_letter",
        ),
        case(
            "duplicate_key",
            Body::Text(Box::new(|no| {
                let mut text = String::new();
                pretty(&mut text, &order_beijing(no), 0);
                text.push('\n');
                // A second company name after the first: serde_json alone would keep this one.
                let genuine = "\"name\": \"北京星河数智科技有限公司\",";
                text.replacen(
                    genuine,
                    &format!("{genuine}\n    \"name\": \"北京星河数智科技有限公司（伪）\","),
                    1,
                )
            })),
            &[("company.name", "duplicate_key")],
        ),
        set(
            "picture_too_large",
            bj,
            "seals[0].picture",
            "bad_seals/huge.png",
            "picture_too_large",
        ),
        set(
            "picture_empty",
            bj,
            "seals[1].picture",
            "bad_seals/blank.png",
            "picture_empty",
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// JSON text: pretty-printed with keys in application-form order (serde_json's map is sorted,
// which would put `order_no` in the middle of an order).

/// The keys inside a section, in form order; the sections themselves come first, in the order
/// the domain reads them.
const FIELD_ORDER: &[&str] = &[
    "name",
    "uscc",
    "department",
    "phone",
    "mobile",
    "id_type",
    "id_number",
    "email",
    "key_role",
    "years",
    "seal_service",
    "main_order_no",
    "title",
    "taxpayer_id",
    "address_phone",
    "bank_account",
    "province",
    "city",
    "address",
    "account_name",
    "account_number",
    "bank_name",
    "branch",
    "kind",
    "file",
    "picture",
    "field",
    "code",
];

fn rank(key: &str) -> usize {
    SECTIONS
        .iter()
        .chain(FIELD_ORDER)
        .position(|k| *k == key)
        .unwrap_or(SECTIONS.len() + FIELD_ORDER.len())
}

fn sorted_keys(m: &serde_json::Map<String, Value>) -> Vec<&String> {
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
    keys
}

/// `{ "kind": "company", "picture": "seals/company.png" }` on one line when it is short and flat.
fn inline(m: &serde_json::Map<String, Value>) -> Option<String> {
    if m.values().any(|v| v.is_object() || v.is_array()) {
        return None;
    }
    let fields: Vec<String> = sorted_keys(m)
        .into_iter()
        .map(|k| format!("{}: {}", Value::String(k.clone()), m[k.as_str()]))
        .collect();
    let line = format!("{{ {} }}", fields.join(", "));
    (line.chars().count() <= 80).then_some(line)
}

fn pretty(out: &mut String, v: &Value, indent: usize) {
    let pad = |out: &mut String, n: usize| out.push_str(&"  ".repeat(n));
    match v {
        Value::Object(m) if !m.is_empty() => {
            if let Some(line) = inline(m) {
                out.push_str(&line);
                return;
            }
            let keys = sorted_keys(m);
            out.push_str("{\n");
            for (i, k) in keys.iter().enumerate() {
                pad(out, indent + 1);
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push_str(": ");
                pretty(out, &m[k.as_str()], indent + 1);
                out.push_str(if i + 1 < keys.len() { ",\n" } else { "\n" });
            }
            pad(out, indent);
            out.push('}');
        }
        Value::Array(a) if !a.is_empty() => {
            out.push_str("[\n");
            for (i, item) in a.iter().enumerate() {
                pad(out, indent + 1);
                pretty(out, item, indent + 1);
                out.push_str(if i + 1 < a.len() { ",\n" } else { "\n" });
            }
            pad(out, indent);
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

// ---------------------------------------------------------------------------------------------
// Pictures: flat colours and "text-like" glyph marks, so each scan is a few KB.

const PAPER: Rgb<u8> = Rgb([252, 251, 246]);
const INK: Rgb<u8> = Rgb([45, 45, 52]);
const GREY: Rgb<u8> = Rgb([150, 150, 158]);
const RED: Rgb<u8> = Rgb([205, 35, 40]);

/// A tiny deterministic generator (PCG-style LCG): glyph shapes vary, runs repeat exactly.
struct Marks(u64);

impl Marks {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as u32
    }

    fn below(&mut self, n: u32) -> u32 {
        self.next() % n.max(1)
    }
}

fn fill(img: &mut RgbImage, x: i64, y: i64, w: i64, h: i64, c: Rgb<u8>) {
    let (iw, ih) = (i64::from(img.width()), i64::from(img.height()));
    for py in y.max(0)..(y + h).min(ih) {
        for px in x.max(0)..(x + w).min(iw) {
            img.put_pixel(px as u32, py as u32, c);
        }
    }
}

fn frame(img: &mut RgbImage, x: i64, y: i64, w: i64, h: i64, t: i64, c: Rgb<u8>) {
    fill(img, x, y, w, t, c);
    fill(img, x, y + h - t, w, t, c);
    fill(img, x, y, t, h, c);
    fill(img, x + w - t, y, t, h, c);
}

/// Pixels whose centre satisfies `inside`, within a bounding box.
fn shape(
    img: &mut RgbImage,
    bbox: (i64, i64, i64, i64),
    c: Rgb<u8>,
    inside: impl Fn(f64, f64) -> bool,
) {
    let (x0, y0, x1, y1) = bbox;
    let (iw, ih) = (i64::from(img.width()), i64::from(img.height()));
    for py in y0.max(0)..y1.min(ih) {
        for px in x0.max(0)..x1.min(iw) {
            if inside(px as f64 + 0.5, py as f64 + 0.5) {
                img.put_pixel(px as u32, py as u32, c);
            }
        }
    }
}

fn disc(img: &mut RgbImage, cx: i64, cy: i64, r: i64, c: Rgb<u8>) {
    let (fx, fy, fr) = (cx as f64, cy as f64, r as f64);
    shape(img, (cx - r, cy - r, cx + r + 1, cy + r + 1), c, |x, y| {
        (x - fx).powi(2) + (y - fy).powi(2) <= fr * fr
    });
}

fn ring(img: &mut RgbImage, cx: i64, cy: i64, r: i64, t: i64, c: Rgb<u8>) {
    let (fx, fy, fr, ft) = (cx as f64, cy as f64, r as f64, t as f64);
    shape(img, (cx - r, cy - r, cx + r + 1, cy + r + 1), c, |x, y| {
        let d = ((x - fx).powi(2) + (y - fy).powi(2)).sqrt();
        d <= fr && d >= fr - ft
    });
}

fn star(img: &mut RgbImage, cx: i64, cy: i64, r: i64, c: Rgb<u8>) {
    let poly: Vec<(f64, f64)> = (0..10)
        .map(|k| {
            let a = -std::f64::consts::FRAC_PI_2 + f64::from(k) * std::f64::consts::PI / 5.0;
            let rr = if k % 2 == 0 { r as f64 } else { r as f64 * 0.4 };
            (cx as f64 + rr * a.cos(), cy as f64 + rr * a.sin())
        })
        .collect();
    shape(img, (cx - r, cy - r, cx + r + 1, cy + r + 1), c, |x, y| {
        let mut inside = false;
        let mut j = poly.len() - 1;
        for i in 0..poly.len() {
            let ((xi, yi), (xj, yj)) = (poly[i], poly[j]);
            if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
                inside = !inside;
            }
            j = i;
        }
        inside
    });
}

/// One CJK-looking glyph in a `size` square: a few horizontal and vertical strokes.
fn glyph(img: &mut RgbImage, m: &mut Marks, x: i64, y: i64, size: i64, c: Rgb<u8>) {
    let t = (size / 8).max(1);
    let strokes = 2 + m.below(3);
    for _ in 0..strokes {
        if m.below(2) == 0 {
            let yy = y + i64::from(m.below((size - t) as u32));
            let x0 = x + i64::from(m.below((size / 3) as u32));
            let len = size / 2 + i64::from(m.below((size / 2) as u32));
            fill(img, x0, yy, len.min(x + size - x0), t, c);
        } else {
            let xx = x + i64::from(m.below((size - t) as u32));
            let y0 = y + i64::from(m.below((size / 3) as u32));
            let len = size / 2 + i64::from(m.below((size / 2) as u32));
            fill(img, xx, y0, t, len.min(y + size - y0), c);
        }
    }
}

/// A line of `n` glyphs; returns the x after it.
fn text(img: &mut RgbImage, m: &mut Marks, x: i64, y: i64, size: i64, n: u32, c: Rgb<u8>) -> i64 {
    let mut cx = x;
    for _ in 0..n {
        glyph(img, m, cx, y, size, c);
        cx += size + size / 4;
    }
    cx
}

/// Narrow digit-like marks (ID numbers, dates).
fn digits(img: &mut RgbImage, m: &mut Marks, x: i64, y: i64, h: i64, n: u32, c: Rgb<u8>) {
    let w = h / 2;
    for i in 0..i64::from(n) {
        let dx = x + i * (w + 3);
        // A seven-segment-ish digit: the two verticals, then some of the three bars.
        fill(img, dx, y, 2, h, c);
        fill(img, dx + w - 2, y, 2, h, c);
        for bar in [0, h / 2 - 1, h - 2] {
            if m.below(3) != 0 {
                fill(img, dx, y + bar, w, 2, c);
            }
        }
    }
}

/// A stamped company seal: red ring, star, glyph arc hinted by a short row under the star.
fn seal_stamp(img: &mut RgbImage, m: &mut Marks, cx: i64, cy: i64, r: i64) {
    ring(img, cx, cy, r, (r / 12).max(2), RED);
    star(img, cx, cy - r / 8, r * 3 / 10, RED);
    for k in 0..10 {
        let a = std::f64::consts::PI * (1.15 + 0.07 * f64::from(k));
        let gx = cx as f64 + (r as f64 * 0.72) * a.cos();
        let gy = cy as f64 + (r as f64 * 0.72) * a.sin();
        glyph(img, m, gx as i64 - r / 12, gy as i64 - r / 12, r / 6, RED);
    }
    text(img, m, cx - r / 3, cy + r / 3, r / 6, 4, RED);
}

fn business_license() -> RgbImage {
    let mut img = RgbImage::from_pixel(600, 420, PAPER);
    let mut m = Marks(0x6c69_6365_6e63_6531);
    let border = Rgb([168, 52, 44]);
    frame(&mut img, 8, 8, 584, 404, 5, border);
    frame(&mut img, 18, 18, 564, 384, 1, border);
    text(&mut img, &mut m, 220, 36, 34, 4, border); // 营业执照
    // QR code block: finder squares plus pseudo-random modules.
    for (fx, fy) in [(40, 300), (100, 300), (40, 360)] {
        frame(&mut img, fx, fy, 21, 21, 3, INK);
        fill(&mut img, fx + 7, fy + 7, 7, 7, INK);
    }
    for gy in 0..27 {
        for gx in 0..27 {
            let inside_finder = (gy < 8 && !(8..=18).contains(&gx)) || (gx < 8 && gy > 18);
            if !inside_finder && m.below(2) == 0 {
                fill(&mut img, 40 + gx * 3, 300 + gy * 3, 3, 3, INK);
            }
        }
    }
    for row in 0..7 {
        let y = 104 + row * 26;
        let x = text(&mut img, &mut m, 150, y, 13, 4, GREY);
        let n = 6 + m.below(12);
        text(&mut img, &mut m, x + 14, y, 13, n, INK);
    }
    digits(&mut img, &mut m, 150, 290, 16, 18, INK);
    seal_stamp(&mut img, &mut m, 470, 318, 62);
    img
}

fn id_front() -> RgbImage {
    let mut img = RgbImage::from_pixel(428, 270, Rgb([228, 236, 242]));
    let mut m = Marks(0x6964_2d66_726f_6e74);
    for y in (0..270).step_by(18) {
        fill(&mut img, 0, y, 428, 1, Rgb([214, 224, 234]));
    }
    // Portrait.
    fill(&mut img, 290, 36, 112, 140, Rgb([206, 212, 220]));
    disc(&mut img, 346, 92, 28, Rgb([120, 110, 104]));
    shape(&mut img, (290, 120, 402, 176), Rgb([70, 80, 96]), |x, y| {
        (x - 346.0).powi(2) / 52.0f64.powi(2) + (y - 176.0).powi(2) / 50.0f64.powi(2) <= 1.0
    });
    for row in 0..4 {
        let y = 36 + row * 30;
        let x = text(&mut img, &mut m, 24, y, 13, 2, Rgb([90, 110, 140]));
        let n = 3 + m.below(9);
        text(&mut img, &mut m, x + 12, y, 13, n, INK);
    }
    text(&mut img, &mut m, 24, 220, 13, 6, Rgb([90, 110, 140]));
    digits(&mut img, &mut m, 124, 216, 20, 18, INK);
    img
}

fn id_back() -> RgbImage {
    let mut img = RgbImage::from_pixel(428, 270, Rgb([232, 240, 234]));
    let mut m = Marks(0x6964_2d62_6163_6b21);
    for x in (0..428).step_by(22) {
        fill(&mut img, x, 0, 1, 270, Rgb([218, 230, 222]));
    }
    disc(&mut img, 64, 66, 36, RED);
    star(&mut img, 64, 62, 20, Rgb([246, 208, 64]));
    text(&mut img, &mut m, 130, 40, 26, 9, INK); // 中华人民共和国
    text(&mut img, &mut m, 160, 90, 22, 6, INK); // 居民身份证
    for row in 0..2 {
        let y = 190 + row * 30;
        let x = text(&mut img, &mut m, 100, y, 13, 4, Rgb([90, 120, 100]));
        digits(
            &mut img,
            &mut m,
            x + 12,
            y - 2,
            16,
            12 + row as u32 * 6,
            INK,
        );
    }
    img
}

fn power_of_attorney() -> RgbImage {
    let mut img = RgbImage::from_pixel(420, 594, Rgb([255, 255, 255]));
    let mut m = Marks(0x706f_615f_666f_726d);
    text(&mut img, &mut m, 140, 40, 24, 6, INK); // 法人授权委托书
    for row in 0..16 {
        let y = 100 + row * 22;
        let indent = if row % 5 == 0 { 56 } else { 32 };
        let n = if row % 5 == 4 { 8 + m.below(8) } else { 23 };
        text(&mut img, &mut m, indent, y, 12, n, INK);
    }
    // Signature: a hand-drawn-looking stroke.
    for i in 0..160 {
        let x = 70 + i;
        let y = 500.0 + 9.0 * (f64::from(i as u32) / 9.0).sin() + f64::from(m.below(3));
        disc(&mut img, x, y as i64, 2, Rgb([30, 40, 110]));
    }
    text(&mut img, &mut m, 250, 470, 12, 6, INK);
    digits(&mut img, &mut m, 250, 500, 14, 10, INK);
    seal_stamp(&mut img, &mut m, 320, 470, 58);
    img
}

fn seal_collection_form() -> RgbImage {
    let mut img = RgbImage::from_pixel(420, 594, Rgb([255, 255, 255]));
    let mut m = Marks(0x7365_616c_666f_726d);
    text(&mut img, &mut m, 120, 36, 24, 7, INK); // 单位签章采集表
    for row in 0..3 {
        let y = 96 + row * 24;
        let x = text(&mut img, &mut m, 36, y, 12, 5, GREY);
        let n = 10 + m.below(8);
        text(&mut img, &mut m, x + 10, y, 12, n, INK);
    }
    // Two stamp boxes: company seal, legal representative's seal.
    frame(&mut img, 30, 180, 360, 360, 2, INK);
    fill(&mut img, 30, 210, 360, 2, INK);
    fill(&mut img, 210, 180, 2, 360, INK);
    text(&mut img, &mut m, 80, 188, 14, 4, INK);
    text(&mut img, &mut m, 262, 188, 14, 4, INK);
    seal_stamp(&mut img, &mut m, 120, 370, 70);
    frame(&mut img, 260, 320, 90, 90, 6, RED);
    for (gx, gy) in [(272, 332), (312, 332), (272, 372), (312, 372)] {
        glyph(&mut img, &mut m, gx, gy, 26, RED);
    }
    img
}

/// Side of `bad_seals/huge.png`, in pixels.
pub const HUGE_SIDE: u32 = 20_000;

/// A complete, valid PNG of `side` x `side` pixels, 1-bit palette (white, seal red), with a red
/// square in the middle: a real seal picture but for its size. Written row by row through zlib,
/// so neither this program nor the file holds the decoded image (50 MB at 1 bit, 1.2 GB as RGB).
fn huge_png(side: u32) -> Res<Vec<u8>> {
    use flate2::{Compression, write::ZlibEncoder};
    let row_bytes = usize::try_from(side.div_ceil(8))?;
    let blank = vec![0u8; row_bytes + 1]; // filter byte "none", then palette index 0 (white)
    let mut inked = blank.clone();
    let (ink_from, ink_to) = (side / 2 - 200, side / 2 + 200);
    for x in ink_from..ink_to {
        inked[1 + usize::try_from(x / 8)?] |= 0x80 >> (x % 8);
    }
    let mut z = ZlibEncoder::new(Vec::new(), Compression::best());
    for y in 0..side {
        z.write_all(if (ink_from..ink_to).contains(&y) {
            &inked
        } else {
            &blank
        })?;
    }
    let idat = z.finish()?;

    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8; 4], data: &[u8]| -> Res<()> {
        out.extend(u32::try_from(data.len())?.to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend(kind);
        out.extend(data);
        out.extend(crc.sum().to_be_bytes());
        Ok(())
    };
    let mut ihdr = Vec::new();
    ihdr.extend(side.to_be_bytes());
    ihdr.extend(side.to_be_bytes());
    ihdr.extend([1, 3, 0, 0, 0]); // bit depth 1, palette, deflate, no filter, no interlace
    chunk(b"IHDR", &ihdr)?;
    chunk(b"PLTE", &[0xFF, 0xFF, 0xFF, RED.0[0], RED.0[1], RED.0[2]])?;
    chunk(b"IDAT", &idat)?;
    chunk(b"IEND", &[])?;
    Ok(out)
}

/// A scan of the seal collection form's blank side: black print, no seal impression.
fn blank_scan() -> RgbImage {
    let mut img = RgbImage::from_pixel(420, 594, Rgb([255, 255, 255]));
    let mut m = Marks(0x626c_616e_6b5f_7363);
    text(&mut img, &mut m, 120, 36, 24, 7, INK);
    for row in 0..12 {
        text(&mut img, &mut m, 36, 100 + row * 30, 12, 20, GREY);
    }
    img
}

fn png(img: &RgbImage) -> Res<Vec<u8>> {
    let mut out = Vec::new();
    PngEncoder::new_with_quality(&mut out, CompressionType::Best, FilterType::Adaptive)
        .write_image(img, img.width(), img.height(), ExtendedColorType::Rgb8)?;
    Ok(out)
}

fn jpeg(img: &RgbImage) -> Res<Vec<u8>> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 70).encode_image(img)?;
    Ok(out)
}

/// A one-page PDF (what a customer uploads when asked for a picture): valid structure, wrong type.
const MINIMAL_PDF: &str = "%PDF-1.4\n\
1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n\
2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n\
3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >> endobj\n\
trailer << /Root 1 0 R >>\n\
%%EOF\n";

/// A 1x1 red GIF89a: a real picture of a type the intake accepts for documents but not for
/// seal pictures (those must be PNG or JPEG).
const ONE_PIXEL_GIF: [u8; 43] = [
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0xFF, 0x00, 0x00,
    0xFF, 0xFF, 0xFF, 0x21, 0xF9, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2C, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3B,
];
