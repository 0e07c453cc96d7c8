//! Lexical rules shared by the parser and the printer: which characters make a bare word,
//! which words are reserved, and how backslash escapes in quoted tokens are resolved.
//!
//! Checked against Meilisearch's `filter-parser` (`value.rs`): a bare word is a run of
//! alphanumeric characters, `_`, `-` and `.`; keywords are matched case-sensitively (`and`
//! is an ordinary word); quoted tokens resolve the escapes of the `unescaper` crate
//! (`\b \f \n \r \t \v \' \" \\ \/ \xHH \uHHHH \u{H..} \ooo`).

/// Words that cannot be used bare as an attribute or a value.
const KEYWORDS: [&str; 11] = [
    "AND",
    "OR",
    "IN",
    "NOT",
    "TO",
    "EXISTS",
    "IS",
    "NULL",
    "EMPTY",
    "_geoRadius",
    "_geoBoundingBox",
];

/// Whether `c` can be part of a bare word.
pub(crate) fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// Characters that end the "offending word" shown in "Was expecting a value" errors.
pub(crate) fn is_syntax_char(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '=' | '<' | '>' | '!')
}

/// Whether the bare word `s` is reserved by the grammar.
pub(crate) fn is_keyword(s: &str) -> bool {
    KEYWORDS.contains(&s)
}

/// Whether bare text starting like `s` is rejected as a reserved geo name: the word `_geo`,
/// or anything starting with `_geoPoint` or `_geoDistance` (Meilisearch matches those two as
/// prefixes).
pub(crate) fn is_reserved_geo_word(s: &str) -> bool {
    s == "_geo" || s.starts_with("_geoPoint") || s.starts_with("_geoDistance")
}

/// Why a quoted token's escapes could not be resolved.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum EscapeError {
    /// Unknown escape letter, incomplete sequence, or a code point that is not a `char`.
    Malformed,
    /// `\x` or `\u` followed by something that is not hexadecimal.
    BadNumber,
}

/// Resolves backslash escapes in the content of a quoted token.
pub(crate) fn unescape(content: &[char]) -> Result<String, EscapeError> {
    let mut out = String::with_capacity(content.len());
    let mut i = 0;
    while let Some(&c) = content.get(i) {
        i += 1;
        if c != '\\' {
            out.push(c);
            continue;
        }
        let marker = *content.get(i).ok_or(EscapeError::Malformed)?;
        i += 1;
        let resolved = match marker {
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\u{b}',
            '\'' | '"' | '\\' | '/' => marker,
            'u' if content.get(i) == Some(&'{') => {
                let digits_start = i + 1;
                let close = content[digits_start..]
                    .iter()
                    .position(|&d| d == '}')
                    .ok_or(EscapeError::Malformed)?;
                let digits: String = content[digits_start..digits_start + close].iter().collect();
                i = digits_start + close + 1;
                code_point(&digits)?
            }
            'u' => {
                let digits: String = content
                    .get(i..i + 4)
                    .ok_or(EscapeError::Malformed)?
                    .iter()
                    .collect();
                i += 4;
                code_point(&digits)?
            }
            'x' => {
                let digits: String = content
                    .get(i..i + 2)
                    .ok_or(EscapeError::Malformed)?
                    .iter()
                    .collect();
                i += 2;
                char::from(u8::from_str_radix(&digits, 16).map_err(|_| EscapeError::BadNumber)?)
            }
            '0'..='7' => {
                let extra_digits = if marker <= '3' { 2 } else { 1 };
                let mut value = marker.to_digit(8).ok_or(EscapeError::Malformed)?;
                for _ in 0..extra_digits {
                    match content.get(i).and_then(|d| d.to_digit(8)) {
                        Some(d) => {
                            value = value * 8 + d;
                            i += 1;
                        }
                        None => break,
                    }
                }
                char::from_u32(value).ok_or(EscapeError::Malformed)?
            }
            _ => return Err(EscapeError::Malformed),
        };
        out.push(resolved);
    }
    Ok(out)
}

fn code_point(digits: &str) -> Result<char, EscapeError> {
    let value = u32::from_str_radix(digits, 16).map_err(|_| EscapeError::BadNumber)?;
    char::from_u32(value).ok_or(EscapeError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn un(s: &str) -> Result<String, EscapeError> {
        unescape(&s.chars().collect::<Vec<_>>())
    }

    #[test]
    fn resolves_every_escape_family() {
        assert_eq!(un(r#"a\'b\"c\\d\/e"#), Ok("a'b\"c\\d/e".into()));
        assert_eq!(un(r"\b\f\n\r\t\v"), Ok("\u{8}\u{c}\n\r\t\u{b}".into()));
        assert_eq!(un(r"\x41\xe9"), Ok("A\u{e9}".into()));
        assert_eq!(un(r"\u00e9\u{1F43B}"), Ok("é🐻".into()));
        assert_eq!(un(r"\101\7\08"), Ok("A\u{7}\u{0}8".into()));
        assert_eq!(un("plain é"), Ok("plain é".into()));
    }

    #[test]
    fn rejects_bad_escapes() {
        assert_eq!(un(r"\d"), Err(EscapeError::Malformed));
        assert_eq!(un("\\"), Err(EscapeError::Malformed));
        assert_eq!(un(r"\x4"), Err(EscapeError::Malformed));
        assert_eq!(un(r"\xzz"), Err(EscapeError::BadNumber));
        assert_eq!(un(r"\u12"), Err(EscapeError::Malformed));
        assert_eq!(un(r"\u{zz}"), Err(EscapeError::BadNumber));
        assert_eq!(un(r"\u{d800}"), Err(EscapeError::Malformed));
        assert_eq!(un(r"\u{41"), Err(EscapeError::Malformed));
    }

    #[test]
    fn words_and_keywords() {
        assert!("a.b-c_1é".chars().all(is_word_char));
        assert!(!is_word_char('🐻') && !is_word_char('\'') && !is_word_char('['));
        assert!(is_keyword("AND") && is_keyword("_geoRadius"));
        assert!(!is_keyword("and") && !is_keyword("Not") && !is_keyword("CONTAINS"));
        assert!(is_reserved_geo_word("_geo") && is_reserved_geo_word("_geoPointer"));
        assert!(!is_reserved_geo_word("_geo.lat") && !is_reserved_geo_word("_geography"));
    }
}
