//! Security-group settings (PRODUCT.md F2): every policy a group carries, with its
//! default, its allowed range, and the rules that tie settings together.
//!
//! Settings are grouped by the console's tabs (messaging, media, location, calling,
//! security, notifications, open access, federation, integrations). Every field has
//! a default, so a stored group written by an older release gains new settings with
//! their defaults, and an update may name only the fields it changes
//! ([`super::patch`]). [`GroupSettings::validate`] reports every broken rule at once.

use crate::error::Problems;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub const MINUTE: u64 = 60;
pub const DAY: u64 = 86_400;
/// Expiration timer bounds: 1 minute … 365 days.
pub const MAX_TTL_RANGE: (u64, u64) = (MINUTE, 365 * DAY);
/// Burn-on-read bounds: 0 (off) … 30 days.
pub const MAX_BOR_RANGE: (u64, u64) = (0, 30 * DAY);
pub const SHREDDER_VALUES: [u8; 4] = [0, 20, 60, 100];
pub const AUTO_DOWNLOAD_LOW_BANDWIDTH: u64 = 512_000;
pub const AUTO_DOWNLOAD_BEST_QUALITY: u64 = 7_340_032;
pub const QUICK_RESPONSES_MAX: usize = 10;
pub const QUICK_RESPONSE_MAX_CHARS: usize = 8_000;
pub const ATAK_PACKAGES: [&str; 2] = ["com.atakmap.app.civ", "com.atakmap.app.mil"];
pub const PASSWORD_MIN_LENGTH_RANGE: (u32, u32) = (8, 128);
pub const LOCKOUT_RANGE: (u32, u32) = (3, 100);
/// Absolute session timeout for non-SSO users: 0 = never, else 60 minutes … 365 days.
pub const SESSION_TIMEOUT_RANGE: (u32, u32) = (60, 525_600);
/// Inactivity timeout: 0 = off, else 5 minutes … 7 days.
pub const INACTIVITY_TIMEOUT_RANGE: (u32, u32) = (5, 10_080);
pub const FEDERATION_ALLOW_LIST_MAX: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields, default)]
pub struct GroupSettings {
    pub messaging: Messaging,
    pub media: Media,
    pub location: Location,
    pub calling: Calling,
    pub security: Security,
    pub notifications: Notifications,
    pub open_access: OpenAccess,
    pub federation: Federation,
    pub integrations: Integrations,
}

/// Messaging tab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Messaging {
    /// Longest expiration timer members may set, in seconds (60 … 31536000; default 30 days).
    #[schema(minimum = 60, maximum = 31536000)]
    pub max_ttl_seconds: u64,
    /// Longest burn-on-read timer, in seconds (0 = burn-on-read off … 2592000; default 7 days).
    #[schema(minimum = 0, maximum = 2592000)]
    pub max_bor_seconds: u64,
    /// Members may forward messages.
    pub message_forwarding: bool,
    /// Canned replies offered by clients (at most 10, each at most 8,000 characters).
    #[schema(max_items = 10)]
    pub quick_responses: Vec<String>,
    /// Secure shredder intensity: 0, 20, 60 or 100 (MB per minute).
    pub shredder_intensity: u8,
    /// Members may also run the shredder by hand.
    pub shredder_manual: bool,
    /// Clients may render link previews.
    pub link_previews: bool,
}

/// Media and links tab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Media {
    /// Members may send files.
    pub files_enabled: bool,
    /// Members may download files to their device (off = preview only).
    pub file_download: bool,
    /// Largest attachment downloaded automatically: 512000 (low bandwidth) or 7340032 (best quality).
    pub auto_download_max_bytes: u64,
}

/// Location tab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Location {
    /// Members may share their location.
    pub sharing: bool,
    /// Shared locations may be shown on a map (needs `sharing`).
    pub maps: bool,
}

/// Calling tab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Calling {
    /// Members may start audio calls.
    pub audio: bool,
    /// Members may start video calls and share their screen (needs `audio`).
    pub video: bool,
    /// Calls are relayed over TCP/TLS only; UDP is refused.
    pub force_tcp: bool,
}

/// Password rules for members' accounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordRequirements {
    /// At least this many characters (8 … 128; default 12).
    #[schema(minimum = 8, maximum = 128)]
    pub min_length: u32,
    /// At least this many lowercase letters.
    pub lowercase: u32,
    /// At least this many uppercase letters.
    pub uppercase: u32,
    /// At least this many digits.
    pub digits: u32,
    /// At least this many symbols (anything not a letter or digit).
    pub symbols: u32,
}

/// Security tab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Security {
    pub password: PasswordRequirements,
    /// Failed sign-ins that lock an account (3 … 100; default 10). Locked accounts unlock after 24 h.
    #[schema(minimum = 3, maximum = 100)]
    pub lockout_threshold: u32,
    /// Failed unlock attempts after which a device wipes its data (0 = never; below `lockout_threshold`).
    pub device_reset_threshold: u32,
    /// A new device must be approved from an existing device or with an e-mailed code.
    pub account_takeover_protection: bool,
    /// Members re-enter their password every time they reopen the client.
    pub always_reauthenticate: bool,
    /// A master recovery key is created at registration.
    pub master_recovery_key: bool,
    /// Non-SSO members must sign in again after this many minutes, whatever their activity
    /// (0 = never, else 60 … 525600; default 43200 = 30 days).
    pub session_timeout_minutes: u32,
    /// Clients lock after this many idle minutes (0 = off, else 5 … 10080).
    pub inactivity_timeout_minutes: u32,
}

/// Notifications and visibility tab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Notifications {
    /// Notifications may show message text.
    pub message_previews: bool,
    /// Members see each other's online/away/offline presence.
    pub presence: bool,
}

/// Open access (traffic obfuscation) tab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields, default)]
pub struct OpenAccess {
    /// Members may turn on open access.
    pub enabled: bool,
    /// Open access is on for every device (needs `enabled`).
    pub forced: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum FederationMode {
    /// Members talk only to their own network.
    #[default]
    None,
    /// Members may talk to other networks on this appliance.
    Local,
    /// Members may also talk to networks on other appliances.
    Global,
}

/// Federation tab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Federation {
    pub mode: FederationMode,
    /// Only networks in `allowed_networks` may be reached (they must list this network too).
    pub restricted: bool,
    /// 8-digit ids of the networks members may reach when `restricted` is on.
    #[schema(max_items = 500)]
    pub allowed_networks: Vec<String>,
    /// Members may talk to guest users.
    pub guest_users: bool,
}

/// Integrations tab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Integrations {
    /// The ATAK plugin may pair with members' clients.
    pub atak_enabled: bool,
    /// ATAK packages allowed: `com.atakmap.app.civ`, `com.atakmap.app.mil`.
    pub atak_packages: Vec<String>,
}

impl Default for Messaging {
    fn default() -> Self {
        Messaging {
            max_ttl_seconds: 30 * DAY,
            max_bor_seconds: 7 * DAY,
            message_forwarding: true,
            quick_responses: Vec::new(),
            shredder_intensity: 60,
            shredder_manual: true,
            link_previews: true,
        }
    }
}

impl Default for Media {
    fn default() -> Self {
        Media {
            files_enabled: true,
            file_download: true,
            auto_download_max_bytes: AUTO_DOWNLOAD_BEST_QUALITY,
        }
    }
}

impl Default for Location {
    fn default() -> Self {
        Location {
            sharing: true,
            maps: true,
        }
    }
}

impl Default for Calling {
    fn default() -> Self {
        Calling {
            audio: true,
            video: true,
            force_tcp: false,
        }
    }
}

impl Default for PasswordRequirements {
    fn default() -> Self {
        PasswordRequirements {
            min_length: 12,
            lowercase: 0,
            uppercase: 0,
            digits: 0,
            symbols: 0,
        }
    }
}

impl Default for Security {
    fn default() -> Self {
        Security {
            password: PasswordRequirements::default(),
            lockout_threshold: 10,
            device_reset_threshold: 0,
            account_takeover_protection: false,
            always_reauthenticate: false,
            master_recovery_key: true,
            session_timeout_minutes: 43_200,
            inactivity_timeout_minutes: 0,
        }
    }
}

impl Default for Notifications {
    fn default() -> Self {
        Notifications {
            message_previews: true,
            presence: true,
        }
    }
}

fn in_range<T: PartialOrd + Copy>(v: T, (lo, hi): (T, T)) -> bool {
    v >= lo && v <= hi
}

impl GroupSettings {
    /// Check every value and every dependency; `own_network` is the group's network id.
    pub fn validate(&self, own_network: &str) -> Problems {
        let mut p = Problems::default();
        let m = &self.messaging;
        p.check(
            in_range(m.max_ttl_seconds, MAX_TTL_RANGE),
            "messaging.max_ttl_seconds",
            || {
                format!(
                    "must be between {} (1 minute) and {} (365 days) seconds",
                    MAX_TTL_RANGE.0, MAX_TTL_RANGE.1
                )
            },
        );
        p.check(
            in_range(m.max_bor_seconds, MAX_BOR_RANGE),
            "messaging.max_bor_seconds",
            || {
                format!(
                    "must be between 0 (off) and {} (30 days) seconds",
                    MAX_BOR_RANGE.1
                )
            },
        );
        p.check(
            SHREDDER_VALUES.contains(&m.shredder_intensity),
            "messaging.shredder_intensity",
            || "must be one of 0, 20, 60, 100".into(),
        );
        p.check(
            m.quick_responses.len() <= QUICK_RESPONSES_MAX,
            "messaging.quick_responses",
            || format!("at most {QUICK_RESPONSES_MAX} quick responses"),
        );
        for (i, q) in m.quick_responses.iter().enumerate() {
            let field = format!("messaging.quick_responses[{i}]");
            p.check(!q.trim().is_empty(), &field, || "must not be empty".into());
            p.check(
                q.chars().count() <= QUICK_RESPONSE_MAX_CHARS,
                &field,
                || format!("must be at most {QUICK_RESPONSE_MAX_CHARS} characters"),
            );
        }

        p.check(
            [AUTO_DOWNLOAD_LOW_BANDWIDTH, AUTO_DOWNLOAD_BEST_QUALITY]
                .contains(&self.media.auto_download_max_bytes),
            "media.auto_download_max_bytes",
            || {
                format!(
                    "must be {AUTO_DOWNLOAD_LOW_BANDWIDTH} (low bandwidth) or \
                     {AUTO_DOWNLOAD_BEST_QUALITY} (best quality)"
                )
            },
        );
        p.check(
            !self.location.maps || self.location.sharing,
            "location.maps",
            || "the map view needs location sharing; turn maps off too, or keep sharing on".into(),
        );
        p.check(!self.calling.video || self.calling.audio, "calling.video", || {
            "video calls and screen sharing need audio calls; turn video off too, or keep audio on"
                .into()
        });

        let s = &self.security;
        let pw = &s.password;
        p.check(
            in_range(pw.min_length, PASSWORD_MIN_LENGTH_RANGE),
            "security.password.min_length",
            || {
                format!(
                    "must be between {} and {}",
                    PASSWORD_MIN_LENGTH_RANGE.0, PASSWORD_MIN_LENGTH_RANGE.1
                )
            },
        );
        let required =
            pw.lowercase as u64 + pw.uppercase as u64 + pw.digits as u64 + pw.symbols as u64;
        p.check(
            required <= pw.min_length as u64,
            "security.password",
            || {
                format!(
                    "the required letters, digits and symbols add up to {required}, more than the \
                 minimum length {}; raise min_length or lower the counts",
                    pw.min_length
                )
            },
        );
        p.check(
            in_range(s.lockout_threshold, LOCKOUT_RANGE),
            "security.lockout_threshold",
            || {
                format!(
                    "must be between {} and {}",
                    LOCKOUT_RANGE.0, LOCKOUT_RANGE.1
                )
            },
        );
        p.check(
            s.device_reset_threshold == 0 || s.device_reset_threshold < s.lockout_threshold,
            "security.device_reset_threshold",
            || {
                format!(
                    "must be 0 (never) or below the lockout threshold ({})",
                    s.lockout_threshold
                )
            },
        );
        p.check(
            s.session_timeout_minutes == 0
                || in_range(s.session_timeout_minutes, SESSION_TIMEOUT_RANGE),
            "security.session_timeout_minutes",
            || {
                format!(
                    "must be 0 (never) or between {} and {} minutes",
                    SESSION_TIMEOUT_RANGE.0, SESSION_TIMEOUT_RANGE.1
                )
            },
        );
        p.check(
            s.inactivity_timeout_minutes == 0
                || in_range(s.inactivity_timeout_minutes, INACTIVITY_TIMEOUT_RANGE),
            "security.inactivity_timeout_minutes",
            || {
                format!(
                    "must be 0 (off) or between {} and {} minutes",
                    INACTIVITY_TIMEOUT_RANGE.0, INACTIVITY_TIMEOUT_RANGE.1
                )
            },
        );

        p.check(
            !self.open_access.forced || self.open_access.enabled,
            "open_access.forced",
            || "forcing open access needs open access enabled".into(),
        );

        let f = &self.federation;
        p.check(
            !(f.restricted && f.mode == FederationMode::None),
            "federation.restricted",
            || "restricted federation needs mode local or global".into(),
        );
        p.check(
            f.allowed_networks.len() <= FEDERATION_ALLOW_LIST_MAX,
            "federation.allowed_networks",
            || format!("at most {FEDERATION_ALLOW_LIST_MAX} networks"),
        );
        let mut seen = std::collections::BTreeSet::new();
        for (i, id) in f.allowed_networks.iter().enumerate() {
            let field = format!("federation.allowed_networks[{i}]");
            if !super::validate::is_network_id(id) {
                p.push(field, format!("{id:?} is not an 8-digit network id"));
            } else if id == own_network {
                p.push(field, "a network does not federate with itself");
            } else if !seen.insert(id) {
                p.push(field, format!("{id} is listed twice"));
            }
        }

        let a = &self.integrations;
        let mut seen = std::collections::BTreeSet::new();
        for (i, pkg) in a.atak_packages.iter().enumerate() {
            let field = format!("integrations.atak_packages[{i}]");
            if !ATAK_PACKAGES.contains(&pkg.as_str()) {
                p.push(
                    field,
                    format!("must be one of {}", ATAK_PACKAGES.join(", ")),
                );
            } else if !seen.insert(pkg) {
                p.push(field, format!("{pkg} is listed twice"));
            }
        }
        p.check(
            !(a.atak_enabled && a.atak_packages.is_empty()),
            "integrations.atak_packages",
            || "enabling ATAK needs at least one package".into(),
        );
        p
    }

    /// Why `password` does not meet these requirements, if it does not.
    pub fn password_problem(&self, password: &str) -> Option<String> {
        let r = &self.security.password;
        let count = |f: fn(&char) -> bool| password.chars().filter(f).count() as u32;
        let len = password.chars().count() as u32;
        if len < r.min_length {
            return Some(format!("must be at least {} characters long", r.min_length));
        }
        if len > 1024 {
            return Some("must be at most 1024 characters long".into());
        }
        let checks: [(u32, u32, &str); 4] = [
            (
                r.lowercase,
                count(char::is_ascii_lowercase),
                "lowercase letters",
            ),
            (
                r.uppercase,
                count(char::is_ascii_uppercase),
                "uppercase letters",
            ),
            (r.digits, count(char::is_ascii_digit), "digits"),
            (r.symbols, count(|c| !c.is_alphanumeric()), "symbols"),
        ];
        for (need, have, what) in checks {
            if have < need {
                return Some(format!("must contain at least {need} {what}"));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(s: &GroupSettings) -> Vec<String> {
        s.validate("12345678")
            .0
            .into_iter()
            .map(|p| p.field)
            .collect()
    }

    #[test]
    fn defaults_are_valid_and_match_the_product_card() {
        let s = GroupSettings::default();
        assert!(fields(&s).is_empty());
        assert_eq!(s.messaging.max_ttl_seconds, 30 * DAY);
        assert_eq!(s.messaging.max_bor_seconds, 7 * DAY);
        assert_eq!(s.security.password.min_length, 12);
        assert_eq!(s.security.lockout_threshold, 10);
        assert_eq!(s.security.session_timeout_minutes, 30 * 24 * 60);
    }

    #[test]
    fn dependencies_between_settings_are_enforced() {
        let mut s = GroupSettings::default();
        s.calling.audio = false;
        assert_eq!(fields(&s), vec!["calling.video"]);
        s.calling.video = false;
        assert!(fields(&s).is_empty());

        let mut s = GroupSettings::default();
        s.security.device_reset_threshold = 10;
        assert_eq!(fields(&s), vec!["security.device_reset_threshold"]);
        s.security.device_reset_threshold = 9;
        assert!(fields(&s).is_empty());

        let mut s = GroupSettings::default();
        s.messaging.shredder_intensity = 50;
        s.media.auto_download_max_bytes = 1000;
        s.integrations.atak_enabled = true;
        s.federation.restricted = true;
        s.federation.allowed_networks = vec!["12345678".into(), "abc".into()];
        let f = fields(&s);
        for want in [
            "messaging.shredder_intensity",
            "media.auto_download_max_bytes",
            "integrations.atak_packages",
            "federation.restricted",
            "federation.allowed_networks[0]",
            "federation.allowed_networks[1]",
        ] {
            assert!(f.contains(&want.to_string()), "{want} missing from {f:?}");
        }
    }

    #[test]
    fn password_rules_name_the_first_missing_class() {
        let mut s = GroupSettings::default();
        s.security.password.digits = 2;
        assert_eq!(
            s.password_problem("short").unwrap(),
            "must be at least 12 characters long"
        );
        assert!(
            s.password_problem("longenoughpass1")
                .unwrap()
                .contains("2 digits")
        );
        assert!(s.password_problem("longenoughpass12").is_none());
    }
}
