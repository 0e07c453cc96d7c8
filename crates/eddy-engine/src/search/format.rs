//! Formatting hits: `_formatted` (highlighting and cropping) and `_matchesPosition`.
//!
//! A document word *matches* when its normalized form equals a query word, is within the
//! word's typo budget of it (optimal string alignment distance, a transposition counts one),
//! or — for the last query word — starts with it. Phrase words match exactly. A prefix match
//! highlights the matched prefix only, as Meilisearch does; other matches the whole word.
//!
//! Cropping keeps `cropLength` words around the best window (the one holding the most
//! distinct matched words, the earliest among ties), and adds `cropMarker` where text was cut.
//! Positions in `_matchesPosition` are byte offsets and lengths in the original string.

use serde_json::{Map, Value, json};

use super::query::{ParsedQuery, QueryTerm};
use crate::analysis::{Tokenization, words_with};

/// What to format.
#[derive(Debug, Clone, PartialEq)]
pub struct FormatOptions {
    /// Attributes to highlight (`*` = all).
    pub highlight: Vec<String>,
    /// Attributes to crop (`*` = all), with an optional per-attribute length (`attr:5`).
    pub crop: Vec<(String, Option<usize>)>,
    /// Default crop length in words.
    pub crop_length: usize,
    /// Marker where text is cut.
    pub crop_marker: String,
    /// Tag before a highlighted match.
    pub pre_tag: String,
    /// Tag after a highlighted match.
    pub post_tag: String,
}

impl Default for FormatOptions {
    fn default() -> Self {
        FormatOptions {
            highlight: Vec::new(),
            crop: Vec::new(),
            crop_length: 10,
            crop_marker: "…".into(),
            pre_tag: "<em>".into(),
            post_tag: "</em>".into(),
        }
    }
}

impl FormatOptions {
    /// Whether `_formatted` is asked for.
    pub fn wanted(&self) -> bool {
        !self.highlight.is_empty() || !self.crop.is_empty()
    }
}

struct QueryWord {
    text: Vec<char>,
    prefix: bool,
    max_typos: u8,
}

/// Decides which words of a text match a query.
pub struct Matcher {
    words: Vec<QueryWord>,
    tokenization: Tokenization,
}

/// A match in a text: byte range, and how many bytes of it to highlight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hit {
    start: usize,
    end: usize,
    highlight_end: usize,
    word_index: usize,
    query_word: usize,
}

pub(crate) fn osa_distance(a: &[char], b: &[char], limit: usize) -> usize {
    if a.len().abs_diff(b.len()) > limit {
        return limit + 1;
    }
    let (n, m) = (a.len(), b.len());
    let mut d = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[n][m]
}

impl Matcher {
    /// The matcher of a parsed query.
    pub fn new(parsed: &ParsedQuery) -> Matcher {
        let mut words = Vec::new();
        for term in &parsed.terms {
            match term {
                QueryTerm::Word(w) => words.push(QueryWord {
                    text: w.text.chars().collect(),
                    prefix: w.prefix,
                    max_typos: w.max_typos,
                }),
                QueryTerm::Phrase(p) => words.extend(p.iter().map(|w| QueryWord {
                    text: w.chars().collect(),
                    prefix: false,
                    max_typos: 0,
                })),
            }
        }
        Matcher {
            words,
            tokenization: Tokenization::default(),
        }
    }

    /// The matcher of a query string under an index's settings.
    pub fn for_query(q: Option<&str>, settings: &crate::settings::Settings) -> Matcher {
        let mut request = super::SearchRequest {
            q: q.map(str::to_string),
            ..super::SearchRequest::default()
        };
        if super::bm25_matching(settings) {
            request.strategy = super::MatchingStrategy::Any;
        }
        let mut m = Matcher::new(&super::parse(&request, settings));
        m.tokenization = Tokenization::from_settings(settings);
        m
    }

    /// Whether the query has no word (nothing is ever highlighted).
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Which query word a normalized document word matches, and how many of its characters
    /// to highlight (`None` = all).
    fn match_word(&self, term: &str) -> Option<(usize, Option<usize>)> {
        let chars: Vec<char> = term.chars().collect();
        for (i, q) in self.words.iter().enumerate() {
            if chars == q.text {
                return Some((i, None));
            }
        }
        for (i, q) in self.words.iter().enumerate() {
            let max = usize::from(q.max_typos);
            if max > 0 && osa_distance(&chars, &q.text, max) <= max {
                return Some((i, None));
            }
        }
        for (i, q) in self.words.iter().enumerate() {
            if q.prefix && chars.len() > q.text.len() && chars.starts_with(&q.text) {
                return Some((i, Some(q.text.len())));
            }
        }
        None
    }

    fn hits(&self, text: &str) -> (Vec<(usize, usize)>, Vec<Hit>) {
        let mut spans = Vec::new();
        let mut hits = Vec::new();
        for (index, w) in words_with(text, &self.tokenization).into_iter().enumerate() {
            spans.push((w.start, w.end));
            if let Some((query_word, chars)) = self.match_word(&w.term) {
                let highlight_end = match chars {
                    None => w.end,
                    Some(n) => text[w.start..w.end]
                        .char_indices()
                        .nth(n)
                        .map_or(w.end, |(b, _)| w.start + b),
                };
                hits.push(Hit {
                    start: w.start,
                    end: w.end,
                    highlight_end,
                    word_index: index,
                    query_word,
                });
            }
        }
        (spans, hits)
    }

    /// `(start, length)` in bytes of every match in a text.
    pub fn positions(&self, text: &str) -> Vec<(usize, usize)> {
        self.hits(text)
            .1
            .iter()
            .map(|h| (h.start, h.highlight_end - h.start))
            .collect()
    }

    /// Formats one string: crops to `crop` words when given, highlights when `highlight`.
    pub fn format_text(
        &self,
        text: &str,
        highlight: bool,
        crop: Option<usize>,
        options: &FormatOptions,
    ) -> String {
        let (spans, hits) = self.hits(text);
        let (from, to, cut_before, cut_after) = match crop {
            Some(n) if spans.len() > n => {
                let n = n.max(1);
                let start_word = best_window(&hits, spans.len(), n);
                let end_word = (start_word + n).min(spans.len());
                (
                    spans[start_word].0,
                    spans[end_word - 1].1,
                    start_word > 0,
                    end_word < spans.len(),
                )
            }
            Some(0) => (0, 0, false, false),
            _ => (0, text.len(), false, false),
        };
        let mut out = String::with_capacity(to - from + 16);
        if cut_before {
            out.push_str(&options.crop_marker);
        }
        let mut at = from;
        if highlight {
            for h in hits.iter().filter(|h| h.start >= from && h.end <= to) {
                out.push_str(&text[at..h.start]);
                out.push_str(&options.pre_tag);
                out.push_str(&text[h.start..h.highlight_end]);
                out.push_str(&options.post_tag);
                at = h.highlight_end;
            }
        }
        out.push_str(&text[at..to]);
        if cut_after {
            out.push_str(&options.crop_marker);
        }
        out
    }
}

/// First word of the window of `n` words holding the most distinct query words.
fn best_window(hits: &[Hit], total_words: usize, n: usize) -> usize {
    if hits.is_empty() {
        return 0;
    }
    let mut best = (0usize, 0usize);
    for h in hits {
        // Windows that start a little before the match, so it is not at the very edge.
        let start = h
            .word_index
            .saturating_sub((n - 1) / 2)
            .min(total_words.saturating_sub(n));
        let mut seen: Vec<usize> = hits
            .iter()
            .filter(|o| o.word_index >= start && o.word_index < start + n)
            .map(|o| o.query_word)
            .collect();
        seen.sort_unstable();
        seen.dedup();
        if seen.len() > best.0 {
            best = (seen.len(), start);
        }
    }
    best.1
}

fn selected(list: &[String], path: &str) -> bool {
    list.iter().any(|a| {
        a == "*"
            || a == path
            || path
                .strip_prefix(a.as_str())
                .is_some_and(|r| r.starts_with('.'))
    })
}

fn crop_of(list: &[(String, Option<usize>)], path: &str, default: usize) -> Option<usize> {
    list.iter()
        .find(|(a, _)| selected(std::slice::from_ref(a), path))
        .map(|(_, n)| n.unwrap_or(default))
}

fn format_value(value: &Value, path: &str, matcher: &Matcher, options: &FormatOptions) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let p = format!("{path}.{k}");
                out.insert(k.clone(), format_value(v, &p, matcher, options));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| format_value(v, path, matcher, options))
                .collect(),
        ),
        Value::String(_) | Value::Number(_) | Value::Bool(_) => {
            let highlight = selected(&options.highlight, path);
            let crop = crop_of(&options.crop, path, options.crop_length);
            if !highlight && crop.is_none() {
                return value.clone();
            }
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Value::String(matcher.format_text(&text, highlight, crop, options))
        }
        Value::Null => Value::Null,
    }
}

/// `_formatted` of a document (already reduced to the attributes to show).
pub fn formatted(doc: &Map<String, Value>, matcher: &Matcher, options: &FormatOptions) -> Value {
    let mut out = Map::new();
    for (k, v) in doc {
        out.insert(k.clone(), format_value(v, k, matcher, options));
    }
    Value::Object(out)
}

/// `_matchesPosition` of a document: for each attribute path with matches, their byte
/// `start` and `length`.
pub fn matches_position(doc: &Map<String, Value>, matcher: &Matcher) -> Value {
    let mut out = Map::new();
    fn walk(v: &Value, path: &str, matcher: &Matcher, out: &mut Map<String, Value>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    walk(v, &format!("{path}.{k}"), matcher, out);
                }
            }
            Value::Array(items) => {
                for item in items {
                    walk(item, path, matcher, out);
                }
            }
            Value::String(s) => push(path, matcher.positions(s), out),
            Value::Number(n) => push(path, matcher.positions(&n.to_string()), out),
            Value::Bool(_) | Value::Null => {}
        }
    }
    fn push(path: &str, found: Vec<(usize, usize)>, out: &mut Map<String, Value>) {
        if found.is_empty() {
            return;
        }
        let list = out
            .entry(path.to_string())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(items) = list {
            items.extend(
                found
                    .into_iter()
                    .map(|(start, length)| json!({"start": start, "length": length})),
            );
        }
    }
    if !matcher.is_empty() {
        for (k, v) in doc {
            walk(v, k, matcher, &mut out);
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::query::{ParseOptions, parse_query};
    use crate::settings::TypoTolerance;

    fn matcher(q: &str) -> Matcher {
        let typos = TypoTolerance::default();
        Matcher::new(&parse_query(
            q,
            &ParseOptions {
                typos: &typos,
                prefix_search: true,
                stop_words: &[],
                tokenization: &Tokenization::default(),
                max_terms: crate::search::query::MAX_QUERY_TERMS,
            },
        ))
    }

    #[test]
    fn highlights_exact_typo_and_prefix_matches() {
        let m = matcher("shawshank redemtion sta");
        let o = FormatOptions::default();
        assert_eq!(
            m.format_text("The Shawshank Redemption, a Star", true, None, &o),
            "The <em>Shawshank</em> <em>Redemption</em>, a <em>Sta</em>r"
        );
    }

    #[test]
    fn crops_around_matches_with_markers() {
        let m = matcher("fox");
        let o = FormatOptions::default();
        let text = "one two three four five six seven eight nine fox ten eleven twelve";
        assert_eq!(
            m.format_text(text, true, Some(4), &o),
            "…nine <em>fox</em> ten eleven…"
        );
        assert_eq!(
            matcher("zzz").format_text(text, false, Some(3), &o),
            "one two three…"
        );
        assert_eq!(m.positions(text), vec![(45, 3)]);
    }

    #[test]
    fn formats_selected_attributes_only() {
        let m = matcher("star");
        let o = FormatOptions {
            highlight: vec!["title".into()],
            ..FormatOptions::default()
        };
        let doc = json!({"title": "Star Wars", "overview": "A star", "year": 1977});
        let Value::Object(doc) = doc else {
            unreachable!()
        };
        assert_eq!(
            formatted(&doc, &m, &o),
            json!({"title": "<em>Star</em> Wars", "overview": "A star", "year": 1977})
        );
        assert_eq!(
            matches_position(&doc, &m),
            json!({"title": [{"start": 0, "length": 4}], "overview": [{"start": 2, "length": 4}]})
        );
    }
}
