//! Several `offpay-issuer` processes over one PostgreSQL settle exactly as one in-memory
//! `Settlement` does: under concurrent, overlapping uploads, and while instances are killed
//! with SIGKILL and PostgreSQL itself crashes and restarts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod common;
use common::pg::{self, Cluster};
use common::*;
use common::{Store, Trust};
use offpay_issuer::api;
use offpay_issuer::client::{Client, ClientError};
use offpay_protocol::msg::SyncBatch;
use offpay_protocol::*;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

const INSTANCES: usize = 3;
/// Concurrent uploads: half as many clients, each sending its batch to two instances at once.
const CLIENTS: usize = 16;

/// Service instances: processes of the real binary sharing one data directory (the issuer
/// key and admin token) and one database.
struct Fleet {
    data: PathBuf,
    clock: PathBuf,
    database: String,
    procs: Mutex<Vec<Child>>,
    urls: RwLock<Vec<(String, String)>>,
    token: String,
}

fn spawn(data: &Path, clock: &Path, database: &str) -> (Child, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_offpay-issuer"))
        .arg("serve")
        .arg("--data")
        .arg(data)
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args(["--database", database, "--concurrency", "64"])
        .arg("--clock-for-testing-only")
        .arg(clock)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // "offpay-issuer: public API on http://A, admin API on http://B (token in ...)"
    let url = |after: &str| -> String {
        let rest = line.split(after).nth(1).unwrap_or_else(|| panic!("{line}"));
        rest.split([',', ' ']).next().unwrap().to_string()
    };
    let (public, admin) = (url("public API on "), url("admin API on "));
    (child, public, admin)
}

impl Fleet {
    fn start(dir: &Path, database: String) -> Fleet {
        let (data, clock) = (dir.join("issuer"), dir.join("clock"));
        std::fs::write(&clock, T0.to_string()).unwrap();
        let mut procs = Vec::new();
        let mut urls = Vec::new();
        // The first creates the key and the token; the others read them.
        for _ in 0..INSTANCES {
            let (c, p, a) = spawn(&data, &clock, &database);
            procs.push(c);
            urls.push((p, a));
        }
        let token = std::fs::read_to_string(data.join("admin.token")).unwrap();
        Fleet {
            data,
            clock,
            database,
            procs: Mutex::new(procs),
            urls: RwLock::new(urls),
            token,
        }
    }

    fn public(&self, i: usize) -> Client {
        Client::with_timeout(
            &self.urls.read().unwrap()[i % INSTANCES].0,
            Duration::from_secs(20),
        )
        .unwrap()
    }

    fn admin(&self, i: usize) -> Client {
        Client::new(&self.urls.read().unwrap()[i % INSTANCES].1)
            .unwrap()
            .with_admin_token(&self.token)
    }

    /// SIGKILL instance `i` and start it again.
    fn kill_and_restart(&self, i: usize) {
        let mut procs = self.procs.lock().unwrap();
        procs[i].kill().unwrap();
        procs[i].wait().unwrap();
        let (c, p, a) = spawn(&self.data, &self.clock, &self.database);
        procs[i] = c;
        self.urls.write().unwrap()[i] = (p, a);
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for c in self.procs.lock().unwrap().iter_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Retries a call while the service is unreachable or failing (5xx); a refusal is final.
fn retry<T>(what: &str, mut f: impl FnMut(usize) -> Result<T, ClientError>) -> T {
    let start = Instant::now();
    for attempt in 0.. {
        match f(attempt) {
            Ok(t) => return t,
            Err(ClientError::Refused { status, .. }) if status < 500 => {
                panic!("{what}: refused with {status}")
            }
            Err(e) => {
                assert!(
                    start.elapsed() < Duration::from_secs(120),
                    "{what}: still failing after 120 s: {e}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    unreachable!()
}

fn batch(make: impl FnOnce(&mut [u8]) -> Result<usize, Error>) -> Vec<u8> {
    let mut buf = vec![0u8; <SyncBatch<'_> as codec::Message<'_>>::MAX_LEN];
    let n = make(&mut buf).unwrap();
    buf.truncate(n);
    buf
}

/// What the uploads must settle to, and the batches to upload.
struct Workload {
    reference: Settlement<4>,
    trust: Trust,
    batches: Vec<Vec<u8>>,
    /// The instruments, each funded with `funded`.
    instruments: Vec<String>,
    funded: u64,
    /// Which instrument each voucher is drawn on.
    drawn_on: BTreeMap<VoucherId, usize>,
}

/// Instruments the wallets draw on: wallet p on instrument p mod `INSTRUMENTS`.
const INSTRUMENTS: usize = 3;

/// Merchants, funded instruments, wallets pre-authorized through two instances at once
/// (one voucher each), cloned wallets that spend their voucher again, payments; then every
/// device's batch. `reference` has ingested each batch once.
fn workload(fleet: &Fleet, seed: u64, wallets: u8, rounds: usize) -> Workload {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let now = Timestamp(T0);
    let admin = fleet.admin(0);
    let trust = trust_of(&fleet.public(0));
    let mut reference = Settlement::<4>::new(trust.clone(), DEFAULT_GRACE_SECS);
    let mut tills: Vec<Till> = Vec::new();
    for m in 0..4u8 {
        let id = [b'M', b'E', b'R', b'C', b'H', b'-', b'0', b'1' + m];
        let key = SigningKey::from_seed(&[40 + m; 32]);
        let cert = admin
            .certify_merchant(&api::NewMerchant {
                merchant_id: hex::encode(id),
                merchant_key: hex::encode(key.public_key().0),
                display_name: format!("Shop {m}"),
                days: 365,
            })
            .unwrap();
        reference.register_merchant(&cert).unwrap();
        tills.push(Acceptor::open(Store::new(), key, &cert).unwrap());
    }
    let funded = 10_000_000;
    let mut instruments = Vec::new();
    let mut credentials = Vec::new();
    for i in 0..INSTRUMENTS {
        let created = admin
            .create_instrument("EUR", Some(&format!("scale {i}")))
            .unwrap();
        admin
            .fund(&created.instrument.id, funded, "initial")
            .unwrap();
        instruments.push(created.instrument.id);
        credentials.push(created.credential);
    }
    let mut drawn_on = BTreeMap::new();
    let mut phones: Vec<Phone> = Vec::new();
    for p in 0..wallets {
        let which = usize::from(p) % INSTRUMENTS;
        let (instrument, credential) = (&instruments[which], &credentials[which]);
        let mut phone = Wallet::open(Store::new(), SigningKey::from_seed(&[60 + p; 32])).unwrap();
        let req = phone
            .preauth_request(
                instrument.as_bytes(),
                Amount(3_000 + 25 * u64::from(p)),
                eur(),
                Nonce([p; 16]),
                now,
            )
            .unwrap()
            .to_vec();
        // The same request to two instances at once: one voucher, one reservation.
        let answers: Vec<Vec<u8>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..2)
                .map(|k| {
                    let (req, cred) = (&req, credential);
                    let client = fleet.public(usize::from(p) + k);
                    s.spawn(move || retry("preauthorize", |_| client.preauthorize(req, cred)))
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(answers[0], answers[1], "two instances granted two vouchers");
        let v = decode_signed::<offpay_protocol::msg::Voucher>(&answers[0]).unwrap();
        drawn_on.insert(v.id, which);
        phone.install_voucher(&answers[0], &trust, now).unwrap();
        phones.push(phone);
    }
    // Clones of a third of the wallets, made after the voucher was installed: they spend
    // it again.
    for p in 0..usize::from(wallets / 3) {
        let key = SigningKey::from_seed(&[60 + p as u8; 32]);
        phones.push(Wallet::open(phones[p].store().clone(), key).unwrap());
    }
    for _round in 0..rounds {
        for phone in phones.iter_mut() {
            let t = (rng.next_u32() % 4) as usize;
            let amount = 1 + u64::from(rng.next_u32() % 500);
            let req = tills[t]
                .create_request(Amount(amount), eur(), None, now, &mut rng)
                .unwrap();
            let Ok(payment) = phone.pay(&req, &trust, None, now) else {
                continue;
            };
            let ctx = Context {
                trust: &trust,
                revocations: None,
                now,
            };
            if let Ok(receipt) = tills[t].accept(&payment, &ctx)
                && rng.next_u32() % 4 != 0
            {
                phone.receive_receipt(&receipt).unwrap();
            }
        }
    }
    let mut batches: Vec<Vec<u8>> = phones
        .iter_mut()
        .map(|p| batch(|b| p.sync_batch(b)))
        .collect();
    batches.extend(tills.iter_mut().map(|t| batch(|b| t.sync_batch(b))));
    for b in &batches {
        reference.ingest(b, now).unwrap();
    }
    Workload {
        reference,
        trust,
        batches,
        instruments,
        funded,
        drawn_on,
    }
}

/// Uploads every batch to two different instances at the same moment, from `CLIENTS`
/// clients at once, each retrying until it is answered; `chaos` runs in a loop on a thread of
/// its own meanwhile. Batches of a clone go to other instances than its original's, so
/// cloned chains are split across instances. The number of retried calls.
fn upload(fleet: &Fleet, batches: &[Vec<u8>], chaos: impl Fn(usize) + Sync) -> usize {
    let mut jobs: Vec<usize> = (0..batches.len()).collect();
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    for i in (1..jobs.len()).rev() {
        jobs.swap(i, (rng.next_u32() as usize) % (i + 1));
    }
    let queue = Mutex::new(jobs);
    let done = AtomicBool::new(false);
    let retries = AtomicUsize::new(0);
    let send = |b: usize, inst: usize| {
        retry("sync", |attempt| {
            if attempt > 0 {
                retries.fetch_add(1, Ordering::Relaxed);
            }
            fleet.public(inst + attempt).sync(&batches[b])
        })
    };
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..CLIENTS / 2)
            .map(|_| {
                s.spawn(|| {
                    loop {
                        let Some(b) = queue.lock().unwrap().pop() else {
                            break;
                        };
                        std::thread::scope(|s2| {
                            s2.spawn(|| send(b, b));
                            s2.spawn(|| send(b, b + 1));
                        });
                    }
                })
            })
            .collect();
        let chaos_thread = s.spawn(|| {
            let mut n = 0;
            while !done.load(Ordering::SeqCst) {
                chaos(n);
                n += 1;
            }
        });
        for w in workers {
            w.join().unwrap();
        }
        done.store(true, Ordering::SeqCst);
        chaos_thread.join().unwrap();
    });
    retries.into_inner()
}

/// The ledger holds exactly what the reference settled: credits, proofs, voucher states,
/// balances.
/// Checks the ledger against the reference; `top_ups[k]` is what instrument k was funded with
/// beyond the workload's initial funding.
fn check(fleet: &Fleet, w: &Workload, top_ups: &[u64; INSTRUMENTS]) {
    let admin = fleet.admin(1);
    let expected: BTreeMap<String, u64> = w
        .reference
        .credits()
        .map(|(m, _, a)| (hex::encode(m.0), a.0))
        .collect();
    let got: BTreeMap<String, u64> = admin
        .credits()
        .unwrap()
        .into_iter()
        .map(|c| (c.merchant_id, c.amount_minor))
        .collect();
    assert_eq!(got, expected, "credits differ");
    // SPEC §8.3: which vouchers hold a proof is order-independent; which pair of payments a
    // proof names is not, when more than two conflict. So: every proof the ledger holds
    // verifies and names two distinct payments once, and the proven vouchers are the
    // reference's.
    let proofs = admin.fraud().unwrap();
    let mut pairs = std::collections::BTreeSet::new();
    let mut proven = std::collections::BTreeSet::new();
    for p in &proofs {
        let bytes = hex::decode(&p.proof).unwrap();
        let f = decode_unsigned::<offpay_protocol::msg::FraudProof<'_>>(&bytes).unwrap();
        f.verify(&w.trust).unwrap();
        assert_ne!(p.first_payment, p.second_payment);
        assert!(pairs.insert((p.first_payment.clone(), p.second_payment.clone())));
        proven.insert(p.voucher_id.clone());
    }
    let expected_proven: std::collections::BTreeSet<String> = w
        .reference
        .proofs()
        .iter()
        .map(|b| {
            let f = decode_unsigned::<offpay_protocol::msg::FraudProof<'_>>(b).unwrap();
            hex::encode(f.first.voucher.id.0)
        })
        .collect();
    assert!(!expected_proven.is_empty(), "the clones were not proven");
    assert_eq!(proven, expected_proven, "proven vouchers differ");
    let states = admin.vouchers().unwrap();
    let mut reserved = [0; INSTRUMENTS];
    let mut owed = [0; INSTRUMENTS];
    let mut limits = [0; INSTRUMENTS];
    for v in w.reference.vouchers() {
        let i = w.drawn_on[&v.id];
        let s = states
            .iter()
            .find(|s| s.voucher_id == hex::encode(v.id.0))
            .unwrap();
        assert_eq!((s.credited_minor, s.fraud), (v.credited.0, v.fraud));
        reserved[i] += v.limit.0 - v.credited.0.min(v.limit.0);
        owed[i] += v.credited.0.saturating_sub(v.limit.0);
        limits[i] += v.limit.0;
    }
    assert_eq!(states.len(), w.reference.vouchers().count());
    for (k, id) in w.instruments.iter().enumerate() {
        let i = admin.instrument(id).unwrap();
        let funded = w.funded + top_ups[k];
        assert_eq!(i.funded_minor, funded, "instrument {k}");
        assert_eq!(i.available_minor, funded - limits[k], "instrument {k}");
        assert_eq!(i.reserved_minor, reserved[k], "instrument {k}");
        assert_eq!(i.owed_minor, owed[k], "instrument {k}");
    }
    check_funds(|q| pg_scalar(&fleet.database, q));
    let q = |sql: &str| pg_scalar(&fleet.database, sql);
    // The per-voucher tables are hash-partitioned as documented.
    for table in ["vouchers", "payments", "fraud_proofs"] {
        assert_eq!(
            q(&format!(
                "SELECT COUNT(*) FROM pg_inherits WHERE inhparent = '{table}'::regclass"
            )),
            i64::from(offpay_issuer::postgres::PARTITIONS),
            "{table} partitions"
        );
    }
    // Each batch committed whole or not at all: had a batch's transaction stored some of its
    // records and not others, its retry would have found those as duplicates, and the
    // records the batches recorded as new would fall short of the rows stored.
    assert_eq!(
        q("SELECT SUM(new_records) FROM sync_batches"),
        q("SELECT COUNT(*) FROM payments") + q("SELECT COUNT(*) FROM receipts"),
        "records counted new by their batches and records stored differ"
    );
}

#[test]
fn three_instances_settle_overlapping_uploads_as_one_reference() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = Fleet::start(dir.path(), pg::shared().database());
    let w = workload(&fleet, 1, 12, 5);
    // Meanwhile, the back office funds the instruments the payments are credited from: each
    // top-up sent to two instances at once under one reference, so it counts once.
    let top_ups = Mutex::new([0u64; INSTRUMENTS]);
    let fundings = AtomicUsize::new(0);
    let retries = upload(&fleet, &w.batches, |n| {
        let k = n % INSTRUMENTS;
        let amount = 1_000 + n as u64;
        let reference = format!("top-up-{n}");
        std::thread::scope(|s| {
            for i in [n, n + 1] {
                let (id, reference, fleet) = (&w.instruments[k], &reference, &fleet);
                s.spawn(move || {
                    let admin = fleet.admin(i);
                    retry("fund", |_| admin.fund(id, amount, reference));
                });
            }
        });
        top_ups.lock().unwrap()[k] += amount;
        fundings.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(5));
    });
    let top_ups = top_ups.into_inner().unwrap();
    eprintln!(
        "{} batches, each to two of {INSTANCES} instances from {CLIENTS} clients; {retries} retries; {} top-ups meanwhile",
        w.batches.len(),
        top_ups.iter().filter(|t| **t > 0).count()
    );
    assert!(
        top_ups.iter().any(|t| *t > 0),
        "no funding ran during the uploads"
    );
    check(&fleet, &w, &top_ups);
    // Everything again: nothing changes.
    let before = pg_snapshot(&fleet.database);
    upload(&fleet, &w.batches, |_| {
        std::thread::sleep(Duration::from_millis(50))
    });
    assert_eq!(pg_snapshot(&fleet.database), before);
}

#[test]
fn killed_instances_and_a_crashed_database_lose_and_double_nothing() {
    // This test stops and starts the server, so it runs one of its own.
    let own = std::env::var("OFFPAY_TEST_POSTGRES").is_err();
    let cluster = own.then(Cluster::start);
    if !own {
        eprintln!(
            "NOTE: OFFPAY_TEST_POSTGRES names a server this test cannot restart: only the \
             instances are killed"
        );
    }
    let database = cluster
        .as_ref()
        .map_or_else(|| pg::shared().database(), Cluster::database);
    let dir = tempfile::tempdir().unwrap();
    let fleet = Fleet::start(dir.path(), database);
    let w = workload(&fleet, 2, 48, 6);
    let kills = AtomicUsize::new(0);
    let restarts = AtomicUsize::new(0);
    let rng = Mutex::new(ChaCha20Rng::seed_from_u64(3));
    let retries = upload(&fleet, &w.batches, |n| {
        let r = rng.lock().unwrap().next_u32();
        std::thread::sleep(Duration::from_millis(u64::from(20 + r % 150)));
        if n == 1
            && let Some(c) = &cluster
        {
            c.crash_and_restart();
            restarts.fetch_add(1, Ordering::SeqCst);
        } else {
            fleet.kill_and_restart((r as usize / 7) % INSTANCES);
            kills.fetch_add(1, Ordering::SeqCst);
        }
    });
    eprintln!(
        "{} kill -9 of an instance, {} crash of PostgreSQL, {retries} retried uploads",
        kills.load(Ordering::SeqCst),
        restarts.load(Ordering::SeqCst)
    );
    assert!(kills.load(Ordering::SeqCst) > 0);
    if own {
        assert_eq!(
            restarts.load(Ordering::SeqCst),
            1,
            "PostgreSQL was not crashed"
        );
    }
    check(&fleet, &w, &[0; INSTRUMENTS]);
}
