//! The admin API over HTTPS: networks, security groups, users, bots, admins and roles,
//! and the errors bad requests get.

mod common;

use common::{Api, Server};
use serde_json::{Value, json};

fn create_network(api: &Api, name: &str) -> String {
    let v = api.post("/networks", &json!({"name": name})).ok();
    v["id"].as_str().unwrap().to_string()
}

#[test]
fn networks_have_8_digit_ids_names_tags_and_settings() {
    let s = Server::start();
    let api = s.owner();
    let v = api
        .post(
            "/networks",
            &json!({"name": "Field Ops", "tags": {"Env": "prod", "env": "dev"},
                    "settings": {"read_receipts": "force_enabled"}}),
        )
        .ok();
    let id = v["id"].as_str().unwrap().to_string();
    assert!(
        id.len() == 8 && id.chars().all(|c| c.is_ascii_digit()),
        "{id}"
    );
    assert_eq!(v["tags"]["Env"], "prod", "tags are case-sensitive");
    assert_eq!(v["tags"]["env"], "dev");
    assert_eq!(v["settings"]["read_receipts"], "force_enabled");

    api.patch(
        &format!("/networks/{id}"),
        &json!({"name": "Field Operations"}),
    )
    .ok();
    assert_eq!(
        api.get(&format!("/networks/{id}")).ok()["name"],
        "Field Operations"
    );
    api.patch(&format!("/networks/{id}"), &json!({"name": ""}))
        .expect(422, "validation_failed");

    // Tags: add, change a value, remove; values are required; at most 50.
    let t = api
        .post(
            &format!("/networks/{id}/tags"),
            &json!({"tags": {"Env": "staging", "team": "blue"}}),
        )
        .ok();
    assert_eq!(
        t["tags"],
        json!({"Env": "staging", "env": "dev", "team": "blue"})
    );
    api.post(
        &format!("/networks/{id}/tags"),
        &json!({"tags": {"owner": ""}}),
    )
    .expect(422, "validation_failed");
    api.delete(&format!("/networks/{id}/tags/team")).ok();
    api.delete(&format!("/networks/{id}/tags/TEAM"))
        .expect(404, "tag_not_found");
    let many: serde_json::Map<String, Value> =
        (0..49).map(|i| (format!("k{i}"), json!("v"))).collect();
    api.post(&format!("/networks/{id}/tags"), &json!({"tags": many}))
        .expect(422, "too_many_tags");
    assert_eq!(
        api.get(&format!("/networks/{id}/tags")).ok()["tags"]
            .as_object()
            .unwrap()
            .len(),
        2
    );

    // Settings: partial updates, strict values, consent versions.
    let st = api
        .patch(
            &format!("/networks/{id}/settings"),
            &json!({"consent": {"enabled": true, "title": "Terms", "body": "Be nice."},
                    "classification": {"level": "secret", "caveats": "NOFORN"}}),
        )
        .ok();
    assert_eq!(st["consent"]["version"], 1);
    assert_eq!(
        st["read_receipts"], "force_enabled",
        "untouched settings stay"
    );
    let st = api
        .patch(
            &format!("/networks/{id}/settings"),
            &json!({"consent": {"body": "Be kind."}}),
        )
        .ok();
    assert_eq!(st["consent"]["version"], 2);
    let e = api
        .patch(
            &format!("/networks/{id}/settings"),
            &json!({"read_receipts": "sometimes"}),
        )
        .expect(422, "validation_failed");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("settings.read_receipts"),
        "{e}"
    );
    api.patch(
        &format!("/networks/{id}/settings"),
        &json!({"recepits": true}),
    )
    .expect(422, "validation_failed");
    api.patch(
        &format!("/networks/{id}/settings"),
        &json!({"consent": {"enabled": true, "title": ""}}),
    )
    .expect(422, "validation_failed");
    api.patch(
        &format!("/networks/{id}/settings"),
        &json!({"data_retention": true}),
    )
    .expect(422, "use_update_data_retention");
    let r = api
        .put(
            &format!("/networks/{id}/data-retention"),
            &json!({"enabled": true}),
        )
        .ok();
    assert_eq!(r["enabled"], true);
    assert_eq!(
        api.get(&format!("/networks/{id}/settings")).ok()["data_retention"],
        true
    );

    // Delete needs the typed word, exactly.
    api.delete(&format!("/networks/{id}"))
        .expect(422, "confirmation_required");
    api.delete(&format!("/networks/{id}?confirm=Confirm"))
        .expect(422, "confirmation_mismatch");
    let d = api.delete(&format!("/networks/{id}?confirm=confirm")).ok();
    assert_eq!(d["network_id"], id.as_str());
    api.get(&format!("/networks/{id}"))
        .expect(404, "network_not_found");
    api.get("/networks/1234").expect(404, "network_not_found");
}

#[test]
fn security_groups_validate_every_rule_and_the_default_group_stays() {
    let s = Server::start();
    let api = s.owner();
    let net = api.first_network();
    let base = format!("/networks/{net}/security-groups");
    let default_id = api.get(&base).ok()["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // A group needs nothing but gets a default name; names are unique.
    let g = api.post(&base, &json!({})).ok();
    api.post_empty(&base)
        .expect(400, "unsupported_content_type");
    assert_eq!(g["name"], "Security group 1");
    assert_eq!(g["settings"]["messaging"]["max_ttl_seconds"], 30 * 86_400);
    assert_eq!(g["settings"]["messaging"]["max_bor_seconds"], 7 * 86_400);
    assert_eq!(g["settings"]["security"]["password"]["min_length"], 12);
    assert_eq!(g["settings"]["security"]["lockout_threshold"], 10);
    let gid = g["id"].as_str().unwrap().to_string();
    api.post(&base, &json!({"name": "security group 1"}))
        .expect(409, "security_group_name_taken");
    api.post_raw(&base, "application/json", b"{not json".to_vec())
        .expect(400, "invalid_json");

    // Dependencies and ranges, each reported by its path.
    let bad = |settings: Value, field: &str| {
        let e = api
            .patch(&format!("{base}/{gid}"), &json!({"settings": settings}))
            .expect(422, "validation_failed");
        let fields: Vec<&str> = e["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&field), "{field} not in {fields:?}");
    };
    bad(
        json!({"calling": {"audio": false}}),
        "settings.calling.video",
    );
    bad(
        json!({"security": {"device_reset_threshold": 10}}),
        "settings.security.device_reset_threshold",
    );
    bad(
        json!({"messaging": {"shredder_intensity": 50}}),
        "settings.messaging.shredder_intensity",
    );
    bad(
        json!({"media": {"auto_download_max_bytes": 1_000_000}}),
        "settings.media.auto_download_max_bytes",
    );
    bad(
        json!({"messaging": {"max_ttl_seconds": 30}}),
        "settings.messaging.max_ttl_seconds",
    );
    bad(
        json!({"messaging": {"max_bor_seconds": 31 * 86_400}}),
        "settings.messaging.max_bor_seconds",
    );
    bad(
        json!({"messaging": {"quick_responses": vec!["ok"; 11]}}),
        "settings.messaging.quick_responses",
    );
    bad(
        json!({"security": {"password": {"min_length": 7}}}),
        "settings.security.password.min_length",
    );
    bad(
        json!({"location": {"sharing": false}}),
        "settings.location.maps",
    );
    bad(
        json!({"open_access": {"forced": true}}),
        "settings.open_access.forced",
    );
    bad(
        json!({"integrations": {"atak_enabled": true}}),
        "settings.integrations.atak_packages",
    );
    bad(
        json!({"federation": {"restricted": true}}),
        "settings.federation.restricted",
    );
    bad(
        json!({"federation": {"mode": "local", "allowed_networks": [net.clone()]}}),
        "settings.federation.allowed_networks[0]",
    );
    bad(
        json!({"calling": {"vidoe": false}}),
        "settings.calling.vidoe",
    );

    // A valid combination applies; the rest of the settings stay.
    let g2 = api
        .patch(
            &format!("{base}/{gid}"),
            &json!({"name": "Field", "settings": {"calling": {"audio": false, "video": false, "force_tcp": true},
                    "security": {"device_reset_threshold": 9},
                    "integrations": {"atak_enabled": true, "atak_packages": ["com.atakmap.app.civ"]}}}),
        )
        .ok();
    assert_eq!(g2["name"], "Field");
    assert_eq!(
        g2["settings"]["calling"],
        json!({"audio": false, "video": false, "force_tcp": true})
    );
    assert_eq!(g2["settings"]["messaging"]["max_ttl_seconds"], 30 * 86_400);

    // Members move to the default group when their group is deleted.
    let u = api
        .post(
            &format!("/networks/{net}/users"),
            &json!({"email": "mover@example.test", "security_group_id": gid}),
        )
        .ok();
    assert_eq!(api.get(&format!("{base}/{gid}")).ok()["active_members"], 1);
    let members = api.get(&format!("{base}/{gid}/users")).ok();
    assert_eq!(members["items"][0]["username"], "mover@example.test");
    api.delete(&format!("{base}/{default_id}?confirm=confirm"))
        .expect(422, "default_group_undeletable");
    api.delete(&format!("{base}/{gid}?confirm=yes"))
        .expect(422, "confirmation_mismatch");
    let d = api.delete(&format!("{base}/{gid}?confirm=confirm")).ok();
    assert_eq!(d["moved_members"], 1);
    let moved = api
        .get(&format!(
            "/networks/{net}/users/{}",
            u["id"].as_str().unwrap()
        ))
        .ok();
    assert_eq!(moved["security_group_id"], default_id.as_str());
    api.get(&format!("{base}/{gid}"))
        .expect(404, "security_group_not_found");
}

#[test]
fn users_are_invited_edited_suspended_and_deleted() {
    let s = Server::start();
    let api = s.owner();
    let net = api.first_network();
    let users = format!("/networks/{net}/users");
    let u = api
        .post(
            &users,
            &json!({"email": " Alice@Example.TEST ", "first_name": "Alice",
                              "country_code": "44", "phone": "020 7946 0000"}),
        )
        .ok();
    assert_eq!(u["username"], "alice@example.test");
    assert_eq!(u["status"], "pending");
    assert_eq!(u["country_code"], "+44");
    let id = u["id"].as_str().unwrap().to_string();
    api.post(&users, &json!({"email": "alice@example.test"}))
        .expect(409, "email_taken");
    api.post(&users, &json!({"email": "not-an-email"}))
        .expect(422, "validation_failed");
    api.post(
        &users,
        &json!({"email": "x@example.test", "phone": "call me"}),
    )
    .expect(422, "validation_failed");
    api.post(
        &users,
        &json!({"email": "x@example.test", "security_group_id": "nope"}),
    )
    .expect(422, "validation_failed");
    api.post(
        &users,
        &json!({"email": "x@example.test", "password": "short"}),
    )
    .expect(422, "validation_failed");
    api.post(&users, &json!({"email": "x@example.test", "nickname": "x"}))
        .expect(400, "invalid_json");
    let with_pw = api
        .post(
            &users,
            &json!({"email": "bob@example.test", "password": "a long enough password"}),
        )
        .ok();
    assert_eq!(with_pw["has_password"], true);
    assert!(
        !with_pw.to_string().contains("argon2"),
        "no hash leaks: {with_pw}"
    );

    let e = api
        .patch(
            &format!("{users}/{id}"),
            &json!({"last_name": "Liddell", "phone": ""}),
        )
        .ok();
    assert_eq!(e["last_name"], "Liddell");
    assert_eq!(e["first_name"], "Alice");

    assert_eq!(
        api.post_empty(&format!("{users}/{id}/suspend")).ok()["status"],
        "suspended"
    );
    let filtered = api.get(&format!("{users}?status=suspended")).ok();
    assert_eq!(filtered["items"].as_array().unwrap().len(), 1);
    api.get(&format!("{users}?status=gone"))
        .expect(400, "invalid_query");
    api.get(&format!("{users}?limit=0"))
        .expect(400, "invalid_query");
    api.get(&format!("{users}?cursor=%%%"))
        .expect(400, "invalid_cursor");
    let counts = api.get(&format!("{users}/count")).ok();
    assert_eq!(
        (counts["pending"].as_i64(), counts["suspended"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        api.post_empty(&format!("{users}/{id}/unsuspend")).ok()["status"],
        "pending"
    );
    assert_eq!(
        api.post_empty(&format!("{users}/{id}/unlock")).ok()["status"],
        "pending"
    );
    assert_eq!(
        api.get(&format!("{users}/{id}/devices")).ok()["items"],
        json!([])
    );
    assert_eq!(
        api.post_empty(&format!("{users}/{id}/devices/reset")).ok()["reset"],
        0
    );

    let search = api.get(&format!("{users}?search=lidd")).ok();
    assert_eq!(search["items"][0]["id"], id.as_str());
    assert_eq!(api.delete(&format!("{users}/{id}")).status, 204);
    api.get(&format!("{users}/{id}"))
        .expect(404, "user_not_found");
    api.delete(&format!("{users}/{id}"))
        .expect(404, "user_not_found");
}

#[test]
fn paging_walks_the_whole_directory_in_order() {
    let s = Server::start();
    let api = s.owner();
    let net = api.first_network();
    api.post_csv(
        &format!("/networks/{net}/users/batch-create"),
        common::invite_csv("p", 250),
    )
    .ok();
    let mut seen = Vec::new();
    let mut path = format!("/networks/{net}/users?limit=100");
    loop {
        let v = api.get(&path).ok();
        let items = v["items"].as_array().unwrap();
        assert!(items.len() <= 100);
        seen.extend(
            items
                .iter()
                .map(|u| u["username"].as_str().unwrap().to_string()),
        );
        match v["next_cursor"].as_str() {
            Some(c) => path = format!("/networks/{net}/users?limit=100&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 250);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted);
}

#[test]
fn bots_end_in_bot_and_get_a_token_shown_once() {
    let s = Server::start();
    let api = s.owner();
    let net = api.first_network();
    let bots = format!("/networks/{net}/bots");
    api.post(&bots, &json!({"username": "helper"}))
        .expect(422, "validation_failed");
    let b = api
        .post(
            &bots,
            &json!({"username": "Compliance_Bot", "display_name": "Compliance"}),
        )
        .ok();
    assert_eq!(b["bot"]["username"], "compliance_bot");
    assert_eq!(b["bot"]["status"], "active");
    let token = b["token"].as_str().unwrap();
    assert!(token.starts_with("ob_"));
    let id = b["bot"]["id"].as_str().unwrap().to_string();
    api.post(&bots, &json!({"username": "compliance_bot"}))
        .expect(409, "bot_name_taken");
    let g = api.get(&format!("{bots}/{id}")).ok();
    assert!(
        !g.to_string().contains(token),
        "the token is shown only once"
    );
    assert_eq!(g["has_token"], true);
    let r = api
        .patch(&format!("{bots}/{id}"), &json!({"regenerate_token": true}))
        .ok();
    assert_ne!(r["token"].as_str().unwrap(), token);
    let r = api
        .patch(
            &format!("{bots}/{id}"),
            &json!({"password": "a bot password 123"}),
        )
        .ok();
    assert_eq!(r["bot"]["has_token"], false);
    assert_eq!(r["bot"]["has_password"], true);
    assert_eq!(
        api.patch(&format!("{bots}/{id}"), &json!({"suspended": true}))
            .ok()["bot"]["status"],
        "suspended"
    );
    let list = api.get(&bots).ok();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        api.get(&format!("/networks/{net}/users")).ok()["items"],
        json!([]),
        "bots are not users"
    );
    assert_eq!(api.delete(&format!("{bots}/{id}")).status, 204);
}

#[test]
fn roles_limit_what_each_admin_may_do() {
    let s = Server::start();
    let owner = s.owner();
    let net = owner.first_network();
    let other = create_network(&owner, "Other");

    let mk = |name: &str, role: &str, networks: Vec<&str>| -> Api {
        let v = owner
            .post(
                "/admins",
                &json!({"username": name, "role": role, "networks": networks,
                                     "password": "role password 1234"}),
            )
            .ok();
        assert_eq!(v["admin"]["role"], role);
        assert!(v["one_time_password"].is_null());
        let t = s.anon().sign_in(name, "role password 1234");
        s.anon().with_token(&t)
    };
    let auditor = mk("auditor1", "auditor", vec![]);
    let admin = mk("netadmin", "admin", vec![&net]);
    let compliance = mk("officer", "compliance", vec![&net]);

    // The auditor reads everything and writes nothing.
    auditor.get(&format!("/networks/{other}/users")).ok();
    auditor.get("/audit").ok();
    let e = auditor
        .post(
            &format!("/networks/{net}/users"),
            &json!({"email": "a@example.test"}),
        )
        .expect(403, "access_denied");
    assert!(e["message"].as_str().unwrap().contains("CreateUser"), "{e}");
    auditor
        .patch(&format!("/networks/{net}/security-groups/x"), &json!({}))
        .expect(403, "access_denied");
    auditor.post_empty("/backup").expect(403, "access_denied");

    // A network admin works only in their networks, and not on admins.
    admin
        .post(
            &format!("/networks/{net}/users"),
            &json!({"email": "a@example.test"}),
        )
        .ok();
    admin
        .get(&format!("/networks/{other}"))
        .expect(403, "access_denied");
    let nets = admin.get("/networks").ok();
    assert_eq!(
        nets["items"].as_array().unwrap().len(),
        1,
        "only assigned networks are listed"
    );
    admin.get("/admins").expect(403, "access_denied");
    admin
        .post("/networks", &json!({"name": "mine"}))
        .expect(403, "access_denied");
    admin
        .put(
            &format!("/networks/{net}/data-retention"),
            &json!({"enabled": true}),
        )
        .expect(403, "access_denied");

    // The compliance officer switches retention and little else.
    compliance
        .put(
            &format!("/networks/{net}/data-retention"),
            &json!({"enabled": true}),
        )
        .ok();
    compliance
        .get(&format!("/networks/{net}/users"))
        .expect(403, "access_denied");
    compliance
        .put(
            &format!("/networks/{other}/data-retention"),
            &json!({"enabled": true}),
        )
        .expect(403, "access_denied");

    // Refusals are audited, with who tried.
    let denied = owner.get("/audit?result=error&admin=auditor1").ok();
    assert!(
        denied["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "CreateUser" && e["result"]["error_code"] == "access_denied")
    );

    // Owner rules: no self-deletion, the last owner stays an owner.
    let me = owner.get("/sessions/current").ok()["admin"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    owner
        .delete(&format!("/admins/{me}"))
        .expect(409, "cannot_delete_self");
    owner
        .patch(&format!("/admins/{me}"), &json!({"role": "auditor"}))
        .expect(409, "last_owner");
    owner
        .post("/admins", &json!({"username": "scoped", "role": "admin"}))
        .expect(422, "validation_failed");
    owner
        .post(
            "/admins",
            &json!({"username": "auditor1", "role": "auditor"}),
        )
        .expect(409, "admin_username_taken");
    let created = owner
        .post("/admins", &json!({"username": "newbie", "role": "auditor"}))
        .ok();
    let otp = created["one_time_password"].as_str().unwrap();
    let v = s
        .anon()
        .post("/sessions", &json!({"username": "newbie", "password": otp}))
        .ok();
    assert_eq!(v["must_change_password"], true);

    // Deleting a network removes it from admins' assignments.
    owner
        .delete(&format!("/networks/{net}?confirm=confirm"))
        .ok();
    let a = owner.get("/admins").ok();
    let na = a["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["username"] == "netadmin")
        .unwrap();
    assert_eq!(na["networks"], json!([]));
}

#[test]
fn forged_revoked_and_missing_tokens_are_refused() {
    let s = Server::start();
    let anon = s.anon();
    anon.get("/networks").expect(401, "authentication_required");
    let r = anon
        .with_token("oa_forgedforgedforgedforgedforgedforgedforged")
        .get("/networks");
    assert_eq!(r.headers["www-authenticate"], "Bearer realm=\"outpost\"");
    r.expect(401, "token_invalid");
    anon.with_token("not even a token")
        .get("/networks")
        .expect(401, "token_invalid");
    let owner = s.owner();
    owner.get("/networks").ok();
    assert_eq!(owner.delete("/sessions/current").status, 204);
    owner.get("/networks").expect(401, "token_invalid");
}

#[test]
fn sign_in_is_rate_limited_and_accounts_lock() {
    let s = Server::builder()
        .env("OUTPOST_ADMIN_LOGIN_ATTEMPTS_PER_MINUTE", "100")
        .env("OUTPOST_ADMIN_LOCKOUT_THRESHOLD", "3")
        .start();
    let anon = s.anon();
    anon.post(
        "/sessions",
        &json!({"username": "nobody", "password": "whatever-1234"}),
    )
    .expect(401, "invalid_credentials");
    for _ in 0..3 {
        anon.post(
            "/sessions",
            &json!({"username": "owner", "password": "wrong-password-1"}),
        )
        .expect(401, "invalid_credentials");
    }
    // While locked, a wrong password looks like any wrong password (no hint the account
    // exists); only the right one learns of the lock.
    anon.post(
        "/sessions",
        &json!({"username": "owner", "password": "wrong-password-2"}),
    )
    .expect(401, "invalid_credentials");
    let r = anon.post(
        "/sessions",
        &json!({"username": "owner", "password": s.password}),
    );
    assert!(r.headers.contains_key("retry-after"));
    r.expect(403, "account_locked");

    let limited = Server::builder()
        .env("OUTPOST_ADMIN_LOGIN_ATTEMPTS_PER_MINUTE", "3")
        .start();
    let anon = limited.anon();
    for _ in 0..3 {
        anon.post(
            "/sessions",
            &json!({"username": "owner", "password": "wrong-password-1"}),
        )
        .expect(401, "invalid_credentials");
    }
    let r = anon.post(
        "/sessions",
        &json!({"username": "owner", "password": limited.password}),
    );
    assert!(r.headers.contains_key("retry-after"));
    r.expect(429, "rate_limited");
}

#[test]
fn wrong_methods_get_405_with_allow_and_big_bodies_413() {
    let s = Server::builder()
        .env("OUTPOST_HTTP_MAX_JSON_BYTES", "2048")
        .start();
    let api = s.owner();
    let r = api.put("/networks", &json!({}));
    assert_eq!(r.status, 405);
    assert_eq!(r.headers["allow"], "GET, POST");
    let big = "x".repeat(4096);
    api.post("/networks", &json!({"name": big}))
        .expect(413, "payload_too_large");
    let doc = s.anon().get("/admin/api/v1/openapi.json").ok();
    assert!(
        doc["paths"]["/networks/{network_id}/users/batch-delete"]["post"]["operationId"]
            == "BatchDeleteUser"
    );
}

/// Rewrite every record of `table` in a stopped server's store.
fn edit_records(dir: &std::path::Path, table: &'static str, f: impl Fn(&mut Value)) {
    use outpost::store::{Store, Table};
    let store = Store::open(&dir.join("outpost.redb"), &Default::default()).unwrap();
    let t: Table<Value> = Table::new(table);
    let mut all = Vec::new();
    store
        .read(|tx| {
            t.scan_prefix(tx, b"", None, false, |k, v| {
                all.push((k.to_vec(), v));
                Ok(std::ops::ControlFlow::Continue(()))
            })
        })
        .unwrap();
    store
        .write_now(|tx| {
            for (k, mut v) in all.clone() {
                f(&mut v);
                t.put(tx, &k, &v)?;
            }
            Ok(())
        })
        .unwrap();
    store.close();
}

#[test]
fn an_expired_session_token_is_refused_as_expired() {
    let mut s = Server::start();
    let token = s.owner().token.unwrap();
    s.stop();
    let an_hour_ago = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    edit_records(&s.dir, outpost::store::schema::ADMIN_SESSIONS, |v| {
        v["expires_at"] = json!(an_hour_ago);
    });
    let s = s.restart();
    let e = s
        .anon()
        .with_token(&token)
        .get("/networks")
        .expect(401, "token_expired");
    assert!(
        e["message"].as_str().unwrap().contains(&an_hour_ago[..16]),
        "{e}"
    );
    // Signing in again works.
    s.owner().get("/networks").ok();
}

#[test]
fn bulk_delete_and_suspend_are_refused_while_sso_is_on() {
    let mut s = Server::start();
    let api = s.owner();
    let net = api.first_network();
    api.post_csv(
        &format!("/networks/{net}/users/batch-create"),
        common::invite_csv("sso", 3),
    )
    .ok();
    s.stop();
    edit_records(&s.dir, outpost::store::schema::NETWORKS, |v| {
        v["sso_enabled"] = json!(true);
    });
    let s = s.restart();
    let api = s.owner();
    let file = "email\nsso0@example.test\n";
    api.post_csv(&format!("/networks/{net}/users/batch-suspend"), file)
        .expect(422, "sso_enabled");
    api.post_csv(
        &format!("/networks/{net}/users/batch-delete?acknowledge_irreversible=true"),
        file,
    )
    .expect(422, "sso_enabled");
    assert_eq!(
        api.get(&format!("/networks/{net}/users/count")).ok()["pending"],
        3
    );
    // Inviting in bulk stays available.
    api.post_csv(
        &format!("/networks/{net}/users/batch-create"),
        common::invite_csv("more", 2),
    )
    .ok();
}
