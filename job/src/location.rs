//! Places problems in the job file: byte offsets become line and column, a parse error's
//! offset becomes the key path it sits in, and a field path becomes the line it is written on.

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::path::{FieldPath, Issue, Segment};
use crate::{FieldError, ParseError};

/// Turns a TOML error into a [`ParseError`] naming origin, line, column and key path.
pub(super) fn parse_error(source: &str, origin: &str, error: &toml::de::Error) -> ParseError {
    let offset = error.span().map(|span| span.start);
    let position = offset.map(|offset| line_and_column(source, offset));
    let key = offset
        .and_then(|offset| key_path_at(source, offset))
        .map(|path| path.to_string());
    ParseError {
        origin: origin.to_owned(),
        line: position.map(|(line, _)| line),
        column: position.map(|(_, column)| column),
        key,
        message: error.message().trim_end().to_owned(),
    }
}

/// Turns issues into field errors, each with the line its field is written on, if it is.
pub(super) fn field_errors(source: &str, issues: Vec<Issue>) -> Vec<FieldError> {
    let (document, _) = DeTable::parse_recoverable(source);
    issues
        .into_iter()
        .map(|issue| {
            let line =
                span_of(&document, &issue.path).map(|offset| line_and_column(source, offset).0);
            FieldError {
                field: issue.path.to_string(),
                reason: issue.reason,
                line,
            }
        })
        .collect()
}

/// Turns issues into field errors for a spec that came without a file.
pub(super) fn unplaced_field_errors(issues: Vec<Issue>) -> Vec<FieldError> {
    issues
        .into_iter()
        .map(|issue| FieldError {
            field: issue.path.to_string(),
            reason: issue.reason,
            line: None,
        })
        .collect()
}

/// 1-based line and column (in characters) of a byte offset.
pub(super) fn line_and_column(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let line = before.matches('\n').count() + 1;
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The innermost key path whose key or value covers `offset`.
fn key_path_at(source: &str, offset: usize) -> Option<FieldPath> {
    let (document, _) = DeTable::parse_recoverable(source);
    let mut path = FieldPath::default();
    let found = find_in_table(document.get_ref(), offset, &mut path);
    (found && !path.is_empty()).then_some(path)
}

fn find_in_table(table: &DeTable<'_>, offset: usize, path: &mut FieldPath) -> bool {
    for (key, value) in table.iter() {
        path.push(Segment::Key(key.get_ref().to_string()));
        if find_in_value(value.get_ref(), offset, path)
            || covers(key.span(), offset)
            || covers(value.span(), offset)
        {
            return true;
        }
        path.pop();
    }
    false
}

fn find_in_value(value: &DeValue<'_>, offset: usize, path: &mut FieldPath) -> bool {
    match value {
        DeValue::Table(table) => find_in_table(table, offset, path),
        DeValue::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                path.push(Segment::Index(index));
                if find_in_value(item.get_ref(), offset, path) || covers(item.span(), offset) {
                    return true;
                }
                path.pop();
            }
            false
        }
        _ => false,
    }
}

fn covers(span: std::ops::Range<usize>, offset: usize) -> bool {
    span.contains(&offset) || (span.is_empty() && span.start == offset)
}

/// The start of the deepest part of `path` that is written in the document.
fn span_of(document: &Spanned<DeTable<'_>>, path: &FieldPath) -> Option<usize> {
    let mut current: Option<&Spanned<DeValue<'_>>> = None;
    let mut start = None;
    for segment in path.segments() {
        let next = match (segment, current.map(Spanned::get_ref)) {
            (Segment::Key(key), None) => document.get_ref().get(key.as_str()),
            (Segment::Key(key), Some(DeValue::Table(table))) => table.get(key.as_str()),
            (Segment::Index(index), Some(DeValue::Array(items))) => items.get(*index),
            _ => None,
        };
        let Some(next) = next else { break };
        start = Some(next.span().start);
        current = Some(next);
    }
    start
}
