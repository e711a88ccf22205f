//! The test token (`tokens/kstoken`, `libkstoken.so`) driven as a vendor module is: by
//! `pkcs11-tool` (the independent PKCS#11 client), by `cryptoki` where pkcs11-tool cannot name
//! SM2, and by keystation's own token layer; its signatures checked by OpenSSL.
//!
//! The module reads `KSTOKEN_CONF` once, at `C_Initialize`, so in-process use runs in a child
//! process of this test binary with its own configuration (as `softhsm::in_softhsm_child`).
//! PINs reach pkcs11-tool through the environment (`--pin env:...`), never argv.

use crate::support::assert_success;
use keystation::token::DataObject;
use keystation::token::vendor::{DigestBy, VendorTable};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const CHILD: &str = "KS_KSTOKEN_CHILD";
pub(crate) const SO_PIN: &str = "so-pin-8765";
pub(crate) const USER_PIN: &str = "user-pin-1234";

/// `init` arguments putting the CA's and the customers' keys, SM2, on the test token `module`.
pub(crate) fn sm2_on_test_token_args(module: &Path) -> [&str; 6] {
    [
        "--ca-algorithm",
        "sm2",
        "--key-algorithm",
        "sm2",
        "--pkcs11-module",
        module.to_str().unwrap(),
    ]
}

/// The test token configured by `kstoken_conf` locks a user PIN after three wrong tries.
pub(crate) fn lock_after_three_tries(kstoken_conf: &Path) {
    let mut text = std::fs::read_to_string(kstoken_conf).unwrap();
    text.push_str("[pin]\nuser_max_tries = 3\n");
    std::fs::write(kstoken_conf, text).unwrap();
}

/// The module built next to this test binary (the `kstoken` dev-dependency builds it).
pub(crate) fn module_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let so = exe.parent().unwrap().join("libkstoken.so");
    assert!(
        so.exists(),
        "{} is missing: `cargo test` builds it (kstoken is a dev-dependency); or run `cargo build -p kstoken`",
        so.display()
    );
    so
}

/// A fresh token store with its configuration file.
pub(crate) struct TestToken {
    dir: tempfile::TempDir,
    conf: PathBuf,
}

impl TestToken {
    pub(crate) fn new(extra: &str) -> TestToken {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("kstoken.conf");
        std::fs::write(&conf, format!("token_dir = \"tokens\"\n{extra}")).unwrap();
        TestToken { dir, conf }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `pkcs11-tool --module libkstoken.so ARGS`; `pin` and `so_pin` go through the environment.
    pub(crate) fn tool(&self, args: &[&str], pin: Option<&str>, so_pin: Option<&str>) -> Output {
        let mut c = Command::new("pkcs11-tool");
        c.arg("--module")
            .arg(module_path())
            .args(args)
            .env("KSTOKEN_CONF", &self.conf);
        if let Some(p) = pin {
            c.args(["--pin", "env:KS_TEST_PIN"]).env("KS_TEST_PIN", p);
        }
        if let Some(p) = so_pin {
            c.args(["--so-pin", "env:KS_TEST_SO_PIN"])
                .env("KS_TEST_SO_PIN", p);
        }
        c.output()
            .expect("pkcs11-tool must be installed (scripts/setup.sh installs opensc)")
    }

    /// Like [`TestToken::tool`], failing the test unless it succeeds; returns stdout+stderr.
    pub(crate) fn ok(&self, args: &[&str], pin: Option<&str>, so_pin: Option<&str>) -> String {
        let out = self.tool(args, pin, so_pin);
        assert_success(&out, &format!("pkcs11-tool {args:?}"));
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// `pkcs11-tool --sign` with key `id` of token `label`, logged in as the user, over the file
    /// `msg` into the file `sig`; `how` names the mechanism and format.
    fn sign(&self, label: &str, id: &str, how: &[&str], msg: &Path, sig: &Path) {
        let (msg, sig) = (msg.to_str().unwrap(), sig.to_str().unwrap());
        let mut args = vec!["--token-label", label, "--login", "--sign", "--id", id];
        args.extend_from_slice(how);
        args.extend_from_slice(&["-i", msg, "-o", sig]);
        self.ok(&args, Some(USER_PIN), None);
    }

    /// Initialises the blank token as `label` with a user PIN, all through pkcs11-tool.
    fn init(&self, label: &str) {
        self.ok(
            &["--init-token", "--slot-index", "0", "--label", label],
            None,
            Some(SO_PIN),
        );
        self.ok(
            &[
                "--token-label",
                label,
                "--login",
                "--login-type",
                "so",
                "--init-pin",
            ],
            Some(USER_PIN),
            Some(SO_PIN),
        );
    }

    /// Runs the test `name` (module path below `it::`) again in a child process bound to this
    /// token store; the child runs the body behind `if child() {...}`.
    pub(crate) fn run_child(&self, name: &str) {
        crate::support::run_child_test(
            name,
            [
                ("KSTOKEN_CONF", self.conf.as_os_str()),
                (CHILD, self.dir.path().as_os_str()),
            ],
        );
    }
}

/// The child's working directory (the parent's token store), when this is the child.
pub(crate) fn child() -> Option<PathBuf> {
    std::env::var_os(CHILD).map(PathBuf::from)
}

pub(crate) fn openssl(args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl must be installed (scripts/setup.sh)")
}

fn vendor_table() -> VendorTable {
    VendorTable::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("hsm-config/pkcs11-vendors.toml"))
        .unwrap()
}

#[test]
fn pkcs11_tool_initialises_the_token_and_signs_with_a_p256_key_openssl_verifies() {
    let tt = TestToken::new("");
    let slots = tt.ok(&["--list-slots"], None, None);
    assert_eq!(slots.matches("uninitialized").count(), 1, "{slots}");

    tt.init("Company A");
    let slots = tt.ok(&["--list-slots"], None, None);
    assert!(slots.contains("token label        : Company A"), "{slots}");
    assert!(slots.contains("PIN initialized"), "{slots}");
    assert!(
        slots.contains("token model        : kstoken (TASS)"),
        "{slots}"
    );
    assert_eq!(
        slots.matches("uninitialized").count(),
        1,
        "a new blank slot appears after C_InitToken, as with SoftHSM:\n{slots}"
    );

    tt.ok(
        &[
            "--token-label",
            "Company A",
            "--login",
            "--keypairgen",
            "--key-type",
            "EC:prime256v1",
            "--id",
            "01",
            "--label",
            "company",
        ],
        Some(USER_PIN),
        None,
    );
    // The listing comes from a new process: the key pair is on disk.
    let objects = tt.ok(
        &["--token-label", "Company A", "--login", "--list-objects"],
        Some(USER_PIN),
        None,
    );
    assert!(objects.contains("Private Key Object; EC"), "{objects}");
    assert!(objects.contains("never extractable"), "{objects}");
    assert!(
        objects.contains("EC_PARAMS:  06082a8648ce3d030107"),
        "{objects}"
    );
    let public_only = tt.ok(
        &["--token-label", "Company A", "--list-objects"],
        None,
        None,
    );
    assert!(
        !public_only.contains("Private Key Object"),
        "private keys are invisible without a login:\n{public_only}"
    );

    let msg = tt.path("msg.txt");
    std::fs::write(&msg, b"a bid to sign").unwrap();
    let sig = tt.path("msg.sig");
    let sign = ["-m", "ECDSA-SHA256", "--signature-format", "openssl"];
    tt.sign("Company A", "01", &sign, &msg, &sig);
    let pub_der = tt.path("pub.der");
    tt.ok(
        &[
            "--token-label",
            "Company A",
            "--read-object",
            "--type",
            "pubkey",
            "--id",
            "01",
            "-o",
            pub_der.to_str().unwrap(),
        ],
        None,
        None,
    );
    let pub_pem = tt.path("pub.pem");
    let o = openssl(&[
        "pkey",
        "-pubin",
        "-inform",
        "DER",
        "-in",
        pub_der.to_str().unwrap(),
        "-out",
        pub_pem.to_str().unwrap(),
    ]);
    assert_success(&o, "openssl");
    let verify = |sig: &Path| {
        openssl(&[
            "dgst",
            "-sha256",
            "-verify",
            pub_pem.to_str().unwrap(),
            "-signature",
            sig.to_str().unwrap(),
            msg.to_str().unwrap(),
        ])
    };
    let o = verify(&sig);
    assert!(
        o.status.success(),
        "openssl rejects the token's signature: {o:?}"
    );
    let mut bad = std::fs::read(&sig).unwrap();
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    let bad_sig = tt.path("bad.sig");
    std::fs::write(&bad_sig, bad).unwrap();
    assert!(
        !verify(&bad_sig).status.success(),
        "a flipped byte still verifies"
    );
}

#[test]
fn certificates_and_data_objects_are_stored_and_read_back() {
    let tt = TestToken::new("");
    tt.init("Objects");
    let key = tt.path("k.pem");
    let cert = tt.path("c.der");
    let o = openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        key.to_str().unwrap(),
        "-subj",
        "/CN=kstoken test",
        "-days",
        "1",
        "-outform",
        "DER",
        "-out",
        cert.to_str().unwrap(),
    ]);
    assert_success(&o, "openssl");
    tt.ok(
        &[
            "--token-label",
            "Objects",
            "--login",
            "--write-object",
            cert.to_str().unwrap(),
            "--type",
            "cert",
            "--id",
            "02",
            "--label",
            "unit cert",
        ],
        Some(USER_PIN),
        None,
    );
    let seal = tt.path("seal.bin");
    std::fs::write(&seal, b"\x30\x03\x02\x01\x07 a seal").unwrap();
    tt.ok(
        &[
            "--token-label",
            "Objects",
            "--login",
            "--write-object",
            seal.to_str().unwrap(),
            "--type",
            "data",
            "--label",
            "seal-1",
            "--application-label",
            "keystation",
        ],
        Some(USER_PIN),
        None,
    );
    let listing = tt.ok(&["--token-label", "Objects", "--list-objects"], None, None);
    assert!(
        listing.contains("Certificate Object; type = X.509 cert"),
        "{listing}"
    );
    assert!(listing.contains("label:      unit cert"), "{listing}");
    assert!(
        listing.contains("subject:    DN: CN=kstoken test"),
        "{listing}"
    );
    assert!(listing.contains("label:          'seal-1'"), "{listing}");
    assert!(
        listing.contains("application:    'keystation'"),
        "{listing}"
    );

    let back = tt.path("back.der");
    tt.ok(
        &[
            "--token-label",
            "Objects",
            "--read-object",
            "--type",
            "cert",
            "--id",
            "02",
            "-o",
            back.to_str().unwrap(),
        ],
        None,
        None,
    );
    assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(&cert).unwrap());
    let data_back = tt.path("seal-back.bin");
    tt.ok(
        &[
            "--token-label",
            "Objects",
            "--read-object",
            "--type",
            "data",
            "--label",
            "seal-1",
            "-o",
            data_back.to_str().unwrap(),
        ],
        None,
        None,
    );
    assert_eq!(
        std::fs::read(&data_back).unwrap(),
        std::fs::read(&seal).unwrap()
    );

    tt.ok(
        &[
            "--token-label",
            "Objects",
            "--login",
            "--delete-object",
            "--type",
            "cert",
            "--id",
            "02",
        ],
        Some(USER_PIN),
        None,
    );
    let listing = tt.ok(&["--token-label", "Objects", "--list-objects"], None, None);
    assert!(!listing.contains("Certificate Object"), "{listing}");
}

/// The SubjectPublicKeyInfo of an SM2 public point (id-ecPublicKey, sm2p256v1).
pub(crate) fn sm2_spki_pem(point: &[u8]) -> String {
    assert_eq!(point.len(), 65);
    let mut der = hex::decode("3059301306072a8648ce3d020106082a811ccf5501822d034200").unwrap();
    der.extend_from_slice(point);
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n")
}

/// Child side of the SM2 tests: generates an SM2 key pair with the codes of the vendor table's
/// `kstoken` entry through cryptoki, and writes its public key as PEM into the store directory.
fn generate_sm2_key_in_child(dir: &Path) {
    use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
    use cryptoki::mechanism::{Mechanism, MechanismType, vendor_defined::VendorDefinedMechanism};
    use cryptoki::object::{Attribute, AttributeType, KeyType};
    use cryptoki::session::UserType;
    use cryptoki::types::AuthPin;

    let codes = vendor_table().by_name("kstoken").unwrap().sm2.clone();
    let p11 = Pkcs11::new(module_path()).unwrap();
    p11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let slot = p11
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| p11.get_token_info(*s).unwrap().label().trim() == "SM2")
        .unwrap();
    let session = p11.open_rw_session(slot).unwrap();
    session
        .login(UserType::User, Some(&AuthPin::from(USER_PIN.to_string())))
        .unwrap();
    let key_type = KeyType::new_vendor_defined(codes.key_type).unwrap();
    let keygen = Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(
        MechanismType::new_vendor_defined(codes.keygen_mechanism).unwrap(),
        None,
    ));
    let (public, private) = session
        .generate_key_pair(
            &keygen,
            &[
                Attribute::Token(true),
                Attribute::KeyType(key_type),
                Attribute::Verify(true),
                Attribute::Id(b"sm2".to_vec()),
                Attribute::Label(b"company sm2".to_vec()),
            ],
            &[
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sign(true),
                Attribute::Id(b"sm2".to_vec()),
                Attribute::Label(b"company sm2".to_vec()),
            ],
        )
        .unwrap();
    let attrs = session
        .get_attributes(public, &[AttributeType::EcPoint, AttributeType::EcParams])
        .unwrap();
    let mut point = None;
    for a in attrs {
        match a {
            Attribute::EcPoint(p) => point = Some(p),
            Attribute::EcParams(p) => assert_eq!(hex::encode(p), "06082a811ccf5501822d"),
            _ => {}
        }
    }
    let point = point.unwrap();
    assert_eq!(
        &point[..2],
        &[0x04, 65],
        "CKA_EC_POINT is a DER OCTET STRING"
    );
    std::fs::write(dir.join("sm2-pub.pem"), sm2_spki_pem(&point[2..])).unwrap();
    // Keys made here are never extractable: the value is refused, not handed out.
    let value = session.get_attributes(private, &[AttributeType::Value]);
    assert!(
        matches!(&value, Ok(v) if v.is_empty())
            || matches!(
                value,
                Err(cryptoki::error::Error::Pkcs11(
                    cryptoki::error::RvError::AttributeSensitive,
                    _
                ))
            ),
        "{value:?}"
    );
}

/// Signs `msg` with the SM2 key through pkcs11-tool and the table's sign mechanism; returns
/// the signature as DER (converted when the token returns raw r‖s).
fn sm2_sign(tt: &TestToken, msg: &Path) -> Vec<u8> {
    let codes = vendor_table().by_name("kstoken").unwrap().sm2.clone();
    assert_eq!(
        codes.digest,
        DigestBy::Module,
        "the message itself is passed"
    );
    let sig = tt.path("sm2.sig");
    let mech = format!("{:#x}", codes.sign_mechanism);
    tt.sign("SM2", &hex::encode("sm2"), &["-m", &mech], msg, &sig);
    let raw = std::fs::read(&sig).unwrap();
    if raw.len() == 64 {
        keystation::token::signer::ecdsa_raw_to_der(&raw).unwrap()
    } else {
        raw
    }
}

fn sm2_verify(tt: &TestToken, msg: &Path, der_sig: &[u8], distid: &str) -> Output {
    let sig = tt.path("sm2-der.sig");
    std::fs::write(&sig, der_sig).unwrap();
    openssl(&[
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        tt.path("sm2-pub.pem").to_str().unwrap(),
        "-rawin",
        "-digest",
        "sm3",
        "-in",
        msg.to_str().unwrap(),
        "-sigfile",
        sig.to_str().unwrap(),
        "-pkeyopt",
        &format!("distid:{distid}"),
    ])
}

/// Test `test` on a token configured with `conf`: an SM2 key pair made on it (in a child, which
/// gets `None`), a signature OpenSSL verifies with the default ID and no other; the signature as
/// the token returned it.
fn sm2_round_trip(conf: &str, test: &str) -> Option<Vec<u8>> {
    if let Some(dir) = child() {
        generate_sm2_key_in_child(&dir);
        return None;
    }
    let tt = &TestToken::new(conf);
    tt.init("SM2");
    // pkcs11-tool 0.23 knows no SM2 curve: it can only send CKK_EC with P-256 parameters,
    // which the SM2 mechanism refuses. The key pair is made through cryptoki in a child.
    let out = tt.tool(
        &[
            "--token-label",
            "SM2",
            "--login",
            "--keypairgen",
            "-m",
            "0x80008001",
            "--key-type",
            "EC:prime256v1",
        ],
        Some(USER_PIN),
        None,
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("CKR_TEMPLATE_INCONSISTENT"),
        "{out:?}"
    );
    tt.run_child(test);
    let msg = tt.path("seal-tbs.bin");
    std::fs::write(&msg, "印章 to be signed".as_bytes()).unwrap();
    let sig = sm2_sign(tt, &msg);
    let ok = sm2_verify(tt, &msg, &sig, "1234567812345678");
    assert!(
        ok.status.success(),
        "OpenSSL rejects the SM2 signature: {ok:?}"
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("Signature Verified Successfully"));
    // Z_A is bound to the ID: another ID does not verify, so the token hashed Z_A ‖ M itself.
    let wrong_id = sm2_verify(tt, &msg, &sig, "1234567812345679");
    assert!(!wrong_id.status.success(), "{wrong_id:?}");
    let mut flipped = sig.clone();
    let n = flipped.len() - 3;
    flipped[n] ^= 0x01;
    assert!(
        !sm2_verify(tt, &msg, &flipped, "1234567812345678")
            .status
            .success()
    );
    Some(std::fs::read(tt.path("sm2.sig")).unwrap())
}

#[test]
fn sm2_signatures_made_on_the_token_verify_with_openssl_and_the_default_id() {
    let test = "testtoken::sm2_signatures_made_on_the_token_verify_with_openssl_and_the_default_id";
    if let Some(as_returned) = sm2_round_trip("", test) {
        assert_eq!(as_returned.len(), 64, "raw r‖s by default");
    }
}

#[test]
fn sm2_signatures_come_out_der_encoded_when_configured_as_tass_does() {
    let test = "testtoken::sm2_signatures_come_out_der_encoded_when_configured_as_tass_does";
    if let Some(as_returned) = sm2_round_trip("[sm2]\nsignature = \"der\"\n", test) {
        assert_eq!(as_returned[0], 0x30, "a DER SEQUENCE");
    }
}

/// The token flags pkcs11-tool prints for the token labelled `label`.
fn token_flags(tt: &TestToken, label: &str) -> String {
    let slots = tt.ok(&["--list-token-slots"], None, None);
    let at = slots
        .find(&format!("token label        : {label}"))
        .unwrap_or_else(|| panic!("no token {label}:\n{slots}"));
    let rest = &slots[at..];
    let line = rest
        .lines()
        .find(|l| l.trim_start().starts_with("token flags"))
        .unwrap();
    line.to_string()
}

fn login_error(tt: &TestToken, label: &str, pin: &str) -> String {
    let out = tt.tool(
        &["--token-label", label, "--login", "--list-objects"],
        Some(pin),
        None,
    );
    assert!(!out.status.success(), "login with {pin:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn wrong_user_pins_lock_the_token_for_real_and_the_so_unlocks_it() {
    let tt = TestToken::new("[pin]\nuser_max_tries = 3\n");
    tt.init("Lockable");
    assert!(!token_flags(&tt, "Lockable").contains("count low"));

    // Each try is a wrong PIN, the one that locks included; the flags count down.
    for (wrong, flag, not_yet) in [
        ("wrong-pin-1", "user PIN count low", "final"),
        ("wrong-pin-2", "final user PIN try", "locked"),
        ("wrong-pin-3", "user PIN locked", "final user PIN try"),
    ] {
        let e = login_error(&tt, "Lockable", wrong);
        assert!(e.contains("CKR_PIN_INCORRECT"), "{wrong}: {e}");
        let f = token_flags(&tt, "Lockable");
        assert!(f.contains(flag) && !f.contains(not_yet), "{wrong}: {f}");
    }

    // Locked for real: the right PIN is refused without being tried.
    let e = login_error(&tt, "Lockable", USER_PIN);
    assert!(e.contains("CKR_PIN_LOCKED"), "{e}");

    // The SO unlocks it by setting a new user PIN.
    tt.ok(
        &[
            "--token-label",
            "Lockable",
            "--login",
            "--login-type",
            "so",
            "--init-pin",
        ],
        Some("new-user-pin-5"),
        Some(SO_PIN),
    );
    let f = token_flags(&tt, "Lockable");
    assert!(!f.contains("locked") && !f.contains("count low"), "{f}");
    tt.ok(
        &["--token-label", "Lockable", "--login", "--list-objects"],
        Some("new-user-pin-5"),
        None,
    );
    let e = login_error(&tt, "Lockable", USER_PIN);
    assert!(e.contains("CKR_PIN_INCORRECT"), "the old PIN is gone: {e}");
    // A right PIN resets the counter.
    tt.ok(
        &["--token-label", "Lockable", "--login", "--list-objects"],
        Some("new-user-pin-5"),
        None,
    );
    assert!(!token_flags(&tt, "Lockable").contains("count low"));
}

#[test]
fn wrong_so_pins_lock_the_so_pin_and_the_token_can_no_longer_be_reinitialised() {
    let tt = TestToken::new("[pin]\nso_max_tries = 2\n");
    tt.init("Admin");
    let reinit = |so: &str| {
        tt.tool(
            &["--init-token", "--token-label", "Admin", "--label", "Again"],
            None,
            Some(so),
        )
    };
    let e = String::from_utf8_lossy(&reinit("wrong-so-1").stderr).into_owned();
    assert!(e.contains("CKR_PIN_INCORRECT"), "{e}");
    assert!(token_flags(&tt, "Admin").contains("final SO PIN try"));
    let e = String::from_utf8_lossy(&reinit("wrong-so-2").stderr).into_owned();
    assert!(e.contains("CKR_PIN_INCORRECT"), "{e}");
    assert!(token_flags(&tt, "Admin").contains("SO PIN locked"));
    let e = String::from_utf8_lossy(&reinit(SO_PIN).stderr).into_owned();
    assert!(e.contains("CKR_PIN_LOCKED"), "{e}");
    // The user PIN still works: only the SO is locked out.
    tt.ok(
        &["--token-label", "Admin", "--login", "--list-objects"],
        Some(USER_PIN),
        None,
    );
}

/// keystation's own token layer (what provisioning calls of SoftHSM) against the test token.
#[test]
fn keystation_token_layer_provisions_a_p256_key_on_the_test_token() {
    use keystation::config::KeyAlgorithm;
    use keystation::domain::{Pin, SoPin};
    use keystation::token::{Pkcs11Module, TokenSigner};
    use zeroize::Zeroizing;

    if child().is_none() {
        return TestToken::new("").run_child(
            "testtoken::keystation_token_layer_provisions_a_p256_key_on_the_test_token",
        );
    }
    let pin = Pin::from_secret(Zeroizing::new(USER_PIN.to_string()));
    let so = SoPin::from_secret(Zeroizing::new(SO_PIN.to_string()));
    let module = Pkcs11Module::load(Some(&module_path())).unwrap();
    let mut t = module.first_blank().unwrap().expect("a blank slot");
    assert!(
        t.info().serial.is_empty(),
        "a blank token has no serial yet"
    );
    t.init_token(&so, "ORDER-1").unwrap();
    assert_eq!(t.info().serial.len(), 16, "{:?}", t.info());
    let s = t.login_so(&so).unwrap();
    s.init_user_pin(&pin).unwrap();
    drop(s);
    t.refresh().unwrap();
    assert!(t.info().user_pin_initialized && !t.info().user_pin_count_low);
    assert!(
        module.first_blank().unwrap().is_some(),
        "a new blank slot appears, as with SoftHSM"
    );

    let s = t.login_user(&pin).unwrap();
    let kp = s
        .generate_key_pair(KeyAlgorithm::EcdsaP256, b"k1", "company")
        .unwrap();
    let key = s.find_private_key(b"k1").unwrap().unwrap();
    crate::token::assert_made_on_the_token(&s, key);

    let signer = TokenSigner::new(s, kp.clone()).unwrap();
    let sig = signer.sign_message(b"tbs").unwrap();
    let pk = ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_ASN1,
        &kp.public_raw,
    );
    pk.verify(b"tbs", &sig).unwrap();
    let s = signer.into_session();

    // A certificate under the key's CKA_ID, and a data object (PKCS#11 gives data objects no
    // CKA_ID, so the layer never offers one).
    let ca = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["kstoken.test".into()])
        .unwrap()
        .self_signed(&ca)
        .unwrap();
    s.write_certificate(b"k1", "company", cert.der()).unwrap();
    assert_eq!(s.certificates(b"k1").unwrap(), vec![cert.der().to_vec()]);
    s.write_data(&DataObject {
        application: "keystation",
        label: "seal-1",
        value: b"seal",
        private: false,
    })
    .unwrap();
    assert_eq!(
        s.data_objects("keystation").unwrap(),
        vec![("seal-1".to_string(), b"seal".to_vec())]
    );
    assert_eq!(s.random(32).unwrap().len(), 32);
    let mut classes: Vec<String> = s
        .inventory()
        .unwrap()
        .into_iter()
        .map(|o| o.kind.to_string())
        .collect();
    classes.sort();
    assert_eq!(
        classes,
        ["certificate", "data object", "private key", "public key"]
    );
}

/// The SoftHSM store's cross-process lock (`token::store_lock`) is taken only for SoftHSM: the
/// test token keeps its own store safe, and a lock around its logins would make every key of a
/// hub wait for every other key's PIN check.
#[test]
fn only_softhsm_takes_the_shared_store_lock() {
    use keystation::token::{Pkcs11Module, StoreLock};

    let Some(dir) = child() else {
        let tt = TestToken::new("");
        let conf = tt.path("softhsm2.conf");
        std::fs::create_dir(tt.path("softhsm-tokens")).unwrap();
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\n",
                tt.path("softhsm-tokens").display()
            ),
        )
        .unwrap();
        crate::support::run_child_test(
            "testtoken::only_softhsm_takes_the_shared_store_lock",
            [
                ("KSTOKEN_CONF", tt.conf.as_os_str()),
                (CHILD, tt.dir.path().as_os_str()),
                ("SOFTHSM2_CONF", conf.as_os_str()),
            ],
        );
        return;
    };
    let lock = || StoreLock::beside(&dir.join("softhsm2.conf"));
    let kstoken = Pkcs11Module::load_shared_store(Some(&module_path()), lock()).unwrap();
    assert!(
        !kstoken.locks_shared_store(),
        "the test token got SoftHSM's lock"
    );
    let softhsm = Pkcs11Module::load_shared_store(None, lock()).unwrap();
    assert!(
        softhsm.locks_shared_store(),
        "SoftHSM went without its lock"
    );
}
