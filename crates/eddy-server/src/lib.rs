//! Meilisearch-compatible HTTP API for eddy.
//!
//! This crate owns everything HTTP: the router, request parsing and validation, the mapping
//! of engine errors to Meilisearch's error objects, authentication and the server's
//! configuration. It knows nothing of storage formats: every read and write goes through
//! [`eddy_engine::Engine`], which is synchronous, so handlers call it on Tokio's blocking
//! pool ([`state::AppState::run`]).
//!
//! Write routes answer `202 Accepted` with the summarized task only after the engine has made
//! the operation durable and applied it, so the task a client polls is already finished.
//!
//! Modules:
//! - [`config`]: server settings and Meilisearch's byte-size syntax.
//! - [`error`]: [`ApiError`], the one response shape of every failure.
//! - [`auth`]: who is asking (master key, API key, tenant token) and the action table.
//! - [`keys`]: API keys: derivation, actions, index patterns, storage.
//! - [`tenant`]: tenant tokens (JWT HS256/384/512) and their search rules.
//! - [`body`]: request bodies: size limit, `Content-Encoding`, `Content-Type`, JSON.
//! - [`params`]: query-string and JSON-field validation with Meilisearch's messages.
//! - [`routes`]: one module per group of routes.

#![forbid(unsafe_code)]

pub mod auth;
pub mod body;
pub mod config;
pub mod error;
pub mod keys;
pub mod params;
pub mod routes;
pub mod state;
pub mod tenant;

use std::future::Future;

use axum::serve::ListenerExt;

pub use config::{ServerConfig, parse_byte_size};
pub use error::ApiError;
pub use routes::router;
pub use state::AppState;

/// Serves the API on `listener` until `shutdown` resolves, then stops accepting connections
/// and waits for in-flight requests to finish.
///
/// # Errors
/// Fails when accepting connections fails irrecoverably.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Small request/response exchanges: Nagle's algorithm would only add latency.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    });
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
