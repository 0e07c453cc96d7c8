//! Formatting hits: `_formatted` (highlighting and cropping) and `_matchesPosition`.
//!
//! A document word *matches* when its normalized form equals a query word, is within the
//! word's typo budget of it (optimal string alignment distance, a transposition counts one),
//! or — for the last query word — starts with it. Phrase words match exactly. A prefix match
//! highlights the matched prefix only, as Meilisearch does; other matches the whole word.
//! Words matched through the `synonyms` setting count too, in the direction it declares: a
//! one-word synonym matches exactly, a multi-word one where its words follow each other
//! (each of them is highlighted).
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
    /// The query word a match counts for (cropping counts distinct ones).
    group: usize,
}

/// Decides which words of a text match a query.
pub struct Matcher {
    words: Vec<QueryWord>,
    /// Multi-word synonyms: words that match where they follow each other, and the query
    /// word they count for.
    sequences: Vec<(Vec<String>, usize)>,
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
        Matcher::with_synonyms(parsed, &[])
    }

    /// The matcher of a parsed query and its synonyms (runs of term indices, value words).
    fn with_synonyms(
        parsed: &ParsedQuery,
        synonyms: &[(std::ops::Range<usize>, Vec<String>)],
    ) -> Matcher {
        let mut words = Vec::new();
        // Index in `words` of each term's first word.
        let mut first_word = Vec::with_capacity(parsed.terms.len());
        for term in &parsed.terms {
            first_word.push(words.len());
            match term {
                QueryTerm::Word(w) => words.push(QueryWord {
                    text: w.text.chars().collect(),
                    prefix: w.prefix,
                    max_typos: w.max_typos,
                    group: words.len(),
                }),
                QueryTerm::Phrase(p) => {
                    for w in p {
                        words.push(QueryWord {
                            text: w.chars().collect(),
                            prefix: false,
                            max_typos: 0,
                            group: words.len(),
                        });
                    }
                }
            }
        }
        let mut sequences = Vec::new();
        for (run, value) in synonyms {
            let Some(&group) = first_word.get(run.start) else {
                continue;
            };
            match value.as_slice() {
                [word] => words.push(QueryWord {
                    text: word.chars().collect(),
                    prefix: false,
                    max_typos: 0,
                    group,
                }),
                [] => {}
                several => sequences.push((several.to_vec(), group)),
            }
        }
        Matcher {
            words,
            sequences,
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
        let parsed = super::parse(&request, settings);
        let synonyms = super::pipeline::synonyms_of(&parsed, settings);
        let mut m = Matcher::with_synonyms(&parsed, &synonyms);
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
        for q in &self.words {
            if chars == q.text {
                return Some((q.group, None));
            }
        }
        for q in &self.words {
            let max = usize::from(q.max_typos);
            if max > 0 && osa_distance(&chars, &q.text, max) <= max {
                return Some((q.group, None));
            }
        }
        for q in &self.words {
            if q.prefix && chars.len() > q.text.len() && chars.starts_with(&q.text) {
                return Some((q.group, Some(q.text.len())));
            }
        }
        None
    }

    fn hits(&self, text: &str) -> (Vec<(usize, usize)>, Vec<Hit>) {
        let words = words_with(text, &self.tokenization);
        let spans: Vec<(usize, usize)> = words.iter().map(|w| (w.start, w.end)).collect();
        let mut matched: Vec<Option<(usize, Option<usize>)>> =
            words.iter().map(|w| self.match_word(&w.term)).collect();
        for (sequence, group) in &self.sequences {
            let n = sequence.len();
            if n == 0 || n > words.len() {
                continue;
            }
            for start in 0..=words.len() - n {
                if words[start..start + n]
                    .iter()
                    .zip(sequence)
                    .all(|(w, s)| &w.term == s)
                {
                    for m in &mut matched[start..start + n] {
                        if m.is_none_or(|(_, chars)| chars.is_some()) {
                            *m = Some((*group, None));
                        }
                    }
                }
            }
        }
        let mut hits = Vec::new();
        for (index, (w, m)) in words.iter().zip(matched).enumerate() {
            let Some((query_word, chars)) = m else {
                continue;
            };
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

#[cfg(test)]
mod synonym_tests {
    use super::*;
    use crate::settings::Settings;

    fn with_synonyms(synonyms: Value) -> Settings {
        Settings {
            synonyms: serde_json::from_value(synonyms).unwrap(),
            ..Settings::default()
        }
    }

    #[test]
    fn highlights_and_positions_synonym_matches_in_the_declared_direction() {
        let settings = with_synonyms(json!({
            "nyc": ["new york", "big apple"],
            "san francisco": ["sf"],
            "couch": ["sofa"],
        }));
        let o = FormatOptions::default();
        let text = "From New York to the big apple, not a new city in York";
        // A one-word key: each multi-word value is highlighted where its words follow each
        // other, word by word; scattered words are not.
        let m = Matcher::for_query(Some("nyc"), &settings);
        assert_eq!(
            m.format_text(text, true, None, &o),
            "From <em>New</em> <em>York</em> to the <em>big</em> <em>apple</em>, not a new city in York"
        );
        assert_eq!(m.positions(text), vec![(5, 3), (9, 4), (21, 3), (25, 5)]);
        // A two-word key, one-word value.
        let m = Matcher::for_query(Some("in san francisco"), &settings);
        assert_eq!(
            m.format_text("a weekend in SF", true, None, &o),
            "a weekend <em>in</em> <em>SF</em>"
        );
        // One-word synonyms, with the query word itself.
        let m = Matcher::for_query(Some("couch"), &settings);
        assert_eq!(
            m.format_text("a sofa is a couch", true, None, &o),
            "a <em>sofa</em> is a <em>couch</em>"
        );
        // One-way: the values do not lead back to the key.
        let m = Matcher::for_query(Some("sofa"), &settings);
        assert_eq!(
            m.format_text("a sofa is a couch", true, None, &o),
            "a <em>sofa</em> is a couch"
        );
        let m = Matcher::for_query(Some("new york"), &settings);
        assert_eq!(m.format_text("NYC", true, None, &o), "NYC");
        // No synonyms setting: only the query words.
        let m = Matcher::for_query(Some("nyc"), &Settings::default());
        assert_eq!(m.format_text(text, true, None, &o), text);
    }

    #[test]
    fn cropping_centres_on_synonym_matches() {
        let settings = with_synonyms(json!({"nyc": ["new york"]}));
        let o = FormatOptions::default();
        let text =
            "one two three four five six seven eight nine ten new york eleven twelve thirteen";
        let m = Matcher::for_query(Some("nyc"), &settings);
        assert_eq!(
            m.format_text(text, true, Some(4), &o),
            "…ten <em>new</em> <em>york</em> eleven…"
        );
    }
}
