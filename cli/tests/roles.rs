//! The role commands run as a user runs them: the built `offpay` binary, one data directory per
//! device (the bank, the shop, the customer's phone), and every message handed between them a
//! PNG file decoded from its pixels. The stories that succeed are here; the refusals are in
//! refusals.rs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

#[test]
fn the_role_walk_works_from_png_files_alone() {
    let d = Devices::new();
    d.setup("50.00");
    d.pay("4.20", T0 + 100, "a");
    // Every message handed over was a PNG holding an offpay frame.
    for f in ["a-request.png", "a-payment.png", "a-receipt.png"] {
        let bytes = std::fs::read(d.path(f)).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{f}");
        assert!(png_text(&d.path(f)).starts_with("OP1:"), "{f}");
    }

    let w = d.json("phone", T0 + 200, &["wallet", "payments"]);
    assert_eq!(w["vouchers"][0]["remaining_minor"], 4580);
    assert_eq!(w["payments"][0]["amount_minor"], 420);
    assert_eq!(w["payments"][0]["merchant_id"], "CAFE-001");
    assert_eq!(w["payments"][0]["receipt"], true);
    assert_eq!(w["payments"][0]["synced"], false);
    let payment_id = w["payments"][0]["payment_id"].as_str().unwrap().to_string();
    let m = d.json("shop", T0 + 200, &["merchant", "payments"]);
    assert_eq!(m["payments"][0]["payment_id"], payment_id.as_str());
    assert_eq!(m["payments"][0]["synced"], false);

    // Online again: both sides sync; the payment is credited once.
    // The phone holds the payment and its receipt: its upload credits the payment.
    let s = d.json("phone", T0 + 300, &["wallet", "sync"]);
    assert_eq!(
        (s["new"].as_u64(), s["credited_records"].as_u64()),
        (Some(2), Some(2))
    );
    let s = d.json("shop", T0 + 400, &["merchant", "sync"]);
    assert_eq!(
        (s["new"].as_u64(), s["duplicates"].as_u64()),
        (Some(0), Some(2))
    );
    assert_eq!(s["credited_records"], 0);
    let w = d.json("phone", T0 + 500, &["wallet", "payments"]);
    assert_eq!(w["payments"][0]["synced"], true);
    let m = d.json("shop", T0 + 500, &["merchant", "payments"]);
    assert_eq!(m["payments"][0]["synced"], true);
    // Syncing again sends nothing and changes nothing.
    let before = d.stores();
    assert!(
        d.ok("shop", T0 + 600, &["merchant", "sync"])
            .contains("nothing to sync")
    );
    assert_eq!(d.stores(), before);

    let r = d.json("bank", T0 + 700, &["issuer", "report"]);
    assert_eq!(r["credits"][0]["merchant_id"], "CAFE-001");
    assert_eq!(r["credits"][0]["amount_minor"], 420);
    assert_eq!(r["credits"][0]["payments"], 1);
    assert_eq!(r["vouchers"][0]["credited_minor"], 420);
    assert_eq!(r["vouchers"][0]["limit_minor"], 5000);
    assert_eq!(r["fraud_proofs"].as_array().unwrap().len(), 0);
    let text = d.ok("bank", T0 + 700, &["issuer", "report"]);
    assert!(text.contains("CAFE-001          1  4.20 EUR"), "{text}");

    // inspect decodes and verifies each image with the trust the device has.
    let i = d.json("shop", T0 + 800, &["inspect", "a-payment.png"]);
    assert_eq!(i["type"], "Payment");
    assert_eq!(i["fields"]["payment id"], payment_id.as_str());
    assert_eq!(i["checks"]["voucher signature"]["ok"], true);
    assert_eq!(i["checks"]["holder signature"]["ok"], true);
    assert_eq!(i["qr_version"]["L"], 10);
    let i = d.json("shop", T0 + 800, &["inspect", "a-receipt.png"]);
    assert_eq!(i["type"], "Receipt");
    assert!(
        i["checks"]["merchant signature"]["detail"]
            .as_str()
            .unwrap()
            .starts_with("valid")
    );
    let hex = i["hex"].as_str().unwrap().to_string();
    let i = d.json("phone", T0 + 800, &["inspect", &hex]);
    assert_eq!(i["fields"]["payment id"], payment_id.as_str());
    let text = d.ok("phone", T0 + 800, &["inspect", "a-request.png"]);
    assert!(text.starts_with("PaymentRequest ("), "{text}");
    assert!(text.contains("4.20 EUR"), "{text}");
    assert!(text.contains("Cafe A (CAFE-001)"), "{text}");
}

#[test]
fn amounts_follow_the_currency_minor_units() {
    let d = Devices::new();
    let till = d.path("bank-till");
    d.ok("bank", T0, &["wallet", "init"]);
    d.ok(
        "bank",
        T0,
        &[
            "issuer",
            "certify-merchant",
            "--id",
            "RAMEN",
            "--name",
            "Ramen",
            "--merchant-data",
            till.to_str().unwrap(),
        ],
    );
    let (yen, credential) = d.instrument("JPY", "10000");
    let v = d.json(
        "bank",
        T0,
        &[
            "wallet",
            "preauth",
            "--amount",
            "5000",
            "--currency",
            "JPY",
            "--instrument",
            &yen,
            "--credential",
            &credential,
        ],
    );
    assert_eq!(v["amount_minor"], 5000);
    d.ok(
        "bank-till",
        T0,
        &[
            "merchant",
            "request",
            "--amount",
            "980",
            "--currency",
            "jpy",
            "--qr",
            "r.png",
        ],
    );
    let out = d.ok(
        "bank",
        T0,
        &["wallet", "pay", "--scan", "r.png", "--qr", "p.png"],
    );
    assert!(out.contains("paid 980 JPY to Ramen"), "{out}");
    assert!(out.contains("voucher left 4020 JPY"), "{out}");
    let e = d.fails(
        "bank-till",
        T0,
        &[
            "merchant",
            "request",
            "--amount",
            "9.50",
            "--currency",
            "JPY",
            "--qr",
            "x.png",
        ],
    );
    assert!(e.contains("JPY has no minor unit"), "{e}");
    let e = d.fails(
        "bank",
        T0,
        &[
            "wallet",
            "preauth",
            "--amount",
            "1.234",
            "--currency",
            "EUR",
            "--instrument",
            &yen,
            "--credential",
            &credential,
        ],
    );
    assert!(e.contains("EUR has 2 decimal places"), "{e}");
    let e = d.fails(
        "bank",
        T0,
        &[
            "wallet",
            "preauth",
            "--amount",
            "1e3",
            "--currency",
            "EUR",
            "--instrument",
            &yen,
            "--credential",
            &credential,
        ],
    );
    assert!(e.contains("is not an amount of EUR"), "{e}");
}

#[test]
fn vouchers_spent_or_not_are_released_when_their_window_closes_and_stay_released() {
    let d = Devices::with_voucher_days(1);
    d.setup("20.00");
    d.preauth("30.00", T0 + 50);
    d.pay("4.20", T0 + 100, "a");
    d.ok("phone", T0 + 200, &["wallet", "sync"]);
    // Both windows (1 day of validity, 7 days of grace) have closed 10 days later: the
    // spent voucher releases what was not credited, the unspent one all of it.
    let later = T0 + 10 * DAY;
    let released = |r: &Value| -> Vec<Value> {
        r["vouchers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["released_minor"].clone())
            .collect()
    };
    let r = d.json("bank", later, &["issuer", "report"]);
    assert_eq!(
        released(&r),
        vec![Value::from(2000 - 420), Value::from(3000)]
    );
    // A later sync (everything already known) does not reopen them.
    d.ok("shop", later + 10, &["merchant", "sync"]);
    let r = d.json("bank", later + 20, &["issuer", "report"]);
    assert_eq!(
        released(&r),
        vec![Value::from(2000 - 420), Value::from(3000)]
    );
    let text = d.ok("bank", later + 20, &["issuer", "report"]);
    assert!(text.contains("closed: 15.80 EUR released"), "{text}");
    assert!(text.contains("closed: 30.00 EUR released"), "{text}");
}
