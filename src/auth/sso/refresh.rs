//! The refresher: keeps single sign-on devices signed in only while their identity
//! provider agrees (PRODUCT.md F5, the reference's token-refresh grace period).
//!
//! Every `sso.refresh_check_secs` it takes the devices whose ID token is about to expire
//! and redeems their refresh token at the provider:
//! - success: the new tokens are kept (and a refreshed ID token is validated like the
//!   first, same subject, the sign-in's nonce or none) and any failure is forgotten;
//! - the provider refuses (`invalid_grant`: the person was removed, disabled or signed
//!   out there; or any other OAuth error): the device is signed out at once;
//! - the provider cannot be reached: the device stays until the network's
//!   `refresh_grace_minutes` after the first failure (0 = signed out at once), retried at
//!   every check.
//!
//! Signing out resets the device (as an administrator's device reset does: its token
//! stops working and the relay closes its stream), records an `SsoSignOut` audit event
//! and logs the reason; refresh tokens never appear in either. Records of devices that
//! are gone, and of networks whose SSO was turned off (their devices stay signed in as
//! ordinary devices), are dropped.

use super::Sso;
use super::config::{self, SsoConfig};
use super::id_token::{self, NonceRule};
use super::kept::Kept;
use super::login::describe_token_error;
use super::provider::{self, Provider};
use super::session::{self, SsoSession};
use crate::audit::{self, Draft, Outcome};
use crate::directory::device::{self, DeviceStatus};
use crate::directory::user;
use crate::error::Result;
use crate::relay::Relay;
use chrono::{DateTime, Duration, Utc};
use openidconnect::core::CoreErrorResponseType;
use openidconnect::{OAuth2TokenResponse, RefreshToken, RequestTokenError, TokenResponse};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Run until the task is dropped, checking every `every`.
pub async fn run(sso: Arc<Sso>, relay: Arc<Relay>, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = refresh_due(&sso, &relay, every).await {
            tracing::warn!(error = %e, "sso: the token refresh round failed");
        }
    }
}

/// How one refresh went.
enum Refresh {
    Done {
        refresh_token: Option<Kept>,
        issued_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    },
    /// The provider said no: sign out now.
    Refused(String),
    /// The provider could not be asked: the grace period applies.
    Unreachable(String),
}

/// Refresh every device that is due; `every` is the retry interval.
pub async fn refresh_due(sso: &Sso, relay: &Relay, every: std::time::Duration) -> Result<()> {
    let due = sso.store.read(|tx| session::due(tx, Utc::now()))?;
    let mut by_network: BTreeMap<String, Vec<SsoSession>> = BTreeMap::new();
    for s in due {
        by_network.entry(s.network_id.clone()).or_default().push(s);
    }
    for (network_id, sessions) in by_network {
        let cfg = sso
            .store
            .read(|tx| config::get(tx, &network_id))?
            .filter(|c| c.enabled);
        let Some(cfg) = cfg else {
            forget(sso, sessions).await?;
            continue;
        };
        let (live, gone): (Vec<_>, Vec<_>) = sessions
            .into_iter()
            .partition(|s| signed_in(sso, s).unwrap_or(true));
        forget(sso, gone).await?;
        if live.is_empty() {
            continue;
        }
        let provider = provider::discover(&cfg, sso.timeout).await;
        for s in live {
            let outcome = match &provider {
                Ok(p) => refresh_one(p, &cfg, &s).await,
                Err(e) => Refresh::Unreachable(e.message.clone()),
            };
            settle(sso, relay, &cfg, s, outcome, every).await?;
        }
    }
    Ok(())
}

/// Whether the record's device is still signed in (active or waiting for approval, in
/// the account's epoch).
fn signed_in(sso: &Sso, s: &SsoSession) -> Result<bool> {
    sso.store.read(|tx| {
        let Some(u) = user::by_id(tx, &s.user_id)? else {
            return Ok(false);
        };
        Ok(device::get(tx, &s.user_id, &s.device_id)
            .is_ok_and(|d| signed_in_status(d.status) && d.auth_epoch == u.auth_epoch))
    })
}

fn signed_in_status(s: DeviceStatus) -> bool {
    matches!(s, DeviceStatus::Active | DeviceStatus::PendingApproval)
}

/// Drop records no longer followed.
async fn forget(sso: &Sso, sessions: Vec<SsoSession>) -> Result<()> {
    if sessions.is_empty() {
        return Ok(());
    }
    sso.store
        .write(move |tx| {
            for s in &sessions {
                session::delete(tx, &s.device_id)?;
            }
            Ok(())
        })
        .await
}

async fn refresh_one(p: &Provider, cfg: &SsoConfig, s: &SsoSession) -> Refresh {
    let client = match p.client(cfg, None) {
        Ok(c) => c,
        Err(e) => return Refresh::Unreachable(e.message),
    };
    let token = RefreshToken::new(s.refresh_token.expose().to_string());
    let req = match client.exchange_refresh_token(&token) {
        Ok(r) => r,
        Err(e) => return Refresh::Unreachable(format!("the provider cannot refresh tokens ({e})")),
    };
    let res = match req.request_async(&p.http).await {
        Ok(r) => r,
        Err(RequestTokenError::ServerResponse(r)) => {
            let detail = r
                .error_description()
                .map(|d| format!(": {d}"))
                .unwrap_or_default();
            let transient = matches!(r.error(), CoreErrorResponseType::Extension(x)
                if x == "temporarily_unavailable" || x == "server_error");
            let what = format!("{}{detail}", r.error());
            return if transient {
                Refresh::Unreachable(format!("the identity provider is unavailable ({what})"))
            } else {
                Refresh::Refused(format!(
                    "the identity provider refused to refresh the sign-in ({what})"
                ))
            };
        }
        Err(other) => return Refresh::Unreachable(describe_token_error(&other)),
    };
    let now = Utc::now();
    let (issued_at, expires_at) = match res.id_token() {
        Some(t) => match id_token::verify(&client, t, NonceRule::AbsentOr(&s.nonce)) {
            Ok(id) if id.subject == s.subject => (id.issued_at, id.expires_at),
            Ok(id) => {
                return Refresh::Refused(format!(
                    "the refreshed ID token names another person (subject {:?})",
                    id.subject
                ));
            }
            Err(e) => return Refresh::Refused(format!("the refreshed ID token was refused: {e}")),
        },
        None => {
            let life = res
                .expires_in()
                .and_then(|d| Duration::from_std(d).ok())
                .unwrap_or(Duration::seconds(s.lifetime_secs.max(60)));
            (now, now + life)
        }
    };
    Refresh::Done {
        refresh_token: res.refresh_token().map(|r| Kept::new(r.secret().clone())),
        issued_at,
        expires_at,
    }
}

/// Apply the outcome of one refresh.
async fn settle(
    sso: &Sso,
    relay: &Relay,
    cfg: &SsoConfig,
    mut s: SsoSession,
    outcome: Refresh,
    every: std::time::Duration,
) -> Result<()> {
    let now = Utc::now();
    match outcome {
        Refresh::Done {
            refresh_token,
            issued_at,
            expires_at,
        } => {
            if s.failing_since.is_some() {
                tracing::info!(device = %s.device_id, "sso: the identity provider answers again");
            }
            if let Some(t) = refresh_token {
                s.refresh_token = t;
            }
            s.id_token_expires_at = expires_at;
            s.lifetime_secs = (expires_at - issued_at).num_seconds();
            s.next_refresh_at = session::refresh_time(issued_at, expires_at);
            s.failing_since = None;
            s.last_error = None;
            s.refreshed_at = Some(now);
            tracing::debug!(device = %s.device_id, until = %expires_at, "sso: refreshed a sign-in");
            sso.store.write(move |tx| update(tx, &s)).await
        }
        Refresh::Refused(why) => sign_out(sso, relay, s, why).await,
        Refresh::Unreachable(why) => {
            let since = s.failing_since.unwrap_or(now);
            let grace = Duration::minutes(cfg.refresh_grace_minutes.into());
            if now >= since + grace {
                let reason = if grace.is_zero() {
                    format!(
                        "the identity provider cannot be reached ({why}) and the network has no grace period"
                    )
                } else {
                    format!(
                        "the identity provider has not been reachable since {} ({why}) and the \
                         grace period of {} minutes is over",
                        since.format("%Y-%m-%d %H:%M:%S UTC"),
                        cfg.refresh_grace_minutes
                    )
                };
                return sign_out(sso, relay, s, reason).await;
            }
            tracing::warn!(
                device = %s.device_id,
                user = %s.user_id,
                until = %(since + grace).format("%Y-%m-%d %H:%M:%S UTC"),
                error = %why,
                "sso: cannot refresh a sign-in; keeping the device within the grace period"
            );
            s.failing_since = Some(since);
            s.last_error = Some(why);
            s.next_refresh_at = now + Duration::from_std(every).unwrap_or(Duration::seconds(30));
            sso.store.write(move |tx| update(tx, &s)).await
        }
    }
}

/// Write `s` unless its device was signed out meanwhile.
fn update(tx: &redb::WriteTransaction, s: &SsoSession) -> Result<()> {
    if session::get(tx, &s.device_id)?.is_some() {
        session::put(tx, s)?;
    }
    Ok(())
}

/// Sign the device out, record why, and have the relay close its stream.
async fn sign_out(sso: &Sso, relay: &Relay, s: SsoSession, reason: String) -> Result<()> {
    let (uid, did, nid) = (s.user_id.clone(), s.device_id.clone(), s.network_id.clone());
    let why = reason.clone();
    sso.store
        .write(move |tx| {
            session::delete(tx, &did)?;
            let username = user::by_id(tx, &uid)?
                .map(|u| u.username)
                .unwrap_or_default();
            if let Ok(d) = device::get(tx, &uid, &did)
                && signed_in_status(d.status)
            {
                device::reset(tx, d)?;
            }
            audit::append(
                tx,
                &Draft {
                    id: uuid::Uuid::new_v4().to_string(),
                    name: "SsoSignOut".into(),
                    time: Utc::now(),
                    admin: None,
                    source_ip: "outpost".into(),
                    user_agent: String::new(),
                    network_id: Some(nid.clone()),
                    parameters: serde_json::json!({
                        "user_id": uid, "username": username, "device_id": did, "reason": why,
                    }),
                    result: Outcome::success(200),
                    read_only: false,
                },
            )?;
            Ok(())
        })
        .await?;
    relay.account_changed(&s.user_id);
    tracing::warn!(
        user = %s.user_id,
        device = %s.device_id,
        network = %s.network_id,
        reason = %reason,
        "sso: a device was signed out"
    );
    Ok(())
}
