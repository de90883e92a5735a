//! An offline payment from start to finish, narrated: the issuer pre-authorizes 50.00 EUR, the
//! customer pays two merchants while offline, everyone syncs, and a cloned wallet's double
//! spend is caught by a FraudProof. State lives in file journals in a temporary directory.
//!
//! Run: `cargo run --release -p offpay-protocol --example payment`

use offpay_protocol::msg::{FraudProof, Outcome};
use offpay_protocol::*;
use rand_core::OsRng;

fn eur(a: Amount) -> String {
    format!("{}.{:02} EUR", a.0 / 100, a.0 % 100)
}

fn main() -> Result<(), Box<dyn core::error::Error>> {
    let dir = std::env::temp_dir().join(format!("offpay-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let now0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as u32;
    let at = |s: u32| Timestamp(now0 + s);
    let euro = Currency::parse("EUR").ok_or("currency")?;

    println!("== online: issuer, merchants, pre-authorization");
    let issuer = Issuer::new(SigningKey::generate(&mut OsRng));
    let mut trust = TrustStore::<4>::new();
    trust.add(issuer.public_key(), at(0), at(365 * 86_400))?;
    println!("issuer key id {}", issuer.key_id());
    let mut shops = Vec::new();
    for (id, name) in [
        (*b"CAFE-001", "Café Amélie"),
        (*b"BIKE-002", "Bike Repair"),
        (*b"KIOSK-03", "Night Kiosk"),
    ] {
        let key = SigningKey::generate(&mut OsRng);
        let cert = issuer.certify_merchant(
            MerchantId(id),
            key.public_key(),
            name,
            at(0),
            at(365 * 86_400),
        )?;
        let store = FileStore::open(dir.join(format!("{name}.journal")))?;
        shops.push((
            name,
            cert.to_vec(),
            Acceptor::<FileStore, SigningKey>::open(store, key, &cert)?,
        ));
        println!(
            "certified merchant {name} ({} byte certificate)",
            cert.len()
        );
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
        Nonce([1; 16]),
        at(1),
    )?;
    let terms = VoucherTerms {
        not_before: at(0),
        not_after: at(7 * 86_400),
        max_single: Some(Amount(3000)),
        max_payments: 20,
    };
    let voucher = issuer.issue_voucher(&preauth, terms, &mut OsRng)?;
    let voucher_id = wallet.install_voucher(&voucher, &trust, at(2))?;
    println!(
        "voucher {voucher_id}: {} ({} bytes)",
        eur(Amount(5000)),
        voucher.len()
    );
    // The attacker's copy of the device, taken now.
    std::fs::copy(dir.join("wallet.journal"), dir.join("clone.journal"))?;

    println!("\n== offline: request -> payment -> receipt");
    for (i, amount) in [(0usize, 420u64), (1, 1200), (0, 80)] {
        let (name, _, shop) = &mut shops[i];
        let now = at(100 + i as u32);
        let request = shop.create_request(Amount(amount), euro, Some("order"), now, &mut OsRng)?;
        let payment = wallet.pay(&request, &trust, None, now)?;
        let receipt = shop.accept(
            &payment,
            &Context {
                trust: &trust,
                revocations: None,
                now,
            },
        )?;
        wallet.receive_receipt(&receipt)?;
        println!(
            "{:>12} paid to {name}: request {} B, payment {} B, receipt {} B; left {}",
            eur(Amount(amount)),
            request.len(),
            payment.len(),
            receipt.len(),
            eur(wallet.remaining(euro, now))
        );
    }

    println!("\n== online again: sync and settlement");
    let mut ledger = Settlement::new(trust.clone(), settlement::DEFAULT_GRACE_SECS);
    let mut buf = vec![0u8; 64 * 1024];
    for (name, cert, shop) in &mut shops {
        ledger.register_merchant(cert)?;
        let n = shop.sync_batch(&mut buf)?;
        let ingested = ledger.ingest(&buf[..n], at(3600))?;
        let acked = shop.apply_report(&ingested.report(&issuer, at(3600))?, &trust, at(3601))?;
        println!(
            "{name} synced {} records, {acked} acknowledged",
            ingested.entries.len()
        );
    }
    let n = wallet.sync_batch(&mut buf)?;
    let ingested = ledger.ingest(&buf[..n], at(3700))?;
    let dups = ingested
        .entries
        .iter()
        .filter(|e| e.outcome == Outcome::Duplicate)
        .count();
    wallet.apply_report(&ingested.report(&issuer, at(3700))?, &trust, at(3701))?;
    println!(
        "wallet synced {} records: {dups} already known, credited once",
        ingested.entries.len()
    );

    println!("\n== a cloned wallet double-spends");
    let mut clone: Wallet<FileStore, SigningKey> = Wallet::open(
        FileStore::open(dir.join("clone.journal"))?,
        SigningKey::from_seed(&holder_seed),
    )?;
    {
        let (name, _, shop) = &mut shops[1];
        let request = shop.create_request(Amount(1000), euro, None, at(200), &mut OsRng)?;
        let payment = clone.pay(&request, &trust, None, at(200))?;
        let refused = shop.accept(
            &payment,
            &Context {
                trust: &trust,
                revocations: None,
                now: at(200),
            },
        );
        println!(
            "{name}, which saw the real wallet, refuses the clone offline: {}",
            refused.err().map(|e| e.to_string()).unwrap_or_default()
        );
    }
    let (name, _, shop) = &mut shops[2];
    for amount in [3000, 1000] {
        let request = shop.create_request(Amount(amount), euro, None, at(300), &mut OsRng)?;
        let payment = clone.pay(&request, &trust, None, at(300))?;
        shop.accept(
            &payment,
            &Context {
                trust: &trust,
                revocations: None,
                now: at(300),
            },
        )?;
        println!(
            "{name}, which never saw it, accepts {} from the clone",
            eur(Amount(amount))
        );
    }
    let n = shop.sync_batch(&mut buf)?;
    let ingested = ledger.ingest(&buf[..n], at(3800))?;
    for proof in &ingested.proofs {
        let p = decode_unsigned::<FraudProof<'_>>(proof)?;
        p.verify(&trust)?;
        println!(
            "FraudProof ({:?}, {} bytes) names voucher {}",
            p.kind,
            proof.len(),
            p.first.voucher.id
        );
    }

    println!("\n== settlement");
    for (m, _, a) in ledger.credits() {
        println!(
            "merchant {} credited {}",
            String::from_utf8_lossy(&m.0),
            eur(a)
        );
    }
    if let Some(v) = ledger.voucher(&voucher_id) {
        println!(
            "voucher: limit {}, credited {}, overspend owed by the holder {}",
            eur(v.limit),
            eur(v.credited),
            eur(v.overspend)
        );
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
