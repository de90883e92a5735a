//! `offpay demo`: the whole offline payment story in a fresh directory.
//!
//! It sets up an issuer, a customer wallet and two merchants, pre-authorizes 50.00 EUR, pays
//! merchant A over QR codes (PNG images written and decoded back from their pixels), pays
//! merchant B over BLE (the encrypted session on an in-memory link, engaged by a QR code), syncs
//! both sides, prints the settlement, and then lets a cloned wallet double-spend so that
//! settlement shows the FraudProof.

use indicatif::{ProgressBar, ProgressStyle};
use offpay_ble::link::{self, LinkConfig};
use offpay_ble::{CustomerSession, Engagement, MerchantEngagement, MerchantSession};
use offpay_protocol::msg::{FraudProof, PaymentRequest};
use offpay_protocol::*;
use offpay_qr::QrConfig;
use offpay_qr::render::{Style, save_png, to_terminal};
use rand_core::OsRng;
use std::path::{Path, PathBuf};

use crate::ledger::{Ledger, SYNC_BATCH_MAX};

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
    format!("{}.{:02} EUR", a.0 / 100, a.0 % 100)
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

    println!("== online: issuer, merchants, customer, pre-authorization");
    let issuer = Issuer::new(SigningKey::generate(&mut OsRng));
    let mut trust = TrustStore::<4>::new();
    trust.add(issuer.public_key(), at(0), at(365 * 86_400))?;
    // The issuer's settlement ledger: the same SQLite ledger `offpay issuer` keeps.
    let ledger_path = dir.join("issuer-ledger.sqlite");
    let mut ledger = Ledger::create(&ledger_path, issuer, trust.clone())?;
    let mut summary: Vec<[String; 4]> = Vec::new();
    let mut shops = Vec::new();
    let mut seeds = Vec::new();
    for (id, name) in [(*b"CAFE-001", "Cafe A"), (*b"BIKE-002", "Bike shop B")] {
        let seed = *SigningKey::generate(&mut OsRng).to_seed();
        seeds.push(seed);
        let key = SigningKey::from_seed(&seed);
        let cert = ledger.issuer().certify_merchant(
            MerchantId(id),
            key.public_key(),
            name,
            at(0),
            at(365 * 86_400),
        )?;
        ledger.add_merchant(&cert, at(0))?;
        let store =
            FileStore::open(dir.join(format!("merchant-{}.journal", &name[name.len() - 1..])))?;
        shops.push((
            name,
            cert.to_vec(),
            Acceptor::<FileStore, SigningKey>::open(store, key, &cert)?,
        ));
        println!("  certified merchant {name}");
    }
    let holder_seed = *SigningKey::generate(&mut OsRng).to_seed();
    let mut wallet: Wallet<FileStore, SigningKey> = Wallet::open(
        FileStore::open(dir.join("wallet.journal"))?,
        SigningKey::from_seed(&holder_seed),
    )?;
    let preauth = wallet.preauth_request(
        b"card:4111-xxxx-1111",
        Amount(5000),
        euro,
        Nonce([7; 16]),
        at(1),
    )?;
    let terms = VoucherTerms {
        not_before: at(0),
        not_after: at(7 * 86_400),
        max_single: Some(Amount(4000)),
        max_payments: 20,
    };
    let voucher = ledger.issuer().issue_voucher(&preauth, terms, &mut OsRng)?;
    ledger.add_voucher(&voucher, "card:4111-xxxx-1111", at(1))?;
    let voucher_id = wallet.install_voucher(&voucher, &trust, at(2))?;
    println!(
        "  voucher {voucher_id}: {} pre-authorized",
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
        let synced = ledger.ingest(&buf[..n], name, at(3600))?;
        shop.apply_report(&synced.report, &trust, at(3601))?;
        println!(
            "  {name}: {} records synced, {} payment(s) credited",
            synced.records, synced.credited
        );
    }
    let n = wallet.sync_batch(&mut buf)?;
    let synced = ledger.ingest(&buf[..n], "wallet", at(3700))?;
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
        let synced = ledger.ingest(&buf[..n], name, at(3800))?;
        shop.apply_report(&synced.report, &trust, at(3801))?;
        println!(
            "  {name}: {} records synced, {} payment(s) credited, {} FraudProof(s)",
            synced.records, synced.credited, synced.proofs
        );
    }
    for proof in ledger.settlement().proofs() {
        let p = decode_unsigned::<FraudProof<'_>>(proof)?;
        p.verify(&trust)?;
        println!(
            "  FraudProof ({:?}, {} bytes): voucher {} signed two different payments with sequence {}",
            p.kind,
            proof.len(),
            p.first.voucher.id,
            p.first.seq
        );
    }

    println!("\n== settlement");
    println!("  {:<14} {:>12}", "merchant", "credited");
    for (m, _, a) in ledger.settlement().credits() {
        println!("  {:<14} {:>12}", String::from_utf8_lossy(&m.0), eur(a));
    }
    if let Some(v) = ledger.settlement().voucher(&voucher_id) {
        println!(
            "  voucher limit {}, credited {}, overspend owed by the holder {}",
            eur(v.limit),
            eur(v.credited),
            eur(v.overspend)
        );
    }
    println!("  fraud proofs: {}", ledger.settlement().proofs().len());

    println!("\n== summary");
    println!(
        "  {:<10} {:<16} {:>10}  outcome",
        "channel", "merchant", "amount"
    );
    for [channel, merchant, amount, outcome] in &summary {
        println!("  {channel:<10} {merchant:<16} {amount:>10}  {outcome}");
    }
    if temporary {
        std::fs::remove_dir_all(&dir)?;
    } else {
        println!(
            "\nfiles kept in {} (the issuer ledger: {})",
            dir.display(),
            ledger_path.display()
        );
    }
    Ok(())
}
