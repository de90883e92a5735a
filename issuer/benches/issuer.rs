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

use offpay_issuer::client::Client;
use offpay_issuer::server::{Config, InProcess};
use offpay_issuer::sqlite::SqliteStorage;
use offpay_issuer::storage::Storage;
use offpay_protocol::msg::sync::{ItemsWriter, MAX_SYNC_RECORDS};
use offpay_protocol::*;
use rand_core::OsRng;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const T0: u32 = 1_799_913_600;

struct World {
    _dir: tempfile::TempDir,
    service: InProcess,
    public: Client,
    admin: Client,
    trust: TrustStore<4>,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(AtomicU32::new(T0));
    let mut config = Config::new(&dir.path().join("issuer"));
    config.listen = ([127, 0, 0, 1], 0).into();
    config.admin_listen = ([127, 0, 0, 1], 0).into();
    config.policy.max_payments = 1000;
    config.limits.concurrency = 256;
    let c = clock.clone();
    config.clock = Arc::new(move || Timestamp(c.load(Ordering::SeqCst)));
    let service = InProcess::start(config).unwrap();
    let public = Client::new(&service.url()).unwrap();
    let admin = Client::new(&service.admin_url())
        .unwrap()
        .with_admin_token(service.admin_token());
    let info = public.issuer_info().unwrap();
    let mut trust = TrustStore::<4>::new();
    let k = &info.keys[0];
    trust
        .add(
            offpay_issuer::api::parse_key(&k.public_key).unwrap(),
            Timestamp(k.not_before),
            Timestamp(k.not_after),
        )
        .unwrap();
    World {
        _dir: dir,
        service,
        public,
        admin,
        trust,
    }
}

fn eur() -> Currency {
    Currency::parse("EUR").unwrap()
}

/// `n` payments with their receipts, drawn on vouchers of `w`, as sync batches of at most
/// 1,024 records; and the merchant's certificate.
fn payments(w: &World, n: usize) -> (Vec<Vec<u8>>, Vec<u8>) {
    let key = SigningKey::from_seed(&[9; 32]);
    let cert = w
        .admin
        .certify_merchant(&offpay_issuer::api::NewMerchant {
            merchant_id: hex::encode(b"BENCH-01"),
            merchant_key: hex::encode(Signer::public_key(&key).0),
            display_name: "Bench".into(),
            days: 365,
        })
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut till: Acceptor<FileStore, SigningKey> = Acceptor::open(
        FileStore::open(dir.path().join("till")).unwrap(),
        key,
        &cert,
    )
    .unwrap();
    let ins = w.admin.create_instrument("EUR", None).unwrap();
    w.admin.fund(&ins.instrument.id, 1 << 40, "bench").unwrap();
    let per_voucher = 32;
    let now = Timestamp(T0 + 10);
    let mut done = 0;
    let mut phone_seed = 0u32;
    while done < n {
        phone_seed += 1;
        let mut seed = [0u8; 32];
        seed[..4].copy_from_slice(&phone_seed.to_le_bytes());
        let mut phone: Wallet<MemStore<65_536, 256>, SigningKey> =
            Wallet::open(MemStore::new(), SigningKey::from_seed(&seed)).unwrap();
        let req = phone
            .preauth_request(
                ins.instrument.id.as_bytes(),
                Amount(1_000_000),
                eur(),
                Nonce([1; 16]),
                now,
            )
            .unwrap();
        let v = w.public.preauthorize(&req, &ins.credential).unwrap();
        phone.install_voucher(&v, &w.trust, now).unwrap();
        for _ in 0..per_voucher.min(n - done) {
            let r = till
                .create_request(Amount(100), eur(), None, now, &mut OsRng)
                .unwrap();
            let p = phone.pay(&r, &w.trust, None, now).unwrap();
            let ctx = Context {
                trust: &w.trust,
                revocations: None,
                now,
            };
            till.accept(&p, &ctx).unwrap();
            done += 1;
        }
    }
    let records: Vec<Vec<u8>> = till
        .payments()
        .flat_map(|p| [p.payment.bytes().to_vec(), p.receipt.to_vec()])
        .collect();
    let mut batches = Vec::new();
    for chunk in records.chunks(MAX_SYNC_RECORDS) {
        let mut buf = vec![0u8; 400 * chunk.len() + 16];
        let mut wr = ItemsWriter::sync_batch(&mut buf, chunk.len()).unwrap();
        for r in chunk {
            wr.push(r).unwrap();
        }
        let len = wr.finish().unwrap();
        buf.truncate(len);
        batches.push(buf);
    }
    (batches, cert)
}

/// A batch's records as two batches, the first half and the second.
fn split(batch: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let b = decode_unsigned::<msg::SyncBatch<'_>>(batch).unwrap();
    let records: Vec<&[u8]> = b.records().collect();
    let half = records.len() / 2;
    let make = |rs: &[&[u8]]| {
        let mut buf = vec![0u8; 400 * rs.len() + 16];
        let mut wr = ItemsWriter::sync_batch(&mut buf, rs.len()).unwrap();
        for r in rs {
            wr.push(r).unwrap();
        }
        let len = wr.finish().unwrap();
        buf.truncate(len);
        buf
    };
    (make(&records[..half]), make(&records[half..]))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn bench_sync(n: usize, runs: usize) {
    let mut ratios = Vec::new();
    let (mut http_us, mut mem_us) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let w = world();
        let (batches, cert) = payments(&w, n);
        // In-process: a fresh Settlement, the same batches.
        let mut s = Settlement::<4>::new(w.trust.clone(), DEFAULT_GRACE_SECS);
        s.register_merchant(&cert).unwrap();
        let t = Instant::now();
        for b in &batches {
            s.ingest(b, Timestamp(T0 + 100)).unwrap();
        }
        let mem = t.elapsed().as_secs_f64();
        assert_eq!(s.credits().count(), 1);
        // Over HTTP into the service's SQLite ledger.
        let t = Instant::now();
        for b in &batches {
            w.public.sync(b).unwrap();
        }
        let http = t.elapsed().as_secs_f64();
        let credited: u64 = w.admin.credits().unwrap()[0].payments;
        assert_eq!(credited as usize, n, "every payment credited");
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

/// The floor of one pre-authorization: verify the holder's signature, sign the voucher.
fn floor_rate(threads: usize, per_thread: usize) -> f64 {
    let key = SigningKey::from_seed(&[3; 32]);
    let issuer = Issuer::new(SigningKey::from_seed(&[4; 32]));
    let w: Wallet<MemStore, SigningKey> = Wallet::open(MemStore::new(), key).unwrap();
    let req = w
        .preauth_request(b"ins", Amount(100), eur(), Nonce([0; 16]), Timestamp(T0))
        .unwrap()
        .to_vec();
    let p = decode_signed::<PreAuthRequest<'_>>(&req).unwrap();
    let holder = p.holder_key;
    let sig = *p.signature();
    let mut input = b"offpay/1/preauth-request\0".to_vec();
    input.extend_from_slice(p.signed_bytes());
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let (input, issuer) = (&input, &issuer);
            s.spawn(move || {
                for _ in 0..per_thread {
                    crypto::verify(&holder, &[], input, &sig).unwrap();
                    std::hint::black_box(
                        issuer.signer().sign(b"offpay/1/voucher\0", input).unwrap(),
                    );
                }
            });
        }
    });
    (threads * per_thread) as f64 / t.elapsed().as_secs_f64()
}

/// The HTTP round trip alone: `GET /healthz` (no ledger, no cryptography) by as many clients
/// as the pre-authorization run, each on its own connection.
fn http_rate(url: &str, clients: usize, per_client: usize) -> f64 {
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..clients {
            s.spawn(move || {
                let client = Client::new(url).unwrap();
                for _ in 0..per_client {
                    client.health().unwrap();
                }
            });
        }
    });
    (clients * per_client) as f64 / t.elapsed().as_secs_f64()
}

fn bench_preauth(clients: usize, per_client: usize) {
    let w = world();
    let ins = w.admin.create_instrument("EUR", None).unwrap();
    w.admin.fund(&ins.instrument.id, 1 << 50, "bench").unwrap();
    let now = Timestamp(T0);
    // Every request built beforehand: the benchmark times the service alone.
    let requests: Vec<Vec<Vec<u8>>> = (0..clients)
        .map(|c| {
            let mut seed = [7u8; 32];
            seed[..8].copy_from_slice(&(c as u64).to_le_bytes());
            let phone: Wallet<MemStore, SigningKey> =
                Wallet::open(MemStore::new(), SigningKey::from_seed(&seed)).unwrap();
            (0..per_client)
                .map(|i| {
                    let mut nonce = [0u8; 16];
                    nonce[..8].copy_from_slice(&(i as u64).to_le_bytes());
                    phone
                        .preauth_request(
                            ins.instrument.id.as_bytes(),
                            Amount(100),
                            eur(),
                            Nonce(nonce),
                            now,
                        )
                        .unwrap()
                        .to_vec()
                })
                .collect()
        })
        .collect();
    let url = w.service.url();
    let t = Instant::now();
    let mut latencies: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = requests
            .iter()
            .map(|reqs| {
                let (url, cred) = (&url, &ins.credential);
                s.spawn(move || {
                    let client = Client::new(url).unwrap();
                    let mut lat = Vec::with_capacity(reqs.len());
                    for r in reqs {
                        let t = Instant::now();
                        client.preauthorize(r, cred).unwrap();
                        lat.push(t.elapsed());
                    }
                    lat
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let elapsed = t.elapsed().as_secs_f64();
    let total = clients * per_client;
    let rate = total as f64 / elapsed;
    let i = w.admin.instrument(&ins.instrument.id).unwrap();
    assert_eq!(
        i.reserved_minor,
        100 * total as u64,
        "every request reserved once"
    );
    latencies.sort();
    let p = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    let floor = floor_rate(
        clients.min(std::thread::available_parallelism().map_or(2, |n| n.get())),
        400,
    );
    let http = http_rate(&url, clients, per_client);
    println!(
        "pre-authorization, {clients:>2} client(s): {rate:.0}/s, floor (verify + sign on as many threads) {floor:.0}/s, ratio {:.2}; p50 {:.2} ms, p99 {:.2} ms; GET /healthz by the same clients {http:.0}/s, ratio {:.2}",
        rate / floor,
        p(0.50),
        p(0.99),
        rate / http,
    );
}

/// A ledger of `n` payment records (copies of real rows under fresh ids, written by SQL so
/// that 10^6 take seconds, not an hour), then: the time to open it, and to sync one batch.
fn bench_open(n: usize) {
    let w = world();
    let (batches, _) = payments(&w, 128);
    let (first, second) = split(&batches[0]);
    w.public.sync(&first).unwrap();
    let db = w.service.data().join("ledger.sqlite");
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
