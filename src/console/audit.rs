//! Console: the audit log (F13) — search with filters (event name, admin, result, UTC
//! time range), an event's details, the export of the matching events as JSON lines
//! (ListAuditEvents, ExportAuditEvents) and the check of the hash chain
//! (VerifyAuditLog), over the same typed functions as the admin API.

use super::Console;
use super::page::{PageContext, refusal, render};
use crate::admin::AdminState;
use crate::admin::api::audit::{AuditFilter, ResultFilter};
use crate::audit::{self, AuditEvent};
use crate::auth::{Action, Caller, permission};
use crate::error::{Error, Result};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::Deserialize;

/// Events per page.
pub const PAGE: usize = 50;

/// The search form's fields (all optional; times are UTC).
#[derive(Deserialize, Default, Clone)]
pub struct Search {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub admin: String,
    #[serde(default)]
    pub result: String,
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    #[serde(default)]
    pub cursor: String,
}

/// A time from the form: `2026-12-06T19:30`, with seconds, or a bare date (midnight UTC).
fn parse_time(field: &str, s: &str) -> Result<Option<DateTime<Utc>>> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    for f in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Ok(Some(t.and_utc()));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(Some(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc()));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    Err(Error::bad_request(
        "invalid_query",
        format!("{field} must be a UTC date and time like 2026-12-06T19:30, not {s:?}"),
    ))
}

impl Search {
    /// The admin API's filter for these fields.
    pub fn filter(&self) -> Result<AuditFilter> {
        let some = |s: &str| {
            let s = s.trim();
            (!s.is_empty()).then(|| s.to_string())
        };
        let result = match self.result.trim() {
            "" => None,
            "success" => Some(ResultFilter::Success),
            "error" => Some(ResultFilter::Error),
            other => {
                return Err(Error::bad_request(
                    "invalid_query",
                    format!("result must be success or error, not {other:?}"),
                ));
            }
        };
        Ok(AuditFilter {
            from: parse_time("from", &self.from)?,
            to: parse_time("to", &self.to)?,
            admin: some(&self.admin),
            event_name: some(&self.name),
            result,
            network_id: None,
        })
    }

    fn query_string(&self) -> String {
        url_encode(&[
            ("name", &self.name),
            ("admin", &self.admin),
            ("result", &self.result),
            ("from", &self.from),
            ("to", &self.to),
        ])
    }

    fn filtered(&self) -> bool {
        [&self.name, &self.admin, &self.result, &self.from, &self.to]
            .iter()
            .any(|s| !s.trim().is_empty())
    }
}

fn row(e: &AuditEvent) -> serde_json::Value {
    serde_json::json!({
        "seq": e.seq,
        "name": e.name,
        "time": e.time.format("%Y-%m-%d %H:%M:%S").to_string(),
        "admin": e.admin.as_ref().map(|a| a.username.clone()),
        "source_ip": e.source_ip,
        "network_id": e.network_id,
        "status": e.result.status,
        "http_status": e.result.http_status,
        "read_only": e.read_only,
    })
}

/// `GET /console/audit`: the search page.
pub async fn list(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    req: HttpRequest,
    caller: Caller,
    q: web::Query<Search>,
) -> HttpResponse {
    let s = q.into_inner();
    let mut p = PageContext::new(&console, &req, "Audit log", console.appliance_banner());
    p.insert("section", "audit")
        .insert(
            "s",
            &serde_json::json!({
                "name": s.name.trim(), "admin": s.admin.trim(), "result": s.result.trim(),
                "from": s.from.trim(), "to": s.to.trim(),
            }),
        )
        .insert(
            "names",
            &Action::ALL.iter().map(|a| a.name()).collect::<Vec<_>>(),
        )
        .insert("filtered", &s.filtered())
        .insert("query", &s.query_string())
        .insert(
            "may_export",
            &permission::allows(caller.admin.role, Action::ExportAuditEvents),
        )
        .insert(
            "may_verify",
            &permission::allows(caller.admin.role, Action::VerifyAuditLog),
        );
    let found = s.filter().and_then(|f| {
        let before = match s.cursor.trim() {
            "" => None,
            c => Some(c.parse::<u64>().map_err(|_| {
                Error::bad_request(
                    "invalid_cursor",
                    "this page link is not one the console made",
                )
            })?),
        };
        let f = store_filter(&f);
        state.store.read(|tx| audit::search(tx, &f, before, PAGE))
    });
    match found {
        Ok((events, next)) => {
            let rows: Vec<_> = events.iter().map(row).collect();
            p.insert("events", &rows)
                .insert("continued", &!s.cursor.trim().is_empty())
                .insert(
                    "next",
                    &next.map(|n| format!("/console/audit?{}&cursor={n}", s.query_string())),
                );
            render(&console, &req, "console/audit.html", StatusCode::OK, &p)
        }
        Err(e) if e.kind == crate::error::Kind::BadRequest => {
            p.insert("events", &Vec::<serde_json::Value>::new())
                .insert("error", &e.message);
            super::page::with_error(
                render(
                    &console,
                    &req,
                    "console/audit.html",
                    StatusCode::BAD_REQUEST,
                    &p,
                ),
                &e,
            )
        }
        Err(e) => refusal(&req, &e),
    }
}

/// The store's filter of the API's (the same conversion the API makes).
fn store_filter(f: &AuditFilter) -> audit::Filter {
    audit::Filter {
        from: f.from,
        to: f.to,
        admin: f.admin.clone(),
        name: f.event_name.clone(),
        result: f.result.map(|r| match r {
            ResultFilter::Success => "success".to_string(),
            ResultFilter::Error => "error".to_string(),
        }),
        network_id: None,
    }
}

#[derive(Deserialize)]
pub struct EventPath {
    seq: String,
}

/// `GET /console/audit/events/{seq}`: one event with its parameters and hashes.
pub async fn show(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    req: HttpRequest,
    path: web::Path<EventPath>,
) -> HttpResponse {
    let missing = || {
        Error::not_found(
            "event_not_found",
            "there is no audit event with this number",
        )
    };
    let Ok(seq) = path.seq.parse::<u64>() else {
        return refusal(&req, &missing());
    };
    let found = state
        .store
        .read(|tx| audit::search(tx, &audit::Filter::default(), seq.checked_add(1), 1));
    let e = match found {
        Ok((events, _)) => match events.into_iter().next().filter(|e| e.seq == seq) {
            Some(e) => e,
            None => return refusal(&req, &missing()),
        },
        Err(e) => return refusal(&req, &e),
    };
    let params = serde_json::to_string_pretty(&e.parameters).unwrap_or_default();
    let mut p = PageContext::new(
        &console,
        &req,
        &format!("Audit event {} — {}", e.seq, e.name),
        console.appliance_banner(),
    );
    p.insert("section", "audit")
        .insert("e", &e)
        .insert(
            "time",
            &e.time.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string(),
        )
        .insert("parameters", &params);
    render(
        &console,
        &req,
        "console/audit_event.html",
        StatusCode::OK,
        &p,
    )
}

/// `GET /console/audit/export`: the matching events as JSON lines (a download).
pub async fn export(
    state: web::Data<AdminState>,
    req: HttpRequest,
    q: web::Query<Search>,
) -> HttpResponse {
    let f = match q.filter() {
        Ok(f) => f,
        Err(e) => return refusal(&req, &e),
    };
    match crate::admin::api::audit::export(state, web::Query(f)).await {
        Ok(res) => res,
        Err(e) => refusal(&req, &e),
    }
}

/// `GET /console/audit/verify`: check the whole chain and show the result.
pub async fn verify(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    req: HttpRequest,
) -> HttpResponse {
    let store = state.store.clone();
    let report =
        crate::admin::api::blocking("verification", move || store.read(|tx| audit::verify(tx)))
            .await
            .and_then(|r| r);
    match report {
        Ok(r) => {
            let mut p = PageContext::new(
                &console,
                &req,
                "Audit log verification",
                console.appliance_banner(),
            );
            p.insert("section", "audit").insert("report", &r);
            render(
                &console,
                &req,
                "console/audit_verify.html",
                StatusCode::OK,
                &p,
            )
        }
        Err(e) => refusal(&req, &e),
    }
}

/// `k=v&…` with the values percent-encoded.
pub fn url_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let enc: String = v
                .trim()
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            format!("{k}={enc}")
        })
        .collect::<Vec<_>>()
        .join("&")
}
