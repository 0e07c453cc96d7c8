//! Meilisearch-compatible HTTP API for eddy.
//!
//! This crate owns everything HTTP: the router, request parsing and validation, the mapping
//! of engine errors to Meilisearch's error objects, authentication and the server's
//! configuration. It knows nothing of storage formats: every read and write goes through
//! [`eddy_engine::Engine`], which is synchronous, so handlers call it on Tokio's blocking
//! pool ([`state::AppState::run`]). Small document writes are the exception: they are
//! submitted to the log on the async worker and await their group commit there
//! ([`state::AppState::write_async`]), which saves two thread hand-offs per write.
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

pub use config::{ServerConfig, parse_byte_size};
pub use error::ApiError;
pub use routes::router;
pub use state::AppState;

/// Serves the API on `listener` until `shutdown` resolves, then stops accepting connections
/// and waits for in-flight requests to finish.
///
/// Each connection reads a request's headers within the configured read timeout (a client
/// that trickles them in is dropped); bodies have their own idle timeout ([`body::read`]).
///
/// # Errors
/// Fails when accepting connections fails irrecoverably.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::server::graceful::GracefulShutdown;
    use hyper_util::service::TowerToHyperService;

    let timeout = state.config.read_timeout;
    let app = router(state);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(timeout))
        .keep_alive_timeout(timeout);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small request/response exchanges: Nagle's algorithm would only add latency.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let service = TowerToHyperService::new(app.clone());
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(tcp), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
