//! The tabs of a security group's page (PRODUCT.md F2, the reference's security-group
//! details): which settings each tab shows, with their help text and limits, taken from
//! the settings types and bounds in `directory::group_settings`.

use super::fields::{Choice, Field, Kind, field};
use crate::directory::group_settings as gs;

/// One tab: its URL name (`?tab=messaging`), title, and fields (none for `details`).
pub struct Tab {
    pub name: &'static str,
    pub title: &'static str,
    pub intro: &'static str,
    pub fields: &'static [Field],
}

const MB_PER_MINUTE: &[(&str, Choice, &str)] = &[
    ("0", Choice::Num(0), "Off"),
    ("20", Choice::Num(20), "Low (20 MB per minute)"),
    ("60", Choice::Num(60), "Medium (60 MB per minute)"),
    ("100", Choice::Num(100), "High (100 MB per minute)"),
];

const AUTO_DOWNLOAD: &[(&str, Choice, &str)] = &[
    (
        "7340032",
        Choice::Num(gs::AUTO_DOWNLOAD_BEST_QUALITY),
        "Best quality transfer (attachments up to 7 MB, in their original form)",
    ),
    (
        "512000",
        Choice::Num(gs::AUTO_DOWNLOAD_LOW_BANDWIDTH),
        "Low bandwidth transfer (attachments up to 500 KB)",
    ),
];

const FEDERATION_MODES: &[(&str, Choice, &str)] = &[
    (
        "none",
        Choice::Str("none"),
        "None — members talk only to their own network",
    ),
    (
        "local",
        Choice::Str("local"),
        "Local — other networks on this appliance",
    ),
    (
        "global",
        Choice::Str("global"),
        "Global — also networks on other appliances",
    ),
];

const fn num(min: u64, max: u64) -> Kind {
    Kind::Number {
        min,
        max: Some(max),
    }
}

const COUNT: Kind = Kind::Number { min: 0, max: None };

pub const TABS: &[Tab] = &[
    Tab {
        name: "details",
        title: "Details",
        intro: "The group's name and members. Every user is in exactly one security group.",
        fields: &[],
    },
    Tab {
        name: "messaging",
        title: "Messaging",
        intro: "Messaging features for the group's members.",
        fields: &[
            field(
                "messaging.max_ttl_seconds",
                "Longest expiration timer (seconds)",
                "The longest message expiration timer members may set in their client: \
                 60 (1 minute) to 31536000 (365 days). Default 2592000 (30 days).",
                num(gs::MAX_TTL_RANGE.0, gs::MAX_TTL_RANGE.1),
            ),
            field(
                "messaging.max_bor_seconds",
                "Longest burn-on-read timer (seconds)",
                "The longest burn-on-read timer members may set: 0 turns burn-on-read off; \
                 at most 2592000 (30 days). Default 604800 (7 days).",
                num(gs::MAX_BOR_RANGE.0, gs::MAX_BOR_RANGE.1),
            ),
            field(
                "messaging.message_forwarding",
                "Message forwarding",
                "Members may forward messages to other conversations.",
                Kind::Bool,
            ),
            field(
                "messaging.quick_responses",
                "Quick responses",
                "Canned replies the client offers, one per line: at most 10, each at most \
                 8,000 characters.",
                Kind::Lines,
            ),
            field(
                "messaging.shredder_intensity",
                "Secure shredder intensity",
                "How hard the secure shredder works on members' devices to overwrite deleted \
                 data.",
                Kind::Choice(MB_PER_MINUTE),
            ),
            field(
                "messaging.shredder_manual",
                "Manual shredder",
                "Members may also run the shredder by hand.",
                Kind::Bool,
            ),
            field(
                "messaging.link_previews",
                "Link previews",
                "Clients may render previews of links in messages.",
                Kind::Bool,
            ),
        ],
    },
    Tab {
        name: "media",
        title: "Media and links",
        intro: "Files and attachments.",
        fields: &[
            field(
                "media.files_enabled",
                "Files",
                "Members may send files.",
                Kind::Bool,
            ),
            field(
                "media.file_download",
                "File download",
                "Members may download files to their device. Off: they can only preview \
                 files (and screenshots are blocked).",
                Kind::Bool,
            ),
            field(
                "media.auto_download_max_bytes",
                "File download size",
                "The largest attachment clients download without asking.",
                Kind::Choice(AUTO_DOWNLOAD),
            ),
        ],
    },
    Tab {
        name: "location",
        title: "Location",
        intro: "Sharing a device's position.",
        fields: &[
            field(
                "location.sharing",
                "Location sharing",
                "Members with GPS-enabled devices may share their location.",
                Kind::Bool,
            ),
            field(
                "location.maps",
                "Map view",
                "Shared locations may be shown on a map (needs location sharing); off, \
                 members share a link with the coordinates instead.",
                Kind::Bool,
            ),
        ],
    },
    Tab {
        name: "calling",
        title: "Calling",
        intro: "Audio and video calls.",
        fields: &[
            field(
                "calling.audio",
                "Audio calls",
                "Members may start audio calls.",
                Kind::Bool,
            ),
            field(
                "calling.video",
                "Video calls and screen sharing",
                "Members may start video calls and share their screen (needs audio calls).",
                Kind::Bool,
            ),
            field(
                "calling.force_tcp",
                "Force TCP calling",
                "Calls are relayed over TCP/TLS only and UDP is never tried: for networks \
                 that block the VoIP UDP ports, at some cost in call quality. Off, clients \
                 try UDP first and fall back to TCP.",
                Kind::Bool,
            ),
        ],
    },
    Tab {
        name: "security",
        title: "Security",
        intro: "Passwords, lockout, devices and sessions.",
        fields: &[
            field(
                "security.password.min_length",
                "Minimum password length",
                "8 to 128 characters; default 12. The counts below must fit in it.",
                num(
                    gs::PASSWORD_MIN_LENGTH_RANGE.0 as u64,
                    gs::PASSWORD_MIN_LENGTH_RANGE.1 as u64,
                ),
            ),
            field(
                "security.password.lowercase",
                "Lowercase letters required",
                "At least this many lowercase letters (0 = no rule).",
                COUNT,
            ),
            field(
                "security.password.uppercase",
                "Uppercase letters required",
                "At least this many uppercase letters (0 = no rule).",
                COUNT,
            ),
            field(
                "security.password.digits",
                "Digits required",
                "At least this many digits (0 = no rule).",
                COUNT,
            ),
            field(
                "security.password.symbols",
                "Symbols required",
                "At least this many symbols, anything not a letter or digit (0 = no rule).",
                COUNT,
            ),
            field(
                "security.lockout_threshold",
                "Lockout after failed sign-ins",
                "Failed sign-ins that lock an account: 3 to 100; default 10. Locked \
                 accounts unlock after 24 hours, or by an administrator.",
                num(gs::LOCKOUT_RANGE.0 as u64, gs::LOCKOUT_RANGE.1 as u64),
            ),
            field(
                "security.device_reset_threshold",
                "Device wipe after failed unlocks",
                "Failed unlock attempts after which a device wipes its data: 0 = never, \
                 otherwise below the lockout threshold.",
                COUNT,
            ),
            field(
                "security.account_takeover_protection",
                "Account takeover protection",
                "A new device must be approved from an existing device or with a code \
                 sent by e-mail.",
                Kind::Bool,
            ),
            field(
                "security.always_reauthenticate",
                "Always reauthenticate",
                "Members re-enter their password every time they reopen the client.",
                Kind::Bool,
            ),
            field(
                "security.master_recovery_key",
                "Master recovery key",
                "A recovery key is made at registration, to approve a new device when no \
                 other device is at hand.",
                Kind::Bool,
            ),
            field(
                "security.session_timeout_minutes",
                "Non-SSO session timeout (minutes)",
                "Members who do not sign in with SSO must sign in again after this long, \
                 whatever their activity: 0 = never, otherwise 60 to 525600 (365 days); \
                 default 43200 (30 days).",
                num(0, gs::SESSION_TIMEOUT_RANGE.1 as u64),
            ),
            field(
                "security.inactivity_timeout_minutes",
                "Inactivity lock (minutes)",
                "Clients lock after this many idle minutes: 0 = off, otherwise 5 to 10080 \
                 (7 days).",
                num(0, gs::INACTIVITY_TIMEOUT_RANGE.1 as u64),
            ),
        ],
    },
    Tab {
        name: "notifications",
        title: "Notifications",
        intro: "Notifications and visibility.",
        fields: &[
            field(
                "notifications.message_previews",
                "Message previews in notifications",
                "Notifications may show the text of the message; off, they say only that a \
                 message arrived.",
                Kind::Bool,
            ),
            field(
                "notifications.presence",
                "Presence",
                "Members see each other's online, away and offline status.",
                Kind::Bool,
            ),
        ],
    },
    Tab {
        name: "open-access",
        title: "Open access",
        intro: "Traffic obfuscation for restricted and monitored networks.",
        fields: &[
            field(
                "open_access.enabled",
                "Open access",
                "Members may turn on open access, which disguises the client's traffic.",
                Kind::Bool,
            ),
            field(
                "open_access.forced",
                "Force open access",
                "Open access is on for every device and members cannot turn it off (needs \
                 open access).",
                Kind::Bool,
            ),
        ],
    },
    Tab {
        name: "federation",
        title: "Federation",
        intro: "Talking to members of other networks.",
        fields: &[
            field(
                "federation.mode",
                "Federation",
                "Which other networks members may talk to.",
                Kind::Choice(FEDERATION_MODES),
            ),
            field(
                "federation.restricted",
                "Restricted federation",
                "Only the networks listed below may be reached, and they must list this \
                 network too (needs local or global federation).",
                Kind::Bool,
            ),
            field(
                "federation.allowed_networks",
                "Allowed networks",
                "8-digit network ids, one per line (at most 500), used when federation is \
                 restricted.",
                Kind::Lines,
            ),
            field(
                "federation.guest_users",
                "Guest users",
                "Members may talk to guest users (when the network allows guests).",
                Kind::Bool,
            ),
        ],
    },
    Tab {
        name: "integrations",
        title: "Integrations",
        intro: "The ATAK (Android Team Awareness Kit) plugin.",
        fields: &[
            field(
                "integrations.atak_enabled",
                "ATAK plugin",
                "The ATAK plugin may pair with members' clients (needs at least one \
                 package below).",
                Kind::Bool,
            ),
            field(
                "integrations.atak_packages",
                "ATAK packages",
                "The ATAK editions the plugin may pair with.",
                Kind::Multi(&gs::ATAK_PACKAGES),
            ),
        ],
    },
];

/// The tab named `name` (the details tab for anything else).
pub fn tab(name: &str) -> &'static Tab {
    TABS.iter().find(|t| t.name == name).unwrap_or(&TABS[0])
}

/// Every settings field of every tab.
pub fn all_fields() -> Vec<Field> {
    TABS.iter().flat_map(|t| t.fields.iter().copied()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::group_settings::GroupSettings;

    #[test]
    fn every_setting_has_a_place_on_a_tab() {
        fn leaves(v: &serde_json::Value, at: String, out: &mut Vec<String>) {
            match v.as_object() {
                Some(m) if !at.ends_with("password") || !m.is_empty() => {
                    for (k, c) in m {
                        let p = if at.is_empty() {
                            k.clone()
                        } else {
                            format!("{at}.{k}")
                        };
                        leaves(c, p, out);
                    }
                }
                _ => out.push(at),
            }
        }
        let mut all = Vec::new();
        leaves(
            &serde_json::to_value(GroupSettings::default()).unwrap(),
            String::new(),
            &mut all,
        );
        let shown: Vec<&str> = all_fields().iter().map(|f| f.path).collect();
        for path in &all {
            assert!(shown.contains(&path.as_str()), "{path} has no tab");
        }
        assert_eq!(shown.len(), all.len());
    }
}
