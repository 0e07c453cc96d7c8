//! `POST /multi-search`: several searches in one request, answered per query
//! (`{results: [...]}`) or merged into one list of hits with `federation`.
//!
//! Federated hits are ordered by weighted ranking score (`_rankingScore × weight`), ties by
//! query position then rank within the query; each carries
//! `_federation: {indexUid, queriesPosition, weightedRankingScore}`.

use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use eddy_engine::Code;
use eddy_engine::document::validate_index_uid;
use serde_json::{Map, Value, json};

use super::search::{DEFAULT_LIMIT, SearchQuery, run};
use crate::body;
use crate::error::ApiError;
use crate::params;
use crate::state::AppState;

struct Query {
    index_uid: String,
    weight: f64,
    search: SearchQuery,
}

/// Prefixes an error with the query it is about, as Meilisearch does.
fn inside(i: usize, e: ApiError) -> ApiError {
    ApiError::new(
        e.code(),
        format!("Inside `.queries[{i}]`: {}", e.body().message),
    )
}

fn parse_query(i: usize, value: Value, federated: bool) -> Result<Query, ApiError> {
    let Value::Object(mut map) = value else {
        return Err(ApiError::new(
            Code::InvalidSearchQueries,
            format!(
                "Invalid value type at `.queries[{i}]`: expected an object, but found {}",
                params::describe(&value)
            ),
        ));
    };
    let index_uid = match map.remove("indexUid") {
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(inside(
                i,
                ApiError::new(
                    Code::InvalidIndexUid,
                    format!(
                        "Invalid value type at `.indexUid`: expected a string, but found {}",
                        params::describe(&other)
                    ),
                ),
            ));
        }
        None => {
            return Err(ApiError::new(
                Code::MissingIndexUid,
                format!("Missing field `indexUid` inside `.queries[{i}]`"),
            ));
        }
    };
    let weight = match map.remove("federationOptions") {
        None | Some(Value::Null) => 1.0,
        Some(Value::Object(o)) if federated => {
            match o.get("weight") {
                None | Some(Value::Null) => 1.0,
                Some(w) => w.as_f64().filter(|w| *w >= 0.0).ok_or_else(|| {
                    inside(
                        i,
                        ApiError::new(
                            Code::InvalidMultiSearchFederationOptions,
                            "Invalid value at `.federationOptions.weight`: the value of `weight` is invalid, expected a positive float (>= 0.0).",
                        ),
                    )
                })?,
            }
        }
        Some(_) if !federated => {
            return Err(inside(
                i,
                ApiError::new(
                    Code::InvalidMultiSearchFederationOptions,
                    "Using `federationOptions` is not allowed in a non-federated search.\n - Hint: remove `federationOptions` from query #".to_string()
                        + &format!("{i} or add `federation` to the request."),
                ),
            ));
        }
        Some(other) => {
            return Err(inside(
                i,
                params::wrong_type(
                    Code::InvalidMultiSearchFederationOptions,
                    "federationOptions",
                    "an object",
                    &other,
                ),
            ));
        }
    };
    let search = SearchQuery::from_json(Value::Object(map)).map_err(|e| inside(i, e))?;
    validate_index_uid(&index_uid).map_err(|e| inside(i, e.into()))?;
    Ok(Query {
        index_uid,
        weight,
        search,
    })
}

/// `POST /multi-search`.
pub async fn multi_search(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Body,
) -> Result<Json<Value>, ApiError> {
    let started = Instant::now();
    let value = body::read_json(&headers, request, state.config.payload_limit_bytes).await?;
    let map = params::object(value, &["queries", "federation"])?;
    let federation = match map.get("federation") {
        None | Some(Value::Null) => None,
        Some(Value::Object(f)) => Some(f.clone()),
        Some(other) => {
            return Err(params::wrong_type(
                Code::InvalidMultiSearchFederated,
                "federation",
                "an object",
                other,
            ));
        }
    };
    let raw = match map.get("queries") {
        Some(Value::Array(q)) => q.clone(),
        None => {
            return Err(ApiError::bad_request("Missing field `queries`"));
        }
        Some(other) => {
            return Err(params::wrong_type(
                Code::InvalidSearchQueries,
                "queries",
                "an array",
                other,
            ));
        }
    };
    let mut queries = Vec::with_capacity(raw.len());
    for (i, q) in raw.into_iter().enumerate() {
        queries.push(parse_query(i, q, federation.is_some())?);
    }
    state
        .run(move |engine| {
            let Some(federation) = federation else {
                let mut results = Vec::with_capacity(queries.len());
                for (i, q) in queries.iter().enumerate() {
                    let mut r = run(engine, &q.index_uid, &q.search).map_err(|e| inside(i, e))?;
                    if let Value::Object(m) = &mut r {
                        let mut with_uid = Map::new();
                        with_uid.insert("indexUid".into(), json!(q.index_uid));
                        with_uid.extend(std::mem::take(m));
                        *m = with_uid;
                    }
                    results.push(r);
                }
                return Ok(Json(json!({"results": results})));
            };
            let offset =
                params::usize_field(&federation, "offset", Code::InvalidMultiSearchFederated)?
                    .unwrap_or(0);
            let limit =
                params::usize_field(&federation, "limit", Code::InvalidMultiSearchFederated)?
                    .unwrap_or(DEFAULT_LIMIT);
            let mut merged: Vec<(f64, usize, usize, Map<String, Value>)> = Vec::new();
            let mut total = 0u64;
            for (i, q) in queries.iter().enumerate() {
                let mut search = q.search.clone();
                search.offset = 0;
                search.limit = offset.saturating_add(limit);
                search.page = None;
                search.hits_per_page = None;
                let wants_score = search.show_ranking_score;
                search.show_ranking_score = true;
                let r = run(engine, &q.index_uid, &search).map_err(|e| inside(i, e))?;
                total += r["estimatedTotalHits"].as_u64().unwrap_or(0);
                if let Some(Value::Array(hits)) = r.get("hits") {
                    for (rank, hit) in hits.iter().enumerate() {
                        let Value::Object(mut hit) = hit.clone() else {
                            continue;
                        };
                        let score = hit
                            .get("_rankingScore")
                            .and_then(Value::as_f64)
                            .unwrap_or(0.0);
                        if !wants_score {
                            hit.remove("_rankingScore");
                        }
                        let weighted = score * q.weight;
                        hit.insert(
                            "_federation".into(),
                            json!({
                                "indexUid": q.index_uid,
                                "queriesPosition": i,
                                "weightedRankingScore": weighted,
                            }),
                        );
                        merged.push((weighted, i, rank, hit));
                    }
                }
            }
            merged.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
            let hits: Vec<Value> = merged
                .into_iter()
                .skip(offset)
                .take(limit)
                .map(|(_, _, _, h)| Value::Object(h))
                .collect();
            Ok(Json(json!({
                "hits": hits,
                "processingTimeMs": started.elapsed().as_millis() as u64,
                "limit": limit,
                "offset": offset,
                "estimatedTotalHits": total,
            })))
        })
        .await
}
