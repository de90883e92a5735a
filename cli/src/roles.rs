//! The role commands: `offpay issuer …`, `offpay wallet …`, `offpay merchant …`.
//!
//! Each command opens what it needs from the data directory, does one thing, and prints what
//! happened (text, or JSON with `--json`). Every store write happens through the protocol's
//! journal or the ledger's transactions, after all checks passed, so a refused command leaves
//! every store as it was.

use crate::amount;
use crate::data::{RoleDir, Trust, read_trust, show_merchant, show_time, trust_line, write_atomic};
use crate::fail::{Doing, Failure, Result};
use crate::ledger::{Ledger, SYNC_BATCH_MAX, money};
use crate::qrio;
use offpay_protocol::msg::sync::MAX_SYNC_RECORDS;
use offpay_protocol::msg::{PaymentRequest, Receipt, RevocationList, SyncBatch};
use offpay_protocol::{
    Acceptor, Context, Currency, FileStore, Issuer, Nonce, Signer, SigningKey, Timestamp,
    VoucherId, VoucherTerms, Wallet, decode_signed, decode_unsigned,
};
use rand_core::{OsRng, RngCore};
use serde_json::{Value, json};
use std::path::Path;

/// What a command prints: text for people, JSON for scripts.
pub struct Output {
    /// The text form.
    pub text: String,
    /// The JSON form.
    pub json: Value,
}

const DAY: u32 = 86_400;

type WalletOf = Wallet<FileStore, SigningKey>;
type AcceptorOf = Acceptor<FileStore, SigningKey>;

fn currency(code: &str) -> Result<Currency> {
    Currency::parse(&code.to_ascii_uppercase()).ok_or_else(|| {
        Failure::new(
            format!("'{code}' is not a currency code"),
            "use an ISO 4217 code such as EUR, USD or JPY",
        )
    })
}

// ---------------------------------------------------------------- issuer

fn open_issuer(data: &Path) -> Result<(RoleDir, Ledger)> {
    let d = RoleDir::new(data, "issuer");
    d.require("issuer.key", "issuer init")?;
    let d = d.locked()?;
    let issuer = Issuer::new(d.key("issuer.key")?);
    let trust = d.trust()?;
    let ledger = Ledger::open(&d.file("ledger.sqlite"), issuer, trust)?;
    Ok((d, ledger))
}

/// Opens the issuer a device talks to (its own data directory, or `--issuer DIR`), refusing
/// one the device does not trust before anything is written to either side.
fn open_issuer_for(
    device: &str,
    issuer: Option<&Path>,
    data: &Path,
    trust: &Trust,
    now: Timestamp,
) -> Result<(RoleDir, Ledger)> {
    let dir = issuer.unwrap_or(data);
    if !RoleDir::new(dir, "issuer").exists("issuer.key") {
        return Err(Failure::new(
            format!("no issuer in {}", dir.display()),
            "give the issuer's data directory with --issuer DIR",
        ));
    }
    let (d, ledger) = open_issuer(dir)?;
    if trust.issuer_key(&ledger.issuer().key_id(), now).is_err() {
        return Err(Failure::new(
            format!(
                "this {device} does not trust the issuer in {}",
                dir.display()
            ),
            "give the data directory of the issuer the device was created with (--issuer)",
        ));
    }
    Ok((d, ledger))
}

/// `offpay issuer init`.
pub fn issuer_init(data: &Path, now: Timestamp) -> Result<Output> {
    let d = RoleDir::new(data, "issuer");
    let staged = d.stage("issuer.key")?;
    let key = SigningKey::generate(&mut OsRng);
    let public = key.public_key();
    let result = (|| {
        let issuer = Issuer::new(SigningKey::from_seed(&key.to_seed()));
        // Trusted from a day before now (devices' clocks differ) for ten years.
        let (from, until) = (now.saturating_sub(DAY), now.saturating_add(3653 * DAY));
        let mut trust = Trust::new();
        trust
            .add(public, from, until)
            .doing("creating the issuer")?;
        drop(Ledger::create(
            &staged.file("ledger.sqlite"),
            issuer,
            trust,
        )?);
        write_atomic(
            &staged.file("issuer.pub"),
            trust_line(&public, from, until).as_bytes(),
        )?;
        staged.write_key("issuer.key", &key)
    })();
    match result {
        Ok(()) => staged.commit(&d)?,
        Err(e) => {
            staged.abandon();
            return Err(e);
        }
    }
    let public = hex::encode(public.0);
    Ok(Output {
        text: format!(
            "issuer created in {}\n  public key {public}\n  ledger {}\n  devices trust it through {}",
            d.path().display(),
            d.file("ledger.sqlite").display(),
            d.file("issuer.pub").display()
        ),
        json: json!({"public_key": public, "ledger": d.file("ledger.sqlite"), "trust_anchor": d.file("issuer.pub")}),
    })
}

/// Checks text a message carries (a merchant name, a reference) before anything is stored.
fn text_field(what: &str, text: &str) -> Result<()> {
    let max = offpay_protocol::msg::MAX_TEXT_LEN;
    if text.is_empty() || text.len() > max || text.chars().any(char::is_control) {
        return Err(Failure::new(
            format!("the {what} must be 1 to {max} bytes of text without control characters"),
            "shorten it",
        ));
    }
    Ok(())
}

/// `offpay issuer certify-merchant`.
pub fn certify_merchant(
    data: &Path,
    id: &str,
    name: &str,
    merchant_data: Option<&Path>,
    days: u32,
    now: Timestamp,
) -> Result<Output> {
    let (idir, mut ledger) = open_issuer(data)?;
    let merchant_id = crate::data::merchant_id(id)?;
    text_field("merchant name", name)?;
    if let Some(known) = ledger.merchant_name(&merchant_id)? {
        return Err(Failure::new(
            format!("merchant {id} is already certified (as \"{known}\")"),
            "choose another merchant id",
        ));
    }
    let md = RoleDir::new(merchant_data.unwrap_or(data), "merchant");
    if md.exists("merchant.key") {
        return Err(Failure::new(
            format!("{} already holds a merchant", md.path().display()),
            "give another directory with --merchant-data",
        ));
    }
    // The merchant's files are made in a staging directory first and the ledger written last
    // but one: a failure before it leaves no trace, and the id is not used up.
    let staged = md.stage("merchant.key")?;
    let key = SigningKey::generate(&mut OsRng);
    let until = now.saturating_add(days.saturating_mul(DAY));
    let result = (|| {
        let cert = ledger
            .issuer()
            .certify_merchant(merchant_id, key.public_key(), name, now, until)
            .doing("certifying the merchant")?;
        std::fs::copy(idir.file("issuer.pub"), staged.file("issuer.pub"))
            .doing("installing the issuer's public key")?;
        write_atomic(&staged.file("certificate.bin"), &cert)?;
        FileStore::open(staged.file("merchant.journal"))
            .map_err(offpay_protocol::Error::from)
            .doing("creating the merchant journal")?;
        staged.write_key("merchant.key", &key)?;
        ledger.add_merchant(&cert, now)
    })();
    if let Err(e) = result {
        staged.abandon();
        return Err(e);
    }
    staged.commit(&md).map_err(|e| {
        e.todo(
            "the merchant is certified in the ledger but its files could not be moved into place; \
             they are in the .merchant.new-* directory beside it",
        )
    })?;
    Ok(Output {
        text: format!(
            "certified merchant {id} \"{name}\" until {}\n  key and certificate in {}",
            show_time(until),
            md.path().display()
        ),
        json: json!({"merchant_id": id, "name": name, "not_after": until.0, "dir": md.path()}),
    })
}

/// `offpay issuer revoke`.
pub fn revoke(
    data: &Path,
    voucher: Option<&str>,
    merchant: Option<&str>,
    now: Timestamp,
) -> Result<Output> {
    let (d, mut ledger) = open_issuer(data)?;
    let voucher = voucher
        .map(|v| {
            let mut id = [0u8; 16];
            hex::decode_to_slice(v, &mut id)
                .map(|()| VoucherId(id))
                .map_err(|_| {
                    Failure::new(
                        format!("'{v}' is not a voucher id"),
                        "give the 32 hex digits `offpay issuer report` shows",
                    )
                })
        })
        .transpose()?;
    let merchant = merchant.map(crate::data::merchant_id).transpose()?;
    if let Some(v) = voucher
        && !ledger.knows_voucher(&v)?
    {
        return Err(Failure::new(
            format!("this issuer never issued voucher {v}"),
            "check the id with `offpay issuer report`",
        ));
    }
    if let Some(m) = merchant
        && ledger.merchant_name(&m)?.is_none()
    {
        return Err(Failure::new(
            format!("merchant {} was never certified here", show_merchant(&m)),
            "check the id with `offpay issuer report`",
        ));
    }
    if voucher.is_none() && merchant.is_none() {
        return Err(Failure::new(
            "nothing to revoke",
            "give --voucher ID or --merchant ID",
        ));
    }
    let list = ledger.revoke(voucher, merchant, now)?;
    write_atomic(&d.file("revocations.bin"), &list)?;
    let l = decode_signed::<RevocationList<'_>>(&list).doing("reading the revocation list")?;
    let (nv, nm) = (l.vouchers.len() / 16, l.merchants.len() / 8);
    Ok(Output {
        text: format!(
            "revocation list #{} signed: {nv} voucher(s), {nm} merchant(s); devices get it when they sync",
            l.serial
        ),
        json: json!({"serial": l.serial, "vouchers": nv, "merchants": nm}),
    })
}

/// `offpay issuer report`.
pub fn report(data: &Path, now: Timestamp) -> Result<Output> {
    let (_held, mut ledger) = open_issuer(data)?;
    ledger.close_expired(now)?;
    let c = ledger.conn();
    let what = "reading the ledger";
    let q = |e: rusqlite::Error| {
        Failure::new(
            format!("{what}: {e}"),
            "check the ledger file; nothing was changed",
        )
    };
    let mut text = String::from("issuer report\n");
    let mut merchants = Vec::new();
    {
        let mut st = c
            .prepare(
                "SELECT m.merchant_id, m.display_name,
                   (SELECT COUNT(*) FROM payments p WHERE p.merchant_id = m.merchant_id),
                   (SELECT COUNT(*) FROM payments p WHERE p.merchant_id = m.merchant_id AND p.credited = 1)
                 FROM merchants m ORDER BY m.merchant_id",
            )
            .map_err(q)?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .map_err(q)?;
        text.push_str(&format!(
            "\n  {:<10} {:<20} {:>8} {:>8}  credited\n",
            "merchant", "name", "payments", "credited"
        ));
        for row in rows {
            let (id, name, n, credited) = row.map_err(q)?;
            let mut cst = c
                .prepare("SELECT currency, amount_minor FROM credits WHERE merchant_id = ?1 ORDER BY currency")
                .map_err(q)?;
            let credits: Vec<(String, i64)> = cst
                .query_map([&id], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(q)?
                .collect::<rusqlite::Result<_>>()
                .map_err(q)?;
            let shown: Vec<String> = credits.iter().map(|(cur, a)| money(*a, cur)).collect();
            text.push_str(&format!(
                "  {id:<10} {name:<20} {n:>8} {credited:>8}  {}\n",
                if shown.is_empty() {
                    "-".to_string()
                } else {
                    shown.join(", ")
                }
            ));
            merchants.push(json!({
                "merchant_id": id, "name": name, "payments": n, "credited_payments": credited,
                "credits": credits.iter().map(|(cur, a)| json!({"currency": cur, "amount_minor": a, "amount": money(*a, cur)})).collect::<Vec<_>>(),
            }));
        }
    }
    let mut vouchers = Vec::new();
    {
        let mut st = c
            .prepare(
                "SELECT v.voucher_id, v.currency, v.limit_minor, v.credited_minor, v.overspend_minor,
                   v.fraud, v.released_minor, v.not_after,
                   (SELECT COUNT(*) FROM payments p WHERE p.voucher_id = v.voucher_id),
                   EXISTS (SELECT 1 FROM revocations r WHERE r.kind = 'voucher' AND r.id = v.voucher_id)
                 FROM vouchers v ORDER BY v.rowid",
            )
            .map_err(q)?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, bool>(5)?,
                    r.get::<_, Option<i64>>(6)?,
                    r.get::<_, u32>(7)?,
                    r.get::<_, i64>(8)?,
                    r.get::<_, bool>(9)?,
                ))
            })
            .map_err(q)?;
        text.push_str("\n  vouchers\n");
        for row in rows {
            let (id, cur, limit, credited, over, fraud, released, not_after, n, revoked) =
                row.map_err(q)?;
            text.push_str(&format!(
                "  {id}  limit {}, credited {} in {n} payment(s){}{}{}{}\n",
                money(limit, &cur),
                money(credited, &cur),
                if over > 0 {
                    format!(", overspend owed by the holder {}", money(over, &cur))
                } else {
                    String::new()
                },
                if fraud { ", FRAUD PROVEN" } else { "" },
                if revoked { ", revoked" } else { "" },
                match released {
                    Some(r) => format!(", closed: {} released", money(r, &cur)),
                    None => format!(", open until {} + grace", show_time(Timestamp(not_after))),
                },
            ));
            vouchers.push(json!({
                "voucher_id": id, "currency": cur, "limit_minor": limit, "credited_minor": credited,
                "overspend_minor": over, "fraud": fraud, "released_minor": released,
                "payments": n, "revoked": revoked, "not_after": not_after,
            }));
        }
    }
    let mut proofs = Vec::new();
    {
        let mut st = c
            .prepare("SELECT proof_id, voucher_id, kind, first_payment, second_payment, length(proof) FROM fraud_proofs ORDER BY rowid")
            .map_err(q)?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            })
            .map_err(q)?;
        text.push_str("\n  fraud proofs\n");
        for row in rows {
            let (id, voucher, kind, a, b, len) = row.map_err(q)?;
            text.push_str(&format!(
                "  FraudProof {kind} ({len} bytes): voucher {voucher}, payments {} and {}\n",
                a.get(..16).unwrap_or(&a),
                b.get(..16).unwrap_or(&b)
            ));
            proofs.push(json!({"proof_id": id, "voucher_id": voucher, "kind": kind, "first_payment": a, "second_payment": b, "bytes": len}));
        }
        if proofs.is_empty() {
            text.push_str("  none\n");
        }
    }
    let (payments, credited, receipts, batches): (i64, i64, i64, i64) = c
        .query_row(
            "SELECT (SELECT COUNT(*) FROM payments), (SELECT COUNT(*) FROM payments WHERE credited = 1),
                    (SELECT COUNT(*) FROM receipts), (SELECT COUNT(*) FROM sync_batches)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .map_err(q)?;
    text.push_str(&format!(
        "\n  {payments} payment(s), {credited} credited, {} waiting for a receipt; {receipts} receipt(s); {batches} sync batch(es)",
        payments - credited
    ));
    Ok(Output {
        text,
        json: json!({
            "merchants": merchants, "vouchers": vouchers, "fraud_proofs": proofs,
            "payments": payments, "credited_payments": credited, "receipts": receipts, "sync_batches": batches,
        }),
    })
}

// ---------------------------------------------------------------- wallet

fn open_wallet(data: &Path) -> Result<(RoleDir, WalletOf, Trust)> {
    let d = RoleDir::new(data, "wallet");
    d.require("holder.key", "wallet init")?;
    let d = d.locked()?;
    let trust = d.trust()?;
    let store = FileStore::open(d.file("wallet.journal"))
        .map_err(offpay_protocol::Error::from)
        .doing("opening the wallet")?;
    let w = Wallet::open(store, d.key("holder.key")?).doing("opening the wallet")?;
    Ok((d, w, trust))
}

/// `offpay wallet init`.
pub fn wallet_init(data: &Path, issuer: Option<&Path>) -> Result<Output> {
    let d = RoleDir::new(data, "wallet");
    let anchor = RoleDir::new(issuer.unwrap_or(data), "issuer").file("issuer.pub");
    if !anchor.exists() {
        return Err(Failure::new(
            format!("no issuer public key at {}", anchor.display()),
            "run `offpay issuer init` first, or point --issuer at the issuer's data directory",
        ));
    }
    let anchor_bytes = crate::data::read_capped(&anchor, 4096, "reading the issuer's public key")?;
    read_trust(&anchor)?;
    let staged = d.stage("holder.key")?;
    let key = SigningKey::generate(&mut OsRng);
    let result = (|| {
        write_atomic(&staged.file("issuer.pub"), &anchor_bytes)?;
        FileStore::open(staged.file("wallet.journal"))
            .map_err(offpay_protocol::Error::from)
            .doing("creating the wallet journal")?;
        staged.write_key("holder.key", &key)
    })();
    match result {
        Ok(()) => staged.commit(&d)?,
        Err(e) => {
            staged.abandon();
            return Err(e);
        }
    }
    let public = hex::encode(key.public_key().0);
    Ok(Output {
        text: format!(
            "wallet created in {}\n  holder key {public}",
            d.path().display()
        ),
        json: json!({"holder_key": public, "dir": d.path()}),
    })
}

/// The terms of a pre-authorization.
pub struct PreauthArgs<'a> {
    /// Amount text.
    pub amount: &'a str,
    /// Currency code.
    pub currency: &'a str,
    /// The issuer's data directory (default: the wallet's).
    pub issuer: Option<&'a Path>,
    /// Days of validity.
    pub days: u32,
    /// Largest single payment, if smaller than the amount.
    pub max_single: Option<&'a str>,
    /// Most payments.
    pub max_payments: u32,
    /// The funding instrument the issuer holds the amount on.
    pub instrument: &'a str,
}

/// `offpay wallet preauth`.
pub fn preauth(data: &Path, a: &PreauthArgs<'_>, now: Timestamp) -> Result<Output> {
    let (_held, mut wallet, trust) = open_wallet(data)?;
    let cur = currency(a.currency)?;
    let amount = amount::parse(a.amount, cur).map_err(|e| Failure::new(e, ""))?;
    let max_single = a
        .max_single
        .map(|m| amount::parse(m, cur).map_err(|e| Failure::new(e, "")))
        .transpose()?;
    if a.days == 0 || a.max_payments == 0 {
        return Err(Failure::new(
            "a voucher needs at least one day and one payment",
            "give --days and --max-payments of 1 or more",
        ));
    }
    let (_held, mut ledger) = open_issuer_for("wallet", a.issuer, data, &trust, now)?;
    if wallet.balances().count() >= 8 {
        return Err(Failure::new(
            "the wallet already holds its maximum of 8 vouchers, and this version never retires one",
            "start a new wallet with `offpay --data NEW-DIR wallet init` for further pre-authorizations",
        ));
    }
    let mut nonce = [0u8; 16];
    OsRng.fill_bytes(&mut nonce);
    let request = wallet
        .preauth_request(a.instrument.as_bytes(), amount, cur, Nonce(nonce), now)
        .doing("asking for the pre-authorization")?;
    let terms = VoucherTerms {
        not_before: now,
        not_after: now.saturating_add(a.days.saturating_mul(DAY)),
        max_single,
        max_payments: a.max_payments,
    };
    let voucher = ledger
        .issuer()
        .issue_voucher(&request, terms, &mut OsRng)
        .doing("issuing the voucher")?;
    ledger.add_voucher(&voucher, a.instrument, now)?;
    let id = wallet
        .install_voucher(&voucher, &trust, now)
        .doing("installing the voucher")?;
    Ok(Output {
        text: format!(
            "voucher {id}: {} pre-authorized on {}, valid until {}",
            amount::format(amount, cur),
            a.instrument,
            show_time(terms.not_after)
        ),
        json: json!({"voucher_id": id.to_string(), "amount_minor": amount.0, "currency": cur.as_str(), "not_after": terms.not_after.0}),
    })
}

fn revocations(d: &RoleDir) -> Result<Option<Vec<u8>>> {
    d.revocations()
}

/// `offpay wallet pay`.
pub fn pay(data: &Path, scan: &Path, qr: &Path, show: bool, now: Timestamp) -> Result<Output> {
    let (d, mut wallet, trust) = open_wallet(data)?;
    let request = qrio::read_image(scan)?;
    let out = qrio::OutPng::prepare(qr)?;
    let r = decode_signed::<PaymentRequest<'_>>(&request)
        .doing("reading the payment request")
        .map_err(|e| e.todo("scan the payment request the merchant shows"))?;
    let list = revocations(&d)?;
    let list = list
        .as_deref()
        .map(decode_signed::<RevocationList<'_>>)
        .transpose()
        .doing("reading the revocation list")?;
    let again = wallet.payments().any(|p| {
        p.payment.request_nonce == r.nonce && p.payment.merchant_id == r.certificate.merchant_id
    });
    let payment = wallet
        .pay(&request, &trust, list.as_deref(), now)
        .doing(&format!(
            "paying {} to {}",
            amount::format(r.amount, r.currency),
            r.certificate.display_name
        ))?;
    let frame = out.finish(&payment).map_err(|e| {
        e.todo("the payment is stored in the wallet; run the same command again to write its QR code (nothing more is spent)")
    })?;
    let p = decode_signed::<offpay_protocol::msg::Payment<'_>>(&payment).doing("paying")?;
    let left = wallet.remaining(r.currency, now);
    let mut text = format!(
        "{} {} to {} ({}), payment {}\n  voucher left {}\n  show {} (QR version {}) to the merchant",
        if again {
            "already paid this request earlier (nothing new spent; the same payment again):"
        } else {
            "paid"
        },
        amount::format(r.amount, r.currency),
        r.certificate.display_name,
        show_merchant(&r.certificate.merchant_id),
        p.id(),
        amount::format(left, r.currency),
        qr.display(),
        frame.version()
    );
    if show {
        text.push('\n');
        text.push_str(&qrio::terminal(&frame));
    }
    Ok(Output {
        text,
        json: json!({
            "payment_id": p.id().to_string(), "amount_minor": r.amount.0, "currency": r.currency.as_str(),
            "merchant_id": show_merchant(&r.certificate.merchant_id), "merchant": r.certificate.display_name,
            "remaining_minor": left.0, "qr": qr, "qr_version": frame.version(), "bytes": payment.len(),
            "already_paid": again,
        }),
    })
}

/// `offpay wallet receipt`.
pub fn receipt(data: &Path, scan: &Path) -> Result<Output> {
    let (_held, mut wallet, _) = open_wallet(data)?;
    let bytes = qrio::read_image(scan)?;
    let r = decode_signed::<Receipt>(&bytes)
        .doing("reading the receipt")
        .map_err(|e| e.todo("scan the receipt the merchant shows"))?;
    let id = wallet
        .receive_receipt(&bytes)
        .doing("storing the receipt")
        .map_err(|e| match e.code() {
            Some(c) if c == offpay_protocol::Rejection::UnknownPayment.code() => {
                e.todo("this receipt is for a payment this wallet did not make")
            }
            _ => e,
        })?;
    Ok(Output {
        text: format!(
            "receipt from {} for payment {id} stored (accepted {})",
            show_merchant(&r.merchant_id),
            show_time(r.accepted_at)
        ),
        json: json!({"payment_id": id.to_string(), "merchant_id": show_merchant(&r.merchant_id), "accepted_at": r.accepted_at.0}),
    })
}

/// `offpay wallet payments`.
pub fn wallet_payments(data: &Path, now: Timestamp) -> Result<Output> {
    let (_held, wallet, _) = open_wallet(data)?;
    let mut text = String::from("vouchers\n");
    let mut vouchers = Vec::new();
    for b in wallet.balances() {
        let expired = now > b.not_after;
        text.push_str(&format!(
            "  {}  {} of {} left, {} payment(s), {} {}\n",
            b.id,
            amount::format(b.remaining, b.currency),
            amount::format(b.limit, b.currency),
            b.payments,
            if expired { "expired" } else { "valid until" },
            show_time(b.not_after)
        ));
        vouchers.push(json!({
            "voucher_id": b.id.to_string(), "currency": b.currency.as_str(), "limit_minor": b.limit.0,
            "remaining_minor": b.remaining.0, "payments": b.payments, "not_after": b.not_after.0, "expired": expired,
        }));
    }
    text.push_str("payments\n");
    let mut payments = Vec::new();
    for p in wallet.payments() {
        let cur = p.payment.voucher.currency;
        text.push_str(&format!(
            "  {}  #{} {} to {}, {}, {}, {}\n",
            &p.payment.id().to_string()[..16],
            p.payment.seq,
            amount::format(p.payment.amount, cur),
            show_merchant(&p.payment.merchant_id),
            show_time(p.payment.created_at),
            if p.receipt.is_some() {
                "receipt held"
            } else {
                "no receipt"
            },
            if p.synced { "synced" } else { "not synced" },
        ));
        payments.push(json!({
            "payment_id": p.payment.id().to_string(), "seq": p.payment.seq, "amount_minor": p.payment.amount.0,
            "currency": cur.as_str(), "merchant_id": show_merchant(&p.payment.merchant_id),
            "created_at": p.payment.created_at.0, "receipt": p.receipt.is_some(), "synced": p.synced,
        }));
    }
    if payments.is_empty() {
        text.push_str("  none\n");
    }
    Ok(Output {
        text: text.trim_end().to_string(),
        json: json!({"vouchers": vouchers, "payments": payments}),
    })
}

/// Syncs one device's journal to the issuer until nothing more is acknowledged.
fn sync_device(
    make_batch: &mut dyn FnMut(&mut [u8]) -> Result<usize>,
    apply: &mut dyn FnMut(&[u8]) -> Result<usize>,
    ledger: &mut Ledger,
    source: &str,
    now: Timestamp,
) -> Result<Value> {
    let mut buf = vec![0u8; SYNC_BATCH_MAX];
    let (mut sent, mut new, mut dup, mut credited, mut proofs, mut marked) = (0, 0, 0, 0, 0, 0);
    let mut rejected = Vec::new();
    // A journal may hold more unsynced records than one batch carries; stop when a round
    // marks nothing new (what is left waits for its other half).
    for _ in 0..1024 {
        let n = make_batch(&mut buf)?;
        let count = decode_unsigned::<SyncBatch<'_>>(&buf[..n])
            .map_err(offpay_protocol::Error::from)
            .doing("reading the sync batch")?
            .len();
        if count == 0 {
            break;
        }
        let s = ledger.ingest(&buf[..n], source, now)?;
        let m = apply(&s.report)?;
        sent += s.records;
        new += s.new;
        dup += s.duplicates;
        credited += s.credited;
        proofs += s.proofs;
        rejected.extend(s.rejected);
        marked += m;
        if count < MAX_SYNC_RECORDS || m == 0 {
            break;
        }
    }
    Ok(json!({
        "records_sent": sent, "new": new, "duplicates": dup, "credited": credited,
        "fraud_proofs": proofs, "rejected": rejected, "acknowledged": marked,
    }))
}

fn sync_text(who: &str, v: &Value, list: bool) -> String {
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    if n("records_sent") == 0 {
        return format!("{who}: nothing to sync");
    }
    let rejected = v["rejected"].as_array().map(Vec::len).unwrap_or(0);
    format!(
        "{who}: {} record(s) sent, {} new, {} already known, {} payment(s) credited, {} acknowledged{}{}{}",
        n("records_sent"),
        n("new"),
        n("duplicates"),
        n("credited"),
        n("acknowledged"),
        if rejected > 0 {
            format!(", {rejected} refused (codes {})", v["rejected"])
        } else {
            String::new()
        },
        if n("fraud_proofs") > 0 {
            format!(", {} FraudProof(s) found", n("fraud_proofs"))
        } else {
            String::new()
        },
        if list {
            "; revocation list updated"
        } else {
            ""
        },
    )
}

fn pull_revocations(d: &RoleDir, ledger: &Ledger, trust: &Trust, now: Timestamp) -> Result<bool> {
    match ledger.revocation_list()? {
        Some(list) => d.install_revocations(&list, trust, now),
        None => Ok(false),
    }
}

/// `offpay wallet sync`.
pub fn wallet_sync(data: &Path, issuer: Option<&Path>, now: Timestamp) -> Result<Output> {
    let (d, mut wallet, trust) = open_wallet(data)?;
    let (_held, mut ledger) = open_issuer_for("wallet", issuer, data, &trust, now)?;
    let source = format!("wallet {}", &hex::encode(wallet.holder_key().0)[..16]);
    let wallet = std::cell::RefCell::new(&mut wallet);
    let v = sync_device(
        &mut |buf| {
            wallet
                .borrow()
                .sync_batch(buf)
                .doing("making the sync batch")
        },
        &mut |report| {
            wallet
                .borrow_mut()
                .apply_report(report, &trust, now)
                .doing("applying the issuer's report")
        },
        &mut ledger,
        &source,
        now,
    )?;
    let list = pull_revocations(&d, &ledger, &trust, now)?;
    let mut v = v;
    v["revocation_list_updated"] = json!(list);
    Ok(Output {
        text: sync_text("wallet", &v, list),
        json: v,
    })
}

// ---------------------------------------------------------------- merchant

fn open_merchant(data: &Path) -> Result<(RoleDir, AcceptorOf, Trust)> {
    let d = RoleDir::new(data, "merchant");
    d.require("merchant.key", "issuer certify-merchant")?;
    let d = d.locked()?;
    let trust = d.trust()?;
    let cert = std::fs::read(d.file("certificate.bin")).doing("reading the certificate")?;
    let store = FileStore::open(d.file("merchant.journal"))
        .map_err(offpay_protocol::Error::from)
        .doing("opening the merchant journal")?;
    let a = Acceptor::open(store, d.key("merchant.key")?, &cert).doing("opening the merchant")?;
    Ok((d, a, trust))
}

/// `offpay merchant request`.
pub fn request(
    data: &Path,
    amount_text: &str,
    currency_code: &str,
    reference: Option<&str>,
    qr: &Path,
    show: bool,
    now: Timestamp,
) -> Result<Output> {
    let (_held, mut shop, _) = open_merchant(data)?;
    let cur = currency(currency_code)?;
    let amount = amount::parse(amount_text, cur).map_err(|e| Failure::new(e, ""))?;
    if let Some(r) = reference {
        text_field("reference", r)?;
    }
    let out = qrio::OutPng::prepare(qr)?;
    let request = shop
        .create_request(amount, cur, reference, now, &mut OsRng)
        .doing("making the payment request")?;
    let frame = out
        .finish(&request)
        .map_err(|e| e.todo("make a new request"))?;
    let mut text = format!(
        "request for {} written to {} (QR version {}); show it to the customer",
        amount::format(amount, cur),
        qr.display(),
        frame.version()
    );
    if show {
        text.push('\n');
        text.push_str(&qrio::terminal(&frame));
    }
    Ok(Output {
        text,
        json: json!({"amount_minor": amount.0, "currency": cur.as_str(), "qr": qr, "qr_version": frame.version(), "bytes": request.len()}),
    })
}

/// `offpay merchant accept`.
pub fn accept(data: &Path, scan: &Path, qr: &Path, show: bool, now: Timestamp) -> Result<Output> {
    let (d, mut shop, trust) = open_merchant(data)?;
    let payment = qrio::read_image(scan)?;
    let out = qrio::OutPng::prepare(qr)?;
    let list = revocations(&d)?;
    let list = list
        .as_deref()
        .map(decode_signed::<RevocationList<'_>>)
        .transpose()
        .doing("reading the revocation list")?;
    let ctx = Context {
        trust: &trust,
        revocations: list.as_deref(),
        now,
    };
    let receipt = shop
        .accept(&payment, &ctx)
        .doing("accepting the payment")
        .map_err(|e| match e.code() {
            Some(c) if c < 200 => e.todo("scan the payment the customer's wallet shows"),
            _ => e,
        })?;
    let p = decode_signed::<offpay_protocol::msg::Payment<'_>>(&payment).doing("accepting")?;
    let frame = out.finish(&receipt).map_err(|e| {
        e.todo("the payment is accepted and stored; run the same command again to write the receipt's QR code (the same receipt)")
    })?;
    let cur = p.voucher.currency;
    let mut text = format!(
        "accepted {} (payment {}, #{} on voucher {})\n  show {} (QR version {}) to the customer",
        amount::format(p.amount, cur),
        p.id(),
        p.seq,
        p.voucher.id,
        qr.display(),
        frame.version()
    );
    if show {
        text.push('\n');
        text.push_str(&qrio::terminal(&frame));
    }
    Ok(Output {
        text,
        json: json!({"payment_id": p.id().to_string(), "amount_minor": p.amount.0, "currency": cur.as_str(), "voucher_id": p.voucher.id.to_string(), "seq": p.seq, "qr": qr}),
    })
}

/// `offpay merchant payments`.
pub fn merchant_payments(data: &Path) -> Result<Output> {
    let (_held, shop, _) = open_merchant(data)?;
    let mut text = format!(
        "payments accepted by {}\n",
        show_merchant(&shop.merchant_id())
    );
    let mut payments = Vec::new();
    for p in shop.payments() {
        let cur = p.payment.voucher.currency;
        let r = decode_signed::<Receipt>(p.receipt)
            .ok()
            .map(|r| r.accepted_at);
        text.push_str(&format!(
            "  {}  {} on voucher {} #{}, accepted {}, {}\n",
            &p.payment.id().to_string()[..16],
            amount::format(p.payment.amount, cur),
            p.payment.voucher.id,
            p.payment.seq,
            r.map(show_time).unwrap_or_default(),
            if p.synced { "synced" } else { "not synced" },
        ));
        payments.push(json!({
            "payment_id": p.payment.id().to_string(), "amount_minor": p.payment.amount.0, "currency": cur.as_str(),
            "voucher_id": p.payment.voucher.id.to_string(), "seq": p.payment.seq,
            "accepted_at": r.map(|t| t.0), "synced": p.synced,
        }));
    }
    if payments.is_empty() {
        text.push_str("  none\n");
    }
    Ok(Output {
        text: text.trim_end().to_string(),
        json: json!({"merchant_id": show_merchant(&shop.merchant_id()), "payments": payments}),
    })
}

/// `offpay merchant sync`.
pub fn merchant_sync(data: &Path, issuer: Option<&Path>, now: Timestamp) -> Result<Output> {
    let (d, mut shop, trust) = open_merchant(data)?;
    let (_held, mut ledger) = open_issuer_for("merchant", issuer, data, &trust, now)?;
    let source = format!("merchant {}", show_merchant(&shop.merchant_id()));
    let shop = std::cell::RefCell::new(&mut shop);
    let v = sync_device(
        &mut |buf| shop.borrow().sync_batch(buf).doing("making the sync batch"),
        &mut |report| {
            shop.borrow_mut()
                .apply_report(report, &trust, now)
                .doing("applying the issuer's report")
        },
        &mut ledger,
        &source,
        now,
    )?;
    let list = pull_revocations(&d, &ledger, &trust, now)?;
    let mut v = v;
    v["revocation_list_updated"] = json!(list);
    Ok(Output {
        text: sync_text("merchant", &v, list),
        json: v,
    })
}
