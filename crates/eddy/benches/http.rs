//! `scripts/bench http`: eddy over HTTP on loopback, in one run:
//!
//! (a) 16 clients writing single documents, each as fast as acknowledged (ack latency);
//! (b) 4 clients writing batches of 1,000 WordNet documents (docs/s);
//! (c) 8 clients searching the benchmark-game queries, idle and while (b) runs again
//!     (re-ingesting the same documents into the searched index);
//! (d) the engine in-process on the same documents (same batch size, 4 threads), for the
//!     HTTP / engine ratio;
//! (e) the engine in-process with 16 threads writing single documents, for the share of the
//!     single-document ack latency that HTTP adds.
//!
//! Prints progress on stderr and one JSON line last on stdout.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Server, data};
use eddy_engine::{Engine, EngineConfig, Method, PayloadFormat};
use serde_json::{Value, json};

const SINGLE_CLIENTS: usize = 16;
const BATCH_CLIENTS: usize = 4;
const SEARCH_CLIENTS: usize = 8;
const BATCH_DOCS: usize = 1000;

fn env_secs(name: &str, default: u64) -> Duration {
    Duration::from_secs(
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

fn wordnet_lines() -> Vec<String> {
    let file = std::fs::File::open(data("wordnet/wordnet31_synsets.ndjson.gz")).expect("wordnet");
    std::io::BufReader::new(flate2::read::GzDecoder::new(file))
        .lines()
        .map(|l| l.expect("line"))
        .filter(|l| !l.trim().is_empty())
        .collect()
}

fn queries() -> Vec<String> {
    std::fs::read_to_string(data("queries/search-benchmark-game.jsonl"))
        .expect("queries")
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["query"].as_str().map(str::to_string))
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// A minimal keep-alive HTTP/1.1 client: one `write` per request (headers and body), a
/// buffered read of the status line, the headers and a `Content-Length` body.
///
/// Client and server share the machine's cores, so the client must cost little: a
/// general-purpose client (URL parsing, a connection pool, header maps) spent more CPU per
/// request than the server's HTTP layer, and the measurements were mostly of itself.
struct Client {
    addr: String,
    host: String,
    conn: Option<BufReader<TcpStream>>,
    request: Vec<u8>,
    line: String,
}

impl Client {
    fn new(base: &str) -> Client {
        let addr = base.trim_start_matches("http://").to_string();
        Client {
            host: addr.clone(),
            addr,
            conn: None,
            request: Vec::new(),
            line: String::new(),
        }
    }

    fn connect(addr: &str) -> BufReader<TcpStream> {
        let tcp = TcpStream::connect(addr).expect("connect");
        tcp.set_nodelay(true).expect("TCP_NODELAY");
        tcp.set_read_timeout(Some(Duration::from_secs(120)))
            .expect("read timeout");
        BufReader::with_capacity(64 << 10, tcp)
    }

    /// Sends a request; returns the status and the body (appended to `body`, cleared first).
    fn send(
        &mut self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        payload: &[u8],
        body: &mut Vec<u8>,
    ) -> u16 {
        self.request.clear();
        let _ = write!(
            self.request,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n",
            self.host
        );
        if let Some(ct) = content_type {
            let _ = write!(
                self.request,
                "Content-Type: {ct}\r\nContent-Length: {}\r\n",
                payload.len()
            );
        }
        self.request.extend_from_slice(b"\r\n");
        self.request.extend_from_slice(payload);
        let request = std::mem::take(&mut self.request);
        // A kept-alive connection the server closed in the meantime (idle timeout) ends
        // before any answer: connect again and resend, once.
        for attempt in 0..2 {
            let reused = self.conn.is_some();
            let addr = &self.addr;
            let conn = self.conn.get_or_insert_with(|| Client::connect(addr));
            let sent = conn.get_mut().write_all(&request);
            self.line.clear();
            let read = sent.and_then(|()| conn.read_line(&mut self.line));
            match read {
                Ok(n) if n > 0 => break,
                _ if reused && attempt == 0 => self.conn = None,
                other => panic!("no answer: {other:?}"),
            }
        }
        self.request = request;
        let conn = self.conn.as_mut().expect("connected");
        let status: u16 = self
            .line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {:?}", self.line));
        let mut length = None;
        let mut close = false;
        loop {
            self.line.clear();
            conn.read_line(&mut self.line).expect("header");
            let line = self.line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').expect("header line");
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse::<usize>().expect("content length"));
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                panic!("unexpected Transfer-Encoding: {value}");
            }
        }
        body.clear();
        let length = length.expect("a Content-Length");
        body.resize(length, 0);
        conn.read_exact(body).expect("body");
        if close {
            self.conn = None;
        }
        status
    }
}

/// (a): single-document writes for `duration`; returns (writes/s, sorted latencies).
fn single_writes(s: &Server, lines: &Arc<Vec<String>>, duration: Duration) -> (f64, Vec<Duration>) {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let handles: Vec<_> = (0..SINGLE_CLIENTS)
        .map(|_| {
            let (base, lines, next) = (s.base.clone(), lines.clone(), next.clone());
            std::thread::spawn(move || {
                let mut client = Client::new(&base);
                let mut body = Vec::new();
                let mut lat = Vec::new();
                while started.elapsed() < duration {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let line = &lines[i % lines.len()];
                    let t = Instant::now();
                    let status = client.send(
                        "POST",
                        "/indexes/single/documents",
                        Some("application/x-ndjson"),
                        line.as_bytes(),
                        &mut body,
                    );
                    lat.push(t.elapsed());
                    assert_eq!(status, 202, "{}", String::from_utf8_lossy(&body));
                }
                lat
            })
        })
        .collect();
    let mut all: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    all.sort();
    (rate, all)
}

/// Diagnostic phase `h` (not run by default): `SINGLE_CLIENTS` clients sending `GET path`
/// for `duration`, to see what the HTTP round trip alone costs next to a write's ack.
fn gets(base: &str, path: &str, duration: Duration) -> (f64, Vec<Duration>) {
    let started = Instant::now();
    let handles: Vec<_> = (0..SINGLE_CLIENTS)
        .map(|_| {
            let (base, path) = (base.to_string(), path.to_string());
            std::thread::spawn(move || {
                let mut client = Client::new(&base);
                let mut body = Vec::new();
                let mut lat = Vec::new();
                while started.elapsed() < duration {
                    let t = Instant::now();
                    let status = client.send("GET", &path, None, b"", &mut body);
                    lat.push(t.elapsed());
                    assert_eq!(status, 200);
                }
                lat
            })
        })
        .collect();
    let mut all: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    all.sort();
    (rate, all)
}

/// (b): every batch written once by `BATCH_CLIENTS` clients; returns docs/s.
fn batch_writes(base: &str, index: &str, batches: &Arc<Vec<String>>, docs: usize) -> f64 {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let handles: Vec<_> = (0..BATCH_CLIENTS)
        .map(|_| {
            let (base, index, batches, next) = (
                base.to_string(),
                index.to_string(),
                batches.clone(),
                next.clone(),
            );
            std::thread::spawn(move || {
                let mut client = Client::new(&base);
                let path = format!("/indexes/{index}/documents");
                let mut body = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(batch) = batches.get(i) else { break };
                    let status = client.send(
                        "POST",
                        &path,
                        Some("application/x-ndjson"),
                        batch.as_bytes(),
                        &mut body,
                    );
                    let text = String::from_utf8_lossy(&body);
                    assert_eq!(status, 202, "{text}");
                    assert!(text.contains("succeeded"), "{text}");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    docs as f64 / started.elapsed().as_secs_f64()
}

/// (c): searches until `stop` (or `rounds` passes over the queries); sorted latencies.
fn searches(
    base: &str,
    queries: &Arc<Vec<String>>,
    rounds: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<Duration> {
    let handles: Vec<_> = (0..SEARCH_CLIENTS)
        .map(|c| {
            let (base, queries, stop) = (base.to_string(), queries.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut client = Client::new(&base);
                let mut response = Vec::new();
                let mut lat = Vec::new();
                'outer: for _ in 0..rounds {
                    for q in queries.iter().skip(c).step_by(SEARCH_CLIENTS) {
                        if stop.load(Ordering::Relaxed) {
                            break 'outer;
                        }
                        let body = json!({"q": q}).to_string();
                        let t = Instant::now();
                        let status = client.send(
                            "POST",
                            "/indexes/wordnet/search",
                            Some("application/json"),
                            body.as_bytes(),
                            &mut response,
                        );
                        lat.push(t.elapsed());
                        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&response));
                    }
                }
                lat
            })
        })
        .collect();
    let mut all: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort();
    all
}

/// The engine in-process with `SINGLE_CLIENTS` threads writing single documents, for the
/// share of the single-document ack latency that HTTP adds.
fn engine_single_writes(lines: &Arc<Vec<String>>, duration: Duration) -> (f64, Vec<Duration>) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(Engine::open(dir.path().join("db"), EngineConfig::default()).unwrap());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let handles: Vec<_> = (0..SINGLE_CLIENTS)
        .map(|_| {
            let (engine, lines, next) = (engine.clone(), lines.clone(), next.clone());
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                while started.elapsed() < duration {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let t = Instant::now();
                    let task = engine
                        .add_documents(
                            "single",
                            lines[i % lines.len()].as_bytes(),
                            PayloadFormat::Ndjson,
                            Method::Replace,
                            None,
                        )
                        .unwrap();
                    assert_eq!(task.status, eddy_engine::TaskStatus::Succeeded);
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut all: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    all.sort();
    (rate, all)
}

/// (d): the engine in-process, same batches, 4 threads; docs/s.
fn engine_ingest(batches: &Arc<Vec<String>>, docs: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(Engine::open(dir.path().join("db"), EngineConfig::default()).unwrap());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let handles: Vec<_> = (0..BATCH_CLIENTS)
        .map(|_| {
            let (engine, batches, next) = (engine.clone(), batches.clone(), next.clone());
            std::thread::spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(batch) = batches.get(i) else { break };
                    let t = engine
                        .add_documents(
                            "wordnet",
                            batch.as_bytes(),
                            PayloadFormat::Ndjson,
                            Method::Replace,
                            None,
                        )
                        .unwrap();
                    assert_eq!(t.status, eddy_engine::TaskStatus::Succeeded, "{t:?}");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let rate = docs as f64 / started.elapsed().as_secs_f64();
    match Arc::try_unwrap(engine) {
        Ok(engine) => engine.close().unwrap(),
        Err(_) => panic!("engine still shared"),
    }
    rate
}

fn main() {
    // `EDDY_BENCH_PHASES` (default `abcde`) selects phases, for profiling one at a time; `h`
    // (GET round trips, for comparison) runs only when named.
    let phases = std::env::var("EDDY_BENCH_PHASES").unwrap_or_else(|_| "abcde".into());
    let lines = wordnet_lines();
    let docs = lines.len();
    let batches: Arc<Vec<String>> =
        Arc::new(lines.chunks(BATCH_DOCS).map(|c| c.join("\n")).collect());
    let singles: Arc<Vec<String>> = Arc::new(
        lines
            .iter()
            .map(|l| l.replacen("{\"id\": \"", "{\"id\": \"s-", 1))
            .collect(),
    );
    let queries = Arc::new(queries());
    let single_duration = env_secs("EDDY_BENCH_SINGLE_SECS", 10);
    eprintln!(
        "{docs} WordNet documents in {} batches, {} queries",
        batches.len(),
        queries.len()
    );
    let mut out = serde_json::Map::new();
    out.insert("bench".into(), json!("http"));

    if phases.contains('a') {
        // Each phase gets a fresh server: no phase pays for the previous one's flushes.
        let (server, _dir) = Server::start(&[]);
        eprintln!("server pid {}", server.pid());
        let (rate, lat) = single_writes(&server, &singles, single_duration);
        eprintln!("(a) {} single-document writes, {rate:.0}/s", lat.len());
        out.insert("single_doc_writes_per_s".into(), json!(round(rate)));
        out.insert(
            "single_doc_ack_p50_ms".into(),
            json!(round(percentile(&lat, 0.50))),
        );
        out.insert(
            "single_doc_ack_p99_ms".into(),
            json!(round(percentile(&lat, 0.99))),
        );
    }
    if phases.contains('h') {
        let (server, _dir) = Server::start(&[]);
        let mut r = server
            .agent
            .post(format!("{}/indexes/single/documents", server.base))
            .header("Content-Type", "application/x-ndjson")
            .send(singles[0].as_bytes())
            .expect("write");
        let _ = r.body_mut().read_to_string();
        for (name, path) in [("health", "/health"), ("stats", "/indexes/single/stats")] {
            let (rate, lat) = gets(&server.base, path, single_duration);
            eprintln!("(h) GET {path}: {rate:.0}/s");
            out.insert(format!("get_{name}_per_s"), json!(round(rate)));
            out.insert(
                format!("get_{name}_p50_ms"),
                json!(round(percentile(&lat, 0.50))),
            );
            out.insert(
                format!("get_{name}_p99_ms"),
                json!(round(percentile(&lat, 0.99))),
            );
        }
    }
    let mut batch_rate = None;
    if phases.contains('b') || phases.contains('c') {
        let (server, _dir) = Server::start(&[]);
        eprintln!("server pid {}", server.pid());
        let rate = batch_writes(&server.base, "wordnet", &batches, docs);
        eprintln!("(b) batches: {rate:.0} docs/s");
        out.insert("batch_docs_per_s".into(), json!(round(rate)));
        batch_rate = Some(rate);
        if phases.contains('c') {
            let never = Arc::new(AtomicBool::new(false));
            let idle = searches(&server.base, &queries, 2, &never);
            eprintln!("(c) {} idle searches", idle.len());
            let stop = Arc::new(AtomicBool::new(false));
            let search_thread = {
                let (base, queries, stop) = (server.base.clone(), queries.clone(), stop.clone());
                std::thread::spawn(move || searches(&base, &queries, usize::MAX, &stop))
            };
            let rate_under_search = batch_writes(&server.base, "wordnet", &batches, docs);
            stop.store(true, Ordering::Relaxed);
            let busy = search_thread.join().unwrap();
            eprintln!(
                "(c) {} searches while re-ingesting ({rate_under_search:.0} docs/s)",
                busy.len()
            );
            out.insert(
                "search_idle_p50_ms".into(),
                json!(round(percentile(&idle, 0.50))),
            );
            out.insert(
                "search_idle_p99_ms".into(),
                json!(round(percentile(&idle, 0.99))),
            );
            out.insert(
                "search_under_ingest_p50_ms".into(),
                json!(round(percentile(&busy, 0.50))),
            );
            out.insert(
                "search_under_ingest_p99_ms".into(),
                json!(round(percentile(&busy, 0.99))),
            );
            out.insert(
                "reingest_docs_per_s_under_search".into(),
                json!(round(rate_under_search)),
            );
        }
    }
    if phases.contains('d') {
        let engine_rate = engine_ingest(&batches, docs);
        eprintln!("(d) engine in-process: {engine_rate:.0} docs/s");
        out.insert("engine_docs_per_s".into(), json!(round(engine_rate)));
        if let Some(rate) = batch_rate {
            out.insert(
                "http_vs_engine_ratio".into(),
                json!(round(rate / engine_rate)),
            );
        }
    }
    if phases.contains('e') {
        let (rate, lat) = engine_single_writes(&singles, single_duration);
        eprintln!("(e) engine in-process single documents: {rate:.0}/s");
        out.insert("engine_single_doc_writes_per_s".into(), json!(round(rate)));
        out.insert(
            "engine_single_doc_ack_p50_ms".into(),
            json!(round(percentile(&lat, 0.50))),
        );
        out.insert(
            "engine_single_doc_ack_p99_ms".into(),
            json!(round(percentile(&lat, 0.99))),
        );
    }
    println!("{}", Value::Object(out));
}
