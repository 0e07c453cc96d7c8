//! `/indexes/{uid}/documents…`: add or replace, add or update, get, list, fetch, delete.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use eddy_engine::document::{Document, select_fields, validate_index_uid};
use eddy_engine::{Code, DocumentQuery, Engine, Method};
use serde_json::{Map, Value, json};

use super::accepted;
use super::check_write;
use crate::body;
use crate::error::ApiError;
use crate::params::{self, QueryParams, is_blank, not_supported_yet};
use crate::state::AppState;

/// `POST /indexes/{uid}/documents`: add or replace.
pub async fn replace(
    state: State<AppState>,
    uid: Path<String>,
    query: RawQuery,
    headers: HeaderMap,
    request: Body,
) -> Result<Response, ApiError> {
    add(state, uid, query, headers, request, Method::Replace).await
}

/// `PUT /indexes/{uid}/documents`: add or update.
pub async fn update(
    state: State<AppState>,
    uid: Path<String>,
    query: RawQuery,
    headers: HeaderMap,
    request: Body,
) -> Result<Response, ApiError> {
    add(state, uid, query, headers, request, Method::Update).await
}

async fn add(
    State(state): State<AppState>,
    Path(uid): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    request: Body,
    method: Method,
) -> Result<Response, ApiError> {
    let q = QueryParams::parse(query.as_deref())?;
    q.only(&[
        "primaryKey",
        "csvDelimiter",
        "customMetadata",
        "skipCreation",
    ])?;
    if q.bool("skipCreation", Code::BadRequest)? == Some(true) {
        return Err(not_supported_yet(Code::BadRequest, "`skipCreation`"));
    }
    validate_index_uid(&uid)?;
    let format = body::document_format(&headers, q.get("csvDelimiter"))?;
    let primary_key = q.get("primaryKey").map(str::to_string);
    let payload = body::read(&headers, request, state.config.payload_limit_bytes).await?;
    if payload.len() > INLINE_WRITE_MAX_BYTES {
        let task = state
            .run(move |engine| {
                Ok(engine.add_documents(&uid, &payload, format, method, primary_key)?)
            })
            .await?;
        return Ok(accepted(&task));
    }
    // A spawned task runs to the end even if the client goes away: a write in the log is
    // always applied and its task recorded.
    let task = tokio::spawn(async move {
        let prepared =
            state
                .engine
                .prepare_documents(&uid, &payload, format, method, primary_key)?;
        state.write_async(prepared).await
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "a document write panicked or was cancelled");
        ApiError::internal("the engine call did not complete")
    })??;
    Ok(accepted(&task))
}

/// Payloads up to this size are written without a blocking thread ([`AppState::write_async`]):
/// parsing, analysis and applying them on the async worker costs less than handing them to
/// the blocking pool and back. Larger ones would hold the worker too long.
const INLINE_WRITE_MAX_BYTES: usize = 16 << 10;

/// Keeps the index's displayed attributes, then the requested fields.
fn present(doc: &Document, displayed: &[String], fields: Option<&[String]>) -> Document {
    let shown = if displayed.iter().any(|a| a == "*") {
        doc.clone()
    } else {
        select_fields(doc, Some(displayed))
    };
    select_fields(&shown, fields)
}

/// What a documents listing asks for.
struct Listing {
    offset: usize,
    limit: usize,
    fields: Option<Vec<String>>,
    ids: Option<Vec<Value>>,
    filter: Option<Value>,
    sort: Vec<String>,
}

fn list_documents(engine: &Engine, uid: &str, listing: Listing) -> Result<Value, ApiError> {
    let displayed = engine.settings(uid)?.displayed_attributes;
    let fields = listing.fields.as_deref();
    let (docs, total) = match listing.ids {
        None if listing.filter.is_some() || !listing.sort.is_empty() => engine.filter_documents(
            uid,
            &DocumentQuery {
                filter: listing.filter.clone(),
                sort: listing.sort.clone(),
                offset: listing.offset,
                limit: listing.limit,
                fields: None,
            },
        )?,
        None => engine.documents(uid, listing.offset, listing.limit, None)?,
        Some(ids) => {
            let mut found = Vec::new();
            for id in &ids {
                let id = match id {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                match engine.document(uid, &id, None) {
                    Ok(doc) => found.push(doc),
                    Err(eddy_engine::Error::DocumentNotFound(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            let total = found.len() as u64;
            let page = found
                .into_iter()
                .skip(listing.offset)
                .take(listing.limit)
                .collect();
            (page, total)
        }
    };
    let results: Vec<Value> = docs
        .iter()
        .map(|d| Value::Object(present(d, &displayed, fields)))
        .collect();
    Ok(json!({
        "results": results,
        "offset": listing.offset,
        "limit": listing.limit,
        "total": total,
    }))
}

/// `GET /indexes/{uid}/documents?offset&limit&fields&ids`.
pub async fn list(
    State(state): State<AppState>,
    Path(uid): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = QueryParams::parse(query.as_deref())?;
    q.only(&[
        "offset",
        "limit",
        "fields",
        "filter",
        "retrieveVectors",
        "ids",
        "sort",
    ])?;
    q.bool("retrieveVectors", Code::BadRequest)?;
    let listing = Listing {
        offset: q.usize("offset", Code::InvalidDocumentOffset)?.unwrap_or(0),
        limit: q.usize("limit", Code::InvalidDocumentLimit)?.unwrap_or(20),
        fields: q.list("fields"),
        ids: q
            .list("ids")
            .map(|ids| ids.into_iter().map(Value::String).collect()),
        filter: q
            .get("filter")
            .filter(|f| !f.trim().is_empty())
            .map(|f| Value::String(f.to_string())),
        sort: q
            .get("sort")
            .map(super::search::split_sort)
            .unwrap_or_default(),
    };
    validate_index_uid(&uid)?;
    state
        .run(move |engine| Ok(Json(list_documents(engine, &uid, listing)?)))
        .await
}

/// `POST /indexes/{uid}/documents/fetch {offset, limit, fields, ids}`.
pub async fn fetch(
    State(state): State<AppState>,
    Path(uid): Path<String>,
    headers: HeaderMap,
    request: Body,
) -> Result<Json<Value>, ApiError> {
    let value = body::read_json(&headers, request, state.config.payload_limit_bytes).await?;
    let map = params::object(
        value,
        &[
            "offset",
            "limit",
            "fields",
            "filter",
            "retrieveVectors",
            "ids",
            "sort",
        ],
    )?;
    params::bool_field(&map, "retrieveVectors", Code::BadRequest)?;
    let ids = match map.get("ids") {
        None | Some(Value::Null) => None,
        Some(Value::Array(ids)) => Some(ids.clone()),
        Some(other) => {
            return Err(params::wrong_type(
                Code::InvalidDocumentIds,
                "ids",
                "an array",
                other,
            ));
        }
    };
    let listing = Listing {
        offset: params::usize_field(&map, "offset", Code::InvalidDocumentOffset)?.unwrap_or(0),
        limit: params::usize_field(&map, "limit", Code::InvalidDocumentLimit)?.unwrap_or(20),
        fields: params::string_list_field(&map, "fields", Code::InvalidDocumentFields)?,
        ids,
        filter: filter_param(map.get("filter"), Code::InvalidDocumentFilter)?,
        sort: params::string_list_field(&map, "sort", Code::InvalidDocumentSort)?
            .unwrap_or_default(),
    };
    validate_index_uid(&uid)?;
    state
        .run(move |engine| Ok(Json(list_documents(engine, &uid, listing)?)))
        .await
}

/// `GET /indexes/{uid}/documents/{id}?fields`.
pub async fn get_one(
    State(state): State<AppState>,
    Path((uid, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = QueryParams::parse(query.as_deref())?;
    q.only(&["fields", "retrieveVectors"])?;
    q.bool("retrieveVectors", Code::BadRequest)?;
    let fields = q.list("fields");
    validate_index_uid(&uid)?;
    state
        .run(move |engine| {
            let displayed = engine.settings(&uid)?.displayed_attributes;
            let doc = engine.document(&uid, &id, None)?;
            Ok(Json(Value::Object(present(
                &doc,
                &displayed,
                fields.as_deref(),
            ))))
        })
        .await
}

/// `DELETE /indexes/{uid}/documents/{id}`.
pub async fn delete_one(
    State(state): State<AppState>,
    Path((uid, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    check_write(query.as_deref(), &uid)?;
    let task = state
        .run(move |engine| Ok(engine.delete_documents(&uid, vec![Value::String(id)])?))
        .await?;
    Ok(accepted(&task))
}

/// `POST /indexes/{uid}/documents/delete-batch [ids]`.
pub async fn delete_batch(
    State(state): State<AppState>,
    Path(uid): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    request: Body,
) -> Result<Response, ApiError> {
    check_write(query.as_deref(), &uid)?;
    let value = body::read_json(&headers, request, state.config.payload_limit_bytes).await?;
    let Value::Array(ids) = value else {
        return Err(ApiError::bad_request(format!(
            "Invalid value type: expected an array, but found {}",
            params::describe(&value)
        )));
    };
    let task = state
        .run(move |engine| Ok(engine.delete_documents(&uid, ids)?))
        .await?;
    Ok(accepted(&task))
}

/// The `filter` parameter: `null`/absent, a string, or an array (of strings and arrays).
///
/// # Errors
/// `code` when the value has another type.
pub fn filter_param(value: Option<&Value>, code: Code) -> Result<Option<Value>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v @ (Value::String(_) | Value::Array(_))) => Ok(Some(v.clone())),
        Some(other) => Err(ApiError::new(
            code,
            format!(
                "Invalid syntax for the filter parameter: `expected String, Array, found: {other}`."
            ),
        )),
    }
}

/// `POST /indexes/{uid}/documents/delete {filter}`: the matching documents are decided when
/// the task is applied, in log order.
pub async fn delete_by_filter(
    State(state): State<AppState>,
    Path(uid): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    request: Body,
) -> Result<Response, ApiError> {
    check_write(query.as_deref(), &uid)?;
    let value = body::read_json(&headers, request, state.config.payload_limit_bytes).await?;
    let map: Map<String, Value> = params::object(value, &["filter"])?;
    if is_blank(map.get("filter")) {
        return Err(ApiError::new(
            Code::MissingDocumentFilter,
            "Missing field `filter`",
        ));
    }
    let filter =
        filter_param(map.get("filter"), Code::InvalidDocumentFilter)?.unwrap_or(Value::Null);
    let task = state
        .run(move |engine| Ok(engine.delete_documents_by_filter(&uid, filter)?))
        .await?;
    Ok(accepted(&task))
}

/// `DELETE /indexes/{uid}/documents`.
pub async fn clear(
    State(state): State<AppState>,
    Path(uid): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    check_write(query.as_deref(), &uid)?;
    let task = state
        .run(move |engine| Ok(engine.clear_documents(&uid)?))
        .await?;
    Ok(accepted(&task))
}
