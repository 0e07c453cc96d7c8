//! Power-cut crash images during a live rebuild (C1 with `rebuild.rs`).
//!
//! The engine runs on a [`SimDisk`] (written and durable bytes kept apart, every fsync a
//! numbered sync point). The workload writes documents, changes the tokenization (a live
//! rebuild: copy into a new directory, catch-up, durable swap), keeps writing during and
//! after the rebuild, with a tiny write buffer and the `Immediate` merge strategy so that
//! flushes, checkpoints and log truncations interleave with the rebuild. For cut points
//! spread over the first run's sync points, the power is cut there, the engine reopened on
//! the image, and:
//!
//! - every acknowledged write is there, and nothing else but the one write in doubt;
//! - an acknowledged settings task succeeds after reopening (the rebuild resumes), and then
//!   every document is analyzed with the new tokenization;
//! - exactly one index directory is left once the engine is closed.
//!
//! A second workload cancels the rebuild (`POST /tasks/cancel`) while it is held before its
//! swap: once the cancelation is acknowledged, no cut may bring the rebuild back — the
//! settings task stays canceled, the settings unchanged, nothing is rebuilt after reopening.
//!
//! `EDDY_POWER_CUTS=all` runs every cut point; a number runs that many (default 40).

#![allow(clippy::unwrap_used)]

mod sim;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use eddy_engine::{
    Engine, EngineConfig, MergeStrategy, Method, PayloadFormat, SearchRequest, TaskFilter,
    TaskStatus,
};
use parking_lot::{Condvar, Mutex};
use serde_json::{Value, json};
use sim::SimDisk;

const DATA: &str = "data";
const WAIT: Duration = Duration::from_secs(600);

type Docs = BTreeMap<String, Value>;

fn config(disk: &SimDisk, strategy: MergeStrategy) -> EngineConfig {
    let mut c = EngineConfig {
        merge_strategy: strategy,
        write_buffer_bytes: 2 << 10,
        idle_freeze: Duration::from_millis(2),
        wal_segment_bytes: 4 << 10,
        overload_wait: Duration::from_secs(5),
        disk: Arc::new(disk.clone()),
        ..EngineConfig::default()
    };
    c.segments.writer_memory_bytes = 15_000_000;
    c
}

#[derive(Clone, Debug)]
enum Write {
    Add(Value),
    Delete(String),
}

fn apply(docs: &mut Docs, w: &Write) {
    match w {
        Write::Add(d) => {
            docs.insert(d["id"].as_str().unwrap().to_string(), d.clone());
        }
        Write::Delete(id) => {
            docs.remove(id);
        }
    }
}

fn execute(engine: &Engine, w: &Write) -> eddy_engine::Result<()> {
    let task = match w {
        Write::Add(d) => engine.add_documents(
            "r",
            &serde_json::to_vec(&[d]).unwrap(),
            PayloadFormat::Json,
            Method::Replace,
            Some("id".into()),
        )?,
        Write::Delete(id) => engine.delete_documents("r", vec![json!(id)])?,
    };
    assert_eq!(task.status, TaskStatus::Succeeded, "{task:?}");
    Ok(())
}

fn doc(i: usize, tag: &str) -> Value {
    json!({"id": format!("d{i}"), "t": format!("{tag}{}zzbar", i % 7)})
}

/// What one run acknowledged.
#[derive(Default, Debug)]
struct Outcome {
    acked: Docs,
    in_doubt: Option<Write>,
    /// The settings task, if its write was acknowledged.
    settings_task: Option<u64>,
    /// Whether a cancelation of the rebuild was attempted.
    cancel_sent: bool,
    /// The cancelation task, if it was acknowledged (and canceled the settings task).
    cancel_task: Option<u64>,
}

/// Holds rebuilds before their catch-up (at `rebuild.after_copy`) until opened.
#[derive(Default)]
struct Hold {
    open: Mutex<bool>,
    cv: Condvar,
}

impl Hold {
    fn wait(&self) {
        let mut open = self.open.lock();
        while !*open {
            self.cv.wait(&mut open);
        }
    }

    fn open(&self) {
        *self.open.lock() = true;
        self.cv.notify_all();
    }
}

/// Opens the hold when dropped (before the engine, which waits for its rebuilder).
struct Opener(Arc<Hold>);

impl Drop for Opener {
    fn drop(&mut self) {
        self.0.open();
    }
}

fn run(disk: &SimDisk, cancel: bool) -> Outcome {
    let mut out = Outcome::default();
    let hold = Arc::new(Hold::default());
    let mut cfg = config(disk, MergeStrategy::Immediate);
    if cancel {
        let h = hold.clone();
        cfg.failpoint = Some(Arc::new(move |name| {
            if name == "rebuild.after_copy" {
                h.wait();
            }
            Ok(())
        }));
    }
    let Ok(engine) = Engine::open(DATA, cfg) else {
        return out;
    };
    let opener = Opener(hold);
    let mut writes: Vec<Write> = (0..150).map(|i| Write::Add(doc(i, "w"))).collect();
    let mut during = Vec::new();
    for i in 0..60 {
        during.push(if i % 3 == 2 {
            Write::Delete(format!("d{}", i * 2))
        } else {
            Write::Add(doc(150 + i, "n"))
        });
    }
    let step = |engine: &Engine, w: Write, out: &mut Outcome| -> bool {
        match execute(engine, &w) {
            Ok(()) => {
                apply(&mut out.acked, &w);
                true
            }
            Err(_) => {
                out.in_doubt = Some(w);
                false
            }
        }
    };
    for w in writes.drain(..) {
        if !step(&engine, w, &mut out) {
            return out;
        }
    }
    let mut patch = serde_json::Map::new();
    patch.insert("separatorTokens".into(), json!(["zz"]));
    match engine.update_settings("r", patch) {
        Ok(t) => out.settings_task = Some(t.uid),
        Err(_) => return out,
    }
    for (i, w) in during.into_iter().enumerate() {
        if cancel && i == 30 {
            // The rebuild cannot swap before this: it is held before its catch-up.
            out.cancel_sent = true;
            let filter = TaskFilter {
                statuses: Some(vec![TaskStatus::Processing]),
                ..TaskFilter::default()
            };
            match engine.cancel_tasks(filter, "statuses=processing".into()) {
                Ok(t) => {
                    assert_eq!(t.details.as_ref().unwrap()["canceledTasks"], 1, "{t:?}");
                    out.cancel_task = Some(t.uid);
                }
                Err(_) => return out,
            }
            opener.0.open();
        }
        if !step(&engine, w, &mut out) {
            return out;
        }
    }
    let _ = engine.wait_for_task(out.settings_task.unwrap(), WAIT);
    for i in 0..10 {
        if !step(&engine, Write::Add(doc(300 + i, "a")), &mut out) {
            return out;
        }
    }
    out
}

fn all_docs(engine: &Engine) -> Docs {
    let (docs, total) = engine.documents("r", 0, usize::MAX, None).unwrap();
    assert_eq!(docs.len() as u64, total);
    docs.into_iter()
        .map(|d| (d["id"].as_str().unwrap().to_string(), Value::Object(d)))
        .collect()
}

fn verify(image: &SimDisk, out: &Outcome, what: &str) {
    let engine = Engine::open(DATA, config(image, MergeStrategy::Manual))
        .unwrap_or_else(|e| panic!("{what}: reopening failed: {e}"));
    // Whether the rebuild was swapped in (else it was canceled).
    let mut rebuilt = out.settings_task.is_some();
    if let Some(uid) = out.settings_task {
        let t = engine.wait_for_task(uid, WAIT).unwrap();
        if let Some(by) = out.cancel_task {
            assert_eq!(t.status, TaskStatus::Canceled, "{what}: {t:?}");
            assert_eq!(t.canceled_by, Some(by), "{what}: {t:?}");
        } else if out.cancel_sent {
            // A cancelation in doubt: either outcome, but a finished one.
            assert!(
                matches!(t.status, TaskStatus::Canceled | TaskStatus::Succeeded),
                "{what}: {t:?}"
            );
        } else {
            assert_eq!(t.status, TaskStatus::Succeeded, "{what}: {t:?}");
        }
        rebuilt = t.status == TaskStatus::Succeeded;
        if !rebuilt {
            let s = engine.settings("r").unwrap();
            assert!(s.separator_tokens.is_empty(), "{what}: {s:?}");
            assert!(
                !engine.index_stats("r", false).unwrap().rebuilding,
                "{what}"
            );
        }
    }
    let found = if engine.index("r").is_ok() {
        all_docs(&engine)
    } else {
        Docs::new()
    };
    let mut with_doubt = out.acked.clone();
    if let Some(w) = &out.in_doubt {
        apply(&mut with_doubt, w);
    }
    assert!(
        found == out.acked || found == with_doubt,
        "{what}: found {} documents, acknowledged {}; first difference: {:?}",
        found.len(),
        out.acked.len(),
        out.acked
            .iter()
            .find(|(k, v)| found.get(*k) != Some(v))
            .or_else(|| found.iter().find(|(k, _)| !with_doubt.contains_key(*k)))
    );
    if out.settings_task.is_some() {
        let expected = if rebuilt { found.len() as u64 } else { 0 };
        let bar = engine
            .search(
                "r",
                &SearchRequest {
                    q: Some("\"bar\"".into()),
                    limit: 0,
                    ..SearchRequest::default()
                },
            )
            .unwrap()
            .total;
        assert_eq!(bar, expected, "{what}: rebuilt {rebuilt}");
    }
    engine.close().unwrap();
    let tree = image.tree();
    let dirs: BTreeSet<&str> = tree
        .iter()
        .filter_map(|(p, _)| p.split("/indexes/").nth(1)?.split('/').next())
        .collect();
    assert!(dirs.len() <= 1, "{what}: index directories left: {dirs:?}");
}

#[test]
fn a_power_cut_at_any_sync_point_of_a_rebuild_loses_nothing() {
    power_cuts(false);
}

#[test]
fn a_power_cut_at_any_sync_point_never_resumes_a_canceled_rebuild() {
    power_cuts(true);
}

fn power_cuts(cancel: bool) {
    let disk = SimDisk::new();
    let out = run(&disk, cancel);
    assert!(out.in_doubt.is_none() && out.settings_task.is_some());
    assert_eq!(out.cancel_task.is_some(), cancel);
    let n = disk.sync_points();
    verify(&disk.crash(None), &out, "power cut after the run");
    let wanted: u64 = match std::env::var("EDDY_POWER_CUTS").ok().as_deref() {
        Some("all") => n,
        Some(v) => v.parse().expect("EDDY_POWER_CUTS: `all` or a number"),
        None => 40,
    };
    let points: BTreeSet<u64> = (0..wanted.min(n))
        .map(|i| 1 + i * (n - 1) / (wanted.min(n) - 1).max(1))
        .collect();
    let mut cut = 0;
    for (i, &k) in points.iter().enumerate() {
        let disk = SimDisk::new();
        let seed = (i % 3 == 2).then_some(k);
        disk.crash_at_sync(k, seed);
        let out = run(&disk, cancel);
        let image = match disk.take_crash_image() {
            Some(image) => {
                cut += 1;
                image
            }
            None => disk.crash(seed),
        };
        let what = format!(
            "power cut at sync point {k}{} ({})",
            if seed.is_some() { ", torn" } else { "" },
            disk.label(k).unwrap_or_default()
        );
        verify(&image, &out, &what);
    }
    eprintln!("{} power cuts over {n} sync points", points.len());
    assert!(cut * 2 >= points.len(), "most runs should be cut mid-run");
}
