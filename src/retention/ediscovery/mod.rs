//! On-demand eDiscovery exports of the retention journal:
//! `outpost retention export --from --to --format jsonl|csv|eml|rsmf [--out DIR]`.
//!
//! [`run`] reads the journal files of the retention folder (`messages/*.jsonl`, and
//! `*.jsonl.age` when an age identity file is given), keeps the records whose server time
//! is in `[from, to)`, orders them by time, and hands them to one writer:
//! - [`jsonl`]: the selected journal lines, unchanged (`export.jsonl`);
//! - [`csv`]: one row per message, RFC 4180 (`export.csv`);
//! - [`eml`]: RFC 5322 messages with attachments as MIME parts, one per message or one
//!   per conversation and UTC day (`eml/…`);
//! - [`rsmf`]: a Relativity Short Message Format 2.0 file (`export.rsmf`): an EML whose
//!   `rsmf.zip` attachment holds `rsmf_manifest.json` (participants, conversations,
//!   events) and the attachments.
//!
//! Bad ranges, unreadable files and wrong identities are [`ExportError`]s with a stable
//! code and a sentence. Progress (files read, records kept) goes to a callback, which the
//! CLI prints on standard error.

pub mod csv;
pub mod eml;
pub mod jsonl;
pub mod reader;
pub mod rsmf;

use crate::retention::record::Record;
use chrono::{DateTime, Utc};
use std::path::PathBuf;

pub use reader::{Journal, Selected};

/// The export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The selected journal lines, unchanged.
    Jsonl,
    /// One row per message (RFC 4180).
    Csv,
    /// RFC 5322 messages with attachments.
    Eml,
    /// Relativity Short Message Format 2.0.
    Rsmf,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
            Format::Eml => "eml",
            Format::Rsmf => "rsmf",
        }
    }
}

/// How the `eml` format groups messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum EmlGrouping {
    /// One `.eml` per message.
    #[default]
    Message,
    /// One `.eml` per conversation and UTC day, the messages as a transcript.
    ConversationDay,
}

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    /// The retention folder (holding `messages/` and `attachments/`).
    pub folder: PathBuf,
    /// First instant included (UTC).
    pub from: DateTime<Utc>,
    /// First instant no longer included (UTC).
    pub to: DateTime<Utc>,
    pub format: Format,
    /// Folder the export is written to (created if missing).
    pub out: PathBuf,
    /// Age identity file, to read sealed (`.age`) journal files and attachments.
    pub identity: Option<PathBuf>,
    pub eml_grouping: EmlGrouping,
}

/// What an export wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub format: &'static str,
    /// Journal files read.
    pub files: usize,
    /// Records in the range.
    pub records: usize,
    /// Attachments included (eml, rsmf).
    pub attachments: usize,
    /// Files written, relative to the output folder.
    pub outputs: Vec<String>,
}

/// Where an export is.
#[derive(Debug, Clone)]
pub enum Progress {
    /// A journal file has been read (`index` of `total`).
    File {
        index: usize,
        total: usize,
        name: String,
        kept: usize,
    },
    /// The writer has written `done` of `total` records.
    Written { done: usize, total: usize },
}

/// Why an export failed: a stable code and a sentence.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0}")]
    BadRange(String),
    #[error("{0}")]
    NoJournal(String),
    #[error("{0}")]
    Identity(String),
    #[error("{0}")]
    Read(String),
    #[error("{0}")]
    Write(String),
}

impl ExportError {
    /// The machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ExportError::BadRange(_) => "bad_range",
            ExportError::NoJournal(_) => "no_journal",
            ExportError::Identity(_) => "identity_required",
            ExportError::Read(_) => "journal_unreadable",
            ExportError::Write(_) => "export_write_failed",
        }
    }

    pub(crate) fn write(what: &std::path::Path, e: impl std::fmt::Display) -> ExportError {
        ExportError::Write(format!("cannot write {}: {e}", what.display()))
    }
}

/// Parse a `--from`/`--to` value: RFC 3339 (`2026-12-01T00:00:00Z`), a date
/// (`2026-12-01`, midnight UTC) or `YYYY-MM-DD hh:mm[:ss]` (UTC).
pub fn parse_instant(flag: &str, s: &str) -> Result<DateTime<Utc>, ExportError> {
    let t = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(n) = chrono::NaiveDateTime::parse_from_str(t, f) {
            return Ok(n.and_utc());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d")
        && let Some(n) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(n.and_utc());
    }
    Err(ExportError::BadRange(format!(
        "{flag} {s:?} is not a time: use a date (2026-12-01), a UTC time \
         (\"2026-12-01 08:30\") or RFC 3339 (2026-12-01T08:30:00Z)"
    )))
}

/// Run an export.
pub fn run(
    req: &ExportRequest,
    progress: &mut dyn FnMut(Progress),
) -> Result<Summary, ExportError> {
    if req.from >= req.to {
        return Err(ExportError::BadRange(format!(
            "--from ({}) must be before --to ({}): the range is [from, to)",
            req.from.to_rfc3339(),
            req.to.to_rfc3339()
        )));
    }
    let journal = Journal::open(&req.folder, req.identity.as_deref())?;
    let selected = journal.select(req.from, req.to, progress)?;
    std::fs::create_dir_all(&req.out).map_err(|e| ExportError::write(&req.out, e))?;
    let (outputs, attachments) = match req.format {
        Format::Jsonl => (jsonl::write(&selected, &req.out, progress)?, 0),
        Format::Csv => (csv::write(&selected, &req.out, progress)?, 0),
        Format::Eml => eml::write(&journal, &selected, &req.out, req.eml_grouping, progress)?,
        Format::Rsmf => rsmf::write(&journal, &selected, req, progress)?,
    };
    Ok(Summary {
        format: req.format.as_str(),
        files: selected.files,
        records: selected.records.len(),
        attachments,
        outputs,
    })
}

/// A record's server time.
pub fn record_time(r: &Record) -> DateTime<Utc> {
    let ms = parse_msg_ts(&r.msg_ts).unwrap_or(0);
    crate::retention::record::utc_of_ms(ms)
}

/// `msg_ts` (`"1691176258.901000"`) as milliseconds since the epoch.
pub fn parse_msg_ts(s: &str) -> Option<u64> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, "0"));
    let secs: u64 = secs.trim().parse().ok()?;
    let mut f = frac.trim().to_string();
    f.truncate(3);
    while f.len() < 3 {
        f.push('0');
    }
    let ms: u64 = f.parse().ok()?;
    Some(secs * 1000 + ms)
}

/// RFC 3339 UTC with milliseconds, the timestamps of CSV and RSMF.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A short text for a record that has no message text (what the event was).
pub fn describe(r: &Record) -> String {
    use crate::retention::record::msgtype;
    if let Some(m) = &r.message {
        return m.clone();
    }
    match r.msgtype {
        msgtype::FILE => match &r.file {
            Some(f) => format!("[file {} ({} bytes)]", f.filename, f.size),
            None => "[file]".into(),
        },
        msgtype::LOCATION => match &r.location {
            Some(l) => format!("[location {}, {}]", l.latitude, l.longitude),
            None => "[location]".into(),
        },
        msgtype::CALL => format!(
            "[call {}]",
            r.call.as_ref().map(|c| c.to_string()).unwrap_or_default()
        ),
        msgtype::DELETE_MESSAGE => {
            format!("[deleted message {}]", r.target.as_deref().unwrap_or("?"))
        }
        4001..=4014 => format!(
            "[{} {}]",
            r.kind,
            r.control
                .as_ref()
                .map(|c| c.to_string())
                .unwrap_or_default()
        ),
        _ => match (&r.content, &r.error) {
            (_, Some(e)) => format!("[not decrypted: {e}]"),
            (Some(c), _) => format!("[{} {c}]", r.kind),
            _ => format!("[{}]", r.kind),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_and_ranges() {
        let a = parse_instant("--from", "2026-12-01").unwrap();
        assert_eq!(a.to_rfc3339(), "2026-12-01T00:00:00+00:00");
        let b = parse_instant("--to", "2026-12-01 08:30").unwrap();
        assert_eq!(b.to_rfc3339(), "2026-12-01T08:30:00+00:00");
        let c = parse_instant("--to", "2026-12-01T10:00:00+02:00").unwrap();
        assert_eq!(c.to_rfc3339(), "2026-12-01T08:00:00+00:00");
        let e = parse_instant("--from", "yesterday").unwrap_err();
        assert_eq!(e.code(), "bad_range");
        assert!(e.to_string().contains("--from"), "{e}");
        assert_eq!(parse_msg_ts("1691176258.901000"), Some(1_691_176_258_901));
        assert_eq!(parse_msg_ts("12"), Some(12_000));
    }
}
