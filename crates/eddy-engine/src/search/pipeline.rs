//! The search pipeline: matching → filtering → ranking (with sort and custom rules) →
//! distinct → window, with facets counted on the way.
//!
//! When a request needs none of filters, sort, custom ranking rules, distinct or facets, the
//! ranked top-k of [`super::rank`] is used as is. Otherwise every matching document is
//! collected (a placeholder search matches every visible document), its stored JSON is read
//! and the filter, sort keys, distinct values and facets are computed from it with
//! `eddy-filter`'s value extraction. Stored JSON is identical in every layer and every other
//! input of the ranking key is layer-independent, so the answer is the same whichever layer
//! holds each document.
//!
//! Ranking rules order the key: `words` is the words bucket, `sort` the request's sort
//! criteria, `attr:asc|desc` custom rules, `bm25` the BM25 score; the rules eddy does not
//! apply yet (`typo`, `proximity`, `attribute`, `attributeRank`, `wordPosition`,
//! `exactness`) add nothing. BM25 and insertion order break the remaining ties.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::time::Instant;

use eddy_filter::{FacetValue, FieldFacets, Filter};
use serde_json::Value;

use super::eval::{
    self, Alternative, CHECK_EVERY, Candidate, Group, Plan, Restriction, Strategy, TopK,
    WeightedTerm,
};
use super::facets::{FacetCounter, resolve_facets};
use super::filter::{compile, filterable_patterns, pattern_matches};
use super::layers::{DocRef, Snapshot};
use super::query::{ParsedQuery, QueryTerm};
use super::sort::{
    SortCriterion, SortField, SortKey, compare, key_of_values, parse_criterion, parse_sort,
};
use super::values::{GEO, ValueReader};
use super::{Ranked, SearchRequest, parse, plan, ranking_score};
use crate::bm25::{TermWeight, idf};
use crate::error::{Code, Error, Result};
use crate::settings::Settings;

/// A hit of the pipeline.
#[derive(Debug, Clone)]
pub struct PipelineHit {
    /// The candidate with its ranking key.
    pub candidate: Candidate,
    /// Ranking score in `0..=1`.
    pub ranking_score: f64,
    /// Distance in meters to the first `_geoPoint` of the sort, when sorted by one.
    pub geo_distance: Option<f64>,
}

/// What the pipeline returns.
#[derive(Debug, Clone, Default)]
pub struct Executed {
    /// Hits in the window.
    pub hits: Vec<PipelineHit>,
    /// Matching documents (after filter and distinct).
    pub total: u64,
    /// `facetDistribution`, when facets were asked.
    pub facet_distribution: Option<Value>,
    /// `facetStats`, when facets were asked.
    pub facet_stats: Option<Value>,
    /// Whether the time budget (`searchCutoffMs`) ran out: hits are the best of the
    /// documents evaluated until then (still a full page when enough match); total and
    /// facets cover those documents.
    pub degraded: bool,
}

/// One step of the ranking key.
#[derive(Debug, Clone, Copy)]
enum Rule {
    Words,
    Bm25,
    /// Index into the entry's sort keys.
    Key(usize, bool),
}

/// The request, resolved against the settings.
struct Resolved {
    filter: Option<Filter>,
    criteria: Vec<SortCriterion>,
    rules: Vec<Rule>,
    distinct: Option<String>,
    facets: Option<Vec<String>>,
    geo_criterion: Option<usize>,
    strategy: Strategy,
    /// Attributes matching is restricted to (`None` = every attribute).
    search_on: Option<Vec<String>>,
}

fn covers(list: &[String], path: &str) -> bool {
    list.iter().any(|a| {
        a == "*"
            || a == path
            || path
                .strip_prefix(a.as_str())
                .is_some_and(|r| r.starts_with('.'))
    })
}

/// The attributes a search may match in: the searchable attributes, narrowed by
/// `attributesToSearchOn`.
fn search_on(request: &SearchRequest, settings: &Settings) -> Result<Option<Vec<String>>> {
    let searchable = (!settings.searches_all()).then(|| settings.searchable_attributes.clone());
    let Some(asked) = request
        .attributes_to_search_on
        .as_ref()
        .filter(|a| !a.iter().any(|x| x == "*"))
    else {
        return Ok(searchable);
    };
    if let Some(searchable) = &searchable
        && let Some(bad) = asked.iter().find(|a| !covers(searchable, a))
    {
        return Err(Error::InvalidSearch {
            code: Code::InvalidSearchAttributesToSearchOn,
            message: format!(
                "Attribute `{bad}` is not searchable. Available searchable attributes are: `{}`.",
                searchable.join(", ")
            ),
        });
    }
    Ok(Some(asked.clone()))
}

/// Where matches count, per attribute rank of the index (`field_order[rank]` is the path):
/// in the allowed attributes (`None` = all), with typos only outside `no_typo`.
fn restriction(
    field_order: &[String],
    allowed: Option<&[String]>,
    no_typo: &[String],
) -> Restriction {
    Restriction {
        allowed: field_order
            .iter()
            .map(|path| allowed.is_none_or(|a| covers(a, path)))
            .collect(),
        typos_ok: field_order
            .iter()
            .map(|path| !covers(no_typo, path))
            .collect(),
    }
}

/// Whether the `bm25` rule comes before `words` (the top-k path ranks words first).
fn bm25_before_words(settings: &Settings) -> bool {
    let at = |name: &str| settings.ranking_rules.iter().position(|r| r == name);
    matches!((at("bm25"), at("words")), (Some(b), Some(w)) if b < w)
}

fn resolve(request: &SearchRequest, settings: &Settings) -> Result<Resolved> {
    let filter = match &request.filter {
        Some(f) => compile(f, settings, Code::InvalidSearchFilter)?,
        None => None,
    };
    let sort = parse_sort(&request.sort, settings)?;
    let mut criteria: Vec<SortCriterion> = Vec::new();
    let mut rules = Vec::new();
    for rule in &settings.ranking_rules {
        match rule.as_str() {
            "words" => rules.push(Rule::Words),
            "bm25" => rules.push(Rule::Bm25),
            "sort" => {
                for c in &sort {
                    rules.push(Rule::Key(criteria.len(), c.ascending));
                    criteria.push(c.clone());
                }
            }
            "typo" | "proximity" | "attribute" | "attributeRank" | "wordPosition" | "exactness" => {
            }
            custom => {
                if let Ok(c) = parse_criterion(custom) {
                    rules.push(Rule::Key(criteria.len(), c.ascending));
                    criteria.push(c);
                }
            }
        }
    }
    let distinct = match &request.distinct {
        Some(attr) => {
            let patterns = filterable_patterns(settings);
            if !patterns.iter().any(|p| pattern_matches(p, attr)) {
                let mut valid: Vec<&str> = patterns.iter().map(String::as_str).collect();
                valid.sort_unstable();
                return Err(Error::InvalidSearch {
                    code: Code::InvalidSearchDistinct,
                    message: format!(
                        "Attribute `{attr}` is not filterable and thus, cannot be used as distinct attribute. {}",
                        if valid.is_empty() {
                            "This index does not have configured filterable attributes.".to_string()
                        } else {
                            format!(
                                "Available filterable attributes patterns are: `{}`.",
                                valid.join(", ")
                            )
                        }
                    ),
                });
            }
            Some(attr.clone())
        }
        None => settings.distinct_attribute.clone(),
    };
    let facets = match &request.facets {
        Some(f) => Some(resolve_facets(f, settings)?),
        None => None,
    };
    let geo_criterion = criteria
        .iter()
        .position(|c| matches!(c.field, SortField::Geo { .. }));
    Ok(Resolved {
        search_on: search_on(request, settings)?,
        filter,
        criteria,
        rules,
        distinct,
        facets,
        geo_criterion,
        strategy: if super::bm25_matching(settings) {
            Strategy::Any
        } else {
            request.strategy
        },
    })
}

struct Entry {
    candidate: Candidate,
    keys: Vec<SortKey>,
    distinct: Vec<String>,
}

fn doc_json(snapshot: &Snapshot<'_>, doc: DocRef) -> Result<Value> {
    serde_json::from_slice(&snapshot.json(doc.layer, doc.doc)?)
        .map_err(|e| Error::Corrupt(format!("stored document does not decode: {e}")))
}

fn distinct_keys(facets: &FieldFacets) -> Vec<String> {
    let mut out: Vec<String> = facets
        .values
        .iter()
        .filter_map(|v| match v {
            FacetValue::Number(n) => Some(format!("n{}", n.to_bits())),
            other => other.as_facet_str().map(|s| format!("s{s}")),
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

fn compare_entries(a: &Entry, b: &Entry, rules: &[Rule], placeholder: bool) -> Ordering {
    for rule in rules {
        let o = match rule {
            Rule::Words if !placeholder => b.candidate.bucket.cmp(&a.candidate.bucket),
            Rule::Words => Ordering::Equal,
            Rule::Bm25 => b.candidate.score.total_cmp(&a.candidate.score),
            Rule::Key(i, asc) => compare(&a.keys[*i], &b.keys[*i], *asc),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.candidate.rank_cmp(&b.candidate)
}

/// Runs a search request over a snapshot. `field_order` gives the index's attribute paths
/// by field id (called only when matching is restricted to some attributes; it must cover
/// every field of the snapshot).
///
/// # Errors
/// `invalid_search_*` errors for filters, sort, distinct and facets; storage errors.
pub fn execute(
    snapshot: &Snapshot<'_>,
    settings: &Settings,
    request: &SearchRequest,
    field_order: &dyn Fn() -> Vec<String>,
) -> Result<Executed> {
    let deadline = super::deadline(settings);
    let resolved = resolve(request, settings)?;
    let mut effective = request.clone();
    effective.strategy = resolved.strategy;
    let simple = settings.synonyms.is_empty()
        && request.ranking_score_threshold.is_none()
        && resolved.filter.is_none()
        && resolved.criteria.is_empty()
        && resolved.distinct.is_none()
        && resolved.facets.is_none()
        && resolved.search_on.is_none()
        && settings.typo_tolerance.disable_on_attributes.is_empty()
        && !bm25_before_words(settings);
    if simple {
        let Ranked {
            hits,
            total,
            degraded,
        } = super::rank(snapshot, settings, &effective)?;
        return Ok(Executed {
            hits: hits
                .into_iter()
                .map(|h| PipelineHit {
                    candidate: h.candidate,
                    ranking_score: h.ranking_score,
                    geo_distance: None,
                })
                .collect(),
            total,
            facet_distribution: None,
            facet_stats: None,
            degraded,
        });
    }

    let parsed = parse(&effective, settings);
    let placeholder = parsed.is_placeholder();
    let n_groups = parsed.terms.len().max(1);
    let mut the_plan = None;
    let mut degraded = false;
    // Under the time budget, a degraded search still answers a full page (Meilisearch skips
    // the remaining ranking rules but fills `limit`): matching goes on until `page`
    // documents matched, and reading documents until `page` passed the filter.
    let page = request.offset.saturating_add(request.limit);
    // Whether matching stopped at the deadline (more documents may match).
    let mut matching_cut = false;
    // Unordered: entries are ordered once filtered.
    let candidates: Vec<Candidate> = if placeholder {
        let mut v = Vec::new();
        // `seq` is read once a document passes the filter.
        snapshot.for_each_visible(|doc| {
            v.push(Candidate {
                bucket: 0,
                score: 0.0,
                seq: 0,
                doc,
            });
        });
        v
    } else {
        // `seq` is read once a document passes the filter.
        let mut all = TopK::with_deadline_fill(usize::MAX, deadline, page).without_seq();
        let mut p = plan(snapshot, &parsed, &effective)?;
        add_synonyms(snapshot, &mut p, &parsed, settings, &effective)?;
        let no_typo = &settings.typo_tolerance.disable_on_attributes;
        if resolved.search_on.is_some() || !no_typo.is_empty() {
            p.restrict = Some(restriction(
                &field_order(),
                resolved.search_on.as_deref(),
                no_typo,
            ));
        }
        eval::evaluate(snapshot, &p, &mut all)?;
        degraded = all.degraded;
        matching_cut = all.stopped();
        the_plan = Some(p);
        all.into_sorted()
    };
    // Every attribute the stages read, through one reader (segment columns are cached).
    let mut attrs: Vec<String> = Vec::new();
    let mut need = |a: &str| {
        if !attrs.iter().any(|x| x == a) {
            attrs.push(a.to_string());
        }
    };
    if let Some(f) = &resolved.filter {
        for a in f.attributes() {
            need(a);
        }
    }
    for c in &resolved.criteria {
        match &c.field {
            SortField::Attribute(a) => need(a),
            SortField::Geo { .. } => need(GEO),
        }
    }
    if let Some(d) = &resolved.distinct {
        need(d);
    }
    for f in resolved.facets.iter().flatten() {
        need(f);
    }
    let reader = ValueReader::new(snapshot, attrs)?;
    let pos = |a: &str| reader.position(a).unwrap_or(usize::MAX);
    let criteria_pos: Vec<usize> = resolved
        .criteria
        .iter()
        .map(|c| match &c.field {
            SortField::Attribute(a) => pos(a),
            SortField::Geo { .. } => pos(GEO),
        })
        .collect();
    let distinct_pos = resolved.distinct.as_deref().map(pos);
    let facet_pos: Vec<usize> = resolved.facets.iter().flatten().map(|f| pos(f)).collect();

    let mut facets = resolved.facets.clone().map(FacetCounter::new);
    // Facets are counted after distinct; without distinct they are counted in this pass.
    let count_now = resolved.distinct.is_none();
    let mut entries = Vec::with_capacity(candidates.len());
    // Documents read in the first round, when a second may follow.
    let mut read: HashSet<DocRef> = HashSet::new();
    let mut round = candidates;
    let mut second_round = false;
    // How many hits the entries read so far make at least: with `distinct`, entries that
    // share a value collapse into one hit, so a degraded search counts values, not entries
    // (greedily, in reading order: exact for single values), or it would stop with fewer
    // than a page.
    let mut filled = 0usize;
    let mut distinct_seen: HashSet<String> = HashSet::new();
    loop {
        for (i, mut candidate) in round.into_iter().enumerate() {
            // Reading documents is the costly part: the time budget is checked here too.
            if !degraded
                && i > 0
                && i % CHECK_EVERY as usize == 0
                && deadline.is_some_and(|d| Instant::now() >= d)
            {
                degraded = true;
            }
            if degraded && filled >= page {
                break;
            }
            if matching_cut {
                if second_round {
                    if read.contains(&candidate.doc) {
                        continue;
                    }
                } else {
                    read.insert(candidate.doc);
                }
            }
            let values = reader.read(candidate.doc)?;
            if let Some(f) = &resolved.filter
                && !reader.matches(f, &values)
            {
                continue;
            }
            candidate.seq = snapshot.seq(candidate.doc.layer, candidate.doc.doc);
            let keys = resolved
                .criteria
                .iter()
                .zip(&criteria_pos)
                .map(|(c, &i)| key_of_values(values.facets(i), values.geo(), c))
                .collect();
            let distinct = match distinct_pos {
                Some(i) => distinct_keys(values.facets(i)),
                None => Vec::new(),
            };
            if count_now && let Some(f) = facets.as_mut() {
                f.add_values(|k| values.facets(facet_pos[k]));
            }
            if !distinct.iter().any(|k| distinct_seen.contains(k)) {
                filled += 1;
                distinct_seen.extend(distinct.iter().cloned());
            }
            entries.push(Entry {
                candidate,
                keys,
                distinct,
            });
        }
        // Matching stopped at the deadline and too few of its documents passed the filter:
        // match the rest (without a deadline) to fill the page.
        if matching_cut
            && !second_round
            && filled < page
            && let Some(p) = &the_plan
        {
            let mut all = TopK::new(usize::MAX).without_seq();
            eval::evaluate(snapshot, p, &mut all)?;
            round = all.into_sorted();
            second_round = true;
            continue;
        }
        break;
    }
    let cmp = |a: &Entry, b: &Entry| compare_entries(a, b, &resolved.rules, placeholder);
    if resolved.distinct.is_some() {
        entries.sort_by(cmp);
        let mut seen: HashSet<String> = HashSet::new();
        entries.retain(|e| {
            if e.distinct.iter().any(|k| seen.contains(k)) {
                return false;
            }
            seen.extend(e.distinct.iter().cloned());
            true
        });
        if let Some(f) = facets.as_mut() {
            for e in &entries {
                let values = reader.read(e.candidate.doc)?;
                f.add_values(|k| values.facets(facet_pos[k]));
            }
        }
    }
    if let Some(threshold) = request.ranking_score_threshold {
        entries.retain(|e| ranking_score(&e.candidate, n_groups, placeholder) >= threshold);
    }
    let total = entries.len() as u64;
    if resolved.distinct.is_none() {
        // Only the window needs ordering.
        let k = request.offset.saturating_add(request.limit);
        if k < entries.len() {
            if k > 0 {
                entries.select_nth_unstable_by(k - 1, cmp);
            }
            entries.truncate(k);
        }
        entries.sort_by(cmp);
    }
    let hits = entries
        .into_iter()
        .skip(request.offset)
        .take(request.limit)
        .map(|e| PipelineHit {
            ranking_score: ranking_score(&e.candidate, n_groups, placeholder),
            geo_distance: resolved.geo_criterion.and_then(|i| match e.keys[i] {
                SortKey::Number(d) => Some(d.round()),
                _ => None,
            }),
            candidate: e.candidate,
        })
        .collect();
    let (facet_distribution, facet_stats) = match facets {
        Some(f) => {
            let (d, s) = f.finish(settings, None);
            (Some(d), Some(s))
        }
        None => (None, None),
    };
    Ok(Executed {
        hits,
        total,
        facet_distribution,
        facet_stats,
        degraded,
    })
}

/// The synonyms a query gets from the `synonyms` setting (keys and values normalized like
/// document words): for each run of consecutive query words equal to a key, the run (term
/// indices) and each of the key's values, as words. Synonyms apply in the declared direction
/// only; quoted phrases get none.
pub(crate) fn synonyms_of(
    parsed: &ParsedQuery,
    settings: &Settings,
) -> Vec<(std::ops::Range<usize>, Vec<String>)> {
    let mut out = Vec::new();
    if settings.synonyms.is_empty() {
        return out;
    }
    let tok = crate::analysis::Tokenization::from_settings(settings);
    let split = |s: &str| -> Vec<String> {
        crate::analysis::words_with(s, &tok)
            .into_iter()
            .map(|w| w.term)
            .collect()
    };
    let query: Vec<Option<&str>> = parsed
        .terms
        .iter()
        .map(|t| match t {
            QueryTerm::Word(w) => Some(w.text.as_str()),
            QueryTerm::Phrase(_) => None,
        })
        .collect();
    for (key, values) in &settings.synonyms {
        let key = split(key);
        if key.is_empty() || key.len() > query.len() {
            continue;
        }
        for start in 0..=query.len() - key.len() {
            let run = start..start + key.len();
            if !key
                .iter()
                .zip(&query[run.clone()])
                .all(|(k, q)| *q == Some(k.as_str()))
            {
                continue;
            }
            for value in values {
                let words = split(value);
                if !words.is_empty() {
                    out.push((run.clone(), words));
                }
            }
        }
    }
    out
}

/// Applies the `synonyms` setting ([`synonyms_of`]): a query word, or a run of consecutive
/// query words, equal to a key also matches each of the key's values. A one-word value of a
/// one-word key is one more exact derivation of the word; any other value is an
/// [`Alternative`] for the run, its words matching as a phrase.
fn add_synonyms(
    snapshot: &Snapshot<'_>,
    plan: &mut Plan,
    parsed: &ParsedQuery,
    settings: &Settings,
    request: &SearchRequest,
) -> Result<()> {
    let corpus = snapshot.corpus();
    for (run, words) in synonyms_of(parsed, settings) {
        if let ([word], 1) = (words.as_slice(), run.len())
            && let Some(Group::Word(derivations)) = plan.groups.get_mut(run.start)
        {
            if derivations.iter().any(|d| &d.term == word) {
                continue;
            }
            let df = snapshot.doc_freq(word)?;
            if df == 0 {
                continue;
            }
            derivations.push(WeightedTerm {
                weight: TermWeight::new(idf(df, corpus.docs), corpus, request.bm25),
                term: word.clone(),
                typos: 0,
            });
            continue;
        }
        if plan
            .alternatives
            .iter()
            .any(|a| a.groups == run && a.words == words)
        {
            continue;
        }
        let mut idf_sum = 0.0;
        let mut absent = false;
        for w in &words {
            let df = snapshot.doc_freq(w)?;
            if df == 0 {
                absent = true;
                break;
            }
            idf_sum += idf(df, corpus.docs);
        }
        if absent {
            continue;
        }
        plan.alternatives.push(Alternative {
            groups: run,
            words,
            weight: TermWeight::new(idf_sum, corpus, request.bm25),
        });
    }
    Ok(())
}

/// Documents matching a filter (all visible documents without one), ordered by `sort` then
/// insertion order: the page `offset .. offset + limit` and the total. For the documents
/// routes.
///
/// # Errors
/// Storage errors.
pub fn filter_documents(
    snapshot: &Snapshot<'_>,
    filter: Option<&Filter>,
    sort: &[SortCriterion],
    offset: usize,
    limit: usize,
) -> Result<(Vec<(DocRef, Value)>, u64)> {
    let mut attrs: Vec<String> = filter
        .map(|f| f.attributes().into_iter().map(str::to_string).collect())
        .unwrap_or_default();
    for c in sort {
        let a = match &c.field {
            SortField::Attribute(a) => a.as_str(),
            SortField::Geo { .. } => GEO,
        };
        if !attrs.iter().any(|x| x == a) {
            attrs.push(a.to_string());
        }
    }
    let reader = ValueReader::new(snapshot, attrs)?;
    let mut refs = Vec::new();
    snapshot.for_each_visible(|r| refs.push(r));
    let mut kept: Vec<(Vec<SortKey>, u64, DocRef)> = Vec::new();
    for r in refs {
        if filter.is_none() && sort.is_empty() {
            kept.push((Vec::new(), snapshot.seq(r.layer, r.doc), r));
            continue;
        }
        let values = reader.read(r)?;
        if let Some(f) = filter
            && !reader.matches(f, &values)
        {
            continue;
        }
        let keys = sort
            .iter()
            .map(|c| {
                let i = match &c.field {
                    SortField::Attribute(a) => reader.position(a),
                    SortField::Geo { .. } => reader.position(GEO),
                };
                key_of_values(values.facets(i.unwrap_or(usize::MAX)), values.geo(), c)
            })
            .collect();
        kept.push((keys, snapshot.seq(r.layer, r.doc), r));
    }
    let total = kept.len() as u64;
    kept.sort_by(|a, b| {
        for (i, c) in sort.iter().enumerate() {
            let o = compare(&a.0[i], &b.0[i], c.ascending);
            if o != Ordering::Equal {
                return o;
            }
        }
        a.1.cmp(&b.1).then(a.2.cmp(&b.2))
    });
    let mut page = Vec::new();
    for (_, _, r) in kept.into_iter().skip(offset).take(limit) {
        page.push((r, doc_json(snapshot, r)?));
    }
    Ok((page, total))
}

/// A value reader for the attributes of a filter.
fn filter_reader<'s, 'a>(
    snapshot: &'s Snapshot<'a>,
    filter: Option<&Filter>,
) -> Result<Option<ValueReader<'s, 'a>>> {
    let Some(f) = filter else {
        return Ok(None);
    };
    let attrs: Vec<String> = f.attributes().into_iter().map(str::to_string).collect();
    Ok(Some(ValueReader::new(snapshot, attrs)?))
}

/// The primary keys of every visible document matching a filter.
///
/// # Errors
/// Storage errors.
pub fn matching_ids(snapshot: &Snapshot<'_>, filter: &Filter) -> Result<Vec<String>> {
    let mut refs = Vec::new();
    snapshot.for_each_visible(|r| refs.push(r));
    let mut ids = Vec::new();
    let Some(reader) = filter_reader(snapshot, Some(filter))? else {
        return Ok(ids);
    };
    for r in refs {
        if reader.matches(filter, &reader.read(r)?) {
            ids.push(snapshot.pk(r.layer, r.doc));
        }
    }
    Ok(ids)
}
