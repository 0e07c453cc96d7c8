//! `/webhooks` and `/webhooks/{uuid}`: stored in the metadata store, never delivered (eddy's
//! tasks finish before their write is acknowledged; delivery, loopback-only, comes later).

use std::sync::Mutex;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use eddy_engine::{Code, Engine};
use serde_json::{Map, Value, json};

use crate::body;
use crate::error::ApiError;
use crate::params;
use crate::state::AppState;

const PREFIX: &str = "webhook:";

/// Serializes read-modify-write updates of one webhook record.
static UPDATES: Mutex<()> = Mutex::new(());

fn new_uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn shown(stored: &Value) -> Value {
    let mut out = stored.clone();
    if let Some(map) = out.as_object_mut() {
        map.insert("isEditable".into(), Value::Bool(true));
    }
    out
}

fn not_found(uuid: &str) -> ApiError {
    ApiError::new(
        Code::WebhookNotFound,
        format!("Webhook `{uuid}` not found."),
    )
}

fn validate_url(value: &Value) -> Result<String, ApiError> {
    let Value::String(url) = value else {
        return Err(params::wrong_type(
            Code::InvalidWebhookUrl,
            "url",
            "a string",
            value,
        ));
    };
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or(""));
    match host {
        Some(h) if !h.is_empty() && !h.contains(char::is_whitespace) => Ok(url.clone()),
        _ => Err(ApiError::new(
            Code::InvalidWebhookUrl,
            format!(
                "The URL for the webhook `{url}` is invalid: it must be an absolute http or https URL."
            ),
        )),
    }
}

/// Applies a `headers` patch: `null` removes all headers, a `null` value removes one.
fn patch_headers(current: &mut Map<String, Value>, patch: &Value) -> Result<(), ApiError> {
    match patch {
        Value::Null => current.clear(),
        Value::Object(map) => {
            for (name, v) in map {
                match v {
                    Value::Null => {
                        current.remove(name);
                    }
                    Value::String(_) => {
                        current.insert(name.clone(), v.clone());
                    }
                    other => {
                        return Err(params::wrong_type(
                            Code::InvalidWebhookHeaders,
                            &format!("headers.{name}"),
                            "a string",
                            other,
                        ));
                    }
                }
            }
        }
        other => {
            return Err(params::wrong_type(
                Code::InvalidWebhookHeaders,
                "headers",
                "an object",
                other,
            ));
        }
    }
    Ok(())
}

fn load(engine: &Engine, uuid: &str) -> Result<Value, ApiError> {
    engine
        .meta()
        .record::<Value>(&format!("{PREFIX}{uuid}"))?
        .ok_or_else(|| not_found(uuid))
}

/// `GET /webhooks`.
pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state
        .run(|engine| {
            let all = engine.meta().records::<Value>(PREFIX)?;
            let results: Vec<Value> = all.iter().map(|(_, v)| shown(v)).collect();
            Ok(Json(json!({ "results": results })))
        })
        .await
}

/// `POST /webhooks {url, headers?}` → 201.
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Body,
) -> Result<Response, ApiError> {
    let value = body::read_json(&headers, request, state.config.payload_limit_bytes).await?;
    let map = params::object(value, &["url", "headers"])?;
    let url = match map.get("url") {
        None | Some(Value::Null) => {
            return Err(ApiError::new(
                Code::InvalidWebhookUrl,
                "The `url` field is required to create a webhook.",
            ));
        }
        Some(v) => validate_url(v)?,
    };
    let mut header_map = Map::new();
    if let Some(h) = map.get("headers") {
        patch_headers(&mut header_map, h)?;
    }
    let uuid = new_uuid();
    let record = json!({"uuid": uuid, "url": url, "headers": header_map});
    state
        .run(move |engine| {
            engine
                .meta()
                .put_record(&format!("{PREFIX}{uuid}"), Some(&record))?;
            Ok((StatusCode::CREATED, Json(shown(&record))).into_response())
        })
        .await
}

/// `GET /webhooks/{uuid}`.
pub async fn get(
    State(state): State<AppState>,
    Path(uuid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state
        .run(move |engine| Ok(Json(shown(&load(engine, &uuid)?))))
        .await
}

/// `PATCH /webhooks/{uuid} {url?, headers?}`.
pub async fn update(
    State(state): State<AppState>,
    Path(uuid): Path<String>,
    headers: HeaderMap,
    request: Body,
) -> Result<Json<Value>, ApiError> {
    let value = body::read_json(&headers, request, state.config.payload_limit_bytes).await?;
    let map = params::object(value, &["url", "headers"])?;
    let url = map.get("url").map(validate_url).transpose()?;
    state
        .run(move |engine| {
            let _guard = UPDATES.lock().unwrap_or_else(|e| e.into_inner());
            let mut record = load(engine, &uuid)?;
            let mut header_map = record
                .get("headers")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            if let Some(h) = map.get("headers") {
                patch_headers(&mut header_map, h)?;
            }
            if let Some(obj) = record.as_object_mut() {
                if let Some(url) = url {
                    obj.insert("url".into(), Value::String(url));
                }
                obj.insert("headers".into(), Value::Object(header_map));
            }
            engine
                .meta()
                .put_record(&format!("{PREFIX}{uuid}"), Some(&record))?;
            Ok(Json(shown(&record)))
        })
        .await
}

/// `DELETE /webhooks/{uuid}` → 204.
pub async fn delete(
    State(state): State<AppState>,
    Path(uuid): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .run(move |engine| {
            let _guard = UPDATES.lock().unwrap_or_else(|e| e.into_inner());
            load(engine, &uuid)?;
            engine
                .meta()
                .put_record::<Value>(&format!("{PREFIX}{uuid}"), None)?;
            Ok(StatusCode::NO_CONTENT)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4() {
        let u = new_uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(new_uuid(), u);
    }

    #[test]
    fn urls_and_headers() {
        assert!(validate_url(&json!("https://example.com/hook")).is_ok());
        assert!(validate_url(&json!("ftp://example.com")).is_err());
        assert!(validate_url(&json!("http://")).is_err());
        assert!(validate_url(&json!(3)).is_err());
        let mut h = Map::new();
        patch_headers(&mut h, &json!({"a": "1", "b": "2"})).unwrap();
        patch_headers(&mut h, &json!({"a": null})).unwrap();
        assert_eq!(Value::Object(h.clone()), json!({"b": "2"}));
        assert!(patch_headers(&mut h, &json!({"a": 1})).is_err());
    }
}
