//! The HTTPS client outpost talks to an identity provider with (discovery, keys, token
//! and user-info calls): rustls with the system's root certificates plus the network's
//! own CA certificate (for a private issuer), no redirects followed (a provider that
//! redirects its endpoints could otherwise make the appliance fetch any address), and
//! bounded waits. Also the sentences that say, for a person, why a call failed.

use crate::error::{Error, Result};
use rustls::pki_types::CertificateDer;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The most a `ca_certificate` may hold.
pub const CA_MAX_BYTES: usize = 64 * 1024;

/// The system's trusted roots, read once (Debian: `/etc/ssl/certs`).
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for e in &found.errors {
            tracing::warn!(error = %e, "sso: a system root certificate cannot be read");
        }
        found.certs
    })
}

/// The certificates of a PEM text, or why there are none usable.
pub fn parse_ca(pem: &str) -> std::result::Result<Vec<CertificateDer<'static>>, String> {
    if pem.len() > CA_MAX_BYTES {
        return Err(format!("must be at most {CA_MAX_BYTES} bytes of PEM"));
    }
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| format!("is not PEM text ({e})"))?;
    if certs.is_empty() {
        return Err("holds no certificate (-----BEGIN CERTIFICATE----- … )".into());
    }
    let mut store = rustls::RootCertStore::empty();
    for c in &certs {
        store
            .add(c.clone())
            .map_err(|e| format!("holds a certificate that cannot be used ({e})"))?;
    }
    Ok(certs)
}

/// A client for one network's identity provider: the system roots, plus `ca_pem`.
pub fn client(ca_pem: Option<&str>, timeout: Duration) -> Result<reqwest::Client> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(system_roots().iter().cloned());
    if let Some(pem) = ca_pem {
        let certs = parse_ca(pem)
            .map_err(|e| Error::invalid("invalid_ca_certificate", format!("ca_certificate {e}")))?;
        roots.add_parsable_certificates(certs);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(format!("setting up TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .timeout(timeout)
        .user_agent(concat!("outpost/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::internal(format!("setting up the identity provider client: {e}")))
}

/// The innermost cause of an error, as text.
pub(crate) fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Why a call to `url` failed, as a sentence for a person.
pub fn describe(e: &reqwest::Error, url: &str) -> String {
    let cause = root_cause(e);
    let lower = cause.to_ascii_lowercase();
    if lower.contains("certificate") || lower.contains("unknownissuer") || lower.contains("tls") {
        return format!(
            "the TLS connection to {url} failed: {cause}. If the identity provider's \
             certificate comes from a private CA, set ca_certificate to that CA's certificate \
             (PEM)"
        );
    }
    if e.is_timeout() {
        return format!("{url} did not answer in time");
    }
    if e.is_connect() {
        return format!("cannot connect to {url}: {cause}");
    }
    format!("the request to {url} failed: {cause}")
}
