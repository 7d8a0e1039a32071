//! What the benchmarks share: running `outpost serve` on an ephemeral loopback port in a
//! data folder of their own, noticing when it is ready (systemd's `READY=1` datagram and
//! `/readyz`), talking to its admin API over HTTPS as a client would (trusting the CA it
//! generated in `tls/ca.pem`), bulk-inviting users from generated CSV files, reading the
//! mail outbox, and stopping it with SIGTERM.
//!
//! Everything here is blocking: the HTTP client runs its requests on a small runtime of
//! its own, so the benchmarks read as straight-line scripts.

pub mod procstat;
pub mod seed;
pub mod smtp_sink;
pub mod stream;
pub mod wrk;

use anyhow::{Context, Result, anyhow, bail};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The server binary cargo built for this profile (optimized under `cargo bench`).
pub const OUTPOST: &str = env!("CARGO_BIN_EXE_outpost");

/// The owner account created on first start, and its password (set through
/// `OUTPOST_BOOTSTRAP_ADMIN_PASSWORD`, so it need not be changed at first sign-in).
pub const OWNER: &str = "owner";
pub const PASSWORD: &str = "bench-owner-password-2024";

/// The header of a bulk invite file.
pub const INVITE_HEADER: &str = "email,first_name,last_name,country_code,phone,security_group";

/// How long a server may take to start, or to stop after SIGTERM, before we give up.
const START_LIMIT: Duration = Duration::from_secs(120);
const STOP_LIMIT: Duration = Duration::from_secs(90);

/// Lines of the server's stderr kept to explain a failure.
const TAIL_LINES: usize = 40;

/// A running `outpost serve`, killed if dropped before [`Server::stop`].
pub struct Server {
    child: Option<Child>,
    /// When the process was spawned.
    pub spawned: Instant,
    pub data_dir: PathBuf,
    addr_rx: Receiver<SocketAddr>,
    addr: Option<SocketAddr>,
    ready_rx: Receiver<Instant>,
    ready_at: Option<Instant>,
    tail: Arc<Mutex<VecDeque<String>>>,
    stderr_thread: Option<JoinHandle<()>>,
    /// Holds the notify socket's folder (and the socket) until the server is gone.
    _notify_dir: tempfile::TempDir,
    _notify_socket: UnixDatagram,
}

impl Server {
    /// Spawn `outpost serve --data-dir DIR` on `127.0.0.1:0` and return at once; the
    /// clock for [`Server::wait_ready`] starts just before the spawn.
    pub fn spawn(data_dir: &Path) -> Result<Server> {
        Server::spawn_with(data_dir, None)
    }

    /// [`Server::spawn`] with `--config FILE` (the rest of the settings as there).
    pub fn spawn_with(data_dir: &Path, config: Option<&Path>) -> Result<Server> {
        let notify_dir = tempfile::Builder::new()
            .prefix("outpost-bench-notify")
            .tempdir()
            .context("cannot create a folder for the notify socket")?;
        let socket_path = notify_dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&socket_path)
            .with_context(|| format!("cannot bind {}", socket_path.display()))?;
        let listener = socket.try_clone()?;
        let (ready_tx, ready_rx) = mpsc::channel();
        // Records the moment the READY=1 datagram arrives, whatever the main thread does.
        std::thread::spawn(move || {
            let _ = listener.set_read_timeout(Some(START_LIMIT));
            let mut buf = [0u8; 4096];
            while let Ok(n) = listener.recv(&mut buf) {
                let now = Instant::now();
                let msg = String::from_utf8_lossy(&buf[..n]);
                if msg.lines().any(|l| l.trim() == "READY=1") {
                    let _ = ready_tx.send(now);
                    return;
                }
            }
        });

        let mut cmd = Command::new(OUTPOST);
        cmd.arg("serve").arg("--data-dir").arg(data_dir);
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        // Only our settings: an inherited OUTPOST_* variable could change the server.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("OUTPOST_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("OUTPOST_HTTP_LISTEN", "127.0.0.1:0")
            .env("OUTPOST_BOOTSTRAP_ADMIN_PASSWORD", PASSWORD)
            .env("NOTIFY_SOCKET", &socket_path)
            .env_remove("CREDENTIALS_DIRECTORY")
            .env_remove("JOURNAL_STREAM")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let spawned = Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot run {OUTPOST}"))?;
        let stderr = child.stderr.take().expect("stderr is piped");

        let tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES)));
        let (addr_tx, addr_rx) = mpsc::channel();
        let t = tail.clone();
        // Drains stderr (so the server never blocks on it), keeps its last lines and
        // reports the address from "listening on https://127.0.0.1:PORT".
        let stderr_thread = std::thread::spawn(move || {
            let mut sent = false;
            let mut reader = BufReader::new(stderr);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let line = String::from_utf8_lossy(&buf).trim_end().to_string();
                if !sent && let Some(addr) = listening_address(&line) {
                    let _ = addr_tx.send(addr);
                    sent = true;
                }
                let mut t = t.lock().expect("tail lock");
                if t.len() == TAIL_LINES {
                    t.pop_front();
                }
                t.push_back(line);
            }
        });

        Ok(Server {
            child: Some(child),
            spawned,
            data_dir: data_dir.to_path_buf(),
            addr_rx,
            addr: None,
            ready_rx,
            ready_at: None,
            tail,
            stderr_thread: Some(stderr_thread),
            _notify_dir: notify_dir,
            _notify_socket: socket,
        })
    }

    /// Spawn a server and wait until it has said READY=1.
    pub fn start(data_dir: &Path) -> Result<Server> {
        Server::start_with(data_dir, None)
    }

    /// [`Server::start`] with `--config FILE`.
    pub fn start_with(data_dir: &Path, config: Option<&Path>) -> Result<Server> {
        let mut s = Server::spawn_with(data_dir, config)?;
        s.wait_ready()?;
        Ok(s)
    }

    /// The address the server chose, once it has logged "listening on …".
    pub fn wait_addr(&mut self) -> Result<SocketAddr> {
        if let Some(a) = self.addr {
            return Ok(a);
        }
        let left = START_LIMIT.saturating_sub(self.spawned.elapsed());
        match self.addr_rx.recv_timeout(left) {
            Ok(a) => {
                self.addr = Some(a);
                Ok(a)
            }
            Err(_) => Err(self.failure("did not log \"listening on https://…\"")),
        }
    }

    /// Time from spawn to the READY=1 datagram.
    pub fn wait_ready(&mut self) -> Result<Duration> {
        if self.ready_at.is_none() {
            let deadline = self.spawned + START_LIMIT;
            loop {
                match self.ready_rx.recv_timeout(Duration::from_millis(50)) {
                    Ok(at) => {
                        self.ready_at = Some(at);
                        break;
                    }
                    Err(RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                        if let Some(status) = self.child_mut().try_wait()? {
                            return Err(
                                self.failure(&format!("exited ({status}) before sending READY=1"))
                            );
                        }
                    }
                    Err(_) => return Err(self.failure("did not send READY=1")),
                }
            }
        }
        let at = self.ready_at.expect("set above");
        Ok(at.duration_since(self.spawned))
    }

    /// `https://127.0.0.1:PORT`
    pub fn base_url(&mut self) -> Result<String> {
        Ok(format!("https://{}", self.wait_addr()?))
    }

    /// The CA certificate the server generated, which clients must trust.
    pub fn ca_file(&self) -> PathBuf {
        self.data_dir.join("tls").join("ca.pem")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("running")
    }

    /// The last lines the server wrote on stderr.
    pub fn stderr_tail(&self) -> String {
        let t = self.tail.lock().expect("tail lock");
        t.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    fn failure(&self, what: &str) -> anyhow::Error {
        anyhow!(
            "the server {what}; its last lines on stderr:\n{}",
            self.stderr_tail()
        )
    }

    /// Send SIGTERM and wait for a clean exit; returns how long stopping took.
    pub fn stop(mut self) -> Result<Duration> {
        let pid = self.pid() as libc::pid_t;
        let asked = Instant::now();
        // SAFETY: kill(2) with a pid we spawned and still hold (not yet reaped).
        if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
            bail!(
                "cannot send SIGTERM to the server: {}",
                std::io::Error::last_os_error()
            );
        }
        let status = loop {
            if let Some(s) = self.child_mut().try_wait()? {
                break s;
            }
            if asked.elapsed() > STOP_LIMIT {
                let _ = self.child_mut().kill();
                let _ = self.child_mut().wait();
                return Err(self.failure(&format!(
                    "did not stop within {} s of SIGTERM (killed)",
                    STOP_LIMIT.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let took = asked.elapsed();
        self.child = None;
        if let Some(t) = self.stderr_thread.take() {
            let _ = t.join();
        }
        check_exit(status).map_err(|e| self.failure(&e))?;
        Ok(took)
    }
}

fn check_exit(status: ExitStatus) -> std::result::Result<(), String> {
    if status.success() {
        Ok(())
    } else {
        Err(format!("did not stop cleanly ({status})"))
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

/// The address in a "listening on https://ADDR" log line.
fn listening_address(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("listening on https://")? + "listening on https://".len()..];
    let addr: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '[' | ']'))
        .collect();
    addr.parse().ok()
}

/// A blocking HTTPS client for one server, trusting only that server's CA.
pub struct Client {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    pub fn new(server: &mut Server) -> Result<Client> {
        let base = server.base_url()?;
        let ca = server.ca_file();
        let pem = std::fs::read(&ca).with_context(|| format!("cannot read {}", ca.display()))?;
        let cert = reqwest::Certificate::from_pem(&pem)
            .with_context(|| format!("{} is not a PEM certificate", ca.display()))?;
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(cert)
            .user_agent("outpost-bench")
            .connect_timeout(Duration::from_secs(10))
            // Under the server's 5 s keep-alive: between two calls nothing drives the
            // runtime, so a connection the server closed would only be noticed when
            // reused ("connection closed before message completed").
            .pool_idle_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(600))
            .build()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(Client {
            rt,
            http,
            base,
            token: None,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn token(&self) -> Result<&str> {
        self.token.as_deref().context("not signed in")
    }

    fn admin_url(&self, path: &str) -> String {
        format!("{}/admin/api/v1{path}", self.base)
    }

    /// Send a request; returns the status and body.
    fn send(&self, req: reqwest::RequestBuilder) -> Result<(u16, Vec<u8>)> {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        self.rt.block_on(async {
            let res = req.send().await?;
            let status = res.status().as_u16();
            let body = res.bytes().await?;
            Ok((status, body.to_vec()))
        })
    }

    /// A JSON call to the admin API that must answer `want`.
    fn call(
        &self,
        req: reqwest::RequestBuilder,
        what: &str,
        want: u16,
    ) -> Result<serde_json::Value> {
        let (status, body) = self.send(req).with_context(|| format!("{what} failed"))?;
        if status != want {
            let text = String::from_utf8_lossy(&body);
            let text: String = text.chars().take(2000).collect();
            bail!("{what} answered {status} (wanted {want}): {text}");
        }
        serde_json::from_slice(&body).with_context(|| format!("{what} did not answer JSON"))
    }

    /// GET an admin API path (relative to `/admin/api/v1`), expecting 200 and JSON.
    pub fn get(&self, path: &str) -> Result<serde_json::Value> {
        self.call(
            self.http.get(self.admin_url(path)),
            &format!("GET {path}"),
            200,
        )
    }

    /// POST JSON to an admin API path, expecting 201.
    pub fn create(&self, path: &str, body: &serde_json::Value) -> Result<serde_json::Value> {
        self.call(
            self.http.post(self.admin_url(path)).json(body),
            &format!("POST {path}"),
            201,
        )
    }

    /// GET /readyz once: true on 200.
    pub fn readyz(&self) -> bool {
        let req = self.http.get(format!("{}/readyz", self.base));
        matches!(self.send(req), Ok((200, _)))
    }

    /// Poll /readyz until it answers 200; returns when it did.
    pub fn wait_readyz(&self, limit: Duration) -> Result<Instant> {
        let deadline = Instant::now() + limit;
        loop {
            if self.readyz() {
                return Ok(Instant::now());
            }
            if Instant::now() > deadline {
                bail!("/readyz did not answer 200 within {} s", limit.as_secs());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Sign in as the owner and keep the bearer token.
    pub fn sign_in(&mut self) -> Result<()> {
        let v = self.create(
            "/sessions",
            &serde_json::json!({"username": OWNER, "password": PASSWORD}),
        )?;
        let token = v["token"]
            .as_str()
            .context("the session has no token")?
            .to_string();
        self.token = Some(token);
        Ok(())
    }

    /// The id of the first network (the one created on first start).
    pub fn first_network(&self) -> Result<String> {
        let v = self.get("/networks")?;
        v["items"][0]["id"]
            .as_str()
            .map(str::to_string)
            .context("GET /networks listed no network")
    }

    /// Create a network and return its id.
    pub fn create_network(&self, name: &str) -> Result<String> {
        let v = self.create("/networks", &serde_json::json!({"name": name}))?;
        v["id"]
            .as_str()
            .map(str::to_string)
            .context("the created network has no id")
    }

    /// Upload one bulk invite file; returns the number of users invited.
    pub fn batch_create(&self, network_id: &str, csv: String) -> Result<u64> {
        let path = format!("/networks/{network_id}/users/batch-create");
        let req = self
            .http
            .post(self.admin_url(&path))
            .header(reqwest::header::CONTENT_TYPE, "text/csv")
            .body(csv);
        let v = self.call(req, &format!("POST {path}"), 201)?;
        v["applied"]
            .as_u64()
            .context("the bulk result has no applied count")
    }

    /// One page of the mail outbox (`GET /mail/outbox`), newest first: the mails and
    /// the cursor of the next page, if any. `status` is `queued`, `sent` or `failed`.
    pub fn outbox_page(
        &self,
        status: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<serde_json::Value>, Option<String>)> {
        let mut path = format!("/mail/outbox?status={status}&limit={limit}");
        if let Some(c) = cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let mut v = self.get(&path)?;
        let items = match v["items"].take() {
            serde_json::Value::Array(items) => items,
            other => bail!("GET {path}: items is not a list: {other}"),
        };
        let next = v["next_cursor"].as_str().map(str::to_string);
        Ok((items, next))
    }

    /// Every mail of the outbox in `status`, paging through it 1,000 at a time.
    pub fn outbox_all(&self, status: &str) -> Result<Vec<serde_json::Value>> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let (items, next) = self.outbox_page(status, cursor.as_deref(), 1000)?;
            all.extend(items);
            match next {
                Some(c) => cursor = Some(c),
                None => return Ok(all),
            }
        }
    }

    /// The total number of users in a network.
    pub fn user_count(&self, network_id: &str) -> Result<u64> {
        let v = self.get(&format!("/networks/{network_id}/users/count"))?;
        v["total"].as_u64().context("the count has no total")
    }
}

/// The e-mail of user `i` in a file made with `prefix`; zero-padded so that the
/// directory's order (by e-mail) is the numeric order.
pub fn email(prefix: &str, i: usize) -> String {
    format!("{prefix}{i:06}@bench.example.com")
}

/// A bulk invite file for users `start..start+count`, with every column filled in
/// (the security group column empty: the network's default group).
pub fn invite_csv(prefix: &str, start: usize, count: usize) -> String {
    const FIRST: [&str; 8] = [
        "Alice", "Bruno", "Chloé", "Dmitri", "Emeka", "Fatima", "Gustav", "Hana",
    ];
    const LAST: [&str; 8] = [
        "Andersen", "Bianchi", "Correia", "Dubois", "Eriksen", "Fischer", "García", "Horvat",
    ];
    const COUNTRY: [&str; 4] = ["+44", "+49", "+33", "+1"];
    let mut out = String::with_capacity((count + 1) * 80);
    out.push_str(INVITE_HEADER);
    out.push('\n');
    for i in start..start + count {
        out.push_str(&format!(
            "{},{},{},{},7700 9{:05},\n",
            email(prefix, i),
            FIRST[i % FIRST.len()],
            LAST[(i / FIRST.len()) % LAST.len()],
            COUNTRY[i % COUNTRY.len()],
            i % 100_000,
        ));
    }
    out
}

/// One bulk invite file of users `start..start+count` (see [`invite_csv`]) uploaded
/// into a network, timed from sending the request to having read the whole answer
/// (generating the file is not timed); fails unless every row was applied. Returns the
/// time and the file's size in bytes.
pub fn invite_file(
    client: &Client,
    network_id: &str,
    prefix: &str,
    start: usize,
    count: usize,
) -> Result<(Duration, usize)> {
    let csv = invite_csv(prefix, start, count);
    let bytes = csv.len();
    let t = Instant::now();
    let applied = client.batch_create(network_id, csv)?;
    let took = t.elapsed();
    if applied != count as u64 {
        bail!("a bulk invite of {count} users into network {network_id} invited {applied}");
    }
    Ok((took, bytes))
}

/// Invite `batches` × `per_batch` users into a network, one file per batch; returns
/// the time each upload took.
pub fn populate(
    client: &Client,
    network_id: &str,
    prefix: &str,
    batches: usize,
    per_batch: usize,
) -> Result<Vec<Duration>> {
    let mut took = Vec::with_capacity(batches);
    for b in 0..batches {
        let (d, _) = invite_file(client, network_id, prefix, b * per_batch, per_batch)
            .with_context(|| format!("batch {}", b + 1))?;
        println!(
            "  populate: batch {:>2}/{batches}: {per_batch} users in {:.2} s",
            b + 1,
            d.as_secs_f64()
        );
        took.push(d);
    }
    Ok(took)
}

/// Start a server in `data_dir`, invite `batches` × `per_batch` users into its first
/// network through the API, check the count, and stop it cleanly.
pub fn populated_store(data_dir: &Path, batches: usize, per_batch: usize) -> Result<()> {
    let total = batches * per_batch;
    println!(
        "populating {} with {total} users ({batches} bulk invites of {per_batch})",
        data_dir.display()
    );
    let mut server = Server::start(data_dir)?;
    let mut client = Client::new(&mut server)?;
    client.sign_in()?;
    let net = client.first_network()?;
    let t = Instant::now();
    populate(&client, &net, "user", batches, per_batch)?;
    println!(
        "  populate: {total} users in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let n = client.user_count(&net)?;
    if n != total as u64 {
        bail!("the network holds {n} users, not {total}");
    }
    drop(client);
    let stop = server.stop()?;
    println!(
        "  stopped cleanly in {:.0} ms; store file {:.1} MiB",
        ms(stop),
        file_mib(&data_dir.join("outpost.redb"))
    );
    Ok(())
}

/// A file's size in MiB (0 if it cannot be read).
pub fn file_mib(path: &Path) -> f64 {
    std::fs::metadata(path)
        .map(|m| m.len() as f64 / (1024.0 * 1024.0))
        .unwrap_or(0.0)
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Minimum, median and maximum of a non-empty sample.
pub fn min_median_max(xs: &[f64]) -> (f64, f64, f64) {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    (v[0], median, v[n - 1])
}

/// Run a benchmark body; on error print it and exit non-zero.
pub fn main_with(body: fn() -> Result<String>) -> std::process::ExitCode {
    match body() {
        Ok(last_line) => {
            println!("{last_line}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// A fresh data folder under the system temporary folder, removed when dropped.
pub fn temp_data_dir(label: &str) -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(&format!("outpost-bench-{label}-"))
        .tempdir()
        .context("cannot create a temporary data folder")
}
