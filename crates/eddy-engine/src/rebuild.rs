//! Rebuilding an index when a settings change alters what is indexed.
//!
//! Today the settings that change indexing are the tokenization ones (`separatorTokens`,
//! `nonSeparatorTokens`, `dictionary`); searchable attributes, stop words, synonyms and typo
//! settings are applied at query time and need no rebuild.
//!
//! The rebuild happens *in place, at the settings operation's LSN*: every document visible
//! just before the operation is written again, in insertion order, as a new version at that
//! LSN, analyzed with the new settings. The memtable's LSN-versioned slots make this an atomic
//! swap: searches running meanwhile read the old versions (their snapshot is older than the
//! LSN) and never see a half-rebuilt index; once the operation finishes, every search sees
//! only new versions. New versions hide the old ones in every older layer, and flushes turn
//! them into segments like any write.
//!
//! Crash safety comes from the log: the settings operation is a log record, so a replay that
//! reaches it (its LSN is above the index's checkpoint) rebuilds again from the same state,
//! and one that does not finds the rebuilt versions in the segments already. The decision
//! depends only on the logged patch (it names a tokenization setting), never on the stored
//! settings, which a replay may find already patched; so the live run and any replay decide
//! the same. A patch that names one without changing it (a settings reset) rebuilds too.
//!
//! Limits, on purpose for now: writes to the same index wait while the rebuild runs (they
//! are queued behind it in log order, none is refused or lost; searches and other indexes
//! are not held up), and the rebuilt versions sit in memtables until the next flush, so a
//! rebuild needs memory in proportion to the index.

use serde_json::{Map, Value};

use crate::config::EngineConfig;
use crate::document::Document;
use crate::error::{Error, Result};
use crate::index::IndexInstance;
use crate::ops::Method;
use crate::search::eval::{TopK, placeholder};

/// Settings whose change alters how documents are indexed.
pub const INDEXING_SETTINGS: [&str; 3] = ["separatorTokens", "nonSeparatorTokens", "dictionary"];

/// Whether a settings patch asks for a rebuild.
pub fn needs_rebuild(patch: &Map<String, Value>) -> bool {
    INDEXING_SETTINGS.iter().any(|k| patch.contains_key(*k))
}

/// Re-indexes every visible document of `instance` at `lsn` with its current settings.
/// Returns how many documents were rebuilt.
///
/// # Errors
/// Storage errors (the caller poisons the engine).
pub fn rebuild_in_place(instance: &IndexInstance, lsn: u64, config: &EngineConfig) -> Result<u64> {
    let Some(pk) = instance.record().primary_key else {
        return Ok(0);
    };
    let docs: Vec<Document> = instance.with_snapshot(|s| {
        let mut all = TopK::new(usize::MAX);
        placeholder(s, &mut all);
        let mut docs = Vec::with_capacity(all.count as usize);
        for c in all.into_sorted() {
            let doc: Document = serde_json::from_slice(&s.json(c.doc.layer, c.doc.doc)?)
                .map_err(|e| Error::Corrupt(format!("stored document does not decode: {e}")))?;
            docs.push(doc);
        }
        Ok(docs)
    })?;
    if docs.is_empty() {
        return Ok(0);
    }
    tracing::info!(index = %instance.uid(), docs = docs.len(), lsn, "rebuilding index for new settings");
    instance.apply_documents(lsn, docs, None, Method::Replace, &pk, config)
}
