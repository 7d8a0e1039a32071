//! `outpost client …`: the reference messaging client on the command line — log a device
//! in, manage conversations, send and receive end-to-end-encrypted messages and files.
//! All the protocol work is in [`crate::client`]; this file parses arguments, prompts
//! and prints.

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::output;
use crate::client::api::{Conversation, ConversationKind};
use crate::client::content::FileRef;
use crate::client::envelope::EnvelopeOptions;
use crate::client::session::{Event, LoginRequest, Refusal, Session};
use crate::client::{Profile, Transport, files};
use crate::relay::frame::{Consent, Kind};

const AFTER_HELP: &str = "\
The profile (device id, token and private keys) is saved with mode 0600 at --profile,
$OUTPOST_CLIENT_PROFILE, or ~/.config/outpost/client.json. Use one profile per device.

Files: `send --file PATH` encrypts, uploads and sends a file. `listen --save-files DIR`
downloads, decrypts and checks every file received; `listen --json` prints each message
as one JSON line, and `download LINE.json` downloads the file of such a line (or of a
`File` object, e.g. the output of `upload`). `upload PATH --ref REF.json` uploads without
sending and can resume; `send --file-ref REF.json` sends it later.";

#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct ClientArgs {
    /// Client profile file [default: ~/.config/outpost/client.json].
    #[arg(
        long,
        env = "OUTPOST_CLIENT_PROFILE",
        global = true,
        hide_env_values = true
    )]
    pub profile: Option<PathBuf>,
    #[command(subcommand)]
    pub command: ClientCommand,
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register this machine as a new device of your account (fresh keys) and save it.
    Login(LoginArgs),
    /// Revoke this device and delete its profile.
    Logout,
    /// Approve this new device with the code mailed to you (where your security group
    /// asks new devices to be approved), or ask for a new code.
    Approve {
        /// The six-digit code from the mail.
        #[arg(long, required_unless_present = "resend")]
        code: Option<String>,
        /// Mail a new code instead.
        #[arg(long, conflicts_with = "code")]
        resend: bool,
    },
    /// Show this device's user, device and policy.
    Whoami {
        #[arg(long)]
        json: bool,
    },
    /// List your devices, or revoke one.
    Devices {
        #[command(subcommand)]
        command: Option<DevicesCommand>,
        #[arg(long)]
        json: bool,
    },
    /// List conversations (default), create rooms, open direct conversations.
    Rooms {
        #[command(subcommand)]
        command: Option<RoomsCommand>,
        #[arg(long, global = true)]
        json: bool,
    },
    /// Send a message to a person (--to) or a room (--room), optionally with a file.
    Send(SendArgs),
    /// Receive messages and print them, acknowledging each once printed.
    Listen(ListenArgs),
    /// Encrypt and upload a file without sending it; prints its `File` object.
    Upload(UploadArgs),
    /// Download, decrypt and check a received file.
    Download(DownloadArgs),
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The client profile your registration page or administrator gave you
    /// (outpost-NETWORK.json): the server, its certificate and your network, signed by
    /// the appliance. Replaces --url, --ca-cert and --network.
    #[arg(long, conflicts_with_all = ["url", "ca_cert", "insecure", "network"])]
    pub connection: Option<PathBuf>,
    /// Appliance URL, e.g. https://outpost.example.org:8443
    #[arg(long, env = "OUTPOST_URL", required_unless_present = "connection")]
    pub url: Option<String>,
    /// CA certificate (PEM) that signed the appliance's certificate (its tls/ca.pem).
    #[arg(long, env = "OUTPOST_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// Do not check the appliance's certificate (testing only).
    #[arg(long)]
    pub insecure: bool,
    /// Network id (needed when the username exists in several networks).
    #[arg(long, conflicts_with = "sso")]
    pub network: Option<String>,
    /// Your username (e-mail address) [default: the one the client profile names].
    #[arg(long, env = "OUTPOST_CLIENT_USERNAME", conflicts_with = "sso")]
    pub username: Option<String>,
    /// Read the password from the first line of standard input (else
    /// $OUTPOST_CLIENT_PASSWORD, else a prompt).
    #[arg(long, conflicts_with = "sso")]
    pub password_stdin: bool,
    /// Sign in through your organisation's identity provider (single sign-on) with this
    /// company id: prints a URL to open in a browser, and waits for the answer on a
    /// loopback port.
    #[arg(long, value_name = "COMPANY_ID")]
    pub sso: Option<String>,
    /// With --sso: your e-mail address, to prefill the identity provider's sign-in.
    #[arg(long, requires = "sso")]
    pub email: Option<String>,
    /// Device name [default: the host name].
    #[arg(long)]
    pub device_name: Option<String>,
    /// QUIC address host:port if not the URL's host and port.
    #[arg(long)]
    pub quic_addr: Option<String>,
    /// Accept the network's consent pop-up without asking (after reading it).
    #[arg(long)]
    pub accept_consent: bool,
    /// Replace an existing profile (the old device stays registered until revoked).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum DevicesCommand {
    /// List your devices (default).
    List,
    /// Revoke one of your devices (also: refuse a device that waits for approval).
    Revoke { device_id: String },
    /// Approve a new device of your account that waits for approval.
    Approve { device_id: String },
}

#[derive(Debug, Subcommand)]
pub enum RoomsCommand {
    /// List your conversations (default).
    List,
    /// Create a room with these members (usernames).
    Create {
        name: String,
        #[arg(long = "member", value_name = "USERNAME")]
        members: Vec<String>,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Open (creating if needed) the direct conversation with a user.
    Dm { username: String },
    /// Show one conversation.
    Show { room: String },
    /// Add members (usernames) to a room.
    Add {
        room: String,
        #[arg(required = true)]
        usernames: Vec<String>,
    },
    /// Remove a member (username) from a room.
    Remove { room: String, username: String },
    /// Leave a room.
    Leave { room: String },
    /// Delete a room.
    Delete { room: String },
}

#[derive(Debug, Args)]
pub struct StreamArgs {
    /// Stream transport: websocket or quic.
    #[arg(long, default_value = "websocket")]
    pub transport: Transport,
    /// Accept the network's consent pop-up without asking (after reading it).
    #[arg(long)]
    pub accept_consent: bool,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// Username of the person (direct conversation).
    #[arg(long, required_unless_present = "room", conflicts_with = "room")]
    pub to: Option<String>,
    /// Conversation id (or exact room name).
    #[arg(long)]
    pub room: Option<String>,
    /// Attach this file (encrypted, then uploaded); the text becomes its caption.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Send a file uploaded before with `upload --ref`.
    #[arg(long, conflicts_with = "file")]
    pub file_ref: Option<PathBuf>,
    /// Expiration timer in seconds [default: your group's maximum].
    #[arg(long)]
    pub ttl: Option<u64>,
    /// Burn-on-read timer in seconds.
    #[arg(long, default_value_t = 0)]
    pub bor: u64,
    /// Print the acceptance as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub stream: StreamArgs,
    /// The message (default: standard input, unless a file is sent).
    pub text: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ListenArgs {
    /// One JSON object per line (messages include the decrypted content).
    #[arg(long)]
    pub json: bool,
    /// Exit after this many messages (exit status 1 if the timeout comes first).
    #[arg(long)]
    pub count: Option<u64>,
    /// Exit after this many seconds.
    #[arg(long)]
    pub timeout: Option<u64>,
    /// Download, decrypt and check received files into this folder.
    #[arg(long)]
    pub save_files: Option<PathBuf>,
    #[command(flatten)]
    pub stream: StreamArgs,
}

#[derive(Debug, Args)]
pub struct UploadArgs {
    pub path: PathBuf,
    /// Keep the `File` object (with its key: keep it secret) in this file; if it exists,
    /// resume that upload instead of starting a new one.
    #[arg(long = "ref")]
    pub ref_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// A message line of `listen --json`, a `{"file": …}` content, or a `File` object,
    /// from this file (`-`: standard input).
    pub reference: PathBuf,
    /// Where to write the file [default: its name, in the current folder]; `-` for
    /// standard output (checked only at the end).
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
}

fn profile_path(args: &ClientArgs) -> Result<PathBuf> {
    args.profile
        .clone()
        .or_else(Profile::default_path)
        .ok_or_else(|| anyhow!("cannot tell where the profile is: set HOME or pass --profile"))
}

/// Run `outpost client …`.
pub async fn run(args: ClientArgs) -> Result<i32> {
    let path = profile_path(&args)?;
    match args.command {
        ClientCommand::Login(l) => login(&path, l).await,
        ClientCommand::Logout => logout(&path).await,
        ClientCommand::Approve { code, resend } => approve(&path, code, resend).await,
        ClientCommand::Whoami { json } => whoami(&path, json).await,
        ClientCommand::Devices { command, json } => devices(&path, command, json).await,
        ClientCommand::Rooms { command, json } => rooms(&path, command, json).await,
        ClientCommand::Send(s) => send(&path, s).await,
        ClientCommand::Listen(l) => listen(&path, l).await,
        ClientCommand::Upload(u) => upload(&path, u).await,
        ClientCommand::Download(d) => download(&path, d).await,
    }
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into the buffer we own.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "device".into();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).trim().to_string();
    if name.is_empty() {
        "device".into()
    } else {
        name
    }
}

fn read_password(from_stdin: bool) -> Result<String> {
    if let Ok(p) = std::env::var("OUTPOST_CLIENT_PASSWORD") {
        return Ok(p);
    }
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    rpassword::prompt_password("Password: ").context("cannot read the password")
}

/// Show the consent pop-up and ask (or accept it with `--accept-consent`).
fn ask_consent(c: &Consent, auto: bool) -> Result<bool> {
    eprintln!("\n== {} ==\n\n{}\n", c.title, c.body);
    if auto {
        eprintln!("(\"{}\" accepted with --accept-consent)", c.button_label);
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        bail!("this network asks for consent: read it above and run again with --accept-consent");
    }
    eprint!("{} [y/N] ", c.button_label);
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(answer.trim().to_ascii_lowercase().starts_with('y'))
}

async fn login(path: &Path, a: LoginArgs) -> Result<i32> {
    if path.exists() && !a.force {
        let old = Profile::load(path).ok();
        let who = old
            .map(|p| format!(" as {} (device {})", p.username, p.device_id))
            .unwrap_or_default();
        bail!(
            "already logged in{who} with {}: pass --force to register a new device, or \
             --profile to keep several",
            path.display()
        );
    }
    let (url, ca_cert, network, from_file) = match &a.connection {
        Some(file) => {
            let (url, ca, net, user) = open_connection(file, path).await?;
            (url, Some(ca), Some(net), user)
        }
        None => (
            a.url.clone().context("pass --url, or --connection FILE")?,
            a.ca_cert.clone(),
            a.network.clone(),
            None,
        ),
    };
    let outcome = match a.sso {
        Some(company_id) => {
            let req = crate::client::SsoLoginRequest {
                appliance: crate::client::Appliance {
                    url,
                    ca_cert,
                    insecure: a.insecure,
                    quic_addr: a.quic_addr,
                },
                company_id,
                login_hint: a.email,
                device_name: a.device_name.unwrap_or_else(hostname),
            };
            crate::client::login_sso(&req, |url| {
                eprintln!("Open this address in a browser to sign in:\n\n{url}\n");
                eprintln!("waiting for the identity provider's answer (Ctrl-C to give up)…");
            })
            .await?
        }
        None => {
            let username = a.username.clone().or(from_file).context(
                "pass --username (the client profile names nobody), or --sso COMPANY_ID",
            )?;
            let password = read_password(a.password_stdin)?;
            crate::client::login(&LoginRequest {
                url,
                ca_cert,
                insecure: a.insecure,
                quic_addr: a.quic_addr,
                network_id: network,
                username,
                password,
                device_name: a.device_name.unwrap_or_else(hostname),
            })
            .await?
        }
    };
    outcome.profile.save(path)?;
    eprintln!(
        "logged in as {} (network {}), device {} — profile saved in {}",
        outcome.user.username,
        outcome.user.network_id,
        outcome.device.id,
        path.display()
    );
    if let Some(a) = &outcome.approval {
        eprintln!(
            "this device waits for approval (your security group protects accounts from takeover):"
        );
        if a.methods.iter().any(|m| m == "email") {
            eprintln!(
                "  - enter the code mailed to {}: outpost client approve --code NNNNNN",
                outcome.user.username
            );
        }
        eprintln!(
            "  - or, on a device you already use: outpost client devices approve {}",
            outcome.device.id
        );
        return Ok(0);
    }
    if let Some(c) = &outcome.consent {
        let mut session = Session::new(outcome.profile.clone())?;
        session.set_profile_path(Some(path.to_path_buf()));
        match ask_consent(c, a.accept_consent) {
            Ok(true) => session.accept_consent(c.version).await?,
            Ok(false) => eprintln!("consent not given: the stream will ask again"),
            Err(e) => eprintln!("{e:#}"),
        }
    }
    Ok(0)
}

async fn approve(path: &Path, code: Option<String>, resend: bool) -> Result<i32> {
    let session = Session::open(path)?;
    if resend {
        let a = session
            .api()
            .resend_approval_code()
            .await
            .context("cannot mail a new code")?;
        eprintln!(
            "a new code was mailed to {}; it works until {}",
            session.profile().username,
            a.code_expires_at.as_deref().unwrap_or("?")
        );
        return Ok(0);
    }
    let code = code.context("pass --code, or --resend")?;
    let d = session
        .api()
        .enter_approval_code(&code)
        .await
        .context("cannot approve this device")?;
    session
        .publish_keys_if_missing(&d)
        .await
        .context("cannot publish this device's keys")?;
    eprintln!("device {} approved", d.id);
    Ok(0)
}

/// Read and check a client profile: its signature and fingerprint, then — through its
/// certificate, before any password is sent — that the appliance holds the key that
/// signed it. Saves the certificate next to the device profile; returns the URL, the
/// certificate's path, the network id and the username it names.
async fn open_connection(
    file: &Path,
    device_profile: &Path,
) -> Result<(String, PathBuf, String, Option<String>)> {
    use crate::client_profile::SignedProfile;
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let signed = SignedProfile::verify_bytes(&bytes)
        .with_context(|| format!("{} cannot be trusted", file.display()))?;
    let p = &signed.profile;
    let dir = device_profile
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let ca = dir.join(format!("outpost-{}-ca.pem", p.network.id));
    std::fs::write(&ca, &p.trust.certificate_pem)
        .with_context(|| format!("cannot write {}", ca.display()))?;
    let api = crate::client::ApiClient::new(&p.server, &crate::client::Trust::CaFile(ca.clone()))?;
    let info = api
        .server_info()
        .await
        .with_context(|| format!("cannot reach {} with the profile's certificate", p.server))?;
    if info.profile_key != signed.key() {
        bail!(
            "{} answers, but with another profile key than the one that signed {}: refusing \
             to send your password to it",
            p.server,
            file.display()
        );
    }
    eprintln!(
        "client profile checked: {} (network {}, certificate SHA-256 {})",
        p.server, p.network.name, p.trust.fingerprint_sha256
    );
    Ok((
        p.server.clone(),
        ca,
        p.network.id.clone(),
        p.username.clone(),
    ))
}

async fn logout(path: &Path) -> Result<i32> {
    let session = Session::open(path)?;
    let id = session.profile().device_id.clone();
    match session.api().revoke_device(&id).await {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.code(),
                Some("invalid_token" | "device_not_found" | "device_revoked")
            ) => {}
        Err(e) => return Err(anyhow!(e).context("cannot revoke this device")),
    }
    std::fs::remove_file(path).with_context(|| format!("cannot delete {}", path.display()))?;
    eprintln!("device {id} revoked; {} deleted", path.display());
    Ok(0)
}

async fn whoami(path: &Path, as_json: bool) -> Result<i32> {
    let session = Session::open(path)?;
    let me = session
        .api()
        .me()
        .await
        .context("cannot ask who this device is")?;
    let v = json!({
        "user": me.user, "device": me.device, "policy": me.policy, "consent": me.consent,
        "profile": path,
    });
    if as_json {
        output::json(&v);
    } else {
        output::fields(&v);
    }
    Ok(0)
}

async fn devices(path: &Path, command: Option<DevicesCommand>, as_json: bool) -> Result<i32> {
    let session = Session::open(path)?;
    match command.unwrap_or(DevicesCommand::List) {
        DevicesCommand::List => {
            let list = session
                .api()
                .list_devices()
                .await
                .context("cannot list devices")?;
            let me = &session.profile().device_id;
            let rows: Vec<Value> = list
                .iter()
                .map(|d| {
                    let mut v = json!(d);
                    v["this"] = json!(if &d.id == me { "*" } else { "" });
                    v
                })
                .collect();
            if as_json {
                output::json(&json!({ "devices": list }));
            } else {
                output::table(
                    &rows,
                    &[
                        ("", "this"),
                        ("ID", "id"),
                        ("NAME", "name"),
                        ("PLATFORM", "platform"),
                        ("STATUS", "status"),
                        ("LAST SEEN", "last_seen_at"),
                    ],
                );
            }
        }
        DevicesCommand::Approve { device_id } => {
            let d = session
                .api()
                .approve_device(&device_id)
                .await
                .context("cannot approve the device")?;
            eprintln!("device {} ({}) approved", d.id, d.name);
        }
        DevicesCommand::Revoke { device_id } => {
            session
                .api()
                .revoke_device(&device_id)
                .await
                .context("cannot revoke the device")?;
            eprintln!("device {device_id} revoked");
        }
    }
    Ok(0)
}

/// A conversation by id, or by exact room name.
async fn resolve_room(session: &Session, room: &str) -> Result<Conversation> {
    match session.api().conversation(room).await {
        Ok(c) => return Ok(c),
        Err(e) if e.code() == Some("conversation_not_found") => {}
        Err(e) => return Err(anyhow!(e).context(format!("cannot open conversation {room}"))),
    }
    let all = session.api().list_conversations().await?;
    let named: Vec<_> = all
        .into_iter()
        .filter(|c| c.name.as_deref() == Some(room))
        .collect();
    match named.len() {
        1 => Ok(named.into_iter().next().expect("one")),
        0 => bail!("no conversation {room}"),
        n => bail!("{n} rooms are called {room}: use the id"),
    }
}

fn conversation_row(c: &Conversation) -> Value {
    json!({
        "id": c.id,
        "kind": match c.kind { ConversationKind::Direct => "direct", ConversationKind::Room => "room" },
        "name": c.name.clone().unwrap_or_default(),
        "members": c.members.len(),
        "updated_at": c.updated_at,
    })
}

async fn user_ids(session: &Session, usernames: &[String]) -> Result<Vec<String>> {
    let mut ids = Vec::with_capacity(usernames.len());
    for u in usernames {
        ids.push(session.find_user(u).await?.id);
    }
    Ok(ids)
}

fn print_conversation(c: &Conversation, as_json: bool) {
    if as_json {
        output::json(&json!(c));
    } else {
        output::fields(&json!(c));
    }
}

async fn rooms(path: &Path, command: Option<RoomsCommand>, as_json: bool) -> Result<i32> {
    let session = Session::open(path)?;
    let api = session.api();
    match command.unwrap_or(RoomsCommand::List) {
        RoomsCommand::List => {
            let list = api
                .list_conversations()
                .await
                .context("cannot list conversations")?;
            if as_json {
                output::json(&json!({ "conversations": list }));
            } else {
                let rows: Vec<Value> = list.iter().map(conversation_row).collect();
                output::table(
                    &rows,
                    &[
                        ("ID", "id"),
                        ("KIND", "kind"),
                        ("NAME", "name"),
                        ("MEMBERS", "members"),
                        ("UPDATED", "updated_at"),
                    ],
                );
            }
        }
        RoomsCommand::Create {
            name,
            members,
            description,
        } => {
            let ids = user_ids(&session, &members).await?;
            let c = api
                .create_room(&name, &description, &ids)
                .await
                .context("cannot create the room")?;
            print_conversation(&c, as_json);
        }
        RoomsCommand::Dm { username } => {
            let c = session.direct_with(&username).await?;
            print_conversation(&c, as_json);
        }
        RoomsCommand::Show { room } => {
            let c = resolve_room(&session, &room).await?;
            print_conversation(&c, as_json);
        }
        RoomsCommand::Add { room, usernames } => {
            let c = resolve_room(&session, &room).await?;
            let ids = user_ids(&session, &usernames).await?;
            api.add_members(&c.id, &ids)
                .await
                .context("cannot add the members")?;
            eprintln!("added {} member(s) to {}", ids.len(), c.id);
        }
        RoomsCommand::Remove { room, username } => {
            let c = resolve_room(&session, &room).await?;
            let id = session.find_user(&username).await?.id;
            api.remove_member(&c.id, &id)
                .await
                .context("cannot remove the member")?;
            eprintln!("removed {username} from {}", c.id);
        }
        RoomsCommand::Leave { room } => {
            let c = resolve_room(&session, &room).await?;
            api.remove_member(&c.id, &session.profile().user_id)
                .await
                .context("cannot leave the room")?;
            eprintln!("left {}", c.id);
        }
        RoomsCommand::Delete { room } => {
            let c = resolve_room(&session, &room).await?;
            api.delete_conversation(&c.id)
                .await
                .context("cannot delete the room")?;
            eprintln!("deleted {}", c.id);
        }
    }
    Ok(0)
}

/// A progress printer for file transfers (only on a terminal).
fn progress_printer(label: &'static str) -> impl FnMut(u64, u64) + Send {
    let show = std::io::stderr().is_terminal();
    let mut last = u64::MAX;
    move |done, total| {
        if !show {
            return;
        }
        let pct = done.saturating_mul(100).checked_div(total).unwrap_or(100);
        if pct != last {
            last = pct;
            eprint!("\r{label} {pct:>3}%");
            if done >= total {
                eprintln!();
            }
        }
    }
}

async fn connect(session: &mut Session, stream: &StreamArgs) -> Result<()> {
    let auto = stream.accept_consent;
    session
        .connect(stream.transport, |c| ask_consent(c, auto))
        .await
        .context("cannot open the stream")?;
    Ok(())
}

async fn send(path: &Path, a: SendArgs) -> Result<i32> {
    let mut text = a.text.join(" ");
    if text.is_empty() && a.file.is_none() && a.file_ref.is_none() {
        if std::io::stdin().is_terminal() {
            eprintln!("type the message, then Ctrl-D:");
        }
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the message from standard input")?;
        text = text.trim_end_matches(['\r', '\n']).to_string();
        if text.is_empty() {
            bail!("nothing to send");
        }
    }
    let mut session = Session::open(path)?;
    let conversation = match (&a.to, &a.room) {
        (Some(user), _) => session.direct_with(user).await?,
        (None, Some(room)) => resolve_room(&session, room).await?,
        (None, None) => bail!("say where to send: --to USERNAME or --room ID"),
    };
    let file_ref = match &a.file_ref {
        Some(p) => Some(read_file_ref(p)?),
        None => None,
    };
    let file = match &a.file {
        Some(p) => {
            let mut progress = progress_printer("upload");
            Some(files::upload_file(session.api(), p, &mut progress).await?)
        }
        None => file_ref,
    };
    connect(&mut session, &a.stream).await?;
    let options = EnvelopeOptions {
        ttl_secs: a.ttl,
        bor_secs: a.bor,
        ..Default::default()
    };
    let caption = (!text.is_empty()).then_some(text.as_str());
    let result = match &file {
        Some(f) => {
            session
                .send_file_ref(&conversation.id, f, caption, options)
                .await
        }
        None => {
            let content = serde_json::to_vec(&json!({ "text": text }))?;
            session
                .send_content(&conversation.id, Kind::Text, &content, options)
                .await
        }
    };
    session.disconnect().await;
    let accepted = result?;
    if a.json {
        println!(
            "{}",
            json!({
                "conversation_id": conversation.id,
                "client_msg_id": accepted.client_msg_id,
                "seq": accepted.seq,
                "server_time": accepted.server_time,
                "duplicate": accepted.duplicate,
                "file": file,
            })
        );
    } else {
        println!(
            "sent {} to {} (seq {})",
            accepted.client_msg_id, conversation.id, accepted.seq
        );
    }
    Ok(0)
}

fn format_time(ms: u64) -> String {
    use chrono::TimeZone;
    match chrono::Local.timestamp_millis_opt(i64::try_from(ms).unwrap_or(i64::MAX)) {
        chrono::LocalResult::Single(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
        _ => ms.to_string(),
    }
}

/// A free file name in `dir` for `name` (`name`, `name (1)`, …).
fn free_path(dir: &Path, name: &str) -> PathBuf {
    let first = dir.join(name);
    if !first.exists() {
        return first;
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s.to_string(), format!(".{e}")),
        _ => (name.to_string(), String::new()),
    };
    (1..)
        .map(|i| dir.join(format!("{stem} ({i}){ext}")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

async fn listen(path: &Path, a: ListenArgs) -> Result<i32> {
    let mut session = Session::open(path)?;
    if let Some(dir) = &a.save_files {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    connect(&mut session, &a.stream).await?;
    let deadline = a
        .timeout
        .map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
    let result = listen_loop(&mut session, &a, deadline).await;
    session.disconnect().await;
    result
}

async fn listen_loop(
    session: &mut Session,
    a: &ListenArgs,
    deadline: Option<tokio::time::Instant>,
) -> Result<i32> {
    let me = session.profile().user_id.clone();
    let mut received = 0u64;
    let mut reconnected = false;
    loop {
        if a.count.is_some_and(|n| received >= n) {
            return Ok(0);
        }
        let next = session.next_event();
        let ev = tokio::select! {
            ev = next => ev,
            _ = tokio::signal::ctrl_c() => return Ok(0),
            _ = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            } => {
                if let Some(n) = a.count {
                    eprintln!("timed out after {received} of {n} messages");
                    return Ok(1);
                }
                return Ok(0);
            }
        };
        let ev = match ev {
            Ok(Some(ev)) => ev,
            Ok(None) => bail!("the appliance closed the stream"),
            Err(e) => {
                // The pop-up changed while connected: ask again and reconnect once.
                let consent = e
                    .downcast_ref::<Refusal>()
                    .is_some_and(|r| r.code == "consent_required");
                if consent && !reconnected {
                    reconnected = true;
                    connect(session, &a.stream).await?;
                    continue;
                }
                return Err(e);
            }
        };
        match ev {
            Event::Message(m) => {
                received += 1;
                let mut saved = None;
                if let (Some(dir), Some(f)) = (&a.save_files, m.file()) {
                    let dest = free_path(dir, &f.safe_name());
                    let mut progress = progress_printer("download");
                    match session.download_file(&f, &dest, &mut progress).await {
                        Ok(()) => saved = Some(dest),
                        Err(e) => eprintln!("cannot save {}: {e:#}", f.name),
                    }
                }
                if a.json {
                    let mut v = json!(m);
                    v["event"] = json!("message");
                    if let Some(p) = &saved {
                        v["saved_path"] = json!(p);
                    }
                    println!("{v}");
                } else {
                    let sender = if m.sender_user_id == me {
                        "me"
                    } else {
                        &m.sender_user_id
                    };
                    let mut line = format!(
                        "[{}] {}: {}",
                        format_time(m.server_time),
                        sender,
                        m.summary()
                    );
                    if let Some(p) = &saved {
                        line.push_str(&format!(" -> {}", p.display()));
                    }
                    println!("{line}");
                }
                std::io::stdout().flush().ok();
            }
            Event::Dropped {
                seq,
                conversation_id,
                sender_device_id,
                client_msg_id,
                reason,
            } => {
                if a.json {
                    println!(
                        "{}",
                        json!({"event": "dropped", "seq": seq, "conversation_id": conversation_id,
                               "sender_device_id": sender_device_id, "client_msg_id": client_msg_id,
                               "reason": reason})
                    );
                } else {
                    eprintln!(
                        "dropped message {client_msg_id} from device {sender_device_id}: {reason}"
                    );
                }
            }
            Event::Membership {
                seq,
                server_time,
                event,
            } => {
                if a.json {
                    println!(
                        "{}",
                        json!({"event": "membership", "seq": seq, "server_time": server_time, "membership": event})
                    );
                } else {
                    eprintln!(
                        "[{}] * {} {:?} {} in {}",
                        format_time(server_time),
                        event.actor_user_id,
                        event.change,
                        event.user_ids.join(", "),
                        event.conversation_id
                    );
                }
            }
            Event::Receipt {
                seq,
                server_time,
                receipt,
            } => {
                if a.json {
                    println!(
                        "{}",
                        json!({"event": "receipt", "seq": seq, "server_time": server_time, "receipt": receipt})
                    );
                } else {
                    eprintln!(
                        "[{}] * {} read {} message(s) in {}",
                        format_time(receipt.read_at),
                        receipt.reader_user_id,
                        receipt.client_msg_ids.len(),
                        receipt.conversation_id
                    );
                }
            }
            Event::DevicesPending(devices) => {
                if a.json {
                    println!(
                        "{}",
                        json!({"event": "devices_pending", "devices": devices})
                    );
                } else {
                    for d in &devices {
                        eprintln!(
                            "* new device waiting for approval: {} \"{}\" ({}, {}) — approve it with \
                             `outpost client devices approve {}` or refuse it with `outpost client devices revoke {}`",
                            d.id, d.name, d.platform, d.created_at, d.id, d.id
                        );
                    }
                }
            }
            Event::Policy(p) => {
                if a.json {
                    println!("{}", json!({"event": "policy", "policy": p}));
                } else {
                    eprintln!("* the policy changed");
                }
            }
            Event::Error(r) => {
                if a.json {
                    println!(
                        "{}",
                        json!({"event": "error", "code": r.code, "message": r.message,
                               "client_msg_id": r.client_msg_id, "details": r.details})
                    );
                } else {
                    eprintln!("appliance: {r}");
                }
            }
        }
    }
}

fn read_file_ref(p: &Path) -> Result<FileRef> {
    let text =
        std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a File object", p.display()))
}

fn write_file_ref(p: &Path, f: &FileRef) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(p)
        .with_context(|| format!("cannot write {}", p.display()))?;
    out.write_all(serde_json::to_string_pretty(f)?.as_bytes())?;
    out.write_all(b"\n")?;
    Ok(())
}

async fn upload(path: &Path, a: UploadArgs) -> Result<i32> {
    let session = Session::open(path)?;
    let api = session.api();
    let mut file = match &a.ref_file {
        Some(r) if r.exists() => {
            let f = read_file_ref(r)?;
            if !f.sha256.is_empty() {
                eprintln!("{} is already uploaded", f.name);
                println!("{}", serde_json::to_string_pretty(&f)?);
                return Ok(0);
            }
            eprintln!("resuming the upload of {} into blob {}", f.name, f.blob_id);
            f
        }
        _ => files::prepare_upload(api, &a.path).await?,
    };
    if let Some(r) = &a.ref_file {
        write_file_ref(r, &file)?;
    }
    let mut progress = progress_printer("upload");
    files::upload_prepared(api, &a.path, &mut file, &mut progress).await?;
    if let Some(r) = &a.ref_file {
        write_file_ref(r, &file)?;
    }
    println!("{}", serde_json::to_string_pretty(&file)?);
    Ok(0)
}

/// The `File` object in a message line, a content object, or on its own.
fn file_ref_from(v: &Value) -> Result<FileRef> {
    let candidate = v
        .pointer("/content/file")
        .or_else(|| v.get("file"))
        .unwrap_or(v);
    serde_json::from_value(candidate.clone()).context("no file in this reference")
}

async fn download(path: &Path, a: DownloadArgs) -> Result<i32> {
    let text = if a.reference == Path::new("-") {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s
    } else {
        std::fs::read_to_string(&a.reference)
            .with_context(|| format!("cannot read {}", a.reference.display()))?
    };
    let v: Value = serde_json::from_str(text.trim())
        .or_else(|_| {
            // Several lines of `listen --json`: take the first with a file.
            text.lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|v| file_ref_from(v).is_ok())
                .ok_or(())
        })
        .map_err(|_| anyhow!("{} holds no file reference", a.reference.display()))?;
    let file = file_ref_from(&v)?;
    let session = Session::open(path)?;
    let mut progress = progress_printer("download");
    match &a.output {
        Some(o) if o == Path::new("-") => {
            let mut out = tokio::io::stdout();
            files::download_to(session.api(), &file, &mut out, &mut progress).await?;
        }
        other => {
            let dest = other
                .clone()
                .unwrap_or_else(|| free_path(Path::new("."), &file.safe_name()));
            session.download_file(&file, &dest, &mut progress).await?;
            eprintln!(
                "saved {} ({} bytes, SHA-256 checked)",
                dest.display(),
                file.size
            );
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn parses_commands() {
        let cli = crate::cli::Cli::try_parse_from([
            "outpost",
            "client",
            "--profile",
            "/tmp/p.json",
            "send",
            "--room",
            "r1",
            "hello",
            "world",
        ])
        .unwrap();
        let crate::cli::Command::Client(args) = cli.command else {
            panic!("not a client command")
        };
        assert_eq!(args.profile.as_deref(), Some(Path::new("/tmp/p.json")));
        let ClientCommand::Send(s) = args.command else {
            panic!("not send")
        };
        assert_eq!(s.text, ["hello", "world"]);
        assert_eq!(s.stream.transport, Transport::WebSocket);
        assert!(
            crate::cli::Cli::try_parse_from([
                "outpost", "client", "send", "--to", "a", "--room", "b"
            ])
            .is_err()
        );
        assert!(crate::cli::Cli::try_parse_from(["outpost", "client", "send", "hi"]).is_err());
        let cli = crate::cli::Cli::try_parse_from([
            "outpost",
            "client",
            "listen",
            "--transport",
            "quic",
            "--count",
            "2",
            "--json",
        ])
        .unwrap();
        let crate::cli::Command::Client(ClientArgs {
            command: ClientCommand::Listen(l),
            ..
        }) = cli.command
        else {
            panic!("not listen")
        };
        assert_eq!(
            (l.stream.transport, l.count, l.json),
            (Transport::Quic, Some(2), true)
        );
        crate::cli::Cli::try_parse_from([
            "outpost", "client", "rooms", "create", "Ops", "--member", "a", "--member", "b",
        ])
        .unwrap();
        crate::cli::Cli::try_parse_from(["outpost", "client", "rooms"]).unwrap();
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        crate::cli::Cli::command().debug_assert();
    }

    #[test]
    fn finds_file_references() {
        let f = json!({"blob_id": "b", "name": "n", "size": 1, "mime": "m", "key": "k",
                       "nonce_prefix": "p", "sha256": "s"});
        assert_eq!(file_ref_from(&f).unwrap().blob_id, "b");
        assert_eq!(file_ref_from(&json!({"file": f})).unwrap().blob_id, "b");
        assert_eq!(
            file_ref_from(&json!({"event": "message", "content": {"text": "t", "file": f}}))
                .unwrap()
                .name,
            "n"
        );
        assert!(file_ref_from(&json!({"text": "x"})).is_err());
    }

    #[test]
    fn free_paths() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(free_path(dir.path(), "a.txt"), dir.path().join("a.txt"));
        std::fs::write(dir.path().join("a.txt"), "").unwrap();
        assert_eq!(free_path(dir.path(), "a.txt"), dir.path().join("a (1).txt"));
        std::fs::write(dir.path().join("noext"), "").unwrap();
        assert_eq!(free_path(dir.path(), "noext"), dir.path().join("noext (1)"));
        assert!(!hostname().is_empty());
    }
}
