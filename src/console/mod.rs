//! The admin console (issue 6): the whole administration in a browser, as server-rendered
//! pages under `/console` that work without JavaScript (a small script only enhances
//! them), with everything they need served from the binary.
//!
//! Every console page and form passes the same guard as the admin API
//! (`admin::guard`), under the same action names: the same permission checks, and every
//! action — page views included — in the audit log. Only the front differs: the session
//! token comes from a `Secure; HttpOnly; SameSite=Strict` cookie, forms carry a CSRF
//! token ([`cookie`]), and refusals are pages ([`page::refusal`]). Handlers are thin:
//! they call the same typed functions the API's handlers call and render the result.

pub mod analytics;
pub mod assets;
pub mod audit;
pub mod cookie;
pub mod directory;
pub mod fields;
pub mod form;
pub mod group;
pub mod group_tabs;
pub mod groups;
pub mod network;
pub mod networks;
pub mod page;
pub mod policies;
pub mod reauth;
pub mod sign_in;
// People: directory actions, users, bulk files, bots, admins, invitations.
pub mod admins;
pub mod bots;
pub mod bulk;
pub mod invitations;
pub mod multipart;
pub mod outcome;
pub mod status;
pub mod user;
pub mod users;

use crate::admin::guard::Front;
use crate::admin::{guarded, op};
use crate::auth::Action;

use crate::store::{self, Store};
use actix_web::http::Method;
use actix_web::web;
use page::Banner;

/// Where the console lives.
pub const PREFIX: &str = "/console";

/// The console's state: its templates, the CSRF key, and the store (for the banner).
pub struct Console {
    pub tera: tera::Tera,
    pub csrf: cookie::Csrf,
    pub store: Store,
}

const CSRF_META: &str = "console_csrf_key";

impl Console {
    /// Load the templates and the CSRF key (made on first start, kept in the store).
    pub async fn load(store: Store) -> crate::error::Result<Console> {
        let key = match store.read(|tx| store::meta_get(tx, CSRF_META))? {
            Some(k) if k.len() == 32 => k.try_into().expect("32 bytes"),
            _ => {
                let k: [u8; 32] = rand::random();
                store
                    .write(move |tx| store::meta_put(tx, CSRF_META, &k))
                    .await?;
                k
            }
        };
        Ok(Console {
            tera: templates(),
            csrf: cookie::Csrf::with_key(key),
            store,
        })
    }

    /// The appliance's banner: the highest classification among its networks.
    pub fn appliance_banner(&self) -> Option<Banner> {
        let nets = self
            .store
            .read(|tx| crate::directory::network::list(tx))
            .unwrap_or_default();
        Banner::highest(nets.iter().map(|n| &n.settings.classification))
    }
}

/// The console's front for the guard: the session cookie, and pages for refusals.
pub const FRONT: Front = Front {
    token: cookie::session_token,
    refuse: page::refusal,
};

fn templates() -> tera::Tera {
    let mut t = tera::Tera::default();
    t.add_raw_templates(vec![
        (
            "console/base.html",
            include_str!("../../templates/console/base.html"),
        ),
        (
            "console/error.html",
            include_str!("../../templates/console/error.html"),
        ),
        (
            "console/sign_in.html",
            include_str!("../../templates/console/sign_in.html"),
        ),
        (
            "console/password.html",
            include_str!("../../templates/console/password.html"),
        ),
        (
            "console/networks.html",
            include_str!("../../templates/console/networks.html"),
        ),
        (
            "console/network.html",
            include_str!("../../templates/console/network.html"),
        ),
        (
            "console/directory.html",
            include_str!("../../templates/console/directory.html"),
        ),
        (
            "console/group_fields.html",
            include_str!("../../templates/console/group_fields.html"),
        ),
        (
            "console/policies.html",
            include_str!("../../templates/console/policies.html"),
        ),
        (
            "console/groups.html",
            include_str!("../../templates/console/groups.html"),
        ),
        (
            "console/group.html",
            include_str!("../../templates/console/group.html"),
        ),
        (
            "console/invite_form.html",
            include_str!("../../templates/console/invite_form.html"),
        ),
        (
            "console/invite.html",
            include_str!("../../templates/console/invite.html"),
        ),
        (
            "console/user.html",
            include_str!("../../templates/console/user.html"),
        ),
        (
            "console/bulk.html",
            include_str!("../../templates/console/bulk.html"),
        ),
        (
            "console/bots.html",
            include_str!("../../templates/console/bots.html"),
        ),
        (
            "console/admins.html",
            include_str!("../../templates/console/admins.html"),
        ),
        (
            "console/admin.html",
            include_str!("../../templates/console/admin.html"),
        ),
        (
            "console/invitations.html",
            include_str!("../../templates/console/invitations.html"),
        ),
        (
            "console/mail.html",
            include_str!("../../templates/console/mail.html"),
        ),
        (
            "console/audit.html",
            include_str!("../../templates/console/audit.html"),
        ),
        (
            "console/audit_event.html",
            include_str!("../../templates/console/audit_event.html"),
        ),
        (
            "console/audit_verify.html",
            include_str!("../../templates/console/audit_verify.html"),
        ),
        (
            "console/analytics.html",
            include_str!("../../templates/console/analytics.html"),
        ),
        (
            "console/status.html",
            include_str!("../../templates/console/status.html"),
        ),
    ])
    .expect("the embedded console templates parse");
    t.autoescape_on(vec![".html"]);
    t.set_escape_fn(crate::html::escape);
    t
}

/// Register the console's pages.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use Action as A;
    use Method as M;
    let guarded = |path: &'static str, ops| guarded(path, ops, FRONT);
    cfg.service(
        web::scope(PREFIX)
            .app_data(form::config())
            .route("", web::get().to(sign_in::home))
            .route("/", web::get().to(sign_in::home))
            .route("/static/console.css", web::get().to(assets::css))
            .route("/static/console.js", web::get().to(assets::js))
            .route("/sign-in", web::get().to(sign_in::show))
            .service(guarded(
                "/sign-in",
                vec![op(M::POST, A::CreateAdminSession, sign_in::submit)],
            ))
            .service(guarded(
                "/sign-out",
                vec![op(M::POST, A::DeleteAdminSession, sign_in::sign_out)],
            ))
            .service(guarded(
                "/password",
                vec![
                    op(M::GET, A::GetAdminSession, sign_in::password_page),
                    op(M::POST, A::ChangeAdminPassword, sign_in::change_password),
                ],
            ))
            .service(guarded(
                "/networks",
                vec![
                    op(M::GET, A::ListNetworks, networks::list),
                    op(M::POST, A::CreateNetwork, networks::create),
                ],
            ))
            .service(guarded(
                "/networks/{network_id}",
                vec![op(M::GET, A::GetNetwork, network::show)],
            ))
            .service(guarded(
                "/networks/{network_id}/users",
                vec![op(M::GET, A::ListUsers, directory::list)],
            ))
            .service(guarded(
                "/networks/{network_id}/rename",
                vec![op(M::POST, A::UpdateNetwork, network::rename)],
            ))
            .service(guarded(
                "/networks/{network_id}/tags",
                vec![op(M::POST, A::TagResource, network::tag)],
            ))
            .service(guarded(
                "/networks/{network_id}/tags/remove",
                vec![op(M::POST, A::UntagResource, network::untag)],
            ))
            .service(guarded(
                "/networks/{network_id}/delete",
                vec![op(M::POST, A::DeleteNetwork, network::delete)],
            ))
            .service(guarded(
                "/networks/{network_id}/policies",
                vec![
                    op(M::GET, A::GetNetworkSettings, policies::show),
                    op(M::POST, A::UpdateNetworkSettings, policies::update),
                ],
            ))
            .service(guarded(
                "/networks/{network_id}/policies/data-retention",
                vec![op(M::POST, A::UpdateDataRetention, policies::retention)],
            ))
            .service(guarded(
                "/networks/{network_id}/groups",
                vec![
                    op(M::GET, A::ListSecurityGroups, groups::list),
                    op(M::POST, A::CreateSecurityGroup, groups::create),
                ],
            ))
            .service(guarded(
                "/networks/{network_id}/groups/{group_id}",
                vec![
                    op(M::GET, A::GetSecurityGroup, group::show),
                    op(M::POST, A::UpdateSecurityGroup, group::update),
                ],
            ))
            .service(guarded(
                "/networks/{network_id}/groups/{group_id}/delete",
                vec![op(M::POST, A::DeleteSecurityGroup, group::delete)],
            ))
            .configure(people)
            .service(guarded(
                "/audit",
                vec![op(M::GET, A::ListAuditEvents, audit::list)],
            ))
            .service(guarded(
                "/audit/events/{seq}",
                vec![op(M::GET, A::ListAuditEvents, audit::show)],
            ))
            .service(guarded(
                "/audit/export",
                vec![op(M::GET, A::ExportAuditEvents, audit::export)],
            ))
            .service(guarded(
                "/audit/verify",
                vec![op(M::GET, A::VerifyAuditLog, audit::verify)],
            ))
            .service(guarded(
                "/networks/{network_id}/analytics",
                vec![op(M::GET, A::GetAnalytics, analytics::show)],
            ))
            .service(guarded(
                "/networks/{network_id}/analytics/export",
                vec![op(M::GET, A::ExportAnalytics, analytics::export)],
            ))
            .service(guarded(
                "/status",
                vec![op(M::GET, A::GetSystemStatus, status::show)],
            ))
            .default_service(web::to(sign_in::not_found)),
    );
}

/// The people pages: directory actions, users, bulk files (fixed paths before
/// `{user_id}`).
fn people(cfg: &mut web::ServiceConfig) {
    use Action as A;
    use Method as M;
    let guarded = |path: &'static str, ops| guarded(path, ops, FRONT);
    cfg.service(guarded(
        "/networks/{network_id}/users/invite",
        vec![op(M::POST, A::CreateUser, users::invite)],
    ))
    .service(guarded(
        "/networks/{network_id}/users/export",
        vec![op(M::GET, A::ExportUsers, users::export)],
    ))
    .service(guarded(
        "/networks/{network_id}/users/templates/{action}",
        vec![op(M::GET, A::GetUserTemplate, users::template)],
    ))
    .service(guarded(
        "/networks/{network_id}/users/bulk",
        vec![op(M::GET, A::GetUsersCount, bulk::show)],
    ))
    .service(guarded(
        "/networks/{network_id}/users/bulk/invite",
        vec![op(M::POST, A::BatchCreateUser, bulk::invite)],
    ))
    .service(guarded(
        "/networks/{network_id}/users/bulk/suspend",
        vec![op(M::POST, A::BatchSuspendUser, bulk::suspend)],
    ))
    .service(guarded(
        "/networks/{network_id}/users/bulk/delete",
        vec![op(M::POST, A::BatchDeleteUser, bulk::delete)],
    ))
    .service(guarded(
        "/networks/{network_id}/users/{user_id}",
        vec![op(M::GET, A::GetUser, user::show)],
    ))
    .service(guarded(
        "/networks/{network_id}/users/{user_id}/edit",
        vec![op(M::POST, A::UpdateUser, user::edit)],
    ))
    .service(guarded(
        "/networks/{network_id}/users/{user_id}/suspend",
        vec![op(M::POST, A::SuspendUser, user::suspend)],
    ))
    .service(guarded(
        "/networks/{network_id}/users/{user_id}/unsuspend",
        vec![op(M::POST, A::UnsuspendUser, user::unsuspend)],
    ))
    .service(guarded(
        "/networks/{network_id}/users/{user_id}/unlock",
        vec![op(M::POST, A::UnlockUser, user::unlock)],
    ))
    .service(guarded(
        "/networks/{network_id}/users/{user_id}/invitation",
        vec![op(M::POST, A::ReinviteUser, user::reinvite)],
    ))
    .service(guarded(
        "/networks/{network_id}/users/{user_id}/password-reset",
        vec![op(M::POST, A::SendPasswordReset, user::password_reset)],
    ))
    .service(guarded(
        "/networks/{network_id}/users/{user_id}/devices/reset",
        vec![op(M::POST, A::ResetDevicesForUser, user::reset_devices)],
    ))
    .service(guarded(
        "/networks/{network_id}/users/{user_id}/delete",
        vec![op(M::POST, A::DeleteUser, user::delete)],
    ))
    .service(guarded(
        "/networks/{network_id}/bots",
        vec![
            op(M::GET, A::ListBots, bots::list),
            op(M::POST, A::CreateBot, bots::create),
        ],
    ))
    .service(guarded(
        "/networks/{network_id}/bots/delete",
        vec![op(M::POST, A::DeleteBot, bots::delete)],
    ))
    .service(guarded(
        "/networks/{network_id}/bots/{bot_id}/update",
        vec![op(M::POST, A::UpdateBot, bots::update)],
    ))
    .service(guarded(
        "/networks/{network_id}/invitations",
        vec![op(M::GET, A::ListUsers, invitations::list)],
    ))
    .service(guarded(
        "/networks/{network_id}/invitations/resend",
        vec![op(M::POST, A::ReinviteUser, invitations::resend)],
    ))
    .service(guarded(
        "/networks/{network_id}/invitations/revoke",
        vec![op(M::POST, A::RevokeInvitation, invitations::revoke)],
    ))
    .service(guarded(
        "/mail",
        vec![op(M::GET, A::ListMail, invitations::outbox_page)],
    ))
    .service(guarded(
        "/admins",
        vec![
            op(M::GET, A::ListAdmins, admins::list),
            op(M::POST, A::CreateAdmin, admins::create),
        ],
    ))
    .service(guarded(
        "/admins/{admin_id}",
        vec![op(M::GET, A::GetAdmin, admins::show)],
    ))
    .service(guarded(
        "/admins/{admin_id}/update",
        vec![op(M::POST, A::UpdateAdmin, admins::update)],
    ))
    .service(guarded(
        "/admins/{admin_id}/delete",
        vec![op(M::POST, A::DeleteAdmin, admins::delete)],
    ));
}
