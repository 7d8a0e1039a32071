//! Calling relay tests' shared parts: a server with the TURN server on ports of its own,
//! one person with credentials from the client API, and the ICE URLs' addresses.

use super::Server;
use super::people::{Person, person};
use serde_json::{Value, json};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};

pub const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// The TURN REST secret of servers whose tests make credentials themselves.
pub const SECRET: &str = "calling-tests-shared-secret";

/// Relay ranges handed out in this process, so servers running side by side never share
/// one (each test binary starts from `base`; binaries run one after another).
static NEXT_RANGE: AtomicU16 = AtomicU16::new(0);

/// A free relay range of 201 ports at `base` + 250 × n.
pub fn relay_range(base: u16) -> (String, String) {
    let n = NEXT_RANGE.fetch_add(1, Ordering::Relaxed);
    let min = base + n * 250;
    (min.to_string(), (min + 200).to_string())
}

/// A server with the calling relay on ephemeral listener ports, a relay range of its own,
/// loopback peers allowed and the shared secret; `extra` adds or overrides settings.
pub fn calling_server(base: u16, extra: &[(&str, &str)]) -> Server {
    let (min, max) = relay_range(base);
    let mut env: Vec<(&str, &str)> = vec![
        ("OUTPOST_CALLING_ENABLED", "true"),
        ("OUTPOST_CALLING_LISTEN", "127.0.0.1:0"),
        ("OUTPOST_CALLING_TLS_LISTEN", "127.0.0.1:0"),
        ("OUTPOST_CALLING_RELAY_PORT_MIN", &min),
        ("OUTPOST_CALLING_RELAY_PORT_MAX", &max),
        ("OUTPOST_CALLING_ALLOW_LOOPBACK_PEERS", "true"),
        ("OUTPOST_CALLING_SECRET", SECRET),
    ];
    env.extend_from_slice(extra);
    Server::builder().envs(&env).start()
}

/// TURN credentials and ICE servers from the client API.
pub fn credentials(p: &Person, body: Value) -> Value {
    p.api.post("/api/v1/calls/turn-credentials", &body).ok()
}

/// Alice, a user of the first network, and her credentials (no conversation).
pub fn alice(server: &Server) -> (Person, Value) {
    let owner = server.owner();
    let network = owner.first_network();
    let alice = person(server, &owner, &network, "alice@example.com");
    let creds = credentials(&alice, json!({}));
    (alice, creds)
}

/// The port of the first ICE URL with `prefix` (`turn:`, `turns:`) and `transport`.
pub fn port_of(creds: &Value, prefix: &str, transport: &str) -> Option<u16> {
    creds["ice_servers"][0]["urls"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u.as_str())
        .find(|u| u.starts_with(prefix) && u.ends_with(&format!("transport={transport}")))
        .map(|u| {
            u.split('?')
                .next()
                .unwrap()
                .rsplit(':')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
}

/// The loopback address of the first ICE URL with `prefix` and `transport`.
pub fn server_addr(creds: &Value, prefix: &str, transport: &str) -> SocketAddr {
    let port = port_of(creds, prefix, transport)
        .unwrap_or_else(|| panic!("no {prefix} {transport} URL in {creds}"));
    SocketAddr::new(LOCALHOST, port)
}

/// (username, credential) of a credentials answer.
pub fn user_pass(creds: &Value) -> (String, String) {
    (
        creds["username"].as_str().unwrap().to_string(),
        creds["credential"].as_str().unwrap().to_string(),
    )
}
