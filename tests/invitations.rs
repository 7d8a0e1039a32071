//! Invitations without mail (`mail.transport = "none"`): inviting returns the one-time
//! registration link; the person opens it over HTTPS, sees their group's password rules,
//! is told which rule a weak password breaks, registers, and signs a device in with the
//! new password, downloads the signed client profile and signs the command-line client in
//! with it; used, replaced and forged links get a page that says so.

mod common;

use common::pages::{browser, page, sign_in, submit};
use common::{Server, outpost};
use outpost::client_profile::SignedProfile;
use serde_json::{Value, json};

#[test]
fn an_invited_person_registers_through_the_link_and_signs_a_device_in() {
    let server = Server::start();
    let owner = server.owner();
    let network = owner.first_network();
    owner.set_network_settings(
        &network,
        json!({"classification": {"level": "secret", "caveats": "noforn"}}),
    );
    let created = owner
        .post(
            &format!("/networks/{network}/users"),
            &json!({"email": "ann@example.org", "first_name": "Ann"}),
        )
        .ok();
    assert_eq!(created["status"], "pending");
    let inv = &created["invitation"];
    let url = inv["url"]
        .as_str()
        .expect("mail is off: the link is returned");
    assert!(
        url.starts_with(&format!("{}/invite/oi_", server.url)),
        "{url}"
    );
    assert!(inv["mail_id"].is_null());
    assert!(inv["expires_at"].is_string());
    // The link is not in the audit record.
    let audit = owner.get("/audit?event_name=CreateUser").ok().to_string();
    assert!(!audit.contains(url.rsplit('/').next().unwrap()), "{audit}");

    let c = browser(&server);
    let (status, html) = page(&c, url);
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("ann@example.org"));
    assert!(
        html.contains("at least 12 characters"),
        "the rules are shown first: {html}"
    );
    assert_eq!(
        html.matches("SECRET//NOFORN").count(),
        2,
        "banner top and bottom"
    );
    assert!(html.contains("<form method=\"post\""));

    // A weak password: the page says which rule failed, keeps the name, registers nothing.
    let (status, html) = submit(
        &c,
        url,
        &[
            ("first_name", "Ann"),
            ("last_name", "Lee"),
            ("password", "short"),
            ("confirm", "short"),
        ],
    );
    assert_eq!(status, 422);
    assert!(
        html.contains("the password must be at least 12 characters long"),
        "{html}"
    );
    assert!(html.contains("value=\"Lee\""));
    // Two different passwords.
    let (status, html) = submit(
        &c,
        url,
        &[
            ("first_name", "Ann"),
            ("password", "Correct-horse-battery-9"),
            ("confirm", "Correct-horse-battery-8"),
        ],
    );
    assert_eq!(status, 422);
    assert!(html.contains("not the same"), "{html}");
    assert_eq!(
        sign_in(&server, "ann@example.org", "Correct-horse-battery-9"),
        401
    );

    let (status, html) = submit(
        &c,
        url,
        &[
            ("first_name", "Ann"),
            ("last_name", "Lee"),
            ("password", "Correct-horse-battery-9"),
            ("confirm", "Correct-horse-battery-9"),
        ],
    );
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains(&format!(
            "outpost client login --connection outpost-{network}.json"
        )),
        "{html}"
    );
    let profile_url = client_profile_link(&server, &html);
    let users = owner
        .get(&format!("/networks/{network}/users?status=active"))
        .ok();
    let ann: &Value = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "ann@example.org")
        .expect("Ann is active");
    assert_eq!(ann["last_name"], "Lee");
    assert_eq!(
        sign_in(&server, "ann@example.org", "Correct-horse-battery-9"),
        201
    );

    // The client profile: a signed file naming this server, its certificate and Ann's
    // network, which the command-line client signs in with (nothing else needed).
    let r = c.get(&profile_url).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-disposition"],
        format!("attachment; filename=\"outpost-{network}.json\"").as_str()
    );
    let bytes = r.bytes().unwrap().to_vec();
    let signed = SignedProfile::verify_bytes(&bytes).expect("the profile verifies");
    assert_eq!(signed.profile.server, server.url);
    assert_eq!(signed.profile.network.id, network);
    assert_eq!(signed.profile.username.as_deref(), Some("ann@example.org"));
    assert_eq!(
        signed.profile.trust.certificate_pem,
        std::fs::read_to_string(&server.ca).unwrap()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("outpost-{network}.json"));
    std::fs::write(&file, &bytes).unwrap();
    let device = dir.path().join("ann.json");
    let login = |file: &std::path::Path| {
        outpost(
            &[
                "client",
                "--profile",
                device.to_str().unwrap(),
                "login",
                "--connection",
                file.to_str().unwrap(),
            ],
            &[("OUTPOST_CLIENT_PASSWORD", "Correct-horse-battery-9")],
        )
    };
    // A file changed on the way (another server) is refused before any password is sent.
    let forged = dir.path().join("forged.json");
    std::fs::write(
        &forged,
        String::from_utf8(bytes.clone())
            .unwrap()
            .replace("127.0.0.1", "127.0.0.2"),
    )
    .unwrap();
    let (code, _, err) = login(&forged);
    assert_ne!(code, 0);
    assert!(err.contains("signature does not verify"), "{err}");
    let (code, _, err) = login(&file);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("client profile checked"), "{err}");
    assert!(err.contains("logged in as ann@example.org"), "{err}");
    // The download link names one person and stops working after an hour; a forged one
    // opens nothing.
    let forged_link = format!("{}x", &profile_url[..profile_url.len() - 1]);
    let r = c.get(&forged_link).send().unwrap();
    assert_eq!(r.status(), 404);
    // Administrators get the network's profile (naming nobody) from the admin API, signed
    // with the key the appliance shows clients.
    let admin_copy = owner
        .get(&format!("/networks/{network}/client-profile"))
        .ok();
    let admin_copy = SignedProfile::verify_bytes(admin_copy.to_string().as_bytes()).unwrap();
    assert_eq!(admin_copy.profile.username, None);
    assert_eq!(admin_copy.key(), signed.key());
    let info = server.anon().get("/api/v1/server").ok();
    assert_eq!(info["profile_key"], signed.key());

    // The link is used up.
    let (status, html) = page(&c, url);
    assert_eq!(status, 404);
    assert!(html.contains("not valid"), "{html}");
    assert!(!html.contains("<form"));
    let (status, _) = submit(&c, url, &[("password", "Correct-horse-battery-9")]);
    assert_eq!(status, 404);
    // Re-inviting a registered user is refused.
    owner
        .post_empty(&format!(
            "/networks/{network}/users/{}/invitation",
            ann["id"].as_str().unwrap()
        ))
        .expect(409, "already_registered");
}

/// The client profile download link on a registration success page.
fn client_profile_link(server: &Server, html: &str) -> String {
    let at = html.find("href=\"/profile/").expect("a profile link") + "href=\"".len();
    let path = &html[at..at + html[at..].find('"').unwrap()];
    format!("{}{path}", server.url)
}

#[test]
fn a_reinvitation_replaces_the_link_and_forged_links_open_nothing() {
    let server = Server::start();
    let owner = server.owner();
    let network = owner.first_network();
    let created = owner
        .post(
            &format!("/networks/{network}/users"),
            &json!({"email": "bo@example.org"}),
        )
        .ok();
    let first = created["invitation"]["url"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap();
    let again = owner
        .post_empty(&format!("/networks/{network}/users/{id}/invitation"))
        .ok();
    let second = again["invitation"]["url"].as_str().unwrap().to_string();
    assert_ne!(first, second);
    let c = browser(&server);
    assert_eq!(page(&c, &first).0, 404, "the first link stops working");
    assert_eq!(page(&c, &second).0, 200);
    let forged = format!("{}x", &second[..second.len() - 1]);
    assert_eq!(page(&c, &forged).0, 404);
    assert_eq!(
        page(&c, &format!("{}/invite/not-a-token", server.url)).0,
        404
    );
    // A user created with a password gets no invitation.
    let direct = owner
        .post(
            &format!("/networks/{network}/users"),
            &json!({"email": "cy@example.org", "password": "Correct-horse-battery-9"}),
        )
        .ok();
    assert!(direct["invitation"].is_null());
}

#[test]
fn a_bulk_invite_gives_every_row_its_own_link() {
    let server = Server::start();
    let owner = server.owner();
    let network = owner.first_network();
    let r = owner
        .post_csv(
            &format!("/networks/{network}/users/batch-create"),
            "email,first_name\ndee@example.org,Dee\neve@example.org,Eve\n",
        )
        .ok();
    let invs = r["invitations"].as_array().expect("invitations");
    assert_eq!(invs.len(), 2);
    assert_eq!(invs[0]["email"], "dee@example.org");
    assert_eq!(invs[1]["email"], "eve@example.org");
    assert_ne!(invs[0]["url"], invs[1]["url"]);
    let c = browser(&server);
    for inv in invs {
        let (status, html) = page(&c, inv["url"].as_str().unwrap());
        assert_eq!(status, 200);
        assert!(html.contains(inv["email"].as_str().unwrap()));
    }
}

#[test]
fn the_mail_outbox_is_empty_while_mail_is_off_and_checks_its_query() {
    let server = Server::start();
    let owner = server.owner();
    let network = owner.first_network();
    owner
        .post(
            &format!("/networks/{network}/users"),
            &json!({"email": "fay@example.org"}),
        )
        .ok();
    let page = owner.get("/mail/outbox").ok();
    assert_eq!(page["items"].as_array().unwrap().len(), 0, "{page}");
    owner
        .get("/mail/outbox?limit=0")
        .expect(400, "invalid_query");
    owner
        .get("/mail/outbox?cursor=zz")
        .expect(400, "invalid_cursor");
    owner.get("/mail/outbox?status=sent").ok();
}

#[test]
fn a_password_reset_link_sets_a_new_password_and_signs_every_device_out() {
    let server = Server::start();
    let owner = server.owner();
    let network = owner.first_network();
    let created = owner
        .post(
            &format!("/networks/{network}/users"),
            &json!({"email": "joy@example.org", "password": "Correct-horse-battery-9"}),
        )
        .ok();
    let id = created["id"].as_str().unwrap().to_string();
    let device = server
        .anon()
        .post(
            "/api/v1/devices",
            &json!({"username": "joy@example.org", "password": "Correct-horse-battery-9",
                    "device": {"name": "laptop", "platform": "linux", "client_version": "test"}}),
        )
        .ok();
    let token = device["token"].as_str().unwrap().to_string();
    let me = server.anon().with_token(&token);
    me.get("/api/v1/me").ok();

    let sent = owner
        .post_empty(&format!("/networks/{network}/users/{id}/password-reset"))
        .ok();
    let url = sent["reset"]["url"]
        .as_str()
        .expect("mail is off: the link is returned")
        .to_string();
    assert!(
        url.starts_with(&format!("{}/reset/or_", server.url)),
        "{url}"
    );
    // An invitation link's page does not open a reset token, nor the reverse.
    let c = browser(&server);
    let wrong = url.replace("/reset/", "/invite/");
    assert_eq!(page(&c, &wrong).0, 404);
    let (status, html) = page(&c, &url);
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("joy@example.org") && html.contains("at least 12 characters"));
    let (status, html) = submit(&c, &url, &[("password", "weak"), ("confirm", "weak")]);
    assert_eq!(status, 422);
    assert!(html.contains("the password must be at least 12 characters long"));
    let (status, html) = submit(
        &c,
        &url,
        &[
            ("password", "Another-horse-battery-7"),
            ("confirm", "Another-horse-battery-7"),
        ],
    );
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("every device was signed out"));
    // The device's session ended; the old password is gone; the new one works.
    assert_eq!(me.get("/api/v1/me").status, 401);
    assert_eq!(
        sign_in(&server, "joy@example.org", "Correct-horse-battery-9"),
        401
    );
    assert_eq!(
        sign_in(&server, "joy@example.org", "Another-horse-battery-7"),
        201
    );
    // The link is used up.
    assert_eq!(page(&c, &url).0, 404);
    // A pending user gets 409: they register through an invitation instead.
    let pending = owner
        .post(
            &format!("/networks/{network}/users"),
            &json!({"email": "kit@example.org"}),
        )
        .ok();
    owner
        .post_empty(&format!(
            "/networks/{network}/users/{}/password-reset",
            pending["id"].as_str().unwrap()
        ))
        .expect(409, "not_registered");
    // Without mail, the self-service page says to ask an administrator.
    let (status, html) = page(&c, &format!("{}/reset", server.url));
    assert_eq!(status, 200);
    assert!(html.contains("ask your administrator"), "{html}");
}
