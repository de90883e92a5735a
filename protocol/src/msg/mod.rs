//! The messages of SPEC §5, one module each: fields, strict decode, encode, verify, size bound.

mod certificate;
mod fraud;
mod payment;
mod preauth;
mod receipt;
mod request;
pub mod revocation;
pub mod sync;
mod voucher;

pub use certificate::MerchantCertificate;
pub use fraud::{FraudKind, FraudProof};
pub use payment::Payment;
pub use preauth::PreAuthRequest;
pub use receipt::Receipt;
pub use request::PaymentRequest;
pub use revocation::RevocationList;
pub use sync::{Outcome, ReportEntry, SyncBatch, SyncReport};
pub(crate) use voucher::check_window;
pub use voucher::{AcceptancePolicy, Voucher};

use crate::codec::take_array;
use crate::error::DecodeError;
use crate::types::{HolderKey, P256Key, PublicKey};

/// Reads the holder key of a PreAuthRequest or Voucher: 33 bytes when its type is the P-256
/// one, 32 otherwise (SPEC §3.2).
pub(crate) fn take_holder_key(p256: bool, input: &[u8]) -> Result<(HolderKey, &[u8]), DecodeError> {
    if p256 {
        let (k, rest) = take_array::<33>(input)?;
        Ok((HolderKey::P256(P256Key(k)), rest))
    } else {
        let (k, rest) = take_array::<32>(input)?;
        Ok((HolderKey::Ed25519(PublicKey(k)), rest))
    }
}

/// Longest display name, merchant reference or instrument id, in bytes.
pub const MAX_TEXT_LEN: usize = 32;

/// Checks bounded text: 1 to [`MAX_TEXT_LEN`] bytes of UTF-8 with no control characters (so a
/// hostile name cannot rewrite a terminal or a receipt printer line).
pub(crate) fn check_text(s: &str) -> Result<(), DecodeError> {
    if s.is_empty() || s.len() > MAX_TEXT_LEN || s.chars().any(char::is_control) {
        return Err(DecodeError::OutOfRange);
    }
    Ok(())
}
