//! `offpay demo`: the whole offline payment story in a fresh directory.
//!
//! It starts an issuer service in-process on a free loopback port (a real `offpay-issuer`
//! with its SQLite ledger in the demo's directory) and does every online step over HTTP: it
//! funds an instrument, certifies two merchants, pre-authorizes 50.00 EUR, pays merchant A
//! over QR codes (PNG images written and decoded back from their pixels), pays merchant B over
//! BLE (the encrypted session on an in-memory link, engaged by a QR code), syncs both sides,
//! prints the settlement, and then lets a cloned wallet double-spend so that settlement shows
//! the FraudProof.

use indicatif::{ProgressBar, ProgressStyle};
use offpay_ble::link::{self, LinkConfig};
use offpay_ble::{CustomerSession, Engagement, MerchantEngagement, MerchantSession};
use offpay_protocol::msg::{FraudProof, PaymentRequest};
use offpay_protocol::*;
use offpay_qr::QrConfig;
use offpay_qr::render::{Style, save_png, to_terminal};
use rand_core::OsRng;
use std::path::{Path, PathBuf};

use offpay_issuer::api;
use offpay_issuer::client::Client;
use offpay_issuer::server::{Config, InProcess};
use offpay_protocol::msg::{SyncBatch, SyncReport};

const SYNC_BATCH_MAX: usize = <SyncBatch<'static> as codec::Message<'static>>::MAX_LEN;

/// What one upload did: records sent, payments credited, records already known, proofs.
struct Uploaded {
    report: Vec<u8>,
    records: usize,
    credited: usize,
    duplicates: usize,
    proofs: usize,
}

fn upload(issuer: &Client, batch: &[u8]) -> Result<Uploaded, Error> {
    let report = issuer.sync(batch)?;
    let r = decode_signed::<SyncReport<'_>>(&report)?;
    let outcomes: Vec<_> = r.entries().map(|e| e.outcome).collect();
    let records: Vec<&[u8]> = decode_unsigned::<SyncBatch<'_>>(batch)?.records().collect();
    // A payment and its receipt both say "credited": count the payment once.
    let credited = records
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| **o == msg::Outcome::Credited)
        .map(|(rec, _)| match decode_signed::<msg::Receipt>(rec) {
            Ok(r) => r.payment_id.0,
            Err(_) => offpay_protocol::crypto::sha256(rec),
        })
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let proofs = r.proofs().count();
    Ok(Uploaded {
        records: outcomes.len(),
        credited,
        duplicates: outcomes
            .iter()
            .filter(|o| **o == msg::Outcome::Duplicate)
            .count(),
        proofs,
        report,
    })
}

type Error = Box<dyn std::error::Error>;

/// A spinner on the terminal (hidden when output is not a terminal) while `what` runs.
fn step<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let bar = ProgressBar::new_spinner().with_message(what.to_string());
    if let Ok(style) = ProgressStyle::with_template("  {spinner} {msg}") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(80));
    let out = f();
    bar.finish_and_clear();
    out
}

fn eur(a: Amount) -> String {
    offpay_sdk::show_money(a.0, "EUR")
}

/// Hands `message` from one device to another as a QR code: rendered to a PNG file, then
/// found and decoded in that file's pixels, as a camera would.
fn through_qr(message: &[u8], dir: &Path, name: &str, show: bool) -> Result<Vec<u8>, Error> {
    let offpay_qr::Encoded::Single(frame) = QrConfig::default().encode(message)? else {
        return Err(format!("{name}: too large for one QR code").into());
    };
    let path = dir.join(format!("{name}.png"));
    if show {
        println!("{}", to_terminal(&frame, 2));
    }
    let text = step(&format!("{name}: drawing and scanning the QR code"), || {
        save_png(&frame, Style::default(), &path)?;
        offpay_qr::scan::decode_file(&path)
    })?;
    let mut scanner = offpay_qr::Scanner::new(64 * 1024);
    let offpay_qr::Progress::Complete(bytes) = scanner.receive(&text)? else {
        return Err(format!("{name}: incomplete QR transfer").into());
    };
    println!(
        "  {name}: {} bytes -> QR version {} -> {} -> decoded from pixels",
        message.len(),
        frame.version(),
        path.display()
    );
    Ok(bytes)
}

/// Runs the demo in `dir` (a temporary directory, removed afterwards, when `None`).
pub fn demo(dir: Option<PathBuf>, show: bool) -> Result<(), Error> {
    let temporary = dir.is_none();
    let dir = dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("offpay-demo-{}", std::process::id()))
    });
    if dir.read_dir().is_ok_and(|mut d| d.next().is_some()) {
        return Err(format!(
            "{} is not empty; give a new directory with --dir (the demo starts from nothing)",
            dir.display()
        )
        .into());
    }
    std::fs::create_dir_all(&dir)?;
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as u32;
    let at = |s: u32| Timestamp(t0 + s);
    let euro = Currency::parse("EUR").ok_or("currency")?;

    println!("== online: issuer service, merchants, customer, pre-authorization");
    // A real issuer service on a free loopback port, its ledger in the demo's directory.
    let mut config = Config::new(&dir.join("issuer"));
    config.listen = ([127, 0, 0, 1], 0).into();
    config.admin_listen = ([127, 0, 0, 1], 0).into();
    config.policy.max_single_minor = Some(4000);
    config.policy.max_payments = 20;
    let service = step("starting the issuer service", || InProcess::start(config))?;
    let issuer = Client::new(&service.url())?;
    let admin = Client::new(&service.admin_url())?.with_admin_token(service.admin_token());
    println!(
        "  issuer service at {} (admin API at {})",
        service.url(),
        service.admin_url()
    );
    let info = issuer.issuer_info()?;
    let key = info.keys.first().ok_or("the issuer shows no key")?;
    let mut trust = TrustStore::<4>::new();
    trust.add(
        api::parse_key(&key.public_key).ok_or("issuer key")?,
        Timestamp(key.not_before),
        Timestamp(key.not_after),
    )?;
    let card = admin.create_instrument("EUR", Some("demo card"))?;
    admin.fund(&card.instrument.id, 10_000, "demo")?;
    println!(
        "  instrument {} funded with {}",
        card.instrument.id,
        eur(Amount(10_000))
    );
    let mut summary: Vec<[String; 4]> = Vec::new();
    let mut shops = Vec::new();
    let mut seeds = Vec::new();
    for (id, name) in [(*b"CAFE-001", "Cafe A"), (*b"BIKE-002", "Bike shop B")] {
        let seed = *SigningKey::generate(&mut OsRng).to_seed();
        seeds.push(seed);
        let key = SigningKey::from_seed(&seed);
        let cert = admin.certify_merchant(&api::NewMerchant {
            merchant_id: hex::encode(id),
            merchant_key: hex::encode(key.public_key().0),
            display_name: name.to_string(),
            days: 365,
        })?;
        let store =
            FileStore::open(dir.join(format!("merchant-{}.journal", &name[name.len() - 1..])))?;
        shops.push((
            name,
            cert.clone(),
            Acceptor::<FileStore, SigningKey>::open(store, key, &cert)?,
        ));
        println!("  certified merchant {name}");
    }
    let holder_seed = *SigningKey::generate(&mut OsRng).to_seed();
    let mut wallet: Wallet<FileStore, SigningKey> = Wallet::open(
        FileStore::open(dir.join("wallet.journal"))?,
        SigningKey::from_seed(&holder_seed),
    )?;
    let mut nonce = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut OsRng, &mut nonce);
    let preauth = wallet.preauth_request(
        card.instrument.id.as_bytes(),
        Amount(5000),
        euro,
        Nonce(nonce),
        at(1),
    )?;
    let voucher = issuer.preauthorize(&preauth, &card.credential)?;
    let voucher_id = wallet.install_voucher(&voucher, &trust, at(2))?;
    println!(
        "  voucher {voucher_id}: {} pre-authorized over HTTP",
        eur(Amount(5000))
    );
    std::fs::copy(dir.join("wallet.journal"), dir.join("clone.journal"))?;

    println!("\n== offline, over QR: 4.20 EUR to Cafe A");
    let now = at(100);
    let ctx = Context {
        trust: &trust,
        revocations: None,
        now,
    };
    let (_, _, cafe) = &mut shops[0];
    let request = cafe.create_request(Amount(420), euro, Some("coffee"), now, &mut OsRng)?;
    let request = through_qr(&request, &dir, "request", show)?;
    let shown = decode_signed::<PaymentRequest<'_>>(&request)?;
    println!(
        "  customer sees: {} to {}",
        eur(shown.amount),
        shown.certificate.display_name
    );
    let payment = wallet.pay(&request, &trust, None, now)?;
    let payment = through_qr(&payment, &dir, "payment", show)?;
    let receipt = cafe.accept(&payment, &ctx)?;
    let receipt = through_qr(&receipt, &dir, "receipt", show)?;
    wallet.receive_receipt(&receipt)?;
    summary.push([
        "QR".into(),
        "Cafe A".into(),
        eur(Amount(420)),
        "accepted offline, receipt held, credited at sync".into(),
    ]);
    println!(
        "  paid; the wallet holds the receipt; left {}",
        eur(wallet.remaining(euro, now))
    );

    println!("\n== offline, over BLE: 12.00 EUR to Bike shop B");
    let now = at(200);
    let ctx = Context {
        trust: &trust,
        revocations: None,
        now,
    };
    let (_, _, bike) = &mut shops[1];
    let request = bike.create_request(Amount(1200), euro, Some("inner tube"), now, &mut OsRng)?;
    let engagement = MerchantEngagement::generate(&mut OsRng);
    let scanned = through_qr(
        &engagement.engagement().to_bytes(),
        &dir,
        "ble-engagement",
        show,
    )?;
    let scanned = Engagement::from_bytes(&scanned)?;
    let mut customer = CustomerSession::new(&scanned, &mut OsRng)?;
    let mut merchant = MerchantSession::new(&engagement, &request)?;
    let report = link::run(
        LinkConfig::mtu(185),
        &mut customer,
        &mut wallet,
        &trust,
        None,
        &mut merchant,
        bike,
        &ctx,
        now,
    )?;
    match (customer.outcome(), merchant.outcome()) {
        (
            Some(offpay_ble::CustomerOutcome::Paid(id)),
            Some(offpay_ble::MerchantOutcome::Accepted(_)),
        ) => println!(
            "  paid {id} over an encrypted BLE session: {} chunks, {} bytes on air at MTU 185; left {}",
            report.chunks_c2s + report.chunks_s2c,
            report.bytes_c2s + report.bytes_s2c,
            eur(wallet.remaining(euro, now))
        ),
        (c, m) => return Err(format!("BLE payment failed: customer {c:?}, merchant {m:?}").into()),
    }
    summary.push([
        "BLE".into(),
        "Bike shop B".into(),
        eur(Amount(1200)),
        "accepted offline, receipt held, credited at sync".into(),
    ]);

    println!("\n== online again: everyone syncs to the issuer");
    let mut buf = vec![0u8; SYNC_BATCH_MAX];
    for (name, _, shop) in &mut shops {
        let n = step(&format!("{name}: syncing"), || shop.sync_batch(&mut buf))?;
        let synced = upload(&issuer, &buf[..n])?;
        shop.apply_report(&synced.report, &trust, at(3601))?;
        println!(
            "  {name}: {} records synced, {} payment(s) credited",
            synced.records, synced.credited
        );
    }
    let n = wallet.sync_batch(&mut buf)?;
    let synced = upload(&issuer, &buf[..n])?;
    wallet.apply_report(&synced.report, &trust, at(3701))?;
    println!(
        "  wallet: {} records synced, all {} already known (each payment is credited once)",
        synced.records, synced.duplicates
    );

    println!("\n== a cloned wallet double-spends");
    let mut clone: Wallet<FileStore, SigningKey> = Wallet::open(
        FileStore::open(dir.join("clone.journal"))?,
        SigningKey::from_seed(&holder_seed),
    )?;
    let now = at(300);
    let ctx = Context {
        trust: &trust,
        revocations: None,
        now,
    };
    {
        let (name, _, bike) = &mut shops[1];
        let request = bike.create_request(Amount(1000), euro, None, now, &mut OsRng)?;
        let payment = clone.pay(&request, &trust, None, now)?;
        match bike.accept(&payment, &ctx) {
            Ok(_) => println!("  {name} accepts 10.00 EUR from the clone"),
            Err(e) => {
                println!("  {name}, which saw the real wallet, refuses the clone offline: {e}");
                summary.push([
                    "clone".into(),
                    name.to_string(),
                    eur(Amount(1000)),
                    format!("refused offline: {}", e.name()),
                ]);
            }
        }
    }
    // Cafe A's second till has its own offline memory and has never seen this wallet.
    let (name, cert, _) = &shops[0];
    let mut till = Acceptor::<FileStore, SigningKey>::open(
        FileStore::open(dir.join("merchant-A-till-2.journal"))?,
        SigningKey::from_seed(&seeds[0]),
        cert,
    )?;
    let request = till.create_request(Amount(4000), euro, None, now, &mut OsRng)?;
    let payment = clone.pay(&request, &trust, None, now)?;
    till.accept(&payment, &ctx)?;
    println!(
        "  {name}'s second till, which never saw the wallet, accepts 40.00 EUR from the clone"
    );
    summary.push([
        "clone".into(),
        format!("{name} till 2"),
        eur(Amount(4000)),
        "accepted offline; FraudProof at settlement, holder owes the overspend".into(),
    ]);

    println!("\n== online: the merchants sync again");
    for (name, shop) in [
        ("Bike shop B", &mut shops[1].2),
        ("Cafe A till 2", &mut till),
    ] {
        let n = shop.sync_batch(&mut buf)?;
        let synced = upload(&issuer, &buf[..n])?;
        shop.apply_report(&synced.report, &trust, at(3801))?;
        println!(
            "  {name}: {} records synced, {} payment(s) credited, {} FraudProof(s)",
            synced.records, synced.credited, synced.proofs
        );
    }
    let proofs = admin.fraud()?;
    for p in &proofs {
        let bytes = hex::decode(&p.proof)?;
        let proof = decode_unsigned::<FraudProof<'_>>(&bytes)?;
        proof.verify(&trust)?;
        println!(
            "  FraudProof ({:?}, {} bytes): voucher {} signed two different payments with sequence {}",
            proof.kind,
            bytes.len(),
            proof.first.voucher.id,
            proof.first.seq
        );
    }

    println!("\n== settlement (from the issuer's admin API)");
    println!("  {:<14} {:>12}", "merchant", "credited");
    for c in admin.credits()? {
        let id = api::parse_merchant(&c.merchant_id).ok_or("merchant id")?;
        println!(
            "  {:<14} {:>12}",
            String::from_utf8_lossy(&id.0),
            eur(Amount(c.amount_minor))
        );
    }
    if let Some(v) = admin
        .vouchers()?
        .iter()
        .find(|v| v.voucher_id == hex::encode(voucher_id.0))
    {
        println!(
            "  voucher limit {}, credited {}, overspend owed by the holder {}",
            eur(Amount(v.limit_minor)),
            eur(Amount(v.credited_minor)),
            eur(Amount(v.overspend_minor))
        );
    }
    let i = admin.instrument(&card.instrument.id)?;
    println!(
        "  instrument {}: available {}, reserved {}, owed {}",
        i.id,
        eur(Amount(i.available_minor)),
        eur(Amount(i.reserved_minor)),
        eur(Amount(i.owed_minor))
    );
    println!("  fraud proofs: {}", proofs.len());

    println!("\n== summary");
    println!(
        "  {:<10} {:<16} {:>10}  outcome",
        "channel", "merchant", "amount"
    );
    for [channel, merchant, amount, outcome] in &summary {
        println!("  {channel:<10} {merchant:<16} {amount:>10}  {outcome}");
    }
    drop(service);
    if temporary {
        std::fs::remove_dir_all(&dir)?;
    } else {
        println!(
            "\nfiles kept in {} (the issuer's ledger: {})",
            dir.display(),
            dir.join("issuer").join("ledger.sqlite").display()
        );
    }
    Ok(())
}
