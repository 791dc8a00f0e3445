//! Turning fetched bytes into text: the charset of the Content-Type, else of a `<meta>` tag
//! near the top, else UTF-8. Malformed sequences become U+FFFD; decoding never fails.

use encoding_rs::{Encoding, UTF_8};

/// How far into a body to look for a `<meta charset>`; browsers look at the first 1024 bytes.
const META_PRESCAN_BYTES: usize = 1024;

/// Decodes `bytes` using the charset of `content_type`, of a `<meta>` tag, or UTF-8. A
/// byte-order mark wins over both, as in browsers.
pub(crate) fn decode(bytes: &[u8], content_type: Option<&str>) -> String {
    let encoding = content_type
        .and_then(charset_parameter)
        .or_else(|| meta_charset(bytes))
        .and_then(|label| Encoding::for_label(label.as_bytes()))
        .unwrap_or(UTF_8);
    let (text, _, _) = encoding.decode(bytes);
    text.into_owned()
}

/// The `charset` parameter of a Content-Type value, e.g. `text/html; charset=ISO-8859-1`.
pub(crate) fn charset_parameter(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|parameter| {
        let (name, value) = parameter.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches(['"', '\'']).to_owned())
    })
}

/// The charset a `<meta charset=…>` or `<meta http-equiv content="…; charset=…">` declares
/// near the start of a document.
fn meta_charset(bytes: &[u8]) -> Option<String> {
    let head = &bytes[..bytes.len().min(META_PRESCAN_BYTES)];
    let head = String::from_utf8_lossy(head).to_ascii_lowercase();
    let at = head.find("charset=")? + "charset=".len();
    let label: String = head[at..]
        .trim_start_matches(['"', '\''])
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'))
        .collect();
    (!label.is_empty()).then_some(label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_charset_decodes_latin1() {
        let text = decode(b"caf\xe9", Some("text/html; charset=ISO-8859-1"));
        assert_eq!(text, "café");
    }

    #[test]
    fn a_meta_charset_is_used_when_the_header_has_none() {
        let page = b"<html><head><meta charset=\"windows-1252\"></head>caf\xe9";
        assert!(decode(page, Some("text/html")).ends_with("café"));
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        let text = decode(b"ok \xff\xfe end", Some("text/html; charset=utf-8"));
        assert_eq!(text, "ok \u{fffd}\u{fffd} end");
    }

    #[test]
    fn an_unknown_charset_falls_back_to_utf8() {
        assert_eq!(
            decode("é".as_bytes(), Some("text/html; charset=klingon")),
            "é"
        );
    }
}
