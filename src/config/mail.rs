//! The `[mail]` section: how the appliance sends mail (invitations, password resets,
//! device approvals) — through an SMTP relay, the local `sendmail`, a pickup folder of
//! `.eml` files, or not at all — and how the outbox retries; with its validation.
//!
//! The transports themselves are in [`crate::mail`].

use super::{ConfigError, Secret};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Which way mail leaves the appliance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    /// No mail is sent; invitations show their links to the administrator instead.
    None,
    /// An SMTP relay (`smtp_*` keys).
    Smtp,
    /// The local mail system's `sendmail` command (`sendmail_command`).
    Sendmail,
    /// One `.eml` file per mail in a folder another process collects (`pickup_dir`).
    Pickup,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain SMTP, no encryption (a relay on the same host or a trusted link only).
    None,
    /// Plain connection upgraded with STARTTLS, which is required (RFC 3207).
    Starttls,
    /// TLS from the first byte ("implicit TLS", SMTPS, RFC 8314).
    Tls,
}

impl SmtpSecurity {
    /// The port used when `smtp_port` is 0: 25, 587 or 465.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpSecurity::None => 25,
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
        }
    }
}

/// Outgoing mail.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    /// `none`, `smtp`, `sendmail` or `pickup`.
    pub transport: MailTransport,
    /// Sender of every mail: `address` or `Name <address>`.
    pub from: String,
    /// SMTP relay host name or address.
    pub smtp_host: String,
    /// SMTP relay port; 0 = the security mode's port (25, 587 or 465).
    pub smtp_port: u16,
    /// `none`, `starttls` or `tls`.
    pub smtp_security: SmtpSecurity,
    /// User name for SMTP AUTH; empty = no authentication.
    pub smtp_username: String,
    /// Password for SMTP AUTH.
    pub smtp_password: Secret,
    /// PEM file of the CA(s) that sign the relay's certificate; empty = the system's roots.
    pub smtp_ca_file: PathBuf,
    /// Seconds each step of an SMTP exchange (connecting, sending one mail) may take; it
    /// also bounds one `sendmail` run.
    pub smtp_timeout_secs: u64,
    /// Name sent in EHLO; empty = this machine's host name.
    pub smtp_hello_name: String,
    /// The sendmail program (absolute path), run as `COMMAND -i -f FROM -- TO`.
    pub sendmail_command: PathBuf,
    /// Folder the `pickup` transport writes `.eml` files to; empty = `<data_dir>/mail/pickup`.
    pub pickup_dir: PathBuf,
    /// Seconds before the first retry of a temporary failure (doubling each time).
    pub retry_initial_secs: u64,
    /// Longest wait between two retries, in seconds.
    pub retry_max_secs: u64,
    /// Attempts after which a mail is `failed`.
    pub max_attempts: u32,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            transport: MailTransport::None,
            from: "outpost@localhost".into(),
            smtp_host: "127.0.0.1".into(),
            smtp_port: 0,
            smtp_security: SmtpSecurity::Starttls,
            smtp_username: String::new(),
            smtp_password: Secret::default(),
            smtp_ca_file: PathBuf::new(),
            smtp_timeout_secs: 30,
            smtp_hello_name: String::new(),
            sendmail_command: PathBuf::from("/usr/sbin/sendmail"),
            pickup_dir: PathBuf::new(),
            retry_initial_secs: 30,
            retry_max_secs: 3600,
            max_attempts: 20,
        }
    }
}

impl MailConfig {
    /// The SMTP port actually used (`smtp_port`, or the security mode's default).
    pub fn smtp_port(&self) -> u16 {
        if self.smtp_port == 0 {
            self.smtp_security.default_port()
        } else {
            self.smtp_port
        }
    }

    /// The pickup folder actually used (`pickup_dir`, or `<data_dir>/mail/pickup`).
    pub fn pickup_dir(&self, data_dir: &Path) -> PathBuf {
        if self.pickup_dir.as_os_str().is_empty() {
            data_dir.join("mail").join("pickup")
        } else {
            self.pickup_dir.clone()
        }
    }

    /// Whether `smtp_host` names this machine (where a password in clear stays local).
    fn smtp_host_is_loopback(&self) -> bool {
        let host = self.smtp_host.trim_start_matches('[').trim_end_matches(']');
        host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// The `[mail]` rules serde cannot express; errors name the key.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad =
            |key: &str, msg: &str| Err(ConfigError::invalid(key.to_string(), msg.to_string()));
        if let Err(e) = self.from.parse::<lettre::message::Mailbox>() {
            return bad(
                "mail.from",
                &format!(
                    "{:?} is not a mail address ({e}); write \"outpost@example.org\" or \
                     \"Outpost <outpost@example.org>\"",
                    self.from
                ),
            );
        }
        if !is_host(&self.smtp_host) {
            return bad(
                "mail.smtp_host",
                &format!("{:?} is not a host name or IP address", self.smtp_host),
            );
        }
        if !self.smtp_hello_name.is_empty() && !is_host(&self.smtp_hello_name) {
            return bad(
                "mail.smtp_hello_name",
                &format!(
                    "{:?} is not a host name or IP address (or empty for this machine's name)",
                    self.smtp_hello_name
                ),
            );
        }
        if !(1..=600).contains(&self.smtp_timeout_secs) {
            return bad("mail.smtp_timeout_secs", "must be between 1 and 600");
        }
        if self.smtp_username.is_empty() && !self.smtp_password.is_empty() {
            return bad(
                "mail.smtp_password",
                "is set but mail.smtp_username is empty: set both for SMTP AUTH, or neither",
            );
        }
        if !self.smtp_username.is_empty() && self.smtp_password.is_empty() {
            return bad(
                "mail.smtp_password",
                "must be set when mail.smtp_username is (SMTP AUTH needs both)",
            );
        }
        if self.smtp_username.contains(['\r', '\n']) {
            return bad("mail.smtp_username", "must be on one line");
        }
        if !self.smtp_username.is_empty()
            && self.smtp_security == SmtpSecurity::None
            && !self.smtp_host_is_loopback()
        {
            return bad(
                "mail.smtp_security",
                "is \"none\" with mail.smtp_username set: the password would cross the \
                 network in clear; use \"starttls\" or \"tls\" (plain AUTH is allowed only \
                 to a relay on this machine)",
            );
        }
        if self.transport == MailTransport::Sendmail && !self.sendmail_command.is_absolute() {
            return bad(
                "mail.sendmail_command",
                "must be an absolute path, e.g. \"/usr/sbin/sendmail\"",
            );
        }
        if self.retry_initial_secs == 0 {
            return bad("mail.retry_initial_secs", "must be at least 1");
        }
        if self.retry_max_secs < self.retry_initial_secs {
            return bad(
                "mail.retry_max_secs",
                "must be at least mail.retry_initial_secs",
            );
        }
        if self.max_attempts == 0 {
            return bad("mail.max_attempts", "must be at least 1");
        }
        Ok(())
    }
}

/// A DNS name (letters, digits, `-`, `.`, `_`) or an IP address, optionally in brackets.
fn is_host(s: &str) -> bool {
    let bare = s.strip_prefix('[').and_then(|s| s.strip_suffix(']'));
    if let Some(inner) = bare {
        return inner.parse::<std::net::IpAddr>().is_ok();
    }
    if s.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        })
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    fn load(list: &[(&str, &str)]) -> Result<Config, String> {
        Config::load(
            None,
            list.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>(),
        )
        .map_err(|e| e.to_string())
    }

    #[track_caller]
    fn refused(list: &[(&str, &str)], key: &str) -> String {
        let e = load(list).expect_err("refused");
        assert!(e.contains(key), "{e:?} should name {key}");
        e
    }

    #[test]
    fn defaults_send_no_mail_and_validate() {
        let c = load(&[]).unwrap();
        assert_eq!(c.mail.transport, MailTransport::None);
        assert_eq!(c.mail.from, "outpost@localhost");
        assert_eq!(c.mail.smtp_security, SmtpSecurity::Starttls);
        assert_eq!(c.mail.smtp_port(), 587);
        assert_eq!(
            c.mail.pickup_dir(Path::new("/var/lib/outpost")),
            Path::new("/var/lib/outpost/mail/pickup")
        );
    }

    #[test]
    fn the_port_follows_the_security_mode_unless_set() {
        let mut m = MailConfig::default();
        for (security, port) in [
            (SmtpSecurity::None, 25),
            (SmtpSecurity::Starttls, 587),
            (SmtpSecurity::Tls, 465),
        ] {
            m.smtp_security = security;
            assert_eq!(m.smtp_port(), port);
        }
        m.smtp_port = 2525;
        assert_eq!(m.smtp_port(), 2525);
    }

    #[test]
    fn every_key_is_reachable_from_the_environment() {
        let c = load(&[
            ("OUTPOST_MAIL_TRANSPORT", "smtp"),
            ("OUTPOST_MAIL_FROM", "Outpost <invites@example.org>"),
            ("OUTPOST_MAIL_SMTP_HOST", "smtp.example.org"),
            ("OUTPOST_MAIL_SMTP_PORT", "2525"),
            ("OUTPOST_MAIL_SMTP_SECURITY", "tls"),
            ("OUTPOST_MAIL_SMTP_USERNAME", "outpost"),
            ("OUTPOST_MAIL_SMTP_PASSWORD", "relay-password"),
            ("OUTPOST_MAIL_SMTP_CA_FILE", "/etc/outpost/smtp-ca.pem"),
            ("OUTPOST_MAIL_SMTP_TIMEOUT_SECS", "10"),
            ("OUTPOST_MAIL_SMTP_HELLO_NAME", "outpost.example.org"),
            ("OUTPOST_MAIL_SENDMAIL_COMMAND", "/usr/lib/sendmail"),
            ("OUTPOST_MAIL_PICKUP_DIR", "/srv/pickup"),
            ("OUTPOST_MAIL_RETRY_INITIAL_SECS", "5"),
            ("OUTPOST_MAIL_RETRY_MAX_SECS", "60"),
            ("OUTPOST_MAIL_MAX_ATTEMPTS", "3"),
        ])
        .unwrap();
        let m = &c.mail;
        assert_eq!(m.transport, MailTransport::Smtp);
        assert_eq!(m.smtp_port(), 2525);
        assert_eq!(m.smtp_security, SmtpSecurity::Tls);
        assert!(m.smtp_password.ct_eq("relay-password"));
        assert!(!c.to_redacted_toml().contains("relay-password"));
        assert_eq!(m.smtp_ca_file, Path::new("/etc/outpost/smtp-ca.pem"));
        assert_eq!(m.pickup_dir(Path::new("/x")), Path::new("/srv/pickup"));
        assert_eq!(
            (m.retry_initial_secs, m.retry_max_secs, m.max_attempts),
            (5, 60, 3)
        );
    }

    #[test]
    fn bad_values_are_refused_naming_the_key() {
        refused(
            &[("OUTPOST_MAIL_TRANSPORT", "carrier-pigeon")],
            "OUTPOST_MAIL_TRANSPORT",
        );
        refused(
            &[("OUTPOST_MAIL_SMTP_SECURITY", "ssl")],
            "OUTPOST_MAIL_SMTP_SECURITY",
        );
        refused(&[("OUTPOST_MAIL_FROM", "not an address")], "mail.from");
        refused(&[("OUTPOST_MAIL_FROM", "")], "mail.from");
        refused(&[("OUTPOST_MAIL_SMTP_HOST", "")], "mail.smtp_host");
        refused(&[("OUTPOST_MAIL_SMTP_HOST", "smtp host")], "mail.smtp_host");
        refused(
            &[("OUTPOST_MAIL_SMTP_HELLO_NAME", "a b")],
            "mail.smtp_hello_name",
        );
        refused(
            &[("OUTPOST_MAIL_SMTP_TIMEOUT_SECS", "0")],
            "mail.smtp_timeout_secs",
        );
        refused(
            &[("OUTPOST_MAIL_SMTP_PORT", "70000")],
            "OUTPOST_MAIL_SMTP_PORT",
        );
        refused(
            &[("OUTPOST_MAIL_RETRY_INITIAL_SECS", "0")],
            "mail.retry_initial_secs",
        );
        refused(
            &[
                ("OUTPOST_MAIL_RETRY_INITIAL_SECS", "600"),
                ("OUTPOST_MAIL_RETRY_MAX_SECS", "60"),
            ],
            "mail.retry_max_secs",
        );
        refused(&[("OUTPOST_MAIL_MAX_ATTEMPTS", "0")], "mail.max_attempts");
    }

    #[test]
    fn smtp_auth_needs_both_halves_and_no_clear_text_password_on_the_network() {
        let e = refused(
            &[("OUTPOST_MAIL_SMTP_USERNAME", "outpost")],
            "mail.smtp_password",
        );
        assert!(e.contains("smtp_username"), "{e}");
        refused(
            &[("OUTPOST_MAIL_SMTP_PASSWORD", "s3cret")],
            "mail.smtp_password",
        );
        let auth = [
            ("OUTPOST_MAIL_SMTP_USERNAME", "outpost"),
            ("OUTPOST_MAIL_SMTP_PASSWORD", "s3cret"),
            ("OUTPOST_MAIL_SMTP_SECURITY", "none"),
        ];
        let mut remote = auth.to_vec();
        remote.push(("OUTPOST_MAIL_SMTP_HOST", "smtp.example.org"));
        let e = refused(&remote, "mail.smtp_security");
        assert!(!e.contains("s3cret"), "{e}");
        // A relay on this machine may take AUTH in clear.
        for host in ["127.0.0.1", "localhost", "::1", "[::1]"] {
            let mut local = auth.to_vec();
            local.push(("OUTPOST_MAIL_SMTP_HOST", host));
            load(&local).unwrap_or_else(|e| panic!("{host}: {e}"));
        }
    }

    #[test]
    fn sendmail_must_be_an_absolute_path_when_used() {
        refused(
            &[
                ("OUTPOST_MAIL_TRANSPORT", "sendmail"),
                ("OUTPOST_MAIL_SENDMAIL_COMMAND", "sendmail"),
            ],
            "mail.sendmail_command",
        );
        load(&[("OUTPOST_MAIL_SENDMAIL_COMMAND", "sendmail")]).unwrap();
    }

    #[test]
    fn host_names_and_addresses() {
        for ok in [
            "smtp.example.org",
            "127.0.0.1",
            "::1",
            "[::1]",
            "mail_relay",
            "localhost",
        ] {
            assert!(is_host(ok), "{ok}");
        }
        for bad in ["", "a b", "a..b", "[smtp]", "smtp:25", "x\r\ny"] {
            assert!(!is_host(bad), "{bad}");
        }
    }
}
