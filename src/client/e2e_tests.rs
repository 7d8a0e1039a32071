//! End-to-end tests of the [`Session`] against the [`mock`](super::mock) appliance, over
//! real TLS, WebSocket and QUIC: login with consent, text both ways on both transports,
//! acknowledgements, the stale-device-list retry, de-duplication, forged envelopes,
//! and files with an interrupted, resumed upload.

use std::path::{Path, PathBuf};

use super::mock::Mock;
use super::session::{Event, LoginRequest, Session, login};
use super::{ApiError, Transport};
use crate::relay::frame::{Consent, ServerFrame};

struct World {
    mock: Mock,
    dir: tempfile::TempDir,
    ca: PathBuf,
}

async fn world(consent: Option<Consent>) -> World {
    let mock = Mock::start(consent).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &mock.ca_pem).unwrap();
    {
        let mut s = mock.state.lock().unwrap();
        s.add_user("alice@example.org");
        s.add_user("bob@example.org");
    }
    World { mock, dir, ca }
}

impl World {
    fn request(&self, username: &str) -> LoginRequest {
        LoginRequest {
            url: self.mock.url.clone(),
            ca_cert: Some(self.ca.clone()),
            insecure: false,
            quic_addr: None,
            network_id: None,
            username: username.into(),
            password: "pw".into(),
            device_name: "test".into(),
        }
    }

    /// Log a device in, save its profile, and open a session of it.
    async fn device(&self, username: &str, name: &str) -> Session {
        let out = login(&self.request(username)).await.unwrap();
        let path = self.dir.path().join(format!("{name}.json"));
        out.profile.save(&path).unwrap();
        Session::open(&path).unwrap()
    }
}

fn consent() -> Consent {
    Consent {
        version: 2,
        title: "Monitoring".into(),
        body: "Messages may be retained.".into(),
        button_label: "I agree".into(),
    }
}

async fn next_message(s: &mut Session) -> super::ReceivedMessage {
    loop {
        let ev = tokio::time::timeout(std::time::Duration::from_secs(10), s.next_event())
            .await
            .expect("an event in time")
            .unwrap()
            .expect("the stream stays open");
        match ev {
            Event::Message(m) => return m,
            Event::Dropped { reason, .. } => panic!("dropped: {reason}"),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_both_ways_over_websocket_and_quic_with_consent() {
    let w = world(Some(consent())).await;
    let mut alice = w.device("alice@example.org", "alice").await;
    let mut bob_ws = w.device("Bob@example.org", "bob1").await;
    let mut bob_quic = w.device("bob@example.org", "bob2").await;

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
            assert_eq!(c.version, 2);
            Ok(true)
        })
        .await
        .unwrap();
    assert_eq!(asked, 1);
    assert_eq!(ready.device_id, alice.profile().device_id);
    // The acknowledged version is saved in the profile.
    let saved = super::Profile::load(&w.dir.path().join("alice.json")).unwrap();
    assert_eq!(saved.consent_version, Some(2));
    // Reconnecting does not ask again.
    alice
        .connect(Transport::WebSocket, |_| panic!("asked twice"))
        .await
        .unwrap();
    bob_ws
        .connect(Transport::WebSocket, |_| Ok(true))
        .await
        .unwrap();
    bob_quic
        .connect(Transport::Quic, |_| Ok(true))
        .await
        .unwrap();
    assert!(bob_quic.ping().await.unwrap() < std::time::Duration::from_secs(5));

    let conv = alice.direct_with("bob@example.org").await.unwrap();
    let a1 = alice.send_text(&conv.id, "hello bob").await.unwrap();
    assert!(!a1.duplicate);
    for bob in [&mut bob_ws, &mut bob_quic] {
        let m = next_message(bob).await;
        assert_eq!(m.text(), Some("hello bob"));
        assert_eq!(m.sender_user_id, alice.profile().user_id);
        assert_eq!(m.conversation_id, conv.id);
        assert_eq!(m.seq, a1.seq);
    }

    // Bob answers from the QUIC device: Alice and Bob's other device receive it.
    let conv_b = bob_quic.direct_with("alice@example.org").await.unwrap();
    assert_eq!(conv_b.id, conv.id);
    let a2 = bob_quic.send_text(&conv.id, "hi alice").await.unwrap();
    assert!(a2.seq > a1.seq);
    assert_eq!(next_message(&mut alice).await.text(), Some("hi alice"));
    assert_eq!(next_message(&mut bob_ws).await.text(), Some("hi alice"));

    // Everything handed out is acknowledged on disconnect; nothing else is.
    bob_ws.disconnect().await;
    alice.disconnect().await;
    bob_quic.disconnect().await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    {
        let s = w.mock.state.lock().unwrap();
        assert_eq!(s.acked.get(&bob_ws.profile().device_id), Some(&a2.seq));
        assert_eq!(s.acked.get(&alice.profile().device_id), Some(&a2.seq));
        assert_eq!(s.acked.get(&bob_quic.profile().device_id), Some(&a1.seq));
        assert!(s.mailboxes[&bob_ws.profile().device_id].is_empty());
    }
    w.mock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_device_lists_dedup_forgeries_and_redelivery() {
    let w = world(None).await;
    let mut alice = w.device("alice@example.org", "alice").await;
    let mut bob = w.device("bob@example.org", "bob").await;
    alice.connect(Transport::Quic, |_| Ok(true)).await.unwrap();
    bob.connect(Transport::WebSocket, |_| Ok(true))
        .await
        .unwrap();
    let conv = alice.direct_with("bob@example.org").await.unwrap();

    // The first device list Alice gets lacks Bob's device: the server refuses, she
    // fetches the list again and the retry goes through.
    w.mock.state.lock().unwrap().hide_device_once = Some(bob.profile().device_id.clone());
    let a1 = alice.send_text(&conv.id, "one").await.unwrap();
    assert_eq!(
        w.mock.state.lock().unwrap().refusals,
        ["missing_recipients"]
    );
    let m1 = next_message(&mut bob).await;
    assert_eq!(m1.text(), Some("one"));

    // A new device of Bob's after Alice cached the list: same recovery.
    let mut bob2 = w.device("bob@example.org", "bob2").await;
    bob2.connect(Transport::WebSocket, |_| Ok(true))
        .await
        .unwrap();
    alice.send_text(&conv.id, "two").await.unwrap();
    assert_eq!(next_message(&mut bob2).await.text(), Some("two"));
    assert_eq!(next_message(&mut bob).await.text(), Some("two"));
    assert_eq!(
        w.mock.state.lock().unwrap().refusals,
        ["missing_recipients", "missing_recipients"]
    );

    // A redelivery of the first message, a forged copy, then a new message: Bob sees the
    // forgery as dropped, the new message once, and never the duplicate.
    let dup = {
        let s = w.mock.state.lock().unwrap();
        s.log
            .iter()
            .find(|(d, f)| {
                d == &bob.profile().device_id
                    && matches!(f, ServerFrame::Deliver { envelope } if envelope.seq == a1.seq)
            })
            .map(|(_, f)| f.clone())
            .unwrap()
    };
    let mut forged = dup.clone();
    if let ServerFrame::Deliver { envelope } = &mut forged {
        envelope.client_msg_id = "forged-1".into();
    }
    {
        let s = w.mock.state.lock().unwrap();
        s.push(&bob.profile().device_id, dup);
        s.push(&bob.profile().device_id, forged);
    }
    alice.send_text(&conv.id, "three").await.unwrap();
    let mut dropped = 0;
    loop {
        match bob.next_event().await.unwrap().unwrap() {
            Event::Message(m) => {
                assert_eq!(m.text(), Some("three"));
                break;
            }
            Event::Dropped { client_msg_id, .. } => {
                assert_eq!(client_msg_id, "forged-1");
                dropped += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(dropped, 1);
    for s in [&mut alice, &mut bob, &mut bob2] {
        s.disconnect().await;
    }
    w.mock.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_with_a_resumed_upload() {
    let w = world(None).await;
    let mut alice = w.device("alice@example.org", "alice").await;
    let mut bob = w.device("bob@example.org", "bob").await;
    alice
        .connect(Transport::WebSocket, |_| Ok(true))
        .await
        .unwrap();
    bob.connect(Transport::Quic, |_| Ok(true)).await.unwrap();
    let conv = alice.direct_with("bob@example.org").await.unwrap();

    // 300,000 bytes in 100,000-byte chunks; the second chunk's answer is lost (503)
    // although the appliance stored it: the upload resumes from the blob's offset.
    let src = w.dir.path().join("report.pdf");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(&src, &data).unwrap();
    w.mock.state.lock().unwrap().fail_put_once_at = Some(100_000);
    let mut steps = 0;
    let mut progress = |_: u64, _: u64| steps += 1;
    let (_, file) = alice
        .send_file(
            &conv.id,
            &src,
            Some("the report"),
            Default::default(),
            &mut progress,
        )
        .await
        .unwrap();
    assert!(steps >= 4);
    assert_eq!(file.size, 300_000);
    assert_eq!(file.mime, "application/pdf");
    assert!(w.mock.state.lock().unwrap().fail_put_once_at.is_none());

    let m = next_message(&mut bob).await;
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

    // A file whose blob was altered is refused and leaves nothing behind.
    {
        let mut s = w.mock.state.lock().unwrap();
        let b = s.blobs.get_mut(&file.blob_id).unwrap();
        b.data[150_000] ^= 1;
    }
    let bad = w.dir.path().join("bad.pdf");
    assert!(bob.download_file(&got, &bad, &mut |_, _| {}).await.is_err());
    assert!(!bad.exists());
    assert!(!Path::new(&format!("{}.partial", bad.display())).exists());

    // Range downloads start where asked.
    let mut dl = bob
        .api()
        .download_blob(&file.blob_id, Some(10))
        .await
        .unwrap();
    assert_eq!(dl.start, 10);
    let first = dl.chunk().await.unwrap().unwrap();
    assert_eq!(
        first[0],
        w.mock.state.lock().unwrap().blobs[&file.blob_id].data[10]
    );
    alice.disconnect().await;
    bob.disconnect().await;
    w.mock.stop().await;
}

fn check_mode(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(p).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_keep_their_codes() {
    let w = world(None).await;
    let mut r = w.request("alice@example.org");
    r.password = "wrong".into();
    let e = login(&r).await.unwrap_err();
    let api = e.downcast_ref::<ApiError>().expect("an API error");
    assert_eq!(api.code(), Some("invalid_credentials"));
    // A device without a valid token cannot open the stream.
    let mut alice = w.device("alice@example.org", "alice").await;
    w.mock.state.lock().unwrap().devices.clear();
    let e = alice
        .connect(Transport::WebSocket, |_| Ok(true))
        .await
        .unwrap_err();
    let r = e.downcast_ref::<super::Refusal>().expect("a refusal");
    assert_eq!((r.code.as_str(), r.fatal), ("invalid_token", true));
    w.mock.stop().await;
}
