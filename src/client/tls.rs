//! How the client trusts the appliance's certificate: a CA file (the appliance's
//! `tls/ca.pem` or the site CA) or, for testing, no check at all. Builds the rustls
//! configuration of the stream transports and configures reqwest for the REST calls.

use anyhow::{Context, Result, bail};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Which certificates the client accepts from the appliance.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Certificates that chain to the CA certificates of this PEM file.
    CaFile(PathBuf),
    /// Certificates that chain to these PEM-encoded CA certificates.
    CaPem(Vec<u8>),
    /// Any certificate (testing only: anyone on the path can read everything but the
    /// end-to-end-encrypted content, including the device token).
    Insecure,
}

impl Trust {
    /// From the usual options: `--insecure`, else `--ca-cert PATH`.
    pub fn from_options(ca_cert: Option<&Path>, insecure: bool) -> Result<Trust> {
        if insecure {
            return Ok(Trust::Insecure);
        }
        match ca_cert {
            Some(p) => Ok(Trust::CaFile(p.to_path_buf())),
            None => bail!(
                "no CA certificate to check the appliance with: pass --ca-cert with the \
                 appliance's tls/ca.pem (or its site CA), or --insecure for testing"
            ),
        }
    }

    fn pem(&self) -> Result<Option<Vec<u8>>> {
        match self {
            Trust::CaFile(p) => Ok(Some(
                std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?,
            )),
            Trust::CaPem(pem) => Ok(Some(pem.clone())),
            Trust::Insecure => Ok(None),
        }
    }

    fn certificates(&self) -> Result<Option<Vec<CertificateDer<'static>>>> {
        let Some(pem) = self.pem()? else {
            return Ok(None);
        };
        let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut pem.as_slice())
            .collect::<Result<_, _>>()
            .context("the CA file is not a PEM certificate file")?;
        if certs.is_empty() {
            bail!("the CA file holds no certificate");
        }
        Ok(Some(certs))
    }

    /// A rustls client configuration (ring provider, TLS 1.2 and 1.3) with these ALPN names.
    pub fn rustls_config(&self, alpn: &[&[u8]]) -> Result<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("cannot set up TLS")?;
        let mut config = match self.certificates()? {
            Some(certs) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in certs {
                    roots
                        .add(c)
                        .context("the CA file holds a certificate rustls cannot use")?;
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            None => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
                .with_no_client_auth(),
        };
        config.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
        Ok(config)
    }

    /// Apply this trust to a reqwest client builder (rustls with manual roots).
    pub fn reqwest(&self, mut b: reqwest::ClientBuilder) -> Result<reqwest::ClientBuilder> {
        b = b.use_rustls_tls();
        match self.pem()? {
            None => Ok(b.danger_accept_invalid_certs(true)),
            Some(pem) => {
                let certs = reqwest::Certificate::from_pem_bundle(&pem)
                    .context("the CA file is not a PEM certificate file")?;
                if certs.is_empty() {
                    bail!("the CA file holds no certificate");
                }
                for c in certs {
                    b = b.add_root_certificate(c);
                }
                Ok(b)
            }
        }
    }
}

/// The TLS server name of a host taken from a URL (a DNS name or an IP address).
pub fn server_name(host: &str) -> Result<ServerName<'static>> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string())
        .with_context(|| format!("{host} is not a valid server name"))
}

/// Accepts every certificate but still checks the handshake signatures (so the
/// connection is at least bound to the key the server presented).
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_configs() {
        let ca = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let trust = Trust::CaPem(ca.cert.pem().into_bytes());
        let c = trust.rustls_config(&[b"outpost/1"]).unwrap();
        assert_eq!(c.alpn_protocols, vec![b"outpost/1".to_vec()]);
        Trust::Insecure.rustls_config(&[]).unwrap();
        assert!(
            Trust::CaPem(b"nothing".to_vec())
                .rustls_config(&[])
                .is_err()
        );
        assert!(Trust::from_options(None, false).is_err());
        assert!(matches!(
            Trust::from_options(None, true),
            Ok(Trust::Insecure)
        ));
        assert!(server_name("127.0.0.1").is_ok());
        assert!(server_name("[::1]").is_ok());
        assert!(server_name("outpost.example.org").is_ok());
    }
}
