//! The admin API (`/admin/api/v1`): its state, its route table and its OpenAPI
//! document.
//!
//! The route table below is the single list of operations: each entry binds a path
//! and method to an [`Action`] and a handler, and each resource is wrapped by the
//! [`guard`] with exactly those actions, so an operation cannot be added without its
//! permission check and audit event. Wrong methods get 405 with `Allow`.

pub mod api;
pub mod guard;
pub mod openapi;
pub mod response;

use crate::auth::{Action, LoginLimiter};
use crate::config::Config;
use crate::store::Store;
use actix_web::http::Method;
use actix_web::middleware::from_fn;
use actix_web::{FromRequest, Handler, Responder, Route, web};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

/// Everything admin handlers need, shared by every HTTP worker.
pub struct AdminState {
    pub store: Store,
    pub config: Arc<Config>,
    pub limiter: LoginLimiter,
    pub data_dir: PathBuf,
    /// The calling relay, when it runs (set once it has started).
    pub turn: Arc<std::sync::OnceLock<Arc<crate::calling::Turn>>>,
    /// The appliance's base URL (registration links), known once HTTPS is bound.
    pub public_url: Arc<std::sync::OnceLock<String>>,
    /// Wakes the mail worker after a mail is queued; None when mail is off
    /// (`mail.transport = "none"`): invitations then return their links.
    pub mail: Option<crate::mail::outbox::Outbox>,
    /// Signs client profiles (GetClientProfile).
    pub profiles: Arc<crate::server::profile_signer::ProfileSigner>,
}

/// The path prefix of the admin API.
pub const PREFIX: &str = "/admin/api/v1";

/// One operation: a method and action on a path, and the route that handles it.
pub struct Op {
    pub method: Method,
    pub action: Action,
    route: Route,
}

pub(crate) fn op<F, Args>(method: Method, action: Action, handler: F) -> Op
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    Op {
        route: web::method(method.clone()).to(handler),
        method,
        action,
    }
}

/// Every admin API path with its operations (paths relative to [`PREFIX`]).
pub fn routes() -> Vec<(&'static str, Vec<Op>)> {
    use Action as A;
    use Method as M;
    use api::*;
    vec![
        (
            "/sessions",
            vec![op(M::POST, A::CreateAdminSession, sessions::create)],
        ),
        (
            "/sessions/current",
            vec![
                op(M::GET, A::GetAdminSession, sessions::current),
                op(M::DELETE, A::DeleteAdminSession, sessions::delete),
            ],
        ),
        (
            "/me/password",
            vec![op(
                M::POST,
                A::ChangeAdminPassword,
                sessions::change_password,
            )],
        ),
        (
            "/networks",
            vec![
                op(M::GET, A::ListNetworks, networks::list),
                op(M::POST, A::CreateNetwork, networks::create),
            ],
        ),
        (
            "/networks/{network_id}",
            vec![
                op(M::GET, A::GetNetwork, networks::get),
                op(M::PATCH, A::UpdateNetwork, networks::update),
                op(M::DELETE, A::DeleteNetwork, networks::delete),
            ],
        ),
        (
            "/networks/{network_id}/calls",
            vec![op(M::GET, A::ListCalls, calling::list_calls)],
        ),
        ("/mail/outbox", vec![op(M::GET, A::ListMail, mail::list)]),
        (
            "/networks/{network_id}/client-profile",
            vec![op(M::GET, A::GetClientProfile, client_profile::get)],
        ),
        (
            "/calling",
            vec![op(M::GET, A::GetCallingStatus, calling::status)],
        ),
        (
            "/calling/secret/rotate",
            vec![op(M::POST, A::RotateTurnSecret, calling::rotate_secret)],
        ),
        (
            "/networks/{network_id}/settings",
            vec![
                op(M::GET, A::GetNetworkSettings, networks::get_settings),
                op(
                    M::PATCH,
                    A::UpdateNetworkSettings,
                    networks::update_settings,
                ),
            ],
        ),
        (
            "/networks/{network_id}/data-retention",
            vec![
                op(M::GET, A::GetDataRetention, networks::get_retention),
                op(M::PUT, A::UpdateDataRetention, networks::update_retention),
            ],
        ),
        (
            "/networks/{network_id}/data-retention/compliance-device",
            vec![op(
                M::PUT,
                A::PutComplianceDevice,
                networks::put_compliance_device,
            )],
        ),
        (
            "/networks/{network_id}/tags",
            vec![
                op(M::GET, A::ListTagsForResource, networks::list_tags),
                op(M::POST, A::TagResource, networks::tag),
            ],
        ),
        (
            "/networks/{network_id}/tags/{key}",
            vec![op(M::DELETE, A::UntagResource, networks::untag)],
        ),
        (
            "/networks/{network_id}/sso",
            vec![
                op(M::GET, A::GetOidcInfo, sso::get),
                op(M::PUT, A::RegisterOidcConfig, sso::put),
            ],
        ),
        (
            "/networks/{network_id}/sso/test",
            vec![op(M::POST, A::RegisterOidcConfigTest, sso::test)],
        ),
        (
            "/networks/{network_id}/security-groups",
            vec![
                op(M::GET, A::ListSecurityGroups, groups::list),
                op(M::POST, A::CreateSecurityGroup, groups::create),
            ],
        ),
        (
            "/networks/{network_id}/security-groups/{group_id}",
            vec![
                op(M::GET, A::GetSecurityGroup, groups::get),
                op(M::PATCH, A::UpdateSecurityGroup, groups::update),
                op(M::DELETE, A::DeleteSecurityGroup, groups::delete),
            ],
        ),
        (
            "/networks/{network_id}/security-groups/{group_id}/users",
            vec![op(M::GET, A::ListSecurityGroupUsers, groups::users)],
        ),
        (
            "/networks/{network_id}/users",
            vec![
                op(M::GET, A::ListUsers, users::list),
                op(M::POST, A::CreateUser, users::create),
            ],
        ),
        (
            "/networks/{network_id}/users/count",
            vec![op(M::GET, A::GetUsersCount, users::count)],
        ),
        (
            "/networks/{network_id}/users/export",
            vec![op(M::GET, A::ExportUsers, users::export)],
        ),
        (
            "/networks/{network_id}/users/templates/{action}",
            vec![op(M::GET, A::GetUserTemplate, users::template)],
        ),
        (
            "/networks/{network_id}/users/batch-create",
            vec![op(M::POST, A::BatchCreateUser, users::batch_create)],
        ),
        (
            "/networks/{network_id}/users/batch-delete",
            vec![op(M::POST, A::BatchDeleteUser, users::batch_delete)],
        ),
        (
            "/networks/{network_id}/users/batch-suspend",
            vec![op(M::POST, A::BatchSuspendUser, users::batch_suspend)],
        ),
        (
            "/networks/{network_id}/users/{user_id}",
            vec![
                op(M::GET, A::GetUser, users::get),
                op(M::PATCH, A::UpdateUser, users::update),
                op(M::DELETE, A::DeleteUser, users::delete),
            ],
        ),
        (
            "/networks/{network_id}/users/{user_id}/suspend",
            vec![op(M::POST, A::SuspendUser, users::suspend)],
        ),
        (
            "/networks/{network_id}/users/{user_id}/unsuspend",
            vec![op(M::POST, A::UnsuspendUser, users::unsuspend)],
        ),
        (
            "/networks/{network_id}/users/{user_id}/invitation",
            vec![
                op(M::POST, A::ReinviteUser, invitations::reinvite),
                op(M::DELETE, A::RevokeInvitation, invitations::revoke),
            ],
        ),
        (
            "/networks/{network_id}/users/{user_id}/password-reset",
            vec![op(
                M::POST,
                A::SendPasswordReset,
                invitations::password_reset,
            )],
        ),
        (
            "/networks/{network_id}/users/{user_id}/unlock",
            vec![op(M::POST, A::UnlockUser, users::unlock)],
        ),
        (
            "/networks/{network_id}/users/{user_id}/devices",
            vec![op(M::GET, A::ListDevicesForUser, users::devices)],
        ),
        (
            "/networks/{network_id}/users/{user_id}/devices/reset",
            vec![op(M::POST, A::ResetDevicesForUser, users::reset_devices)],
        ),
        (
            "/networks/{network_id}/bots",
            vec![
                op(M::GET, A::ListBots, bots::list),
                op(M::POST, A::CreateBot, bots::create),
            ],
        ),
        (
            "/networks/{network_id}/bots/{bot_id}",
            vec![
                op(M::GET, A::GetBot, bots::get),
                op(M::PATCH, A::UpdateBot, bots::update),
                op(M::DELETE, A::DeleteBot, bots::delete),
            ],
        ),
        (
            "/admins",
            vec![
                op(M::GET, A::ListAdmins, admins::list),
                op(M::POST, A::CreateAdmin, admins::create),
            ],
        ),
        (
            "/admins/{admin_id}",
            vec![
                op(M::GET, A::GetAdmin, admins::get),
                op(M::PATCH, A::UpdateAdmin, admins::update),
                op(M::DELETE, A::DeleteAdmin, admins::delete),
            ],
        ),
        ("/audit", vec![op(M::GET, A::ListAuditEvents, audit::list)]),
        (
            "/audit/export",
            vec![op(M::GET, A::ExportAuditEvents, audit::export)],
        ),
        (
            "/audit/verify",
            vec![op(M::GET, A::VerifyAuditLog, audit::verify)],
        ),
        (
            "/backup",
            vec![op(M::POST, A::CreateBackup, backup::create)],
        ),
        (
            "/networks/{network_id}/analytics",
            vec![op(M::GET, A::GetAnalytics, analytics::get)],
        ),
        (
            "/networks/{network_id}/analytics/export",
            vec![op(M::GET, A::ExportAnalytics, analytics::export)],
        ),
        (
            "/system/status",
            vec![op(M::GET, A::GetSystemStatus, status::get)],
        ),
    ]
}

/// Unknown paths under the admin API: 404, recorded as `UnknownOperation`.
async fn audited_not_found(
    req: actix_web::HttpRequest,
    state: web::Data<AdminState>,
) -> actix_web::HttpResponse {
    use actix_web::ResponseError;
    let e = crate::error::Error::not_found(
        "not_found",
        format!("there is nothing at {} {}", req.method(), req.path()),
    );
    match guard::record_unrouted(&state, &req, 404, e.code, &e.message).await {
        Ok(()) => e.error_response(),
        Err(audit) => audit.error_response(),
    }
}

/// Register the admin API under [`PREFIX`].
pub fn configure(cfg: &mut web::ServiceConfig, json_limit: usize) {
    let mut scope = web::scope(PREFIX)
        .app_data(response::json_config(json_limit))
        .app_data(response::query_config())
        .app_data(response::path_config())
        .route("/openapi.json", web::get().to(openapi::serve))
        .default_service(web::to(audited_not_found));
    for (path, ops) in routes() {
        scope = scope.service(guarded(path, ops, guard::API));
    }
    cfg.service(scope);
}

/// A resource whose operations pass the guard before `front` (the admin API or the
/// console): authentication, the action's permission, and the audit record.
pub(crate) fn guarded(
    path: &'static str,
    ops: Vec<Op>,
    front: guard::Front,
) -> actix_web::Resource<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<actix_web::body::BoxBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let allow = ops
        .iter()
        .map(|o| o.method.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let actions: guard::MethodActions =
        Rc::new(ops.iter().map(|o| (o.method.clone(), o.action)).collect());
    let mut resource = web::resource(path);
    for o in ops {
        resource = resource.route(o.route);
    }
    resource
        .default_service(web::to(move || {
            let allow = allow.clone();
            async move { response::method_not_allowed(&allow) }
        }))
        .wrap(from_fn(move |req, next| {
            guard::guard(actions.clone(), front, req, next)
        }))
}
