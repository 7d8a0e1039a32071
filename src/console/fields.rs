//! Settings forms of the console: a declarative description of each settings field
//! (label, help text, kind and limits), how a submitted form becomes the same partial
//! settings update the admin API takes (`{"calling": {"video": false}}`), and how the
//! API's field problems (`settings.calling.video: …`) are shown next to their fields.
//!
//! The forms never validate on their own: they hand the patch to the typed functions the
//! API handlers call, so the console and the API accept and refuse exactly the same
//! values, with the same messages.

use crate::error::{Error, FieldProblem};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// What kind of control a setting is.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// A checkbox.
    Bool,
    /// A whole number, with its documented range (informative: the API decides).
    Number { min: u64, max: Option<u64> },
    /// One of fixed values: (value as the form sends it, its JSON value, label).
    Choice(&'static [(&'static str, Choice, &'static str)]),
    /// A one-line text of at most `max` characters.
    Text { max: usize },
    /// A multi-line text of at most `max` characters.
    LongText { max: usize },
    /// A list, one item per line (blank lines ignored).
    Lines,
    /// Some of fixed values, one checkbox each.
    Multi(&'static [&'static str]),
}

/// The JSON value a choice stands for.
#[derive(Debug, Clone, Copy)]
pub enum Choice {
    Str(&'static str),
    Num(u64),
}

impl Choice {
    fn json(self) -> Value {
        match self {
            Choice::Str(s) => Value::from(s),
            Choice::Num(n) => Value::from(n),
        }
    }
}

/// One setting: its dotted path in the settings document, label, help and kind.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub path: &'static str,
    pub label: &'static str,
    pub help: &'static str,
    pub kind: Kind,
}

pub const fn field(
    path: &'static str,
    label: &'static str,
    help: &'static str,
    kind: Kind,
) -> Field {
    Field {
        path,
        label,
        help,
        kind,
    }
}

/// A field as a template draws it.
#[derive(Debug, Serialize)]
pub struct Shown {
    pub id: String,
    pub name: &'static str,
    pub label: &'static str,
    pub help: &'static str,
    /// `bool`, `number`, `choice`, `text`, `longtext`, `lines`, `multi`.
    pub kind: &'static str,
    pub value: String,
    pub checked: bool,
    pub min: Option<u64>,
    pub max: Option<u64>,
    pub maxlength: Option<usize>,
    pub options: Vec<ShownOption>,
    pub errors: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct ShownOption {
    pub id: String,
    pub name: String,
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// The HTML id of the control of `path`.
pub fn html_id(path: &str) -> String {
    format!("f-{}", path.replace(['.', '_'], "-"))
}

fn lookup<'a>(doc: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(doc, |v, k| v.get(k))
}

fn set(doc: &mut Map<String, Value>, path: &str, value: Value) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop().expect("a path has a name");
    let mut at = doc;
    for p in parts {
        at = at
            .entry(p.to_string())
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .expect("settings paths nest objects");
    }
    at.insert(last.to_string(), value);
}

fn multi_name(path: &str, option: &str) -> String {
    format!("{path}/{option}")
}

/// What the form says for `fields`: the settings patch, and the problems of values that
/// are not even of the right type (a number field holding "ten"), by full field name.
pub fn patch_of(
    fields: &[Field],
    form: &HashMap<String, String>,
    prefix: &str,
) -> (Value, Vec<FieldProblem>) {
    let mut doc = Map::new();
    let mut problems = Vec::new();
    for f in fields {
        let raw = form.get(f.path).map(String::as_str).unwrap_or("");
        let v = match f.kind {
            Kind::Bool => Value::Bool(!raw.is_empty()),
            Kind::Number { .. } => match raw.trim().parse::<u64>() {
                Ok(n) => Value::from(n),
                Err(_) => {
                    problems.push(FieldProblem::new(
                        format!("{prefix}.{}", f.path),
                        if raw.trim().is_empty() {
                            "is required: enter a whole number".to_string()
                        } else {
                            format!("{:?} is not a whole number of 0 or more", raw.trim())
                        },
                    ));
                    continue;
                }
            },
            Kind::Choice(options) => match options.iter().find(|(v, _, _)| *v == raw) {
                Some((_, c, _)) => c.json(),
                None => {
                    problems.push(FieldProblem::new(
                        format!("{prefix}.{}", f.path),
                        format!("{raw:?} is not one of the choices"),
                    ));
                    continue;
                }
            },
            Kind::Text { .. } | Kind::LongText { .. } => Value::from(raw.replace("\r\n", "\n")),
            Kind::Lines => Value::from(
                raw.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(String::from)
                    .collect::<Vec<_>>(),
            ),
            Kind::Multi(options) => Value::from(
                options
                    .iter()
                    .filter(|o| form.contains_key(&multi_name(f.path, o)))
                    .map(|o| o.to_string())
                    .collect::<Vec<_>>(),
            ),
        };
        set(&mut doc, f.path, v);
    }
    (Value::Object(doc), problems)
}

/// The field problems of an API error (`validation_failed` carries them in its details);
/// any other error is one problem without a field.
pub fn problems_of(e: &Error) -> Vec<FieldProblem> {
    let listed: Vec<FieldProblem> = e
        .details
        .as_ref()
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|p| {
                    Some(FieldProblem::new(
                        p.get("field")?.as_str()?,
                        p.get("reason")?.as_str()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    if listed.is_empty() {
        vec![FieldProblem::new("", e.message.clone())]
    } else {
        listed
    }
}

/// The field of `fields` a problem's field name (`settings.messaging.quick_responses[2]`)
/// belongs to, if any; a problem about several fields together (`settings.security.password`)
/// goes to the first of them.
fn owner<'a>(fields: &'a [Field], prefix: &str, problem: &str) -> Option<&'a Field> {
    let p = problem.strip_prefix(prefix)?.strip_prefix('.')?;
    let p = p.split('[').next().unwrap_or(p);
    fields.iter().find(|f| f.path == p).or_else(|| {
        fields.iter().find(|f| {
            f.path
                .strip_prefix(p)
                .is_some_and(|rest| rest.starts_with('.'))
        })
    })
}

/// A problem as the summary at the top of a form lists it.
#[derive(Debug, Serialize)]
pub struct Listed {
    /// The control to jump to, if the problem belongs to one.
    pub target: Option<String>,
    pub label: String,
    pub reason: String,
}

/// Problems for the summary: each with its field's label and a link to its control.
pub fn listed(fields: &[Field], prefix: &str, problems: &[FieldProblem]) -> Vec<Listed> {
    problems
        .iter()
        .map(|p| match owner(fields, prefix, &p.field) {
            Some(f) => Listed {
                target: Some(html_id(f.path)),
                label: f.label.to_string(),
                reason: p.reason.clone(),
            },
            None => Listed {
                target: None,
                label: p
                    .field
                    .strip_prefix(prefix)
                    .and_then(|f| f.strip_prefix('.'))
                    .unwrap_or(&p.field)
                    .to_string(),
                reason: p.reason.clone(),
            },
        })
        .collect()
}

/// Draw `fields` with the values of `current` (the stored settings), or — after a
/// refused form — with what the administrator typed, and the problems next to each.
pub fn show(
    fields: &[Field],
    current: &Value,
    typed: Option<&HashMap<String, String>>,
    problems: &[FieldProblem],
    prefix: &str,
) -> Vec<Shown> {
    fields
        .iter()
        .map(|f| {
            let stored = lookup(current, f.path).cloned().unwrap_or(Value::Null);
            let errors = problems
                .iter()
                .filter(|p| owner(fields, prefix, &p.field).is_some_and(|o| o.path == f.path))
                .map(|p| p.reason.clone())
                .collect();
            let typed_raw = typed.map(|t| t.get(f.path).cloned().unwrap_or_default());
            let text = |v: &Value| match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            let value = match (&f.kind, &typed_raw) {
                (Kind::Bool | Kind::Multi(_), _) => String::new(),
                (_, Some(raw)) => raw.clone(),
                (Kind::Lines, None) => stored
                    .as_array()
                    .map(|a| a.iter().map(text).collect::<Vec<_>>().join("\n"))
                    .unwrap_or_default(),
                (_, None) => text(&stored),
            };
            let checked = match (&f.kind, typed) {
                (Kind::Bool, Some(t)) => t.contains_key(f.path),
                (Kind::Bool, None) => stored.as_bool().unwrap_or(false),
                _ => false,
            };
            let options = match f.kind {
                Kind::Choice(options) => options
                    .iter()
                    .map(|(v, _, label)| ShownOption {
                        id: String::new(),
                        name: f.path.to_string(),
                        value: v.to_string(),
                        label: label.to_string(),
                        selected: *v == value,
                    })
                    .collect(),
                Kind::Multi(options) => options
                    .iter()
                    .map(|o| {
                        let name = multi_name(f.path, o);
                        let selected = match typed {
                            Some(t) => t.contains_key(&name),
                            None => stored
                                .as_array()
                                .is_some_and(|a| a.iter().any(|v| v.as_str() == Some(o))),
                        };
                        ShownOption {
                            id: format!("{}-{}", html_id(f.path), o.replace('.', "-")),
                            name,
                            value: "on".into(),
                            label: o.to_string(),
                            selected,
                        }
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let (kind, min, max, maxlength) = match f.kind {
                Kind::Bool => ("bool", None, None, None),
                Kind::Number { min, max } => ("number", Some(min), max, None),
                Kind::Choice(_) => ("choice", None, None, None),
                Kind::Text { max } => ("text", None, None, Some(max)),
                Kind::LongText { max } => ("longtext", None, None, Some(max)),
                Kind::Lines => ("lines", None, None, None),
                Kind::Multi(_) => ("multi", None, None, None),
            };
            Shown {
                id: html_id(f.path),
                name: f.path,
                label: f.label,
                help: f.help,
                kind,
                value,
                checked,
                min,
                max,
                maxlength,
                options,
                errors,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[Field] = &[
        field("calling.audio", "Audio", "", Kind::Bool),
        field(
            "messaging.max_ttl_seconds",
            "TTL",
            "",
            Kind::Number { min: 60, max: None },
        ),
        field("messaging.quick_responses", "Quick", "", Kind::Lines),
    ];

    #[test]
    fn a_form_becomes_the_apis_patch() {
        let form = HashMap::from([
            ("messaging.max_ttl_seconds".to_string(), " 120 ".to_string()),
            (
                "messaging.quick_responses".to_string(),
                "On my way\r\n\r\nCopy\n".to_string(),
            ),
        ]);
        let (patch, problems) = patch_of(FIELDS, &form, "settings");
        assert!(problems.is_empty());
        assert_eq!(
            patch,
            serde_json::json!({
                "calling": {"audio": false},
                "messaging": {"max_ttl_seconds": 120, "quick_responses": ["On my way", "Copy"]},
            })
        );
    }

    #[test]
    fn problems_land_next_to_their_fields() {
        let form = HashMap::from([("messaging.max_ttl_seconds".to_string(), "ten".to_string())]);
        let (_, problems) = patch_of(FIELDS, &form, "settings");
        assert_eq!(problems[0].field, "settings.messaging.max_ttl_seconds");
        let mut problems = problems;
        problems.push(FieldProblem::new(
            "settings.messaging.quick_responses[1]",
            "must not be empty",
        ));
        let shown = show(
            FIELDS,
            &serde_json::json!({}),
            Some(&form),
            &problems,
            "settings",
        );
        assert_eq!(shown[1].value, "ten");
        assert_eq!(shown[1].errors.len(), 1);
        assert_eq!(shown[2].errors, vec!["must not be empty"]);
        assert!(shown[0].errors.is_empty());
    }
}
