//! Authentication and authorization: administrators' accounts, passwords, sessions,
//! roles, the sign-in rate limit and the check every admin action passes; people's
//! device sign-in, registration, password reset, and single sign-on ([`sso`]).

pub mod admin;
pub mod device_approval;
pub mod device_login;
pub mod password;
pub mod password_reset;
pub mod permission;
mod rate_limit;
pub mod registration;
pub mod session;
pub mod sso;

pub use permission::{Action, Role};
pub use rate_limit::LoginLimiter;

use crate::error::{Error, Result};
use admin::Admin;

/// The authenticated admin behind a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub admin: Admin,
    /// Hash of the session token (to end this session, or keep it when ending others).
    pub session_key: String,
}

impl Caller {
    /// Refuse `action` (in `network_id`, for network-scoped actions) unless allowed.
    pub fn authorize(&self, action: Action, network_id: Option<&str>) -> Result<()> {
        let a = &self.admin;
        if a.must_change_password && !action.is_self_service() {
            return Err(Error::forbidden(
                "password_change_required",
                "this account's password was issued to you and must be changed before anything \
                 else (ChangeAdminPassword: POST /admin/api/v1/me/password)",
            ));
        }
        if !permission::allows(a.role, action) {
            return Err(Error::forbidden(
                "access_denied",
                format!(
                    "{} (role {}) is not authorized to perform {}",
                    a.username,
                    a.role.as_str(),
                    action.name()
                ),
            ));
        }
        if let (true, Some(n)) = (action.network_scoped(), network_id)
            && !a.reaches(n)
        {
            return Err(Error::forbidden(
                "access_denied",
                format!(
                    "{} is not authorized to perform {} in network {n}",
                    a.username,
                    action.name()
                ),
            ));
        }
        Ok(())
    }
}
