//! TLS on every gRPC server and client, with rustls and its `ring` provider.
//!
//! A process has one TLS setting, installed once at start with [`install`] (the `owlmesh`
//! binary does it from `--tls-cert`, `--tls-key` and `--tls-ca`), as it installs its
//! identity ([`crate::auth`]): [`crate::grpc::GrpcServer`] serves with its server half and
//! every channel ([`crate::client::connect`], [`crate::client::connect_lazy`]) dials with its
//! client half. Until one is installed, servers and clients speak plain HTTP/2, which is
//! what the in-process tests of the libraries run with.
//!
//! A server given a client CA requires every caller to present a certificate signed by it
//! (mutual TLS); the bearer token is still checked on top, so a certificate says a caller
//! may connect and its token says what it may do. [`CertificateAuthority`] makes the private
//! CA and certificates of `owlmesh up --tls`.

mod authority;
mod pem;
#[cfg(test)]
mod tests;

use std::sync::{Arc, OnceLock};
use std::time::Duration;
use std::{fmt, path::Path};

use rustls::server::ResolvesServerCert;
use tonic::transport::{ClientTlsConfig, ServerTlsConfig};

pub use authority::{CertificateAuthority, IssuedCertificate};

/// How long a server waits for a connection's TLS handshake: a peer that opens a socket
/// and says nothing is dropped after this, instead of holding a handshake task.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A PEM file (or text) that cannot be used: `origin` is the file, `reason` what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {reason}")]
pub struct TlsError {
    origin: String,
    reason: String,
}

impl TlsError {
    fn new(origin: impl fmt::Display, reason: impl fmt::Display) -> Self {
        Self {
            origin: origin.to_string(),
            reason: reason.to_string(),
        }
    }
}

/// A server's side of TLS: its certificate and key, and the CA whose certificates its
/// callers must present, when it requires them.
#[derive(Clone)]
pub struct ServerTls {
    config: ServerTlsConfig,
    requires_client_certificate: bool,
    /// The same certificate for HTTPS beside gRPC.
    https: Arc<rustls::ServerConfig>,
}

impl ServerTls {
    /// Serves with the certificate chain and key of these PEM files; with `client_ca`,
    /// every caller must present a certificate signed by that CA.
    pub fn from_files(
        certificate: &Path,
        key: &Path,
        client_ca: Option<&Path>,
    ) -> Result<Self, TlsError> {
        let identity = pem::identity(&pem::read(certificate)?, &pem::read(key)?)?;
        let client_ca = client_ca.map(pem::read).transpose()?;
        Self::checked(identity, client_ca)
    }

    /// [`ServerTls::from_files`] from PEM text, e.g. freshly issued.
    pub fn from_pem(
        certificate: &str,
        key: &str,
        client_ca: Option<&str>,
    ) -> Result<Self, TlsError> {
        let identity = pem::identity(
            &pem::Pem::text("certificate", certificate),
            &pem::Pem::text("key", key),
        )?;
        let client_ca = client_ca.map(|ca| pem::Pem::text("client CA", ca));
        Self::checked(identity, client_ca)
    }

    fn checked(
        keyed: pem::KeyedCertificate,
        client_ca: Option<pem::Pem>,
    ) -> Result<Self, TlsError> {
        let mut config = ServerTlsConfig::new()
            .identity(keyed.identity)
            .timeout(TLS_HANDSHAKE_TIMEOUT);
        if let Some(client_ca) = &client_ca {
            config = config.client_ca_root(pem::authority(client_ca)?);
        }
        let resolver: Arc<dyn ResolvesServerCert> =
            Arc::new(rustls::sign::SingleCertAndKey::from(keyed.certified));
        let mut https = rustls::ServerConfig::builder_with_provider(
            rustls::crypto::ring::default_provider().into(),
        )
        .with_safe_default_protocol_versions()
        .map_err(|error| TlsError::new("https", error))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
        https.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            config,
            requires_client_certificate: client_ca.is_some(),
            https: Arc::new(https),
        })
    }

    /// A rustls configuration with the same certificate for an HTTP/1.1 server beside the
    /// gRPC one (the dashboard's page). It asks for no client certificate: a browser has
    /// none, and the page asks for a reader's token anyway.
    pub fn https_config(&self) -> Arc<rustls::ServerConfig> {
        self.https.clone()
    }

    /// Whether callers must present a certificate (mutual TLS).
    pub fn requires_client_certificate(&self) -> bool {
        self.requires_client_certificate
    }

    /// tonic's configuration, for [`crate::grpc::GrpcServer`].
    pub(crate) fn config(&self) -> ServerTlsConfig {
        self.config.clone()
    }
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field(
                "requires_client_certificate",
                &self.requires_client_certificate,
            )
            .finish_non_exhaustive()
    }
}

/// A client's side of TLS: the CA that signed the servers' certificates, and the client's
/// own certificate and key for servers that require one.
#[derive(Clone)]
pub struct ClientTls {
    config: ClientTlsConfig,
    presents_certificate: bool,
}

impl ClientTls {
    /// Trusts servers whose certificates `ca` signed; presents the certificate and key of
    /// `identity` (PEM files) when given.
    pub fn from_files(ca: &Path, identity: Option<(&Path, &Path)>) -> Result<Self, TlsError> {
        let ca = pem::read(ca)?;
        let identity = match identity {
            Some((certificate, key)) => {
                Some(pem::identity(&pem::read(certificate)?, &pem::read(key)?)?.identity)
            }
            None => None,
        };
        Self::checked(&ca, identity)
    }

    /// [`ClientTls::from_files`] from PEM text.
    pub fn from_pem(ca: &str, identity: Option<(&str, &str)>) -> Result<Self, TlsError> {
        let identity = match identity {
            Some((certificate, key)) => Some(
                pem::identity(
                    &pem::Pem::text("certificate", certificate),
                    &pem::Pem::text("key", key),
                )?
                .identity,
            ),
            None => None,
        };
        Self::checked(&pem::Pem::text("CA", ca), identity)
    }

    fn checked(
        ca: &pem::Pem,
        identity: Option<tonic::transport::Identity>,
    ) -> Result<Self, TlsError> {
        let mut config = ClientTlsConfig::new()
            .ca_certificate(pem::authority(ca)?)
            .assume_http2(true);
        let presents_certificate = identity.is_some();
        if let Some(identity) = identity {
            config = config.identity(identity);
        }
        Ok(Self {
            config,
            presents_certificate,
        })
    }

    /// Whether it presents a certificate of its own.
    pub fn presents_certificate(&self) -> bool {
        self.presents_certificate
    }

    /// tonic's configuration, for the channels of [`crate::client`].
    pub(crate) fn config(&self) -> ClientTlsConfig {
        self.config.clone()
    }
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("presents_certificate", &self.presents_certificate)
            .finish_non_exhaustive()
    }
}

/// This process's TLS: what its servers serve with and what its clients dial with. `None`
/// halves speak plain HTTP/2.
#[derive(Debug, Clone, Default)]
pub struct TlsSetting {
    /// Its servers' certificate, and the CA callers must be signed by.
    pub server: Option<ServerTls>,
    /// The CA its clients trust, and the certificate they present.
    pub client: Option<ClientTls>,
}

static INSTALLED: OnceLock<TlsSetting> = OnceLock::new();

/// Installs this process's TLS setting; returns false (and changes nothing) if one was
/// installed already. Makes `ring` the process's rustls provider, so that no other is
/// ever picked.
pub fn install(setting: TlsSetting) -> bool {
    // Fails only when a provider is installed already, which is then the one in use.
    let _ = rustls::crypto::ring::default_provider().install_default();
    INSTALLED.set(setting).is_ok()
}

/// The installed setting, or plain HTTP/2 both ways.
pub fn setting() -> TlsSetting {
    INSTALLED.get().cloned().unwrap_or_default()
}
