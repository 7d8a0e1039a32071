//! Validating an ID token and reading its claims by name.
//!
//! `openidconnect`'s verifier does the checks of OpenID Connect Core §3.1.3.7 — the
//! signature with the provider's keys (and only the algorithms it announces), the
//! issuer, the audience (this client, and no other), the expiry — and the nonce rule
//! given here; outpost disables none of them. What it returns holds every claim by name
//! (the standard ones and any other, such as `upn`), so a network's username claim can
//! be any claim the provider puts in the token.

use super::provider::OidcClient;
use openidconnect::core::{
    CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
};
use openidconnect::{AdditionalClaims, ClaimsVerificationError, IdTokenClaims, Nonce};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Every claim the standard ones leave, by name.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExtraClaims {
    #[serde(flatten)]
    pub other: Map<String, Value>,
}
impl AdditionalClaims for ExtraClaims {}

pub type IdToken = openidconnect::IdToken<
    ExtraClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
pub type Claims = IdTokenClaims<ExtraClaims, CoreGenderClaim>;

/// What the `nonce` claim must be.
#[derive(Debug, Clone, Copy)]
pub enum NonceRule<'a> {
    /// A sign-in's token: exactly the nonce of the authorization request.
    Exactly(&'a str),
    /// A refreshed token: absent, or the sign-in's nonce (OpenID Connect Core §12.2).
    AbsentOr(&'a str),
}

/// A verified ID token.
#[derive(Debug, Clone)]
pub struct Identity {
    pub subject: String,
    pub issued_at: chrono::DateTime<chrono::Utc>,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    /// Every claim, by name.
    pub claims: Map<String, Value>,
}

impl Identity {
    /// A claim's value when it is a string.
    pub fn claim(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }
}

fn same(a: &str, b: &str) -> bool {
    // Hashing first makes the comparison independent of where the values differ.
    Sha256::digest(a.as_bytes()) == Sha256::digest(b.as_bytes())
}

/// Why a token was refused, as a sentence for a person.
fn explain(e: &ClaimsVerificationError) -> String {
    use ClaimsVerificationError as E;
    match e {
        E::Expired(d) => format!("the ID token has expired ({d})"),
        E::InvalidAudience(d) => format!("the ID token was issued for another client ({d})"),
        E::InvalidIssuer(d) => format!("the ID token comes from another issuer ({d})"),
        E::InvalidNonce(d) => {
            format!("the ID token does not belong to this sign-in ({d}): it may have been replayed")
        }
        E::SignatureVerification(d) => format!(
            "the ID token's signature does not verify with the identity provider's keys ({d})"
        ),
        other => format!("the ID token is not valid ({other})"),
    }
}

/// Verify `token` for `client` with the nonce `rule`; returns who it names.
pub fn verify(
    client: &OidcClient,
    token: &IdToken,
    rule: NonceRule<'_>,
) -> Result<Identity, String> {
    let verifier = client.id_token_verifier();
    let check = |found: Option<&Nonce>| -> Result<(), String> {
        match (rule, found) {
            (NonceRule::Exactly(want) | NonceRule::AbsentOr(want), Some(n))
                if same(n.secret(), want) =>
            {
                Ok(())
            }
            (NonceRule::AbsentOr(_), None) => Ok(()),
            (_, Some(_)) => Err("nonce mismatch".into()),
            (NonceRule::Exactly(_), None) => Err("missing nonce claim".into()),
        }
    };
    let claims: &Claims = token.claims(&verifier, check).map_err(|e| explain(&e))?;
    let all = match serde_json::to_value(claims) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    Ok(Identity {
        subject: claims.subject().as_str().to_string(),
        issued_at: claims.issue_time(),
        expires_at: claims.expiration(),
        claims: all,
    })
}

#[cfg(test)]
mod tests {
    //! Tokens signed here with test RSA keys (`testdata/rsa-*.pem`, made with `openssl
    //! genrsa -traditional 2048`; they protect nothing) against a key set built here: the
    //! validator under test is outpost's, the provider is a stand-in.
    use super::*;
    use crate::auth::sso::config::{self, SsoInput};
    use crate::auth::sso::provider::{ExtraMetadata, Metadata, Provider};
    use chrono::{Duration, Utc};
    use openidconnect::core::{
        CoreJsonWebKey, CoreResponseType, CoreRsaPrivateSigningKey, CoreSubjectIdentifierType,
    };
    use openidconnect::{
        Audience, AuthUrl, EndUserEmail, IssuerUrl, JsonWebKeyId, JsonWebKeySet, JsonWebKeySetUrl,
        PrivateSigningKey, ResponseTypes, StandardClaims, SubjectIdentifier, TokenUrl,
    };

    const ISSUER: &str = "https://idp.example.test";
    const KEY_A: &str = include_str!("testdata/rsa-a.pem");
    const KEY_B: &str = include_str!("testdata/rsa-b.pem");

    fn key(pem: &str) -> CoreRsaPrivateSigningKey {
        CoreRsaPrivateSigningKey::from_pem(pem, Some(JsonWebKeyId::new("k1".into()))).unwrap()
    }

    /// The client outpost builds for a provider whose keys are key A's.
    fn client() -> OidcClient {
        let jwks: JsonWebKeySet<CoreJsonWebKey> =
            JsonWebKeySet::new(vec![key(KEY_A).as_verification_key()]);
        let metadata = Metadata::new(
            IssuerUrl::new(ISSUER.into()).unwrap(),
            AuthUrl::new(format!("{ISSUER}/auth")).unwrap(),
            JsonWebKeySetUrl::new(format!("{ISSUER}/jwks")).unwrap(),
            vec![ResponseTypes::new(vec![CoreResponseType::Code])],
            vec![CoreSubjectIdentifierType::Public],
            vec![CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256],
            ExtraMetadata::default(),
        )
        .set_token_endpoint(Some(TokenUrl::new(format!("{ISSUER}/token")).unwrap()))
        .set_jwks(jwks);
        let cfg = config::build(
            "12345678",
            &SsoInput {
                company_id: "Example".into(),
                issuer: ISSUER.into(),
                client_id: "outpost".into(),
                ..SsoInput::default()
            },
            None,
        )
        .unwrap();
        Provider {
            metadata,
            http: reqwest::Client::new(),
        }
        .client(&cfg, None)
        .unwrap()
    }

    struct T {
        signer: &'static str,
        audience: &'static str,
        issuer: &'static str,
        expires_in: Duration,
        nonce: Option<&'static str>,
    }

    impl Default for T {
        fn default() -> Self {
            T {
                signer: KEY_A,
                audience: "outpost",
                issuer: ISSUER,
                expires_in: Duration::minutes(5),
                nonce: Some("n-1"),
            }
        }
    }

    fn token(t: T) -> IdToken {
        let now = Utc::now();
        let mut extra = ExtraClaims::default();
        extra
            .other
            .insert("upn".into(), Value::String("Bob@Corp.Example.Test".into()));
        let claims = Claims::new(
            IssuerUrl::new(t.issuer.into()).unwrap(),
            vec![Audience::new(t.audience.into())],
            now + t.expires_in,
            now - Duration::seconds(1),
            StandardClaims::new(SubjectIdentifier::new("bob".into()))
                .set_email(Some(EndUserEmail::new("bob@example.test".into()))),
            extra,
        )
        .set_nonce(t.nonce.map(|n| Nonce::new(n.into())));
        IdToken::new(
            claims,
            &key(t.signer),
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            None,
            None,
        )
        .unwrap()
    }

    #[test]
    fn a_good_token_yields_every_claim_by_name() {
        let id = verify(&client(), &token(T::default()), NonceRule::Exactly("n-1")).unwrap();
        assert_eq!(id.subject, "bob");
        assert_eq!(id.claim("email"), Some("bob@example.test"));
        assert_eq!(id.claim("upn"), Some("Bob@Corp.Example.Test"));
        assert_eq!(id.claim("missing"), None);
        assert!(id.expires_at > Utc::now());
    }

    #[test]
    fn wrong_signature_audience_issuer_expiry_or_nonce_is_refused() {
        let c = client();
        let refused = |t: T, rule| verify(&c, &token(t), rule).unwrap_err();
        let e = refused(
            T {
                signer: KEY_B,
                ..T::default()
            },
            NonceRule::Exactly("n-1"),
        );
        assert!(e.contains("signature"), "{e}");
        let e = refused(
            T {
                audience: "someone-else",
                ..T::default()
            },
            NonceRule::Exactly("n-1"),
        );
        assert!(e.contains("another client"), "{e}");
        let e = refused(
            T {
                issuer: "https://evil.example.test",
                ..T::default()
            },
            NonceRule::Exactly("n-1"),
        );
        assert!(e.contains("another issuer"), "{e}");
        let e = refused(
            T {
                expires_in: Duration::minutes(-1),
                ..T::default()
            },
            NonceRule::Exactly("n-1"),
        );
        assert!(e.contains("expired"), "{e}");
        let e = refused(T::default(), NonceRule::Exactly("n-2"));
        assert!(e.contains("does not belong to this sign-in"), "{e}");
        let e = refused(
            T {
                nonce: None,
                ..T::default()
            },
            NonceRule::Exactly("n-1"),
        );
        assert!(e.contains("missing nonce"), "{e}");
    }

    #[test]
    fn a_refreshed_token_may_leave_the_nonce_out_but_not_change_it() {
        let c = client();
        let no_nonce = token(T {
            nonce: None,
            ..T::default()
        });
        assert!(verify(&c, &no_nonce, NonceRule::AbsentOr("n-1")).is_ok());
        assert!(verify(&c, &token(T::default()), NonceRule::AbsentOr("n-1")).is_ok());
        assert!(verify(&c, &token(T::default()), NonceRule::AbsentOr("n-9")).is_err());
    }
}
