//! Checks of directory requests, with errors that name the field and the reason.

use owlmesh_proto::v1::Instance;

use owlmesh_mesh::is_host_port;

use crate::{DirectoryError, Result};

/// Priorities a registration may claim: wide enough for any failover order, and no
/// `i32::MIN` to jump ahead of every dispatcher that counts from 0.
pub const PRIORITY_RANGE: std::ops::RangeInclusive<i32> = -1000..=1000;
/// The longest kind, in bytes.
pub const MAX_KIND_BYTES: usize = 64;
/// The longest instance id, in bytes.
pub const MAX_ID_BYTES: usize = 128;
/// The longest address, in bytes.
pub const MAX_ADDRESS_BYTES: usize = 256;
/// Labels per instance at most.
pub const MAX_LABELS: usize = 32;
/// The longest label key, in bytes.
pub const MAX_LABEL_KEY_BYTES: usize = 64;
/// The longest label value, in bytes: every watcher of the kind receives every label, so a
/// label bomb would make membership undecodable for all of them.
pub const MAX_LABEL_VALUE_BYTES: usize = 1024;

/// Accepts a registration's instance, or says which field is wrong.
pub(crate) fn validate_instance(instance: Option<Instance>) -> Result<Instance> {
    let instance = instance.ok_or(DirectoryError::InvalidArgument {
        field: "instance",
        reason: "is required".into(),
    })?;
    if instance.kind.is_empty() {
        return Err(invalid("instance.kind", "must not be empty"));
    }
    if instance.kind.len() > MAX_KIND_BYTES {
        return Err(invalid(
            "instance.kind",
            format!("longer than {MAX_KIND_BYTES} bytes"),
        ));
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
    if instance.id.len() > MAX_ID_BYTES || !instance.id.bytes().all(is_id_byte) {
        return Err(invalid(
            "instance.id",
            format!(
                "expected at most {MAX_ID_BYTES} letters, digits, '-', '_', '.' or ':', got {:?}",
                instance.id
            ),
        ));
    }
    if !PRIORITY_RANGE.contains(&instance.priority) {
        return Err(invalid(
            "instance.priority",
            format!(
                "must be between {} and {}, got {}",
                PRIORITY_RANGE.start(),
                PRIORITY_RANGE.end(),
                instance.priority
            ),
        ));
    }
    if instance.address.len() > MAX_ADDRESS_BYTES {
        return Err(invalid(
            "instance.address",
            format!("longer than {MAX_ADDRESS_BYTES} bytes"),
        ));
    }
    check_labels(&instance)?;
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

fn check_labels(instance: &Instance) -> Result<()> {
    if instance.labels.len() > MAX_LABELS {
        return Err(invalid(
            "instance.labels",
            format!("more than {MAX_LABELS} labels"),
        ));
    }
    for (key, value) in &instance.labels {
        if key.is_empty() || key.len() > MAX_LABEL_KEY_BYTES || !key.bytes().all(is_id_byte) {
            return Err(invalid(
                "instance.labels",
                format!(
                    "key {key:?}: expected 1 to {MAX_LABEL_KEY_BYTES} letters, digits, '-', '_', '.' or ':'"
                ),
            ));
        }
        if value.len() > MAX_LABEL_VALUE_BYTES || value.chars().any(char::is_control) {
            return Err(invalid(
                "instance.labels",
                format!(
                    "value of {key:?}: at most {MAX_LABEL_VALUE_BYTES} bytes, without control characters"
                ),
            ));
        }
    }
    Ok(())
}

fn is_id_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b':')
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

#[cfg(test)]
mod tests {
    use super::*;

    fn instance() -> Instance {
        Instance {
            kind: "scraper".into(),
            id: "scraper-0".into(),
            address: "127.0.0.1:7801".into(),
            ..Default::default()
        }
    }

    fn refusal(change: impl FnOnce(&mut Instance)) -> String {
        let mut instance = instance();
        change(&mut instance);
        validate_instance(Some(instance))
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn registrations_are_bounded_and_say_which_field_is_wrong() {
        validate_instance(Some(instance())).expect("valid");
        assert!(
            refusal(|i| i.priority = i32::MIN)
                .starts_with("instance.priority: must be between -1000 and 1000")
        );
        assert!(refusal(|i| i.id = "scraper\n0".into()).starts_with("instance.id: "));
        assert!(refusal(|i| i.id = "x".repeat(129)).starts_with("instance.id: "));
        assert!(refusal(|i| i.kind = "k".repeat(65)).starts_with("instance.kind: "));
        let bomb = |i: &mut Instance| {
            i.labels
                .insert("dashboard".into(), "x".repeat(4 * 1024 * 1024));
        };
        assert!(refusal(bomb).starts_with("instance.labels: value of \"dashboard\""));
        let many = |i: &mut Instance| {
            i.labels = (0..33).map(|n| (format!("k{n}"), String::new())).collect();
        };
        assert!(refusal(many).starts_with("instance.labels: more than 32"));
        let forged_log = |i: &mut Instance| {
            i.labels
                .insert("note".into(), "ok\nERROR forged line".into());
        };
        assert!(refusal(forged_log).contains("without control characters"));
    }
}
