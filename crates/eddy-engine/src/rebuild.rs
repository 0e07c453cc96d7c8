//! Rebuilding an index when a settings change alters what is indexed.
//!
//! The settings that change indexing are the tokenization ones (`separatorTokens`,
//! `nonSeparatorTokens`, `dictionary`); searchable attributes, stop words, synonyms and typo
//! settings are applied at query time and need no rebuild.
//!
//! # A live rebuild
//!
//! A settings operation whose tokenization differs from the serving one, on an index with
//! documents, does not change the index at once. It records a [`PendingRebuild`] in the
//! index's registry record (the target settings, the tasks waiting for it) and its task
//! stays `processing`; the index keeps serving, and `GET /settings` keeps answering, with
//! the old settings — as Meilisearch does until it has processed a settings task. A
//! background thread (the engine's *rebuilder*) then:
//!
//! 1. **begins** with the index's writes paused for a moment: it freezes the active memtable,
//!    pins the resulting view, notes its LSN `P`, starts recording which ids the write path
//!    touches ([`crate::index::Touched`]) and holds the log from `P + 1` on;
//! 2. **copies** every document of the pinned view, in insertion order and with its
//!    ordering key, into a new Tantivy directory analyzed with the target settings,
//!    flushing as memtables fill; the last commit carries the checkpoint `P`. Writes keep
//!    being applied to the old index meanwhile;
//! 3. **catches up** in rounds: it takes the touched ids (the set starts afresh) and their
//!    label, the LSN of the last operation that touched one, then copies each id's current
//!    version (or its absence) from the old index into the new one's memtable, as one
//!    operation at that label;
//! 4. **swaps**, with the index's writes paused again: a last catch-up round (now exact: no
//!    write is in progress), then one durable metadata commit (the new directory, the target
//!    settings, the finished tasks) and the new incarnation takes the slot. Searches that
//!    started before keep their old view; every later one sees the new index whole.
//!
//! # Why it is crash safe
//!
//! Until the swap commit is durable the registry names the old directory, which nothing
//! in a rebuild modifies: a crash reopens the old index (plus the log) and the rebuilder
//! starts again from scratch from the pending record; the half-built directory is an
//! orphan and is removed when the engine opens. After the swap, the new index's checkpoint
//! is `P`: a replay re-applies every operation after `P`, the ones the catch-up copied
//! included, exactly as a replay does for any index. The log keeps them: from the beginning
//! the engine does not truncate it past `P + 1`, and after the swap the catch-up memtable
//! answers for `P + 1` ([`crate::memtable::Memtable::hold_from`]) until it is flushed; it
//! is flushed whole, with the LSN of the swap or later, so no checkpoint ever falls between
//! `P` and the swap (where the catch-up's ids would hold versions newer than the
//! checkpoint).
//!
//! # What interrupts a rebuild
//!
//! Another settings change that alters tokenization again restarts it (the pending record
//! takes the new LSN and target, its task joins the waiting ones); one that changes only
//! query-time settings applies at once to both the serving and the target settings and
//! succeeds. Returning to the serving tokenization, or no documents left, finishes the
//! pending tasks at once. Deleting the index cancels the waiting tasks. Clearing the index
//! restarts the rebuild (the new snapshot is small). Canceling its tasks (`POST
//! /tasks/cancel`) abandons it: the pending record goes, durably, the serving settings stay
//! (tasks of the rebuild the cancelation did not match run again). An engine that stops
//! leaves the pending record for the next open.
//!
//! # Logs written before live rebuilds
//!
//! Before live rebuilds, a settings operation rebuilt *in place at its LSN*
//! ([`rebuild_in_place`]); a replay of such a record (its task succeeded, it names a
//! tokenization setting, its LSN is above the index's checkpoint) still does that.

use std::sync::Arc;

use eddy_wal::Lsn;
use serde_json::{Map, Value};

use crate::config::EngineConfig;
use crate::document::Document;
use crate::error::{Error, Result};
use crate::index::{IndexInstance, Touched, Version, View};
use crate::ops::Method;
use crate::search::eval::{TopK, placeholder};
use crate::search::layers::DocRef;

pub use crate::meta::PendingRebuild;

/// Settings whose change alters how documents are indexed.
pub const INDEXING_SETTINGS: [&str; 3] = ["separatorTokens", "nonSeparatorTokens", "dictionary"];

/// Documents read from the old index per step (each step is one short read of its layers).
const COPY_CHUNK_DOCS: usize = 4096;

/// Whether a settings patch names a setting that alters indexing.
pub fn needs_rebuild(patch: &Map<String, Value>) -> bool {
    INDEXING_SETTINGS.iter().any(|k| patch.contains_key(*k))
}

/// A rebuild between its beginning and its swap.
pub struct Job {
    new: Arc<IndexInstance>,
    /// The old index's view when the rebuild began (its active memtable empty).
    view: Arc<View>,
    /// LSN of the state `view` holds: the new index's checkpoint.
    from: Lsn,
    /// Label of the last catch-up round.
    label: Lsn,
    held: bool,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("new", &self.new.id)
            .field("from", &self.from)
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl Job {
    /// Begins rebuilding `old` into the empty incarnation `new`. The caller pauses the
    /// index's writes (no operation is being applied) and, from now on, keeps the log from
    /// [`Job::from_lsn`]` + 1` on.
    pub fn begin(old: &IndexInstance, new: Arc<IndexInstance>, settings_lsn: Lsn) -> Job {
        old.freeze(None);
        let view = old.view();
        let from = old.state_lsn(&view).max(settings_lsn);
        old.start_tracking(from);
        Job {
            new,
            view,
            from,
            label: from,
            held: false,
        }
    }

    /// The LSN the copy reflects (the new index's checkpoint).
    pub fn from_lsn(&self) -> Lsn {
        self.from
    }

    /// The new incarnation.
    pub fn new_instance(&self) -> &Arc<IndexInstance> {
        &self.new
    }

    /// Copies every document of the pinned view into the new index and commits it with the
    /// checkpoint [`Job::from_lsn`]. Returns `false`, having stopped early, when
    /// `keep_going` says so.
    ///
    /// # Errors
    /// Storage errors (and failpoints).
    pub fn copy(
        &self,
        old: &IndexInstance,
        config: &EngineConfig,
        keep_going: &dyn Fn() -> bool,
        failpoint: &dyn Fn(&'static str) -> Result<()>,
    ) -> Result<bool> {
        let mut refs: Vec<(u64, DocRef)> = old.with_pinned(&self.view, |s| {
            let mut refs = Vec::new();
            s.for_each_visible(|r| refs.push((s.seq(r.layer, r.doc), r)));
            Ok(refs)
        })?;
        refs.sort_unstable_by_key(|(seq, _)| *seq);
        tracing::info!(index = %old.uid(), docs = refs.len(), from_lsn = self.from, "rebuilding index for new settings");
        let no_meta = || Ok(());
        for chunk in refs.chunks(COPY_CHUNK_DOCS) {
            if !keep_going() {
                return Ok(false);
            }
            let versions = old.with_pinned(&self.view, |s| {
                chunk
                    .iter()
                    .map(|(seq, r)| {
                        let pk: Arc<str> = Arc::from(s.pk(r.layer, r.doc));
                        let json = s.json(r.layer, r.doc)?;
                        let version = Version {
                            pk: pk.clone(),
                            json,
                            seq: *seq,
                        };
                        Ok((pk, Some(version)))
                    })
                    .collect::<Result<Vec<_>>>()
            })?;
            self.new.apply_versions(self.from, versions, true)?;
            if self.new.view().active().bytes() >= config.write_buffer_bytes {
                self.new.freeze(None);
                self.new.flush(usize::MAX, &no_meta, failpoint)?;
            }
        }
        self.new.freeze(None);
        self.new.flush(usize::MAX, &no_meta, failpoint)?;
        if self.new.checkpoint() < self.from {
            self.new.commit_checkpoint(self.from, failpoint)?;
        }
        Ok(true)
    }

    /// One catch-up round: the current version in `old` of every id in `touched` is written
    /// to the new index as one operation labelled `touched.last_lsn`. The caller handles a
    /// clear (`touched.cleared`) by starting again.
    ///
    /// # Errors
    /// Storage errors.
    pub fn catch_up(&mut self, old: &IndexInstance, touched: Touched) -> Result<()> {
        debug_assert!(!touched.cleared, "a clear restarts the rebuild");
        if touched.ids.is_empty() {
            return Ok(());
        }
        let label = touched.last_lsn;
        assert!(
            label > self.label,
            "catch-up label {label} not after {}",
            self.label
        );
        if !self.held {
            self.new.hold_from(self.from + 1);
            self.held = true;
        }
        let ids: Vec<Arc<str>> = touched.ids.into_iter().collect();
        for chunk in ids.chunks(COPY_CHUNK_DOCS) {
            let versions = old.with_snapshot(|s| {
                chunk
                    .iter()
                    .map(|pk| {
                        let version = match s.find(pk)? {
                            Some(r) => Some(Version {
                                pk: pk.clone(),
                                json: s.json(r.layer, r.doc)?,
                                seq: s.seq(r.layer, r.doc),
                            }),
                            None => None,
                        };
                        Ok((pk.clone(), version))
                    })
                    .collect::<Result<Vec<_>>>()
            })?;
            self.new.apply_versions(label, versions, false)?;
        }
        self.label = label;
        Ok(())
    }

    /// Ends the job, returning the new incarnation.
    pub fn into_new(self) -> Arc<IndexInstance> {
        self.new
    }
}

/// Re-indexes every visible document of `instance` at `lsn` with its current settings (how
/// logs written before live rebuilds are replayed). Returns how many documents were rebuilt.
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
    tracing::info!(index = %instance.uid(), docs = docs.len(), lsn, "rebuilding index in place (log written before live rebuilds)");
    instance.apply_documents(lsn, docs, None, Method::Replace, &pk, config)
}
