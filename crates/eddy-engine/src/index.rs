//! One incarnation of an index: its memtables, its Tantivy segments, and the *view* that
//! searches pin.
//!
//! The view is an immutable value — the Tantivy searcher plus the list of memtables, oldest
//! first, the last one active — published with an atomic pointer swap. Freezing the active
//! memtable and publishing a flush are the only two ways to change it, and both hold
//! `view_lock`, so a flush never undoes a freeze. Searches never take that lock: they load the
//! pointer and read-lock the memtables they found (only the active one is ever written).
//!
//! Writes are applied by one thread at a time per index (the engine's apply queue), in log
//! order, in chunks: each chunk is one short write-lock of the active memtable, and the
//! operation becomes visible only when `finish` publishes its LSN.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use eddy_wal::Lsn;
use parking_lot::{Mutex, RwLock};
use rustc_hash::{FxHashMap, FxHashSet};
use serde_json::Value;
use tantivy::Searcher;
use tantivy::index::SegmentId;
use time::OffsetDateTime;

use crate::analysis::{Analyzer, DocTerms, Tokenization};
use crate::config::EngineConfig;
use crate::document::{Document, document_id, merge_update};
use crate::error::{Error, Result};
use crate::key_filter::KeyFilter;
use crate::memory::MemoryBudget;
use crate::memtable::{Memtable, OlderVersion, PreparedDoc};
use crate::meta::IndexRecord;
use crate::ops::Method;
use crate::search::layers::{SegLayer, SegmentInfo, SegmentLayers, Snapshot};
use crate::segments::{Commit, SegmentConfig, SegmentStore};
use crate::settings::Settings;

/// A memtable with its share of the memory budget.
pub struct MemCell {
    /// The memtable.
    pub mem: RwLock<Memtable>,
    budget: Arc<MemoryBudget>,
    charged: AtomicUsize,
    created: Instant,
    last_write_ms: AtomicU64,
    /// Whether a flush has taken the (frozen) memtable.
    taken: AtomicBool,
}

/// The order in which overlapping flushes commit.
#[derive(Debug, Default)]
struct FlushOrder {
    /// The ticket of the next flush to take memtables.
    next_ticket: u64,
    /// The ticket whose turn it is to commit.
    next_to_commit: u64,
}

impl std::fmt::Debug for MemCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemCell")
            .field("charged", &self.charged)
            .finish_non_exhaustive()
    }
}

impl MemCell {
    fn new(mem: Memtable, budget: Arc<MemoryBudget>) -> Arc<MemCell> {
        Arc::new(MemCell {
            mem: RwLock::new(mem),
            budget,
            charged: AtomicUsize::new(0),
            created: Instant::now(),
            last_write_ms: AtomicU64::new(0),
            taken: AtomicBool::new(false),
        })
    }

    /// Marks the operation at `lsn` applied in full and charges the budget for its growth.
    fn finish(&self, lsn: Lsn) {
        let bytes = {
            let mut mem = self.mem.write();
            mem.finish(lsn);
            mem.bytes()
        };
        self.sync_charge(bytes);
    }

    /// Charges the budget for growth since the last call, after a write.
    fn sync_charge(&self, bytes: usize) {
        self.charge_to(bytes);
        self.last_write_ms
            .store(self.created.elapsed().as_millis() as u64, Ordering::Release);
    }

    /// Makes the charge `bytes` (the memtable's current size).
    fn charge_to(&self, bytes: usize) {
        let before = self.charged.swap(bytes, Ordering::AcqRel);
        if bytes > before {
            self.budget.charge(bytes - before);
        } else if before > bytes {
            self.budget.release(before - bytes);
        }
    }

    /// Time since the last write.
    pub fn idle(&self) -> Duration {
        self.created.elapsed().saturating_sub(Duration::from_millis(
            self.last_write_ms.load(Ordering::Acquire),
        ))
    }

    /// Age of the memtable.
    pub fn age(&self) -> Duration {
        self.created.elapsed()
    }

    /// Bytes charged.
    pub fn bytes(&self) -> usize {
        self.charged.load(Ordering::Acquire)
    }
}

impl Drop for MemCell {
    fn drop(&mut self) {
        self.budget.release(*self.charged.get_mut());
    }
}

/// What searches pin.
pub struct View {
    /// Tantivy searcher of the last published flush.
    pub searcher: Searcher,
    /// What the view knows of each segment (same order as the searcher's segments).
    pub segment_info: Vec<SegmentInfo>,
    /// The searcher's segments prepared for search, shared by the views that pin the same
    /// searcher (a view with a new searcher starts with an empty one).
    pub segment_layers: SegmentLayers,
    /// Memtables, oldest first; the last one is active.
    pub memtables: Vec<Arc<MemCell>>,
}

impl View {
    /// The active memtable.
    pub fn active(&self) -> &Arc<MemCell> {
        self.memtables
            .last()
            .expect("a view always has an active memtable")
    }
}

/// Field ids: flattened attribute paths in order of first appearance.
#[derive(Debug, Default, Clone)]
pub struct Fields {
    order: Vec<String>,
    ids: FxHashMap<String, u32>,
}

impl Fields {
    fn from_order(order: Vec<String>) -> Fields {
        let ids = order
            .iter()
            .enumerate()
            .map(|(i, p)| (p.clone(), i as u32))
            .collect();
        Fields { order, ids }
    }

    fn id_or_insert(&mut self, path: &str) -> u32 {
        if let Some(id) = self.ids.get(path) {
            return *id;
        }
        let id = self.order.len() as u32;
        self.order.push(path.to_string());
        self.ids.insert(path.to_string(), id);
        id
    }

    /// Paths in id order.
    pub fn order(&self) -> &[String] {
        &self.order
    }

    /// Id of a path.
    pub fn id(&self, path: &str) -> Option<u32> {
        self.ids.get(path).copied()
    }
}

/// Timing of the last flush.
#[derive(Debug, Clone, Copy, Default)]
pub struct FlushStats {
    /// When the last flush finished.
    pub last_flush_at: Option<OffsetDateTime>,
    /// How long it took.
    pub last_flush_duration: Option<Duration>,
    /// Flushes since open.
    pub flushes: u64,
}

/// Ids written since a rebuild began tracking the index (see [`crate::rebuild`]).
#[derive(Debug, Default)]
pub struct Touched {
    /// Primary keys written or deleted.
    pub ids: FxHashSet<Arc<str>>,
    /// Whether the index was cleared.
    pub cleared: bool,
    /// LSN of the last operation that wrote or deleted documents (or where tracking began).
    pub last_lsn: Lsn,
}

/// A stored document version, as a rebuild copies it.
#[derive(Debug, Clone)]
pub struct Version {
    /// Primary key value.
    pub pk: Arc<str>,
    /// The stored JSON.
    pub json: Arc<[u8]>,
    /// Ordering key (insertion order, kept across versions).
    pub seq: u64,
}

/// Documents analyzed ahead of their operation's apply, off the index's apply lock (by the
/// writer while it waits, or by the log reader during recovery). They are used only when the
/// index incarnation and its tokenization are still the ones they were analyzed with;
/// otherwise the apply analyzes again.
#[derive(Debug)]
pub struct PreAnalyzed {
    instance_id: u64,
    epoch: u64,
    /// Per document: stored JSON and terms.
    docs: Vec<(Arc<[u8]>, DocTerms)>,
}

/// One incarnation of an index.
pub struct IndexInstance {
    /// Internal id (LSN of the creating operation); names the Tantivy directory.
    pub id: u64,
    record: RwLock<IndexRecord>,
    /// The tokenization of the settings, and how many times it changed (see [`PreAnalyzed`]).
    tokenization: RwLock<(u64, Arc<Tokenization>)>,
    fields: RwLock<Fields>,
    segments: SegmentStore,
    view: ArcSwap<View>,
    view_lock: Mutex<()>,
    flush_lock: Mutex<()>,
    /// Tickets ordering the commits of overlapping flushes (see [`IndexInstance::flush`]).
    flush_order: (Mutex<FlushOrder>, parking_lot::Condvar),
    /// Flushes under way.
    flushing: AtomicUsize,
    /// Held while the term dictionaries are sealed: a second thread would build the same FSTs.
    seal_lock: Mutex<()>,
    next_mem_id: AtomicU64,
    deleted_cache: Mutex<HashMap<(SegmentId, u32), u64>>,
    /// Key filter of each segment (see [`crate::key_filter`]).
    key_filters: Mutex<HashMap<SegmentId, KeyFilter>>,
    budget: Arc<MemoryBudget>,
    flush_stats: Mutex<FlushStats>,
    /// While a rebuild runs: what the write path changed since it began.
    touched: Mutex<Option<Touched>>,
}

impl std::fmt::Debug for IndexInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexInstance")
            .field("id", &self.id)
            .field("uid", &self.record.read().uid)
            .finish_non_exhaustive()
    }
}

/// Result of a flush.
#[derive(Debug, Clone, Copy, Default)]
pub struct FlushOutcome {
    /// Memtables written.
    pub memtables: usize,
    /// LSN of the commit, if one happened.
    pub checkpoint: Option<Lsn>,
}

impl IndexInstance {
    /// Opens (or creates) an index incarnation in `dir`.
    pub fn open(
        disk: Arc<dyn crate::storage::Disk>,
        dir: &std::path::Path,
        record: IndexRecord,
        segment_config: SegmentConfig,
        budget: Arc<MemoryBudget>,
    ) -> Result<IndexInstance> {
        let segments = SegmentStore::open(disk, dir, segment_config)?;
        let searcher = segments.searcher();
        let fields = Fields::from_order(record.fields.clone());
        let tokenization = Arc::new(Tokenization::from_settings(&record.settings));
        let instance = IndexInstance {
            id: record.id,
            record: RwLock::new(record),
            tokenization: RwLock::new((0, tokenization)),
            fields: RwLock::new(fields),
            segments,
            view: ArcSwap::from_pointee(View {
                searcher: searcher.clone(),
                segment_info: Vec::new(),
                segment_layers: SegmentLayers::default(),
                memtables: vec![MemCell::new(Memtable::new(0, None), budget.clone())],
            }),
            view_lock: Mutex::new(()),
            flush_lock: Mutex::new(()),
            flush_order: (
                Mutex::new(FlushOrder::default()),
                parking_lot::Condvar::new(),
            ),
            flushing: AtomicUsize::new(0),
            seal_lock: Mutex::new(()),
            next_mem_id: AtomicU64::new(1),
            deleted_cache: Mutex::new(HashMap::new()),
            key_filters: Mutex::new(HashMap::new()),
            budget,
            flush_stats: Mutex::new(FlushStats::default()),
            touched: Mutex::new(None),
        };
        let info = instance.segment_info(&searcher)?;
        let segment_layers = SegmentLayers::prepared(&searcher, instance.segments.fields(), &info)?;
        let view = instance.view.load_full();
        instance.view.store(Arc::new(View {
            searcher,
            segment_info: info,
            segment_layers,
            memtables: view.memtables.clone(),
        }));
        Ok(instance)
    }

    /// Index uid.
    pub fn uid(&self) -> String {
        self.record.read().uid.clone()
    }

    /// The registry record, with the current field order.
    pub fn record(&self) -> IndexRecord {
        let mut r = self.record.read().clone();
        r.fields = self.fields.read().order.clone();
        r
    }

    /// LSN of the pending rebuild's latest settings operation, if one is pending.
    pub fn pending_rebuild_lsn(&self) -> Option<Lsn> {
        self.record.read().rebuild.as_ref().map(|p| p.lsn)
    }

    /// Changes the registry record (primary key, settings, timestamps).
    pub fn update_record(&self, f: impl FnOnce(&mut IndexRecord)) {
        let mut record = self.record.write();
        f(&mut record);
        let tok = Tokenization::from_settings(&record.settings);
        let mut current = self.tokenization.write();
        if *current.1 != tok {
            *current = (current.0 + 1, Arc::new(tok));
        }
    }

    /// What a search reads of the record: the settings and the primary key (without
    /// copying the field order).
    pub fn search_settings(&self) -> (Settings, Option<String>) {
        let r = self.record.read();
        (r.settings.clone(), r.primary_key.clone())
    }

    /// Field order.
    pub fn fields(&self) -> Fields {
        self.fields.read().clone()
    }

    /// LSN of the last durable Tantivy commit.
    pub fn checkpoint(&self) -> Lsn {
        self.segments.checkpoint()
    }

    /// The current view.
    pub fn view(&self) -> Arc<View> {
        self.view.load_full()
    }

    /// Flush statistics.
    pub fn flush_stats(&self) -> FlushStats {
        *self.flush_stats.lock()
    }

    /// Runs `f` on a snapshot of every layer at the latest completed operation.
    pub fn with_snapshot<R>(&self, f: impl FnOnce(&Snapshot<'_>) -> Result<R>) -> Result<R> {
        let view = self.view.load_full();
        Self::snapshot_of(&view, self.segments.fields(), &view.memtables, f)
    }

    fn snapshot_of<R>(
        view: &View,
        fields: crate::segments::SegmentFields,
        memtables: &[Arc<MemCell>],
        f: impl FnOnce(&Snapshot<'_>) -> Result<R>,
    ) -> Result<R> {
        let guards: Vec<_> = memtables.iter().map(|m| m.mem.read()).collect();
        let mems = guards.iter().map(|g| g.reader(g.visible_lsn())).collect();
        let segs = view
            .segment_layers
            .get(&view.searcher, fields, &view.segment_info)?;
        let snapshot = Snapshot::new(&view.searcher, &segs, mems);
        f(&snapshot)
    }

    /// What the view needs of each segment of `searcher`: the tokens of its deleted
    /// documents (per segment and delete generation) and its key filter (per segment), from
    /// caches, so that a publication computes them for new segments only.
    fn segment_info(&self, searcher: &Searcher) -> Result<Vec<SegmentInfo>> {
        let mut deleted_cache = self.deleted_cache.lock();
        let mut filters = self.key_filters.lock();
        let mut out = Vec::with_capacity(searcher.segment_readers().len());
        let mut live_keys = Vec::new();
        for reader in searcher.segment_readers() {
            let key = (reader.segment_id(), reader.num_deleted_docs());
            live_keys.push(key);
            let deleted_tokens = match deleted_cache.get(&key) {
                Some(t) => *t,
                None => {
                    let t = SegLayer::deleted_tokens_of(reader)?;
                    deleted_cache.insert(key, t);
                    t
                }
            };
            let keys = match filters.get(&reader.segment_id()) {
                Some(f) => f.clone(),
                None => {
                    let f = KeyFilter::of_segment(reader)?;
                    filters.insert(reader.segment_id(), f.clone());
                    f
                }
            };
            out.push(SegmentInfo {
                deleted_tokens,
                keys,
            });
        }
        deleted_cache.retain(|k, _| live_keys.contains(k));
        filters.retain(|id, _| live_keys.iter().any(|(live, _)| live == id));
        Ok(out)
    }

    /// How the index's settings split words (see [`crate::analysis::Tokenization`]).
    pub fn tokenization(&self) -> Tokenization {
        (*self.tokenization.read().1).clone()
    }

    /// Analyzes a document, assigning ids to attribute paths seen for the first time.
    fn analyze_assigning(
        &self,
        analyzer: &mut Analyzer,
        doc: &Document,
        tok: &Tokenization,
    ) -> DocTerms {
        analyzer.analyze(doc, tok, |path| {
            if let Some(id) = self.fields.read().id(path) {
                return Some(id);
            }
            Some(self.fields.write().id_or_insert(path))
        })
    }

    /// Analyzes and serializes documents of an add-or-replace ahead of its apply, with no
    /// lock of the apply path held (see [`PreAnalyzed`]).
    pub fn pre_analyze(&self, docs: &[Document]) -> Result<PreAnalyzed> {
        let (epoch, tok) = self.tokenization.read().clone();
        let mut analyzer = Analyzer::default();
        let mut out = Vec::with_capacity(docs.len());
        let mut buffer = Vec::new();
        for doc in docs {
            let json = encode_json(doc, &mut buffer)?;
            out.push((json, self.analyze_assigning(&mut analyzer, doc, &tok)));
        }
        Ok(PreAnalyzed {
            instance_id: self.id,
            epoch,
            docs: out,
        })
    }

    /// Applies add-or-replace / add-or-update of validated documents at `lsn`. Returns the
    /// number of documents indexed.
    ///
    /// `pre` is used when it is still valid (see [`PreAnalyzed`]); it only ever holds
    /// documents of an add-or-replace.
    pub fn apply_documents(
        &self,
        lsn: Lsn,
        docs: Vec<Document>,
        pre: Option<PreAnalyzed>,
        method: Method,
        primary_key: &str,
        config: &EngineConfig,
    ) -> Result<u64> {
        let view = self.view.load_full();
        let active = view.active().clone();
        let older = &view.memtables[..view.memtables.len() - 1];
        let clears = active.mem.read().clear_lsn().is_some();
        let count = docs.len() as u64;
        let chunk = config.apply_chunk_docs.max(1);
        let mut touched = self.touched.lock().is_some().then(Vec::new);
        let (epoch, tok) = self.tokenization.read().clone();
        let mut pre = pre
            .filter(|p| {
                method == Method::Replace
                    && p.instance_id == self.id
                    && p.epoch == epoch
                    && p.docs.len() == docs.len()
            })
            .map(|p| p.docs.into_iter());
        let mut analyzer = Analyzer::default();
        let mut buffer = Vec::new();
        Self::snapshot_of(&view, self.segments.fields(), older, |older| {
            // Versions written earlier in this same operation (duplicates in a batch).
            let mut this_op: FxHashMap<Arc<str>, Arc<[u8]>> = FxHashMap::default();
            let mut prepared = Vec::with_capacity(chunk);
            for (i, mut doc) in docs.into_iter().enumerate() {
                let ready = pre.as_mut().and_then(Iterator::next);
                let pk: Arc<str> = Arc::from(document_id(&doc, primary_key)?);
                if let Some(ids) = touched.as_mut() {
                    ids.push(pk.clone());
                }
                let (older_version, base) =
                    self.previous_version(&active, older, clears, &pk, method, &this_op)?;
                let (json, terms) = match (ready, base) {
                    (Some(ready), None) => ready,
                    (_, base) => {
                        if let Some(base) = base {
                            let mut merged: Document =
                                serde_json::from_slice(&base).map_err(|e| {
                                    Error::Corrupt(format!("stored document does not decode: {e}"))
                                })?;
                            merge_update(&mut merged, doc);
                            doc = merged;
                        }
                        let terms = self.analyze_assigning(&mut analyzer, &doc, &tok);
                        (encode_json(&doc, &mut buffer)?, terms)
                    }
                };
                if method == Method::Update {
                    this_op.insert(pk.clone(), json.clone());
                }
                prepared.push(PreparedDoc {
                    pk,
                    json,
                    terms,
                    new_seq: seq_of(lsn, i),
                    older: older_version,
                });
                if prepared.len() == chunk {
                    self.insert_chunk(&active, lsn, &mut prepared);
                }
            }
            self.insert_chunk(&active, lsn, &mut prepared);
            Ok(())
        })?;
        active.finish(lsn);
        if let Some(ids) = touched {
            self.note_touched(lsn, ids, false);
        }
        Ok(count)
    }

    /// Starts recording which ids the write path changes, from the state at `lsn`.
    pub fn start_tracking(&self, lsn: Lsn) {
        *self.touched.lock() = Some(Touched {
            last_lsn: lsn,
            ..Touched::default()
        });
    }

    /// Stops recording.
    pub fn stop_tracking(&self) {
        *self.touched.lock() = None;
    }

    /// What changed since tracking began or since the last call (the record starts afresh,
    /// keeping `last_lsn`); `None` when not tracking.
    pub fn take_touched(&self) -> Option<Touched> {
        let mut guard = self.touched.lock();
        let current = guard.as_mut()?;
        let last_lsn = current.last_lsn;
        Some(std::mem::replace(
            current,
            Touched {
                last_lsn,
                ..Touched::default()
            },
        ))
    }

    /// Records, once the operation at `lsn` is complete, the ids it changed.
    fn note_touched(&self, lsn: Lsn, ids: Vec<Arc<str>>, cleared: bool) {
        if let Some(t) = self.touched.lock().as_mut() {
            t.ids.extend(ids);
            t.cleared |= cleared;
            t.last_lsn = t.last_lsn.max(lsn);
        }
    }

    /// The LSN of the latest operation reflected in `view`: its checkpoint or the last LSN
    /// of its memtables.
    pub fn state_lsn(&self, view: &View) -> Lsn {
        view.memtables
            .iter()
            .map(|m| m.mem.read().last_lsn())
            .chain(std::iter::once(self.checkpoint()))
            .max()
            .unwrap_or(0)
    }

    /// Runs `f` on a snapshot of a pinned view *without its active memtable* (which the
    /// caller knows to be empty): it read-locks only immutable memtables, so it may run for
    /// long without holding up writes.
    pub fn with_pinned<R>(
        &self,
        view: &View,
        f: impl FnOnce(&Snapshot<'_>) -> Result<R>,
    ) -> Result<R> {
        let older = &view.memtables[..view.memtables.len() - 1];
        Self::snapshot_of(view, self.segments.fields(), older, f)
    }

    /// Writes versions into the active memtable as one operation at `lsn`: `Some` upserts
    /// the version (keeping its ordering key), `None` deletes the id. With `fresh`, the
    /// caller guarantees no id exists yet in any layer (a rebuild's first copy), which saves
    /// the lookups.
    pub fn apply_versions(
        &self,
        lsn: Lsn,
        versions: Vec<(Arc<str>, Option<Version>)>,
        fresh: bool,
    ) -> Result<()> {
        let view = self.view.load_full();
        let active = view.active().clone();
        let older = &view.memtables[..view.memtables.len() - 1];
        let clears = active.mem.read().clear_lsn().is_some();
        let tok = self.tokenization();
        let mut analyzer = Analyzer::default();
        let empty = FxHashMap::default();
        Self::snapshot_of(&view, self.segments.fields(), older, |older| {
            let mut prepared = Vec::new();
            for (pk, version) in versions {
                let (older_version, _) = if fresh {
                    (None, None)
                } else {
                    self.previous_version(&active, older, clears, &pk, Method::Replace, &empty)?
                };
                match version {
                    Some(v) => {
                        let doc: Document = serde_json::from_slice(&v.json).map_err(|e| {
                            Error::Corrupt(format!("stored document does not decode: {e}"))
                        })?;
                        let terms = self.analyze_assigning(&mut analyzer, &doc, &tok);
                        prepared.push(PreparedDoc {
                            pk,
                            json: v.json,
                            terms,
                            new_seq: v.seq,
                            older: older_version,
                        });
                        if prepared.len() >= 1024 {
                            self.insert_chunk(&active, lsn, &mut prepared);
                        }
                    }
                    None => {
                        self.insert_chunk(&active, lsn, &mut prepared);
                        active.mem.write().delete(lsn, pk, older_version);
                    }
                }
            }
            self.insert_chunk(&active, lsn, &mut prepared);
            Ok(())
        })?;
        active.finish(lsn);
        Ok(())
    }

    /// Makes the active memtable hold the log from `lsn` on (see [`Memtable::hold_from`]).
    pub fn hold_from(&self, lsn: Lsn) {
        self.view.load().active().mem.write().hold_from(lsn);
    }

    /// Commits nothing but the checkpoint `lsn` (a rebuild of an index with no documents
    /// left must still record the state it was built from).
    pub fn commit_checkpoint(
        &self,
        lsn: Lsn,
        failpoint: &dyn Fn(&'static str) -> Result<()>,
    ) -> Result<()> {
        let _flush = self.flush_lock.lock();
        let commit = self.segments.flush(&[], lsn, failpoint)?;
        self.publish(commit, &[])
    }

    /// Publishes a view with the commit's searcher and the current memtables but `flushed`
    /// (which the commit holds). The deleted documents' tokens and the segment layers are
    /// prepared first, off the search path: the first search would otherwise pay for merging
    /// the segments' dictionaries.
    fn publish(&self, commit: Commit<'_>, flushed: &[Arc<MemCell>]) -> Result<()> {
        let searcher = commit.searcher.clone();
        let info = self.segment_info(&searcher)?;
        let segment_layers = SegmentLayers::prepared(&searcher, self.segments.fields(), &info)?;
        let _g = self.view_lock.lock();
        let current = self.view.load_full();
        let memtables = current
            .memtables
            .iter()
            .filter(|m| !flushed.iter().any(|f| Arc::ptr_eq(f, m)))
            .cloned()
            .collect();
        self.view.store(Arc::new(View {
            searcher,
            segment_info: info,
            segment_layers,
            memtables,
        }));
        commit.published();
        Ok(())
    }

    /// Builds the union of the published segments' dictionaries if the view lacks it (see
    /// [`crate::search::layers::PreparedSegments`]), once the index had no write for
    /// `idle_after`, or the view is older than `max_wait`, and no flush is under way: while
    /// writes keep coming, a new view may replace this one before its union would have
    /// served many searches.
    /// Returns whether it built one.
    ///
    /// # Errors
    /// A dictionary could not be read.
    pub fn merge_dictionaries(&self, idle_after: Duration, max_wait: Duration) -> Result<bool> {
        if self.flushing.load(Ordering::Acquire) > 0 {
            // A flush in progress publishes a new view soon: this one's union would serve
            // few searches, and would take CPU from the flush.
            return Ok(false);
        }
        let view = self.view.load_full();
        let busy = view.active().idle() < idle_after;
        view.segment_layers
            .merge_dictionaries(|age| busy && age < max_wait)
    }

    /// Re-seals the term dictionary of every memtable that is due (see
    /// [`Memtable::seal_input`]; `min_terms = 0`: every memtable with recent terms); a
    /// memtable without writes for `idle_after` counts as idle. The FST is built with no lock
    /// held; installing it takes the write lock for a moment. Frozen memtables are sealed
    /// only with `frozen_too`.
    /// Skipped while another thread seals this index (the refresher after a replay and the
    /// flusher's rounds can meet).
    pub fn seal_dictionaries(&self, min_terms: usize, idle_after: Duration, frozen_too: bool) {
        let Some(_sealing) = self.seal_lock.try_lock() else {
            return;
        };
        let view = self.view.load_full();
        let skip = if frozen_too {
            0
        } else {
            view.memtables.len() - 1
        };
        for cell in view.memtables.iter().skip(skip) {
            let idle = cell.idle() >= idle_after;
            let input = cell.mem.read().seal_input(min_terms, idle);
            if let Some((map, upto)) = input.and_then(crate::memtable::SealInput::build) {
                let mut mem = cell.mem.write();
                mem.install_sealed(map, upto);
                let bytes = mem.bytes();
                drop(mem);
                // The FST replaces recent terms: the charge follows.
                cell.charge_to(bytes);
            }
        }
    }

    fn insert_chunk(&self, active: &MemCell, lsn: Lsn, prepared: &mut Vec<PreparedDoc>) {
        if prepared.is_empty() {
            return;
        }
        let mut mem = active.mem.write();
        for doc in prepared.drain(..) {
            mem.upsert(lsn, doc);
        }
        let bytes = mem.bytes();
        drop(mem);
        active.sync_charge(bytes);
    }

    /// The version a write replaces: its length and order key in older layers, and the JSON
    /// to merge into for an update.
    fn previous_version(
        &self,
        active: &MemCell,
        older: &Snapshot<'_>,
        clears: bool,
        pk: &str,
        method: Method,
        this_op: &FxHashMap<Arc<str>, Arc<[u8]>>,
    ) -> Result<Previous> {
        let want_json = method == Method::Update;
        if want_json && let Some(json) = this_op.get(pk) {
            return Ok((None, Some(json.clone())));
        }
        if let Some(state) = active.mem.read().current(pk) {
            // Known to the active memtable: it tracks the older version itself.
            let base = match state {
                Some(v) if want_json => Some(Arc::from(v.json)),
                _ => None,
            };
            return Ok((None, base));
        }
        if clears {
            return Ok((None, None));
        }
        let Some(r) = older.find(pk)? else {
            return Ok((None, None));
        };
        let version = OlderVersion {
            len: older.len(r.layer, r.doc),
            seq: older.seq(r.layer, r.doc),
        };
        let base = if want_json {
            Some(older.json(r.layer, r.doc)?)
        } else {
            None
        };
        Ok((Some(version), base))
    }

    /// Deletes documents by id at `lsn`; returns how many existed.
    pub fn apply_delete(&self, lsn: Lsn, ids: &[String]) -> Result<u64> {
        let view = self.view.load_full();
        let active = view.active().clone();
        let older = &view.memtables[..view.memtables.len() - 1];
        let clears = active.mem.read().clear_lsn().is_some();
        let empty = FxHashMap::default();
        let deleted = Self::snapshot_of(&view, self.segments.fields(), older, |older| {
            let mut deleted = 0u64;
            for id in ids {
                let pk: Arc<str> = Arc::from(id.as_str());
                let (older_version, _) =
                    self.previous_version(&active, older, clears, &pk, Method::Replace, &empty)?;
                if active.mem.write().delete(lsn, pk, older_version) {
                    deleted += 1;
                }
            }
            Ok(deleted)
        })?;
        active.finish(lsn);
        if self.touched.lock().is_some() {
            let ids = ids.iter().map(|id| Arc::from(id.as_str())).collect();
            self.note_touched(lsn, ids, false);
        }
        Ok(deleted)
    }

    /// Deletes every document at `lsn`: the active memtable is frozen and a new one that
    /// hides every older layer takes its place. Returns how many documents were visible.
    pub fn apply_clear(&self, lsn: Lsn) -> Result<u64> {
        let before = self.with_snapshot(|s| Ok(s.corpus().docs))?;
        self.freeze(Some(lsn));
        self.note_touched(lsn, Vec::new(), true);
        Ok(before)
    }

    /// Freezes the active memtable (if it holds anything) and starts a new one; with
    /// `clear_lsn`, the new one deletes everything older.
    pub fn freeze(&self, clear_lsn: Option<Lsn>) -> bool {
        let _g = self.view_lock.lock();
        let old = self.view.load_full();
        let active = old.active();
        let active_empty = active.mem.read().is_empty();
        if active_empty && clear_lsn.is_none() {
            return false;
        }
        let mut memtables = old.memtables.clone();
        if active_empty {
            memtables.pop();
        } else {
            active.mem.write().freeze();
        }
        let id = self.next_mem_id.fetch_add(1, Ordering::Relaxed);
        let mut next = Memtable::new(id, clear_lsn);
        if !active_empty {
            next.reserve_like(&active.mem.read());
        }
        memtables.push(MemCell::new(next, self.budget.clone()));
        if let Some(lsn) = clear_lsn {
            // The clear is its own finished operation.
            memtables
                .last()
                .expect("just pushed")
                .mem
                .write()
                .finish(lsn);
        }
        self.view.store(Arc::new(View {
            searcher: old.searcher.clone(),
            segment_info: old.segment_info.clone(),
            segment_layers: old.segment_layers.clone(),
            memtables,
        }));
        true
    }

    /// Frozen memtables waiting for a flush.
    pub fn frozen_count(&self) -> usize {
        let view = self.view.load_full();
        view.memtables.len() - 1
    }

    /// First LSN held in any memtable (what the log must keep for this index).
    pub fn first_unflushed_lsn(&self) -> Option<Lsn> {
        let view = self.view.load_full();
        view.memtables
            .iter()
            .filter_map(|m| m.mem.read().first_lsn())
            .min()
    }

    /// Writes up to `max` frozen memtables into one Tantivy commit and publishes the new
    /// view. `before_commit` runs first (the engine makes metadata durable there).
    ///
    /// Flushes overlap where they can: each takes the oldest frozen memtables no other flush
    /// has taken, writes their segments with no lock held, and then commits in the order the
    /// flushes took their memtables (a ticket each). At the end of a bulk load, the flush of
    /// the last memtable writes its segment while the flusher still writes the one before.
    pub fn flush(
        &self,
        max: usize,
        before_commit: &dyn Fn() -> Result<()>,
        failpoint: &dyn Fn(&'static str) -> Result<()>,
    ) -> Result<FlushOutcome> {
        let started = Instant::now();
        let Some((ticket, frozen)) = self.take_frozen(max) else {
            return Ok(FlushOutcome::default());
        };
        self.flushing.fetch_add(1, Ordering::AcqRel);
        let result = self.write_and_commit(ticket, &frozen, before_commit, failpoint);
        self.flushing.fetch_sub(1, Ordering::AcqRel);
        if result.is_err() {
            for cell in &frozen {
                cell.taken.store(false, Ordering::Release);
            }
        }
        // Whatever happened, the next flush's turn comes.
        let (order, turn) = &self.flush_order;
        order.lock().next_to_commit = ticket + 1;
        turn.notify_all();
        let last_lsn = result?;
        let mut stats = self.flush_stats.lock();
        stats.last_flush_at = Some(OffsetDateTime::now_utc());
        stats.last_flush_duration = Some(started.elapsed());
        stats.flushes += 1;
        Ok(FlushOutcome {
            memtables: frozen.len(),
            checkpoint: Some(last_lsn),
        })
    }

    /// Takes the oldest frozen memtables (up to `max`) that no other flush has taken, with
    /// the ticket that orders this flush's commit.
    fn take_frozen(&self, max: usize) -> Option<(u64, Vec<Arc<MemCell>>)> {
        let (order, _) = &self.flush_order;
        let mut order = order.lock();
        let view = self.view.load_full();
        let frozen: Vec<Arc<MemCell>> = view.memtables[..view.memtables.len() - 1]
            .iter()
            .filter(|m| !m.taken.load(Ordering::Acquire))
            .take(max)
            .cloned()
            .collect();
        if frozen.is_empty() {
            return None;
        }
        for cell in &frozen {
            cell.taken.store(true, Ordering::Release);
        }
        let ticket = order.next_ticket;
        order.next_ticket += 1;
        Some((ticket, frozen))
    }

    fn write_and_commit(
        &self,
        ticket: u64,
        frozen: &[Arc<MemCell>],
        before_commit: &dyn Fn() -> Result<()>,
        failpoint: &dyn Fn(&'static str) -> Result<()>,
    ) -> Result<Lsn> {
        let last_lsn = frozen
            .iter()
            .map(|m| m.mem.read().last_lsn())
            .max()
            .unwrap_or(0);
        // IMPORTANT: no view is held through the writing, which can take seconds: the view
        // pins its searcher's segments, and with them every page a merge read from segments
        // that merges have since replaced (see `refresh_after_merges`).
        let written = {
            let guards: Vec<_> = frozen.iter().map(|m| m.mem.read()).collect();
            let mems: Vec<&Memtable> = guards.iter().map(|g| &**g).collect();
            self.segments.write_segments(&mems)
        };
        failpoint("flush.segments_written")?;
        // Commits go in ticket order, whether or not this flush's writing succeeded.
        {
            let (order, turn) = &self.flush_order;
            let mut order = order.lock();
            while order.next_to_commit != ticket {
                turn.wait(&mut order);
            }
        }
        let written = written?;
        let _flush = self.flush_lock.lock();
        // The flushes before this one committed every older memtable, unless one failed.
        let view = self.view.load_full();
        let first = &frozen[0];
        if !view.memtables.iter().any(|m| Arc::ptr_eq(m, first)) {
            return Err(Error::Corrupt("a flushed memtable left the view".into()));
        }
        if !Arc::ptr_eq(&view.memtables[0], first) {
            return Err(Error::Corrupt(
                "an older memtable was not flushed (a flush before this one failed)".into(),
            ));
        }
        drop(view);
        before_commit()?;
        failpoint("flush.before_commit")?;
        let commit = self.segments.commit(written, last_lsn, failpoint)?;
        failpoint("flush.after_dir_sync")?;
        self.publish(commit, frozen)?;
        failpoint("flush.after_publish")?;
        Ok(last_lsn)
    }

    /// Publishes a view on the segments Tantivy merged since the last publication, with the
    /// same memtables: the merged-away segments, and the pages the merge read from them, are
    /// released once the searches that pinned the old view end, not at the next flush (which
    /// can be seconds away under load). Returns whether the view changed.
    pub fn refresh_after_merges(&self) -> Result<bool> {
        let Some(commit) = self.segments.reload_after_merges()? else {
            return Ok(false);
        };
        self.publish(commit, &[])?;
        Ok(true)
    }

    /// Deletes the index's files.
    pub fn destroy(self) -> Result<()> {
        self.segments.destroy()
    }
}

/// What a write replaces: the older version's length and order key (when it lives in an
/// older layer), and the JSON an update merges into.
type Previous = (Option<OlderVersion>, Option<Arc<[u8]>>);

/// A document as the JSON the memtable stores, serialized through `buffer` (reused from one
/// document to the next, so that the only allocation is the stored copy).
fn encode_json(doc: &Document, buffer: &mut Vec<u8>) -> Result<Arc<[u8]>> {
    buffer.clear();
    serde_json::to_writer(&mut *buffer, doc).map_err(Error::meta)?;
    Ok(Arc::from(&buffer[..]))
}

/// Ordering key of the `i`-th document of the operation at `lsn`.
pub fn seq_of(lsn: Lsn, i: usize) -> u64 {
    (lsn << 24) | (i as u64).min((1 << 24) - 1)
}

/// Details value helper.
pub fn count_value(n: u64) -> Value {
    Value::from(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EngineConfig;
    use crate::settings::Settings;

    fn instance(dir: &std::path::Path) -> IndexInstance {
        let record = IndexRecord {
            id: 1,
            uid: "t".into(),
            primary_key: Some("id".into()),
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
            settings: Settings::default(),
            fields: Vec::new(),
            rebuild: None,
        };
        IndexInstance::open(
            crate::storage::fs_disk(),
            dir,
            record,
            SegmentConfig::default(),
            MemoryBudget::new(64 << 20),
        )
        .expect("open")
    }

    fn docs(text: &str) -> Vec<Document> {
        match serde_json::json!({"id": "a", "text": text}) {
            Value::Object(m) => vec![m],
            _ => unreachable!("an object"),
        }
    }

    fn has_term(instance: &IndexInstance, term: &str) -> bool {
        let view = instance.view();
        let mem = view.active().mem.read();
        mem.reader(mem.visible_lsn()).postings(term).is_some()
    }

    #[test]
    fn pre_analysis_is_used_only_under_the_same_tokenization() {
        let dir = tempfile::tempdir().expect("tempdir");
        let instance = instance(dir.path());
        let config = EngineConfig::default();
        // Analyzed ahead with the default tokenization (`x@y` is two words), applied after
        // a settings change that makes `@` join words: the apply must analyze again.
        let pre = instance.pre_analyze(&docs("x@y")).expect("pre");
        instance.update_record(|r| r.settings.non_separator_tokens = vec!["@".into()]);
        let pre_again = instance.pre_analyze(&docs("p@q")).expect("pre");
        instance
            .apply_documents(2, docs("x@y"), Some(pre), Method::Replace, "id", &config)
            .expect("apply");
        assert!(has_term(&instance, "x@y"));
        assert!(!has_term(&instance, "x") && !has_term(&instance, "y"));
        // Analyzed under the current tokenization: used as is (the terms come from it, not
        // from the documents given).
        instance
            .apply_documents(
                3,
                docs("zzz"),
                Some(pre_again),
                Method::Replace,
                "id",
                &config,
            )
            .expect("apply");
        assert!(has_term(&instance, "p@q"));
        assert!(!has_term(&instance, "zzz"));
    }
}
