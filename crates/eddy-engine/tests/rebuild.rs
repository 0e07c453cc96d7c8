//! Live rebuild: a settings change that alters indexing rebuilds the index in the
//! background while the old one serves and takes writes; the swap is atomic (searches see
//! the old index or the new one, never a mix); writes made meanwhile are all in the new
//! one; a crash at any step of the rebuild loses nothing and the rebuild completes after
//! reopening; deleting the index or changing settings again during a rebuild behaves.
//!
//! The tests pause the rebuild at a failpoint (`Gate`) to make writes, deletions and
//! settings changes happen *during* the rebuild without relying on timing.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use eddy_engine::{
    Engine, EngineConfig, Error, MergeStrategy, Method, PayloadFormat, SearchRequest, Task,
    TaskFilter, TaskStatus,
};
use parking_lot::{Condvar, Mutex};
use serde_json::{Value, json};

/// Bound on waiting for a rebuild (a hang guard, not a timing assertion).
const WAIT: Duration = Duration::from_secs(600);

fn manual() -> EngineConfig {
    EngineConfig {
        merge_strategy: MergeStrategy::Manual,
        ..EngineConfig::default()
    }
}

fn total(engine: &Engine, q: &str) -> u64 {
    engine
        .search(
            "r",
            &SearchRequest {
                q: Some(q.into()),
                limit: 0,
                ..SearchRequest::default()
            },
        )
        .unwrap()
        .total
}

fn patch(v: Value) -> serde_json::Map<String, Value> {
    let Value::Object(patch) = v else {
        unreachable!()
    };
    patch
}

/// Changes settings and returns the task as the write returned it.
fn settings_async(engine: &Engine, v: Value) -> Task {
    engine.update_settings("r", patch(v)).unwrap()
}

/// Changes settings and waits for the task to succeed.
fn settings(engine: &Engine, v: Value) {
    let t = settings_async(engine, v);
    let t = engine.wait_for_task(t.uid, WAIT).unwrap();
    assert_eq!(t.status, TaskStatus::Succeeded, "{t:?}");
}

fn add(engine: &Engine, docs: &[Value]) {
    let t = engine
        .add_documents(
            "r",
            &serde_json::to_vec(docs).unwrap(),
            PayloadFormat::Json,
            Method::Replace,
            Some("id".into()),
        )
        .unwrap();
    assert_eq!(t.status, TaskStatus::Succeeded, "{t:?}");
}

fn all_docs(engine: &Engine) -> BTreeMap<String, Value> {
    let (docs, total) = engine.documents("r", 0, usize::MAX, None).unwrap();
    assert_eq!(docs.len() as u64, total);
    docs.into_iter()
        .map(|d| (d["id"].to_string(), Value::Object(d)))
        .collect()
}

/// Pauses the rebuilder at one failpoint (the first time it is reached) until released.
#[derive(Default)]
struct Gate {
    state: Mutex<(bool, bool)>,
    cv: Condvar,
}

impl Gate {
    fn pass(&self) {
        let mut s = self.state.lock();
        if s.0 {
            return;
        }
        s.0 = true;
        self.cv.notify_all();
        while !s.1 {
            self.cv.wait(&mut s);
        }
    }

    fn wait_reached(&self) {
        let mut s = self.state.lock();
        while !s.0 {
            self.cv.wait(&mut s);
        }
    }

    fn release(&self) {
        self.state.lock().1 = true;
        self.cv.notify_all();
    }
}

/// A configuration whose rebuilds stop at `gate_at` until the gate is released, and fail
/// (as a crash there would) at `fail_at` once armed.
fn failing(
    gate_at: &'static str,
    fail_at: Option<&'static str>,
) -> (EngineConfig, Arc<Gate>, Arc<AtomicBool>) {
    let gate = Arc::new(Gate::default());
    let armed = Arc::new(AtomicBool::new(false));
    let (g, a) = (gate.clone(), armed.clone());
    let mut cfg = manual();
    cfg.write_buffer_bytes = 64 << 10;
    cfg.failpoint = Some(Arc::new(move |name| {
        if name == gate_at {
            g.pass();
        }
        if Some(name) == fail_at && a.load(Ordering::SeqCst) {
            return Err(Error::Corrupt(format!("failpoint {name}")));
        }
        Ok(())
    }));
    (cfg, gate, armed)
}

fn gated(gate_at: &'static str) -> (EngineConfig, Arc<Gate>) {
    let (cfg, gate, _) = failing(gate_at, None);
    (cfg, gate)
}

#[test]
fn tokenization_settings_rebuild_every_layer_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = Engine::open(dir.path(), manual()).unwrap();
        add(&engine, &[json!({"id": 1, "t": "foozzbar mail@box"})]);
        engine.flush().unwrap();
        add(&engine, &[json!({"id": 2, "t": "quxzzbar other@box"})]);
        assert_eq!(total(&engine, "\"bar\""), 0);
        assert_eq!(total(&engine, "\"mail\""), 1);
        settings(
            &engine,
            json!({"separatorTokens": ["zz"], "nonSeparatorTokens": ["@"]}),
        );
        assert_eq!(engine.settings("r").unwrap().separator_tokens, ["zz"]);
        assert_eq!(total(&engine, "\"bar\""), 2);
        assert_eq!(total(&engine, "\"mail\""), 0);
        assert_eq!(total(&engine, "\"mail@box\""), 1);
        // A document written after the change is analyzed the new way.
        add(&engine, &[json!({"id": 3, "t": "xzzbar"})]);
        assert_eq!(total(&engine, "\"bar\""), 3);
        engine.flush().unwrap();
        assert_eq!(total(&engine, "\"bar\""), 3);
        assert_eq!(total(&engine, "\"mail@box\""), 1);
        // Insertion order is kept.
        let ids: Vec<String> = engine
            .search("r", &SearchRequest::default())
            .unwrap()
            .hits
            .into_iter()
            .map(|h| h.id)
            .collect();
        assert_eq!(ids, ["1", "2", "3"]);
        // Back to the defaults, and a write after it, not flushed: the reopened engine
        // replays it into the rebuilt index.
        settings(
            &engine,
            json!({"separatorTokens": null, "nonSeparatorTokens": null}),
        );
        add(&engine, &[json!({"id": 4, "t": "yzzbar mail@box"})]);
        assert_eq!(total(&engine, "\"bar\""), 0);
        assert_eq!(total(&engine, "\"mail\""), 2);
    }
    let engine = Engine::open(dir.path(), manual()).unwrap();
    assert_eq!(total(&engine, "\"bar\""), 0);
    assert_eq!(total(&engine, "\"mail\""), 2);
    assert_eq!(total(&engine, ""), 4);
    // Only the rebuilt index's directory is left.
    engine.close().unwrap();
    let dirs = std::fs::read_dir(dir.path().join("indexes"))
        .unwrap()
        .count();
    assert_eq!(dirs, 1);
}

#[test]
fn settings_without_documents_or_without_tokenization_change_finish_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), manual()).unwrap();
    let t = settings_async(&engine, json!({"separatorTokens": ["zz"]}));
    assert_eq!(t.status, TaskStatus::Succeeded);
    add(&engine, &[json!({"id": 1, "t": "azzb"})]);
    assert_eq!(total(&engine, "\"b\""), 1);
    // Named but unchanged.
    let t = settings_async(&engine, json!({"separatorTokens": ["zz"]}));
    assert_eq!(t.status, TaskStatus::Succeeded);
    let t = settings_async(&engine, json!({"separatorTokens": []}));
    assert_eq!(t.status, TaskStatus::Processing);
    assert!(t.finished_at.is_none());
    let t = engine.wait_for_task(t.uid, WAIT).unwrap();
    assert_eq!(t.status, TaskStatus::Succeeded);
    assert!(t.finished_at.is_some() && t.duration.is_some());
    assert_eq!(total(&engine, "\"b\""), 0);
}

/// The check from the issue: while a rebuild of 100,000 documents runs, concurrent
/// searches never fail and concurrent writes (additions, replacements, deletions) are all
/// present afterwards, analyzed with the new settings.
#[test]
fn searches_and_writes_continue_during_a_rebuild_of_100k_documents() {
    const N: u64 = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let (mut cfg, gate) = gated("rebuild.after_copy");
    cfg.write_buffer_bytes = 8 << 20;
    let engine = Arc::new(Engine::open(dir.path(), cfg).unwrap());
    let docs: Vec<Value> = (0..N)
        .map(|i| json!({"id": i, "t": format!("w{}zzbar", i % 50)}))
        .collect();
    for chunk in docs.chunks(20_000) {
        add(&engine, chunk);
    }
    engine.flush().unwrap();
    // Some documents only in a memtable, too.
    add(&engine, &[json!({"id": N, "t": "memzzbar"})]);

    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicU64::new(0));
    let mixed = Arc::new(AtomicU64::new(0));
    let searches = Arc::new(AtomicU64::new(0));
    let searcher = {
        let (engine, stop, failures, mixed, searches) = (
            engine.clone(),
            stop.clone(),
            failures.clone(),
            mixed.clone(),
            searches.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let request = SearchRequest {
                    q: Some("\"bar\"".into()),
                    limit: 3,
                    ..SearchRequest::default()
                };
                match engine.search("r", &request) {
                    // Old index: no document has the word `bar`; new index: all but the
                    // (at most 1,000) deleted ones.
                    Ok(r) if r.total != 0 && r.total < N - 1_000 => {
                        mixed.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(_) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
                searches.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    let task = settings_async(&engine, json!({"separatorTokens": ["zz"]}));
    assert_eq!(task.status, TaskStatus::Processing);
    // Writes while the rebuild runs: new documents, replacements, deletions.
    let mut expected = all_docs(&engine);
    let mut during = 0u64;
    let mut round = 0u64;
    loop {
        round += 1;
        let new = json!({"id": N + round, "t": format!("extrazzbar {round}")});
        let replaced = json!({"id": round * 7 % N, "t": format!("replzzbar {round}")});
        add(&engine, &[new.clone(), replaced.clone()]);
        for d in [new, replaced] {
            expected.insert(d["id"].to_string(), d);
        }
        if round <= 1_000 {
            let id = N / 2 + round;
            let t = engine.delete_documents("r", vec![json!(id)]).unwrap();
            assert_eq!(t.status, TaskStatus::Succeeded);
            expected.remove(&id.to_string());
        }
        let status = engine.task(task.uid).unwrap().status;
        if status == TaskStatus::Processing {
            during += 1;
        } else {
            assert_eq!(status, TaskStatus::Succeeded);
            break;
        }
        if round == 300 {
            // The rebuild has copied the index and waits; the 300 rounds above were
            // written meanwhile (and the ones below run during its catch-up).
            gate.wait_reached();
            gate.release();
        }
    }
    stop.store(true, Ordering::Relaxed);
    searcher.join().unwrap();
    assert!(during >= 300, "only {during} writes during the rebuild");
    assert!(searches.load(Ordering::Relaxed) > 0);
    assert_eq!(failures.load(Ordering::Relaxed), 0);
    assert_eq!(mixed.load(Ordering::Relaxed), 0);
    assert_eq!(engine.settings("r").unwrap().separator_tokens, ["zz"]);
    assert_eq!(all_docs(&engine), expected);
    // Every document, the ones written during the rebuild included, is analyzed the new way.
    assert_eq!(total(&engine, "\"bar\""), expected.len() as u64);
    assert_eq!(total(&engine, "extra"), round);
    assert_eq!(total(&engine, "repl"), {
        let mut ids: Vec<u64> = (1..=round).map(|r| r * 7 % N).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter()
            .filter(|id| expected.contains_key(&id.to_string()))
            .count() as u64
    });
}

/// Kill the engine at each step of a rebuild (a failpoint error poisons it, like a crash
/// there); reopening must serve every acknowledged write and complete the rebuild.
#[test]
fn a_crash_at_any_step_of_a_rebuild_loses_nothing_and_the_rebuild_completes() {
    for point in [
        "rebuild.after_copy",
        "flush.after_commit",
        "rebuild.after_catch_up",
        "rebuild.before_swap",
        "rebuild.after_swap",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (mut cfg, gate, armed) = failing("rebuild.after_copy", Some(point));
        // Small log segments: the flush below truncates the log during the rebuild.
        cfg.wal_segment_bytes = 4 << 10;
        let engine = Engine::open(dir.path(), cfg).unwrap();
        let docs: Vec<Value> = (0..3_000)
            .map(|i| json!({"id": i, "t": format!("w{}zzbar", i % 7)}))
            .collect();
        add(&engine, &docs[..2_000]);
        engine.flush().unwrap();
        add(&engine, &docs[2_000..]);
        armed.store(true, Ordering::SeqCst);
        let task = settings_async(&engine, json!({"separatorTokens": ["zz"]}));
        let mut expected = all_docs(&engine);
        if point != "flush.after_commit" {
            gate.wait_reached();
            for i in 0..200u64 {
                let d = json!({"id": 10_000 + i, "t": "newzzbar"});
                add(&engine, std::slice::from_ref(&d));
                expected.insert(d["id"].to_string(), d);
                engine.delete_documents("r", vec![json!(i)]).unwrap();
                expected.remove(&i.to_string());
            }
            // The old index flushes what was written during the rebuild and the log is
            // truncated: it must keep what the rebuilt index will need after the swap.
            engine.flush().unwrap();
            gate.release();
        }
        let t = engine.wait_for_task(task.uid, WAIT).unwrap();
        assert!(engine.poisoned().is_some(), "{point}: {t:?}");
        assert_eq!(all_docs(&engine), expected, "{point}: reads keep working");
        drop(engine);

        let engine = Engine::open(dir.path(), manual()).unwrap();
        let t = engine.wait_for_task(task.uid, WAIT).unwrap();
        assert_eq!(t.status, TaskStatus::Succeeded, "{point}: {t:?}");
        assert_eq!(all_docs(&engine), expected, "{point}");
        assert_eq!(total(&engine, "\"bar\""), expected.len() as u64, "{point}");
        // And again after a clean close.
        engine.close().unwrap();
        let engine = Engine::open(dir.path(), manual()).unwrap();
        assert_eq!(all_docs(&engine), expected, "{point}");
        assert_eq!(total(&engine, "\"bar\""), expected.len() as u64, "{point}");
        engine.close().unwrap();
        let dirs = std::fs::read_dir(dir.path().join("indexes"))
            .unwrap()
            .count();
        assert_eq!(dirs, 1, "{point}: leftover index directories");
    }
}

fn rebuild_interrupted_by(what: impl FnOnce(&Engine)) -> (tempfile::TempDir, Engine, Task) {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, gate) = gated("rebuild.after_copy");
    let engine = Engine::open(dir.path(), cfg).unwrap();
    let docs: Vec<Value> = (0..500)
        .map(|i| json!({"id": i, "t": format!("w{i}zzbar a-b"), "g": i % 2}))
        .collect();
    add(&engine, &docs);
    let task = settings_async(&engine, json!({"separatorTokens": ["zz"]}));
    assert_eq!(task.status, TaskStatus::Processing);
    gate.wait_reached();
    what(&engine);
    gate.release();
    (dir, engine, task)
}

#[test]
fn deleting_the_index_during_a_rebuild_cancels_it() {
    let (dir, engine, task) = rebuild_interrupted_by(|engine| {
        let t = engine.delete_index("r").unwrap();
        assert_eq!(t.status, TaskStatus::Succeeded);
    });
    let t = engine.wait_for_task(task.uid, WAIT).unwrap();
    assert_eq!(t.status, TaskStatus::Canceled);
    assert_eq!(t.canceled_by, Some(task.uid + 1));
    assert!(engine.search("r", &SearchRequest::default()).is_err());
    // The index can be created again and is not rebuilt behind its back.
    add(&engine, &[json!({"id": 1, "t": "azzb"})]);
    assert_eq!(total(&engine, "\"b\""), 0);
    engine.close().unwrap();
    let engine = Engine::open(dir.path(), manual()).unwrap();
    assert_eq!(total(&engine, "\"b\""), 0);
    assert!(engine.settings("r").unwrap().separator_tokens.is_empty());
    engine.close().unwrap();
    let dirs = std::fs::read_dir(dir.path().join("indexes"))
        .unwrap()
        .count();
    assert_eq!(dirs, 1, "leftover index directories");
}

#[test]
fn another_tokenization_change_during_a_rebuild_restarts_it() {
    let mut second = None;
    let (_dir, engine, first) = rebuild_interrupted_by(|engine| {
        let t = settings_async(engine, json!({"nonSeparatorTokens": ["-"]}));
        assert_eq!(t.status, TaskStatus::Processing);
        second = Some(t);
    });
    let second = second.unwrap();
    for uid in [first.uid, second.uid] {
        let t = engine.wait_for_task(uid, WAIT).unwrap();
        assert_eq!(t.status, TaskStatus::Succeeded, "{t:?}");
    }
    let s = engine.settings("r").unwrap();
    assert_eq!(s.separator_tokens, ["zz"]);
    assert_eq!(s.non_separator_tokens, ["-"]);
    assert_eq!(total(&engine, "\"bar\""), 500);
    assert_eq!(total(&engine, "\"a-b\""), 500);
    assert_eq!(total(&engine, "\"b\""), 0);
}

#[test]
fn a_query_time_change_during_a_rebuild_applies_at_once_and_is_kept() {
    let mut deletion = None;
    let (_dir, engine, first) = rebuild_interrupted_by(|engine| {
        // The settings task is the last one before this closure runs.
        let first_uid = engine
            .tasks(&TaskFilter::default(), None, 1, false)
            .unwrap()
            .results[0]
            .uid;
        let t = settings_async(engine, json!({"filterableAttributes": ["g"]}));
        assert_eq!(t.status, TaskStatus::Succeeded);
        // The serving (old) index filters on it already.
        let r = engine
            .search(
                "r",
                &SearchRequest {
                    filter: Some(json!("g = 1")),
                    limit: 0,
                    ..SearchRequest::default()
                },
            )
            .unwrap();
        assert_eq!(r.total, 250);
        assert!(engine.settings("r").unwrap().separator_tokens.is_empty());
        assert!(engine.index_stats("r", false).unwrap().rebuilding);
        // Deleting every task deletes the finished ones only.
        let t = engine
            .delete_tasks(TaskFilter::default(), "uids=*".into())
            .unwrap();
        assert_eq!(
            engine.task(first_uid).unwrap().status,
            TaskStatus::Processing
        );
        assert!(engine.task(first_uid - 1).is_err());
        deletion = Some(t);
    });
    let deletion = deletion.unwrap();
    let t = engine.wait_for_task(first.uid, WAIT).unwrap();
    assert_eq!(t.status, TaskStatus::Succeeded);
    assert!(!engine.index_stats("r", false).unwrap().rebuilding);
    assert_eq!(
        engine.task(deletion.uid).unwrap().status,
        TaskStatus::Succeeded
    );
    let s = engine.settings("r").unwrap();
    assert_eq!(s.separator_tokens, ["zz"]);
    assert_eq!(s.filterable_attributes.len(), 1);
    assert_eq!(total(&engine, "\"bar\""), 500);
}

#[test]
fn going_back_to_the_serving_tokenization_finishes_the_rebuild_at_once() {
    let mut second = None;
    let (_dir, engine, first) = rebuild_interrupted_by(|engine| {
        let t = settings_async(engine, json!({"separatorTokens": null}));
        assert_eq!(t.status, TaskStatus::Succeeded);
        second = Some(t);
    });
    let t = engine.wait_for_task(first.uid, WAIT).unwrap();
    assert_eq!(t.status, TaskStatus::Succeeded);
    assert!(engine.settings("r").unwrap().separator_tokens.is_empty());
    assert_eq!(total(&engine, "\"bar\""), 0);
    assert_eq!(total(&engine, ""), 500);
}

#[test]
fn clearing_the_index_during_a_rebuild_restarts_it() {
    let (_dir, engine, task) = rebuild_interrupted_by(|engine| {
        engine.clear_documents("r").unwrap();
        add(engine, &[json!({"id": 1, "t": "xzzbar"})]);
    });
    let t = engine.wait_for_task(task.uid, WAIT).unwrap();
    assert_eq!(t.status, TaskStatus::Succeeded);
    assert_eq!(total(&engine, ""), 1);
    assert_eq!(total(&engine, "\"bar\""), 1);
}

/// After the swap, the rebuilt index's catch-up memtable stands for log records from the
/// copy's LSN on: checkpoints driven by another index must not truncate them away before it
/// is flushed, or a crash would lose the writes made during the rebuild.
#[test]
fn the_rebuilt_index_holds_the_log_until_its_catch_up_is_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let (mut cfg, gate) = gated("rebuild.after_copy");
    cfg.merge_strategy = MergeStrategy::Immediate;
    cfg.write_buffer_bytes = 2 << 10;
    cfg.wal_segment_bytes = 4 << 10;
    // Only full memtables freeze: the catch-up memtable stays unflushed.
    cfg.idle_freeze = Duration::from_secs(3600);
    cfg.max_memtable_age = Duration::from_secs(3600);
    let engine = Engine::open(dir.path(), cfg).unwrap();
    let docs: Vec<Value> = (0..300)
        .map(|i| json!({"id": i, "t": format!("w{i}zzbar")}))
        .collect();
    add(&engine, &docs);
    let task = settings_async(&engine, json!({"separatorTokens": ["zz"]}));
    gate.wait_reached();
    let mut expected = all_docs(&engine);
    for i in 0..100u64 {
        let d = json!({"id": 1_000 + i, "t": "newzzbar"});
        add(&engine, std::slice::from_ref(&d));
        expected.insert(d["id"].to_string(), d);
        engine.delete_documents("r", vec![json!(i)]).unwrap();
        expected.remove(&i.to_string());
    }
    gate.release();
    let t = engine.wait_for_task(task.uid, WAIT).unwrap();
    assert_eq!(t.status, TaskStatus::Succeeded);
    // Another index flushes and checkpoints (truncating the log) again and again.
    let mut mark = 0;
    for i in 0..300u64 {
        let t = engine
            .add_documents(
                "o",
                &serde_json::to_vec(&[json!({"id": i, "pad": "x".repeat(200)})]).unwrap(),
                PayloadFormat::Json,
                Method::Replace,
                Some("id".into()),
            )
            .unwrap();
        if i == 200 {
            mark = t.uid + 1;
        }
    }
    // Once a flush of `o` passed the mark, its round's checkpoint runs before the flusher
    // stops (dropping the engine joins it).
    while engine.index_stats("o", false).unwrap().checkpoint < mark {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(engine.index_stats("r", false).unwrap().memtable_bytes > 0);
    drop(engine);
    let engine = Engine::open(dir.path(), manual()).unwrap();
    assert_eq!(all_docs(&engine), expected);
    assert_eq!(total(&engine, "\"bar\""), expected.len() as u64);
}

fn cancel(engine: &Engine, filter: TaskFilter) -> Task {
    let t = engine.cancel_tasks(filter, "test".into()).unwrap();
    assert_eq!(t.status, TaskStatus::Succeeded, "{t:?}");
    t
}

#[test]
fn canceling_a_processing_rebuild_keeps_the_old_index_settings_and_writes() {
    let mut canceler = None;
    let (dir, engine, task) = rebuild_interrupted_by(|engine| {
        add(engine, &[json!({"id": 1000, "t": "newzzbar"})]);
        let t = cancel(
            engine,
            TaskFilter {
                statuses: Some(vec![TaskStatus::Processing]),
                ..TaskFilter::default()
            },
        );
        let details = t.details.clone().unwrap();
        assert_eq!(details["matchedTasks"], 1, "{t:?}");
        assert_eq!(details["canceledTasks"], 1, "{t:?}");
        // Canceled at once, before the rebuilder moves on.
        let s = engine.task(task_uid(engine)).unwrap();
        assert_eq!(s.status, TaskStatus::Canceled);
        canceler = Some(t);
        add(engine, &[json!({"id": 1001, "t": "laterzzbar"})]);
    });
    let canceler = canceler.unwrap();
    let t = engine.wait_for_task(task.uid, WAIT).unwrap();
    assert_eq!(t.status, TaskStatus::Canceled, "{t:?}");
    assert_eq!(t.canceled_by, Some(canceler.uid));
    assert!(t.finished_at.is_some() && t.duration.is_some());
    let check = |engine: &Engine| {
        // The old index serves with the old settings: nothing split on `zz`.
        assert!(engine.settings("r").unwrap().separator_tokens.is_empty());
        assert_eq!(total(engine, "\"bar\""), 0);
        assert_eq!(total(engine, ""), 502);
        let docs = all_docs(engine);
        assert!(docs.contains_key("1000") && docs.contains_key("1001"));
        assert!(!engine.index_stats("r", false).unwrap().rebuilding);
        let t = engine.task(task.uid).unwrap();
        assert_eq!(t.status, TaskStatus::Canceled);
        assert_eq!(t.canceled_by, Some(canceler.uid));
    };
    check(&engine);
    // Nothing resumes it: neither a crash (no clean close) nor a clean restart.
    drop(engine);
    let engine = Engine::open(dir.path(), manual()).unwrap();
    check(&engine);
    // A cancelation matching nothing processing cancels nothing.
    let t = cancel(
        &engine,
        TaskFilter {
            uids: Some(vec![task.uid]),
            ..TaskFilter::default()
        },
    );
    assert_eq!(t.details.unwrap()["canceledTasks"], 0);
    engine.close().unwrap();
    let engine = Engine::open(dir.path(), manual()).unwrap();
    check(&engine);
    engine.close().unwrap();
    let dirs = std::fs::read_dir(dir.path().join("indexes"))
        .unwrap()
        .count();
    assert_eq!(dirs, 1, "leftover index directories");
}

/// The uid of the (only) settings task.
fn task_uid(engine: &Engine) -> u64 {
    engine
        .tasks(
            &TaskFilter {
                types: Some(vec![eddy_engine::TaskKind::SettingsUpdate]),
                ..TaskFilter::default()
            },
            None,
            1,
            false,
        )
        .unwrap()
        .results[0]
        .uid
}

#[test]
fn canceling_one_of_two_waiting_settings_tasks_rebuilds_for_the_other() {
    let mut second = None;
    let (_dir, engine, first) = rebuild_interrupted_by(|engine| {
        let t = settings_async(engine, json!({"nonSeparatorTokens": ["-"]}));
        assert_eq!(t.status, TaskStatus::Processing);
        let c = cancel(
            engine,
            TaskFilter {
                uids: Some(vec![t.uid]),
                ..TaskFilter::default()
            },
        );
        assert_eq!(c.details.unwrap()["canceledTasks"], 1);
        second = Some(t);
    });
    let second = second.unwrap();
    let t = engine.wait_for_task(second.uid, WAIT).unwrap();
    assert_eq!(t.status, TaskStatus::Canceled, "{t:?}");
    let t = engine.wait_for_task(first.uid, WAIT).unwrap();
    assert_eq!(t.status, TaskStatus::Succeeded, "{t:?}");
    let s = engine.settings("r").unwrap();
    assert_eq!(s.separator_tokens, ["zz"]);
    assert!(s.non_separator_tokens.is_empty());
    assert_eq!(total(&engine, "\"bar\""), 500);
    assert_eq!(total(&engine, "\"a-b\""), 500);
    assert_eq!(total(&engine, "\"b\""), 500);
}
