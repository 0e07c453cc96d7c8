//! Crash at every named step of a flush and a checkpoint (C1, C2).
//!
//! A writer keeps replacing, updating and deleting documents while the flusher runs
//! constantly; a failpoint makes one flush step fail, as a crash there would. The engine must
//! stop acknowledging writes (fail-stop), and after reopening, every acknowledged operation is
//! present exactly once and no deleted document comes back. The one write that failed when
//! the engine stopped may or may not be present (it may have been durable).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use eddy_engine::{Engine, EngineConfig, Error, MergeStrategy, Method, PayloadFormat, TaskStatus};
use serde_json::{Value, json};

const POINTS: [&str; 6] = [
    "flush.before_commit",
    "flush.after_commit",
    "flush.after_dir_sync",
    "flush.after_publish",
    "checkpoint.after_meta_sync",
    "checkpoint.after_truncate",
];

type State = BTreeMap<String, Value>;

#[derive(Clone, Debug)]
enum WriteOp {
    Replace(Vec<Value>),
    Update(Vec<Value>),
    Delete(Vec<String>),
}

fn apply(state: &mut State, op: &WriteOp) {
    match op {
        WriteOp::Replace(docs) => {
            for d in docs {
                state.insert(d["id"].as_str().unwrap().to_string(), d.clone());
            }
        }
        WriteOp::Update(docs) => {
            for d in docs {
                let id = d["id"].as_str().unwrap().to_string();
                let entry = state.entry(id).or_insert_with(|| json!({}));
                for (k, v) in d.as_object().unwrap() {
                    entry[k] = v.clone();
                }
            }
        }
        WriteOp::Delete(ids) => {
            for id in ids {
                state.remove(id);
            }
        }
    }
}

fn op_for(round: u64) -> WriteOp {
    let ids = |n: u64| (0..n).map(move |k| format!("d{}", (round * 7 + k * 5) % 80));
    match round % 5 {
        3 => WriteOp::Delete(ids(3).collect()),
        4 => WriteOp::Update(ids(4).map(|id| json!({"id": id, "extra": round})).collect()),
        _ => WriteOp::Replace(
            ids(12)
                .map(|id| json!({"id": id, "round": round, "text": format!("word{} common", round % 13)}))
                .collect(),
        ),
    }
}

fn run_op(engine: &Engine, op: &WriteOp) -> eddy_engine::Result<()> {
    let task = match op {
        WriteOp::Replace(docs) => engine.add_documents(
            "c",
            &serde_json::to_vec(docs).unwrap(),
            PayloadFormat::Json,
            Method::Replace,
            None,
        )?,
        WriteOp::Update(docs) => engine.add_documents(
            "c",
            &serde_json::to_vec(docs).unwrap(),
            PayloadFormat::Json,
            Method::Update,
            None,
        )?,
        WriteOp::Delete(ids) => {
            engine.delete_documents("c", ids.iter().map(|i| json!(i)).collect())?
        }
    };
    assert_eq!(task.status, TaskStatus::Succeeded, "{task:?}");
    Ok(())
}

fn read_state(engine: &Engine) -> State {
    let (docs, total) = engine.documents("c", 0, 10_000, None).unwrap();
    assert_eq!(docs.len() as u64, total);
    docs.into_iter()
        .map(|d| (d["id"].as_str().unwrap().to_string(), Value::Object(d)))
        .collect()
}

fn config() -> EngineConfig {
    let mut c = EngineConfig {
        merge_strategy: MergeStrategy::Immediate,
        write_buffer_bytes: 6 << 10,
        idle_freeze: Duration::from_millis(5),
        ..EngineConfig::default()
    };
    c.segments.writer_memory_bytes = 15_000_000;
    c
}

fn crash_at(point: &'static str, occurrence: u64) {
    let dir = tempfile::tempdir().unwrap();
    let calls = Arc::new(AtomicU64::new(0));
    let mut cfg = config();
    let calls2 = calls.clone();
    cfg.failpoint = Some(Arc::new(move |name| {
        if name == point && calls2.fetch_add(1, Ordering::SeqCst) + 1 == occurrence {
            return Err(Error::Corrupt(format!("failpoint {name}")));
        }
        Ok(())
    }));
    let engine = Engine::open(dir.path(), cfg).unwrap();
    engine.create_index("c", Some("id".into())).unwrap();
    let mut acked = State::new();
    let mut in_doubt = None;
    for round in 0..4000u64 {
        let op = op_for(round);
        match run_op(&engine, &op) {
            Ok(()) => apply(&mut acked, &op),
            Err(Error::Poisoned(_)) => {
                in_doubt = Some(op);
                break;
            }
            Err(e) => panic!("unexpected error: {e}"),
        }
        if calls.load(Ordering::SeqCst) >= occurrence && engine.poisoned().is_some() {
            // Poisoned after this write was acknowledged: the next one must fail.
            let next = op_for(round + 1);
            assert!(matches!(run_op(&engine, &next), Err(Error::Poisoned(_))));
            in_doubt = Some(next);
            break;
        }
        if round % 4 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    assert!(
        engine.poisoned().is_some(),
        "failpoint {point} #{occurrence} never fired"
    );
    // Reads keep working on a poisoned engine.
    engine.documents("c", 0, 1, None).unwrap();
    drop(engine);

    let engine = Engine::open(dir.path(), config()).unwrap();
    let recovered = read_state(&engine);
    let mut with_doubt = acked.clone();
    if let Some(op) = &in_doubt {
        apply(&mut with_doubt, op);
    }
    assert!(
        recovered == acked || recovered == with_doubt,
        "after a crash at {point} #{occurrence}: recovered {} docs, acked {} docs; first difference: {:?}",
        recovered.len(),
        acked.len(),
        acked
            .iter()
            .find(|(k, v)| recovered.get(*k) != Some(v))
            .or_else(|| recovered.iter().find(|(k, _)| !acked.contains_key(*k)))
    );
    // And it keeps working: one more write, flush, reopen.
    let op = op_for(10_000);
    run_op(&engine, &op).unwrap();
    let mut expected = recovered;
    apply(&mut expected, &op);
    engine.close().unwrap();
    let engine = Engine::open(dir.path(), config()).unwrap();
    assert_eq!(read_state(&engine), expected);
}

#[test]
fn crash_at_every_flush_and_checkpoint_step() {
    for point in POINTS {
        for occurrence in [1, 4] {
            crash_at(point, occurrence);
        }
    }
}
