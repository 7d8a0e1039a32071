//! People and their devices for relay tests: users created through the admin API
//! with a password, devices registered through the client API with random keys,
//! and envelopes of the right shape (the server never looks inside them).

use super::stream::Stream;
use super::{Api, Server};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

pub const USER_PASSWORD: &str = "Correct-horse-battery-9";

/// One device of one person.
pub struct Person {
    pub email: String,
    pub user_id: String,
    pub device_id: String,
    pub token: String,
    /// The client API as this device.
    pub api: Api,
    pub url: String,
    pub ca: std::path::PathBuf,
}

pub fn b64(n: usize) -> String {
    let bytes: Vec<u8> = (0..n).map(|_| rand::random::<u8>()).collect();
    STANDARD.encode(bytes)
}

/// Create a user in `network` (owner API) and register a first device.
pub fn person(server: &Server, owner: &Api, network: &str, email: &str) -> Person {
    owner
        .post(
            &format!("/admin/api/v1/networks/{network}/users"),
            &json!({"email": email, "first_name": email.split('@').next().unwrap(), "password": USER_PASSWORD}),
        )
        .ok();
    device(server, email)
}

/// Register another device for an existing user.
pub fn device(server: &Server, email: &str) -> Person {
    let r = server
        .anon()
        .post(
            "/api/v1/devices",
            &json!({
                "username": email, "password": USER_PASSWORD,
                "device": {"name": "test", "platform": "linux", "client_version": "test"},
                "keys": {"x25519": b64(32), "ed25519": b64(32)},
            }),
        )
        .ok();
    let token = r["token"].as_str().unwrap().to_string();
    Person {
        email: email.to_string(),
        user_id: r["user"]["id"].as_str().unwrap().to_string(),
        device_id: r["device"]["id"].as_str().unwrap().to_string(),
        api: server.anon().with_token(&token),
        token,
        url: server.url.clone(),
        ca: server.ca.clone(),
    }
}

impl Person {
    /// The same device against a restarted server (which listens on a new port).
    pub fn on(&self, server: &Server) -> Person {
        Person {
            email: self.email.clone(),
            user_id: self.user_id.clone(),
            device_id: self.device_id.clone(),
            token: self.token.clone(),
            api: server.anon().with_token(&self.token),
            url: server.url.clone(),
            ca: server.ca.clone(),
        }
    }

    /// What a thread needs to connect as this device.
    pub fn clone_for_thread(&self) -> Person {
        Person {
            email: self.email.clone(),
            user_id: self.user_id.clone(),
            device_id: self.device_id.clone(),
            token: self.token.clone(),
            api: Api::new(&self.url, &self.ca, Some(self.token.clone())),
            url: self.url.clone(),
            ca: self.ca.clone(),
        }
    }

    /// Start an upload of `size` bytes; returns the blob's id.
    pub fn new_blob(&self, size: usize) -> String {
        let b = self.api.post("/api/v1/blobs", &json!({"size": size})).ok();
        b["id"].as_str().unwrap().to_string()
    }

    /// Send one chunk of blob `id` at `offset`; the status and the answer.
    pub fn put_chunk(&self, id: &str, offset: usize, bytes: &[u8]) -> (u16, Value) {
        let r = self
            .api
            .http
            .put(format!("{}/api/v1/blobs/{id}?offset={offset}", self.url))
            .bearer_auth(&self.token)
            .body(bytes.to_vec())
            .send()
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json::<Value>().unwrap_or(Value::Null))
    }

    /// Upload `data` as one chunk; returns the completed blob's state.
    pub fn upload(&self, data: &[u8]) -> Value {
        let id = self.new_blob(data.len());
        let (status, state) = self.put_chunk(&id, 0, data);
        assert_eq!(status, 200, "{state}");
        state
    }

    /// Download blob `id` (optionally a `Range`); the status and the bytes.
    pub fn download(&self, id: &str, range: Option<&str>) -> (u16, Vec<u8>) {
        let mut rb = self
            .api
            .http
            .get(format!("{}/api/v1/blobs/{id}/content", self.url))
            .bearer_auth(&self.token);
        if let Some(r) = range {
            rb = rb.header("range", r);
        }
        let r = rb.send().unwrap();
        (r.status().as_u16(), r.bytes().unwrap().to_vec())
    }

    /// Open a WebSocket stream and authenticate.
    pub fn connect(&self) -> Stream {
        let mut s = Stream::websocket(&self.url, &self.ca);
        s.authenticate(&self.token);
        s
    }

    /// Open a QUIC stream and authenticate.
    pub fn connect_quic(&self) -> Stream {
        let mut s = Stream::quic(&self.url, &self.ca);
        s.authenticate(&self.token);
        s
    }

    /// The direct conversation with `other`.
    pub fn dm(&self, other: &Person) -> String {
        let r = self
            .api
            .post(
                "/api/v1/conversations",
                &json!({"kind": "direct", "peer_user_id": other.user_id}),
            )
            .ok();
        r["id"].as_str().unwrap().to_string()
    }

    /// A room with `members` (the creator is its moderator).
    pub fn room(&self, name: &str, members: &[&Person]) -> String {
        let ids: Vec<&str> = members.iter().map(|p| p.user_id.as_str()).collect();
        let r = self
            .api
            .post(
                "/api/v1/conversations",
                &json!({"kind": "room", "name": name, "member_user_ids": ids}),
            )
            .ok();
        r["id"].as_str().unwrap().to_string()
    }

    /// The device ids to seal a message in `conversation` to (except this device).
    pub fn recipients(&self, conversation: &str) -> Vec<String> {
        let r = self
            .api
            .get(&format!("/api/v1/conversations/{conversation}/devices"))
            .ok();
        r["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["device_id"].as_str().unwrap().to_string())
            .filter(|d| *d != self.device_id)
            .collect()
    }
}

/// A `send` frame for `conversation` sealed to `recipients`.
pub fn send_frame<S: AsRef<str>>(conversation: &str, id: &str, recipients: &[S]) -> Value {
    json!({"type": "send", "envelope": envelope(conversation, id, recipients)})
}

pub fn envelope<S: AsRef<str>>(conversation: &str, id: &str, recipients: &[S]) -> Value {
    json!({
        "conversation_id": conversation,
        "client_msg_id": id,
        "kind": "text",
        "keys": recipients.iter().map(|d| json!({"device_id": d.as_ref(), "sealed": b64(80)})).collect::<Vec<_>>(),
        "ciphertext": b64(120),
        "signature": b64(64),
    })
}
