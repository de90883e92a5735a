//! Signing and verification (SPEC §7.1).
//!
//! The signed input is `domain ‖ message bytes`. Verification streams both parts through
//! ed25519-dalek's `StreamVerifier`, so a large message (a revocation list) needs no buffer, and
//! adds the two checks that `VerifyingKey::verify_strict` makes and the stream verifier does not:
//! the public key and the signature's R must not be of small order. The result accepts exactly
//! what `verify_strict` accepts.

use crate::error::{EncodeError, VerifyError};
use crate::types::PublicKey;
use core::fmt;
#[cfg(not(fuzzing))]
use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_dalek::VerifyingKey;
#[cfg(not(fuzzing))]
use ed25519_dalek::hazmat::{ExpandedSecretKey, raw_sign_byupdate};
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha512};
use zeroize::Zeroizing;

/// Something that holds an Ed25519 private key and signs with it: a software key, or a secure
/// element behind this trait.
pub trait Signer {
    /// The public key that verifies this signer's signatures.
    fn public_key(&self) -> PublicKey;
    /// Signs `domain ‖ message` with pure Ed25519 (RFC 8032).
    fn sign(&self, domain: &[u8], message: &[u8]) -> Result<[u8; 64], EncodeError>;
}

/// An Ed25519 key held in memory. The secret is zeroized on drop and never printed.
pub struct SigningKey {
    inner: ed25519_dalek::SigningKey,
}

impl SigningKey {
    /// A new random key.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(seed.as_mut());
        Self::from_seed(&seed)
    }
    /// The key for a 32-byte seed (RFC 8032 private key).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        SigningKey {
            inner: ed25519_dalek::SigningKey::from_bytes(seed),
        }
    }
    /// The 32-byte seed, in a buffer that zeroizes itself on drop. Handle with care.
    pub fn to_seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.inner.to_bytes())
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey(public: {})", self.public_key())
    }
}

impl SigningKey {
    /// Pure Ed25519 over `domain ‖ message`, streamed: no buffer for the concatenation.
    #[cfg(not(fuzzing))]
    fn sign_ed25519(&self, domain: &[u8], message: &[u8]) -> Result<[u8; 64], EncodeError> {
        let seed = Zeroizing::new(self.inner.to_bytes());
        let esk = ExpandedSecretKey::from(&*seed);
        let sig = raw_sign_byupdate::<Sha512, _>(
            &esk,
            |d: &mut Sha512| {
                d.update(domain);
                d.update(message);
                Ok(())
            },
            &self.inner.verifying_key(),
        )
        .map_err(|_| EncodeError::Signer)?;
        Ok(sig.to_bytes())
    }
}

impl Signer for SigningKey {
    fn public_key(&self) -> PublicKey {
        PublicKey(self.inner.verifying_key().to_bytes())
    }
    fn sign(&self, domain: &[u8], message: &[u8]) -> Result<[u8; 64], EncodeError> {
        #[cfg(fuzzing)]
        return Ok(fuzzing::signature(&self.public_key(), domain, message));
        #[cfg(not(fuzzing))]
        self.sign_ed25519(domain, message)
    }
}

impl<S: Signer + ?Sized> Signer for &S {
    fn public_key(&self) -> PublicKey {
        (**self).public_key()
    }
    fn sign(&self, domain: &[u8], message: &[u8]) -> Result<[u8; 64], EncodeError> {
        (**self).sign(domain, message)
    }
}

/// Decompresses a public key and refuses small-order ("weak") keys.
pub fn verifying_key(key: &PublicKey) -> Result<VerifyingKey, VerifyError> {
    let vk = VerifyingKey::from_bytes(&key.0).map_err(|_| VerifyError::WeakKey)?;
    if vk.is_weak() {
        return Err(VerifyError::WeakKey);
    }
    Ok(vk)
}

/// Verifies `signature` over `domain ‖ message` under `key` with `verify_strict` semantics.
pub fn verify(
    key: &PublicKey,
    domain: &[u8],
    message: &[u8],
    signature: &[u8; 64],
) -> Result<(), VerifyError> {
    let vk = verifying_key(key)?;
    verify_with(&vk, domain, message, signature)
}

/// As [`verify`], with an already decompressed (and weak-checked) key.
pub fn verify_with(
    vk: &VerifyingKey,
    domain: &[u8],
    message: &[u8],
    signature: &[u8; 64],
) -> Result<(), VerifyError> {
    #[cfg(fuzzing)]
    return match fuzzing::signature(&PublicKey(vk.to_bytes()), domain, message) == *signature {
        true => Ok(()),
        false => Err(VerifyError::BadSignature),
    };
    #[cfg(not(fuzzing))]
    verify_strict_stream(vk, domain, message, signature)
}

#[cfg(not(fuzzing))]
fn verify_strict_stream(
    vk: &VerifyingKey,
    domain: &[u8],
    message: &[u8],
    signature: &[u8; 64],
) -> Result<(), VerifyError> {
    let mut r = [0u8; 32];
    r.copy_from_slice(&signature[..32]);
    match CompressedEdwardsY(r).decompress() {
        Some(p) if !p.is_small_order() => {}
        _ => return Err(VerifyError::BadSignature),
    }
    let sig = ed25519_dalek::Signature::from_bytes(signature);
    let mut stream = vk
        .verify_stream(&sig)
        .map_err(|_| VerifyError::BadSignature)?;
    stream.update(domain);
    stream.update(message);
    stream
        .finalize_and_verify()
        .map_err(|_| VerifyError::BadSignature)
}

/// SHA-256 of some bytes.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(bytes).into()
}

/// Only under cargo-fuzz (`--cfg fuzzing`, never in a normal build): signatures become
/// SHA-512(public key ‖ domain ‖ message), so that the fuzzer spends its time on the logic
/// behind the signature checks rather than on curve arithmetic. Forging one is still as hard
/// as finding a preimage, so random inputs are refused as before. The stable test suite
/// replays every corpus file with real Ed25519.
#[cfg(fuzzing)]
mod fuzzing {
    use super::*;
    pub fn signature(key: &PublicKey, domain: &[u8], message: &[u8]) -> [u8; 64] {
        let mut h = Sha512::new();
        h.update(key.0);
        h.update(domain);
        h.update(message);
        h.finalize().into()
    }
}
