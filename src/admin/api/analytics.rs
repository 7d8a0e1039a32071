//! Admin API: a network's analytics (F12) — the report as JSON and its data points as
//! CSV, over a UTC date range (`analytics::report`).

use super::{NetworkPath, State};
use crate::admin::response::ok;
use crate::analytics::report::{self, Breakdown, Period, Report, Request};
use crate::error::Result;
use actix_web::{HttpResponse, web};
use chrono::NaiveDate;
use serde::Deserialize;
use utoipa::IntoParams;

/// The range and aggregation of a report.
#[derive(Debug, Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct AnalyticsQuery {
    /// First day (UTC, `YYYY-MM-DD`); default: 29 days before `to`.
    pub from: Option<NaiveDate>,
    /// Last day, included (UTC); default: today. At most 400 days after `from`.
    pub to: Option<NaiveDate>,
    /// `day` (default), `week` or `month`.
    pub period: Option<Period>,
    /// Break active users down by `platform`, `client_version` or `security_group`.
    pub breakdown: Option<Breakdown>,
}

impl AnalyticsQuery {
    pub fn request(&self) -> Result<Request> {
        Request::new(
            self.from,
            self.to,
            self.period.unwrap_or_default(),
            self.breakdown.unwrap_or_default(),
        )
    }
}

/// The report (blocking work: it reads the whole directory of the network).
pub async fn compute(state: &State, network_id: String, r: Request) -> Result<Report> {
    let store = state.store.clone();
    super::blocking("the analytics report", move || {
        report::compute(&store, &network_id, &r)
    })
    .await?
}

#[utoipa::path(get, path = "/networks/{network_id}/analytics", operation_id = "GetAnalytics",
    tag = "analytics", params(NetworkPath, AnalyticsQuery),
    responses((status = 200, body = Report)))]
pub async fn get(
    state: State,
    path: web::Path<NetworkPath>,
    q: web::Query<AnalyticsQuery>,
) -> Result<HttpResponse> {
    let r = q.request()?;
    Ok(ok(&compute(&state, path.into_inner().network_id, r).await?))
}

#[utoipa::path(get, path = "/networks/{network_id}/analytics/export", operation_id = "ExportAnalytics",
    tag = "analytics", params(NetworkPath, AnalyticsQuery),
    responses((status = 200, content_type = "text/csv", body = String,
        description = "`tab,metric,bucket,series,value`, one data point per line")))]
pub async fn export(
    state: State,
    path: web::Path<NetworkPath>,
    q: web::Query<AnalyticsQuery>,
) -> Result<HttpResponse> {
    let r = q.request()?;
    let id = path.into_inner().network_id;
    let rep = compute(&state, id.clone(), r).await?;
    Ok(csv_response(&rep))
}

/// The CSV download of a report.
pub fn csv_response(rep: &Report) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"outpost-analytics-{}-{}-{}.csv\"",
                rep.network_id, rep.from, rep.to
            ),
        ))
        .body(report::csv(rep))
}
