//! The Tantivy side of an index: schema, the single writer, commits that carry the
//! checkpoint LSN, and manual reader reloads.
//!
//! Every commit goes through `prepare_commit` + `set_payload` (a bare `commit()` would write
//! no payload and lose the checkpoint), and the index directory is fsynced after the commit
//! because Tantivy does not fsync it after renaming `meta.json`: until that fsync the new
//! checkpoint is not durable and the log must not be truncated below it.
//!
//! A flush does not hand documents to Tantivy's indexer: each frozen memtable is serialized
//! as a segment of its own by [`crate::segment_build`], with the terms, positions and lengths
//! the write path computed, and the writer adopts it. The `_text` field's tokenizer
//! ([`TokenListTokenizer`]) is therefore only named by the schema; it decodes the token
//! lists earlier versions fed Tantivy. Indexes created before those lists name Tantivy's
//! `raw` tokenizer instead; both schemas are read and written the same way.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use eddy_wal::Lsn;
use parking_lot::{Mutex, MutexGuard};
use tantivy::indexer::IndexWriterOptions;
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{TextAnalyzer, Token, TokenStream, Tokenizer};
use tantivy::{
    Directory, Index, IndexMeta, IndexReader, IndexSettings, IndexWriter, ReloadPolicy, Searcher,
};

use crate::error::{Error, Result};
use crate::memtable::Memtable;
use crate::merge::{BoundedMergePolicy, DirectorySizer};
use crate::segment_build::{self, OlderVersions};
use crate::storage::Disk;

/// Fields of the Tantivy schema.
#[derive(Debug, Clone, Copy)]
pub struct SegmentFields {
    /// Primary key (raw term, fast string column).
    pub pk: Field,
    /// Hash of the primary key.
    pub pk_hash: Field,
    /// Searchable text (pre-tokenized, positions).
    pub text: Field,
    /// Exact number of tokens.
    pub len: Field,
    /// Ordering key.
    pub seq: Field,
    /// LSN of the version.
    pub lsn: Field,
    /// The JSON document.
    pub doc: Field,
}

const PAYLOAD_VERSION: u32 = 1;

/// Name of the [`TokenListTokenizer`] in the schema of the `_text` field.
const TOKEN_LIST_TOKENIZER: &str = "eddy_token_list";

/// How the `_text` field receives its tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextEncoding {
    /// One string per document, decoded by [`TokenListTokenizer`].
    TokenList,
    /// Tantivy pre-tokenized values (indexes created before the token lists).
    PreTokenized,
}

/// The schema new indexes get, and the tokenizer its `_text` field names (for tests that
/// build an index by hand).
#[cfg(test)]
pub(crate) fn new_schema() -> (Schema, SegmentFields, &'static str, TokenListTokenizer) {
    let (schema, fields) = build_schema(TextEncoding::TokenList);
    (schema, fields, TOKEN_LIST_TOKENIZER, TokenListTokenizer)
}

fn build_schema(encoding: TextEncoding) -> (Schema, SegmentFields) {
    let mut b = Schema::builder();
    let pk = b.add_text_field(
        "_pk",
        TextOptions::default()
            .set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer("raw")
                    .set_index_option(IndexRecordOption::Basic)
                    .set_fieldnorms(false),
            )
            .set_fast("raw"),
    );
    let pk_hash = b.add_u64_field("_pkh", FAST);
    let text = b.add_text_field(
        "_text",
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(match encoding {
                    TextEncoding::TokenList => TOKEN_LIST_TOKENIZER,
                    TextEncoding::PreTokenized => "raw",
                })
                .set_index_option(IndexRecordOption::WithFreqsAndPositions)
                .set_fieldnorms(true),
        ),
    );
    let len = b.add_u64_field("_len", FAST);
    let seq = b.add_u64_field("_seq", FAST);
    let lsn = b.add_u64_field("_lsn", FAST | INDEXED);
    let doc = b.add_bytes_field("_doc", STORED);
    (
        b.build(),
        SegmentFields {
            pk,
            pk_hash,
            text,
            len,
            seq,
            lsn,
            doc,
        },
    )
}

/// The commit payload: which LSN the committed state includes.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Payload {
    version: u32,
    lsn: Lsn,
}

/// The LSN in the payload of the commit `meta` describes (0 before the first commit).
fn committed_lsn(meta: &IndexMeta, dir: &Path) -> Result<Lsn> {
    let Some(p) = &meta.payload else {
        return Ok(0);
    };
    let payload: Payload = serde_json::from_str(p).map_err(|e| {
        Error::Corrupt(format!(
            "commit payload of {} does not decode: {e}",
            dir.display()
        ))
    })?;
    if payload.version != PAYLOAD_VERSION {
        return Err(Error::Corrupt(format!(
            "commit payload of {} has version {}",
            dir.display(),
            payload.version
        )));
    }
    Ok(payload.lsn)
}

/// Writer settings.
#[derive(Debug, Clone, Copy)]
pub struct SegmentConfig {
    /// Memory set aside within the memory budget for a flush beyond the memtables it
    /// writes (its columns, store blocks and buffers, a few MB per segment) and for Tantivy's
    /// background merges; also the memory Tantivy's writer is configured with.
    pub writer_memory_bytes: usize,
    /// Threads writing the segments of one flush. Only a flush of several frozen memtables
    /// (the end of a bulk load, or a flusher that fell behind) uses more than one.
    pub writer_threads: usize,
    /// Merge when a segment has at least this share of deleted documents.
    pub deleted_ratio_before_merge: f32,
    /// Most bytes of segments one merge reads (see [`crate::merge`]): a merge holds its inputs'
    /// pages while the memtables may be full, and segments grow to about this size.
    pub max_merge_bytes: u64,
}

/// Tantivy refuses a smaller indexing memory per thread.
const MIN_WRITER_MEMORY_BYTES: usize = 15_000_000;

impl SegmentConfig {
    /// What a flush and the merges may hold beyond the memtables (at least Tantivy's minimum
    /// writer memory).
    pub fn indexing_bytes(&self) -> usize {
        self.writer_memory_bytes.max(MIN_WRITER_MEMORY_BYTES)
    }
}

impl Default for SegmentConfig {
    fn default() -> Self {
        SegmentConfig {
            writer_memory_bytes: 64 << 20,
            // Every core: a flush of several memtables has the machine to itself at the end
            // of a bulk load (Tantivy's own writer defaults to every core too).
            writer_threads: std::thread::available_parallelism().map_or(1, |n| n.get().min(8)),
            deleted_ratio_before_merge: 0.3,
            max_merge_bytes: 128 << 20,
        }
    }
}

/// A commit whose searcher is to be published. It holds the commit gate, so no other commit
/// can be published before it; [`Commit::published`] records it once its view is. Dropped
/// instead (the publication failed), the published checkpoint stays the older one, and no
/// reload after merges will publish this commit.
pub struct Commit<'a> {
    /// The searcher on the commit.
    pub searcher: Searcher,
    checkpoint: Lsn,
    /// The commit gate, which holds the published checkpoint.
    gate: MutexGuard<'a, Lsn>,
}

impl Commit<'_> {
    /// Records that the commit's searcher is published, and opens the gate.
    pub fn published(mut self) {
        *self.gate = self.checkpoint;
    }
}

/// Fewest documents of a segment written from part of a memtable.
const MIN_SEGMENT_PIECE_DOCS: usize = 2048;

/// A memtable written as segments, waiting to be committed (see
/// [`SegmentStore::write_segments`]).
pub struct WrittenSegment {
    /// Its segments (none when the memtable held no live document).
    metas: Vec<tantivy::index::SegmentMeta>,
    /// The deletes of the versions the memtable hides.
    deletes: OlderVersions,
}

/// One index's Tantivy directory.
pub struct SegmentStore {
    disk: Arc<dyn Disk>,
    dir: PathBuf,
    index: Index,
    fields: SegmentFields,
    writer: Mutex<Option<IndexWriter>>,
    reader: IndexReader,
    checkpoint: Mutex<Lsn>,
    /// Set by the merge policy after every commit and merge: the committed segments may
    /// differ from the reader's (see [`SegmentStore::reload_after_merges`]).
    maybe_merged: Arc<AtomicBool>,
    /// Threads writing the segments of one flush.
    threads: usize,
    /// The checkpoint of the commit whose searcher is published (see [`Commit::published`]).
    /// Held from a commit until its view is published, and while a view is reloaded after
    /// merges, so that a reload never publishes a commit ahead of its flush.
    commit_gate: Mutex<Lsn>,
}

impl std::fmt::Debug for SegmentStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentStore")
            .field("dir", &self.dir)
            .finish()
    }
}

impl Drop for SegmentStore {
    fn drop(&mut self) {
        self.stop_writer();
    }
}

impl SegmentStore {
    /// Opens the Tantivy index in `dir`, creating it if absent. Returns the store; its
    /// checkpoint is the LSN of the last commit (0 for a new index).
    pub fn open(disk: Arc<dyn Disk>, dir: &Path, config: SegmentConfig) -> Result<SegmentStore> {
        let (schema, fields) = build_schema(TextEncoding::TokenList);
        let meta_path = dir.join("meta.json");
        let created = !disk
            .exists(&meta_path)
            .map_err(|e| Error::io("stat", &meta_path, e))?;
        if created {
            disk.create_dir_all(dir)
                .map_err(|e| Error::io("create directory", dir, e))?;
        }
        let directory = disk
            .tantivy_directory(dir)
            .map_err(|e| Error::io("open directory", dir, e))?;
        let index = if created {
            Index::create(
                directory,
                schema.clone(),
                IndexSettings {
                    // LZ4, not zstd: every hit of a search reads one block of the store, and
                    // Tantivy's zstd decompressor creates a fresh context per block (its
                    // set-up runs `cpuid`, a VM exit under virtualization: ~14 µs measured
                    // here, more than the decompression). Indexes created with zstd keep it.
                    docstore_compression: tantivy::store::Compressor::Lz4,
                    ..IndexSettings::default()
                },
            )?
        } else {
            Index::open(directory)?
        };
        if index.schema() != schema && index.schema() != build_schema(TextEncoding::PreTokenized).0
        {
            return Err(Error::Corrupt(format!(
                "the Tantivy schema in {} is not the one this eddy writes",
                dir.display()
            )));
        }
        index
            .tokenizers()
            .register(TOKEN_LIST_TOKENIZER, TextAnalyzer::from(TokenListTokenizer));
        let checkpoint = committed_lsn(&index.load_metas()?, dir)?;
        let writer: IndexWriter = index.writer_with_options(
            IndexWriterOptions::builder()
                .memory_budget_per_thread(config.writer_memory_bytes.max(MIN_WRITER_MEMORY_BYTES))
                // No document is ever handed to the writer (flushes write whole segments,
                // see `segment_build`): its one worker thread stays idle.
                .num_worker_threads(1)
                .num_merge_threads(1)
                .build(),
        )?;
        // IMPORTANT: a crash during a commit can leave files the last commit does not
        // reference (e.g. `<segment>.<opstamp>.del`). Opstamps restart from the committed
        // one, so the next commit would try to create the same file and fail; remove them
        // before writing anything (found by the power-cut test).
        writer.garbage_collect_files().wait()?;
        let maybe_merged = Arc::new(AtomicBool::new(false));
        let flag = maybe_merged.clone();
        writer.set_merge_policy(Box::new(BoundedMergePolicy::new(
            config.max_merge_bytes,
            config.deleted_ratio_before_merge,
            Box::new(DirectorySizer(Box::new(index.directory().clone()))),
            Box::new(move || flag.store(true, Ordering::Release)),
        )));
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(SegmentStore {
            disk,
            dir: dir.to_path_buf(),
            index,
            fields,
            writer: Mutex::new(Some(writer)),
            reader,
            checkpoint: Mutex::new(checkpoint),
            maybe_merged,
            threads: config.writer_threads.max(1),
            commit_gate: Mutex::new(checkpoint),
        })
    }

    /// Schema fields.
    pub fn fields(&self) -> SegmentFields {
        self.fields
    }

    /// Directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// LSN of the last durable commit.
    pub fn checkpoint(&self) -> Lsn {
        *self.checkpoint.lock()
    }

    /// The searcher of the last reload.
    pub fn searcher(&self) -> Searcher {
        self.reader.searcher()
    }

    /// Writes each memtable (oldest first) as a segment of its own, on up to `threads`
    /// threads, without taking the writer: a flush can write its segments while another
    /// flush commits. The result goes to [`SegmentStore::commit`]; dropped instead, its
    /// files are left to Tantivy's garbage collection.
    pub fn write_segments(&self, memtables: &[&Memtable]) -> Result<Vec<WrittenSegment>> {
        let f = self.fields;
        let mut work = Vec::with_capacity(memtables.len());
        for mem in memtables {
            let plan = mem.flush_plan();
            work.push((
                *mem,
                plan.docs,
                OlderVersions::new(f.pk, plan.older, mem.clear_lsn()),
            ));
        }
        // Memtables side by side (several are frozen at once at the end of a bulk load, and
        // there nothing else runs). The documents are shared out among the threads: a
        // memtable with about twice a thread's share or more is written as several segments
        // of consecutive documents (each key lives in one), so that a big memtable flushed
        // with a small one does not leave a thread idle through most of the flush; and with
        // threads to spare still, a segment's columns and store beside its inverted index.
        let total: usize = work.iter().map(|(_, docs, _)| docs.len()).sum();
        let share = total
            .div_ceil(self.threads.max(1))
            .max(MIN_SEGMENT_PIECE_DOCS);
        let orders: Vec<Vec<u32>> = work
            .iter()
            .map(|(mem, _, _)| mem.term_ids_in_order())
            .collect();
        let mut jobs = Vec::new();
        for (i, (mem, docs, _)) in work.iter().enumerate() {
            let per_piece = docs.len().div_ceil(pieces_of(docs.len(), share)).max(1);
            for chunk in docs.chunks(per_piece) {
                jobs.push((i, *mem, chunk, &orders[i][..]));
            }
        }
        let index = &self.index;
        let side_thread = self.threads > jobs.len();
        let metas = parallel_map(&jobs, self.threads, |(_, mem, docs, terms)| {
            segment_build::write_segment(index, f, mem, docs, terms, side_thread)
        });
        let owners: Vec<usize> = jobs.iter().map(|(i, ..)| *i).collect();
        drop(jobs);
        let mut written: Vec<WrittenSegment> = work
            .into_iter()
            .map(|(_, _, deletes)| WrittenSegment {
                metas: Vec::new(),
                deletes,
            })
            .collect();
        for (i, meta) in owners.into_iter().zip(metas) {
            if let Some(meta) = meta? {
                written[i].metas.push(meta);
            }
        }
        Ok(written)
    }

    /// Commits written segments (oldest memtable first) with the payload `last_lsn`, makes
    /// the commit durable and reloads the reader. Returns the commit, to publish.
    pub fn commit(
        &self,
        written: Vec<WrittenSegment>,
        last_lsn: Lsn,
        failpoint: &dyn Fn(&'static str) -> Result<()>,
    ) -> Result<Commit<'_>> {
        let mut guard = self.writer.lock();
        let writer = guard
            .as_mut()
            .ok_or_else(|| Error::Corrupt("the index writer is closed".into()))?;
        let result = self.adopt_and_commit(writer, written, last_lsn);
        if result.is_err() {
            // Leave the writer at the last commit; the memtables stay in memory and the log
            // still holds them, so nothing is lost.
            let _ = writer.rollback();
        }
        let gate = result?;
        failpoint("flush.after_commit")?;
        // IMPORTANT: Tantivy renames meta.json without syncing the directory; the checkpoint
        // is durable (and the log may be truncated below it) only after this.
        self.index
            .directory()
            .sync_directory()
            .map_err(|e| Error::io("fsync index directory", &self.dir, e))?;
        *self.checkpoint.lock() = last_lsn;
        self.reader.reload()?;
        Ok(Commit {
            searcher: self.reader.searcher(),
            checkpoint: last_lsn,
            gate,
        })
    }

    /// [`SegmentStore::write_segments`] then [`SegmentStore::commit`].
    pub fn flush(
        &self,
        memtables: &[&Memtable],
        last_lsn: Lsn,
        failpoint: &dyn Fn(&'static str) -> Result<()>,
    ) -> Result<Commit<'_>> {
        let written = self.write_segments(memtables)?;
        self.commit(written, last_lsn, failpoint)
    }

    /// When Tantivy merged committed segments since the last reload: reloads the reader and
    /// returns the published commit on the new segments, to publish. A merge changes which segments hold the committed documents, never which
    /// documents are committed, so the new searcher has the content of the published one.
    /// Without this the merged-away segments — and every page the merge read from them —
    /// would stay mapped until the next flush.
    pub fn reload_after_merges(&self) -> Result<Option<Commit<'_>>> {
        if !self.maybe_merged.swap(false, Ordering::AcqRel) {
            return Ok(None);
        }
        let gate = self.commit_gate.lock();
        let meta = self.index.load_metas()?;
        let published = *gate;
        if committed_lsn(&meta, &self.dir)? != published {
            // A commit whose flush failed before publishing it (the engine is poisoned):
            // its documents are still in the view's memtables and must not appear twice.
            return Ok(None);
        }
        let current = self.reader.searcher();
        let readers = current.segment_readers();
        if readers.len() == meta.segments.len()
            && readers
                .iter()
                .all(|r| meta.segments.iter().any(|s| s.id() == r.segment_id()))
        {
            return Ok(None);
        }
        self.reader.reload()?;
        Ok(Some(Commit {
            searcher: self.reader.searcher(),
            checkpoint: published,
            gate,
        }))
    }

    fn adopt_and_commit(
        &self,
        writer: &mut IndexWriter,
        written: Vec<WrittenSegment>,
        last_lsn: Lsn,
    ) -> Result<MutexGuard<'_, Lsn>> {
        // Each segment is adopted right after the deletes of the versions its memtable
        // hides.
        //
        // IMPORTANT: that order. Every segment added *before* a memtable's deletes are queued
        // is certain to see them, and only the older memtables' segments hold versions it
        // hides. A segment added after them may or may not see them (Tantivy starts its
        // delete cursor after the last *flushed* block of the queue, and any merge may flush
        // it): that is why the deletes are bounded by LSN (see `OlderVersions`). Queuing all
        // deletes before adopting any segment left older versions alive whenever a merge
        // flushed the queue in between (found by the crash test).
        for WrittenSegment { metas, deletes } in written {
            if !deletes.is_empty() {
                writer.delete_query(Box::new(deletes))?;
            }
            for meta in metas {
                writer.add_segment(meta)?;
            }
        }
        let mut prepared = writer.prepare_commit()?;
        let payload = serde_json::to_string(&Payload {
            version: PAYLOAD_VERSION,
            lsn: last_lsn,
        })
        .map_err(Error::meta)?;
        prepared.set_payload(&payload);
        // Taken only now: preparing (finishing the last segments) can take seconds and
        // changes nothing a reload sees; the commit is what rewrites `meta.json`.
        let gate = self.commit_gate.lock();
        prepared.commit()?;
        Ok(gate)
    }

    /// Stops the writer, waiting for its background merges: a merge that outlived its writer
    /// could otherwise finish after another writer opened the same directory.
    fn stop_writer(&self) {
        if let Some(writer) = self.writer.lock().take()
            && let Err(e) = writer.wait_merging_threads()
        {
            tracing::warn!(dir = %self.dir.display(), error = %e, "a background merge failed");
        }
    }

    /// Deletes the Tantivy files. Used when an index is deleted.
    pub fn destroy(self) -> Result<()> {
        let dir = self.dir.clone();
        let disk = self.disk.clone();
        self.stop_writer();
        drop(self);
        match disk.remove_dir_all(&dir) {
            Ok(()) => {}
            // Already gone: a restart after the deletion was logged, but before it was
            // checkpointed, removes the directory of the deleted incarnation as an orphan.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove directory", &dir, e)),
        }
        if let Some(parent) = dir.parent() {
            disk.sync_dir(parent)
                .map_err(|e| Error::io("fsync directory", parent, e))?;
        }
        Ok(())
    }
}

/// How many segments a memtable of `docs` documents is written as, when each thread's share of
/// the flush is `share` documents: its number of shares, rounded, and pieces of at least
/// [`MIN_SEGMENT_PIECE_DOCS`].
fn pieces_of(docs: usize, share: usize) -> usize {
    let shares = (docs + share / 2) / share.max(1);
    shares.min(docs / MIN_SEGMENT_PIECE_DOCS).max(1)
}

/// `f` applied to every item, on up to `threads` threads (scoped), results in item order.
pub(crate) fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    if threads <= 1 || items.len() <= 1 {
        return items.iter().map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<(usize, R)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads.min(items.len()))
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else {
                            return out;
                        };
                        out.push((i, f(item)));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(out) => out,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });
    results.sort_unstable_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Encodes tokens (ascending positions) as the text [`TokenListTokenizer`] decodes: per token
/// `<position gap>,<term bytes>:<term>`, the gap taken from the previous token (from 0 for the
/// first). Lengths make any term byte, separators included, safe.
#[cfg(test)]
pub(crate) fn encode_token_list<'a>(
    tokens: impl Iterator<Item = (u32, &'a str)>,
    out: &mut String,
) {
    use std::fmt::Write;
    let mut previous = 0;
    for (position, term) in tokens {
        debug_assert!(position >= previous, "positions ascend");
        // Writing to a String cannot fail.
        let _ = write!(out, "{},{}:", position - previous, term.len());
        out.push_str(term);
        previous = position;
    }
}

/// The tokenizer of the `_text` field: decodes what [`encode_token_list`] wrote, reusing one
/// token (no allocation per token). Not an analyzer for user text: eddy analyzes once, in
/// [`crate::analysis`]. A malformed input (never written by eddy) ends the stream.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenListTokenizer;

/// The token stream of [`TokenListTokenizer`].
#[derive(Debug)]
pub struct TokenListStream<'a> {
    rest: &'a str,
    position: usize,
    token: Token,
}

impl Tokenizer for TokenListTokenizer {
    type TokenStream<'a> = TokenListStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> TokenListStream<'a> {
        TokenListStream {
            rest: text,
            position: 0,
            token: Token::default(),
        }
    }
}

impl TokenListStream<'_> {
    /// Parses the decimal number before `sep`, and moves past it.
    fn number(&mut self, sep: u8) -> Option<usize> {
        let end = self.rest.bytes().position(|b| b == sep)?;
        let n = self.rest[..end].parse().ok()?;
        self.rest = &self.rest[end + 1..];
        Some(n)
    }
}

impl TokenStream for TokenListStream<'_> {
    fn advance(&mut self) -> bool {
        if self.rest.is_empty() {
            return false;
        }
        let (Some(gap), Some(len)) = (self.number(b','), self.number(b':')) else {
            self.rest = "";
            return false;
        };
        let Some(term) = self.rest.get(..len) else {
            self.rest = "";
            return false;
        };
        self.rest = &self.rest[len..];
        self.position += gap;
        self.token.position = self.position;
        self.token.text.clear();
        self.token.text.push_str(term);
        true
    }

    fn token(&self) -> &Token {
        &self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flushes_share_documents_out_among_threads() {
        // A big memtable flushed with a small one (two threads): the big one in two pieces.
        assert_eq!(pieces_of(57_000, (57_000usize + 2_791).div_ceil(2)), 2);
        assert_eq!(pieces_of(2_791, (57_000usize + 2_791).div_ceil(2)), 1);
        // One memtable, two threads: halves, unless a half is under the minimum piece.
        assert_eq!(pieces_of(5_183, 2_592), 2);
        assert_eq!(pieces_of(3_000, MIN_SEGMENT_PIECE_DOCS), 1);
        // More memtables than threads: each stays whole.
        assert_eq!(pieces_of(60_000, 150_000), 1);
        // Four threads, 20,000 + 2,000 documents.
        assert_eq!(pieces_of(20_000, 5_500), 4);
        assert_eq!(pieces_of(2_000, 5_500), 1);
        assert_eq!(pieces_of(0, MIN_SEGMENT_PIECE_DOCS), 1);
    }

    #[test]
    fn token_lists_round_trip() {
        let tokens = [
            (0, "a"),
            (1, "big,cat:"),
            (1, "x"),
            (65_536, "12"),
            (70_000, "naïve"),
        ];
        let mut text = String::new();
        encode_token_list(tokens.iter().copied(), &mut text);
        let mut tokenizer = TokenListTokenizer;
        let mut stream = tokenizer.token_stream(&text);
        let mut got = Vec::new();
        while stream.advance() {
            got.push((stream.token().position as u32, stream.token().text.clone()));
        }
        let want: Vec<(u32, String)> = tokens.iter().map(|(p, t)| (*p, t.to_string())).collect();
        assert_eq!(got, want);
        assert!(!TokenListTokenizer.token_stream("").advance());
        assert!(!TokenListTokenizer.token_stream("1,9:short").advance());
    }
}
