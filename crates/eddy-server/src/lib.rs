//! Meilisearch-compatible HTTP API for eddy.
