//! A real S3-compatible server for tests: moto's `moto_server` (installed by
//! `scripts/test-deps` into `$OUTPOST_TEST_DEPS/venv`) on a free loopback port.
//!
//! [`S3Server::start`] starts it and waits until `/moto-api/` answers;
//! [`S3Server::create_bucket`], [`S3Server::list`] and [`S3Server::get`] talk to it
//! with signed S3 requests (object_store, path-style), [`S3Server::stop`] and
//! [`S3Server::restart`] take it down and bring it back on the same port (moto keeps
//! its state in memory, so a restart starts empty: create the bucket again); dropping
//! it kills the process. moto accepts any access key and secret.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use object_store::ObjectStore;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;

/// How long the server may take to answer.
const READY_WITHIN: Duration = Duration::from_secs(30);

pub const ACCESS_KEY: &str = "AKIDOUTPOSTTEST";
pub const SECRET_KEY: &str = "outpost-test-secret-key";
pub const REGION: &str = "us-east-1";

fn moto_server() -> PathBuf {
    let deps = std::env::var("OUTPOST_TEST_DEPS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.test-deps")));
    let bin = deps.join("venv/bin/moto_server");
    assert!(
        bin.is_file(),
        "{} is missing: run scripts/test-deps (the README's test command does), which \
         installs moto there",
        bin.display()
    );
    bin
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A running moto server.
pub struct S3Server {
    child: Option<Child>,
    port: u16,
    runtime: tokio::runtime::Runtime,
}

impl S3Server {
    /// Start moto on a free loopback port.
    pub fn start() -> S3Server {
        let mut s = S3Server {
            child: None,
            port: free_port(),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime"),
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let child = Command::new(moto_server())
            .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        self.child = Some(child);
        let deadline = Instant::now() + READY_WITHIN;
        let client = reqwest::blocking::Client::new();
        loop {
            if let Ok(r) = client
                .get(format!("{}/moto-api/", self.endpoint()))
                .timeout(Duration::from_secs(2))
                .send()
                && r.status().is_success()
            {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("moto_server exited at start: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer within {READY_WITHIN:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn store(&self, bucket: &str) -> AmazonS3 {
        AmazonS3Builder::new()
            .with_endpoint(self.endpoint())
            .with_region(REGION)
            .with_bucket_name(bucket)
            .with_access_key_id(ACCESS_KEY)
            .with_secret_access_key(SECRET_KEY)
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .build()
            .expect("an S3 client")
    }

    /// Create `bucket` (path-style PUT /bucket, signed).
    pub fn create_bucket(&self, bucket: &str) {
        let url = format!("{}/{bucket}", self.endpoint());
        // moto does not check signatures: a plain PUT creates the bucket.
        let r = reqwest::blocking::Client::new()
            .put(&url)
            .send()
            .expect("create the bucket");
        assert!(r.status().is_success(), "creating {bucket}: {}", r.status());
    }

    /// Every key in `bucket` with its size, sorted.
    pub fn list(&self, bucket: &str) -> Vec<(String, u64)> {
        use futures_util::TryStreamExt;
        let store = self.store(bucket);
        let mut out: Vec<(String, u64)> = self.runtime.block_on(async {
            store
                .list(None)
                .map_ok(|m| (m.location.to_string(), m.size))
                .try_collect()
                .await
                .expect("list the bucket")
        });
        out.sort();
        out
    }

    /// The bytes of `key` in `bucket`.
    pub fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        let store = self.store(bucket);
        self.runtime.block_on(async {
            store
                .get(&ObjectPath::from(key))
                .await
                .expect("get the object")
                .bytes()
                .await
                .expect("read the object")
                .to_vec()
        })
    }

    /// Stop the server (the port stays reserved for [`S3Server::restart`]).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it again on the same port (empty: moto keeps state in memory).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}
