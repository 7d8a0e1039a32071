//! A person's side of the appliance's pages and sign-in: a browser that trusts the
//! server's CA, GET and POST of the server-rendered pages, and a device sign-in.

use super::Server;
use serde_json::json;

/// A browser that trusts `server`'s CA and does not follow redirects.
pub fn browser(server: &Server) -> reqwest::blocking::Client {
    let pem = std::fs::read(&server.ca).unwrap();
    reqwest::blocking::Client::builder()
        .use_rustls_tls()
        // HTTP/1.1, as the harness always spoke: an idle HTTP/2 connection would hold
        // the server's graceful stop for http.shutdown_timeout_secs.
        .http1_only()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// GET a page: (status, HTML).
pub fn page(c: &reqwest::blocking::Client, url: &str) -> (u16, String) {
    let r = c.get(url).send().unwrap();
    let status = r.status().as_u16();
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/html"), "{ct}");
    (status, r.text().unwrap())
}

/// POST a page's form: (status, HTML).
pub fn submit(c: &reqwest::blocking::Client, url: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let r = c.post(url).form(fields).send().unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

/// Signs a new device in with a password: the answer's HTTP status.
pub fn sign_in(server: &Server, email: &str, password: &str) -> u16 {
    server
        .anon()
        .try_post(
            "/api/v1/devices",
            &json!({"username": email, "password": password,
                    "device": {"name": "laptop", "platform": "linux", "client_version": "test"}}),
        )
        .unwrap()
        .status
}
