//! The benchmark floor: the raw PKCS#11 calls that provisioning one token needs, back to back
//! in one process, with nothing around them (no database, no audit, no certificate building, no
//! checks). `benches/provision.rs` measures keystation's full job against it.
//!
//! Per token: `C_GetSlotList` + `C_GetTokenInfo` (find the blank slot), `C_InitToken`,
//! `C_OpenSession`, `C_Login(SO)`, `C_InitPIN`, `C_Logout`, `C_Login(user)`,
//! `C_GenerateKeyPair`, `C_Sign` (a CSR-sized input, with the new key), `C_Sign` on the CA
//! token (a certificate-sized input, CA session opened once), `C_CreateObject` (certificate),
//! `C_CreateObject` (data objects: in the benchmark, one per seal, each the size of a seal), `C_CloseSession`.
//!
//! Not used by the station itself, and not part of its API: compiled only with the
//! `bench-floor` feature, which the package's dev-dependency on itself turns on for its
//! benchmarks (and tests).

use super::module::Pkcs11Module;
use super::pkcs11::attributes::standard_keygen;
use super::pkcs11::{P256_PARAMS, context, slot as slot_of};
use super::{TokenError, TokenSelector};
use crate::config::KeyAlgorithm;
use crate::domain::{Pin, SoPin};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, CertificateType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use sha2::Digest;

fn ck(what: &str) -> impl Fn(cryptoki::error::Error) -> TokenError + '_ {
    move |e| TokenError::from_ck(what, e)
}

/// A signing mechanism and its input for `algorithm` (ECDSA signs a SHA-256 digest computed
/// here, as the station's signer does; RSA hashes inside the token).
fn sign_input(
    algorithm: KeyAlgorithm,
    tbs: &[u8],
) -> Result<(Mechanism<'static>, Vec<u8>), TokenError> {
    match algorithm {
        KeyAlgorithm::EcdsaP256 => Ok((Mechanism::Ecdsa, sha2::Sha256::digest(tbs).to_vec())),
        KeyAlgorithm::Rsa2048 => Ok((Mechanism::Sha256RsaPkcs, tbs.to_vec())),
        KeyAlgorithm::Sm2 => Err(sm2_not_measured()),
    }
}

/// The floor measures the standard mechanisms only: SM2 goes through vendor codes.
fn sm2_not_measured() -> TokenError {
    TokenError::Unexpected {
        token: "(benchmark floor)".into(),
        what: "the raw PKCS#11 floor measures ECDSA P-256 and RSA only, not SM2".into(),
    }
}

/// The CA side of the floor: one logged-in session on the CA token and the CA key handle.
pub struct FloorCa {
    session: Session,
    key: ObjectHandle,
    algorithm: KeyAlgorithm,
}

impl std::fmt::Debug for FloorCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FloorCa")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl FloorCa {
    /// Opens the CA token `token_label`, logs in and finds the private key `key_label`.
    pub fn open(
        module: &Pkcs11Module,
        token_label: &str,
        key_label: &str,
        pin: &Pin,
        algorithm: KeyAlgorithm,
    ) -> Result<FloorCa, TokenError> {
        let token = module.find(&[TokenSelector::Label(token_label.to_string())])?;
        let session = context(module.path())?
            .open_rw_session(slot_of(token.info().slot_id)?)
            .map_err(ck(token_label))?;
        session
            .login(
                UserType::User,
                Some(&AuthPin::from(pin.expose_secret().to_string())),
            )
            .map_err(ck(token_label))?;
        let key = session
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Label(key_label.as_bytes().to_vec()),
            ])
            .map_err(ck(token_label))?
            .into_iter()
            .next()
            .ok_or_else(|| TokenError::NotFound(format!("CA key {key_label:?}")))?;
        Ok(FloorCa {
            session,
            key,
            algorithm,
        })
    }
}

/// The blank slot: SoftHSM lists it last, a reader set anywhere; searched from the end.
fn blank_slot(module: &Pkcs11Module) -> Result<cryptoki::slot::Slot, TokenError> {
    let ctx = context(module.path())?;
    let slots = ctx.get_slots_with_token().map_err(ck("(slot list)"))?;
    slots
        .iter()
        .rev()
        .copied()
        .find(|s| {
            ctx.get_token_info(*s)
                .map(|t| !t.token_initialized())
                .unwrap_or(false)
        })
        .ok_or_else(|| TokenError::NotFound("a blank token".into()))
}

/// `C_InitToken`, then one session: SO login, `C_InitPIN`, logout, user login.
fn init_and_login(
    module: &Pkcs11Module,
    slot: cryptoki::slot::Slot,
    so_pin: &SoPin,
    pin: &Pin,
    label: &str,
) -> Result<Session, TokenError> {
    let ctx = context(module.path())?;
    let so = AuthPin::from(so_pin.expose_secret().to_string());
    let user = AuthPin::from(pin.expose_secret().to_string());
    ctx.init_token(slot, &so, label).map_err(ck(label))?;
    let session = ctx.open_rw_session(slot).map_err(ck(label))?;
    session.login(UserType::So, Some(&so)).map_err(ck(label))?;
    session.init_pin(&user).map_err(ck(label))?;
    session.logout().map_err(ck(label))?;
    session
        .login(UserType::User, Some(&user))
        .map_err(ck(label))?;
    Ok(session)
}

/// What one floor run writes.
#[derive(Debug, Clone, Copy)]
pub struct FloorInput<'a> {
    /// Customer key algorithm.
    pub algorithm: KeyAlgorithm,
    /// Token label.
    pub label: &'a str,
    /// Bytes signed with the new key (a CSR's to-be-signed part).
    pub csr_tbs: &'a [u8],
    /// Bytes signed by the CA (a certificate's to-be-signed part).
    pub cert_tbs: &'a [u8],
    /// Certificate value written to the token.
    pub cert_der: &'a [u8],
    /// Its subject (DER), `CKA_SUBJECT` being required for certificate objects.
    pub cert_subject: &'a [u8],
    /// Values of the data objects written to the token (one per seal in the benchmark).
    pub data: &'a [&'a [u8]],
}

/// Provisions the first blank token with the raw call sequence (see the module docs); returns
/// the token's serial.
pub fn provision_floor(
    module: &Pkcs11Module,
    ca: &FloorCa,
    so_pin: &SoPin,
    pin: &Pin,
    input: &FloorInput<'_>,
) -> Result<String, TokenError> {
    let ctx = context(module.path())?;
    let slot = blank_slot(module)?;
    let session = init_and_login(module, slot, so_pin, pin, input.label)?;
    let id = vec![0x01u8; 20];
    let Some((mechanism, mut public)) = standard_keygen(input.algorithm) else {
        return Err(sm2_not_measured());
    };
    public.extend([
        Attribute::Token(true),
        Attribute::Verify(true),
        Attribute::Id(id.clone()),
    ]);
    let private = [
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Id(id.clone()),
    ];
    let (_, key) = session
        .generate_key_pair(&mechanism, &public, &private)
        .map_err(ck(input.label))?;
    let (m, data) = sign_input(input.algorithm, input.csr_tbs)?;
    session.sign(&m, key, &data).map_err(ck(input.label))?;
    let (m, data) = sign_input(ca.algorithm, input.cert_tbs)?;
    ca.session.sign(&m, ca.key, &data).map_err(ck("CA"))?;
    session
        .create_object(&[
            Attribute::Class(ObjectClass::CERTIFICATE),
            Attribute::CertificateType(CertificateType::X_509),
            Attribute::Token(true),
            Attribute::Id(id),
            Attribute::Subject(input.cert_subject.to_vec()),
            Attribute::Value(input.cert_der.to_vec()),
        ])
        .map_err(ck(input.label))?;
    for (i, data) in input.data.iter().enumerate() {
        session
            .create_object(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Label(format!("seal:{i}").into_bytes()),
                Attribute::Value(data.to_vec()),
            ])
            .map_err(ck(input.label))?;
    }
    drop(session);
    ctx.get_token_info(slot)
        .map(|t| t.serial_number().trim().to_string())
        .map_err(ck(input.label))
}

/// Fills the store with `n` initialised tokens (each with a P-256 key pair), as a station's
/// store looks after `n` orders: the "500 tokens already in the store" case.
pub fn prefill(
    module: &Pkcs11Module,
    n: usize,
    so_pin: &SoPin,
    pin: &Pin,
) -> Result<(), TokenError> {
    for i in 0..n {
        let label = format!("PREFILL-{i:05}");
        let slot = blank_slot(module)?;
        let session = init_and_login(module, slot, so_pin, pin, &label)?;
        session
            .generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &[
                    Attribute::EcParams(P256_PARAMS.to_vec()),
                    Attribute::Token(true),
                ],
                &[
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Sign(true),
                ],
            )
            .map_err(ck(&label))?;
    }
    Ok(())
}
