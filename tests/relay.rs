//! The messaging relay end to end: real devices on real WebSocket and QUIC streams
//! against a running appliance — delivery, order, offline mailboxes, retries, every
//! refusal a sender can meet, consent, suspension, retention, expiry and attachments.

mod common;

use common::people::{self, Person, b64, envelope, person, send_frame};
use common::stream::Stream;
use common::{Api, Server};
use serde_json::{Value, json};
use std::time::Duration;

struct World {
    server: Server,
    owner: Api,
    net: String,
}

fn world() -> World {
    world_with(&[])
}

fn world_with(env: &[(&str, &str)]) -> World {
    let server = Server::builder().envs(env).start();
    let owner = server.owner();
    let net = owner.first_network();
    World { server, owner, net }
}

impl World {
    fn person(&self, name: &str) -> Person {
        person(
            &self.server,
            &self.owner,
            &self.net,
            &format!("{name}@example.test"),
        )
    }
}

#[test]
fn a_direct_message_reaches_the_other_device_once_and_ack_empties_the_mailbox() {
    let w = world();
    let alice = w.person("alice");
    let bob = w.person("bob");
    let dm = alice.dm(&bob);
    assert_eq!(bob.dm(&alice), dm, "one direct conversation per pair");

    let mut b = bob.connect();
    b.expect("membership");
    let mut a = alice.connect_quic();
    a.expect("membership");
    let to = alice.recipients(&dm);
    assert_eq!(to, vec![bob.device_id.clone()]);
    let sent = envelope(&dm, "m-1", &to);
    a.send(&json!({"type": "send", "envelope": sent}));
    let acc = a.expect("accepted");
    assert_eq!(acc["client_msg_id"], "m-1");
    assert_eq!(acc["duplicate"], false);
    let seq = acc["seq"].as_u64().unwrap();

    let d = b.expect("deliver");
    let e = &d["envelope"];
    assert_eq!(e["seq"].as_u64(), Some(seq));
    assert_eq!(e["sender_user_id"], alice.user_id.as_str());
    assert_eq!(e["sender_device_id"], alice.device_id.as_str());
    assert_eq!(e["conversation_id"], dm.as_str());
    assert_eq!(e["ciphertext"], sent["ciphertext"]);
    assert_eq!(e["sealed_key"], sent["keys"][0]["sealed"]);
    assert_eq!(e["signature"], sent["signature"]);
    assert!(e["expires_at"].as_u64().unwrap() > e["server_time"].as_u64().unwrap());

    b.send(&json!({"type": "ack", "up_to": seq}));
    b.send(&json!({"type": "ping", "nonce": "x"}));
    assert_eq!(b.expect("pong")["nonce"], "x");
    drop(b);
    // The metrics page counts the commit that stored it (its batch size).
    let page = w.server.anon().get("/metrics").text;
    let commits = page
        .lines()
        .find_map(|l| l.strip_prefix("outpost_relay_commit_envelopes_count "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .expect("the metrics page shows outpost_relay_commit_envelopes");
    assert!(commits >= 1, "no relay commit counted: {commits}");
    // Reconnecting finds nothing waiting once the ack is durable.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut s = Stream::websocket(&bob.url, &bob.ca);
        let ready = s.authenticate(&bob.token);
        if ready["pending"] == 0 {
            assert!(s.recv_within(Duration::from_millis(300)).is_none());
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the ack never took effect"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn offline_devices_get_everything_in_order_on_reconnect_and_retries_are_stored_once() {
    let w = world();
    let alice = w.person("alice");
    let bob = w.person("bob");
    let bob2 = people::device(&w.server, &bob.email);
    let carol = w.person("carol");
    let room = alice.room("ops", &[&bob, &carol]);
    let mut a = alice.connect();
    a.expect("membership");
    let to = alice.recipients(&room);
    assert_eq!(to.len(), 3, "bob's two devices and carol's");
    let mut seqs = Vec::new();
    for i in 0..60 {
        a.send(&send_frame(&room, &format!("m{i}"), &to));
    }
    for i in 0..60 {
        let acc = a.expect("accepted");
        assert_eq!(
            acc["client_msg_id"],
            format!("m{i}"),
            "answers come in order"
        );
        seqs.push(acc["seq"].as_u64().unwrap());
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "seq grows");
    // A retry of m7 is answered with the first acceptance and stored once.
    a.send(&send_frame(&room, "m7", &to));
    let again = a.expect("accepted");
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["seq"].as_u64(), Some(seqs[7]));

    for p in [&bob, &bob2, &carol] {
        let mut s = Stream::quic(&p.url, &p.ca);
        let ready = s.authenticate(&p.token);
        assert_eq!(ready["pending"], 61, "the room event and 60 messages wait");
        assert_eq!(s.expect("membership")["event"]["change"], "created");
        let mut got = Vec::new();
        for _ in 0..60 {
            let d = s.expect("deliver");
            got.push(d["envelope"]["client_msg_id"].as_str().unwrap().to_string());
        }
        let want: Vec<String> = (0..60).map(|i| format!("m{i}")).collect();
        assert_eq!(got, want, "in order, each once");
        assert!(s.recv_within(Duration::from_millis(300)).is_none());
    }
}

#[test]
fn room_membership_changes_reach_members_before_and_after_and_route_by_membership() {
    let w = world();
    let alice = w.person("alice");
    let bob = w.person("bob");
    let carol = w.person("carol");
    let dave = w.person("dave");
    let room = alice.room("plans", &[&bob, &carol]);
    let mut c = carol.connect();
    assert_eq!(c.expect("membership")["event"]["change"], "created");
    let mut d = dave.connect();

    // Only moderators manage the room.
    bob.api
        .post(
            &format!("/api/v1/conversations/{room}/members"),
            &json!({"user_ids": [dave.user_id]}),
        )
        .expect(403, "not_a_moderator");
    alice
        .api
        .post(
            &format!("/api/v1/conversations/{room}/members"),
            &json!({"user_ids": [dave.user_id]}),
        )
        .ok();
    let ev = c.expect("membership");
    assert_eq!(ev["event"]["change"], "added");
    assert_eq!(ev["event"]["user_ids"], json!([dave.user_id]));
    assert_eq!(d.expect("membership")["event"]["change"], "added");

    alice
        .api
        .delete(&format!(
            "/api/v1/conversations/{room}/members/{}",
            carol.user_id
        ))
        .ok();
    assert_eq!(c.expect("membership")["event"]["change"], "removed");
    // Carol is no longer routed to: sealing to her device is refused.
    let mut a = alice.connect();
    let mut to = alice.recipients(&room);
    assert!(!to.contains(&carol.device_id));
    to.push(carol.device_id.clone());
    a.send(&send_frame(&room, "x1", &to));
    let e = a.next_of("error");
    assert_eq!(e["code"], "unknown_recipients");
    assert_eq!(e["details"]["device_ids"], json!([carol.device_id]));
    // Carol cannot send there any more either.
    let mut cs = carol.connect();
    cs.send(&send_frame(&room, "c1", &[&alice.device_id]));
    assert_eq!(cs.next_of("error")["code"], "conversation_not_found");

    // Dave leaves by removing himself; bob renames (not a moderator) and fails.
    dave.api
        .delete(&format!(
            "/api/v1/conversations/{room}/members/{}",
            dave.user_id
        ))
        .ok();
    // Dave saw carol's removal, then his own leaving.
    assert_eq!(d.next_of("membership")["event"]["change"], "removed");
    let left = d.next_of("membership");
    assert_eq!(left["event"]["change"], "left");
    assert_eq!(left["event"]["actor_user_id"], dave.user_id.as_str());
    bob.api
        .patch(
            &format!("/api/v1/conversations/{room}"),
            &json!({"name": "x"}),
        )
        .expect(403, "not_a_moderator");
    alice
        .api
        .delete(&format!("/api/v1/conversations/{room}"))
        .ok();
    bob.api
        .get(&format!("/api/v1/conversations/{room}"))
        .expect(404, "conversation_not_found");
}

#[test]
fn bad_envelopes_get_a_clear_refusal_and_nothing_is_stored() {
    let w = world();
    w.owner.set_group_settings(&w.net, json!({"messaging": {"max_ttl_seconds": 3600, "max_bor_seconds": 60, "message_forwarding": false}, "media": {"files_enabled": false}}));
    w.owner
        .set_network_settings(&w.net, json!({"read_receipts": "disabled"}));
    let alice = w.person("alice");
    let bob = w.person("bob");
    let eve = w.person("eve");
    let dm = alice.dm(&bob);
    let to = alice.recipients(&dm);
    let mut a = alice.connect();
    a.expect("membership");

    let mut refuse = |env: Value, code: &str| -> Value {
        let id = env["client_msg_id"].clone();
        a.send(&json!({"type": "send", "envelope": env}));
        let e = a.next_of("error");
        assert_eq!(e["code"], code, "{e}");
        assert_eq!(e["fatal"], false);
        assert_eq!(e["client_msg_id"], id);
        assert!(!e["message"].as_str().unwrap().is_empty());
        e
    };
    let base = |id: &str| envelope(&dm, id, &to);
    let mut e = base("ttl");
    e["ttl_secs"] = json!(3601);
    assert_eq!(refuse(e, "ttl_too_long")["details"]["max_ttl_secs"], 3600);
    let mut e = base("bor");
    e["bor_secs"] = json!(61);
    assert_eq!(refuse(e, "bor_too_long")["details"]["max_bor_secs"], 60);
    let mut e = base("fwd");
    e["forwarded"] = json!(true);
    refuse(e, "forwarding_disabled");
    let mut e = base("file");
    e["kind"] = json!("file");
    refuse(e, "files_disabled");
    let mut e = base("rcpt");
    e["kind"] = json!("receipt");
    refuse(e, "receipts_disabled");
    let mut e = base("big");
    e["ciphertext"] = json!(b64(64 * 1024 + 1));
    refuse(e, "ciphertext_too_large");
    let mut e = base("b64");
    e["ciphertext"] = json!("not base64!");
    refuse(e, "invalid_envelope");
    let mut e = base("key");
    e["keys"][0]["sealed"] = json!(b64(79));
    refuse(e, "invalid_envelope");
    refuse(base("bad id!"), "invalid_envelope");
    refuse(envelope::<&str>(&dm, "none", &[]), "missing_recipients");
    let mut extra = to.clone();
    extra.push(eve.device_id.clone());
    refuse(envelope(&dm, "eve", &extra), "unknown_recipients");
    let eve_dm = eve.dm(&bob);
    refuse(envelope(&eve_dm, "stranger", &to), "conversation_not_found");

    // A send frame whose envelope does not parse: refused as such, the stream goes on.
    let mut e = base("kind");
    e["kind"] = json!("telepathy");
    let id = e["client_msg_id"].clone();
    a.send(&json!({"type": "send", "envelope": e}));
    let err = a.expect_error("invalid_envelope");
    assert_eq!(err["fatal"], false);
    assert_eq!(err["client_msg_id"], id);
    a.send(&json!({"type": "ack"}));
    assert_eq!(a.expect_error("malformed_frame")["fatal"], false);
    a.send(&json!({"type": "ping"}));
    a.expect("pong");
    // Text that is not a frame at all ends the stream.
    a.send_raw("{not json");
    assert_eq!(a.expect_error("malformed_frame")["fatal"], true);
    assert!(a.closes_within(Duration::from_secs(5)));
}

#[test]
fn malformed_and_unknown_frames_close_the_stream_with_a_clear_error() {
    let w = world();
    let alice = w.person("alice");
    let mut s = Stream::websocket(&w.server.url, &w.server.ca);
    s.send(&json!({"type": "send", "envelope": {}}));
    let e = s.expect_error("authentication_required");
    assert_eq!(e["fatal"], true);
    assert!(s.closes_within(Duration::from_secs(5)));

    let mut s = Stream::websocket(&w.server.url, &w.server.ca);
    s.send(&json!({"type": "authenticate", "token": "od_nope"}));
    s.expect_error("invalid_token");
    assert!(s.closes_within(Duration::from_secs(5)));

    let mut s = alice.connect();
    s.send(&json!({"type": "teleport"}));
    s.expect_error("unknown_frame_type");
    assert!(s.closes_within(Duration::from_secs(5)));

    let mut s = alice.connect_quic();
    s.send_raw("x".repeat(2 * 1024 * 1024));
    assert!(
        s.closes_within(Duration::from_secs(10)),
        "oversized frames end the stream"
    );
    let mut s = alice.connect();
    s.send_raw(format!("\"{}\"", "x".repeat(2 * 1024 * 1024)));
    let e = s.expect_error("frame_too_large");
    assert_eq!(e["fatal"], true);
}

#[test]
fn the_stream_waits_for_the_current_consent_and_closes_when_it_changes() {
    let w = world();
    w.owner.set_network_settings(&w.net, json!({"consent": {"enabled": true, "title": "Monitoring", "body": "This system is monitored.", "button_label": "I agree"}}));
    let alice = w.person("alice");
    let mut s = Stream::websocket(&alice.url, &alice.ca);
    s.send(&json!({"type": "authenticate", "token": alice.token}));
    let e = s.expect_error("consent_required");
    assert_eq!(e["fatal"], false);
    let c = &e["details"]["consent"];
    assert_eq!(c["title"], "Monitoring");
    assert_eq!(c["button_label"], "I agree");
    let version = c["version"].as_u64().unwrap();
    s.send(&json!({"type": "authenticate", "token": alice.token, "consent_version": version + 5}));
    s.expect_error("consent_version_mismatch");
    s.send(&json!({"type": "authenticate", "token": alice.token, "consent_version": version}));
    s.expect("ready");

    // A new text raises the version: the open stream is told and closed.
    w.owner.set_network_settings(
        &w.net,
        json!({"consent": {"body": "This system is monitored. Updated."}}),
    );
    let e = s.next_of("error");
    assert_eq!(e["code"], "consent_required");
    assert_eq!(e["fatal"], true);
    assert!(s.closes_within(Duration::from_secs(5)));
    // Acknowledging over REST opens the gate again.
    let v2 = alice.api.get("/api/v1/me").ok()["consent"]["version"]
        .as_u64()
        .unwrap();
    assert!(v2 > version);
    alice
        .api
        .post("/api/v1/consent", &json!({"version": v2}))
        .ok();
    alice.connect();
    // A new device (a new login) must acknowledge again.
    let again = people::device(&w.server, &alice.email);
    let mut s = Stream::websocket(&again.url, &again.ca);
    s.send(&json!({"type": "authenticate", "token": again.token}));
    s.expect_error("consent_required");
}

#[test]
fn suspending_a_user_closes_their_live_stream_and_refuses_them() {
    let w = world();
    let alice = w.person("alice");
    let bob = w.person("bob");
    let dm = alice.dm(&bob);
    let mut b = bob.connect();
    let mut bq = bob.connect_quic();
    let _ = b.recv_within(Duration::from_millis(200));
    w.owner
        .post(
            &format!(
                "/admin/api/v1/networks/{}/users/{}/suspend",
                w.net, bob.user_id
            ),
            &json!({}),
        )
        .ok();
    // The WebSocket stream was replaced by the QUIC one; the QUIC one is closed now.
    let e = bq.next_of("error");
    assert_eq!(e["code"], "account_suspended");
    assert_eq!(e["fatal"], true);
    assert!(bq.closes_within(Duration::from_secs(5)));
    assert!(b.closes_within(Duration::from_secs(5)));
    let mut again = Stream::websocket(&bob.url, &bob.ca);
    again.send(&json!({"type": "authenticate", "token": bob.token}));
    again.expect_error("account_suspended");
    bob.api.get("/api/v1/me").expect(403, "account_suspended");
    // Nobody needs to (or can) seal to a suspended user's devices.
    assert!(alice.recipients(&dm).is_empty());
}

#[test]
fn revoking_a_device_closes_its_stream_and_its_token_stops_working() {
    let w = world();
    let alice = w.person("alice");
    let phone = people::device(&w.server, &alice.email);
    let mut p = phone.connect();
    alice
        .api
        .delete(&format!("/api/v1/devices/{}", phone.device_id))
        .ok();
    let e = p.next_of("error");
    assert_eq!(e["code"], "device_revoked");
    assert!(p.closes_within(Duration::from_secs(5)));
    phone.api.get("/api/v1/me").expect(401, "device_revoked");
    let devices = alice.api.get("/api/v1/devices").ok();
    let revoked = devices["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == phone.device_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(revoked["status"], "revoked");
    // Someone else's device is not yours to revoke.
    let bob = w.person("bob");
    bob.api
        .delete(&format!("/api/v1/devices/{}", alice.device_id))
        .expect(404, "device_not_found");
}

/// The `outpost_relay_mailbox_entries` gauge: entries waiting for all devices.
fn mailbox_entries(w: &World) -> u64 {
    let page = w.server.anon().get("/metrics").text;
    page.lines()
        .find_map(|l| l.strip_prefix("outpost_relay_mailbox_entries "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .expect("the metrics page shows outpost_relay_mailbox_entries")
}

#[test]
fn a_revoked_device_mailbox_is_emptied_and_the_other_devices_keep_theirs() {
    let w = world();
    let alice = w.person("alice");
    let bob = w.person("bob");
    let bob2 = people::device(&w.server, &bob.email);
    let dm = alice.dm(&bob);
    let mut a = alice.connect();
    a.expect("membership");
    let to = alice.recipients(&dm);
    assert_eq!(to.len(), 2, "both of bob's devices");
    let before = mailbox_entries(&w);
    for id in ["r-1", "r-2"] {
        a.send(&send_frame(&dm, id, &to));
        assert_eq!(a.expect("accepted")["client_msg_id"], id);
    }
    assert_eq!(mailbox_entries(&w), before + 4);
    bob.api
        .delete(&format!("/api/v1/devices/{}", bob2.device_id))
        .ok();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    // Both envelopes (and whatever else waited for the revoked device) go.
    while mailbox_entries(&w) > before + 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the revoked device's entries were never removed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Bob's other device still gets both, in order.
    let mut b = Stream::websocket(&bob.url, &bob.ca);
    let ready = b.authenticate(&bob.token);
    assert!(ready["pending"].as_u64().unwrap() >= 2);
    let ids: Vec<String> = (0..2)
        .map(|_| {
            b.next_of("deliver")["envelope"]["client_msg_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids, ["r-1", "r-2"]);
}

#[test]
fn with_data_retention_on_every_envelope_must_include_the_compliance_device() {
    let w = world();
    let alice = w.person("alice");
    let bob = w.person("bob");
    let dm = alice.dm(&bob);
    let mut a = alice.connect();
    a.expect("membership");
    let retention = format!("/admin/api/v1/networks/{}/data-retention", w.net);
    w.owner.put(&retention, &json!({"enabled": true})).ok();
    let to = alice.recipients(&dm);
    assert_eq!(to, vec![bob.device_id.clone()]);
    a.send(&send_frame(&dm, "r1", &to));
    a.next_of("error");
    // (the policy frame may come first; the refusal is what matters)
    let cd = w
        .owner
        .put(
            &format!("{retention}/compliance-device"),
            &json!({"x25519": b64(32), "ed25519": b64(32)}),
        )
        .ok();
    let compliance = cd["device_id"].as_str().unwrap().to_string();
    let state = w.owner.get(&retention).ok();
    assert_eq!(state["enabled"], true);
    assert_eq!(state["compliance_device"]["device_id"], compliance.as_str());

    let devices = alice
        .api
        .get(&format!("/api/v1/conversations/{dm}/devices"))
        .ok();
    let listed: Vec<&Value> = devices["devices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["compliance"] == true)
        .collect();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["device_id"], compliance.as_str());

    a.send(&send_frame(&dm, "r2", &[&bob.device_id]));
    let e = a.next_of("error");
    assert_eq!(e["code"], "compliance_recipient_missing");
    assert_eq!(e["details"]["device_ids"], json!([compliance]));
    a.send(&send_frame(
        &dm,
        "r3",
        &[bob.device_id.clone(), compliance.clone()],
    ));
    let acc = a.next_of("accepted");
    assert_eq!(acc["client_msg_id"], "r3");

    // The unavailable case: retention on in a network without a compliance device.
    let net2 = w
        .owner
        .post("/admin/api/v1/networks", &json!({"name": "second"}))
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_string();
    w.owner
        .put(
            &format!("/admin/api/v1/networks/{net2}/data-retention"),
            &json!({"enabled": true}),
        )
        .ok();
    let x = person(&w.server, &w.owner, &net2, "x@example.test");
    let y = person(&w.server, &w.owner, &net2, "y@example.test");
    let dm2 = x.dm(&y);
    let mut xs = x.connect();
    xs.send(&send_frame(&dm2, "u1", &[&y.device_id]));
    assert_eq!(xs.next_of("error")["code"], "retention_unavailable");
}

#[test]
fn expired_envelopes_are_never_delivered_and_are_purged() {
    let w = world_with(&[("OUTPOST_RELAY_PURGE_INTERVAL_SECS", "1")]);
    let alice = w.person("alice");
    let bob = w.person("bob");
    let dm = alice.dm(&bob);
    let mut a = alice.connect();
    a.expect("membership");
    let mut e = envelope(&dm, "short", &[&bob.device_id]);
    e["ttl_secs"] = json!(1);
    a.send(&json!({"type": "send", "envelope": e}));
    a.expect("accepted");
    a.send(&send_frame(&dm, "long", &[&bob.device_id]));
    a.expect("accepted");
    std::thread::sleep(Duration::from_millis(1500));
    let mut b = bob.connect();
    b.expect("membership");
    assert_eq!(b.expect("deliver")["envelope"]["client_msg_id"], "long");
    assert!(b.recv_within(Duration::from_millis(300)).is_none());
    // The purge removed it from the mailbox for good (the metric counts it).
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let m = w.server.anon().get("/metrics").text;
        if m.lines()
            .any(|l| l.starts_with("outpost_relay_mailbox_expired_total ") && !l.ends_with(" 0"))
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never purged:\n{m}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn attachments_upload_in_order_download_by_range_and_only_recipients_see_them() {
    let w = world_with(&[("OUTPOST_RELAY_CHUNK_MAX_BYTES", "65536")]);
    let alice = w.person("alice");
    let bob = w.person("bob");
    let eve = w.person("eve");
    let data: Vec<u8> = (0..150_000u32).map(|i| (i % 251) as u8).collect();
    let b = alice
        .api
        .post("/api/v1/blobs", &json!({"size": data.len()}))
        .ok();
    let id = b["id"].as_str().unwrap().to_string();
    assert_eq!(b["chunk_max"], 65536);
    let put = |offset: usize, bytes: &[u8]| alice.put_chunk(&id, offset, bytes);
    let (s, r) = put(0, &data[..65536]);
    assert_eq!((s, r["offset"].as_u64()), (200, Some(65536)));
    // Out of order and twice: refused with where to continue; nothing lost.
    let (s, r) = put(131072, &data[131072..]);
    assert_eq!((s, r["code"].as_str()), (409, Some("wrong_offset")));
    assert_eq!(r["details"]["expected_offset"], 65536);
    let (s, r) = put(0, &data[..65536]);
    assert_eq!(
        (s, r["details"]["expected_offset"].as_u64()),
        (409, Some(65536))
    );
    let (s, _) = put(65536, &data[65536..65536 + 65537]);
    assert_eq!(s, 413, "a chunk over chunk_max");
    let state = alice.api.get(&format!("/api/v1/blobs/{id}")).ok();
    assert_eq!(state["offset"], 65536, "an upload resumes where it stopped");
    put(65536, &data[65536..131072]);
    let (s, r) = put(131072, &data[131072..]);
    assert_eq!(s, 200);
    assert_eq!(r["complete"], true);
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&data))
    };
    assert_eq!(r["sha256"], sha.as_str());

    // Before any envelope names it, only alice may read it.
    bob.api
        .get(&format!("/api/v1/blobs/{id}"))
        .expect(404, "blob_not_found");
    let dm = alice.dm(&bob);
    let mut a = alice.connect();
    let mut e = envelope(&dm, "f1", &[&bob.device_id]);
    e["kind"] = json!("file");
    e["attachments"] = json!([{"blob_id": id}]);
    a.send(&json!({"type": "send", "envelope": e.clone()}));
    a.next_of("accepted");
    let mut forged = e.clone();
    forged["client_msg_id"] = json!("f2");
    forged["attachments"] = json!([{"blob_id": "0000"}]);
    a.send(&json!({"type": "send", "envelope": forged}));
    assert_eq!(a.next_of("error")["code"], "blob_not_found");

    let (status, part) = bob.download(&id, Some("bytes=100000-100099"));
    assert_eq!(status, 206);
    assert_eq!(part.as_slice(), &data[100000..100100]);
    let (_, whole) = bob.download(&id, None);
    assert_eq!(whole.as_slice(), data.as_slice());
    eve.api
        .get(&format!("/api/v1/blobs/{id}/content"))
        .expect(404, "blob_not_found");
    let big = alice
        .api
        .post("/api/v1/blobs", &json!({"size": 5_000_000_001u64}))
        .expect(413, "file_too_large");
    assert!(big["details"]["max_bytes"].is_number());
}

#[test]
fn receipts_reach_the_senders_devices_when_the_network_allows_them() {
    let w = world();
    let alice = w.person("alice");
    let bob = w.person("bob");
    let dm = alice.dm(&bob);
    let mut a = alice.connect();
    a.expect("membership");
    let mut b = bob.connect();
    b.expect("membership");
    a.send(&send_frame(&dm, "hello", &[&bob.device_id]));
    a.expect("accepted");
    b.expect("deliver");
    b.send(&json!({"type": "receipt", "receipt": {"conversation_id": dm, "sender_user_id": alice.user_id, "client_msg_ids": ["hello"]}}));
    let r = a.expect("receipt");
    assert_eq!(r["receipt"]["reader_user_id"], bob.user_id.as_str());
    assert_eq!(r["receipt"]["client_msg_ids"], json!(["hello"]));
    w.owner
        .set_network_settings(&w.net, json!({"read_receipts": "disabled"}));
    let p = b.next_of("policy");
    assert_eq!(p["policy"]["read_receipts"], false);
    b.send(&json!({"type": "receipt", "receipt": {"conversation_id": dm, "sender_user_id": alice.user_id, "client_msg_ids": ["hello"]}}));
    b.expect_error("receipts_disabled");
}

#[test]
fn a_stream_that_floods_frames_is_slowed_down_not_dropped() {
    let w = world_with(&[("OUTPOST_RELAY_MAX_FRAMES_PER_SECOND", "5")]);
    let alice = w.person("alice");
    let bob = w.person("bob");
    let dm = alice.dm(&bob);
    let mut a = alice.connect();
    a.expect("membership");
    for i in 0..30 {
        a.send(&send_frame(&dm, &format!("f{i}"), &[&bob.device_id]));
    }
    let (mut accepted, mut limited) = (0, 0);
    for _ in 0..30 {
        let f = a.recv();
        match f["type"].as_str().unwrap() {
            "accepted" => accepted += 1,
            "error" => {
                assert_eq!(f["code"], "rate_limited");
                assert!(f["client_msg_id"].as_str().unwrap().starts_with('f'));
                limited += 1;
            }
            other => panic!("unexpected {other}: {f}"),
        }
    }
    assert!(
        accepted >= 10 && limited > 0,
        "{accepted} accepted, {limited} limited"
    );
    // The stream is still open and works after a pause.
    std::thread::sleep(Duration::from_millis(400));
    a.send(&json!({"type": "ping"}));
    a.expect("pong");
}

#[test]
fn failed_sign_ins_lock_the_account_and_close_its_streams_at_once() {
    let w = world();
    w.owner.set_group_settings(
        &w.net,
        json!({"security": {"lockout_threshold": 3, "device_reset_threshold": 2}}),
    );
    let alice = w.person("alice");
    let mut s = alice.connect();
    let attempt = |password: &str| {
        w.server.anon().post(
            "/api/v1/devices",
            &json!({"username": alice.email, "password": password, "device": {"name": "x"}}),
        )
    };
    for _ in 0..3 {
        attempt("wrong-password-0").expect(401, "invalid_credentials");
    }
    let e = s.next_of("error");
    assert_eq!(e["code"], "account_locked");
    assert_eq!(e["fatal"], true);
    assert!(s.closes_within(Duration::from_secs(5)));
    // The right password now learns of the lock; a wrong one learns nothing new.
    let r = attempt(people::USER_PASSWORD);
    assert!(r.headers.get("retry-after").is_some());
    r.expect(403, "account_locked");
    attempt("wrong-password-0").expect(401, "invalid_credentials");
    // An administrator unlocks; signing in works again.
    w.owner
        .post(
            &format!(
                "/admin/api/v1/networks/{}/users/{}/unlock",
                w.net, alice.user_id
            ),
            &json!({}),
        )
        .ok();
    attempt(people::USER_PASSWORD).ok();
}

#[test]
fn attachments_go_once_no_envelope_references_them() {
    let w = world_with(&[("OUTPOST_RELAY_PURGE_INTERVAL_SECS", "1")]);
    let alice = w.person("alice");
    let bob = w.person("bob");
    let r = alice.upload(b"12345");
    let id = r["id"].as_str().unwrap().to_string();
    let sha = r["sha256"].as_str().unwrap().to_string();
    let file = w.server.dir.join("blobs/sha256").join(&sha[..2]).join(&sha);
    assert!(file.is_file(), "stored under its content address");
    let dm = alice.dm(&bob);
    let mut a = alice.connect();
    let mut e = envelope(&dm, "f", &[&bob.device_id]);
    e["attachments"] = json!([{"blob_id": id}]);
    a.send(&json!({"type": "send", "envelope": e}));
    a.next_of("accepted");
    // Still referenced by a waiting envelope: kept across purges.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(file.is_file());
    let mut s = bob.connect();
    s.expect("membership");
    let d = s.expect("deliver");
    s.send(&json!({"type": "ack", "up_to": d["envelope"]["seq"]}));
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while file.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the blob was never collected"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    alice
        .api
        .get(&format!("/api/v1/blobs/{id}"))
        .expect(404, "blob_not_found");
}
