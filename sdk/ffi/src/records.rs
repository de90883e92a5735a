//! The records the objects return, mirrored from the SDK's with UniFFI's types.

use crate::Money;
use offpay_sdk as sdk;

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
