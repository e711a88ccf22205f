//! The token layer against real SoftHSM: keys on the token and non-extractable, signatures that
//! verify, certificate and data objects, the vault's derivation and sealing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::softhsm_test;
use keystation::config::KeyAlgorithm;
use keystation::domain::{Pin, SoPin};
use keystation::token::{
    DataObject, KeyUsage, ObjectKind, Pkcs11Module, TokenError, TokenSelector, TokenSigner, Vault,
};
use x509_parser::prelude::FromDer;
use zeroize::Zeroizing;

fn pin(s: &str) -> Pin {
    Pin::from_secret(Zeroizing::new(s.to_string()))
}

fn so(s: &str) -> SoPin {
    SoPin::from_secret(Zeroizing::new(s.to_string()))
}

/// Initialises the first blank token with `label` and user PIN `user`.
fn new_token(module: &Pkcs11Module, label: &str, user: &str) -> keystation::token::Token {
    let mut t = module.first_blank().unwrap().expect("a blank slot");
    t.init_token(&so("so-secret-1"), label).unwrap();
    assert!(
        !t.info().serial.is_empty(),
        "SoftHSM assigns a serial at C_InitToken"
    );
    let s = t.login_so(&so("so-secret-1")).unwrap();
    s.init_user_pin(&pin(user)).unwrap();
    drop(s);
    t.refresh().unwrap();
    t
}

/// The private key `key` was generated on the token and can never leave it: a signing key,
/// sensitive, never extractable, and its value refused when asked for.
#[track_caller]
pub fn assert_made_on_the_token(
    s: &keystation::token::TokenSession,
    key: keystation::token::ObjectRef,
) {
    let a = s.private_key_attributes(key).unwrap();
    assert!(
        a.token && a.private && a.sensitive && a.sign && a.local,
        "{a:?}"
    );
    assert!(
        !a.extractable && a.never_extractable && a.always_sensitive,
        "{a:?}"
    );
    assert!(
        s.private_value_is_protected(key).unwrap(),
        "the token handed out key material"
    );
}

softhsm_test!(
    fn key_pairs_are_generated_on_the_token_and_never_leave_it() {
        let module = Pkcs11Module::load(None).unwrap();
        let mut t = new_token(&module, "T1", "user-pin-1");
        for (alg, id) in [
            (KeyAlgorithm::EcdsaP256, b"k1".as_slice()),
            (KeyAlgorithm::Rsa2048, b"k2"),
        ] {
            let s = t.login_user(&pin("user-pin-1")).unwrap();
            let kp = s.generate_key_pair(alg, id, "company").unwrap();
            let key = s.find_private_key(id).unwrap().unwrap();
            assert_made_on_the_token(&s, key);
            // Exactly the usages of a signing key, read back: nothing left to SoftHSM's
            // defaults (which would add wrap/unwrap, and encrypt on the public half).
            for o in s.inventory().unwrap().iter().filter(|o| o.id == id) {
                let expected = match o.kind {
                    ObjectKind::PrivateKey => KeyUsage::SIGN,
                    ObjectKind::PublicKey => KeyUsage::VERIFY,
                    other => panic!("unexpected {other}"),
                };
                assert_eq!(o.usage, Some(expected), "{alg:?} {}", o.describe());
            }
            // The signature made on the token verifies with the public key read from it.
            let signer = TokenSigner::new(s, kp.clone()).unwrap();
            let msg = b"to be signed";
            let sig = signer.sign_message(msg).unwrap();
            let (_, spki) =
                x509_parser::x509::SubjectPublicKeyInfo::from_der(&kp.spki_der).unwrap();
            let alg_id = match alg {
                KeyAlgorithm::EcdsaP256 => x509_parser::oid_registry::OID_SIG_ECDSA_WITH_SHA256,
                KeyAlgorithm::Rsa2048 => x509_parser::oid_registry::OID_PKCS1_SHA256WITHRSA,
                KeyAlgorithm::Sm2 => unreachable!("SoftHSM has no SM2: tests/it/sm2.rs"),
            };
            let ai = x509_parser::x509::AlgorithmIdentifier::new(alg_id, None);
            let bits = x509_parser::der_parser::asn1_rs::BitString::new(0, &sig);
            x509_parser::verify::verify_signature(&spki, &ai, &bits, msg).unwrap();
            let mut bad = msg.to_vec();
            bad[0] ^= 1;
            assert!(x509_parser::verify::verify_signature(&spki, &ai, &bits, &bad).is_err());
        }
    }
);

softhsm_test!(
    fn tokens_are_found_by_serial_or_label_and_wrong_pins_are_named() {
        let module = Pkcs11Module::load(None).unwrap();
        let t = new_token(&module, "ORDER-1", "user-pin-1");
        let serial = t.info().serial.clone();
        let by_label = module
            .find(&[TokenSelector::Label("ORDER-1".into())])
            .unwrap();
        assert_eq!(by_label.info().serial, serial);
        let by_serial = module.find(&TokenSelector::either(&serial)).unwrap();
        assert_eq!(by_serial.info().label, "ORDER-1");
        assert!(matches!(
            module.find(&[TokenSelector::Label("nope".into())]),
            Err(TokenError::NotFound(_))
        ));
        let mut t2 = by_label.clone();
        let err = t2.login_user(&pin("wrong-pin")).unwrap_err();
        assert!(matches!(err, TokenError::PinIncorrect { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains(&serial) && !msg.contains("wrong-pin"), "{msg}");
        // A fresh blank slot appeared after the first one was initialised.
        assert!(module.first_blank().unwrap().is_some());
    }
);

softhsm_test!(
    fn vault_derives_stable_so_pins_and_seals_pins_bound_to_their_context() {
        let module = Pkcs11Module::load(None).unwrap();
        let mut t = new_token(&module, "vault", "station-pin");
        let vault = Vault::open(&mut t, &pin("station-pin")).unwrap();
        vault.create_keys().unwrap();
        assert!(vault.create_keys().is_err(), "keys are created once");
        // Each vault key has exactly its usages: MAC keys sign/verify, the sealing key
        // encrypts/decrypts, the anchor key pair signs/verifies.
        let keys = vault.inventory().unwrap();
        let usage_of = |label: &str, kind: ObjectKind| {
            keys.iter()
                .find(|o| o.label == label && o.kind == kind)
                .and_then(|o| o.usage)
                .unwrap_or_else(|| panic!("{label} {kind}: {keys:?}"))
                .names()
        };
        for label in ["keystation:so-pin-hmac", "keystation:receipt-hmac"] {
            assert_eq!(usage_of(label, ObjectKind::SecretKey), ["sign", "verify"]);
        }
        assert_eq!(
            usage_of("keystation:pin-seal-aes", ObjectKind::SecretKey),
            ["encrypt", "decrypt"]
        );
        assert_eq!(
            usage_of("keystation:audit-anchor", ObjectKind::PrivateKey),
            ["sign"]
        );
        assert_eq!(
            usage_of("keystation:audit-anchor", ObjectKind::PublicKey),
            ["verify"]
        );
        let a = vault.derive_so_pin("serial:ABC").unwrap();
        let b = vault.derive_so_pin("serial:ABC").unwrap();
        let c = vault.derive_so_pin("serial:ABD").unwrap();
        assert_eq!(a.expose_secret(), b.expose_secret());
        assert_ne!(a.expose_secret(), c.expose_secret());
        assert_eq!(a.expose_secret().len(), 16);

        let secret = pin("Ab3k9Qz7");
        let sealed = vault.seal_pin(&secret, b"order=O1|token=S1").unwrap();
        assert!(
            !sealed.0.windows(8).any(|w| w == b"Ab3k9Qz7"),
            "sealed blob contains the PIN"
        );
        let again = vault.seal_pin(&secret, b"order=O1|token=S1").unwrap();
        assert_ne!(sealed, again, "a fresh IV per sealing");
        let opened = vault.unseal_pin(&sealed, b"order=O1|token=S1").unwrap();
        assert_eq!(opened.expose_secret(), "Ab3k9Qz7");
        assert!(
            vault.unseal_pin(&sealed, b"order=O2|token=S1").is_err(),
            "AAD binds the order"
        );
        let mut tampered = sealed.clone();
        let last = tampered.0.len() - 1;
        tampered.0[last] ^= 1;
        assert!(vault.unseal_pin(&tampered, b"order=O1|token=S1").is_err());
        assert_eq!(vault.receipt_mac(b"m").unwrap().len(), 64);
        assert_ne!(
            vault.receipt_mac(b"m").unwrap(),
            vault.receipt_mac(b"n").unwrap()
        );
    }
);

softhsm_test!(
    fn certificates_and_data_objects_share_the_key_id() {
        let module = Pkcs11Module::load(None).unwrap();
        let mut t = new_token(&module, "T3", "user-pin-1");
        let s = t.login_user(&pin("user-pin-1")).unwrap();
        let kp = s
            .generate_key_pair(KeyAlgorithm::EcdsaP256, b"id-7", "company")
            .unwrap();
        let signer = TokenSigner::new(s, kp.clone()).unwrap();
        let params = rcgen::CertificateParams::new(vec!["x.invalid".to_string()]).unwrap();
        let cert = params.self_signed(&signer).unwrap();
        let s = signer.into_session();
        s.write_certificate(b"id-7", "company", cert.der()).unwrap();
        assert_eq!(s.certificates(b"id-7").unwrap(), vec![cert.der().to_vec()]);
        s.write_data(&DataObject::private(
            "GB/T 38540 SESeal",
            "seal:company",
            b"\x30\x00",
        ))
        .unwrap();
        let objs = s.inventory().unwrap();
        for kind in [
            ObjectKind::Certificate,
            ObjectKind::PrivateKey,
            ObjectKind::PublicKey,
        ] {
            let o = objs
                .iter()
                .find(|o| o.kind == kind)
                .unwrap_or_else(|| panic!("{kind}: {objs:?}"));
            assert_eq!(o.id, b"id-7", "{o:?}");
        }
        // Exactly the one data object written: a refused attribute left nothing behind.
        let data: Vec<_> = objs.iter().filter(|o| o.kind == ObjectKind::Data).collect();
        assert_eq!(data.len(), 1, "{data:?}");
        assert_eq!(data[0].label, "seal:company");
        assert!(data[0].private);
        assert_eq!(
            s.data_objects("GB/T 38540 SESeal").unwrap(),
            vec![("seal:company".to_string(), b"\x30\x00".to_vec())]
        );
        drop(s);
        // Private data objects are invisible without a login.
        let anon = t.open().unwrap();
        assert!(anon.data_objects("GB/T 38540 SESeal").unwrap().is_empty());
        assert_eq!(
            anon.certificates(b"id-7").unwrap().len(),
            1,
            "certificates stay public"
        );
    }
);

softhsm_test!(
    /// SoftHSM adds a new blank slot inside `C_GetSlotList` once the last one is initialised,
    /// without a lock of its own: two threads listing at that moment both add it and SoftHSM
    /// aborts the process (`SlotManager::insertToken`). The module serialises its slot lists,
    /// so workers that look for blank tokens while others initialise theirs are safe.
    fn threads_listing_slots_while_the_last_blank_one_is_initialised_do_not_abort_softhsm() {
        let module = Pkcs11Module::load(None).unwrap();
        let listers = 8;
        let rounds = 60;
        for round in 0..rounds {
            let mut t = module.first_blank().unwrap().expect("a blank slot");
            t.init_token(&so("so-secret-1"), &format!("T{round}"))
                .unwrap();
            // No blank slot now: every lister's C_GetSlotList wants to add one.
            let start = std::sync::Barrier::new(listers);
            std::thread::scope(|s| {
                for _ in 0..listers {
                    s.spawn(|| {
                        start.wait();
                        module.tokens().unwrap()
                    });
                }
            });
        }
        let tokens = module.tokens().unwrap();
        let initialised = tokens.iter().filter(|t| t.info().initialized).count();
        assert_eq!(initialised, rounds, "every round's token, once");
        assert_eq!(
            tokens.iter().filter(|t| !t.info().initialized).count(),
            1,
            "one blank slot"
        );
    }
);
