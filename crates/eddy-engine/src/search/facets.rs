//! Facet distribution and statistics over a set of documents.
//!
//! Values come from [`eddy_filter::facet_values`] (the extraction filters use): each
//! document counts once per distinct value of an attribute. Numbers are keyed by their
//! decimal form (`1995`, `7.5`), booleans by `true`/`false`, strings by their normalized form
//! and shown with the smallest original spelling met (deterministic whatever the order of
//! documents). `alpha` order lists numbers ascending, then strings by normalized form;
//! `count` order sorts by count, descending, ties in `alpha` order. `facetStats` gives
//! `min`/`max` of the numbers of each facet that has any.

use std::collections::BTreeMap;

use eddy_filter::{FacetValue, FieldFacets, field_facets};
use serde_json::{Map, Value, json};

use super::filter::{filterable_patterns, pattern_matches};
use crate::error::{Code, Error, Result};
use crate::settings::Settings;

#[derive(Default)]
struct Counts {
    numbers: BTreeMap<u64, (f64, u64)>,
    strings: BTreeMap<String, (String, u64)>,
}

/// Key ordering numbers like `f64::total_cmp`.
fn ordered_bits(n: f64) -> u64 {
    let bits = n.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// What makes two values of one document the same facet value.
#[derive(PartialEq)]
enum Key<'v> {
    Number(u64),
    Str(&'v str),
}

fn facet_key(v: &FacetValue) -> Option<Key<'_>> {
    match v {
        FacetValue::Number(n) => Some(Key::Number(ordered_bits(*n))),
        other => other.as_facet_str().map(Key::Str),
    }
}

/// Accumulates facet counts over documents.
pub struct FacetCounter {
    attributes: Vec<String>,
    counts: Vec<Counts>,
}

/// Resolves the `facets` parameter (`*` = every filterable attribute without wildcard).
///
/// # Errors
/// `invalid_search_facets` when an attribute is not filterable.
pub fn resolve_facets(facets: &[String], settings: &Settings) -> Result<Vec<String>> {
    let patterns = filterable_patterns(settings);
    let mut out: Vec<String> = Vec::new();
    let mut invalid = Vec::new();
    for f in facets {
        if f == "*" {
            for p in &patterns {
                if !p.contains('*') && !out.contains(p) {
                    out.push(p.clone());
                }
            }
            continue;
        }
        if patterns.iter().any(|p| pattern_matches(p, f)) {
            if !out.contains(f) {
                out.push(f.clone());
            }
        } else {
            invalid.push(f.as_str());
        }
    }
    if !invalid.is_empty() {
        let mut valid: Vec<&str> = patterns.iter().map(String::as_str).collect();
        valid.sort_unstable();
        let which = if invalid.len() == 1 {
            format!("attribute `{}` is not filterable.", invalid[0])
        } else {
            format!("attributes `{}` are not filterable.", invalid.join(", "))
        };
        let tail = if valid.is_empty() {
            "this index does not have configured filterable attributes.".to_string()
        } else {
            format!(
                "The available filterable attribute patterns are `{}`.",
                valid.join(", ")
            )
        };
        return Err(Error::InvalidSearch {
            code: Code::InvalidSearchFacets,
            message: format!("Invalid facet distribution, {which} {tail}"),
        });
    }
    Ok(out)
}

impl FacetCounter {
    /// A counter for these attributes.
    pub fn new(attributes: Vec<String>) -> FacetCounter {
        let counts = attributes.iter().map(|_| Counts::default()).collect();
        FacetCounter { attributes, counts }
    }

    /// Whether nothing is counted.
    pub fn is_empty(&self) -> bool {
        self.attributes.is_empty()
    }

    /// Counts one document.
    pub fn add(&mut self, doc: &Value) {
        let facets: Vec<FieldFacets> = self
            .attributes
            .iter()
            .map(|a| field_facets(doc, a))
            .collect();
        self.add_values(|i| &facets[i]);
    }

    /// Counts one document given the facets of attribute number `i` (in this counter's
    /// order).
    pub fn add_values<'f>(&mut self, facets_of: impl Fn(usize) -> &'f FieldFacets) {
        for (i, counts) in self.counts.iter_mut().enumerate() {
            let values = &facets_of(i).values;
            for (j, v) in values.iter().enumerate() {
                // Each value once per document: skip one met earlier in this document
                // (arrays are short; no allocation).
                let key = facet_key(v);
                if key.is_none() || values[..j].iter().any(|w| facet_key(w) == key) {
                    continue;
                }
                match v {
                    FacetValue::Number(n) => {
                        counts.numbers.entry(ordered_bits(*n)).or_insert((*n, 0)).1 += 1;
                    }
                    FacetValue::String {
                        normalized,
                        original,
                    } => match counts.strings.get_mut(normalized.as_str()) {
                        Some(e) => {
                            if original < &e.0 {
                                e.0.clone_from(original);
                            }
                            e.1 += 1;
                        }
                        None => {
                            counts
                                .strings
                                .insert(normalized.clone(), (original.clone(), 1));
                        }
                    },
                    FacetValue::Bool(b) => {
                        let s = if *b { "true" } else { "false" };
                        match counts.strings.get_mut(s) {
                            Some(e) => e.1 += 1,
                            None => {
                                counts.strings.insert(s.to_string(), (s.to_string(), 1));
                            }
                        }
                    }
                    FacetValue::Null => {}
                }
            }
        }
    }

    /// `facetDistribution` and `facetStats`. `max_values` overrides the settings'
    /// `maxValuesPerFacet`.
    pub fn finish(self, settings: &Settings, max_values: Option<usize>) -> (Value, Value) {
        let max = max_values.unwrap_or(settings.faceting.max_values_per_facet);
        let mut distribution = Map::new();
        let mut stats = Map::new();
        for (attr, counts) in self.attributes.into_iter().zip(self.counts) {
            let by_count = sort_order(settings, &attr) == "count";
            let mut entries: Vec<(String, u64)> = Vec::new();
            for (n, c) in counts.numbers.values() {
                entries.push((format_number(*n), *c));
            }
            if let (Some((min, _)), Some((maxv, _))) = (
                counts.numbers.values().next(),
                counts.numbers.values().next_back(),
            ) {
                stats.insert(attr.clone(), json!({"min": min, "max": maxv}));
            }
            for (original, c) in counts.strings.into_values() {
                entries.push((original, c));
            }
            if by_count {
                // Stable: ties keep alpha order.
                entries.sort_by_key(|e| std::cmp::Reverse(e.1));
            }
            entries.truncate(max);
            let values: Map<String, Value> =
                entries.into_iter().map(|(k, c)| (k, json!(c))).collect();
            distribution.insert(attr, Value::Object(values));
        }
        (Value::Object(distribution), Value::Object(stats))
    }
}

/// `alpha` or `count` for a facet, from `faceting.sortFacetValuesBy`.
pub fn sort_order<'a>(settings: &'a Settings, attribute: &str) -> &'a str {
    let by = &settings.faceting.sort_facet_values_by;
    by.get(attribute)
        .or_else(|| by.get("*"))
        .map_or("alpha", String::as_str)
}

/// A number as Meilisearch shows it as a facet value.
pub fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_value_once_per_document() {
        let mut c = FacetCounter::new(vec!["genre".into(), "year".into()]);
        c.add(&json!({"genre": ["Drama", "drama", "Comedy"], "year": 1999}));
        c.add(&json!({"genre": "Drama", "year": [2001.5, 1999]}));
        c.add(&json!({"genre": true}));
        let (dist, stats) = c.finish(&Settings::default(), None);
        assert_eq!(
            dist,
            json!({"genre": {"Comedy": 1, "Drama": 2, "true": 1}, "year": {"1999": 2, "2001.5": 1}})
        );
        assert_eq!(stats, json!({"year": {"min": 1999.0, "max": 2001.5}}));
        let keys: Vec<&String> = dist["genre"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["Comedy", "Drama", "true"]);
    }

    #[test]
    fn count_order_and_limit() {
        let Value::Object(m) =
            json!({"faceting": {"sortFacetValuesBy": {"*": "count"}, "maxValuesPerFacet": 2}})
        else {
            unreachable!()
        };
        let s = Settings::default().patched(&m).unwrap();
        let mut c = FacetCounter::new(vec!["g".into()]);
        for g in ["a", "b", "b", "c", "c", "c"] {
            c.add(&json!({"g": g}));
        }
        let (dist, _) = c.finish(&s, None);
        let keys: Vec<&String> = dist["g"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["c", "b"]);
    }
}

/// Whether a facet value matches a facet query: the folded value (lowercase, accents
/// removed) or one of its words starts with the folded query, or does so within the typo
/// budget of the query's length (1 typo from 5 characters, 2 from 9).
pub fn facet_query_matches(value: &str, query: &str) -> bool {
    let fold = |s: &str| -> String {
        crate::analysis::words(s)
            .map(|w| w.term)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let q = fold(query);
    if q.is_empty() {
        return true;
    }
    let v = fold(value);
    if v.starts_with(&q) || v.split(' ').any(|w| w.starts_with(&q)) {
        return true;
    }
    let qc: Vec<char> = q.chars().collect();
    let typos = match qc.len() {
        0..=4 => 0,
        5..=8 => 1,
        _ => 2,
    };
    if typos == 0 {
        return false;
    }
    let vc: Vec<char> = v.chars().collect();
    // The closest prefix of the value, within the budget.
    (qc.len().saturating_sub(typos)..=(qc.len() + typos).min(vc.len()))
        .any(|len| super::format::osa_distance(&qc, &vc[..len], typos) <= typos)
}

#[cfg(test)]
mod facet_query_tests {
    use super::facet_query_matches;

    #[test]
    fn prefix_words_accents_and_typos() {
        assert!(facet_query_matches("Science Fiction", "sci"));
        assert!(facet_query_matches("Science Fiction", "fict"));
        assert!(facet_query_matches("Émotion", "emo"));
        assert!(facet_query_matches("Adventure", "advemture"));
        assert!(!facet_query_matches("Adventure", "comedy"));
        assert!(!facet_query_matches("Drama", "dra ma x"));
    }
}
