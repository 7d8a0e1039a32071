//! The appliance's configuration: what `config.toml` may contain, its embedded
//! defaults, `OUTPOST_*` environment overrides, and validation.
//!
//! Every option is documented in `config.toml.example`. Loading is strict: an unknown
//! key or a bad value is an error that names the key (and the environment variable,
//! when the value came from one). Secrets are [`Secret`]s and never print.

mod env;
mod mail;
mod secret;

pub use mail::{MailConfig, MailTransport, SmtpSecurity};
pub use secret::{REDACTED, Secret};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Environment variables that start with `OUTPOST_` but are not configuration keys.
pub const NON_CONFIG_ENV: &[&str] = &[
    "OUTPOST_CONFIG",
    "OUTPOST_BOOTSTRAP_ADMIN_PASSWORD",
    "OUTPOST_URL",
    "OUTPOST_TOKEN",
    "OUTPOST_CA_CERT",
    "OUTPOST_INSECURE",
    "OUTPOST_CLI_CONFIG",
    "OUTPOST_LOG",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Folder holding the store, certificates and blobs.
    pub data_dir: PathBuf,
    /// Names this appliance is reached by; they go into the generated certificate.
    pub hostnames: Vec<String>,
    pub http: HttpConfig,
    pub tls: TlsConfig,
    pub admin: AdminConfig,
    pub bootstrap: BootstrapConfig,
    pub store: StoreConfig,
    pub metrics: MetricsConfig,
    pub log: LogConfig,
    pub relay: RelayConfig,
    pub calling: CallingConfig,
    pub mail: MailConfig,
    pub sso: SsoOptions,
    pub retention: crate::retention::config::RetentionConfig,
}

/// Single sign-on (each network's identity provider is configured through the admin API;
/// these are the appliance-wide knobs).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SsoOptions {
    /// Seconds between checks for SSO devices whose ID token is about to expire (their
    /// refresh token is then redeemed at the identity provider); also the retry interval
    /// while a provider cannot be reached.
    pub refresh_check_secs: u64,
    /// Seconds a call to an identity provider (discovery, keys, tokens) may take.
    pub http_timeout_secs: u64,
}

impl Default for SsoOptions {
    fn default() -> Self {
        SsoOptions {
            refresh_check_secs: 30,
            http_timeout_secs: 10,
        }
    }
}

/// The calling relay: a TURN server (RFC 8656) for peer-to-peer call media.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallingConfig {
    /// Run the TURN server.
    pub enabled: bool,
    /// STUN/TURN listen addresses, each for both UDP and TCP (port 0 picks a free port).
    pub listen: Vec<SocketAddr>,
    /// TURN over TLS listen addresses (TCP).
    pub tls_listen: Vec<SocketAddr>,
    /// Also accept TURN over TLS on the HTTPS listeners, chosen by ALPN `stun.turn`.
    pub on_https: bool,
    /// Address the relay sockets bind (IPv4).
    pub relay_ip: std::net::IpAddr,
    /// IPv6 address the relay sockets bind; empty = no IPv6 relaying.
    pub relay_ip6: String,
    /// Public IPv4 address given to clients instead of `relay_ip` (1:1 NAT); empty = none.
    pub external_ip: String,
    /// First port of the relay range (inclusive).
    pub relay_port_min: u16,
    /// Last port of the relay range (inclusive).
    pub relay_port_max: u16,
    /// STUN realm; empty = the first host name.
    pub realm: String,
    /// TURN REST shared secret; empty = generate one and keep it in the store.
    pub secret: Secret,
    /// Seconds the credentials the client API issues stay valid.
    pub credential_ttl_secs: u64,
    /// Host name or address put in the ICE server URLs; empty = the first host name, or
    /// the listen address when it is a specific address.
    pub public_host: String,
    /// Allow peers on loopback addresses (tests and single-host setups only).
    pub allow_loopback_peers: bool,
    /// Peer networks allowed even though they are denied by default.
    pub peer_allow: Vec<IpNet>,
    /// Further peer networks to deny.
    pub peer_deny: Vec<IpNet>,
    /// Concurrent allocations one user may hold.
    pub user_quota: u32,
    /// Concurrent allocations in all.
    pub total_quota: u32,
    /// Bytes per second one allocation may relay (both directions); 0 = no cap.
    pub max_bandwidth_bytes_per_sec: u64,
    /// Unauthenticated requests (and failed authentications) answered per source address
    /// per second.
    pub unauthenticated_per_second: u32,
    /// Longest allocation lifetime granted, in seconds.
    pub max_lifetime_secs: u32,
    /// Seconds a nonce stays fresh before clients get 438 Stale Nonce.
    pub nonce_lifetime_secs: u64,
    /// Never answer an unauthenticated UDP request with more bytes than it had. The
    /// authentication challenge (ERROR-CODE, REALM, NONCE: 64 bytes with a 9-character
    /// realm) is larger than the first Allocate of most clients, browsers included, so
    /// this locks them out of UDP (they fall back to TURN over TCP/TLS).
    pub strict_amplification: bool,
}

impl Default for CallingConfig {
    fn default() -> Self {
        CallingConfig {
            enabled: true,
            listen: vec!["127.0.0.1:3478".parse().expect("static address")],
            tls_listen: vec!["127.0.0.1:5349".parse().expect("static address")],
            on_https: true,
            relay_ip: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            relay_ip6: String::new(),
            external_ip: String::new(),
            relay_port_min: 16384,
            relay_port_max: 16584,
            realm: String::new(),
            secret: Secret::default(),
            credential_ttl_secs: 86_400,
            public_host: String::new(),
            allow_loopback_peers: false,
            peer_allow: Vec::new(),
            peer_deny: Vec::new(),
            user_quota: 10,
            total_quota: 20_000,
            max_bandwidth_bytes_per_sec: 1_500_000,
            unauthenticated_per_second: 20,
            max_lifetime_secs: 3600,
            nonce_lifetime_secs: 600,
            strict_amplification: false,
        }
    }
}

impl CallingConfig {
    /// The IPv6 relay address, if configured.
    pub fn relay_ip6(&self) -> Option<std::net::IpAddr> {
        self.relay_ip6.trim().parse().ok()
    }

    /// The public IPv4 address, if configured.
    pub fn external_ip(&self) -> Option<std::net::IpAddr> {
        self.external_ip.trim().parse().ok()
    }
}

/// The messaging relay: device streams, mailboxes and attachments.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelayConfig {
    /// Serve device streams over QUIC too (ALPN `outpost/1`).
    pub quic: bool,
    /// UDP addresses for QUIC; empty = the same addresses and ports as HTTPS.
    pub quic_listen: Vec<SocketAddr>,
    /// Days an undelivered envelope waits in a mailbox before it is removed (1 … 365).
    pub mailbox_max_age_days: u64,
    /// Largest stream frame accepted, in bytes.
    pub max_frame_bytes: usize,
    /// Largest attachment, in bytes (at most 5 GB).
    pub max_file_bytes: u64,
    /// Largest upload chunk, in bytes.
    pub chunk_max_bytes: usize,
    /// Hours an uploaded blob that no envelope references is kept.
    pub unsent_blob_hours: u64,
    /// Device sign-ins (device registrations) allowed per source address per minute.
    pub login_attempts_per_minute: u32,
    /// Seconds between purges of expired envelopes and unreferenced attachments.
    pub purge_interval_secs: u64,
    /// Frames one stream may send per second (bursts of twice that); 0 = no limit.
    pub max_frames_per_second: u32,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            quic: true,
            quic_listen: Vec::new(),
            mailbox_max_age_days: 30,
            max_frame_bytes: 1024 * 1024,
            max_file_bytes: 5_000_000_000,
            chunk_max_bytes: 8 * 1024 * 1024,
            unsent_blob_hours: 24,
            login_attempts_per_minute: 30,
            purge_interval_secs: 30,
            max_frames_per_second: 2000,
        }
    }
}

/// Largest attachment size a site may configure (PRODUCT.md F6: files up to 5 GB).
pub const MAX_FILE_BYTES: u64 = 5_000_000_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// HTTPS listen addresses (port 0 picks a free port; the chosen one is logged).
    pub listen: Vec<SocketAddr>,
    /// Worker threads for HTTP; 0 = one per CPU.
    pub workers: usize,
    /// Seconds in-flight requests get to finish after SIGTERM.
    pub shutdown_timeout_secs: u64,
    /// Largest JSON request body accepted.
    pub max_json_bytes: usize,
    /// Largest upload (CSV files, restore archives) accepted.
    pub max_upload_bytes: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain of the site; empty = generate one under `data_dir/tls`.
    pub cert_file: PathBuf,
    /// PEM private key for `cert_file`.
    pub key_file: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Username of the owner account created on first start.
    pub bootstrap_username: String,
    /// Lifetime of an admin API session token, in hours.
    pub session_hours: u64,
    /// Sign-in attempts allowed per source address per minute.
    pub login_attempts_per_minute: u32,
    /// Consecutive failed sign-ins that lock an admin account.
    pub lockout_threshold: u32,
    /// Minutes an admin account stays locked.
    pub lockout_minutes: u64,
    /// Most rows a bulk CSV file may hold.
    pub bulk_max_rows: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BootstrapConfig {
    /// Name of the network created on first start.
    pub network_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Page cache of the embedded database, in MiB.
    pub cache_mib: usize,
    /// Most operations the group committer puts into one durable transaction.
    pub group_commit_max_ops: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve `/metrics`.
    pub enabled: bool,
    /// Source networks allowed to read `/metrics`.
    pub allow_from: Vec<IpNet>,
    /// If set, `/metrics` also requires `Authorization: Bearer <token>`.
    pub bearer_token: Secret,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug`, `trace`, or a tracing filter directive.
    pub level: String,
    /// `text` or `json`.
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./outpost-data"),
            hostnames: vec!["localhost".into()],
            http: HttpConfig::default(),
            tls: TlsConfig::default(),
            admin: AdminConfig::default(),
            bootstrap: BootstrapConfig::default(),
            store: StoreConfig::default(),
            metrics: MetricsConfig::default(),
            log: LogConfig::default(),
            relay: RelayConfig::default(),
            calling: CallingConfig::default(),
            mail: MailConfig::default(),
            sso: SsoOptions::default(),
            retention: Default::default(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: vec!["127.0.0.1:8443".parse().expect("static address")],
            workers: 0,
            shutdown_timeout_secs: 30,
            max_json_bytes: 1024 * 1024,
            max_upload_bytes: 64 * 1024 * 1024,
        }
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert_file: PathBuf::new(),
            key_file: PathBuf::new(),
        }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            bootstrap_username: "owner".into(),
            session_hours: 12,
            login_attempts_per_minute: 10,
            lockout_threshold: 10,
            lockout_minutes: 15,
            bulk_max_rows: 100_000,
        }
    }
}

impl Default for BootstrapConfig {
    fn default() -> Self {
        BootstrapConfig {
            network_name: "outpost".into(),
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            cache_mib: 256,
            group_commit_max_ops: 4096,
        }
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            allow_from: vec![
                "127.0.0.0/8".parse().expect("static net"),
                "::1/128".parse().expect("static net"),
            ],
            bearer_token: Secret::default(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// Why a configuration could not be loaded: always names the file, key or variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
}

impl ConfigError {
    fn invalid(origin: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            origin: origin.into(),
            message: message.into(),
        }
    }
}

impl Config {
    /// Load `path` (if any) over the embedded defaults, then apply `OUTPOST_*` variables
    /// from `vars`, then validate.
    pub fn load(
        path: Option<&Path>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let (mut table, file_label) = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_path_buf(),
                    source,
                })?;
                let table: toml::Table = toml::from_str(&text).map_err(|e| {
                    ConfigError::invalid(p.display().to_string(), e.message().to_string())
                })?;
                (table, p.display().to_string())
            }
            None => (toml::Table::new(), "embedded defaults".to_string()),
        };
        let from_env = env::apply(&mut table, vars)?;
        let de = toml::Value::Table(table);
        let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let origin = match from_env.iter().find(|(k, _)| key.starts_with(k.as_str())) {
                Some((k, var)) => format!("{var} ({k})"),
                None => format!("{file_label}: {key}"),
            };
            ConfigError::invalid(origin, e.into_inner().to_string())
        })?;
        config.validate()?;
        Ok(config)
    }

    /// The calling relay's rules.
    fn validate_calling(&self) -> Result<(), ConfigError> {
        let bad =
            |key: &str, msg: &str| Err(ConfigError::invalid(key.to_string(), msg.to_string()));
        let c = &self.calling;
        if !c.enabled {
            return Ok(());
        }
        if c.listen.is_empty() && c.tls_listen.is_empty() && !c.on_https {
            return bad(
                "calling.listen",
                "the calling relay needs a listener: calling.listen, calling.tls_listen or calling.on_https",
            );
        }
        if c.relay_port_min == 0 || c.relay_port_min > c.relay_port_max {
            return bad(
                "calling.relay_port_min",
                "must be between 1 and calling.relay_port_max",
            );
        }
        if !c.relay_ip.is_ipv4() {
            return bad(
                "calling.relay_ip",
                "must be an IPv4 address (put an IPv6 one in calling.relay_ip6)",
            );
        }
        if !c.relay_ip6.trim().is_empty() && !matches!(c.relay_ip6(), Some(std::net::IpAddr::V6(_)))
        {
            return bad("calling.relay_ip6", "must be an IPv6 address, or empty");
        }
        if !c.external_ip.trim().is_empty()
            && !matches!(c.external_ip(), Some(std::net::IpAddr::V4(_)))
        {
            return bad("calling.external_ip", "must be an IPv4 address, or empty");
        }
        if c.relay_ip.is_unspecified() && c.external_ip().is_none() {
            return bad(
                "calling.relay_ip",
                "is 0.0.0.0, which clients cannot send to: set calling.external_ip to the address they reach",
            );
        }
        if matches!(c.relay_ip6(), Some(ip) if ip.is_unspecified()) {
            return bad("calling.relay_ip6", "must be a specific address, not ::");
        }
        if c.credential_ttl_secs < 60 {
            return bad("calling.credential_ttl_secs", "must be at least 60");
        }
        if c.user_quota == 0 || c.total_quota == 0 {
            return bad("calling.user_quota", "quotas must be at least 1");
        }
        if c.unauthenticated_per_second == 0 {
            return bad("calling.unauthenticated_per_second", "must be at least 1");
        }
        if !(600..=86_400).contains(&c.max_lifetime_secs) {
            return bad("calling.max_lifetime_secs", "must be between 600 and 86400");
        }
        if !(1..=86_400).contains(&c.nonce_lifetime_secs) {
            return bad("calling.nonce_lifetime_secs", "must be between 1 and 86400");
        }
        if !c.secret.is_empty() && c.secret.expose().len() < 16 {
            return bad(
                "calling.secret",
                "must be at least 16 characters, or empty to let outpost generate one",
            );
        }
        Ok(())
    }

    /// Rules serde cannot express.
    fn validate(&self) -> Result<(), ConfigError> {
        let bad =
            |key: &str, msg: &str| Err(ConfigError::invalid(key.to_string(), msg.to_string()));
        if self.data_dir.as_os_str().is_empty() {
            return bad("data_dir", "must not be empty");
        }
        if self.hostnames.is_empty() {
            return bad("hostnames", "list at least one host name");
        }
        for h in &self.hostnames {
            if h.is_empty()
                || h.len() > 253
                || !h
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
            {
                return bad(
                    "hostnames",
                    &format!("{h:?} is not a valid host name or address"),
                );
            }
        }
        if self.http.listen.is_empty() {
            return bad(
                "http.listen",
                "list at least one address, e.g. \"127.0.0.1:8443\"",
            );
        }
        if self.tls.cert_file.as_os_str().is_empty() != self.tls.key_file.as_os_str().is_empty() {
            return bad(
                "tls.cert_file",
                "set both tls.cert_file and tls.key_file, or neither",
            );
        }
        if self.http.max_json_bytes < 1024 {
            return bad("http.max_json_bytes", "must be at least 1024");
        }
        if self.http.max_upload_bytes < 1024 {
            return bad("http.max_upload_bytes", "must be at least 1024");
        }
        let r = &self.relay;
        if !(1..=365).contains(&r.mailbox_max_age_days) {
            return bad("relay.mailbox_max_age_days", "must be between 1 and 365");
        }
        if !(64 * 1024..=64 * 1024 * 1024).contains(&r.max_frame_bytes) {
            return bad(
                "relay.max_frame_bytes",
                "must be between 65536 and 67108864 (an envelope carries up to 64 KiB of ciphertext)",
            );
        }
        if r.max_file_bytes == 0 || r.max_file_bytes > MAX_FILE_BYTES {
            return bad(
                "relay.max_file_bytes",
                "must be between 1 and 5000000000 (5 GB)",
            );
        }
        if !(64 * 1024..=64 * 1024 * 1024).contains(&r.chunk_max_bytes) {
            return bad(
                "relay.chunk_max_bytes",
                "must be between 65536 and 67108864",
            );
        }
        if r.unsent_blob_hours == 0 {
            return bad("relay.unsent_blob_hours", "must be at least 1");
        }
        if !(1..=3600).contains(&r.purge_interval_secs) {
            return bad("relay.purge_interval_secs", "must be between 1 and 3600");
        }
        if r.login_attempts_per_minute == 0 {
            return bad("relay.login_attempts_per_minute", "must be at least 1");
        }
        self.validate_calling()?;
        self.mail.validate()?;
        if !(1..=3600).contains(&self.sso.refresh_check_secs) {
            return bad("sso.refresh_check_secs", "must be between 1 and 3600");
        }
        if !(1..=120).contains(&self.sso.http_timeout_secs) {
            return bad("sso.http_timeout_secs", "must be between 1 and 120");
        }
        if self.admin.bootstrap_username.trim().is_empty() {
            return bad("admin.bootstrap_username", "must not be empty");
        }
        if self.admin.session_hours == 0 || self.admin.session_hours > 24 * 30 {
            return bad("admin.session_hours", "must be between 1 and 720");
        }
        if self.admin.login_attempts_per_minute == 0 {
            return bad("admin.login_attempts_per_minute", "must be at least 1");
        }
        if self.admin.lockout_threshold == 0 {
            return bad("admin.lockout_threshold", "must be at least 1");
        }
        if self.admin.bulk_max_rows == 0 {
            return bad("admin.bulk_max_rows", "must be at least 1");
        }
        if self.bootstrap.network_name.trim().is_empty() {
            return bad("bootstrap.network_name", "must not be empty");
        }
        if self.store.group_commit_max_ops == 0 {
            return bad("store.group_commit_max_ops", "must be at least 1");
        }
        if self.store.cache_mib < 8 {
            return bad("store.cache_mib", "must be at least 8");
        }
        if self.log.level.trim().is_empty() {
            return bad("log.level", "must not be empty");
        }
        if let Err((key, msg)) = self.retention.validate() {
            return bad(key, msg);
        }
        Ok(())
    }

    /// The effective configuration as TOML, secrets redacted.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }

    pub fn tls_dir(&self) -> PathBuf {
        self.data_dir.join("tls")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn embedded_defaults_load_without_a_file() {
        let c = Config::load(None, vec![]).unwrap();
        assert_eq!(c.http.listen[0].to_string(), "127.0.0.1:8443");
        assert_eq!(c.data_dir, PathBuf::from("./outpost-data"));
    }

    #[test]
    fn env_overrides_name_the_variable_on_error() {
        let c = Config::load(
            None,
            vars(&[("OUTPOST_HTTP_LISTEN", "127.0.0.1:9000,[::1]:9001")]),
        )
        .unwrap();
        assert_eq!(c.http.listen.len(), 2);
        let e = Config::load(None, vars(&[("OUTPOST_HTTP_LISTEN", "nonsense")])).unwrap_err();
        assert!(e.to_string().contains("OUTPOST_HTTP_LISTEN"), "{e}");
        let e = Config::load(None, vars(&[("OUTPOST_HTTP_LISTN", "x")])).unwrap_err();
        assert!(e.to_string().contains("OUTPOST_HTTP_LISTN"), "{e}");
        let c = Config::load(None, vars(&[("OUTPOST_ADMIN_SESSION_HOURS", "3")])).unwrap();
        assert_eq!(c.admin.session_hours, 3);
        let e = Config::load(None, vars(&[("OUTPOST_METRICS_ENABLED", "perhaps")])).unwrap_err();
        assert!(e.to_string().contains("OUTPOST_METRICS_ENABLED"), "{e}");
    }

    #[test]
    fn unknown_keys_in_the_file_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "[http]\nlisten = [\"127.0.0.1:1\"]\nlistne = 3\n").unwrap();
        let e = Config::load(Some(&p), vec![]).unwrap_err().to_string();
        assert!(e.contains("http.listne") || e.contains("listne"), "{e}");
        std::fs::write(&p, "[admin]\nsession_hours = 0\n").unwrap();
        let e = Config::load(Some(&p), vec![]).unwrap_err().to_string();
        assert!(e.contains("admin.session_hours"), "{e}");
        std::fs::write(&p, "[metrics]\nbearer_token = \"s3cret-token\"\n").unwrap();
        let c = Config::load(Some(&p), vec![]).unwrap();
        assert!(!c.to_redacted_toml().contains("s3cret-token"));
        assert!(c.metrics.bearer_token.ct_eq("s3cret-token"));
    }
}
