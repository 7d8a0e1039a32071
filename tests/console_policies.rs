//! The console's network policies and security groups in a real browser
//! (`tests/js/console-policies.mjs`): read receipts, data retention on and off, the
//! consent pop-up edited with its live preview (and refused without a title), the
//! file-download default, the classification level and caveats changing the banner; a
//! security group created, its tabs walked (by keyboard too), invalid values refused with
//! the API's messages next to their fields, valid ones saved, and the group deleted with
//! the typed word and the password. Every page passes the shared checks (banner, no
//! external request, no console error, no sideways scrolling, labels). Afterwards the
//! admin API sees what the console saved, and the audit log holds the console's actions
//! under the API's operation names. A network admin and an auditor then see what their
//! roles allow: no retention switch for the admin (a forged one is refused), nothing to
//! change for the auditor.

mod common;

use common::{Server, browser};
use serde_json::json;

#[test]
fn an_administrator_sets_network_policies_and_security_groups_in_a_browser() {
    let server = Server::start();
    let owner = server.owner();
    let network = owner.first_network();
    owner.set_network_settings(
        &network,
        json!({"classification": {"level": "secret", "caveats": "noforn"}}),
    );
    // A network admin of this network, and an auditor.
    let others = "another long password 7";
    for (username, role, networks) in [
        ("netadmin", "admin", json!([network])),
        ("auditor", "auditor", json!([])),
    ] {
        owner
            .post(
                "/admins",
                &json!({"username": username, "role": role, "networks": networks, "password": others}),
            )
            .ok();
    }
    let shots = browser::shots("policies");
    let (ok, log) = browser::walk(
        "console-policies.mjs",
        &[
            &server.url,
            "owner",
            &server.password,
            &shots,
            "SECRET//NOFORN",
            &network,
            "netadmin",
            "auditor",
            others,
        ],
    );
    assert!(ok, "{log}");

    // The API sees what the console saved.
    let s = owner.get(&format!("/networks/{network}/settings")).ok();
    assert_eq!(s["read_receipts"], "force_enabled");
    assert_eq!(s["data_retention"], false);
    assert_eq!(s["file_download"], false);
    assert_eq!(s["consent"]["enabled"], true);
    assert_eq!(s["consent"]["title"], "Terms of use");
    assert_eq!(s["consent"]["body"], "Line one.\nLine two.");
    assert_eq!(s["consent"]["button_label"], "I agree");
    assert_eq!(s["consent"]["version"], 1);
    assert_eq!(s["classification"]["level"], "secret");
    assert_eq!(s["classification"]["caveats"], "noforn");
    let groups = owner
        .get(&format!("/networks/{network}/security-groups"))
        .ok();
    let names: Vec<&str> = groups["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Default"], "the deleted group is gone");

    // The console's actions are in the audit log under the API's operation names.
    let events = browser::assert_audited(
        &owner,
        &[
            ("GetNetworkSettings", 200),
            ("UpdateNetworkSettings", 200),
            ("UpdateNetworkSettings", 422),
            ("UpdateDataRetention", 200),
            ("ListSecurityGroups", 200),
            ("CreateSecurityGroup", 201),
            ("CreateSecurityGroup", 409),
            ("GetSecurityGroup", 200),
            ("UpdateSecurityGroup", 200),
            ("UpdateSecurityGroup", 422),
            ("DeleteSecurityGroup", 403),
            ("DeleteSecurityGroup", 422),
            ("DeleteSecurityGroup", 200),
            ("UpdateDataRetention", 403),
        ],
    );
    // A refused settings form is recorded with what was sent.
    let refused: Vec<String> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["name"] == "UpdateSecurityGroup" && e["result"]["http_status"].as_u64() == Some(422)
        })
        .map(|e| e["parameters"].to_string())
        .collect();
    assert!(
        refused.iter().any(|p| p.contains("\"max_ttl_seconds\":10")),
        "{refused:?}"
    );
}
