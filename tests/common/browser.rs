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

/// Assert that the audit log holds each `(operation, HTTP status)`: what a walk did in
/// the console is recorded under the admin API's operation names. Returns the events.
pub fn assert_audited(admin: &super::Api, expected: &[(&str, u64)]) -> serde_json::Value {
    let events = admin.get("/audit?limit=1000").ok();
    let seen: Vec<(&str, u64)> = events["items"]
        .as_array()
        .expect("the audit log lists items")
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap_or(""),
                e["result"]["http_status"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    for (name, status) in expected {
        assert!(
            seen.contains(&(name, *status)),
            "{name} {status} is not in the audit log: {seen:?}"
        );
    }
    events
}
