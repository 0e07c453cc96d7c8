//! A frozen memtable written straight into a Tantivy segment.
//!
//! A memtable already is an inverted index: terms with their postings (documents, term
//! frequencies, positions), document lengths, and the stored documents. Handing its documents
//! to Tantivy's `IndexWriter` indexed every one of them a second time — Tantivy hashed each
//! token again into its own in-memory index before sorting and serializing it — and that
//! second pass was about half of eddy's ingest CPU. Here the flusher serializes the memtable
//! itself with Tantivy's segment serializers: field norms (`FieldNormsWriter`), postings,
//! positions and term dictionaries (`InvertedIndexSerializer`), fast columns
//! (`FastFieldsWriter`) and the document store (`StoreWriter`). The index writer then adopts
//! the finished segment (`IndexWriter::add_segment`), so commits, deletes and merges treat it
//! as one of its own.
//!
//! The files are the ones Tantivy writes for the same documents and tokens, byte for byte:
//! the tests below build a segment both ways and compare every file.
//!
//! The older versions a memtable replaces or deletes are removed through Tantivy's delete
//! queue, with one [`OlderVersions`] query per memtable. The query says *which* versions: a
//! key's versions below the LSN from which the memtable hides it. A plain term delete would
//! not do: Tantivy applies to an adopted segment every delete that was still pending in its
//! queue when the segment was added (`DeleteQueue::cursor` starts after the last *flushed*
//! block of deletes), so a segment could lose the very versions it brings.

use std::sync::Arc;

use eddy_wal::Lsn;
use tantivy::columnar::{ColumnType, ColumnarWriter};
use tantivy::directory::TerminatingWrite;
use tantivy::fieldnorm::{FieldNormReaders, FieldNormsSerializer, FieldNormsWriter};
use tantivy::index::{Segment, SegmentComponent, SegmentMeta};
use tantivy::postings::InvertedIndexSerializer;
use tantivy::query::{
    BitSetDocSet, ConstScorer, EmptyScorer, EnableScoring, Explanation, Query, Scorer, Weight,
};
use tantivy::schema::{Field, FieldType, IndexRecordOption};
use tantivy::store::StoreWriter;
use tantivy::{
    BitSet, DocId, DocSet, Index, Score, SegmentReader, TERMINATED, TantivyDocument, Term,
};

use crate::error::{Error, Result};
use crate::memtable::{Memtable, SegmentDoc, pk_hash};
use crate::segments::SegmentFields;

/// A slot that is not in the segment.
const NO_DOC: u32 = u32::MAX;

fn io(what: &'static str) -> impl Fn(std::io::Error) -> Error {
    move |e| Error::io(what, "a new segment", e)
}

fn open_write(
    segment: &Segment,
    component: SegmentComponent,
) -> Result<tantivy::directory::WritePtr> {
    Ok(segment
        .open_write(component)
        .map_err(tantivy::TantivyError::from)?)
}

/// Writes `docs` (ascending slots; document `i` of the segment is `docs[i]`) with the
/// tokens `mem` indexed for them into a new segment of `index`, and returns its meta for
/// [`IndexWriter::add_segment`]. `None` when `docs` is empty. `terms` are the memtable's term
/// ids in byte order of their terms ([`Memtable::term_ids_in_order`]); `docs` may be any of
/// its live versions (a big memtable can be written as several segments side by side).
///
/// With `side_thread`, the columns and the document store (about two fifths of the work) are
/// written on a second thread beside the inverted index: the flush of the last memtables of
/// a bulk load is what the load waits for, with the machine otherwise idle.
///
/// # Errors
/// Writing a file failed.
pub fn write_segment(
    index: &Index,
    fields: SegmentFields,
    mem: &Memtable,
    docs: &[SegmentDoc],
    terms: &[u32],
    side_thread: bool,
) -> Result<Option<SegmentMeta>> {
    if docs.is_empty() {
        return Ok(None);
    }
    let max_doc = u32::try_from(docs.len())
        .map_err(|_| Error::Corrupt("a memtable holds more than 2^32 documents".into()))?;
    debug_assert!(docs.windows(2).all(|w| w[0].slot < w[1].slot));
    let segment = index.new_segment();
    if side_thread {
        let (inverted, rest) = std::thread::scope(|scope| {
            let rest = scope.spawn(|| {
                write_columns(&segment, fields, docs, max_doc)?;
                write_store(&segment, fields, docs)
            });
            let inverted = write_inverted_index(&segment, fields, mem, docs, terms, max_doc);
            let rest = rest
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (inverted, rest)
        });
        inverted?;
        rest?;
    } else {
        write_inverted_index(&segment, fields, mem, docs, terms, max_doc)?;
        write_columns(&segment, fields, docs, max_doc)?;
        write_store(&segment, fields, docs)?;
    }
    Ok(Some(segment.with_max_doc(max_doc).meta().clone()))
}

/// Field norms, then postings, positions and term dictionaries.
fn write_inverted_index(
    segment: &Segment,
    fields: SegmentFields,
    mem: &Memtable,
    docs: &[SegmentDoc],
    terms: &[u32],
    max_doc: u32,
) -> Result<()> {
    // Field norms come first: the postings serializer reads them for its block-max scores.
    let mut norms = FieldNormsWriter::for_schema(&segment.schema());
    for (doc, d) in (0u32..).zip(docs) {
        norms.record(doc, fields.text, d.len);
        norms.record(doc, fields.lsn, 1);
    }
    norms.fill_up_to_max_doc(max_doc);
    norms
        .serialize(
            FieldNormsSerializer::from_write(open_write(segment, SegmentComponent::FieldNorms)?)
                .map_err(io("write field norms of"))?,
            None,
        )
        .map_err(io("write field norms of"))?;
    let norms = FieldNormReaders::open(
        segment
            .open_read(SegmentComponent::FieldNorms)
            .map_err(tantivy::TantivyError::from)?,
    )?;

    // One field at a time, in field order.
    let mut inverted = InvertedIndexSerializer::open(segment)?;
    write_pks(&mut inverted, fields, &norms, docs, max_doc)?;
    write_text(&mut inverted, fields, &norms, mem, docs, terms)?;
    write_lsns(&mut inverted, fields, &norms, docs, max_doc)?;
    inverted.close().map_err(io("write postings of"))
}

/// Fast columns: what Tantivy's fast-field writer records for these fields (declared column
/// types in field order, the key through the `raw` tokenizer, that is whole), without
/// building a document per row for it to walk.
fn write_columns(
    segment: &Segment,
    fields: SegmentFields,
    docs: &[SegmentDoc],
    max_doc: u32,
) -> Result<()> {
    let schema = segment.schema();
    let mut columns = ColumnarWriter::default();
    for (_, entry) in schema.fields().filter(|(_, e)| e.is_fast()) {
        let column_type = match entry.field_type() {
            FieldType::Str(_) => ColumnType::Str,
            FieldType::U64(_) => ColumnType::U64,
            other => {
                return Err(Error::Corrupt(format!(
                    "unexpected fast field type {other:?} in the segment schema"
                )));
            }
        };
        columns.record_column_type(entry.name(), column_type, false);
    }
    let name = |field: Field| schema.get_field_name(field);
    let (pk, pk_hash_col, len, seq, lsn) = (
        name(fields.pk),
        name(fields.pk_hash),
        name(fields.len),
        name(fields.seq),
        name(fields.lsn),
    );
    for (doc, d) in (0u32..).zip(docs) {
        columns.record_str(doc, pk, &d.pk);
        columns.record_numerical(doc, pk_hash_col, pk_hash(&d.pk));
        columns.record_numerical(doc, len, u64::from(d.len));
        columns.record_numerical(doc, seq, d.seq);
        columns.record_numerical(doc, lsn, d.lsn);
    }
    let mut out = open_write(segment, SegmentComponent::FastFields)?;
    columns
        .serialize(max_doc, None, &mut out)
        .map_err(io("write fast fields of"))?;
    out.terminate().map_err(io("write fast fields of"))
}

/// The document store.
fn write_store(segment: &Segment, fields: SegmentFields, docs: &[SegmentDoc]) -> Result<()> {
    let schema = segment.schema();
    let settings = segment.index().settings();
    let mut store = StoreWriter::new(
        open_write(segment, SegmentComponent::Store)?,
        settings.docstore_compression,
        settings.docstore_blocksize,
        settings.docstore_compress_dedicated_thread,
    )
    .map_err(io("write the store of"))?;
    for d in docs {
        let mut doc = TantivyDocument::new();
        doc.add_bytes(fields.doc, &d.json);
        store
            .store(&doc, &schema)
            .map_err(io("write the store of"))?;
    }
    store.close().map_err(io("write the store of"))
}

/// `_pk`: one term per document, document ids only (the `raw` tokenizer makes a key one
/// token).
fn write_pks(
    inverted: &mut InvertedIndexSerializer,
    fields: SegmentFields,
    norms: &FieldNormReaders,
    docs: &[SegmentDoc],
    max_doc: u32,
) -> Result<()> {
    let mut order: Vec<u32> = (0..max_doc).collect();
    order.sort_unstable_by(|a, b| docs[*a as usize].pk.cmp(&docs[*b as usize].pk));
    let mut field = inverted
        .new_field(fields.pk, u64::from(max_doc), norms.get_field(fields.pk)?)
        .map_err(io("write keys of"))?;
    for doc in order {
        field
            .new_term(docs[doc as usize].pk.as_bytes(), 0, false)
            .map_err(io("write keys of"))?;
        field.write_doc(doc, 0, &[]);
        field.close_term().map_err(io("write keys of"))?;
    }
    field.close().map_err(io("write keys of"))
}

/// `_text`: every term of the memtable with its live postings, positions delta-encoded
/// within each document as Tantivy stores them.
fn write_text(
    inverted: &mut InvertedIndexSerializer,
    fields: SegmentFields,
    norms: &FieldNormReaders,
    mem: &Memtable,
    docs: &[SegmentDoc],
    terms: &[u32],
) -> Result<()> {
    // The documents are consecutive live slots of the memtable (all of them, or one piece).
    let (Some(first), Some(last)) = (docs.first(), docs.last()) else {
        return Ok(());
    };
    let (lo, hi) = (first.slot, last.slot);
    let mut doc_of_slot = vec![NO_DOC; (hi - lo) as usize + 1];
    for (doc, d) in (0u32..).zip(docs) {
        doc_of_slot[(d.slot - lo) as usize] = doc;
    }
    let total_tokens: u64 = docs.iter().map(|d| u64::from(d.len)).sum();
    if total_tokens == 0 {
        // As Tantivy does: a segment whose documents have no token has no `_text` section.
        return Ok(());
    }
    let mut field = inverted
        .new_field(fields.text, total_tokens, norms.get_field(fields.text)?)
        .map_err(io("write postings of"))?;
    let mut live: Vec<(u32, u32)> = Vec::new();
    let mut deltas: Vec<u32> = Vec::new();
    for &id in terms {
        live.clear();
        deltas.clear();
        for (slot, positions) in mem.term_postings_in(id, lo..=hi) {
            let doc = doc_of_slot[(slot - lo) as usize];
            if doc == NO_DOC {
                continue;
            }
            live.push((doc, u32::try_from(positions.len()).unwrap_or(u32::MAX)));
            // Positions ascend within a document; each becomes its gap from the previous
            // one (the first from 0).
            let mut previous = 0;
            deltas.extend(positions.iter().map(|&p| {
                let gap = p - previous;
                previous = p;
                gap
            }));
        }
        if live.is_empty() {
            continue;
        }
        field
            .new_term(
                mem.term_text(id).as_bytes(),
                u32::try_from(live.len()).unwrap_or(u32::MAX),
                true,
            )
            .map_err(io("write postings of"))?;
        let mut at = 0;
        for &(doc, tf) in &live {
            let end = at + tf as usize;
            field.write_doc(doc, tf, &deltas[at..end]);
            at = end;
        }
        field.close_term().map_err(io("write postings of"))?;
    }
    field.close().map_err(io("write postings of"))
}

/// `_lsn`: an indexed u64, its terms the big-endian values.
fn write_lsns(
    inverted: &mut InvertedIndexSerializer,
    fields: SegmentFields,
    norms: &FieldNormReaders,
    docs: &[SegmentDoc],
    max_doc: u32,
) -> Result<()> {
    let mut order: Vec<u32> = (0..max_doc).collect();
    // Stable: documents of one LSN stay in ascending order.
    order.sort_by_key(|d| docs[*d as usize].lsn);
    let mut field = inverted
        .new_field(fields.lsn, u64::from(max_doc), norms.get_field(fields.lsn)?)
        .map_err(io("write LSNs of"))?;
    let mut current = None;
    for doc in order {
        let lsn = docs[doc as usize].lsn;
        if current != Some(lsn) {
            if current.is_some() {
                field.close_term().map_err(io("write LSNs of"))?;
            }
            field
                .new_term(&lsn.to_be_bytes(), 0, false)
                .map_err(io("write LSNs of"))?;
            current = Some(lsn);
        }
        field.write_doc(doc, 0, &[]);
    }
    field.close().map_err(io("write LSNs of"))
}

/// The versions a memtable hides in older segments, as one delete query: for each key, its
/// documents whose `_lsn` is below the LSN from which the memtable hides the key, and with
/// `all_below` (the memtable starts with a `delete all`) every document below that LSN.
/// Versions the memtable itself, or a newer one, brings have at least that LSN, so the
/// query never touches them, whichever segments Tantivy applies it to.
#[derive(Debug, Clone)]
pub struct OlderVersions {
    pk_field: Field,
    keys: Arc<Vec<(Arc<str>, Lsn)>>,
    all_below: Option<Lsn>,
}

impl OlderVersions {
    /// Versions of `keys` (key, bound) below their bounds, and every document below
    /// `all_below`.
    pub fn new(pk_field: Field, keys: Vec<(Arc<str>, Lsn)>, all_below: Option<Lsn>) -> Self {
        OlderVersions {
            pk_field,
            keys: Arc::new(keys),
            all_below,
        }
    }

    /// Whether the query deletes nothing.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.all_below.is_none()
    }

    fn matching(&self, reader: &SegmentReader) -> tantivy::Result<BitSet> {
        let max_doc = reader.max_doc();
        let mut docs = BitSet::with_max_value(max_doc);
        let lsn = reader.fast_fields().u64("_lsn")?.first_or_default_col(0);
        if let Some(below) = self.all_below {
            for doc in 0..max_doc {
                if lsn.get_val(doc) < below {
                    docs.insert(doc);
                }
            }
        }
        let keys = reader.inverted_index(self.pk_field)?;
        for (pk, below) in self.keys.iter() {
            let term = Term::from_field_text(self.pk_field, pk);
            let Some(mut postings) = keys.read_postings(&term, IndexRecordOption::Basic)? else {
                continue;
            };
            let mut doc = postings.doc();
            while doc != TERMINATED {
                if lsn.get_val(doc) < *below {
                    docs.insert(doc);
                }
                doc = postings.advance();
            }
        }
        Ok(docs)
    }
}

impl Query for OlderVersions {
    fn weight(&self, _scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(self.clone()))
    }
}

impl Weight for OlderVersions {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let docs = self.matching(reader)?;
        if docs.len() == 0 {
            // IMPORTANT: not a `BitSetDocSet` of an empty bit set: on a segment without
            // documents (a merge of deleted ones) its first `advance` slices out of bounds
            // and panics Tantivy's segment updater (found by the overlapping-flush test).
            return Ok(Box::new(EmptyScorer));
        }
        Ok(Box::new(ConstScorer::new(BitSetDocSet::from(docs), boost)))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        if self.matching(reader)?.contains(doc) {
            Ok(Explanation::new("an older version", 1.0))
        } else {
            Err(tantivy::TantivyError::InvalidArgument(format!(
                "document {doc} is not an older version"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::sync::Arc;

    use proptest::prelude::*;
    use tantivy::IndexWriter;
    use tantivy::indexer::{IndexWriterOptions, NoMergePolicy};
    use tantivy::tokenizer::TextAnalyzer;
    use tantivy::{Index, IndexSettings};

    use super::*;
    use crate::analysis::{DocTerms, Token};
    use crate::memtable::PreparedDoc;
    use crate::segments::{encode_token_list, new_schema};

    /// An operation on the memtable: write `pk` with these (term index, position) tokens,
    /// delete it, or seal the term dictionary (terms then come from the FST and the recent
    /// map).
    #[derive(Debug, Clone)]
    enum Op {
        Put(u8, Vec<(u8, u32)>),
        Delete(u8),
        Seal,
    }

    /// Terms with multi-byte characters, shared prefixes and one long enough to matter.
    const TERMS: [&str; 12] = [
        "a",
        "ab",
        "abc",
        "b",
        "bé",
        "car",
        "cart",
        "日本",
        "x1",
        "zz",
        "zzz",
        "ünïcode",
    ];

    fn op() -> impl Strategy<Value = Op> {
        let put = (
            0u8..24,
            prop::collection::vec(
                (
                    0u8..12,
                    prop::sample::select(vec![
                        0u32,
                        1,
                        2,
                        3,
                        7,
                        200,
                        1 << 16,
                        (1 << 16) + 1,
                        5 << 16,
                    ]),
                ),
                0..12,
            ),
        )
            .prop_map(|(pk, tokens)| Op::Put(pk, tokens));
        prop_oneof![
            8 => put,
            2 => (0u8..24).prop_map(Op::Delete),
            1 => Just(Op::Seal),
        ]
    }

    fn index_in(dir: &Path) -> (Index, SegmentFields) {
        let (schema, fields, tokenizer_name, tokenizer) = new_schema();
        let index = Index::builder()
            .schema(schema)
            .settings(IndexSettings {
                docstore_compression: tantivy::store::Compressor::Lz4,
                ..IndexSettings::default()
            })
            .create_in_dir(dir)
            .expect("create index");
        index
            .tokenizers()
            .register(tokenizer_name, TextAnalyzer::from(tokenizer));
        (index, fields)
    }

    fn writer(index: &Index) -> IndexWriter {
        let writer: IndexWriter = index
            .writer_with_options(
                IndexWriterOptions::builder()
                    .memory_budget_per_thread(50_000_000)
                    .num_worker_threads(1)
                    .build(),
            )
            .expect("writer");
        writer.set_merge_policy(Box::new(NoMergePolicy));
        writer
    }

    /// Every file of the index's only segment, by extension.
    fn segment_files(index: &Index, dir: &Path) -> BTreeMap<String, Vec<u8>> {
        let metas = index.searchable_segment_metas().expect("metas");
        assert_eq!(metas.len(), 1, "one segment");
        [
            SegmentComponent::Postings,
            SegmentComponent::Positions,
            SegmentComponent::FastFields,
            SegmentComponent::FieldNorms,
            SegmentComponent::Terms,
            SegmentComponent::Store,
            SegmentComponent::Delete,
        ]
        .into_iter()
        .filter_map(|c| {
            let bytes = std::fs::read(dir.join(metas[0].relative_path(c.clone()))).ok()?;
            Some((c.to_string(), bytes))
        })
        .collect()
    }

    fn apply(ops: &[Op]) -> Memtable {
        let mut mem = Memtable::new(1, None);
        for (i, op) in ops.iter().enumerate() {
            let lsn = i as u64 + 1;
            match op {
                Op::Put(pk, tokens) => {
                    let tokens: Vec<Token> = tokens
                        .iter()
                        .map(|&(t, position)| Token {
                            position,
                            term: TERMS[t as usize].to_string(),
                        })
                        .collect();
                    let pk = format!("k{pk}");
                    mem.upsert(
                        lsn,
                        PreparedDoc {
                            json: Arc::from(format!("{{\"id\":\"{pk}\",\"n\":{i}}}").into_bytes()),
                            pk: Arc::from(pk),
                            terms: DocTerms::from_tokens(&tokens),
                            new_seq: lsn << 24,
                            older: None,
                        },
                    );
                }
                Op::Delete(pk) => {
                    mem.delete(lsn, Arc::from(format!("k{pk}")), None);
                }
                Op::Seal => {
                    if let Some((map, upto)) = mem.seal_input(0, false).and_then(|s| s.build()) {
                        mem.install_sealed(map, upto);
                    }
                    continue;
                }
            }
            mem.finish(lsn);
        }
        mem
    }

    /// Writes the memtable `ops` leave both ways, and compares every file.
    fn same_files_as_tantivy(ops: &[Op]) -> Result<(), TestCaseError> {
        let mem = apply(ops);
        let docs = mem.flush_plan().docs;
        if docs.is_empty() {
            return Ok(());
        }

        let reference_dir = tempfile::tempdir().expect("tempdir");
        let (reference, f) = index_in(reference_dir.path());
        let mut w = writer(&reference);
        let slots: Vec<u32> = docs.iter().map(|d| d.slot).collect();
        for (d, tokens) in docs.iter().zip(mem.slot_tokens(&slots)) {
            let mut doc = TantivyDocument::new();
            doc.add_text(f.pk, &d.pk);
            doc.add_u64(f.pk_hash, pk_hash(&d.pk));
            doc.add_u64(f.len, u64::from(d.len));
            doc.add_u64(f.seq, d.seq);
            doc.add_u64(f.lsn, d.lsn);
            doc.add_bytes(f.doc, &d.json);
            let mut text = String::new();
            encode_token_list(
                tokens.iter().map(|&(p, id)| (p, mem.term_text(id))),
                &mut text,
            );
            doc.add_text(f.text, &text);
            w.add_document(doc).expect("add");
        }
        w.commit().expect("commit");

        let direct_dir = tempfile::tempdir().expect("tempdir");
        let (direct, f) = index_in(direct_dir.path());
        let mut w = writer(&direct);
        // Both ways of writing: with the side thread, and all on this one.
        let side_thread = ops.len().is_multiple_of(2);
        let meta = write_segment(
            &direct,
            f,
            &mem,
            &docs,
            &mem.term_ids_in_order(),
            side_thread,
        )
        .expect("write")
        .expect("a segment");
        w.add_segment(meta).expect("adopt");
        w.commit().expect("commit");

        let want = segment_files(&reference, reference_dir.path());
        let got = segment_files(&direct, direct_dir.path());
        prop_assert_eq!(
            want.keys().collect::<Vec<_>>(),
            got.keys().collect::<Vec<_>>()
        );
        for (ext, bytes) in &want {
            prop_assert!(&got[ext] == bytes, "the .{} files differ", ext);
        }
        Ok(())
    }

    #[test]
    fn a_segment_without_any_token_has_no_text_section() {
        let ops = [Op::Put(0, Vec::new()), Op::Put(1, Vec::new())];
        same_files_as_tantivy(&ops).expect("same files");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// The segment written from a memtable is, file for file and byte for byte, the one
        /// Tantivy's own indexer writes for the same documents and tokens.
        #[test]
        fn segment_files_are_the_ones_tantivy_writes(ops in prop::collection::vec(op(), 1..80)) {
            same_files_as_tantivy(&ops)?;
        }
    }
}
