//! `/tasks`, `/tasks/{uid}`, `/tasks/cancel`, `/batches`, `/batches/{uid}`.
//!
//! eddy applies every write before answering, so each task is its own batch: the batch uid
//! is the task uid, and a batch object is derived from its one task.

use axum::Json;
use axum::extract::{Extension, Path, RawQuery, State};
use axum::response::Response;
use eddy_engine::document::validate_index_uid;
use eddy_engine::task::format_time;
use eddy_engine::{Code, Task, TaskFilter, TaskKind, TaskStatus};
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{Date, Duration, OffsetDateTime, Time};

use super::accepted;
use crate::auth::Access;
use crate::error::ApiError;
use crate::params::QueryParams;
use crate::state::AppState;

const FILTERS: [&str; 12] = [
    "uids",
    "batchUids",
    "canceledBy",
    "statuses",
    "types",
    "indexUids",
    "beforeEnqueuedAt",
    "afterEnqueuedAt",
    "beforeStartedAt",
    "afterStartedAt",
    "beforeFinishedAt",
    "afterFinishedAt",
];

fn list_params() -> Vec<&'static str> {
    let mut known = FILTERS.to_vec();
    known.extend(["limit", "from", "reverse"]);
    known
}

fn write_params() -> Vec<&'static str> {
    let mut known = FILTERS.to_vec();
    known.push("customMetadata");
    known
}

/// Items of a list parameter; `*` (or nothing) means no restriction.
fn items(q: &QueryParams, name: &str) -> Option<Vec<String>> {
    q.list(name).filter(|l| !l.iter().any(|s| s == "*"))
}

fn uids(q: &QueryParams, name: &str, code: Code) -> Result<Option<Vec<u64>>, ApiError> {
    items(q, name)
        .map(|list| {
            list.iter()
                .enumerate()
                .map(|(i, s)| {
                    s.parse::<u64>().map_err(|_| {
                        ApiError::new(
                            code,
                            format!(
                                "Invalid value in parameter `{name}[{i}]`: could not parse `{s}` as a positive integer"
                            ),
                        )
                    })
                })
                .collect()
        })
        .transpose()
}

/// Parses a task date: RFC 3339, or `YYYY-MM-DD` (an `after` date means after that day).
fn date(
    q: &QueryParams,
    name: &str,
    code: Code,
    after: bool,
) -> Result<Option<OffsetDateTime>, ApiError> {
    let Some(value) = q.get(name) else {
        return Ok(None);
    };
    let value = value.trim();
    if value == "*" {
        return Ok(None);
    }
    if let Ok(t) = OffsetDateTime::parse(value, &Rfc3339) {
        return Ok(Some(t));
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(day) = Date::parse(value, &format) {
        let midnight = day.with_time(Time::MIDNIGHT).assume_utc();
        return Ok(Some(if after {
            midnight + Duration::days(1)
        } else {
            midnight
        }));
    }
    Err(ApiError::new(
        code,
        format!(
            "Invalid value in parameter `{name}`: `{value}` is an invalid date-time. It should follow the YYYY-MM-DD or RFC 3339 date-time format."
        ),
    ))
}

/// Parses the task filter of a query string; the flag says whether any filter was given.
///
/// # Errors
/// The `invalid_task_*` code of the first invalid parameter.
pub fn filter(q: &QueryParams) -> Result<(TaskFilter, bool), ApiError> {
    let statuses = items(q, "statuses")
        .map(|list| {
            list.iter()
                .map(|s| {
                    TaskStatus::parse(s).ok_or_else(|| {
                        ApiError::new(
                            Code::InvalidTaskStatuses,
                            format!(
                                "Invalid value in parameter `statuses`: `{s}` is not a valid task status. Available statuses are `enqueued`, `processing`, `succeeded`, `failed`, `canceled`."
                            ),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let types = items(q, "types")
        .map(|list| {
            list.iter()
                .map(|s| {
                    TaskKind::parse(s).ok_or_else(|| {
                        let all: Vec<String> =
                            TaskKind::ALL.iter().map(|k| format!("`{}`", k.as_str())).collect();
                        ApiError::new(
                            Code::InvalidTaskTypes,
                            format!(
                                "Invalid value in parameter `types`: `{s}` is not a valid task type. Available types are {}.",
                                all.join(", ")
                            ),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let index_uids = items(q, "indexUids")
        .map(|list| {
            for uid in &list {
                if validate_index_uid(uid).is_err() {
                    return Err(ApiError::new(
                        Code::InvalidTaskIndexUids,
                        format!(
                            "Invalid value in parameter `indexUids`: `{uid}` is not a valid index uid. Index uid can be an integer or a string containing only alphanumeric characters, hyphens (-) and underscores (_), and can not be more than 400 bytes."
                        ),
                    ));
                }
            }
            Ok(list)
        })
        .transpose()?;
    let filter = TaskFilter {
        uids: uids(q, "uids", Code::InvalidTaskUids)?,
        batch_uids: uids(q, "batchUids", Code::InvalidTaskBatchUids)?,
        canceled_by: uids(q, "canceledBy", Code::InvalidTaskCanceledBy)?,
        statuses,
        types,
        index_uids,
        index_patterns: None,
        before_enqueued_at: date(
            q,
            "beforeEnqueuedAt",
            Code::InvalidTaskBeforeEnqueuedAt,
            false,
        )?,
        after_enqueued_at: date(q, "afterEnqueuedAt", Code::InvalidTaskAfterEnqueuedAt, true)?,
        before_started_at: date(
            q,
            "beforeStartedAt",
            Code::InvalidTaskBeforeStartedAt,
            false,
        )?,
        after_started_at: date(q, "afterStartedAt", Code::InvalidTaskAfterStartedAt, true)?,
        before_finished_at: date(
            q,
            "beforeFinishedAt",
            Code::InvalidTaskBeforeFinishedAt,
            false,
        )?,
        after_finished_at: date(q, "afterFinishedAt", Code::InvalidTaskAfterFinishedAt, true)?,
    };
    Ok((filter, q.has_any(&FILTERS)))
}

/// Paging parameters of a listing: limit, from, reverse.
fn paging(q: &QueryParams) -> Result<(usize, Option<u64>, bool), ApiError> {
    let limit = q.usize("limit", Code::InvalidTaskLimit)?.unwrap_or(20);
    let from = q.usize("from", Code::InvalidTaskFrom)?.map(|f| f as u64);
    let reverse = q
        .bool("reverse", Code::InvalidTaskReverse)?
        .unwrap_or(false);
    Ok((limit, from, reverse))
}

fn task_uid(text: &str, name: &str, code: Code) -> Result<u64, ApiError> {
    text.parse::<u64>().map_err(|_| {
        ApiError::new(
            code,
            format!("Invalid value in parameter `{name}`: could not parse `{text}` as a positive integer"),
        )
    })
}

/// A page of tasks or batches, in Meilisearch's listing shape.
async fn listing(
    state: &AppState,
    access: &Access,
    raw: Option<String>,
    shape: fn(&Task) -> Value,
) -> Result<Json<Value>, ApiError> {
    let q = QueryParams::parse(raw.as_deref())?;
    q.only(&list_params())?;
    let (mut filter, _) = filter(&q)?;
    filter.index_patterns = access.index_patterns();
    let (limit, from, reverse) = paging(&q)?;
    state
        .run(move |engine| {
            let page = engine.tasks(&filter, from, limit, reverse)?;
            let results: Vec<Value> = page.results.iter().map(shape).collect();
            Ok(Json(json!({
                "results": results,
                "total": page.total,
                "limit": limit,
                "from": page.results.first().map(|t| t.uid),
                "next": page.next,
            })))
        })
        .await
}

fn task_json(task: &Task) -> Value {
    serde_json::to_value(task).unwrap_or(Value::Null)
}

/// `GET /tasks`: only tasks of indexes the key may reach.
pub async fn list(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    listing(&state, &access, raw, task_json).await
}

/// Whether a task is visible to `access`: its index is reachable, and tasks of no index
/// only to keys reaching every index.
fn visible(access: &Access, task: &Task) -> bool {
    match &task.index_uid {
        Some(index) => access.index_allowed(index),
        None => access.all_indexes(),
    }
}

/// `GET /tasks/{uid}` (`task_not_found` for a task the key may not see).
pub async fn get(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path(uid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let uid = task_uid(&uid, "taskUid", Code::InvalidTaskUids)?;
    state
        .run(move |engine| {
            let task = engine.task(uid)?;
            if !visible(&access, &task) {
                return Err(eddy_engine::Error::TaskNotFound(uid).into());
            }
            Ok(Json(task_json(&task)))
        })
        .await
}

async fn filtered_write(
    state: AppState,
    access: &Access,
    raw: Option<String>,
    action: &'static str,
    cancel: bool,
) -> Result<Response, ApiError> {
    let q = QueryParams::parse(raw.as_deref())?;
    q.only(&write_params())?;
    let (mut filter, given) = filter(&q)?;
    filter.index_patterns = access.index_patterns();
    if !given {
        return Err(ApiError::new(
            Code::MissingTaskFilters,
            format!(
                "Query parameters to filter the tasks to {action} are missing. Available query parameters are: {}.",
                FILTERS
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let original = q.raw().to_string();
    let task = state
        .run(move |engine| {
            Ok(if cancel {
                engine.cancel_tasks(filter, original)?
            } else {
                engine.delete_tasks(filter, original)?
            })
        })
        .await?;
    Ok(accepted(&task))
}

/// `POST /tasks/cancel?<filter>`.
pub async fn cancel(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    filtered_write(state, &access, raw, "cancel", true).await
}

/// `DELETE /tasks?<filter>`.
pub async fn delete(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    filtered_write(state, &access, raw, "delete", false).await
}

/// The batch of one task, in the shape of Meilisearch's batch object.
pub fn batch_json(task: &Task) -> Value {
    let mut index_uids = serde_json::Map::new();
    if let Some(uid) = &task.index_uid {
        index_uids.insert(uid.clone(), json!(1));
    }
    json!({
        "uid": task.uid,
        "progress": null,
        "details": task.details.clone().unwrap_or_default(),
        "stats": {
            "totalNbTasks": 1,
            "status": { task.status.as_str(): 1 },
            "types": { task.kind.as_str(): 1 },
            "indexUids": index_uids,
        },
        "duration": task.duration,
        "startedAt": task.started_at.map(format_time),
        "finishedAt": task.finished_at.map(format_time),
        "batchStrategy": "eddy applies every task on its own, before acknowledging it",
    })
}

/// `GET /batches`.
pub async fn batches(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    listing(&state, &access, raw, batch_json).await
}

/// `GET /batches/{uid}`.
pub async fn batch(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path(uid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let uid = task_uid(&uid, "batchUid", Code::InvalidTaskBatchUids)?;
    state
        .run(move |engine| match engine.task(uid) {
            Ok(task) if visible(&access, &task) => Ok(Json(batch_json(&task))),
            Ok(_) | Err(eddy_engine::Error::TaskNotFound(_)) => Err(ApiError::new(
                Code::BatchNotFound,
                format!("Batch `{uid}` not found."),
            )),
            Err(e) => Err(e.into()),
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse() {
        let q = QueryParams::parse(Some(
            "uids=1,2&statuses=succeeded,failed&types=indexCreation&indexUids=movies&afterEnqueuedAt=2024-01-02&beforeFinishedAt=2024-01-02T10:00:00.5Z",
        ))
        .unwrap();
        let (f, given) = filter(&q).unwrap();
        assert!(given);
        assert_eq!(f.uids, Some(vec![1, 2]));
        assert_eq!(
            f.statuses,
            Some(vec![TaskStatus::Succeeded, TaskStatus::Failed])
        );
        assert_eq!(f.types, Some(vec![TaskKind::IndexCreation]));
        assert_eq!(f.index_uids, Some(vec!["movies".to_string()]));
        assert_eq!(
            format_time(f.after_enqueued_at.unwrap()),
            "2024-01-03T00:00:00.000000000Z"
        );
        assert!(f.before_finished_at.is_some());
        let (f, given) = filter(&QueryParams::parse(Some("statuses=*")).unwrap()).unwrap();
        assert!(given && f.statuses.is_none());
        let (_, given) = filter(&QueryParams::parse(Some("")).unwrap()).unwrap();
        assert!(!given);
        for (query, code) in [
            ("uids=a", "invalid_task_uids"),
            ("statuses=done", "invalid_task_statuses"),
            ("types=nope", "invalid_task_types"),
            ("indexUids=a%20b", "invalid_task_index_uids"),
            ("canceledBy=x", "invalid_task_canceled_by"),
            ("afterStartedAt=yesterday", "invalid_task_after_started_at"),
        ] {
            let err = filter(&QueryParams::parse(Some(query)).unwrap()).unwrap_err();
            assert_eq!(err.body().code, code, "{query}");
        }
    }
}
