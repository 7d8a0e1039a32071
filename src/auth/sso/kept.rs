//! A secret outpost keeps in its store and uses later — an identity provider's client
//! secret, a refresh token. Unlike [`crate::config::Secret`] (which serializes as
//! `********` so it can never leave in an answer or an audit record), a `Kept` serializes
//! as itself, because the store must hold the value; it still never prints
//! (`Debug` shows `********`), and it is never part of an API answer.

use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Kept(String);

impl Kept {
    pub fn new(value: impl Into<String>) -> Kept {
        Kept(value.into())
    }

    /// The secret itself; call only where it is used.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(crate::config::REDACTED)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_kept_secret_is_stored_but_never_printed() {
        let k = super::Kept::new("s3cret");
        assert_eq!(serde_json::to_string(&k).unwrap(), "\"s3cret\"");
        assert_eq!(format!("{k:?}"), "********");
    }
}
