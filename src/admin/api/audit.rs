//! Admin API: searching, exporting and verifying the audit log (F13).

use super::State;
use crate::admin::response::ok;
use crate::audit::{self, AuditEvent, Filter, VerifyReport};
use crate::error::{Error, Result};
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The outcome an audit search selects.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ResultFilter {
    Success,
    Error,
}

/// Which events to search or export.
#[derive(Debug, Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// Events at or after this time (RFC 3339, UTC).
    pub from: Option<DateTime<Utc>>,
    /// Events before this time.
    pub to: Option<DateTime<Utc>>,
    /// Admin username or id.
    pub admin: Option<String>,
    /// Event name, e.g. `CreateNetwork`.
    pub event_name: Option<String>,
    pub result: Option<ResultFilter>,
    #[param(pattern = "^[0-9]{8}$")]
    pub network_id: Option<String>,
}

/// Paging for audit searches.
#[derive(Debug, Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct AuditPageQuery {
    /// From the previous page's `next_cursor`.
    #[param(pattern = "^[0-9]{1,19}$")]
    pub cursor: Option<String>,
    /// 1–1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_ref().filter(|v| !v.is_empty()).cloned()
}

impl AuditFilter {
    /// The store's filter (a `from` after `to` simply matches nothing).
    fn filter(&self) -> Result<Filter> {
        Ok(Filter {
            from: self.from,
            to: self.to,
            admin: non_empty(&self.admin),
            name: non_empty(&self.event_name),
            result: self.result.map(|r| match r {
                ResultFilter::Success => "success".to_string(),
                ResultFilter::Error => "error".to_string(),
            }),
            network_id: match &self.network_id {
                Some(n) if !crate::directory::validate::is_network_id(n) => {
                    return Err(Error::bad_request(
                        "invalid_query",
                        format!("network_id must be 8 digits, not {n:?}"),
                    ));
                }
                other => other.clone(),
            },
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// Newest first.
    pub items: Vec<AuditEvent>,
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/audit", operation_id = "ListAuditEvents", tag = "audit",
    params(AuditFilter, AuditPageQuery), responses((status = 200, body = AuditPage)))]
pub async fn list(
    state: State,
    q: web::Query<AuditFilter>,
    page: web::Query<AuditPageQuery>,
) -> Result<HttpResponse> {
    let f = q.filter()?;
    let limit = page.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Error::bad_request(
            "invalid_query",
            "limit must be between 1 and 1000",
        ));
    }
    let before = match &page.cursor {
        Some(c) => Some(c.parse::<u64>().map_err(|_| {
            Error::bad_request("invalid_cursor", "the cursor is not one this API returned")
        })?),
        None => None,
    };
    let (items, next) = state
        .store
        .read(|tx| audit::search(tx, &f, before, limit))?;
    Ok(ok(&AuditPage {
        items,
        next_cursor: next.map(|s| s.to_string()),
    }))
}

#[utoipa::path(get, path = "/audit/export", operation_id = "ExportAuditEvents", tag = "audit",
    params(AuditFilter),
    responses((status = 200, content_type = "application/x-ndjson", body = String,
        description = "One event per line, oldest first, with their hashes (check with `outpost audit verify --file`)")))]
pub async fn export(state: State, q: web::Query<AuditFilter>) -> Result<HttpResponse> {
    let f = q.filter()?;
    let store = state.store.clone();
    let body = super::blocking("the export", move || {
        let mut out = Vec::new();
        store.read(|tx| {
            audit::for_each(tx, &f, |e| {
                serde_json::to_writer(&mut out, e)
                    .map_err(|err| Error::internal(format!("cannot encode an event: {err}")))?;
                out.push(b'\n');
                Ok(())
            })
        })?;
        Ok::<_, Error>(out)
    })
    .await??;
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            "attachment; filename=\"outpost-audit.jsonl\"",
        ))
        .body(body))
}

#[utoipa::path(get, path = "/audit/verify", operation_id = "VerifyAuditLog", tag = "audit",
    responses((status = 200, body = VerifyReport,
        description = "The check ran; `ok` says whether the chain is intact")))]
pub async fn verify(state: State) -> Result<HttpResponse> {
    let store = state.store.clone();
    let report =
        super::blocking("verification", move || store.read(|tx| audit::verify(tx))).await??;
    Ok(ok(&report))
}
