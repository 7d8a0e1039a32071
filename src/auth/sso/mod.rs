//! Single sign-on with OpenID Connect (PRODUCT.md F5): outpost is the relying party of
//! each network's identity provider, on behalf of native clients (RFC 8252).
//!
//! A client starts a sign-in with the network's company id and a PKCE challenge of its
//! own; outpost sends the person to the provider with its own PKCE verifier, nonce and
//! state ([`login::start`]), takes the answer at `/sso/callback` (code exchange, ID token
//! validation, the user found, activated or provisioned: [`login::callback`]) and hands
//! the client a one-time grant that its PKCE verifier redeems for a device token, exactly
//! like a password sign-in ([`login::redeem`]). The provider's refresh token then keeps
//! the device signed in only while the provider agrees ([`refresh`]).
//!
//! Parts: [`config`] (what an administrator configures), [`provider`] (discovery, the
//! client, the connection test), [`http`] (the HTTPS client and its trust), [`id_token`]
//! (validation), [`pending`] (sign-ins in flight, in memory), [`session`] (what keeps
//! each SSO device signed in, in the store), [`kept`] (stored secrets).

pub mod config;
pub mod http;
pub mod id_token;
pub mod kept;
pub mod login;
pub mod pending;
pub mod provider;
pub mod refresh;
pub mod session;

use crate::directory::network::{self, Network};
use crate::error::{Error, Result};
use crate::store::{Store, Tx};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The path the identity provider sends people back to.
pub const CALLBACK_PATH: &str = "/sso/callback";

/// The redirect URI to register at every identity provider.
pub fn redirect_uri(public_url: &str) -> String {
    format!("{}{CALLBACK_PATH}", public_url.trim_end_matches('/'))
}

/// What single sign-on needs at run time, shared by the client API, the callback page
/// and the refresher.
pub struct Sso {
    pub store: Store,
    /// The appliance's base URL, known once HTTPS is bound.
    pub public_url: Arc<OnceLock<String>>,
    pub pending: pending::Pending,
    /// How long a call to an identity provider may take.
    pub timeout: Duration,
}

impl Sso {
    pub fn new(store: Store, public_url: Arc<OnceLock<String>>, timeout: Duration) -> Sso {
        Sso {
            store,
            public_url,
            pending: pending::Pending::default(),
            timeout,
        }
    }

    /// This appliance's redirect URI.
    pub fn redirect_uri(&self) -> String {
        redirect_uri(self.public_url.get().map_or("", String::as_str))
    }
}

/// The refusal of a password sign-in, registration link or password reset in a network
/// that signs in through its identity provider.
fn sso_required(company_id: &str) -> Error {
    Error::forbidden(
        "sso_required",
        format!(
            "this network signs in through its identity provider: sign in with single \
             sign-on and the company id {company_id}"
        ),
    )
}

/// Refuse passwords in `net` while its single sign-on is on.
pub fn refuse_passwords<'a>(tx: impl Into<Tx<'a>>, net: &Network) -> Result<()> {
    if !net.sso_enabled {
        return Ok(());
    }
    let company = config::get(tx, &net.id)?.map_or_else(String::new, |c| c.company_id);
    Err(sso_required(&company))
}

/// Refuse passwords in the network `network_id` (if it exists) while its single sign-on
/// is on.
pub fn refuse_passwords_in<'a>(tx: impl Into<Tx<'a>>, network_id: &str) -> Result<()> {
    let tx = tx.into();
    match network::get(tx, network_id) {
        Ok(net) => refuse_passwords(tx, &net),
        Err(_) => Ok(()),
    }
}
