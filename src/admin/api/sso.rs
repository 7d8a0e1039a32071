//! Admin API: a network's single sign-on (PRODUCT.md F5; the reference's GetOidcInfo,
//! RegisterOidcConfig and RegisterOidcConfigTest). The configuration and its rules are
//! in [`crate::auth::sso::config`], the connection test in [`crate::auth::sso::provider`].

use super::{NetworkPath, State};
use crate::admin::guard::Audit;
use crate::admin::response::{JsonBody, ok, read_body};
use crate::auth::sso::config::{self, SsoInput, SsoView};
use crate::auth::sso::provider::{self, TestReport};
use crate::directory::network;
use crate::error::{Error, Result};
use actix_web::{HttpResponse, web};
use serde::Serialize;
use std::time::Duration;
use utoipa::ToSchema;

fn redirect_uri(state: &State) -> String {
    crate::auth::sso::redirect_uri(state.public_url.get().map_or("", String::as_str))
}

#[utoipa::path(get, path = "/networks/{network_id}/sso", operation_id = "GetOidcInfo", tag = "sso",
    params(NetworkPath), responses((status = 200, body = SsoView,
        description = "The network's single sign-on (`configured: false` until one is saved) and \
            the redirect URI to register at the identity provider. The client secret is never shown.")))]
pub async fn get(state: State, path: web::Path<NetworkPath>) -> Result<HttpResponse> {
    let nid = path.into_inner().network_id;
    let c = state.store.read(|tx| {
        network::get(tx, &nid)?;
        config::get(tx, &nid)
    })?;
    Ok(ok(&SsoView::of(&nid, c.as_ref(), redirect_uri(&state))))
}

/// A saved configuration.
#[derive(Debug, Serialize, ToSchema)]
pub struct SsoSaved {
    #[serde(flatten)]
    pub sso: SsoView,
    /// Devices signed out because this change turned single sign-on on.
    pub signed_out_devices: u64,
}

#[utoipa::path(put, path = "/networks/{network_id}/sso", operation_id = "RegisterOidcConfig", tag = "sso",
    params(NetworkPath), request_body = SsoInput,
    responses((status = 200, body = SsoSaved, description = "Saved. Turning single sign-on on \
        signs out every device of the network's users (bots keep theirs) and refuses passwords \
        from then on (`sso_required`). 409 `company_id_taken` when another network uses the company id.")))]
pub async fn put(
    state: State,
    audit: Audit,
    path: web::Path<NetworkPath>,
    body: JsonBody<SsoInput>,
) -> Result<HttpResponse> {
    audit.body(&*body);
    let nid = path.into_inner().network_id;
    let input = body.into_inner();
    let n = nid.clone();
    let saved = audit
        .write(&state.store, 200, move |tx| config::put(tx, &n, &input))
        .await?;
    if saved.signed_out_devices > 0 {
        tracing::info!(network = %nid, devices = saved.signed_out_devices,
            "sso: single sign-on turned on; the network's devices were signed out");
    }
    Ok(ok(&SsoSaved {
        sso: SsoView::of(&nid, Some(&saved.config), redirect_uri(&state)),
        signed_out_devices: saved.signed_out_devices,
    }))
}

#[utoipa::path(post, path = "/networks/{network_id}/sso/test", operation_id = "RegisterOidcConfigTest",
    tag = "sso", params(NetworkPath),
    request_body(content = Option<SsoInput>, description = "A configuration to test (absent fields \
        as the saved one); no body (or `null`) tests the saved configuration. Nothing is saved."),
    responses((status = 200, body = TestReport, description = "The provider was reached: its \
        discovery document names the configured issuer, it offers S256 PKCE and a token endpoint, \
        and its signing keys were fetched. 422 `sso_connection_failed` says what failed.")))]
pub async fn test(
    state: State,
    audit: Audit,
    path: web::Path<NetworkPath>,
    payload: web::Payload,
) -> Result<HttpResponse> {
    let nid = path.into_inner().network_id;
    let bytes = read_body(payload, state.config.http.max_json_bytes).await?;
    let input: Option<SsoInput> = if bytes.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            Error::bad_request("invalid_json", format!("the request body is not JSON: {e}"))
        })?;
        match v {
            serde_json::Value::Null => None,
            serde_json::Value::Object(_) => Some(serde_json::from_value(v).map_err(|e| {
                Error::bad_request(
                    "invalid_json",
                    format!("the request body is not valid for this operation: {e}"),
                )
            })?),
            _ => {
                return Err(Error::bad_request(
                    "invalid_json",
                    "the request body must be a JSON object (or null, or nothing)",
                ));
            }
        }
    };
    if let Some(i) = &input {
        audit.body(i);
    }
    let saved = state.store.read(|tx| {
        network::get(tx, &nid)?;
        config::get(tx, &nid)
    })?;
    let cfg = match (&input, saved) {
        (Some(i), saved) => config::build(&nid, i, saved.as_ref())?,
        (None, Some(saved)) => saved,
        (None, None) => {
            return Err(Error::not_found(
                "sso_not_configured",
                "this network has no single sign-on configuration to test; send one in the body",
            ));
        }
    };
    let timeout = Duration::from_secs(state.config.sso.http_timeout_secs);
    Ok(ok(&provider::test(&cfg, timeout).await?))
}
