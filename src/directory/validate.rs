//! Rules for the identifiers and free-text fields the directory stores.
//!
//! Every string that becomes part of a store key (e-mails, bot names, ids) is checked
//! here to exclude control characters, so keys can use NUL as a separator.

/// An 8-digit network id, `[0-9]{8}`.
pub fn is_network_id(s: &str) -> bool {
    s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit())
}

/// A record id issued by outpost (a UUID in canonical text form).
pub fn is_record_id(s: &str) -> bool {
    uuid::Uuid::try_parse(s).is_ok() && s.len() == 36
}

/// Normalize and check an e-mail address; returns the lowercase form or why it is invalid.
pub fn email(raw: &str) -> Result<String, String> {
    let e = raw.trim().to_lowercase();
    if e.is_empty() {
        return Err("is required".into());
    }
    if e.len() > 254 {
        return Err("must be at most 254 characters".into());
    }
    let Some((local, domain)) = e.split_once('@') else {
        return Err(format!("{raw:?} is not an e-mail address (no @)"));
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !local_ok || !domain_ok {
        return Err(format!("{raw:?} is not a valid e-mail address"));
    }
    Ok(e)
}

/// A bot username: lowercase letters, digits, `.`, `_`, `-`, ending in `bot`, 3–64 characters.
pub fn bot_username(raw: &str) -> Result<String, String> {
    let u = raw.trim().to_lowercase();
    if u.len() < 3 || u.len() > 64 {
        return Err("must be 3 to 64 characters long".into());
    }
    if !u.ends_with("bot") {
        return Err(format!("{raw:?} must end in \"bot\""));
    }
    if !u.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        || !u
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
    {
        return Err(format!(
            "{raw:?} may hold only letters, digits, '.', '_' and '-', starting with a letter or digit"
        ));
    }
    Ok(u)
}

/// A person's name part or a display name: at most `max` characters, no control characters.
pub fn name(raw: &str, max: usize) -> Result<String, String> {
    let n = raw.trim();
    if n.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if n.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(n.to_string())
}

/// A required name (networks, groups): 1 to `max` characters.
pub fn required_name(raw: &str, max: usize) -> Result<String, String> {
    let n = name(raw, max)?;
    if n.is_empty() {
        return Err("must not be empty".into());
    }
    Ok(n)
}

/// A country calling code: optional `+` and 1–4 digits (empty allowed).
pub fn country_code(raw: &str) -> Result<String, String> {
    let c = raw.trim();
    if c.is_empty() {
        return Ok(String::new());
    }
    let digits = c.strip_prefix('+').unwrap_or(c);
    if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{raw:?} is not a country calling code (e.g. +44)"));
    }
    Ok(format!("+{digits}"))
}

/// A phone number: digits with optional spaces, dashes, dots and parentheses; 4–20 digits.
pub fn phone(raw: &str) -> Result<String, String> {
    let p = raw.trim();
    if p.is_empty() {
        return Ok(String::new());
    }
    let digits = p.bytes().filter(u8::is_ascii_digit).count();
    let allowed = p
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')'));
    if !allowed || !(4..=20).contains(&digits) {
        return Err(format!("{raw:?} is not a phone number (4 to 20 digits)"));
    }
    Ok(p.to_string())
}

/// A tag key: 1–128 characters, no control characters; case-sensitive.
pub fn tag_key(k: &str) -> Result<(), String> {
    if k.is_empty() || k.chars().count() > 128 {
        return Err("a tag key must be 1 to 128 characters".into());
    }
    if k.chars().any(char::is_control) {
        return Err("a tag key must not contain control characters".into());
    }
    Ok(())
}

/// A tag value: 1–256 characters (tags always have a value), no control characters.
pub fn tag_value(v: &str) -> Result<(), String> {
    if v.is_empty() || v.chars().count() > 256 {
        return Err("a tag value is required and must be at most 256 characters".into());
    }
    if v.chars().any(char::is_control) {
        return Err("a tag value must not contain control characters".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(email(" Alice@Example.TEST ").unwrap(), "alice@example.test");
        for bad in [
            "", "alice", "a@b", "a@@b.c", "a b@c.d", "a@-b.c", ".a@b.c", "a\0@b.c",
        ] {
            assert!(email(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn bot_names_end_in_bot() {
        assert_eq!(
            bot_username("Compliance_1_Bot").unwrap(),
            "compliance_1_bot"
        );
        assert!(bot_username("helper").is_err());
        assert!(bot_username("-bot").is_err());
        assert!(bot_username("a b bot").is_err());
    }

    #[test]
    fn phones_and_country_codes() {
        assert_eq!(country_code("44").unwrap(), "+44");
        assert!(country_code("+12345").is_err());
        assert!(phone("+1 555").is_err());
        assert_eq!(phone("(555) 010-9999").unwrap(), "(555) 010-9999");
    }
}
