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

/// A query piece: its words, whether it was quoted, whether it was negated (`-word`).
struct Piece {
    words: Vec<String>,
    phrase: bool,
    negated: bool,
}

/// Splits `q` the way eddy's query parser does: `"phrases"`, `-` negating the next phrase or
/// the first word of the next run of text, everything else words.
fn pieces(index: &Index, field: Field, q: &str) -> tantivy::Result<Vec<Piece>> {
    let mut out = Vec::new();
    let mut rest = q;
    loop {
        let trimmed = rest.trim_start();
        if trimmed.is_empty() {
            return Ok(out);
        }
        let (negated, body) = match trimmed.strip_prefix('-') {
            Some(after) if after.starts_with(|c: char| c.is_alphanumeric() || c == '"') => {
                (true, after)
            }
            _ => (false, trimmed),
        };
        if let Some(quoted) = body.strip_prefix('"')
            && let Some(end) = quoted.find('"')
        {
            let words = words(index, field, &quoted[..end])?;
            if !words.is_empty() {
                out.push(Piece {
                    words,
                    phrase: true,
                    negated,
                });
            }
            rest = &quoted[end + 1..];
            continue;
        }
        let end = body.find(char::is_whitespace).unwrap_or(body.len());
        for (i, word) in words(index, field, &body[..end])?.into_iter().enumerate() {
            out.push(Piece {
                words: vec![word],
                phrase: false,
                negated: negated && i == 0,
            });
        }
        rest = &body[end..];
    }
}

/// An exact match of a piece's words (a phrase when there are several).
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

/// The query for `q`: every positive word or phrase is a `Should` clause, every negated one
/// a `MustNot` clause.
pub fn typo_query(index: &Index, field: Field, q: &str) -> tantivy::Result<Box<dyn Query>> {
    let pieces = pieces(index, field, q)?;
    // The last word is a prefix when it is the last positive piece and the query does not
    // end with a separator.
    let ends_with_separator = q.chars().last().is_none_or(|c| !c.is_alphanumeric());
    let last_positive = pieces.iter().rposition(|p| !p.negated);
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        if piece.negated {
            clauses.push((Occur::MustNot, exact(field, &piece.words)));
            continue;
        }
        if piece.phrase {
            clauses.push((Occur::Should, exact(field, &piece.words)));
            continue;
        }
        let word = &piece.words[0];
        let term = Term::from_field_text(field, word);
        let prefix = Some(i) == last_positive && !ends_with_separator;
        let query: Box<dyn Query> = match (prefix, typos(word.chars().count())) {
            (false, 0) => Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs)),
            (false, d) => Box::new(FuzzyTermQuery::new(term, d, true)),
            (true, d) => Box::new(FuzzyTermQuery::new_prefix(term, d, true)),
        };
        clauses.push((Occur::Should, query));
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
