//! Console: a network's analytics (F12, reference §20) — the overview, members and
//! messages tabs over a UTC date range, with server-rendered SVG charts, the numbers
//! as tables, and the CSV export of the data points (GetAnalytics, ExportAnalytics;
//! the same report as the admin API's, `analytics::report`).

use super::Console;
use super::page::{PageContext, refusal, render, with_error};
use crate::admin::AdminState;
use crate::admin::api::analytics::{self as api, AnalyticsQuery};
use crate::analytics::chart::{self, PALETTE};
use crate::analytics::report::{Breakdown, Chart, Period, Report, Series, Slice};
use crate::auth::{Action, Caller, permission};
use crate::directory::network;
use crate::error::Kind as ErrorKind;
use crate::error::{Error, Result};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
pub struct NetworkPath {
    network_id: String,
}

/// The page's form (every field optional).
#[derive(Deserialize, Default, Clone)]
pub struct Form {
    #[serde(default)]
    tab: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    period: String,
    #[serde(default)]
    breakdown: String,
}

const TABS: [(&str, &str); 3] = [
    ("overview", "Overview"),
    ("members", "Members"),
    ("messages", "Messages"),
];

fn date(field: &str, s: &str) -> Result<Option<NaiveDate>> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| {
            Error::bad_request(
                "invalid_range",
                format!("{field} must be a date like 2026-12-06, not {s:?}"),
            )
        })
}

impl Form {
    fn tab(&self) -> &'static str {
        TABS.iter()
            .map(|(t, _)| *t)
            .find(|t| *t == self.tab.trim())
            .unwrap_or("overview")
    }

    /// The admin API's query for this form.
    pub fn query(&self) -> Result<AnalyticsQuery> {
        let period = match self.period.trim() {
            "" | "day" => Period::Day,
            "week" => Period::Week,
            "month" => Period::Month,
            p => {
                return Err(Error::bad_request(
                    "invalid_query",
                    format!("the period must be day, week or month, not {p:?}"),
                ));
            }
        };
        let breakdown = match self.breakdown.trim() {
            "" | "none" => Breakdown::None,
            "platform" => Breakdown::Platform,
            "client_version" => Breakdown::ClientVersion,
            "security_group" => Breakdown::SecurityGroup,
            b => {
                return Err(Error::bad_request(
                    "invalid_query",
                    format!(
                        "active users are broken down by platform, client_version or security_group, not {b:?}"
                    ),
                ));
            }
        };
        Ok(AnalyticsQuery {
            from: date("from", &self.from)?,
            to: date("to", &self.to)?,
            period: Some(period),
            breakdown: Some(breakdown),
        })
    }
}

/// A chart as the template shows it: the SVG, a legend, and the numbers.
#[derive(Serialize)]
struct Shown {
    svg: String,
    legend: Vec<(String, &'static str)>,
    buckets: Vec<String>,
    series: Vec<Series>,
    /// Rows: bucket then one value per series.
    rows: Vec<(String, Vec<u64>)>,
}

fn shown(c: &Chart, title: &str) -> Shown {
    Shown {
        svg: chart::bars(c, title),
        legend: c
            .series
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.clone(), PALETTE[i % PALETTE.len()]))
            .collect(),
        buckets: c.buckets.clone(),
        series: c.series.clone(),
        rows: c
            .buckets
            .iter()
            .enumerate()
            .map(|(i, b)| {
                (
                    b.clone(),
                    c.series
                        .iter()
                        .map(|s| s.values.get(i).copied().unwrap_or(0))
                        .collect(),
                )
            })
            .collect(),
    }
}

#[derive(Serialize)]
struct Pie {
    svg: String,
    slices: Vec<(String, u64, &'static str)>,
}

fn pie(slices: &[Slice], title: &str) -> Pie {
    Pie {
        svg: chart::pie(slices, title),
        slices: slices
            .iter()
            .enumerate()
            .map(|(i, s)| (s.label.clone(), s.value, PALETTE[i % PALETTE.len()]))
            .collect(),
    }
}

fn single(c: &Chart, i: usize) -> Chart {
    Chart {
        buckets: c.buckets.clone(),
        series: c.series.get(i).cloned().into_iter().collect(),
    }
}

fn query_string(f: &Form, r: Option<&Report>) -> String {
    let (from, to) = match r {
        Some(r) => (r.from.to_string(), r.to.to_string()),
        None => (f.from.trim().to_string(), f.to.trim().to_string()),
    };
    super::audit::url_encode(&[
        ("from", &from),
        ("to", &to),
        ("period", f.period.trim()),
        ("breakdown", f.breakdown.trim()),
    ])
}

/// `GET /console/networks/{network_id}/analytics`.
pub async fn show(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<NetworkPath>,
    q: web::Query<Form>,
) -> HttpResponse {
    let f = q.into_inner();
    let id = path.into_inner().network_id;
    let n = match state.store.read(|tx| network::get(tx, &id)) {
        Ok(n) => n,
        Err(e) => return refusal(&req, &e),
    };
    let tab = f.tab();
    let mut p = PageContext::new(
        &console,
        &req,
        &format!("Analytics — {}", n.name),
        console.appliance_banner(),
    );
    p.insert("section", "networks")
        .insert("network", &n)
        .insert("tab", tab)
        .insert("tabs", &TABS)
        .insert("period", f.period.trim())
        .insert("breakdown", f.breakdown.trim())
        .insert(
            "may_export",
            &permission::allows(caller.admin.role, Action::ExportAnalytics),
        );
    let report = match f.query().and_then(|q| q.request()) {
        Ok(r) => api::compute(&state, id.clone(), r).await,
        Err(e) => Err(e),
    };
    let r = match report {
        Ok(r) => r,
        Err(e) if matches!(e.kind, ErrorKind::BadRequest | ErrorKind::Invalid) => {
            p.insert("error", &e.message)
                .insert("from", f.from.trim())
                .insert("to", f.to.trim())
                .insert("query", &query_string(&f, None));
            return with_error(
                render(
                    &console,
                    &req,
                    "console/analytics.html",
                    StatusCode::from_u16(e.kind.status()).unwrap_or(StatusCode::BAD_REQUEST),
                    &p,
                ),
                &e,
            );
        }
        Err(e) => return refusal(&req, &e),
    };
    p.insert("from", &r.from.to_string())
        .insert("to", &r.to.to_string())
        .insert("query", &query_string(&f, Some(&r)))
        .insert("r", &r);
    match tab {
        "overview" => {
            p.insert(
                "registrations",
                &shown(&r.overview.registrations, "User registrations"),
            )
            .insert(
                "versions",
                &pie(&r.overview.client_versions, "Client versions"),
            );
        }
        "members" => {
            p.insert("active", &shown(&r.members.active, "Active users"));
        }
        _ => {
            let m = &r.messages.over_time;
            p.insert("over_time", &shown(m, "Messages, calls and files"))
                .insert("messages_chart", &shown(&single(m, 0), "Messages sent"))
                .insert("calls_chart", &shown(&single(m, 1), "Calls"))
                .insert("files_chart", &shown(&single(m, 2), "Files sent"))
                .insert(
                    "os",
                    &pie(&r.messages.devices_by_os, "Devices by operating system"),
                )
                .insert(
                    "versions",
                    &pie(&r.messages.client_versions, "Devices by client version"),
                );
        }
    }
    render(&console, &req, "console/analytics.html", StatusCode::OK, &p)
}

/// `GET /console/networks/{network_id}/analytics/export`: the data points as CSV.
pub async fn export(
    state: web::Data<AdminState>,
    req: HttpRequest,
    path: web::Path<NetworkPath>,
    q: web::Query<Form>,
) -> HttpResponse {
    let id = path.into_inner().network_id;
    let r = match q.query().and_then(|q| q.request()) {
        Ok(r) => r,
        Err(e) => return refusal(&req, &e),
    };
    match api::compute(&state, id, r).await {
        Ok(rep) => api::csv_response(&rep),
        Err(e) => refusal(&req, &e),
    }
}
