//! Partial updates of settings documents.
//!
//! An update names only the fields it changes, nested by tab:
//! `{"calling": {"video": false}}`. [`apply`] merges such a patch into the current
//! settings and decodes the result strictly, so an unknown field or a value of the
//! wrong type is reported by its full dotted path, and `null` is refused (there is
//! no "unset": every setting always has a value).

use crate::error::{Error, FieldProblem, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Merge `patch` into `current` and decode the result as `T`; `prefix` names the
/// document in error messages (e.g. `settings`).
pub fn apply<T: Serialize + DeserializeOwned>(
    current: &T,
    patch: &Value,
    prefix: &str,
) -> Result<T> {
    let mut doc = serde_json::to_value(current)
        .map_err(|e| Error::internal(format!("cannot encode current settings: {e}")))?;
    let mut problems = Vec::new();
    merge(&mut doc, patch, prefix, &mut problems);
    if !problems.is_empty() {
        return Err(Error::validation(problems));
    }
    serde_path_to_error::deserialize(doc).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." || path.is_empty() {
            prefix.to_string()
        } else {
            format!("{prefix}.{path}")
        };
        Error::validation(vec![FieldProblem::new(field, e.into_inner().to_string())])
    })
}

fn merge(base: &mut Value, patch: &Value, path: &str, problems: &mut Vec<FieldProblem>) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                let child = format!("{path}.{k}");
                if v.is_null() {
                    problems.push(FieldProblem::new(child, "must not be null; give a value"));
                    continue;
                }
                match b.get_mut(k) {
                    Some(slot) if slot.is_object() && v.is_object() => {
                        merge(slot, v, &child, problems)
                    }
                    Some(slot) => *slot = v.clone(),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (_, Value::Null) => problems.push(FieldProblem::new(path, "must not be null")),
        (_, p) if !p.is_object() => problems.push(FieldProblem::new(path, "must be an object")),
        (b, p) => *b = p.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::group_settings::GroupSettings;
    use serde_json::json;

    #[test]
    fn a_patch_changes_only_what_it_names() {
        let cur = GroupSettings::default();
        let next = apply(&cur, &json!({"calling": {"force_tcp": true}}), "settings").unwrap();
        assert!(next.calling.force_tcp);
        assert!(next.calling.audio);
        assert_eq!(next.messaging, cur.messaging);
    }

    #[test]
    fn unknown_fields_wrong_types_and_nulls_name_their_path() {
        let cur = GroupSettings::default();
        let e = apply(&cur, &json!({"calling": {"vidoe": true}}), "settings").unwrap_err();
        assert!(e.message.contains("settings.calling"), "{}", e.message);
        assert!(e.message.contains("vidoe"), "{}", e.message);
        let e = apply(
            &cur,
            &json!({"messaging": {"max_ttl_seconds": "long"}}),
            "settings",
        )
        .unwrap_err();
        assert!(
            e.message.contains("settings.messaging.max_ttl_seconds"),
            "{}",
            e.message
        );
        let e = apply(&cur, &json!({"messaging": null}), "settings").unwrap_err();
        assert!(e.message.contains("settings.messaging"), "{}", e.message);
        let e = apply(&cur, &json!([1]), "settings").unwrap_err();
        assert_eq!(e.code, "validation_failed");
    }
}
