//! Naming rules for `/metrics`: names and label names come from other processes' snapshots,
//! so they are cleaned into the characters the format allows, and a snapshot's label that
//! would overwrite one the dashboard sets is renamed the way Prometheus renames it.

use std::collections::BTreeMap;

/// Label names the dashboard sets itself; a stats label of the same name is renamed
/// `exported_<name>`, as Prometheus does on a clash.
const RESERVED_LABELS: &[&str] = &["kind", "instance", "queue", "le", "job", "status"];

/// An ordered label set: the dashboard's own labels first, then the instance's.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Labels(Vec<(String, String)>);

impl Labels {
    pub(super) fn new() -> Self {
        Self::default()
    }

    pub(super) fn with(mut self, name: &str, value: &str) -> Self {
        self.0.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Adds labels that came with a snapshot, renaming the ones that would clash.
    pub(super) fn with_extra(mut self, extra: &BTreeMap<String, String>) -> Self {
        for (name, value) in extra {
            let mut name = label_name(name);
            if RESERVED_LABELS.contains(&name.as_str()) || self.0.iter().any(|(n, _)| *n == name) {
                name = format!("exported_{name}");
            }
            self.0.push((name, value.clone()));
        }
        self
    }

    /// The labels as name and value pairs, in order.
    pub(super) fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
}

/// A metric name part from a snapshot's name: `[a-zA-Z0-9_:]`, anything else as `_`.
pub(super) fn metric_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "unnamed".into()
    } else {
        cleaned
    }
}

/// A label name from a snapshot's label: `[a-zA-Z_][a-zA-Z0-9_]*`, never starting with the
/// reserved `__`.
fn label_name(name: &str) -> String {
    let mut cleaned: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if cleaned.is_empty() || cleaned.starts_with(|c: char| c.is_ascii_digit()) {
        cleaned.insert(0, '_');
    }
    if cleaned.starts_with("__") {
        cleaned.insert_str(0, "label");
    }
    cleaned
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_keep_only_the_allowed_characters() {
        assert_eq!(metric_name("fetch.seconds:p99"), "fetch_seconds:p99");
        assert_eq!(metric_name(""), "unnamed");
    }

    #[test]
    fn label_names_never_start_with_a_digit_or_the_reserved_prefix() {
        assert_eq!(label_name("9 bad-name"), "_9_bad_name");
        assert_eq!(label_name(""), "_");
        assert_eq!(label_name("__name__"), "label__name__");
    }

    #[test]
    fn snapshot_labels_never_overwrite_the_dashboards() {
        let extra = BTreeMap::from([
            ("instance".to_owned(), "other".to_owned()),
            ("region".to_owned(), "eu".to_owned()),
            ("zone".to_owned(), "a".to_owned()),
        ]);
        let labels = Labels::new()
            .with("instance", "scraper-0")
            .with("zone", "b")
            .with_extra(&extra);
        let names: Vec<&str> = labels.pairs().iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "instance",
                "zone",
                "exported_instance",
                "region",
                "exported_zone"
            ]
        );
    }
}
