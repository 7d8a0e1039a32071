//! A real OpenID Connect provider for tests — `tests/js/oidc-op.mjs` (oidc-provider,
//! installed by `scripts/test-deps` into `tests/js/node_modules`) on a free loopback
//! port — and a person's browser at it: [`authorize`] follows the provider's redirects
//! with a cookie jar (it logs in as the `login_hint` and consents by itself) until it
//! sends the browser back to outpost.
//!
//! `Provider::builder(redirect).start()` waits until discovery answers; `stop` and
//! `restart` (same port, every session, code and refresh token forgotten) take it down
//! and bring it back; dropping it kills it.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const READY_WITHIN: Duration = Duration::from_secs(20);

fn script() -> PathBuf {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/js"));
    assert!(
        dir.join("node_modules/oidc-provider").is_dir(),
        "{} is missing: run scripts/test-deps (the README's test command does), which runs \
         npm ci there",
        dir.join("node_modules/oidc-provider").display()
    );
    dir.join("oidc-op.mjs")
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Builder {
    redirects: Vec<String>,
    id_token_ttl: Option<u64>,
    tls: Option<(PathBuf, PathBuf)>,
    conform: bool,
}

impl Builder {
    /// ID tokens valid this many seconds (default 3600).
    pub fn id_token_ttl(mut self, secs: u64) -> Self {
        self.id_token_ttl = Some(secs);
        self
    }

    /// Serve HTTPS with this certificate and key (PEM files).
    pub fn https(mut self, cert: PathBuf, key: PathBuf) -> Self {
        self.tls = Some((cert, key));
        self
    }

    /// Put the profile and e-mail claims only in /me, not in the ID token.
    pub fn conform(mut self) -> Self {
        self.conform = true;
        self
    }

    pub fn start(self) -> Provider {
        let mut args = vec![script().display().to_string()];
        let port = free_port();
        args.extend(["--port".into(), port.to_string()]);
        for r in &self.redirects {
            args.extend(["--redirect".into(), r.clone()]);
        }
        if let Some(ttl) = self.id_token_ttl {
            args.extend(["--id-token-ttl".into(), ttl.to_string()]);
        }
        if let Some((cert, key)) = &self.tls {
            args.extend([
                "--https".into(),
                cert.display().to_string(),
                key.display().to_string(),
            ]);
        }
        if self.conform {
            args.push("--conform".into());
        }
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut p = Provider {
            child: None,
            args,
            port,
            issuer: format!("{scheme}://127.0.0.1:{port}"),
        };
        p.spawn();
        p
    }
}

pub struct Provider {
    child: Option<Child>,
    args: Vec<String>,
    pub port: u16,
    /// `http://127.0.0.1:PORT` (or https).
    pub issuer: String,
}

impl Provider {
    /// A provider whose clients may redirect to `redirect` (outpost's callback).
    pub fn builder(redirect: &str) -> Builder {
        Builder {
            redirects: vec![redirect.to_string()],
            id_token_ttl: None,
            tls: None,
            conform: false,
        }
    }

    fn spawn(&mut self) {
        let mut child = Command::new("node")
            .args(&self.args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run node (scripts/test-deps installs it)");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) if line.starts_with("ready ") => break,
                Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("the OpenID Connect provider exited: {:?}", child.wait())
                }
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the OpenID Connect provider did not start within {READY_WITHIN:?}");
            }
        }
        self.child = Some(child);
        // Ready when discovery answers (the certificate is checked by the tests).
        let probe = reqwest::blocking::Client::builder()
            .use_rustls_tls()
            .danger_accept_invalid_certs(true)
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let discovery = format!("{}/.well-known/openid-configuration", self.issuer);
        while !probe
            .get(&discovery)
            .send()
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(
                Instant::now() < deadline,
                "{discovery} did not answer within {READY_WITHIN:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stop it (SIGTERM, then wait).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let _ = c.wait();
        }
    }

    /// Stop it and start a fresh one on the same port: every session, code and refresh
    /// token is forgotten, and it signs with a new key.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A person's browser at the provider: keeps cookies, follows nothing by itself, and
/// trusts `extra_ca` (a private provider's CA) besides the system's roots.
pub fn browser(extra_ca: Option<&std::path::Path>) -> reqwest::blocking::Client {
    let mut b = reqwest::blocking::Client::builder()
        .use_rustls_tls()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none());
    if let Some(ca) = extra_ca {
        let pem = std::fs::read(ca).unwrap();
        b = b.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
    }
    b.build().unwrap()
}

/// Follow the provider's redirects from `authorization_url` until one leads away from
/// it (to `back_to`, outpost's callback); returns that URL.
pub fn authorize(
    browser: &reqwest::blocking::Client,
    authorization_url: &str,
    back_to: &str,
) -> String {
    let mut url = authorization_url.to_string();
    for _ in 0..10 {
        let r = browser.get(&url).send().expect("the provider answers");
        let location = r
            .headers()
            .get("location")
            .unwrap_or_else(|| {
                panic!(
                    "the provider answered {} without a redirect at {url}",
                    r.status()
                )
            })
            .to_str()
            .unwrap()
            .to_string();
        let next = reqwest::Url::parse(&url).unwrap().join(&location).unwrap();
        if next.as_str().starts_with(back_to) {
            return next.to_string();
        }
        url = next.to_string();
    }
    panic!("the provider did not send the browser back to {back_to}");
}

/// A query parameter of a URL.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// A PKCE verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use sha2::Digest;
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}
