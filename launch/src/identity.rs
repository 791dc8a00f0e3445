//! Which tokens a process accepts and which it sends, from its flags: `--token`, else
//! `--token-file`, else the token file of the data folder when there is one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::bail;
use owlmesh_mesh::auth::{self, Credentials, Identity, TOKEN_FILE_NAME, Token, TokenSet};

use crate::cli::{DEFAULT_DATA_DIR, ServiceTokenOptions, TokenOptions};

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
