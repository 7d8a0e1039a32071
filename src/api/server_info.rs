//! `GET /api/v1/server` (PROTOCOL.md §2.8): what a client may ask before signing in —
//! the software and version, and the appliance's profile key, which a client that
//! started from a client profile compares with the key that signed the file.

use super::ClientApi;
use crate::admin::response;
use crate::error::Result;
use actix_web::{HttpResponse, web};
use serde_json::json;

/// `GET /api/v1/server`.
pub async fn get(api: web::Data<ClientApi>) -> Result<HttpResponse> {
    Ok(response::ok(&json!({
        "software": "outpost",
        "version": env!("CARGO_PKG_VERSION"),
        "protocol": 1,
        "profile_key": api.profiles.public_key(),
    })))
}
