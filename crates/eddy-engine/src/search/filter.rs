//! Filters, resolved against an index's settings: which attributes may be filtered,
//! sorted and faceted, and the compiled filter tree.
//!
//! Filters are evaluated on the stored JSON of each candidate document with
//! [`eddy_filter::matches`], the reference evaluator. Every layer stores the same JSON, so a
//! filter selects the same documents whether they sit in a memtable or in a segment.

use eddy_filter::{AttributeSpan, Filter, FilterError};
use serde_json::Value;

use crate::error::{Code, Error, Result};
use crate::settings::Settings;

/// The filterable attribute patterns of the settings (strings, and the `attributePatterns`
/// of granular objects whose filter features are not all disabled).
pub fn filterable_patterns(settings: &Settings) -> Vec<String> {
    let mut out = Vec::new();
    for item in &settings.filterable_attributes {
        match item {
            Value::String(s) => out.push(s.clone()),
            Value::Object(map) => {
                let filter = map.get("features").and_then(|f| f.get("filter"));
                let enabled = match filter {
                    Some(f) => {
                        f.get("equality").and_then(Value::as_bool).unwrap_or(true)
                            || f.get("comparison")
                                .and_then(Value::as_bool)
                                .unwrap_or(false)
                    }
                    None => true,
                };
                if !enabled {
                    continue;
                }
                if let Some(Value::Array(patterns)) = map.get("attributePatterns") {
                    out.extend(
                        patterns
                            .iter()
                            .filter_map(|p| p.as_str().map(str::to_string)),
                    );
                }
            }
            _ => {}
        }
    }
    out
}

/// Whether `attribute` is selected by `pattern`: equal, nested below it (`a` covers `a.b`),
/// or matched by a `*` wildcard at the start and/or end of the pattern.
pub fn pattern_matches(pattern: &str, attribute: &str) -> bool {
    if pattern == "*" || pattern == attribute {
        return true;
    }
    if attribute
        .strip_prefix(pattern)
        .is_some_and(|rest| rest.starts_with('.'))
    {
        return true;
    }
    match (pattern.strip_prefix('*'), pattern.strip_suffix('*')) {
        (Some(rest), _) if rest.ends_with('*') && rest.len() > 1 => {
            attribute.contains(&rest[..rest.len() - 1])
        }
        (Some(suffix), _) => attribute.ends_with(suffix),
        (None, Some(prefix)) => attribute.starts_with(prefix),
        (None, None) => false,
    }
}

/// Whether an attribute is filterable under the settings.
pub fn is_filterable(settings: &Settings, attribute: &str) -> bool {
    filterable_patterns(settings)
        .iter()
        .any(|p| pattern_matches(p, attribute))
}

/// Whether an attribute is sortable under the settings.
pub fn is_sortable(settings: &Settings, attribute: &str) -> bool {
    settings
        .sortable_attributes
        .iter()
        .any(|p| pattern_matches(p, attribute))
}

fn filter_error(code: Code, e: FilterError) -> Error {
    Error::InvalidSearch {
        code,
        message: e.message,
    }
}

/// Parses the JSON `filter` parameter and checks that every attribute it names is
/// filterable. `code` is the Meilisearch code of the route (`invalid_search_filter`,
/// `invalid_document_filter`).
///
/// # Errors
/// Syntax errors (with position and expected token) and non-filterable attributes, worded
/// as Meilisearch words them.
pub fn compile(filter: &Value, settings: &Settings, code: Code) -> Result<Option<Filter>> {
    let spans: Vec<AttributeSpan> =
        eddy_filter::attribute_spans(filter).map_err(|e| filter_error(code, e))?;
    let patterns = filterable_patterns(settings);
    for span in &spans {
        if !patterns.iter().any(|p| pattern_matches(p, &span.attribute)) {
            let refs: Vec<&str> = patterns.iter().map(String::as_str).collect();
            return Err(filter_error(
                code,
                FilterError::attribute_not_filterable(span, &refs),
            ));
        }
    }
    eddy_filter::parse_json(filter).map_err(|e| filter_error(code, e))
}

/// The conjunction of two `filter` parameters in the array form (each outer item is ANDed,
/// inner arrays stay OR groups), e.g. a tenant token's forced filter and the request's.
/// `null` is no filter.
pub fn and_filters(a: Value, b: Value) -> Value {
    let items = |v: Value| match v {
        Value::Null => Vec::new(),
        Value::Array(items) => items,
        other => vec![other],
    };
    let mut out = items(a);
    out.extend(items(b));
    if out.is_empty() {
        Value::Null
    } else {
        Value::Array(out)
    }
}

/// Parses a filter without checking filterability (replaying a logged operation, whose
/// check was made when it was first applied).
///
/// # Errors
/// Syntax errors.
pub fn compile_unchecked(filter: &Value, code: Code) -> Result<Option<Filter>> {
    eddy_filter::parse_json(filter).map_err(|e| filter_error(code, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings(v: Value) -> Settings {
        let Value::Object(m) = v else { unreachable!() };
        Settings::default().patched(&m).unwrap()
    }

    #[test]
    fn patterns() {
        assert!(pattern_matches("genre", "genre"));
        assert!(pattern_matches("author", "author.name"));
        assert!(!pattern_matches("author", "authors"));
        assert!(pattern_matches("*", "x"));
        assert!(pattern_matches("attr*", "attr_1"));
        assert!(pattern_matches("*_at", "created_at"));
        assert!(pattern_matches("*ea*", "year"));
        assert!(!pattern_matches("*ea*", "genre"));
    }

    #[test]
    fn non_filterable_attribute_is_reported_with_its_position() {
        let s = settings(json!({"filterableAttributes": ["year", "genre"]}));
        assert!(compile(&json!("year > 2000"), &s, Code::InvalidSearchFilter).is_ok());
        let err = compile(
            &json!("year > 2000 AND title = x"),
            &s,
            Code::InvalidSearchFilter,
        )
        .unwrap_err();
        assert_eq!(err.code(), Code::InvalidSearchFilter);
        assert_eq!(
            err.to_string(),
            "Attribute `title` is not filterable. Available filterable attribute patterns are: `genre`, `year`.\n17:22 year > 2000 AND title = x"
        );
        let err = compile(&json!("year >"), &s, Code::InvalidDocumentFilter).unwrap_err();
        assert_eq!(err.code(), Code::InvalidDocumentFilter);
        assert!(err.to_string().ends_with("\n7:7 year >"), "{err}");
    }

    #[test]
    fn and_filters_keeps_or_groups() {
        let f = and_filters(json!("a = 1"), json!([["b = 2", "c = 3"], "d = 4"]));
        assert_eq!(f, json!(["a = 1", ["b = 2", "c = 3"], "d = 4"]));
        let parsed = eddy_filter::parse_json(&f).unwrap().unwrap();
        assert!(parsed.matches(&json!({"a": 1, "c": 3, "d": 4})));
        assert!(!parsed.matches(&json!({"a": 1, "d": 4})));
        assert_eq!(and_filters(Value::Null, Value::Null), Value::Null);
    }

    #[test]
    fn granular_filterable_objects() {
        let s = settings(json!({"filterableAttributes": [
            {"attributePatterns": ["tags"], "features": {"filter": {"equality": true}}},
            {"attributePatterns": ["secret"], "features": {"filter": {"equality": false, "comparison": false}}}
        ]}));
        assert!(is_filterable(&s, "tags"));
        assert!(!is_filterable(&s, "secret"));
    }
}
