//! Prints the size report: the encoded size of every message in the conformance vectors and
//! the QR version it needs at levels L and M as one frame.
//!
//! Run: `cargo run -p offpay-qr --example size-report`

use offpay_qr::{EcLevel, Frame, frame::encode_single};

fn version(text: &str, ec: EcLevel) -> String {
    match Frame::new(text.to_string(), ec, 40) {
        Ok(f) => f.version().to_string(),
        Err(_) => "animated".into(),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = offpay_conformance::vectors_dir().join("messages.json");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    println!("| vector | message | bytes | QR text chars | version at L | version at M |");
    println!("|---|---|---|---|---|---|");
    for v in json["vectors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["expect"] == "valid")
    {
        let bytes = hex::decode(v["hex"].as_str().unwrap_or_default())?;
        let text = encode_single(&bytes);
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            v["name"].as_str().unwrap_or_default(),
            v["message"].as_str().unwrap_or_default(),
            bytes.len(),
            text.len(),
            version(&text, EcLevel::L),
            version(&text, EcLevel::M)
        );
    }
    Ok(())
}
