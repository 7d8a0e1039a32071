//! Admin API: the mail outbox (PRODUCT.md F4) — every mail the appliance queued, and how
//! its delivery went: `queued` (with the next attempt and the last failure), `sent`, or
//! `failed` with the mail server's answer.

use super::State;
use crate::admin::response::ok;
use crate::error::{Error, Result};
use crate::mail::outbox::{self, MailStatus, OutboxMail};
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MailQuery {
    /// Only mails in this state.
    pub status: Option<MailStatus>,
    /// Only mails about this network.
    #[param(pattern = "^[0-9]{8}$")]
    pub network_id: Option<String>,
    /// From the previous page's `next_cursor` (a mail id).
    #[param(pattern = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
    pub cursor: Option<String>,
    /// 1–1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MailPage {
    /// Newest first.
    pub items: Vec<OutboxMail>,
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/mail/outbox", operation_id = "ListMail", tag = "mail",
    params(MailQuery), responses((status = 200, body = MailPage)))]
pub async fn list(state: State, q: web::Query<MailQuery>) -> Result<HttpResponse> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Error::bad_request(
            "invalid_query",
            "limit must be between 1 and 1000",
        ));
    }
    let cursor = q.cursor.as_deref();
    if cursor.is_some_and(|c| uuid::Uuid::try_parse(c).is_err() || c.len() != 36) {
        return Err(Error::bad_request(
            "invalid_cursor",
            "a cursor is a mail id, as next_cursor gives it",
        ));
    }
    let network = q.network_id.as_deref();
    if network.is_some_and(|n| !crate::directory::validate::is_network_id(n)) {
        return Err(Error::bad_request(
            "invalid_query",
            "network_id is the network's 8-digit id",
        ));
    }
    let items = state
        .store
        .read(|tx| outbox::list(tx, q.status, network, cursor, limit))?;
    let next_cursor = (items.len() == limit)
        .then(|| items.last().map(|m| m.id.clone()))
        .flatten();
    Ok(ok(&MailPage { items, next_cursor }))
}
