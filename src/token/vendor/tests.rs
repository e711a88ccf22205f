#![allow(clippy::unwrap_used)]

use super::*;

const SHIPPED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/hsm-config/pkcs11-vendors.toml"
);

const ONE: &str = r#"
version = 1
[[module]]
name = "x"
vendor = "X"
library = ["libx"]
status = "unconfirmed"
source = "a test"
[module.sm2]
key_type = 0x80000004
keygen_mechanism = 0x80008001
sign_mechanism = 0x80008100
digest = "caller"
signature = "der"
public_key = 0x80000101
ec_params = false
"#;

#[test]
fn the_shipped_table_loads_with_the_test_token_and_tass() {
    let t = VendorTable::load(SHIPPED).unwrap();
    let k = t.by_name("kstoken").unwrap();
    assert_eq!(k.status, Status::Tested);
    assert_eq!(
        (k.sm2.key_type, k.sm2.keygen_mechanism, k.sm2.sign_mechanism),
        (0x8000_0004, 0x8000_8001, 0x8000_8100)
    );
    assert_eq!(k.sm2.digest, DigestBy::Module);
    assert_eq!(k.sm2.public_key, PublicKeySource::EcPoint);
    let tass = t.by_name("tass").unwrap();
    assert_eq!(tass.status, Status::Unconfirmed);
    assert_eq!(tass.sm2.signature, SignatureEncoding::Der);
    assert_eq!(tass.sm2.prehash_mechanism, Some(0x8000_8000));
    // Dual certificates: only the test token's codes are known.
    assert_eq!(
        (k.sm2.encrypt_mechanism, k.sm2.envelope_unwrap_mechanism),
        (Some(0x8000_8200), Some(0x8000_8201))
    );
    assert_eq!(
        (
            tass.sm2.encrypt_mechanism,
            tass.sm2.envelope_unwrap_mechanism
        ),
        (None, None)
    );
    assert!(t.modules().len() >= 3);
}

#[test]
fn a_module_is_found_by_its_library_file_name() {
    let t = VendorTable::load(SHIPPED).unwrap();
    let found = |p: &str| t.for_module(Path::new(p)).map(|m| m.name.as_str());
    assert_eq!(found("/work/target/debug/libkstoken.so"), Some("kstoken"));
    assert_eq!(found("/opt/tass/lib/libTassPKCS11.so"), Some("tass"));
    assert_eq!(found("/usr/lib/softhsm/libsofthsm2.so"), None);
    assert_eq!(found("/"), None);
}

#[test]
fn every_field_is_read_including_a_vendor_attribute() {
    let t = VendorTable::from_toml_str(ONE).unwrap();
    let m = &t.modules()[0];
    assert_eq!(m.sm2.digest, DigestBy::Caller);
    assert_eq!(m.sm2.signature, SignatureEncoding::Der);
    assert_eq!(m.sm2.public_key, PublicKeySource::Attribute(0x8000_0101));
    assert_eq!(m.sm2.prehash_mechanism, None);
    assert!(!m.sm2.ec_params);
}

#[test]
fn unknown_keys_wrong_versions_and_bad_codes_are_refused_by_name() {
    let unknown = ONE.replace("ec_params = false", "ec_params = false\nhash = \"sm3\"");
    let e = VendorTable::from_toml_str(&unknown)
        .unwrap_err()
        .to_string();
    assert!(e.contains("hash"), "{e}");

    let v2 = ONE.replace("version = 1", "version = 2");
    assert!(matches!(
        VendorTable::from_toml_str(&v2),
        Err(VendorError::Version { found: 2, .. })
    ));

    let standard = ONE.replace("sign_mechanism = 0x80008100", "sign_mechanism = 0x1041");
    let e = VendorTable::from_toml_str(&standard)
        .unwrap_err()
        .to_string();
    assert!(e.contains("sign_mechanism 0x1041"), "{e}");
    assert!(e.contains("\"x\""), "names the entry: {e}");
    let standard = ONE.replace(
        "ec_params = false",
        "ec_params = false\nenvelope_unwrap_mechanism = 0x2000",
    );
    let e = VendorTable::from_toml_str(&standard)
        .unwrap_err()
        .to_string();
    assert!(e.contains("envelope_unwrap_mechanism 0x2000"), "{e}");

    let twice = format!("{ONE}\n{}", &ONE[ONE.find("[[module]]").unwrap()..]);
    let e = VendorTable::from_toml_str(&twice).unwrap_err().to_string();
    assert!(e.contains("twice"), "{e}");

    let no_lib = ONE.replace("library = [\"libx\"]", "library = []");
    assert!(VendorTable::from_toml_str(&no_lib).is_err());

    let bad_pk = ONE.replace("public_key = 0x80000101", "public_key = \"value\"");
    let e = VendorTable::from_toml_str(&bad_pk).unwrap_err().to_string();
    assert!(e.contains("ec_point"), "{e}");

    let e = VendorTable::load("/nonexistent/pkcs11-vendors.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent/pkcs11-vendors.toml"), "{e}");
}

#[test]
fn the_builtin_table_is_the_shipped_file_and_finds_the_test_token() {
    let table = VendorTable::builtin();
    assert!(table.by_name("kstoken").is_some());
    let m = table
        .for_module(Path::new("/x/target/debug/libkstoken.so"))
        .unwrap();
    assert_eq!(m.sm2.key_type, 0x8000_0004);
    assert!(
        table
            .for_module(Path::new("/usr/lib/softhsm/libsofthsm2.so"))
            .is_none()
    );
}
