//! The issuer at scale, as ratios measured in one run:
//!
//! - sync throughput (payments per second, each with its receipt) of one and three service
//!   instances over one PostgreSQL, and of one instance on SQLite, against in-process
//!   `Settlement::ingest` of the same batches;
//! - pre-authorizations per second and p50/p99 latency at 64 concurrent clients on each.
//!
//! PostgreSQL is a throw-away cluster the benchmark starts (as the tests do), or the server
//! `OFFPAY_TEST_POSTGRES` names. Every instance runs in this process on its own runtime.
//!
//! `cargo bench -p offpay-issuer --bench scale` (add `-- quick` for a short run).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;
#[path = "../tests/common/pg.rs"]
mod pg;

use common::*;
use std::time::Instant;

/// Concurrent uploaders in the sync run; each sends its batches one after another.
const UPLOADERS: usize = 8;
/// Tills the payments are made at: batches of different tills touch different vouchers.
const MERCHANTS: usize = 8;

struct Setup {
    name: &'static str,
    postgres: bool,
    instances: usize,
}

const SETUPS: [Setup; 3] = [
    Setup {
        name: "SQLite, 1 instance",
        postgres: false,
        instances: 1,
    },
    Setup {
        name: "PostgreSQL, 1 instance",
        postgres: true,
        instances: 1,
    },
    Setup {
        name: "PostgreSQL, 3 instances",
        postgres: true,
        instances: 3,
    },
];

fn world_for(s: &Setup) -> World {
    let database = s.postgres.then(|| pg::shared().database());
    world_on(database, s.instances)
}

/// Payments per second: `UPLOADERS` clients, client i sending every `UPLOADERS`th batch to
/// instance i mod instances; and in-process ingest of the same batches one after another.
fn sync_run(s: &Setup, n: usize) -> (f64, f64) {
    let w = world_for(s);
    let (batches, certs) = payments(&w, n, MERCHANTS);
    let mem = ingest_seconds(&w.trust, &certs, &batches);
    let urls = w.urls();
    let t = Instant::now();
    std::thread::scope(|scope| {
        for i in 0..UPLOADERS {
            let (urls, batches) = (&urls, &batches);
            scope.spawn(move || {
                let client = offpay_issuer::client::Client::new(&urls[i % urls.len()]).unwrap();
                for b in batches.iter().skip(i).step_by(UPLOADERS) {
                    client.sync(b).unwrap();
                }
            });
        }
    });
    let ours = t.elapsed().as_secs_f64();
    assert_eq!(
        credited(&w.admin) as usize,
        n,
        "every payment credited once"
    );
    (n as f64 / ours, n as f64 / mem)
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let (n, runs, per_client) = if quick { (2048, 1, 5) } else { (8192, 3, 25) };
    println!(
        "sync: {n} payments + receipts at {MERCHANTS} tills, {UPLOADERS} concurrent uploaders; ratio = our payments/s / in-process ingest's, each run's own"
    );
    for s in &SETUPS {
        let (mut ours, mut mem, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            let (o, m) = sync_run(s, n);
            ours.push(o);
            mem.push(m);
            ratios.push(o / m);
        }
        println!(
            "  {:<24} {:>6.0} payments/s, ingest {:>6.0}/s, ratio {:.2} (median of {runs}; runs {:?})",
            s.name,
            median(ours),
            median(mem),
            median(ratios.clone()),
            ratios
                .iter()
                .map(|r| (r * 100.0).round() / 100.0)
                .collect::<Vec<_>>()
        );
    }
    let clients = 64;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    println!(
        "pre-authorization: {clients} concurrent clients, {per_client} requests each; floor = verify + sign on {threads} threads"
    );
    // Each customer on an instrument of their own, as in a deployment; and every client on
    // one instrument, whose reservations are then written one after another.
    for (instruments, what) in [(clients, "an instrument each"), (1, "one instrument")] {
        for s in &SETUPS {
            let w = world_for(s);
            let run = preauth_load(&w, clients, per_client, instruments);
            let floor = floor_rate(threads, 400);
            let http = http_rate(&w.urls(), clients, per_client);
            println!(
                "  {:<24} {what:<18} {:>5.0}/s, ratio to floor {:.2}, to GET /healthz {:.2}; p50 {:.1} ms, p99 {:.1} ms",
                s.name,
                run.rate,
                run.rate / floor,
                run.rate / http,
                run.p50_ms,
                run.p99_ms
            );
        }
    }
}
