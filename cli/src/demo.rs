//! `offpay demo`: the whole offline payment story in a fresh directory.
//!
//! It starts an issuer service in-process on a free loopback port (a real `offpay-issuer`
//! with its SQLite ledger in the demo's directory) and runs every device through the SDK
//! (`offpay_sdk::CustomerWallet`, `offpay_sdk::MerchantTill`): it funds an instrument,
//! certifies two merchants, pre-authorizes 50.00 EUR, pays merchant A over QR codes (PNG images
//! written and decoded back from their pixels), pays merchant B over BLE (the encrypted session,
//! engaged by a QR code, its chunks moved in memory), syncs both sides, prints the settlement,
//! and then lets a cloned wallet double-spend so that settlement shows the FraudProof.

use indicatif::{ProgressBar, ProgressStyle};
use offpay_issuer::api;
use offpay_issuer::client::Client;
use offpay_issuer::server::{Config, InProcess};
use offpay_protocol::decode_unsigned;
use offpay_protocol::msg::FraudProof;
use offpay_sdk::{
    BleOutcome, CustomerWallet, MerchantTill, Money, SyncSummary, TillEnrollment, show_money,
};
use std::path::{Path, PathBuf};

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

fn eur(minor: u64) -> String {
    show_money(minor, "EUR")
}

fn money(text: &str) -> Result<Money, Error> {
    Ok(Money::parse(text, "EUR")?)
}

/// Hands `message` from one device to another as a QR code: drawn to a PNG file, then found
/// and decoded in that file's pixels, as a camera would.
fn through_qr(message: &[u8], dir: &Path, name: &str, show: bool) -> Result<Vec<u8>, Error> {
    let path = dir.join(format!("{name}.png"));
    if show {
        println!(
            "{}",
            crate::qrio::terminal_text(&offpay_sdk::qr::text(message)?)?
        );
    }
    let bytes = step(&format!("{name}: drawing and scanning the QR code"), || {
        let png = offpay_sdk::qr::png(message)?;
        std::fs::write(&path, &png)?;
        Ok::<_, Error>(offpay_sdk::qr::scan(&std::fs::read(&path)?)?)
    })?;
    println!(
        "  {name}: {} bytes -> QR code -> {} -> decoded from pixels",
        message.len(),
        path.display()
    );
    Ok(bytes)
}

fn synced(name: &str, s: &SyncSummary) {
    println!(
        "  {name}: {} records synced, {} record(s) credited, {} already known, {} FraudProof(s)",
        s.records_sent,
        s.credited + s.conflicts,
        s.duplicates,
        s.fraud_proofs.len()
    );
}

/// Moves a BLE session's chunks between the wallet and the till in memory, as a GATT link
/// would at `mtu`; the customer approves the request when it arrives. Returns the chunks and
/// bytes that crossed.
fn over_ble(
    wallet: &CustomerWallet,
    till: &MerchantTill,
    t: &mut offpay_sdk::TillBleSession,
    engagement: &[u8],
    mtu: u16,
) -> Result<(usize, usize, BleOutcome), Error> {
    let mut w = wallet.ble_session(engagement)?;
    w.set_mtu(mtu)?;
    t.set_mtu(mtu)?;
    w.start()?;
    let (mut chunks, mut bytes) = (0, 0);
    loop {
        let mut moved = false;
        while let Some(c) = w.poll_transmit() {
            (chunks, bytes, moved) = (chunks + 1, bytes + c.len() + 3, true);
            t.receive(till, &c)?;
        }
        while let Some(c) = t.poll_transmit() {
            (chunks, bytes, moved) = (chunks + 1, bytes + c.len() + 3, true);
            w.receive(wallet, &c)?;
        }
        if let Some(request) = w.pending_request() {
            let review = wallet.review(&request)?;
            println!(
                "  customer sees over BLE: {} to {}",
                review.amount, review.merchant_name
            );
            w.approve(wallet)?;
            moved = true;
        }
        if !moved {
            break;
        }
    }
    let outcome = w.outcome().ok_or("the BLE session did not finish")?;
    if t.outcome() != Some(outcome.clone()) {
        return Err(format!("BLE: customer {outcome:?}, till {:?}", t.outcome()).into());
    }
    Ok((chunks, bytes, outcome))
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
    println!("== online: issuer service, merchants, customer, pre-authorization");
    // A real issuer service on a free loopback port, its ledger in the demo's directory.
    let mut config = Config::new(&dir.join("issuer"));
    config.listen = ([127, 0, 0, 1], 0).into();
    config.admin_listen = ([127, 0, 0, 1], 0).into();
    config.policy.max_single_minor = Some(4000);
    config.policy.max_payments = 20;
    let service = step("starting the issuer service", || InProcess::start(config))?;
    let admin = Client::new(&service.admin_url())?.with_admin_token(service.admin_token());
    let device = offpay_sdk::Config::issuer(&service.url());
    println!(
        "  issuer service at {} (admin API at {})",
        service.url(),
        service.admin_url()
    );
    let card = admin.create_instrument("EUR", Some("demo card"))?;
    admin.fund(&card.instrument.id, 10_000, "demo")?;
    println!(
        "  instrument {} funded with {}",
        card.instrument.id,
        eur(10_000)
    );
    let mut summary: Vec<[String; 4]> = Vec::new();
    let mut tills = Vec::new();
    for (id, name, till_dir) in [
        ("CAFE-001", "Cafe A", "till-cafe"),
        ("BIKE-002", "Bike shop B", "till-bike"),
    ] {
        let mut e = TillEnrollment::start(&dir.join(till_dir), device.clone())?;
        let cert = admin.certify_merchant(&api::NewMerchant {
            merchant_id: api::merchant_hex(&offpay_sdk::merchant_id(id)?),
            merchant_key: hex::encode(e.merchant_key()),
            display_name: name.to_string(),
            days: 365,
        })?;
        tills.push((name, e.finish(&cert)?));
        println!("  certified merchant {name}");
    }
    // Cafe A's second till: the same merchant's directory copied at set-up, its own journal
    // and offline memory from then on.
    copy_dir(&dir.join("till-cafe"), &dir.join("till-cafe-2"))?;
    let wallet = CustomerWallet::create(&dir.join("wallet"), device.clone())?;
    let auth =
        wallet.pre_authorize_instrument(&card.instrument.id, &card.credential, money("50.00")?)?;
    println!(
        "  voucher {}: {} pre-authorized over HTTP",
        auth.voucher_id, auth.amount
    );
    // A copy of the wallet as it is now: the "clone" of the last act.
    copy_dir(&dir.join("wallet"), &dir.join("clone"))?;

    println!("\n== offline, over QR: 4.20 EUR to Cafe A");
    let (_, cafe) = &tills[0];
    let request = cafe.create_request(money("4.20")?, Some("coffee"))?;
    let request = through_qr(&request, &dir, "request", show)?;
    let review = wallet.review(&request)?;
    println!(
        "  customer sees: {} to {}",
        review.amount, review.merchant_name
    );
    let paid = wallet.pay(&request)?;
    let payment = through_qr(&paid.bytes, &dir, "payment", show)?;
    let accepted = cafe.accept(&payment)?;
    let receipt = through_qr(&accepted.receipt, &dir, "receipt", show)?;
    wallet.receive_receipt(&receipt)?;
    summary.push([
        "QR".into(),
        "Cafe A".into(),
        eur(420),
        "accepted offline, receipt held, credited at sync".into(),
    ]);
    println!(
        "  paid; the wallet holds the receipt; left {}",
        wallet.available("EUR")?
    );

    println!("\n== offline, over BLE: 12.00 EUR to Bike shop B");
    let (_, bike) = &tills[1];
    let mut session = bike.ble_session(money("12.00")?, Some("inner tube"))?;
    let engagement = through_qr(&session.engagement(), &dir, "ble-engagement", show)?;
    match over_ble(&wallet, bike, &mut session, &engagement, 185)? {
        (chunks, bytes, BleOutcome::Completed { payment_id }) => println!(
            "  paid {payment_id} over an encrypted BLE session: {chunks} chunks, {bytes} bytes on air at MTU 185; left {}",
            wallet.available("EUR")?
        ),
        (_, _, other) => return Err(format!("BLE payment failed: {other:?}").into()),
    }
    summary.push([
        "BLE".into(),
        "Bike shop B".into(),
        eur(1200),
        "accepted offline, receipt held, credited at sync".into(),
    ]);

    println!("\n== online again: everyone syncs to the issuer");
    for (name, till) in &tills {
        synced(
            name,
            &step(&format!("{name}: syncing"), || till.sync_payments())?,
        );
    }
    let s = wallet.sync_payments()?;
    println!(
        "  wallet: {} records synced, all {} already known (each payment is credited once)",
        s.records_sent, s.duplicates
    );

    println!("\n== a cloned wallet double-spends");
    let clone = CustomerWallet::open(&dir.join("clone"), device.clone())?;
    {
        let (name, bike) = &tills[1];
        let payment = clone.pay(&bike.create_request(money("10.00")?, None)?)?;
        match bike.accept(&payment.bytes) {
            Ok(_) => println!("  {name} accepts 10.00 EUR from the clone"),
            Err(e) => {
                let why = e.name().unwrap_or("refused").to_string();
                println!("  {name}, which saw the real wallet, refuses the clone offline: {why}");
                summary.push([
                    "clone".into(),
                    name.to_string(),
                    eur(1000),
                    format!("refused offline: {why}"),
                ]);
            }
        }
    }
    // Cafe A's second till has its own offline memory and has never seen this wallet.
    let till2 = MerchantTill::open(&dir.join("till-cafe-2"), device.clone())?;
    let payment = clone.pay(&till2.create_request(money("40.00")?, None)?)?;
    till2.accept(&payment.bytes)?;
    println!(
        "  Cafe A's second till, which never saw the wallet, accepts 40.00 EUR from the clone"
    );
    summary.push([
        "clone".into(),
        "Cafe A till 2".into(),
        eur(4000),
        "accepted offline; FraudProof at settlement, holder owes the overspend".into(),
    ]);

    println!("\n== online: the merchants sync again");
    let trust = offpay_sdk::read_trust(&dir.join("wallet"))?;
    for (name, till) in [("Bike shop B", &tills[1].1), ("Cafe A till 2", &till2)] {
        let s = till.sync_payments()?;
        synced(name, &s);
        for p in &s.fraud_proofs {
            let proof = decode_unsigned::<FraudProof<'_>>(&p.bytes)?;
            proof.verify(&trust)?;
            println!(
                "  FraudProof ({}, {} bytes): voucher {} signed two different payments with sequence {}",
                p.kind,
                p.bytes.len(),
                p.voucher_id,
                proof.first.seq
            );
        }
    }
    let proofs = admin.fraud()?;

    println!("\n== settlement (from the issuer's admin API)");
    println!("  {:<14} {:>12}", "merchant", "credited");
    for c in admin.credits()? {
        let id = api::parse_merchant(&c.merchant_id).ok_or("merchant id")?;
        println!(
            "  {:<14} {:>12}",
            String::from_utf8_lossy(&id.0),
            eur(c.amount_minor)
        );
    }
    if let Some(v) = admin
        .vouchers()?
        .iter()
        .find(|v| v.voucher_id == auth.voucher_id)
    {
        println!(
            "  voucher limit {}, credited {}, overspend owed by the holder {}",
            eur(v.limit_minor),
            eur(v.credited_minor),
            eur(v.overspend_minor)
        );
    }
    let i = admin.instrument(&card.instrument.id)?;
    println!(
        "  instrument {}: available {}, reserved {}, owed {}",
        i.id,
        eur(i.available_minor),
        eur(i.reserved_minor),
        eur(i.owed_minor)
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
    drop((wallet, clone, tills, till2));
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

/// Copies a device directory (not its lock) as a backup or a clone would be made.
fn copy_dir(from: &Path, to: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        if e.file_type()?.is_file() && e.file_name() != ".lock" {
            std::fs::copy(e.path(), to.join(e.file_name()))?;
        }
    }
    Ok(())
}
