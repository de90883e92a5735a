//! A holder key the app keeps, and the device configuration that carries it.

use crate::SignerError;
use offpay_sdk as sdk;
use std::sync::Arc;
use std::time::Duration;

/// A holder key the app keeps (Secure Enclave, Android Keystore, PKCS#11): see
/// `offpay_sdk::HolderSigner`. Ed25519: `public_key` returns the 32-byte key and `sign` the
/// 64-byte pure Ed25519 signature of the bytes it gets. ECDSA P-256: `public_key` returns the
/// SEC1 point (33 or 65 bytes), `sign` signs the SHA-256 of the bytes it gets (the platform's
/// "SHA256withECDSA") and returns DER or `r ‖ s`; the library converts and brings S low.
#[uniffi::export(with_foreign)]
pub trait HolderSigner: Send + Sync {
    /// The public key: 32 bytes (Ed25519), or 33 or 65 (P-256, SEC1).
    fn public_key(&self) -> std::result::Result<Vec<u8>, SignerError>;
    /// Signs `message`: pure Ed25519 (64 bytes), or ECDSA P-256 over SHA-256 (DER or 64).
    fn sign(&self, message: Vec<u8>) -> std::result::Result<Vec<u8>, SignerError>;
}

struct Foreign(Arc<dyn HolderSigner>);

impl sdk::HolderSigner for Foreign {
    fn public_key(&self) -> std::result::Result<Vec<u8>, String> {
        self.0.public_key().map_err(|e| e.to_string())
    }
    fn sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, String> {
        self.0.sign(message.to_vec()).map_err(|e| e.to_string())
    }
}

/// How a device is created or opened (see `offpay_sdk::Config`).
#[derive(Clone, Debug, Default, uniffi::Record)]
pub struct Config {
    /// The issuer's public API; needed to create a device.
    #[uniffi(default = None)]
    pub issuer_url: Option<String>,
    /// At creation: the issuer key (hex) to trust; default: the newest the issuer shows.
    #[uniffi(default = None)]
    pub issuer_key: Option<String>,
    /// CA certificates (PEM) for an `https://` issuer.
    #[uniffi(default = None)]
    pub tls_roots_pem: Option<Vec<u8>>,
    /// The limit on each call to the issuer, in milliseconds (default 30,000).
    #[uniffi(default = None)]
    pub timeout_ms: Option<u32>,
    /// A fixed time (Unix seconds) instead of the clock, for tests and replays.
    #[uniffi(default = None)]
    pub fixed_time: Option<u32>,
    /// Allow `http://` to an issuer that is not on this machine (a test network only).
    #[uniffi(default = false)]
    pub allow_http: bool,
}

pub(crate) fn config(c: Config, signer: Option<Arc<dyn HolderSigner>>) -> sdk::Config {
    sdk::Config {
        issuer_url: c.issuer_url,
        issuer_key: c.issuer_key,
        tls_roots: c.tls_roots_pem,
        timeout: c.timeout_ms.map(|ms| Duration::from_millis(u64::from(ms))),
        signer: signer.map(|s| Arc::new(Foreign(s)) as Arc<dyn sdk::HolderSigner>),
        fixed_time: c.fixed_time,
        allow_http: c.allow_http,
    }
}
