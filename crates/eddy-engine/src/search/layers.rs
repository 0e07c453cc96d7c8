//! One interface over every layer of a view, read at one snapshot LSN.
//!
//! Layers are ordered oldest first: the Tantivy segments, then frozen memtables, then the
//! active memtable. A document version is *visible* when it is live in its own layer and no
//! newer layer has an entry for its primary key. Statistics are summed over visible versions
//! only, so BM25 gives a document the same score whichever layer holds it.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use eddy_wal::Lsn;
use tantivy::columnar::{ColumnValues, StrColumn};
use tantivy::fieldnorm::FieldNormReader;
use tantivy::postings::{Postings, SegmentPostings};
use tantivy::schema::IndexRecordOption;
use tantivy::{DocSet, InvertedIndexReader, SegmentReader, TERMINATED, Term};

use super::derive::{self, WordDfa};
use crate::bm25::CorpusStats;
use crate::error::Result;
use crate::hidden::{DocBits, DocsOfKey, LayerId};
use crate::key_filter::KeyFilter;
use crate::memtable::{MemPostings, MemReader, pk_hash};
use crate::segments::SegmentFields;

fn postings_error(e: std::io::Error) -> crate::error::Error {
    crate::error::Error::io("read postings of", "a segment", e)
}

/// Sentinel doc id of an exhausted cursor.
pub const END: u32 = u32::MAX;

/// A segment prepared for reading: its readers and columns, opened once per published
/// searcher (see [`SegmentLayers`]) rather than once per search.
pub struct SegLayer {
    reader: SegmentReader,
    ord: u32,
    fields: SegmentFields,
    text: Arc<InvertedIndexReader>,
    pk_index: Arc<InvertedIndexReader>,
    fieldnorms: FieldNormReader,
    pk_hash: Arc<dyn ColumnValues<u64>>,
    seq: Arc<dyn ColumnValues<u64>>,
    len: Arc<dyn ColumnValues<u64>>,
    pk: StrColumn,
    deleted_tokens: u64,
    keys: KeyFilter,
}

/// What a view knows of each of its segments beyond Tantivy's readers, computed once per
/// segment (and delete generation) by the index.
#[derive(Debug, Clone)]
pub struct SegmentInfo {
    /// Tokens of the segment's deleted documents.
    pub deleted_tokens: u64,
    /// The keys the segment may hold.
    pub keys: KeyFilter,
}

impl SegLayer {
    /// Opens the readers of segment `ord` of a searcher, with what the caller knows of it.
    pub fn open(
        searcher: &tantivy::Searcher,
        ord: u32,
        fields: SegmentFields,
        info: SegmentInfo,
    ) -> Result<SegLayer> {
        let reader = searcher.segment_reader(ord);
        let ff = reader.fast_fields();
        let pk = ff.str("_pk")?.ok_or_else(|| {
            crate::error::Error::Corrupt("segment without a _pk column".to_string())
        })?;
        Ok(SegLayer {
            reader: reader.clone(),
            ord,
            fields,
            text: reader.inverted_index(fields.text)?,
            pk_index: reader.inverted_index(fields.pk)?,
            fieldnorms: reader.get_fieldnorms_reader(fields.text)?,
            pk_hash: ff.u64("_pkh")?.first_or_default_col(0),
            seq: ff.u64("_seq")?.first_or_default_col(0),
            len: ff.u64("_len")?.first_or_default_col(0),
            pk,
            deleted_tokens: info.deleted_tokens,
            keys: info.keys,
        })
    }

    /// Sum of `_len` over the deleted documents of a segment.
    pub fn deleted_tokens_of(reader: &SegmentReader) -> Result<u64> {
        let Some(alive) = reader.alive_bitset() else {
            return Ok(0);
        };
        let len = reader.fast_fields().u64("_len")?.first_or_default_col(0);
        Ok((0..reader.max_doc())
            .filter(|d| !alive.is_alive(*d))
            .map(|d| len.get_val(d))
            .sum())
    }

    fn alive(&self, doc: u32) -> bool {
        self.reader.alive_bitset().is_none_or(|a| a.is_alive(doc))
    }

    fn pk_string(&self, doc: u32) -> String {
        self.with_pk(doc, str::to_string)
    }

    /// Calls `f` with the primary key of a document, without copying it.
    fn with_pk<R>(&self, doc: u32, f: impl FnOnce(&str) -> R) -> R {
        match self.pk.term_ords(doc).next() {
            Some(ord) => super::pk_table::with_key(self.reader.segment_id(), &self.pk, ord, f),
            None => f(""),
        }
    }

    /// The document id holding a primary key in this segment, if alive.
    pub fn find_pk(&self, pk: &str) -> Result<Option<u32>> {
        if !self.keys.may_contain(pk_hash(pk)) {
            return Ok(None);
        }
        let term = Term::from_field_text(self.fields.pk, pk);
        let Some(mut postings) = self
            .pk_index
            .read_postings(&term, IndexRecordOption::Basic)
            .map_err(postings_error)?
        else {
            return Ok(None);
        };
        let mut doc = postings.doc();
        while doc != TERMINATED {
            if self.alive(doc) {
                return Ok(Some(doc));
            }
            doc = postings.advance();
        }
        Ok(None)
    }

    /// Calls `sink` with every document (dead or alive) holding a primary key.
    pub fn docs_with_pk(&self, pk: &str, sink: &mut dyn FnMut(u32)) -> Result<()> {
        if !self.keys.may_contain(pk_hash(pk)) {
            return Ok(());
        }
        let term = Term::from_field_text(self.fields.pk, pk);
        if let Some(mut postings) = self
            .pk_index
            .read_postings(&term, IndexRecordOption::Basic)
            .map_err(postings_error)?
        {
            let mut doc = postings.doc();
            while doc != TERMINATED {
                sink(doc);
                doc = postings.advance();
            }
        }
        Ok(())
    }

    /// Number of tokens of a document.
    pub fn len(&self, doc: u32) -> u32 {
        u32::try_from(self.len.get_val(doc)).unwrap_or(u32::MAX)
    }

    /// Ordering key of a document.
    pub fn seq(&self, doc: u32) -> u64 {
        self.seq.get_val(doc)
    }

    /// Stored JSON of a document. Through the searcher the segment belongs to: its store
    /// readers are opened once and cache blocks.
    pub fn json(&self, searcher: &tantivy::Searcher, doc: u32) -> Result<Vec<u8>> {
        let stored: tantivy::TantivyDocument =
            searcher.doc(tantivy::DocAddress::new(self.ord, doc))?;
        use tantivy::schema::document::Value as _;
        Ok(tantivy::schema::Document::iter_fields_and_values(&stored)
            .find(|(f, _)| *f == self.fields.doc)
            .and_then(|(_, v)| v.as_bytes().map(<[u8]>::to_vec))
            .unwrap_or_default())
    }
}

/// A cursor over the postings of one term in one layer.
pub enum Cursor<'a> {
    /// Memtable postings.
    Mem(MemPostings<'a>),
    /// Segment postings.
    Seg(Box<SegmentPostings>),
}

impl Cursor<'_> {
    /// Current document, or [`END`].
    #[inline]
    pub fn doc(&self) -> u32 {
        match self {
            Cursor::Mem(p) => p.doc(),
            Cursor::Seg(p) => {
                let d = p.doc();
                if d == TERMINATED { END } else { d }
            }
        }
    }

    /// Next document, or [`END`].
    #[inline]
    pub fn advance(&mut self) -> u32 {
        match self {
            Cursor::Mem(p) => p.advance(),
            Cursor::Seg(p) => {
                let d = p.advance();
                if d == TERMINATED { END } else { d }
            }
        }
    }

    /// First document `>= target`, or [`END`].
    #[inline]
    pub fn seek(&mut self, target: u32) -> u32 {
        if self.doc() >= target {
            return self.doc();
        }
        match self {
            Cursor::Mem(p) => p.seek(target),
            Cursor::Seg(p) => {
                let d = p.seek(target);
                if d == TERMINATED { END } else { d }
            }
        }
    }

    /// Term frequency in the current document.
    #[inline]
    pub fn term_freq(&self) -> u32 {
        match self {
            Cursor::Mem(p) => p.term_freq(),
            Cursor::Seg(p) => p.term_freq(),
        }
    }

    /// Positions in the current document.
    pub fn positions(&mut self, out: &mut Vec<u32>) {
        match self {
            Cursor::Mem(p) => p.positions(out),
            Cursor::Seg(p) => p.positions(out),
        }
    }
}

/// Segments with more distinct terms than this (summed) keep no merged dictionary; their
/// dictionaries are walked one by one.
const MAX_MERGED_TERMS: usize = 4_000_000;

/// A searcher's segments prepared for search: one [`SegLayer`] per segment and, once
/// [`PreparedSegments::merge_dictionaries`] ran, the union of their term dictionaries as one
/// FST (so a typo or prefix derivation walks one dictionary instead of one per segment, node
/// by node; see [`super::derive`]). Its size is bounded by the segments' vocabulary, like
/// their own dictionaries.
///
/// The union is built after the view is published, by the engine's refresher thread, and
/// only once writes to the index pause or the view has lasted a while (see
/// [`crate::index::IndexInstance::merge_dictionaries`]): it takes time in the order of the
/// vocabulary (about 0.8 µs a term, 175 ms for WordNet's 220,000), which a flush would
/// otherwise add before its view is published, and which a bulk load would pay again for
/// every view it publishes. Searches meanwhile walk each segment's dictionary, with the same
/// results.
pub struct PreparedSegments {
    layers: Vec<SegLayer>,
    terms: OnceLock<Option<tantivy_fst::Map<Vec<u8>>>>,
    opened: std::time::Instant,
}

impl PreparedSegments {
    /// Opens the layers of every segment of `searcher`, with what `info` holds of each.
    pub fn open(
        searcher: &tantivy::Searcher,
        fields: SegmentFields,
        info: &[SegmentInfo],
    ) -> Result<PreparedSegments> {
        Ok(PreparedSegments {
            layers: open_all(searcher, fields, info)?,
            terms: OnceLock::new(),
            opened: std::time::Instant::now(),
        })
    }

    /// Builds the union of the segments' dictionaries unless it exists. Returns whether it
    /// built one.
    ///
    /// # Errors
    /// A dictionary could not be read.
    pub fn merge_dictionaries(&self) -> Result<bool> {
        if self.terms.get().is_some() {
            return Ok(false);
        }
        let terms = merged_terms(&self.layers)?;
        Ok(self.terms.set(terms).is_ok())
    }
}

/// The union of the segments' text dictionaries, or `None` when it would be too large.
fn merged_terms(layers: &[SegLayer]) -> Result<Option<tantivy_fst::Map<Vec<u8>>>> {
    let dict_error = |e| crate::error::Error::io("read term dictionary of", "a segment", e);
    let total: usize = layers.iter().map(|l| l.text.terms().num_terms()).sum();
    if total > MAX_MERGED_TERMS {
        return Ok(None);
    }
    let mut streams = Vec::with_capacity(layers.len());
    for l in layers {
        streams.push(l.text.terms().stream().map_err(dict_error)?);
    }
    // Tantivy's own k-way union of FST streams (what its segment merges use): each distinct
    // term once, in order.
    let mut union = tantivy::termdict::TermMerger::new(streams);
    let mut builder = tantivy_fst::MapBuilder::memory();
    while union.advance() {
        if builder.insert(union.key(), 0).is_err() {
            return Ok(None);
        }
    }
    let Ok(bytes) = builder.into_inner() else {
        return Ok(None);
    };
    Ok(tantivy_fst::Map::from_bytes(bytes).ok())
}

/// The [`PreparedSegments`] of one searcher, prepared once (by the flusher before it
/// publishes a view, or by the first search) and shared by every search of the views that
/// pin the same searcher; dropped with the last such view. A searcher that does not hold the
/// segments they were opened for (same ids, same deletes) gets freshly opened layers
/// instead, so a stale cache can cost time but never change an answer.
#[derive(Clone, Default)]
pub struct SegmentLayers(Arc<OnceLock<PreparedSegments>>);

/// What [`SegmentLayers::get`] hands out: the shared preparation, or layers opened for one
/// search (without a merged dictionary).
pub enum Layers<'c> {
    /// Shared layers.
    Cached(&'c PreparedSegments),
    /// Layers opened for this search only.
    Owned(Vec<SegLayer>),
}

impl Layers<'_> {
    /// The segment layers.
    pub fn layers(&self) -> &[SegLayer] {
        match self {
            Layers::Cached(p) => &p.layers,
            Layers::Owned(l) => l,
        }
    }

    /// The merged dictionary of the segments, if there is one.
    pub fn terms(&self) -> Option<&tantivy_fst::Map<Vec<u8>>> {
        match self {
            Layers::Cached(p) => p.terms.get().and_then(Option::as_ref),
            Layers::Owned(_) => None,
        }
    }
}

impl SegmentLayers {
    /// Prepared segments for a searcher, already filled in (see [`PreparedSegments::open`]).
    pub fn prepared(
        searcher: &tantivy::Searcher,
        fields: SegmentFields,
        info: &[SegmentInfo],
    ) -> Result<SegmentLayers> {
        let cell = OnceLock::new();
        let _ = cell.set(PreparedSegments::open(searcher, fields, info)?);
        Ok(SegmentLayers(Arc::new(cell)))
    }

    /// Builds the union of the prepared segments' dictionaries unless it exists (see
    /// [`PreparedSegments::merge_dictionaries`]) or `wait` says to wait, given how long ago
    /// the segments were prepared. Returns whether it built one.
    ///
    /// # Errors
    /// A dictionary could not be read.
    pub fn merge_dictionaries(&self, wait: impl FnOnce(Duration) -> bool) -> Result<bool> {
        match self.0.get() {
            Some(p) if p.terms.get().is_none() && !wait(p.opened.elapsed()) => {
                p.merge_dictionaries()
            }
            _ => Ok(false),
        }
    }

    /// The layers of every segment of `searcher`, with what `info` holds of each.
    pub fn get(
        &self,
        searcher: &tantivy::Searcher,
        fields: SegmentFields,
        info: &[SegmentInfo],
    ) -> Result<Layers<'_>> {
        if self.0.get().is_none() {
            // A concurrent search may win the race; both prepared the same segments.
            let _ = self.0.set(PreparedSegments::open(searcher, fields, info)?);
        }
        match self.0.get() {
            Some(p) if same_segments(&p.layers, searcher) => Ok(Layers::Cached(p)),
            _ => Ok(Layers::Owned(open_all(searcher, fields, info)?)),
        }
    }
}

fn same_segments(layers: &[SegLayer], searcher: &tantivy::Searcher) -> bool {
    let readers = searcher.segment_readers();
    layers.len() == readers.len()
        && layers.iter().zip(readers).all(|(l, r)| {
            l.reader.segment_id() == r.segment_id()
                && l.reader.num_deleted_docs() == r.num_deleted_docs()
        })
}

fn open_all(
    searcher: &tantivy::Searcher,
    fields: SegmentFields,
    info: &[SegmentInfo],
) -> Result<Vec<SegLayer>> {
    let n = searcher.segment_readers().len();
    let mut layers = Vec::with_capacity(n);
    for i in 0..n {
        let ord = u32::try_from(i)
            .map_err(|_| crate::error::Error::Corrupt("too many segments".into()))?;
        // Without what the caller knows (a mismatch it did not foresee), the exact
        // fallbacks: deleted tokens recounted, every key possible.
        let info = match info.get(i) {
            Some(info) => info.clone(),
            None => SegmentInfo {
                deleted_tokens: SegLayer::deleted_tokens_of(searcher.segment_reader(ord))?,
                keys: KeyFilter::everything(),
            },
        };
        layers.push(SegLayer::open(searcher, ord, fields, info)?);
    }
    Ok(layers)
}

/// Every layer of a view, read at one snapshot.
pub struct Snapshot<'a> {
    lsn: Lsn,
    searcher: &'a tantivy::Searcher,
    segments: &'a [SegLayer],
    /// Union of the segments' dictionaries (`None`: walk each segment's own).
    segment_terms: Option<&'a tantivy_fst::Map<Vec<u8>>>,
    mems: Vec<MemReader<'a>>,
    /// Whether any memtable may hide documents of older layers.
    any_hiding: bool,
    /// Per layer but the newest, the documents that newer memtables hide, found on first use.
    hidden: Vec<OnceLock<Hidden>>,
}

/// The documents of a layer that the newer memtables of a snapshot hide.
enum Hidden {
    Nothing,
    Docs(Arc<DocBits>),
    /// A lookup failed: decide per document, from the keys.
    PerDocument,
}

/// A document in a snapshot: layer index (segments first, then memtables) and local id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocRef {
    /// Layer index.
    pub layer: u32,
    /// Document id within the layer (segment doc id or memtable slot).
    pub doc: u32,
}

impl<'a> Snapshot<'a> {
    /// Builds a snapshot from the segments of a searcher and memtable readers (oldest
    /// first). Layers older than the newest memtable that clears its predecessors are left
    /// out.
    pub fn new(
        searcher: &'a tantivy::Searcher,
        segments: &'a Layers<'a>,
        mut mems: Vec<MemReader<'a>>,
    ) -> Snapshot<'a> {
        let lsn = mems.iter().map(|m| m.lsn()).max().unwrap_or(0);
        let mut segment_terms = segments.terms();
        let mut segments = segments.layers();
        if let Some(i) = mems.iter().rposition(|m| m.clears_older()) {
            mems.drain(..i);
            segments = &[];
            segment_terms = None;
        }
        let any_hiding = mems.iter().any(|m| m.hides_anything());
        let hidden = (0..segments.len() + mems.len().saturating_sub(1))
            .map(|_| OnceLock::new())
            .collect();
        Snapshot {
            lsn,
            searcher,
            segments,
            segment_terms,
            mems,
            any_hiding,
            hidden,
        }
    }

    /// Names a layer for the memtables' caches of hidden documents; `None` for a memtable
    /// that may still change (only frozen memtables are cached).
    fn layer_id(&self, layer: usize) -> Option<LayerId> {
        match self.mem_index(layer as u32) {
            None => Some(LayerId::Segment(self.segments[layer].reader.segment_id())),
            Some(m) => {
                let mem = self.mems[m].memtable();
                mem.is_frozen().then(|| LayerId::Memtable(mem.id()))
            }
        }
    }

    /// The documents of `layer` hidden by newer memtables (see [`crate::hidden`]).
    fn hidden(&self, layer: usize) -> &Hidden {
        self.hidden[layer].get_or_init(|| {
            let Some(id) = self.layer_id(layer) else {
                return Hidden::PerDocument;
            };
            let live: Vec<LayerId> = (0..self.hidden.len())
                .filter_map(|l| self.layer_id(l))
                .collect();
            let max_doc = self.max_doc(layer as u32);
            let (newer, mut docs_of): (_, Box<DocsOfKey<'_>>) = match self.mem_index(layer as u32) {
                None => {
                    let seg = &self.segments[layer];
                    (
                        &self.mems[..],
                        Box::new(|key, sink| seg.docs_with_pk(key, sink)),
                    )
                }
                Some(m) => {
                    let mem = self.mems[m];
                    let docs_of = move |key: &str, sink: &mut dyn FnMut(u32)| {
                        if let Some(slot) = mem.slot_of(key) {
                            sink(slot);
                        }
                        Ok(())
                    };
                    (&self.mems[m + 1..], Box::new(docs_of))
                }
            };
            let mut union: Option<Arc<DocBits>> = None;
            for mem in newer {
                match mem.hidden_in(id, max_doc, &live, &mut *docs_of) {
                    Ok(None) => {}
                    Ok(Some(bits)) => match &mut union {
                        None => union = Some(bits),
                        Some(u) => Arc::make_mut(u).union_with(&bits),
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "key lookup failed; checking keys per document");
                        return Hidden::PerDocument;
                    }
                }
            }
            match union {
                Some(bits) if !bits.is_empty() => Hidden::Docs(bits),
                _ => Hidden::Nothing,
            }
        })
    }

    /// Snapshot LSN.
    pub fn lsn(&self) -> Lsn {
        self.lsn
    }

    /// Number of layers.
    pub fn layer_count(&self) -> u32 {
        (self.segments.len() + self.mems.len()) as u32
    }

    fn mem_index(&self, layer: u32) -> Option<usize> {
        (layer as usize).checked_sub(self.segments.len())
    }

    /// Upper bound (exclusive) of document ids in a layer.
    pub fn max_doc(&self, layer: u32) -> u32 {
        match self.mem_index(layer) {
            None => self.segments[layer as usize].reader.max_doc(),
            Some(m) => self.mems[m].slot_count(),
        }
    }

    /// Whether a document version is visible at the snapshot.
    pub fn visible(&self, layer: u32, doc: u32) -> bool {
        match self.mem_index(layer) {
            None => {
                let seg = &self.segments[layer as usize];
                if !seg.alive(doc) {
                    return false;
                }
                if !self.any_hiding {
                    return true;
                }
                match self.hidden(layer as usize) {
                    Hidden::Nothing => return true,
                    Hidden::Docs(bits) => return !bits.contains(doc),
                    Hidden::PerDocument => {}
                }
                let hash = seg.pk_hash.get_val(doc);
                if !self.mems.iter().any(|m| m.may_hide_hash(hash)) {
                    return true;
                }
                seg.with_pk(doc, |pk| !self.mems.iter().any(|m| m.hides(pk)))
            }
            Some(m) => {
                let mem = &self.mems[m];
                if !mem.slot_visible(doc) {
                    return false;
                }
                let newer = &self.mems[m + 1..];
                if newer.is_empty() || !self.any_hiding {
                    return true;
                }
                match self.hidden(layer as usize) {
                    Hidden::Nothing => return true,
                    Hidden::Docs(bits) => return !bits.contains(doc),
                    Hidden::PerDocument => {}
                }
                let pk = mem.pk(doc);
                !newer.iter().any(|n| n.hides(pk))
            }
        }
    }

    /// Whether every live document of a layer is visible (no deletes, nothing hidden by a
    /// newer layer), so raw posting counts are exact.
    pub fn all_visible(&self, layer: u32) -> bool {
        match self.mem_index(layer) {
            None => {
                !self.segments[layer as usize].reader.has_deletes()
                    && !self.mems.iter().any(|m| m.hides_anything())
            }
            Some(m) => {
                // Every slot is live at the snapshot (none replaced, deleted or written by
                // an unfinished operation) and no newer memtable hides a key.
                let mem = &self.mems[m];
                mem.lsn() >= mem.memtable().visible_lsn()
                    && mem.stats().live_docs == u64::from(mem.slot_count())
                    && !self.mems[m + 1..].iter().any(|n| n.hides_anything())
            }
        }
    }

    /// Cursor over a term's postings in a layer.
    pub fn cursor(&self, layer: u32, term: &str, positions: bool) -> Result<Option<Cursor<'a>>> {
        match self.mem_index(layer) {
            None => {
                let seg = &self.segments[layer as usize];
                let t = Term::from_field_text(seg.fields.text, term);
                let option = if positions {
                    IndexRecordOption::WithFreqsAndPositions
                } else {
                    IndexRecordOption::WithFreqs
                };
                Ok(seg
                    .text
                    .read_postings(&t, option)
                    .map_err(postings_error)?
                    .map(|p| Cursor::Seg(Box::new(p))))
            }
            Some(m) => Ok(self.mems[m].postings(term).map(Cursor::Mem)),
        }
    }

    /// Raw document frequency of a term in a segment layer (deleted documents included).
    pub fn raw_doc_freq(&self, layer: u32, term: &str) -> Result<u64> {
        match self.mem_index(layer) {
            None => {
                let seg = &self.segments[layer as usize];
                let t = Term::from_field_text(seg.fields.text, term);
                Ok(u64::from(seg.text.doc_freq(&t).map_err(postings_error)?))
            }
            Some(m) => Ok(self.mems[m].postings(term).map_or(0, |p| p.len() as u64)),
        }
    }

    /// Number of visible documents containing a term, over all layers.
    pub fn doc_freq(&self, term: &str) -> Result<u64> {
        let mut total = 0;
        for layer in 0..self.layer_count() {
            if self.all_visible(layer) {
                total += self.raw_doc_freq(layer, term)?;
                continue;
            }
            if let Some(mut c) = self.cursor(layer, term, false)? {
                let mut d = c.doc();
                while d != END {
                    if self.visible(layer, d) {
                        total += 1;
                    }
                    d = c.advance();
                }
            }
        }
        Ok(total)
    }

    /// Whether some visible document contains the term.
    pub fn term_is_live(&self, term: &str) -> Result<bool> {
        for layer in 0..self.layer_count() {
            if let Some(mut c) = self.cursor(layer, term, false)? {
                let mut d = c.doc();
                while d != END {
                    if self.visible(layer, d) {
                        return Ok(true);
                    }
                    d = c.advance();
                }
            }
        }
        Ok(false)
    }

    /// Live documents and tokens over all layers.
    pub fn corpus(&self) -> CorpusStats {
        let mut docs: i128 = 0;
        let mut tokens: i128 = 0;
        for seg in self.segments {
            docs += i128::from(seg.reader.num_docs());
            tokens += i128::from(seg.text.total_num_tokens()) - i128::from(seg.deleted_tokens);
        }
        for m in &self.mems {
            let s = m.stats();
            docs += i128::from(s.live_docs) - i128::from(s.dead_docs);
            tokens += i128::from(s.live_tokens) - i128::from(s.dead_tokens);
        }
        CorpusStats {
            docs: u64::try_from(docs.max(0)).unwrap_or(0),
            tokens: u64::try_from(tokens.max(0)).unwrap_or(0),
        }
    }

    /// Quantized length of a document.
    #[inline]
    pub fn fieldnorm_id(&self, layer: u32, doc: u32) -> u8 {
        match self.mem_index(layer) {
            None => self.segments[layer as usize].fieldnorms.fieldnorm_id(doc),
            Some(m) => self.mems[m].fieldnorm_id(doc),
        }
    }

    /// Number of tokens of a document.
    pub fn len(&self, layer: u32, doc: u32) -> u32 {
        match self.mem_index(layer) {
            None => self.segments[layer as usize].len(doc),
            Some(m) => self.mems[m].len(doc),
        }
    }

    /// Ordering key of a document.
    #[inline]
    pub fn seq(&self, layer: u32, doc: u32) -> u64 {
        match self.mem_index(layer) {
            None => self.segments[layer as usize].seq(doc),
            Some(m) => self.mems[m].seq(doc),
        }
    }

    /// Primary key of a document.
    pub fn pk(&self, layer: u32, doc: u32) -> String {
        match self.mem_index(layer) {
            None => self.segments[layer as usize].pk_string(doc),
            Some(m) => self.mems[m].pk(doc).to_string(),
        }
    }

    /// Stored JSON of a document.
    pub fn json(&self, layer: u32, doc: u32) -> Result<Arc<[u8]>> {
        match self.mem_index(layer) {
            None => Ok(Arc::from(
                self.segments[layer as usize].json(self.searcher, doc)?,
            )),
            Some(m) => Ok(self.mems[m].json(doc).clone()),
        }
    }

    /// Finds the visible version of a primary key.
    pub fn find(&self, pk: &str) -> Result<Option<DocRef>> {
        for (m, mem) in self.mems.iter().enumerate().rev() {
            if mem.hides(pk) {
                let layer = (self.segments.len() + m) as u32;
                return Ok(mem.slot_of(pk).map(|doc| DocRef { layer, doc }));
            }
        }
        for (i, seg) in self.segments.iter().enumerate() {
            if let Some(doc) = seg.find_pk(pk)? {
                return Ok(Some(DocRef {
                    layer: i as u32,
                    doc,
                }));
            }
        }
        Ok(None)
    }

    /// Adds to `union` every term of any layer's dictionary that the word automaton
    /// matches, with its typos.
    pub fn collect_derivations(
        &self,
        dfa: &WordDfa,
        union: &mut BTreeMap<Vec<u8>, u8>,
    ) -> Result<()> {
        match self.segment_terms {
            Some(terms) => dfa.walk_fst_raw(terms.as_fst(), |term, typos| {
                derive::add(union, term, typos)
            }),
            None => {
                for seg in self.segments {
                    dfa.walk_fst(seg.text.terms(), |term, typos| {
                        derive::add(union, term, typos)
                    })
                    .map_err(|e| {
                        crate::error::Error::io("read term dictionary of", "a segment", e)
                    })?;
                }
            }
        }
        for mem in &self.mems {
            if let Some(map) = mem.sealed_terms() {
                dfa.walk_fst_raw(map.as_fst(), |term, typos| derive::add(union, term, typos));
            }
            let recent = mem.recent_terms();
            for run in 0..recent.run_count() {
                dfa.walk_sorted(
                    |lo, hi| recent.range(run, lo, hi),
                    |term, typos| derive::add(union, term, typos),
                );
            }
        }
        Ok(())
    }

    /// Tantivy's id of a segment layer (`None` for memtables).
    pub fn segment_id(&self, layer: u32) -> Option<tantivy::index::SegmentId> {
        match self.mem_index(layer) {
            None => Some(self.segments[layer as usize].reader.segment_id()),
            Some(_) => None,
        }
    }

    /// Calls `f` with every visible document, layer by layer.
    pub fn for_each_visible(&self, mut f: impl FnMut(DocRef)) {
        for layer in 0..self.layer_count() {
            for doc in 0..self.max_doc(layer) {
                if self.visible(layer, doc) {
                    f(DocRef { layer, doc });
                }
            }
        }
    }
}
