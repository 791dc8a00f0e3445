//! Checks of directory requests, with errors that name the field and the reason.

use owlmesh_proto::v1::Instance;

use owlmesh_mesh::is_host_port;

use crate::{DirectoryError, Result};

/// Accepts a registration's instance, or says which field is wrong.
pub(crate) fn validate_instance(instance: Option<Instance>) -> Result<Instance> {
    let instance = instance.ok_or(DirectoryError::InvalidArgument {
        field: "instance",
        reason: "is required".into(),
    })?;
    if instance.kind.is_empty() {
        return Err(invalid("instance.kind", "must not be empty"));
    }
    if !is_name(&instance.kind) {
        return Err(invalid(
            "instance.kind",
            format!(
                "expected lowercase letters, digits, '-' or '_', got {:?}",
                instance.kind
            ),
        ));
    }
    if instance.id.is_empty() {
        return Err(invalid("instance.id", "must not be empty"));
    }
    if !is_host_port(&instance.address) {
        return Err(invalid(
            "instance.address",
            format!("expected host:port, got {:?}", instance.address),
        ));
    }
    Ok(instance)
}

/// Rejects an empty or malformed kind.
pub(crate) fn require_kind(kind: &str) -> Result<()> {
    if kind.is_empty() {
        return Err(invalid("kind", "must not be empty"));
    }
    Ok(())
}

fn invalid(field: &'static str, reason: impl Into<String>) -> DirectoryError {
    DirectoryError::InvalidArgument {
        field,
        reason: reason.into(),
    }
}

fn is_name(kind: &str) -> bool {
    kind.bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}
