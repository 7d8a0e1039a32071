//! Start-up on embedded defaults, first-start credentials, restarts, the data-folder
//! lock, graceful shutdown, systemd notifications and configuration checking.

mod common;

use common::{Server, outpost};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

#[test]
fn first_start_prints_a_one_time_password_that_must_be_changed() {
    let mut s = Server::builder().random_password().start();
    let line = s
        .lines
        .wait_for("password:", Duration::from_secs(5))
        .expect("the banner names the password");
    let password = line.split_whitespace().last().unwrap().to_string();
    assert!(password.len() >= 16, "{line}");

    // It appears once, in the banner, never in a log line.
    let text = s.lines.text();
    assert_eq!(text.matches(&password).count(), 1, "{text}");
    assert!(text.contains("must be changed at the first sign-in"));

    let anon = s.anon();
    let r = anon.post(
        "/sessions",
        &json!({"username": "owner", "password": password}),
    );
    let v = r.ok();
    assert_eq!(v["must_change_password"], true);
    let api = anon.with_token(v["token"].as_str().unwrap());
    api.get("/networks").expect(403, "password_change_required");
    api.post(
        "/me/password",
        &json!({"current_password": "wrong-password-1", "new_password": "a brand new passphrase"}),
    )
    .expect(403, "current_password_incorrect");
    api.post(
        "/me/password",
        &json!({"current_password": password, "new_password": "short"}),
    )
    .expect(422, "validation_failed");
    api.post(
        "/me/password",
        &json!({"current_password": password, "new_password": "a brand new passphrase"}),
    )
    .ok();
    let nets = api.get("/networks").ok();
    assert_eq!(
        nets["items"].as_array().unwrap().len(),
        1,
        "the first network exists"
    );
    let net = &nets["items"][0];
    assert!(
        net["id"]
            .as_str()
            .unwrap()
            .chars()
            .all(|c| c.is_ascii_digit())
    );
    assert_eq!(net["id"].as_str().unwrap().len(), 8);
    let groups = api
        .get(&format!(
            "/networks/{}/security-groups",
            net["id"].as_str().unwrap()
        ))
        .ok();
    assert_eq!(groups["items"][0]["is_default"], true);

    // The old password no longer works; the audit log never saw either password.
    anon.post(
        "/sessions",
        &json!({"username": "owner", "password": password}),
    )
    .expect(401, "invalid_credentials");
    let export = api.get("/audit/export").text;
    assert!(!export.contains(&password) && !export.contains("a brand new passphrase"));
    assert!(export.contains("ChangeAdminPassword"));

    // The data folder is private and holds the store and the generated TLS identity.
    let mode = std::fs::metadata(&s.dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "data folder mode {mode:o}");
    for f in ["outpost.redb", "tls/ca.pem", "tls/cert.pem", "tls/key.pem"] {
        assert!(s.dir.join(f).is_file(), "{f}");
    }
    let key_mode = std::fs::metadata(s.dir.join("tls/key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o077, 0);
    s.stop();
}

#[test]
fn a_restart_reuses_the_certificate_and_bootstraps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::builder().dir(dir.path()).start();
    let network = s.owner().first_network();
    let cert = std::fs::read(dir.path().join("tls/cert.pem")).unwrap();
    s.stop();
    let mut again = Server::builder().dir(dir.path()).start();
    assert_eq!(
        cert,
        std::fs::read(dir.path().join("tls/cert.pem")).unwrap()
    );
    assert!(!again.lines.text().contains("first start"));
    let api = again.owner();
    let nets = api.get("/networks").ok();
    assert_eq!(nets["items"].as_array().unwrap().len(), 1);
    assert_eq!(api.first_network(), network);
    again.stop();
}

#[test]
fn a_second_server_on_the_same_data_folder_is_refused() {
    let s = Server::start();
    let dir = s.dir.to_str().unwrap().to_string();
    let (code, _, err) = outpost(
        &["serve", "--data-dir", &dir],
        &[("OUTPOST_HTTP_LISTEN", "127.0.0.1:0")],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("already in use by another outpost process"),
        "{err}"
    );
    assert!(err.contains(&format!("pid {}", s.pid())), "{err}");
    // The running server is unaffected.
    s.owner().get("/networks").ok();
}

#[test]
fn sigterm_lets_an_in_flight_bulk_import_finish_then_exits_cleanly() {
    let mut s = Server::start();
    let api = s.owner();
    let net = api.first_network();
    let csv = common::invite_csv("inflight", 20_000);
    let url = s.url.clone();
    let ca = s.ca.clone();
    let token = api.token.clone().unwrap();
    let upload = std::thread::spawn(move || {
        let api = common::Api::new(&url, &ca, Some(token));
        api.post_csv(&format!("/networks/{net}/users/batch-create"), csv)
    });
    // Give the upload time to reach the server, then ask it to stop.
    std::thread::sleep(Duration::from_millis(300));
    let status = s.signal_and_wait(libc::SIGTERM);
    let r = upload.join().unwrap();
    assert!(status.success(), "exit {status}: {}", s.lines.text());
    assert_eq!(r.status, 201, "the in-flight request finished: {}", r.text);
    assert_eq!(r.body["applied"], 20_000);
    assert!(s.lines.text().contains("stopped cleanly"));

    let again = s.restart();
    let api = again.owner();
    let counts = api
        .get(&format!("/networks/{}/users/count", api.first_network()))
        .ok();
    assert_eq!(counts["pending"], 20_000);
}

#[test]
fn sigint_stops_cleanly_too() {
    let mut s = Server::start();
    let status = s.signal_and_wait(libc::SIGINT);
    assert!(status.success());
    assert!(s.lines.text().contains("received SIGINT"));
}

#[test]
fn systemd_hears_ready_watchdog_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut s = Server::builder()
        .env("NOTIFY_SOCKET", sock_path.to_str().unwrap())
        .env("WATCHDOG_USEC", "400000")
        .start();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !(seen.iter().any(|m: &String| m.contains("READY=1"))
        && seen.iter().any(|m| m.contains("WATCHDOG=1")))
    {
        let n = sock.recv(&mut buf).expect("a notification arrives");
        seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    s.stop();
    loop {
        let n = sock.recv(&mut buf).expect("STOPPING arrives");
        let m = String::from_utf8_lossy(&buf[..n]).into_owned();
        if m.contains("STOPPING=1") {
            break;
        }
    }
}

#[test]
fn a_bad_bootstrap_password_is_refused_with_the_variable_named() {
    let err = Server::builder()
        .env("OUTPOST_BOOTSTRAP_ADMIN_PASSWORD", "short")
        .try_start()
        .err()
        .expect("refused");
    assert!(err.contains("OUTPOST_BOOTSTRAP_ADMIN_PASSWORD"), "{err}");
}

#[test]
fn config_check_names_bad_keys_and_redacts_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("c.toml");
    std::fs::write(&f, "[http]\nlisten = [\"127.0.0.1:9443\"]\nworkrs = 2\n").unwrap();
    let (code, _, err) = outpost(&["config", "check", "--config", f.to_str().unwrap()], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("workrs"), "{err}");

    std::fs::write(&f, "[metrics]\nbearer_token = \"scrape-secret-42\"\n").unwrap();
    let (code, out, err) = outpost(
        &["config", "check", "--config", f.to_str().unwrap()],
        &[("OUTPOST_ADMIN_SESSION_HOURS", "4")],
    );
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("scrape-secret-42"), "{out}");
    assert!(out.contains("bearer_token = \"********\""), "{out}");
    assert!(out.contains("session_hours = 4"), "{out}");

    let (code, _, err) = outpost(
        &["config", "check"],
        &[("OUTPOST_ADMIN_SESSION_HOURS", "many")],
    );
    assert_eq!(code, 1);
    assert!(err.contains("OUTPOST_ADMIN_SESSION_HOURS"), "{err}");
    let (code, _, err) = outpost(&["config", "check"], &[("OUTPOST_HTTP_LISTN", "x")]);
    assert_eq!(code, 1);
    assert!(err.contains("OUTPOST_HTTP_LISTN"), "{err}");

    // A server refuses to start on an invalid configuration, naming the key.
    std::fs::write(&f, "[admin]\nlockout_threshold = 0\n").unwrap();
    let err = Server::builder()
        .arg("--config")
        .arg(f.to_str().unwrap())
        .try_start()
        .err()
        .expect("refused");
    assert!(err.contains("admin.lockout_threshold"), "{err}");
}

#[test]
fn the_example_configuration_is_valid_and_names_every_option() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml.example");
    let (code, out, err) = outpost(&["config", "check", "--config", example], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("configuration is valid"));
    let text = std::fs::read_to_string(example).unwrap();
    let file: toml::Table = toml::from_str(&text).unwrap();
    let defaults = toml::Value::try_from(outpost::config::Config::default()).unwrap();
    fn keys(prefix: &str, v: &toml::Value, out: &mut Vec<String>) {
        if let toml::Value::Table(t) = v {
            for (k, child) in t {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                if child.is_table() {
                    keys(&p, child, out);
                } else {
                    out.push(p);
                }
            }
        }
    }
    let (mut want, mut have) = (Vec::new(), Vec::new());
    keys("", &defaults, &mut want);
    keys("", &toml::Value::Table(file), &mut have);
    want.sort();
    have.sort();
    assert_eq!(have, want, "config.toml.example must set every option");
}

#[test]
fn health_endpoints_answer_and_unknown_paths_get_json_404() {
    let s = Server::start();
    let anon = s.anon();
    let h = anon.get("/healthz").ok();
    assert_eq!(h["status"], "alive");
    let r = anon.get("/readyz").ok();
    assert_eq!(r["store"], "open");
    anon.get("/no/such/page").expect(404, "not_found");
    let page = anon.get("/");
    assert_eq!(page.status, 200);
    assert!(page.text.contains("/admin/api/v1/openapi.json"));
}

/// A CA and a server certificate for 127.0.0.1 signed by it, as PEM files in `dir`.
fn site_pki(
    dir: &std::path::Path,
    name: &str,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, format!("test CA {name}"));
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, &ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let (c, k, a) = (
        dir.join(format!("{name}-cert.pem")),
        dir.join(format!("{name}-key.pem")),
        dir.join(format!("{name}-ca.pem")),
    );
    std::fs::write(&c, leaf.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    std::fs::write(&a, ca_cert.pem()).unwrap();
    (c, k, a)
}

#[test]
fn site_certificates_are_used_and_reloaded_on_sighup() {
    let pki = tempfile::tempdir().unwrap();
    let (cert_a, key_a, ca_a) = site_pki(pki.path(), "a");
    let (cert_b, key_b, ca_b) = site_pki(pki.path(), "b");
    let live_cert = pki.path().join("site.pem");
    let live_key = pki.path().join("site-key.pem");
    std::fs::copy(&cert_a, &live_cert).unwrap();
    std::fs::copy(&key_a, &live_key).unwrap();
    let s = Server::builder()
        .env("OUTPOST_TLS_CERT_FILE", live_cert.to_str().unwrap())
        .env("OUTPOST_TLS_KEY_FILE", live_key.to_str().unwrap())
        .ca(&ca_a)
        .start();
    assert!(
        !s.dir.join("tls/ca.pem").exists(),
        "no CA is generated when site certificates are set"
    );
    let trusting_b = common::Api::new(&s.url, &ca_b, None);
    assert!(
        trusting_b
            .http
            .get(format!("{}/healthz", s.url))
            .send()
            .is_err()
    );

    // Install the new certificate and reload without a restart.
    std::fs::copy(&cert_b, &live_cert).unwrap();
    std::fs::copy(&key_b, &live_key).unwrap();
    unsafe {
        libc::kill(s.pid(), libc::SIGHUP);
    }
    s.lines
        .wait_for("TLS certificate reloaded", Duration::from_secs(10))
        .expect("the reload is logged");
    let r = trusting_b
        .http
        .get(format!("{}/healthz", s.url))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let trusting_a = common::Api::new(&s.url, &ca_a, None);
    assert!(
        trusting_a
            .http
            .get(format!("{}/healthz", s.url))
            .send()
            .is_err()
    );
}
