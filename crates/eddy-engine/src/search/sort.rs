//! Sorting by document values: the `sort` search parameter, custom `attr:asc|desc` ranking
//! rules and `_geoPoint(lat, lng)` distances, with Meilisearch's ordering.
//!
//! A document's key for an attribute comes from its facet values ([`eddy_filter::facet_values`],
//! the same extraction filters use): ascending uses its smallest value, descending its
//! largest. Numbers come before strings (normalized, compared byte-wise; booleans are the
//! strings `true`/`false`) in both directions, and documents without a value come last in
//! both directions, as milli's sort criterion does.

use std::cmp::Ordering;

use eddy_filter::{FacetValue, FieldFacets, field_facets, geo_distance_m, geo_point};
use serde_json::Value;

use super::filter::is_sortable;
use crate::error::{Code, Error, Result};
use crate::settings::Settings;

/// What to sort on.
#[derive(Debug, Clone, PartialEq)]
pub enum SortField {
    /// A dotted attribute path.
    Attribute(String),
    /// Distance from a point (`_geoPoint(lat, lng)`).
    Geo {
        /// Latitude.
        lat: f64,
        /// Longitude.
        lng: f64,
    },
}

/// One sort criterion.
#[derive(Debug, Clone, PartialEq)]
pub struct SortCriterion {
    /// The field.
    pub field: SortField,
    /// Ascending or descending.
    pub ascending: bool,
}

/// A document's value for one criterion.
#[derive(Debug, Clone, PartialEq)]
pub enum SortKey {
    /// A number (or a distance in meters).
    Number(f64),
    /// A normalized string.
    Text(String),
    /// No value: sorts last.
    Missing,
}

fn invalid(message: String) -> Error {
    Error::InvalidSearch {
        code: Code::InvalidSearchSort,
        message,
    }
}

/// Parses one `attr:asc|desc` or `_geoPoint(lat, lng):asc|desc` expression.
///
/// # Errors
/// `invalid_search_sort` worded as Meilisearch words it.
pub fn parse_criterion(expr: &str) -> Result<SortCriterion> {
    let syntax = || {
        invalid(format!(
            "Invalid syntax for the sort parameter: expected expression ending by `:asc` or `:desc`, found `{expr}`."
        ))
    };
    let (name, direction) = expr.rsplit_once(':').ok_or_else(syntax)?;
    let ascending = match direction {
        "asc" => true,
        "desc" => false,
        _ => return Err(syntax()),
    };
    let name = name.trim();
    if name.is_empty() {
        return Err(syntax());
    }
    if let Some(rest) = name.strip_prefix("_geoPoint(") {
        let geo_error = || {
            invalid(format!(
                "Invalid syntax for the geo parameter: expected expression formatted like `_geoPoint(latitude, longitude)` and ending by `:asc` or `:desc`, found `{name}`."
            ))
        };
        let inner = rest.strip_suffix(')').ok_or_else(geo_error)?;
        let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
        let [lat, lng] = parts[..] else {
            return Err(geo_error());
        };
        let lat: f64 = lat.parse().map_err(|_| geo_error())?;
        let lng: f64 = lng.parse().map_err(|_| geo_error())?;
        if !(-90.0..=90.0).contains(&lat) {
            return Err(invalid(
                "Latitude must be contained between -90 and 90 degrees.".into(),
            ));
        }
        if !(-180.0..=180.0).contains(&lng) {
            return Err(invalid(
                "Longitude must be contained between -180 and 180 degrees.".into(),
            ));
        }
        return Ok(SortCriterion {
            field: SortField::Geo { lat, lng },
            ascending,
        });
    }
    if matches!(
        name,
        "_geo" | "_geoDistance" | "_geoRadius" | "_geoBoundingBox" | "_geoPoint"
    ) || name.starts_with("_geoRadius(")
        || name.starts_with("_geoBoundingBox(")
    {
        let hint = if name == "_geo" {
            " Use the _geoPoint(latitude, longitude) built-in rule to sort on _geo field coordinates."
        } else {
            ""
        };
        return Err(invalid(format!(
            "`{name}` is a reserved keyword and thus can't be used as a sort expression.{hint}"
        )));
    }
    Ok(SortCriterion {
        field: SortField::Attribute(name.to_string()),
        ascending,
    })
}

/// Parses and checks the `sort` parameter: syntax, sortable attributes, and the `sort`
/// ranking rule.
///
/// # Errors
/// `invalid_search_sort`.
pub fn parse_sort(items: &[String], settings: &Settings) -> Result<Vec<SortCriterion>> {
    let out = parse_sortable(items, settings)?;
    if !out.is_empty() && !settings.ranking_rules.iter().any(|r| r == "sort") {
        return Err(invalid(
            "You must specify where `sort` is listed in the rankingRules setting to use the sort parameter at search time.".into(),
        ));
    }
    Ok(out)
}

/// Parses `sort` for the documents routes: `invalid_document_sort`, sortable attributes
/// needed, no ranking rule involved.
///
/// # Errors
/// `invalid_document_sort`.
pub fn parse_document_sort(items: &[String], settings: &Settings) -> Result<Vec<SortCriterion>> {
    parse_sortable(items, settings).map_err(|e| Error::InvalidSearch {
        code: Code::InvalidDocumentSort,
        message: e.to_string(),
    })
}

fn parse_sortable(items: &[String], settings: &Settings) -> Result<Vec<SortCriterion>> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let c = parse_criterion(item)?;
        let attribute = match &c.field {
            SortField::Attribute(a) => a.as_str(),
            SortField::Geo { .. } => "_geo",
        };
        if !is_sortable(settings, attribute) {
            let mut valid: Vec<&str> = settings
                .sortable_attributes
                .iter()
                .map(String::as_str)
                .collect();
            valid.sort_unstable();
            let tail = if valid.is_empty() {
                "This index does not have configured sortable attributes.".to_string()
            } else {
                format!("Available sortable attributes are: `{}`.", valid.join(", "))
            };
            return Err(invalid(format!(
                "Attribute `{attribute}` is not sortable. {tail}"
            )));
        }
        out.push(c);
    }
    Ok(out)
}

/// The key of a document for a criterion.
pub fn key_of(doc: &Value, criterion: &SortCriterion) -> SortKey {
    let facets = match &criterion.field {
        SortField::Attribute(path) => field_facets(doc, path),
        SortField::Geo { .. } => FieldFacets::default(),
    };
    key_of_values(&facets, geo_point(doc), criterion)
}

/// The key for a criterion from the attribute's facets (attribute criteria) or the
/// document's `_geo` point (`_geoPoint` criteria).
pub fn key_of_values(
    facets: &FieldFacets,
    geo: Option<(f64, f64)>,
    criterion: &SortCriterion,
) -> SortKey {
    match &criterion.field {
        SortField::Geo { lat, lng } => match geo {
            Some((plat, plng)) => SortKey::Number(geo_distance_m(*lat, *lng, plat, plng)),
            None => SortKey::Missing,
        },
        SortField::Attribute(_) => {
            let values = &facets.values;
            let numbers = values.iter().filter_map(FacetValue::as_number);
            let best_number = if criterion.ascending {
                numbers.reduce(f64::min)
            } else {
                numbers.reduce(f64::max)
            };
            if let Some(n) = best_number {
                return SortKey::Number(n);
            }
            let strings = values.iter().filter_map(FacetValue::as_facet_str);
            let best = if criterion.ascending {
                strings.min()
            } else {
                strings.max()
            };
            best.map_or(SortKey::Missing, |s| SortKey::Text(s.to_string()))
        }
    }
}

/// Orders two keys for a direction: numbers, then strings, then missing values.
pub fn compare(a: &SortKey, b: &SortKey, ascending: bool) -> Ordering {
    let class = |k: &SortKey| match k {
        SortKey::Number(_) => 0,
        SortKey::Text(_) => 1,
        SortKey::Missing => 2,
    };
    let by_class = class(a).cmp(&class(b));
    if by_class != Ordering::Equal {
        return by_class;
    }
    let within = match (a, b) {
        (SortKey::Number(x), SortKey::Number(y)) => x.total_cmp(y),
        (SortKey::Text(x), SortKey::Text(y)) => x.as_bytes().cmp(y.as_bytes()),
        _ => Ordering::Equal,
    };
    if ascending { within } else { within.reverse() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_expressions() {
        assert_eq!(
            parse_criterion("price:desc").unwrap(),
            SortCriterion {
                field: SortField::Attribute("price".into()),
                ascending: false
            }
        );
        assert_eq!(
            parse_criterion("_geoPoint(48.8, 2.35):asc").unwrap().field,
            SortField::Geo {
                lat: 48.8,
                lng: 2.35
            }
        );
        for bad in ["price", "price:up", ":asc", "_geo:asc", "_geoPoint(1):asc"] {
            let e = parse_criterion(bad).unwrap_err();
            assert_eq!(e.code(), Code::InvalidSearchSort, "{bad}");
        }
        assert!(
            parse_criterion("_geoPoint(100, 0):asc")
                .unwrap_err()
                .to_string()
                .contains("Latitude")
        );
    }

    #[test]
    fn keys_order_numbers_strings_missing() {
        let asc = parse_criterion("x:asc").unwrap();
        let desc = parse_criterion("x:desc").unwrap();
        let docs = [
            json!({"x": 3}),
            json!({"x": "b"}),
            json!({}),
            json!({"x": [10, 1]}),
            json!({"x": "A"}),
        ];
        let order = |c: &SortCriterion| {
            let mut idx: Vec<usize> = (0..docs.len()).collect();
            idx.sort_by(|&i, &j| compare(&key_of(&docs[i], c), &key_of(&docs[j], c), c.ascending));
            idx
        };
        assert_eq!(order(&asc), vec![3, 0, 4, 1, 2]);
        assert_eq!(order(&desc), vec![3, 0, 1, 4, 2]);
    }

    #[test]
    fn sort_needs_sortable_attributes_and_the_rule() {
        let Value::Object(m) = json!({"sortableAttributes": ["price"]}) else {
            unreachable!()
        };
        let s = Settings::default().patched(&m).unwrap();
        assert!(parse_sort(&["price:asc".into()], &s).is_ok());
        let e = parse_sort(&["title:asc".into()], &s).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Attribute `title` is not sortable. Available sortable attributes are: `price`."
        );
        let Value::Object(m) = json!({"rankingRules": ["words"]}) else {
            unreachable!()
        };
        let s = s.patched(&m).unwrap();
        assert!(parse_sort(&["price:asc".into()], &s).is_err());
    }
}
