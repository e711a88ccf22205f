//! Issue 12, items 4 and 5: `check` looks at what is on each token, provisioning leaves exactly
//! what it means to (no empty data objects, keys with their one usage), and a seal whose company
//! certificate the station revoked is not valid. Tokens are tampered with and read back with
//! `pkcs11-tool`, the independent tool an operator (or an attacker) would use.

use crate::crash::kill_at;
use crate::station::{TestStation, full_order, order_json, softhsm_module, unseal_pins};
use crate::support::{assert_success, items, run_ok, stdout_json};
use serde_json::Value;
use std::path::Path;
use std::process::Output;

/// `pkcs11-tool` on token `label`, logged in with `pin` (passed through the environment), in a
/// child process whose `SOFTHSM2_CONF` is the station's.
fn tool(label: &str, pin: &str, args: &[&str]) -> Output {
    run_ok(crate::support::pkcs11_login(softhsm_module(), label, pin).args(args))
}

fn user_pin(dir: &Path, order_no: &str) -> String {
    unseal_pins(dir, order_no).0
}

/// The order's key id, as `order show` reports it.
fn key_id(st: &TestStation, no: &str) -> String {
    st.json(&["order", "show", no])["token"]["key_id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Child half of [`check_finds_what_was_done_to_each_token`]: the tampering, with the PINs.
fn tamper(dir: &Path) {
    let work = dir.join("tamper");
    std::fs::create_dir_all(&work).unwrap();
    let other_pin = user_pin(dir, "T-OTHER");
    // Another company's seal, copied over this company's seal.
    let stolen = work.join("stolen-seal.der");
    tool(
        "T-OTHER",
        &other_pin,
        &[
            "--read-object",
            "--type",
            "data",
            "--label",
            "seal:company",
            "-o",
            stolen.to_str().unwrap(),
        ],
    );
    let swap_pin = user_pin(dir, "T-SWAP");
    tool(
        "T-SWAP",
        &swap_pin,
        &[
            "--delete-object",
            "--type",
            "data",
            "--label",
            "seal:company",
        ],
    );
    // (pkcs11-tool writes at most 5000 bytes of an object, and a seal is larger: the copy is
    // made with C_CreateObject directly, as pkcs11-tool would.)
    let stolen = std::fs::read(&stolen).unwrap();
    user_session("T-SWAP", &swap_pin, |s| {
        use cryptoki::object::{Attribute, ObjectClass};
        s.create_object(&[
            Attribute::Class(ObjectClass::DATA),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Label(b"seal:company".to_vec()),
            Attribute::Application(b"GB/T 38540 SESeal".to_vec()),
            Attribute::Value(stolen.clone()),
        ])
        .unwrap();
    });
    // Another company's certificate, added next to this company's.
    let foreign = work.join("foreign.der");
    let other_id = std::env::var("KS_OTHER_KEY_ID").unwrap();
    tool(
        "T-OTHER",
        &other_pin,
        &[
            "--read-object",
            "--type",
            "cert",
            "--id",
            &other_id,
            "-o",
            foreign.to_str().unwrap(),
        ],
    );
    tool(
        "T-CERT",
        &user_pin(dir, "T-CERT"),
        &[
            "--write-object",
            foreign.to_str().unwrap(),
            "--type",
            "cert",
            "--id",
            "99",
            "--label",
            "foreign",
        ],
    );
    // A seal deleted.
    tool(
        "T-DEL",
        &user_pin(dir, "T-DEL"),
        &[
            "--delete-object",
            "--type",
            "data",
            "--label",
            "seal:legal_rep",
        ],
    );
    // A usage added to the signing key: what a module's defaults used to give it (pkcs11-tool
    // cannot change a usage, so the PKCS#11 call is made directly: C_SetAttributeValue).
    user_session("T-USAGE", &user_pin(dir, "T-USAGE"), |s| {
        use cryptoki::object::{Attribute, ObjectClass};
        let keys = s
            .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)])
            .unwrap();
        assert_eq!(keys.len(), 1);
        s.update_attributes(keys[0], &[Attribute::Unwrap(true)])
            .unwrap();
    });
}

/// Runs `f` in a read-write session logged in as the user on token `label`, through cryptoki
/// directly: for the changes pkcs11-tool cannot make.
fn user_session(label: &str, pin: &str, f: impl FnOnce(&cryptoki::session::Session)) {
    use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
    use cryptoki::error::{Error, RvError};
    use cryptoki::session::UserType;
    use cryptoki::types::AuthPin;
    let ctx = Pkcs11::new(softhsm_module()).unwrap();
    // Unsealing the PIN initialised the module in this process already.
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => panic!("C_Initialize: {e}"),
    }
    let slot = ctx
        .get_slots_with_initialized_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label() == label)
        .unwrap();
    let session = ctx.open_rw_session(slot).unwrap();
    session
        .login(UserType::User, Some(&AuthPin::from(pin.to_string())))
        .unwrap();
    f(&session);
}

#[test]
fn check_finds_what_was_done_to_each_token() {
    let Some(st) = TestStation::unless_child(&[], tamper) else {
        return;
    };
    let mut other = full_order("T-OTHER");
    other["company"]["name"] = "上海浦江云链信息技术有限公司".into();
    other["invoice"]["title"] = "上海浦江云链信息技术有限公司".into();
    st.import_approved(&other);
    for no in ["T-SWAP", "T-CERT", "T-DEL", "T-USAGE"] {
        st.import_approved(&full_order(no));
    }
    for no in ["T-OTHER", "T-SWAP", "T-CERT", "T-DEL", "T-USAGE"] {
        st.ok(&["provision", no]);
    }
    // As provisioned, every token holds exactly what it should.
    st.ok(&["check"]);
    let serial = |no: &str| {
        st.json(&["order", "show", no])["token"]["token_serial"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let other_id = key_id(&st, "T-OTHER");
    st.run_child(
        "check_tokens::check_finds_what_was_done_to_each_token",
        &[("KS_OTHER_KEY_ID", &other_id)],
    );

    let found = st.violations();
    let has = |no: &str, rule: &str, text: &str| {
        let token = serial(no);
        assert!(
            found
                .iter()
                .any(|v| v.is(no, rule) && v.message.contains(&token) && v.message.contains(text)),
            "no {rule} naming token {token} and {text:?} for {no}: {found:#?}"
        );
    };
    has("T-SWAP", "token_seal_invalid", "token_certificate");
    has("T-CERT", "token_certificate", "\"foreign\"");
    has("T-DEL", "token_seals", "seal:legal_rep");
    has("T-USAGE", "token_key_usage", "may sign, unwrap");
    // The untouched token, and the copy's source, are fine.
    assert!(!found.iter().any(|v| v.order_no == "T-OTHER"), "{found:#?}");
    // The operator's view names the token too, and says the invariants are broken.
    let out = st.run(&["check"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&serial("T-DEL")) && text.contains("INVARIANTS BROKEN"),
        "{text}"
    );
}

/// Child half of [`provisioning_leaves_only_its_objects_even_after_a_resumed_crash`]: `mode`
/// `plant` adds an empty, unlabelled private data object (what older versions left behind);
/// `inspect` reads each token back with `pkcs11-tool -O`.
fn plant_or_inspect(dir: &Path) {
    let no = std::env::var("KS_ORDER").unwrap();
    let pin = user_pin(dir, &no);
    if std::env::var("KS_MODE").unwrap() == "plant" {
        let junk = dir.join("junk.bin");
        std::fs::write(&junk, [0u8]).unwrap();
        tool(
            &no,
            &pin,
            &[
                "--write-object",
                junk.to_str().unwrap(),
                "--type",
                "data",
                "--private",
            ],
        );
        let listing = tool(&no, &pin, &["-O", "--type", "data"]);
        assert!(
            String::from_utf8_lossy(&listing.stdout).contains("label:          ''"),
            "the planted object is not there"
        );
        return;
    }
    let text = String::from_utf8_lossy(&tool(&no, &pin, &["-O"]).stdout).into_owned();
    // pkcs11-tool prints one block per object: every data object must be a labelled seal.
    let data_objects = text.matches("Data object").count();
    assert_eq!(data_objects, 2, "{no}: {text}");
    assert_eq!(
        text.matches("application:    'GB/T 38540 SESeal'").count(),
        2,
        "{no}: {text}"
    );
    assert!(!text.contains("label:          ''"), "{no}: {text}");
    for seal in ["seal:company", "seal:legal_rep"] {
        assert!(
            text.contains(&format!("label:          '{seal}'")),
            "{text}"
        );
    }
    // The key pair: the private key signs, the public key verifies, nothing else.
    let usages: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Usage:"))
        .map(str::trim)
        .collect();
    assert_eq!(usages.len(), 2, "{text}");
    for kind in ["Public Key Object", "Private Key Object"] {
        let block = &text[text.find(kind).unwrap()..];
        let usage = block
            .lines()
            .find_map(|l| l.trim().strip_prefix("Usage:"))
            .unwrap()
            .trim();
        let want = if kind.starts_with("Public") {
            "verify"
        } else {
            "sign"
        };
        assert_eq!(usage, want, "{no} {kind}: {text}");
    }
}

#[test]
fn provisioning_leaves_only_its_objects_even_after_a_resumed_crash() {
    let Some(st) = TestStation::unless_child(&[], plant_or_inspect) else {
        return;
    };
    let child = "check_tokens::provisioning_leaves_only_its_objects_even_after_a_resumed_crash";
    for no in ["E-PLAIN", "E-CRASH", "E-OLD"] {
        st.import_approved(&full_order(no));
    }
    st.ok(&["provision", "E-PLAIN"]);
    // Killed once the seals are on the token but before the step is recorded: the resumed
    // run writes them again.
    kill_at(
        &st,
        &["provision", "E-CRASH"],
        "provision.write_seals.before_done",
    );
    st.ok(&["provision", "E-CRASH"]);
    // Killed as the seals step starts, on a token holding the kind of empty object an earlier
    // version left: the resumed run clears it.
    kill_at(
        &st,
        &["provision", "E-OLD"],
        "provision.write_seals.started",
    );
    st.run_child(child, &[("KS_ORDER", "E-OLD"), ("KS_MODE", "plant")]);
    st.ok(&["provision", "E-OLD"]);
    for no in ["E-PLAIN", "E-CRASH", "E-OLD"] {
        st.run_child(child, &[("KS_ORDER", no), ("KS_MODE", "inspect")]);
    }
    st.ok(&["check"]);
}

/// Child half of [`a_seal_whose_company_certificate_is_revoked_is_not_valid`]: the user PIN into
/// a 0600 file for `--pin-file`.
fn write_pin_file(dir: &Path) {
    let pin = user_pin(dir, "V-1");
    keystation::station::hsm::write_secret_file(&dir.join("pin/V-1.pin"), &pin).unwrap();
}

#[test]
fn a_seal_whose_company_certificate_is_revoked_is_not_valid() {
    let Some(st) = TestStation::unless_child(&[], write_pin_file) else {
        return;
    };
    st.import_approved(&order_json("V-1", "legal_rep_phone", "company", "main"));
    st.ok(&["provision", "V-1"]);
    st.run_child(
        "check_tokens::a_seal_whose_company_certificate_is_revoked_is_not_valid",
        &[],
    );
    let pin_file = st.path().join("pin/V-1.pin");
    let export = st.tmp().join("export");
    let show = |extra: &[&str]| {
        let mut args = vec![
            "seal",
            "show",
            "--token",
            "V-1",
            "--pin-file",
            pin_file.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        st.run(&args, &[])
    };
    let before = show(&["--export-dir", export.to_str().unwrap(), "--json"]);
    assert_success(&before, "seal show");
    let seal = export.join("seal_company.der");
    let verify = || {
        st.run(
            &[
                "seal",
                "verify",
                seal.to_str().unwrap(),
                "--token",
                "V-1",
                "--json",
            ],
            &[],
        )
    };
    assert!(verify().status.success());

    st.revoke(&[
        "order",
        "revoke",
        "V-1",
        "--reason",
        "keyCompromise",
        "--operator",
        "林芳",
    ]);
    let revoked_check = |v: &Value| -> String {
        let check = items(&v["checks"])
            .iter()
            .find(|c| c["name"] == "company_revocation")
            .unwrap_or_else(|| panic!("no company_revocation check: {v:#}"));
        assert_eq!(check["ok"], false, "{check}");
        check["detail"].as_str().unwrap().to_string()
    };

    let after = show(&["--json"]);
    assert_eq!(after.status.code(), Some(1), "revoked seal accepted");
    let v = stdout_json(&after);
    assert_eq!(v["valid"], false);
    let detail = revoked_check(&v["seals"][0]);
    assert!(
        detail.contains("revoked")
            && detail.contains("keyCompromise")
            && detail.contains("requested by 林芳")
            && detail.contains(&format!("approved by {}", crate::support::SECOND_OFFICER)),
        "{detail}"
    );
    let stderr = String::from_utf8_lossy(&after.stderr);
    assert!(stderr.contains("company_revocation"), "{stderr}");

    let after = verify();
    assert_eq!(after.status.code(), Some(1), "revoked seal accepted");
    let v = stdout_json(&after);
    assert_eq!(v["valid"], false);
    assert!(revoked_check(&v).contains("keyCompromise"));
    // The human verdict says so too.
    let human = show(&[]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.contains("company_revocation") && text.contains("INVALID"),
        "{text}"
    );
}
