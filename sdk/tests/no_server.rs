//! The SDK does not build the server: no web framework, async runtime or database driver in
//! its dependency tree.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[test]
fn the_sdk_depends_on_no_server_code() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "tree",
            "-p",
            "offpay-sdk",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8(out.stdout).unwrap();
    let crates: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(crates.contains(&"offpay-issuer"), "{tree}");
    assert!(crates.contains(&"ureq"), "{tree}");
    for server in [
        "axum",
        "axum-server",
        "tower",
        "tower-http",
        "hyper",
        "tokio",
        "rusqlite",
        "postgres",
        "tokio-postgres",
        "r2d2",
    ] {
        assert!(
            !crates.contains(&server),
            "offpay-sdk depends on {server}:\n{tree}"
        );
    }
}
