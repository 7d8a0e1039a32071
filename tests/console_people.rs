//! The console's people pages in a real browser (`tests/js/console-people.mjs`):
//! inviting a user, bulk CSV files (a file with bad rows gets the row-by-row report and
//! changes nothing; good files invite, suspend and delete), a user's details with
//! their device, editing (a bad value refused), suspending, unsuspending and unlocking, a password
//! reset link, resetting
//! devices and deleting (refused with a wrong password), bots (a token shown once),
//! pending invitations (resend, revoke), the mail outbox, and admin accounts and
//! their roles — each page under the classification banner, with no outside request,
//! no console error, no sideways scrolling and a label on every control. The audit
//! log then holds every action under the API's operation names. With a real SMTP
//! server (aiosmtpd) the outbox and invitations pages show which mail was sent and
//! which was refused, and why; an admin of one network and an auditor are refused on
//! the pages the API refuses them.

mod common;

use common::{Server, browser, pages, people};
use serde_json::json;

#[test]
fn an_owner_manages_people_in_the_console() {
    let server = Server::start();
    let owner = server.owner();
    let network = owner.first_network();
    owner.set_network_settings(
        &network,
        json!({"classification": {"level": "confidential"}}),
    );
    // Someone registered, with a device, and a few people already in the directory.
    let dev = people::person(&server, &owner, &network, "dev@example.test");
    // And someone locked out by failed sign-ins.
    owner.set_group_settings(
        &network,
        json!({"security": {"lockout_threshold": 3, "device_reset_threshold": 0}}),
    );
    people::person(&server, &owner, &network, "locked@example.test");
    for _ in 0..3 {
        let r = server.anon().post(
            "/api/v1/devices",
            &json!({
                "username": "locked@example.test", "password": "not the password",
                "device": {"name": "test", "platform": "linux", "client_version": "test"},
                "keys": {"x25519": people::b64(32), "ed25519": people::b64(32)},
            }),
        );
        assert_eq!(r.status, 401, "{}", r.text);
    }
    owner
        .post_csv(
            &format!("/networks/{network}/users/batch-create"),
            common::invite_csv("member", 3),
        )
        .ok();
    let shots = browser::shots("people");
    let (ok, log) = browser::walk(
        "console-people.mjs",
        &[
            &server.url,
            "owner",
            &server.password,
            &shots,
            "CONFIDENTIAL",
            &network,
        ],
    );
    assert!(ok, "{log}");

    // What the browser did is what the appliance holds.
    let users = owner
        .get(&format!("/networks/{network}/users?search=new.person%40"))
        .ok();
    assert_eq!(users["items"][0]["first_name"], "Nova", "{users}");
    let gone = owner
        .get(&format!("/networks/{network}/users?search=member0%40"))
        .ok();
    assert_eq!(
        gone["items"].as_array().unwrap().len(),
        0,
        "bulk delete: {gone}"
    );
    let devices = owner
        .get(&format!(
            "/networks/{network}/users/{}/devices",
            dev.user_id
        ))
        .ok();
    assert_eq!(devices["items"][0]["status"], "reset", "{devices}");
    let admins = owner.get("/admins").ok();
    assert!(
        !admins["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["username"] == "ops.admin"),
        "the removed admin is gone: {admins}"
    );

    browser::assert_audited(
        &owner,
        &[
            ("ListUsers", 200),
            ("CreateUser", 201),
            ("CreateUser", 422),
            ("GetUsersCount", 200),
            ("GetUserTemplate", 200),
            ("ExportUsers", 200),
            ("BatchCreateUser", 422),
            ("BatchCreateUser", 201),
            ("BatchSuspendUser", 200),
            ("BatchDeleteUser", 422),
            ("BatchDeleteUser", 200),
            ("GetUser", 200),
            ("UpdateUser", 200),
            ("UpdateUser", 422),
            ("SuspendUser", 200),
            ("UnsuspendUser", 200),
            ("UnlockUser", 200),
            ("SendPasswordReset", 200),
            ("ResetDevicesForUser", 200),
            ("DeleteUser", 403),
            ("DeleteUser", 204),
            ("ListBots", 200),
            ("CreateBot", 201),
            ("UpdateBot", 200),
            ("DeleteBot", 204),
            ("ReinviteUser", 200),
            ("RevokeInvitation", 200),
            ("ListMail", 200),
            ("ListAdmins", 200),
            ("CreateAdmin", 201),
            ("GetAdmin", 200),
            ("UpdateAdmin", 200),
            ("DeleteAdmin", 204),
        ],
    );
}

#[test]
fn an_invitation_is_revoked_through_the_api() {
    let server = Server::start();
    let owner = server.owner();
    let network = owner.first_network();
    let u = owner
        .post(
            &format!("/networks/{network}/users"),
            &json!({"email": "later@example.test"}),
        )
        .ok();
    let url = u["invitation"]["url"].as_str().unwrap().to_string();
    let client = pages::browser(&server);
    assert_eq!(pages::page(&client, &url).0, 200, "the link opens at first");
    let id = u["id"].as_str().unwrap();
    let revoked = owner
        .delete(&format!("/networks/{network}/users/{id}/invitation"))
        .ok();
    assert_eq!(revoked["status"], "pending");
    // The link no longer opens.
    assert_eq!(
        pages::page(&client, &url).0,
        404,
        "a revoked link is refused"
    );
    // A registered user has no invitation to revoke.
    let dev = people::person(&server, &owner, &network, "dev@example.test");
    owner
        .delete(&format!(
            "/networks/{network}/users/{}/invitation",
            dev.user_id
        ))
        .expect(409, "already_registered");
}

/// A console session of `username` (cookies kept, redirects not followed).
fn console_session(server: &Server, username: &str, password: &str) -> reqwest::blocking::Client {
    let pem = std::fs::read(&server.ca).unwrap();
    let c = reqwest::blocking::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();
    let form = c
        .get(format!("{}/console/sign-in", server.url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    let csrf = form
        .split("name=\"_csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let r = c
        .post(format!("{}/console/sign-in", server.url))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("username", username),
            ("password", password),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 303, "signed in as {username}");
    c
}

#[test]
fn the_people_pages_refuse_what_the_api_refuses() {
    let server = Server::start();
    let owner = server.owner();
    let network = owner.first_network();
    let other = owner.post("/networks", &json!({"name": "Other"})).ok()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let password = "Admin-of-one-network-7";
    for (name, role, nets) in [
        ("net.admin", "admin", json!([network])),
        ("auditor", "auditor", json!([])),
    ] {
        owner
            .post(
                "/admins",
                &json!({"username": name, "role": role, "networks": nets, "password": password}),
            )
            .ok();
    }
    let get = |c: &reqwest::blocking::Client, path: &str| {
        let r = c
            .get(format!("{}/console{path}", server.url))
            .send()
            .unwrap();
        let status = r.status().as_u16();
        (status, r.text().unwrap())
    };

    // An admin of one network: its people pages, not another network's, nor the owner's.
    let admin = console_session(&server, "net.admin", password);
    for path in [
        format!("/networks/{network}/users"),
        format!("/networks/{network}/users/bulk"),
        format!("/networks/{network}/bots"),
        format!("/networks/{network}/invitations"),
    ] {
        let (status, html) = get(&admin, &path);
        assert_eq!(status, 200, "{path}: {html}");
        assert!(
            !html.contains("/console/admins"),
            "{path} links the admins page"
        );
    }
    for path in [
        format!("/networks/{other}/users/bulk"),
        format!("/networks/{other}/bots"),
        "/admins".to_string(),
        "/mail".to_string(),
    ] {
        assert_eq!(get(&admin, &path).0, 403, "{path}");
    }
    // The invitations page of an admin shows no mail state (ListMail is not theirs).
    let (_, html) = get(&admin, &format!("/networks/{network}/invitations"));
    assert!(!html.contains("<th scope=\"col\">Mail</th>"), "{html}");

    // An auditor reads everything and is offered no change.
    let auditor = console_session(&server, "auditor", password);
    let (status, html) = get(&auditor, &format!("/networks/{network}/users/bulk"));
    assert_eq!(status, 200);
    assert!(!html.contains("enctype=\"multipart/form-data\""), "{html}");
    let (status, html) = get(&auditor, "/admins");
    assert_eq!(status, 200);
    assert!(!html.contains("Add an admin"), "{html}");
    let r = auditor
        .post(format!("{}/console/admins", server.url))
        .form(&[("username", "x")])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403, "an auditor cannot add admins");

    // Every refusal is in the audit log, under the API's names.
    let events = owner.get("/audit?limit=1000&event_name=ListAdmins").ok();
    assert!(
        events["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["result"]["http_status"] == 403),
        "{events}"
    );
}

#[test]
fn the_outbox_and_invitations_pages_show_how_each_mail_went() {
    use common::smtp::SmtpSink;
    let sink = SmtpSink::builder()
        .reject_rcpt("bounce@example.org")
        .start();
    let env = sink.outpost_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = Server::builder().envs(&env).start();
    let owner = server.owner();
    let network = owner.first_network();
    for email in ["gus@example.org", "bounce@example.org"] {
        owner
            .post(
                &format!("/networks/{network}/users"),
                &json!({"email": email}),
            )
            .ok();
    }
    sink.wait_for_messages(1, std::time::Duration::from_secs(60));
    // Until the outbox has given up on the refused address too.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let mails = owner.get("/mail/outbox").ok();
        let states: Vec<&str> = mails["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["status"].as_str().unwrap())
            .collect();
        if states.contains(&"sent") && states.contains(&"failed") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the outbox still says {states:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let console = console_session(&server, "owner", &server.password);
    let get = |path: &str| {
        let r = console
            .get(format!("{}/console{path}", server.url))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        r.text().unwrap()
    };
    let outbox = get("/mail");
    let row = |html: &str, who: &str| {
        html.split("<tr>")
            .find(|r| r.contains(who))
            .unwrap_or_else(|| panic!("no row for {who}: {html}"))
            .to_string()
    };
    assert!(
        row(&outbox, "gus@example.org").contains(">sent<"),
        "{outbox}"
    );
    let bounced = row(&outbox, "bounce@example.org");
    assert!(
        bounced.contains(">failed<") && bounced.contains("550"),
        "{bounced}"
    );
    let failed_only = get("/mail?status=failed");
    assert!(!failed_only.contains("gus@example.org"), "{failed_only}");
    let other = owner.post("/networks", &json!({"name": "Other"})).ok()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let none = get(&format!("/mail?network={other}"));
    assert!(
        none.contains("No mail matches") && !none.contains("gus@example.org"),
        "{none}"
    );
    assert!(get(&format!("/mail?network={network}")).contains("gus@example.org"));
    let pending = get(&format!("/networks/{network}/invitations"));
    assert!(
        row(&pending, "gus@example.org").contains("sent"),
        "{pending}"
    );
    assert!(
        row(&pending, "bounce@example.org").contains("failed"),
        "{pending}"
    );
}
