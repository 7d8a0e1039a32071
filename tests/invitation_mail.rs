//! Invitations by e-mail through a real SMTP server (aiosmtpd, STARTTLS with the site's
//! CA, AUTH): the administrator invites, the mail arrives with the network's name, the
//! inviter and the link (plain text and HTML, the classification banner and subject
//! prefix), the person follows the link over HTTPS, registers, and signs a device in.
//! With the SMTP server down the outbox keeps the mails, shows why, and sends each one
//! exactly once when the server is back.

mod common;

use common::Server;
use common::pages::{browser, page, sign_in, submit};
use common::smtp::SmtpSink;
use mail_parser::MessageParser;
use serde_json::json;
use std::time::{Duration, Instant};

fn server_with_mail(sink: &SmtpSink) -> Server {
    let env = sink.outpost_env();
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    env.push(("OUTPOST_MAIL_RETRY_INITIAL_SECS", "1"));
    env.push(("OUTPOST_MAIL_RETRY_MAX_SECS", "2"));
    Server::builder().envs(&env).start()
}

/// The registration link in a mail's plain-text part.
fn link_in(text: &str) -> String {
    let at = text.find("https://").expect("a link in the mail");
    text[at..]
        .split_whitespace()
        .find(|w| w.contains("/invite/oi_"))
        .or_else(|| text[at..].split_whitespace().next())
        .unwrap()
        .to_string()
}

#[test]
fn an_invitation_mail_arrives_and_its_link_registers_the_person() {
    let sink = SmtpSink::builder()
        .starttls()
        .auth("outpost", "relay-pass")
        .start();
    let server = server_with_mail(&sink);
    let owner = server.owner();
    let network = owner.first_network();
    owner
        .patch(
            &format!("/networks/{network}"),
            &json!({"name": "Field Ops"}),
        )
        .ok();
    owner.set_network_settings(&network, json!({"classification": {"level": "cui"}}));
    let created = owner
        .post(
            &format!("/networks/{network}/users"),
            &json!({"email": "gus@example.org", "first_name": "Gus"}),
        )
        .ok();
    let inv = &created["invitation"];
    assert!(
        inv["url"].is_null(),
        "with mail on the link is only in the mail: {inv}"
    );
    let mail_id = inv["mail_id"].as_str().unwrap().to_string();

    let raw = sink.wait_for_messages(1, Duration::from_secs(20));
    assert_eq!(raw.len(), 1, "{}", sink.log());
    let msg = MessageParser::default().parse(raw[0].as_bytes()).unwrap();
    assert_eq!(msg.subject(), Some("[CUI] You are invited to Field Ops"));
    let to = msg.to().unwrap().first().unwrap().address().unwrap();
    assert_eq!(to, "gus@example.org");
    let text = msg.body_text(0).unwrap().to_string();
    let html = msg.body_html(0).unwrap().to_string();
    assert!(text.starts_with("CUI"), "{text}");
    assert!(text.contains("owner invited you to Field Ops"), "{text}");
    let link = link_in(&text);
    assert!(
        link.starts_with(&format!("{}/invite/oi_", server.url)),
        "{link}"
    );
    assert!(html.contains(&format!("href=\"{link}\"")), "{html}");

    // The outbox shows it sent.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = owner.get("/mail/outbox?status=sent").ok();
        if page["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == mail_id.as_str())
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the mail is not marked sent: {page}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Follow the link and register.
    let c = browser(&server);
    assert_eq!(page(&c, &link).0, 200);
    let (status, _) = submit(
        &c,
        &link,
        &[
            ("first_name", "Gus"),
            ("last_name", "Gray"),
            ("password", "Correct-horse-battery-9"),
            ("confirm", "Correct-horse-battery-9"),
        ],
    );
    assert_eq!(status, 200);
    let device = server
        .anon()
        .post(
            "/api/v1/devices",
            &json!({"username": "gus@example.org", "password": "Correct-horse-battery-9",
                    "device": {"name": "laptop", "platform": "linux", "client_version": "test"}}),
        )
        .ok();
    assert!(device["token"].as_str().unwrap().starts_with("od_"));
}

#[test]
fn mails_wait_while_the_smtp_server_is_down_and_go_once_it_is_back() {
    let mut sink = SmtpSink::start();
    let server = server_with_mail(&sink);
    let owner = server.owner();
    let network = owner.first_network();
    sink.stop();
    for who in ["hal@example.org", "ida@example.org"] {
        owner
            .post(
                &format!("/networks/{network}/users"),
                &json!({"email": who}),
            )
            .ok();
    }
    // They wait, queued, with the reason.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let page = owner.get("/mail/outbox?status=queued").ok();
        let items = page["items"].as_array().unwrap();
        if items.len() == 2 && items.iter().all(|m| m["attempts"].as_u64() >= Some(1)) {
            let err = items[0]["last_error"].as_str().unwrap();
            assert!(err.contains("127.0.0.1"), "{err}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no failed attempt recorded: {page}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    sink.restart();
    let got = sink.wait_for_messages(2, Duration::from_secs(20));
    assert_eq!(got.len(), 2, "{}", sink.log());
    // Nothing more arrives: each mail went once.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(sink.messages().len(), 2);
    let sent = owner.get("/mail/outbox?status=sent").ok();
    assert_eq!(sent["items"].as_array().unwrap().len(), 2, "{sent}");
}

#[test]
fn a_person_asks_for_a_reset_link_by_mail_and_unknown_addresses_learn_nothing() {
    let sink = SmtpSink::start();
    let server = server_with_mail(&sink);
    let owner = server.owner();
    let network = owner.first_network();
    owner
        .post(
            &format!("/networks/{network}/users"),
            &json!({"email": "lea@example.org", "password": "Correct-horse-battery-9"}),
        )
        .ok();
    let c = browser(&server);
    let reset = format!("{}/reset", server.url);
    let (_, form) = page(&c, &reset);
    assert!(form.contains("name=\"email\""), "{form}");
    let (_, known) = submit(&c, &reset, &[("email", "Lea@Example.org")]);
    let (_, unknown) = submit(&c, &reset, &[("email", "nobody@example.org")]);
    assert_eq!(
        known, unknown,
        "the answer does not tell who has an account"
    );
    let raw = sink.wait_for_messages(1, Duration::from_secs(20));
    assert_eq!(raw.len(), 1);
    let msg = MessageParser::default().parse(raw[0].as_bytes()).unwrap();
    assert_eq!(msg.subject(), Some("Choose a new password for outpost"));
    let text = msg.body_text(0).unwrap().to_string();
    let at = text.find("/reset/or_").expect("a reset link");
    let start = text[..at].rfind("https://").unwrap();
    let link: String = text[start..].split_whitespace().next().unwrap().to_string();
    let (status, _) = submit(
        &c,
        &link,
        &[
            ("password", "Another-horse-battery-7"),
            ("confirm", "Another-horse-battery-7"),
        ],
    );
    assert_eq!(status, 200);
    assert_eq!(
        sign_in(&server, "lea@example.org", "Another-horse-battery-7"),
        201
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(sink.messages().len(), 1, "no mail for an unknown address");
}
