//! Meilisearch's filter language: a parser, the filter tree, and a reference evaluator that
//! decides, document by document, what Meilisearch would return.
//!
//! The crate owns three things, and guarantees each matches Meilisearch:
//!
//! - **Syntax** ([`parse`], [`parse_json`]): the full grammar of the `filter` parameter, with
//!   Meilisearch's error messages and positions. Parsing never panics and never recurses more
//!   than [`MAX_FILTER_DEPTH`] levels, whatever the input.
//! - **Values** ([`field_facets`], [`document_facets`], [`normalize_str`], [`geo_point`]): what a
//!   document exposes to filters, extracted the way Meilisearch indexes facets. The engine
//!   indexes exactly these values, so filtering through its index and [`matches()`] agree.
//! - **Semantics** ([`matches()`], [`condition_matches`], [`geo_distance_m`]): which documents a
//!   filter selects.
//!
//! # Semantics, and where they come from
//!
//! Meilisearch's documentation decides; where it is silent or loose, its source does
//! (meilisearch/meilisearch, `crates/filter-parser` and milli). Checked:
//!
//! - *Grammar and keywords* — docs "Filter expression reference"; `filter-parser/src/lib.rs`,
//!   `condition.rs`, `value.rs`. Keywords (`AND OR NOT IN TO EXISTS IS NULL EMPTY`) are
//!   case-sensitive, uppercase: the parser compares whole words exactly, so `and` is a value.
//!   `AND` binds tighter than `OR`; `NOT` tighter than both. Unquoted values are runs of
//!   letters, digits, `_`, `-`, `.`; quoted ones use `'` or `"` with backslash escapes.
//! - *Arrays in JSON* — docs "Creating filter expressions with arrays", milli
//!   `Filter::from_json`: outer items are joined by `AND`, inner arrays by `OR`.
//! - *Geo* — docs "Geosearch": `_geoRadius(lat, lng, distance_in_meters)`;
//!   `_geoBoundingBox([lat, lng], [lat, lng])` takes the top-right corner, then the bottom-left.
//!   `_geo`, `_geoPoint`, `_geoDistance` are rejected. Distance: haversine on a 6,371 km
//!   sphere, rounded to the millimeter (milli `distance_between_two_points` → `geoutils`).
//!   Latitudes outside ±90, longitudes outside ±180 and a top below the bottom are errors
//!   (milli `BadGeoError`; eddy reports them when parsing).
//! - *Equality* — docs: "When operating on strings, `=` is case-insensitive"; milli compares
//!   `normalize_facet(value)` (trim, NFKD, lowercase: accents are kept, decomposed) with the
//!   normalized strings of the document, and the value read as a number with its numbers.
//!   Document strings are never read as numbers (milli `extract_facets.rs`); booleans are the
//!   strings `true`/`false`.
//! - *Comparisons and `TO`* — the reference page still calls them numeric, but since v1.15
//!   (meilisearch PR #5535, issue #5554, documentation issue #3254) they also compare strings
//!   lexicographically: milli normalizes the bounds and compares them byte-wise with the
//!   document's normalized strings (`ValueBounds`), alongside the numeric comparison, which
//!   only applies when the bounds are numbers. So `date > 2024` matches `"2024-11"` and `2025`.
//! - *Arrays in documents* — docs example `size = 0 OR size = 1`; milli indexes each element:
//!   a condition holds when any value satisfies it. `a.b` reaches into objects and arrays of
//!   objects, and a literal key `"a.b"` is the same path (milli `perm_json_p`).
//! - *Reserved fields* — milli's facet extraction skips `_geo` and `_vectors`; `_geo` only
//!   contributes the numbers `_geo.lat` and `_geo.lng` of a valid geo point
//!   (`extract_geo_document`).
//! - *Negations* — docs: "`!=` returns all documents not selected by the equality operator",
//!   "`NOT genres = horror` … documents with a missing `genres` field"; milli computes
//!   `NOT`, `!=`, `NOT IN` as complements of all documents.
//! - *`EXISTS`, `IS NULL`, `IS EMPTY`* — docs; Meilisearch PR #3571's specification, whose ten
//!   example documents are unit tests here: `IS NULL` and `IS EMPTY` see `null`, `""`, `[]`,
//!   `{}` only as the value of the attribute itself, not as array elements.
//!
//! # Differences from Meilisearch, on purpose
//!
//! - Operators are whole words: Meilisearch reads `x IS NULLABLE` as `x IS NULL` followed by
//!   junk ("Found unexpected characters…"); here it is "Was expecting an operation…".
//! - The nesting limit is [`MAX_FILTER_DEPTH`] levels of `(` and `NOT`.
//! - `CONTAINS`, `STARTS WITH` (experimental) and `_vectors` filters are not supported.
//! - Facet strings are not truncated to Meilisearch's key size; `-0` is stored as `0`.
//! - Geo argument ranges are checked when parsing, not when evaluating (same messages).

#![forbid(unsafe_code)]

mod ast;
mod error;
mod eval;
mod facet;
mod json;
mod parser;
mod syntax;

pub use ast::{Condition, Filter, Value};
pub use error::{FilterError, FilterErrorKind};
pub use eval::{
    EARTH_RADIUS_M, condition_matches, geo_bounding_box_contains, geo_distance_m,
    geo_radius_contains, matches,
};
pub use facet::{
    FacetValue, FieldFacets, document_facets, facet_values, field_facets, geo_point, normalize_str,
};
pub use json::{AttributeSpan, attribute_spans, parse_json};
pub use parser::MAX_FILTER_DEPTH;

/// Parses one filter string. `Ok(None)` when it is empty or only whitespace.
///
/// Never panics, whatever `filter` holds; suitable as a fuzz target.
///
/// # Errors
/// A [`FilterError`] worded and located like Meilisearch's `invalid_search_filter` messages.
pub fn parse(filter: &str) -> Result<Option<Filter>, FilterError> {
    Ok(parser::parse_located(filter)?.map(|parsed| parsed.filter))
}
