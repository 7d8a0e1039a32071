//! Network-wide settings (PRODUCT.md F1, F9, F11): read receipts, data retention,
//! the file-download default, the consent pop-up, guest users and classification.
//!
//! Like group settings, every field has a default and updates name only what they
//! change. The consent pop-up carries a version that goes up whenever its text
//! changes, so clients know to show it again.

use crate::error::Problems;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub const CONSENT_TITLE_MAX: usize = 200;
pub const CONSENT_BODY_MAX: usize = 20_000;
pub const CONSENT_BUTTON_MAX: usize = 40;
pub const CAVEATS_MAX: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum ReadReceipts {
    /// Clients never send read receipts.
    Disabled,
    /// Members choose whether to send read receipts.
    #[default]
    Enabled,
    /// Read receipts are always sent.
    ForceEnabled,
}

/// Classification levels and their banner colours (PRODUCT.md F9).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum ClassificationLevel {
    /// No banner.
    #[default]
    None,
    Unclassified,
    Cui,
    Confidential,
    Secret,
    TopSecret,
    TopSecretSci,
}

impl ClassificationLevel {
    /// Banner text, background colour and text colour.
    pub fn banner(self) -> Option<(&'static str, &'static str, &'static str)> {
        Some(match self {
            ClassificationLevel::None => return None,
            ClassificationLevel::Unclassified => ("UNCLASSIFIED", "#007a33", "#ffffff"),
            ClassificationLevel::Cui => ("CUI", "#502b85", "#ffffff"),
            ClassificationLevel::Confidential => ("CONFIDENTIAL", "#0033a0", "#ffffff"),
            ClassificationLevel::Secret => ("SECRET", "#c8102e", "#ffffff"),
            ClassificationLevel::TopSecret => ("TOP SECRET", "#ff8c00", "#000000"),
            ClassificationLevel::TopSecretSci => ("TOP SECRET//SCI", "#fce83a", "#000000"),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Classification {
    pub level: ClassificationLevel,
    /// Caveats appended to the banner (e.g. `NOFORN`), at most 200 characters.
    pub caveats: String,
}

impl Classification {
    /// The banner: text (level and caveats, e.g. `SECRET//NOFORN`), background and text
    /// colours; None when the network has no level.
    pub fn banner(&self) -> Option<(String, &'static str, &'static str)> {
        let (text, bg, fg) = self.level.banner()?;
        let caveats = self.caveats.trim();
        let text = if caveats.is_empty() {
            text.to_string()
        } else {
            format!("{text}//{}", caveats.to_uppercase())
        };
        Some((text, bg, fg))
    }
}

/// The consent pop-up every client must acknowledge (F11).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Consent {
    pub enabled: bool,
    /// Shown at the top of the pop-up (at most 200 characters).
    pub title: String,
    /// The terms or policy text (at most 20,000 characters).
    pub body: String,
    /// Label of the acknowledge button (at most 40 characters).
    pub button_label: String,
    /// Raised by the server whenever title, body or button label change; read-only.
    pub version: u32,
}

impl Default for Consent {
    fn default() -> Self {
        Consent {
            enabled: false,
            title: String::new(),
            body: String::new(),
            button_label: "Acknowledge".into(),
            version: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSettings {
    pub read_receipts: ReadReceipts,
    /// Every message is copied to the network's compliance member.
    pub data_retention: bool,
    /// Default for file download in new security groups.
    pub file_download: bool,
    pub consent: Consent,
    /// Guests may register and be reached by groups that allow them.
    pub guest_users: bool,
    pub classification: Classification,
}

impl Default for NetworkSettings {
    fn default() -> Self {
        NetworkSettings {
            read_receipts: ReadReceipts::Enabled,
            data_retention: false,
            file_download: true,
            consent: Consent::default(),
            guest_users: false,
            classification: Classification::default(),
        }
    }
}

fn has_control(s: &str, allow_newlines: bool) -> bool {
    s.chars()
        .any(|c| c.is_control() && !(allow_newlines && matches!(c, '\n' | '\r' | '\t')))
}

impl NetworkSettings {
    pub fn validate(&self) -> Problems {
        let mut p = Problems::default();
        let c = &self.consent;
        p.check(
            c.title.chars().count() <= CONSENT_TITLE_MAX,
            "consent.title",
            || format!("must be at most {CONSENT_TITLE_MAX} characters"),
        );
        p.check(
            c.body.chars().count() <= CONSENT_BODY_MAX,
            "consent.body",
            || format!("must be at most {CONSENT_BODY_MAX} characters"),
        );
        p.check(
            c.button_label.chars().count() <= CONSENT_BUTTON_MAX,
            "consent.button_label",
            || format!("must be at most {CONSENT_BUTTON_MAX} characters"),
        );
        p.check(!has_control(&c.title, false), "consent.title", || {
            "must not contain control characters".into()
        });
        p.check(
            !has_control(&c.button_label, false),
            "consent.button_label",
            || "must not contain control characters".into(),
        );
        p.check(!has_control(&c.body, true), "consent.body", || {
            "must not contain control characters other than line breaks and tabs".into()
        });
        if c.enabled {
            p.check(!c.title.trim().is_empty(), "consent.title", || {
                "an enabled consent pop-up needs a title".into()
            });
            p.check(!c.body.trim().is_empty(), "consent.body", || {
                "an enabled consent pop-up needs a body".into()
            });
        }
        let cav = &self.classification.caveats;
        p.check(
            cav.chars().count() <= CAVEATS_MAX,
            "classification.caveats",
            || format!("must be at most {CAVEATS_MAX} characters"),
        );
        p.check(!has_control(cav, false), "classification.caveats", || {
            "must not contain control characters".into()
        });
        p
    }

    /// Carry the consent version forward: raise it if the visible text changed.
    pub fn bump_consent_version(&mut self, before: &NetworkSettings) {
        let (a, b) = (&before.consent, &self.consent);
        let changed = a.title != b.title
            || a.body != b.body
            || a.button_label != b.button_label
            || (b.enabled && !a.enabled);
        self.consent.version = if changed { a.version + 1 } else { a.version };
    }
}
