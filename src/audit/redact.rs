//! Redaction of secrets in audit parameters.
//!
//! Request types already serialize their secrets as `********` (see
//! [`crate::config::Secret`]); this is the second line of defence: any value under a
//! key that names a secret is replaced, at any depth, before an event is stored.

use crate::config::REDACTED;
use serde_json::Value;

const SECRET_WORDS: &[&str] = &[
    "password",
    "secret",
    "token",
    "passphrase",
    "private_key",
    "authorization",
];

fn is_secret_key(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| k.contains(w))
}

/// Replace every value under a secret-looking key with `********`.
pub fn redact(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    if is_secret_key(&k) && !matches!(v, Value::Bool(_) | Value::Null) {
                        (k, Value::String(REDACTED.into()))
                    } else {
                        (k, redact(v))
                    }
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(redact).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_redacted_at_any_depth() {
        let v = redact(
            json!({"a": {"new_password": "x", "n": 1}, "list": [{"client_secret": "y"}], "regenerate_token": true}),
        );
        assert_eq!(
            v,
            json!({"a": {"new_password": "********", "n": 1}, "list": [{"client_secret": "********"}], "regenerate_token": true})
        );
    }
}
