//! The JSON forms of the `filter` parameter: a string, `null`, or an array whose items are
//! strings (joined by `AND`) or arrays of strings (joined by `OR`), as Meilisearch's docs
//! ("Creating filter expressions with arrays") and milli's `Filter::from_json` define them.
//! Empty strings and empty inner arrays are dropped; a group of one is that one filter.

use serde_json::Value as Json;

use crate::ast::Filter;
use crate::error::{FilterError, FilterErrorKind};
use crate::parser::parse_located;

/// An attribute named in a filter, with the filter string it is written in and its 0-based
/// character span there (inside the quotes when quoted). Geo filters name `_geo`, at their
/// first latitude, where Meilisearch points its error when `_geo` is not filterable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeSpan {
    /// The attribute, unquoted.
    pub attribute: String,
    /// The filter string it is written in (one item of an array filter).
    pub filter: String,
    /// `[start, end)` in characters of `filter`.
    pub span: (usize, usize),
}

/// Parses the JSON `filter` parameter: a string, an array of strings and arrays of strings,
/// or `null` (no filter).
///
/// # Errors
/// Any parse error of one of the strings (the first one met), or Meilisearch's
/// "Invalid syntax for the filter parameter: `expected String, Array, found: …`." when a
/// value has the wrong JSON type.
pub fn parse_json(filter: &Json) -> Result<Option<Filter>, FilterError> {
    parse_json_with_spans(filter).map(|parsed| parsed.map(|(filter, _)| filter))
}

/// Every attribute the filter names, in source order, with where it is written; empty when
/// there is no filter. Use it to check filterability and report errors with
/// [`FilterError::attribute_not_filterable`].
///
/// # Errors
/// Same as [`parse_json`].
pub fn attribute_spans(filter: &Json) -> Result<Vec<AttributeSpan>, FilterError> {
    Ok(parse_json_with_spans(filter)?
        .map(|(_, spans)| spans)
        .unwrap_or_default())
}

fn parse_json_with_spans(
    filter: &Json,
) -> Result<Option<(Filter, Vec<AttributeSpan>)>, FilterError> {
    let mut spans = Vec::new();
    let parsed = match filter {
        Json::Null => None,
        Json::String(s) => parse_item(s, &mut spans)?,
        Json::Array(items) => {
            let mut ands = Vec::new();
            for item in items {
                match item {
                    Json::String(s) => ands.extend(parse_item(s, &mut spans)?),
                    Json::Array(inner) => {
                        let mut ors = Vec::new();
                        for item in inner {
                            let Json::String(s) = item else {
                                return Err(invalid_type(&["String"], item));
                            };
                            ors.extend(parse_item(s, &mut spans)?);
                        }
                        ands.extend(group(ors, Filter::Or));
                    }
                    other => return Err(invalid_type(&["String", "[String]"], other)),
                }
            }
            group(ands, Filter::And)
        }
        other => return Err(invalid_type(&["String", "Array"], other)),
    };
    Ok(parsed.map(|filter| (filter, spans)))
}

fn parse_item(src: &str, spans: &mut Vec<AttributeSpan>) -> Result<Option<Filter>, FilterError> {
    let Some(parsed) = parse_located(src)? else {
        return Ok(None);
    };
    spans.extend(
        parsed
            .attributes
            .into_iter()
            .map(|(attribute, span)| AttributeSpan {
                attribute,
                filter: src.to_owned(),
                span,
            }),
    );
    Ok(Some(parsed.filter))
}

/// `None` for no items, the item for one, else `make(items)`.
fn group(mut items: Vec<Filter>, make: fn(Vec<Filter>) -> Filter) -> Option<Filter> {
    match items.len() {
        0 => None,
        1 => items.pop(),
        _ => Some(make(items)),
    }
}

fn invalid_type(expected: &[&str], found: &Json) -> FilterError {
    FilterError::unlocated(
        FilterErrorKind::InvalidType,
        format!(
            "Invalid syntax for the filter parameter: `expected {}, found: {found}`.",
            expected.join(", ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::parse;

    fn p(s: &str) -> Filter {
        parse(s).ok().flatten().expect("test filter parses")
    }

    #[test]
    fn outer_array_is_and_inner_array_is_or() {
        let f = parse_json(&json!(["a = 1", ["b = 2", "c = 3"]]))
            .ok()
            .flatten();
        assert_eq!(
            f,
            Some(Filter::And(vec![
                p("a = 1"),
                Filter::Or(vec![p("b = 2"), p("c = 3")])
            ]))
        );
        assert_eq!(
            parse_json(&json!([["b = 2"]])).ok().flatten(),
            Some(p("b = 2"))
        );
        assert_eq!(
            parse_json(&json!(["a = 1"])).ok().flatten(),
            Some(p("a = 1"))
        );
        assert_eq!(
            parse_json(&json!("a = 1 OR b = 2")).ok().flatten(),
            Some(p("a = 1 OR b = 2"))
        );
    }

    #[test]
    fn nothing_to_filter_is_none() {
        for empty in [
            json!(null),
            json!(""),
            json!("  "),
            json!([]),
            json!([[]]),
            json!(["", [" "]]),
        ] {
            assert_eq!(parse_json(&empty), Ok(None), "{empty}");
        }
    }

    #[test]
    fn wrong_types_are_reported_like_meilisearch() {
        let cases = [
            (
                json!(true),
                "Invalid syntax for the filter parameter: `expected String, Array, found: true`.",
            ),
            (
                json!(3),
                "Invalid syntax for the filter parameter: `expected String, Array, found: 3`.",
            ),
            (
                json!(["a = 1", 2]),
                "Invalid syntax for the filter parameter: `expected String, [String], found: 2`.",
            ),
            (
                json!([["a = 1", ["b = 1"]]]),
                "Invalid syntax for the filter parameter: `expected String, found: [\"b = 1\"]`.",
            ),
            (
                json!({"a": 1}),
                "Invalid syntax for the filter parameter: `expected String, Array, found: {\"a\":1}`.",
            ),
        ];
        for (filter, message) in cases {
            let e = parse_json(&filter).expect_err("wrong type is an error");
            assert_eq!(
                (e.kind, e.message.as_str(), e.span),
                (FilterErrorKind::InvalidType, message, None)
            );
        }
    }

    #[test]
    fn errors_point_into_the_failing_item() {
        let e = parse_json(&json!(["a = 1", ["b = 2", "c ="]])).expect_err("error");
        assert_eq!(
            e.message,
            "Was expecting a value but instead got nothing.\n4:4 c ="
        );
        assert_eq!(e.span, Some((3, 3)));
    }

    #[test]
    fn attribute_spans_name_each_item() {
        let spans = attribute_spans(&json!([
            "a.b = 1 AND 'dog race' EXISTS",
            ["_geoRadius(1, 2, 3)"]
        ]))
        .expect("parses");
        let got: Vec<_> = spans
            .iter()
            .map(|s| (s.attribute.as_str(), s.filter.as_str(), s.span))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a.b", "a.b = 1 AND 'dog race' EXISTS", (0, 3)),
                ("dog race", "a.b = 1 AND 'dog race' EXISTS", (13, 21)),
                ("_geo", "_geoRadius(1, 2, 3)", (11, 12)),
            ]
        );
        assert_eq!(attribute_spans(&json!(null)), Ok(vec![]));
    }
}
