//! One network's identity provider as outpost sees it: OpenID Connect discovery (the
//! provider's metadata and its signing keys, fetched with [`super::http`]), the
//! `openidconnect` client built from them, and the connection test an administrator
//! runs before turning SSO on. Every failure is a sentence that says what went wrong:
//! unreachable, a TLS/CA problem, an issuer that names itself differently, no S256
//! PKCE, no signing keys.

use super::config::SsoConfig;
use super::http;
use super::id_token::ExtraClaims;
use crate::error::{Error, Result};
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreClaimName, CoreClaimType, CoreClientAuthMethod,
    CoreErrorResponseType, CoreGenderClaim, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm,
    CoreResponseMode, CoreResponseType, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreSubjectIdentifierType, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalProviderMetadata, AuthType, Client, ClientId, ClientSecret, EmptyExtraTokenFields,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields, JsonWebKeySet, ProviderMetadata,
    RedirectUrl, StandardErrorResponse, StandardTokenResponse,
};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa::ToSchema;

/// Discovery fields outpost reads beyond OpenID Connect Discovery's own (RFC 8414).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExtraMetadata {
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
}
impl AdditionalProviderMetadata for ExtraMetadata {}

pub type Metadata = ProviderMetadata<
    ExtraMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// The token endpoint's answer, with an ID token whose claims outpost can read by name.
pub type TokenResponse = StandardTokenResponse<
    IdTokenFields<
        ExtraClaims,
        EmptyExtraTokenFields,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    >,
    CoreTokenType,
>;

/// The relying-party client of one provider (authorization URL set by discovery; token
/// and user-info URLs when the provider has them).
pub type OidcClient = Client<
    ExtraClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    TokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Why talking to a provider failed.
#[derive(Debug, Clone)]
pub struct ProviderProblem {
    /// A sentence for a person.
    pub message: String,
}

impl ProviderProblem {
    fn new(message: impl Into<String>) -> ProviderProblem {
        ProviderProblem {
            message: message.into(),
        }
    }

    /// As the connection test answers it.
    pub fn test_failed(self) -> Error {
        Error::invalid("sso_connection_failed", self.message)
    }

    /// As a sign-in answers it.
    pub fn unavailable(self, company_id: &str) -> Error {
        Error::unavailable(
            "sso_unavailable",
            format!(
                "the identity provider of {company_id} cannot be used right now: {}",
                self.message
            ),
        )
    }
}

/// A discovered provider: its metadata (with its keys) and the client to reach it.
pub struct Provider {
    pub metadata: Metadata,
    pub http: reqwest::Client,
}

async fn get_json(
    http: &reqwest::Client,
    url: &str,
    what: &str,
) -> std::result::Result<Vec<u8>, ProviderProblem> {
    let res = http
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| ProviderProblem::new(http::describe(&e, url)))?;
    let status = res.status();
    if status.is_redirection() {
        return Err(ProviderProblem::new(format!(
            "{url} answered with a redirect (HTTP {status}); outpost does not follow \
             redirects from an identity provider: check the issuer"
        )));
    }
    if !status.is_success() {
        return Err(ProviderProblem::new(format!(
            "{url} answered HTTP {status} instead of the {what}: check the issuer"
        )));
    }
    let body = res
        .bytes()
        .await
        .map_err(|e| ProviderProblem::new(http::describe(&e, url)))?;
    Ok(body.to_vec())
}

/// Fetch `config`'s provider metadata and signing keys, and check that the provider
/// names itself as the configured issuer.
pub async fn discover(
    config: &SsoConfig,
    timeout: Duration,
) -> std::result::Result<Provider, ProviderProblem> {
    let http = http::client(config.ca_certificate.as_deref(), timeout)
        .map_err(|e| ProviderProblem::new(e.message))?;
    let url = format!(
        "{}/.well-known/openid-configuration",
        config.issuer.trim_end_matches('/')
    );
    let body = get_json(&http, &url, "OpenID Connect discovery document").await?;
    let metadata: Metadata = serde_json::from_slice(&body).map_err(|e| {
        ProviderProblem::new(format!(
            "{url} is not an OpenID Connect discovery document ({e})"
        ))
    })?;
    if metadata.issuer().as_str() != config.issuer {
        return Err(ProviderProblem::new(format!(
            "the provider at {url} calls itself {:?}, not {:?}: set the issuer to exactly \
             what the provider says (a trailing / matters)",
            metadata.issuer().as_str(),
            config.issuer
        )));
    }
    let jwks_url = metadata.jwks_uri().url().to_string();
    let body = get_json(&http, &jwks_url, "signing keys (JWKS)").await?;
    let jwks: JsonWebKeySet<CoreJsonWebKey> = serde_json::from_slice(&body)
        .map_err(|e| ProviderProblem::new(format!("{jwks_url} is not a JSON Web Key Set ({e})")))?;
    if jwks.keys().is_empty() {
        return Err(ProviderProblem::new(format!(
            "{jwks_url} holds no signing key outpost can use"
        )));
    }
    Ok(Provider {
        metadata: metadata.set_jwks(jwks),
        http,
    })
}

impl Provider {
    /// Whether the provider says it supports S256 PKCE: `Some(false)` when it lists
    /// methods without S256, `None` when it does not say.
    pub fn s256(&self) -> Option<bool> {
        self.metadata
            .additional_metadata()
            .code_challenge_methods_supported
            .as_ref()
            .map(|m| m.iter().any(|x| x == "S256"))
    }

    /// The relying-party client for `config`, redirecting to `redirect_uri` when given.
    pub fn client(&self, config: &SsoConfig, redirect_uri: Option<&str>) -> Result<OidcClient> {
        let secret = config
            .client_secret
            .as_ref()
            .map(|s| ClientSecret::new(s.expose().to_string()));
        let methods = self.metadata.token_endpoint_auth_methods_supported();
        let post_only = methods.is_some_and(|m| {
            !m.contains(&CoreClientAuthMethod::ClientSecretBasic)
                && m.contains(&CoreClientAuthMethod::ClientSecretPost)
        });
        let mut c = OidcClient::from_provider_metadata(
            self.metadata.clone(),
            ClientId::new(config.client_id.clone()),
            secret,
        );
        if post_only {
            c = c.set_auth_type(AuthType::RequestBody);
        }
        if let Some(r) = redirect_uri {
            let url = RedirectUrl::new(r.to_string()).map_err(|e| {
                Error::internal(format!("the redirect URI {r:?} is not a URL: {e}"))
            })?;
            c = c.set_redirect_uri(url);
        }
        Ok(c)
    }
}

/// What a successful connection test found.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TestReport {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: Option<String>,
    pub userinfo_endpoint: Option<String>,
    pub jwks_uri: String,
    /// Signing keys found at `jwks_uri`.
    pub signing_keys: usize,
    pub id_token_signing_algs: Vec<String>,
    /// `true` when the provider lists S256 among its PKCE methods; `null` when it does
    /// not list any (outpost uses S256 regardless).
    pub pkce_s256: Option<bool>,
    /// Things worth knowing that do not stop sign-ins.
    pub notes: Vec<String>,
}

/// Test `config`: discovery, issuer, S256 PKCE, a token endpoint, signing keys.
pub async fn test(config: &SsoConfig, timeout: Duration) -> Result<TestReport> {
    let p = discover(config, timeout)
        .await
        .map_err(ProviderProblem::test_failed)?;
    let m = &p.metadata;
    let s256 = p.s256();
    if s256 == Some(false) {
        return Err(ProviderProblem::new(
            "the provider does not offer S256 PKCE (code_challenge_methods_supported lacks \
             S256), which outpost always uses",
        )
        .test_failed());
    }
    let Some(token) = m.token_endpoint() else {
        return Err(ProviderProblem::new(
            "the provider's discovery document names no token endpoint, so authorization \
             codes cannot be exchanged",
        )
        .test_failed());
    };
    let mut notes = Vec::new();
    if s256.is_none() {
        notes.push(
            "the provider does not list its PKCE methods; outpost uses S256 regardless".into(),
        );
    }
    if !config.scope_list().any(|s| s == "offline_access") {
        notes.push(
            "the scopes lack offline_access: without refresh tokens outpost cannot follow \
             the identity provider after sign-in (devices stay signed in until reset)"
                .into(),
        );
    }
    let algs = |v: &[CoreJwsSigningAlgorithm]| {
        v.iter()
            .map(|a| {
                serde_json::to_value(a)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
    };
    Ok(TestReport {
        issuer: m.issuer().as_str().to_string(),
        authorization_endpoint: m.authorization_endpoint().as_str().to_string(),
        token_endpoint: Some(token.as_str().to_string()),
        userinfo_endpoint: m.userinfo_endpoint().map(|u| u.as_str().to_string()),
        jwks_uri: m.jwks_uri().as_str().to_string(),
        signing_keys: m.jwks().keys().len(),
        id_token_signing_algs: algs(m.id_token_signing_alg_values_supported()),
        pkce_s256: s256,
        notes,
    })
}
