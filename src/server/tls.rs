//! The appliance's TLS identity and the rustls configuration of its listeners.
//!
//! With site certificates configured (`tls.cert_file`, `tls.key_file`) those are used
//! as they are. Otherwise outpost keeps its own small CA in `data_dir/tls` (`ca.pem`,
//! `ca-key.pem`, generated once) and a server certificate signed by it for the
//! configured host names (`cert.pem`, `key.pem`). The server certificate is reused
//! across restarts and issued again only when the host names change or it nears
//! expiry; the CA stays, so clients that trust `ca.pem` keep trusting the appliance.
//! Listeners speak TLS 1.3 and 1.2 only (1.3 preferred).

use crate::config::Config;
use anyhow::{Context, Result, bail};
use chrono::{DateTime, Duration, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const CA_CERT: &str = "ca.pem";
const CA_KEY: &str = "ca-key.pem";
pub const CERT: &str = "cert.pem";
const KEY: &str = "key.pem";
const META: &str = "generated.json";
const LEAF_DAYS: i64 = 397;
const CA_DAYS: i64 = 3650;
const RENEW_BEFORE_DAYS: i64 = 30;

/// What the listeners present, and how it was obtained.
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// `generated` (outpost's own CA) or `site` (configured files).
    pub source: &'static str,
    /// SHA-256 of the trust anchor clients should pin or install (hex).
    pub fingerprint: String,
    /// The file clients should trust (the CA for generated identities).
    pub trust_file: PathBuf,
    /// The trust anchor certificate, PEM (what client profiles carry).
    pub anchor_pem: String,
    pub not_after: Option<DateTime<Utc>>,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    hostnames: Vec<String>,
    not_after: DateTime<Utc>,
}

fn write_private(path: &Path, contents: &str, mode: u32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn ca_params() -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "outpost");
    dn.push(DnType::CommonName, "outpost appliance CA");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p
}

fn load_or_create_ca(dir: &Path) -> Result<(String, KeyPair)> {
    let (cert_path, key_path) = (dir.join(CA_CERT), dir.join(CA_KEY));
    if cert_path.is_file() && key_path.is_file() {
        let cert = std::fs::read_to_string(&cert_path)?;
        let key = KeyPair::from_pem(&std::fs::read_to_string(&key_path)?)
            .with_context(|| format!("{} is not a usable private key", key_path.display()))?;
        return Ok((cert, key));
    }
    let key = KeyPair::generate().context("cannot generate the CA key")?;
    let mut p = ca_params();
    let now = Utc::now();
    p.not_before = to_offset(now - Duration::days(1));
    p.not_after = to_offset(now + Duration::days(CA_DAYS));
    let cert = p
        .self_signed(&key)
        .context("cannot create the CA certificate")?;
    write_private(&key_path, &key.serialize_pem(), 0o600)?;
    write_private(&cert_path, &cert.pem(), 0o644)?;
    tracing::info!(path = %cert_path.display(), "generated a new appliance CA");
    Ok((cert.pem(), key))
}

fn to_offset(t: DateTime<Utc>) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(t.timestamp()).expect("timestamps in range")
}

fn issue_leaf(dir: &Path, hostnames: &[String], ca_key: &KeyPair) -> Result<DateTime<Utc>> {
    let key = KeyPair::generate().context("cannot generate the server key")?;
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "outpost");
    dn.push(DnType::CommonName, hostnames[0].clone());
    p.distinguished_name = dn;
    p.subject_alt_names = hostnames
        .iter()
        .map(|h| match h.parse::<std::net::IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => {
                Ok(SanType::DnsName(h.clone().try_into().with_context(
                    || format!("{h:?} cannot go into a certificate"),
                )?))
            }
        })
        .collect::<Result<_>>()?;
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let now = Utc::now();
    let not_after = now + Duration::days(LEAF_DAYS);
    p.not_before = to_offset(now - Duration::days(1));
    p.not_after = to_offset(not_after);
    let issuer = Issuer::new(ca_params(), ca_key);
    let cert = p
        .signed_by(&key, &issuer)
        .context("cannot sign the server certificate")?;
    write_private(&dir.join(KEY), &key.serialize_pem(), 0o600)?;
    write_private(&dir.join(CERT), &cert.pem(), 0o644)?;
    let meta = Meta {
        hostnames: hostnames.to_vec(),
        not_after,
    };
    write_private(
        &dir.join(META),
        &serde_json::to_string_pretty(&meta)?,
        0o644,
    )?;
    tracing::info!(hostnames = ?hostnames, "issued a server certificate");
    Ok(not_after)
}

/// The names the certificate must cover: configured host names plus listen addresses.
fn names_for(config: &Config) -> Vec<String> {
    let mut names: Vec<String> = config.hostnames.clone();
    for a in &config.http.listen {
        let ip = a.ip();
        if !ip.is_unspecified() && !names.contains(&ip.to_string()) {
            names.push(ip.to_string());
        }
    }
    names
}

fn sha256_of_pem(pem: &str) -> Result<String> {
    let der = rustls_pemfile::certs(&mut pem.as_bytes())
        .next()
        .context("no certificate in PEM")??;
    Ok(hex::encode(Sha256::digest(der.as_ref())))
}

/// Load the configured identity, or reuse/create the generated one.
pub fn identity(config: &Config) -> Result<Identity> {
    if !config.tls.cert_file.as_os_str().is_empty() {
        return site_identity(&config.tls.cert_file, &config.tls.key_file);
    }
    let dir = config.tls_dir();
    crate::store::create_private_dir(&dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let (ca_pem, ca_key) = load_or_create_ca(&dir)?;
    let names = names_for(config);
    let meta: Option<Meta> = std::fs::read_to_string(dir.join(META))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok());
    let reusable = meta.as_ref().is_some_and(|m| {
        m.hostnames == names && m.not_after > Utc::now() + Duration::days(RENEW_BEFORE_DAYS)
    }) && dir.join(CERT).is_file()
        && dir.join(KEY).is_file();
    let not_after = if reusable {
        meta.expect("checked").not_after
    } else {
        issue_leaf(&dir, &names, &ca_key)?
    };
    let mut chain = read_certs(&dir.join(CERT))?;
    chain.extend(rustls_pemfile::certs(&mut ca_pem.as_bytes()).collect::<Result<Vec<_>, _>>()?);
    Ok(Identity {
        chain,
        key: read_key(&dir.join(KEY))?,
        source: "generated",
        fingerprint: sha256_of_pem(&ca_pem)?,
        trust_file: dir.join(CA_CERT),
        anchor_pem: ca_pem.clone(),
        not_after: Some(not_after),
    })
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} is not a PEM certificate file", path.display()))?;
    if certs.is_empty() {
        bail!("{} holds no certificate", path.display());
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let pem = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .with_context(|| format!("{} is not a PEM private key file", path.display()))?
        .with_context(|| format!("{} holds no private key", path.display()))
}

/// A DER certificate as PEM.
fn der_to_pem(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

fn site_identity(cert: &Path, key: &Path) -> Result<Identity> {
    let chain = read_certs(cert)?;
    let anchor = chain.last().expect("non-empty");
    Ok(Identity {
        fingerprint: hex::encode(Sha256::digest(anchor.as_ref())),
        anchor_pem: der_to_pem(anchor.as_ref()),
        key: read_key(key)?,
        chain,
        source: "site",
        trust_file: cert.to_path_buf(),
        not_after: None,
    })
}

/// The certificate the listeners present, replaceable while they run (renewal,
/// SIGHUP after new site certificates were installed).
pub struct LiveCert {
    current: std::sync::RwLock<Arc<CertifiedKey>>,
    not_after: std::sync::RwLock<Option<DateTime<Utc>>>,
}

impl std::fmt::Debug for LiveCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LiveCert")
    }
}

fn certified(id: &Identity) -> Result<Arc<CertifiedKey>> {
    let provider = rustls::crypto::ring::default_provider();
    let key = provider
        .key_provider
        .load_private_key(id.key.clone_key())
        .context("the private key cannot be used")?;
    let ck = CertifiedKey::new(id.chain.clone(), key);
    ck.keys_match()
        .context("the certificate does not match its private key")?;
    Ok(Arc::new(ck))
}

impl LiveCert {
    pub fn new(id: &Identity) -> Result<Arc<LiveCert>> {
        Ok(Arc::new(LiveCert {
            current: std::sync::RwLock::new(certified(id)?),
            not_after: std::sync::RwLock::new(id.not_after),
        }))
    }

    /// Present `id` to new connections from now on.
    pub fn replace(&self, id: &Identity) -> Result<()> {
        let ck = certified(id)?;
        *self.current.write().expect("cert lock") = ck;
        *self.not_after.write().expect("cert lock") = id.not_after;
        Ok(())
    }

    /// True when a generated certificate is within the renewal window.
    pub fn due_for_renewal(&self) -> bool {
        self.not_after
            .read()
            .expect("cert lock")
            .is_some_and(|t| t <= Utc::now() + Duration::days(RENEW_BEFORE_DAYS))
    }
}

impl ResolvesServerCert for LiveCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().expect("cert lock").clone())
    }
}

/// The rustls configuration for HTTPS listeners (TLS 1.3 and 1.2).
pub fn server_config(cert: Arc<LiveCert>) -> Result<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS versions")?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_identity_is_reused_and_reissued_for_new_names() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Config {
            data_dir: dir.path().to_path_buf(),
            ..Default::default()
        };
        let a = identity(&c).unwrap();
        let cert_a = std::fs::read(c.tls_dir().join(CERT)).unwrap();
        let b = identity(&c).unwrap();
        assert_eq!(
            cert_a,
            std::fs::read(c.tls_dir().join(CERT)).unwrap(),
            "reused"
        );
        assert_eq!(a.fingerprint, b.fingerprint);
        c.hostnames.push("outpost.example.test".into());
        let d = identity(&c).unwrap();
        assert_ne!(
            cert_a,
            std::fs::read(c.tls_dir().join(CERT)).unwrap(),
            "reissued"
        );
        assert_eq!(a.fingerprint, d.fingerprint, "the CA stays");
        let live = LiveCert::new(&a).unwrap();
        live.replace(&d).unwrap();
        assert!(!live.due_for_renewal());
        server_config(live).unwrap();
        let key_mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(c.tls_dir().join("ca-key.pem"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(key_mode & 0o777, 0o600);
    }
}
