//! eddy's engine: indexes whose every acknowledged write is durable and searchable at once.
//!
//! - [`engine`]: the [`Engine`] — write path over a shared write-ahead log, recovery,
//!   background flusher, checkpoints.
//! - [`index`]: one index incarnation: its view (Tantivy searcher + memtables).
//! - [`memtable`]: the in-memory inverted index of recent writes.
//! - [`segments`]: the Tantivy side (commits that carry the checkpoint LSN).
//! - [`search`]: query parsing, derivations, matching and BM25 ranking over all layers.
//! - [`meta`]: the redb metadata store (registry, settings, tasks).
//!
//! The contract (invariants W1–M1) is in `DESIGN.md` of the shared documents; how each is
//! kept is described in the module that keeps it.

#![forbid(unsafe_code)]

pub mod analysis;
pub mod bm25;
pub mod config;
pub mod document;
pub mod engine;
pub mod error;
pub mod hidden;
pub mod index;
pub mod key_filter;
pub mod memory;
pub mod memtable;
pub mod merge;
pub mod meta;
pub mod ops;
pub mod rebuild;
pub mod search;
pub mod segment_build;
pub mod segments;
pub mod settings;
pub mod storage;
pub mod task;

pub use config::{Durability, EngineConfig, MergeStrategy};
pub use document::{Document, PayloadFormat};
pub use engine::{
    DocumentQuery, Engine, IndexInfo, IndexStats, PreparedWrite, RecoveryStats, SearchHit,
    SearchResults, SubmittedWrite, TaskPage,
};
pub use error::{Code, Error, ErrorType, ResponseError, Result};
pub use ops::Method;
pub use search::{MatchingStrategy, SearchRequest};
pub use segments::SegmentConfig;
pub use settings::Settings;
pub use storage::{Disk, FsDisk};
pub use task::{Task, TaskFilter, TaskKind, TaskStatus};
