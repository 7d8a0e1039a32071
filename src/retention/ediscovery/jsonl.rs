//! The `jsonl` export: the selected journal lines, unchanged, in time order.

use super::{ExportError, Progress, Selected};
use std::io::Write;
use std::path::Path;

/// Write `export.jsonl` into `out`.
pub fn write(
    selected: &Selected,
    out: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<String>, ExportError> {
    let path = out.join("export.jsonl");
    let f = std::fs::File::create(&path).map_err(|e| ExportError::write(&path, e))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    let total = selected.records.len();
    for (i, e) in selected.records.iter().enumerate() {
        w.write_all(e.line.as_bytes())
            .and_then(|_| w.write_all(b"\n"))
            .map_err(|e| ExportError::write(&path, e))?;
        if (i + 1) % 100_000 == 0 {
            progress(Progress::Written { done: i + 1, total });
        }
    }
    w.flush().map_err(|e| ExportError::write(&path, e))?;
    progress(Progress::Written { done: total, total });
    Ok(vec!["export.jsonl".into()])
}
