//! Issue 4: GB/T 38540 seals built at provisioning, written to the token as private data
//! objects, read back and verified; tampered copies rejected; openssl decodes the documented
//! structure.

use crate::station::{TestStation, keystation_at, order_json, pkcs11_tool};
use crate::support::{assert_success, items, run_ok, stdout_json, strings};
use std::path::Path;
use std::process::Command;

/// Unseals the order's user PIN (child process only) into a 0600 file for `--pin-file`.
fn pin_file_for(dir: &Path, order_no: &str, out: &Path) -> String {
    let (pin, _) = crate::station::unseal_pins(dir, order_no);
    keystation::station::hsm::write_secret_file(out, &pin).unwrap();
    pin
}

/// The (depth, type) rows `openssl asn1parse` must print for an SESeal, in the order of
/// domain doc §4 (certList with one certificate, no extDatas).
const SESEAL_ROWS: &[(u32, &str)] = &[
    (0, "SEQUENCE"),
    (1, "SEQUENCE"),
    (2, "SEQUENCE"),
    (3, "IA5STRING"),
    (3, "INTEGER"),
    (3, "IA5STRING"),
    (2, "IA5STRING"),
    (2, "SEQUENCE"),
    (3, "INTEGER"),
    (3, "UTF8STRING"),
    (3, "INTEGER"),
    (3, "SEQUENCE"),
    (4, "OCTET STRING"),
    (3, "GENERALIZEDTIME"),
    (3, "GENERALIZEDTIME"),
    (3, "GENERALIZEDTIME"),
    (2, "SEQUENCE"),
    (3, "IA5STRING"),
    (3, "OCTET STRING"),
    (3, "INTEGER"),
    (3, "INTEGER"),
    (1, "OCTET STRING"),
    (1, "OBJECT"),
    (1, "BIT STRING"),
];

fn asn1_rows(file: &Path) -> Vec<(u32, String)> {
    let out = run_ok(
        Command::new("openssl")
            .args(["asn1parse", "-inform", "DER", "-in"])
            .arg(file),
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            // "    0:d=0  hl=4 l=1234 cons: SEQUENCE"
            let d = l
                .split("d=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()?;
            let ty = l.split(':').nth(2)?.split_whitespace().next()?.to_string();
            let ty = match ty.as_str() {
                "OCTET" | "BIT" => format!("{ty} STRING"),
                _ => ty,
            };
            Some((d, ty))
        })
        .collect()
}

fn flip(src: &Path, dst: &Path, at: usize) {
    let mut b = std::fs::read(src).unwrap();
    b[at] ^= 0x01;
    std::fs::write(dst, b).unwrap();
}

fn verify_fails_on(dir: &Path, file: &Path, check: &str) {
    let out = keystation_at(dir, &["seal", "verify", file.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    let v = stdout_json(&out);
    assert_eq!(out.status.code(), Some(1), "tampered seal accepted: {v:#}");
    let failed: Vec<&str> = items(&v["checks"])
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(
        failed.contains(&check),
        "expected {check} to fail, failed: {failed:?}"
    );
}

fn child_checks(dir: &Path) {
    let work = dir.join("seal-test");
    let pin_file = work.join("user.pin");
    pin_file_for(dir, "S-BOTH", &pin_file);
    let export = work.join("export");
    let out = run_ok(
        keystation_at(dir, &["seal", "show", "--token", "S-BOTH", "--json"])
            .arg("--pin-file")
            .arg(&pin_file)
            .arg("--export-dir")
            .arg(&export),
    );
    let v = stdout_json(&out);
    assert_eq!(v["valid"], true, "{v}");
    let seals = items(&v["seals"]);
    assert_eq!(
        strings(&v["seals"], "label"),
        ["seal:company", "seal:legal_rep"]
    );
    let company = &seals[0]["fields"];
    assert_eq!(company["type"], 1);
    assert_eq!(company["name"], "北京示例科技有限公司");
    assert_eq!(company["header"]["id"], "ES");
    assert_eq!(company["header"]["version"], 4);
    assert_eq!(company["picture"]["type"], "PNG");
    assert_eq!(company["picture"]["width_mm"], 40);
    let legal = &seals[1]["fields"];
    assert_eq!(legal["type"], 2);
    assert_eq!(legal["name"], "张三");
    assert_eq!(legal["picture"]["width_mm"], 20);
    assert_ne!(company["es_id"], legal["es_id"], "esID unique per seal");
    // Every check passed, including that certList holds the certificate on this token.
    for s in seals {
        for c in items(&s["checks"]) {
            assert_eq!(c["ok"], true, "{c}");
        }
        assert!(strings(&s["checks"], "name").contains(&"token_certificate"));
    }

    let der = export.join("seal_company.der");
    let png = std::fs::read(export.join("seal_company.png")).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "exported picture is a PNG"
    );

    // openssl decodes it into exactly the documented field order and types.
    let rows = asn1_rows(&der);
    let expected: Vec<(u32, String)> = SESEAL_ROWS
        .iter()
        .map(|(d, t)| (*d, t.to_string()))
        .collect();
    assert_eq!(rows, expected);

    // seal verify accepts the seal as read from the token ...
    let out = keystation_at(
        dir,
        &["seal", "verify", der.to_str().unwrap(), "--token", "S-BOTH"],
    )
    .output()
    .unwrap();
    assert_success(&out, "seal verify");
    assert!(String::from_utf8_lossy(&out.stdout).contains("VALID"));
    // ... and rejects a copy with one flipped byte in the picture, the signature or the dates.
    let bytes = std::fs::read(&der).unwrap();
    let parsed = keystation::seal::parse_seal(&bytes).unwrap();
    let picture = parsed.e_seal_info.picture.data.as_bytes();
    let pic_at = bytes
        .windows(picture.len())
        .position(|w| w == picture)
        .unwrap()
        + picture.len() / 2;
    let valid_end = company["valid_end"].as_str().unwrap().to_string();
    // validEnd as it is encoded: YYYYMMDDHHMMSSZ.
    let ge: String = valid_end
        .chars()
        .filter(|c| c.is_ascii_digit())
        .take(14)
        .collect::<String>()
        + "Z";
    let date_at = bytes
        .windows(ge.len())
        .rposition(|w| w == ge.as_bytes())
        .unwrap()
        + 11;
    for (name, at, check) in [
        ("picture", pic_at, "maker_signature"),
        ("signature", bytes.len() - 3, "maker_signature"),
        ("dates", date_at, "maker_signature"),
    ] {
        let bad = work.join(format!("flipped-{name}.der"));
        flip(&der, &bad, at);
        verify_fails_on(dir, &bad, check);
    }
}

#[test]
fn provisioned_token_holds_verifiable_seals_and_tampering_is_detected() {
    let Some(st) = TestStation::unless_child(&[], child_checks) else {
        return;
    };
    for (no, auth, seals, role) in [
        ("S-BOTH", "legal_rep_phone", "company_and_legal_rep", "main"),
        ("S-COMP", "corporate_transfer", "company", "main"),
        ("S-NONE", "legal_rep_phone", "none", "main"),
    ] {
        st.import_approved(&order_json(no, auth, seals, role));
    }
    for (no, expected) in [
        ("S-BOTH", vec!["seal:company", "seal:legal_rep"]),
        ("S-COMP", vec!["seal:company"]),
        ("S-NONE", vec![]),
        ("S-SEC", vec![]),
    ] {
        if no == "S-SEC" {
            // A secondary key is approved once its company's main key (S-BOTH) is live.
            let mut o = order_json(no, "legal_rep_bank_card", "none", "secondary");
            o["product"]["main_order_no"] = serde_json::json!("S-BOTH");
            st.import_approved(&o);
        }
        let r = st.json(&["provision", no]);
        assert_eq!(r["seals"], serde_json::json!(expected), "{no}");
    }
    // Seal objects are private: without a login pkcs11-tool sees none.
    let out = pkcs11_tool(
        &st,
        &[
            "--token-label",
            "S-BOTH",
            "--list-objects",
            "--type",
            "data",
        ],
        None,
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("seal:"),
        "seal objects visible without login"
    );
    st.run_child(
        "seals::provisioned_token_holds_verifiable_seals_and_tampering_is_detected",
        &[],
    );
}
