//! The audit log: every call recorded with who, where, what and how it ended; filters;
//! secrets never recorded; tampering found by `outpost audit verify`.

mod common;

use common::{Server, outpost};
use serde_json::{Value, json};

#[test]
fn every_call_is_recorded_with_its_context() {
    let s = Server::start();
    let api = s.owner();
    let net = api.first_network();
    api.post(
        &format!("/networks/{net}/users"),
        &json!({"email": "e@example.test", "password": "users password 123"}),
    )
    .ok();
    api.patch(&format!("/networks/{net}"), &json!({"name": ""}))
        .expect(422, "validation_failed");
    s.anon()
        .post(
            "/sessions",
            &json!({"username": "owner", "password": "wrong-password-9"}),
        )
        .expect(401, "invalid_credentials");
    s.anon()
        .get("/networks")
        .expect(401, "authentication_required");

    let events = api.get("/audit?limit=50").ok()["items"]
        .as_array()
        .unwrap()
        .clone();
    let find = |name: &str, status: &str| -> Value {
        events
            .iter()
            .find(|e| e["name"] == name && e["result"]["status"] == status)
            .unwrap_or_else(|| panic!("no {status} {name} in {events:#?}"))
            .clone()
    };
    let create = find("CreateUser", "success");
    assert_eq!(create["admin"]["username"], "owner");
    assert_eq!(create["admin"]["role"], "owner");
    assert_eq!(create["source_ip"], "127.0.0.1");
    assert_eq!(create["network_id"], net.as_str());
    assert_eq!(create["read_only"], false);
    assert_eq!(create["result"]["http_status"], 201);
    assert_eq!(create["parameters"]["email"], "e@example.test");
    assert_eq!(
        create["parameters"]["password"], "********",
        "secrets are redacted"
    );
    assert!(create["user_agent"].is_string());
    assert!(create["id"].as_str().unwrap().len() == 36);

    let bad = find("UpdateNetwork", "error");
    assert_eq!(bad["result"]["error_code"], "validation_failed");
    assert_eq!(bad["result"]["http_status"], 422);
    let login = find("CreateAdminSession", "error");
    assert_eq!(login["parameters"]["password"], "********");
    assert_eq!(
        login["admin"]["username"], "owner",
        "a failed sign-in names the account tried"
    );
    let anon = find("ListNetworks", "error");
    assert!(anon["admin"].is_null());
    let read = find("ListNetworks", "success");
    assert_eq!(read["read_only"], true);

    // The whole log holds no password, not even hashed.
    let all = api.get("/audit/export").text;
    for secret in [
        s.password.as_str(),
        "users password 123",
        "wrong-password-9",
        "$argon2id",
    ] {
        assert!(!all.contains(secret), "{secret} leaked into the audit log");
    }
}

#[test]
fn filters_select_by_time_admin_name_and_result() {
    let s = Server::start();
    let api = s.owner();
    let net = api.first_network();
    let before = chrono::Utc::now();
    for i in 0..3 {
        api.post(
            &format!("/networks/{net}/security-groups"),
            &json!({"name": format!("G{i}")}),
        )
        .ok();
    }
    api.post(
        &format!("/networks/{net}/security-groups"),
        &json!({"name": "G0"}),
    )
    .expect(409, "security_group_name_taken");
    let q = |query: &str| -> Vec<Value> {
        api.get(&format!("/audit?{query}")).ok()["items"]
            .as_array()
            .unwrap()
            .clone()
    };
    assert_eq!(q("event_name=CreateSecurityGroup&result=success").len(), 3);
    assert_eq!(q("event_name=CreateSecurityGroup&result=error").len(), 1);
    assert_eq!(q("event_name=CreateSecurityGroup&admin=nobody").len(), 0);
    let from = before
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        .replace('+', "%2B");
    assert_eq!(
        q(&format!("event_name=CreateSecurityGroup&from={from}")).len(),
        4
    );
    assert_eq!(
        q(&format!("event_name=CreateSecurityGroup&to={from}")).len(),
        0
    );
    // Paging, newest first.
    let page = api.get("/audit?limit=2").ok();
    let items = page["items"].as_array().unwrap();
    assert!(items[0]["seq"].as_u64() > items[1]["seq"].as_u64());
    let next = api
        .get(&format!(
            "/audit?limit=2&cursor={}",
            page["next_cursor"].as_str().unwrap()
        ))
        .ok();
    assert!(next["items"][0]["seq"].as_u64() < items[1]["seq"].as_u64());
    api.get("/audit?result=maybe").expect(400, "invalid_query");
    api.get("/audit?from=yesterday")
        .expect(400, "invalid_query");
}

#[test]
fn tampering_with_the_store_is_found_and_located() {
    let mut s = Server::start();
    let api = s.owner();
    let net = api.first_network();
    for i in 0..5 {
        api.post(
            &format!("/networks/{net}/users"),
            &json!({"email": format!("t{i}@example.test")}),
        )
        .ok();
    }
    let v = api.get("/audit/verify").ok();
    assert_eq!(v["ok"], true, "{v}");
    s.stop();
    let dir = s.dir.to_str().unwrap().to_string();
    let (code, out, _) = outpost(&["audit", "verify", "--data-dir", &dir], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("chain intact"), "{out}");

    // Rewrite one event's parameters behind the server's back.
    let victim = {
        let store = outpost::store::Store::open(
            &s.dir.join("outpost.redb"),
            &outpost::config::StoreConfig::default(),
        )
        .unwrap();
        let (events, _) = store
            .read(|tx| outpost::audit::search(tx, &Default::default(), None, 100))
            .unwrap();
        let mut e = events
            .iter()
            .find(|e| e.name == "CreateUser")
            .unwrap()
            .clone();
        e.parameters = json!({"email": "someone-else@example.test"});
        let seq = e.seq;
        store
            .write_now(|tx| {
                outpost::store::RawTable::new(outpost::store::schema::AUDIT).put(
                    tx,
                    &outpost::store::Key::new().u64(seq).into_bytes(),
                    &serde_json::to_vec(&e).unwrap(),
                )
            })
            .unwrap();
        store.close();
        seq
    };
    let (code, out, _) = outpost(&["audit", "verify", "--data-dir", &dir], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("BROKEN at event {victim} (tampered)")),
        "{out}"
    );
    let (code, out, _) = outpost(&["store", "check", "--data-dir", &dir], &[]);
    assert_eq!(code, 1, "{out}");

    // The running server reports it too.
    let again = s.restart();
    let v = again.owner().get("/audit/verify").ok();
    assert_eq!(v["ok"], false);
    assert_eq!(v["problem"]["seq"], victim);
    assert_eq!(v["problem"]["kind"], "tampered");
}

#[test]
fn an_exported_log_verifies_and_an_edited_or_cut_one_does_not() {
    let s = Server::start();
    let api = s.owner();
    for i in 0..4 {
        api.post("/networks", &json!({"name": format!("N{i}")}))
            .ok();
    }
    let export = api.get("/audit/export");
    assert_eq!(export.headers["content-type"], "application/x-ndjson");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    std::fs::write(&file, &export.text).unwrap();
    let f = file.to_str().unwrap();
    let (code, out, _) = outpost(&["audit", "verify", "--file", f], &[]);
    assert_eq!(code, 0, "{out}");

    // Edit one line's network name.
    let edited = export.text.replacen("\"N2\"", "\"N9\"", 1);
    assert_ne!(edited, export.text);
    std::fs::write(&file, &edited).unwrap();
    let (code, out, _) = outpost(&["audit", "verify", "--file", f], &[]);
    assert_eq!(code, 1);
    assert!(out.contains("tampered"), "{out}");

    // Drop a line from the middle.
    let lines: Vec<&str> = export.text.lines().collect();
    let mut cut: Vec<&str> = lines.clone();
    cut.remove(lines.len() / 2);
    std::fs::write(&file, cut.join("\n")).unwrap();
    let (code, out, _) = outpost(&["audit", "verify", "--file", f], &[]);
    assert_eq!(code, 1);
    assert!(out.contains("missing"), "{out}");
}

#[test]
fn calls_that_match_no_operation_are_recorded_too() {
    let s = Server::start();
    let api = s.owner();
    api.get("/admin/api/v1/no-such-thing")
        .expect(404, "not_found");
    assert_eq!(api.put("/networks", &json!({})).status, 405);
    s.anon()
        .delete("/admin/api/v1/audit")
        .expect(405, "method_not_allowed");
    let events = api.get("/audit?event_name=UnknownOperation").ok()["items"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(events.len(), 3, "{events:#?}");
    let paths: Vec<(&str, &str, u64)> = events
        .iter()
        .map(|e| {
            (
                e["parameters"]["method"].as_str().unwrap(),
                e["parameters"]["path"].as_str().unwrap(),
                e["result"]["http_status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(
        paths.contains(&("GET", "/admin/api/v1/no-such-thing", 404)),
        "{paths:?}"
    );
    assert!(
        paths.contains(&("PUT", "/admin/api/v1/networks", 405)),
        "{paths:?}"
    );
    let anon = events
        .iter()
        .find(|e| e["parameters"]["method"] == "DELETE")
        .unwrap();
    assert!(anon["admin"].is_null());
    let known = events
        .iter()
        .find(|e| e["parameters"]["method"] == "PUT")
        .unwrap();
    assert_eq!(
        known["admin"]["username"], "owner",
        "a valid token names the admin"
    );
    assert_eq!(known["result"]["error_code"], "method_not_allowed");
}
