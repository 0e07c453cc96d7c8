//! eddy-wal against raw write + fdatasync, in the same run on the same disk.
//!
//! Run with `scripts/bench wal`. Progress goes to stderr; the last line on stdout is one JSON
//! object. Set `EDDY_BENCH_DIR` to choose the directory (default: `$TMPDIR`, or the Cargo target
//! directory if `$TMPDIR` is a tmpfs, where fdatasync is free and the comparison meaningless).
//!
//! The baselines and the log are measured in alternating blocks (latency: 100 appends of each;
//! bandwidth: 8 MiB of each), so that both see the same disk conditions even when other work
//! on the machine makes fdatasync latency drift during the run.

// A benchmark aborts loudly on any failure.
#![allow(clippy::unwrap_used)]

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use eddy_wal::{FsStorage, Wal, WalConfig};

const RECORD_BYTES: usize = 256;
const LATENCY_ROUNDS: usize = 30;
const LATENCY_BLOCK: usize = 100;
const BANDWIDTH_ROUNDS: usize = 16;
const BANDWIDTH_BLOCK_MIB: usize = 8;
const PHASE: Duration = Duration::from_secs(3);
const MB: f64 = 1e6;

fn main() {
    let root = bench_root();
    let dir = tempdir_in(&root);
    eprintln!(
        "wal bench in {} ({})",
        dir.display(),
        fs_type(&dir).unwrap_or_else(|| "unknown fs".into())
    );
    // For profiling one phase: EDDY_BENCH_ONLY=single|writers runs that phase alone.
    let only = std::env::var("EDDY_BENCH_ONLY").ok();

    let (raw, single) = latencies(&dir);
    let (raw_p50, single_p50, single_p99) = (
        percentile(&raw, 0.5),
        percentile(&single, 0.5),
        percentile(&single, 0.99),
    );
    let single_per_s = 1e6 * single.len() as f64 / single.iter().sum::<f64>();
    eprintln!(
        "raw write+fdatasync of {RECORD_BYTES} B: p50 {raw_p50:.1} µs, p99 {:.1} µs",
        percentile(&raw, 0.99)
    );
    eprintln!(
        "eddy-wal 1 writer: ack p50 {single_p50:.1} µs ({:.2}× raw), p99 {single_p99:.1} µs, {single_per_s:.0} records/s",
        single_p50 / raw_p50
    );
    if only.as_deref() == Some("single") {
        return;
    }

    let many = writers(&dir.join("wal-64"), 64);
    eprintln!(
        "eddy-wal 64 writers: {:.0} records/s ({:.1}× one writer), ack p99 {:.1} µs, {:.1} records per fsync",
        many.records_per_s,
        many.records_per_s / single_per_s,
        many.ack_p99_us,
        many.records_per_fsync
    );
    if only.as_deref() == Some("writers") {
        return;
    }

    let batch_records_per_s =
        batches(&dir.join("wal-batch"), 1000, RECORD_BYTES) / RECORD_BYTES as f64;
    eprintln!("eddy-wal batches of 1000 × {RECORD_BYTES} B: {batch_records_per_s:.0} records/s");

    let (raw_mb_per_s, batch_mb_per_s) = bandwidth(&dir);
    eprintln!("raw sequential 1 MiB write+fdatasync: {raw_mb_per_s:.1} MB/s");
    eprintln!(
        "eddy-wal batches of 16 × 64 KiB: {batch_mb_per_s:.1} MB/s ({:.0}% of raw)",
        100.0 * batch_mb_per_s / raw_mb_per_s
    );

    fs::remove_dir_all(&dir).ok();
    println!(
        "{{\"bench\":\"wal\", \"raw_fdatasync_p50_us\":{raw_p50:.1}, \"single_writer_ack_p50_us\":{single_p50:.1}, \
         \"single_writer_ack_p99_us\":{single_p99:.1}, \"writers_64_records_per_s\":{:.0}, \"writers_64_ack_p99_us\":{:.1}, \
         \"records_per_fsync_64\":{:.1}, \"batch_1000x256B_records_per_s\":{batch_records_per_s:.0}, \
         \"raw_seq_write_fdatasync_mb_per_s\":{raw_mb_per_s:.1}, \"batch_mb_per_s\":{batch_mb_per_s:.1}}}",
        many.records_per_s, many.ack_p99_us, many.records_per_fsync
    );
}

/// `$EDDY_BENCH_DIR`, else `$TMPDIR` unless it is a tmpfs, else Cargo's target tmp dir.
fn bench_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("EDDY_BENCH_DIR") {
        return PathBuf::from(dir);
    }
    let tmp = std::env::temp_dir();
    if fs_type(&tmp).is_some_and(|t| t == "tmpfs" || t == "ramfs") {
        eprintln!(
            "{} is a tmpfs: benchmarking in the target directory instead",
            tmp.display()
        );
        return PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    }
    tmp
}

fn tempdir_in(root: &Path) -> PathBuf {
    let dir = root.join(format!("eddy-wal-bench-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// The file-system type of the mount holding `path`, from /proc/mounts (Linux).
fn fs_type(path: &Path) -> Option<String> {
    let path = path.canonicalize().ok()?;
    let mounts = fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_, mount, kind) = (fields.next()?, fields.next()?, fields.next()?);
            path.starts_with(mount)
                .then(|| (mount.len(), kind.to_string()))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, kind)| kind)
}

fn percentile(samples: &[f64], q: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn append_file(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

/// Opens a log with the default configuration, except for two knobs for experiments:
/// `EDDY_BENCH_DURABILITY` (`fsync`, `flush`, `none`) and `EDDY_BENCH_FAKE_SYNC_US=n`, which
/// replaces fdatasync by a fixed n µs wait to measure the CPU side of group commit without the
/// disk's noise.
fn open_wal(dir: &Path) -> Wal {
    let durability = std::env::var("EDDY_BENCH_DURABILITY")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or_default();
    let config = WalConfig {
        durability,
        ..WalConfig::default()
    };
    match std::env::var("EDDY_BENCH_FAKE_SYNC_US")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(us) => {
            let inner = FsStorage::open(dir).unwrap();
            let storage = fake::FakeSyncStorage {
                inner,
                sync: Duration::from_micros(us),
            };
            Wal::open_with_storage(Arc::new(storage), config).unwrap()
        }
        None => Wal::open(dir, config).unwrap(),
    }
}

/// Per-append latencies in µs: raw write + fdatasync of one record, and `Wal::append` of one
/// record from a single thread, in alternating blocks.
fn latencies(dir: &Path) -> (Vec<f64>, Vec<f64>) {
    let mut file = append_file(&dir.join("raw-latency"));
    let wal = open_wal(&dir.join("wal-single"));
    let (mut raw, mut eddy) = (Vec::new(), Vec::new());
    for _ in 0..LATENCY_ROUNDS {
        for _ in 0..LATENCY_BLOCK {
            let record = vec![0x5A; RECORD_BYTES];
            let start = Instant::now();
            file.write_all(&record).unwrap();
            file.sync_data().unwrap();
            raw.push(micros(start.elapsed()));
        }
        for _ in 0..LATENCY_BLOCK {
            let record = vec![0x42; RECORD_BYTES];
            let start = Instant::now();
            wal.append(1, record).unwrap();
            eddy.push(micros(start.elapsed()));
        }
    }
    wal.close().unwrap();
    (raw, eddy)
}

/// MB/s of raw 1 MiB write + fdatasync, and of `append_batch` of 16 × 64 KiB (1 MiB), in
/// alternating blocks.
fn bandwidth(dir: &Path) -> (f64, f64) {
    let mut file = append_file(&dir.join("raw-seq"));
    let wal = Wal::open(dir.join("wal-big-batch"), WalConfig::default()).unwrap();
    let chunk = vec![0xA5; 1 << 20];
    let (mut raw_time, mut eddy_time) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..BANDWIDTH_ROUNDS {
        let start = Instant::now();
        for _ in 0..BANDWIDTH_BLOCK_MIB {
            file.write_all(&chunk).unwrap();
            file.sync_data().unwrap();
        }
        raw_time += start.elapsed();
        let start = Instant::now();
        for _ in 0..BANDWIDTH_BLOCK_MIB {
            let batch: Vec<(u8, Vec<u8>)> = (0..16).map(|_| (1, vec![0x42; 64 * 1024])).collect();
            wal.append_batch(batch).unwrap();
        }
        eddy_time += start.elapsed();
    }
    wal.close().unwrap();
    let bytes = (BANDWIDTH_ROUNDS * BANDWIDTH_BLOCK_MIB) as f64 * (1 << 20) as f64;
    (
        bytes / raw_time.as_secs_f64() / MB,
        bytes / eddy_time.as_secs_f64() / MB,
    )
}

struct Concurrent {
    records_per_s: f64,
    ack_p99_us: f64,
    records_per_fsync: f64,
}

fn writers(dir: &Path, threads: usize) -> Concurrent {
    let wal = open_wal(dir);
    let wal = Arc::new(wal);
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (wal, stop) = (wal.clone(), stop.clone());
            thread::spawn(move || {
                let mut latencies = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let record = vec![0x42; RECORD_BYTES];
                    let t = Instant::now();
                    wal.append(1, record).unwrap();
                    latencies.push(micros(t.elapsed()));
                }
                latencies
            })
        })
        .collect();
    thread::sleep(PHASE);
    stop.store(true, Ordering::Relaxed);
    let latencies: Vec<f64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let elapsed = start.elapsed().as_secs_f64();
    let stats = wal.stats();
    Arc::try_unwrap(wal).unwrap().close().unwrap();
    Concurrent {
        records_per_s: latencies.len() as f64 / elapsed,
        ack_p99_us: percentile(&latencies, 0.99),
        records_per_fsync: stats.records_per_fsync,
    }
}

/// Appends batches of `count` records of `bytes` each for a while; returns payload bytes/s.
fn batches(dir: &Path, count: usize, bytes: usize) -> f64 {
    let wal = Wal::open(dir, WalConfig::default()).unwrap();
    let start = Instant::now();
    let mut total = 0u64;
    while start.elapsed() < PHASE {
        let batch: Vec<(u8, Vec<u8>)> = (0..count).map(|_| (1, vec![0x42; bytes])).collect();
        wal.append_batch(batch).unwrap();
        total += (count * bytes) as u64;
    }
    let rate = total as f64 / start.elapsed().as_secs_f64();
    wal.close().unwrap();
    rate
}

mod fake {
    use std::io::{self, Read};
    use std::path::PathBuf;
    use std::time::{Duration, Instant};

    use eddy_wal::{FsStorage, Storage, StorageFile};

    /// The real files, but `sync_data` waits a fixed time instead of reaching the disk.
    #[derive(Debug)]
    pub struct FakeSyncStorage {
        pub inner: FsStorage,
        pub sync: Duration,
    }

    struct FakeSyncFile {
        inner: Box<dyn StorageFile>,
        sync: Duration,
    }

    impl Storage for FakeSyncStorage {
        fn path(&self, name: &str) -> PathBuf {
            self.inner.path(name)
        }
        fn list(&self) -> io::Result<Vec<String>> {
            self.inner.list()
        }
        fn create(&self, name: &str) -> io::Result<Box<dyn StorageFile>> {
            Ok(Box::new(FakeSyncFile {
                inner: self.inner.create(name)?,
                sync: self.sync,
            }))
        }
        fn open(&self, name: &str) -> io::Result<Box<dyn StorageFile>> {
            Ok(Box::new(FakeSyncFile {
                inner: self.inner.open(name)?,
                sync: self.sync,
            }))
        }
        fn open_read(&self, name: &str) -> io::Result<Box<dyn Read + Send>> {
            self.inner.open_read(name)
        }
        fn remove(&self, name: &str) -> io::Result<()> {
            self.inner.remove(name)
        }
        fn sync_dir(&self) -> io::Result<()> {
            Ok(())
        }
    }

    impl StorageFile for FakeSyncFile {
        fn size(&self) -> io::Result<u64> {
            self.inner.size()
        }
        fn append(&mut self, bufs: &[&[u8]]) -> io::Result<()> {
            self.inner.append(bufs)
        }
        fn set_len(&mut self, len: u64) -> io::Result<()> {
            self.inner.set_len(len)
        }
        fn sync_data(&mut self) -> io::Result<()> {
            // Sleep most of it (no CPU, like a real fdatasync), spin the rest for precision.
            let deadline = Instant::now() + self.sync;
            std::thread::sleep(self.sync.saturating_sub(Duration::from_micros(60)));
            while Instant::now() < deadline {
                std::hint::spin_loop();
            }
            Ok(())
        }
    }
}
