//! Prints the size report: the encoded size of every message in the conformance vectors and
//! the QR version it needs at levels L and M as one frame (BENCHMARKS.md holds its output,
//! checked by a test).
//!
//! Run: `cargo run -p offpay-qr --example size-report`

fn main() -> Result<(), Box<dyn std::error::Error>> {
    print!("{}", offpay_conformance::size_report::size_report()?);
    Ok(())
}
