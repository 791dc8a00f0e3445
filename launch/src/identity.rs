//! Which tokens a process accepts and which it sends, from its flags: `--token`, else
//! `--token-file`, else the token file of the data folder when there is one. And its TLS:
//! `--tls-cert`, `--tls-key`, `--tls-ca`, else (for a command) the certificates of the data
//! folder when there are some.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::bail;
use owlmesh_mesh::auth::{self, Credentials, Identity, TOKEN_FILE_NAME, Token, TokenSet};
use owlmesh_mesh::tls::{self, ClientTls, ServerTls, TlsSetting};

use crate::cli::{DEFAULT_DATA_DIR, ServiceTokenOptions, TlsOptions, TlsSide, TokenOptions};

/// The folder of the data folder where `owlmesh up --tls` keeps its certificates.
pub(crate) const TLS_FOLDER: &str = "tls";
/// The private CA's certificate in [`TLS_FOLDER`].
pub(crate) const CA_CERTIFICATE_FILE: &str = "ca.pem";
/// The certificate commands present, in [`TLS_FOLDER`].
pub(crate) const COMMAND_CERTIFICATE_FILE: &str = "client.pem";
/// Its key.
pub(crate) const COMMAND_KEY_FILE: &str = "client.key";

/// Installs a service's identity. A service without a token refuses to start unless it was
/// told `--insecure-no-auth`: an open port is a choice, never an accident.
pub(crate) fn install_for_service(
    options: &ServiceTokenOptions,
    data_dir: &Path,
) -> anyhow::Result<()> {
    let tokens = tokens(&options.tokens, data_dir)?;
    let identity = match (tokens, options.insecure_no_auth) {
        (Some(tokens), insecure) => Identity {
            credentials: Credentials::bearer(tokens.own()),
            trusted: (!insecure).then(|| Arc::new(tokens)),
        },
        (None, true) => Identity::default(),
        (None, false) => bail!(
            "no token: give --token-file FILE or --token TOKEN (`owlmesh up` makes {}), \
             or --insecure-no-auth to accept calls from anyone who can reach the port",
            data_dir.join(TOKEN_FILE_NAME).display()
        ),
    };
    auth::install(identity);
    Ok(())
}

/// Installs a client command's identity: the token it sends, if it has one.
pub(crate) fn install_for_client(options: &TokenOptions) -> anyhow::Result<()> {
    install_sending(tokens(options, Path::new(DEFAULT_DATA_DIR))?.as_ref());
    Ok(())
}

/// Installs an identity that sends the first of `tokens` (nothing without any) and checks
/// none: what a client process is.
pub(crate) fn install_sending(tokens: Option<&TokenSet>) {
    let credentials = match tokens {
        Some(tokens) => Credentials::bearer(tokens.own()),
        None => Credentials::default(),
    };
    auth::install(Identity {
        trusted: None,
        credentials,
    });
}

/// The tokens `options` name, or those of `<data_dir>/token` when it exists.
pub(crate) fn tokens(options: &TokenOptions, data_dir: &Path) -> anyhow::Result<Option<TokenSet>> {
    if let Some(text) = &options.token {
        let token = Token::new(text).map_err(|reason| anyhow::anyhow!("--token: {reason}"))?;
        return Ok(Some(TokenSet::single(token)));
    }
    let path = match &options.token_file {
        Some(path) => path.clone(),
        None => default_token_file(data_dir),
    };
    if options.token_file.is_none() && !path.exists() {
        return Ok(None);
    }
    Ok(Some(TokenSet::read(&path)?))
}

/// The token file of a data folder.
pub(crate) fn default_token_file(data_dir: &Path) -> PathBuf {
    data_dir.join(TOKEN_FILE_NAME)
}

/// Installs a process's TLS: a service serves with `--tls-cert`/`--tls-key` and calls the
/// others with them, trusting `--tls-ca`, which its callers must then be signed by too; a
/// command trusts `--tls-ca` and presents `--tls-cert`/`--tls-key` when given, else uses
/// `./owlmesh-data/tls/` when `owlmesh up --tls` made it. Returns what it installed, for
/// the start-up log.
pub(crate) fn install_tls(options: &TlsOptions, side: TlsSide) -> anyhow::Result<TlsSetting> {
    let setting = match side {
        TlsSide::Service => service_tls(options)?,
        TlsSide::Command if options.is_empty() => {
            discovered_tls(&Path::new(DEFAULT_DATA_DIR).join(TLS_FOLDER))?
        }
        TlsSide::Command => command_tls(options)?,
    };
    tls::install(setting.clone());
    Ok(setting)
}

/// A service's TLS: all three flags, or none (plain HTTP/2).
fn service_tls(options: &TlsOptions) -> anyhow::Result<TlsSetting> {
    let (certificate, key, ca) = match (&options.tls_cert, &options.tls_key, &options.tls_ca) {
        (None, None, None) => return Ok(TlsSetting::default()),
        (Some(certificate), Some(key), Some(ca)) => (certificate, key, ca),
        (Some(_), Some(_), None) => bail!(
            "--tls-ca is needed with --tls-cert: a service also calls the other members, \
             and trusts the certificates that CA signed (its callers must then present one too)"
        ),
        _ => bail!("--tls-cert, --tls-key and --tls-ca go together on a service"),
    };
    Ok(TlsSetting {
        server: Some(ServerTls::from_files(certificate, key, Some(ca))?),
        client: Some(ClientTls::from_files(ca, Some((certificate, key)))?),
    })
}

/// A command's TLS from its flags: a CA, and a certificate with its key or neither.
fn command_tls(options: &TlsOptions) -> anyhow::Result<TlsSetting> {
    let Some(ca) = &options.tls_ca else {
        bail!(
            "--tls-ca is needed with --tls-cert or --tls-key: the CA that signed the servers' certificates"
        );
    };
    let identity = match (&options.tls_cert, &options.tls_key) {
        (Some(certificate), Some(key)) => Some((certificate.as_path(), key.as_path())),
        (None, None) => None,
        _ => bail!("--tls-cert and --tls-key go together"),
    };
    Ok(TlsSetting {
        server: None,
        client: Some(ClientTls::from_files(ca, identity)?),
    })
}

/// The certificates `owlmesh up --tls` made in `folder`, when it did.
fn discovered_tls(folder: &Path) -> anyhow::Result<TlsSetting> {
    let ca = folder.join(CA_CERTIFICATE_FILE);
    if !ca.exists() {
        return Ok(TlsSetting::default());
    }
    let certificate = folder.join(COMMAND_CERTIFICATE_FILE);
    let key = folder.join(COMMAND_KEY_FILE);
    let identity =
        (certificate.exists() && key.exists()).then_some((certificate.as_path(), key.as_path()));
    Ok(TlsSetting {
        server: None,
        client: Some(ClientTls::from_files(&ca, identity)?),
    })
}
