//! SPEC §8.5 open cost over a wallet's life: 100,000 payments (vouchers of ten 1.00 payments,
//! valid a day, pre-authorized, spent at one a minute, synced and retired in turn), and at
//! 10^3, 10^4 and 10^5 payments the journal's size and its open time (file read and replay),
//! beside a fresh wallet's journal holding the same installed vouchers, payments, receipts
//! and acknowledgements. Journals live on tmpfs (/dev/shm when there is one): an append's
//! fsync is not what this measures.
//!
//! `cargo bench -p offpay-conformance --bench journal_life` (`-- 10000` for a shorter life).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use offpay_protocol::store::records;
use offpay_protocol::{FileStore, SigningKey, Store, Wallet};
use std::path::Path;
use std::time::Instant;

#[path = "../tests/wallet_life/mod.rs"]
mod wallet_life;

/// The median time, in microseconds, of opening the wallet journal at `path`.
fn open_micros(path: &Path) -> f64 {
    let mut times: Vec<f64> = (0..15)
        .map(|_| {
            let start = Instant::now();
            let store = FileStore::open(path).unwrap();
            let wallet: wallet_life::Life<_> =
                Wallet::open(store, SigningKey::from_seed(&wallet_life::HOLDER)).unwrap();
            let took = start.elapsed().as_secs_f64() * 1e6;
            assert!(wallet.balances().count() <= 8);
            took
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let total: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let dir = match Path::new("/dev/shm").is_dir() {
        true => tempfile::tempdir_in("/dev/shm").unwrap(),
        false => tempfile::tempdir().unwrap(),
    };
    let path = dir.path().join("wallet.journal");
    let mut life = wallet_life::LongLife::new(
        FileStore::open(&path).unwrap(),
        FileStore::open(dir.path().join("till.journal")).unwrap(),
    );
    println!(
        "| payments | vouchers | journal: records, bytes | open | fresh: records, bytes | open | size ratio | open ratio |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let started = Instant::now();
    let mut next = 1_000;
    while life.paid < total {
        life.pay_once();
        if life.paid != next {
            continue;
        }
        next *= 10;
        let fresh_path = dir.path().join(format!("fresh-{}.journal", life.paid));
        let mut fresh = FileStore::open(&fresh_path).unwrap();
        for r in wallet_life::fresh_records(&life.wallet, life.now) {
            fresh.append(&r).unwrap();
        }
        let (n, size) = (life.wallet.store().len(), life.wallet.store().size());
        let tombstones = records(life.wallet.store())
            .filter(|r| r.first() == Some(&0x07))
            .count();
        let (fresh_n, fresh_size) = (fresh.len(), fresh.size());
        drop(fresh);
        let open = open_micros(&path);
        let fresh_open = open_micros(&fresh_path);
        println!(
            "| {} | {} | {n} ({tombstones} tombstones), {size} B | {open:.0} µs | {fresh_n}, {fresh_size} B | {fresh_open:.0} µs | {:.2} | {:.2} |",
            life.paid,
            life.vouchers,
            size as f64 / fresh_size as f64,
            open / fresh_open,
        );
    }
    eprintln!(
        "{} payments in {:.0} s",
        life.paid,
        started.elapsed().as_secs_f64()
    );
}
