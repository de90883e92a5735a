//! The merchant's acceptor (SPEC §8.2): makes requests, accepts payments offline, keeps them.
//!
//! [`decide`] is one pure function over everything the merchant knows; [`Acceptor::accept`]
//! calls it and only then changes state: the payment and its receipt are appended to the
//! journal as one record before the receipt is returned. A rejected payment changes nothing.

use crate::codec::{Message, Signed, decode_signed};
use crate::codec::{MessageBuf, sign_into};
use crate::crypto::{Signer, sha256};
use crate::error::{DecodeError, EncodeError, Error, Rejection, StoreError};
use crate::journal::{self, kind};
use crate::msg::{MerchantCertificate, Payment, PaymentRequest, Receipt, RevocationList};
use crate::store::{Store, records};
use crate::trust::TrustStore;
use crate::types::{Amount, Currency, LinkId, MerchantId, Nonce, PaymentId, Timestamp, VoucherId};
use rand_core::CryptoRngCore;

mod compact;

/// Bytes of an encoded request.
pub type RequestBytes = MessageBuf<{ <PaymentRequest<'static> as Message<'static>>::MAX_LEN }>;
/// Bytes of an encoded receipt.
pub type ReceiptBytes = MessageBuf<{ <Receipt as Message<'static>>::MAX_LEN }>;
/// Bytes of an encoded merchant certificate.
pub type CertificateBytes =
    MessageBuf<{ <MerchantCertificate<'static> as Message<'static>>::MAX_LEN }>;

/// A request waiting for its payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenRequest {
    /// Its nonce.
    pub nonce: Nonce,
    /// The amount asked for.
    pub amount: Amount,
    /// Its currency.
    pub currency: Currency,
}

/// What the merchant remembers of one payment it accepted, to catch a cloned wallet offline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    /// The voucher.
    pub voucher: VoucherId,
    /// The payment's sequence number.
    pub seq: u32,
    /// The payment's link ([`PaymentId::link`]).
    pub link: LinkId,
    /// The link of its predecessor (the payment's `prev`), to recognise a fork of it.
    pub prev: LinkId,
    /// The payment's cumulative amount.
    pub cumulative: Amount,
}

/// How many verified vouchers an acceptor remembers (SPEC §8.2.1).
pub const VERIFIED_VOUCHERS: usize = 32;

/// The merchant's bounded memory of accepted payments (the latest `M`, oldest overwritten),
/// and of the vouchers whose issuer signature it has verified.
#[derive(Clone, Debug)]
pub struct VoucherMemory<const M: usize> {
    seen: heapless::Deque<Seen, M>,
    verified: heapless::Deque<[u8; 32], VERIFIED_VOUCHERS>,
}

impl<const M: usize> Default for VoucherMemory<M> {
    fn default() -> Self {
        VoucherMemory {
            seen: heapless::Deque::new(),
            verified: heapless::Deque::new(),
        }
    }
}

impl<const M: usize> VoucherMemory<M> {
    /// Forgets everything.
    pub fn clear(&mut self) {
        self.seen.clear();
        self.verified.clear();
    }
    /// Remembers that the voucher whose exact bytes (signature included) hash to `hash`
    /// verified under its issuer key.
    pub fn remember_voucher(&mut self, hash: [u8; 32]) {
        if self.voucher_verified(&hash) {
            return;
        }
        if self.verified.is_full() {
            self.verified.pop_front();
        }
        let _ = self.verified.push_back(hash);
    }
    /// Whether these exact voucher bytes were verified before.
    pub fn voucher_verified(&self, hash: &[u8; 32]) -> bool {
        self.verified.iter().any(|h| h == hash)
    }
    /// Remembers a payment, forgetting the oldest when full.
    pub fn remember(&mut self, s: Seen) {
        if self.seen.is_full() {
            self.seen.pop_front();
        }
        let _ = self.seen.push_back(s);
    }
    /// Checks a payment against what is remembered (SPEC §8.2 step 11).
    pub fn check(&self, p: &Payment<'_>, link: LinkId) -> Result<(), Rejection> {
        for s in self.seen.iter().filter(|s| s.voucher == p.voucher.id) {
            let consistent = if s.seq == p.seq {
                s.link == link
            } else if s.seq < p.seq {
                // Every payment in between adds at least 1.
                let gap = u64::from(p.seq - s.seq - 1);
                let least = s
                    .cumulative
                    .0
                    .checked_add(p.amount.0)
                    .and_then(|v| v.checked_add(gap));
                least.is_some_and(|l| p.cumulative.0 >= l)
                    && (s.seq + 1 != p.seq || p.prev == s.link)
            } else {
                let gap = u64::from(s.seq - p.seq);
                p.cumulative
                    .0
                    .checked_add(gap)
                    .is_some_and(|l| s.cumulative.0 >= l)
                    // P is S's predecessor only if S links to it: another payment with that
                    // sequence number is a fork (a cloned wallet), seen from above.
                    && (p.seq + 1 != s.seq || s.prev == link)
            };
            if !consistent {
                return Err(if s.seq == p.seq {
                    Rejection::SequenceReused
                } else {
                    Rejection::ChainInconsistent
                });
            }
        }
        Ok(())
    }
}

/// What the merchant knows when it decides, besides the payment.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a, const N: usize> {
    /// Trusted issuer keys.
    pub trust: &'a TrustStore<N>,
    /// The newest revocation list the merchant has, if any (already verified).
    pub revocations: Option<&'a RevocationList<'a>>,
    /// The merchant's time (its last known good time if it has no clock).
    pub now: Timestamp,
}

/// The acceptance decision (SPEC §8.2), in the SPEC's order: cheap checks first, signatures
/// last, so a flood of forged payments costs little. Pure: it changes nothing.
pub fn decide<const N: usize, const M: usize>(
    ctx: &Context<'_, N>,
    merchant: MerchantId,
    open: Option<&OpenRequest>,
    memory: &VoucherMemory<M>,
    payment: &Signed<'_, Payment<'_>>,
) -> Result<(), Error> {
    let v = &payment.voucher;
    if payment.merchant_id != merchant {
        return Err(Rejection::WrongMerchant.into());
    }
    let open = open
        .filter(|o| o.nonce == payment.request_nonce)
        .ok_or(Rejection::WrongNonce)?;
    if v.currency != open.currency {
        return Err(Rejection::WrongCurrency.into());
    }
    if payment.amount != open.amount {
        return Err(Rejection::WrongAmount.into());
    }
    // The key as settlement checks it (§7.2): trusted when the voucher was issued.
    ctx.trust.issuer_key(&v.issuer_key_id, v.not_before)?;
    v.check_time(ctx.now)?;
    if ctx.revocations.is_some_and(|r| r.is_voucher_revoked(&v.id)) {
        return Err(Rejection::Revoked.into());
    }
    if payment.amount > v.policy.max_single || payment.seq > v.policy.max_payments {
        return Err(Rejection::OverPolicy.into());
    }
    if payment.cumulative > v.limit {
        return Err(Rejection::OverLimit.into());
    }
    memory.check(payment, payment.id().link())?;
    // The same voucher bytes, signature included, verify the same way every time: a voucher
    // verified before is not verified again. Its key's trust and window were checked above.
    if !memory.voucher_verified(&sha256(v.bytes())) {
        ctx.trust.verify(v, &v.issuer_key_id, v.not_before)?;
    }
    payment.verify_holder(&v.holder_key)?;
    Ok(())
}

/// Domain string of a BLE session binding: the merchant's signature over a session's
/// transcript, sent with the request so that a relay cannot pass one merchant's request off
/// in its own session (SPEC §14.5).
pub const SESSION_BINDING_DOMAIN: &[u8] = b"offpay/1/ble-binding\0";

/// A merchant acceptor over a store `S`, signing with `K`, with up to `R` open requests and a
/// memory of the last `M` accepted payments.
#[derive(Debug)]
pub struct Acceptor<S: Store, K: Signer, const R: usize = 8, const M: usize = 256> {
    store: S,
    signer: K,
    certificate: CertificateBytes,
    merchant_id: MerchantId,
    open: heapless::Deque<OpenRequest, R>,
    memory: VoucherMemory<M>,
    auto_compact: bool,
}

fn accepted_parts(body: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = body.split_first_chunk::<2>()?;
    let n = usize::from(u16::from_le_bytes(*len));
    (n <= rest.len()).then(|| rest.split_at(n))
}

fn open_request(body: &[u8]) -> Option<OpenRequest> {
    let (nonce, rest) = body.split_first_chunk::<16>()?;
    let (amount, rest) = rest.split_first_chunk::<8>()?;
    let (cur, _) = rest.split_first_chunk::<3>()?;
    Some(OpenRequest {
        nonce: Nonce(*nonce),
        amount: Amount(u64::from_le_bytes(*amount)),
        currency: Currency::new(*cur)?,
    })
}

fn sync_items(record: &[u8]) -> [Option<&[u8]>; 2] {
    match journal::split(record)
        .and_then(|(k, b)| (k == kind::ACCEPTED).then_some(b))
        .and_then(accepted_parts)
    {
        Some((p, r)) => [Some(p), Some(r)],
        None => [None, None],
    }
}

/// One stored offline payment, as listed by [`Acceptor::payments`].
#[derive(Clone, Debug)]
pub struct AcceptedPayment<'a> {
    /// The payment received.
    pub payment: Signed<'a, Payment<'a>>,
    /// The receipt sent.
    pub receipt: &'a [u8],
    /// Whether the issuer has settled it.
    pub synced: bool,
}

impl<S: Store, K: Signer, const R: usize, const M: usize> Acceptor<S, K, R, M> {
    /// Signs a BLE session's transcript with the merchant key (SPEC §14.5): the customer
    /// checks it under the certificate's merchant key before showing the request.
    pub fn sign_session_binding(&self, transcript: &[u8; 32]) -> Result<[u8; 64], EncodeError> {
        self.signer.sign(SESSION_BINDING_DOMAIN, transcript)
    }

    /// Opens an acceptor over `store` with its issuer-signed `certificate` (whose key must be
    /// the signer's), replaying the store to restore open requests and voucher memory.
    pub fn open(store: S, signer: K, certificate: &[u8]) -> Result<Self, Error> {
        let cert = decode_signed::<MerchantCertificate<'_>>(certificate)?;
        if cert.merchant_key != signer.public_key() {
            return Err(Rejection::WrongMerchant.into());
        }
        let merchant_id = cert.merchant_id;
        let certificate =
            CertificateBytes::from_slice(certificate).map_err(|_| DecodeError::OverSize)?;
        let mut a = Acceptor {
            store,
            signer,
            certificate,
            merchant_id,
            open: heapless::Deque::new(),
            memory: VoucherMemory::default(),
            auto_compact: true,
        };
        replay(&a.store, &mut a.open, &mut a.memory)?;
        Ok(a)
    }

    /// This merchant's id.
    pub fn merchant_id(&self) -> MerchantId {
        self.merchant_id
    }

    /// This merchant's certificate.
    pub fn certificate(&self) -> &[u8] {
        &self.certificate
    }

    /// Whether applying a sync report compacts the journal (on by default, with the `alloc`
    /// feature; without it the device calls [`compact`](Self::compact)). An app that keeps
    /// the history a compaction drops turns it off and calls
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

    /// The requests waiting for a payment, oldest first.
    pub fn open_requests(&self) -> impl Iterator<Item = &OpenRequest> {
        self.open.iter()
    }

    /// Makes a signed request for `amount` with a fresh random nonce, stored durably before
    /// it is returned. When `R` requests are already open the oldest is dropped: a customer
    /// who walked away does not block the till. `now` becomes the request's `created_at`,
    /// which wallets check for freshness (SPEC §8.1); a till without a clock passes
    /// `Timestamp(0)` here ("unknown", SPEC §4), and its last known time to `accept`.
    pub fn create_request(
        &mut self,
        amount: Amount,
        currency: Currency,
        reference: Option<&str>,
        now: Timestamp,
        rng: &mut impl CryptoRngCore,
    ) -> Result<RequestBytes, Error> {
        let mut n = [0u8; 16];
        rng.fill_bytes(&mut n);
        let nonce = Nonce(n);
        let certificate = decode_signed::<MerchantCertificate<'_>>(&self.certificate)?;
        let req = PaymentRequest {
            certificate,
            amount,
            currency,
            nonce,
            created_at: now,
            reference,
        };
        let bytes: RequestBytes = sign_into(&req, &self.signer)?;
        let mut rec = [0u8; 1 + 16 + 8 + 3];
        rec[0] = kind::OPEN_REQUEST;
        rec[1..17].copy_from_slice(&nonce.0);
        rec[17..25].copy_from_slice(&amount.0.to_le_bytes());
        rec[25..].copy_from_slice(&currency.code());
        self.store.append(&rec)?;
        if self.open.is_full() {
            self.open.pop_front();
        }
        let _ = self.open.push_back(OpenRequest {
            nonce,
            amount,
            currency,
        });
        Ok(bytes)
    }

    /// Accepts a payment (SPEC §8.2) and returns the signed receipt, or the typed reason it was
    /// refused. The same payment presented again (a retry after a dropped link) gets the same
    /// receipt back and changes nothing.
    pub fn accept<const N: usize>(
        &mut self,
        payment: &[u8],
        ctx: &Context<'_, N>,
    ) -> Result<ReceiptBytes, Error> {
        let p = decode_signed::<Payment<'_>>(payment)?;
        let id = p.id();
        if let Some(receipt) = self.stored_receipt(&id) {
            return ReceiptBytes::from_slice(receipt).map_err(|_| StoreError::Corrupt.into());
        }
        let open = self.open.iter().find(|o| o.nonce == p.request_nonce);
        decide(ctx, self.merchant_id, open, &self.memory, &p)?;
        let receipt = Receipt {
            payment_id: id,
            merchant_id: self.merchant_id,
            accepted_at: ctx.now,
        };
        let receipt: ReceiptBytes = sign_into(&receipt, &self.signer)?;
        let mut rec = [0u8; 1
            + 2
            + <Payment<'static> as Message<'static>>::MAX_LEN
            + <Receipt as Message<'static>>::MAX_LEN];
        rec[0] = kind::ACCEPTED;
        rec[1..3].copy_from_slice(&(payment.len() as u16).to_le_bytes());
        let total = 3 + payment.len() + receipt.len();
        let rec = rec.get_mut(..total).ok_or(StoreError::RecordTooLarge)?;
        let (p_out, r_out) = rec
            .get_mut(3..)
            .ok_or(StoreError::RecordTooLarge)?
            .split_at_mut(payment.len());
        p_out.copy_from_slice(payment);
        r_out.copy_from_slice(&receipt);
        self.store.append(rec)?;
        remove_open(&mut self.open, &p.request_nonce);
        self.memory.remember(seen(&p));
        self.memory.remember_voucher(sha256(p.voucher.bytes()));
        Ok(receipt)
    }

    fn stored_receipt(&self, id: &PaymentId) -> Option<&[u8]> {
        records(&self.store).find_map(|r| match sync_items(r) {
            [Some(p), Some(rc)] if PaymentId(sha256(p)) == *id => Some(rc),
            _ => None,
        })
    }

    /// Every accepted offline payment, oldest first.
    pub fn payments(&self) -> impl Iterator<Item = AcceptedPayment<'_>> + '_ {
        records(&self.store).filter_map(move |r| {
            let [Some(p), Some(receipt)] = sync_items(r) else {
                return None;
            };
            let payment = decode_signed::<Payment<'_>>(p).ok()?;
            let synced = journal::is_acked(&self.store, &crate::types::RecordId(payment.id().0));
            Some(AcceptedPayment {
                payment,
                receipt,
                synced,
            })
        })
    }

    /// Writes a sync batch of every payment and receipt the issuer has not acknowledged.
    pub fn sync_batch(&self, buf: &mut [u8]) -> Result<usize, Error> {
        journal::sync_batch(&self.store, buf, sync_items)
    }

    /// Applies the issuer's signed sync report (see [`Wallet::apply_report`](crate::Wallet::apply_report)).
    pub fn apply_report<const N: usize>(
        &mut self,
        report: &[u8],
        trust: &TrustStore<N>,
        now: Timestamp,
    ) -> Result<usize, Error> {
        let acked = journal::apply_report(&mut self.store, report, trust, now, sync_items)?;
        // What the issuer acknowledged may now be dead (SPEC §8.5).
        #[cfg(feature = "alloc")]
        if acked > 0 && self.auto_compact {
            self.compact_if_worth()?;
        }
        Ok(acked)
    }
}

/// Replays an acceptor's journal into its open requests and its voucher memory (SPEC §8.5),
/// in place: on a device they are most of the acceptor's size, and are not copied.
fn replay<S: Store, const R: usize, const M: usize>(
    store: &S,
    open: &mut heapless::Deque<OpenRequest, R>,
    memory: &mut VoucherMemory<M>,
) -> Result<(), Error> {
    open.clear();
    memory.clear();
    for r in records(store) {
        match journal::split(r) {
            Some((kind::OPEN_REQUEST, body)) => {
                let o = open_request(body).ok_or(StoreError::Corrupt)?;
                if open.is_full() {
                    open.pop_front();
                }
                let _ = open.push_back(o);
            }
            Some((kind::ACCEPTED, body)) => {
                let (p, _) = accepted_parts(body).ok_or(StoreError::Corrupt)?;
                let p = decode_signed::<Payment<'_>>(p).map_err(|_| StoreError::Corrupt)?;
                remove_open(open, &p.request_nonce);
                memory.remember(seen(&p));
                memory.remember_voucher(sha256(p.voucher.bytes()));
            }
            Some((kind::ACK, _)) => {}
            _ => return Err(StoreError::Corrupt.into()),
        }
    }
    Ok(())
}

fn remove_open<const R: usize>(open: &mut heapless::Deque<OpenRequest, R>, nonce: &Nonce) {
    let mut kept: heapless::Deque<OpenRequest, R> = heapless::Deque::new();
    while let Some(o) = open.pop_front() {
        if o.nonce != *nonce {
            let _ = kept.push_back(o);
        }
    }
    *open = kept;
}

fn seen(p: &Signed<'_, Payment<'_>>) -> Seen {
    Seen {
        voucher: p.voucher.id,
        seq: p.seq,
        link: p.id().link(),
        prev: p.prev,
        cumulative: p.cumulative,
    }
}
