//! `outpost admin <noun> <verb>`: the admin API from the command line.
//!
//! Each verb is one API call (a few resolve names first: users by e-mail, groups by
//! name). People get tables; `--json` prints the API's answer as it came, for scripts.
//! Settings are changed with `--set path=value` (`calling.video=false`), or a JSON
//! document with `--settings-json`.

use super::client::{self, Client, Connection, seg};
use super::output;
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Map, Value, json};
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// Print the API's JSON answer instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Noun,
}

#[derive(Debug, Subcommand)]
pub enum Noun {
    /// Sign in and save the URL, token and CA for later commands.
    Login {
        #[arg(long, default_value = "owner")]
        username: String,
        /// Read the password from standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// End the saved session and forget its token.
    Logout,
    /// Show who the saved token belongs to.
    Whoami,
    /// Change your own password (prompts on a terminal; otherwise reads the current and
    /// the new password, one per line, from standard input).
    Passwd,
    #[command(subcommand)]
    Networks(NetworkCmd),
    #[command(subcommand)]
    Groups(GroupCmd),
    #[command(subcommand)]
    Users(UserCmd),
    #[command(subcommand)]
    Bots(BotCmd),
    /// A network's single sign-on through its identity provider.
    #[command(subcommand)]
    Sso(super::admin_sso::SsoCmd),
    #[command(subcommand)]
    Admins(AdminCmd),
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Download a backup archive (works while the server runs).
    Backup { file: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum NetworkCmd {
    List,
    Show {
        network: String,
    },
    Create {
        name: String,
        /// key=value (repeatable).
        #[arg(long = "tag")]
        tags: Vec<String>,
    },
    Rename {
        network: String,
        name: String,
    },
    /// Delete a network and its directory (retained data is kept).
    Delete {
        network: String,
        /// Type the word `confirm`.
        #[arg(long)]
        confirm: Option<String>,
    },
    /// Show the network settings.
    Settings {
        network: String,
    },
    /// Change network settings: --set read_receipts=force_enabled, or --settings-json.
    Set {
        network: String,
        #[arg(long = "set")]
        set: Vec<String>,
        #[arg(long)]
        settings_json: Option<String>,
    },
    /// Show or switch data retention: `retention NET [on|off]`.
    Retention {
        network: String,
        state: Option<String>,
    },
    Tags {
        network: String,
    },
    /// Add tags or change their values: key=value ...
    Tag {
        network: String,
        tags: Vec<String>,
    },
    /// Remove a tag by key.
    Untag {
        network: String,
        key: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum GroupCmd {
    List {
        network: String,
    },
    Show {
        network: String,
        group: String,
    },
    Create {
        network: String,
        name: Option<String>,
        #[arg(long = "set")]
        set: Vec<String>,
    },
    /// Rename a group or change its settings (--set calling.video=false ...).
    Update {
        network: String,
        group: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long = "set")]
        set: Vec<String>,
        #[arg(long)]
        settings_json: Option<String>,
    },
    /// Delete a group; its members move to the default group.
    Delete {
        network: String,
        group: String,
        #[arg(long)]
        confirm: Option<String>,
    },
    Users {
        network: String,
        group: String,
    },
}

#[derive(Debug, Args)]
pub struct ProfileArgs {
    #[arg(long)]
    first_name: Option<String>,
    #[arg(long)]
    last_name: Option<String>,
    #[arg(long)]
    country_code: Option<String>,
    #[arg(long)]
    phone: Option<String>,
    /// Security group id or name.
    #[arg(long)]
    group: Option<String>,
    /// Set a password, read from standard input.
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    List {
        network: String,
        #[arg(long)]
        status: Option<String>,
        /// Group id or name.
        #[arg(long)]
        group: Option<String>,
        #[arg(long)]
        search: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Follow the cursor through every page.
        #[arg(long)]
        all: bool,
    },
    /// Show a user (by id or e-mail).
    Show {
        network: String,
        user: String,
    },
    Invite {
        network: String,
        email: String,
        #[command(flatten)]
        profile: ProfileArgs,
    },
    Update {
        network: String,
        user: String,
        #[command(flatten)]
        profile: ProfileArgs,
    },
    Suspend {
        network: String,
        user: String,
    },
    Unsuspend {
        network: String,
        user: String,
    },
    Unlock {
        network: String,
        user: String,
    },
    Delete {
        network: String,
        user: String,
    },
    Devices {
        network: String,
        user: String,
    },
    ResetDevices {
        network: String,
        user: String,
    },
    Count {
        network: String,
    },
    /// Download the directory as CSV (to FILE, or standard output).
    Export {
        network: String,
        file: Option<PathBuf>,
    },
    /// Download a bulk template: invite, delete or suspend.
    Template {
        network: String,
        action: String,
        file: Option<PathBuf>,
    },
    /// Invite every row of a CSV file (all rows or none).
    Import {
        network: String,
        file: PathBuf,
    },
    /// Delete the users listed in a CSV file (all or none).
    BulkDelete {
        network: String,
        file: PathBuf,
        /// Required: deleting users is irreversible.
        #[arg(long)]
        acknowledge_irreversible: bool,
    },
    /// Suspend the users listed in a CSV file (all or none).
    BulkSuspend {
        network: String,
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum BotCmd {
    List {
        network: String,
    },
    Show {
        network: String,
        bot: String,
    },
    Create {
        network: String,
        username: String,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long)]
        group: Option<String>,
        /// Give the bot a password (from stdin) instead of an API token.
        #[arg(long)]
        password_stdin: bool,
    },
    Update {
        network: String,
        bot: String,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long)]
        group: Option<String>,
        #[arg(long)]
        regenerate_token: bool,
        #[arg(long, conflicts_with = "unsuspend")]
        suspend: bool,
        #[arg(long)]
        unsuspend: bool,
    },
    Delete {
        network: String,
        bot: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCmd {
    List,
    Show {
        admin: String,
    },
    Create {
        username: String,
        /// owner, admin, auditor or compliance.
        #[arg(long)]
        role: String,
        /// Network the account may act in (admin, compliance; repeatable).
        #[arg(long = "network")]
        networks: Vec<String>,
    },
    Update {
        admin: String,
        #[arg(long)]
        role: Option<String>,
        #[arg(long = "network")]
        networks: Vec<String>,
        #[arg(long)]
        reset_password: bool,
        #[arg(long)]
        unlock: bool,
    },
    Delete {
        admin: String,
    },
}

#[derive(Debug, Args, Default)]
pub struct AuditFilter {
    /// RFC 3339 time, e.g. 2026-11-01T00:00:00Z.
    #[arg(long)]
    from: Option<String>,
    #[arg(long)]
    to: Option<String>,
    /// Admin username or id.
    #[arg(long)]
    admin: Option<String>,
    /// Event name, e.g. CreateNetwork.
    #[arg(long)]
    event: Option<String>,
    /// success or error.
    #[arg(long)]
    result: Option<String>,
    #[arg(long)]
    network: Option<String>,
}

impl AuditFilter {
    fn query(&self) -> String {
        let mut q = Vec::new();
        for (k, v) in [
            ("from", &self.from),
            ("to", &self.to),
            ("admin", &self.admin),
            ("event_name", &self.event),
            ("result", &self.result),
            ("network_id", &self.network),
        ] {
            if let Some(v) = v {
                q.push(format!("{k}={}", seg(v)));
            }
        }
        q.join("&")
    }
}

#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    List {
        #[command(flatten)]
        filter: AuditFilter,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Export matching events as JSON lines (to FILE or standard output).
    Export {
        file: Option<PathBuf>,
        #[command(flatten)]
        filter: AuditFilter,
    },
    /// Ask the server to verify the hash chain.
    Verify,
}

fn read_stdin_line(what: &str) -> Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .with_context(|| format!("cannot read the {what} from standard input"))?;
    let line = line.trim_end_matches(['\r', '\n']).to_string();
    if line.is_empty() {
        bail!("no {what} on standard input");
    }
    Ok(line)
}

/// Ask for a password without echoing it on a terminal; read a line otherwise.
fn prompt_password(prompt: &str) -> Result<String> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        let p = rpassword::prompt_password(format!("{prompt}: "))
            .context("cannot read the password from the terminal")?;
        if p.is_empty() {
            bail!("no password given");
        }
        return Ok(p);
    }
    eprint!("{prompt}: ");
    read_stdin_line("password")
}

/// `a.b=c` → `{"a": {"b": c}}`, the value read as JSON if it parses, else as text.
pub fn settings_patch(set: &[String], json_doc: Option<&str>) -> Result<Value> {
    let mut root = match json_doc {
        Some(doc) => serde_json::from_str(doc).context("--settings-json is not valid JSON")?,
        None => Value::Object(Map::new()),
    };
    for item in set {
        let (path, raw) = item
            .split_once('=')
            .with_context(|| format!("--set {item:?}: expected path=value"))?;
        let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
        let mut cur = &mut root;
        let parts: Vec<&str> = path.split('.').collect();
        for (i, p) in parts.iter().enumerate() {
            let obj = cur
                .as_object_mut()
                .with_context(|| format!("--set {item:?}: {p} is not a section"))?;
            if i + 1 == parts.len() {
                obj.insert(p.to_string(), value.clone());
                break;
            }
            cur = obj
                .entry(p.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
        }
    }
    Ok(root)
}

fn key_values(items: &[String]) -> Result<Map<String, Value>> {
    items
        .iter()
        .map(|t| {
            let (k, v) = t
                .split_once('=')
                .with_context(|| format!("{t:?}: expected key=value"))?;
            Ok((k.to_string(), Value::String(v.to_string())))
        })
        .collect()
}

struct Ctx {
    c: Client,
    json: bool,
}

impl Ctx {
    fn show(&self, v: &Value) {
        if self.json {
            output::json(v)
        } else {
            output::fields(v)
        }
    }

    fn list(&self, v: &Value, cols: &[(&str, &str)]) {
        if self.json {
            output::json(v);
        } else {
            output::table(
                v["items"].as_array().map(Vec::as_slice).unwrap_or(&[]),
                cols,
            );
        }
    }

    fn done(&self, v: &Value, msg: &str) {
        if self.json {
            output::json(v)
        } else {
            println!("{msg}")
        }
    }

    /// A group id from an id or a name.
    async fn group_id(&self, net: &str, g: &str) -> Result<String> {
        let groups = self
            .c
            .get(&format!("/networks/{}/security-groups", seg(net)))
            .await?;
        for item in groups["items"].as_array().into_iter().flatten() {
            let id = item["id"].as_str().unwrap_or("");
            if id == g
                || item["name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(g))
            {
                return Ok(id.to_string());
            }
        }
        bail!("network {net} has no security group {g:?}")
    }

    /// A user id from an id or an e-mail address.
    async fn user_id(&self, net: &str, u: &str) -> Result<String> {
        if !u.contains('@') {
            return Ok(u.to_string());
        }
        let email = u.to_lowercase();
        let page = self
            .c
            .get(&format!(
                "/networks/{}/users?search={}&limit=1000",
                seg(net),
                seg(&email)
            ))
            .await?;
        page["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|i| i["username"].as_str() == Some(email.as_str()))
            .and_then(|i| i["id"].as_str().map(str::to_string))
            .with_context(|| format!("network {net} has no user {u}"))
    }
}

const USER_COLS: &[(&str, &str)] = &[
    ("ID", "id"),
    ("EMAIL", "username"),
    ("FIRST", "first_name"),
    ("LAST", "last_name"),
    ("STATUS", "status"),
    ("GROUP", "security_group_id"),
];

pub async fn run(args: AdminArgs) -> Result<i32> {
    if let Noun::Login {
        username,
        password_stdin,
    } = &args.command
    {
        return login(&args.conn, username, *password_stdin).await;
    }
    let ctx = Ctx {
        c: Client::new(&args.conn)?,
        json: args.json,
    };
    if ctx.c.token.is_none() {
        bail!("not signed in: run `outpost admin login` first, or pass --token / OUTPOST_TOKEN");
    }
    match args.command {
        Noun::Login { .. } => unreachable!("handled above"),
        Noun::Logout => {
            ctx.c
                .json(Method::DELETE, "/sessions/current", None)
                .await?;
            let mut saved = client::load_saved();
            saved.token = None;
            client::save(&saved)?;
            println!("signed out");
        }
        Noun::Whoami => {
            let v = ctx.c.get("/sessions/current").await?;
            ctx.show(&v);
        }
        Noun::Passwd => {
            let current = prompt_password("current password")?;
            let new = prompt_password("new password")?;
            let v = ctx
                .c
                .json(
                    Method::POST,
                    "/me/password",
                    Some(&json!({"current_password": current, "new_password": new})),
                )
                .await?;
            ctx.done(&v, "password changed; your other sessions were ended");
        }
        Noun::Networks(cmd) => networks(&ctx, cmd).await?,
        Noun::Groups(cmd) => groups(&ctx, cmd).await?,
        Noun::Users(cmd) => users(&ctx, cmd).await?,
        Noun::Bots(cmd) => bots(&ctx, cmd).await?,
        Noun::Sso(cmd) => super::admin_sso::run(&ctx.c, ctx.json, cmd).await?,
        Noun::Admins(cmd) => admins(&ctx, cmd).await?,
        Noun::Audit(cmd) => return audit(&ctx, cmd).await,
        Noun::Backup { file } => return backup_with(&ctx.c, &file).await,
    }
    Ok(0)
}

async fn login(conn: &Connection, username: &str, password_stdin: bool) -> Result<i32> {
    let password = if password_stdin {
        read_stdin_line("password")?
    } else {
        prompt_password(&format!("password for {username}"))?
    };
    let mut anon = conn.clone();
    anon.token = None;
    let mut c = Client::new(&anon)?;
    c.token = None;
    let v = c
        .json(
            Method::POST,
            "/sessions",
            Some(&json!({"username": username, "password": password})),
        )
        .await?;
    let token = v["token"]
        .as_str()
        .context("the answer has no token")?
        .to_string();
    let mut saved = client::load_saved();
    saved.url = Some(c.base.clone());
    saved.token = Some(token);
    if let Some(ca) = &conn.ca_cert {
        saved.ca_cert = Some(std::fs::canonicalize(ca).unwrap_or(ca.clone()));
    }
    let path = client::save(&saved)?;
    println!(
        "signed in as {} (role {}) until {}; saved to {}",
        v["admin"]["username"].as_str().unwrap_or(username),
        v["admin"]["role"].as_str().unwrap_or("?"),
        v["expires_at"].as_str().unwrap_or("?"),
        path.display()
    );
    if v["must_change_password"].as_bool() == Some(true) {
        println!("this password was issued to you: change it now with `outpost admin passwd`");
    }
    Ok(0)
}

async fn networks(ctx: &Ctx, cmd: NetworkCmd) -> Result<()> {
    let c = &ctx.c;
    match cmd {
        NetworkCmd::List => {
            let v = c.get("/networks").await?;
            ctx.list(
                &v,
                &[("ID", "id"), ("NAME", "name"), ("CREATED", "created_at")],
            );
        }
        NetworkCmd::Show { network } => {
            ctx.show(&c.get(&format!("/networks/{}", seg(&network))).await?)
        }
        NetworkCmd::Create { name, tags } => {
            let body = json!({"name": name, "tags": key_values(&tags)?});
            let v = c.json(Method::POST, "/networks", Some(&body)).await?;
            ctx.done(
                &v,
                &format!(
                    "created network {} ({})",
                    v["id"].as_str().unwrap_or("?"),
                    name
                ),
            );
        }
        NetworkCmd::Rename { network, name } => {
            let v = c
                .json(
                    Method::PATCH,
                    &format!("/networks/{}", seg(&network)),
                    Some(&json!({"name": name})),
                )
                .await?;
            ctx.done(&v, &format!("network {network} is now named {name}"));
        }
        NetworkCmd::Delete { network, confirm } => {
            let q = confirm
                .map(|w| format!("?confirm={}", seg(&w)))
                .unwrap_or_default();
            let v = c
                .json(
                    Method::DELETE,
                    &format!("/networks/{}{q}", seg(&network)),
                    None,
                )
                .await?;
            ctx.done(
                &v,
                &format!(
                    "deleted network {network}: {} users, {} bots, {} security groups",
                    v["users"], v["bots"], v["security_groups"]
                ),
            );
        }
        NetworkCmd::Settings { network } => ctx.show(
            &c.get(&format!("/networks/{}/settings", seg(&network)))
                .await?,
        ),
        NetworkCmd::Set {
            network,
            set,
            settings_json,
        } => {
            let patch = settings_patch(&set, settings_json.as_deref())?;
            let v = c
                .json(
                    Method::PATCH,
                    &format!("/networks/{}/settings", seg(&network)),
                    Some(&patch),
                )
                .await?;
            ctx.show(&v);
        }
        NetworkCmd::Retention { network, state } => {
            let path = format!("/networks/{}/data-retention", seg(&network));
            let v = match state.as_deref() {
                None => c.get(&path).await?,
                Some(s @ ("on" | "off")) => {
                    c.json(Method::PUT, &path, Some(&json!({"enabled": s == "on"})))
                        .await?
                }
                Some(other) => bail!("retention state must be on or off, not {other:?}"),
            };
            ctx.show(&v);
        }
        NetworkCmd::Tags { network } => {
            ctx.show(&c.get(&format!("/networks/{}/tags", seg(&network))).await?)
        }
        NetworkCmd::Tag { network, tags } => {
            let body = json!({"tags": key_values(&tags)?});
            let v = c
                .json(
                    Method::POST,
                    &format!("/networks/{}/tags", seg(&network)),
                    Some(&body),
                )
                .await?;
            ctx.show(&v);
        }
        NetworkCmd::Untag { network, key } => {
            let v = c
                .json(
                    Method::DELETE,
                    &format!("/networks/{}/tags/{}", seg(&network), seg(&key)),
                    None,
                )
                .await?;
            ctx.show(&v);
        }
    }
    Ok(())
}

async fn groups(ctx: &Ctx, cmd: GroupCmd) -> Result<()> {
    let c = &ctx.c;
    let base = |n: &str| format!("/networks/{}/security-groups", seg(n));
    match cmd {
        GroupCmd::List { network } => {
            let v = c.get(&base(&network)).await?;
            ctx.list(
                &v,
                &[
                    ("ID", "id"),
                    ("NAME", "name"),
                    ("DEFAULT", "is_default"),
                    ("USERS", "active_members"),
                    ("BOTS", "bot_members"),
                ],
            );
        }
        GroupCmd::Show { network, group } => {
            let id = ctx.group_id(&network, &group).await?;
            ctx.show(&c.get(&format!("{}/{}", base(&network), seg(&id))).await?);
        }
        GroupCmd::Create { network, name, set } => {
            let mut body = Map::new();
            if let Some(n) = name {
                body.insert("name".into(), Value::String(n));
            }
            if !set.is_empty() {
                body.insert("settings".into(), settings_patch(&set, None)?);
            }
            let v = c
                .json(Method::POST, &base(&network), Some(&Value::Object(body)))
                .await?;
            ctx.done(
                &v,
                &format!(
                    "created security group {:?} ({})",
                    v["name"].as_str().unwrap_or("?"),
                    v["id"].as_str().unwrap_or("?")
                ),
            );
        }
        GroupCmd::Update {
            network,
            group,
            name,
            set,
            settings_json,
        } => {
            let id = ctx.group_id(&network, &group).await?;
            let mut body = Map::new();
            if let Some(n) = name {
                body.insert("name".into(), Value::String(n));
            }
            if !set.is_empty() || settings_json.is_some() {
                body.insert(
                    "settings".into(),
                    settings_patch(&set, settings_json.as_deref())?,
                );
            }
            let v = c
                .json(
                    Method::PATCH,
                    &format!("{}/{}", base(&network), seg(&id)),
                    Some(&Value::Object(body)),
                )
                .await?;
            ctx.show(&v);
        }
        GroupCmd::Delete {
            network,
            group,
            confirm,
        } => {
            let id = ctx.group_id(&network, &group).await?;
            let q = confirm
                .map(|w| format!("?confirm={}", seg(&w)))
                .unwrap_or_default();
            let v = c
                .json(
                    Method::DELETE,
                    &format!("{}/{}{q}", base(&network), seg(&id)),
                    None,
                )
                .await?;
            ctx.done(
                &v,
                &format!(
                    "deleted the group; {} members moved to the default group",
                    v["moved_members"]
                ),
            );
        }
        GroupCmd::Users { network, group } => {
            let id = ctx.group_id(&network, &group).await?;
            let v = c
                .get(&format!("{}/{}/users?limit=1000", base(&network), seg(&id)))
                .await?;
            ctx.list(&v, USER_COLS);
        }
    }
    Ok(())
}

async fn profile_body(ctx: &Ctx, network: &str, p: &ProfileArgs) -> Result<Map<String, Value>> {
    let mut body = Map::new();
    for (k, v) in [
        ("first_name", &p.first_name),
        ("last_name", &p.last_name),
        ("country_code", &p.country_code),
        ("phone", &p.phone),
    ] {
        if let Some(v) = v {
            body.insert(k.into(), Value::String(v.clone()));
        }
    }
    if let Some(g) = &p.group {
        body.insert(
            "security_group_id".into(),
            Value::String(ctx.group_id(network, g).await?),
        );
    }
    if p.password_stdin {
        body.insert(
            "password".into(),
            Value::String(read_stdin_line("password")?),
        );
    }
    Ok(body)
}

async fn upload(ctx: &Ctx, path: &str, file: &Path) -> Result<Value> {
    let mut bytes = Vec::new();
    std::fs::File::open(file)
        .with_context(|| format!("cannot open {}", file.display()))?
        .read_to_end(&mut bytes)?;
    let res = ctx
        .c
        .send(Method::POST, path, Some(("text/csv", bytes)))
        .await?;
    Ok(res.json().await?)
}

async fn users(ctx: &Ctx, cmd: UserCmd) -> Result<()> {
    let c = &ctx.c;
    let base = |n: &str| format!("/networks/{}/users", seg(n));
    match cmd {
        UserCmd::List {
            network,
            status,
            group,
            search,
            limit,
            all,
        } => {
            let mut q = vec![format!("limit={limit}")];
            if let Some(s) = status {
                q.push(format!("status={}", seg(&s)));
            }
            if let Some(g) = group {
                q.push(format!(
                    "security_group_id={}",
                    seg(&ctx.group_id(&network, &g).await?)
                ));
            }
            if let Some(s) = search {
                q.push(format!("search={}", seg(&s)));
            }
            let mut items = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let mut qq = q.clone();
                if let Some(cur) = &cursor {
                    qq.push(format!("cursor={}", seg(cur)));
                }
                let v = c
                    .get(&format!("{}?{}", base(&network), qq.join("&")))
                    .await?;
                items.extend(v["items"].as_array().cloned().unwrap_or_default());
                cursor = v["next_cursor"].as_str().map(str::to_string);
                if !all || cursor.is_none() {
                    break;
                }
            }
            let v = json!({"items": items, "next_cursor": cursor});
            ctx.list(&v, USER_COLS);
            if !ctx.json && cursor.is_some() {
                eprintln!("(more users: add --all, or --limit)");
            }
        }
        UserCmd::Show { network, user } => {
            let id = ctx.user_id(&network, &user).await?;
            ctx.show(&c.get(&format!("{}/{}", base(&network), seg(&id))).await?);
        }
        UserCmd::Invite {
            network,
            email,
            profile,
        } => {
            let mut body = profile_body(ctx, &network, &profile).await?;
            body.insert("email".into(), Value::String(email.clone()));
            let v = c
                .json(Method::POST, &base(&network), Some(&Value::Object(body)))
                .await?;
            let how = match (
                v["invitation"]["url"].as_str(),
                v["invitation"]["mail_id"].as_str(),
            ) {
                (Some(url), _) => format!(
                    "; mail is off: give them this one-time registration link (valid 7 days):\n{url}"
                ),
                (None, Some(_)) => "; the invitation mail is queued".to_string(),
                _ => String::new(),
            };
            ctx.done(
                &v,
                &format!(
                    "invited {email} ({}), status {}{how}",
                    v["id"].as_str().unwrap_or("?"),
                    v["status"].as_str().unwrap_or("?")
                ),
            );
        }
        UserCmd::Update {
            network,
            user,
            profile,
        } => {
            let id = ctx.user_id(&network, &user).await?;
            let body = profile_body(ctx, &network, &profile).await?;
            let v = c
                .json(
                    Method::PATCH,
                    &format!("{}/{}", base(&network), seg(&id)),
                    Some(&Value::Object(body)),
                )
                .await?;
            ctx.show(&v);
        }
        UserCmd::Suspend { network, user } => user_action(ctx, &network, &user, "suspend").await?,
        UserCmd::Unsuspend { network, user } => {
            user_action(ctx, &network, &user, "unsuspend").await?
        }
        UserCmd::Unlock { network, user } => user_action(ctx, &network, &user, "unlock").await?,
        UserCmd::ResetDevices { network, user } => {
            user_action(ctx, &network, &user, "devices/reset").await?
        }
        UserCmd::Delete { network, user } => {
            let id = ctx.user_id(&network, &user).await?;
            c.json(
                Method::DELETE,
                &format!("{}/{}", base(&network), seg(&id)),
                None,
            )
            .await?;
            ctx.done(&Value::Null, &format!("deleted {user}"));
        }
        UserCmd::Devices { network, user } => {
            let id = ctx.user_id(&network, &user).await?;
            let v = c
                .get(&format!("{}/{}/devices", base(&network), seg(&id)))
                .await?;
            ctx.list(
                &v,
                &[
                    ("ID", "id"),
                    ("NAME", "name"),
                    ("PLATFORM", "platform"),
                    ("VERSION", "client_version"),
                    ("STATUS", "status"),
                    ("LAST SEEN", "last_seen_at"),
                ],
            );
        }
        UserCmd::Count { network } => ctx.show(&c.get(&format!("{}/count", base(&network))).await?),
        UserCmd::Export { network, file } => {
            let dest = file.unwrap_or_else(|| PathBuf::from("-"));
            let n = c
                .download(Method::GET, &format!("{}/export", base(&network)), &dest)
                .await?;
            if dest != Path::new("-") {
                eprintln!("wrote {n} bytes to {}", dest.display());
            }
        }
        UserCmd::Template {
            network,
            action,
            file,
        } => {
            let dest = file.unwrap_or_else(|| PathBuf::from("-"));
            c.download(
                Method::GET,
                &format!("{}/templates/{}", base(&network), seg(&action)),
                &dest,
            )
            .await?;
        }
        UserCmd::Import { network, file } => {
            let v = upload(ctx, &format!("{}/batch-create", base(&network)), &file).await?;
            ctx.done(
                &v,
                &format!("invited {} users from {} rows", v["applied"], v["rows"]),
            );
        }
        UserCmd::BulkDelete {
            network,
            file,
            acknowledge_irreversible,
        } => {
            if !acknowledge_irreversible {
                bail!("deleting users is irreversible: add --acknowledge-irreversible to go ahead");
            }
            let v = upload(
                ctx,
                &format!(
                    "{}/batch-delete?acknowledge_irreversible=true",
                    base(&network)
                ),
                &file,
            )
            .await?;
            ctx.done(&v, &format!("deleted {} users", v["applied"]));
        }
        UserCmd::BulkSuspend { network, file } => {
            let v = upload(ctx, &format!("{}/batch-suspend", base(&network)), &file).await?;
            ctx.done(&v, &format!("suspended {} users", v["applied"]));
        }
    }
    Ok(())
}

/// Suspend, unsuspend, unlock and reset-devices: one POST each.
async fn user_action(ctx: &Ctx, network: &str, user: &str, action: &str) -> Result<()> {
    let id = ctx.user_id(network, user).await?;
    let v = ctx
        .c
        .json(
            Method::POST,
            &format!("/networks/{}/users/{}/{action}", seg(network), seg(&id)),
            None,
        )
        .await?;
    let msg = match action {
        "devices/reset" => format!(
            "reset {} devices of {user}; its sessions are ended",
            v["reset"]
        ),
        _ => format!("{user} is now {}", v["status"].as_str().unwrap_or("?")),
    };
    ctx.done(&v, &msg);
    Ok(())
}

async fn bots(ctx: &Ctx, cmd: BotCmd) -> Result<()> {
    let c = &ctx.c;
    let base = |n: &str| format!("/networks/{}/bots", seg(n));
    let bot_cols: &[(&str, &str)] = &[
        ("ID", "id"),
        ("USERNAME", "username"),
        ("DISPLAY NAME", "display_name"),
        ("STATUS", "status"),
        ("TOKEN", "has_token"),
    ];
    match cmd {
        BotCmd::List { network } => {
            let v = c.get(&format!("{}?limit=1000", base(&network))).await?;
            ctx.list(&v, bot_cols);
        }
        BotCmd::Show { network, bot } => {
            ctx.show(&c.get(&format!("{}/{}", base(&network), seg(&bot))).await?)
        }
        BotCmd::Create {
            network,
            username,
            display_name,
            group,
            password_stdin,
        } => {
            let mut body = Map::new();
            body.insert("username".into(), Value::String(username));
            if let Some(d) = display_name {
                body.insert("display_name".into(), Value::String(d));
            }
            if let Some(g) = group {
                body.insert(
                    "security_group_id".into(),
                    Value::String(ctx.group_id(&network, &g).await?),
                );
            }
            if password_stdin {
                body.insert(
                    "password".into(),
                    Value::String(read_stdin_line("password")?),
                );
            }
            let v = c
                .json(Method::POST, &base(&network), Some(&Value::Object(body)))
                .await?;
            let msg = match v["token"].as_str() {
                Some(t) => format!(
                    "created bot {} ({})\nAPI token (shown only now): {t}",
                    v["bot"]["username"].as_str().unwrap_or("?"),
                    v["bot"]["id"].as_str().unwrap_or("?")
                ),
                None => format!(
                    "created bot {}",
                    v["bot"]["username"].as_str().unwrap_or("?")
                ),
            };
            ctx.done(&v, &msg);
        }
        BotCmd::Update {
            network,
            bot,
            display_name,
            group,
            regenerate_token,
            suspend,
            unsuspend,
        } => {
            let mut body = Map::new();
            if let Some(d) = display_name {
                body.insert("display_name".into(), Value::String(d));
            }
            if let Some(g) = group {
                body.insert(
                    "security_group_id".into(),
                    Value::String(ctx.group_id(&network, &g).await?),
                );
            }
            if regenerate_token {
                body.insert("regenerate_token".into(), Value::Bool(true));
            }
            if suspend || unsuspend {
                body.insert("suspended".into(), Value::Bool(suspend));
            }
            let v = c
                .json(
                    Method::PATCH,
                    &format!("{}/{}", base(&network), seg(&bot)),
                    Some(&Value::Object(body)),
                )
                .await?;
            if let (false, Some(t)) = (ctx.json, v["token"].as_str()) {
                println!("new API token (shown only now): {t}");
            }
            ctx.show(&v["bot"]);
        }
        BotCmd::Delete { network, bot } => {
            c.json(
                Method::DELETE,
                &format!("{}/{}", base(&network), seg(&bot)),
                None,
            )
            .await?;
            ctx.done(&Value::Null, &format!("deleted bot {bot}"));
        }
    }
    Ok(())
}

async fn admins(ctx: &Ctx, cmd: AdminCmd) -> Result<()> {
    let c = &ctx.c;
    match cmd {
        AdminCmd::List => {
            let v = c.get("/admins").await?;
            ctx.list(
                &v,
                &[
                    ("ID", "id"),
                    ("USERNAME", "username"),
                    ("ROLE", "role"),
                    ("NETWORKS", "networks"),
                    ("LAST SIGN-IN", "last_login_at"),
                ],
            );
        }
        AdminCmd::Show { admin } => ctx.show(&c.get(&format!("/admins/{}", seg(&admin))).await?),
        AdminCmd::Create {
            username,
            role,
            networks,
        } => {
            let body = json!({"username": username, "role": role, "networks": networks});
            let v = c.json(Method::POST, "/admins", Some(&body)).await?;
            let msg = format!(
                "created {} ({})\none-time password (shown only now, must be changed at first sign-in): {}",
                username,
                v["admin"]["id"].as_str().unwrap_or("?"),
                v["one_time_password"].as_str().unwrap_or("?")
            );
            ctx.done(&v, &msg);
        }
        AdminCmd::Update {
            admin,
            role,
            networks,
            reset_password,
            unlock,
        } => {
            let mut body = Map::new();
            if let Some(r) = role {
                body.insert("role".into(), Value::String(r));
            }
            if !networks.is_empty() {
                body.insert("networks".into(), json!(networks));
            }
            if reset_password {
                body.insert("reset_password".into(), Value::Bool(true));
            }
            if unlock {
                body.insert("unlock".into(), Value::Bool(true));
            }
            let v = c
                .json(
                    Method::PATCH,
                    &format!("/admins/{}", seg(&admin)),
                    Some(&Value::Object(body)),
                )
                .await?;
            if let (false, Some(p)) = (ctx.json, v["one_time_password"].as_str()) {
                println!("one-time password (shown only now): {p}");
            }
            ctx.show(&v["admin"]);
        }
        AdminCmd::Delete { admin } => {
            c.json(Method::DELETE, &format!("/admins/{}", seg(&admin)), None)
                .await?;
            ctx.done(&Value::Null, &format!("deleted admin {admin}"));
        }
    }
    Ok(())
}

async fn audit(ctx: &Ctx, cmd: AuditCmd) -> Result<i32> {
    let c = &ctx.c;
    match cmd {
        AuditCmd::List { filter, limit } => {
            let q = filter.query();
            let sep = if q.is_empty() { "" } else { "&" };
            let v = c.get(&format!("/audit?limit={limit}{sep}{q}")).await?;
            ctx.list(
                &v,
                &[
                    ("SEQ", "seq"),
                    ("TIME", "time"),
                    ("EVENT", "name"),
                    ("ADMIN", "admin.username"),
                    ("SOURCE", "source_ip"),
                    ("RESULT", "result.status"),
                    ("CODE", "result.error_code"),
                ],
            );
        }
        AuditCmd::Export { file, filter } => {
            let q = filter.query();
            let dest = file.unwrap_or_else(|| PathBuf::from("-"));
            let path = if q.is_empty() {
                "/audit/export".to_string()
            } else {
                format!("/audit/export?{q}")
            };
            let n = c.download(Method::GET, &path, &dest).await?;
            if dest != Path::new("-") {
                eprintln!("wrote {n} bytes to {}", dest.display());
            }
        }
        AuditCmd::Verify => return verify_with(ctx, c).await,
    }
    Ok(0)
}

async fn verify_with(ctx: &Ctx, c: &Client) -> Result<i32> {
    let v = c.get("/audit/verify").await?;
    if ctx.json {
        output::json(&v);
    } else {
        let r: crate::audit::VerifyReport = serde_json::from_value(v.clone())?;
        super::local::print_report(&r);
    }
    Ok(if v["ok"].as_bool() == Some(true) {
        0
    } else {
        1
    })
}

/// `outpost audit verify` against a running server.
pub async fn verify_audit(conn: &Connection) -> Result<i32> {
    let ctx = Ctx {
        c: Client::new(conn)?,
        json: false,
    };
    verify_with(&ctx, &ctx.c).await
}

/// `outpost backup FILE` / `outpost admin backup FILE`.
pub async fn backup(conn: &Connection, file: &Path) -> Result<i32> {
    backup_with(&Client::new(conn)?, file).await
}

async fn backup_with(c: &Client, file: &Path) -> Result<i32> {
    if c.token.is_none() {
        bail!("not signed in: run `outpost admin login` first, or pass --token / OUTPOST_TOKEN");
    }
    let n = c.download(Method::POST, "/backup", file).await?;
    if file != Path::new("-") {
        let manifest = read_manifest(file)?;
        eprintln!(
            "wrote {} ({} bytes): {} records, schema {}, taken at {}",
            file.display(),
            n,
            manifest.records,
            manifest.schema_version,
            manifest.created_at.to_rfc3339()
        );
    }
    Ok(0)
}

fn read_manifest(file: &Path) -> Result<crate::store::BackupManifest> {
    let f = std::fs::File::open(file)?;
    let mut ar = tar::Archive::new(f);
    let mut entries = ar.entries()?;
    let mut first = entries.next().context("the archive is empty")??;
    let mut s = String::new();
    first.read_to_string(&mut s)?;
    serde_json::from_str(&s).context("the archive does not start with an outpost manifest")
}
