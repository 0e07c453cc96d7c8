//! Which primary keys a segment may hold: a binary fuse filter over the segment's key hashes.
//!
//! Every write looks for the version it replaces in the layers older than the active
//! memtable, and a new key is absent from all of them: without a filter that was one term
//! dictionary lookup per segment per document, which grows with the number of segments of a
//! large index. The filter answers "certainly not here" for all but about 0.4% of absent keys
//! (8-bit fingerprints, about 9 bits a key) and never misses a key the segment holds.
//!
//! Filters are built from the segment's `_pkh` column, once per segment (segments are
//! immutable; deleted documents may stay in the filter, which only costs a lookup).

use std::sync::Arc;

use tantivy::SegmentReader;
use xorf::{BinaryFuse8, Filter};

use crate::error::Result;

/// The key hashes of one segment, as a filter.
#[derive(Debug, Clone)]
pub struct KeyFilter(Option<Arc<BinaryFuse8>>);

impl KeyFilter {
    /// A filter that holds every key (when none could be built).
    pub fn everything() -> KeyFilter {
        KeyFilter(None)
    }

    /// Builds the filter of a segment from its `_pkh` column.
    ///
    /// # Errors
    /// The column could not be opened.
    pub fn of_segment(reader: &SegmentReader) -> Result<KeyFilter> {
        let column = reader.fast_fields().u64("_pkh")?.first_or_default_col(0);
        let mut hashes: Vec<u64> = (0..reader.max_doc()).map(|d| column.get_val(d)).collect();
        Ok(KeyFilter::of_hashes(&mut hashes))
    }

    /// Builds the filter of these key hashes (sorted and deduplicated in place).
    pub fn of_hashes(hashes: &mut Vec<u64>) -> KeyFilter {
        hashes.sort_unstable();
        hashes.dedup();
        // Construction fails only in rare cases (duplicates, which are removed above): the
        // fallback holds every key, so lookups stay exact, only slower.
        KeyFilter(BinaryFuse8::try_from(&*hashes).ok().map(Arc::new))
    }

    /// Whether the segment may hold a key with this hash (`false`: certainly not).
    pub fn may_contain(&self, hash: u64) -> bool {
        self.0.as_ref().is_none_or(|f| f.contains(&hash))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_misses_a_key_and_rejects_most_others() {
        let mut keys: Vec<u64> = (0..50_000u64)
            .map(|i| crate::memtable::pk_hash(&format!("doc-{i}")))
            .collect();
        let present = keys.clone();
        let filter = KeyFilter::of_hashes(&mut keys);
        assert!(present.iter().all(|h| filter.may_contain(*h)));
        let false_positives = (0..50_000u64)
            .map(|i| crate::memtable::pk_hash(&format!("absent-{i}")))
            .filter(|h| filter.may_contain(*h))
            .count();
        assert!(false_positives < 500, "{false_positives} false positives");
        // Duplicates and tiny sets build too; the empty set holds nothing or everything,
        // never a wrong answer for present keys.
        let mut tiny = vec![7, 7, 9];
        let tiny_filter = KeyFilter::of_hashes(&mut tiny);
        assert!(tiny_filter.may_contain(7) && tiny_filter.may_contain(9));
        assert!(KeyFilter::everything().may_contain(12345));
    }
}
