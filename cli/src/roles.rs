//! The role commands: `offpay issuer …`, `offpay wallet …`, `offpay merchant …`.
//!
//! Each command opens what it needs from the data directory, does one thing, and prints what
//! happened (text, or JSON with `--json`). Every store write happens through the protocol's
//! journal, after all checks passed, so a refused command leaves every store as it was. The
//! commands that talk to the issuer service are in `online.rs`.

use crate::amount;
use crate::data::{RoleDir, Trust, show_merchant, show_time};
use crate::fail::{Doing, Failure, Result};
use crate::qrio;
use offpay_protocol::msg::{PaymentRequest, Receipt, RevocationList};
use offpay_protocol::{
    Acceptor, Context, Currency, FileStore, SigningKey, Timestamp, Wallet, decode_signed,
};
use rand_core::OsRng;
use serde_json::{Value, json};
use std::path::Path;

/// What a command prints: text for people, JSON for scripts.
pub struct Output {
    /// The text form.
    pub text: String,
    /// The JSON form.
    pub json: Value,
}

pub(crate) type WalletOf = Wallet<FileStore, SigningKey>;
pub(crate) type AcceptorOf = Acceptor<FileStore, SigningKey>;

pub(crate) fn currency(code: &str) -> Result<Currency> {
    Currency::parse(&code.to_ascii_uppercase()).ok_or_else(|| {
        Failure::new(
            format!("'{code}' is not a currency code"),
            "use an ISO 4217 code such as EUR, USD or JPY",
        )
    })
}

/// Checks text a message carries (a merchant name, a reference) before anything is stored.
pub(crate) fn text_field(what: &str, text: &str) -> Result<()> {
    let max = offpay_protocol::msg::MAX_TEXT_LEN;
    if text.is_empty() || text.len() > max || text.chars().any(char::is_control) {
        return Err(Failure::new(
            format!("the {what} must be 1 to {max} bytes of text without control characters"),
            "shorten it",
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------- wallet

pub(crate) fn open_wallet(data: &Path) -> Result<(RoleDir, WalletOf, Trust)> {
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

// ---------------------------------------------------------------- merchant

pub(crate) fn open_merchant(data: &Path) -> Result<(RoleDir, AcceptorOf, Trust)> {
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
