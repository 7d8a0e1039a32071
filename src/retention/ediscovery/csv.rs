//! The `csv` export: one row per message (RFC 4180: CRLF line ends, fields quoted when
//! they hold a comma, a quote or a line break), with a header row.

use super::{ExportError, Progress, Selected, describe, rfc3339};
use std::path::Path;

/// The columns, in order.
pub const COLUMNS: &[&str] = &[
    "message_id",
    "time_utc",
    "msgtype",
    "kind",
    "sender",
    "sender_device",
    "receiver",
    "vgroupid",
    "message",
    "target",
    "file_name",
    "file_size",
    "file_mime",
    "file_path",
    "ttl",
    "bor",
    "forwarded",
    "error",
];

/// Write `export.csv` into `out`.
pub fn write(
    selected: &Selected,
    out: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<String>, ExportError> {
    let path = out.join("export.csv");
    let mut w = ::csv::WriterBuilder::new()
        .terminator(::csv::Terminator::CRLF)
        .quote_style(::csv::QuoteStyle::Necessary)
        .from_path(&path)
        .map_err(|e| ExportError::write(&path, e))?;
    w.write_record(COLUMNS)
        .map_err(|e| ExportError::write(&path, e))?;
    let total = selected.records.len();
    for (i, e) in selected.records.iter().enumerate() {
        let r = &e.record;
        let file = r.file.as_ref();
        let row: [String; 18] = [
            r.message_id.clone(),
            rfc3339(e.time),
            r.msgtype.to_string(),
            r.kind.clone(),
            r.sender.clone(),
            r.sender_device.clone().unwrap_or_default(),
            r.receiver.clone().unwrap_or_default(),
            r.vgroupid.clone(),
            describe(r),
            r.target.clone().unwrap_or_default(),
            file.map(|f| f.filename.clone()).unwrap_or_default(),
            file.map(|f| f.size.to_string()).unwrap_or_default(),
            file.map(|f| f.mime.clone()).unwrap_or_default(),
            file.and_then(|f| f.localfilename.clone())
                .unwrap_or_default(),
            r.ttl.clone(),
            r.bor.map(|b| b.to_string()).unwrap_or_default(),
            r.forwarded.to_string(),
            r.error.clone().unwrap_or_default(),
        ];
        w.write_record(&row)
            .map_err(|e| ExportError::write(&path, e))?;
        if (i + 1) % 100_000 == 0 {
            progress(Progress::Written { done: i + 1, total });
        }
    }
    w.flush().map_err(|e| ExportError::write(&path, e))?;
    progress(Progress::Written { done: total, total });
    Ok(vec!["export.csv".into()])
}
