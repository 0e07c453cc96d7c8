//! The router: one module per group of Meilisearch routes.

pub mod documents;
pub mod facet_search;
pub mod features;
pub mod indexes;
pub mod keys;
pub mod meta;
pub mod multi_search;
pub mod score_details;
pub mod search;
pub mod settings;
pub mod tasks;
pub mod webhooks;

use std::any::Any;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use eddy_engine::{Code, Task};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::auth;
use crate::error::ApiError;
use crate::state::AppState;

/// Builds the router of the whole API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(meta::health))
        .route("/version", get(meta::version))
        .route("/stats", get(meta::stats))
        .route("/indexes", get(indexes::list).post(indexes::create))
        .route(
            "/indexes/{uid}",
            get(indexes::get)
                .patch(indexes::update)
                .delete(indexes::delete),
        )
        .route("/indexes/{uid}/stats", get(meta::index_stats))
        .route(
            "/indexes/{uid}/documents",
            get(documents::list)
                .post(documents::replace)
                .put(documents::update)
                .delete(documents::clear),
        )
        .route("/indexes/{uid}/documents/fetch", post(documents::fetch))
        .route(
            "/indexes/{uid}/documents/delete-batch",
            post(documents::delete_batch),
        )
        .route(
            "/indexes/{uid}/documents/delete",
            post(documents::delete_by_filter),
        )
        .route(
            "/indexes/{uid}/documents/{id}",
            get(documents::get_one).delete(documents::delete_one),
        )
        .route("/indexes/{uid}/search", get(search::get).post(search::post))
        .route(
            "/indexes/{uid}/facet-search",
            post(facet_search::facet_search),
        )
        .route("/multi-search", post(multi_search::multi_search))
        .route(
            "/indexes/{uid}/settings",
            get(settings::get)
                .patch(settings::update)
                .delete(settings::reset),
        )
        .route(
            "/indexes/{uid}/settings/{setting}",
            get(settings::get_one)
                .put(settings::put_one)
                .patch(settings::patch_one)
                .delete(settings::reset_one),
        )
        .route("/keys", get(keys::list).post(keys::create))
        .route(
            "/keys/{key}",
            get(keys::get).patch(keys::update).delete(keys::delete),
        )
        .route("/tasks", get(tasks::list).delete(tasks::delete))
        .route("/tasks/cancel", post(tasks::cancel))
        .route("/tasks/{uid}", get(tasks::get))
        .route("/batches", get(tasks::batches))
        .route("/batches/{uid}", get(tasks::batch))
        .route("/webhooks", get(webhooks::list).post(webhooks::create))
        .route(
            "/webhooks/{uuid}",
            get(webhooks::get)
                .patch(webhooks::update)
                .delete(webhooks::delete),
        )
        .route(
            "/experimental-features",
            get(features::get).patch(features::update),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::middleware,
        ))
        .layer(axum::middleware::from_fn(crate::body::drain_unread))
        .layer(DefaultBodyLimit::disable())
        // A body that stalls longer than this between two pieces ends the request.
        .layer(RequestBodyTimeoutLayer::new(state.config.read_timeout))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state)
}

/// The span of a request, without its query string (it may hold a tenant's filter) and with
/// the key of `/keys/{key}` redacted, so that no secret reaches a log even at debug level.
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let path = request.uri().path();
    let path = match path.strip_prefix("/keys/") {
        Some(_) => "/keys/<redacted>",
        None => path,
    };
    tracing::debug_span!("request", method = %request.method(), path = %path)
}

/// The checks every index write route starts with: only the write query parameters, and a
/// valid index uid.
pub fn check_write(query: Option<&str>, uid: &str) -> Result<(), ApiError> {
    crate::params::QueryParams::parse(query)?.only(&indexes::WRITE_PARAMS)?;
    eddy_engine::document::validate_index_uid(uid)?;
    Ok(())
}

/// The answer of every write route: 202 with the summarized task. The engine returns only
/// after the operation is durable and applied, so the task is already finished and answers
/// its final status — except a settings change that rebuilds the index, which answers
/// `enqueued` like every Meilisearch 202 (`processing` on `GET /tasks/{uid}` until the
/// rebuild is swapped in).
pub fn accepted(task: &Task) -> Response {
    (StatusCode::ACCEPTED, axum::Json(task.summary())).into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(Code::NotFound, "Not found.")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        Code::MethodNotAllowed,
        "This HTTP method is not allowed on this route.",
    )
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let what = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = what, "a request handler panicked");
    ApiError::internal("An internal error occurred while handling the request.").into_response()
}
