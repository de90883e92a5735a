//! Settlement with its state in a database, whatever the backend: load the rows a batch
//! touches into a fresh [`Settlement`], ingest there, hand the [`Change`]s back to be written
//! in the same transaction. The rules are `offpay-protocol`'s alone; nothing here decides an
//! outcome.

use crate::error::Failure;
use offpay_protocol::settlement::Ingested;
use offpay_protocol::{
    Change, MerchantId, Needs, PaymentId, PublicKey, RecordId, Settlement, Timestamp, TrustStore,
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

/// The rows settlement reads, inside one transaction of a backend.
pub trait StateReader {
    /// A voucher's settled state, and the SHA-256 of its bytes when this issuer issued it
    /// (so its signature need not be checked again).
    fn voucher(&mut self, id: &VoucherId) -> Result<Option<StoredVoucher>, Failure>;
    /// A recorded payment by id.
    fn payment(&mut self, id: &PaymentId) -> Result<Option<StoredPayment>, Failure>;
    /// The recorded payments of a voucher at one sequence number.
    fn payments_at(&mut self, voucher: &VoucherId, seq: u32)
    -> Result<Vec<StoredPayment>, Failure>;
    /// The recorded receipts naming a payment: (record id, merchant, accepted at).
    fn receipts_of(
        &mut self,
        payment: &PaymentId,
    ) -> Result<Vec<(RecordId, MerchantId, Timestamp)>, Failure>;
    /// Whether a receipt record is recorded.
    fn has_record(&mut self, record: &RecordId) -> Result<bool, Failure>;
    /// A registered merchant's key.
    fn merchant_key(&mut self, id: &MerchantId) -> Result<Option<PublicKey>, Failure>;
    /// The proven pairs a payment is part of.
    fn proven_with(&mut self, payment: &PaymentId) -> Result<Vec<(PaymentId, PaymentId)>, Failure>;
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
    let mut vouchers: BTreeSet<VoucherId> = needs.vouchers.clone();
    let mut named = Vec::new();
    for pid in &needs.payments {
        if let Some(p) = reader.payment(pid)? {
            vouchers.insert(voucher_of(&p.0)?);
            named.push(p);
        }
    }
    let mut loaded_vouchers = BTreeSet::new();
    for v in &vouchers {
        if let Some((summary, hash)) = reader.voucher(v)? {
            s.load_voucher(&summary);
            if let Some(h) = hash {
                s.load_verified_voucher(h);
            }
            loaded_vouchers.insert(*v);
        }
    }
    let mut payments: BTreeSet<PaymentId> = needs.payments.clone();
    for (v, seq) in &needs.positions {
        if loaded_vouchers.contains(v) {
            for (bytes, credited) in reader.payments_at(v, *seq)? {
                payments.insert(s.load_payment(&bytes, credited)?);
            }
        }
    }
    for (bytes, credited) in named {
        s.load_payment(&bytes, credited)?;
    }
    for pid in &payments {
        for (record, merchant, at) in reader.receipts_of(pid)? {
            s.load_receipt(record, *pid, merchant, at);
        }
        for (a, b) in reader.proven_with(pid)? {
            s.load_proven(a, b);
        }
    }
    for r in &needs.records {
        if reader.has_record(r)? {
            s.load_record(*r);
        }
    }
    for m in &needs.merchants {
        if let Some(k) = reader.merchant_key(m)? {
            s.load_merchant(*m, k);
        }
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

/// The vouchers a list of changes touches (for locking and accounting).
pub fn touched(changes: &[Change]) -> BTreeSet<VoucherId> {
    changes
        .iter()
        .filter_map(|c| match c {
            Change::Voucher(v) => Some(v.id),
            _ => None,
        })
        .collect()
}
