//! `OUTPOST_*` environment variables layered over the configuration file.
//!
//! Every configuration key has a variable: the dotted path upper-cased with `_`
//! for `.` (`http.listen` → `OUTPOST_HTTP_LISTEN`). The value is read according to
//! the key's type in the embedded defaults: lists are comma-separated, booleans are
//! `true`/`false`/`1`/`0`/`yes`/`no`. A variable that starts with `OUTPOST_` but is
//! neither a key nor one of [`super::NON_CONFIG_ENV`] is an error, so a typo never
//! silently does nothing.

use super::{Config, ConfigError, NON_CONFIG_ENV};
use std::collections::BTreeMap;

/// Every leaf key of the configuration with a sample of its default value.
fn leaves() -> BTreeMap<String, toml::Value> {
    let defaults = toml::Value::try_from(Config::default()).expect("defaults serialize");
    let mut out = BTreeMap::new();
    walk("", &defaults, &mut out);
    out
}

fn walk(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, toml::Value>) {
    match v {
        toml::Value::Table(t) => {
            for (k, child) in t {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                walk(&path, child, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

fn var_name(path: &str) -> String {
    format!("OUTPOST_{}", path.replace('.', "_").to_ascii_uppercase())
}

/// Every configuration variable name with its key path.
#[cfg(test)]
pub fn variables() -> Vec<(String, String)> {
    leaves().keys().map(|k| (var_name(k), k.clone())).collect()
}

/// Apply the `OUTPOST_*` variables to `table`; returns (key path, variable) pairs applied.
pub fn apply(
    table: &mut toml::Table,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<(String, String)>, ConfigError> {
    let leaves = leaves();
    let by_var: BTreeMap<String, &String> = leaves.keys().map(|k| (var_name(k), k)).collect();
    let mut applied = Vec::new();
    for (name, raw) in vars {
        if !name.starts_with("OUTPOST_") || NON_CONFIG_ENV.contains(&name.as_str()) {
            continue;
        }
        let Some(path) = by_var.get(&name) else {
            if name.starts_with("OUTPOST_TEST_") {
                continue;
            }
            return Err(ConfigError::invalid(
                name,
                "is not a configuration variable (see config.toml.example for the keys; \
                 each key's variable is OUTPOST_ followed by its path in capitals)",
            ));
        };
        let sample = &leaves[*path];
        let value = parse_like(sample, &raw)
            .map_err(|msg| ConfigError::invalid(format!("{name} ({path})"), msg))?;
        set(table, path, value);
        applied.push(((*path).clone(), name));
    }
    Ok(applied)
}

fn parse_like(sample: &toml::Value, raw: &str) -> Result<toml::Value, String> {
    Ok(match sample {
        toml::Value::String(_) => toml::Value::String(raw.to_string()),
        toml::Value::Integer(_) => toml::Value::Integer(
            raw.trim()
                .parse()
                .map_err(|_| format!("{raw:?} is not a whole number"))?,
        ),
        toml::Value::Float(_) => toml::Value::Float(
            raw.trim()
                .parse()
                .map_err(|_| format!("{raw:?} is not a number"))?,
        ),
        toml::Value::Boolean(_) => {
            toml::Value::Boolean(match raw.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => true,
                "false" | "0" | "no" | "off" => false,
                _ => return Err(format!("{raw:?} is not a boolean (use true or false)")),
            })
        }
        toml::Value::Array(items) => {
            let item_sample = items
                .first()
                .cloned()
                .unwrap_or(toml::Value::String(String::new()));
            let parts: Vec<&str> = raw
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            toml::Value::Array(
                parts
                    .into_iter()
                    .map(|p| parse_like(&item_sample, p))
                    .collect::<Result<_, _>>()?,
            )
        }
        other => {
            return Err(format!(
                "cannot be set from the environment ({})",
                other.type_str()
            ));
        }
    })
}

fn set(table: &mut toml::Table, path: &str, value: toml::Value) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop().expect("non-empty path");
    let mut cur = table;
    for p in parts {
        let entry = cur
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        cur = entry.as_table_mut().expect("just made a table");
    }
    cur.insert(last.to_string(), value);
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_key_has_a_variable() {
        let vars = super::variables();
        assert!(
            vars.iter()
                .any(|(v, k)| v == "OUTPOST_HTTP_LISTEN" && k == "http.listen")
        );
        assert!(vars.iter().any(|(v, _)| v == "OUTPOST_DATA_DIR"));
    }
}
