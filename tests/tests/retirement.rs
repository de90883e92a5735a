//! SPEC §8.1.1 on real file journals: a wallet pre-authorizes, spends, syncs and retires 100
//! vouchers in a row in its 8 slots; a voucher that is done but not settled keeps its slot; a
//! retired voucher is never installed again, also after the wallet is reopened.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use offpay_protocol::*;

mod wallet_life;
use wallet_life::{pay, sync, t, voucher, world};

type FileWallet = wallet_life::Life<FileStore>;

fn open(path: &std::path::Path) -> FileWallet {
    wallet_life::wallet(FileStore::open(path).unwrap())
}

fn shop(w: &wallet_life::World, dir: &std::path::Path) -> wallet_life::Shop<FileStore> {
    wallet_life::shop(w, FileStore::open(dir.join("shop.journal")).unwrap())
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
        // Half an hour apart: past the window in which a retired voucher is kept whole.
        let now = t(1000 + n * 1800);
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
    // Installing into a full wallet retires, then compacts once the dead records are worth a
    // rewrite (SPEC §8.5): the journal keeps the installed vouchers' payments, not all 200.
    let installed: Vec<VoucherId> = wallet.balances().map(|b| b.id).collect();
    let listed: Vec<_> = wallet.payments().collect();
    eprintln!(
        "listed {} payments, {} records, {} bytes",
        listed.len(),
        wallet.store().len(),
        wallet.store().size()
    );
    let mine = |p: &&wallet::StoredPayment<'_>| installed.contains(&p.payment.voucher.id);
    assert_eq!(listed.iter().filter(mine).count(), 2 * installed.len());
    assert!(
        listed.len() < 200,
        "retired vouchers' payments compacted away"
    );
    assert!(listed.iter().all(|p| p.synced && p.receipt.is_some()));
    // A full wallet retires every done and settled voucher at once: each ninth install
    // frees all 8 slots, so 100 installs leave the last 100 − 12 × 8 = 4.
    assert_eq!(wallet.balances().count(), 4, "the last vouchers, spent out");
    assert_eq!(wallet.remaining(w.eur, t(1000 + 100 * 1800)), Amount(0));

    // The first voucher, still within its window, is refused for good: reinstalled it would
    // pay again from sequence 1.
    let (v0, _) = first.unwrap();
    let now = t(1000 + 100 * 1800);
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
