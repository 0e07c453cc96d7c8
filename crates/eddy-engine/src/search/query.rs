//! Query strings: words, quoted phrases and `-word` exclusions, as Meilisearch reads them.
//!
//! - Words are analyzed exactly like document text.
//! - `"a quoted phrase"` matches the words at consecutive positions, without typos.
//! - `-word` (a minus at the start of a word) excludes documents containing the word;
//!   `-"a phrase"` excludes documents containing the phrase.
//! - The last word matches as a prefix unless the query ends with a separator.
//! - At most [`MAX_QUERY_TERMS`] words and phrases count, as in Meilisearch; the rest is
//!   ignored. Under eddy's `bm25` rule, [`MAX_BM25_QUERY_TERMS`].

use crate::analysis::{Tokenization, normalize_word, words_with};
use crate::settings::TypoTolerance;

/// Meilisearch considers at most ten words of a query.
pub const MAX_QUERY_TERMS: usize = 10;
/// Words of a query eddy's `bm25` rule considers: long natural-language queries are what the
/// rule is for (the matching mask has one bit per term, so 64 at most).
pub const MAX_BM25_QUERY_TERMS: usize = 64;

/// One term of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryTerm {
    /// A word, possibly matched with typos or as a prefix.
    Word(WordTerm),
    /// Words that must appear at consecutive positions.
    Phrase(Vec<String>),
}

/// A query word and how loosely it may match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordTerm {
    /// Normalized word.
    pub text: String,
    /// Whether it also matches words it is a prefix of.
    pub prefix: bool,
    /// Typos allowed (0, 1 or 2).
    pub max_typos: u8,
}

/// A parsed query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedQuery {
    /// Terms in query order.
    pub terms: Vec<QueryTerm>,
    /// Excluded words and phrases.
    pub excluded: Vec<Vec<String>>,
}

impl ParsedQuery {
    /// Whether the query has no positive term (a placeholder search).
    pub fn is_placeholder(&self) -> bool {
        self.terms.is_empty()
    }
}

/// Query parsing options derived from settings and the request.
#[derive(Debug, Clone)]
pub struct ParseOptions<'a> {
    /// Typo tolerance settings.
    pub typos: &'a TypoTolerance,
    /// Whether prefix search is enabled.
    pub prefix_search: bool,
    /// Words ignored in queries.
    pub stop_words: &'a [String],
    /// How the index's settings split words.
    pub tokenization: &'a Tokenization,
    /// Most words and phrases kept ([`MAX_QUERY_TERMS`], or [`MAX_BM25_QUERY_TERMS`]).
    pub max_terms: usize,
}

/// Typos allowed for a word of this many characters.
pub fn typos_for(word: &str, typos: &TypoTolerance) -> u8 {
    if !typos.enabled {
        return 0;
    }
    if typos.disable_on_numbers && word.chars().all(|c| c.is_ascii_digit()) {
        return 0;
    }
    if typos
        .disable_on_words
        .iter()
        .any(|w| normalize_word(w).as_deref() == Some(word))
    {
        return 0;
    }
    let len = word.chars().count();
    let sizes = typos.min_word_size_for_typos;
    if len >= usize::from(sizes.two_typos) {
        2
    } else if len >= usize::from(sizes.one_typo) {
        1
    } else {
        0
    }
}

enum Piece {
    Word(String),
    Phrase(Vec<String>),
}

/// Parses a query string.
pub fn parse_query(q: &str, options: &ParseOptions<'_>) -> ParsedQuery {
    let mut pieces: Vec<(bool, Piece)> = Vec::new();
    let mut rest = q;
    while !rest.is_empty() {
        let trimmed = rest.trim_start();
        if trimmed.is_empty() {
            break;
        }
        let (negated, body) = match trimmed.strip_prefix('-') {
            Some(after) if after.starts_with(|c: char| c.is_alphanumeric() || c == '"') => {
                (true, after)
            }
            _ => (false, trimmed),
        };
        if let Some(after_quote) = body.strip_prefix('"')
            && let Some(end) = after_quote.find('"')
        {
            let phrase: Vec<String> = words_with(&after_quote[..end], options.tokenization)
                .into_iter()
                .map(|w| w.term)
                .collect();
            if !phrase.is_empty() {
                pieces.push((negated, Piece::Phrase(phrase)));
            }
            rest = &after_quote[end + 1..];
            continue;
        }
        // A run of non-whitespace text; it may hold several words ("wi-fi", "l'été").
        let end = body.find(char::is_whitespace).unwrap_or(body.len());
        let chunk = &body[..end];
        let chunk = chunk.strip_prefix('"').unwrap_or(chunk);
        let mut first = true;
        for w in words_with(chunk, options.tokenization) {
            // Only the first word of a `-chunk` is excluded, like Meilisearch.
            pieces.push((negated && first, Piece::Word(w.term)));
            first = false;
        }
        rest = &body[end..];
    }

    let ends_with_separator = q.chars().last().is_none_or(|c| !c.is_alphanumeric());
    let mut parsed = ParsedQuery::default();
    let last_positive_word = pieces
        .iter()
        .rposition(|(neg, p)| !neg && matches!(p, Piece::Word(_)));
    let last_positive = pieces.iter().rposition(|(neg, _)| !neg);
    for (i, (negated, piece)) in pieces.into_iter().enumerate() {
        match (negated, piece) {
            (true, Piece::Word(w)) => parsed.excluded.push(vec![w]),
            (true, Piece::Phrase(p)) => parsed.excluded.push(p),
            (false, Piece::Phrase(p)) => {
                if parsed.terms.len() < options.max_terms {
                    parsed.terms.push(QueryTerm::Phrase(p));
                }
            }
            (false, Piece::Word(w)) => {
                if options.stop_words.iter().any(|s| s == &w) {
                    continue;
                }
                if parsed.terms.len() >= options.max_terms {
                    continue;
                }
                let is_last = Some(i) == last_positive_word && last_positive == Some(i);
                let prefix = options.prefix_search && is_last && !ends_with_separator;
                let max_typos = typos_for(&w, options.typos);
                parsed.terms.push(QueryTerm::Word(WordTerm {
                    text: w,
                    prefix,
                    max_typos,
                }));
            }
        }
    }
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> ParsedQuery {
        let typos = TypoTolerance::default();
        parse_query(
            q,
            &ParseOptions {
                typos: &typos,
                prefix_search: true,
                stop_words: &[],
                tokenization: &Tokenization::default(),
                max_terms: MAX_QUERY_TERMS,
            },
        )
    }

    fn word(text: &str, prefix: bool, max_typos: u8) -> QueryTerm {
        QueryTerm::Word(WordTerm {
            text: text.into(),
            prefix,
            max_typos,
        })
    }

    #[test]
    fn words_typos_and_last_prefix() {
        let p = parse("Quick brownish elephantine");
        assert_eq!(
            p.terms,
            vec![
                word("quick", false, 1),
                word("brownish", false, 1),
                word("elephantine", true, 2)
            ]
        );
        let p = parse("cat dog ");
        assert_eq!(p.terms, vec![word("cat", false, 0), word("dog", false, 0)]);
    }

    #[test]
    fn phrases_and_exclusions() {
        let p = parse("\"Griffith Observatory\" -closed -\"night sky\" tour");
        assert_eq!(
            p.terms,
            vec![
                QueryTerm::Phrase(vec!["griffith".into(), "observatory".into()]),
                word("tour", true, 0)
            ]
        );
        assert_eq!(
            p.excluded,
            vec![
                vec!["closed".to_string()],
                vec!["night".into(), "sky".into()]
            ]
        );
        // A minus inside a word is not an exclusion.
        let p = parse("super-man");
        assert_eq!(p.terms.len(), 2);
        assert!(p.excluded.is_empty());
        // An unclosed quote is read as plain words.
        let p = parse("\"open ended");
        assert_eq!(p.terms.len(), 2);
    }

    #[test]
    fn at_most_ten_terms_and_placeholder() {
        let q = (0..20)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(parse(&q).terms.len(), MAX_QUERY_TERMS);
        assert!(parse("   ").is_placeholder());
        assert!(parse("").is_placeholder());
        assert!(parse("-only").is_placeholder());
    }

    #[test]
    fn typo_thresholds_follow_settings() {
        let mut t = TypoTolerance::default();
        assert_eq!(typos_for("four", &t), 0);
        assert_eq!(typos_for("fives", &t), 1);
        assert_eq!(typos_for("ninechars", &t), 2);
        t.disable_on_numbers = true;
        assert_eq!(typos_for("123456789", &t), 0);
        t.enabled = false;
        assert_eq!(typos_for("ninechars", &t), 0);
    }
}
