//! Commands that work on this machine's configuration and data folder directly.

use super::Local;
use crate::audit::{self, AuditEvent};
use crate::store::{self, DataDirLock, Store};
use anyhow::{Context, Result, bail};
use std::io::BufRead;
use std::path::Path;

pub fn config_check(local: &Local) -> Result<i32> {
    let c = local.load()?;
    let origin = match &local.config {
        Some(p) => format!("{} (with OUTPOST_* overrides)", p.display()),
        None => "embedded defaults (with OUTPOST_* overrides)".into(),
    };
    println!("# configuration is valid: {origin}");
    print!("{}", c.to_redacted_toml());
    Ok(0)
}

fn open_stopped(local_dir: &Path) -> Result<(DataDirLock, Store)> {
    if !local_dir.is_dir() {
        bail!("there is no data folder {}", local_dir.display());
    }
    let lock = DataDirLock::acquire(local_dir)?;
    let db = local_dir.join(store::DB_FILE);
    if !db.is_file() {
        bail!(
            "there is no store in {} (no {})",
            local_dir.display(),
            store::DB_FILE
        );
    }
    let ok = Store::check_file(&db).map_err(|e| anyhow::anyhow!("{}", e.message))?;
    if !ok {
        bail!(
            "the database file {} fails redb's integrity check",
            db.display()
        );
    }
    let s = Store::open_unmigrated(&db, &Default::default())
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    Ok((lock, s))
}

pub fn store_check(local: &Local) -> Result<i32> {
    let c = local.load()?;
    let (_lock, s) = open_stopped(&c.data_dir)?;
    println!("database file: ok ({} bytes)", s.file_size());
    let problems = s
        .read(|tx| {
            let mut p = crate::directory::check(tx)?;
            p.extend(crate::auth::sso::config::check(tx)?);
            Ok(p)
        })
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let report = s
        .read(|tx| audit::verify(tx))
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    s.close();
    if problems.is_empty() {
        println!("directory: ok (indexes and counters match the records)");
    } else {
        for p in &problems {
            println!("directory: PROBLEM: {p}");
        }
    }
    print_report(&report);
    Ok(if problems.is_empty() && report.ok {
        0
    } else {
        1
    })
}

pub fn restore(file: &Path, local: &Local) -> Result<i32> {
    let c = local.load()?;
    let _lock = DataDirLock::acquire(&c.data_dir).context(
        "restore needs the server stopped (systemctl stop outpost) so it can replace the store",
    )?;
    let r =
        store::restore_archive(file, &c.data_dir).map_err(|e| anyhow::anyhow!("{}", e.message))?;
    println!(
        "restored the backup of {} (outpost {}, schema {}, {} records) into {}",
        r.manifest.created_at.to_rfc3339(),
        r.manifest.outpost_version,
        r.manifest.schema_version,
        r.manifest.records,
        c.data_dir.display()
    );
    if let Some(prev) = r.previous_store {
        println!("the replaced store was kept as {}", prev.display());
    }
    Ok(0)
}

pub fn print_report(r: &audit::VerifyReport) {
    match (&r.problem, r.ok) {
        (None, true) => println!(
            "audit log: ok — {} events, chain intact{}",
            r.events,
            r.last_seq
                .map(|s| format!(" through event {s} (head {})", &r.head_hash[..16]))
                .unwrap_or_default()
        ),
        (Some(p), _) => println!(
            "audit log: BROKEN at event {} ({}): {} ({} events verified before it)",
            p.seq, p.kind, p.message, r.events
        ),
        (None, false) => println!("audit log: BROKEN"),
    }
}

pub fn verify_audit_store(dir: &Path) -> Result<i32> {
    let (_lock, s) = open_stopped(dir)?;
    let r = s
        .read(|tx| audit::verify(tx))
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    s.close();
    print_report(&r);
    Ok(if r.ok { 0 } else { 1 })
}

pub fn verify_audit_file(file: &Path) -> Result<i32> {
    let f = std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let mut events = Vec::new();
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", file.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        events.push(serde_json::from_str::<AuditEvent>(&line).map_err(|e| {
            (
                i as u64 + 1,
                format!("line {} is not an audit event: {e}", i + 1),
            )
        }));
    }
    let starts_at_genesis = matches!(events.first(), Some(Ok(e)) if e.seq == 1);
    let anchor = starts_at_genesis.then_some(audit::GENESIS);
    let r = audit::verify_events(events, anchor);
    print_report(&r);
    if !starts_at_genesis && r.ok {
        println!(
            "(the file starts at event {}, so the link before it was not checked)",
            r.first_seq.unwrap_or(0)
        );
    }
    Ok(if r.ok { 0 } else { 1 })
}
