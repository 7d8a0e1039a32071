//! A mock appliance for the client's tests: just enough of `docs/PROTOCOL.md` — device
//! registration, consent, user lookup, direct conversations and their devices, blobs, and
//! the stream over WebSocket and QUIC with mailboxes, acceptance and acknowledgements —
//! to drive a [`Session`](super::Session) end to end, plus knobs to inject faults.
//! It is not the server: it checks only what the tests need.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use futures_util::StreamExt;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

use super::framing;
use crate::relay::frame::{ClientFrame, Consent, Delivery, Policy, QUIC_ALPN, ServerFrame};

pub type Shared = Arc<Mutex<State>>;

/// A registered device.
#[derive(Debug, Clone)]
pub struct Dev {
    pub id: String,
    pub user_id: String,
    pub token: String,
    pub x25519: Option<String>,
    pub ed25519: Option<String>,
    pub consent_ack: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Blob {
    pub size: u64,
    pub data: Vec<u8>,
}

/// Everything the mock knows, open to the tests.
#[derive(Default)]
pub struct State {
    /// (id, username); every password is "pw".
    pub users: Vec<(String, String)>,
    pub devices: Vec<Dev>,
    pub consent: Option<Consent>,
    /// (id, member user ids).
    pub conversations: Vec<(String, Vec<String>)>,
    pub blobs: HashMap<String, Blob>,
    /// The chunk `PUT` at this offset is stored but answered 503, once.
    pub fail_put_once_at: Option<u64>,
    /// This device is left out of the next conversation device list.
    pub hide_device_once: Option<String>,
    pub chunk_max: u64,
    pub seq: u64,
    pub mailboxes: HashMap<String, Vec<(u64, ServerFrame)>>,
    pub live: HashMap<String, mpsc::UnboundedSender<ServerFrame>>,
    pub acked: HashMap<String, u64>,
    /// (sender device, client message id) → seq.
    pub accepted: HashMap<(String, String), u64>,
    /// Every delivery made: (recipient device, frame).
    pub log: Vec<(String, ServerFrame)>,
    /// Every `Send` the mock refused, by code.
    pub refusals: Vec<String>,
    pub range_requests: u32,
    next_id: u64,
}

impl State {
    fn id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}-{}", self.next_id)
    }

    pub fn add_user(&mut self, username: &str) -> String {
        let id = self.id("user");
        self.users.push((id.clone(), username.to_string()));
        id
    }

    fn device_by_token(&self, req: &HttpRequest) -> Option<Dev> {
        let h = req.headers().get("authorization")?.to_str().ok()?;
        let token = h.strip_prefix("Bearer ")?;
        self.devices.iter().find(|d| d.token == token).cloned()
    }

    fn conversation_devices(&self, conversation_id: &str) -> Option<Vec<&Dev>> {
        let (_, members) = self
            .conversations
            .iter()
            .find(|(id, _)| id == conversation_id)?;
        Some(
            self.devices
                .iter()
                .filter(|d| members.contains(&d.user_id) && d.x25519.is_some())
                .collect(),
        )
    }

    /// Send a frame to a connected device (for injected deliveries).
    pub fn push(&self, device_id: &str, frame: ServerFrame) {
        if let Some(tx) = self.live.get(device_id) {
            let _ = tx.send(frame);
        }
    }
}

fn policy() -> Policy {
    Policy {
        max_ttl_secs: 86_400,
        max_bor_secs: 3_600,
        forwarding: true,
        files: true,
        file_download: true,
        read_receipts: true,
        location: true,
        compliance_device_id: None,
        classification: Value::Null,
    }
}

fn err(status: u16, code: &str, details: Value) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(status).unwrap_or_default();
    HttpResponse::build(status).json(
        json!({"error": {"code": code, "message": format!("mock: {code}"), "details": details}}),
    )
}

fn device_json(d: &Dev) -> Value {
    json!({"id": d.id, "user_id": d.user_id, "name": "n", "platform": "linux",
           "client_version": "t", "status": "active", "x25519": d.x25519, "ed25519": d.ed25519,
           "created_at": "2025-01-01T00:00:00Z", "last_seen_at": null})
}

fn user_json(s: &State, id: &str) -> Value {
    let name = s
        .users
        .iter()
        .find(|(u, _)| u == id)
        .map(|(_, n)| n.clone());
    json!({"id": id, "network_id": "12345678", "username": name, "display_name": null})
}

fn conversation_json(id: &str, members: &[String]) -> Value {
    json!({"id": id, "kind": "direct", "network_id": "12345678", "name": null, "description": "",
           "members": members.iter().map(|m| json!({"user_id": m, "moderator": false})).collect::<Vec<_>>(),
           "created_by": members.first(), "created_at": "x", "updated_at": "y"})
}

async fn register(st: web::Data<Shared>, body: web::Json<Value>) -> HttpResponse {
    let mut s = st.lock().unwrap();
    let username = body["username"].as_str().unwrap_or_default().to_lowercase();
    let Some((user_id, _)) = s
        .users
        .iter()
        .find(|(_, n)| n.to_lowercase() == username)
        .cloned()
    else {
        return err(401, "invalid_credentials", Value::Null);
    };
    if body["password"] != "pw" {
        return err(401, "invalid_credentials", Value::Null);
    }
    let n = s.id("dev");
    let d = Dev {
        id: n.clone(),
        user_id: user_id.clone(),
        token: format!("od_{n}"),
        x25519: body["keys"]["x25519"].as_str().map(str::to_string),
        ed25519: body["keys"]["ed25519"].as_str().map(str::to_string),
        consent_ack: None,
    };
    s.devices.push(d.clone());
    HttpResponse::Created().json(json!({"token": d.token, "device": device_json(&d),
        "user": user_json(&s, &user_id), "consent": s.consent}))
}

async fn acknowledge_consent(
    st: web::Data<Shared>,
    req: HttpRequest,
    body: web::Json<Value>,
) -> HttpResponse {
    let mut s = st.lock().unwrap();
    let Some(d) = s.device_by_token(&req) else {
        return err(401, "invalid_token", Value::Null);
    };
    let current = s.consent.as_ref().map(|c| c.version);
    if body["version"].as_u64() != current {
        return err(409, "consent_version_mismatch", json!(s.consent));
    }
    if let Some(dev) = s.devices.iter_mut().find(|x| x.id == d.id) {
        dev.consent_ack = current;
    }
    HttpResponse::NoContent().finish()
}

async fn users(
    st: web::Data<Shared>,
    req: HttpRequest,
    q: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let s = st.lock().unwrap();
    if s.device_by_token(&req).is_none() {
        return err(401, "invalid_token", Value::Null);
    }
    let want = q
        .get("username")
        .cloned()
        .unwrap_or_default()
        .to_lowercase();
    let found: Vec<Value> = s
        .users
        .iter()
        .filter(|(_, n)| n.to_lowercase() == want)
        .map(|(id, _)| user_json(&s, id))
        .collect();
    HttpResponse::Ok().json(json!({ "users": found }))
}

async fn create_conversation(
    st: web::Data<Shared>,
    req: HttpRequest,
    body: web::Json<Value>,
) -> HttpResponse {
    let mut s = st.lock().unwrap();
    let Some(d) = s.device_by_token(&req) else {
        return err(401, "invalid_token", Value::Null);
    };
    let peer = body["peer_user_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut members = vec![d.user_id.clone(), peer];
    members.sort();
    if let Some((id, m)) = s.conversations.iter().find(|(_, m)| *m == members) {
        return HttpResponse::Ok().json(conversation_json(id, m));
    }
    let id = s.id("conv");
    s.conversations.push((id.clone(), members.clone()));
    HttpResponse::Created().json(conversation_json(&id, &members))
}

async fn conversation_devices(
    st: web::Data<Shared>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    let mut s = st.lock().unwrap();
    if s.device_by_token(&req).is_none() {
        return err(401, "invalid_token", Value::Null);
    }
    let hide = s.hide_device_once.take();
    let Some(list) = s.conversation_devices(&path) else {
        return err(404, "conversation_not_found", Value::Null);
    };
    let devices: Vec<Value> = list
        .into_iter()
        .filter(|d| Some(&d.id) != hide.as_ref())
        .map(|d| {
            json!({"user_id": d.user_id, "device_id": d.id, "x25519": d.x25519,
                        "ed25519": d.ed25519, "compliance": false})
        })
        .collect();
    HttpResponse::Ok().json(json!({ "devices": devices }))
}

fn blob_json(id: &str, b: &Blob, chunk_max: u64) -> Value {
    let complete = b.data.len() as u64 == b.size;
    let sha = complete.then(|| {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&b.data))
    });
    json!({"id": id, "size": b.size, "offset": b.data.len(), "complete": complete,
           "chunk_max": chunk_max, "sha256": sha})
}

async fn create_blob(st: web::Data<Shared>, body: web::Json<Value>) -> HttpResponse {
    let mut s = st.lock().unwrap();
    let id = s.id("blob");
    let b = Blob {
        size: body["size"].as_u64().unwrap_or(0),
        data: Vec::new(),
    };
    let v = blob_json(&id, &b, s.chunk_max);
    s.blobs.insert(id, b);
    HttpResponse::Created().json(v)
}

async fn put_blob(
    st: web::Data<Shared>,
    path: web::Path<String>,
    q: web::Query<HashMap<String, u64>>,
    body: web::Bytes,
) -> HttpResponse {
    let mut s = st.lock().unwrap();
    let offset = q.get("offset").copied().unwrap_or(u64::MAX);
    let fail = s.fail_put_once_at == Some(offset);
    if fail {
        s.fail_put_once_at = None;
    }
    let chunk_max = s.chunk_max;
    let Some(b) = s.blobs.get_mut(path.as_str()) else {
        return err(404, "blob_not_found", Value::Null);
    };
    if offset != b.data.len() as u64 {
        return err(
            409,
            "wrong_offset",
            json!({"expected_offset": b.data.len()}),
        );
    }
    if body.len() as u64 > chunk_max {
        return err(413, "chunk_too_large", Value::Null);
    }
    if offset + body.len() as u64 > b.size {
        return err(422, "beyond_size", Value::Null);
    }
    b.data.extend_from_slice(&body);
    if fail {
        return err(503, "unavailable", Value::Null);
    }
    HttpResponse::Ok().json(blob_json(&path, b, chunk_max))
}

async fn blob_state(st: web::Data<Shared>, path: web::Path<String>) -> HttpResponse {
    let s = st.lock().unwrap();
    match s.blobs.get(path.as_str()) {
        Some(b) => HttpResponse::Ok().json(blob_json(&path, b, s.chunk_max)),
        None => err(404, "blob_not_found", Value::Null),
    }
}

async fn blob_content(
    st: web::Data<Shared>,
    req: HttpRequest,
    path: web::Path<String>,
) -> HttpResponse {
    let mut s = st.lock().unwrap();
    let Some(b) = s.blobs.get(path.as_str()).cloned() else {
        return err(404, "blob_not_found", Value::Null);
    };
    let range = req
        .headers()
        .get("range")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.strip_suffix('-'))
        .and_then(|v| v.parse::<usize>().ok());
    match range {
        Some(from) if from < b.data.len() => {
            s.range_requests += 1;
            HttpResponse::PartialContent()
                .insert_header((
                    "content-range",
                    format!("bytes {from}-{}/{}", b.data.len() - 1, b.data.len()),
                ))
                .body(b.data[from..].to_vec())
        }
        _ => HttpResponse::Ok().body(b.data),
    }
}

/// One stream connection's state.
struct Conn {
    device: Option<String>,
    out: mpsc::UnboundedSender<ServerFrame>,
}

fn refuse(conn: &Conn, code: &str, id: Option<&str>, details: Option<Value>, fatal: bool) {
    let _ = conn.out.send(ServerFrame::Error {
        code: code.into(),
        message: format!("mock: {code}"),
        client_msg_id: id.map(str::to_string),
        details,
        fatal,
    });
}

fn on_frame(st: &Shared, conn: &mut Conn, frame: ClientFrame) {
    let mut s = st.lock().unwrap();
    match frame {
        ClientFrame::Authenticate {
            token,
            consent_version,
        } => {
            let Some(d) = s.devices.iter().find(|d| d.token == token).cloned() else {
                return refuse(conn, "invalid_token", None, None, true);
            };
            if let Some(c) = s.consent.clone()
                && d.consent_ack != Some(c.version)
            {
                if consent_version != Some(c.version) {
                    return refuse(conn, "consent_required", None, Some(json!(c)), false);
                }
                if let Some(dev) = s.devices.iter_mut().find(|x| x.id == d.id) {
                    dev.consent_ack = Some(c.version);
                }
            }
            conn.device = Some(d.id.clone());
            s.live.insert(d.id.clone(), conn.out.clone());
            let mailbox = s.mailboxes.get(&d.id).cloned().unwrap_or_default();
            let _ = conn.out.send(ServerFrame::Ready {
                user_id: d.user_id,
                device_id: d.id,
                network_id: "12345678".into(),
                policy: policy(),
                pending: mailbox.len() as u64,
            });
            for (_, f) in mailbox {
                let _ = conn.out.send(f);
            }
        }
        _ if conn.device.is_none() => refuse(conn, "authentication_required", None, None, true),
        ClientFrame::Send { envelope: e } => {
            let me = conn.device.clone().unwrap_or_default();
            let id = e.client_msg_id.clone();
            if let Some(seq) = s.accepted.get(&(me.clone(), id.clone())) {
                let _ = conn.out.send(ServerFrame::Accepted {
                    client_msg_id: id,
                    seq: *seq,
                    server_time: 1,
                    duplicate: true,
                });
                return;
            }
            let Some(devices) = s.conversation_devices(&e.conversation_id) else {
                s.refusals.push("conversation_not_found".into());
                return refuse(conn, "conversation_not_found", Some(&id), None, false);
            };
            let sender_user = devices
                .iter()
                .find(|d| d.id == me)
                .map(|d| d.user_id.clone());
            let want: Vec<String> = devices
                .iter()
                .filter(|d| d.id != me)
                .map(|d| d.id.clone())
                .collect();
            let got: Vec<String> = e.keys.iter().map(|k| k.device_id.clone()).collect();
            let missing: Vec<&String> = want.iter().filter(|w| !got.contains(w)).collect();
            let unknown: Vec<&String> = got.iter().filter(|g| !want.contains(g)).collect();
            if !missing.is_empty() {
                let details = json!({ "device_ids": missing });
                s.refusals.push("missing_recipients".into());
                return refuse(conn, "missing_recipients", Some(&id), Some(details), false);
            }
            if !unknown.is_empty() {
                let details = json!({ "device_ids": unknown });
                s.refusals.push("unknown_recipients".into());
                return refuse(conn, "unknown_recipients", Some(&id), Some(details), false);
            }
            s.seq += 1;
            let seq = s.seq;
            for k in &e.keys {
                let f = ServerFrame::Deliver {
                    envelope: Delivery {
                        seq,
                        server_time: 1_700_000_000_000,
                        conversation_id: e.conversation_id.clone(),
                        sender_user_id: sender_user.clone().unwrap_or_default(),
                        sender_device_id: me.clone(),
                        client_msg_id: id.clone(),
                        kind: e.kind,
                        expires_at: u64::MAX,
                        bor_secs: e.bor_secs,
                        forwarded: e.forwarded,
                        sealed_key: k.sealed.clone(),
                        ciphertext: e.ciphertext.clone(),
                        attachments: e.attachments.clone(),
                        signature: e.signature.clone(),
                    },
                };
                s.log.push((k.device_id.clone(), f.clone()));
                s.mailboxes
                    .entry(k.device_id.clone())
                    .or_default()
                    .push((seq, f.clone()));
                s.push(&k.device_id, f);
            }
            s.accepted.insert((me, id.clone()), seq);
            let _ = conn.out.send(ServerFrame::Accepted {
                client_msg_id: id,
                seq,
                server_time: 1_700_000_000_000,
                duplicate: false,
            });
        }
        ClientFrame::Ack { up_to } => {
            let me = conn.device.clone().unwrap_or_default();
            if let Some(m) = s.mailboxes.get_mut(&me) {
                m.retain(|(seq, _)| *seq > up_to);
            }
            s.acked.insert(me, up_to);
        }
        ClientFrame::Ping { nonce } => {
            let _ = conn.out.send(ServerFrame::Pong { nonce });
        }
        ClientFrame::Receipt { .. } => {}
    }
}

fn is_fatal(f: &ServerFrame) -> bool {
    matches!(f, ServerFrame::Error { fatal: true, .. })
}

async fn stream(
    st: web::Data<Shared>,
    req: HttpRequest,
    body: web::Payload,
) -> actix_web::Result<HttpResponse> {
    let (response, mut session, mut messages) = actix_ws::handle(&req, body)?;
    let st = st.get_ref().clone();
    actix_web::rt::spawn(async move {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut conn = Conn {
            device: None,
            out: tx,
        };
        loop {
            tokio::select! {
                m = messages.next() => match m {
                    Some(Ok(actix_ws::Message::Text(t))) => match serde_json::from_str::<ClientFrame>(&t) {
                        Ok(f) => on_frame(&st, &mut conn, f),
                        Err(_) => refuse(&conn, "malformed_frame", None, None, true),
                    },
                    Some(Ok(actix_ws::Message::Ping(b))) => { let _ = session.pong(&b).await; }
                    Some(Ok(actix_ws::Message::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => {}
                },
                f = rx.recv() => {
                    let Some(f) = f else { break };
                    let fatal = is_fatal(&f);
                    let text = serde_json::to_string(&f).unwrap_or_default();
                    if session.text(text).await.is_err() || fatal {
                        break;
                    }
                }
            }
        }
        if let Some(d) = conn.device {
            st.lock().unwrap().live.remove(&d);
        }
        let _ = session.close(None).await;
    });
    Ok(response)
}

async fn quic_connection(st: Shared, incoming: quinn::Incoming) -> anyhow::Result<()> {
    let connection = incoming.await?;
    let (mut send, mut recv) = connection.accept_bi().await?;
    let (in_tx, mut in_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(f)) = framing::read_json::<_, ClientFrame>(&mut recv, 1 << 20).await {
            if in_tx.send(f).is_err() {
                break;
            }
        }
    });
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut conn = Conn {
        device: None,
        out: tx,
    };
    loop {
        tokio::select! {
            f = in_rx.recv() => match f {
                Some(f) => on_frame(&st, &mut conn, f),
                None => break,
            },
            f = rx.recv() => {
                let Some(f) = f else { break };
                let fatal = is_fatal(&f);
                if framing::write_frame(&mut send, &f).await.is_err() || fatal {
                    break;
                }
            }
        }
    }
    if let Some(d) = conn.device {
        st.lock().unwrap().live.remove(&d);
    }
    let _ = send.finish();
    connection.close(0u32.into(), b"done");
    Ok(())
}

/// A running mock appliance on 127.0.0.1 (HTTPS and WebSocket on TCP, QUIC on the same
/// port number over UDP).
pub struct Mock {
    pub url: String,
    pub ca_pem: Vec<u8>,
    pub state: Shared,
    server: actix_web::dev::ServerHandle,
    quic: quinn::Endpoint,
}

impl Mock {
    pub async fn start(consent: Option<Consent>) -> Mock {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, &ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        leaf.subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
        let chain = vec![leaf_cert.der().clone()];
        let key = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = |alpn: Vec<Vec<u8>>| {
            let mut c = rustls::ServerConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(chain.clone(), key.clone_key())
                .unwrap();
            c.alpn_protocols = alpn;
            c
        };
        let state: Shared = Arc::new(Mutex::new(State {
            consent,
            chunk_max: 100_000,
            ..Default::default()
        }));
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(16 << 20))
                .route("/api/v1/devices", web::post().to(register))
                .route("/api/v1/consent", web::post().to(acknowledge_consent))
                .route("/api/v1/users", web::get().to(users))
                .route("/api/v1/conversations", web::post().to(create_conversation))
                .route(
                    "/api/v1/conversations/{id}/devices",
                    web::get().to(conversation_devices),
                )
                .route("/api/v1/blobs", web::post().to(create_blob))
                .route("/api/v1/blobs/{id}", web::put().to(put_blob))
                .route("/api/v1/blobs/{id}", web::get().to(blob_state))
                .route("/api/v1/blobs/{id}/content", web::get().to(blob_content))
                .route("/api/v1/stream", web::get().to(stream))
        })
        .workers(1)
        .disable_signals()
        .bind_rustls_0_23("127.0.0.1:0", tls(vec![b"http/1.1".to_vec()]))
        .unwrap();
        let addr: SocketAddr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        let quic_tls =
            quinn::crypto::rustls::QuicServerConfig::try_from(tls(vec![QUIC_ALPN.to_vec()]))
                .unwrap();
        let quic =
            quinn::Endpoint::server(quinn::ServerConfig::with_crypto(Arc::new(quic_tls)), addr)
                .unwrap();
        let st = state.clone();
        let endpoint = quic.clone();
        tokio::spawn(async move {
            while let Some(incoming) = endpoint.accept().await {
                tokio::spawn(quic_connection(st.clone(), incoming));
            }
        });
        Mock {
            url: format!("https://{addr}"),
            ca_pem: ca_cert.pem().into_bytes(),
            state,
            server: handle,
            quic,
        }
    }

    /// Stop serving.
    pub async fn stop(self) {
        self.quic.close(0u32.into(), b"stop");
        self.server.stop(false).await;
    }
}
