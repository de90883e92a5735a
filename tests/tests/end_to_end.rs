//! The whole story on real file journals: pre-authorization, three offline payments to two
//! merchants, receipts, both sides syncing twice, each payment credited exactly once; then a
//! cloned wallet double-spends and settlement proves it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use offpay_protocol::msg::FraudProof;
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
    cert_a: Vec<u8>,
    cert_b: Vec<u8>,
    key_a: [u8; 32],
    key_b: [u8; 32],
    holder_seed: [u8; 32],
}

fn world() -> World {
    let issuer = Issuer::new(SigningKey::from_seed(&[10; 32]));
    let mut trust = TrustStore::new();
    trust
        .add(issuer.public_key(), t(0), t(400 * 86_400))
        .unwrap();
    let (key_a, key_b) = ([11; 32], [12; 32]);
    let cert = |id: &[u8; 8], seed: &[u8; 32], name: &str| {
        issuer
            .certify_merchant(
                MerchantId(*id),
                SigningKey::from_seed(seed).public_key(),
                name,
                t(0),
                t(365 * 86_400),
            )
            .unwrap()
            .to_vec()
    };
    World {
        cert_a: cert(b"MERCH-AA", &key_a, "Bakery A"),
        cert_b: cert(b"MERCH-BB", &key_b, "Books B"),
        issuer,
        trust,
        eur: Currency::parse("EUR").unwrap(),
        key_a,
        key_b,
        holder_seed: [13; 32],
    }
}

type FileAcceptor = Acceptor<FileStore, SigningKey>;
type FileWallet = Wallet<FileStore, SigningKey>;

fn pay_one(
    w: &World,
    wallet: &mut FileWallet,
    shop: &mut FileAcceptor,
    amount: u64,
    now: Timestamp,
    rng: &mut ChaCha20Rng,
) -> Vec<u8> {
    let request = shop
        .create_request(Amount(amount), w.eur, None, now, rng)
        .unwrap();
    let payment = wallet.pay(&request, &w.trust, None, now).unwrap();
    let receipt = shop
        .accept(
            &payment,
            &Context {
                trust: &w.trust,
                revocations: None,
                now,
            },
        )
        .unwrap();
    wallet.receive_receipt(&receipt).unwrap();
    payment.to_vec()
}

fn sync_wallet(
    wallet: &mut FileWallet,
    ledger: &mut Settlement<4>,
    w: &World,
    now: Timestamp,
) -> Vec<msg::Outcome> {
    let mut buf = vec![0u8; 256 * 1024];
    let n = wallet.sync_batch(&mut buf).unwrap();
    let ingested = ledger.ingest(&buf[..n], now).unwrap();
    wallet
        .apply_report(&ingested.report(&w.issuer, now).unwrap(), &w.trust, now)
        .unwrap();
    ingested.entries.iter().map(|e| e.outcome).collect()
}

fn sync_shop(
    shop: &mut FileAcceptor,
    ledger: &mut Settlement<4>,
    w: &World,
    now: Timestamp,
) -> Vec<msg::Outcome> {
    let mut buf = vec![0u8; 256 * 1024];
    let n = shop.sync_batch(&mut buf).unwrap();
    let ingested = ledger.ingest(&buf[..n], now).unwrap();
    shop.apply_report(&ingested.report(&w.issuer, now).unwrap(), &w.trust, now)
        .unwrap();
    ingested.entries.iter().map(|e| e.outcome).collect()
}

#[test]
fn three_payments_two_merchants_both_sides_sync_twice_each_credited_once() {
    let dir = tempfile::tempdir().unwrap();
    let w = world();
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let mut wallet: FileWallet = Wallet::open(
        FileStore::open(dir.path().join("wallet.journal")).unwrap(),
        SigningKey::from_seed(&w.holder_seed),
    )
    .unwrap();
    let preauth = wallet
        .preauth_request(
            b"iban:DE89-3704",
            Amount(5000),
            w.eur,
            Nonce([1; 16]),
            t(10),
        )
        .unwrap();
    let terms = VoucherTerms {
        not_before: t(0),
        not_after: t(30 * 86_400),
        max_single: Some(Amount(3000)),
        max_payments: 10,
    };
    let voucher = w.issuer.issue_voucher(&preauth, terms, &mut rng).unwrap();
    let voucher_id = wallet.install_voucher(&voucher, &w.trust, t(20)).unwrap();

    let mut shop_a: FileAcceptor = Acceptor::open(
        FileStore::open(dir.path().join("a.journal")).unwrap(),
        SigningKey::from_seed(&w.key_a),
        &w.cert_a,
    )
    .unwrap();
    let mut shop_b: FileAcceptor = Acceptor::open(
        FileStore::open(dir.path().join("b.journal")).unwrap(),
        SigningKey::from_seed(&w.key_b),
        &w.cert_b,
    )
    .unwrap();

    let p1 = pay_one(&w, &mut wallet, &mut shop_a, 420, t(100), &mut rng);
    let p2 = pay_one(&w, &mut wallet, &mut shop_b, 1200, t(200), &mut rng);
    let p3 = pay_one(&w, &mut wallet, &mut shop_a, 80, t(300), &mut rng);
    assert_eq!(wallet.remaining(w.eur, t(301)), Amount(5000 - 1700));
    assert_eq!(wallet.payments().count(), 3);
    assert!(wallet.payments().all(|p| p.receipt.is_some() && !p.synced));
    assert_eq!(shop_a.payments().count(), 2);
    assert_eq!(shop_b.payments().count(), 1);

    // Reopen everything from disk, as after a restart: nothing is lost.
    drop(wallet);
    let mut wallet: FileWallet = Wallet::open(
        FileStore::open(dir.path().join("wallet.journal")).unwrap(),
        SigningKey::from_seed(&w.holder_seed),
    )
    .unwrap();
    assert_eq!(wallet.remaining(w.eur, t(400)), Amount(3300));

    let mut ledger = Settlement::new(w.trust.clone(), settlement::DEFAULT_GRACE_SECS);
    ledger.register_merchant(&w.cert_a).unwrap();
    ledger.register_merchant(&w.cert_b).unwrap();
    use msg::Outcome::*;
    // The customer syncs first: payments and receipts together credit all three.
    assert_eq!(
        sync_wallet(&mut wallet, &mut ledger, &w, t(5000)),
        vec![Credited, Credited, Credited, Credited, Credited, Credited]
    );
    // The merchants sync the same payments: duplicates, nothing credited again.
    assert_eq!(
        sync_shop(&mut shop_a, &mut ledger, &w, t(5100)),
        vec![Duplicate; 4]
    );
    assert_eq!(
        sync_shop(&mut shop_b, &mut ledger, &w, t(5200)),
        vec![Duplicate; 2]
    );
    // Everyone was acknowledged, so a second sync sends nothing.
    assert_eq!(sync_wallet(&mut wallet, &mut ledger, &w, t(6000)), vec![]);
    assert_eq!(sync_shop(&mut shop_a, &mut ledger, &w, t(6000)), vec![]);
    assert!(wallet.payments().all(|p| p.synced));
    assert!(shop_a.payments().all(|p| p.synced));

    // Even replaying the first batches verbatim changes nothing.
    let mut buf = vec![0u8; 64 * 1024];
    let mut fresh_shop: FileAcceptor = Acceptor::open(
        FileStore::open(dir.path().join("a.journal")).unwrap(),
        SigningKey::from_seed(&w.key_a),
        &w.cert_a,
    )
    .unwrap();
    assert!(
        fresh_shop.payments().all(|p| p.synced),
        "acknowledgements survive a restart"
    );
    let _ = &mut fresh_shop;
    let mut all = Vec::new();
    for p in [&p1, &p2, &p3] {
        all.push(p.as_slice());
    }
    let mut bw = msg::sync::ItemsWriter::sync_batch(&mut buf, all.len()).unwrap();
    for p in &all {
        bw.push(p).unwrap();
    }
    let n = bw.finish().unwrap();
    let again = ledger.ingest(&buf[..n], t(7000)).unwrap();
    assert!(again.entries.iter().all(|e| e.outcome == Duplicate));

    for p in [&p1, &p3] {
        assert!(ledger.is_credited(&PaymentId(crypto::sha256(p))));
    }
    let (a, b) = (MerchantId(*b"MERCH-AA"), MerchantId(*b"MERCH-BB"));
    assert_eq!(ledger.credit_of(&a, w.eur), Amount(500));
    assert_eq!(ledger.credit_of(&b, w.eur), Amount(1200));
    let summary = ledger.voucher(&voucher_id).unwrap();
    assert_eq!(
        (summary.credited, summary.fraud, summary.released),
        (Amount(1700), false, None)
    );
    let closed = ledger.close_expired(t(30 * 86_400 + settlement::DEFAULT_GRACE_SECS + 1));
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].released, Some(Amount(3300)));
}

#[test]
fn a_cloned_wallet_double_spends_and_settlement_proves_it() {
    let dir = tempfile::tempdir().unwrap();
    let w = world();
    let mut rng = ChaCha20Rng::from_seed([2; 32]);
    let journal = dir.path().join("wallet.journal");
    let mut wallet: FileWallet = Wallet::open(
        FileStore::open(&journal).unwrap(),
        SigningKey::from_seed(&w.holder_seed),
    )
    .unwrap();
    let preauth = wallet
        .preauth_request(b"card", Amount(5000), w.eur, Nonce([2; 16]), t(10))
        .unwrap();
    let terms = VoucherTerms {
        not_before: t(0),
        not_after: t(30 * 86_400),
        max_single: Some(Amount(5000)),
        max_payments: 10,
    };
    let voucher = w.issuer.issue_voucher(&preauth, terms, &mut rng).unwrap();
    let voucher_id = wallet.install_voucher(&voucher, &w.trust, t(20)).unwrap();

    // The attacker copies the device: its key and its journal, before any payment.
    drop(wallet);
    let clone_journal = dir.path().join("clone.journal");
    std::fs::copy(&journal, &clone_journal).unwrap();
    let mut wallet: FileWallet = Wallet::open(
        FileStore::open(&journal).unwrap(),
        SigningKey::from_seed(&w.holder_seed),
    )
    .unwrap();
    let mut clone: FileWallet = Wallet::open(
        FileStore::open(&clone_journal).unwrap(),
        SigningKey::from_seed(&w.holder_seed),
    )
    .unwrap();

    let mut shop_a: FileAcceptor = Acceptor::open(
        FileStore::open(dir.path().join("a.journal")).unwrap(),
        SigningKey::from_seed(&w.key_a),
        &w.cert_a,
    )
    .unwrap();
    let mut shop_b: FileAcceptor = Acceptor::open(
        FileStore::open(dir.path().join("b.journal")).unwrap(),
        SigningKey::from_seed(&w.key_b),
        &w.cert_b,
    )
    .unwrap();
    // Each copy spends the whole limit, at a different merchant, offline.
    pay_one(&w, &mut wallet, &mut shop_a, 5000, t(100), &mut rng);
    pay_one(&w, &mut clone, &mut shop_b, 4000, t(110), &mut rng);

    // A merchant that sees both copies catches the clone offline.
    let request = shop_a
        .create_request(Amount(1000), w.eur, None, t(120), &mut rng)
        .unwrap();
    let again = clone.pay(&request, &w.trust, None, t(120)).unwrap();
    let before = shop_a.store().len();
    let refused = shop_a.accept(
        &again,
        &Context {
            trust: &w.trust,
            revocations: None,
            now: t(121),
        },
    );
    assert_eq!(refused, Err(Error::Rejected(Rejection::ChainInconsistent)));
    assert_eq!(
        shop_a.store().len(),
        before,
        "a refused payment stores nothing"
    );

    let mut ledger = Settlement::new(w.trust.clone(), settlement::DEFAULT_GRACE_SECS);
    ledger.register_merchant(&w.cert_a).unwrap();
    ledger.register_merchant(&w.cert_b).unwrap();
    use msg::Outcome::*;
    assert_eq!(
        sync_shop(&mut shop_a, &mut ledger, &w, t(5000)),
        vec![Credited, Credited]
    );
    assert_eq!(
        sync_shop(&mut shop_b, &mut ledger, &w, t(5100)),
        vec![Conflict, Credited]
    );
    assert_eq!(ledger.proofs().len(), 1);
    let proof = decode_unsigned::<FraudProof<'_>>(&ledger.proofs()[0]).unwrap();
    proof.verify(&w.trust).unwrap();
    assert_eq!(proof.kind, msg::FraudKind::SameSequence);
    assert_eq!(
        proof.first.voucher.id, voucher_id,
        "the proof names the voucher"
    );
    // SPEC §10: every delivered payment that passed the merchant's offline checks is credited
    // in full; the holder owes the overspend.
    assert_eq!(
        ledger.credit_of(&MerchantId(*b"MERCH-AA"), w.eur),
        Amount(5000)
    );
    assert_eq!(
        ledger.credit_of(&MerchantId(*b"MERCH-BB"), w.eur),
        Amount(4000)
    );
    let s = ledger.voucher(&voucher_id).unwrap();
    assert!(s.fraud);
    assert_eq!(s.overspend, Amount(4000));
    // The wallets' own sync, with the same payments, is all duplicates.
    assert_eq!(
        sync_wallet(&mut wallet, &mut ledger, &w, t(6000)),
        vec![Duplicate, Duplicate]
    );
}
