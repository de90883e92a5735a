//! Reading tests/vectors/*.json as another implementation would: the files and their hex.

#![allow(clippy::expect_used, dead_code)]

use serde_json::Value;

/// The bytes of a hex string.
pub fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("valid hex")
}

/// The bytes of a hex string of exactly `N` bytes.
pub fn arr<const N: usize>(v: &Value) -> [u8; N] {
    unhex(v).try_into().expect("fixed-size hex")
}

/// A vector file, parsed.
pub fn load(name: &str) -> Value {
    let path = offpay_conformance::vectors_dir().join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("vector file")).expect("JSON")
}
