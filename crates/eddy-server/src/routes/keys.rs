//! `/keys` and `/keys/{key or uid}`: list, create, get, update (name and description only),
//! delete. These routes need a master key to exist (`missing_master_key` otherwise), since a
//! key's value is derived from it.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use eddy_engine::Code;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::body;
use crate::error::ApiError;
use crate::keys::{self, ApiKey};
use crate::params::QueryParams;
use crate::state::AppState;

fn not_found(text: &str) -> ApiError {
    ApiError::new(Code::ApiKeyNotFound, format!("API key `{text}` not found."))
}

fn find(state: &AppState, text: &str) -> Result<ApiKey, ApiError> {
    state
        .keys
        .by_uid_or_value(text)
        .ok_or_else(|| not_found(text))
}

/// `GET /keys?offset&limit`.
pub async fn list(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let master = state.keys.require_master_key()?;
    let q = QueryParams::parse(query.as_deref())?;
    q.only(&["offset", "limit"])?;
    let offset = q.usize("offset", Code::InvalidApiKeyOffset)?.unwrap_or(0);
    let limit = q.usize("limit", Code::InvalidApiKeyLimit)?.unwrap_or(20);
    let all = state.keys.list();
    let results: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(limit)
        .map(|k| k.to_json(master))
        .collect();
    Ok(Json(json!({
        "results": results,
        "offset": offset,
        "limit": limit,
        "total": all.len(),
    })))
}

/// `POST /keys` → 201 with the key.
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Body,
) -> Result<Response, ApiError> {
    let master = state.keys.require_master_key()?.to_string();
    let value = body::read_json(&headers, request, state.config.payload_limit_bytes).await?;
    let key = keys::new_key(value, OffsetDateTime::now_utc())?;
    if state.keys.by_uid(&key.uid).is_some() {
        return Err(ApiError::new(
            Code::ApiKeyAlreadyExists,
            format!("`{}` already exists.", key.uid),
        ));
    }
    let shown = key.to_json(&master);
    let store = state.keys.clone();
    state.run(move |engine| store.put(engine, key)).await?;
    Ok((StatusCode::CREATED, Json(shown)).into_response())
}

/// `GET /keys/{key or uid}`.
pub async fn get(
    State(state): State<AppState>,
    Path(text): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let master = state.keys.require_master_key()?;
    Ok(Json(find(&state, &text)?.to_json(master)))
}

/// `PATCH /keys/{key or uid}`: only `name` and `description`.
pub async fn update(
    State(state): State<AppState>,
    Path(text): Path<String>,
    headers: HeaderMap,
    request: Body,
) -> Result<Json<Value>, ApiError> {
    let master = state.keys.require_master_key()?.to_string();
    let value = body::read_json(&headers, request, state.config.payload_limit_bytes).await?;
    let mut key = find(&state, &text)?;
    keys::patch_key(&mut key, value, OffsetDateTime::now_utc())?;
    let shown = key.to_json(&master);
    let store = state.keys.clone();
    state.run(move |engine| store.put(engine, key)).await?;
    Ok(Json(shown))
}

/// `DELETE /keys/{key or uid}` → 204.
pub async fn delete(
    State(state): State<AppState>,
    Path(text): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.keys.require_master_key()?;
    let key = find(&state, &text)?;
    let store = state.keys.clone();
    state
        .run(move |engine| store.delete(engine, &key.uid))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
