//! Admin API handlers, one file per noun. Handlers are thin: they parse the request,
//! call the directory/auth/audit parts inside one audited transaction, and map the
//! result. Types shared by several nouns live here.

pub mod admins;
pub mod analytics;
pub mod audit;
pub mod backup;
pub mod bots;
pub mod calling;
pub mod client_profile;
pub mod groups;
pub mod invitations;
pub mod mail;
pub mod networks;
pub mod sessions;
pub mod sso;
pub mod status;
pub mod users;

use super::AdminState;
use crate::directory::user::{self, ListQuery, UserStatus};
use crate::error::{Error, Result};
use actix_web::web;
use serde::Deserialize;
use utoipa::IntoParams;

pub type State = web::Data<AdminState>;

#[derive(Debug, Deserialize, IntoParams)]
pub struct NetworkPath {
    /// 8-digit network id.
    #[param(pattern = "^[0-9]{8}$")]
    pub network_id: String,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct GroupPath {
    #[param(pattern = "^[0-9]{8}$")]
    pub network_id: String,
    #[param(value_type = uuid::Uuid)]
    pub group_id: String,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct UserPath {
    #[param(pattern = "^[0-9]{8}$")]
    pub network_id: String,
    #[param(value_type = uuid::Uuid)]
    pub user_id: String,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct BotPath {
    #[param(pattern = "^[0-9]{8}$")]
    pub network_id: String,
    #[param(value_type = uuid::Uuid)]
    pub bot_id: String,
}

/// Filters and paging for directory listings.
#[derive(Debug, Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    #[param(value_type = Option<UserStatus>)]
    pub status: Option<String>,
    /// Only members of this security group.
    #[param(value_type = Option<uuid::Uuid>)]
    pub security_group_id: Option<String>,
    /// Case-insensitive text in the e-mail/username or names.
    pub search: Option<String>,
    /// From the previous page's `next_cursor`.
    #[param(pattern = "^(?:[0-9a-f]{2})+$")]
    pub cursor: Option<String>,
    /// 1–1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// Paging for the members of one security group.
#[derive(Debug, Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct GroupPageQuery {
    #[param(value_type = Option<UserStatus>)]
    pub status: Option<String>,
    /// Case-insensitive text in the e-mail or names.
    pub search: Option<String>,
    /// From the previous page's `next_cursor`.
    #[param(pattern = "^(?:[0-9a-f]{2})+$")]
    pub cursor: Option<String>,
    /// 1–1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

impl GroupPageQuery {
    pub fn into_list_query(self, group_id: &str) -> Result<ListQuery> {
        PageQuery {
            status: self.status,
            security_group_id: Some(group_id.to_string()),
            search: self.search,
            cursor: self.cursor,
            limit: self.limit,
        }
        .into_list_query()
    }
}

impl PageQuery {
    pub fn into_list_query(self) -> Result<ListQuery> {
        let status = match self.status.as_deref() {
            None => None,
            Some(s) => Some(UserStatus::parse(s).ok_or_else(|| {
                Error::bad_request(
                    "invalid_query",
                    format!("status must be pending, active, suspended or locked, not {s:?}"),
                )
            })?),
        };
        let limit = self.limit.unwrap_or(user::PAGE_DEFAULT);
        if !(1..=user::PAGE_MAX).contains(&limit) {
            return Err(Error::bad_request(
                "invalid_query",
                format!("limit must be between 1 and {}", user::PAGE_MAX),
            ));
        }
        if let Some(g) = &self.security_group_id
            && !crate::directory::validate::is_record_id(g)
        {
            return Err(Error::bad_request(
                "invalid_query",
                format!("security_group_id must be a group id (a UUID), not {g:?}"),
            ));
        }
        Ok(ListQuery {
            status,
            group_id: self.security_group_id,
            search: self.search.filter(|s| !s.is_empty()),
            after: self
                .cursor
                .as_deref()
                .map(users::decode_cursor)
                .transpose()?,
            limit,
        })
    }
}

/// Run CPU- or disk-heavy work (password hashing, exports, CSV parsing) on the
/// blocking pool, off the HTTP workers; `what` names it if the pool fails.
pub async fn blocking<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    web::block(f)
        .await
        .map_err(|e| Error::internal(format!("{what} was interrupted: {e}")))
}
