//! Search over a snapshot of every layer, as separate replaceable stages:
//!
//! 1. [`query`] parses the query string (words, phrases, exclusions, prefix, typo budget);
//! 2. [`derive`] expands each word into indexed terms over the union of the layers'
//!    dictionaries;
//! 3. statistics are summed over visible versions of every layer and turned into BM25
//!    weights ([`crate::bm25`]);
//! 4. [`eval`] matches and ranks, keeping the top `offset + limit` and an exact count;
//! 5. the caller fetches and formats the documents.

pub mod derive;
pub mod eval;
pub mod facets;
pub mod filter;
pub mod format;
pub mod layers;
pub mod pipeline;
pub mod pk_table;
pub mod query;
pub mod sort;
pub mod values;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::bm25::{Bm25Params, TermWeight, idf};
use crate::error::Result;
use crate::settings::Settings;
use derive::WordDfa;
use eval::{Candidate, Group, Plan, Strategy, TopK, WeightedTerm};
use layers::Snapshot;
use query::{ParseOptions, ParsedQuery, QueryTerm, parse_query};

pub use eval::Strategy as MatchingStrategy;

/// What to search for.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    /// Query string; `None` or blank for a placeholder search.
    pub q: Option<String>,
    /// Hits to skip.
    pub offset: usize,
    /// Hits to return.
    pub limit: usize,
    /// Matching strategy.
    pub strategy: Strategy,
    /// BM25 parameters.
    pub bm25: Bm25Params,
    /// The `filter` parameter as given (string, or array of strings and arrays).
    pub filter: Option<serde_json::Value>,
    /// `sort` expressions (`attr:asc`, `_geoPoint(lat, lng):desc`).
    pub sort: Vec<String>,
    /// `distinct` attribute (overrides the setting).
    pub distinct: Option<String>,
    /// `facets` to count (`*` = every filterable attribute).
    pub facets: Option<Vec<String>>,
    /// `attributesToSearchOn`: restricts matching to these searchable attributes.
    pub attributes_to_search_on: Option<Vec<String>>,
    /// `rankingScoreThreshold`: hits scoring below are left out (and not counted).
    pub ranking_score_threshold: Option<f64>,
}

impl Default for SearchRequest {
    fn default() -> Self {
        SearchRequest {
            q: None,
            offset: 0,
            limit: 20,
            strategy: Strategy::Last,
            bm25: Bm25Params::default(),
            filter: None,
            sort: Vec::new(),
            distinct: None,
            facets: None,
            attributes_to_search_on: None,
            ranking_score_threshold: None,
        }
    }
}

/// A ranked hit (documents are fetched by the caller).
#[derive(Debug, Clone, Copy)]
pub struct RankedHit {
    /// The candidate with its ranking key.
    pub candidate: Candidate,
    /// Ranking score in `0..=1`.
    pub ranking_score: f64,
}

/// Ranked hits and the exact number of matching documents.
#[derive(Debug, Clone, Default)]
pub struct Ranked {
    /// Hits in `offset .. offset + limit`.
    pub hits: Vec<RankedHit>,
    /// Every matching document.
    pub total: u64,
    /// Whether the time budget ran out: hits (still a full page when enough documents
    /// match) and total cover the documents evaluated until then.
    pub degraded: bool,
}

/// Meilisearch's search time budget when `searchCutoffMs` is not set.
pub const DEFAULT_SEARCH_CUTOFF_MS: u64 = 1500;

/// When a search starting now must stop evaluating (`searchCutoffMs`).
pub fn deadline(settings: &Settings) -> Option<Instant> {
    let ms = settings
        .search_cutoff_ms
        .unwrap_or(DEFAULT_SEARCH_CUTOFF_MS);
    Instant::now().checked_add(Duration::from_millis(ms))
}

/// Whether eddy's `bm25` rule decides matching: the ranking rules name `bm25` and not
/// `words`. Any query word then matches (strategy `any`), every word of the query counts (up
/// to [`query::MAX_BM25_QUERY_TERMS`]) and documents rank by BM25.
pub fn bm25_matching(settings: &Settings) -> bool {
    settings.ranking_rules.iter().any(|r| r == "bm25")
        && !settings.ranking_rules.iter().any(|r| r == "words")
}

/// Parses the query of a request with an index's settings.
pub fn parse(request: &SearchRequest, settings: &Settings) -> ParsedQuery {
    let q = request.q.as_deref().unwrap_or("");
    parse_query(
        q,
        &ParseOptions {
            typos: &settings.typo_tolerance,
            prefix_search: settings.prefix_search != "disabled",
            stop_words: &settings.stop_words,
            tokenization: &crate::analysis::Tokenization::from_settings(settings),
            // The `bm25` rule (matching strategy `any`) is for long natural-language queries:
            // it keeps every word, where Meilisearch's rules stop at ten.
            max_terms: if request.strategy == Strategy::Any {
                query::MAX_BM25_QUERY_TERMS
            } else {
                query::MAX_QUERY_TERMS
            },
        },
    )
}

/// Builds the evaluation plan: derivations and BM25 weights from snapshot statistics.
pub fn plan(
    snapshot: &Snapshot<'_>,
    parsed: &ParsedQuery,
    request: &SearchRequest,
) -> Result<Plan> {
    let corpus = snapshot.corpus();
    let mut groups = Vec::with_capacity(parsed.terms.len());
    for term in &parsed.terms {
        match term {
            QueryTerm::Word(word) => {
                let mut union = BTreeMap::new();
                if word.max_typos == 0 && !word.prefix {
                    // Only the word itself: no automaton to build or walk.
                    derive::add(&mut union, word.text.as_bytes(), 0);
                } else {
                    snapshot.collect_derivations(&WordDfa::new(word), &mut union)?;
                }
                let mut live_error = None;
                let derivations = derive::select(union, |t| match snapshot.term_is_live(t) {
                    Ok(live) => live,
                    Err(e) => {
                        live_error = Some(e);
                        false
                    }
                });
                if let Some(e) = live_error {
                    return Err(e);
                }
                let mut weighted = Vec::with_capacity(derivations.len());
                for d in derivations {
                    let df = snapshot.doc_freq(&d.term)?;
                    if df == 0 {
                        continue;
                    }
                    weighted.push(WeightedTerm {
                        weight: TermWeight::new(idf(df, corpus.docs), corpus, request.bm25),
                        term: d.term,
                        typos: d.typos,
                    });
                }
                groups.push(Group::Word(weighted));
            }
            QueryTerm::Phrase(words) => {
                let mut idf_sum = 0.0;
                for w in words {
                    idf_sum += idf(snapshot.doc_freq(w)?, corpus.docs);
                }
                groups.push(Group::Phrase {
                    words: words.clone(),
                    weight: TermWeight::new(idf_sum, corpus, request.bm25),
                });
            }
        }
    }
    Ok(Plan {
        groups,
        alternatives: Vec::new(),
        excluded: parsed.excluded.clone(),
        strategy: request.strategy,
        restrict: None,
    })
}

/// Runs a search over a snapshot: the hits in `offset .. offset + limit`, best first.
pub fn rank(
    snapshot: &Snapshot<'_>,
    settings: &Settings,
    request: &SearchRequest,
) -> Result<Ranked> {
    let parsed = parse(request, settings);
    let k = request.offset.saturating_add(request.limit);
    let mut top = TopK::with_deadline(k, deadline(settings));
    let n_groups = parsed.terms.len().max(1);
    if parsed.is_placeholder() {
        eval::placeholder(snapshot, &mut top);
    } else {
        let plan = plan(snapshot, &parsed, request)?;
        eval::evaluate(snapshot, &plan, &mut top)?;
    }
    let total = top.count;
    let degraded = top.degraded;
    let hits = top
        .into_sorted()
        .into_iter()
        .skip(request.offset)
        .map(|candidate| RankedHit {
            ranking_score: ranking_score(&candidate, n_groups, parsed.is_placeholder()),
            candidate,
        })
        .collect();
    Ok(Ranked {
        hits,
        total,
        degraded,
    })
}

/// Maps the ranking key into `0..=1`, monotonically: the words bucket first, then BM25.
pub(crate) fn ranking_score(c: &Candidate, n_groups: usize, placeholder: bool) -> f64 {
    if placeholder {
        return 1.0;
    }
    let bm25 = f64::from(c.score.max(0.0));
    let within = bm25 / (bm25 + 1.0);
    let n = n_groups as f64;
    ((f64::from(c.bucket.max(1)) - 1.0 + within) / n).clamp(0.0, 1.0)
}
