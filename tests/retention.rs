//! Data retention export (PRODUCT.md F8) against the real appliance: retention enabled
//! with a passphrase, real clients (`outpost::client`) sending every kind of message
//! through the relay, and the exporter's journal checked on disk: every message
//! decrypted, attachments decrypted under `attachments/`, a wrong passphrase, SIGKILL
//! with an exactly-once check by message id, a full disk (a 2 MiB tmpfs) then space
//! freed, rotation by size and by time with SHA-256 manifests.

mod common;

use common::people::USER_PASSWORD;
use common::{Api, Server};
use outpost::client::Accepted;
use outpost::client::envelope::EnvelopeOptions;
use outpost::client::session::Session;
use outpost::relay::frame::Kind;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const PASS: &str = "retention test passphrase 1";
const WAIT: Duration = Duration::from_secs(60);

struct World {
    server: Server,
    owner: Api,
    net: String,
    data: tempfile::TempDir,
    profiles: tempfile::TempDir,
    env: Vec<(String, String)>,
}

fn start(data: &Path, env: &[(String, String)]) -> Server {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Server::builder().dir(data).envs(&env).start()
}

fn world(extra: &[(&str, &str)]) -> World {
    let data = tempfile::tempdir().unwrap();
    let mut env = vec![("OUTPOST_RETENTION_PASSPHRASE".to_string(), PASS.to_string())];
    for (k, v) in extra {
        env.retain(|(ek, _)| ek != k);
        env.push((k.to_string(), v.to_string()));
    }
    let server = start(data.path(), &env);
    let owner = server.owner();
    let net = owner.first_network();
    World {
        server,
        owner,
        net,
        data,
        profiles: tempfile::tempdir().unwrap(),
        env,
    }
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

impl World {
    fn folder(&self) -> PathBuf {
        match self
            .env
            .iter()
            .find(|(k, _)| k == "OUTPOST_RETENTION_FOLDER")
        {
            Some((_, v)) => PathBuf::from(v),
            None => self.data.path().join("retention"),
        }
    }

    fn retention_path(&self) -> String {
        format!("/networks/{}/data-retention", self.net)
    }

    fn enable(&self) -> Value {
        self.owner
            .put(&self.retention_path(), &json!({"enabled": true}))
            .ok()
    }

    fn state(&self) -> Value {
        self.owner.get(&self.retention_path()).ok()
    }

    fn user(&self, email: &str) {
        self.owner
            .post(
                &format!("/networks/{}/users", self.net),
                &json!({"email": email, "first_name": email.split('@').next().unwrap(),
                        "password": USER_PASSWORD}),
            )
            .ok();
    }

    async fn device(&self, username: &str) -> Session {
        common::session::connected_device(&self.server, self.profiles.path(), username).await
    }

    /// Stop (SIGKILL if `kill`) and start again on the same folders with `env`.
    fn restart(&mut self, kill: bool, env: Vec<(String, String)>) {
        if kill {
            self.server.kill();
        } else {
            self.server.stop();
        }
        self.env = env;
        self.server = start(self.data.path(), &self.env);
        self.owner = self.server.owner();
    }
}

/// Every record of every journal file in `folder/messages`, in file order.
fn journal(folder: &Path) -> Vec<Value> {
    let dir = folder.join("messages");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.ends_with(".jsonl"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut out = Vec::new();
    for n in names {
        let text = std::fs::read_to_string(dir.join(&n)).unwrap();
        for line in text.lines() {
            out.push(serde_json::from_str(line).expect("every journal line is JSON"));
        }
    }
    out
}

/// Wait until the journal holds every id in `ids`; returns the records by id.
fn wait_for_ids(folder: &Path, ids: &[String]) -> HashMap<String, Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let by_id: HashMap<String, Value> = journal(folder)
            .into_iter()
            .map(|r| (r["message_id"].as_str().unwrap().to_string(), r))
            .collect();
        if ids.iter().all(|i| by_id.contains_key(i)) {
            return by_id;
        }
        if Instant::now() > deadline {
            let missing: Vec<&String> = ids.iter().filter(|i| !by_id.contains_key(*i)).collect();
            panic!(
                "the journal lacks {} messages, e.g. {:?}; files: {:?}",
                missing.len(),
                missing.first(),
                std::fs::read_dir(folder.join("messages"))
                    .map(|d| d
                        .filter_map(|e| e.ok())
                        .map(|e| e.file_name())
                        .collect::<Vec<_>>())
                    .unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn send_kind(s: &mut Session, conv: &str, kind: Kind, content: Value) -> Accepted {
    s.send_content(
        conv,
        kind,
        &serde_json::to_vec(&content).unwrap(),
        EnvelopeOptions::default(),
    )
    .await
    .unwrap()
}

#[test]
fn every_kind_of_message_and_a_file_end_up_decrypted_in_the_journal() {
    let w = world(&[]);
    let st = w.enable();
    assert_eq!(st["enabled"], true);
    let device = st["compliance_device"]["device_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(device.starts_with("compliance-"));
    // Enabling again keeps the same key and device.
    assert_eq!(
        w.enable()["compliance_device"]["device_id"],
        device.as_str()
    );
    w.user("alice@example.test");
    w.user("bob@example.test");
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let src = w.profiles.path().join("minutes.pdf");
    std::fs::write(&src, &data).unwrap();
    let (ids, file_id, conv) = run(async {
        let mut alice = w.device("alice@example.test").await;
        let _bob = w.device("bob@example.test").await;
        let conv = alice.direct_with("bob@example.test").await.unwrap().id;
        let mut ids = Vec::new();
        let t = alice.send_text(&conv, "hello, retained").await.unwrap();
        ids.push(t.client_msg_id.clone());
        for (kind, content) in [
            (Kind::Location, json!({"lat": 48.85, "lon": 2.35})),
            (
                Kind::Edit,
                json!({"target": t.client_msg_id, "text": "hello, edited"}),
            ),
            (
                Kind::Call,
                json!({"status": "ended", "duration_secs": 42, "video": false}),
            ),
            (
                Kind::Reaction,
                json!({"target": t.client_msg_id, "emoji": "👍"}),
            ),
            (Kind::Delete, json!({"target": t.client_msg_id})),
        ] {
            ids.push(
                send_kind(&mut alice, &conv, kind, content)
                    .await
                    .client_msg_id,
            );
        }
        let (f, _) = alice
            .send_file(
                &conv,
                &src,
                Some("the minutes"),
                Default::default(),
                &mut |_, _| {},
            )
            .await
            .unwrap();
        ids.push(f.client_msg_id.clone());
        (ids, f.client_msg_id, conv)
    });
    let by_id = wait_for_ids(&w.folder(), &ids);
    let r = |i: usize| &by_id[&ids[i]];
    assert_eq!(r(0)["msgtype"], 1000);
    assert_eq!(r(0)["message"], "hello, retained");
    assert_eq!(r(0)["sender"], "alice@example.test");
    assert_eq!(r(0)["receiver"], "bob@example.test");
    assert_eq!(r(0)["vgroupid"], conv.as_str());
    assert!(r(0)["time_iso"].as_str().unwrap().len() == 23, "{}", r(0));
    assert!(r(0)["msg_ts"].as_str().unwrap().contains('.'));
    assert!(r(0).get("error").is_none(), "{}", r(0));
    assert_eq!(r(1)["msgtype"], 8000);
    assert_eq!(r(1)["location"]["latitude"], 48.85);
    assert_eq!(r(2)["msgtype"], 9000);
    assert_eq!(r(2)["message"], "hello, edited");
    assert_eq!(r(2)["target"], ids[0].as_str());
    assert_eq!(r(3)["msgtype"], 7000);
    assert_eq!(r(3)["call"]["duration_secs"], 42);
    assert_eq!(r(4)["content"]["emoji"], "👍");
    assert_eq!(r(5)["msgtype"], 4011);
    let f = &by_id[&file_id];
    assert_eq!(f["msgtype"], 6000);
    assert_eq!(f["message"], "the minutes");
    assert_eq!(f["file"]["filename"], "minutes.pdf");
    assert_eq!(f["file"]["size"], 200_000);
    let local = f["file"]["localfilename"]
        .as_str()
        .expect("the file was saved");
    assert!(local.starts_with("attachments/"), "{local}");
    assert_eq!(std::fs::read(w.folder().join(local)).unwrap(), data);
    // The room event of the new conversation is journalled too.
    let all = journal(&w.folder());
    assert!(
        all.iter()
            .any(|r| r["msgtype"] == 4001 && r["vgroupid"] == conv.as_str()),
        "no create-room event"
    );
    // Exactly once.
    for id in &ids {
        assert_eq!(
            all.iter()
                .filter(|r| r["message_id"] == id.as_str())
                .count(),
            1
        );
    }
    // The status shows the key open and the events.
    let s = w.state();
    assert_eq!(s["exporter"]["key"], "open", "{s}");
    assert!(
        s["exporter"]["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["notificationType"] == "keys_opened" && e["severity"] == "normal"),
        "{s}"
    );
    // The keys are not in clear anywhere in the store file.
    let metrics = w.server.anon().get("/metrics").text;
    assert!(
        metrics.contains("outpost_retention_messages_saved_total"),
        "metrics lack retention counters"
    );
}

#[test]
fn a_wrong_passphrase_stops_the_exporter_not_the_relay() {
    let mut w = world(&[("OUTPOST_RELAY_PURGE_INTERVAL_SECS", "1")]);
    w.enable();
    w.user("alice@example.test");
    w.user("bob@example.test");
    let mut env = w.env.clone();
    env.retain(|(k, _)| k != "OUTPOST_RETENTION_PASSPHRASE");
    env.push((
        "OUTPOST_RETENTION_PASSPHRASE".into(),
        "not the passphrase".into(),
    ));
    w.restart(false, env);
    let ids: Vec<String> = run(async {
        let mut alice = w.device("alice@example.test").await;
        let _bob = w.device("bob@example.test").await;
        let conv = alice.direct_with("bob@example.test").await.unwrap().id;
        let mut ids = Vec::new();
        for i in 0..3 {
            ids.push(
                alice
                    .send_text(&conv, &format!("m{i}"))
                    .await
                    .unwrap()
                    .client_msg_id,
            );
        }
        // One that expires long before the exporter can journal it: retention keeps it.
        let content = serde_json::to_vec(&json!({"text": "expires in a second"})).unwrap();
        let short = EnvelopeOptions {
            ttl_secs: Some(1),
            ..EnvelopeOptions::default()
        };
        ids.push(
            alice
                .send_content(&conv, Kind::Text, &content, short)
                .await
                .unwrap()
                .client_msg_id,
        );
        ids
    });
    wait_until("the critical event", || {
        let s = w.state();
        s["exporter"]["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["severity"] == "critical" && e["notificationType"] == "passphrase_wrong")
    });
    assert_eq!(w.state()["exporter"]["key"], "retention_passphrase_wrong");
    // Enabling with the wrong passphrase is refused with a clear error.
    let e = w
        .owner
        .put(&w.retention_path(), &json!({"enabled": true}))
        .expect(409, "retention_passphrase_wrong");
    assert!(e["message"].as_str().unwrap().contains("passphrase"));
    let journalled = journal(&w.folder());
    assert!(
        ids.iter()
            .all(|i| !journalled.iter().any(|r| r["message_id"] == i.as_str()))
    );
    assert!(
        w.server.lines.text().contains("passphrase_wrong"),
        "the event is logged"
    );
    // Past its expiry and several purges, the short-lived message still waits for the
    // compliance member.
    std::thread::sleep(Duration::from_secs(3));
    // With the right passphrase the waiting messages are journalled, the expired one too.
    let mut env = w.env.clone();
    env.retain(|(k, _)| k != "OUTPOST_RETENTION_PASSPHRASE");
    env.push(("OUTPOST_RETENTION_PASSPHRASE".into(), PASS.into()));
    w.restart(false, env);
    wait_for_ids(&w.folder(), &ids);
}

#[test]
fn sigkill_mid_stream_loses_nothing_and_duplicates_nothing() {
    let mut w = world(&[("OUTPOST_RETENTION_BATCH", "7")]);
    w.enable();
    w.user("alice@example.test");
    w.user("bob@example.test");
    let mut all_ids = Vec::new();
    for round in 0..3 {
        let ids: Vec<String> = run(async {
            let mut alice = w.device("alice@example.test").await;
            let conv = alice.direct_with("bob@example.test").await.unwrap().id;
            let mut ids = Vec::new();
            for i in 0..150 {
                ids.push(
                    alice
                        .send_text(&conv, &format!("round {round} message {i}"))
                        .await
                        .unwrap()
                        .client_msg_id,
                );
            }
            ids
        });
        all_ids.extend(ids);
        // Killed while the exporter is (most likely) still working through the batch.
        let env = w.env.clone();
        w.restart(true, env);
    }
    let by_id = wait_for_ids(&w.folder(), &all_ids);
    assert!(by_id.len() >= all_ids.len());
    let records = journal(&w.folder());
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for r in &records {
        *counts.entry(r["message_id"].as_str().unwrap()).or_default() += 1;
    }
    let dup: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dup.is_empty(), "duplicated: {dup:?}");
    // Seqs are strictly increasing in the journal (order kept across restarts).
    let seqs: Vec<u64> = records.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|p| p[0] < p[1]), "journal order");
}

fn manifests(folder: &Path) -> Vec<(String, String)> {
    let dir = folder.join("messages");
    let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".sha256"))
        .map(|n| (n.clone(), std::fs::read_to_string(dir.join(&n)).unwrap()))
        .collect();
    out.sort();
    out
}

/// `sha256sum -c` on every manifest.
fn check_manifests(folder: &Path) -> usize {
    let ms = manifests(folder);
    for (name, _) in &ms {
        let out = std::process::Command::new("sha256sum")
            .arg("-c")
            .arg(name)
            .current_dir(folder.join("messages"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    ms.len()
}

#[test]
fn rotation_by_size_and_by_time_with_checksum_manifests() {
    // By size: 1 KiB files. Rotation is checked between batches (a batch never spans two
    // files), so batches of 2 keep every file near the size whatever the load.
    let w = world(&[
        ("OUTPOST_RETENTION_ROTATION_SIZE_KIB", "1"),
        ("OUTPOST_RETENTION_BATCH", "2"),
    ]);
    w.enable();
    w.user("alice@example.test");
    w.user("bob@example.test");
    let ids: Vec<String> = run(async {
        let mut alice = w.device("alice@example.test").await;
        let conv = alice.direct_with("bob@example.test").await.unwrap().id;
        let mut ids = Vec::new();
        for i in 0..20 {
            let text = format!("{i} {}", "x".repeat(300));
            ids.push(alice.send_text(&conv, &text).await.unwrap().client_msg_id);
        }
        ids
    });
    wait_for_ids(&w.folder(), &ids);
    wait_until("rotations", || manifests(&w.folder()).len() >= 3);
    assert!(check_manifests(&w.folder()) >= 3);
    drop(w);

    // By time: 0.02 minutes = 1.2 s.
    let w = world(&[("OUTPOST_RETENTION_ROTATION_MINUTES", "0.02")]);
    w.enable();
    w.user("alice@example.test");
    w.user("bob@example.test");
    let id = run(async {
        let mut alice = w.device("alice@example.test").await;
        let conv = alice.direct_with("bob@example.test").await.unwrap().id;
        alice
            .send_text(&conv, "rotate me")
            .await
            .unwrap()
            .client_msg_id
    });
    wait_for_ids(&w.folder(), std::slice::from_ref(&id));
    wait_until("a rotation by time", || {
        manifests(&w.folder())
            .iter()
            .any(|(_, m)| m.contains("receivedMessages-"))
            && journal(&w.folder())
                .iter()
                .any(|r| r["message_id"] == id.as_str())
            && {
                // The file holding the message is rotated (has a manifest).
                let dir = w.folder().join("messages");
                std::fs::read_dir(&dir)
                    .unwrap()
                    .filter_map(|e| e.ok())
                    .any(|e| {
                        let n = e.file_name().into_string().unwrap();
                        n.ends_with(".jsonl")
                            && std::fs::read_to_string(e.path()).unwrap().contains(&id)
                            && dir.join(format!("{n}.sha256")).exists()
                    })
            }
    });
    assert!(check_manifests(&w.folder()) >= 1);
}

#[test]
fn a_full_disk_pauses_the_exporter_and_it_catches_up() {
    let mnt = tempfile::tempdir().unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(mnt.path())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _u = Unmount(mnt.path().to_path_buf());
    let folder = mnt.path().join("retention");
    let w = world(&[
        ("OUTPOST_RETENTION_FOLDER", folder.to_str().unwrap()),
        ("OUTPOST_RETENTION_RETRY_MAX_SECS", "1"),
    ]);
    w.enable();
    w.user("alice@example.test");
    w.user("bob@example.test");
    // Fill the disk but for a few KiB.
    let filler = mnt.path().join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![7u8; 4096];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
    }
    let ids: Vec<String> = run(async {
        let mut alice = w.device("alice@example.test").await;
        let conv = alice.direct_with("bob@example.test").await.unwrap().id;
        let mut ids = Vec::new();
        for i in 0..40 {
            let text = format!("{i} {}", "y".repeat(2000));
            ids.push(alice.send_text(&conv, &text).await.unwrap().client_msg_id);
        }
        ids
    });
    wait_until("the pause", || {
        let s = w.state();
        s["exporter"]["status"]["paused"].is_string()
            && s["exporter"]["events"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["severity"] == "critical" && e["notificationType"] == "write_failed")
    });
    std::fs::remove_file(&filler).unwrap();
    wait_for_ids(&folder, &ids);
    let records = journal(&folder);
    for id in &ids {
        let n = records
            .iter()
            .filter(|r| r["message_id"] == id.as_str())
            .count();
        assert_eq!(n, 1, "{id} journalled {n} times");
    }
    wait_until("the resume event", || {
        w.state()["exporter"]["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["notificationType"] == "resumed")
    });
}
