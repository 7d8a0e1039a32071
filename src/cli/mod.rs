//! The `outpost` command line: one binary for the appliance and its administration.
//!
//! `serve` runs the appliance; `config`, `store`, `restore` and `audit verify
//! --data-dir` work on a data folder directly (a stopped server, except `config
//! check`); `backup` and `admin …` talk to a running server through the admin API
//! ([`client`]); `client …` is the end-to-end-encrypted messaging client
//! ([`messaging`]). Exit status: 0 success, 1 failure, 2 bad usage (clap).

pub mod admin;
pub mod admin_sso;
pub mod client;
mod local;
pub mod messaging;
pub mod output;
pub mod retention;
pub mod retention_export;

use crate::config::Config;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "outpost",
    version,
    about = "Self-hosted secure communications appliance"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Where the configuration and data live (for commands that run on this machine).
#[derive(Debug, Args, Clone)]
pub struct Local {
    /// Configuration file (default: embedded defaults).
    #[arg(long, short = 'c', env = "OUTPOST_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data folder (overrides `data_dir` in the configuration and OUTPOST_DATA_DIR).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

impl Local {
    /// Load the configuration with this command's overrides.
    pub fn load(&self) -> anyhow::Result<Config> {
        let mut c = Config::load(self.config.as_deref(), std::env::vars())?;
        if let Some(d) = &self.data_dir {
            c.data_dir = d.clone();
        }
        Ok(c)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the appliance (HTTPS, admin API, metrics) until SIGTERM or SIGINT.
    Serve(Local),
    /// Validate and show the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Check a stopped server's store.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Download a backup archive from a running server (same as `admin backup`).
    Backup {
        /// Where to write the archive (`-` for standard output).
        file: PathBuf,
        #[command(flatten)]
        conn: client::Connection,
    },
    /// Replace a stopped server's store (and generated TLS identity) with a backup.
    Restore {
        /// The archive written by `outpost backup`.
        file: PathBuf,
        #[command(flatten)]
        local: Local,
    },
    /// Check the audit log's hash chain.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Administer a running server through its admin API.
    Admin(admin::AdminArgs),
    /// The messaging client: log a device in, send and receive encrypted messages.
    Client(messaging::ClientArgs),
    /// Data retention: enable, disable, status (through the admin API).
    Retention(retention::RetentionArgs),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and print it with secrets redacted.
    Check(Local),
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Check the database file, the directory's indexes and counters, and the audit chain.
    Check(Local),
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Report the first tampered or missing audit event.
    Verify {
        /// Verify an exported JSON-lines file instead (`outpost admin audit export`).
        #[arg(long, conflicts_with = "data_dir")]
        file: Option<PathBuf>,
        /// Verify the store of a stopped server in this data folder.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[command(flatten)]
        conn: client::Connection,
    },
}

/// Parse the command line, run it, and return the exit status.
pub fn main() -> i32 {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // Under systemd, "<3>" files the line in the journal at priority err.
            let prefix = if stderr_is_journal() { "<3>" } else { "" };
            eprintln!("{prefix}error: {e:#}");
            1
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("outpost")
        .build()?)
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Serve(local) => {
            let config = local.load()?;
            init_logging(&config);
            runtime()?.block_on(crate::server::serve(config))?;
            Ok(0)
        }
        Command::Config(ConfigCommand::Check(local)) => local::config_check(&local),
        Command::Store(StoreCommand::Check(local)) => local::store_check(&local),
        Command::Restore { file, local } => local::restore(&file, &local),
        Command::Backup { file, conn } => runtime()?.block_on(admin::backup(&conn, &file)),
        Command::Audit(AuditCommand::Verify {
            file,
            data_dir,
            conn,
        }) => match (file, data_dir) {
            (Some(f), _) => local::verify_audit_file(&f),
            (None, Some(d)) => local::verify_audit_store(&d),
            (None, None) => runtime()?.block_on(admin::verify_audit(&conn)),
        },
        Command::Admin(args) => runtime()?.block_on(admin::run(args)),
        Command::Client(args) => runtime()?.block_on(messaging::run(args)),
        Command::Retention(args) => runtime()?.block_on(retention::run(args)),
    }
}

/// Logs go to journald as structured records with priorities when systemd connected
/// stderr to the journal (`JOURNAL_STREAM`), otherwise to stderr as text (coloured
/// only on a terminal) or JSON lines.
fn init_logging(config: &Config) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = std::env::var("OUTPOST_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .or_else(|| EnvFilter::try_new(&config.log.level).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    if stderr_is_journal()
        && let Ok(journald) = tracing_journald::layer()
    {
        let _ = tracing_subscriber::registry()
            .with(filter)
            .with(journald.with_syslog_identifier("outpost".into()))
            .try_init();
        return;
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none());
    let _ = match config.log.format {
        crate::config::LogFormat::Json => builder.json().try_init(),
        crate::config::LogFormat::Text => builder.try_init(),
    };
}

/// True if stderr is the journal stream systemd named in `JOURNAL_STREAM` (device:inode).
fn stderr_is_journal() -> bool {
    let Ok(v) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = v.split_once(':') else {
        return false;
    };
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat writes into `st`, a properly sized, owned stat buffer.
    if unsafe { libc::fstat(2, &mut st) } != 0 {
        return false;
    }
    dev.parse::<u64>().ok() == Some(st.st_dev) && ino.parse::<u64>().ok() == Some(st.st_ino)
}
