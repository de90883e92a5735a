//! SPEC §8.5 compaction of wallets and tills on real file journals: what a compaction keeps,
//! the floor that replaces tombstones of ended vouchers, and a till that still catches a
//! cloned wallet after dropping what the issuer acknowledged.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use offpay_protocol::*;

mod wallet_life;
use wallet_life::{DAY, pay, sync, sync_shop, t, voucher, voucher_of, world};

#[test]
fn ended_tombstones_fold_into_a_floor_that_refuses_them_under_a_clock_set_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wallet.journal");
    let mut w = world();
    let mut shop = wallet_life::shop(&w, FileStore::open(dir.path().join("shop")).unwrap());
    let mut wallet = wallet_life::wallet(FileStore::open(&path).unwrap());
    let mut vouchers = Vec::new();
    for n in 0..3u32 {
        let v = voucher(&mut w, &wallet, n, t(1000));
        wallet.install_voucher(&v, &w.trust, t(1000)).unwrap();
        vouchers.push(v);
    }
    pay(&mut w, &mut wallet, &mut shop, 1000, t(2000));
    pay(&mut w, &mut wallet, &mut shop, 1000, t(2001));
    sync(&mut w, &mut wallet, t(2002));
    assert_eq!(wallet.retire(t(2003)).unwrap(), 2);

    // Scratch space too short for the journal: refused, nothing changed.
    let size = wallet.store().size();
    let e = wallet.compact(t(2004), &mut [false; 3]).unwrap_err();
    assert_eq!(e.name(), "full");
    assert_eq!(wallet.store().size(), size);

    // Within a request's freshness of their last payment (600 s, and the skew on both
    // clocks), retired vouchers stay whole: paying that request again gives the same bytes.
    let mut marks = vec![false; wallet.store().len()];
    let plan = wallet.compact(t(2004), &mut marks).unwrap();
    assert_eq!(plan.dropped, 0, "nothing dead yet");
    // Past it, and before the vouchers end, their tombstones stay.
    let mut marks = vec![false; wallet.store().len()];
    let plan = wallet.compact(t(2001 + 1200 + 1), &mut marks).unwrap();
    assert_eq!(plan.kept, 1 + 2, "the unspent voucher and two tombstones");
    assert_eq!(wallet.payments().count(), 0, "settled history is dropped");
    assert_eq!(wallet.balances().count(), 1);

    // Past not_after + skew they fold into one floor record.
    let late = t(1000 + 30 * DAY + CLOCK_SKEW_SECS + 1);
    let mut marks = vec![false; wallet.store().len()];
    let plan = wallet.compact(late, &mut marks).unwrap();
    assert_eq!(
        (plan.kept, plan.dropped),
        (2, 2),
        "the voucher and the floor"
    );
    assert_eq!(wallet.store().len(), 2);
    let floor = wallet.store().get(1).unwrap();
    assert_eq!(floor[0], 0x08);
    assert_eq!(
        floor[1..],
        t(1000 + 30 * DAY).0.to_le_bytes(),
        "the latest not_after"
    );

    // A device whose clock went back to the vouchers' window refuses them after a reopen.
    drop(wallet);
    let mut wallet = wallet_life::wallet(FileStore::open(&path).unwrap());
    for v in &vouchers[..2] {
        let e = wallet.install_voucher(v, &w.trust, t(3000)).unwrap_err();
        assert_eq!(e.name(), "voucher-retired");
    }
    // The one still installed is not touched by the floor, and a voucher issued later
    // installs.
    assert_eq!(
        wallet
            .install_voucher(&vouchers[2], &w.trust, t(3000))
            .unwrap(),
        { decode_signed::<msg::Voucher>(&vouchers[2]).unwrap().id }
    );
    let fresh = voucher(&mut w, &wallet, 9, late);
    wallet.install_voucher(&fresh, &w.trust, late).unwrap();
    // Compacting again keeps the one floor record.
    let mut marks = vec![false; wallet.store().len()];
    let plan = wallet.compact(late, &mut marks).unwrap();
    assert_eq!(plan.dropped, 0);
}

#[test]
fn a_till_drops_what_the_issuer_acknowledged_and_still_catches_a_cloned_wallet() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = world();
    let till_path = dir.path().join("till.journal");
    let till = |w: &wallet_life::World| {
        let store = FileStore::open(&till_path).unwrap();
        Acceptor::<_, _, 8, 4>::open(
            store,
            SigningKey::from_seed(&wallet_life::MERCHANT),
            &w.cert,
        )
        .unwrap()
    };
    let mut shop = till(&w);
    let wallet_path = dir.path().join("wallet.journal");
    let mut wallet = wallet_life::wallet(FileStore::open(&wallet_path).unwrap());
    let v = voucher_of(&mut w, &wallet, 0, t(1000), 100_000, 100);
    wallet.install_voucher(&v, &w.trust, t(1000)).unwrap();
    for n in 0..19 {
        pay(&mut w, &mut wallet, &mut shop, 100, t(2000 + n));
    }
    // A clone of the wallet as it was before its 20th payment.
    let clone_path = dir.path().join("clone.journal");
    std::fs::copy(&wallet_path, &clone_path).unwrap();
    pay(&mut w, &mut wallet, &mut shop, 100, t(2019));
    // A request still open when the till syncs.
    let waiting = shop
        .create_request(Amount(250), w.eur, None, t(2020), &mut w.rng)
        .unwrap();
    let records = shop.store().len();
    let accepted: Vec<PaymentId> = shop.payments().map(|p| p.payment.id()).collect();
    // A till that keeps the history itself: the compaction hands it what it drops.
    shop.set_auto_compact(false);
    sync_shop(&mut w, &mut shop, t(2021));
    assert_eq!(
        shop.store().len(),
        records + 40,
        "acknowledged, not compacted yet"
    );
    let mut archived = Vec::new();
    let done = shop
        .compact_if_worth_archiving(&mut |p| {
            assert!(p.synced);
            archived.push(p.payment.id());
            Ok(())
        })
        .unwrap();
    assert!(done.is_some());
    assert_eq!(
        archived,
        accepted[..16],
        "the 16 oldest, once each, oldest first"
    );
    // 20 accepted, 21 requests, 40 acknowledgements: the last 4 accepted with their 8
    // acknowledgements and the open request stay.
    assert_eq!(records, 20 + 21);
    assert_eq!(
        shop.store().len(),
        4 + 8 + 1,
        "compacted when the report applied"
    );
    assert_eq!(shop.payments().count(), 4);
    assert!(shop.payments().all(|p| p.synced));

    let mut shop = till(&w);
    // The open request survived: the customer pays it.
    let ctx = Context {
        trust: &w.trust,
        revocations: None,
        now: t(2022),
    };
    let payment = wallet.pay(&waiting, &w.trust, None, t(2022)).unwrap();
    shop.accept(&payment, &ctx).unwrap();
    // The clone pays its 20th payment again: the memory kept by the compaction refuses it.
    let mut clone = wallet_life::wallet(FileStore::open(&clone_path).unwrap());
    let request = shop
        .create_request(Amount(100), w.eur, None, t(2023), &mut w.rng)
        .unwrap();
    let forged = clone.pay(&request, &w.trust, None, t(2023)).unwrap();
    let e = shop.accept(&forged, &ctx).unwrap_err();
    assert_eq!(e.name(), "sequence-reused");
}

/// A journal's file size from its records: the magic and one 8-byte frame header each.
fn file_size(records: &[Vec<u8>]) -> usize {
    8 + records.iter().map(|r| 8 + r.len()).sum::<usize>()
}

#[test]
fn a_long_lived_wallet_journal_stays_within_twice_a_fresh_one() {
    let dir = match std::path::Path::new("/dev/shm").is_dir() {
        true => tempfile::tempdir_in("/dev/shm").unwrap(),
        false => tempfile::tempdir().unwrap(),
    };
    let mut life = wallet_life::LongLife::new(
        FileStore::open(dir.path().join("wallet.journal")).unwrap(),
        FileStore::open(dir.path().join("till.journal")).unwrap(),
    );
    let mut worst: f64 = 0.0;
    for _ in 0..1_500 {
        life.pay_once();
        if life.paid % 10 == 0 {
            let fresh = file_size(&wallet_life::fresh_records(&life.wallet, life.now));
            let size = life.wallet.store().size();
            worst = worst.max(size as f64 / fresh as f64);
            assert!(
                size <= 2 * fresh,
                "{} payments: {size} > 2 × {fresh}",
                life.paid
            );
        }
    }
    // 150 vouchers over 25 hours: the first day's tombstones have folded into the floor.
    assert_eq!(life.vouchers, 150);
    assert!(
        life.wallet.store().size() < 64 * 1024,
        "bounded by what is live, not by 1,500 payments"
    );
    // The till keeps its last 256 accepted payments with two acknowledgements each, and less
    // than half as much again of dead records before it compacts.
    let till = life.shop.store().len();
    assert!(till <= 2 * 3 * 256, "the till: {till} records");
    eprintln!("worst journal / fresh journal over 1,500 payments: {worst:.2}");
}

#[test]
fn a_request_paid_again_after_its_voucher_retired_and_compacted_gets_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = world();
    let mut shop = wallet_life::shop(&w, FileStore::open(dir.path().join("shop")).unwrap());
    let mut wallet = wallet_life::wallet(FileStore::open(dir.path().join("wallet")).unwrap());
    let v = voucher(&mut w, &wallet, 0, t(1000));
    wallet.install_voucher(&v, &w.trust, t(1000)).unwrap();
    let v2 = voucher(&mut w, &wallet, 1, t(1000));
    wallet.install_voucher(&v2, &w.trust, t(1000)).unwrap();
    // Two payments spend the first voucher out; the second one's request is kept.
    pay(&mut w, &mut wallet, &mut shop, 600, t(2000));
    let request = shop
        .create_request(Amount(400), w.eur, None, t(2001), &mut w.rng)
        .unwrap();
    let paid = wallet.pay(&request, &w.trust, None, t(2001)).unwrap();
    let ctx = Context {
        trust: &w.trust,
        revocations: None,
        now: t(2001),
    };
    let receipt = shop.accept(&paid, &ctx).unwrap();
    wallet.receive_receipt(&receipt).unwrap();
    sync(&mut w, &mut wallet, t(2002));
    assert_eq!(wallet.retire(t(2003)).unwrap(), 1);
    let mut marks = vec![false; wallet.store().len()];
    wallet.compact(t(2004), &mut marks).unwrap();
    // The answer was lost; the request is shown again, and the wallet answers the same.
    let again = wallet.pay(&request, &w.trust, None, t(2100)).unwrap();
    assert_eq!(again[..], paid[..], "the stored payment, not a second one");
    // Once no request of its could be fresh, the voucher's records go.
    let late = t(2001 + REQUEST_FRESH_SECS + 2 * CLOCK_SKEW_SECS + 1);
    let mut marks = vec![false; wallet.store().len()];
    let plan = wallet.compact(late, &mut marks).unwrap();
    assert!(plan.dropped > 0);
    assert!(
        wallet
            .payments()
            .all(|p| p.payment.voucher.id != decode_signed::<msg::Voucher>(&v).unwrap().id)
    );
}
