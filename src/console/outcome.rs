//! How the people pages (users, bulk files, bots, admins, invitations) show a refused
//! change: the error's sentence, each field problem of a validation error, and the
//! status the page answers with — and how they show times (UTC, to the minute).

use crate::error::Error;
use actix_web::http::StatusCode;
use chrono::{DateTime, Utc};

/// The status a page answering `e` carries.
pub fn status_of(e: &Error) -> StatusCode {
    StatusCode::from_u16(e.kind.status()).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY)
}

/// Every field problem of a validation error, as sentences (empty for other errors).
pub fn problems(e: &Error) -> Vec<String> {
    if e.code != "validation_failed" {
        return Vec::new();
    }
    let Some(serde_json::Value::Array(items)) = &e.details else {
        return Vec::new();
    };
    items
        .iter()
        .map(|p| {
            let field = p["field"].as_str().unwrap_or("").replace('_', " ");
            format!("{field}: {}", p["reason"].as_str().unwrap_or(""))
        })
        .collect()
}

/// A time as the console shows it.
pub fn time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// An optional time, or an empty string.
pub fn maybe_time(t: &Option<DateTime<Utc>>) -> String {
    t.as_ref().map(time).unwrap_or_default()
}

/// `s` trimmed, or None when empty.
pub fn some(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FieldProblem;

    #[test]
    fn field_problems_read_as_sentences() {
        let e = Error::validation(vec![FieldProblem::new("first_name", "too long")]);
        assert_eq!(problems(&e), vec!["first name: too long".to_string()]);
        assert_eq!(status_of(&e), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(problems(&Error::conflict("x", "y")).is_empty());
    }
}
