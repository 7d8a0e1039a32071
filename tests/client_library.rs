//! The reference client library (`outpost::client`) against the real appliance, over
//! real TLS, WebSocket and QUIC: login with consent, text both ways on both transports,
//! acknowledgements and redelivery, stale device lists, de-duplication, forged
//! envelopes, files with a resumed upload, and refusals with their codes.
//!
//! People are created through the admin API with a password; every device is
//! registered by `session::login`, exactly as a person's client would.

mod common;

use common::people::USER_PASSWORD;
use common::{Api, Server};
use outpost::client::api::{ApiError, base_url};
use outpost::client::crypto::{DeviceKeys, FileEncryptor};
use outpost::client::envelope::{EnvelopeOptions, Outgoing, seal_envelope};
use outpost::client::files;
use outpost::client::session::{Event, LoginOutcome, LoginRequest, Session, login};
use outpost::client::{Profile, ReceivedMessage, Refusal, Stream, StreamConfig, Transport};
use outpost::relay::frame::{ClientFrame, Kind, ServerFrame};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

struct World {
    server: Server,
    owner: Api,
    net: String,
    dir: tempfile::TempDir,
}

fn world() -> World {
    world_with(&[])
}

fn world_with(env: &[(&str, &str)]) -> World {
    let server = Server::builder().envs(env).start();
    let owner = server.owner();
    let net = owner.first_network();
    World {
        server,
        owner,
        net,
        dir: tempfile::tempdir().unwrap(),
    }
}

/// Run the async part of a test on a runtime of its own (the admin client is blocking:
/// call it through [`admin`]).
fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// A blocking admin API call from async code.
fn admin<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

impl World {
    /// A person with a password (admin API); returns their user id.
    fn user(&self, email: &str) -> String {
        let v = self
            .owner
            .post(
                &format!("/admin/api/v1/networks/{}/users", self.net),
                &json!({"email": email, "first_name": email.split('@').next().unwrap(),
                        "password": USER_PASSWORD}),
            )
            .ok();
        v["id"].as_str().expect("the new user's id").to_string()
    }

    fn request(&self, username: &str) -> LoginRequest {
        LoginRequest {
            url: self.server.url.clone(),
            ca_cert: Some(self.server.ca.clone()),
            insecure: false,
            quic_addr: None,
            network_id: None,
            username: username.into(),
            password: USER_PASSWORD.into(),
            device_name: "test".into(),
        }
    }

    fn profile_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.json"))
    }

    /// Save a login's profile and open a session of it.
    fn session(&self, out: LoginOutcome, name: &str) -> Session {
        let path = self.profile_path(name);
        out.profile.save(&path).unwrap();
        Session::open(&path).unwrap()
    }

    /// Log a new device in and open a session of it.
    async fn device(&self, username: &str, name: &str) -> Session {
        let out = login(&self.request(username)).await.unwrap();
        self.session(out, name)
    }
}

fn set_consent(w: &World) {
    w.owner.set_network_settings(
        &w.net,
        json!({"consent": {"enabled": true, "title": "Monitoring",
        "body": "Messages may be retained.", "button_label": "I agree"}}),
    );
}

/// How many envelopes the appliance refused with this code (its metrics).
fn refused(w: &World, code: &str) -> u64 {
    let text = admin(|| w.server.anon().get("/metrics").text);
    let prefix = format!("outpost_relay_envelopes_refused_total{{reason=\"{code}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |n| n.trim().parse().unwrap())
}

async fn next_event(s: &mut Session) -> Event {
    tokio::time::timeout(WAIT, s.next_event())
        .await
        .expect("an event in time")
        .unwrap()
        .expect("the stream stays open")
}

/// The next message, skipping membership and policy events; a dropped envelope fails.
async fn next_message(s: &mut Session) -> ReceivedMessage {
    loop {
        match next_event(s).await {
            Event::Message(m) => return m,
            Event::Dropped { reason, .. } => panic!("dropped: {reason}"),
            Event::Error(r) => panic!("error frame: {r:?}"),
            _ => {}
        }
    }
}

/// Reconnect `s` until the appliance reports `want` items waiting for it (acks are
/// written in the background), and return `ready.pending`.
async fn settle_pending(s: &mut Session, transport: Transport, want: u64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let ready = s
            .connect(transport, |_| panic!("asked for consent again"))
            .await
            .unwrap();
        if ready.pending == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} items wait for device {}, not {want}",
            ready.pending,
            s.profile().device_id
        );
        s.disconnect().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Acknowledge everything and reconnect until nothing waits for the device; returns
/// what came again meanwhile. (An ack sent just before a stream closes may be lost,
/// PROTOCOL.md §4.4: what comes again is taken and acknowledged again.)
async fn settle_empty(s: &mut Session, transport: Transport) -> Vec<Event> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut again = Vec::new();
    loop {
        s.disconnect().await;
        let ready = s
            .connect(transport, |_| panic!("asked for consent again"))
            .await
            .unwrap();
        if ready.pending == 0 {
            s.disconnect().await;
            return again;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} items keep waiting for device {}",
            ready.pending,
            s.profile().device_id
        );
        while let Ok(e) = tokio::time::timeout(Duration::from_millis(300), s.next_event()).await {
            again.push(e.unwrap().expect("the stream stays open"));
        }
    }
}

/// A bare stream of a device (for what a client would not do by itself).
async fn raw_stream(profile: &Profile, transport: Transport) -> Stream {
    let config = StreamConfig {
        url: base_url(&profile.url).unwrap(),
        trust: profile.trust().unwrap(),
        transport,
        quic_addr: None,
    };
    Stream::connect(&config).await.unwrap()
}

async fn recv(s: &mut Stream) -> ServerFrame {
    tokio::time::timeout(WAIT, s.recv())
        .await
        .expect("a frame in time")
        .unwrap()
        .expect("the stream stays open")
}

/// Authenticate a bare stream with this token; returns `ready.pending`.
async fn authenticate(s: &mut Stream, token: &str) -> u64 {
    s.send(&ClientFrame::Authenticate {
        token: token.to_string(),
        consent_version: None,
    })
    .await
    .unwrap();
    match recv(s).await {
        ServerFrame::Ready { pending, .. } => pending,
        other => panic!("expected ready, got {other:?}"),
    }
}

#[test]
fn text_both_ways_over_websocket_and_quic_with_consent() {
    let w = world();
    set_consent(&w);
    let alice_id = w.user("alice@example.test");
    w.user("bob@example.test");
    run(async {
        let out = login(&w.request("alice@example.test")).await.unwrap();
        assert_eq!(out.user.id, alice_id);
        let consent = out
            .consent
            .clone()
            .expect("the network has a consent pop-up");
        assert_eq!(
            (consent.title.as_str(), consent.body.as_str()),
            ("Monitoring", "Messages may be retained.")
        );
        assert_eq!(consent.button_label, "I agree");
        let mut alice = w.session(out, "alice");
        // The username is matched without regard to case.
        let mut bob_ws = w.device("Bob@Example.test", "bob1").await;
        let mut bob_quic = w.device("bob@example.test", "bob2").await;
        assert_eq!(bob_ws.profile().user_id, bob_quic.profile().user_id);

        // Declining the consent pop-up fails the connection.
        let e = alice
            .connect(Transport::WebSocket, |_| Ok(false))
            .await
            .unwrap_err();
        assert!(format!("{e:#}").contains("not accepted"), "{e:#}");

        let mut asked = 0;
        let ready = alice
            .connect(Transport::WebSocket, |c| {
                asked += 1;
                assert_eq!(c, &consent);
                Ok(true)
            })
            .await
            .unwrap();
        assert_eq!(asked, 1);
        assert_eq!(ready.device_id, alice.profile().device_id);
        assert_eq!(ready.user_id, alice_id);
        assert_eq!(ready.network_id, w.net);
        // The acknowledged version is saved in the profile.
        let saved = Profile::load(&w.profile_path("alice")).unwrap();
        assert_eq!(saved.consent_version, Some(consent.version));
        // Reconnecting does not ask again: the appliance remembers the device agreed.
        alice
            .connect(Transport::WebSocket, |_| panic!("asked twice"))
            .await
            .unwrap();
        // Each device agrees for itself.
        for (bob, transport) in [
            (&mut bob_ws, Transport::WebSocket),
            (&mut bob_quic, Transport::Quic),
        ] {
            let mut asked = 0;
            bob.connect(transport, |_| {
                asked += 1;
                Ok(true)
            })
            .await
            .unwrap();
            assert_eq!(asked, 1, "{transport}");
        }
        assert!(bob_quic.ping().await.unwrap() < Duration::from_secs(5));

        let conv = alice.direct_with("bob@example.test").await.unwrap();
        let a1 = alice.send_text(&conv.id, "hello bob").await.unwrap();
        assert!(!a1.duplicate);
        for bob in [&mut bob_ws, &mut bob_quic] {
            let m = next_message(bob).await;
            assert_eq!(m.text(), Some("hello bob"));
            assert_eq!(m.sender_user_id, alice_id);
            assert_eq!(m.sender_device_id, alice.profile().device_id);
            assert_eq!(m.conversation_id, conv.id);
            assert_eq!(m.seq, a1.seq);
        }

        // Bob answers from the QUIC device: Alice and Bob's other device receive it.
        let conv_b = bob_quic.direct_with("alice@example.test").await.unwrap();
        assert_eq!(conv_b.id, conv.id);
        let a2 = bob_quic.send_text(&conv.id, "hi alice").await.unwrap();
        assert!(a2.seq > a1.seq);
        assert_eq!(next_message(&mut alice).await.text(), Some("hi alice"));
        assert_eq!(next_message(&mut bob_ws).await.text(), Some("hi alice"));

        // A message neither of Bob's devices has taken yet.
        let a3 = alice.send_text(&conv.id, "are you there?").await.unwrap();

        // Everything handed out is acknowledged on disconnect; nothing else is.
        for s in [&mut alice, &mut bob_ws, &mut bob_quic] {
            s.disconnect().await;
        }
        settle_pending(&mut alice, Transport::WebSocket, 0).await;
        for (bob, transport) in [
            (&mut bob_ws, Transport::WebSocket),
            (&mut bob_quic, Transport::Quic),
        ] {
            settle_pending(bob, transport, 1).await;
            let m = next_message(bob).await;
            assert_eq!((m.text(), m.seq), (Some("are you there?"), a3.seq));
            bob.disconnect().await;
            settle_pending(bob, transport, 0).await;
            bob.disconnect().await;
        }

        // A new text of the pop-up closes the open stream and is asked for again.
        admin(|| {
            w.owner.set_network_settings(
                &w.net,
                json!({"consent": {"body": "Messages are retained."}}),
            )
        });
        let e = tokio::time::timeout(WAIT, alice.next_event())
            .await
            .expect("the stream ends")
            .unwrap_err();
        let r = e.downcast_ref::<Refusal>().expect("a refusal");
        assert_eq!((r.code.as_str(), r.fatal), ("consent_required", true));
        let changed = r.consent().expect("the new pop-up");
        assert!(changed.version > consent.version);
        assert_eq!(changed.body, "Messages are retained.");
        let mut asked = Vec::new();
        alice
            .connect(Transport::WebSocket, |c| {
                asked.push(c.clone());
                Ok(true)
            })
            .await
            .unwrap();
        assert_eq!(asked, std::slice::from_ref(&changed));
        let saved = Profile::load(&w.profile_path("alice")).unwrap();
        assert_eq!(saved.consent_version, Some(changed.version));
        alice.disconnect().await;
    });
}

#[test]
fn stale_device_lists_dedup_forgeries_and_redelivery() {
    let w = world();
    w.user("alice@example.test");
    w.user("bob@example.test");
    run(async {
        let mut alice = w.device("alice@example.test", "alice").await;
        let mut bob = w.device("bob@example.test", "bob").await;
        alice.connect(Transport::Quic, |_| Ok(true)).await.unwrap();
        bob.connect(Transport::WebSocket, |_| Ok(true))
            .await
            .unwrap();
        let conv = alice.direct_with("bob@example.test").await.unwrap();
        alice.send_text(&conv.id, "one").await.unwrap();
        assert_eq!(next_message(&mut bob).await.text(), Some("one"));

        // A new device of Bob's after Alice cached the device list: the appliance
        // refuses the envelope (missing_recipients), she fetches the list again and
        // the retry reaches the new device too.
        let mut bob2 = w.device("bob@example.test", "bob2").await;
        bob2.connect(Transport::WebSocket, |_| Ok(true))
            .await
            .unwrap();
        let two = alice.send_text(&conv.id, "two").await.unwrap();
        assert!(!two.duplicate);
        assert_eq!(refused(&w, "missing_recipients"), 1);
        let m = next_message(&mut bob2).await;
        assert_eq!((m.text(), m.seq), (Some("two"), two.seq));
        assert_eq!(next_message(&mut bob).await.text(), Some("two"));

        // Bob revokes that device while Alice still has it in her list: the appliance
        // refuses the envelope (unknown_recipients), she fetches the list again.
        let bob2_id = bob2.profile().device_id.clone();
        bob.api().revoke_device(&bob2_id).await.unwrap();
        // (once the stream has surely closed: the device still has "two" to acknowledge,
        // and the reason must not be lost to the failed ack)
        tokio::time::sleep(Duration::from_millis(300)).await;
        let e = tokio::time::timeout(WAIT, bob2.next_event())
            .await
            .expect("the revoked device's stream ends")
            .unwrap_err();
        let r = e.downcast_ref::<Refusal>().expect("a refusal");
        assert_eq!((r.code.as_str(), r.fatal), ("device_revoked", true));
        let three = alice.send_text(&conv.id, "three").await.unwrap();
        assert_eq!(refused(&w, "unknown_recipients"), 1);
        let listed = alice.conversation_devices(&conv.id, false).await.unwrap();
        assert!(listed.iter().all(|d| d.device_id != bob2_id));
        let m = next_message(&mut bob).await;
        assert_eq!((m.text(), m.seq), (Some("three"), three.seq));

        // "three" was handed out but not yet acknowledged (the ping makes sure the
        // appliance has read the acks before it). Another stream of Bob's device
        // takes over: the appliance delivers "three" again.
        bob.ping().await.unwrap();
        let mut other = raw_stream(bob.profile(), Transport::WebSocket).await;
        assert!(authenticate(&mut other, &bob.profile().device_token).await >= 1);
        loop {
            if let ServerFrame::Deliver { envelope } = recv(&mut other).await
                && envelope.seq == three.seq
            {
                break;
            }
        }
        other.close().await;

        // Someone who stole Alice's device token, but not her keys, sends Bob a
        // well-encrypted envelope in her name, signed with a key of their own.
        let devices = alice.conversation_devices(&conv.id, true).await.unwrap();
        let thief = DeviceKeys::generate(&mut rand::rng());
        let content = serde_json::to_vec(&json!({"text": "send me your password"})).unwrap();
        let forged = seal_envelope(
            &mut rand::rng(),
            &thief,
            &Outgoing {
                sender_device_id: &alice.profile().device_id,
                conversation_id: &conv.id,
                client_msg_id: "forged-1",
                kind: Kind::Text,
                content: &content,
            },
            &devices,
            EnvelopeOptions::default(),
        )
        .unwrap();
        let mut thief_stream = raw_stream(alice.profile(), Transport::WebSocket).await;
        authenticate(&mut thief_stream, &alice.profile().device_token).await;
        thief_stream
            .send(&ClientFrame::Send { envelope: forged })
            .await
            .unwrap();
        loop {
            match recv(&mut thief_stream).await {
                ServerFrame::Accepted { client_msg_id, .. } if client_msg_id == "forged-1" => break,
                ServerFrame::Error { code, .. } => panic!("the forgery was refused: {code}"),
                _ => {}
            }
        }
        thief_stream.close().await;

        // Alice (whose stream the thief's replaced) reconnects and sends again.
        alice.connect(Transport::Quic, |_| Ok(true)).await.unwrap();
        let four = alice.send_text(&conv.id, "four").await.unwrap();

        // Bob reconnects: the redelivered "three", the forgery and "four" wait. He never
        // sees "three" twice, sees the forgery dropped, and "four" once.
        let ready = bob
            .connect(Transport::WebSocket, |_| Ok(true))
            .await
            .unwrap();
        assert_eq!(ready.pending, 3, "three (again), the forgery, four");
        let mut dropped = Vec::new();
        loop {
            match next_event(&mut bob).await {
                Event::Message(m) => {
                    assert_eq!((m.text(), m.seq), (Some("four"), four.seq));
                    break;
                }
                Event::Dropped {
                    client_msg_id,
                    sender_device_id,
                    reason,
                    ..
                } => {
                    assert_eq!(sender_device_id, alice.profile().device_id);
                    assert!(reason.contains("signature"), "{reason}");
                    dropped.push(client_msg_id);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(dropped, ["forged-1"]);
        // The forgery is acknowledged with the rest: nothing waits any more, and
        // nothing is shown twice.
        let again = settle_empty(&mut bob, Transport::WebSocket).await;
        assert!(
            again.iter().all(|e| !matches!(e, Event::Message(_))),
            "{again:?}"
        );
        for s in [&mut alice, &mut bob] {
            s.disconnect().await;
        }
    });
}

#[test]
fn files_with_a_resumed_upload() {
    let w = world_with(&[("OUTPOST_RELAY_CHUNK_MAX_BYTES", "65536")]);
    w.user("alice@example.test");
    w.user("bob@example.test");
    run(async {
        let mut alice = w.device("alice@example.test", "alice").await;
        let mut bob = w.device("bob@example.test", "bob").await;
        alice
            .connect(Transport::WebSocket, |_| Ok(true))
            .await
            .unwrap();
        bob.connect(Transport::Quic, |_| Ok(true)).await.unwrap();
        let conv = alice.direct_with("bob@example.test").await.unwrap();

        // 300,000 bytes (300,080 encrypted) in chunks of at most 65,536. An earlier run
        // stopped after the first chunk; the upload resumes at the appliance's offset.
        let src = w.dir.path().join("report.pdf");
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
        std::fs::write(&src, &data).unwrap();
        let mut file = files::prepare_upload(alice.api(), &src).await.unwrap();
        assert_eq!(file.mime, "application/pdf");
        let blob = {
            let mut enc = FileEncryptor::new(&file.file_key().unwrap());
            let mut out = Vec::new();
            enc.push(&data, &mut out).unwrap();
            enc.finish(&mut out).unwrap();
            out
        };
        assert_eq!(blob.len(), 300_080);
        let state = alice
            .api()
            .put_blob_chunk(&file.blob_id, 0, blob[..65_536].to_vec().into())
            .await
            .unwrap();
        assert_eq!((state.offset, state.complete), (65_536, false));
        let mut reports = Vec::new();
        let mut progress = |done: u64, _: u64| reports.push(done);
        files::upload_prepared(alice.api(), &src, &mut file, &mut progress)
            .await
            .unwrap();
        assert_eq!(reports.first(), Some(&65_536), "resumed, not restarted");
        assert_eq!(reports.last(), Some(&300_080));
        assert!(reports.len() >= 5, "{reports:?}");
        let sha = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(&blob))
        };
        assert_eq!(file.sha256, sha);
        let accepted = alice
            .send_file_ref(&conv.id, &file, Some("the report"), Default::default())
            .await
            .unwrap();

        let m = next_message(&mut bob).await;
        assert_eq!(m.seq, accepted.seq);
        assert_eq!(m.text(), Some("the report"));
        let got = m.file().expect("a file message");
        assert_eq!(got, file);
        assert_eq!(m.attachments[0].blob_id, file.blob_id);
        let dest = w.dir.path().join("out.pdf");
        bob.download_file(&got, &dest, &mut |_, _| {})
            .await
            .unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), data);
        check_mode(&dest);

        // Range downloads start where asked.
        let mut dl = bob
            .api()
            .download_blob(&file.blob_id, Some(10))
            .await
            .unwrap();
        assert_eq!((dl.start, dl.total), (10, Some(300_080)));
        let first = dl.chunk().await.unwrap().unwrap();
        assert_eq!(&first[..], &blob[10..10 + first.len()]);
        drop(dl);

        // A file sent in one go, empty this time.
        let empty = w.dir.path().join("empty.txt");
        std::fs::write(&empty, b"").unwrap();
        let (_, sent) = alice
            .send_file(&conv.id, &empty, None, Default::default(), &mut |_, _| {})
            .await
            .unwrap();
        let m = next_message(&mut bob).await;
        assert_eq!(m.text(), None);
        let got_empty = m.file().unwrap();
        assert_eq!(got_empty, sent);
        let dest_empty = w.dir.path().join("empty-out.txt");
        bob.download_file(&got_empty, &dest_empty, &mut |_, _| {})
            .await
            .unwrap();
        assert_eq!(std::fs::read(&dest_empty).unwrap(), b"");

        // A blob altered on the appliance's disk is refused and leaves nothing behind.
        let stored = w
            .server
            .dir
            .join("blobs/sha256")
            .join(&file.sha256[..2])
            .join(&file.sha256);
        let mut bytes = std::fs::read(&stored).expect("the stored blob");
        assert_eq!(bytes, blob, "the appliance stores only ciphertext");
        bytes[150_000] ^= 1;
        std::fs::write(&stored, &bytes).unwrap();
        let bad = w.dir.path().join("bad.pdf");
        let e = bob
            .download_file(&got, &bad, &mut |_, _| {})
            .await
            .unwrap_err();
        assert!(format!("{e:#}").contains("does not decrypt"), "{e:#}");
        assert!(!bad.exists());
        assert!(!Path::new(&format!("{}.partial", bad.display())).exists());
        alice.disconnect().await;
        bob.disconnect().await;
    });
}

fn check_mode(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(p).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn refusals_keep_their_codes() {
    let w = world();
    w.user("alice@example.test");
    let bob_id = w.user("bob@example.test");
    let carol_id = w.user("carol@example.test");
    w.user("dave@example.test");
    w.owner
        .set_group_settings(&w.net, json!({"security": {"lockout_threshold": 3}}));
    run(async {
        let mut r = w.request("alice@example.test");
        r.password = "wrong".into();
        let e = login(&r).await.unwrap_err();
        let api = e.downcast_ref::<ApiError>().expect("an API error");
        assert_eq!(api.code(), Some("invalid_credentials"));
        let ApiError::Server(s) = api else {
            unreachable!()
        };
        assert_eq!(s.status, 401);
        assert!(!s.message.is_empty() && s.message != s.code, "{s:?}");

        // Repeated wrong passwords lock the account; the refusal says when to retry.
        let mut wrong = w.request("dave@example.test");
        wrong.password = "wrong".into();
        for _ in 0..3 {
            let e = login(&wrong).await.unwrap_err();
            let api = e.downcast_ref::<ApiError>().expect("an API error");
            assert_eq!(api.code(), Some("invalid_credentials"));
        }
        let e = login(&w.request("dave@example.test")).await.unwrap_err();
        let Some(ApiError::Server(s)) = e.downcast_ref::<ApiError>() else {
            panic!("not a refusal: {e:#}")
        };
        assert_eq!((s.status, s.code.as_str()), (403, "account_locked"));
        assert!(s.retry_after.is_some_and(|n| n > 0), "{s:?}");

        // A suspended account cannot log in.
        admin(|| {
            w.owner
                .post(
                    &format!("/admin/api/v1/networks/{}/users/{carol_id}/suspend", w.net),
                    &json!({}),
                )
                .ok()
        });
        let e = login(&w.request("carol@example.test")).await.unwrap_err();
        let api = e.downcast_ref::<ApiError>().expect("an API error");
        assert_eq!(api.code(), Some("account_suspended"));

        // A REST refusal of a logged-in device.
        let mut alice = w.device("alice@example.test", "alice").await;
        let e = alice.api().conversation("no-such-thing").await.unwrap_err();
        assert_eq!(e.code(), Some("conversation_not_found"));

        // The security group's limits come back as the envelope's refusal.
        alice
            .connect(Transport::WebSocket, |_| Ok(true))
            .await
            .unwrap();
        let mut phone = w.device("alice@example.test", "alice-phone").await;
        phone.connect(Transport::Quic, |_| Ok(true)).await.unwrap();
        admin(|| {
            w.owner.set_group_settings(
                &w.net,
                json!({"messaging": {"max_ttl_seconds": 3600},
                               "media": {"files_enabled": false}}),
            )
        });
        // The connected device learns the new policy at once.
        loop {
            match next_event(&mut alice).await {
                Event::Policy(p) => {
                    assert_eq!((p.max_ttl_secs, p.files), (3600, false));
                    break;
                }
                Event::Membership { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        let bob_user = alice.find_user("bob@example.test").await.unwrap();
        assert_eq!(bob_user.id, bob_id);
        let conv = alice.api().direct_conversation(&bob_id).await.unwrap();
        let e = alice
            .send_content(
                &conv.id,
                Kind::Text,
                br#"{"text":"for two hours"}"#,
                EnvelopeOptions {
                    ttl_secs: Some(7200),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
        let r = e.downcast_ref::<Refusal>().expect("a refusal");
        assert_eq!((r.code.as_str(), r.fatal), ("ttl_too_long", false));
        assert_eq!(r.details.as_ref().unwrap()["max_ttl_secs"], 3600);
        assert_eq!(alice.policy().unwrap().max_ttl_secs, 3600);
        assert!(!alice.policy().unwrap().files);
        let f = w.dir.path().join("a.txt");
        std::fs::write(&f, "x").unwrap();
        let e = alice
            .send_file(&conv.id, &f, None, Default::default(), &mut |_, _| {})
            .await
            .unwrap_err();
        let code = e
            .downcast_ref::<Refusal>()
            .map(|r| r.code.clone())
            .or_else(|| {
                e.downcast_ref::<ApiError>()
                    .and_then(|a| a.code().map(str::to_string))
            });
        assert_eq!(code.as_deref(), Some("files_disabled"), "{e:#}");
        // Within the limits, the same conversation works.
        alice
            .send_content(
                &conv.id,
                Kind::Text,
                br#"{"text":"for an hour"}"#,
                EnvelopeOptions {
                    ttl_secs: Some(3600),
                    ..Default::default()
                },
            )
            .await
            .unwrap();

        // A device without a valid token cannot open the stream.
        let mut p = alice.profile().clone();
        p.device_token = "od_not-a-token".into();
        let mut forged = Session::new(p).unwrap();
        let e = forged
            .connect(Transport::WebSocket, |_| Ok(true))
            .await
            .unwrap_err();
        let r = e.downcast_ref::<Refusal>().expect("a refusal");
        assert_eq!((r.code.as_str(), r.fatal), ("invalid_token", true));

        // A revoked device neither.
        let phone_id = phone.profile().device_id.clone();
        alice.api().revoke_device(&phone_id).await.unwrap();
        let e = phone
            .connect(Transport::Quic, |_| Ok(true))
            .await
            .unwrap_err();
        let r = e.downcast_ref::<Refusal>().expect("a refusal");
        assert_eq!((r.code.as_str(), r.fatal), ("device_revoked", true));
        let e = phone.api().me().await.unwrap_err();
        assert_eq!(e.code(), Some("device_revoked"));
        alice.disconnect().await;
    });
}
