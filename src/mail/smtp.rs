//! The SMTP transport: delivers each mail to the configured relay over plain SMTP,
//! STARTTLS (required, never opportunistic) or implicit TLS, with AUTH PLAIN/LOGIN when
//! a user name is configured, and classifies every failure (see [`super::error`]).
//!
//! lettre's connection is driven step by step rather than through its transport, so a
//! failure is known to come either from *setting up* the session (connecting, the
//! greeting, EHLO, STARTTLS, TLS, AUTH: always temporary — the relay or the site's
//! configuration, never the mail) or from the *transaction* for one mail (`MAIL FROM`,
//! `RCPT TO`, `DATA`: a 5xx answer there is the relay's final verdict on the mail).
//! Each of the two stages is bounded by `smtp_timeout_secs`.
//!
//! A session that delivered a mail is kept for the next one (a few, for at most a
//! minute, checked with `NOOP` before reuse), so a batch of invitations does not pay a
//! TCP and TLS handshake per mail.

use super::SendError;
use crate::config::{MailConfig, SmtpSecurity};
use lettre::address::Envelope;
use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, Certificate, CertificateStore, TlsParameters,
};
use lettre::transport::smtp::extension::ClientId;
use std::error::Error as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Idle sessions kept for reuse.
const MAX_IDLE: usize = 4;
/// How long an idle session is kept (relays close idle clients after 5 minutes or less).
const IDLE_FOR: Duration = Duration::from_secs(60);
/// SMTP reply codes that mean "authenticate (properly)": the site's configuration.
const AUTH_CODES: [u16; 4] = [530, 534, 535, 538];

/// Why the SMTP transport could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SmtpSetupError {
    #[error("mail.smtp_ca_file: cannot read {path}: {source}")]
    CaFileRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("mail.smtp_ca_file: {path} holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\")")]
    CaFileEmpty { path: PathBuf },
    #[error("mail.smtp_ca_file: {path} is not valid PEM: {reason}")]
    CaFileInvalid { path: PathBuf, reason: String },
    #[error("cannot set up TLS for the mail relay {host}: {reason}")]
    Tls { host: String, reason: String },
}

/// The steps of setting up a session, for messages.
#[derive(Debug, Clone, Copy)]
enum Step {
    Connect,
    Starttls,
    Auth,
}

/// An SMTP relay and the sessions kept open to it.
pub(super) struct Smtp {
    host: String,
    port: u16,
    security: SmtpSecurity,
    tls: Option<TlsParameters>,
    hello: ClientId,
    username: String,
    credentials: Option<Credentials>,
    timeout: Duration,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
}

impl Smtp {
    pub(super) fn new(config: &MailConfig) -> Result<Smtp, SmtpSetupError> {
        let host = config
            .smtp_host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let tls = match config.smtp_security {
            SmtpSecurity::None => None,
            SmtpSecurity::Starttls | SmtpSecurity::Tls => {
                Some(tls_parameters(&host, &config.smtp_ca_file)?)
            }
        };
        let credentials = (!config.smtp_username.is_empty()).then(|| {
            Credentials::new(
                config.smtp_username.clone(),
                config.smtp_password.expose().to_string(),
            )
        });
        Ok(Smtp {
            host,
            port: config.smtp_port(),
            security: config.smtp_security,
            tls,
            hello: hello_name(&config.smtp_hello_name),
            username: config.smtp_username.clone(),
            credentials,
            timeout: Duration::from_secs(config.smtp_timeout_secs),
            idle: Mutex::new(Vec::new()),
        })
    }

    /// `host:port` as people write it (`[::1]:25` for IPv6).
    pub(super) fn address(&self) -> String {
        match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(ip)) => format!("[{ip}]:{}", self.port),
            _ => format!("{}:{}", self.host, self.port),
        }
    }

    pub(super) fn security(&self) -> SmtpSecurity {
        self.security
    }

    /// Delivers one mail.
    pub(super) async fn send(&self, envelope: &Envelope, message: &[u8]) -> Result<(), SendError> {
        let mut conn = match self.reuse().await {
            Some(conn) => conn,
            None => self.connect().await?,
        };
        match tokio::time::timeout(self.timeout, conn.send(envelope, message)).await {
            Ok(Ok(_accepted)) => {
                self.keep(conn);
                Ok(())
            }
            Ok(Err(e)) => {
                if !conn.has_broken() {
                    self.keep(conn);
                }
                Err(self.transaction_error(&e))
            }
            // The session is in an unknown state: drop it without a word.
            Err(_) => Err(SendError::temporary(format!(
                "no answer from {} within {} s while sending the mail",
                self.address(),
                self.timeout.as_secs()
            ))),
        }
    }

    /// Says goodbye (`QUIT`) on the sessions kept for reuse.
    pub(super) async fn close_idle(&self) {
        let idle: Vec<_> = std::mem::take(&mut *self.lock_idle());
        for (mut conn, _) in idle {
            let _ = tokio::time::timeout(self.timeout, conn.quit()).await;
        }
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<(AsyncSmtpConnection, Instant)>> {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A kept session that still answers, if any.
    async fn reuse(&self) -> Option<AsyncSmtpConnection> {
        loop {
            let (mut conn, since) = self.lock_idle().pop()?;
            if since.elapsed() < IDLE_FOR
                && tokio::time::timeout(self.timeout, conn.test_connected())
                    .await
                    .unwrap_or(false)
            {
                return Some(conn);
            }
            // Stale or gone; dropping it closes the socket.
        }
    }

    fn keep(&self, conn: AsyncSmtpConnection) {
        let mut idle = self.lock_idle();
        if idle.len() < MAX_IDLE {
            idle.push((conn, Instant::now()));
        }
    }

    /// A new session: connected, greeted, encrypted and authenticated as configured.
    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let setup = async {
            let implicit = match self.security {
                SmtpSecurity::Tls => self.tls.clone(),
                _ => None,
            };
            let mut conn = match implicit {
                Some(tls) => AsyncSmtpConnection::connect_tokio1(
                    (self.host.as_str(), self.port),
                    Some(self.timeout),
                    &self.hello,
                    Some(tls),
                    None,
                )
                .await
                .map_err(|e| Connecting::Smtp(Step::Connect, e))?,
                None => {
                    // Our own socket, with TCP_NODELAY: lettre writes a mail's body and
                    // its final "." in two writes, and with Nagle's algorithm the second
                    // waits for the relay's delayed ACK (~40 ms a mail, 22 mails/s).
                    let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
                        .await
                        .map_err(Connecting::Io)?;
                    let _ = tcp.set_nodelay(true);
                    AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello)
                        .await
                        .map_err(|e| Connecting::Smtp(Step::Connect, e))?
                }
            };
            if let (SmtpSecurity::Starttls, Some(tls)) = (self.security, &self.tls) {
                conn.starttls(tls.clone(), &self.hello)
                    .await
                    .map_err(|e| Connecting::Smtp(Step::Starttls, e))?;
            }
            if let Some(credentials) = &self.credentials {
                conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                    .await
                    .map_err(|e| Connecting::Smtp(Step::Auth, e))?;
            }
            Ok(conn)
        };
        match tokio::time::timeout(self.timeout, setup).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(Connecting::Smtp(step, e))) => Err(self.setup_error(step, &e)),
            Ok(Err(Connecting::Io(e))) => Err(SendError::temporary(io_message(
                &e,
                &self.address(),
                "connecting",
            ))),
            Err(_) => Err(SendError::temporary(format!(
                "no answer from {} within {} s while connecting",
                self.address(),
                self.timeout.as_secs()
            ))),
        }
    }

    /// A failure setting up the session: always temporary.
    fn setup_error(&self, step: Step, e: &SmtpError) -> SendError {
        let address = self.address();
        let message = if let Some(answer) = answer(e) {
            match step {
                Step::Connect => format!("{answer} (from {address}, on connecting)"),
                Step::Starttls => format!("{answer} (from {address}, answering STARTTLS)"),
                Step::Auth => format!(
                    "{answer} (from {address}, authenticating as {:?})",
                    self.username
                ),
            }
        } else if let Some(io) = io_error(e) {
            io_message(io, &address, "connecting")
        } else if e.is_client() {
            match step {
                Step::Starttls => format!(
                    "{address} does not offer STARTTLS, which mail.smtp_security = \"starttls\" requires"
                ),
                Step::Auth => format!(
                    "{address} offers no AUTH mechanism outpost can use (PLAIN or LOGIN){}",
                    if self.security == SmtpSecurity::None {
                        "; many relays offer AUTH only over TLS"
                    } else {
                        ""
                    }
                ),
                Step::Connect => format!("cannot talk to {address}: {}", chain(e)),
            }
        } else {
            format!("cannot talk to {address}: {}", chain(e))
        };
        SendError::temporary(message)
    }

    /// A failure of the transaction for one mail: 5xx is permanent (but for AUTH codes).
    fn transaction_error(&self, e: &SmtpError) -> SendError {
        let address = self.address();
        if let (Some(code), Some(answer)) = (e.status(), answer(e)) {
            let code = u16::from(code);
            return if e.is_permanent() && !AUTH_CODES.contains(&code) {
                SendError::permanent(answer)
            } else {
                SendError::temporary(answer)
            };
        }
        if let Some(io) = io_error(e) {
            return SendError::temporary(io_message(io, &address, "sending the mail"));
        }
        if e.is_client() {
            // lettre refuses before sending: non-ASCII addresses without SMTPUTF8, or an
            // 8-bit message without 8BITMIME. This relay will never take the mail.
            return SendError::permanent(format!("{address} cannot take this mail: {}", chain(e)));
        }
        SendError::temporary(format!(
            "cannot talk to {address} while sending the mail: {}",
            chain(e)
        ))
    }
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp")
            .field("address", &self.address())
            .field("security", &self.security)
            .field("username", &self.username)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The server's answer in an error, as `550 5.1.1 no such user`.
fn answer(e: &SmtpError) -> Option<String> {
    let code = e.status()?;
    let text = e.source().map(|s| s.to_string()).unwrap_or_default();
    Some(format!("{code} {text}").trim_end().to_string())
}

/// The I/O error under a lettre error, if any.
fn io_error(e: &SmtpError) -> Option<&std::io::Error> {
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        source = s.source();
    }
    None
}

/// How setting up a session failed.
enum Connecting {
    Io(std::io::Error),
    Smtp(Step, SmtpError),
}

/// A sentence for an I/O error talking to `address` while `doing`.
fn io_message(io: &std::io::Error, address: &str, doing: &str) -> String {
    use std::io::ErrorKind;
    if let Some(tls) = io
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        let hint = if matches!(
            tls,
            rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)
        ) {
            " (the relay does not speak TLS on this port: implicit TLS is usually port 465, \
             STARTTLS port 587)"
        } else {
            ""
        };
        return format!("TLS with {address} failed: {tls}{hint}");
    }
    match io.kind() {
        ErrorKind::ConnectionRefused => format!("connection refused to {address}"),
        ErrorKind::TimedOut => format!("timed out {doing} to {address}"),
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe => {
            format!("{address} closed the connection while {doing} ({io})")
        }
        ErrorKind::UnexpectedEof => format!("{address} closed the connection while {doing}"),
        _ => format!("cannot reach {address} ({doing}): {io}"),
    }
}

/// Every message in the error's chain, joined by `: ` (lettre's own label left out).
fn chain(e: &SmtpError) -> String {
    let mut parts = Vec::new();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p: &String| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    if parts.is_empty() {
        e.to_string()
    } else {
        parts.join(": ")
    }
}

/// The EHLO name: the configured one, or this machine's host name.
fn hello_name(configured: &str) -> ClientId {
    let bare = configured.trim_start_matches('[').trim_end_matches(']');
    if configured.is_empty() {
        return ClientId::default();
    }
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ClientId::Ipv4(ip),
        Ok(IpAddr::V6(ip)) => ClientId::Ipv6(ip),
        Err(_) => ClientId::Domain(configured.to_string()),
    }
}

/// TLS settings for `host`: the system's roots, or only the CA(s) in `ca_file`.
fn tls_parameters(host: &str, ca_file: &Path) -> Result<TlsParameters, SmtpSetupError> {
    let mut builder = TlsParameters::builder(host.to_string());
    if !ca_file.as_os_str().is_empty() {
        let pem = std::fs::read(ca_file).map_err(|source| SmtpSetupError::CaFileRead {
            path: ca_file.to_path_buf(),
            source,
        })?;
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SmtpSetupError::CaFileInvalid {
                path: ca_file.to_path_buf(),
                reason: e.to_string(),
            })?;
        if certs.is_empty() {
            return Err(SmtpSetupError::CaFileEmpty {
                path: ca_file.to_path_buf(),
            });
        }
        builder = builder.certificate_store(CertificateStore::None);
        for der in certs {
            let cert =
                Certificate::from_der(der.to_vec()).map_err(|e| SmtpSetupError::CaFileInvalid {
                    path: ca_file.to_path_buf(),
                    reason: e.to_string(),
                })?;
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| SmtpSetupError::Tls {
        host: host.to_string(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_names() {
        assert_eq!(
            hello_name("outpost.example.org").to_string(),
            "outpost.example.org"
        );
        assert_eq!(hello_name("192.0.2.1").to_string(), "[192.0.2.1]");
        assert_eq!(hello_name("[::1]").to_string(), "[IPv6:::1]");
        assert_eq!(hello_name("").to_string(), ClientId::default().to_string());
    }

    #[test]
    fn a_bad_ca_file_is_refused_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = tls_parameters("127.0.0.1", &missing)
            .err()
            .expect("refused")
            .to_string();
        assert!(
            e.contains("mail.smtp_ca_file") && e.contains("missing.pem"),
            "{e}"
        );
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        let e = tls_parameters("127.0.0.1", &empty)
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains("holds no PEM certificate"), "{e}");
    }

    #[test]
    fn addresses_are_written_as_people_do() {
        let mut c = MailConfig {
            smtp_host: "[::1]".into(),
            smtp_port: 2525,
            smtp_security: SmtpSecurity::None,
            ..MailConfig::default()
        };
        assert_eq!(Smtp::new(&c).unwrap().address(), "[::1]:2525");
        c.smtp_host = "smtp.example.org".into();
        c.smtp_port = 0;
        c.smtp_security = SmtpSecurity::Tls;
        let s = Smtp::new(&c).unwrap();
        assert_eq!(s.address(), "smtp.example.org:465");
        let debug = format!("{s:?}");
        assert!(debug.contains("smtp.example.org:465"), "{debug}");
    }

    #[test]
    fn the_password_never_shows() {
        let c = MailConfig {
            smtp_username: "outpost".into(),
            smtp_password: crate::config::Secret::new("hunter2-relay"),
            ..MailConfig::default()
        };
        let s = Smtp::new(&c).unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
