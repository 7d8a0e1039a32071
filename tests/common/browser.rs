//! Console walks in a real browser: runs one of the playwright-core scripts under
//! `tests/js/` (each built on `tests/js/console-lib.mjs`) with node and returns whether
//! every check passed, with everything the script printed.

use std::process::Command;

/// Run `node tests/js/<script> args…`; `(passed, output)`.
pub fn walk(script: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new("node")
        .arg(format!("tests/js/{script}"))
        .args(args)
        .output()
        .expect("node runs (scripts/test-deps installs it)");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Where a walk keeps its screenshots (not committed): `target/console-screenshots/<name>`.
pub fn shots(name: &str) -> String {
    format!(
        "{}/target/console-screenshots/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}
