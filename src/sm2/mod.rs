//! SM2 signatures as certificates and seals carry them (GB/T 32918, GM/T 0009, GB/T 35276):
//! the object identifiers, the digest `e = SM3(Z_A ‖ M)` a module may want from its caller,
//! and verification with the default distinguishing ID.
//!
//! Invariants:
//! - the distinguishing ID is always the GM/T 0009 default `1234567812345678`: the station signs
//!   and verifies with no other (an SM2 signature binds the ID through `Z_A`, so a verifier with
//!   another ID rejects it);
//! - signatures are DER `SEQUENCE { r, s }` (GB/T 35276); a raw `r ‖ s` is refused here, it is
//!   the token layer's job to convert what a module returns.

use const_oid::ObjectIdentifier;
use sm3::{Digest, Sm3};

/// SM2-with-SM3 signature algorithm (GM/T 0006), the `signatureAlgorithm` of SM2 certificates
/// and the `signAlgID` of SM2 seals.
pub const OID_SM2_WITH_SM3: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.501");

/// The curve sm2p256v1: an SM2 public key is an `id-ecPublicKey` with these parameters.
pub const OID_SM2_CURVE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.301");

/// The default distinguishing ID of GM/T 0009, the one the station signs and verifies with.
pub const DEFAULT_DISTID: &str = "1234567812345678";

/// Curve parameters a, b, xG, yG of sm2p256v1 (GB/T 32918.5), as `Z_A` hashes them.
const CURVE_A: &str = "FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC";
const CURVE_B: &str = "28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93";
const GENERATOR_X: &str = "32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7";
const GENERATOR_Y: &str = "BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0";

/// DER of the SubjectPublicKeyInfo prefix of an SM2 key: `id-ecPublicKey` with the sm2p256v1
/// parameters, then the BIT STRING header of a 65-byte point.
const SPKI_PREFIX: &str = "3059301306072a8648ce3d020106082a811ccf5501822d034200";

/// The SubjectPublicKeyInfo (DER) of the uncompressed SM2 point `point` (GM/T 0015: an
/// `id-ecPublicKey` on the curve sm2p256v1).
pub fn spki_der(point: &[u8]) -> Result<Vec<u8>, Sm2Error> {
    if point.len() != 65 || point[0] != 0x04 {
        return Err(Sm2Error(
            "the public key is not an uncompressed 65-byte point".into(),
        ));
    }
    let mut der = hex::decode(SPKI_PREFIX).unwrap_or_default();
    der.extend_from_slice(point);
    Ok(der)
}

/// The uncompressed point of an SM2 SubjectPublicKeyInfo (DER, as [`spki_der`] writes it);
/// `None` for any other key (P-256 shares `id-ecPublicKey` but not the curve).
pub fn point_of_spki(spki: &[u8]) -> Option<&[u8]> {
    let prefix = hex::decode(SPKI_PREFIX).ok()?;
    spki.strip_prefix(prefix.as_slice())
        .filter(|point| point.len() == 65 && point[0] == 0x04)
}

/// Why an SM2 signature or key is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SM2: {0}")]
pub struct Sm2Error(pub String);

/// `e = SM3(Z_A ‖ msg)` for the uncompressed public point `point` (`04 ‖ x ‖ y`) and the
/// default ID: what a module whose vendor entry says `digest = "caller"` signs.
pub fn message_digest(point: &[u8], msg: &[u8]) -> Result<[u8; 32], Sm2Error> {
    let z = z_a(point)?;
    let mut e = Sm3::new();
    e.update(z);
    e.update(msg);
    Ok(e.finalize().into())
}

/// `Z_A = SM3(ENTL_A ‖ ID_A ‖ a ‖ b ‖ xG ‖ yG ‖ xA ‖ yA)` with the default ID.
fn z_a(point: &[u8]) -> Result<[u8; 32], Sm2Error> {
    let [0x04, coordinates @ ..] = point else {
        return Err(Sm2Error(
            "the public key is not an uncompressed point".into(),
        ));
    };
    if coordinates.len() != 64 {
        return Err(Sm2Error(format!(
            "the public point has {} bytes, not 65",
            point.len()
        )));
    }
    let mut z = Sm3::new();
    // ENTL: the ID's length in bits, two bytes big-endian (16 bytes = 128 bits).
    z.update(((DEFAULT_DISTID.len() * 8) as u16).to_be_bytes());
    z.update(DEFAULT_DISTID.as_bytes());
    for constant in [CURVE_A, CURVE_B, GENERATOR_X, GENERATOR_Y] {
        z.update(hex::decode(constant).unwrap_or_default());
    }
    z.update(coordinates);
    Ok(z.finalize().into())
}

/// Verifies the DER SM2-with-SM3 `signature` over `msg` with the public point `point` and the
/// default ID.
pub fn verify(point: &[u8], msg: &[u8], signature: &[u8]) -> Result<(), Sm2Error> {
    use sm2::dsa::signature::Verifier;
    let key = sm2::dsa::VerifyingKey::from_sec1_bytes(DEFAULT_DISTID, point)
        .map_err(|_| Sm2Error("the public key is not a point of sm2p256v1".into()))?;
    let signature = sm2::dsa::Signature::from_der(signature)
        .map_err(|_| Sm2Error("the signature is not a DER SEQUENCE { r, s }".into()))?;
    key.verify(msg, &signature)
        .map_err(|_| Sm2Error("signature does not verify".into()))
}

#[cfg(test)]
mod tests;
