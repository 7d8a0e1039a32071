//! Admin API: the appliance's system status (listeners, certificate, store, outbox,
//! retention, version; `system_status`).

use super::State;
use crate::admin::response::ok;
use crate::error::Result;
use crate::system_status::{self, SystemStatus};
use actix_web::HttpResponse;

#[utoipa::path(get, path = "/system/status", operation_id = "GetSystemStatus", tag = "operations",
    responses((status = 200, body = SystemStatus)))]
pub async fn get(
    state: State,
    retention: actix_web::web::Data<std::sync::Arc<crate::retention::Retention>>,
) -> Result<HttpResponse> {
    let (st, r) = (state.clone(), retention.into_inner());
    let s = super::blocking("the system status", move || system_status::collect(&st, &r)).await??;
    Ok(ok(&s))
}
