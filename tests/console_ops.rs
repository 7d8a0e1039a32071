//! The console's audit log, analytics and system status in a real browser
//! (`tests/js/console-ops.mjs`, headless Chromium via playwright-core) against a running
//! appliance with traffic in it: two people send messages and a file through the relay
//! with the reference client's protocol first. The walk searches the audit log, opens
//! an event, exports and verifies it, reads each analytics tab and its CSV, and the
//! system status page; every page passes the shared checks (banner, no outside request,
//! no console error, no sideways scrolling, labels). The audit log then holds those
//! actions under the admin API's operation names, the admin API gives the same
//! analytics, and an `admin` account is refused the system status as it is in the API.
//!
//! `CONSOLE_DOCS_SCREENSHOTS=1` also refreshes the README's screenshots in `docs/`.

mod common;

use common::people::{envelope, person};
use common::{Server, browser};
use serde_json::json;

#[test]
fn the_audit_log_analytics_and_system_status_work_in_a_browser() {
    let server = Server::start();
    let owner = server.owner();
    let network = owner.first_network();
    owner.set_network_settings(
        &network,
        json!({"classification": {"level": "confidential"}}),
    );

    // Traffic: alice sends bob three messages and a file; both are connected.
    let alice = person(&server, &owner, &network, "alice@example.test");
    let bob = person(&server, &owner, &network, "bob@example.test");
    let dm = alice.dm(&bob);
    let mut a = alice.connect();
    let _b = bob.connect();
    for i in 0..3 {
        a.send(&json!({"type": "send", "envelope": envelope(&dm, &format!("m{i}"), &[&bob.device_id])}));
        a.next_of("accepted");
    }
    // A retry of the same message counts once.
    a.send(&json!({"type": "send", "envelope": envelope(&dm, "m0", &[&bob.device_id])}));
    a.next_of("accepted");
    let blob = alice.upload(b"a voice memo");
    let mut e = envelope(&dm, "f1", &[&bob.device_id]);
    e["kind"] = json!("file");
    e["attachments"] = json!([{"blob_id": blob["id"]}]);
    a.send(&json!({"type": "send", "envelope": e}));
    a.next_of("accepted");

    // carol, of a security group deleted since, was active too: she counts as `Deleted#`.
    let group = owner
        .post(
            &format!("/networks/{network}/security-groups"),
            &json!({"name": "Field team"}),
        )
        .ok();
    owner
        .post(
            &format!("/networks/{network}/users"),
            &json!({"email": "carol@example.test", "first_name": "Carol",
                    "security_group_id": group["id"], "password": common::people::USER_PASSWORD}),
        )
        .ok();
    let carol = common::people::device(&server, "carol@example.test");
    let _c = carol.connect();
    owner
        .delete(&format!(
            "/networks/{network}/security-groups/{}?confirm=confirm",
            group["id"].as_str().unwrap()
        ))
        .ok();

    // The admin API's report has the same numbers the console will show.
    let report = owner.get(&format!("/networks/{network}/analytics")).ok();
    assert_eq!(report["messages"]["messages"], 4, "{report}");
    assert_eq!(report["messages"]["files"], 1, "{report}");
    assert_eq!(report["members"]["active_users"], 3, "{report}");
    assert_eq!(report["overview"]["registered"], 3, "{report}");
    assert_eq!(report["overview"]["devices"], 3, "{report}");
    let by_group = owner
        .get(&format!(
            "/networks/{network}/analytics?breakdown=security_group"
        ))
        .ok();
    let series: Vec<(String, u64)> = by_group["members"]["active"]["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|v| v.as_u64())
                    .sum(),
            )
        })
        .collect();
    assert!(series.contains(&("Deleted#".to_string(), 1)), "{series:?}");
    assert!(series.contains(&("Default".to_string(), 2)), "{series:?}");
    let weekly = owner
        .get(&format!(
            "/networks/{network}/analytics?period=week&breakdown=platform"
        ))
        .ok();
    assert_eq!(weekly["members"]["active"]["series"][0]["name"], "linux");
    owner
        .get(&format!(
            "/networks/{network}/analytics?from=2026-12-10&to=2026-12-01"
        ))
        .expect(422, "invalid_range");
    let status = owner.get("/system/status").ok();
    assert!(
        status["listeners"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["service"] == "https"),
        "{status}"
    );
    assert!(status["certificate"]["not_after"].is_string(), "{status}");
    assert_eq!(status["exporter"]["running"], true, "{status}");
    assert!(
        status["exporter"]["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["notification_type"] == "started" && e["severity"] == "normal"),
        "{status}"
    );

    let docs = std::env::var("CONSOLE_DOCS_SCREENSHOTS")
        .ok()
        .filter(|v| v == "1")
        .map(|_| format!("{}/docs", env!("CARGO_MANIFEST_DIR")));
    let shots = browser::shots("ops");
    let mut args = vec![
        server.url.as_str(),
        "owner",
        server.password.as_str(),
        shots.as_str(),
        "CONFIDENTIAL",
        network.as_str(),
        "4",
        "1",
    ];
    if let Some(d) = &docs {
        args.push(d);
    }
    let (ok, log) = browser::walk("console-ops.mjs", &args);
    assert!(ok, "{log}");

    // The console's actions are in the audit log under the API's operation names.
    browser::assert_audited(
        &owner,
        &[
            ("ListAuditEvents", 200),
            ("ListAuditEvents", 400),
            ("ExportAuditEvents", 200),
            ("VerifyAuditLog", 200),
            ("GetAnalytics", 200),
            ("GetAnalytics", 422),
            ("ExportAnalytics", 200),
            ("GetSystemStatus", 200),
        ],
    );

    // Role checks are the API's: a network admin sees analytics, not the system status.
    owner
        .post(
            "/admins",
            &json!({"username": "netadmin", "role": "admin", "networks": [network],
                    "password": "Another-long-passphrase-7"}),
        )
        .ok();
    let token = server
        .anon()
        .sign_in("netadmin", "Another-long-passphrase-7");
    let netadmin = common::Api::new(&server.url, &server.ca, Some(token));
    netadmin.get(&format!("/networks/{network}/analytics")).ok();
    netadmin.get("/system/status").expect(403, "access_denied");

    // The day's counts were written to the store when the server stopped.
    drop((a, _b, _c, args));
    let mut server = server;
    server.stop();
    let server = server.restart();
    let after = server
        .owner()
        .get(&format!("/networks/{network}/analytics"))
        .ok();
    assert_eq!(after["messages"]["messages"], 4, "{after}");
    assert_eq!(after["messages"]["files"], 1, "{after}");
    assert_eq!(after["members"]["active_users"], 3, "{after}");
}
