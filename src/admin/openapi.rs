//! The OpenAPI 3 document of the admin API, generated from the handlers' annotations.
//!
//! Handlers declare their success responses; [`document`] adds what every operation
//! shares — the bearer security requirement (except for signing in) and the error
//! responses each kind of operation can give, all with the common error body — so the
//! document states exactly what the server does.

use super::api::{
    admins, analytics, audit, backup, bots, calling, client_profile, groups, invitations, mail,
    networks, sessions, sso, status, users,
};
use super::response::ErrorBody;
use actix_web::HttpResponse;
use std::sync::LazyLock;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder, Server};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "outpost admin API",
        description = "Administration of an outpost appliance: networks, security groups, users, bots, \
            admins, single sign-on, the audit log, backups and the calling relay. Every error is `{code, message, details}` with a stable code \
            (docs/ADMIN-API.md). Operation ids are the permission and audit-event names.",
        license(name = "Apache-2.0")
    ),
    paths(
        sessions::create, sessions::current, sessions::delete, sessions::change_password,
        networks::list, networks::create, networks::get, networks::update, networks::delete,
        networks::get_settings, networks::update_settings, networks::get_retention, networks::update_retention, networks::put_compliance_device,
        networks::list_tags, networks::tag, networks::untag,
        sso::get, sso::put, sso::test,
        groups::list, groups::create, groups::get, groups::update, groups::delete, groups::users,
        users::list, users::count, users::create, users::get, users::update, users::delete,
        users::suspend, users::unsuspend, users::unlock, users::devices, users::reset_devices,
        users::export, users::template, users::batch_create, users::batch_delete, users::batch_suspend,
        bots::list, bots::create, bots::get, bots::update, bots::delete,
        admins::list, admins::create, admins::get, admins::update, admins::delete,
        audit::list, audit::export, audit::verify,
        backup::create,
        calling::status, calling::rotate_secret, calling::list_calls,
        invitations::reinvite, invitations::password_reset, mail::list, client_profile::get,
        invitations::revoke,
        analytics::get, analytics::export, status::get,
    ),
    components(schemas(ErrorBody, crate::error::FieldProblem, crate::directory::bulk::CsvReport,
        crate::directory::bulk::RowError)),
    modifiers(&Common),
    tags(
        (name = "sessions", description = "Signing in and out"),
        (name = "networks", description = "Networks, their settings and tags (F1)"),
        (name = "sso", description = "Single sign-on through a network's OpenID Connect identity provider (F5)"),
        (name = "security-groups", description = "Security groups and their policies (F2)"),
        (name = "users", description = "The team directory (F3)"),
        (name = "bots", description = "Bot accounts (F3)"),
        (name = "admins", description = "Admin accounts and roles"),
        (name = "audit", description = "The audit log (F13)"),
        (name = "operations", description = "Backups and the system status"),
        (name = "mail", description = "The mail outbox: invitations and other mails, and their delivery (F4)"),
        (name = "calling", description = "The calling relay: status, TURN secret rotation and call records (F7)"),
        (name = "analytics", description = "A network's analytics: members, devices, messages, calls and files by UTC day, week or month (F12)"),
    )
)]
struct Doc;

struct Common;

fn error(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
        .into()
}

fn add(op: &mut Operation, status: &str, description: &str) {
    op.responses
        .responses
        .entry(status.to_string())
        .or_insert_with(|| error(description));
}

impl Modify for Common {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        doc.servers = Some(vec![Server::new(super::PREFIX)]);
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A token from CreateAdminSession (POST /sessions)"))
                    .build(),
            ),
        );
        for (path, item) in doc.paths.paths.iter_mut() {
            let has_params = path.contains('{');
            let ops = [
                ("get", item.get.as_mut()),
                ("post", item.post.as_mut()),
                ("put", item.put.as_mut()),
                ("patch", item.patch.as_mut()),
                ("delete", item.delete.as_mut()),
            ];
            for (method, op) in ops {
                let Some(op) = op else { continue };
                let sign_in = op.operation_id.as_deref() == Some("CreateAdminSession");
                if !sign_in && op.security.is_none() {
                    op.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
                        "bearer",
                        Vec::<String>::new(),
                    )]);
                }
                add(
                    op,
                    "400",
                    "The request is malformed (bad JSON, bad query, bad cursor)",
                );
                if sign_in {
                    add(op, "401", "Wrong username or password");
                    add(
                        op,
                        "403",
                        "The account is locked after too many failed sign-ins",
                    );
                    add(op, "429", "Too many sign-in attempts from this address");
                } else {
                    add(
                        op,
                        "401",
                        "No valid session token (missing, expired, forged or revoked)",
                    );
                    add(
                        op,
                        "403",
                        "The caller's role or network assignment does not allow this",
                    );
                }
                if has_params {
                    add(op, "404", "A named resource does not exist");
                }
                if method != "get"
                    || path.contains("/audit")
                    || path.ends_with("/users")
                    || path.ends_with("/bots")
                    || path.contains("/analytics")
                {
                    add(op, "409", "The request conflicts with existing state");
                    add(
                        op,
                        "422",
                        "A value is invalid or a rule is broken; `details` lists each problem",
                    );
                }
                if method != "get" {
                    add(op, "413", "The request body is too large");
                }
                add(
                    op,
                    "503",
                    "The store is unavailable or the appliance is shutting down",
                );
            }
        }
    }
}

/// The document, built once.
pub static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    Doc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes")
});

pub fn document() -> utoipa::openapi::OpenApi {
    Doc::openapi()
}

pub async fn serve() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(DOCUMENT.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_with_its_action_name() {
        let doc = document();
        let mut documented = 0;
        for (path, ops) in super::super::routes() {
            let item = doc
                .paths
                .paths
                .get(path)
                .unwrap_or_else(|| panic!("{path} is not in the OpenAPI document"));
            for o in ops {
                let op = match o.method.as_str() {
                    "GET" => item.get.as_ref(),
                    "POST" => item.post.as_ref(),
                    "PUT" => item.put.as_ref(),
                    "PATCH" => item.patch.as_ref(),
                    "DELETE" => item.delete.as_ref(),
                    m => panic!("unexpected method {m}"),
                }
                .unwrap_or_else(|| panic!("{} {path} is not documented", o.method));
                assert_eq!(
                    op.operation_id.as_deref(),
                    Some(o.action.name()),
                    "{} {path}",
                    o.method
                );
                documented += 1;
            }
        }
        let total: usize = doc
            .paths
            .paths
            .values()
            .map(|i| {
                [&i.get, &i.post, &i.put, &i.patch, &i.delete]
                    .iter()
                    .filter(|o| o.is_some())
                    .count()
            })
            .sum();
        assert_eq!(
            documented, total,
            "the document has operations the server does not route"
        );
        assert!(DOCUMENT.contains("\"openapi\": \"3."));
    }
}
