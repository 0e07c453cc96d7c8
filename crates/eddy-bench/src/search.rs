//! `eddy-bench search`: search features on geonames (171,075 cities with `_geo`).
//!
//! Loads the corpus (flushed into segments), then measures the p50 latency of the same
//! queries plain and with a filter, facets, a sort, and a geo filter + geo sort, each after
//! one warm-up pass (segment value columns are built on first use and cached). Finally
//! changes a tokenization setting and measures the rebuild rate. Prints one JSON line.
//! `EDDY_BENCH_DOCS` limits the number of documents (for a quick run).

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use eddy_engine::{Engine, EngineConfig, Method, PayloadFormat, SearchRequest};
use serde_json::{Map, Value, json};

use crate::corpus::data_dir;
use crate::stats::percentile;

const QUERIES: usize = 200;

fn load_geonames(limit: usize) -> Result<Vec<Map<String, Value>>> {
    let corpus_path = data_dir().join("geonames/cities.ndjson.gz");
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

fn p50_ms(engine: &Engine, requests: &[SearchRequest]) -> Result<f64> {
    for r in requests.iter().take(5) {
        engine.search("geo", r)?;
    }
    let mut times: Vec<Duration> = Vec::with_capacity(requests.len());
    for r in requests {
        let t = Instant::now();
        engine.search("geo", r)?;
        times.push(t.elapsed());
    }
    Ok(percentile(&mut times, 0.5).as_secs_f64() * 1000.0)
}

/// Runs the benchmark and returns its JSON line.
pub fn run() -> Result<Value> {
    let limit = std::env::var("EDDY_BENCH_DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    let docs = load_geonames(limit)?;
    let n = docs.len();
    let dir = tempfile_dir()?;
    let engine = Engine::open(&dir, EngineConfig::default())?;
    let settings = json!({
        "filterableAttributes": ["country", "admin1", "_geo"],
        "sortableAttributes": ["name", "_geo"]
    });
    let Value::Object(patch) = settings else {
        bail!("settings are an object")
    };
    engine.update_settings("geo", patch)?;
    for chunk in docs.chunks(10_000) {
        let payload = serde_json::to_vec(chunk)?;
        let t = engine.add_documents(
            "geo",
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

    // Queries: first words of city names spread over the corpus, with their country.
    let step = (n / QUERIES).max(1);
    let picks: Vec<(String, String, f64, f64)> = (0..n)
        .step_by(step)
        .take(QUERIES)
        .filter_map(|i| {
            let d = &docs[i];
            let name = d
                .get("name")?
                .as_str()?
                .split_whitespace()
                .next()?
                .to_string();
            let country = d.get("country")?.as_str()?.to_string();
            let lat = d.get("_geo")?.get("lat")?.as_f64()?;
            let lng = d.get("_geo")?.get("lng")?.as_f64()?;
            Some((name, country, lat, lng))
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
        .map(|(q, c, ..)| SearchRequest {
            filter: Some(json!(format!("country = \"{c}\""))),
            ..base(q)
        })
        .collect();
    let faceted: Vec<_> = picks
        .iter()
        .map(|(q, ..)| SearchRequest {
            facets: Some(vec!["country".into(), "admin1".into()]),
            ..base(q)
        })
        .collect();
    let sorted: Vec<_> = picks
        .iter()
        .map(|(q, ..)| SearchRequest {
            sort: vec!["name:asc".into()],
            ..base(q)
        })
        .collect();
    let geo: Vec<_> = picks
        .iter()
        .map(|(_, _, lat, lng)| SearchRequest {
            q: None,
            limit: 20,
            filter: Some(json!(format!("_geoRadius({lat}, {lng}, 50000)"))),
            sort: vec![format!("_geoPoint({lat}, {lng}):asc")],
            ..SearchRequest::default()
        })
        .collect();
    // Facets over every document (placeholder search), the worst case for facet counting.
    let facets_all: Vec<_> = (0..20)
        .map(|_| SearchRequest {
            q: None,
            limit: 20,
            facets: Some(vec!["country".into()]),
            ..SearchRequest::default()
        })
        .collect();
    let plain_ms = p50_ms(&engine, &plain)?;
    let facets_all_ms = p50_ms(&engine, &facets_all)?;
    let filter_ms = p50_ms(&engine, &filtered)?;
    let facets_ms = p50_ms(&engine, &faceted)?;
    let sort_ms = p50_ms(&engine, &sorted)?;
    let geo_ms = p50_ms(&engine, &geo)?;

    let Value::Object(patch) = json!({"separatorTokens": ["|"]}) else {
        bail!("settings are an object")
    };
    let t = Instant::now();
    engine.update_settings("geo", patch)?;
    let rebuild_s = t.elapsed().as_secs_f64();
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(json!({
        "bench": "search_features",
        "corpus": "geonames",
        "docs": n,
        "plain_p50_ms": plain_ms,
        "filter_p50_ms": filter_ms,
        "facets_p50_ms": facets_ms,
        "facets_all_docs_p50_ms": facets_all_ms,
        "sort_p50_ms": sort_ms,
        "geo_p50_ms": geo_ms,
        "rebuild_docs_per_s": n as f64 / rebuild_s.max(1e-9),
    }))
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("eddy-bench-search-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
