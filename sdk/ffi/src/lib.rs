//! offpay-sdk through UniFFI: the same objects, records and errors in Python, Kotlin and
//! Swift. Each type here mirrors the SDK's; byte strings are `bytes` / `ByteArray` / `Data`,
//! money is a [`Money`] record (minor units and an ISO 4217 code), and every failure is an
//! [`OffpayError`] whose variants carry the stable SPEC code and name where there is one.
//!
//! Objects are safe to share between threads. No call panics across the boundary: the SDK
//! does not panic, and UniFFI turns a panic that would happen anyway into an error.

#![deny(clippy::indexing_slicing)]

mod ble;
mod customer;
mod error;
mod merchant;
mod money;
mod qr;
mod records;
mod signer;

pub use ble::{BleOutcome, TillBleSession, WalletBleSession};
pub use customer::CustomerWallet;
pub use error::{OffpayError, SignerError};
pub use merchant::{MerchantTill, TillEnrollment};
pub use money::{Money, format_money, parse_money};
pub use qr::{
    QrReceiver, qr_animate, qr_fragments, qr_from_text, qr_png, qr_scan, qr_text, qr_text_png,
};
pub use records::*;
pub use signer::{Config, HolderSigner};

use std::sync::Mutex;

uniffi::setup_scaffolding!("offpay");

type Result<T> = std::result::Result<T, OffpayError>;

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
