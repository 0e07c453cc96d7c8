//! `/health`, `/version`, `/stats`, `/indexes/{uid}/stats`.

use std::path::Path;

use axum::Json;
use axum::extract::{Extension, Path as UrlPath, RawQuery, State};
use eddy_engine::task::format_time;
use eddy_engine::{Engine, IndexStats};
use serde_json::{Map, Value, json};

use crate::auth::Access;
use crate::error::ApiError;
use crate::params::QueryParams;
use crate::state::AppState;

/// `GET /health`: answers while the process serves (no key needed).
pub async fn health() -> Json<Value> {
    Json(json!({"status": "available"}))
}

/// `GET /version`.
pub async fn version() -> Json<Value> {
    Json(json!({
        "pkgVersion": env!("CARGO_PKG_VERSION"),
        "commitSha": option_env!("EDDY_COMMIT_SHA").unwrap_or("unknown"),
        "commitDate": option_env!("EDDY_COMMIT_DATE").unwrap_or("unknown"),
    }))
}

fn stats_json(stats: &IndexStats) -> Value {
    json!({
        "numberOfDocuments": stats.number_of_documents,
        "isIndexing": stats.rebuilding,
        "numberOfEmbeddings": 0,
        "numberOfEmbeddedDocuments": 0,
        "fieldDistribution": stats.field_distribution,
    })
}

const STATS_PARAMS: [&str; 2] = ["showInternalDatabaseSizes", "sizeFormat"];

/// `GET /indexes/{uid}/stats`.
pub async fn index_stats(
    State(state): State<AppState>,
    UrlPath(uid): UrlPath<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    QueryParams::parse(query.as_deref())?.only(&STATS_PARAMS)?;
    eddy_engine::document::validate_index_uid(&uid)?;
    state
        .run(move |engine| Ok(Json(stats_json(&engine.index_stats(&uid, true)?))))
        .await
}

/// `GET /stats`: only the indexes the key may reach.
pub async fn stats(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    QueryParams::parse(query.as_deref())?.only(&STATS_PARAMS)?;
    state
        .run(move |engine| Ok(Json(global_stats(engine, &access)?)))
        .await
}

fn global_stats(engine: &Engine, access: &Access) -> Result<Value, ApiError> {
    let mut indexes = Map::new();
    let mut last_update = None;
    for info in engine.indexes() {
        if !access.index_allowed(&info.uid) {
            continue;
        }
        let stats = match engine.index_stats(&info.uid, true) {
            Ok(s) => s,
            // Deleted between the listing and now.
            Err(eddy_engine::Error::IndexNotFound(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        last_update = last_update.max(Some(info.updated_at));
        indexes.insert(info.uid.clone(), stats_json(&stats));
    }
    let size = directory_size(engine.path());
    Ok(json!({
        "databaseSize": size,
        "usedDatabaseSize": size,
        "lastUpdate": last_update.map(format_time),
        "indexes": indexes,
    }))
}

/// Bytes of every file under `path` (unreadable entries count as empty).
fn directory_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(m) if m.is_dir() => directory_size(&entry.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
