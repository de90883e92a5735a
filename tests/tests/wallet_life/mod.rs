//! A wallet's life against an in-process issuer and merchant, over any store: vouchers
//! pre-authorized, spent, synced and retired. Shared by the retirement and compaction tests.

#![allow(dead_code)]

use offpay_protocol::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

pub const T0: u32 = 1_800_000_000;
pub const DAY: u32 = 86_400;

pub fn t(s: u32) -> Timestamp {
    Timestamp(T0 + s)
}

pub struct World {
    pub issuer: Issuer,
    pub trust: TrustStore<4>,
    pub eur: Currency,
    pub cert: Vec<u8>,
    pub ledger: Settlement<4>,
    pub rng: ChaCha20Rng,
}

pub type Life<S> = Wallet<S, SigningKey>;
pub type Shop<S> = Acceptor<S, SigningKey>;

pub const HOLDER: [u8; 32] = [13; 32];
pub const MERCHANT: [u8; 32] = [11; 32];

pub fn world() -> World {
    let issuer = Issuer::new(SigningKey::from_seed(&[10; 32]));
    let mut trust = TrustStore::new();
    trust.add(issuer.public_key(), t(0), t(400 * DAY)).unwrap();
    let cert = issuer
        .certify_merchant(
            MerchantId(*b"MERCH-AA"),
            SigningKey::from_seed(&MERCHANT).public_key(),
            "Bakery A",
            t(0),
            t(365 * DAY),
        )
        .unwrap()
        .to_vec();
    let mut ledger = Settlement::new(trust.clone(), settlement::DEFAULT_GRACE_SECS);
    ledger.register_merchant(&cert).unwrap();
    World {
        issuer,
        trust,
        eur: Currency::parse("EUR").unwrap(),
        cert,
        ledger,
        rng: ChaCha20Rng::from_seed([1; 32]),
    }
}

pub fn wallet<S: Store>(store: S) -> Life<S> {
    Wallet::open(store, SigningKey::from_seed(&HOLDER)).unwrap()
}

pub fn shop<S: Store>(w: &World, store: S) -> Shop<S> {
    Acceptor::open(store, SigningKey::from_seed(&MERCHANT), &w.cert).unwrap()
}

/// A voucher of `limit` (at most `max_payments` payments) for this wallet, valid for 30 days
/// from `at`.
pub fn voucher_of<S: Store>(
    w: &mut World,
    wallet: &Life<S>,
    n: u32,
    at: Timestamp,
    limit: u64,
    max_payments: u32,
) -> Vec<u8> {
    let mut nonce = [0u8; 16];
    nonce[..4].copy_from_slice(&n.to_le_bytes());
    let preauth = wallet
        .preauth_request(b"acct-1", Amount(limit), w.eur, Nonce(nonce), at)
        .unwrap();
    let terms = VoucherTerms {
        not_before: at,
        not_after: at.saturating_add(30 * DAY),
        max_single: None,
        max_payments,
    };
    w.issuer
        .issue_voucher(&preauth, terms, &mut w.rng)
        .unwrap()
        .to_vec()
}

/// A voucher of 1,000 (at most 2 payments), valid for 30 days from `at`.
pub fn voucher<S: Store>(w: &mut World, wallet: &Life<S>, n: u32, at: Timestamp) -> Vec<u8> {
    voucher_of(w, wallet, n, at, 1000, 2)
}

/// The wallet pays `amount` to the shop, which accepts; the wallet keeps the receipt.
pub fn pay<S: Store, A: Store, const R: usize, const M: usize>(
    w: &mut World,
    wallet: &mut Life<S>,
    shop: &mut Acceptor<A, SigningKey, R, M>,
    amount: u64,
    now: Timestamp,
) {
    let request = shop
        .create_request(Amount(amount), w.eur, None, now, &mut w.rng)
        .unwrap();
    let payment = wallet.pay(&request, &w.trust, None, now).unwrap();
    let ctx = Context {
        trust: &w.trust,
        revocations: None,
        now,
    };
    let receipt = shop.accept(&payment, &ctx).unwrap();
    wallet.receive_receipt(&receipt).unwrap();
}

/// Syncs the wallet with the issuer and applies its report.
pub fn sync<S: Store>(w: &mut World, wallet: &mut Life<S>, now: Timestamp) {
    let mut buf = vec![0u8; 256 * 1024];
    let n = wallet.sync_batch(&mut buf).unwrap();
    let ingested = w.ledger.ingest(&buf[..n], now).unwrap();
    let report = ingested.report(&w.issuer, now).unwrap();
    wallet.apply_report(&report, &w.trust, now).unwrap();
}

/// Syncs the shop with the issuer and applies its report.
pub fn sync_shop<A: Store, const R: usize, const M: usize>(
    w: &mut World,
    shop: &mut Acceptor<A, SigningKey, R, M>,
    now: Timestamp,
) {
    let mut buf = vec![0u8; 256 * 1024];
    let n = shop.sync_batch(&mut buf).unwrap();
    let ingested = w.ledger.ingest(&buf[..n], now).unwrap();
    let report = ingested.report(&w.issuer, now).unwrap();
    shop.apply_report(&report, &w.trust, now).unwrap();
}

/// A wallet's long life (SPEC §8.1.1, §8.5): vouchers of 10 payments of 1.00, valid for a
/// day, pre-authorized one at a time when nothing is left, spent at one payment a minute,
/// synced when spent out, and retired when installing into a full wallet.
pub struct LongLife<S: Store, A: Store> {
    pub w: World,
    pub wallet: Life<S>,
    pub shop: Shop<A>,
    pub paid: u64,
    pub vouchers: u32,
    pub now: Timestamp,
}

impl<S: Store, A: Store> LongLife<S, A> {
    pub fn new(wallet: S, shop: A) -> Self {
        let w = world();
        let shop = self::shop(&w, shop);
        LongLife {
            wallet: self::wallet(wallet),
            shop,
            w,
            paid: 0,
            vouchers: 0,
            now: t(1000),
        }
    }

    /// One payment, pre-authorizing first when nothing is left, syncing both sides after
    /// the voucher's last payment.
    pub fn pay_once(&mut self) {
        self.now = self.now.saturating_add(60);
        if self.wallet.remaining(self.w.eur, self.now) == Amount(0) {
            let v = self.day_voucher();
            self.wallet
                .install_voucher(&v, &self.w.trust, self.now)
                .unwrap();
            self.vouchers += 1;
        }
        pay(&mut self.w, &mut self.wallet, &mut self.shop, 100, self.now);
        self.paid += 1;
        if self.wallet.remaining(self.w.eur, self.now) == Amount(0) {
            sync(&mut self.w, &mut self.wallet, self.now);
            sync_shop(&mut self.w, &mut self.shop, self.now);
        }
    }

    fn day_voucher(&mut self) -> Vec<u8> {
        let mut nonce = [0u8; 16];
        nonce[..4].copy_from_slice(&self.vouchers.to_le_bytes());
        nonce[4] = 1;
        let preauth = self
            .wallet
            .preauth_request(b"acct-1", Amount(1000), self.w.eur, Nonce(nonce), self.now)
            .unwrap();
        let terms = VoucherTerms {
            not_before: self.now,
            not_after: self.now.saturating_add(DAY),
            max_single: None,
            max_payments: 10,
        };
        self.w
            .issuer
            .issue_voucher(&preauth, terms, &mut self.w.rng)
            .unwrap()
            .to_vec()
    }
}

/// The records a fresh wallet holding the same live vouchers would have: what a compaction
/// at `now` keeps (the installed vouchers, and those retired so recently that a retry may
/// still need their payments, with payments, receipts and acknowledgements), without
/// tombstones or floor.
pub fn fresh_records<S: Store>(wallet: &Life<S>, now: Timestamp) -> Vec<Vec<u8>> {
    let mut marks = vec![false; wallet.store().len()];
    wallet.plan_compaction(now, &mut marks).unwrap();
    offpay_protocol::store::records(wallet.store())
        .zip(&marks)
        .filter(|(r, keep)| **keep && !matches!(r.first(), Some(0x07 | 0x08)))
        .map(|(r, _)| r.to_vec())
        .collect()
}
