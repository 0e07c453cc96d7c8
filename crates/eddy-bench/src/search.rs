//! `eddy-bench search`: search features on geonames (171,075 cities with `_geo`) and WordNet
//! (117,791 synsets), then the relevance figures of `eddy-bench relevance`.
//!
//! For each corpus: loads it (flushed into segments), then measures the p50 latency of the
//! same queries plain and with a filter, facets and a sort (and, on geonames, a geo filter +
//! geo sort), each after one warm-up pass (segment value columns are built on first use and
//! cached). Finally changes a tokenization setting and measures the rebuild rate.
//!
//! Prints one JSON line: the keys (`docs`, `filter_p50_ms`, `facets_p50_ms`,
//! `sort_p50_ms`, `geo_p50_ms`, `rebuild_docs_per_s`) are geonames'; `plain_p50_ms` and the
//! `*_vs_plain` ratios (target: filter, facets and sort at most 2× plain) go with them; the
//! same keys prefixed `wordnet_` are WordNet's; `scifact_ndcg10` and `cranfield_ndcg10` come
//! from the relevance benchmark (BM25 settings, test queries) run in the same process.
//! `EDDY_BENCH_DOCS` limits the number of documents of each corpus (for a quick run);
//! `EDDY_BENCH_RELEVANCE=0` skips the relevance figures.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use eddy_engine::{Engine, EngineConfig, Method, PayloadFormat, SearchRequest};
use serde_json::{Map, Value, json};

use crate::corpus::data_dir;
use crate::stats::percentile;

const QUERIES: usize = 200;

fn load_ndjson_gz(rel: &str, limit: usize) -> Result<Vec<Map<String, Value>>> {
    let corpus_path = data_dir().join(rel);
    let file = std::fs::File::open(&corpus_path)?;
    let reader = std::io::BufReader::new(flate2::read::GzDecoder::new(file));
    let mut docs = Vec::new();
    for line in std::io::BufRead::lines(reader) {
        let line = line?;
        if docs.len() >= limit {
            break;
        }
        if let Value::Object(m) = serde_json::from_str(&line)? {
            docs.push(m);
        }
    }
    Ok(docs)
}

fn p50_ms(engine: &Engine, index: &str, requests: &[SearchRequest]) -> Result<f64> {
    for r in requests.iter().take(5) {
        engine.search(index, r)?;
    }
    let mut times: Vec<Duration> = Vec::with_capacity(requests.len());
    for r in requests {
        let t = Instant::now();
        engine.search(index, r)?;
        times.push(t.elapsed());
    }
    Ok(percentile(&mut times, 0.5).as_secs_f64() * 1000.0)
}

/// What differs between the corpora.
struct Spec {
    /// Index name (also the key prefix of the corpus in the JSON line).
    name: &'static str,
    file: &'static str,
    settings: Value,
    /// A query word of a document.
    query: fn(&Map<String, Value>) -> Option<String>,
    /// The filter of a query built from the same document.
    filter: fn(&Map<String, Value>) -> Option<String>,
    facets: [&'static str; 2],
    sort: &'static str,
    /// Whether documents have `_geo` (geo filter + sort measured).
    geo: bool,
}

fn first_word(s: &str) -> Option<String> {
    s.split_whitespace().next().map(str::to_string)
}

fn specs() -> [Spec; 2] {
    [
        Spec {
            name: "geonames",
            file: "geonames/cities.ndjson.gz",
            settings: json!({
                "filterableAttributes": ["country", "admin1", "_geo"],
                "sortableAttributes": ["name", "_geo"]
            }),
            query: |d| first_word(d.get("name")?.as_str()?),
            filter: |d| Some(format!("country = \"{}\"", d.get("country")?.as_str()?)),
            facets: ["country", "admin1"],
            sort: "name:asc",
            geo: true,
        },
        Spec {
            name: "wordnet",
            file: "wordnet/wordnet31_synsets.ndjson.gz",
            settings: json!({
                "filterableAttributes": ["pos", "lexname"],
                "sortableAttributes": ["pointer_count"]
            }),
            query: |d| first_word(d.get("lemmas")?.get(0)?.as_str()?),
            filter: |d| Some(format!("pos = \"{}\"", d.get("pos")?.as_str()?)),
            facets: ["pos", "lexname"],
            sort: "pointer_count:desc",
            geo: false,
        },
    ]
}

fn patch_of(v: Value) -> Result<Map<String, Value>> {
    match v {
        Value::Object(m) => Ok(m),
        _ => bail!("settings are an object"),
    }
}

/// Measures one corpus; keys without prefix.
fn run_corpus(spec: &Spec, limit: usize) -> Result<Map<String, Value>> {
    let docs = load_ndjson_gz(spec.file, limit)?;
    let n = docs.len();
    let dir = tempfile_dir()?;
    let engine = Engine::open(&dir, EngineConfig::default())?;
    let index = spec.name;
    engine.update_settings(index, patch_of(spec.settings.clone())?)?;
    for chunk in docs.chunks(10_000) {
        let payload = serde_json::to_vec(chunk)?;
        let t = engine.add_documents(
            index,
            &payload,
            PayloadFormat::Json,
            Method::Replace,
            Some("id".into()),
        )?;
        if t.status != eddy_engine::TaskStatus::Succeeded {
            bail!("ingest failed: {:?}", t.error);
        }
    }
    engine.flush()?;

    // Queries: a word of documents spread over the corpus, with their filter value.
    let step = (n / QUERIES).max(1);
    let picks: Vec<(String, String, &Map<String, Value>)> = (0..n)
        .step_by(step)
        .take(QUERIES)
        .filter_map(|i| {
            let d = &docs[i];
            Some(((spec.query)(d)?, (spec.filter)(d)?, d))
        })
        .collect();
    let base = |q: &str| SearchRequest {
        q: Some(q.to_string()),
        limit: 20,
        ..SearchRequest::default()
    };
    let plain: Vec<_> = picks.iter().map(|(q, ..)| base(q)).collect();
    let filtered: Vec<_> = picks
        .iter()
        .map(|(q, f, _)| SearchRequest {
            filter: Some(json!(f)),
            ..base(q)
        })
        .collect();
    let faceted: Vec<_> = picks
        .iter()
        .map(|(q, ..)| SearchRequest {
            facets: Some(spec.facets.iter().map(|f| (*f).to_string()).collect()),
            ..base(q)
        })
        .collect();
    let sorted: Vec<_> = picks
        .iter()
        .map(|(q, ..)| SearchRequest {
            sort: vec![spec.sort.into()],
            ..base(q)
        })
        .collect();
    // Facets over every document (placeholder search), the worst case for facet counting.
    let facets_all: Vec<_> = (0..20)
        .map(|_| SearchRequest {
            q: None,
            limit: 20,
            facets: Some(vec![spec.facets[0].into()]),
            ..SearchRequest::default()
        })
        .collect();
    let plain_ms = p50_ms(&engine, index, &plain)?;
    let facets_all_ms = p50_ms(&engine, index, &facets_all)?;
    let filter_ms = p50_ms(&engine, index, &filtered)?;
    let facets_ms = p50_ms(&engine, index, &faceted)?;
    let sort_ms = p50_ms(&engine, index, &sorted)?;
    let mut out = Map::new();
    out.insert("docs".into(), json!(n));
    out.insert("plain_p50_ms".into(), json!(plain_ms));
    out.insert("filter_p50_ms".into(), json!(filter_ms));
    out.insert("facets_p50_ms".into(), json!(facets_ms));
    out.insert("facets_all_docs_p50_ms".into(), json!(facets_all_ms));
    out.insert("sort_p50_ms".into(), json!(sort_ms));
    if spec.geo {
        let geo: Vec<_> = picks
            .iter()
            .filter_map(|(.., d)| {
                let lat = d.get("_geo")?.get("lat")?.as_f64()?;
                let lng = d.get("_geo")?.get("lng")?.as_f64()?;
                Some(SearchRequest {
                    q: None,
                    limit: 20,
                    filter: Some(json!(format!("_geoRadius({lat}, {lng}, 50000)"))),
                    sort: vec![format!("_geoPoint({lat}, {lng}):asc")],
                    ..SearchRequest::default()
                })
            })
            .collect();
        out.insert("geo_p50_ms".into(), json!(p50_ms(&engine, index, &geo)?));
    }
    let ratio = |x: f64| json!(((x / plain_ms.max(1e-9)) * 100.0).round() / 100.0);
    out.insert("filter_vs_plain".into(), ratio(filter_ms));
    out.insert("facets_vs_plain".into(), ratio(facets_ms));
    out.insert("sort_vs_plain".into(), ratio(sort_ms));

    let t = Instant::now();
    let task = engine.update_settings(index, patch_of(json!({"separatorTokens": ["|"]}))?)?;
    // The rebuild runs in the background: the rate counts until its task has succeeded.
    let task = engine.wait_for_task(task.uid, Duration::from_secs(3600))?;
    let rebuild_s = t.elapsed().as_secs_f64();
    if task.status != eddy_engine::TaskStatus::Succeeded {
        bail!("the rebuild task of {index} ended as {:?}", task.status);
    }
    out.insert(
        "rebuild_docs_per_s".into(),
        json!(n as f64 / rebuild_s.max(1e-9)),
    );
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("[search] {index}: {}", Value::Object(out.clone()));
    Ok(out)
}

/// Runs the benchmark and returns its JSON line.
///
/// # Errors
/// Data, engine and (for the relevance figures) server errors.
pub fn run() -> Result<Value> {
    let limit = std::env::var("EDDY_BENCH_DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    let mut out = Map::new();
    out.insert("bench".into(), json!("search_features"));
    for spec in specs() {
        let keys = run_corpus(&spec, limit)?;
        for (k, v) in keys {
            if spec.name == "geonames" {
                out.insert(k.clone(), v.clone());
            }
            out.insert(format!("{}_{k}", spec.name), v);
        }
    }
    if std::env::var("EDDY_BENCH_RELEVANCE").as_deref() != Ok("0") {
        let r = crate::relevance::run(&crate::relevance::Options {
            split: crate::relevance::Split::Test,
            settings: crate::relevance::bm25_settings(),
            defaults: false,
            only: None,
        })?;
        for k in ["scifact_ndcg10", "cranfield_ndcg10"] {
            out.insert(k.into(), r[k].clone());
        }
    }
    Ok(Value::Object(out))
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("eddy-bench-search-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
