//! Real processes: a child appends with concurrent writers (at the `Fsync` level, and at the
//! `Flush` level, whose promise is to survive a process crash) and prints every acknowledged LSN;
//! the parent kills it with SIGKILL at a random moment and checks that every printed LSN is
//! recovered with its payload. Also: a second process cannot open a locked directory.
//!
//! The child is this test binary re-executed on the ignored test `child_process`, with the
//! directory and the mode in environment variables.

// Test helpers unwrap freely: a panic is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use eddy_wal::{Durability, Lsn, Wal, WalConfig};
use rand::Rng;

const DIR_ENV: &str = "EDDY_WAL_TEST_CHILD_DIR";
const MODE_ENV: &str = "EDDY_WAL_TEST_CHILD_MODE";

fn payload(thread: u64, op: u64, record: u64) -> Vec<u8> {
    let mut bytes = format!("t{thread}-op{op}-r{record}-").into_bytes();
    bytes.resize(
        bytes.len() + ((op * 31 + record * 7) % 300) as usize,
        b'a' + (op % 26) as u8,
    );
    bytes
}

fn config() -> WalConfig {
    // Small segments so that kills also land during rotations.
    WalConfig {
        segment_bytes_max: 64 * 1024,
        ..WalConfig::default()
    }
}

/// The configuration of an appending child in `mode` (`append` or `append-flush`).
fn child_config(mode: &str) -> WalConfig {
    WalConfig {
        durability: if mode == "append-flush" {
            Durability::Flush
        } else {
            Durability::Fsync
        },
        ..config()
    }
}

/// The child half. Not a test on its own: it runs until killed.
#[test]
#[ignore = "child process of the tests in this file, started by them"]
fn child_process() {
    let dir = std::env::var(DIR_ENV).expect("run only as the child of the process_kill tests");
    match std::env::var(MODE_ENV).as_deref() {
        Ok("lock-probe") => {
            let outcome = match Wal::open(&dir, config()) {
                Err(eddy_wal::Error::Locked { .. }) => "LOCKED".to_string(),
                Ok(_) => "OPENED".to_string(),
                Err(other) => format!("ERROR {other}"),
            };
            println!("{outcome}");
        }
        Ok(mode) => append_until_killed(Path::new(&dir), child_config(mode)),
        Err(e) => panic!("{MODE_ENV}: {e}"),
    }
}

fn append_until_killed(dir: &Path, config: WalConfig) {
    let wal = Arc::new(Wal::open(dir, config).unwrap());
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let wal = wal.clone();
            thread::spawn(move || {
                for op in 0.. {
                    let count = if op % 4 == 3 { 3 } else { 1 };
                    let records = (0..count).map(|r| (t as u8, payload(t, op, r))).collect();
                    let lsns = wal.append_batch(records).unwrap();
                    // One write(2) per line, so a kill never leaves half a line that parses.
                    let mut lines = String::new();
                    for (r, lsn) in lsns.enumerate() {
                        lines.push_str(&format!("ACK {lsn} {t} {op} {r}\n"));
                    }
                    let mut out = std::io::stdout().lock();
                    out.write_all(lines.as_bytes()).unwrap();
                    out.flush().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

fn spawn_child(dir: &Path, mode: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DIR_ENV, dir)
        .env(MODE_ENV, mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Complete lines (ending in a newline) from the child's stdout, sent as they arrive. The test
/// harness's own output shares the stream (the first line of ours follows its
/// `test child_process ... `), so callers look for their markers inside lines.
fn read_lines(child: &mut Child) -> (mpsc::Receiver<String>, thread::JoinHandle<()>) {
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = mpsc::channel();
    let reader = thread::spawn(move || {
        let mut line = String::new();
        while stdout.read_line(&mut line).unwrap_or(0) > 0 {
            if line.ends_with('\n') && tx.send(line.trim_end().to_string()).is_err() {
                return;
            }
            line.clear();
        }
    });
    (rx, reader)
}

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_record() {
    kill_repeatedly("append", 25);
}

/// At the `Flush` level an acknowledgement means "handed to the kernel": that survives the
/// death of the process (not a power cut, which this test does not simulate).
#[test]
fn sigkill_at_the_flush_level_loses_no_acknowledged_record() {
    kill_repeatedly("append-flush", 8);
}

/// Starts a child appending in `mode`, kills it with SIGKILL at a random moment, reopens the
/// directory and checks every LSN the children ever printed; `cycles` times on one directory.
fn kill_repeatedly(mode: &str, cycles: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rng();
    let mut acked: BTreeMap<Lsn, Vec<u8>> = BTreeMap::new();
    for cycle in 0..cycles {
        let mut child = spawn_child(dir.path(), mode);
        let (lines, reader) = read_lines(&mut child);
        // Let it acknowledge something first, then kill it at a random moment.
        let first = loop {
            let line = lines
                .recv_timeout(Duration::from_secs(60))
                .expect("the child acknowledged nothing");
            if line.contains("ACK ") {
                break line;
            }
        };
        thread::sleep(Duration::from_millis(rng.random_range(0..60)));
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        let before = acked.len();
        for line in std::iter::once(first).chain(lines.try_iter()) {
            let Some((_, ack)) = line.split_once("ACK ") else {
                continue;
            };
            let fields: Vec<u64> = ack.split(' ').map(|f| f.parse().unwrap()).collect();
            let [lsn, t, op, r] = fields[..] else {
                panic!("bad line {line:?}")
            };
            let previous = acked.insert(lsn, payload(t, op, r));
            assert!(
                previous.is_none(),
                "cycle {cycle}: LSN {lsn} acknowledged twice"
            );
        }
        assert!(
            acked.len() > before,
            "cycle {cycle}: no acknowledgement parsed"
        );

        let wal = Wal::open(dir.path(), config())
            .unwrap_or_else(|e| panic!("cycle {cycle}: reopen failed: {e}"));
        let mut recovered = BTreeMap::new();
        for (i, record) in wal.replay(0).unwrap().enumerate() {
            let record = record.unwrap();
            assert_eq!(
                record.lsn,
                i as u64 + 1,
                "cycle {cycle}: LSNs must be contiguous"
            );
            recovered.insert(record.lsn, record.payload);
        }
        for (lsn, payload) in &acked {
            assert_eq!(
                recovered.get(lsn),
                Some(payload),
                "cycle {cycle}: acknowledged LSN {lsn} lost or changed"
            );
        }
        wal.close().unwrap();
    }
    eprintln!(
        "{mode}: {cycles} kills, {} acknowledged records all recovered",
        acked.len()
    );
}

#[test]
fn another_process_cannot_open_a_locked_directory() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), config()).unwrap();
    let mut child = spawn_child(dir.path(), "lock-probe");
    let (lines, reader) = read_lines(&mut child);
    child.wait().unwrap();
    reader.join().unwrap();
    let outcome: Vec<String> = lines
        .try_iter()
        .filter(|l| ["LOCKED", "OPENED", "ERROR"].iter().any(|p| l.contains(p)))
        .collect();
    assert!(
        outcome.len() == 1 && outcome[0].ends_with("LOCKED"),
        "{outcome:?}"
    );
    drop(wal);
    let mut child = spawn_child(dir.path(), "lock-probe");
    let (lines, reader) = read_lines(&mut child);
    child.wait().unwrap();
    reader.join().unwrap();
    assert!(
        lines.try_iter().any(|l| l.ends_with("OPENED")),
        "the lock must be released on close"
    );
}
