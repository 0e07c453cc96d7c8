//! Power-cut crash images of the whole engine (C1, W1, R1).
//!
//! The engine runs on a [`SimDisk`]: the log, the redb metadata store and every Tantivy
//! directory live on one simulated disk that keeps written and durable bytes apart and
//! numbers every fsync (file or directory) globally. A workload of concurrent writers
//! (replace, update, delete by id, delete all, index create and delete, settings updates)
//! runs with a tiny write buffer and the `Immediate` merge strategy, so memtables freeze,
//! Tantivy commits, checkpoints and log truncations happen all along. A first run counts the
//! sync points `N`; then, for cut points `k` spread over `1..=N`, the workload runs again with
//! the power cut at sync point `k` (every write after it fails), the engine is reopened on the
//! crash image, and the result is checked against a model of what was acknowledged:
//!
//! - every acknowledged operation's task is there, with the same status, kind and details;
//! - the documents of every index are exactly those the acknowledged operations (plus those
//!   unacknowledged operations whose task survived) produce, in LSN order — each present
//!   once, at its last version; no deleted document reappears, in `documents`, `document` or
//!   search; settings are the last ones written;
//! - an unacknowledged operation is entirely there (its task too) or entirely absent;
//! - the reopened engine takes writes again.
//!
//! Every third cut leaves a torn image (random prefixes of unsynced appends, random subsets
//! of unsynced in-place writes). `EDDY_POWER_CUTS=all` runs every cut point; a number runs
//! that many.

#![allow(clippy::unwrap_used, clippy::type_complexity)]

mod sim;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use eddy_engine::{
    Engine, EngineConfig, MergeStrategy, Method, PayloadFormat, SearchRequest, Task, TaskStatus,
};
use serde_json::{Map, Value, json};
use sim::SimDisk;

const THREADS: usize = 3;
const OPS_PER_THREAD: usize = 40;
const INDEXES: [&str; 2] = ["a", "b"];
const DATA: &str = "data";

#[derive(Clone, Debug)]
enum Op {
    Replace {
        index: &'static str,
        docs: Vec<Value>,
    },
    Update {
        index: &'static str,
        docs: Vec<Value>,
    },
    Delete {
        index: &'static str,
        ids: Vec<String>,
    },
    Clear {
        index: &'static str,
    },
    CreateIndex {
        index: &'static str,
    },
    DeleteIndex {
        index: &'static str,
    },
    Settings {
        index: &'static str,
        sortable: Vec<String>,
    },
}

impl Op {
    fn index(&self) -> &'static str {
        match self {
            Op::Replace { index, .. }
            | Op::Update { index, .. }
            | Op::Delete { index, .. }
            | Op::Clear { index }
            | Op::CreateIndex { index }
            | Op::DeleteIndex { index }
            | Op::Settings { index, .. } => index,
        }
    }
}

/// A tiny deterministic generator.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % bound.max(1)
    }
}

/// The operations of writer `t`: ids `t<t>-<k>` are its own, index-level operations (and
/// deletes of everything) touch what every writer wrote.
fn plan(t: usize) -> Vec<Op> {
    let mut rng = Rng(t as u64 * 7919 + 1);
    let mut ops = Vec::new();
    ops.push(Op::CreateIndex {
        index: INDEXES[t % 2],
    });
    for n in 1..OPS_PER_THREAD {
        let index = INDEXES[rng.below(2) as usize];
        let version = format!("t{t}n{n}");
        let ids = |rng: &mut Rng, count: u64| -> Vec<String> {
            let mut ids: Vec<String> = (0..count)
                .map(|_| format!("t{t}-{}", rng.below(10)))
                .collect();
            ids.sort();
            ids.dedup();
            ids
        };
        let op = match rng.below(100) {
            0..45 => {
                let count = 1 + rng.below(6);
                let docs = ids(&mut rng, count)
                    .into_iter()
                    .map(|id| {
                        json!({
                            "id": id,
                            "text": format!("common w{} {version}", rng.below(5)),
                            "version": version,
                        })
                    })
                    .collect();
                Op::Replace { index, docs }
            }
            45..60 => {
                let count = 1 + rng.below(3);
                let docs = ids(&mut rng, count)
                    .into_iter()
                    .map(|id| json!({"id": id, "patch": version}))
                    .collect();
                Op::Update { index, docs }
            }
            60..75 => {
                let count = 1 + rng.below(3);
                Op::Delete {
                    index,
                    ids: ids(&mut rng, count),
                }
            }
            75..80 => Op::Clear { index },
            80..85 => Op::DeleteIndex { index },
            85..90 => Op::CreateIndex { index },
            _ => Op::Settings {
                index,
                sortable: vec![format!("s{version}")],
            },
        };
        ops.push(op);
    }
    ops
}

fn execute(engine: &Engine, op: &Op) -> eddy_engine::Result<Task> {
    let docs_payload = |docs: &Vec<Value>| serde_json::to_vec(docs).unwrap();
    match op {
        Op::Replace { index, docs } => engine.add_documents(
            index,
            &docs_payload(docs),
            PayloadFormat::Json,
            Method::Replace,
            Some("id".into()),
        ),
        Op::Update { index, docs } => engine.add_documents(
            index,
            &docs_payload(docs),
            PayloadFormat::Json,
            Method::Update,
            Some("id".into()),
        ),
        Op::Delete { index, ids } => {
            engine.delete_documents(index, ids.iter().map(|i| json!(i)).collect())
        }
        Op::Clear { index } => engine.clear_documents(index),
        Op::CreateIndex { index } => engine.create_index(index, Some("id".into())),
        Op::DeleteIndex { index } => engine.delete_index(index),
        Op::Settings { index, sortable } => {
            let mut patch = Map::new();
            patch.insert("sortableAttributes".into(), json!(sortable));
            engine.update_settings(index, patch)
        }
    }
}

#[derive(Default, Clone, Debug, PartialEq)]
struct IndexModel {
    docs: BTreeMap<String, Value>,
    sortable: Vec<String>,
}

type Model = BTreeMap<String, IndexModel>;

/// Applies a successful operation to the model.
fn apply(model: &mut Model, op: &Op) {
    match op {
        Op::Replace { index, docs } => {
            let m = model.entry(index.to_string()).or_default();
            for d in docs {
                m.docs
                    .insert(d["id"].as_str().unwrap().to_string(), d.clone());
            }
        }
        Op::Update { index, docs } => {
            let m = model.entry(index.to_string()).or_default();
            for d in docs {
                let id = d["id"].as_str().unwrap().to_string();
                let entry = m.docs.entry(id).or_insert_with(|| json!({}));
                for (k, v) in d.as_object().unwrap() {
                    entry[k] = v.clone();
                }
            }
        }
        Op::Delete { index, ids } => {
            if let Some(m) = model.get_mut(*index) {
                for id in ids {
                    m.docs.remove(id);
                }
            }
        }
        Op::Clear { index } => {
            if let Some(m) = model.get_mut(*index) {
                m.docs.clear();
            }
        }
        Op::CreateIndex { index } => {
            model.entry(index.to_string()).or_default();
        }
        Op::DeleteIndex { index } => {
            model.remove(*index);
        }
        Op::Settings { index, sortable } => {
            model.entry(index.to_string()).or_default().sortable = sortable.clone();
        }
    }
}

fn config(disk: &SimDisk, strategy: MergeStrategy) -> EngineConfig {
    let mut c = EngineConfig {
        merge_strategy: strategy,
        write_buffer_bytes: 1 << 10,
        idle_freeze: Duration::from_millis(2),
        wal_segment_bytes: 4 << 10,
        overload_wait: Duration::from_secs(5),
        disk: Arc::new(disk.clone()),
        ..EngineConfig::default()
    };
    c.segments.writer_memory_bytes = 15_000_000;
    c
}

/// What one run of the workload acknowledged.
#[derive(Default)]
struct Outcome {
    /// LSN → (operation, task as acknowledged).
    acked: BTreeMap<u64, (Op, Task)>,
    /// Operations that returned an error (one per writer at most: a writer stops there).
    in_doubt: Vec<Op>,
}

/// Counts a finished writer, however it ends.
struct Done<'a>(&'a AtomicUsize);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn run_workload(disk: &SimDisk) -> Outcome {
    let engine = match Engine::open(DATA, config(disk, MergeStrategy::Immediate)) {
        Ok(e) => e,
        Err(e) => {
            assert!(disk.is_dead(), "open failed on a live disk: {e}");
            return Outcome::default();
        }
    };
    let writers_done = AtomicUsize::new(0);
    let results: Vec<(Vec<(Op, Task)>, Option<Op>)> = std::thread::scope(|s| {
        // Flushes and checkpoints from a caller too (as `close` does), racing the flusher.
        s.spawn(|| {
            while writers_done.load(Ordering::SeqCst) < THREADS {
                std::thread::sleep(Duration::from_millis(15));
                if engine.flush().is_err() {
                    break;
                }
            }
        });
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let engine = &engine;
                let writers_done = &writers_done;
                s.spawn(move || {
                    let _done = Done(writers_done);
                    let mut acked = Vec::new();
                    for (i, op) in plan(t).into_iter().enumerate() {
                        // Pace the writers so that the flusher's rounds interleave with them.
                        std::thread::sleep(Duration::from_millis((i % 3) as u64));
                        match execute(engine, &op) {
                            Ok(task) => acked.push((op, task)),
                            Err(e) => {
                                assert!(
                                    !matches!(
                                        e,
                                        eddy_engine::Error::MalformedPayload(_)
                                            | eddy_engine::Error::InvalidIndexUid(_)
                                    ),
                                    "{e}"
                                );
                                return (acked, Some(op));
                            }
                        }
                    }
                    (acked, None)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    drop(engine);
    let mut outcome = Outcome::default();
    for (acked, doubt) in results {
        for (op, task) in acked {
            outcome.acked.insert(task.uid + 1, (op, task));
        }
        outcome.in_doubt.extend(doubt);
    }
    outcome
}

fn task_kind_matches(op: &Op, task: &Task) -> bool {
    use eddy_engine::TaskKind as K;
    let kind = match op {
        Op::Replace { .. } | Op::Update { .. } => K::DocumentAdditionOrUpdate,
        Op::Delete { .. } | Op::Clear { .. } => K::DocumentDeletion,
        Op::CreateIndex { .. } => K::IndexCreation,
        Op::DeleteIndex { .. } => K::IndexDeletion,
        Op::Settings { .. } => K::SettingsUpdate,
    };
    task.kind == kind && task.index_uid.as_deref() == Some(op.index())
}

/// Every way to assign the surviving unacknowledged tasks to the unacknowledged operations.
fn assignments(extra: &[Task], in_doubt: &[Op]) -> Vec<Vec<usize>> {
    fn go(
        i: usize,
        extra: &[Task],
        in_doubt: &[Op],
        used: &mut Vec<bool>,
        current: &mut Vec<usize>,
        out: &mut Vec<Vec<usize>>,
    ) {
        if i == extra.len() {
            out.push(current.clone());
            return;
        }
        for j in 0..in_doubt.len() {
            if !used[j] && task_kind_matches(&in_doubt[j], &extra[i]) {
                used[j] = true;
                current.push(j);
                go(i + 1, extra, in_doubt, used, current, out);
                current.pop();
                used[j] = false;
            }
        }
    }
    let mut out = Vec::new();
    go(
        0,
        extra,
        in_doubt,
        &mut vec![false; in_doubt.len()],
        &mut Vec::new(),
        &mut out,
    );
    out
}

/// The fields of a task an acknowledgement promises.
fn comparable(task: &Task) -> Value {
    json!({
        "uid": task.uid,
        "status": task.status,
        "kind": task.kind,
        "index": task.index_uid,
        "details": task.details,
        "error": task.error.as_ref().map(|e| e.code.clone()),
    })
}

/// What the reopened engine holds.
fn observe(engine: &Engine) -> Model {
    let mut model = Model::new();
    for info in engine.indexes() {
        let uid = info.uid;
        let (docs, total) = engine.documents(&uid, 0, 100_000, None).unwrap();
        assert_eq!(docs.len() as u64, total, "index {uid}: page vs total");
        let counted = engine.index_stats(&uid, false).unwrap().number_of_documents;
        assert_eq!(counted, total, "index {uid}: statistics vs listing");
        let mut m = IndexModel {
            sortable: engine.settings(&uid).unwrap().sortable_attributes,
            ..IndexModel::default()
        };
        for d in docs {
            let id = d["id"].as_str().unwrap().to_string();
            let previous = m.docs.insert(id.clone(), Value::Object(d));
            assert!(
                previous.is_none(),
                "index {uid}: document {id} listed twice"
            );
        }
        model.insert(uid, m);
    }
    model
}

/// Search and point reads agree with the listing (R1: no hidden version resurfaces).
fn check_reads(engine: &Engine, model: &Model) {
    for (uid, m) in model {
        let results = engine
            .search(
                uid,
                &SearchRequest {
                    q: Some("common".into()),
                    limit: 100_000,
                    ..SearchRequest::default()
                },
            )
            .unwrap();
        let found: Vec<String> = results.hits.iter().map(|h| h.id.clone()).collect();
        let found_set: BTreeSet<&String> = found.iter().collect();
        assert_eq!(found.len(), found_set.len(), "index {uid}: a hit twice");
        let expected: BTreeSet<&String> = m
            .docs
            .iter()
            .filter(|(_, d)| d.get("text").is_some())
            .map(|(id, _)| id)
            .collect();
        assert_eq!(found_set, expected, "index {uid}: search `common`");
        assert_eq!(results.total, expected.len() as u64, "index {uid}: total");
        for hit in &results.hits {
            assert_eq!(
                &Value::Object(hit.document.clone()),
                &m.docs[&hit.id],
                "index {uid}: search hit {} has another version",
                hit.id
            );
        }
        for (id, doc) in &m.docs {
            let got = engine.document(uid, id, None).unwrap();
            assert_eq!(&Value::Object(got), doc, "index {uid}: document {id}");
        }
    }
}

/// What recovery started from, and the acknowledged operations, for failure messages.
fn context(engine: &Engine, outcome: &Outcome) -> String {
    let mut out = format!(
        "recovery: {:?}, applied_lsn {}\n",
        engine.recovery(),
        engine.meta().applied_lsn().unwrap()
    );
    for info in engine.indexes() {
        let stats = engine.index_stats(&info.uid, false).unwrap();
        out += &format!("index {}: checkpoint {}\n", info.uid, stats.checkpoint);
    }
    for record in engine.meta().indexes().unwrap() {
        out += &format!("registry: {} id {}\n", record.uid, record.id);
    }
    for (lsn, (op, task)) in &outcome.acked {
        out += &format!("  lsn {lsn}: {:?} {:?} {op:?}\n", task.status, task.details);
    }
    for op in &outcome.in_doubt {
        out += &format!("  in doubt: {op:?}\n");
    }
    out
}

/// The model after the acknowledged operations below `lsn` (for failure messages).
fn model_before(outcome: &Outcome, lsn: u64) -> Model {
    let mut model = Model::new();
    for (_, (op, task)) in outcome.acked.range(..lsn) {
        if task.status == TaskStatus::Succeeded {
            apply(&mut model, op);
        }
    }
    model
}

/// Reopens the image and checks it against what the run acknowledged.
fn verify(image: &SimDisk, outcome: &Outcome, what: &str) {
    let engine = Engine::open(DATA, config(image, MergeStrategy::Manual))
        .unwrap_or_else(|e| panic!("{what}: reopening the crash image failed: {e}"));
    // Tasks of acknowledged operations, as acknowledged.
    for (lsn, (op, acked)) in &outcome.acked {
        let task = engine
            .task(*lsn - 1)
            .unwrap_or_else(|e| panic!("{what}: acknowledged task {} lost ({e}): {op:?}", lsn - 1));
        assert_eq!(
            comparable(&task),
            comparable(acked),
            "{what}: task {} changed; the acknowledged operations before it leave {:?} \
             documents in its index\n{}",
            lsn - 1,
            model_before(outcome, *lsn)
                .get(op.index())
                .map(|m| m.docs.len()),
            context(&engine, outcome)
        );
    }
    // Tasks nobody acknowledged: the unacknowledged operations that survived.
    let bound = outcome.acked.keys().max().copied().unwrap_or(0) + THREADS as u64 + 2;
    let extra: Vec<Task> = (0..bound)
        .filter(|uid| !outcome.acked.contains_key(&(uid + 1)))
        .filter_map(|uid| engine.task(uid).ok())
        .collect();
    assert!(
        extra.len() <= outcome.in_doubt.len(),
        "{what}: {} unacknowledged tasks survived but only {} operations were in doubt: {:?}",
        extra.len(),
        outcome.in_doubt.len(),
        extra.iter().map(comparable).collect::<Vec<_>>()
    );
    let observed = observe(&engine);
    let choices = assignments(&extra, &outcome.in_doubt);
    let mut expectations = Vec::new();
    for choice in &choices {
        let mut ops: BTreeMap<u64, (&Op, TaskStatus)> = outcome
            .acked
            .iter()
            .map(|(lsn, (op, task))| (*lsn, (op, task.status)))
            .collect();
        for (task, &j) in extra.iter().zip(choice) {
            ops.insert(task.uid + 1, (&outcome.in_doubt[j], task.status));
        }
        let mut model = Model::new();
        for (op, status) in ops.values() {
            if *status == TaskStatus::Succeeded {
                apply(&mut model, op);
            }
        }
        if model == observed {
            check_reads(&engine, &model);
            expectations.clear();
            break;
        }
        expectations.push(model);
    }
    if !expectations.is_empty() || choices.is_empty() {
        let expected = expectations.first().cloned().unwrap_or_default();
        let mut diffs = Vec::new();
        let uids: BTreeSet<&String> = expected.keys().chain(observed.keys()).collect();
        for uid in uids {
            let (e, o) = (expected.get(uid), observed.get(uid));
            if e == o {
                continue;
            }
            let (Some(e), Some(o)) = (e, o) else {
                diffs.push(format!("index {uid}: expected {e:?}, found {o:?}"));
                continue;
            };
            if e.sortable != o.sortable {
                diffs.push(format!(
                    "index {uid}: settings {:?} vs {:?}",
                    e.sortable, o.sortable
                ));
            }
            let ids: BTreeSet<&String> = e.docs.keys().chain(o.docs.keys()).collect();
            for id in ids {
                if e.docs.get(id) != o.docs.get(id) {
                    diffs.push(format!(
                        "index {uid}: document {id}: expected {:?}, found {:?}",
                        e.docs.get(id),
                        o.docs.get(id)
                    ));
                }
            }
        }
        panic!(
            "{what}: the reopened engine does not hold what was acknowledged \
             ({} acknowledged, {} in doubt, {} unacknowledged tasks survived):\n{}\n{}",
            outcome.acked.len(),
            outcome.in_doubt.len(),
            extra.len(),
            diffs.join("\n"),
            context(&engine, outcome)
        );
    }
    // The recovered engine takes writes again.
    let task = engine
        .add_documents(
            "after",
            br#"[{"id": "x", "text": "common"}]"#,
            PayloadFormat::Json,
            Method::Replace,
            None,
        )
        .unwrap();
    assert_eq!(task.status, TaskStatus::Succeeded);
    engine.close().unwrap();
}

/// One run with the power cut at sync point `k` (torn with `seed`).
fn cut_at(k: u64, seed: Option<u64>) -> bool {
    let disk = SimDisk::new();
    disk.crash_at_sync(k, seed);
    let outcome = run_workload(&disk);
    let (image, cut) = match disk.take_crash_image() {
        Some(image) => (image, true),
        // The run needed fewer sync points this time: cut the power at its end.
        None => (disk.crash(seed), false),
    };
    let what = format!(
        "power cut at sync point {k}{} ({})",
        if seed.is_some() { ", torn" } else { "" },
        if cut {
            disk.label(k).unwrap_or_default()
        } else {
            "after the run".into()
        }
    );
    verify(&image, &outcome, &what);
    cut
}

fn cut_points(n: u64) -> Vec<u64> {
    let wanted = match std::env::var("EDDY_POWER_CUTS").ok().as_deref() {
        Some("all") => n,
        Some(v) => v.parse().expect("EDDY_POWER_CUTS: `all` or a number"),
        None => 250,
    };
    if wanted >= n {
        return (1..=n).collect();
    }
    // Evenly spread, always including the first sync points (opening) and the last.
    let mut points: BTreeSet<u64> = (0..wanted)
        .map(|i| 1 + i * (n - 1) / (wanted - 1).max(1))
        .collect();
    points.insert(n);
    points.into_iter().collect()
}

#[test]
fn every_acknowledged_write_survives_a_power_cut_at_any_sync_point() {
    let started = Instant::now();
    let disk = SimDisk::new();
    let outcome = run_workload(&disk);
    assert!(outcome.in_doubt.is_empty());
    let n = disk.sync_points();
    let mut kinds: BTreeMap<&str, u64> = BTreeMap::new();
    for k in 1..=n {
        let label = disk.label(k).unwrap();
        let kind = if label.starts_with("fsync dir") {
            "directory"
        } else if label.contains("/wal/") {
            "log"
        } else if label.contains("/meta/") {
            "redb"
        } else if label.ends_with("/meta.json") {
            "tantivy meta.json"
        } else if label.contains("/indexes/") {
            "tantivy file"
        } else {
            "other"
        };
        *kinds.entry(kind).or_default() += 1;
    }
    eprintln!("sync points of the first run: {n} {kinds:?}");
    let tree = disk.tree();
    assert!(
        tree.iter()
            .any(|(p, _)| p.contains("/indexes/") && p.ends_with("meta.json")),
        "the workload never committed to Tantivy: {tree:?}"
    );
    // A clean "power cut" after the run keeps everything.
    verify(&disk.crash(None), &outcome, "power cut after the run");
    let points = cut_points(n);
    let mut cuts = 0;
    for (i, &k) in points.iter().enumerate() {
        let seed = (i % 3 == 2).then_some(k);
        if cut_at(k, seed) {
            cuts += 1;
        }
    }
    eprintln!(
        "power cuts: {} runs over {n} sync points ({cuts} cut mid-run) in {:?}",
        points.len(),
        started.elapsed()
    );
    assert!(cuts * 2 >= points.len(), "most runs should be cut mid-run");
}

/// Replaces documents `ids` of index `a` (text `t`), successfully.
fn write_ids(engine: &Engine, ids: std::ops::Range<u32>, t: &str) {
    let docs: Vec<Value> = ids.map(|i| json!({"id": i, "t": t})).collect();
    let task = engine
        .add_documents(
            "a",
            Value::Array(docs).to_string().as_bytes(),
            PayloadFormat::Json,
            Method::Replace,
            Some("id".into()),
        )
        .unwrap();
    assert_eq!(task.status, TaskStatus::Succeeded);
}

/// Under `flush` durability a power cut may lose acknowledged records, but never records
/// behind a checkpoint: the log is synced before an LSN is recorded durably elsewhere.
/// Otherwise the log came back ending below the Tantivy checkpoint, handed its LSNs out
/// again, and the next replay skipped the new writes as already checkpointed.
#[test]
fn a_power_cut_under_flush_durability_never_reuses_checkpointed_lsns() {
    let disk = SimDisk::new();
    let config = |disk: &SimDisk| EngineConfig {
        durability: eddy_engine::Durability::Flush,
        merge_strategy: MergeStrategy::Manual,
        disk: Arc::new(disk.clone()),
        ..EngineConfig::default()
    };
    let write = |engine: &Engine, ids: std::ops::Range<u32>| write_ids(engine, ids, "word");
    {
        let engine = Engine::open(DATA, config(&disk)).unwrap();
        for batch in 0..5 {
            write(&engine, batch * 10..batch * 10 + 10);
        }
        engine.flush().unwrap();
        // Acknowledged after the checkpoint, never synced: a power cut may take it.
        write(&engine, 100..101);
        let image = disk.crash(None);
        drop(engine);
        let engine = Engine::open(DATA, config(&image)).unwrap();
        write(&engine, 200..210);
        engine.close().unwrap();
        let engine = Engine::open(DATA, config(&image)).unwrap();
        let (docs, _) = engine.documents("a", 0, 1000, None).unwrap();
        let ids: BTreeSet<String> = docs.iter().map(|d| d["id"].to_string()).collect();
        for i in (0..50).chain(200..210) {
            assert!(ids.contains(&i.to_string()), "document {i} lost: {ids:?}");
        }
    }
}

/// Log segment files lost outside eddy (deleted by hand, a damaged file system) mean lost
/// acknowledged writes: opening says so instead of starting without them. A lost tail would
/// also have had the log hand checkpointed LSNs out again.
#[test]
fn missing_log_files_are_refused_at_open() {
    use eddy_engine::Disk;
    let config = |disk: &SimDisk| EngineConfig {
        merge_strategy: MergeStrategy::Manual,
        wal_segment_bytes: 4 << 10,
        disk: Arc::new(disk.clone()),
        ..EngineConfig::default()
    };
    let disk = SimDisk::new();
    let engine = Engine::open(DATA, config(&disk)).unwrap();
    for batch in 0..40u32 {
        write_ids(
            &engine,
            batch * 5..batch * 5 + 5,
            "some words to fill the log a little",
        );
        if batch == 20 {
            // A checkpoint in the middle: the log keeps what the memtable holds.
            engine.flush().unwrap();
        }
    }
    let segments = |image: &SimDisk| {
        let storage = image.wal_storage(std::path::Path::new("data/wal")).unwrap();
        let mut names: Vec<String> = storage
            .list()
            .unwrap()
            .into_iter()
            .filter(|n| n.ends_with(".wal"))
            .collect();
        names.sort();
        (storage, names)
    };
    let must_refuse = |image: &SimDisk, what: &str| match Engine::open(DATA, config(image)) {
        Ok(_) => panic!("opened a log with {what} missing"),
        Err(e) => assert!(e.to_string().contains("log files are missing"), "{e}"),
    };

    // Intact, the image opens with every document.
    let whole = disk.crash(None);
    let reopened = Engine::open(DATA, config(&whole)).unwrap();
    assert_eq!(
        reopened
            .index_stats("a", false)
            .unwrap()
            .number_of_documents,
        200
    );
    drop(reopened);

    // The oldest segment still needed, gone.
    let image = disk.crash(None);
    let (storage, names) = segments(&image);
    assert!(names.len() >= 2, "{names:?}");
    storage.remove(&names[0]).unwrap();
    must_refuse(&image, "its head");

    // Every segment gone: the log would start again at LSN 1.
    let image = disk.crash(None);
    let (storage, names) = segments(&image);
    for name in &names {
        storage.remove(name).unwrap();
    }
    must_refuse(&image, "everything");
    drop(engine);
}
