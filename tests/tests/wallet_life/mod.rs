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
