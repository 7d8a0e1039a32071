//! The local SMTP server the mail benchmarks deliver to: the test suite's
//! `tests/support/smtp_sink.py` (aiosmtpd, installed by `scripts/test-deps` into
//! `$OUTPOST_TEST_DEPS/venv`, default `<repo>/.test-deps/venv`), plain SMTP on a free
//! port of 127.0.0.1, writing every accepted mail as one file (`0001.eml`, …) into a
//! temporary folder; counting, reading and stopping it.

use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long the sink may take to say "ready PORT".
const READY_WITHIN: Duration = Duration::from_secs(30);

/// The script, in the repository the benchmark was built from.
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_sink.py");

/// The virtualenv's Python, or an error that says how to install it.
pub fn python() -> Result<PathBuf> {
    let deps = std::env::var_os("OUTPOST_TEST_DEPS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.test-deps")));
    let python = deps.join("venv/bin/python");
    if !python.is_file() {
        bail!(
            "{} is missing: run scripts/test-deps, which installs aiosmtpd there \
             (or set OUTPOST_TEST_DEPS to where it is installed)",
            python.display()
        );
    }
    Ok(python)
}

/// A running `smtp_sink.py`, killed if dropped before [`SmtpSink::stop`].
pub struct SmtpSink {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    /// Starts the sink on a free port and waits until it accepts connections.
    pub fn start() -> Result<SmtpSink> {
        let dir = tempfile::Builder::new()
            .prefix("outpost-bench-smtp-sink-")
            .tempdir()
            .context("cannot create a folder for the SMTP sink")?;
        let log_path = dir.path().join("sink.log");
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("cannot create {}", log_path.display()))?;
        let python = python()?;
        let mail_dir = dir.path().join("mail");
        let mut child = Command::new(&python)
            .arg(SCRIPT)
            .arg("0")
            .arg(&mail_dir)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot run {} {SCRIPT}", python.display()))?;
        let stdout = child.stdout.take().context("the sink's stdout is piped")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(READY_WITHIN).unwrap_or_default();
        let mut sink = SmtpSink {
            child: Some(child),
            port: 0,
            dir,
        };
        match line
            .strip_prefix("ready ")
            .and_then(|p| p.trim().parse::<u16>().ok())
        {
            Some(port) => sink.port = port,
            None => bail!(
                "the SMTP sink did not say \"ready PORT\" within {} s (said {line:?}); its log:\n{}",
                READY_WITHIN.as_secs(),
                sink.log()
            ),
        }
        Ok(sink)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// The folder the mails land in.
    pub fn mail_dir(&self) -> PathBuf {
        self.dir.path().join("mail")
    }

    /// The mails received so far (complete `NNNN.eml` files), in arrival order.
    pub fn files(&self) -> Result<Vec<PathBuf>> {
        let dir = self.mail_dir();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .with_context(|| format!("cannot list {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| is_mail(p))
            .collect();
        // 0001.eml … 9999.eml, 10000.eml: by number, not by name.
        files.sort_by_key(|p| mail_number(p));
        Ok(files)
    }

    /// How many mails have arrived (complete files; a mail being written is a dot-file).
    pub fn count(&self) -> Result<usize> {
        let dir = self.mail_dir();
        Ok(std::fs::read_dir(&dir)
            .with_context(|| format!("cannot list {}", dir.display()))?
            .filter_map(|e| e.ok())
            .filter(|e| is_mail(&e.path()))
            .count())
    }

    /// What the sink wrote to stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sink.log")).unwrap_or_default()
    }

    /// SIGTERM, then wait (the sink stops within milliseconds; killed after 5 s).
    pub fn stop(mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        // SAFETY: kill(2) on our own child, not yet waited for, so the pid is still ours.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(status) = child.try_wait().context("cannot wait for the SMTP sink")? {
                if !status.success() {
                    bail!(
                        "the SMTP sink exited with {status}; its log:\n{}",
                        self.log()
                    );
                }
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the SMTP sink did not stop within 5 s of SIGTERM (killed)");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `NNNN.eml`, not the sink's `.NNNN.eml.tmp` of a mail being written.
fn is_mail(p: &Path) -> bool {
    p.extension().is_some_and(|x| x == "eml")
        && !p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

fn mail_number(p: &Path) -> u64 {
    p.file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse().ok())
        .unwrap_or(u64::MAX)
}

/// The value of header `name` (case-insensitive, unfolded) in a raw mail's header block.
pub fn header(raw: &str, name: &str) -> Option<String> {
    let mut value: Option<String> = None;
    for line in raw.split("\r\n").flat_map(|l| l.split('\n')) {
        if line.is_empty() {
            break;
        }
        if let Some(v) = value.as_mut() {
            if line.starts_with([' ', '\t']) {
                v.push(' ');
                v.push_str(line.trim());
                continue;
            }
            return value;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case(name)
        {
            value = Some(v.trim().to_string());
        }
    }
    value
}
