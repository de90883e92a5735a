//! The customer's wallet (SPEC §8.1): holds vouchers, pays requests, keeps every payment.
//!
//! All state is derived from the journal, and a payment is durably appended **before** its
//! bytes are returned, so a crash can never cause a sequence number to be used twice, and a
//! retry for the same request returns the very same bytes.

use crate::codec::{Message, Signed, decode_signed};
use crate::codec::{MessageBuf, sign_into_with};
use crate::crypto::{HolderSigner, sign_as_holder};
use crate::error::{Error, Rejection, StoreError, VerifyError};
use crate::journal::{self, kind};
use crate::msg::{Payment, PaymentRequest, PreAuthRequest, Receipt, RevocationList, Voucher};
use crate::store::{Store, records};
use crate::trust::TrustStore;
use crate::types::{Amount, Currency, HolderKey, LinkId, PaymentId, Timestamp, VoucherId};

mod compact;
mod replay;
pub use compact::{COMPACT_MIN_BYTES, Compaction};
use replay::{floor_parts, payment_parts, replay, retired_parts, sync_items};

/// Bytes of an encoded payment, as returned by [`Wallet::pay`].
pub type PaymentBytes = MessageBuf<{ <Payment<'static> as Message<'static>>::MAX_LEN }>;

#[derive(Clone, Copy, Debug)]
struct Slot {
    record: usize,
    id: VoucherId,
    seq: u32,
    cumulative: Amount,
    last: LinkId,
}

/// One stored offline payment, as listed by [`Wallet::payments`].
#[derive(Clone, Debug)]
pub struct StoredPayment<'a> {
    /// The payment as sent.
    pub payment: Signed<'a, Payment<'a>>,
    /// The merchant's receipt, once received.
    pub receipt: Option<&'a [u8]>,
    /// Whether the issuer has settled it (acknowledged in a sync report).
    pub synced: bool,
}

/// The state of one installed voucher.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VoucherBalance {
    /// The voucher id.
    pub id: VoucherId,
    /// Its currency.
    pub currency: Currency,
    /// Its limit.
    pub limit: Amount,
    /// What is left to spend.
    pub remaining: Amount,
    /// Payments made so far.
    pub payments: u32,
    /// Its last second of validity.
    pub not_after: Timestamp,
}

/// A customer wallet over a store `S`, signing with `K`, holding up to `V` vouchers.
#[derive(Debug)]
pub struct Wallet<S: Store, K: HolderSigner, const V: usize = 8> {
    store: S,
    signer: K,
    slots: heapless::Vec<Slot, V>,
    /// Every voucher ending at or before this, and not installed, is retired (SPEC §8.1.1).
    floor: Option<Timestamp>,
    auto_compact: bool,
}

impl<S: Store, K: HolderSigner, const V: usize> Wallet<S, K, V> {
    /// Opens a wallet over `store`, replaying it. The store holds only what this wallet wrote,
    /// so a record that does not decode means the store was damaged: [`StoreError::Corrupt`].
    pub fn open(store: S, signer: K) -> Result<Self, Error> {
        let (slots, floor) = replay(&store)?;
        Ok(Wallet {
            store,
            signer,
            slots,
            floor,
            auto_compact: true,
        })
    }

    /// The holder key vouchers must be bound to.
    pub fn holder_key(&self) -> HolderKey {
        self.signer.holder_key()
    }

    /// Signs `domain ‖ message` as the holder, low-S for P-256 (SPEC §7.1.1).
    fn sign(&self, domain: &[u8], message: &[u8]) -> Result<[u8; 64], crate::error::EncodeError> {
        sign_as_holder(&self.signer, domain, message)
    }

    /// Whether installing a voucher compacts the journal after retiring (on by default,
    /// with the `alloc` feature; without it the device calls [`compact`](Self::compact)). An
    /// app that keeps the history a compaction drops turns it off and calls
    /// [`compact_if_worth_archiving`](Self::compact_if_worth_archiving) itself.
    pub fn set_auto_compact(&mut self, on: bool) {
        self.auto_compact = on;
    }

    /// The store, for inspection.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Gives the store back.
    pub fn into_store(self) -> S {
        self.store
    }

    fn voucher(&self, slot: &Slot) -> Result<Signed<'_, Voucher>, Error> {
        let r = self.store.get(slot.record).ok_or(StoreError::Corrupt)?;
        let body = r.get(1..).ok_or(StoreError::Corrupt)?;
        Ok(decode_signed::<Voucher>(body).map_err(|_| StoreError::Corrupt)?)
    }

    /// Builds the signed pre-authorization request (online step): the issuer answers it with a
    /// voucher bound to this wallet's key.
    pub fn preauth_request(
        &self,
        instrument_id: &[u8],
        amount: Amount,
        currency: Currency,
        client_nonce: crate::types::Nonce,
        now: Timestamp,
    ) -> Result<MessageBuf<{ <PreAuthRequest<'static> as Message<'static>>::MAX_LEN }>, Error> {
        let req = PreAuthRequest {
            instrument_id,
            amount,
            currency,
            holder_key: self.holder_key(),
            client_nonce,
            created_at: now,
        };
        Ok(sign_into_with(&req, &|d, m| self.sign(d, m))?)
    }

    /// Installs a voucher from the issuer after checking it: bound to this wallet's key, signed
    /// by a trusted issuer key, valid now. Installing the same voucher again is a no-op.
    pub fn install_voucher<const N: usize>(
        &mut self,
        voucher: &[u8],
        trust: &TrustStore<N>,
        now: Timestamp,
    ) -> Result<VoucherId, Error> {
        let v = decode_signed::<Voucher>(voucher)?;
        if v.holder_key != self.holder_key() {
            return Err(Rejection::WrongHolder.into());
        }
        trust.verify(&v, &v.issuer_key_id, v.not_before)?;
        v.check_time(now)?;
        if self.slots.iter().any(|s| s.id == v.id) {
            return Ok(v.id);
        }
        if self.is_retired(&v.id, v.not_after) {
            return Err(Rejection::Retired.into());
        }
        if self.slots.is_full() {
            // A slot whose voucher is done and settled is reused (SPEC §8.1.1), and the
            // journal is compacted when what retiring made dead is worth it (SPEC §8.5).
            if self.retire(now)? > 0 && self.auto_compact {
                #[cfg(feature = "alloc")]
                self.compact_if_worth(now)?;
            }
        }
        if self.slots.is_full() {
            return Err(Rejection::CapacityExceeded.into());
        }
        let mut rec = [0u8; 1 + <Voucher as Message<'static>>::MAX_LEN];
        rec[0] = kind::VOUCHER;
        let rec = rec
            .get_mut(..1 + voucher.len())
            .ok_or(StoreError::RecordTooLarge)?;
        rec.get_mut(1..)
            .ok_or(StoreError::RecordTooLarge)?
            .copy_from_slice(voucher);
        self.store.append(rec)?;
        let slot = Slot {
            record: self.store.len() - 1,
            id: v.id,
            seq: 0,
            cumulative: Amount(0),
            last: LinkId::default(),
        };
        self.slots
            .push(slot)
            .map_err(|_| Rejection::CapacityExceeded)?;
        Ok(v.id)
    }

    /// Whether the voucher `id`, ending at `not_after`, was retired from this wallet: its
    /// tombstone, or the floor the tombstones compacted away left.
    fn is_retired(&self, id: &VoucherId, not_after: Timestamp) -> bool {
        if self.floor.is_some_and(|f| not_after <= f) {
            return true;
        }
        records(&self.store).any(|r| match journal::split(r) {
            Some((kind::RETIRED, body)) => retired_parts(body).is_some_and(|(x, _)| x == *id),
            _ => false,
        })
    }

    /// Whether the voucher of `slot` is done at `now`: nothing left, its last payment made, or
    /// its window closed (past `not_after` plus the clock skew).
    fn is_done(&self, slot: &Slot, now: Timestamp) -> Result<bool, Error> {
        let v = self.voucher(slot)?;
        Ok(slot.cumulative >= v.limit
            || slot.seq >= v.policy.max_payments
            || slot.seq == u32::MAX
            || now > v.not_after.saturating_add(crate::types::CLOCK_SKEW_SECS))
    }

    /// Whether the issuer acknowledged every payment drawn on `id`, and every receipt of one.
    fn is_settled(&self, id: &VoucherId) -> bool {
        records(&self.store).all(|r| {
            let mine = match journal::split(r) {
                Some((kind::PAYMENT, body)) => payment_parts(body)
                    .and_then(|(_, p)| decode_signed::<Payment<'_>>(p).ok())
                    .map(|p| (p.voucher.id == *id).then(|| p.id())),
                _ => Some(None),
            };
            match mine {
                // A record that does not decode was refused at open already.
                None | Some(None) => true,
                Some(Some(payment_id)) => {
                    // A payment's record id is its id: the SHA-256 of the signed payment.
                    let pid = crate::types::RecordId(payment_id.0);
                    journal::is_acked(&self.store, &pid) && self.receipt_settled(&pid)
                }
            }
        })
    }

    /// Whether a receipt stored for payment `pid`, if any, was acknowledged.
    fn receipt_settled(&self, pid: &crate::types::RecordId) -> bool {
        records(&self.store).all(|r| match journal::split(r) {
            Some((kind::RECEIPT, body)) => match decode_signed::<Receipt>(body) {
                Ok(x) if x.payment_id.0 == pid.0 => journal::is_acked(
                    &self.store,
                    &crate::types::RecordId(crate::crypto::sha256(body)),
                ),
                _ => true,
            },
            _ => true,
        })
    }

    /// Retires every voucher that is done at `now` (spent out, its last sequence number used,
    /// or its window closed) and whose payments and receipts the issuer has all acknowledged
    /// (SPEC §8.1.1). Its slot is free for the next voucher; a retirement record stays in the
    /// journal so that the voucher is never installed again. Returns how many were retired.
    pub fn retire(&mut self, now: Timestamp) -> Result<usize, Error> {
        let mut retired = 0;
        let mut i = 0;
        while let Some(slot) = self.slots.get(i).copied() {
            if !(self.is_done(&slot, now)? && self.is_settled(&slot.id)) {
                i += 1;
                continue;
            }
            let not_after = self.voucher(&slot)?.not_after;
            let mut rec = [0u8; 1 + 16 + 4];
            let (k, rest) = rec.split_at_mut(1);
            k.copy_from_slice(&[kind::RETIRED]);
            let (id, at) = rest.split_at_mut(16);
            id.copy_from_slice(&slot.id.0);
            at.copy_from_slice(&not_after.0.to_le_bytes());
            self.store.append(&rec)?;
            self.slots.remove(i);
            retired += 1;
        }
        Ok(retired)
    }

    /// The installed vouchers and what is left on each.
    pub fn balances(&self) -> impl Iterator<Item = VoucherBalance> + '_ {
        self.slots.iter().filter_map(move |s| {
            let v = self.voucher(s).ok()?;
            Some(VoucherBalance {
                id: s.id,
                currency: v.currency,
                limit: v.limit,
                remaining: v.limit.checked_sub(s.cumulative).unwrap_or(Amount(0)),
                payments: s.seq,
                not_after: v.not_after,
            })
        })
    }

    /// What can still be spent in `currency` with vouchers valid at `now`.
    pub fn remaining(&self, currency: Currency, now: Timestamp) -> Amount {
        let mut total = Amount(0);
        for s in &self.slots {
            if let Ok(v) = self.voucher(s)
                && v.currency == currency
                && v.check_time(now).is_ok()
            {
                let left = v.limit.checked_sub(s.cumulative).unwrap_or(Amount(0));
                total = total.checked_add(left).unwrap_or(Amount(u64::MAX));
            }
        }
        total
    }

    /// Checks a merchant's request and pays it (SPEC §8.1).
    ///
    /// The request's certificate must be signed by a trusted issuer key and valid now, the
    /// request signed by the certified key, the merchant not revoked. If this wallet already
    /// paid this request (same merchant and nonce), the stored payment is returned unchanged.
    /// Otherwise the first voucher in the request's currency that can cover the amount under
    /// its policy is drawn on, and the payment is durably stored before it is returned.
    pub fn pay<const N: usize>(
        &mut self,
        request: &[u8],
        trust: &TrustStore<N>,
        revocations: Option<&RevocationList<'_>>,
        now: Timestamp,
    ) -> Result<PaymentBytes, Error> {
        let req = decode_signed::<PaymentRequest<'_>>(request)?;
        let cert = &req.certificate;
        // A genuine certificate (its key trusted when it was issued) and a genuine request.
        trust.verify(cert, &cert.issuer_key_id, cert.not_before)?;
        req.verify(&cert.merchant_key)?;
        // A retry gets the stored payment, even once the certificate has expired, the merchant
        // was revoked or the request went stale: those bytes already left the wallet.
        if let Some(done) = self.find_payment(&req)? {
            return Ok(done);
        }
        cert.check_time(now)?;
        if revocations.is_some_and(|r| r.is_merchant_revoked(&cert.merchant_id)) {
            return Err(Rejection::Revoked.into());
        }
        check_fresh(req.created_at, now)?;
        let (index, voucher_record) = self.choose_voucher(&req, revocations, now)?;
        let slot = *self.slots.get(index).ok_or(StoreError::Corrupt)?;
        let body = voucher_record.get(1..).ok_or(StoreError::Corrupt)?;
        let voucher = decode_signed::<Voucher>(body).map_err(|_| StoreError::Corrupt)?;
        let seq = slot.seq.checked_add(1).ok_or(Rejection::OverPolicy)?;
        let cumulative = slot
            .cumulative
            .checked_add(req.amount)
            .ok_or(Rejection::OverLimit)?;
        let payment = Payment {
            voucher,
            seq,
            amount: req.amount,
            cumulative,
            prev: slot.last,
            merchant_id: cert.merchant_id,
            request_nonce: req.nonce,
            created_at: now,
        };
        let bytes: PaymentBytes = sign_into_with(&payment, &|d, m| self.sign(d, m))?;
        let mut rec = [0u8; 1 + 32 + <Payment<'static> as Message<'static>>::MAX_LEN];
        rec[0] = kind::PAYMENT;
        rec[1..33].copy_from_slice(&cert.merchant_key.0);
        let rec = rec
            .get_mut(..33 + bytes.len())
            .ok_or(StoreError::RecordTooLarge)?;
        rec.get_mut(33..)
            .ok_or(StoreError::RecordTooLarge)?
            .copy_from_slice(&bytes);
        self.store.append(rec)?;
        let id = PaymentId(crate::crypto::sha256(&bytes));
        if let Some(s) = self.slots.get_mut(index) {
            s.seq = seq;
            s.cumulative = cumulative;
            s.last = id.link();
        }
        Ok(bytes)
    }

    /// The stored payment answering `req`, if this wallet already paid it (SPEC §8.1 step 2).
    fn find_payment(&self, req: &PaymentRequest<'_>) -> Result<Option<PaymentBytes>, Error> {
        for r in records(&self.store) {
            if let Some((kind::PAYMENT, body)) = journal::split(r) {
                let (_, p) = payment_parts(body).ok_or(StoreError::Corrupt)?;
                let paid = decode_signed::<Payment<'_>>(p).map_err(|_| StoreError::Corrupt)?;
                if paid.merchant_id == req.certificate.merchant_id
                    && paid.request_nonce == req.nonce
                {
                    if paid.amount != req.amount || paid.voucher.currency != req.currency {
                        return Err(Rejection::WrongAmount.into());
                    }
                    return Ok(Some(
                        PaymentBytes::from_slice(p).map_err(|_| StoreError::Corrupt)?,
                    ));
                }
            }
        }
        Ok(None)
    }

    /// Picks the first voucher that can pay `req`; otherwise the most telling reason none can.
    fn choose_voucher(
        &self,
        req: &PaymentRequest<'_>,
        revocations: Option<&RevocationList<'_>>,
        now: Timestamp,
    ) -> Result<(usize, &[u8]), Error> {
        let mut why = Rejection::WrongCurrency;
        for (i, s) in self.slots.iter().enumerate() {
            let v = self.voucher(s)?;
            let verdict = if v.currency != req.currency {
                Err(Rejection::WrongCurrency)
            } else if let Err(e) = v.check_time(now) {
                Err(e)
            } else if revocations.is_some_and(|r| r.is_voucher_revoked(&v.id)) {
                Err(Rejection::Revoked)
            } else if req.amount > v.policy.max_single || s.seq >= v.policy.max_payments {
                Err(Rejection::OverPolicy)
            } else if s
                .cumulative
                .checked_add(req.amount)
                .is_none_or(|c| c > v.limit)
            {
                Err(Rejection::InsufficientFunds)
            } else {
                Ok(())
            };
            match verdict {
                Ok(()) => return Ok((i, self.store.get(s.record).ok_or(StoreError::Corrupt)?)),
                // A reason from a voucher in the right currency says more than a currency mismatch.
                Err(e) if why == Rejection::WrongCurrency || e == Rejection::InsufficientFunds => {
                    why = e
                }
                Err(_) => {}
            }
        }
        Err(why.into())
    }

    /// Stores the merchant's receipt for one of this wallet's payments after checking its
    /// signature under the merchant key the payment was made to. Storing it again is a no-op.
    pub fn receive_receipt(&mut self, receipt: &[u8]) -> Result<PaymentId, Error> {
        let r = decode_signed::<Receipt>(receipt)?;
        let mut key = None;
        for rec in records(&self.store) {
            match journal::split(rec) {
                Some((kind::PAYMENT, body)) => {
                    let (k, p) = payment_parts(body).ok_or(StoreError::Corrupt)?;
                    if PaymentId(crate::crypto::sha256(p)) == r.payment_id {
                        let paid =
                            decode_signed::<Payment<'_>>(p).map_err(|_| StoreError::Corrupt)?;
                        if paid.merchant_id != r.merchant_id {
                            return Err(Rejection::WrongMerchant.into());
                        }
                        key = Some(k);
                    }
                }
                Some((kind::RECEIPT, body)) if body == receipt => return Ok(r.payment_id),
                _ => {}
            }
        }
        let key = key.ok_or(Rejection::UnknownPayment)?;
        r.verify(&key).map_err(|e: VerifyError| Error::from(e))?;
        let mut rec = [0u8; 1 + <Receipt as Message<'static>>::MAX_LEN];
        rec[0] = kind::RECEIPT;
        let rec = rec
            .get_mut(..1 + receipt.len())
            .ok_or(StoreError::RecordTooLarge)?;
        rec.get_mut(1..)
            .ok_or(StoreError::RecordTooLarge)?
            .copy_from_slice(receipt);
        self.store.append(rec)?;
        Ok(r.payment_id)
    }

    /// Every stored offline payment, oldest first, with its receipt and sync state.
    pub fn payments(&self) -> impl Iterator<Item = StoredPayment<'_>> + '_ {
        records(&self.store).filter_map(move |r| self.stored_payment(r))
    }

    /// The payment a record holds, if it is a payment record, with its receipt and state.
    fn stored_payment<'a>(&'a self, record: &'a [u8]) -> Option<StoredPayment<'a>> {
        let (kind::PAYMENT, body) = journal::split(record)? else {
            return None;
        };
        let (_, p) = payment_parts(body)?;
        let payment = decode_signed::<Payment<'_>>(p).ok()?;
        let id = payment.id();
        let receipt = records(&self.store).find_map(|r| match journal::split(r) {
            Some((kind::RECEIPT, b)) => decode_signed::<Receipt>(b)
                .ok()
                .filter(|x| x.payment_id == id)
                .map(|_| b),
            _ => None,
        });
        let synced = journal::is_acked(&self.store, &crate::types::RecordId(id.0));
        Some(StoredPayment {
            payment,
            receipt,
            synced,
        })
    }

    /// Writes a sync batch of every payment and receipt the issuer has not yet acknowledged.
    pub fn sync_batch(&self, buf: &mut [u8]) -> Result<usize, Error> {
        journal::sync_batch(&self.store, buf, sync_items)
    }

    /// Applies the issuer's signed sync report: every payment or receipt it finalizes is marked
    /// synced. Returns how many records were newly marked. A report that fails verification
    /// changes nothing.
    pub fn apply_report<const N: usize>(
        &mut self,
        report: &[u8],
        trust: &TrustStore<N>,
        now: Timestamp,
    ) -> Result<usize, Error> {
        journal::apply_report(&mut self.store, report, trust, now, sync_items)
    }
}

/// SPEC §8.1 step 4: a request made more than [`REQUEST_FRESH_SECS`] (plus the skew) before
/// `now` is `expired`, one made after `now` (plus the skew) `not-yet-valid`; a request whose
/// `created_at` is 0 (a till without a clock) is not checked.
fn check_fresh(created_at: Timestamp, now: Timestamp) -> Result<(), Rejection> {
    if created_at == Timestamp(0) {
        return Ok(());
    }
    crate::msg::check_window(
        created_at,
        created_at.saturating_add(crate::types::REQUEST_FRESH_SECS),
        now,
    )
}
