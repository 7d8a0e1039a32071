//! The TURN REST shared secret: where it comes from, where it is kept, and its rotation.
//!
//! With `calling.secret` set, the configuration's secret is used as is (sites that share
//! it with another TURN server). Otherwise outpost generates a 32-byte secret on first
//! start and keeps it in the store (`meta` key `turn_secrets`). Rotation (admin API, CLI)
//! draws a new one and keeps the previous one valid for `calling.credential_ttl_secs`, so
//! credentials issued just before the rotation keep working until they expire.

use super::credentials::{Secret, Secrets};
use crate::error::{Error, Result};
use crate::relay::now_ms;
use crate::store::{self, Store};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, RwLock};

const META_KEY: &str = "turn_secrets";

/// How the secrets are kept in the store.
#[derive(Serialize, Deserialize)]
struct Stored {
    current: String,
    #[serde(default)]
    previous: Option<String>,
    #[serde(default)]
    previous_until: u64,
    #[serde(default)]
    rotated_at: u64,
}

/// The secrets in force, readable without a lock on the hot path's behalf.
pub struct SecretKeeper {
    current: RwLock<Arc<Secrets>>,
    /// The secret comes from the configuration and cannot be rotated here.
    from_config: bool,
    store: Store,
    overlap_secs: u64,
}

fn decode(s: &str) -> Result<Vec<u8>> {
    STANDARD
        .decode(s)
        .map_err(|e| Error::internal(format!("the stored TURN secret cannot be decoded: {e}")))
}

impl SecretKeeper {
    /// Loads the secrets (creating one on first start unless the configuration has one).
    pub async fn load(
        store: &Store,
        configured: &crate::config::Secret,
        overlap_secs: u64,
    ) -> Result<SecretKeeper> {
        let secrets = if !configured.is_empty() {
            Secrets::new(configured.expose().as_bytes().to_vec())
        } else {
            let stored = store.read(|tx| store::meta_get(tx, META_KEY))?;
            match stored {
                Some(bytes) => Self::parse(&bytes)?,
                None => {
                    let fresh: [u8; 32] = rand::random();
                    let record = Stored {
                        current: STANDARD.encode(fresh),
                        previous: None,
                        previous_until: 0,
                        rotated_at: now_ms() / 1000,
                    };
                    let bytes = serde_json::to_vec(&record).map_err(|e| {
                        Error::internal(format!("cannot encode the TURN secret: {e}"))
                    })?;
                    store
                        .write(move |tx| store::meta_put(tx, META_KEY, &bytes))
                        .await?;
                    Secrets::new(fresh.to_vec())
                }
            }
        };
        Ok(SecretKeeper {
            current: RwLock::new(Arc::new(secrets)),
            from_config: !configured.is_empty(),
            store: store.clone(),
            overlap_secs,
        })
    }

    fn parse(bytes: &[u8]) -> Result<Secrets> {
        let s: Stored = serde_json::from_slice(bytes)
            .map_err(|e| Error::internal(format!("the stored TURN secret cannot be read: {e}")))?;
        let mut secrets = Secrets::new(decode(&s.current)?);
        if let Some(p) = &s.previous {
            secrets.previous = Some((Secret(decode(p)?), s.previous_until));
        }
        Ok(secrets)
    }

    /// The secrets in force now.
    pub fn current(&self) -> Arc<Secrets> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Draws a new secret; the previous one stays valid until the returned time (Unix s).
    pub async fn rotate(&self) -> Result<u64> {
        if self.from_config {
            return Err(Error::conflict(
                "secret_from_config",
                "the TURN secret is set in the configuration (calling.secret); change it there and restart",
            ));
        }
        let fresh: [u8; 32] = rand::random();
        let now = now_ms() / 1000;
        let until = now + self.overlap_secs;
        let old = self.current();
        let record = Stored {
            current: STANDARD.encode(fresh),
            previous: Some(STANDARD.encode(&old.current.0)),
            previous_until: until,
            rotated_at: now,
        };
        let bytes = serde_json::to_vec(&record)
            .map_err(|e| Error::internal(format!("cannot encode the TURN secret: {e}")))?;
        self.store
            .write(move |tx| store::meta_put(tx, META_KEY, &bytes))
            .await?;
        let mut next = (*old).clone();
        next.rotate(fresh.to_vec(), until);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
        Ok(until)
    }
}
