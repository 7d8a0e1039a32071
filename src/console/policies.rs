//! Console: a network's policies (PRODUCT.md F1, F9, F11) — read receipts, data
//! retention (its own switch, UpdateDataRetention, which needs the compliance or owner
//! role), the file-download default of new groups, guest users, the consent pop-up with
//! its preview, and the classification level and caveats that set the banner.
//!
//! Each section is its own form; saving one sends the API's partial UpdateNetworkSettings
//! with only that section's fields, so the console refuses what the API refuses, with
//! the same messages, next to the fields.

use super::fields::{self, Choice, Field, Kind, field};
use super::form::Form;
use super::page::{Banner, PageContext, refusal, render, see_other, with_error};
use super::{Console, PREFIX};
use crate::admin::AdminState;
use crate::admin::api::networks;
use crate::admin::guard::Audit;
use crate::auth::{Action, Caller, permission};
use crate::directory::network;
use crate::directory::network_settings as ns;
use crate::error::{Error, FieldProblem, Kind as ErrorKind};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use std::collections::HashMap;

#[derive(Deserialize)]
pub struct NetworkPath {
    network_id: String,
}

/// One form of the page.
pub struct Section {
    pub name: &'static str,
    pub title: &'static str,
    pub fields: &'static [Field],
}

const READ_RECEIPTS: &[(&str, Choice, &str)] = &[
    (
        "enabled",
        Choice::Str("enabled"),
        "Members choose whether to send read receipts",
    ),
    ("force_enabled", Choice::Str("force_enabled"), "Always sent"),
    ("disabled", Choice::Str("disabled"), "Never sent"),
];

const LEVELS: &[(&str, Choice, &str)] = &[
    ("none", Choice::Str("none"), "None (no banner)"),
    ("unclassified", Choice::Str("unclassified"), "UNCLASSIFIED"),
    ("cui", Choice::Str("cui"), "CUI"),
    ("confidential", Choice::Str("confidential"), "CONFIDENTIAL"),
    ("secret", Choice::Str("secret"), "SECRET"),
    ("top_secret", Choice::Str("top_secret"), "TOP SECRET"),
    (
        "top_secret_sci",
        Choice::Str("top_secret_sci"),
        "TOP SECRET//SCI",
    ),
];

pub const SECTIONS: &[Section] = &[
    Section {
        name: "messaging",
        title: "Messaging",
        fields: &[field(
            "read_receipts",
            "Read receipts",
            "Whether senders see when a one-to-one message was read. With other networks, \
             receipts show only if both networks have them on.",
            Kind::Choice(READ_RECEIPTS),
        )],
    },
    Section {
        name: "files",
        title: "Files and guests",
        fields: &[
            field(
                "file_download",
                "File download in new security groups",
                "The file-download setting new security groups start with (each group can \
                 change it on its Media and links tab). Off: members can only preview files.",
                Kind::Bool,
            ),
            field(
                "guest_users",
                "Guest users",
                "Guests may register and be reached by security groups that allow them.",
                Kind::Bool,
            ),
        ],
    },
    Section {
        name: "consent",
        title: "Consent pop-up",
        fields: &[
            field(
                "consent.enabled",
                "Show the consent pop-up",
                "Every member must acknowledge it when they sign in, and again whenever its \
                 text changes.",
                Kind::Bool,
            ),
            field(
                "consent.title",
                "Title",
                "Shown at the top of the pop-up (at most 200 characters; required when the \
                 pop-up is on).",
                Kind::Text {
                    max: ns::CONSENT_TITLE_MAX,
                },
            ),
            field(
                "consent.body",
                "Body",
                "The terms, policy or requirements (at most 20,000 characters; line breaks \
                 are kept; required when the pop-up is on).",
                Kind::LongText {
                    max: ns::CONSENT_BODY_MAX,
                },
            ),
            field(
                "consent.button_label",
                "Button label",
                "The acknowledge button's text, e.g. Acknowledge, Accept, Continue (at most \
                 40 characters).",
                Kind::Text {
                    max: ns::CONSENT_BUTTON_MAX,
                },
            ),
        ],
    },
    Section {
        name: "classification",
        title: "Classification",
        fields: &[
            field(
                "classification.level",
                "Classification level",
                "The level of the information this network holds: the banner at the top and \
                 bottom of every client and console page, in the level's colours. The \
                 console shows the highest level of the appliance's networks.",
                Kind::Choice(LEVELS),
            ),
            field(
                "classification.caveats",
                "Caveats",
                "Added to the banner after the level, e.g. NOFORN gives SECRET//NOFORN \
                 (at most 200 characters; shown in capitals).",
                Kind::Text {
                    max: ns::CAVEATS_MAX,
                },
            ),
        ],
    },
];

fn section(name: &str) -> Option<&'static Section> {
    SECTIONS.iter().find(|s| s.name == name)
}

/// What a refused form leaves on the page.
#[derive(Default)]
struct Refused<'a> {
    section: &'a str,
    error: Option<&'a Error>,
    typed: Option<&'a HashMap<String, String>>,
    problems: Vec<FieldProblem>,
}

fn page(
    console: &Console,
    state: &AdminState,
    req: &HttpRequest,
    caller: &Caller,
    id: &str,
    status: StatusCode,
    refused: Refused<'_>,
) -> HttpResponse {
    let found = state
        .store
        .read(|tx| network::get(tx, id))
        .and_then(|n| Ok((n, networks::retention_state(state, id)?)));
    let (n, retention) = match found {
        Ok(x) => x,
        Err(e) => return refusal(req, &e),
    };
    let settings = serde_json::to_value(&n.settings).unwrap_or_default();
    let mut sections = serde_json::Map::new();
    for s in SECTIONS {
        let mine = refused.section == s.name;
        let problems = if mine { &refused.problems[..] } else { &[] };
        let shown = fields::show(
            s.fields,
            &settings,
            refused.typed.filter(|_| mine),
            problems,
            "settings",
        );
        sections.insert(
            s.name.to_string(),
            serde_json::json!({
                "title": s.title,
                "fields": shown,
                "problems": fields::listed(s.fields, "settings", problems),
            }),
        );
    }
    // The preview shows the pop-up as saved, or as typed when the form was refused.
    let consent_typed = refused.typed.filter(|_| refused.section == "consent");
    let text = |k: &str, saved: &str| {
        consent_typed
            .map(|t| t.get(k).cloned().unwrap_or_default())
            .unwrap_or_else(|| saved.to_string())
    };
    let c = &n.settings.consent;
    let preview = serde_json::json!({
        "title": text("consent.title", &c.title),
        "body": text("consent.body", &c.body),
        "button": text("consent.button_label", &c.button_label),
        "enabled": c.enabled,
        "version": c.version,
    });
    let may = |a: Action| permission::allows(caller.admin.role, a);
    let mut p = PageContext::new(
        console,
        req,
        &format!("Network policies — {}", n.name),
        console.appliance_banner(),
    );
    p.insert("section", "networks")
        .insert("network", &n)
        .insert("sections", &sections)
        .insert("preview", &preview)
        .insert("banner_tag", &Banner::of(&n.settings.classification))
        .insert("retention", &retention)
        .insert(
            "retention_device_at",
            &retention
                .compliance_device
                .as_ref()
                .map(|d| d.created_at.format("%Y-%m-%d %H:%M UTC").to_string()),
        )
        .insert("may_edit", &may(Action::UpdateNetworkSettings))
        .insert("may_retention", &may(Action::UpdateDataRetention))
        .insert(
            "retention_error",
            &(refused.section == "data_retention")
                .then(|| refused.error.map(|e| e.message.clone())),
        );
    let res = render(console, req, "console/policies.html", status, &p);
    match refused.error {
        Some(e) => with_error(res, e),
        None => res,
    }
}

fn status_of(e: &Error) -> StatusCode {
    StatusCode::from_u16(e.kind.status()).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY)
}

/// `GET /console/networks/{network_id}/policies` (GetNetworkSettings).
pub async fn show(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<NetworkPath>,
) -> HttpResponse {
    let id = path.into_inner().network_id;
    page(
        &console,
        &state,
        &req,
        &caller,
        &id,
        StatusCode::OK,
        Refused::default(),
    )
}

/// `POST /console/networks/{network_id}/policies` (UpdateNetworkSettings): one section's
/// form (`_section`).
pub async fn update(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    audit: Audit,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<NetworkPath>,
    form: Form<HashMap<String, String>>,
) -> HttpResponse {
    let id = path.into_inner().network_id;
    let typed = form.0;
    let Some(s) = section(typed.get("_section").map(String::as_str).unwrap_or("")) else {
        let e = Error::bad_request(
            "invalid_form",
            "the form names no section of the network's policies; reload the page",
        );
        return refusal(&req, &e);
    };
    let (patch, problems) = fields::patch_of(s.fields, &typed, "settings");
    audit.param("settings", patch.clone());
    let done = if problems.is_empty() {
        networks::update_network_settings(&state, &audit, id.clone(), patch).await
    } else {
        Err(Error::validation(problems))
    };
    match done {
        Ok(_) => see_other(
            &format!("{PREFIX}/networks/{id}/policies#{}", s.name),
            Some(&format!("{} policy saved.", s.title)),
        ),
        Err(e) if e.kind == ErrorKind::NotFound => refusal(&req, &e),
        Err(e) => {
            let refused = Refused {
                section: s.name,
                error: Some(&e),
                typed: Some(&typed),
                problems: fields::problems_of(&e),
            };
            page(&console, &state, &req, &caller, &id, status_of(&e), refused)
        }
    }
}

#[derive(Deserialize)]
pub struct Retention {
    #[serde(default)]
    enabled: String,
}

/// `POST /console/networks/{network_id}/policies/data-retention` (UpdateDataRetention).
pub async fn retention(
    console: web::Data<Console>,
    state: web::Data<AdminState>,
    audit: Audit,
    req: HttpRequest,
    caller: Caller,
    path: web::Path<NetworkPath>,
    form: Form<Retention>,
) -> HttpResponse {
    let id = path.into_inner().network_id;
    let enabled = match form.0.enabled.as_str() {
        "true" => true,
        "false" => false,
        other => {
            let e = Error::bad_request(
                "invalid_form",
                format!("{other:?} is not on or off; reload the page"),
            );
            return refusal(&req, &e);
        }
    };
    audit.param("enabled", enabled);
    match networks::set_data_retention(&state, &audit, id.clone(), enabled).await {
        Ok(r) => see_other(
            &format!("{PREFIX}/networks/{id}/policies#data-retention"),
            Some(if r.enabled {
                "Data retention is on: every message is now also sent to the network's \
                 compliance member."
            } else {
                "Data retention is off."
            }),
        ),
        Err(e) if e.kind == ErrorKind::NotFound => refusal(&req, &e),
        Err(e) => {
            let refused = Refused {
                section: "data_retention",
                error: Some(&e),
                typed: None,
                problems: Vec::new(),
            };
            page(&console, &state, &req, &caller, &id, status_of(&e), refused)
        }
    }
}
