//! `POST /indexes/{uid}/facet-search`: facet values matching a facet query among the
//! documents a search selects.

use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use eddy_engine::document::validate_index_uid;
use eddy_engine::{Code, SearchRequest};
use serde_json::{Value, json};

use super::search::SearchQuery;
use crate::body;
use crate::error::ApiError;
use crate::params;
use crate::state::AppState;

/// Fields of a facet search besides the search parameters it shares.
const OWN: [&str; 3] = ["facetName", "facetQuery", "exhaustiveFacetCount"];

/// `POST /indexes/{uid}/facet-search`.
pub async fn facet_search(
    State(state): State<AppState>,
    Path(uid): Path<String>,
    headers: HeaderMap,
    request: Body,
) -> Result<Json<Value>, ApiError> {
    let started = Instant::now();
    let value = body::read_json(&headers, request, state.config.payload_limit_bytes).await?;
    let Value::Object(mut map) = value else {
        return Err(ApiError::bad_request(format!(
            "Invalid value type: expected an object, but found {}",
            params::describe(&value)
        )));
    };
    let facet_name = params::string_field(&map, "facetName", Code::InvalidFacetSearchFacetName)?
        .ok_or_else(|| {
            ApiError::new(
                Code::MissingFacetSearchFacetName,
                "Missing field `facetName`",
            )
        })?;
    let facet_query = params::string_field(&map, "facetQuery", Code::InvalidFacetSearchFacetQuery)?;
    params::bool_field(&map, "exhaustiveFacetCount", Code::BadRequest)?;
    for name in OWN {
        map.remove(name);
    }
    let query = SearchQuery::from_json(Value::Object(map))?;
    validate_index_uid(&uid)?;
    state
        .run(move |engine| {
            let request = SearchRequest {
                q: query.q.clone(),
                strategy: query.matching_strategy,
                filter: query.filter.clone(),
                attributes_to_search_on: query.attributes_to_search_on.clone(),
                ..SearchRequest::default()
            };
            let hits = engine.facet_search(&uid, &request, &facet_name, facet_query.as_deref())?;
            let facet_hits: Vec<Value> = hits
                .into_iter()
                .map(|(value, count)| json!({"value": value, "count": count}))
                .collect();
            Ok(Json(json!({
                "facetHits": facet_hits,
                "facetQuery": facet_query,
                "processingTimeMs": started.elapsed().as_millis() as u64,
            })))
        })
        .await
}
