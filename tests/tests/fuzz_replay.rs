//! Replays every fuzz seed, every corpus file and every saved crash reproducer through the
//! fuzz target functions on the stable toolchain, so a fixed crash stays fixed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use offpay_conformance::fuzz_targets::{TARGETS, seeds};
use std::path::Path;

fn files(dir: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.path().is_file() && !e.file_name().to_string_lossy().starts_with('.') {
                out.push(std::fs::read(e.path()).unwrap());
            }
        }
    }
    out
}

#[test]
fn every_seed_corpus_file_and_reproducer_passes_its_target() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut total = 0;
    for (name, target) in TARGETS {
        let mut inputs = seeds(name);
        assert!(!inputs.is_empty(), "{name} has no seeds");
        for sub in ["corpus", "regressions", "artifacts"] {
            inputs.extend(files(&fuzz.join(sub).join(name)));
        }
        for input in &inputs {
            target(input);
        }
        total += inputs.len();
    }
    assert!(total > 100);
}

#[test]
fn every_target_has_a_cargo_fuzz_wrapper() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let manifest = std::fs::read_to_string(fuzz.join("Cargo.toml")).unwrap();
    for (name, _) in TARGETS {
        let wrapper =
            std::fs::read_to_string(fuzz.join("fuzz_targets").join(format!("{name}.rs"))).unwrap();
        assert!(
            wrapper.contains(&format!("fuzz_targets::{name}(data)")),
            "{name}"
        );
        assert!(manifest.contains(&format!("name = \"{name}\"")), "{name}");
    }
}
