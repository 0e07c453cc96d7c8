//! Crash end to end: 8 clients write single documents and batches over HTTP and record every
//! 202; the server is SIGKILLed at a random moment and restarted on the same directory. Every
//! acknowledged document must be found with its latest acknowledged version (or the version
//! of the write that was in flight at the kill, never anything else), a batch in flight is all
//! or nothing, and every task acknowledged as succeeded is still there and still succeeded.
//!
//! `EDDY_CRASH_CYCLES` sets the number of kill/restart cycles (default 20).

#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{Server, agent};
use rand::Rng;
use serde_json::{Value, json};

const CLIENTS: usize = 8;
const IDS_PER_CLIENT: usize = 40;

/// What one client knows was acknowledged.
#[derive(Default)]
struct ClientLog {
    client: usize,
    version: u64,
    /// id → latest acknowledged version.
    acked: HashMap<String, u64>,
    /// The write in flight when the connection died: ids and version.
    pending: Option<(Vec<String>, u64)>,
    /// Task uids acknowledged (the 202 said `succeeded`).
    tasks: Vec<u64>,
}

fn doc_id(client: usize, n: usize) -> String {
    format!("c{client}-{n}")
}

/// Writes until `stop` or until the server dies.
fn run_client(base: String, mut log: ClientLog, stop: Arc<AtomicBool>) -> ClientLog {
    let agent = agent();
    let mut rng = rand::rng();
    while !stop.load(Ordering::Relaxed) {
        log.version += 1;
        let v = log.version;
        let n_docs = if rng.random_bool(0.7) {
            1
        } else {
            rng.random_range(2..=25)
        };
        let ids: Vec<String> = (0..n_docs)
            .map(|_| doc_id(log.client, rng.random_range(0..IDS_PER_CLIENT)))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let docs: Vec<Value> = ids
            .iter()
            .map(|id| json!({"id": id, "v": v, "text": format!("version {v}")}))
            .collect();
        let body = if docs.len() == 1 {
            docs[0].to_string()
        } else {
            json!(docs).to_string()
        };
        log.pending = Some((ids.clone(), v));
        let sent = agent
            .post(format!("{base}/indexes/crash/documents"))
            .header("Content-Type", "application/json")
            .send(body.as_bytes());
        let Ok(mut resp) = sent else { break };
        let Ok(text) = resp.body_mut().read_to_string() else {
            break;
        };
        assert_eq!(resp.status().as_u16(), 202, "{text}");
        let summary: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(summary["status"], "succeeded", "{summary}");
        log.tasks.push(summary["taskUid"].as_u64().expect("uid"));
        for id in ids {
            log.acked.insert(id, v);
        }
        log.pending = None;
    }
    log
}

fn version_of(s: &Server, id: &str) -> Option<u64> {
    let r = s.get(&format!("/indexes/crash/documents/{id}"));
    match r.status {
        200 => Some(r.body["v"].as_u64().expect("v")),
        404 => None,
        other => panic!("GET {id}: {other} {}", r.text),
    }
}

/// Checks one client's view after a restart and folds the in-flight write into it.
fn verify(s: &Server, log: &mut ClientLog) {
    let pending = log.pending.take();
    let mut pending_applied = None;
    for n in 0..IDS_PER_CLIENT {
        let id = doc_id(log.client, n);
        let found = version_of(s, &id);
        let acked = log.acked.get(&id).copied();
        let in_pending = pending
            .as_ref()
            .filter(|(ids, _)| ids.contains(&id))
            .map(|(_, v)| *v);
        match (found, acked, in_pending) {
            (f, a, _) if f == a => {
                if in_pending.is_some() {
                    assert_ne!(
                        pending_applied,
                        Some(true),
                        "half of a batch survived ({id})"
                    );
                    pending_applied = Some(false);
                }
            }
            (Some(f), _, Some(p)) if f == p => {
                assert_ne!(
                    pending_applied,
                    Some(false),
                    "half of a batch survived ({id})"
                );
                pending_applied = Some(true);
                log.acked.insert(id, p);
            }
            (f, a, p) => {
                panic!("document {id}: found version {f:?}, acknowledged {a:?}, in flight {p:?}")
            }
        }
    }
}

fn verify_tasks(s: &Server, uids: &[u64]) {
    for chunk in uids.chunks(200) {
        let list: Vec<String> = chunk.iter().map(u64::to_string).collect();
        let r = s.get(&format!("/tasks?limit=1000&uids={}", list.join(",")));
        assert_eq!(r.status, 200, "{}", r.text);
        let found: HashMap<u64, String> = r.body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["uid"].as_u64().unwrap(),
                    t["status"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        for uid in chunk {
            assert_eq!(
                found.get(uid).map(String::as_str),
                Some("succeeded"),
                "task {uid} lost or changed"
            );
        }
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let cycles: usize = std::env::var("EDDY_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let (mut s, _dir) = Server::start(&[]);
    let r = s.post_json("/indexes", &json!({"uid": "crash", "primaryKey": "id"}));
    r.task_uid();
    let mut logs: Vec<ClientLog> = (0..CLIENTS)
        .map(|client| ClientLog {
            client,
            ..ClientLog::default()
        })
        .collect();
    let mut rng = rand::rng();
    let started = Instant::now();
    let mut total_acks = 0usize;
    for cycle in 0..cycles {
        let stop = Arc::new(AtomicBool::new(false));
        let handles: Vec<_> = logs
            .drain(..)
            .map(|log| {
                let base = s.base.clone();
                let stop = stop.clone();
                std::thread::spawn(move || run_client(base, log, stop))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(rng.random_range(50..600)));
        s.kill();
        stop.store(true, Ordering::Relaxed);
        logs = handles
            .into_iter()
            .map(|h| h.join().expect("client thread"))
            .collect();
        s.restart();
        for log in &mut logs {
            verify(&s, log);
        }
        let all: Vec<u64> = logs.iter().flat_map(|l| l.tasks.iter().copied()).collect();
        verify_tasks(&s, &all);
        total_acks = all.len();
        eprintln!("cycle {cycle}: {total_acks} acknowledged writes verified");
    }
    assert!(
        total_acks > cycles,
        "too few writes were acknowledged to prove anything"
    );
    eprintln!("{cycles} cycles in {:?}", started.elapsed());
}

/// A settings change that rebuilds the index, killed while the rebuild runs (the kill comes
/// as soon as the task is seen `processing`, with writes acknowledged meanwhile): after the
/// restart the rebuild completes, the task succeeds, and every document is there, analyzed
/// the new way.
#[test]
fn a_rebuild_killed_midway_completes_after_restart() {
    const N: usize = 30_000;
    let (mut s, _dir) = Server::start(&[]);
    let r = s.send(
        "PATCH",
        "/indexes/rb/settings",
        "application/json",
        br#"{"pagination": {"maxTotalHits": 1000000}}"#,
    );
    r.task_uid();
    let docs: Vec<Value> = (0..N)
        .map(|i| json!({"id": i, "t": format!("w{}zzbar", i % 20)}))
        .collect();
    let r = s.post_json("/indexes/rb/documents?primaryKey=id", &Value::Array(docs));
    r.task_uid();
    let r = s.send(
        "PATCH",
        "/indexes/rb/settings",
        "application/json",
        br#"{"separatorTokens": ["zz"]}"#,
    );
    let settings_uid = r.task_uid();
    let mut written = 0usize;
    for i in 0..20 {
        let r = s.post_json(
            "/indexes/rb/documents",
            &json!([{"id": N + i, "t": "newzzbar"}]),
        );
        assert_eq!(r.body["status"], "succeeded", "{}", r.body);
        written += 1;
    }
    let status = s.get(&format!("/tasks/{settings_uid}")).body["status"].clone();
    eprintln!("killed with the settings task {status}");
    s.kill();
    s.restart();
    let deadline = Instant::now() + Duration::from_secs(600);
    let task = loop {
        let t = s.get(&format!("/tasks/{settings_uid}")).body;
        if t["status"] != "processing" {
            break t;
        }
        assert!(Instant::now() < deadline, "the rebuild did not finish: {t}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(task["status"], "succeeded", "{task}");
    let stats = s.get("/indexes/rb/stats").body;
    assert_eq!(stats["numberOfDocuments"], N + written, "{stats}");
    assert_eq!(stats["isIndexing"], false);
    let r = s.post_json(
        "/indexes/rb/search",
        &json!({"q": "\"bar\"", "hitsPerPage": 1}),
    );
    assert_eq!(r.body["totalHits"], N + written, "{}", r.body);
    let r = s.post_json("/indexes/rb/search", &json!({"q": "new", "hitsPerPage": 1}));
    assert_eq!(r.body["totalHits"], written, "{}", r.body);
}
