//! The mail transports (`outpost::mail::Mailer`) against real receivers: an aiosmtpd
//! SMTP server (`tests/support/smtp_sink.py`, see `common::smtp`) over plain SMTP,
//! STARTTLS and implicit TLS, with AUTH, a refused recipient, temporary failures, a slow
//! answer, and the server stopped and started again; a pickup folder; and a sendmail
//! stand-in script. Each received mail is parsed as MIME.
//!
//! How failures are classified (what the outbox retries): a 5xx answer to the mail
//! itself is permanent; the server down, a timeout, a 4xx answer, TLS, a refused AUTH
//! (535) or AUTH required (530) are temporary — configuration problems the administrator
//! fixes, after which the queued mails go out.

mod common;

use common::smtp::SmtpSink;
use mail_parser::{MessageParser, MimeHeaders};
use outpost::config::{MailConfig, MailTransport, SmtpSecurity};
use outpost::mail::{Mailer, SendError, build_message};
use std::path::Path;
use std::time::Duration;

const TO: &str = "alice@example.test";

fn mailer(config: &MailConfig) -> Mailer {
    Mailer::new(config, Path::new("/nonexistent-data-dir")).expect("mailer")
}

/// An invitation-like mail to `to`, with a link in both bodies.
fn invitation(to: &str) -> outpost::mail::Message {
    build_message(
        "Outpost <outpost@example.test>",
        to,
        "You are invited to Ops — Grüße",
        "Hello,\n\nregister at https://outpost.test/invite/tok123\n",
        "<p>Hello,</p><p><a href=\"https://outpost.test/invite/tok123\">register</a></p>",
    )
    .expect("build the mail")
}

/// What a received mail says, parsed as MIME.
struct Received {
    mail_from: String,
    rcpt_to: String,
    /// The client's address and port, as the sink saw it.
    peer: String,
    from: String,
    to: String,
    subject: String,
    message_id: String,
    text: String,
    html: String,
    /// Content types of every MIME part, root first.
    types: Vec<String>,
}

fn parse(raw: &str) -> Received {
    let m = MessageParser::default()
        .parse(raw.as_bytes())
        .expect("a MIME message");
    let addr = |a: Option<&mail_parser::Address>| {
        a.and_then(|a| a.first())
            .and_then(|a| a.address())
            .unwrap_or_default()
            .to_string()
    };
    let types = m
        .parts
        .iter()
        .map(|p| {
            p.content_type()
                .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or_default()))
                .unwrap_or_default()
        })
        .collect();
    Received {
        mail_from: m.header_raw("X-MailFrom").unwrap_or_default().trim().into(),
        rcpt_to: m.header_raw("X-RcptTo").unwrap_or_default().trim().into(),
        peer: m.header_raw("X-Peer").unwrap_or_default().trim().into(),
        from: addr(m.from()),
        to: addr(m.to()),
        subject: m.subject().unwrap_or_default().into(),
        message_id: m.message_id().unwrap_or_default().into(),
        text: m.body_text(0).unwrap_or_default().into_owned(),
        html: m.body_html(0).unwrap_or_default().into_owned(),
        types,
    }
}

#[track_caller]
fn assert_invitation(raw: &str) {
    let r = parse(raw);
    assert_eq!(r.mail_from, "outpost@example.test");
    assert_eq!(r.rcpt_to, TO);
    assert_eq!(r.from, "outpost@example.test");
    assert_eq!(r.to, TO);
    assert_eq!(r.subject, "You are invited to Ops — Grüße");
    assert!(r.message_id.ends_with("@example.test"), "{}", r.message_id);
    assert_eq!(
        r.types,
        ["multipart/alternative", "text/plain", "text/html"],
        "{raw}"
    );
    assert!(
        r.text.contains("https://outpost.test/invite/tok123"),
        "{}",
        r.text
    );
    assert!(
        r.html
            .contains("<a href=\"https://outpost.test/invite/tok123\">register</a>"),
        "{}",
        r.html
    );
}

#[track_caller]
fn assert_temporary(e: &SendError, needle: &str) {
    assert!(!e.permanent, "should be temporary: {e}");
    assert!(
        e.message.contains(needle),
        "{e:?} should contain {needle:?}"
    );
}

#[tokio::test]
async fn plain_smtp_delivers_a_mail_with_text_and_html_alternatives() {
    let sink = SmtpSink::start();
    let m = mailer(&sink.mail_config());
    assert!(m.is_enabled());
    assert!(m.describe().contains(&format!("127.0.0.1:{}", sink.port())));
    m.send(&invitation(TO)).await.expect("sent");
    let got = sink.wait_for_messages(1, Duration::from_secs(5));
    assert_eq!(got.len(), 1);
    assert_invitation(&got[0]);
}

#[tokio::test]
async fn starttls_with_the_sites_ca_delivers() {
    let sink = SmtpSink::builder().starttls().start();
    let config = sink.mail_config();
    assert_eq!(config.smtp_security, SmtpSecurity::Starttls);
    assert!(!config.smtp_ca_file.as_os_str().is_empty());
    mailer(&config).send(&invitation(TO)).await.expect("sent");
    assert_invitation(&sink.wait_for_messages(1, Duration::from_secs(5))[0]);
}

#[tokio::test]
async fn starttls_to_a_certificate_no_trusted_ca_signed_is_a_temporary_tls_failure() {
    let sink = SmtpSink::builder().starttls().start();
    // Without smtp_ca_file only the system's roots are trusted, and no public CA signed
    // the sink's certificate.
    let config = MailConfig {
        smtp_ca_file: Default::default(),
        ..sink.mail_config()
    };
    let e = mailer(&config).send(&invitation(TO)).await.unwrap_err();
    assert_temporary(&e, &format!("TLS with 127.0.0.1:{} failed", sink.port()));
    assert!(e.message.contains("certificate"), "{e}");
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn starttls_is_required_not_opportunistic() {
    let sink = SmtpSink::start(); // offers no STARTTLS
    let config = MailConfig {
        smtp_security: SmtpSecurity::Starttls,
        ..sink.mail_config()
    };
    let e = mailer(&config).send(&invitation(TO)).await.unwrap_err();
    assert_temporary(&e, "does not offer STARTTLS");
    assert!(sink.messages().is_empty(), "nothing went out in clear");
}

#[tokio::test]
async fn implicit_tls_to_a_starttls_port_is_a_temporary_failure_with_a_hint() {
    let sink = SmtpSink::builder().starttls().start();
    let config = MailConfig {
        smtp_security: SmtpSecurity::Tls,
        ..sink.mail_config()
    };
    let e = mailer(&config).send(&invitation(TO)).await.unwrap_err();
    assert_temporary(&e, "does not speak TLS on this port");
}

#[tokio::test]
async fn implicit_tls_delivers() {
    let sink = SmtpSink::builder().smtps().start();
    let config = sink.mail_config();
    assert_eq!(config.smtp_security, SmtpSecurity::Tls);
    let m = mailer(&config);
    assert!(m.describe().contains("implicit TLS"), "{}", m.describe());
    m.send(&invitation(TO)).await.expect("sent");
    assert_invitation(&sink.wait_for_messages(1, Duration::from_secs(5))[0]);
}

#[tokio::test]
async fn auth_with_the_right_password_delivers_over_starttls_and_implicit_tls() {
    for sink in [
        SmtpSink::builder()
            .starttls()
            .auth("alice", "s3cret")
            .start(),
        SmtpSink::builder().smtps().auth("alice", "s3cret").start(),
    ] {
        let config = sink.mail_config();
        assert_eq!(config.smtp_username, "alice");
        mailer(&config).send(&invitation(TO)).await.expect("sent");
        assert_invitation(&sink.wait_for_messages(1, Duration::from_secs(5))[0]);
    }
}

#[tokio::test]
async fn a_refused_password_is_a_temporary_failure_that_names_535_and_not_the_password() {
    let sink = SmtpSink::builder()
        .starttls()
        .auth("alice", "s3cret")
        .start();
    let config = MailConfig {
        smtp_password: outpost::config::Secret::new("wrong-password"),
        ..sink.mail_config()
    };
    let m = mailer(&config);
    let e = m.send(&invitation(TO)).await.unwrap_err();
    assert_temporary(&e, "535");
    assert!(e.message.contains("\"alice\""), "{e}");
    assert!(!e.to_string().contains("wrong-password"), "{e}");
    assert!(!format!("{m:?}").contains("wrong-password"));
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn auth_required_but_not_configured_is_temporary() {
    let sink = SmtpSink::builder()
        .starttls()
        .auth("alice", "s3cret")
        .start();
    let config = MailConfig {
        smtp_username: String::new(),
        smtp_password: Default::default(),
        ..sink.mail_config()
    };
    let e = mailer(&config).send(&invitation(TO)).await.unwrap_err();
    assert_temporary(&e, "530");
}

#[tokio::test]
async fn a_server_that_is_down_is_a_temporary_failure_naming_its_address_until_it_is_back() {
    let mut sink = SmtpSink::start();
    let m = mailer(&sink.mail_config());
    sink.stop();
    let e = m.send(&invitation(TO)).await.unwrap_err();
    assert_temporary(
        &e,
        &format!("connection refused to 127.0.0.1:{}", sink.port()),
    );
    sink.restart();
    m.send(&invitation(TO))
        .await
        .expect("sent once the server is back");
    let got = sink.wait_for_messages(1, Duration::from_secs(5));
    assert_eq!(got.len(), 1);
    assert_invitation(&got[0]);
}

#[tokio::test]
async fn a_refused_recipient_is_a_permanent_failure_with_the_servers_550() {
    let sink = SmtpSink::builder()
        .reject_rcpt("nobody@example.test")
        .start();
    let m = mailer(&sink.mail_config());
    let e = m
        .send(&invitation("nobody@example.test"))
        .await
        .unwrap_err();
    assert!(e.permanent, "{e}");
    assert!(e.message.starts_with("550 5.1.1"), "{e:?}");
    assert!(e.message.contains("no such user"), "{e:?}");
    assert!(e.to_string().contains("refused for good"), "{e}");
    // The next mail, to someone who exists, goes through the same mailer.
    m.send(&invitation(TO)).await.expect("sent");
    assert_eq!(sink.wait_for_messages(1, Duration::from_secs(5)).len(), 1);
}

#[tokio::test]
async fn a_451_answer_is_a_temporary_failure_and_the_retry_is_delivered_once() {
    let sink = SmtpSink::builder().tempfail(1).start();
    let m = mailer(&sink.mail_config());
    let mail = invitation(TO);
    let e = m.send(&mail).await.unwrap_err();
    assert_temporary(&e, "451 4.3.0 try again later");
    assert!(sink.messages().is_empty());
    m.send(&mail).await.expect("the retry is sent");
    let got = sink.wait_for_messages(1, Duration::from_secs(5));
    assert_eq!(got.len(), 1);
    assert_invitation(&got[0]);
}

#[tokio::test]
async fn a_server_slower_than_the_timeout_is_a_temporary_failure() {
    let sink = SmtpSink::builder().delay(Duration::from_secs(4)).start();
    let config = MailConfig {
        smtp_timeout_secs: 1,
        ..sink.mail_config()
    };
    let started = std::time::Instant::now();
    let e = mailer(&config).send(&invitation(TO)).await.unwrap_err();
    assert_temporary(&e, "within 1 s while sending the mail");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn sessions_are_reused_and_a_restart_in_between_is_survived() {
    let mut sink = SmtpSink::builder().starttls().start();
    let m = mailer(&sink.mail_config());
    for _ in 0..3 {
        m.send(&invitation(TO)).await.expect("sent");
    }
    // The kept session dies with the server; the next mail opens a new one.
    sink.restart();
    m.send(&invitation(TO))
        .await
        .expect("sent after the restart");
    let got = sink.wait_for_messages(4, Duration::from_secs(5));
    assert_eq!(got.len(), 4);
    for raw in &got {
        assert_invitation(raw);
    }
    let peers: Vec<String> = got.iter().map(|raw| parse(raw).peer).collect();
    assert_eq!(peers[0], peers[1], "one connection for the first three");
    assert_eq!(peers[1], peers[2], "one connection for the first three");
    assert_ne!(peers[2], peers[3], "a new connection after the restart");
    m.close().await;
}

#[tokio::test]
async fn the_pickup_folder_gets_one_complete_eml_file_per_mail() {
    let data = tempfile::tempdir().unwrap();
    let config = MailConfig {
        transport: MailTransport::Pickup,
        ..MailConfig::default()
    };
    let m = Mailer::new(&config, data.path()).expect("mailer");
    let dir = data.path().join("mail/pickup");
    assert!(m.describe().contains(&dir.display().to_string()));
    m.send(&invitation(TO)).await.expect("written");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_str().unwrap();
    assert!(name.ends_with(".eml") && !name.starts_with('.'), "{name}");
    let raw = std::fs::read_to_string(&files[0]).unwrap();
    // No envelope lines here: the sink's X-MailFrom/X-RcptTo are absent.
    let r = parse(&raw);
    assert_eq!(
        (r.from.as_str(), r.to.as_str()),
        ("outpost@example.test", TO)
    );
    assert_eq!(
        r.types,
        ["multipart/alternative", "text/plain", "text/html"]
    );
    assert!(r.text.contains("https://outpost.test/invite/tok123"));
}

/// A sendmail stand-in: writes its arguments (one per line) and standard input to files
/// beside it, then exits with `$EXIT` after printing `$SAY` to stderr.
fn fake_sendmail(dir: &Path, exit: u8, say: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let script = dir.join("sendmail");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > '{dir}/args'\n\
             cat > '{dir}/stdin'\nprintf '%s' '{say}' >&2\nexit {exit}\n",
            dir = dir.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

#[tokio::test]
async fn sendmail_gets_the_envelope_as_arguments_and_the_mail_on_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    let config = MailConfig {
        transport: MailTransport::Sendmail,
        sendmail_command: fake_sendmail(dir.path(), 0, ""),
        ..MailConfig::default()
    };
    let m = mailer(&config);
    assert!(m.describe().starts_with("sendmail ("), "{}", m.describe());
    m.send(&invitation(TO)).await.expect("sent");
    let args = std::fs::read_to_string(dir.path().join("args")).unwrap();
    assert_eq!(
        args.lines().collect::<Vec<_>>(),
        ["-i", "-f", "outpost@example.test", "--", TO]
    );
    let stdin = std::fs::read_to_string(dir.path().join("stdin")).unwrap();
    assert_invitation(&format!(
        "X-MailFrom: outpost@example.test\r\nX-RcptTo: {TO}\r\n{stdin}"
    ));
}

#[tokio::test]
async fn a_failing_or_missing_sendmail_is_a_temporary_failure_with_its_message() {
    let dir = tempfile::tempdir().unwrap();
    let config = MailConfig {
        transport: MailTransport::Sendmail,
        sendmail_command: fake_sendmail(dir.path(), 75, "queue directory not writable"),
        ..MailConfig::default()
    };
    let e = mailer(&config).send(&invitation(TO)).await.unwrap_err();
    assert_temporary(&e, "queue directory not writable");
    let config = MailConfig {
        sendmail_command: dir.path().join("no-such-sendmail"),
        ..config
    };
    let e = mailer(&config).send(&invitation(TO)).await.unwrap_err();
    assert_temporary(&e, "cannot run");
    assert!(e.message.contains("no-such-sendmail"), "{e}");
}

#[tokio::test]
async fn with_mail_off_nothing_is_sent_and_the_error_says_so() {
    let m = mailer(&MailConfig::default());
    assert!(!m.is_enabled());
    let e = m.send(&invitation(TO)).await.unwrap_err();
    assert_temporary(&e, "mail is off");
}

#[test]
fn a_bad_ca_file_or_pickup_folder_is_reported_when_the_mailer_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let config = MailConfig {
        transport: MailTransport::Smtp,
        smtp_ca_file: dir.path().join("missing-ca.pem"),
        ..MailConfig::default()
    };
    let e = Mailer::new(&config, dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("mail.smtp_ca_file") && e.contains("missing-ca.pem"),
        "{e}"
    );
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let config = MailConfig {
        transport: MailTransport::Pickup,
        pickup_dir: blocker.join("pickup"),
        ..MailConfig::default()
    };
    let e = Mailer::new(&config, dir.path()).unwrap_err().to_string();
    assert!(e.contains("mail.pickup_dir"), "{e}");
}
