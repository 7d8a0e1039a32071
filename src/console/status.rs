//! Console: the appliance's system status (GetSystemStatus) — version and uptime,
//! listeners, the TLS certificate's expiry, the store's size, the mail outbox, each
//! network's data retention, the calling relay (`system_status::collect`, as the API).

use super::Console;
use super::page::{PageContext, refusal, render};
use crate::admin::AdminState;
use crate::system_status;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

/// A byte count for people: `1.5 MiB`.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} bytes")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A duration for people: `3 d 4 h`, `5 h 2 min`, `40 s`.
pub fn human_duration(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    if d > 0 {
        format!("{d} d {h} h")
    } else if h > 0 {
        format!("{h} h {m} min")
    } else if m > 0 {
        format!("{m} min")
    } else {
        format!("{secs} s")
    }
}

/// `GET /console/status`.
pub async fn show(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    retention: web::Data<std::sync::Arc<crate::retention::Retention>>,
    req: HttpRequest,
) -> HttpResponse {
    let (st, r) = (state.clone(), retention.into_inner());
    let status =
        crate::admin::api::blocking("the system status", move || system_status::collect(&st, &r))
            .await
            .and_then(|r| r);
    let s = match status {
        Ok(s) => s,
        Err(e) => return refusal(&req, &e),
    };
    let mut p = PageContext::new(&console, &req, "System status", console.appliance_banner());
    p.insert("section", "status")
        .insert("store_size", &human_bytes(s.store.bytes))
        .insert("uptime", &s.uptime_secs.map(human_duration))
        .insert(
            "started",
            &s.started_at
                .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()),
        )
        .insert(
            "not_after",
            &s.certificate
                .as_ref()
                .and_then(|c| c.not_after)
                .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string()),
        )
        .insert("s", &s);
    render(&console, &req, "console/status.html", StatusCode::OK, &p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_naturally() {
        assert_eq!(human_bytes(512), "512 bytes");
        assert_eq!(human_bytes(1536 * 1024), "1.5 MiB");
        assert_eq!(human_duration(40), "40 s");
        assert_eq!(human_duration(3 * 86_400 + 4 * 3600), "3 d 4 h");
    }
}
