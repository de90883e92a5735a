//! BENCHMARKS.md stays true to what can be recomputed exactly: the size report, every valid
//! message vector's encoded size and the QR version it needs as one frame at levels L and M.
//! Generated from the vectors here, never typed in:
//!
//!     cargo test -p offpay-conformance --test benchmarks -- --nocapture
//!
//! prints it, and the test holds BENCHMARKS.md to it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use offpay_qr::{EcLevel, Frame, frame::encode_single};

/// The smallest QR version holding `text` at `ec`, or "animated" when no single frame does.
fn version(text: &str, ec: EcLevel) -> String {
    match Frame::new(text.to_string(), ec, 40) {
        Ok(f) => f.version().to_string(),
        Err(_) => "animated".into(),
    }
}

/// The report as a Markdown table, one row per valid vector of `messages.json`; an error if
/// the file cannot be read or a vector is malformed.
fn size_report() -> Result<String, Box<dyn std::error::Error>> {
    let path = offpay_conformance::vectors_dir().join("messages.json");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let field = |v: &serde_json::Value, name: &str| -> Result<String, String> {
        v[name]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("a vector without a `{name}` string"))
    };
    let mut out = String::from(
        "| vector | message | bytes | QR text chars | version at L | version at M |\n\
         |---|---|---|---|---|---|\n",
    );
    let vectors = json["vectors"]
        .as_array()
        .ok_or("messages.json has no `vectors` list")?;
    for v in vectors.iter().filter(|v| v["expect"] == "valid") {
        let bytes = hex::decode(field(v, "hex")?)?;
        let text = encode_single(&bytes);
        out += &format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            field(v, "name")?,
            field(v, "message")?,
            bytes.len(),
            text.len(),
            version(&text, EcLevel::L),
            version(&text, EcLevel::M)
        );
    }
    Ok(out)
}

#[test]
fn the_size_table_is_the_generated_size_report() {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../BENCHMARKS.md"),
    )
    .unwrap();
    let report = size_report().unwrap();
    println!("{report}");
    let header = report.lines().next().unwrap();
    let start = doc
        .find(header)
        .expect("BENCHMARKS.md has no size report table");
    let table: Vec<&str> = doc[start..]
        .lines()
        .take_while(|l| l.starts_with('|'))
        .collect();
    let want: Vec<&str> = report.lines().collect();
    assert!(want.len() > 10, "the report covers every message vector");
    assert_eq!(
        table, want,
        "BENCHMARKS.md's size table differs from the generated one (printed above)"
    );
}
