//! The size report of BENCHMARKS.md: every valid message vector's encoded size and the QR
//! version it needs as one frame at levels L and M. Generated from the vectors, never typed
//! in: `cargo run -p offpay-qr --example size-report` prints it, and a test holds
//! BENCHMARKS.md to it.

use offpay_qr::{EcLevel, Frame, frame::encode_single};

/// The smallest QR version holding `text` at `ec`, or "animated" when no single frame does.
fn version(text: &str, ec: EcLevel) -> String {
    match Frame::new(text.to_string(), ec, 40) {
        Ok(f) => f.version().to_string(),
        Err(_) => "animated".into(),
    }
}

/// The report as a Markdown table, one row per valid vector of `messages.json`.
pub fn size_report() -> String {
    let path = crate::vectors_dir().join("messages.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut out = String::from(
        "| vector | message | bytes | QR text chars | version at L | version at M |\n\
         |---|---|---|---|---|---|\n",
    );
    for v in json["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["expect"] == "valid")
    {
        let bytes = hex::decode(v["hex"].as_str().unwrap()).unwrap();
        let text = encode_single(&bytes);
        out += &format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            v["name"].as_str().unwrap(),
            v["message"].as_str().unwrap(),
            bytes.len(),
            text.len(),
            version(&text, EcLevel::L),
            version(&text, EcLevel::M)
        );
    }
    out
}
