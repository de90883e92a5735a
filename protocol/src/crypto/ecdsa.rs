//! ECDSA P-256 holder keys (SPEC §7.1.1), for keys held by a phone's secure hardware: the
//! Secure Enclave and StrongBox hold P-256 keys and nothing else they can be trusted with.
//!
//! The signed input is the same `domain ‖ message` as Ed25519's; ECDSA signs its SHA-256
//! digest. A signature is `r ‖ s`, each 32 bytes big-endian, with `1 ≤ r, s < n` and
//! **low S** (`s ≤ n / 2`): ECDSA signatures are malleable (`(r, n − s)` verifies too) and
//! the payment id hashes the signature, so a high-S signature is refused and one payment has
//! one id. A key is a SEC1 compressed point (33 bytes, tag `02` or `03`); the identity, an
//! x off the curve and an x ≥ p are refused as `weak-key`.

use crate::error::{EncodeError, VerifyError};
use crate::types::P256Key;
#[cfg(not(fuzzing))]
use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use p256::ecdsa::{Signature, VerifyingKey};
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};

/// SHA-256 of `domain ‖ message`: the digest a P-256 holder signature signs. A secure
/// element that signs a digest (Android Keystore with `Digest.NONE`, a PKCS#11 `CKM_ECDSA`
/// token) is given these 32 bytes; one that hashes itself (`SecKeyCreateSignature` with
/// `ecdsaSignatureMessageX962SHA256`) is given `domain ‖ message`.
pub fn holder_digest(domain: &[u8], message: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(domain);
    h.update(message);
    h.finalize().into()
}

/// Decodes a P-256 holder key: exactly 33 bytes, tag `02` or `03`, x below p and on the
/// curve; anything else is [`VerifyError::WeakKey`].
pub fn p256_verifying_key(key: &P256Key) -> Result<VerifyingKey, VerifyError> {
    if !matches!(key.0[0], 0x02 | 0x03) {
        return Err(VerifyError::WeakKey);
    }
    VerifyingKey::from_sec1_bytes(&key.0).map_err(|_| VerifyError::WeakKey)
}

/// Reads `r ‖ s` and refuses what §7.1.1 refuses: r or s zero or ≥ n, and a high S.
fn strict_signature(signature: &[u8; 64]) -> Result<Signature, VerifyError> {
    let sig = Signature::from_slice(signature).map_err(|_| VerifyError::BadSignature)?;
    // `normalize_s` answers the normalized signature only when S was high.
    if sig.normalize_s().is_some() {
        return Err(VerifyError::BadSignature);
    }
    Ok(sig)
}

/// Verifies a P-256 holder signature over `domain ‖ message` (SPEC §7.1.1).
pub fn verify_p256(
    key: &P256Key,
    domain: &[u8],
    message: &[u8],
    signature: &[u8; 64],
) -> Result<(), VerifyError> {
    let vk = p256_verifying_key(key)?;
    let sig = strict_signature(signature)?;
    #[cfg(fuzzing)]
    {
        let _ = (vk, sig);
        return match fuzzing_signature(key, domain, message) == *signature {
            true => Ok(()),
            false => Err(VerifyError::BadSignature),
        };
    }
    #[cfg(not(fuzzing))]
    vk.verify_prehash(&holder_digest(domain, message), &sig)
        .map_err(|_| VerifyError::BadSignature)
}

/// Under cargo-fuzz only: the hash signature of `crypto::fuzzing`, brought to low S so that
/// the strict checks before it still pass and still refuse (SPEC §11.12).
#[cfg(fuzzing)]
fn fuzzing_signature(key: &P256Key, domain: &[u8], message: &[u8]) -> [u8; 64] {
    let raw = super::fuzzing::signature(&key.0, domain, message);
    p256_low_s(&raw).unwrap_or(raw)
}

/// Brings a P-256 signature `r ‖ s` to low S (`s` → `n − s` when high), as every P-256
/// holder signature must be (§7.1.1); refuses r or s zero or ≥ n. The wallet applies it to
/// whatever its signer returns, so a secure element that does not normalize needs nothing.
pub fn p256_low_s(signature: &[u8; 64]) -> Result<[u8; 64], EncodeError> {
    let sig = Signature::from_slice(signature).map_err(|_| EncodeError::Signer)?;
    let sig = sig.normalize_s().unwrap_or(sig);
    let mut out = [0u8; 64];
    out.copy_from_slice(&sig.to_bytes());
    Ok(out)
}

/// Converts the DER `ECDSA-Sig-Value` a platform API returns (Apple's
/// `SecKeyCreateSignature`, Android's `Signature.sign()` with `SHA256withECDSA`, Java and
/// most HSM libraries) into the raw low-S `r ‖ s` the protocol carries. DER is never on the
/// wire: a DER signature where `r ‖ s` belongs is refused.
pub fn p256_signature_from_der(der: &[u8]) -> Result<[u8; 64], EncodeError> {
    let sig = Signature::from_der(der).map_err(|_| EncodeError::Signer)?;
    let mut out = [0u8; 64];
    out.copy_from_slice(&sig.to_bytes());
    p256_low_s(&out)
}

/// A P-256 holder key held in memory (an app without secure hardware, tests, the reference
/// vectors). Signatures are deterministic (RFC 6979) and low-S. The secret is zeroized on
/// drop and never printed.
pub struct P256SigningKey {
    inner: p256::ecdsa::SigningKey,
}

impl P256SigningKey {
    /// A new random key.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        P256SigningKey {
            inner: p256::ecdsa::SigningKey::random(rng),
        }
    }
    /// The key for a 32-byte big-endian secret scalar; `None` unless `1 ≤ d < n`.
    pub fn from_bytes(secret: &[u8; 32]) -> Option<Self> {
        p256::ecdsa::SigningKey::from_slice(secret)
            .ok()
            .map(|inner| P256SigningKey { inner })
    }
    /// The 32-byte secret scalar, in a buffer that zeroizes itself on drop.
    pub fn to_bytes(&self) -> zeroize::Zeroizing<[u8; 32]> {
        let mut out = zeroize::Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&self.inner.to_bytes());
        out
    }
    /// The public key, SEC1 compressed.
    pub fn public_key(&self) -> P256Key {
        p256_key_of(self.inner.verifying_key())
    }
    /// Signs `domain ‖ message`: ECDSA over its SHA-256, low-S `r ‖ s`.
    pub fn sign(&self, domain: &[u8], message: &[u8]) -> Result<[u8; 64], EncodeError> {
        #[cfg(fuzzing)]
        return Ok(fuzzing_signature(&self.public_key(), domain, message));
        #[cfg(not(fuzzing))]
        {
            let sig: Signature = self
                .inner
                .sign_prehash(&holder_digest(domain, message))
                .map_err(|_| EncodeError::Signer)?;
            let mut out = [0u8; 64];
            out.copy_from_slice(&sig.to_bytes());
            p256_low_s(&out)
        }
    }
}

impl core::fmt::Debug for P256SigningKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "P256SigningKey(public: {})", self.public_key())
    }
}

/// A verifying key's SEC1 compressed encoding.
pub fn p256_key_of(vk: &VerifyingKey) -> P256Key {
    let point = vk.to_encoded_point(true);
    let mut out = [0u8; 33];
    out.copy_from_slice(point.as_bytes());
    P256Key(out)
}

/// The SEC1 compressed form of an uncompressed (`04 ‖ X ‖ Y`, 65 bytes) or compressed
/// point, as a PKCS#11 token or a platform API exports it; `None` unless it is a point of
/// P-256 other than the identity.
pub fn p256_key_from_sec1(bytes: &[u8]) -> Option<P256Key> {
    VerifyingKey::from_sec1_bytes(bytes)
        .ok()
        .map(|vk| p256_key_of(&vk))
}
