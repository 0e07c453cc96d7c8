//! `_rankingScoreDetails` (`showRankingScoreDetails`): one entry per ranking rule eddy
//! applies, in the index's rule order, keyed as Meilisearch keys them.
//!
//! - `words`: `matchingWords` (matched under the matching strategy), `maxMatchingWords`,
//!   `score` (their ratio);
//! - `bm25` (eddy's rule): `score`, the BM25 score mapped into `0..1` as in `_rankingScore`;
//! - each sort expression (from `sort` or a custom rule such as `year:desc`): its `value` in
//!   the document, and for `_geoPoint(…)` the point and its `distance` in meters.
//!
//! eddy ranks by BM25 where Meilisearch has its `typo`, `proximity`, `attribute` and
//! `exactness` rules, so those get no entry; a placeholder search (no words) has no `words`
//! or `bm25` entry, as in Meilisearch.

use eddy_engine::{SearchHit, SearchRequest, Settings};
use serde_json::{Map, Value, json};

enum Rule {
    Words,
    Bm25,
    Sort(String),
}

/// What the details of every hit of one search are built from.
pub struct Details {
    rules: Vec<Rule>,
    max_words: u32,
}

impl Details {
    /// The rules `request` is ranked by under `settings`.
    pub fn new(settings: &Settings, request: &SearchRequest) -> Details {
        let parsed = eddy_engine::search::parse(request, settings);
        let placeholder = parsed.is_placeholder();
        let mut rules = Vec::new();
        for rule in &settings.ranking_rules {
            match rule.as_str() {
                "words" if !placeholder => rules.push(Rule::Words),
                "bm25" if !placeholder => rules.push(Rule::Bm25),
                "sort" => rules.extend(request.sort.iter().cloned().map(Rule::Sort)),
                custom if custom.ends_with(":asc") || custom.ends_with(":desc") => {
                    rules.push(Rule::Sort(custom.to_string()));
                }
                _ => {}
            }
        }
        Details {
            rules,
            max_words: u32::try_from(parsed.terms.len().max(1)).unwrap_or(u32::MAX),
        }
    }

    /// The details of one hit.
    pub fn of(&self, hit: &SearchHit) -> Value {
        let mut out = Map::new();
        for (order, rule) in self.rules.iter().enumerate() {
            let (key, entry) = match rule {
                Rule::Words => {
                    let matching = hit.matching_words.min(self.max_words);
                    (
                        "words".to_string(),
                        json!({
                            "order": order,
                            "matchingWords": matching,
                            "maxMatchingWords": self.max_words,
                            "score": f64::from(matching) / f64::from(self.max_words),
                        }),
                    )
                }
                Rule::Bm25 => {
                    let bm25 = f64::from(hit.score.max(0.0));
                    (
                        "bm25".to_string(),
                        json!({"order": order, "score": bm25 / (bm25 + 1.0)}),
                    )
                }
                Rule::Sort(expr) => (expr.clone(), sort_entry(order, expr, hit)),
            };
            out.insert(key, entry);
        }
        Value::Object(out)
    }
}

fn sort_entry(order: usize, expr: &str, hit: &SearchHit) -> Value {
    let mut entry = Map::new();
    entry.insert("order".into(), json!(order));
    let attribute = expr.rsplit_once(':').map_or(expr, |(a, _)| a);
    if attribute.starts_with("_geoPoint(") {
        if let Some(geo) = hit.document.get("_geo") {
            entry.insert("value".into(), geo.clone());
        }
        if let Some(d) = hit.geo_distance {
            entry.insert("distance".into(), json!(d));
        }
    } else if let Some(v) = value_at(&hit.document, attribute) {
        entry.insert("value".into(), v.clone());
    }
    Value::Object(entry)
}

/// The value at a dotted path (`a.b` as nested objects, or a key with a dot in it).
fn value_at<'a>(doc: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = doc.get(path) {
        return Some(v);
    }
    let (head, rest) = path.split_once('.')?;
    match doc.get(head)? {
        Value::Object(inner) => value_at(inner, rest),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_at_dotted_paths() {
        let doc = json!({"a": {"b": 1}, "c.d": 2, "e": 3});
        let doc = doc.as_object().unwrap();
        assert_eq!(value_at(doc, "a.b"), Some(&json!(1)));
        assert_eq!(value_at(doc, "c.d"), Some(&json!(2)));
        assert_eq!(value_at(doc, "e"), Some(&json!(3)));
        assert_eq!(value_at(doc, "a.x"), None);
        assert_eq!(value_at(doc, "e.f"), None);
    }
}
