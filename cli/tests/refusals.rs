//! Refused role commands, run as a user runs them: each is checked for its one-line message,
//! its exit status, and that no store changed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use offpay_qr::render::{Style, save_png};
use offpay_qr::{EcLevel, Frame};

#[test]
fn a_bad_or_foreign_qr_image_is_refused_and_changes_nothing() {
    let d = Devices::new();
    d.setup("50.00");
    // A picture with no QR code in it.
    image::GrayImage::from_pixel(200, 200, image::Luma([255u8]))
        .save(d.path("blank.png"))
        .unwrap();
    // A QR code of something else (a web address).
    let foreign = Frame::new("https://example.com/menu".into(), EcLevel::M, 13).unwrap();
    save_png(&foreign, Style::default(), d.path("foreign.png")).unwrap();
    // Not an image at all.
    std::fs::write(d.path("notes.png"), b"shopping list").unwrap();
    let before = d.stores();
    let e = d.fails(
        "phone",
        T0 + 100,
        &["wallet", "pay", "--scan", "blank.png", "--qr", "p.png"],
    );
    assert!(e.contains("qr-no-code"), "{e}");
    assert!(e.contains("picture of one offpay QR code"), "{e}");
    let e = d.fails(
        "phone",
        T0 + 100,
        &["wallet", "pay", "--scan", "foreign.png", "--qr", "p.png"],
    );
    assert!(e.contains("qr-wrong-prefix"), "{e}");
    assert!(e.contains("not an offpay message"), "{e}");
    let e = d.fails(
        "shop",
        T0 + 100,
        &["merchant", "accept", "--scan", "notes.png", "--qr", "r.png"],
    );
    assert!(e.contains("scanning notes.png"), "{e}");
    let e = d.fails(
        "shop",
        T0 + 100,
        &[
            "merchant",
            "accept",
            "--scan",
            "missing.png",
            "--qr",
            "r.png",
        ],
    );
    assert!(e.contains("missing.png does not exist"), "{e}");
    assert_eq!(d.stores(), before);
    // A genuine offpay code of the wrong kind: a request where a payment is expected.
    d.ok(
        "shop",
        T0 + 100,
        &["merchant", "request", "--amount", "1.00", "--qr", "req.png"],
    );
    let before_wrong_kind = d.stores();
    let e = d.fails(
        "shop",
        T0 + 100,
        &["merchant", "accept", "--scan", "req.png", "--qr", "r.png"],
    );
    assert!(e.contains("wrong-type"), "{e}");
    assert_eq!(d.stores(), before_wrong_kind);
    assert!(!d.path("p.png").exists() && !d.path("r.png").exists());
}

#[test]
fn a_request_in_the_wrong_currency_is_refused_and_changes_nothing() {
    let d = Devices::new();
    d.setup("50.00");
    d.ok(
        "shop",
        T0 + 100,
        &[
            "merchant",
            "request",
            "--amount",
            "4.20",
            "--currency",
            "USD",
            "--qr",
            "usd.png",
        ],
    );
    let before = d.stores();
    let e = d.fails(
        "phone",
        T0 + 100,
        &["wallet", "pay", "--scan", "usd.png", "--qr", "p.png"],
    );
    assert!(e.contains("paying 4.20 USD to Cafe A"), "{e}");
    assert!(e.contains("wrong-currency"), "{e}");
    assert!(e.contains("no voucher in this currency"), "{e}");
    assert_eq!(d.stores(), before);
    assert!(!d.path("p.png").exists());
}

#[test]
fn an_exhausted_voucher_is_refused_and_changes_nothing() {
    let d = Devices::new();
    d.setup("5.00");
    d.pay("4.20", T0 + 100, "a");
    d.ok(
        "shop",
        T0 + 200,
        &["merchant", "request", "--amount", "1.00", "--qr", "b.png"],
    );
    let before = d.stores();
    let e = d.fails(
        "phone",
        T0 + 200,
        &["wallet", "pay", "--scan", "b.png", "--qr", "p.png"],
    );
    assert!(e.contains("insufficient-funds"), "{e}");
    assert!(e.contains("exhausted"), "{e}");
    assert_eq!(d.stores(), before);
    // What is left can still be spent.
    d.pay("0.80", T0 + 300, "c");
    let w = d.json("phone", T0 + 300, &["wallet", "payments"]);
    assert_eq!(w["vouchers"][0]["remaining_minor"], 0);
}

#[test]
fn an_expired_voucher_is_refused_and_changes_nothing() {
    let d = Devices::with_voucher_days(1);
    d.setup("50.00");
    let later = T0 + 3 * DAY;
    d.ok(
        "shop",
        later,
        &[
            "merchant", "request", "--amount", "4.20", "--qr", "late.png",
        ],
    );
    let before = d.stores();
    let e = d.fails(
        "phone",
        later,
        &["wallet", "pay", "--scan", "late.png", "--qr", "p.png"],
    );
    assert!(e.contains("expired"), "{e}");
    assert!(e.contains("offpay wallet preauth"), "{e}");
    assert_eq!(d.stores(), before);
    assert!(!d.path("p.png").exists());
}

#[test]
fn a_till_refuses_a_payment_whose_voucher_expired_before_it_was_shown() {
    let d = Devices::with_voucher_days(1);
    d.setup("50.00");
    d.ok(
        "shop",
        T0 + 100,
        &["merchant", "request", "--amount", "4.20", "--qr", "r.png"],
    );
    d.ok(
        "phone",
        T0 + 100,
        &["wallet", "pay", "--scan", "r.png", "--qr", "p.png"],
    );
    // The payment reaches the till two days later, after the voucher's last second.
    let before = d.stores();
    let e = d.fails(
        "shop",
        T0 + 2 * DAY,
        &["merchant", "accept", "--scan", "p.png", "--qr", "rc.png"],
    );
    assert!(e.contains("accepting the payment: expired"), "{e}");
    assert_eq!(d.stores(), before);
    assert!(!d.path("rc.png").exists());
}

#[test]
fn a_tampered_payment_file_is_refused_and_changes_nothing() {
    let d = Devices::new();
    d.setup("50.00");
    d.ok(
        "shop",
        T0 + 100,
        &["merchant", "request", "--amount", "4.20", "--qr", "req.png"],
    );
    d.ok(
        "phone",
        T0 + 100,
        &["wallet", "pay", "--scan", "req.png", "--qr", "pay.png"],
    );
    let payment = offpay_qr::frame::decode_single(&png_text(&d.path("pay.png")), 4096).unwrap();
    // One bit flipped in the holder's signature, and one in the embedded voucher's id (which
    // the issuer signed), each drawn as a fresh, perfectly readable QR code.
    let mut sig = payment.clone();
    *sig.last_mut().unwrap() ^= 0x01;
    let mut body = payment.clone();
    body[10] ^= 0x01;
    for (name, bytes) in [("sig.png", sig), ("body.png", body)] {
        let frame = Frame::new(offpay_qr::frame::encode_single(&bytes), EcLevel::M, 13).unwrap();
        save_png(&frame, Style::default(), d.path(name)).unwrap();
    }
    let before = d.stores();
    for name in ["sig.png", "body.png"] {
        let e = d.fails(
            "shop",
            T0 + 100,
            &["merchant", "accept", "--scan", name, "--qr", "r.png"],
        );
        assert!(e.contains("accepting the payment: bad-signature"), "{e}");
        assert!(e.contains("altered or forged"), "{e}");
        assert_eq!(d.stores(), before, "{name}");
        assert!(!d.path("r.png").exists());
    }
    // The untouched payment is still accepted afterwards.
    d.ok(
        "shop",
        T0 + 100,
        &["merchant", "accept", "--scan", "pay.png", "--qr", "r.png"],
    );
}

#[test]
fn a_revoked_merchant_is_refused_after_the_wallet_syncs() {
    let d = Devices::new();
    d.setup("50.00");
    let out = d.ok(
        "bank",
        T0 + 50,
        &["issuer", "revoke", "--merchant", "CAFE-001"],
    );
    // Serial 1 is the empty list the service published when it started.
    assert!(out.contains("revocation list #2"), "{out}");
    d.ok(
        "shop",
        T0 + 100,
        &["merchant", "request", "--amount", "1.00", "--qr", "r.png"],
    );
    // Before syncing, the wallet does not know.
    d.ok(
        "phone",
        T0 + 100,
        &["wallet", "pay", "--scan", "r.png", "--qr", "p.png"],
    );
    let out = d.ok("phone", T0 + 200, &["wallet", "sync"]);
    assert!(out.contains("revocation list updated"), "{out}");
    d.ok(
        "shop",
        T0 + 300,
        &["merchant", "request", "--amount", "2.00", "--qr", "r2.png"],
    );
    let before = d.stores();
    let e = d.fails(
        "phone",
        T0 + 300,
        &["wallet", "pay", "--scan", "r2.png", "--qr", "p2.png"],
    );
    assert!(e.contains("revoked"), "{e}");
    assert_eq!(d.stores(), before);
}

#[test]
fn commands_explain_what_to_run_first() {
    let d = Devices::new();
    let e = d.fails("phone", T0, &["wallet", "payments"]);
    assert!(
        e.contains("no wallet in") && e.contains("wallet init"),
        "{e}"
    );
    let e = d.fails(
        "phone",
        T0,
        &["--issuer", "http://127.0.0.1:9", "wallet", "init"],
    );
    assert!(
        e.contains("the issuer cannot be reached") && e.contains("--issuer"),
        "{e}"
    );
    assert!(!d.path("phone").join("wallet").exists());
    let e = d.fails(
        "shop",
        T0,
        &["merchant", "request", "--amount", "1", "--qr", "x.png"],
    );
    assert!(e.contains("certify-merchant"), "{e}");
    // The admin API wants its token.
    let e = d.fails(
        "bank",
        T0,
        &["--admin-token", "wrong", "issuer", "instrument"],
    );
    assert!(
        e.contains("unauthorized") && e.contains("--admin-token"),
        "{e}"
    );
    d.ok(
        "bank",
        T0,
        &[
            "issuer",
            "certify-merchant",
            "--id",
            "SHOP",
            "--name",
            "Shop",
        ],
    );
    let shop = d.path("shop");
    let e = d.fails(
        "bank",
        T0,
        &[
            "issuer",
            "certify-merchant",
            "--id",
            "SHOP",
            "--name",
            "Other",
            "--merchant-data",
            shop.to_str().unwrap(),
        ],
    );
    assert!(e.contains("already certified"), "{e}");
    assert!(
        !shop.exists(),
        "nothing was created for the refused merchant"
    );
    let r = d.run("bank", T0, &["--json", "inspect", "00"]);
    assert!(!r.ok);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["code"], 100);
}

#[test]
fn a_store_in_use_by_another_command_is_refused_not_shared() {
    let d = Devices::new();
    d.setup("50.00");
    let lock = std::fs::File::open(d.path("phone").join("wallet/.lock")).unwrap();
    lock.try_lock().unwrap();
    let before = d.stores();
    let e = d.fails("phone", T0 + 100, &["wallet", "payments"]);
    assert!(
        e.contains("another offpay process is using the wallet"),
        "{e}"
    );
    assert_eq!(d.stores(), before);
    // The till is another store: it works meanwhile.
    d.ok("shop", T0 + 100, &["merchant", "payments"]);
    drop(lock);
    d.ok("phone", T0 + 100, &["wallet", "payments"]);
}

#[test]
fn a_failed_certification_leaves_no_trace_and_the_id_stays_free() {
    let d = Devices::new();
    std::fs::write(d.path("afile"), b"not a directory").unwrap();
    let bad = d.path("afile").join("till");
    let before = d.stores();
    let e = d.fails(
        "bank",
        T0,
        &[
            "issuer",
            "certify-merchant",
            "--id",
            "SHOE",
            "--name",
            "Shoes",
            "--merchant-data",
            bad.to_str().unwrap(),
        ],
    );
    assert!(e.contains("creating the data directory"), "{e}");
    assert_eq!(d.stores(), before);
    // Too long a name is refused before anything is made.
    let e = d.fails(
        "bank",
        T0,
        &[
            "issuer",
            "certify-merchant",
            "--id",
            "SHOE",
            "--name",
            &"x".repeat(33),
        ],
    );
    assert!(e.contains("merchant name must be 1 to 32 bytes"), "{e}");
    assert_eq!(d.stores(), before);
    let shop = d.path("shop");
    d.ok(
        "bank",
        T0,
        &[
            "issuer",
            "certify-merchant",
            "--id",
            "SHOE",
            "--name",
            "Shoes",
            "--merchant-data",
            shop.to_str().unwrap(),
        ],
    );
    assert!(shop.join("merchant/certificate.bin").exists());
    // No staging directory is left behind.
    let left: Vec<_> = std::fs::read_dir(&shop)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("merchant")]);
}

#[test]
fn syncing_to_an_issuer_the_device_does_not_trust_writes_nothing_anywhere() {
    let d = Devices::new();
    d.setup("50.00");
    d.pay("4.20", T0 + 100, "a");
    // Another issuer, with another key.
    let other = service(&d.path("bank2"), 7, &d.clock);
    let before = d.stores();
    for (device, role) in [("phone", "wallet"), ("shop", "merchant")] {
        let e = d.fails(device, T0 + 200, &["--issuer", &other.url(), role, "sync"]);
        assert!(e.contains("does not trust the issuer at"), "{role}: {e}");
        assert_eq!(d.stores(), before);
    }
}

#[test]
fn an_unwritable_output_path_is_refused_before_anything_is_stored() {
    let d = Devices::new();
    d.setup("50.00");
    let before = d.stores();
    let e = d.fails(
        "shop",
        T0 + 100,
        &[
            "merchant",
            "request",
            "--amount",
            "4.20",
            "--qr",
            "no/such/dir/r.png",
        ],
    );
    assert!(e.contains("cannot write no/such/dir/r.png"), "{e}");
    assert_eq!(d.stores(), before);
    // A file name without .png is fine: images are recognized by their content.
    d.ok(
        "shop",
        T0 + 100,
        &["merchant", "request", "--amount", "4.20", "--qr", "req"],
    );
    let before = d.stores();
    let e = d.fails(
        "phone",
        T0 + 100,
        &[
            "wallet",
            "pay",
            "--scan",
            "req",
            "--qr",
            "no/such/dir/p.png",
        ],
    );
    assert!(e.contains("cannot write"), "{e}");
    assert_eq!(d.stores(), before, "nothing was spent");
    d.ok(
        "phone",
        T0 + 100,
        &["wallet", "pay", "--scan", "req", "--qr", "pay"],
    );
    let before = d.stores();
    let e = d.fails(
        "shop",
        T0 + 100,
        &[
            "merchant",
            "accept",
            "--scan",
            "pay",
            "--qr",
            "no/such/dir/r.png",
        ],
    );
    assert!(e.contains("cannot write"), "{e}");
    assert_eq!(d.stores(), before, "nothing was accepted");
    d.ok(
        "shop",
        T0 + 100,
        &["merchant", "accept", "--scan", "pay", "--qr", "rec"],
    );
    // Paying the same request again spends nothing and says so.
    let before = d.stores();
    let out = d.ok(
        "phone",
        T0 + 150,
        &["wallet", "pay", "--scan", "req", "--qr", "pay2"],
    );
    assert!(out.contains("already paid this request earlier"), "{out}");
    assert_eq!(d.stores(), before);
    assert_eq!(
        std::fs::read(d.path("pay")).unwrap(),
        std::fs::read(d.path("pay2")).unwrap()
    );
}

#[test]
fn a_till_refuses_a_revoked_voucher_once_it_has_synced() {
    let d = Devices::new();
    d.setup("50.00");
    let w = d.json("phone", T0 + 20, &["wallet", "payments"]);
    let voucher = w["vouchers"][0]["voucher_id"].as_str().unwrap().to_string();
    let e = d.fails(
        "bank",
        T0 + 30,
        &["issuer", "revoke", "--voucher", &"ab".repeat(16)],
    );
    assert!(
        e.contains("no such voucher") && e.contains("issuer report"),
        "{e}"
    );
    let e = d.fails(
        "bank",
        T0 + 30,
        &["issuer", "revoke", "--merchant", "CAFE-01"],
    );
    assert!(e.contains("no such merchant"), "{e}");
    d.ok(
        "bank",
        T0 + 30,
        &["issuer", "revoke", "--voucher", &voucher],
    );
    let s = d.json("shop", T0 + 40, &["merchant", "sync"]);
    assert_eq!(s["revocation_list_updated"], true);
    d.ok(
        "shop",
        T0 + 100,
        &["merchant", "request", "--amount", "4.20", "--qr", "r.png"],
    );
    d.ok(
        "phone",
        T0 + 100,
        &["wallet", "pay", "--scan", "r.png", "--qr", "p.png"],
    );
    let before = d.stores();
    let e = d.fails(
        "shop",
        T0 + 100,
        &["merchant", "accept", "--scan", "p.png", "--qr", "rc.png"],
    );
    assert!(e.contains("accepting the payment: revoked"), "{e}");
    assert_eq!(d.stores(), before);
}
