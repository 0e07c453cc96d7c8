//! `GET|PATCH|DELETE /indexes/{uid}/settings` (all settings at once). The per-setting
//! sub-routes come with the search features that use them.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use eddy_engine::Settings;
use eddy_engine::document::validate_index_uid;
use serde_json::{Map, Value};

use super::accepted;
use super::indexes::WRITE_PARAMS;
use crate::body;
use crate::error::ApiError;
use crate::params::{self, QueryParams};
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
    QueryParams::parse(query.as_deref())?.only(&WRITE_PARAMS)?;
    validate_index_uid(&uid)?;
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
    QueryParams::parse(query.as_deref())?.only(&WRITE_PARAMS)?;
    validate_index_uid(&uid)?;
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
