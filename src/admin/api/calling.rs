//! Admin API: the calling relay (F7) — its state, the rotation of its TURN secret, and
//! the call records of a network.

use super::{NetworkPath, State};
use crate::admin::response::ok;
use crate::calling::calls::{self, CallRecord};
use crate::error::{Error, Result};
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Serialize, ToSchema)]
pub struct CallingStatus {
    /// The calling relay runs (`calling.enabled`).
    pub enabled: bool,
    /// Allocations alive now.
    pub allocations: usize,
    /// STUN/TURN listeners: `udp` and `tcp` (calling.listen), `tls` (calling.tls_listen)
    /// and `https` (TURN over TLS on the HTTPS port by ALPN `stun.turn`).
    pub listeners: Listeners,
    /// The relay range, `first-last`.
    pub relay_ports: String,
    pub realm: String,
    /// Where the TURN REST secret comes from: `config` or `store` (rotatable).
    pub secret_source: String,
    /// While a rotation's overlap lasts: until when (RFC 3339) the previous secret works.
    pub previous_secret_valid_until: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Listeners {
    pub udp: Vec<String>,
    pub tcp: Vec<String>,
    pub tls: Vec<String>,
    pub https: Vec<String>,
}

fn turn(state: &State) -> Result<&std::sync::Arc<crate::calling::Turn>> {
    state.turn.get().ok_or_else(|| {
        Error::conflict(
            "calling_disabled",
            "the calling relay is not running on this appliance (calling.enabled = false)",
        )
    })
}

#[utoipa::path(get, path = "/calling", operation_id = "GetCallingStatus", tag = "calling",
    responses((status = 200, body = CallingStatus)))]
pub async fn status(state: State) -> Result<HttpResponse> {
    let Some(t) = state.turn.get() else {
        return Ok(ok(&CallingStatus {
            enabled: false,
            allocations: 0,
            listeners: Listeners {
                udp: vec![],
                tcp: vec![],
                tls: vec![],
                https: vec![],
            },
            relay_ports: String::new(),
            realm: String::new(),
            secret_source: String::new(),
            previous_secret_valid_until: None,
        }));
    };
    let strings = |v: &[std::net::SocketAddr]| v.iter().map(|a| a.to_string()).collect();
    let secrets = t.secrets.current();
    let now = chrono::Utc::now().timestamp().max(0) as u64;
    Ok(ok(&CallingStatus {
        enabled: true,
        allocations: t.registry.len(),
        listeners: Listeners {
            udp: strings(&t.bound.udp),
            tcp: strings(&t.bound.tcp),
            tls: strings(&t.bound.tls),
            https: strings(&t.bound.https),
        },
        relay_ports: format!("{}-{}", t.config.relay_port_min, t.config.relay_port_max),
        realm: t.realm.clone(),
        secret_source: if t.config.secret.is_empty() {
            "store"
        } else {
            "config"
        }
        .into(),
        previous_secret_valid_until: secrets
            .previous
            .as_ref()
            .filter(|(_, until)| *until >= now)
            .and_then(|(_, until)| chrono::DateTime::from_timestamp(*until as i64, 0)),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SecretRotated {
    /// Until when (RFC 3339) credentials issued with the previous secret keep working
    /// (`calling.credential_ttl_secs` from now).
    pub previous_secret_valid_until: chrono::DateTime<chrono::Utc>,
}

#[utoipa::path(post, path = "/calling/secret/rotate", operation_id = "RotateTurnSecret",
    tag = "calling", responses((status = 200, body = SecretRotated,
        description = "A new TURN REST secret is in force; the previous one stays valid for the overlap. \
            409 `calling_disabled` when the calling relay does not run, `secret_from_config` when \
            calling.secret sets the secret.")))]
pub async fn rotate_secret(state: State) -> Result<HttpResponse> {
    let until = turn(&state)?.secrets.rotate().await?;
    Ok(ok(&SecretRotated {
        previous_secret_valid_until: chrono::DateTime::from_timestamp(until as i64, 0)
            .unwrap_or_default(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallsQuery {
    /// Calls that started at or after this time (RFC 3339, UTC); default: 24 hours ago.
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// Calls that started before this time (RFC 3339, UTC); default: now. A `to` before
    /// `from` selects nothing.
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    /// At most this many (1–1000, default 100), oldest first.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CallList {
    pub items: Vec<CallRecord>,
}

#[utoipa::path(get, path = "/networks/{network_id}/calls", operation_id = "ListCalls",
    tag = "calling", params(NetworkPath, CallsQuery), responses((status = 200, body = CallList,
        description = "Finished calls of the network's users, oldest first.")))]
pub async fn list_calls(
    state: State,
    path: web::Path<NetworkPath>,
    query: web::Query<CallsQuery>,
) -> Result<HttpResponse> {
    let now = chrono::Utc::now();
    let from = query.from.unwrap_or(now - chrono::Duration::hours(24));
    let to = query.to.unwrap_or(now);
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Error::bad_request(
            "invalid_query",
            "limit must be between 1 and 1000",
        ));
    }
    let ms = |t: chrono::DateTime<chrono::Utc>| t.timestamp_millis().max(0) as u64;
    let network = path.into_inner().network_id;
    state
        .store
        .read(|tx| crate::directory::network::get(tx, &network))?;
    let items = calls::list(&state.store, &network, ms(from), ms(to), limit)?;
    Ok(ok(&CallList { items }))
}
