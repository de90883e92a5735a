//! offpay-sdk through UniFFI: the same objects, records and errors in Python, Kotlin and
//! Swift. Each type here mirrors the SDK's; byte strings are `bytes` / `ByteArray` / `Data`,
//! money is a [`Money`] record (minor units and an ISO 4217 code), and every failure is an
//! [`OffpayError`] whose variants carry the stable SPEC code and name where there is one.
//!
//! Objects are safe to share between threads. No call panics across the boundary: the SDK
//! does not panic, and UniFFI turns a panic that would happen anyway into an error.

use offpay_sdk as sdk;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

uniffi::setup_scaffolding!("offpay");

/// Why a call failed (see `offpay_sdk::Error`).
#[derive(Debug, uniffi::Error)]
pub enum OffpayError {
    /// The issuer could not be reached; nothing changed; retry when online.
    Offline {
        /// What went wrong.
        reason: String,
    },
    /// The issuer refused with a stable code; nothing changed here.
    IssuerRefused {
        /// The stable code (SPEC §9 or §15.4).
        code: u16,
        /// Its name.
        name: String,
        /// What the issuer said.
        reason: String,
    },
    /// The issuer failed; retry later.
    IssuerFailed {
        /// What went wrong.
        reason: String,
    },
    /// The protocol refused (SPEC §9); nothing was stored.
    Refused {
        /// The stable SPEC code.
        code: u16,
        /// Its name.
        name: String,
        /// What was being done and why it was refused.
        reason: String,
    },
    /// The device's storage failed.
    Storage {
        /// The stable SPEC code.
        code: u16,
        /// Its name.
        name: String,
        /// What was being done and what to do.
        reason: String,
    },
    /// An argument is not usable.
    Invalid {
        /// What is wrong.
        reason: String,
    },
    /// The device directory cannot be used as asked.
    Device {
        /// What is wrong.
        reason: String,
    },
    /// The app's holder signer failed or does not match.
    Signer {
        /// What went wrong.
        reason: String,
    },
}

impl std::fmt::Display for OffpayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::IssuerRefused { code, name, reason }
            | Self::Refused { code, name, reason }
            | Self::Storage { code, name, reason } => {
                write!(f, "{reason} ({name}, offpay error {code})")
            }
            Self::Offline { reason }
            | Self::IssuerFailed { reason }
            | Self::Invalid { reason }
            | Self::Device { reason }
            | Self::Signer { reason } => f.write_str(reason),
        }
    }
}

impl std::error::Error for OffpayError {}

impl From<sdk::Error> for OffpayError {
    fn from(e: sdk::Error) -> Self {
        use sdk::Error as E;
        match e {
            E::Offline { message } => Self::Offline { reason: message },
            E::IssuerRefused {
                code,
                name,
                message,
            } => Self::IssuerRefused {
                code,
                name,
                reason: message,
            },
            E::IssuerFailed { message } => Self::IssuerFailed { reason: message },
            E::Refused {
                code,
                name,
                message,
            } => Self::Refused {
                code,
                name,
                reason: message,
            },
            E::Storage {
                code,
                name,
                message,
            } => Self::Storage {
                code,
                name,
                reason: message,
            },
            E::Invalid { message } => Self::Invalid { reason: message },
            E::Device { message } => Self::Device { reason: message },
            E::Signer { message } => Self::Signer { reason: message },
            other => Self::Device {
                reason: other.to_string(),
            },
        }
    }
}

type Result<T> = std::result::Result<T, OffpayError>;

/// An amount of one currency in its minor units.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Money {
    /// Minor units (cents for EUR).
    pub minor: u64,
    /// The ISO 4217 code.
    pub currency: String,
}

impl From<sdk::Money> for Money {
    fn from(m: sdk::Money) -> Self {
        Money {
            minor: m.minor(),
            currency: m.currency_code().to_string(),
        }
    }
}

impl TryFrom<Money> for sdk::Money {
    type Error = OffpayError;
    fn try_from(m: Money) -> Result<Self> {
        Ok(sdk::Money::from_minor(m.minor, &m.currency)?)
    }
}

/// Parses `text` (`4.20`, `12`) as an amount of `currency`, by the currency's decimal places.
#[uniffi::export]
pub fn parse_money(text: String, currency: String) -> Result<Money> {
    Ok(sdk::Money::parse(&text, &currency)?.into())
}

/// `money` for people: `4.20 EUR`, `500 JPY`.
#[uniffi::export]
pub fn format_money(money: Money) -> Result<String> {
    Ok(sdk::Money::try_from(money)?.to_string())
}

/// `message` drawn as one QR code (PNG).
#[uniffi::export]
pub fn qr_png(message: Vec<u8>) -> Result<Vec<u8>> {
    Ok(sdk::qr::png(&message)?)
}

/// The message in the QR code of a camera image (PNG, JPEG or GIF).
#[uniffi::export]
pub fn qr_scan(image: Vec<u8>) -> Result<Vec<u8>> {
    Ok(sdk::qr::scan(&image)?)
}

/// The text of the one QR code that carries `message`, for apps that draw codes themselves.
#[uniffi::export]
pub fn qr_text(message: Vec<u8>) -> Result<String> {
    Ok(sdk::qr::text(&message)?)
}

/// The message in the text a platform QR scanner read.
#[uniffi::export]
pub fn qr_from_text(text: String) -> Result<Vec<u8>> {
    Ok(sdk::qr::from_text(&text)?)
}

/// Why the app's signer could not sign.
#[derive(Debug, uniffi::Error)]
pub enum SignerError {
    /// The key is unavailable or the user declined.
    Failed {
        /// Why.
        reason: String,
    },
}

impl std::fmt::Display for SignerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Failed { reason } => f.write_str(reason),
        }
    }
}

impl std::error::Error for SignerError {}

impl From<uniffi::UnexpectedUniFFICallbackError> for SignerError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        SignerError::Failed { reason: e.reason }
    }
}

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

fn config(c: Config, signer: Option<Arc<dyn HolderSigner>>) -> sdk::Config {
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

/// What a pre-authorization granted.
#[derive(Clone, Debug, uniffi::Record)]
pub struct Authorization {
    /// The voucher's id (hex).
    pub voucher_id: String,
    /// The amount reserved and spendable offline.
    pub amount: Money,
    /// First second of validity (Unix).
    pub not_before: u32,
    /// Last second of validity.
    pub not_after: u32,
    /// The largest single payment.
    pub max_single: Money,
    /// The most payments.
    pub max_payments: u32,
}

/// What to show before the person approves a payment.
#[derive(Clone, Debug, uniffi::Record)]
pub struct PaymentReview {
    /// The merchant's certified name.
    pub merchant_name: String,
    /// The merchant's id.
    pub merchant_id: String,
    /// The amount asked for.
    pub amount: Money,
    /// The merchant's reference.
    pub reference: Option<String>,
    /// The merchant's time (0: no clock).
    pub created_at: u32,
    /// Whether this request was paid already (paying again sends the same payment).
    pub already_paid: bool,
    /// What the wallet can spend in this currency now.
    pub available: Money,
}

/// A payment made.
#[derive(Clone, Debug, uniffi::Record)]
pub struct PaymentMade {
    /// Its id (hex).
    pub payment_id: String,
    /// The bytes for the merchant.
    pub bytes: Vec<u8>,
    /// The amount.
    pub amount: Money,
    /// The merchant's name.
    pub merchant_name: String,
    /// Whether it was made earlier for the same request.
    pub already_paid: bool,
    /// What is left in this currency.
    pub remaining: Money,
}

/// One voucher.
#[derive(Clone, Debug, uniffi::Record)]
pub struct Balance {
    /// Its id (hex).
    pub voucher_id: String,
    /// Its limit.
    pub limit: Money,
    /// What is left.
    pub remaining: Money,
    /// Payments made.
    pub payments: u32,
    /// Last second of validity.
    pub not_after: u32,
    /// Whether its window has closed.
    pub expired: bool,
}

/// One stored offline payment.
#[derive(Clone, Debug, uniffi::Record)]
pub struct OfflinePayment {
    /// Its id (hex).
    pub payment_id: String,
    /// The voucher (hex).
    pub voucher_id: String,
    /// Sequence number on the voucher.
    pub seq: u32,
    /// The amount.
    pub amount: Money,
    /// The merchant.
    pub merchant_id: String,
    /// When the customer made it.
    pub created_at: u32,
    /// The payment's bytes.
    pub bytes: Vec<u8>,
    /// The receipt, once held.
    pub receipt: Option<Vec<u8>>,
    /// When the merchant accepted it.
    pub accepted_at: Option<u32>,
    /// Whether the issuer has settled it.
    pub settled: bool,
}

/// A record the issuer refused.
#[derive(Clone, Debug, uniffi::Record)]
pub struct RefusedRecord {
    /// The SPEC code.
    pub code: u16,
    /// Its name.
    pub name: String,
}

/// A double spend the issuer proved.
#[derive(Clone, Debug, uniffi::Record)]
pub struct FraudProofInfo {
    /// The rule broken.
    pub kind: String,
    /// The voucher (hex).
    pub voucher_id: String,
    /// The two payments (hex).
    pub payments: Vec<String>,
    /// The proof's bytes.
    pub bytes: Vec<u8>,
}

/// What one sync did.
#[derive(Clone, Debug, uniffi::Record)]
pub struct SyncSummary {
    /// Records sent.
    pub records_sent: u32,
    /// Records that credited their payment now.
    pub credited: u32,
    /// Records waiting for their other half.
    pub pending: u32,
    /// Records already known.
    pub duplicates: u32,
    /// Records that revealed a double spend.
    pub conflicts: u32,
    /// Records refused.
    pub refused: Vec<RefusedRecord>,
    /// Double spends proved.
    pub fraud_proofs: Vec<FraudProofInfo>,
    /// Records newly acknowledged.
    pub acknowledged: u32,
    /// Whether a newer revocation list was installed.
    pub revocation_list_updated: bool,
    /// Tills' batches uploaded on their behalf.
    pub relayed_batches: u32,
}

/// A till's report waiting in a wallet to be shown to the till.
#[derive(Clone, Debug, uniffi::Record)]
pub struct RelayReport {
    /// The batch it answers (hex).
    pub batch_id: String,
    /// The issuer's signed report.
    pub report: Vec<u8>,
}

/// What a refresh found.
#[derive(Clone, Debug, uniffi::Record)]
pub struct RefreshSummary {
    /// Whether a newer revocation list was installed.
    pub revocation_list_updated: bool,
    /// The installed list's serial (0: none).
    pub revocation_serial: u64,
    /// Issuer keys shown but not trusted (hex); see `trust_issuer_key`.
    pub untrusted_keys: Vec<String>,
}

/// A payment accepted by a till.
#[derive(Clone, Debug, uniffi::Record)]
pub struct Accepted {
    /// Its id (hex).
    pub payment_id: String,
    /// The amount.
    pub amount: Money,
    /// The voucher (hex).
    pub voucher_id: String,
    /// Sequence number.
    pub seq: u32,
    /// The receipt for the customer.
    pub receipt: Vec<u8>,
}

impl From<sdk::SyncSummary> for SyncSummary {
    fn from(s: sdk::SyncSummary) -> Self {
        SyncSummary {
            records_sent: s.records_sent,
            credited: s.credited,
            pending: s.pending,
            duplicates: s.duplicates,
            conflicts: s.conflicts,
            refused: s
                .refused
                .into_iter()
                .map(|r| RefusedRecord {
                    code: r.code,
                    name: r.name,
                })
                .collect(),
            fraud_proofs: s
                .fraud_proofs
                .into_iter()
                .map(|p| FraudProofInfo {
                    kind: p.kind,
                    voucher_id: p.voucher_id,
                    payments: p.payments.to_vec(),
                    bytes: p.bytes,
                })
                .collect(),
            acknowledged: s.acknowledged,
            revocation_list_updated: s.revocation_list_updated,
            relayed_batches: s.relayed_batches,
        }
    }
}

impl From<sdk::RefreshSummary> for RefreshSummary {
    fn from(r: sdk::RefreshSummary) -> Self {
        RefreshSummary {
            revocation_list_updated: r.revocation_list_updated,
            revocation_serial: r.revocation_serial,
            untrusted_keys: r.untrusted_keys,
        }
    }
}

impl From<sdk::OfflinePayment> for OfflinePayment {
    fn from(p: sdk::OfflinePayment) -> Self {
        OfflinePayment {
            payment_id: p.payment_id,
            voucher_id: p.voucher_id,
            seq: p.seq,
            amount: p.amount.into(),
            merchant_id: p.merchant_id,
            created_at: p.created_at,
            bytes: p.bytes,
            receipt: p.receipt,
            accepted_at: p.accepted_at,
            settled: p.settled,
        }
    }
}

/// A customer's wallet (see `offpay_sdk::CustomerWallet`).
#[derive(Debug, uniffi::Object)]
pub struct CustomerWallet(sdk::CustomerWallet);

#[uniffi::export]
impl CustomerWallet {
    /// **Online.** Creates a wallet in the new directory `dir`; with `signer`, the app keeps
    /// the holder key.
    #[uniffi::constructor]
    pub fn create(
        dir: String,
        config: Config,
        signer: Option<Arc<dyn HolderSigner>>,
    ) -> Result<Arc<Self>> {
        let c = self::config(config, signer);
        Ok(Arc::new(Self(sdk::CustomerWallet::create(
            Path::new(&dir),
            c,
        )?)))
    }

    /// Opens the wallet in `dir` (with the signer it was created with, if any).
    #[uniffi::constructor]
    pub fn open(
        dir: String,
        config: Config,
        signer: Option<Arc<dyn HolderSigner>>,
    ) -> Result<Arc<Self>> {
        let c = self::config(config, signer);
        Ok(Arc::new(Self(sdk::CustomerWallet::open(
            Path::new(&dir),
            c,
        )?)))
    }

    /// The holder key's public half.
    pub fn holder_key(&self) -> Vec<u8> {
        self.0.holder_key().to_vec()
    }

    /// **Online.** Reserves `amount` on `instrument` and installs the voucher.
    pub fn pre_authorize_instrument(
        &self,
        instrument: String,
        credential: String,
        amount: Money,
    ) -> Result<Authorization> {
        let a = self
            .0
            .pre_authorize_instrument(&instrument, &credential, amount.try_into()?)?;
        Ok(Authorization {
            voucher_id: a.voucher_id,
            amount: a.amount.into(),
            not_before: a.not_before,
            not_after: a.not_after,
            max_single: a.max_single.into(),
            max_payments: a.max_payments,
        })
    }

    /// Checks a payment request and says what to show before approval. Changes nothing.
    pub fn review(&self, request: Vec<u8>) -> Result<PaymentReview> {
        let r = self.0.review(&request)?;
        Ok(PaymentReview {
            merchant_name: r.merchant_name,
            merchant_id: r.merchant_id,
            amount: r.amount.into(),
            reference: r.reference,
            created_at: r.created_at,
            already_paid: r.already_paid,
            available: r.available.into(),
        })
    }

    /// Pays a request; the payment is stored before it is returned.
    pub fn pay(&self, request: Vec<u8>) -> Result<PaymentMade> {
        let p = self.0.pay(&request)?;
        Ok(PaymentMade {
            payment_id: p.payment_id,
            bytes: p.bytes,
            amount: p.amount.into(),
            merchant_name: p.merchant_name,
            already_paid: p.already_paid,
            remaining: p.remaining.into(),
        })
    }

    /// Stores a merchant's receipt; returns the payment id.
    pub fn receive_receipt(&self, receipt: Vec<u8>) -> Result<String> {
        Ok(self.0.receive_receipt(&receipt)?)
    }

    /// Every payment made, with receipt and settlement state.
    pub fn fetch_offline_payments(&self) -> Vec<OfflinePayment> {
        self.0
            .fetch_offline_payments()
            .into_iter()
            .map(Into::into)
            .collect()
    }

    /// The vouchers and what is left.
    pub fn balances(&self) -> Result<Vec<Balance>> {
        Ok(self
            .0
            .balances()?
            .into_iter()
            .map(|b| Balance {
                voucher_id: b.voucher_id,
                limit: b.limit.into(),
                remaining: b.remaining.into(),
                payments: b.payments,
                not_after: b.not_after,
                expired: b.expired,
            })
            .collect())
    }

    /// What can be spent in `currency` now.
    pub fn available(&self, currency: String) -> Result<Money> {
        Ok(self.0.available(&currency)?.into())
    }

    /// **Online.** Syncs payments and receipts with the issuer.
    pub fn sync_payments(&self) -> Result<SyncSummary> {
        Ok(self.0.sync_payments()?.into())
    }

    /// **Online.** Installs the newest revocation list.
    pub fn refresh(&self) -> Result<RefreshSummary> {
        Ok(self.0.refresh()?.into())
    }

    /// Trusts one more issuer key (hex).
    pub fn trust_issuer_key(&self, key: String, not_before: u32, not_after: u32) -> Result<()> {
        Ok(self.0.trust_issuer_key(&key, not_before, not_after)?)
    }

    /// Keeps a till's sync batch to upload with the next sync; returns its id.
    pub fn carry_batch(&self, batch: Vec<u8>) -> Result<String> {
        Ok(self.0.carry_batch(&batch)?)
    }

    /// The issuer's reports on carried batches, to show to their tills.
    pub fn relay_reports(&self) -> Result<Vec<RelayReport>> {
        Ok(self
            .0
            .relay_reports()?
            .into_iter()
            .map(|r| RelayReport {
                batch_id: r.batch_id,
                report: r.report,
            })
            .collect())
    }

    /// Forgets a carried batch and its report.
    pub fn forget_relay(&self, batch_id: String) -> Result<()> {
        Ok(self.0.forget_relay(&batch_id)?)
    }
}

/// A merchant's till (see `offpay_sdk::MerchantTill`).
#[derive(Debug, uniffi::Object)]
pub struct MerchantTill(sdk::MerchantTill);

/// A till being set up: send `merchant_key()` for certification, then `finish`.
#[derive(uniffi::Object)]
pub struct TillEnrollment(Mutex<sdk::TillEnrollment>, [u8; 32]);

#[uniffi::export]
impl TillEnrollment {
    /// **Online.** Starts a till in the new directory `dir`.
    #[uniffi::constructor]
    pub fn start(dir: String, config: Config) -> Result<Arc<Self>> {
        let e = sdk::TillEnrollment::start(Path::new(&dir), self::config(config, None))?;
        let key = e.merchant_key();
        Ok(Arc::new(Self(Mutex::new(e), key)))
    }

    /// The merchant key to certify.
    pub fn merchant_key(&self) -> Vec<u8> {
        self.1.to_vec()
    }

    /// Installs the certificate and opens the till; a refused certificate changes nothing.
    pub fn finish(&self, certificate: Vec<u8>) -> Result<Arc<MerchantTill>> {
        let till = locked(&self.0).finish(&certificate)?;
        Ok(Arc::new(MerchantTill(till)))
    }
}

#[uniffi::export]
impl MerchantTill {
    /// Opens the till in `dir`.
    #[uniffi::constructor]
    pub fn open(dir: String, config: Config) -> Result<Arc<Self>> {
        Ok(Arc::new(Self(sdk::MerchantTill::open(
            Path::new(&dir),
            self::config(config, None),
        )?)))
    }

    /// The merchant id.
    pub fn merchant_id(&self) -> String {
        self.0.merchant_id()
    }

    /// The certified name.
    pub fn merchant_name(&self) -> String {
        self.0.merchant_name()
    }

    /// Makes a signed payment request.
    pub fn create_request(&self, amount: Money, reference: Option<String>) -> Result<Vec<u8>> {
        Ok(self
            .0
            .create_request(amount.try_into()?, reference.as_deref())?)
    }

    /// Makes a request and draws it as one QR code (PNG).
    pub fn request_qr(&self, amount: Money, reference: Option<String>) -> Result<Vec<u8>> {
        Ok(self
            .0
            .request_qr(amount.try_into()?, reference.as_deref())?)
    }

    /// Checks a payment offline; returns the receipt or raises a refusal with its SPEC code.
    pub fn accept(&self, payment: Vec<u8>) -> Result<Accepted> {
        let a = self.0.accept(&payment)?;
        Ok(Accepted {
            payment_id: a.payment_id,
            amount: a.amount.into(),
            voucher_id: a.voucher_id,
            seq: a.seq,
            receipt: a.receipt,
        })
    }

    /// Every payment accepted, with settlement state.
    pub fn fetch_offline_payments(&self) -> Vec<OfflinePayment> {
        self.0
            .fetch_offline_payments()
            .into_iter()
            .map(Into::into)
            .collect()
    }

    /// **Online.** Syncs with the issuer.
    pub fn sync_payments(&self) -> Result<SyncSummary> {
        Ok(self.0.sync_payments()?.into())
    }

    /// **Online.** Installs the newest revocation list.
    pub fn refresh(&self) -> Result<RefreshSummary> {
        Ok(self.0.refresh()?.into())
    }

    /// Trusts one more issuer key (hex).
    pub fn trust_issuer_key(&self, key: String, not_before: u32, not_after: u32) -> Result<()> {
        Ok(self.0.trust_issuer_key(&key, not_before, not_after)?)
    }

    /// The till's sync batch, or nothing when all is acknowledged.
    pub fn relay_batch(&self) -> Result<Option<Vec<u8>>> {
        Ok(self.0.relay_batch()?)
    }

    /// The till's sync batch as `count` animated QR frame texts.
    pub fn relay_frames(&self, count: u32) -> Result<Vec<String>> {
        Ok(self.0.relay_frames(count as usize)?)
    }

    /// Applies an issuer's report a phone carried back; returns records acknowledged.
    pub fn receive_report(&self, report: Vec<u8>) -> Result<u32> {
        Ok(self.0.receive_report(&report)?)
    }
}

/// `message` as `count` animated QR frame texts.
#[uniffi::export]
pub fn qr_animate(message: Vec<u8>, count: u32) -> Result<Vec<String>> {
    Ok(sdk::qr::animate(&message, count as usize)?)
}

/// How many frames `message` is cut into (the fewest a receiver needs).
#[uniffi::export]
pub fn qr_fragments(message: Vec<u8>) -> Result<u32> {
    Ok(u32::try_from(sdk::qr::fragments(&message)?).unwrap_or(u32::MAX))
}

/// One frame's text drawn as a PNG image.
#[uniffi::export]
pub fn qr_text_png(text: String) -> Result<Vec<u8>> {
    Ok(sdk::qr::text_png(&text)?)
}

/// Reads a message from QR frames as a camera delivers them.
#[derive(Debug, uniffi::Object)]
pub struct QrReceiver(Mutex<sdk::qr::Receiver>);

#[uniffi::export]
impl QrReceiver {
    /// A new receiver.
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        Arc::new(Self(Mutex::new(sdk::qr::Receiver::new())))
    }

    /// Takes one frame's text; the message once complete.
    pub fn receive_text(&self, text: String) -> Result<Option<Vec<u8>>> {
        Ok(self.lock().receive_text(&text)?)
    }

    /// Takes one camera image; the message once complete.
    pub fn receive_image(&self, image: Vec<u8>) -> Result<Option<Vec<u8>>> {
        Ok(self.lock().receive_image(&image)?)
    }
}

impl QrReceiver {
    fn lock(&self) -> std::sync::MutexGuard<'_, sdk::qr::Receiver> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// How a BLE session ended (see `offpay_sdk::BleOutcome`).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum BleOutcome {
    /// Paid (customer) or accepted (till).
    Completed {
        /// The payment's id (hex).
        payment_id: String,
    },
    /// This side refused; nothing was paid or stored.
    Refused {
        /// The SPEC code.
        code: u16,
        /// Its name.
        name: String,
    },
    /// The other side refused.
    RefusedByPeer {
        /// The SPEC code.
        code: u16,
        /// Its name.
        name: String,
    },
    /// The till's receipt did not verify; the payment stays stored.
    BadReceipt {
        /// The SPEC code.
        code: u16,
        /// Its name.
        name: String,
    },
    /// The session failed.
    Failed {
        /// The SPEC code.
        code: u16,
        /// Its name.
        name: String,
    },
}

impl From<sdk::BleOutcome> for BleOutcome {
    fn from(o: sdk::BleOutcome) -> Self {
        use sdk::BleOutcome as O;
        match o {
            O::Completed { payment_id } => Self::Completed { payment_id },
            O::Refused { code, name } => Self::Refused { code, name },
            O::RefusedByPeer { code, name } => Self::RefusedByPeer { code, name },
            O::BadReceipt { code, name } => Self::BadReceipt { code, name },
            O::Failed { code, name } => Self::Failed { code, name },
        }
    }
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A till's side of one BLE session (see `offpay_sdk::TillBleSession`).
#[derive(Debug, uniffi::Object)]
pub struct TillBleSession(Mutex<sdk::TillBleSession>);

/// A wallet's side of one BLE session (see `offpay_sdk::WalletBleSession`).
#[derive(Debug, uniffi::Object)]
pub struct WalletBleSession(Mutex<sdk::WalletBleSession>);

#[uniffi::export]
impl MerchantTill {
    /// Makes a request and a BLE session that serves it.
    pub fn ble_session(
        &self,
        amount: Money,
        reference: Option<String>,
    ) -> Result<Arc<TillBleSession>> {
        let s = self
            .0
            .ble_session(amount.try_into()?, reference.as_deref())?;
        Ok(Arc::new(TillBleSession(Mutex::new(s))))
    }
}

#[uniffi::export]
impl TillBleSession {
    /// The engagement bytes to show as a QR code.
    pub fn engagement(&self) -> Vec<u8> {
        locked(&self.0).engagement()
    }

    /// The engagement as a QR code (PNG).
    pub fn engagement_qr(&self) -> Result<Vec<u8>> {
        Ok(locked(&self.0).engagement_qr()?)
    }

    /// The service UUID to advertise.
    pub fn service_uuid(&self) -> Vec<u8> {
        locked(&self.0).service_uuid().to_vec()
    }

    /// Sets the negotiated ATT MTU.
    pub fn set_mtu(&self, mtu: u16) -> Result<()> {
        Ok(locked(&self.0).set_mtu(mtu)?)
    }

    /// The next chunk to notify, if any.
    pub fn poll_transmit(&self) -> Option<Vec<u8>> {
        locked(&self.0).poll_transmit()
    }

    /// Handles one Client2Server write.
    pub fn receive(&self, till: Arc<MerchantTill>, chunk: Vec<u8>) -> Result<()> {
        Ok(locked(&self.0).receive(&till.0, &chunk)?)
    }

    /// How the session ended, once it has.
    pub fn outcome(&self) -> Option<BleOutcome> {
        locked(&self.0).outcome().map(Into::into)
    }

    /// Whether the session is over and everything was sent.
    pub fn is_finished(&self) -> bool {
        locked(&self.0).is_finished()
    }
}

#[uniffi::export]
impl CustomerWallet {
    /// A BLE session with the till whose engagement was scanned.
    pub fn ble_session(&self, engagement: Vec<u8>) -> Result<Arc<WalletBleSession>> {
        let s = self.0.ble_session(&engagement)?;
        Ok(Arc::new(WalletBleSession(Mutex::new(s))))
    }
}

#[uniffi::export]
impl WalletBleSession {
    /// The till's service UUID.
    pub fn service_uuid(&self) -> Vec<u8> {
        locked(&self.0).service_uuid().to_vec()
    }

    /// Sets the negotiated ATT MTU.
    pub fn set_mtu(&self, mtu: u16) -> Result<()> {
        Ok(locked(&self.0).set_mtu(mtu)?)
    }

    /// Starts the exchange (queues the hello).
    pub fn start(&self) -> Result<()> {
        Ok(locked(&self.0).start()?)
    }

    /// The next chunk to write, if any.
    pub fn poll_transmit(&self) -> Option<Vec<u8>> {
        locked(&self.0).poll_transmit()
    }

    /// Handles one Server2Client notification.
    pub fn receive(&self, wallet: Arc<CustomerWallet>, chunk: Vec<u8>) -> Result<()> {
        Ok(locked(&self.0).receive(&wallet.0, &chunk)?)
    }

    /// The request waiting for approval.
    pub fn pending_request(&self) -> Option<Vec<u8>> {
        locked(&self.0).pending_request()
    }

    /// Pays the pending request.
    pub fn approve(&self, wallet: Arc<CustomerWallet>) -> Result<Option<BleOutcome>> {
        Ok(locked(&self.0).approve(&wallet.0)?.map(Into::into))
    }

    /// Declines the pending request.
    pub fn decline(&self) -> Result<BleOutcome> {
        Ok(locked(&self.0).decline()?.into())
    }

    /// How the session ended, once it has.
    pub fn outcome(&self) -> Option<BleOutcome> {
        locked(&self.0).outcome().map(Into::into)
    }

    /// Whether the session is over and everything was sent.
    pub fn is_finished(&self) -> bool {
        locked(&self.0).is_finished()
    }
}
