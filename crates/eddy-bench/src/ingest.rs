//! `scripts/bench ingest [corpus]`: plain Tantivy bulk indexing against eddy's durable,
//! real-time ingest of the same documents, then search latency on both, then eddy's
//! recovery rate.
//!
//! Each phase runs in its own child process so that its peak RSS is its own.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use eddy_engine::{Engine, EngineConfig, MergeStrategy, Method, PayloadFormat, SearchRequest};
use serde_json::{Value, json};
use tantivy::collector::{Count, TopDocs};
use tantivy::query::QueryParser;
use tantivy::schema::{STORED, STRING, Schema, TEXT};
use tantivy::{Index, TantivyDocument};

use crate::corpus::{Corpus, leaves, queries};
use crate::stats::{cpu_seconds, peak_rss_mb, percentile, rss_split_mb};
use crate::typo_baseline::typo_query;

/// Documents per write.
pub const BATCH: usize = 1000;
/// Concurrent writers.
pub const WRITERS: usize = 4;

/// Runs every phase of one corpus in child processes and prints the result line.
pub fn run(corpus: &str) -> Result<Value> {
    let work = tempdir_in_target()?;
    let f = |v: &Value, k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    // Alternated pairs of the two ingest phases; the line reports the pair with the median
    // ingest ratio, and every pair's ratio beside it.
    let mut pairs = Vec::new();
    for i in 0..pairs_for(corpus) {
        let tantivy = crate::child("tantivy", corpus, &work.join(format!("tantivy-{i}")))?;
        let eddy = crate::child("eddy", corpus, &work.join(format!("eddy-{i}")))?;
        let _ = std::fs::remove_dir_all(work.join(format!("tantivy-{i}")));
        let _ = std::fs::remove_dir_all(work.join(format!("eddy-{i}")));
        let ratio = f(&eddy, "docs_per_s") / f(&tantivy, "docs_per_s");
        pairs.push((ratio, tantivy, eddy));
    }
    let ratios: Vec<f64> = pairs.iter().map(|(r, ..)| round3(*r)).collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (_, tantivy, eddy) = pairs.swap_remove(pairs.len() / 2);
    let recovery = crate::child("recovery", corpus, &work.join("recovery"))?;
    let _ = std::fs::remove_dir_all(&work);
    let budget_mb = EngineConfig::default().memory_budget_bytes as f64 / (1 << 20) as f64;
    Ok(json!({
        "bench": "ingest",
        "corpus": corpus,
        "docs": eddy["docs"],
        "tantivy_docs_per_s": f(&tantivy, "docs_per_s").round(),
        "eddy_docs_per_s": f(&eddy, "docs_per_s").round(),
        "ingest_ratio": round3(f(&eddy, "docs_per_s") / f(&tantivy, "docs_per_s")),
        "ingest_ratios_of_pairs": ratios,
        "tantivy_cpu_s": round3(f(&tantivy, "cpu_s")),
        "eddy_cpu_s": round3(f(&eddy, "cpu_s")),
        "ack_p50_ms": round3(f(&eddy, "ack_p50_ms")),
        "ack_p99_ms": round3(f(&eddy, "ack_p99_ms")),
        "visible_at_ack": eddy["visible_at_ack"],
        "visibility_checks": eddy["visibility_checks"],
        "overloaded_retries": eddy["overloaded_retries"],
        "tantivy_search_p50_us": f(&tantivy, "search_p50_us").round(),
        "eddy_search_p50_us": f(&eddy, "search_p50_us").round(),
        "search_ratio": round3(f(&eddy, "search_p50_us") / f(&tantivy, "search_p50_us")),
        "eddy_search_p99_us": f(&eddy, "search_p99_us").round(),
        "tantivy_typo_search_p50_us": f(&tantivy, "typo_search_p50_us").round(),
        "search_ratio_vs_typo_baseline": round3(
            f(&eddy, "search_p50_us") / f(&tantivy, "typo_search_p50_us")
        ),
        "memtable_docs_during_search": eddy["memtable_docs"],
        "eddy_search_warm_p50_us": f(&eddy, "search_warm_p50_us").round(),
        "eddy_search_flushed_p50_us": f(&eddy, "search_flushed_p50_us").round(),
        "search_memtable_overhead": round3(
            f(&eddy, "search_warm_p50_us") / f(&eddy, "search_flushed_p50_us")
        ),
        "peak_rss_mb": f(&eddy, "peak_rss_mb").round(),
        "tantivy_peak_rss_mb": f(&tantivy, "peak_rss_mb").round(),
        "memory_budget_mb": budget_mb,
        "recovery_docs_per_s": f(&recovery, "recovery_docs_per_s").round(),
        "recovery_docs": recovery["docs"],
    }))
}

/// How many alternated Tantivy/eddy pairs to run (`EDDY_BENCH_PAIRS`): three, which takes
/// the machine's noise out of the ratio (single runs of WordNet ranged from 0.56 to 0.72),
/// but one on the 1M-document corpus, whose pair takes minutes and varies less.
fn pairs_for(corpus: &str) -> usize {
    std::env::var("EDDY_BENCH_PAIRS")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(if corpus == "synthetic" { 1 } else { 3 })
        .max(1)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn tempdir_in_target() -> Result<std::path::PathBuf> {
    // On the real disk (not tmpfs), next to the build.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/bench-work")
        .join(format!("ingest-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Child process entry point for one phase.
pub fn phase(phase: &str, corpus: &str, dir: &Path) -> Result<Value> {
    // One copy of the corpus per process (the eddy phase held two, which counted in its
    // peak RSS).
    let corpus = Arc::new(Corpus::open(corpus)?);
    match phase {
        "tantivy" => tantivy_phase(&corpus, dir),
        "eddy" => eddy_phase(&corpus, dir),
        "recovery" => recovery_phase(&corpus, dir),
        "search" => search_phase(dir),
        other => bail!("unknown phase {other}"),
    }
}

fn tantivy_phase(corpus: &Corpus, dir: &Path) -> Result<Value> {
    std::fs::create_dir_all(dir)?;
    let mut b = Schema::builder();
    let id = b.add_text_field("id", STRING);
    let text = b.add_text_field("text", TEXT);
    let stored = b.add_bytes_field("doc", STORED);
    let index = Index::create_in_dir(dir, b.build())?;
    let started = Instant::now();
    let cpu_started = cpu_seconds();
    let mut writer: tantivy::IndexWriter = index.writer(100_000_000)?;
    let mut values = Vec::new();
    for i in 0..corpus.len() {
        let doc = corpus.doc(i);
        let mut t = TantivyDocument::new();
        t.add_text(id, corpus.id(i));
        values.clear();
        leaves(&Value::Object(doc.clone()), &mut values);
        for v in &values {
            t.add_text(text, v);
        }
        t.add_bytes(stored, &serde_json::to_vec(&doc)?);
        writer.add_document(t)?;
    }
    writer.commit()?;
    let elapsed = started.elapsed();
    let cpu = cpu_seconds() - cpu_started;
    writer.wait_merging_threads()?;
    let reader = index.reader()?;
    let searcher = reader.searcher();
    let parser = QueryParser::for_index(&index, vec![text]);
    let mut latencies = Vec::new();
    for q in queries()? {
        let t = Instant::now();
        let (query, _errors) = parser.parse_query_lenient(&q);
        let (top, _count) =
            searcher.search(&query, &(TopDocs::with_limit(10).order_by_score(), Count))?;
        for (_, addr) in top {
            let _doc: TantivyDocument = searcher.doc(addr)?;
        }
        latencies.push(t.elapsed());
    }
    // The same queries with eddy's typo and prefix rules (see `typo_baseline`).
    let mut typo_latencies = Vec::new();
    let settings = eddy_engine::Settings::default();
    for q in queries()? {
        let t = Instant::now();
        let query = typo_query(text, &q, &settings);
        let (top, _count) =
            searcher.search(&query, &(TopDocs::with_limit(10).order_by_score(), Count))?;
        for (_, addr) in top {
            let _doc: TantivyDocument = searcher.doc(addr)?;
        }
        typo_latencies.push(t.elapsed());
    }
    Ok(json!({
        "docs": corpus.len(),
        "docs_per_s": corpus.len() as f64 / elapsed.as_secs_f64(),
        "cpu_s": cpu,
        "search_p50_us": percentile(&mut latencies, 0.5).as_secs_f64() * 1e6,
        "typo_search_p50_us": percentile(&mut typo_latencies, 0.5).as_secs_f64() * 1e6,
        "peak_rss_mb": peak_rss_mb(),
    }))
}

fn bench_config() -> EngineConfig {
    let mut config = EngineConfig {
        // Keep the last writes in memtables for the search phase: only size freezes.
        idle_freeze: Duration::from_secs(3600),
        max_memtable_age: Duration::from_secs(3600),
        ..EngineConfig::default()
    };
    // The server's `--max-indexing-threads`, for comparing it with the default.
    if let Some(threads) = std::env::var("EDDY_BENCH_INDEXING_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
    {
        config.segments.writer_threads = threads;
    }
    // The bound on one merge's input, for comparing other values with the default.
    if let Some(mb) = std::env::var("EDDY_BENCH_MAX_MERGE_MB")
        .ok()
        .and_then(|t| t.parse::<u64>().ok())
    {
        config.segments.max_merge_bytes = mb << 20;
    }
    config
}

fn batch_payload(
    corpus: &Corpus,
    range: std::ops::Range<usize>,
    id_prefix: &str,
) -> Result<Vec<u8>> {
    let pk = corpus.primary_key();
    let docs: Vec<Value> = range
        .map(|i| {
            let mut d = corpus.doc(i);
            if !id_prefix.is_empty() {
                d.insert(
                    pk.to_string(),
                    json!(format!("{id_prefix}{}", corpus.id(i))),
                );
            }
            Value::Object(d)
        })
        .collect();
    Ok(serde_json::to_vec(&docs)?)
}

/// One batch in this many (by batch number, so every writer takes its share) is searched
/// for right after its ack to establish `visible_at_ack` (`EDDY_BENCH_CHECK_EVERY`; 1 checks
/// every batch). Each check is a full search by the writer that just got its ack, which is
/// client work the baseline does not do: checking every batch cost a tenth of the phase's
/// CPU, a quarter of them proves the same property (the result line reports how many).
fn visibility_every() -> usize {
    std::env::var("EDDY_BENCH_CHECK_EVERY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4usize)
        .max(1)
}

/// Writes every document with `WRITERS` threads in batches of `BATCH`.
fn ingest(
    engine: &Arc<Engine>,
    corpus: &Arc<Corpus>,
    count: usize,
    check_visible: bool,
) -> Result<Ingested> {
    let next = Arc::new(AtomicUsize::new(0));
    let visible = Arc::new(AtomicBool::new(true));
    let checks = Arc::new(AtomicUsize::new(0));
    let overloaded = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for _ in 0..WRITERS {
        let (engine, corpus, next, visible, overloaded, checks) = (
            engine.clone(),
            corpus.clone(),
            next.clone(),
            visible.clone(),
            overloaded.clone(),
            checks.clone(),
        );
        handles.push(std::thread::spawn(move || -> Result<Vec<Duration>> {
            let mut acks = Vec::new();
            loop {
                let start = next.fetch_add(BATCH, Ordering::Relaxed);
                if start >= count {
                    return Ok(acks);
                }
                let end = (start + BATCH).min(count);
                let payload = batch_payload(&corpus, start..end, "")?;
                let t = Instant::now();
                let task = loop {
                    // An overloaded engine (M1) is retried after its Retry-After, as an HTTP
                    // client would; the wait counts in the ack latency and the throughput.
                    match engine.add_documents(
                        "bench",
                        &payload,
                        PayloadFormat::Json,
                        Method::Replace,
                        Some(corpus.primary_key().to_string()),
                    ) {
                        Err(eddy_engine::Error::Overloaded { retry_after }) => {
                            overloaded.fetch_add(1, Ordering::Relaxed);
                            std::thread::sleep(retry_after);
                        }
                        other => break other?,
                    }
                };
                acks.push(t.elapsed());
                if task.status != eddy_engine::TaskStatus::Succeeded {
                    bail!("batch failed: {:?}", task.error);
                }
                if check_visible && (start / BATCH).is_multiple_of(visibility_every()) {
                    checks.fetch_add(1, Ordering::Relaxed);
                    let id = corpus.id(end - 1);
                    let r = engine.search(
                        "bench",
                        &SearchRequest {
                            q: Some(format!("\"{id}\"")),
                            limit: 50,
                            ..SearchRequest::default()
                        },
                    )?;
                    if !r.hits.iter().any(|h| h.id == id) {
                        visible.store(false, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let mut acks = Vec::new();
    for h in handles {
        acks.extend(h.join().map_err(|_| anyhow::anyhow!("writer panicked"))??);
    }
    Ok(Ingested {
        acks,
        visible: visible.load(Ordering::Relaxed),
        checks: checks.load(Ordering::Relaxed),
        overloaded: overloaded.load(Ordering::Relaxed),
    })
}

/// What [`ingest`] measured.
struct Ingested {
    /// Ack latency of every batch (retries included).
    acks: Vec<Duration>,
    /// Whether every checked batch was visible to search at once.
    visible: bool,
    /// Batches checked.
    checks: usize,
    /// `Overloaded` answers retried.
    overloaded: usize,
}

fn eddy_phase(corpus: &Arc<Corpus>, dir: &Path) -> Result<Value> {
    let config = bench_config();
    let write_buffer = config.write_buffer_bytes;
    let engine = Arc::new(Engine::open(dir, config)?);
    let sampler = MemorySampler::start(&engine);
    let started = Instant::now();
    let cpu_started = cpu_seconds();
    let Ingested {
        mut acks,
        visible,
        checks,
        overloaded,
    } = ingest(&engine, corpus, corpus.len(), true)?;
    let acked = started.elapsed();
    engine.flush()?;
    let elapsed = started.elapsed();
    let cpu = cpu_seconds() - cpu_started;
    let memory = sampler.stop();
    // Profiling aid: EDDY_BENCH_INGEST_ONLY=1 ends the phase here, so that a profile of it
    // holds the ingest alone.
    if std::env::var_os("EDDY_BENCH_INGEST_ONLY").is_some() {
        return Ok(json!({
            "docs": corpus.len(),
            "docs_per_s": corpus.len() as f64 / elapsed.as_secs_f64(),
            "cpu_s": cpu,
            "final_flush_s": (elapsed - acked).as_secs_f64(),
        }));
    }

    // Fill the active memtable up to the write buffer with new documents.
    let mut extra = 0;
    while extra < corpus.len()
        && engine.index_stats("bench", false)?.active_memtable_bytes < write_buffer * 9 / 10
    {
        let end = (extra + BATCH).min(corpus.len());
        let payload = batch_payload(corpus, extra..end, "x")?;
        engine.add_documents(
            "bench",
            &payload,
            PayloadFormat::Json,
            Method::Replace,
            None,
        )?;
        extra = end;
    }
    let queries = queries()?;
    let mut latencies = search_latencies(&engine, &queries)?;
    let docs = engine.index_stats("bench", false)?.number_of_documents;
    if docs != (corpus.len() + extra) as u64 {
        bail!("expected {} documents, found {docs}", corpus.len() + extra);
    }
    // The peak through the ingest and the search above. The passes below map more of the
    // segments' pages, which would count in it without saying anything about the ingest.
    let peak_rss = peak_rss_mb();
    // What the memtables cost a search, apart from eddy's match rules: the same queries
    // again (warm, like the pass after the flush), then with every document in segments.
    let mut warm = search_latencies(&engine, &queries)?;
    engine.flush()?;
    let mut flushed = search_latencies(&engine, &queries)?;
    Ok(json!({
        "docs": corpus.len(),
        "docs_per_s": corpus.len() as f64 / elapsed.as_secs_f64(),
        "cpu_s": cpu,
        "final_flush_s": (elapsed - acked).as_secs_f64(),
        "ack_p50_ms": percentile(&mut acks, 0.5).as_secs_f64() * 1e3,
        "ack_p99_ms": percentile(&mut acks, 0.99).as_secs_f64() * 1e3,
        "visible_at_ack": visible,
        "visibility_checks": checks,
        "overloaded_retries": overloaded,
        "memtable_docs": extra,
        "search_p50_us": percentile(&mut latencies, 0.5).as_secs_f64() * 1e6,
        "search_p99_us": percentile(&mut latencies, 0.99).as_secs_f64() * 1e6,
        "search_warm_p50_us": percentile(&mut warm, 0.5).as_secs_f64() * 1e6,
        "search_flushed_p50_us": percentile(&mut flushed, 0.5).as_secs_f64() * 1e6,
        "peak_rss_mb": peak_rss,
        "ingest_peak_rss_anon_mb": memory.anon_mb,
        "ingest_peak_rss_file_mb": memory.file_mb,
        "ingest_peak_budget_mb": memory.budget_mb,
    }))
}

/// The latency of each query (top 10) against the engine's `bench` index.
fn search_latencies(engine: &Engine, queries: &[String]) -> Result<Vec<Duration>> {
    let mut latencies = Vec::with_capacity(queries.len());
    for q in queries {
        let t = Instant::now();
        engine.search(
            "bench",
            &SearchRequest {
                q: Some(q.clone()),
                limit: 10,
                ..SearchRequest::default()
            },
        )?;
        latencies.push(t.elapsed());
    }
    Ok(latencies)
}

/// Peaks seen by [`MemorySampler`] during the ingest.
#[derive(Default)]
struct MemoryPeaks {
    anon_mb: f64,
    file_mb: f64,
    budget_mb: f64,
}

/// Samples the process's anonymous and file-backed resident memory and the engine's memory
/// budget use every 100 ms during the ingest; `EDDY_BENCH_MEMORY_TRACE=1` prints every
/// sample on stderr.
struct MemorySampler {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<MemoryPeaks>,
}

impl MemorySampler {
    fn start(engine: &Arc<Engine>) -> MemorySampler {
        let stop = Arc::new(AtomicBool::new(false));
        let (engine, stop2) = (engine.clone(), stop.clone());
        let trace = std::env::var_os("EDDY_BENCH_MEMORY_TRACE").is_some();
        let handle = std::thread::spawn(move || {
            let started = Instant::now();
            let mut peaks = MemoryPeaks::default();
            while !stop2.load(Ordering::Relaxed) {
                let (anon, file) = rss_split_mb();
                let budget = engine.memory().0 as f64 / (1 << 20) as f64;
                peaks.anon_mb = peaks.anon_mb.max(anon);
                peaks.file_mb = peaks.file_mb.max(file);
                peaks.budget_mb = peaks.budget_mb.max(budget);
                if trace {
                    eprintln!(
                        "[memory] t={:.1}s anon={anon:.0}MB file={file:.0}MB budget={budget:.0}MB",
                        started.elapsed().as_secs_f64()
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            peaks
        });
        MemorySampler { stop, handle }
    }

    fn stop(self) -> MemoryPeaks {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}

fn recovery_phase(corpus: &Arc<Corpus>, dir: &Path) -> Result<Value> {
    let count = corpus.len().min(120_000);
    let config = || EngineConfig {
        merge_strategy: MergeStrategy::Manual,
        memory_budget_bytes: 8 << 30,
        write_buffer_bytes: 4 << 30,
        ..EngineConfig::default()
    };
    {
        let engine = Arc::new(Engine::open(dir, config())?);
        ingest(&engine, corpus, count, false)?;
        // Dropped without a flush: everything must come back from the log.
    }
    let started = Instant::now();
    let engine = Engine::open(dir, config()).context("reopen")?;
    let elapsed = started.elapsed();
    let recovered = engine.recovery().documents_recovered;
    let docs = engine.index_stats("bench", false)?.number_of_documents;
    if docs != count as u64 {
        bail!("recovered {docs} documents, expected {count}");
    }
    Ok(json!({
        "docs": count,
        "recovered": recovered,
        "recovery_docs_per_s": recovered as f64 / elapsed.as_secs_f64(),
    }))
}

/// Profiling aid: searches an existing eddy directory (left by the `eddy` phase) repeatedly.
fn search_phase(dir: &Path) -> Result<Value> {
    let engine = Engine::open(
        dir,
        EngineConfig {
            merge_strategy: MergeStrategy::Manual,
            ..bench_config()
        },
    )?;
    // EDDY_BENCH_QUERY_FILE: one query per line instead of the benchmark's queries.
    let queries = match std::env::var_os("EDDY_BENCH_QUERY_FILE") {
        Some(path) => std::fs::read_to_string(path)?
            .lines()
            .map(str::to_string)
            .collect(),
        None => queries()?,
    };
    let rounds: usize = std::env::var("EDDY_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    // EDDY_BENCH_VERBOSE=1: every query's latency in µs on stderr, for finding slow ones.
    let verbose = std::env::var_os("EDDY_BENCH_VERBOSE").is_some();
    let mut latencies = Vec::new();
    for _ in 0..rounds {
        let round = search_latencies(&engine, &queries)?;
        if verbose {
            for (q, elapsed) in queries.iter().zip(&round) {
                eprintln!("{}\t{q}", elapsed.as_micros());
            }
        }
        latencies.extend(round);
    }
    Ok(json!({
        "search_p50_us": percentile(&mut latencies, 0.5).as_secs_f64() * 1e6,
        "search_p99_us": percentile(&mut latencies, 0.99).as_secs_f64() * 1e6,
    }))
}
