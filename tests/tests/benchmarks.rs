//! BENCHMARKS.md stays true to what can be recomputed exactly: the size report.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[test]
fn the_size_table_is_the_generated_size_report() {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../BENCHMARKS.md"),
    )
    .unwrap();
    let report = offpay_conformance::size_report::size_report().unwrap();
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
        "BENCHMARKS.md's size table differs from `cargo run -p offpay-qr --example size-report`"
    );
}
