//! Registering through an invitation (PRODUCT.md F4): the person behind a one-time link
//! sets their name and a password that meets their security group's rules; the account
//! becomes active and the link is used up, in one transaction. While the network has
//! single sign-on on, links are refused (`sso_required`): people sign in through the
//! identity provider.

use super::password;
use crate::directory::group_settings::GroupSettings;
use crate::directory::link::{self, Link, LinkProblem, Purpose};
use crate::directory::network::{self, Network};
use crate::directory::user::{self, User, UserStatus};
use crate::directory::{group, validate};
use crate::error::{Error, Result};
use crate::store::Store;
use chrono::Utc;

/// What the registration page shows before anyone types.
pub struct Pending {
    pub invitation: Link,
    pub user: User,
    pub network: Network,
    pub settings: GroupSettings,
}

/// The invitation behind `token` and what the page needs, or why the link does not open.
pub fn open(store: &Store, token: &str) -> Result<std::result::Result<Pending, LinkProblem>> {
    store.read(|tx| {
        let inv = match link::open(tx, Purpose::Invitation, token, Utc::now())? {
            Ok(i) => i,
            Err(p) => return Ok(Err(p)),
        };
        let Some(u) = user::by_id(tx, &inv.user_id)? else {
            return Ok(Err(LinkProblem::Unknown(Purpose::Invitation)));
        };
        if u.status() != UserStatus::Pending {
            return Ok(Err(LinkProblem::Unknown(Purpose::Invitation)));
        }
        let n = network::get(tx, &u.network_id)?;
        super::sso::refuse_passwords(tx, &n)?;
        let g = group::get(tx, &u.network_id, &u.group_id)?;
        Ok(Ok(Pending {
            invitation: inv,
            user: u,
            network: n,
            settings: g.settings,
        }))
    })
}

/// What the person typed.
pub struct Form {
    pub first_name: String,
    pub last_name: String,
    pub password: String,
    pub confirm: String,
}

/// Why the form was refused: which field, and a sentence for the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub field: &'static str,
    pub message: String,
}

/// Registers: checks the form against the group's rules, hashes the password, activates
/// the account and uses the link up. `Ok(Err(..))` is a refusal the page shows.
pub async fn register(
    store: &Store,
    token: &str,
    form: Form,
) -> Result<std::result::Result<User, Refusal>> {
    let pending = match open(store, token)? {
        Ok(p) => p,
        Err(problem) => return Err(problem.error()),
    };
    let refuse = |field, message: String| Ok(Err(Refusal { field, message }));
    let first = form.first_name.trim().to_string();
    let last = form.last_name.trim().to_string();
    if first.is_empty() {
        return refuse("first_name", "enter your first name".into());
    }
    for (field, v) in [("first_name", &first), ("last_name", &last)] {
        if let Err(e) = validate::name(v, user::NAME_MAX) {
            return refuse(field, format!("the name {e}"));
        }
    }
    if let Some(problem) = pending.settings.password_problem(&form.password) {
        return refuse("password", format!("the password {problem}"));
    }
    if form.password != form.confirm {
        return refuse("confirm", "the two passwords are not the same".into());
    }
    let pw = form.password;
    let hash = tokio::task::spawn_blocking(move || password::hash(&pw))
        .await
        .map_err(|e| Error::internal(format!("password hashing was interrupted: {e}")))??;
    let token = token.to_string();
    let user = store
        .write(move |tx| {
            // The link may have been used or revoked since the page opened.
            let inv = link::open(tx, Purpose::Invitation, &token, Utc::now())?
                .map_err(LinkProblem::error)?;
            let old = user::by_id(tx, &inv.user_id)?
                .ok_or_else(|| LinkProblem::Unknown(Purpose::Invitation).error())?;
            if old.status() != UserStatus::Pending {
                return Err(LinkProblem::Unknown(Purpose::Invitation).error());
            }
            let now = Utc::now();
            let mut u = old.clone();
            u.first_name = first.clone();
            u.last_name = last.clone();
            u.password_hash = Some(hash.clone());
            u.registered = true;
            u.registered_at = Some(now);
            u.updated_at = now;
            user::put(tx, Some(&old), &u)?;
            link::revoke(tx, Purpose::Invitation, &u.id)?;
            Ok(u)
        })
        .await?;
    Ok(Ok(user))
}
