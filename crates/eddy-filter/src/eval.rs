//! The reference evaluator: whether one document satisfies a filter, with Meilisearch's
//! semantics. The engine's index must return exactly the documents this accepts.
//!
//! Conditions are decided on the attribute's [`FieldFacets`] (see [`crate::facet`]), following
//! milli's `search/facet/filter.rs` (`evaluate_operator`, `ValueBounds`):
//!
//! - `=` holds when a string value equals the normalized filter value, or when the filter value
//!   is a number and a numeric value equals it. `IN` is an `OR` of `=`.
//! - `>`, `>=`, `<`, `<=` and `TO` (both ends included) hold when a numeric value is in range
//!   (only when the filter bounds are numbers; for `TO`, both), or when a string value is in
//!   range of the normalized bounds, compared byte-wise. Both kinds are always tried:
//!   `price > 10` also matches `{"price": "9"}` because `"9" > "10"` as strings.
//! - `!=`, `NOT IN`, `NOT EXISTS`, `IS NOT NULL`, `IS NOT EMPTY` and `NOT` are complements over
//!   all documents, so they match documents that lack the attribute.
//! - `EXISTS`, `IS NULL`, `IS EMPTY` read the facets' flags.
//! - `_geoRadius` holds when the haversine distance from the center to the document's `_geo`
//!   is at most the radius (plus `f64::EPSILON`); `_geoBoundingBox` when the latitude is within
//!   `[bottom, top]` and the longitude within `[left, right]`, or, when `right < left`, within
//!   `[left, 180]` or `[-180, right]`. Documents without a valid `_geo` match neither.

use std::ops::Bound;

use serde_json::Value as Json;

use crate::ast::{Condition, Filter, Value};
use crate::facet::{FieldFacets, field_facets, geo_point};

/// Earth radius used by Meilisearch's distances (the `geoutils` crate's haversine), in meters.
pub const EARTH_RADIUS_M: f64 = 6_371_000.0;

/// Whether `doc` satisfies `filter`.
///
/// Recursion follows the tree, whose depth [`crate::parse`] bounds; a tree built by hand
/// should stay within a few thousand levels.
pub fn matches(filter: &Filter, doc: &Json) -> bool {
    match filter {
        Filter::And(items) => items.iter().all(|item| matches(item, doc)),
        Filter::Or(items) => items.iter().any(|item| matches(item, doc)),
        Filter::Not(inner) => !matches(inner, doc),
        Filter::Condition { attribute, op } => condition_matches(op, &field_facets(doc, attribute)),
        Filter::GeoRadius { lat, lng, radius_m } => {
            geo_point(doc).is_some_and(|point| geo_radius_contains((*lat, *lng), *radius_m, point))
        }
        Filter::GeoBoundingBox {
            top_right,
            bottom_left,
        } => geo_point(doc)
            .is_some_and(|point| geo_bounding_box_contains(*top_right, *bottom_left, point)),
    }
}

/// Whether an attribute with facets `facets` satisfies `op`.
pub fn condition_matches(op: &Condition, facets: &FieldFacets) -> bool {
    use Bound::{Excluded, Included, Unbounded};
    match op {
        Condition::Equal(v) => equals(v, facets),
        Condition::NotEqual(v) => !equals(v, facets),
        Condition::In(values) => values.iter().any(|v| equals(v, facets)),
        Condition::NotIn(values) => !values.iter().any(|v| equals(v, facets)),
        Condition::GreaterThan(v) => in_range(facets, Excluded(v), Unbounded),
        Condition::GreaterThanOrEqual(v) => in_range(facets, Included(v), Unbounded),
        Condition::LowerThan(v) => in_range(facets, Unbounded, Excluded(v)),
        Condition::LowerThanOrEqual(v) => in_range(facets, Unbounded, Included(v)),
        Condition::Between { from, to } => in_range(facets, Included(from), Included(to)),
        Condition::Exists => facets.exists,
        Condition::NotExists => !facets.exists,
        Condition::IsNull => facets.is_null,
        Condition::IsNotNull => !facets.is_null,
        Condition::IsEmpty => facets.is_empty,
        Condition::IsNotEmpty => !facets.is_empty,
    }
}

fn equals(v: &Value, facets: &FieldFacets) -> bool {
    let normalized = v.normalized();
    facets.strings().any(|s| s == normalized)
        || v.number.is_some_and(|n| facets.numbers().any(|x| x == n))
}

/// Whether a numeric value lies within the numeric bounds (when every given bound is a
/// number) or a string value within the normalized bounds.
fn in_range(facets: &FieldFacets, low: Bound<&Value>, high: Bound<&Value>) -> bool {
    let number = |b: Bound<&Value>| match b {
        Bound::Included(v) => v.number.map(Bound::Included),
        Bound::Excluded(v) => v.number.map(Bound::Excluded),
        Bound::Unbounded => Some(Bound::Unbounded),
    };
    if let (Some(low), Some(high)) = (number(low), number(high))
        && facets
            .numbers()
            .any(|x| within(&x, low.as_ref(), high.as_ref()))
    {
        return true;
    }
    let string = |b: Bound<&Value>| b.map(Value::normalized);
    let (low, high) = (string(low), string(high));
    facets.strings().any(|s| {
        within(
            s,
            low.as_ref().map(String::as_str),
            high.as_ref().map(String::as_str),
        )
    })
}

fn within<T: PartialOrd + ?Sized>(x: &T, low: Bound<&T>, high: Bound<&T>) -> bool {
    let above = match low {
        Bound::Included(l) => x >= l,
        Bound::Excluded(l) => x > l,
        Bound::Unbounded => true,
    };
    let below = match high {
        Bound::Included(h) => x <= h,
        Bound::Excluded(h) => x < h,
        Bound::Unbounded => true,
    };
    above && below
}

/// Great-circle distance in meters between two points given in degrees, by the haversine
/// formula on a sphere of [`EARTH_RADIUS_M`], rounded to the millimeter, as Meilisearch's
/// `distance_between_two_points` (which calls `geoutils`). The haversine is clamped to 1 so
/// antipodal points give half the circumference rather than NaN.
pub fn geo_distance_m(lat1: f64, lng1: f64, lat2: f64, lng2: f64) -> f64 {
    let haversine = |angle: f64| (1.0 - angle.cos()) / 2.0;
    let (phi1, phi2) = (lat1.to_radians(), lat2.to_radians());
    let delta_lambda = lng2.to_radians() - lng1.to_radians();
    let h = haversine(phi2 - phi1) + phi1.cos() * phi2.cos() * haversine(delta_lambda);
    let meters = 2.0 * EARTH_RADIUS_M * h.clamp(0.0, 1.0).sqrt().asin();
    (meters * 1000.0).round() / 1000.0
}

/// Whether `point` (lat, lng) is within `radius_m` of `center`, as `_geoRadius` decides.
pub fn geo_radius_contains(center: (f64, f64), radius_m: f64, point: (f64, f64)) -> bool {
    geo_distance_m(center.0, center.1, point.0, point.1) <= radius_m + f64::EPSILON
}

/// Whether `point` (lat, lng) is inside the box, as `_geoBoundingBox` decides.
pub fn geo_bounding_box_contains(
    top_right: (f64, f64),
    bottom_left: (f64, f64),
    point: (f64, f64),
) -> bool {
    let (lat, lng) = point;
    let lat_ok = bottom_left.0 <= lat && lat <= top_right.0;
    let lng_ok = if top_right.1 < bottom_left.1 {
        (bottom_left.1 <= lng && lng <= 180.0) || (-180.0 <= lng && lng <= top_right.1)
    } else {
        bottom_left.1 <= lng && lng <= top_right.1
    };
    lat_ok && lng_ok
}

#[cfg(test)]
mod tests;
