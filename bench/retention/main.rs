//! The retention exporter's throughput (issue 7): 1.5 million messages, 5% of them with
//! an attachment, through the exporter into the local folder.
//!
//! Set-up, through the real server: retention enabled with a passphrase (the compliance
//! key pair is created and the compliance device published), two people, a direct
//! conversation and one uploaded attachment, sent once through the relay. Then the server
//! stops and the compliance mailbox is filled directly through the store's typed
//! interface (`relay::mailbox::store_batch`) with envelopes the reference client sealed
//! and signed exactly as it does when sending (to the compliance device's key, from the
//! person's device): the benchmark measures the exporter, not the senders. The server
//! starts again and the exporter drains the mailbox: from its first record to its last,
//! messages/s and MB/s (journal and attachment bytes written, decrypted).
//!
//! Then the same run again on a fresh appliance with an age recipient configured (and
//! journal files rotating every 64 MiB): every journal file and attachment is sealed to
//! it, and the time runs until the last one is sealed.
//!
//! `RETENTION_BENCH_MESSAGES` sets the count (default 1,500,000; e.g. 100000 for a short
//! run). Last line: `key=value` figures.

#[allow(dead_code)]
#[path = "../common/mod.rs"]
mod common;

use anyhow::{Context, Result, bail};
use common::{PASSWORD, Server, temp_data_dir};
use outpost::client::api::ConversationDevice;
use outpost::client::content::{FileContent, TextContent};
use outpost::client::envelope::{EnvelopeOptions, Outgoing, seal_envelope};
use outpost::client::session::{LoginRequest, Session, login};
use outpost::relay::frame::{Attachment, Kind};
use outpost::relay::mailbox::{Body, EnvelopeBody, Item, NewItem, store_batch};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

const PASS: &str = "bench retention passphrase";
const TARGET: f64 = 20_000.0;
const REFERENCE: f64 = 3.0;
const ATTACHMENT_BYTES: usize = 16 * 1024;

fn main() -> std::process::ExitCode {
    common::main_with(run)
}

struct Setup {
    net: String,
    compliance_id: String,
    compliance_x25519: String,
    conv: String,
    alice: Session,
    alice_id: String,
    file: outpost::client::content::FileRef,
}

async fn admin(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value> {
    let mut req = http
        .request(method, format!("{base}/admin/api/v1{path}"))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await?;
    let status = res.status();
    let v: Value = res.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{path}: {status} {v}");
    }
    Ok(v)
}

fn http_for(server: &Server) -> Result<reqwest::Client> {
    let pem = std::fs::read(server.ca_file())?;
    Ok(reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem)?)
        .timeout(Duration::from_secs(60))
        // An idle HTTP/2 connection would hold the server's graceful stop.
        .http1_only()
        .build()?)
}

async fn sign_in(http: &reqwest::Client, base: &str) -> Result<String> {
    let v: Value = http
        .post(format!("{base}/admin/api/v1/sessions"))
        .json(&json!({"username": "owner", "password": PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    v["token"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("sign-in failed: {v}"))
}

async fn setup(server: &mut Server, dir: &Path) -> Result<Setup> {
    let base = server.base_url()?;
    let http = http_for(server)?;
    let token = sign_in(&http, &base).await?;
    let nets = admin(
        &http,
        &base,
        &token,
        reqwest::Method::GET,
        "/networks",
        None,
    )
    .await?;
    let net = nets["items"][0]["id"]
        .as_str()
        .context("no network")?
        .to_string();
    let st = admin(
        &http,
        &base,
        &token,
        reqwest::Method::PUT,
        &format!("/networks/{net}/data-retention"),
        Some(json!({"enabled": true})),
    )
    .await?;
    let compliance_id = st["compliance_device"]["device_id"]
        .as_str()
        .context("no compliance device")?
        .to_string();
    let compliance_x25519 = st["compliance_device"]["x25519"]
        .as_str()
        .unwrap()
        .to_string();
    let mut alice_id = String::new();
    for who in ["alice", "bob"] {
        let u = admin(
            &http,
            &base,
            &token,
            reqwest::Method::POST,
            &format!("/networks/{net}/users"),
            Some(
                json!({"email": format!("{who}@bench.test"), "first_name": who,
                        "password": "bench-user-password-1"}),
            ),
        )
        .await?;
        if who == "alice" {
            alice_id = u["id"].as_str().unwrap().to_string();
        }
    }
    let mut sessions = Vec::new();
    for who in ["alice", "bob"] {
        let out = login(&LoginRequest {
            url: base.clone(),
            ca_cert: Some(server.ca_file()),
            insecure: false,
            quic_addr: None,
            network_id: None,
            username: format!("{who}@bench.test"),
            password: "bench-user-password-1".into(),
            device_name: "bench".into(),
        })
        .await?;
        let p = dir.join(format!("{who}.json"));
        out.profile.save(&p)?;
        sessions.push(Session::open(&p)?);
    }
    let mut alice = sessions.remove(0);
    alice
        .connect(outpost::client::Transport::WebSocket, |_| Ok(true))
        .await?;
    let conv = alice.direct_with("bob@bench.test").await?.id;
    let src = dir.join("attachment.bin");
    let data: Vec<u8> = (0..ATTACHMENT_BYTES)
        .map(|i| (i * 13 % 251) as u8)
        .collect();
    std::fs::write(&src, &data)?;
    // Sent once through the relay, so the blob is complete and referenced.
    let (_, file) = alice
        .send_file(&conv, &src, None, Default::default(), &mut |_, _| {})
        .await?;
    alice.disconnect().await;
    Ok(Setup {
        net,
        compliance_id,
        compliance_x25519,
        conv,
        alice,
        alice_id,
        file,
    })
}

/// The attachment of file message `i`: its own blob, with the uploaded attachment's
/// content (so the exporter saves a file per file message, as on a real site).
fn blob_id(i: usize) -> String {
    format!("bench{i:016x}")
}

/// Seal `n` envelopes (every 20th a file message with its own attachment) on every core
/// and store them in the compliance mailbox.
fn fill(data_dir: &Path, s: &Setup, n: usize) -> Result<()> {
    let store = outpost::store::Store::open(
        &data_dir.join(outpost::store::DB_FILE),
        &outpost::config::StoreConfig::default(),
    )
    .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let devices = vec![ConversationDevice {
        user_id: "compliance".into(),
        device_id: s.compliance_id.clone(),
        x25519: s.compliance_x25519.clone(),
        ed25519: String::new(),
        compliance: true,
    }];
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    const CHUNK: usize = 20_000;
    let now = outpost::relay::now_ms();
    let mut done = 0;
    while done < n {
        let count = CHUNK.min(n - done);
        let per = count.div_ceil(threads);
        let items: Vec<NewItem> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..threads)
                .map(|t| {
                    let devices = &devices;
                    sc.spawn(move || {
                        let mut rng = rand::rng();
                        let lo = done + t * per;
                        let hi = (lo + per).min(done + count);
                        (lo..hi)
                            .map(|i| {
                                let id = uuid::Uuid::now_v7().to_string();
                                let file = i % 20 == 19;
                                let (kind, content, attachments) = if file {
                                    // Its own attachment (blob id), sharing the uploaded
                                    // content, as `blob_ids` below creates it.
                                    let mut f = s.file.clone();
                                    f.blob_id = blob_id(i);
                                    let c = FileContent {
                                        text: Some(format!("file {i}")),
                                        file: f,
                                    };
                                    (
                                        Kind::File,
                                        serde_json::to_vec(&c).unwrap(),
                                        vec![Attachment { blob_id: blob_id(i) }],
                                    )
                                } else {
                                    let c = TextContent {
                                        text: format!(
                                            "message {i}: the quarterly figures are in the shared folder, please review them before the call"
                                        ),
                                    };
                                    (Kind::Text, serde_json::to_vec(&c).unwrap(), Vec::new())
                                };
                                let out = Outgoing {
                                    sender_device_id: &s.alice.profile().device_id,
                                    conversation_id: &s.conv,
                                    client_msg_id: &id,
                                    kind,
                                    content: &content,
                                };
                                let env = seal_envelope(
                                    &mut rng,
                                    s.alice.keys(),
                                    &out,
                                    devices,
                                    EnvelopeOptions {
                                        attachments: attachments.clone(),
                                        ..Default::default()
                                    },
                                )
                                .expect("sealing works");
                                let sealed = env.keys[0].sealed.clone();
                                let item = Item {
                                    server_time: now,
                                    expires_at: now + 30 * 86_400_000,
                                    devices: vec![devices[0].device_id.clone()],
                                    sealed: vec![sealed.clone()],
                                    body: Body::Envelope(EnvelopeBody {
                                        conversation_id: s.conv.clone(),
                                        sender_user_id: s.alice_id.clone(),
                                        sender_device_id: s.alice.profile().device_id.clone(),
                                        client_msg_id: id.clone(),
                                        kind,
                                        bor_secs: 0,
                                        forwarded: false,
                                        ciphertext: env.ciphertext,
                                        attachments,
                                        signature: env.signature,
                                    }),
                                };
                                NewItem::new(
                                    &item,
                                    vec![(devices[0].device_id.clone(), sealed)],
                                    Vec::new(),
                                    None,
                                )
                                .expect("encodes")
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        store
            .write_now(|tx| {
                for i in (done..done + count).filter(|i| i % 20 == 19) {
                    outpost::relay::blob::duplicate(tx, &s.file.blob_id, &blob_id(i))?;
                }
                store_batch(tx, &items).map(|_| ())
            })
            .map_err(|e| anyhow::anyhow!("{}", e.message))?;
        done += count;
    }
    store.close();
    let _ = &s.net;
    Ok(())
}

/// Visit every file below `dir` with its name and size.
fn walk(dir: &Path, f: &mut impl FnMut(&str, u64)) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, f);
        } else if let Ok(m) = e.metadata() {
            f(&e.file_name().to_string_lossy(), m.len());
        }
    }
}

fn folder_bytes(dir: &Path) -> u64 {
    let mut n = 0;
    walk(dir, &mut |_, len| n += len);
    n
}

fn config_file(dir: &Path, age_recipient: Option<&str>) -> Result<std::path::PathBuf> {
    let p = dir.join("bench.toml");
    let mut cfg = format!("[retention]\npassphrase = \"{PASS}\"\nbatch = 8192\n");
    if let Some(r) = age_recipient {
        // Journal files rotate (and are sealed) every 64 MiB, as a site would see them.
        cfg.push_str(&format!(
            "age_recipients = [\"{r}\"]\nrotation_size_kib = 65536\n"
        ));
    }
    std::fs::write(&p, cfg)?;
    Ok(p)
}

/// Files in the folder whose names end in `.age`.
fn sealed_files(dir: &Path) -> usize {
    let mut n = 0;
    walk(dir, &mut |name, _| n += usize::from(name.ends_with(".age")));
    n
}

/// Plain files the age step has still to seal: attachments, and journal files but the
/// one being written.
fn unsealed(folder: &Path) -> usize {
    let plain = |dir: &Path| {
        let mut n = 0;
        walk(dir, &mut |name, _| {
            n += usize::from(
                !name.starts_with('.') && !name.ends_with(".age") && !name.ends_with(".sha256"),
            )
        });
        n
    };
    plain(&folder.join("attachments")) + plain(&folder.join("messages")).saturating_sub(1)
}

/// One run: a fresh appliance, its compliance mailbox filled with `n` envelopes, the
/// exporter timed from its first record until the last is journalled (and, with age,
/// until every finished file is sealed).
struct Pass {
    msgs_per_s: f64,
    mb_per_s: f64,
    secs: f64,
    bytes: u64,
    sealed: usize,
}

fn pass(rt: &tokio::runtime::Runtime, n: usize, age: bool) -> Result<Pass> {
    let recipient = age.then(|| age::x25519::Identity::generate().to_public().to_string());
    let tmp = temp_data_dir("retention")?;
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data)?;
    let cfg = config_file(tmp.path(), recipient.as_deref())?;
    let mut server = Server::start_with(&data, Some(&cfg))?;
    let s = rt.block_on(setup(&mut server, tmp.path()))?;
    // Let the exporter journal the set-up's messages, then stop.
    std::thread::sleep(Duration::from_secs(2));
    server.stop()?;
    let folder = data.join("retention");
    let before = folder_bytes(&folder);
    let t = Instant::now();
    fill(&data, &s, n)?;
    eprintln!(
        "filled the compliance mailbox with {n} envelopes in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let mut server = Server::start_with(&data, Some(&cfg))?;
    let base = server.base_url()?;
    let http = http_for(&server)?;
    let (first, last, journalled) = rt
        .block_on(async {
            let token = sign_in(&http, &base).await?;
            let path = format!("/networks/{}/data-retention", s.net);
            let mut first = None;
            let deadline = Instant::now() + Duration::from_secs(3600);
            loop {
                let v = admin(&http, &base, &token, reqwest::Method::GET, &path, None).await?;
                let j = v["exporter"]["status"]["journalled"].as_u64().unwrap_or(0);
                if j > 0 && first.is_none() {
                    first = Some((Instant::now(), j));
                }
                if j as usize >= n {
                    break Ok::<_, anyhow::Error>((first.unwrap(), j));
                }
                if let Some(p) = v["exporter"]["status"]["paused"].as_str() {
                    bail!("the exporter paused: {p}");
                }
                if Instant::now() > deadline {
                    bail!("the exporter journalled {j} of {n} in an hour");
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .and_then(|(first, j)| {
            // With age, the run ends when the last finished file is sealed.
            let deadline = Instant::now() + Duration::from_secs(3600);
            while age && unsealed(&folder) > 0 {
                if Instant::now() > deadline {
                    bail!("{} files still unsealed after an hour", unsealed(&folder));
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            Ok((first, Instant::now(), j))
        })?;
    drop(http);
    server.stop()?;
    let secs = last.duration_since(first.0).as_secs_f64().max(1e-6);
    let counted = (journalled - first.1) as f64;
    let bytes = folder_bytes(&folder) - before;
    Ok(Pass {
        msgs_per_s: counted / secs,
        // The bytes written after the first batch: the same share as the records.
        mb_per_s: bytes as f64 * counted / journalled as f64 / 1e6 / secs,
        secs,
        bytes,
        sealed: sealed_files(&folder),
    })
}

fn run() -> Result<String> {
    let n: usize = std::env::var("RETENTION_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_500_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let attachments = n / 20;
    let mut out = Vec::new();
    for age in [false, true] {
        let p = pass(&rt, n, age)?;
        eprintln!(
            "exporter{}: {n} records in {:.2} s after the first batch: {:.0} messages/s, {:.1} MB/s \
             ({} bytes written: journal and {attachments} decrypted attachments of {ATTACHMENT_BYTES} bytes{}); \
             target {TARGET:.0} messages/s, the reference {REFERENCE} messages/s",
            if age { " with age" } else { "" },
            p.secs,
            p.msgs_per_s,
            p.mb_per_s,
            p.bytes,
            if age {
                format!(", {} files sealed with age", p.sealed)
            } else {
                String::new()
            },
        );
        out.push(p);
    }
    Ok(format!(
        "messages={n} attachments={attachments} msgs_per_s={:.0} mb_per_s={:.1} age_msgs_per_s={:.0} age_mb_per_s={:.1} target_msgs_per_s={TARGET:.0} reference_msgs_per_s={REFERENCE:.0}",
        out[0].msgs_per_s, out[0].mb_per_s, out[1].msgs_per_s, out[1].mb_per_s
    ))
}
