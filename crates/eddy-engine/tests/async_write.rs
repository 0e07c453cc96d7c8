//! The non-blocking write path (prepare, try_submit, await durability, complete): a write is
//! acknowledged only once durable and applied (W1, W2), hands itself back instead of blocking,
//! and is never left unapplied when abandoned.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use eddy_engine::{Engine, EngineConfig, Method, PayloadFormat, PreparedWrite, TaskStatus};

struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// A minimal executor: polls on this thread, parking between wake-ups.
fn block_on<F: Future>(future: F) -> F::Output {
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

fn doc(id: &str) -> Vec<u8> {
    format!(r#"{{"id":"{id}","text":"hello {id}"}}"#).into_bytes()
}

/// Prepares an add-or-replace of `payload` (JSON) into `docs`.
fn prepare(engine: &Engine, payload: &[u8]) -> PreparedWrite {
    engine
        .prepare_documents("docs", payload, PayloadFormat::Json, Method::Replace, None)
        .unwrap()
}

fn open(dir: &std::path::Path, config: EngineConfig) -> Engine {
    let engine = Engine::open(dir, config).unwrap();
    engine.create_index("docs", Some("id".into())).unwrap();
    engine
}

#[test]
fn a_submitted_write_is_acknowledged_once_durable_and_applied() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), EngineConfig::default());
    let prepared = prepare(&engine, &doc("a"));
    // Prepared, not yet in the log: nothing to see.
    assert!(engine.document("docs", "a", None).is_err());
    let submitted = engine
        .try_submit(prepared)
        .unwrap()
        .expect("nothing blocks");
    // Completing before the durability wait is over hands the write back.
    let mut submitted = submitted_back(submitted.try_complete());
    block_on(submitted.durable());
    let task = submitted
        .try_complete()
        .map_err(|_| "the slot is free")
        .unwrap()
        .unwrap();
    assert_eq!(task.status, TaskStatus::Succeeded);
    // Acknowledged: visible at once, and durable (it survives a reopen).
    assert!(engine.document("docs", "a", None).is_ok());
    engine.close().unwrap();
    let engine = Engine::open(dir.path(), EngineConfig::default()).unwrap();
    assert!(engine.document("docs", "a", None).is_ok());
}

fn submitted_back<T>(
    result: Result<T, Box<eddy_engine::SubmittedWrite>>,
) -> eddy_engine::SubmittedWrite {
    match result {
        Ok(_) => panic!("completed before its durability wait"),
        Err(submitted) => *submitted,
    }
}

#[test]
fn try_submit_hands_the_write_back_instead_of_waiting_for_memory() {
    let dir = tempfile::tempdir().unwrap();
    let config = EngineConfig {
        memory_budget_bytes: 64 << 10,
        ..EngineConfig::default()
    };
    let engine = open(dir.path(), config);
    // The first write holds its reservation until completed.
    let first = prepare(&engine, &doc("a"));
    let first = engine.try_submit(first).unwrap().expect("room");
    // A second one that does not fit next to it comes back unsubmitted.
    let mut big = String::from("[");
    for i in 0..400 {
        if i > 0 {
            big.push(',');
        }
        big.push_str(&format!(
            r#"{{"id":"b{i}","text":"a somewhat longer text {i}"}}"#
        ));
    }
    big.push(']');
    let second = prepare(&engine, big.as_bytes());
    let Err(second) = engine.try_submit(second).unwrap() else {
        panic!("admitted beyond the memory budget without waiting");
    };
    assert_eq!(first.complete().unwrap().status, TaskStatus::Succeeded);
    // The blocking path writes it.
    let task = engine.write_prepared(second).unwrap();
    assert_eq!(task.status, TaskStatus::Succeeded);
    assert!(engine.document("docs", "b399", None).is_ok());
}

#[test]
fn an_abandoned_submitted_write_is_still_applied() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), EngineConfig::default());
    let prepared = prepare(&engine, &doc("a"));
    let submitted = engine
        .try_submit(prepared)
        .unwrap()
        .expect("nothing blocks");
    drop(submitted);
    assert!(engine.document("docs", "a", None).is_ok());
    // Its task is recorded like any other.
    let page = engine
        .tasks(&eddy_engine::TaskFilter::default(), None, 10, false)
        .unwrap();
    assert_eq!(page.total, 2, "{:?}", page.results);
    assert!(
        page.results
            .iter()
            .all(|t| t.status == TaskStatus::Succeeded)
    );
}
