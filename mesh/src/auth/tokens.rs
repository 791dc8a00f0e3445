//! Tokens and token files.
//!
//! A token file holds one token per line, optionally followed by its roles:
//!
//! ```text
//! # owlmesh tokens
//! 3f9c…e1            (every role)
//! 77ab…02 reader     (may only read)
//! ```
//!
//! A server accepts every token of its file; a process sends the first. Blank lines and
//! lines starting with `#` are skipped.

use std::fmt;
use std::io::Write;
use std::path::Path;

use rand::RngCore;
use sha2::{Digest, Sha256};

use super::roles::{Role, Roles};
use crate::{MeshError, Result};

/// The token file `owlmesh up` makes in its data folder, and every command looks for.
pub const TOKEN_FILE_NAME: &str = "token";
/// The shortest token accepted: shorter ones are guessable.
pub const MIN_TOKEN_LENGTH: usize = 16;
/// The longest token accepted, to keep headers small.
pub const MAX_TOKEN_LENGTH: usize = 512;

/// A bearer token. Its `Debug` form does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// A token from text, checked: printable ASCII without spaces, of a sensible length.
    pub fn new(text: &str) -> std::result::Result<Self, String> {
        let text = text.trim();
        if text.len() < MIN_TOKEN_LENGTH {
            return Err(format!(
                "a token must be at least {MIN_TOKEN_LENGTH} characters long"
            ));
        }
        if text.len() > MAX_TOKEN_LENGTH {
            return Err(format!(
                "a token must be at most {MAX_TOKEN_LENGTH} characters long"
            ));
        }
        if !text.bytes().all(|byte| byte.is_ascii_graphic()) {
            return Err("a token may hold only printable ASCII characters, no spaces".into());
        }
        Ok(Self(text.to_owned()))
    }

    /// A fresh random token: 32 bytes from the system's generator, in hex.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
    }

    /// The token as sent.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The token's fingerprint: names it without giving it away.
    pub fn fingerprint(&self) -> TokenFingerprint {
        TokenFingerprint::of(&self.0)
    }

    /// Whether `presented` is this token, in time that does not depend on where they differ.
    fn matches(&self, presented: &[u8]) -> bool {
        let own = self.0.as_bytes();
        let differences = own
            .iter()
            .zip(presented)
            .fold(own.len() ^ presented.len(), |acc, (a, b)| {
                acc | usize::from(a ^ b)
            });
        differences == 0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(…)")
    }
}

/// Bytes of SHA-256 a [`TokenFingerprint`] keeps: 128 bits tell tokens apart as surely as
/// the whole hash would.
const FINGERPRINT_BYTES: usize = 16;
/// Hashed before the token, so that the fingerprint is of no use as any other hash of it.
const FINGERPRINT_CONTEXT: &[u8] = b"owlmesh token fingerprint\n";

/// Which token, without the token: the first 16 bytes of the SHA-256 of
/// `"owlmesh token fingerprint\n"` and the token, shown in hex. The directory publishes the
/// fingerprint of the token each instance registered with, and a dispatcher compares it
/// with the fingerprint of a work session's caller. Not secret; a token chosen by hand from
/// few possibilities could be found from it by trying them, which random tokens (as
/// `owlmesh up` makes) rule out.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenFingerprint([u8; FINGERPRINT_BYTES]);

impl TokenFingerprint {
    /// The fingerprint of a token's text.
    pub fn of(token: &str) -> Self {
        let digest = Sha256::new()
            .chain_update(FINGERPRINT_CONTEXT)
            .chain_update(token.as_bytes())
            .finalize();
        let mut bytes = [0u8; FINGERPRINT_BYTES];
        bytes.copy_from_slice(&digest[..FINGERPRINT_BYTES]);
        Self(bytes)
    }
}

impl fmt::Display for TokenFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl fmt::Debug for TokenFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenFingerprint({self})")
    }
}

/// The tokens a server accepts, each with its roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSet {
    entries: Vec<(Token, Roles)>,
    /// The fingerprint of each entry's token, computed once rather than on every call.
    fingerprints: Vec<TokenFingerprint>,
}

impl TokenSet {
    /// One token with every role, as `--token` gives.
    pub fn single(token: Token) -> Self {
        Self::of(vec![(token, Roles::ALL)])
    }

    fn of(entries: Vec<(Token, Roles)>) -> Self {
        let fingerprints = entries
            .iter()
            .map(|(token, _)| token.fingerprint())
            .collect();
        Self {
            entries,
            fingerprints,
        }
    }

    /// Reads a token file.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|error| {
            MeshError::Credentials(format!("cannot read {}: {error}", path.display()))
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses a token file's text; `origin` names it in errors, as `origin:line: reason`.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let mut entries = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let invalid = |reason: String| {
                MeshError::Credentials(format!("{origin}:{}: {reason}", index + 1))
            };
            let mut words = line.split_whitespace();
            let token = Token::new(words.next().unwrap_or_default()).map_err(invalid)?;
            let roles = match words.next() {
                None => Roles::ALL,
                Some(names) => parse_roles(names).map_err(invalid)?,
            };
            if let Some(extra) = words.next() {
                return Err(invalid(format!(
                    "unexpected {extra:?}: write the token, then its roles comma-separated"
                )));
            }
            entries.push((token, roles));
        }
        if entries.is_empty() {
            return Err(MeshError::Credentials(format!("{origin} holds no token")));
        }
        Ok(Self::of(entries))
    }

    /// The token this process sends: the file's first.
    pub fn own(&self) -> &Token {
        &self.entries[0].0
    }

    /// The roles of `presented`, `None` when it is no token of this set.
    pub fn roles_of(&self, presented: &str) -> Option<Roles> {
        self.find(presented).map(|(_, roles)| roles)
    }

    /// Which token of the set `presented` is (its place among the tokens, from 0), and its
    /// roles. Every token is compared whole, so the time taken does not tell how close a
    /// guess was.
    pub fn find(&self, presented: &str) -> Option<(usize, Roles)> {
        let entries = self.entries.iter().enumerate();
        entries.fold(None, |found, (index, (token, roles))| {
            match token.matches(presented.as_bytes()) {
                true => Some((index, *roles)),
                false => found,
            }
        })
    }

    /// The fingerprint of the token at `index` (as [`TokenSet::find`] numbers them).
    pub fn fingerprint(&self, index: usize) -> Option<TokenFingerprint> {
        self.fingerprints.get(index).copied()
    }
}

fn parse_roles(names: &str) -> std::result::Result<Roles, String> {
    let roles: std::result::Result<Vec<Role>, String> = names
        .split(',')
        .map(|name| {
            Role::parse(name.trim()).ok_or_else(|| {
                format!("unknown role {name:?}: the roles are member, operator and reader")
            })
        })
        .collect();
    Ok(Roles::of(roles?))
}

/// Writes a new token file at `path` holding one fresh token with every role, readable by
/// its owner only (mode 0600). Fails if the file exists.
pub fn create_token_file(path: &Path) -> Result<Token> {
    let token = Token::generate();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let cannot = |error: std::io::Error| {
        MeshError::Credentials(format!("cannot create {}: {error}", path.display()))
    };
    let mut file = options.open(path).map_err(cannot)?;
    let text = format!(
        "# owlmesh tokens: one per line, TOKEN [ROLE,…]; a token without roles has every role\n\
         # (member, operator, reader). Services accept each; a process sends the first.\n{}\n",
        token.expose()
    );
    file.write_all(text.as_bytes()).map_err(cannot)?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn a_fingerprint_names_a_token_without_showing_it() {
        let set = TokenSet::parse(&format!("{A}\n{B} reader\n"), "tokens").expect("valid");
        let (index, _) = set.find(B).expect("B is in the set");
        let fingerprint = set.fingerprint(index).expect("a fingerprint per token");
        assert_eq!(fingerprint, TokenFingerprint::of(B));
        assert_ne!(fingerprint, TokenFingerprint::of(A));
        let shown = fingerprint.to_string();
        assert_eq!(shown.len(), 2 * FINGERPRINT_BYTES);
        assert!(!shown.contains(B) && !format!("{fingerprint:?}").contains(B));
        // Fixed by the token alone, so that every process of a mesh computes the same.
        assert_eq!(
            TokenFingerprint::of("aaaaaaaaaaaaaaaaaaaa").to_string(),
            TokenFingerprint::of(A).to_string()
        );
    }

    #[test]
    fn a_token_file_gives_each_token_its_roles() {
        let text = format!("# comment\n\n{A}\n{B} reader, operator\n");
        let tokens = TokenSet::parse(&text.replace(", ", ","), "tokens").expect("valid");
        assert_eq!(tokens.own().expose(), A);
        assert_eq!(tokens.roles_of(A), Some(Roles::ALL));
        assert_eq!(
            tokens.roles_of(B),
            Some(Roles::of([Role::Reader, Role::Operator]))
        );
        assert_eq!(tokens.roles_of("cccccccccccccccccccc"), None);
        assert_eq!(tokens.roles_of(&A[..19]), None, "a prefix is not the token");
    }

    #[test]
    fn a_bad_line_is_named_with_its_file_and_number() {
        let error = |text: &str| TokenSet::parse(text, "t.txt").expect_err("bad").to_string();
        assert!(error(&format!("{A}\nshort\n")).contains("t.txt:2: a token must be at least 16"));
        assert!(error(&format!("{A} admin")).contains("t.txt:1: unknown role \"admin\""));
        assert!(error(&format!("{A} reader extra")).contains("t.txt:1: unexpected \"extra\""));
        assert!(error("# nothing\n").contains("t.txt holds no token"));
    }

    #[test]
    fn a_created_token_file_is_private_and_reads_back() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join(TOKEN_FILE_NAME);
        let token = create_token_file(&path).expect("created");
        assert_eq!(token.expose().len(), 64);
        assert_eq!(TokenSet::read(&path).expect("read").own(), &token);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(
            create_token_file(&path).is_err(),
            "an existing file is kept"
        );
        assert_ne!(Token::generate(), Token::generate());
        assert_eq!(format!("{token:?}"), "Token(…)");
    }
}
