//! A data item's shapes outside the wire: fields as plain JSON (how they are stored, written and
//! exported), the JSON line that writers and exports share, and RFC 3339 times.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use owlmesh_proto::v1::{FieldValue, StringList, field_value};
use serde::{Deserialize, Serialize};

/// The latest instant RFC 3339 can show (the end of year 9999), in ms since the Unix epoch.
const LAST_RFC3339_MS: i64 = 253_402_300_799_999;

/// One field's value in plain JSON: a string, or an array of strings for many-fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FieldJson {
    /// A single text.
    Text(String),
    /// The texts of a many-field, in document order.
    List(Vec<String>),
}

/// A data item's fields by name, sorted so that JSON output is stable.
pub type Fields = BTreeMap<String, FieldJson>;

impl FieldJson {
    /// The text a CSV cell shows: the text itself, or a list joined with `" | "`.
    pub fn to_cell(&self) -> String {
        match self {
            Self::Text(text) => text.clone(),
            Self::List(values) => values.join(" | "),
        }
    }

    /// The wire form of this value.
    pub fn to_proto(&self) -> FieldValue {
        let value = match self {
            Self::Text(text) => field_value::Value::Text(text.clone()),
            Self::List(values) => field_value::Value::List(StringList {
                values: values.clone(),
            }),
        };
        FieldValue { value: Some(value) }
    }
}

/// A borrowed field value, to render wire fields as JSON without copying them.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum FieldRef<'a> {
    /// A single text.
    Text(&'a str),
    /// The texts of a many-field.
    List(&'a [String]),
}

/// Borrows wire fields as sorted plain-JSON values; values with neither text nor list (which
/// validation rejects) are left out.
pub fn borrow_fields(fields: &HashMap<String, FieldValue>) -> BTreeMap<&str, FieldRef<'_>> {
    fields
        .iter()
        .filter_map(|(name, value)| {
            let value = match value.value.as_ref()? {
                field_value::Value::Text(text) => FieldRef::Text(text),
                field_value::Value::List(list) => FieldRef::List(&list.values),
            };
            Some((name.as_str(), value))
        })
        .collect()
}

/// The wire form of stored fields.
pub fn fields_to_proto(fields: &Fields) -> HashMap<String, FieldValue> {
    fields
        .iter()
        .map(|(name, value)| (name.clone(), value.to_proto()))
        .collect()
}

/// One data item as a JSON line: `{"url","handler","fields":{…},"fetched_at","epoch","changed"}`. The webhook
/// writer adds `job_id` in front, since its receiver sees items of every job.
#[derive(Debug, Serialize)]
pub struct ItemLine<'a, F> {
    /// The job, for receivers that see several jobs; left out when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<&'a str>,
    /// The page's canonical URL.
    pub url: &'a str,
    /// The handler that extracted the fields.
    pub handler: &'a str,
    /// Field name → a string, or an array of strings.
    pub fields: F,
    /// When the page was fetched, RFC 3339 in UTC with milliseconds.
    pub fetched_at: String,
    /// The crawl epoch the page was fetched in.
    pub epoch: u64,
    /// Whether the page changed since its previous epoch (true in its first); left out when
    /// not known yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed: Option<bool>,
}

/// One found document as a JSON line: `{"url","type","found_on"}`.
#[derive(Debug, Serialize)]
pub struct DocumentLine<'a> {
    /// The document's URL.
    pub url: &'a str,
    /// The type it matched, e.g. `pdf`.
    #[serde(rename = "type")]
    pub document_type: &'a str,
    /// The page that links to it.
    pub found_on: &'a str,
}

/// Formats ms since the Unix epoch as RFC 3339 in UTC with milliseconds, e.g.
/// `2024-05-01T12:00:00.250Z`; times outside years 1970–9999 are clamped to that range.
pub fn rfc3339(ms: i64) -> String {
    let ms = ms.clamp(0, LAST_RFC3339_MS).unsigned_abs();
    let time = SystemTime::UNIX_EPOCH + Duration::from_millis(ms);
    humantime::format_rfc3339_millis(time).to_string()
}

/// Ms since the Unix epoch, now.
pub fn now_ms() -> i64 {
    let elapsed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_shows_milliseconds_in_utc() {
        assert_eq!(rfc3339(1_714_564_800_250), "2024-05-01T12:00:00.250Z");
        assert_eq!(rfc3339(-5), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(i64::MAX), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn field_json_is_a_string_or_an_array() {
        let fields: Fields = serde_json::from_str(r#"{"a":"x","b":["y","z"]}"#).unwrap();
        assert_eq!(fields["a"], FieldJson::Text("x".into()));
        assert_eq!(fields["b"].to_cell(), "y | z");
        assert_eq!(
            serde_json::to_string(&fields).unwrap(),
            r#"{"a":"x","b":["y","z"]}"#
        );
    }
}
