//! `GET|PATCH /experimental-features`: stored flags. eddy implements none of Meilisearch's
//! experimental features yet; the flags are kept so clients that toggle them keep working.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{Map, Value};

use crate::body;
use crate::error::ApiError;
use crate::params;
use crate::state::AppState;

const RECORD: &str = "experimental-features";

/// Meilisearch's experimental features, all off by default.
pub const FEATURES: [&str; 10] = [
    "metrics",
    "logsRoute",
    "editDocumentsByFunction",
    "containsFilter",
    "network",
    "getTaskDocumentsRoute",
    "compositeEmbedders",
    "chatCompletions",
    "multimodal",
    "vectorStoreSetting",
];

fn current(engine: &eddy_engine::Engine) -> Result<Map<String, Value>, ApiError> {
    let stored: Map<String, Value> = engine.meta().record(RECORD)?.unwrap_or_default();
    Ok(FEATURES
        .iter()
        .map(|f| {
            let on = stored.get(*f).and_then(Value::as_bool).unwrap_or(false);
            (f.to_string(), Value::Bool(on))
        })
        .collect())
}

/// `GET /experimental-features`.
pub async fn get(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state
        .run(|engine| Ok(Json(Value::Object(current(engine)?))))
        .await
}

/// `PATCH /experimental-features`: sets the given flags, keeps the others.
pub async fn update(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Body,
) -> Result<Json<Value>, ApiError> {
    let value = body::read_json(&headers, request, state.config.payload_limit_bytes).await?;
    let patch = params::object(value, &FEATURES)?;
    for (name, v) in &patch {
        if !v.is_boolean() && !v.is_null() {
            return Err(params::wrong_type(
                eddy_engine::Code::BadRequest,
                name,
                "a boolean",
                v,
            ));
        }
    }
    state
        .run(move |engine| {
            let mut flags = current(engine)?;
            for (name, v) in patch {
                if let Value::Bool(b) = v {
                    flags.insert(name, Value::Bool(b));
                }
            }
            engine.meta().put_record(RECORD, Some(&flags))?;
            Ok(Json(Value::Object(flags)))
        })
        .await
}
