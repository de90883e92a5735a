//! The holder key: a software key in the wallet's directory (the default), or a key the app
//! keeps elsewhere (a secure element, a platform keystore, a PKCS#11 token) behind
//! [`HolderSigner`].

use offpay_protocol::{EncodeError, PublicKey, Signer, SigningKey};
use std::fmt;
use std::sync::Arc;

/// A holder key the app keeps outside the SDK. The SDK asks it to sign two kinds of messages:
/// pre-authorization requests and payments.
///
/// `sign` receives the exact bytes to sign (SPEC §7.2: the domain separation string followed by
/// the message's signed part) and returns the 64-byte pure Ed25519 signature (RFC 8032) over
/// them. The SDK checks every signature against [`HolderSigner::public_key`] before it stores
/// or sends anything, so a signer that answers wrongly is refused, never trusted.
///
/// Calls come from whatever thread calls the wallet, one at a time per wallet, while the
/// wallet is held: a signer that waits for the person (a biometric prompt) must be called from
/// a thread that may wait (not an app's main thread), and must not call back into the wallet.
/// The text of an `Err` reaches the caller in [`crate::Error::Signer`] (so "the person
/// cancelled" can be told from a failure).
pub trait HolderSigner: Send + Sync {
    /// The 32-byte Ed25519 public key.
    fn public_key(&self) -> Result<[u8; 32], String>;
    /// Signs `message` (all of it, as given) with pure Ed25519.
    fn sign(&self, message: &[u8]) -> Result<[u8; 64], String>;
}

/// The wallet's signer: its own key file, or the app's.
pub(crate) enum HolderKey {
    Software(Box<SigningKey>),
    App {
        signer: Arc<dyn HolderSigner>,
        public: PublicKey,
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
        let public = signer.public_key().map_err(|e| crate::Error::Signer {
            message: format!("the holder signer gave no public key: {e}"),
        })?;
        Ok(HolderKey::App {
            signer,
            public: PublicKey(public),
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

impl Signer for HolderKey {
    fn public_key(&self) -> PublicKey {
        match self {
            HolderKey::Software(k) => k.public_key(),
            HolderKey::App { public, .. } => *public,
        }
    }

    fn sign(&self, domain: &[u8], message: &[u8]) -> Result<[u8; 64], EncodeError> {
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
                let sig = signer.sign(&bytes).map_err(fail)?;
                // A wrong signature would be stored and sent, then refused by every merchant:
                // check it here instead.
                offpay_protocol::crypto::verify(public, domain, message, &sig).map_err(|_| {
                    fail("its signature does not verify under its public key".into())
                })?;
                Ok(sig)
            }
        }
    }
}
