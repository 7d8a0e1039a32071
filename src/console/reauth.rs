//! Re-entry of the admin's password before a destructive action (deleting a network, a
//! group, users): a signed-in session alone is not enough to destroy data.

use crate::auth::{Caller, password};
use crate::error::{Error, Result};

/// Check `given` against the signed-in admin's password (argon2id, off the async threads).
pub async fn confirm(caller: &Caller, given: &str) -> Result<()> {
    if given.is_empty() {
        return Err(Error::forbidden(
            "password_required",
            "enter your password to confirm this action",
        ));
    }
    let (pw, phc) = (given.to_string(), caller.admin.password_hash.clone());
    let good = tokio::task::spawn_blocking(move || password::verify(&pw, &phc))
        .await
        .map_err(|e| Error::internal(format!("checking a password: {e}")))?;
    if good {
        Ok(())
    } else {
        Err(Error::forbidden(
            "password_incorrect",
            "the password you entered is not yours; nothing was changed",
        ))
    }
}
