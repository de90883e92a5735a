//! Writes the conformance vectors to tests/vectors/.

fn main() -> std::io::Result<()> {
    let dir = offpay_conformance::vectors_dir();
    std::fs::create_dir_all(&dir)?;
    for (name, json) in offpay_conformance::vectors::generate() {
        std::fs::write(dir.join(&name), json)?;
        println!("wrote {}", dir.join(&name).display());
    }
    Ok(())
}
