//! A second Tantivy baseline for search: the benchmark queries with eddy's matching rules
//! expressed in Tantivy's own queries.
//!
//! The plain baseline (`QueryParser`) matches exact terms only, while eddy matches every
//! word with typos (1 from 5 letters, 2 from 9) and the last word as a prefix. This one
//! parses each query with eddy's own parser ([`eddy_engine::search::parse`], default
//! settings) and turns every word into a `FuzzyTermQuery` at the typo budget eddy gave it (a
//! prefix one for the prefix word), every phrase into a phrase query and every excluded word
//! or phrase into a `MustNot` clause. It does the same term-dictionary work as eddy but ranks
//! differently (Tantivy scores fuzzy matches as constants), so its ratio says how much of
//! eddy's search time the matching rules themselves cost, not whether eddy ranks the same.
//! eddy's analyzer also folds diacritics, which the baseline index does not: the benchmark
//! queries are ASCII.

use eddy_engine::SearchRequest;
use eddy_engine::Settings;
use eddy_engine::search::query::QueryTerm;
use tantivy::Term;
use tantivy::query::{BooleanQuery, FuzzyTermQuery, Occur, PhraseQuery, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};

/// An exact match of words (a phrase when there are several).
fn exact(field: Field, words: &[String]) -> Box<dyn Query> {
    let mut terms: Vec<Term> = words
        .iter()
        .map(|w| Term::from_field_text(field, w))
        .collect();
    if terms.len() == 1 {
        Box::new(TermQuery::new(
            terms.remove(0),
            IndexRecordOption::WithFreqs,
        ))
    } else {
        Box::new(PhraseQuery::new(terms))
    }
}

/// The query for `q` under an index's `settings`: every word or phrase eddy keeps is a
/// `Should` clause, every one it excludes a `MustNot` clause.
pub fn typo_query(field: Field, q: &str, settings: &Settings) -> Box<dyn Query> {
    let request = SearchRequest {
        q: Some(q.to_string()),
        ..SearchRequest::default()
    };
    let parsed = eddy_engine::search::parse(&request, settings);
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for term in &parsed.terms {
        let query: Box<dyn Query> = match term {
            QueryTerm::Phrase(words) => exact(field, words),
            QueryTerm::Word(w) => {
                let term = Term::from_field_text(field, &w.text);
                match (w.prefix, w.max_typos) {
                    (false, 0) => Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs)),
                    (false, d) => Box::new(FuzzyTermQuery::new(term, d, true)),
                    (true, d) => Box::new(FuzzyTermQuery::new_prefix(term, d, true)),
                }
            }
        };
        clauses.push((Occur::Should, query));
    }
    for words in &parsed.excluded {
        clauses.push((Occur::MustNot, exact(field, words)));
    }
    Box::new(BooleanQuery::new(clauses))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::collector::Count;
    use tantivy::schema::{Schema, TEXT};
    use tantivy::{Index, IndexWriter, doc};

    fn count(index: &Index, field: Field, q: &str) -> usize {
        let reader = index.reader().expect("reader");
        let query = typo_query(field, q, &Settings::default());
        reader.searcher().search(&query, &Count).expect("search")
    }

    #[test]
    fn matches_with_eddys_typo_and_prefix_rules() {
        let mut b = Schema::builder();
        let text = b.add_text_field("text", TEXT);
        let index = Index::create_in_ram(b.build());
        let mut writer: IndexWriter = index.writer(15_000_000).expect("writer");
        for t in ["griffith observatory", "the cat sat", "catalogue of stars"] {
            writer.add_document(doc!(text => t)).expect("add");
        }
        writer.commit().expect("commit");
        // One typo from five letters, none below.
        assert_eq!(count(&index, text, "grifith x"), 1);
        assert_eq!(count(&index, text, "sta x"), 0);
        // The last word is a prefix, others are not.
        assert_eq!(count(&index, text, "cat"), 2);
        assert_eq!(count(&index, text, "cat zzz"), 1);
        // Phrases keep their order; the word after a phrase is still the prefix.
        assert_eq!(count(&index, text, "\"observatory griffith\""), 0);
        assert_eq!(count(&index, text, "\"griffith observatory\""), 1);
        assert_eq!(count(&index, text, "\"cat sat\" catal"), 2);
        // A query ending with a separator has no prefix word.
        assert_eq!(count(&index, text, "catal "), 0);
        // `-word` excludes; only the first word of a negated run is negated.
        assert_eq!(count(&index, text, "cat -sat"), 1);
        assert_eq!(count(&index, text, "-\"cat sat\" cat"), 1);
        // A closing quote is a separator too: no prefix here.
        assert_eq!(count(&index, text, "cat -\"cat sat\""), 0);
        assert_eq!(count(&index, text, "catal -zzz-sat"), 1);
    }
}
