//! # offpay-conformance
//!
//! The conformance vectors of SPEC.md: a deterministic generator (fixed seeds, fixed times)
//! and the data files it writes to `tests/vectors/*.json`, which any implementation can read.
//! The test suite fails if the generator's output differs from the committed files, and runs
//! every vector through offpay-protocol.
//!
//! Regenerate with `cargo run -p offpay-conformance --bin generate-vectors`.

// Harness code: a failed expectation here is a test failure, so panicking is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod fixture;
pub mod fuzz_targets;
pub mod vectors;

/// Where the vector files live.
pub fn vectors_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors")
}
