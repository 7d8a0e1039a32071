//! Single sign-on through a real OpenID Connect provider (oidc-provider, started per
//! test on a free port): the administrator's configuration and connection test, a
//! person's sign-in with PKCE driven hop by hop over HTTP (as a browser would, with a
//! cookie jar), the device token it ends in, what SSO does to passwords and existing
//! sessions, single use of states and grants, a private issuer behind its own CA, and
//! token refresh with and without a grace period.

mod common;

use common::oidc::{self, Provider, authorize, pkce, query_param};
use common::pages::{browser, page};
use common::people;
use common::{Api, Server};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const COMPANY: &str = "Acme_Corp";

struct World {
    server: Server,
    owner: Api,
    network: String,
    idp: Provider,
}

impl World {
    fn new(idp: impl FnOnce(oidc::Builder) -> oidc::Builder) -> World {
        World::with_server(Server::builder(), idp)
    }

    fn with_server(
        server: common::Builder,
        idp: impl FnOnce(oidc::Builder) -> oidc::Builder,
    ) -> World {
        let server = server.env("OUTPOST_SSO_REFRESH_CHECK_SECS", "1").start();
        let owner = server.owner();
        let network = owner.first_network();
        let idp = idp(Provider::builder(&format!("{}/sso/callback", server.url))).start();
        World {
            server,
            owner,
            network,
            idp,
        }
    }

    fn sso_path(&self) -> String {
        format!("/networks/{}/sso", self.network)
    }

    /// Configure SSO for the provider (confidential client, email claim, on), with
    /// `extra` fields replacing those.
    fn configure(&self, extra: Value) -> Value {
        let mut body = json!({
            "company_id": COMPANY,
            "issuer": self.idp.issuer,
            "client_id": "outpost",
            "client_secret": "outpost-secret",
            "enabled": true,
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.owner.put(&self.sso_path(), &body).ok()
    }

    /// Start a sign-in; returns the client's verifier and the answer.
    fn start(&self, hint: &str, redirect_uri: Option<&str>) -> (String, Value) {
        let (verifier, challenge) = pkce();
        let mut body =
            json!({"company_id": COMPANY, "login_hint": hint, "code_challenge": challenge});
        if let Some(r) = redirect_uri {
            body["redirect_uri"] = json!(r);
        }
        let started = self.server.anon().post("/api/v1/sso/start", &body).ok();
        (verifier, started)
    }

    /// The person signs in at the provider; returns the URL it sends them back to.
    fn at_provider(&self, started: &Value) -> String {
        authorize(
            &oidc::browser(None),
            started["authorization_url"].as_str().unwrap(),
            &format!("{}/sso/callback", self.server.url),
        )
    }

    /// Outpost's callback page for `url`: (status, HTML).
    fn callback(&self, url: &str) -> (u16, String) {
        page(&browser(&self.server), url)
    }

    /// Redeem a grant.
    fn redeem(&self, code: &str, verifier: &str) -> common::Resp {
        self.server
            .anon()
            .try_post(
                "/api/v1/sso/token",
                &json!({"code": code, "code_verifier": verifier, "name": "laptop",
                        "platform": "linux", "client_version": "test",
                        "keys": {"x25519": people::b64(32), "ed25519": people::b64(32)}}),
            )
            .unwrap()
    }

    /// A whole sign-in without a client listener (the page shows the grant): the
    /// device's sign-in answer.
    fn sign_in(&self, hint: &str) -> Value {
        let (verifier, started) = self.start(hint, None);
        let back = self.at_provider(&started);
        let (status, html) = self.callback(&back);
        assert_eq!(status, 200, "{html}");
        self.redeem(&grant_on_page(&html), &verifier).ok()
    }

    fn user(&self, username: &str) -> Value {
        self.owner
            .all_users(&self.network)
            .into_iter()
            .find(|u| u["username"] == username)
            .unwrap_or_else(|| panic!("{username} is in the directory"))
    }

    /// Wait (bounded) until `check` holds.
    fn eventually(&self, what: &str, mut check: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !check() {
            assert!(
                Instant::now() < deadline,
                "{what} did not happen:\n{}",
                self.server.lines.text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The grant a callback page shows.
fn grant_on_page(html: &str) -> String {
    let start = html
        .find("<pre id=\"code\">")
        .expect("the page shows a code")
        + 15;
    let end = start + html[start..].find("</pre>").unwrap();
    html[start..end].trim().to_string()
}

/// A device token's client API.
fn device(w: &World, signed_in: &Value) -> Api {
    w.server
        .anon()
        .with_token(signed_in["token"].as_str().unwrap())
}

#[test]
fn a_person_signs_in_through_the_identity_provider_and_the_device_works() {
    let w = World::new(|b| b);
    let saved = w.configure(json!({}));
    assert_eq!(saved["enabled"], true);
    assert_eq!(saved["client_secret_set"], true);
    assert_eq!(
        saved["redirect_uri"],
        format!("{}/sso/callback", w.server.url)
    );
    assert_eq!(saved["scopes"], "openid email profile offline_access");
    let shown = w.owner.get(&w.sso_path()).ok();
    assert!(!shown.to_string().contains("outpost-secret"), "{shown}");
    let audit = w.owner.get("/audit?event_name=RegisterOidcConfig").ok();
    assert!(!audit.to_string().contains("outpost-secret"), "{audit}");
    assert_eq!(audit["items"][0]["parameters"]["client_secret"], "********");

    // The client listens on loopback: the browser goes there with the grant.
    let listener = "http://127.0.0.1:53682/callback";
    let (verifier, started) = w.start("bob", Some(listener));
    let auth = started["authorization_url"].as_str().unwrap();
    assert!(
        auth.starts_with(&format!("{}/auth?", w.idp.issuer)),
        "{auth}"
    );
    assert_eq!(
        query_param(auth, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(query_param(auth, "login_hint").as_deref(), Some("bob"));
    assert!(query_param(auth, "nonce").is_some());
    let back = w.at_provider(&started);
    let r = browser(&w.server).get(&back).send().unwrap();
    assert_eq!(r.status(), 302);
    let to = r.headers()["location"].to_str().unwrap().to_string();
    assert!(to.starts_with(&format!("{listener}?code=osg_")), "{to}");
    let code = query_param(&to, "code").unwrap();
    let signed_in = w.redeem(&code, &verifier).ok();
    assert_eq!(signed_in["user"]["username"], "bob@example.test");
    assert!(signed_in["token"].as_str().unwrap().starts_with("od_"));

    // The token works like a password device's: REST and the stream.
    let d = device(&w, &signed_in);
    let me = d.get("/api/v1/me").ok();
    assert_eq!(me["device"]["name"], "laptop");
    assert!(me["device"]["x25519"].is_string());
    let mut stream = common::stream::Stream::websocket(&w.server.url, &w.server.ca);
    let ready = stream.authenticate(signed_in["token"].as_str().unwrap());
    assert_eq!(ready["device_id"], signed_in["device"]["id"]);

    // First sign-in provisioned an active user in the default group, named by the claims.
    let bob = w.user("bob@example.test");
    assert_eq!(bob["status"], "active");
    assert_eq!(bob["security_group_id"], w.owner.default_group(&w.network));
    assert_eq!(bob["first_name"], "bob");
    assert_eq!(bob["last_name"], "Example");
    assert_eq!(bob["has_password"], false);

    // Grants and the provider's answer work once.
    w.redeem(&code, &verifier).expect(400, "invalid_grant");
    let (status, html) = w.callback(&back);
    assert_eq!(status, 400);
    assert!(html.contains("unknown or expired"), "{html}");

    // A second sign-in finds the same user.
    let again = w.sign_in("bob");
    assert_eq!(again["user"]["id"], signed_in["user"]["id"]);
    // Account-takeover protection applies to SSO devices as to password ones.
    w.owner.set_group_settings(
        &w.network,
        json!({"security": {"account_takeover_protection": true}}),
    );
    let third = w.sign_in("bob");
    assert_eq!(third["device"]["status"], "pending_approval", "{third}");
    assert!(third["approval"].is_object(), "{third}");
    let log = w.server.lines.text();
    assert!(
        !log.contains("outpost-secret") && !log.contains(&code),
        "{log}"
    );
}

#[test]
fn a_pending_user_keeps_the_group_an_administrator_chose() {
    let w = World::new(|b| b);
    let group = w
        .owner
        .post(
            &format!("/networks/{}/security-groups", w.network),
            &json!({"name": "Field"}),
        )
        .ok();
    let carol = w
        .owner
        .post(
            &format!("/networks/{}/users", w.network),
            &json!({"email": "carol@example.test", "first_name": "Carol",
                    "security_group_id": group["id"]}),
        )
        .ok();
    assert_eq!(carol["status"], "pending");
    let link = carol["invitation"]["url"].as_str().unwrap().to_string();
    w.configure(json!({}));

    let signed_in = w.sign_in("carol");
    assert_eq!(signed_in["user"]["id"], carol["id"]);
    let after = w.user("carol@example.test");
    assert_eq!(after["status"], "active");
    assert_eq!(after["security_group_id"], group["id"]);
    assert_eq!(
        after["first_name"], "Carol",
        "names the admin gave are kept"
    );
    // Her registration link is used up by the sign-in.
    let (status, _) = page(&browser(&w.server), &link);
    assert_eq!(status, 404);

    // Users created while SSO is on get no registration link.
    let dave = w
        .owner
        .post(
            &format!("/networks/{}/users", w.network),
            &json!({"email": "dave@example.test"}),
        )
        .ok();
    assert!(dave["invitation"].is_null(), "{dave}");
}

#[test]
fn the_username_can_come_from_a_custom_claim_and_must_be_an_email_address() {
    let w = World::new(|b| b);
    w.configure(json!({"username_claim": "upn"}));
    let signed_in = w.sign_in("erin");
    assert_eq!(signed_in["user"]["username"], "erin@corp.example.test");

    // A claim whose value is not an e-mail address is refused with a page that says so.
    w.configure(json!({"username_claim": "preferred_username"}));
    let (_, started) = w.start("frank", None);
    let back = w.at_provider(&started);
    let (status, html) = w.callback(&back);
    assert_eq!(status, 403);
    assert!(html.contains("which is not an e-mail address"), "{html}");
    assert!(html.contains("preferred_username"), "{html}");
}

#[test]
fn a_claim_only_the_user_info_endpoint_gives_is_read_there() {
    // With conformIdTokenClaims the ID token carries only `sub`.
    let w = World::new(|b| b.conform());
    w.configure(json!({"username_claim": "upn"}));
    let signed_in = w.sign_in("gina");
    assert_eq!(signed_in["user"]["username"], "gina@corp.example.test");
}

#[test]
fn turning_sso_on_ends_sessions_and_passwords_give_way_to_it() {
    let w = World::new(|b| b);
    let alice = people::person(&w.server, &w.owner, &w.network, "alice@example.test");
    let pending = w
        .owner
        .post(
            &format!("/networks/{}/users", w.network),
            &json!({"email": "paul@example.test"}),
        )
        .ok();
    let link = pending["invitation"]["url"].as_str().unwrap().to_string();
    alice.api.get("/api/v1/me").ok();
    let mut stream = alice.connect();

    // Saving it switched off changes nothing for anyone.
    let off = w.configure(json!({"enabled": false}));
    assert_eq!(off["signed_out_devices"], 0);
    alice.api.get("/api/v1/me").ok();

    let on = w.configure(json!({"enabled": true}));
    assert_eq!(on["signed_out_devices"], 1);
    let e = stream.next_of("error");
    assert_eq!(e["code"], "device_revoked");
    assert!(stream.closes_within(Duration::from_secs(10)));
    alice.api.get("/api/v1/me").expect(401, "device_revoked");
    let n = w.owner.get(&format!("/networks/{}", w.network)).ok();
    assert_eq!(n["sso_enabled"], true);

    // Passwords are refused, naming the company id; links and resets too.
    let r = w
        .server
        .anon()
        .post(
            "/api/v1/devices",
            &json!({"username": "alice@example.test", "password": people::USER_PASSWORD,
                    "device": {"name": "x", "platform": "linux", "client_version": "t"}}),
        )
        .expect(403, "sso_required");
    assert!(r["message"].as_str().unwrap().contains(COMPANY), "{r}");
    let (status, html) = page(&browser(&w.server), &link);
    assert_eq!(status, 403, "{html}");
    assert!(html.contains(COMPANY), "{html}");
    let alice_id = w.user("alice@example.test")["id"]
        .as_str()
        .unwrap()
        .to_string();
    w.owner
        .post_empty(&format!(
            "/networks/{}/users/{alice_id}/password-reset",
            w.network
        ))
        .expect(403, "sso_required");
    w.owner
        .post_empty(&format!(
            "/networks/{}/users/{}/invitation",
            w.network,
            pending["id"].as_str().unwrap()
        ))
        .expect(403, "sso_required");
    w.owner
        .post_csv(
            &format!("/networks/{}/users/batch-suspend", w.network),
            "email\nalice@example.test\n",
        )
        .expect(422, "sso_enabled");

    // Alice signs in through the provider instead, as the same user.
    let signed_in = w.sign_in("alice");
    assert_eq!(signed_in["user"]["id"], alice.user_id);

    // A suspended user is refused at the callback with a page that says so.
    w.owner
        .post_empty(&format!("/networks/{}/users/{alice_id}/suspend", w.network))
        .ok();
    let (_, started) = w.start("alice", None);
    let back = w.at_provider(&started);
    let (status, html) = w.callback(&back);
    assert_eq!(status, 403);
    assert!(html.contains("is suspended"), "{html}");
}

#[test]
fn company_ids_are_unique_and_unknown_ones_are_not_configured() {
    let w = World::new(|b| b);
    let second = w.owner.post("/networks", &json!({"name": "Second"})).ok()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Nothing configured yet: the redirect URI is shown all the same.
    let v = w.owner.get(&format!("/networks/{second}/sso")).ok();
    assert_eq!(v["configured"], false);
    assert_eq!(v["redirect_uri"], format!("{}/sso/callback", w.server.url));
    w.configure(json!({}));
    let taken = w
        .owner
        .put(
            &format!("/networks/{second}/sso"),
            &json!({"company_id": "acme_CORP", "issuer": w.idp.issuer, "client_id": "x"}),
        )
        .expect(409, "company_id_taken");
    assert!(taken["message"].as_str().unwrap().contains("acme_CORP"));
    let bad = w
        .owner
        .put(
            &format!("/networks/{second}/sso"),
            &json!({"company_id": "no spaces", "issuer": "http://idp.example.org",
                    "client_id": "x", "scopes": "email", "refresh_grace_minutes": 15}),
        )
        .expect(422, "validation_failed");
    assert_eq!(bad["details"].as_array().unwrap().len(), 4, "{bad}");

    let anon = w.server.anon();
    let (_, challenge) = pkce();
    for company in ["Nobody", "acme corp"] {
        anon.post(
            "/api/v1/sso/start",
            &json!({"company_id": company, "code_challenge": challenge}),
        )
        .expect(404, "sso_not_configured");
    }
    // Case does not matter to people typing it.
    anon.post(
        "/api/v1/sso/start",
        &json!({"company_id": "ACME_corp", "code_challenge": challenge}),
    )
    .ok();
    // Switched off: the same answer as unknown.
    w.configure(json!({"enabled": false}));
    anon.post(
        "/api/v1/sso/start",
        &json!({"company_id": COMPANY, "code_challenge": challenge}),
    )
    .expect(404, "sso_not_configured");
    anon.post(
        "/api/v1/sso/start",
        &json!({"company_id": COMPANY, "code_challenge": "plain"}),
    )
    .expect(422, "invalid_code_challenge");
    anon.post(
        "/api/v1/sso/start",
        &json!({"company_id": COMPANY, "code_challenge": challenge,
                "redirect_uri": "https://evil.example/cb"}),
    )
    .expect(422, "invalid_redirect_uri");
}

#[test]
fn the_connection_test_reports_what_it_found_and_what_is_wrong() {
    let w = World::new(|b| b);
    let test = format!("/networks/{}/sso/test", w.network);
    w.owner
        .post_raw(&test, "application/json", Vec::new())
        .expect(404, "sso_not_configured");
    let good = json!({"company_id": COMPANY, "issuer": w.idp.issuer, "client_id": "outpost"});
    let r = w.owner.post(&test, &good).ok();
    assert_eq!(r["issuer"], w.idp.issuer);
    assert_eq!(r["pkce_s256"], true);
    assert_eq!(r["signing_keys"], 1);
    assert_eq!(r["token_endpoint"], format!("{}/token", w.idp.issuer));
    // The saved configuration, when the body is empty.
    w.configure(json!({"enabled": false}));
    let r = w.owner.post_raw(&test, "application/json", Vec::new()).ok();
    assert_eq!(r["jwks_uri"], format!("{}/jwks", w.idp.issuer));

    let mut wrong = good.clone();
    wrong["issuer"] = json!(format!("{}/", w.idp.issuer));
    let e = w
        .owner
        .post(&test, &wrong)
        .expect(422, "sso_connection_failed");
    assert!(
        e["message"].as_str().unwrap().contains("calls itself"),
        "{e}"
    );

    let mut unreachable = good.clone();
    unreachable["issuer"] = json!(format!("http://127.0.0.1:{}", oidc::free_port()));
    let e = w
        .owner
        .post(&test, &unreachable)
        .expect(422, "sso_connection_failed");
    assert!(
        e["message"].as_str().unwrap().contains("cannot connect"),
        "{e}"
    );
    // An auditor may look but not make the appliance call out.
    let auditor = w
        .owner
        .post(
            "/admins",
            &json!({"username": "audrey", "role": "auditor", "password": "Auditor-password-123"}),
        )
        .ok();
    assert_eq!(auditor["admin"]["role"], "auditor");
    let token = w.server.anon().sign_in("audrey", "Auditor-password-123");
    let audrey = w.owner.with_token(&token);
    audrey.get(&w.sso_path()).ok();
    audrey
        .post_raw(&test, "application/json", Vec::new())
        .expect(403, "access_denied");
}

#[test]
fn states_and_grants_are_single_use_and_the_verifier_must_match() {
    let w = World::new(|b| b);
    w.configure(json!({}));
    let c = browser(&w.server);
    let base = format!("{}/sso/callback", w.server.url);
    let (status, html) = page(&c, &base);
    assert_eq!(status, 400);
    assert!(html.contains("Start the sign-in again"), "{html}");
    let (status, html) = page(&c, &format!("{base}?code=x&state=forged"));
    assert_eq!(status, 400);
    assert!(html.contains("unknown or expired"), "{html}");

    // The provider's own refusal is shown, under the network's banner.
    w.owner.set_network_settings(
        &w.network,
        json!({"classification": {"level": "secret", "caveats": "noforn"}}),
    );
    let (_, started) = w.start("henry", None);
    let state = query_param(started["authorization_url"].as_str().unwrap(), "state").unwrap();
    let (status, html) = page(
        &c,
        &format!("{base}?error=access_denied&error_description=not+assigned&state={state}"),
    );
    assert_eq!(status, 403);
    assert!(
        html.contains("did not sign you in (access_denied: not assigned)"),
        "{html}"
    );
    assert_eq!(html.matches("SECRET//NOFORN").count(), 2, "{html}");

    // A wrong verifier uses the grant up.
    let (verifier, started) = w.start("henry", None);
    let back = w.at_provider(&started);
    let (_, html) = w.callback(&back);
    let code = grant_on_page(&html);
    let (other, _) = pkce();
    w.redeem(&code, &other).expect(400, "invalid_grant");
    w.redeem(&code, &verifier).expect(400, "invalid_grant");
    w.redeem("osg_unknown", &verifier)
        .expect(400, "invalid_grant");
}

#[test]
fn a_private_issuer_is_trusted_only_with_its_ca_certificate() {
    let certs_dir = tempfile::tempdir().unwrap();
    let certs = common::smtp::certificates(certs_dir.path());
    let w = World::new(|b| b.https(certs.cert.clone(), certs.key.clone()));
    assert!(w.idp.issuer.starts_with("https://"));
    let test = format!("/networks/{}/sso/test", w.network);
    let base = json!({"company_id": COMPANY, "issuer": w.idp.issuer, "client_id": "outpost"});
    let e = w
        .owner
        .post(&test, &base)
        .expect(422, "sso_connection_failed");
    assert!(
        e["message"].as_str().unwrap().contains("ca_certificate"),
        "{e}"
    );
    w.configure(json!({}));
    let (_, challenge) = pkce();
    w.server
        .anon()
        .post(
            "/api/v1/sso/start",
            &json!({"company_id": COMPANY, "code_challenge": challenge}),
        )
        .expect(503, "sso_unavailable");

    let ca = std::fs::read_to_string(&certs.ca).unwrap();
    w.configure(json!({"ca_certificate": ca}));
    let mut with_ca = base.clone();
    with_ca["ca_certificate"] = json!(ca);
    w.owner.post(&test, &with_ca).ok();
    let (verifier, started) = w.start("ivan", None);
    let back = authorize(
        &oidc::browser(Some(&certs.ca)),
        started["authorization_url"].as_str().unwrap(),
        &format!("{}/sso/callback", w.server.url),
    );
    let (status, html) = w.callback(&back);
    assert_eq!(status, 200, "{html}");
    let signed_in = w.redeem(&grant_on_page(&html), &verifier).ok();
    assert_eq!(signed_in["user"]["username"], "ivan@example.test");
}

#[test]
fn without_a_grace_period_an_unreachable_provider_signs_the_device_out() {
    let mut w = World::new(|b| b.id_token_ttl(5));
    w.configure(json!({"refresh_grace_minutes": 0}));
    let signed_in = w.sign_in("jane");
    let d = device(&w, &signed_in);
    d.get("/api/v1/me").ok();
    w.idp.stop();
    w.eventually("the device is signed out", || {
        d.get("/api/v1/me").status == 401
    });
    d.get("/api/v1/me").expect(401, "device_revoked");
    let events = w.owner.get("/audit?event_name=SsoSignOut").ok();
    let e = &events["items"][0];
    assert_eq!(e["parameters"]["device_id"], signed_in["device"]["id"]);
    assert_eq!(e["parameters"]["username"], "jane@example.test");
    assert!(
        e["parameters"]["reason"]
            .as_str()
            .unwrap()
            .contains("cannot be reached"),
        "{e}"
    );
}

#[test]
fn a_grace_period_keeps_the_device_until_the_provider_refuses_the_refresh() {
    let mut w = World::with_server(
        Server::builder().env("OUTPOST_LOG", "info,outpost::auth::sso=debug"),
        |b| b.id_token_ttl(5),
    );
    w.configure(json!({"refresh_grace_minutes": 30}));
    let signed_in = w.sign_in("kate");
    let d = device(&w, &signed_in);
    // Refreshes work while the provider is up (ID tokens live 5 seconds here).
    assert!(
        w.server
            .lines
            .wait_for("sso: refreshed a sign-in", Duration::from_secs(60))
            .is_some(),
        "{}",
        w.server.lines.text()
    );
    d.get("/api/v1/me").ok();

    // Down: kept within the grace period.
    w.idp.stop();
    assert!(
        w.server
            .lines
            .wait_for(
                "keeping the device within the grace period",
                Duration::from_secs(60)
            )
            .is_some(),
        "{}",
        w.server.lines.text()
    );
    d.get("/api/v1/me").ok();

    // Back, but it has forgotten every refresh token (its state is in memory): it answers
    // invalid_grant, and the device is signed out at once.
    w.idp.restart();
    w.eventually("the device is signed out", || {
        d.get("/api/v1/me").status == 401
    });
    let events = w.owner.get("/audit?event_name=SsoSignOut").ok();
    let reason = events["items"][0]["parameters"]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(reason.contains("invalid_grant"), "{reason}");
    // A new sign-in works against the new provider.
    w.sign_in("kate");
}

#[test]
fn the_client_command_signs_a_device_in_through_the_identity_provider() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let w = World::new(|b| b);
    w.configure(json!({}));
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("lena.json");
    let mut cli = Command::new(common::BIN)
        .args(["client", "--profile", profile.to_str().unwrap(), "login"])
        .args([
            "--url",
            &w.server.url,
            "--ca-cert",
            w.server.ca.to_str().unwrap(),
        ])
        .args([
            "--sso",
            COMPANY,
            "--email",
            "lena@example.test",
            "--device-name",
            "cli",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(cli.stderr.take().unwrap()).lines();
    let url = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.starts_with(&w.idp.issuer))
        .expect("the client prints the authorization URL");
    let back = authorize(
        &oidc::browser(None),
        &url,
        &format!("{}/sso/callback", w.server.url),
    );
    let r = browser(&w.server).get(&back).send().unwrap();
    assert_eq!(r.status(), 302);
    let to = r.headers()["location"].to_str().unwrap().to_string();
    assert!(to.starts_with("http://127.0.0.1:"), "{to}");
    // The browser arrives at the client's loopback listener.
    let page = reqwest::blocking::get(&to).unwrap().text().unwrap();
    assert!(page.contains("You are signed in"), "{page}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = cli.wait().unwrap();
    assert!(status.success(), "{}", rest.join("\n"));
    let (code, out, err) = common::outpost(
        &[
            "client",
            "--profile",
            profile.to_str().unwrap(),
            "whoami",
            "--json",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let me: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(me["user"]["username"], "lena@example.test");
    assert_eq!(me["device"]["name"], "cli");
}

#[test]
fn the_admin_command_configures_and_tests_single_sign_on() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let w = World::new(|b| b);
    let token = w.owner.token.clone().unwrap();
    let admin = |args: &[&str], stdin: &str| {
        let mut child = Command::new(common::BIN)
            .args(["admin", "--url", &w.server.url, "--token", &token])
            .args(["--ca-cert", w.server.ca.to_str().unwrap(), "--json", "sso"])
            .args(args)
            .env("OUTPOST_CLI_CONFIG", "/nonexistent/outpost-cli.toml")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "outpost admin sso {args:?}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str::<Value>(&text).unwrap()
    };
    let net = w.network.clone();
    let v = admin(
        &[
            "set",
            &net,
            "--company-id",
            COMPANY,
            "--issuer",
            &w.idp.issuer,
            "--client-id",
            "outpost",
            "--client-secret-stdin",
            "--username-claim",
            "upn",
        ],
        "outpost-secret\n",
    );
    assert_eq!(v["client_secret_set"], true);
    assert_eq!(v["enabled"], false);
    let report = admin(&["test", &net], "");
    assert_eq!(report["pkce_s256"], true);
    let v = admin(
        &["set", &net, "--enable", "--refresh-grace-minutes", "30"],
        "",
    );
    assert_eq!(
        (v["enabled"].clone(), v["refresh_grace_minutes"].clone()),
        (json!(true), json!(30))
    );
    assert_eq!(v["username_claim"], "upn", "what set leaves out is kept");
    let shown = admin(&["show", &net], "");
    assert_eq!(shown["company_id"], COMPANY);
    assert_eq!(
        w.sign_in("mia")["user"]["username"],
        "mia@corp.example.test"
    );
}
