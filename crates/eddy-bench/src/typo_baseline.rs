//! A second Tantivy baseline for search: the benchmark queries with eddy's matching rules
//! expressed in Tantivy's own queries.
//!
//! The plain baseline (`QueryParser`) matches exact terms only, while eddy matches every
//! word with typos (1 from 5 letters, 2 from 9) and the last word as a prefix. This one
//! unions, per word, a `FuzzyTermQuery` at eddy's distance (a prefix one for the last word),
//! and keeps quoted phrases as phrase queries. It does the same term-dictionary work as eddy
//! but ranks differently (Tantivy scores fuzzy matches as constants), so its ratio says how
//! much of eddy's search time the matching rules themselves cost, not whether eddy ranks
//! the same.

use tantivy::query::{BooleanQuery, FuzzyTermQuery, Occur, PhraseQuery, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{Index, Term};

/// Words of `text` as the index's analyzer for `field` makes them.
fn words(index: &Index, field: Field, text: &str) -> tantivy::Result<Vec<String>> {
    let mut analyzer = index.tokenizer_for_field(field)?;
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while let Some(token) = stream.next() {
        out.push(token.text.clone());
    }
    Ok(out)
}

/// Typos allowed in a word of `chars` characters.
fn typos(chars: usize) -> u8 {
    match chars {
        0..5 => 0,
        5..9 => 1,
        _ => 2,
    }
}

/// The query for `q`: every word or phrase is a `Should` clause.
pub fn typo_query(index: &Index, field: Field, q: &str) -> tantivy::Result<Box<dyn Query>> {
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    // Quotes alternate between free words and phrases.
    let parts: Vec<&str> = q.split('"').collect();
    let last_free = (0..parts.len()).rev().find(|i| i % 2 == 0);
    for (i, part) in parts.iter().enumerate() {
        let words = words(index, field, part)?;
        if words.is_empty() {
            continue;
        }
        if i % 2 == 1 {
            let terms: Vec<Term> = words
                .iter()
                .map(|w| Term::from_field_text(field, w))
                .collect();
            let query: Box<dyn Query> = if terms.len() == 1 {
                Box::new(TermQuery::new(
                    terms[0].clone(),
                    IndexRecordOption::WithFreqs,
                ))
            } else {
                Box::new(PhraseQuery::new(terms))
            };
            clauses.push((Occur::Should, query));
            continue;
        }
        let count = words.len();
        for (j, word) in words.iter().enumerate() {
            let term = Term::from_field_text(field, word);
            let prefix = Some(i) == last_free && j + 1 == count && i + 1 == parts.len();
            let distance = typos(word.chars().count());
            let query: Box<dyn Query> = match (prefix, distance) {
                (false, 0) => Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs)),
                (false, d) => Box::new(FuzzyTermQuery::new(term, d, true)),
                (true, d) => Box::new(FuzzyTermQuery::new_prefix(term, d, true)),
            };
            clauses.push((Occur::Should, query));
        }
    }
    Ok(Box::new(BooleanQuery::new(clauses)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::collector::Count;
    use tantivy::schema::{Schema, TEXT};
    use tantivy::{IndexWriter, doc};

    fn count(index: &Index, field: Field, q: &str) -> usize {
        let reader = index.reader().expect("reader");
        let query = typo_query(index, field, q).expect("query");
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
    }
}
