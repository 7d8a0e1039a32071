//! The console's cookies and CSRF tokens.
//!
//! The session cookie carries an admin session token (the same kind the API's bearer
//! tokens are), `Secure; HttpOnly; SameSite=Strict`, scoped to `/console`. Every form
//! carries a CSRF token that is an HMAC of the session token's hash under a key made
//! at start, so it needs no state and dies with the session; the sign-in form, which
//! has no session yet, uses a random double-submit cookie instead. A one-shot flash
//! cookie carries the confirmation shown after a change ("User suspended").

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time::Duration};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const SESSION: &str = "outpost_console";
/// The sign-in form's double-submit cookie.
pub const PRE_SESSION: &str = "outpost_console_pre";
/// The one-shot confirmation message.
pub const FLASH: &str = "outpost_console_flash";
/// The form field every POST carries.
pub const CSRF_FIELD: &str = "_csrf";

fn secure(c: Cookie<'static>) -> Cookie<'static> {
    let mut c = c;
    c.set_path(super::PREFIX);
    c.set_secure(true);
    c.set_http_only(true);
    c.set_same_site(SameSite::Strict);
    c
}

/// The session cookie for `token` (a browser-session cookie: the server's expiry rules).
pub fn session(token: &str) -> Cookie<'static> {
    secure(Cookie::new(SESSION, token.to_string()))
}

/// A cookie that removes `name`.
pub fn removal(name: &'static str) -> Cookie<'static> {
    let mut c = secure(Cookie::new(name, ""));
    c.set_max_age(Duration::ZERO);
    c
}

/// The session token a request carries, if any.
pub fn session_token(req: &HttpRequest) -> Option<String> {
    req.cookie(SESSION)
        .map(|c| c.value().to_string())
        .filter(|v| !v.is_empty())
}

/// A fresh double-submit value for the sign-in form, and its cookie.
pub fn pre_session() -> (String, Cookie<'static>) {
    let v = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 24]>());
    let mut c = secure(Cookie::new(PRE_SESSION, v.clone()));
    c.set_max_age(Duration::hours(1));
    (v, c)
}

/// Whether the sign-in form's field matches its cookie.
pub fn pre_session_ok(req: &HttpRequest, field: &str) -> bool {
    req.cookie(PRE_SESSION).is_some_and(|c| {
        !field.is_empty() && bool::from(c.value().as_bytes().ct_eq(field.as_bytes()))
    })
}

/// A confirmation to show on the next page.
pub fn flash(text: &str) -> Cookie<'static> {
    let mut c = secure(Cookie::new(FLASH, URL_SAFE_NO_PAD.encode(text.as_bytes())));
    c.set_max_age(Duration::minutes(1));
    c
}

/// The confirmation a request carries, if any.
pub fn flash_of(req: &HttpRequest) -> Option<String> {
    let c = req.cookie(FLASH)?;
    let bytes = URL_SAFE_NO_PAD.decode(c.value()).ok()?;
    String::from_utf8(bytes)
        .ok()
        .map(|s| s.chars().take(300).collect())
}

/// Makes and checks the CSRF tokens of sessions.
pub struct Csrf {
    key: [u8; 32],
}

impl Csrf {
    /// With a fresh key (tests).
    pub fn new() -> Csrf {
        Csrf::with_key(rand::random())
    }

    /// With the appliance's stored key, so forms stay valid across restarts.
    pub fn with_key(key: [u8; 32]) -> Csrf {
        Csrf { key }
    }

    /// The token forms of the session `token` carry.
    pub fn token(&self, session_token: &str) -> String {
        let mut m = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        m.update(b"console csrf\0");
        m.update(session_token.as_bytes());
        URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
    }

    /// Whether `given` is the session's token (constant time).
    pub fn check(&self, session_token: &str, given: &str) -> bool {
        let want = self.token(session_token);
        bool::from(want.as_bytes().ct_eq(given.as_bytes()))
    }
}

impl Default for Csrf {
    fn default() -> Self {
        Csrf::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_belong_to_their_session() {
        let c = Csrf::new();
        let t = c.token("oa_one");
        assert!(c.check("oa_one", &t));
        assert!(!c.check("oa_two", &t));
        assert!(!c.check("oa_one", ""));
        assert!(
            !Csrf::new().check("oa_one", &t),
            "a restart changes the key"
        );
    }

    #[test]
    fn session_cookies_are_locked_down() {
        let c = session("oa_x");
        assert_eq!(c.secure(), Some(true));
        assert_eq!(c.http_only(), Some(true));
        assert_eq!(c.same_site(), Some(SameSite::Strict));
        assert_eq!(c.path(), Some("/console"));
    }
}
