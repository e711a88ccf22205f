//! Mechanisms: which the token offers, key pair generation and signatures (P-256 and SM2).
//!
//! SM2 speaks TASS's vendor codes (the TASS block of xipki's `vendor.conf`):
//! - `CKK_SM2` `0x80000004`, `CKM_SM2_KEY_PAIR_GEN` `0x80008001`;
//! - `CKM_SM3_SM2` `0x80008100`: the token computes `Z_A` (GM/T 0009 with the signer's
//!   distinguishing ID, default `1234567812345678`) and `e = SM3(Z_A ‖ M)` ITSELF; the caller
//!   passes the message `M`. The mechanism parameter, if any, is the distinguishing ID. This is
//!   how xipki drives TASS (`CKM_VENDOR_SM2_SM3` with a null parameter and the whole message);
//! - `CKM_SM2` `0x80008000` (xipki's `CKM_VENDOR_SM2`): signs a 32-byte `e` the caller hashed.
//!
//! ECDSA follows PKCS#11: `CKM_ECDSA` signs the caller's hash, `CKM_ECDSA_SHA256` hashes first;
//! both return raw `r ‖ s`. SM2 signatures are raw `r ‖ s` or DER, as configured.

use crate::attrs::{Attributes, bool_bytes, ulong_bytes};
use crate::config::SignatureEncoding;
use cryptoki_sys::*;
use p256::elliptic_curve::Generate;
use p256::elliptic_curve::sec1::ToSec1Point;
use signature::hazmat::RandomizedPrehashSigner;
use zeroize::Zeroizing;

/// TASS `CKK_SM2`.
pub const CKK_SM2: CK_KEY_TYPE = 0x8000_0004;
/// TASS `CKM_SM2_KEY_PAIR_GEN`.
pub const CKM_SM2_KEY_PAIR_GEN: CK_MECHANISM_TYPE = 0x8000_8001;
/// TASS `CKM_SM3_SM2`: SM2 signature over `SM3(Z_A ‖ M)`, Z computed by the token.
pub const CKM_SM3_SM2: CK_MECHANISM_TYPE = 0x8000_8100;
/// TASS `CKM_SM2` (xipki: `CKM_VENDOR_SM2`): SM2 signature of a caller-computed `e`.
pub const CKM_SM2: CK_MECHANISM_TYPE = 0x8000_8000;

/// DER of the prime256v1 OID (`CKA_EC_PARAMS` of a P-256 key).
pub const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
/// DER of the sm2p256v1 OID 1.2.156.10197.1.301.
pub const SM2_PARAMS: &[u8] = &[0x06, 0x08, 0x2A, 0x81, 0x1C, 0xCF, 0x55, 0x01, 0x82, 0x2D];
/// GM/T 0009 default distinguishing ID.
pub const DEFAULT_SM2_ID: &str = "1234567812345678";

/// The mechanisms offered, with `CK_MECHANISM_INFO` flags. All are "hardware" (`CKF_HW`):
/// pkcs11-tool only picks hardware mechanisms unless told `--allow-sw`.
pub fn mechanism_list() -> Vec<(CK_MECHANISM_TYPE, CK_FLAGS)> {
    let ec = CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS;
    vec![
        (CKM_EC_KEY_PAIR_GEN, CKF_HW | CKF_GENERATE_KEY_PAIR | ec),
        (CKM_ECDSA, CKF_HW | CKF_SIGN | CKF_VERIFY | ec),
        (CKM_ECDSA_SHA256, CKF_HW | CKF_SIGN | CKF_VERIFY | ec),
        (CKM_SM2_KEY_PAIR_GEN, CKF_HW | CKF_GENERATE_KEY_PAIR),
        (CKM_SM3_SM2, CKF_HW | CKF_SIGN | CKF_VERIFY),
        (CKM_SM2, CKF_HW | CKF_SIGN | CKF_VERIFY),
        (crate::envelope::CKM_SM2_ENCRYPT, CKF_HW | CKF_DECRYPT),
        (
            crate::envelope::CKM_SM2_ENVELOPE_UNWRAP,
            CKF_HW | CKF_UNWRAP,
        ),
    ]
}

/// The curves of the keys made here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    /// NIST P-256 (`CKK_EC`).
    P256,
    /// SM2 (`CKK_SM2`).
    Sm2,
}

impl Curve {
    /// The curve of a key object, from its key type.
    pub fn of(key: &Attributes) -> Option<Curve> {
        match key.get_ulong(CKA_KEY_TYPE)? {
            CKK_EC if key.get(CKA_EC_PARAMS) == Some(P256_PARAMS) => Some(Curve::P256),
            CKK_SM2 => Some(Curve::Sm2),
            _ => None,
        }
    }

    fn key_type(self) -> CK_KEY_TYPE {
        match self {
            Curve::P256 => CKK_EC,
            Curve::Sm2 => CKK_SM2,
        }
    }

    fn params(self) -> &'static [u8] {
        match self {
            Curve::P256 => P256_PARAMS,
            Curve::Sm2 => SM2_PARAMS,
        }
    }
}

/// Which curve a key pair generation makes, checking the public template against it.
pub fn keygen_curve(mechanism: CK_MECHANISM_TYPE, public: &Attributes) -> Result<Curve, CK_RV> {
    let curve = match mechanism {
        CKM_EC_KEY_PAIR_GEN => match public.get(CKA_EC_PARAMS) {
            None => return Err(CKR_TEMPLATE_INCOMPLETE),
            Some(P256_PARAMS) => Curve::P256,
            // SoftHSM makes an EC key on the SM2 curve that can only do ECDSA; a vendor token
            // makes SM2 keys with its own mechanism instead.
            Some(_) => return Err(CKR_CURVE_NOT_SUPPORTED),
        },
        CKM_SM2_KEY_PAIR_GEN => match public.get(CKA_EC_PARAMS) {
            None | Some(SM2_PARAMS) => Curve::Sm2,
            Some(_) => return Err(CKR_TEMPLATE_INCONSISTENT),
        },
        _ => return Err(CKR_MECHANISM_INVALID),
    };
    match public.get_ulong(CKA_KEY_TYPE) {
        Some(t) if t != curve.key_type() => Err(CKR_TEMPLATE_INCONSISTENT),
        _ => Ok(curve),
    }
}

/// A generated key pair: the public point (uncompressed SEC1) and the secret scalar.
#[derive(Debug)]
pub struct KeyPair {
    /// The curve.
    pub curve: Curve,
    /// `04 ‖ x ‖ y`.
    pub point: Vec<u8>,
    /// The 32-byte secret scalar.
    pub secret: Zeroizing<Vec<u8>>,
}

/// Generates a key pair from the OS RNG.
pub fn generate(curve: Curve) -> Result<KeyPair, CK_RV> {
    let (point, secret) = match curve {
        Curve::P256 => {
            let sk = p256::SecretKey::try_generate().map_err(|_| CKR_FUNCTION_FAILED)?;
            let point = sk.public_key().to_sec1_point(false).as_bytes().to_vec();
            (point, Zeroizing::new(sk.to_bytes().to_vec()))
        }
        Curve::Sm2 => {
            let sk = sm2::SecretKey::try_generate().map_err(|_| CKR_FUNCTION_FAILED)?;
            let point = sk.public_key().to_sec1_point(false).as_bytes().to_vec();
            (point, Zeroizing::new(sk.to_bytes().to_vec()))
        }
    };
    Ok(KeyPair {
        curve,
        point,
        secret,
    })
}

/// `CKA_EC_POINT`: the point wrapped in a DER OCTET STRING (PKCS#11 v2.40 §2.3.3).
pub fn ec_point_attribute(point: &[u8]) -> Vec<u8> {
    let mut v = vec![0x04, point.len() as u8];
    v.extend_from_slice(point);
    v
}

/// The attributes a generated pair gets on top of its templates: what the token fixes.
pub fn fixed_key_attributes(
    kp: &KeyPair,
    mechanism: CK_MECHANISM_TYPE,
    public: &mut Attributes,
    private: &mut Attributes,
) {
    let point = ec_point_attribute(&kp.point);
    for a in [&mut *public, &mut *private] {
        a.set(CKA_KEY_TYPE, ulong_bytes(kp.curve.key_type()));
        a.set(CKA_EC_PARAMS, kp.curve.params().to_vec());
        // Private keys carry the point too, as TASS keys do (xipki: SM2_PRIVATEKEY_ECPOINT).
        a.set(CKA_EC_POINT, point.clone());
        a.set(CKA_LOCAL, bool_bytes(true));
        a.set(CKA_KEY_GEN_MECHANISM, ulong_bytes(mechanism));
    }
    public.set(CKA_CLASS, ulong_bytes(CKO_PUBLIC_KEY));
    private.set(CKA_CLASS, ulong_bytes(CKO_PRIVATE_KEY));
    // Never extractable, always sensitive: the point of a key made on the token.
    private.set(CKA_SENSITIVE, bool_bytes(true));
    private.set(CKA_EXTRACTABLE, bool_bytes(false));
    private.set(CKA_ALWAYS_SENSITIVE, bool_bytes(true));
    private.set(CKA_NEVER_EXTRACTABLE, bool_bytes(true));
}

/// A signature in progress: the mechanism, the key's curve and its parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignSpec {
    /// Mechanism.
    pub mechanism: CK_MECHANISM_TYPE,
    /// The distinguishing ID for `CKM_SM3_SM2`.
    pub sm2_id: String,
}

/// Checks `mechanism` (with its parameter) against a key of `curve`.
pub fn sign_spec(
    mechanism: CK_MECHANISM_TYPE,
    parameter: &[u8],
    curve: Curve,
) -> Result<SignSpec, CK_RV> {
    let wants = match mechanism {
        CKM_ECDSA | CKM_ECDSA_SHA256 => Curve::P256,
        CKM_SM3_SM2 | CKM_SM2 => Curve::Sm2,
        _ => return Err(CKR_MECHANISM_INVALID),
    };
    if wants != curve {
        return Err(CKR_KEY_TYPE_INCONSISTENT);
    }
    let sm2_id = if mechanism == CKM_SM3_SM2 && !parameter.is_empty() {
        // ENTL is 16 bits of bit length: an ID is at most 8191 bytes.
        if parameter.len() > 8191 {
            return Err(CKR_MECHANISM_PARAM_INVALID);
        }
        String::from_utf8(parameter.to_vec()).map_err(|_| CKR_MECHANISM_PARAM_INVALID)?
    } else if !parameter.is_empty() {
        return Err(CKR_MECHANISM_PARAM_INVALID);
    } else {
        DEFAULT_SM2_ID.to_string()
    };
    Ok(SignSpec { mechanism, sm2_id })
}

/// Length of the signatures `spec` makes.
pub fn signature_len(spec: &SignSpec, sm2: SignatureEncoding) -> usize {
    match (spec.mechanism, sm2) {
        (CKM_SM3_SM2 | CKM_SM2, SignatureEncoding::Der) => 72,
        _ => 64,
    }
}

fn rng() -> getrandom::SysRng {
    getrandom::SysRng
}

/// Signs `data` with the secret scalar `secret` as `spec` says.
pub fn sign(
    spec: &SignSpec,
    secret: &[u8],
    data: &[u8],
    sm2_encoding: SignatureEncoding,
) -> Result<Vec<u8>, CK_RV> {
    match spec.mechanism {
        CKM_ECDSA | CKM_ECDSA_SHA256 => {
            let key =
                p256::ecdsa::SigningKey::from_slice(secret).map_err(|_| CKR_KEY_HANDLE_INVALID)?;
            let digest;
            let prehash = if spec.mechanism == CKM_ECDSA_SHA256 {
                use sha2::Digest;
                digest = sha2::Sha256::digest(data);
                digest.as_slice()
            } else {
                // ECDSA takes the leftmost bits of a longer hash; shorter than half the
                // order's size is no hash at all.
                if data.len() < 16 {
                    return Err(CKR_DATA_LEN_RANGE);
                }
                data
            };
            let sig: p256::ecdsa::Signature = key
                .sign_prehash_with_rng(&mut rng(), prehash)
                .map_err(|_| CKR_FUNCTION_FAILED)?;
            Ok(sig.to_bytes().to_vec())
        }
        CKM_SM3_SM2 | CKM_SM2 => {
            let sk = sm2::SecretKey::from_slice(secret).map_err(|_| CKR_KEY_HANDLE_INVALID)?;
            let key = sm2::dsa::SigningKey::new(&spec.sm2_id, &sk)
                .map_err(|_| CKR_MECHANISM_PARAM_INVALID)?;
            let sig: sm2::dsa::Signature = if spec.mechanism == CKM_SM3_SM2 {
                use signature::RandomizedSigner;
                key.try_sign_with_rng(&mut rng(), data)
                    .map_err(|_| CKR_FUNCTION_FAILED)?
            } else {
                if data.len() != 32 {
                    return Err(CKR_DATA_LEN_RANGE);
                }
                key.sign_prehash_with_rng(&mut rng(), data)
                    .map_err(|_| CKR_FUNCTION_FAILED)?
            };
            Ok(match sm2_encoding {
                SignatureEncoding::Raw => sig.to_bytes().to_vec(),
                SignatureEncoding::Der => sig.to_der().as_bytes().to_vec(),
            })
        }
        _ => Err(CKR_MECHANISM_INVALID),
    }
}

/// Verifies `signature` over `data` with the public point `point`, as `spec` says.
pub fn verify(spec: &SignSpec, point: &[u8], data: &[u8], signature: &[u8]) -> Result<(), CK_RV> {
    use signature::Verifier;
    use signature::hazmat::PrehashVerifier;
    match spec.mechanism {
        CKM_ECDSA | CKM_ECDSA_SHA256 => {
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
                .map_err(|_| CKR_KEY_HANDLE_INVALID)?;
            let sig = p256::ecdsa::Signature::from_slice(signature)
                .map_err(|_| CKR_SIGNATURE_LEN_RANGE)?;
            let ok = if spec.mechanism == CKM_ECDSA_SHA256 {
                key.verify(data, &sig).is_ok()
            } else {
                key.verify_prehash(data, &sig).is_ok()
            };
            ok.then_some(()).ok_or(CKR_SIGNATURE_INVALID)
        }
        CKM_SM3_SM2 | CKM_SM2 => {
            let key = sm2::dsa::VerifyingKey::from_sec1_bytes(&spec.sm2_id, point)
                .map_err(|_| CKR_KEY_HANDLE_INVALID)?;
            let sig = if signature.len() == 64 {
                sm2::dsa::Signature::from_slice(signature)
            } else {
                sm2::dsa::Signature::from_der(signature)
            }
            .map_err(|_| CKR_SIGNATURE_LEN_RANGE)?;
            let ok = if spec.mechanism == CKM_SM3_SM2 {
                key.verify(data, &sig).is_ok()
            } else {
                key.verify_prehash(data, &sig).is_ok()
            };
            ok.then_some(()).ok_or(CKR_SIGNATURE_INVALID)
        }
        _ => Err(CKR_MECHANISM_INVALID),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use sm3::Digest;

    fn spec(m: CK_MECHANISM_TYPE, curve: Curve) -> SignSpec {
        sign_spec(m, &[], curve).unwrap()
    }

    #[test]
    fn p256_signatures_verify_and_a_flipped_byte_does_not() {
        let kp = generate(Curve::P256).unwrap();
        assert_eq!(kp.point.len(), 65);
        for m in [CKM_ECDSA_SHA256, CKM_ECDSA] {
            let s = spec(m, Curve::P256);
            let data = if m == CKM_ECDSA {
                [7u8; 32].to_vec()
            } else {
                b"message".to_vec()
            };
            let mut sig = sign(&s, &kp.secret, &data, SignatureEncoding::Raw).unwrap();
            assert_eq!(sig.len(), 64);
            verify(&s, &kp.point, &data, &sig).unwrap();
            sig[10] ^= 1;
            assert_eq!(
                verify(&s, &kp.point, &data, &sig),
                Err(CKR_SIGNATURE_INVALID)
            );
        }
    }

    #[test]
    fn sm3_sm2_hashes_z_and_m_itself_with_the_default_id() {
        let kp = generate(Curve::Sm2).unwrap();
        let msg = b"to be signed";
        let s = spec(CKM_SM3_SM2, Curve::Sm2);
        let sig = sign(&s, &kp.secret, msg, SignatureEncoding::Raw).unwrap();
        // An independent check: the RustCrypto verifier with the default ID over M.
        let vk = sm2::dsa::VerifyingKey::from_sec1_bytes(DEFAULT_SM2_ID, &kp.point).unwrap();
        use signature::Verifier;
        vk.verify(msg, &sm2::dsa::Signature::from_slice(&sig).unwrap())
            .unwrap();
        // Another ID gives a signature that the default-ID verifier refuses.
        let other = sign_spec(CKM_SM3_SM2, b"alice@example", Curve::Sm2).unwrap();
        let sig2 = sign(&other, &kp.secret, msg, SignatureEncoding::Raw).unwrap();
        assert!(
            vk.verify(msg, &sm2::dsa::Signature::from_slice(&sig2).unwrap())
                .is_err()
        );
        verify(&other, &kp.point, msg, &sig2).unwrap();
    }

    #[test]
    fn the_prehash_mechanism_signs_the_callers_e() {
        let kp = generate(Curve::Sm2).unwrap();
        let msg = b"m";
        // e = SM3(Z ‖ M), Z computed here as GM/T 0009 says.
        let mut z = sm3::Sm3::new();
        z.update((DEFAULT_SM2_ID.len() as u16 * 8).to_be_bytes());
        z.update(DEFAULT_SM2_ID);
        z.update(
            hex::decode("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC")
                .unwrap(),
        );
        z.update(
            hex::decode("28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93")
                .unwrap(),
        );
        z.update(
            hex::decode("32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7")
                .unwrap(),
        );
        z.update(
            hex::decode("BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0")
                .unwrap(),
        );
        z.update(&kp.point[1..]);
        let z = z.finalize();
        let e = sm3::Sm3::new().chain_update(z).chain_update(msg).finalize();
        let s = spec(CKM_SM2, Curve::Sm2);
        let sig = sign(&s, &kp.secret, &e, SignatureEncoding::Der).unwrap();
        assert_eq!(sig[0], 0x30, "DER when configured");
        verify(&spec(CKM_SM3_SM2, Curve::Sm2), &kp.point, msg, &sig).unwrap();
        assert_eq!(
            sign(&s, &kp.secret, msg, SignatureEncoding::Raw),
            Err(CKR_DATA_LEN_RANGE)
        );
    }

    #[test]
    fn mechanisms_refuse_the_other_curve_and_bad_templates() {
        assert_eq!(
            sign_spec(CKM_ECDSA, &[], Curve::Sm2),
            Err(CKR_KEY_TYPE_INCONSISTENT)
        );
        assert_eq!(
            sign_spec(CKM_SM3_SM2, &[], Curve::P256),
            Err(CKR_KEY_TYPE_INCONSISTENT)
        );
        assert_eq!(
            sign_spec(CKM_ECDSA, b"x", Curve::P256),
            Err(CKR_MECHANISM_PARAM_INVALID)
        );
        let p = |params: &[u8]| Attributes::from_pairs([(CKA_EC_PARAMS, params.to_vec())]);
        assert_eq!(
            keygen_curve(CKM_EC_KEY_PAIR_GEN, &p(P256_PARAMS)),
            Ok(Curve::P256)
        );
        assert_eq!(
            keygen_curve(CKM_EC_KEY_PAIR_GEN, &p(SM2_PARAMS)),
            Err(CKR_CURVE_NOT_SUPPORTED)
        );
        assert_eq!(
            keygen_curve(CKM_SM2_KEY_PAIR_GEN, &Attributes::default()),
            Ok(Curve::Sm2)
        );
        let ec_typed = Attributes::from_pairs([(CKA_KEY_TYPE, ulong_bytes(CKK_EC))]);
        assert_eq!(
            keygen_curve(CKM_SM2_KEY_PAIR_GEN, &ec_typed),
            Err(CKR_TEMPLATE_INCONSISTENT)
        );
    }
}
