//! Account-takeover protection (PRODUCT.md F2): where the security group turns it on,
//! a device added to an account that already has one waits for approval. The account's
//! connected devices are told on their stream; one of them approves it, or the person
//! enters the code mailed to them (through a real SMTP server). Until then the new
//! device opens no stream and receives nothing; five wrong codes remove it.

mod common;

use common::people::{USER_PASSWORD, b64, device, person};
use common::smtp::SmtpSink;
use common::stream::Stream;
use common::{Api, Server};
use mail_parser::MessageParser;
use serde_json::{Value, json};
use std::time::Duration;

fn protect(owner: &Api, network: &str) {
    owner.set_group_settings(
        network,
        json!({"security": {"account_takeover_protection": true}}),
    );
}

/// Register a device without following up on its approval.
fn sign_in_device(server: &Server, email: &str, name: &str) -> Value {
    server
        .anon()
        .post(
            "/api/v1/devices",
            &json!({
                "username": email, "password": USER_PASSWORD,
                "device": {"name": name, "platform": "linux", "client_version": "test"},
                "keys": {"x25519": b64(32), "ed25519": b64(32)},
            }),
        )
        .ok()
}

fn stream_refusal(server: &Server, token: &str) -> Value {
    let mut s = Stream::websocket(&server.url, &server.ca);
    s.send(&json!({"type": "authenticate", "token": token}));
    s.expect("error")
}

/// The six digits in an approval mail's plain text.
fn code_in(raw: &str) -> (String, String) {
    let msg = MessageParser::default().parse(raw.as_bytes()).unwrap();
    let text = msg.body_text(0).unwrap().to_string();
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 7 && l.chars().filter(char::is_ascii_digit).count() == 6)
        .unwrap_or_else(|| panic!("a code line in {text}"));
    (
        line.replace(' ', ""),
        msg.subject().unwrap_or_default().to_string(),
    )
}

#[test]
fn a_new_device_waits_until_an_existing_device_approves_it() {
    let server = Server::start();
    let owner = server.owner();
    let network = owner.first_network();
    protect(&owner, &network);
    // The first device needs no approval: there is nothing to approve it with.
    let first = person(&server, &owner, &network, "ann@example.org");
    let mut watching = first.connect();

    let second = sign_in_device(&server, "ann@example.org", "new laptop");
    assert_eq!(second["device"]["status"], "pending_approval", "{second}");
    assert_eq!(second["approval"]["methods"], json!(["device"]), "{second}");
    assert!(
        second["approval"]["code_expires_at"].is_null(),
        "mail is off"
    );
    let token = second["token"].as_str().unwrap();
    let new_id = second["device"]["id"].as_str().unwrap();

    // The account's connected device is told, with the keys to compare.
    let told = watching.next_of("devices_pending");
    assert_eq!(told["devices"][0]["id"], new_id, "{told}");
    assert_eq!(told["devices"][0]["name"], "new laptop");
    assert_eq!(told["devices"][0]["x25519"], second["device"]["x25519"]);

    // The pending device can do nothing but ask about its approval.
    let refused = stream_refusal(&server, token);
    assert_eq!(refused["code"], "device_approval_required", "{refused}");
    let pending = server.anon().with_token(token);
    pending
        .get("/api/v1/conversations")
        .expect(403, "device_approval_required");
    let st = pending.get("/api/v1/devices/self/approval").ok();
    assert_eq!(st["device"]["status"], "pending_approval");
    // Nobody seals messages to it: conversations list only approved devices.
    let other = person(&server, &owner, &network, "bob@example.org");
    let dm = other.dm(&first);
    let recipients = other.recipients(&dm);
    assert!(!recipients.iter().any(|d| d == new_id), "{recipients:?}");
    // No code was mailed, so none can be entered or asked for.
    pending
        .post("/api/v1/devices/self/approval", &json!({"code": "123456"}))
        .expect(422, "approval_code_expired");
    pending
        .post_empty("/api/v1/devices/self/approval/code")
        .expect(409, "mail_unavailable");
    // Another account's device cannot approve it.
    other
        .api
        .post_empty(&format!("/api/v1/devices/{new_id}/approve"))
        .expect(404, "device_not_found");

    let approved = first
        .api
        .post_empty(&format!("/api/v1/devices/{new_id}/approve"))
        .ok();
    assert_eq!(approved["device"]["status"], "active");
    let emptied = watching.next_of("devices_pending");
    assert_eq!(emptied["devices"], json!([]), "{emptied}");
    // Approved: it streams and is a recipient now.
    let mut s = Stream::websocket(&server.url, &server.ca);
    s.authenticate(token);
    assert!(other.recipients(&dm).iter().any(|d| d == new_id));
    pending
        .get("/api/v1/devices/self/approval")
        .expect(409, "device_not_pending");
    first
        .api
        .post_empty(&format!("/api/v1/devices/{new_id}/approve"))
        .expect(409, "device_not_pending");
}

#[test]
fn a_refused_device_and_groups_without_protection() {
    let server = Server::start();
    let owner = server.owner();
    let network = owner.first_network();
    // Without protection a second device is active at once.
    let first = person(&server, &owner, &network, "cy@example.org");
    let plain = device(&server, "cy@example.org");
    let _s = plain.connect();

    protect(&owner, &network);
    let second = sign_in_device(&server, "cy@example.org", "unknown");
    let id = second["device"]["id"].as_str().unwrap();
    // The owner refuses it: its token stops working for good.
    let gone = first.api.delete(&format!("/api/v1/devices/{id}"));
    assert_eq!(gone.status, 204, "{}", gone.text);
    let refused = stream_refusal(&server, second["token"].as_str().unwrap());
    assert_eq!(refused["code"], "device_revoked", "{refused}");
    // The admin sees every state.
    let devices = owner
        .get(&format!(
            "/admin/api/v1/networks/{network}/users/{}/devices",
            first.user_id
        ))
        .ok();
    let states: Vec<&str> = devices["items"]
        .as_array()
        .or(devices["devices"].as_array())
        .unwrap()
        .iter()
        .map(|d| d["status"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["active", "active", "revoked"], "{devices}");
}

#[test]
fn the_mailed_code_approves_a_device_and_wrong_codes_remove_it() {
    let sink = SmtpSink::start();
    let env = sink.outpost_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = Server::builder().envs(&env).start();
    let owner = server.owner();
    let network = owner.first_network();
    owner.set_network_settings(&network, json!({"classification": {"level": "secret"}}));
    protect(&owner, &network);
    let _first = person(&server, &owner, &network, "dee@example.org");

    let second = sign_in_device(&server, "dee@example.org", "field tablet");
    assert_eq!(second["approval"]["methods"], json!(["device", "email"]));
    assert!(second["approval"]["code_expires_at"].is_string());
    assert_eq!(second["approval"]["attempts_left"], 5);
    let pending = server.anon().with_token(second["token"].as_str().unwrap());
    let raw = sink.wait_for_messages(1, Duration::from_secs(20));
    let (code, subject) = code_in(&raw[0]);
    assert_eq!(subject, "[SECRET] Approve a new device for outpost");
    assert!(raw[0].contains("field tablet"), "{}", raw[0]);
    // A new code is not mailed within a minute of the last.
    pending
        .post_empty("/api/v1/devices/self/approval/code")
        .expect(429, "code_recently_sent");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let e = pending
        .post("/api/v1/devices/self/approval", &json!({"code": wrong}))
        .expect(422, "approval_code_invalid");
    assert_eq!(e["details"]["attempts_left"], 4, "{e}");
    // Spaces as the mail prints it ("123 456") are fine.
    let spaced = format!("{} {}", &code[..3], &code[3..]);
    let ok = pending
        .post("/api/v1/devices/self/approval", &json!({"code": spaced}))
        .ok();
    assert_eq!(ok["device"]["status"], "active");
    let mut s = Stream::websocket(&server.url, &server.ca);
    s.authenticate(second["token"].as_str().unwrap());

    // A third device whose codes are guessed: five wrong tries remove it.
    let third = sign_in_device(&server, "dee@example.org", "stolen password");
    let raw = sink.wait_for_messages(2, Duration::from_secs(20));
    let (code, _) = code_in(&raw[1]);
    let guesser = server.anon().with_token(third["token"].as_str().unwrap());
    let wrong = if code == "999999" { "888888" } else { "999999" };
    for left in (1..5).rev() {
        let e = guesser
            .post("/api/v1/devices/self/approval", &json!({"code": wrong}))
            .expect(422, "approval_code_invalid");
        assert_eq!(e["details"]["attempts_left"], left);
    }
    guesser
        .post("/api/v1/devices/self/approval", &json!({"code": wrong}))
        .expect(403, "approval_attempts_exhausted");
    // Even the right code does nothing now: the device is gone.
    let e = guesser.post("/api/v1/devices/self/approval", &json!({"code": code}));
    assert_eq!(e.code(), "device_revoked");
}

/// The reference client's command line: a second laptop signs in, is told how to get
/// approved, the first laptop approves it with `devices approve`, and the second can
/// then send; a third uses the mailed code with `approve --code`.
#[test]
fn the_command_line_client_waits_for_and_gives_approval() {
    use common::outpost;
    let sink = SmtpSink::start();
    let env = sink.outpost_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = Server::builder().envs(&env).start();
    let owner = server.owner();
    let network = owner.first_network();
    protect(&owner, &network);
    owner
        .post(
            &format!("/admin/api/v1/networks/{network}/users"),
            &json!({"email": "eve@example.org", "first_name": "Eve", "password": USER_PASSWORD}),
        )
        .ok();
    let dir = tempfile::tempdir().unwrap();
    let run = |profile: &str, args: &[&str]| {
        let p = dir.path().join(profile);
        let mut all = vec!["client", "--profile", p.to_str().unwrap()];
        all.extend_from_slice(args);
        outpost(&all, &[("OUTPOST_CLIENT_PASSWORD", USER_PASSWORD)])
    };
    let login = |profile: &str| {
        let (code, out, err) = run(
            profile,
            &[
                "login",
                "--url",
                &server.url,
                "--ca-cert",
                server.ca.to_str().unwrap(),
                "--username",
                "eve@example.org",
                "--device-name",
                profile,
            ],
        );
        assert_eq!(code, 0, "{out}\n{err}");
        err
    };
    let first = login("one");
    assert!(!first.contains("waits for approval"), "{first}");
    let second = login("two");
    assert!(second.contains("waits for approval"), "{second}");
    assert!(second.contains("outpost client approve --code"), "{second}");
    let (code, _, err) = run("two", &["rooms"]);
    assert_ne!(code, 0);
    assert!(err.contains("device_approval_required"), "{err}");

    let (code, out, err) = run("one", &["devices", "--json"]);
    assert_eq!(code, 0, "{err}");
    let list: Value = serde_json::from_str(&out).unwrap();
    let waiting: Vec<&str> = list["devices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["status"] == "pending_approval")
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(waiting.len(), 1, "{out}");
    let (code, _, err) = run("one", &["devices", "approve", waiting[0]]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run("two", &["rooms"]);
    assert_eq!(code, 0, "approved, the second laptop works: {err}");

    let third = login("three");
    assert!(third.contains("waits for approval"), "{third}");
    let raw = sink.wait_for_messages(2, Duration::from_secs(20));
    let (mailed, _) = code_in(&raw[1]);
    let (code, _, err) = run("three", &["approve", "--code", &mailed]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("approved"), "{err}");
    let (code, _, err) = run("three", &["rooms"]);
    assert_eq!(code, 0, "{err}");
}
