//! The analytics report of one network over a UTC date range (reference §20): the
//! overview (registered, pending, registrations over time, devices, client versions),
//! members (active users per day, week or month, broken down by platform, client
//! version or security group — a deleted group's users appear as `Deleted#`) and
//! messages (messages, calls and files sent; devices by operating system and client
//! version), and the same data points as CSV. The console's analytics page and the
//! admin API's `GetAnalytics`/`ExportAnalytics` both call [`compute`].

use super::daily::{self, Day};
use crate::directory::device::{self, DeviceStatus};
use crate::directory::user::{self, ListQuery, UserKind};
use crate::directory::{group, network};
use crate::error::{Error, Result};
use crate::store::Store;
use chrono::{Datelike, Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use utoipa::ToSchema;

/// The longest range a report covers.
pub const MAX_DAYS: u64 = 400;
/// The range a report covers when none is given: the last 30 days, today included.
pub const DEFAULT_DAYS: u64 = 30;
/// What a deleted security group's users are counted under.
pub const DELETED_GROUP: &str = "Deleted#";

/// How the time series are aggregated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    #[default]
    Day,
    /// ISO weeks (Monday to Sunday), labelled `2026-W49`.
    Week,
    /// Calendar months, labelled `2026-12`.
    Month,
}

/// What the active-user series are broken down by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum Breakdown {
    /// One series: everyone.
    #[default]
    None,
    Platform,
    ClientVersion,
    SecurityGroup,
}

/// What to report on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub from: NaiveDate,
    /// Inclusive.
    pub to: NaiveDate,
    pub period: Period,
    pub breakdown: Breakdown,
}

impl Request {
    /// The request for `from`..=`to` (defaults: the last [`DEFAULT_DAYS`] days).
    pub fn new(
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
        period: Period,
        breakdown: Breakdown,
    ) -> Result<Request> {
        let today = Utc::now().date_naive();
        let to = to.unwrap_or(today);
        let from = from.unwrap_or_else(|| to - Days::new(DEFAULT_DAYS - 1));
        if from > to {
            return Err(Error::invalid(
                "invalid_range",
                format!("the range starts ({from}) after it ends ({to})"),
            ));
        }
        if (to - from).num_days() as u64 >= MAX_DAYS {
            return Err(Error::invalid(
                "invalid_range",
                format!("a report covers at most {MAX_DAYS} days; choose a shorter range"),
            ));
        }
        Ok(Request {
            from,
            to,
            period,
            breakdown,
        })
    }
}

/// One named series of a chart, a value per bucket.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct Series {
    pub name: String,
    pub values: Vec<u64>,
}

/// A time series chart: bucket labels and one or more series.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct Chart {
    /// `2026-12-06`, `2026-W49` or `2026-12`.
    pub buckets: Vec<String>,
    pub series: Vec<Series>,
}

/// One part of a whole (a pie slice).
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct Slice {
    pub label: String,
    pub value: u64,
}

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct Overview {
    /// Registered users at the end of the range (active and suspended; not pending).
    pub registered: u64,
    /// Invited users not registered at the end of the range.
    pub pending: u64,
    /// Users who registered, per bucket.
    pub registrations: Chart,
    /// Devices where the app is active.
    pub devices: u64,
    /// Active devices by client version.
    pub client_versions: Vec<Slice>,
}

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct Members {
    /// Users active at any time in the range.
    pub active_users: u64,
    /// Active users per bucket, by the breakdown.
    pub active: Chart,
}

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct Messages {
    /// Unique messages sent by users and bots (text, files, locations).
    pub messages: u64,
    /// Calls made.
    pub calls: u64,
    /// Files sent (voice memos included).
    pub files: u64,
    /// Messages, calls and files per bucket.
    pub over_time: Chart,
    /// Active devices by operating system.
    pub devices_by_os: Vec<Slice>,
    /// Active devices by client version.
    pub client_versions: Vec<Slice>,
}

/// The report.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct Report {
    pub network_id: String,
    pub from: NaiveDate,
    /// Inclusive.
    pub to: NaiveDate,
    pub period: Period,
    pub breakdown: Breakdown,
    pub overview: Overview,
    pub members: Members,
    pub messages: Messages,
}

fn day_number(d: NaiveDate) -> Day {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("the epoch")).num_days() as Day
}

/// The bucket label of `d`.
pub fn bucket(d: NaiveDate, p: Period) -> String {
    match p {
        Period::Day => d.format("%Y-%m-%d").to_string(),
        Period::Week => {
            let w = d.iso_week();
            format!("{}-W{:02}", w.year(), w.week())
        }
        Period::Month => d.format("%Y-%m").to_string(),
    }
}

/// The buckets covering the range, in order, and each day's bucket index.
fn buckets(r: &Request) -> (Vec<String>, HashMap<Day, usize>) {
    let mut labels: Vec<String> = Vec::new();
    let mut index = HashMap::new();
    let mut d = r.from;
    while d <= r.to {
        let b = bucket(d, r.period);
        if labels.last() != Some(&b) {
            labels.push(b);
        }
        index.insert(day_number(d), labels.len() - 1);
        d = d + Days::new(1);
    }
    (labels, index)
}

fn slices(counts: HashMap<String, u64>) -> Vec<Slice> {
    let mut v: Vec<Slice> = counts
        .into_iter()
        .map(|(label, value)| Slice { label, value })
        .collect();
    v.sort_by(|a, b| b.value.cmp(&a.value).then(a.label.cmp(&b.label)));
    v
}

fn or_unknown(s: &str) -> String {
    if s.trim().is_empty() {
        "unknown".into()
    } else {
        s.to_string()
    }
}

/// The report of `network_id` for `r`.
pub fn compute(store: &Store, network_id: &str, r: &Request) -> Result<Report> {
    let (labels, index) = buckets(r);
    let n = labels.len();
    let (from_day, to_day) = (day_number(r.from), day_number(r.to));
    let end = (r.to + Days::new(1))
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc();
    let (groups, days, people) = store.read(|tx| {
        network::get(tx, network_id)?;
        let groups: HashMap<String, String> = group::list(tx, network_id)?
            .into_iter()
            .map(|g| (g.id, g.name))
            .collect();
        let days = daily::counts(tx, network_id, from_day, to_day)?;
        // Everyone in the directory, a page at a time, with their active devices.
        let mut people = Vec::new();
        let mut after = None;
        loop {
            let q = ListQuery {
                status: None,
                group_id: None,
                search: None,
                after: after.take(),
                limit: user::PAGE_MAX,
            };
            let (page, next) = user::list(tx, network_id, UserKind::User, &q)?;
            for u in page {
                let devices: Vec<_> = device::list(tx, &u.id)?
                    .into_iter()
                    .filter(|d| d.status == DeviceStatus::Active)
                    .collect();
                people.push((u, devices));
            }
            match next {
                Some(last) => after = Some(last.into_bytes()),
                None => break,
            }
        }
        Ok((groups, days, people))
    })?;

    // Overview.
    let (mut registered, mut pending) = (0, 0);
    let mut registrations = vec![0u64; n];
    let mut devices = 0;
    let mut versions: HashMap<String, u64> = HashMap::new();
    let mut systems: HashMap<String, u64> = HashMap::new();
    for (u, devs) in &people {
        if u.registered {
            let at = u.registered_at.unwrap_or(u.created_at);
            if at < end {
                registered += 1;
            }
            if let Some(i) = index.get(&day_number(at.date_naive())) {
                registrations[*i] += 1;
            }
        } else if u.created_at < end {
            pending += 1;
        }
        for d in devs {
            devices += 1;
            *versions.entry(or_unknown(&d.client_version)).or_default() += 1;
            *systems.entry(or_unknown(&d.platform)).or_default() += 1;
        }
    }

    // Members: unique active users per bucket and series.
    let mut everyone: HashSet<&str> = HashSet::new();
    let mut per: BTreeMap<String, Vec<HashSet<&str>>> = BTreeMap::new();
    let (mut messages, mut files) = (vec![0u64; n], vec![0u64; n]);
    for (day, c) in &days {
        let Some(&i) = index.get(day) else { continue };
        messages[i] += c.messages;
        files[i] += c.files;
        for (uid, a) in &c.active {
            everyone.insert(uid.as_str());
            let series = match r.breakdown {
                Breakdown::None => "Active users".to_string(),
                Breakdown::Platform => or_unknown(&a.platform),
                Breakdown::ClientVersion => or_unknown(&a.client_version),
                Breakdown::SecurityGroup => groups
                    .get(&a.group_id)
                    .cloned()
                    .unwrap_or_else(|| DELETED_GROUP.to_string()),
            };
            per.entry(series)
                .or_insert_with(|| vec![HashSet::new(); n])
                .get_mut(i)
                .expect("bucket in range")
                .insert(uid.as_str());
        }
    }
    let mut active_series: Vec<Series> = per
        .into_iter()
        .map(|(name, sets)| Series {
            name,
            values: sets.iter().map(|s| s.len() as u64).collect(),
        })
        .collect();
    if active_series.is_empty() && r.breakdown == Breakdown::None {
        active_series.push(Series {
            name: "Active users".into(),
            values: vec![0; n],
        });
    }

    // Calls from the calling relay's records.
    let start_ms = day_number(r.from) as u64 * 86_400_000;
    let end_ms = (day_number(r.to) as u64 + 1) * 86_400_000;
    let mut calls = vec![0u64; n];
    for c in crate::calling::calls::list(store, network_id, start_ms, end_ms, usize::MAX)? {
        if let Some(i) = index.get(&daily::day_of_ms(c.started_at)) {
            calls[*i] += 1;
        }
    }

    let client_versions = slices(versions);
    Ok(Report {
        network_id: network_id.to_string(),
        from: r.from,
        to: r.to,
        period: r.period,
        breakdown: r.breakdown,
        overview: Overview {
            registered,
            pending,
            registrations: Chart {
                buckets: labels.clone(),
                series: vec![Series {
                    name: "Registrations".into(),
                    values: registrations,
                }],
            },
            devices,
            client_versions: client_versions.clone(),
        },
        members: Members {
            active_users: everyone.len() as u64,
            active: Chart {
                buckets: labels.clone(),
                series: active_series,
            },
        },
        messages: Messages {
            messages: messages.iter().sum(),
            calls: calls.iter().sum(),
            files: files.iter().sum(),
            over_time: Chart {
                buckets: labels,
                series: vec![
                    Series {
                        name: "Messages".into(),
                        values: messages,
                    },
                    Series {
                        name: "Calls".into(),
                        values: calls,
                    },
                    Series {
                        name: "Files".into(),
                        values: files,
                    },
                ],
            },
            devices_by_os: slices(systems),
            client_versions,
        },
    })
}

fn csv_field(s: &str) -> String {
    // Spreadsheet formula injection: a leading =, +, - or @ is quoted away.
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// The report's data points as CSV: `tab,metric,bucket,series,value`, one per line
/// (totals and slices have an empty bucket).
pub fn csv(r: &Report) -> String {
    let mut out = String::from("tab,metric,bucket,series,value\n");
    let mut row = |tab: &str, metric: &str, bucket: &str, series: &str, value: u64| {
        out.push_str(&format!(
            "{tab},{metric},{},{},{value}\n",
            csv_field(bucket),
            csv_field(series)
        ));
    };
    let o = &r.overview;
    row("overview", "registered", "", "", o.registered);
    row("overview", "pending", "", "", o.pending);
    row("overview", "devices", "", "", o.devices);
    for s in &o.registrations.series {
        for (b, v) in o.registrations.buckets.iter().zip(&s.values) {
            row("overview", "registrations", b, &s.name, *v);
        }
    }
    for s in &o.client_versions {
        row("overview", "client_versions", "", &s.label, s.value);
    }
    row("members", "active_users", "", "", r.members.active_users);
    for s in &r.members.active.series {
        for (b, v) in r.members.active.buckets.iter().zip(&s.values) {
            row("members", "active", b, &s.name, *v);
        }
    }
    let m = &r.messages;
    row("messages", "messages", "", "", m.messages);
    row("messages", "calls", "", "", m.calls);
    row("messages", "files", "", "", m.files);
    for s in &m.over_time.series {
        for (b, v) in m.over_time.buckets.iter().zip(&s.values) {
            row("messages", &s.name.to_lowercase(), b, "", *v);
        }
    }
    for s in &m.devices_by_os {
        row("messages", "devices_by_os", "", &s.label, s.value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_follow_the_period() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let r = Request::new(
            Some(d("2026-11-28")),
            Some(d("2026-12-06")),
            Period::Week,
            Breakdown::None,
        )
        .unwrap();
        let (labels, index) = buckets(&r);
        assert_eq!(labels, vec!["2026-W48", "2026-W49"]);
        assert_eq!(index[&day_number(d("2026-11-30"))], 1);
        let r = Request {
            period: Period::Month,
            ..r
        };
        assert_eq!(buckets(&r).0, vec!["2026-11", "2026-12"]);
        assert!(
            Request::new(
                Some(d("2026-12-07")),
                Some(d("2026-12-06")),
                Period::Day,
                Breakdown::None
            )
            .is_err()
        );
        assert_eq!(csv_field("=SUM(A1)"), "'=SUM(A1)");
    }
}
