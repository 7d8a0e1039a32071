//! A typed client of the device REST API (`docs/PROTOCOL.md` §2, §3 and §6): devices
//! and keys, the caller's identity and consent, user lookup, conversations, and blobs.
//!
//! Refusals come back as [`ApiError::Server`] with the server's stable `code`, its
//! message and details; transport failures and unreadable answers have their own variants.

use anyhow::Context;
use bytes::Bytes;
use reqwest::header::{CONTENT_RANGE, CONTENT_TYPE, RANGE, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

use super::tls::Trust;
use crate::relay::frame::{Consent, Policy};

/// How long an ordinary JSON call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one blob chunk upload may take.
const CHUNK_TIMEOUT: Duration = Duration::from_secs(600);

/// A refusal as the server described it (`{"code", "message", "details"}`, §1.1).
#[derive(Debug, Clone, PartialEq)]
pub struct ServerError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub details: Option<Value>,
    /// Seconds from the `Retry-After` header or a `retry_after` detail, if any.
    pub retry_after: Option<u64>,
}

/// Why a REST call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{} ({}, HTTP {})", .0.message, .0.code, .0.status)]
    Server(ServerError),
    #[error("cannot reach the appliance ({0})")]
    Transport(#[source] reqwest::Error),
    #[error("the appliance sent an unreadable answer to {what}: {reason}")]
    Decode { what: String, reason: String },
}

impl ApiError {
    /// The server's error code, when the server refused the call.
    pub fn code(&self) -> Option<&str> {
        match self {
            ApiError::Server(e) => Some(&e.code),
            _ => None,
        }
    }
}

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// Parse an error answer: the documented `{"code", "message", "details"}` body (§1.1);
/// anything else (a proxy's page, an empty body) becomes `http_error`.
pub fn parse_error(status: u16, retry_after_header: Option<u64>, body: &[u8]) -> ServerError {
    let obj: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let code = obj.get("code").and_then(Value::as_str);
    let message = obj.get("message").and_then(Value::as_str);
    let details = obj.get("details").cloned().filter(|d| !d.is_null());
    let retry_after = retry_after_header.or_else(|| {
        details
            .as_ref()
            .and_then(|d| d.get("retry_after"))
            .and_then(Value::as_u64)
            .or_else(|| obj.get("retry_after").and_then(Value::as_u64))
    });
    match code {
        Some(code) => ServerError {
            status,
            code: code.to_string(),
            message: message.unwrap_or(code).to_string(),
            details,
            retry_after,
        },
        None => {
            let text = String::from_utf8_lossy(&body[..body.len().min(500)]).into_owned();
            ServerError {
                status,
                code: "http_error".into(),
                message: format!("the server answered HTTP {status}: {}", text.trim()),
                details: None,
                retry_after,
            }
        }
    }
}

// ----------------------------------------------------------------------------- types

/// A device as the API shows it (§2.1).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Device {
    pub id: String,
    pub user_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub platform: String,
    #[serde(default)]
    pub client_version: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub x25519: Option<String>,
    #[serde(default)]
    pub ed25519: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub last_seen_at: Option<String>,
}

/// A person of the caller's network (§2.1, §2.6).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct User {
    pub id: String,
    #[serde(default)]
    pub network_id: String,
    pub username: String,
    #[serde(default)]
    pub display_name: Option<String>,
}

/// What a device says about itself when it registers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeviceInfo {
    pub name: String,
    pub platform: String,
    pub client_version: String,
}

/// A device's public keys, base64 (§2.2).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PublicKeys {
    pub x25519: String,
    pub ed25519: String,
}

/// `POST /api/v1/devices` (§2.1).
#[derive(Debug, Clone, Serialize)]
pub struct RegisterRequest {
    pub username: String,
    pub password: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_id: Option<String>,
    pub device: DeviceInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys: Option<PublicKeys>,
}

/// The answer to a registration: the device token is shown only here.
#[derive(Debug, Clone, Deserialize)]
pub struct Registration {
    pub token: String,
    pub device: Device,
    pub user: User,
    #[serde(default)]
    pub consent: Option<Consent>,
    /// Set when the device waits for approval (account-takeover protection).
    #[serde(default)]
    pub approval: Option<Approval>,
}

/// `GET /api/v1/server` (§2.8).
#[derive(Debug, Clone, Deserialize)]
pub struct ServerInfo {
    pub software: String,
    pub version: String,
    /// The key that signs client profiles (base64 Ed25519).
    pub profile_key: String,
}

/// How a device that waits for approval can be approved (§2.7).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Approval {
    /// `device` (approve it from an active device) and, while mail is on, `email`.
    pub methods: Vec<String>,
    #[serde(default)]
    pub code_expires_at: Option<String>,
    #[serde(default)]
    pub attempts_left: u32,
}

#[derive(Deserialize)]
struct ApprovalBody {
    approval: Approval,
}

#[derive(Deserialize)]
struct DeviceBody {
    device: Device,
}

/// `POST /api/v1/sso/start` (§2.9).
#[derive(Debug, Clone, Serialize)]
pub struct SsoStart {
    pub company_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_hint: Option<String>,
    /// The client's loopback listener.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// S256 of the verifier the client keeps.
    pub code_challenge: String,
}

/// The answer to a single sign-on start.
#[derive(Debug, Clone, Deserialize)]
pub struct SsoStarted {
    /// Open this in a browser.
    pub authorization_url: String,
    pub expires_at: String,
}

/// `POST /api/v1/sso/token` (§2.9): the grant and the verifier → a device.
#[derive(Debug, Clone, Serialize)]
pub struct SsoToken {
    pub code: String,
    pub code_verifier: String,
    pub name: String,
    pub platform: String,
    pub client_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys: Option<PublicKeys>,
}

/// `GET /api/v1/me` (§2.4).
#[derive(Debug, Clone, Deserialize)]
pub struct Me {
    pub user: User,
    pub device: Device,
    pub policy: Policy,
    #[serde(default)]
    pub consent: Option<Consent>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationKind {
    Direct,
    Room,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Member {
    pub user_id: String,
    #[serde(default)]
    pub moderator: bool,
}

/// A conversation (§3).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Conversation {
    pub id: String,
    pub kind: ConversationKind,
    #[serde(default)]
    pub network_id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub members: Vec<Member>,
    #[serde(default)]
    pub created_by: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
}

/// `POST /api/v1/conversations`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NewConversation {
    Direct {
        peer_user_id: String,
    },
    Room {
        name: String,
        description: String,
        member_user_ids: Vec<String>,
    },
}

/// `PATCH /api/v1/conversations/{id}`: only the fields that are set change.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConversationPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moderator_user_ids: Option<Vec<String>>,
}

/// A device that envelopes of a conversation must be sealed to (§3, `/devices`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConversationDevice {
    pub user_id: String,
    pub device_id: String,
    pub x25519: String,
    pub ed25519: String,
    #[serde(default)]
    pub compliance: bool,
}

/// A blob's upload state (§6).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BlobState {
    pub id: String,
    pub size: u64,
    pub offset: u64,
    pub complete: bool,
    /// Largest chunk the server accepts in one `PUT`.
    #[serde(default)]
    pub chunk_max: Option<u64>,
    /// Hex SHA-256 of the blob, once complete.
    #[serde(default)]
    pub sha256: Option<String>,
}

#[derive(Deserialize)]
struct DevicesBody<T> {
    devices: Vec<T>,
}
#[derive(Deserialize)]
struct UsersBody {
    users: Vec<User>,
}
#[derive(Deserialize)]
struct ConversationsBody {
    conversations: Vec<Conversation>,
}

/// A blob download in progress.
pub struct BlobDownload {
    response: reqwest::Response,
    /// Offset in the blob of the first byte this download yields (0 unless a range was
    /// asked for and the server honoured it).
    pub start: u64,
    /// The blob's total size, when the server said.
    pub total: Option<u64>,
}

impl BlobDownload {
    /// The next piece of the blob, `None` at the end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>> {
        self.response.chunk().await.map_err(ApiError::Transport)
    }
}

/// Parse `Content-Range: bytes a-b/total` into `(a, total)`.
fn parse_content_range(v: &str) -> Option<(u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (a, _b) = range.split_once('-')?;
    Some((a.trim().parse().ok()?, total.trim().parse().ok()))
}

// ---------------------------------------------------------------------------- client

/// The device REST API of one appliance.
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

impl ApiClient {
    /// A client of the appliance at `url` (`https://host[:port]`), trusting `trust`.
    pub fn new(url: &str, trust: &Trust) -> anyhow::Result<ApiClient> {
        let base = base_url(url)?;
        let b = reqwest::Client::builder()
            .user_agent(concat!("outpost-client/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15));
        let http = trust
            .reqwest(b)?
            .build()
            .context("cannot set up the HTTPS client")?;
        Ok(ApiClient {
            http,
            base,
            token: None,
        })
    }

    /// Use this device token for the calls that need one.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    pub fn set_token(&mut self, token: Option<String>) {
        self.token = token;
    }

    /// The appliance's base URL (`https://host:port/`).
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut p) = url.path_segments_mut() {
            p.pop_if_empty().extend(["api", "v1"]).extend(segments);
        }
        url
    }

    fn builder(&self, method: Method, segments: &[&str]) -> reqwest::RequestBuilder {
        let mut req = self.http.request(method, self.url(segments));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        req
    }

    /// Send and return the response if it is a success, else the server's error.
    async fn execute(req: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let res = req.send().await.map_err(ApiError::Transport)?;
        if res.status().is_success() {
            return Ok(res);
        }
        let status = res.status().as_u16();
        let retry_after = res
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let body = res.bytes().await.unwrap_or_default();
        Err(ApiError::Server(parse_error(status, retry_after, &body)))
    }

    async fn decode<T: DeserializeOwned>(res: reqwest::Response, what: &str) -> Result<T> {
        let bytes = res.bytes().await.map_err(ApiError::Transport)?;
        serde_json::from_slice(&bytes).map_err(|e| ApiError::Decode {
            what: what.to_string(),
            reason: e.to_string(),
        })
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&(impl Serialize + ?Sized)>,
        what: &str,
    ) -> Result<T> {
        let mut req = self.builder(method, segments).timeout(CALL_TIMEOUT);
        if let Some(b) = body {
            req = req.json(b);
        }
        Self::decode(Self::execute(req).await?, what).await
    }

    async fn call_empty(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<()> {
        let mut req = self.builder(method, segments).timeout(CALL_TIMEOUT);
        if let Some(b) = body {
            req = req.json(b);
        }
        Self::execute(req).await.map(drop)
    }

    // --- §2 devices and keys

    /// Register a device (log in). Needs no token.
    pub async fn register_device(&self, req: &RegisterRequest) -> Result<Registration> {
        self.call(
            Method::POST,
            &["devices"],
            Some(req),
            "the device registration",
        )
        .await
    }

    /// Start a single sign-on through the company's identity provider. Needs no token.
    pub async fn sso_start(&self, req: &SsoStart) -> Result<SsoStarted> {
        self.call(
            Method::POST,
            &["sso", "start"],
            Some(req),
            "the single sign-on start",
        )
        .await
    }

    /// Redeem a single sign-on grant for a device (a login). Needs no token.
    pub async fn sso_token(&self, req: &SsoToken) -> Result<Registration> {
        self.call(
            Method::POST,
            &["sso", "token"],
            Some(req),
            "the single sign-on device registration",
        )
        .await
    }

    /// Publish this device's keys (write-once).
    pub async fn publish_keys(&self, keys: &PublicKeys) -> Result<Device> {
        self.call(
            Method::PUT,
            &["devices", "self", "keys"],
            Some(keys),
            "the key publication",
        )
        .await
    }

    /// Every device of the caller's account.
    pub async fn list_devices(&self) -> Result<Vec<Device>> {
        let b: DevicesBody<Device> = self
            .call(Method::GET, &["devices"], None::<&()>, "the device list")
            .await?;
        Ok(b.devices)
    }

    /// How this pending device can be approved.
    pub async fn approval(&self) -> Result<Approval> {
        let b: ApprovalBody = self
            .call(
                Method::GET,
                &["devices", "self", "approval"],
                None::<&()>,
                "the approval state",
            )
            .await?;
        Ok(b.approval)
    }

    /// Approve this pending device with the code mailed to its owner.
    pub async fn enter_approval_code(&self, code: &str) -> Result<Device> {
        let b: DeviceBody = self
            .call(
                Method::POST,
                &["devices", "self", "approval"],
                Some(&serde_json::json!({ "code": code })),
                "the approval",
            )
            .await?;
        Ok(b.device)
    }

    /// Mail a new approval code for this pending device.
    pub async fn resend_approval_code(&self) -> Result<Approval> {
        let b: ApprovalBody = self
            .call(
                Method::POST,
                &["devices", "self", "approval", "code"],
                None::<&()>,
                "the new code",
            )
            .await?;
        Ok(b.approval)
    }

    /// Approve one of the account's pending devices from this (active) device.
    pub async fn approve_device(&self, device_id: &str) -> Result<Device> {
        let b: DeviceBody = self
            .call(
                Method::POST,
                &["devices", device_id, "approve"],
                None::<&()>,
                "the approval",
            )
            .await?;
        Ok(b.device)
    }

    /// Revoke one of the caller's devices (possibly the calling one).
    pub async fn revoke_device(&self, device_id: &str) -> Result<()> {
        self.call_empty(Method::DELETE, &["devices", device_id], None::<&()>)
            .await
    }

    /// What the appliance says about itself before sign-in (§2.8).
    pub async fn server_info(&self) -> Result<ServerInfo> {
        self.call(
            Method::GET,
            &["server"],
            None::<&()>,
            "the server information",
        )
        .await
    }

    pub async fn me(&self) -> Result<Me> {
        self.call(Method::GET, &["me"], None::<&()>, "who am I")
            .await
    }

    /// Acknowledge the consent pop-up of this version.
    pub async fn acknowledge_consent(&self, version: u64) -> Result<()> {
        self.call_empty(
            Method::POST,
            &["consent"],
            Some(&serde_json::json!({ "version": version })),
        )
        .await
    }

    /// Users of the caller's network with exactly this username (case-insensitive).
    pub async fn find_users(&self, username: &str) -> Result<Vec<User>> {
        let req = self
            .builder(Method::GET, &["users"])
            .query(&[("username", username)])
            .timeout(CALL_TIMEOUT);
        let b: UsersBody = Self::decode(Self::execute(req).await?, "the user lookup").await?;
        Ok(b.users)
    }

    // --- §3 conversations

    pub async fn create_conversation(&self, new: &NewConversation) -> Result<Conversation> {
        self.call(
            Method::POST,
            &["conversations"],
            Some(new),
            "the new conversation",
        )
        .await
    }

    /// The direct conversation with this user (created on first call).
    pub async fn direct_conversation(&self, peer_user_id: &str) -> Result<Conversation> {
        self.create_conversation(&NewConversation::Direct {
            peer_user_id: peer_user_id.to_string(),
        })
        .await
    }

    /// A new room; the caller is its first member and moderator.
    pub async fn create_room(
        &self,
        name: &str,
        description: &str,
        member_user_ids: &[String],
    ) -> Result<Conversation> {
        self.create_conversation(&NewConversation::Room {
            name: name.to_string(),
            description: description.to_string(),
            member_user_ids: member_user_ids.to_vec(),
        })
        .await
    }

    pub async fn list_conversations(&self) -> Result<Vec<Conversation>> {
        let b: ConversationsBody = self
            .call(
                Method::GET,
                &["conversations"],
                None::<&()>,
                "the conversation list",
            )
            .await?;
        Ok(b.conversations)
    }

    pub async fn conversation(&self, id: &str) -> Result<Conversation> {
        self.call(
            Method::GET,
            &["conversations", id],
            None::<&()>,
            "the conversation",
        )
        .await
    }

    pub async fn update_conversation(
        &self,
        id: &str,
        patch: &ConversationPatch,
    ) -> Result<Conversation> {
        self.call(
            Method::PATCH,
            &["conversations", id],
            Some(patch),
            "the conversation",
        )
        .await
    }

    /// Add members. The answer's body is not specified; it is ignored.
    pub async fn add_members(&self, id: &str, user_ids: &[String]) -> Result<()> {
        self.call_empty(
            Method::POST,
            &["conversations", id, "members"],
            Some(&serde_json::json!({ "user_ids": user_ids })),
        )
        .await
    }

    /// Remove a member (or leave, with the caller's own user id).
    pub async fn remove_member(&self, id: &str, user_id: &str) -> Result<()> {
        self.call_empty(
            Method::DELETE,
            &["conversations", id, "members", user_id],
            None::<&()>,
        )
        .await
    }

    /// Delete a room.
    pub async fn delete_conversation(&self, id: &str) -> Result<()> {
        self.call_empty(Method::DELETE, &["conversations", id], None::<&()>)
            .await
    }

    /// The devices an envelope of this conversation must be sealed to (and whose
    /// signatures its deliveries carry).
    pub async fn conversation_devices(&self, id: &str) -> Result<Vec<ConversationDevice>> {
        let b: DevicesBody<ConversationDevice> = self
            .call(
                Method::GET,
                &["conversations", id, "devices"],
                None::<&()>,
                "the conversation's devices",
            )
            .await?;
        Ok(b.devices)
    }

    // --- §6 blobs

    /// Start an upload of `size` bytes.
    pub async fn create_blob(&self, size: u64) -> Result<BlobState> {
        self.call(
            Method::POST,
            &["blobs"],
            Some(&serde_json::json!({ "size": size })),
            "the new blob",
        )
        .await
    }

    /// Append `chunk` at `offset` (which must be the bytes received so far).
    pub async fn put_blob_chunk(&self, id: &str, offset: u64, chunk: Bytes) -> Result<BlobState> {
        let req = self
            .builder(Method::PUT, &["blobs", id])
            .query(&[("offset", offset)])
            .header(CONTENT_TYPE, "application/octet-stream")
            .timeout(CHUNK_TIMEOUT)
            .body(chunk);
        Self::decode(Self::execute(req).await?, "the blob chunk").await
    }

    pub async fn blob_state(&self, id: &str) -> Result<BlobState> {
        self.call(Method::GET, &["blobs", id], None::<&()>, "the blob state")
            .await
    }

    /// Download a blob, from byte `from` on if given (a `Range` request). Check
    /// [`BlobDownload::start`]: a server may answer the whole blob instead.
    pub async fn download_blob(&self, id: &str, from: Option<u64>) -> Result<BlobDownload> {
        let mut req = self.builder(Method::GET, &["blobs", id, "content"]);
        if let Some(n) = from.filter(|n| *n > 0) {
            req = req.header(RANGE, format!("bytes={n}-"));
        }
        let response = Self::execute(req).await?;
        let (start, total) = if response.status() == StatusCode::PARTIAL_CONTENT {
            response
                .headers()
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_content_range)
                .ok_or_else(|| ApiError::Decode {
                    what: "the blob download".into(),
                    reason: "a partial answer without a readable Content-Range".into(),
                })?
        } else {
            (0, response.content_length())
        };
        Ok(BlobDownload {
            response,
            start,
            total,
        })
    }
}

/// Check and normalise the appliance URL.
pub fn base_url(url: &str) -> anyhow::Result<Url> {
    let parsed = Url::parse(url.trim()).with_context(|| format!("{url} is not a URL"))?;
    if parsed.scheme() != "https" {
        anyhow::bail!("the appliance URL must start with https:// ({url})");
    }
    if parsed.host_str().is_none() {
        anyhow::bail!("the appliance URL has no host ({url})");
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_error_bodies() {
        let e = parse_error(
            409,
            None,
            br#"{"code":"wrong_offset","message":"expected 10","details":{"expected_offset":10}}"#,
        );
        assert_eq!(e.code, "wrong_offset");
        assert_eq!(e.message, "expected 10");
        assert_eq!(e.details.unwrap()["expected_offset"], 10);
        let e = parse_error(
            403,
            Some(30),
            br#"{"code":"account_locked","message":"locked"}"#,
        );
        assert_eq!(
            (e.code.as_str(), e.retry_after),
            ("account_locked", Some(30))
        );
        let e = parse_error(
            403,
            None,
            br#"{"code":"account_locked","message":"m","details":{"retry_after":9}}"#,
        );
        assert_eq!(e.retry_after, Some(9));
        // Only the documented shape counts.
        let e = parse_error(
            409,
            None,
            br#"{"error":{"code":"wrong_offset","message":"m"}}"#,
        );
        assert_eq!(e.code, "http_error");
        let e = parse_error(502, None, b"<html>bad gateway</html>");
        assert_eq!(e.code, "http_error");
        assert!(e.message.contains("502"));
        let e = parse_error(500, None, b"");
        assert_eq!(e.code, "http_error");
    }

    #[test]
    fn builds_urls() {
        let c = ApiClient::new("https://example.org:8443", &Trust::Insecure).unwrap();
        assert_eq!(
            c.url(&["conversations", "a/b c", "devices"]).as_str(),
            "https://example.org:8443/api/v1/conversations/a%2Fb%20c/devices"
        );
        let c = ApiClient::new("https://example.org/outpost/", &Trust::Insecure).unwrap();
        assert_eq!(
            c.url(&["me"]).as_str(),
            "https://example.org/outpost/api/v1/me"
        );
        assert!(ApiClient::new("http://example.org", &Trust::Insecure).is_err());
        assert!(ApiClient::new("nonsense", &Trust::Insecure).is_err());
    }

    #[test]
    fn content_range() {
        assert_eq!(
            parse_content_range("bytes 10-99/100"),
            Some((10, Some(100)))
        );
        assert_eq!(parse_content_range("bytes 10-99/*"), Some((10, None)));
        assert_eq!(parse_content_range("items 1-2/3"), None);
    }

    #[test]
    fn request_shapes() {
        let r = RegisterRequest {
            username: "a".into(),
            password: "p".into(),
            network_id: None,
            device: DeviceInfo {
                name: "n".into(),
                platform: "linux".into(),
                client_version: "0.1.0".into(),
            },
            keys: None,
        };
        let v = serde_json::to_value(&r).unwrap();
        assert!(v.get("network_id").is_none() && v.get("keys").is_none());
        let v = serde_json::to_value(NewConversation::Direct {
            peer_user_id: "u".into(),
        })
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"kind": "direct", "peer_user_id": "u"})
        );
        let c: Conversation = serde_json::from_str(
            r#"{"id":"c","kind":"room","network_id":"n","name":"Ops","description":"",
                "members":[{"user_id":"u","moderator":true}],"created_by":"u",
                "created_at":"x","updated_at":"y","extra":1}"#,
        )
        .unwrap();
        assert_eq!(c.kind, ConversationKind::Room);
        assert!(c.members[0].moderator);
    }
}
