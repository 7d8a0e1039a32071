//! Checks by the real tools operators use: `promtool check metrics` on the metrics
//! page, `systemd-analyze verify` on the unit, and schemathesis on the OpenAPI
//! document against the running server. `scripts/test-deps` installs them; a missing
//! tool fails the test with the command that installs it.

mod common;

use common::Server;
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn tool(name: &str) -> PathBuf {
    let deps = std::env::var("OUTPOST_TEST_DEPS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.test-deps")));
    let venv = deps.join("venv/bin").join(name);
    if venv.is_file() {
        return venv;
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = PathBuf::from(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} is not installed: run scripts/test-deps (the README's test command does)");
}

/// A linter's verdict: it must exit 0 and say nothing.
#[track_caller]
fn silent_success(name: &str, out: std::process::Output) {
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "{name}: {report}"
    );
}

#[test]
fn the_metrics_page_passes_promtool_and_counts_what_happened() {
    let s = Server::start();
    let api = s.owner();
    let net = api.first_network();
    api.post_csv(
        &format!("/networks/{net}/users/batch-create"),
        common::invite_csv("m", 3),
    )
    .ok();
    api.post(
        &format!("/networks/{net}/bots"),
        &json!({"username": "metricsbot"}),
    )
    .ok();
    let page = s.anon().get("/metrics");
    assert_eq!(page.status, 200);
    assert!(
        page.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = page.text;
    for line in [
        format!("outpost_users{{network_id=\"{net}\",status=\"pending\"}} 3"),
        format!("outpost_bots{{network_id=\"{net}\"}} 1"),
        "outpost_networks 1".to_string(),
        "outpost_admin_logins_total{result=\"success\"} 1".to_string(),
    ] {
        assert!(text.contains(&line), "{line} missing from:\n{text}");
    }
    for name in [
        "outpost_http_requests_total{method=\"POST\",route=\"/admin/api/v1/networks/{network_id}/users/batch-create\",status=\"201\"}",
        "outpost_http_request_duration_seconds_bucket",
        "outpost_store_commit_ops_bucket",
        "outpost_store_size_bytes",
        "outpost_audit_events_total",
        "process_resident_memory_bytes",
        "outpost_build_info",
    ] {
        assert!(text.contains(name), "{name} missing");
    }
    let mut child = Command::new(tool("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    silent_success("promtool", child.wait_with_output().unwrap());
}

#[test]
fn metrics_are_limited_to_allowed_sources_and_their_token() {
    let s = Server::builder()
        .env("OUTPOST_METRICS_ALLOW_FROM", "10.0.0.0/8")
        .start();
    s.anon().get("/metrics").expect(403, "metrics_forbidden");
    let t = Server::builder()
        .env("OUTPOST_METRICS_BEARER_TOKEN", "scrape-token-1")
        .start();
    t.anon()
        .get("/metrics")
        .expect(401, "authentication_required");
    t.anon()
        .with_token("wrong")
        .get("/metrics")
        .expect(401, "authentication_required");
    assert_eq!(
        t.anon().with_token("scrape-token-1").get("/metrics").status,
        200
    );
    let off = Server::builder()
        .env("OUTPOST_METRICS_ENABLED", "false")
        .start();
    off.anon().get("/metrics").expect(404, "not_found");
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/outpost.service"
    ))
    .unwrap();
    for needed in [
        "Type=notify",
        "WatchdogSec=",
        "User=outpost",
        "StateDirectory=outpost",
        "ConfigurationDirectory=outpost",
        "LimitNOFILE=",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
    ] {
        assert!(unit.contains(needed), "the unit lacks {needed}");
    }
    // verify needs ExecStart to exist: point it at the binary under test.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("outpost.service");
    let exec = unit
        .lines()
        .map(|l| match l.strip_prefix("ExecStart=/usr/bin/outpost") {
            Some(rest) => format!("ExecStart={}{rest}", common::BIN),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_ne!(
        exec, unit,
        "ExecStart=/usr/bin/outpost … is expected in the unit"
    );
    std::fs::write(&copy, exec).unwrap();
    // It exits 0 even on warnings, so any output is a failure.
    silent_success(
        "systemd-analyze",
        Command::new(tool("systemd-analyze"))
            .args(["verify", "--man=no"])
            .arg(&copy)
            .output()
            .unwrap(),
    );
}

#[test]
fn the_openapi_document_matches_the_server_under_schemathesis() {
    let s = Server::builder()
        .env("OUTPOST_ADMIN_LOGIN_ATTEMPTS_PER_MINUTE", "1000")
        .start();
    let token = s.owner().token.unwrap();
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schemathesis.toml");
    let report = tempfile::tempdir().unwrap();
    let out = Command::new(tool("schemathesis"))
        .args(["--config-file", config, "run"])
        .arg(format!("{}/admin/api/v1/openapi.json", s.url))
        .arg("--tls-verify")
        .arg(&s.ca)
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args([
            "--checks",
            "all",
            "--max-examples",
            "30",
            "--seed",
            "1",
            "--workers",
            "1",
        ])
        // Signing out or changing the password would end the run's own session.
        .args(["--exclude-operation-id", "DeleteAdminSession"])
        .args(["--exclude-operation-id", "ChangeAdminPassword"])
        .args(["--report", "junit", "--report-junit-path"])
        .arg(report.path().join("schemathesis.xml"))
        .env("SCHEMATHESIS_HOOKS", "")
        .env("HOME", report.path())
        .current_dir(report.path())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "schemathesis found problems:\n{text}");
    assert!(!text.contains("Authentication failed"), "{text}");
    // The run exercised the API; it did not crash the server.
    assert_eq!(s.anon().get("/readyz").status, 200);
}
