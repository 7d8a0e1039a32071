//! A device's saved identity: which appliance, which network, user and device, the
//! device token and the private keys. Saved as JSON readable by its owner only (mode
//! 0600) at `--profile PATH`, `OUTPOST_CLIENT_PROFILE`, or
//! `~/.config/outpost/client.json`.

use anyhow::{Context, Result, bail};
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

use super::api::ApiClient;
use super::crypto::DeviceKeys;
use super::tls::Trust;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Everything a device needs to talk to its appliance. Holds secrets: never log it.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct Profile {
    /// The appliance's base URL, `https://host[:port]`.
    pub url: String,
    /// CA certificate file (absolute path) the appliance's certificate must chain to.
    #[serde(default)]
    pub ca_cert: Option<PathBuf>,
    /// Skip the certificate check (testing only).
    #[serde(default)]
    pub insecure: bool,
    /// QUIC `host:port` when it differs from the URL's host and port.
    #[serde(default)]
    pub quic_addr: Option<String>,
    pub network_id: String,
    pub user_id: String,
    pub username: String,
    pub device_id: String,
    pub device_token: String,
    /// base64 of the X25519 private key.
    pub x25519_secret: String,
    /// base64 of the Ed25519 seed (private key).
    pub ed25519_seed: String,
    /// The consent version this device last acknowledged.
    #[serde(default)]
    pub consent_version: Option<u64>,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("url", &self.url)
            .field("network_id", &self.network_id)
            .field("user_id", &self.user_id)
            .field("username", &self.username)
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

impl Profile {
    /// Where the profile lives unless `--profile` says otherwise:
    /// `OUTPOST_CLIENT_PROFILE`, else `$XDG_CONFIG_HOME/outpost/client.json`, else
    /// `$HOME/.config/outpost/client.json`.
    pub fn default_path() -> Option<PathBuf> {
        if let Some(p) = std::env::var_os("OUTPOST_CLIENT_PROFILE").filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(p));
        }
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
        Some(base.join("outpost").join("client.json"))
    }

    /// Build a profile for a newly registered device.
    pub fn keys_to_strings(keys: &DeviceKeys) -> (String, String) {
        (
            B64.encode(keys.x25519_secret()),
            B64.encode(keys.ed25519_seed()),
        )
    }

    pub fn load(path: &Path) -> Result<Profile> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read the client profile {} (run `outpost client login` first)",
                path.display()
            )
        })?;
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(meta) = std::fs::metadata(path)
                && meta.permissions().mode() & 0o077 != 0
            {
                tracing::warn!(
                    "{} is readable by others; it holds the device's keys (chmod 600 it)",
                    path.display()
                );
            }
        }
        let p: Profile = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a client profile", path.display()))?;
        p.keys()
            .with_context(|| format!("{} holds unusable keys", path.display()))?;
        Ok(p)
    }

    /// Write the profile atomically with mode 0600 (its folder is created 0700).
    pub fn save(&self, path: &Path) -> Result<()> {
        use std::io::Write;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let name = path
            .file_name()
            .with_context(|| format!("{} is not a file path", path.display()))?;
        let tmp = dir.join(format!(
            ".{}.tmp{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let _ = std::fs::remove_file(&tmp);
        let write = || -> Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .with_context(|| format!("cannot write {}", tmp.display()))?;
            f.write_all(serde_json::to_string_pretty(self)?.as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
        };
        let r = write();
        if r.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        r
    }

    /// The device's key pairs.
    pub fn keys(&self) -> Result<DeviceKeys> {
        let x = B64
            .decode(&self.x25519_secret)
            .context("the X25519 private key is not base64")?;
        let e = B64
            .decode(&self.ed25519_seed)
            .context("the Ed25519 seed is not base64")?;
        let (Ok(x), Ok(e)) = (<[u8; 32]>::try_from(x), <[u8; 32]>::try_from(e)) else {
            bail!("a private key is not 32 bytes");
        };
        Ok(DeviceKeys::from_secrets(x, e))
    }

    pub fn trust(&self) -> Result<Trust> {
        Trust::from_options(self.ca_cert.as_deref(), self.insecure)
    }

    /// A REST client with this device's token.
    pub fn api(&self) -> Result<ApiClient> {
        Ok(ApiClient::new(&self.url, &self.trust()?)?.with_token(self.device_token.clone()))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> Profile {
        let keys = DeviceKeys::generate(&mut rand::rng());
        let (x, e) = Profile::keys_to_strings(&keys);
        Profile {
            url: "https://127.0.0.1:8443".into(),
            ca_cert: Some("/tmp/ca.pem".into()),
            insecure: false,
            quic_addr: None,
            network_id: "12345678".into(),
            user_id: "u1".into(),
            username: "alice@example.org".into(),
            device_id: "d1".into(),
            device_token: "od_secret".into(),
            x25519_secret: x,
            ed25519_seed: e,
            consent_version: Some(2),
        }
    }

    #[test]
    fn save_and_load_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("client.json");
        let p = sample();
        p.save(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dmode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dmode & 0o777, 0o700);
        assert_eq!(Profile::load(&path).unwrap(), p);
        assert_eq!(
            p.keys().unwrap().x25519_public(),
            Profile::load(&path)
                .unwrap()
                .keys()
                .unwrap()
                .x25519_public()
        );
        // Overwriting a file someone made world-readable leaves it owner-only.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        p.save(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1);
        // Secrets stay out of Debug.
        let dbg = format!("{p:?}");
        assert!(!dbg.contains("od_secret") && !dbg.contains(&p.x25519_secret));
    }

    #[test]
    fn refuses_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.json");
        assert!(Profile::load(&path).is_err());
        std::fs::write(&path, "{}").unwrap();
        assert!(Profile::load(&path).is_err());
        let mut p = sample();
        p.x25519_secret = B64.encode([1u8; 31]);
        std::fs::write(&path, serde_json::to_string(&p).unwrap()).unwrap();
        assert!(Profile::load(&path).is_err());
    }
}
