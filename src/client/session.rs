//! The high-level client: one logged-in device with its profile, REST client and stream.
//! It logs in, connects (answering the consent pop-up), sends text, content and files
//! (sealed to every device of the conversation, retrying once with a fresh device list
//! when the server says the list was stale), and receives: verifies, opens, decrypts,
//! de-duplicates and acknowledges deliveries.
//!
//! Acknowledgement rule: [`Session::next_event`] acknowledges, when it is called again,
//! every item up to the last one it handed out (and the duplicates and undecryptable
//! envelopes it dropped on the way). Call [`Session::ack_processed`] or
//! [`Session::disconnect`] when done.

use anyhow::{Context, Result, anyhow, bail};
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

use super::api::{
    ApiClient, Approval, ConversationDevice, Device, DeviceInfo, PublicKeys, RegisterRequest,
    Registration, User,
};
use super::content::{FileContent, FileRef, ReceivedMessage, TextContent};
use super::crypto::DeviceKeys;
use super::envelope::{EnvelopeOptions, Outgoing, open_delivery, seal_envelope};
use super::files::{self, Progress};
use super::profile::Profile;
use super::stream::{Stream, StreamConfig, StreamSender, Transport};
use super::tls::Trust;
use crate::relay::frame::{
    Attachment, ClientFrame, Consent, Kind, MembershipEvent, PendingDevice, Policy, Receipt,
    ServerFrame,
};

/// How long to wait for `ready` and for `accepted`.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// How many (sender device, message id) pairs are remembered for de-duplication.
const DEDUP_CAPACITY: usize = 100_000;
/// Codes after which a send is retried once with a fresh device list.
const STALE_DEVICE_CODES: &[&str] = &[
    "missing_recipients",
    "unknown_recipients",
    "compliance_recipient_missing",
];

/// An `error` frame from the server, as an error value (downcast an [`anyhow::Error`] to
/// it to read the code).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message} ({code})")]
pub struct Refusal {
    pub code: String,
    pub message: String,
    pub client_msg_id: Option<String>,
    pub details: Option<serde_json::Value>,
    pub fatal: bool,
}

impl Refusal {
    /// The consent pop-up a `consent_required` (or `consent_version_mismatch`) refusal
    /// carries: `details.consent`.
    pub fn consent(&self) -> Option<Consent> {
        let c = self.details.as_ref()?.get("consent")?;
        serde_json::from_value(c.clone()).ok()
    }
}

/// What `ready` said.
#[derive(Debug, Clone)]
pub struct Ready {
    pub user_id: String,
    pub device_id: String,
    pub network_id: String,
    pub policy: Policy,
    pub pending: u64,
}

/// The server's acceptance of a sent envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub client_msg_id: String,
    pub seq: u64,
    pub server_time: u64,
    pub duplicate: bool,
}

/// Something that arrived on the stream.
#[derive(Debug, Clone)]
pub enum Event {
    /// A verified, decrypted message.
    Message(ReceivedMessage),
    /// An envelope that failed verification or decryption; dropped (and acknowledged).
    Dropped {
        seq: u64,
        conversation_id: String,
        sender_device_id: String,
        client_msg_id: String,
        reason: String,
    },
    Membership {
        seq: u64,
        server_time: u64,
        event: MembershipEvent,
    },
    Receipt {
        seq: u64,
        server_time: u64,
        receipt: Receipt,
    },
    Policy(Policy),
    /// The account's devices that wait for approval (empty once none wait).
    DevicesPending(Vec<PendingDevice>),
    /// A non-fatal error frame not about an envelope this session is waiting for.
    Error(Refusal),
}

/// What `login` needs.
#[derive(Debug, Clone)]
pub struct LoginRequest {
    pub url: String,
    pub ca_cert: Option<PathBuf>,
    pub insecure: bool,
    pub quic_addr: Option<String>,
    pub network_id: Option<String>,
    pub username: String,
    pub password: String,
    pub device_name: String,
}

/// What `login` did.
#[derive(Debug, Clone)]
pub struct LoginOutcome {
    pub profile: Profile,
    pub user: User,
    pub device: Device,
    /// The consent pop-up to show and acknowledge, if the network has one.
    pub consent: Option<Consent>,
    /// Set when the new device waits for approval (account-takeover protection).
    pub approval: Option<Approval>,
}

/// Where and how a new device connects: the appliance and how its certificate is trusted.
#[derive(Debug, Clone)]
pub struct Appliance {
    pub url: String,
    pub ca_cert: Option<PathBuf>,
    pub insecure: bool,
    pub quic_addr: Option<String>,
}

impl Appliance {
    /// The REST client, and the CA file as an absolute path (for the profile).
    pub fn api(&self) -> Result<(ApiClient, Option<PathBuf>)> {
        let ca_cert = match &self.ca_cert {
            Some(p) => Some(
                std::fs::canonicalize(p).with_context(|| format!("cannot read {}", p.display()))?,
            ),
            None => None,
        };
        let trust = Trust::from_options(ca_cert.as_deref(), self.insecure)?;
        Ok((ApiClient::new(&self.url, &trust)?, ca_cert))
    }
}

/// Register a new device with fresh keys (a login). The profile is not saved here.
pub async fn login(req: &LoginRequest) -> Result<LoginOutcome> {
    let appliance = Appliance {
        url: req.url.clone(),
        ca_cert: req.ca_cert.clone(),
        insecure: req.insecure,
        quic_addr: req.quic_addr.clone(),
    };
    let (api, ca_cert) = appliance.api()?;
    let keys = DeviceKeys::generate(&mut rand::rng());
    let public = public_keys(&keys);
    let reg = api
        .register_device(&RegisterRequest {
            username: req.username.clone(),
            password: req.password.clone(),
            network_id: req.network_id.clone(),
            device: device_info(&req.device_name),
            keys: Some(public.clone()),
        })
        .await
        .context("cannot log in")?;
    finish_login(&api, &appliance, ca_cert, &keys, &public, reg).await
}

/// What a new device's platform and version are.
pub fn device_info(name: &str) -> DeviceInfo {
    DeviceInfo {
        name: name.to_string(),
        platform: std::env::consts::OS.to_string(),
        client_version: env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// After a sign-in registered a device (`reg`) with `keys`: publish the keys if the
/// server has not yet, and build the device's profile.
pub(crate) async fn finish_login(
    api: &ApiClient,
    appliance: &Appliance,
    ca_cert: Option<PathBuf>,
    keys: &DeviceKeys,
    public: &PublicKeys,
    reg: Registration,
) -> Result<LoginOutcome> {
    let mut device = reg.device;
    if reg.approval.is_none() && (device.x25519.is_none() || device.ed25519.is_none()) {
        device = api
            .clone()
            .with_token(reg.token.clone())
            .publish_keys(public)
            .await
            .context("cannot publish the device's keys")?;
    }
    let (x25519_secret, ed25519_seed) = Profile::keys_to_strings(keys);
    let profile = Profile {
        url: api.base_url().as_str().trim_end_matches('/').to_string(),
        ca_cert,
        insecure: appliance.insecure,
        quic_addr: appliance.quic_addr.clone(),
        network_id: reg.user.network_id.clone(),
        user_id: reg.user.id.clone(),
        username: reg.user.username.clone(),
        device_id: device.id.clone(),
        device_token: reg.token,
        x25519_secret,
        ed25519_seed,
        consent_version: None,
    };
    Ok(LoginOutcome {
        profile,
        user: reg.user,
        device,
        consent: reg.consent,
        approval: reg.approval,
    })
}

/// A device's public keys as the API wants them.
pub fn public_keys(keys: &DeviceKeys) -> PublicKeys {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    PublicKeys {
        x25519: b64.encode(keys.x25519_public()),
        ed25519: b64.encode(keys.ed25519_public()),
    }
}

/// Remembers recently seen (sender device, client message id) pairs.
#[derive(Debug, Default)]
struct Dedup {
    set: HashSet<(String, String)>,
    order: VecDeque<(String, String)>,
}

impl Dedup {
    fn contains(&self, device: &str, id: &str) -> bool {
        self.set.contains(&(device.to_string(), id.to_string()))
    }
    fn insert(&mut self, device: &str, id: &str) {
        let k = (device.to_string(), id.to_string());
        if self.set.insert(k.clone()) {
            self.order.push_back(k);
            while self.order.len() > DEDUP_CAPACITY {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }
}

/// An open stream: the sending half, and the frames a reader task receives.
struct Connection {
    sender: StreamSender,
    incoming: mpsc::Receiver<Result<ServerFrame>>,
    reader: tokio::task::JoinHandle<()>,
}

/// One logged-in device.
pub struct Session {
    profile: Profile,
    profile_path: Option<PathBuf>,
    api: ApiClient,
    keys: DeviceKeys,
    conn: Option<Connection>,
    /// Frames received while waiting for something else, in order.
    inbox: VecDeque<ServerFrame>,
    devices: HashMap<String, Vec<ConversationDevice>>,
    seen: Dedup,
    policy: Option<Policy>,
    /// Highest seq handed out or dropped, and highest acknowledged, on this stream.
    processed: u64,
    acked: u64,
}

impl Session {
    /// A session of a saved (or just created) profile. Nothing is contacted yet.
    pub fn new(profile: Profile) -> Result<Session> {
        let api = profile.api()?;
        let keys = profile.keys()?;
        Ok(Session {
            profile,
            profile_path: None,
            api,
            keys,
            conn: None,
            inbox: VecDeque::new(),
            devices: HashMap::new(),
            seen: Dedup::default(),
            policy: None,
            processed: 0,
            acked: 0,
        })
    }

    /// Load the profile at `path`; changes (the acknowledged consent) are saved back there.
    pub fn open(path: &Path) -> Result<Session> {
        let mut s = Session::new(Profile::load(path)?)?;
        s.profile_path = Some(path.to_path_buf());
        Ok(s)
    }

    /// Save profile changes to this file from now on.
    pub fn set_profile_path(&mut self, path: Option<PathBuf>) {
        self.profile_path = path;
    }

    pub fn profile(&self) -> &Profile {
        &self.profile
    }
    pub fn api(&self) -> &ApiClient {
        &self.api
    }
    pub fn keys(&self) -> &DeviceKeys {
        &self.keys
    }

    /// Publish this device's public keys if `d` (this device, as the server has it)
    /// has none yet — a device approved after signing in without them.
    pub async fn publish_keys_if_missing(&self, d: &Device) -> Result<()> {
        if d.x25519.is_none() || d.ed25519.is_none() {
            self.api.publish_keys(&public_keys(&self.keys)).await?;
        }
        Ok(())
    }
    /// The policy from `ready` or the latest `policy` frame.
    pub fn policy(&self) -> Option<&Policy> {
        self.policy.as_ref()
    }
    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    /// Acknowledge the consent pop-up of this version (REST) and remember it.
    pub async fn accept_consent(&mut self, version: u64) -> Result<()> {
        self.api
            .acknowledge_consent(version)
            .await
            .context("cannot acknowledge the consent pop-up")?;
        self.profile.consent_version = Some(version);
        if let Some(p) = &self.profile_path {
            self.profile.save(p)?;
        }
        Ok(())
    }

    /// Open and authenticate the stream. When the server asks for consent, `consent` is
    /// called with the pop-up; if it returns true the consent is acknowledged (REST, then
    /// `authenticate` again with `consent_version`), otherwise connecting fails.
    pub async fn connect<F>(&mut self, transport: Transport, mut consent: F) -> Result<Ready>
    where
        F: FnMut(&Consent) -> Result<bool>,
    {
        self.disconnect().await;
        let config = StreamConfig {
            url: self.api.base_url().clone(),
            trust: self.profile.trust()?,
            transport,
            quic_addr: self.profile.quic_addr.clone(),
        };
        // At most: one refusal answered on the open stream, one reconnection after a
        // fatal consent refusal.
        for _ in 0..2 {
            let stream = Stream::connect(&config).await?;
            self.attach(stream);
            let mut consent_version = None;
            let mut asked = false;
            loop {
                self.send_frame(ClientFrame::Authenticate {
                    token: self.profile.device_token.clone(),
                    consent_version,
                })
                .await?;
                match self.await_ready().await {
                    Ok(ready) => return Ok(ready),
                    Err(e) => {
                        let Some(r) = e.downcast_ref::<Refusal>() else {
                            return Err(e);
                        };
                        if r.code != "consent_required" || asked {
                            return Err(e);
                        }
                        let c = r.consent().ok_or_else(|| {
                            anyhow!("the appliance asks for consent without saying to what")
                        })?;
                        let fatal = r.fatal;
                        if !consent(&c)? {
                            self.disconnect().await;
                            bail!("the consent pop-up \"{}\" was not accepted", c.title);
                        }
                        self.accept_consent(c.version).await?;
                        asked = true;
                        if fatal {
                            break;
                        }
                        consent_version = Some(c.version);
                    }
                }
            }
            self.disconnect().await;
        }
        bail!("the appliance keeps asking for consent")
    }

    fn attach(&mut self, stream: Stream) {
        let (sender, mut receiver) = stream.split();
        let (tx, rx) = mpsc::channel(256);
        // Reads until the server closes, even after the session stopped listening: a
        // socket closed with unread data is reset, and the reset can destroy frames
        // (a last `ack`) the server has received but not yet read.
        let reader = tokio::spawn(async move {
            loop {
                match receiver.recv().await {
                    Ok(Some(f)) => {
                        let _ = tx.send(Ok(f)).await;
                    }
                    Ok(None) => break,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        break;
                    }
                }
            }
        });
        self.inbox.clear();
        // Acks count per stream (§4.4: an ack covers only items delivered on its
        // stream), and one sent just before a stream closed may have been lost: what
        // this stream delivers again is acknowledged again once processed.
        self.processed = 0;
        self.acked = 0;
        self.conn = Some(Connection {
            sender,
            incoming: rx,
            reader,
        });
    }

    /// Acknowledge what was processed and close the stream.
    pub async fn disconnect(&mut self) {
        let _ = self.ack_processed().await;
        if let Some(c) = self.conn.take() {
            drop(c.incoming);
            c.sender.close().await;
            let mut reader = c.reader;
            if tokio::time::timeout(Duration::from_secs(2), &mut reader)
                .await
                .is_err()
            {
                reader.abort();
            }
        }
        self.inbox.clear();
    }

    async fn send_frame(&mut self, frame: ClientFrame) -> Result<()> {
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| anyhow!("not connected: call connect first"))?;
        conn.sender.send(&frame).await
    }

    /// The next frame straight from the stream (not the inbox); `None` when it closed.
    async fn recv_frame(&mut self) -> Result<Option<ServerFrame>> {
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| anyhow!("not connected: call connect first"))?;
        match conn.incoming.recv().await {
            Some(Ok(f)) => Ok(Some(f)),
            Some(Err(e)) => Err(e),
            None => Ok(None),
        }
    }

    async fn await_ready(&mut self) -> Result<Ready> {
        let deadline = tokio::time::Instant::now() + ANSWER_TIMEOUT;
        loop {
            let f = tokio::time::timeout_at(deadline, self.recv_frame())
                .await
                .map_err(|_| anyhow!("the appliance did not answer the authentication"))??;
            match f {
                None => bail!("the appliance closed the stream during authentication"),
                Some(ServerFrame::Ready {
                    user_id,
                    device_id,
                    network_id,
                    policy,
                    pending,
                }) => {
                    self.policy = Some(policy.clone());
                    return Ok(Ready {
                        user_id,
                        device_id,
                        network_id,
                        policy,
                        pending,
                    });
                }
                Some(ServerFrame::Error {
                    code,
                    message,
                    client_msg_id,
                    details,
                    fatal,
                }) => {
                    return Err(Refusal {
                        code,
                        message,
                        client_msg_id,
                        details,
                        fatal,
                    }
                    .into());
                }
                Some(ServerFrame::Pong { .. }) => {}
                Some(other) => self.inbox.push_back(other),
            }
        }
    }

    // ------------------------------------------------------------------ sending

    /// The devices of a conversation, from the cache unless `refresh`.
    pub async fn conversation_devices(
        &mut self,
        conversation_id: &str,
        refresh: bool,
    ) -> Result<Vec<ConversationDevice>> {
        if !refresh && let Some(d) = self.devices.get(conversation_id) {
            return Ok(d.clone());
        }
        let d = self
            .api
            .conversation_devices(conversation_id)
            .await
            .context("cannot list the conversation's devices")?;
        self.devices.insert(conversation_id.to_string(), d.clone());
        Ok(d)
    }

    /// Send a text message and wait until the appliance has stored it.
    pub async fn send_text(&mut self, conversation_id: &str, text: &str) -> Result<Accepted> {
        let content = serde_json::to_vec(&TextContent {
            text: text.to_string(),
        })?;
        self.send_content(
            conversation_id,
            Kind::Text,
            &content,
            EnvelopeOptions::default(),
        )
        .await
    }

    /// Send any content (the JSON bytes of §5.2) and wait for `accepted`. If the server
    /// says the device list was stale, it is fetched again and the envelope re-sealed
    /// once (same `client_msg_id`).
    pub async fn send_content(
        &mut self,
        conversation_id: &str,
        kind: Kind,
        content: &[u8],
        options: EnvelopeOptions,
    ) -> Result<Accepted> {
        let client_msg_id = uuid::Uuid::now_v7().to_string();
        let mut refresh = false;
        loop {
            let devices = self.conversation_devices(conversation_id, refresh).await?;
            let out = Outgoing {
                sender_device_id: &self.profile.device_id,
                conversation_id,
                client_msg_id: &client_msg_id,
                kind,
                content,
            };
            let envelope = seal_envelope(
                &mut rand::rng(),
                &self.keys,
                &out,
                &devices,
                options.clone(),
            )?;
            self.send_frame(ClientFrame::Send { envelope }).await?;
            match self.await_accepted(&client_msg_id).await {
                Ok(a) => return Ok(a),
                Err(e) => {
                    let stale = e
                        .downcast_ref::<Refusal>()
                        .is_some_and(|r| !r.fatal && STALE_DEVICE_CODES.contains(&r.code.as_str()));
                    if stale && !refresh {
                        refresh = true;
                        continue;
                    }
                    return Err(e.context("the appliance refused the message"));
                }
            }
        }
    }

    async fn await_accepted(&mut self, client_msg_id: &str) -> Result<Accepted> {
        let deadline = tokio::time::Instant::now() + ANSWER_TIMEOUT;
        loop {
            let f = tokio::time::timeout_at(deadline, self.recv_frame())
                .await
                .map_err(|_| anyhow!("the appliance did not confirm the message in time"))??;
            match f {
                None => bail!("the appliance closed the stream before confirming the message"),
                Some(ServerFrame::Accepted {
                    client_msg_id: id,
                    seq,
                    server_time,
                    duplicate,
                }) if id == client_msg_id => {
                    return Ok(Accepted {
                        client_msg_id: id,
                        seq,
                        server_time,
                        duplicate,
                    });
                }
                Some(ServerFrame::Error {
                    code,
                    message,
                    client_msg_id: id,
                    details,
                    fatal,
                }) if fatal || id.as_deref() == Some(client_msg_id) => {
                    return Err(Refusal {
                        code,
                        message,
                        client_msg_id: id,
                        details,
                        fatal,
                    }
                    .into());
                }
                Some(ServerFrame::Pong { .. }) | Some(ServerFrame::Accepted { .. }) => {}
                Some(ServerFrame::Policy { policy }) => {
                    self.policy = Some(policy.clone());
                    self.inbox.push_back(ServerFrame::Policy { policy });
                }
                Some(other) => self.inbox.push_back(other),
            }
        }
    }

    /// Upload a file (encrypted) and send it with an optional caption.
    pub async fn send_file(
        &mut self,
        conversation_id: &str,
        path: &Path,
        caption: Option<&str>,
        options: EnvelopeOptions,
        progress: Progress<'_>,
    ) -> Result<(Accepted, FileRef)> {
        let file = files::upload_file(&self.api, path, progress).await?;
        let accepted = self
            .send_file_ref(conversation_id, &file, caption, options)
            .await?;
        Ok((accepted, file))
    }

    /// Send an already uploaded file (its blob is added to `options.attachments`).
    pub async fn send_file_ref(
        &mut self,
        conversation_id: &str,
        file: &FileRef,
        caption: Option<&str>,
        mut options: EnvelopeOptions,
    ) -> Result<Accepted> {
        if file.sha256.is_empty() {
            bail!("the upload of {} is not complete", file.name);
        }
        let content = serde_json::to_vec(&FileContent {
            text: caption.map(str::to_string),
            file: file.clone(),
        })?;
        if !options
            .attachments
            .iter()
            .any(|a| a.blob_id == file.blob_id)
        {
            options.attachments.push(Attachment {
                blob_id: file.blob_id.clone(),
            });
        }
        self.send_content(conversation_id, Kind::File, &content, options)
            .await
    }

    /// Download, decrypt and check a received file into `dest`.
    pub async fn download_file(
        &self,
        file: &FileRef,
        dest: &Path,
        progress: Progress<'_>,
    ) -> Result<()> {
        files::download_file(&self.api, file, dest, progress)
            .await
            .map(drop)
    }

    /// Tell the senders of these messages that they were read (if the network allows).
    pub async fn send_receipt(
        &mut self,
        conversation_id: &str,
        sender_user_id: &str,
        client_msg_ids: Vec<String>,
    ) -> Result<()> {
        self.send_frame(ClientFrame::Receipt {
            receipt: Receipt {
                conversation_id: conversation_id.to_string(),
                sender_user_id: sender_user_id.to_string(),
                client_msg_ids,
                reader_user_id: String::new(),
                read_at: 0,
            },
        })
        .await
    }

    /// The user with exactly this username in the caller's network.
    pub async fn find_user(&self, username: &str) -> Result<User> {
        let users = self
            .api
            .find_users(username)
            .await
            .with_context(|| format!("cannot look up {username}"))?;
        match users.len() {
            0 => bail!("there is no user {username} in your network"),
            1 => Ok(users.into_iter().next().expect("one user")),
            n => bail!("{n} users are called {username}"),
        }
    }

    /// The direct conversation with this username (created if needed).
    pub async fn direct_with(&self, username: &str) -> Result<super::api::Conversation> {
        let user = self.find_user(username).await?;
        self.api
            .direct_conversation(&user.id)
            .await
            .with_context(|| format!("cannot open a conversation with {username}"))
    }

    // ---------------------------------------------------------------- receiving

    fn mark(&mut self, seq: u64) {
        self.processed = self.processed.max(seq);
    }

    /// Acknowledge every item up to the last one handed out by [`next_event`](Self::next_event).
    pub async fn ack_processed(&mut self) -> Result<()> {
        if self.processed > self.acked && self.conn.is_some() {
            let up_to = self.processed;
            self.send_frame(ClientFrame::Ack { up_to }).await?;
            self.acked = up_to;
        }
        Ok(())
    }

    /// The next event; `None` when the server closed the stream. A fatal error frame
    /// is returned as an `Err` holding a [`Refusal`].
    pub async fn next_event(&mut self) -> Result<Option<Event>> {
        // An ack that cannot be sent means the stream is gone. What the server sent
        // before closing it (typically a fatal error saying why) is still to be read,
        // and is what the caller needs; the items stay unacknowledged and come again.
        if let Err(e) = self.ack_processed().await {
            tracing::debug!(error = %format!("{e:#}"), "cannot acknowledge on the stream");
        }
        loop {
            let frame = match self.inbox.pop_front() {
                Some(f) => f,
                None => match self.recv_frame().await? {
                    Some(f) => f,
                    None => return Ok(None),
                },
            };
            match frame {
                ServerFrame::Deliver { envelope: d } => {
                    self.mark(d.seq);
                    if self.seen.contains(&d.sender_device_id, &d.client_msg_id) {
                        continue;
                    }
                    let key = self
                        .sender_key(&d.conversation_id, &d.sender_user_id, &d.sender_device_id)
                        .await;
                    let opened =
                        match key {
                            None => Err("the sender device is not a device of this conversation"
                                .to_string()),
                            Some(k) => open_delivery(&self.keys, &d, &k).map_err(|e| e.to_string()),
                        };
                    return Ok(Some(match opened {
                        Ok(plain) => {
                            self.seen.insert(&d.sender_device_id, &d.client_msg_id);
                            Event::Message(ReceivedMessage::new(&d, &plain))
                        }
                        Err(reason) => Event::Dropped {
                            seq: d.seq,
                            conversation_id: d.conversation_id,
                            sender_device_id: d.sender_device_id,
                            client_msg_id: d.client_msg_id,
                            reason,
                        },
                    }));
                }
                ServerFrame::Membership {
                    seq,
                    server_time,
                    event,
                } => {
                    self.mark(seq);
                    self.devices.remove(&event.conversation_id);
                    return Ok(Some(Event::Membership {
                        seq,
                        server_time,
                        event,
                    }));
                }
                ServerFrame::Receipt {
                    seq,
                    server_time,
                    receipt,
                } => {
                    self.mark(seq);
                    return Ok(Some(Event::Receipt {
                        seq,
                        server_time,
                        receipt,
                    }));
                }
                ServerFrame::DevicesPending { devices } => {
                    return Ok(Some(Event::DevicesPending(devices)));
                }
                ServerFrame::Policy { policy } => {
                    self.policy = Some(policy.clone());
                    return Ok(Some(Event::Policy(policy)));
                }
                ServerFrame::Error {
                    code,
                    message,
                    client_msg_id,
                    details,
                    fatal,
                } => {
                    let r = Refusal {
                        code,
                        message,
                        client_msg_id,
                        details,
                        fatal,
                    };
                    if fatal {
                        return Err(r.into());
                    }
                    return Ok(Some(Event::Error(r)));
                }
                ServerFrame::Accepted { .. }
                | ServerFrame::Ready { .. }
                | ServerFrame::Pong { .. } => {}
            }
        }
    }

    /// The Ed25519 key (base64) of a sender device of a conversation, refreshing the
    /// device list once if it is not there.
    async fn sender_key(
        &mut self,
        conversation_id: &str,
        user_id: &str,
        device_id: &str,
    ) -> Option<String> {
        for refresh in [false, true] {
            let list = self
                .conversation_devices(conversation_id, refresh)
                .await
                .ok()?;
            if let Some(d) = list
                .iter()
                .find(|d| d.device_id == device_id && d.user_id == user_id)
            {
                return Some(d.ed25519.clone());
            }
        }
        None
    }

    /// Round trip time of a `ping`.
    pub async fn ping(&mut self) -> Result<Duration> {
        let nonce = uuid::Uuid::now_v7().to_string();
        let start = std::time::Instant::now();
        self.send_frame(ClientFrame::Ping {
            nonce: Some(nonce.clone()),
        })
        .await?;
        let deadline = tokio::time::Instant::now() + ANSWER_TIMEOUT;
        loop {
            let f = tokio::time::timeout_at(deadline, self.recv_frame())
                .await
                .map_err(|_| anyhow!("no pong"))??;
            match f {
                None => bail!("the appliance closed the stream"),
                Some(ServerFrame::Pong { nonce: Some(n) }) if n == nonce => {
                    return Ok(start.elapsed());
                }
                Some(ServerFrame::Pong { .. }) => {}
                Some(other) => self.inbox.push_back(other),
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            c.reader.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_is_bounded() {
        let mut d = Dedup::default();
        d.insert("a", "1");
        assert!(d.contains("a", "1"));
        assert!(!d.contains("a", "2"));
        for i in 0..DEDUP_CAPACITY {
            d.insert("b", &i.to_string());
        }
        assert!(!d.contains("a", "1"));
        assert_eq!(d.set.len(), DEDUP_CAPACITY);
    }

    #[test]
    fn refusal_consent() {
        let consent =
            serde_json::json!({"version": 3, "title": "T", "body": "B", "button_label": "OK"});
        let mut r = Refusal {
            code: "consent_required".into(),
            message: "m".into(),
            client_msg_id: None,
            details: Some(serde_json::json!({ "consent": consent })),
            fatal: false,
        };
        assert_eq!(r.consent().unwrap().version, 3);
        assert_eq!(r.consent().unwrap().title, "T");
        r.details = Some(consent);
        assert!(r.consent().is_none());
        r.details = None;
        assert!(r.consent().is_none());
    }

    #[test]
    fn sessions_from_profiles() {
        let p = crate::client::profile::tests::sample();
        let mut p2 = p.clone();
        p2.insecure = true;
        let s = Session::new(p2).unwrap();
        assert_eq!(s.keys().x25519_public(), p.keys().unwrap().x25519_public());
        assert!(!s.is_connected());
        let pk = public_keys(s.keys());
        assert_eq!(pk.x25519.len(), 44);
    }
}
