//! SPEC §8.1.1 on real file journals: a wallet pre-authorizes, spends, syncs and retires 100
//! vouchers in a row in its 8 slots; a voucher that is done but not settled keeps its slot; a
//! retired voucher is never installed again, also after the wallet is reopened.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use offpay_protocol::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const T0: u32 = 1_800_000_000;
fn t(s: u32) -> Timestamp {
    Timestamp(T0 + s)
}

struct World {
    issuer: Issuer,
    trust: TrustStore<4>,
    eur: Currency,
    cert: Vec<u8>,
    ledger: Settlement<4>,
    rng: ChaCha20Rng,
}

type FileWallet = Wallet<FileStore, SigningKey>;
type Shop = Acceptor<FileStore, SigningKey>;

const HOLDER: [u8; 32] = [13; 32];
const MERCHANT: [u8; 32] = [11; 32];

fn world() -> World {
    let issuer = Issuer::new(SigningKey::from_seed(&[10; 32]));
    let mut trust = TrustStore::new();
    trust
        .add(issuer.public_key(), t(0), t(400 * 86_400))
        .unwrap();
    let cert = issuer
        .certify_merchant(
            MerchantId(*b"MERCH-AA"),
            SigningKey::from_seed(&MERCHANT).public_key(),
            "Bakery A",
            t(0),
            t(365 * 86_400),
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

fn open(path: &std::path::Path) -> FileWallet {
    Wallet::open(
        FileStore::open(path).unwrap(),
        SigningKey::from_seed(&HOLDER),
    )
    .unwrap()
}

/// A voucher of 1,000 (at most 2 payments) for this wallet, valid for 30 days from `at`.
fn voucher(w: &mut World, wallet: &FileWallet, n: u32, at: Timestamp) -> Vec<u8> {
    let mut nonce = [0u8; 16];
    nonce[..4].copy_from_slice(&n.to_le_bytes());
    let preauth = wallet
        .preauth_request(b"acct-1", Amount(1000), w.eur, Nonce(nonce), at)
        .unwrap();
    let terms = VoucherTerms {
        not_before: at,
        not_after: at.saturating_add(30 * 86_400),
        max_single: None,
        max_payments: 2,
    };
    w.issuer
        .issue_voucher(&preauth, terms, &mut w.rng)
        .unwrap()
        .to_vec()
}

fn pay(w: &mut World, wallet: &mut FileWallet, shop: &mut Shop, amount: u64, now: Timestamp) {
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

fn sync(w: &mut World, wallet: &mut FileWallet, now: Timestamp) {
    let mut buf = vec![0u8; 256 * 1024];
    let n = wallet.sync_batch(&mut buf).unwrap();
    let ingested = w.ledger.ingest(&buf[..n], now).unwrap();
    let report = ingested.report(&w.issuer, now).unwrap();
    wallet.apply_report(&report, &w.trust, now).unwrap();
}

fn shop(w: &World, dir: &std::path::Path) -> Shop {
    let store = FileStore::open(dir.join("shop.journal")).unwrap();
    Acceptor::open(store, SigningKey::from_seed(&MERCHANT), &w.cert).unwrap()
}

#[test]
fn a_wallet_pre_authorizes_spends_and_retires_100_vouchers_in_a_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wallet.journal");
    let mut w = world();
    let mut shop = shop(&w, dir.path());
    let mut wallet = open(&path);
    let mut first = None;
    for n in 0..100u32 {
        let now = t(1000 + n * 60);
        let v = voucher(&mut w, &wallet, n, now);
        let id = wallet.install_voucher(&v, &w.trust, now).unwrap();
        first.get_or_insert((v.clone(), id));
        assert!(wallet.balances().count() <= 8, "voucher {n}");
        // Spent out in two payments, then synced: done and settled.
        pay(&mut w, &mut wallet, &mut shop, 600, now.saturating_add(1));
        pay(&mut w, &mut wallet, &mut shop, 400, now.saturating_add(2));
        sync(&mut w, &mut wallet, now.saturating_add(3));
        if n == 50 {
            // A restart mid-life: the journal replays retirements with everything else.
            drop(wallet);
            wallet = open(&path);
        }
    }
    assert_eq!(wallet.payments().count(), 200, "every payment stays listed");
    assert!(wallet.payments().all(|p| p.synced && p.receipt.is_some()));
    // A full wallet retires every done and settled voucher at once: each ninth install
    // frees all 8 slots, so 100 installs leave the last 100 − 12 × 8 = 4.
    assert_eq!(wallet.balances().count(), 4, "the last vouchers, spent out");
    assert_eq!(wallet.remaining(w.eur, t(1000 + 100 * 60)), Amount(0));

    // The first voucher, still within its window, is refused for good: reinstalled it would
    // pay again from sequence 1.
    let (v0, _) = first.unwrap();
    let now = t(1000 + 100 * 60);
    let e = wallet.install_voucher(&v0, &w.trust, now).unwrap_err();
    assert_eq!(e.name(), "voucher-retired");
    drop(wallet);
    let mut wallet = open(&path);
    let e = wallet.install_voucher(&v0, &w.trust, now).unwrap_err();
    assert_eq!(e.name(), "voucher-retired", "also after a reopen");
    assert_eq!(wallet.balances().count(), 4);
}

#[test]
fn a_voucher_done_but_not_settled_keeps_its_slot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wallet.journal");
    let mut w = world();
    let mut shop = shop(&w, dir.path());
    let mut wallet = open(&path);
    let now = t(1000);
    for n in 0..8u32 {
        let v = voucher(&mut w, &wallet, n, now);
        wallet.install_voucher(&v, &w.trust, now).unwrap();
    }
    // Spend the first voucher out, but do not sync: its payments are not settled.
    pay(&mut w, &mut wallet, &mut shop, 600, t(1001));
    pay(&mut w, &mut wallet, &mut shop, 400, t(1002));
    let ninth = voucher(&mut w, &wallet, 8, t(1003));
    let before = wallet.store().len();
    let e = wallet
        .install_voucher(&ninth, &w.trust, t(1003))
        .unwrap_err();
    assert_eq!(e.name(), "capacity-exceeded");
    assert_eq!(wallet.store().len(), before, "a refusal appends nothing");
    // Vouchers with money left are never retired, even when settled.
    sync(&mut w, &mut wallet, t(1004));
    assert_eq!(wallet.retire(t(1005)).unwrap(), 1, "only the spent-out one");
    wallet.install_voucher(&ninth, &w.trust, t(1006)).unwrap();
    assert_eq!(wallet.balances().count(), 8);
    assert_eq!(wallet.remaining(w.eur, t(1007)), Amount(8 * 1000));
    // A voucher past its window (plus the skew), settled, is retired even with money left.
    let late = t(1000 + 30 * 86_400 + CLOCK_SKEW_SECS + 1);
    assert_eq!(
        wallet.retire(late).unwrap(),
        7,
        "the seven untouched ones have closed"
    );
}
