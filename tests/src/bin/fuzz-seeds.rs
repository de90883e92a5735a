//! Writes the fuzz seed corpora, generated from the conformance vectors, to `DIR/<target>/`.
//! Usage: fuzz-seeds DIR

fn main() -> std::io::Result<()> {
    let dir = std::path::PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/corpus".into()),
    );
    for (target, _) in offpay_conformance::fuzz_targets::TARGETS {
        let d = dir.join(target);
        std::fs::create_dir_all(&d)?;
        let seeds = offpay_conformance::fuzz_targets::seeds(target);
        for (i, s) in seeds.iter().enumerate() {
            std::fs::write(d.join(format!("seed-{i:04}")), s)?;
        }
        println!("{target}: {} seeds", seeds.len());
    }
    Ok(())
}
