//! Retention sinks and exports against real components: rotated files sealed with the
//! age crate open with the `age` tool; files uploaded to a real S3-compatible server
//! (moto) leave the local folder only once the bucket holds them; a bucket that goes
//! down loses nothing; and every eDiscovery export format, produced by the `outpost`
//! binary from a journal, parses as what it claims to be.

mod common;

use common::s3::{ACCESS_KEY, REGION, S3Server, SECRET_KEY};
use mail_parser::MimeHeaders;
use outpost::config::Secret;
use outpost::retention::record::{FileRecord, Record, msgtype};
use outpost::retention::seal::Sealer;
use outpost::retention::sink::age::AgeSink;
use outpost::retention::sink::s3::{S3Config, S3Sink};
use outpost::retention::sink::{FileKind, Pipeline, finished};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

const BUCKET: &str = "outpost-export";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A site key made by `age-keygen`; returns (identity file, recipient).
fn site_key(dir: &Path) -> (PathBuf, String) {
    let key = dir.join("site.key");
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(&key)
        .output()
        .expect("run age-keygen (scripts/test-deps installs age)");
    assert!(out.status.success(), "{out:?}");
    let out = Command::new("age-keygen")
        .arg("-y")
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    (
        key,
        String::from_utf8(out.stdout).unwrap().trim().to_string(),
    )
}

fn age_decrypt(key: &Path, file: &Path) -> Vec<u8> {
    let out = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(key)
        .arg(file)
        .output()
        .expect("run age");
    assert!(
        out.status.success(),
        "age -d {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// 2026-12-01 00:00:00 UTC in milliseconds.
const DAY0: u64 = 1_796_083_200_000;

fn text(
    id: &str,
    seq: u64,
    sender: &str,
    receiver: Option<&str>,
    conv: &str,
    ms: u64,
    body: &str,
) -> Record {
    let mut r = Record::base(
        id.into(),
        seq,
        msgtype::TEXT,
        "text",
        sender,
        conv,
        (ms, ms + 86_400_000),
    );
    r.receiver = receiver.map(str::to_string);
    r.message = Some(body.into());
    r
}

/// A retention folder with a rotated journal (and its manifest) and one attachment.
struct Folder {
    _dir: tempfile::TempDir,
    root: PathBuf,
    journal_rel: String,
    journal_bytes: Vec<u8>,
    attachment_rel: String,
    attachment_bytes: Vec<u8>,
}

fn journal_records() -> Vec<Record> {
    let mut v = vec![
        text(
            "m1",
            1,
            "alice",
            Some("bob"),
            "c-direct",
            DAY0 + 3_600_000,
            "Hello Bob, the contract is attached",
        ),
        text(
            "m2",
            2,
            "bob",
            Some("alice"),
            "c-direct",
            DAY0 + 3_700_000,
            "Thanks, \"reading\" it, now",
        ),
    ];
    let mut f = Record::base(
        "m3".into(),
        3,
        msgtype::FILE,
        "file",
        "alice",
        "c-direct",
        (DAY0 + 3_800_000, DAY0 + 90_000_000),
    );
    f.receiver = Some("bob".into());
    f.message = Some("contract v2".into());
    f.file = Some(FileRecord {
        guid: "blob-1".into(),
        filename: "contract.pdf".into(),
        size: 0, // set below
        mime: "application/pdf".into(),
        sha256: "00".into(),
        localfilename: Some("attachments/blob-1/contract.pdf".into()),
        plaintext_sha256: None,
        error: None,
    });
    v.push(f);
    let mut e = Record::base(
        "m4".into(),
        4,
        msgtype::EDIT,
        "edit",
        "bob",
        "c-direct",
        (DAY0 + 3_900_000, DAY0 + 90_000_000),
    );
    e.receiver = Some("alice".into());
    e.target = Some("m2".into());
    e.message = Some("Thanks, reading it now".into());
    v.push(e);
    v.push(text(
        "m5",
        5,
        "carol",
        None,
        "c-room",
        DAY0 + 4_000_000,
        "Room message,\nwith a line break",
    ));
    let mut d = Record::base(
        "m6".into(),
        6,
        msgtype::DELETE_MESSAGE,
        "delete",
        "carol",
        "c-room",
        (DAY0 + 4_100_000, DAY0 + 90_000_000),
    );
    d.target = Some("m5".into());
    v.push(d);
    let mut l = Record::base(
        "event-7".into(),
        7,
        msgtype::LEAVE_ROOM,
        "membership",
        "dave",
        "c-room",
        (DAY0 + 4_200_000, DAY0 + 90_000_000),
    );
    l.control = Some(json!({"change": "left", "user": "dave"}));
    v.push(l);
    // The next day: outside a one-day range.
    v.push(text(
        "m8",
        8,
        "alice",
        Some("bob"),
        "c-direct",
        DAY0 + 90_000_000,
        "tomorrow",
    ));
    v
}

fn folder() -> Folder {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("retention");
    std::fs::create_dir_all(root.join("messages")).unwrap();
    std::fs::create_dir_all(root.join("attachments/blob-1")).unwrap();
    // A PDF-like attachment larger than one S3 part (8 MiB): a multipart upload.
    let mut attachment_bytes = b"%PDF-1.7\n".to_vec();
    attachment_bytes.extend((0..9 * 1024 * 1024u32).map(|i| (i % 251) as u8));
    std::fs::write(
        root.join("attachments/blob-1/contract.pdf"),
        &attachment_bytes,
    )
    .unwrap();
    let mut journal_bytes = Vec::new();
    for mut r in journal_records() {
        if let Some(f) = r.file.as_mut() {
            f.size = attachment_bytes.len() as u64;
        }
        r.to_line(&mut journal_bytes);
    }
    let name = "receivedMessages-20261201T000000Z.jsonl";
    std::fs::write(root.join("messages").join(name), &journal_bytes).unwrap();
    let sum = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&journal_bytes))
    };
    std::fs::write(
        root.join("messages").join(format!("{name}.sha256")),
        format!("{sum}  {name}\n"),
    )
    .unwrap();
    Folder {
        _dir: dir,
        root,
        journal_rel: format!("messages/{name}"),
        journal_bytes,
        attachment_rel: "attachments/blob-1/contract.pdf".into(),
        attachment_bytes,
    }
}

/// Hand the folder's finished files (journal, manifest, attachment) to `pipeline`.
async fn deliver_all(f: &Folder, pipeline: &Pipeline) -> anyhow::Result<()> {
    let manifest_rel = format!("{}.sha256", f.journal_rel);
    for (rel, kind) in [
        (f.journal_rel.as_str(), FileKind::Journal),
        (manifest_rel.as_str(), FileKind::Manifest),
        (f.attachment_rel.as_str(), FileKind::Attachment),
    ] {
        // A file a step already replaced or uploaded is not described again.
        let Ok(file) = finished(&f.root, rel, kind) else {
            continue;
        };
        pipeline.deliver(file).await?;
    }
    Ok(())
}

fn s3_config(server: &S3Server, prefix: &str) -> S3Config {
    S3Config {
        bucket: BUCKET.into(),
        endpoint: server.endpoint(),
        region: REGION.into(),
        prefix: prefix.into(),
        access_key_id: ACCESS_KEY.into(),
        secret_access_key: Secret::new(SECRET_KEY),
        path_style: true,
        timeout_secs: 10,
    }
}

#[test]
fn sealed_rotated_files_decrypt_with_the_age_tool_to_exactly_the_journal() {
    let f = folder();
    let (key, recipient) = site_key(f._dir.path());
    let sealer = Sealer::from_config(&[recipient], None).unwrap().unwrap();
    let pipeline = Pipeline::new(vec![Arc::new(AgeSink::new(sealer))]);
    runtime().block_on(deliver_all(&f, &pipeline)).unwrap();

    let journal = f.root.join(&f.journal_rel);
    let sealed = PathBuf::from(format!("{}.age", journal.display()));
    assert!(
        !journal.exists(),
        "the plain journal is removed once sealed"
    );
    assert!(!PathBuf::from(format!("{}.sha256", journal.display())).exists());
    assert_eq!(age_decrypt(&key, &sealed), f.journal_bytes);
    let attachment = f.root.join(format!("{}.age", f.attachment_rel));
    assert!(!f.root.join(&f.attachment_rel).exists());
    assert_eq!(age_decrypt(&key, &attachment), f.attachment_bytes);

    // The manifest covers what is kept: sha256sum -c checks the sealed file.
    let out = Command::new("sha256sum")
        .arg("-c")
        .arg(format!("{}.age.sha256", journal.display()))
        .current_dir(journal.parent().unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Another key does not open it.
    let other = tempfile::tempdir().unwrap();
    let (other_key, _) = site_key(other.path());
    let out = Command::new("age")
        .args(["-d", "-i"])
        .arg(&other_key)
        .arg(&sealed)
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn rotated_files_go_to_the_bucket_under_the_prefix_and_leave_the_folder_after() {
    let server = S3Server::start();
    server.create_bucket(BUCKET);
    let f = folder();
    let sink = S3Sink::new(&s3_config(&server, "net-1")).unwrap();
    let pipeline = Pipeline::new(vec![Arc::new(sink)]);
    runtime().block_on(deliver_all(&f, &pipeline)).unwrap();

    let keys = server.list(BUCKET);
    let names: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "net-1/attachments/blob-1/contract.pdf",
            "net-1/messages/receivedMessages-20261201T000000Z.jsonl",
            "net-1/messages/receivedMessages-20261201T000000Z.jsonl.sha256",
        ]
    );
    assert_eq!(
        server.get(BUCKET, &format!("net-1/{}", f.journal_rel)),
        f.journal_bytes
    );
    assert_eq!(
        server.get(BUCKET, &format!("net-1/{}", f.attachment_rel)),
        f.attachment_bytes,
        "the multipart upload holds exactly the file"
    );
    assert!(!f.root.join(&f.journal_rel).exists());
    assert!(!f.root.join(&f.attachment_rel).exists());
    assert!(!f.root.join(format!("{}.sha256", f.journal_rel)).exists());
}

#[test]
fn sealed_and_uploaded_files_in_the_bucket_open_with_the_age_tool() {
    let server = S3Server::start();
    server.create_bucket(BUCKET);
    let f = folder();
    let (key, recipient) = site_key(f._dir.path());
    let pipeline = Pipeline::new(vec![
        Arc::new(AgeSink::new(
            Sealer::from_config(&[recipient], None).unwrap().unwrap(),
        )),
        Arc::new(S3Sink::new(&s3_config(&server, "")).unwrap()),
    ]);
    runtime().block_on(deliver_all(&f, &pipeline)).unwrap();
    let names: Vec<String> = server.list(BUCKET).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        names,
        [
            "attachments/blob-1/contract.pdf.age",
            "messages/receivedMessages-20261201T000000Z.jsonl.age",
            "messages/receivedMessages-20261201T000000Z.jsonl.age.sha256",
        ]
    );
    let fetched = f._dir.path().join("fetched.age");
    std::fs::write(&fetched, server.get(BUCKET, &names[1])).unwrap();
    assert_eq!(age_decrypt(&key, &fetched), f.journal_bytes);
    let remaining: Vec<_> = walk(&f.root);
    assert!(remaining.is_empty(), "left locally: {remaining:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_bucket_that_is_down_loses_nothing_and_everything_arrives_once_when_it_is_back() {
    let mut server = S3Server::start();
    server.create_bucket(BUCKET);
    let f = folder();
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = errors.clone();
    let sink = Arc::new(
        S3Sink::new(&s3_config(&server, "net-1"))
            .unwrap()
            .on_error(move || {
                counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }),
    );
    let pipeline = Pipeline::new(vec![sink.clone()]);
    let rt = runtime();

    server.stop();
    let e = rt.block_on(deliver_all(&f, &pipeline)).unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains(&format!(
            "Failed to put file {} on S3 bucket. Error: ",
            f.journal_rel
        )),
        "{msg}"
    );
    assert!(sink.post_errors() >= 1);
    assert_eq!(
        errors.load(std::sync::atomic::Ordering::Relaxed),
        sink.post_errors()
    );
    assert_eq!(
        std::fs::read(f.root.join(&f.journal_rel)).unwrap(),
        f.journal_bytes,
        "the journal stays in the folder while the bucket is down"
    );

    // Back (moto restarts empty: the bucket is made again), and the retry delivers.
    server.restart();
    server.create_bucket(BUCKET);
    rt.block_on(deliver_all(&f, &pipeline)).unwrap();
    // A repeated delivery (as after a crash between upload and removal) is harmless.
    rt.block_on(pipeline.deliver(outpost::retention::sink::Finished {
        path: f.root.join(&f.journal_rel),
        relative: f.journal_rel.clone(),
        kind: FileKind::Journal,
        size: f.journal_bytes.len() as u64,
        sha256: String::new(),
    }))
    .unwrap();
    let keys = server.list(BUCKET);
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert_eq!(
        server.get(BUCKET, &format!("net-1/{}", f.journal_rel)),
        f.journal_bytes
    );
    assert!(walk(&f.root).is_empty());
}

// ---- eDiscovery exports through the CLI -------------------------------------------

fn export(root: &Path, out: &Path, format: &str, extra: &[&str]) -> (i32, String, String) {
    export_range(root, out, format, ("2026-12-01", "2026-12-02"), extra)
}

fn export_range(
    root: &Path,
    out: &Path,
    format: &str,
    (from, to): (&str, &str),
    extra: &[&str],
) -> (i32, String, String) {
    let mut args = vec![
        "retention",
        "export",
        "--dir",
        root.to_str().unwrap(),
        "--from",
        from,
        "--to",
        to,
        "--format",
        format,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    common::outpost(&args, &[])
}

#[test]
fn jsonl_export_holds_exactly_the_records_of_the_range() {
    let f = folder();
    let out = f._dir.path().join("out");
    let (code, stdout, stderr) = export(&f.root, &out, "jsonl", &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stderr.contains("read 1/1"), "progress: {stderr}");
    let text = std::fs::read_to_string(out.join("export.jsonl")).unwrap();
    let ids: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["message_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids, ["m1", "m2", "m3", "m4", "m5", "m6", "event-7"]);
}

#[test]
fn csv_export_is_one_rfc4180_row_per_message() {
    let f = folder();
    let out = f._dir.path().join("out");
    let (code, stdout, stderr) = export(&f.root, &out, "csv", &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let bytes = std::fs::read(out.join("export.csv")).unwrap();
    assert!(bytes.windows(2).any(|w| w == b"\r\n"), "CRLF line ends");
    let mut r = csv::Reader::from_reader(bytes.as_slice());
    let headers = r.headers().unwrap().clone();
    assert_eq!(&headers[0], "message_id");
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    assert_eq!(rows.len(), 7);
    assert_eq!(&rows[1][col("message")], "Thanks, \"reading\" it, now");
    assert_eq!(&rows[4][col("message")], "Room message,\nwith a line break");
    assert_eq!(&rows[2][col("file_name")], "contract.pdf");
    assert_eq!(&rows[0][col("time_utc")], "2026-12-01T01:00:00.000Z");
    assert_eq!(&rows[0][col("receiver")], "bob");
}

#[test]
fn eml_export_is_parseable_messages_with_the_attachment() {
    let f = folder();
    let out = f._dir.path().join("out");
    let (code, stdout, stderr) = export(&f.root, &out, "eml", &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let mut files: Vec<PathBuf> = std::fs::read_dir(out.join("eml"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 7);
    let raw = std::fs::read(&files[2]).unwrap();
    let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
    assert_eq!(m.from().unwrap().first().unwrap().name(), Some("alice"));
    assert_eq!(
        m.to().unwrap().first().unwrap().address(),
        Some("bob@outpost.invalid")
    );
    assert_eq!(m.attachment_count(), 1);
    let a = m.attachment(0).unwrap();
    assert_eq!(a.attachment_name(), Some("contract.pdf"));
    assert_eq!(a.contents(), f.attachment_bytes.as_slice());
    assert!(m.body_text(0).unwrap().contains("contract v2"));

    // One transcript per conversation and day.
    let out2 = f._dir.path().join("out2");
    let (code, stdout, stderr) = export(&f.root, &out2, "eml", &["--eml-per", "conversation-day"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let n = std::fs::read_dir(out2.join("eml")).unwrap().count();
    assert_eq!(n, 2, "c-direct and c-room on 2026-12-01");
    let raw = std::fs::read(out2.join("eml/c-room-2026-12-01.eml")).unwrap();
    let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
    assert!(m.body_text(0).unwrap().contains("carol: Room message"));
}

#[test]
fn rsmf_export_is_an_eml_whose_zip_holds_a_valid_manifest() {
    let f = folder();
    let out = f._dir.path().join("out");
    let (code, stdout, stderr) = export(&f.root, &out, "rsmf", &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let raw = std::fs::read(out.join("export.rsmf")).unwrap();
    let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
    assert_eq!(m.header_raw("X-RSMF-Version").map(str::trim), Some("2.0.0"));
    // 7 records: the edit and the deletion are folded into the events they change.
    assert_eq!(m.header_raw("X-RSMF-EventCount").map(str::trim), Some("5"));
    let zip_part = (0..m.attachment_count())
        .map(|i| m.attachment(i as u32).unwrap())
        .find(|a| a.attachment_name() == Some("rsmf.zip"))
        .expect("an rsmf.zip attachment");
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(zip_part.contents().to_vec())).unwrap();
    let manifest: Value = {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut zip.by_name("rsmf_manifest.json").unwrap(), &mut s)
            .unwrap();
        serde_json::from_str(&s).unwrap()
    };
    assert_eq!(manifest["version"], "2.0.0");
    let ids = |k: &str| -> Vec<String> {
        manifest[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids("participants"), ["alice", "bob", "carol", "dave"]);
    assert_eq!(ids("conversations"), ["c-direct", "c-room"]);
    let conv = &manifest["conversations"][0];
    assert_eq!(conv["type"], "direct");
    assert_eq!(conv["platform"], "outpost");
    let events = manifest["events"].as_array().unwrap();
    for e in events {
        assert!(e["type"].is_string() && e["timestamp"].is_string(), "{e}");
        let p = e["participant"].as_str().unwrap();
        assert!(ids("participants").iter().any(|x| x == p));
    }
    // The edit is on its target, the deletion marks its target, the file is in the zip.
    let m2 = events.iter().find(|e| e["id"] == "m2").unwrap();
    assert_eq!(m2["edits"][0]["new"], "Thanks, reading it now");
    assert_eq!(
        events.iter().find(|e| e["id"] == "m5").unwrap()["deleted"],
        true
    );
    assert_eq!(
        events.iter().find(|e| e["id"] == "event-7").unwrap()["type"],
        "leave"
    );
    let file = events.iter().find(|e| e["id"] == "m3").unwrap();
    let name = file["attachments"][0]["id"].as_str().unwrap();
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut zip.by_name(name).unwrap(), &mut bytes).unwrap();
    assert_eq!(bytes, f.attachment_bytes);
}

#[test]
fn sealed_journals_export_with_the_identity_and_refuse_without_it() {
    let f = folder();
    let (key, recipient) = site_key(f._dir.path());
    let pipeline = Pipeline::new(vec![Arc::new(AgeSink::new(
        Sealer::from_config(&[recipient], None).unwrap().unwrap(),
    ))]);
    runtime().block_on(deliver_all(&f, &pipeline)).unwrap();
    let out = f._dir.path().join("out");
    let (code, _, stderr) = export(&f.root, &out, "jsonl", &[]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("[identity_required]") && stderr.contains("--identity"),
        "{stderr}"
    );
    let (code, stdout, stderr) = export(
        &f.root,
        &out,
        "rsmf",
        &["--identity", key.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let raw = std::fs::read(out.join("export.rsmf")).unwrap();
    let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
    assert_eq!(
        m.header_raw("X-RSMF-AttachmentCount").map(str::trim),
        Some("1")
    );
}

#[test]
fn bad_ranges_get_a_code_and_a_sentence() {
    let f = folder();
    let out = f._dir.path().join("out");
    let (code, _, stderr) = export_range(&f.root, &out, "csv", ("2026-12-02", "2026-12-01"), &[]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("[bad_range]") && stderr.contains("must be before"),
        "{stderr}"
    );
    let (code, _, stderr) = export_range(&f.root, &out, "csv", ("last week", "2026-12-01"), &[]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("[bad_range]") && stderr.contains("--from"),
        "{stderr}"
    );
    let empty = tempfile::tempdir().unwrap();
    let (code, _, stderr) = export(empty.path(), &out, "csv", &[]);
    assert_eq!(code, 1);
    assert!(stderr.contains("[no_journal]"), "{stderr}");
}

// ---- End to end: a running appliance, the exporter, age and the bucket ------------

mod e2e {
    use super::*;
    use common::people::USER_PASSWORD;
    use common::{Api, Server};

    use outpost::client::session::Session;
    use std::time::{Duration, Instant};

    const PASS: &str = "retention sinks passphrase 1";
    const WAIT: Duration = Duration::from_secs(90);

    pub struct Appliance {
        pub server: Server,
        pub owner: Api,
        pub net: String,
        pub data: tempfile::TempDir,
        pub profiles: tempfile::TempDir,
    }

    impl Appliance {
        pub fn start(env: &[(&str, String)]) -> Appliance {
            let data = tempfile::tempdir().unwrap();
            let mut all: Vec<(&str, &str)> = vec![
                ("OUTPOST_RETENTION_PASSPHRASE", PASS),
                ("OUTPOST_RETENTION_RETRY_MAX_SECS", "1"),
            ];
            all.extend(env.iter().map(|(k, v)| (*k, v.as_str())));
            let server = Server::builder().dir(data.path()).envs(&all).start();
            let owner = server.owner();
            let net = owner.first_network();
            Appliance {
                server,
                owner,
                net,
                data,
                profiles: tempfile::tempdir().unwrap(),
            }
        }

        pub fn folder(&self) -> PathBuf {
            self.data.path().join("retention")
        }

        pub fn enable(&self) {
            let st = self
                .owner
                .put(
                    &format!("/networks/{}/data-retention", self.net),
                    &json!({"enabled": true}),
                )
                .ok();
            assert_eq!(st["enabled"], true, "{st}");
        }

        pub fn state(&self) -> Value {
            self.owner
                .get(&format!("/networks/{}/data-retention", self.net))
                .ok()
        }

        pub fn user(&self, email: &str) {
            self.owner
                .post(
                    &format!("/networks/{}/users", self.net),
                    &json!({"email": email, "first_name": email.split('@').next().unwrap(),
                            "password": USER_PASSWORD}),
                )
                .ok();
        }

        pub async fn device(&self, username: &str) -> Session {
            common::session::connected_device(&self.server, self.profiles.path(), username).await
        }
    }

    pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + WAIT;
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Every journal record in the bucket (sealed journal objects decrypted with the
    /// `age` tool), and the attachment objects decrypted, by key.
    pub fn bucket_contents(
        s3: &S3Server,
        key: &Path,
        scratch: &Path,
    ) -> (Vec<Value>, Vec<(String, Vec<u8>)>) {
        let mut records = Vec::new();
        let mut files = Vec::new();
        for (k, _) in s3.list(BUCKET) {
            if !k.ends_with(".age") {
                continue;
            }
            let tmp = scratch.join("object.age");
            std::fs::write(&tmp, s3.get(BUCKET, &k)).unwrap();
            let plain = age_decrypt(key, &tmp);
            if k.contains("/messages/") {
                for line in String::from_utf8(plain).unwrap().lines() {
                    records.push(serde_json::from_str(line).unwrap());
                }
            } else {
                files.push((k, plain));
            }
        }
        (records, files)
    }

    pub fn count(records: &[Value], id: &str) -> usize {
        records.iter().filter(|r| r["message_id"] == id).count()
    }
}

#[test]
fn through_the_appliance_every_message_reaches_the_bucket_sealed_once_even_across_an_outage() {
    use e2e::*;
    let mut s3 = S3Server::start();
    s3.create_bucket(BUCKET);
    let keys = tempfile::tempdir().unwrap();
    let (key, recipient) = site_key(keys.path());
    let app = Appliance::start(&[
        ("OUTPOST_RETENTION_ROTATION_MINUTES", "0.02".into()),
        ("OUTPOST_RETENTION_AGE_RECIPIENTS", recipient),
        ("OUTPOST_RETENTION_S3_BUCKET", BUCKET.into()),
        ("OUTPOST_RETENTION_S3_ENDPOINT", s3.endpoint()),
        ("OUTPOST_RETENTION_S3_PREFIX", "site-1".into()),
        ("OUTPOST_RETENTION_S3_ACCESS_KEY_ID", ACCESS_KEY.into()),
        ("OUTPOST_RETENTION_S3_SECRET_ACCESS_KEY", SECRET_KEY.into()),
        ("OUTPOST_RETENTION_S3_TIMEOUT_SECS", "5".into()),
    ]);
    app.enable();
    app.user("alice@example.test");
    app.user("bob@example.test");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 253) as u8).collect();
    let src = app.profiles.path().join("minutes.pdf");
    std::fs::write(&src, &data).unwrap();
    let rt = runtime();
    let mut alice = rt.block_on(async {
        let alice = app.device("alice@example.test").await;
        let _bob = app.device("bob@example.test").await;
        alice
    });
    let conv = rt
        .block_on(alice.direct_with("bob@example.test"))
        .unwrap()
        .id;
    let mut first = Vec::new();
    rt.block_on(async {
        for i in 0..3 {
            let t = alice
                .send_text(&conv, &format!("retained {i}"))
                .await
                .unwrap();
            first.push(t.client_msg_id);
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
        first.push(f.client_msg_id);
    });

    // Rotated by time, sealed, uploaded: the bucket holds every message, decrypted by
    // the age tool, and the attachment.
    let scratch = tempfile::tempdir().unwrap();
    wait_until("the first messages in the bucket", || {
        let (records, files) = bucket_contents(&s3, &key, scratch.path());
        first.iter().all(|id| count(&records, id) == 1) && files.iter().any(|(_, b)| *b == data)
    });
    let keys_now: Vec<String> = s3.list(BUCKET).into_iter().map(|(k, _)| k).collect();
    assert!(
        keys_now
            .iter()
            .all(|k| k.starts_with("site-1/messages/") || k.starts_with("site-1/attachments/")),
        "{keys_now:?}"
    );
    assert!(
        keys_now
            .iter()
            .all(|k| k.ends_with(".age") || k.ends_with(".age.sha256")),
        "only sealed files leave the appliance: {keys_now:?}"
    );
    // The local copies of uploaded files are gone.
    wait_until("the attachment to leave the folder", || {
        walk(&app.folder().join("attachments")).is_empty()
    });

    // The bucket goes down: the relay keeps accepting, the exporter pauses with the
    // reference's critical event and counts S3_Post_Errors; nothing is lost.
    s3.stop();
    let mut second = Vec::new();
    rt.block_on(async {
        for i in 0..5 {
            let t = alice
                .send_text(&conv, &format!("during the outage {i}"))
                .await
                .unwrap();
            second.push(t.client_msg_id);
        }
    });
    wait_until("the critical event of the failed upload", || {
        let st = app.state();
        st["exporter"]["events"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| {
                e["severity"] == "critical"
                    && e["message"].as_str().is_some_and(|m| {
                        m.contains("Failed to put file") && m.contains("on S3 bucket. Error: ")
                    })
            })
    });
    let st = app.state();
    assert!(st["exporter"]["status"]["paused"].is_string(), "{st}");
    let metrics = app.server.anon().get("/metrics").text;
    let errors: f64 = metrics
        .lines()
        .find(|l| l.starts_with("outpost_retention_s3_post_errors_total "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(errors >= 1.0, "S3_Post_Errors: {metrics}");
    // What is waiting is still on the appliance, sealed.
    let local: Vec<PathBuf> = walk(&app.folder().join("messages"));
    assert!(
        local
            .iter()
            .any(|p| p.to_string_lossy().ends_with(".jsonl.age")),
        "{local:?}"
    );

    // Back up (moto restarts empty): everything from the outage arrives, once.
    s3.restart();
    s3.create_bucket(BUCKET);
    wait_until("the outage's messages in the bucket", || {
        let (records, _) = bucket_contents(&s3, &key, scratch.path());
        second.iter().all(|id| count(&records, id) >= 1)
    });
    let (records, _) = bucket_contents(&s3, &key, scratch.path());
    for id in &second {
        assert_eq!(count(&records, id), 1, "{id} exactly once");
    }
    wait_until("the exporter to resume", || {
        app.state()["exporter"]["status"]["paused"].is_null()
    });
}
