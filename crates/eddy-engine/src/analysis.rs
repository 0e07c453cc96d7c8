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
    word_segments(text).filter_map(|(start, seg)| {
        let term = normalize_word(seg)?;
        Some(Word {
            term,
            start,
            end: start + seg.len(),
        })
    })
}

/// The segments between Unicode word boundaries (UAX #29) that are words, with their byte
/// offsets.
///
/// ASCII text, by far the most common, is scanned directly: in ASCII the rules come down
/// to runs of letters, digits and `_`, joined across one `:` `.` `'` between two letters or
/// one `,` `;` `.` `'` between two digits. The general table lookup of
/// `unicode-segmentation` was a third of analyzing a document. Any other text goes through
/// that crate; a test checks that both agree on ASCII.
fn word_segments(text: &str) -> WordSegments<'_> {
    if text.is_ascii() {
        WordSegments::Ascii { text, at: 0 }
    } else {
        WordSegments::Unicode(text.split_word_bound_indices().filter(is_word_segment))
    }
}

fn is_word_segment(&(_, seg): &(usize, &str)) -> bool {
    seg.chars().any(char::is_alphanumeric)
}

/// The crate's word-boundary segments, keeping the words.
type UnicodeWords<'a> =
    std::iter::Filter<unicode_segmentation::UWordBoundIndices<'a>, fn(&(usize, &'a str)) -> bool>;

/// Iterator of [`word_segments`].
enum WordSegments<'a> {
    Ascii { text: &'a str, at: usize },
    Unicode(UnicodeWords<'a>),
}

/// The UAX #29 word-break classes an ASCII byte can have, as far as words are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AsciiClass {
    Letter,
    Digit,
    /// `_` (ExtendNumLet): joins letters, digits and itself.
    Underscore,
    /// `:` (MidLetter): joins two letters.
    MidLetter,
    /// `,` `;` (MidNum): join two digits.
    MidNum,
    /// `.` (MidNumLet) and `'` (Single_Quote): join two letters or two digits.
    MidNumLet,
    Other,
}

fn ascii_class(b: u8) -> AsciiClass {
    match b {
        b'a'..=b'z' | b'A'..=b'Z' => AsciiClass::Letter,
        b'0'..=b'9' => AsciiClass::Digit,
        b'_' => AsciiClass::Underscore,
        b':' => AsciiClass::MidLetter,
        b',' | b';' => AsciiClass::MidNum,
        b'.' | b'\'' => AsciiClass::MidNumLet,
        _ => AsciiClass::Other,
    }
}

impl<'a> Iterator for WordSegments<'a> {
    type Item = (usize, &'a str);

    fn next(&mut self) -> Option<(usize, &'a str)> {
        use AsciiClass::{Digit, Letter, MidLetter, MidNum, MidNumLet, Underscore};
        let (text, at) = match self {
            WordSegments::Unicode(inner) => return inner.next(),
            WordSegments::Ascii { text, at } => (*text, at),
        };
        let bytes = text.as_bytes();
        loop {
            // A word starts at a letter, a digit or `_`.
            while *at < bytes.len()
                && !matches!(ascii_class(bytes[*at]), Letter | Digit | Underscore)
            {
                *at += 1;
            }
            if *at == bytes.len() {
                return None;
            }
            let start = *at;
            let mut has_alnum = false;
            loop {
                let class = ascii_class(bytes[*at]);
                has_alnum |= class != Underscore;
                *at += 1;
                let Some(&next) = bytes.get(*at) else { break };
                match ascii_class(next) {
                    Letter | Digit | Underscore => {}
                    mid => {
                        let after = bytes.get(*at + 1).map(|&b| ascii_class(b));
                        let joins = matches!(
                            (class, mid, after),
                            (Letter, MidLetter | MidNumLet, Some(Letter))
                                | (Digit, MidNum | MidNumLet, Some(Digit))
                        );
                        if !joins {
                            break;
                        }
                        *at += 1;
                    }
                }
            }
            // A run of `_` alone is a segment without a letter or digit: not a word.
            if has_alnum {
                return Some((start, &text[start..*at]));
            }
        }
    }
}

/// How an index's settings change word boundaries: `separatorTokens` split words,
/// `nonSeparatorTokens` join the words they sit between (`foo@bar`), `dictionary` entries
/// are always one word (`J.R.R.`). The default changes nothing, and [`words_with`] is then
/// exactly [`words`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tokenization {
    separators: Vec<String>,
    non_separators: Vec<String>,
    dictionary: Vec<String>,
}

impl Tokenization {
    /// The tokenization of an index's settings.
    pub fn from_settings(settings: &crate::settings::Settings) -> Tokenization {
        let clean = |v: &[String]| -> Vec<String> {
            let mut out: Vec<String> = v.iter().filter(|s| !s.is_empty()).cloned().collect();
            // Longest first, so that the longest entry wins where several start together.
            out.sort_by_key(|s| std::cmp::Reverse(s.len()));
            out.dedup();
            out
        };
        Tokenization {
            separators: clean(&settings.separator_tokens),
            non_separators: clean(&settings.non_separator_tokens),
            dictionary: clean(&settings.dictionary),
        }
    }

    /// Whether it changes nothing.
    pub fn is_default(&self) -> bool {
        self.separators.is_empty() && self.non_separators.is_empty() && self.dictionary.is_empty()
    }

    fn entry_at<'a>(list: &'a [String], text: &str, at: usize) -> Option<&'a str> {
        list.iter()
            .find(|e| text[at..].starts_with(e.as_str()))
            .map(String::as_str)
    }
}

/// Splits a text into normalized words under a [`Tokenization`].
pub fn words_with(text: &str, tok: &Tokenization) -> Vec<Word> {
    if tok.is_default() {
        return words(text).collect();
    }
    let mut out = Vec::new();
    // Regions between dictionary entries and separator tokens.
    let mut region_start = 0;
    let mut at = 0;
    while at < text.len() {
        if !text.is_char_boundary(at) {
            at += 1;
            continue;
        }
        if let Some(entry) = Tokenization::entry_at(&tok.dictionary, text, at) {
            region_words(text, region_start, at, tok, &mut out);
            if let Some(term) = normalize_word(entry) {
                out.push(Word {
                    term,
                    start: at,
                    end: at + entry.len(),
                });
            }
            at += entry.len();
            region_start = at;
            continue;
        }
        if let Some(sep) = Tokenization::entry_at(&tok.separators, text, at) {
            region_words(text, region_start, at, tok, &mut out);
            at += sep.len();
            region_start = at;
            continue;
        }
        at += 1;
    }
    region_words(text, region_start, text.len(), tok, &mut out);
    out
}

/// Words of `text[from..to]`: Unicode word boundaries, with runs of words and
/// non-separator tokens joined into one word.
fn region_words(text: &str, from: usize, to: usize, tok: &Tokenization, out: &mut Vec<Word>) {
    if from >= to {
        return;
    }
    let region = &text[from..to];
    let is_word = |seg: &str| seg.chars().any(char::is_alphanumeric);
    let is_joiner = |seg: &str| {
        tok.non_separators.iter().any(|n| n == seg)
            || (!seg.is_empty()
                && seg
                    .chars()
                    .all(|c| tok.non_separators.iter().any(|n| n.chars().eq([c]))))
    };
    let mut run: Option<(usize, usize, bool)> = None;
    let flush = |run: &mut Option<(usize, usize, bool)>, out: &mut Vec<Word>| {
        if let Some((s, e, has_word)) = run.take()
            && has_word
            && let Some(term) = normalize_word(&region[s..e])
        {
            out.push(Word {
                term,
                start: from + s,
                end: from + e,
            });
        }
    };
    for (start, seg) in region.split_word_bound_indices() {
        let word = is_word(seg);
        if word || (!tok.non_separators.is_empty() && is_joiner(seg)) {
            let end = start + seg.len();
            run = match run {
                Some((s, e, has)) if e == start && !tok.non_separators.is_empty() => {
                    Some((s, end, has || word))
                }
                other => {
                    let mut prev = other;
                    flush(&mut prev, out);
                    Some((start, end, word))
                }
            };
        } else {
            flush(&mut run, out);
        }
    }
    flush(&mut run, out);
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
    rank_of: impl FnMut(&str) -> Option<u32>,
) -> AnalyzedDocument {
    analyze_document_with(doc, &Tokenization::default(), rank_of)
}

/// [`analyze_document`] under a [`Tokenization`].
pub fn analyze_document_with(
    doc: &Document,
    tok: &Tokenization,
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
        for word in words_with(text, tok) {
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

/// A document's analysis in the form the write path stores: its distinct terms, each with
/// its positions (ascending), in three buffers instead of a `String` per token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocTerms {
    /// The distinct terms, concatenated.
    text: String,
    /// Per distinct term: byte range in `text` and range in `positions`.
    terms: Vec<TermSpan>,
    positions: Vec<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TermSpan {
    start: u32,
    end: u32,
    pos_start: u32,
    pos_end: u32,
}

impl DocTerms {
    /// Number of tokens: the document length BM25 uses.
    pub fn len(&self) -> u32 {
        u32::try_from(self.positions.len()).unwrap_or(u32::MAX)
    }

    /// Whether the document has no token.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// Number of distinct terms.
    pub fn term_count(&self) -> usize {
        self.terms.len()
    }

    /// Distinct terms with their positions (ascending), in no particular order (the order of
    /// their hashes; the same for the same tokens).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u32])> + '_ {
        self.terms.iter().map(|t| {
            (
                &self.text[t.start as usize..t.end as usize],
                &self.positions[t.pos_start as usize..t.pos_end as usize],
            )
        })
    }

    /// The compact form of an [`AnalyzedDocument`].
    pub fn from_tokens(tokens: &[Token]) -> DocTerms {
        let mut text = String::new();
        let mut spans = Vec::with_capacity(tokens.len());
        for t in tokens {
            let start = u32::try_from(text.len()).unwrap_or(u32::MAX);
            text.push_str(&t.term);
            spans.push((
                t.position,
                start,
                u32::try_from(text.len()).unwrap_or(u32::MAX),
            ));
        }
        let mut keys = Vec::new();
        DocTerms::grouped(&text, &spans, &mut keys)
    }

    /// Groups tokens — `(position, start, end)` of their terms in `text` — by term: sorted by
    /// the terms' hashes (an integer sort; sorting by the strings themselves was about half
    /// of analyzing a 1 KB document), then by position. Terms with equal hashes but other
    /// bytes are told apart by their text. `keys` is a reusable buffer.
    fn grouped(
        text: &str,
        tokens: &[(u32, u32, u32)],
        keys: &mut Vec<(u64, u32, u32)>,
    ) -> DocTerms {
        use std::hash::BuildHasher;
        let hasher = rustc_hash::FxBuildHasher;
        Self::grouped_by(text, tokens, keys, |term| hasher.hash_one(term))
    }

    /// [`DocTerms::grouped`] with the given term hash.
    fn grouped_by(
        text: &str,
        tokens: &[(u32, u32, u32)],
        keys: &mut Vec<(u64, u32, u32)>,
        hash: impl Fn(&[u8]) -> u64,
    ) -> DocTerms {
        let term = |i: u32| {
            let t = tokens[i as usize];
            &text[t.1 as usize..t.2 as usize]
        };
        keys.clear();
        keys.extend(
            (0u32..)
                .zip(tokens)
                .map(|(i, t)| (hash(term(i).as_bytes()), t.0, i)),
        );
        // By hash and position only (positions are unique, so the order is total): comparing
        // the terms of equal hashes, which is every pair of occurrences of a word, was half of
        // the sort on long documents.
        keys.sort_unstable_by_key(|k| (k.0, k.1));
        // Runs of one hash are one term each, but for a collision: different terms with one
        // hash would interleave, so such a run is sorted by term, then position. The first
        // pass also sizes the buffers exactly (documents are analyzed ahead and wait in the
        // queue, and reallocating two buffers per document to shrink them cost more than
        // the sort).
        let mut collisions: Vec<(usize, usize)> = Vec::new();
        let (mut distinct, mut bytes) = (0usize, 0usize);
        let mut start = 0;
        while start < keys.len() {
            let hash = keys[start].0;
            let first = term(keys[start].2);
            let mut end = start + 1;
            let mut mixed = false;
            while end < keys.len() && keys[end].0 == hash {
                mixed |= term(keys[end].2) != first;
                end += 1;
            }
            if mixed {
                let run = &mut keys[start..end];
                run.sort_unstable_by(|a, b| term(a.2).cmp(term(b.2)).then(a.1.cmp(&b.1)));
                for (i, k) in run.iter().enumerate() {
                    if i == 0 || term(run[i - 1].2) != term(k.2) {
                        distinct += 1;
                        bytes += term(k.2).len();
                    }
                }
                collisions.push((start, end));
            } else {
                distinct += 1;
                bytes += first.len();
            }
            start = end;
        }
        let mut out = DocTerms {
            text: String::with_capacity(bytes),
            terms: Vec::with_capacity(distinct),
            positions: Vec::with_capacity(keys.len()),
        };
        let mut collisions = collisions.into_iter().peekable();
        let mut start = 0;
        while start < keys.len() {
            if let Some((_, end)) = collisions.next_if(|(s, _)| *s == start) {
                for &(_, position, i) in &keys[start..end] {
                    out.push(term(i), position);
                }
                start = end;
                continue;
            }
            let hash = keys[start].0;
            let end = start + keys[start..].partition_point(|k| k.0 == hash);
            let pos_start = u32::try_from(out.positions.len()).unwrap_or(u32::MAX);
            out.positions.extend(keys[start..end].iter().map(|k| k.1));
            let text_start = u32::try_from(out.text.len()).unwrap_or(u32::MAX);
            out.text.push_str(term(keys[start].2));
            out.terms.push(TermSpan {
                start: text_start,
                end: u32::try_from(out.text.len()).unwrap_or(u32::MAX),
                pos_start,
                pos_end: u32::try_from(out.positions.len()).unwrap_or(u32::MAX),
            });
            start = end;
        }
        out
    }

    /// Appends a token; tokens must come grouped by term, positions ascending.
    fn push(&mut self, term: &str, position: u32) {
        let same = self
            .terms
            .last()
            .is_some_and(|l| &self.text[l.start as usize..l.end as usize] == term);
        let pos = u32::try_from(self.positions.len()).unwrap_or(u32::MAX);
        self.positions.push(position);
        if same {
            if let Some(last) = self.terms.last_mut() {
                last.pos_end = pos + 1;
            }
            return;
        }
        let start = u32::try_from(self.text.len()).unwrap_or(u32::MAX);
        self.text.push_str(term);
        self.terms.push(TermSpan {
            start,
            end: u32::try_from(self.text.len()).unwrap_or(u32::MAX),
            pos_start: pos,
            pos_end: pos + 1,
        });
    }
}

/// Analyzes documents into [`DocTerms`], reusing its buffers from one document to the next.
/// Produces exactly the terms and positions of [`analyze_document_with`].
#[derive(Debug, Default)]
pub struct Analyzer {
    /// Every token's term, concatenated (duplicates included).
    scratch: String,
    /// Per token: position, byte range in `scratch`.
    tokens: Vec<(u32, u32, u32)>,
    /// Per token: hash of its term, position, index in `tokens` (see [`DocTerms::grouped`]).
    keys: Vec<(u64, u32, u32)>,
    /// Next free position per rank.
    next: Vec<(u32, u32)>,
}

impl Analyzer {
    /// Analyzes a document: `rank_of(path)` gives the attribute rank of a leaf path, or `None`
    /// when the path is not searchable.
    pub fn analyze(
        &mut self,
        doc: &Document,
        tok: &Tokenization,
        mut rank_of: impl FnMut(&str) -> Option<u32>,
    ) -> DocTerms {
        self.scratch.clear();
        self.tokens.clear();
        self.next.clear();
        let Analyzer {
            scratch,
            tokens,
            keys,
            next,
        } = self;
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
            let before = tokens.len();
            let mut push = |scratch: &mut String, start: usize| {
                tokens.push((
                    encode_position(rank, pos),
                    u32::try_from(start).unwrap_or(u32::MAX),
                    u32::try_from(scratch.len()).unwrap_or(u32::MAX),
                ));
                pos = pos.saturating_add(1);
            };
            if tok.is_default() {
                for (_, seg) in word_segments(text) {
                    let start = scratch.len();
                    if normalize_word_into(seg, scratch) {
                        push(scratch, start);
                    }
                }
            } else {
                for word in words_with(text, tok) {
                    let start = scratch.len();
                    scratch.push_str(&word.term);
                    push(scratch, start);
                }
            }
            if tokens.len() > before {
                next[slot].1 = pos.saturating_add(VALUE_GAP);
            }
        });
        DocTerms::grouped(scratch, tokens, keys)
    }
}

/// [`normalize_word`] appending to `out`; returns whether the word is indexed (when it is
/// not, `out` is left as it was).
fn normalize_word_into(word: &str, out: &mut String) -> bool {
    let start = out.len();
    if word.is_ascii() {
        out.extend(word.bytes().map(|b| char::from(b.to_ascii_lowercase())));
    } else {
        out.extend(
            word.nfkd()
                .filter(|c| !is_combining_mark(*c))
                .flat_map(char::to_lowercase),
        );
    }
    let len = out.len() - start;
    if len == 0 || len > MAX_TERM_BYTES {
        out.truncate(start);
        false
    } else {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

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

    /// The word segments of the crate, the reference for the ASCII scan.
    fn reference_segments(text: &str) -> Vec<(usize, &str)> {
        text.split_word_bound_indices()
            .filter(is_word_segment)
            .collect()
    }

    #[test]
    fn ascii_word_segments_follow_the_word_boundary_rules() {
        let cases = [
            ("can't stop", vec!["can't", "stop"]),
            (
                "3.14 and 1,000,000.50;2",
                vec!["3.14", "and", "1,000,000.50;2"],
            ),
            ("a.b.c a:b a..b a.", vec!["a.b.c", "a:b", "a", "b", "a"]),
            (
                "1.a a.1 1:2 a,b",
                vec!["1", "a", "a", "1", "1", "2", "a", "b"],
            ),
            (
                "__init__ snake_case _ __ x_1",
                vec!["__init__", "snake_case", "x_1"],
            ),
            ("a_.b 3a a3 'quoted'", vec!["a_", "b", "3a", "a3", "quoted"]),
        ];
        for (text, want) in cases {
            let got: Vec<&str> = word_segments(text).map(|(_, s)| s).collect();
            assert_eq!(got, want, "{text:?}");
            assert_eq!(
                word_segments(text).collect::<Vec<_>>(),
                reference_segments(text)
            );
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// On text made of the characters the rules single out, the scan and the crate
        /// agree on every word and its offset.
        #[test]
        fn ascii_word_segments_match_the_crate(text in "[aZ9_.:,;'\"\\- \n\r\t!@#]{0,40}") {
            proptest::prop_assert_eq!(
                word_segments(&text).collect::<Vec<_>>(),
                reference_segments(&text)
            );
        }

        /// And on any ASCII text.
        #[test]
        fn any_ascii_word_segments_match_the_crate(text in "[\\x00-\\x7f]{0,60}") {
            proptest::prop_assert_eq!(
                word_segments(&text).collect::<Vec<_>>(),
                reference_segments(&text)
            );
        }
    }

    #[test]
    fn word_spans_point_into_the_original() {
        let text = "Hello, Wörld";
        let ws: Vec<Word> = words(text).collect();
        assert_eq!(&text[ws[1].start..ws[1].end], "Wörld");
        assert_eq!(ws[1].term, "world");
    }

    #[test]
    fn tokenization_settings_change_word_boundaries() {
        let tok = Tokenization {
            separators: vec!["|".into()],
            non_separators: vec!["@".into()],
            dictionary: vec!["J.R.R.".into()],
        };
        let terms: Vec<String> = words_with("mail foo@bar a|b by J.R.R. Tolkien", &tok)
            .into_iter()
            .map(|w| w.term)
            .collect();
        assert_eq!(
            terms,
            vec!["mail", "foo@bar", "a", "b", "by", "j.r.r.", "tolkien"]
        );
        let text = "Café au LAIT, naïve-coöperation 42 l'été";
        assert_eq!(
            words_with(text, &Tokenization::default()),
            words(text).collect::<Vec<_>>()
        );
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
    proptest::proptest! {
        /// Grouping gives every term once with all its positions ascending, whatever the
        /// hash: the real one, one that makes every term collide, and one by length.
        #[test]
        fn grouping_matches_a_map_of_terms(
            words in proptest::collection::vec(0usize..6, 0..40),
            ranks in proptest::collection::vec(0u32..3, 40),
        ) {
            let vocabulary = ["a", "b", "ab", "ba", "abc", "c"];
            let mut text = String::new();
            let mut tokens = Vec::new();
            let mut next = [0u32; 3];
            let mut reference: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
            for (&w, &rank) in words.iter().zip(&ranks) {
                let start = text.len() as u32;
                text.push_str(vocabulary[w]);
                let position = encode_position(rank, next[rank as usize]);
                next[rank as usize] += 1;
                tokens.push((position, start, text.len() as u32));
                reference.entry(vocabulary[w]).or_default().push(position);
            }
            for positions in reference.values_mut() {
                positions.sort_unstable();
            }
            type Hash<'a> = &'a dyn Fn(&[u8]) -> u64;
            let hashes: [Hash<'_>; 3] = [
                &|t| {
                    use std::hash::BuildHasher;
                    rustc_hash::FxBuildHasher.hash_one(t)
                },
                &|_| 7,
                &|t| t.len() as u64,
            ];
            for hash in hashes {
                let grouped = DocTerms::grouped_by(&text, &tokens, &mut Vec::new(), hash);
                let got: Vec<(&str, Vec<u32>)> =
                    grouped.iter().map(|(t, p)| (t, p.to_vec())).collect();
                let mut sorted = got.clone();
                sorted.sort();
                let expected: Vec<(&str, Vec<u32>)> =
                    reference.iter().map(|(t, p)| (*t, p.clone())).collect();
                proptest::prop_assert_eq!(sorted, expected);
                proptest::prop_assert_eq!(grouped.len() as usize, words.len());
            }
        }
    }

    #[test]
    fn compact_analysis_matches_the_reference() {
        let doc = match json!({
            "title": "Big cat, big CAT", "tags": ["red fox", "dog", "Café"], "n": 3,
            "nested": {"a": "the the the", "b": ["x y", "x"]}, "skip": "never",
            "long": "a".repeat(MAX_TERM_BYTES + 1) + " short",
        }) {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        let rank = |p: &str| match p {
            "skip" => None,
            "nested.b" => Some(1),
            other => Some(other.len() as u32),
        };
        for tok in [
            Tokenization::default(),
            Tokenization {
                separators: vec!["|".into()],
                non_separators: vec!["@".into()],
                dictionary: vec!["big cat".into()],
            },
        ] {
            let reference = analyze_document_with(&doc, &tok, rank);
            let mut analyzer = Analyzer::default();
            // Twice: the buffers are reused.
            for _ in 0..2 {
                let compact = analyzer.analyze(&doc, &tok, rank);
                assert_eq!(compact, DocTerms::from_tokens(&reference.tokens));
                assert_eq!(compact.len(), reference.len());
            }
        }
        let compact = Analyzer::default().analyze(&doc, &Tokenization::default(), rank);
        let the: Vec<(&str, &[u32])> = compact.iter().filter(|(t, _)| *t == "the").collect();
        assert_eq!(
            the,
            vec![("the", &[8 << 16, (8 << 16) | 1, (8 << 16) | 2][..])]
        );
    }
}
