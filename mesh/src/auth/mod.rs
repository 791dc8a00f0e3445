//! Who may call what: bearer tokens with roles (`member`, `operator`, `reader`), checked by
//! one tower layer on every server ([`AuthLayer`], by the table of [`policy`]) and sent by
//! every client ([`MeshChannel`]).
//!
//! A process has one identity: the tokens it accepts and the token it sends, installed once
//! at start with [`install`] (the `owlmesh` binary does it from `--token-file`/`--token`).
//! Until something is installed, servers accept every call and clients send no token, which
//! is what the in-process tests of the libraries run with.

mod credentials;
mod layer;
pub mod policy;
mod roles;
mod tokens;

use std::sync::{Arc, OnceLock};

pub use credentials::{Credentials, MeshChannel};
pub use layer::{AuthLayer, AuthService, Caller, authorize};
pub use roles::{Role, Roles};
pub use tokens::{
    MAX_TOKEN_LENGTH, MIN_TOKEN_LENGTH, TOKEN_FILE_NAME, Token, TokenFingerprint, TokenSet,
    create_token_file,
};

/// This process's identity in the mesh.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// The tokens its servers accept; `None` accepts every call (`--insecure-no-auth`).
    pub trusted: Option<Arc<TokenSet>>,
    /// What its clients send.
    pub credentials: Credentials,
}

static INSTALLED: OnceLock<Identity> = OnceLock::new();

/// Installs this process's identity; returns false (and changes nothing) if one was
/// installed already.
pub fn install(identity: Identity) -> bool {
    INSTALLED.set(identity).is_ok()
}

/// The installed identity, or the open one.
pub fn identity() -> Identity {
    INSTALLED.get().cloned().unwrap_or_default()
}
