//! What the issuer benchmarks share: a service world on any backend with any number of
//! instances, payments made through real wallets and a real till, and the pre-authorization
//! load with its floors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use offpay_issuer::client::Client;
use offpay_issuer::server::{Config, InProcess};
use offpay_protocol::msg::sync::{ItemsWriter, MAX_SYNC_RECORDS};
use offpay_protocol::*;
use rand_core::OsRng;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const T0: u32 = 1_799_913_600;

/// One or more service instances over one ledger, sharing a data directory (key and token).
pub struct World {
    _dir: tempfile::TempDir,
    pub services: Vec<InProcess>,
    pub public: Client,
    pub admin: Client,
    pub trust: TrustStore<4>,
}

impl World {
    /// The public API URLs of every instance.
    pub fn urls(&self) -> Vec<String> {
        self.services.iter().map(InProcess::url).collect()
    }
}

/// One instance on the default SQLite ledger.
pub fn world() -> World {
    world_on(None, 1)
}

/// `instances` services over the ledger `database` names (`None`: SQLite in the data dir).
pub fn world_on(database: Option<String>, instances: usize) -> World {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(AtomicU32::new(T0));
    let mut config = Config::new(&dir.path().join("issuer"));
    config.listen = ([127, 0, 0, 1], 0).into();
    config.admin_listen = ([127, 0, 0, 1], 0).into();
    config.database = database;
    config.policy.max_payments = 1000;
    config.limits.concurrency = 256;
    let c = clock.clone();
    config.clock = Arc::new(move || Timestamp(c.load(Ordering::SeqCst)));
    let services: Vec<InProcess> = (0..instances)
        .map(|_| InProcess::start(config.clone()).unwrap())
        .collect();
    let public = Client::new(&services[0].url()).unwrap();
    let admin = Client::new(&services[0].admin_url())
        .unwrap()
        .with_admin_token(services[0].admin_token());
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
        services,
        public,
        admin,
        trust,
    }
}

pub fn eur() -> Currency {
    Currency::parse("EUR").unwrap()
}

/// A sync batch of `records`.
pub fn batch(records: &[&[u8]]) -> Vec<u8> {
    let mut buf = vec![0u8; 400 * records.len() + 16];
    let mut wr = ItemsWriter::sync_batch(&mut buf, records.len()).unwrap();
    for r in records {
        wr.push(r).unwrap();
    }
    let len = wr.finish().unwrap();
    buf.truncate(len);
    buf
}

/// `n` payments with their receipts at `merchants` tills (each wallet pays at one till, 32
/// payments per voucher), as each till's sync batches of at most 1,024 records; and the
/// tills' certificates.
pub fn payments(w: &World, n: usize, merchants: usize) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let dir = tempfile::tempdir().unwrap();
    let mut tills: Vec<(Acceptor<FileStore, SigningKey>, Vec<u8>)> = (0..merchants)
        .map(|m| {
            let key = SigningKey::from_seed(&[9 + m as u8; 32]);
            let cert = w
                .admin
                .certify_merchant(&offpay_issuer::api::NewMerchant {
                    merchant_id: hex::encode(format!("BENCH-{m:02}")),
                    merchant_key: hex::encode(Signer::public_key(&key).0),
                    display_name: format!("Bench {m}"),
                    days: 365,
                })
                .unwrap();
            let till = Acceptor::open(
                FileStore::open(dir.path().join(format!("till-{m}"))).unwrap(),
                key,
                &cert,
            )
            .unwrap();
            (till, cert)
        })
        .collect();
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
        let till = &mut tills[phone_seed as usize % merchants].0;
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
    let mut batches = Vec::new();
    for (till, _) in &tills {
        let records: Vec<&[u8]> = till
            .payments()
            .flat_map(|p| [p.payment.bytes(), p.receipt])
            .collect();
        batches.extend(records.chunks(MAX_SYNC_RECORDS).map(batch));
    }
    (batches, tills.into_iter().map(|(_, c)| c).collect())
}

/// Seconds for a fresh in-process `Settlement` to ingest `batches` one after another.
pub fn ingest_seconds(trust: &TrustStore<4>, certs: &[Vec<u8>], batches: &[Vec<u8>]) -> f64 {
    let mut s = Settlement::<4>::new(trust.clone(), DEFAULT_GRACE_SECS);
    for c in certs {
        s.register_merchant(c).unwrap();
    }
    let t = Instant::now();
    for b in batches {
        s.ingest(b, Timestamp(T0 + 100)).unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(s.credits().count(), certs.len());
    secs
}

/// Payments the ledger has credited, over every merchant.
pub fn credited(admin: &Client) -> u64 {
    admin.credits().unwrap().iter().map(|c| c.payments).sum()
}

/// CPU seconds (user + system) so far of this process and of every `postgres` process.
pub fn cpu_seconds() -> (f64, f64) {
    let ticks = 100.0; // USER_HZ, 100 on Linux
    let of = |stat: &str| -> Option<(String, f64)> {
        let (head, rest) = stat.rsplit_once(')')?;
        let comm = head.split_once('(')?.1.to_string();
        let f: Vec<&str> = rest.split_whitespace().collect();
        let t = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
        Some((comm, t / ticks))
    };
    let own = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| of(&s))
        .map_or(0.0, |(_, t)| t);
    let mut pg = 0.0;
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        if let Some((comm, t)) = std::fs::read_to_string(e.path().join("stat"))
            .ok()
            .and_then(|s| of(&s))
            && comm == "postgres"
        {
            pg += t;
        }
    }
    (own, pg)
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The floor of one pre-authorization: verify the holder's signature, sign the voucher.
pub fn floor_rate(threads: usize, per_thread: usize) -> f64 {
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
                    crypto::verify_holder(&holder, &[], input, &sig).unwrap();
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
/// as the pre-authorization run, each on its own connection, spread over `urls`.
pub fn http_rate(urls: &[String], clients: usize, per_client: usize) -> f64 {
    let t = Instant::now();
    std::thread::scope(|s| {
        for c in 0..clients {
            let url = &urls[c % urls.len()];
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

/// What a pre-authorization run measured.
pub struct PreauthRun {
    pub rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// CPU seconds per request while they ran: this process (service and clients), and
    /// PostgreSQL's processes.
    pub cpu: (f64, f64),
}

/// Pre-authorizations by `clients` concurrent clients spread over the world's instances,
/// drawn on `instruments` instruments (client c on instrument c mod `instruments`).
pub fn preauth_load(
    w: &World,
    clients: usize,
    per_client: usize,
    instruments: usize,
) -> PreauthRun {
    let all: Vec<_> = (0..instruments)
        .map(|_| {
            let ins = w.admin.create_instrument("EUR", None).unwrap();
            w.admin.fund(&ins.instrument.id, 1 << 50, "bench").unwrap();
            ins
        })
        .collect();
    let now = Timestamp(T0);
    // Every request built beforehand: the benchmark times the service alone.
    let requests: Vec<Vec<Vec<u8>>> = (0..clients)
        .map(|c| {
            let ins = &all[c % instruments];
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
    let urls = w.urls();
    let cpu = cpu_seconds();
    let t = Instant::now();
    let mut latencies: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = requests
            .iter()
            .enumerate()
            .map(|(c, reqs)| {
                let (url, cred) = (&urls[c % urls.len()], &all[c % instruments].credential);
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
    let after = cpu_seconds();
    let total = clients * per_client;
    let reserved: u64 = all
        .iter()
        .map(|i| w.admin.instrument(&i.instrument.id).unwrap().reserved_minor)
        .sum();
    assert_eq!(reserved, 100 * total as u64, "every request reserved once");
    latencies.sort();
    let p = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    PreauthRun {
        rate: total as f64 / elapsed,
        p50_ms: p(0.50),
        p99_ms: p(0.99),
        cpu: (
            (after.0 - cpu.0) / total as f64,
            (after.1 - cpu.1) / total as f64,
        ),
    }
}
