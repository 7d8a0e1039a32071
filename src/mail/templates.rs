//! The mails' words: tera templates in `templates/email/` (embedded in the binary), one
//! plain-text and one HTML file per kind of mail. Every mail of a network with a
//! classification level carries the banner text at its top and bottom (in the level's
//! colours in HTML) and the level as a subject prefix (PRODUCT.md F9).

use crate::directory::network_settings::Classification;
use crate::error::{Error, Result};
use std::sync::LazyLock;
use tera::{Context, Tera};

static TERA: LazyLock<Tera> = LazyLock::new(|| {
    let mut t = Tera::default();
    t.add_raw_templates([
        (
            "invitation.txt",
            include_str!("../../templates/email/invitation.txt.tera"),
        ),
        (
            "invitation.html",
            include_str!("../../templates/email/invitation.html.tera"),
        ),
        (
            "password_reset.txt",
            include_str!("../../templates/email/password_reset.txt.tera"),
        ),
        (
            "password_reset.html",
            include_str!("../../templates/email/password_reset.html.tera"),
        ),
        (
            "device_approval.txt",
            include_str!("../../templates/email/device_approval.txt.tera"),
        ),
        (
            "device_approval.html",
            include_str!("../../templates/email/device_approval.html.tera"),
        ),
    ])
    .expect("the embedded mail templates parse");
    t.autoescape_on(vec!["html"]);
    t.set_escape_fn(crate::html::escape);
    t
});

/// A rendered mail.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// `[SECRET//NOFORN] subject` when the network has a level.
fn subject(c: &Classification, s: &str) -> String {
    match c.banner() {
        Some((b, _, _)) => format!("[{b}] {s}"),
        None => s.to_string(),
    }
}

fn render(kind: &str, mut ctx: Context, c: &Classification, subj: String) -> Result<Rendered> {
    let subj = subject(c, &subj);
    ctx.insert("subject", &subj);
    crate::html::banner(&mut ctx, c);
    let r = |name: String| {
        TERA.render(&name, &ctx)
            .map_err(|e| Error::internal(format!("the {name} mail template failed: {e}")))
    };
    Ok(Rendered {
        subject: subj,
        text: r(format!("{kind}.txt"))?,
        html: r(format!("{kind}.html"))?,
    })
}

/// What a mail carrying a one-time link says.
pub struct LinkMail<'a> {
    pub network: &'a str,
    /// Who asked for it: an admin's username, or "You".
    pub by: &'a str,
    /// The person's name, if known.
    pub name: &'a str,
    pub email: &'a str,
    /// The one-time link.
    pub link: &'a str,
    /// The appliance's base URL (for `outpost client login --url`).
    pub server: &'a str,
    /// When the link expires, as people read it.
    pub expires: &'a str,
    pub classification: &'a Classification,
}

fn link_context(m: &LinkMail<'_>) -> Context {
    let mut ctx = Context::new();
    ctx.insert("network", m.network);
    ctx.insert("by", m.by);
    ctx.insert("name", m.name);
    ctx.insert("email", m.email);
    ctx.insert("link", m.link);
    ctx.insert("server", m.server);
    ctx.insert(
        "host",
        m.server
            .trim_start_matches("https://")
            .trim_end_matches('/'),
    );
    ctx.insert("expires", m.expires);
    ctx
}

/// The invitation mail: a registration link.
pub fn invitation(m: &LinkMail<'_>) -> Result<Rendered> {
    render(
        "invitation",
        link_context(m),
        m.classification,
        format!("You are invited to {}", m.network),
    )
}

/// The password reset mail.
pub fn password_reset(m: &LinkMail<'_>) -> Result<Rendered> {
    render(
        "password_reset",
        link_context(m),
        m.classification,
        format!("Choose a new password for {}", m.network),
    )
}

/// What a device-approval mail says (account-takeover protection).
pub struct CodeMail<'a> {
    pub network: &'a str,
    pub name: &'a str,
    pub email: &'a str,
    /// The new device's name and platform, as it registered.
    pub device: &'a str,
    pub platform: &'a str,
    /// When it signed in, as people read it.
    pub when: &'a str,
    /// The six-digit code.
    pub code: &'a str,
    pub expires: &'a str,
    pub server: &'a str,
    pub classification: &'a Classification,
}

/// The device-approval mail: a code to enter on the new device.
pub fn device_approval(m: &CodeMail<'_>) -> Result<Rendered> {
    let mut ctx = Context::new();
    ctx.insert("network", m.network);
    ctx.insert("name", m.name);
    ctx.insert("email", m.email);
    ctx.insert("device", m.device);
    ctx.insert("platform", m.platform);
    ctx.insert("when", m.when);
    // Grouped as people read it aloud: 123 456.
    let code = match m.code.len() {
        6 => format!("{} {}", &m.code[..3], &m.code[3..]),
        _ => m.code.to_string(),
    };
    ctx.insert("code", &code);
    ctx.insert("expires", m.expires);
    ctx.insert(
        "host",
        m.server
            .trim_start_matches("https://")
            .trim_end_matches('/'),
    );
    render(
        "device_approval",
        ctx,
        m.classification,
        format!("Approve a new device for {}", m.network),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::network_settings::ClassificationLevel;

    fn invite(c: &Classification) -> Rendered {
        invitation(&LinkMail {
            network: "Field <ops>",
            by: "owner",
            name: "Ann",
            email: "ann@example.org",
            link: "https://outpost.example.org/invite/oi_abc",
            server: "https://outpost.example.org",
            expires: "2026-11-30 08:00 UTC",
            classification: c,
        })
        .unwrap()
    }

    #[test]
    fn an_invitation_has_the_link_in_both_parts_and_escapes_html() {
        let r = invite(&Classification::default());
        assert_eq!(r.subject, "You are invited to Field <ops>");
        assert!(r.text.contains("https://outpost.example.org/invite/oi_abc"));
        assert!(r.text.contains("Field <ops>"));
        assert!(
            r.html
                .contains("href=\"https://outpost.example.org/invite/oi_abc\"")
        );
        assert!(r.html.contains("Field &lt;ops&gt;"));
        assert!(!r.html.contains("Field <ops>"));
        assert!(r.text.contains(
            "outpost client login --url https://outpost.example.org --username ann@example.org"
        ));
        assert!(!r.text.contains("SECRET"));
    }

    #[test]
    fn a_classified_network_marks_subject_and_both_ends_of_the_body() {
        let c = Classification {
            level: ClassificationLevel::Secret,
            caveats: "noforn".into(),
        };
        let r = invite(&c);
        assert_eq!(r.subject, "[SECRET//NOFORN] You are invited to Field <ops>");
        assert!(r.text.starts_with("SECRET//NOFORN\n"));
        assert!(r.text.trim_end().ends_with("SECRET//NOFORN"));
        assert_eq!(r.html.matches(">SECRET//NOFORN</div>").count(), 2);
        assert!(r.html.contains("background:#c8102e"));
    }
}
