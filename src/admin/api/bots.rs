//! Admin API: bots — accounts named `…bot`, with a password or an API token (F3).

use super::users::list_page;
use super::{BotPath, NetworkPath, PageQuery, State};
use crate::admin::AdminState;
use crate::admin::guard::Audit;
use crate::admin::response::{JsonBody, created, ok};
use crate::auth::password;
use crate::config::Secret;
use crate::directory::user::{self, User, UserKind, UserView};
use crate::directory::{group, network, validate};
use crate::error::{Error, FieldProblem, Result};
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Prefix of bot API tokens.
pub const BOT_TOKEN_PREFIX: &str = "ob_";

#[utoipa::path(get, path = "/networks/{network_id}/bots", operation_id = "ListBots", tag = "bots",
    params(NetworkPath, PageQuery), responses((status = 200, body = super::users::UserPage)))]
pub async fn list(
    state: State,
    path: web::Path<NetworkPath>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse> {
    list_page(
        &state,
        &path.network_id,
        UserKind::Bot,
        q.into_inner().into_list_query()?,
    )
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBot {
    /// Lowercase letters, digits, `.`, `_`, `-`; must end in `bot`.
    pub username: String,
    pub display_name: Option<String>,
    /// Omitted = the network's default group.
    pub security_group_id: Option<String>,
    /// A password for the bot; without one an API token is issued.
    pub password: Option<Secret>,
}

/// A bot and, when one was just issued, its API token (shown only this once).
#[derive(Debug, Serialize, ToSchema)]
pub struct BotCredentials {
    pub bot: UserView,
    pub token: Option<String>,
}

async fn hash(pw: &Secret) -> Result<String> {
    if pw.expose().chars().count() < 12 {
        return Err(Error::validation(vec![FieldProblem::new(
            "password",
            "a bot password must be at least 12 characters long",
        )]));
    }
    let p = pw.expose().to_string();
    super::blocking("password hashing", move || password::hash(&p)).await?
}

#[utoipa::path(post, path = "/networks/{network_id}/bots", operation_id = "CreateBot", tag = "bots",
    params(NetworkPath), request_body = CreateBot, responses((status = 201, body = BotCredentials)))]
pub async fn create(
    state: State,
    audit: Audit,
    path: web::Path<NetworkPath>,
    body: JsonBody<CreateBot>,
) -> Result<HttpResponse> {
    audit.body(&*body);
    let c = create_bot(
        &state,
        &audit,
        path.into_inner().network_id,
        body.into_inner(),
    )
    .await?;
    Ok(created(&c))
}

/// Create a bot (CreateBot, for the API and the console).
pub async fn create_bot(
    state: &AdminState,
    audit: &Audit,
    nid: String,
    b: CreateBot,
) -> Result<BotCredentials> {
    let pw_hash = match &b.password {
        Some(p) => Some(hash(p).await?),
        None => None,
    };
    let (token, token_hash) = match pw_hash {
        Some(_) => (None, None),
        None => {
            let (t, h) = password::new_token(BOT_TOKEN_PREFIX);
            (Some(t), Some(h))
        }
    };
    let bot = audit
        .write(&state.store, 201, move |tx| {
            let n = network::get(tx, &nid)?;
            let name = validate::bot_username(&b.username)
                .map_err(|e| Error::validation(vec![FieldProblem::new("username", e)]))?;
            let gid = b
                .security_group_id
                .clone()
                .unwrap_or(n.default_group_id.clone());
            group::for_member(tx, &nid, &gid)?;
            let mut u = User::new(&nid, UserKind::Bot, name, gid);
            if let Some(d) = &b.display_name {
                u.display_name = validate::name(d, user::NAME_MAX)
                    .map_err(|e| Error::validation(vec![FieldProblem::new("display_name", e)]))?;
            }
            u.registered = true;
            u.registered_at = Some(u.created_at);
            u.password_hash = pw_hash.clone();
            u.token_hash = token_hash.clone();
            user::put(tx, None, &u)?;
            Ok(u)
        })
        .await?;
    Ok(BotCredentials {
        bot: bot.view(),
        token,
    })
}

#[utoipa::path(get, path = "/networks/{network_id}/bots/{bot_id}", operation_id = "GetBot", tag = "bots",
    params(BotPath), responses((status = 200, body = UserView)))]
pub async fn get(state: State, path: web::Path<BotPath>) -> Result<HttpResponse> {
    let u = state
        .store
        .read(|tx| user::get(tx, &path.network_id, UserKind::Bot, &path.bot_id))?;
    Ok(ok(&u.view()))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBot {
    pub display_name: Option<String>,
    pub security_group_id: Option<String>,
    /// Replace the bot's password (and drop its token); ends its sessions.
    pub password: Option<Secret>,
    /// Issue a new API token (and drop its password); ends its sessions.
    pub regenerate_token: Option<bool>,
    pub suspended: Option<bool>,
}

#[utoipa::path(patch, path = "/networks/{network_id}/bots/{bot_id}", operation_id = "UpdateBot", tag = "bots",
    params(BotPath), request_body = UpdateBot, responses((status = 200, body = BotCredentials)))]
pub async fn update(
    state: State,
    audit: Audit,
    path: web::Path<BotPath>,
    body: JsonBody<UpdateBot>,
) -> Result<HttpResponse> {
    audit.body(&*body);
    let c = update_bot(&state, &audit, path.into_inner(), body.into_inner()).await?;
    Ok(ok(&c))
}

/// Change a bot (UpdateBot, for the API and the console).
pub async fn update_bot(
    state: &AdminState,
    audit: &Audit,
    p: BotPath,
    b: UpdateBot,
) -> Result<BotCredentials> {
    if b.password.is_some() && b.regenerate_token == Some(true) {
        return Err(Error::validation(vec![FieldProblem::new(
            "regenerate_token",
            "give either a new password or regenerate_token, not both",
        )]));
    }
    let pw_hash = match &b.password {
        Some(pw) => Some(hash(pw).await?),
        None => None,
    };
    let (token, token_hash) = if b.regenerate_token == Some(true) {
        let (t, h) = password::new_token(BOT_TOKEN_PREFIX);
        (Some(t), Some(h))
    } else {
        (None, None)
    };
    let bot = audit
        .write(&state.store, 200, move |tx| {
            let old = user::get(tx, &p.network_id, UserKind::Bot, &p.bot_id)?;
            let mut u = old.clone();
            if let Some(d) = &b.display_name {
                u.display_name = validate::name(d, user::NAME_MAX)
                    .map_err(|e| Error::validation(vec![FieldProblem::new("display_name", e)]))?;
            }
            if let Some(gid) = &b.security_group_id {
                group::for_member(tx, &p.network_id, gid)?;
                u.group_id = gid.clone();
            }
            if pw_hash.is_some() || token_hash.is_some() {
                u.replace_credentials(pw_hash.clone(), token_hash.clone());
            }
            if let Some(s) = b.suspended {
                u.mark_suspended(s);
            }
            u.updated_at = chrono::Utc::now();
            user::put(tx, Some(&old), &u)?;
            Ok(u)
        })
        .await?;
    Ok(BotCredentials {
        bot: bot.view(),
        token,
    })
}

#[utoipa::path(delete, path = "/networks/{network_id}/bots/{bot_id}", operation_id = "DeleteBot", tag = "bots",
    params(BotPath), responses((status = 204, description = "Deleted")))]
pub async fn delete(state: State, audit: Audit, path: web::Path<BotPath>) -> Result<HttpResponse> {
    delete_bot(&state, &audit, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Delete a bot (DeleteBot, for the API and the console); returns who it was.
pub async fn delete_bot(state: &AdminState, audit: &Audit, p: BotPath) -> Result<UserView> {
    audit
        .write(&state.store, 204, move |tx| {
            let u = user::get(tx, &p.network_id, UserKind::Bot, &p.bot_id)?;
            user::remove(tx, &u)?;
            Ok(u.view())
        })
        .await
}
