//! offpay signers whose private keys never leave a PKCS#11 token (an HSM, a smart card,
//! SoftHSM2): a **P-256 holder key** for a wallet ([`TokenHolderKey`], a
//! [`HolderSigner`], SPEC §7.1.1) and an **Ed25519
//! key** for an issuer or a merchant ([`TokenEd25519Key`], a [`Signer`]).
//!
//! Keys are generated in the token as sensitive and non-extractable objects; only their
//! public halves are read. A P-256 signature is `CKM_ECDSA` over the SHA-256 of the signed
//! input (the token returns `r ‖ s`; the wallet brings S low), an Ed25519 one is `CKM_EDDSA`
//! in pure mode over the signed input itself.
//!
//! ```no_run
//! use offpay_pkcs11::Token;
//! # fn main() -> Result<(), offpay_pkcs11::Pkcs11Error> {
//! let token = Token::open("/usr/lib/softhsm/libsofthsm2.so", "offpay", "1234")?;
//! let holder = token.generate_p256("wallet-1")?; // or token.p256("wallet-1") later
//! // Wallet::open(store, holder) signs its requests and payments in the token.
//! # Ok(()) }
//! ```

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use offpay_protocol::crypto::{self, HolderSigner};
use offpay_protocol::{EncodeError, HolderKey, P256Key, PublicKey, Signer};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// DER of the OID of P-256 (prime256v1, 1.2.840.10045.3.1.7): the `CKA_EC_PARAMS` of its keys.
const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// DER of the PrintableString "edwards25519": the `CKA_EC_PARAMS` PKCS#11 3.0 names for
/// Ed25519 keys (SoftHSM2 2.6 takes this form).
const ED25519_PARAMS: &[u8] = b"\x13\x0cedwards25519";

/// The domain of the signature that checks a key pair found by label when it is loaded; no
/// protocol message uses it.
const PAIR_CHECK: &[u8] = b"offpay/1/pkcs11-pair-check\0";

fn mismatch(label: &str) -> Pkcs11Error {
    Pkcs11Error::Key(format!(
        "the private and public keys labelled {label:?} are not one pair"
    ))
}

/// Why a token operation failed.
#[derive(Debug)]
pub enum Pkcs11Error {
    /// The module or the token answered with an error.
    Token(cryptoki::error::Error),
    /// No slot holds a token with this label.
    NoToken(String),
    /// No key with this label.
    NoKey(String),
    /// More than one key with this label, a private key without its public half, a key that
    /// could leave the token, or a pair whose halves do not match.
    Key(String),
    /// The token gave a public key that is not a point of the expected curve.
    BadPublicKey,
}

impl std::fmt::Display for Pkcs11Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pkcs11Error::Token(e) => write!(f, "PKCS#11: {e}"),
            Pkcs11Error::NoToken(l) => write!(f, "no PKCS#11 token labelled {l:?}"),
            Pkcs11Error::NoKey(l) => write!(f, "no key labelled {l:?} in the token"),
            Pkcs11Error::Key(why) => f.write_str(why),
            Pkcs11Error::BadPublicKey => f.write_str("the token's public key is not a valid point"),
        }
    }
}

impl std::error::Error for Pkcs11Error {}

impl From<cryptoki::error::Error> for Pkcs11Error {
    fn from(e: cryptoki::error::Error) -> Self {
        Pkcs11Error::Token(e)
    }
}

/// A logged-in session on one token. Clones share the session; calls are serialized (a
/// PKCS#11 session runs one operation at a time).
#[derive(Clone)]
pub struct Token {
    session: Arc<Mutex<Session>>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token")
    }
}

impl Token {
    /// Loads the PKCS#11 `module`, finds the token labelled `label` and logs in as its user
    /// with `pin`.
    pub fn open(module: impl AsRef<Path>, label: &str, pin: &str) -> Result<Self, Pkcs11Error> {
        let p = Pkcs11::new(module.as_ref())?;
        match p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(())
            | Err(cryptoki::error::Error::Pkcs11(
                cryptoki::error::RvError::CryptokiAlreadyInitialized,
                _,
            )) => {}
            Err(e) => return Err(e.into()),
        }
        let slot = p
            .get_slots_with_token()?
            .into_iter()
            .find(|s| {
                p.get_token_info(*s)
                    .map(|i| i.label().trim_end() == label)
                    .unwrap_or(false)
            })
            .ok_or_else(|| Pkcs11Error::NoToken(label.into()))?;
        let session = p.open_rw_session(slot)?;
        session.login(UserType::User, Some(&AuthPin::from(pin.to_string())))?;
        Ok(Token {
            session: Arc::new(Mutex::new(session)),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&Session) -> T) -> T {
        // A panic while the lock was held leaves no half-done state in the token.
        let s = self
            .session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&s)
    }

    /// Generates a P-256 key pair labelled `label` in the token: the private key sensitive,
    /// never extractable, for signing only.
    pub fn generate_p256(&self, label: &str) -> Result<TokenHolderKey, Pkcs11Error> {
        let private = self.generate(label, KeyType::EC, P256_PARAMS, &Mechanism::EccKeyPairGen)?;
        self.p256_from(private, label)
    }

    /// The P-256 key labelled `label` already in the token.
    pub fn p256(&self, label: &str) -> Result<TokenHolderKey, Pkcs11Error> {
        let private = self.find(label, ObjectClass::PRIVATE_KEY, KeyType::EC)?;
        self.p256_from(private, label)
    }

    /// Generates an Ed25519 key pair labelled `label` in the token, as
    /// [`Token::generate_p256`].
    pub fn generate_ed25519(&self, label: &str) -> Result<TokenEd25519Key, Pkcs11Error> {
        let private = self.generate(
            label,
            KeyType::EC_EDWARDS,
            ED25519_PARAMS,
            &Mechanism::EccEdwardsKeyPairGen,
        )?;
        self.ed25519_from(private, label)
    }

    /// The Ed25519 key labelled `label` already in the token.
    pub fn ed25519(&self, label: &str) -> Result<TokenEd25519Key, Pkcs11Error> {
        let private = self.find(label, ObjectClass::PRIVATE_KEY, KeyType::EC_EDWARDS)?;
        self.ed25519_from(private, label)
    }

    fn generate(
        &self,
        label: &str,
        key_type: KeyType,
        params: &[u8],
        mechanism: &Mechanism<'_>,
    ) -> Result<ObjectHandle, Pkcs11Error> {
        let public = [
            Attribute::Token(true),
            Attribute::KeyType(key_type),
            Attribute::EcParams(params.to_vec()),
            Attribute::Verify(true),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        let private = [
            Attribute::Token(true),
            Attribute::KeyType(key_type),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        let (_, private) = self.with(|s| s.generate_key_pair(mechanism, &public, &private))?;
        Ok(private)
    }

    fn find(
        &self,
        label: &str,
        class: ObjectClass,
        key_type: KeyType,
    ) -> Result<ObjectHandle, Pkcs11Error> {
        let found = self.with(|s| {
            s.find_objects(&[
                Attribute::Class(class),
                Attribute::KeyType(key_type),
                Attribute::Label(label.as_bytes().to_vec()),
            ])
        })?;
        match found.as_slice() {
            [one] => Ok(*one),
            [] if class == ObjectClass::PRIVATE_KEY => Err(Pkcs11Error::NoKey(label.into())),
            [] => Err(Pkcs11Error::Key(format!(
                "the key labelled {label:?} has no public key object in the token"
            ))),
            _ => Err(Pkcs11Error::Key(format!(
                "{} keys labelled {label:?} in the token",
                found.len()
            ))),
        }
    }

    /// The `CKA_EC_POINT` of the public key labelled `label`, unwrapped from its DER OCTET
    /// STRING (PKCS#11 wraps the point; a few modules give it bare).
    fn ec_point(&self, label: &str, key_type: KeyType) -> Result<Vec<u8>, Pkcs11Error> {
        let public = self.find(label, ObjectClass::PUBLIC_KEY, key_type)?;
        let attrs = self.with(|s| s.get_attributes(public, &[AttributeType::EcPoint]))?;
        let point = attrs
            .into_iter()
            .find_map(|a| match a {
                Attribute::EcPoint(p) => Some(p),
                _ => None,
            })
            .ok_or(Pkcs11Error::BadPublicKey)?;
        // Wrapped: 04 41 ‖ 65-byte P-256 point, or 04 20 ‖ 32-byte Ed25519 key. Anything else
        // is taken as the bare point (a bare 65-byte point also starts with 04).
        Ok(match (key_type, point.as_slice()) {
            (KeyType::EC, [0x04, 0x41, rest @ ..]) if rest.len() == 65 => rest.to_vec(),
            (KeyType::EC_EDWARDS, [0x04, 0x20, rest @ ..]) if rest.len() == 32 => rest.to_vec(),
            _ => point,
        })
    }

    fn p256_from(&self, private: ObjectHandle, label: &str) -> Result<TokenHolderKey, Pkcs11Error> {
        let point = self.ec_point(label, KeyType::EC)?;
        let public = crypto::p256_key_from_sec1(&point).ok_or(Pkcs11Error::BadPublicKey)?;
        self.check_held(private, label)?;
        let key = TokenHolderKey {
            token: self.clone(),
            private,
            public,
        };
        // The halves are found by label: one signature proves they are one pair.
        let sig = crypto::sign_as_holder(&key, PAIR_CHECK, &[]).map_err(|_| mismatch(label))?;
        crypto::verify_p256(&public, PAIR_CHECK, &[], &sig).map_err(|_| mismatch(label))?;
        Ok(key)
    }

    fn ed25519_from(
        &self,
        private: ObjectHandle,
        label: &str,
    ) -> Result<TokenEd25519Key, Pkcs11Error> {
        let point = self.ec_point(label, KeyType::EC_EDWARDS)?;
        let public: [u8; 32] = point
            .as_slice()
            .try_into()
            .map_err(|_| Pkcs11Error::BadPublicKey)?;
        crypto::verifying_key(&PublicKey(public)).map_err(|_| Pkcs11Error::BadPublicKey)?;
        self.check_held(private, label)?;
        let key = TokenEd25519Key {
            token: self.clone(),
            private,
            public: PublicKey(public),
        };
        let sig = key.sign(PAIR_CHECK, &[]).map_err(|_| mismatch(label))?;
        crypto::verify(&key.public, PAIR_CHECK, &[], &sig).map_err(|_| mismatch(label))?;
        Ok(key)
    }

    /// Refuses a private key the token would let out.
    fn check_held(&self, key: ObjectHandle, label: &str) -> Result<(), Pkcs11Error> {
        if self.is_held(key)? {
            Ok(())
        } else {
            Err(Pkcs11Error::Key(format!(
                "the key labelled {label:?} is extractable or not sensitive: it could leave \
                 the token, so it is not used"
            )))
        }
    }

    /// Whether the object is sensitive and not extractable, as the token reports it.
    pub fn is_held(&self, key: ObjectHandle) -> Result<bool, Pkcs11Error> {
        let attrs = self.with(|s| {
            s.get_attributes(key, &[AttributeType::Sensitive, AttributeType::Extractable])
        })?;
        let mut sensitive = false;
        let mut extractable = true;
        for a in attrs {
            match a {
                Attribute::Sensitive(v) => sensitive = v,
                Attribute::Extractable(v) => extractable = v,
                _ => {}
            }
        }
        Ok(sensitive && !extractable)
    }
}

/// A P-256 holder key held in a token: a wallet's [`HolderSigner`].
#[derive(Clone, Debug)]
pub struct TokenHolderKey {
    token: Token,
    private: ObjectHandle,
    public: P256Key,
}

impl TokenHolderKey {
    /// The private key's object in the token (to check its attributes).
    pub fn private_object(&self) -> ObjectHandle {
        self.private
    }
}

impl HolderSigner for TokenHolderKey {
    fn holder_key(&self) -> HolderKey {
        HolderKey::P256(self.public)
    }
    fn sign_holder(&self, domain: &[u8], message: &[u8]) -> Result<[u8; 64], EncodeError> {
        let digest = crypto::holder_digest(domain, message);
        let sig = self
            .token
            .with(|s| s.sign(&Mechanism::Ecdsa, self.private, &digest))
            .map_err(|_| EncodeError::Signer)?;
        sig.as_slice().try_into().map_err(|_| EncodeError::Signer)
    }
}

/// An Ed25519 key held in a token: an issuer's or a merchant's [`Signer`].
#[derive(Clone, Debug)]
pub struct TokenEd25519Key {
    token: Token,
    private: ObjectHandle,
    public: PublicKey,
}

impl TokenEd25519Key {
    /// The private key's object in the token (to check its attributes).
    pub fn private_object(&self) -> ObjectHandle {
        self.private
    }
}

impl Signer for TokenEd25519Key {
    fn public_key(&self) -> PublicKey {
        self.public
    }
    fn sign(&self, domain: &[u8], message: &[u8]) -> Result<[u8; 64], EncodeError> {
        let mut input = Vec::with_capacity(domain.len() + message.len());
        input.extend_from_slice(domain);
        input.extend_from_slice(message);
        let sig = self
            .token
            .with(|s| {
                s.sign(
                    &Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                    self.private,
                    &input,
                )
            })
            .map_err(|_| EncodeError::Signer)?;
        sig.as_slice().try_into().map_err(|_| EncodeError::Signer)
    }
}
