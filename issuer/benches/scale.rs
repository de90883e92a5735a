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
//! `cargo bench -p offpay-issuer --bench scale` (add `-- quick` for a short run, `-- sync` or
//! `-- preauth` for one part, `-- postgres` for the PostgreSQL setups alone).
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
struct Run {
    /// Payments per second over HTTP.
    ours: f64,
    /// Payments per second of in-process ingest.
    ingest: f64,
    /// CPU per payment during the upload: this process (service and clients) and PostgreSQL.
    service_cpu_us: f64,
    postgres_cpu_us: f64,
}

fn sync_run(s: &Setup, n: usize) -> Run {
    let w = world_for(s);
    let (batches, certs) = payments(&w, n, MERCHANTS);
    let mem = ingest_seconds(&w.trust, &certs, &batches);
    let urls = w.urls();
    let cpu = cpu_seconds();
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
    let after = cpu_seconds();
    assert_eq!(
        credited(&w.admin) as usize,
        n,
        "every payment credited once"
    );
    Run {
        ours: n as f64 / ours,
        ingest: n as f64 / mem,
        service_cpu_us: (after.0 - cpu.0) * 1e6 / n as f64,
        postgres_cpu_us: (after.1 - cpu.1) * 1e6 / n as f64,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let has = |a: &str| args.iter().any(|x| x == a);
    let quick = has("quick");
    let setups: Vec<&Setup> = SETUPS
        .iter()
        .filter(|s| s.postgres || !has("postgres"))
        .collect();
    let (n, runs, per_client) = if quick { (2048, 1, 5) } else { (8192, 3, 25) };
    if !has("preauth") {
        sync_part(&setups, n, runs);
    }
    if !has("sync") {
        preauth_part(&setups, per_client);
    }
}

fn sync_part(setups: &[&Setup], n: usize, runs: usize) {
    println!(
        "sync: {n} payments + receipts at {MERCHANTS} tills, {UPLOADERS} concurrent uploaders; ratio = our payments/s / in-process ingest's, each run's own"
    );
    for s in setups {
        let (mut ours, mut mem, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        let (mut own_cpu, mut pg_cpu) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let r = sync_run(s, n);
            ours.push(r.ours);
            mem.push(r.ingest);
            ratios.push(r.ours / r.ingest);
            own_cpu.push(r.service_cpu_us);
            pg_cpu.push(r.postgres_cpu_us);
        }
        println!(
            "  {:<24} {:>6.0} payments/s, ingest {:>6.0}/s; CPU per payment: service and clients {:.0} us, PostgreSQL {:.0} us; ratio {:.2} (median of {runs}; runs {:?})",
            s.name,
            median(ours),
            median(mem),
            median(own_cpu),
            median(pg_cpu),
            median(ratios.clone()),
            ratios
                .iter()
                .map(|r| (r * 100.0).round() / 100.0)
                .collect::<Vec<_>>()
        );
    }
}

fn preauth_part(setups: &[&Setup], per_client: usize) {
    let clients = 64;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    println!(
        "pre-authorization: {clients} concurrent clients, {per_client} requests each; floor = verify + sign on {threads} threads"
    );
    // Each customer on an instrument of their own, as in a deployment; and every client on
    // one instrument, whose reservations are then written one after another.
    for (instruments, what) in [(clients, "an instrument each"), (1, "one instrument")] {
        for s in setups {
            let w = world_for(s);
            let run = preauth_load(&w, clients, per_client, instruments);
            let (own_us, pg_us) = (run.cpu.0 * 1e6, run.cpu.1 * 1e6);
            let floor = floor_rate(threads, 400);
            let http = http_rate(&w.urls(), clients, per_client);
            println!(
                "  {:<24} {what:<18} {:>5.0}/s, ratio to floor {:.2}, to GET /healthz {:.2}; p50 {:.1} ms, p99 {:.1} ms; CPU each: service and clients {own_us:.0} us, PostgreSQL {pg_us:.0} us",
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
