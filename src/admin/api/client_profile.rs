//! Admin API: a network's client profile (issue 5) — the signed JSON file that tells a
//! client this appliance's address, its certificate and the network, for an
//! administrator to hand to people who did not register through an invitation page
//! (single sign-on users, or a re-issued file).

use super::{NetworkPath, State};
use crate::admin::response::ok;
use crate::client_profile::SignedProfile;
use crate::directory::network;
use crate::error::Result;
use actix_web::{HttpResponse, web};

#[utoipa::path(get, path = "/networks/{network_id}/client-profile", operation_id = "GetClientProfile",
    tag = "networks", params(NetworkPath), responses((status = 200, body = SignedProfile,
        description = "The network's client profile, signed with the appliance's profile key; \
            `outpost client login --connection FILE` reads it.")))]
pub async fn get(state: State, path: web::Path<NetworkPath>) -> Result<HttpResponse> {
    let n = state.store.read(|tx| network::get(tx, &path.network_id))?;
    let server = state.public_url.get().cloned().unwrap_or_default();
    Ok(ok(&state.profiles.sign(&server, &n.id, &n.name, None)))
}
