//! Admin API: the appliance's system status (listeners, certificate, store, outbox,
//! retention, version; `system_status`).

use super::State;
use crate::admin::response::ok;
use crate::error::Result;
use crate::system_status::{self, SystemStatus};
use actix_web::HttpResponse;

#[utoipa::path(get, path = "/system/status", operation_id = "GetSystemStatus", tag = "operations",
    responses((status = 200, body = SystemStatus)))]
pub async fn get(state: State) -> Result<HttpResponse> {
    let st = state.clone();
    let s = super::blocking("the system status", move || system_status::collect(&st)).await??;
    Ok(ok(&s))
}
