//! Index settings, in Meilisearch's shape and with its defaults.
//!
//! Settings are stored whole (after every update) in the metadata store, and every settings
//! update is a write-ahead-log record, so replaying the log rebuilds them exactly.
//!
//! A patch follows Meilisearch: a field absent from the patch keeps its value, a field set to
//! `null` goes back to its default, and the objects `typoTolerance`, `faceting` and
//! `pagination` are merged one level deep.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Code, Error, Result};

/// Meilisearch's default ranking rules.
pub const DEFAULT_RANKING_RULES: [&str; 7] = [
    "words",
    "typo",
    "proximity",
    "attributeRank",
    "sort",
    "wordPosition",
    "exactness",
];

/// Every setting of an index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Settings {
    /// Attributes returned in documents; `["*"]` = all.
    pub displayed_attributes: Vec<String>,
    /// Attributes searched, in rank order; `["*"]` = all, in order of first appearance.
    pub searchable_attributes: Vec<String>,
    /// Attributes usable in filters and facets (strings, or Meilisearch's granular objects).
    pub filterable_attributes: Vec<Value>,
    /// Attributes usable in `sort`.
    pub sortable_attributes: Vec<String>,
    /// Ranking rules in order.
    pub ranking_rules: Vec<String>,
    /// Words ignored in queries.
    pub stop_words: Vec<String>,
    /// Characters that never separate words.
    pub non_separator_tokens: Vec<String>,
    /// Extra word separators.
    pub separator_tokens: Vec<String>,
    /// Strings always kept as one word.
    pub dictionary: Vec<String>,
    /// Word → equivalent words or phrases.
    pub synonyms: BTreeMap<String, Vec<String>>,
    /// At most one document per value of this attribute in results.
    pub distinct_attribute: Option<String>,
    /// `byWord` or `byAttribute`.
    pub proximity_precision: String,
    /// Typo tolerance.
    pub typo_tolerance: TypoTolerance,
    /// Facet limits and ordering.
    pub faceting: Faceting,
    /// Pagination limits.
    pub pagination: Pagination,
    /// Embedders, stored verbatim (eddy does no vector search yet).
    pub embedders: Map<String, Value>,
    /// Search time budget in milliseconds.
    pub search_cutoff_ms: Option<u64>,
    /// Locales per attribute pattern, stored verbatim.
    pub localized_attributes: Option<Vec<Value>>,
    /// Whether facet search is enabled.
    pub facet_search: bool,
    /// `indexingTime` or `disabled`.
    pub prefix_search: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            displayed_attributes: vec!["*".into()],
            searchable_attributes: vec!["*".into()],
            filterable_attributes: Vec::new(),
            sortable_attributes: Vec::new(),
            ranking_rules: DEFAULT_RANKING_RULES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            stop_words: Vec::new(),
            non_separator_tokens: Vec::new(),
            separator_tokens: Vec::new(),
            dictionary: Vec::new(),
            synonyms: BTreeMap::new(),
            distinct_attribute: None,
            proximity_precision: "byWord".into(),
            typo_tolerance: TypoTolerance::default(),
            faceting: Faceting::default(),
            pagination: Pagination::default(),
            embedders: Map::new(),
            search_cutoff_ms: None,
            localized_attributes: None,
            facet_search: true,
            prefix_search: "indexingTime".into(),
        }
    }
}

/// Typo tolerance settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TypoTolerance {
    /// Whether typos are tolerated at all.
    pub enabled: bool,
    /// Word lengths from which one and two typos are allowed.
    pub min_word_size_for_typos: MinWordSizeForTypos,
    /// Words matched exactly only.
    pub disable_on_words: Vec<String>,
    /// Attributes matched exactly only.
    pub disable_on_attributes: Vec<String>,
    /// Numbers matched exactly only.
    pub disable_on_numbers: bool,
}

impl Default for TypoTolerance {
    fn default() -> Self {
        TypoTolerance {
            enabled: true,
            min_word_size_for_typos: MinWordSizeForTypos::default(),
            disable_on_words: Vec::new(),
            disable_on_attributes: Vec::new(),
            disable_on_numbers: false,
        }
    }
}

/// Word lengths (in characters) from which typos are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct MinWordSizeForTypos {
    /// One typo from this length.
    pub one_typo: u8,
    /// Two typos from this length.
    pub two_typos: u8,
}

impl Default for MinWordSizeForTypos {
    fn default() -> Self {
        MinWordSizeForTypos {
            one_typo: 5,
            two_typos: 9,
        }
    }
}

/// Faceting settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Faceting {
    /// Values returned per facet.
    pub max_values_per_facet: usize,
    /// `alpha` or `count`, per facet name or `*`.
    pub sort_facet_values_by: BTreeMap<String, String>,
}

impl Default for Faceting {
    fn default() -> Self {
        Faceting {
            max_values_per_facet: 100,
            sort_facet_values_by: BTreeMap::from([("*".to_string(), "alpha".to_string())]),
        }
    }
}

/// Pagination settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Pagination {
    /// Most hits a search can reach through offset and limit.
    pub max_total_hits: usize,
}

impl Default for Pagination {
    fn default() -> Self {
        Pagination {
            max_total_hits: 1000,
        }
    }
}

const MERGED_OBJECTS: [&str; 3] = ["typoTolerance", "faceting", "pagination"];

fn code_for(field: &str) -> Code {
    match field {
        "displayedAttributes" => Code::InvalidSettingsDisplayedAttributes,
        "searchableAttributes" => Code::InvalidSettingsSearchableAttributes,
        "filterableAttributes" => Code::InvalidSettingsFilterableAttributes,
        "sortableAttributes" => Code::InvalidSettingsSortableAttributes,
        "rankingRules" => Code::InvalidSettingsRankingRules,
        "stopWords" => Code::InvalidSettingsStopWords,
        "nonSeparatorTokens" => Code::InvalidSettingsNonSeparatorTokens,
        "separatorTokens" => Code::InvalidSettingsSeparatorTokens,
        "dictionary" => Code::InvalidSettingsDictionary,
        "synonyms" => Code::InvalidSettingsSynonyms,
        "distinctAttribute" => Code::InvalidSettingsDistinctAttribute,
        "proximityPrecision" => Code::InvalidSettingsProximityPrecision,
        "typoTolerance" => Code::InvalidSettingsTypoTolerance,
        "faceting" => Code::InvalidSettingsFaceting,
        "pagination" => Code::InvalidSettingsPagination,
        "embedders" => Code::InvalidSettingsEmbedders,
        "searchCutoffMs" => Code::InvalidSettingsSearchCutoffMs,
        "localizedAttributes" => Code::InvalidSettingsLocalizedAttributes,
        "facetSearch" => Code::InvalidSettingsFacetSearch,
        "prefixSearch" => Code::InvalidSettingsPrefixSearch,
        _ => Code::BadRequest,
    }
}

impl Settings {
    /// Applies a patch (a JSON object of settings) and returns the new settings.
    pub fn patched(&self, patch: &Map<String, Value>) -> Result<Settings> {
        let defaults = serde_json::to_value(Settings::default()).map_err(Error::meta)?;
        let mut current = match serde_json::to_value(self).map_err(Error::meta)? {
            Value::Object(m) => m,
            _ => return Err(Error::meta("settings do not serialize to an object")),
        };
        for (key, value) in patch {
            let Some(default) = defaults.get(key) else {
                return Err(Error::InvalidSettings {
                    code: Code::BadRequest,
                    message: format!("Unknown field `{key}`: expected one of {}", known_fields()),
                });
            };
            let new_value = match value {
                Value::Null => default.clone(),
                Value::Object(inner) if MERGED_OBJECTS.contains(&key.as_str()) => {
                    let mut merged = match current.get(key) {
                        Some(Value::Object(m)) => m.clone(),
                        _ => Map::new(),
                    };
                    for (k, v) in inner {
                        let v = if v.is_null() {
                            default.get(k).cloned().unwrap_or(Value::Null)
                        } else {
                            v.clone()
                        };
                        merged.insert(k.clone(), v);
                    }
                    Value::Object(merged)
                }
                other => other.clone(),
            };
            // Validate each field on its own so the error names the right setting.
            let mut probe = Map::new();
            probe.insert(key.clone(), new_value.clone());
            if let Err(e) = serde_json::from_value::<Settings>(Value::Object(probe)) {
                return Err(Error::InvalidSettings {
                    code: code_for(key),
                    message: format!("Invalid value at `.{key}`: {e}"),
                });
            }
            current.insert(key.clone(), new_value);
        }
        let settings: Settings =
            serde_json::from_value(Value::Object(current)).map_err(|e| Error::InvalidSettings {
                code: Code::BadRequest,
                message: e.to_string(),
            })?;
        settings.validate()?;
        let mut settings = settings;
        // Meilisearch always lists the default order under `*`.
        settings
            .faceting
            .sort_facet_values_by
            .entry("*".to_string())
            .or_insert_with(|| "alpha".to_string());
        Ok(settings)
    }

    fn validate(&self) -> Result<()> {
        for rule in &self.ranking_rules {
            let ok = DEFAULT_RANKING_RULES.contains(&rule.as_str())
                || rule == "attribute"
                || rule == "bm25"
                || rule
                    .strip_suffix(":asc")
                    .or_else(|| rule.strip_suffix(":desc"))
                    .is_some_and(|attr| !attr.is_empty() && !attr.contains(' '));
            if !ok {
                return Err(Error::InvalidSettings {
                    code: Code::InvalidSettingsRankingRules,
                    message: format!(
                        "Invalid value at `.rankingRules[{}]`: `{rule}` ranking rule is invalid. Valid ranking rules are words, typo, sort, proximity, attribute, attributeRank, wordPosition, exactness, bm25 (eddy only) and custom ranking rules.",
                        self.ranking_rules
                            .iter()
                            .position(|r| r == rule)
                            .unwrap_or(0)
                    ),
                });
            }
        }
        let t = &self.typo_tolerance.min_word_size_for_typos;
        if t.one_typo > t.two_typos {
            return Err(Error::InvalidSettings {
                code: Code::InvalidSettingsTypoTolerance,
                message: "`minWordSizeForTypos` setting is invalid. `oneTypo` and `twoTypos` fields should be between `0` and `255`, and `twoTypos` should be greater or equals to `oneTypo` but found `oneTypo: ".to_string()
                    + &format!("{}` and twoTypos: {}`.", t.one_typo, t.two_typos),
            });
        }
        if let Some((facet, order)) = self
            .faceting
            .sort_facet_values_by
            .iter()
            .find(|(_, v)| !matches!(v.as_str(), "alpha" | "count"))
        {
            return Err(Error::InvalidSettings {
                code: Code::InvalidSettingsFaceting,
                message: format!(
                    "Unknown value `{order}` at `.faceting.sortFacetValuesBy.{facet}`: expected one of `alpha`, `count`"
                ),
            });
        }
        if !matches!(self.proximity_precision.as_str(), "byWord" | "byAttribute") {
            return Err(Error::InvalidSettings {
                code: Code::InvalidSettingsProximityPrecision,
                message: format!(
                    "Unknown value `{}` at `.proximityPrecision`: expected one of `byWord`, `byAttribute`",
                    self.proximity_precision
                ),
            });
        }
        if !matches!(self.prefix_search.as_str(), "indexingTime" | "disabled") {
            return Err(Error::InvalidSettings {
                code: Code::InvalidSettingsPrefixSearch,
                message: format!(
                    "Unknown value `{}` at `.prefixSearch`: expected one of `indexingTime`, `disabled`",
                    self.prefix_search
                ),
            });
        }
        Ok(())
    }

    /// Whether every attribute is searchable.
    pub fn searches_all(&self) -> bool {
        self.searchable_attributes.iter().any(|a| a == "*")
    }

    /// The rank of a flattened attribute path among searchable attributes, or `None` if the
    /// path is not searchable. With `["*"]`, the rank is given by `order_of_appearance`.
    pub fn searchable_rank(&self, path: &str, order_of_appearance: u32) -> Option<u32> {
        if self.searches_all() {
            return Some(order_of_appearance);
        }
        self.searchable_attributes
            .iter()
            .position(|a| {
                path == a
                    || path
                        .strip_prefix(a.as_str())
                        .is_some_and(|rest| rest.starts_with('.'))
            })
            .map(|i| i as u32)
    }
}

fn known_fields() -> String {
    match serde_json::to_value(Settings::default()) {
        Ok(Value::Object(m)) => m
            .keys()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patch(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn defaults_match_meilisearch() {
        let v = serde_json::to_value(Settings::default()).unwrap();
        assert_eq!(v["searchableAttributes"], json!(["*"]));
        assert_eq!(v["typoTolerance"]["minWordSizeForTypos"]["oneTypo"], 5);
        assert_eq!(v["pagination"]["maxTotalHits"], 1000);
        assert_eq!(v["faceting"]["maxValuesPerFacet"], 100);
        assert_eq!(v["rankingRules"][0], "words");
    }

    #[test]
    fn patch_sets_resets_and_merges() {
        let s = Settings::default()
            .patched(&patch(
                json!({"searchableAttributes": ["title"], "typoTolerance": {"enabled": false}}),
            ))
            .unwrap();
        assert_eq!(s.searchable_attributes, vec!["title"]);
        assert!(!s.typo_tolerance.enabled);
        assert_eq!(s.typo_tolerance.min_word_size_for_typos.one_typo, 5);
        let s = s
            .patched(&patch(json!({"searchableAttributes": null})))
            .unwrap();
        assert_eq!(s.searchable_attributes, vec!["*"]);
        assert!(!s.typo_tolerance.enabled);
    }

    #[test]
    fn invalid_values_name_the_setting() {
        let err = Settings::default()
            .patched(&patch(json!({"rankingRules": ["nope"]})))
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidSettingsRankingRules);
        let err = Settings::default()
            .patched(&patch(
                json!({"faceting": {"sortFacetValuesBy": {"genre": "size"}}}),
            ))
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidSettingsFaceting);
        let err = Settings::default()
            .patched(&patch(json!({"searchableAttributes": 3})))
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidSettingsSearchableAttributes);
        assert!(
            Settings::default()
                .patched(&patch(json!({"rankingRules": ["bm25", "price:desc"]})))
                .is_ok()
        );
    }

    #[test]
    fn searchable_rank_covers_nested_paths() {
        let s = Settings::default()
            .patched(&patch(json!({"searchableAttributes": ["title", "author"]})))
            .unwrap();
        assert_eq!(s.searchable_rank("title", 9), Some(0));
        assert_eq!(s.searchable_rank("author.name", 9), Some(1));
        assert_eq!(s.searchable_rank("authorx", 9), None);
        assert_eq!(Settings::default().searchable_rank("x", 4), Some(4));
    }
}
