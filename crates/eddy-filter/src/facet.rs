//! What a document exposes to filters: the facet values of each dotted attribute path, exactly
//! as Meilisearch extracts them at indexing time. The engine indexes these values and the
//! reference evaluator reads them, so both see the same thing.
//!
//! The walk follows Meilisearch's facet extraction (milli `update/new/extract/faceted/
//! extract_facets.rs`, `facet_document.rs` and `perm_json_p` in `extract/mod.rs`):
//!
//! - a path is object keys joined with `.`; arrays are transparent, so `{"a": [{"b": 1}]}`
//!   gives `a.b = 1`, and a literal key `"a.b"` gives the same path as `{"a": {"b": ..}}`;
//! - every value met at a path (object, array, scalar, at any depth) makes the path exist;
//! - numbers, non-empty strings (normalized with [`normalize_str`]) and booleans are the
//!   values filters compare with; strings are never read as numbers;
//! - `null`, `""`, `[]` and `{}` only count for `IS NULL` / `IS EMPTY` when they are the value
//!   of an object key (or an empty array/object reached through it), not an element of an
//!   array: `{"tags": [null]}` is not `tags IS NULL` and `{"tags": [""]}` is not `tags IS EMPTY`.
//!
//! The reserved top-level fields are not walked (milli's `iter_top_level_fields` skips them):
//! `_vectors` has no facets, and `_geo` only gives the numbers `_geo.lat` and `_geo.lng`, read
//! from a valid geo point (strings parsed), as milli's `extract_geo_document` does.
//!
//! Meilisearch also truncates facet strings to the key size of its store; eddy does not.

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json};
use unicode_normalization::UnicodeNormalization;

/// How Meilisearch normalizes facet strings before storing and comparing them: trim Unicode
/// whitespace, NFKD-decompose (compatibility decomposition, so `ﬁ` becomes `fi` and `é`
/// becomes `e` + U+0301), then lowercase. Accents are not removed: `café` ≠ `cafe`.
///
/// Source: milli `normalize_facet` = charabia's `CompatibilityDecompositionNormalizer` over
/// `trim()`, then `to_lowercase()`.
pub fn normalize_str(s: &str) -> String {
    s.trim().nfkd().collect::<String>().to_lowercase()
}

/// `-0.0` as `0.0`, so that every store orders and compares zero the same way.
pub(crate) fn canonical_number(n: f64) -> f64 {
    if n == 0.0 { 0.0 } else { n }
}

/// One value an attribute path holds in a document.
#[derive(Debug, Clone, PartialEq)]
pub enum FacetValue {
    /// A JSON number, as `f64` (`-0` stored as `0`).
    Number(f64),
    /// A non-empty JSON string.
    String {
        /// [`normalize_str`] of `original`: what filters compare with.
        normalized: String,
        /// The string as in the document.
        original: String,
    },
    /// A JSON boolean; filters see it as the string `true` or `false`.
    Bool(bool),
    /// A `null` that counts for `IS NULL` (only in [`facet_values`]'s output).
    Null,
}

impl FacetValue {
    /// The number, for numeric comparisons.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            FacetValue::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The string filters compare with: the normalized string, or `true`/`false` for a
    /// boolean (Meilisearch stores booleans in its string facets).
    pub fn as_facet_str(&self) -> Option<&str> {
        match self {
            FacetValue::String { normalized, .. } => Some(normalized),
            FacetValue::Bool(true) => Some("true"),
            FacetValue::Bool(false) => Some("false"),
            FacetValue::Number(_) | FacetValue::Null => None,
        }
    }
}

/// Everything filters can observe about one attribute path of one document.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldFacets {
    /// The path is present (with any value, even `null`, `[]` or `{}`): `EXISTS`.
    pub exists: bool,
    /// A `null` is the value of the path: `IS NULL`.
    pub is_null: bool,
    /// `""`, `[]` or `{}` is the value of the path: `IS EMPTY`.
    pub is_empty: bool,
    /// Numbers, non-empty strings and booleans at the path, in document order, duplicates
    /// kept. Never [`FacetValue::Null`].
    pub values: Vec<FacetValue>,
}

impl FieldFacets {
    /// The numbers at the path.
    pub fn numbers(&self) -> impl Iterator<Item = f64> + '_ {
        self.values.iter().filter_map(FacetValue::as_number)
    }

    /// The strings at the path as filters compare them (booleans as `true`/`false`).
    pub fn strings(&self) -> impl Iterator<Item = &str> + '_ {
        self.values.iter().filter_map(FacetValue::as_facet_str)
    }
}

/// The facets of the dotted `attribute` path of `doc` (a JSON object; anything else has no
/// attributes).
pub fn field_facets(doc: &Json, attribute: &str) -> FieldFacets {
    let mut sink = OneField {
        target: attribute,
        facets: FieldFacets::default(),
    };
    if let Json::Object(map) = doc {
        walk_document(map, &mut sink);
    }
    sink.facets
}

/// The values of the dotted `attribute` path of `doc`: [`FieldFacets::values`], followed by
/// [`FacetValue::Null`] when the path `IS NULL`.
pub fn facet_values(doc: &Json, attribute: &str) -> Vec<FacetValue> {
    let facets = field_facets(doc, attribute);
    let mut values = facets.values;
    if facets.is_null {
        values.push(FacetValue::Null);
    }
    values
}

/// The facets of every attribute path of `doc`, keyed by dotted path. For every path `p`,
/// `document_facets(doc).get(p)` equals `field_facets(doc, p)` (absent when it would be the
/// default: the path does not exist).
pub fn document_facets(doc: &Json) -> BTreeMap<String, FieldFacets> {
    let mut sink = AllFields {
        fields: BTreeMap::new(),
    };
    if let Json::Object(map) = doc {
        walk_document(map, &mut sink);
    }
    sink.fields
}

/// The document's geo point: `_geo` is an object whose `lat` and `lng` are numbers, or strings
/// that parse as numbers, and are finite (Meilisearch `extract_geo_coordinates`). `None`
/// otherwise; Meilisearch rejects such documents at indexing unless `_geo` is missing or null.
pub fn geo_point(doc: &Json) -> Option<(f64, f64)> {
    geo_point_of(doc.as_object()?)
}

fn geo_point_of(doc: &Map<String, Json>) -> Option<(f64, f64)> {
    let geo = doc.get("_geo")?.as_object()?;
    let coordinate = |value: &Json| -> Option<f64> {
        let n = match value {
            Json::Number(n) => n.as_f64()?,
            Json::String(s) => s.parse().ok()?,
            _ => return None,
        };
        n.is_finite().then_some(n)
    };
    Some((coordinate(geo.get("lat")?)?, coordinate(geo.get("lng")?)?))
}

/// Whether a value is met as the value of an object key or inside an array.
#[derive(Clone, Copy, PartialEq)]
enum Depth {
    OnKey,
    InArray,
}

/// Receives the values met during the walk.
trait Sink {
    /// Whether anything at or under `path` is wanted.
    fn wants(&self, path: &str) -> bool;
    /// The facets to update for `path`, if wanted.
    fn facets(&mut self, path: &str) -> Option<&mut FieldFacets>;
}

struct OneField<'t> {
    target: &'t str,
    facets: FieldFacets,
}

impl Sink for OneField<'_> {
    fn wants(&self, path: &str) -> bool {
        // An empty key vanishes from the paths below it (see `join`), so it cannot be pruned.
        path.is_empty()
            || self
                .target
                .strip_prefix(path)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
    }

    fn facets(&mut self, path: &str) -> Option<&mut FieldFacets> {
        (path == self.target).then_some(&mut self.facets)
    }
}

struct AllFields {
    fields: BTreeMap<String, FieldFacets>,
}

impl Sink for AllFields {
    fn wants(&self, _path: &str) -> bool {
        true
    }

    fn facets(&mut self, path: &str) -> Option<&mut FieldFacets> {
        Some(self.fields.entry(path.to_owned()).or_default())
    }
}

/// Meilisearch's path joining: a key under an empty base is the key alone.
fn join(base: &str, key: &str) -> String {
    if base.is_empty() {
        key.to_owned()
    } else {
        format!("{base}.{key}")
    }
}

fn walk_document(doc: &Map<String, Json>, sink: &mut impl Sink) {
    for (key, value) in doc {
        if key != "_geo" && key != "_vectors" {
            visit_key(key.clone(), value, sink);
        }
    }
    if let Some((lat, lng)) = geo_point_of(doc) {
        for (path, coordinate) in [("_geo.lat", lat), ("_geo.lng", lng)] {
            if sink.wants(path) {
                record(sink, path, Depth::OnKey, &Json::from(coordinate));
            }
        }
    }
}

/// `value` is the value of the object key whose full path is `path`.
fn visit_key(path: String, value: &Json, sink: &mut impl Sink) {
    if !sink.wants(&path) {
        return;
    }
    record(sink, &path, Depth::OnKey, value);
    match value {
        Json::Object(map) => walk_object(map, &path, Depth::OnKey, sink),
        Json::Array(items) => walk_array(items, &path, Depth::OnKey, sink),
        _ => {}
    }
}

fn walk_object(map: &Map<String, Json>, base: &str, depth: Depth, sink: &mut impl Sink) {
    if map.is_empty() {
        record(sink, base, depth, &Json::Object(Map::new()));
    }
    for (key, value) in map {
        visit_key(join(base, key), value, sink);
    }
}

fn walk_array(items: &[Json], base: &str, depth: Depth, sink: &mut impl Sink) {
    if items.is_empty() {
        record(sink, base, depth, &Json::Array(Vec::new()));
    }
    for item in items {
        match item {
            Json::Object(map) => walk_object(map, base, Depth::InArray, sink),
            Json::Array(inner) => walk_array(inner, base, Depth::InArray, sink),
            scalar => record(sink, base, Depth::InArray, scalar),
        }
    }
}

/// What Meilisearch's `facet_fn_with_options` stores for one value met at `path`.
fn record(sink: &mut impl Sink, path: &str, depth: Depth, value: &Json) {
    let Some(facets) = sink.facets(path) else {
        return;
    };
    facets.exists = true;
    let on_key = depth == Depth::OnKey;
    match value {
        Json::Number(n) => {
            if let Some(n) = n.as_f64() {
                facets.values.push(FacetValue::Number(canonical_number(n)));
            }
        }
        Json::String(s) if !s.is_empty() => facets.values.push(FacetValue::String {
            normalized: normalize_str(s),
            original: s.clone(),
        }),
        Json::Bool(b) => facets.values.push(FacetValue::Bool(*b)),
        Json::Null if on_key => facets.is_null = true,
        Json::String(_) if on_key => facets.is_empty = true,
        Json::Array(items) if on_key && items.is_empty() => facets.is_empty = true,
        Json::Object(map) if on_key && map.is_empty() => facets.is_empty = true,
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn strings(doc: &Json, path: &str) -> Vec<String> {
        field_facets(doc, path)
            .strings()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn normalize_trims_decomposes_and_lowercases() {
        assert_eq!(normalize_str("  Hello World "), "hello world");
        assert_eq!(normalize_str("Café"), "cafe\u{301}");
        assert_eq!(normalize_str("cafe\u{301}"), normalize_str("CAFÉ"));
        assert_ne!(normalize_str("café"), normalize_str("cafe"));
        assert_eq!(normalize_str("ﬁ①"), "fi1");
        assert_eq!(normalize_str("ΣΑΣ"), "σας");
    }

    #[test]
    fn nested_paths_reach_through_objects_and_arrays() {
        let doc =
            json!({"a": [{"b": 1}, {"b": [2, "Two"]}, 3], "a.b": true, "c": {"d": {"e": "x"}}});
        let facets = field_facets(&doc, "a.b");
        assert_eq!(facets.numbers().collect::<Vec<_>>(), vec![1.0, 2.0]);
        assert_eq!(facets.strings().collect::<Vec<_>>(), vec!["two", "true"]);
        assert_eq!(strings(&doc, "c.d.e"), vec!["x"]);
        assert!(field_facets(&doc, "c.d").exists);
        assert!(field_facets(&doc, "c").values.is_empty());
        assert!(!field_facets(&doc, "c.d.e.f").exists);
        assert!(!field_facets(&doc, "c.").exists);
        assert_eq!(
            field_facets(&doc, "a").numbers().collect::<Vec<_>>(),
            vec![3.0]
        );
    }

    #[test]
    fn null_and_empty_count_only_as_the_value_of_a_key() {
        // The ten documents of Meilisearch PR #3571's specification of IS NULL / IS EMPTY.
        let cases = [
            (json!(null), true, true, false),
            (json!([null]), true, false, false),
            (json!([]), true, false, true),
            (json!(["hello", "world"]), true, false, false),
            (json!([""]), true, false, false),
            (json!({}), true, false, true),
            (json!({"t1": "v1"}), true, false, false),
            (json!({"t1": ""}), true, false, false),
            (json!(""), true, false, true),
        ];
        for (tags, exists, is_null, is_empty) in cases {
            let facets = field_facets(&json!({"name": "A", "tags": tags}), "tags");
            assert_eq!(
                (facets.exists, facets.is_null, facets.is_empty),
                (exists, is_null, is_empty),
                "{tags}"
            );
        }
        assert_eq!(
            field_facets(&json!({"name": "A"}), "tags"),
            FieldFacets::default()
        );
        let nested = json!({"a": [{"b": null}, {"c": []}], "d": [[], {}]});
        assert!(field_facets(&nested, "a.b").is_null);
        assert!(field_facets(&nested, "a.c").is_empty);
        let d = field_facets(&nested, "d");
        assert!(d.exists && !d.is_empty);
    }

    #[test]
    fn strings_are_not_numbers_and_zero_is_canonical() {
        let doc = json!({"p": ["10", -0.0, 1e300, "  "]});
        let facets = field_facets(&doc, "p");
        assert_eq!(
            facets.numbers().map(f64::to_bits).collect::<Vec<_>>(),
            vec![0.0f64.to_bits(), 1e300f64.to_bits()]
        );
        assert_eq!(facets.strings().collect::<Vec<_>>(), vec!["10", ""]);
        assert_eq!(
            facet_values(&json!({"p": null}), "p"),
            vec![FacetValue::Null]
        );
    }

    #[test]
    fn empty_keys_vanish_from_paths() {
        let doc = json!({"": {"a": 1}, "b": {"": 2}});
        assert_eq!(
            field_facets(&doc, "a").numbers().collect::<Vec<_>>(),
            vec![1.0]
        );
        assert_eq!(
            field_facets(&doc, "b.").numbers().collect::<Vec<_>>(),
            vec![2.0]
        );
        assert!(field_facets(&doc, "").exists);
    }

    #[test]
    fn document_facets_agree_with_field_facets() {
        let doc = json!({"a": [{"b": 1}, [null, {"c": {}}]], "a.b": "X", "e": "", "": {"f": []}});
        let all = document_facets(&doc);
        assert_eq!(
            all.keys().map(String::as_str).collect::<Vec<_>>(),
            vec!["", "a", "a.b", "a.c", "e", "f"]
        );
        for (path, facets) in &all {
            assert_eq!(&field_facets(&doc, path), facets, "{path}");
        }
        assert!(document_facets(&json!([1, 2])).is_empty());
    }

    #[test]
    fn reserved_fields_give_only_the_geo_coordinates() {
        let doc = json!({"_geo": {"lat": "45.5", "lng": -0.0}, "_vectors": {"e": [1.0]}, "x": 1});
        assert_eq!(
            field_facets(&doc, "_geo.lat").numbers().collect::<Vec<_>>(),
            vec![45.5]
        );
        let lng = field_facets(&doc, "_geo.lng");
        assert_eq!(
            lng.numbers().map(f64::to_bits).collect::<Vec<_>>(),
            vec![0.0f64.to_bits()]
        );
        assert!(!field_facets(&doc, "_geo").exists);
        assert!(!field_facets(&doc, "_vectors.e").exists);
        let all = document_facets(&doc);
        assert_eq!(
            all.keys().map(String::as_str).collect::<Vec<_>>(),
            vec!["_geo.lat", "_geo.lng", "x"]
        );
        assert!(document_facets(&json!({"_geo": {"lat": "north", "lng": 1}})).is_empty());
    }

    #[test]
    fn geo_point_accepts_numbers_and_numeric_strings() {
        assert_eq!(
            geo_point(&json!({"_geo": {"lat": 1.5, "lng": "-2"}})),
            Some((1.5, -2.0))
        );
        assert_eq!(geo_point(&json!({"_geo": {"lat": 1.5}})), None);
        assert_eq!(geo_point(&json!({"_geo": {"lat": "x", "lng": 0}})), None);
        assert_eq!(geo_point(&json!({"_geo": {"lat": "inf", "lng": 0}})), None);
        assert_eq!(geo_point(&json!({"_geo": null})), None);
        assert_eq!(geo_point(&json!({"geo": {"lat": 1, "lng": 2}})), None);
    }
}
