//! The devices of the role-command tests: an issuer service with a settable clock, and the
//! built `offpay` binary run in one data directory per device.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    dead_code,
    missing_docs
)]

use offpay_issuer::server::{Config, InProcess};
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

// What the tests use beside the devices.
pub use serde_json::Value;
pub use std::path::{Path, PathBuf};

/// 2026-11-24 00:00:00 UTC.
pub const T0: u32 = 1_795_478_400;
pub const DAY: u32 = 86_400;

pub struct Devices {
    pub _tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub clock: Arc<AtomicU32>,
    pub service: InProcess,
}

pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// An issuer service on a free loopback port, its data in `data`, its clock `clock`.
pub fn service(data: &Path, voucher_days: u32, clock: &Arc<AtomicU32>) -> InProcess {
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
    pub fn new() -> Self {
        Self::with_voucher_days(7)
    }

    /// Devices and an issuer (its data in `bank`) whose vouchers last `days`.
    pub fn with_voucher_days(days: u32) -> Self {
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

    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Runs `offpay --data <device> args…` at `now` (the issuer's clock too), against the
    /// test's issuer service.
    pub fn run(&self, device: &str, now: u32, args: &[&str]) -> Run {
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

    pub fn ok(&self, device: &str, now: u32, args: &[&str]) -> String {
        let r = self.run(device, now, args);
        assert!(r.ok, "offpay {args:?} failed:\n{}{}", r.stdout, r.stderr);
        r.stdout
    }

    pub fn json(&self, device: &str, now: u32, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(device, now, &all)).unwrap()
    }

    /// Fails with exit status 1 and one line on stderr; returns that line.
    pub fn fails(&self, device: &str, now: u32, args: &[&str]) -> String {
        let r = self.run(device, now, args);
        assert!(!r.ok, "offpay {args:?} should fail:\n{}", r.stdout);
        let lines: Vec<&str> = r.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line on stderr: {:?}", r.stderr);
        assert!(lines[0].starts_with("offpay: "), "{}", lines[0]);
        lines[0].to_string()
    }

    /// Every file under the devices' data directories and the issuer's, with its bytes.
    pub fn stores(&self) -> Stores {
        let mut out = BTreeMap::new();
        for d in ["bank", "bank2", "shop", "phone"] {
            walk(&self.path(d), &mut out);
        }
        Stores(out)
    }

    /// A funded instrument: (id, credential).
    pub fn instrument(&self, currency: &str, amount: &str) -> (String, String) {
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
    pub fn preauth(&self, amount: &str, now: u32) -> Value {
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
    pub fn setup(&self, limit: &str) {
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
    pub fn pay(&self, amount: &str, now: u32, tag: &str) {
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
pub struct Stores(BTreeMap<PathBuf, Vec<u8>>);

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
pub fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
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

pub fn png_text(path: &Path) -> String {
    offpay_qr::scan::decode_file(path).unwrap()
}
