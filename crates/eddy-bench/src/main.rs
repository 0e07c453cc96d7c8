//! eddy's benchmark harness. Every benchmark runs its baseline and eddy in the same run and
//! prints one JSON line last (see `scripts/bench`).
//!
//! ```text
//! eddy-bench ingest [wordnet|scifact|synthetic ...]   # all corpora when none is named
//! eddy-bench search                                   # search features on geonames, wordnet
//! eddy-bench relevance [--split train|test] [--settings JSON] [--no-defaults]
//! ```

mod corpus;
mod ingest;
mod metrics;
mod relevance;
mod search;
mod server;
mod stats;
mod typo_baseline;

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

// The allocator of the `eddy` binary, so that eddy is measured as it runs (the Tantivy
// baselines, in the same process, get it too).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Runs one phase in a child process and returns the JSON object it printed last.
pub(crate) fn child(phase: &str, corpus: &str, dir: &Path) -> Result<Value> {
    eprintln!("[bench] {corpus}: {phase} ...");
    let exe = std::env::current_exe()?;
    let out = Command::new(exe)
        .args(["phase", phase, corpus])
        .arg(dir)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("run phase {phase}"))?;
    if !out.status.success() {
        bail!("phase {phase} of {corpus} failed ({})", out.status);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let value: Value =
        serde_json::from_str(last).with_context(|| format!("phase {phase} printed {last:?}"))?;
    eprintln!("[bench] {corpus}: {phase} -> {value}");
    Ok(value)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ingest") => {
            let corpora: Vec<String> = if args.len() > 1 {
                args[1..].to_vec()
            } else {
                vec!["wordnet".into(), "scifact".into(), "synthetic".into()]
            };
            for corpus in corpora {
                let line = ingest::run(&corpus)?;
                println!("{line}");
            }
            Ok(())
        }
        Some("search") => {
            println!("{}", search::run()?);
            Ok(())
        }
        Some("relevance") => {
            let options = relevance::Options::parse(&args[1..])?;
            println!("{}", relevance::run(&options)?);
            Ok(())
        }
        Some("phase") if args.len() == 4 => {
            let value = match args[1].as_str() {
                p @ ("tantivy" | "eddy" | "recovery" | "search") => {
                    ingest::phase(p, &args[2], Path::new(&args[3]))?
                }
                other => bail!("unknown phase {other}"),
            };
            println!("{value}");
            Ok(())
        }
        _ => bail!(
            "usage: eddy-bench ingest [corpus ...] | eddy-bench search | eddy-bench relevance"
        ),
    }
}
