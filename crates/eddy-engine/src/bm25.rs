//! BM25 scoring shared by every layer.
//!
//! The formulas are Tantivy's (`tantivy::query::Bm25Weight`): the same idf, the same
//! quantized document lengths (`FieldNormReader::fieldnorm_to_id`) and the same 256-entry
//! length-normalization table, so with the default parameters a score is bit-for-bit the one
//! Tantivy would compute. eddy computes it itself because the statistics are summed over all
//! layers (memtables and segments, minus hidden versions) and because `k1` and `b` are
//! tunable, which Tantivy's weight is not.

use tantivy::fieldnorm::FieldNormReader;
use tantivy::query::Bm25StatisticsProvider;
use tantivy::schema::Field;

/// BM25 parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bm25Params {
    /// Term-frequency saturation.
    pub k1: f32,
    /// Length normalization.
    pub b: f32,
}

impl Default for Bm25Params {
    /// Tantivy's (and Lucene's) defaults.
    fn default() -> Self {
        Bm25Params { k1: 1.2, b: 0.75 }
    }
}

/// Statistics of the whole index as a search sees it: live documents only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CorpusStats {
    /// Live documents.
    pub docs: u64,
    /// Tokens of live documents.
    pub tokens: u64,
}

impl CorpusStats {
    /// Average document length.
    pub fn average_len(&self) -> f32 {
        if self.docs == 0 {
            1.0
        } else {
            (self.tokens as f32 / self.docs as f32).max(f32::MIN_POSITIVE)
        }
    }
}

/// `ln(1 + (N - n + 0.5) / (n + 0.5))`.
pub fn idf(doc_freq: u64, docs: u64) -> f32 {
    let doc_freq = doc_freq.min(docs);
    let x = ((docs - doc_freq) as f32 + 0.5) / (doc_freq as f32 + 0.5);
    (1.0 + x).ln()
}

/// Precomputed weight of one query term (or phrase: summed idf).
#[derive(Debug, Clone)]
pub struct TermWeight {
    weight: f32,
    cache: Box<[f32; 256]>,
}

impl TermWeight {
    /// Weight for a given idf.
    pub fn new(idf: f32, stats: CorpusStats, params: Bm25Params) -> TermWeight {
        let average = stats.average_len();
        let mut cache = Box::new([0f32; 256]);
        for (id, slot) in cache.iter_mut().enumerate() {
            let len = FieldNormReader::id_to_fieldnorm(id as u8) as f32;
            *slot = params.k1 * (1.0 - params.b + params.b * len / average);
        }
        TermWeight {
            weight: idf * (1.0 + params.k1),
            cache,
        }
    }

    /// Score of a document with this length id and term frequency.
    #[inline]
    pub fn score(&self, fieldnorm_id: u8, term_freq: u32) -> f32 {
        let tf = term_freq as f32;
        self.weight * (tf / (tf + self.cache[fieldnorm_id as usize]))
    }
}

/// Adapter exposing eddy's statistics through Tantivy's statistics trait, for code (and
/// tests) that want to drive Tantivy's own scorer with them.
pub struct StatsProvider<'a> {
    /// Corpus statistics.
    pub corpus: CorpusStats,
    /// Document frequency lookup by term text.
    pub doc_freq: &'a dyn Fn(&str) -> u64,
}

impl Bm25StatisticsProvider for StatsProvider<'_> {
    fn total_num_tokens(&self, _field: Field) -> tantivy::Result<u64> {
        Ok(self.corpus.tokens)
    }

    fn total_num_docs(&self) -> tantivy::Result<u64> {
        Ok(self.corpus.docs)
    }

    fn doc_freq(&self, term: &tantivy::Term) -> tantivy::Result<u64> {
        Ok((self.doc_freq)(term.value().as_str().unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::query::Bm25Weight;
    use tantivy::schema::{Schema, TEXT};

    #[test]
    fn matches_tantivy_bit_for_bit_with_default_parameters() {
        let mut builder = Schema::builder();
        let field = builder.add_text_field("t", TEXT);
        let corpus = CorpusStats {
            docs: 1234,
            tokens: 98765,
        };
        let df = |term: &str| if term == "rare" { 3 } else { 700 };
        let provider = StatsProvider {
            corpus,
            doc_freq: &df,
        };
        for (term, n) in [("rare", 3u64), ("common", 700)] {
            let theirs =
                Bm25Weight::for_terms(&provider, &[tantivy::Term::from_field_text(field, term)])
                    .expect("weight");
            let ours = TermWeight::new(idf(n, corpus.docs), corpus, Bm25Params::default());
            for id in [0u8, 1, 17, 40, 128, 255] {
                for tf in [1u32, 2, 7, 100] {
                    assert_eq!(ours.score(id, tf).to_bits(), theirs.score(id, tf).to_bits());
                }
            }
        }
    }

    #[test]
    fn parameters_change_scores() {
        let corpus = CorpusStats {
            docs: 10,
            tokens: 100,
        };
        let a = TermWeight::new(idf(2, 10), corpus, Bm25Params::default());
        let b = TermWeight::new(idf(2, 10), corpus, Bm25Params { k1: 0.9, b: 0.4 });
        assert_ne!(a.score(10, 3), b.score(10, 3));
        assert!(idf(1, 10) > idf(5, 10));
    }
}
