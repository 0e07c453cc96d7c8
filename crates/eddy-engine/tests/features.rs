//! Filters, facets, sort and distinct: the same answers whether documents sit in memtables,
//! in segments or in both, and the same documents as a brute-force reference.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use eddy_engine::{
    Engine, EngineConfig, MergeStrategy, Method, PayloadFormat, SearchRequest, TaskStatus,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const WORDS: [&str; 8] = [
    "star", "wars", "trek", "river", "stone", "night", "garden", "storm",
];
const GENRES: [&str; 5] = ["Drama", "comedy", "Action", "horror", "Émotion"];

fn manual() -> EngineConfig {
    EngineConfig {
        merge_strategy: MergeStrategy::Manual,
        ..EngineConfig::default()
    }
}

fn random_doc(rng: &mut StdRng, id: u32) -> Value {
    let mut doc = serde_json::Map::new();
    doc.insert("id".into(), json!(id));
    let n = rng.random_range(1..4);
    let title: Vec<&str> = (0..n)
        .map(|_| WORDS[rng.random_range(0..WORDS.len())])
        .collect();
    doc.insert("title".into(), json!(title.join(" ")));
    match rng.random_range(0..6) {
        0 => {}
        1 => {
            doc.insert(
                "genre".into(),
                json!([
                    GENRES[rng.random_range(0..GENRES.len())],
                    GENRES[rng.random_range(0..GENRES.len())]
                ]),
            );
        }
        2 => {
            doc.insert("genre".into(), Value::Null);
        }
        _ => {
            doc.insert(
                "genre".into(),
                json!(GENRES[rng.random_range(0..GENRES.len())]),
            );
        }
    }
    match rng.random_range(0..5) {
        0 => {}
        1 => {
            doc.insert(
                "year".into(),
                json!(format!("{}", rng.random_range(1990..2000))),
            );
        }
        _ => {
            doc.insert("year".into(), json!(rng.random_range(1980..2025)));
        }
    }
    if rng.random_bool(0.7) {
        doc.insert(
            "rating".into(),
            json!(f64::from(rng.random_range(0..100)) / 10.0),
        );
    }
    if rng.random_bool(0.5) {
        let lang = ["en", "fr", "de"][rng.random_range(0..3usize)];
        doc.insert("info".into(), json!({ "lang": lang }));
    }
    if rng.random_bool(0.6) {
        doc.insert(
            "_geo".into(),
            json!({"lat": rng.random_range(-60.0..60.0), "lng": rng.random_range(-170.0..170.0)}),
        );
    }
    doc.insert("available".into(), json!(rng.random_bool(0.5)));
    Value::Object(doc)
}

/// One write of the shared script.
enum Step {
    Add(Vec<Value>),
    Delete(Vec<u32>),
    DeleteByFilter(&'static str),
}

fn script(seed: u64) -> Vec<Step> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut steps = Vec::new();
    for round in 0..4 {
        let docs = (0..60)
            .map(|_| {
                let id = rng.random_range(0..150);
                random_doc(&mut rng, id)
            })
            .collect();
        steps.push(Step::Add(docs));
        steps.push(Step::Delete(
            (0..5).map(|_| rng.random_range(0..150)).collect(),
        ));
        if round == 2 {
            steps.push(Step::DeleteByFilter("rating > 9.5 OR genre = horror"));
        }
    }
    steps
}

const SETTINGS: &str = r#"{
  "filterableAttributes": ["genre", "year", "rating", "info.lang", "_geo", "available", "id"],
  "sortableAttributes": ["year", "rating", "title", "_geo"]
}"#;

/// Settings of a seed: the common ones, plus ranking rules, searchable attributes, a
/// distinct attribute or tokenization depending on the seed.
fn settings_of(seed: u64) -> Value {
    let mut v: Value = serde_json::from_str(SETTINGS).unwrap();
    let extra = match seed % 4 {
        1 => json!({"rankingRules": ["sort", "words", "rating:desc", "bm25"],
                    "searchableAttributes": ["title", "genre"]}),
        2 => json!({"distinctAttribute": "info.lang", "separatorTokens": ["ar"]}),
        3 => {
            json!({"rankingRules": ["bm25", "year:asc", "sort"], "synonyms": {"storm": ["night"]}})
        }
        _ => json!({}),
    };
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

/// Runs the script; `flush_after(i)` says whether to flush after step `i`.
fn build(dir: &std::path::Path, steps: &[Step], flush_after: impl Fn(usize) -> bool) -> Engine {
    build_with(
        dir,
        steps,
        flush_after,
        serde_json::from_str(SETTINGS).unwrap(),
    )
}

fn build_with(
    dir: &std::path::Path,
    steps: &[Step],
    flush_after: impl Fn(usize) -> bool,
    settings: Value,
) -> Engine {
    let engine = Engine::open(dir, manual()).unwrap();
    let Value::Object(patch) = settings else {
        unreachable!()
    };
    let t = engine.update_settings("idx", patch).unwrap();
    assert_eq!(t.status, TaskStatus::Succeeded, "{t:?}");
    for (i, step) in steps.iter().enumerate() {
        let t = match step {
            Step::Add(docs) => engine
                .add_documents(
                    "idx",
                    &serde_json::to_vec(docs).unwrap(),
                    PayloadFormat::Json,
                    Method::Replace,
                    Some("id".into()),
                )
                .unwrap(),
            Step::Delete(ids) => engine
                .delete_documents("idx", ids.iter().map(|i| json!(i)).collect())
                .unwrap(),
            Step::DeleteByFilter(f) => engine.delete_documents_by_filter("idx", json!(f)).unwrap(),
        };
        assert_eq!(t.status, TaskStatus::Succeeded, "{t:?}");
        if flush_after(i) {
            engine.flush().unwrap();
        }
    }
    engine
}

/// The documents the script leaves, by id.
fn reference(steps: &[Step]) -> BTreeMap<u32, Value> {
    let mut docs = BTreeMap::new();
    for step in steps {
        match step {
            Step::Add(batch) => {
                for d in batch {
                    docs.insert(d["id"].as_u64().unwrap() as u32, d.clone());
                }
            }
            Step::Delete(ids) => {
                for id in ids {
                    docs.remove(id);
                }
            }
            Step::DeleteByFilter(f) => {
                let filter = eddy_filter::parse(f).unwrap().unwrap();
                docs.retain(|_, d| !filter.matches(d));
            }
        }
    }
    docs
}

const FILTERS: [&str; 12] = [
    "genre = drama",
    "genre != Drama",
    "year > 2000",
    "year 1990 TO 1995",
    "rating >= 5 AND genre IN [comedy, action]",
    "NOT genre EXISTS OR genre IS NULL",
    "info.lang = fr",
    "_geoRadius(10, 20, 3000000)",
    "_geoBoundingBox([50, 100], [-20, -100])",
    "available = true AND (year < 1995 OR rating > 8)",
    "genre = 'émotion'",
    "id IN [1, 2, 3, 50, 149]",
];

const SORTS: [&[&str]; 5] = [
    &[],
    &["year:asc"],
    &["rating:desc", "title:asc"],
    &["_geoPoint(0, 0):asc"],
    &["title:desc"],
];

fn request(rng: &mut StdRng) -> SearchRequest {
    let q = if rng.random_bool(0.4) {
        None
    } else {
        Some(WORDS[rng.random_range(0..WORDS.len())].to_string())
    };
    let filter = match rng.random_range(0..4) {
        0 => None,
        1 => Some(json!([
            FILTERS[rng.random_range(0..FILTERS.len())],
            [
                FILTERS[rng.random_range(0..FILTERS.len())],
                FILTERS[rng.random_range(0..FILTERS.len())]
            ]
        ])),
        _ => Some(json!(FILTERS[rng.random_range(0..FILTERS.len())])),
    };
    SearchRequest {
        q,
        limit: 1000,
        attributes_to_search_on: rng.random_bool(0.2).then(|| vec!["title".to_string()]),
        filter,
        sort: SORTS[rng.random_range(0..SORTS.len())]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        distinct: rng.random_bool(0.2).then(|| "genre".to_string()),
        facets: rng.random_bool(0.5).then(|| {
            vec![
                "genre".to_string(),
                "year".to_string(),
                "rating".to_string(),
            ]
        }),
        ..SearchRequest::default()
    }
}

type Answer = (Vec<String>, u64, Option<Value>, Option<Value>);

fn answer(engine: &Engine, r: &SearchRequest) -> Answer {
    let res = engine.search("idx", r).unwrap();
    (
        res.hits.iter().map(|h| h.id.clone()).collect(),
        res.total,
        res.facet_distribution,
        res.facet_stats,
    )
}

fn check_seed(seed: u64) {
    let steps = script(seed);
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let n = steps.len();
    let settings = settings_of(seed);
    let engines = [
        build_with(dirs[0].path(), &steps, |_| false, settings.clone()),
        build_with(dirs[1].path(), &steps, |i| i + 1 == n, settings.clone()),
        build_with(dirs[2].path(), &steps, |i| i == n / 2, settings.clone()),
        build_with(dirs[3].path(), &steps, |i| i % 2 == 0, settings.clone()),
    ];
    let setting_distinct = settings.get("distinctAttribute").is_some();
    let docs = reference(&steps);
    let all = engines[0]
        .search("idx", &SearchRequest::default())
        .unwrap()
        .total;
    if setting_distinct {
        assert!(all < docs.len() as u64);
    } else {
        assert_eq!(all, docs.len() as u64);
    }
    let mut rng = StdRng::seed_from_u64(seed ^ 0xfeed);
    for _ in 0..60 {
        let r = request(&mut rng);
        let first = answer(&engines[0], &r);
        for e in &engines[1..] {
            assert_eq!(answer(e, &r), first, "layers disagree on {r:?}");
        }
        // Brute force: the filter selects the same documents (placeholder, no distinct).
        if r.q.is_none() && r.distinct.is_none() && !setting_distinct {
            let filter = r
                .filter
                .as_ref()
                .and_then(|f| eddy_filter::parse_json(f).unwrap());
            let mut expected: Vec<String> = docs
                .iter()
                .filter(|(_, d)| filter.as_ref().is_none_or(|f| f.matches(d)))
                .map(|(id, _)| id.to_string())
                .collect();
            let mut got = first.0.clone();
            expected.sort();
            got.sort();
            assert_eq!(got, expected, "{r:?}");
            assert_eq!(first.1, expected.len() as u64);
            // Genre counts, brute force.
            if let Some(dist) = &first.2 {
                let mut counts: BTreeMap<String, u64> = BTreeMap::new();
                for id in &expected {
                    let d = &docs[&id.parse::<u32>().unwrap()];
                    let mut seen: Vec<String> = eddy_filter::facet_values(d, "genre")
                        .iter()
                        .filter_map(|v| v.as_facet_str().map(str::to_string))
                        .collect();
                    seen.sort();
                    seen.dedup();
                    for s in seen {
                        *counts.entry(s).or_default() += 1;
                    }
                }
                let got: BTreeMap<String, u64> = dist["genre"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (eddy_filter::normalize_str(k), v.as_u64().unwrap()))
                    .collect();
                assert_eq!(got, counts, "{r:?}");
            }
        }
        // Sorted hits are in order of their first criterion.
        if let (Some(first_sort), None) = (r.sort.first(), r.distinct.as_ref())
            && r.q.is_none()
            && !setting_distinct
            && settings["rankingRules"]
                .as_array()
                .is_none_or(|rules| rules.first().is_some_and(|x| x == "sort"))
            && !first_sort.starts_with("_geo")
        {
            let (attr, dir) = first_sort.rsplit_once(':').unwrap();
            let asc = dir == "asc";
            let key = |id: &String| {
                let d = &docs[&id.parse::<u32>().unwrap()];
                let vals = eddy_filter::facet_values(d, attr);
                let nums: Vec<f64> = vals.iter().filter_map(|v| v.as_number()).collect();
                if !nums.is_empty() {
                    let n = if asc {
                        nums.iter().copied().fold(f64::INFINITY, f64::min)
                    } else {
                        nums.iter().copied().fold(f64::NEG_INFINITY, f64::max)
                    };
                    return (0, if asc { n } else { -n }, String::new());
                }
                let strs: Vec<String> = vals
                    .iter()
                    .filter_map(|v| v.as_facet_str().map(str::to_string))
                    .collect();
                match if asc {
                    strs.iter().min()
                } else {
                    strs.iter().max()
                } {
                    Some(s) => (1, 0.0, s.clone()),
                    None => (2, 0.0, String::new()),
                }
            };
            for w in first.0.windows(2) {
                let (a, b) = (key(&w[0]), key(&w[1]));
                let ordered = a.0 < b.0
                    || (a.0 == b.0 && a.0 == 0 && a.1 <= b.1)
                    || (a.0 == b.0 && a.0 == 1 && (if asc { a.2 <= b.2 } else { a.2 >= b.2 }))
                    || (a.0 == b.0 && a.0 == 2);
                assert!(ordered, "{:?} before {:?} in {r:?}", w[0], w[1]);
            }
        }
    }
}

#[test]
fn layers_agree_on_filters_facets_sort_distinct() {
    for seed in 0..4 {
        check_seed(seed);
    }
}

#[test]
fn delete_by_filter_survives_replay() {
    let dir = tempfile::tempdir().unwrap();
    let steps = script(7);
    let expected = reference(&steps);
    {
        let engine = build(dir.path(), &steps, |i| i == 1);
        assert_eq!(
            engine
                .search("idx", &SearchRequest::default())
                .unwrap()
                .total,
            expected.len() as u64
        );
    }
    let engine = Engine::open(dir.path(), manual()).unwrap();
    let r = SearchRequest {
        limit: 1000,
        ..SearchRequest::default()
    };
    let mut got: Vec<String> = engine
        .search("idx", &r)
        .unwrap()
        .hits
        .into_iter()
        .map(|h| h.id)
        .collect();
    got.sort();
    let mut want: Vec<String> = expected.keys().map(|k| k.to_string()).collect();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn filter_errors_and_non_filterable_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let steps = script(1);
    let engine = build(dir.path(), &steps[..1], |_| false);
    let err = engine
        .search(
            "idx",
            &SearchRequest {
                filter: Some(json!("title = x")),
                ..SearchRequest::default()
            },
        )
        .unwrap_err();
    assert_eq!(err.code(), eddy_engine::Code::InvalidSearchFilter);
    assert!(
        err.to_string()
            .starts_with("Attribute `title` is not filterable.")
    );
    let err = engine
        .search(
            "idx",
            &SearchRequest {
                filter: Some(json!("year >")),
                ..SearchRequest::default()
            },
        )
        .unwrap_err();
    assert_eq!(err.code(), eddy_engine::Code::InvalidSearchFilter);
    // A delete by filter on a non-filterable attribute is refused, nothing deleted.
    let before = engine
        .search("idx", &SearchRequest::default())
        .unwrap()
        .total;
    let err = engine
        .delete_documents_by_filter("idx", json!("title = star"))
        .unwrap_err();
    assert_eq!(err.code(), eddy_engine::Code::InvalidDocumentFilter);
    assert_eq!(
        engine
            .search("idx", &SearchRequest::default())
            .unwrap()
            .total,
        before
    );
    // Sorting needs sortable attributes.
    let err = engine
        .search(
            "idx",
            &SearchRequest {
                sort: vec!["genre:asc".into()],
                ..SearchRequest::default()
            },
        )
        .unwrap_err();
    assert_eq!(err.code(), eddy_engine::Code::InvalidSearchSort);
}

#[test]
fn distinct_keeps_one_per_value_and_all_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), manual()).unwrap();
    let Value::Object(patch) =
        json!({"filterableAttributes": ["color"], "sortableAttributes": ["n"]})
    else {
        unreachable!()
    };
    engine.update_settings("d", patch).unwrap();
    engine
        .add_documents(
            "d",
            br#"[{"id":1,"color":"red","n":5},{"id":2,"color":"Red","n":1},{"id":3,"n":2},{"id":4,"n":3},{"id":5,"color":"blue","n":4}]"#,
            PayloadFormat::Json,
            Method::Replace,
            None,
        )
        .unwrap();
    let r = SearchRequest {
        distinct: Some("color".into()),
        sort: vec!["n:asc".into()],
        ..SearchRequest::default()
    };
    let ids: Vec<String> = engine
        .search("d", &r)
        .unwrap()
        .hits
        .into_iter()
        .map(|h| h.id)
        .collect();
    assert_eq!(ids, ["2", "3", "4", "5"]);
}

#[test]
fn searchable_attributes_and_attributes_to_search_on_restrict_matching() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), manual()).unwrap();
    engine
        .add_documents(
            "s",
            br#"[{"id":1,"title":"star","overview":"river"},{"id":2,"title":"river","overview":"stars"}]"#,
            PayloadFormat::Json,
            Method::Replace,
            None,
        )
        .unwrap();
    let search = |q: &str, on: Option<Vec<String>>| -> Vec<String> {
        let r = SearchRequest {
            q: Some(q.into()),
            attributes_to_search_on: on,
            ..SearchRequest::default()
        };
        engine
            .search("s", &r)
            .unwrap()
            .hits
            .into_iter()
            .map(|h| h.id)
            .collect()
    };
    for flushed in [false, true] {
        assert_eq!(search("star", None), ["1", "2"], "flushed: {flushed}");
        assert_eq!(search("star", Some(vec!["overview".into()])), ["2"]);
        assert_eq!(search("star", Some(vec!["title".into()])), ["1"]);
        engine.flush().unwrap();
    }
    let Value::Object(patch) = json!({"searchableAttributes": ["overview"]}) else {
        unreachable!()
    };
    engine.update_settings("s", patch).unwrap();
    assert_eq!(search("star", None), ["2"]);
    assert_eq!(search("river", None), ["1"]);
    let err = engine
        .search(
            "s",
            &SearchRequest {
                q: Some("star".into()),
                attributes_to_search_on: Some(vec!["title".into()]),
                ..SearchRequest::default()
            },
        )
        .unwrap_err();
    assert_eq!(
        err.code(),
        eddy_engine::Code::InvalidSearchAttributesToSearchOn
    );
}

#[test]
fn synonyms_are_one_way_and_threshold_drops_low_scores() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), manual()).unwrap();
    engine
        .add_documents(
            "y",
            br#"[{"id":1,"title":"sofa"},{"id":2,"title":"couch"},{"id":3,"title":"chair"}]"#,
            PayloadFormat::Json,
            Method::Replace,
            None,
        )
        .unwrap();
    let Value::Object(patch) = json!({"synonyms": {"couch": ["sofa", "big settee"]}}) else {
        unreachable!()
    };
    engine.update_settings("y", patch).unwrap();
    let search = |q: &str, threshold: Option<f64>| -> Vec<String> {
        let mut got: Vec<String> = engine
            .search(
                "y",
                &SearchRequest {
                    q: Some(q.into()),
                    ranking_score_threshold: threshold,
                    ..SearchRequest::default()
                },
            )
            .unwrap()
            .hits
            .into_iter()
            .map(|h| h.id)
            .collect();
        got.sort();
        got
    };
    for _ in 0..2 {
        assert_eq!(search("couch", None), ["1", "2"]);
        assert_eq!(search("sofa", None), ["1"]);
        assert_eq!(search("couch", Some(1.0)), Vec::<String>::new());
        assert_eq!(search("couch", Some(0.0)), ["1", "2"]);
        engine.flush().unwrap();
    }
}

#[test]
fn typos_are_refused_in_disabled_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), manual()).unwrap();
    engine
        .add_documents(
            "t",
            br#"[{"id":1,"title":"mountain","sku":"mountain"},{"id":2,"title":"river","sku":"mountain"}]"#,
            PayloadFormat::Json,
            Method::Replace,
            None,
        )
        .unwrap();
    let Value::Object(patch) = json!({"typoTolerance": {"disableOnAttributes": ["sku"]}}) else {
        unreachable!()
    };
    engine.update_settings("t", patch).unwrap();
    let search = |q: &str| -> Vec<String> {
        let mut ids: Vec<String> = engine
            .search(
                "t",
                &SearchRequest {
                    q: Some(q.into()),
                    ..SearchRequest::default()
                },
            )
            .unwrap()
            .hits
            .into_iter()
            .map(|h| h.id)
            .collect();
        ids.sort();
        ids
    };
    for _ in 0..2 {
        assert_eq!(search("mountain"), ["1", "2"]);
        // One typo: only the title may match with it.
        assert_eq!(search("mountaim "), ["1"]);
        engine.flush().unwrap();
    }
}

/// An engine over `docs`, with `settings`; `layout` 0 keeps everything in memtables, 1
/// flushes everything into a segment, 2 flushes the first half and keeps the rest in a
/// memtable.
fn engine_with(
    dir: &std::path::Path,
    uid: &str,
    docs: &[Value],
    settings: Value,
    layout: u8,
) -> Engine {
    let engine = Engine::open(dir, manual()).unwrap();
    let Value::Object(patch) = settings else {
        unreachable!()
    };
    engine.update_settings(uid, patch).unwrap();
    let half = if layout == 2 {
        docs.len() / 2
    } else {
        docs.len()
    };
    for (i, part) in [&docs[..half], &docs[half..]].into_iter().enumerate() {
        if part.is_empty() {
            continue;
        }
        let body = serde_json::to_vec(part).unwrap();
        engine
            .add_documents(uid, &body, PayloadFormat::Json, Method::Replace, None)
            .unwrap();
        // Layout 2 keeps the second half in the memtable.
        if layout == 1 || (layout == 2 && i == 0) {
            engine.flush().unwrap();
        }
    }
    engine
}

#[test]
fn multi_word_synonyms_agree_in_memtables_segments_and_mixed() {
    let docs: Vec<Value> = [
        (1, "the golden gate in san francisco", ""),
        (2, "a weekend in sf", ""),
        (3, "new york at night", ""),
        (4, "the big apple", ""),
        (5, "nyc subway", ""),
        (6, "san diego francisco", ""),
        (7, "york new", ""),
        (8, "big red apple", ""),
        (9, "other", "new york"),
        (10, "paris metro", ""),
    ]
    .into_iter()
    .map(|(id, title, body)| json!({"id": id, "title": title, "body": body}))
    .collect();
    let settings = json!({"synonyms": {
        "San Francisco": ["sf"],
        "sf": ["san francisco"],
        "nyc": ["New York", "big apple"],
        "subway": ["metro"],
    }});
    let mut answers = Vec::new();
    for layout in [0u8, 1, 2] {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine_with(dir.path(), "s", &docs, settings.clone(), layout);
        let search = |q: &str, strategy: eddy_engine::MatchingStrategy, on: Option<&[&str]>| {
            let r = engine
                .search(
                    "s",
                    &SearchRequest {
                        q: Some(q.into()),
                        strategy,
                        limit: 100,
                        attributes_to_search_on: on
                            .map(|a| a.iter().map(|s| s.to_string()).collect()),
                        ..SearchRequest::default()
                    },
                )
                .unwrap();
            assert_eq!(r.total as usize, r.hits.len());
            r.hits
                .into_iter()
                .map(|h| (h.id, h.ranking_score))
                .collect::<Vec<_>>()
        };
        let set = |hits: &[(String, f64)]| {
            let mut ids: Vec<u32> = hits.iter().map(|(id, _)| id.parse().unwrap()).collect();
            ids.sort_unstable();
            ids
        };
        use eddy_engine::MatchingStrategy::{All, Last};
        let mut answer = Vec::new();
        let mut check = |q: &str, strategy, on: Option<&[&str]>, want: &[u32]| {
            let hits = search(q, strategy, on);
            assert_eq!(
                set(&hits),
                want,
                "{q:?} {strategy:?} {on:?} layout {layout}"
            );
            answer.push(hits);
        };
        // A two-word key matches its one-word value, and the words themselves.
        check("san francisco", Last, None, &[1, 2, 6]);
        check("san francisco", All, None, &[1, 2, 6]);
        // A one-word key matches its two-word value as a phrase only.
        check("sf", Last, None, &[1, 2]);
        // Several alternatives, one-way: the values do not lead back to the key.
        check("nyc", Last, None, &[3, 4, 5, 9]);
        check("big apple", All, None, &[4, 8]);
        check("new york", All, None, &[3, 7, 9]);
        // A key inside a longer query counts for each word it stands for.
        check("in san francisco", All, None, &[1, 2]);
        check("weekend sf", All, None, &[2]);
        check("golden sf", All, None, &[1]);
        // Single-word synonyms still work; restricting attributes applies to alternatives.
        check("subway", Last, None, &[5, 10]);
        check("nyc", Last, Some(&["title"]), &[3, 4, 5]);
        check("nyc", Last, Some(&["body"]), &[9]);
        // A quoted phrase gets no synonyms.
        check("\"san francisco\"", Last, None, &[1]);
        answers.push(answer);
    }
    // Same order and scores whichever layer holds each document.
    for other in &answers[1..] {
        for (a, b) in answers[0].iter().zip(other) {
            let ids_a: Vec<&String> = a.iter().map(|h| &h.0).collect();
            let ids_b: Vec<&String> = b.iter().map(|h| &h.0).collect();
            assert_eq!(ids_a, ids_b);
            for (x, y) in a.iter().zip(b) {
                assert!((x.1 - y.1).abs() < 1e-9, "{a:?} vs {b:?}");
            }
        }
    }
}

#[test]
fn search_cutoff_returns_a_full_page_of_partial_results() {
    // The last 30 documents also hold `late`: with no budget, matching and filtering must go
    // on past the first clock check to fill a page.
    let docs: Vec<Value> = (0..3000)
        .map(|i| {
            let late = if i >= 2970 { " late" } else { "" };
            // `g`: 15 runs of 200 consecutive documents, for distinct.
            json!({"id": i, "title": format!("common word{} tag{}{late}", i % 7, i % 3), "n": i, "g": i / 200})
        })
        .collect();
    for layout in [0u8, 1, 2] {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine_with(
            dir.path(),
            "c",
            &docs,
            json!({"filterableAttributes": ["n", "g"], "sortableAttributes": ["n"]}),
            layout,
        );
        let requests = [
            SearchRequest {
                q: Some("common".into()),
                ..SearchRequest::default()
            },
            SearchRequest::default(),
            SearchRequest {
                q: Some("common tag1".into()),
                filter: Some(json!("n >= 10")),
                sort: vec!["n:desc".into()],
                ..SearchRequest::default()
            },
            SearchRequest {
                filter: Some(json!("n >= 10")),
                ..SearchRequest::default()
            },
            // Few matches, all past the first clock check.
            SearchRequest {
                q: Some("common late".into()),
                strategy: eddy_engine::MatchingStrategy::All,
                ..SearchRequest::default()
            },
            SearchRequest {
                q: Some("common".into()),
                filter: Some(json!("n >= 2980")),
                ..SearchRequest::default()
            },
            SearchRequest {
                filter: Some(json!("n >= 2980")),
                ..SearchRequest::default()
            },
            // The first documents matched share a few `g` values: a page of distinct hits
            // needs far more of them.
            SearchRequest {
                q: Some("common".into()),
                distinct: Some("g".into()),
                ..SearchRequest::default()
            },
        ];
        // Default budget (1500 ms): complete.
        let complete: Vec<_> = requests
            .iter()
            .map(|r| engine.search("c", r).unwrap())
            .collect();
        assert!(complete.iter().all(|r| !r.degraded));
        assert_eq!(complete[0].total, 3000);
        assert_eq!(complete[1].total, 3000);
        assert_eq!(complete[2].total, 2990);
        assert_eq!(complete[3].total, 2990);
        assert_eq!(complete[4].total, 30);
        assert_eq!(complete[5].total, 20);
        assert_eq!(complete[6].total, 20);
        assert_eq!(complete[7].total, 15);
        // No budget at all: a valid, degraded answer, never an error: a full page of
        // matching documents, the rest of the ranking skipped.
        let Value::Object(patch) = json!({"searchCutoffMs": 0}) else {
            unreachable!()
        };
        engine.update_settings("c", patch).unwrap();
        for (i, (r, full)) in requests.iter().zip(&complete).enumerate() {
            let got = engine.search("c", r).unwrap();
            assert!(got.degraded, "{r:?}");
            if i < 4 {
                assert!(got.total < full.total, "{r:?}");
            }
            assert!(got.total <= full.total, "{r:?}");
            let page = r.limit.min(full.total as usize);
            assert_eq!(got.hits.len(), page, "{r:?} layout {layout}");
            let mut ids: Vec<&str> = got.hits.iter().map(|h| h.id.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), page, "{r:?}");
            if r.distinct.is_some() {
                let mut groups: Vec<u64> = got
                    .hits
                    .iter()
                    .map(|h| h.document["g"].as_u64().unwrap())
                    .collect();
                groups.sort_unstable();
                groups.dedup();
                assert_eq!(groups.len(), page, "{r:?}");
            }
            for h in &got.hits {
                let n = h.document["n"].as_u64().unwrap();
                match i {
                    2 | 3 => assert!(n >= 10),
                    4 => assert!(n >= 2970),
                    5 | 6 => assert!(n >= 2980),
                    _ => {}
                }
            }
        }
        // Reset: complete again.
        let Value::Object(patch) = json!({"searchCutoffMs": null}) else {
            unreachable!()
        };
        engine.update_settings("c", patch).unwrap();
        assert_eq!(engine.search("c", &requests[0]).unwrap().total, 3000);
    }
}

#[test]
fn bm25_rule_keeps_every_word_of_long_queries() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), manual()).unwrap();
    engine
        .add_documents(
            "b",
            br#"[{"id":1,"text":"alpha"},{"id":2,"text":"omega omega"},{"id":3,"text":"nothing"}]"#,
            PayloadFormat::Json,
            Method::Replace,
            None,
        )
        .unwrap();
    // Twelve words: "omega" is the eleventh, past Meilisearch's ten.
    let q = "alpha w2 w3 w4 w5 w6 w7 w8 w9 w10 omega w12";
    let search = |engine: &Engine| -> Vec<String> {
        engine
            .search(
                "b",
                &SearchRequest {
                    q: Some(q.into()),
                    ..SearchRequest::default()
                },
            )
            .unwrap()
            .hits
            .into_iter()
            .map(|h| h.id)
            .collect()
    };
    // Default rules: the words after the tenth are ignored.
    assert_eq!(search(&engine), ["1"]);
    let Value::Object(patch) = json!({"rankingRules": ["bm25"]}) else {
        unreachable!()
    };
    engine.update_settings("b", patch).unwrap();
    for _ in 0..2 {
        // `bm25`: any word matches and every word counts; both words are equally rare, and
        // "omega" occurs twice, so BM25 ranks document 2 first.
        assert_eq!(search(&engine), ["2", "1"]);
        engine.flush().unwrap();
    }
}
