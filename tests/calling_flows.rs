//! The calling relay driven by outpost's TURN client (`outpost::calling::client`): a
//! browser-style call between two devices (credentials from the client API, allocations,
//! permissions, channels, media both ways, the call record), TURN over TLS on the HTTPS
//! port by ALPN, IPv6, the refusals (expired username, stale nonce, quotas, force-TCP,
//! suspension, unauthenticated floods, amplification), secret rotation, and 10,000
//! allocations held in the default 201-port range.

mod common;

use common::Server;
use common::calling::{LOCALHOST, SECRET, alice, credentials, relay_range, server_addr, user_pass};
use common::people::person;
use outpost::calling::attributes::{Attribute, Family};
use outpost::calling::client::{
    AllocateOptions, Incoming, Retransmit, TlsSettings, Transport, TurnClient, TurnError,
};
use outpost::calling::credentials::{self, Secret};
use outpost::calling::message::{Class, Message, MessageWriter, Method};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(5);

/// A calling server for this binary (relay ranges from 14000; `tests/calling.rs` uses
/// 10000–13999).
fn calling_server(extra: &[(&str, &str)]) -> Server {
    common::calling::calling_server(14_000, extra)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn udp_client(addr: SocketAddr, creds: &Value) -> TurnClient {
    let (u, p) = user_pass(creds);
    TurnClient::connect(Transport::udp_from(LOCALHOST), addr, u, p)
        .await
        .unwrap()
}

/// Waits for the next relayed data.
async fn next(c: &mut TurnClient) -> Incoming {
    timeout(WAIT, c.recv())
        .await
        .expect("relayed data within 5 s")
        .expect("relayed data")
}

fn code(e: &TurnError) -> u16 {
    e.code().unwrap_or_else(|| panic!("a refusal, not {e}"))
}

#[test]
fn a_browser_style_call_relays_media_both_ways_and_is_recorded() {
    let server = calling_server(&[]);
    let owner = server.owner();
    let network = owner.first_network();
    let alice = person(&server, &owner, &network, "alice@example.com");
    let bob = person(&server, &owner, &network, "bob@example.com");
    let dm = alice.dm(&bob);
    let a_creds = credentials(&alice, json!({"conversation_id": dm}));
    let b_creds = credentials(&bob, json!({"conversation_id": dm}));
    // Alice relays over UDP; Bob over TLS on the HTTPS port (ALPN stun.turn), as a device
    // behind a firewall that lets only HTTPS out would.
    let udp = server_addr(&a_creds, "turn:", "udp");
    let https = {
        let port: u16 = server.url.rsplit(':').next().unwrap().parse().unwrap();
        SocketAddr::new(LOCALHOST, port)
    };
    let urls = b_creds["ice_servers"][0]["urls"].to_string();
    assert!(
        urls.contains(&format!("turns:127.0.0.1:{}?transport=tcp", https.port())),
        "the HTTPS port is offered for TURN over TLS: {urls}"
    );
    let ca = server.ca.clone();
    runtime().block_on(async move {
        let mut a = udp_client(udp, &a_creds).await;
        let (bu, bp) = user_pass(&b_creds);
        let tls = TlsSettings::from_ca_file("localhost", &ca).unwrap();
        let mut b = TurnClient::connect(Transport::Tls(tls), https, bu, bp)
            .await
            .unwrap();
        let a_relay = a
            .allocate(&AllocateOptions::default())
            .await
            .unwrap()
            .relayed;
        let b_relay = b
            .allocate(&AllocateOptions::default())
            .await
            .unwrap()
            .relayed;
        assert_ne!(a_relay, b_relay);
        // ICE: each side permits the other's relayed address, then binds a channel to it.
        a.create_permission(&[b_relay.ip()]).await.unwrap();
        b.create_permission(&[a_relay.ip()]).await.unwrap();
        // Before channels: Send indications arrive as Data indications.
        a.send_indication(b_relay, b"offer-check").await.unwrap();
        assert_eq!(
            next(&mut b).await,
            Incoming::Data {
                peer: a_relay,
                data: b"offer-check".to_vec()
            }
        );
        a.channel_bind(0x4000, b_relay).await.unwrap();
        b.channel_bind(0x4001, a_relay).await.unwrap();
        for i in 0..20u8 {
            let audio = vec![i; 160];
            a.send_channel_data(0x4000, &audio).await.unwrap();
            assert_eq!(
                next(&mut b).await,
                Incoming::ChannelData {
                    channel: 0x4001,
                    data: audio.clone()
                }
            );
            let video = vec![i ^ 0xff; 1001];
            b.send_channel_data(0x4001, &video).await.unwrap();
            assert_eq!(
                next(&mut a).await,
                Incoming::ChannelData {
                    channel: 0x4000,
                    data: video
                }
            );
        }
        a.release().await.unwrap();
        b.release().await.unwrap();
    });
    // The call is recorded once its last allocation ends.
    let deadline = std::time::Instant::now() + WAIT;
    let calls = loop {
        let r = owner
            .get(&format!("/admin/api/v1/networks/{network}/calls"))
            .ok();
        if !r["items"].as_array().unwrap().is_empty() || std::time::Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let items = calls["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{calls}");
    let call = &items[0];
    assert_eq!(call["conversation_id"], dm.as_str());
    assert_eq!(call["allocations"], 2);
    let mut who: Vec<&str> = call["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    who.sort();
    let mut want = vec![alice.user_id.as_str(), bob.user_id.as_str()];
    want.sort();
    assert_eq!(who, want);
    // 11 + 20 × 160 from Alice, 20 × 1001 from Bob, each counted leaving one allocation
    // and arriving at the other.
    assert_eq!(
        call["bytes_relayed"],
        2 * (11 + 20 * 160 + 20 * 1001),
        "{call}"
    );
    assert!(call["ended_at"].as_u64() >= call["started_at"].as_u64());
}

#[test]
fn refusals_expired_username_stale_nonce_quota_and_force_tcp() {
    let server = calling_server(&[
        ("OUTPOST_CALLING_NONCE_LIFETIME_SECS", "1"),
        ("OUTPOST_CALLING_USER_QUOTA", "2"),
    ]);
    let owner = server.owner();
    let network = owner.first_network();
    let alice = person(&server, &owner, &network, "alice@example.com");
    let creds = credentials(&alice, json!({}));
    let udp = server_addr(&creds, "turn:", "udp");
    let tcp = server_addr(&creds, "turn:", "tcp");
    let uid = alice.user_id.clone();
    runtime().block_on(async {
        // An expired username, correctly signed: 401.
        let stale_user = format!("{}:{uid}", now() - 10);
        let pass = credentials::password(&Secret(SECRET.as_bytes().to_vec()), &stale_user);
        let mut c = TurnClient::connect(Transport::udp_from(LOCALHOST), udp, stale_user, pass)
            .await
            .unwrap();
        assert_eq!(
            code(&c.allocate(&AllocateOptions::default()).await.unwrap_err()),
            401
        );
        // A username for no user: 401.
        let ghost = format!("{}:no-such-user", now() + 600);
        let pass = credentials::password(&Secret(SECRET.as_bytes().to_vec()), &ghost);
        let mut c = TurnClient::connect(Transport::udp_from(LOCALHOST), udp, ghost, pass)
            .await
            .unwrap();
        assert_eq!(
            code(&c.allocate(&AllocateOptions::default()).await.unwrap_err()),
            401
        );

        // A stale nonce: 438, then the client's retry with the new nonce works.
        let mut a = udp_client(udp, &creds).await;
        a.allocate(&AllocateOptions::default()).await.unwrap();
        let old = a.nonce().unwrap().to_string();
        tokio::time::sleep(Duration::from_millis(2100)).await;
        a.set_nonce(old.clone());
        let refresh = [Attribute::Lifetime(600)];
        let e = a.request_once(Method::REFRESH, &refresh).await.unwrap_err();
        assert_eq!(code(&e), 438);
        assert_ne!(a.nonce().unwrap(), old, "the 438 carries a new nonce");
        a.request_once(Method::REFRESH, &refresh).await.unwrap();

        // The user quota (2): a third allocation gets 486.
        let mut b = udp_client(udp, &creds).await;
        b.allocate(&AllocateOptions::default()).await.unwrap();
        let mut c = udp_client(udp, &creds).await;
        let e = c.allocate(&AllocateOptions::default()).await.unwrap_err();
        assert_eq!(code(&e), 486);
        // A second Allocate on the same 5-tuple: 437.
        assert_eq!(
            code(&b.allocate(&AllocateOptions::default()).await.unwrap_err()),
            437
        );
        // Only UDP can be relayed: 442.
        let opts = AllocateOptions {
            transport: 6,
            ..AllocateOptions::default()
        };
        assert_eq!(code(&c.allocate(&opts).await.unwrap_err()), 442);
        a.release().await.unwrap();
        b.release().await.unwrap();
    });
    let metrics = server.anon().get("/metrics").text;
    for line in [
        "outpost_turn_auth_failures_total{reason=\"expired\"} 1",
        "outpost_turn_auth_failures_total{reason=\"unknown_user\"} 1",
        "outpost_turn_auth_failures_total{reason=\"stale_nonce\"} 1",
        "outpost_turn_quota_refusals_total{quota=\"user\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }

    // Force TCP: UDP allocations are refused (403), TCP ones work.
    owner.set_group_settings(&network, json!({"calling": {"force_tcp": true}}));
    let creds = credentials(&alice, json!({}));
    runtime().block_on(async {
        let mut u = udp_client(udp, &creds).await;
        let e = u.allocate(&AllocateOptions::default()).await.unwrap_err();
        assert_eq!(code(&e), 403, "{e}");
        let (user, pass) = user_pass(&creds);
        let mut t = TurnClient::connect(Transport::Tcp, tcp, user, pass)
            .await
            .unwrap();
        t.allocate(&AllocateOptions::default()).await.unwrap();
        t.release().await.unwrap();
    });
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn suspending_a_user_tears_down_their_allocations_within_seconds() {
    let server = calling_server(&[]);
    let owner = server.owner();
    let network = owner.first_network();
    let alice = person(&server, &owner, &network, "alice@example.com");
    let creds = credentials(&alice, json!({}));
    let udp = server_addr(&creds, "turn:", "udp");
    let tcp = server_addr(&creds, "turn:", "tcp");
    let rt = runtime();
    let (mut u, mut t, peer, peer_addr) = rt.block_on(async {
        let mut u = udp_client(udp, &creds).await;
        u.allocate(&AllocateOptions::default()).await.unwrap();
        let (user, pass) = user_pass(&creds);
        let mut t = TurnClient::connect(Transport::Tcp, tcp, user, pass)
            .await
            .unwrap();
        t.allocate(&AllocateOptions::default()).await.unwrap();
        let peer = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
        let peer_addr = peer.local_addr().unwrap();
        u.create_permission(&[LOCALHOST]).await.unwrap();
        u.send_indication(peer_addr, b"hello").await.unwrap();
        let mut buf = [0u8; 64];
        let (n, _) = timeout(WAIT, peer.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..n], b"hello");
        (u, t, peer, peer_addr)
    });
    owner
        .post_empty(&format!(
            "/admin/api/v1/networks/{network}/users/{}/suspend",
            alice.user_id
        ))
        .ok();
    rt.block_on(async {
        // Within seconds the UDP allocation is gone: it relays nothing more.
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut buf = [0u8; 64];
        loop {
            u.send_indication(peer_addr, b"probe").await.unwrap();
            if timeout(Duration::from_millis(300), peer.recv_from(&mut buf))
                .await
                .is_err()
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the allocation of a suspended user still relays after 5 s"
            );
        }
        u.send_indication(peer_addr, b"after").await.unwrap();
        assert!(
            timeout(Duration::from_millis(500), peer.recv_from(&mut buf))
                .await
                .is_err(),
            "nothing is relayed for a suspended user"
        );
        // Requests are refused: the account is suspended.
        assert_eq!(code(&u.refresh(600).await.unwrap_err()), 403);
        // The TCP connection of the torn-down allocation is closed.
        let closed = timeout(WAIT, async {
            loop {
                match t.refresh(600).await {
                    Err(TurnError::Closed) | Err(TurnError::Io { .. }) => return,
                    _ => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "the TCP connection closes");
        // New allocations are refused.
        let mut again = udp_client(udp, &creds).await;
        let e = again
            .allocate(&AllocateOptions::default())
            .await
            .unwrap_err();
        assert_eq!(code(&e), 403, "{e}");
    });
    let metrics = server.anon().get("/metrics").text;
    assert!(
        metrics.contains("outpost_turn_allocations_active{transport=\"udp\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("outpost_turn_allocations_active{transport=\"tcp\"} 0"),
        "{metrics}"
    );
}

#[test]
fn a_rotated_secret_keeps_issued_credentials_working_for_the_overlap() {
    // The secret is generated and kept in the store (no calling.secret).
    let (min, max) = relay_range(14_000);
    let server = Server::builder()
        .envs(&[
            ("OUTPOST_CALLING_ENABLED", "true"),
            ("OUTPOST_CALLING_LISTEN", "127.0.0.1:0"),
            ("OUTPOST_CALLING_TLS_LISTEN", ""),
            ("OUTPOST_CALLING_RELAY_PORT_MIN", &min),
            ("OUTPOST_CALLING_RELAY_PORT_MAX", &max),
        ])
        .start();
    let owner = server.owner();
    let network = owner.first_network();
    let alice = person(&server, &owner, &network, "alice@example.com");
    let before = credentials(&alice, json!({}));
    let status = owner.get("/admin/api/v1/calling").ok();
    assert_eq!(status["secret_source"], "store");
    assert_eq!(status["previous_secret_valid_until"], Value::Null);
    let rotated = owner.post_empty("/admin/api/v1/calling/secret/rotate").ok();
    assert!(rotated["previous_secret_valid_until"].is_string());
    let after = credentials(&alice, json!({}));
    assert_ne!(before["credential"], after["credential"]);
    let udp = server_addr(&before, "turn:", "udp");
    runtime().block_on(async {
        for creds in [&before, &after] {
            let mut c = udp_client(udp, creds).await;
            c.allocate(&AllocateOptions::default()).await.unwrap();
            c.release().await.unwrap();
        }
    });
    // Rotation is the owner's, and is audited.
    let audit = owner
        .get("/admin/api/v1/audit?event_name=RotateTurnSecret")
        .ok();
    assert_eq!(
        audit["items"].as_array().map(|a| a.len()),
        Some(1),
        "{audit}"
    );
}

#[test]
fn unauthenticated_floods_are_rate_limited_and_challenges_stay_small() {
    let server = calling_server(&[("OUTPOST_CALLING_UNAUTHENTICATED_PER_SECOND", "5")]);
    let (_, creds) = alice(&server);
    let udp = server_addr(&creds, "turn:", "udp");
    runtime().block_on(async {
        let s = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
        // 100 unauthenticated Allocates at once: about one second's budget is answered.
        let mut sizes = Vec::new();
        for i in 0..100u8 {
            let req = allocate_request([i; 12], 64);
            s.send_to(&req, udp).await.unwrap();
        }
        let mut buf = [0u8; 1500];
        while let Ok(Ok((n, _))) = timeout(Duration::from_millis(500), s.recv_from(&mut buf)).await
        {
            let msg = Message::parse(&buf[..n]).unwrap();
            assert_eq!(msg.class(), Class::Error);
            sizes.push(n);
        }
        assert!(
            (5..=15).contains(&sizes.len()),
            "answered {} of 100 with a budget of 5/s, burst 10",
            sizes.len()
        );
        // No answer is larger than its 64-byte request.
        assert!(sizes.iter().all(|&n| n <= 64), "{sizes:?}");
    });
    let metrics = server.anon().get("/metrics").text;
    assert!(
        !metrics.contains("outpost_turn_rate_limited_total 0\n"),
        "{metrics}"
    );
}

/// An unauthenticated Allocate request of exactly `len` bytes (SOFTWARE pads it).
fn allocate_request(tid: [u8; 12], len: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut w = MessageWriter::new(&mut buf, Method::ALLOCATE, Class::Request, tid);
    w.attr(&Attribute::RequestedTransport(17)).unwrap();
    let pad = len - 20 - 8 - 4;
    let software = "x".repeat(pad);
    w.attr(&Attribute::Software(&software)).unwrap();
    w.finish();
    assert_eq!(buf.len(), len);
    buf
}

#[test]
fn strict_amplification_leaves_small_unauthenticated_requests_unanswered() {
    let server = calling_server(&[("OUTPOST_CALLING_STRICT_AMPLIFICATION", "true")]);
    let (_, creds) = alice(&server);
    let udp = server_addr(&creds, "turn:", "udp");
    runtime().block_on(async {
        let s = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
        let mut buf = [0u8; 1500];
        // 36 bytes (a browser's first Allocate is about this size): no answer.
        s.send_to(&allocate_request([1; 12], 36), udp)
            .await
            .unwrap();
        assert!(
            timeout(Duration::from_millis(500), s.recv_from(&mut buf))
                .await
                .is_err()
        );
        // 100 bytes: the challenge, smaller than the request.
        s.send_to(&allocate_request([2; 12], 100), udp)
            .await
            .unwrap();
        let (n, _) = timeout(WAIT, s.recv_from(&mut buf)).await.unwrap().unwrap();
        assert!(n <= 100);
        // A Binding request is always answered.
        let mut req = Vec::new();
        MessageWriter::new(&mut req, Method::BINDING, Class::Request, [3; 12]).finish();
        s.send_to(&req, udp).await.unwrap();
        let (n, _) = timeout(WAIT, s.recv_from(&mut buf)).await.unwrap().unwrap();
        let msg = Message::parse(&buf[..n]).unwrap();
        assert_eq!(msg.class(), Class::Success);
        // An authenticating client whose requests are large enough still allocates.
        let mut c = udp_client(udp, &creds).await;
        c.allocate(&AllocateOptions {
            dont_fragment: true,
            ..AllocateOptions::default()
        })
        .await
        .map(|_| ())
        .unwrap_or_else(|e| {
            // The client's first Allocate may itself be smaller than the challenge.
            assert!(matches!(e, TurnError::Timeout { .. }), "{e}");
        });
    });
}

#[test]
fn ipv6_relayed_addresses_when_relay_ip6_is_set() {
    let server = calling_server(&[("OUTPOST_CALLING_RELAY_IP6", "::1")]);
    let (_, creds) = alice(&server);
    let udp = server_addr(&creds, "turn:", "udp");
    runtime().block_on(async {
        let mut c = udp_client(udp, &creds).await;
        let a = c
            .allocate(&AllocateOptions {
                family: Some(Family::V6),
                ..AllocateOptions::default()
            })
            .await
            .unwrap();
        assert!(a.relayed.is_ipv6(), "{a:?}");
        let peer = UdpSocket::bind("[::1]:0").await.unwrap();
        let peer_addr = peer.local_addr().unwrap();
        // An IPv4 peer for an IPv6 allocation: 443.
        let e = c.create_permission(&[LOCALHOST]).await.unwrap_err();
        assert_eq!(code(&e), 443);
        c.create_permission(&[peer_addr.ip()]).await.unwrap();
        c.channel_bind(0x4010, peer_addr).await.unwrap();
        c.send_channel_data(0x4010, b"six").await.unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = timeout(WAIT, peer.recv_from(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..n], b"six");
        assert_eq!(from, a.relayed);
        peer.send_to(b"back", from).await.unwrap();
        assert_eq!(
            next(&mut c).await,
            Incoming::ChannelData {
                channel: 0x4010,
                data: b"back".to_vec()
            }
        );
    });
    // Without relay_ip6, IPv6 is refused with 440.
    let server = calling_server(&[]);
    let (_, creds) = alice(&server);
    let udp = server_addr(&creds, "turn:", "udp");
    runtime().block_on(async {
        let mut c = udp_client(udp, &creds).await;
        let e = c
            .allocate(&AllocateOptions {
                family: Some(Family::V6),
                ..AllocateOptions::default()
            })
            .await
            .unwrap_err();
        assert_eq!(code(&e), 440);
    });
}

/// Raises this process's open-files limit to its hard limit.
fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local rlimit.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
    lim.rlim_cur
}

#[test]
fn ten_thousand_allocations_share_the_default_201_port_range() {
    const ALLOCATIONS: usize = 10_000;
    assert!(
        raise_nofile() >= (ALLOCATIONS + 500) as u64,
        "this test needs {} open files",
        ALLOCATIONS + 500
    );
    // The default range's size (201 ports) at another place, so tests can run side by side.
    let server = calling_server(&[
        ("OUTPOST_CALLING_USER_QUOTA", "20000"),
        ("OUTPOST_CALLING_TOTAL_QUOTA", "20000"),
        ("OUTPOST_CALLING_UNAUTHENTICATED_PER_SECOND", "100000"),
    ]);
    let owner = server.owner();
    let network = owner.first_network();
    let alice = person(&server, &owner, &network, "alice@example.com");
    let creds = credentials(&alice, json!({}));
    let udp = server_addr(&creds, "turn:", "udp");
    let (user, pass) = user_pass(&creds);
    runtime().block_on(async move {
        // Open the allocations, 200 at a time.
        let mut clients: Vec<(TurnClient, SocketAddr)> = Vec::with_capacity(ALLOCATIONS);
        let mut pending = tokio::task::JoinSet::new();
        let mut started = 0;
        while clients.len() < ALLOCATIONS {
            while started < ALLOCATIONS && pending.len() < 200 {
                let (u, p) = (user.clone(), pass.clone());
                pending.spawn(async move {
                    let mut c = TurnClient::connect(Transport::udp_from(LOCALHOST), udp, u, p)
                        .await
                        .unwrap();
                    c.set_retransmit(Retransmit::default());
                    let a = c.allocate(&AllocateOptions::default()).await.unwrap();
                    (c, a.relayed)
                });
                started += 1;
            }
            clients.push(pending.join_next().await.unwrap().unwrap());
        }
        let mut per_port = std::collections::HashMap::<u16, Vec<usize>>::new();
        for (i, (_, relayed)) in clients.iter().enumerate() {
            per_port.entry(relayed.port()).or_default().push(i);
        }
        assert_eq!(per_port.len(), 201, "every port of the range is used");
        assert!(per_port.values().all(|v| v.len() >= 49 && v.len() <= 50));
        // Allocations sharing a port are told apart by their peers: the k-th allocation
        // on each port talks to the k-th peer, and every one gets its own echo back.
        let most = per_port.values().map(Vec::len).max().unwrap();
        let mut peers = Vec::new();
        for _ in 0..most {
            peers.push(UdpSocket::bind((LOCALHOST, 0)).await.unwrap());
        }
        let peer_addrs: Vec<SocketAddr> = peers.iter().map(|p| p.local_addr().unwrap()).collect();
        let echo = tokio::spawn(async move {
            let mut set = tokio::task::JoinSet::new();
            for p in peers {
                set.spawn(async move {
                    let mut buf = [0u8; 256];
                    while let Ok((n, from)) = p.recv_from(&mut buf).await {
                        let _ = p.send_to(&buf[..n], from).await;
                    }
                });
            }
            while set.join_next().await.is_some() {}
        });
        let mut order: Vec<(usize, usize)> = Vec::new();
        for list in per_port.values() {
            for (k, &i) in list.iter().enumerate() {
                order.push((i, k));
            }
        }
        order.sort();
        let mut slots: Vec<Option<TurnClient>> =
            clients.into_iter().map(|(c, _)| Some(c)).collect();
        let mut checks = tokio::task::JoinSet::new();
        let mut done = 0;
        for (i, k) in order {
            let mut c = slots[i].take().unwrap();
            let peer = peer_addrs[k];
            checks.spawn(async move {
                c.channel_bind(0x4000, peer).await.unwrap();
                let payload = format!("allocation {i}");
                c.send_channel_data(0x4000, payload.as_bytes())
                    .await
                    .unwrap();
                match timeout(WAIT, c.recv()).await {
                    Ok(Ok(Incoming::ChannelData { data, .. })) => {
                        assert_eq!(
                            data,
                            payload.as_bytes(),
                            "allocation {i} got another's echo"
                        )
                    }
                    other => panic!("allocation {i}: {other:?}"),
                }
                c
            });
            while checks.len() >= 200 {
                checks.join_next().await.unwrap().unwrap();
                done += 1;
            }
        }
        while let Some(r) = checks.join_next().await {
            r.unwrap();
            done += 1;
        }
        assert_eq!(done, ALLOCATIONS);
        echo.abort();
    });
    let status = owner.get("/admin/api/v1/calling").ok();
    assert_eq!(status["allocations"], ALLOCATIONS as u64);
}
