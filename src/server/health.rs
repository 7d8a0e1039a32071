//! Health, readiness, metrics and the landing page.
//!
//! `/healthz` answers while the process runs; `/readyz` only once the listeners are up
//! and the store answers a read. `/metrics` is the Prometheus page, limited to the
//! source networks in `metrics.allow_from` (and a bearer token if one is set).

use crate::config::MetricsConfig;
use crate::error::Error;
use crate::store::Store;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Shared readiness state.
pub struct Health {
    pub store: Store,
    pub listening: AtomicBool,
    pub stopping: AtomicBool,
    pub metrics: MetricsConfig,
    pub started: std::time::Instant,
    pub tera: tera::Tera,
}

#[derive(Serialize)]
struct Status<'a> {
    status: &'a str,
    version: &'a str,
    uptime_seconds: u64,
}

pub async fn healthz(h: web::Data<Arc<Health>>) -> HttpResponse {
    HttpResponse::Ok().json(Status {
        status: "alive",
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: h.started.elapsed().as_secs(),
    })
}

pub async fn readyz(h: web::Data<Arc<Health>>) -> HttpResponse {
    let store_ok = h
        .store
        .read(|tx| crate::store::meta_get(tx, "schema_version"))
        .is_ok();
    let listening = h.listening.load(Ordering::Acquire);
    let stopping = h.stopping.load(Ordering::Acquire);
    let ok = store_ok && listening && !stopping;
    let body = serde_json::json!({
        "status": if ok { "ready" } else { "not_ready" },
        "store": if store_ok { "open" } else { "unavailable" },
        "listeners": if listening { "up" } else { "starting" },
        "stopping": stopping,
    });
    if ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

pub async fn metrics(req: HttpRequest, h: web::Data<Arc<Health>>) -> HttpResponse {
    let allowed = req
        .peer_addr()
        .is_some_and(|a| h.metrics.allow_from.iter().any(|n| n.contains(&a.ip())));
    if !allowed {
        return Error::forbidden(
            "metrics_forbidden",
            "this address may not read /metrics (see metrics.allow_from)",
        )
        .error_response();
    }
    if !h.metrics.bearer_token.is_empty() {
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !h.metrics.bearer_token.ct_eq(presented) {
            return Error::unauthorized(
                "authentication_required",
                "/metrics needs its bearer token",
            )
            .error_response();
        }
    }
    crate::metrics::store::SIZE_BYTES.set(h.store.file_size() as i64);
    if let Ok(n) = h
        .store
        .read(|tx| crate::store::counter_get(tx, crate::relay::mailbox::DEPTH_COUNTER))
    {
        crate::metrics::relay::MAILBOX_ENTRIES.set(n);
    }
    if let Err(e) = h.store.read(|tx| crate::directory::update_metrics(tx)) {
        tracing::warn!(error = %e, "cannot refresh directory metrics");
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(crate::metrics::render())
}

pub async fn index(h: web::Data<Arc<Health>>) -> HttpResponse {
    let mut ctx = tera::Context::new();
    ctx.insert("version", env!("CARGO_PKG_VERSION"));
    match h.tera.render("index.html", &ctx) {
        Ok(html) => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .insert_header((
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; style-src 'self'",
            ))
            .body(html),
        Err(e) => Error::internal(format!("cannot render the landing page: {e}")).error_response(),
    }
}

pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(include_str!("../../static/outpost.css"))
}

/// Templates compiled into the binary.
pub fn templates() -> tera::Tera {
    let mut t = tera::Tera::default();
    t.add_raw_templates(vec![(
        "index.html",
        include_str!("../../templates/index.html"),
    )])
    .expect("embedded templates parse");
    t
}
