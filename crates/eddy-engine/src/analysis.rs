//! Text analysis: how documents and queries become terms.
//!
//! eddy tokenizes once, here, for every layer: memtables index the tokens this module
//! produces, and the same tokens are handed to Tantivy as pre-tokenized text, so a document
//! has exactly the same terms, positions and length in a memtable and in a segment.
//!
//! Words are split at Unicode word boundaries (UAX #29); a segment is a word when it holds a
//! letter or a digit. Words are lowercased and folded: compatibility decomposition, then
//! combining marks dropped (`Café` → `cafe`). Words longer than [`MAX_TERM_BYTES`] are not
//! indexed.
//!
//! Positions encode the attribute: `rank << 16 | position within the attribute`, the way
//! Meilisearch numbers word positions, so a phrase never spans two attributes and later
//! ranking rules can tell which attribute matched.

use serde_json::Value;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;
use unicode_segmentation::UnicodeSegmentation;

use crate::document::Document;

/// Longest term indexed, in bytes.
pub const MAX_TERM_BYTES: usize = 255;
/// Positions within one attribute saturate at this value.
pub const MAX_POSITION_IN_ATTRIBUTE: u32 = 0xFFFF;
/// Gap between two values of the same attribute (array items), so phrases do not span them.
pub const VALUE_GAP: u32 = 8;

/// Lowercases and folds one word. Returns `None` for words that are not indexed.
pub fn normalize_word(word: &str) -> Option<String> {
    let out = if word.is_ascii() {
        word.to_ascii_lowercase()
    } else {
        word.nfkd()
            .filter(|c| !is_combining_mark(*c))
            .flat_map(char::to_lowercase)
            .collect()
    };
    if out.is_empty() || out.len() > MAX_TERM_BYTES {
        None
    } else {
        Some(out)
    }
}

/// A word of a text with its byte span in the original text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// Normalized term.
    pub term: String,
    /// Byte offset of the first byte in the original text.
    pub start: usize,
    /// Byte offset one past the last byte in the original text.
    pub end: usize,
}

/// Splits a text into normalized words.
pub fn words(text: &str) -> impl Iterator<Item = Word> + '_ {
    text.split_word_bound_indices().filter_map(|(start, seg)| {
        if !seg.chars().any(char::is_alphanumeric) {
            return None;
        }
        let term = normalize_word(seg)?;
        Some(Word {
            term,
            start,
            end: start + seg.len(),
        })
    })
}

/// One indexed token: a term at a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// Encoded position (`rank << 16 | position`).
    pub position: u32,
    /// Normalized term.
    pub term: String,
}

/// The result of analyzing a document: its tokens in position order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnalyzedDocument {
    /// Tokens sorted by position.
    pub tokens: Vec<Token>,
}

impl AnalyzedDocument {
    /// Number of tokens: the document length BM25 uses.
    pub fn len(&self) -> u32 {
        u32::try_from(self.tokens.len()).unwrap_or(u32::MAX)
    }

    /// Whether the document has no token.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

/// Encodes an attribute rank and a position in the attribute.
pub fn encode_position(rank: u32, position: u32) -> u32 {
    (rank.min(0xFFFF) << 16) | position.min(MAX_POSITION_IN_ATTRIBUTE)
}

/// The attribute rank of an encoded position.
pub fn position_rank(position: u32) -> u32 {
    position >> 16
}

/// Calls `f` with every searchable leaf of a document: its dotted path and the text to
/// index. Strings, numbers and booleans are searchable; arrays contribute each item; objects
/// are flattened into dotted paths. `f` gets `first_of_value = true` for each new array item.
pub fn for_each_leaf(doc: &Document, mut f: impl FnMut(&str, &str, bool)) {
    let mut path = String::new();
    for (k, v) in doc {
        path.clear();
        path.push_str(k);
        visit(&mut path, v, &mut f);
    }
}

fn visit(path: &mut String, value: &Value, f: &mut impl FnMut(&str, &str, bool)) {
    match value {
        Value::Null => {}
        Value::Bool(b) => f(path, if *b { "true" } else { "false" }, true),
        Value::Number(n) => f(path, &n.to_string(), true),
        Value::String(s) => f(path, s, true),
        Value::Array(items) => {
            for item in items {
                visit(path, item, f);
            }
        }
        Value::Object(map) => {
            let len = path.len();
            for (k, v) in map {
                path.push('.');
                path.push_str(k);
                visit(path, v, f);
                path.truncate(len);
            }
        }
    }
}

/// Analyzes a document: every searchable leaf is tokenized; `rank_of(path)` gives the
/// attribute rank of a leaf path, or `None` when the path is not searchable.
pub fn analyze_document(
    doc: &Document,
    mut rank_of: impl FnMut(&str) -> Option<u32>,
) -> AnalyzedDocument {
    // Next free position per rank; leaves of one rank may be spread over the document.
    let mut next: Vec<(u32, u32)> = Vec::new();
    let mut tokens = Vec::new();
    for_each_leaf(doc, |path, text, _| {
        let Some(rank) = rank_of(path) else { return };
        let slot = match next.iter().position(|(r, _)| *r == rank) {
            Some(i) => i,
            None => {
                next.push((rank, 0));
                next.len() - 1
            }
        };
        let mut pos = next[slot].1;
        let mut any = false;
        for word in words(text) {
            tokens.push(Token {
                position: encode_position(rank, pos),
                term: word.term,
            });
            pos = pos.saturating_add(1);
            any = true;
        }
        if any {
            next[slot].1 = pos.saturating_add(VALUE_GAP);
        }
    });
    // Stable: tokens of one rank keep their order, which is already position order.
    tokens.sort_by_key(|t| t.position);
    AnalyzedDocument { tokens }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn words_are_split_lowercased_and_folded() {
        let terms: Vec<String> = words("Café au LAIT, naïve-coöperation 42 l'été")
            .map(|w| w.term)
            .collect();
        assert_eq!(
            terms,
            vec!["cafe", "au", "lait", "naive", "cooperation", "42", "l'ete"]
        );
    }

    #[test]
    fn word_spans_point_into_the_original() {
        let text = "Hello, Wörld";
        let ws: Vec<Word> = words(text).collect();
        assert_eq!(&text[ws[1].start..ws[1].end], "Wörld");
        assert_eq!(ws[1].term, "world");
    }

    #[test]
    fn long_words_are_dropped() {
        let long = "a".repeat(MAX_TERM_BYTES + 1);
        assert_eq!(words(&long).count(), 0);
    }

    #[test]
    fn positions_encode_rank_and_gap_between_values() {
        let doc = match json!({"title": "Big cat", "tags": ["red fox", "dog"], "n": 3, "skip": "x"})
        {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        let analyzed = analyze_document(&doc, |p| match p {
            "title" => Some(0),
            "tags" => Some(1),
            "n" => Some(2),
            _ => None,
        });
        let got: Vec<(u32, u32, &str)> = analyzed
            .tokens
            .iter()
            .map(|t| {
                (
                    position_rank(t.position),
                    t.position & 0xFFFF,
                    t.term.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (0, 0, "big"),
                (0, 1, "cat"),
                (1, 0, "red"),
                (1, 1, "fox"),
                (1, 2 + VALUE_GAP, "dog"),
                (2, 0, "3"),
            ]
        );
        assert_eq!(analyzed.len(), 6);
    }
}
