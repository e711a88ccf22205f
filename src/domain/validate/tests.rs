//! Unit tests of [`super::validate_order`].

#![allow(clippy::unwrap_used)]
use super::*;
use serde_json::json;
use time::macros::date;

fn ctx() -> ValidationContext {
    ValidationContext {
        today: date!(2026 - 11 - 24),
        uscc_checksum_override: None,
    }
}

fn png_probe(_: &str, _: FileUse) -> FileFacts {
    FileFacts::Found {
        size: 1000,
        image: Some(ImageType::Png),
    }
}

fn valid() -> Value {
    json!({
        "order_no": "bj20261124-0001",
        "auth_method": "legal_rep_phone",
        "company": { "name": " 北京示例科技有限公司 ", "uscc": "9111 0000 6000 3734 1l", "department": "信息部" },
        "legal_rep": { "name": "张三", "mobile": "+86 138-0013-8000", "id_type": "resident_id", "id_number": "11010519491231002x" },
        "product": { "key_role": "main", "years": 1, "seal_service": "company_and_legal_rep" },
        "invoice": { "title": "北京示例科技有限公司", "taxpayer_id": "91110000600037341L" },
        "handler": { "name": "李四", "mobile": "13900139000", "id_type": "resident_id", "id_number": "110108200001011237", "email": "li.si@Example.com" },
        "shipping": { "province": "北京市", "city": "北京市", "address": "海淀区某路1号" },
        "documents": [
            { "kind": "business_license", "file": "a.png" },
            { "kind": "handler_id_front", "file": "b.png" },
            { "kind": "handler_id_back", "file": "c.png" },
            { "kind": "power_of_attorney", "file": "d.png" },
            { "kind": "seal_collection_form", "file": "e.png" }
        ],
        "seals": [
            { "kind": "company", "picture": "s1.png" },
            { "kind": "legal_rep", "picture": "s2.png" }
        ]
    })
}

fn errors(v: &Value) -> Vec<(String, &'static str)> {
    match validate_order(v, &ctx(), &mut png_probe) {
        Ok(_) => vec![],
        Err(vs) => vs
            .into_iter()
            .filter(|v| v.severity == Severity::Error)
            .map(|v| (v.field, v.code))
            .collect(),
    }
}

#[test]
fn valid_order_is_normalised() {
    let v = validate_order(&valid(), &ctx(), &mut png_probe).unwrap();
    let o = v.order;
    assert_eq!(o.order_no, "BJ20261124-0001");
    assert_eq!(o.company.name, "北京示例科技有限公司");
    assert_eq!(o.company.uscc, "91110000600037341L");
    assert_eq!(o.legal_rep.mobile, "13800138000");
    assert_eq!(o.legal_rep.id_number, "11010519491231002X");
    assert_eq!(o.handler.email, "li.si@example.com");
    assert!(v.warnings.is_empty());
}

#[test]
fn all_violations_are_reported_at_once() {
    let mut v = valid();
    v["company"]["uscc"] = json!("91110000600037341M");
    v["legal_rep"]["mobile"] = json!("12345678901");
    v["handler"]["email"] = json!("nobody");
    v["shipping"].as_object_mut().unwrap().remove("city");
    v["extra"] = json!(1);
    let errs = errors(&v);
    for expected in [
        ("company.uscc".to_string(), "uscc_checksum"),
        ("legal_rep.mobile".to_string(), "mobile_invalid"),
        ("handler.email".to_string(), "email_invalid"),
        ("shipping.city".to_string(), "required"),
        ("extra".to_string(), "unknown_field"),
    ] {
        assert!(errs.contains(&expected), "{expected:?} missing in {errs:?}");
    }
    assert_eq!(errs.len(), 5, "{errs:?}");
}

#[test]
fn uscc_checksum_override_needs_a_reason_and_only_covers_checksum() {
    let mut v = valid();
    v["company"]["uscc"] = json!("91350100M0001TGQXM");
    v["invoice"]["taxpayer_id"] = json!("91350100M0001TGQXM");
    let mut c = ctx();
    assert!(validate_order(&v, &c, &mut png_probe).is_err());
    c.uscc_checksum_override = Some("   ".into());
    assert!(validate_order(&v, &c, &mut png_probe).is_err());
    c.uscc_checksum_override = Some("early pilot code, licence checked".into());
    let ok = validate_order(&v, &c, &mut png_probe).unwrap();
    assert_eq!(
        ok.uscc_override_reason.as_deref(),
        Some("early pilot code, licence checked")
    );
    assert_eq!(ok.warnings[0].code, "uscc_checksum_overridden");
    // The override never covers a malformed code.
    v["company"]["uscc"] = json!("91A10000600037341L");
    assert!(validate_order(&v, &c, &mut png_probe).is_err());
}

#[test]
fn taxpayer_mismatch_is_a_warning() {
    let mut v = valid();
    v["invoice"]["taxpayer_id"] = json!("91310115MA1K3BTP2B");
    let ok = validate_order(&v, &ctx(), &mut png_probe).unwrap();
    assert_eq!(ok.warnings.len(), 1);
    assert_eq!(ok.warnings[0].code, "taxpayer_id_mismatch");
    assert_eq!(ok.warnings[0].severity, Severity::Warning);
}

#[test]
fn corporate_account_exactly_for_corporate_transfer() {
    let mut v = valid();
    v["auth_method"] = json!("corporate_transfer");
    assert_eq!(errors(&v), vec![("corporate_account".into(), "required")]);
    v["corporate_account"] =
        json!({"account_name": "x", "account_number": "1234-5678-9012", "bank_name": "工商银行"});
    assert_eq!(errors(&v), vec![]);
    v["corporate_account"]["account_number"] = json!("1234567");
    assert_eq!(
        errors(&v),
        vec![(
            "corporate_account.account_number".into(),
            "account_number_invalid"
        )]
    );
    v["auth_method"] = json!("legal_rep_phone");
    assert_eq!(
        errors(&v),
        vec![("corporate_account".into(), "not_allowed")]
    );
}

#[test]
fn resident_id_rules_name_the_field() {
    let mut v = valid();
    v["legal_rep"]["id_number"] = json!("110105491231002");
    v["handler"]["id_number"] = json!("310115197002290035");
    assert_eq!(
        errors(&v),
        vec![
            ("legal_rep.id_number".into(), "id_legacy_15"),
            ("handler.id_number".into(), "id_date_invalid")
        ]
    );
}

#[test]
fn documents_are_checked_by_content_size_and_completeness() {
    let mut v = valid();
    v["documents"].as_array_mut().unwrap().remove(3);
    let mut probe = |p: &str, u: FileUse| match p {
        "a.png" => FileFacts::Found {
            size: MAX_DOCUMENT_BYTES + 1,
            image: Some(ImageType::Png),
        },
        "b.png" => FileFacts::Found {
            size: 10,
            image: None,
        },
        "c.png" => FileFacts::Missing,
        "s2.png" => FileFacts::Found {
            size: 10,
            image: Some(ImageType::Gif),
        },
        _ => png_probe(p, u),
    };
    let errs: Vec<_> = validate_order(&v, &ctx(), &mut probe)
        .unwrap_err()
        .into_iter()
        .map(|v| (v.field, v.code))
        .collect();
    assert_eq!(
        errs,
        vec![
            ("documents[0].file".into(), "file_too_large"),
            ("documents[1].file".into(), "file_type"),
            ("documents[2].file".into(), "file_missing"),
            ("documents".into(), "document_missing"),
            ("seals[1].picture".into(), "file_type"),
        ]
    );
}

#[test]
fn secondary_key_needs_no_seal_form_and_no_seals() {
    let mut v = valid();
    v["product"] = json!({"key_role": "secondary", "years": 1, "seal_service": "none", "main_order_no": "BJ-MAIN-1"});
    v["documents"].as_array_mut().unwrap().pop();
    assert_eq!(
        errors(&v),
        vec![
            ("seals[0].kind".into(), "seal_unexpected"),
            ("seals[1].kind".into(), "seal_unexpected")
        ]
    );
    v["seals"] = json!([]);
    assert_eq!(errors(&v), vec![]);
    v["product"]["seal_service"] = json!("company");
    assert_eq!(
        errors(&v),
        vec![("product.seal_service".into(), "seal_service_secondary")]
    );
}

#[test]
fn a_secondary_key_names_its_main_order_and_only_it_does() {
    let mut v = valid();
    v["product"] = json!({"key_role": "secondary", "years": 1, "seal_service": "none"});
    v["documents"].as_array_mut().unwrap().pop();
    v["seals"] = json!([]);
    let field = || "product.main_order_no".to_string();
    assert_eq!(errors(&v), vec![(field(), "main_order_required")]);
    for missing in [json!(null), json!("  ")] {
        v["product"]["main_order_no"] = missing;
        assert_eq!(errors(&v), vec![(field(), "main_order_required")]);
    }
    v["product"]["main_order_no"] = json!(7);
    assert_eq!(errors(&v), vec![(field(), "wrong_type")]);
    v["product"]["main_order_no"] = json!("BJ/MAIN");
    assert_eq!(errors(&v), vec![(field(), "order_no_invalid")]);
    v["product"]["main_order_no"] = json!("bj20261124-0001");
    assert_eq!(errors(&v), vec![(field(), "main_order_self")]);
    // Normalised like an order number.
    v["product"]["main_order_no"] = json!(" bj-main-1 ");
    let o = validate_order(&v, &ctx(), &mut png_probe).unwrap().order;
    assert_eq!(
        o.product.main_order_no.as_ref().map(|n| n.as_str()),
        Some("BJ-MAIN-1")
    );

    let mut main = valid();
    assert_eq!(
        validate_order(&main, &ctx(), &mut png_probe)
            .unwrap()
            .order
            .product
            .main_order_no,
        None
    );
    main["product"]["main_order_no"] = json!("BJ-MAIN-1");
    assert_eq!(errors(&main), vec![(field(), "main_order_on_main_key")]);
}

#[test]
fn seal_pictures_exactly_for_the_service() {
    let mut v = valid();
    v["product"]["seal_service"] = json!("company");
    assert_eq!(
        errors(&v),
        vec![("seals[1].kind".into(), "seal_unexpected")]
    );
    v["seals"] = json!([]);
    assert_eq!(errors(&v), vec![("seals".into(), "seal_missing")]);
}

#[test]
fn wrong_types_and_enums() {
    let mut v = valid();
    v["product"]["years"] = json!("one");
    v["auth_method"] = json!("carrier_pigeon");
    v["company"] = json!("acme");
    assert_eq!(
        errors(&v),
        vec![
            ("auth_method".into(), "enum_invalid"),
            ("company".into(), "wrong_type"),
            ("product.years".into(), "wrong_type"),
        ]
    );
    v["product"]["years"] = json!(9);
    assert!(errors(&v).contains(&("product.years".into(), "years_unsupported")));
}

#[test]
fn order_number_must_fit_a_token_label() {
    let mut v = valid();
    v["order_no"] = json!("A".repeat(33));
    assert_eq!(errors(&v), vec![("order_no".into(), "order_no_invalid")]);
    v["order_no"] = json!("ORDER/1");
    assert_eq!(errors(&v), vec![("order_no".into(), "order_no_invalid")]);
}

#[test]
fn control_characters_and_length_limits() {
    let mut v = valid();
    v["company"]["name"] = json!("Acme\u{0007}Ltd");
    v["company"]["department"] = json!("部".repeat(65));
    assert_eq!(
        errors(&v),
        vec![
            ("company.name".into(), "invalid_characters"),
            ("company.department".into(), "too_long")
        ]
    );
}

#[test]
fn not_an_object() {
    let errs = validate_order(&json!([1]), &ctx(), &mut png_probe).unwrap_err();
    assert_eq!(errs[0].code, "wrong_type");
}

#[test]
fn prefixing_for_arrays() {
    let v = Violation::error("company.uscc", "x", "m").prefixed("[2]");
    assert_eq!(v.field, "[2].company.uscc");
}

#[test]
fn names_follow_the_name_rules_and_addresses_the_free_text_rules() {
    let mut v = valid();
    v["company"]["name"] = json!("北京星河科技有限公司😀");
    v["legal_rep"]["name"] = json!("\u{200B}\u{200B}");
    v["handler"]["name"] = json!("·");
    v["invoice"]["title"] = json!("北京\u{E000}科技");
    v["shipping"]["city"] = json!("北京\u{E0041}市");
    v["company"]["department"] = json!("信息部\u{202E}");
    // Free text: symbols are fine, invisible characters are not.
    v["shipping"]["address"] = json!("海淀区某路1号 #502 ★");
    v["invoice"]["address_phone"] = json!("北京\u{2066}海淀");
    let errs = validate_order(&v, &ctx(), &mut png_probe).unwrap_err();
    let found: Vec<(&str, &str)> = errs.iter().map(|e| (e.field.as_str(), e.code)).collect();
    assert_eq!(
        found,
        [
            ("company.name", "name_character"),
            ("company.department", "invisible_character"),
            ("legal_rep.name", "invisible_character"),
            ("invoice.title", "private_use_character"),
            ("invoice.address_phone", "invisible_character"),
            ("handler.name", "name_no_letter"),
            ("shipping.city", "invisible_character"),
        ]
    );
    for (e, cp) in errs.iter().zip([
        "U+1F600", "U+202E", "U+200B", "U+E000", "U+2066", "", "U+E0041",
    ]) {
        assert!(e.message.contains(cp), "{e:?}");
        assert!(
            !e.message.contains(['\u{202E}', '\u{2066}', '\u{200B}']),
            "{e:?}"
        );
    }
}

#[test]
fn names_are_stored_nfc_with_their_full_width_punctuation() {
    let mut v = valid();
    v["company"]["name"] = json!("Jose\u{301}（北京）科技有限公司");
    v["legal_rep"]["name"] = json!("阿沛·阿旺晋美");
    let o = validate_order(&v, &ctx(), &mut png_probe).unwrap().order;
    assert_eq!(o.company.name, "Jos\u{E9}（北京）科技有限公司");
    assert_eq!(o.legal_rep.name, "阿沛·阿旺晋美");
}

#[test]
fn codes_and_paths_refuse_invisible_characters_before_anything_else() {
    let mut v = valid();
    v["company"]["uscc"] = json!("91110000600037341L\u{200B}");
    v["documents"][0]["file"] = json!("scan\u{202E}gnp.exe");
    let mut probed = Vec::new();
    let mut probe = |p: &str, u: FileUse| {
        probed.push(p.to_string());
        png_probe(p, u)
    };
    let errs = validate_order(&v, &ctx(), &mut probe).unwrap_err();
    let found: Vec<(&str, &str)> = errs.iter().map(|e| (e.field.as_str(), e.code)).collect();
    assert_eq!(
        found,
        [
            ("company.uscc", "invisible_character"),
            ("documents[0].file", "invisible_character"),
        ]
    );
    // The file was never looked for.
    assert!(!probed.iter().any(|p| p.contains('\u{202E}')), "{probed:?}");
}

#[test]
fn input_quoted_in_fields_and_messages_is_escaped() {
    let mut v = valid();
    v["company"]["fax\u{202E}"] = json!(1);
    v["auth_method"] = json!("sms\u{1B}[2J");
    let errs = validate_order(&v, &ctx(), &mut png_probe).unwrap_err();
    let unknown = errs.iter().find(|e| e.code == "unknown_field").unwrap();
    assert_eq!(unknown.field, "company.fax\\u{202E}");
    let bad_enum = errs.iter().find(|e| e.code == "enum_invalid").unwrap();
    assert!(
        bad_enum.message.starts_with("\"sms\\u{001B}[2j\""),
        "{}",
        bad_enum.message
    );
}

#[test]
fn seal_pictures_are_probed_as_such_and_their_problems_named() {
    let mut v = valid();
    // The same file as a document and as a seal picture: only the seal use decodes it.
    v["documents"][0]["file"] = json!("s1.png");
    let mut uses = Vec::new();
    let mut probe = |p: &str, u: FileUse| {
        uses.push((p.to_string(), u));
        match (p, u) {
            ("s1.png", FileUse::SealPicture) => FileFacts::BadPicture(PictureProblem::TooLarge {
                width: 20_000,
                height: 20_000,
                max_side: 8000,
            }),
            ("s2.png", FileUse::SealPicture) => FileFacts::BadPicture(PictureProblem::Empty),
            _ => png_probe(p, u),
        }
    };
    let errs = validate_order(&v, &ctx(), &mut probe).unwrap_err();
    let found: Vec<(&str, &str)> = errs.iter().map(|e| (e.field.as_str(), e.code)).collect();
    assert_eq!(
        found,
        [
            ("seals[0].picture", "picture_too_large"),
            ("seals[1].picture", "picture_empty")
        ]
    );
    assert!(
        errs[0].message.contains("20000x20000 px"),
        "{}",
        errs[0].message
    );
    assert!(uses.contains(&("s1.png".into(), FileUse::Document)));
    assert!(uses.contains(&("s1.png".into(), FileUse::SealPicture)));

    let mut corrupt = |p: &str, u: FileUse| match u {
        FileUse::SealPicture => {
            FileFacts::BadPicture(PictureProblem::Unreadable("unexpected end of file".into()))
        }
        FileUse::Document => png_probe(p, u),
    };
    let errs = validate_order(&valid(), &ctx(), &mut corrupt).unwrap_err();
    assert!(
        errs.iter().all(|e| e.code == "picture_unreadable"),
        "{errs:?}"
    );
    assert_eq!(errs.len(), 2);
}

/// Each section validator reports the violations of its own part only, and `validate_order`
/// reports exactly theirs, in form order.
#[test]
fn section_validators_compose_in_form_order() {
    let mut v = valid();
    v["order_no"] = json!("A/B");
    v["company"]["uscc"] = json!("91110000600037341M");
    v["legal_rep"]["mobile"] = json!("12345678901");
    v["product"]["years"] = json!(9);
    v["invoice"]["taxpayer_id"] = json!("12");
    v["handler"]["email"] = json!("nobody");
    v["shipping"]["city"] = json!("");
    v["corporate_account"] = json!({"account_number": "1"});
    v["documents"][0]["kind"] = json!("selfie");
    v["seals"][0]["kind"] = json!("stamp");
    v["extra"] = json!(1);
    let root = v.as_object().unwrap();
    let c = ctx();
    let fields = |vs: Vec<Violation>| vs.into_iter().map(|v| v.field).collect::<Vec<_>>();
    let product = sections::product(root);
    let company = sections::company(root);
    let per_section = [
        fields(sections::order_no(root).violations),
        fields(sections::auth_method(root).violations),
        fields(company.violations),
        fields(sections::legal_rep(root, &c).violations),
        fields(product.violations),
        fields(sections::invoice(root).violations),
        fields(sections::handler(root, &c).violations),
        fields(sections::mailing(root).violations),
        fields(sections::bank_account(root, Some(AuthMethod::LegalRepPhone)).violations),
        fields(attachments::documents(root, product.value.as_ref(), &mut png_probe).violations),
        fields(attachments::seals(root, product.value.as_ref(), &mut png_probe).violations),
        fields(sections::known_sections(root)),
        fields(sections::uscc(company.value.as_ref(), &c).violations),
    ];
    let expected: [&[&str]; 13] = [
        &["order_no"],
        &[],
        &[],
        &["legal_rep.mobile"],
        &["product.years"],
        &["invoice.taxpayer_id"],
        &["handler.email"],
        &["shipping.city"],
        &["corporate_account"],
        &["documents[0].kind"],
        &["seals[0].kind"],
        &["extra"],
        // The company parsed, so its check character is checked across sections.
        &["company.uscc"],
    ];
    for (got, want) in per_section.iter().zip(expected) {
        assert_eq!(got, want);
    }
    let all: Vec<String> = validate_order(&v, &c, &mut png_probe)
        .unwrap_err()
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(all, per_section.concat());
}
