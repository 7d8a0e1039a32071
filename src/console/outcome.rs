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

/// The most a confirmation (flash) shows.
pub const FLASH_MAX: usize = 300;

/// A confirmation that carries a one-time link: `lead` (naming the person), then
/// `link` (the sentence with the link). The link always fits in the confirmation; a
/// long `lead` (a long e-mail address) is shortened instead.
pub fn with_link(lead: &str, link: &str) -> String {
    let room = FLASH_MAX.saturating_sub(link.chars().count() + 1);
    if lead.chars().count() <= room {
        format!("{lead} {link}")
    } else {
        let short: String = lead.chars().take(room.saturating_sub(1)).collect();
        format!("{short}… {link}")
    }
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

    #[test]
    fn a_link_always_fits_in_the_confirmation() {
        let link = format!("Pass on: https://h/invite/oi_{}", "a".repeat(43));
        assert_eq!(
            with_link("Invited a@b.", &link),
            format!("Invited a@b. {link}")
        );
        let long = format!("Invited {}@example.test.", "x".repeat(250));
        let f = with_link(&long, &link);
        assert_eq!(f.chars().count(), FLASH_MAX);
        assert!(f.ends_with(&link) && f.starts_with("Invited xxx"), "{f}");
    }
}
