//! The holder key: a software key in the wallet's directory (the default), or a key the app
//! keeps elsewhere (a secure element, a platform keystore, a PKCS#11 token) behind
//! [`HolderSigner`].

use offpay_protocol::crypto::{
    self, HolderSigner as ProtocolSigner, p256_key_from_sec1, p256_low_s, p256_signature_from_der,
};
use offpay_protocol::{EncodeError, Signer, SigningKey};
use std::fmt;
use std::sync::Arc;

/// A holder key the app keeps outside the SDK: the Secure Enclave, the Android Keystore
/// (StrongBox or TEE), a PKCS#11 token. The SDK asks it to sign two kinds of messages:
/// pre-authorization requests and payments.
///
/// Two algorithms (SPEC §7.1.1), told apart by the public key's length:
///
/// - **Ed25519**: `public_key` is the 32-byte key; `sign` returns the 64-byte pure Ed25519
///   signature (RFC 8032) of the bytes it is given.
/// - **ECDSA P-256 with SHA-256**, the only algorithm the Secure Enclave holds and the one
///   StrongBox guarantees: `public_key` is the SEC1 point, compressed (33 bytes) or
///   uncompressed (65 bytes, `04 ‖ X ‖ Y`, as `SecKeyCopyExternalRepresentation` gives it);
///   `sign` signs the SHA-256 of the bytes it is given, as the platform APIs do when told to
///   hash (`SecKeyCreateSignature` with `.ecdsaSignatureMessageX962SHA256`, Android's
///   `Signature.getInstance("SHA256withECDSA")`), and returns the signature either as the
///   DER `ECDSA-Sig-Value` those APIs give or as raw `r ‖ s` (64 bytes). The SDK converts
///   DER to `r ‖ s` and brings S low (the protocol refuses a high S: ECDSA signatures are
///   malleable and a payment's id hashes its signature); the app does neither.
///
/// `sign` receives the exact bytes to sign (SPEC §7.1: the domain separation string followed
/// by the message's signed part). The SDK checks every signature against
/// [`HolderSigner::public_key`] before it stores or sends anything, so a signer that answers
/// wrongly is refused, never trusted.
///
/// Calls come from whatever thread calls the wallet, one at a time per wallet, while the
/// wallet is held: a signer that waits for the person (a biometric prompt) must be called from
/// a thread that may wait (not an app's main thread), and must not call back into the wallet.
/// The text of an `Err` reaches the caller in [`crate::Error::Signer`] (so "the person
/// cancelled" can be told from a failure).
pub trait HolderSigner: Send + Sync {
    /// The public key: 32 bytes (Ed25519), or a SEC1 P-256 point of 33 or 65 bytes.
    fn public_key(&self) -> Result<Vec<u8>, String>;
    /// Signs `message` (all of it, as given): pure Ed25519, or ECDSA P-256 over its SHA-256
    /// (DER or `r ‖ s`).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String>;
}

/// The holder key an app signer's public key names: 32 bytes are Ed25519, 33 or 65 a SEC1
/// P-256 point.
pub(crate) fn holder_key_of(public: &[u8]) -> Result<offpay_protocol::HolderKey, String> {
    match public.len() {
        32 => Ok(offpay_protocol::HolderKey::Ed25519(
            offpay_protocol::PublicKey(public.try_into().map_err(|_| "a 32-byte key".to_string())?),
        )),
        33 | 65 => p256_key_from_sec1(public)
            .map(offpay_protocol::HolderKey::P256)
            .ok_or_else(|| "its P-256 public key is not a point of the curve".to_string()),
        n => Err(format!(
            "a public key is 32 bytes (Ed25519) or 33 or 65 (P-256), not {n}"
        )),
    }
}

/// The wallet's signer: its own key file, or the app's.
pub(crate) enum HolderKey {
    Software(Box<SigningKey>),
    App {
        signer: Arc<dyn HolderSigner>,
        public: offpay_protocol::HolderKey,
        /// Why the last signature failed, for the error the caller gets.
        failure: Arc<std::sync::Mutex<Option<String>>>,
    },
}

impl fmt::Debug for HolderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HolderKey::Software(k) => write!(f, "{k:?}"),
            HolderKey::App { public, .. } => write!(f, "HolderSigner(public: {public})"),
        }
    }
}

impl HolderKey {
    /// The app's signer, with its public key asked once.
    pub fn app(signer: Arc<dyn HolderSigner>) -> Result<Self, crate::Error> {
        let fail = |e: String| crate::Error::Signer {
            message: format!("the holder signer gave no usable public key: {e}"),
        };
        let public = holder_key_of(&signer.public_key().map_err(fail)?).map_err(fail)?;
        Ok(HolderKey::App {
            signer,
            public,
            failure: Arc::default(),
        })
    }

    /// Where the app's signer leaves why it failed.
    pub fn failure(&self) -> Option<Arc<std::sync::Mutex<Option<String>>>> {
        match self {
            HolderKey::Software(_) => None,
            HolderKey::App { failure, .. } => Some(failure.clone()),
        }
    }
}

/// A P-256 signature as an app gives it (DER, or `r ‖ s`) as the protocol carries it: raw
/// `r ‖ s`, low S.
fn p256_raw(sig: &[u8]) -> Result<[u8; 64], String> {
    let raw = match <[u8; 64]>::try_from(sig) {
        Ok(raw) => p256_low_s(&raw),
        Err(_) => p256_signature_from_der(sig),
    };
    raw.map_err(|_| {
        format!(
            "its P-256 signature ({} bytes) is neither DER nor r ‖ s",
            sig.len()
        )
    })
}

impl ProtocolSigner for HolderKey {
    fn holder_key(&self) -> offpay_protocol::HolderKey {
        match self {
            HolderKey::Software(k) => offpay_protocol::HolderKey::Ed25519(k.public_key()),
            HolderKey::App { public, .. } => *public,
        }
    }

    fn sign_holder(&self, domain: &[u8], message: &[u8]) -> Result<[u8; 64], EncodeError> {
        match self {
            HolderKey::Software(k) => k.as_ref().sign(domain, message),
            HolderKey::App {
                signer,
                public,
                failure,
            } => {
                let fail = |why: String| {
                    if let Ok(mut f) = failure.lock() {
                        *f = Some(why);
                    }
                    EncodeError::Signer
                };
                let mut bytes = Vec::with_capacity(domain.len() + message.len());
                bytes.extend_from_slice(domain);
                bytes.extend_from_slice(message);
                let given = signer.sign(&bytes).map_err(fail)?;
                let sig = match public {
                    offpay_protocol::HolderKey::Ed25519(_) => {
                        <[u8; 64]>::try_from(given.as_slice()).map_err(|_| {
                            fail(format!(
                                "an Ed25519 signature is 64 bytes, not {}",
                                given.len()
                            ))
                        })?
                    }
                    offpay_protocol::HolderKey::P256(_) => p256_raw(&given).map_err(fail)?,
                };
                // A wrong signature would be stored and sent, then refused by every merchant:
                // check it here instead.
                crypto::verify_holder(public, domain, message, &sig).map_err(|_| {
                    fail("its signature does not verify under its public key".into())
                })?;
                Ok(sig)
            }
        }
    }
}
