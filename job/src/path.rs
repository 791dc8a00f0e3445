//! Field paths such as `handlers[0].fields.price.selector`: how errors name a field, and how
//! a field is found again in the job file to report its line.

use std::fmt;

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Segment {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// A path from the top of the spec to one field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct FieldPath(Vec<Segment>);

impl FieldPath {
    /// A path of one top-level key.
    pub(super) fn root(key: &str) -> Self {
        Self(vec![Segment::Key(key.to_owned())])
    }

    /// This path, one key deeper.
    pub(super) fn key(&self, key: &str) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Key(key.to_owned()));
        Self(segments)
    }

    /// This path, one array element deeper.
    pub(super) fn index(&self, index: usize) -> Self {
        let mut segments = self.0.clone();
        segments.push(Segment::Index(index));
        Self(segments)
    }

    /// Appends a step in place (used while walking a document).
    pub(super) fn push(&mut self, segment: Segment) {
        self.0.push(segment);
    }

    /// Removes the last step (used while walking a document).
    pub(super) fn pop(&mut self) {
        self.0.pop();
    }

    /// The steps, outermost first.
    pub(super) fn segments(&self) -> &[Segment] {
        &self.0
    }

    /// Whether the path has no steps (the whole document).
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (position, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Index(index) => write!(f, "[{index}]")?,
                Segment::Key(key) => {
                    if position > 0 {
                        f.write_str(".")?;
                    }
                    write_key(f, key)?;
                }
            }
        }
        Ok(())
    }
}

/// Writes a key bare when TOML would accept it bare, quoted otherwise.
fn write_key(f: &mut fmt::Formatter<'_>, key: &str) -> fmt::Result {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        f.write_str(key)
    } else {
        write!(f, "{key:?}")
    }
}

/// A problem with one field, before it is placed in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Issue {
    /// Where.
    pub(super) path: FieldPath,
    /// What is wrong and what was expected.
    pub(super) reason: String,
}

impl Issue {
    /// An issue at `path`.
    pub(super) fn new(path: FieldPath, reason: impl Into<String>) -> Self {
        Self {
            path,
            reason: reason.into(),
        }
    }
}
