//! `GET|PATCH|DELETE /indexes/{uid}/settings` (all settings at once) and the per-setting
//! sub-routes `GET|PUT|DELETE /indexes/{uid}/settings/{setting}` (`PATCH` instead of `PUT`
//! for typo-tolerance, pagination, faceting and embedders).

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use eddy_engine::Settings;
use eddy_engine::document::validate_index_uid;
use serde_json::{Map, Value};

use super::accepted;
use super::check_write;
use crate::body;
use crate::error::ApiError;
use crate::params;
use crate::state::AppState;

fn settings_json(settings: &Settings) -> Result<Value, ApiError> {
    serde_json::to_value(settings)
        .map_err(|e| ApiError::internal(format!("settings do not serialize: {e}")))
}

/// `GET /indexes/{uid}/settings`.
pub async fn get(
    State(state): State<AppState>,
    Path(uid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    validate_index_uid(&uid)?;
    Ok(Json(settings_json(&state.engine.settings(&uid)?)?))
}

/// `PATCH /indexes/{uid}/settings`: fields absent keep their value, `null` resets.
pub async fn update(
    State(state): State<AppState>,
    Path(uid): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    request: Body,
) -> Result<Response, ApiError> {
    check_write(query.as_deref(), &uid)?;
    let value = body::read_json(&headers, request, state.config.payload_limit_bytes).await?;
    let Value::Object(patch) = value else {
        return Err(ApiError::bad_request(format!(
            "Invalid value type: expected an object, but found {}",
            params::describe(&value)
        )));
    };
    let task = state
        .run(move |engine| Ok(engine.update_settings(&uid, patch)?))
        .await?;
    Ok(accepted(&task))
}

/// `DELETE /indexes/{uid}/settings`: every setting back to its default.
pub async fn reset(
    State(state): State<AppState>,
    Path(uid): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    check_write(query.as_deref(), &uid)?;
    let defaults = settings_json(&Settings::default())?;
    let patch: Map<String, Value> = defaults
        .as_object()
        .map(|m| m.keys().map(|k| (k.clone(), Value::Null)).collect())
        .unwrap_or_default();
    let task = state
        .run(move |engine| Ok(engine.update_settings(&uid, patch)?))
        .await?;
    Ok(accepted(&task))
}

/// Sub-route name → settings field, and whether it is updated with `PATCH` (objects merged
/// one level deep) rather than `PUT`.
const SUB_ROUTES: [(&str, &str, bool); 20] = [
    ("ranking-rules", "rankingRules", false),
    ("distinct-attribute", "distinctAttribute", false),
    ("searchable-attributes", "searchableAttributes", false),
    ("displayed-attributes", "displayedAttributes", false),
    ("stop-words", "stopWords", false),
    ("synonyms", "synonyms", false),
    ("filterable-attributes", "filterableAttributes", false),
    ("sortable-attributes", "sortableAttributes", false),
    ("typo-tolerance", "typoTolerance", true),
    ("pagination", "pagination", true),
    ("faceting", "faceting", true),
    ("dictionary", "dictionary", false),
    ("separator-tokens", "separatorTokens", false),
    ("non-separator-tokens", "nonSeparatorTokens", false),
    ("search-cutoff-ms", "searchCutoffMs", false),
    ("prefix-search", "prefixSearch", false),
    ("proximity-precision", "proximityPrecision", false),
    ("localized-attributes", "localizedAttributes", false),
    ("facet-search", "facetSearch", false),
    ("embedders", "embedders", true),
];

fn sub_route(name: &str) -> Result<(&'static str, bool), ApiError> {
    SUB_ROUTES
        .iter()
        .find(|(route, _, _)| *route == name)
        .map(|(_, field, patch)| (*field, *patch))
        .ok_or_else(|| ApiError::new(eddy_engine::Code::NotFound, "Not found."))
}

fn method_not_allowed() -> ApiError {
    ApiError::new(
        eddy_engine::Code::MethodNotAllowed,
        "This HTTP method is not allowed on this route.",
    )
}

/// `GET /indexes/{uid}/settings/{setting}`.
pub async fn get_one(
    State(state): State<AppState>,
    Path((uid, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (field, _) = sub_route(&name)?;
    validate_index_uid(&uid)?;
    let all = settings_json(&state.engine.settings(&uid)?)?;
    Ok(Json(all.get(field).cloned().unwrap_or(Value::Null)))
}

async fn update_one(
    state: AppState,
    uid: String,
    name: String,
    query: Option<String>,
    headers: HeaderMap,
    request: Body,
    with_patch: bool,
) -> Result<Response, ApiError> {
    // The body is read first, so that an early answer never races the client's upload.
    let value = body::read_json(&headers, request, state.config.payload_limit_bytes).await;
    let (field, patch_route) = sub_route(&name)?;
    if patch_route != with_patch {
        return Err(method_not_allowed());
    }
    check_write(query.as_deref(), &uid)?;
    let value = value?;
    let mut patch = Map::new();
    patch.insert(field.to_string(), value);
    let task = state
        .run(move |engine| Ok(engine.update_settings(&uid, patch)?))
        .await?;
    Ok(accepted(&task))
}

/// `PUT /indexes/{uid}/settings/{setting}` (every setting but the `PATCH` ones).
pub async fn put_one(
    State(state): State<AppState>,
    Path((uid, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    request: Body,
) -> Result<Response, ApiError> {
    update_one(state, uid, name, query, headers, request, false).await
}

/// `PATCH /indexes/{uid}/settings/{setting}` (typo-tolerance, pagination, faceting,
/// embedders).
pub async fn patch_one(
    State(state): State<AppState>,
    Path((uid, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    request: Body,
) -> Result<Response, ApiError> {
    update_one(state, uid, name, query, headers, request, true).await
}

/// `DELETE /indexes/{uid}/settings/{setting}`: back to the default.
pub async fn reset_one(
    State(state): State<AppState>,
    Path((uid, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let (field, _) = sub_route(&name)?;
    check_write(query.as_deref(), &uid)?;
    let mut patch = Map::new();
    patch.insert(field.to_string(), Value::Null);
    let task = state
        .run(move |engine| Ok(engine.update_settings(&uid, patch)?))
        .await?;
    Ok(accepted(&task))
}
