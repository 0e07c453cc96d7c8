//! The engine: many indexes sharing one write-ahead log and one metadata store.
//!
//! # Write path
//!
//! Every write is one log record. Per index uid there is one *slot* whose queue orders the
//! writes: under the slot lock the record is submitted to the log (which assigns its LSN) and
//! queued; the writer then waits for group commit outside the lock; once durable, whoever
//! holds the slot lock applies every queued operation whose LSN is durable, in LSN order
//! (W3), records the tasks in the metadata store, and every writer returns its own task —
//! durable (W1) and visible (W2).
//!
//! # Checkpoints
//!
//! After a flush the engine makes the metadata durable with `applied_lsn` = the highest LSN
//! below which every operation is applied, then truncates the log below
//! `min(applied_lsn + 1, first LSN still in a memtable of any index)`.
//!
//! # Recovery
//!
//! Opening replays the log from `min(applied_lsn, every index checkpoint) + 1`: metadata
//! effects of operations up to `applied_lsn` are skipped (the store has them), memtable
//! effects of operations up to an index's checkpoint are skipped (its segments have them).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use eddy_wal::{Durability, Lsn, Wal, WalConfig};
use parking_lot::{Condvar, Mutex, RwLock};
use rustc_hash::FxHashMap;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::config::{EngineConfig, MergeStrategy};
use crate::document::{
    Document, PayloadFormat, document_id, id_from_value, infer_primary_key, parse_payload,
    select_fields, validate_index_uid,
};
use crate::error::{Code, Error, Result};
use crate::index::{IndexInstance, PreAnalyzed, View};
use crate::memory::{MemoryBudget, Reservation};
use crate::meta::{IndexRecord, MetaBatch, MetaStore, PendingRebuild};
use crate::ops::{self, Method, Op, OpHeader, RECORD_KIND_OP};
use crate::search::{self, SearchRequest};
use crate::settings::Settings;
use crate::storage::Disk;
use crate::task::{Task, TaskFilter, TaskKind, TaskStatus, format_duration, uid_of_lsn};

/// Format version of the data directory.
pub const DATA_VERSION: &str = "eddy-1";

/// What recovery did when the engine opened.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecoveryStats {
    /// Log records replayed.
    pub records_replayed: u64,
    /// Documents (re)applied to memtables.
    pub documents_recovered: u64,
    /// Time spent replaying.
    pub duration: Duration,
    /// First LSN replayed from.
    pub from_lsn: Lsn,
}

/// Public description of an index.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexInfo {
    /// Uid.
    pub uid: String,
    /// Primary key.
    pub primary_key: Option<String>,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Last update.
    pub updated_at: OffsetDateTime,
}

/// Statistics of an index.
#[derive(Debug, Clone, Default)]
pub struct IndexStats {
    /// Visible documents.
    pub number_of_documents: u64,
    /// Documents per attribute.
    pub field_distribution: BTreeMap<String, u64>,
    /// Bytes of the active memtable.
    pub active_memtable_bytes: usize,
    /// Bytes of all memtables.
    pub memtable_bytes: usize,
    /// Frozen memtables waiting for a flush (the flush queue).
    pub frozen_memtables: usize,
    /// Terms of the memtables outside their sealed (FST) dictionaries.
    pub unsealed_terms: usize,
    /// Tantivy segments.
    pub segments: usize,
    /// LSN of the last durable commit.
    pub checkpoint: Lsn,
    /// Log segments this index still needs for recovery (holding records after its
    /// checkpoint): the shared log cannot be truncated below them.
    pub wal_segments: u64,
    /// Bytes of those segments.
    pub wal_bytes: u64,
    /// When the last flush finished.
    pub last_flush_at: Option<OffsetDateTime>,
    /// How long it took.
    pub last_flush_duration: Option<Duration>,
    /// Whether a rebuild for new settings is under way (Meilisearch's `isIndexing`).
    pub rebuilding: bool,
}

/// A search hit.
#[derive(Debug, Clone)]
pub struct SearchHit {
    /// Primary key value.
    pub id: String,
    /// The stored document.
    pub document: Document,
    /// BM25 score.
    pub score: f32,
    /// Ranking score in `0..=1`.
    pub ranking_score: f64,
    /// Meters to the `_geoPoint` the search is sorted by (`_geoDistance`).
    pub geo_distance: Option<f64>,
    /// Query words matched under the matching strategy (the `words` rule's bucket).
    pub matching_words: u32,
}

/// What the documents routes ask for.
#[derive(Debug, Clone, Default)]
pub struct DocumentQuery {
    /// The `filter` parameter as given.
    pub filter: Option<Value>,
    /// `sort` expressions (`attr:asc`) on sortable attributes.
    pub sort: Vec<String>,
    /// Documents to skip.
    pub offset: usize,
    /// Documents to return.
    pub limit: usize,
    /// Fields to return (`None` = all).
    pub fields: Option<Vec<String>>,
}

/// Search results.
#[derive(Debug, Clone)]
pub struct SearchResults {
    /// Hits.
    pub hits: Vec<SearchHit>,
    /// Number of matching documents.
    pub total: u64,
    /// `facetDistribution`, when facets were asked.
    pub facet_distribution: Option<Value>,
    /// `facetStats`, when facets were asked.
    pub facet_stats: Option<Value>,
    /// Whether the search ran out of its time budget (`searchCutoffMs`) and the results
    /// cover only the documents evaluated until then.
    pub degraded: bool,
}

/// A page of tasks.
#[derive(Debug, Clone)]
pub struct TaskPage {
    /// Tasks, newest first (oldest first with `reverse`).
    pub results: Vec<Task>,
    /// Tasks matching the filter.
    pub total: u64,
    /// Uid to continue from.
    pub next: Option<u64>,
}

enum DocsSource<'a> {
    /// Parsed documents, perhaps analyzed ahead (see [`PreAnalyzed`]).
    Parsed(Vec<Document>, Option<PreAnalyzed>),
    Raw(&'a [u8]),
}

/// A log record decoded for replay, its documents parsed when they parse.
struct Decoded {
    lsn: Lsn,
    header: OpHeader,
    body: Vec<u8>,
    docs: Option<Vec<Document>>,
    pre: Option<PreAnalyzed>,
}

impl Decoded {
    fn new(lsn: Lsn, kind: u8, payload: Vec<u8>) -> Result<Decoded> {
        if kind != RECORD_KIND_OP {
            return Err(Error::Corrupt(format!(
                "log record {lsn} has unknown kind {kind}"
            )));
        }
        let (header, body) = ops::decode(&payload)?;
        // A payload that does not parse is handed over raw: applying it fails the task the
        // same way it did live.
        let docs = match &header.op {
            Op::Documents { format, .. } => parse_payload(body, *format).ok(),
            _ => None,
        };
        let body = body.to_vec();
        Ok(Decoded {
            lsn,
            header,
            body,
            docs,
            pre: None,
        })
    }
}

#[derive(Clone, Copy)]
enum Mode {
    Live,
    /// Replay; metadata effects up to `meta_applied` are already stored, and so are those of
    /// the operation being replayed when `stored`.
    Replay {
        meta_applied: Lsn,
        stored: bool,
    },
}

impl Mode {
    fn skip_meta(self, lsn: Lsn) -> bool {
        matches!(self, Mode::Replay { meta_applied, stored } if stored || lsn <= meta_applied)
    }
}

struct Pending {
    lsn: Lsn,
    header: OpHeader,
    docs: Option<Vec<Document>>,
    pre: Option<PreAnalyzed>,
    /// Whether the drain already tried to analyze it (see [`Inner::analyze_queued`]).
    analysis_tried: bool,
}

impl Pending {
    /// An add-or-replace with documents and no analysis, not yet tried by the drain.
    fn wants_analysis(&self) -> bool {
        self.pre.is_none()
            && !self.analysis_tried
            && self.docs.is_some()
            && matches!(
                self.header.op,
                Op::Documents {
                    method: Method::Replace,
                    ..
                }
            )
    }
}

#[derive(Default)]
struct SlotQueue {
    pending: VecDeque<Pending>,
    results: FxHashMap<Lsn, Result<Task>>,
}

struct Slot {
    uid: Option<String>,
    queue: Mutex<SlotQueue>,
    current: RwLock<Option<Arc<IndexInstance>>>,
}

impl Slot {
    fn new(uid: Option<String>) -> Arc<Slot> {
        Arc::new(Slot {
            uid,
            queue: Mutex::new(SlotQueue::default()),
            current: RwLock::new(None),
        })
    }

    fn instance(&self) -> Option<Arc<IndexInstance>> {
        self.current.read().clone()
    }
}

/// A write parsed, analyzed and encoded, not yet in the log: the first half of
/// [`Engine::add_documents`] for callers that must not block a thread, such as async tasks
/// (see [`Engine::prepare_documents`]).
pub struct PreparedWrite {
    slot: Arc<Slot>,
    records: Vec<(u8, Vec<u8>)>,
    /// The queue entry, its LSN still 0.
    pending: Pending,
    estimate: usize,
}

impl std::fmt::Debug for PreparedWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedWrite")
            .field("index", &self.slot.uid)
            .finish_non_exhaustive()
    }
}

/// A write whose record is in the log and queued on its index: acknowledged (its task
/// returned) once durable and applied, like every write (W1, W2).
///
/// Async callers await [`SubmittedWrite::durable`], then [`SubmittedWrite::try_complete`];
/// [`SubmittedWrite::complete`] does both, blocking. Dropping it unfinished completes it,
/// blocking, so that its slot queue never keeps an operation nobody applies.
#[must_use = "a submitted write is acknowledged only once completed"]
pub struct SubmittedWrite {
    inner: Arc<Inner>,
    slot: Arc<Slot>,
    lsn: Lsn,
    /// Before [`SubmittedWrite::durable`] is first polled.
    ticket: Option<eddy_wal::Ticket>,
    /// While [`SubmittedWrite::durable`] is in progress.
    wait: Option<eddy_wal::WaitFuture>,
    /// The outcome of the wait, once known.
    waited: Option<std::result::Result<(), eddy_wal::Error>>,
    reservation: Option<Reservation>,
    completed: bool,
}

impl std::fmt::Debug for SubmittedWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubmittedWrite")
            .field("index", &self.slot.uid)
            .field("lsn", &self.lsn)
            .finish_non_exhaustive()
    }
}

impl SubmittedWrite {
    fn new(
        inner: Arc<Inner>,
        slot: Arc<Slot>,
        lsn: Lsn,
        ticket: eddy_wal::Ticket,
        reservation: Reservation,
    ) -> SubmittedWrite {
        SubmittedWrite {
            inner,
            slot,
            lsn,
            ticket: Some(ticket),
            wait: None,
            waited: None,
            reservation: Some(reservation),
            completed: false,
        }
    }

    /// Waits, without blocking a thread, until the write's record is durable (or the log
    /// failed: [`SubmittedWrite::try_complete`] then returns the error). Works with any
    /// executor.
    pub async fn durable(&mut self) {
        if self.waited.is_some() {
            return;
        }
        if let Some(ticket) = self.ticket.take() {
            self.wait = Some(ticket.wait_async());
        }
        if let Some(wait) = &mut self.wait {
            let outcome = wait.await.map(|_| ());
            self.wait = None;
            self.waited = Some(outcome);
        }
    }

    /// Completes the write once [`SubmittedWrite::durable`] has returned, unless that would
    /// block (another thread holds the index's queue, or the wait is not over): then the write
    /// comes back, for [`SubmittedWrite::complete`] on a thread that may block.
    ///
    /// # Errors
    /// As [`Engine::add_documents`].
    pub fn try_complete(mut self) -> std::result::Result<Result<Task>, Box<SubmittedWrite>> {
        let Some(waited) = self.waited.take() else {
            return Err(Box::new(self));
        };
        let slot = self.slot.clone();
        let Some(mut queue) = slot.queue.try_lock() else {
            self.waited = Some(waited);
            return Err(Box::new(self));
        };
        let result = self.inner.complete(&slot, &mut queue, self.lsn, waited);
        drop(queue);
        Ok(self.finish(result, false))
    }

    /// Waits until the write is durable and applied, blocking; returns its task.
    ///
    /// # Errors
    /// As [`Engine::add_documents`].
    pub fn complete(mut self) -> Result<Task> {
        let result = self.complete_blocking();
        self.finish(result, true)
    }

    fn complete_blocking(&mut self) -> Result<Task> {
        let waited = match (self.waited.take(), self.ticket.take(), self.wait.take()) {
            (Some(waited), _, _) => waited,
            (None, Some(ticket), _) => ticket.wait().map(|_| ()),
            (None, None, Some(wait)) => block_on(wait).map(|_| ()),
            (None, None, None) => Err(eddy_wal::Error::Closed),
        };
        let slot = self.slot.clone();
        let mut queue = slot.queue.lock();
        self.inner.complete(&slot, &mut queue, self.lsn, waited)
    }

    fn finish(&mut self, result: Result<Task>, may_block: bool) -> Result<Task> {
        self.completed = true;
        self.reservation = None;
        if let Ok(task) = &result
            && task.status == TaskStatus::Succeeded
        {
            self.inner.after_write(&self.slot, may_block);
        }
        result
    }
}

impl Drop for SubmittedWrite {
    fn drop(&mut self) {
        if !self.completed {
            let result = self.complete_blocking();
            self.completed = true;
            if let Err(e) = result {
                tracing::debug!(lsn = self.lsn, error = %e, "an abandoned write failed");
            }
        }
    }
}

/// Runs a future to completion on the current thread (for a wait an async caller abandoned).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}

/// What one applied operation produced.
struct Outcome {
    kind: TaskKind,
    details: Option<Map<String, Value>>,
    error: Option<Error>,
    /// Documents written to a memtable (recovery statistics).
    applied_docs: u64,
    /// The task finishes later (a settings change waiting for its rebuild).
    processing: bool,
}

impl Outcome {
    fn ok(kind: TaskKind, details: Value) -> Outcome {
        Outcome {
            kind,
            details: details.as_object().cloned(),
            error: None,
            applied_docs: 0,
            processing: false,
        }
    }

    fn with_applied(mut self, docs: u64) -> Outcome {
        self.applied_docs = docs;
        self
    }

    fn failed(kind: TaskKind, details: Value, error: Error) -> Outcome {
        Outcome {
            kind,
            details: details.as_object().cloned(),
            error: Some(error),
            applied_docs: 0,
            processing: false,
        }
    }
}

struct Inner {
    path: PathBuf,
    config: EngineConfig,
    wal: Wal,
    meta: MetaStore,
    slots: RwLock<BTreeMap<String, Arc<Slot>>>,
    tasks_slot: Arc<Slot>,
    in_flight: Mutex<BTreeSet<Lsn>>,
    budget: Arc<MemoryBudget>,
    poisoned: RwLock<Option<String>>,
    /// Deleted index incarnations and the LSN that deleted them: their files go once the
    /// deletion is durable in the metadata store.
    removals: Mutex<Vec<(Lsn, Arc<IndexInstance>)>>,
    flush_wakeup: (Mutex<bool>, Condvar),
    /// Wakes the refresher thread early (set at shutdown).
    refresh_wakeup: (Mutex<bool>, Condvar),
    shutdown: AtomicBool,
    checkpoint_lock: Mutex<()>,
    last_periodic: Mutex<Instant>,
    /// Documents the last applied operation wrote to a memtable (read by recovery).
    last_applied_docs: std::sync::atomic::AtomicU64,
    /// Index uids whose pending rebuild the rebuilder thread should run (see
    /// [`crate::rebuild`]), and its wake-up.
    rebuild_queue: (Mutex<VecDeque<String>>, Condvar),
    /// While a rebuild runs: the LSN from which its index needs the log (`P + 1`).
    rebuild_floors: Mutex<BTreeMap<String, Lsn>>,
    /// Bumped when tasks finish outside the write path (rebuild swaps), for waiters.
    task_events: (Mutex<u64>, Condvar),
    /// The data directory's lock, released last.
    _lock: Box<dyn std::any::Any + Send + Sync>,
}

/// The engine. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct Engine {
    inner: Arc<Inner>,
    flusher: Mutex<Option<JoinHandle<()>>>,
    rebuilder: Mutex<Option<JoinHandle<()>>>,
    refresher: Mutex<Option<JoinHandle<()>>>,
    recovery: RecoveryStats,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

fn now_ns() -> i128 {
    OffsetDateTime::now_utc().unix_timestamp_nanos()
}

fn time_of_ns(ns: i128) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(ns).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |e| Error::io(op, path, e)
}

impl Engine {
    /// Opens (or creates) a data directory, recovers from the log and starts the flusher.
    ///
    /// # Errors
    /// `Locked` when another process holds the directory, `UnsupportedVersion` for an
    /// unknown format, I/O and corruption errors (the directory is never modified to
    /// "repair" it, except truncating a torn log tail).
    pub fn open(path: impl AsRef<Path>, mut config: EngineConfig) -> Result<Engine> {
        let path = path.as_ref().to_path_buf();
        if config.write_buffer_bytes > crate::config::MAX_WRITE_BUFFER_BYTES {
            tracing::warn!(
                requested = config.write_buffer_bytes,
                used = crate::config::MAX_WRITE_BUFFER_BYTES,
                "write buffer lowered to its maximum"
            );
            config.write_buffer_bytes = crate::config::MAX_WRITE_BUFFER_BYTES;
        }
        let disk = config.disk.clone();
        disk.create_dir_all(&path)
            .map_err(io("create data directory", &path))?;
        let lock_path = path.join("LOCK");
        let lock = disk
            .try_lock(&lock_path)
            .map_err(io("lock", &lock_path))?
            .ok_or_else(|| Error::Locked(path.clone()))?;
        check_version(&*disk, &path)?;
        let meta_dir = path.join("meta");
        disk.create_dir_all(&meta_dir)
            .map_err(io("create", &meta_dir))?;
        let indexes_dir = path.join("indexes");
        disk.create_dir_all(&indexes_dir)
            .map_err(io("create", &indexes_dir))?;
        let meta = MetaStore::open(&*disk, &meta_dir.join("meta.redb"))?;
        // IMPORTANT: redb fsyncs the file, never its directory entry: without this a power cut
        // can lose the whole store (registry, tasks, applied LSN) after the log was truncated.
        disk.sync_dir(&meta_dir).map_err(io("fsync", &meta_dir))?;
        let wal_dir = path.join("wal");
        let wal = Wal::open_with_storage(
            disk.wal_storage(&wal_dir)?,
            WalConfig {
                segment_bytes_max: config.wal_segment_bytes,
                durability: config.durability,
                ..WalConfig::default()
            },
        )?;
        let budget = MemoryBudget::new(config.memtable_budget_bytes());
        let inner = Arc::new(Inner {
            path: path.clone(),
            config,
            wal,
            meta,
            slots: RwLock::new(BTreeMap::new()),
            tasks_slot: Slot::new(None),
            in_flight: Mutex::new(BTreeSet::new()),
            budget,
            poisoned: RwLock::new(None),
            removals: Mutex::new(Vec::new()),
            flush_wakeup: (Mutex::new(false), Condvar::new()),
            refresh_wakeup: (Mutex::new(false), Condvar::new()),
            shutdown: AtomicBool::new(false),
            checkpoint_lock: Mutex::new(()),
            last_periodic: Mutex::new(Instant::now()),
            last_applied_docs: std::sync::atomic::AtomicU64::new(0),
            rebuild_queue: (Mutex::new(VecDeque::new()), Condvar::new()),
            rebuild_floors: Mutex::new(BTreeMap::new()),
            task_events: (Mutex::new(0), Condvar::new()),
            _lock: lock,
        });
        for record in inner.meta.indexes()? {
            let slot = inner.slot(&record.uid, true).expect("created");
            let instance = inner.open_instance(record)?;
            *slot.current.write() = Some(Arc::new(instance));
        }
        let recovery = inner.replay()?;
        inner.remove_orphan_directories()?;
        for instance in inner.instances() {
            if instance.pending_rebuild_lsn().is_some() {
                inner.enqueue_rebuild(&instance.uid());
            }
        }
        let flusher = if inner.config.merge_strategy == MergeStrategy::Manual {
            None
        } else {
            let inner2 = inner.clone();
            Some(
                std::thread::Builder::new()
                    .name("eddy-flusher".into())
                    .spawn(move || inner2.flusher_loop())
                    .map_err(io("spawn flusher thread", &path))?,
            )
        };
        let engine = Engine {
            inner,
            flusher: Mutex::new(flusher),
            rebuilder: Mutex::new(None),
            refresher: Mutex::new(None),
            recovery,
        };
        // On failure the engine is dropped here, which stops the flusher.
        let inner2 = engine.inner.clone();
        let rebuilder = std::thread::Builder::new()
            .name("eddy-rebuilder".into())
            .spawn(move || inner2.rebuilder_loop())
            .map_err(io("spawn rebuilder thread", &path))?;
        *engine.rebuilder.lock() = Some(rebuilder);
        let inner2 = engine.inner.clone();
        let refresher = std::thread::Builder::new()
            .name("eddy-refresher".into())
            .spawn(move || inner2.refresher_loop())
            .map_err(io("spawn refresher thread", &path))?;
        *engine.refresher.lock() = Some(refresher);
        Ok(engine)
    }

    /// What recovery did.
    pub fn recovery(&self) -> RecoveryStats {
        self.recovery
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Why writes are refused, if they are.
    pub fn poisoned(&self) -> Option<String> {
        self.inner.poisoned.read().clone()
    }

    // ------------------------------------------------------------------ writes

    /// Adds or replaces (`Method::Replace`) or adds or updates (`Method::Update`) documents
    /// from a payload. Syntax errors are returned; everything that depends on the index's
    /// state (missing or invalid ids, primary key) makes a failed task.
    pub fn add_documents(
        &self,
        uid: &str,
        payload: &[u8],
        format: PayloadFormat,
        method: Method,
        primary_key: Option<String>,
    ) -> Result<Task> {
        let (header, docs, estimate) = documents_op(uid, payload, format, method, primary_key)?;
        self.inner
            .write(Some(uid), header, payload, Some(docs), estimate)
    }

    /// The first half of [`Engine::add_documents`], for callers that must not block a thread
    /// (async tasks): validates, parses and analyzes the documents and encodes the log record.
    /// Takes no lock that a write holds for long. Continue with [`Engine::try_submit`].
    ///
    /// # Errors
    /// As [`Engine::add_documents`].
    pub fn prepare_documents(
        &self,
        uid: &str,
        payload: &[u8],
        format: PayloadFormat,
        method: Method,
        primary_key: Option<String>,
    ) -> Result<PreparedWrite> {
        let (header, docs, estimate) = documents_op(uid, payload, format, method, primary_key)?;
        self.inner
            .prepare(Some(uid), header, payload, Some(docs), estimate)
    }

    /// Submits a prepared write to the log without blocking. When that would block (memory
    /// is short, another writer holds the index's queue, the log's queue is full) the write
    /// comes back unsubmitted, for [`Engine::write_prepared`] on a thread that may block.
    ///
    /// # Errors
    /// The engine is poisoned or closed.
    pub fn try_submit(
        &self,
        prepared: PreparedWrite,
    ) -> Result<std::result::Result<SubmittedWrite, PreparedWrite>> {
        self.inner.try_submit(prepared)
    }

    /// Writes a prepared write, blocking as [`Engine::add_documents`] does.
    ///
    /// # Errors
    /// As [`Engine::add_documents`].
    pub fn write_prepared(&self, prepared: PreparedWrite) -> Result<Task> {
        self.inner.check_writable()?;
        let reservation = self
            .inner
            .budget
            .reserve(prepared.estimate, self.inner.config.overload_wait)?;
        self.inner.submit(prepared, reservation)?.complete()
    }

    /// Deletes documents by id.
    pub fn delete_documents(&self, uid: &str, ids: Vec<Value>) -> Result<Task> {
        validate_index_uid(uid)?;
        self.simple_write(Some(uid), Op::DeleteDocuments { ids })
    }

    /// Deletes the documents matching a filter. Syntax errors are returned at once; which
    /// documents match is decided when the operation is applied, in log order, so a replay
    /// deletes exactly the same documents.
    ///
    /// The filter's attributes must be filterable under the index's settings when the
    /// request arrives (applying only parses it, so that a replay, which may see later
    /// settings, decides exactly as the live run did).
    pub fn delete_documents_by_filter(&self, uid: &str, filter: Value) -> Result<Task> {
        validate_index_uid(uid)?;
        match self.instance(uid) {
            Ok(instance) => {
                search::filter::compile(
                    &filter,
                    &instance.record().settings,
                    Code::InvalidDocumentFilter,
                )?;
            }
            Err(_) => {
                search::filter::compile_unchecked(&filter, Code::InvalidDocumentFilter)?;
            }
        }
        self.simple_write(Some(uid), Op::DeleteByFilter { filter })
    }

    /// Deletes every document of an index.
    pub fn clear_documents(&self, uid: &str) -> Result<Task> {
        validate_index_uid(uid)?;
        self.simple_write(Some(uid), Op::ClearDocuments)
    }

    /// Creates an index.
    pub fn create_index(&self, uid: &str, primary_key: Option<String>) -> Result<Task> {
        validate_index_uid(uid)?;
        self.simple_write(Some(uid), Op::CreateIndex { primary_key })
    }

    /// Changes an index's primary key.
    pub fn update_index(&self, uid: &str, primary_key: Option<String>) -> Result<Task> {
        validate_index_uid(uid)?;
        self.simple_write(Some(uid), Op::UpdateIndex { primary_key })
    }

    /// Deletes an index.
    pub fn delete_index(&self, uid: &str) -> Result<Task> {
        validate_index_uid(uid)?;
        self.simple_write(Some(uid), Op::DeleteIndex)
    }

    /// Updates settings with a patch (validated now; invalid settings are an error, not a
    /// task). A missing index is created.
    ///
    /// A change of tokenization on an index with documents rebuilds it in the background
    /// (see [`crate::rebuild`]): the task is returned `processing` and finishes when the
    /// rebuilt index is swapped in ([`Engine::wait_for_task`]); until then the index serves,
    /// and [`Engine::settings`] answers, with the old settings.
    pub fn update_settings(&self, uid: &str, patch: Map<String, Value>) -> Result<Task> {
        validate_index_uid(uid)?;
        Settings::default().patched(&patch)?;
        self.simple_write(Some(uid), Op::UpdateSettings { patch })
    }

    /// Cancels tasks matching a filter. eddy's tasks are finished when created, except a
    /// settings task waiting for its rebuild: canceling it abandons the rebuild (see
    /// `Inner::apply_cancel`). The cancelation task records what matched and what was
    /// canceled.
    pub fn cancel_tasks(&self, filter: TaskFilter, original_filter: String) -> Result<Task> {
        let query = serde_json::to_value(&filter).map_err(Error::meta)?;
        self.simple_write(
            None,
            Op::CancelTasks {
                query,
                original_filter,
            },
        )
    }

    /// Deletes finished tasks matching a filter.
    pub fn delete_tasks(&self, filter: TaskFilter, original_filter: String) -> Result<Task> {
        let query = serde_json::to_value(&filter).map_err(Error::meta)?;
        self.simple_write(
            None,
            Op::DeleteTasks {
                query,
                original_filter,
            },
        )
    }

    fn simple_write(&self, uid: Option<&str>, op: Op) -> Result<Task> {
        let header = OpHeader {
            enqueued_at_ns: now_ns(),
            index: uid.map(str::to_string),
            op,
        };
        self.inner.write(uid, header, &[], None, 4096)
    }

    /// Freezes every active memtable: their contents stay searchable, and the flusher writes
    /// them to Tantivy according to the merge strategy.
    pub fn freeze_all(&self) {
        for slot in self.inner.slots.read().values() {
            if let Some(instance) = slot.instance() {
                let _queue = slot.queue.lock();
                instance.freeze(None);
            }
        }
    }

    /// Freezes every active memtable and flushes everything to Tantivy, then checkpoints.
    pub fn flush(&self) -> Result<()> {
        self.freeze_all();
        for instance in self.inner.instances() {
            self.inner.flush_instance(&instance, usize::MAX)?;
        }
        self.inner.checkpoint()
    }

    /// Flushes and closes: the next open has nothing to replay.
    pub fn close(self) -> Result<()> {
        self.stop_flusher();
        if self.poisoned().is_none() {
            self.flush()?;
        }
        Ok(())
    }

    fn stop_flusher(&self) {
        self.inner.shutdown.store(true, Ordering::SeqCst);
        {
            let (lock, cv) = &self.inner.flush_wakeup;
            *lock.lock() = true;
            cv.notify_all();
        }
        {
            let (lock, cv) = &self.inner.rebuild_queue;
            let _queue = lock.lock();
            cv.notify_all();
        }
        {
            let (lock, cv) = &self.inner.refresh_wakeup;
            *lock.lock() = true;
            cv.notify_all();
        }
        if let Some(handle) = self.flusher.lock().take() {
            let _ = handle.join();
        }
        if let Some(handle) = self.rebuilder.lock().take() {
            let _ = handle.join();
        }
        if let Some(handle) = self.refresher.lock().take() {
            let _ = handle.join();
        }
    }

    // ------------------------------------------------------------------ reads

    fn instance(&self, uid: &str) -> Result<Arc<IndexInstance>> {
        self.inner
            .slot(uid, false)
            .and_then(|s| s.instance())
            .ok_or_else(|| Error::IndexNotFound(uid.to_string()))
    }

    /// Every index, by uid.
    pub fn indexes(&self) -> Vec<IndexInfo> {
        self.inner
            .instances()
            .iter()
            .map(|i| info_of(&i.record()))
            .collect()
    }

    /// One index.
    pub fn index(&self, uid: &str) -> Result<IndexInfo> {
        Ok(info_of(&self.instance(uid)?.record()))
    }

    /// Settings of an index.
    pub fn settings(&self, uid: &str) -> Result<Settings> {
        Ok(self.instance(uid)?.record().settings)
    }

    /// One document by id (fields selected with `fields`).
    pub fn document(&self, uid: &str, id: &str, fields: Option<&[String]>) -> Result<Document> {
        let instance = self.instance(uid)?;
        instance.with_snapshot(|s| match s.find(id)? {
            Some(r) => {
                let doc: Document = serde_json::from_slice(&s.json(r.layer, r.doc)?)
                    .map_err(|e| Error::Corrupt(e.to_string()))?;
                Ok(select_fields(&doc, fields))
            }
            None => Err(Error::DocumentNotFound(id.to_string())),
        })
    }

    /// A page of documents in insertion order, and the total.
    pub fn documents(
        &self,
        uid: &str,
        offset: usize,
        limit: usize,
        fields: Option<&[String]>,
    ) -> Result<(Vec<Document>, u64)> {
        let instance = self.instance(uid)?;
        instance.with_snapshot(|s| {
            let mut top = search::eval::TopK::new(offset.saturating_add(limit));
            search::eval::placeholder(s, &mut top);
            let total = top.count;
            let mut docs = Vec::new();
            for c in top.into_sorted().into_iter().skip(offset) {
                let doc: Document = serde_json::from_slice(&s.json(c.doc.layer, c.doc.doc)?)
                    .map_err(|e| Error::Corrupt(e.to_string()))?;
                docs.push(select_fields(&doc, fields));
            }
            Ok((docs, total))
        })
    }

    /// Searches an index.
    pub fn search(&self, uid: &str, request: &SearchRequest) -> Result<SearchResults> {
        let instance = self.instance(uid)?;
        let (settings, primary_key) = instance.search_settings();
        let field_order = || instance.fields().order().to_vec();
        instance.with_snapshot(|s| {
            // Field ids are only ever added: read after the snapshot, they cover it.
            let ranked = search::pipeline::execute(s, &settings, request, &field_order)?;
            let mut hits = Vec::with_capacity(ranked.hits.len());
            for h in ranked.hits {
                let r = h.candidate.doc;
                let document: Document = serde_json::from_slice(&s.json(r.layer, r.doc)?)
                    .map_err(|e| Error::Corrupt(e.to_string()))?;
                // The id is in the document: reading it from a segment's `_pk` column would
                // decompress a dictionary block per hit.
                let id = match primary_key.as_deref().map(|pk| document_id(&document, pk)) {
                    Some(Ok(id)) => id,
                    _ => s.pk(r.layer, r.doc),
                };
                hits.push(SearchHit {
                    id,
                    document,
                    score: h.candidate.score,
                    ranking_score: h.ranking_score,
                    geo_distance: h.geo_distance,
                    matching_words: h.candidate.bucket,
                });
            }
            Ok(SearchResults {
                hits,
                total: ranked.total,
                facet_distribution: ranked.facet_distribution,
                facet_stats: ranked.facet_stats,
                degraded: ranked.degraded,
            })
        })
    }

    /// Facet search: the values of `facet_name` among the documents matching the request
    /// (`q`, `filter`…) whose value matches `facet_query` (prefix and typo tolerant), with
    /// their counts, in the facet's `sortFacetValuesBy` order, at most `maxValuesPerFacet`.
    ///
    /// # Errors
    /// `invalid_facet_search_facet_name` when the facet is not filterable or facet search is
    /// disabled; the search's own errors.
    pub fn facet_search(
        &self,
        uid: &str,
        request: &SearchRequest,
        facet_name: &str,
        facet_query: Option<&str>,
    ) -> Result<Vec<(String, u64)>> {
        let instance = self.instance(uid)?;
        let settings = instance.record().settings;
        let patterns = search::filter::filterable_patterns(&settings);
        if !settings.facet_search {
            return Err(Error::InvalidSearch {
                code: Code::InvalidFacetSearchFacetName,
                message: "The facet search is disabled for this index".into(),
            });
        }
        if !patterns
            .iter()
            .any(|p| search::filter::pattern_matches(p, facet_name))
        {
            let mut valid: Vec<&str> = patterns.iter().map(String::as_str).collect();
            valid.sort_unstable();
            return Err(Error::InvalidSearch {
                code: Code::InvalidFacetSearchFacetName,
                message: format!(
                    "Attribute `{facet_name}` is not facet-searchable. {}To make it facet-searchable add it to the `filterableAttributes` index settings.",
                    if valid.is_empty() {
                        "This index does not have configured facet-searchable attributes. "
                            .to_string()
                    } else {
                        format!(
                            "Available facet-searchable attributes patterns are: `{}`. ",
                            valid.join(", ")
                        )
                    }
                ),
            });
        }
        let limit = settings.faceting.max_values_per_facet;
        let mut unlimited = settings.clone();
        unlimited.faceting.max_values_per_facet = usize::MAX;
        let mut request = request.clone();
        request.facets = Some(vec![facet_name.to_string()]);
        request.limit = 0;
        request.offset = 0;
        let field_order = || instance.fields().order().to_vec();
        let dist = instance.with_snapshot(|s| {
            Ok(
                search::pipeline::execute(s, &unlimited, &request, &field_order)?
                    .facet_distribution,
            )
        })?;
        let mut out = Vec::new();
        if let Some(Value::Object(facets)) = dist
            && let Some(Value::Object(values)) = facets.get(facet_name)
        {
            for (value, count) in values {
                if facet_query.is_none_or(|q| search::facets::facet_query_matches(value, q)) {
                    out.push((value.clone(), count.as_u64().unwrap_or(0)));
                }
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    /// A page of documents for the documents routes: those matching `query.filter` (all
    /// without one), ordered by `query.sort` then insertion order, and the total.
    ///
    /// # Errors
    /// `invalid_document_filter` (syntax, attribute not filterable), `invalid_document_sort`;
    /// missing index.
    pub fn filter_documents(
        &self,
        uid: &str,
        query: &DocumentQuery,
    ) -> Result<(Vec<Document>, u64)> {
        let DocumentQuery {
            filter,
            sort,
            offset,
            limit,
            fields,
        } = query;
        let (filter, offset, limit, fields) = (filter.as_ref(), *offset, *limit, fields.as_deref());
        let code = Code::InvalidDocumentFilter;
        let instance = self.instance(uid)?;
        let settings = instance.record().settings;
        let compiled = match filter {
            Some(f) => search::filter::compile(f, &settings, code)?,
            None => None,
        };
        let sort = search::sort::parse_document_sort(sort, &settings)?;
        instance.with_snapshot(|s| {
            let (page, total) =
                search::pipeline::filter_documents(s, compiled.as_ref(), &sort, offset, limit)?;
            let docs = page
                .into_iter()
                .map(|(_, doc)| match doc {
                    Value::Object(m) => select_fields(&m, fields),
                    _ => Document::new(),
                })
                .collect();
            Ok((docs, total))
        })
    }

    /// Statistics of an index. `field_distribution` reads every document; ask for it only
    /// when needed.
    pub fn index_stats(&self, uid: &str, field_distribution: bool) -> Result<IndexStats> {
        let instance = self.instance(uid)?;
        let view: Arc<View> = instance.view();
        let (docs, distribution) = instance.with_snapshot(|s| {
            let mut dist = BTreeMap::new();
            if field_distribution {
                let mut refs = Vec::new();
                s.for_each_visible(|r| refs.push(r));
                for r in refs {
                    let doc: Document = serde_json::from_slice(&s.json(r.layer, r.doc)?)
                        .map_err(|e| Error::Corrupt(e.to_string()))?;
                    for k in doc.keys() {
                        *dist.entry(k.clone()).or_insert(0u64) += 1;
                    }
                }
            }
            Ok((s.corpus().docs, dist))
        })?;
        let flush = instance.flush_stats();
        let checkpoint = instance.checkpoint();
        let segments = self.inner.wal.segments();
        let (mut wal_segments, mut wal_bytes) = (0u64, 0u64);
        for (i, (_, bytes)) in segments.iter().enumerate() {
            // Segment `i` holds LSNs below the next segment's first LSN.
            let needed = segments
                .get(i + 1)
                .is_none_or(|(next_first, _)| *next_first > checkpoint + 1);
            if needed {
                wal_segments += 1;
                wal_bytes += bytes;
            }
        }
        Ok(IndexStats {
            number_of_documents: docs,
            field_distribution: distribution,
            active_memtable_bytes: view.active().bytes(),
            memtable_bytes: view.memtables.iter().map(|m| m.bytes()).sum(),
            frozen_memtables: view.memtables.len() - 1,
            unsealed_terms: view
                .memtables
                .iter()
                .map(|m| m.mem.read().unsealed_terms())
                .sum(),
            segments: view.searcher.segment_readers().len(),
            checkpoint,
            wal_segments,
            wal_bytes,
            last_flush_at: flush.last_flush_at,
            last_flush_duration: flush.last_flush_duration,
            rebuilding: instance.pending_rebuild_lsn().is_some(),
        })
    }

    /// Log statistics.
    pub fn wal_stats(&self) -> eddy_wal::WalStats {
        self.inner.wal.stats()
    }

    /// Bytes charged to the memtable budget, and that budget
    /// ([`EngineConfig::memtable_budget_bytes`]).
    pub fn memory(&self) -> (usize, usize) {
        (self.inner.budget.in_use(), self.inner.budget.limit())
    }

    /// A task by uid.
    pub fn task(&self, uid: u64) -> Result<Task> {
        self.inner.meta.task(uid)?.ok_or(Error::TaskNotFound(uid))
    }

    /// Waits until a task is finished (succeeded, failed or canceled) or `timeout` passed,
    /// and returns it as it then is.
    ///
    /// # Errors
    /// `task_not_found`; metadata errors.
    pub fn wait_for_task(&self, uid: u64, timeout: Duration) -> Result<Task> {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &self.inner.task_events;
        loop {
            let mut events = lock.lock();
            let task = self.task(uid)?;
            let waiting = matches!(task.status, TaskStatus::Enqueued | TaskStatus::Processing);
            let now = Instant::now();
            if !waiting || now >= deadline || self.poisoned().is_some() {
                return Ok(task);
            }
            // Cancellations are recorded by the write path, which does not notify: poll too.
            cv.wait_for(&mut events, (deadline - now).min(Duration::from_millis(50)));
        }
    }

    /// Lists tasks matching a filter, newest first (oldest first with `reverse`), from uid
    /// `from`, at most `limit`.
    pub fn tasks(
        &self,
        filter: &TaskFilter,
        from: Option<u64>,
        limit: usize,
        reverse: bool,
    ) -> Result<TaskPage> {
        let mut results = Vec::new();
        let mut next = None;
        self.inner.meta.scan_tasks(from, reverse, |t| {
            if filter.matches(&t) {
                if results.len() < limit {
                    results.push(t);
                } else {
                    next = Some(t.uid);
                    return false;
                }
            }
            true
        })?;
        let mut total = 0u64;
        self.inner.meta.scan_tasks(None, false, |t| {
            if filter.matches(&t) {
                total += 1;
            }
            true
        })?;
        Ok(TaskPage {
            results,
            total,
            next,
        })
    }

    /// The metadata store (server-side records: keys, webhooks, features).
    pub fn meta(&self) -> &MetaStore {
        &self.inner.meta
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop_flusher();
    }
}

/// Removes the files of a rebuild that stopped before its swap.
fn discard(instance: Arc<IndexInstance>) -> Result<()> {
    match Arc::try_unwrap(instance) {
        Ok(instance) => instance.destroy(),
        // Not reachable (only the rebuild held it); the next open removes the orphan.
        Err(_) => Ok(()),
    }
}

fn info_of(r: &IndexRecord) -> IndexInfo {
    IndexInfo {
        uid: r.uid.clone(),
        primary_key: r.primary_key.clone(),
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

fn check_version(disk: &dyn Disk, path: &Path) -> Result<()> {
    let version_path = path.join("VERSION");
    match disk.read(&version_path) {
        Ok(found) => {
            let found = String::from_utf8_lossy(&found);
            if found.trim() != DATA_VERSION {
                return Err(Error::UnsupportedVersion {
                    path: path.to_path_buf(),
                    found: found.trim().to_string(),
                    expected: DATA_VERSION.to_string(),
                });
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut has_data = false;
            for d in ["wal", "meta", "indexes"] {
                let p = path.join(d);
                has_data |= disk.exists(&p).map_err(io("stat", &p))?;
            }
            if has_data {
                return Err(Error::UnsupportedVersion {
                    path: path.to_path_buf(),
                    found: "(no VERSION file)".into(),
                    expected: DATA_VERSION.to_string(),
                });
            }
            disk.write_synced(&version_path, format!("{DATA_VERSION}\n").as_bytes())
                .map_err(io("write", &version_path))?;
            disk.sync_dir(path).map_err(io("fsync directory", path))
        }
        Err(e) => Err(Error::io("read", &version_path, e)),
    }
}

impl Inner {
    fn slot(&self, uid: &str, create: bool) -> Option<Arc<Slot>> {
        if let Some(s) = self.slots.read().get(uid) {
            return Some(s.clone());
        }
        if !create {
            return None;
        }
        let mut slots = self.slots.write();
        Some(
            slots
                .entry(uid.to_string())
                .or_insert_with(|| Slot::new(Some(uid.to_string())))
                .clone(),
        )
    }

    fn instances(&self) -> Vec<Arc<IndexInstance>> {
        self.slots
            .read()
            .values()
            .filter_map(|s| s.instance())
            .collect()
    }

    fn index_dir(&self, id: u64) -> PathBuf {
        self.path.join("indexes").join(format!("{id:020}"))
    }

    fn open_instance(&self, record: IndexRecord) -> Result<IndexInstance> {
        IndexInstance::open(
            self.config.disk.clone(),
            &self.index_dir(record.id),
            record,
            self.config.segments,
            self.budget.clone(),
        )
    }

    fn failpoint(&self, name: &'static str) -> Result<()> {
        match &self.config.failpoint {
            Some(f) => f(name),
            None => Ok(()),
        }
    }

    fn poison(&self, why: String) -> Error {
        let mut p = self.poisoned.write();
        if p.is_none() {
            tracing::error!(reason = %why, "eddy stops accepting writes");
            *p = Some(why.clone());
        }
        Error::Poisoned(p.clone().unwrap_or(why))
    }

    fn check_poison(&self) -> Result<()> {
        match &*self.poisoned.read() {
            Some(why) => Err(Error::Poisoned(why.clone())),
            None => Ok(()),
        }
    }

    /// The write path: log, wait for group commit, apply in order, answer.
    fn write(
        self: &Arc<Self>,
        uid: Option<&str>,
        header: OpHeader,
        body: &[u8],
        docs: Option<Vec<Document>>,
        estimate: usize,
    ) -> Result<Task> {
        self.check_writable()?;
        let reservation = self.budget.reserve(estimate, self.config.overload_wait)?;
        let prepared = self.prepare(uid, header, body, docs, estimate)?;
        self.submit(prepared, reservation)?.complete()
    }

    fn check_writable(&self) -> Result<()> {
        self.check_poison()?;
        if self.shutdown.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// The part of a write that needs no lock: the slot, the analysis (in parallel with other
    /// writers instead of under the slot lock) and the log record.
    fn prepare(
        &self,
        uid: Option<&str>,
        header: OpHeader,
        body: &[u8],
        docs: Option<Vec<Document>>,
        estimate: usize,
    ) -> Result<PreparedWrite> {
        let slot = match uid {
            Some(uid) => self.slot(uid, true).expect("created"),
            None => self.tasks_slot.clone(),
        };
        let pre = self.pre_analyze(0, &header, docs.as_deref())?;
        let payload = ops::encode(&header, body)?;
        Ok(PreparedWrite {
            slot,
            records: vec![(RECORD_KIND_OP, payload)],
            pending: Pending {
                lsn: 0,
                header,
                docs,
                pre,
                analysis_tried: false,
            },
            estimate,
        })
    }

    /// Submits a prepared write to the log and queues it on its slot, waiting for the slot lock
    /// and for room in the log's queue.
    fn submit(
        self: &Arc<Self>,
        prepared: PreparedWrite,
        reservation: Reservation,
    ) -> Result<SubmittedWrite> {
        let PreparedWrite {
            slot,
            records,
            mut pending,
            ..
        } = prepared;
        let mut queue = slot.queue.lock();
        let mut in_flight = self.in_flight.lock();
        let ticket = match self.wal.submit(records) {
            Ok(t) => t,
            Err(e) => return Err(self.poison(format!("log append failed: {e}"))),
        };
        pending.lsn = *ticket.lsns().start();
        in_flight.insert(pending.lsn);
        drop(in_flight);
        let lsn = pending.lsn;
        queue.pending.push_back(pending);
        drop(queue);
        Ok(SubmittedWrite::new(
            self.clone(),
            slot,
            lsn,
            ticket,
            reservation,
        ))
    }

    /// [`Inner::submit`] without blocking: the prepared write back when it would have to wait
    /// (for memory, the slot lock or room in the log's queue).
    fn try_submit(
        self: &Arc<Self>,
        prepared: PreparedWrite,
    ) -> Result<std::result::Result<SubmittedWrite, PreparedWrite>> {
        self.check_writable()?;
        let Some(reservation) = self.budget.try_reserve(prepared.estimate) else {
            return Ok(Err(prepared));
        };
        let slot = prepared.slot.clone();
        let Some(mut queue) = slot.queue.try_lock() else {
            return Ok(Err(prepared));
        };
        let mut in_flight = self.in_flight.lock();
        let ticket = match self.wal.try_submit(&prepared.records) {
            Ok(Some(t)) => t,
            Ok(None) => {
                drop(in_flight);
                drop(queue);
                return Ok(Err(prepared));
            }
            Err(e) => return Err(self.poison(format!("log append failed: {e}"))),
        };
        let lsn = *ticket.lsns().start();
        in_flight.insert(lsn);
        drop(in_flight);
        let mut pending = prepared.pending;
        pending.lsn = lsn;
        queue.pending.push_back(pending);
        drop(queue);
        Ok(Ok(SubmittedWrite::new(
            self.clone(),
            slot,
            lsn,
            ticket,
            reservation,
        )))
    }

    /// Completes a submitted write whose wait for durability ended with `waited`: applies
    /// every durable queued operation (its own included) and takes its result.
    fn complete(
        &self,
        slot: &Slot,
        queue: &mut SlotQueue,
        lsn: Lsn,
        waited: std::result::Result<(), eddy_wal::Error>,
    ) -> Result<Task> {
        if let Err(e) = waited {
            queue.pending.retain(|p| p.lsn != lsn);
            self.in_flight.lock().remove(&lsn);
            return Err(self.poison(format!("log sync failed: {e}")));
        }
        self.drain(slot, queue);
        queue.results.remove(&lsn).unwrap_or_else(|| {
            Err(Error::Poisoned(
                "the operation was not applied (the engine stopped)".into(),
            ))
        })
    }

    /// Applies every queued operation whose record is durable, in LSN order.
    fn drain(&self, slot: &Slot, queue: &mut SlotQueue) {
        let durable = self.wal.durable_lsn();
        let mut batch = MetaBatch::default();
        let mut applied = Vec::new();
        while queue.pending.front().is_some_and(|p| p.lsn <= durable) {
            if queue.pending.front().is_some_and(Pending::wants_analysis) {
                self.analyze_queued(slot, queue);
            }
            let Some(p) = queue.pending.pop_front() else {
                break;
            };
            let result = if let Err(e) = self.check_poison() {
                Err(e)
            } else {
                let docs = p.docs.map(|docs| DocsSource::Parsed(docs, p.pre));
                match self.apply(slot, p.lsn, p.header, docs, Mode::Live, &mut batch) {
                    Ok(task) => Ok(task),
                    Err(e) => Err(self.poison(format!("applying LSN {} failed: {e}", p.lsn))),
                }
            };
            queue.results.insert(p.lsn, result);
            applied.push(p.lsn);
        }
        if let Err(e) = self.meta.commit(&batch) {
            let err = self.poison(format!("metadata commit failed: {e}"));
            for lsn in &applied {
                queue
                    .results
                    .insert(*lsn, Err(Error::Poisoned(err.to_string())));
            }
        }
        let mut in_flight = self.in_flight.lock();
        for lsn in applied {
            in_flight.remove(&lsn);
        }
    }

    /// Analyzes the queued add-or-replace writes that have no analysis yet, on as many
    /// threads as there are cores, so that the drain applies them without analyzing one after
    /// the other. Such writes were prepared before their index existed (the first batches of
    /// writers loading a new index in parallel): their writers are waiting on this queue, so
    /// the cores would otherwise idle while the drain analyzes every batch alone.
    fn analyze_queued(&self, slot: &Slot, queue: &mut SlotQueue) {
        if slot.instance().is_none() {
            // The first write creates the index; the next iteration analyzes the others.
            return;
        }
        let mut todo: Vec<&mut Pending> = queue
            .pending
            .iter_mut()
            .filter(|p| p.wants_analysis())
            .collect();
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        // A failure leaves the analysis to the apply, which reports it.
        let analyses = crate::segments::parallel_map(&todo, threads, |p| {
            self.pre_analyze(p.lsn, &p.header, p.docs.as_deref())
                .ok()
                .flatten()
        });
        for (p, pre) in todo.iter_mut().zip(analyses) {
            p.analysis_tried = true;
            p.pre = pre;
        }
    }

    /// Analyzes the documents of an add-or-replace ahead of its apply (see [`PreAnalyzed`]),
    /// when its index exists and its LSN (0 when not yet known) is above the index's
    /// checkpoint.
    fn pre_analyze(
        &self,
        lsn: Lsn,
        header: &OpHeader,
        docs: Option<&[Document]>,
    ) -> Result<Option<PreAnalyzed>> {
        let (Some(uid), Some(docs)) = (&header.index, docs) else {
            return Ok(None);
        };
        if !matches!(
            header.op,
            Op::Documents {
                method: Method::Replace,
                ..
            }
        ) {
            return Ok(None);
        }
        let Some(instance) = self.slot(uid, false).and_then(|s| s.instance()) else {
            return Ok(None);
        };
        if lsn != 0 && lsn <= instance.checkpoint() {
            return Ok(None);
        }
        instance.pre_analyze(docs).map(Some)
    }

    /// After a write: freeze a full memtable, wake the flusher. Without `may_block`, a busy
    /// slot lock leaves the freeze to a later write.
    fn after_write(&self, slot: &Slot, may_block: bool) {
        if let Some(instance) = slot.instance()
            && instance.view().active().bytes() >= self.config.write_buffer_bytes
        {
            let queue = if may_block {
                Some(slot.queue.lock())
            } else {
                slot.queue.try_lock()
            };
            if queue.is_some() && instance.view().active().bytes() >= self.config.write_buffer_bytes
            {
                instance.freeze(None);
            }
        }
        if self.budget.in_use() > self.budget.limit() / 2 {
            self.wake_flusher();
        }
    }

    fn wake_flusher(&self) {
        let (lock, cv) = &self.flush_wakeup;
        *lock.lock() = true;
        cv.notify_one();
    }

    /// Applies one operation. User errors make a failed task; `Err` is an internal error.
    fn apply(
        &self,
        slot: &Slot,
        lsn: Lsn,
        header: OpHeader,
        docs: Option<DocsSource<'_>>,
        mode: Mode,
        batch: &mut MetaBatch,
    ) -> Result<Task> {
        let started = OffsetDateTime::now_utc();
        let clock = Instant::now();
        let outcome = match &header.op {
            Op::Documents {
                method,
                format,
                primary_key,
            } => {
                let source = docs.unwrap_or(DocsSource::Raw(&[]));
                self.apply_documents(
                    slot,
                    lsn,
                    &header,
                    source,
                    *method,
                    *format,
                    primary_key.clone(),
                    mode,
                    batch,
                )?
            }
            Op::DeleteDocuments { ids } => self.apply_delete(slot, lsn, ids, mode)?,
            Op::DeleteByFilter { filter } => {
                self.apply_delete_by_filter(slot, lsn, filter, mode)?
            }
            Op::ClearDocuments => self.apply_clear(slot, lsn, mode)?,
            Op::CreateIndex { primary_key } => {
                self.apply_create(slot, lsn, &header, primary_key.clone(), mode, batch)?
            }
            Op::UpdateIndex { primary_key } => {
                self.apply_update_index(slot, lsn, primary_key.clone(), mode, batch)?
            }
            Op::DeleteIndex => self.apply_delete_index(slot, lsn, mode, batch)?,
            Op::UpdateSettings { patch } => {
                self.apply_settings(slot, lsn, &header, patch, mode, batch)?
            }
            Op::CancelTasks {
                query,
                original_filter,
            } => self.apply_cancel(lsn, query, original_filter, mode, batch)?,
            Op::DeleteTasks {
                query,
                original_filter,
            } => self.apply_delete_tasks(lsn, query, original_filter, mode, batch)?,
        };
        let finished = OffsetDateTime::now_utc();
        let uid = uid_of_lsn(lsn);
        let task = Task {
            uid,
            batch_uid: Some(uid),
            index_uid: header.index.clone(),
            status: if outcome.error.is_some() {
                TaskStatus::Failed
            } else if outcome.processing {
                TaskStatus::Processing
            } else {
                TaskStatus::Succeeded
            },
            kind: outcome.kind,
            canceled_by: None,
            details: outcome.details,
            error: outcome.error.as_ref().map(Error::to_response),
            duration: (!outcome.processing).then(|| format_duration(clock.elapsed())),
            enqueued_at: time_of_ns(header.enqueued_at_ns),
            started_at: Some(started),
            finished_at: (!outcome.processing).then_some(finished),
        };
        if !mode.skip_meta(lsn) {
            batch.tasks.push(task.clone());
        }
        self.last_applied_docs
            .store(outcome.applied_docs, Ordering::Relaxed);
        Ok(task)
    }

    fn touch(&self, instance: &IndexInstance, lsn: Lsn, mode: Mode, batch: &mut MetaBatch) {
        if mode.skip_meta(lsn) {
            return;
        }
        instance.update_record(|r| r.updated_at = OffsetDateTime::now_utc());
        batch.put_indexes.retain(|r| r.id != instance.id);
        batch.put_indexes.push(instance.record());
    }

    fn new_instance(
        &self,
        slot: &Slot,
        lsn: Lsn,
        header: &OpHeader,
        primary_key: Option<String>,
    ) -> Result<Arc<IndexInstance>> {
        let uid = slot.uid.clone().unwrap_or_default();
        let at = time_of_ns(header.enqueued_at_ns);
        let record = IndexRecord {
            id: lsn,
            uid,
            primary_key,
            created_at: at,
            updated_at: at,
            settings: Settings::default(),
            fields: Vec::new(),
            rebuild: None,
        };
        let instance = Arc::new(self.open_instance(record)?);
        *slot.current.write() = Some(instance.clone());
        Ok(instance)
    }

    /// The instance an operation at `lsn` applies to during replay of already-stored
    /// metadata: only the incarnation that existed then.
    fn replay_target(&self, slot: &Slot, lsn: Lsn) -> Option<Arc<IndexInstance>> {
        slot.instance().filter(|i| i.id <= lsn)
    }

    fn task_failed_before(&self, lsn: Lsn) -> Result<bool> {
        Ok(self
            .meta
            .task(uid_of_lsn(lsn))?
            .is_some_and(|t| t.status == TaskStatus::Failed))
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_documents(
        &self,
        slot: &Slot,
        lsn: Lsn,
        header: &OpHeader,
        source: DocsSource<'_>,
        method: Method,
        format: PayloadFormat,
        primary_key: Option<String>,
        mode: Mode,
        batch: &mut MetaBatch,
    ) -> Result<Outcome> {
        let kind = TaskKind::DocumentAdditionOrUpdate;
        let (docs, pre) = match source {
            DocsSource::Parsed(d, pre) => (d, pre),
            DocsSource::Raw(body) => match parse_payload(body, format) {
                Ok(d) => (d, None),
                Err(e) => {
                    return Ok(Outcome::failed(
                        kind,
                        json!({"receivedDocuments": 0, "indexedDocuments": 0}),
                        e,
                    ));
                }
            },
        };
        let received = docs.len() as u64;
        let failed = |e: Error| {
            Ok(Outcome::failed(
                kind,
                json!({"receivedDocuments": received, "indexedDocuments": 0}),
                e,
            ))
        };
        if mode.skip_meta(lsn) {
            // Replaying an operation whose metadata is stored: only the memtable matters.
            let Some(instance) = self.replay_target(slot, lsn) else {
                return Ok(Outcome::ok(kind, json!({})));
            };
            if lsn <= instance.checkpoint() || self.task_failed_before(lsn)? {
                return Ok(Outcome::ok(kind, json!({})));
            }
            let Some(pk) = instance.record().primary_key else {
                return Ok(Outcome::ok(kind, json!({})));
            };
            if docs.iter().any(|d| document_id(d, &pk).is_err()) {
                return Ok(Outcome::ok(kind, json!({})));
            }
            let n = instance.apply_documents(lsn, docs, pre, method, &pk, &self.config)?;
            return Ok(Outcome::ok(kind, json!({})).with_applied(n));
        }
        let instance = slot.instance();
        let index_pk = instance.as_ref().and_then(|i| i.record().primary_key);
        let pk = match (index_pk, primary_key) {
            (Some(existing), Some(given)) if existing != given => {
                return failed(Error::PrimaryKeyAlreadyPresent {
                    index: slot.uid.clone().unwrap_or_default(),
                    primary_key: existing,
                });
            }
            (Some(existing), _) => Some(existing),
            (None, Some(given)) => Some(given),
            (None, None) => match docs.first() {
                None => None,
                Some(first) => match infer_primary_key(first) {
                    Ok(pk) => Some(pk),
                    Err(e) => return failed(e),
                },
            },
        };
        if let Some(pk) = &pk {
            for doc in &docs {
                if let Err(e) = document_id(doc, pk) {
                    return failed(e);
                }
            }
        }
        let instance = match instance {
            Some(i) => i,
            None => self.new_instance(slot, lsn, header, pk.clone())?,
        };
        if instance.record().primary_key.is_none() && pk.is_some() {
            instance.update_record(|r| r.primary_key = pk.clone());
        }
        let mut indexed = 0;
        if let Some(pk) = &pk
            && lsn > instance.checkpoint()
        {
            indexed = instance.apply_documents(lsn, docs, pre, method, pk, &self.config)?;
        }
        self.touch(&instance, lsn, mode, batch);
        Ok(Outcome::ok(
            kind,
            json!({"receivedDocuments": received, "indexedDocuments": indexed}),
        )
        .with_applied(indexed))
    }

    fn apply_delete(&self, slot: &Slot, lsn: Lsn, ids: &[Value], mode: Mode) -> Result<Outcome> {
        let kind = TaskKind::DocumentDeletion;
        let provided = ids.len() as u64;
        let instance = if mode.skip_meta(lsn) {
            self.replay_target(slot, lsn)
        } else {
            slot.instance()
        };
        let Some(instance) = instance else {
            return Ok(Outcome::failed(
                kind,
                json!({"providedIds": provided, "deletedDocuments": 0}),
                Error::IndexNotFound(slot.uid.clone().unwrap_or_default()),
            ));
        };
        let mut canonical = Vec::with_capacity(ids.len());
        for id in ids {
            match id_from_value(id) {
                Ok(id) => canonical.push(id),
                Err(e) => {
                    return Ok(Outcome::failed(
                        kind,
                        json!({"providedIds": provided, "deletedDocuments": 0}),
                        e,
                    ));
                }
            }
        }
        let deleted = if lsn > instance.checkpoint() {
            instance.apply_delete(lsn, &canonical)?
        } else {
            0
        };
        Ok(Outcome::ok(
            kind,
            json!({"providedIds": provided, "deletedDocuments": deleted}),
        ))
    }

    /// Resolves the filter on the index as it is at this LSN (every earlier operation is
    /// applied, no later one is), then deletes those ids at this LSN.
    fn apply_delete_by_filter(
        &self,
        slot: &Slot,
        lsn: Lsn,
        filter: &Value,
        mode: Mode,
    ) -> Result<Outcome> {
        let kind = TaskKind::DocumentDeletion;
        let details = |deleted: u64| json!({"providedIds": 0, "deletedDocuments": deleted, "originalFilter": filter.to_string()});
        let replay = mode.skip_meta(lsn);
        let instance = if replay {
            self.replay_target(slot, lsn)
        } else {
            slot.instance()
        };
        let Some(instance) = instance else {
            return Ok(Outcome::failed(
                kind,
                details(0),
                Error::IndexNotFound(slot.uid.clone().unwrap_or_default()),
            ));
        };
        if lsn <= instance.checkpoint() || (replay && self.task_failed_before(lsn)?) {
            return Ok(Outcome::ok(kind, details(0)));
        }
        // Filterability was checked when the request arrived: applying depends on nothing
        // but the log, so a replay deletes what the live run deleted.
        let compiled = match search::filter::compile_unchecked(filter, Code::InvalidDocumentFilter)
        {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(Outcome::ok(kind, details(0))),
            Err(e) => return Ok(Outcome::failed(kind, details(0), e)),
        };
        let ids = instance.with_snapshot(|s| search::pipeline::matching_ids(s, &compiled))?;
        let deleted = instance.apply_delete(lsn, &ids)?;
        Ok(Outcome::ok(kind, details(deleted)))
    }

    fn apply_clear(&self, slot: &Slot, lsn: Lsn, mode: Mode) -> Result<Outcome> {
        let kind = TaskKind::DocumentDeletion;
        let instance = if mode.skip_meta(lsn) {
            self.replay_target(slot, lsn)
        } else {
            slot.instance()
        };
        let Some(instance) = instance else {
            return Ok(Outcome::failed(
                kind,
                json!({"providedIds": 0, "deletedDocuments": 0, "originalFilter": null}),
                Error::IndexNotFound(slot.uid.clone().unwrap_or_default()),
            ));
        };
        let deleted = if lsn > instance.checkpoint() {
            instance.apply_clear(lsn)?
        } else {
            0
        };
        self.wake_flusher();
        Ok(Outcome::ok(
            kind,
            json!({"providedIds": 0, "deletedDocuments": deleted, "originalFilter": null}),
        ))
    }

    fn apply_create(
        &self,
        slot: &Slot,
        lsn: Lsn,
        header: &OpHeader,
        primary_key: Option<String>,
        mode: Mode,
        batch: &mut MetaBatch,
    ) -> Result<Outcome> {
        let kind = TaskKind::IndexCreation;
        let details = json!({"primaryKey": primary_key});
        if mode.skip_meta(lsn) {
            return Ok(Outcome::ok(kind, details));
        }
        if slot.instance().is_some() {
            return Ok(Outcome::failed(
                kind,
                details,
                Error::IndexAlreadyExists(slot.uid.clone().unwrap_or_default()),
            ));
        }
        let instance = self.new_instance(slot, lsn, header, primary_key)?;
        batch.put_indexes.push(instance.record());
        Ok(Outcome::ok(kind, details))
    }

    fn apply_update_index(
        &self,
        slot: &Slot,
        lsn: Lsn,
        primary_key: Option<String>,
        mode: Mode,
        batch: &mut MetaBatch,
    ) -> Result<Outcome> {
        let kind = TaskKind::IndexUpdate;
        let details = json!({"primaryKey": primary_key});
        if mode.skip_meta(lsn) {
            return Ok(Outcome::ok(kind, details));
        }
        let Some(instance) = slot.instance() else {
            return Ok(Outcome::failed(
                kind,
                details,
                Error::IndexNotFound(slot.uid.clone().unwrap_or_default()),
            ));
        };
        if let Some(new_pk) = primary_key {
            let current = instance.record().primary_key;
            if current.as_deref() != Some(new_pk.as_str()) {
                let docs = instance.with_snapshot(|s| Ok(s.corpus().docs))?;
                if current.is_some() && docs > 0 {
                    return Ok(Outcome::failed(
                        kind,
                        details,
                        Error::PrimaryKeyAlreadyPresent {
                            index: instance.uid(),
                            primary_key: current.unwrap_or_default(),
                        },
                    ));
                }
                instance.update_record(|r| r.primary_key = Some(new_pk));
            }
        }
        instance.update_record(|r| r.updated_at = OffsetDateTime::now_utc());
        batch.put_indexes.push(instance.record());
        Ok(Outcome::ok(kind, details))
    }

    fn apply_delete_index(
        &self,
        slot: &Slot,
        lsn: Lsn,
        mode: Mode,
        batch: &mut MetaBatch,
    ) -> Result<Outcome> {
        let kind = TaskKind::IndexDeletion;
        if mode.skip_meta(lsn) {
            return Ok(Outcome::ok(kind, json!({"deletedDocuments": 0})));
        }
        // The slot changes only in this drain (its queue lock is held) or in replay.
        let Some(instance) = slot.instance() else {
            return Ok(Outcome::failed(
                kind,
                json!({"deletedDocuments": 0}),
                Error::IndexNotFound(slot.uid.clone().unwrap_or_default()),
            ));
        };
        let docs = instance.with_snapshot(|s| Ok(s.corpus().docs))?;
        // A rebuild under way stops (the rebuilder sees the slot change); its tasks are
        // canceled by this one.
        if let Some(pending) = instance.record().rebuild {
            let by = Some(uid_of_lsn(lsn));
            self.finish_tasks(&pending.tasks, TaskStatus::Canceled, by, batch)?;
        }
        // The store removes before it inserts: an earlier write of this drain that put the
        // record (say, the creation of this incarnation) must not outlive the deletion.
        let uid = instance.uid();
        batch.put_indexes.retain(|r| r.uid != uid);
        batch.delete_indexes.push(uid);
        {
            // The instance leaves the slot and joins the pending removals under the removals
            // lock: a checkpoint computing its truncation bound sees it in one or the other.
            let mut removals = self.removals.lock();
            *slot.current.write() = None;
            removals.push((lsn, instance));
        }
        self.wake_flusher();
        Ok(Outcome::ok(kind, json!({"deletedDocuments": docs})))
    }

    fn apply_settings(
        &self,
        slot: &Slot,
        lsn: Lsn,
        header: &OpHeader,
        patch: &Map<String, Value>,
        mode: Mode,
        batch: &mut MetaBatch,
    ) -> Result<Outcome> {
        let kind = TaskKind::SettingsUpdate;
        let details = Value::Object(patch.clone());
        if mode.skip_meta(lsn) {
            // The stored settings (and pending rebuild) are already the latest. Only a log
            // written before live rebuilds has memtable effects to replay: its settings
            // tasks succeeded at once and rebuilt in place (see `crate::rebuild`).
            if crate::rebuild::needs_rebuild(patch)
                && let Some(instance) = self.replay_target(slot, lsn)
                && lsn > instance.checkpoint()
                && self
                    .meta
                    .task(uid_of_lsn(lsn))?
                    .is_some_and(|t| t.status == TaskStatus::Succeeded)
            {
                let n = crate::rebuild::rebuild_in_place(&instance, lsn, &self.config)?;
                return Ok(Outcome::ok(kind, details).with_applied(n));
            }
            return Ok(Outcome::ok(kind, details));
        }
        let instance = match slot.instance() {
            Some(i) => i,
            None => self.new_instance(slot, lsn, header, None)?,
        };
        let record = instance.record();
        let served = match record.settings.patched(patch) {
            Ok(s) => s,
            Err(e) => return Ok(Outcome::failed(kind, details, e)),
        };
        let target = match &record.rebuild {
            Some(pending) => match pending.settings.patched(patch) {
                Ok(s) => s,
                Err(e) => return Ok(Outcome::failed(kind, details, e)),
            },
            None => served.clone(),
        };
        let tokenization = crate::analysis::Tokenization::from_settings;
        // The decision depends on the state just before this operation only, so a replay
        // that has to redo it (its metadata was lost) decides the same.
        let rebuilds = tokenization(&target) != tokenization(&record.settings)
            && instance.id != lsn
            && instance.with_snapshot(|s| Ok(s.corpus().docs))? > 0;
        let now = OffsetDateTime::now_utc();
        let mut outcome = Outcome::ok(kind, details);
        match record.rebuild {
            Some(mut pending) if rebuilds => {
                if tokenization(&pending.settings) == tokenization(&target) {
                    // Query-time settings only: they apply at once, to both versions.
                    pending.settings = target;
                    instance.update_record(|r| {
                        r.settings = served;
                        r.rebuild = Some(pending);
                        r.updated_at = now;
                    });
                } else {
                    // Indexing changes again: the rebuild starts over for the new target,
                    // and this task waits with the earlier ones.
                    pending.lsn = lsn;
                    pending.settings = target;
                    pending.tasks.push(uid_of_lsn(lsn));
                    instance.update_record(|r| {
                        r.rebuild = Some(pending);
                        r.updated_at = now;
                    });
                    outcome.processing = true;
                }
            }
            None if rebuilds => {
                let pending = PendingRebuild {
                    lsn,
                    settings: target,
                    tasks: vec![uid_of_lsn(lsn)],
                };
                instance.update_record(|r| {
                    r.rebuild = Some(pending);
                    r.updated_at = now;
                });
                outcome.processing = true;
            }
            pending => {
                // Nothing (left) to rebuild: the target serves now, waiting tasks finish.
                if let Some(pending) = pending {
                    self.finish_tasks(&pending.tasks, TaskStatus::Succeeded, None, batch)?;
                }
                instance.update_record(|r| {
                    r.settings = target;
                    r.rebuild = None;
                    r.updated_at = now;
                });
            }
        }
        if outcome.processing && matches!(mode, Mode::Live) {
            self.enqueue_rebuild(&instance.uid());
        }
        batch.put_indexes.retain(|r| r.id != instance.id);
        batch.put_indexes.push(instance.record());
        Ok(outcome)
    }

    /// Finishes tasks that were left `processing` (a settings change waiting for its
    /// rebuild), with `status`.
    fn finish_tasks(
        &self,
        uids: &[u64],
        status: TaskStatus,
        canceled_by: Option<u64>,
        batch: &mut MetaBatch,
    ) -> Result<()> {
        let finished = OffsetDateTime::now_utc();
        for uid in uids {
            let task = match batch.tasks.iter().find(|t| t.uid == *uid) {
                Some(t) => Some(t.clone()),
                None => self.meta.task(*uid)?,
            };
            let Some(mut task) = task else { continue };
            if task.status != TaskStatus::Processing {
                continue;
            }
            task.status = status;
            task.canceled_by = canceled_by;
            task.finished_at = Some(finished);
            let started = task.started_at.unwrap_or(finished);
            task.duration = Some(format_duration(
                (finished - started).try_into().unwrap_or_default(),
            ));
            batch.tasks.retain(|t| t.uid != *uid);
            batch.tasks.push(task);
        }
        Ok(())
    }

    /// Cancels the tasks a filter matches. eddy's tasks are finished when created, except
    /// settings tasks waiting for a rebuild (`processing`): those are canceled, and their
    /// rebuild abandoned — the index keeps serving as it is, with its settings unchanged; a
    /// running rebuild stops and its files are removed. Tasks of the same rebuild the filter
    /// does not match run again, in order, on the serving settings (as Meilisearch re-runs the
    /// rest of an interrupted batch): the rebuild restarts for them, or they succeed at once
    /// when they do not alter indexing.
    ///
    /// The cancelation is durable when it answers (one synced metadata commit, made with the
    /// index's writes and its rebuild's swap held off), so that a restart never resumes a
    /// canceled rebuild and a replay of the log never redoes what it undid.
    fn apply_cancel(
        &self,
        lsn: Lsn,
        query: &Value,
        original: &str,
        mode: Mode,
        batch: &mut MetaBatch,
    ) -> Result<Outcome> {
        let filter: TaskFilter = serde_json::from_value(query.clone())
            .map_err(|e| Error::Corrupt(format!("task filter does not decode: {e}")))?;
        let own = uid_of_lsn(lsn);
        let details = |matched: u64, canceled: u64| json!({"matchedTasks": matched, "canceledTasks": canceled, "originalFilter": format!("?{original}")});
        if mode.skip_meta(lsn) {
            // Its effects are stored (and so is its task, whose details stand).
            return Ok(Outcome::ok(TaskKind::TaskCancelation, details(0, 0)));
        }
        // Tasks applied earlier in this drain (or replay) must be visible to the scan.
        self.meta.commit(&std::mem::take(batch))?;
        let mut matched = 0u64;
        let mut canceled = 0u64;
        // Per index: the processing settings tasks to cancel.
        let mut targets: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        self.meta
            .scan_tasks(Some(own.saturating_sub(1)), false, |t| {
                if t.uid >= own {
                    return true;
                }
                if t.canceled_by == Some(own) {
                    // Canceled by this very operation before a crash (its effects are durable,
                    // its own record was not yet).
                    matched += 1;
                    canceled += 1;
                } else if filter.matches(&t) {
                    matched += 1;
                    if t.status == TaskStatus::Processing
                        && t.kind == TaskKind::SettingsUpdate
                        && let Some(index) = &t.index_uid
                    {
                        targets.entry(index.clone()).or_default().push(t.uid);
                    }
                }
                true
            })?;
        for (index, uids) in targets {
            canceled += self.cancel_rebuild(&index, &uids, own, lsn, mode)?;
        }
        Ok(Outcome::ok(
            TaskKind::TaskCancelation,
            details(matched, canceled),
        ))
    }

    /// Cancels the tasks `uids` of the pending rebuild of `index` (see
    /// [`Inner::apply_cancel`]). Returns how many were canceled.
    fn cancel_rebuild(
        &self,
        index: &str,
        uids: &[u64],
        by: u64,
        lsn: Lsn,
        mode: Mode,
    ) -> Result<u64> {
        let Some(slot) = self.slot(index, false) else {
            return Ok(0);
        };
        // Held until the commit: the index's writes and the rebuild's swap wait.
        let _queue = slot.queue.lock();
        let Some(instance) = slot.instance() else {
            return Ok(0);
        };
        let record = instance.record();
        let Some(pending) = record.rebuild.clone() else {
            return Ok(0);
        };
        let (cancel, keep): (Vec<u64>, Vec<u64>) =
            pending.tasks.iter().partition(|t| uids.contains(t));
        if cancel.is_empty() {
            return Ok(0);
        }
        let mut batch = MetaBatch::default();
        self.finish_tasks(&cancel, TaskStatus::Canceled, Some(by), &mut batch)?;
        // The tasks left run again, in order, on the serving settings.
        let mut target = record.settings.clone();
        for uid in &keep {
            if let Some(patch) = self.meta.task(*uid)?.and_then(|t| t.details)
                && let Ok(patched) = target.patched(&patch)
            {
                target = patched;
            }
        }
        let tokenization = crate::analysis::Tokenization::from_settings;
        let now = OffsetDateTime::now_utc();
        let restart = !keep.is_empty() && tokenization(&target) != tokenization(&record.settings);
        if restart {
            // A new rebuild (a new directory, named by this operation): the running one
            // stops, as its pending record changed.
            instance.update_record(|r| {
                r.rebuild = Some(crate::meta::PendingRebuild {
                    lsn,
                    settings: target,
                    tasks: keep,
                });
                r.updated_at = now;
            });
        } else {
            self.finish_tasks(&keep, TaskStatus::Succeeded, None, &mut batch)?;
            instance.update_record(|r| {
                r.settings = target;
                r.rebuild = None;
                r.updated_at = now;
            });
        }
        batch.put_indexes.push(instance.record());
        self.meta.commit_durable(&batch)?;
        if restart && matches!(mode, Mode::Live) {
            self.enqueue_rebuild(index);
        }
        tracing::info!(index, canceled = ?cancel, restarted = restart, "rebuild canceled");
        let (lock, cv) = &self.task_events;
        *lock.lock() += 1;
        cv.notify_all();
        Ok(cancel.len() as u64)
    }

    fn apply_delete_tasks(
        &self,
        lsn: Lsn,
        query: &Value,
        original: &str,
        mode: Mode,
        batch: &mut MetaBatch,
    ) -> Result<Outcome> {
        let filter: TaskFilter = serde_json::from_value(query.clone())
            .map_err(|e| Error::Corrupt(format!("task filter does not decode: {e}")))?;
        let own = uid_of_lsn(lsn);
        let mut matched = Vec::new();
        if !mode.skip_meta(lsn) {
            self.meta
                .scan_tasks(Some(own.saturating_sub(1)), false, |t| {
                    // As in Meilisearch, only finished tasks are deleted (a settings task
                    // waiting for its rebuild is not).
                    let finished =
                        !matches!(t.status, TaskStatus::Enqueued | TaskStatus::Processing);
                    if t.uid < own && finished && filter.matches(&t) {
                        matched.push(t.uid);
                    }
                    true
                })?;
        }
        let n = matched.len() as u64;
        batch.delete_tasks.extend(matched);
        Ok(Outcome::ok(
            TaskKind::TaskDeletion,
            json!({"matchedTasks": n, "deletedTasks": n, "originalFilter": format!("?{original}")}),
        ))
    }

    // ------------------------------------------------------------------ recovery

    /// The LSNs recorded durably outside the log: every index's checkpoint and the
    /// metadata store's applied watermark.
    fn recorded_lsns(&self, meta_applied: Lsn) -> impl Iterator<Item = Lsn> {
        self.instances()
            .into_iter()
            .map(|i| i.checkpoint())
            .chain(std::iter::once(meta_applied))
    }

    /// Refuses to recover from a log that lost files: its end below an LSN recorded as
    /// checkpointed or applied (it would hand those LSNs out again, and replay would skip
    /// the new records), or its oldest segment past `from` where no truncation went (the
    /// records replay needs are gone). Either way acknowledged writes are missing; the
    /// error says so rather than starting with them silently lost.
    fn check_log_covers(&self, from: Lsn, meta_applied: Lsn) -> Result<()> {
        let end = self.wal.next_lsn() - 1;
        let recorded = self.recorded_lsns(meta_applied).max().unwrap_or(0);
        if end < recorded {
            return Err(Error::Corrupt(format!(
                "the write-ahead log in {} ends at LSN {end}, but LSN {recorded} was \
                 already checkpointed: log files are missing",
                self.path.join("wal").display()
            )));
        }
        let oldest = self.wal.segments().first().map_or(1, |(first, _)| *first);
        let log_start = match self.meta.log_start()? {
            Some(start) => start,
            // Never truncated since log starts were recorded: a log that starts at 1 is
            // whole, and records it from now on; an older store cannot be checked.
            None if oldest == 1 => {
                self.meta.set_log_start(1)?;
                1
            }
            None => return Ok(()),
        };
        if oldest > from.max(log_start) {
            return Err(Error::Corrupt(format!(
                "the write-ahead log in {} starts at LSN {oldest}, but recovery needs it from \
                 LSN {} and it was never truncated past {log_start}: log files are missing",
                self.path.join("wal").display(),
                from.max(log_start)
            )));
        }
        Ok(())
    }

    fn replay(&self) -> Result<RecoveryStats> {
        let started = Instant::now();
        let meta_applied = self.meta.applied_lsn()?;
        let from = self.recorded_lsns(meta_applied).min().unwrap_or(0) + 1;
        self.check_log_covers(from, meta_applied)?;
        let mut stats = RecoveryStats {
            from_lsn: from,
            ..RecoveryStats::default()
        };
        let mut batch = MetaBatch::default();
        let replay = self.wal.replay(from)?;
        // Reading and parsing the log (a producer thread) overlaps applying it (here, in LSN
        // order); the bounded channel keeps a few records in flight at most.
        std::thread::scope(|scope| -> Result<()> {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Decoded>>(4);
            let reader = std::thread::Builder::new().name("eddy-replay".into());
            let producer = reader.spawn_scoped(scope, move || {
                for record in replay {
                    let decoded = record
                        .map_err(Error::from)
                        .and_then(|record| Decoded::new(record.lsn, record.kind, record.payload))
                        .and_then(|mut decoded| {
                            decoded.pre = self.pre_analyze(
                                decoded.lsn,
                                &decoded.header,
                                decoded.docs.as_deref(),
                            )?;
                            Ok(decoded)
                        });
                    let failed = decoded.is_err();
                    if tx.send(decoded).is_err() || failed {
                        return;
                    }
                }
            });
            let producer = producer.map_err(io("spawn log reader thread", &self.path))?;
            let result = (|| -> Result<()> {
                for decoded in rx.iter() {
                    let Decoded {
                        lsn,
                        header,
                        body,
                        docs,
                        pre,
                    } = decoded?;
                    // IMPORTANT: `applied_lsn` is a watermark, but metadata commits of later
                    // operations (other indexes drain concurrently) may have become durable
                    // with it. An operation whose task record is stored has all its metadata
                    // effects stored (same transaction), and so do the earlier operations of
                    // its index (one slot drains them in order): re-applying them would fail
                    // them (the index already deleted or created) and overwrite their
                    // acknowledged tasks.
                    let stored = lsn > meta_applied && self.meta.task(uid_of_lsn(lsn))?.is_some();
                    let slot = match &header.index {
                        Some(uid) => self.slot(uid, true).expect("created"),
                        None => self.tasks_slot.clone(),
                    };
                    let source = match docs {
                        Some(docs) => DocsSource::Parsed(docs, pre),
                        None => DocsSource::Raw(&body),
                    };
                    self.apply(
                        &slot,
                        lsn,
                        header,
                        Some(source),
                        Mode::Replay {
                            meta_applied,
                            stored,
                        },
                        &mut batch,
                    )?;
                    stats.documents_recovered += self.last_applied_docs.load(Ordering::Relaxed);
                    stats.records_replayed += 1;
                    if batch.tasks.len() + batch.put_indexes.len() >= 1024 {
                        self.meta.commit(&std::mem::take(&mut batch))?;
                    }
                    if let Some(instance) = slot.instance()
                        && instance.view().active().bytes() >= self.config.write_buffer_bytes
                    {
                        instance.freeze(None);
                    }
                    if self.budget.in_use() > self.budget.limit() {
                        self.meta.commit(&std::mem::take(&mut batch))?;
                        for instance in self.instances() {
                            instance.freeze(None);
                            self.flush_instance(&instance, usize::MAX)?;
                        }
                    }
                }
                Ok(())
            })();
            // On an early error the receiver is dropped here, which stops the producer.
            drop(rx);
            producer
                .join()
                .map_err(|_| Error::Corrupt("the log reader thread panicked".into()))?;
            result
        })?;
        // The memtables' term dictionaries are sealed by the refresher thread once the engine
        // is open (see `refresher_loop`).
        self.meta.commit(&batch)?;
        stats.duration = started.elapsed();
        if stats.records_replayed > 0 {
            tracing::info!(
                records = stats.records_replayed,
                documents = stats.documents_recovered,
                from_lsn = stats.from_lsn,
                ms = stats.duration.as_millis() as u64,
                "recovered from the write-ahead log"
            );
        }
        Ok(stats)
    }

    fn remove_orphan_directories(&self) -> Result<()> {
        let live: BTreeSet<PathBuf> = self
            .instances()
            .iter()
            .map(|i| self.index_dir(i.id))
            .collect();
        let dir = self.path.join("indexes");
        let disk = &self.config.disk;
        for name in disk.list_dir(&dir).map_err(io("list", &dir))? {
            let path = dir.join(&name);
            let is_ours = name.len() == 20 && name.bytes().all(|b| b.is_ascii_digit());
            if is_ours && !live.contains(&path) {
                tracing::info!(path = %path.display(), "removing the files of a deleted index");
                disk.remove_dir_all(&path).map_err(io("remove", &path))?;
            }
        }
        disk.sync_dir(&dir).map_err(io("fsync directory", &dir))
    }

    // ------------------------------------------------------------------ rebuilds

    fn enqueue_rebuild(&self, uid: &str) {
        let (lock, cv) = &self.rebuild_queue;
        let mut queue = lock.lock();
        if !queue.iter().any(|u| u == uid) {
            queue.push_back(uid.to_string());
        }
        cv.notify_one();
    }

    /// Runs pending rebuilds one at a time, in the order they were asked for.
    fn rebuilder_loop(self: Arc<Self>) {
        loop {
            let uid = {
                let (lock, cv) = &self.rebuild_queue;
                let mut queue = lock.lock();
                loop {
                    if self.shutdown.load(Ordering::Acquire) {
                        return;
                    }
                    if let Some(uid) = queue.pop_front() {
                        break uid;
                    }
                    cv.wait(&mut queue);
                }
            };
            if self.poisoned.read().is_some() {
                continue;
            }
            // A panic must not leave the task `processing` forever on a working engine.
            let run =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.run_rebuild(&uid)));
            match run {
                Ok(Ok(true)) => self.enqueue_rebuild(&uid),
                Ok(Ok(false)) => {}
                Ok(Err(e)) => {
                    // Like a failed flush (C2): the old index and the log are intact, and a
                    // restart runs the rebuild again from its pending record.
                    self.poison(format!("rebuild of index `{uid}` failed: {e}"));
                }
                Err(_) => {
                    self.poison(format!("rebuild of index `{uid}` panicked"));
                }
            }
            let (lock, cv) = &self.task_events;
            *lock.lock() += 1;
            cv.notify_all();
        }
    }

    /// Runs the pending rebuild of an index (see [`crate::rebuild`]). Returns whether it
    /// must run again (the index was cleared meanwhile).
    fn run_rebuild(&self, uid: &str) -> Result<bool> {
        let Some(slot) = self.slot(uid, false) else {
            return Ok(false);
        };
        let Some(old) = slot.instance() else {
            return Ok(false);
        };
        let record = old.record();
        let Some(pending) = record.rebuild.clone() else {
            return Ok(false);
        };
        let disk = &self.config.disk;
        let dir = self.index_dir(pending.lsn);
        // An attempt that stopped (or crashed) may have left files.
        if disk.exists(&dir).map_err(io("stat", &dir))? {
            disk.remove_dir_all(&dir).map_err(io("remove", &dir))?;
        }
        let new = Arc::new(self.open_instance(IndexRecord {
            id: pending.lsn,
            settings: pending.settings.clone(),
            rebuild: None,
            ..record
        })?);
        let mut job = {
            let queue = slot.queue.lock();
            if !self.rebuild_wanted(&slot, &old, pending.lsn) {
                drop(queue);
                discard(new)?;
                return Ok(false);
            }
            let job = crate::rebuild::Job::begin(&old, new, pending.lsn);
            self.rebuild_floors
                .lock()
                .insert(uid.to_string(), job.from_lsn() + 1);
            job
        };
        // The rebuilt index commits checkpoints from `job.from_lsn()` on.
        let result = self
            .sync_log()
            .and_then(|()| self.drive_rebuild(&slot, &old, &mut job, pending.lsn));
        // After a swap the new index's catch-up memtable holds the log (see `rebuild`).
        old.stop_tracking();
        self.rebuild_floors.lock().remove(uid);
        match result? {
            None => Ok(false),
            Some(again) => {
                discard(job.into_new())?;
                Ok(again)
            }
        }
    }

    /// Whether the rebuild for the settings operation at `lsn` is still wanted.
    fn rebuild_wanted(&self, slot: &Slot, old: &Arc<IndexInstance>, lsn: Lsn) -> bool {
        !self.shutdown.load(Ordering::Acquire)
            && self.poisoned.read().is_none()
            && slot.instance().is_some_and(|i| Arc::ptr_eq(&i, old))
            && old.pending_rebuild_lsn() == Some(lsn)
    }

    /// Copy, catch-up rounds, swap. `None` once swapped; `Some(again)` when stopped.
    fn drive_rebuild(
        &self,
        slot: &Slot,
        old: &Arc<IndexInstance>,
        job: &mut crate::rebuild::Job,
        lsn: Lsn,
    ) -> Result<Option<bool>> {
        /// Catch-up rounds run with writes flowing until one has at most this many ids.
        const FINAL_ROUND_IDS: usize = 1024;
        let wanted = || self.rebuild_wanted(slot, old, lsn);
        let failpoint = |name: &'static str| self.failpoint(name);
        if !job.copy(old, &self.config, &wanted, &failpoint)? {
            return Ok(Some(false));
        }
        self.failpoint("rebuild.after_copy")?;
        let mut previous = usize::MAX;
        loop {
            let touched = {
                let _queue = slot.queue.lock();
                old.take_touched()
            };
            let Some(touched) = touched else {
                return Ok(Some(false));
            };
            if touched.cleared {
                return Ok(Some(true));
            }
            let n = touched.ids.len();
            job.catch_up(old, touched)?;
            if n <= FINAL_ROUND_IDS || n >= previous || !wanted() {
                break;
            }
            previous = n;
        }
        self.failpoint("rebuild.after_catch_up")?;
        // The swap: writes to this index wait for the last round and one metadata commit.
        let _queue = slot.queue.lock();
        if !wanted() {
            return Ok(Some(false));
        }
        let Some(touched) = old.take_touched() else {
            return Ok(Some(false));
        };
        if touched.cleared {
            return Ok(Some(true));
        }
        let swap_lsn = touched.last_lsn;
        job.catch_up(old, touched)?;
        self.failpoint("rebuild.before_swap")?;
        let record = old.record();
        let Some(pending) = record.rebuild else {
            return Ok(Some(false));
        };
        let new = job.new_instance().clone();
        new.update_record(|r| {
            r.uid = record.uid;
            r.primary_key = record.primary_key;
            r.created_at = record.created_at;
            r.updated_at = OffsetDateTime::now_utc();
            r.settings = pending.settings;
            r.rebuild = None;
        });
        let mut batch = MetaBatch::default();
        self.finish_tasks(&pending.tasks, TaskStatus::Succeeded, None, &mut batch)?;
        batch.put_indexes.push(new.record());
        let indexes = self.path.join("indexes");
        // IMPORTANT: the new directory's entry must be durable before the registry names it.
        self.config
            .disk
            .sync_dir(&indexes)
            .map_err(io("fsync directory", &indexes))?;
        // One durable commit is the swap: before it a crash reopens the old index (and the
        // pending rebuild); after it, the new one.
        self.meta.commit_durable(&batch)?;
        {
            // As for a deletion: the old incarnation's files go once nothing uses them.
            let mut removals = self.removals.lock();
            *slot.current.write() = Some(new);
            removals.push((swap_lsn, old.clone()));
        }
        tracing::info!(index = %old.uid(), from_lsn = job.from_lsn(), swap_lsn, "rebuilt index swapped in");
        self.wake_flusher();
        self.failpoint("rebuild.after_swap")?;
        Ok(None)
    }

    // ------------------------------------------------------------------ flushing

    /// Makes the log durable up to every LSN applied so far, when acknowledgements do not
    /// already wait for that (`flush` and `none` durability). Called before an LSN is
    /// recorded durably elsewhere (a Tantivy checkpoint, the applied watermark): a power cut
    /// must never leave the log ending below such an LSN, or the log would hand it out again
    /// and replay would skip the new records as already checkpointed.
    fn sync_log(&self) -> Result<()> {
        if self.config.durability != Durability::Fsync {
            self.wal.sync()?;
        }
        Ok(())
    }

    fn flush_instance(&self, instance: &IndexInstance, max: usize) -> Result<()> {
        let sync_meta = || {
            let applied = self.applied_watermark();
            self.sync_log()?;
            self.meta.sync(applied)
        };
        let failpoint = |name: &'static str| self.failpoint(name);
        // Every LSN the flushed memtables hold was written before this call.
        if let Err(e) = self.sync_log() {
            return Err(self.poison(format!("log sync before a flush failed: {e}")));
        }
        match instance.flush(max, &sync_meta, &failpoint) {
            Ok(_) => Ok(()),
            Err(e) => Err(self.poison(format!("flush of index `{}` failed: {e}", instance.uid()))),
        }
    }

    /// Every operation with an LSN at or below this is applied and in the metadata store.
    fn applied_watermark(&self) -> Lsn {
        let in_flight = self.in_flight.lock();
        match in_flight.first() {
            Some(first) => first - 1,
            None => self.wal.next_lsn() - 1,
        }
    }

    /// Makes metadata durable, removes deleted indexes' files and truncates the log.
    fn checkpoint(&self) -> Result<()> {
        let _g = self.checkpoint_lock.lock();
        let applied = self.applied_watermark();
        self.sync_log()?;
        self.meta.sync(applied)?;
        self.failpoint("checkpoint.after_meta_sync")?;
        let removals = std::mem::take(&mut *self.removals.lock());
        for (deleted_at, instance) in removals {
            // IMPORTANT: only once the registry no longer names the directory durably. A
            // deletion still in flight (applied, its metadata not yet committed and synced)
            // waits for a later checkpoint; removing its files earlier let a power cut
            // reopen the index empty and replay later operations against it with wrong
            // results (found by the power-cut test).
            if deleted_at > applied {
                self.removals.lock().push((deleted_at, instance));
                continue;
            }
            match Arc::try_unwrap(instance) {
                Ok(instance) => instance.destroy()?,
                Err(still_used) => self.removals.lock().push((deleted_at, still_used)),
            }
        }
        // IMPORTANT: an index whose deletion is not yet durable (`deleted_at > applied`) is
        // still in the durable registry: a power cut reopens it at its Tantivy checkpoint and
        // replays its log records, so the log must keep what its memtables hold, although it
        // already left `instances()`. Truncating past them made a replayed deletion (or clear)
        // count fewer documents than it had acknowledged (found by the power-cut test).
        let bound = {
            let removals = self.removals.lock();
            let deleted = removals
                .iter()
                .filter(|(deleted_at, _)| *deleted_at > applied)
                .map(|(_, instance)| instance.clone());
            let floors: Vec<Lsn> = self.rebuild_floors.lock().values().copied().collect();
            self.instances()
                .into_iter()
                .chain(deleted)
                .filter_map(|i| i.first_unflushed_lsn())
                .chain(floors)
                .chain(std::iter::once(applied + 1))
                .min()
                .unwrap_or(applied + 1)
        };
        let segments = self.wal.segments();
        if segments.get(1).is_some_and(|(first, _)| *first <= bound) {
            // Recorded before any segment goes, so that recovery can tell a truncated log
            // from one that lost files (see `check_log_covers`).
            if self.meta.log_start()?.is_none_or(|start| start < bound) {
                self.meta.set_log_start(bound)?;
            }
            self.wal.truncate_before(bound)?;
        }
        self.failpoint("checkpoint.after_truncate")?;
        Ok(())
    }

    fn flusher_loop(self: Arc<Self>) {
        let tick = Duration::from_millis(50);
        while !self.shutdown.load(Ordering::Acquire) {
            wait_for_wakeup(&self.flush_wakeup, tick, true);
            if self.shutdown.load(Ordering::Acquire) || self.poisoned.read().is_some() {
                continue;
            }
            if let Err(e) = self.flush_round() {
                // A failed flush or checkpoint may have lost dirty pages (C2): stop taking
                // writes; the log still holds everything and a restart recovers.
                self.poison(format!("background flush failed: {e}"));
            }
        }
    }

    /// Publishes the segments of finished Tantivy merges (see
    /// [`IndexInstance::refresh_after_merges`]). Its own thread, because the flusher can be
    /// busy writing one flush for seconds, and until a view drops the merged-away segments
    /// the pages their merge read stay mapped (M1: a merge of a few hundred MB on top of
    /// full memtables).
    fn refresher_loop(self: Arc<Self>) {
        // Replay leaves every term it added unsealed (sealing as it went would copy them
        // again and again). Sealing here rather than in `open` lets the engine serve as soon
        // as the log is applied: searches are exact meanwhile, their dictionary walks slower.
        for instance in self.instances() {
            if self.shutdown.load(Ordering::Acquire) {
                return;
            }
            instance.seal_dictionaries(0, Duration::ZERO, true);
        }
        let tick = Duration::from_millis(50);
        while !self.shutdown.load(Ordering::Acquire) {
            wait_for_wakeup(&self.refresh_wakeup, tick, false);
            if self.shutdown.load(Ordering::Acquire) {
                break;
            }
            for instance in self.instances() {
                if let Err(e) = instance.refresh_after_merges() {
                    // The published view stays as it was; the next flush reloads anyway.
                    tracing::warn!(index = %instance.uid(), error = %e, "reload after a merge failed");
                }
                if let Err(e) = instance.merge_dictionaries(self.config.seal_idle, UNION_MAX_WAIT) {
                    // Searches walk each segment's dictionary instead, with the same results.
                    tracing::warn!(index = %instance.uid(), error = %e, "merging segment dictionaries failed");
                }
            }
        }
    }

    fn flush_round(&self) -> Result<()> {
        let strategy = self.config.merge_strategy;
        let over_budget = self.budget.in_use() > self.budget.limit() / 2;
        let periodic_due = match strategy {
            MergeStrategy::Periodic { interval } => {
                let mut last = self.last_periodic.lock();
                if last.elapsed() >= interval {
                    *last = Instant::now();
                    true
                } else {
                    false
                }
            }
            _ => false,
        };
        let mut flushed = false;
        let mut instances = self.instances();
        // Memtable term dictionaries are re-sealed here, off the write path. A frozen
        // memtable that this strategy flushes at its next round is left as it is: its FST
        // would be dropped with it moments later (sealing those took a tenth of the ingest
        // CPU), and its unsealed terms stay searchable meanwhile.
        let seal_frozen = matches!(
            strategy,
            MergeStrategy::Manual | MergeStrategy::Batched { .. } | MergeStrategy::Periodic { .. }
        );
        for instance in &instances {
            instance.seal_dictionaries(
                self.config.seal_min_terms,
                self.config.seal_idle,
                seal_frozen,
            );
        }
        // Largest active memtables first when memory is short.
        instances.sort_by_key(|i| std::cmp::Reverse(i.view().active().bytes()));
        for instance in instances {
            let active = instance.view().active().clone();
            let freeze = match strategy {
                MergeStrategy::Manual => false,
                MergeStrategy::Periodic { .. } => periodic_due || over_budget,
                _ => {
                    over_budget
                        || (active.bytes() > 0
                            && (active.idle() >= self.config.idle_freeze
                                || active.age() >= self.config.max_memtable_age))
                }
            };
            if freeze {
                let slot = self.slot(&instance.uid(), false);
                if let Some(slot) = slot {
                    let _queue = slot.queue.lock();
                    instance.freeze(None);
                }
            }
            let frozen = instance.frozen_count();
            let max = match strategy {
                MergeStrategy::Manual => 0,
                MergeStrategy::Immediate => 1,
                MergeStrategy::Batched { count } => {
                    if frozen >= count || over_budget {
                        count.max(1)
                    } else {
                        0
                    }
                }
                MergeStrategy::Periodic { .. } | MergeStrategy::Adaptive => usize::MAX,
            };
            if frozen > 0 && max > 0 {
                self.flush_instance(&instance, max)?;
                flushed = true;
            }
        }
        if flushed || !self.removals.lock().is_empty() {
            self.checkpoint()?;
        }
        Ok(())
    }
}

/// Longest a view waits for the union of its segments' dictionaries while writes keep
/// coming (see [`IndexInstance::merge_dictionaries`]).
const UNION_MAX_WAIT: Duration = Duration::from_secs(2);

/// Waits until `wakeup`'s flag is set or `tick` passes; `consume` clears the flag again.
fn wait_for_wakeup(wakeup: &(Mutex<bool>, Condvar), tick: Duration, consume: bool) {
    let (lock, cv) = wakeup;
    let mut woken = lock.lock();
    if !*woken {
        cv.wait_for(&mut woken, tick);
    }
    if consume {
        *woken = false;
    }
}

/// A documents write's log header, its parsed documents and the memory it reserves: the
/// common first step of [`Engine::add_documents`] and [`Engine::prepare_documents`].
fn documents_op(
    uid: &str,
    payload: &[u8],
    format: PayloadFormat,
    method: Method,
    primary_key: Option<String>,
) -> Result<(OpHeader, Vec<Document>, usize)> {
    validate_index_uid(uid)?;
    let docs = parse_payload(payload, format)?;
    let header = OpHeader {
        enqueued_at_ns: now_ns(),
        index: Some(uid.to_string()),
        op: Op::Documents {
            method,
            format,
            primary_key,
        },
    };
    let estimate = payload.len().saturating_mul(4) + 4096;
    Ok((header, docs, estimate))
}
