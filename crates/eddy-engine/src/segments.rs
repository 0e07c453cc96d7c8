//! The Tantivy side of an index: schema, the single writer, commits that carry the
//! checkpoint LSN, and manual reader reloads.
//!
//! Every commit goes through `prepare_commit` + `set_payload` (a bare `commit()` would write
//! no payload and lose the checkpoint), and the index directory is fsynced after the commit
//! because Tantivy does not fsync it after renaming `meta.json`: until that fsync the new
//! checkpoint is not durable and the log must not be truncated below it.
//!
//! Documents reach Tantivy pre-tokenized by [`crate::analysis`], so a document has the same
//! terms, positions and length here as in a memtable.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use eddy_wal::Lsn;
use parking_lot::Mutex;
use tantivy::indexer::{IndexWriterOptions, LogMergePolicy, UserOperation};
use tantivy::query::AllQuery;
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{PreTokenizedString, Token};
use tantivy::{
    Directory, Index, IndexReader, IndexSettings, IndexWriter, ReloadPolicy, Searcher, Term,
};

use crate::analysis::AnalyzedDocument;
use crate::error::{Error, Result};
use crate::memtable::{FlushEntry, Memtable, pk_hash};
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

fn build_schema() -> (Schema, SegmentFields) {
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
                .set_tokenizer("raw")
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

/// Writer settings.
#[derive(Debug, Clone, Copy)]
pub struct SegmentConfig {
    /// Tantivy indexing memory budget (per writer thread).
    pub writer_memory_bytes: usize,
    /// Tantivy indexing threads.
    pub writer_threads: usize,
    /// Merge when a segment has at least this share of deleted documents.
    pub deleted_ratio_before_merge: f32,
}

impl Default for SegmentConfig {
    fn default() -> Self {
        SegmentConfig {
            writer_memory_bytes: 64 << 20,
            writer_threads: 1,
            deleted_ratio_before_merge: 0.3,
        }
    }
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
        let (schema, fields) = build_schema();
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
                schema,
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
        if index.schema() != build_schema().0 {
            return Err(Error::Corrupt(format!(
                "the Tantivy schema in {} is not the one this eddy writes",
                dir.display()
            )));
        }
        let checkpoint = match index.load_metas()?.payload {
            Some(p) => {
                let payload: Payload = serde_json::from_str(&p).map_err(|e| {
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
                payload.lsn
            }
            None => 0,
        };
        let writer: IndexWriter = index.writer_with_options(
            IndexWriterOptions::builder()
                .memory_budget_per_thread(config.writer_memory_bytes.max(15_000_000))
                .num_worker_threads(config.writer_threads.max(1))
                .num_merge_threads(1)
                .build(),
        )?;
        // IMPORTANT: a crash during a commit can leave files the last commit does not
        // reference (e.g. `<segment>.<opstamp>.del`). Opstamps restart from the committed
        // one, so the next commit would try to create the same file and fail; remove them
        // before writing anything (found by the power-cut test).
        writer.garbage_collect_files().wait()?;
        let mut policy = LogMergePolicy::default();
        policy.set_del_docs_ratio_before_merge(config.deleted_ratio_before_merge);
        writer.set_merge_policy(Box::new(policy));
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

    /// Writes memtables (oldest first) into one commit whose payload is `last_lsn`, makes it
    /// durable and reloads the reader. Each document gets the tokens its memtable indexed.
    /// Returns the new searcher.
    pub fn flush(
        &self,
        memtables: &[&Memtable],
        last_lsn: Lsn,
        failpoint: &dyn Fn(&'static str) -> Result<()>,
    ) -> Result<Searcher> {
        let mut guard = self.writer.lock();
        let writer = guard
            .as_mut()
            .ok_or_else(|| Error::Corrupt("the index writer is closed".into()))?;
        let result = self.write_and_commit(writer, memtables, last_lsn);
        if result.is_err() {
            // Leave the writer at the last commit; the memtables stay in memory and the log
            // still holds them, so nothing is lost.
            let _ = writer.rollback();
        }
        result?;
        failpoint("flush.after_commit")?;
        // IMPORTANT: Tantivy renames meta.json without syncing the directory; the checkpoint
        // is durable (and the log may be truncated below it) only after this.
        self.index
            .directory()
            .sync_directory()
            .map_err(|e| Error::io("fsync index directory", &self.dir, e))?;
        *self.checkpoint.lock() = last_lsn;
        self.reader.reload()?;
        Ok(self.reader.searcher())
    }

    fn write_and_commit(
        &self,
        writer: &mut IndexWriter,
        memtables: &[&Memtable],
        last_lsn: Lsn,
    ) -> Result<()> {
        /// Entries whose tokens are read back from the postings in one pass.
        const CHUNK: usize = 16_384;
        let f = self.fields;
        for mem in memtables {
            if mem.clear_lsn().is_some() {
                writer.delete_query(Box::new(AllQuery))?;
            }
            let entries = mem.flush_entries();
            for chunk in entries.chunks(CHUNK) {
                let slots: Vec<u32> = chunk
                    .iter()
                    .filter_map(|e| match e {
                        FlushEntry::Upsert { slot, .. } => Some(*slot),
                        FlushEntry::Delete { .. } => None,
                    })
                    .collect();
                let mut tokens = mem.slot_tokens(&slots).into_iter();
                let mut ops = Vec::with_capacity(chunk.len() * 2);
                for entry in chunk {
                    match entry {
                        FlushEntry::Delete { pk } => {
                            ops.push(UserOperation::Delete(Term::from_field_text(f.pk, pk)));
                        }
                        FlushEntry::Upsert {
                            pk,
                            json,
                            len,
                            seq,
                            lsn,
                            replaces,
                            ..
                        } => {
                            if *replaces {
                                ops.push(UserOperation::Delete(Term::from_field_text(f.pk, pk)));
                            }
                            let doc_tokens = tokens.next().unwrap_or_default();
                            let analyzed = AnalyzedDocument {
                                tokens: doc_tokens
                                    .into_iter()
                                    .map(|(position, id)| crate::analysis::Token {
                                        position,
                                        term: mem.term_text(id).to_string(),
                                    })
                                    .collect(),
                            };
                            debug_assert_eq!(analyzed.len(), *len);
                            ops.push(UserOperation::Add(
                                self.tantivy_doc(pk, json, *seq, *lsn, analyzed),
                            ));
                        }
                    }
                    if ops.len() >= 4096 {
                        writer.run(std::mem::take(&mut ops))?;
                    }
                }
                writer.run(ops)?;
            }
        }
        let mut prepared = writer.prepare_commit()?;
        let payload = serde_json::to_string(&Payload {
            version: PAYLOAD_VERSION,
            lsn: last_lsn,
        })
        .map_err(Error::meta)?;
        prepared.set_payload(&payload);
        prepared.commit()?;
        Ok(())
    }

    fn tantivy_doc(
        &self,
        pk: &str,
        json: &[u8],
        seq: u64,
        lsn: Lsn,
        analyzed: AnalyzedDocument,
    ) -> tantivy::TantivyDocument {
        let f = self.fields;
        let mut doc = tantivy::TantivyDocument::new();
        doc.add_text(f.pk, pk);
        doc.add_u64(f.pk_hash, pk_hash(pk));
        doc.add_u64(f.len, u64::from(analyzed.len()));
        doc.add_u64(f.seq, seq);
        doc.add_u64(f.lsn, lsn);
        doc.add_bytes(f.doc, json);
        let tokens = analyzed
            .tokens
            .into_iter()
            .map(|t| Token {
                offset_from: 0,
                offset_to: 0,
                position: t.position as usize,
                text: t.term,
                position_length: 1,
            })
            .collect();
        doc.add_pre_tokenized_text(
            f.text,
            PreTokenizedString {
                text: String::new(),
                tokens,
            },
        );
        doc
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
