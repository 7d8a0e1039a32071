//! `outpost retention export`: an eDiscovery export of the retention journal on this
//! machine ([`crate::retention::ediscovery`]).

use super::Local;
use crate::retention::ediscovery::{self, EmlGrouping, ExportRequest, Format, Progress};
use clap::Args;
use std::io::IsTerminal;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// First instant included, UTC: a date (2026-12-01), "2026-12-01 08:30" or RFC 3339.
    #[arg(long)]
    pub from: String,
    /// First instant no longer included (same forms as --from).
    #[arg(long)]
    pub to: String,
    /// What to write: the journal lines, one CSV row per message, RFC 5322 messages, or
    /// a Relativity Short Message Format 2.0 file.
    #[arg(long, value_enum)]
    pub format: Format,
    /// Folder to write into (created if missing).
    #[arg(long, default_value = "retention-export")]
    pub out: PathBuf,
    /// The retention folder to read (default: the configured one).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The site's age identity file, to read sealed (.age) journal files and attachments.
    #[arg(long, short = 'i')]
    pub identity: Option<PathBuf>,
    /// For --format eml: one message per file, or one transcript per conversation and day.
    #[arg(long, value_enum, default_value = "message")]
    pub eml_per: EmlGrouping,
    #[command(flatten)]
    pub local: Local,
}

/// The retention folder when `--dir` is not given.
fn default_folder(local: &Local) -> anyhow::Result<PathBuf> {
    let c = local.load()?;
    Ok(c.retention.folder(&c.data_dir))
}

/// Run the export; progress goes to standard error, the summary to standard output.
pub fn export(args: &ExportArgs, json: bool) -> anyhow::Result<i32> {
    let folder = match &args.dir {
        Some(d) => d.clone(),
        None => default_folder(&args.local)?,
    };
    let from = ediscovery::parse_instant("--from", &args.from);
    let to = ediscovery::parse_instant("--to", &args.to);
    let req = match (from, to) {
        (Ok(from), Ok(to)) => ExportRequest {
            folder,
            from,
            to,
            format: args.format,
            out: args.out.clone(),
            identity: args.identity.clone(),
            eml_grouping: args.eml_per,
        },
        (Err(e), _) | (_, Err(e)) => return Ok(fail(&e)),
    };
    let tty = std::io::stderr().is_terminal();
    let mut progress = |p: Progress| match p {
        Progress::File {
            index,
            total,
            name,
            kept,
        } => eprintln!("read {index}/{total} {name}: {kept} records in range"),
        Progress::Written { done, total } if tty || done == total => {
            eprintln!("written {done}/{total} records")
        }
        Progress::Written { .. } => {}
    };
    match ediscovery::run(&req, &mut progress) {
        Ok(s) => {
            if json {
                println!("{}", serde_json::to_string(&s)?);
            } else {
                println!(
                    "exported {} records ({} attachments) from {} journal files as {} into {}:",
                    s.records,
                    s.attachments,
                    s.files,
                    s.format,
                    req.out.display()
                );
                for o in &s.outputs {
                    println!("  {o}");
                }
            }
            Ok(0)
        }
        Err(e) => Ok(fail(&e)),
    }
}

fn fail(e: &ediscovery::ExportError) -> i32 {
    eprintln!("error [{}]: {e}", e.code());
    1
}
