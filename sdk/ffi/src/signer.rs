//! A holder key the app keeps, and the device configuration that carries it.

use crate::SignerError;
use offpay_sdk as sdk;
use std::sync::Arc;
use std::time::Duration;

/// A holder key the app keeps (secure element, platform keystore): see
/// `offpay_sdk::HolderSigner`. `sign` gets the exact bytes to sign and returns the 64-byte
/// pure Ed25519 signature; `public_key` returns the 32-byte public key.
#[uniffi::export(with_foreign)]
pub trait HolderSigner: Send + Sync {
    /// The 32-byte Ed25519 public key.
    fn public_key(&self) -> std::result::Result<Vec<u8>, SignerError>;
    /// Signs `message` with pure Ed25519; 64 bytes.
    fn sign(&self, message: Vec<u8>) -> std::result::Result<Vec<u8>, SignerError>;
}

struct Foreign(Arc<dyn HolderSigner>);

impl sdk::HolderSigner for Foreign {
    fn public_key(&self) -> std::result::Result<[u8; 32], String> {
        let k = self.0.public_key().map_err(|e| e.to_string())?;
        <[u8; 32]>::try_from(k.as_slice())
            .map_err(|_| format!("a public key is 32 bytes, not {}", k.len()))
    }
    fn sign(&self, message: &[u8]) -> std::result::Result<[u8; 64], String> {
        let s = self.0.sign(message.to_vec()).map_err(|e| e.to_string())?;
        <[u8; 64]>::try_from(s.as_slice())
            .map_err(|_| format!("a signature is 64 bytes, not {}", s.len()))
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
