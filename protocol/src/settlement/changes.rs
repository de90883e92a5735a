//! What ingesting a batch returns: its outcome, the changes to persist, the rows it reads.

use super::*;

/// The settled state of one voucher.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VoucherSummary {
    /// The voucher.
    pub id: VoucherId,
    /// Its currency.
    pub currency: Currency,
    /// Its limit.
    pub limit: Amount,
    /// First second of its validity window.
    pub not_before: Timestamp,
    /// Last second of its validity window.
    pub not_after: Timestamp,
    /// The total credited to merchants from it.
    pub credited: Amount,
    /// How much the credits exceed the limit (non-zero only after a double spend); the holder
    /// owes it, and the FraudProof is the evidence.
    pub overspend: Amount,
    /// Whether a FraudProof was found for it.
    pub fraud: bool,
    /// What was released back to the holder's instrument, once settlement closed.
    pub released: Option<Amount>,
}

/// The result of ingesting one batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ingested {
    /// SHA-256 of the batch.
    pub batch_id: [u8; 32],
    /// One entry per record, in batch order.
    pub entries: Vec<ReportEntry>,
    /// The FraudProof messages this batch revealed.
    pub proofs: Vec<Vec<u8>>,
    /// Every change this batch made to settlement's state, in the order it was made: what a
    /// ledger kept in a database writes, in the same transaction, to persist the batch.
    pub changes: Vec<Change>,
}

/// One change a batch made to settlement's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A verified payment was recorded (not yet credited).
    Payment {
        /// Its id (SHA-256 of `bytes`; also its record id).
        id: PaymentId,
        /// The voucher it is drawn on.
        voucher: VoucherId,
        /// Its sequence number.
        seq: u32,
        /// Its amount.
        amount: Amount,
        /// The merchant it pays.
        merchant: MerchantId,
        /// The payment as received.
        bytes: Vec<u8>,
    },
    /// A verified receipt was recorded.
    Receipt {
        /// Its record id (SHA-256 of `bytes`).
        record: RecordId,
        /// The payment it names.
        payment: PaymentId,
        /// The merchant that signed it.
        merchant: MerchantId,
        /// When the merchant accepted the payment.
        accepted_at: Timestamp,
        /// The receipt as received.
        bytes: Vec<u8>,
    },
    /// A payment was credited to its merchant.
    Credited {
        /// The payment.
        payment: PaymentId,
        /// Its voucher.
        voucher: VoucherId,
        /// The merchant credited.
        merchant: MerchantId,
        /// The currency.
        currency: Currency,
        /// The whole amount credited.
        amount: Amount,
        /// The part of `amount` beyond the voucher's limit (non-zero only after a double
        /// spend): the holder owes it.
        overspend: Amount,
    },
    /// A double spend was proven.
    Proof {
        /// The voucher whose holder signed both payments.
        voucher: VoucherId,
        /// Which rule the pair breaks.
        kind: FraudKind,
        /// The first payment of the pair.
        first: PaymentId,
        /// The second payment of the pair.
        second: PaymentId,
        /// The FraudProof message.
        bytes: Vec<u8>,
    },
    /// A voucher's settled state after this batch (one per voucher the batch changed, after
    /// every other change).
    Voucher(VoucherSummary),
}

/// The rows of settlement's state one batch reads: what a ledger kept in a database loads
/// into a fresh [`Settlement`] before ingesting the batch (see the module documentation).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// Vouchers the batch's payments are drawn on.
    pub vouchers: BTreeSet<VoucherId>,
    /// Payments by id: the batch's own and those its receipts name. Load each that is
    /// recorded, with its voucher, its receipts and the proofs it is part of.
    pub payments: BTreeSet<PaymentId>,
    /// Payments by position: for each payment of the batch, the recorded payments of its
    /// voucher at `seq - 1`, `seq` and `seq + 1`, with their receipts and proofs.
    pub positions: BTreeSet<(VoucherId, u32)>,
    /// Receipt records by id: load those recorded.
    pub records: BTreeSet<RecordId>,
    /// Merchants the batch names.
    pub merchants: BTreeSet<MerchantId>,
}

impl Ingested {
    /// Signs the report the sender gets back. At most
    /// [`MAX_REPORT_PROOFS`](crate::msg::sync::MAX_REPORT_PROOFS) proofs travel in it; all of
    /// them stay available from [`Settlement::proofs`].
    pub fn report<K: crate::crypto::Signer>(
        &self,
        issuer: &Issuer<K>,
        now: Timestamp,
    ) -> Result<Vec<u8>, Error> {
        let n = self.proofs.len().min(crate::msg::sync::MAX_REPORT_PROOFS);
        Ok(SyncReport::build(
            issuer,
            self.batch_id,
            now,
            &self.entries,
            self.proofs.get(..n).unwrap_or(&[]),
        )?)
    }
}
