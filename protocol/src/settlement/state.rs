//! Settlement's state in and out: the rows a batch needs, loading them into a fresh
//! `Settlement` (the database form), and reading the settled state.

use super::*;

impl<const N: usize> Settlement<N> {
    /// Which rows of settlement's state ingesting `batch` reads (records that do not decode
    /// need none).
    pub fn needs(batch: &[u8]) -> Result<Needs, Error> {
        let b = decode_unsigned::<SyncBatch<'_>>(batch)?;
        let mut n = Needs::default();
        for r in b.records() {
            match MessageType::of(r) {
                Ok(MessageType::Payment) => {
                    if let Ok(p) = decode_signed::<Payment<'_>>(r) {
                        let v = p.voucher.id;
                        n.payments.insert(p.id());
                        n.vouchers.insert(v);
                        n.merchants.insert(p.merchant_id);
                        for seq in [p.seq.checked_sub(1), Some(p.seq), p.seq.checked_add(1)]
                            .into_iter()
                            .flatten()
                        {
                            n.positions.insert((v, seq));
                        }
                    }
                }
                Ok(MessageType::Receipt) => {
                    if let Ok(rc) = decode_signed::<Receipt>(r) {
                        n.payments.insert(rc.payment_id);
                        n.records.insert(RecordId(sha256(r)));
                        n.merchants.insert(rc.merchant_id);
                    }
                }
                _ => {}
            }
        }
        Ok(n)
    }

    /// Loads a registered merchant's key (from a certificate verified when it was
    /// registered, whose key [`Settlement::register_merchant`] or the issuer checked for a
    /// torsion component: receipts under it are verified in batches).
    pub fn load_merchant(&mut self, id: MerchantId, key: PublicKey) {
        self.merchants.insert(id, key);
    }

    /// Loads a voucher's settled state. Load it before its payments.
    pub fn load_voucher(&mut self, v: &VoucherSummary) {
        self.vouchers.insert(
            v.id,
            VoucherLedger {
                currency: v.currency,
                limit: v.limit,
                not_before: v.not_before,
                not_after: v.not_after,
                credited: v.credited.0,
                by_seq: BTreeMap::new(),
                fraud: v.fraud,
                released: v.released,
                hash: None,
            },
        );
    }

    /// Loads the SHA-256 of a loaded voucher's bytes, so that a payment drawn on other bytes
    /// under the same id is refused (`chain-inconsistent`). Load the voucher first.
    pub fn load_voucher_hash(&mut self, id: VoucherId, voucher_hash: [u8; 32]) {
        if let Some(l) = self.vouchers.get_mut(&id) {
            l.hash = Some(voucher_hash);
        }
    }

    /// Loads a voucher whose issuer signature verified before (the SHA-256 of its bytes),
    /// so that it is not verified again.
    pub fn load_verified_voucher(&mut self, voucher_hash: [u8; 32]) {
        self.verified_vouchers.insert(voucher_hash);
    }

    /// Loads a recorded payment (the bytes settlement recorded, whether it was credited).
    /// Its voucher must be loaded first ([`Settlement::load_voucher`]).
    pub fn load_payment(&mut self, bytes: &[u8], credited: bool) -> Result<PaymentId, Error> {
        let p = decode_signed::<Payment<'_>>(bytes)?;
        let id = p.id();
        let ledger = self
            .vouchers
            .get_mut(&p.voucher.id)
            .ok_or(Rejection::UnknownPayment)?;
        let at = ledger.by_seq.entry(p.seq).or_default();
        if !at.contains(&id) {
            at.push(id);
        }
        self.payments.insert(
            id,
            PaymentEntry {
                bytes: bytes.to_vec(),
                voucher: p.voucher.id,
                amount: p.amount,
                merchant: p.merchant_id,
                created_at: p.created_at,
                credited,
            },
        );
        self.records.insert(RecordId(id.0));
        Ok(id)
    }

    /// Loads a recorded receipt.
    pub fn load_receipt(
        &mut self,
        record: RecordId,
        payment: PaymentId,
        merchant: MerchantId,
        accepted_at: Timestamp,
    ) {
        self.receipts
            .insert((payment, record), (merchant, accepted_at));
        self.records.insert(record);
    }

    /// Loads a recorded receipt's record id alone (a receipt the batch repeats).
    pub fn load_record(&mut self, record: RecordId) {
        self.records.insert(record);
    }

    /// Loads a pair of payments already proven to conflict (`first`, `second` as in their
    /// FraudProof).
    pub fn load_proven(&mut self, first: PaymentId, second: PaymentId) {
        self.proven.insert((first, second));
    }

    /// The settled state of a voucher.
    pub fn voucher(&self, id: &VoucherId) -> Option<VoucherSummary> {
        let l = self.vouchers.get(id)?;
        Some(VoucherSummary {
            id: *id,
            currency: l.currency,
            limit: l.limit,
            not_before: l.not_before,
            not_after: l.not_after,
            credited: Amount(l.credited),
            overspend: Amount(l.credited.saturating_sub(l.limit.0)),
            fraud: l.fraud,
            released: l.released,
        })
    }

    /// Every voucher seen.
    pub fn vouchers(&self) -> impl Iterator<Item = VoucherSummary> + '_ {
        self.vouchers.keys().filter_map(|id| self.voucher(id))
    }

    /// What a merchant has been credited in a currency.
    pub fn credit_of(&self, merchant: &MerchantId, currency: Currency) -> Amount {
        Amount(
            self.credits
                .get(&(*merchant, currency))
                .copied()
                .unwrap_or(0),
        )
    }

    /// All merchant credits.
    pub fn credits(&self) -> impl Iterator<Item = (MerchantId, Currency, Amount)> + '_ {
        self.credits.iter().map(|((m, c), a)| (*m, *c, Amount(*a)))
    }

    /// Every FraudProof found so far.
    pub fn proofs(&self) -> &[Vec<u8>] {
        &self.proofs
    }

    /// Whether a payment has been credited.
    pub fn is_credited(&self, id: &PaymentId) -> bool {
        self.payments.get(id).is_some_and(|p| p.credited)
    }

    /// How many distinct payments are recorded (credited or not).
    pub fn payment_count(&self) -> usize {
        self.payments.len()
    }
}
