//! The role commands: `offpay wallet …`, `offpay merchant …` (the offline ones; the online
//! ones are in `online.rs`).
//!
//! Each command opens its device through the SDK (`offpay_sdk::CustomerWallet`,
//! `offpay_sdk::MerchantTill`), does one thing, and prints what happened (text, or JSON with
//! `--json`). The SDK stores only after every check passed, so a refused command leaves every
//! store as it was.

use crate::data::{config, require, show_merchant, show_time};
use crate::fail::{Doing, Result};
use crate::qrio;
use offpay_protocol::msg::{PaymentRequest, Receipt};
use offpay_protocol::{Timestamp, decode_signed};
use offpay_sdk::{CustomerWallet, MerchantTill, Money};
use serde_json::{Value, json};
use std::path::Path;

/// What a command prints: text for people, JSON for scripts.
pub struct Output {
    /// The text form.
    pub text: String,
    /// The JSON form.
    pub json: Value,
}

/// Opens the wallet of data directory `data`.
pub(crate) fn open_wallet(
    data: &Path,
    issuer: Option<&str>,
    now: Option<u32>,
) -> Result<CustomerWallet> {
    let dir = require(data, "wallet", "wallet init")?;
    CustomerWallet::open(&dir, config(issuer, now)).doing("opening the wallet")
}

/// Opens the till of data directory `data`.
pub(crate) fn open_merchant(
    data: &Path,
    issuer: Option<&str>,
    now: Option<u32>,
) -> Result<MerchantTill> {
    let dir = require(data, "merchant", "issuer certify-merchant")?;
    MerchantTill::open(&dir, config(issuer, now)).doing("opening the merchant")
}

/// An amount typed on the command line.
pub(crate) fn money(text: &str, currency: &str) -> Result<Money> {
    Money::parse(text, currency).doing("reading the amount")
}

// ---------------------------------------------------------------- wallet

/// `offpay wallet pay`.
pub fn pay(data: &Path, scan: &Path, qr: &Path, show: bool, now: Option<u32>) -> Result<Output> {
    let wallet = open_wallet(data, None, now)?;
    let request = qrio::read_image(scan)?;
    let out = qrio::OutPng::prepare(qr)?;
    let r = decode_signed::<PaymentRequest<'_>>(&request)
        .doing("reading the payment request")
        .map_err(|e| e.todo("scan the payment request the merchant shows"))?;
    let asked = offpay_sdk::show_money(r.amount.0, r.currency.as_str());
    let paid = wallet
        .pay(&request)
        .doing(&format!("paying {asked} to {}", r.certificate.display_name))?;
    let frame = out.finish(&paid.bytes).map_err(|e| {
        e.todo("the payment is stored in the wallet; run the same command again to write its QR code (nothing more is spent)")
    })?;
    let mut text = format!(
        "{} {} to {} ({}), payment {}\n  voucher left {}\n  show {} (QR version {}) to the merchant",
        if paid.already_paid {
            "already paid this request earlier (nothing new spent; the same payment again):"
        } else {
            "paid"
        },
        paid.amount,
        paid.merchant_name,
        show_merchant(&r.certificate.merchant_id),
        paid.payment_id,
        paid.remaining,
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
            "payment_id": paid.payment_id, "amount_minor": paid.amount.minor(), "currency": paid.amount.currency_code(),
            "merchant_id": show_merchant(&r.certificate.merchant_id), "merchant": paid.merchant_name,
            "remaining_minor": paid.remaining.minor(), "qr": qr, "qr_version": frame.version(), "bytes": paid.bytes.len(),
            "already_paid": paid.already_paid,
        }),
    })
}

/// `offpay wallet receipt`.
pub fn receipt(data: &Path, scan: &Path) -> Result<Output> {
    let wallet = open_wallet(data, None, None)?;
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
        json: json!({"payment_id": id, "merchant_id": show_merchant(&r.merchant_id), "accepted_at": r.accepted_at.0}),
    })
}

fn short(id: &str) -> &str {
    id.get(..16).unwrap_or(id)
}

/// `offpay wallet payments`.
pub fn wallet_payments(data: &Path, now: Option<u32>) -> Result<Output> {
    let wallet = open_wallet(data, None, now)?;
    let mut text = String::from("vouchers\n");
    let mut vouchers = Vec::new();
    for b in wallet.balances().doing("reading the vouchers")? {
        text.push_str(&format!(
            "  {}  {} of {} left, {} payment(s), {} {}\n",
            b.voucher_id,
            b.remaining,
            b.limit,
            b.payments,
            if b.expired { "expired" } else { "valid until" },
            show_time(Timestamp(b.not_after))
        ));
        vouchers.push(json!({
            "voucher_id": b.voucher_id, "currency": b.limit.currency_code(), "limit_minor": b.limit.minor(),
            "remaining_minor": b.remaining.minor(), "payments": b.payments, "not_after": b.not_after, "expired": b.expired,
        }));
    }
    text.push_str("payments\n");
    let mut payments = Vec::new();
    for p in wallet
        .fetch_payment_history()
        .doing("reading the payments")?
    {
        text.push_str(&format!(
            "  {}  #{} {} to {}, {}, {}, {}\n",
            short(&p.payment_id),
            p.seq,
            p.amount,
            p.merchant_id,
            show_time(Timestamp(p.created_at)),
            if p.receipt.is_some() {
                "receipt held"
            } else {
                "no receipt"
            },
            if p.settled { "synced" } else { "not synced" },
        ));
        payments.push(json!({
            "payment_id": p.payment_id, "seq": p.seq, "amount_minor": p.amount.minor(),
            "currency": p.amount.currency_code(), "merchant_id": p.merchant_id,
            "created_at": p.created_at, "receipt": p.receipt.is_some(), "synced": p.settled,
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

/// `offpay merchant request`.
pub fn request(
    data: &Path,
    amount_text: &str,
    currency_code: &str,
    reference: Option<&str>,
    qr: &Path,
    show: bool,
    now: Option<u32>,
) -> Result<Output> {
    let shop = open_merchant(data, None, now)?;
    let amount = money(amount_text, currency_code)?;
    let out = qrio::OutPng::prepare(qr)?;
    let request = shop
        .create_request(amount, reference)
        .doing("making the payment request")?;
    let frame = out
        .finish(&request)
        .map_err(|e| e.todo("make a new request"))?;
    let mut text = format!(
        "request for {amount} written to {} (QR version {}); show it to the customer",
        qr.display(),
        frame.version()
    );
    if show {
        text.push('\n');
        text.push_str(&qrio::terminal(&frame));
    }
    Ok(Output {
        text,
        json: json!({"amount_minor": amount.minor(), "currency": amount.currency_code(), "qr": qr, "qr_version": frame.version(), "bytes": request.len()}),
    })
}

/// `offpay merchant accept`.
pub fn accept(data: &Path, scan: &Path, qr: &Path, show: bool, now: Option<u32>) -> Result<Output> {
    let shop = open_merchant(data, None, now)?;
    let payment = qrio::read_image(scan)?;
    let out = qrio::OutPng::prepare(qr)?;
    let a = shop
        .accept(&payment)
        .doing("accepting the payment")
        .map_err(|e| match e.code() {
            Some(c) if c < 200 => e.todo("scan the payment the customer's wallet shows"),
            _ => e,
        })?;
    let frame = out.finish(&a.receipt).map_err(|e| {
        e.todo("the payment is accepted and stored; run the same command again to write the receipt's QR code (the same receipt)")
    })?;
    let mut text = format!(
        "accepted {} (payment {}, #{} on voucher {})\n  show {} (QR version {}) to the customer",
        a.amount,
        a.payment_id,
        a.seq,
        a.voucher_id,
        qr.display(),
        frame.version()
    );
    if show {
        text.push('\n');
        text.push_str(&qrio::terminal(&frame));
    }
    Ok(Output {
        text,
        json: json!({"payment_id": a.payment_id, "amount_minor": a.amount.minor(), "currency": a.amount.currency_code(), "voucher_id": a.voucher_id, "seq": a.seq, "qr": qr}),
    })
}

/// `offpay merchant payments`.
pub fn merchant_payments(data: &Path) -> Result<Output> {
    let shop = open_merchant(data, None, None)?;
    let mut text = format!("payments accepted by {}\n", shop.merchant_id());
    let mut payments = Vec::new();
    for p in shop.fetch_payment_history().doing("reading the payments")? {
        text.push_str(&format!(
            "  {}  {} on voucher {} #{}, accepted {}, {}\n",
            short(&p.payment_id),
            p.amount,
            p.voucher_id,
            p.seq,
            p.accepted_at
                .map(|t| show_time(Timestamp(t)))
                .unwrap_or_default(),
            if p.settled { "synced" } else { "not synced" },
        ));
        payments.push(json!({
            "payment_id": p.payment_id, "amount_minor": p.amount.minor(), "currency": p.amount.currency_code(),
            "voucher_id": p.voucher_id, "seq": p.seq, "accepted_at": p.accepted_at, "synced": p.settled,
        }));
    }
    if payments.is_empty() {
        text.push_str("  none\n");
    }
    Ok(Output {
        text: text.trim_end().to_string(),
        json: json!({"merchant_id": shop.merchant_id(), "payments": payments}),
    })
}
