//! Prints SPEC §9's error table as JSON, from the code tables of the error enums themselves
//! (`offpay_protocol::codes!`): `scripts/spec-tables.py render` writes it into SPEC.md.
//!
//!     cargo run -q -p offpay-conformance --bin spec-tables

use offpay_protocol::codes::{Codes, Row};
use offpay_protocol::error::{DecodeError, EncodeError, Rejection, StoreError, VerifyError};
use serde_json::{Value, json};

fn rows<E: Codes<Code = u16>>(enum_name: &str) -> Vec<Value> {
    E::TABLE
        .iter()
        .map(|r: &Row<u16>| {
            json!({
                "code": r.code,
                "name": r.name,
                "rust": format!("{enum_name}::{}", r.variant),
                "doc": r.doc.lines().map(str::trim).collect::<Vec<_>>().join(" "),
            })
        })
        .collect()
}

fn main() {
    let mut errors = Vec::new();
    errors.extend(rows::<DecodeError>("DecodeError"));
    errors.extend(rows::<VerifyError>("VerifyError"));
    errors.extend(rows::<Rejection>("Rejection"));
    errors.extend(rows::<StoreError>("StoreError"));
    errors.extend(rows::<EncodeError>("EncodeError"));
    errors.extend(rows::<offpay_qr::QrError>("QrError"));
    errors.extend(rows::<offpay_ble::BleError>("BleError"));
    errors.sort_by_key(|e| e["code"].as_u64());
    println!("{}", json!({ "errors": errors }));
}
