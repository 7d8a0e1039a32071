//! What the tera templates (mails and pages) share: HTML escaping of the five characters
//! that matter (tera's default also escapes `/`, which turns every URL and every
//! classification banner, `SECRET//NOFORN`, into entities for no gain), and the
//! classification banner's variables.

use crate::directory::network_settings::Classification;

/// Sets `banner` (empty without a level), `banner_bg` and `banner_fg`.
pub fn banner(ctx: &mut tera::Context, c: &Classification) {
    match c.banner() {
        Some((text, bg, fg)) => {
            ctx.insert("banner", &text);
            ctx.insert("banner_bg", bg);
            ctx.insert("banner_fg", fg);
        }
        None => ctx.insert("banner", ""),
    }
}

/// Escapes `&`, `<`, `>`, `"` and `'`.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn markup_is_escaped_and_urls_are_not() {
        assert_eq!(
            super::escape(r#"<a href="x">'&'</a> https://h/p"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt; https://h/p"
        );
    }
}
