//! The role commands run as a user runs them: the built `offpay` binary, one data directory per
//! device (the bank, the shop, the customer's phone), and every message handed between them a
//! PNG file decoded from its pixels. Each refused command is checked for its one-line message,
//! its exit status, and that no store changed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use offpay_issuer::server::{Config, InProcess};
use offpay_qr::render::{Style, save_png};
use offpay_qr::{EcLevel, Frame};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// 2026-11-24 00:00:00 UTC.
const T0: u32 = 1_795_478_400;
const DAY: u32 = 86_400;

struct Devices {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    clock: Arc<AtomicU32>,
    service: InProcess,
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// An issuer service on a free loopback port, its data in `data`, its clock `clock`.
fn service(data: &Path, voucher_days: u32, clock: &Arc<AtomicU32>) -> InProcess {
    let mut config = Config::new(data);
    config.listen = ([127, 0, 0, 1], 0).into();
    config.admin_listen = ([127, 0, 0, 1], 0).into();
    config.policy.voucher_secs = voucher_days * DAY;
    config.policy.max_payments = 100;
    let c = clock.clone();
    config.clock = Arc::new(move || offpay_protocol::Timestamp(c.load(Ordering::SeqCst)));
    InProcess::start(config).unwrap()
}

impl Devices {
    fn new() -> Self {
        Self::with_voucher_days(7)
    }

    /// Devices and an issuer (its data in `bank`) whose vouchers last `days`.
    fn with_voucher_days(days: u32) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let clock = Arc::new(AtomicU32::new(T0));
        let service = service(&root.join("bank"), days, &clock);
        Devices {
            _tmp: tmp,
            root,
            clock,
            service,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Runs `offpay --data <device> args…` at `now` (the issuer's clock too), against the
    /// test's issuer service.
    fn run(&self, device: &str, now: u32, args: &[&str]) -> Run {
        self.clock.store(now, Ordering::SeqCst);
        let out = Command::new(env!("CARGO_BIN_EXE_offpay"))
            .current_dir(&self.root)
            .env("OFFPAY_NOW", now.to_string())
            .env_remove("OFFPAY_DATA")
            .env_remove("OFFPAY_CREDENTIAL")
            .env("OFFPAY_ISSUER", self.service.url())
            .env("OFFPAY_ADMIN_URL", self.service.admin_url())
            .env("OFFPAY_ADMIN_TOKEN", self.service.admin_token())
            .arg("--data")
            .arg(self.path(device))
            .args(args)
            .output()
            .unwrap();
        Run {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn ok(&self, device: &str, now: u32, args: &[&str]) -> String {
        let r = self.run(device, now, args);
        assert!(r.ok, "offpay {args:?} failed:\n{}{}", r.stdout, r.stderr);
        r.stdout
    }

    fn json(&self, device: &str, now: u32, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(device, now, &all)).unwrap()
    }

    /// Fails with exit status 1 and one line on stderr; returns that line.
    fn fails(&self, device: &str, now: u32, args: &[&str]) -> String {
        let r = self.run(device, now, args);
        assert!(!r.ok, "offpay {args:?} should fail:\n{}", r.stdout);
        let lines: Vec<&str> = r.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line on stderr: {:?}", r.stderr);
        assert!(lines[0].starts_with("offpay: "), "{}", lines[0]);
        lines[0].to_string()
    }

    /// Every file under the devices' data directories and the issuer's, with its bytes.
    fn stores(&self) -> Stores {
        let mut out = BTreeMap::new();
        for d in ["bank", "bank2", "shop", "phone"] {
            walk(&self.path(d), &mut out);
        }
        Stores(out)
    }

    /// A funded instrument: (id, credential).
    fn instrument(&self, currency: &str, amount: &str) -> (String, String) {
        let c = self.json(
            "bank",
            T0,
            &["issuer", "instrument", "--currency", currency],
        );
        let id = c["instrument"].as_str().unwrap().to_string();
        self.ok(
            "bank",
            T0,
            &["issuer", "fund", "--instrument", &id, "--amount", amount],
        );
        (id, c["credential"].as_str().unwrap().to_string())
    }

    /// Pre-authorizes `amount` EUR for the phone on a fresh instrument funded with it.
    fn preauth(&self, amount: &str, now: u32) -> Value {
        let (id, credential) = self.instrument("EUR", amount);
        self.json(
            "phone",
            now,
            &[
                "wallet",
                "preauth",
                "--amount",
                amount,
                "--currency",
                "EUR",
                "--instrument",
                &id,
                "--credential",
                &credential,
            ],
        )
    }

    /// The issuer certifies the shop, the phone gets a wallet and a voucher of `limit` EUR.
    fn setup(&self, limit: &str) {
        let shop = self.path("shop");
        self.ok(
            "bank",
            T0,
            &[
                "issuer",
                "certify-merchant",
                "--id",
                "CAFE-001",
                "--name",
                "Cafe A",
                "--merchant-data",
                shop.to_str().unwrap(),
            ],
        );
        self.ok("phone", T0, &["wallet", "init"]);
        self.preauth(limit, T0 + 10);
    }

    /// One payment of `amount` EUR at `now`: request, payment, receipt PNGs named by `tag`.
    fn pay(&self, amount: &str, now: u32, tag: &str) {
        let (req, pay, rec) = (
            format!("{tag}-request.png"),
            format!("{tag}-payment.png"),
            format!("{tag}-receipt.png"),
        );
        self.ok(
            "shop",
            now,
            &["merchant", "request", "--amount", amount, "--qr", &req],
        );
        self.ok(
            "phone",
            now,
            &["wallet", "pay", "--scan", &req, "--qr", &pay],
        );
        self.ok(
            "shop",
            now,
            &["merchant", "accept", "--scan", &pay, "--qr", &rec],
        );
        self.ok("phone", now, &["wallet", "receipt", "--scan", &rec]);
    }
}

/// The files of every store; equal when no byte of any store changed.
#[derive(PartialEq, Eq)]
struct Stores(BTreeMap<PathBuf, Vec<u8>>);

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (p, b) in &self.0 {
            writeln!(
                f,
                "{} ({} bytes, checksum {:?})",
                p.display(),
                b.len(),
                &b.iter()
                    .fold(0u64, |h, x| h.wrapping_mul(31).wrapping_add(u64::from(*x)))
            )?;
        }
        Ok(())
    }
}

/// The files under `dir`; SQLite's shared-memory index (`*-shm`), which readers touch, is
/// not stored data.
fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else if !p.to_string_lossy().ends_with("-shm") {
            out.insert(p.clone(), std::fs::read(&p).unwrap());
        }
    }
}

fn png_text(path: &Path) -> String {
    offpay_qr::scan::decode_file(path).unwrap()
}

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
