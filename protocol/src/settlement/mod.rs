//! Settlement (SPEC §8.3, feature `alloc`): the issuer ingests sync batches from wallets and
//! merchants, credits each delivered payment exactly once, proves double spending, and releases
//! what is left of a voucher after its `not_after` plus the grace period.
//!
//! Ingesting is idempotent and per record: a record that fails any check is reported as
//! rejected with its SPEC code and changes nothing.
//!
//! ## State in a database
//!
//! A [`Settlement`] can hold every record it has seen (the in-memory form, for tests and
//! small users), or only what one batch touches: a service that keeps settlement's state in
//! database tables asks [`Settlement::needs`] which rows a batch reads, loads them into a fresh
//! `Settlement` with the `load_*` methods, ingests the batch there, and writes back the
//! [`Change`]s the ingest reports ([`Ingested::changes`]). The rules are the same code in both
//! forms; the outcome is the same as long as every row `needs` names is loaded.

use crate::codec::{
    Message, MessageType, SignedMessage, decode_signed, decode_unsigned, encode_unsigned,
};
use crate::crypto::{self, sha256};
use crate::error::{Error, Rejection, VerifyError};
use crate::issuer::Issuer;
use crate::msg::{
    FraudKind, FraudProof, MerchantCertificate, Outcome, Payment, Receipt, ReportEntry, SyncBatch,
    SyncReport, Voucher,
};
use crate::trust::TrustStore;
use crate::types::{
    Amount, Currency, HolderKey, MerchantId, PaymentId, PublicKey, RecordId, Timestamp, VoucherId,
};
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

mod batch;
mod changes;
mod state;

use batch::{batch_ok, signed_input};
pub use changes::{Change, Ingested, Needs, VoucherSummary};

/// The default grace period after a voucher's `not_after` during which its payments may still
/// be synced: 7 days.
pub const DEFAULT_GRACE_SECS: u32 = 7 * 24 * 3600;

#[derive(Clone, Debug)]
struct PaymentEntry {
    bytes: Vec<u8>,
    voucher: VoucherId,
    amount: Amount,
    merchant: MerchantId,
    created_at: Timestamp,
    credited: bool,
}

#[derive(Clone, Debug)]
struct VoucherLedger {
    currency: Currency,
    limit: Amount,
    not_before: Timestamp,
    not_after: Timestamp,
    credited: u64,
    by_seq: BTreeMap<u32, Vec<PaymentId>>,
    fraud: bool,
    released: Option<Amount>,
    /// SHA-256 of the voucher's bytes, when known: a payment drawn on other bytes under the
    /// same id is refused (§8.3 step 1).
    hash: Option<[u8; 32]>,
}

/// The issuer's settlement ledger (in memory; a deployment persists what it needs, as the CLI
/// does in SQLite).
#[derive(Clone, Debug)]
pub struct Settlement<const N: usize = 8> {
    trust: TrustStore<N>,
    grace: u32,
    merchants: BTreeMap<MerchantId, PublicKey>,
    payments: BTreeMap<PaymentId, PaymentEntry>,
    /// Verified receipts by (payment named, record id): the merchant that signed it and its
    /// accept time. A payment may have several; any one that qualifies credits it (§8.3).
    receipts: BTreeMap<(PaymentId, RecordId), (MerchantId, Timestamp)>,
    records: BTreeSet<RecordId>,
    vouchers: BTreeMap<VoucherId, VoucherLedger>,
    verified_vouchers: BTreeSet<[u8; 32]>,
    credits: BTreeMap<(MerchantId, Currency), u64>,
    proofs: Vec<Vec<u8>>,
    proven: BTreeSet<(PaymentId, PaymentId)>,
    batch_verification: bool,
    /// The changes of the ingest in progress.
    changes: Option<Vec<Change>>,
}

/// A payment that passed every check but the signatures, waiting for batch verification.
struct Candidate<'a> {
    index: usize,
    payment: crate::codec::Signed<'a, Payment<'a>>,
    id: PaymentId,
    /// SHA-256 of the payment's voucher bytes: how a verified voucher is remembered.
    voucher_hash: [u8; 32],
}

impl<const N: usize> Settlement<N> {
    /// A ledger trusting `trust`, with a grace period of `grace_secs` after each voucher's
    /// `not_after`.
    pub fn new(trust: TrustStore<N>, grace_secs: u32) -> Self {
        Settlement {
            trust,
            grace: grace_secs,
            merchants: BTreeMap::new(),
            payments: BTreeMap::new(),
            receipts: BTreeMap::new(),
            records: BTreeSet::new(),
            vouchers: BTreeMap::new(),
            verified_vouchers: BTreeSet::new(),
            credits: BTreeMap::new(),
            proofs: Vec::new(),
            proven: BTreeSet::new(),
            batch_verification: true,
            changes: None,
        }
    }

    /// Turns ed25519 batch verification on (the default) or off. Off, every signature is
    /// checked alone; the outcomes are identical, only the cost differs.
    pub fn set_batch_verification(&mut self, on: bool) {
        self.batch_verification = on;
    }

    /// Registers a merchant from its certificate (signed by a trusted issuer key).
    pub fn register_merchant(&mut self, certificate: &[u8]) -> Result<MerchantId, Error> {
        let c = decode_signed::<MerchantCertificate<'_>>(certificate)?;
        self.trust.verify(&c, &c.issuer_key_id, c.not_before)?;
        // Receipts are verified in batches: a key with a torsion component is refused (§7.1).
        if crypto::has_torsion(&c.merchant_key) {
            return Err(VerifyError::WeakKey.into());
        }
        self.merchants.insert(c.merchant_id, c.merchant_key);
        Ok(c.merchant_id)
    }

    fn deadline(&self, not_after: Timestamp) -> Timestamp {
        not_after.saturating_add(self.grace)
    }

    /// Ingests one sync batch at `now` (SPEC §8.3). A batch that does not decode is refused
    /// whole; otherwise every record gets its own outcome.
    // Every index into `outcomes` is a record's position in `records` (from `enumerate`, kept
    // in the candidates), and `outcomes` has one slot per record.
    #[allow(clippy::indexing_slicing)]
    pub fn ingest(&mut self, batch: &[u8], now: Timestamp) -> Result<Ingested, Error> {
        let b = decode_unsigned::<SyncBatch<'_>>(batch)?;
        let records: Vec<&[u8]> = b.records().collect();
        // Each record's SHA-256, computed once: its record id, and for a payment its id.
        let hashes: Vec<[u8; 32]> = records.iter().map(|r| sha256(r)).collect();
        let mut outcomes: Vec<Option<Outcome>> = alloc::vec![None; records.len()];
        let mut proofs = Vec::new();
        self.changes = Some(Vec::new());

        // 1. Every payment: structural and policy checks, then all signatures in one batch.
        let mut candidates: Vec<Candidate<'_>> = Vec::new();
        let mut in_batch: BTreeSet<PaymentId> = BTreeSet::new();
        // Payments of this batch that were refused: a receipt naming one is refused with it.
        let mut refused: BTreeMap<PaymentId, u16> = BTreeMap::new();
        for (index, (r, hash)) in records.iter().zip(&hashes).enumerate() {
            if MessageType::of(r) != Ok(MessageType::Payment) {
                continue;
            }
            let id = PaymentId(*hash);
            match self.check_payment(r, id, now) {
                Ok(Some(payment)) => {
                    if in_batch.insert(id) {
                        let voucher_hash = sha256(payment.voucher.bytes());
                        candidates.push(Candidate {
                            index,
                            payment,
                            id,
                            voucher_hash,
                        });
                    } else {
                        outcomes[index] = Some(Outcome::Duplicate);
                    }
                }
                Ok(None) => outcomes[index] = Some(Outcome::Duplicate),
                Err(e) => {
                    refused.insert(id, e.code());
                    outcomes[index] = Some(Outcome::Rejected(e.code()));
                }
            }
        }
        let verdicts = self.verify_signatures(&candidates);

        // 2. Record the verified payments, finding any double spend.
        let mut new_payments = Vec::new();
        for (c, verdict) in candidates.iter().zip(verdicts) {
            if let Err(e) = verdict {
                refused.insert(c.id, e.code());
                outcomes[c.index] = Some(Outcome::Rejected(e.code()));
                continue;
            }
            // One id, one voucher: chains, limits and credits are kept per id, and a
            // FraudProof needs identical voucher bytes, so a genuine voucher whose bytes
            // differ from those recorded under its id (earlier, or in this batch) is refused.
            if let Some(h) = self
                .vouchers
                .get(&c.payment.voucher.id)
                .and_then(|l| l.hash)
                && h != c.voucher_hash
            {
                let code = Error::from(Rejection::ChainInconsistent).code();
                refused.insert(c.id, code);
                outcomes[c.index] = Some(Outcome::Rejected(code));
                continue;
            }
            let found = self.record_payment(&c.payment, c.id)?;
            self.credit(c.id);
            if !found.is_empty() {
                outcomes[c.index] = Some(Outcome::Conflict);
            }
            proofs.extend(found);
            new_payments.push((c.index, c.id));
        }

        // 3. Receipts: checks, then all signatures in one batch, then recording (which credits
        //    the payments they name).
        let mut receipts: Vec<(usize, Receipt, RecordId)> = Vec::new();
        let mut jobs: Vec<(usize, Vec<u8>, [u8; 64], PublicKey)> = Vec::new();
        for (index, (r, hash)) in records.iter().zip(&hashes).enumerate() {
            match MessageType::of(r) {
                Ok(MessageType::Payment) => {}
                Ok(MessageType::Receipt) => {
                    match self.check_receipt(r, RecordId(*hash), now, &refused) {
                        Ok(Some((signed, key))) => {
                            jobs.push((
                                index,
                                signed_input::<Receipt>(signed.signed_bytes()),
                                *signed.signature(),
                                key,
                            ));
                            receipts.push((index, *signed.value(), RecordId(*hash)));
                        }
                        Ok(None) => outcomes[index] = Some(Outcome::Duplicate),
                        Err(e) => outcomes[index] = Some(Outcome::Rejected(e.code())),
                    }
                }
                Ok(_) => {
                    outcomes[index] = Some(Outcome::Rejected(
                        crate::error::DecodeError::WrongType.code(),
                    ))
                }
                Err(e) => outcomes[index] = Some(Outcome::Rejected(e.code())),
            }
        }
        let all_good = self.batch_verification && batch_ok(&jobs);
        let mut new_receipts = Vec::new();
        for ((index, receipt, rid), (_, msg, sig, key)) in receipts.iter().zip(&jobs) {
            if !all_good && let Err(e) = crypto::verify(key, &[], msg, sig) {
                outcomes[*index] = Some(Outcome::Rejected(e.code()));
                continue;
            }
            let bytes = records.get(*index).copied().unwrap_or(&[]);
            if self.record_receipt(receipt, *rid, bytes) {
                new_receipts.push((*index, receipt.payment_id));
            } else {
                outcomes[*index] = Some(Outcome::Duplicate);
            }
        }

        // 4. What each new record led to.
        let credited = |s: &Self, pid: &PaymentId| s.payments.get(pid).is_some_and(|p| p.credited);
        for (index, pid) in new_payments.iter().chain(new_receipts.iter()) {
            if outcomes[*index].is_none() {
                outcomes[*index] = Some(if credited(self, pid) {
                    Outcome::Credited
                } else {
                    Outcome::Pending
                });
            }
        }
        let entries = hashes
            .iter()
            .zip(outcomes)
            .map(|(hash, o)| ReportEntry {
                record: RecordId(*hash),
                outcome: o.unwrap_or(Outcome::Pending),
            })
            .collect();
        let mut changes = self.changes.take().unwrap_or_default();
        let touched: BTreeSet<VoucherId> = changes
            .iter()
            .filter_map(|c| match c {
                Change::Payment { voucher, .. }
                | Change::Credited { voucher, .. }
                | Change::Proof { voucher, .. } => Some(*voucher),
                _ => None,
            })
            .collect();
        changes.extend(
            touched
                .iter()
                .filter_map(|v| self.voucher(v))
                .map(Change::Voucher),
        );
        Ok(Ingested {
            batch_id: sha256(batch),
            entries,
            proofs,
            changes,
        })
    }

    fn log(&mut self, change: Change) {
        if let Some(c) = self.changes.as_mut() {
            c.push(change);
        }
    }

    /// Checks one payment record, whose id (SHA-256 of `bytes`) is `id`, up to (not including)
    /// its signatures. `Ok(None)`: already known.
    fn check_payment<'a>(
        &self,
        bytes: &'a [u8],
        id: PaymentId,
        now: Timestamp,
    ) -> Result<Option<crate::codec::Signed<'a, Payment<'a>>>, Error> {
        let p = decode_signed::<Payment<'_>>(bytes)?;
        if self.payments.contains_key(&id) {
            return Ok(None);
        }
        let v = &p.voucher;
        self.trust.issuer_key(&v.issuer_key_id, v.not_before)?;
        if !self.merchants.contains_key(&p.merchant_id) {
            return Err(Rejection::UnknownMerchant.into());
        }
        if p.amount > v.policy.max_single || p.seq > v.policy.max_payments {
            return Err(Rejection::OverPolicy.into());
        }
        if p.cumulative > v.limit {
            return Err(Rejection::OverLimit.into());
        }
        if now > self.deadline(v.not_after) {
            return Err(Rejection::SettlementClosed.into());
        }
        Ok(Some(p))
    }

    /// Stores a verified payment and returns the FraudProofs it reveals.
    fn record_payment(
        &mut self,
        p: &crate::codec::Signed<'_, Payment<'_>>,
        id: PaymentId,
    ) -> Result<Vec<Vec<u8>>, Error> {
        let v = &p.voucher;
        let ledger = self.vouchers.entry(v.id).or_insert_with(|| VoucherLedger {
            currency: v.currency,
            limit: v.limit,
            not_before: v.not_before,
            not_after: v.not_after,
            credited: 0,
            by_seq: BTreeMap::new(),
            fraud: false,
            released: None,
            hash: Some(sha256(v.bytes())),
        });
        let mut pairs: Vec<(FraudKind, PaymentId, PaymentId)> = Vec::new();
        let at = |seq: Option<u32>| {
            seq.and_then(|s| ledger.by_seq.get(&s))
                .cloned()
                .unwrap_or_default()
        };
        for other in at(Some(p.seq)) {
            pairs.push((FraudKind::SameSequence, other.min(id), other.max(id)));
        }
        for before in at(p.seq.checked_sub(1)) {
            pairs.push((FraudKind::BrokenLink, before, id));
        }
        for after in at(p.seq.checked_add(1)) {
            pairs.push((FraudKind::BrokenLink, id, after));
        }
        ledger.by_seq.entry(p.seq).or_default().push(id);
        self.payments.insert(
            id,
            PaymentEntry {
                bytes: p.bytes().to_vec(),
                voucher: v.id,
                amount: p.amount,
                merchant: p.merchant_id,
                created_at: p.created_at,
                credited: false,
            },
        );
        self.records.insert(RecordId(id.0));
        self.log(Change::Payment {
            id,
            voucher: v.id,
            seq: p.seq,
            amount: p.amount,
            merchant: p.merchant_id,
            bytes: p.bytes().to_vec(),
        });
        // One proof per new payment is enough evidence; the first rule it breaks is used.
        let mut found = Vec::new();
        for (kind, a, b) in pairs {
            if let Some(proof) = self.prove(kind, a, b)? {
                found.push(proof);
                break;
            }
        }
        if !found.is_empty()
            && let Some(l) = self.vouchers.get_mut(&v.id)
        {
            l.fraud = true;
        }
        self.proofs.extend(found.iter().cloned());
        Ok(found)
    }

    /// Builds the FraudProof for a pair if the pair really breaks a rule and is not yet proven.
    fn prove(
        &mut self,
        kind: FraudKind,
        a: PaymentId,
        b: PaymentId,
    ) -> Result<Option<Vec<u8>>, Error> {
        if self.proven.contains(&(a, b)) {
            return Ok(None);
        }
        let (Some(pa), Some(pb)) = (self.payments.get(&a), self.payments.get(&b)) else {
            return Ok(None);
        };
        let first = decode_signed::<Payment<'_>>(&pa.bytes)?;
        let second = decode_signed::<Payment<'_>>(&pb.bytes)?;
        let kind = match kind {
            FraudKind::BrokenLink if second.prev == first.id().link() => {
                FraudKind::CumulativeMismatch
            }
            k => k,
        };
        let proof = FraudProof {
            kind,
            first,
            second,
        };
        if proof.validate().is_err() {
            return Ok(None); // an honest pair: no rule broken
        }
        let mut buf = alloc::vec![0u8; FraudProof::MAX_LEN];
        let n = encode_unsigned(&proof, &mut buf)?;
        buf.truncate(n);
        self.proven.insert((a, b));
        self.log(Change::Proof {
            voucher: proof.first.voucher.id,
            kind,
            first: a,
            second: b,
            bytes: buf.clone(),
        });
        Ok(Some(buf))
    }

    /// Checks a receipt, whose record id (SHA-256 of `bytes`) is `record`, up to (not including)
    /// its signature: `Ok(None)` if already known, otherwise the decoded receipt and the key its
    /// merchant signs with.
    fn check_receipt<'a>(
        &self,
        bytes: &'a [u8],
        record: RecordId,
        now: Timestamp,
        refused: &BTreeMap<PaymentId, u16>,
    ) -> Result<Option<(crate::codec::Signed<'a, Receipt>, PublicKey)>, Error> {
        let r = decode_signed::<Receipt>(bytes)?;
        if let Some(e) = refused
            .get(&r.payment_id)
            .and_then(|c| Error::from_code(*c))
        {
            return Err(e);
        }
        if self.records.contains(&record) {
            return Ok(None);
        }
        let merchant_key = *self
            .merchants
            .get(&r.merchant_id)
            .ok_or(Rejection::UnknownMerchant)?;
        if let Some(p) = self.payments.get(&r.payment_id) {
            if p.credited {
                // Its payment is credited already: nothing more this receipt can do.
                return Ok(None);
            }
            if p.merchant != r.merchant_id {
                return Err(Rejection::WrongMerchant.into());
            }
            let l = self
                .vouchers
                .get(&p.voucher)
                .ok_or(Rejection::UnknownPayment)?;
            if now > self.deadline(l.not_after) {
                return Err(Rejection::SettlementClosed.into());
            }
            qualifies(p, l, r.merchant_id, r.accepted_at)?;
        }
        Ok(Some((r, merchant_key)))
    }

    /// Records a verified receipt and credits its payment if both are here; false if the same
    /// receipt was recorded already (it appeared twice in one batch).
    fn record_receipt(&mut self, r: &Receipt, rid: RecordId, bytes: &[u8]) -> bool {
        let credited = self.payments.get(&r.payment_id).is_some_and(|p| p.credited);
        if self.records.contains(&rid) || credited {
            return false;
        }
        self.receipts
            .insert((r.payment_id, rid), (r.merchant_id, r.accepted_at));
        self.records.insert(rid);
        self.log(Change::Receipt {
            record: rid,
            payment: r.payment_id,
            merchant: r.merchant_id,
            accepted_at: r.accepted_at,
            bytes: bytes.to_vec(),
        });
        self.credit(r.payment_id);
        true
    }

    /// Credits a payment once it and a receipt that qualifies for it ([`qualifies`]) are both
    /// recorded, whichever came first.
    fn credit(&mut self, pid: PaymentId) {
        let Some(p) = self.payments.get_mut(&pid) else {
            return;
        };
        let Some(l) = self.vouchers.get_mut(&p.voucher) else {
            return;
        };
        let lo = (pid, RecordId([0; 32]));
        let hi = (pid, RecordId([0xff; 32]));
        let delivered = self
            .receipts
            .range(lo..=hi)
            .any(|(_, (merchant, at))| qualifies(p, l, *merchant, *at).is_ok());
        if p.credited || !delivered {
            return;
        }
        p.credited = true;
        let before = l.credited;
        l.credited = l.credited.saturating_add(p.amount.0);
        let within = l
            .credited
            .min(l.limit.0)
            .saturating_sub(before.min(l.limit.0));
        let c = self.credits.entry((p.merchant, l.currency)).or_insert(0);
        *c = c.saturating_add(p.amount.0);
        let change = Change::Credited {
            payment: pid,
            voucher: p.voucher,
            merchant: p.merchant,
            currency: l.currency,
            amount: p.amount,
            overspend: Amount(p.amount.0.saturating_sub(within)),
        };
        self.log(change);
    }

    /// Closes every voucher whose `not_after` plus grace is before `now`: payments never
    /// delivered (no receipt) are dropped, and what was not credited is released. Returns the
    /// vouchers closed by this call.
    pub fn close_expired(&mut self, now: Timestamp) -> Vec<VoucherSummary> {
        let grace = self.grace;
        let mut closed = Vec::new();
        for (id, l) in self.vouchers.iter_mut() {
            if l.released.is_none() && now > l.not_after.saturating_add(grace) {
                l.released = Some(Amount(l.limit.0.saturating_sub(l.credited)));
                closed.push(*id);
            }
        }
        closed.iter().filter_map(|id| self.voucher(id)).collect()
    }
}

/// Whether a receipt by `merchant`, accepted at `accepted_at`, delivers payment `p` of
/// voucher `l` (SPEC §8.3 step 4): the payment's own merchant signed it, and the time of the
/// payment lies in the voucher's window with the clock skew. That time is the receipt's
/// `accepted_at`, or the payment's `created_at` (signed by the holder) when the merchant had
/// no clock (`accepted_at = 0`).
fn qualifies(
    p: &PaymentEntry,
    l: &VoucherLedger,
    merchant: MerchantId,
    accepted_at: Timestamp,
) -> Result<(), Rejection> {
    if merchant != p.merchant {
        return Err(Rejection::WrongMerchant);
    }
    let at = if accepted_at == Timestamp(0) {
        p.created_at
    } else {
        accepted_at
    };
    crate::msg::check_window(l.not_before, l.not_after, at)
}
