//! Prints SPEC §15.4's table of API errors as JSON, from `ApiError`'s own code table:
//! `scripts/spec-tables.py render` writes it into SPEC.md.
//!
//!     cargo run -q -p offpay-issuer --example api-errors

use offpay_issuer::api::ApiError;
use offpay_protocol::codes::Codes;

fn main() {
    let rows: Vec<serde_json::Value> = ApiError::TABLE
        .iter()
        .map(|r| {
            serde_json::json!({
                "code": r.code,
                "name": r.name,
                "status": ApiError::from_code(r.code).map(ApiError::status),
                "doc": r.doc.lines().map(str::trim).collect::<Vec<_>>().join(" "),
            })
        })
        .collect();
    println!("{}", serde_json::Value::Array(rows));
}
