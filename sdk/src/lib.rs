//! offpay for apps: a [`CustomerWallet`] and a [`MerchantTill`] that own their directory
//! (keys, journal, trust anchors, revocation list) and their issuer connection, so that an app
//! needs no other offpay crate.
//!
//! The three calls of the offline feature are [`CustomerWallet::pre_authorize_instrument`]
//! (online, before), [`CustomerWallet::fetch_offline_payments`] and
//! [`CustomerWallet::sync_payments`] (online, after); between them the ordinary request → pay
//! → receipt flow runs offline, its bytes carried as QR codes ([`qr`]) or over BLE.
//!
//! Money is [`Money`]: a currency and an amount in minor units, parsed and printed without
//! floats. Every failure is an [`Error`] that says whether anything changed and carries the
//! stable SPEC code when the protocol or the issuer refused. The objects are `Send + Sync`;
//! calls on one object are serialized; online calls have a time limit (30 s by default).
//!
#![doc = include_str!("../walkthrough.md")]
#![deny(clippy::indexing_slicing)]

pub mod ble;
mod customer;
mod device;
mod error;
mod files;
mod history;
mod merchant;
mod money;
pub mod qr;
mod relay;
mod signer;
mod sync;

pub use ble::{BleOutcome, TillBleSession, Timeouts, WalletBleSession};
pub use customer::{Authorization, Balance, CustomerWallet, PaymentMade, PaymentReview};
pub use device::{Config, RefreshSummary, check_text, merchant_id, merchant_text};
pub use error::Error;
pub use files::{TRUST_KEYS, Trust};
pub use merchant::{Accepted, MerchantTill, TillEnrollment};
pub use money::{MAX_MINOR, Money, currency, show as show_money};
pub use relay::{MAX_CARRIED, RelayReport};
pub use signer::HolderSigner;
pub use sync::{FraudProofInfo, RefusedRecord, SyncSummary};

/// The protocol crate this SDK is built on, for apps that need its types.
pub use offpay_protocol as protocol;

use offpay_protocol::msg::{MerchantCertificate, Payment, Receipt};
use offpay_protocol::{Signed, decode_signed};
use std::path::Path;

/// The trust anchors of the wallet or till directory `dir`, read without opening the device
/// (for tools that inspect messages beside a running device).
pub fn read_trust(dir: &Path) -> Result<Trust, Error> {
    files::DeviceDir::new(dir, "device").trust()
}

/// The merchant certificate of the till directory `dir`, read without opening the till.
pub fn read_certificate(dir: &Path) -> Result<Vec<u8>, Error> {
    files::read_capped(
        &dir.join("certificate.bin"),
        <MerchantCertificate<'static> as offpay_protocol::codec::Message<'static>>::MAX_LEN,
        "reading the certificate",
    )
}

/// One offline payment as a wallet or a till keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfflinePayment {
    /// The payment's id (hex).
    pub payment_id: String,
    /// The voucher it is drawn on (hex).
    pub voucher_id: String,
    /// Its sequence number on the voucher.
    pub seq: u32,
    /// The amount.
    pub amount: Money,
    /// The merchant it pays.
    pub merchant_id: String,
    /// The customer's time when it was made (Unix seconds).
    pub created_at: u32,
    /// The payment's bytes.
    pub bytes: Vec<u8>,
    /// The merchant's receipt, once the wallet has it (a till always has it).
    pub receipt: Option<Vec<u8>>,
    /// When the merchant accepted it (from the receipt).
    pub accepted_at: Option<u32>,
    /// Whether the issuer has settled it (acknowledged in a sync report).
    pub settled: bool,
}

impl OfflinePayment {
    fn new(p: &Signed<'_, Payment<'_>>, receipt: Option<&[u8]>, settled: bool) -> Self {
        OfflinePayment {
            payment_id: p.id().to_string(),
            voucher_id: p.voucher.id.to_string(),
            seq: p.seq,
            amount: Money::of(p.amount, p.voucher.currency),
            merchant_id: merchant_text(&p.merchant_id),
            created_at: p.created_at.0,
            bytes: p.bytes().to_vec(),
            receipt: receipt.map(<[u8]>::to_vec),
            accepted_at: receipt
                .and_then(|r| decode_signed::<Receipt>(r).ok())
                .map(|r| r.accepted_at.0),
            settled,
        }
    }
}
