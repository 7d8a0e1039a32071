//! Test harness: start the real `outpost` binary on an ephemeral loopback port in a
//! temporary data folder, and talk to it over HTTPS as a client would.
//!
//! `Server::start()` waits until the server logs its listening address and answers
//! `/readyz`; dropping a `Server` kills it. `Api` wraps a blocking HTTPS client that
//! trusts the server's generated CA.
#![allow(dead_code)]

pub mod browser;
pub mod calling;
pub mod oidc;
pub mod pages;
pub mod people;
pub mod s3;
pub mod session;
pub mod smtp;
pub mod stream;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub const PASSWORD: &str = "test-owner-password-123";
pub const BIN: &str = env!("CARGO_BIN_EXE_outpost");

/// Lines the server wrote to stderr, and a way to wait for one.
#[derive(Clone, Default)]
pub struct Lines(Arc<(Mutex<Vec<String>>, Condvar)>);

impl Lines {
    pub fn all(&self) -> Vec<String> {
        self.0.0.lock().unwrap().clone()
    }

    pub fn text(&self) -> String {
        self.all().join("\n")
    }

    /// Wait (up to `timeout`) for a line containing `needle`; returns it.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.0;
        let mut lines = lock.lock().unwrap();
        loop {
            if let Some(l) = lines.iter().find(|l| l.contains(needle)) {
                return Some(l.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            lines = cv.wait_timeout(lines, deadline - now).unwrap().0;
        }
    }
}

pub struct Builder {
    dir: Option<PathBuf>,
    env: Vec<(String, String)>,
    args: Vec<String>,
    password: Option<String>,
    ca: Option<PathBuf>,
}

impl Builder {
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.into());
        self
    }

    /// Use this data folder (kept after the server stops).
    pub fn dir(mut self, d: &Path) -> Self {
        self.dir = Some(d.to_path_buf());
        self
    }

    /// Trust this CA file instead of the generated `tls/ca.pem` (site certificates).
    pub fn ca(mut self, ca: &Path) -> Self {
        self.ca = Some(ca.to_path_buf());
        self
    }

    /// Start without OUTPOST_BOOTSTRAP_ADMIN_PASSWORD (a one-time password is printed).
    pub fn envs(mut self, env: &[(&str, &str)]) -> Self {
        for (k, v) in env {
            self = self.env(k, v);
        }
        self
    }

    pub fn random_password(mut self) -> Self {
        self.password = None;
        self
    }

    pub fn start(self) -> Server {
        self.try_start()
            .unwrap_or_else(|s| panic!("the server did not start:\n{s}"))
    }

    /// Start; on failure return what the server printed.
    pub fn try_start(self) -> Result<Server, String> {
        let tmp = match &self.dir {
            Some(_) => None,
            None => Some(tempfile::tempdir().unwrap()),
        };
        let dir = self
            .dir
            .clone()
            .unwrap_or_else(|| tmp.as_ref().unwrap().path().to_path_buf());
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(&dir)
            .args(&self.args)
            .env_remove("NOTIFY_SOCKET")
            .env("OUTPOST_HTTP_LISTEN", "127.0.0.1:0")
            .env("OUTPOST_HTTP_WORKERS", "1")
            // Tests run servers side by side: the calling relay's fixed ports would
            // clash. Calling tests turn it on with ports of their own.
            .env("OUTPOST_CALLING_ENABLED", "false")
            .env("OUTPOST_HTTP_SHUTDOWN_TIMEOUT_SECS", "5")
            .env("OUTPOST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        match &self.password {
            Some(p) => {
                cmd.env("OUTPOST_BOOTSTRAP_ADMIN_PASSWORD", p);
            }
            None => {
                cmd.env_remove("OUTPOST_BOOTSTRAP_ADMIN_PASSWORD");
            }
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn outpost");
        let lines = Lines::default();
        let stderr = child.stderr.take().unwrap();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let (lock, cv) = &*sink.0;
                lock.lock().unwrap().push(line);
                cv.notify_all();
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = loop {
            if let Some(l) = lines.wait_for("listening on https://", Duration::from_millis(100)) {
                let at = l.find("https://").unwrap();
                break l[at..]
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .trim_end_matches('"')
                    .to_string();
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("exited with {status}:\n{}", lines.text()));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(format!("no listening line within 30 s:\n{}", lines.text()));
            }
        };
        let server = Server {
            child: Some(child),
            _tmp: tmp,
            dir: dir.clone(),
            url,
            ca: self.ca.clone().unwrap_or_else(|| dir.join("tls/ca.pem")),
            lines,
            password: self.password.unwrap_or_default(),
        };
        server.wait_ready();
        Ok(server)
    }
}

pub struct Server {
    child: Option<Child>,
    _tmp: Option<tempfile::TempDir>,
    pub dir: PathBuf,
    pub url: String,
    pub ca: PathBuf,
    pub lines: Lines,
    pub password: String,
}

impl Server {
    pub fn builder() -> Builder {
        Builder {
            dir: None,
            env: Vec::new(),
            args: Vec::new(),
            password: Some(PASSWORD.into()),
            ca: None,
        }
    }

    pub fn start() -> Server {
        Server::builder().start()
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    fn wait_ready(&self) {
        let api = self.anon();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(r) = api.http.get(format!("{}/readyz", self.url)).send()
                && r.status().is_success()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("/readyz never answered 200:\n{}", self.lines.text());
    }

    /// A client with no session.
    pub fn anon(&self) -> Api {
        Api::new(&self.url, &self.ca, None)
    }

    /// A client signed in as the owner.
    pub fn owner(&self) -> Api {
        let api = self.anon();
        let token = api.sign_in("owner", &self.password);
        Api::new(&self.url, &self.ca, Some(token))
    }

    /// Send a signal and wait for the process to exit; returns its exit status.
    pub fn signal_and_wait(&mut self, sig: i32) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        unsafe {
            libc::kill(child.id() as i32, sig);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "the server did not exit after signal {sig}:\n{}",
                    self.lines.text()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM and wait; asserts a clean exit.
    pub fn stop(&mut self) {
        let s = self.signal_and_wait(libc::SIGTERM);
        assert!(s.success(), "unclean exit {s}:\n{}", self.lines.text());
    }

    /// SIGKILL: the crash case.
    pub fn kill(&mut self) {
        self.signal_and_wait(libc::SIGKILL);
    }

    /// Start another server on the same data folder (after this one stopped); it
    /// takes over the temporary folder.
    pub fn restart(mut self) -> Server {
        let tmp = self._tmp.take();
        let mut next = Server::builder().dir(&self.dir).start();
        next._tmp = tmp;
        next
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// An HTTP answer: status, parsed JSON body (Null if not JSON), raw text, headers.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub text: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Resp {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    #[track_caller]
    pub fn ok(self) -> Value {
        assert!(
            (200..300).contains(&self.status),
            "expected success, got {}: {}",
            self.status,
            self.text
        );
        self.body
    }

    #[track_caller]
    pub fn expect(self, status: u16, code: &str) -> Value {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.code(), code, "{}", self.text);
        assert!(
            self.body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "errors carry a message: {}",
            self.text
        );
        self.body
    }
}

pub struct Api {
    pub http: reqwest::blocking::Client,
    pub url: String,
    pub token: Option<String>,
}

impl Api {
    pub fn new(url: &str, ca: &Path, token: Option<String>) -> Api {
        let pem = std::fs::read(ca).expect("the server's CA file");
        let cert = reqwest::Certificate::from_pem(&pem).unwrap();
        let http = reqwest::blocking::Client::builder()
            .use_rustls_tls()
            // HTTP/1.1, as the harness always spoke: an idle HTTP/2 connection would hold
            // the server's graceful stop for http.shutdown_timeout_secs.
            .http1_only()
            .add_root_certificate(cert)
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        Api {
            http,
            url: url.to_string(),
            token,
        }
    }

    pub fn with_token(&self, token: &str) -> Api {
        Api {
            http: self.http.clone(),
            url: self.url.clone(),
            token: Some(token.to_string()),
        }
    }

    /// Send; `None` if the connection failed (the server is gone).
    fn try_send(&self, rb: reqwest::blocking::RequestBuilder) -> Option<Resp> {
        let rb = match &self.token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        };
        let r = rb.send().ok()?;
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().ok()?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Some(Resp {
            status,
            body,
            text,
            headers,
        })
    }

    fn send(&self, rb: reqwest::blocking::RequestBuilder) -> Resp {
        self.try_send(rb).expect("the request reaches the server")
    }

    pub fn try_post(&self, path: &str, body: &Value) -> Option<Resp> {
        self.try_send(self.http.post(self.u(path)).json(body))
    }

    pub fn try_post_csv(&self, path: &str, body: impl Into<Vec<u8>>) -> Option<Resp> {
        self.try_send(
            self.http
                .post(self.u(path))
                .header("content-type", "text/csv")
                .body(body.into()),
        )
    }

    /// Paths are admin API paths (`/networks`), except the server's own pages.
    fn u(&self, path: &str) -> String {
        let raw = path == "/"
            || [
                "/admin/", "/api/", "/metrics", "/healthz", "/readyz", "/static/", "/no/",
            ]
            .iter()
            .any(|p| path.starts_with(p));
        if raw {
            format!("{}{path}", self.url)
        } else {
            format!("{}/admin/api/v1{path}", self.url)
        }
    }

    pub fn get(&self, path: &str) -> Resp {
        self.send(self.http.get(self.u(path)))
    }
    pub fn delete(&self, path: &str) -> Resp {
        self.send(self.http.delete(self.u(path)))
    }
    pub fn post(&self, path: &str, body: &Value) -> Resp {
        self.send(self.http.post(self.u(path)).json(body))
    }
    pub fn post_empty(&self, path: &str) -> Resp {
        self.send(self.http.post(self.u(path)))
    }
    pub fn patch(&self, path: &str, body: &Value) -> Resp {
        self.send(self.http.patch(self.u(path)).json(body))
    }
    pub fn put(&self, path: &str, body: &Value) -> Resp {
        self.send(self.http.put(self.u(path)).json(body))
    }
    pub fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> Resp {
        self.send(
            self.http
                .post(self.u(path))
                .header("content-type", content_type)
                .body(body),
        )
    }
    pub fn post_csv(&self, path: &str, body: impl Into<Vec<u8>>) -> Resp {
        self.post_raw(path, "text/csv", body.into())
    }

    /// Sign in and return the token (panics on failure).
    pub fn sign_in(&self, username: &str, password: &str) -> String {
        let r = self.post(
            "/sessions",
            &json!({"username": username, "password": password}),
        );
        let v = r.ok();
        v["token"].as_str().unwrap().to_string()
    }

    /// The first network's id.
    /// The id of `network`'s default security group.
    pub fn default_group(&self, network: &str) -> String {
        let n = self.get(&format!("/admin/api/v1/networks/{network}")).ok();
        n["default_group_id"].as_str().unwrap().to_string()
    }

    /// Change settings of `network`'s default security group (a partial update).
    pub fn set_group_settings(&self, network: &str, settings: Value) {
        let group = self.default_group(network);
        self.patch(
            &format!("/admin/api/v1/networks/{network}/security-groups/{group}"),
            &json!({ "settings": settings }),
        )
        .ok();
    }

    /// Change `network`'s settings (a partial update).
    pub fn set_network_settings(&self, network: &str, settings: Value) {
        self.patch(
            &format!("/admin/api/v1/networks/{network}/settings"),
            &settings,
        )
        .ok();
    }

    pub fn first_network(&self) -> String {
        self.get("/networks").ok()["items"][0]["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Every user of a network, following the cursor.
    pub fn all_users(&self, network: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/networks/{network}/users?limit=1000&cursor={c}"),
                None => format!("/networks/{network}/users?limit=1000"),
            };
            let v = self.get(&path).ok();
            out.extend(v["items"].as_array().unwrap().iter().cloned());
            match v["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return out,
            }
        }
    }
}

/// Run the outpost binary with `args`, returning (status code, stdout, stderr).
pub fn outpost(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run outpost");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A CSV of `n` invite rows with e-mails `{prefix}{i}@example.test`.
pub fn invite_csv(prefix: &str, n: usize) -> String {
    let mut s = String::from("email,first_name,last_name,country_code,phone,security_group\n");
    for i in 0..n {
        s.push_str(&format!(
            "{prefix}{i}@example.test,First{i},Last{i},+44,0207 946 {:04},\n",
            i % 10000
        ));
    }
    s
}
