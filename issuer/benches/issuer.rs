//! The issuer service against its floors, as ratios measured in one run:
//!
//! - sync over HTTP (SQLite) per payment with its receipt, against in-process
//!   `Settlement::ingest` of the same batches;
//! - pre-authorizations per second with 1, 8 and 64 concurrent clients, against the floor
//!   (one `verify_strict` and one signature per pre-authorization) on as many threads, with
//!   p50/p99 latency;
//! - opening a ledger of 10^3, 10^5 and 10^6 payment records, and one sync against each.
//!
//! `cargo bench -p offpay-issuer --bench issuer` (add `-- quick` for a short run).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::*;
use offpay_issuer::sqlite::SqliteStorage;
use offpay_issuer::storage::Storage;
use offpay_protocol::*;
use std::time::Instant;

/// A batch's records as two batches, the first half and the second.
fn split(whole: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let b = decode_unsigned::<msg::SyncBatch<'_>>(whole).unwrap();
    let records: Vec<&[u8]> = b.records().collect();
    let half = records.len() / 2;
    (batch(&records[..half]), batch(&records[half..]))
}

fn bench_sync(n: usize, runs: usize) {
    let mut ratios = Vec::new();
    let (mut http_us, mut mem_us) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let w = world();
        let (batches, certs) = payments(&w, n, 1);
        // In-process: a fresh Settlement, the same batches.
        let mem = ingest_seconds(&w.trust, &certs, &batches);
        // Over HTTP into the service's SQLite ledger.
        let t = Instant::now();
        for b in &batches {
            w.public.sync(b).unwrap();
        }
        let http = t.elapsed().as_secs_f64();
        assert_eq!(credited(&w.admin) as usize, n, "every payment credited");
        http_us.push(http * 1e6 / n as f64);
        mem_us.push(mem * 1e6 / n as f64);
        ratios.push(http / mem);
    }
    println!(
        "sync {n} payments + receipts: HTTP+SQLite {:.1} us/payment, in-process ingest {:.1} us/payment, ratio {:.2} (median of {runs}; runs {:?})",
        median(http_us),
        median(mem_us),
        median(ratios.clone()),
        ratios
            .iter()
            .map(|r| (r * 100.0).round() / 100.0)
            .collect::<Vec<_>>()
    );
}

fn bench_preauth(clients: usize, per_client: usize) {
    let w = world();
    let run = preauth_load(&w, clients, per_client, 1);
    let floor = floor_rate(
        clients.min(std::thread::available_parallelism().map_or(2, |n| n.get())),
        400,
    );
    let http = http_rate(&w.urls(), clients, per_client);
    println!(
        "pre-authorization, {clients:>2} client(s): {:.0}/s, floor (verify + sign on as many threads) {floor:.0}/s, ratio {:.2}; p50 {:.2} ms, p99 {:.2} ms; GET /healthz by the same clients {http:.0}/s, ratio {:.2}",
        run.rate,
        run.rate / floor,
        run.p50_ms,
        run.p99_ms,
        run.rate / http,
    );
}

/// A ledger of `n` payment records (copies of real rows under fresh ids, written by SQL so
/// that 10^6 take seconds, not an hour), then: the time to open it, and to sync one batch.
fn bench_open(n: usize) {
    let w = world();
    let (batches, _) = payments(&w, 128, 1);
    let (first, second) = split(&batches[0]);
    w.public.sync(&first).unwrap();
    let db = w.services[0].data().join("ledger.sqlite");
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch(&format!(
            "BEGIN;
             WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < {n})
             INSERT INTO payments (payment_id, voucher_id, seq, merchant_id, amount_minor, credited, batch, position, bytes)
             SELECT randomblob(32), randomblob(16), 1, p.merchant_id, p.amount_minor, 1, p.batch, randomblob(20), p.bytes
             FROM k, (SELECT * FROM payments LIMIT 1) p;
             COMMIT;"
        ))
        .unwrap();
    }
    let mut opens = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let s = SqliteStorage::open(&db).unwrap();
        s.check().unwrap();
        opens.push(t.elapsed().as_secs_f64() * 1e3);
    }
    // One more batch of new payments against the big ledger.
    let t = Instant::now();
    w.public.sync(&second).unwrap();
    let sync_ms = t.elapsed().as_secs_f64() * 1e3;
    let size = std::fs::metadata(&db).unwrap().len()
        + std::fs::metadata(db.with_extension("sqlite-wal")).map_or(0, |m| m.len());
    println!(
        "ledger of {n:>7} payments ({:.0} MB): open {:.2} ms (median of 5), sync of 64 payments + receipts {sync_ms:.1} ms",
        size as f64 / 1e6,
        median(opens)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "quick");
    // `sync`, `preauth` or `open` runs that part alone.
    let only = ["sync", "preauth", "open"]
        .into_iter()
        .find(|p| args.iter().any(|a| a == p));
    let run = |part: &str| only.is_none_or(|o| o == part);
    let (n, runs, per) = if quick { (512, 1, 50) } else { (4096, 3, 200) };
    if run("sync") {
        bench_sync(n, runs);
    }
    if run("preauth") {
        for clients in [1, 8, 64] {
            bench_preauth(clients, (per * 8 / clients.max(8)).max(20));
        }
    }
    if run("open") {
        for n in [1_000, 100_000, 1_000_000] {
            if quick && n > 1_000 {
                break;
            }
            bench_open(n);
        }
    }
}
