//! The TURN client (`outpost::calling::client`) against a real TURN server: coturn's
//! `turnserver`, started by each test on free loopback ports with TURN REST credentials
//! (`--use-auth-secret`), loopback peers allowed and a relay range of its own picked at
//! random in 20000–32000 (below Linux's ephemeral ports). The peer is a UDP echo socket in
//! the test. Over UDP, TCP and TLS: allocate, create a permission, exchange data through
//! Send/Data indications and through a bound channel, refresh, release; and the refusals a
//! test suite relies on (401 wrong password, 437, 438 with a replayed nonce, 442) and UDP
//! retransmission.
//!
//! coturn is required: `scripts/test-deps` installs it; without it the tests fail saying so.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use outpost::calling::attributes::Attribute;
use outpost::calling::client::{
    AllocateOptions, Family, Incoming, Retransmit, TlsSettings, Transport, TurnClient, TurnError,
};
use outpost::calling::credentials::{self, Secret};
use outpost::calling::message::{Class, Message, MessageWriter, Method};
use tokio::net::UdpSocket;
use tokio::time::timeout;

const SECRET: &str = "coturn-test-secret";
const REALM: &str = "outpost.test";
const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const WAIT: Duration = Duration::from_secs(5);

/// `turnserver`'s path, or a failure that says how to install it.
fn turnserver() -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join("turnserver");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "turnserver (coturn) is not installed: run scripts/test-deps (the README's test \
         command does), or `apt-get install coturn`"
    );
}

/// A loopback port free for both UDP and TCP (coturn listens on both).
fn free_port() -> u16 {
    for _ in 0..100 {
        let tcp = std::net::TcpListener::bind((LOCALHOST, 0)).expect("bind a TCP port");
        let port = tcp.local_addr().expect("local address").port();
        if std::net::UdpSocket::bind((LOCALHOST, port)).is_ok() {
            return port;
        }
    }
    panic!("no loopback port free for both UDP and TCP");
}

/// A CA and a server certificate for "localhost" and 127.0.0.1 signed by it, as PEM files.
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "turn client test CA");
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca, &ca_key);
    let key = KeyPair::generate().expect("server key");
    let cert = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("server parameters")
        .signed_by(&key, &issuer)
        .expect("server certificate");
    let paths = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&paths.0, ca_cert.pem()).expect("write ca.pem");
    std::fs::write(&paths.1, cert.pem()).expect("write cert.pem");
    std::fs::write(&paths.2, key.serialize_pem()).expect("write key.pem");
    paths
}

/// A running `turnserver`, killed when dropped.
struct Coturn {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    tls_port: u16,
    relay: (u16, u16),
    ca: PathBuf,
}

impl Coturn {
    fn start() -> Coturn {
        Coturn::start_with(&[])
    }

    /// Starts coturn with these options added.
    fn start_with(extra: &[&str]) -> Coturn {
        let bin = turnserver();
        let dir = tempfile::Builder::new()
            .prefix("outpost-coturn-")
            .tempdir()
            .expect("temporary folder");
        let (ca, cert, key) = certificates(dir.path());
        let port = free_port();
        let tls_port = free_port();
        let start = 20_000 + rand::random_range(0..240u16) * 50;
        let relay = (start, start + 49);
        let log = std::fs::File::create(dir.path().join("turnserver.log")).expect("log file");
        let child = Command::new(bin)
            .args(["-n", "--no-cli", "--log-file", "stdout", "--simple-log"])
            .args(["--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1"])
            .args(["--listening-port", &port.to_string()])
            .args(["--tls-listening-port", &tls_port.to_string()])
            .args(["--min-port", &relay.0.to_string()])
            .args(["--max-port", &relay.1.to_string()])
            .args(["--use-auth-secret", "--static-auth-secret", SECRET])
            .args(["--realm", REALM, "--allow-loopback-peers"])
            .arg("--cert")
            .arg(&cert)
            .arg("--pkey")
            .arg(&key)
            .arg("--pidfile")
            .arg(dir.path().join("turnserver.pid"))
            .arg("--db")
            .arg(dir.path().join("turndb"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("log file")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("cannot run turnserver");
        let mut c = Coturn {
            child,
            dir,
            port,
            tls_port,
            relay,
            ca,
        };
        c.wait_ready();
        c
    }

    /// Ready when the TLS port accepts TCP and the UDP port answers a STUN Binding
    /// (coturn opens its listeners one after another, from several threads).
    fn wait_ready(&mut self) {
        let udp = std::net::UdpSocket::bind((LOCALHOST, 0)).expect("a UDP socket");
        udp.set_read_timeout(Some(Duration::from_millis(25)))
            .unwrap();
        let mut binding = Vec::new();
        MessageWriter::new(&mut binding, Method::BINDING, Class::Request, [7; 12]).finish();
        let mut buf = [0u8; 512];
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().expect("turnserver status") {
                panic!("turnserver exited ({status}):\n{}", self.log());
            }
            if std::net::TcpStream::connect((LOCALHOST, self.tls_port)).is_ok()
                && udp.send_to(&binding, (LOCALHOST, self.port)).is_ok()
                && udp.recv_from(&mut buf).is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("turnserver did not listen within 5 s:\n{}", self.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("turnserver.log")).unwrap_or_default()
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::new(LOCALHOST, self.port)
    }

    fn tls_addr(&self) -> SocketAddr {
        SocketAddr::new(LOCALHOST, self.tls_port)
    }

    fn transport(&self, kind: &str) -> (Transport, SocketAddr) {
        match kind {
            "udp" => (Transport::udp_from(LOCALHOST), self.addr()),
            "tcp" => (Transport::Tcp, self.addr()),
            "tls" => (
                Transport::Tls(TlsSettings::from_ca_file("localhost", &self.ca).expect("TLS")),
                self.tls_addr(),
            ),
            other => panic!("unknown transport {other}"),
        }
    }

    async fn client(&self, kind: &str, user: &str) -> TurnClient {
        let (username, password) = credentials_for(user);
        self.client_with(kind, &username, &password).await
    }

    async fn client_with(&self, kind: &str, username: &str, password: &str) -> TurnClient {
        let (transport, server) = self.transport(kind);
        TurnClient::connect(transport, server, username, password)
            .await
            .unwrap_or_else(|e| panic!("connect over {kind}: {e}"))
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// TURN REST credentials for `user`, valid for a day.
fn credentials_for(user: &str) -> (String, String) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let username = format!("{}:{user}", now + 86_400);
    let password = credentials::password(&Secret(SECRET.as_bytes().to_vec()), &username);
    (username, password)
}

/// A UDP peer that echoes every datagram to its sender; counts what it received.
async fn echo_peer() -> (SocketAddr, Arc<AtomicUsize>) {
    let socket = UdpSocket::bind((LOCALHOST, 0)).await.expect("peer socket");
    let addr = socket.local_addr().expect("peer address");
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            seen.fetch_add(1, Ordering::Relaxed);
            let _ = socket.send_to(&buf[..n], from).await;
        }
    });
    (addr, count)
}

async fn next(client: &mut TurnClient) -> Incoming {
    timeout(WAIT, client.recv())
        .await
        .expect("no peer data within 5 s")
        .expect("recv")
}

/// Allocate, permit the echo peer, exchange data both ways, refresh and release.
async fn round_trip(kind: &str) {
    let coturn = Coturn::start();
    let (peer, echoed) = echo_peer().await;
    let mut c = coturn.client(kind, "alice").await;
    let a = c
        .allocate(&AllocateOptions {
            lifetime: Some(900),
            ..AllocateOptions::default()
        })
        .await
        .unwrap_or_else(|e| panic!("allocate over {kind}: {e}\n{}", coturn.log()));
    assert_eq!(a.relayed.ip(), LOCALHOST, "{kind}: {a:?}");
    assert!(
        (coturn.relay.0..=coturn.relay.1).contains(&a.relayed.port()),
        "{kind}: relayed port {} outside {:?}",
        a.relayed.port(),
        coturn.relay
    );
    assert_eq!(a.mapped, c.local_addr().unwrap(), "{kind}");
    // Above the default (600 s) and below the maximum (3600 s): granted as asked.
    assert_eq!(a.lifetime, 900, "{kind}: {a:?}");
    assert_eq!(c.realm(), Some(REALM));
    assert!(c.nonce().is_some());
    assert_eq!(c.allocation(), Some(&a));

    c.create_permission(&[peer.ip()]).await.expect("permission");
    for i in 0..5u8 {
        let data = vec![i; 100 + usize::from(i)];
        c.send_indication(peer, &data).await.expect("send");
        match next(&mut c).await {
            Incoming::Data {
                peer: from,
                data: got,
            } => {
                assert_eq!(from, peer, "{kind}");
                assert_eq!(got, data, "{kind}");
            }
            other => panic!("{kind}: expected a Data indication, got {other:?}"),
        }
    }

    c.channel_bind(0x4000, peer).await.expect("channel bind");
    for i in 0..5u8 {
        // Odd lengths check the padding over TCP and TLS.
        let data = vec![0xC0 | i; 61 + usize::from(i)];
        c.send_channel_data(0x4000, &data).await.expect("send");
        match next(&mut c).await {
            Incoming::ChannelData { channel, data: got } => {
                assert_eq!(channel, 0x4000, "{kind}");
                assert_eq!(got, data, "{kind}");
            }
            other => panic!("{kind}: expected ChannelData, got {other:?}"),
        }
    }
    assert_eq!(echoed.load(Ordering::Relaxed), 10, "{kind}");

    assert_eq!(c.refresh(1200).await.expect("refresh"), 1200, "{kind}");
    assert_eq!(c.allocation().map(|a| a.lifetime), Some(1200));
    c.release().await.expect("release");
    assert_eq!(c.allocation(), None);
    assert_eq!(c.dropped(), 0);
}

#[tokio::test]
async fn udp_allocates_and_relays_both_ways() {
    round_trip("udp").await;
}

#[tokio::test]
async fn tcp_allocates_and_relays_both_ways() {
    round_trip("tcp").await;
}

#[tokio::test]
async fn tls_allocates_and_relays_both_ways() {
    round_trip("tls").await;
}

#[tokio::test]
async fn a_wrong_password_is_refused_with_401() {
    let coturn = Coturn::start();
    for kind in ["udp", "tcp", "tls"] {
        let (username, _) = credentials_for("mallory");
        let mut c = coturn
            .client_with(kind, &username, "not-the-password")
            .await;
        let e = c
            .allocate(&AllocateOptions::default())
            .await
            .expect_err("allocated with a wrong password");
        assert_eq!(e.code(), Some(401), "{kind}: {e}");
        assert!(
            matches!(
                e,
                TurnError::Refused {
                    method: "Allocate",
                    ..
                }
            ),
            "{e}"
        );
    }
}

#[tokio::test]
async fn a_second_allocation_on_the_same_connection_is_437() {
    let coturn = Coturn::start();
    let mut c = coturn.client("udp", "bob").await;
    c.allocate(&AllocateOptions::default())
        .await
        .expect("first allocation");
    let e = c
        .allocate(&AllocateOptions::default())
        .await
        .expect_err("second allocation");
    assert_eq!(e.code(), Some(437), "{e}");
    c.release().await.expect("release");
}

#[tokio::test]
async fn an_unsupported_transport_is_442() {
    // coturn answers 400 for a transport it does not know, and 442 for UDP when it does not
    // relay UDP.
    let coturn = Coturn::start_with(&["--no-udp-relay"]);
    let mut c = coturn.client("udp", "carol").await;
    let e = c
        .allocate(&AllocateOptions::default())
        .await
        .expect_err("allocated a UDP relay with --no-udp-relay");
    assert_eq!(e.code(), Some(442), "{e}");
    let e = c
        .allocate(&AllocateOptions {
            transport: 1,
            ..AllocateOptions::default()
        })
        .await
        .expect_err("allocated an ICMP relay");
    assert_eq!(e.code(), Some(400), "{e}");
}

#[tokio::test]
async fn address_family_and_dont_fragment_options_reach_the_server() {
    let coturn = Coturn::start();
    // Only an IPv4 relay address is configured.
    let mut c = coturn.client("udp", "grace").await;
    let e = c
        .allocate(&AllocateOptions {
            family: Some(Family::V6),
            ..AllocateOptions::default()
        })
        .await
        .expect_err("allocated an IPv6 relay");
    assert_eq!(e.code(), Some(440), "{e}");
    let a = c
        .allocate(&AllocateOptions {
            family: Some(Family::V4),
            dont_fragment: true,
            ..AllocateOptions::default()
        })
        .await
        .expect("IPv4 with DONT-FRAGMENT");
    assert!(a.relayed.is_ipv4());
    c.release().await.expect("release");
}

#[tokio::test]
async fn a_replayed_nonce_is_438_and_the_client_recovers() {
    let coturn = Coturn::start();
    let mut c = coturn.client("udp", "dave").await;
    c.allocate(&AllocateOptions::default())
        .await
        .expect("allocate");
    assert!(c.nonce().is_some());

    // Without the automatic retry the stale nonce is seen; the fresh one is kept.
    c.set_nonce("0123456789abcdef0123456789abcdef");
    let e = c
        .request_once(Method::REFRESH, &[Attribute::Lifetime(700)])
        .await
        .expect_err("a made-up nonce was accepted");
    assert_eq!(e.code(), Some(438), "{e}");
    assert_ne!(c.nonce(), Some("0123456789abcdef0123456789abcdef"));
    assert_eq!(c.refresh(700).await.expect("refresh"), 700);

    // With it, the request goes through after one 438.
    c.set_nonce("fedcba9876543210fedcba9876543210");
    assert_eq!(c.refresh(800).await.expect("refresh"), 800);
    assert!(c.nonce().is_some_and(|n| !n.starts_with("fedcba")));
    c.release().await.expect("release");
}

#[tokio::test]
async fn binding_and_raw_transactions_reach_the_server() {
    let coturn = Coturn::start();
    let mut c = coturn.client("udp", "erin").await;
    assert_eq!(c.binding().await.expect("binding"), c.local_addr().unwrap());

    let mut req = Vec::new();
    let tid = [0x42; 12];
    MessageWriter::new(&mut req, Method::BINDING, Class::Request, tid).finish();
    let resp = c.raw_transaction(&req).await.expect("raw binding");
    let msg = Message::parse(&resp).expect("a STUN response");
    assert_eq!(msg.class(), Class::Success);
    assert_eq!(msg.transaction_id(), &tid);
}

/// A UDP relay between one client and the server that drops the first `drop` datagrams
/// the client sends.
async fn lossy_proxy(server: SocketAddr, drop: usize) -> SocketAddr {
    let front = UdpSocket::bind((LOCALHOST, 0)).await.expect("proxy socket");
    let back = UdpSocket::bind((LOCALHOST, 0)).await.expect("proxy socket");
    back.connect(server).await.expect("proxy connect");
    let addr = front.local_addr().expect("proxy address");
    tokio::spawn(async move {
        let mut client = None;
        let mut dropped = 0;
        let (mut a, mut b) = (vec![0u8; 65_536], vec![0u8; 65_536]);
        loop {
            tokio::select! {
                r = front.recv_from(&mut a) => {
                    let Ok((n, from)) = r else { return };
                    client = Some(from);
                    if dropped < drop {
                        dropped += 1;
                    } else {
                        let _ = back.send(&a[..n]).await;
                    }
                }
                r = back.recv(&mut b) => {
                    let Ok(n) = r else { return };
                    if let Some(c) = client {
                        let _ = front.send_to(&b[..n], c).await;
                    }
                }
            }
        }
    });
    addr
}

#[tokio::test]
async fn lost_udp_requests_are_retransmitted() {
    let coturn = Coturn::start();
    let proxy = lossy_proxy(coturn.addr(), 2).await;
    let (username, password) = credentials_for("frank");
    let mut c = TurnClient::connect(Transport::udp_from(LOCALHOST), proxy, username, password)
        .await
        .expect("connect");
    c.set_retransmit(Retransmit {
        rto: Duration::from_millis(50),
        transmissions: 5,
    });
    let a = c
        .allocate(&AllocateOptions::default())
        .await
        .expect("allocate through a lossy path");
    assert_eq!(a.relayed.ip(), LOCALHOST);
    c.release().await.expect("release");
}

#[tokio::test]
async fn a_silent_server_times_out_after_every_retransmission() {
    let silent = UdpSocket::bind((LOCALHOST, 0)).await.expect("socket");
    let addr = silent.local_addr().unwrap();
    let mut c = TurnClient::connect(Transport::udp_from(LOCALHOST), addr, "u", "p")
        .await
        .expect("connect");
    c.set_retransmit(Retransmit {
        rto: Duration::from_millis(20),
        transmissions: 4,
    });
    let e = c.binding().await.expect_err("a silent server answered");
    assert!(
        matches!(e, TurnError::Timeout { method: "Binding", transmissions: 4, waited_ms } if waited_ms >= 280),
        "{e}"
    );
    let mut buf = [0u8; 1500];
    let mut got = 0;
    while let Ok(Ok(_)) = timeout(Duration::from_millis(50), silent.recv_from(&mut buf)).await {
        got += 1;
    }
    assert_eq!(got, 4, "the request went out {got} times, not 4");
}
