//! The admin API client used by `outpost admin …` and `outpost backup`.
//!
//! Where to connect and with which token comes from flags, then `OUTPOST_*`
//! variables, then the file `outpost admin login` writes
//! (`~/.config/outpost/cli.toml`, or `OUTPOST_CLI_CONFIG`). The server's certificate
//! is checked against `--ca-cert`, the saved CA, or `./outpost-data/tls/ca.pem`
//! (the generated CA of a local appliance); `--insecure` skips the check.

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

pub const DEFAULT_URL: &str = "https://127.0.0.1:8443";

#[derive(Debug, Args, Clone, Default)]
pub struct Connection {
    /// Appliance URL [default: saved by `admin login`, else https://127.0.0.1:8443].
    #[arg(long, env = "OUTPOST_URL", global = true)]
    pub url: Option<String>,
    /// Admin session token [default: saved by `admin login`].
    #[arg(long, env = "OUTPOST_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// CA certificate (PEM) that signed the appliance's certificate.
    #[arg(long, env = "OUTPOST_CA_CERT", global = true)]
    pub ca_cert: Option<PathBuf>,
    /// Do not check the appliance's certificate (testing only).
    #[arg(long, env = "OUTPOST_INSECURE", global = true)]
    pub insecure: bool,
}

/// What `admin login` saves.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Saved {
    pub url: Option<String>,
    pub token: Option<String>,
    pub ca_cert: Option<PathBuf>,
}

pub fn saved_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("OUTPOST_CLI_CONFIG") {
        return Some(PathBuf::from(p));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("outpost").join("cli.toml"))
}

pub fn load_saved() -> Saved {
    saved_path()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|s| toml::from_str(&s).ok())
        .unwrap_or_default()
}

pub fn save(saved: &Saved) -> Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = saved_path().context("cannot tell where to save: set HOME or OUTPOST_CLI_CONFIG")?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(toml::to_string_pretty(saved)?.as_bytes())?;
    Ok(path)
}

fn default_ca() -> Option<PathBuf> {
    [
        "./outpost-data/tls/ca.pem",
        "/var/lib/outpost/tls/ca.pem",
        "/etc/ssl/certs/ca-certificates.crt",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

/// An error answer from the API, as the server described it.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub details: Option<Value>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}, HTTP {})",
            self.message,
            self.code,
            self.status.as_u16()
        )?;
        if let Some(d) = &self.details {
            if let Some(errors) = d.get("errors").and_then(Value::as_array) {
                for e in errors {
                    let line = e.get("line").and_then(Value::as_u64).unwrap_or(0);
                    let col = e
                        .get("column")
                        .and_then(Value::as_str)
                        .map(|c| format!(", column {c}"))
                        .unwrap_or_default();
                    let reason = e.get("reason").and_then(Value::as_str).unwrap_or("");
                    write!(f, "\n  line {line}{col}: {reason}")?;
                }
            } else if let Some(items) = d.as_array() {
                for p in items {
                    let field = p.get("field").and_then(Value::as_str).unwrap_or("?");
                    let reason = p.get("reason").and_then(Value::as_str).unwrap_or("");
                    write!(f, "\n  {field}: {reason}")?;
                }
            }
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

pub struct Client {
    http: reqwest::Client,
    pub base: String,
    pub token: Option<String>,
}

impl Client {
    pub fn new(conn: &Connection) -> Result<Client> {
        let saved = load_saved();
        let url = conn
            .url
            .clone()
            .or(saved.url)
            .unwrap_or_else(|| DEFAULT_URL.to_string());
        let url = url.trim_end_matches('/').to_string();
        if !url.starts_with("https://") {
            bail!("the appliance URL must start with https:// ({url})");
        }
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .user_agent(concat!("outpost-cli/", env!("CARGO_PKG_VERSION")))
            .timeout(std::time::Duration::from_secs(600));
        if conn.insecure {
            b = b.danger_accept_invalid_certs(true);
        } else {
            let ca = conn
                .ca_cert
                .clone()
                .or(saved.ca_cert)
                .or_else(default_ca)
                .ok_or_else(|| {
                    anyhow!(
                        "no CA certificate to check the appliance with: pass --ca-cert with the \
                         appliance's tls/ca.pem (or its site CA)"
                    )
                })?;
            let pem =
                std::fs::read(&ca).with_context(|| format!("cannot read {}", ca.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("{} is not a PEM certificate file", ca.display()))?;
            if certs.is_empty() {
                bail!("{} holds no certificate", ca.display());
            }
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        Ok(Client {
            http: b.build()?,
            base: url,
            token: conn.token.clone().or(saved.token),
        })
    }

    fn api(&self, path: &str) -> String {
        format!("{}{}{}", self.base, crate::admin::PREFIX, path)
    }

    /// Send a request and return the response, or the API's error.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<reqwest::Response> {
        let mut req = self.http.request(method, self.api(path));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some((ct, bytes)) = body {
            req = req.header(reqwest::header::CONTENT_TYPE, ct).body(bytes);
        }
        let res = req
            .send()
            .await
            .with_context(|| format!("cannot reach the appliance at {}", self.base))?;
        if res.status().is_success() {
            return Ok(res);
        }
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        Err(ApiError {
            status,
            code: v["code"].as_str().unwrap_or("http_error").to_string(),
            message: v["message"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("the server answered {status}: {text}")),
            details: v.get("details").cloned().filter(|d| !d.is_null()),
        }
        .into())
    }

    /// A JSON request with a JSON answer (`null` for 204).
    pub async fn json(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
        let body = body.map(|b| ("application/json", serde_json::to_vec(b).expect("json")));
        let res = self.send(method, path, body).await?;
        if res.status() == StatusCode::NO_CONTENT {
            return Ok(Value::Null);
        }
        res.json()
            .await
            .context("the appliance sent an unreadable answer")
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        self.json(Method::GET, path, None).await
    }

    pub async fn typed<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<T> {
        Ok(serde_json::from_value(
            self.json(method, path, body).await?,
        )?)
    }

    /// Download a response body into `dest` (`-` = standard output), atomically.
    pub async fn download(&self, method: Method, path: &str, dest: &Path) -> Result<u64> {
        use futures_util::StreamExt;
        use std::io::Write;
        let res = self.send(method, path, None).await?;
        let mut stream = res.bytes_stream();
        if dest == Path::new("-") {
            let mut out = std::io::stdout().lock();
            let mut n = 0u64;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                n += chunk.len() as u64;
                out.write_all(&chunk)?;
            }
            return Ok(n);
        }
        // Backups hold keys and password hashes, exports personal data: owner-only.
        // A leftover from an interrupted download is removed, so the mode is ours.
        let partial = PathBuf::from(format!("{}.partial", dest.display()));
        let _ = std::fs::remove_file(&partial);
        let mut f = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&partial)
                .with_context(|| format!("cannot write {}", partial.display()))?
        };
        let mut n = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.context("the download was interrupted")?;
            n += chunk.len() as u64;
            f.write_all(&chunk)?;
        }
        f.sync_all()?;
        std::fs::rename(&partial, dest)
            .with_context(|| format!("cannot write {}", dest.display()))?;
        Ok(n)
    }
}

/// Percent-encode one path segment.
pub fn seg(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
