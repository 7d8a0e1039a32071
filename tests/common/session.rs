//! Reference-client devices for tests that drive the appliance with `outpost::client`:
//! log a user in as a new device, keep its profile in a folder, and connect it.

use super::Server;
use super::people::USER_PASSWORD;
use outpost::client::Transport;
use outpost::client::session::{LoginRequest, Session, login};
use std::path::Path;

/// Log `username` (password [`USER_PASSWORD`]) in as a new device named "test", save its
/// profile under `profiles`, and return its session connected over WebSocket.
pub async fn connected_device(server: &Server, profiles: &Path, username: &str) -> Session {
    let req = LoginRequest {
        url: server.url.clone(),
        ca_cert: Some(server.ca.clone()),
        insecure: false,
        quic_addr: None,
        network_id: None,
        username: username.into(),
        password: USER_PASSWORD.into(),
        device_name: "test".into(),
    };
    let out = login(&req).await.unwrap();
    let path = profiles.join(format!("{}.json", username.replace('@', "_")));
    out.profile.save(&path).unwrap();
    let mut s = Session::open(&path).unwrap();
    s.connect(Transport::WebSocket, |_| Ok(true)).await.unwrap();
    s
}
