//! A person's sign-in through their identity provider, in three steps:
//!
//! 1. [`start`] (`POST /api/v1/sso/start`): the client names the company and sends the
//!    S256 challenge of a verifier it keeps; outpost makes its own PKCE verifier, nonce
//!    and state, remembers the login (10 minutes) and answers the provider's
//!    authorization URL.
//! 2. [`callback`] (`GET /sso/callback`): the provider sends the person back; outpost
//!    exchanges the code, validates the ID token, reads the username claim (from the
//!    user-info endpoint when the ID token lacks it), finds the user in the network —
//!    activating a pending one, provisioning an unknown one in the default group,
//!    refusing a suspended or locked one — and issues a one-time grant (5 minutes), sent
//!    to the client's loopback listener or shown for the person to paste.
//! 3. [`redeem`] (`POST /api/v1/sso/token`): the client's verifier redeems the grant for
//!    a device and its token, through the same code as a password sign-in, and the
//!    provider's refresh token is kept for [`super::refresh`].

use super::Sso;
use super::config::{self, SsoConfig};
use super::id_token::{self, ExtraClaims, Identity, NonceRule};
use super::kept::Kept;
use super::pending::{self, Grant, Login, Tokens};
use super::provider::{self, Provider};
use super::session::{self, SsoSession};
use crate::auth::device_login::{self, SignedIn};
use crate::auth::password_reset::Delivery;
use crate::directory::link::{self, Purpose};
use crate::directory::network::{self, Network};
use crate::directory::user::{self, User, UserKind, UserStatus};
use crate::directory::validate;
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use openidconnect::core::{CoreAuthenticationFlow, CoreGenderClaim};
use openidconnect::{
    AuthorizationCode, CsrfToken, LoginHint, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, RequestTokenError, Scope, SubjectIdentifier, TokenResponse, UserInfoClaims,
};
use serde::Serialize;
use utoipa::ToSchema;

/// What a client sends to start.
#[derive(Debug, Clone)]
pub struct Start {
    pub company_id: String,
    pub login_hint: Option<String>,
    /// The client's loopback listener (`http://127.0.0.1:PORT/…` or `http://[::1]:PORT/…`).
    pub redirect_uri: Option<String>,
    /// S256 of the verifier the client keeps.
    pub code_challenge: String,
}

/// The answer to a start.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Started {
    /// Open this in a browser.
    pub authorization_url: String,
    /// The sign-in must finish by then.
    pub expires_at: DateTime<Utc>,
}

fn not_configured() -> Error {
    Error::not_found(
        "sso_not_configured",
        "no network signs in with single sign-on under this company id; check the company \
         id your administrator gave you",
    )
}

/// A loopback redirect URI a native client may give (RFC 8252 §7.3).
fn check_client_redirect(raw: &str) -> Result<String> {
    let bad = || {
        Error::invalid(
            "invalid_redirect_uri",
            "redirect_uri must be http://127.0.0.1:PORT/… or http://[::1]:PORT/… (the \
             client's own loopback listener)",
        )
    };
    let url = reqwest::Url::parse(raw).map_err(|_| bad())?;
    let host_ok = matches!(url.host_str(), Some("127.0.0.1" | "[::1]"));
    if url.scheme() != "http"
        || !host_ok
        || url.port().is_none()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || raw.len() > 512
    {
        return Err(bad());
    }
    Ok(url.to_string())
}

/// Step 1: remember the login and answer the provider's authorization URL.
pub async fn start(sso: &Sso, s: Start) -> Result<Started> {
    if !pending::is_s256_challenge(&s.code_challenge) {
        return Err(Error::invalid(
            "invalid_code_challenge",
            "code_challenge must be the S256 challenge of your code verifier: 43 base64url \
             characters (RFC 7636)",
        ));
    }
    let client_redirect = s
        .redirect_uri
        .as_deref()
        .map(check_client_redirect)
        .transpose()?;
    let hint = s
        .login_hint
        .as_deref()
        .map(str::trim)
        .filter(|h| !h.is_empty());
    if let Some(h) = hint
        && (h.len() > 256 || h.chars().any(char::is_control))
    {
        return Err(Error::invalid(
            "invalid_login_hint",
            "login_hint must be at most 256 characters, without control characters",
        ));
    }
    let cfg = sso
        .store
        .read(|tx| config::by_company(tx, s.company_id.trim()))?
        .filter(|c| c.enabled)
        .ok_or_else(not_configured)?;
    let p = provider::discover(&cfg, sso.timeout)
        .await
        .map_err(|e| e.unavailable(&cfg.company_id))?;
    let client = p.client(&cfg, Some(&sso.redirect_uri()))?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut req = client.authorize_url(
        CoreAuthenticationFlow::AuthorizationCode,
        || CsrfToken::new(pending::random_token()),
        || Nonce::new(pending::random_token()),
    );
    for scope in cfg.scope_list().filter(|s| *s != "openid") {
        req = req.add_scope(Scope::new(scope.to_string()));
    }
    if let Some(h) = hint {
        req = req.set_login_hint(LoginHint::new(h.to_string()));
    }
    let (url, state, nonce) = req.set_pkce_challenge(challenge).url();
    let expires_at = Utc::now() + pending::LOGIN_LIFETIME;
    sso.pending.add_login(
        state.secret(),
        Login {
            network_id: cfg.network_id.clone(),
            config_updated_at: cfg.updated_at,
            pkce_verifier: Kept::new(verifier.secret().clone()),
            nonce: nonce.secret().clone(),
            client_challenge: s.code_challenge,
            client_redirect,
            expires_at,
        },
    )?;
    Ok(Started {
        authorization_url: url.to_string(),
        expires_at,
    })
}

/// What the identity provider sent back.
#[derive(Debug, Clone, Default)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// How a sign-in ended well.
pub enum Finished {
    /// Send the browser to the client's loopback listener with the grant.
    Redirect(String),
    /// Show the grant for the person to paste into their client.
    Code {
        code: String,
        expires_at: DateTime<Utc>,
        network: Box<Network>,
        company_id: String,
        username: String,
    },
}

/// Why a sign-in ended at the callback, for the page (or the client's listener).
pub struct Refused {
    pub status: u16,
    /// A sentence for the person.
    pub message: String,
    /// The network, when known (for its classification banner).
    pub network: Option<Network>,
    /// The client's loopback listener, when it gave one: the refusal goes there
    /// (`error=access_denied&error_description=…`) rather than to a page.
    pub client_redirect: Option<String>,
}

impl Refused {
    fn new(status: u16, message: impl Into<String>) -> Refused {
        Refused {
            status,
            message: message.into(),
            network: None,
            client_redirect: None,
        }
    }

    /// Where to send the browser instead of showing a page, if the client listens.
    pub fn redirect(&self) -> Option<String> {
        let base = self.client_redirect.as_ref()?;
        let mut url = reqwest::Url::parse(base).ok()?;
        url.query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair("error_description", &self.message);
        Some(url.to_string())
    }
}

/// Step 2: finish the sign-in at the identity provider and issue the grant.
pub async fn callback(sso: &Sso, c: Callback) -> std::result::Result<Finished, Refused> {
    let state = c
        .state
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            Refused::new(
                400,
                "This page is where your identity provider sends you back after signing in, but \
             nothing says which sign-in this is. Start the sign-in again from your outpost client.",
            )
        })?;
    let login = sso.pending.take_login(state).ok_or_else(|| {
        Refused::new(
            400,
            "This sign-in is unknown or expired: a sign-in must finish within 10 minutes and \
             works once. Start it again from your outpost client.",
        )
    })?;
    let (net, cfg) = sso
        .store
        .read(|tx| {
            Ok((
                network::get(tx, &login.network_id)?,
                config::get(tx, &login.network_id)?,
            ))
        })
        .map_err(|e| Refused::new(e.kind.status(), e.message))?;
    let refuse = |status: u16, message: String| Refused {
        status,
        message,
        network: Some(net.clone()),
        client_redirect: login.client_redirect.clone(),
    };
    let Some(cfg) = cfg.filter(|c| c.enabled && c.updated_at == login.config_updated_at) else {
        return Err(refuse(
            409,
            "Single sign-on of this network was changed or turned off while you were signing \
             in. Start the sign-in again."
                .into(),
        ));
    };
    if let Some(error) = &c.error {
        let what = c
            .error_description
            .as_deref()
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        return Err(refuse(
            403,
            format!("Your identity provider did not sign you in ({error}{what})."),
        ));
    }
    if let Some(iss) = &c.iss
        && iss != &cfg.issuer
    {
        return Err(refuse(
            400,
            format!(
                "The answer comes from another identity provider ({iss}) than this network's \
                 ({}); the sign-in was stopped.",
                cfg.issuer
            ),
        ));
    }
    let Some(code) = c.code.filter(|c| !c.is_empty()) else {
        return Err(refuse(
            400,
            "Your identity provider sent you back without a sign-in code.".into(),
        ));
    };
    let p = provider::discover(&cfg, sso.timeout).await.map_err(|e| {
        refuse(
            503,
            format!("The identity provider cannot be reached: {}.", e.message),
        )
    })?;
    let (identity, tokens) = exchange(sso, &p, &cfg, &login, code)
        .await
        .map_err(|(status, message)| refuse(status, message))?;
    let username = username(&p, &cfg, &identity, &tokens)
        .await
        .map_err(|m| refuse(403, m))?;
    let nid = net.id.clone();
    let name = username.clone();
    let claims = identity.clone();
    let u = sso
        .store
        .write(move |tx| find_or_provision(tx, &nid, &name, &claims))
        .await
        .map_err(|e| refuse(e.kind.status(), e.message))?;
    let expires_at = Utc::now() + pending::GRANT_LIFETIME;
    let code = sso
        .pending
        .add_grant(Grant {
            user_id: u.id.clone(),
            network_id: net.id.clone(),
            client_challenge: login.client_challenge.clone(),
            tokens: Tokens {
                subject: identity.subject.clone(),
                nonce: login.nonce.clone(),
                refresh_token: tokens.refresh_token.clone(),
                id_token_expires_at: identity.expires_at,
                id_token_issued_at: identity.issued_at,
            },
            expires_at,
        })
        .map_err(|e| refuse(e.kind.status(), e.message))?;
    tracing::info!(user = %u.id, network = %net.id, "sso: signed in through the identity provider");
    match &login.client_redirect {
        Some(r) => {
            let mut url = reqwest::Url::parse(r).map_err(|e| refuse(400, e.to_string()))?;
            url.query_pairs_mut().append_pair("code", &code);
            Ok(Finished::Redirect(url.to_string()))
        }
        None => Ok(Finished::Code {
            code,
            expires_at,
            network: Box::new(net),
            company_id: cfg.company_id,
            username,
        }),
    }
}

/// The tokens of a code exchange that outlive it.
struct Exchanged {
    refresh_token: Option<Kept>,
    access_token: openidconnect::AccessToken,
}

/// Exchange `code` (with outpost's PKCE verifier and the client secret, if any) and
/// validate the ID token; errors are (status, sentence).
async fn exchange(
    sso: &Sso,
    p: &Provider,
    cfg: &SsoConfig,
    login: &Login,
    code: String,
) -> std::result::Result<(Identity, Exchanged), (u16, String)> {
    let client = p
        .client(cfg, Some(&sso.redirect_uri()))
        .map_err(|e| (500, e.message))?;
    let res = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| {
            (
                502,
                format!("The identity provider cannot exchange codes: {e}."),
            )
        })?
        .set_pkce_verifier(PkceCodeVerifier::new(
            login.pkce_verifier.expose().to_string(),
        ))
        .request_async(&p.http)
        .await
        .map_err(|e| match e {
            RequestTokenError::ServerResponse(r) => (
                403,
                format!(
                    "Your identity provider did not accept the sign-in ({}{}).",
                    r.error(),
                    r.error_description()
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default()
                ),
            ),
            other => (
                502,
                format!(
                    "The identity provider's token endpoint failed: {}.",
                    describe_token_error(&other)
                ),
            ),
        })?;
    let Some(token) = res.id_token() else {
        return Err((
            502,
            "The identity provider answered without an ID token (is openid among the scopes?)."
                .into(),
        ));
    };
    let identity = id_token::verify(&client, token, NonceRule::Exactly(&login.nonce))
        .map_err(|e| (403, format!("The sign-in was refused because {e}.")))?;
    Ok((
        identity,
        Exchanged {
            refresh_token: res.refresh_token().map(|r| Kept::new(r.secret().clone())),
            access_token: res.access_token().clone(),
        },
    ))
}

/// A token endpoint failure that is not an OAuth error answer, as text.
pub(crate) fn describe_token_error<
    RE: std::error::Error + 'static,
    T: openidconnect::ErrorResponse + 'static,
>(
    e: &RequestTokenError<RE, T>,
) -> String {
    match e {
        RequestTokenError::Request(inner) => {
            format!("the request failed ({})", super::http::root_cause(inner))
        }
        RequestTokenError::Parse(inner, _) => format!("its answer is unreadable ({inner})"),
        other => other.to_string(),
    }
}

/// The outpost username: the configured claim, from the ID token or else the user-info
/// endpoint, lowercased; it must be an e-mail address.
async fn username(
    p: &Provider,
    cfg: &SsoConfig,
    identity: &Identity,
    tokens: &Exchanged,
) -> std::result::Result<String, String> {
    let claim = cfg.username_claim.as_str();
    let value = match identity.claim(claim) {
        Some(v) => v.to_string(),
        None => user_info_claim(p, cfg, identity, tokens, claim)
            .await?
            .ok_or_else(|| {
                format!(
                    "Your identity provider did not say your {claim} (the claim this network \
                     uses as your username). Ask your administrator to add it to the ID token \
                     or to choose another username claim."
                )
            })?,
    };
    validate::email(&value).map_err(|_| {
        format!(
            "Your {claim} at the identity provider is {value:?}, which is not an e-mail address, \
             so it cannot be your outpost username. Ask your administrator to check the \
             network's username claim."
        )
    })
}

/// The claim from the user-info endpoint, when the provider has one.
async fn user_info_claim(
    p: &Provider,
    cfg: &SsoConfig,
    identity: &Identity,
    tokens: &Exchanged,
    claim: &str,
) -> std::result::Result<Option<String>, String> {
    let client = p.client(cfg, None).map_err(|e| e.message)?;
    let Ok(req) = client.user_info(
        tokens.access_token.clone(),
        Some(SubjectIdentifier::new(identity.subject.clone())),
    ) else {
        return Ok(None);
    };
    let info: UserInfoClaims<ExtraClaims, CoreGenderClaim> = req
        .request_async(&p.http)
        .await
        .map_err(|e| format!("The identity provider's user-info endpoint failed ({e})."))?;
    Ok(match serde_json::to_value(&info) {
        Ok(serde_json::Value::Object(m)) => {
            m.get(claim).and_then(|v| v.as_str()).map(str::to_string)
        }
        _ => None,
    })
}

/// The user `username` of network `nid`: an active one as is, a pending one activated,
/// none provisioned in the default group; suspended and locked ones refused.
fn find_or_provision(
    tx: &redb::WriteTransaction,
    nid: &str,
    username: &str,
    id: &Identity,
) -> Result<User> {
    let net = network::get(tx, nid)?;
    if !net.sso_enabled {
        return Err(not_configured());
    }
    let now = Utc::now();
    let name = |claim: &str| {
        id.claim(claim)
            .and_then(|v| validate::name(v, user::NAME_MAX).ok())
            .unwrap_or_default()
    };
    let Some(old) = user::by_name(tx, nid, UserKind::User, username)? else {
        let mut u = User::new(
            nid,
            UserKind::User,
            username.to_string(),
            net.default_group_id,
        );
        u.first_name = name("given_name");
        u.last_name = name("family_name");
        u.registered = true;
        u.registered_at = Some(now);
        user::put(tx, None, &u)?;
        tracing::info!(user = %u.id, network = %nid, "sso: provisioned a new user");
        return Ok(u);
    };
    match old.status() {
        UserStatus::Active => Ok(old),
        UserStatus::Suspended => Err(Error::forbidden(
            "account_suspended",
            format!(
                "Your account {username} in {} is suspended; ask your administrator.",
                net.name
            ),
        )),
        UserStatus::Locked => Err(Error::forbidden(
            "account_locked",
            format!(
                "Your account {username} in {} is locked; it unlocks after 24 hours or when an \
                 administrator unlocks it.",
                net.name
            ),
        )),
        UserStatus::Pending => {
            let mut u = old.clone();
            if u.first_name.is_empty() {
                u.first_name = name("given_name");
            }
            if u.last_name.is_empty() {
                u.last_name = name("family_name");
            }
            u.registered = true;
            u.registered_at = Some(now);
            u.updated_at = now;
            user::put(tx, Some(&old), &u)?;
            link::revoke(tx, Purpose::Invitation, &u.id)?;
            tracing::info!(user = %u.id, network = %nid, "sso: a pending user signed in and is now active");
            Ok(u)
        }
    }
}

/// What a client sends to redeem its grant.
#[derive(Debug, Clone)]
pub struct Redeem {
    pub code: String,
    pub code_verifier: String,
    pub name: String,
    pub platform: String,
    pub client_version: String,
}

fn invalid_grant() -> Error {
    Error::bad_request(
        "invalid_grant",
        "this sign-in code is unknown, used already or expired (codes work once, for 5 \
         minutes), or the code_verifier does not match it; sign in again",
    )
}

/// Step 3: the grant and the client's verifier → a device of the user and its token,
/// registered exactly as a password sign-in registers it (`how` mails an approval code
/// where the security group protects the account).
pub async fn redeem(sso: &Sso, r: Redeem, how: &Delivery<'_>) -> Result<SignedIn> {
    let g = sso.pending.take_grant(&r.code).ok_or_else(invalid_grant)?;
    if !pending::verifier_matches(&r.code_verifier, &g.client_challenge) {
        return Err(invalid_grant());
    }
    let (base_url, domain, mail) = (how.base_url.to_string(), how.domain.to_string(), how.mail);
    sso.store
        .write(move |tx| {
            let net = network::get(tx, &g.network_id)?;
            if !net.sso_enabled {
                return Err(not_configured());
            }
            let old = user::by_id(tx, &g.user_id)?
                .filter(|u| u.network_id == g.network_id)
                .ok_or_else(invalid_grant)?;
            match old.status() {
                UserStatus::Suspended => {
                    return Err(Error::forbidden(
                        "account_suspended",
                        "this account is suspended; ask your administrator",
                    ));
                }
                UserStatus::Locked => {
                    return Err(Error::forbidden(
                        "account_locked",
                        "this account is locked; it unlocks after 24 hours or when an \
                         administrator unlocks it",
                    ));
                }
                UserStatus::Active | UserStatus::Pending => {}
            }
            let how = Delivery {
                base_url: &base_url,
                mail,
                domain: &domain,
            };
            let signed = device_login::register_device(
                tx,
                &old,
                &r.name,
                &r.platform,
                &r.client_version,
                &how,
            )?;
            let (u, d) = (&signed.user, &signed.device);
            let t = &g.tokens;
            match &t.refresh_token {
                Some(rt) => session::put(
                    tx,
                    &SsoSession {
                        device_id: d.id.clone(),
                        user_id: u.id.clone(),
                        network_id: u.network_id.clone(),
                        subject: t.subject.clone(),
                        nonce: t.nonce.clone(),
                        refresh_token: rt.clone(),
                        id_token_expires_at: t.id_token_expires_at,
                        lifetime_secs: (t.id_token_expires_at - t.id_token_issued_at).num_seconds(),
                        next_refresh_at: session::refresh_time(
                            t.id_token_issued_at,
                            t.id_token_expires_at,
                        ),
                        failing_since: None,
                        last_error: None,
                        created_at: Utc::now(),
                        refreshed_at: None,
                    },
                )?,
                None => tracing::warn!(
                    user = %u.id,
                    device = %d.id,
                    "sso: the identity provider gave no refresh token (is offline_access among \
                     the scopes?); this device is not followed after sign-in"
                ),
            }
            Ok(signed)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_listeners_are_redirect_targets() {
        assert!(check_client_redirect("http://127.0.0.1:5123/callback").is_ok());
        assert!(check_client_redirect("http://[::1]:5123/cb").is_ok());
        for bad in [
            "https://127.0.0.1:5123/callback",
            "http://127.0.0.1/callback",
            "http://localhost:5123/callback",
            "http://evil.example:5123/",
            "http://user@127.0.0.1:5123/",
            "http://127.0.0.1:5123/#x",
            "not a url",
        ] {
            assert_eq!(
                check_client_redirect(bad).unwrap_err().code,
                "invalid_redirect_uri",
                "{bad}"
            );
        }
    }

    #[test]
    fn a_refusal_goes_to_the_listening_client() {
        let r = Refused {
            status: 403,
            message: "no & no".into(),
            network: None,
            client_redirect: Some("http://127.0.0.1:5000/cb".into()),
        };
        assert_eq!(
            r.redirect().unwrap(),
            "http://127.0.0.1:5000/cb?error=access_denied&error_description=no+%26+no"
        );
    }
}
