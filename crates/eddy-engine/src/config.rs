//! Engine configuration.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

pub use eddy_wal::Durability;

use crate::error::Result;
use crate::segments::SegmentConfig;
use crate::storage::{Disk, fs_disk};

/// When frozen memtables are written into Tantivy segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MergeStrategy {
    /// Flush each frozen memtable as soon as it is frozen, one commit each.
    Immediate,
    /// Flush once `count` memtables are frozen, in one commit.
    Batched {
        /// Frozen memtables per commit.
        count: usize,
    },
    /// Freeze and flush every `interval`, in one commit.
    Periodic {
        /// Time between flushes.
        interval: Duration,
    },
    /// By size and load: everything frozen is flushed in one commit as soon as the flusher is
    /// free (so commits batch up under load), and a memtable that stopped receiving writes
    /// for `idle_freeze` (or is older than `max_age`) is frozen.
    #[default]
    Adaptive,
    /// Never flush on its own (tests and tools call [`crate::Engine::flush`]).
    Manual,
}

impl fmt::Display for MergeStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MergeStrategy::Immediate => f.write_str("immediate"),
            MergeStrategy::Batched { count } => write!(f, "batched:{count}"),
            MergeStrategy::Periodic { interval } => {
                write!(f, "periodic:{}ms", interval.as_millis())
            }
            MergeStrategy::Adaptive => f.write_str("adaptive"),
            MergeStrategy::Manual => f.write_str("manual"),
        }
    }
}

impl FromStr for MergeStrategy {
    type Err = String;

    /// `immediate`, `batched:<count>`, `periodic:<n>ms|<n>s`, `adaptive`, `manual`.
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let bad = || {
            format!(
                "invalid merge strategy `{s}`: expected `immediate`, `batched:<count>`, `periodic:<n>ms` or `periodic:<n>s`, `adaptive`, or `manual`"
            )
        };
        match s.split_once(':') {
            None => match s {
                "immediate" => Ok(MergeStrategy::Immediate),
                "adaptive" => Ok(MergeStrategy::Adaptive),
                "manual" => Ok(MergeStrategy::Manual),
                _ => Err(bad()),
            },
            Some(("batched", n)) => match n.parse::<usize>() {
                Ok(count) if count > 0 => Ok(MergeStrategy::Batched { count }),
                _ => Err(bad()),
            },
            Some(("periodic", t)) => {
                let interval = if let Some(ms) = t.strip_suffix("ms") {
                    ms.parse::<u64>().map(Duration::from_millis)
                } else if let Some(secs) = t.strip_suffix('s') {
                    secs.parse::<u64>().map(Duration::from_secs)
                } else {
                    return Err(bad());
                };
                match interval {
                    Ok(interval) if !interval.is_zero() => Ok(MergeStrategy::Periodic { interval }),
                    _ => Err(bad()),
                }
            }
            _ => Err(bad()),
        }
    }
}

/// A test hook called at named points of the flush and write paths; returning an error
/// makes the engine stop right there, as a crash would.
pub type Failpoint = Arc<dyn Fn(&'static str) -> Result<()> + Send + Sync>;

/// Engine settings.
#[derive(Clone)]
pub struct EngineConfig {
    /// An index's active memtable freezes at this size (at most [`MAX_WRITE_BUFFER_BYTES`];
    /// [`crate::Engine::open`] lowers a larger value to it).
    pub write_buffer_bytes: usize,
    /// Budget for the engine's indexing memory: all memtables, plus what the flush in
    /// progress and the merges hold beyond them (see [`EngineConfig::memtable_budget_bytes`]).
    pub memory_budget_bytes: usize,
    /// How long a writer waits for memory before `Overloaded`.
    pub overload_wait: Duration,
    /// When frozen memtables are flushed.
    pub merge_strategy: MergeStrategy,
    /// Adaptive: freeze a memtable idle for this long.
    pub idle_freeze: Duration,
    /// Adaptive: freeze a memtable older than this.
    pub max_memtable_age: Duration,
    /// Write-ahead log durability.
    pub durability: Durability,
    /// Log segment size.
    pub wal_segment_bytes: u64,
    /// Tantivy writer settings.
    pub segments: SegmentConfig,
    /// Documents applied per memtable critical section.
    pub apply_chunk_docs: usize,
    /// New terms after which a memtable's term dictionary is re-sealed into an FST (the
    /// threshold also grows with the dictionary: a quarter of the sealed terms).
    pub seal_min_terms: usize,
    /// A memtable without writes for this long has its dictionary sealed nearly whole (see
    /// [`crate::memtable::Memtable::seal_input`]).
    pub seal_idle: Duration,
    /// Test hook (see [`Failpoint`]).
    pub failpoint: Option<Failpoint>,
    /// Where the files live: the real file system by default; crash tests use a simulated
    /// disk (see [`crate::storage`]).
    pub disk: Arc<dyn Disk>,
}

impl fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineConfig")
            .field("write_buffer_bytes", &self.write_buffer_bytes)
            .field("memory_budget_bytes", &self.memory_budget_bytes)
            .field("overload_wait", &self.overload_wait)
            .field("merge_strategy", &self.merge_strategy)
            .field("durability", &self.durability)
            .field("wal_segment_bytes", &self.wal_segment_bytes)
            .field("disk", &self.disk)
            .finish_non_exhaustive()
    }
}

/// The largest write buffer: a memtable addresses its positions and documents with 32-bit
/// offsets, and every position takes 4 bytes of the buffer.
pub const MAX_WRITE_BUFFER_BYTES: usize = 4 << 30;

impl EngineConfig {
    /// The share of [`EngineConfig::memory_budget_bytes`] that memtables may hold: the budget
    /// less what one flush and the merges may hold beyond them (flushes run one at a time;
    /// [`SegmentConfig::indexing_bytes`]), but never less than half of it. Under a sustained
    /// load the memtables are full while a flush writes, so both are held at once.
    pub fn memtable_budget_bytes(&self) -> usize {
        self.memory_budget_bytes
            .saturating_sub(self.segments.indexing_bytes())
            .max(self.memory_budget_bytes / 2)
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            write_buffer_bytes: 64 << 20,
            memory_budget_bytes: 512 << 20,
            overload_wait: Duration::from_secs(10),
            merge_strategy: MergeStrategy::Adaptive,
            idle_freeze: Duration::from_secs(1),
            max_memtable_age: Duration::from_secs(30),
            durability: Durability::Fsync,
            wal_segment_bytes: 64 << 20,
            segments: SegmentConfig::default(),
            apply_chunk_docs: 256,
            seal_min_terms: 1024,
            seal_idle: Duration::from_millis(100),
            failpoint: None,
            disk: fs_disk(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memtables_get_the_budget_less_one_flush_of_indexing_memory() {
        let mut c = EngineConfig::default();
        assert_eq!(c.memtable_budget_bytes(), (512 << 20) - (64 << 20));
        // Segment-writing threads share the flush's reservation.
        c.segments.writer_threads = 4;
        assert_eq!(c.memtable_budget_bytes(), (512 << 20) - (64 << 20));
        // Tantivy's floor of 15 MB counts, and memtables keep half at least.
        c.segments.writer_memory_bytes = 1;
        c.memory_budget_bytes = 40_000_000;
        assert_eq!(c.memtable_budget_bytes(), 25_000_000);
        c.memory_budget_bytes = 20_000_000;
        assert_eq!(c.memtable_budget_bytes(), 10_000_000);
    }

    #[test]
    fn strategies_parse_and_print() {
        for s in [
            "immediate",
            "batched:4",
            "periodic:250ms",
            "adaptive",
            "manual",
        ] {
            let parsed: MergeStrategy = s.parse().unwrap();
            assert_eq!(parsed.to_string(), s);
        }
        assert_eq!(
            "periodic:2s".parse::<MergeStrategy>().unwrap(),
            MergeStrategy::Periodic {
                interval: Duration::from_secs(2)
            }
        );
        for bad in ["", "batched:0", "periodic:5", "fast", "batched:x"] {
            assert!(bad.parse::<MergeStrategy>().is_err(), "{bad}");
        }
    }
}
