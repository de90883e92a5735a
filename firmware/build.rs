//! Turns the conformance vectors (tests/vectors/*.json) into Rust constants for the firmware,
//! so the device checks the same files every other implementation checks. Nothing is copied by
//! hand: change the vectors and the firmware follows. Also puts memory.x on the linker path.

use serde_json::Value;
use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::copy(root.join("memory.x"), out.join("memory.x")).unwrap();
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");

    let vectors = root.join("../tests/vectors");
    let load = |name: &str| -> Value {
        let path = vectors.join(name);
        println!("cargo:rerun-if-changed={}", path.display());
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    };
    let messages = load("messages.json");
    let verify = load("verify.json");
    let accept = load("accept.json");
    let pay = load("pay.json");

    let mut s = String::new();
    let f = &messages["fixture"];
    writeln!(
        s,
        "pub const HOLDER_KEY: [u8; 32] = {};",
        bytes(&f["holder_key"])
    )
    .unwrap();
    writeln!(s, "pub const VOUCHER: &[u8] = &{};", bytes(&f["voucher"])).unwrap();
    for (name, m) in [
        ("MERCHANT_A", &f["merchant_a"]),
        ("MERCHANT_B", &f["merchant_b"]),
    ] {
        writeln!(s, "pub const {name}_ID: [u8; 8] = {};", bytes(&m["id"])).unwrap();
        writeln!(s, "pub const {name}_KEY: [u8; 32] = {};", bytes(&m["key"])).unwrap();
        writeln!(
            s,
            "pub const {name}_CERT: &[u8] = &{};",
            bytes(&m["certificate"])
        )
        .unwrap();
    }
    s.push_str("pub const TRUST: &[([u8; 32], u32, u32)] = &[\n");
    for k in f["trust"].as_array().unwrap() {
        writeln!(
            s,
            "    ({}, {}, {}),",
            bytes(&k["key"]),
            k["not_before"],
            k["not_after"]
        )
        .unwrap();
    }
    s.push_str("];\n");

    std::fs::write(out.join("fixture.rs"), &s).unwrap();

    // The decode context, for the messages a customer or merchant device reads.
    s.push_str("pub const DECODE: &[Decode] = &[\n");
    for v in messages["vectors"].as_array().unwrap() {
        let ty = v["message"].as_str().unwrap();
        if v["context"] == "decode"
            && ["Voucher", "VoucherP256", "Payment", "Receipt", "PaymentRequest"].contains(&ty)
        {
            writeln!(
                s,
                "    Decode {{ name: {}, ty: Ty::{ty}, bytes: &{}, expect: {} }},",
                v["name"],
                bytes(&v["hex"]),
                v["expect"]
            )
            .unwrap();
        }
    }
    s.push_str("];\n");

    s.push_str("pub const VERIFY: &[Verify] = &[\n");
    for v in verify["vectors"].as_array().unwrap() {
        let ty = v["message"].as_str().unwrap();
        if ["Voucher", "VoucherP256", "Payment", "Receipt", "PaymentRequest"].contains(&ty) {
            writeln!(
                s,
                "    Verify {{ name: {}, ty: Ty::{ty}, bytes: &{}, expect: {}, now: {} }},",
                v["name"],
                bytes(&v["hex"]),
                v["expect"],
                v["now"]
            )
            .unwrap();
        }
    }
    s.push_str("];\n");

    s.push_str("pub const ACCEPT: &[Accept] = &[\n");
    for v in accept["vectors"].as_array().unwrap() {
        let o = &v["open_request"];
        writeln!(
            s,
            "    Accept {{ name: {}, bytes: &{}, expect: {}, now: {}, open_amount: {}, open_currency: {}, open_nonce: {}, seen: &[{}], revocation_list: {} }},",
            v["name"],
            bytes(&v["hex"]),
            v["expect"],
            v["now"],
            o["amount"],
            o["currency"],
            bytes(&o["nonce"]),
            list(&v["seen"]),
            option(&v["revocation_list"]),
        )
        .unwrap();
    }
    s.push_str("];\n");

    s.push_str("pub const PAY: &[Pay] = &[\n");
    for v in pay["vectors"].as_array().unwrap() {
        writeln!(
            s,
            "    Pay {{ name: {}, bytes: &{}, expect: {}, now: {}, install_at: {}, vouchers: &[{}], paid_at: {}, paid: &[{}], revocation_list: {}, output: {} }},",
            v["name"],
            bytes(&v["hex"]),
            v["expect"],
            v["now"],
            v["install_at"],
            list(&v["vouchers"]),
            v["paid_at"],
            list(&v["paid"]),
            option(&v["revocation_list"]),
            option(&v["output"]),
        )
        .unwrap();
    }
    s.push_str("];\n");
    std::fs::write(out.join("vectors.rs"), s).unwrap();
}

/// A hex string as a Rust byte-array literal.
fn bytes(v: &Value) -> String {
    let h = v.as_str().unwrap();
    let b: Vec<String> = (0..h.len())
        .step_by(2)
        .map(|i| format!("0x{}", &h[i..i + 2]))
        .collect();
    format!("[{}]", b.join(", "))
}

fn list(v: &Value) -> String {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| format!("&{}", bytes(x)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn option(v: &Value) -> String {
    if v.is_null() {
        "None".into()
    } else {
        format!("Some(&{})", bytes(v))
    }
}
