//! `/indexes` and `/indexes/{uid}`: list, create, get, update the primary key, delete.

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use eddy_engine::document::validate_index_uid;
use eddy_engine::task::format_time;
use eddy_engine::{Code, IndexInfo};
use serde_json::{Value, json};

use super::accepted;
use super::check_write;
use crate::auth::Access;
use crate::body;
use crate::error::ApiError;
use crate::params::{self, QueryParams};
use crate::state::AppState;

/// An index as Meilisearch shows it.
pub fn index_json(info: &IndexInfo) -> Value {
    json!({
        "uid": info.uid,
        "primaryKey": info.primary_key,
        "createdAt": format_time(info.created_at),
        "updatedAt": format_time(info.updated_at),
    })
}

/// `GET /indexes?offset&limit`: only the indexes the key may reach.
pub async fn list(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = QueryParams::parse(query.as_deref())?;
    q.only(&["offset", "limit"])?;
    let offset = q.usize("offset", Code::InvalidIndexOffset)?.unwrap_or(0);
    let limit = q.usize("limit", Code::InvalidIndexLimit)?.unwrap_or(20);
    let mut indexes = state.engine.indexes();
    indexes.retain(|i| access.index_allowed(&i.uid));
    let results: Vec<Value> = indexes
        .iter()
        .skip(offset)
        .take(limit)
        .map(index_json)
        .collect();
    Ok(Json(json!({
        "results": results,
        "offset": offset,
        "limit": limit,
        "total": indexes.len(),
    })))
}

/// Query parameters every write route accepts. `customMetadata` is accepted for client
/// compatibility; eddy does not store it yet.
pub const WRITE_PARAMS: [&str; 1] = ["customMetadata"];

fn primary_key_field(map: &serde_json::Map<String, Value>) -> Result<Option<String>, ApiError> {
    params::string_field(map, "primaryKey", Code::InvalidIndexPrimaryKey)
}

/// `POST /indexes {uid, primaryKey?}`.
pub async fn create(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    request: Body,
) -> Result<Response, ApiError> {
    QueryParams::parse(query.as_deref())?.only(&WRITE_PARAMS)?;
    let value = body::read_json(&headers, request, state.config.payload_limit_bytes).await?;
    let map = params::object(value, &["uid", "primaryKey"])?;
    let uid = match map.get("uid") {
        None | Some(Value::Null) => {
            return Err(ApiError::new(Code::MissingIndexUid, "Missing field `uid`"));
        }
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(params::wrong_type(
                Code::InvalidIndexUid,
                "uid",
                "a string",
                other,
            ));
        }
    };
    let primary_key = primary_key_field(&map)?;
    // The index is named in the body, so only here can the key's index patterns be checked.
    access.check_index(&uid)?;
    let task = state
        .run(move |engine| Ok(engine.create_index(&uid, primary_key)?))
        .await?;
    Ok(accepted(&task))
}

/// `GET /indexes/{uid}`.
pub async fn get(
    State(state): State<AppState>,
    Path(uid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    validate_index_uid(&uid)?;
    Ok(Json(index_json(&state.engine.index(&uid)?)))
}

/// `PATCH /indexes/{uid} {primaryKey}`.
pub async fn update(
    State(state): State<AppState>,
    Path(uid): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    request: Body,
) -> Result<Response, ApiError> {
    check_write(query.as_deref(), &uid)?;
    let value = body::read_json(&headers, request, state.config.payload_limit_bytes).await?;
    let map = params::object(value, &["primaryKey"])?;
    let primary_key = primary_key_field(&map)?;
    let task = state
        .run(move |engine| Ok(engine.update_index(&uid, primary_key)?))
        .await?;
    Ok(accepted(&task))
}

/// `DELETE /indexes/{uid}`.
pub async fn delete(
    State(state): State<AppState>,
    Path(uid): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    check_write(query.as_deref(), &uid)?;
    let task = state
        .run(move |engine| Ok(engine.delete_index(&uid)?))
        .await?;
    Ok(accepted(&task))
}
