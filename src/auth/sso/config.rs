//! A network's single sign-on configuration (PRODUCT.md F5; the reference's
//! `OidcConfigInfo`): its company id, the OpenID Connect issuer, the client registered
//! there, the scopes, the claim that names the user, an optional CA certificate for a
//! private issuer, the token-refresh grace period, and the switch.
//!
//! Company ids are unique across networks, ignoring case (an index maps the lowercase
//! id to its network). The client secret is kept in the store but never shown: answers
//! say only whether one is set. Turning SSO on ends every session of the network's
//! users in the same transaction (they sign in again through the identity provider),
//! and keeps [`Network::sso_enabled`](crate::directory::network::Network) in step.

use super::kept::Kept;
use crate::config::Secret;
use crate::directory::device;
use crate::directory::network::{self, Network};
use crate::directory::user::{self, ListQuery, UserKind};
use crate::error::{Error, Problems, Result};
use crate::store::{RawTable, Table, Tx, schema};
use chrono::{DateTime, Utc};
use redb::WriteTransaction;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

const CONFIGS: Table<SsoConfig> = Table::new(schema::SSO_CONFIGS);
const COMPANIES: RawTable = RawTable::new(schema::SSO_COMPANIES);

/// The scopes asked for when none are configured.
pub const DEFAULT_SCOPES: &str = "openid email profile offline_access";
/// The claim that names the user when none is configured.
pub const DEFAULT_USERNAME_CLAIM: &str = "email";
/// The grace periods an administrator may choose, in minutes (0 = none).
pub const GRACE_MINUTES: [u32; 3] = [0, 30, 60];
const COMPANY_ID_MAX: usize = 64;

/// The stored configuration of one network.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SsoConfig {
    pub network_id: String,
    /// What people type to sign in: letters, digits and `_`.
    pub company_id: String,
    /// The OpenID Connect issuer, exactly as its discovery document names itself.
    pub issuer: String,
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<Kept>,
    /// Space-separated; always includes `openid`.
    pub scopes: String,
    /// The claim whose value (lowercased, an e-mail address) is the outpost username.
    pub username_claim: String,
    /// PEM certificate(s) trusted in addition to the system's roots.
    #[serde(default)]
    pub ca_certificate: Option<String>,
    /// Minutes a device stays signed in while the identity provider cannot be reached.
    pub refresh_grace_minutes: u32,
    pub enabled: bool,
    pub updated_at: DateTime<Utc>,
}

impl SsoConfig {
    /// The scopes, one by one.
    pub fn scope_list(&self) -> impl Iterator<Item = &str> {
        self.scopes.split_whitespace()
    }
}

/// `Some(v)` for a field that is present (`null` included), so `Option<Option<T>>`
/// tells "absent" (keep) from `null` (clear).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A configuration as an administrator sends it. Absent optional fields keep their
/// current value (their default for a new configuration); `null` resets them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SsoInput {
    /// Letters, digits and `_`, 1–64 characters; unique across networks (ignoring case).
    #[schema(pattern = "^[A-Za-z0-9_]{1,64}$", example = "Example_Corp")]
    pub company_id: String,
    /// `https://…` (plain `http://` only for a loopback host), exactly as the provider's
    /// discovery document names itself.
    pub issuer: String,
    pub client_id: String,
    /// Absent: keep the current secret; `null`: no secret (a public client).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, format = Password, nullable)]
    pub client_secret: Option<Option<Secret>>,
    /// Space-separated; must include `openid` (default `openid email profile offline_access`).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, nullable)]
    pub scopes: Option<Option<String>>,
    /// The claim naming the user, e.g. `email`, `upn`, `preferred_username` (default `email`).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, nullable)]
    pub username_claim: Option<Option<String>>,
    /// PEM CA certificate(s) of a private issuer.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, nullable)]
    pub ca_certificate: Option<Option<String>>,
    /// 0 (default), 30 or 60.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<u32>, nullable)]
    pub refresh_grace_minutes: Option<Option<u32>>,
    /// Absent: keep (off for a new configuration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// A network's single sign-on as the admin API shows it (never the client secret).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SsoView {
    pub network_id: String,
    /// False until a configuration is saved (the other fields are then empty or defaults).
    pub configured: bool,
    pub enabled: bool,
    pub company_id: Option<String>,
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    /// Whether a client secret is set (it is never shown).
    pub client_secret_set: bool,
    pub scopes: String,
    pub username_claim: String,
    pub ca_certificate: Option<String>,
    pub refresh_grace_minutes: u32,
    /// What to register at the identity provider as the redirect (callback) URI.
    pub redirect_uri: String,
    pub updated_at: Option<DateTime<Utc>>,
}

impl SsoView {
    pub fn of(network_id: &str, c: Option<&SsoConfig>, redirect_uri: String) -> SsoView {
        SsoView {
            network_id: network_id.to_string(),
            configured: c.is_some(),
            enabled: c.is_some_and(|c| c.enabled),
            company_id: c.map(|c| c.company_id.clone()),
            issuer: c.map(|c| c.issuer.clone()),
            client_id: c.map(|c| c.client_id.clone()),
            client_secret_set: c.is_some_and(|c| c.client_secret.is_some()),
            scopes: c.map_or(DEFAULT_SCOPES.into(), |c| c.scopes.clone()),
            username_claim: c.map_or(DEFAULT_USERNAME_CLAIM.into(), |c| c.username_claim.clone()),
            ca_certificate: c.and_then(|c| c.ca_certificate.clone()),
            refresh_grace_minutes: c.map_or(0, |c| c.refresh_grace_minutes),
            redirect_uri,
            updated_at: c.map(|c| c.updated_at),
        }
    }
}

fn company_key(company_id: &str) -> Vec<u8> {
    company_id.to_ascii_lowercase().into_bytes()
}

/// The configuration of `network_id`, if one was saved.
pub fn get<'a>(tx: impl Into<Tx<'a>>, network_id: &str) -> Result<Option<SsoConfig>> {
    CONFIGS.get(tx, network_id.as_bytes())
}

/// The configuration behind a company id (case does not matter), if any.
pub fn by_company<'a>(tx: impl Into<Tx<'a>>, company_id: &str) -> Result<Option<SsoConfig>> {
    let tx = tx.into();
    if !valid_company_id(company_id) {
        return Ok(None);
    }
    match COMPANIES.get(tx, &company_key(company_id))? {
        Some(network_id) => get(tx, &String::from_utf8_lossy(&network_id)),
        None => Ok(None),
    }
}

fn valid_company_id(s: &str) -> bool {
    (1..=COMPANY_ID_MAX).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Whether the URL's host is a loopback name or address (plain-HTTP issuers are allowed
/// there).
pub(crate) fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host_str() {
        Some(h) if h.eq_ignore_ascii_case("localhost") => true,
        Some(h) => h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback()),
        None => false,
    }
}

fn check_issuer(raw: &str) -> std::result::Result<String, String> {
    let s = raw.trim();
    let url = reqwest::Url::parse(s).map_err(|e| format!("{s:?} is not a URL ({e})"))?;
    let ok_scheme = match url.scheme() {
        "https" => true,
        "http" => is_loopback(&url),
        _ => false,
    };
    if !ok_scheme {
        return Err(format!(
            "{s:?} must start with https:// (plain http:// is accepted only for a loopback \
             address, for tests)"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err("must have no query, fragment or user name".into());
    }
    if s.len() > 512 {
        return Err("must be at most 512 characters".into());
    }
    Ok(s.to_string())
}

fn check_text(v: &str, max: usize) -> std::result::Result<String, String> {
    let v = v.trim();
    if v.is_empty() {
        return Err("is required".into());
    }
    if v.len() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if v.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("must not contain spaces or control characters".into());
    }
    Ok(v.to_string())
}

/// RFC 6749 scope tokens: printable ASCII except space, `"` and `\`.
fn check_scopes(raw: &str) -> std::result::Result<String, String> {
    let mut seen: Vec<&str> = Vec::new();
    for s in raw.split_whitespace() {
        if !s
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
        {
            return Err(format!("{s:?} is not a valid scope"));
        }
        if !seen.contains(&s) {
            seen.push(s);
        }
    }
    if !seen.contains(&"openid") {
        return Err("must include openid".into());
    }
    if raw.len() > 1024 {
        return Err("must be at most 1024 characters".into());
    }
    Ok(seen.join(" "))
}

/// The configuration `input` describes for `network_id`, over `old` (fields the input
/// leaves out keep their value there), or every problem with it.
pub fn build(network_id: &str, input: &SsoInput, old: Option<&SsoConfig>) -> Result<SsoConfig> {
    let mut p = Problems::default();
    fn field(p: &mut Problems, name: &str, r: std::result::Result<String, String>) -> String {
        r.unwrap_or_else(|e| {
            p.push(name, e);
            String::new()
        })
    }
    let company_id = field(
        &mut p,
        "company_id",
        if valid_company_id(input.company_id.trim()) {
            Ok(input.company_id.trim().to_string())
        } else {
            Err(format!(
                "{:?} must be 1–{COMPANY_ID_MAX} letters, digits or _",
                input.company_id
            ))
        },
    );
    let issuer = field(&mut p, "issuer", check_issuer(&input.issuer));
    let client_id = field(&mut p, "client_id", check_text(&input.client_id, 255));
    let client_secret = match &input.client_secret {
        None => old.and_then(|o| o.client_secret.clone()),
        Some(None) => None,
        Some(Some(s)) if s.is_empty() || s.expose().len() > 1024 => {
            p.push(
                "client_secret",
                "must be 1–1024 characters (send null for no secret)",
            );
            None
        }
        Some(Some(s)) => Some(Kept::new(s.expose())),
    };
    let keep = |o: Option<&SsoConfig>, f: fn(&SsoConfig) -> String, default: &str| {
        o.map_or(default.to_string(), f)
    };
    let scopes = match &input.scopes {
        None => keep(old, |o| o.scopes.clone(), DEFAULT_SCOPES),
        Some(None) => DEFAULT_SCOPES.into(),
        Some(Some(s)) => field(&mut p, "scopes", check_scopes(s)),
    };
    let username_claim = match &input.username_claim {
        None => keep(old, |o| o.username_claim.clone(), DEFAULT_USERNAME_CLAIM),
        Some(None) => DEFAULT_USERNAME_CLAIM.into(),
        Some(Some(c)) => field(&mut p, "username_claim", check_text(c, 128)),
    };
    let ca_certificate = match &input.ca_certificate {
        None => old.and_then(|o| o.ca_certificate.clone()),
        Some(None) => None,
        Some(Some(pem)) if pem.trim().is_empty() => None,
        Some(Some(pem)) => match super::http::parse_ca(pem.trim()) {
            Ok(_) => Some(pem.trim().to_string()),
            Err(e) => {
                p.push("ca_certificate", e);
                None
            }
        },
    };
    let refresh_grace_minutes = match input.refresh_grace_minutes {
        None => old.map_or(0, |o| o.refresh_grace_minutes),
        Some(None) => 0,
        Some(Some(m)) if GRACE_MINUTES.contains(&m) => m,
        Some(Some(m)) => {
            p.push(
                "refresh_grace_minutes",
                format!("{m} is not one of 0 (none), 30 or 60"),
            );
            0
        }
    };
    p.into_result()?;
    Ok(SsoConfig {
        network_id: network_id.to_string(),
        company_id,
        issuer,
        client_id,
        client_secret,
        scopes,
        username_claim,
        ca_certificate,
        refresh_grace_minutes,
        enabled: input.enabled.unwrap_or(old.is_some_and(|o| o.enabled)),
        updated_at: Utc::now(),
    })
}

/// What saving a configuration did.
#[derive(Debug)]
pub struct Saved {
    pub config: SsoConfig,
    /// Devices signed out because SSO was just turned on.
    pub signed_out_devices: u64,
}

/// Save `network_id`'s configuration. Turning it on ends every session of the
/// network's users (bots keep theirs) in this transaction.
pub fn put(tx: &WriteTransaction, network_id: &str, input: &SsoInput) -> Result<Saved> {
    let net = network::get(tx, network_id)?;
    let old = get(tx, network_id)?;
    let new = build(network_id, input, old.as_ref())?;
    let key = company_key(&new.company_id);
    if let Some(owner) = COMPANIES.get(tx, &key)?
        && owner != network_id.as_bytes()
    {
        return Err(Error::conflict(
            "company_id_taken",
            format!(
                "the company id {:?} is used by another network; choose another one",
                new.company_id
            ),
        ));
    }
    if let Some(o) = &old
        && company_key(&o.company_id) != key
    {
        COMPANIES.delete(tx, &company_key(&o.company_id))?;
    }
    COMPANIES.put(tx, &key, network_id.as_bytes())?;
    CONFIGS.put(tx, network_id.as_bytes(), &new)?;
    let turned_on = new.enabled && !old.as_ref().is_some_and(|o| o.enabled);
    let signed_out_devices = if turned_on {
        end_sessions(tx, &net)?
    } else {
        0
    };
    if net.sso_enabled != new.enabled {
        network::set_sso_enabled(tx, network_id, new.enabled)?;
    }
    Ok(Saved {
        config: new,
        signed_out_devices,
    })
}

/// Sign out every device of every user (not bot) of `net`; returns how many devices.
fn end_sessions(tx: &WriteTransaction, net: &Network) -> Result<u64> {
    let mut q = ListQuery {
        limit: user::PAGE_MAX,
        ..ListQuery::default()
    };
    let mut devices = 0;
    loop {
        let (page, next) = user::list(tx, &net.id, UserKind::User, &q)?;
        for u in &page {
            devices += device::reset_all(tx, u)?.1;
        }
        match next {
            Some(last) => q.after = Some(last.into_bytes()),
            None => return Ok(devices),
        }
    }
}

/// Remove a deleted network's configuration.
pub fn forget_network(tx: &WriteTransaction, network_id: &str) -> Result<()> {
    if let Some(c) = get(tx, network_id)? {
        COMPANIES.delete(tx, &company_key(&c.company_id))?;
        CONFIGS.delete(tx, network_id.as_bytes())?;
    }
    Ok(())
}

/// Check that the company-id index and each network's `sso_enabled` agree with the
/// configurations (for `outpost store check`); returns every mismatch.
pub fn check<'a>(tx: impl Into<Tx<'a>>) -> Result<Vec<String>> {
    let tx = tx.into();
    let mut problems = Vec::new();
    let mut configs = Vec::new();
    CONFIGS.scan_prefix(tx, b"", None, false, |_, c| {
        configs.push(c);
        Ok(std::ops::ControlFlow::Continue(()))
    })?;
    for c in &configs {
        if COMPANIES.get(tx, &company_key(&c.company_id))?.as_deref()
            != Some(c.network_id.as_bytes())
        {
            problems.push(format!(
                "the company id {} of network {} is missing from its index",
                c.company_id, c.network_id
            ));
        }
    }
    for n in network::list(tx)? {
        let on = configs.iter().any(|c| c.network_id == n.id && c.enabled);
        if n.sso_enabled != on {
            problems.push(format!(
                "network {} says single sign-on is {} but its configuration says {}",
                n.id,
                if n.sso_enabled { "on" } else { "off" },
                if on { "on" } else { "off" }
            ));
        }
    }
    let indexed = tx.count_raw(
        schema::SSO_COMPANIES,
        (std::ops::Bound::Unbounded, std::ops::Bound::Unbounded),
    )?;
    if indexed != configs.len() as u64 {
        problems.push(format!(
            "the company-id index has {indexed} entries for {} configurations",
            configs.len()
        ));
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> SsoInput {
        SsoInput {
            company_id: "Example_1".into(),
            issuer: "https://idp.example.org/tenant/v2.0".into(),
            client_id: "outpost".into(),
            ..SsoInput::default()
        }
    }

    #[test]
    fn defaults_and_rules_apply() {
        let c = build("12345678", &input(), None).unwrap();
        assert_eq!(c.scopes, DEFAULT_SCOPES);
        assert_eq!(c.username_claim, "email");
        assert_eq!(c.refresh_grace_minutes, 0);
        assert!(!c.enabled);
        let mut bad = input();
        bad.company_id = "no spaces".into();
        bad.issuer = "http://idp.example.org".into();
        bad.scopes = Some(Some("email profile".into()));
        bad.refresh_grace_minutes = Some(Some(15));
        bad.ca_certificate = Some(Some("not pem".into()));
        let e = build("12345678", &bad, None).unwrap_err();
        let fields: Vec<String> =
            serde_json::from_value::<Vec<serde_json::Value>>(e.details.clone().unwrap())
                .unwrap()
                .into_iter()
                .map(|p| p["field"].as_str().unwrap().to_string())
                .collect();
        assert_eq!(
            fields,
            [
                "company_id",
                "issuer",
                "scopes",
                "ca_certificate",
                "refresh_grace_minutes"
            ]
        );
        let mut loopback = input();
        loopback.issuer = "http://127.0.0.1:9000".into();
        assert!(build("12345678", &loopback, None).is_ok());
    }

    #[test]
    fn saving_keeps_the_index_and_the_network_in_step_and_turning_on_signs_out() {
        use crate::directory::device::{self, DeviceStatus};
        use crate::directory::user::User;
        use crate::store::Store;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb"), &Default::default()).unwrap();
        let (a, _) = store
            .write_now(|tx| network::create(tx, "a", &Default::default(), None))
            .unwrap();
        let (b, _) = store
            .write_now(|tx| network::create(tx, "b", &Default::default(), None))
            .unwrap();
        let mut u = User::new(
            &a.id,
            UserKind::User,
            "p@x.test".into(),
            a.default_group_id.clone(),
        );
        u.registered = true;
        store
            .write_now(|tx| {
                user::put(tx, None, &u)?;
                device::register(tx, &u, "laptop", "linux", "1", DeviceStatus::Active)
            })
            .unwrap();
        let saved = store.write_now(|tx| put(tx, &a.id, &input())).unwrap();
        assert_eq!(saved.signed_out_devices, 0, "saved switched off");
        let mut on = input();
        on.company_id = "example_1".into();
        on.enabled = Some(true);
        let saved = store.write_now(|tx| put(tx, &a.id, &on)).unwrap();
        assert_eq!(saved.signed_out_devices, 1);
        let devices = store.read(|tx| device::list(tx, &u.id)).unwrap();
        assert_eq!(devices[0].status, DeviceStatus::Reset);
        assert!(
            store
                .read(|tx| network::get(tx, &a.id))
                .unwrap()
                .sso_enabled
        );
        let taken = store.write_now(|tx| put(tx, &b.id, &input())).unwrap_err();
        assert_eq!(taken.code, "company_id_taken");
        assert_eq!(
            store
                .read(|tx| by_company(tx, "EXAMPLE_1"))
                .unwrap()
                .unwrap()
                .network_id,
            a.id
        );
        assert!(store.read(|tx| check(tx)).unwrap().is_empty());
        store.write_now(|tx| forget_network(tx, &a.id)).unwrap();
        assert!(
            store
                .read(|tx| by_company(tx, "Example_1"))
                .unwrap()
                .is_none()
        );
        store.close();
    }

    #[test]
    fn absent_fields_keep_and_null_clears() {
        let mut first = input();
        first.client_secret = Some(Some(Secret::new("s")));
        first.username_claim = Some(Some("upn".into()));
        first.enabled = Some(true);
        let old = build("12345678", &first, None).unwrap();
        let kept = build("12345678", &input(), Some(&old)).unwrap();
        assert_eq!(kept.client_secret.as_ref().unwrap().expose(), "s");
        assert_eq!(kept.username_claim, "upn");
        assert!(kept.enabled);
        let mut clear = input();
        clear.client_secret = Some(None);
        clear.username_claim = Some(None);
        let cleared = build("12345678", &clear, Some(&old)).unwrap();
        assert!(cleared.client_secret.is_none());
        assert_eq!(cleared.username_claim, "email");
        let parsed: SsoInput = serde_json::from_str(
            r#"{"company_id":"a","issuer":"https://x.test","client_id":"c","client_secret":null}"#,
        )
        .unwrap();
        assert!(matches!(parsed.client_secret, Some(None)));
        let parsed: SsoInput =
            serde_json::from_str(r#"{"company_id":"a","issuer":"https://x.test","client_id":"c"}"#)
                .unwrap();
        assert!(parsed.client_secret.is_none());
    }
}
