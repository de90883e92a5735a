//! Settlement with its state in a database, whatever the backend: load the rows a batch
//! touches into a fresh [`Settlement`], ingest there, hand the [`Change`](offpay_protocol::Change)s back to be written
//! in the same transaction. The rules are `offpay-protocol`'s alone; nothing here decides an
//! outcome.

use crate::error::Failure;
use offpay_protocol::settlement::Ingested;
use offpay_protocol::{
    MerchantId, Needs, PaymentId, PublicKey, RecordId, Settlement, Timestamp, TrustStore,
    VoucherId, VoucherSummary, decode_signed,
};
use std::collections::BTreeSet;

/// How many issuer keys the service's trust store holds.
pub const TRUST_KEYS: usize = 8;
/// The service's trust store: its own keys with their windows.
pub type Trust = TrustStore<TRUST_KEYS>;

/// A payment as stored: its bytes and whether it was credited.
pub type StoredPayment = (Vec<u8>, bool);

/// A voucher's settled state, with the SHA-256 of its bytes when this issuer issued it.
pub type StoredVoucher = (VoucherSummary, Option<[u8; 32]>);

/// The rows settlement reads, inside one transaction of a backend. Each method reads a set
/// of rows in one query; ids that name no row are left out of the answer.
pub trait StateReader {
    /// Vouchers' settled state.
    fn vouchers(&mut self, ids: &[VoucherId]) -> Result<Vec<StoredVoucher>, Failure>;
    /// Recorded payments by id.
    fn payments(&mut self, ids: &[PaymentId]) -> Result<Vec<StoredPayment>, Failure>;
    /// Recorded payments by (voucher, sequence number).
    fn payments_at(
        &mut self,
        positions: &[(VoucherId, u32)],
    ) -> Result<Vec<StoredPayment>, Failure>;
    /// The recorded receipts naming these payments: (record id, payment, merchant, accepted at).
    fn receipts_of(
        &mut self,
        payments: &[PaymentId],
    ) -> Result<Vec<(RecordId, PaymentId, MerchantId, Timestamp)>, Failure>;
    /// Which of these receipt records are recorded.
    fn records(&mut self, ids: &[RecordId]) -> Result<Vec<RecordId>, Failure>;
    /// Registered merchants' keys.
    fn merchant_keys(
        &mut self,
        ids: &[MerchantId],
    ) -> Result<Vec<(MerchantId, PublicKey)>, Failure>;
    /// The proven pairs these payments are part of.
    fn proven_with(
        &mut self,
        payments: &[PaymentId],
    ) -> Result<Vec<(PaymentId, PaymentId)>, Failure>;
}

/// Builds a `Settlement` holding exactly the rows `batch` needs.
pub fn load(
    reader: &mut dyn StateReader,
    trust: &Trust,
    grace: u32,
    batch: &[u8],
) -> Result<Settlement<TRUST_KEYS>, Failure> {
    let mut s = Settlement::new(trust.clone(), grace);
    let needs: Needs = Settlement::<TRUST_KEYS>::needs(batch)?;
    let ids: Vec<PaymentId> = needs.payments.iter().copied().collect();
    let named = reader.payments(&ids)?;
    let mut vouchers: BTreeSet<VoucherId> = needs.vouchers.clone();
    for p in &named {
        vouchers.insert(voucher_of(&p.0)?);
    }
    let vouchers: Vec<VoucherId> = vouchers.into_iter().collect();
    let mut loaded = BTreeSet::new();
    for (summary, hash) in reader.vouchers(&vouchers)? {
        s.load_voucher(&summary);
        if let Some(h) = hash {
            s.load_verified_voucher(h);
            s.load_voucher_hash(summary.id, h);
        }
        loaded.insert(summary.id);
    }
    let positions: Vec<(VoucherId, u32)> = needs
        .positions
        .iter()
        .filter(|(v, _)| loaded.contains(v))
        .copied()
        .collect();
    let mut payments: BTreeSet<PaymentId> = needs.payments.clone();
    for (bytes, credited) in reader.payments_at(&positions)?.into_iter().chain(named) {
        payments.insert(s.load_payment(&bytes, credited)?);
    }
    let payments: Vec<PaymentId> = payments.into_iter().collect();
    for (record, payment, merchant, at) in reader.receipts_of(&payments)? {
        s.load_receipt(record, payment, merchant, at);
    }
    for (a, b) in reader.proven_with(&payments)? {
        s.load_proven(a, b);
    }
    let records: Vec<RecordId> = needs.records.iter().copied().collect();
    for r in reader.records(&records)? {
        s.load_record(r);
    }
    let merchants: Vec<MerchantId> = needs.merchants.iter().copied().collect();
    for (m, k) in reader.merchant_keys(&merchants)? {
        s.load_merchant(m, k);
    }
    Ok(s)
}

fn voucher_of(payment: &[u8]) -> Result<VoucherId, Failure> {
    Ok(decode_signed::<offpay_protocol::msg::Payment<'_>>(payment)?
        .voucher
        .id)
}

/// Ingests `batch` against the rows `reader` holds: the outcome and the changes to write.
pub fn ingest(
    reader: &mut dyn StateReader,
    trust: &Trust,
    grace: u32,
    batch: &[u8],
    now: Timestamp,
) -> Result<Ingested, Failure> {
    let mut s = load(reader, trust, grace, batch)?;
    Ok(s.ingest(batch, now)?)
}

/// Closes the given open vouchers by settlement's rule at `now`: those it closes, with what
/// was released.
pub fn close(
    trust: &Trust,
    grace: u32,
    open: &[VoucherSummary],
    now: Timestamp,
) -> Vec<VoucherSummary> {
    let mut s = Settlement::<TRUST_KEYS>::new(trust.clone(), grace);
    for v in open {
        s.load_voucher(v);
    }
    s.close_expired(now)
}
