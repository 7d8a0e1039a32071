//! A real SMTP server for tests: `tests/support/smtp_sink.py` (aiosmtpd, installed by
//! `scripts/test-deps` into `$OUTPOST_TEST_DEPS/venv`) on a free loopback port, writing
//! what it receives into a temporary folder.
//!
//! `SmtpSink::start()` is plain SMTP; `SmtpSink::builder()` adds STARTTLS or implicit
//! TLS (with a CA and server certificate made here, see [`SmtpSink::ca_file`]), AUTH,
//! a refused recipient, temporary failures or a slow answer. [`SmtpSink::messages`]
//! returns the mails received so far as raw `.eml` texts, each preceded by the sink's
//! `X-MailFrom`, `X-RcptTo` and `X-Peer` (client address and port) lines. [`SmtpSink::stop`] and [`SmtpSink::restart`] take
//! the server down and bring it back on the same port; dropping the sink kills it.
//! [`SmtpSink::mail_config`] and [`SmtpSink::outpost_env`] point outpost at it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use outpost::config::{MailConfig, MailTransport, Secret, SmtpSecurity};

/// How long the sink may take to say it is ready.
const READY_WITHIN: Duration = Duration::from_secs(15);

/// The virtualenv's Python, or a failure that says how to install it.
pub fn python() -> PathBuf {
    let deps = std::env::var("OUTPOST_TEST_DEPS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.test-deps")));
    let python = deps.join("venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run scripts/test-deps (the README's test command does), which \
         installs aiosmtpd there",
        python.display()
    );
    python
}

/// A CA and a server certificate for `127.0.0.1` and `localhost` signed by it, as PEM files.
pub struct Certificates {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Makes [`Certificates`] in `dir`.
pub fn certificates(dir: &Path) -> Certificates {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "outpost mail test CA");
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca, &ca_key);
    let key = KeyPair::generate().expect("server key");
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("server parameters")
        .signed_by(&key, &issuer)
        .expect("server certificate");
    let out = Certificates {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    std::fs::write(&out.ca, ca_cert.pem()).expect("write ca.pem");
    std::fs::write(&out.cert, cert.pem()).expect("write cert.pem");
    std::fs::write(&out.key, key.serialize_pem()).expect("write key.pem");
    out
}

/// What the sink does besides accepting mail.
#[derive(Default)]
pub struct SinkBuilder {
    security: Option<SmtpSecurity>,
    auth: Option<(String, String)>,
    reject_rcpt: Option<String>,
    tempfail: u32,
    delay: Option<Duration>,
}

impl SinkBuilder {
    /// Require STARTTLS (certificate from [`SmtpSink::ca_file`]'s CA).
    pub fn starttls(mut self) -> Self {
        self.security = Some(SmtpSecurity::Starttls);
        self
    }

    /// TLS from the first byte (SMTPS).
    pub fn smtps(mut self) -> Self {
        self.security = Some(SmtpSecurity::Tls);
        self
    }

    /// Require AUTH; only `user` with `password` succeeds.
    pub fn auth(mut self, user: &str, password: &str) -> Self {
        self.auth = Some((user.into(), password.into()));
        self
    }

    /// Answer `550 5.1.1` to `RCPT TO:<address>`.
    pub fn reject_rcpt(mut self, address: &str) -> Self {
        self.reject_rcpt = Some(address.into());
        self
    }

    /// Answer `451 4.3.0` to the first `n` messages.
    pub fn tempfail(mut self, n: u32) -> Self {
        self.tempfail = n;
        self
    }

    /// Wait this long before answering each message.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    pub fn start(self) -> SmtpSink {
        let dir = tempfile::Builder::new()
            .prefix("outpost-smtp-sink-")
            .tempdir()
            .expect("temporary folder");
        let security = self.security.unwrap_or(SmtpSecurity::None);
        let mut args = Vec::new();
        let mut ca = None;
        if security != SmtpSecurity::None {
            let certs = certificates(dir.path());
            args.extend([
                "--cert".to_string(),
                certs.cert.display().to_string(),
                "--key".to_string(),
                certs.key.display().to_string(),
            ]);
            if security == SmtpSecurity::Tls {
                args.push("--smtps".into());
            }
            ca = Some(certs.ca);
        }
        if let Some((user, password)) = &self.auth {
            args.extend(["--auth".to_string(), format!("{user}:{password}")]);
        }
        if let Some(address) = &self.reject_rcpt {
            args.extend(["--reject-rcpt".to_string(), address.clone()]);
        }
        if self.tempfail > 0 {
            args.extend(["--tempfail".to_string(), self.tempfail.to_string()]);
        }
        if let Some(delay) = self.delay {
            args.extend(["--delay".to_string(), delay.as_secs_f64().to_string()]);
        }
        let mut sink = SmtpSink {
            child: None,
            port: 0,
            dir,
            args,
            security,
            ca,
            auth: self.auth,
        };
        sink.spawn();
        sink
    }
}

/// A running `smtp_sink.py`.
pub struct SmtpSink {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    args: Vec<String>,
    security: SmtpSecurity,
    ca: Option<PathBuf>,
    auth: Option<(String, String)>,
}

impl SmtpSink {
    /// Plain SMTP, every mail accepted.
    pub fn start() -> SmtpSink {
        SmtpSink::builder().start()
    }

    pub fn builder() -> SinkBuilder {
        SinkBuilder::default()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `none`, `starttls` or `tls`, as outpost's `mail.smtp_security` must be.
    pub fn security(&self) -> SmtpSecurity {
        self.security
    }

    /// The CA that signed the sink's certificate (with STARTTLS or SMTPS).
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca.as_deref()
    }

    /// The folder the mails land in.
    pub fn mail_dir(&self) -> PathBuf {
        self.dir.path().join("mail")
    }

    /// The raw mails received so far, oldest first.
    pub fn messages(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.mail_dir()) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|x| x == "eml")
                    && !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| String::from_utf8_lossy(&std::fs::read(p).expect("read a mail")).into_owned())
            .collect()
    }

    /// Waits (up to `timeout`) until at least `n` mails arrived; returns them all.
    pub fn wait_for_messages(&self, n: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.messages();
            if got.len() >= n || Instant::now() >= deadline {
                assert!(
                    got.len() >= n,
                    "{} of {n} mails arrived within {timeout:?}; sink log:\n{}",
                    got.len(),
                    self.log()
                );
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What the sink wrote to stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sink.log")).unwrap_or_default()
    }

    /// Takes the server down (SIGTERM, then waits); connections are refused until
    /// [`SmtpSink::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: signalling our own child, whose pid is still ours (not yet waited for).
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while child.try_wait().ok().flatten().is_none() {
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// Starts the server again on the same port with the same options (mails so far stay).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// A `[mail]` configuration that sends to this sink (trusting its CA, with its AUTH
    /// user), with a 10-second timeout.
    pub fn mail_config(&self) -> MailConfig {
        let mut c = MailConfig {
            transport: MailTransport::Smtp,
            from: "Outpost <outpost@example.test>".into(),
            smtp_host: "127.0.0.1".into(),
            smtp_port: self.port,
            smtp_security: self.security,
            smtp_timeout_secs: 10,
            smtp_hello_name: "outpost.test".into(),
            ..MailConfig::default()
        };
        if let Some(ca) = &self.ca {
            c.smtp_ca_file = ca.clone();
        }
        if let Some((user, password)) = &self.auth {
            c.smtp_username = user.clone();
            c.smtp_password = Secret::new(password.clone());
        }
        c
    }

    /// The `OUTPOST_MAIL_*` variables for a server that sends to this sink.
    pub fn outpost_env(&self) -> Vec<(String, String)> {
        let c = self.mail_config();
        let security = match c.smtp_security {
            SmtpSecurity::None => "none",
            SmtpSecurity::Starttls => "starttls",
            SmtpSecurity::Tls => "tls",
        };
        let mut env = vec![
            ("OUTPOST_MAIL_TRANSPORT", "smtp".to_string()),
            ("OUTPOST_MAIL_FROM", c.from.clone()),
            ("OUTPOST_MAIL_SMTP_HOST", c.smtp_host.clone()),
            ("OUTPOST_MAIL_SMTP_PORT", c.smtp_port.to_string()),
            ("OUTPOST_MAIL_SMTP_SECURITY", security.to_string()),
            (
                "OUTPOST_MAIL_SMTP_TIMEOUT_SECS",
                c.smtp_timeout_secs.to_string(),
            ),
            (
                "OUTPOST_MAIL_SMTP_CA_FILE",
                c.smtp_ca_file.display().to_string(),
            ),
            ("OUTPOST_MAIL_SMTP_USERNAME", c.smtp_username.clone()),
            (
                "OUTPOST_MAIL_SMTP_PASSWORD",
                c.smtp_password.expose().to_string(),
            ),
        ];
        env.retain(|(_, v)| !v.is_empty());
        env.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    /// Starts the script on `self.port` (0 the first time: it picks one and says which).
    fn spawn(&mut self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_sink.py");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("sink.log"))
            .expect("sink log");
        let mut child = Command::new(python())
            .arg(script)
            .arg(self.port.to_string())
            .arg(self.mail_dir())
            .args(&self.args)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start tests/support/smtp_sink.py");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(READY_WITHIN).unwrap_or_default();
        let port = line
            .strip_prefix("ready ")
            .and_then(|p| p.trim().parse::<u16>().ok());
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the SMTP sink did not get ready within {READY_WITHIN:?} (said {line:?}); its log:\n{}",
                self.log()
            );
        };
        self.port = port;
        self.child = Some(child);
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
