//! Reading a `multipart/form-data` form (the console's file uploads): its fields by
//! name, the file's bytes as sent. Small on purpose — a browser form with a few text
//! fields and one file — and strict: a body that is not well-formed multipart is an
//! error, never a guess.

use crate::error::{Error, Result};
use std::collections::HashMap;

/// A read form: text fields, and file fields with their file name and bytes.
#[derive(Debug, Default)]
pub struct Multipart {
    pub fields: HashMap<String, String>,
    pub files: HashMap<String, (String, Vec<u8>)>,
}

impl Multipart {
    /// A text field, or "".
    pub fn field(&self, name: &str) -> &str {
        self.fields.get(name).map(String::as_str).unwrap_or("")
    }
}

fn bad(why: &str) -> Error {
    Error::bad_request(
        "invalid_form",
        format!("the uploaded form could not be read ({why}); reload the page and try again"),
    )
}

/// The boundary of a `multipart/form-data` content type.
fn boundary(content_type: &str) -> Option<String> {
    let mut parts = content_type.split(';');
    let mime = parts.next()?.trim();
    if !mime.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    parts.find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
            .filter(|b| !b.is_empty() && b.len() <= 200)
    })
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// A `name="value"` parameter of a Content-Disposition header.
fn param(header: &str, name: &str) -> Option<String> {
    header.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// Read `body` sent as `content_type`.
pub fn parse(content_type: &str, body: &[u8]) -> Result<Multipart> {
    let b = boundary(content_type).ok_or_else(|| bad("it is not multipart/form-data"))?;
    let delim = format!("--{b}").into_bytes();
    let next_delim = format!("\r\n--{b}").into_bytes();
    let mut pos = find(body, &delim, 0).ok_or_else(|| bad("no boundary"))? + delim.len();
    let mut form = Multipart::default();
    loop {
        if body[pos..].starts_with(b"--") {
            return Ok(form);
        }
        if !body[pos..].starts_with(b"\r\n") {
            return Err(bad("a part does not start on a new line"));
        }
        pos += 2;
        let head_end = find(body, b"\r\n\r\n", pos).ok_or_else(|| bad("a part has no headers"))?;
        let head = String::from_utf8_lossy(&body[pos..head_end]).into_owned();
        let start = head_end + 4;
        let end = find(body, &next_delim, start).ok_or_else(|| bad("the last part is cut off"))?;
        let disposition = head
            .split("\r\n")
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case("content-disposition")
                    .then(|| v.trim().to_string())
            })
            .ok_or_else(|| bad("a part has no Content-Disposition"))?;
        let name = param(&disposition, "name").ok_or_else(|| bad("a part has no name"))?;
        let data = body[start..end].to_vec();
        match param(&disposition, "filename") {
            Some(file) => {
                form.files.insert(name, (file, data));
            }
            None => {
                form.fields
                    .insert(name, String::from_utf8_lossy(&data).into_owned());
            }
        }
        pos = end + next_delim.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_browser_form_with_a_file_is_read() {
        let body = b"------X\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\ntok\r\n\
------X\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n\
Content-Type: text/csv\r\n\r\nemail\r\na@b.test\r\n\r\n------X--\r\n";
        let f = parse("multipart/form-data; boundary=----X", body).unwrap();
        assert_eq!(f.field("_csrf"), "tok");
        let (name, data) = &f.files["file"];
        assert_eq!(name, "a.csv");
        assert_eq!(data, b"email\r\na@b.test\r\n");
        assert_eq!(f.field("missing"), "");
    }

    #[test]
    fn other_bodies_are_refused() {
        assert_eq!(
            parse("application/x-www-form-urlencoded", b"a=b")
                .unwrap_err()
                .code,
            "invalid_form"
        );
        let cut = b"--X\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno end";
        assert!(parse("multipart/form-data; boundary=X", cut).is_err());
        assert!(parse("multipart/form-data; boundary=X", b"").is_err());
    }
}
