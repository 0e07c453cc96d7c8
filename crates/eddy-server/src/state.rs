//! What every handler shares: the engine and the server's settings.

use std::sync::Arc;

use eddy_engine::{Engine, PreparedWrite, Task};

use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::keys::KeyStore;

/// Shared state of the router. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The engine.
    pub engine: Arc<Engine>,
    /// Server settings.
    pub config: Arc<ServerConfig>,
    /// API keys.
    pub keys: Arc<KeyStore>,
}

impl AppState {
    /// Wraps an engine and settings, loading the API keys (and creating the default ones on
    /// a new database).
    ///
    /// # Errors
    /// When the metadata store fails.
    pub fn new(engine: Arc<Engine>, config: ServerConfig) -> Result<AppState, ApiError> {
        let keys = KeyStore::open(&engine, config.master_key.clone())?;
        Ok(AppState {
            engine,
            config: Arc::new(config),
            keys: Arc::new(keys),
        })
    }

    /// Writes a prepared write without parking a thread while its group commit is synced: it
    /// is submitted to the log, the durability wait is awaited and it is applied, all on the
    /// calling task. Where a step would block (memory, the index's queue held by another
    /// writer, a full log queue) the rest runs on the blocking pool instead. Acknowledged, like
    /// every write, only once durable and applied.
    ///
    /// # Errors
    /// The write's error, or `internal` if a blocking part panicked.
    pub async fn write_async(&self, prepared: PreparedWrite) -> Result<Task, ApiError> {
        let mut submitted = match self.engine.try_submit(prepared)? {
            Ok(submitted) => submitted,
            Err(prepared) => {
                return self
                    .run(move |engine| Ok(engine.write_prepared(prepared)?))
                    .await;
            }
        };
        submitted.durable().await;
        match submitted.try_complete() {
            Ok(result) => Ok(result?),
            Err(submitted) => self.run(move |_| Ok((*submitted).complete()?)).await,
        }
    }

    /// Runs a synchronous engine call on Tokio's blocking pool. Writes block there until
    /// their group commit is durable, so the async workers stay free for other requests.
    ///
    /// # Errors
    /// The call's own error, or `internal` if it panicked.
    pub async fn run<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Engine) -> Result<T, ApiError> + Send + 'static,
    {
        let engine = self.engine.clone();
        match tokio::task::spawn_blocking(move || f(&engine)).await {
            Ok(result) => result,
            Err(e) => {
                tracing::error!(error = %e, "engine call panicked or was cancelled");
                Err(ApiError::internal("the engine call did not complete"))
            }
        }
    }
}
