//! Which documents of an older layer a memtable hides, kept as a bitset per memtable and
//! layer.
//!
//! A memtable hides the older version of every key that it holds and an older layer holds
//! too: a replaced, updated or deleted document. Searches used to decide this for every
//! candidate document of an older layer: read its key, then look it up in each newer
//! memtable.
//! While documents that the segments already hold are written again (a re-import, a stream
//! of updates) nearly every candidate takes that path, and a search under such an ingest
//! spent four fifths of its CPU there, ten times its idle cost.
//!
//! So each memtable logs, in LSN order, the keys that hide an older version ([`ShadowLog`]),
//! and keeps per older layer (segment or frozen memtable) a bitset of the documents those
//! keys hide ([`HiddenCache`]), extended as the log grows: each key is looked up once per
//! layer, in the layer's key index, instead of every candidate once per search. A search that reads the memtable at an
//! older LSN than the bitset covers clears the newer keys' documents from a copy; a key is
//! logged at most once per memtable and a document has one key, so that is exact.
//!
//! Memory: a bitset is a layer's `max_doc / 8` bytes (16 KiB per 128k documents) per
//! memtable that hides something, dropped with the memtable; it is not charged to the
//! memtable budget.

use std::sync::Arc;

use eddy_wal::Lsn;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use tantivy::index::SegmentId;

use crate::error::Result;

/// An older layer of an index, as the cache names it: ids stay the same for the life of
/// the layer's documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LayerId {
    /// A Tantivy segment.
    Segment(SegmentId),
    /// A frozen memtable, by its creation number.
    Memtable(u64),
}

/// A set of document ids of one layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocBits {
    words: Vec<u64>,
}

impl DocBits {
    /// An empty set for documents `0..max_doc`.
    pub fn new(max_doc: u32) -> DocBits {
        DocBits {
            words: vec![0; (max_doc as usize).div_ceil(64)],
        }
    }

    /// Whether `doc` is in the set.
    #[inline]
    pub fn contains(&self, doc: u32) -> bool {
        self.words
            .get(doc as usize / 64)
            .is_some_and(|w| w & (1 << (doc % 64)) != 0)
    }

    /// Adds `doc` (ignored beyond `max_doc`).
    pub fn insert(&mut self, doc: u32) {
        if let Some(w) = self.words.get_mut(doc as usize / 64) {
            *w |= 1 << (doc % 64);
        }
    }

    /// Removes `doc`.
    pub fn remove(&mut self, doc: u32) {
        if let Some(w) = self.words.get_mut(doc as usize / 64) {
            *w &= !(1 << (doc % 64));
        }
    }

    /// Adds every document of `other`.
    pub fn union_with(&mut self, other: &DocBits) {
        for (w, o) in self.words.iter_mut().zip(&other.words) {
            *w |= o;
        }
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|w| *w == 0)
    }

    /// Heap bytes.
    pub fn bytes(&self) -> usize {
        self.words.capacity() * 8
    }
}

/// The keys of a memtable that hide an older layer's version, in the order (and so LSN
/// order) they first arrived.
#[derive(Debug, Default)]
pub struct ShadowLog {
    keys: Vec<(Lsn, Arc<str>)>,
}

impl ShadowLog {
    /// Logs a key first written at `lsn` (LSNs never go backwards).
    pub fn push(&mut self, lsn: Lsn, key: Arc<str>) {
        debug_assert!(self.keys.last().is_none_or(|(l, _)| *l <= lsn));
        self.keys.push((lsn, key));
    }

    /// Number of keys logged at or before `lsn`.
    pub fn count_at(&self, lsn: Lsn) -> usize {
        self.keys.partition_point(|(l, _)| *l <= lsn)
    }

    /// Heap bytes of the log itself (the keys are shared with the memtable's key map).
    pub fn bytes(&self) -> usize {
        self.keys.capacity() * std::mem::size_of::<(Lsn, Arc<str>)>()
    }

    fn keys(&self, range: std::ops::Range<usize>) -> impl Iterator<Item = &str> {
        self.keys[range].iter().map(|(_, k)| &**k)
    }
}

/// Documents of a layer hidden by the first `keys` keys of a log.
#[derive(Debug)]
struct Covered {
    keys: usize,
    bits: Arc<DocBits>,
}

/// Per older layer, the documents that the keys of one memtable's [`ShadowLog`] hide.
#[derive(Debug, Default)]
pub struct HiddenCache {
    layers: Mutex<FxHashMap<LayerId, Covered>>,
}

/// How a layer's documents holding a key are found: calls the sink with each of them that
/// may be visible.
pub type DocsOfKey<'a> = dyn FnMut(&str, &mut dyn FnMut(u32)) -> Result<()> + 'a;

impl HiddenCache {
    /// The documents of `layer` hidden by the keys logged at or before `lsn`; `None` when
    /// there are no such keys. `live` lists the layers still in use: entries for others are
    /// dropped when a new layer is added. The layer's documents must not change.
    ///
    /// # Errors
    /// A lookup in the layer failed (the caller decides per document instead).
    pub fn hidden(
        &self,
        log: &ShadowLog,
        lsn: Lsn,
        layer: LayerId,
        max_doc: u32,
        live: &[LayerId],
        docs_of: &mut DocsOfKey<'_>,
    ) -> Result<Option<Arc<DocBits>>> {
        let wanted = log.count_at(lsn);
        if wanted == 0 {
            return Ok(None);
        }
        let mut layers = self.layers.lock();
        if !layers.contains_key(&layer) {
            layers.retain(|id, _| live.contains(id));
        }
        let covered = layers.entry(layer).or_insert_with(|| Covered {
            keys: 0,
            bits: Arc::new(DocBits::new(max_doc)),
        });
        if covered.keys < wanted {
            // Extended in place when no search holds the previous bitset, else copied.
            let bits = Arc::make_mut(&mut covered.bits);
            for key in log.keys(covered.keys..wanted) {
                docs_of(key, &mut |doc| bits.insert(doc))?;
            }
            covered.keys = wanted;
        }
        if covered.keys == wanted {
            return Ok(Some(covered.bits.clone()));
        }
        // This reader is older than the bitset: leave out the newer keys' documents.
        let (keys, shared) = (covered.keys, covered.bits.clone());
        drop(layers);
        let mut bits = (*shared).clone();
        for key in log.keys(wanted..keys) {
            docs_of(key, &mut |doc| bits.remove(doc))?;
        }
        Ok(Some(Arc::new(bits)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(keys: &[(Lsn, &str)]) -> ShadowLog {
        let mut log = ShadowLog::default();
        for (lsn, k) in keys {
            log.push(*lsn, Arc::from(*k));
        }
        log
    }

    /// A segment where key `kN` is held by document `N`.
    fn docs_of(key: &str, sink: &mut dyn FnMut(u32)) -> Result<()> {
        if let Some(n) = key.strip_prefix('k').and_then(|n| n.parse().ok()) {
            sink(n);
        }
        Ok(())
    }

    fn set(bits: &DocBits, max: u32) -> Vec<u32> {
        (0..max).filter(|d| bits.contains(*d)).collect()
    }

    #[test]
    fn bits_insert_remove_union() {
        let mut a = DocBits::new(130);
        assert!(a.is_empty());
        a.insert(0);
        a.insert(64);
        a.insert(129);
        a.insert(500); // beyond max_doc: ignored
        assert_eq!(set(&a, 600), vec![0, 64, 129]);
        a.remove(64);
        let mut b = DocBits::new(130);
        b.insert(5);
        b.union_with(&a);
        assert_eq!(set(&b, 130), vec![0, 5, 129]);
    }

    #[test]
    fn readers_see_exactly_the_keys_logged_at_their_lsn() {
        let id = LayerId::Segment(SegmentId::generate_random());
        let cache = HiddenCache::default();
        let mut log = log(&[(3, "k1"), (3, "k7"), (5, "k2"), (9, "k4")]);
        let at = |log: &ShadowLog, lsn| {
            cache
                .hidden(log, lsn, id, 10, &[id], &mut docs_of)
                .unwrap()
                .map(|b| set(&b, 10))
        };
        assert_eq!(at(&log, 2), None);
        assert_eq!(at(&log, 5), Some(vec![1, 2, 7]));
        // A newer reader extends the bitset, an older one still sees its own keys only.
        assert_eq!(at(&log, 9), Some(vec![1, 2, 4, 7]));
        assert_eq!(at(&log, 4), Some(vec![1, 7]));
        assert_eq!(at(&log, 9), Some(vec![1, 2, 4, 7]));
        log.push(12, Arc::from("k0"));
        assert_eq!(at(&log, 12), Some(vec![0, 1, 2, 4, 7]));
        assert_eq!(at(&log, 100), Some(vec![0, 1, 2, 4, 7]));
    }

    #[test]
    fn entries_of_dropped_layers_go_when_a_new_one_comes() {
        let (old, new) = (
            LayerId::Segment(SegmentId::generate_random()),
            LayerId::Memtable(7),
        );
        let cache = HiddenCache::default();
        let log = log(&[(1, "k1")]);
        cache.hidden(&log, 1, old, 4, &[old], &mut docs_of).unwrap();
        cache.hidden(&log, 1, new, 4, &[new], &mut docs_of).unwrap();
        let layers = cache.layers.lock();
        assert!(layers.contains_key(&new) && !layers.contains_key(&old));
    }

    #[test]
    fn a_failed_lookup_is_reported() {
        let id = LayerId::Memtable(1);
        let cache = HiddenCache::default();
        let log = log(&[(1, "k1")]);
        let mut failing = |_: &str, _: &mut dyn FnMut(u32)| -> Result<()> {
            Err(crate::error::Error::Corrupt("boom".into()))
        };
        assert!(cache.hidden(&log, 1, id, 4, &[id], &mut failing).is_err());
    }
}
