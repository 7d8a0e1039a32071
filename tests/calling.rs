//! The calling relay, driven by coturn's own test client (`turnutils_uclient`, Debian
//! package `coturn`) over UDP, TCP and TLS, with channels and with Send indications,
//! relaying to coturn's echo peer (`turnutils_peer`), using credentials that outpost's
//! client API issued; and the credentials endpoint's policy.

mod common;

use common::Server;
use common::calling::{alice, credentials, port_of, user_pass};
use common::people::person;
use serde_json::json;
use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A calling server for this binary (relay ranges from 10000).
fn calling_server(extra: &[(&str, &str)]) -> Server {
    common::calling::calling_server(10_000, extra)
}

/// coturn's UDP echo peer on a free port (it also takes the next one).
struct EchoPeer {
    child: Child,
    port: u16,
}

impl EchoPeer {
    fn start() -> EchoPeer {
        for _ in 0..20 {
            let port = {
                let s = UdpSocket::bind("127.0.0.1:0").unwrap();
                s.local_addr().unwrap().port()
            };
            if port == u16::MAX || UdpSocket::bind(("127.0.0.1", port + 1)).is_err() {
                continue;
            }
            let mut child = Command::new("turnutils_peer")
                .args(["-L", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("turnutils_peer (Debian package coturn; scripts/test-deps installs it)");
            std::thread::sleep(Duration::from_millis(200));
            if UdpSocket::bind(("127.0.0.1", port)).is_err() {
                return EchoPeer { child, port };
            }
            // Another process took the port first: try another.
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("cannot start turnutils_peer on a free port");
    }
}

impl Drop for EchoPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `turnutils_uclient`; returns (success, output).
fn uclient(args: &[&str]) -> (bool, String) {
    let out = Command::new("turnutils_uclient")
        .args(args)
        .output()
        .expect("turnutils_uclient (Debian package coturn; scripts/test-deps installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// What `turnutils_uclient` reported: (messages sent, messages received, lost).
fn figures(out: &str) -> (u64, u64, u64) {
    let number_after = |needle: &str| -> u64 {
        out.lines()
            .rev()
            .find_map(|l| l.split_once(needle))
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .and_then(|n| n.trim_end_matches(',').parse().ok())
            .unwrap_or_else(|| panic!("no {needle:?} in the output:\n{out}"))
    };
    (
        number_after("tot_send_msgs="),
        number_after("tot_recv_msgs="),
        number_after("Total lost packets"),
    )
}

#[test]
fn coturn_tools_relay_through_outpost_over_udp_tcp_and_tls() {
    let server = calling_server(&[]);
    let (alice, creds) = alice(&server);
    let (user, pass) = user_pass(&creds);
    let (user, pass) = (user.as_str(), pass.as_str());
    assert!(
        user.ends_with(&format!(":{}", alice.user_id)),
        "TURN REST username: {user}"
    );
    let udp = port_of(&creds, "turn:", "udp")
        .expect("a UDP server")
        .to_string();
    let tcp = port_of(&creds, "turn:", "tcp")
        .expect("a TCP server")
        .to_string();
    let tls = port_of(&creds, "turns:", "tcp")
        .expect("a TLS server")
        .to_string();
    assert_eq!(udp, tcp, "UDP and TCP share calling.listen");
    let peer = EchoPeer::start();
    let peer_port = peer.port.to_string();
    let base = [
        "-c",
        "-n",
        "50",
        "-l",
        "120",
        "-z",
        "5",
        "-e",
        "127.0.0.1",
        "-r",
        &peer_port,
        "-u",
        user,
        "-w",
        pass,
    ];
    for (label, extra) in [
        ("udp, channels", vec!["-p", &udp]),
        ("udp, send indications", vec!["-s", "-p", &udp]),
        ("tcp, channels", vec!["-t", "-p", &tcp]),
        ("tcp, send indications", vec!["-t", "-s", "-p", &tcp]),
        ("tls, channels", vec!["-t", "-S", "-p", &tls]),
        ("tls, send indications", vec!["-t", "-S", "-s", "-p", &tls]),
    ] {
        let mut args: Vec<&str> = base.to_vec();
        args.extend(extra);
        args.push("127.0.0.1");
        let (ok, out) = uclient(&args);
        assert!(
            ok,
            "{label}: turnutils_uclient failed:\n{out}\nserver:\n{}",
            server.lines.text()
        );
        let (sent, received, lost) = figures(&out);
        assert_eq!(sent, 50, "{label}:\n{out}");
        assert_eq!(received, 50, "{label}: every echo comes back:\n{out}");
        assert_eq!(lost, 0, "{label}:\n{out}");
    }
    // Two runs per transport, each with two allocations (turnutils_uclient's pair), each
    // sending 50 packets and receiving 50 echoes.
    let metrics = server.anon().get("/metrics").text;
    for t in ["udp", "tcp", "tls"] {
        for line in [
            format!("outpost_turn_allocations_total{{transport=\"{t}\"}} 4"),
            format!(
                "outpost_turn_relayed_packets_total{{direction=\"to_peer\",transport=\"{t}\"}} 100"
            ),
            format!(
                "outpost_turn_relayed_packets_total{{direction=\"to_client\",transport=\"{t}\"}} 100"
            ),
        ] {
            assert!(metrics.contains(&line), "{line} in\n{metrics}");
        }
    }
    // Closed TCP and TLS connections end their allocations.
    assert!(metrics.contains("outpost_turn_allocations_active{transport=\"tcp\"} 0"));
    assert!(metrics.contains("outpost_turn_allocations_active{transport=\"tls\"} 0"));
}

#[test]
fn a_wrong_secret_and_a_loopback_peer_are_refused_by_default() {
    // The default peer policy: no loopback peers.
    let server = calling_server(&[("OUTPOST_CALLING_ALLOW_LOOPBACK_PEERS", "false")]);
    let (_, creds) = alice(&server);
    let (user, pass) = user_pass(&creds);
    let (user, pass) = (user.as_str(), pass.as_str());
    let udp = port_of(&creds, "turn:", "udp").unwrap().to_string();
    let peer = EchoPeer::start();
    let peer_port = peer.port.to_string();
    let refused = |password: &str| {
        let (ok, out) = uclient(&[
            "-c",
            "-n",
            "5",
            "-e",
            "127.0.0.1",
            "-r",
            &peer_port,
            "-u",
            user,
            "-w",
            password,
            "-p",
            &udp,
            "127.0.0.1",
        ]);
        assert!(!ok, "turnutils_uclient must fail:\n{out}");
        out
    };
    let out = refused("not-the-password");
    assert!(out.contains("Cannot complete Allocation"), "{out}");
    let out = refused(pass);
    assert!(out.contains("403"), "a loopback peer is refused: {out}");
    let metrics = server.anon().get("/metrics").text;
    assert!(
        metrics.contains("outpost_turn_auth_failures_total{reason=\"wrong_password\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("outpost_turn_denied_peers_total{reason=\"address\"}"),
        "{metrics}"
    );
}

#[test]
fn credentials_follow_the_security_group_calling_policy() {
    let server = calling_server(&[]);
    let owner = server.owner();
    let network = owner.first_network();
    let alice = person(&server, &owner, &network, "alice@example.com");
    let bob = person(&server, &owner, &network, "bob@example.com");
    let dm = alice.dm(&bob);
    let creds = credentials(&alice, json!({"conversation_id": dm, "video": true}));
    assert_eq!(creds["force_tcp"], false);
    assert!(port_of(&creds, "turn:", "udp").is_some());
    // Not a member: refused.
    let carol = person(&server, &owner, &network, "carol@example.com");
    carol
        .api
        .post(
            "/api/v1/calls/turn-credentials",
            &json!({"conversation_id": dm}),
        )
        .expect(404, "conversation_not_found");
    // Force TCP: no UDP server offered.
    owner.set_group_settings(&network, json!({"calling": {"force_tcp": true}}));
    let creds = credentials(&alice, json!({}));
    assert_eq!(creds["force_tcp"], true);
    assert!(port_of(&creds, "turn:", "udp").is_none(), "{creds}");
    assert!(port_of(&creds, "turn:", "tcp").is_some(), "{creds}");
    // Video off: audio calls only.
    owner.set_group_settings(&network, json!({"calling": {"video": false}}));
    alice
        .api
        .post("/api/v1/calls/turn-credentials", &json!({"video": true}))
        .expect(403, "video_disabled");
    credentials(&alice, json!({}));
    // Audio off: no calls at all.
    owner.set_group_settings(
        &network,
        json!({"calling": {"audio": false, "video": false}}),
    );
    alice
        .api
        .post("/api/v1/calls/turn-credentials", &json!({}))
        .expect(403, "calling_disabled");
}
