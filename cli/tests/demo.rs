//! `offpay demo` from the built binary: it completes, the QR codes it handed between devices
//! are real PNG files, and the settlement shows the clone's FraudProofs and the overspend.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

#[test]
fn the_demo_completes_and_settlement_shows_the_fraud_proof() {
    let dir = std::env::temp_dir().join(format!("offpay-demo-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(env!("CARGO_BIN_EXE_offpay"))
        .args(["demo", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for png in ["request", "payment", "receipt", "ble-engagement"] {
        let bytes = std::fs::read(dir.join(format!("{png}.png"))).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{png}.png is a PNG");
        let text = offpay_qr_text(&dir.join(format!("{png}.png")));
        assert!(text.starts_with("OP1:"), "{png}.png holds an offpay frame");
    }
    assert!(stdout.contains("left 45.80 EUR"), "{stdout}");
    assert!(stdout.contains("left 33.80 EUR"), "{stdout}");
    assert!(stdout.contains("FraudProof (same-sequence"), "{stdout}");
    // The bike shop saw the real wallet and catches the clone offline; the cafe's second till
    // never saw it and accepts; settlement proves the double spend.
    assert!(
        stdout.contains("refuses the clone offline: chain-inconsistent"),
        "{stdout}"
    );
    assert!(stdout.contains("BIKE-002          12.00 EUR"), "{stdout}");
    assert!(stdout.contains("CAFE-001          44.20 EUR"), "{stdout}");
    assert!(
        stdout.contains("overspend owed by the holder 6.20 EUR"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "clone      Bike shop B       10.00 EUR  refused offline: chain-inconsistent"
        ),
        "{stdout}"
    );
    // The online steps went over HTTP to a service whose ledger is in the demo's directory;
    // the settlement printed is the one in that ledger.
    assert!(
        stdout.contains("issuer service at http://127.0.0.1:"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Cafe A till 2: 2 records synced, 2 record(s) credited, 0 already known, 1 FraudProof(s)"),
        "{stdout}"
    );
    let db = rusqlite::Connection::open(dir.join("issuer").join("ledger.sqlite")).unwrap();
    let q = |sql: &str| -> i64 { db.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(q("SELECT COUNT(*) FROM fraud_proofs"), 1);
    let credit = |m: &[u8]| {
        q(&format!(
            "SELECT balance FROM accounts WHERE kind = 'merchant' AND owner = '{}'",
            hex::encode(m)
        ))
    };
    assert_eq!(credit(b"CAFE-001"), 4420);
    assert_eq!(credit(b"BIKE-002"), 1200);
    assert_eq!(q("SELECT credited_minor - limit_minor FROM vouchers"), 620);
    assert_eq!(q("SELECT COUNT(*) FROM payments WHERE credited = 1"), 3);
    // The instrument: 100.00 funded, 50.00 reserved and spent, the overspend owed.
    assert_eq!(q("SELECT -balance FROM accounts WHERE kind = 'owed'"), 620);
    assert_eq!(
        q("SELECT balance FROM accounts WHERE kind = 'available'"),
        5000
    );
    drop(db);
    // Run again in the same directory: refused, nothing overwritten.
    let again = Command::new(env!("CARGO_BIN_EXE_offpay"))
        .args(["demo", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("is not empty"));
    std::fs::remove_dir_all(&dir).unwrap();
}

fn offpay_qr_text(path: &std::path::Path) -> String {
    offpay_qr::scan::decode_file(path).unwrap()
}
