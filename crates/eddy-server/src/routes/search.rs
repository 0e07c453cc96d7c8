//! `GET|POST /indexes/{uid}/search`.
//!
//! Both forms are parsed into one [`SearchQuery`]. Parameters of features that come in
//! later versions (filters, facets, sort, highlighting, cropping, distinct, vectors) are
//! accepted when they ask for nothing and refused with their own `invalid_search_*` code
//! otherwise, so a client never gets silently wrong results.

use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use eddy_engine::document::{select_fields, validate_index_uid};
use eddy_engine::{Code, Engine, MatchingStrategy, SearchRequest};
use serde_json::{Map, Value, json};

use crate::body;
use crate::error::ApiError;
use eddy_engine::search::format::{FormatOptions, Matcher, formatted, matches_position};

use super::documents::filter_param;
use crate::params::{self, QueryParams, is_blank, not_supported_yet};
use crate::state::AppState;

/// Meilisearch's default `limit` and `hitsPerPage`.
pub const DEFAULT_LIMIT: usize = 20;

/// Every parameter Meilisearch's search accepts (unknown ones are `bad_request`).
const KNOWN: [&str; 29] = [
    "q",
    "offset",
    "limit",
    "page",
    "hitsPerPage",
    "attributesToRetrieve",
    "retrieveVectors",
    "attributesToCrop",
    "cropLength",
    "cropMarker",
    "attributesToHighlight",
    "highlightPreTag",
    "highlightPostTag",
    "showMatchesPosition",
    "showRankingScore",
    "showRankingScoreDetails",
    "showPerformanceDetails",
    "filter",
    "sort",
    "distinct",
    "facets",
    "matchingStrategy",
    "attributesToSearchOn",
    "rankingScoreThreshold",
    "locales",
    "hybrid",
    "vector",
    "media",
    "personalize",
];

/// Features not supported yet: parameter, code, and what to call it in the message.
const LATER: [(&str, Code, &str); 3] = [
    ("hybrid", Code::BadRequest, "Hybrid search"),
    ("vector", Code::BadRequest, "Vector search"),
    ("media", Code::BadRequest, "Multimodal search"),
];

/// A validated search request.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    /// Query string.
    pub q: Option<String>,
    /// Offset (offset/limit mode).
    pub offset: usize,
    /// Limit (offset/limit mode).
    pub limit: usize,
    /// Page (page mode).
    pub page: Option<usize>,
    /// Hits per page (page mode).
    pub hits_per_page: Option<usize>,
    /// Attributes to return.
    pub attributes_to_retrieve: Option<Vec<String>>,
    /// Matching strategy.
    pub matching_strategy: MatchingStrategy,
    /// Whether hits carry `_rankingScore`.
    pub show_ranking_score: bool,
    /// Whether hits carry `_rankingScoreDetails`.
    pub show_ranking_score_details: bool,
    /// `filter` as given.
    pub filter: Option<Value>,
    /// `sort` expressions.
    pub sort: Vec<String>,
    /// `distinct` attribute.
    pub distinct: Option<String>,
    /// `facets` to count.
    pub facets: Option<Vec<String>>,
    /// `attributesToSearchOn`.
    pub attributes_to_search_on: Option<Vec<String>>,
    /// Highlighting and cropping.
    pub format: FormatOptions,
    /// Whether hits carry `_matchesPosition`.
    pub show_matches_position: bool,
    /// `rankingScoreThreshold`.
    pub ranking_score_threshold: Option<f64>,
}

fn threshold(value: Option<f64>, found: &str) -> Result<Option<f64>, ApiError> {
    match value {
        Some(t) if !(0.0..=1.0).contains(&t) => Err(ApiError::new(
            Code::InvalidSearchRankingScoreThreshold,
            format!(
                "Invalid value at `.rankingScoreThreshold`: the value of `rankingScoreThreshold` is invalid, expected a float between `0.0` and `1.0`, found {found}."
            ),
        )),
        other => Ok(other),
    }
}

/// Splits `attr:5` crop entries.
fn crop_entries(list: Vec<String>) -> Vec<(String, Option<usize>)> {
    list.into_iter()
        .map(|a| match a.rsplit_once(':') {
            Some((name, n)) if n.parse::<usize>().is_ok() => (name.to_string(), n.parse().ok()),
            _ => (a, None),
        })
        .collect()
}

/// Splits a `GET` sort list at commas outside parentheses (`_geoPoint(1, 2):asc`).
pub fn split_sort(raw: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut current = String::new();
    for c in raw.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth <= 0 => {
                if !current.trim().is_empty() {
                    out.push(current.trim().to_string());
                }
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_string());
    }
    out
}

fn strategy(value: &str, at: &str) -> Result<MatchingStrategy, ApiError> {
    match value {
        "last" => Ok(MatchingStrategy::Last),
        "all" => Ok(MatchingStrategy::All),
        // The engine has no frequency strategy yet; `last` is the closest behaviour.
        "frequency" => Ok(MatchingStrategy::Last),
        other => Err(ApiError::new(
            Code::InvalidSearchMatchingStrategy,
            format!(
                "Unknown value `{other}` at `{at}`: expected one of `last`, `all`, `frequency`"
            ),
        )),
    }
}

impl SearchQuery {
    /// Parses a `POST` body.
    ///
    /// # Errors
    /// `bad_request` for unknown fields, `invalid_search_*` for wrong values.
    pub fn from_json(value: Value) -> Result<SearchQuery, ApiError> {
        let map = params::object(value, &KNOWN)?;
        for (name, code, what) in LATER {
            if !is_blank(map.get(name)) && !asks_for_all(map.get(name)) {
                return Err(not_supported_yet(code, what));
            }
        }
        let defaults = FormatOptions::default();
        let format = FormatOptions {
            highlight: params::string_list_field(
                &map,
                "attributesToHighlight",
                Code::InvalidSearchAttributesToHighlight,
            )?
            .unwrap_or_default(),
            crop: crop_entries(
                params::string_list_field(
                    &map,
                    "attributesToCrop",
                    Code::InvalidSearchAttributesToCrop,
                )?
                .unwrap_or_default(),
            ),
            crop_length: params::usize_field(&map, "cropLength", Code::InvalidSearchCropLength)?
                .unwrap_or(defaults.crop_length),
            crop_marker: params::string_field(&map, "cropMarker", Code::InvalidSearchCropMarker)?
                .unwrap_or(defaults.crop_marker),
            pre_tag: params::string_field(
                &map,
                "highlightPreTag",
                Code::InvalidSearchHighlightPreTag,
            )?
            .unwrap_or(defaults.pre_tag),
            post_tag: params::string_field(
                &map,
                "highlightPostTag",
                Code::InvalidSearchHighlightPostTag,
            )?
            .unwrap_or(defaults.post_tag),
        };
        let sort = match map.get("sort") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => split_sort(s),
            Some(_) => params::string_list_field(&map, "sort", Code::InvalidSearchSort)?
                .unwrap_or_default(),
        };
        params::bool_field(&map, "retrieveVectors", Code::BadRequest)?;
        params::bool_field(&map, "showPerformanceDetails", Code::BadRequest)?;
        params::string_list_field(&map, "locales", Code::BadRequest)?;
        let matching_strategy = match params::string_field(
            &map,
            "matchingStrategy",
            Code::InvalidSearchMatchingStrategy,
        )? {
            Some(s) => strategy(&s, ".matchingStrategy")?,
            None => MatchingStrategy::Last,
        };
        Ok(SearchQuery {
            q: params::string_field(&map, "q", Code::InvalidSearchQ)?,
            offset: params::usize_field(&map, "offset", Code::InvalidSearchOffset)?.unwrap_or(0),
            limit: params::usize_field(&map, "limit", Code::InvalidSearchLimit)?
                .unwrap_or(DEFAULT_LIMIT),
            page: params::usize_field(&map, "page", Code::InvalidSearchPage)?,
            hits_per_page: params::usize_field(
                &map,
                "hitsPerPage",
                Code::InvalidSearchHitsPerPage,
            )?,
            attributes_to_retrieve: params::string_list_field(
                &map,
                "attributesToRetrieve",
                Code::InvalidSearchAttributesToRetrieve,
            )?,
            matching_strategy,
            show_ranking_score: params::bool_field(
                &map,
                "showRankingScore",
                Code::InvalidSearchShowRankingScore,
            )?
            .unwrap_or(false),
            show_ranking_score_details: params::bool_field(
                &map,
                "showRankingScoreDetails",
                Code::InvalidSearchShowRankingScoreDetails,
            )?
            .unwrap_or(false),
            filter: filter_param(map.get("filter"), Code::InvalidSearchFilter)?,
            sort,
            distinct: params::string_field(&map, "distinct", Code::InvalidSearchDistinct)?,
            facets: params::string_list_field(&map, "facets", Code::InvalidSearchFacets)?,
            attributes_to_search_on: params::string_list_field(
                &map,
                "attributesToSearchOn",
                Code::InvalidSearchAttributesToSearchOn,
            )?,
            format,
            show_matches_position: params::bool_field(
                &map,
                "showMatchesPosition",
                Code::InvalidSearchShowMatchesPosition,
            )?
            .unwrap_or(false),
            ranking_score_threshold: match map.get("rankingScoreThreshold") {
                None | Some(Value::Null) => None,
                Some(v) => threshold(
                    Some(v.as_f64().ok_or_else(|| {
                        params::wrong_type(
                            Code::InvalidSearchRankingScoreThreshold,
                            "rankingScoreThreshold",
                            "a number",
                            v,
                        )
                    })?),
                    &v.to_string(),
                )?,
            },
        })
    }

    /// Parses a `GET` query string.
    ///
    /// # Errors
    /// `bad_request` for unknown parameters, `invalid_search_*` for wrong values.
    pub fn from_query(q: &QueryParams) -> Result<SearchQuery, ApiError> {
        q.only(&KNOWN)?;
        for (name, code, what) in LATER {
            let value = q.get(name).map(str::trim).unwrap_or("");
            if !matches!(value, "" | "false" | "*") {
                return Err(not_supported_yet(code, what));
            }
        }
        let defaults = FormatOptions::default();
        let format = FormatOptions {
            highlight: q.list("attributesToHighlight").unwrap_or_default(),
            crop: crop_entries(q.list("attributesToCrop").unwrap_or_default()),
            crop_length: q
                .usize("cropLength", Code::InvalidSearchCropLength)?
                .unwrap_or(defaults.crop_length),
            crop_marker: q
                .get("cropMarker")
                .map_or(defaults.crop_marker, str::to_string),
            pre_tag: q
                .get("highlightPreTag")
                .map_or(defaults.pre_tag, str::to_string),
            post_tag: q
                .get("highlightPostTag")
                .map_or(defaults.post_tag, str::to_string),
        };
        q.bool("retrieveVectors", Code::BadRequest)?;
        q.bool("showPerformanceDetails", Code::BadRequest)?;
        let matching_strategy = match q.get("matchingStrategy") {
            Some(s) => strategy(s, "matchingStrategy")?,
            None => MatchingStrategy::Last,
        };
        Ok(SearchQuery {
            q: q.get("q").map(str::to_string),
            offset: q.usize("offset", Code::InvalidSearchOffset)?.unwrap_or(0),
            limit: q
                .usize("limit", Code::InvalidSearchLimit)?
                .unwrap_or(DEFAULT_LIMIT),
            page: q.usize("page", Code::InvalidSearchPage)?,
            hits_per_page: q.usize("hitsPerPage", Code::InvalidSearchHitsPerPage)?,
            attributes_to_retrieve: q.list("attributesToRetrieve"),
            matching_strategy,
            show_ranking_score: q
                .bool("showRankingScore", Code::InvalidSearchShowRankingScore)?
                .unwrap_or(false),
            show_ranking_score_details: q
                .bool(
                    "showRankingScoreDetails",
                    Code::InvalidSearchShowRankingScoreDetails,
                )?
                .unwrap_or(false),
            filter: q
                .get("filter")
                .filter(|f| !f.trim().is_empty())
                .map(|f| Value::String(f.to_string())),
            sort: q.get("sort").map(split_sort).unwrap_or_default(),
            distinct: q
                .get("distinct")
                .filter(|d| !d.trim().is_empty())
                .map(str::to_string),
            facets: q.list("facets"),
            attributes_to_search_on: q.list("attributesToSearchOn"),
            format,
            show_matches_position: q
                .bool(
                    "showMatchesPosition",
                    Code::InvalidSearchShowMatchesPosition,
                )?
                .unwrap_or(false),
            ranking_score_threshold: match q.get("rankingScoreThreshold") {
                None => None,
                Some(raw) => threshold(
                    Some(raw.trim().parse::<f64>().map_err(|_| {
                        ApiError::new(
                            Code::InvalidSearchRankingScoreThreshold,
                            format!("Invalid value in parameter `rankingScoreThreshold`: could not parse `{raw}` as a float."),
                        )
                    })?),
                    raw,
                )?,
            },
        })
    }

    /// Whether the page / hitsPerPage form is used.
    pub fn is_finite_pagination(&self) -> bool {
        self.page.is_some() || self.hits_per_page.is_some()
    }
}

/// `attributesToSearchOn: ["*"]` asks for the default.
fn asks_for_all(v: Option<&Value>) -> bool {
    matches!(v, Some(Value::Array(a)) if a.len() == 1 && a[0] == "*")
}

/// The window of hits asked for, capped so that `offset + limit` never reaches past
/// `max_total_hits` (the index's `pagination.maxTotalHits`).
pub fn window(query: &SearchQuery, max_total_hits: usize) -> (usize, usize) {
    let (offset, limit) = if query.is_finite_pagination() {
        let per_page = query.hits_per_page.unwrap_or(DEFAULT_LIMIT);
        match query.page.unwrap_or(1).checked_sub(1) {
            Some(p) => (per_page.saturating_mul(p), per_page),
            // Page 0 asks for no hit.
            None => (0, 0),
        }
    } else {
        (query.offset, query.limit)
    };
    let offset = offset.min(max_total_hits);
    let limit = limit.min(max_total_hits - offset);
    (offset, limit)
}

/// Runs a search and shapes the response.
///
/// # Errors
/// Missing index, engine errors.
pub fn run(engine: &Engine, uid: &str, query: &SearchQuery) -> Result<Value, ApiError> {
    let started = Instant::now();
    let settings = engine.settings(uid)?;
    let max_total_hits = settings.pagination.max_total_hits;
    let (offset, limit) = window(query, max_total_hits);
    let request = SearchRequest {
        q: query.q.clone(),
        offset,
        limit,
        strategy: query.matching_strategy,
        filter: query.filter.clone(),
        sort: query.sort.clone(),
        distinct: query.distinct.clone(),
        facets: query.facets.clone(),
        attributes_to_search_on: query.attributes_to_search_on.clone(),
        ranking_score_threshold: query.ranking_score_threshold,
        ..SearchRequest::default()
    };
    let results = engine.search(uid, &request)?;
    let matcher = (query.format.wanted() || query.show_matches_position)
        .then(|| Matcher::for_query(query.q.as_deref(), &settings));
    let details = query
        .show_ranking_score_details
        .then(|| super::score_details::Details::new(&settings, &request));
    let displayed = &settings.displayed_attributes;
    let show_all = displayed.iter().any(|a| a == "*");
    let hits: Vec<Value> = results
        .hits
        .iter()
        .map(|hit| {
            let shown = if show_all {
                None
            } else {
                Some(select_fields(&hit.document, Some(displayed)))
            };
            let base = shown.as_ref().unwrap_or(&hit.document);
            let mut doc: Map<String, Value> =
                select_fields(base, query.attributes_to_retrieve.as_deref());
            if let Some(m) = &matcher {
                if query.format.wanted() {
                    let f = formatted(&doc, m, &query.format);
                    doc.insert("_formatted".into(), f);
                }
                if query.show_matches_position {
                    let p = matches_position(&doc, m);
                    doc.insert("_matchesPosition".into(), p);
                }
            }
            if let Some(d) = hit.geo_distance {
                doc.insert("_geoDistance".into(), json!(d as i64));
            }
            if query.show_ranking_score {
                doc.insert("_rankingScore".into(), json!(hit.ranking_score));
            }
            if let Some(details) = &details {
                doc.insert("_rankingScoreDetails".into(), details.of(hit));
            }
            Value::Object(doc)
        })
        .collect();
    let hits_found = usize::try_from(results.total)
        .unwrap_or(usize::MAX)
        .min(max_total_hits);
    let processing_ms = started.elapsed().as_millis() as u64;
    let q = query.q.clone().unwrap_or_default();
    let mut out = if query.is_finite_pagination() {
        let per_page = query.hits_per_page.unwrap_or(DEFAULT_LIMIT);
        let total_pages = hits_found.div_ceil(per_page.max(1)) * usize::from(per_page > 0);
        json!({
            "hits": hits,
            "query": q,
            "processingTimeMs": processing_ms,
            "hitsPerPage": per_page,
            "page": query.page.unwrap_or(1),
            "totalPages": total_pages,
            "totalHits": hits_found,
        })
    } else {
        json!({
            "hits": hits,
            "query": q,
            "processingTimeMs": processing_ms,
            "limit": query.limit,
            "offset": offset,
            "estimatedTotalHits": hits_found,
        })
    };
    if let (Some(dist), Value::Object(map)) = (results.facet_distribution, &mut out) {
        map.insert("facetDistribution".into(), dist);
        map.insert(
            "facetStats".into(),
            results.facet_stats.unwrap_or_else(|| json!({})),
        );
    }
    Ok(out)
}

/// `GET /indexes/{uid}/search`.
pub async fn get(
    State(state): State<AppState>,
    Path(uid): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let query = SearchQuery::from_query(&QueryParams::parse(raw.as_deref())?)?;
    validate_index_uid(&uid)?;
    state
        .run(move |engine| Ok(Json(run(engine, &uid, &query)?)))
        .await
}

/// `POST /indexes/{uid}/search`.
pub async fn post(
    State(state): State<AppState>,
    Path(uid): Path<String>,
    headers: HeaderMap,
    request: Body,
) -> Result<Json<Value>, ApiError> {
    let value = body::read_json(&headers, request, state.config.payload_limit_bytes).await?;
    let query = SearchQuery::from_json(value)?;
    validate_index_uid(&uid)?;
    state
        .run(move |engine| Ok(Json(run(engine, &uid, &query)?)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(v: Value) -> SearchQuery {
        SearchQuery::from_json(v).unwrap()
    }

    #[test]
    fn window_is_capped_by_max_total_hits() {
        assert_eq!(window(&query(json!({})), 1000), (0, 20));
        assert_eq!(
            window(&query(json!({"offset": 990, "limit": 20})), 1000),
            (990, 10)
        );
        assert_eq!(window(&query(json!({"offset": 2000})), 1000), (1000, 0));
        assert_eq!(
            window(&query(json!({"page": 2, "hitsPerPage": 5})), 1000),
            (5, 5)
        );
        assert_eq!(window(&query(json!({"page": 0})), 1000), (0, 0));
        assert_eq!(
            window(&query(json!({"page": 3, "hitsPerPage": 4})), 10),
            (8, 2)
        );
    }

    #[test]
    fn bad_parameters_name_the_field() {
        for (body, code) in [
            (json!({"limit": -1}), "invalid_search_limit"),
            (json!({"limit": "10"}), "invalid_search_limit"),
            (json!({"offset": 1.5}), "invalid_search_offset"),
            (json!({"q": 1}), "invalid_search_q"),
            (json!({"page": "x"}), "invalid_search_page"),
            (
                json!({"matchingStrategy": "most"}),
                "invalid_search_matching_strategy",
            ),
            (
                json!({"attributesToRetrieve": "title"}),
                "invalid_search_attributes_to_retrieve",
            ),
            (
                json!({"showRankingScore": "yes"}),
                "invalid_search_show_ranking_score",
            ),
            (json!({"filter": 3}), "invalid_search_filter"),
            (json!({"sort": [1]}), "invalid_search_sort"),
            (json!({"facets": "genre"}), "invalid_search_facets"),
            (
                json!({"rankingScoreThreshold": 1.5}),
                "invalid_search_ranking_score_threshold",
            ),
            (json!({"unknown": 1}), "bad_request"),
            (json!([]), "bad_request"),
        ] {
            let err = SearchQuery::from_json(body.clone()).unwrap_err();
            assert_eq!(err.body().code, code, "{body}");
        }
        let ok = query(
            json!({"filter": null, "facets": [], "attributesToSearchOn": ["*"], "cropLength": 5}),
        );
        assert_eq!(ok.limit, DEFAULT_LIMIT);
    }

    #[test]
    fn get_parameters() {
        let q = QueryParams::parse(Some(
            "q=star&limit=3&attributesToRetrieve=title,id&showRankingScore=true",
        ))
        .unwrap();
        let s = SearchQuery::from_query(&q).unwrap();
        assert_eq!(s.q.as_deref(), Some("star"));
        assert_eq!(s.limit, 3);
        assert_eq!(
            s.attributes_to_retrieve,
            Some(vec!["title".into(), "id".into()])
        );
        assert!(s.show_ranking_score);
        let q = QueryParams::parse(Some("limit=-3")).unwrap();
        assert_eq!(
            SearchQuery::from_query(&q).unwrap_err().body().code,
            "invalid_search_limit"
        );
    }
}
