//! Reading and checking PEM certificates and keys before they reach tonic, so that a bad
//! file stops the process at start with its name and what is wrong with it, instead of
//! failing every handshake later with a reason that names nothing.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::ring::default_provider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use tonic::transport::{Certificate, Identity};

use super::TlsError;

/// PEM text and where it came from (a file's path, or what the text is).
pub(super) struct Pem {
    origin: String,
    text: Vec<u8>,
}

impl Pem {
    /// Text that did not come from a file; `what` names it in errors.
    pub(super) fn text(what: &str, text: &str) -> Self {
        Self {
            origin: what.to_owned(),
            text: text.as_bytes().to_vec(),
        }
    }

    fn error(&self, reason: impl std::fmt::Display) -> TlsError {
        TlsError::new(&self.origin, reason)
    }

    /// Every certificate in it; at least one.
    fn certificates(&self) -> Result<Vec<CertificateDer<'static>>, TlsError> {
        let certificates = CertificateDer::pem_slice_iter(&self.text)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| self.error(format!("not a PEM certificate file: {error}")))?;
        if certificates.is_empty() {
            return Err(self.error("holds no PEM certificate (-----BEGIN CERTIFICATE-----)"));
        }
        Ok(certificates)
    }

    /// Its private key.
    fn private_key(&self) -> Result<PrivateKeyDer<'static>, TlsError> {
        PrivateKeyDer::from_pem_slice(&self.text).map_err(|error| {
            self.error(format!(
                "holds no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {error}"
            ))
        })
    }
}

/// Reads a PEM file; the error names it.
pub(super) fn read(path: &Path) -> Result<Pem, TlsError> {
    let origin = path.display().to_string();
    let text = std::fs::read(path)
        .map_err(|error| TlsError::new(&origin, format!("cannot read: {error}")))?;
    Ok(Pem { origin, text })
}

/// A certificate chain and its key, checked to belong together.
pub(super) struct KeyedCertificate {
    /// For tonic.
    pub(super) identity: Identity,
    /// For a rustls server of another protocol (the dashboard's HTTPS).
    pub(super) certified: Arc<CertifiedKey>,
}

/// Checks that `key` is the key of `certificate`'s first certificate.
pub(super) fn identity(certificate: &Pem, key: &Pem) -> Result<KeyedCertificate, TlsError> {
    let chain = certificate.certificates()?;
    let private_key = key.private_key()?;
    let certified =
        CertifiedKey::from_der(chain, private_key, &default_provider()).map_err(|error| {
            key.error(format!(
                "is not the key of the certificate in {}: {error}",
                certificate.origin
            ))
        })?;
    Ok(KeyedCertificate {
        identity: Identity::from_pem(&certificate.text, &key.text),
        certified: Arc::new(certified),
    })
}

/// A CA's certificates, checked to be usable as trust anchors.
pub(super) fn authority(ca: &Pem) -> Result<Certificate, TlsError> {
    let mut roots = RootCertStore::empty();
    for certificate in ca.certificates()? {
        roots
            .add(certificate)
            .map_err(|error| ca.error(format!("not a usable CA certificate: {error}")))?;
    }
    Ok(Certificate::from_pem(&ca.text))
}
